/*
 * reactor/submit.c - getting SQEs to the kernel and CQEs back, on the owner.
 *
 * Invariants (docs/io_uring.md lists the io_uring runtime bugs they rule out):
 *   1. No SQE and no cancel is ever dropped. When the SQ is full we enter the
 *      kernel to make room; if there is still none, the record waits on a
 *      userspace overflow queue (cancels on their own queue) that is flushed,
 *      in order, before anything newer goes into the SQ.
 *   2. An SQE in the SQ is never taken back: a failed enter leaves it there,
 *      and it goes out at the next one. Its record stays live until its CQE.
 *   3. -EBUSY / -EAGAIN from enter mean "reap, then retry"; -EINTR "retry".
 *   4. CQEs are copied out and the CQ head advanced before any is dispatched,
 *      so a dispatch that has to enter the kernel cannot see a CQE twice.
 *   5. Entering the kernel for room reaps, so a record may complete (and be
 *      freed) under a caller that holds it: a cancel names its target by the
 *      user_data taken beforehand, and is queued only if that is still live.
 *   6. SQEs are submitted when the worker is about to wait (its park), at a
 *      full driver tick (every 61 scheduler ticks), when the SQ is full, and
 *      at stop - never per busy tick: measured on echo, submitting at every
 *      busy tick took ~2 enters and 25-40 % more CPU per message against
 *      ~0.13 enters now (docs/io_uring.md, "When SQEs go to the kernel").
 */
#include <errno.h>
#include <stdio.h>

#include "reactor/driver.h"
#include "runtime/worker.h"

#define SUBMIT_RETRIES 8
#define REAP_BATCH 64

static inline struct io_uring *uring_of(weft__driver *d) { return &d->ring.uring; }

/* Fault injection (tests): on each worker, every n-th request for an SQE
 * finds the SQ full and still full after the enter that should make room (so
 * the record goes to an overflow queue), and every n-th enter fails before
 * reaching the kernel, with -EBUSY and -EAGAIN in turn. 0 = off. The periods are process-wide,
 * the counts per thread: with n >= 2 the request after a fault succeeds. */
static _Atomic unsigned fault_sq_full_every, fault_busy_every;
static _Thread_local unsigned fault_sq_calls, fault_enter_calls;
/* And on the transfers (recv, send, read, write), counted per thread the same
 * way: every n-th is cut to half its length before it goes out (the kernel
 * then really moves less: a short transfer), every n-th socket transfer
 * fails with -ECONNRESET without reaching the kernel (nothing moved). */
static _Atomic unsigned fault_short_every, fault_reset_every;
static _Thread_local unsigned fault_short_calls, fault_reset_calls;

void weft__io_inject_faults(unsigned sq_full_every, unsigned busy_every)
{
    atomic_store_explicit(&fault_sq_full_every, sq_full_every, memory_order_relaxed);
    atomic_store_explicit(&fault_busy_every, busy_every, memory_order_relaxed);
}

void weft__io_inject_transfer_faults(unsigned short_every, unsigned reset_every)
{
    atomic_store_explicit(&fault_short_every, short_every, memory_order_relaxed);
    atomic_store_explicit(&fault_reset_every, reset_every, memory_order_relaxed);
}

static bool inject(_Atomic unsigned *every, unsigned *calls)
{
    unsigned n = atomic_load_explicit(every, memory_order_relaxed);
    return n && (*calls)++ % n == n - 1;
}

static int submit(weft__driver *d)
{
    if (__builtin_expect(inject(&fault_busy_every, &fault_enter_calls), 0))
        return fault_enter_calls / atomic_load_explicit(&fault_busy_every, memory_order_relaxed) % 2
                   ? -EBUSY : -EAGAIN;
    return io_uring_submit(uring_of(d));
}

/* Deferred task work or overflowed CQEs wait in the kernel until we enter it. */
static bool cq_needs_enter(struct io_uring *ring)
{
    /* A plain read of a flag word the kernel updates; staleness only delays. */
    return IO_URING_READ_ONCE(*ring->sq.kflags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN);
}

static void report_enter_error(int rc)
{
    static _Atomic bool told;
    if (!atomic_exchange(&told, true))
        fprintf(stderr, "weft: io_uring_enter failed: %d; submissions stay queued\n", rc);
}

