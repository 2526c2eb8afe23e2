/*
 * weft/sync/notify.h - wake one waiter or all of them, with one stored permit.
 * Part of weft/sync.h: the conventions and the cancellation rule every
 * primitive shares are in weft/sync/common.h.
 */
#ifndef WEFT_SYNC_NOTIFY_H
#define WEFT_SYNC_NOTIFY_H

#include "weft/sync/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_notify {
    /* private */
    uint32_t weft_lock;
    uint32_t weft_permit;               /* a stored weft_notify_one: 0 or 1 */
    uint64_t weft_epoch;                /* bumped by every weft_notify_all */
    uint64_t weft_inflight;             /* waits queued, or woken and not settled */
    weft_wait_list weft_waiters;
} weft_notify;

#define WEFT_NOTIFY_INIT { 0, 0, 0, 0, { NULL, NULL } }

typedef struct weft_notify_waiter {
    /* private */
    weft_wait_node weft_node;
    weft_notify *weft_owner;           /* set while in flight */
    uint64_t weft_epoch;                /* weft_epoch when it was queued */
} weft_notify_waiter;

#define WEFT_NOTIFY_WAITER_INIT { { NULL, NULL, { 0 }, 0, 0 }, NULL, 0 }

/* Initialise (same as WEFT_NOTIFY_INIT). The caller owns the memory. */
WEFT_EXTERN int weft_notify_init(weft_notify *n);

/* Check that no wait is in flight before the memory is reused: -EBUSY if any. */
WEFT_EXTERN int weft_notify_destroy(weft_notify *n);

/*
 * Wake the first waiter (FIFO). With no waiter, store one permit that the next
 * wait consumes at once (at most one is stored: permits do not add up).
 * Returns 1 when a waiter was chosen, 0 when the permit was stored. Any thread.
 */
WEFT_EXTERN int weft_notify_one(weft_notify *n);

/*
 * Wake every wait queued before the call (waits that start during it are not
 * woken). Stores no permit and leaves a stored one alone. Returns how many
 * waits were woken. Any thread.
 */
WEFT_EXTERN int64_t weft_notify_all(weft_notify *n);

/*
 * Await a notification: yields 0 when a stored permit is taken or when
 * notify_one/notify_all wakes this wait.
 * Cancellation: withdrawn while queued, the wait leaves nothing behind.
 * Withdrawn after weft_notify_one chose it but before its task ran again, the
 * notification is not lost: it passes to the next queued waiter, or becomes the
 * stored permit if none is queued, and the await yields -ECANCELED (unlike
 * tokio, where a dropped Notified loses the notify_one). Withdrawn after
 * weft_notify_all woke it, it yields -ECANCELED (every other waiter was woken
 * too, so there is nothing to pass on).
 */
WEFT_EXTERN weft_poll weft_notify_wait(weft_cx *cx, weft_notify *n, weft_notify_waiter *w);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_NOTIFY_H */
