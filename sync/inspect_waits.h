/*
 * sync/inspect_waits.h - read-only views into the primitives of the second
 * batch (locks, broadcast, watch, barrier, wait group), for tests that must
 * wait until a task is really queued before acting. Same rules as inspect.h
 * (kept apart only because that file has another owner): each takes the
 * primitive's lock, and the answer may change as soon as it returns.
 */
#ifndef WEFT_SYNC_INSPECT_WAITS_H
#define WEFT_SYNC_INSPECT_WAITS_H

#include <stdbool.h>
#include <stddef.h>

#include "weft/sync.h"

size_t weft__mutex_waiters(weft_mutex *m);
size_t weft__rwlock_waiters(weft_rwlock *rw);
size_t weft__semaphore_waiters(weft_semaphore *s);
size_t weft__barrier_waiters(weft_barrier *b);
size_t weft__waitgroup_waiters(weft_waitgroup *wg);
size_t weft__broadcast_waiters(const weft_broadcast_tx *tx);
size_t weft__watch_waiters(const weft_watch_tx *tx);

/* Shared by the files above: the length of a wait list (lock held). */
static inline size_t weft__waitq_len(const weft_wait_list *q)
{
    size_t n = 0;
    for (const weft_wait_node *w = q->weft_head; w; w = w->weft_next)
        n++;
    return n;
}

#endif /* WEFT_SYNC_INSPECT_WAITS_H */
