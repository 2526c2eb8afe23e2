/*
 * tests/sync/test_mpsc.c - the bounded mpsc channel: ordering, capacity,
 * permits, FIFO fairness of waiting senders, close semantics, thread-side
 * send/recv, misuse, and the cancellation contract of reserve, send and recv
 * in each state: queued, woken-but-not-run, holding, torn down, shutdown.
 */
#include <pthread.h>

#include "runtime/alloc.h"
#include "sync_test.h"

TestSuite(mpsc, .timeout = 120);

/* ---- tasks ------------------------------------------------------------------ */

/* Reserve a permit; optionally wait on `hold` while holding it; then send
 * `value` with it. Returns the send's result, or the failed await's. On a
 * cancelled hold it releases the permit and returns -ECANCELED. */
struct reserver {
    weft_frame f;
    weft_mpsc_tx *tx;
    uint64_t value;
    weft_notify *hold;
    weft_mpsc_permit permit;
    weft_notify_waiter hw;
    int64_t rc;
};

static weft_poll reserver_poll(weft_cx *cx, void *p)
{
    struct reserver *r = p;
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->rc, weft_mpsc_reserve(cx, r->tx, &r->permit));
    if (r->rc < 0)
        WEFT_RETURN(&r->f, r->rc);
    if (r->hold) {
        WEFT_AWAIT(&r->f, r->rc, weft_notify_wait(cx, r->hold, &r->hw));
        if (r->rc < 0) {
            cr_assert_eq(weft_mpsc_permit_release(&r->permit), 0);
            WEFT_RETURN(&r->f, r->rc);
        }
    }
    WEFT_RETURN(&r->f, weft_mpsc_permit_send(&r->permit, r->value));
    WEFT_END(&r->f);
}

/* A cancel-safe holder's drop hook: release whatever permit is held. */
static _Atomic int released_in_drop;

static void reserver_drop(void *p)
{
    struct reserver *r = p;
    if (weft_mpsc_permit_release(&r->permit) == 0)
        atomic_fetch_add(&released_in_drop, 1);
}

static weft_join spawn_reserver(weft_runtime *rt, weft_mpsc_tx *tx, uint64_t value,
                                weft_notify *hold, unsigned flags)
{
    struct reserver fr = { .tx = tx, .value = value, .hold = hold };
    return spawn_task(rt, DESC(reserver_poll, &fr, reserver_drop, flags));
}

/* Send `count` values from `first` on, one await each. Returns how many were
 * sent, or the first error. */
struct sender {
    weft_frame f;
    weft_mpsc_tx *tx;
    uint64_t first, count, i;
    weft_mpsc_send_op op;
    int64_t rc;
};

static weft_poll sender_poll(weft_cx *cx, void *p)
{
    struct sender *s = p;
    WEFT_BEGIN(&s->f);
    for (s->i = 0; s->i < s->count; s->i++) {
        WEFT_AWAIT(&s->f, s->rc, weft_mpsc_send(cx, s->tx, &s->op, s->first + s->i));
        if (s->rc < 0)
            WEFT_RETURN(&s->f, s->rc);
    }
    WEFT_RETURN(&s->f, (int64_t)s->count);
    WEFT_END(&s->f);
}

static weft_join spawn_sender(weft_runtime *rt, weft_mpsc_tx *tx, uint64_t first,
                              uint64_t count, unsigned flags)
{
    struct sender fr = { .tx = tx, .first = first, .count = count };
    return spawn_task(rt, DESC(sender_poll, &fr, NULL, flags));
}

/* Receive until the end; values go to out[], the count is returned. With
 * max_one set, receive one value and return it (or the error). */
struct receiver {
    weft_frame f;
    weft_mpsc_rx *rx;
    uint64_t *out;
    bool max_one;
    uint64_t v;
    int64_t n, rc;
};

