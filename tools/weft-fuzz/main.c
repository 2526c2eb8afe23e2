/*
 * tools/weft-fuzz/main.c - weft-fuzz: random sequences of public API calls,
 * one seed at a time, each checked against what the headers promise.
 *
 *   weft-fuzz [--seed S] [--runs N | --seconds T] [--threads N] [--verbose]
 *
 * --runs N seeds (100 when neither limit is given) or as many as fit in T
 * seconds; each seed runs 1..N plain threads (--threads, default 3) besides
 * its tasks; --verbose prints a line per seed.
 *
 * What a seed covers (world.c, threads.c, tasks.c, spawn.c, actor.c): a
 * runtime of 1-4 workers made and freed; spawn, spawn_detached and block_on of
 * cooperative, cancel-safe and shielded tasks, bound to tokens or not, into
 * groups or not; tasks that yield, sleep, wait on tokens, oneshots and
 * channels, select, wait forever, spawn children, join them, join them with
 * timeouts (weft_join_await_timeout) and hand handles down to their children;
 * abort, detach, join_wait and join_wait_timeout from 1..N plain threads;
 * token trees (child, cancel, bind at spawn); mpsc (bounded and unbounded)
 * and oneshot send/recv/close/drop; groups (spawn, cancel, join_next,
 * join_all, shutdown, free); runtime shutdown in the middle of all that,
 * from the main thread and from the plain threads; and misuse: stale and
 * doubly used handles, abort after join, calls after shutdown, NULLs, bad
 * task descriptions, blocking calls on a worker.
 *
 * Invariants checked (a breach is a "violation"):
 *   - every call returns 0, a positive count, or a negative errno its header
 *     documents for the situation (check.c counts each, per call);
 *   - every drop hook runs exactly once, and never for a refused spawn;
 *   - every join outcome obeys the rules of weft/runtime.h (O1-O6 in
 *     check.c): status 0 with the task's own value, -ECANCELED only after a
 *     request and for a cancel-safe task or at shutdown, a source that
 *     someone could have asked with;
 *   - an await yields its own -ECANCELED only in a cooperative, unshielded,
 *     cancelled task; a sleep never ends early;
 *   - a blocking call from a drop hook is refused (-EDEADLK) wherever the
 *     hook runs: on a worker, or in the shutdown sweep;
 *   - channels lose and duplicate nothing (sent = received + discarded);
 *   - no hang: a watchdog aborts the process, naming the seed and what its
 *     threads and live tasks were doing, when one seed runs over 20 s;
 *   - no leak: in ASan builds LeakSanitizer is asked after each seed's
 *     runtime is freed (the fuzzer frees all of its own first), so a task
 *     object that outlives its runtime fails the seed that leaked it.
 *
 * Seed k of a run is S for k = 0 and the splitmix64 successor of seed k-1
 * after that, so any failing seed replays alone: the command is printed.
 * The seed fixes every choice; thread interleavings still vary between runs.
 * Prints one summary line (seeds, calls, time, violations) and the result
 * counts per call; exits 0 when clean, 1 on any violation or leak.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "weft_config.h"

#if WEFT_SANITIZE_ADDRESS
#include <sanitizer/lsan_interface.h>
#define leak_check() __lsan_do_recoverable_leak_check()
#else
#define leak_check() 0
#endif

#define HANG_SECONDS 20
#define DEFAULT_THREADS 3

bool fz_verbose;
static unsigned opt_threads = DEFAULT_THREADS;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void print_replay(FILE *f, uint64_t seed)
{
    fprintf(f, "  replay: weft-fuzz --seed 0x%016llx --runs 1", (unsigned long long)seed);
    if (opt_threads != DEFAULT_THREADS)
        fprintf(f, " --threads %u", opt_threads);
    fputc('\n', f);
}

/* ---- the watchdog ----------------------------------------------------------------- */

static _Atomic uint64_t wd_seed, wd_start;  /* wd_start 0: no seed running */

