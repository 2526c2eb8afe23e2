/*
 * echo_client.c - closed-loop TCP echo load generator for the weft echo
 * benchmark, neutral between the servers it measures.
 *
 * It opens C connections to 127.0.0.1:P. Each connection sends S bytes, waits
 * until all S bytes have come back (and match), and sends again. Connections
 * are spread over T threads, each running its own level-triggered epoll loop
 * over non-blocking sockets. After a warmup it counts completed round trips
 * for D seconds and prints one line on stdout:
 *
 *     echo <seconds> <messages> <messages_per_second>
 *
 * Its own CPU time over the measured window goes to stderr, so a caller can
 * check that the client was not the bottleneck. With --server-pid, the CPU
 * time the server process used over exactly the same window goes to stderr
 * too (user+sys of all its threads, from its process CPU clock, which has
 * nanosecond resolution; the user/sys split comes from /proc/PID/stat ticks):
 *
 *     echo-client: server cpu <s> s (user <s> s, sys <s> s) over <s> s wall
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../client_util.h"

#define MAX_EVENTS 256

struct conn {
    int fd;
    size_t sent;       /* bytes of the current message sent so far */
    size_t received;   /* bytes of the current message echoed so far */
    bool want_out;     /* registered for EPOLLOUT after a short send */
};

struct worker {
    pthread_t thread;
    int epfd;
    struct conn *conns;
    size_t nconns;
    unsigned char *buf;
    atomic_uint_fast64_t messages;  /* written by this worker only */
    bool failed;
};

static size_t msg_size;
static unsigned char *payload;
static atomic_bool stop;

static const char usage[] =
    "usage: echo-client --port P [--conns C] [--size S] [--seconds D]\n"
    "                   [--warmup W] [--threads T] [--server-pid PID]\n"
    "defaults: 64 connections, 64-byte messages, 5 s measured after 1 s of\n"
    "warmup, 1 thread\n";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_for(double seconds)
{
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static bool set_events(struct worker *w, struct conn *c, bool want_out)
{
    struct epoll_event ev = {
        .events = EPOLLIN | (want_out ? EPOLLOUT : 0),
        .data.ptr = c,
    };
    c->want_out = want_out;
    return epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0;
}

/* Sends what is left of the current message; waits for EPOLLOUT if the
 * socket buffer is full. */
static bool send_rest(struct worker *w, struct conn *c)
{
    while (c->sent < msg_size) {
        ssize_t n = send(c->fd, payload + c->sent, msg_size - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return c->want_out || set_events(w, c, true);
        } else {
            perror("echo-client: send");
            return false;
        }
    }
    return !c->want_out || set_events(w, c, false);
}

/* Reads echoed bytes; when the whole message is back, counts it and starts
 * the next one. */
static bool receive(struct worker *w, struct conn *c)
{
    while (c->received < msg_size) {
        ssize_t n = recv(c->fd, w->buf, msg_size - c->received, 0);
        if (n > 0) {
            if (memcmp(w->buf, payload + c->received, (size_t)n) != 0) {
                fprintf(stderr, "echo-client: echoed bytes differ from those sent\n");
                return false;
            }
            c->received += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
        } else {
            if (n == 0)
                fprintf(stderr, "echo-client: server closed a connection\n");
            else
                perror("echo-client: recv");
            return false;
        }
    }
    uint_fast64_t done = atomic_load_explicit(&w->messages, memory_order_relaxed);
    atomic_store_explicit(&w->messages, done + 1, memory_order_relaxed);
    c->sent = 0;
    c->received = 0;
    return send_rest(w, c);
}

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    struct epoll_event events[MAX_EVENTS];

    for (size_t i = 0; i < w->nconns; i++) {
        if (!send_rest(w, &w->conns[i]))
            goto fail;
    }
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int n = epoll_wait(w->epfd, events, MAX_EVENTS, 100);
        if (n < 0 && errno != EINTR) {
            perror("echo-client: epoll_wait");
            goto fail;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if ((events[i].events & EPOLLOUT) && !send_rest(w, c))
                goto fail;
            if ((events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !receive(w, c))
                goto fail;
        }
    }
    return NULL;

fail:
    w->failed = true;
    atomic_store(&stop, true);
    return NULL;
}

/* Parses a number in [min, max] or exits with the usage message. */
static double number_arg(const char *name, const char *text, double min, double max)
{
    char *end = NULL;
    errno = 0;
    double v = text ? strtod(text, &end) : 0;
    if (!text || errno != 0 || end == text || *end != '\0' || !(v >= min && v <= max)) {
        fprintf(stderr, "echo-client: bad value for %s\n%s", name, usage);
        exit(2);
    }
    return v;
}

