/*
 * tests/reactor/test_io_cancel.c - withdrawing I/O operations (weft/io.h,
 * reactor/op.c). For every blocking operation - accept, recv, send on a full
 * (Unix stream) socket, connect to a full backlog, read of an empty pipe,
 * openat of a FIFO with no writer, sleep, recv_exact and send_all - every way
 * to stop it: abort and token (cooperative: the await yields -ECANCELED), a
 * relative and an absolute deadline (-ETIMEDOUT, never early), and tear-down
 * of a WEFT_TASK_CANCEL_SAFE task by abort or token. Each time the join outcome,
 * the drop hook (exactly once), the resource (nothing consumed or sent by a
 * cancelled operation) and the fd count are checked.
 *
 * Then the races, looped: a recv aborted as data arrives (either -ECANCELED
 * and the bytes are still in the socket, or the real count - never lost); an
 * accept aborted as a client connects (the fd is either returned, or still
 * queued, or closed by weft - never leaked), cooperative and cancel-safe; the
 * same withdrawals made from a task on the other worker (the hand-off path of
 * op.c); and runtime shutdown with many operations in flight.
 *
 * Also: a task waiting on several operations at once (a select over a recv,
 * a pipe read, a sleep and an accept) withdrawn as a whole, alone and racing
 * data; a socket that completes after its task was torn down (closed by
 * weft); a send withdrawn half-way (it reports the bytes it sent, never
 * -ECANCELED); and a task polled on another worker while its operation is in
 * flight on the first, which that first worker's reap still wakes.
 *
 * "In flight" is seen, not guessed: an operation is stopped once the kernel
 * shows it waiting (io_test.h, "what the kernel holds"), never after a sleep.
 */
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

static weft_runtime *make(unsigned threads)
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

static weft_poll blocker_op(weft_cx *cx, struct blocker *b)
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

static weft_poll blocker_poll(weft_cx *cx, void *p)
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

static void fixture_up(struct fixture *fx, int kind)
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

static void fixture_down(struct fixture *fx)
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
static void wait_in_kernel(const int n[K_COUNT], const char *what)
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
static long read_to_eof(int fd)
{
    static char sink[65536];
    long total = 0;
    ssize_t n;
    while ((n = recv(fd, sink, sizeof sink, 0)) > 0)
        total += n;
    return total;
}

/* After the operation was stopped: nothing it did not report happened. */
static void check_resource(struct fixture *fx, int kind, bool reported, weft_poll rc,
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

static void stop_one(weft_runtime *rt, int kind, int how)
{
    char what[64];
    snprintf(what, sizeof what, "%s/%s", kind_name[kind], how_name[how]);
    struct fixture fx;
    fixture_up(&fx, kind);
    int fds0 = iot_fd_count();
    static flag started, armed;
    flag_set(&started, 0);
    flag_set(&armed, 0);
    struct bres res = { 0 };
    struct blocker b = { .kind = kind, .how = how, .fd = fx.a, .path = fx.fifo,
                         .started = &started, .armed = &armed, .res = &res,
                         .x = WEFT_XFER_INIT, .sl = WEFT_SLEEP_INIT };
    if (kind == K_CONNECT) {
        socklen_t l = sizeof b.sa;
        cr_assert_eq(getsockname(fx.listener, (struct sockaddr *)&b.sa, &l), 0);
    }
    weft_token *tok = NULL;
    cr_assert_eq(weft_token_new(&tok), 0);
    bool safe = how == H_SAFE_ABORT || how == H_SAFE_TOKEN;
    bool by_token = how == H_TOKEN || how == H_SAFE_TOKEN;
    bool by_time = how == H_TIMEOUT || how == H_DEADLINE;
    weft_task_desc d = { .poll = blocker_poll, .frame = &b, .frame_size = sizeof b,
                         .drop = iot_count_drop, .flags = safe ? WEFT_TASK_CANCEL_SAFE : 0,
                         .tokens = &tok, .ntokens = by_token ? 1 : 0 };
    int drops0 = atomic_load(&iot_drops);
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&started, 1);
    if (!by_time) {
        /* Stop it only once it waits in the kernel: what is under test is
         * the withdrawal of an operation in flight. (A deadline needs no
         * help; it may even withdraw the operation before it starts, if the
         * task was descheduled for TMO right here.) */
        flag_wait_ge(&armed, 1);
        int one[K_COUNT] = { 0 };
        one[kind] = 1;
        wait_in_kernel(one, what);
    }
    if (how == H_ABORT || how == H_SAFE_ABORT)
        cr_assert_eq(weft_abort(&h), 0, "%s", what);
    else if (by_token)
        cr_assert_eq(weft_token_cancel(tok), 0, "%s", what);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0, "%s", what);
    cr_assert_eq(atomic_load(&iot_drops), drops0 + 1, "%s: drop hook ran %d times", what,
                 atomic_load(&iot_drops) - drops0);
    weft_cancel_source src = by_token ? WEFT_CANCEL_TOKEN
                           : by_time ? WEFT_CANCEL_NONE : WEFT_CANCEL_ABORT;
    cr_assert_eq(out.cancel.source, src, "%s: source %d", what, out.cancel.source);
    if (safe) {
        cr_assert_eq(out.status, -ECANCELED, "%s: status %d", what, out.status);
        cr_assert_not(res.ended, "%s: a torn-down task was resumed", what);
    } else {
        cr_assert_eq(out.status, 0, "%s", what);
        cr_assert(res.ended);
        weft_poll want = by_time ? -ETIMEDOUT : -ECANCELED;
        /* expect, not assert: a wrong result must not hide the other checks */
        cr_expect_eq(out.value, want, "%s: the await yielded %lld (%s), not %lld", what,
                     (long long)out.value, weft_strerror((int)out.value), (long long)want);
        if (by_time)
            cr_assert_geq(res.elapsed, TMO, "%s: deadline fired early (%llu ns)", what,
                          (unsigned long long)res.elapsed);
        else
            cr_assert_not_null(out.cancel.delivered_at, "%s", what);
    }
    check_resource(&fx, kind, !safe, out.value, &res, what);
    /* check_resource closed the task's end of a send / send_all pair */
    int closed = (kind == K_SEND || kind == K_SEND_ALL) ? 1 : 0;
    cr_assert_eq(iot_fd_count(), fds0 - closed, "%s: fd count %d, was %d", what,
                 iot_fd_count(), fds0);
    weft_token_release(tok);
    fixture_down(&fx);
}

