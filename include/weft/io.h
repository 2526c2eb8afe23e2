/*
 * weft/io.h - network and file operations over the worker's io_uring.
 *
 * Every operation is a leaf future kept in the task's frame (a weft_io): the
 * first poll prepares it on the ring of the worker running the task, later
 * polls check it, and the await yields the kernel's result (>= 0, or a
 * negative errno). The task may be stolen by another worker meanwhile; the
 * completion still wakes it. One weft_io runs one operation at a time and is
 * ready for the next once its await has finished. Built on these:
 * weft/stream.h (buffered lines and writes), weft/net.h (listeners, connect
 * with a timeout, accept under a limit), weft/signal.h (signals).
 *
 * Memory: every pointer an operation takes (buffers, paths, addresses, iovecs,
 * the statx result) must stay valid until its await finishes. Keep them in
 * the frame or in static storage, never in a local of the poll function. The
 * runtime keeps the task (and so its frame) alive until the kernel has
 * completed every operation that points into it, whatever cancelled it.
 *
 * Cancellation contract (the same for every operation):
 *  - Withdrawing an operation (abort, token, timeout, select loss, shutdown)
 *    asks the kernel to cancel it. If the kernel cancels it, it did not happen
 *    and the await yields -ECANCELED (-ETIMEDOUT when its own deadline
 *    withdrew it). If it completed first, its real result is returned: bytes
 *    received or sent, an accepted or opened fd.
 *  - An operation that produces an fd (socket, accept, openat) and completes
 *    after its task was torn down closes that fd: nothing leaks.
 *  - close is a release operation: never withdrawn, and made even by a task
 *    whose cancellation is pending (the request waits for the next await).
 *  - weft_send_all / weft_recv_exact report partial progress in `done`.
 *
 * Sockets used with weft must be blocking (no O_NONBLOCK / SOCK_NONBLOCK):
 * io_uring waits for readiness itself, and a non-blocking socket makes sends
 * fail with -EAGAIN.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "weft/task.h"

#ifdef __cplusplus
extern "C" {
#endif

struct statx;

/* One operation in flight. Start zeroed (WEFT_IO_INIT); all fields private. */
typedef struct weft_io {
    uint64_t weft_private[8];
} weft_io;

#define WEFT_IO_INIT { { 0 } }

/*
 * A deadline for the next operation started with io: if it has not completed
 * by then, it is withdrawn and its await yields -ETIMEDOUT (a result that
 * arrived first wins). weft_io_deadline takes a weft_now_ns instant;
 * weft_io_timeout a duration counted from the operation's first poll. Both
 * apply to one operation and are cleared when it finishes; 0 clears. -EINVAL
 * for NULL, -EBUSY while an operation is in flight.
 */
WEFT_EXTERN int weft_io_deadline(weft_io *io, uint64_t deadline_ns);
WEFT_EXTERN int weft_io_timeout(weft_io *io, uint64_t timeout_ns);

/* ---- Sockets ------------------------------------------------------------------ */

/* A new socket (yields the fd). SOCK_CLOEXEC is added. */
WEFT_EXTERN weft_poll weft_socket(weft_cx *cx, weft_io *io, int domain, int type, int protocol);

/*
 * Synchronous helpers (bind and listen never block): a listening TCP socket
 * on addr with SO_REUSEADDR, returning the fd or a negative errno (-EINVAL
 * for a NULL addr or a negative backlog); and the bound address of fd.
 */
WEFT_EXTERN int weft_tcp_listen(const struct sockaddr *addr, socklen_t addrlen, int backlog);
WEFT_EXTERN int weft_local_port(int fd);

/* Accept one connection (yields the fd; SOCK_CLOEXEC is added). addr and
 * addrlen may be NULL. */
WEFT_EXTERN weft_poll weft_accept(weft_cx *cx, weft_io *io, int fd, struct sockaddr *addr,
                                  socklen_t *addrlen, int flags);