/* Raises the open-file limit if the connections would not fit under it. */
static void ensure_fd_limit(size_t conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < conns + 64) {
        rl.rlim_cur = rl.rlim_max < conns + 64 ? rl.rlim_max : conns + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    double port = 0, conns = 64, size = 64, seconds = 5, warmup = 1, threads = 1, server_pid = 0;

    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--port") == 0)
            port = number_arg(argv[i], v, 1, 65535);
        else if (strcmp(argv[i], "--conns") == 0)
            conns = number_arg(argv[i], v, 1, 1 << 20);
        else if (strcmp(argv[i], "--size") == 0)
            size = number_arg(argv[i], v, 1, 1 << 26);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = number_arg(argv[i], v, 0.001, 1e6);
        else if (strcmp(argv[i], "--warmup") == 0)
            warmup = number_arg(argv[i], v, 0, 1e6);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = number_arg(argv[i], v, 1, 1024);
        else if (strcmp(argv[i], "--server-pid") == 0)
            server_pid = number_arg(argv[i], v, 1, 1 << 30);
        else {
            fprintf(stderr, "echo-client: unknown argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (port < 1) {
        fprintf(stderr, "echo-client: --port is required\n%s", usage);
        return 2;
    }
    size_t nconns = (size_t)conns, nthreads = (size_t)threads;
    if (nthreads > nconns)
        nthreads = nconns;
    msg_size = (size_t)size;
    ensure_fd_limit(nconns);

    payload = malloc(msg_size);
    struct conn *all = calloc(nconns, sizeof *all);
    struct worker *workers = calloc(nthreads, sizeof *workers);
    if (!payload || !all || !workers) {
        fprintf(stderr, "echo-client: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < msg_size; i++)
        payload[i] = (unsigned char)('a' + i % 26);

    /* Worker t owns the contiguous slice [t*C/T, (t+1)*C/T) of connections. */
    for (size_t t = 0; t < nthreads; t++) {
        struct worker *w = &workers[t];
        w->conns = all + t * nconns / nthreads;
        w->nconns = (t + 1) * nconns / nthreads - t * nconns / nthreads;
        w->buf = malloc(msg_size);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (!w->buf || w->epfd < 0) {
            perror("echo-client: worker setup");
            return 1;
        }
        for (size_t i = 0; i < w->nconns; i++) {
            struct conn *c = &w->conns[i];
            struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
            c->fd = open_conn((unsigned)port);
            if (c->fd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
                perror("echo-client: connect");
                return 1;
            }
        }
    }

    for (size_t t = 0; t < nthreads; t++) {
        if (pthread_create(&workers[t].thread, NULL, run_worker, &workers[t]) != 0) {
            fprintf(stderr, "echo-client: cannot start thread\n");
            return 1;
        }
    }

    sleep_for(warmup);
    uint64_t before = 0, after = 0;
    struct proc_cpu srv0 = { 0 }, srv1 = { 0 };
    pid_t spid = (pid_t)server_pid;
    if (spid && !read_proc_cpu(spid, &srv0)) {
        fprintf(stderr, "echo-client: cannot read the CPU time of process %d\n", (int)spid);
        return 1;
    }
    double t0 = now(), cpu0 = cpu_seconds();
    for (size_t t = 0; t < nthreads; t++)
        before += atomic_load(&workers[t].messages);
    sleep_for(seconds);
    for (size_t t = 0; t < nthreads; t++)
        after += atomic_load(&workers[t].messages);
    double elapsed = now() - t0, cpu = cpu_seconds() - cpu0;
    if (spid && !read_proc_cpu(spid, &srv1)) {
        fprintf(stderr, "echo-client: cannot read the CPU time of process %d\n", (int)spid);
        return 1;
    }

    atomic_store(&stop, true);
    bool failed = false;
    for (size_t t = 0; t < nthreads; t++) {
        pthread_join(workers[t].thread, NULL);
        failed |= workers[t].failed;
    }
    if (failed)
        return 1;

    uint64_t messages = after - before;
    printf("echo %.6f %" PRIu64 " %" PRIu64 "\n", elapsed, messages,
           (uint64_t)((double)messages / elapsed + 0.5));
    fprintf(stderr, "echo-client: cpu %.3f s over %.3f s wall (%.0f%% of one core, %zu thread%s)\n",
            cpu, elapsed, 100.0 * cpu / elapsed, nthreads, nthreads == 1 ? "" : "s");
    if (spid)
        fprintf(stderr, "echo-client: server cpu %.6f s (user %.2f s, sys %.2f s) over %.6f s wall\n",
                srv1.total - srv0.total, srv1.user - srv0.user, srv1.sys - srv0.sys, elapsed);

    for (size_t i = 0; i < nconns; i++)
        close(all[i].fd);
    for (size_t t = 0; t < nthreads; t++) {
        close(workers[t].epfd);
        free(workers[t].buf);
    }
    free(workers);
    free(all);
    free(payload);
    return 0;
}