static void stop_every_way(int kind)
{
    int fds0 = iot_fd_count();
    weft_runtime *rt = make(2);
    for (int how = 0; how < H_COUNT; how++) {
        if (kind == K_SLEEP && (how == H_TIMEOUT || how == H_DEADLINE))
            continue;           /* a sleep has no I/O deadline */
        stop_one(rt, kind, how);
    }
    cr_assert_eq(weft_runtime_free(rt), 0);
    cr_assert_eq(iot_fd_count(), fds0, "fd count %d, was %d", iot_fd_count(), fds0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(io_cancel, accept_every_way) { stop_every_way(K_ACCEPT); }
Test(io_cancel, recv_every_way) { stop_every_way(K_RECV); }
Test(io_cancel, send_on_full_socket_every_way) { stop_every_way(K_SEND); }
Test(io_cancel, connect_to_full_backlog_every_way) { stop_every_way(K_CONNECT); }
Test(io_cancel, read_of_empty_pipe_every_way) { stop_every_way(K_READ); }
Test(io_cancel, openat_of_fifo_every_way) { stop_every_way(K_OPENAT); }
Test(io_cancel, sleep_every_way) { stop_every_way(K_SLEEP); }
Test(io_cancel, recv_exact_every_way_reports_progress) { stop_every_way(K_RECV_EXACT); }
Test(io_cancel, send_all_every_way_reports_progress) { stop_every_way(K_SEND_ALL); }

/* ---- recv aborted as data arrives: never lost ------------------------------------- */

struct rtask {
    weft_frame f;
    weft_io io;
    int fd;
    flag *started;
    unsigned char want[8], buf[8];
    weft_poll rc;
};

static weft_poll rtask_poll(weft_cx *cx, void *p)
{
    struct rtask *t = p;
    WEFT_BEGIN(&t->f);
    flag_add(t->started, 1);
    WEFT_AWAIT(&t->f, t->rc, weft_recv(cx, &t->io, t->fd, t->buf, sizeof t->buf, 0));
    if (t->rc > 0 && memcmp(t->buf, t->want, (size_t)t->rc) != 0)
        WEFT_RETURN(&t->f, -EPROTO);
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

static const unsigned char marker[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* Send a marker and read up to it: returns what was still queued before it. */
static size_t leftover_before_marker(int srv, int cli, unsigned char *out, size_t room)
{
    cr_assert_eq(send(cli, marker, sizeof marker, 0), (ssize_t)sizeof marker);
    size_t n = 0;
    for (;;) {
        cr_assert_lt(n, room, "more bytes queued than were ever sent");
        ssize_t r = recv(srv, out + n, 1, 0);
        cr_assert_eq(r, 1);
        n++;
        if (n >= sizeof marker && memcmp(out + n - sizeof marker, marker, sizeof marker) == 0)
            return n - sizeof marker;
    }
}

/* Either -ECANCELED with the bytes still queued, or the real count with the
 * rest still queued; `abort_rc` 1 means the task had finished first. */
static void check_recv_rule(int srv, int cli, const unsigned char want[8], weft_poll v,
                            int abort_rc, int *cancelled, int *delivered)
{
    cr_assert(v == -ECANCELED || (v >= 1 && v <= 8), "recv yielded %lld (%s)", (long long)v,
              weft_strerror((int)v));
    if (abort_rc == 1)
        cr_assert_gt(v, 0);
    unsigned char rest[64];
    size_t got = v > 0 ? (size_t)v : 0;
    size_t left = leftover_before_marker(srv, cli, rest, sizeof rest);
    cr_assert_eq(left, 8 - got, "recv reported %lld but %zu bytes are still queued: %s",
                 (long long)v, left, left < 8 - got ? "data lost" : "data duplicated");
    cr_assert_eq(memcmp(rest, want + got, left), 0);
    if (v < 0)
        (*cancelled)++;
    else
        (*delivered)++;
}

Test(io_cancel, recv_aborted_as_data_arrives_loses_nothing)
{
    weft_runtime *rt = make(2);
    int srv = -1, cli = -1;
    cr_assert_eq(iot_tcp_pair(&srv, &cli), 0);
    int fds0 = iot_fd_count();
    int cancelled = 0, delivered = 0;
    static flag started;
    uint32_t seed = 12345;
    enum { ROUNDS = 1500 };
    for (int i = 0; i < ROUNDS; i++) {
        struct rtask t = { .fd = srv, .started = &started };
        for (int k = 0; k < 8; k++)
            t.want[k] = (unsigned char)((i * 8 + k) % 251);
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(rtask_poll, &t), &h), 0);
        flag_wait_ge(&started, (uint32_t)i + 1);
        seed = seed * 1103515245u + 12345u;
        iot_spin((seed >> 8) % 20000);
        int ab;
        if (i % 2) {
            cr_assert_eq(send(cli, t.want, 8, 0), 8);
            iot_spin((seed >> 4) % 3000);
            ab = weft_abort(&h);
        } else {
            ab = weft_abort(&h);
            iot_spin((seed >> 4) % 3000);
            cr_assert_eq(send(cli, t.want, 8, 0), 8);
        }
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        cr_assert_eq(out.status, 0);
        check_recv_rule(srv, cli, t.want, out.value, ab, &cancelled, &delivered);
    }
    cr_log_info("recv race: %d cancelled, %d delivered", cancelled, delivered);
    cr_assert_eq(iot_fd_count(), fds0);
    close(srv);
    close(cli);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- accept aborted as a client connects: the fd never leaks --------------------------- */

static int local_port_of(int fd)
{
    return weft_local_port(fd);
}

static int peer_port_of(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (getpeername(fd, (struct sockaddr *)&sa, &len) != 0)
        return -errno;
    return ntohs(sa.sin_port);
}

enum accepted { ACC_RETURNED, ACC_QUEUED, ACC_CLOSED_BY_WEFT };

/* Where did the client's connection end up? v: what the await yielded (an fd,
 * or < 0). Exactly one of: returned to the task, still queued on the
 * listener, or accepted and closed by weft (the client sees EOF). */
static enum accepted settle_client(int listener, int client, weft_poll v)
{
    if (v >= 0) {
        cr_assert_eq(peer_port_of((int)v), local_port_of(client), "accepted someone else");
        close((int)v);
        return ACC_RETURNED;
    }
    struct pollfd p[2] = { { .fd = listener, .events = POLLIN }, { .fd = client, .events = POLLIN } };
    int r;
    do {
        r = poll(p, 2, 5000);  /* a safety net only: one of the two is due at once */
    } while (r < 0 && errno == EINTR);
    cr_assert_gt(r, 0, "the connection is neither queued nor closed: an accepted fd leaked");
    if (p[0].revents & POLLIN) {
        int s = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        cr_assert_geq(s, 0);
        cr_assert_eq(peer_port_of(s), local_port_of(client));
        close(s);
        return ACC_QUEUED;
    }
    char c;
    ssize_t n = recv(client, &c, 1, 0);
    cr_assert(n == 0 || (n < 0 && errno == ECONNRESET), "client got %zd", n);
    return ACC_CLOSED_BY_WEFT;
}

static void accept_race(bool cancel_safe, int rounds)
{
    weft_runtime *rt = make(2);
    struct sockaddr_in sa;
    int l = iot_listen(64, &sa);
    cr_assert_geq(l, 0);
    int fds0 = iot_fd_count();
    static flag started;
    atomic_store(&started.v, 0);
    int seen[3] = { 0 };
    uint32_t seed = 777;
    for (int i = 0; i < rounds; i++) {
        struct bres res = { 0 };
        struct blocker b = { .kind = K_ACCEPT, .how = -1, .fd = l, .started = &started,
                             .res = &res };
        weft_task_desc d = { .poll = blocker_poll, .frame = &b, .frame_size = sizeof b,
                             .drop = iot_count_drop,
                             .flags = cancel_safe ? WEFT_TASK_CANCEL_SAFE : 0 };
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &d, &h), 0);
        flag_wait_ge(&started, (uint32_t)i + 1);
        seed = seed * 1103515245u + 12345u;
        iot_spin((seed >> 8) % 20000);
        int c, ab;
        if (i % 2) {
            c = iot_connect(&sa);
            iot_spin((seed >> 4) % 3000);
            ab = weft_abort(&h);
        } else {
            ab = weft_abort(&h);
            iot_spin((seed >> 4) % 3000);
            c = iot_connect(&sa);
        }
        cr_assert_geq(c, 0);
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        enum accepted where;
        if (out.status == -ECANCELED) {
            cr_assert(cancel_safe);
            where = settle_client(l, c, -1);
        } else {
            /* A cancel-safe task returns only if the abort found it finished
             * (ab == 1) or arrived during its last poll, the one that took
             * the accepted fd ("not resumed after its current poll"): either
             * way the accept won and a torn-down await never yields. */
            cr_assert(!cancel_safe || (out.value >= 0 && res.ended),
                      "cancel-safe task returned %lld (abort: %d)", (long long)out.value, ab);
            cr_assert(out.value >= 0 || out.value == -ECANCELED, "accept yielded %lld",
                      (long long)out.value);
            /* the task closed a returned fd itself; its client then sees EOF */
            where = settle_client(l, c, -1);
            if (out.value >= 0)
                cr_assert_eq(where, ACC_CLOSED_BY_WEFT, "the task's fd was also queued?");
            else
                cr_assert_eq(where, ACC_QUEUED, "-ECANCELED, yet the connection was taken");
            if (out.value >= 0)
                where = ACC_RETURNED;
        }
        seen[where]++;
        close(c);
    }
    cr_log_info("accept race (%s): returned %d, queued %d, closed by weft %d",
                cancel_safe ? "cancel-safe" : "cooperative", seen[0], seen[1], seen[2]);
    cr_assert_eq(atomic_load(&iot_drops), rounds);
    cr_assert_eq(iot_fd_count(), fds0, "fd count %d, was %d", iot_fd_count(), fds0);
    close(l);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(io_cancel, accept_aborted_as_client_connects_cooperative)
{
    accept_race(false, 600);
}

Test(io_cancel, accept_torn_down_as_client_connects_closes_late_fd)
{
    accept_race(true, 600);
}

/* ---- withdrawals made on the other worker (op.c: hand_to_owner) ------------------------ */

struct hshared {
    flag started;
    _Atomic int owner;          /* the worker whose ring holds the op */
    _Atomic int polls;
    _Atomic int poll_worker[4];
    _Atomic int claimed;        /* an aborter has acted */
    weft_join *target;
    weft_token *tok;
};

struct htarget {
    weft_frame f;
    weft_io io;
    bool accept, noted;
    int fd;
    unsigned char buf[8];
    weft_poll rc;
    struct hshared *sh;
};

/* The operation, noting the owner once it has been started. */
static weft_poll htarget_op(weft_cx *cx, struct htarget *t)
{
    weft_poll r = t->accept ? weft_accept(cx, &t->io, t->fd, NULL, NULL, 0)
                            : weft_recv(cx, &t->io, t->fd, t->buf, sizeof t->buf, 0);
    if (r == WEFT_PENDING && !t->noted) {
        t->noted = true;
        atomic_store(&t->sh->owner, (int)weft__io_of(&t->io)->owner);
        flag_add(&t->sh->started, 1);
    }
    return r;
}

static weft_poll htarget_poll(weft_cx *cx, void *p)
{
    struct htarget *t = p;
    int n = atomic_fetch_add(&t->sh->polls, 1);
    if (n < 4)
        atomic_store(&t->sh->poll_worker[n], iot_worker(cx));
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->rc, htarget_op(cx, t));
    if (t->rc >= 0 && t->accept)
        close((int)t->rc);
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

struct aborter {
    weft_frame f;
    struct hshared *sh;
};

/* On a worker other than the op's owner: abort the target (or cancel its
 * token). On the owner: keep it busy until another aborter has acted, so
 * that one runs elsewhere. Yields 1 if this one acted. */
static weft_poll aborter_poll(weft_cx *cx, void *p)
{
    struct aborter *a = p;
    struct hshared *sh = a->sh;
    uint64_t give_up = weft_now_ns() + 2000 * IOT_MS;
    while (!atomic_load(&sh->claimed)) {
        if (iot_worker(cx) != atomic_load(&sh->owner)) {
            if (atomic_exchange(&sh->claimed, 1))
                return 0;
            if (sh->tok)
                weft_token_cancel(sh->tok);
            else
                weft_abort(sh->target);
            return 1;
        }
        if (weft_now_ns() > give_up)
            return 0;           /* the main thread acts instead */
        iot_spin(1000);
    }
    return 0;
}

static void handoff_round(weft_runtime *rt, bool accept, bool safe, bool by_token, bool race,
                          int fd, int peer, const struct sockaddr_in *sa, int *handoffs)
{
    static struct hshared sh;
    memset(&sh, 0, sizeof sh);
    atomic_store(&sh.owner, -1);
    weft_token *tok = NULL;
    if (by_token)
        cr_assert_eq(weft_token_new(&tok), 0);
    struct htarget t = { .accept = accept, .fd = fd, .sh = &sh };
    weft_task_desc d = { .poll = htarget_poll, .frame = &t, .frame_size = sizeof t,
                         .drop = iot_count_drop, .flags = safe ? WEFT_TASK_CANCEL_SAFE : 0,
                         .tokens = &tok, .ntokens = by_token ? 1 : 0 };
    weft_join h, ah[2];
    sh.target = &h;
    sh.tok = tok;
    int drops0 = atomic_load(&iot_drops);
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&sh.started, 1);
    /* the withdrawal under test is of an operation in the kernel */
    cr_assert(iot_wait_polls(accept ? IORING_OP_ACCEPT : IORING_OP_RECV, 1),
              "the %s never waited in the kernel", accept ? "accept" : "recv");
    struct aborter a = { .sh = &sh };
    for (int i = 0; i < 2; i++)
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(aborter_poll, &a), &ah[i]), 0);
    unsigned char want[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    int c = -1;
    if (race && accept)
        c = iot_connect(sa);    /* completes as the hand-off travels */
    else if (race)
        cr_assert_eq(send(peer, want, 8, 0), 8);
    int acted = 0;
    for (int i = 0; i < 2; i++) {
        weft_outcome o;
        cr_assert_eq(weft_join_wait(&ah[i], &o), 0);
        acted += (int)o.value;
    }
    if (!acted) {               /* both aborters were stuck on the owner */
        if (by_token)
            weft_token_cancel(tok);
        else
            weft_abort(&h);
    }
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(atomic_load(&iot_drops), drops0 + 1);
    bool finished_first = out.status == 0 && out.value >= 0 && race;
    if (!finished_first)
        cr_assert_eq(out.cancel.source, by_token ? WEFT_CANCEL_TOKEN : WEFT_CANCEL_ABORT);
    if (safe) {
        cr_assert(out.status == -ECANCELED || finished_first, "status %d", out.status);
    } else {
        cr_assert_eq(out.status, 0);
        if (!race)
            cr_assert_eq(out.value, -ECANCELED, "yielded %lld", (long long)out.value);
        /* the poll after the request ran the withdrawal: on which worker? */
        if (atomic_load(&sh.polls) >= 2 && acted
            && atomic_load(&sh.poll_worker[1]) != atomic_load(&sh.owner))
            (*handoffs)++;
    }
    if (accept && race) {
        enum accepted where = settle_client(fd, c, -1);
        if (!safe && out.value == -ECANCELED)
            cr_assert_eq(where, ACC_QUEUED, "-ECANCELED, yet the connection was taken");
        close(c);
    } else if (accept) {
        /* nothing connected: nothing to lose */
    } else if (race && !safe) {
        int x = 0, y = 0;
        check_recv_rule(fd, peer, want, out.value, 0, &x, &y);
    } else if (race) {
        unsigned char rest[64];
        leftover_before_marker(fd, peer, rest, sizeof rest);
    }
    if (tok)
        weft_token_release(tok);
}

