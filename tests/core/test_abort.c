/*
 * tests/core/test_abort.c - weft_abort on idle, running, finished, cancel-safe
 * and shielded tasks; withdrawal of a join await; leaves that race or settle
 * their withdrawal asynchronously; abort racing completion.
 */
#include <sched.h>
#include <string.h>
#include <time.h>

#include "core_util.h"

TestSuite(abort, .timeout = 60);

static flag drops;
static _Atomic int drop_count_by_id[2048];

static void count_drop(void *p)
{
    (void)p;
    flag_add(&drops, 1);
}

/* Let CLOCK_MONOTONIC_COARSE move on, so a hold measured across this call
 * is at least one tick long. The loop waits for the clock itself to move;
 * the naps only pace it. */
static void coarse_tick(void)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &a);
    do {
        const struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
        clock_gettime(CLOCK_MONOTONIC_COARSE, &b);
    } while (a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ---- a cooperative task spinning on yields until aborted ---------------- */

static int spin_yield_line, spin_second_line;
static flag spin_started;

struct spin {
    weft_frame f;
    int64_t rc, rc2;
    int64_t yields;
};

static weft_poll spin_poll(weft_cx *cx, void *p)
{
    struct spin *s = p;
    WEFT_BEGIN(&s->f);
    flag_add(&spin_started, 1);
    for (;;) {
        spin_yield_line = __LINE__; WEFT_YIELD(&s->f, s->rc);
        if (s->rc == -ECANCELED)
            break;
        if (s->rc != 0)
            WEFT_RETURN(&s->f, -1);
        s->yields++;
    }
    /* Level-triggered: the next await is cancelled at once too. */
    spin_second_line = __LINE__; WEFT_AWAIT(&s->f, s->rc2, ready_now(5));
    WEFT_RETURN(&s->f, s->rc2 == -ECANCELED ? 1000 : -2);
    WEFT_END(&s->f);
}

Test(abort, running_cooperative_task_sees_ecanceled_at_next_await)
{
    weft_runtime *rt = rt_make(2, 0);
    struct spin fr = { 0 };
    weft_task_desc d = DESC(spin_poll, &fr, count_drop, 0);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&spin_started, 1);
    cr_assert_eq(weft_abort(&h), 0);
    cr_assert_not_null(h.weft_task, "abort keeps the handle");
    /* A second abort is accepted and changes nothing. */
    int again = weft_abort(&h);
    cr_assert(again == 0 || again == 1, "second abort: %d", again);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 1000, "value %ld", (long)out.value);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
    cr_assert_not_null(out.cancel.delivered_at);
    cr_assert_eq(out.cancel.delivered_at->line, spin_yield_line,
                 "delivered at line %d, yield at %d", out.cancel.delivered_at->line,
                 spin_yield_line);
    cr_assert(ends_with(out.cancel.delivered_at->file, "test_abort.c"));
    cr_assert_str_eq(out.cancel.delivered_at->func, "spin_poll");
    cr_assert_eq(out.cancel.shield_held_ns, 0);
    cr_assert_eq(flag_get(&drops), 1);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a task idle on a leaf that never completes -------------------------- */

static flag parked;
static _Atomic int polls_after_park;

struct idle {
    weft_frame f;
    forever_leaf leaf;
    int64_t rc, rc2;
};

static int idle_await_line;

static weft_poll idle_poll(weft_cx *cx, void *p)
{
    struct idle *t = p;
    WEFT_BEGIN(&t->f);
    idle_await_line = __LINE__; WEFT_AWAIT(&t->f, t->rc, forever_poll(cx, &t->leaf));
    atomic_fetch_add(&polls_after_park, 1);
    WEFT_YIELD(&t->f, t->rc2);
    WEFT_RETURN(&t->f, t->rc == -ECANCELED && t->rc2 == -ECANCELED
                           && t->leaf.withdrawn == 1 && !t->leaf.armed ? 77 : -1);
    WEFT_END(&t->f);
}

