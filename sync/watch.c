/*
 * sync/watch.c - the watch channel: the latest value and its version, sent
 * from any thread, awaited by receivers that want to see each change (or at
 * least the newest one).
 *
 * The shared object is one allocation built on the fan-out core
 * (sync/fanout.h), whose lock word guards every field, every receiver's
 * weft_seen and the state of every receiver node linked to it; handle
 * counts, close, freeing and the changed() wait protocol are the core's,
 * under its rules. This file supplies the value and what a wait reports.
 *
 * Nothing is ever taken out of the object by a wait: the value is read, and
 * weft_seen advanced, only by the poll that returns it. So a withdrawn wait
 * marks nothing seen and loses nothing.
 *
 * Invariants:
 *   1. version counts sends; value is the latest. A receiver has something
 *      new exactly when its weft_seen != version.
 *   2. The core's mark (fanout.h rule 1) is version: a node is linked only
 *      while its receiver waits with weft_seen == version and the watch
 *      open, and a send bumps version and wakes the nodes whose weft_seen is
 *      older.
 */
#include <errno.h>
#include <stddef.h>

#include "sync/fanout.h"
#include "sync/inspect_waits.h"
#include "sync/lock.h"
#include "weft/sync.h"

struct weft__watch {
    weft__fanout fan;           /* first: freeing it frees the object */
    uint64_t value;
    uint64_t version;
};
typedef struct weft__watch weft__watch;

_Static_assert(offsetof(weft__watch, fan) == 0, "the core is the object's first member");

static weft__watch *watch_of(weft__fanout *f)
{
    return (weft__watch *)((char *)f - offsetof(weft__watch, fan));
}

static weft_watch_rx *rx_of(weft_wait_node *n)
{
    return (weft_watch_rx *)((char *)n - offsetof(weft_watch_rx, weft_node));
}

static void rx_attach(weft_watch_rx *rx, weft__watch *c, uint64_t seen)
{
    *rx = (weft_watch_rx){ .weft_chan = c, .weft_seen = seen };
}

int weft_watch_new(weft_watch_tx *tx, weft_watch_rx *rx, uint64_t initial)
{
    if (!tx || !rx)
        return -EINVAL;
    weft__fanout *f = weft__fanout_new(sizeof(weft__watch));
    if (!f)
        return -ENOMEM;
    weft__watch *c = watch_of(f);
    c->value = initial;
    tx->weft_chan = c;
    rx_attach(rx, c, 0);
    return 0;
}

int weft_watch_tx_clone(weft_watch_tx *dst, const weft_watch_tx *src)
{
    if (!dst || !src || !src->weft_chan)
        return -EINVAL;
    weft__fanout_tx_clone(&src->weft_chan->fan);
    dst->weft_chan = src->weft_chan;
    return 0;
}

int weft_watch_tx_drop(weft_watch_tx *tx)
{
    weft__watch *c = tx ? tx->weft_chan : NULL;
    if (!c)
        return -EINVAL;
    tx->weft_chan = NULL;
    weft__fanout_tx_drop(&c->fan);
    return 0;
}

/* Has this receiver anything to report: a change, or the end? */
static bool changed_ready(weft__fanout *f, weft_wait_node *node)
{
    return rx_of(node)->weft_seen != watch_of(f)->version || f->closed;
}

/* Report it (changed_ready is true): 0 with the latest value, marked seen,
 * or -EPIPE when closed with nothing new. */
static weft_poll changed_take(weft_cx *cx, weft__fanout *f, weft_wait_node *node, uint64_t *out)
{
    weft__watch *c = watch_of(f);
    weft_watch_rx *rx = rx_of(node);
    if (rx->weft_seen == c->version)
        return -EPIPE;
    /* Out of budget: mark nothing; the task is requeued. */
    if (!weft_cx_coop(cx))
        return WEFT_PENDING;
    rx->weft_seen = c->version;
    if (out)
        *out = c->value;
    return 0;
}

