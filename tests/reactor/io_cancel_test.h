/*
 * tests/reactor/io_cancel_test.h - the machinery shared by the I/O withdrawal tests
 * (test_io_cancel_every.c, test_io_cancel_race.c, test_io_cancel_many.c):
 *
 *   make(threads)             a runtime with a short shutdown grace; resets
 *                             iot_drops
 *   enum kind / enum how      the blocking operations (accept, recv, send on a
 *                             full Unix stream, connect to a full backlog, read
 *                             of an empty pipe, openat of a FIFO, sleep,
 *                             recv_exact, send_all) and the ways to stop one
 *   struct blocker            a task that runs one such operation
 *                             (blocker_poll), its result in a struct bres
 *   fixture_up / fixture_down the resource an operation of each kind blocks on
 *   wait_in_kernel(n, what)   wait until the operations are in the kernel
 *   read_to_eof(fd)           drain a socket to EOF, counting the bytes
 *   check_resource(...)       after a stop: nothing unreported happened
 *
 * Everything is static inline, so a test file that uses only part of it
 * builds warning-free.
 */
#ifndef WEFT_TESTS_REACTOR_IO_CANCEL_TEST_H
#define WEFT_TESTS_REACTOR_IO_CANCEL_TEST_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "io_test.h"
#include "reactor/op.h"
#include "test_util.h"

#define TMO (30 * IOT_MS)
#define BIG (1u << 20)

static char big[BIG];

static inline weft_runtime *make(unsigned threads)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = threads, .shutdown_grace_ms = 100 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    atomic_store(&iot_drops, 0);
    return rt;
}

/* ---- one blocked operation, stopped one way ----------------------------------------- */

enum kind { K_ACCEPT, K_RECV, K_SEND, K_CONNECT, K_READ, K_OPENAT, K_SLEEP, K_RECV_EXACT,
            K_SEND_ALL, K_COUNT };
enum how { H_ABORT, H_TOKEN, H_TIMEOUT, H_DEADLINE, H_SAFE_ABORT, H_SAFE_TOKEN, H_COUNT };

static const char *const kind_name[] = { "accept", "recv", "send", "connect", "read", "openat",
                                         "sleep", "recv_exact", "send_all" };
static const char *const how_name[] = { "abort", "token", "timeout", "deadline", "safe-abort",
                                        "safe-token" };

struct bres {
    uint64_t elapsed;
    size_t done;
    weft_poll rc;
    bool ended;                 /* the poll reached its return */
};

struct blocker {
    weft_frame f;
    int kind, how, fd;
    const char *path;
    struct sockaddr_in sa;
    socklen_t salen;
    weft_io io;
    weft_xfer x;
    weft_sleep sl;
    uint64_t t0;
    weft_poll rc;
    flag *started;              /* bumped just before the operation */
    flag *armed;                /* optional: bumped once it first waits */
    bool was_armed;
    struct bres *res;
    char buf[256];
};

static inline weft_poll blocker_op(weft_cx *cx, struct blocker *b)
{
    weft_poll r;
    if (b->kind == K_ACCEPT) {
        r = weft_accept(cx, &b->io, b->fd, (struct sockaddr *)&b->sa, &b->salen, 0);
    } else if (b->kind == K_RECV) {
        r = weft_recv(cx, &b->io, b->fd, b->buf, sizeof b->buf, 0);
    } else if (b->kind == K_SEND) {
        r = weft_send(cx, &b->io, b->fd, b->buf, sizeof b->buf, 0);
    } else if (b->kind == K_CONNECT) {
        r = weft_connect(cx, &b->io, b->fd, (struct sockaddr *)&b->sa, sizeof b->sa);
    } else if (b->kind == K_READ) {
        r = weft_read(cx, &b->io, b->fd, b->buf, sizeof b->buf, -1);
    } else if (b->kind == K_OPENAT) {
        /* O_CREAT keeps io_uring from its non-blocking first attempt (which
         * opens a FIFO at once), so the open waits for a writer in io-wq. */
        r = weft_openat(cx, &b->io, AT_FDCWD, b->path, O_RDONLY | O_CREAT, 0600);
    } else if (b->kind == K_SLEEP) {
        r = weft_sleep_for(cx, &b->sl, IOT_HOUR);
    } else if (b->kind == K_RECV_EXACT) {
        r = weft_recv_exact(cx, &b->x, b->fd, b->buf, 100);
    } else {
        r = weft_send_all(cx, &b->x, b->fd, big, BIG);
    }
    /* Waiting now: the operation was submitted (a sleep: armed on the wheel).
     * Whether it has reached the kernel the test sees for itself
     * (wait_in_kernel). */
    if (r == WEFT_PENDING && !b->was_armed) {
        b->was_armed = true;
        if (b->armed)
            flag_add(b->armed, 1);
    }
    return r;
}

