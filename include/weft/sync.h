/*
 * weft/sync.h - synchronisation between tasks and plain threads: the oneshot
 * channel, the bounded and unbounded mpsc channels, notify, and (sections
 * further down, with their own shared rules) the mutex, rwlock, semaphore,
 * broadcast and watch channels, barrier and wait group.
 *
 * Conventions shared by every primitive in this header:
 *
 *  - Values are uint64_t. A pointer travels as weft_value_from_ptr(p) and comes
 *    back with weft_value_to_ptr(v). A value is plain data: a channel that is
 *    dropped with values still queued reports how many it discarded, it does
 *    not free what they point to.
 *  - Handles (weft_oneshot_tx/rx, weft_mpsc_tx/rx, ...) are small caller-owned
 *    structs pointing at one shared object, allocated once at creation. Every
 *    handle must be given up with its *_drop function (or, for a oneshot
 *    sender, by sending); the last one frees the shared object. Copies of a
 *    handle are not tracked: use *_clone for another sender. A handle must
 *    not be dropped while an await started through it is in flight (the
 *    leaf and its withdrawal hook still use the channel).
 *  - Leaf structs (weft_mpsc_permit, weft_mpsc_send_op, weft_notify_waiter)
 *    live in the waiting task's frame and contain its waiter node, so waiting
 *    never allocates. They must start zeroed ({0}, designated initialisers, or
 *    the *_INIT macros) and are back in that idle state whenever no operation
 *    is in flight on them. Never copy or reuse one while an operation is in
 *    flight on it.
 *  - Waiters are served in FIFO order. Each shared object has one internal lock
 *    (a futex mutex that spins briefly before sleeping); waiter nodes are
 *    linked and unlinked only under it, and no waker is woken while it is held.
 *  - Only the functions returning weft_poll suspend a task; they are the
 *    cancellation points and each states its contract. The *_blocking calls
 *    block a plain thread (never a worker). Everything else (send, try_*,
 *    close, drop, notify) never waits and is callable from any thread.
 *  - Errors: -EINVAL for misuse (NULL, an empty handle, a leaf in the wrong
 *    state), -EPIPE when the other side has gone or closed, -EAGAIN when a try_
 *    call would have to wait, -ENOMEM, -EBUSY when a second receive would wait
 *    on the same receiver, -EDEADLK for a *_blocking call made on a worker
 *    thread. An await also yields -ECANCELED when its task is cancelled.
 *
 * Cancellation (docs/cancellation.md, "Sync primitives"). Any await below can be withdrawn
 * (abort, token, timeout, select loss, runtime shutdown). The common rule:
 *
 *  - A wait that is still queued when it is withdrawn leaves nothing behind: it
 *    is unlinked, nothing was consumed, the next waiter loses no wake-up, and
 *    the await yields -ECANCELED.
 *  - A wait whose outcome was already decided (a message is there, a permit or
 *    a delivery was handed to it, the channel closed) reports that outcome: its
 *    withdrawal hook answers WEFT_WITHDRAW_RACED and the await yields the real
 *    result, so nothing handed over is lost. Receives never hold a value in
 *    the leaf (it is taken only by the poll that returns it), so a task torn
 *    down instead of resumed leaves the message in the channel.
 *  - Two deliberate exceptions, written at the functions concerned: a notify
 *    wait chosen by weft_notify_one passes the notification on, and a permit
 *    granted to a task that is being torn down goes to the next waiter.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/task.h"

#ifdef __cplusplus
extern "C" {
#endif

static inline uint64_t weft_value_from_ptr(const void *p) { return (uint64_t)(uintptr_t)p; }
static inline void *weft_value_to_ptr(uint64_t v) { return (void *)(uintptr_t)v; }

/* ---- Waiter nodes (embedded in leaf structs; all fields private) ---------- */

typedef struct weft_wait_node {
    /* private: linked under the owning primitive's lock */
    struct weft_wait_node *weft_prev;
    struct weft_wait_node *weft_next;
    weft_waker weft_wake;
    uint32_t weft_state;        /* per-primitive; 0 = idle */
    uint32_t weft_reserved;
} weft_wait_node;

typedef struct weft_wait_list {
    /* private */
    weft_wait_node *weft_head;
    weft_wait_node *weft_tail;
} weft_wait_list;

