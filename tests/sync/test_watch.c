/*
 * tests/sync/test_watch.c - the watch channel: latest value and version,
 * changed() waits, skipped intermediate values, subscribe and clone, sends
 * from threads, close, misuse, -ENOMEM, and the cancellation contract of a
 * changed() wait: queued (nothing marked seen), woken but not yet run (the
 * change is reported, or stays unseen when torn down), at shutdown.
 */
#include <pthread.h>

#include "runtime/alloc.h"
#include "sync/inspect_waits.h"
#include "sync_test.h"

TestSuite(watch, .timeout = 120);

/* Await one change; returns the value, or the error. */
struct watcher {
    weft_frame f;
    weft_watch_rx *rx;
    uint64_t v;
    int64_t rc;
};

static weft_poll watcher_poll(weft_cx *cx, void *p)
{
    struct watcher *w = p;
    WEFT_BEGIN(&w->f);
    WEFT_AWAIT(&w->f, w->rc, weft_watch_changed(cx, w->rx, &w->v));
    WEFT_RETURN(&w->f, w->rc < 0 ? w->rc : (int64_t)w->v);
    WEFT_END(&w->f);
}

static weft_join spawn_watcher(weft_runtime *rt, weft_watch_rx *rx, unsigned flags)
{
    struct watcher fr = { .rx = rx };
    return spawn_task(rt, DESC(watcher_poll, &fr, NULL, flags));
}

static weft_join queue_watcher(weft_runtime *rt, weft_watch_tx *tx, weft_watch_rx *rx,
                               unsigned flags)
{
    size_t before = weft__watch_waiters(tx);
    weft_join h = spawn_watcher(rt, rx, flags);
    WAIT_FOR(weft__watch_waiters(tx) == before + 1);
    return h;
}

static void expect_latest(const weft_watch_rx *rx, uint64_t value, uint64_t version)
{
    uint64_t v = ~value, ver = ~version;
    cr_assert_eq(weft_watch_read(rx, &v, &ver), 0);
    cr_assert_eq(v, value);
    cr_assert_eq(ver, version);
}