static void handoff_loop(bool accept)
{
    weft_runtime *rt = make(2);
    int srv = -1, cli = -1, l = -1;
    struct sockaddr_in sa;
    if (accept) {
        l = iot_listen(64, &sa);
        cr_assert_geq(l, 0);
    } else {
        cr_assert_eq(iot_tcp_pair(&srv, &cli), 0);
    }
    int fds0 = iot_fd_count();
    int handoffs = 0, rounds = 0;
    for (int i = 0; i < 400; i++, rounds++) {
        bool safe = i % 4 == 3, by_token = i % 3 == 1, race = i % 2 == 1;
        handoff_round(rt, accept, safe, by_token, race, accept ? l : srv, cli, &sa, &handoffs);
    }
    cr_log_info("%s: %d cooperative withdrawals ran off the owner", accept ? "accept" : "recv",
                handoffs);
    /* The aborter design puts the woken task on the aborting worker's LIFO
     * slot, so the hand-off path must have been taken. */
    cr_assert_gt(handoffs, 0, "the hand-off path was never exercised");
    cr_assert_eq(iot_fd_count(), fds0, "fd count %d, was %d", iot_fd_count(), fds0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    int fds[] = { srv, cli, l };
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    WEFT_ASSERT_NO_LEAKS();
}

Test(io_cancel, recv_withdrawn_from_the_other_worker)
{
    handoff_loop(false);
}

Test(io_cancel, accept_withdrawn_from_the_other_worker_never_leaks)
{
    handoff_loop(true);
}

/* ---- runtime shutdown with operations in flight ---------------------------------------- */

Test(io_cancel, shutdown_with_every_kind_in_flight_leaks_nothing)
{
    int fds0 = iot_fd_count();
    weft_runtime *rt = make(2);
    enum { PER = 5 };           /* flag sets: cooperative, safe, detached x2, shielded */
    struct fixture fx[K_COUNT];
    for (int k = 0; k < K_COUNT; k++)
        fixture_up(&fx[k], k);
    int extra[K_COUNT * PER];   /* connect: one socket per task */
    int nextra = 0;
    static flag started, armed;
    flag_set(&started, 0);
    flag_set(&armed, 0);
    static struct bres res[K_COUNT * PER];
    memset(res, 0, sizeof res);
    weft_join h[K_COUNT * PER];
    bool joinable[K_COUNT * PER];
    int n = 0;
    for (int k = 0; k < K_COUNT; k++) {
        for (int j = 0; j < PER; j++, n++) {
            struct blocker b = { .kind = k, .how = -1, .fd = fx[k].a, .path = fx[k].fifo,
                                 .started = &started, .armed = &armed, .res = &res[n],
                                 .x = WEFT_XFER_INIT, .sl = WEFT_SLEEP_INIT };
            if (k == K_CONNECT) {
                socklen_t l = sizeof b.sa;
                cr_assert_eq(getsockname(fx[k].listener, (struct sockaddr *)&b.sa, &l), 0);
                b.fd = extra[nextra++] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            }
            static const unsigned flags[PER] = { 0, WEFT_TASK_CANCEL_SAFE, 0,
                                                 WEFT_TASK_CANCEL_SAFE, WEFT_TASK_SHIELDED };
            weft_task_desc d = { .poll = blocker_poll, .frame = &b, .frame_size = sizeof b,
                                 .drop = iot_count_drop, .flags = flags[j] };
            joinable[n] = j != 2 && j != 3;
            if (joinable[n])
                cr_assert_eq(weft_spawn(rt, &d, &h[n]), 0);
            else
                cr_assert_eq(weft_spawn_detached(rt, &d), 0);
        }
    }
    /* shut down with every operation waiting in the kernel */
    flag_wait_ge(&armed, (uint32_t)n);
    int per_kind[K_COUNT];
    for (int k = 0; k < K_COUNT; k++)
        per_kind[k] = PER;
    wait_in_kernel(per_kind, "before the shutdown");
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(atomic_load(&iot_drops), n, "drop hooks: %d of %d", atomic_load(&iot_drops), n);
    for (int i = 0; i < n; i++) {
        if (!joinable[i])
            continue;
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        int kind = i / PER;
        cr_assert_eq(out.cancel.source, WEFT_CANCEL_SHUTDOWN, "%s", kind_name[kind]);
        /* a cooperative await yields -ECANCELED; openat's wrong errno is the
         * subject of openat_of_fifo_every_way, not of this test */
        cr_assert(out.status == -ECANCELED || out.value == -ECANCELED
                  || (kind == K_OPENAT && out.value < 0),
                  "%s: status %d value %lld", kind_name[kind], out.status,
                  (long long)out.value);
    }
    cr_assert_eq(weft_runtime_free(rt), 0);
    for (int k = 0; k < K_COUNT; k++)
        fixture_down(&fx[k]);
    for (int i = 0; i < nextra; i++)
        close(extra[i]);
    cr_assert_eq(iot_fd_count(), fds0, "fd count %d, was %d", iot_fd_count(), fds0);
    WEFT_ASSERT_NO_LEAKS();
}

struct racer {
    struct sockaddr_in sa;
    int peer;                   /* send on this while shutdown runs */
    int clients[32];
    int nclients;
    flag go;
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    flag_wait_ge(&r->go, 1);
    for (int i = 0; i < 32; i++) {
        int c = iot_connect(&r->sa);
        if (c >= 0)
            r->clients[r->nclients++] = c;
        send(r->peer, "x", 1, MSG_NOSIGNAL);
    }
    return NULL;
}

/* Accepts and recvs complete while the runtime shuts down: each accepted fd
 * is closed by its task or by weft, so the fd count returns to baseline. */
Test(io_cancel, shutdown_racing_completions_leaks_no_fd)
{
    int fds0 = iot_fd_count();
    int completed = 0;
    for (int round = 0; round < 12; round++) {
        weft_runtime *rt = make(2);
        struct racer r = { 0 };
        int l = iot_listen(64, &r.sa);
        cr_assert_geq(l, 0);
        int srv = -1;
        cr_assert_eq(iot_tcp_pair(&srv, &r.peer), 0);
        static flag started;
        atomic_store(&started.v, 0);
        static struct bres res[48];
        weft_join h[48];
        for (int i = 0; i < 48; i++) {
            bool acc = i % 3 != 0;
            struct blocker b = { .kind = acc ? K_ACCEPT : K_RECV, .how = -1,
                                 .fd = acc ? l : srv, .started = &started, .res = &res[i] };
            weft_task_desc d = { .poll = blocker_poll, .frame = &b, .frame_size = sizeof b,
                                 .drop = iot_count_drop,
                                 .flags = i % 2 ? WEFT_TASK_CANCEL_SAFE : 0 };
            if (i % 5 == 4)
                cr_assert_eq(weft_spawn_detached(rt, &d), 0);
            else
                cr_assert_eq(weft_spawn(rt, &d, &h[i]), 0);
        }
        memset(res, 0, sizeof res);
        flag_wait_ge(&started, 48);
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, racer_main, &r), 0);
        flag_add(&r.go, 1);
        iot_spin((unsigned)round * 30000);
        cr_assert_eq(weft_runtime_shutdown(rt), 0);
        pthread_join(th, NULL);
        for (int i = 0; i < 48; i++) {
            if (i % 5 == 4)
                continue;
            weft_outcome out;
            cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        }
        cr_assert_eq(atomic_load(&iot_drops), 48);
        for (int i = 0; i < 48; i++)
            completed += res[i].ended && res[i].rc >= 0;
        cr_assert_eq(weft_runtime_free(rt), 0);
        for (int i = 0; i < r.nclients; i++)
            close(r.clients[i]);
        close(l);
        close(srv);
        close(r.peer);
        cr_assert_eq(iot_fd_count(), fds0, "round %d: fd count %d, was %d", round,
                     iot_fd_count(), fds0);
    }
    cr_log_info("%d operations completed with a result during shutdown", completed);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- one task, several operations in flight (a select over four leaves) ---------------- */