/* ---- oneshot: one value from one sender to one receiver -------------------- */

struct weft__oneshot;

typedef struct weft_oneshot_tx {
    struct weft__oneshot *weft_chan;    /* private; NULL = empty handle */
} weft_oneshot_tx;

typedef struct weft_oneshot_rx {
    struct weft__oneshot *weft_chan;    /* private; NULL = empty handle */
} weft_oneshot_rx;

/* Create a oneshot channel (one allocation). -EINVAL, -ENOMEM. */
WEFT_EXTERN int weft_oneshot_new(weft_oneshot_tx *tx, weft_oneshot_rx *rx);

/*
 * Send `value` and give up the sender (the handle is empty afterwards, whatever
 * the result). Never waits; callable from any thread. Returns 0 once the value
 * is stored for the receiver, -EPIPE when the receiver has closed or gone (the
 * value was not delivered and is still the caller's), -EINVAL for an empty
 * handle.
 */
WEFT_EXTERN int weft_oneshot_send(weft_oneshot_tx *tx, uint64_t value);

/* Give up the sender without sending: the receiver wakes with -EPIPE. */
WEFT_EXTERN int weft_oneshot_tx_drop(weft_oneshot_tx *tx);

/* True when the receiver has closed or gone, so a send would fail (or for an
 * empty handle). A hint for long computations: the answer can change at once. */
WEFT_EXTERN bool weft_oneshot_tx_is_closed(const weft_oneshot_tx *tx);

/*
 * Await the value: yields 0 and stores it in *out, or -EPIPE when the sender
 * went away without sending (or the value was already received, or the
 * receiver was closed before a value came).
 * Cancellation: withdrawn before a value or the sender's drop arrived, nothing
 * is consumed and a value sent later stays receivable (try_recv, a new recv).
 * Withdrawn after one arrived (woken, not yet run), the await reports it
 * (RACED): the value is returned, never lost.
 */
WEFT_EXTERN weft_poll weft_oneshot_recv(weft_cx *cx, weft_oneshot_rx *rx, uint64_t *out);

/* 0 and *out = value; -EAGAIN while nothing was sent; -EPIPE as for recv. */
WEFT_EXTERN int weft_oneshot_try_recv(weft_oneshot_rx *rx, uint64_t *out);

/* recv for a plain thread: blocks until a value or the sender's drop. */
WEFT_EXTERN int weft_oneshot_recv_blocking(weft_oneshot_rx *rx, uint64_t *out);

/* Refuse further sends (they fail with -EPIPE and keep their value); a value
 * sent before stays receivable. The handle stays valid. */
WEFT_EXTERN int weft_oneshot_rx_close(weft_oneshot_rx *rx);

/* Close and give up the receiver. Returns 1 when a value sent but never
 * received was discarded, else 0; -EINVAL for an empty handle. */
WEFT_EXTERN int weft_oneshot_rx_drop(weft_oneshot_rx *rx);

/* ---- mpsc: many senders, one receiver -------------------------------------- */

struct weft__chan;

typedef struct weft_mpsc_tx {
    struct weft__chan *weft_chan;       /* private; NULL = empty handle */
} weft_mpsc_tx;

typedef struct weft_mpsc_unbounded_tx {
    struct weft__chan *weft_chan;       /* private; NULL = empty handle */
} weft_mpsc_unbounded_tx;

/* The receiver of either kind of mpsc channel. */
typedef struct weft_mpsc_rx {
    struct weft__chan *weft_chan;       /* private; NULL = empty handle */
} weft_mpsc_rx;

/*
 * The leaf of a reserve or a send on a bounded channel; a reserve leaves its
 * permit in it. weft_mpsc_permit and weft_mpsc_send_op are the same struct,
 * named for the two uses.
 */
struct weft_mpsc_waiter {
    /* private */
    weft_wait_node weft_node;           /* in the channel's sender queue */
    struct weft__chan *weft_chan;       /* set while in flight or held */
    uint64_t weft_value;                /* send: the value to hand over */
    uint32_t weft_is_send;
    uint32_t weft_reserved;
};
typedef struct weft_mpsc_waiter weft_mpsc_permit;
typedef struct weft_mpsc_waiter weft_mpsc_send_op;

