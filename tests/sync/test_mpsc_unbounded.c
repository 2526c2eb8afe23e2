/*
 * tests/sync/test_mpsc_unbounded.c - the unbounded mpsc channel: sends never
 * wait, the buffer grows (across a wrapped ring too) keeping order, -ENOMEM
 * when growing fails leaves the channel as it was, close semantics, many
 * thread senders into one task, and a withdrawn receive.
 */
#include <pthread.h>

#include "runtime/alloc.h"
#include "sync_test.h"

TestSuite(mpsc_unbounded, .timeout = 120);

/* Receive until the end; return the count, add the values to *sum. */
struct receiver {
    weft_frame f;
    weft_mpsc_rx *rx;
    uint64_t *sum;
    uint64_t v;
    int64_t n, rc;
};

static weft_poll receiver_poll(weft_cx *cx, void *p)
{
    struct receiver *r = p;
    WEFT_BEGIN(&r->f);
    for (;;) {
        WEFT_AWAIT(&r->f, r->rc, weft_mpsc_recv(cx, r->rx, &r->v));
        if (r->rc < 0)
            break;
        if (r->sum)
            *r->sum += r->v;
        r->n++;
    }
    WEFT_RETURN(&r->f, r->rc == -EPIPE ? r->n : r->rc);
    WEFT_END(&r->f);
}

