/*
 * sync/oneshot.c - the oneshot channel: one value, one sender, one receiver.
 *
 * The shared object is one allocation with a lock (sync/lock.h) guarding the
 * rest. The value is stored in the object, never in the receiver's leaf, so a
 * withdrawn receive cannot lose it.
 *
 * Invariants:
 *   1. VALUE is set by a successful send and cleared by the receive that takes
 *      it (or by the receiver's drop, which discards it).
 *   2. TX_DONE is set once the sender has sent or dropped; after that nothing
 *      is ever sent. RX_CLOSED is set by the receiver's close or drop; after
 *      that a send fails. RX_GONE is set by the receiver's drop.
 *   3. rx_waker is set only while the receiver waits with neither VALUE nor
 *      TX_DONE; the sender takes it when it sends or drops, and wakes it after
 *      unlocking.
 *   4. The object is freed by whichever side sets the last of TX_DONE and
 *      RX_GONE, after unlocking.
 */
#include <errno.h>

#include "runtime/alloc.h"
#include "runtime/waker.h"
#include "runtime/worker.h"
#include "sync/inspect.h"
#include "sync/lock.h"
#include "sync/waitq.h"
#include "weft/sync.h"

enum {
    VALUE = 1u << 0,
    TX_DONE = 1u << 1,
    RX_CLOSED = 1u << 2,
    RX_GONE = 1u << 3,
};

struct weft__oneshot {
    uint32_t lock;
    uint32_t flags;
    uint64_t value;
    weft_waker rx_waker;
};
typedef struct weft__oneshot weft__oneshot;

int weft_oneshot_new(weft_oneshot_tx *tx, weft_oneshot_rx *rx)
{
    if (!tx || !rx)
        return -EINVAL;
    weft__oneshot *o = weft__calloc(sizeof *o);
    if (!o)
        return -ENOMEM;
    tx->weft_chan = o;
    rx->weft_chan = o;
    return 0;
}

/* Unlock, run the deferred wakes, and free the object if this side was the
 * last (rule 4). */
static void unlock_and_settle(weft__oneshot *o, weft__deferred *d)
{
    bool free_it = (o->flags & (TX_DONE | RX_GONE)) == (TX_DONE | RX_GONE);
    weft__unlock(&o->lock);
    weft__deferred_run(d);
    if (free_it)
        weft__free(o, sizeof *o);
}

/* The sender's end, with or without a value. Empties the handle. */
static int sender_done(weft_oneshot_tx *tx, bool with_value, uint64_t value)
{
    weft__oneshot *o = tx ? tx->weft_chan : NULL;
    if (!o)
        return -EINVAL;
    tx->weft_chan = NULL;
    weft__deferred d = WEFT__DEFERRED_INIT;
    int r = 0;
    weft__lock(&o->lock);
    if (with_value && (o->flags & RX_CLOSED)) {
        r = -EPIPE;     /* not delivered: the value stays the caller's */
    } else if (with_value) {
        o->value = value;
        o->flags |= VALUE;
    }
    o->flags |= TX_DONE;
    weft__defer_wake(&d, o->rx_waker);     /* rule 3 */
    o->rx_waker.weft_bits = 0;
    unlock_and_settle(o, &d);
    return r;
}

int weft_oneshot_send(weft_oneshot_tx *tx, uint64_t value)
{
    return sender_done(tx, true, value);
}

int weft_oneshot_tx_drop(weft_oneshot_tx *tx)
{
    return sender_done(tx, false, 0);
}

bool weft_oneshot_tx_is_closed(const weft_oneshot_tx *tx)
{
    weft__oneshot *o = tx ? tx->weft_chan : NULL;
    if (!o)
        return true;
    weft__lock(&o->lock);
    bool closed = o->flags & RX_CLOSED;
    weft__unlock(&o->lock);
    return closed;
}

/* What a receive finds, lock held: 0 with the value taken, -EPIPE at the end,
 * or 1 when it has to wait. */
static int take_locked(weft__oneshot *o, uint64_t *out)
{
    if (o->flags & VALUE) {
        *out = o->value;
        o->flags &= ~(uint32_t)VALUE;
        return 0;
    }
    return (o->flags & (TX_DONE | RX_CLOSED)) ? -EPIPE : 1;
}

