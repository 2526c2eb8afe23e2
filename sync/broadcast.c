/*
 * sync/broadcast.c - the broadcast channel: a bounded ring of values that
 * every receiver reads at its own position; senders never wait and
 * overwrite the oldest value, and a receiver that fell behind is told how
 * many values it missed.
 *
 * The shared object is one allocation (the ring inline after it) with a
 * lock word (sync/lock.h) that guards every field, every receiver's
 * weft_next and the state of every receiver node linked to it. There are no
 * other atomics: the lock word's acquire/release orderings (lock.h) publish
 * everything below.
 *
 * Positions count values ever sent: the value sent as number p lives in
 * buf[p % cap] until number p + cap overwrites it. A receiver handle is the
 * leaf of its receives: its node is linked while a receive is queued. A
 * receive takes nothing out of the object (the ring is shared); only the
 * poll that returns a value advances weft_next, so a withdrawn receive
 * loses nothing.
 *
 * Invariants:
 *   1. The values kept are positions [oldest, tail) with oldest = tail - cap
 *      (or 0). A receiver with weft_next < oldest has missed
 *      oldest - weft_next values; its next receive reports that count and
 *      moves it to oldest.
 *   2. A node is linked only while its receiver waits with weft_next == tail
 *      and the channel open. A send advances tail and unlinks every node
 *      queued before it (weft_next below the new tail), a batch per lock
 *      hold; nodes are queued in order of weft_next, so it stops at the first
 *      newer one.
 *   3. closed is set by the drop of the last sender, which then unlinks every
 *      node (none can queue once closed). senders is decremented only after
 *      that loop, so the object cannot be freed under it.
 *   4. A send with no receiver stores nothing (-EPIPE).
 *   5. The object is freed by whoever leaves senders == 0 and receivers == 0,
 *      after unlocking.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/alloc.h"
#include "sync/batch.h"
#include "sync/inspect_waits.h"
#include "sync/lock.h"
#include "sync/waitq.h"
#include "weft/sync.h"

struct weft__bcast {
    uint32_t lock;
    bool closed;
    size_t senders, receivers;
    uint64_t tail;              /* values ever sent */
    size_t cap;
    size_t alloc_size;
    weft_wait_list waiters;
    uint64_t buf[];
};
typedef struct weft__bcast weft__bcast;

static weft_broadcast_rx *rx_of(weft_wait_node *n)
{
    return (weft_broadcast_rx *)((char *)n - offsetof(weft_broadcast_rx, weft_node));
}

static void rx_attach(weft_broadcast_rx *rx, weft__bcast *c)
{
    *rx = (weft_broadcast_rx){ .weft_chan = c, .weft_next = c->tail };
}

int weft_broadcast_new(weft_broadcast_tx *tx, weft_broadcast_rx *rx, size_t capacity)
{
    if (!tx || !rx || capacity == 0)
        return -EINVAL;
    if (capacity > (SIZE_MAX - sizeof(weft__bcast)) / sizeof(uint64_t))
        return -ENOMEM;
    size_t bytes = sizeof(weft__bcast) + capacity * sizeof(uint64_t);
    weft__bcast *c = weft__calloc(bytes);
    if (!c)
        return -ENOMEM;
    c->cap = capacity;
    c->alloc_size = bytes;
    c->senders = 1;
    c->receivers = 1;
    tx->weft_chan = c;
    rx_attach(rx, c);
    return 0;
}

/* Unlock, run the deferred wakes, and free the object if the caller's
 * handle was the last (rule 5). */
static void unlock_and_settle(weft__bcast *c, weft__deferred *d)
{
    bool free_it = c->senders == 0 && c->receivers == 0;
    weft__unlock(&c->lock);
    weft__deferred_run(d);
    if (free_it)
        weft__free(c, c->alloc_size);
}

int weft_broadcast_tx_clone(weft_broadcast_tx *dst, const weft_broadcast_tx *src)
{
    if (!dst || !src || !src->weft_chan)
        return -EINVAL;
    weft__bcast *c = src->weft_chan;
    weft__lock(&c->lock);
    c->senders++;
    weft__unlock(&c->lock);
    dst->weft_chan = c;
    return 0;
}

struct front {
    weft__bcast *c;
    uint64_t tail;
};

static bool behind_tail(weft_wait_node *node, void *arg)
{
    const struct front *f = arg;
    return f->c->closed || rx_of(node)->weft_next < f->tail;
}

/* Wake the waiters at the front whose receiver is below `tail` (rule 2), or
 * all of them once closed (rule 3). Lock held on entry and on return. */
static void wake_front(weft__bcast *c, uint64_t tail)
{
    struct front f = { c, tail };
    weft__wake_front(&c->lock, &c->waiters, behind_tail, &f);
}

int weft_broadcast_tx_drop(weft_broadcast_tx *tx)
{
    weft__bcast *c = tx ? tx->weft_chan : NULL;
    if (!c)
        return -EINVAL;
    tx->weft_chan = NULL;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft__lock(&c->lock);
    if (c->senders == 1) {
        c->closed = true;       /* rule 3 */
        wake_front(c, 0);
    }
    c->senders--;
    unlock_and_settle(c, &d);
    return 0;
}

