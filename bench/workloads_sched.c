/*
 * bench/workloads_sched.c - the scheduler workloads of docs/benchmarks.md:
 * spawn_many, spawn_join, yield_many, chained_spawn, abort_churn.
 *
 * Each workload is a root task that does the work and returns the number of
 * operations after checking the result. Counts shrink with --scale.
 */
#include <errno.h>
#include <stdatomic.h>

#include "bench.h"

/* ---- a one-shot latch leaf: the last child wakes the root ---------------- */

enum { LATCH_EMPTY, LATCH_WAITING, LATCH_DONE };

struct latch {
    _Atomic int state;
    weft_waker waker;
};

static void latch_open(struct latch *l)
{
    /* Acq_rel: the waiter sees everything done before the latch opened; we see
     * the waker it stored before publishing WAITING. */
    if (atomic_exchange_explicit(&l->state, LATCH_DONE, memory_order_acq_rel) == LATCH_WAITING)
        weft_waker_wake(&l->waker);
}

static weft_withdraw latch_withdraw(weft_cx *cx, void *leaf)
{
    (void)cx;
    struct latch *l = leaf;
    int expected = LATCH_WAITING;
    if (!atomic_compare_exchange_strong_explicit(&l->state, &expected, LATCH_EMPTY,
                                                 memory_order_acq_rel, memory_order_acquire))
        return WEFT_WITHDRAW_RACED;
    weft_waker_drop(&l->waker);
    return WEFT_WITHDRAWN;
}

static weft_poll latch_wait(weft_cx *cx, struct latch *l)
{
    int s = atomic_load_explicit(&l->state, memory_order_acquire);
    if (s == LATCH_EMPTY) {
        l->waker = weft_cx_waker(cx);
        if (atomic_compare_exchange_strong_explicit(&l->state, &s, LATCH_WAITING,
                                                    memory_order_acq_rel, memory_order_acquire))
            s = LATCH_WAITING;
        else
            weft_waker_drop(&l->waker);
    }
    if (s == LATCH_DONE)
        return 0;
    weft_cx_suspend(cx, l, latch_withdraw);
    return WEFT_PENDING;
}


/* ---- spawn_many ------------------------------------------------------------ */

struct counter_shared {
    _Atomic int64_t count;
    int64_t target;
    struct latch done;
};

struct count_child {
    weft_frame f;
    struct counter_shared *sh;
};

static weft_poll count_child_poll(weft_cx *cx, void *p)
{
    (void)cx;
    struct count_child *c = p;
    struct counter_shared *sh = c->sh;
    int64_t target = sh->target;
    /* Acq_rel: every increment happens before the last one, which opens the
     * latch. After its increment a child must not touch *sh: the root may
     * already have freed it. */
    if (atomic_fetch_add_explicit(&sh->count, 1, memory_order_acq_rel) + 1 == target)
        latch_open(&sh->done);
    return 0;
}

struct spawn_many_root {
    weft_frame f;
    struct counter_shared sh;
    int64_t i;
    weft_poll r;
};

static weft_poll spawn_many_poll(weft_cx *cx, void *p)
{
    struct spawn_many_root *s = p;
    WEFT_BEGIN(&s->f);
    for (s->i = 0; s->i < s->sh.target; s->i++) {
        struct count_child c = { .sh = &s->sh };
        int rc = weft_spawn_detached(weft_cx_runtime(cx), &WEFT_TASK(count_child_poll, &c));
        if (rc < 0)
            WEFT_RETURN(&s->f, rc);
    }
    WEFT_AWAIT(&s->f, s->r, latch_wait(cx, &s->sh.done));
    WEFT_RETURN(&s->f, atomic_load(&s->sh.count));
    WEFT_END(&s->f);
}

int64_t bench_spawn_many(weft_runtime *rt, double scale)
{
    struct spawn_many_root *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->sh.target = bench_scaled(1000000, scale);
    int64_t n = bench_block_on(rt, spawn_many_poll, s, sizeof *s);
    int64_t want = s->sh.target;
    free(s);
    if (n < 0)
        return n;
    BENCH_CHECK(n == want, "spawn_many counted %lld of %lld", (long long)n, (long long)want);
    return n;
}

/* ---- spawn_join ------------------------------------------------------------ */

