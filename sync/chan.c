/*
 * sync/chan.c - the mpsc channel object (chan.h) and everything on the
 * receiving side, shared by the bounded and unbounded kinds: recv, try_recv,
 * recv_blocking, close and drop of the receiver, and the sender-handle
 * bookkeeping both kinds use. A bounded channel's receive itself, which
 * takes no lock, is in mpsc_rx.c; what it shares with the senders (claiming
 * and filling a slot, the state word's flags) is here.
 *
 * The receiver never holds a value in its leaf: a value stays in the buffer
 * until the poll that returns it pops it (under the lock; a bounded
 * channel's slot, by clearing its `ready` flag). That is why a
 * withdrawn recv can never lose a message, whether the task is re-polled
 * (RACED) or torn down.
 */
#include "sync/chan.h"

#include <errno.h>
#include <stdint.h>

#include "runtime/alloc.h"
#include "runtime/waker.h"
#include "runtime/worker.h"
#include "sync/inspect.h"
#include "sync/lock.h"

/* Senders woken per lock hold when the receiver closes. */
#define CLOSE_BATCH 32

weft__chan *weft__chan_new(bool bounded, size_t cap, int *err)
{
    size_t bytes = sizeof(weft__chan);
    size_t ring = 1;
    if (cap == 0) {
        *err = -EINVAL;
        return NULL;
    }
    if (bounded) {
        while (ring < cap && ring <= WEFT__CHAN_MAX_CAP)
            ring <<= 1;     /* a power of two, so that 2^30 positions wrap evenly */
    }
    /* The ring is checked after rounding: it may be near twice cap. */
    if (cap > (SIZE_MAX - bytes) / sizeof(uint64_t) ||
        (bounded && (cap > WEFT__CHAN_MAX_CAP ||
                     ring > (SIZE_MAX - bytes) / sizeof(weft__chan_slot)))) {
        *err = -ENOMEM;
        return NULL;
    }
    if (bounded)
        bytes += ring * sizeof(weft__chan_slot);
    weft__chan *c = weft__calloc(bytes);
    if (!c) {
        *err = -ENOMEM;
        return NULL;
    }
    if (bounded) {
        c->slots = (weft__chan_slot *)(c + 1);
        c->mask = ring - 1;
        atomic_init(&c->st, (uint64_t)cap * WEFT__ST_PERMIT);
    } else if (!(c->buf = weft__alloc(cap * sizeof(uint64_t)))) {
        weft__free(c, bytes);
        *err = -ENOMEM;
        return NULL;
    }
    c->bounded = bounded;
    c->cap = cap;
    c->senders = 1;
    c->rx_alive = true;
    c->alloc_size = bytes;
    return c;
}

static void chan_free(weft__chan *c)
{
    if (!c->bounded)
        weft__free(c->buf, c->cap * sizeof(uint64_t));
    weft__free(c, c->alloc_size);
}

void weft__chan_unlock(weft__chan *c, weft__chan_after *a)
{
    bool free_it = a->free_chan;
    weft__unlock(&c->lock);
    weft__deferred_run(&a->d);
    if (free_it)
        chan_free(c);   /* rule 5: nobody else can reach it any more */
}

static void take_rx_waker(weft__chan *c, weft__chan_after *a)
{
    weft__defer_wake(&a->d, c->rx_waker);
    c->rx_waker.weft_bits = 0;
}

weft_waker weft__chan_take_rx_waker(weft__chan *c)
{
    weft_waker w = { __atomic_load_n(&c->rx_waker.weft_bits, __ATOMIC_ACQUIRE) };
    /* Release: the receiver that reads 0 may write the field again (R2). */
    __atomic_store_n(&c->rx_waker.weft_bits, 0, __ATOMIC_RELEASE);
    return w;
}

weft_waker weft__chan_put(weft__chan *c, uint64_t before, uint64_t value)
{
    weft__chan_slot *slot = &c->slots[(before & WEFT__ST_TAIL_MASK) & c->mask];
    slot->value = value;
    /* Release: the value before the flag the receiver takes it by. */
    atomic_store_explicit(&slot->ready, 1, memory_order_release);
    if (!(before & WEFT__ST_RXW))
        return (weft_waker){ 0 };
    return weft__chan_take_rx_waker(c);     /* R1: woken once the slot is ready */
}

