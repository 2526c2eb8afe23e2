/*
 * rpc_client.c - open-loop load generator for the RPC latency and server-CPU
 * workloads of the weft benchmarks, neutral between the servers it measures
 * (weft-rpc, tokio-rpc, go-rpc).
 *
 *     rpc-client --port P --rate R [--conns C] [--seconds D] [--warmup W]
 *                [--drain S] [--threads T] [--server-pid PID]
 *
 * Open loop, as wrk2: request i (i = 0, 1, 2, ...) is due at
 * start + i / R seconds, on connection i mod C, whatever happened to the
 * requests before it: the client never waits for a reply before sending the
 * next request (a connection may have several in flight; the servers answer
 * them in order). A request is 64 bytes: its sequence number on the
 * connection (8 bytes), its due time (8 bytes) and filler; the reply is the
 * same 64 bytes back, checked.
 *
 * Coordinated omission: a request's latency is counted from its *due* time,
 * not from when it was actually written, to when its whole reply has been
 * read. A server that stalls therefore gets charged for every request that
 * should have gone out during the stall, not just for the one that was
 * stuck. The client's own lateness (due -> actually written, "send lag") is
 * measured separately: if it is small next to the latencies, the client kept
 * its schedule and the figures are the server's.
 *
 * Requests due in the first W seconds are warmup; those due in the next D
 * seconds are measured. After the last one the client waits up to S seconds
 * (--drain, default 2) for outstanding replies; a measured request still
 * unanswered then is counted (unanswered) with the latency it had reached.
 *
 * Each of the T threads (default 1) owns a contiguous slice of the
 * connections and sends their share of the schedule, sleeping in
 * epoll_pwait2 (nanosecond timeout; timer slack set to 1 ns) until its next
 * due time or a reply. Output: one line on stdout,
 *
 *     rpc <seconds> <replies_in_window> <replies_per_second>
 *
 * (replies read during the measured window: the CPU figures below are over
 * the same interval), and "key value" lines on
 * stderr: p50_us p99_us p999_us max_us (latency, bench/latency.h ranks),
 * lag_p50_us lag_p99_us lag_max_us (send lag), measured, unanswered,
 * client_cpu_s, server_cpu_s, server_user_s, server_sys_s, wall_s (CPU over
 * exactly the measured window; the server's from its process CPU clock).
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
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../client_util.h"

#include "../../latency.h"

#define REQ_SIZE 64
#define MAX_EVENTS 64
#define RECV_BUF 8192

struct conn {
    int fd;
    uint64_t next_seq;          /* sequence number of the next request */
    uint64_t acked;             /* replies read */
    uint64_t *due;              /* ring of the due times of requests in flight */
    size_t ring, head, tail;    /* capacity, pop index, push index */
    unsigned char partial[REQ_SIZE];
    size_t npartial;            /* bytes of a reply read so far */
    unsigned char *out;         /* bytes not yet accepted by the socket */
    size_t outlen, outcap;
    bool want_out;
};

struct worker {
    pthread_t thread;
    int epfd;
    size_t lo, hi;              /* its connections */
    uint64_t *lat, *lag;        /* measured requests' latencies, send lags */
    size_t nlat, nlag, cap;
    atomic_uint_fast64_t replies;   /* replies read; written by this worker only */
    uint64_t unanswered;
    bool failed;
};

/* The schedule, shared read-only. */
static uint64_t start_ns, rate, nconns, total;
static uint64_t window_from, window_to;     /* absolute due times */
static uint64_t drain_ns;
static struct conn *conns;

static const char usage[] =
    "usage: rpc-client --port P --rate R [--conns C] [--seconds D] [--warmup W]\n"
    "                  [--drain S] [--threads T] [--server-pid PID]\n"
    "defaults: 32 connections, 5 s measured after 1 s of warmup, 2 s drain, 1 thread\n";

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ull),
                           .tv_nsec = (long)(t % 1000000000ull) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static uint64_t due_of(uint64_t i)
{
    return start_ns + i * 1000000000ull / rate;
}

static bool set_out(struct worker *w, struct conn *c, bool want)
{
    struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c };
    c->want_out = want;
    return epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0;
}

