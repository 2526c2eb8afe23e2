/*
 * bench/bench.h - what every weft-bench workload provides, and the helpers
 * they share. The output format and the workloads themselves are fixed by
 * docs/benchmarks.md; a workload checks its own result and fails loudly.
 */
#ifndef WEFT_BENCH_BENCH_H
#define WEFT_BENCH_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/weft.h>

typedef struct bench_workload {
    const char *name;
    /* Runs the workload once on rt at the given scale; returns the number of
     * operations, or a negative errno after printing why to stderr. */
    int64_t (*run)(weft_runtime *rt, double scale);
} bench_workload;

/* One function per workload, named after it (workloads_*.c). */
int64_t bench_spawn_many(weft_runtime *rt, double scale);
int64_t bench_spawn_join(weft_runtime *rt, double scale);
int64_t bench_yield_many(weft_runtime *rt, double scale);
int64_t bench_ping_pong(weft_runtime *rt, double scale);
int64_t bench_chained_spawn(weft_runtime *rt, double scale);
int64_t bench_abort_churn(weft_runtime *rt, double scale);
int64_t bench_token_cancel(weft_runtime *rt, double scale);
int64_t bench_mpsc(weft_runtime *rt, double scale);
int64_t bench_mutex(weft_runtime *rt, double scale);
int64_t bench_timers(weft_runtime *rt, double scale);
int64_t bench_timer_stall(weft_runtime *rt, double scale);
int64_t bench_idle_tasks(weft_runtime *rt, double scale);

/* n scaled, at least 1. */
static inline int64_t bench_scaled(int64_t n, double scale)
{
    int64_t v = (int64_t)((double)n * scale);
    return v < 1 ? 1 : v;
}

#define BENCH_CHECK(cond, ...)                                                \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "weft-bench: check failed: " __VA_ARGS__);       \
            fputc('\n', stderr);                                              \
            return -EPROTO;                                                   \
        }                                                                     \
    } while (0)

/*
 * A nested state machine, awaited from a root: join handles[0..n) in order.
 * Yields the sum of the tasks' values, or -EPROTO when one was torn down or
 * returned a negative value. Embed it in the root's frame, zeroed.
 */
struct bench_join_all {
    weft_frame f;
    weft_join *handles;
    int64_t n, i, sum;
    weft_outcome out;
    weft_poll rc;
};

weft_poll bench_join_all(weft_cx *cx, struct bench_join_all *j);

/* Run a root task on rt and return its value (or the error). */
int64_t bench_block_on(weft_runtime *rt, weft_poll_fn poll, void *frame, size_t size);

/* This process's resident set size now (VmRSS), in bytes; -1 if unknown. */
int64_t bench_rss_bytes(void);

#endif /* WEFT_BENCH_BENCH_H */