static weft_poll receiver_poll(weft_cx *cx, void *p)
{
    struct receiver *r = p;
    WEFT_BEGIN(&r->f);
    for (;;) {
        WEFT_AWAIT(&r->f, r->rc, weft_mpsc_recv(cx, r->rx, &r->v));
        if (r->max_one)
            WEFT_RETURN(&r->f, r->rc < 0 ? r->rc : (int64_t)r->v);
        if (r->rc < 0)
            break;
        r->out[r->n++] = r->v;
    }
    WEFT_RETURN(&r->f, r->rc == -EPIPE ? r->n : r->rc);
    WEFT_END(&r->f);
}

static weft_join spawn_receiver(weft_runtime *rt, weft_mpsc_rx *rx, uint64_t *out,
                                unsigned flags)
{
    struct receiver fr = { .rx = rx, .out = out, .max_one = out == NULL };
    return spawn_task(rt, DESC(receiver_poll, &fr, NULL, flags));
}

/* ---- ordering, capacity, permits --------------------------------------------- */

Test(mpsc, values_arrive_in_order_through_a_small_buffer)
{
    enum { N = 10000 };
    static uint64_t out[N];
    weft_runtime *rt = rt_make(4);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 3), 0);
    weft_join hr = spawn_receiver(rt, &rx, out, 0);
    weft_join hs = spawn_sender(rt, &tx, 0, N, 0);
    cr_assert_eq(join_value(&hs), N);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(join_value(&hr), N, "receiver ends with -EPIPE after draining");
    for (uint64_t i = 0; i < N; i++)
        cr_assert_eq(out[i], i);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc, try_send_respects_capacity)
{
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    uint64_t v;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 2), 0);
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), -EAGAIN);
    cr_assert_eq(weft_mpsc_try_send(&tx, 1), 0);
    cr_assert_eq(weft_mpsc_try_send(&tx, 2), 0);
    cr_assert_eq(weft_mpsc_try_send(&tx, 3), -EAGAIN);
    expect_mpsc_recv(&rx, 1);
    cr_assert_eq(weft_mpsc_try_send(&tx, 3), 0);
    expect_mpsc_recv(&rx, 2);
    expect_mpsc_recv(&rx, 3);
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), -EAGAIN);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), -EPIPE);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* A capacity that is not a power of two: the ring is rounded up to 4 slots
 * while permits still stop at 3, and positions wrap around the ring. */
