/*
 * weft/sync/mpsc.h - many senders, one receiver: bounded (reserve, permit, send) and unbounded.
 * Part of weft/sync.h: the conventions and the cancellation rule every
 * primitive shares are in weft/sync/common.h.
 */
#ifndef WEFT_SYNC_MPSC_H
#define WEFT_SYNC_MPSC_H

#include "weft/sync/common.h"

#ifdef __cplusplus
extern "C" {
#endif

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
 * buffer is allocated here, once. -EINVAL, -ENOMEM (also for a capacity
 * above 2^30 - 1).
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
 * closed. Any thread. On a bounded channel, a send that has claimed the next
 * slot and not yet filled it counts as queued: the call waits for it
 * (yielding, then napping if that sender stays stopped), so order holds. */
WEFT_EXTERN int weft_mpsc_try_recv(weft_mpsc_rx *rx, uint64_t *out);

/* recv for a plain thread: blocks until a value or the end. -EDEADLK on a worker. */
WEFT_EXTERN int weft_mpsc_recv_blocking(weft_mpsc_rx *rx, uint64_t *out);

/* Refuse further sends: queued values stay receivable, waiting senders wake
 * with -EPIPE (keeping their values), new sends fail. The handle stays valid. */
WEFT_EXTERN int weft_mpsc_rx_close(weft_mpsc_rx *rx);

/* Close and give up the receiver. Returns how many queued values were
 * discarded (>= 0), or -EINVAL for an empty handle. */
WEFT_EXTERN int64_t weft_mpsc_rx_drop(weft_mpsc_rx *rx);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_MPSC_H */