static inline weft_poll blocker_poll(weft_cx *cx, void *p)
{
    struct blocker *b = p;
    WEFT_BEGIN(&b->f);
    b->t0 = weft_now_ns();
    weft_io *io = b->kind == K_RECV_EXACT || b->kind == K_SEND_ALL ? &b->x.io : &b->io;
    if (b->how == H_TIMEOUT && weft_io_timeout(io, TMO) != 0)
        WEFT_RETURN(&b->f, -EPROTO);
    if (b->how == H_DEADLINE && weft_io_deadline(io, b->t0 + TMO) != 0)
        WEFT_RETURN(&b->f, -EPROTO);
    b->salen = sizeof b->sa;
    flag_add(b->started, 1);
    WEFT_AWAIT(&b->f, b->rc, blocker_op(cx, b));
    if (!b->was_armed && b->armed)
        flag_add(b->armed, 1);  /* it never waited: do not leave the test waiting */
    b->res->elapsed = weft_now_ns() - b->t0;
    b->res->done = b->x.done;
    b->res->rc = b->rc;
    b->res->ended = true;
    if (b->rc >= 0 && (b->kind == K_ACCEPT || b->kind == K_OPENAT))
        close((int)b->rc);
    WEFT_RETURN(&b->f, b->rc);
    WEFT_END(&b->f);
}

struct fixture {
    int a, b;                   /* the operation's fd / its peer or pipe end */
    int listener, filler;       /* connect: the full backlog */
    char dir[64], fifo[96];
    long filled;
};

static inline void fixture_up(struct fixture *fx, int kind)
{
    memset(fx, 0, sizeof *fx);
    fx->a = fx->b = fx->listener = fx->filler = -1;
    struct sockaddr_in sa;
    int p[2];
    switch (kind) {
    case K_ACCEPT:
        fx->a = iot_listen(16, &sa);
        cr_assert_geq(fx->a, 0);
        break;
    case K_SEND:
        /* A socket that stays full: a filled loopback TCP socket does not
         * (its peer's window grows, late ACKs free room), and the send then
         * completes under load. A Unix stream frees room only when its peer
         * reads, and nobody does. */
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p), 0);
        fx->a = p[0];
        fx->b = p[1];
        fx->filled = iot_fill(fx->a);
        break;
    case K_RECV:
    case K_RECV_EXACT:
    case K_SEND_ALL:
        /* the task uses a; small buffers so 1 MiB cannot go out at once */
        cr_assert_eq(iot_tcp_pair_bufs(&fx->b, &fx->a, kind == K_SEND_ALL ? 8192 : 0), 0);
        if (kind == K_RECV_EXACT)
            cr_assert_eq(send(fx->b, big, 40, 0), 40);
        break;
    case K_CONNECT:
        cr_assert_eq(iot_full_backlog(&sa, &fx->listener, &fx->filler), 0);
        fx->a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fx->a, 0);
        break;
    case K_READ:
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        fx->a = p[0];
        fx->b = p[1];
        break;
    case K_OPENAT:
        strcpy(fx->dir, "/tmp/weft-iot-XXXXXX");
        cr_assert_not_null(mkdtemp(fx->dir));
        snprintf(fx->fifo, sizeof fx->fifo, "%s/fifo", fx->dir);
        cr_assert_eq(mkfifo(fx->fifo, 0600), 0);
        break;
    }
}

static inline void fixture_down(struct fixture *fx)
{
    int fds[] = { fx->a, fx->b, fx->listener, fx->filler };
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (fx->fifo[0]) {
        unlink(fx->fifo);
        rmdir(fx->dir);
    }
}

/*
 * Wait until the operations are in the kernel: per kind, how many (n[kind]).
 * The tasks have already said they wait (their `armed` flag); this waits for
 * what the kernel shows (io_test.h, "what the kernel holds"): a socket or
 * pipe operation armed on its file's poll queue, a FIFO openat's io-wq
 * thread asleep in fifo_open. A sleep never enters the kernel: armed on its
 * worker's wheel is all there is to wait for. recv_exact and send_all count
 * once their first recv or send has moved what it could at once and the next
 * one waits, so the progress they report is already made.
 */
