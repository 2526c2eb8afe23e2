/*
 * sync/batch.h - waking many waiters without holding a lock for long.
 *
 * An operation that may wake any number of waiters (a release that satisfies
 * several, a close, a barrier trip, a broadcast send) moves at most
 * WEFT__BATCH_MAX of them out of the wait list per lock hold, taking their
 * wakers into a weft__batch (waitq.h rule 3), then unlocks, wakes them, and
 * relocks for the next batch. Every such loop re-checks its condition under
 * the lock at each batch, so the state may change between batches; the loops
 * that must not wake waiters queued after they started (notify_all style) tell
 * them apart by a generation or epoch recorded at queueing time.
 */
#ifndef WEFT_SYNC_BATCH_H
#define WEFT_SYNC_BATCH_H

#include <stdbool.h>

#include <stdint.h>

#include "weft/sync.h"

#define WEFT__BATCH_MAX 32

typedef struct weft__batch {
    weft_waker w[WEFT__BATCH_MAX];
    unsigned n;
} weft__batch;

static inline bool weft__batch_full(const weft__batch *b)
{
    return b->n == WEFT__BATCH_MAX;
}

/* Add a waker taken from a node (lock held; the batch must not be full). */
static inline void weft__batch_add(weft__batch *b, weft_waker w)
{
    if (w.weft_bits)
        b->w[b->n++] = w;
}

/* Wake what was collected and empty the batch; call with no lock held. */
static inline void weft__batch_run(weft__batch *b)
{
    for (unsigned i = 0; i < b->n; i++)
        weft_waker_wake(&b->w[i]);
    b->n = 0;
}

/*
 * Unlink and wake, a batch per lock hold, the waiters at the front of `list`
 * for which ready(node, arg) holds, stopping at the first that is not ready;
 * `ready` is re-evaluated under the lock for every node, so state changed
 * between batches is seen. Each woken node is left WEFT__WAIT_IDLE. The lock
 * (`lock`, sync/lock.h) is held on entry and on return.
 */
void weft__wake_front(uint32_t *lock, weft_wait_list *list,
                      bool (*ready)(weft_wait_node *node, void *arg), void *arg);

struct weft__deferred;

/*
 * The FIFO hand-over of the locks (rwlock.c, semaphore.c): grant the waiters
 * at the front of `list` in order while grant(node, arg) accepts them (it
 * either takes, under the lock, what it grants the node, or returns false
 * having taken nothing), leaving each granted node in `granted_state`; then
 * unlock and wake them, a batch per lock hold, and run the deferred wakers
 * `d` (waitq.h; may be NULL) after the first unlock. The lock is held on
 * entry and released on return.
 */
void weft__grant_front_unlock(uint32_t *lock, weft_wait_list *list,
                              bool (*grant)(weft_wait_node *node, void *arg), void *arg,
                              unsigned granted_state, struct weft__deferred *d);

#endif /* WEFT_SYNC_BATCH_H */
