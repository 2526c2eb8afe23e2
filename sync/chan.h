/*
 * sync/chan.h - the shared object behind both kinds of mpsc channel: a ring
 * buffer of uint64_t values, the receiver's waker, the queue of senders waiting
 * for room (bounded only), and the counts that decide when it ends and when it
 * is freed.
 *
 * An unbounded channel guards every field with `lock` (sync/lock.h). A
 * bounded one keeps what its fast paths need in one atomic word, `st`
 * (below), so that a send that finds a free permit and a receive that finds
 * a value (or waits for one) take no lock; the lock guards the rest (the
 * queue of senders, `senders`, `rx_closed`, `rx_alive`) and is taken by the
 * slow paths, which change `st` with atomic operations too.
 *
 * Invariants (bounded; `len` is the values claimed by senders and not yet
 * taken, TAIL - head; `granted` counts permits handed to waiters or held):
 *   1. len + permits + granted == cap.
 *   2. While open, send_waiters is non-empty only while permits == 0: a freed
 *      slot goes to the first waiter before it can become a free permit, so
 *      nobody (try_send included) overtakes a queued sender.
 *   3. senders counts sender handles plus permits granted or held (a permit
 *      keeps the channel open as a sender would); the receiver sees the end
 *      (-EPIPE) when senders == 0 and len == 0, or when rx_closed and len == 0.
 *   4. Once rx_closed is set no sender queues, no position is claimed and
 *      no slot is handed to a waiter (a sender that claimed before may still
 *      fill its slot: the drop counts it as discarded); the receiver's close
 *      wakes the queued ones with CLOSED.
 *   5. The object is freed by whoever makes senders == 0 with rx_alive false
 *      (after unlocking, through weft__chan_unlock).
 *   6. rx_waker is set only while the receiver waits with len == 0 and the
 *      channel open; the first sender to add a value (or the last to leave)
 *      takes it and wakes it. The receiver's own close takes its waker back
 *      (bounded: weft__ring_rx_drop_locked).
 * Unbounded channels keep invariants 3-6; their buffer grows instead of
 * making senders wait.
 *
 * The bounded state word `st`:
 *   TAIL     (bits 0-29) positions claimed so far, mod 2^30; a sender claims
 *            position TAIL, then writes slot TAIL & mask and sets its `ready`
 *            (release); the receiver alone keeps `head` and takes a slot
 *            once it is ready, clearing `ready` before it frees the permit.
 *   PERMITS  (bits 30-59) free permits; a claim by a plain send takes one in
 *            the same CAS that advances TAIL.
 *   RXW      the receiver's waker is in rx_waker and it waits (rule 6).
 *   QUEUED   send_waiters is non-empty; set and cleared under the lock only,
 *            set by a CAS that requires PERMITS == 0 (so a permit freed
 *            without the lock cannot slip past a sender about to queue: rule
 *            2). A freed slot with QUEUED set is handed on under the lock.
 *   CLOSED   rx_closed, for the lock-free senders.
 *   ENDED    senders reached 0 (terminal; set under the lock).
 * Rules for rx_waker on a bounded channel (as for the oneshot's waker):
 *   R1. Whoever clears RXW owns the field: it reads the waker, stores 0, and
 *       wakes or drops it. Senders clear it in the CAS that claims a position
 *       (or sets ENDED) and wake only after the slot is ready.
 *   R2. With RXW clear, the receiver writes the field only when it reads 0
 *       (an owner may still be emptying it), and sets RXW after writing it,
 *       by a CAS that requires len == 0 and neither CLOSED nor ENDED.
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

/* The bounded state word (above). */
#define WEFT__ST_TAIL_MASK   (((uint64_t)1 << 30) - 1)
#define WEFT__ST_PERMIT      ((uint64_t)1 << 30)
#define WEFT__ST_PERMITS(s)  (((s) >> 30) & WEFT__ST_TAIL_MASK)
#define WEFT__ST_RXW         ((uint64_t)1 << 60)
#define WEFT__ST_QUEUED      ((uint64_t)1 << 61)
#define WEFT__ST_CLOSED      ((uint64_t)1 << 62)
#define WEFT__ST_ENDED       ((uint64_t)1 << 63)
#define WEFT__CHAN_MAX_CAP   WEFT__ST_TAIL_MASK    /* permits and len fit 30 bits */

