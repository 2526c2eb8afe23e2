/*
 * weft/sync/barrier.h - n parties meet, the last arrival releases them.
 * Part of weft/sync.h: the conventions and the cancellation rule every
 * primitive shares are in weft/sync/common.h.
 */
#ifndef WEFT_SYNC_BARRIER_H
#define WEFT_SYNC_BARRIER_H

#include "weft/sync/common.h"

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_BARRIER_H */
