/*
 * sync/fanout.h - the core the broadcast and watch channels share: one shared
 * object with many senders and many receivers, each receiver waiting until
 * the sends pass its own position (the receiver rules both channels follow
 * are in weft/sync/broadcast.h).
 *
 * A weft__fanout is the first member of its channel's object, which is one
 * allocation of alloc_size bytes: freeing the core frees the object. Its lock
 * word (sync/lock.h) guards every field of the object, every receiver's
 * position and the state of every receiver node linked to it. There are no
 * other atomics: the lock word's acquire/release orderings (lock.h) publish
 * everything.
 *
 * A receiver handle is the leaf of its waits: its node is linked while a wait
 * is queued. A wait takes nothing out of the object: only the poll that
 * reports something moves the receiver's position (the channel's take), so a
 * withdrawn wait loses nothing. The channel supplies, in a weft__fanout_ops,
 * what differs: when a receiver has something to report, how it is reported,
 * and which queued receivers a send has passed.
 *
 * Invariants:
 *   1. A node is linked only while its receiver waits with nothing to report
 *      and the channel open, that is with its position at the channel's mark
 *      (how far the sends have come). A send moves the mark and unlinks the
 *      nodes at the front that are behind it (weft__fanout_wake_front), a
 *      batch per lock hold; nodes are queued in order of position, so it
 *      stops at the first newer one.
 *   2. closed is set by the drop of the last sender, which then unlinks every
 *      node (none can queue once closed, and closed is never cleared).
 *      senders is decremented only after that loop, so the object cannot be
 *      freed under it.
 *   3. The object is freed by whoever leaves senders == 0 and receivers == 0,
 *      after unlocking.
 */
#ifndef WEFT_SYNC_FANOUT_H
#define WEFT_SYNC_FANOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/sync.h"

typedef struct weft__fanout {
    uint32_t lock;
    bool closed;
    size_t senders, receivers;
    size_t alloc_size;
    weft_wait_list waiters;
} weft__fanout;

/* Has the receiver whose node this is something to report (a value, a lag,
 * the end)? Lock held. */
typedef bool weft__fanout_ready_fn(weft__fanout *f, weft_wait_node *node);

/* What differs between the channels; each is called with the lock held. */
typedef struct weft__fanout_ops {
    weft__fanout_ready_fn *ready;
    /* Report what the receiver has (ready is true), moving its position past
     * it: the poll's result, or WEFT_PENDING with nothing taken when the task
     * is out of budget (weft_cx_coop). */
    weft_poll (*take)(weft_cx *cx, weft__fanout *f, weft_wait_node *node, uint64_t *out);
    /* Is this queued receiver behind `mark`, the mark a send just moved to? */
    bool (*behind)(weft_wait_node *node, uint64_t mark);
    /* The channel's cancel hook for a receiver's wait (the leaf is the
     * receiver handle); it ends in weft__fanout_withdraw. */
    weft_cancel_hook withdraw;
} weft__fanout_ops;

/* Allocate a channel object of `alloc_size` bytes (zeroed) whose first member
 * is the core, with one sender and one receiver. NULL when out of memory. */
weft__fanout *weft__fanout_new(size_t alloc_size);

/* Count one more sender. */
void weft__fanout_tx_clone(weft__fanout *f);

/* Give up a sender; the last one closes the channel (rule 2). May free the
 * object (rule 3). */
void weft__fanout_tx_drop(weft__fanout *f);

/* Count one more receiver; returns *pos as read under the lock, the position
 * the new receiver starts at. */
uint64_t weft__fanout_rx_join(weft__fanout *f, const uint64_t *pos);

/* Give up a receiver, unlinking its node if it is queued. May free the
 * object (rule 3). */
void weft__fanout_rx_drop(weft__fanout *f, weft_wait_node *node);

/* Wake the waiters at the front that are behind `mark` (rule 1), or all of
 * them once closed (rule 2). Lock held on entry and on return. */
void weft__fanout_wake_front(weft__fanout *f, const weft__fanout_ops *ops, uint64_t mark);

/* A receiver's wait (`rx` the handle, `node` its node): report what it has,
 * or queue it and suspend with ops->withdraw; -EBUSY when another task
 * waits on this receiver. */
weft_poll weft__fanout_poll(weft_cx *cx, weft__fanout *f, void *rx, weft_wait_node *node,
                            const weft__fanout_ops *ops, uint64_t *out);

/* The body of a channel's cancel hook (`f` NULL for an empty handle);
 * `ready` is the ops' (passed alone, as the hook is itself in the ops). */
weft_withdraw weft__fanout_withdraw(weft__fanout *f, weft_wait_node *node,
                                    weft__fanout_ready_fn *ready);

/* The number of queued waits, for inspect_waits.h. */
size_t weft__fanout_waiters(weft__fanout *f);

#endif /* WEFT_SYNC_FANOUT_H */
