/*
 * reactor/writer.c - weft_writer (weft/stream.h): a bounded buffer behind an
 * fd; write a whole buffer or iovec array, flush.
 *
 * The buffer holds the bytes taken and not yet sent in [head, tail). A call
 * that does not fit the free space runs in one of three modes:
 *   FLUSH   weft_flush: send what is buffered until nothing is;
 *   ROOM    the data fits the capacity: send buffered bytes until it fits
 *           the free space, then copy it in whole;
 *   DIRECT  the data is larger than the capacity: send the buffered bytes
 *           and the data itself as one vector (the window), piece by piece.
 * Invariants (with those of reactor/stream.h):
 *   1. `taken` counts the running call's data that went out (DIRECT only);
 *      it only grows, by what the kernel reported, so a call stopped
 *      part-way yields exactly what it took. Buffered bytes always go out
 *      before the data behind them: the window starts with them.
 *   2. A withdrawal after part of the data went out is a result, not a
 *      non-event: the hook answers RACED (STOPPED set) and the call yields
 *      the short count. A withdrawal before that yields -ECANCELED with
 *      none of the data taken.
 *   3. Only errors of the connection are sticky (weft_err); a withdrawal,
 *      a deadline or a failed allocation leaves the stream usable.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "reactor/stream.h"

enum { MODE_FLUSH = 1, MODE_ROOM, MODE_DIRECT };

static size_t buffered(const weft_writer *w)
{
    return w->weft_tail - w->weft_head;
}

static bool fits(const weft_writer *w, size_t total)
{
    return total <= w->weft_cap - buffered(w);
}

static unsigned mode_of(const weft_writer *w)
{
    return w->weft_flags >> WEFT__STREAM_MODE_SHIFT;
}

static weft_poll end_call(weft_writer *w, weft_poll result)
{
    w->weft_flags &= WEFT__STREAM_SOCKET | WEFT__STREAM_OWNED;
    w->weft_taken = 0;
    w->weft_call_deadline = 0;
    return result;
}

/* Rule 2: a withdrawal that found part of the data sent reports it. */
static weft_withdraw writer_withdraw(weft_cx *cx, void *leaf)
{
    weft_writer *w = leaf;
    weft_withdraw x = weft__io_withdraw(cx, &w->weft_op);
    if (x != WEFT_WITHDRAWN)
        return x;
    if (w->weft_taken > 0 && !weft_cx_is_teardown(cx)) {
        w->weft_flags |= WEFT__STREAM_STOPPED;
        return WEFT_WITHDRAW_RACED;
    }
    end_call(w, 0);
    return WEFT_WITHDRAWN;
}

/* Copy the whole data in behind what is buffered (it fits: caller checked). */
static weft_poll take_all(weft_writer *w, const struct iovec *iov, int iovcnt, size_t total)
{
    if (w->weft_head == w->weft_tail)
        w->weft_head = w->weft_tail = 0;
    if (w->weft_tail + total > w->weft_cap) {
        memmove(w->weft_buf, w->weft_buf + w->weft_head, buffered(w));
        w->weft_tail -= w->weft_head;
        w->weft_head = 0;
    }
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len)
            memcpy(w->weft_buf + w->weft_tail, iov[i].iov_base, iov[i].iov_len);
        w->weft_tail += iov[i].iov_len;
    }
    return end_call(w, (weft_poll)total);
}

/* The vector the next operation sends: what is buffered, then (DIRECT) the
 * caller's data from `taken` on, at most WEFT_WRITER_WINDOW segments. */
static void build_window(weft_writer *w, const struct iovec *iov, int iovcnt, bool data)
{
    unsigned n = 0;
    if (buffered(w))
        w->weft_window[n++] = (struct iovec){ w->weft_buf + w->weft_head, buffered(w) };
    size_t skip = w->weft_taken;
    for (int i = 0; data && i < iovcnt && n < WEFT_WRITER_WINDOW; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        w->weft_window[n++] = (struct iovec){ (char *)iov[i].iov_base + skip,
                                              iov[i].iov_len - skip };
        skip = 0;
    }
    w->weft_nwindow = n;
}

