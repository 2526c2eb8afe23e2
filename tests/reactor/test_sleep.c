/*
 * tests/reactor/test_sleep.c - weft_sleep: never early, reusable, and every
 * way of withdrawing it - on the worker that owns its timer, from another
 * worker (handed over), by tearing down a cancel-safe task, and at shutdown -
 * ends with the timer unlinked and the task woken exactly once.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdatomic.h>

#include <weft/weft.h>

#include "test_util.h"

#define MS 1000000ull
#define HOUR (3600ull * 1000 * MS)

static _Atomic int drops;

static void count_drop(void *frame)
{
    (void)frame;
    atomic_fetch_add(&drops, 1);
}

static weft_runtime *make(unsigned threads)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = threads, .shutdown_grace_ms = 50 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    atomic_store(&drops, 0);
    return rt;
}

struct napper {
    weft_frame f;
    weft_sleep s;
    uint64_t ns, start, slept;
    int rounds, i;
    weft_poll rc;
};

/* Sleeps `ns` `rounds` times with the same weft_sleep; returns the last
 * result, or -EPROTO if a sleep ended early. */
static weft_poll napper_poll(weft_cx *cx, void *p)
{
    struct napper *n = p;
    WEFT_BEGIN(&n->f);
    for (n->i = 0; n->i < n->rounds; n->i++) {
        n->start = weft_now_ns();
        WEFT_AWAIT(&n->f, n->rc, weft_sleep_for(cx, &n->s, n->ns));
        if (n->rc < 0)
            WEFT_RETURN(&n->f, n->rc);
        if (weft_now_ns() - n->start < n->ns)
            WEFT_RETURN(&n->f, -EPROTO);
    }
    WEFT_RETURN(&n->f, 0);
    WEFT_END(&n->f);
}

static int spawn_napper(weft_runtime *rt, uint64_t ns, int rounds, unsigned flags, weft_join *h)
{
    struct napper n = { .s = WEFT_SLEEP_INIT, .ns = ns, .rounds = rounds };
    weft_task_desc d = { .poll = napper_poll, .frame = &n, .frame_size = sizeof n,
                         .drop = count_drop, .flags = flags };
    return weft_spawn(rt, &d, h);
}