bool weft__chan_mark_queued_locked(weft__chan *c)
{
    uint64_t s = atomic_load_explicit(&c->st, memory_order_relaxed);
    do {
        if (WEFT__ST_PERMITS(s) > 0)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&c->st, &s, s | WEFT__ST_QUEUED,
                                                    memory_order_relaxed, memory_order_relaxed));
    return true;
}

void weft__chan_unmark_queued_locked(weft__chan *c)
{
    if (weft__waitq_empty(&c->send_waiters))
        atomic_fetch_and_explicit(&c->st, ~WEFT__ST_QUEUED, memory_order_relaxed);
}

void weft__chan_push_locked(weft__chan *c, uint64_t value, weft__chan_after *a)
{
    if (c->bounded) {
        /* The caller holds the permit this value uses. Acq_rel: the slot
         * freed by the receiver's release, and the waker (R1). */
        uint64_t s = atomic_load_explicit(&c->st, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&c->st, &s, weft__chan_claim(s, false),
                                                      memory_order_acq_rel, memory_order_relaxed))
            ;
        weft__defer_wake(&a->d, weft__chan_put(c, s, value));
        return;
    }
    size_t idx = c->head + c->len;
    if (idx >= c->cap)
        idx -= c->cap;
    c->buf[idx] = value;
    c->len++;
    take_rx_waker(c, a);    /* rule 6 */
}

static uint64_t pop_locked(weft__chan *c)
{
    uint64_t v = c->buf[c->head];
    if (++c->head == c->cap)
        c->head = 0;
    c->len--;
    return v;
}

void weft__chan_give_permit_locked(weft__chan *c, weft__chan_after *a)
{
    if (!c->bounded)
        return;
    /* Rule 4: after the close, queued senders are only ever woken CLOSED. */
    weft_wait_node *n = c->rx_closed ? NULL : weft__waitq_pop(&c->send_waiters);
    if (!n) {
        /* Release: pairs with the claim that takes this permit (the slot
         * was emptied before it). */
        atomic_fetch_add_explicit(&c->st, WEFT__ST_PERMIT, memory_order_release);
        return;
    }
    weft__chan_unmark_queued_locked(c);
    /* Rule 2: the first waiter gets it. A send is completed here and now. */
    struct weft_mpsc_waiter *op = (struct weft_mpsc_waiter *)n;
    if (op->weft_is_send) {
        weft__chan_push_locked(c, op->weft_value, a);
        n->weft_state = WEFT__MPSC_SENT;
    } else {
        c->senders++;   /* rule 3: a granted permit keeps the channel open */
        n->weft_state = WEFT__MPSC_GRANTED;
    }
    weft__defer_wake(&a->d, weft__wait_take_waker(n));
}

void weft__chan_drop_sender_locked(weft__chan *c, weft__chan_after *a)
{
    if (--c->senders > 0)
        return;
    if (c->bounded) {
        uint64_t s = atomic_load_explicit(&c->st, memory_order_relaxed);
        /* Acq_rel: the receiver's waker, if it waits (R1). */
        while (!atomic_compare_exchange_weak_explicit(&c->st, &s,
                                                      (s | WEFT__ST_ENDED) & ~WEFT__ST_RXW,
                                                      memory_order_acq_rel, memory_order_relaxed))
            ;
        if (s & WEFT__ST_RXW)
            weft__defer_wake(&a->d, weft__chan_take_rx_waker(c));
    } else {
        take_rx_waker(c, a);    /* the receiver sees the end once drained */
    }
    if (!c->rx_alive)
        a->free_chan = true;
}

/* ---- Sender handles (both kinds) ------------------------------------------ */

int weft__chan_tx_clone(weft__chan **dst, weft__chan *src)
{
    if (!dst || !src)
        return -EINVAL;
    weft__lock(&src->lock);
    src->senders++;
    weft__unlock(&src->lock);
    *dst = src;
    return 0;
}