/* Rule 3. Returns false when the kernel would not take the SQEs now. */
static bool enter_submit(weft__driver *d)
{
    for (int attempt = 0; attempt < SUBMIT_RETRIES; attempt++) {
        int rc = submit(d);
        if (rc >= 0)
            return true;
        if (rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
            report_enter_error(rc);
            return false;
        }
        if (rc != -EINTR)
            weft__reap(d);
    }
    return false;
}

/* Returns the injected result of an operation that must not reach the
 * kernel, or 0 to submit it (possibly shortened). */
static int32_t inject_transfer(weft__op *op)
{
    bool sock = op->kind == WEFT__OP_RECV || op->kind == WEFT__OP_SEND;
    if (!sock && op->kind != WEFT__OP_READ && op->kind != WEFT__OP_WRITE)
        return 0;
    if (sock && inject(&fault_reset_every, &fault_reset_calls))
        return -ECONNRESET;
    if (op->sqe.len > 1 && inject(&fault_short_every, &fault_short_calls))
        op->sqe.len /= 2;
    return 0;
}

/* An SQE, entering the kernel to make room if the SQ is full; NULL when
 * there is still none. The enter reaps, so any record may have completed (and
 * been freed) by the time this returns: callers re-check what they hold. */
static struct io_uring_sqe *sqe_or_enter(weft__driver *d)
{
    if (__builtin_expect(inject(&fault_sq_full_every, &fault_sq_calls), 0)) {
        enter_submit(d);        /* what a full SQ makes us do (rule 5) ... */
        return NULL;            /* ... as if it had made no room */
    }
    struct io_uring *ring = uring_of(d);
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe && enter_submit(d))
        sqe = io_uring_get_sqe(ring);
    return sqe;
}

static void fill_cancel(struct io_uring_sqe *sqe, uint64_t target)
{
    io_uring_prep_cancel64(sqe, target, 0);
    io_uring_sqe_set_data64(sqe, weft__ud_make(WEFT__UD_CANCEL, 0, 0));
}

static void fill_op(struct io_uring_sqe *sqe, weft__op *op)
{
    *sqe = op->sqe;
    io_uring_sqe_set_data64(sqe, weft__op_ud(op));
    op->where = WEFT__OP_IN_RING;
}

static void append_queued(weft__driver *d, weft__op *op)
{
    weft__op_table *t = &d->ops;
    op->next = NULL;
    op->prev = t->queued_tail;
    if (t->queued_tail)
        t->queued_tail->next = op;
    else
        t->queued_head = op;
    t->queued_tail = op;
    op->where = WEFT__OP_QUEUED;
    weft__count(&weft__driver_metrics(d)->overflow_depth, 1);
}

void weft__unqueue_op(weft__driver *d, weft__op *op)
{
    weft__op_table *t = &d->ops;
    if (op->prev)
        op->prev->next = op->next;
    else
        t->queued_head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        t->queued_tail = op->prev;
    op->next = op->prev = NULL;
    weft__count(&weft__driver_metrics(d)->overflow_depth, (uint64_t)-1);
}

void weft__submit_op(weft__driver *d, weft__op *op)
{
    weft__op_table *t = &d->ops;
    weft__count(&weft__driver_metrics(d)->io_submitted, 1);
    int32_t injected = inject_transfer(op);
    if (__builtin_expect(injected != 0, 0)) {
        weft__op_complete(d, op, injected);
        return;
    }
    struct io_uring_sqe *sqe;
    if (!t->queued_head && (sqe = sqe_or_enter(d)) != NULL) {
        fill_op(sqe, op);
        return;
    }
    append_queued(d, op);     /* rule 1 */
}

void weft__submit_cancel(weft__driver *d, weft__op *op)
{
    weft__op_table *t = &d->ops;
    uint64_t target = weft__op_ud(op);
    op->cancel_sent = true;
    struct io_uring_sqe *sqe;
    if (!t->cancel_head && (sqe = sqe_or_enter(d)) != NULL) {
        /* Even if the target completed meanwhile, its generation has moved
         * on: the cancel finds nothing (-ENOENT) and touches no later use. */
        fill_cancel(sqe, target);
        return;
    }
    if (weft__op_lookup(t, target) != op)
        return;     /* completed (and freed) while sqe_or_enter reaped */
    op->cancel_next = NULL;
    if (t->cancel_tail)
        t->cancel_tail->cancel_next = op;
    else
        t->cancel_head = op;
    t->cancel_tail = op;
}

