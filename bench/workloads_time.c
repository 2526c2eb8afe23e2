/*
 * bench/workloads_time.c - the timers workload of docs/benchmarks.md:
 * 100,000 tasks, task i sleeps 1 + (i * 7919 mod 10) ms, all awaited.
 */
#include <errno.h>

#include "bench.h"

struct sleeper_task {
    weft_frame f;
    weft_sleep sleep;
    uint64_t ms;
    uint64_t start;
    weft_poll rc;
};

static weft_poll sleeper_task_poll(weft_cx *cx, void *p)
{
    struct sleeper_task *s = p;
    WEFT_BEGIN(&s->f);
    s->start = weft_now_ns();
    WEFT_AWAIT(&s->f, s->rc, weft_sleep_for(cx, &s->sleep, s->ms * 1000000u));
    /* Never early: the wheel rounds deadlines up. */
    if (s->rc < 0 || weft_now_ns() - s->start < s->ms * 1000000u)
        WEFT_RETURN(&s->f, -EPROTO);
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

struct timers_root {
    weft_frame f;
    weft_join *handles;
    int64_t n, i;
    struct bench_join_all join;
    weft_poll rc;
};

static weft_poll timers_root_poll(weft_cx *cx, void *p)
{
    struct timers_root *r = p;
    WEFT_BEGIN(&r->f);
    for (r->i = 0; r->i < r->n; r->i++) {
        struct sleeper_task s = { .sleep = WEFT_SLEEP_INIT,
                                  .ms = 1 + (uint64_t)(r->i * 7919 % 10) };
        int rc = weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(sleeper_task_poll, &s),
                            &r->handles[r->i]);
        if (rc < 0)
            WEFT_RETURN(&r->f, rc);
    }
    r->join = (struct bench_join_all){ .handles = r->handles, .n = r->n };
    WEFT_AWAIT(&r->f, r->rc, bench_join_all(cx, &r->join));
    WEFT_RETURN(&r->f, r->rc == 0 ? r->n : -EPROTO);
    WEFT_END(&r->f);
}

int64_t bench_timers(weft_runtime *rt, double scale)
{
    struct timers_root r = { .n = bench_scaled(100000, scale) };
    r.handles = calloc((size_t)r.n, sizeof *r.handles);
    if (!r.handles)
        return -ENOMEM;
    int64_t n = bench_block_on(rt, timers_root_poll, &r, sizeof r);
    free(r.handles);
    if (n == -EPROTO)
        fprintf(stderr, "weft-bench: timers: a sleep failed or ended early\n");
    return n;
}