int weft__chan_tx_drop(weft__chan **slot)
{
    weft__chan *c = slot ? *slot : NULL;
    if (!c)
        return -EINVAL;
    *slot = NULL;
    weft__chan_after a = WEFT__CHAN_AFTER_INIT;
    weft__lock(&c->lock);
    weft__chan_drop_sender_locked(c, &a);
    weft__chan_unlock(c, &a);
    return 0;
}

bool weft__chan_tx_is_closed(weft__chan *c)
{
    if (!c)
        return true;
    weft__lock(&c->lock);
    bool closed = c->rx_closed;
    weft__unlock(&c->lock);
    return closed;
}

size_t weft__mpsc_send_waiters(const weft_mpsc_tx *tx)
{
    weft__chan *c = tx->weft_chan;
    size_t n = 0;
    weft__lock(&c->lock);
    for (weft_wait_node *w = c->send_waiters.weft_head; w; w = w->weft_next)
        n++;
    weft__unlock(&c->lock);
    return n;
}

bool weft__mpsc_rx_waiting(const weft_mpsc_rx *rx)
{
    weft__chan *c = rx->weft_chan;
    if (c->bounded)
        return atomic_load_explicit(&c->st, memory_order_acquire) & WEFT__ST_RXW;
    weft__lock(&c->lock);
    bool waiting = c->rx_waker.weft_bits != 0;
    weft__unlock(&c->lock);
    return waiting;
}

/* ---- Receiving -------------------------------------------------------------- */

static bool ended_locked(const weft__chan *c)
{
    return c->len == 0 && (c->senders == 0 || c->rx_closed);   /* rule 3 */
}

/* Take the next value, handing the freed slot on. Lock held, len > 0. */
static uint64_t take_locked(weft__chan *c, weft__chan_after *a)
{
    uint64_t v = pop_locked(c);
    weft__chan_give_permit_locked(c, a);
    return v;
}

static weft_withdraw recv_withdraw(weft_cx *cx, void *leaf)
{
    weft__chan *c = ((weft_mpsc_rx *)leaf)->weft_chan;
    if (!c)
        return WEFT_WITHDRAWN;
    weft__chan_after a = WEFT__CHAN_AFTER_INIT;
    weft__lock(&c->lock);
    if (weft_waker_will_wake(&c->rx_waker, cx)) {
        weft__defer_drop(&a.d, c->rx_waker);
        c->rx_waker.weft_bits = 0;
    }
    /* Nothing is ever taken here. If what the wait was for has come (a value,
     * or the end), the re-poll returns it; a torn-down task leaves it queued. */
    bool decided = c->len > 0 || ended_locked(c);
    weft__chan_unlock(c, &a);
    return decided ? WEFT_WITHDRAW_RACED : WEFT_WITHDRAWN;
}

weft_poll weft_mpsc_recv(weft_cx *cx, weft_mpsc_rx *rx, uint64_t *out)
{
    if (!cx || !rx || !rx->weft_chan || !out)
        return -EINVAL;
    weft__chan *c = rx->weft_chan;
    if (c->bounded)
        return weft__ring_recv(cx, rx, out);
    weft__chan_after a = WEFT__CHAN_AFTER_INIT;
    weft_poll r = WEFT_PENDING;
    bool suspend = false;
    weft__lock(&c->lock);
    if (c->len > 0) {
        /* Out of budget: take nothing; the task is requeued. */
        if (weft_cx_coop(cx)) {
            *out = take_locked(c, &a);
            r = 0;
        }
    } else if (ended_locked(c)) {
        r = -EPIPE;
    } else if (c->rx_waker.weft_bits && !weft_waker_will_wake(&c->rx_waker, cx)) {
        r = -EBUSY;     /* another receive is already waiting */
    } else {
        if (!c->rx_waker.weft_bits)
            c->rx_waker = weft_cx_waker(cx);
        suspend = true;
    }
    weft__chan_unlock(c, &a);
    if (suspend)
        weft_cx_suspend(cx, rx, recv_withdraw);
    return r;
}

