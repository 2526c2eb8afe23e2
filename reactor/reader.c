/*
 * reactor/reader.c - weft_reader (weft/stream.h): a bounded buffer in front
 * of an fd, read a line, a delimited piece, an exact count or what is there.
 *
 * The buffer holds the unconsumed bytes in [head, tail); reads land at tail.
 * Invariants (with those of reactor/stream.h):
 *   1. Bytes leave the buffer only when a call completes (head moves then,
 *      and only then), so a call that is withdrawn, times out or fails has
 *      consumed nothing: what arrived stays for the next call.
 *   2. A completed read's bytes are counted at tail by the poll that
 *      collects its result, before anything else looks at the buffer.
 *   3. scan (head <= scan <= tail) is how far the bytes were searched for a
 *      delimiter: each byte is searched once per call, not once per read.
 *   4. EOF is sticky: after a read yielded 0 no further read is started.
 */
#include <errno.h>
#include <string.h>

#include "reactor/stream.h"

static size_t buffered(const weft_reader *r)
{
    return r->weft_tail - r->weft_head;
}

/* Make room at the tail by moving the unconsumed bytes to the front (rule 1
 * of stream.h: only between operations); only when the tail is at the end,
 * so a long line is moved once per buffer's worth, not once per read. */
static void compact(weft_reader *r)
{
    if (r->weft_head == r->weft_tail) {
        r->weft_head = r->weft_tail = r->weft_scan = 0;
        return;
    }
    if (r->weft_head == 0 || r->weft_tail < r->weft_cap)
        return;
    size_t n = buffered(r);
    memmove(r->weft_buf, r->weft_buf + r->weft_head, n);
    r->weft_scan -= r->weft_head;
    r->weft_head = 0;
    r->weft_tail = n;
}

static weft_poll end_call(weft_reader *r, weft_poll result)
{
    r->weft_flags &= ~(uint32_t)WEFT__STREAM_RUNNING;
    r->weft_call_deadline = 0;
    return result;
}

/* The reader's cancel hook: the read's own withdrawal decides; when it did
 * not happen, the call is over (its await yields -ECANCELED unpolled). */
static weft_withdraw reader_withdraw(weft_cx *cx, void *leaf)
{
    weft_reader *r = leaf;
    weft_withdraw w = weft__io_withdraw(cx, &r->weft_op);
    if (w == WEFT_WITHDRAWN)
        end_call(r, 0);
    return w;
}

/* Start a read into the free tail, or collect the one in flight. Yields
 * WEFT_PENDING, the bytes read (now buffered), 0 at EOF, or an error. */
static weft_poll fill(weft_cx *cx, weft_reader *r)
{
    if (!weft__stream_busy(&r->weft_op)) {
        compact(r);
        if (!(r->weft_flags & WEFT__STREAM_RUNNING)) {
            r->weft_flags |= WEFT__STREAM_RUNNING;
            r->weft_call_deadline = weft__stream_call_deadline(r->weft_timeout,
                                                               r->weft_deadline);
        }
        weft_io_deadline(&r->weft_op, r->weft_call_deadline);
    }
    char *dst = r->weft_buf + r->weft_tail;
    size_t room = r->weft_cap - r->weft_tail;
    weft_poll got = (r->weft_flags & WEFT__STREAM_SOCKET)
        ? weft_recv(cx, &r->weft_op, r->weft_fd, dst, room, 0)
        : weft_read(cx, &r->weft_op, r->weft_fd, dst, room, -1);
    if (got == WEFT_PENDING) {
        weft_cx_suspend(cx, r, reader_withdraw);    /* same address as the io */
        return WEFT_PENDING;
    }
    if (got < 0)
        return end_call(r, got);
    if (got == 0)
        r->weft_flags |= WEFT__STREAM_EOF;
    r->weft_tail += (size_t)got;
    return got;
}

/* Whether another read may start: not at EOF, room left, no cancellation
 * due (a withdrawal reaches only the read in flight, so the call checks
 * before it starts the next one). Otherwise *why says what to yield. */
static bool may_read(weft_cx *cx, weft_reader *r, weft_poll *why)
{
    if (r->weft_flags & WEFT__STREAM_EOF)
        *why = 0;
    else if (buffered(r) == r->weft_cap)
        *why = -EMSGSIZE;
    else if ((r->weft_flags & WEFT__STREAM_RUNNING) && weft_cx_cancel_due(cx))
        *why = -ECANCELED;
    else
        return true;
    return false;
}

static bool usable(weft_cx *cx, const weft_reader *r)
{
    return cx && r && r->weft_buf;
}

/* ---- read_until / read_line -------------------------------------------------- */

/* Length of the piece ending at the first delim after head, or 0. */
static size_t find(weft_reader *r, int delim)
{
    if (r->weft_scan < r->weft_head)
        r->weft_scan = r->weft_head;
    char *from = r->weft_buf + r->weft_scan;
    char *hit = memchr(from, delim, r->weft_tail - r->weft_scan);
    if (!hit) {
        r->weft_scan = r->weft_tail;
        return 0;
    }
    return (size_t)(hit - (r->weft_buf + r->weft_head)) + 1;
}

/* Hand out n bytes at head as a piece, consumed. */
static weft_poll take_piece(weft_reader *r, size_t n, char **data)
{
    *data = r->weft_buf + r->weft_head;
    r->weft_head += n;
    r->weft_scan = r->weft_head;
    return end_call(r, (weft_poll)n);
}