/* Writes what the socket takes of c->out; EPOLLOUT while some is left. */
static bool flush(struct worker *w, struct conn *c)
{
    size_t sent = 0;
    while (sent < c->outlen) {
        ssize_t n = send(c->fd, c->out + sent, c->outlen - sent, MSG_NOSIGNAL);
        if (n > 0)
            sent += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        else {
            perror("rpc-client: send");
            return false;
        }
    }
    memmove(c->out, c->out + sent, c->outlen - sent);
    c->outlen -= sent;
    bool want = c->outlen > 0;
    return want == c->want_out || set_out(w, c, want);
}

static bool send_request(struct worker *w, struct conn *c, uint64_t due)
{
    if (c->outcap - c->outlen < REQ_SIZE) {
        size_t cap = c->outcap ? 2 * c->outcap : 16 * REQ_SIZE;
        unsigned char *out = realloc(c->out, cap);
        if (!out)
            return false;
        c->out = out;
        c->outcap = cap;
    }
    unsigned char *req = c->out + c->outlen;
    memset(req, 'r', REQ_SIZE);
    memcpy(req, &c->next_seq, 8);
    memcpy(req + 8, &due, 8);
    c->outlen += REQ_SIZE;
    c->next_seq++;
    c->due[c->tail] = due;
    c->tail = (c->tail + 1) % c->ring;
    return flush(w, c);
}

/* One whole reply arrived at `now`: check it, settle its request. */
static bool settle(struct worker *w, struct conn *c, const unsigned char *reply, uint64_t now)
{
    uint64_t seq, due;
    memcpy(&seq, reply, 8);
    memcpy(&due, reply + 8, 8);
    if (c->head == c->tail || seq != c->acked || due != c->due[c->head]) {
        fprintf(stderr, "rpc-client: reply out of order or corrupt (seq %" PRIu64
                        ", expected %" PRIu64 ")\n", seq, c->acked);
        return false;
    }
    c->head = (c->head + 1) % c->ring;
    c->acked++;
    if (due >= window_from && due < window_to && w->nlat < w->cap)
        w->lat[w->nlat++] = now - due;
    atomic_store_explicit(&w->replies,
                          atomic_load_explicit(&w->replies, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return true;
}

static bool receive(struct worker *w, struct conn *c, unsigned char *buf)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, RECV_BUF, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0) {
            fprintf(stderr, "rpc-client: %s\n", n == 0 ? "server closed a connection"
                                                        : strerror(errno));
            return false;
        }
        uint64_t now = now_ns();
        size_t off = 0;
        if (c->npartial > 0) {
            size_t take = REQ_SIZE - c->npartial < (size_t)n ? REQ_SIZE - c->npartial : (size_t)n;
            memcpy(c->partial + c->npartial, buf, take);
            c->npartial += take;
            off = take;
            if (c->npartial == REQ_SIZE) {
                c->npartial = 0;
                if (!settle(w, c, c->partial, now))
                    return false;
            }
        }
        for (; off + REQ_SIZE <= (size_t)n; off += REQ_SIZE)
            if (!settle(w, c, buf + off, now))
                return false;
        memcpy(c->partial, buf + off, (size_t)n - off);
        c->npartial += (size_t)n - off;
        /* A short read emptied the socket: level-triggered epoll reports
         * the next bytes, no need for a recv that says EAGAIN. */
        if ((size_t)n < RECV_BUF)
            return true;
    }
}

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    struct epoll_event events[MAX_EVENTS];
    unsigned char *buf = malloc(RECV_BUF);
    /* Sleeps end when asked, not up to 50 us later (the default slack). */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    /* The cursor walks this worker's requests: i = k * nconns + c, c in [lo, hi). */
    uint64_t k = 0, c = w->lo;
    uint64_t end = due_of(total), give_up = end + drain_ns;
    if (!buf)
        goto fail;
    for (;;) {
        uint64_t now = now_ns();
        uint64_t i = k * nconns + c;
        while (i < total && due_of(i) <= now) {
            uint64_t due = due_of(i);
            if (due >= window_from && due < window_to && w->nlag < w->cap)
                w->lag[w->nlag++] = now - due;
            if (!send_request(w, &conns[c], due))
                goto fail;
            if (++c == w->hi) {
                c = w->lo;
                k++;
            }
            i = k * nconns + c;
        }
        bool outstanding = false;
        for (size_t j = w->lo; j < w->hi && !outstanding; j++)
            outstanding = conns[j].head != conns[j].tail;
        if (i >= total && !outstanding)
            break;
        if (now >= give_up)
            break;
        uint64_t wake = i < total ? due_of(i) : give_up;
        uint64_t wait = wake > now ? wake - now : 0;
        struct timespec ts = { .tv_sec = (time_t)(wait / 1000000000ull),
                               .tv_nsec = (long)(wait % 1000000000ull) };
        int n = epoll_pwait2(w->epfd, events, MAX_EVENTS, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            perror("rpc-client: epoll_pwait2");
            goto fail;
        }
        for (int e = 0; e < n; e++) {
            struct conn *cn = events[e].data.ptr;
            if ((events[e].events & EPOLLOUT) && !flush(w, cn))
                goto fail;
            if ((events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !receive(w, cn, buf))
                goto fail;
        }
    }
    /* Measured requests never answered: counted at the latency they reached. */
    uint64_t now = now_ns();
    for (size_t j = w->lo; j < w->hi; j++) {
        struct conn *cn = &conns[j];
        for (size_t h = cn->head; h != cn->tail; h = (h + 1) % cn->ring) {
            uint64_t due = cn->due[h];
            if (due >= window_from && due < window_to) {
                w->unanswered++;
                if (w->nlat < w->cap)
                    w->lat[w->nlat++] = now - due;
            }
        }
    }
    free(buf);
    return NULL;
fail:
    free(buf);
    w->failed = true;
    return NULL;
}