struct mres {
    bool did[4];
    int64_t got[4];
    weft_poll rc;
    bool ended;
};

struct multi {
    weft_frame f;
    weft_selector sel;
    weft_io io[3];
    weft_sleep sl;
    int rfd, pfd, lfd;          /* lfd < 0: no accept branch */
    unsigned char rbuf[8], pbuf[8];
    flag *started;              /* bumped just before the select */
    flag *armed;                /* bumped once it first waits */
    bool was_armed;
    struct mres *res;
    weft_poll rc;
};

static weft_poll multi_branch(weft_cx *cx, void *frame, unsigned i)
{
    struct multi *m = frame;
    if (i == 0)
        return weft_recv(cx, &m->io[0], m->rfd, m->rbuf, sizeof m->rbuf, 0);
    if (i == 1)
        return weft_read(cx, &m->io[1], m->pfd, m->pbuf, sizeof m->pbuf, -1);
    if (i == 2)
        return weft_sleep_for(cx, &m->sl, IOT_HOUR);
    return weft_accept(cx, &m->io[2], m->lfd, NULL, NULL, 0);
}

/* The select, saying once that it waits: it polled every branch, so each
 * operation has been submitted and the sleep armed. */
static weft_poll multi_select(weft_cx *cx, struct multi *m)
{
    weft_poll r = weft_select(cx, &m->sel, m->lfd >= 0 ? 4 : 3, multi_branch, m);
    if (r == WEFT_PENDING && !m->was_armed) {
        m->was_armed = true;
        flag_add(m->armed, 1);
    }
    return r;
}

