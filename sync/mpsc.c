/*
 * sync/mpsc.c - the sending side of the bounded mpsc channel: permits
 * (reserve, try_reserve, permit_send, permit_release), send, try_send and the
 * blocking send for plain threads. The channel object and the receiving side
 * are in chan.c; its invariants (numbered) are in chan.h.
 *
 * A weft_mpsc_waiter (alias weft_mpsc_permit / weft_mpsc_send_op) moves
 * through these states; its node's state is written under the channel lock,
 * its weft_chan field only by its owner:
 *
 *   IDLE --(room)--------------------------------> HELD (reserve) / IDLE (send)
 *   IDLE --(full)--> QUEUED --(slot freed)-------> GRANTED (reserve) / SENT (send)
 *                      |    --(receiver closes)--> CLOSED
 *                      +----(withdrawn)----------> IDLE
 *   GRANTED --(re-poll)--> HELD --(permit_send / permit_release)--> IDLE
 *   SENT, CLOSED --(re-poll)--> IDLE, yielding 0 / -EPIPE
 *
 * weft_chan is NULL exactly in IDLE, so the owner can tell "not in flight"
 * without the lock.
 *
 * A send (async, try or blocking) that finds a free permit and nobody queued
 * takes no lock: one CAS on the state word claims the permit and a position,
 * then it fills the slot and wakes the receiver if that CAS took its waker
 * (chan.h, R1). Everything else (reserve, queueing, permits) runs under the
 * lock and changes the state word atomically as well.
 */
#include <errno.h>
#include <stdatomic.h>

#include "runtime/waker.h"
#include "runtime/worker.h"
#include "sync/chan.h"
#include "sync/lock.h"

int weft_mpsc_new(weft_mpsc_tx *tx, weft_mpsc_rx *rx, size_t capacity)
{
    if (!tx || !rx || capacity == 0)
        return -EINVAL;
    int err;
    weft__chan *c = weft__chan_new(true, capacity, &err);
    if (!c)
        return err;
    tx->weft_chan = c;
    rx->weft_chan = c;
    return 0;
}

int weft_mpsc_tx_clone(weft_mpsc_tx *dst, const weft_mpsc_tx *src)
{
    if (!dst || !src || !src->weft_chan || !src->weft_chan->bounded)
        return -EINVAL;
    return weft__chan_tx_clone(&dst->weft_chan, src->weft_chan);
}

int weft_mpsc_tx_drop(weft_mpsc_tx *tx)
{
    return tx ? weft__chan_tx_drop(&tx->weft_chan) : -EINVAL;
}

bool weft_mpsc_tx_is_closed(const weft_mpsc_tx *tx)
{
    return !tx || weft__chan_tx_is_closed(tx->weft_chan);
}

static void settle_idle(struct weft_mpsc_waiter *op)
{
    op->weft_node.weft_state = WEFT__WAIT_IDLE;
    op->weft_chan = NULL;
}

static bool permit_free(weft__chan *c)
{
    return WEFT__ST_PERMITS(atomic_load_explicit(&c->st, memory_order_relaxed)) > 0;
}

/* A white-box test that compiles this file into itself defines this to act
 * in the window between a send's look at the state word and its claim, where
 * another thread's claim makes the claim fail (tests/sync/test_mpsc_budget.c).
 * The library has nothing there. */
#ifndef WEFT__CLAIM_WINDOW_HOOK
#define WEFT__CLAIM_WINDOW_HOOK(c) ((void)(c))
#endif

/* A send without the lock: 0 (sent), -EPIPE (closed), WEFT_PENDING (out of
 * budget), or 1 when it has to take the slow path: no free permit, or
 * senders queued (rule 2). *charged says whether this poll has spent its
 * budget unit (true from the start for a plain thread, which has none); a
 * claim that loses its race (a retry finds no free permit, or senders
 * queued) leaves it spent, for the locked path to use instead of spending
 * another. */
static weft_poll fast_send(weft_cx *cx, weft__chan *c, uint64_t value, bool *charged)
{
    uint64_t s = atomic_load_explicit(&c->st, memory_order_relaxed);
    do {
        if (s & WEFT__ST_CLOSED)
            return -EPIPE;
        if ((s & WEFT__ST_QUEUED) || WEFT__ST_PERMITS(s) == 0)
            return 1;
        if (!*charged && !(*charged = weft_cx_coop(cx)))
            return WEFT_PENDING;    /* take nothing; the task is requeued */
        WEFT__CLAIM_WINDOW_HOOK(c);
    /* Acq_rel: the slot emptied before its permit came back, and the
     * receiver's waker (R1). */
    } while (!atomic_compare_exchange_weak_explicit(&c->st, &s, weft__chan_claim(s, true),
                                                    memory_order_acq_rel, memory_order_relaxed));
    weft_waker w = weft__chan_put(c, s, value);
    weft_waker_wake(&w);
    return 0;
}

/* Take a free permit if there is one (rule 2: none is free while senders
 * queue). A reserve holds it; a send uses it at once. Lock held. */
