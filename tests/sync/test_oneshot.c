/*
 * tests/sync/test_oneshot.c - the oneshot channel: delivery, the sender's and
 * the receiver's close, try/blocking receive, misuse, and the cancellation
 * contract of a receive in each state (queued, woken-but-not-run, torn down,
 * shutdown).
 */
#include <pthread.h>

#include "runtime/alloc.h"
#include "sync_test.h"

TestSuite(oneshot, .timeout = 120);

/* ---- tasks ------------------------------------------------------------------ */

/* Await one value; return it, or the error. */
struct receiver {
    weft_frame f;
    weft_oneshot_rx *rx;
    uint64_t v;
    int64_t rc;
};

static weft_poll receiver_poll(weft_cx *cx, void *p)
{
    struct receiver *r = p;
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->rc, weft_oneshot_recv(cx, r->rx, &r->v));
    WEFT_RETURN(&r->f, r->rc < 0 ? r->rc : (int64_t)r->v);
    WEFT_END(&r->f);
}

static weft_join spawn_receiver(weft_runtime *rt, weft_oneshot_rx *rx, unsigned flags)
{
    struct receiver fr = { .rx = rx };
    return spawn_task(rt, DESC(receiver_poll, &fr, NULL, flags));
}

/* Send from a task. */
struct sender {
    weft_frame f;
    weft_oneshot_tx tx;
    uint64_t v;
};

static weft_poll sender_poll(weft_cx *cx, void *p)
{
    (void)cx;
    struct sender *s = p;
    return weft_oneshot_send(&s->tx, s->v);
}

/* ---- delivery ----------------------------------------------------------------- */

Test(oneshot, send_before_recv)
{
    weft_runtime *rt = rt_make(2);
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    cr_assert_eq(weft_oneshot_send(&tx, 42), 0);
    cr_assert_null(tx.weft_chan, "send empties the sender handle");
    weft_join h = spawn_receiver(rt, &rx, 0);
    cr_assert_eq(join_value(&h), 42);
    uint64_t v;
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), -EPIPE, "taken once only");
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(oneshot, recv_waits_for_send_from_task)
{
    weft_runtime *rt = rt_make(2);
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    weft_join h = spawn_receiver(rt, &rx, 0);
    WAIT_FOR(weft__oneshot_rx_waiting(&rx));
    struct sender s = { .tx = tx, .v = 7 };
    weft_join hs = spawn_task(rt, DESC(sender_poll, &s, NULL, 0));
    cr_assert_eq(join_value(&hs), 0);
    cr_assert_eq(join_value(&h), 7);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(oneshot, pointer_values_round_trip)
{
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    static int target;
    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    cr_assert_eq(weft_oneshot_send(&tx, weft_value_from_ptr(&target)), 0);
    uint64_t v;
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), 0);
    cr_assert_eq(weft_value_to_ptr(v), &target);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- close semantics ---------------------------------------------------------- */

Test(oneshot, sender_drop_wakes_receiver_with_epipe)
{
    weft_runtime *rt = rt_make(2);
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    weft_join h = spawn_receiver(rt, &rx, 0);
    WAIT_FOR(weft__oneshot_rx_waiting(&rx));
    cr_assert_eq(weft_oneshot_tx_drop(&tx), 0);
    cr_assert_eq(join_value(&h), -EPIPE);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(oneshot, receiver_close_fails_send_and_keeps_earlier_value)
{
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    uint64_t v;
    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    cr_assert_not(weft_oneshot_tx_is_closed(&tx));
    cr_assert_eq(weft_oneshot_rx_close(&rx), 0);
    cr_assert(weft_oneshot_tx_is_closed(&tx));
    cr_assert_eq(weft_oneshot_send(&tx, 5), -EPIPE, "send to a closed receiver fails");
    cr_assert_null(tx.weft_chan, "the sender is consumed either way");
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), -EPIPE);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);

    /* A value sent before the close stays receivable. */
    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    cr_assert_eq(weft_oneshot_send(&tx, 9), 0);
    cr_assert_eq(weft_oneshot_rx_close(&rx), 0);
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), 0);
    cr_assert_eq(v, 9);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(oneshot, receiver_drop_discards_and_fails_send)
{
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);
    cr_assert(weft_oneshot_tx_is_closed(&tx));
    cr_assert_eq(weft_oneshot_send(&tx, 1), -EPIPE);

    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    cr_assert_eq(weft_oneshot_send(&tx, 1), 0);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 1, "an unreceived value is reported");
    WEFT_ASSERT_NO_LEAKS();
}