#define WEFT_MPSC_PERMIT_INIT { { NULL, NULL, { 0 }, 0, 0 }, NULL, 0, 0, 0 }
#define WEFT_MPSC_SEND_OP_INIT WEFT_MPSC_PERMIT_INIT

/*
 * Create a bounded channel holding at most `capacity` values (>= 1). The
 * buffer is allocated here, once. -EINVAL, -ENOMEM.
 *
 * Capacity is counted in permits: a queued value or a held permit uses one;
 * the receiver taking a value frees one, which goes to the first waiting
 * sender (FIFO) before anyone else can take it.
 */
WEFT_EXTERN int weft_mpsc_new(weft_mpsc_tx *tx, weft_mpsc_rx *rx, size_t capacity);

/* A second sender for the same channel. -EINVAL for an empty src. */
WEFT_EXTERN int weft_mpsc_tx_clone(weft_mpsc_tx *dst, const weft_mpsc_tx *src);

/* Give up a sender. When the last sender (and the last held permit) is gone
 * the receiver drains what is queued, then recv yields -EPIPE. */
WEFT_EXTERN int weft_mpsc_tx_drop(weft_mpsc_tx *tx);

/* True when the receiver has closed or gone (sends fail), or for an empty handle. */
WEFT_EXTERN bool weft_mpsc_tx_is_closed(const weft_mpsc_tx *tx);

/*
 * Await a permit: one slot of capacity promised to the caller. Yields 0 with
 * the permit held in *permit, or -EPIPE when the receiver has closed or gone.
 * A held permit must be consumed by weft_mpsc_permit_send or
 * weft_mpsc_permit_release; it keeps the channel open (as a sender would)
 * until then.
 * Cancellation: withdrawn while queued, it keeps no permit and gives up its
 * place; the permit that would have been its goes to the next waiter. Withdrawn
 * after a permit was granted but before the task ran again, the await reports
 * it (RACED): it yields 0 and the permit is held. If instead the task is being
 * torn down (cancel-safe task, runtime shutdown), the granted permit is passed
 * to the next waiter. A task that can be torn down while *holding* a permit
 * should release it in its drop hook (releasing an idle permit is harmless).
 */
WEFT_EXTERN weft_poll weft_mpsc_reserve(weft_cx *cx, weft_mpsc_tx *tx, weft_mpsc_permit *permit);

/* Take a permit if one is free now: 0, -EAGAIN (full, or senders queued
 * ahead), -EPIPE. Any thread. */
WEFT_EXTERN int weft_mpsc_try_reserve(weft_mpsc_tx *tx, weft_mpsc_permit *permit);

/*
 * Send with a held permit and consume it. Never waits and cannot fail for lack
 * of space. Returns 0, or -EPIPE when the receiver closed after the permit was
 * granted (the value was not delivered and is still the caller's; the permit
 * is consumed either way). -EINVAL when no permit is held.
 */
WEFT_EXTERN int weft_mpsc_permit_send(weft_mpsc_permit *permit, uint64_t value);

/* Give a held permit back (to the first waiting sender, if any). -EINVAL when
 * none is held. */
WEFT_EXTERN int weft_mpsc_permit_release(weft_mpsc_permit *permit);

/*
 * Await room and send `value` (read on the first poll only). Yields 0 once the
 * value is queued, or -EPIPE when the receiver has closed or gone (the value
 * was not delivered and is still the caller's).
 * Cancellation: withdrawn while waiting for room, the value was not sent and
 * the place in line is given up (no permit kept). A waiting send is completed
 * by the receiver itself when room appears (the value is placed in the channel
 * and the task woken), so one withdrawn after that reports it (RACED): it
 * yields 0, the value was delivered exactly once.
 */
WEFT_EXTERN weft_poll weft_mpsc_send(weft_cx *cx, weft_mpsc_tx *tx, weft_mpsc_send_op *op,
                                     uint64_t value);

/* Send if there is room now: 0, -EAGAIN (full, or senders queued ahead),
 * -EPIPE (receiver closed or gone; value still the caller's). Any thread. */
WEFT_EXTERN int weft_mpsc_try_send(weft_mpsc_tx *tx, uint64_t value);

/* Send from a plain thread, blocking while the channel is full: 0, -EPIPE,
 * -EDEADLK on a worker thread. Queues in FIFO order with the tasks. */
WEFT_EXTERN int weft_mpsc_send_blocking(weft_mpsc_tx *tx, uint64_t value);