Test(mpsc, capacity_three_wraps_in_order)
{
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    uint64_t v, next = 0, sent = 0;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 3), 0);
    for (int round = 0; round < 50; round++) {
        unsigned n = 1 + (unsigned)round % 3;
        for (unsigned i = 0; i < n; i++)
            cr_assert_eq(weft_mpsc_try_send(&tx, sent++), 0);
        if (n == 3)
            cr_assert_eq(weft_mpsc_try_send(&tx, 99), -EAGAIN);
        for (unsigned i = 0; i < n; i++)
            expect_mpsc_recv(&rx, next++);
        cr_assert_eq(weft_mpsc_try_recv(&rx, &v), -EAGAIN);
    }
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), -EPIPE);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc, permits_count_against_capacity)
{
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    weft_mpsc_permit a = WEFT_MPSC_PERMIT_INIT, b = WEFT_MPSC_PERMIT_INIT;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 2), 0);
    cr_assert_eq(weft_mpsc_try_reserve(&tx, &a), 0);
    cr_assert_eq(weft_mpsc_try_reserve(&tx, &a), -EINVAL, "already held");
    cr_assert_eq(weft_mpsc_try_send(&tx, 1), 0);
    cr_assert_eq(weft_mpsc_try_reserve(&tx, &b), -EAGAIN, "a held permit uses a slot");
    cr_assert_eq(weft_mpsc_permit_release(&a), 0);
    cr_assert_eq(weft_mpsc_permit_release(&a), -EINVAL, "released twice");
    cr_assert_eq(weft_mpsc_try_reserve(&tx, &b), 0);
    cr_assert_eq(weft_mpsc_permit_send(&b, 2), 0);
    cr_assert_eq(weft_mpsc_permit_send(&b, 3), -EINVAL, "a permit sends once");
    expect_mpsc_recv(&rx, 1);
    expect_mpsc_recv(&rx, 2);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc, held_permit_keeps_the_channel_open)
{
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    weft_mpsc_permit p = WEFT_MPSC_PERMIT_INIT;
    uint64_t v;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    cr_assert_eq(weft_mpsc_try_reserve(&tx, &p), 0);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), -EAGAIN, "not ended while a permit is held");
    cr_assert_eq(weft_mpsc_permit_send(&p, 8), 0);
    expect_mpsc_recv(&rx, 8);
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), -EPIPE);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc, reserve_await_then_send)
{
    weft_runtime *rt = rt_make(2);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    cr_assert_eq(weft_mpsc_try_send(&tx, 1), 0);
    weft_join h = spawn_reserver(rt, &tx, 2, NULL, 0);
    WAIT_FOR(weft__mpsc_send_waiters(&tx) == 1);
    expect_mpsc_recv(&rx, 1);    /* frees the slot: granted to the reserver */
    cr_assert_eq(join_value(&h), 0);
    expect_mpsc_recv(&rx, 2);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- fairness ------------------------------------------------------------------ */

Test(mpsc, waiting_senders_are_served_in_fifo_order)
{
    enum { WAITERS = 6 };
    weft_runtime *rt = rt_make(4);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    weft_join h[WAITERS];
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    cr_assert_eq(weft_mpsc_try_send(&tx, 100), 0);
    for (int i = 0; i < WAITERS; i++) {
        if (i % 2)
            h[i] = spawn_reserver(rt, &tx, 101 + i, NULL, 0);
        else
            h[i] = spawn_sender(rt, &tx, 101 + i, 1, 0);
        WAIT_FOR(weft__mpsc_send_waiters(&tx) == (size_t)i + 1);
    }
    cr_assert_eq(weft_mpsc_try_send(&tx, 999), -EAGAIN, "try_send cannot overtake the queue");
    for (int i = 0; i <= WAITERS; i++) {
        uint64_t v;
        WAIT_FOR(weft_mpsc_try_recv(&rx, &v) == 0);
        cr_assert_eq(v, 100u + i, "served out of order");
    }
    for (int i = 0; i < WAITERS; i++)
        cr_assert_geq(join_value(&h[i]), 0);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- close semantics ---------------------------------------------------------- */

Test(mpsc, last_sender_gone_ends_after_draining)
{
    weft_runtime *rt = rt_make(2);
    weft_mpsc_tx tx, tx2;
    weft_mpsc_rx rx;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 4), 0);
    cr_assert_eq(weft_mpsc_tx_clone(&tx2, &tx), 0);
    cr_assert_eq(weft_mpsc_try_send(&tx, 1), 0);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    expect_mpsc_recv(&rx, 1);
    weft_join h = spawn_receiver(rt, &rx, NULL, 0);
    WAIT_FOR(weft__mpsc_rx_waiting(&rx));
    cr_assert_eq(weft_mpsc_try_send(&tx2, 2), 0, "the clone still sends");
    cr_assert_eq(join_value(&h), 2);
    h = spawn_receiver(rt, &rx, NULL, 0);
    WAIT_FOR(weft__mpsc_rx_waiting(&rx));
    cr_assert_eq(weft_mpsc_tx_drop(&tx2), 0);
    cr_assert_eq(join_value(&h), -EPIPE, "the last sender's drop wakes the receiver");
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc, receiver_close_fails_senders_and_keeps_queued_values)
{
    weft_runtime *rt = rt_make(2);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    weft_mpsc_permit p = WEFT_MPSC_PERMIT_INIT;
    uint64_t v;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 2), 0);
    cr_assert_eq(weft_mpsc_try_send(&tx, 1), 0);
    cr_assert_eq(weft_mpsc_try_reserve(&tx, &p), 0);
    weft_join hs = spawn_sender(rt, &tx, 50, 1, 0);
    weft_join hr = spawn_reserver(rt, &tx, 60, NULL, 0);
    WAIT_FOR(weft__mpsc_send_waiters(&tx) == 2);
    cr_assert_not(weft_mpsc_tx_is_closed(&tx));
    cr_assert_eq(weft_mpsc_rx_close(&rx), 0);
    cr_assert(weft_mpsc_tx_is_closed(&tx));
    cr_assert_eq(join_value(&hs), -EPIPE, "a waiting send fails");
    cr_assert_eq(join_value(&hr), -EPIPE, "a waiting reserve fails");
    cr_assert_eq(weft_mpsc_try_send(&tx, 2), -EPIPE);
    cr_assert_eq(weft_mpsc_permit_send(&p, 3), -EPIPE, "a held permit cannot deliver");
    expect_mpsc_recv(&rx, 1);
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), -EPIPE, "drained and closed");
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc, receiver_drop_reports_discarded_values)
{
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 4), 0);
    cr_assert_eq(weft_mpsc_try_send(&tx, 1), 0);
    cr_assert_eq(weft_mpsc_try_send(&tx, 2), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 2);
    cr_assert_eq(weft_mpsc_try_send(&tx, 3), -EPIPE);
    cr_assert_eq(weft_mpsc_send_blocking(&tx, 3), -EPIPE);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- plain threads ------------------------------------------------------------- */