Test(mpsc_unbounded, grows_and_keeps_order_across_a_wrapped_ring)
{
    weft_mpsc_unbounded_tx tx;
    weft_mpsc_rx rx;
    uint64_t next_in = 0, next_out = 0, v;
    cr_assert_eq(weft_mpsc_unbounded_new(&tx, &rx), 0);
    /* Wrap the initial ring, then grow it several times while wrapped. */
    for (int i = 0; i < 50; i++)
        cr_assert_eq(weft_mpsc_unbounded_send(&tx, next_in++), 0);
    for (int i = 0; i < 30; i++)
        expect_mpsc_recv(&rx, next_out++);
    for (int i = 0; i < 5000; i++)
        cr_assert_eq(weft_mpsc_unbounded_send(&tx, next_in++), 0);
    while (next_out < next_in)
        expect_mpsc_recv(&rx, next_out++);
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), -EAGAIN);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), -EPIPE);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc_unbounded, failed_growth_sends_nothing)
{
    weft_mpsc_unbounded_tx tx;
    weft_mpsc_rx rx;
    uint64_t n = 0;
    cr_assert_eq(weft_mpsc_unbounded_new(&tx, &rx), 0);
    /* Fill the initial buffer without growing: stop before the first grow. */
    for (;;) {
        weft__alloc_fail_after(1);
        int rc = weft_mpsc_unbounded_send(&tx, n);
        weft__alloc_fail_after(0);
        if (rc == -ENOMEM)
            break;
        cr_assert_eq(rc, 0);
        n++;
    }
    cr_assert_gt(n, 0);
    cr_assert_eq(weft_mpsc_unbounded_send(&tx, n), 0, "usable after the failure");
    for (uint64_t i = 0; i <= n; i++)
        expect_mpsc_recv(&rx, i);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);

    weft__alloc_fail_after(1);
    cr_assert_eq(weft_mpsc_unbounded_new(&tx, &rx), -ENOMEM);
    weft__alloc_fail_after(2);
    cr_assert_eq(weft_mpsc_unbounded_new(&tx, &rx), -ENOMEM, "buffer allocation fails");
    weft__alloc_fail_after(0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc_unbounded, close_semantics)
{
    weft_mpsc_unbounded_tx tx, tx2;
    weft_mpsc_rx rx;
    uint64_t v;
    cr_assert_eq(weft_mpsc_unbounded_new(&tx, &rx), 0);
    cr_assert_eq(weft_mpsc_unbounded_tx_clone(&tx2, &tx), 0);
    cr_assert_eq(weft_mpsc_unbounded_send(&tx, 1), 0);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_unbounded_send(&tx2, 2), 0);
    cr_assert_eq(weft_mpsc_rx_close(&rx), 0);
    cr_assert_eq(weft_mpsc_unbounded_send(&tx2, 3), -EPIPE);
    expect_mpsc_recv(&rx, 1);
    expect_mpsc_recv(&rx, 2);
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), -EPIPE);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    cr_assert_eq(weft_mpsc_unbounded_send(&tx2, 4), -EPIPE);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&tx2), 0);

    cr_assert_eq(weft_mpsc_unbounded_new(&tx, &rx), 0);
    cr_assert_eq(weft_mpsc_unbounded_send(&tx, 1), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 1);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&tx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc_unbounded, misuse_is_rejected)
{
    weft_mpsc_unbounded_tx tx, empty = { 0 };
    weft_mpsc_rx rx;
    weft_mpsc_tx btx;
    cr_assert_eq(weft_mpsc_unbounded_new(NULL, &rx), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_new(&tx, NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_send(&empty, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_send(NULL, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_tx_clone(&tx, &empty), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&empty), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_new(&tx, &rx), 0);
    cr_assert_eq(weft_mpsc_tx_clone(&btx, (weft_mpsc_tx *)&tx), -EINVAL,
                 "an unbounded sender is not a bounded one");
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

struct thread_sender {
    weft_mpsc_unbounded_tx tx;
    uint64_t first, count;
};

static void *thread_send(void *arg)
{
    struct thread_sender *ts = arg;
    for (uint64_t i = 0; i < ts->count; i++)
        cr_assert_eq(weft_mpsc_unbounded_send(&ts->tx, ts->first + i), 0);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&ts->tx), 0);
    return NULL;
}

Test(mpsc_unbounded, thread_senders_into_a_task)
{
    enum { THREADS = 4, PER = 20000 };
    weft_runtime *rt = rt_make(2);
    weft_mpsc_unbounded_tx tx;
    weft_mpsc_rx rx;
    struct thread_sender ts[THREADS];
    pthread_t th[THREADS];
    uint64_t sum = 0, want = 0;
    cr_assert_eq(weft_mpsc_unbounded_new(&tx, &rx), 0);
    struct receiver fr = { .rx = &rx, .sum = &sum };
    weft_join h = spawn_task(rt, DESC(receiver_poll, &fr, NULL, 0));
    for (int i = 0; i < THREADS; i++) {
        ts[i].first = (uint64_t)i * PER;
        ts[i].count = PER;
        cr_assert_eq(weft_mpsc_unbounded_tx_clone(&ts[i].tx, &tx), 0);
        pthread_create(&th[i], NULL, thread_send, &ts[i]);
    }
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&tx), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    for (uint64_t v = 0; v < (uint64_t)THREADS * PER; v++)
        want += v;
    cr_assert_eq(join_value(&h), THREADS * PER);
    cr_assert_eq(sum, want);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc_unbounded, cancel_woken_recv_returns_the_message)
{
    weft_runtime *rt = rt_make(1);
    weft_mpsc_unbounded_tx tx;
    weft_mpsc_rx rx;
    blocker bl;
    struct receiver fr = { .rx = &rx };
    cr_assert_eq(weft_mpsc_unbounded_new(&tx, &rx), 0);
    weft_join h = spawn_task(rt, DESC(receiver_poll, &fr, NULL, 0));
    WAIT_FOR(weft__mpsc_rx_waiting(&rx));
    blocker_start(rt, &bl);
    cr_assert_eq(weft_mpsc_unbounded_send(&tx, 5), 0);
    cr_assert_eq(weft_abort(&h), 0);
    blocker_release(&bl);
    /* RACED: it received the message, then its next await saw the cancel. */
    cr_assert_eq(join_value(&h), -ECANCELED);
    uint64_t v;
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), -EAGAIN, "taken by the task, not left twice");
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
