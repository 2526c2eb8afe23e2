/*
 * weft/sync/semaphore.h - counted permits, FIFO, acquire-many, close (lock rules: weft/sync/mutex.h).
 * Part of weft/sync.h: the conventions and the cancellation rule every
 * primitive shares are in weft/sync/common.h.
 */
#ifndef WEFT_SYNC_SEMAPHORE_H
#define WEFT_SYNC_SEMAPHORE_H

#include "weft/sync/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_SEMAPHORE_MAX_PERMITS ((uint64_t)INT64_MAX)

typedef struct weft_semaphore {
    /* private */
    uint32_t weft_lock;
    uint32_t weft_closed;
    uint64_t weft_permits;              /* free permits */
    uint64_t weft_inflight;             /* acquires queued, or woken and not settled */
    weft_wait_list weft_waiters;
} weft_semaphore;

/* permits must not exceed WEFT_SEMAPHORE_MAX_PERMITS (weft_semaphore_init checks). */
#define WEFT_SEMAPHORE_INIT(permits) { 0, 0, (permits), 0, { NULL, NULL } }

typedef struct weft_semaphore_waiter {
    /* private */
    weft_wait_node weft_node;
    weft_semaphore *weft_owner;         /* set while in flight */
    uint64_t weft_need;                 /* permits the wait in flight asks for */
} weft_semaphore_waiter;

#define WEFT_SEMAPHORE_WAITER_INIT { { NULL, NULL, { 0 }, 0, 0 }, NULL, 0 }

/* Initialise with `permits` free permits (0..WEFT_SEMAPHORE_MAX_PERMITS). */
WEFT_EXTERN int weft_semaphore_init(weft_semaphore *s, uint64_t permits);

/* Check before reusing the memory: -EBUSY while an acquire is in flight
 * (queued, or granted or closed but not yet back in its task), else 0. Permits
 * still held are not tracked (the semaphore records only the free ones;
 * compare weft_semaphore_available with what you expect). */
WEFT_EXTERN int weft_semaphore_destroy(weft_semaphore *s);

/*
 * Await n permits (1..WEFT_SEMAPHORE_MAX_PERMITS) as one grant: yields 0 with
 * all n held, or -EPIPE once the semaphore is closed (none held). Every poll
 * of one wait must pass the same n (-EINVAL otherwise).
 * Strict FIFO: a request is granted only when it is at the head of the line
 * and n permits are free. A large request at the head therefore blocks the
 * smaller ones behind it even while enough permits for them are free; that
 * is the price of never starving large requests.
 * Cancellation: withdrawn while queued, it holds nothing and leaves the line;
 * if it was the head, the waiters behind it are granted at once if the free
 * permits now suffice. Withdrawn after it was granted but before its task ran,
 * a cooperative task keeps all n (RACED: yields 0); a torn-down task releases
 * all n to the next waiters. Withdrawn after a close woke it, it yields
 * -EPIPE (RACED). Permits are never split: a wait holds n or none.
 */
WEFT_EXTERN weft_poll weft_semaphore_acquire(weft_cx *cx, weft_semaphore *s,
                                             weft_semaphore_waiter *w, uint64_t n);

/* Take n permits if they are free now and nobody is queued: 0, -EAGAIN, or
 * -EPIPE when closed. -EINVAL for n == 0 or n above the maximum. Any thread. */
WEFT_EXTERN int weft_semaphore_try_acquire(weft_semaphore *s, uint64_t n);

/*
 * Add n permits (returning held ones, or creating new ones: the semaphore
 * does not count what was taken). The waiters they satisfy are granted in
 * FIFO order and woken. 0, -EOVERFLOW when the free count would exceed
 * WEFT_SEMAPHORE_MAX_PERMITS (nothing added), -EINVAL. Permits released after
 * a close are counted but nobody can acquire them. Never waits; any thread.
 */
WEFT_EXTERN int weft_semaphore_release(weft_semaphore *s, uint64_t n);

/*
 * Close: every queued acquire wakes with -EPIPE, later acquires and
 * try_acquires fail with -EPIPE. Permits already held stay held and may be
 * released. Idempotent. Never waits; any thread.
 */
WEFT_EXTERN int weft_semaphore_close(weft_semaphore *s);

/* Free permits now (a hint), or -EINVAL for NULL. */
WEFT_EXTERN int64_t weft_semaphore_available(weft_semaphore *s);

/* True once closed (or for NULL). */
WEFT_EXTERN bool weft_semaphore_is_closed(weft_semaphore *s);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_SEMAPHORE_H */
