/*
 * bench/rpc_server.c - weft-rpc: the server of the RPC latency and CPU
 * workloads (docs/benchmarks.md), beside tokio-rpc and go-rpc in bench/peers.
 *
 *     weft-rpc --port P [--threads N] [--work-ns W]
 *
 * Listens on 127.0.0.1:P (0 picks a free port), prints
 * "listening on 127.0.0.1:<port>", and serves 64-byte requests: each
 * connection reads up to 4 KiB at a time; for every whole 64-byte request in
 * what it has, in order, it busy-waits W ns (default 2000) on the monotonic
 * clock (the "work" of the request) and copies the request into the reply
 * buffer; then it writes all those replies back in one send, and keeps any
 * partial request for the next read. A client may pipeline: nothing waits
 * for a reply to be read. Exits with status 0 on SIGINT or SIGTERM.
 *
 * Tasks: one acceptor, one task per connection, on N workers (default 2). The
 * main thread only waits for the signal (sigwait) and then shuts the runtime
 * down, which cancels every task at its pending accept or recv; a connection
 * task's drop hook closes its socket.
 *
 * The structure is that of examples/echo (acceptor + one task per connection)
 * without its connection limit, idle timeout and signalfd task.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft/weft.h>

#define BUF_SIZE 4096
#define REQ_SIZE 64

static uint64_t work_ns = 2000;

static void spin_ns(uint64_t ns)
{
    uint64_t start = weft_now_ns();
    while (weft_now_ns() - start < ns)
        ;
}

struct conn {
    weft_frame f;
    int fd;
    size_t have;                /* bytes in buf */
    size_t whole;               /* bytes of whole requests answered */
    weft_io rx;
    weft_xfer tx;
    weft_poll n;
    unsigned char buf[BUF_SIZE];    /* in the frame: the kernel writes into it */
    unsigned char out[BUF_SIZE];
};

static weft_poll conn_poll(weft_cx *cx, void *frame)
{
    struct conn *c = frame;
    WEFT_BEGIN(&c->f);
    for (;;) {
        WEFT_AWAIT(&c->f, c->n, weft_recv(cx, &c->rx, c->fd, c->buf + c->have,
                                          BUF_SIZE - c->have, 0));
        if (c->n <= 0)
            break;
        c->have += (size_t)c->n;
        c->whole = c->have / REQ_SIZE * REQ_SIZE;
        for (size_t i = 0; i < c->whole; i += REQ_SIZE) {
            spin_ns(work_ns);
            memcpy(c->out + i, c->buf + i, REQ_SIZE);
        }
        if (c->whole == 0)
            continue;
        c->tx = (weft_xfer)WEFT_XFER_INIT;
        WEFT_AWAIT(&c->f, c->n, weft_send_all(cx, &c->tx, c->fd, c->out, c->whole));
        if (c->n < 0)
            break;
        memmove(c->buf, c->buf + c->whole, c->have - c->whole);
        c->have -= c->whole;
    }
    /* EOF, a reset or the shutdown's cancellation: all normal endings. */
    WEFT_RETURN(&c->f, 0);
    WEFT_END(&c->f);
}

static void conn_drop(void *frame)
{
    close(((struct conn *)frame)->fd);
}

struct acceptor {
    weft_frame f;
    int listen_fd;
    weft_io io;
    weft_poll r;
};

static weft_poll acceptor_poll(weft_cx *cx, void *frame)
{
    struct acceptor *a = frame;
    WEFT_BEGIN(&a->f);
    for (;;) {
        WEFT_AWAIT(&a->f, a->r, weft_accept(cx, &a->io, a->listen_fd, NULL, NULL, 0));
        if (a->r == -ECANCELED)
            break;
        if (a->r < 0) {
            fprintf(stderr, "weft-rpc: accept: %s\n", weft_strerror((int)a->r));
            continue;
        }
        int fd = (int)a->r, one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn init = { .fd = fd, .rx = WEFT_IO_INIT, .tx = WEFT_XFER_INIT };
        weft_task_desc d = WEFT_TASK(conn_poll, &init);
        d.drop = conn_drop;
        d.name = "rpc-conn";
        int rc = weft_spawn_detached(weft_cx_runtime(cx), &d);
        if (rc < 0) {
            close(fd);
            if (rc == -ESHUTDOWN)
                break;
            fprintf(stderr, "weft-rpc: spawn: %s\n", weft_strerror(rc));
        }
    }
    WEFT_RETURN(&a->f, 0);
    WEFT_END(&a->f);
}

static int usage(void)
{
    fprintf(stderr, "usage: weft-rpc --port P [--threads N] [--work-ns W]\n");
    return 2;
}

int main(int argc, char **argv)
{
    long port = -1, threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        char *end;
        long v = strtol(argv[i + 1], &end, 10);
        if (*end != '\0' || v < 0)
            return usage();
        if (strcmp(argv[i], "--port") == 0 && v <= 65535)
            port = v;
        else if (strcmp(argv[i], "--threads") == 0 && v > 0)
            threads = v;
        else if (strcmp(argv[i], "--work-ns") == 0)
            work_ns = (uint64_t)v;
        else
            return usage();
    }
    if (port < 0 || argc % 2 == 0)
        return usage();

    /* Blocked before the workers start, so they inherit the mask and only
     * sigwait below ever takes the signal. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int lfd = weft_tcp_listen((const struct sockaddr *)&addr, sizeof addr, SOMAXCONN);
    if (lfd < 0) {
        fprintf(stderr, "weft-rpc: listen: %s\n", weft_strerror(lfd));
        return 1;
    }
    weft_runtime *rt;
    weft_runtime_opts opts = { .threads = (unsigned)threads };
    int rc = weft_runtime_new(&rt, &opts);
    struct acceptor acc = { .listen_fd = lfd, .io = WEFT_IO_INIT };
    weft_task_desc d = WEFT_TASK(acceptor_poll, &acc);
    d.name = "rpc-acceptor";
    if (rc < 0 || (rc = weft_spawn_detached(rt, &d)) < 0) {
        fprintf(stderr, "weft-rpc: start: %s\n", weft_strerror(rc));
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", weft_local_port(lfd));
    fflush(stdout);

    int sig;
    while (sigwait(&set, &sig) != 0)
        ;
    weft_runtime_free(rt);      /* cancels every task; drop hooks close sockets */
    close(lfd);
    return 0;
}
