/*
 * examples/http/conn.c - weft-http's connection task (see http.h): reads
 * requests through a buffered reader, answers them in order through a
 * buffered writer, and serves files below the root.
 *
 * Deadlines are deadline scopes (weft/scope.h), not settings repeated before
 * each operation. The connection's scope (--conn-ms) is opened first and
 * bounds every await of the task's life. Nested in it, one phase scope at a
 * time (conn_phase): idle (--idle-ms) until the next request's first line
 * is complete or the drain comes; the request (--request-ms) from its
 * headers to the last byte of its response handed to the socket; the
 * linger after a refusal. A client that trickles bytes cannot stretch
 * either: the scope bounds the whole phase, not each wait in it, and every
 * await in it (reads, the file's open and reads, writes, flushes) yields
 * -ETIMEDOUT once it has passed. Pipelined requests are simply the reader's
 * leftover bytes: the next request is parsed from them without waiting, and
 * responses are flushed only when no whole request is left buffered, so a
 * pipelined batch goes out in one send, and a request still arriving never
 * holds back the responses before it.
 *
 * Every way out ends at WEFT_RETURN(conn_end(...)), which closes the
 * scopes; conn_drop closes the socket and an open file, frees the streams
 * and gives the permit and the wait-group count back, once.
 */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* What a refused request may still send that we read and drop before
 * closing, so that the client sees our answer rather than a reset. */
#define LINGER_BYTES (64 * 1024)

/* ---- between awaits ---------------------------------------------------------- */

/* Set up the streams (inside the task: spawning copies the frame) and open
 * the connection's scope, with a first phase nested in it. */
static int conn_setup(weft_cx *cx, struct http_conn *c)
{
    if (weft_reader_init(&c->rd, c->fd, NULL, c->srv->max_header) < 0
        || weft_writer_init(&c->wr, c->fd, NULL, HTTP_WRITE_BUF) < 0)
        return -ENOMEM;
    uint64_t life = c->srv->conn_ns ? weft_now_ns() + c->srv->conn_ns : WEFT_SCOPE_NEVER;
    if (weft_scope_enter(cx, &c->life, life) < 0
        || weft_scope_enter(cx, &c->phase, WEFT_SCOPE_NEVER) < 0)
        return -EINVAL;
    return 0;
}

/*
 * End the current phase and start one that may last phase_ns (0: unbounded).
 * Its scope is nested in the connection's, so the earlier of the two
 * deadlines wins. Fails (-EINVAL) only on misuse.
 */
static int conn_phase(weft_cx *cx, struct http_conn *c, uint64_t phase_ns)
{
    if (weft_scope_exit(cx, &c->phase) < 0)
        return -EINVAL;
    return weft_scope_enter(cx, &c->phase, phase_ns ? weft_now_ns() + phase_ns
                                                    : WEFT_SCOPE_NEVER);
}

/* The select of the idle phase: the next request's first line, or the
 * drain. A line read first wins (branches are polled in order). */
static weft_poll idle_branch(weft_cx *cx, void *frame, unsigned i)
{
    struct http_conn *c = frame;
    if (i == 0)
        return weft_read_line(cx, &c->rd, &c->line, &c->len);
    return weft_token_cancelled(cx, c->srv->drain, &c->drain_wait);
}

/* After the request line was awaited into c->n (> 0, or -EMSGSIZE): 0 to
 * read the headers, or the status to answer with. */
static int conn_request_line(struct http_conn *c)
{
    if (c->n > 0)
        return http_parse_request_line(c->line, c->len, &c->req);
    memset(&c->req, 0, sizeof c->req);  /* nothing of it was parsed */
    return 414;
}

/* After a header line was awaited into c->n: update c->status (-1 when the
 * connection ended, c->n saying how) and c->in_headers. A request refused
 * for its path (403) still has its headers read, so the connection can go
 * on with the next request; any other refusal closes it. */
