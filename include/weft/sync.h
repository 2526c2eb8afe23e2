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
 * Cancellation (DESIGN.md, "Sync primitives"). Any await below can be withdrawn
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
    weft_wait_list weft_waiters;
} weft_notify;

#define WEFT_NOTIFY_INIT { 0, 0, 0, { NULL, NULL } }

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

#endif /* WEFT_SYNC_H */