struct index_child {
    weft_frame f;
    int64_t index;
};

static weft_poll index_child_poll(weft_cx *cx, void *p)
{
    (void)cx;
    return ((struct index_child *)p)->index;
}

struct spawn_join_root {
    weft_frame f;
    weft_join *handles;
    int64_t n, i;
    struct bench_join_all join;
    weft_poll r;
};

static weft_poll spawn_join_poll(weft_cx *cx, void *p)
{
    struct spawn_join_root *s = p;
    WEFT_BEGIN(&s->f);
    for (s->i = 0; s->i < s->n; s->i++) {
        struct index_child c = { .index = s->i };
        int rc = weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(index_child_poll, &c), &s->handles[s->i]);
        if (rc < 0)
            WEFT_RETURN(&s->f, rc);
    }
    s->join = (struct bench_join_all){ .handles = s->handles, .n = s->n };
    WEFT_AWAIT(&s->f, s->r, bench_join_all(cx, &s->join));
    WEFT_RETURN(&s->f, s->r);
    WEFT_END(&s->f);
}

int64_t bench_spawn_join(weft_runtime *rt, double scale)
{
    struct spawn_join_root s = { .n = bench_scaled(200000, scale) };
    s.handles = calloc((size_t)s.n, sizeof *s.handles);
    if (!s.handles)
        return -ENOMEM;
    int64_t sum = bench_block_on(rt, spawn_join_poll, &s, sizeof s);
    free(s.handles);
    if (sum < 0)
        return sum;
    BENCH_CHECK(sum == s.n * (s.n - 1) / 2, "spawn_join sum %lld", (long long)sum);
    return s.n;
}

/* ---- yield_many ------------------------------------------------------------ */

struct yielder {
    weft_frame f;
    int64_t left;
    weft_poll r;
};

static weft_poll yielder_poll(weft_cx *cx, void *p)
{
    struct yielder *y = p;
    WEFT_BEGIN(&y->f);
    for (; y->left > 0; y->left--) {
        WEFT_YIELD(&y->f, y->r);
        if (y->r < 0)
            WEFT_RETURN(&y->f, y->r);
    }
    WEFT_RETURN(&y->f, 0);
    WEFT_END(&y->f);
}

struct fan_root {
    weft_frame f;
    weft_join *handles;
    int64_t tasks, per_task, i, done;
    weft_outcome out;           /* abort_churn checks each outcome itself */
    struct bench_join_all join;
    weft_poll r;
};

static weft_poll yield_many_poll(weft_cx *cx, void *p)
{
    struct fan_root *s = p;
    WEFT_BEGIN(&s->f);
    for (s->i = 0; s->i < s->tasks; s->i++) {
        struct yielder y = { .left = s->per_task };
        int rc = weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(yielder_poll, &y), &s->handles[s->i]);
        if (rc < 0)
            WEFT_RETURN(&s->f, rc);
    }
    s->join = (struct bench_join_all){ .handles = s->handles, .n = s->tasks };
    WEFT_AWAIT(&s->f, s->r, bench_join_all(cx, &s->join));
    WEFT_RETURN(&s->f, s->r == 0 ? s->tasks * s->per_task : -EPROTO);
    WEFT_END(&s->f);
}

int64_t bench_yield_many(weft_runtime *rt, double scale)
{
    struct fan_root s = { .tasks = 1000, .per_task = bench_scaled(1000, scale) };
    s.handles = calloc((size_t)s.tasks, sizeof *s.handles);
    if (!s.handles)
        return -ENOMEM;
    int64_t n = bench_block_on(rt, yield_many_poll, &s, sizeof s);
    free(s.handles);
    if (n < 0)
        return n;
    BENCH_CHECK(n == s.tasks * s.per_task, "yield_many did %lld yields", (long long)n);
    return n;
}

/* ---- chained_spawn ---------------------------------------------------------- */

struct chain_link {
    weft_frame f;
    int64_t left;
    struct counter_shared *sh;
};

