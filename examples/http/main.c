/*
 * examples/http/main.c - weft-http: an HTTP/1.1 static-file server on
 * 127.0.0.1.
 *
 *     weft-http --port P --root DIR [--threads N] [--max-conns M]
 *               [--max-header B] [--idle-ms T] [--request-ms T]
 *               [--conn-ms T] [--grace-ms T]
 *
 * GET and HEAD of the regular files below DIR, keep-alive and pipelining
 * (conn.c), limits (http.h) and deadline scopes (conn.c). --port 0 picks a free port; the
 * chosen one is printed first:
 *
 *     listening on 127.0.0.1:<port>
 *
 * The tasks: the signal watcher (../common/server.c, shared with weft-echo)
 * awaits SIGINT or SIGTERM and cancels the drain token (SIGUSR1 makes it
 * print the task dump and the metrics to stderr, weft/observe.h); the acceptor
 * (accept.c) stops accepting on it; each conn task (conn.c) finishes the
 * request it is serving and closes. main then gives the
 * connections --grace-ms to end (the grace task, here); those still open are
 * cancelled through the stop token. main waits on a wait group for every
 * conn task's drop hook, shuts the runtime down and prints a summary ending
 * in the number of fds still open compared with the start (0 unless
 * something leaked). Exit status 0 after a signal, 1 after a fatal error, 2
 * for bad options. WEFT_WORKERS and the other WEFT_* variables apply
 * (weft_runtime_opts_from_env); --threads wins over them.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft/net.h>
#include <weft/signal.h>
#include <weft/weft.h>

#include "../common/server.h"
#include "http.h"

#define MS 1000000ull

struct options {
    unsigned port, threads, max_conns, max_header;
    unsigned idle_ms, request_ms, conn_ms, grace_ms;
    const char *root;
};

/* ---- the grace period --------------------------------------------------------- */

struct grace {
    weft_frame f;
    struct http_server *srv;
    uint64_t grace_ns;
    weft_selector sel;
    weft_waitgroup_waiter wait;
    weft_sleep nap;
    weft_poll r;
};

static weft_poll grace_branch(weft_cx *cx, void *frame, unsigned i)
{
    struct grace *g = frame;
    if (i == 0)
        return weft_waitgroup_wait(cx, &g->srv->live, &g->wait);
    return weft_sleep_for(cx, &g->nap, g->grace_ns);
}

/* After the drain: every connection closed, or the grace period over; then
 * the connections still open are cancelled. */
static weft_poll grace_poll(weft_cx *cx, void *frame)
{
    struct grace *g = frame;
    WEFT_BEGIN(&g->f);
    WEFT_SELECT_AWAIT(&g->f, g->r, &g->sel, 2, grace_branch, g);
    if (weft_select_winner(&g->sel) != 0)
        weft_token_cancel(g->srv->stop);
    WEFT_RETURN(&g->f, 0);
    WEFT_END(&g->f);
}

/* ---- options --------------------------------------------------------------------- */

static const char usage[] =
    "usage: weft-http --port P --root DIR [options]\n"
    "  --port P          TCP port on 127.0.0.1; 0 picks a free one\n"
    "  --root DIR        serve the regular files below DIR\n"
    "  --threads N       worker threads (default: WEFT_WORKERS, else one per CPU)\n"
    "  --max-conns M     connections served at once; more wait (default 1024)\n"
    "  --max-header B    request line and headers, bytes; more: 414/431 (default 8192)\n"
    "  --idle-ms T       wait for the next request on a connection (default 30000)\n"
    "  --request-ms T    a request, first line to last byte sent (default 10000)\n"
    "  --conn-ms T       a whole connection; 0: no bound (default 300000)\n"
    "  --grace-ms T      after SIGINT/SIGTERM, let requests finish (default 5000)\n";

static bool parse_option(struct options *o, const char *name, const char *value)
{
    static const struct { const char *name; size_t off; unsigned min, max; } nums[] = {
        { "--port", offsetof(struct options, port), 0, 65535 },
        { "--threads", offsetof(struct options, threads), 0, 4096 },
        { "--max-conns", offsetof(struct options, max_conns), 1, 1u << 20 },
        { "--max-header", offsetof(struct options, max_header), 256, 1u << 20 },
        { "--idle-ms", offsetof(struct options, idle_ms), 1, UINT_MAX },
        { "--request-ms", offsetof(struct options, request_ms), 1, UINT_MAX },
        { "--conn-ms", offsetof(struct options, conn_ms), 0, UINT_MAX },
        { "--grace-ms", offsetof(struct options, grace_ms), 0, UINT_MAX },
    };
    if (strcmp(name, "--root") == 0) {
        o->root = value;
        return value != NULL;
    }
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if (strcmp(name, nums[i].name) == 0)
            return example_parse_unsigned(value, nums[i].min, nums[i].max,
                                  (unsigned *)((char *)o + nums[i].off));
    return false;
}

static bool parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){ .port = UINT_MAX, .max_conns = 1024, .max_header = 8192,
                           .idle_ms = 30000, .request_ms = 10000, .conn_ms = 300000,
                           .grace_ms = 5000 };
    for (int i = 1; i < argc; i += 2) {
        if (!parse_option(o, argv[i], i + 1 < argc ? argv[i + 1] : NULL)) {
            fprintf(stderr, "weft-http: bad or unknown option '%s'\n", argv[i]);
            return false;
        }
    }
    if (o->port == UINT_MAX || !o->root) {
        fprintf(stderr, "weft-http: --port and --root are required\n");
        return false;
    }
    return true;
}

/* ---- setup, run, teardown ------------------------------------------------------------ */

