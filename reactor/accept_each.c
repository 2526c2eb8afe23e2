/*
 * reactor/accept_each.c - weft_accept_each: one multishot accept (one SQE, a
 * CQE per connection) that hands every connection to the caller's callback,
 * re-armed whenever the kernel ends it without an error.
 *
 * Invariants:
 *   1. The awaiting task stays suspended on the loop's leaf for as long as
 *      a multishot is armed, so the leaf machinery (op.h, rule 5) keeps the
 *      frame - the callback, its argument, `accepted` - alive until the final
 *      CQE, whatever withdraws it. The owner calls the callback from its
 *      CQE dispatch (op_defs.c), never after the final CQE.
 *   2. Every connection the kernel accepted is handed to the callback, also
 *      one carried by a final CQE and those accepted after a withdrawal was
 *      asked for but before the kernel cancelled the accept: none is lost,
 *      none is closed by weft.
 *   3. A deadline set on `io` is taken once, as an instant, and applied to
 *      every arming: it bounds the whole loop.
 */
#include <errno.h>
#include <sys/socket.h>

#include "reactor/op.h"

static weft_poll arm(weft_cx *cx, weft_accept_loop *l, int listen_fd, weft_accept_fn *fn,
                     void *arg)
{
    weft__op *op;
    weft_poll r = weft__io_begin(cx, &l->io, WEFT__OP_ACCEPT_MULTI, &op);
    if (r != WEFT__IO_START)
        return r;
    op->u.each.fn = fn;
    op->u.each.arg = arg;
    op->u.each.accepted = &l->accepted;
    io_uring_prep_multishot_accept(&op->sqe, listen_fd, NULL, NULL, SOCK_CLOEXEC);
    return weft__io_start(cx, &l->io, op);
}

static weft_poll end_loop(weft_accept_loop *l, weft_poll r)
{
    l->weft_running = 0;
    return r;
}

weft_poll weft_accept_each(weft_cx *cx, weft_accept_loop *l, int listen_fd, weft_accept_fn *fn,
                           void *arg)
{
    if (!cx || !l || !fn || listen_fd < 0)
        return -EINVAL;
    weft__io *io = weft__io_of(&l->io);
    if (!l->weft_running) {
        l->accepted = 0;
        l->weft_deadline = weft__io_deadline_instant(io);
        l->weft_running = 1;
    }
    for (;;) {
        bool idle = atomic_load_explicit(&io->state, memory_order_acquire) == WEFT__IO_IDLE;
        if (idle && l->weft_deadline) {
            io->deadline_ns = l->weft_deadline;         /* rule 3 */
            io->deadline_relative = false;
        }
        weft_poll r = arm(cx, l, listen_fd, fn, arg);
        if (r == WEFT_PENDING)
            return WEFT_PENDING;
        if (r < 0)
            return end_loop(l, r);
        /* 0: the kernel ended the multishot without an error; a withdrawal
         * due now stops here rather than arm another. */
        if (weft_cx_cancel_due(cx))
            return end_loop(l, -ECANCELED);
    }
}