static weft_poll chain_link_poll(weft_cx *cx, void *p)
{
    struct chain_link *c = p;
    atomic_fetch_add_explicit(&c->sh->count, 1, memory_order_relaxed);
    if (c->left == 1) {
        latch_open(&c->sh->done);
        return 0;
    }
    struct chain_link next = { .left = c->left - 1, .sh = c->sh };
    int rc = weft_spawn_detached(weft_cx_runtime(cx), &WEFT_TASK(chain_link_poll, &next));
    if (rc < 0) {
        atomic_store(&c->sh->count, rc);
        latch_open(&c->sh->done);
    }
    return 0;
}

static weft_poll chained_spawn_poll(weft_cx *cx, void *p)
{
    struct spawn_many_root *s = p;
    WEFT_BEGIN(&s->f);
    {
        struct chain_link first = { .left = s->sh.target, .sh = &s->sh };
        int rc = weft_spawn_detached(weft_cx_runtime(cx), &WEFT_TASK(chain_link_poll, &first));
        if (rc < 0)
            WEFT_RETURN(&s->f, rc);
    }
    WEFT_AWAIT(&s->f, s->r, latch_wait(cx, &s->sh.done));
    WEFT_RETURN(&s->f, atomic_load(&s->sh.count));
    WEFT_END(&s->f);
}

int64_t bench_chained_spawn(weft_runtime *rt, double scale)
{
    struct spawn_many_root *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->sh.target = bench_scaled(1000000, scale);
    int64_t n = bench_block_on(rt, chained_spawn_poll, s, sizeof *s);
    int64_t want = s->sh.target;
    free(s);
    if (n < 0)
        return n;
    BENCH_CHECK(n == want, "chained_spawn reached %lld of %lld", (long long)n, (long long)want);
    return n;
}

/* ---- abort_churn ------------------------------------------------------------ */

static _Atomic int64_t churn_drops;

struct sleeper {
    weft_frame f;
    weft_poll r;
};

static weft_poll sleeper_poll(weft_cx *cx, void *p)
{
    struct sleeper *s = p;
    WEFT_BEGIN(&s->f);
    WEFT_AWAIT(&s->f, s->r, weft_pending(cx));
    WEFT_RETURN(&s->f, 1);  /* never reached: the task is cancel-safe */
    WEFT_END(&s->f);
}

static void sleeper_drop(void *frame)
{
    (void)frame;
    atomic_fetch_add_explicit(&churn_drops, 1, memory_order_relaxed);
}

static weft_poll abort_churn_poll(weft_cx *cx, void *p)
{
    struct fan_root *s = p;
    WEFT_BEGIN(&s->f);
    for (s->i = 0; s->i < s->tasks; s->i++) {
        weft_task_desc d = { .poll = sleeper_poll, .frame_size = sizeof(struct sleeper),
                             .drop = sleeper_drop, .flags = WEFT_TASK_CANCEL_SAFE };
        int rc = weft_spawn(weft_cx_runtime(cx), &d, &s->handles[s->i]);
        if (rc < 0)
            WEFT_RETURN(&s->f, rc);
    }
    for (s->i = 0; s->i < s->tasks; s->i++)
        if (weft_abort(&s->handles[s->i]) < 0)
            WEFT_RETURN(&s->f, -EPROTO);
    for (s->i = 0; s->i < s->tasks; s->i++) {
        WEFT_AWAIT(&s->f, s->r, weft_join_await(cx, &s->handles[s->i], &s->out));
        if (s->r != -ECANCELED || s->out.cancel.source != WEFT_CANCEL_ABORT)
            WEFT_RETURN(&s->f, -EPROTO);
        s->done++;
    }
    WEFT_RETURN(&s->f, s->done);
    WEFT_END(&s->f);
}

int64_t bench_abort_churn(weft_runtime *rt, double scale)
{
    struct fan_root s = { .tasks = bench_scaled(500000, scale) };
    s.handles = calloc((size_t)s.tasks, sizeof *s.handles);
    if (!s.handles)
        return -ENOMEM;
    atomic_store(&churn_drops, 0);
    int64_t n = bench_block_on(rt, abort_churn_poll, &s, sizeof s);
    free(s.handles);
    if (n < 0)
        return n;
    BENCH_CHECK(n == s.tasks, "abort_churn saw %lld cancelled joins", (long long)n);
    BENCH_CHECK(atomic_load(&churn_drops) == s.tasks, "abort_churn ran %lld drop hooks",
                (long long)atomic_load(&churn_drops));
    return n;
}