Test(sleep, ends_on_time_never_early_and_is_reusable)
{
    weft_runtime *rt = make(2);
    weft_join h[16];
    for (int i = 0; i < 16; i++)
        cr_assert_eq(spawn_napper(rt, (uint64_t)(i % 4) * MS, 3, 0, &h[i]), 0);
    for (int i = 0; i < 16; i++) {
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        cr_assert_eq(out.value, 0, "task %d: %lld", i, (long long)out.value);
    }
    cr_assert_eq(atomic_load(&drops), 16);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* Sleeps end at their exact deadline, not at a tick boundary (reactor/wheel.h):
 * durations below, across and between the wheel's ticks and the millisecond,
 * many in one tick, must still never end early. */
Test(sleep, sub_millisecond_sleeps_are_never_early)
{
    static const uint64_t ns[] = { 1000, 30000, 65535, 65537, 250000, 999999, 1000001, 1500000 };
    enum { N = 2 * sizeof ns / sizeof ns[0] };
    weft_runtime *rt = make(2);
    weft_join h[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(spawn_napper(rt, ns[i % (N / 2)], 20, 0, &h[i]), 0);
    for (int i = 0; i < N; i++) {
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        cr_assert_eq(out.value, 0, "task %d: %lld", i, (long long)out.value);
    }
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(sleep, abort_withdraws_a_long_sleep_cooperative_and_cancel_safe)
{
    weft_runtime *rt = make(4);
    enum { N = 64 };
    weft_join h[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(spawn_napper(rt, HOUR, 1, i % 2 ? WEFT_TASK_CANCEL_SAFE : 0, &h[i]), 0);
    /* From a plain thread: each task is requeued wherever a worker takes it,
     * so withdrawals happen both on the timer's owner and handed over. */
    for (int i = 0; i < N; i++)
        cr_assert_eq(weft_abort(&h[i]), 0);
    for (int i = 0; i < N; i++) {
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
        if (i % 2) {
            /* torn down; no site if that happened before its first poll */
            cr_assert_eq(out.status, -ECANCELED);
        } else {
            cr_assert(out.status == 0 && out.value == -ECANCELED);
            cr_assert_not_null(out.cancel.delivered_at);
        }
    }
    cr_assert_eq(atomic_load(&drops), N);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(sleep, shutdown_with_armed_timers_tears_everything_down)
{
    weft_runtime *rt = make(2);
    enum { N = 32 };
    weft_join h[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(spawn_napper(rt, HOUR, 1, i % 3 ? 0 : WEFT_TASK_CANCEL_SAFE, &h[i]), 0);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    for (int i = 0; i < N; i++) {
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        cr_assert_eq(out.cancel.source, WEFT_CANCEL_SHUTDOWN);
        cr_assert(out.status == -ECANCELED || out.value == -ECANCELED);
    }
    cr_assert_eq(atomic_load(&drops), N);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(sleep, abort_racing_the_deadline_is_one_or_the_other)
{
    weft_runtime *rt = make(2);
    for (int round = 0; round < 300; round++) {
        weft_join h;
        cr_assert_eq(spawn_napper(rt, MS, 1, round % 2 ? WEFT_TASK_CANCEL_SAFE : 0, &h), 0);
        for (volatile int spin = 0; spin < (round % 7) * 20000; spin++)
            ;
        int ab = weft_abort(&h);
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        if (ab == 1) {          /* finished before the abort */
            cr_assert_eq(out.status, 0);
            cr_assert_eq(out.value, 0);
        } else if (out.status == 0) {
            /* cooperative: slept fully, or was cancelled (the did-not-happen
             * rule); never an early wake-up */
            cr_assert(out.value == 0 || out.value == -ECANCELED, "value %lld",
                      (long long)out.value);
        } else {
            cr_assert_eq(out.status, -ECANCELED);
        }
    }
    cr_assert_eq(atomic_load(&drops), 300);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct past {
    weft_frame f;
    weft_sleep s;
};

static weft_poll past_poll(weft_cx *cx, void *p)
{
    struct past *s = p;
    if (weft_sleep_until(NULL, &s->s, 0) != -EINVAL || weft_sleep_for(cx, NULL, 1) != -EINVAL)
        return -EPROTO;
    return weft_sleep_until(cx, &s->s, weft_now_ns() - 1);   /* ready at once */
}

Test(sleep, past_deadline_is_ready_and_null_is_einval)
{
    weft_runtime *rt = make(1);
    struct past p = { .s = WEFT_SLEEP_INIT };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(past_poll, &p), &out), 0);
    cr_assert_eq(out.value, 0);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* The contract's second half: a sleep whose deadline passed before it was
 * withdrawn happened, even when its worker was busy and had not fired the
 * timer. One worker: the sleeper spawns a hog and then arms a 2 ms sleep, so
 * the hog sits in the worker's LIFO slot and runs right after the sleeper's
 * poll, before the worker could fire anything, however slow the machine.
 * The hog holds the worker until the deadline is behind us and the sleeper
 * has been aborted, so the abort reaches the sleep before the wheel can
 * fire it. */
static _Atomic int hog_running, hog_release;
static _Atomic uint64_t sleeper_deadline;

static weft_poll hog_poll(weft_cx *cx, void *p)
{
    (void)cx;
    (void)p;
    atomic_store(&hog_running, 1);
    while (!atomic_load(&hog_release))
        ;
    return 0;
}

struct late {
    weft_frame f;
    weft_sleep s;
    struct past hog_frame;      /* any frame: the hog keeps no state */
    weft_join *hog;
    uint64_t deadline;
    weft_poll rc;
};

static weft_poll late_poll(weft_cx *cx, void *p)
{
    struct late *l = p;
    WEFT_BEGIN(&l->f);
    l->rc = weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(hog_poll, &l->hog_frame), l->hog);
    if (l->rc < 0)
        WEFT_RETURN(&l->f, l->rc);
    l->deadline = weft_now_ns() + 2 * MS;
    atomic_store(&sleeper_deadline, l->deadline);
    WEFT_AWAIT(&l->f, l->rc, weft_sleep_until(cx, &l->s, l->deadline));
    WEFT_RETURN(&l->f, l->rc);
    WEFT_END(&l->f);
}

static void wait_flag(_Atomic int *flag)
{
    while (!atomic_load(flag))
        sched_yield();
}

Test(sleep, withdrawn_after_its_deadline_on_a_busy_worker_yields_0)
{
    weft_runtime *rt = make(1);
    weft_join sleeper, hog;
    struct late l = { .s = WEFT_SLEEP_INIT, .hog = &hog };
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(late_poll, &l), &sleeper), 0);
    wait_flag(&hog_running);            /* the worker is stuck in the hog */
    while (weft_now_ns() <= atomic_load(&sleeper_deadline))
        sched_yield();                  /* a clock condition, not a sleep */
    cr_assert_eq(weft_abort(&sleeper), 0);
    atomic_store(&hog_release, 1);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&sleeper, &out), 0);
    cr_assert_eq(out.value, 0, "the sleep happened, yet it yielded %lld", (long long)out.value);
    cr_assert_eq(weft_join_wait(&hog, &out), 0);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}