static void conn_header(struct http_conn *c)
{
    int rc;
    if (c->n == -EMSGSIZE)
        rc = 431;
    else if (c->n <= 0)
        rc = -1;
    else if ((c->req.header_bytes += (size_t)c->n) > c->srv->max_header)
        rc = 431;
    else if (c->len > 0)
        rc = http_parse_header(c->line, c->len, &c->req);
    else
        rc = http_finish_request(&c->req);
    if (rc != 0 || c->len == 0) {
        c->in_headers = false;
        if (rc != 0 || c->status == 0)
            c->status = rc ? rc : 200;
    }
}

/* After the openat awaited into c->n: 200 with c->file and c->size set,
 * the status to answer with, or -1 when the request ran out of time or was
 * cancelled (the connection ends with c->n). */
static int conn_opened(struct http_conn *c)
{
    if (c->n == -ETIMEDOUT || c->n == -ECANCELED)
        return -1;
    if (c->n < 0)
        return c->n == -ENOENT || c->n == -ENOTDIR || c->n == -ENAMETOOLONG || c->n == -ELOOP
            ? 404 : c->n == -EACCES || c->n == -EPERM ? 403 : 500;
    int fd = (int)c->n;
    struct stat st;
    /* O_NONBLOCK kept a FIFO from blocking the open. A regular file keeps
     * it (one syscall less per request) until a read finds its pages
     * uncached: see conn_read_blocking. */
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 403;             /* a directory without '/', a device, ... */
    }
    c->file = fd;
    c->size = (uint64_t)st.st_size;
    return 200;
}

/* Format the response head for c->status into c->head (an error's short
 * body too); decide keep-alive. Returns the bytes to write. */
static size_t conn_head(struct http_conn *c)
{
    int s = c->status;
    /* A refusal other than 403/404 may leave unread request bytes behind. */
    c->keep_alive = (s == 200 || s == 403 || s == 404) && http_keep_alive(&c->req)
                    && !weft_token_is_cancelled(c->srv->drain);
    if (s == 200) {
        c->sent = 0;
        if (c->req.method == HTTP_HEAD)
            c->sent = c->size;  /* nothing of the body to send */
        return http_format_head(c->head, sizeof c->head, 200, http_content_type(c->req.path),
                                c->size, c->keep_alive);
    }
    char text[64];
    int tn = snprintf(text, sizeof text, "%d %s\n", s, http_reason(s));
    size_t n = http_format_head(c->head, sizeof c->head, s, "text/plain", (uint64_t)tn,
                                c->keep_alive);
    if (c->req.method != HTTP_HEAD && n + (size_t)tn < sizeof c->head) {
        memcpy(c->head + n, text, (size_t)tn);
        n += (size_t)tn;
    }
    return n;
}

/* A read of the file yielded -EAGAIN: its pages are not cached and the
 * file is still O_NONBLOCK (kernels whose io_uring honours O_NONBLOCK on a
 * regular file fail such a read instead of waiting for the disk). True when it is now blocking (read again: the
 * kernel's async worker will wait for the disk), false when it already was
 * (the error stands). */
static bool conn_read_blocking(struct http_conn *c)
{
    int flags = fcntl(c->file, F_GETFL);
    return flags >= 0 && (flags & O_NONBLOCK) && fcntl(c->file, F_SETFL, flags & ~O_NONBLOCK) == 0;
}

/* Bytes of the file's next chunk. */
static size_t conn_chunk(const struct http_conn *c)
{
    uint64_t left = c->size - c->sent;
    return left < sizeof c->chunk ? (size_t)left : sizeof c->chunk;
}

/* True when the reader holds a whole next request (its blank line is
 * buffered): it is answered without waiting, so the responses before it may
 * stay in the writer and go out with its own. With less, the next read may
 * wait, and the client may be waiting for those responses first. */