static weft_poll multi_poll(weft_cx *cx, void *p)
{
    struct multi *m = p;
    WEFT_BEGIN(&m->f);
    flag_add(m->started, 1);
    WEFT_AWAIT(&m->f, m->rc, multi_select(cx, m));
    if (!m->was_armed)
        flag_add(m->armed, 1);  /* it never waited: do not leave the test waiting */
    for (unsigned i = 0; i < 4; i++)
        m->res->did[i] = weft_select_outcome(&m->sel, i, &m->res->got[i]);
    if (m->res->did[3] && m->res->got[3] >= 0)
        close((int)m->res->got[3]);
    m->res->rc = m->rc;
    m->res->ended = true;
    WEFT_RETURN(&m->f, m->rc);
    WEFT_END(&m->f);
}

/* What is still queued in a pipe, read without blocking. */
static long pipe_drain(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    unsigned char tmp[64];
    long n = 0;
    ssize_t r;
    while ((r = read(fd, tmp, sizeof tmp)) > 0)
        n += r;
    fcntl(fd, F_SETFL, fl);
    return n;
}

/* Abort, token or tear-down of a task waiting on a recv, a pipe read, a sleep
 * and (when nobody connects) an accept: every operation is withdrawn, nothing
 * is consumed that was not reported; with data racing the abort, a branch
 * that completed reports exactly what it took. */
