/*
 * tests/sync/test_broadcast.c - the broadcast channel: every receiver sees
 * every value in order, subscribe, lagging receivers told how many they
 * missed, sends from threads, close, misuse, -ENOMEM, and the cancellation
 * contract of a receive: queued (nothing consumed), woken by a send but not
 * yet run (the value is reported, or stays for the receiver when torn down),
 * at shutdown.
 */
#include <pthread.h>

#include "runtime/alloc.h"
#include "sync/inspect_waits.h"
#include "sync_test.h"

TestSuite(broadcast, .timeout = 120);

/* Receive until the end, storing values in out[]; returns how many, or the
 * first error other than -EPIPE. With out == NULL, receive one value and
 * return it (or the error). */
struct receiver {
    weft_frame f;
    weft_broadcast_rx *rx;
    uint64_t *out;
    uint64_t v;
    int64_t n, rc;
};

static weft_poll receiver_poll(weft_cx *cx, void *p)
{
    struct receiver *r = p;
    WEFT_BEGIN(&r->f);
    for (;;) {
        WEFT_AWAIT(&r->f, r->rc, weft_broadcast_recv(cx, r->rx, &r->v));
        if (!r->out)
            WEFT_RETURN(&r->f, r->rc < 0 ? r->rc : (int64_t)r->v);
        if (r->rc < 0)
            break;
        r->out[r->n++] = r->v;
    }
    WEFT_RETURN(&r->f, r->rc == -EPIPE ? r->n : r->rc);
    WEFT_END(&r->f);
}

static weft_join spawn_receiver(weft_runtime *rt, weft_broadcast_rx *rx, uint64_t *out,
                                unsigned flags)
{
    struct receiver fr = { .rx = rx, .out = out };
    return spawn_task(rt, DESC(receiver_poll, &fr, NULL, flags));
}

static weft_join queue_receiver(weft_runtime *rt, weft_broadcast_tx *tx, weft_broadcast_rx *rx,
                                uint64_t *out, unsigned flags)
{
    size_t before = weft__broadcast_waiters(tx);
    weft_join h = spawn_receiver(rt, rx, out, flags);
    WAIT_FOR(weft__broadcast_waiters(tx) == before + 1);
    return h;
}

static void expect_recv(weft_broadcast_rx *rx, int want_rc, uint64_t want)
{
    uint64_t v = ~want;
    int rc = weft_broadcast_try_recv(rx, &v);
    cr_assert_eq(rc, want_rc, "try_recv: %d, want %d", rc, want_rc);
    cr_assert_eq(v, want, "got %lu, want %lu", (unsigned long)v, (unsigned long)want);
}