/*
 * Accept connections on fd until stopped, with one multishot accept (one
 * submission for any number of connections, re-armed whenever the kernel
 * ends it): each accepted socket (SOCK_CLOEXEC) is passed to fn(arg, fd),
 * which owns it from then on. fn runs on a worker thread outside any task,
 * between tasks, so it must not block: spawn a task for the connection
 * (closing the fd if the spawn fails), or close it. The await never yields a
 * value >= 0: it yields the error that ended accepting (accept(2)'s errors:
 * -EMFILE, -ECONNABORTED, ...; await it again to go on), or -ECANCELED /
 * -ETIMEDOUT when withdrawn. `accepted` counts the connections handed to fn
 * by this await (read it once the await has finished). A deadline set on
 * `io` before the first poll bounds the whole loop. Start zeroed
 * (WEFT_ACCEPT_LOOP_INIT). -EINVAL for NULL cx, l or fn, or a negative fd.
 *
 * Cancellation contract: no connection is lost. Withdrawn (abort, token,
 * deadline, select loss, shutdown), the accept is cancelled in the kernel;
 * every connection the kernel accepted before the cancel took effect,
 * including those accepted after the withdrawal was asked for, is still
 * passed to fn before the await yields -ECANCELED. The task is not resumed
 * or freed, and fn and arg stay in use, until then; a torn-down task's fn
 * keeps receiving them the same way. Connections still in the listen
 * backlog stay there for the next accept.
 */
typedef void weft_accept_fn(void *arg, int fd);

typedef struct weft_accept_loop {
    weft_io io;
    uint64_t accepted;          /* read-only: connections handed to fn */
    uint64_t weft_deadline;     /* private */
    uint32_t weft_running;      /* private */
} weft_accept_loop;

#define WEFT_ACCEPT_LOOP_INIT { WEFT_IO_INIT, 0, 0, 0 }

WEFT_EXTERN weft_poll weft_accept_each(weft_cx *cx, weft_accept_loop *l, int fd,
                                       weft_accept_fn *fn, void *arg);

WEFT_EXTERN weft_poll weft_connect(weft_cx *cx, weft_io *io, int fd,
                                   const struct sockaddr *addr, socklen_t addrlen);

/* Yield the bytes transferred (0 from recv: the peer closed). A len above
 * 0x7ffff000 is shortened to that (one transfer's limit): a short count. */
WEFT_EXTERN weft_poll weft_recv(weft_cx *cx, weft_io *io, int fd, void *buf, size_t len,
                                int flags);
WEFT_EXTERN weft_poll weft_send(weft_cx *cx, weft_io *io, int fd, const void *buf, size_t len,
                                int flags);

/* Datagrams. recvfrom fills *addrlen (in: the room at addr) when addr is set. */
WEFT_EXTERN weft_poll weft_sendto(weft_cx *cx, weft_io *io, int fd, const void *buf, size_t len,
                                  int flags, const struct sockaddr *addr, socklen_t addrlen);
WEFT_EXTERN weft_poll weft_recvfrom(weft_cx *cx, weft_io *io, int fd, void *buf, size_t len,
                                    int flags, struct sockaddr *addr, socklen_t *addrlen);

/* shutdown(2) (SHUT_RD, SHUT_WR, SHUT_RDWR). */
WEFT_EXTERN weft_poll weft_shutdown(weft_cx *cx, weft_io *io, int fd, int how);

/* ---- Files ----------------------------------------------------------------------- */

/* Yields the fd; O_CLOEXEC is added. */
WEFT_EXTERN weft_poll weft_openat(weft_cx *cx, weft_io *io, int dirfd, const char *path,
                                  int flags, mode_t mode);

/* offset -1: at (and advancing) the file position, like read(2)/write(2). */
WEFT_EXTERN weft_poll weft_read(weft_cx *cx, weft_io *io, int fd, void *buf, size_t len,
                                int64_t offset);
WEFT_EXTERN weft_poll weft_write(weft_cx *cx, weft_io *io, int fd, const void *buf, size_t len,
                                 int64_t offset);
WEFT_EXTERN weft_poll weft_readv(weft_cx *cx, weft_io *io, int fd, const struct iovec *iov,
                                 int iovcnt, int64_t offset);
WEFT_EXTERN weft_poll weft_writev(weft_cx *cx, weft_io *io, int fd, const struct iovec *iov,
                                  int iovcnt, int64_t offset);

/* datasync: only the data (fdatasync), not all metadata. */
WEFT_EXTERN weft_poll weft_fsync(weft_cx *cx, weft_io *io, int fd, bool datasync);

WEFT_EXTERN weft_poll weft_statx(weft_cx *cx, weft_io *io, int dirfd, const char *path,
                                 int flags, unsigned mask, struct statx *out);