static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec tick = { 0, 100000000 };
        nanosleep(&tick, NULL);
        uint64_t start = atomic_load(&wd_start);
        if (!start || now_ns() - start < (uint64_t)HANG_SECONDS * 1000000000u)
            continue;
        uint64_t seed = atomic_load(&wd_seed);
        fprintf(stderr, "\nweft-fuzz: HANG: seed 0x%016llx still running after %d s\n",
                (unsigned long long)seed, HANG_SECONDS);
        fz_dump_world();
        print_replay(stderr, seed);
        abort();
    }
    return NULL;
}

/* ---- the summary -------------------------------------------------------------------- */

static void print_summary(uint64_t seeds, uint64_t calls, double secs, uint64_t violations)
{
    printf("weft-fuzz: %llu seeds, %llu calls in %.1fs, %llu violations\n",
           (unsigned long long)seeds, (unsigned long long)calls, secs,
           (unsigned long long)violations);
    for (int c = 0; c < FC_COUNT; c++) {
        char line[512];
        int len = snprintf(line, sizeof line, "  %-26s", fz_call_name(c));
        bool any = false;
        for (int b = 0; b < FB_COUNT; b++) {
            uint64_t n = FZ_LOAD(fz_counts[c][b]);
            if (n && len < (int)sizeof line) {
                len += snprintf(line + len, sizeof line - (size_t)len, " %s=%llu",
                                fz_bucket_name(b), (unsigned long long)n);
                any = true;
            }
        }
        if (any)
            printf("%s\n", line);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: weft-fuzz [--seed S] [--runs N | --seconds T] [--threads N] "
                    "[--verbose]\n");
    return 2;
}

int main(int argc, char **argv)
{
    uint64_t seed = (uint64_t)time(NULL) ^ now_ns(), runs = 0;
    double seconds = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--verbose") == 0) {
            fz_verbose = true;
            continue;
        }
        if (!v)
            return usage();
        i++;
        if (strcmp(a, "--seed") == 0)
            seed = strtoull(v, NULL, 0);
        else if (strcmp(a, "--runs") == 0)
            runs = strtoull(v, NULL, 0);
        else if (strcmp(a, "--seconds") == 0)
            seconds = strtod(v, NULL);
        else if (strcmp(a, "--threads") == 0)
            opt_threads = (unsigned)strtoul(v, NULL, 0);
        else
            return usage();
    }
    if ((runs && seconds > 0) || opt_threads == 0 || opt_threads > FZ_MAX_THREADS)
        return usage();
    if (!runs && seconds <= 0)
        runs = 100;

    pthread_t wd;
    if (pthread_create(&wd, NULL, watchdog, NULL) != 0)
        return 1;
    pthread_detach(wd);
    fprintf(stderr, "weft-fuzz: first seed 0x%016llx, up to %u threads, %s %g\n",
            (unsigned long long)seed, opt_threads, runs ? "runs" : "seconds",
            runs ? (double)runs : seconds);

    fz_opts o = { .max_threads = opt_threads };
    uint64_t start = now_ns(), seeds = 0, calls = 0, violations = 0;
    for (;;) {
        if (runs ? seeds >= runs : (double)(now_ns() - start) * 1e-9 >= seconds)
            break;
        atomic_store(&wd_seed, seed);
        atomic_store(&wd_start, now_ns());
        uint64_t seed_calls = 0;
        uint64_t v = fz_run_seed(seed, &o, &seed_calls);
        atomic_store(&wd_start, 0);
        if (leak_check()) {
            fprintf(stderr, "weft-fuzz: VIOLATION (seed 0x%016llx): LeakSanitizer found "
                            "leaks (above)\n", (unsigned long long)seed);
            v++;
        }
        seeds++;
        calls += seed_calls;
        if (v) {
            violations += v;
            print_replay(stderr, seed);
            break;      /* LeakSanitizer would report the same leak again */
        }
        seed = fz_rng(&seed);
    }
    print_summary(seeds, calls, (double)(now_ns() - start) * 1e-9, violations);
    return violations ? 1 : 0;
}
