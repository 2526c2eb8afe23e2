/*
 * reactor/ring.h - a worker's io_uring: where the worker sleeps, and where its
 * operations are submitted and completed (reactor/op.h, submit.c).
 *
 * The ring is created on its worker thread with SINGLE_ISSUER | DEFER_TASKRUN |
 * TASKRUN_FLAG where the kernel accepts them, so only that thread ever submits
 * or reaps. Other threads wake a sleeping worker through an eventfd whose READ
 * is kept armed in the ring; an `awake` flag lets them skip the write() when the
 * worker is not asleep.
 *
 * Park protocol (no lost wake-ups):
 *   worker:   awake = 0 (seq_cst); if (!should_sleep()) return; wait in the ring
 *   unparker: (make should_sleep() false, seq_cst); if (xchg(awake, 1) == 0)
 *             write(eventfd)
 * Either the worker sees should_sleep() turn false, or the unparker sees
 * awake == 0 and writes the eventfd, which completes the armed READ.
 */
#ifndef WEFT_REACTOR_RING_H
#define WEFT_REACTOR_RING_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct weft__ring {
    struct io_uring uring;
    unsigned setup_flags;
    int eventfd;
    bool eventfd_armed;
    bool initialised;
    uint64_t eventfd_buf;
    _Alignas(64) _Atomic int awake;
} weft__ring;

/* On the owning thread. Returns 0 or a negative errno. */
int weft__ring_init(weft__ring *r, unsigned entries);
/* On the owning thread: closes the ring. The eventfd stays open, because other
 * threads may still be unparking; the runtime closes it after every worker has
 * been joined, with weft__ring_close_wakeup. */
void weft__ring_destroy(weft__ring *r);
void weft__ring_close_wakeup(weft__ring *r);

/* Sleep until unparked, a completion arrives, or timeout_ns passes (< 0: no
 * timeout), submitting whatever is in the SQ on the way in. should_sleep is
 * rechecked after the sleep is published. The caller reaps afterwards
 * (reactor/op.h, weft__reap). */
void weft__ring_park(weft__ring *r, int64_t timeout_ns, bool (*should_sleep)(void *), void *arg);

/* Any thread. */
void weft__ring_unpark(weft__ring *r);

#endif /* WEFT_REACTOR_RING_H */
