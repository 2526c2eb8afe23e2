/*
 * tools/weft-stress/main.c - weft-stress: run randomized cancellation
 * scenarios against weft for a while and check their invariants.
 *
 *   weft-stress [--seconds N] [--seed S] [--threads T] [--scenario NAME ...]
 *   weft-stress --scenario NAME --replay SEED     (one instance, as reported)
 *   weft-stress --list
 *
 * Instance k of a run uses the seed splitmix(S + k), so a failing instance is
 * replayed by its own seed. Prints a progress line to stderr while it runs and
 * one summary line at the end; exits 0 only when no invariant was violated.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stress.h"

stress_stats stress_totals;

static unsigned opt_threads = 2;
static const stress_scenario *current;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define MAX_REPORTED 10

void stress_violation(const char *scenario, uint64_t seed, const char *fmt, ...)
{
    uint64_t n = atomic_fetch_add_explicit(&stress_totals.violations, 1, memory_order_relaxed);
    if (n == MAX_REPORTED)
        fprintf(stderr, "\nweft-stress: more violations; reporting only the count from here\n");
    if (n >= MAX_REPORTED)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\nweft-stress: VIOLATION in %s (seed 0x%016llx): ", scenario,
            (unsigned long long)seed);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  replay: weft-stress --threads %u --scenario %s --replay 0x%016llx\n",
            opt_threads, scenario, (unsigned long long)seed);
}

static uint64_t load(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void print_summary(FILE *f, double secs)
{
    stress_stats *s = &stress_totals;
    fprintf(f, "weft-stress: %llu scenarios, %llu tasks in %.1fs; cancellations: abort %llu, "
               "token %llu, shutdown %llu; delivered at yield or sleep %llu, at join %llu, torn down %llu, "
               "shield-deferred %llu; violations %llu\n",
            (unsigned long long)load(&s->scenarios), (unsigned long long)load(&s->tasks), secs,
            (unsigned long long)load(&s->by_source[WEFT_CANCEL_ABORT]),
            (unsigned long long)load(&s->by_source[WEFT_CANCEL_TOKEN]),
            (unsigned long long)load(&s->by_source[WEFT_CANCEL_SHUTDOWN]),
            (unsigned long long)load(&s->at_yield), (unsigned long long)load(&s->at_join),
            (unsigned long long)load(&s->torn_down), (unsigned long long)load(&s->shield_held),
            (unsigned long long)load(&s->violations));
}

static const stress_scenario *find(const char *name)
{
    for (unsigned i = 0; i < stress_scenario_count; i++)
        if (strcmp(stress_scenarios[i].name, name) == 0)
            return &stress_scenarios[i];
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: weft-stress [--seconds N] [--seed S] [--threads T] "
                    "[--scenario NAME ...] [--replay SEED] [--list]\n");
    return 2;
}

static uint64_t mix_seed(uint64_t base, uint64_t k)
{
    uint64_t s = base + k;
    return stress_rng(&s);
}

static void run_instance(weft_runtime *rt, const stress_scenario *sc, uint64_t seed)
{
    current = sc;
    sc->run(rt, seed, opt_threads);
    stress_count(&stress_totals.scenarios, 1);
}

int main(int argc, char **argv)
{
    double seconds = 10;
    uint64_t seed = (uint64_t)time(NULL), replay = 0;
    bool replaying = false;
    const stress_scenario *chosen[16];
    unsigned nchosen = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--list") == 0) {
            for (unsigned k = 0; k < stress_scenario_count; k++)
                printf("%-14s %s\n", stress_scenarios[k].name, stress_scenarios[k].what);
            return 0;
        }
        if (!v)
            return usage();
        i++;
        if (strcmp(a, "--seconds") == 0) {
            seconds = strtod(v, NULL);
        } else if (strcmp(a, "--seed") == 0) {
            seed = strtoull(v, NULL, 0);
        } else if (strcmp(a, "--threads") == 0) {
            opt_threads = (unsigned)strtoul(v, NULL, 0);
        } else if (strcmp(a, "--replay") == 0) {
            replay = strtoull(v, NULL, 0);
            replaying = true;
        } else if (strcmp(a, "--scenario") == 0 && nchosen < 16) {
            if (!(chosen[nchosen++] = find(v))) {
                fprintf(stderr, "weft-stress: unknown scenario '%s' (see --list)\n", v);
                return 2;
            }
        } else {
            return usage();
        }
    }
    if (opt_threads == 0 || (replaying && nchosen != 1))
        return usage();
    if (nchosen == 0)
        for (unsigned k = 0; k < stress_scenario_count; k++)
            chosen[nchosen++] = &stress_scenarios[k];

    weft_runtime *rt;
    weft_runtime_opts opts = { .threads = opt_threads };
    int rc = weft_runtime_new(&rt, &opts);
    if (rc < 0) {
        fprintf(stderr, "weft-stress: runtime: %s\n", weft_strerror(rc));
        return 1;
    }
    double start = now(), last_progress = start;
    if (replaying) {
        run_instance(rt, chosen[0], replay);
    } else {
        fprintf(stderr, "weft-stress: seed 0x%llx, %u threads, %.0fs\n",
                (unsigned long long)seed, opt_threads, seconds);
        for (uint64_t k = 0; now() - start < seconds; k++) {
            run_instance(rt, chosen[k % nchosen], mix_seed(seed, k));
            if (now() - last_progress >= 0.5) {
                last_progress = now();
                fprintf(stderr, "\r  %.0fs: %llu scenarios, %llu violations ", last_progress - start,
                        (unsigned long long)load(&stress_totals.scenarios),
                        (unsigned long long)load(&stress_totals.violations));
            }
        }
        fputc('\n', stderr);
    }
    weft_runtime_free(rt);
    print_summary(stdout, now() - start);
    return load(&stress_totals.violations) == 0 ? 0 : 1;
}