Test(watch, read_send_and_changed)
{
    weft_runtime *rt = rt_make(2);
    weft_watch_tx tx;
    weft_watch_rx rx;
    cr_assert_eq(weft_watch_new(&tx, &rx, 5), 0);
    expect_latest(&rx, 5, 0);
    cr_assert_eq(weft_watch_has_changed(&rx), 0, "the initial value counts as seen");
    weft_join h = queue_watcher(rt, &tx, &rx, 0);
    cr_assert_eq(weft_watch_send(&tx, 6), 1);
    cr_assert_eq(join_value(&h), 6);
    cr_assert_eq(weft_watch_has_changed(&rx), 0, "changed() marked it seen");
    cr_assert_eq(weft_watch_send(&tx, 7), 1);
    cr_assert_eq(weft_watch_send(&tx, 8), 1);
    cr_assert_eq(weft_watch_has_changed(&rx), 1);
    expect_latest(&rx, 8, 3);
    cr_assert_eq(weft_watch_has_changed(&rx), 1, "read does not mark it seen");
    h = spawn_watcher(rt, &rx, 0);
    cr_assert_eq(join_value(&h), 8, "at once, and only the latest");
    uint64_t v, ver;
    cr_assert_eq(weft_watch_send(&tx, 9), 1);
    cr_assert_eq(weft_watch_read_update(&rx, &v, &ver), 0);
    cr_assert_eq(v, 9);
    cr_assert_eq(ver, 4);
    cr_assert_eq(weft_watch_has_changed(&rx), 0, "read_update marks it seen");
    cr_assert_eq(weft_watch_read(&rx, NULL, NULL), 0);
    cr_assert_eq(weft_watch_tx_drop(&tx), 0);
    cr_assert_eq(weft_watch_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(watch, subscribe_clone_and_many_waiting_receivers)
{
    enum { R = 70 };    /* more than one wake batch */
    weft_runtime *rt = rt_make(4);
    weft_watch_tx tx;
    weft_watch_rx rx, sub, clone;
    static weft_watch_rx many[R];
    static weft_join h[R];
    cr_assert_eq(weft_watch_new(&tx, &rx, 0), 0);
    cr_assert_eq(weft_watch_send(&tx, 1), 1);
    cr_assert_eq(weft_watch_subscribe(&tx, &sub), 0);
    cr_assert_eq(weft_watch_has_changed(&sub), 0, "a subscriber has seen the current");
    cr_assert_eq(weft_watch_rx_clone(&clone, &rx), 0);
    cr_assert_eq(weft_watch_has_changed(&clone), 1, "a clone has seen what rx has seen");
    for (int i = 0; i < R; i++) {
        cr_assert_eq(weft_watch_subscribe(&tx, &many[i]), 0);
        h[i] = spawn_watcher(rt, &many[i], 0);
    }
    WAIT_FOR(weft__watch_waiters(&tx) == R);
    cr_assert_eq(weft_watch_send(&tx, 2), R + 3);
    for (int i = 0; i < R; i++) {
        cr_assert_eq(join_value(&h[i]), 2);
        cr_assert_eq(weft_watch_rx_drop(&many[i]), 0);
    }
    cr_assert_eq(weft_watch_rx_drop(&sub), 0);
    cr_assert_eq(weft_watch_rx_drop(&clone), 0);
    cr_assert_eq(weft_watch_rx_drop(&rx), 0);
    cr_assert_eq(weft_watch_send(&tx, 3), 0, "stored with no receiver");
    cr_assert_eq(weft_watch_subscribe(&tx, &rx), 0);
    expect_latest(&rx, 3, 3);
    cr_assert_eq(weft_watch_rx_drop(&rx), 0);
    cr_assert_eq(weft_watch_tx_drop(&tx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

static void *thread_send(void *arg)
{
    weft_watch_tx *tx = arg;
    for (uint64_t i = 1; i <= 10000; i++)
        cr_assert_geq(weft_watch_send(tx, i), 0);
    return NULL;
}

/* Follow the watch until the value reaches `last`; values only go up. */
struct follower {
    weft_frame f;
    weft_watch_rx *rx;
    uint64_t last, v, prev;
    int64_t rc, seen;
};

static weft_poll follower_poll(weft_cx *cx, void *p)
{
    struct follower *t = p;
    WEFT_BEGIN(&t->f);
    while (t->prev < t->last) {
        WEFT_AWAIT(&t->f, t->rc, weft_watch_changed(cx, t->rx, &t->v));
        if (t->rc < 0)
            WEFT_RETURN(&t->f, t->rc);
        cr_assert_gt(t->v, t->prev, "the latest value went backwards");
        t->prev = t->v;
        t->seen++;
    }
    WEFT_RETURN(&t->f, t->seen);
    WEFT_END(&t->f);
}

Test(watch, a_sender_on_a_thread_and_a_following_task)
{
    weft_runtime *rt = rt_make(2);
    weft_watch_tx tx;
    weft_watch_rx rx;
    cr_assert_eq(weft_watch_new(&tx, &rx, 0), 0);
    struct follower fr = { .rx = &rx, .last = 10000 };
    weft_join h = spawn_task(rt, DESC(follower_poll, &fr, NULL, 0));
    pthread_t th;
    pthread_create(&th, NULL, thread_send, &tx);
    pthread_join(th, NULL);
    int64_t seen = join_value(&h);
    cr_assert(seen >= 1 && seen <= 10000);
    expect_latest(&rx, 10000, 10000);
    cr_assert_eq(weft_watch_tx_drop(&tx), 0);
    cr_assert_eq(weft_watch_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(watch, close_reports_the_last_change_then_ends)
{
    weft_runtime *rt = rt_make(2);
    weft_watch_tx tx, tx2;
    weft_watch_rx rx, rx2;
    cr_assert_eq(weft_watch_new(&tx, &rx, 0), 0);
    cr_assert_eq(weft_watch_subscribe(&tx, &rx2), 0);
    cr_assert_eq(weft_watch_tx_clone(&tx2, &tx), 0);
    weft_join a = queue_watcher(rt, &tx, &rx, 0);
    cr_assert_eq(weft_watch_tx_drop(&tx), 0);
    cr_assert_eq(weft__watch_waiters(&tx2), 1, "a clone keeps it open");
    cr_assert_eq(weft_watch_send(&tx2, 4), 2);
    cr_assert_eq(join_value(&a), 4);
    a = queue_watcher(rt, &tx2, &rx, 0);
    cr_assert_eq(weft_watch_tx_drop(&tx2), 0);
    cr_assert_eq(join_value(&a), -EPIPE);
    cr_assert_eq(weft_watch_has_changed(&rx), -EPIPE);
    cr_assert_eq(weft_watch_has_changed(&rx2), 1, "an unseen change outlives the close");
    weft_join b = spawn_watcher(rt, &rx2, 0);
    cr_assert_eq(join_value(&b), 4);
    b = spawn_watcher(rt, &rx2, 0);
    cr_assert_eq(join_value(&b), -EPIPE);
    expect_latest(&rx, 4, 1);
    cr_assert_eq(weft_watch_rx_drop(&rx), 0);
    cr_assert_eq(weft_watch_rx_drop(&rx2), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(watch, misuse_and_allocation_failure)
{
    weft_watch_tx tx, empty_tx = { 0 };
    weft_watch_rx rx, empty_rx = { 0 };
    uint64_t v;
    cr_assert_eq(weft_watch_new(NULL, &rx, 0), -EINVAL);
    cr_assert_eq(weft_watch_new(&tx, NULL, 0), -EINVAL);
    weft__alloc_fail_after(1);
    cr_assert_eq(weft_watch_new(&tx, &rx, 0), -ENOMEM);
    weft__alloc_fail_after(0);
    cr_assert_eq(weft_watch_send(&empty_tx, 1), -EINVAL);
    cr_assert_eq(weft_watch_send(NULL, 1), -EINVAL);
    cr_assert_eq(weft_watch_tx_clone(&tx, &empty_tx), -EINVAL);
    cr_assert_eq(weft_watch_tx_drop(&empty_tx), -EINVAL);
    cr_assert_eq(weft_watch_subscribe(&empty_tx, &rx), -EINVAL);
    cr_assert_eq(weft_watch_rx_clone(&rx, &empty_rx), -EINVAL);
    cr_assert_eq(weft_watch_read(&empty_rx, &v, NULL), -EINVAL);
    cr_assert_eq(weft_watch_read_update(&empty_rx, &v, NULL), -EINVAL);
    cr_assert_eq(weft_watch_has_changed(&empty_rx), -EINVAL);
    cr_assert_eq(weft_watch_changed(NULL, &empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_watch_rx_drop(&empty_rx), -EINVAL);

    cr_assert_eq(weft_watch_new(&tx, &rx, 0), 0, "usable after -ENOMEM");
    cr_assert_eq(weft_watch_rx_clone(&rx, &rx), -EINVAL);
    weft_runtime *rt = rt_make(2);
    weft_join a = queue_watcher(rt, &tx, &rx, 0);
    weft_join b = spawn_watcher(rt, &rx, 0);
    cr_assert_eq(join_value(&b), -EBUSY, "one wait per receiver at a time");
    cr_assert_eq(weft_watch_send(&tx, 3), 1);
    cr_assert_eq(join_value(&a), 3);
    cr_assert_eq(weft_watch_tx_drop(&tx), 0);
    cr_assert_eq(weft_watch_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation -------------------------------------------------------------- */

static void cancel_queued(unsigned flags)
{
    weft_runtime *rt = rt_make(2);
    weft_watch_tx tx;
    weft_watch_rx rx;
    cr_assert_eq(weft_watch_new(&tx, &rx, 0), 0);
    weft_join h = queue_watcher(rt, &tx, &rx, flags);
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome o = join_outcome(&h);
    if (flags & WEFT_TASK_CANCEL_SAFE)
        cr_assert_eq(o.status, -ECANCELED);
    else
        cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(weft__watch_waiters(&tx), 0);
    cr_assert_eq(weft_watch_send(&tx, 9), 1);
    cr_assert_eq(weft_watch_has_changed(&rx), 1, "the next send is still unseen");
    cr_assert_eq(weft_watch_tx_drop(&tx), 0);
    cr_assert_eq(weft_watch_rx_drop(&rx), 0);
    rt_done(rt);
}

Test(watch, cancel_queued_changed_marks_nothing)
{
    cancel_queued(0);
    cancel_queued(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

static void cancel_woken(unsigned flags)
{
    weft_runtime *rt = rt_make(1);
    weft_watch_tx tx;
    weft_watch_rx rx;
    blocker bl;
    cr_assert_eq(weft_watch_new(&tx, &rx, 0), 0);
    weft_join h = queue_watcher(rt, &tx, &rx, flags);
    blocker_start(rt, &bl);
    cr_assert_eq(weft_watch_send(&tx, 6), 1);   /* wakes it; it cannot run */
    cr_assert_eq(weft_abort(&h), 0);
    blocker_release(&bl);
    weft_outcome o = join_outcome(&h);
    if (flags & WEFT_TASK_CANCEL_SAFE) {
        cr_assert_eq(o.status, -ECANCELED);
        cr_assert_eq(weft_watch_has_changed(&rx), 1, "torn down: still unseen");
    } else {
        cr_assert_eq(o.value, 6, "RACED: the change is reported");
        cr_assert_eq(weft_watch_has_changed(&rx), 0);
    }
    cr_assert_eq(weft_watch_tx_drop(&tx), 0);
    cr_assert_eq(weft_watch_rx_drop(&rx), 0);
    rt_done(rt);
}

Test(watch, cancel_woken_changed_loses_nothing)
{
    cancel_woken(0);
    cancel_woken(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

Test(watch, shutdown_withdraws_waits)
{
    weft_runtime *rt = rt_make(2);
    weft_watch_tx tx;
    weft_watch_rx rx, rx2;
    cr_assert_eq(weft_watch_new(&tx, &rx, 0), 0);
    cr_assert_eq(weft_watch_subscribe(&tx, &rx2), 0);
    weft_join a = queue_watcher(rt, &tx, &rx, WEFT_TASK_SHIELDED);
    weft_join b = queue_watcher(rt, &tx, &rx2, 0);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(join_outcome(&a).status, -ECANCELED);
    cr_assert_eq(join_value(&b), -ECANCELED);
    cr_assert_eq(weft__watch_waiters(&tx), 0);
    cr_assert_eq(weft_watch_tx_drop(&tx), 0);
    cr_assert_eq(weft_watch_rx_drop(&rx), 0);
    cr_assert_eq(weft_watch_rx_drop(&rx2), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