struct thread_sender {
    weft_mpsc_tx tx;
    uint64_t first, count;
};

static void *thread_send(void *arg)
{
    struct thread_sender *ts = arg;
    for (uint64_t i = 0; i < ts->count; i++)
        cr_assert_eq(weft_mpsc_send_blocking(&ts->tx, ts->first + i), 0);
    cr_assert_eq(weft_mpsc_tx_drop(&ts->tx), 0);
    return NULL;
}

Test(mpsc, blocking_send_and_recv_from_threads)
{
    enum { THREADS = 3, PER = 2000 };
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    struct thread_sender ts[THREADS];
    pthread_t th[THREADS];
    uint64_t next[THREADS] = { 0 };
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 2), 0);
    for (int i = 0; i < THREADS; i++) {
        ts[i].first = (uint64_t)i << 32;
        ts[i].count = PER;
        cr_assert_eq(weft_mpsc_tx_clone(&ts[i].tx, &tx), 0);
        pthread_create(&th[i], NULL, thread_send, &ts[i]);
    }
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    uint64_t v;
    int rc, n = 0;
    while ((rc = weft_mpsc_recv_blocking(&rx, &v)) == 0) {
        unsigned t = (unsigned)(v >> 32);
        cr_assert_lt(t, THREADS);
        cr_assert_eq(v & 0xffffffffu, next[t]++, "per-sender order kept");
        n++;
    }
    cr_assert_eq(rc, -EPIPE);
    cr_assert_eq(n, THREADS * PER);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- request/reply: a pointer to a oneshot sender through the channel --------- */

struct request {
    uint64_t arg;
    weft_oneshot_tx reply;
};

struct server {
    weft_frame f;
    weft_mpsc_rx *rx;
    uint64_t v;
    int64_t rc, served;
};

static weft_poll server_poll(weft_cx *cx, void *p)
{
    struct server *s = p;
    WEFT_BEGIN(&s->f);
    for (;;) {
        WEFT_AWAIT(&s->f, s->rc, weft_mpsc_recv(cx, s->rx, &s->v));
        if (s->rc < 0)
            break;
        struct request *req = weft_value_to_ptr(s->v);
        cr_assert_eq(weft_oneshot_send(&req->reply, req->arg * 2), 0);
        s->served++;
    }
    WEFT_RETURN(&s->f, s->served);
    WEFT_END(&s->f);
}