static bool take_free_permit_locked(weft__chan *c, struct weft_mpsc_waiter *op, bool is_send,
                                    uint64_t value, weft__chan_after *a)
{
    uint64_t s = atomic_load_explicit(&c->st, memory_order_relaxed);
    do {
        if (WEFT__ST_PERMITS(s) == 0)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&c->st, &s,
                                                    is_send ? weft__chan_claim(s, true)
                                                            : s - WEFT__ST_PERMIT,
                                                    memory_order_acq_rel, memory_order_relaxed));
    if (is_send) {
        weft__defer_wake(&a->d, weft__chan_put(c, s, value));
    } else {
        c->senders++;   /* rule 3 */
        op->weft_chan = c;
        op->weft_node.weft_state = WEFT__MPSC_HELD;
    }
    return true;
}

static weft_withdraw acquire_withdraw(weft_cx *cx, void *leaf)
{
    struct weft_mpsc_waiter *op = leaf;
    weft__chan *c = op->weft_chan;
    if (!c)
        return WEFT_WITHDRAWN;
    weft__chan_after a = WEFT__CHAN_AFTER_INIT;
    weft_withdraw r = WEFT_WITHDRAWN;
    weft__lock(&c->lock);
    switch (op->weft_node.weft_state) {
    case WEFT__WAIT_QUEUED:
        /* Nothing was promised to it yet: leave the line. */
        weft__waitq_remove(&c->send_waiters, &op->weft_node);
        weft__chan_unmark_queued_locked(c);
        weft__defer_drop(&a.d, weft__wait_take_waker(&op->weft_node));
        settle_idle(op);
        break;
    case WEFT__MPSC_GRANTED:
        if (weft_cx_is_teardown(cx)) {
            /* Torn down: nobody will hold this permit; pass it on. */
            settle_idle(op);
            weft__chan_give_permit_locked(c, &a);
            weft__chan_drop_sender_locked(c, &a);
        } else {
            r = WEFT_WITHDRAW_RACED;    /* the re-poll yields 0, permit held */
        }
        break;
    case WEFT__MPSC_SENT:
    case WEFT__MPSC_CLOSED:
        r = WEFT_WITHDRAW_RACED;        /* delivered, or -EPIPE: report it */
        break;
    default:
        break;                          /* not waiting */
    }
    weft__chan_unlock(c, &a);
    return r;
}

/* Queue op behind the others. Lock held, QUEUED set. */
static void enqueue_locked(weft__chan *c, struct weft_mpsc_waiter *op, bool is_send,
                           uint64_t value, weft_waker w)
{
    op->weft_chan = c;
    op->weft_is_send = is_send;
    op->weft_value = value;
    op->weft_node.weft_state = WEFT__WAIT_QUEUED;
    op->weft_node.weft_wake = w;
    weft__waitq_push(&c->send_waiters, &op->weft_node);
}

/* A first poll under the lock: take a free permit, or queue (*suspend). A
 * permit freed without the lock between the two is taken on the next turn
 * (weft__chan_mark_queued_locked refuses to queue past it). `charged`: the
 * fast path already spent this poll's budget unit (one unit per send). */
static weft_poll start_locked(weft_cx *cx, weft__chan *c, struct weft_mpsc_waiter *op,
                              bool is_send, uint64_t value, bool charged,
                              weft__chan_after *a, bool *suspend)
{
    if (c->rx_closed)
        return -EPIPE;
    for (bool budget = charged;;) {
        if (permit_free(c)) {
            if (!budget && !(budget = weft_cx_coop(cx)))
                return WEFT_PENDING;    /* take nothing; the task is requeued */
            if (take_free_permit_locked(c, op, is_send, value, a))
                return 0;
        } else if (weft__chan_mark_queued_locked(c)) {
            enqueue_locked(c, op, is_send, value, weft_cx_waker(cx));
            *suspend = true;
            return WEFT_PENDING;
        }
    }
}

/* The poll behind reserve (is_send false) and send (is_send true). */
static weft_poll acquire(weft_cx *cx, weft__chan *c, struct weft_mpsc_waiter *op, bool is_send,
                         uint64_t value)
{
    if (op->weft_chan && (op->weft_chan != c || op->weft_is_send != (uint32_t)is_send))
        return -EINVAL;     /* in flight or held for something else */
    bool charged = false;
    if (is_send && !op->weft_chan) {
        weft_poll f = fast_send(cx, c, value, &charged);
        if (f != 1)
            return f;
    }
    weft__chan_after a = WEFT__CHAN_AFTER_INIT;
    weft_poll r = WEFT_PENDING;
    bool suspend = false;
    weft__lock(&c->lock);
    if (!op->weft_chan) {
        r = start_locked(cx, c, op, is_send, value, charged, &a, &suspend);
    } else {
        switch (op->weft_node.weft_state) {
        case WEFT__WAIT_QUEUED:
            weft__defer_drop(&a.d, weft__wait_refresh_waker(&op->weft_node, cx));
            suspend = true;
            break;
        case WEFT__MPSC_GRANTED:
            op->weft_node.weft_state = WEFT__MPSC_HELD;
            r = 0;
            break;
        case WEFT__MPSC_SENT:
            settle_idle(op);
            r = 0;
            break;
        case WEFT__MPSC_CLOSED:
            settle_idle(op);
            r = -EPIPE;
            break;
        default:
            r = -EINVAL;    /* HELD: a permit is held, not awaited */
            break;
        }
    }
    weft__chan_unlock(c, &a);
    if (suspend)
        weft_cx_suspend(cx, op, acquire_withdraw);
    return r;
}

