/*
 * weft/stream.h - buffered streams over sockets, pipes and files: a reader
 * (read a line, up to a delimiter, an exact count, or whatever is there) and
 * a writer (write a whole buffer or an iovec array, flush).
 *
 * A stream is a plain struct kept in the task's frame, like any leaf, with a
 * bounded buffer (the caller's memory, or allocated by weft). It wraps one fd
 * and owns the progress of its calls, so unlike a weft_xfer it needs no reset
 * between calls: every call starts from what the stream holds, and every
 * ending leaves the stream consistent. One call at a time per stream; the
 * reader and the writer of one socket are independent (two tasks may use
 * them). The stream never closes its fd.
 *
 * Sockets are read with recv and written with sendmsg (MSG_NOSIGNAL: a peer
 * that has gone yields -EPIPE, never SIGPIPE); other fds (pipes, files,
 * ttys) with read/writev at the file position. The kind is found with
 * fstat(2) at init. As for every weft fd, sockets and pipes must be blocking.
 *
 * Cancellation contracts (docs/cancellation.md, "Streams"):
 *  - Reader: a withdrawn read consumes nothing. Bytes that arrived before or
 *    during the withdrawal stay buffered and are returned by the next call;
 *    a call that could complete with them when the withdrawal came completes
 *    and yields its real result (the cancellation is then delivered at the
 *    task's next await).
 *  - Writer: weft_write_all and weft_writev_all take the caller's data whole
 *    or report how much they took. A call whose data fits the buffer is
 *    all-or-nothing: withdrawn, it took none of it (-ECANCELED). A larger
 *    call sends the data directly; withdrawn (or stopped by an error) after
 *    part of it went out, it yields that part's length, a short count, as
 *    write(2) does when a signal interrupts it. Bytes taken into the buffer
 *    are sent by a later call or flush; weft_writer_buffered says how many
 *    wait there.
 *  - A cancel-safe task torn down mid-call: the operation in flight is
 *    settled before the frame is dropped; destroy the stream in the drop hook.
 *
 * Deadlines are the stream's settings, not one operation's: a timeout bounds
 * each call that has to wait for the fd (counted from the call's first wait),
 * a deadline is an instant that bounds every call until changed. A call that
 * runs out yields -ETIMEDOUT with the same guarantees as a withdrawal.
 */
#ifndef WEFT_STREAM_H
#define WEFT_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "weft/io.h"
#include "weft/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest buffer a stream accepts (1 GiB). */
#define WEFT_STREAM_MAX_BUFFER ((size_t)1 << 30)

/* Segments one write operation of a writer sends at most. */
#define WEFT_WRITER_WINDOW 8

/* A buffered reader. Start zeroed (WEFT_READER_INIT); all fields private. */
typedef struct weft_reader {
    weft_io weft_op;            /* first: the reader is the leaf it suspends on */
    char *weft_buf;
    size_t weft_cap, weft_head, weft_tail;
    size_t weft_scan;           /* searched for the delimiter up to here */
    uint64_t weft_timeout, weft_deadline, weft_call_deadline;
    int weft_fd;
    uint32_t weft_flags;
} weft_reader;

#define WEFT_READER_INIT { WEFT_IO_INIT, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/* A buffered writer. Start zeroed (WEFT_WRITER_INIT); all fields private. */
typedef struct weft_writer {
    weft_io weft_op;            /* first: the writer is the leaf it suspends on */
    struct iovec weft_window[WEFT_WRITER_WINDOW];
    char *weft_buf;
    size_t weft_cap, weft_head, weft_tail;
    size_t weft_taken;          /* bytes of the running call's data taken */
    uint64_t weft_timeout, weft_deadline, weft_call_deadline;
    int weft_fd;
    int weft_err;               /* sticky: the error that broke the stream */
    uint32_t weft_flags;
    uint32_t weft_nwindow;
} weft_writer;

#define WEFT_WRITER_INIT { WEFT_IO_INIT, { { NULL, 0 } }, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/* ---- Reader ------------------------------------------------------------------ */

/*
 * Set r up to read fd through a buffer of cap bytes: buf if not NULL (it must
 * outlive the reader), else allocated by weft. A buffer in the frame: set the
 * stream up inside the task, since spawning copies the frame (a stream set up
 * in the initial frame would point at the original's buffer). -EINVAL for a NULL r, fd < 0,
 * cap 0 or above WEFT_STREAM_MAX_BUFFER, or an r already set up (destroy it
 * first; a copy of a set-up stream counts, so zero a reused frame); -EBADF
 * (fstat's error) for a bad fd; -ENOMEM. r is unchanged on error.
 * Synchronous; any thread.
 */
WEFT_EXTERN int weft_reader_init(weft_reader *r, int fd, void *buf, size_t cap);

/* Free a buffer weft allocated and zero r; the fd stays open. -EINVAL for
 * NULL, -EBUSY while an operation is in flight (r unchanged). */
WEFT_EXTERN int weft_reader_destroy(weft_reader *r);