Test(abort, idle_cooperative_task_on_a_leaf_that_never_completes)
{
    weft_runtime *rt = rt_make(2, 0);
    struct idle fr = { .leaf.on_arm = &parked };
    weft_task_desc d = DESC(idle_poll, &fr, count_drop, 0);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&parked, 1);   /* the leaf is in flight */
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 77, "value %ld", (long)out.value);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
    cr_assert_not_null(out.cancel.delivered_at);
    cr_assert_eq(out.cancel.delivered_at->line, idle_await_line);
    cr_assert_eq(flag_get(&drops), 1);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

static _Atomic int safe_leaf_withdrawn;

static void idle_safe_drop(void *p)
{
    struct idle *t = p;
    atomic_store(&safe_leaf_withdrawn, t->leaf.withdrawn * 10 + t->leaf.armed);
    flag_add(&drops, 1);
}

Test(abort, idle_cancel_safe_task_is_torn_down_without_resuming)
{
    weft_runtime *rt = rt_make(2, 0);
    struct idle fr = { .leaf.on_arm = &parked };
    weft_task_desc d = DESC(idle_poll, &fr, idle_safe_drop, WEFT_TASK_CANCEL_SAFE);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&parked, 1);   /* the leaf is in flight */
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, -ECANCELED);
    cr_assert_eq(out.value, 0);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
    cr_assert_not_null(out.cancel.delivered_at, "torn down at its await");
    cr_assert_eq(out.cancel.delivered_at->line, idle_await_line);
    cr_assert_eq(atomic_load(&polls_after_park), 0, "never resumed after the abort");
    cr_assert_eq(flag_get(&drops), 1);
    cr_assert_eq(atomic_load(&safe_leaf_withdrawn), 10,
                 "the leaf was withdrawn once before the drop hook ran");
    rt_done(rt);
    cr_assert_eq(flag_get(&drops), 1);
    WEFT_ASSERT_NO_LEAKS();
}

Test(abort, running_cancel_safe_task_stops_at_next_await)
{
    weft_runtime *rt = rt_make(2, 0);
    struct spin fr = { 0 };
    weft_task_desc d = DESC(spin_poll, &fr, count_drop, WEFT_TASK_CANCEL_SAFE);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&spin_started, 1);
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, -ECANCELED);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
    cr_assert_not_null(out.cancel.delivered_at);
    cr_assert_eq(out.cancel.delivered_at->line, spin_yield_line);
    cr_assert_eq(flag_get(&drops), 1);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(abort, cancel_safe_task_aborted_right_after_spawn)
{
    /* The request lands before the first poll or while the task is parked;
     * either way the task never gets past its await. */
    weft_runtime *rt = rt_make(1, 0);
    struct idle fr = { 0 };
    weft_task_desc d = DESC(idle_poll, &fr, count_drop, WEFT_TASK_CANCEL_SAFE);
    for (int i = 0; i < 100; i++) {
        weft_join h = WEFT_JOIN_INIT;
        cr_assert_eq(weft_spawn(rt, &d, &h), 0);
        cr_assert_eq(weft_abort(&h), 0);
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        cr_assert_eq(out.status, -ECANCELED);
        cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
    }
    cr_assert_eq(atomic_load(&polls_after_park), 0);
    cr_assert_eq(flag_get(&drops), 100);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a finished task ---------------------------------------------------- */

struct val {
    weft_frame f;
    int64_t v;
};

static weft_poll val_poll(weft_cx *cx, void *p)
{
    struct val *t = p;
    (void)cx;
    return t->v;
}

Test(abort, finished_task_abort_returns_1_and_changes_nothing)
{
    weft_runtime *rt = rt_make(2, 0);
    struct val fr = { .v = 9 };
    weft_task_desc d = DESC(val_poll, &fr, count_drop, WEFT_TASK_CANCEL_SAFE);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    while (!weft_join_is_finished(&h))
        sched_yield();
    cr_assert_eq(weft_abort(&h), 1);
    cr_assert_eq(weft_abort(&h), 1);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 9);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_NONE, "a no-op abort is not recorded");
    cr_assert_null(out.cancel.delivered_at);
    cr_assert_eq(flag_get(&drops), 1);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- shields -------------------------------------------------------------- */

static flag in_shield, release_shield;
static _Atomic int resumed_after_shield;
static int after_shield_line;