/* The kernel took n bytes of the window: buffered ones first (rule 1). */
static void account(weft_writer *w, size_t n)
{
    size_t from_buf = n < buffered(w) ? n : buffered(w);
    w->weft_head += from_buf;
    w->weft_taken += n - from_buf;
    if (w->weft_head == w->weft_tail)
        w->weft_head = w->weft_tail = 0;
}

/* A socket is written with sendmsg for MSG_NOSIGNAL; the msghdr lives in
 * the record and points at the window, both read at submission. */
static weft_poll send_window(weft_cx *cx, weft_writer *w)
{
    if (!(w->weft_flags & WEFT__STREAM_SOCKET))
        return weft_writev(cx, &w->weft_op, w->weft_fd, w->weft_window,
                           (int)w->weft_nwindow, -1);
    weft__op *op;
    weft_poll r = weft__io_begin(cx, &w->weft_op, WEFT__OP_SENDMSG, &op);
    if (r != WEFT__IO_START)
        return r;
    memset(&op->u.msg, 0, sizeof op->u.msg);
    op->u.msg.msg.msg_iov = w->weft_window;
    op->u.msg.msg.msg_iovlen = w->weft_nwindow;
    io_uring_prep_sendmsg(&op->sqe, w->weft_fd, &op->u.msg.msg, MSG_NOSIGNAL);
    return weft__io_start(cx, &w->weft_op, op);
}

static bool breaks_stream(weft_poll err)
{
    return err != -ECANCELED && err != -ETIMEDOUT && err != -ENOMEM && err != -EPERM;
}

/* Start (or collect) one operation of the running call. Yields WEFT_PENDING,
 * 1 when bytes went out, or the call's ending (rules 1 and 3). */
static weft_poll step(weft_cx *cx, weft_writer *w, unsigned mode)
{
    if (!weft__stream_busy(&w->weft_op) && !(w->weft_flags & WEFT__STREAM_RUNNING)) {
        w->weft_flags |= WEFT__STREAM_RUNNING | (mode << WEFT__STREAM_MODE_SHIFT);
        w->weft_call_deadline = weft__stream_call_deadline(w->weft_timeout, w->weft_deadline);
    }
    if (!weft__stream_busy(&w->weft_op))
        weft_io_deadline(&w->weft_op, w->weft_call_deadline);
    weft_poll r = send_window(cx, w);
    if (r == WEFT_PENDING) {
        weft_cx_suspend(cx, w, writer_withdraw);    /* same address as the io */
        return WEFT_PENDING;
    }
    if (r <= 0) {
        weft_poll err = r == 0 ? -EIO : r;      /* no progress would loop forever */
        if (breaks_stream(err))
            w->weft_err = (int)err;
        return end_call(w, w->weft_taken ? (weft_poll)w->weft_taken : err);
    }
    account(w, (size_t)r);
    return 1;
}

static weft_poll put(weft_cx *cx, weft_writer *w, const struct iovec *iov, int iovcnt,
                     size_t total)
{
    if (!(w->weft_flags & WEFT__STREAM_RUNNING)) {
        if (w->weft_err)
            return w->weft_err;
        if (fits(w, total))
            return weft_cx_coop(cx) ? take_all(w, iov, iovcnt, total) : WEFT_PENDING;
    }
    for (;;) {
        unsigned mode = (w->weft_flags & WEFT__STREAM_RUNNING) ? mode_of(w)
                      : total <= w->weft_cap ? MODE_ROOM : MODE_DIRECT;
        if (!weft__stream_busy(&w->weft_op)) {
            if (w->weft_flags & WEFT__STREAM_STOPPED)
                return end_call(w, (weft_poll)w->weft_taken);
            if (mode == MODE_ROOM && fits(w, total))
                return weft_cx_coop(cx) ? take_all(w, iov, iovcnt, total) : WEFT_PENDING;
            if (mode == MODE_DIRECT && w->weft_taken == total)
                return end_call(w, (weft_poll)total);
            if ((w->weft_flags & WEFT__STREAM_RUNNING) && weft_cx_cancel_due(cx))
                return end_call(w, w->weft_taken ? (weft_poll)w->weft_taken : -ECANCELED);
            build_window(w, iov, iovcnt, mode == MODE_DIRECT);
        }
        weft_poll r = step(cx, w, mode);
        if (r != 1)
            return r;
    }
}

