/*
 * tests/reactor/test_net.c - the socket operations of weft/io.h doing their
 * job: socket, connect, accept (with the peer address), send, recv,
 * shutdown, close; send_all / recv_exact over large buffers, -EPIPE and the
 * `done` count when the peer closes early; UDP sendto / recvfrom with the
 * source address and its length; I/O deadlines (relative and absolute:
 * -ETIMEDOUT, never early, nothing consumed, cleared after one operation).
 * Also: misuse (NULL cx / io / path -> -EINVAL, a deadline set while an
 * operation is in flight -> -EBUSY), -ENOMEM from the op-record slab with
 * the runtime usable afterwards, and the operation table (reactor/op.h).
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "io_test.h"
#include "reactor/op.h"
#include "runtime/alloc.h"
#include "test_util.h"

static weft_runtime *make(unsigned threads)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = threads, .shutdown_grace_ms = 100 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    atomic_store(&iot_drops, 0);
    return rt;
}

static weft_outcome run(weft_runtime *rt, weft_poll_fn poll, void *frame, size_t size)
{
    weft_task_desc d = { .poll = poll, .frame = frame, .frame_size = size,
                         .drop = iot_count_drop };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.status, 0);
    return out;
}

/* Each check inside a task returns its own line on failure, so the test can
 * say which one it was. */
#define TCHECK(f, cond)                                                        \
    do {                                                                       \
        if (!(cond))                                                           \
            WEFT_RETURN(f, -(weft_poll)__LINE__ - 1000);                       \
    } while (0)

static void ok(weft_outcome out)
{
    cr_assert_eq(out.value, 0, "task failed at line %lld (or yielded %lld)",
                 (long long)(-out.value - 1000), (long long)out.value);
}

/* ---- one TCP conversation ------------------------------------------------------- */

struct tcp {
    weft_frame f;
    weft_io io;
    struct sockaddr_in sa, peer;
    socklen_t peerlen;
    int c, s;
    char buf[16];
    weft_poll r;
};

