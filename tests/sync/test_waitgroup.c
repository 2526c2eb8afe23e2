/*
 * tests/sync/test_waitgroup.c - the wait group: add/done/wait, waits that
 * complete at once on zero, waiting from a thread, misuse, and the
 * cancellation contract of a wait: queued (nothing changes), woken by the
 * count reaching zero but not yet run (it reports zero, even if the count
 * rose again), torn down, at shutdown.
 */
#include <pthread.h>

#include "sync/inspect_waits.h"
#include "sync_test.h"

TestSuite(waitgroup, .timeout = 120);

struct waiter {
    weft_frame f;
    weft_waitgroup *wg;
    weft_waitgroup_waiter w;
    int64_t rc;
};

static weft_poll waiter_poll(weft_cx *cx, void *p)
{
    struct waiter *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->rc, weft_waitgroup_wait(cx, t->wg, &t->w));
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

static weft_join spawn_waiter(weft_runtime *rt, weft_waitgroup *wg, unsigned flags)
{
    struct waiter fr = { .wg = wg };
    return spawn_task(rt, DESC(waiter_poll, &fr, NULL, flags));
}

static weft_join queue_waiter(weft_runtime *rt, weft_waitgroup *wg, unsigned flags)
{
    size_t before = weft__waitgroup_waiters(wg);
    weft_join h = spawn_waiter(rt, wg, flags);
    WAIT_FOR(weft__waitgroup_waiters(wg) == before + 1);
    return h;
}

/* A worker task: does its part, then done(). */
struct worker_task {
    weft_frame f;
    weft_waitgroup *wg;
    _Atomic int *work;
    int64_t rc;
};

