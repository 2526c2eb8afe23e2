/*
 * sync/waitq.h - the FIFO of waiter nodes every sync primitive keeps, and the
 * helpers their withdrawal hooks share.
 *
 * Invariants:
 *   1. A node is linked in at most one list, and only under the lock of the
 *      primitive that owns the list; every function here expects that lock.
 *   2. A node's weft_state is written only under that lock. A node is linked
 *      exactly while its state is WEFT__WAIT_QUEUED.
 *   3. A linked node owns the waker in node->weft_wake. Whoever unlinks the
 *      node moves the waker out (weft__wait_take_waker) before unlocking, and
 *      wakes or drops it after unlocking: once unlocked, the node may belong to
 *      a frame that is being freed.
 */
#ifndef WEFT_SYNC_WAITQ_H
#define WEFT_SYNC_WAITQ_H

#include <stdbool.h>
#include <stddef.h>

#include "weft/sync.h"

/* States every primitive shares; the rest are per primitive (>= 2). */
enum { WEFT__WAIT_IDLE = 0, WEFT__WAIT_QUEUED = 1 };

static inline bool weft__waitq_empty(const weft_wait_list *q)
{
    return q->weft_head == NULL;
}

static inline void weft__waitq_push(weft_wait_list *q, weft_wait_node *n)
{
    n->weft_next = NULL;
    n->weft_prev = q->weft_tail;
    if (q->weft_tail)
        q->weft_tail->weft_next = n;
    else
        q->weft_head = n;
    q->weft_tail = n;
}

static inline void weft__waitq_remove(weft_wait_list *q, weft_wait_node *n)
{
    if (n->weft_prev)
        n->weft_prev->weft_next = n->weft_next;
    else
        q->weft_head = n->weft_next;
    if (n->weft_next)
        n->weft_next->weft_prev = n->weft_prev;
    else
        q->weft_tail = n->weft_prev;
    n->weft_prev = n->weft_next = NULL;
}

static inline weft_wait_node *weft__waitq_pop(weft_wait_list *q)
{
    weft_wait_node *n = q->weft_head;
    if (n)
        weft__waitq_remove(q, n);
    return n;
}

static inline weft_waker weft__wait_take_waker(weft_wait_node *n)
{
    weft_waker w = n->weft_wake;
    n->weft_wake.weft_bits = 0;
    return w;
}

/* Make the node's waker wake the task polling now. A re-poll from the same
 * task keeps the waker it has; otherwise the displaced waker is returned, to
 * be dropped after unlocking. */
static inline weft_waker weft__wait_refresh_waker(weft_wait_node *n, weft_cx *cx)
{
    weft_waker old = { 0 };
    if (!weft_waker_will_wake(&n->weft_wake, cx)) {
        old = n->weft_wake;
        n->weft_wake = weft_cx_waker(cx);
    }
    return old;
}

/*
 * Wakers collected under a lock, to wake (or drop) once it is released. No
 * operation in sync/ collects more than WEFT__DEFERRED_MAX of each.
 */
#define WEFT__DEFERRED_MAX 4
typedef struct weft__deferred {
    weft_waker wake[WEFT__DEFERRED_MAX];
    weft_waker drop[WEFT__DEFERRED_MAX];
    unsigned nwake, ndrop;
} weft__deferred;

#define WEFT__DEFERRED_INIT { { { 0 } }, { { 0 } }, 0, 0 }

void weft__defer_overflow(void) __attribute__((noreturn, cold));

static inline void weft__defer_wake(weft__deferred *d, weft_waker w)
{
    if (!w.weft_bits)
        return;
    if (d->nwake == WEFT__DEFERRED_MAX)
        weft__defer_overflow();
    d->wake[d->nwake++] = w;
}

static inline void weft__defer_drop(weft__deferred *d, weft_waker w)
{
    if (!w.weft_bits)
        return;
    if (d->ndrop == WEFT__DEFERRED_MAX)
        weft__defer_overflow();
    d->drop[d->ndrop++] = w;
}

/* Wake and drop what was collected; call with no lock held. */
static inline void weft__deferred_run(weft__deferred *d)
{
    for (unsigned i = 0; i < d->nwake; i++)
        weft_waker_wake(&d->wake[i]);
    for (unsigned i = 0; i < d->ndrop; i++)
        weft_waker_drop(&d->drop[i]);
}

#endif /* WEFT_SYNC_WAITQ_H */
