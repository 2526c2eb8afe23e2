/*
 * tests/reactor/io_test.h - helpers shared by the I/O tests (test_net.c,
 * test_fs.c, test_io_cancel.c) and by tests/stress/stress_io.c. Nothing here
 * uses Criterion, so the stress executable (which must run under TSan) can
 * include it too; helpers report failures as a negative errno.
 *
 *   iot_fd_count()            entries in /proc/self/fd (fd-leak checks)
 *   iot_listen(backlog, &sa)  a blocking loopback listener on an ephemeral port
 *   iot_tcp_pair(&a, &b)      a connected loopback TCP pair (blocking sockets);
 *                             iot_tcp_pair_bufs caps the socket buffers
 *   iot_full_backlog(&sa, &l, &filler)
 *                             a listener whose accept queue is full, so a
 *                             connect to sa blocks (SYNs are dropped)
 *   iot_fill(fd)              send until the socket buffer is full
 *   iot_drain(fd)             read whatever is queued, without blocking
 *   flag_*                    the futex counter of tests/test_util.h: tests
 *                             synchronise on these, never on sleeps
 *   iot_worker(cx)            index of the worker polling the task (internal)
 *   iot_drops / iot_count_drop
 *                             a drop hook that counts how often it ran
 *
 * Sleeps that appear in the tests only widen a race window; no pass/fail
 * depends on how long anything took, except lower bounds (a deadline never
 * fires early).
 */
#ifndef WEFT_TESTS_REACTOR_IO_TEST_H
#define WEFT_TESTS_REACTOR_IO_TEST_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "weft/weft.h"
#include "runtime/task.h"
#include "runtime/worker.h"
#include "test_util.h"

#define IOT_MS 1000000ull
#define IOT_HOUR (3600ull * 1000 * IOT_MS)

/* ---- file descriptors ---------------------------------------------------------- */

static inline int iot_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -errno;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;       /* the directory's own fd */
}

static inline bool iot_fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* ---- sockets --------------------------------------------------------------------- */

static inline int iot_listen(int backlog, struct sockaddr_in *sa)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = weft_tcp_listen((struct sockaddr *)&a, sizeof a, backlog);
    if (fd < 0)
        return fd;
    int port = weft_local_port(fd);
    if (port <= 0) {
        close(fd);
        return port < 0 ? port : -EPROTO;
    }
    a.sin_port = htons((uint16_t)port);
    if (sa)
        *sa = a;
    return fd;
}

static inline void iot_bufs(int fd, int size)
{
    if (size > 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
}

/* A blocking client connected to sa; bufsize > 0 caps its socket buffers. */
static inline int iot_connect_bufs(const struct sockaddr_in *sa, int bufsize)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    iot_bufs(fd, bufsize);
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static inline int iot_connect(const struct sockaddr_in *sa)
{
    return iot_connect_bufs(sa, 0);
}

/* *srv is the accepted end, *cli the connecting end, TCP_NODELAY on both;
 * bufsize > 0 caps both ends' buffers (set before the handshake, so the
 * window stays small and a large send really blocks). */
static inline int iot_tcp_pair_bufs(int *srv, int *cli, int bufsize)
{
    struct sockaddr_in sa;
    int l = iot_listen(4, &sa);
    if (l < 0)
        return l;
    iot_bufs(l, bufsize);
    int c = iot_connect_bufs(&sa, bufsize);
    if (c < 0) {
        close(l);
        return c;
    }
    int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    int err = s < 0 ? -errno : 0;
    close(l);
    if (err) {
        close(c);
        return err;
    }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *srv = s;
    *cli = c;
    return 0;
}

static inline int iot_tcp_pair(int *srv, int *cli)
{
    return iot_tcp_pair_bufs(srv, cli, 0);
}

/* A listener with backlog 0 whose accept queue already holds one connection
 * (*filler): a further connect to *sa stays in SYN_SENT until it is cancelled
 * (checked in this sandbox: non-routable addresses answer at once here). */
static inline int iot_full_backlog(struct sockaddr_in *sa, int *listener, int *filler)
{
    int l = iot_listen(0, sa);
    if (l < 0)
        return l;
    int c = iot_connect(sa);
    if (c < 0) {
        close(l);
        return c;
    }
    *listener = l;
    *filler = c;
    return 0;
}

/* Send (without blocking) until the kernel takes no more; the socket stays a
 * blocking socket. Returns the bytes queued. */
static inline long iot_fill(int fd)
{
    static char junk[65536];
    long total = 0;
    for (;;) {
        ssize_t n = send(fd, junk, sizeof junk, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0)
            return total;
        total += n;
    }
}

/* Read whatever is queued without blocking; returns the bytes read. */
static inline long iot_drain(int fd)
{
    static _Thread_local char sink[65536];
    long total = 0;
    for (;;) {
        ssize_t n = recv(fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n <= 0)
            return total;
        total += n;
    }
}

/* Block until fd is readable or timeout_ms passed: 1 readable, 0 not. */
static inline int iot_readable(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    return r > 0;
}

/* ---- runtime internals the tests look at ------------------------------------------ */

static inline int iot_worker(weft_cx *cx)
{
    struct weft_cx *c = (struct weft_cx *)cx;
    return c && c->worker ? (int)c->worker->index : -1;
}

static _Atomic int iot_drops;

static inline void iot_count_drop(void *frame)
{
    (void)frame;
    atomic_fetch_add(&iot_drops, 1);
}

static inline void iot_spin(unsigned n)
{
    for (volatile unsigned i = 0; i < n; i++)
        ;
}

static inline void iot_sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

#endif /* WEFT_TESTS_REACTOR_IO_TEST_H */
