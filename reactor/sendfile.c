/*
 * reactor/sendfile.c - weft_sendfile: file bytes to a socket through a pipe
 * the transfer owns, by two IORING_OP_SPLICE operations per chunk (file ->
 * pipe at an explicit offset, then pipe -> socket), one at a time on the
 * transfer's weft_io.
 *
 * Invariants:
 *   1. The pipe exists exactly while weft_running is set: made at the first
 *      poll, closed at every ending (result, error, withdrawal, tear-down
 *      through sendfile_withdraw).
 *   2. `done` only grows, by bytes the kernel reported moving into the
 *      socket; `weft_piped` is what the pipe holds. The phase of the
 *      operation in flight follows from them: with bytes in the pipe it is
 *      a send, else a read. Neither changes while an operation is in flight.
 *   3. Withdrawal reaches only the splice in flight; before starting another
 *      the loop checks weft_cx_cancel_due (as xfer.c does).
 *   4. A deadline set on `io` is taken once, as an instant, and applied to
 *      every splice of the transfer.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "reactor/op.h"

#define CHUNK (64u * 1024u)     /* a default pipe's capacity */

/* splice(2) into a socket cannot say MSG_NOSIGNAL: a gone peer would raise
 * SIGPIPE and kill a process that kept the default action. */
static void ignore_sigpipe(void)
{
    static _Atomic bool done;
    if (atomic_exchange_explicit(&done, true, memory_order_relaxed))
        return;
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL
        && !(old.sa_flags & SA_SIGINFO)) {
        struct sigaction ign = { .sa_handler = SIG_IGN };
        sigemptyset(&ign.sa_mask);
        sigaction(SIGPIPE, &ign, NULL);
    }
}

static weft_poll finish(weft_sendfile_op *s, weft_poll r)
{
    if (s->weft_running) {
        close(s->weft_pipe[0]);
        close(s->weft_pipe[1]);
        s->weft_running = 0;
    }
    return r;
}

static weft_withdraw sendfile_withdraw(weft_cx *cx, void *leaf)
{
    weft_sendfile_op *s = leaf;
    weft_withdraw w = weft__io_withdraw(cx, &s->io);
    if (w == WEFT_WITHDRAWN)
        finish(s, 0);                   /* rule 1 */
    return w;
}

static int begin(weft_sendfile_op *s, uint64_t offset, size_t count)
{
    if (pipe2(s->weft_pipe, O_CLOEXEC) != 0)
        return -errno;
    ignore_sigpipe();
    s->done = 0;
    s->weft_off = offset;
    s->weft_left = count;
    s->weft_piped = 0;
    s->weft_deadline = weft__io_deadline_instant(weft__io_of(&s->io));
    s->weft_running = 1;
    return 0;
}

/* One splice: pipe -> socket while the pipe holds bytes, else file -> pipe. */
static weft_poll splice_step(weft_cx *cx, weft_sendfile_op *s, int sock_fd, int file_fd)
{
    weft__op *op;
    weft_poll r = weft__io_begin(cx, &s->io, WEFT__OP_SPLICE, &op);
    if (r != WEFT__IO_START)
        return r;
    if (s->weft_piped)
        io_uring_prep_splice(&op->sqe, s->weft_pipe[0], -1, sock_fd, -1, s->weft_piped,
                             SPLICE_F_MOVE);
    else
        io_uring_prep_splice(&op->sqe, file_fd, (int64_t)s->weft_off, s->weft_pipe[1], -1,
                             (unsigned)(s->weft_left < CHUNK ? s->weft_left : CHUNK),
                             SPLICE_F_MOVE);
    return weft__io_start(cx, &s->io, op);
}

/* Account for a finished splice: 1 to go on, 0 when the file has ended,
 * or an error. */
static int account(weft_sendfile_op *s, uint32_t moved)
{
    if (s->weft_piped) {
        if (moved == 0)
            return -EIO;                /* a full pipe that yields nothing */
        s->weft_piped -= moved;
        s->done += moved;
        return 1;
    }
    if (moved == 0) {
        s->weft_left = 0;               /* the file is shorter than count */
        return 0;
    }
    s->weft_piped = moved;
    s->weft_off += moved;
    s->weft_left -= moved;
    return 1;
}

weft_poll weft_sendfile(weft_cx *cx, weft_sendfile_op *s, int sock_fd, int file_fd,
                        uint64_t offset, size_t count)
{
    if (!cx || !s || sock_fd < 0 || file_fd < 0)
        return -EINVAL;
    weft__io *io = weft__io_of(&s->io);
    if (!s->weft_running) {
        if (count == 0)
            return 0;
        int rc = begin(s, offset, count);
        if (rc)
            return rc;
    }
    while (s->weft_piped || s->weft_left) {
        bool idle = atomic_load_explicit(&io->state, memory_order_acquire) == WEFT__IO_IDLE;
        if (idle && (s->done || s->weft_piped) && weft_cx_cancel_due(cx))
            return finish(s, -ECANCELED);               /* rule 3 */
        if (idle && s->weft_deadline) {
            io->deadline_ns = s->weft_deadline;         /* rule 4 */
            io->deadline_relative = false;
        }
        weft_poll r = splice_step(cx, s, sock_fd, file_fd);
        if (r == WEFT_PENDING) {
            weft_cx_suspend(cx, s, sendfile_withdraw);  /* same address as the io */
            return WEFT_PENDING;
        }
        if (r >= 0)
            r = account(s, (uint32_t)r);
        if (r < 0)
            return finish(s, r);
        if (r == 0)
            break;
    }
    return finish(s, (weft_poll)s->done);
}
