/*
 * reactor/op.c - the life of one I/O operation: start, completion, deadline,
 * withdrawal (on the owner or handed to it), and the drain that ends a worker.
 * The states and the rules are in op.h.
 *
 * "A cancelled operation did not happen; one that happened is reported": a
 * withdrawal never invents a result. An operation still in the userspace
 * overflow queue never reached the kernel and is simply unqueued; one in the
 * kernel gets an ASYNC_CANCEL, and its own CQE - -ECANCELED, or the real
 * result if it won the race - is what the await yields. A withdrawn
 * operation the cancel interrupted (-EINTR, or the kernel's -ERESTARTSYS
 * family from an io-wq worker) did not happen either: -ECANCELED. No errno
 * private to the kernel ever reaches the task.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "reactor/driver.h"
#include "runtime/metrics.h"
#include "runtime/rt.h"
#include "runtime/sim.h"
#include "runtime/task.h"
#include "runtime/trace.h"


static inline bool cas_state(weft__io *s, uint32_t *expected, uint32_t to)
{
    /* Acq_rel: the winner publishes its side (the result, or the hand-off)
     * and sees the other's writes (op.h, rule 2). */
    return atomic_compare_exchange_strong_explicit(&s->state, expected, to,
                                                   memory_order_acq_rel,
                                                   memory_order_acquire);
}

/* ---- completion, on the owner ------------------------------------------------------ */

/* Errnos from 512 up are the kernel's own (include/linux/errno.h) and must
 * never reach a user. 512..516 are the "restart" family: the operation was
 * interrupted before it took effect, as an io-wq worker blocked in, say, a
 * FIFO open is when an ASYNC_CANCEL signals it. */
#define KERNEL_ERRNO_FIRST 512
#define KERNEL_ERRNO_LAST 531
#define KERNEL_RESTART_LAST 516
#define KERNEL_ENOTSUPP 524

static bool interrupted(int32_t res)
{
    return res == -EINTR || (res <= -KERNEL_ERRNO_FIRST && res >= -KERNEL_RESTART_LAST);
}

/* What the await yields for a CQE result. An interrupted operation that was
 * being withdrawn did not happen: it reports the withdrawal, like one the
 * kernel cancelled; -ETIMEDOUT when its own deadline withdrew it. */
static int32_t user_result(const weft__op *op, int32_t res)
{
    if (op->cancel_sent && interrupted(res))
        res = -ECANCELED;
    if (res == -ECANCELED && op->timed_out)
        return -ETIMEDOUT;
    if (res > -KERNEL_ERRNO_FIRST || res < -KERNEL_ERRNO_LAST)
        return res;
    if (res >= -KERNEL_RESTART_LAST)
        return -EINTR;
    return res == -KERNEL_ENOTSUPP ? -EOPNOTSUPP : -EIO;
}

static void publish(weft__driver *d, weft__op *op, weft__io *s)
{
    weft_waker waker = s->waker;
    weft__op_free(&d->ops, op);
    /* Release: the result is visible before DONE (rule 3). From here on the
     * task may reuse the leaf. */
    atomic_store_explicit(&s->state, WEFT__IO_DONE, memory_order_release);
    weft_waker_wake(&waker);
}

void weft__op_complete(weft__driver *d, weft__op *op, int32_t res)
{
    weft__io *s = op->leaf;
    weft__count(&weft__driver_metrics(d)->io_completed, 1);
    if (weft__timer_armed(&op->deadline))
        weft__wheel_remove(&d->deadlines, &op->deadline);
    if (d->ops.cancel_head)
        weft__forget_cancel(d, op);
    res = user_result(op, res);
    if (weft__op_defs[op->kind].complete)
        weft__op_defs[op->kind].complete(op, &res);
    s->result = res;
    weft__trace_io(d, WEFT__TR_IO_DONE, op, res);
    if (op->handoff_taken) {
        publish(d, op, s);      /* HANDOFF is ours to end */
        return;
    }
    weft_waker waker = s->waker;
    uint32_t expected = WEFT__IO_INFLIGHT;
    if (cas_state(s, &expected, WEFT__IO_DONE)) {
        /* The leaf may be reused from here on: touch only our locals. */
        weft__op_free(&d->ops, op);
        weft_waker_wake(&waker);
        return;
    }
    /* A withdrawal is being handed to us: finish when we take it up, so the
     * leaf's link is ours until then (rule 2). */
    op->completed = true;
}

