/*
 * tests/reactor/test_listen.c - weft/net.h: Unix-domain listen and connect
 * (a path, a stale socket file removed only with WEFT_LISTEN_UNLINK and only
 * if it is a socket, the abstract namespace), SO_REUSEPORT (two listeners on
 * one port, refused without the flag), connect with a timeout against a
 * listener whose backlog is full (-ETIMEDOUT, the socket closed) and to a
 * path nobody listens on, and the accept loop under a semaphore: never more
 * connections than permits, the next one accepted when a permit comes back,
 * and an abort while waiting for a permit or while accepting holds nothing.
 * Ordered by handshakes (flags, operations seen waiting in the kernel).
 */
#include <criterion/criterion.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "io_test.h"
#include "test_util.h"

TestSuite(listen, .timeout = 60);

static weft_runtime *make(void)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = 2, .shutdown_grace_ms = 100 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    return rt;
}

static void tmp_path(char *buf, size_t n, const char *tag)
{
    snprintf(buf, n, "/tmp/weft-listen-%d-%s.sock", (int)getpid(), tag);
    unlink(buf);
}

/* ---- connect ------------------------------------------------------------------------- */

struct dial {
    weft_frame f;
    weft_connector c;
    const char *path;               /* NULL: addr */
    struct sockaddr_in addr;
    uint64_t timeout;
    weft_poll r;
};

static weft_poll dial_poll(weft_cx *cx, void *p)
{
    struct dial *d = p;
    WEFT_BEGIN(&d->f);
    if (d->path)
        WEFT_AWAIT(&d->f, d->r, weft_unix_connect(cx, &d->c, d->path, d->timeout));
    else
        WEFT_AWAIT(&d->f, d->r, weft_connect_timeout(cx, &d->c, (struct sockaddr *)&d->addr,
                                                     sizeof d->addr, d->timeout));
    WEFT_RETURN(&d->f, d->r);
    WEFT_END(&d->f);
}

static weft_poll dial(weft_runtime *rt, struct dial *d)
{
    weft_outcome o;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(dial_poll, d), &o), 0);
    cr_assert_eq(o.status, 0);
    return o.value;
}