struct client {
    weft_frame f;
    weft_mpsc_tx tx;
    uint64_t rounds, i, v;
    struct request req;
    weft_oneshot_rx reply;
    weft_mpsc_send_op op;
    int64_t rc;
};

static weft_poll client_poll(weft_cx *cx, void *p)
{
    struct client *c = p;
    WEFT_BEGIN(&c->f);
    for (c->i = 0; c->i < c->rounds; c->i++) {
        cr_assert_eq(weft_oneshot_new(&c->req.reply, &c->reply), 0);
        c->req.arg = c->i;
        WEFT_AWAIT(&c->f, c->rc, weft_mpsc_send(cx, &c->tx, &c->op, weft_value_from_ptr(&c->req)));
        cr_assert_eq(c->rc, 0);
        WEFT_AWAIT(&c->f, c->rc, weft_oneshot_recv(cx, &c->reply, &c->v));
        cr_assert_eq(c->rc, 0);
        cr_assert_eq(c->v, c->i * 2);
        cr_assert_eq(weft_oneshot_rx_drop(&c->reply), 0);
    }
    cr_assert_eq(weft_mpsc_tx_drop(&c->tx), 0);
    WEFT_RETURN(&c->f, (int64_t)c->rounds);
    WEFT_END(&c->f);
}

Test(mpsc, request_reply_with_oneshot)
{
    enum { CLIENTS = 8, ROUNDS = 500 };
    weft_runtime *rt = rt_make(4);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    weft_join hc[CLIENTS];
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 4), 0);
    struct server sf = { .rx = &rx };
    weft_join hs = spawn_task(rt, DESC(server_poll, &sf, NULL, 0));
    for (int i = 0; i < CLIENTS; i++) {
        struct client cf = { .rounds = ROUNDS };
        cr_assert_eq(weft_mpsc_tx_clone(&cf.tx, &tx), 0);
        hc[i] = spawn_task(rt, DESC(client_poll, &cf, NULL, 0));
    }
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    for (int i = 0; i < CLIENTS; i++)
        cr_assert_eq(join_value(&hc[i]), ROUNDS);
    cr_assert_eq(join_value(&hs), CLIENTS * ROUNDS);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- misuse ------------------------------------------------------------------ */

struct blocking_in_task {
    weft_frame f;
    weft_mpsc_tx *tx;
    weft_mpsc_rx *rx;
};

static weft_poll blocking_in_task_poll(weft_cx *cx, void *p)
{
    (void)cx;
    struct blocking_in_task *b = p;
    uint64_t v;
    cr_assert_eq(weft_mpsc_recv_blocking(b->rx, &v), -EDEADLK);
    return weft_mpsc_send_blocking(b->tx, 1);
}