/* Create an unbounded channel: sends never wait; the buffer starts small and
 * doubles when full (the only allocation after creation; it may fail with
 * -ENOMEM). It keeps its peak size until the channel is freed. */
WEFT_EXTERN int weft_mpsc_unbounded_new(weft_mpsc_unbounded_tx *tx, weft_mpsc_rx *rx);
WEFT_EXTERN int weft_mpsc_unbounded_tx_clone(weft_mpsc_unbounded_tx *dst,
                                             const weft_mpsc_unbounded_tx *src);
WEFT_EXTERN int weft_mpsc_unbounded_tx_drop(weft_mpsc_unbounded_tx *tx);

/* 0, -EPIPE (receiver closed or gone; value still the caller's), -ENOMEM
 * (growing the buffer failed; nothing was sent). Any thread. */
WEFT_EXTERN int weft_mpsc_unbounded_send(weft_mpsc_unbounded_tx *tx, uint64_t value);

/*
 * Await the next value (either kind of channel): yields 0 and stores it in
 * *out, or -EPIPE once the channel is drained and every sender is gone or the
 * receiver was closed. Only one receive may wait at a time (-EBUSY otherwise).
 * Cancellation: a withdrawn recv takes no message. Withdrawn before a message
 * arrived, it yields -ECANCELED and the next message stays queued. Withdrawn
 * after a sender woke it, the await reports what woke it (RACED): the message
 * is returned, never lost.
 */
WEFT_EXTERN weft_poll weft_mpsc_recv(weft_cx *cx, weft_mpsc_rx *rx, uint64_t *out);

/* 0 and *out; -EAGAIN when empty with senders alive; -EPIPE when drained and
 * closed. Any thread. */
WEFT_EXTERN int weft_mpsc_try_recv(weft_mpsc_rx *rx, uint64_t *out);

/* recv for a plain thread: blocks until a value or the end. -EDEADLK on a worker. */
WEFT_EXTERN int weft_mpsc_recv_blocking(weft_mpsc_rx *rx, uint64_t *out);

/* Refuse further sends: queued values stay receivable, waiting senders wake
 * with -EPIPE (keeping their values), new sends fail. The handle stays valid. */
WEFT_EXTERN int weft_mpsc_rx_close(weft_mpsc_rx *rx);

/* Close and give up the receiver. Returns how many queued values were
 * discarded (>= 0), or -EINVAL for an empty handle. */
WEFT_EXTERN int64_t weft_mpsc_rx_drop(weft_mpsc_rx *rx);

/* ---- notify: wake one waiter or all of them -------------------------------- */

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

/* ---- mutex: one holder at a time, FIFO handoff ------------------------------ */

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

/* ---- rwlock: many readers or one writer, FIFO ------------------------------- */

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

/* ---- semaphore: counted permits, FIFO, acquire-many, close ------------------ */

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

/* ==== Broadcast and watch: one value seen by many receivers ==================
 *
 * Both share the handle rules of the channels above (the shared object is
 * allocated once, at creation; the last handle dropped frees it). A receiver
 * handle also carries the receiver's own position and its waiter node, so it
 * is the leaf of its waits: at most one wait per receiver at a time (-EBUSY
 * otherwise), and the handle must not be moved, copied or dropped while one
 * is in flight. Senders never wait and may run on any thread.
 *
 * Cancellation: a wait on a receiver takes nothing out of the channel (the
 * value is read by the poll that returns it, from the shared object), so a
 * withdrawn wait loses nothing: withdrawn before a value came it yields
 * -ECANCELED and the next value is still there for the next wait (a
 * broadcast value overwritten meanwhile is reported as missed, as for any
 * slow receiver); withdrawn after a send woke it, it reports the value
 * (RACED); a task torn down instead leaves it unconsumed in the channel.
 */

/* ---- broadcast: every receiver sees every value (bounded ring) -------------- */

struct weft__bcast;

typedef struct weft_broadcast_tx {
    struct weft__bcast *weft_chan;      /* private; NULL = empty handle */
} weft_broadcast_tx;

typedef struct weft_broadcast_rx {
    /* private */
    struct weft__bcast *weft_chan;      /* NULL = empty handle */
    uint64_t weft_next;                 /* position of the next value to receive */
    weft_wait_node weft_node;           /* linked while a recv waits */
} weft_broadcast_rx;