/* Owner: stop waiting for a record, with the result an unqueued one gets. A
 * release (close) is never withdrawn, not even from the overflow queue: it
 * goes out when the SQ has room, and the drain flushes it at shutdown (rule 6). */
static void withdraw_record(weft__driver *d, weft__op *op, int32_t unqueued_res)
{
    if (!weft__op_defs[op->kind].withdrawable)
        return;
    weft__count(&weft__driver_metrics(d)->io_withdrawn, 1);
    if (op->where == WEFT__OP_QUEUED) {
        weft__unqueue_op(d, op);
        weft__op_complete(d, op, unqueued_res);
    } else if (op->where == WEFT__OP_SIM) {
        op->cancel_sent = true;     /* the simulator's next choice may end it */
    } else if (!op->cancel_sent) {
        weft__submit_cancel(d, op);
    }
}

void weft__op_deadline_fired(weft__driver *d, weft__timer *t)
{
    weft__op *op = (weft__op *)(void *)((char *)t - offsetof(weft__op, deadline));
    op->timed_out = true;
    withdraw_record(d, op, -ETIMEDOUT);
}

/* ---- withdrawal handed over from other threads --------------------------------------- */

void weft__io_settle_handoff(weft__driver *d, weft__handoff *h)
{
    weft__io *s = (weft__io *)(void *)((char *)h - offsetof(weft__io, handoff));
    weft__op *op = weft__op_lookup(&d->ops, s->ud);
    if (!op)
        return;
    op->handoff_taken = true;
    if (op->completed)
        publish(d, op, s);
    else
        withdraw_record(d, op, -ECANCELED);
}

/* ---- the cancel hook ------------------------------------------------------------------ */

/* The operation finished before the withdrawal. At a tear-down nobody will
 * read the result, so whatever it produced is released here. */
static weft_withdraw settled(weft_cx *cx, weft__io *s)
{
    if (!weft_cx_is_teardown(cx))
        return WEFT_WITHDRAW_RACED;
    if (weft__op_defs[s->kind].yields_fd && s->result >= 0)
        weft_sim_close((int)s->result);     /* a simulated descriptor too */
    s->deadline_ns = 0;
    atomic_store_explicit(&s->state, WEFT__IO_IDLE, memory_order_relaxed);
    return WEFT_WITHDRAWN;
}

static weft_withdraw withdraw_on_owner(weft__driver *d, weft__io *s)
{
    weft__op *op = weft__op_lookup(&d->ops, s->ud);
    if (op && op->where == WEFT__OP_QUEUED && weft__op_defs[op->kind].withdrawable) {
        /* It never reached the kernel: it did not happen (rule 4). */
        weft__unqueue_op(d, op);
        if (weft__timer_armed(&op->deadline))
            weft__wheel_remove(&d->deadlines, &op->deadline);
        weft__op_free(&d->ops, op);
        weft_waker_drop(&s->waker);
        s->deadline_ns = 0;
        atomic_store_explicit(&s->state, WEFT__IO_IDLE, memory_order_relaxed);
        return WEFT_WITHDRAWN;
    }
    if (op)
        withdraw_record(d, op, -ECANCELED);
    return WEFT_WITHDRAW_PENDING;
}

weft_withdraw weft__io_withdraw(weft_cx *cx, void *leaf)
{
    weft__io *s = leaf;
    uint32_t state = atomic_load_explicit(&s->state, memory_order_acquire);
    switch (state) {
    case WEFT__IO_IDLE:
        return WEFT_WITHDRAWN;
    case WEFT__IO_HANDOFF:
        return WEFT_WITHDRAW_PENDING;
    case WEFT__IO_DONE:
        return settled(cx, s);
    }
    weft__driver *d = weft__cx_driver(cx);
    if (!d) {
        /* The shutdown sweep runs after every worker drained its ring, so no
         * operation can still be in flight; going on would free its frame. */
        fprintf(stderr, "weft: operation still in flight at shutdown sweep\n");
        abort();
    }
    if (d->index == s->owner)
        return withdraw_on_owner(d, s);
    if (!cas_state(s, &state, WEFT__IO_HANDOFF))
        return state == WEFT__IO_DONE ? settled(cx, s) : WEFT_WITHDRAW_PENDING;
    s->handoff.kind = WEFT__HANDOFF_IO;
    weft__driver_hand_off(weft__driver_of(cx->task->rt, s->owner), &s->handoff);
    return WEFT_WITHDRAW_PENDING;
}

