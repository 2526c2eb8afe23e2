/*
 * weft/sync/broadcast.h - every receiver sees every value (bounded ring); the rules broadcast and watch share.
 * Part of weft/sync.h: the conventions and the cancellation rule every
 * primitive shares are in weft/sync/common.h.
 */
#ifndef WEFT_SYNC_BROADCAST_H
#define WEFT_SYNC_BROADCAST_H

#include "weft/sync/common.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_BROADCAST_H */