static weft_poll tcp_poll(weft_cx *cx, void *p)
{
    struct tcp *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->r, weft_socket(cx, &t->io, AF_INET, SOCK_STREAM, 0));
    TCHECK(&t->f, t->r >= 0);
    t->c = (int)t->r;
    TCHECK(&t->f, fcntl(t->c, F_GETFD) & FD_CLOEXEC);
    /* the listener's backlog completes the connect before any accept */
    WEFT_AWAIT(&t->f, t->r, weft_connect(cx, &t->io, t->c, (struct sockaddr *)&t->sa,
                                         sizeof t->sa));
    TCHECK(&t->f, t->r == 0);
    memset(&t->peer, 0, sizeof t->peer);
    t->peerlen = sizeof t->peer + 8;    /* room to spare: the real length comes back */
    WEFT_AWAIT(&t->f, t->r, weft_accept(cx, &t->io, t->s, (struct sockaddr *)&t->peer,
                                        &t->peerlen, 0));
    TCHECK(&t->f, t->r >= 0);
    t->s = (int)t->r;
    TCHECK(&t->f, fcntl(t->s, F_GETFD) & FD_CLOEXEC);
    TCHECK(&t->f, t->peerlen == sizeof(struct sockaddr_in));
    TCHECK(&t->f, t->peer.sin_family == AF_INET);
    TCHECK(&t->f, t->peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    TCHECK(&t->f, ntohs(t->peer.sin_port) == weft_local_port(t->c));
    WEFT_AWAIT(&t->f, t->r, weft_send(cx, &t->io, t->c, "ping", 4, 0));
    TCHECK(&t->f, t->r == 4);
    WEFT_AWAIT(&t->f, t->r, weft_recv(cx, &t->io, t->s, t->buf, sizeof t->buf, 0));
    TCHECK(&t->f, t->r == 4 && memcmp(t->buf, "ping", 4) == 0);
    WEFT_AWAIT(&t->f, t->r, weft_send(cx, &t->io, t->s, "pong!", 5, 0));
    TCHECK(&t->f, t->r == 5);
    WEFT_AWAIT(&t->f, t->r, weft_recv(cx, &t->io, t->c, t->buf, sizeof t->buf, 0));
    TCHECK(&t->f, t->r == 5 && memcmp(t->buf, "pong!", 5) == 0);
    /* half-close: the other side reads EOF, and can still send back */
    WEFT_AWAIT(&t->f, t->r, weft_shutdown(cx, &t->io, t->c, SHUT_WR));
    TCHECK(&t->f, t->r == 0);
    WEFT_AWAIT(&t->f, t->r, weft_recv(cx, &t->io, t->s, t->buf, sizeof t->buf, 0));
    TCHECK(&t->f, t->r == 0);
    WEFT_AWAIT(&t->f, t->r, weft_send(cx, &t->io, t->s, "bye", 3, 0));
    TCHECK(&t->f, t->r == 3);
    WEFT_AWAIT(&t->f, t->r, weft_recv(cx, &t->io, t->c, t->buf, sizeof t->buf, 0));
    TCHECK(&t->f, t->r == 3);
    WEFT_AWAIT(&t->f, t->r, weft_close(cx, &t->io, t->s));
    TCHECK(&t->f, t->r == 0 && !iot_fd_open(t->s));
    WEFT_AWAIT(&t->f, t->r, weft_close(cx, &t->io, t->c));
    TCHECK(&t->f, t->r == 0 && !iot_fd_open(t->c));
    /* closing a bad fd: the kernel's answer, reported */
    WEFT_AWAIT(&t->f, t->r, weft_close(cx, &t->io, -1));
    TCHECK(&t->f, t->r == -EBADF);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(net, socket_connect_accept_send_recv_shutdown_close)
{
    int fds0 = iot_fd_count();
    weft_runtime *rt = make(2);
    struct tcp t = { 0 };
    int l = iot_listen(8, &t.sa);
    cr_assert_geq(l, 0);
    t.s = l;
    ok(run(rt, tcp_poll, &t, sizeof t));
    close(l);
    cr_assert_eq(atomic_load(&iot_drops), 1);
    cr_assert_eq(weft_runtime_free(rt), 0);
    cr_assert_eq(iot_fd_count(), fds0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- whole transfers --------------------------------------------------------------- */

#define XLEN (4u << 20)
static unsigned char xsrc[XLEN], xdst[XLEN];

struct xfer_task {
    weft_frame f;
    weft_xfer x;
    int fd;
    bool send;
    size_t len;
    unsigned char *buf;
    weft_poll r;
};

static weft_poll xfer_poll(weft_cx *cx, void *p)
{
    struct xfer_task *t = p;
    WEFT_BEGIN(&t->f);
    if (t->send)
        WEFT_AWAIT(&t->f, t->r, weft_send_all(cx, &t->x, t->fd, t->buf, t->len));
    else
        WEFT_AWAIT(&t->f, t->r, weft_recv_exact(cx, &t->x, t->fd, t->buf, t->len));
    TCHECK(&t->f, t->x.done <= t->len);
    WEFT_RETURN(&t->f, t->r == (weft_poll)t->len && t->x.done == t->len ? 0 : t->r);
    WEFT_END(&t->f);
}

Test(net, send_all_and_recv_exact_move_4mib_intact)
{
    weft_runtime *rt = make(2);
    int s = -1, c = -1;
    cr_assert_eq(iot_tcp_pair_bufs(&s, &c, 16384), 0);  /* many partial operations */
    for (size_t i = 0; i < XLEN; i++)
        xsrc[i] = (unsigned char)(i * 2654435761u >> 13);
    memset(xdst, 0, XLEN);
    struct xfer_task tx = { .x = WEFT_XFER_INIT, .fd = c, .send = true, .len = XLEN, .buf = xsrc };
    struct xfer_task rx = { .x = WEFT_XFER_INIT, .fd = s, .len = XLEN, .buf = xdst };
    weft_join hs, hr;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(xfer_poll, &rx), &hr), 0);
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(xfer_poll, &tx), &hs), 0);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&hs, &o), 0);
    ok(o);
    cr_assert_eq(weft_join_wait(&hr, &o), 0);
    ok(o);
    cr_assert_eq(memcmp(xsrc, xdst, XLEN), 0, "bytes arrived changed or out of order");
    close(s);
    close(c);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

struct early {
    weft_frame f;
    weft_xfer x;
    int fd;
    unsigned char buf[300];
    weft_poll r;
    size_t done;
};

