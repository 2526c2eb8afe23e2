/*
 * tests/sync/test_notify.c - notify: the stored permit, FIFO order, notify_all,
 * misuse, and the cancellation contract of a wait in each state: queued,
 * chosen by notify_one but not yet run (the notification is passed on),
 * woken by notify_all, torn down, shutdown.
 */
#include "sync_test.h"

TestSuite(notify, .timeout = 120);

/* Wait once; on success append `id` to the wake order. Returns the wait's
 * result. */
static _Atomic int order[128];
static _Atomic int order_len;

struct waiter {
    weft_frame f;
    weft_notify *n;
    int id;
    weft_notify_waiter w;
    int64_t rc;
};

static weft_poll waiter_poll(weft_cx *cx, void *p)
{
    struct waiter *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->rc, weft_notify_wait(cx, t->n, &t->w));
    if (t->rc == 0)
        atomic_store(&order[atomic_fetch_add(&order_len, 1)], t->id);
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

static weft_join spawn_waiter(weft_runtime *rt, weft_notify *n, int id, unsigned flags)
{
    struct waiter fr = { .n = n, .id = id };
    return spawn_task(rt, DESC(waiter_poll, &fr, NULL, flags));
}

/* Spawn a waiter and return once it is queued. */
static weft_join queue_waiter(weft_runtime *rt, weft_notify *n, int id, unsigned flags)
{
    size_t before = weft__notify_waiters(n);
    weft_join h = spawn_waiter(rt, n, id, flags);
    WAIT_FOR(weft__notify_waiters(n) == before + 1);
    return h;
}

