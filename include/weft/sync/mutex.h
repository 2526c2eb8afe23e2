/*
 * weft/sync/mutex.h - one holder at a time, FIFO handoff; the rules the three locks share.
 * Part of weft/sync.h: the conventions and the cancellation rule every
 * primitive shares are in weft/sync/common.h.
 */
#ifndef WEFT_SYNC_MUTEX_H
#define WEFT_SYNC_MUTEX_H

#include "weft/sync/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Locks: mutex, rwlock, semaphore ========================================
 *
 * Rules shared by the three (each function adds its specifics):
 *
 *  - The objects (weft_mutex, weft_rwlock, weft_semaphore) are plain structs
 *    the caller owns: initialise them with the *_INIT macro or *_init, and
 *    check with *_destroy that nothing is held (mutex, rwlock) or in flight
 *    before the memory is reused. They never allocate: nothing here fails
 *    with -ENOMEM.
 *  - Waits are served in strict FIFO order and the lock is handed over: a
 *    release gives the lock (or the permits) to the first waiter, which owns
 *    it from that moment, before its task even runs. Nobody barges in: a
 *    try_* call fails with -EAGAIN while anyone is queued.
 *  - Not recursive, and no owner is recorded: an unlock may come from any
 *    task or thread, from whoever holds the lock. An unlock when nothing is
 *    held returns -EPERM; an unlock of a lock someone else holds cannot be
 *    told apart from a correct one.
 *
 * Cancellation of a lock wait (weft_mutex_lock, weft_rwlock_read/write,
 * weft_semaphore_acquire) in each state it can be in:
 *
 *  - Queued: the wait leaves the line holding nothing, and no wake-up is lost:
 *    if its departure lets the waiters behind it proceed (a writer or a large
 *    acquire that was at the head), they are granted at once. The await yields
 *    -ECANCELED. The place in line is given up, as in tokio (whose lock,
 *    acquire and notified futures lose their place when dropped), and on
 *    purpose: a place kept for a wait that nobody polls any more would be
 *    handed the lock and hold it with no one to release it (the "futurelock"
 *    of docs/bug-catalogue.md, C8). A task that waits again queues at the back.
 *  - Handed the lock but not yet run: the handoff is never lost, and is not
 *    silently undone either. A task that will run again (cooperative) keeps
 *    it: the withdrawal answers RACED, the await yields 0 with the lock held,
 *    and the task must unlock it (its next await yields -ECANCELED): the
 *    acquisition happened, so it is reported. A task being torn down
 *    (cancel-safe, runtime shutdown) passes it to the next waiter, or
 *    releases it if none waits.
 *  - Holding (the await yielded 0): the lock is the task's until it unlocks.
 *    A cooperative task sees -ECANCELED at its next await and unlocks; a task
 *    that can be torn down while holding must unlock in its drop hook, keeping
 *    a flag in its frame to know whether it holds (the lock cannot tell).
 *
 * Timeouts and select around a lock wait withdraw that wait, nothing else.
 */



typedef struct weft_mutex {
    /* private */
    uint32_t weft_lock;
    uint32_t weft_locked;               /* held, or handed to a waiter */
    weft_wait_list weft_waiters;
} weft_mutex;

#define WEFT_MUTEX_INIT { 0, 0, { NULL, NULL } }

typedef struct weft_mutex_waiter {
    /* private */
    weft_wait_node weft_node;
    weft_mutex *weft_owner;             /* set while in flight */
} weft_mutex_waiter;

#define WEFT_MUTEX_WAITER_INIT { { NULL, NULL, { 0 }, 0, 0 }, NULL }

/* Initialise, unlocked (same as WEFT_MUTEX_INIT). -EINVAL for NULL. */
WEFT_EXTERN int weft_mutex_init(weft_mutex *m);

/* Check before reusing the memory: -EBUSY while held or waited for, else 0. */
WEFT_EXTERN int weft_mutex_destroy(weft_mutex *m);

/*
 * Await the mutex: yields 0 once the caller holds it (give it up with
 * weft_mutex_unlock). Waiters are served in FIFO order; an unlock hands the
 * mutex straight to the first one.
 * Cancellation: withdrawn while queued, the wait leaves the line holding
 * nothing, and the next waiter still gets the next unlock; -ECANCELED.
 * Withdrawn after an unlock handed it the mutex but before its task ran:
 * a cooperative task keeps it (RACED: yields 0, mutex held); a task being
 * torn down passes it to the next waiter, or unlocks it if none waits.
 */
WEFT_EXTERN weft_poll weft_mutex_lock(weft_cx *cx, weft_mutex *m, weft_mutex_waiter *w);

/* Take the mutex if it is free now: 0, or -EAGAIN when it is held (a free
 * mutex never has waiters). Any thread. */
WEFT_EXTERN int weft_mutex_try_lock(weft_mutex *m);

/* Give the mutex up: the first waiter now holds it (and is woken), or it
 * becomes free. 0, or -EPERM when it is not held. Never waits; any thread. */
WEFT_EXTERN int weft_mutex_unlock(weft_mutex *m);

/* True while held or handed to a waiter (false for NULL). A hint. */
WEFT_EXTERN bool weft_mutex_is_locked(weft_mutex *m);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_MUTEX_H */