static bool conn_request_buffered(const struct http_conn *c)
{
    const char *p, *q, *end;
    size_t n = weft_reader_buffered(&c->rd, &p);
    if (n == 0)
        return false;
    for (q = p, end = p + n; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
        if ((end - q > 1 && q[1] == '\n') || (end - q > 2 && q[1] == '\r' && q[2] == '\n'))
            return true;
    return false;
}

/* The response is out (in the writer, at least): count it, close the file. */
static void conn_done(struct http_conn *c)
{
    if (c->file >= 0) {
        close(c->file);         /* a read-only regular file: never blocks */
        c->file = -1;
    }
    c->requests++;
    if (c->status >= 400)
        atomic_fetch_add_explicit(&c->srv->errors, 1, memory_order_relaxed);
}

/* The task's result: 0 for a connection that ended normally (EOF, close
 * after a response, drained, the linger over), else the error that cut it.
 * Closes the scopes first, innermost first, rather than leave them to the
 * task's end: so closed, a scope still says whether its own deadline
 * expired (weft_scope_expired). An exit of a scope the setup never opened
 * is refused, harmlessly. */
static weft_poll conn_end(weft_cx *cx, struct http_conn *c, weft_poll err)
{
    weft_scope_exit(cx, &c->phase);
    weft_scope_exit(cx, &c->life);
    if (err == -ETIMEDOUT)
        atomic_fetch_add_explicit(&c->srv->timeouts, 1, memory_order_relaxed);
    else if (err == -ECANCELED)
        atomic_fetch_add_explicit(&c->srv->cut, 1, memory_order_relaxed);
    return err < 0 ? err : 0;
}

/* ---- the task ------------------------------------------------------------------ */

static weft_poll conn_poll(weft_cx *cx, void *frame)
{
    struct http_conn *c = frame;
    WEFT_BEGIN(&c->f);
    c->n = conn_setup(cx, c);
    if (c->n < 0)
        WEFT_RETURN(&c->f, conn_end(cx, c, c->n));
    for (;;) {
        /* Idle: wait for the next request, unless one is buffered. */
        if (conn_phase(cx, c, c->srv->idle_ns) < 0)
            WEFT_RETURN(&c->f, conn_end(cx, c, -EINVAL));
        c->status = 0;
        if (weft_reader_buffered(&c->rd, NULL) == 0) {
            WEFT_SELECT_AWAIT(&c->f, c->n, &c->sel, 2, idle_branch, c);
            if (weft_select_winner(&c->sel) == 1) {
                c->n = 0;       /* drained while idle: close */
                break;
            }
        } else {
            WEFT_AWAIT(&c->f, c->n, weft_read_line(cx, &c->rd, &c->line, &c->len));
        }
        if (c->n <= 0 && c->n != -EMSGSIZE)
            break;              /* EOF, a deadline, a cancellation, an error */

        /* The request: its line, its headers, then the answer. */
        if (conn_phase(cx, c, c->srv->request_ns) < 0)
            WEFT_RETURN(&c->f, conn_end(cx, c, -EINVAL));
        c->status = conn_request_line(c);
        c->in_headers = c->status == 0 || c->status == 403;
        while (c->in_headers) {
            WEFT_AWAIT(&c->f, c->n, weft_read_line(cx, &c->rd, &c->line, &c->len));
            conn_header(c);
        }
        if (c->status < 0)
            break;
        if (c->status == 200) {
            WEFT_AWAIT(&c->f, c->n, weft_openat(cx, &c->io, c->srv->root_fd, c->req.path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0));
            c->status = conn_opened(c);
            if (c->status < 0)
                break;
        }
        c->len = conn_head(c);
        WEFT_AWAIT(&c->f, c->n, weft_write_all(cx, &c->wr, c->head, c->len));
        if (c->n < 0)
            break;
        /* The body: read a chunk, write it (a file that shrank cuts it).
         * Not weft_sendfile: its splices all run in io-wq threads, which
         * costs more context switches and no less CPU than the copy
         * (docs/io_uring.md, "splice"). */
        while (c->status == 200 && c->sent < c->size) {
            WEFT_AWAIT(&c->f, c->n, weft_read(cx, &c->io, c->file, c->chunk, conn_chunk(c), (int64_t)c->sent));
            if (c->n == -EAGAIN && conn_read_blocking(c))
                continue;
            if (c->n <= 0)
                break;
            c->len = (size_t)c->n;
            WEFT_AWAIT(&c->f, c->n, weft_write_all(cx, &c->wr, c->chunk, c->len));
            if (c->n != (weft_poll)c->len)
                break;
            c->sent += c->len;
        }
        if (c->status == 200 && c->sent < c->size) {
            c->n = c->n < 0 ? c->n : -EIO;      /* half a response: close */
            break;
        }
        conn_done(c);
        if (!c->keep_alive)
            break;
        if (!conn_request_buffered(c)) {
            WEFT_AWAIT(&c->f, c->n, weft_flush(cx, &c->wr));
            if (c->n < 0)
                break;
        }
    }
    if (c->n < 0)
        WEFT_RETURN(&c->f, conn_end(cx, c, c->n));  /* the drop closes */
    WEFT_AWAIT(&c->f, c->n, weft_flush(cx, &c->wr));
    if (c->n < 0 || c->status < 400 || c->keep_alive)
        WEFT_RETURN(&c->f, conn_end(cx, c, c->n));
    /* Refused: read and drop what the client still sends, for a while. */
    if (conn_phase(cx, c, c->srv->linger_ns) < 0)
        WEFT_RETURN(&c->f, conn_end(cx, c, -EINVAL));
    WEFT_AWAIT(&c->f, c->n, weft_shutdown(cx, &c->io, c->fd, SHUT_WR));
    for (c->sent = 0; c->sent < LINGER_BYTES; c->sent += (uint64_t)c->n) {
        WEFT_AWAIT(&c->f, c->n, weft_read_some(cx, &c->rd, c->chunk, sizeof c->chunk));
        if (c->n <= 0)
            break;
    }
    WEFT_RETURN(&c->f, conn_end(cx, c, 0));
    WEFT_END(&c->f);
}

/* Runs once per conn task, after it returned or was torn down, and only
 * once the kernel has finished with its frame. */
static void conn_drop(void *frame)
{
    struct http_conn *c = frame;
    struct http_server *srv = c->srv;
    weft_reader_destroy(&c->rd);
    weft_writer_destroy(&c->wr);
    if (c->file >= 0)
        close(c->file);
    close(c->fd);
    atomic_fetch_add_explicit(&srv->requests, c->requests, memory_order_relaxed);
    weft_semaphore_release(&srv->limit, 1);
    weft_waitgroup_done(&srv->live);    /* last: main may return after it */
}

void http_conn_task(struct http_server *srv, int fd, struct http_conn *frame,
                    weft_task_desc *desc)
{
    /* Responses go out whole (the writer gathers them): no Nagle delay. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *frame = (struct http_conn){ .srv = srv, .fd = fd, .file = -1,
                                 .rd = WEFT_READER_INIT, .wr = WEFT_WRITER_INIT,
                                 .sel = WEFT_SELECTOR_INIT, .drain_wait = WEFT_TOKEN_WAIT_INIT,
                                 .io = WEFT_IO_INIT, .life = WEFT_SCOPE_INIT,
                                 .phase = WEFT_SCOPE_INIT };
    *desc = WEFT_TASK(conn_poll, frame);
    desc->drop = conn_drop;
    desc->name = "http-conn";
    desc->tokens = &srv->stop;
    desc->ntokens = 1;
    weft_waitgroup_add(&srv->live, 1);
}

void http_conn_unadmit(struct http_server *srv, int fd)
{
    /* A failed spawn never calls the drop hook: undo its work here. */
    close(fd);
    weft_semaphore_release(&srv->limit, 1);
    weft_waitgroup_done(&srv->live);
}
