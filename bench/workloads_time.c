/*
 * bench/workloads_time.c - the timer workloads of docs/benchmarks.md:
 *   timers       100,000 tasks, task i sleeps 1 + (i * 7919 mod 10) ms, all
 *                awaited;
 *   timer_stall  how late sleeps end while one worker at a time is stuck in
 *                a 50 ms poll: 64 tasks sleep 1-4 ms over and over and note
 *                each sleep's lateness, while a staller task sleeps 20 ms
 *                and then spins 50 ms in one poll, 20 times; prints the
 *                lateness percentiles on stderr (p50_us, p99_us, max_us).
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

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

/* ---- timer_stall --------------------------------------------------------- */

#define STALL_SLEEPERS 64
#define STALL_ROUNDS 20
#define STALL_SPIN_NS 50000000u
#define STALL_GAP_NS 20000000u
#define STALL_MAX_SAMPLES (1u << 20)
#define MS_NS 1000000u

struct stall_shared {
    _Atomic bool stop;
    _Atomic uint32_t nsamples;
    _Atomic uint32_t early;
    uint32_t *late_us;          /* STALL_MAX_SAMPLES */
};

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct stall_sleeper {
    weft_frame f;
    weft_sleep sleep;
    struct stall_shared *sh;
    uint64_t id, k, deadline;
    weft_poll rc;
};

/* Sleeps 1 + (id + k) mod 4 ms, over and over, and notes how late each
 * sleep ended against its deadline (the same clock the runtime uses). */
static weft_poll stall_sleeper_poll(weft_cx *cx, void *p)
{
    struct stall_sleeper *s = p;
    WEFT_BEGIN(&s->f);
    for (s->k = 0; !atomic_load_explicit(&s->sh->stop, memory_order_relaxed); s->k++) {
        s->deadline = monotonic_ns() + (1 + (s->id + s->k) % 4) * MS_NS;
        WEFT_AWAIT(&s->f, s->rc, weft_sleep_until(cx, &s->sleep, s->deadline));
        if (s->rc < 0)
            WEFT_RETURN(&s->f, s->rc);
        uint64_t now = monotonic_ns();
        if (now < s->deadline)
            atomic_fetch_add_explicit(&s->sh->early, 1, memory_order_relaxed);
        uint32_t i = atomic_fetch_add_explicit(&s->sh->nsamples, 1, memory_order_relaxed);
        if (i < STALL_MAX_SAMPLES) {
            uint64_t late = now > s->deadline ? (now - s->deadline) / 1000 : 0;
            s->sh->late_us[i] = late > UINT32_MAX ? UINT32_MAX : (uint32_t)late;
        }
    }
    WEFT_RETURN(&s->f, (int64_t)s->k);
    WEFT_END(&s->f);
}

struct stall_staller {
    weft_frame f;
    weft_sleep sleep;
    struct stall_shared *sh;
    int64_t round, rounds;
    weft_poll rc;
};

/* rounds x (sleep 20 ms, then spin 50 ms without returning); then stop. */
static weft_poll stall_staller_poll(weft_cx *cx, void *p)
{
    struct stall_staller *s = p;
    WEFT_BEGIN(&s->f);
    for (s->round = 0; s->round < s->rounds; s->round++) {
        WEFT_AWAIT(&s->f, s->rc, weft_sleep_for(cx, &s->sleep, STALL_GAP_NS));
        if (s->rc < 0)
            break;
        uint64_t until = monotonic_ns() + STALL_SPIN_NS;
        while (monotonic_ns() < until)
            ;
    }
    atomic_store(&s->sh->stop, true);
    WEFT_RETURN(&s->f, s->rc < 0 ? s->rc : 0);
    WEFT_END(&s->f);
}

struct stall_root {
    weft_frame f;
    struct stall_shared *sh;
    int64_t rounds, i;
    weft_join handles[STALL_SLEEPERS + 1];
    struct bench_join_all join;
    weft_poll rc;
};

static weft_poll stall_root_poll(weft_cx *cx, void *p)
{
    struct stall_root *r = p;
    WEFT_BEGIN(&r->f);
    for (r->i = 0; r->i < STALL_SLEEPERS; r->i++) {
        struct stall_sleeper s = { .sleep = WEFT_SLEEP_INIT, .sh = r->sh, .id = (uint64_t)r->i };
        int rc = weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(stall_sleeper_poll, &s),
                            &r->handles[r->i]);
        if (rc < 0)
            WEFT_RETURN(&r->f, rc);
    }
    struct stall_staller st = { .sleep = WEFT_SLEEP_INIT, .sh = r->sh, .rounds = r->rounds };
    int rc = weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(stall_staller_poll, &st),
                        &r->handles[STALL_SLEEPERS]);
    if (rc < 0)
        WEFT_RETURN(&r->f, rc);
    r->join = (struct bench_join_all){ .handles = r->handles, .n = STALL_SLEEPERS + 1 };
    WEFT_AWAIT(&r->f, r->rc, bench_join_all(cx, &r->join));
    WEFT_RETURN(&r->f, r->rc);
    WEFT_END(&r->f);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank, as the other latency rows: element ceil(q n / 1000) - 1. */
static uint32_t permille(const uint32_t *sorted, uint32_t n, uint32_t q)
{
    uint64_t rank = ((uint64_t)q * n + 999) / 1000;
    return sorted[rank ? rank - 1 : 0];
}

int64_t bench_timer_stall(weft_runtime *rt, double scale)
{
    struct stall_shared sh = { .late_us = calloc(STALL_MAX_SAMPLES, sizeof(uint32_t)) };
    if (!sh.late_us)
        return -ENOMEM;
    struct stall_root r = { .sh = &sh, .rounds = bench_scaled(STALL_ROUNDS, scale) };
    int64_t sleeps = bench_block_on(rt, stall_root_poll, &r, sizeof r);
    uint32_t n = atomic_load(&sh.nsamples);
    n = n < STALL_MAX_SAMPLES ? n : STALL_MAX_SAMPLES;
    if (sleeps >= 0 && (n == 0 || atomic_load(&sh.early) > 0)) {
        fprintf(stderr, "weft-bench: timer_stall: %u sleeps ended early, %u measured\n",
                atomic_load(&sh.early), n);
        sleeps = -EPROTO;
    }
    if (sleeps >= 0) {
        qsort(sh.late_us, n, sizeof *sh.late_us, cmp_u32);
        fprintf(stderr, "p50_us %u\np99_us %u\nmax_us %u\n", permille(sh.late_us, n, 500),
                permille(sh.late_us, n, 990), sh.late_us[n - 1]);
    }
    free(sh.late_us);
    return sleeps;
}