/* A record whose CQE arrived may still sit on the cancel queue: take it off
 * before the record is reused. The queue is short and rarely non-empty. */
void weft__forget_cancel(weft__driver *d, weft__op *op)
{
    weft__op_table *t = &d->ops;
    weft__op *prev = NULL;
    for (weft__op *c = t->cancel_head; c; prev = c, c = c->cancel_next) {
        if (c != op)
            continue;
        if (prev)
            prev->cancel_next = c->cancel_next;
        else
            t->cancel_head = c->cancel_next;
        if (t->cancel_tail == c)
            t->cancel_tail = prev;
        return;
    }
}

static void flush_cancels(weft__driver *d)
{
    weft__op_table *t = &d->ops;
    struct io_uring_sqe *sqe;
    while (t->cancel_head && (sqe = sqe_or_enter(d)) != NULL) {
        weft__op *op = t->cancel_head;
        t->cancel_head = op->cancel_next;
        if (!t->cancel_head)
            t->cancel_tail = NULL;
        fill_cancel(sqe, weft__op_ud(op));
    }
}

static void flush_queued(weft__driver *d)
{
    weft__op_table *t = &d->ops;
    struct io_uring_sqe *sqe;
    while (t->queued_head && (sqe = sqe_or_enter(d)) != NULL) {
        weft__op *op = t->queued_head;
        weft__unqueue_op(d, op);
        fill_op(sqe, op);
    }
}

void weft__submit_fill(weft__driver *d)
{
    if (d->ops.cancel_head)
        flush_cancels(d);
    if (d->ops.queued_head)
        flush_queued(d);
}

void weft__submit_flush(weft__driver *d)
{
    weft__submit_fill(d);
    if (io_uring_sq_ready(uring_of(d)) > 0)
        enter_submit(d);
}

bool weft__submit_backlog(weft__driver *d)
{
    return d->ops.queued_head || d->ops.cancel_head;
}

bool weft__submit_pending(weft__driver *d)
{
    return io_uring_sq_ready(uring_of(d)) > 0 || weft__submit_backlog(d);
}

bool weft__reap_wanted(weft__driver *d)
{
    struct io_uring *ring = uring_of(d);
    return io_uring_cq_ready(ring) > 0 || cq_needs_enter(ring);
}

struct cqe_copy {
    uint64_t ud;
    int32_t res;
    uint32_t flags;
};

static void dispatch(weft__driver *d, const struct cqe_copy *c)
{
    weft__op *op;
    switch (weft__ud_tag(c->ud)) {
    case WEFT__UD_WAKE:
        d->ring.eventfd_armed = false;
        return;
    case WEFT__UD_CANCEL:
        return;     /* the target's own CQE says how it ended */
    case WEFT__UD_OP:
        op = weft__op_lookup(&d->ops, c->ud);
        if (!op)
            break;
        if (!(c->flags & IORING_CQE_F_MORE))
            weft__op_complete(d, op, c->res);
        else if (weft__op_defs[op->kind].more)
            weft__op_defs[op->kind].more(op, c->res);
        return;
    }
    d->ops.stale_cqes++;
}

unsigned weft__reap(weft__driver *d)
{
    struct io_uring *ring = uring_of(d);
    if (cq_needs_enter(ring))
        io_uring_get_events(ring);
    unsigned total = 0;
    for (;;) {
        struct cqe_copy batch[REAP_BATCH];
        unsigned n = 0, head;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(ring, head, cqe) {
            batch[n++] = (struct cqe_copy){ cqe->user_data, cqe->res, cqe->flags };
            if (n == REAP_BATCH)
                break;
        }
        if (n == 0)
            return total;
        io_uring_cq_advance(ring, n);   /* rule 4 */
        for (unsigned i = 0; i < n; i++)
            dispatch(d, &batch[i]);
        total += n;
    }
}