struct shielded {
    weft_frame f;
    int64_t rc;
    int held_yields;        /* yields that returned 0 after the request */
    bool saw_request;
};

static weft_poll shielded_poll(weft_cx *cx, void *p)
{
    struct shielded *s = p;
    WEFT_BEGIN(&s->f);
    weft_shield_enter(cx);
    weft_shield_enter(cx);      /* nested */
    flag_add(&in_shield, 1);
    while (flag_get(&release_shield) == 0) {
        WEFT_YIELD(&s->f, s->rc);
        if (s->rc != 0)
            WEFT_RETURN(&s->f, -100);   /* delivered inside the shield */
        if (weft_cx_cancel_requested(cx))
            s->held_yields++;
    }
    s->saw_request = weft_cx_cancel_requested(cx);
    weft_shield_exit(cx);
    /* Still shielded by the outer region. */
    WEFT_YIELD(&s->f, s->rc);
    if (s->rc != 0)
        WEFT_RETURN(&s->f, -101);
    s->held_yields++;
    weft_shield_exit(cx);
    after_shield_line = __LINE__; WEFT_YIELD(&s->f, s->rc);
    atomic_fetch_add(&resumed_after_shield, 1);
    WEFT_RETURN(&s->f, s->rc == -ECANCELED && s->saw_request ? 500 + s->held_yields : -102);
    WEFT_END(&s->f);
}

static void run_shielded(unsigned flags, weft_outcome *out)
{
    weft_runtime *rt = rt_make(2, 0);
    struct shielded fr = { 0 };
    weft_task_desc d = DESC(shielded_poll, &fr, count_drop, flags);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&in_shield, 1);
    cr_assert_eq(weft_abort(&h), 0);
    coarse_tick();      /* the hold spans a measurable time on any clock */
    flag_set(&release_shield, 1);
    cr_assert_eq(weft_join_wait(&h, out), 0);
    cr_assert_eq(flag_get(&drops), 1);
    rt_done(rt);
}

Test(abort, cooperative_task_in_shield_gets_request_after_shield)
{
    weft_outcome out;
    run_shielded(0, &out);
    cr_assert_eq(out.status, 0);
    cr_assert_gt(out.value, 500, "value %ld", (long)out.value);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
    cr_assert_not_null(out.cancel.delivered_at);
    cr_assert_eq(out.cancel.delivered_at->line, after_shield_line);
    cr_assert_gt(out.cancel.shield_held_ns, 0);
    cr_assert_eq(atomic_load(&resumed_after_shield), 1);
    WEFT_ASSERT_NO_LEAKS();
}

Test(abort, cancel_safe_task_in_shield_torn_down_after_shield)
{
    weft_outcome out;
    run_shielded(WEFT_TASK_CANCEL_SAFE, &out);
    cr_assert_eq(out.status, -ECANCELED);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
    cr_assert_not_null(out.cancel.delivered_at);
    cr_assert_eq(out.cancel.delivered_at->line, after_shield_line);
    cr_assert_gt(out.cancel.shield_held_ns, 0);
    cr_assert_eq(atomic_load(&resumed_after_shield), 0, "not resumed after the shield");
    WEFT_ASSERT_NO_LEAKS();
}

struct whole {
    weft_frame f;
    int64_t rc;
    int64_t ok;
};

static weft_poll whole_poll(weft_cx *cx, void *p)
{
    struct whole *s = p;
    WEFT_BEGIN(&s->f);
    flag_add(&in_shield, 1);
    while (flag_get(&release_shield) == 0) {
        WEFT_YIELD(&s->f, s->rc);
        s->ok += s->rc == 0;
        if (s->rc != 0)
            WEFT_RETURN(&s->f, -1);
    }
    WEFT_YIELD(&s->f, s->rc);
    if (s->rc != 0 || !weft_cx_cancel_requested(cx))
        WEFT_RETURN(&s->f, -2);
    WEFT_RETURN(&s->f, 42);
    WEFT_END(&s->f);
}