static inline void wait_in_kernel(const int n[K_COUNT], const char *what)
{
    static const unsigned opcode[K_COUNT] = {
        [K_ACCEPT] = IORING_OP_ACCEPT, [K_RECV] = IORING_OP_RECV, [K_SEND] = IORING_OP_SEND,
        [K_CONNECT] = IORING_OP_CONNECT, [K_READ] = IORING_OP_READ,
        [K_RECV_EXACT] = IORING_OP_RECV, [K_SEND_ALL] = IORING_OP_SEND,
    };
    int per_op[IORING_OP_LAST] = { 0 };
    for (int k = 0; k < K_COUNT; k++)
        if (opcode[k])
            per_op[opcode[k]] += n[k];
    for (unsigned op = 0; op < IORING_OP_LAST; op++)
        if (per_op[op])
            cr_assert(iot_wait_polls(op, per_op[op]),
                      "%s: %d operation(s) of io_uring opcode %u never waited in the kernel "
                      "(%d seen)", what, per_op[op], op, iot_ring_polls(op, NULL));
    if (n[K_OPENAT])
        cr_assert(iot_wait_threads_in(iot_fifo_open_wchan, n[K_OPENAT]),
                  "%s: %d FIFO openat(s) never waited in the kernel (%d seen)", what,
                  n[K_OPENAT], iot_threads_in(iot_fifo_open_wchan));
}

/* Read the socket until EOF; returns the byte count. */
static inline long read_to_eof(int fd)
{
    static char sink[65536];
    long total = 0;
    ssize_t n;
    while ((n = recv(fd, sink, sizeof sink, 0)) > 0)
        total += n;
    return total;
}

/* After the operation was stopped: nothing it did not report happened. */
static inline void check_resource(struct fixture *fx, int kind, bool reported, weft_poll rc,
                                  const struct bres *res, const char *what)
{
    char buf[128];
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    switch (kind) {
    case K_ACCEPT: {          /* the listener still hands out the next client */
        cr_assert_eq(getsockname(fx->a, (struct sockaddr *)&sa, &len), 0);
        int c = iot_connect(&sa);
        cr_assert_geq(c, 0, "%s", what);
        int s = accept4(fx->a, NULL, NULL, SOCK_CLOEXEC);
        cr_assert_geq(s, 0, "%s", what);
        close(s);
        close(c);
        break;
    }
    case K_RECV:              /* the cancelled recv took nothing */
        cr_assert_eq(send(fx->b, "fresh", 5, 0), 5);
        cr_assert_eq(recv(fx->a, buf, sizeof buf, 0), 5, "%s", what);
        cr_assert_eq(memcmp(buf, "fresh", 5), 0, "%s", what);
        break;
    case K_SEND: {            /* the cancelled send put nothing on the wire */
        close(fx->a);
        fx->a = -1;
        long got = read_to_eof(fx->b);
        if (reported)
            cr_assert_eq(got, fx->filled + (rc > 0 ? rc : 0), "%s: %ld vs %ld", what, got,
                         fx->filled);
        break;
    }
    case K_READ:
        cr_assert_eq(write(fx->b, "abc", 3), 3);
        cr_assert_eq(read(fx->a, buf, sizeof buf), 3, "%s", what);
        break;
    case K_OPENAT: {          /* no reader is left behind on the FIFO */
        int w = open(fx->fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        int err = errno;
        if (w >= 0)
            close(w);
        cr_assert(w < 0 && err == ENXIO, "%s: a reader still holds the FIFO", what);
        break;
    }
    case K_RECV_EXACT:        /* done counts the 40 bytes; the rest is still there */
        if (reported)
            cr_assert_eq(res->done, 40, "%s: done %zu", what, res->done);
        cr_assert_eq(send(fx->b, big + 40, 60, 0), 60);
        cr_assert_eq(recv(fx->a, buf, 60, MSG_WAITALL), 60, "%s", what);
        cr_assert_eq(memcmp(buf, big + 40, 60), 0, "%s", what);
        break;
    case K_SEND_ALL: {        /* the peer got exactly `done` bytes */
        close(fx->a);
        fx->a = -1;
        long got = read_to_eof(fx->b);
        if (reported)
            cr_assert_eq((size_t)got, res->done, "%s: peer got %ld, done %zu", what, got,
                         res->done);
        break;
    }
    }
}

#endif
