/*
 * weft/sync/rwlock.h - many readers or one writer, FIFO (lock rules: weft/sync/mutex.h).
 * Part of weft/sync.h: the conventions and the cancellation rule every
 * primitive shares are in weft/sync/common.h.
 */
#ifndef WEFT_SYNC_RWLOCK_H
#define WEFT_SYNC_RWLOCK_H

#include "weft/sync/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Fair in FIFO order, which makes it write-preferring where it matters: a
 * reader that arrives while a writer waits queues behind that writer, so a
 * stream of readers cannot starve writers; and the readers queued before a
 * writer are admitted together, so writers cannot starve readers either.
 */
typedef struct weft_rwlock {
    /* private */
    uint32_t weft_lock;
    uint32_t weft_writer;               /* write-held, or handed to a writer */
    uint64_t weft_readers;              /* read holds, handed ones included */
    weft_wait_list weft_waiters;
} weft_rwlock;

#define WEFT_RWLOCK_INIT { 0, 0, 0, { NULL, NULL } }

typedef struct weft_rwlock_waiter {
    /* private */
    weft_wait_node weft_node;
    weft_rwlock *weft_owner;            /* set while in flight */
    uint32_t weft_write;                /* the wait in flight is a write */
    uint32_t weft_reserved;
} weft_rwlock_waiter;

#define WEFT_RWLOCK_WAITER_INIT { { NULL, NULL, { 0 }, 0, 0 }, NULL, 0, 0 }

/* Initialise, unlocked (same as WEFT_RWLOCK_INIT). -EINVAL for NULL. */
WEFT_EXTERN int weft_rwlock_init(weft_rwlock *rw);

/* Check before reusing the memory: -EBUSY while held or waited for, else 0. */
WEFT_EXTERN int weft_rwlock_destroy(weft_rwlock *rw);

/*
 * Await shared access: yields 0 with a read hold (give it up with
 * weft_rwlock_read_unlock). Granted at once when no writer holds the lock and
 * nobody is queued; otherwise queued in FIFO order behind earlier waits.
 * Cancellation: as weft_mutex_lock. Withdrawn while queued it holds nothing;
 * withdrawn after being handed a read hold, a cooperative task keeps it
 * (RACED: yields 0) and a torn-down task gives it back (waking a writer that
 * waited only for it).
 */
WEFT_EXTERN weft_poll weft_rwlock_read(weft_cx *cx, weft_rwlock *rw, weft_rwlock_waiter *w);

/*
 * Await exclusive access: yields 0 with the write hold (give it up with
 * weft_rwlock_write_unlock).
 * Cancellation: as weft_mutex_lock. A write wait withdrawn while queued at
 * the head lets the readers queued behind it in at once; one withdrawn after
 * being handed the lock keeps it (cooperative, RACED: yields 0) or passes it
 * on (torn down) to the next waiters.
 */
WEFT_EXTERN weft_poll weft_rwlock_write(weft_cx *cx, weft_rwlock *rw, weft_rwlock_waiter *w);

/* Take a read or write hold if it can be had now: 0, or -EAGAIN (the lock is
 * held incompatibly, or waits are queued). Any thread. */
WEFT_EXTERN int weft_rwlock_try_read(weft_rwlock *rw);
WEFT_EXTERN int weft_rwlock_try_write(weft_rwlock *rw);

/* Give up a read hold / the write hold; waiters that can now proceed are
 * granted in FIFO order and woken. 0, or -EPERM when no such hold exists.
 * Never wait; any thread. */
WEFT_EXTERN int weft_rwlock_read_unlock(weft_rwlock *rw);
WEFT_EXTERN int weft_rwlock_write_unlock(weft_rwlock *rw);

/* Turn the write hold into a read hold without letting a writer in between;
 * the readers queued at the head are admitted with it. 0, or -EPERM when the
 * lock is not write-held. */
WEFT_EXTERN int weft_rwlock_downgrade(weft_rwlock *rw);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_RWLOCK_H */