Test(mpsc, misuse_is_rejected)
{
    weft_mpsc_tx tx, empty_tx = { 0 };
    weft_mpsc_rx rx, empty_rx = { 0 };
    weft_mpsc_permit p = WEFT_MPSC_PERMIT_INIT;
    uint64_t v;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 0), -EINVAL);
    cr_assert_eq(weft_mpsc_new(NULL, &rx, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_new(&tx, NULL, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_new(&tx, &rx, SIZE_MAX), -ENOMEM);
    cr_assert_eq(weft_mpsc_new(&tx, &rx, (size_t)1 << 30), -ENOMEM, "past the state word's count");
    cr_assert_eq(weft_mpsc_try_send(&empty_tx, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_send_blocking(&empty_tx, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_try_reserve(&empty_tx, &p), -EINVAL);
    cr_assert_eq(weft_mpsc_tx_clone(&tx, &empty_tx), -EINVAL);
    cr_assert_eq(weft_mpsc_tx_drop(&empty_tx), -EINVAL);
    cr_assert_eq(weft_mpsc_tx_drop(NULL), -EINVAL);
    cr_assert(weft_mpsc_tx_is_closed(&empty_tx));
    cr_assert_eq(weft_mpsc_try_recv(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_mpsc_recv_blocking(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_mpsc_rx_close(&empty_rx), -EINVAL);
    cr_assert_eq(weft_mpsc_rx_drop(&empty_rx), -EINVAL);
    cr_assert_eq(weft_mpsc_recv(NULL, &empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_mpsc_reserve(NULL, &empty_tx, &p), -EINVAL);
    cr_assert_eq(weft_mpsc_send(NULL, &empty_tx, &p, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_permit_send(NULL, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_permit_send(&p, 1), -EINVAL, "no permit held");
    cr_assert_eq(weft_mpsc_permit_release(&p), -EINVAL);

    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    weft_mpsc_unbounded_tx utx;
    cr_assert_eq(weft_mpsc_unbounded_tx_clone(&utx, (weft_mpsc_unbounded_tx *)&tx), -EINVAL,
                 "a bounded sender is not an unbounded one");
    weft_runtime *rt = rt_make(1);
    struct blocking_in_task fr = { .tx = &tx, .rx = &rx };
    weft_join h = spawn_task(rt, DESC(blocking_in_task_poll, &fr, NULL, 0));
    cr_assert_eq(join_value(&h), -EDEADLK);

    h = spawn_receiver(rt, &rx, NULL, 0);
    WAIT_FOR(weft__mpsc_rx_waiting(&rx));
    cr_assert_eq(weft_mpsc_recv_blocking(&rx, &v), -EBUSY, "one receive waits at a time");
    cr_assert_eq(weft_mpsc_try_send(&tx, 4), 0);
    cr_assert_eq(join_value(&h), 4);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc, allocation_failure)
{
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    weft__alloc_fail_after(1);
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1024), -ENOMEM);
    weft__alloc_fail_after(0);
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1024), 0);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation: reserve ------------------------------------------------------ */

Test(mpsc, cancel_queued_reserve_keeps_no_permit_and_loses_no_wakeup)
{
    weft_runtime *rt = rt_make(2);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    cr_assert_eq(weft_mpsc_try_send(&tx, 1), 0);
    weft_join a = spawn_reserver(rt, &tx, 2, NULL, 0);
    WAIT_FOR(weft__mpsc_send_waiters(&tx) == 1);
    weft_join b = spawn_reserver(rt, &tx, 3, NULL, 0);
    WAIT_FOR(weft__mpsc_send_waiters(&tx) == 2);
    cr_assert_eq(weft_abort(&a), 0);
    cr_assert_eq(join_value(&a), -ECANCELED);
    cr_assert_eq(weft__mpsc_send_waiters(&tx), 1, "the withdrawn reserve left the queue");
    expect_mpsc_recv(&rx, 1);    /* the freed slot goes to b, not to the withdrawn a */
    cr_assert_eq(join_value(&b), 0);
    expect_mpsc_recv(&rx, 3);
    cr_assert_eq(weft_mpsc_try_send(&tx, 4), 0, "no permit was kept by a");
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 1);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc, cancel_woken_reserve_reports_the_permit)
{
    weft_runtime *rt = rt_make(1);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    blocker bl;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    cr_assert_eq(weft_mpsc_try_send(&tx, 1), 0);
    weft_join a = spawn_reserver(rt, &tx, 2, NULL, 0);
    WAIT_FOR(weft__mpsc_send_waiters(&tx) == 1);
    blocker_start(rt, &bl);
    expect_mpsc_recv(&rx, 1);                /* grants the permit; a cannot run */
    cr_assert_eq(weft_abort(&a), 0);
    blocker_release(&bl);
    weft_outcome o = join_outcome(&a);
    cr_assert_eq(o.status, 0);
    cr_assert_eq(o.value, 0, "RACED: the reserve yielded 0 and its permit sent");
    cr_assert_eq(o.cancel.source, WEFT_CANCEL_ABORT);
    expect_mpsc_recv(&rx, 2);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc, torn_down_woken_reserve_passes_the_permit_on)
{
    weft_runtime *rt = rt_make(1);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    blocker bl;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    cr_assert_eq(weft_mpsc_try_send(&tx, 1), 0);
    weft_join a = spawn_reserver(rt, &tx, 2, NULL, WEFT_TASK_CANCEL_SAFE);
    WAIT_FOR(weft__mpsc_send_waiters(&tx) == 1);
    weft_join b = spawn_reserver(rt, &tx, 3, NULL, 0);
    WAIT_FOR(weft__mpsc_send_waiters(&tx) == 2);
    blocker_start(rt, &bl);
    expect_mpsc_recv(&rx, 1);                /* grants a's permit */
    cr_assert_eq(weft_abort(&a), 0);
    blocker_release(&bl);
    cr_assert_eq(join_outcome(&a).status, -ECANCELED);
    cr_assert_eq(join_value(&b), 0, "b got the permit a could not use");
    expect_mpsc_recv(&rx, 3);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0, "and nothing else was sent");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc, cancel_while_holding_a_permit)
{
    weft_runtime *rt = rt_make(2);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    weft_notify never = WEFT_NOTIFY_INIT;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    /* Cooperative: the hold await yields -ECANCELED; the task releases. */
    weft_join a = spawn_reserver(rt, &tx, 2, &never, 0);
    WAIT_FOR(weft__notify_waiters(&never) == 1);
    cr_assert_eq(weft_mpsc_try_send(&tx, 9), -EAGAIN, "the held permit fills the channel");
    weft_join b = spawn_reserver(rt, &tx, 3, NULL, 0);
    WAIT_FOR(weft__mpsc_send_waiters(&tx) == 1);
    cr_assert_eq(weft_abort(&a), 0);
    cr_assert_eq(join_value(&a), -ECANCELED);
    cr_assert_eq(join_value(&b), 0, "the released permit went to the next waiter");
    expect_mpsc_recv(&rx, 3);

    /* Cancel-safe: torn down while holding; its drop hook releases. */
    atomic_store(&released_in_drop, 0);
    a = spawn_reserver(rt, &tx, 4, &never, WEFT_TASK_CANCEL_SAFE);
    WAIT_FOR(weft__notify_waiters(&never) == 1);
    b = spawn_reserver(rt, &tx, 5, NULL, 0);
    WAIT_FOR(weft__mpsc_send_waiters(&tx) == 1);
    cr_assert_eq(weft_abort(&a), 0);
    cr_assert_eq(join_outcome(&a).status, -ECANCELED);
    cr_assert_eq(atomic_load(&released_in_drop), 1);
    cr_assert_eq(join_value(&b), 0);
    expect_mpsc_recv(&rx, 5);
    cr_assert_eq(weft_notify_destroy(&never), 0);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation: send ----------------------------------------------------- */

Test(mpsc, cancel_queued_send_delivers_nothing)
{
    weft_runtime *rt = rt_make(2);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    uint64_t v;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    cr_assert_eq(weft_mpsc_try_send(&tx, 1), 0);
    weft_join a = spawn_sender(rt, &tx, 2, 1, 0);
    WAIT_FOR(weft__mpsc_send_waiters(&tx) == 1);
    cr_assert_eq(weft_abort(&a), 0);
    cr_assert_eq(join_value(&a), -ECANCELED);
    expect_mpsc_recv(&rx, 1);
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), -EAGAIN, "the withdrawn send sent nothing");
    cr_assert_eq(weft_mpsc_try_send(&tx, 3), 0, "and holds no slot");
    expect_mpsc_recv(&rx, 3);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

static void cancel_woken_send(unsigned flags)
{
    weft_runtime *rt = rt_make(1);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    blocker bl;
    uint64_t v;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    cr_assert_eq(weft_mpsc_try_send(&tx, 1), 0);
    weft_join a = spawn_sender(rt, &tx, 2, 1, flags);
    WAIT_FOR(weft__mpsc_send_waiters(&tx) == 1);
    blocker_start(rt, &bl);
    expect_mpsc_recv(&rx, 1);    /* the receiver places a's value for it */
    cr_assert_eq(weft_abort(&a), 0);
    blocker_release(&bl);
    weft_outcome o = join_outcome(&a);
    if (flags & WEFT_TASK_CANCEL_SAFE)
        cr_assert_eq(o.status, -ECANCELED);
    else
        cr_assert_eq(o.value, 1, "RACED: the send that happened is reported");
    expect_mpsc_recv(&rx, 2);
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), -EAGAIN, "delivered exactly once");
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
}

Test(mpsc, cancel_woken_send_reports_the_delivery)
{
    cancel_woken_send(0);
    cancel_woken_send(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation: recv ----------------------------------------------------- */

Test(mpsc, cancel_queued_recv_loses_no_message)
{
    weft_runtime *rt = rt_make(2);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 2), 0);
    weft_join h = spawn_receiver(rt, &rx, NULL, 0);
    WAIT_FOR(weft__mpsc_rx_waiting(&rx));
    cr_assert_eq(weft_abort(&h), 0);
    cr_assert_eq(join_value(&h), -ECANCELED);
    cr_assert_not(weft__mpsc_rx_waiting(&rx));
    cr_assert_eq(weft_mpsc_try_send(&tx, 5), 0);
    expect_mpsc_recv(&rx, 5);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

static void cancel_woken_recv(unsigned flags)
{
    weft_runtime *rt = rt_make(1);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    blocker bl;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 2), 0);
    weft_join h = spawn_receiver(rt, &rx, NULL, flags);
    WAIT_FOR(weft__mpsc_rx_waiting(&rx));
    blocker_start(rt, &bl);
    cr_assert_eq(weft_mpsc_try_send(&tx, 6), 0);    /* wakes it; it cannot run */
    cr_assert_eq(weft_abort(&h), 0);
    blocker_release(&bl);
    weft_outcome o = join_outcome(&h);
    if (flags & WEFT_TASK_CANCEL_SAFE) {
        cr_assert_eq(o.status, -ECANCELED);
        expect_mpsc_recv(&rx, 6);    /* torn down: the message stayed queued */
    } else {
        cr_assert_eq(o.value, 6, "RACED: the message is returned");
    }
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
}

