/*
 * tests/reactor/test_interval.c - weft_interval: the first tick at once, no
 * tick early, each missed-tick policy (judged on the schedule it computes,
 * never on how fast anything ran), a withdrawn tick leaves the schedule
 * alone, cancel-safe tear-down and shutdown while ticking, and misuse.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <time.h>

#include <weft/weft.h>

#include "test_util.h"

#define MS 1000000ull
#define HOUR (3600ull * 1000 * MS)
#define PERIOD (20 * MS)
#define LATE (110 * MS)     /* 5.5 periods behind */

static weft_runtime *make(unsigned threads)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = threads, .shutdown_grace_ms = 50 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    return rt;
}

/* What a ticker saw: the scheduled instant of every tick, and the clock
 * before the late tick. The frame is copied at spawn, so it points here. */
struct ticks {
    uint64_t start, before_late;
    uint64_t sched[8];
    int early;
};

/* Ticks once, falls LATE behind, then ticks `n` more times. */
struct ticker {
    weft_frame f;
    weft_interval iv;
    weft_sleep nap;
    weft_missed_tick policy;
    struct ticks *out;
    int n, i;
    weft_poll rc;
};

static weft_poll ticker_poll(weft_cx *cx, void *p)
{
    struct ticker *t = p;
    WEFT_BEGIN(&t->f);
    t->out->start = weft_now_ns();
    if ((t->rc = weft_interval_init(&t->iv, t->out->start, PERIOD, t->policy)) != 0)
        WEFT_RETURN(&t->f, t->rc);
    WEFT_AWAIT(&t->f, t->rc, weft_interval_tick(cx, &t->iv));
    if (t->rc < 0)
        WEFT_RETURN(&t->f, t->rc);
    t->out->sched[0] = weft_interval_scheduled(&t->iv);
    WEFT_AWAIT(&t->f, t->rc, weft_sleep_for(cx, &t->nap, LATE));
    t->out->before_late = weft_now_ns();
    for (t->i = 1; t->i <= t->n; t->i++) {
        WEFT_AWAIT(&t->f, t->rc, weft_interval_tick(cx, &t->iv));
        if (t->rc < 0)
            WEFT_RETURN(&t->f, t->rc);
        t->out->sched[t->i] = weft_interval_scheduled(&t->iv);
        t->out->early += weft_now_ns() < t->out->sched[t->i];
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static void run_ticker(struct ticks *out, weft_missed_tick policy, int n)
{
    weft_runtime *rt = make(2);
    *out = (struct ticks){ 0 };
    struct ticker t = { .nap = WEFT_SLEEP_INIT, .policy = policy, .out = out, .n = n };
    weft_outcome o;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(ticker_poll, &t), &o), 0);
    cr_assert_eq(o.value, 0, "rc %lld", (long long)o.value);
    cr_assert_eq(out->sched[0], out->start, "the first tick is at the start");
    cr_assert_eq(out->early, 0, "a tick completed before its time");
    weft_runtime_free(rt);
}

Test(interval, burst_keeps_the_schedule)
{
    struct ticks t;
    run_ticker(&t, WEFT_TICK_BURST, 7);
    for (int i = 1; i <= 7; i++)
        cr_assert_eq(t.sched[i], t.start + (uint64_t)i * PERIOD, "tick %d", i);
    WEFT_ASSERT_NO_LEAKS();
}

Test(interval, delay_restarts_after_a_missed_tick)
{
    struct ticks t;
    run_ticker(&t, WEFT_TICK_DELAY, 3);
    cr_assert_eq(t.sched[1], t.start + PERIOD, "the late tick itself completes");
    cr_assert_geq(t.sched[2], t.before_late + PERIOD, "then a full period from then");
    cr_assert_eq(t.sched[3], t.sched[2] + PERIOD, "and on time from there");
    WEFT_ASSERT_NO_LEAKS();
}