/*
 * Close any fd. A release operation (weft/task.h): awaited by a task that has
 * a cancellation pending, it still closes the fd and yields close's result;
 * the cancellation is delivered at the task's next await. It is never
 * withdrawn once started. The fd is gone once the close is started, even if
 * the task is torn down before it sees the result: a drop hook that closes
 * what the frame still holds must find it cleared (clear the field before
 * the await).
 *
 * The macro makes the expression a weft_release, which is what tells
 * WEFT_AWAIT to make it; call (weft_close)(...) for the plain weft_poll.
 */
WEFT_EXTERN weft_poll weft_close(weft_cx *cx, weft_io *io, int fd);
#define weft_close(cx, io, fd) WEFT_RELEASE(weft_close(cx, io, fd))

/* ---- Whole transfers ------------------------------------------------------------- */

/*
 * Send all len bytes, or receive exactly len bytes, in as many operations as
 * it takes. Yields len, or a negative errno: -EPIPE when the peer closed
 * before recv_exact got len bytes, -ECANCELED / -ETIMEDOUT when withdrawn.
 * `done` says how many bytes went through either way (read-only). A deadline
 * set on `io` covers the whole transfer. Start each transfer zeroed
 * (WEFT_XFER_INIT): an await that delivers a cancellation before the transfer
 * was ever polled yields -ECANCELED and leaves `done` as it was.
 */
typedef struct weft_xfer {
    weft_io io;
    size_t done;            /* read-only: bytes transferred so far */
    uint64_t weft_deadline; /* private */
    uint32_t weft_running;  /* private */
} weft_xfer;

#define WEFT_XFER_INIT { WEFT_IO_INIT, 0, 0, 0 }

WEFT_EXTERN weft_poll weft_send_all(weft_cx *cx, weft_xfer *x, int fd, const void *buf,
                                    size_t len);
WEFT_EXTERN weft_poll weft_recv_exact(weft_cx *cx, weft_xfer *x, int fd, void *buf, size_t len);

/* ---- File to socket ------------------------------------------------------------- */

/*
 * Send count bytes of file_fd, from offset, on the socket sock_fd without
 * copying them through user memory: splice(2) from the file into a pipe the
 * transfer owns, then from the pipe into the socket, up to 64 KiB at a time.
 * file_fd's own position is neither used nor moved. Yields the bytes sent:
 * count, or fewer when the file ends first (0 for an offset at or past its
 * end), or a negative errno. `done` says how many bytes reached the socket
 * whatever the ending (read-only); a deadline set on `io` before the first
 * poll covers the whole transfer. Start each transfer zeroed
 * (WEFT_SENDFILE_OP_INIT).
 *
 * Cancellation contract: a withdrawal (abort, token, deadline, select loss,
 * shutdown) reaches the splice in flight, as for any operation; bytes it
 * moved before the withdrawal took effect are counted. The await yields
 * -ECANCELED (-ETIMEDOUT for the deadline) with `done` exact: the first
 * `done` bytes were sent, none after them. Bytes already read into the pipe
 * but not sent are dropped, so a caller that resumes sends from
 * offset + done. Before each further splice the transfer checks
 * weft_cx_cancel_due and stops. The pipe is closed on every ending,
 * a cancel-safe tear-down included: nothing leaks.
 *
 * A peer that has gone yields -EPIPE: since splice cannot pass MSG_NOSIGNAL,
 * the first call sets SIGPIPE to SIG_IGN if it still has its default action
 * (as servers usually do anyway). -EINVAL for NULL or a negative fd;
 * splice's errors for fds it refuses (-ESPIPE or -EINVAL for a file_fd
 * that cannot be read at an offset, such as a socket).
 */
typedef struct weft_sendfile_op {
    weft_io io;
    uint64_t done;              /* read-only: bytes that reached the socket */
    uint64_t weft_off;          /* private: file offset of the next read */
    uint64_t weft_left;         /* private: file bytes not yet read */
    uint64_t weft_deadline;     /* private */
    uint32_t weft_piped;        /* private: bytes in the pipe, not yet sent */
    int weft_pipe[2];           /* private: valid while weft_running */
    uint32_t weft_running;      /* private */
} weft_sendfile_op;

#define WEFT_SENDFILE_OP_INIT { WEFT_IO_INIT, 0, 0, 0, 0, 0, { 0, 0 }, 0 }

WEFT_EXTERN weft_poll weft_sendfile(weft_cx *cx, weft_sendfile_op *s, int sock_fd, int file_fd,
                                    uint64_t offset, size_t count);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_IO_H */