Test(mpsc, cancel_woken_recv_loses_no_message)
{
    cancel_woken_recv(0);
    cancel_woken_recv(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mpsc, shutdown_withdraws_waiting_senders_and_receiver)
{
    weft_runtime *rt = rt_make(2);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx, rx2;
    weft_mpsc_tx tx2;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    cr_assert_eq(weft_mpsc_new(&tx2, &rx2, 1), 0);
    cr_assert_eq(weft_mpsc_try_send(&tx, 1), 0);
    weft_join a = spawn_sender(rt, &tx, 2, 1, WEFT_TASK_SHIELDED);
    weft_join b = spawn_reserver(rt, &tx, 3, NULL, WEFT_TASK_SHIELDED);
    weft_join c = spawn_receiver(rt, &rx2, NULL, WEFT_TASK_SHIELDED);
    WAIT_FOR(weft__mpsc_send_waiters(&tx) == 2 && weft__mpsc_rx_waiting(&rx2));
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(join_outcome(&a).status, -ECANCELED);
    cr_assert_eq(join_outcome(&b).status, -ECANCELED);
    cr_assert_eq(join_outcome(&c).status, -ECANCELED);
    cr_assert_eq(weft__mpsc_send_waiters(&tx), 0);
    cr_assert_not(weft__mpsc_rx_waiting(&rx2));
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 1);
    cr_assert_eq(weft_mpsc_tx_drop(&tx2), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx2), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
