/*
 * sync/watch.c - the watch channel: the latest value and its version, sent
 * from any thread, awaited by receivers that want to see each change (or at
 * least the newest one).
 *
 * The shared object is one allocation with a lock word (sync/lock.h) that
 * guards every field, every receiver's weft_seen and the state of every
 * receiver node linked to it. There are no other atomics: the lock word's
 * acquire/release orderings (lock.h) publish everything below.
 *
 * A receiver handle is the leaf of its changed() waits: its node is linked
 * while a wait is queued. Nothing is ever taken out of the object by a wait:
 * the value is read, and weft_seen advanced, only by the poll that returns
 * it. So a withdrawn wait marks nothing seen and loses nothing.
 *
 * Invariants:
 *   1. version counts sends; value is the latest. A receiver has something
 *      new exactly when its weft_seen != version.
 *   2. A node is linked only while its receiver waits with weft_seen ==
 *      version and the watch open. A send bumps version and unlinks every
 *      node queued before it (their weft_seen is older), a batch per lock
 *      hold; nodes are queued in order of weft_seen, so it stops at the first
 *      newer one.
 *   3. closed is set by the drop of the last sender, which then unlinks every
 *      node (none can queue once closed). senders is decremented only after
 *      that loop, so the object cannot be freed under it.
 *   4. The object is freed by whoever leaves senders == 0 and receivers == 0,
 *      after unlocking.
 */
#include <errno.h>
#include <stddef.h>

#include "runtime/alloc.h"
#include "sync/batch.h"
#include "sync/inspect_waits.h"
#include "sync/lock.h"
#include "sync/waitq.h"
#include "weft/sync.h"

struct weft__watch {
    uint32_t lock;
    bool closed;
    uint64_t value;
    uint64_t version;
    size_t senders, receivers;
    weft_wait_list waiters;
};
typedef struct weft__watch weft__watch;

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
    weft__watch *c = weft__calloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    c->value = initial;
    c->senders = 1;
    c->receivers = 1;
    tx->weft_chan = c;
    rx_attach(rx, c, 0);
    return 0;
}

/* Unlock, run the deferred wakes, and free the object if the caller's
 * handle was the last (rule 4). */
static void unlock_and_settle(weft__watch *c, weft__deferred *d)
{
    bool free_it = c->senders == 0 && c->receivers == 0;
    weft__unlock(&c->lock);
    weft__deferred_run(d);
    if (free_it)
        weft__free(c, sizeof *c);
}

int weft_watch_tx_clone(weft_watch_tx *dst, const weft_watch_tx *src)
{
    if (!dst || !src || !src->weft_chan)
        return -EINVAL;
    weft__watch *c = src->weft_chan;
    weft__lock(&c->lock);
    c->senders++;
    weft__unlock(&c->lock);
    dst->weft_chan = c;
    return 0;
}

struct front {
    weft__watch *c;
    uint64_t below_version;
};

static bool has_not_seen(weft_wait_node *node, void *arg)
{
    const struct front *f = arg;
    return f->c->closed || rx_of(node)->weft_seen < f->below_version;
}

/* Wake the waiters at the front whose receiver has seen less than
 * below_version (rule 2), or all of them once closed (rule 3). Lock held on
 * entry and on return. */
static void wake_front(weft__watch *c, uint64_t below_version)
{
    struct front f = { c, below_version };
    weft__wake_front(&c->lock, &c->waiters, has_not_seen, &f);
}