static weft_poll early_poll(weft_cx *cx, void *p)
{
    struct early *e = p;
    WEFT_BEGIN(&e->f);
    WEFT_AWAIT(&e->f, e->r, weft_recv_exact(cx, &e->x, e->fd, e->buf, 0));
    TCHECK(&e->f, e->r == 0 && e->x.done == 0);
    WEFT_AWAIT(&e->f, e->r, weft_recv_exact(cx, &e->x, e->fd, e->buf, sizeof e->buf));
    e->done = e->x.done;
    TCHECK(&e->f, e->r == -EPIPE);
    TCHECK(&e->f, e->done == 100);
    for (int i = 0; i < 100; i++)
        TCHECK(&e->f, e->buf[i] == (unsigned char)(i + 1));
    WEFT_RETURN(&e->f, 0);
    WEFT_END(&e->f);
}

Test(net, recv_exact_yields_epipe_with_progress_when_the_peer_closes_early)
{
    weft_runtime *rt = make(2);
    int s = -1, c = -1;
    cr_assert_eq(iot_tcp_pair(&s, &c), 0);
    unsigned char data[100];
    for (int i = 0; i < 100; i++)
        data[i] = (unsigned char)(i + 1);
    /* in three pieces, so recv_exact needs several operations */
    cr_assert_eq(send(c, data, 30, 0), 30);
    cr_assert_eq(send(c, data + 30, 30, 0), 30);
    cr_assert_eq(send(c, data + 60, 40, 0), 40);
    close(c);
    struct early e = { .x = WEFT_XFER_INIT, .fd = s };
    ok(run(rt, early_poll, &e, sizeof e));
    close(s);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

struct reset {
    weft_frame f;
    weft_xfer x;
    int fd;
    weft_poll r;
    size_t *done;
};

static weft_poll reset_poll(weft_cx *cx, void *p)
{
    struct reset *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->r, weft_send_all(cx, &t->x, t->fd, xsrc, XLEN));
    *t->done = t->x.done;
    WEFT_RETURN(&t->f, t->r);
    WEFT_END(&t->f);
}

/* The peer reads some, then resets the connection: send_all fails and `done`
 * is no less than what the peer read, and below the total. */
Test(net, send_all_reports_progress_when_the_peer_resets)
{
    weft_runtime *rt = make(2);
    int s = -1, c = -1;
    cr_assert_eq(iot_tcp_pair_bufs(&s, &c, 16384), 0);
    size_t done = 0;
    struct reset t = { .x = WEFT_XFER_INIT, .fd = c, .done = &done };
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(reset_poll, &t), &h), 0);
    static unsigned char sink[65536];
    long got = 0;
    while (got < 100000) {
        ssize_t n = recv(s, sink, sizeof sink, 0);
        cr_assert_gt(n, 0);
        got += n;
    }
    struct linger lg = { 1, 0 };
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(s);                   /* RST */
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert(o.value == -EPIPE || o.value == -ECONNRESET, "send_all yielded %lld",
              (long long)o.value);
    cr_assert_geq(done, (size_t)got);
    cr_assert_lt(done, XLEN);
    close(c);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- datagrams ------------------------------------------------------------------------ */

struct udp {
    weft_frame f;
    weft_io io;
    int a, b;
    struct sockaddr_in to;
    struct sockaddr_storage from;
    socklen_t fromlen;
    char buf[64];
    weft_poll r;
};

static int bind_loopback(int fd)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return bind(fd, (struct sockaddr *)&a, sizeof a);
}