Test(abort, task_spawned_shielded_never_sees_the_request)
{
    weft_runtime *rt = rt_make(2, 0);
    struct whole fr = { 0 };
    weft_task_desc d = DESC(whole_poll, &fr, count_drop, WEFT_TASK_SHIELDED | WEFT_TASK_CANCEL_SAFE);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&in_shield, 1);
    cr_assert_eq(weft_abort(&h), 0);
    coarse_tick();
    flag_set(&release_shield, 1);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 42);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
    cr_assert_null(out.cancel.delivered_at, "never delivered");
    cr_assert_gt(out.cancel.shield_held_ns, 0);
    cr_assert_eq(flag_get(&drops), 1);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a join await withdrawn by abort -------------------------------------- */

struct forever {
    weft_frame f;
    forever_leaf leaf;
    int64_t rc;
};

static weft_poll forever_task_poll(weft_cx *cx, void *p)
{
    struct forever *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->rc, forever_poll(cx, &t->leaf));
    WEFT_RETURN(&t->f, t->rc == -ECANCELED ? 31 : -1);
    WEFT_END(&t->f);
}

static flag awaiting;
static int join_await_line;

struct waiter {
    weft_frame f;
    weft_join *target;
    weft_outcome out;
    int64_t rc, rc2;
};

static weft_poll waiter_poll(weft_cx *cx, void *p)
{
    struct waiter *w = p;
    WEFT_BEGIN(&w->f);
    flag_add(&awaiting, 1);
    join_await_line = __LINE__; WEFT_AWAIT(&w->f, w->rc, weft_join_await(cx, w->target, &w->out));
    /* Level-triggered: awaiting the join again is cancelled at once and
     * still leaves the handle alone. */
    WEFT_AWAIT(&w->f, w->rc2, weft_join_await(cx, w->target, &w->out));
    WEFT_RETURN(&w->f, w->rc == -ECANCELED && w->rc2 == -ECANCELED ? 64 : -1);
    WEFT_END(&w->f);
}

Test(abort, join_await_withdrawn_by_abort_leaves_target_running)
{
    weft_runtime *rt = rt_make(2, 0);
    static weft_join target = WEFT_JOIN_INIT;
    struct forever tf = { 0 };
    weft_task_desc dt = DESC(forever_task_poll, &tf, count_drop, 0);
    cr_assert_eq(weft_spawn(rt, &dt, &target), 0);

    struct waiter wf = { .target = &target };
    weft_task_desc dw = DESC(waiter_poll, &wf, count_drop, 0);
    weft_join hw = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &dw, &hw), 0);
    flag_wait_ge(&awaiting, 1);
    cr_assert_eq(weft_abort(&hw), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&hw, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 64);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
    cr_assert_not_null(out.cancel.delivered_at);
    cr_assert_eq(out.cancel.delivered_at->line, join_await_line);

    /* The target is untouched: still running, handle still valid. */
    cr_assert_not_null(target.weft_task);
    cr_assert_not(weft_join_is_finished(&target));
    cr_assert_eq(flag_get(&drops), 1);
    cr_assert_eq(weft_abort(&target), 0);
    cr_assert_eq(weft_join_wait(&target, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 31);
    cr_assert_eq(flag_get(&drops), 2);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(abort, cancel_safe_join_awaiter_torn_down_target_joinable_later)
{
    weft_runtime *rt = rt_make(2, 0);
    static weft_join target = WEFT_JOIN_INIT;
    struct forever ff = { 0 };
    weft_task_desc dt = DESC(forever_task_poll, &ff, count_drop, 0);
    cr_assert_eq(weft_spawn(rt, &dt, &target), 0);
    struct waiter wf = { .target = &target };
    weft_task_desc dw = DESC(waiter_poll, &wf, count_drop, WEFT_TASK_CANCEL_SAFE);
    weft_join hw = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &dw, &hw), 0);
    flag_wait_ge(&awaiting, 1);
    cr_assert_eq(weft_abort(&hw), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&hw, &out), 0);
    cr_assert_eq(out.status, -ECANCELED);
    cr_assert_not_null(target.weft_task);
    cr_assert_eq(weft_abort(&target), 0);
    cr_assert_eq(weft_join_wait(&target, &out), 0);
    cr_assert_eq(out.value, 31);
    cr_assert_eq(flag_get(&drops), 2);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a leaf that completed before the withdrawal wins -------------------- */

static flag gate_waiting;