/* ---- starting and polling --------------------------------------------------------------- */

weft_poll weft__io_begin(weft_cx *cx, weft_io *io, unsigned kind, weft__op **opp)
{
    if (!cx || !io)
        return -EINVAL;
    weft__io *s = weft__io_of(io);
    switch (atomic_load_explicit(&s->state, memory_order_acquire)) {
    case WEFT__IO_INFLIGHT:
    case WEFT__IO_HANDOFF:
        weft_cx_suspend(cx, s, weft__io_withdraw);
        return WEFT_PENDING;
    case WEFT__IO_DONE:
        if (!weft_cx_coop(cx))
            return WEFT_PENDING;
        s->deadline_ns = 0;
        atomic_store_explicit(&s->state, WEFT__IO_IDLE, memory_order_relaxed);
        return s->result;
    }
    weft__driver *d = weft__cx_driver(cx);
    if (!d)
        return -EPERM;
    if (!weft__op_defs[kind].withdrawable)
        s->deadline_ns = 0;     /* a deadline cannot withdraw a release */
    if (s->deadline_ns && s->deadline_relative) {
        uint64_t now = weft_now_ns();
        s->deadline_ns = s->deadline_ns > UINT64_MAX - now ? UINT64_MAX : now + s->deadline_ns;
        s->deadline_relative = false;
    }
    if (s->deadline_ns && s->deadline_ns <= weft_now_ns()) {
        s->deadline_ns = 0;
        return -ETIMEDOUT;      /* withdrawn before it started: it did not happen */
    }
    weft__op *op = weft__op_alloc(&d->ops, s, kind);
    if (!op)
        return -ENOMEM;
    s->kind = (uint8_t)kind;
    *opp = op;
    return WEFT__IO_START;
}

weft_poll weft__io_start(weft_cx *cx, weft_io *io, weft__op *op)
{
    weft__io *s = weft__io_of(io);
    weft__driver *d = weft__cx_driver(cx);
    s->owner = d->index;
    s->ud = weft__op_ud(op);
    s->waker = weft_cx_waker(cx);
    /* Relaxed: another thread reads the leaf only after the task has moved
     * there, which the scheduler's hand-off orders after these stores. */
    atomic_store_explicit(&s->state, WEFT__IO_INFLIGHT, memory_order_relaxed);
    if (s->deadline_ns) {
        weft__wheel_insert(&d->deadlines, &op->deadline, s->deadline_ns);
        weft__count(&weft__driver_metrics(d)->timers_armed, 1);
    }
    weft__trace_io(d, WEFT__TR_IO_SUBMIT, op, 0);
    if (!weft__sim_io_submit(d, op))    /* a simulated descriptor? */
        weft__submit_op(d, op);
    else                                /* the simulator completes it: count it here */
        weft__count(&weft__driver_metrics(d)->io_submitted, 1);
    weft_cx_suspend(cx, s, weft__io_withdraw);
    return WEFT_PENDING;
}

static int set_deadline(weft_io *io, uint64_t ns, bool relative)
{
    if (!io)
        return -EINVAL;
    weft__io *s = weft__io_of(io);
    if (atomic_load_explicit(&s->state, memory_order_acquire) != WEFT__IO_IDLE)
        return -EBUSY;
    s->deadline_ns = ns;
    s->deadline_relative = relative;
    return 0;
}

uint64_t weft__io_deadline_instant(const weft__io *s)
{
    if (!s->deadline_ns || !s->deadline_relative)
        return s->deadline_ns;
    uint64_t now = weft_now_ns();
    return s->deadline_ns > UINT64_MAX - now ? UINT64_MAX : now + s->deadline_ns;
}

int weft_io_deadline(weft_io *io, uint64_t deadline_ns)
{
    return set_deadline(io, deadline_ns, false);
}

int weft_io_timeout(weft_io *io, uint64_t timeout_ns)
{
    return set_deadline(io, timeout_ns, true);
}

/* ---- the end of a worker -------------------------------------------------------------- */

static void withdraw_for_stop(weft__op *op, void *arg)
{
    withdraw_record(arg, op, -ECANCELED);
}

void weft__io_withdraw_all(weft__driver *d)
{
    weft__op_for_each_live(&d->ops, withdraw_for_stop, d);
}