weft_poll weft_mpsc_reserve(weft_cx *cx, weft_mpsc_tx *tx, weft_mpsc_permit *permit)
{
    if (!cx || !tx || !tx->weft_chan || !permit)
        return -EINVAL;
    return acquire(cx, tx->weft_chan, permit, false, 0);
}

weft_poll weft_mpsc_send(weft_cx *cx, weft_mpsc_tx *tx, weft_mpsc_send_op *op, uint64_t value)
{
    if (!cx || !tx || !tx->weft_chan || !op)
        return -EINVAL;
    return acquire(cx, tx->weft_chan, op, true, value);
}

/* try_reserve and try_send: take a free permit now or fail with -EAGAIN. */
static int try_acquire(weft__chan *c, struct weft_mpsc_waiter *op, bool is_send, uint64_t value)
{
    weft__chan_after a = WEFT__CHAN_AFTER_INIT;
    int r;
    weft__lock(&c->lock);
    if (c->rx_closed)
        r = -EPIPE;
    else
        r = take_free_permit_locked(c, op, is_send, value, &a) ? 0 : -EAGAIN;
    weft__chan_unlock(c, &a);
    return r;
}

int weft_mpsc_try_reserve(weft_mpsc_tx *tx, weft_mpsc_permit *permit)
{
    if (!tx || !tx->weft_chan || !permit || permit->weft_chan)
        return -EINVAL;
    return try_acquire(tx->weft_chan, permit, false, 0);
}

int weft_mpsc_try_send(weft_mpsc_tx *tx, uint64_t value)
{
    if (!tx || !tx->weft_chan)
        return -EINVAL;
    bool no_budget = true;
    int r = fast_send(NULL, tx->weft_chan, value, &no_budget);
    if (r != 1)
        return r;
    return try_acquire(tx->weft_chan, NULL, true, value);
}

/* End a held permit: send (with_value) or release. */
static int consume_permit(weft_mpsc_permit *p, bool with_value, uint64_t value)
{
    weft__chan *c = p ? p->weft_chan : NULL;
    if (!c)
        return -EINVAL;
    weft__chan_after a = WEFT__CHAN_AFTER_INIT;
    int r = 0;
    weft__lock(&c->lock);
    if (p->weft_node.weft_state != WEFT__MPSC_HELD) {
        r = -EINVAL;    /* still in flight: await it first */
    } else {
        settle_idle(p);
        if (with_value && !c->rx_closed) {
            weft__chan_push_locked(c, value, &a);   /* the permit's slot */
        } else {
            r = with_value ? -EPIPE : 0;
            weft__chan_give_permit_locked(c, &a);
        }
        weft__chan_drop_sender_locked(c, &a);
    }
    weft__chan_unlock(c, &a);
    return r;
}

int weft_mpsc_permit_send(weft_mpsc_permit *permit, uint64_t value)
{
    return consume_permit(permit, true, value);
}

int weft_mpsc_permit_release(weft_mpsc_permit *permit)
{
    return consume_permit(permit, false, 0);
}

int weft_mpsc_send_blocking(weft_mpsc_tx *tx, uint64_t value)
{
    if (!tx || !tx->weft_chan)
        return -EINVAL;
    if (weft__current_worker)
        return -EDEADLK;
    weft__chan *c = tx->weft_chan;
    bool no_budget = true;
    int r = fast_send(NULL, c, value, &no_budget);
    if (r != 1)
        return r;
    struct weft_mpsc_waiter op = WEFT_MPSC_SEND_OP_INIT;
    weft__thread_waiter tw;
    weft__chan_after a = WEFT__CHAN_AFTER_INIT;
    weft__lock(&c->lock);
    while (r == 1) {
        if (c->rx_closed) {
            r = -EPIPE;
        } else if (take_free_permit_locked(c, &op, true, value, &a)) {
            r = 0;
        } else if (weft__chan_mark_queued_locked(c)) {
            /* Queue like a task would; the node lives on this stack until the
             * receiver (SENT) or close (CLOSED) has unlinked it and woken us. */
            enqueue_locked(c, &op, true, value, weft__waker_for_thread(&tw));
            break;
        }
    }
    weft__chan_unlock(c, &a);
    if (r != 1)
        return r;
    weft__thread_waiter_wait(&tw, 0);
    weft__lock(&c->lock);
    r = op.weft_node.weft_state == WEFT__MPSC_SENT ? 0 : -EPIPE;
    weft__unlock(&c->lock);
    return r;
}