struct gated {
    weft_frame f;
    gate_leaf *g;
    int64_t rc, rc2;
};

static weft_poll gated_poll(weft_cx *cx, void *p)
{
    struct gated *t = p;
    WEFT_BEGIN(&t->f);
    flag_add(&gate_waiting, 1);
    WEFT_AWAIT(&t->f, t->rc, gate_poll(cx, t->g));
    WEFT_YIELD(&t->f, t->rc2);
    WEFT_RETURN(&t->f, t->rc * 10 + (t->rc2 == -ECANCELED));
    WEFT_END(&t->f);
}

Test(abort, leaf_that_completed_before_withdrawal_reports_real_result)
{
    weft_runtime *rt = rt_make(2, 0);
    gate_leaf g;
    gate_init(&g);
    g.wake_on_open = false;     /* completed, but the task is woken by the abort */
    struct gated fr = { .g = &g };
    weft_task_desc d = DESC(gated_poll, &fr, count_drop, 0);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&gate_waiting, 1);
    /* Wait until the task has polled the gate (it holds a waker), so the
     * abort finds the leaf in flight; whether the task is still inside that
     * poll does not matter. */
    gate_wait_armed(&g);
    gate_open(&g, 7);
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 71, "real result 7, then -ECANCELED at the yield; got %ld",
                 (long)out.value);
    cr_assert_eq(g.hook_calls, 1);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
    cr_assert_not_null(out.cancel.delivered_at, "delivered at the yield");
    gate_release(&g);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a leaf whose withdrawal settles asynchronously ----------------------- */

/*
 * The hook answers PENDING (like an io_uring cancel in flight) and settles at
 * once by waking the task, which then polls the leaf for the outcome of the
 * withdrawal: -ECANCELED. Every later await must still be cancelled.
 */
struct slow_leaf {
    weft_waker w;
    bool armed, settled;
    int hook_calls, polls_after_settle;
};

static weft_withdraw slow_withdraw(weft_cx *cx, void *leaf)
{
    (void)cx;
    struct slow_leaf *l = leaf;
    l->hook_calls++;
    if (l->settled)
        return WEFT_WITHDRAWN;
    l->settled = true;
    l->armed = false;
    weft_waker_wake(&l->w);     /* the withdrawal completes right away */
    return WEFT_WITHDRAW_PENDING;
}

static weft_poll slow_poll(weft_cx *cx, struct slow_leaf *l)
{
    if (l->settled) {
        l->polls_after_settle++;
        return -ECANCELED;
    }
    weft_cx_suspend(cx, l, slow_withdraw);
    if (!l->armed) {
        l->w = weft_cx_waker(cx);
        l->armed = true;
        flag_add(&parked, 1);   /* in flight from here on */
    }
    return WEFT_PENDING;
}

static int slow_second_line;
static _Atomic int slow_resumed;

struct slow {
    weft_frame f;
    struct slow_leaf leaf;
    int64_t rc, rc2;
};

static weft_poll slow_task_poll(weft_cx *cx, void *p)
{
    struct slow *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->rc, slow_poll(cx, &t->leaf));
    atomic_fetch_add(&slow_resumed, 1);
    slow_second_line = __LINE__; WEFT_AWAIT(&t->f, t->rc2, ready_now(5));
    WEFT_RETURN(&t->f, t->rc * 100 + t->rc2);
    WEFT_END(&t->f);
}

Test(abort, async_withdrawal_then_every_later_await_is_cancelled)
{
    weft_runtime *rt = rt_make(2, 0);
    struct slow fr = { 0 };
    weft_task_desc d = DESC(slow_task_poll, &fr, count_drop, 0);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&parked, 1);
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, 0);
    /* First await: the leaf reports -ECANCELED after its withdrawal; second
     * await: level-triggered -ECANCELED, not the ready value 5. */
    cr_assert_eq(out.value, -ECANCELED * 100 + -ECANCELED,
                 "second await after an async withdrawal returned %ld, not -ECANCELED",
                 (long)(out.value - -ECANCELED * 100));
    cr_assert_not_null(out.cancel.delivered_at, "the cancellation was delivered");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

static _Atomic int slow_polls_at_drop = -1;