static weft_poll udp_poll(weft_cx *cx, void *p)
{
    struct udp *u = p;
    WEFT_BEGIN(&u->f);
    WEFT_AWAIT(&u->f, u->r, weft_socket(cx, &u->io, AF_INET, SOCK_DGRAM, 0));
    TCHECK(&u->f, u->r >= 0);
    u->a = (int)u->r;
    WEFT_AWAIT(&u->f, u->r, weft_socket(cx, &u->io, AF_INET, SOCK_DGRAM, 0));
    TCHECK(&u->f, u->r >= 0);
    u->b = (int)u->r;
    TCHECK(&u->f, bind_loopback(u->a) == 0 && bind_loopback(u->b) == 0);
    u->to = (struct sockaddr_in){ .sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)weft_local_port(u->b)) };
    u->to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    WEFT_AWAIT(&u->f, u->r, weft_sendto(cx, &u->io, u->a, "first", 5, 0,
                                        (struct sockaddr *)&u->to, sizeof u->to));
    TCHECK(&u->f, u->r == 5);
    memset(&u->from, 0xab, sizeof u->from);
    u->fromlen = sizeof u->from;        /* in: the room; out: the address's length */
    WEFT_AWAIT(&u->f, u->r, weft_recvfrom(cx, &u->io, u->b, u->buf, sizeof u->buf, 0,
                                          (struct sockaddr *)&u->from, &u->fromlen));
    TCHECK(&u->f, u->r == 5 && memcmp(u->buf, "first", 5) == 0);
    TCHECK(&u->f, u->fromlen == sizeof(struct sockaddr_in));
    TCHECK(&u->f, ((struct sockaddr_in *)&u->from)->sin_family == AF_INET);
    TCHECK(&u->f, ntohs(((struct sockaddr_in *)&u->from)->sin_port) == weft_local_port(u->a));
    TCHECK(&u->f, ((struct sockaddr_in *)&u->from)->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    /* no address wanted; a datagram longer than the buffer is cut */
    WEFT_AWAIT(&u->f, u->r, weft_sendto(cx, &u->io, u->a, "second-datagram", 15, 0,
                                        (struct sockaddr *)&u->to, sizeof u->to));
    TCHECK(&u->f, u->r == 15);
    WEFT_AWAIT(&u->f, u->r, weft_recvfrom(cx, &u->io, u->b, u->buf, 6, 0, NULL, NULL));
    TCHECK(&u->f, u->r == 6 && memcmp(u->buf, "second", 6) == 0);
    /* a connected datagram socket: sendto without an address */
    TCHECK(&u->f, connect(u->a, (struct sockaddr *)&u->to, sizeof u->to) == 0);
    WEFT_AWAIT(&u->f, u->r, weft_sendto(cx, &u->io, u->a, "third", 5, 0, NULL, 0));
    TCHECK(&u->f, u->r == 5);
    u->fromlen = sizeof u->from;
    WEFT_AWAIT(&u->f, u->r, weft_recvfrom(cx, &u->io, u->b, u->buf, sizeof u->buf, 0,
                                          (struct sockaddr *)&u->from, &u->fromlen));
    TCHECK(&u->f, u->r == 5 && u->fromlen == sizeof(struct sockaddr_in));
    WEFT_AWAIT(&u->f, u->r, weft_close(cx, &u->io, u->a));
    TCHECK(&u->f, u->r == 0);
    WEFT_AWAIT(&u->f, u->r, weft_close(cx, &u->io, u->b));
    TCHECK(&u->f, u->r == 0);
    WEFT_RETURN(&u->f, 0);
    WEFT_END(&u->f);
}