static weft_poll worker_poll(weft_cx *cx, void *p)
{
    struct worker_task *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_YIELD(&t->f, t->rc);
    atomic_fetch_add(t->work, 1);
    cr_assert_eq(weft_waitgroup_done(t->wg), 0);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(waitgroup, wait_completes_when_the_work_is_done)
{
    enum { N = 20, W = 70 };    /* W: more than one wake batch */
    weft_runtime *rt = rt_make(4);
    weft_waitgroup wg;
    _Atomic int work = 0;
    static weft_join waiters[W];
    weft_join workers[N];
    cr_assert_eq(weft_waitgroup_init(&wg), 0);
    weft_join h = spawn_waiter(rt, &wg, 0);
    cr_assert_eq(join_value(&h), 0, "count 0: at once");
    cr_assert_eq(weft_waitgroup_add(&wg, N), 0);
    cr_assert_eq(weft_waitgroup_count(&wg), N);
    for (int i = 0; i < W; i++)
        waiters[i] = spawn_waiter(rt, &wg, 0);
    WAIT_FOR(weft__waitgroup_waiters(&wg) == W);
    for (int i = 0; i < N; i++) {
        struct worker_task fr = { .wg = &wg, .work = &work };
        workers[i] = spawn_task(rt, DESC(worker_poll, &fr, NULL, 0));
    }
    for (int i = 0; i < W; i++) {
        cr_assert_eq(join_value(&waiters[i]), 0);
        cr_assert_eq(atomic_load(&work), N, "woken before all the work was done");
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq(join_value(&workers[i]), 0);
    cr_assert_eq(weft_waitgroup_count(&wg), 0);
    cr_assert_eq(weft_waitgroup_destroy(&wg), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

static void *blocking_waiter(void *arg)
{
    return (void *)(intptr_t)weft_waitgroup_wait_blocking(arg);
}

struct blocking_in_task {
    weft_frame f;
    weft_waitgroup *wg;
};

static weft_poll blocking_in_task_poll(weft_cx *cx, void *p)
{
    (void)cx;
    return weft_waitgroup_wait_blocking(((struct blocking_in_task *)p)->wg);
}

Test(waitgroup, wait_blocking_from_a_thread)
{
    weft_runtime *rt = rt_make(1);
    weft_waitgroup wg = WEFT_WAITGROUP_INIT;
    cr_assert_eq(weft_waitgroup_wait_blocking(&wg), 0, "count 0: at once");
    cr_assert_eq(weft_waitgroup_add(&wg, 1), 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, blocking_waiter, &wg), 0);
    WAIT_FOR(weft__waitgroup_waiters(&wg) == 1);
    struct blocking_in_task fr = { .wg = &wg };
    weft_join h = spawn_task(rt, DESC(blocking_in_task_poll, &fr, NULL, 0));
    cr_assert_eq(join_value(&h), -EDEADLK, "not on a worker");
    cr_assert_eq(weft_waitgroup_done(&wg), 0);
    void *ret;
    cr_assert_eq(pthread_join(th, &ret), 0);
    cr_assert_eq((intptr_t)ret, 0);
    cr_assert_eq(weft_waitgroup_destroy(&wg), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(waitgroup, a_wait_that_saw_zero_completes_even_if_the_count_rises)
{
    weft_runtime *rt = rt_make(1);
    weft_waitgroup wg = WEFT_WAITGROUP_INIT;
    blocker bl;
    cr_assert_eq(weft_waitgroup_add(&wg, 1), 0);
    weft_join a = queue_waiter(rt, &wg, 0);
    blocker_start(rt, &bl);
    cr_assert_eq(weft_waitgroup_done(&wg), 0);      /* a sees zero; cannot run */
    cr_assert_eq(weft_waitgroup_add(&wg, 1), 0);
    weft_join b = spawn_waiter(rt, &wg, 0);         /* runs after the blocker */
    blocker_release(&bl);
    cr_assert_eq(join_value(&a), 0);
    WAIT_FOR(weft__waitgroup_waiters(&wg) == 1);    /* b waits for the new count */
    cr_assert_eq(weft_waitgroup_done(&wg), 0);
    cr_assert_eq(join_value(&b), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(waitgroup, misuse_is_rejected)
{
    weft_waitgroup wg = WEFT_WAITGROUP_INIT, other = WEFT_WAITGROUP_INIT;
    weft_waitgroup_waiter w = WEFT_WAITGROUP_WAITER_INIT;
    cr_assert_eq(weft_waitgroup_init(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_add(NULL, 1), -EINVAL);
    cr_assert_eq(weft_waitgroup_add(&wg, 0), -EINVAL);
    cr_assert_eq(weft_waitgroup_done(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_count(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_wait(NULL, &wg, &w), -EINVAL);
    cr_assert_eq(weft_waitgroup_wait_blocking(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_done(&wg), -EPERM, "done below zero");
    cr_assert_eq(weft_waitgroup_add(&wg, (uint64_t)INT64_MAX), 0);
    cr_assert_eq(weft_waitgroup_add(&wg, 1), -EOVERFLOW);
    cr_assert_eq(weft_waitgroup_count(&wg), INT64_MAX, "nothing added on overflow");
    cr_assert_eq(weft_waitgroup_add(&other, 1), 0);
    cr_assert_eq(weft_waitgroup_done(&other), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation -------------------------------------------------------------- */

static void cancel_queued(unsigned flags)
{
    weft_runtime *rt = rt_make(2);
    weft_waitgroup wg = WEFT_WAITGROUP_INIT;
    cr_assert_eq(weft_waitgroup_add(&wg, 1), 0);
    weft_join a = queue_waiter(rt, &wg, flags);
    weft_join b = queue_waiter(rt, &wg, 0);
    cr_assert_eq(weft_abort(&a), 0);
    weft_outcome o = join_outcome(&a);
    if (flags & WEFT_TASK_CANCEL_SAFE)
        cr_assert_eq(o.status, -ECANCELED);
    else
        cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(weft_waitgroup_count(&wg), 1, "the count is untouched");
    cr_assert_eq(weft__waitgroup_waiters(&wg), 1);
    cr_assert_eq(weft_waitgroup_done(&wg), 0);
    cr_assert_eq(join_value(&b), 0);
    cr_assert_eq(weft_waitgroup_destroy(&wg), 0);
    rt_done(rt);
}

Test(waitgroup, cancel_queued_wait_leaves_nothing_behind)
{
    cancel_queued(0);
    cancel_queued(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

static void cancel_released(unsigned flags)
{
    weft_runtime *rt = rt_make(1);
    weft_waitgroup wg = WEFT_WAITGROUP_INIT;
    blocker bl;
    cr_assert_eq(weft_waitgroup_add(&wg, 1), 0);
    weft_join a = queue_waiter(rt, &wg, flags);
    blocker_start(rt, &bl);
    cr_assert_eq(weft_waitgroup_done(&wg), 0);
    cr_assert_eq(weft__waitgroup_waiters(&wg), 0);
    cr_assert_eq(weft_waitgroup_destroy(&wg), -EBUSY, "a is released but still in flight");
    cr_assert_eq(weft_abort(&a), 0);
    blocker_release(&bl);
    weft_outcome o = join_outcome(&a);
    if (flags & WEFT_TASK_CANCEL_SAFE)
        cr_assert_eq(o.status, -ECANCELED);
    else
        cr_assert_eq(o.value, 0, "RACED: the count did reach zero");
    cr_assert_eq(weft_waitgroup_destroy(&wg), 0);
    rt_done(rt);
}

Test(waitgroup, cancel_after_zero_reports_it)
{
    cancel_released(0);
    cancel_released(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

Test(waitgroup, shutdown_withdraws_waits)
{
    weft_runtime *rt = rt_make(2);
    weft_waitgroup wg = WEFT_WAITGROUP_INIT;
    cr_assert_eq(weft_waitgroup_add(&wg, 1), 0);
    weft_join a = queue_waiter(rt, &wg, WEFT_TASK_SHIELDED);
    weft_join b = queue_waiter(rt, &wg, 0);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(join_outcome(&a).status, -ECANCELED);
    cr_assert_eq(join_value(&b), -ECANCELED);
    cr_assert_eq(weft_waitgroup_destroy(&wg), 0);
    cr_assert_eq(weft_waitgroup_count(&wg), 1);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
