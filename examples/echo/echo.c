/*
 * examples/echo/echo.c - weft-echo: a TCP echo server on 127.0.0.1.
 *
 *     weft-echo --port P [--threads N] [--max-conns M] [--idle-ms T] [--conn-ms L]
 *
 * Each connection reads up to 4 KiB and writes it all back, until the peer
 * closes, an error occurs, the connection sits idle for T ms (no data
 * arrives, or the peer stops reading our echo), it has been open for L ms
 * (however busy: so a client trickling bytes cannot keep its slot), or the
 * server is stopped.
 * --port 0 picks a free port; the chosen one is printed first:
 *
 *     listening on 127.0.0.1:<port>
 *
 * The tasks:
 *
 *   signal_watch  awaits SIGINT or SIGTERM (weft_signal_wait) and cancels
 *                 the server's stop token; on SIGUSR1 it prints the task
 *                 dump and the metrics to stderr (weft/observe.h) and waits
 *                 on (../common/server.c, shared with weft-http; main,
 *                 options and setup are here).
 *   acceptor      accepts connections and spawns one conn task for each
 *                 (conn.c, conn.h).
 *   conn          the echo loop of one connection (conn.c, conn.h).
 *
 * Every task is bound to the stop token at spawn. Cancelling it makes their
 * pending await (accept, recv, send) yield -ECANCELED, and each task returns
 * on its own: nothing is torn down in the middle of a step. main joins the
 * acceptor and the watcher, then waits on a wait group for every conn task
 * (detached: nobody needs their results) to have returned and closed its
 * socket in its drop hook, shuts the runtime down (nothing is left for it to
 * cancel or tear down) and prints one summary line, with the number of fds still open compared with
 * the start of main (0 unless something leaked). Exit status 0 after a
 * signal, 1 after a fatal error, 2 for bad options.
 *
 * Connection limit: when M connections are open, a new one is accepted and
 * closed at once, so its client sees the connection end immediately (instead
 * of hanging in the listen backlog) and the server keeps draining the backlog.
 *
 * Build against an installed weft:
 *     cc echo.c conn.c ../common/server.c $(pkg-config --cflags --libs weft) -o weft-echo
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/signal.h>
#include <weft/weft.h>

#include "../common/server.h"
#include "conn.h"

struct options {
    unsigned port;
    unsigned threads;           /* 0: one worker per online CPU */
    unsigned max_conns;
    unsigned idle_ms;
    unsigned conn_ms;
};

/* ---- setup and teardown -------------------------------------------------- */

static const char usage[] =
    "usage: weft-echo --port P [--threads N] [--max-conns M] [--idle-ms T] [--conn-ms L]\n"
    "  --port P       TCP port on 127.0.0.1; 0 picks a free one\n"
    "  --threads N    worker threads (default: WEFT_WORKERS, else one per\n"
    "                 online CPU)\n"
    "  --max-conns M  connections served at once; more are closed at once\n"
    "                 (default 1024)\n"
    "  --idle-ms T    close a connection idle for T ms (default 30000)\n"
    "  --conn-ms L    close a connection L ms after it opened, however busy\n"
    "                 (default 60000; 0: never)\n";

static bool parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){ .port = UINT_MAX, .threads = 0, .max_conns = 1024,
                           .idle_ms = 30000, .conn_ms = 60000 };
    for (int i = 1; i < argc; i += 2) {
        const char *name = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok;
        if (strcmp(name, "--port") == 0)
            ok = example_parse_unsigned(value, 0, 65535, &o->port);
        else if (strcmp(name, "--threads") == 0)
            ok = example_parse_unsigned(value, 0, 4096, &o->threads);
        else if (strcmp(name, "--max-conns") == 0)
            ok = example_parse_unsigned(value, 1, 1u << 20, &o->max_conns);
        else if (strcmp(name, "--idle-ms") == 0)
            ok = example_parse_unsigned(value, 1, UINT_MAX, &o->idle_ms);
        else if (strcmp(name, "--conn-ms") == 0)
            ok = example_parse_unsigned(value, 0, UINT_MAX, &o->conn_ms);
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "weft-echo: bad or unknown option '%s'\n", name);
            return false;
        }
    }
    if (o->port == UINT_MAX) {
        fprintf(stderr, "weft-echo: --port is required\n");
        return false;
    }
    return true;
}

static int open_listener(unsigned port)
{
    struct sockaddr_in addr = {
        .sin_family = AF_INET,
        .sin_port = htons((uint16_t)port),
        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
    };
    return weft_tcp_listen((const struct sockaddr *)&addr, sizeof addr, SOMAXCONN);
}

/* Spawns a task (bound to the stop token by its description), keeping its
 * join handle. */
static int spawn(weft_runtime *rt, const weft_task_desc *desc, weft_join *h)
{
    int rc = weft_spawn(rt, desc, h);
    if (rc < 0)
        fprintf(stderr, "weft-echo: spawn %s: %s (%s)\n", desc->name, weft_err_name(rc), weft_strerror(rc));
    return rc;
}