/* A bounded slot: the value and whether it is ready to be taken. */
typedef struct weft__chan_slot {
    uint64_t value;
    _Atomic uint32_t ready;
} weft__chan_slot;

struct weft__chan {
    _Atomic uint64_t st;        /* bounded only */
    uint32_t lock;
    bool bounded;
    bool rx_closed;
    bool rx_alive;
    size_t senders;
    weft_wait_list send_waiters;
    weft_waker rx_waker;
    size_t head, len, cap;      /* bounded: head is the receiver's; len unused */
    uint64_t *buf;              /* unbounded only */
    weft__chan_slot *slots;     /* bounded: mask + 1 of them, inline after the struct */
    size_t mask;
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

/* Bounded, any thread, lock held or not: write value into the position
 * claimed by the CAS that turned `before` into the next state (TAIL + 1, RXW
 * cleared); returns the receiver's waker if that CAS took it (R1), to be woken
 * by the caller once it may (after unlocking, if it holds the lock). */
weft_waker weft__chan_put(weft__chan *c, uint64_t before, uint64_t value);

/* Bounded: a claim's next state from `before`, taking a free permit or not. */
static inline uint64_t weft__chan_claim(uint64_t before, bool take_permit)
{
    uint64_t tail = ((before & WEFT__ST_TAIL_MASK) + 1) & WEFT__ST_TAIL_MASK;
    uint64_t next = (before & ~WEFT__ST_TAIL_MASK & ~WEFT__ST_RXW) | tail;
    return take_permit ? next - WEFT__ST_PERMIT : next;
}

/* Bounded: take the receiver's waker out of rx_waker (R1: the caller has
 * just cleared RXW). */
weft_waker weft__chan_take_rx_waker(weft__chan *c);

/* A slot (bounded) became free: hand it to the first waiting sender (a
 * reserve gets the permit, a send gets its value placed), or make it a free
 * permit. */
void weft__chan_give_permit_locked(weft__chan *c, weft__chan_after *a);

/* One sender (handle or permit) is gone; the last wakes the receiver. */
void weft__chan_drop_sender_locked(weft__chan *c, weft__chan_after *a);

/* Bounded: set QUEUED if no permit is free (lock held); false if one is. */
bool weft__chan_mark_queued_locked(weft__chan *c);

/* Bounded: send_waiters may have become empty: clear QUEUED if so. */
void weft__chan_unmark_queued_locked(weft__chan *c);

/* Bounded receive side (mpsc_rx.c), behind the public receive calls. */
weft_poll weft__ring_recv(weft_cx *cx, weft_mpsc_rx *rx, uint64_t *out);
int weft__ring_try_recv(weft__chan *c, uint64_t *out);
int weft__ring_recv_blocking(weft__chan *c, uint64_t *out);
int64_t weft__ring_rx_drop_locked(weft__chan *c, weft__chan_after *a);

/* For white-box tests: the naps threads have begun so far, process-wide,
 * while waiting for a sender to fill a claimed slot or empty the waker
 * field (mpsc_rx.c). A test holds a slot unfilled until this moves, so it
 * knows the wait went past its yields. */
uint64_t weft__ring_naps(void);

/* Sender handles shared by both kinds. */
int weft__chan_tx_clone(weft__chan **dst, weft__chan *src);
int weft__chan_tx_drop(weft__chan **slot);
bool weft__chan_tx_is_closed(weft__chan *c);

#endif /* WEFT_SYNC_CHAN_H */
