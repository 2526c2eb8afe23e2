/*
 * sync/broadcast.c - the broadcast channel: a bounded ring of values that
 * every receiver reads at its own position; senders never wait and
 * overwrite the oldest value, and a receiver that fell behind is told how
 * many values it missed.
 *
 * The shared object is one allocation (the ring inline after it) built on
 * the fan-out core (sync/fanout.h), whose lock word guards every field, every
 * receiver's weft_next and the state of every receiver node linked to it;
 * handle counts, close, freeing and the receive wait protocol are the core's,
 * under its rules. This file supplies the ring and what a receive reports.
 *
 * Positions count values ever sent: the value sent as number p lives in
 * buf[p % cap] until number p + cap overwrites it. A receive takes nothing
 * out of the object (the ring is shared); only the poll that returns a value
 * advances weft_next, so a withdrawn receive loses nothing.
 *
 * Invariants:
 *   1. The values kept are positions [oldest, tail) with oldest = tail - cap
 *      (or 0). A receiver with weft_next < oldest has missed
 *      oldest - weft_next values; its next receive reports that count and
 *      moves it to oldest.
 *   2. The core's mark (fanout.h rule 1) is tail: a node is linked only while
 *      its receiver waits with weft_next == tail and the channel open, and a
 *      send advances tail and wakes the nodes with weft_next below it.
 *   3. A send with no receiver stores nothing (-EPIPE).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "sync/fanout.h"
#include "sync/inspect_waits.h"
#include "sync/lock.h"
#include "weft/sync.h"

struct weft__bcast {
    weft__fanout fan;           /* first: freeing it frees the object */
    uint64_t tail;              /* values ever sent */
    size_t cap;
    uint64_t buf[];
};
typedef struct weft__bcast weft__bcast;

_Static_assert(offsetof(weft__bcast, fan) == 0, "the core is the object's first member");

static weft__bcast *bcast_of(weft__fanout *f)
{
    return (weft__bcast *)((char *)f - offsetof(weft__bcast, fan));
}

static weft_broadcast_rx *rx_of(weft_wait_node *n)
{
    return (weft_broadcast_rx *)((char *)n - offsetof(weft_broadcast_rx, weft_node));
}

static void rx_attach(weft_broadcast_rx *rx, weft__bcast *c, uint64_t next)
{
    *rx = (weft_broadcast_rx){ .weft_chan = c, .weft_next = next };
}

int weft_broadcast_new(weft_broadcast_tx *tx, weft_broadcast_rx *rx, size_t capacity)
{
    if (!tx || !rx || capacity == 0)
        return -EINVAL;
    if (capacity > (SIZE_MAX - sizeof(weft__bcast)) / sizeof(uint64_t))
        return -ENOMEM;
    weft__fanout *f = weft__fanout_new(sizeof(weft__bcast) + capacity * sizeof(uint64_t));
    if (!f)
        return -ENOMEM;
    weft__bcast *c = bcast_of(f);
    c->cap = capacity;
    tx->weft_chan = c;
    rx_attach(rx, c, 0);
    return 0;
}

int weft_broadcast_tx_clone(weft_broadcast_tx *dst, const weft_broadcast_tx *src)
{
    if (!dst || !src || !src->weft_chan)
        return -EINVAL;
    weft__fanout_tx_clone(&src->weft_chan->fan);
    dst->weft_chan = src->weft_chan;
    return 0;
}

int weft_broadcast_tx_drop(weft_broadcast_tx *tx)
{
    weft__bcast *c = tx ? tx->weft_chan : NULL;
    if (!c)
        return -EINVAL;
    tx->weft_chan = NULL;
    weft__fanout_tx_drop(&c->fan);
    return 0;
}

int weft_broadcast_subscribe(const weft_broadcast_tx *tx, weft_broadcast_rx *rx)
{
    weft__bcast *c = tx ? tx->weft_chan : NULL;
    if (!c || !rx)
        return -EINVAL;
    rx_attach(rx, c, weft__fanout_rx_join(&c->fan, &c->tail));
    return 0;
}

static uint64_t oldest_locked(const weft__bcast *c)
{
    return c->tail > c->cap ? c->tail - c->cap : 0;
}

/* Has this receiver anything to report: a value, a lag, or the end? */
static bool ready_locked(const weft__bcast *c, const weft_broadcast_rx *rx)
{
    return rx->weft_next < c->tail || c->fan.closed;
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

/* The core's view of the above (fanout.h). */
static bool recv_ready(weft__fanout *f, weft_wait_node *node)
{
    return ready_locked(bcast_of(f), rx_of(node));
}

static weft_poll recv_take(weft_cx *cx, weft__fanout *f, weft_wait_node *node, uint64_t *out)
{
    /* Out of budget: take nothing; the task is requeued. */
    if (!weft_cx_coop(cx))
        return WEFT_PENDING;
    return take_locked(bcast_of(f), rx_of(node), out);
}

static bool below_tail(weft_wait_node *node, uint64_t tail)
{
    return rx_of(node)->weft_next < tail;       /* rule 2 */
}

static weft_withdraw recv_withdraw(weft_cx *cx, void *leaf)
{
    (void)cx;
    weft_broadcast_rx *rx = leaf;
    weft__fanout *f = rx->weft_chan ? &rx->weft_chan->fan : NULL;
    return weft__fanout_withdraw(f, &rx->weft_node, recv_ready);
}

static const weft__fanout_ops recv_ops = {
    .ready = recv_ready,
    .take = recv_take,
    .behind = below_tail,
    .withdraw = recv_withdraw,
};

int64_t weft_broadcast_send(weft_broadcast_tx *tx, uint64_t value)
{
    weft__bcast *c = tx ? tx->weft_chan : NULL;
    if (!c)
        return -EINVAL;
    weft__lock(&c->fan.lock);
    int64_t receivers = (int64_t)c->fan.receivers;
    if (receivers == 0) {
        weft__unlock(&c->fan.lock);
        return -EPIPE;      /* rule 3 */
    }
    c->buf[c->tail % c->cap] = value;
    c->tail++;
    weft__fanout_wake_front(&c->fan, &recv_ops, c->tail);
    weft__unlock(&c->fan.lock);
    return receivers;
}

int weft_broadcast_rx_drop(weft_broadcast_rx *rx)
{
    weft__bcast *c = rx ? rx->weft_chan : NULL;
    if (!c)
        return -EINVAL;
    rx->weft_chan = NULL;
    weft__fanout_rx_drop(&c->fan, &rx->weft_node);
    return 0;
}

int weft_broadcast_try_recv(weft_broadcast_rx *rx, uint64_t *out)
{
    weft__bcast *c = rx ? rx->weft_chan : NULL;
    if (!c || !out)
        return -EINVAL;
    weft__lock(&c->fan.lock);
    int r = ready_locked(c, rx) ? take_locked(c, rx, out) : -EAGAIN;
    weft__unlock(&c->fan.lock);
    return r;
}

weft_poll weft_broadcast_recv(weft_cx *cx, weft_broadcast_rx *rx, uint64_t *out)
{
    weft__bcast *c = rx ? rx->weft_chan : NULL;
    if (!cx || !c || !out)
        return -EINVAL;
    return weft__fanout_poll(cx, &c->fan, rx, &rx->weft_node, &recv_ops, out);
}

size_t weft__broadcast_waiters(const weft_broadcast_tx *tx)
{
    return weft__fanout_waiters(&tx->weft_chan->fan);
}