Test(oneshot, try_recv_states)
{
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    uint64_t v = 0;
    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), -EAGAIN);
    cr_assert_eq(weft_oneshot_send(&tx, 3), 0);
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), 0);
    cr_assert_eq(v, 3);
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), -EPIPE);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

struct later {
    weft_oneshot_tx *tx;
    weft_oneshot_rx *rx;
    bool saw_waiting;
};

/* Send once the main thread waits in recv_blocking: what is under test is a
 * blocked thread being woken, not a value found at once. The loop polls that
 * condition (paced, with a hang guard of about a minute, like WAIT_FOR, which
 * cannot be used off the test's thread); the main thread checks it held. */
static void *send_later(void *arg)
{
    struct later *l = arg;
    for (long i = 0; i < 600000L && !l->saw_waiting; i++) {
        l->saw_waiting = weft__oneshot_rx_waiting(l->rx);
        if (!l->saw_waiting)
            usleep(100);
    }
    weft_oneshot_send(l->tx, 77);
    return NULL;
}

Test(oneshot, recv_blocking_from_thread)
{
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    uint64_t v = 0;
    pthread_t th;
    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    struct later l = { .tx = &tx, .rx = &rx };
    pthread_create(&th, NULL, send_later, &l);
    cr_assert_eq(weft_oneshot_recv_blocking(&rx, &v), 0);
    cr_assert_eq(v, 77);
    pthread_join(th, NULL);
    cr_assert(l.saw_waiting, "recv_blocking never waited for the send");
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);

    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    cr_assert_eq(weft_oneshot_tx_drop(&tx), 0);
    cr_assert_eq(weft_oneshot_recv_blocking(&rx, &v), -EPIPE);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- misuse ---------------------------------------------------------------- */

struct blocking_in_task {
    weft_frame f;
    weft_oneshot_rx *rx;
};

static weft_poll blocking_in_task_poll(weft_cx *cx, void *p)
{
    (void)cx;
    uint64_t v;
    return weft_oneshot_recv_blocking(((struct blocking_in_task *)p)->rx, &v);
}