Test(broadcast, every_receiver_sees_every_value_in_order)
{
    enum { N = 500, R = 3 };
    static uint64_t out[R][N];
    weft_runtime *rt = rt_make(4);
    weft_broadcast_tx tx;
    weft_broadcast_rx rx[R];
    weft_join h[R];
    cr_assert_eq(weft_broadcast_new(&tx, &rx[0], N), 0);
    for (int i = 1; i < R; i++)
        cr_assert_eq(weft_broadcast_subscribe(&tx, &rx[i]), 0);
    for (int i = 0; i < R; i++)
        h[i] = spawn_receiver(rt, &rx[i], out[i], 0);
    for (uint64_t v = 0; v < N; v++)
        cr_assert_eq(weft_broadcast_send(&tx, v), R, "the send reports the receivers");
    cr_assert_eq(weft_broadcast_tx_drop(&tx), 0);
    for (int i = 0; i < R; i++) {
        cr_assert_eq(join_value(&h[i]), N, "drained, then -EPIPE");
        for (uint64_t v = 0; v < N; v++)
            cr_assert_eq(out[i][v], v);
        cr_assert_eq(weft_broadcast_rx_drop(&rx[i]), 0);
    }
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(broadcast, a_lagging_receiver_is_told_how_many_it_missed)
{
    weft_broadcast_tx tx;
    weft_broadcast_rx rx, late;
    uint64_t v;
    cr_assert_eq(weft_broadcast_new(&tx, &rx, 4), 0);
    cr_assert_eq(weft_broadcast_try_recv(&rx, &v), -EAGAIN);
    for (uint64_t i = 0; i < 10; i++)
        cr_assert_eq(weft_broadcast_send(&tx, i), 1);
    cr_assert_eq(weft_broadcast_subscribe(&tx, &late), 0);
    expect_recv(&rx, -EOVERFLOW, 6);    /* 0..5 were overwritten */
    for (uint64_t i = 6; i < 10; i++)
        expect_recv(&rx, 0, i);
    cr_assert_eq(weft_broadcast_try_recv(&rx, &v), -EAGAIN);
    cr_assert_eq(weft_broadcast_try_recv(&late, &v), -EAGAIN, "subscribed after: sees none");
    cr_assert_eq(weft_broadcast_send(&tx, 10), 2);
    expect_recv(&late, 0, 10);
    expect_recv(&rx, 0, 10);
    cr_assert_eq(weft_broadcast_tx_drop(&tx), 0);
    cr_assert_eq(weft_broadcast_try_recv(&rx, &v), -EPIPE);
    cr_assert_eq(weft_broadcast_rx_drop(&rx), 0);
    cr_assert_eq(weft_broadcast_rx_drop(&late), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(broadcast, close_lets_receivers_drain_then_ends)
{
    weft_runtime *rt = rt_make(2);
    weft_broadcast_tx tx, tx2;
    weft_broadcast_rx rx, rx2;
    uint64_t v;
    cr_assert_eq(weft_broadcast_new(&tx, &rx, 8), 0);
    cr_assert_eq(weft_broadcast_subscribe(&tx, &rx2), 0);
    cr_assert_eq(weft_broadcast_tx_clone(&tx2, &tx), 0);
    weft_join waiting = queue_receiver(rt, &tx, &rx2, NULL, 0);
    cr_assert_eq(weft_broadcast_send(&tx, 1), 2);
    cr_assert_eq(join_value(&waiting), 1);
    cr_assert_eq(weft_broadcast_tx_drop(&tx), 0);
    cr_assert_eq(weft_broadcast_send(&tx2, 2), 2, "a clone keeps it open");
    waiting = spawn_receiver(rt, &rx2, NULL, 0);
    cr_assert_eq(join_value(&waiting), 2);
    waiting = queue_receiver(rt, &tx2, &rx2, NULL, 0);
    cr_assert_eq(weft_broadcast_tx_drop(&tx2), 0);  /* the last sender */
    cr_assert_eq(join_value(&waiting), -EPIPE, "a waiting receive sees the end");
    expect_recv(&rx, 0, 1);     /* rx drains what it has not seen, then ends */
    expect_recv(&rx, 0, 2);
    cr_assert_eq(weft_broadcast_try_recv(&rx, &v), -EPIPE);
    cr_assert_eq(weft_broadcast_rx_drop(&rx), 0);
    cr_assert_eq(weft_broadcast_rx_drop(&rx2), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(broadcast, no_receiver_means_nothing_is_stored)
{
    weft_broadcast_tx tx;
    weft_broadcast_rx rx;
    uint64_t v;
    cr_assert_eq(weft_broadcast_new(&tx, &rx, 2), 0);
    cr_assert_eq(weft_broadcast_rx_drop(&rx), 0);
    cr_assert_eq(weft_broadcast_send(&tx, 1), -EPIPE);
    cr_assert_eq(weft_broadcast_subscribe(&tx, &rx), 0);
    cr_assert_eq(weft_broadcast_try_recv(&rx, &v), -EAGAIN);
    cr_assert_eq(weft_broadcast_send(&tx, 2), 1);
    expect_recv(&rx, 0, 2);
    cr_assert_eq(weft_broadcast_rx_drop(&rx), 0);
    cr_assert_eq(weft_broadcast_tx_drop(&tx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

struct thread_sender {
    weft_broadcast_tx tx;
    uint64_t id;
    pthread_t th;
};

static void *thread_send(void *arg)
{
    struct thread_sender *s = arg;
    for (uint64_t i = 0; i < 1000; i++)
        cr_assert_eq(weft_broadcast_send(&s->tx, s->id << 32 | i), 2);
    cr_assert_eq(weft_broadcast_tx_drop(&s->tx), 0);
    return NULL;
}

Test(broadcast, senders_on_threads_and_many_waiting_receivers)
{
    enum { T = 4, R = 70 };     /* R: more than one wake batch */
    static uint64_t out[4000];
    weft_runtime *rt = rt_make(4);
    weft_broadcast_tx tx;
    weft_broadcast_rx rx, rx2;
    static weft_broadcast_rx many[R];
    static weft_join hm[R];
    cr_assert_eq(weft_broadcast_new(&tx, &rx, 4000), 0);
    for (int i = 0; i < R; i++) {
        cr_assert_eq(weft_broadcast_subscribe(&tx, &many[i]), 0);
        hm[i] = spawn_receiver(rt, &many[i], NULL, 0);
    }
    WAIT_FOR(weft__broadcast_waiters(&tx) == R);
    cr_assert_eq(weft_broadcast_send(&tx, 77), R + 1);
    for (int i = 0; i < R; i++) {
        cr_assert_eq(join_value(&hm[i]), 77);
        cr_assert_eq(weft_broadcast_rx_drop(&many[i]), 0);
    }
    uint64_t v;
    expect_recv(&rx, 0, 77);
    cr_assert_eq(weft_broadcast_subscribe(&tx, &rx2), 0);
    weft_join h = spawn_receiver(rt, &rx, out, 0);
    struct thread_sender s[T];
    for (int i = 0; i < T; i++) {
        s[i].id = (uint64_t)i;
        cr_assert_eq(weft_broadcast_tx_clone(&s[i].tx, &tx), 0);
        pthread_create(&s[i].th, NULL, thread_send, &s[i]);
    }
    cr_assert_eq(weft_broadcast_tx_drop(&tx), 0);
    for (int i = 0; i < T; i++)
        pthread_join(s[i].th, NULL);
    cr_assert_eq(join_value(&h), T * 1000);
    uint64_t next[T] = { 0 };
    for (int i = 0; i < T * 1000; i++) {
        uint64_t id = out[i] >> 32;
        cr_assert_eq(out[i] & 0xffffffffu, next[id]++, "per-sender order");
        expect_recv(&rx2, 0, out[i]);   /* both receivers saw the same order */
    }
    cr_assert_eq(weft_broadcast_try_recv(&rx2, &v), -EPIPE);
    cr_assert_eq(weft_broadcast_rx_drop(&rx), 0);
    cr_assert_eq(weft_broadcast_rx_drop(&rx2), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(broadcast, misuse_and_allocation_failure)
{
    weft_broadcast_tx tx, empty_tx = { 0 };
    weft_broadcast_rx rx, empty_rx = { 0 };
    uint64_t v;
    cr_assert_eq(weft_broadcast_new(NULL, &rx, 1), -EINVAL);
    cr_assert_eq(weft_broadcast_new(&tx, NULL, 1), -EINVAL);
    cr_assert_eq(weft_broadcast_new(&tx, &rx, 0), -EINVAL);
    cr_assert_eq(weft_broadcast_new(&tx, &rx, SIZE_MAX), -ENOMEM);
    weft__alloc_fail_after(1);
    cr_assert_eq(weft_broadcast_new(&tx, &rx, 16), -ENOMEM);
    weft__alloc_fail_after(0);
    cr_assert_eq(weft_broadcast_send(&empty_tx, 1), -EINVAL);
    cr_assert_eq(weft_broadcast_send(NULL, 1), -EINVAL);
    cr_assert_eq(weft_broadcast_tx_clone(&tx, &empty_tx), -EINVAL);
    cr_assert_eq(weft_broadcast_tx_drop(&empty_tx), -EINVAL);
    cr_assert_eq(weft_broadcast_subscribe(&empty_tx, &rx), -EINVAL);
    cr_assert_eq(weft_broadcast_try_recv(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_broadcast_recv(NULL, &empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_broadcast_rx_drop(&empty_rx), -EINVAL);
    cr_assert_eq(weft_broadcast_rx_drop(NULL), -EINVAL);

    cr_assert_eq(weft_broadcast_new(&tx, &rx, 16), 0, "usable after -ENOMEM");
    cr_assert_eq(weft_broadcast_try_recv(&rx, NULL), -EINVAL);
    weft_runtime *rt = rt_make(2);
    weft_join a = queue_receiver(rt, &tx, &rx, NULL, 0);
    weft_join b = spawn_receiver(rt, &rx, NULL, 0);
    cr_assert_eq(join_value(&b), -EBUSY, "one receive per receiver at a time");
    cr_assert_eq(weft_broadcast_send(&tx, 3), 1);
    cr_assert_eq(join_value(&a), 3);
    cr_assert_eq(weft_broadcast_tx_drop(&tx), 0);
    cr_assert_eq(weft_broadcast_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation -------------------------------------------------------------- */

static void cancel_queued(unsigned flags)
{
    weft_runtime *rt = rt_make(2);
    weft_broadcast_tx tx;
    weft_broadcast_rx rx;
    cr_assert_eq(weft_broadcast_new(&tx, &rx, 4), 0);
    weft_join h = queue_receiver(rt, &tx, &rx, NULL, flags);
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome o = join_outcome(&h);
    if (flags & WEFT_TASK_CANCEL_SAFE)
        cr_assert_eq(o.status, -ECANCELED);
    else
        cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(weft__broadcast_waiters(&tx), 0);
    cr_assert_eq(weft_broadcast_send(&tx, 9), 1);
    expect_recv(&rx, 0, 9);     /* the next value is still this receiver's */
    cr_assert_eq(weft_broadcast_tx_drop(&tx), 0);
    cr_assert_eq(weft_broadcast_rx_drop(&rx), 0);
    rt_done(rt);
}

Test(broadcast, cancel_queued_recv_consumes_nothing)
{
    cancel_queued(0);
    cancel_queued(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

static void cancel_woken(unsigned flags)
{
    weft_runtime *rt = rt_make(1);
    weft_broadcast_tx tx;
    weft_broadcast_rx rx;
    blocker bl;
    uint64_t v;
    cr_assert_eq(weft_broadcast_new(&tx, &rx, 4), 0);
    weft_join h = queue_receiver(rt, &tx, &rx, NULL, flags);
    blocker_start(rt, &bl);
    cr_assert_eq(weft_broadcast_send(&tx, 6), 1);   /* wakes it; it cannot run */
    cr_assert_eq(weft_abort(&h), 0);
    blocker_release(&bl);
    weft_outcome o = join_outcome(&h);
    if (flags & WEFT_TASK_CANCEL_SAFE) {
        cr_assert_eq(o.status, -ECANCELED);
        expect_recv(&rx, 0, 6);     /* torn down: the value is still unseen */
    } else {
        cr_assert_eq(o.value, 6, "RACED: the value is reported");
    }
    cr_assert_eq(weft_broadcast_try_recv(&rx, &v), -EAGAIN);
    cr_assert_eq(weft_broadcast_tx_drop(&tx), 0);
    cr_assert_eq(weft_broadcast_rx_drop(&rx), 0);
    rt_done(rt);
}

Test(broadcast, cancel_woken_recv_loses_no_value)
{
    cancel_woken(0);
    cancel_woken(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

Test(broadcast, shutdown_withdraws_receives)
{
    weft_runtime *rt = rt_make(2);
    weft_broadcast_tx tx;
    weft_broadcast_rx rx, rx2;
    cr_assert_eq(weft_broadcast_new(&tx, &rx, 4), 0);
    cr_assert_eq(weft_broadcast_subscribe(&tx, &rx2), 0);
    weft_join a = queue_receiver(rt, &tx, &rx, NULL, WEFT_TASK_SHIELDED);
    weft_join b = queue_receiver(rt, &tx, &rx2, NULL, 0);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(join_outcome(&a).status, -ECANCELED);
    cr_assert_eq(join_value(&b), -ECANCELED);
    cr_assert_eq(weft__broadcast_waiters(&tx), 0);
    cr_assert_eq(weft_broadcast_tx_drop(&tx), 0);
    cr_assert_eq(weft_broadcast_rx_drop(&rx), 0);
    cr_assert_eq(weft_broadcast_rx_drop(&rx2), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
