/*
 * tests/reactor/io_test.h - helpers shared by the I/O tests (test_net.c,
 * test_fs.c, test_io_cancel_*.c) and by tests/stress/stress_io.c. Nothing here
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
 *   iot_fill(fd)              send until the socket buffer is full (a TCP
 *                             socket may take more later: its peer's window
 *                             grows; a Unix stream stays full)
 *   iot_drain(fd)             read whatever is queued, without blocking
 *   flag_*                    the futex counter of tests/test_util.h: tests
 *                             synchronise on these, never on sleeps
 *   iot_worker(cx)            index of the worker polling the task (internal)
 *   iot_drops / iot_count_drop
 *                             a drop hook that counts how often it ran
 *   iot_wait_polls(op, n) / iot_wait_threads_in(where, n)
 *                             wait until operations have reached the kernel
 *                             (see "what the kernel holds" below)
 *
 * No test sleeps to order events, and no pass/fail depends on how long
 * anything took, except lower bounds (a deadline never fires early).
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
#include <stdio.h>
#include <stdlib.h>
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

/* Pacing for the stress executable's load loops only: how long it sleeps
 * varies the interleaving, never what a check expects. Tests wait for a flag
 * or for one of the conditions below instead. */
static inline void iot_pace_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- what the kernel holds --------------------------------------------------------- */

/*
 * A test that stops an operation "in flight" must know it is in the kernel,
 * not guess it from a sleep. Two things the kernel shows make that
 * observable:
 *
 *   - An io_uring request waiting for its file (a recv on an empty socket, an
 *     accept, a send on a full socket, a connect in progress, a read of an
 *     empty pipe) is armed on the file's poll queue, and the ring's
 *     /proc/self/fdinfo lists it under "PollList:" as "op=<opcode>, ...".
 *     iot_ring_polls counts the entries of one opcode over every ring (one
 *     per worker). Each worker also keeps one READ of its wake-up eventfd
 *     armed while it sleeps (reactor/ring.h), so of the READ entries one per
 *     ring may not be the test's: iot_wait_polls counts only those beyond
 *     that many, which can only be the test's.
 *   - A request that blocks in io-wq (a FIFO openat with O_CREAT) is an io-wq
 *     thread asleep in the kernel; /proc/self/task/<tid>/wchan names where.
 *
 * The waits poll (the kernel offers nothing to block on) with a bound of
 * IOT_SEEN_MS, a hang guard only: the condition normally holds within
 * microseconds, and the caller fails the test when it never does.
 */
#define IOT_SEEN_MS 30000

static inline void iot_pause(void)
{
    const struct timespec ts = { 0, 100000 };   /* pacing of a poll loop only */
    nanosleep(&ts, NULL);
}

/* PollList entries of `opcode` in the fdinfo of ring fd, or -errno. */
static inline int iot_fdinfo_polls(int fd, unsigned opcode)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char line[512];
    bool in_list = false;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (!in_list) {
            in_list = strncmp(line, "PollList:", 9) == 0;
            continue;
        }
        unsigned op;
        if (sscanf(line, " op=%u,", &op) != 1)
            break;              /* the next section */
        n += op == opcode;
    }
    fclose(f);
    return n;
}

/* Whether fd is an io_uring (its /proc/self/fd link names the anon inode). */
static inline bool iot_is_ring(const char *fd_name)
{
    char path[300], link[64];
    snprintf(path, sizeof path, "/proc/self/fd/%s", fd_name);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0)
        return false;
    link[n] = '\0';
    return strcmp(link, "anon_inode:[io_uring]") == 0;
}

/* PollList entries of `opcode` (IORING_OP_*) over every io_uring of the
 * process, which in a test are the workers' rings; *rings says how many
 * there are. Found through /proc/self/fd, so this does not depend on where
 * the runtime keeps its rings. */
static inline int iot_ring_polls(unsigned opcode, int *rings)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -errno;
    int n = 0, nrings = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !iot_is_ring(e->d_name))
            continue;
        int k = iot_fdinfo_polls(atoi(e->d_name), opcode);
        if (k > 0)
            n += k;
        nrings++;
    }
    closedir(d);
    if (rings)
        *rings = nrings;
    return n;
}

/* Wait until at least n of the test's `opcode` requests wait in the kernel
 * for their files. False if that was never seen within IOT_SEEN_MS. */
static inline bool iot_wait_polls(unsigned opcode, int n)
{
    uint64_t give_up = weft_now_ns() + IOT_SEEN_MS * IOT_MS;
    for (;;) {
        int rings = 0;
        int seen = iot_ring_polls(opcode, &rings);
        int base = opcode == IORING_OP_READ ? rings : 0;   /* the wake-up READs */
        if (seen >= base + n)
            return true;
        if (weft_now_ns() > give_up)
            return false;
        iot_pause();
    }
}

/* Threads of this process asleep in the kernel (wchan) in one of the
 * functions named by `where`, a NULL-terminated list. */
static inline int iot_threads_in(const char *const *where)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -errno;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], wchan[128] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/wchan", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;           /* the thread has just exited */
        if (fgets(wchan, sizeof wchan, f)) {
            wchan[strcspn(wchan, "\n")] = '\0';
            for (const char *const *w = where; *w; w++)
                n += strcmp(wchan, *w) == 0;
        }
        fclose(f);
    }
    closedir(d);
    return n;
}

/* Wait until at least n threads are asleep in `where`; false if that was
 * never seen within IOT_SEEN_MS. */
static inline bool iot_wait_threads_in(const char *const *where, int n)
{
    uint64_t give_up = weft_now_ns() + IOT_SEEN_MS * IOT_MS;
    while (iot_threads_in(where) < n) {
        if (weft_now_ns() > give_up)
            return false;
        iot_pause();
    }
    return true;
}

/* Where an io-wq thread opening a FIFO that has no writer sleeps: fs/pipe.c's
 * fifo_open, in wait_for_partner unless the compiler inlined that. */
static const char *const iot_fifo_open_wchan[] = { "wait_for_partner", "fifo_open", NULL };

#endif /* WEFT_TESTS_REACTOR_IO_TEST_H */