static int report(const char *what, int rc)
{
    if (rc < 0 && rc != -ECANCELED)
        fprintf(stderr, "weft-http: %s: %s (%s)\n", what, weft_err_name(rc), weft_strerror(rc));
    return rc == -ECANCELED ? 0 : rc;
}

static int spawn(weft_runtime *rt, weft_task_desc desc, weft_join *h)
{
    return report(desc.name, weft_spawn(rt, &desc, h));
}

/* Serve until drained, give the connections the grace period, wait for
 * every one of them. 0 or a negative errno. */
static int run_tasks(weft_runtime *rt, struct http_server *srv, weft_signal *sig,
                     uint64_t grace_ns)
{
    struct example_signal_watch watch = { .prog = "weft-http", .sig = sig, .token = srv->drain,
                                          .signo = &srv->signo };
    struct http_acceptor acc;
    struct grace grace = { .srv = srv, .grace_ns = grace_ns, .sel = WEFT_SELECTOR_INIT,
                           .wait = WEFT_WAITGROUP_WAITER_INIT, .nap = WEFT_SLEEP_INIT };
    weft_task_desc d;
    weft_join watch_h = WEFT_JOIN_INIT, acc_h = WEFT_JOIN_INIT, grace_h = WEFT_JOIN_INIT;

    example_signal_watch_task(&watch, &d);
    int rc = spawn(rt, d, &watch_h);
    if (rc < 0)
        return rc;
    http_acceptor_task(srv, &acc, &d);
    rc = spawn(rt, d, &acc_h);
    if (rc == 0) {
        printf("listening on 127.0.0.1:%d\n", weft_local_port(srv->listen_fd));
        fflush(stdout);
        rc = example_join("weft-http", &acc_h, "acceptor");     /* returns once drained */
    }
    weft_token_cancel(srv->drain);          /* no-op after a signal */
    int wrc = example_join("weft-http", &watch_h, "signal watcher");
    /* No conn task is added any more. */
    d = WEFT_TASK(grace_poll, &grace);
    d.name = "grace";
    if (spawn(rt, d, &grace_h) == 0)
        example_join("weft-http", &grace_h, "grace");
    else
        weft_token_cancel(srv->stop);
    weft_waitgroup_wait_blocking(&srv->live);
    return rc < 0 ? rc : wrc;
}

static int serve(struct http_server *srv, weft_signal *sig, const struct options *o)
{
    weft_runtime *rt;
    int rc = example_runtime_new("weft-http", o->threads, &rt);
    if (rc < 0)
        return rc;
    rc = run_tasks(rt, srv, sig, (uint64_t)o->grace_ms * MS);
    int src = report("shutdown", weft_runtime_free(rt));
    return rc < 0 ? rc : src;
}

static void print_summary(struct http_server *srv, int fds_left)
{
    int signo = atomic_load(&srv->signo);
    printf("weft-http: stopped (%s); served %llu connections, %llu responses (%llu errors);"
           " %llu cut by a deadline, %llu cancelled after the grace period; %d fds left open\n",
           signo ? strsignal(signo) : "error", (unsigned long long)atomic_load(&srv->conns),
           (unsigned long long)atomic_load(&srv->requests),
           (unsigned long long)atomic_load(&srv->errors),
           (unsigned long long)atomic_load(&srv->timeouts),
           (unsigned long long)atomic_load(&srv->cut), fds_left);
    fflush(stdout);
}

static int open_listener(unsigned port)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    return weft_listen((const struct sockaddr *)&addr, sizeof addr, SOMAXCONN, 0);
}

/* Everything main opens before the runtime: 0, or 1 after saying why. */
static int open_all(struct http_server *srv, const struct options *o, weft_signal *sig)
{
    int rc = example_open_signals(sig);
    if (rc < 0)
        return report("signals", rc), 1;
    srv->root_fd = open(o->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (srv->root_fd < 0)
        return fprintf(stderr, "weft-http: --root %s: %s\n", o->root, strerror(errno)), 1;
    srv->listen_fd = open_listener(o->port);
    if (srv->listen_fd < 0)
        return report("listen", srv->listen_fd), 1;
    if (weft_token_new(&srv->drain) < 0 || weft_token_new(&srv->stop) < 0)
        return report("token", -ENOMEM), 1;
    return 0;
}

static void close_all(struct http_server *srv, weft_signal *sig)
{
    if (srv->stop)
        weft_token_release(srv->stop);
    if (srv->drain)
        weft_token_release(srv->drain);
    if (srv->listen_fd >= 0)
        close(srv->listen_fd);
    if (srv->root_fd >= 0)
        close(srv->root_fd);
    weft_semaphore_destroy(&srv->limit);
    weft_signal_close(sig);     /* -EINVAL if it was never opened */
}

int main(int argc, char **argv)
{
    struct options o;
    if (!parse_options(argc, argv, &o)) {
        fputs(usage, stderr);
        return 2;
    }
    example_fit_fd_limit("weft-http", o.max_conns, 2);     /* a socket and a file */
    int fds_at_start = example_count_open_fds();
    struct http_server srv = {
        .listen_fd = -1, .root_fd = -1, .max_header = o.max_header,
        .idle_ns = o.idle_ms * MS, .request_ns = o.request_ms * MS, .conn_ns = o.conn_ms * MS,
        .linger_ns = 1000 * MS, .live = WEFT_WAITGROUP_INIT,
        .limit = WEFT_SEMAPHORE_INIT(o.max_conns),
    };
    weft_signal sig = WEFT_SIGNAL_INIT;
    int rc = open_all(&srv, &o, &sig);
    if (rc == 0)
        rc = serve(&srv, &sig, &o) < 0;
    close_all(&srv, &sig);
    print_summary(&srv, example_count_open_fds() - fds_at_start);
    return rc;
}