static weft_withdraw recv_withdraw(weft_cx *cx, void *leaf)
{
    weft__oneshot *o = ((weft_oneshot_rx *)leaf)->weft_chan;
    if (!o)
        return WEFT_WITHDRAWN;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft__lock(&o->lock);
    if (weft_waker_will_wake(&o->rx_waker, cx)) {
        weft__defer_drop(&d, o->rx_waker);
        o->rx_waker.weft_bits = 0;
    }
    /* Nothing is taken here: if the value (or the end) came, the re-poll
     * returns it; a torn-down task leaves the value in the channel. */
    bool decided = o->flags & (VALUE | TX_DONE | RX_CLOSED);
    unlock_and_settle(o, &d);
    return decided ? WEFT_WITHDRAW_RACED : WEFT_WITHDRAWN;
}

weft_poll weft_oneshot_recv(weft_cx *cx, weft_oneshot_rx *rx, uint64_t *out)
{
    if (!cx || !rx || !rx->weft_chan || !out)
        return -EINVAL;
    weft__oneshot *o = rx->weft_chan;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft_poll r = WEFT_PENDING;
    bool suspend = false;
    weft__lock(&o->lock);
    if (o->flags & VALUE) {
        /* Out of budget: take nothing; the task is requeued. */
        if (weft_cx_coop(cx))
            r = take_locked(o, out);
    } else if (o->flags & (TX_DONE | RX_CLOSED)) {
        r = -EPIPE;
    } else if (o->rx_waker.weft_bits && !weft_waker_will_wake(&o->rx_waker, cx)) {
        r = -EBUSY;     /* another receive is already waiting */
    } else {
        if (!o->rx_waker.weft_bits)
            o->rx_waker = weft_cx_waker(cx);
        suspend = true;
    }
    unlock_and_settle(o, &d);
    if (suspend)
        weft_cx_suspend(cx, rx, recv_withdraw);
    return r;
}

int weft_oneshot_try_recv(weft_oneshot_rx *rx, uint64_t *out)
{
    if (!rx || !rx->weft_chan || !out)
        return -EINVAL;
    weft__oneshot *o = rx->weft_chan;
    weft__lock(&o->lock);
    int r = take_locked(o, out);
    weft__unlock(&o->lock);
    return r == 1 ? -EAGAIN : r;
}

int weft_oneshot_recv_blocking(weft_oneshot_rx *rx, uint64_t *out)
{
    if (!rx || !rx->weft_chan || !out)
        return -EINVAL;
    if (weft__current_worker)
        return -EDEADLK;
    weft__oneshot *o = rx->weft_chan;
    weft__thread_waiter tw;
    weft__lock(&o->lock);
    int r = take_locked(o, out);
    if (r == 1 && o->rx_waker.weft_bits)
        r = -EBUSY;
    else if (r == 1)
        o->rx_waker = weft__waker_for_thread(&tw);
    weft__unlock(&o->lock);
    if (r != 1)
        return r;
    /* Only the sender's send or drop takes the waker (rule 3), and after that
     * the answer is final. */
    weft__thread_waiter_wait(&tw, 0);
    weft__lock(&o->lock);
    r = take_locked(o, out);
    weft__unlock(&o->lock);
    return r;
}

int weft_oneshot_rx_close(weft_oneshot_rx *rx)
{
    if (!rx || !rx->weft_chan)
        return -EINVAL;
    weft__oneshot *o = rx->weft_chan;
    weft__lock(&o->lock);
    o->flags |= RX_CLOSED;
    weft__unlock(&o->lock);
    return 0;
}

int weft_oneshot_rx_drop(weft_oneshot_rx *rx)
{
    weft__oneshot *o = rx ? rx->weft_chan : NULL;
    if (!o)
        return -EINVAL;
    rx->weft_chan = NULL;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft__lock(&o->lock);
    int discarded = (o->flags & VALUE) ? 1 : 0;
    o->flags = (o->flags & ~(uint32_t)VALUE) | RX_CLOSED | RX_GONE;
    weft__defer_drop(&d, o->rx_waker);     /* none unless misused */
    o->rx_waker.weft_bits = 0;
    unlock_and_settle(o, &d);
    return discarded;
}

bool weft__oneshot_rx_waiting(const weft_oneshot_rx *rx)
{
    weft__oneshot *o = rx->weft_chan;
    weft__lock(&o->lock);
    bool waiting = o->rx_waker.weft_bits != 0;
    weft__unlock(&o->lock);
    return waiting;
}
