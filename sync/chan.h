/*
 * sync/chan.h - the shared object behind both kinds of mpsc channel: a ring
 * buffer of uint64_t values, the receiver's waker, the queue of senders waiting
 * for room (bounded only), and the counts that decide when it ends and when it
 * is freed. Every field is guarded by `lock` (sync/lock.h).
 *
 * Invariants (bounded; `granted` counts permits handed to waiters or held):
 *   1. len + permits + granted == cap.
 *   2. While open, send_waiters is non-empty only while permits == 0: a freed
 *      slot goes to the first waiter before it can become a free permit, so
 *      nobody (try_send included) overtakes a queued sender.
 *   3. senders counts sender handles plus permits granted or held (a permit
 *      keeps the channel open as a sender would); the receiver sees the end
 *      (-EPIPE) when senders == 0 and len == 0, or when rx_closed and len == 0.
 *   4. Once rx_closed is set no sender queues, no value is added and no slot
 *      is handed to a waiter; the receiver's close wakes the queued ones with
 *      CLOSED.
 *   5. The object is freed by whoever makes senders == 0 with rx_alive false
 *      (after unlocking, through weft__chan_unlock).
 *   6. rx_waker is set only while the receiver waits with len == 0 and the
 *      channel open; the first sender to add a value (or the last to leave, or
 *      close) takes it and wakes it.
 * Unbounded channels keep invariants 3-6; their buffer grows instead of
 * making senders wait.
 */
#ifndef WEFT_SYNC_CHAN_H
#define WEFT_SYNC_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sync/waitq.h"
#include "weft/sync.h"

/* States of a weft_mpsc_waiter's node (beyond IDLE and QUEUED). */
enum {
    WEFT__MPSC_GRANTED = 2,     /* a permit was handed over while it waited */
    WEFT__MPSC_SENT = 3,        /* its value was placed in the buffer for it */
    WEFT__MPSC_CLOSED = 4,      /* woken by the receiver closing: -EPIPE */
    WEFT__MPSC_HELD = 5,        /* reserve returned: the caller holds a permit */
};

struct weft__chan {
    uint32_t lock;
    bool bounded;
    bool rx_closed;
    bool rx_alive;
    size_t senders;
    size_t permits;
    weft_wait_list send_waiters;
    weft_waker rx_waker;
    size_t head, len, cap;
    uint64_t *buf;              /* bounded: inline after the struct */
    size_t alloc_size;          /* bytes of this allocation */
};
typedef struct weft__chan weft__chan;

/* What to do once the lock is released: the deferred wakes and drops, and
 * whether the channel is to be freed. Run by weft__chan_unlock. */
typedef struct weft__chan_after {
    weft__deferred d;
    bool free_chan;
} weft__chan_after;

#define WEFT__CHAN_AFTER_INIT { WEFT__DEFERRED_INIT, false }

weft__chan *weft__chan_new(bool bounded, size_t cap, int *err);
void weft__chan_unlock(weft__chan *c, weft__chan_after *a);

/* The rest expect the lock held. */

/* Append a value (room is guaranteed by the caller); the receiver's waker,
 * if it waits, is taken to be woken. */
void weft__chan_push_locked(weft__chan *c, uint64_t value, weft__chan_after *a);

/* A slot (bounded) became free: hand it to the first waiting sender (a
 * reserve gets the permit, a send gets its value placed), or make it a free
 * permit. */
void weft__chan_give_permit_locked(weft__chan *c, weft__chan_after *a);

/* One sender (handle or permit) is gone; the last wakes the receiver. */
void weft__chan_drop_sender_locked(weft__chan *c, weft__chan_after *a);

/* Sender handles shared by both kinds. */
int weft__chan_tx_clone(weft__chan **dst, weft__chan *src);
int weft__chan_tx_drop(weft__chan **slot);
bool weft__chan_tx_is_closed(weft__chan *c);

#endif /* WEFT_SYNC_CHAN_H */