int weft_broadcast_subscribe(const weft_broadcast_tx *tx, weft_broadcast_rx *rx)
{
    weft__bcast *c = tx ? tx->weft_chan : NULL;
    if (!c || !rx)
        return -EINVAL;
    weft__lock(&c->lock);
    c->receivers++;
    rx_attach(rx, c);
    weft__unlock(&c->lock);
    return 0;
}

int64_t weft_broadcast_send(weft_broadcast_tx *tx, uint64_t value)
{
    weft__bcast *c = tx ? tx->weft_chan : NULL;
    if (!c)
        return -EINVAL;
    weft__lock(&c->lock);
    int64_t receivers = (int64_t)c->receivers;
    if (receivers == 0) {
        weft__unlock(&c->lock);
        return -EPIPE;      /* rule 4 */
    }
    c->buf[c->tail % c->cap] = value;
    c->tail++;
    wake_front(c, c->tail);
    weft__unlock(&c->lock);
    return receivers;
}

/* Unlink the receiver's node if it is queued. Lock held. */
static void rx_unqueue(weft__bcast *c, weft_broadcast_rx *rx, weft__deferred *d)
{
    if (rx->weft_node.weft_state != WEFT__WAIT_QUEUED)
        return;
    weft__waitq_remove(&c->waiters, &rx->weft_node);
    rx->weft_node.weft_state = WEFT__WAIT_IDLE;
    weft__defer_drop(d, weft__wait_take_waker(&rx->weft_node));
}

int weft_broadcast_rx_drop(weft_broadcast_rx *rx)
{
    weft__bcast *c = rx ? rx->weft_chan : NULL;
    if (!c)
        return -EINVAL;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft__lock(&c->lock);
    rx_unqueue(c, rx, &d);      /* none unless misused */
    rx->weft_chan = NULL;
    c->receivers--;
    unlock_and_settle(c, &d);
    return 0;
}

static uint64_t oldest_locked(const weft__bcast *c)
{
    return c->tail > c->cap ? c->tail - c->cap : 0;
}

/* Has this receiver anything to report: a value, a lag, or the end? */
static bool ready_locked(const weft__bcast *c, const weft_broadcast_rx *rx)
{
    return rx->weft_next < c->tail || c->closed;
}

/* Take what the receiver has to report (ready_locked is true): 0 with the
 * value, or -EOVERFLOW with the count missed (rule 1), or -EPIPE. */
static int take_locked(weft__bcast *c, weft_broadcast_rx *rx, uint64_t *out)
{
    uint64_t oldest = oldest_locked(c);
    if (rx->weft_next < oldest) {
        *out = oldest - rx->weft_next;
        rx->weft_next = oldest;
        return -EOVERFLOW;
    }
    if (rx->weft_next < c->tail) {
        *out = c->buf[rx->weft_next % c->cap];
        rx->weft_next++;
        return 0;
    }
    return -EPIPE;
}

int weft_broadcast_try_recv(weft_broadcast_rx *rx, uint64_t *out)
{
    weft__bcast *c = rx ? rx->weft_chan : NULL;
    if (!c || !out)
        return -EINVAL;
    weft__lock(&c->lock);
    int r = ready_locked(c, rx) ? take_locked(c, rx, out) : -EAGAIN;
    weft__unlock(&c->lock);
    return r;
}

static weft_withdraw recv_withdraw(weft_cx *cx, void *leaf)
{
    (void)cx;
    weft_broadcast_rx *rx = leaf;
    weft__bcast *c = rx->weft_chan;
    if (!c)
        return WEFT_WITHDRAWN;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft__lock(&c->lock);
    rx_unqueue(c, rx, &d);
    /* Nothing is taken here: a re-poll reports what came (RACED); a
     * torn-down task leaves its position where it was. */
    bool decided = ready_locked(c, rx);
    weft__unlock(&c->lock);
    weft__deferred_run(&d);
    return decided ? WEFT_WITHDRAW_RACED : WEFT_WITHDRAWN;
}

weft_poll weft_broadcast_recv(weft_cx *cx, weft_broadcast_rx *rx, uint64_t *out)
{
    weft__bcast *c = rx ? rx->weft_chan : NULL;
    if (!cx || !c || !out)
        return -EINVAL;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft_poll r = WEFT_PENDING;
    bool suspend = false;
    weft__lock(&c->lock);
    bool queued = rx->weft_node.weft_state == WEFT__WAIT_QUEUED;
    if (queued && !weft_waker_will_wake(&rx->weft_node.weft_wake, cx)) {
        r = -EBUSY;     /* another task waits on this receiver */
    } else if (ready_locked(c, rx)) {
        rx_unqueue(c, rx, &d);
        /* Out of budget: take nothing; the task is requeued. */
        if (weft_cx_coop(cx))
            r = take_locked(c, rx, out);
    } else {
        if (!queued) {
            rx->weft_node.weft_state = WEFT__WAIT_QUEUED;
            rx->weft_node.weft_wake = weft_cx_waker(cx);
            weft__waitq_push(&c->waiters, &rx->weft_node);
        }
        suspend = true;
    }
    weft__unlock(&c->lock);
    weft__deferred_run(&d);
    if (suspend)
        weft_cx_suspend(cx, rx, recv_withdraw);
    return r;
}

size_t weft__broadcast_waiters(const weft_broadcast_tx *tx)
{
    weft__bcast *c = tx->weft_chan;
    weft__lock(&c->lock);
    size_t n = weft__waitq_len(&c->waiters);
    weft__unlock(&c->lock);
    return n;
}
