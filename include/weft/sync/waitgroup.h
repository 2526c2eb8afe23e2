/*
 * weft/sync/waitgroup.h - await a count of outstanding work reaching zero.
 * Part of weft/sync.h: the conventions and the cancellation rule every
 * primitive shares are in weft/sync/common.h.
 */
#ifndef WEFT_SYNC_WAITGROUP_H
#define WEFT_SYNC_WAITGROUP_H

#include "weft/sync/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_waitgroup {
    /* private */
    uint32_t weft_lock;
    uint32_t weft_inflight;             /* waits queued, or released and not settled */
    uint64_t weft_count;
    uint64_t weft_epoch;                /* times the count reached zero */
    weft_wait_list weft_waiters;
} weft_waitgroup;

#define WEFT_WAITGROUP_INIT { 0, 0, 0, 0, { NULL, NULL } }

typedef struct weft_waitgroup_waiter {
    /* private */
    weft_wait_node weft_node;
    weft_waitgroup *weft_owner;         /* set while in flight */
    uint64_t weft_epoch;                /* weft_epoch when it queued */
} weft_waitgroup_waiter;

#define WEFT_WAITGROUP_WAITER_INIT { { NULL, NULL, { 0 }, 0, 0 }, NULL, 0 }

/* Initialise with a count of 0 (same as WEFT_WAITGROUP_INIT). */
WEFT_EXTERN int weft_waitgroup_init(weft_waitgroup *wg);

/* Check before reusing the memory: -EBUSY while a wait is in flight (queued,
 * or released but not yet back in its task), else 0. */
WEFT_EXTERN int weft_waitgroup_destroy(weft_waitgroup *wg);

/* Add n to the count (Go's Add with n > 0). 0, -EOVERFLOW (nothing added),
 * -EINVAL. Any thread. */
WEFT_EXTERN int weft_waitgroup_add(weft_waitgroup *wg, uint64_t n);

/* Take 1 from the count; reaching 0 wakes every wait queued then. 0, or
 * -EPERM when the count is already 0. Any thread. */
WEFT_EXTERN int weft_waitgroup_done(weft_waitgroup *wg);

/* The count now (a hint), or -EINVAL. */
WEFT_EXTERN int64_t weft_waitgroup_count(weft_waitgroup *wg);

/*
 * Await the count reaching 0: yields 0 at once when it is 0, otherwise when
 * a done() brings it to 0 (even if an add() raises it again before the task
 * runs: the wait saw zero).
 * Cancellation: a wait changes nothing, so a withdrawn one leaves nothing
 * behind: -ECANCELED while the count was above 0; after the count reached 0
 * and woke it, the await reports that (RACED: yields 0).
 */
WEFT_EXTERN weft_poll weft_waitgroup_wait(weft_cx *cx, weft_waitgroup *wg,
                                          weft_waitgroup_waiter *w);

/* wait for a plain thread: blocks until the count is 0. -EDEADLK on a worker. */
WEFT_EXTERN int weft_waitgroup_wait_blocking(weft_waitgroup *wg);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_WAITGROUP_H */
