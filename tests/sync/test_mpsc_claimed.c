/*
 * tests/sync/test_mpsc_claimed.c - the bounded mpsc channel's receive when
 * the next slot is claimed but not yet filled: a sender stopped between its
 * CAS and its store (sync/mpsc_rx.c). These tests make that slot by hand
 * (white-box: they claim through the channel's state word) and check that
 * try_recv and recv_blocking wait for the fill, yielding and then napping,
 * and that an async recv is requeued rather than left waiting for a wake
 * nobody will send.
 */
#include <pthread.h>

#include "sync/chan.h"
#include "sync_test.h"

TestSuite(mpsc_claimed, .timeout = 120);

/* ---- a claimed slot its sender has not filled yet ------------------------- */

/* Claim the next position of a bounded channel as a send does, without
 * filling it: what a receiver meets while that sender is preempted between
 * its CAS and its store (sync/mpsc_rx.c). Returns the state before the claim,
 * which weft__chan_put takes to fill it. */
static uint64_t claim_unfilled(weft_mpsc_rx *rx)
{
    weft__chan *c = rx->weft_chan;
    uint64_t s = atomic_load(&c->st);
    while (!atomic_compare_exchange_weak(&c->st, &s, weft__chan_claim(s, true)))
        ;
    return s;
}

static void fill(weft_mpsc_rx *rx, uint64_t before, uint64_t value)
{
    weft_waker w = weft__chan_put(rx->weft_chan, before, value);
    weft_waker_wake(&w);
}

struct try_recv_thread {
    weft_mpsc_rx *rx;
    bool blocking;              /* recv_blocking instead of try_recv */
    _Atomic int started, done;
    int rc;
    uint64_t v;
};

static void *try_recv_thread(void *p)
{
    struct try_recv_thread *t = p;
    atomic_store(&t->started, 1);
    t->rc = t->blocking ? weft_mpsc_recv_blocking(t->rx, &t->v)
                        : weft_mpsc_try_recv(t->rx, &t->v);
    atomic_store(&t->done, 1);
    return NULL;
}

/* try_recv never reports empty past a claimed slot: it waits for the fill,
 * so that a value sent after it (and returned to its sender) is not seen
 * first. */
Test(mpsc_claimed, try_recv_waits_for_a_claimed_slot)
{
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 2), 0);
    uint64_t before = claim_unfilled(&rx);
    struct try_recv_thread t = { .rx = &rx };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, try_recv_thread, &t), 0);
    WAIT_FOR(atomic_load(&t.started));
    cr_assert_eq(weft_mpsc_try_send(&tx, 8), 0);    /* completes behind the claim */
    fill(&rx, before, 7);
    pthread_join(th, NULL);
    cr_assert_eq(t.rc, 0);
    cr_assert_eq(t.v, 7);
    expect_mpsc_recv(&rx, 8);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* A sender stopped between its claim and its fill for longer than the
 * receiver's yields (a debugger, a preempted thread): the receiving thread
 * goes on to nap (sync/mpsc_rx.c), and still takes the value once it is
 * there. The slot stays unfilled until the nap count shows the receiver
 * has napped twice (so it came back from a nap to look again), however
 * slowly it gets there; the fill then ends its wait. */
static void naps_until_filled(bool blocking)
{
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 2), 0);
    uint64_t before = claim_unfilled(&rx);
    uint64_t naps = weft__ring_naps();
    struct try_recv_thread t = { .rx = &rx, .blocking = blocking };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, try_recv_thread, &t), 0);
    WAIT_FOR(weft__ring_naps() >= naps + 2);
    cr_assert_eq(atomic_load(&t.done), 0, "returned past an unfilled slot");
    fill(&rx, before, 7);
    pthread_join(th, NULL);
    cr_assert_eq(t.rc, 0);
    cr_assert_eq(t.v, 7);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc_claimed, try_recv_naps_on_a_long_claimed_slot) { naps_until_filled(false); }
Test(mpsc_claimed, recv_blocking_naps_on_a_long_claimed_slot) { naps_until_filled(true); }

struct counting_receiver {
    weft_frame f;
    weft_mpsc_rx *rx;
    _Atomic int *polls;
    uint64_t v;
    weft_poll rc;
};

static weft_poll counting_receiver_poll(weft_cx *cx, void *p)
{
    struct counting_receiver *r = p;
    atomic_fetch_add(r->polls, 1);
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->rc, weft_mpsc_recv(cx, r->rx, &r->v));
    WEFT_RETURN(&r->f, r->rc < 0 ? r->rc : (int64_t)r->v);
    WEFT_END(&r->f);
}

/* recv meets a claimed slot: it cannot wait for a wake (the sender wakes
 * only a receiver that published its waker before the claim), so it is
 * requeued and polls again until the slot is filled. */
Test(mpsc_claimed, recv_requeues_on_a_claimed_slot)
{
    weft_runtime *rt = rt_make(1);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 2), 0);
    uint64_t before = claim_unfilled(&rx);
    _Atomic int polls = 0;
    struct counting_receiver r = { .rx = &rx, .polls = &polls };
    weft_join h = spawn_task(rt, DESC(counting_receiver_poll, &r, NULL, 0));
    WAIT_FOR(atomic_load(&polls) >= 3);
    fill(&rx, before, 7);
    cr_assert_eq(join_value(&h), 7);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