Test(listen, unix_listen_and_connect_by_path_and_abstract_name)
{
    weft_runtime *rt = make();
    int fds0 = iot_fd_count();
    char path[108];
    tmp_path(path, sizeof path, "a");
    int l = weft_unix_listen(path, 8, 0);
    cr_assert_geq(l, 0, "%s", weft_strerror(l));
    cr_assert(fcntl(l, F_GETFD) & FD_CLOEXEC);
    struct dial d = { .path = path, .timeout = 0 };
    weft_poll fd = dial(rt, &d);
    cr_assert_geq(fd, 0, "%s", weft_strerror((int)fd));
    int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    cr_assert_geq(s, 0);
    cr_assert_eq(write((int)fd, "hi", 2), 2);
    char buf[2];
    cr_assert_eq(read(s, buf, 2), 2);
    close(s);
    close((int)fd);
    close(l);
    /* the file stays: a second listen fails, unless told to remove it */
    cr_assert_eq(weft_unix_listen(path, 8, 0), -EADDRINUSE);
    l = weft_unix_listen(path, 8, WEFT_LISTEN_UNLINK);
    cr_assert_geq(l, 0);
    close(l);
    unlink(path);
    /* the abstract namespace: no file at all */
    char name[64];
    snprintf(name, sizeof name, "@weft-listen-%d", (int)getpid());
    l = weft_unix_listen(name, 8, 0);
    cr_assert_geq(l, 0);
    struct dial a = { .path = name, .timeout = 1000 * IOT_MS };
    fd = dial(rt, &a);
    cr_assert_geq(fd, 0);
    close((int)fd);
    close(l);
    /* nobody listens: connect's error, and no socket left behind */
    struct dial none = { .path = path };
    cr_assert_eq(dial(rt, &none), -ENOENT);
    cr_assert_eq(iot_fd_count(), fds0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(listen, unlink_removes_only_a_socket_file)
{
    char path[108];
    tmp_path(path, sizeof path, "f");
    int f = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    cr_assert_geq(f, 0);
    close(f);
    cr_assert_eq(weft_unix_listen(path, 8, WEFT_LISTEN_UNLINK), -EADDRINUSE);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "a regular file was removed");
    unlink(path);
}

Test(listen, reuseport_lets_two_listeners_share_a_port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int a = weft_listen((struct sockaddr *)&sa, sizeof sa, 8, WEFT_LISTEN_REUSEPORT);
    cr_assert_geq(a, 0);
    sa.sin_port = htons((uint16_t)weft_local_port(a));
    int b = weft_listen((struct sockaddr *)&sa, sizeof sa, 8, WEFT_LISTEN_REUSEPORT);
    cr_assert_geq(b, 0, "%s", weft_strerror(b));
    cr_assert_eq(weft_listen((struct sockaddr *)&sa, sizeof sa, 8, 0), -EADDRINUSE);
    close(a);
    close(b);
}

Test(listen, connect_timeout_to_a_full_backlog_times_out_and_closes_its_socket)
{
    weft_runtime *rt = make();
    struct dial d = { .timeout = 50 * IOT_MS };
    int l = -1, filler = -1;
    cr_assert_eq(iot_full_backlog(&d.addr, &l, &filler), 0);
    int fds0 = iot_fd_count();
    uint64_t t0 = weft_now_ns();
    cr_assert_eq(dial(rt, &d), -ETIMEDOUT);
    cr_assert_geq(weft_now_ns() - t0, 50 * IOT_MS, "a timeout fired early");
    cr_assert_eq(iot_fd_count(), fds0, "the socket was left open");
    /* with room in the backlog the same connect succeeds */
    close(filler);
    close(l);
    int l2 = iot_listen(8, &d.addr);
    cr_assert_geq(l2, 0);
    d.c = (weft_connector)WEFT_CONNECTOR_INIT;
    weft_poll fd = dial(rt, &d);
    cr_assert_geq(fd, 0);
    close((int)fd);
    close(l2);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(listen, an_aborted_connect_closes_its_socket)
{
    weft_runtime *rt = make();
    struct dial d = { .timeout = 0 };
    int l = -1, filler = -1;
    cr_assert_eq(iot_full_backlog(&d.addr, &l, &filler), 0);
    int fds0 = iot_fd_count();
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(dial_poll, &d), &h), 0);
    cr_assert(iot_wait_polls(IORING_OP_CONNECT, 1), "the connect never waited");
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(iot_fd_count(), fds0, "the socket was left open");
    close(filler);
    close(l);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- accept under a limit ---------------------------------------------------------------- */

static weft_semaphore limit;
static flag accepted;

struct server {
    weft_frame f;
    weft_acceptor a;
    int lfd;
    int fds[8];
    int n;
    weft_poll r;
};

/* Accepts until the semaphore is closed or the task is stopped. */
static weft_poll server_poll(weft_cx *cx, void *p)
{
    struct server *s = p;
    WEFT_BEGIN(&s->f);
    for (;;) {
        WEFT_AWAIT(&s->f, s->r, weft_accept_limited(cx, &s->a, s->lfd, &limit));
        if (s->r < 0)
            break;
        if (s->n < 8)
            s->fds[s->n++] = (int)s->r;
        flag_add(&accepted, 1);
    }
    for (int i = 0; i < s->n; i++)
        close(s->fds[i]);
    WEFT_RETURN(&s->f, s->r);
    WEFT_END(&s->f);
}

Test(listen, accept_limited_never_exceeds_its_permits)
{
    weft_runtime *rt = make();
    cr_assert_eq(weft_semaphore_init(&limit, 2), 0);
    struct sockaddr_in sa;
    struct server s = { .a = WEFT_ACCEPTOR_INIT };
    s.lfd = iot_listen(16, &sa);
    cr_assert_geq(s.lfd, 0);
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(server_poll, &s), &h), 0);
    int c[3];
    for (int i = 0; i < 3; i++)
        c[i] = iot_connect(&sa);    /* the third waits in the backlog */
    cr_assert(flag_wait_ge_for(&accepted, 2, 30000));
    /* no permit left: the task waits on the semaphore, not in accept */
    cr_assert_eq(weft_semaphore_available(&limit), 0);
    cr_assert_eq(flag_get(&accepted), 2);
    cr_assert_eq(weft_semaphore_release(&limit, 1), 0);     /* one connection ended */
    cr_assert(flag_wait_ge_for(&accepted, 3, 30000));
    /* aborted while waiting for a permit: holds nothing */
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(weft_semaphore_available(&limit), 0);
    cr_assert_eq(weft_semaphore_release(&limit, 3), 0);     /* the three closed */
    /* aborted while accepting: the permit comes back */
    struct server s2 = { .a = WEFT_ACCEPTOR_INIT, .lfd = s.lfd };
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(server_poll, &s2), &h), 0);
    cr_assert(iot_wait_polls(IORING_OP_ACCEPT, 1), "the accept never waited");
    cr_assert_eq(weft_semaphore_available(&limit), 2);
    cr_assert_eq(weft_abort(&h), 0);
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(weft_semaphore_available(&limit), 3);
    /* closing the semaphore stops an accept loop with -EPIPE */
    struct server s3 = { .a = WEFT_ACCEPTOR_INIT, .lfd = s.lfd };
    cr_assert_eq(weft_semaphore_close(&limit), 0);
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(server_poll, &s3), &o), 0);
    cr_assert_eq(o.value, -EPIPE);
    for (int i = 0; i < 3; i++)
        close(c[i]);
    close(s.lfd);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}