static void several_in_flight(int how, bool race, int rounds)
{
    weft_runtime *rt = make(2);
    int srv, cli, p[2];
    cr_assert_eq(iot_tcp_pair(&srv, &cli), 0);
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    struct sockaddr_in sa;
    int l = iot_listen(4, &sa);
    cr_assert_geq(l, 0);
    int fds0 = iot_fd_count();
    static flag started, armed;
    flag_set(&started, 0);
    flag_set(&armed, 0);
    uint32_t seed = 99;
    bool safe = how == H_SAFE_ABORT || how == H_SAFE_TOKEN;
    bool by_token = how == H_TOKEN || how == H_SAFE_TOKEN;
    for (int i = 0; i < rounds; i++) {
        struct mres res = { 0 };
        struct multi m = { .sel = WEFT_SELECTOR_INIT, .sl = WEFT_SLEEP_INIT, .rfd = srv,
                           .pfd = p[0], .lfd = race ? -1 : l, .started = &started,
                           .armed = &armed, .res = &res };
        weft_token *tok = NULL;
        cr_assert_eq(weft_token_new(&tok), 0);
        weft_task_desc d = { .poll = multi_poll, .frame = &m, .frame_size = sizeof m,
                             .drop = iot_count_drop, .flags = safe ? WEFT_TASK_CANCEL_SAFE : 0,
                             .tokens = &tok, .ntokens = by_token ? 1 : 0 };
        int drops0 = atomic_load(&iot_drops);
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &d, &h), 0);
        flag_wait_ge(&started, (uint32_t)i + 1);
        seed = seed * 1103515245u + 12345u;
        if (race) {
            iot_spin((seed >> 8) % 20000);
            cr_assert_eq(send(cli, "12345678", 8, 0), 8);
            cr_assert_eq(write(p[1], "abcdefgh", 8), 8);
            iot_spin((seed >> 4) % 3000);
        } else {
            /* withdraw a select whose operations all wait in the kernel */
            flag_wait_ge(&armed, (uint32_t)i + 1);
            wait_in_kernel((const int[K_COUNT]){ [K_RECV] = 1, [K_READ] = 1,
                                                     [K_ACCEPT] = 1 }, how_name[how]);
        }
        if (by_token)
            weft_token_cancel(tok);
        else
            weft_abort(&h);
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        cr_assert_eq(atomic_load(&iot_drops), drops0 + 1);
        if (safe)
            cr_assert(out.status == -ECANCELED || res.ended, "status %d", out.status);
        else
            cr_assert(res.ended && out.status == 0);
        if (!race && res.ended)
            cr_assert_eq(res.rc, -ECANCELED, "round %d: select yielded %lld", i,
                         (long long)res.rc);
        cr_assert_not(res.did[2], "the hour-long sleep completed");
        /* nothing consumed that was not reported, and nothing reported twice;
         * a torn-down task reports nothing, and what its operations took
         * before the tear-down is dropped with it (that is what cancel-safe
         * declares), so only the cooperative runs can be counted */
        long sent = race ? 8 : 0;
        if (!res.ended) {
            iot_drain(srv);
            pipe_drain(p[0]);
            weft_token_release(tok);
            continue;
        }
        long took_r = res.did[0] && res.got[0] > 0 ? res.got[0] : 0;
        long took_p = res.did[1] && res.got[1] > 0 ? res.got[1] : 0;
        cr_assert_eq(iot_drain(srv) + took_r, sent, "%s round %d: recv lost or duplicated (did %d got %lld rc %lld)", how_name[how], i,
                     res.did[0], (long long)res.got[0], (long long)res.rc);
        cr_assert_eq(pipe_drain(p[0]) + took_p, sent, "round %d: read lost or duplicated", i);
        weft_token_release(tok);
    }
    cr_assert_eq(iot_fd_count(), fds0, "fd count %d, was %d", iot_fd_count(), fds0);
    check_resource(&(struct fixture){ .a = l }, K_ACCEPT, true, 0, NULL, "listener");
    close(l);
    close(srv);
    close(cli);
    close(p[0]);
    close(p[1]);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(io_cancel, abort_withdraws_every_op_of_a_select)
{
    several_in_flight(H_ABORT, false, 20);
    several_in_flight(H_TOKEN, false, 20);
    several_in_flight(H_SAFE_ABORT, false, 20);
}