int weft_watch_tx_drop(weft_watch_tx *tx)
{
    weft__watch *c = tx ? tx->weft_chan : NULL;
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

int64_t weft_watch_send(weft_watch_tx *tx, uint64_t value)
{
    weft__watch *c = tx ? tx->weft_chan : NULL;
    if (!c)
        return -EINVAL;
    weft__lock(&c->lock);
    c->value = value;
    uint64_t version = ++c->version;
    int64_t receivers = (int64_t)c->receivers;
    wake_front(c, version);     /* rule 2 */
    weft__unlock(&c->lock);
    return receivers;
}

int weft_watch_subscribe(const weft_watch_tx *tx, weft_watch_rx *rx)
{
    weft__watch *c = tx ? tx->weft_chan : NULL;
    if (!c || !rx)
        return -EINVAL;
    weft__lock(&c->lock);
    c->receivers++;
    rx_attach(rx, c, c->version);
    weft__unlock(&c->lock);
    return 0;
}

int weft_watch_rx_clone(weft_watch_rx *dst, const weft_watch_rx *src)
{
    weft__watch *c = src ? src->weft_chan : NULL;
    if (!c || !dst || dst == src)
        return -EINVAL;
    weft__lock(&c->lock);
    c->receivers++;
    rx_attach(dst, c, src->weft_seen);
    weft__unlock(&c->lock);
    return 0;
}

/* Unlink the receiver's node if it is queued. Lock held. */
static void rx_unqueue(weft__watch *c, weft_watch_rx *rx, weft__deferred *d)
{
    if (rx->weft_node.weft_state != WEFT__WAIT_QUEUED)
        return;
    weft__waitq_remove(&c->waiters, &rx->weft_node);
    rx->weft_node.weft_state = WEFT__WAIT_IDLE;
    weft__defer_drop(d, weft__wait_take_waker(&rx->weft_node));
}

int weft_watch_rx_drop(weft_watch_rx *rx)
{
    weft__watch *c = rx ? rx->weft_chan : NULL;
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

static int read_latest(weft_watch_rx *rx, uint64_t *value, uint64_t *version, bool update)
{
    weft__watch *c = rx ? rx->weft_chan : NULL;
    if (!c)
        return -EINVAL;
    weft__lock(&c->lock);
    if (value)
        *value = c->value;
    if (version)
        *version = c->version;
    if (update)
        rx->weft_seen = c->version;
    weft__unlock(&c->lock);
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
    weft__lock(&c->lock);
    int r = rx->weft_seen != c->version ? 1 : c->closed ? -EPIPE : 0;
    weft__unlock(&c->lock);
    return r;
}

static weft_withdraw changed_withdraw(weft_cx *cx, void *leaf)
{
    (void)cx;
    weft_watch_rx *rx = leaf;
    weft__watch *c = rx->weft_chan;
    if (!c)
        return WEFT_WITHDRAWN;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft__lock(&c->lock);
    rx_unqueue(c, rx, &d);
    /* Nothing is marked seen here: a re-poll reports the change (RACED); a
     * torn-down task leaves it unseen. */
    bool decided = rx->weft_seen != c->version || c->closed;
    weft__unlock(&c->lock);
    weft__deferred_run(&d);
    return decided ? WEFT_WITHDRAW_RACED : WEFT_WITHDRAWN;
}

weft_poll weft_watch_changed(weft_cx *cx, weft_watch_rx *rx, uint64_t *out)
{
    weft__watch *c = rx ? rx->weft_chan : NULL;
    if (!cx || !c)
        return -EINVAL;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft_poll r = WEFT_PENDING;
    bool suspend = false;
    weft__lock(&c->lock);
    bool queued = rx->weft_node.weft_state == WEFT__WAIT_QUEUED;
    if (queued && !weft_waker_will_wake(&rx->weft_node.weft_wake, cx)) {
        r = -EBUSY;     /* another task waits on this receiver */
    } else if (rx->weft_seen != c->version) {
        rx_unqueue(c, rx, &d);
        /* Out of budget: mark nothing; the task is requeued. */
        if (weft_cx_coop(cx)) {
            rx->weft_seen = c->version;
            if (out)
                *out = c->value;
            r = 0;
        }
    } else if (c->closed) {
        rx_unqueue(c, rx, &d);
        r = -EPIPE;
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
        weft_cx_suspend(cx, rx, changed_withdraw);
    return r;
}

size_t weft__watch_waiters(const weft_watch_tx *tx)
{
    weft__watch *c = tx->weft_chan;
    weft__lock(&c->lock);
    size_t n = weft__waitq_len(&c->waiters);
    weft__unlock(&c->lock);
    return n;
}
