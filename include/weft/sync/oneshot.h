/*
 * weft/sync/oneshot.h - one value from one sender to one receiver.
 * Part of weft/sync.h: the conventions and the cancellation rule every
 * primitive shares are in weft/sync/common.h.
 */
#ifndef WEFT_SYNC_ONESHOT_H
#define WEFT_SYNC_ONESHOT_H

#include "weft/sync/common.h"

#ifdef __cplusplus
extern "C" {
#endif

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
 * receiver was closed before a value came), -EBUSY when another receive
 * already waits on this receiver, -EINVAL for an empty handle.
 * Cancellation: withdrawn before a value or the sender's drop arrived, nothing
 * is consumed and a value sent later stays receivable (try_recv, a new recv).
 * Withdrawn after one arrived (woken, not yet run), the await reports it
 * (RACED): the value is returned, never lost.
 */
WEFT_EXTERN weft_poll weft_oneshot_recv(weft_cx *cx, weft_oneshot_rx *rx, uint64_t *out);

/* 0 and *out = value; -EAGAIN while nothing was sent; -EPIPE as for recv. */
WEFT_EXTERN int weft_oneshot_try_recv(weft_oneshot_rx *rx, uint64_t *out);

/* recv for a plain thread: blocks until a value or the sender's drop.
 * -EDEADLK on a worker thread, -EBUSY when another receive already waits. */
WEFT_EXTERN int weft_oneshot_recv_blocking(weft_oneshot_rx *rx, uint64_t *out);

/* Refuse further sends (they fail with -EPIPE and keep their value); a value
 * sent before stays receivable. The handle stays valid. */
WEFT_EXTERN int weft_oneshot_rx_close(weft_oneshot_rx *rx);

/* Close and give up the receiver. Returns 1 when a value sent but never
 * received was discarded, else 0; -EINVAL for an empty handle. */
WEFT_EXTERN int weft_oneshot_rx_drop(weft_oneshot_rx *rx);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_ONESHOT_H */