Test(notify, stored_permit_is_taken_at_once_and_does_not_add_up)
{
    weft_runtime *rt = rt_make(2);
    weft_notify n;
    cr_assert_eq(weft_notify_init(&n), 0);
    cr_assert_eq(weft_notify_one(&n), 0, "no waiter: the permit is stored");
    cr_assert_eq(weft_notify_one(&n), 0);
    weft_join h = spawn_waiter(rt, &n, 1, 0);
    cr_assert_eq(join_value(&h), 0);
    h = queue_waiter(rt, &n, 2, 0);     /* the second notify_one did not add up */
    cr_assert_eq(weft_notify_one(&n), 1, "a waiter was chosen");
    cr_assert_eq(join_value(&h), 0);
    cr_assert_eq(weft_notify_destroy(&n), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(notify, notify_one_wakes_waiters_in_fifo_order)
{
    enum { W = 8 };
    weft_runtime *rt = rt_make(4);
    weft_notify n = WEFT_NOTIFY_INIT;
    weft_join h[W];
    atomic_store(&order_len, 0);
    for (int i = 0; i < W; i++)
        h[i] = queue_waiter(rt, &n, i, 0);
    for (int i = 0; i < W; i++) {
        cr_assert_eq(weft_notify_one(&n), 1);
        cr_assert_eq(join_value(&h[i]), 0);
        cr_assert_eq(atomic_load(&order[i]), i, "woken out of order");
    }
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(notify, notify_all_wakes_every_queued_wait_and_stores_nothing)
{
    enum { W = 70 };    /* more than one wake batch */
    weft_runtime *rt = rt_make(4);
    weft_notify n = WEFT_NOTIFY_INIT;
    static weft_join h[W];
    cr_assert_eq(weft_notify_all(&n), 0, "nobody to wake");
    for (int i = 0; i < W; i++)
        h[i] = spawn_waiter(rt, &n, i, 0);
    WAIT_FOR(weft__notify_waiters(&n) == W);
    cr_assert_eq(weft_notify_all(&n), W);
    for (int i = 0; i < W; i++)
        cr_assert_eq(join_value(&h[i]), 0);
    weft_join late = queue_waiter(rt, &n, 0, 0);    /* no permit was stored */
    cr_assert_eq(weft_notify_one(&n), 1);
    cr_assert_eq(join_value(&late), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(notify, misuse_is_rejected)
{
    weft_notify n = WEFT_NOTIFY_INIT;
    cr_assert_eq(weft_notify_init(NULL), -EINVAL);
    cr_assert_eq(weft_notify_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_notify_one(NULL), -EINVAL);
    cr_assert_eq(weft_notify_all(NULL), -EINVAL);
    weft_notify_waiter w = WEFT_NOTIFY_WAITER_INIT;
    cr_assert_eq(weft_notify_wait(NULL, &n, &w), -EINVAL);

    weft_runtime *rt = rt_make(1);
    weft_join h = queue_waiter(rt, &n, 0, 0);
    cr_assert_eq(weft_notify_destroy(&n), -EBUSY, "a wait is in flight");
    cr_assert_eq(weft_notify_one(&n), 1);
    cr_assert_eq(join_value(&h), 0);
    cr_assert_eq(weft_notify_destroy(&n), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct switcher {
    weft_frame f;
    weft_notify *a, *b;
    weft_notify_waiter w;
    int64_t rc;
};

static weft_poll switcher_poll(weft_cx *cx, void *p)
{
    struct switcher *s = p;
    /* First poll queues on a; a wake-up re-poll tries b with the same leaf. */
    if (!s->w.weft_owner)
        return weft_notify_wait(cx, s->a, &s->w);
    s->rc = weft_notify_wait(cx, s->b, &s->w);
    cr_assert_eq(s->rc, -EINVAL);
    return weft_notify_wait(cx, s->a, &s->w);
}

Test(notify, a_waiter_in_flight_belongs_to_its_notify)
{
    weft_runtime *rt = rt_make(1);
    weft_notify a = WEFT_NOTIFY_INIT, b = WEFT_NOTIFY_INIT;
    struct switcher fr = { .a = &a, .b = &b };
    weft_join h = spawn_task(rt, DESC(switcher_poll, &fr, NULL, 0));
    WAIT_FOR(weft__notify_waiters(&a) == 1);
    cr_assert_eq(weft_notify_one(&a), 1);
    cr_assert_eq(join_value(&h), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation ----------------------------------------------------------- */

Test(notify, cancel_queued_wait_leaves_nothing_behind)
{
    weft_runtime *rt = rt_make(2);
    weft_notify n = WEFT_NOTIFY_INIT;
    weft_join a = queue_waiter(rt, &n, 1, 0);
    weft_join b = queue_waiter(rt, &n, 2, 0);
    cr_assert_eq(weft_abort(&a), 0);
    cr_assert_eq(join_value(&a), -ECANCELED);
    cr_assert_eq(weft__notify_waiters(&n), 1);
    cr_assert_eq(weft_notify_one(&n), 1, "b is chosen, not the withdrawn a");
    cr_assert_eq(join_value(&b), 0);
    cr_assert_eq(weft_notify_destroy(&n), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

static void cancel_chosen_wait(unsigned flags)
{
    weft_runtime *rt = rt_make(1);
    weft_notify n = WEFT_NOTIFY_INIT;
    blocker bl;
    weft_join a = queue_waiter(rt, &n, 1, flags);
    weft_join b = queue_waiter(rt, &n, 2, 0);
    blocker_start(rt, &bl);
    cr_assert_eq(weft_notify_one(&n), 1);  /* chooses a, which cannot run */
    cr_assert_eq(weft_abort(&a), 0);
    blocker_release(&bl);
    weft_outcome o = join_outcome(&a);
    if (flags & WEFT_TASK_CANCEL_SAFE)
        cr_assert_eq(o.status, -ECANCELED);
    else
        cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(join_value(&b), 0, "the notification passed on to b");
    cr_assert_eq(weft_notify_destroy(&n), 0);
    rt_done(rt);
}

Test(notify, cancel_chosen_wait_passes_the_notification_on)
{
    cancel_chosen_wait(0);
    cancel_chosen_wait(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

Test(notify, cancel_chosen_wait_alone_stores_the_permit)
{
    weft_runtime *rt = rt_make(1);
    weft_notify n = WEFT_NOTIFY_INIT;
    blocker bl;
    weft_join a = queue_waiter(rt, &n, 1, 0);
    blocker_start(rt, &bl);
    cr_assert_eq(weft_notify_one(&n), 1);
    cr_assert_eq(weft_abort(&a), 0);
    blocker_release(&bl);
    cr_assert_eq(join_value(&a), -ECANCELED);
    weft_join b = spawn_waiter(rt, &n, 2, 0);
    cr_assert_eq(join_value(&b), 0, "the next wait finds the stored permit");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(notify, cancel_wait_woken_by_notify_all_passes_nothing_on)
{
    weft_runtime *rt = rt_make(1);
    weft_notify n = WEFT_NOTIFY_INIT;
    blocker bl;
    weft_join a = queue_waiter(rt, &n, 1, 0);
    blocker_start(rt, &bl);
    cr_assert_eq(weft_notify_all(&n), 1);
    cr_assert_eq(weft_abort(&a), 0);
    blocker_release(&bl);
    cr_assert_eq(join_value(&a), -ECANCELED);
    weft_join b = queue_waiter(rt, &n, 2, 0);   /* queues: no permit was made */
    cr_assert_eq(weft_notify_one(&n), 1);
    cr_assert_eq(join_value(&b), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(notify, shutdown_withdraws_waits)
{
    weft_runtime *rt = rt_make(2);
    weft_notify n = WEFT_NOTIFY_INIT;
    weft_join a = queue_waiter(rt, &n, 1, WEFT_TASK_SHIELDED);
    weft_join b = queue_waiter(rt, &n, 2, 0);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(join_outcome(&a).status, -ECANCELED);
    cr_assert_eq(join_value(&b), -ECANCELED);
    cr_assert_eq(weft_notify_destroy(&n), 0, "no wait left linked");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* A waiter that was chosen but has not run yet still points at the notify:
 * destroy must refuse until it has settled. */
Test(notify, destroy_refuses_while_a_woken_wait_has_not_run)
{
    weft_runtime *rt = rt_make(1);
    weft_notify n = WEFT_NOTIFY_INIT;
    blocker bl;
    weft_join a = queue_waiter(rt, &n, 1, 0);
    cr_assert_eq(weft_notify_destroy(&n), -EBUSY, "a queued wait is in flight");
    blocker_start(rt, &bl);
    cr_assert_eq(weft_notify_one(&n), 1);
    cr_assert_eq(weft__notify_waiters(&n), 0);
    cr_assert_eq(weft_notify_destroy(&n), -EBUSY, "woken but not run: still in flight");
    blocker_release(&bl);
    cr_assert_eq(join_value(&a), 0);
    cr_assert_eq(weft_notify_destroy(&n), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
