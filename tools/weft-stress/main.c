/*
 * tools/weft-stress/main.c - weft-stress: run randomized cancellation
 * scenarios against weft for a while and check their invariants.
 *
 *   weft-stress [--seconds N] [--seed S] [--threads T] [--scenario NAME ...]
 *   weft-stress --scenario NAME --replay SEED     (one instance, as reported)
 *   weft-stress --deterministic [--pct D] [--runs N] [other options as above]
 *   weft-stress --io-faults N [other options]
 *   weft-stress --harness [--runs N] [--pct D] [--planted] [--seed S] [--threads T]
 *               [--scenario NAME ...] [--replay RUN]
 *   weft-stress --list                             (each scenario, what it does and
 *                                                  the bug-catalogue patterns it checks)
 *
 * Instance k of a run uses the seed splitmix(S + k), so a failing instance is
 * replayed by its own seed. Prints a progress line to stderr while it runs and
 * one summary line at the end; exits 0 only when no invariant was violated.
 *
 * --deterministic runs the scenarios marked deterministic (stress.h) on a
 * simulated runtime (weft/sim.h) of T simulated workers, PCT of depth D if
 * given, each instance's seed seeding the simulator too; it runs exactly N
 * instances (default 100), so time plays no part and the run is a function
 * of S, T, D and N. It prints "schedule <hash>": every instance's schedule
 * hash folded together (with --replay, that instance's), the same line for
 * the same arguments on every run.
 *
 * --harness runs every scenario that has the shape weft/harness.h takes
 * (harness.c) through weft_harness_run, one instance planned by S: the
 * sweep over every await of every task, N uniform seeds and N PCT seeds per
 * depth 1 .. D (default 200 and 3), N / 10 threaded runs on T workers. A
 * failure prints the command that replays it (--replay RUN). --planted
 * turns a catalogue fix off in the scenarios that have one to turn off.
 *
 * --io-faults N turns on the reactor's fault injection for the whole run:
 * every N-th SQE request finds the SQ full and every N-th enter fails with
 * -EBUSY or -EAGAIN. weft must absorb both (overflow queue, reap and retry),
 * so every scenario must still hold every invariant.
 *
 * Under --deterministic the first failing instance is run once more, the
 * same way, with a trace (weft/trace.h), and the trace is written to
 * weft-stress-SCENARIO-SEED.json in the current directory; its name is
 * printed under the replay line. --force-violation K reports a violation
 * after the K-th instance (from 1), so that this path can be tested.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft/sim.h>
#include <weft/trace.h>

#include "reactor/op.h"
#include "sim_scenarios.h"
#include "stress.h"

stress_stats stress_totals;

static unsigned opt_threads = 2;
static bool opt_deterministic, opt_harness;
bool stress_planted;
static unsigned opt_io_faults;
unsigned stress_sim_pct;
static const stress_scenario *current;
static uint64_t opt_force_violation;    /* instance to fail, from 1; 0: none */
static uint64_t sim_instances;
static bool rerunning;                  /* for the trace: already reported */
static bool traced;                     /* the first failure has its trace */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define MAX_REPORTED 10

/* stress_capture's buffer; tasks on several threads may report at once, so
 * the first to claim it writes it. */
static char *capture;
static size_t capture_size;
static atomic_flag captured;

void stress_capture(char *why, size_t size)
{
    capture = why;
    capture_size = size;
    atomic_flag_clear(&captured);
}

void stress_violation(const char *scenario, uint64_t seed, const char *fmt, ...)
{
    if (rerunning)
        return;
    uint64_t n = atomic_fetch_add_explicit(&stress_totals.violations, 1, memory_order_relaxed);
    if (capture) {
        if (!atomic_flag_test_and_set(&captured)) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(capture, capture_size, fmt, ap);
            va_end(ap);
        }
        return;
    }
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
    if (opt_deterministic)
        fprintf(stderr, "\n  replay: weft-stress --deterministic --pct %u --threads %u "
                        "--scenario %s --replay 0x%016llx\n",
                stress_sim_pct, opt_threads, scenario, (unsigned long long)seed);
    else
        fprintf(stderr, "\n  replay: weft-stress --threads %u --io-faults %u --scenario %s "
                        "--replay 0x%016llx\n",
                opt_threads, opt_io_faults, scenario, (unsigned long long)seed);
}