static bool usable(weft_cx *cx, const weft_writer *w)
{
    return cx && w && w->weft_buf;
}

weft_poll weft_write_all(weft_cx *cx, weft_writer *w, const void *data, size_t len)
{
    if (!usable(cx, w) || (!data && len) || len > (size_t)INT64_MAX)
        return -EINVAL;
    struct iovec one = { (void *)data, len };  /* copied into the window */
    return put(cx, w, &one, 1, len);
}

weft_poll weft_writev_all(weft_cx *cx, weft_writer *w, const struct iovec *iov, int iovcnt)
{
    if (!usable(cx, w) || iovcnt < 0 || iovcnt > IOV_MAX || (!iov && iovcnt))
        return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if ((!iov[i].iov_base && iov[i].iov_len) || iov[i].iov_len > (size_t)INT64_MAX - total)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    return put(cx, w, iov, iovcnt, total);
}

weft_poll weft_flush(weft_cx *cx, weft_writer *w)
{
    if (!usable(cx, w))
        return -EINVAL;
    if (!(w->weft_flags & WEFT__STREAM_RUNNING) && w->weft_err)
        return w->weft_err;
    for (;;) {
        if (!weft__stream_busy(&w->weft_op)) {
            if (buffered(w) == 0)
                return end_call(w, 0);
            if ((w->weft_flags & WEFT__STREAM_RUNNING) && weft_cx_cancel_due(cx))
                return end_call(w, -ECANCELED);
            build_window(w, NULL, 0, false);
        }
        weft_poll r = step(cx, w, MODE_FLUSH);
        if (r != 1)
            return r;
    }
}

/* ---- setup and the small calls ------------------------------------------------- */

int weft_writer_init(weft_writer *w, int fd, void *buf, size_t cap)
{
    /* Set up already (a stream starts zeroed): overwriting it would leak a
     * buffer weft allocated and forget an operation the kernel still holds. */
    if (!w || w->weft_buf)
        return -EINVAL;
    uint32_t flags;
    char *b;
    int rc = weft__stream_setup(fd, buf, cap, &flags, &b);
    if (rc)
        return rc;
    *w = (weft_writer){ .weft_op = WEFT_IO_INIT, .weft_buf = b, .weft_cap = cap,
                        .weft_fd = fd, .weft_flags = flags };
    return 0;
}

int weft_writer_destroy(weft_writer *w)
{
    if (!w)
        return -EINVAL;
    if (weft__stream_in_kernel(&w->weft_op))
        return -EBUSY;
    weft__stream_release(w->weft_buf, w->weft_cap, w->weft_flags);
    *w = (weft_writer)WEFT_WRITER_INIT;
    return 0;
}

size_t weft_writer_buffered(const weft_writer *w)
{
    return w && w->weft_buf ? buffered(w) : 0;
}

int weft_writer_error(const weft_writer *w)
{
    return w ? w->weft_err : -EINVAL;
}

int weft_writer_timeout(weft_writer *w, uint64_t timeout_ns)
{
    if (!w)
        return -EINVAL;
    w->weft_timeout = timeout_ns;
    return 0;
}

int weft_writer_deadline(weft_writer *w, uint64_t deadline_ns)
{
    if (!w)
        return -EINVAL;
    w->weft_deadline = deadline_ns;
    return 0;
}