static void slow_drop(void *p)
{
    struct slow *t = p;
    atomic_store(&slow_polls_at_drop, t->leaf.polls_after_settle + 10 * t->leaf.settled);
    flag_add(&drops, 1);
}

Test(abort, cancel_safe_async_withdrawal_waits_for_settle)
{
    weft_runtime *rt = rt_make(2, 0);
    struct slow fr = { 0 };
    weft_task_desc d = DESC(slow_task_poll, &fr, slow_drop, WEFT_TASK_CANCEL_SAFE);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&parked, 1);
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, -ECANCELED);
    cr_assert_eq(atomic_load(&slow_resumed), 0, "not resumed");
    cr_assert_eq(atomic_load(&slow_polls_at_drop), 10, "settled before the drop hook (%d)",
                 atomic_load(&slow_polls_at_drop));
    cr_assert_eq(flag_get(&drops), 1);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- abort racing completion ------------------------------------------------ */

struct quick {
    weft_frame f;
    int id;
    int yields;
    int64_t rc;
};

static _Atomic int quick_returned[2048];

static void quick_drop(void *p)
{
    struct quick *q = p;
    atomic_fetch_add(&drop_count_by_id[q->id], 1);
}

static weft_poll quick_poll(weft_cx *cx, void *p)
{
    struct quick *q = p;
    WEFT_BEGIN(&q->f);
    if (q->yields) {
        WEFT_YIELD(&q->f, q->rc);
        if (q->rc == -ECANCELED) {
            atomic_fetch_add(&quick_returned[q->id], 1);
            WEFT_RETURN(&q->f, 2000000 + q->id);
        }
    }
    atomic_fetch_add(&quick_returned[q->id], 1);
    WEFT_RETURN(&q->f, 1000000 + q->id);
    WEFT_END(&q->f);
}

static void race(unsigned flags, int *n_cancelled, int *n_value)
{
    weft_runtime *rt = rt_make(3, 0);
    *n_cancelled = *n_value = 0;
    for (int i = 0; i < 1000; i++) {
        struct quick fr = { .id = i, .yields = i & 1 };
        weft_task_desc d = DESC(quick_poll, &fr, quick_drop, flags);
        weft_join h = WEFT_JOIN_INIT;
        cr_assert_eq(weft_spawn(rt, &d, &h), 0);
        if (i % 3 == 0)
            sched_yield();
        int a = weft_abort(&h);
        cr_assert(a == 0 || a == 1);
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        cr_assert_eq(atomic_load(&drop_count_by_id[i]), 1, "task %d dropped %d times", i,
                     atomic_load(&drop_count_by_id[i]));
        if (out.status == -ECANCELED) {
            cr_assert(flags & WEFT_TASK_CANCEL_SAFE, "only cancel-safe tasks are torn down");
            cr_assert_eq(a, 0, "torn down, so the abort was recorded");
            cr_assert_eq(out.value, 0);
            cr_assert_eq(atomic_load(&quick_returned[i]), 0, "torn down but it returned");
            cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
            (*n_cancelled)++;
        } else {
            cr_assert_eq(out.status, 0, "status %d", out.status);
            cr_assert(out.value == 1000000 + i || out.value == 2000000 + i);
            cr_assert_eq(atomic_load(&quick_returned[i]), 1);
            if (out.value == 2000000 + i) {
                cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
                cr_assert_not_null(out.cancel.delivered_at);
            }
            if (a == 1)
                cr_assert_eq(out.cancel.source, WEFT_CANCEL_NONE);
            (*n_value)++;
        }
    }
    rt_done(rt);
}

Test(abort, abort_racing_completion_cancel_safe)
{
    int c, v;
    race(WEFT_TASK_CANCEL_SAFE, &c, &v);
    cr_assert_eq(c + v, 1000);
    cr_log_info("cancel-safe: %d torn down, %d returned", c, v);
    WEFT_ASSERT_NO_LEAKS();
}

Test(abort, abort_racing_completion_cooperative)
{
    int c, v;
    race(0, &c, &v);
    cr_assert_eq(c, 0);
    cr_assert_eq(v, 1000);
    WEFT_ASSERT_NO_LEAKS();
}