static uint64_t load(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void print_summary(FILE *f, double secs)
{
    stress_stats *s = &stress_totals;
    fprintf(f, "weft-stress: %llu scenarios, %llu tasks in %.1fs; cancellations: abort %llu, "
               "token %llu, timeout %llu, group %llu, shutdown %llu; delivered at yield or sleep "
               "%llu, at join %llu, torn down %llu, shield-deferred %llu; waits withdrawn %llu; "
               "violations %llu\n",
            (unsigned long long)load(&s->scenarios), (unsigned long long)load(&s->tasks), secs,
            (unsigned long long)load(&s->by_source[WEFT_CANCEL_ABORT]),
            (unsigned long long)load(&s->by_source[WEFT_CANCEL_TOKEN]),
            (unsigned long long)load(&s->by_source[WEFT_CANCEL_TIMEOUT]),
            (unsigned long long)load(&s->by_source[WEFT_CANCEL_GROUP]),
            (unsigned long long)load(&s->by_source[WEFT_CANCEL_SHUTDOWN]),
            (unsigned long long)load(&s->at_yield), (unsigned long long)load(&s->at_join),
            (unsigned long long)load(&s->torn_down), (unsigned long long)load(&s->shield_held),
            (unsigned long long)load(&s->withdrawn), (unsigned long long)load(&s->violations));
}

/* The scenarios of this mode: the main table, under --deterministic those
 * marked deterministic in either table, under --harness those of either
 * table that have parts. */
static bool eligible_one(const stress_scenario *sc, bool sim_table)
{
    if (opt_harness)
        return sc->parts != NULL;
    return opt_deterministic ? sc->deterministic : !sim_table;
}

static unsigned eligible(const stress_scenario **out, unsigned max)
{
    unsigned n = 0;
    for (unsigned i = 0; i < stress_scenario_count && n < max; i++)
        if (eligible_one(&stress_scenarios[i], false))
            out[n++] = &stress_scenarios[i];
    for (unsigned i = 0; i < stress_sim_scenario_count && n < max; i++)
        if (eligible_one(&stress_sim_scenarios[i], true))
            out[n++] = &stress_sim_scenarios[i];
    return n;
}

#define MAX_SCENARIOS 64

static const stress_scenario *find(const char *name)
{
    const stress_scenario *all[MAX_SCENARIOS];
    unsigned n = eligible(all, MAX_SCENARIOS);
    for (unsigned i = 0; i < n; i++)
        if (strcmp(all[i]->name, name) == 0)
            return all[i];
    return NULL;
}

/* The cancellation-bug patterns (docs/bug-catalogue.md) each scenario
 * exercises, so that --list explains the names without another document.
 * A scenario missing here is listed with its own description only. */
static const struct {
    const char *name;
    const char *patterns;
} catalogue[] = {
    { "io_frames", "C2 partial read lost, C3 half-written frame" },
    { "io_fds", "C10 resource acquired at the last moment leaks" },
    { "io_deadline", "C2 partial read lost, under deadlines" },
    { "chan_conserve", "C4 timed-out send loses its message, C5 received then dropped" },
    { "locks", "C6 lock held across a broken invariant, C7 withdrawn waiter loses its place" },
    { "c1_persist", "C1 two-step update split by an await" },
    { "c8_futurelock", "C8 futurelock" },
    { "c9_blocking", "C9 abort while a blocking job runs" },
    { "c11_level", "C11 edge-triggered cancellation hangs clean-up, C12 cancellation swallowed" },
    { "c13_abort_race", "C13 abort racing completion" },
    { "c14_select_timer", "C14 select precondition racing a timer" },
    { "c16_relay", "C15 cancellation callbacks run inline, C16 two safe steps make an unsafe pair" },
    { "c17_detached", "C17 work that outlives a timeout" },
    { "sim_sweep", "C1 two-step update split by an await" },
};

static const char *patterns_of(const char *name)
{
    for (size_t i = 0; i < sizeof catalogue / sizeof catalogue[0]; i++)
        if (strcmp(catalogue[i].name, name) == 0)
            return catalogue[i].patterns;
    return NULL;
}

/* Length of `what` without a trailing " (C...)" pattern tag, which the
 * catalogue names spell out instead. */
static int description_len(const char *what)
{
    size_t len = strlen(what);
    const char *tag = strrchr(what, '(');
    if (len > 0 && what[len - 1] == ')' && tag && tag > what && tag[-1] == ' ' && tag[1] == 'C'
        && tag[2] >= '0' && tag[2] <= '9')
        return (int)(tag - 1 - what);
    return (int)len;
}

/* One line per scenario of this mode: name, what it does, and the catalogue
 * patterns it exercises. */
static void list(void)
{
    const stress_scenario *all[MAX_SCENARIOS];
    unsigned n = eligible(all, MAX_SCENARIOS);
    for (unsigned i = 0; i < n; i++) {
        const char *patterns = patterns_of(all[i]->name);
        if (patterns)
            printf("%-16s %.*s (%s; see docs/bug-catalogue.md)\n", all[i]->name,
                   description_len(all[i]->what), all[i]->what, patterns);
        else
            printf("%-16s %s\n", all[i]->name, all[i]->what);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: weft-stress [--seconds N] [--seed S] [--threads T] "
                    "[--scenario NAME ...] [--replay SEED] [--list]\n"
                    "       weft-stress --deterministic [--pct D] [--runs N] "
                    "[--force-violation K] [same options]\n"
                    "       weft-stress --io-faults N [same options]\n"
                    "       weft-stress --harness [--runs N] [--pct D] [--planted] "
                    "[--seed S] [--threads T] [--scenario NAME ...] [--replay RUN]\n");
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

/* One instance on a simulated runtime of its own; returns its schedule.
 * With trace_path, the runtime is traced and the trace written there. */
static uint64_t run_sim_instance(const stress_scenario *sc, uint64_t seed, const char *trace_path)
{
    /* A short virtual grace: tasks left at shutdown are a scenario's own
     * business, and each poll of the grace period costs real time. */
    weft_sim_opts o = { .seed = seed, .workers = opt_threads, .pct_depth = stress_sim_pct,
                        .shutdown_grace_ms = 5 };
    weft_runtime *rt;
    int rc = weft_sim_runtime_new(&rt, &o);
    if (rc < 0) {
        fprintf(stderr, "weft-stress: simulated runtime: %s\n", weft_strerror(rc));
        exit(1);
    }
    if (trace_path && (rc = weft_trace_start(rt, 0)) < 0)
        fprintf(stderr, "weft-stress: trace: %s\n", weft_strerror(rc));
    run_instance(rt, sc, seed);
    if (!trace_path && opt_force_violation == ++sim_instances)
        stress_violation(sc->name, seed, "forced by --force-violation");
    weft_runtime_shutdown(rt);
    if (trace_path && (rc = weft_trace_write(rt, trace_path)) < 0)
        fprintf(stderr, "weft-stress: writing %s: %s\n", trace_path, weft_strerror(rc));
    uint64_t schedule = weft_sim_schedule(rt);
    weft_runtime_free(rt);
    return schedule;
}

/* The first instance that failed runs again, the same way (the simulator
 * makes it a function of its seed), with a trace written next to where the
 * replay line says how to run it. The rerun's own violations and schedule
 * are not counted. */
static uint64_t run_sim_traced(const stress_scenario *sc, uint64_t seed)
{
    uint64_t failed = load(&stress_totals.violations);
    uint64_t schedule = run_sim_instance(sc, seed, NULL);
    if (traced || load(&stress_totals.violations) == failed)
        return schedule;
    traced = true;
    char path[128];
    snprintf(path, sizeof path, "weft-stress-%s-0x%016llx.json", sc->name,
             (unsigned long long)seed);
    rerunning = true;
    run_sim_instance(sc, seed, path);
    rerunning = false;
    fprintf(stderr, "  trace: %s\n", path);
    return schedule;
}

/* Exactly `runs` instances, so that the folded schedule names the run. */
static void run_deterministic(const stress_scenario **chosen, unsigned nchosen, uint64_t seed,
                              uint64_t runs, bool replaying)
{
    uint64_t schedule = 0;
    if (replaying) {
        schedule = run_sim_traced(chosen[0], seed);
    } else {
        fprintf(stderr, "weft-stress: deterministic, seed 0x%llx, %u simulated workers, pct %u, "
                        "%llu runs\n", (unsigned long long)seed, opt_threads, stress_sim_pct,
                (unsigned long long)runs);
        for (uint64_t k = 0; k < runs; k++) {
            uint64_t fold = schedule ^ run_sim_traced(chosen[k % nchosen], mix_seed(seed, k));
            schedule = stress_rng(&fold);
        }
    }
    printf("schedule 0x%016llx\n", (unsigned long long)schedule);
}

static void run_threads(const stress_scenario **chosen, unsigned nchosen, uint64_t seed,
                        double seconds, bool replaying)
{
    weft_runtime *rt;
    weft_runtime_opts opts = { .threads = opt_threads };
    int rc = weft_runtime_new(&rt, &opts);
    if (rc < 0) {
        fprintf(stderr, "weft-stress: runtime: %s\n", weft_strerror(rc));
        exit(1);
    }
    double start = now(), last_progress = start;
    if (replaying) {
        run_instance(rt, chosen[0], seed);
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
}

int main(int argc, char **argv)
{
    double seconds = 10;
    uint64_t seed = (uint64_t)time(NULL), replay = 0, runs = 100;
    bool replaying = false, listing = false, sim_only = false, runs_set = false;
    const char *replay_run = NULL;
    const char *names[MAX_SCENARIOS];
    unsigned nnames = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--list") == 0 || strcmp(a, "--deterministic") == 0
            || strcmp(a, "--harness") == 0 || strcmp(a, "--planted") == 0) {
            listing |= a[2] == 'l';
            opt_deterministic |= a[2] == 'd';
            opt_harness |= a[2] == 'h';
            stress_planted |= a[2] == 'p';
            continue;
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
        } else if (strcmp(a, "--pct") == 0) {
            stress_sim_pct = (unsigned)strtoul(v, NULL, 0);
            sim_only = true;
        } else if (strcmp(a, "--runs") == 0) {
            runs = strtoull(v, NULL, 0);
            runs_set = true;
        } else if (strcmp(a, "--force-violation") == 0) {
            opt_force_violation = strtoull(v, NULL, 0);
            sim_only = true;
        } else if (strcmp(a, "--io-faults") == 0) {
            opt_io_faults = (unsigned)strtoul(v, NULL, 0);
        } else if (strcmp(a, "--replay") == 0) {
            replay = strtoull(v, NULL, 0);
            replay_run = v;
            replaying = true;
        } else if (strcmp(a, "--scenario") == 0 && nnames < MAX_SCENARIOS) {
            names[nnames++] = v;    /* looked up once the mode is known */
        } else {
            return usage();
        }
    }
    if (listing) {
        list();
        return 0;
    }
    if (opt_threads == 0 || (replaying && nnames != 1) || stress_sim_pct > WEFT_SIM_MAX_PCT_DEPTH
        || ((sim_only || runs_set) && !opt_deterministic && !opt_harness) || opt_io_faults == 1
        || (opt_harness && (opt_deterministic || opt_io_faults || runs == 0 || runs > 100000))
        || (stress_planted && !opt_harness) || (opt_force_violation && !opt_deterministic))
        return usage();
    weft__io_inject_faults(opt_io_faults, opt_io_faults);
    const stress_scenario *chosen[MAX_SCENARIOS];
    unsigned nchosen = 0;
    for (unsigned k = 0; k < nnames; k++) {
        if (!(chosen[nchosen++] = find(names[k]))) {
            fprintf(stderr, "weft-stress: no scenario '%s'%s (see --list)\n", names[k],
                    opt_deterministic ? " runs under --deterministic"
                    : opt_harness     ? " runs under --harness" : "");
            return 2;
        }
    }
    if (nchosen == 0)
        nchosen = eligible(chosen, MAX_SCENARIOS);

    if (opt_harness) {
        stress_harness_opts ho = { .seed = seed, .threads = opt_threads,
                                   .runs = runs_set ? (unsigned)runs : 200,
                                   .pct = stress_sim_pct ? stress_sim_pct : 3,
                                   .replay = replay_run };
        return stress_harness(chosen, nchosen, &ho);
    }
    double start = now();
    if (opt_deterministic)
        run_deterministic(chosen, nchosen, replaying ? replay : seed, runs, replaying);
    else
        run_threads(chosen, nchosen, replaying ? replay : seed, seconds, replaying);
    print_summary(stdout, now() - start);
    return load(&stress_totals.violations) == 0 ? 0 : 1;
}