/*
 * Create a channel keeping the last `capacity` values (>= 1), with one
 * sender and one receiver. -EINVAL, -ENOMEM.
 *
 * Sends never wait: when the ring is full the oldest value is overwritten.
 * A receiver that fell more than `capacity` values behind has missed some;
 * its next receive says how many (-EOVERFLOW) and moves it to the oldest
 * value still kept.
 */
WEFT_EXTERN int weft_broadcast_new(weft_broadcast_tx *tx, weft_broadcast_rx *rx,
                                   size_t capacity);

/* A second sender for the same channel. -EINVAL for an empty src. */
WEFT_EXTERN int weft_broadcast_tx_clone(weft_broadcast_tx *dst, const weft_broadcast_tx *src);

/* Give up a sender. When the last one is gone, receivers drain what they have
 * not seen yet, then receive -EPIPE. */
WEFT_EXTERN int weft_broadcast_tx_drop(weft_broadcast_tx *tx);

/* A new receiver that sees the values sent from now on. -EINVAL for an empty
 * handle. Any thread. */
WEFT_EXTERN int weft_broadcast_subscribe(const weft_broadcast_tx *tx, weft_broadcast_rx *rx);

/*
 * Send `value` to every receiver alive now. Returns how many there are
 * (>= 1), or -EPIPE when there is none (the value was not stored; a later
 * subscriber would not have seen it anyway). Never waits; any thread.
 */
WEFT_EXTERN int64_t weft_broadcast_send(weft_broadcast_tx *tx, uint64_t value);

/*
 * Await the next value for this receiver: yields 0 and stores it in *out;
 * -EOVERFLOW when values were overwritten before this receiver saw them:
 * *out is then how many it missed, and the next receive returns the oldest
 * value still kept; -EPIPE once every sender is gone and this receiver has
 * seen everything.
 * Cancellation: withdrawn before a value came, nothing is consumed and the
 * value sent next is still this receiver's next; withdrawn after a send woke
 * it, the await reports the value (RACED). A torn-down task consumed
 * nothing. (A receiver that stops receiving only lags; senders never wait
 * for it.)
 */
WEFT_EXTERN weft_poll weft_broadcast_recv(weft_cx *cx, weft_broadcast_rx *rx, uint64_t *out);

/* 0, -EOVERFLOW (with the count in *out), -EPIPE as for recv; -EAGAIN when
 * nothing new has come. Any thread. */
WEFT_EXTERN int weft_broadcast_try_recv(weft_broadcast_rx *rx, uint64_t *out);

/* Give up a receiver (its unseen values are simply not seen). -EINVAL for
 * an empty handle. */
WEFT_EXTERN int weft_broadcast_rx_drop(weft_broadcast_rx *rx);

/* ---- watch: the latest value and its version -------------------------------- */

struct weft__watch;

typedef struct weft_watch_tx {
    struct weft__watch *weft_chan;      /* private; NULL = empty handle */
} weft_watch_tx;

typedef struct weft_watch_rx {
    /* private */
    struct weft__watch *weft_chan;      /* NULL = empty handle */
    uint64_t weft_seen;                 /* version this receiver has seen */
    weft_wait_node weft_node;           /* linked while changed() waits */
} weft_watch_rx;

/*
 * Create a watch holding `initial` as version 0, with one sender and one
 * receiver, which counts version 0 as seen. -EINVAL, -ENOMEM.
 * Each send replaces the value and adds 1 to the version; receivers see only
 * the latest value (intermediate ones may be skipped, by design).
 */
WEFT_EXTERN int weft_watch_new(weft_watch_tx *tx, weft_watch_rx *rx, uint64_t initial);

/* A second sender for the same watch. -EINVAL for an empty src. */
WEFT_EXTERN int weft_watch_tx_clone(weft_watch_tx *dst, const weft_watch_tx *src);

/* Give up a sender. When the last is gone the watch is closed: the last
 * value stays readable, and changed() yields -EPIPE once it was seen. */
WEFT_EXTERN int weft_watch_tx_drop(weft_watch_tx *tx);

/* Store `value` as the latest (version + 1) and wake every changed() wait.
 * The value is stored even with no receiver (a later subscriber reads it).
 * Returns the number of receivers (>= 0). Never waits; any thread. */
