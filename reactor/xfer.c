/*
 * reactor/xfer.c - weft_send_all and weft_recv_exact: nested state machines
 * that loop over weft_send / weft_recv until the whole buffer has moved.
 *
 * Invariants:
 *   1. `done` only grows, by results the kernel reported, so after any ending
 *      (success, error, cancellation) it says exactly how much went through.
 *   2. Withdrawal reaches only the operation in flight; so before starting the
 *      next one the loop checks weft_cx_cancel_due and stops with -ECANCELED.
 *   3. A deadline set on x->io is taken once, as an instant, and re-applied to
 *      every operation of the transfer: it bounds the whole transfer.
 */
#include <errno.h>

#include "reactor/op.h"
#include "runtime/task.h"

static void begin_transfer(weft__io *s, weft_xfer *x)
{
    x->done = 0;
    x->weft_running = 1;
    x->weft_deadline = weft__io_deadline_instant(s);
}

static weft_poll end_transfer(weft_xfer *x, weft_poll r)
{
    x->weft_running = 0;
    return r;
}

static weft_poll transfer(weft_cx *cx, weft_xfer *x, int fd, char *buf, size_t len, bool send)
{
    if (!cx || !x || (!buf && len))
        return -EINVAL;
    weft__io *s = weft__io_of(&x->io);
    if (!x->weft_running)
        begin_transfer(s, x);
    while (x->done < len) {
        bool idle = atomic_load_explicit(&s->state, memory_order_acquire) == WEFT__IO_IDLE;
        if (idle && x->done > 0 && weft_cx_cancel_due(cx))
            return end_transfer(x, -ECANCELED);         /* rule 2 */
        if (idle && x->weft_deadline) {
            s->deadline_ns = x->weft_deadline;          /* rule 3 */
            s->deadline_relative = false;
        }
        weft_poll r = send ? weft_send(cx, &x->io, fd, buf + x->done, len - x->done, 0)
                           : weft_recv(cx, &x->io, fd, buf + x->done, len - x->done, 0);
        if (r == WEFT_PENDING)
            return WEFT_PENDING;
        if (r < 0)
            return end_transfer(x, r);
        if (r == 0 && !send)
            return end_transfer(x, -EPIPE);             /* the peer closed early */
        x->done += (size_t)r;
    }
    return end_transfer(x, (weft_poll)len);
}

weft_poll weft_send_all(weft_cx *cx, weft_xfer *x, int fd, const void *buf, size_t len)
{
    return transfer(cx, x, fd, (char *)buf, len, true);
}

weft_poll weft_recv_exact(weft_cx *cx, weft_xfer *x, int fd, void *buf, size_t len)
{
    return transfer(cx, x, fd, buf, len, false);
}