int weft_mpsc_try_recv(weft_mpsc_rx *rx, uint64_t *out)
{
    if (!rx || !rx->weft_chan || !out)
        return -EINVAL;
    weft__chan *c = rx->weft_chan;
    if (c->bounded)
        return weft__ring_try_recv(c, out);
    weft__chan_after a = WEFT__CHAN_AFTER_INIT;
    int r;
    weft__lock(&c->lock);
    if (c->len > 0) {
        *out = take_locked(c, &a);
        r = 0;
    } else {
        r = ended_locked(c) ? -EPIPE : -EAGAIN;
    }
    weft__chan_unlock(c, &a);
    return r;
}

int weft_mpsc_recv_blocking(weft_mpsc_rx *rx, uint64_t *out)
{
    if (!rx || !rx->weft_chan || !out)
        return -EINVAL;
    if (weft__current_worker)
        return -EDEADLK;
    weft__chan *c = rx->weft_chan;
    if (c->bounded)
        return weft__ring_recv_blocking(c, out);
    for (;;) {
        weft__chan_after a = WEFT__CHAN_AFTER_INIT;
        weft__thread_waiter tw;
        int r = 0;
        weft__lock(&c->lock);
        if (c->len > 0)
            *out = take_locked(c, &a);
        else if (ended_locked(c))
            r = -EPIPE;
        else if (c->rx_waker.weft_bits)
            r = -EBUSY;
        else
            r = 1;
        if (r == 1)
            c->rx_waker = weft__waker_for_thread(&tw);
        weft__chan_unlock(c, &a);
        if (r != 1)
            return r;
        /* The sender, closer or last sender to leave takes the waker (rule 6)
         * before waking it, so nothing is left registered on return. */
        weft__thread_waiter_wait(&tw, 0);
    }
}

/* Wake every queued sender with CLOSED, a batch per lock hold. rx_closed is
 * already set, so no sender can queue meanwhile (rule 4). */
static void close_send_waiters(weft__chan *c)
{
    for (bool more = true; more;) {
        weft_waker batch[CLOSE_BATCH];
        size_t n = 0;
        weft__lock(&c->lock);
        weft_wait_node *w;
        while (n < CLOSE_BATCH && (w = weft__waitq_pop(&c->send_waiters)) != NULL) {
            w->weft_state = WEFT__MPSC_CLOSED;
            batch[n++] = weft__wait_take_waker(w);
        }
        more = !weft__waitq_empty(&c->send_waiters);
        if (c->bounded && !more)
            weft__chan_unmark_queued_locked(c);
        weft__unlock(&c->lock);
        for (size_t i = 0; i < n; i++)
            weft_waker_wake(&batch[i]);
    }
}

int weft_mpsc_rx_close(weft_mpsc_rx *rx)
{
    if (!rx || !rx->weft_chan)
        return -EINVAL;
    weft__chan *c = rx->weft_chan;
    weft__lock(&c->lock);
    c->rx_closed = true;
    if (c->bounded)
        atomic_fetch_or_explicit(&c->st, WEFT__ST_CLOSED, memory_order_relaxed);
    weft__unlock(&c->lock);
    close_send_waiters(c);
    return 0;
}

int64_t weft_mpsc_rx_drop(weft_mpsc_rx *rx)
{
    int rc = weft_mpsc_rx_close(rx);
    if (rc)
        return rc;
    /* The handle kept the channel alive through close_send_waiters. */
    weft__chan *c = rx->weft_chan;
    rx->weft_chan = NULL;
    weft__chan_after a = WEFT__CHAN_AFTER_INIT;
    weft__lock(&c->lock);
    int64_t discarded;
    if (c->bounded) {
        discarded = weft__ring_rx_drop_locked(c, &a);
    } else {
        discarded = (int64_t)c->len;
        c->len = 0;
        c->head = 0;
        weft__defer_drop(&a.d, c->rx_waker);    /* none unless misused */
        c->rx_waker.weft_bits = 0;
    }
    c->rx_alive = false;
    if (c->senders == 0)
        a.free_chan = true;     /* rule 5 */
    weft__chan_unlock(c, &a);
    return discarded;
}