/*
 * Read up to and including the byte delim (0..255). Yields the length of
 * the piece, with *data pointing at it inside the reader's buffer, valid
 * until the next call on r; the piece is consumed. At the end of the stream
 * the last bytes are yielded without delim, then 0. -EMSGSIZE when the
 * buffer is full and holds no delim (nothing consumed: the bytes stay
 * buffered, see weft_reader_buffered / weft_reader_consume).
 * Cancellation: nothing consumed (see above).
 */
WEFT_EXTERN weft_poll weft_read_until(weft_cx *cx, weft_reader *r, int delim, char **data);

/*
 * weft_read_until('\n') for text: *line is the line without its "\n" or
 * "\r\n", NUL-terminated in place, and *len (may be NULL) its length. Yields
 * the bytes consumed, terminator included (an empty line yields 1 or 2), so
 * 0 means the end of the stream. A last line without terminator is yielded
 * as a line. Errors and cancellation as weft_read_until; a line needs
 * its terminator to fit the buffer too.
 */
WEFT_EXTERN weft_poll weft_read_line(weft_cx *cx, weft_reader *r, char **line, size_t *len);

/*
 * Copy exactly len bytes into buf: yields len, -EPIPE when the stream ends
 * first (the bytes that came stay buffered), -EMSGSIZE when len exceeds the
 * buffer's capacity. All-or-nothing: cancellation consumes nothing.
 */
WEFT_EXTERN weft_poll weft_read_exact(weft_cx *cx, weft_reader *r, void *buf, size_t len);

/* Copy what is buffered, or wait for one read, into buf (at most len bytes):
 * yields the bytes copied, 0 at the end of the stream (or for len 0).
 * Cancellation: nothing consumed. */
WEFT_EXTERN weft_poll weft_read_some(weft_cx *cx, weft_reader *r, void *buf, size_t len);

/* Bytes buffered and not yet consumed; *data (may be NULL) points at them.
 * 0 for NULL r. */
WEFT_EXTERN size_t weft_reader_buffered(const weft_reader *r, const char **data);

/* Consume n buffered bytes (after looking at them, or to skip a line that
 * was too long). -EINVAL for NULL r or n above what is buffered. */
WEFT_EXTERN int weft_reader_consume(weft_reader *r, size_t n);

/* Bound each later call that waits for data to timeout_ns from its first
 * wait (0: no bound). -EINVAL for NULL. */
WEFT_EXTERN int weft_reader_timeout(weft_reader *r, uint64_t timeout_ns);

/* Bound every later call by the instant deadline_ns (weft_now_ns clock;
 * 0: none). -EINVAL for NULL. */
WEFT_EXTERN int weft_reader_deadline(weft_reader *r, uint64_t deadline_ns);

/* ---- Writer ------------------------------------------------------------------ */

/* As weft_reader_init, for writing fd. */
WEFT_EXTERN int weft_writer_init(weft_writer *w, int fd, void *buf, size_t cap);

/* Free a buffer weft allocated and zero w; bytes still buffered are dropped
 * (flush first). -EINVAL for NULL, -EBUSY while an operation is in flight. */
WEFT_EXTERN int weft_writer_destroy(weft_writer *w);

/*
 * Take all len bytes of data: into the buffer when they fit (no I/O), after
 * sending buffered bytes to make room when they fit the buffer's capacity,
 * or sent directly (together with what is buffered) when they do not.
 * Yields len; a short count when a withdrawal, the deadline or an error
 * stopped a direct send part-way (the bytes counted went out, the rest were
 * not taken); or a negative errno with none of data taken: -ECANCELED,
 * -ETIMEDOUT, the stream's sticky error (-EPIPE, -ECONNRESET, ...).
 */
WEFT_EXTERN weft_poll weft_write_all(weft_cx *cx, weft_writer *w, const void *data, size_t len);

/* weft_write_all over iovcnt (0..IOV_MAX) segments, in order; yields their
 * total length, or as weft_write_all. The iovec array may be a local; the
 * bytes it points to must stay valid until the await finishes. */
WEFT_EXTERN weft_poll weft_writev_all(weft_cx *cx, weft_writer *w, const struct iovec *iov,
                                      int iovcnt);

/* Send everything buffered: yields 0 once the buffer is empty, or a negative
 * errno. Withdrawn, what was sent is gone from the buffer and the rest stays
 * (weft_writer_buffered); a later flush sends it. */
WEFT_EXTERN weft_poll weft_flush(weft_cx *cx, weft_writer *w);

/* Bytes taken and not yet sent; 0 for NULL. */
WEFT_EXTERN size_t weft_writer_buffered(const weft_writer *w);

/* The error that broke the stream (every later call yields it), or 0.
 * Withdrawals and deadlines do not break it. -EINVAL for NULL. */
WEFT_EXTERN int weft_writer_error(const weft_writer *w);

/* As weft_reader_timeout and weft_reader_deadline, for calls that send. */
WEFT_EXTERN int weft_writer_timeout(weft_writer *w, uint64_t timeout_ns);
WEFT_EXTERN int weft_writer_deadline(weft_writer *w, uint64_t deadline_ns);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_STREAM_H */