Test(io_cancel, abort_of_a_select_racing_data_loses_nothing)
{
    several_in_flight(H_ABORT, true, 300);
    several_in_flight(H_SAFE_TOKEN, true, 300);
}

/* ---- a socket made as its task is torn down ----------------------------------------------- */

struct sockt {
    weft_frame f;
    weft_io io;
    flag *started;
    weft_poll rc;
};

static weft_poll sockt_poll(weft_cx *cx, void *p)
{
    struct sockt *t = p;
    WEFT_BEGIN(&t->f);
    flag_add(t->started, 1);
    WEFT_AWAIT(&t->f, t->rc, weft_socket(cx, &t->io, AF_INET, SOCK_STREAM, 0));
    if (t->rc >= 0)
        close((int)t->rc);
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

Test(io_cancel, socket_that_completes_after_a_tear_down_is_closed)
{
    weft_runtime *rt = make(2);
    int fds0 = iot_fd_count();
    static flag started;
    atomic_store(&started.v, 0);
    uint32_t seed = 4242;
    int torn = 0;
    for (int i = 0; i < 600; i++) {
        struct sockt t = { .started = &started };
        weft_task_desc d = { .poll = sockt_poll, .frame = &t, .frame_size = sizeof t,
                             .drop = iot_count_drop,
                             .flags = i % 3 ? WEFT_TASK_CANCEL_SAFE : 0 };
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &d, &h), 0);
        seed = seed * 1103515245u + 12345u;
        if (i % 2)
            flag_wait_ge(&started, 1);
        iot_spin((seed >> 8) % 5000);
        weft_abort(&h);
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        torn += out.status == -ECANCELED;
        cr_assert(out.status == -ECANCELED || out.value >= 0 || out.value == -ECANCELED,
                  "status %d value %lld", out.status, (long long)out.value);
    }
    cr_log_info("socket: %d of 600 torn down", torn);
    cr_assert_eq(iot_fd_count(), fds0, "fd count %d, was %d", iot_fd_count(), fds0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a send withdrawn half-way reports the bytes it sent ---------------------------------- */

struct psend {
    weft_frame f;
    weft_io io;
    int fd;
    bool timed;
    flag *started;
    weft_poll rc;
};

static weft_poll psend_poll(weft_cx *cx, void *p)
{
    struct psend *t = p;
    WEFT_BEGIN(&t->f);
    if (t->timed)
        weft_io_timeout(&t->io, TMO);
    flag_add(t->started, 1);
    /* MSG_WAITALL: the kernel keeps going after a partial send, so the
     * withdrawal finds one half-done */
    WEFT_AWAIT(&t->f, t->rc, weft_send(cx, &t->io, t->fd, big, BIG, MSG_WAITALL));
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

Test(io_cancel, send_withdrawn_half_way_reports_the_bytes_sent)
{
    weft_runtime *rt = make(2);
    for (int i = 0; i < 4; i++) {
        int peer, fd;
        cr_assert_eq(iot_tcp_pair_bufs(&peer, &fd, 8192), 0);
        static flag started;
        atomic_store(&started.v, 0);
        struct psend t = { .fd = fd, .timed = i % 2, .started = &started };
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(psend_poll, &t), &h), 0);
        flag_wait_ge(&started, 1);
        if (!t.timed) {
            /* abort half-way: once bytes have reached the peer and the rest
             * of the send waits in the kernel for room */
            cr_assert(iot_readable(peer, -1));
            cr_assert(iot_wait_polls(IORING_OP_SEND, 1), "the send never waited in the kernel");
            weft_abort(&h);
        }
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        cr_assert(out.value > 0 && out.value < BIG,
                  "a half-done send yielded %lld (%s), not the bytes it sent",
                  (long long)out.value, weft_strerror((int)out.value));
        close(fd);
        cr_assert_eq(read_to_eof(peer), out.value, "the peer got other than reported");
        close(peer);
    }
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a task polled on another worker is still woken by its op's owner --------------------- */

struct wshared {
    flag started, repolled;
    _Atomic int owner;
    _Atomic int moved;          /* polled off the owner while the op was in flight */
    _Atomic int claimed;
    weft_waker waker;
};

struct wtarget {
    weft_frame f;
    weft_io io;
    int fd;
    bool noted;
    unsigned char buf[8];
    struct wshared *sh;
    weft_poll rc;
};

static weft_poll wtarget_recv(weft_cx *cx, struct wtarget *t)
{
    weft_poll r = weft_recv(cx, &t->io, t->fd, t->buf, sizeof t->buf, 0);
    if (r != WEFT_PENDING)
        return r;
    if (!t->noted) {
        t->noted = true;
        atomic_store(&t->sh->owner, (int)weft__io_of(&t->io)->owner);
        t->sh->waker = weft_cx_waker(cx);
        flag_add(&t->sh->started, 1);
    } else {
        if (iot_worker(cx) != atomic_load(&t->sh->owner))
            atomic_store(&t->sh->moved, 1);
        flag_add(&t->sh->repolled, 1);
    }
    return r;
}

static weft_poll wtarget_poll(weft_cx *cx, void *p)
{
    struct wtarget *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->rc, wtarget_recv(cx, t));
    if (t->rc == 8 && memcmp(t->buf, "stolen!!", 8) != 0)
        WEFT_RETURN(&t->f, -EPROTO);
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

/* On a worker other than the op's owner, wake the target spuriously: it is
 * polled there (the wake goes to this worker's LIFO slot). */
struct kicker {
    weft_frame f;
    struct wshared *sh;
};

static weft_poll kicker_poll(weft_cx *cx, void *p)
{
    struct wshared *sh = ((struct kicker *)p)->sh;
    uint64_t give_up = weft_now_ns() + 2000 * IOT_MS;
    while (!atomic_load(&sh->claimed) && weft_now_ns() < give_up) {
        if (iot_worker(cx) != atomic_load(&sh->owner)) {
            if (atomic_exchange(&sh->claimed, 1))
                return 0;
            weft_waker_wake(&sh->waker);
            return 1;
        }
        iot_spin(1000);
    }
    return 0;
}

Test(io_cancel, task_moved_to_another_worker_is_woken_when_the_owner_reaps)
{
    weft_runtime *rt = make(2);
    int srv, cli;
    cr_assert_eq(iot_tcp_pair(&srv, &cli), 0);
    int moved = 0;
    for (int i = 0; i < 60; i++) {
        static struct wshared sh;
        memset(&sh, 0, sizeof sh);
        atomic_store(&sh.owner, -1);
        struct wtarget t = { .fd = srv, .sh = &sh };
        weft_join h, kh[2];
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(wtarget_poll, &t), &h), 0);
        flag_wait_ge(&sh.started, 1);
        struct kicker k = { .sh = &sh };
        for (int j = 0; j < 2; j++)
            cr_assert_eq(weft_spawn(rt, &WEFT_TASK(kicker_poll, &k), &kh[j]), 0);
        int acted = 0;
        for (int j = 0; j < 2; j++) {
            weft_outcome o;
            cr_assert_eq(weft_join_wait(&kh[j], &o), 0);
            acted += (int)o.value;
        }
        if (!acted && !atomic_exchange(&sh.claimed, 1))
            weft_waker_wake(&sh.waker);         /* from outside: any worker */
        flag_wait_ge(&sh.repolled, 1);
        moved += atomic_load(&sh.moved);
        cr_assert_eq(send(cli, "stolen!!", 8, 0), 8);
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        cr_assert_eq(out.value, 8, "round %d: recv yielded %lld", i, (long long)out.value);
    }
    cr_log_info("%d of 60 tasks were polled off their op's owner", moved);
    cr_assert_gt(moved, 0, "no task ever moved: the case was not exercised");
    close(srv);
    close(cli);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}