Test(interval, skip_drops_missed_ticks_keeping_the_rhythm)
{
    struct ticks t;
    run_ticker(&t, WEFT_TICK_SKIP, 3);
    cr_assert_eq(t.sched[1], t.start + PERIOD);
    cr_assert_gt(t.sched[2], t.before_late, "no missed tick is replayed");
    cr_assert_eq((t.sched[2] - t.start) % PERIOD, 0, "still on the original grid");
    cr_assert_eq(t.sched[3], t.sched[2] + PERIOD);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation -------------------------------------------------------------- */

static _Atomic int drops;

static void count_drop(void *frame)
{
    (void)frame;
    atomic_fetch_add(&drops, 1);
}

/* Ticks once, then waits for a tick an hour away; reports how the wait ended
 * and whether the schedule moved. */
struct waiter {
    weft_frame f;
    weft_interval iv;
    uint64_t next_before;
    flag *ticked;               /* bumped once the wait for the far tick began */
    bool said;
    weft_poll rc, rc2;
};

/* The wait for the tick an hour away, saying once that it waits. */
static weft_poll waiter_wait(weft_cx *cx, struct waiter *w)
{
    weft_poll r = weft_interval_tick(cx, &w->iv);
    if (r == WEFT_PENDING && !w->said) {
        w->said = true;
        flag_add(w->ticked, 1);
    }
    return r;
}

static weft_poll waiter_poll(weft_cx *cx, void *p)
{
    struct waiter *w = p;
    WEFT_BEGIN(&w->f);
    WEFT_AWAIT(&w->f, w->rc, weft_interval_tick(cx, &w->iv));
    w->next_before = w->iv.weft_next;
    WEFT_AWAIT(&w->f, w->rc, waiter_wait(cx, w));
    if (w->iv.weft_next != w->next_before)
        WEFT_RETURN(&w->f, -EPROTO);
    WEFT_AWAIT(&w->f, w->rc2, weft_interval_tick(cx, &w->iv));
    WEFT_RETURN(&w->f, w->rc * 1000 + w->rc2);
    WEFT_END(&w->f);
}

static void spawn_waiter(weft_runtime *rt, flag *ticked, unsigned flags, weft_join *h)
{
    struct waiter w = { .ticked = ticked };
    cr_assert_eq(weft_interval_init(&w.iv, 0, HOUR, WEFT_TICK_SKIP), 0);
    weft_task_desc d = WEFT_TASK(waiter_poll, &w);
    d.drop = count_drop;
    d.flags = flags;
    cr_assert_eq(weft_spawn(rt, &d, h), 0);
}

/* Block until the waiter has ticked once and waits for the tick an hour
 * away. */
static void wait_ticked(flag *ticked)
{
    flag_wait_ge(ticked, 1);
}

Test(interval, withdrawn_tick_leaves_the_schedule)
{
    weft_runtime *rt = make(2);
    atomic_store(&drops, 0);
    static flag ticked;
    weft_join h;
    spawn_waiter(rt, &ticked, 0, &h);
    wait_ticked(&ticked);
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, -ECANCELED * 1000 - ECANCELED, "got %lld", (long long)out.value);
    cr_assert_eq(atomic_load(&drops), 1);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(interval, cancel_safe_tear_down_and_shutdown)
{
    weft_runtime *rt = make(2);
    atomic_store(&drops, 0);
    static flag t1, t2;
    weft_join h1, h2;
    spawn_waiter(rt, &t1, WEFT_TASK_CANCEL_SAFE, &h1);
    spawn_waiter(rt, &t2, WEFT_TASK_SHIELDED, &h2);
    wait_ticked(&t1);
    wait_ticked(&t2);
    cr_assert_eq(weft_abort(&h1), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h1, &out), 0);
    cr_assert_eq(out.status, -ECANCELED);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(weft_join_wait(&h2, &out), 0);
    cr_assert_eq(out.status, -ECANCELED);
    cr_assert_eq(atomic_load(&drops), 2);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- misuse and reset ------------------------------------------------------------ */

struct resetter {
    weft_frame f;
    weft_interval iv;
    uint64_t before;
    weft_poll rc;
};

static weft_poll resetter_poll(weft_cx *cx, void *p)
{
    struct resetter *r = p;
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->rc, weft_interval_tick(cx, &r->iv));
    r->before = weft_now_ns();
    if ((r->rc = weft_interval_reset(&r->iv)) != 0)
        WEFT_RETURN(&r->f, r->rc);
    WEFT_AWAIT(&r->f, r->rc, weft_interval_tick(cx, &r->iv));
    if (weft_interval_scheduled(&r->iv) < r->before + 5 * MS)
        WEFT_RETURN(&r->f, -EPROTO);
    WEFT_AWAIT(&r->f, r->rc, weft_interval_tick(cx, NULL));
    WEFT_RETURN(&r->f, r->rc);
    WEFT_END(&r->f);
}

Test(interval, misuse_and_reset)
{
    weft_interval iv = { .weft_tick_sleep = WEFT_SLEEP_INIT };
    cr_assert_eq(weft_interval_init(NULL, 0, MS, WEFT_TICK_BURST), -EINVAL);
    cr_assert_eq(weft_interval_init(&iv, 0, 0, WEFT_TICK_BURST), -EINVAL);
    cr_assert_eq(weft_interval_init(&iv, 0, MS, (weft_missed_tick)7), -EINVAL);
    cr_assert_eq(weft_interval_reset(&iv), -EINVAL, "never initialised");
    cr_assert_eq(weft_interval_reset(NULL), -EINVAL);
    cr_assert_eq(weft_interval_tick(NULL, &iv), -EINVAL);
    cr_assert_eq(weft_interval_scheduled(NULL), 0);
    cr_assert_eq(weft_interval_scheduled(&iv), 0);

    weft_runtime *rt = make(1);
    struct resetter r = { 0 };
    cr_assert_eq(weft_interval_init(&r.iv, 0, 5 * MS, WEFT_TICK_DELAY), 0);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(resetter_poll, &r), &out), 0);
    cr_assert_eq(out.value, -EINVAL);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}
