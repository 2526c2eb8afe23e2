/*
 * reactor/ring.c - per-worker ring setup, park and unpark (protocol in ring.h).
 *
 * The eventfd READ carries the WAKE user_data tag (reactor/op.h); the reaper
 * clears eventfd_armed when it completes and the next park re-arms it, so at
 * most one is ever in flight.
 */
#include "reactor/ring.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "reactor/op.h"

#define CQ_PER_SQ 16

static const unsigned setup_attempts[] = {
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    0,
};

static int ring_setup(weft__ring *r, unsigned entries)
{
    int rc = -EINVAL;
    for (size_t i = 0; i < sizeof setup_attempts / sizeof *setup_attempts; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof p);
        /* A CQ well above the SQ: ops in flight (a recv per connection) are
         * not bounded by the SQ, and an overflowing CQ is the slow path. */
        p.flags = setup_attempts[i] | IORING_SETUP_CQSIZE;
        p.cq_entries = entries * CQ_PER_SQ;
        rc = io_uring_queue_init_params(entries, &r->uring, &p);
        if (rc == 0) {
            r->setup_flags = setup_attempts[i];
            if (i > 0) {
                static _Atomic bool told;
                if (!atomic_exchange(&told, true))
                    fprintf(stderr, "weft: io_uring rejected DEFER_TASKRUN/SINGLE_ISSUER; "
                                    "using setup flags 0x%x\n", p.flags);
            }
            return 0;
        }
        if (rc != -EINVAL)
            break;
    }
    return rc;
}

int weft__ring_init(weft__ring *r, unsigned entries)
{
    memset(r, 0, sizeof *r);
    atomic_init(&r->awake, 1);
    r->eventfd = eventfd(0, EFD_CLOEXEC);
    if (r->eventfd < 0)
        return -errno;
    int rc = ring_setup(r, entries);
    if (rc < 0) {
        weft__ring_close_wakeup(r);
        return rc;
    }
    r->initialised = true;
    return 0;
}

void weft__ring_destroy(weft__ring *r)
{
    if (!r->initialised)
        return;
    io_uring_queue_exit(&r->uring);
    r->initialised = false;
}

void weft__ring_close_wakeup(weft__ring *r)
{
    if (r->eventfd >= 0)
        close(r->eventfd);
    r->eventfd = -1;
}

static void arm_wake_read(weft__ring *r)
{
    if (r->eventfd_armed)
        return;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
    if (!sqe) {
        /* The SQ is full: submitting frees room; the next park arms it. */
        io_uring_submit(&r->uring);
        sqe = io_uring_get_sqe(&r->uring);
        if (!sqe)
            return;
    }
    io_uring_prep_read(sqe, r->eventfd, &r->eventfd_buf, sizeof r->eventfd_buf, 0);
    io_uring_sqe_set_data64(sqe, weft__ud_make(WEFT__UD_WAKE, 0, 0));
    r->eventfd_armed = true;
}

void weft__ring_park(weft__ring *r, int64_t timeout_ns, bool (*should_sleep)(void *), void *arg)
{
    arm_wake_read(r);
    /* Seq_cst: the store must be visible before should_sleep() reads its
     * condition, pairing with the unparker's (condition, xchg) order. */
    atomic_store_explicit(&r->awake, 0, memory_order_seq_cst);
    if (!should_sleep(arg)) {
        atomic_store_explicit(&r->awake, 1, memory_order_relaxed);
        return;
    }
    /* Errors (EINTR, EBUSY with a full CQ) just end the wait: the caller
     * reaps and decides again. */
    struct io_uring_cqe *cqe;
    if (timeout_ns < 0) {
        io_uring_submit_and_wait(&r->uring, 1);
    } else {
        struct __kernel_timespec ts = {
            .tv_sec = timeout_ns / 1000000000,
            .tv_nsec = timeout_ns % 1000000000,
        };
        io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1, &ts, NULL);
    }
    atomic_store_explicit(&r->awake, 1, memory_order_relaxed);
}

void weft__ring_unpark(weft__ring *r)
{
    /* Seq_cst exchange: see the protocol in ring.h. */
    if (atomic_exchange_explicit(&r->awake, 1, memory_order_seq_cst) != 0)
        return;
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(r->eventfd, &one, sizeof one);
    } while (n < 0 && errno == EINTR);
}