WEFT_EXTERN int64_t weft_watch_send(weft_watch_tx *tx, uint64_t value);

/* A new receiver that counts the current version as seen. -EINVAL. */
WEFT_EXTERN int weft_watch_subscribe(const weft_watch_tx *tx, weft_watch_rx *rx);

/* A new receiver that has seen what src has seen. -EINVAL. */
WEFT_EXTERN int weft_watch_rx_clone(weft_watch_rx *dst, const weft_watch_rx *src);

/* Read the latest value and its version (either pointer may be NULL) without
 * marking it seen. Any thread. */
WEFT_EXTERN int weft_watch_read(const weft_watch_rx *rx, uint64_t *value, uint64_t *version);

/* The same, and mark that version seen. */
WEFT_EXTERN int weft_watch_read_update(weft_watch_rx *rx, uint64_t *value, uint64_t *version);

/* 1 when a version this receiver has not seen is there, 0 when not, -EPIPE
 * when not and the watch is closed. */
WEFT_EXTERN int weft_watch_has_changed(const weft_watch_rx *rx);

/*
 * Await a version this receiver has not seen: yields 0, marks the latest
 * version seen and stores its value in *out (out may be NULL). Yields at once
 * if one is already there. -EPIPE when the watch is closed and the latest
 * version was seen.
 * Cancellation: withdrawn before a send, nothing is marked seen, so the next
 * changed() still sees the next send; withdrawn after a send woke it, the
 * await reports it (RACED). A torn-down task marked nothing.
 */
WEFT_EXTERN weft_poll weft_watch_changed(weft_cx *cx, weft_watch_rx *rx, uint64_t *out);

/* Give up a receiver. -EINVAL for an empty handle. */
WEFT_EXTERN int weft_watch_rx_drop(weft_watch_rx *rx);

/* ==== barrier and wait group ================================================ */

/* ---- barrier: n parties meet, the last arrival releases them ---------------- */

typedef struct weft_barrier {
    /* private */
    uint32_t weft_lock;
    uint32_t weft_parties;
    uint32_t weft_arrived;              /* waiting in the current generation */
    uint32_t weft_inflight;             /* waits queued, or released and not settled */
    uint64_t weft_generation;           /* trips so far */
    weft_wait_list weft_waiters;
} weft_barrier;

#define WEFT_BARRIER_INIT(parties) { 0, (parties), 0, 0, 0, { NULL, NULL } }

typedef struct weft_barrier_waiter {
    /* private */
    weft_wait_node weft_node;
    weft_barrier *weft_owner;           /* set while in flight */
    uint64_t weft_generation;           /* the generation it arrived in */
} weft_barrier_waiter;

#define WEFT_BARRIER_WAITER_INIT { { NULL, NULL, { 0 }, 0, 0 }, NULL, 0 }

/* The result of the one wait per generation that is told it leads. */
#define WEFT_BARRIER_LEADER 1

/* Initialise for `parties` (>= 1) arrivals per generation. */
WEFT_EXTERN int weft_barrier_init(weft_barrier *b, uint32_t parties);

/* Check before reusing the memory: -EBUSY while some wait is in flight
 * (arrived, or released but not yet back in its task), else 0. */
WEFT_EXTERN int weft_barrier_destroy(weft_barrier *b);

/*
 * Arrive and await the others. The arrival that makes `parties` trips the
 * barrier: it yields WEFT_BARRIER_LEADER at once (without waiting, so it is
 * the one leader of its generation) and wakes the others, which yield 0. The
 * barrier is then ready for the next generation.
 * Cancellation (tokio's Barrier::wait is not cancel safe: a dropped wait keeps
 * its arrival, so the barrier trips with a party missing). Here a wait
 * withdrawn before the barrier tripped takes its arrival back: the barrier
 * needs one more arrival, as if this one never came, and the await yields
 * -ECANCELED. A wait withdrawn after the barrier tripped (woken, not yet run)
 * did pass it: the await reports that (RACED: yields 0); a torn-down task has
 * nothing to undo. The leader never waits, so it cannot be withdrawn.
 */
WEFT_EXTERN weft_poll weft_barrier_wait(weft_cx *cx, weft_barrier *b, weft_barrier_waiter *w);

/* ---- wait group: await a count of outstanding work reaching zero ------------ */

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

#endif /* WEFT_SYNC_H */
