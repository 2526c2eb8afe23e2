/*
 * bench/weft_bench.c - weft-bench: runs the workloads of docs/benchmarks.md
 * and prints one line per workload:
 *     <workload> <seconds> <operations> <operations_per_second>
 *
 * Usage: weft-bench [--threads N] [--scale F] [WORKLOAD ...]
 * idle_tasks also prints "bytes_per_task N" on stderr (its real figure).
 * The runtime is created before the clock starts; each workload is timed from
 * the start of its root task to its end.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "bench.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* In the order of docs/benchmarks.md, then idle_tasks (memory per waiting
 * task). echo is a separate program pair: examples/echo and bench/echo.py. */
static const bench_workload workloads[] = {
    { "spawn_many", bench_spawn_many },
    { "spawn_join", bench_spawn_join },
    { "yield_many", bench_yield_many },
    { "ping_pong", bench_ping_pong },
    { "chained_spawn", bench_chained_spawn },
    { "abort_churn", bench_abort_churn },
    { "token_cancel", bench_token_cancel },
    { "mpsc", bench_mpsc },
    { "mutex", bench_mutex },
    { "timers", bench_timers },
    { "timer_stall", bench_timer_stall },
    { "idle_tasks", bench_idle_tasks },
};
#define WORKLOAD_COUNT (sizeof workloads / sizeof workloads[0])

static const bench_workload *find(const char *name)
{
    for (size_t i = 0; i < WORKLOAD_COUNT; i++)
        if (strcmp(workloads[i].name, name) == 0)
            return &workloads[i];
    return NULL;
}

static int run_one(const bench_workload *wl, unsigned threads, double scale)
{
    weft_runtime *rt;
    weft_runtime_opts opts = { .threads = threads };
    int rc = weft_runtime_new(&rt, &opts);
    if (rc < 0) {
        fprintf(stderr, "weft-bench: runtime: %s\n", weft_strerror(rc));
        return 1;
    }
    double start = now_seconds();
    int64_t ops = wl->run(rt, scale);
    double secs = now_seconds() - start;
    weft_runtime_free(rt);
    if (ops < 0) {
        fprintf(stderr, "weft-bench: %s failed: %s\n", wl->name, weft_strerror((int)ops));
        return 1;
    }
    printf("%s %.6f %lld %lld\n", wl->name, secs, (long long)ops,
           (long long)((double)ops / secs));
    fflush(stdout);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: weft-bench [--threads N] [--scale F] [WORKLOAD ...]\nworkloads:");
    for (size_t i = 0; i < WORKLOAD_COUNT; i++)
        fprintf(stderr, " %s", workloads[i].name);
    fputc('\n', stderr);
    return 2;
}

int main(int argc, char **argv)
{
    unsigned threads = 2;
    double scale = 1.0;
    const bench_workload *chosen[64];
    size_t nchosen = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc) {
            scale = strtod(argv[++i], NULL);
        } else if (argv[i][0] == '-' || nchosen == 64) {
            return usage();
        } else if (!(chosen[nchosen++] = find(argv[i]))) {
            fprintf(stderr, "weft-bench: unknown workload '%s'\n", argv[i]);
            return usage();
        }
    }
    if (threads == 0 || scale <= 0)
        return usage();
    if (nchosen == 0)
        for (size_t i = 0; i < WORKLOAD_COUNT; i++)
            chosen[nchosen++] = &workloads[i];
    int failed = 0;
    for (size_t i = 0; i < nchosen; i++)
        failed |= run_one(chosen[i], threads, scale);
    return failed;
}