weft_poll weft_read_until(weft_cx *cx, weft_reader *r, int delim, char **data)
{
    if (!usable(cx, r) || !data || delim < 0 || delim > 255)
        return -EINVAL;
    for (;;) {
        if (!weft__stream_busy(&r->weft_op)) {
            size_t n = find(r, delim);
            weft_poll why = 0;
            if (n == 0 && !may_read(cx, r, &why)) {
                if (why != 0 || buffered(r) == 0)
                    return end_call(r, why);
                n = buffered(r);        /* the last piece, without delim */
            }
            if (n > 0)
                return weft_cx_coop(cx) ? take_piece(r, n, data) : WEFT_PENDING;
        }
        weft_poll got = fill(cx, r);
        if (got == WEFT_PENDING || got < 0)
            return got;
    }
}

weft_poll weft_read_line(weft_cx *cx, weft_reader *r, char **line, size_t *len)
{
    if (!line)
        return -EINVAL;
    char *piece;
    weft_poll n = weft_read_until(cx, r, '\n', &piece);
    if (n <= 0)
        return n;
    /* A piece without '\n' ends at tail, which is below cap (a full buffer
     * yields -EMSGSIZE instead), so its NUL has room. */
    size_t content = (size_t)n;
    if (piece[content - 1] == '\n')
        content--;
    if (content > 0 && piece[content - 1] == '\r' && content < (size_t)n)
        content--;
    piece[content] = '\0';
    *line = piece;
    if (len)
        *len = content;
    return n;
}

/* ---- read_exact / read_some ---------------------------------------------------- */

static weft_poll copy_out(weft_reader *r, void *buf, size_t n)
{
    memcpy(buf, r->weft_buf + r->weft_head, n);
    r->weft_head += n;
    return end_call(r, (weft_poll)n);
}

weft_poll weft_read_exact(weft_cx *cx, weft_reader *r, void *buf, size_t len)
{
    if (!usable(cx, r) || (!buf && len))
        return -EINVAL;
    if (len > r->weft_cap)
        return -EMSGSIZE;
    if (len == 0)
        return 0;               /* buf may be NULL: nothing to copy */
    for (;;) {
        if (!weft__stream_busy(&r->weft_op)) {
            weft_poll why = 0;
            if (buffered(r) >= len)
                return weft_cx_coop(cx) ? copy_out(r, buf, len) : WEFT_PENDING;
            if (!may_read(cx, r, &why))
                return end_call(r, why == 0 ? -EPIPE : why);
        }
        weft_poll got = fill(cx, r);
        if (got == WEFT_PENDING || got < 0)
            return got;
    }
}

weft_poll weft_read_some(weft_cx *cx, weft_reader *r, void *buf, size_t len)
{
    if (!usable(cx, r) || (!buf && len))
        return -EINVAL;
    if (len == 0)
        return 0;
    for (;;) {
        if (!weft__stream_busy(&r->weft_op)) {
            size_t n = buffered(r) < len ? buffered(r) : len;
            weft_poll why = 0;
            if (n > 0)
                return weft_cx_coop(cx) ? copy_out(r, buf, n) : WEFT_PENDING;
            if (!may_read(cx, r, &why))
                return end_call(r, why);
        }
        weft_poll got = fill(cx, r);
        if (got == WEFT_PENDING || got < 0)
            return got;
    }
}

/* ---- setup and the small calls ------------------------------------------------- */

int weft_reader_init(weft_reader *r, int fd, void *buf, size_t cap)
{
    /* Set up already (a stream starts zeroed): overwriting it would leak a
     * buffer weft allocated and forget an operation the kernel still holds. */
    if (!r || r->weft_buf)
        return -EINVAL;
    uint32_t flags;
    char *b;
    int rc = weft__stream_setup(fd, buf, cap, &flags, &b);
    if (rc)
        return rc;
    *r = (weft_reader){ .weft_op = WEFT_IO_INIT, .weft_buf = b, .weft_cap = cap,
                        .weft_fd = fd, .weft_flags = flags };
    return 0;
}

int weft_reader_destroy(weft_reader *r)
{
    if (!r)
        return -EINVAL;
    if (weft__stream_in_kernel(&r->weft_op))
        return -EBUSY;
    weft__stream_release(r->weft_buf, r->weft_cap, r->weft_flags);
    *r = (weft_reader)WEFT_READER_INIT;
    return 0;
}

size_t weft_reader_buffered(const weft_reader *r, const char **data)
{
    if (!r || !r->weft_buf)
        return 0;
    if (data)
        *data = r->weft_buf + r->weft_head;
    return buffered(r);
}

int weft_reader_consume(weft_reader *r, size_t n)
{
    if (!r || n > buffered(r))
        return -EINVAL;
    r->weft_head += n;
    return 0;
}

int weft_reader_timeout(weft_reader *r, uint64_t timeout_ns)
{
    if (!r)
        return -EINVAL;
    r->weft_timeout = timeout_ns;
    return 0;
}

int weft_reader_deadline(weft_reader *r, uint64_t deadline_ns)
{
    if (!r)
        return -EINVAL;
    r->weft_deadline = deadline_ns;
    return 0;
}