/* Runs the tasks until the server is stopped and every connection has ended;
 * 0, or a negative errno. */
static int run_tasks(weft_runtime *rt, struct echo_server *srv, weft_signal *sig)
{
    struct example_signal_watch watch = { .prog = "weft-echo", .sig = sig, .token = srv->stop,
                                          .signo = &srv->signo };
    struct echo_acceptor acc;
    weft_task_desc watch_desc, acc_desc;
    example_signal_watch_task(&watch, &watch_desc);
    echo_acceptor_task(srv, &acc, &acc_desc);
    weft_join watch_h = WEFT_JOIN_INIT, acc_h = WEFT_JOIN_INIT;

    int rc = spawn(rt, &watch_desc, &watch_h);
    if (rc < 0)
        return rc;
    rc = spawn(rt, &acc_desc, &acc_h);
    if (rc == 0) {
        printf("listening on 127.0.0.1:%d\n", weft_local_port(srv->listen_fd));
        fflush(stdout);
        /* Returns once the stop token is cancelled, or after a fatal accept
         * error (the acceptor then cancels the token itself). */
        rc = example_join("weft-echo", &acc_h, "acceptor");
    }
    weft_token_cancel(srv->stop);       /* no-op after a signal */
    int wrc = example_join("weft-echo", &watch_h, "signal watcher");
    /* The acceptor is gone, so no conn task is added any more; the token
     * reached all of them at their pending recv or send. */
    weft_waitgroup_wait_blocking(&srv->live);
    return rc < 0 ? rc : wrc;
}

/* Starts the runtime, serves until stopped, shuts down; 0 or a negative errno.
 * The environment's options (WEFT_WORKERS, ...) apply, --threads wins. */
static int serve(struct echo_server *srv, weft_signal *sig, unsigned threads)
{
    weft_runtime *rt;
    int rc = example_runtime_new("weft-echo", threads, &rt);
    if (rc < 0)
        return rc;
    rc = run_tasks(rt, srv, sig);
    /* Every task has returned: shutdown only stops the workers and closes
     * their rings. The counters are final. */
    int src = weft_runtime_free(rt);
    if (src < 0)
        fprintf(stderr, "weft-echo: shutdown: %s (%s)\n", weft_err_name(src), weft_strerror(src));
    return rc < 0 ? rc : src;
}

static void print_summary(struct echo_server *srv, int fds_left)
{
    int signo = atomic_load(&srv->signo);
    printf("weft-echo: stopped (%s); served %llu connections (%llu rejected at the limit,"
           " %llu closed idle, %llu at the connection deadline), echoed %llu messages"
           " (%llu bytes); %d fds left open\n",
           signo ? strsignal(signo) : "error",
           (unsigned long long)atomic_load(&srv->served),
           (unsigned long long)atomic_load(&srv->rejected),
           (unsigned long long)atomic_load(&srv->idled),
           (unsigned long long)atomic_load(&srv->cut),
           (unsigned long long)atomic_load(&srv->messages),
           (unsigned long long)atomic_load(&srv->bytes), fds_left);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct options opt;
    if (!parse_options(argc, argv, &opt)) {
        fputs(usage, stderr);
        return 2;
    }
    example_fit_fd_limit("weft-echo", opt.max_conns, 1);
    int fds_at_start = example_count_open_fds();

    struct echo_server srv = {
        .max_conns = opt.max_conns,
        .idle_ns = (uint64_t)opt.idle_ms * 1000000u,
        .conn_ns = (uint64_t)opt.conn_ms * 1000000u,
        .listen_fd = -1,
        .live = WEFT_WAITGROUP_INIT,
    };
    weft_signal sig = WEFT_SIGNAL_INIT;
    int rc = example_open_signals(&sig);
    if (rc < 0) {
        fprintf(stderr, "weft-echo: signals: %s (%s)\n", weft_err_name(rc), weft_strerror(rc));
        return 1;
    }
    rc = srv.listen_fd = open_listener(opt.port);
    if (rc < 0) {
        fprintf(stderr, "weft-echo: listen on 127.0.0.1:%u: %s (%s)\n", opt.port, weft_err_name(rc), weft_strerror(rc));
        weft_signal_close(&sig);
        return 1;
    }
    rc = weft_token_new(&srv.stop);
    if (rc == 0) {
        rc = serve(&srv, &sig, opt.threads);
        weft_token_release(srv.stop);
    } else {
        fprintf(stderr, "weft-echo: token: %s (%s)\n", weft_err_name(rc), weft_strerror(rc));
    }
    close(srv.listen_fd);
    weft_signal_close(&sig);
    print_summary(&srv, example_count_open_fds() - fds_at_start);
    return rc < 0 ? 1 : 0;
}