static double number_arg(const char *name, const char *text, double min, double max)
{
    char *end = NULL;
    errno = 0;
    double v = text ? strtod(text, &end) : 0;
    if (!text || errno != 0 || end == text || *end != '\0' || !(v >= min && v <= max)) {
        fprintf(stderr, "rpc-client: bad value for %s\n%s", name, usage);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    double port = 0, r = 0, cn = 32, seconds = 5, warmup = 1, drain = 2, threads = 1, spid = 0;
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--port") == 0)
            port = number_arg(argv[i], v, 1, 65535);
        else if (strcmp(argv[i], "--rate") == 0)
            r = number_arg(argv[i], v, 1, 1e8);
        else if (strcmp(argv[i], "--conns") == 0)
            cn = number_arg(argv[i], v, 1, 65536);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = number_arg(argv[i], v, 0.001, 1e5);
        else if (strcmp(argv[i], "--warmup") == 0)
            warmup = number_arg(argv[i], v, 0, 1e5);
        else if (strcmp(argv[i], "--drain") == 0)
            drain = number_arg(argv[i], v, 0, 1e5);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = number_arg(argv[i], v, 1, 1024);
        else if (strcmp(argv[i], "--server-pid") == 0)
            spid = number_arg(argv[i], v, 1, 1 << 30);
        else {
            fprintf(stderr, "rpc-client: unknown argument '%s'\n%s", argv[i], usage);
            return 2;
        }
    }
    if (port < 1 || r < 1) {
        fprintf(stderr, "rpc-client: --port and --rate are required\n%s", usage);
        return 2;
    }
    rate = (uint64_t)r;
    nconns = (uint64_t)cn;
    size_t nthreads = (size_t)threads < nconns ? (size_t)threads : nconns;
    uint64_t warm_ns = (uint64_t)(warmup * 1e9), meas_ns = (uint64_t)(seconds * 1e9);
    total = (warm_ns + meas_ns) * rate / 1000000000ull;
    drain_ns = (uint64_t)(drain * 1e9);
    uint64_t measured = meas_ns * rate / 1000000000ull + 1;

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < nconns + 64) {
        rl.rlim_cur = rl.rlim_max < nconns + 64 ? rl.rlim_max : nconns + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    conns = calloc(nconns, sizeof *conns);
    struct worker *workers = calloc(nthreads, sizeof *workers);
    if (!conns || !workers)
        return 1;
    for (size_t j = 0; j < nconns; j++) {
        conns[j].ring = total / nconns + 2;
        conns[j].due = malloc(conns[j].ring * sizeof *conns[j].due);
        if (!conns[j].due)
            return 1;
    }
    for (size_t t = 0; t < nthreads; t++) {
        struct worker *w = &workers[t];
        w->lo = t * nconns / nthreads;
        w->hi = (t + 1) * nconns / nthreads;
        w->cap = measured;
        w->lat = malloc(measured * sizeof *w->lat);
        w->lag = malloc(measured * sizeof *w->lag);
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (!w->lat || !w->lag || w->epfd < 0)
            return 1;
        for (size_t j = w->lo; j < w->hi; j++) {
            struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &conns[j] };
            conns[j].fd = open_conn((unsigned)port);
            if (conns[j].fd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, conns[j].fd, &ev) != 0) {
                perror("rpc-client: connect");
                return 1;
            }
        }
    }

    start_ns = now_ns() + 20000000ull;     /* every thread is up by then */
    window_from = start_ns + warm_ns;
    window_to = window_from + meas_ns;
    for (size_t t = 0; t < nthreads; t++)
        if (pthread_create(&workers[t].thread, NULL, run_worker, &workers[t]) != 0)
            return 1;

    /* CPU of both sides, and replies read, over the measured window: all
     * sampled together at its edges (as late as this thread wakes up). */
    struct proc_cpu s0 = { 0 }, s1 = { 0 };
    sleep_until(window_from);
    uint64_t r0 = 0, r1 = 0;
    for (size_t t = 0; t < nthreads; t++)
        r0 += atomic_load(&workers[t].replies);
    double c0 = cpu_seconds();
    if (spid && !read_proc_cpu((pid_t)spid, &s0)) {
        fprintf(stderr, "rpc-client: cannot read the CPU time of process %d\n", (int)spid);
        return 1;
    }
    uint64_t w0 = now_ns();
    sleep_until(window_to);
    for (size_t t = 0; t < nthreads; t++)
        r1 += atomic_load(&workers[t].replies);
    double c1 = cpu_seconds();
    if (spid && !read_proc_cpu((pid_t)spid, &s1)) {
        fprintf(stderr, "rpc-client: cannot read the CPU time of process %d\n", (int)spid);
        return 1;
    }
    uint64_t w1 = now_ns();

    bool failed = false;
    size_t nlat = 0, nlag = 0;
    uint64_t in_window = r1 - r0, unanswered = 0;
    uint64_t *lat = malloc(measured * nthreads * sizeof *lat);
    uint64_t *lag = malloc(measured * nthreads * sizeof *lag);
    if (!lat || !lag)
        return 1;
    for (size_t t = 0; t < nthreads; t++) {
        struct worker *w = &workers[t];
        pthread_join(w->thread, NULL);
        failed |= w->failed;
        memcpy(lat + nlat, w->lat, w->nlat * sizeof *lat);
        memcpy(lag + nlag, w->lag, w->nlag * sizeof *lag);
        nlat += w->nlat;
        nlag += w->nlag;
        unanswered += w->unanswered;
    }
    if (failed)
        return 1;
    double wall = (double)(w1 - w0) / 1e9;
    printf("rpc %.6f %" PRIu64 " %.0f\n", wall, in_window, (double)in_window / wall);
    lat_print(stderr, "", lat, nlat);
    lat_sort(lag, nlag);
    fprintf(stderr, "lag_p50_us %.1f\nlag_p99_us %.1f\nlag_max_us %.1f\n",
            (double)lat_rank(lag, nlag, 500) / 1e3, (double)lat_rank(lag, nlag, 990) / 1e3,
            (double)lat_rank(lag, nlag, 1000) / 1e3);
    fprintf(stderr, "measured %zu\nunanswered %" PRIu64 "\nwall_s %.6f\nclient_cpu_s %.6f\n",
            nlat, unanswered, wall, c1 - c0);
    if (spid)
        fprintf(stderr, "server_cpu_s %.6f\nserver_user_s %.2f\nserver_sys_s %.2f\n",
                s1.total - s0.total, s1.user - s0.user, s1.sys - s0.sys);
    for (size_t j = 0; j < nconns; j++) {
        close(conns[j].fd);
        free(conns[j].due);
        free(conns[j].out);
    }
    return 0;
}