Test(net, udp_sendto_recvfrom_report_the_source_address)
{
    int fds0 = iot_fd_count();
    weft_runtime *rt = make(2);
    struct udp u = { 0 };
    ok(run(rt, udp_poll, &u, sizeof u));
    cr_assert_eq(weft_runtime_free(rt), 0);
    cr_assert_eq(iot_fd_count(), fds0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- deadlines ------------------------------------------------------------------------- */

#define TMO (25 * IOT_MS)

/* The main thread's part: it sends "abc" at step 1 and "def" at step 2. */
static flag dl_step;            /* +100 at the drop: a failed check ends it early */

static void dl_drop(void *frame)
{
    (void)frame;
    flag_add(&dl_step, 100);
}

struct dl {
    weft_frame f;
    weft_io io;
    int fd;
    uint64_t t0, deadline;
    char buf[16];
    weft_poll r;
};

static weft_poll dl_poll(weft_cx *cx, void *p)
{
    struct dl *d = p;
    WEFT_BEGIN(&d->f);
    /* relative: counted from the first poll; never early */
    TCHECK(&d->f, weft_io_timeout(&d->io, TMO) == 0);
    d->t0 = weft_now_ns();
    WEFT_AWAIT(&d->f, d->r, weft_recv(cx, &d->io, d->fd, d->buf, sizeof d->buf, 0));
    TCHECK(&d->f, d->r == -ETIMEDOUT);
    TCHECK(&d->f, weft_now_ns() - d->t0 >= TMO);
    /* absolute */
    d->deadline = weft_now_ns() + TMO;
    TCHECK(&d->f, weft_io_deadline(&d->io, d->deadline) == 0);
    WEFT_AWAIT(&d->f, d->r, weft_recv(cx, &d->io, d->fd, d->buf, sizeof d->buf, 0));
    TCHECK(&d->f, d->r == -ETIMEDOUT);
    TCHECK(&d->f, weft_now_ns() >= d->deadline);
    /* the main thread sends "abc" now; once it is queued (this blocks the
     * worker for that long), a deadline already past withdraws the next
     * operation before it starts: it did not happen, the bytes stay */
    flag_add(&dl_step, 1);
    TCHECK(&d->f, iot_readable(d->fd, -1));
    TCHECK(&d->f, weft_io_deadline(&d->io, weft_now_ns() - 1) == 0);
    WEFT_AWAIT(&d->f, d->r, weft_recv(cx, &d->io, d->fd, d->buf, sizeof d->buf, 0));
    TCHECK(&d->f, d->r == -ETIMEDOUT);
    /* the deadline applied to that one operation only: this recv gets all of
     * the bytes it left */
    WEFT_AWAIT(&d->f, d->r, weft_recv(cx, &d->io, d->fd, d->buf, 3, MSG_WAITALL));
    TCHECK(&d->f, d->r == 3 && memcmp(d->buf, "abc", 3) == 0);
    /* a generous deadline does not disturb an operation that completes: this
     * recv waits in the kernel for "def", which the main thread sends only
     * once it sees it there */
    TCHECK(&d->f, weft_io_timeout(&d->io, IOT_HOUR) == 0);
    flag_add(&dl_step, 1);
    WEFT_AWAIT(&d->f, d->r, weft_recv(cx, &d->io, d->fd, d->buf, 2, MSG_WAITALL));
    TCHECK(&d->f, d->r == 2 && memcmp(d->buf, "de", 2) == 0);
    /* 0 clears a deadline that was set */
    TCHECK(&d->f, weft_io_timeout(&d->io, 1) == 0);
    TCHECK(&d->f, weft_io_deadline(&d->io, 0) == 0);
    WEFT_AWAIT(&d->f, d->r, weft_recv(cx, &d->io, d->fd, d->buf, 1, 0));
    TCHECK(&d->f, d->r == 1 && d->buf[0] == 'f');
    WEFT_RETURN(&d->f, 0);
    WEFT_END(&d->f);
}

Test(net, io_deadlines_time_out_never_early_and_apply_to_one_operation)
{
    weft_runtime *rt = make(2);
    int s = -1, c = -1;
    cr_assert_eq(iot_tcp_pair(&s, &c), 0);
    struct dl d = { .fd = s };
    weft_task_desc desc = WEFT_TASK(dl_poll, &d);
    desc.drop = dl_drop;
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &desc, &h), 0);
    flag_wait_ge(&dl_step, 1);
    cr_assert_eq(send(c, "abc", 3, 0), 3);
    flag_wait_ge(&dl_step, 2);
    bool waits = iot_wait_polls(IORING_OP_RECV, 1);
    cr_assert(waits || flag_get(&dl_step) >= 100, "the recv never waited in the kernel");
    cr_assert_eq(send(c, "def", 3, 0), 3);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    ok(o);
    close(s);
    close(c);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- misuse ------------------------------------------------------------------------------ */

struct misuse {
    weft_frame f;
    weft_io io;
    weft_xfer x;
    int fd, peer;
    char buf[8];
    int busy_deadline, busy_timeout;
    bool probed;
    weft_poll r;
};

/* A recv that, once in flight, tries to set deadlines on its own io. */
static weft_poll recv_probing_busy(weft_cx *cx, struct misuse *m)
{
    weft_poll r = weft_recv(cx, &m->io, m->fd, m->buf, sizeof m->buf, 0);
    if (r == WEFT_PENDING && !m->probed) {
        m->probed = true;
        m->busy_deadline = weft_io_deadline(&m->io, weft_now_ns() + IOT_MS);
        m->busy_timeout = weft_io_timeout(&m->io, IOT_MS);
        send(m->peer, "z", 1, 0);    /* let it complete */
    }
    return r;
}

static weft_poll misuse_poll(weft_cx *cx, void *p)
{
    struct misuse *m = p;
    struct statx stx;
    struct iovec iov = { m->buf, sizeof m->buf };
    WEFT_BEGIN(&m->f);
    /* a NULL io */
    TCHECK(&m->f, weft_socket(cx, NULL, AF_INET, SOCK_STREAM, 0) == -EINVAL);
    TCHECK(&m->f, weft_accept(cx, NULL, m->fd, NULL, NULL, 0) == -EINVAL);
    TCHECK(&m->f, weft_connect(cx, NULL, m->fd, NULL, 0) == -EINVAL);
    TCHECK(&m->f, weft_recv(cx, NULL, m->fd, m->buf, 1, 0) == -EINVAL);
    TCHECK(&m->f, weft_send(cx, NULL, m->fd, m->buf, 1, 0) == -EINVAL);
    TCHECK(&m->f, weft_sendto(cx, NULL, m->fd, m->buf, 1, 0, NULL, 0) == -EINVAL);
    TCHECK(&m->f, weft_recvfrom(cx, NULL, m->fd, m->buf, 1, 0, NULL, NULL) == -EINVAL);
    TCHECK(&m->f, weft_shutdown(cx, NULL, m->fd, SHUT_RD) == -EINVAL);
    TCHECK(&m->f, weft_openat(cx, NULL, AT_FDCWD, "/", O_RDONLY, 0) == -EINVAL);
    TCHECK(&m->f, weft_read(cx, NULL, m->fd, m->buf, 1, 0) == -EINVAL);
    TCHECK(&m->f, weft_write(cx, NULL, m->fd, m->buf, 1, 0) == -EINVAL);
    TCHECK(&m->f, weft_readv(cx, NULL, m->fd, &iov, 1, 0) == -EINVAL);
    TCHECK(&m->f, weft_writev(cx, NULL, m->fd, &iov, 1, 0) == -EINVAL);
    TCHECK(&m->f, weft_fsync(cx, NULL, m->fd, false) == -EINVAL);
    TCHECK(&m->f, weft_statx(cx, NULL, AT_FDCWD, "/", 0, STATX_SIZE, &stx) == -EINVAL);
    TCHECK(&m->f, WEFT_RELEASE_VALUE(weft_close(cx, NULL, m->fd)) == -EINVAL);
    TCHECK(&m->f, weft_send_all(cx, NULL, m->fd, m->buf, 1) == -EINVAL);
    TCHECK(&m->f, weft_recv_exact(cx, NULL, m->fd, m->buf, 1) == -EINVAL);
    /* NULL pointers an operation needs */
    TCHECK(&m->f, weft_openat(cx, &m->io, AT_FDCWD, NULL, O_RDONLY, 0) == -EINVAL);
    TCHECK(&m->f, weft_statx(cx, &m->io, AT_FDCWD, NULL, 0, STATX_SIZE, &stx) == -EINVAL);
    TCHECK(&m->f, weft_statx(cx, &m->io, AT_FDCWD, "/", 0, STATX_SIZE, NULL) == -EINVAL);
    TCHECK(&m->f, weft_readv(cx, &m->io, m->fd, NULL, 1, 0) == -EINVAL);
    TCHECK(&m->f, weft_writev(cx, &m->io, m->fd, &iov, 0, 0) == -EINVAL);
    TCHECK(&m->f, weft_recv_exact(cx, &m->x, m->fd, NULL, 4) == -EINVAL);
    TCHECK(&m->f, weft_send_all(cx, &m->x, m->fd, NULL, 4) == -EINVAL);
    /* none of that left the io busy: a real operation runs */
    WEFT_AWAIT(&m->f, m->r, recv_probing_busy(cx, m));
    TCHECK(&m->f, m->r == 1 && m->buf[0] == 'z');
    TCHECK(&m->f, m->busy_deadline == -EBUSY && m->busy_timeout == -EBUSY);
    /* and no deadline was left behind by the refused calls */
    TCHECK(&m->f, weft_io_timeout(&m->io, 0) == 0);
    WEFT_RETURN(&m->f, 0);
    WEFT_END(&m->f);
}

Test(net, misuse_is_refused_without_crashing)
{
    weft_runtime *rt = make(1);
    int s = -1, c = -1;
    cr_assert_eq(iot_tcp_pair(&s, &c), 0);
    /* NULL cx, from a plain thread */
    weft_io io = WEFT_IO_INIT;
    weft_xfer x = WEFT_XFER_INIT;
    char buf[4];
    struct statx stx;
    struct iovec iov = { buf, sizeof buf };
    cr_assert_eq(weft_socket(NULL, &io, AF_INET, SOCK_STREAM, 0), -EINVAL);
    cr_assert_eq(weft_accept(NULL, &io, s, NULL, NULL, 0), -EINVAL);
    cr_assert_eq(weft_connect(NULL, &io, s, NULL, 0), -EINVAL);
    cr_assert_eq(weft_recv(NULL, &io, s, buf, 1, 0), -EINVAL);
    cr_assert_eq(weft_send(NULL, &io, s, buf, 1, 0), -EINVAL);
    cr_assert_eq(weft_sendto(NULL, &io, s, buf, 1, 0, NULL, 0), -EINVAL);
    cr_assert_eq(weft_recvfrom(NULL, &io, s, buf, 1, 0, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_shutdown(NULL, &io, s, SHUT_RD), -EINVAL);
    cr_assert_eq(weft_openat(NULL, &io, AT_FDCWD, "/", O_RDONLY, 0), -EINVAL);
    cr_assert_eq(weft_read(NULL, &io, s, buf, 1, 0), -EINVAL);
    cr_assert_eq(weft_write(NULL, &io, s, buf, 1, 0), -EINVAL);
    cr_assert_eq(weft_readv(NULL, &io, s, &iov, 1, 0), -EINVAL);
    cr_assert_eq(weft_writev(NULL, &io, s, &iov, 1, 0), -EINVAL);
    cr_assert_eq(weft_fsync(NULL, &io, s, true), -EINVAL);
    cr_assert_eq(weft_statx(NULL, &io, AT_FDCWD, "/", 0, STATX_SIZE, &stx), -EINVAL);
    cr_assert_eq(WEFT_RELEASE_VALUE(weft_close(NULL, &io, s)), -EINVAL);
    cr_assert_eq(weft_send_all(NULL, &x, s, buf, 1), -EINVAL);
    cr_assert_eq(weft_recv_exact(NULL, &x, s, buf, 1), -EINVAL);
    cr_assert_eq(weft_io_deadline(NULL, 1), -EINVAL);
    cr_assert_eq(weft_io_timeout(NULL, 1), -EINVAL);
    cr_assert_eq(weft_tcp_listen(NULL, 0, 1), -EINVAL);
    cr_assert_lt(weft_local_port(-1), 0);
    cr_assert(iot_fd_open(s), "a refused close closed the fd");
    struct misuse m = { .x = WEFT_XFER_INIT, .fd = s, .peer = c };
    ok(run(rt, misuse_poll, &m, sizeof m));
    close(s);
    close(c);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- the operation table --------------------------------------------------------------- */

Test(net, every_operation_kind_has_a_table_entry)
{
    for (int k = 0; k < WEFT__OP_COUNT; k++) {
        cr_assert_not_null(weft__op_defs[k].name, "kind %d has no entry", k);
        cr_assert_gt(strlen(weft__op_defs[k].name), 0, "kind %d", k);
        for (int j = 0; j < k; j++)
            cr_assert_str_neq(weft__op_defs[k].name, weft__op_defs[j].name);
    }
    /* the fd-producing kinds close late results; close is never withdrawn */
    cr_assert(weft__op_defs[WEFT__OP_SOCKET].yields_fd);
    cr_assert(weft__op_defs[WEFT__OP_ACCEPT].yields_fd);
    cr_assert(weft__op_defs[WEFT__OP_OPENAT].yields_fd);
    cr_assert_not(weft__op_defs[WEFT__OP_RECV].yields_fd);
    cr_assert_not(weft__op_defs[WEFT__OP_CLOSE].withdrawable);
    cr_assert(weft__op_defs[WEFT__OP_RECV].withdrawable);
}

/* ---- -ENOMEM from the op-record slab ------------------------------------------------------ */

/* OPS_PER_CHUNK in reactor/op_table.c: records come in chunks of 256, the
 * slab grows (two allocations: the chunk index, then the chunk) only when
 * every record is in use. */
#define CHUNK 256

struct holder {
    weft_frame f;
    weft_io io;
    int fd;
    bool noted;
    flag *in_flight;
    char c;
    weft_poll r;
};

static weft_poll holder_recv(weft_cx *cx, struct holder *h)
{
    weft_poll r = weft_recv(cx, &h->io, h->fd, &h->c, 1, 0);
    if (r == WEFT_PENDING && !h->noted) {
        h->noted = true;        /* its record is allocated now */
        flag_add(h->in_flight, 1);
    }
    return r;
}

static weft_poll holder_poll(weft_cx *cx, void *p)
{
    struct holder *h = p;
    WEFT_BEGIN(&h->f);
    WEFT_AWAIT(&h->f, h->r, holder_recv(cx, h));
    WEFT_RETURN(&h->f, h->r);
    WEFT_END(&h->f);
}

struct oom {
    weft_frame f;
    weft_io io;
    int fd;
    char buf[8];
    weft_poll r;
};

static weft_poll oom_poll(weft_cx *cx, void *p)
{
    struct oom *o = p;
    WEFT_BEGIN(&o->f);
    /* the slab is full: growing it fails at its first allocation... */
    weft__alloc_fail_after(1);
    WEFT_AWAIT(&o->f, o->r, weft_recv(cx, &o->io, o->fd, o->buf, 1, 0));
    weft__alloc_fail_after(0);
    TCHECK(&o->f, o->r == -ENOMEM);
    /* ...or at its second (the index was allocated and must be given back) */
    weft__alloc_fail_after(2);
    WEFT_AWAIT(&o->f, o->r, weft_recv(cx, &o->io, o->fd, o->buf, 1, 0));
    weft__alloc_fail_after(0);
    TCHECK(&o->f, o->r == -ENOMEM);
    /* the same io works afterwards, and the slab grows */
    WEFT_AWAIT(&o->f, o->r, weft_recv(cx, &o->io, o->fd, o->buf, 1, 0));
    TCHECK(&o->f, o->r == 1 && o->buf[0] == 'q');
    WEFT_RETURN(&o->f, 0);
    WEFT_END(&o->f);
}

Test(net, enomem_at_first_poll_is_reported_and_the_runtime_recovers)
{
    int fds0 = iot_fd_count();
    weft_runtime *rt = make(1);     /* one worker: one slab, no allocation from elsewhere */
    int hs = -1, hc = -1, s = -1, c = -1;
    cr_assert_eq(iot_tcp_pair(&hs, &hc), 0);
    cr_assert_eq(iot_tcp_pair(&s, &c), 0);
    /* A fresh slab is empty: the first operation already has to grow it. */
    cr_assert_eq(send(c, "q", 1, 0), 1);
    struct oom first = { .fd = s };
    ok(run(rt, oom_poll, &first, sizeof first));
    /* That grew the slab to one chunk. Fill it: CHUNK recvs in flight, one
     * record each, so the next operation has to grow the slab again (this
     * time with an index to copy). */
    static flag in_flight;
    static weft_join h[CHUNK];
    for (int i = 0; i < CHUNK; i++) {
        struct holder hd = { .fd = hs, .in_flight = &in_flight };
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(holder_poll, &hd), &h[i]), 0);
    }
    flag_wait_ge(&in_flight, CHUNK);
    cr_assert_eq(send(c, "q", 1, 0), 1);
    struct oom second = { .fd = s };
    ok(run(rt, oom_poll, &second, sizeof second));
    /* release the holders: EOF for every recv */
    shutdown(hc, SHUT_WR);
    for (int i = 0; i < CHUNK; i++) {
        weft_outcome o;
        cr_assert_eq(weft_join_wait(&h[i], &o), 0);
        cr_assert_eq(o.value, 0);
    }
    cr_assert_eq(weft_runtime_free(rt), 0);
    close(hs);
    close(hc);
    close(s);
    close(c);
    cr_assert_eq(iot_fd_count(), fds0);
    WEFT_ASSERT_NO_LEAKS();
}
