/*
 * weft/sync/watch.h - the latest value and its version (receiver rules: weft/sync/broadcast.h).
 * Part of weft/sync.h: the conventions and the cancellation rule every
 * primitive shares are in weft/sync/common.h.
 */
#ifndef WEFT_SYNC_WATCH_H
#define WEFT_SYNC_WATCH_H

#include "weft/sync/common.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_WATCH_H */