Test(oneshot, misuse_is_rejected)
{
    weft_oneshot_tx tx, empty_tx = { 0 };
    weft_oneshot_rx rx, empty_rx = { 0 };
    uint64_t v;
    cr_assert_eq(weft_oneshot_new(NULL, &rx), -EINVAL);
    cr_assert_eq(weft_oneshot_new(&tx, NULL), -EINVAL);
    cr_assert_eq(weft_oneshot_send(NULL, 1), -EINVAL);
    cr_assert_eq(weft_oneshot_send(&empty_tx, 1), -EINVAL);
    cr_assert_eq(weft_oneshot_tx_drop(&empty_tx), -EINVAL);
    cr_assert(weft_oneshot_tx_is_closed(&empty_tx));
    cr_assert_eq(weft_oneshot_try_recv(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_oneshot_recv_blocking(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_oneshot_rx_close(&empty_rx), -EINVAL);
    cr_assert_eq(weft_oneshot_rx_drop(&empty_rx), -EINVAL);
    cr_assert_eq(weft_oneshot_recv(NULL, &empty_rx, &v), -EINVAL);

    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    cr_assert_eq(weft_oneshot_try_recv(&rx, NULL), -EINVAL);
    weft_runtime *rt = rt_make(1);
    struct blocking_in_task fr = { .rx = &rx };
    weft_join h = spawn_task(rt, DESC(blocking_in_task_poll, &fr, NULL, 0));
    cr_assert_eq(join_value(&h), -EDEADLK, "a blocking receive on a worker is refused");

    /* A second receive while one waits is refused, not silently lost. */
    h = spawn_receiver(rt, &rx, 0);
    WAIT_FOR(weft__oneshot_rx_waiting(&rx));
    cr_assert_eq(weft_oneshot_recv_blocking(&rx, &v), -EBUSY);
    cr_assert_eq(weft_oneshot_send(&tx, 1), 0);
    cr_assert_eq(weft_oneshot_send(&tx, 2), -EINVAL, "a sender sends once");
    cr_assert_eq(join_value(&h), 1);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), -EINVAL, "dropped twice");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(oneshot, allocation_failure)
{
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    weft__alloc_fail_after(1);
    cr_assert_eq(weft_oneshot_new(&tx, &rx), -ENOMEM);
    weft__alloc_fail_after(0);
    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0, "usable after a failure");
    cr_assert_eq(weft_oneshot_tx_drop(&tx), 0);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation ------------------------------------------------------------- */

Test(oneshot, cancel_queued_recv_loses_nothing)
{
    weft_runtime *rt = rt_make(2);
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    uint64_t v;
    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    weft_join h = spawn_receiver(rt, &rx, 0);
    WAIT_FOR(weft__oneshot_rx_waiting(&rx));
    cr_assert_eq(weft_abort(&h), 0);
    cr_assert_eq(join_value(&h), -ECANCELED);
    cr_assert_not(weft__oneshot_rx_waiting(&rx), "the withdrawn wait left no waker");
    cr_assert_eq(weft_oneshot_send(&tx, 11), 0, "the receiver is still open");
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), 0);
    cr_assert_eq(v, 11);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(oneshot, cancel_woken_recv_returns_the_value)
{
    weft_runtime *rt = rt_make(1);
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    blocker b;
    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    weft_join h = spawn_receiver(rt, &rx, 0);
    WAIT_FOR(weft__oneshot_rx_waiting(&rx));
    blocker_start(rt, &b);
    cr_assert_eq(weft_oneshot_send(&tx, 21), 0);  /* wakes it; it cannot run */
    cr_assert_eq(weft_abort(&h), 0);
    blocker_release(&b);
    weft_outcome o = join_outcome(&h);
    cr_assert_eq(o.status, 0);
    cr_assert_eq(o.value, 21, "RACED: the value that arrived is returned");
    cr_assert_eq(o.cancel.source, WEFT_CANCEL_ABORT);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0, "nothing left behind");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(oneshot, torn_down_woken_recv_leaves_the_value)
{
    weft_runtime *rt = rt_make(1);
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    blocker b;
    uint64_t v;
    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    weft_join h = spawn_receiver(rt, &rx, WEFT_TASK_CANCEL_SAFE);
    WAIT_FOR(weft__oneshot_rx_waiting(&rx));
    blocker_start(rt, &b);
    cr_assert_eq(weft_oneshot_send(&tx, 31), 0);
    cr_assert_eq(weft_abort(&h), 0);
    blocker_release(&b);
    cr_assert_eq(join_outcome(&h).status, -ECANCELED);
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), 0, "the value stayed in the channel");
    cr_assert_eq(v, 31);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(oneshot, shutdown_withdraws_waiting_receiver)
{
    weft_runtime *rt = rt_make(2);
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    weft_join h = spawn_receiver(rt, &rx, WEFT_TASK_SHIELDED);
    WAIT_FOR(weft__oneshot_rx_waiting(&rx));
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(join_outcome(&h).status, -ECANCELED);
    cr_assert_not(weft__oneshot_rx_waiting(&rx), "shutdown withdrew the wait");
    cr_assert_eq(weft_oneshot_send(&tx, 1), 0);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 1);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