static bool seen_older(weft_wait_node *node, uint64_t version)
{
    return rx_of(node)->weft_seen < version;    /* rule 2 */
}

static weft_withdraw changed_withdraw(weft_cx *cx, void *leaf)
{
    (void)cx;
    weft_watch_rx *rx = leaf;
    weft__fanout *f = rx->weft_chan ? &rx->weft_chan->fan : NULL;
    return weft__fanout_withdraw(f, &rx->weft_node, changed_ready);
}

static const weft__fanout_ops changed_ops = {
    .ready = changed_ready,
    .take = changed_take,
    .behind = seen_older,
    .withdraw = changed_withdraw,
};

int64_t weft_watch_send(weft_watch_tx *tx, uint64_t value)
{
    weft__watch *c = tx ? tx->weft_chan : NULL;
    if (!c)
        return -EINVAL;
    weft__lock(&c->fan.lock);
    c->value = value;
    uint64_t version = ++c->version;
    int64_t receivers = (int64_t)c->fan.receivers;
    weft__fanout_wake_front(&c->fan, &changed_ops, version);    /* rule 2 */
    weft__unlock(&c->fan.lock);
    return receivers;
}

int weft_watch_subscribe(const weft_watch_tx *tx, weft_watch_rx *rx)
{
    weft__watch *c = tx ? tx->weft_chan : NULL;
    if (!c || !rx)
        return -EINVAL;
    rx_attach(rx, c, weft__fanout_rx_join(&c->fan, &c->version));
    return 0;
}

int weft_watch_rx_clone(weft_watch_rx *dst, const weft_watch_rx *src)
{
    weft__watch *c = src ? src->weft_chan : NULL;
    if (!c || !dst || dst == src)
        return -EINVAL;
    rx_attach(dst, c, weft__fanout_rx_join(&c->fan, &src->weft_seen));
    return 0;
}

int weft_watch_rx_drop(weft_watch_rx *rx)
{
    weft__watch *c = rx ? rx->weft_chan : NULL;
    if (!c)
        return -EINVAL;
    rx->weft_chan = NULL;
    weft__fanout_rx_drop(&c->fan, &rx->weft_node);
    return 0;
}

static int read_latest(weft_watch_rx *rx, uint64_t *value, uint64_t *version, bool update)
{
    weft__watch *c = rx ? rx->weft_chan : NULL;
    if (!c)
        return -EINVAL;
    weft__lock(&c->fan.lock);
    if (value)
        *value = c->value;
    if (version)
        *version = c->version;
    if (update)
        rx->weft_seen = c->version;
    weft__unlock(&c->fan.lock);
    return 0;
}

int weft_watch_read(const weft_watch_rx *rx, uint64_t *value, uint64_t *version)
{
    return read_latest((weft_watch_rx *)rx, value, version, false);
}

int weft_watch_read_update(weft_watch_rx *rx, uint64_t *value, uint64_t *version)
{
    return read_latest(rx, value, version, true);
}

int weft_watch_has_changed(const weft_watch_rx *rx)
{
    weft__watch *c = rx ? rx->weft_chan : NULL;
    if (!c)
        return -EINVAL;
    weft__lock(&c->fan.lock);
    int r = rx->weft_seen != c->version ? 1 : c->fan.closed ? -EPIPE : 0;
    weft__unlock(&c->fan.lock);
    return r;
}

weft_poll weft_watch_changed(weft_cx *cx, weft_watch_rx *rx, uint64_t *out)
{
    weft__watch *c = rx ? rx->weft_chan : NULL;
    if (!cx || !c)
        return -EINVAL;
    return weft__fanout_poll(cx, &c->fan, rx, &rx->weft_node, &changed_ops, out);
}

size_t weft__watch_waiters(const weft_watch_tx *tx)
{
    return weft__fanout_waiters(&tx->weft_chan->fan);
}
