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
 *                 the server's stop token (here, with main, options and setup);
 *                 on SIGUSR1 it prints the task dump and the runtime's
 *                 metrics to stderr (weft/observe.h) and waits on.
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
 *     cc echo.c conn.c $(pkg-config --cflags --libs weft) -o weft-echo
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/signal.h>
#include <weft/weft.h>

#include "conn.h"

struct options {
    unsigned port;
    unsigned threads;           /* 0: one worker per online CPU */
    unsigned max_conns;
    unsigned idle_ms;
    unsigned conn_ms;
};

/* ---- the signal watcher -------------------------------------------------- */

struct signal_watch {
    weft_frame f;
    struct echo_server *srv;
    weft_signal *sig;           /* main's; open until the watcher is joined */
    weft_poll r;
};

/* Waits for SIGINT or SIGTERM and cancels the stop token; reports on
 * SIGUSR1. Also returns, with -ECANCELED, when the token is cancelled for
 * another reason. */
static weft_poll signal_watch_poll(weft_cx *cx, void *frame)
{
    struct signal_watch *s = frame;
    WEFT_BEGIN(&s->f);
    for (;;) {
        WEFT_AWAIT(&s->f, s->r, weft_signal_wait(cx, s->sig));
        if (s->r != SIGUSR1)
            break;
        weft_task_dump_print(weft_cx_runtime(cx), stderr);
        weft_metrics_print(weft_cx_runtime(cx), stderr);
    }
    if (s->r > 0) {
        atomic_store(&s->srv->signo, (int)s->r);
        weft_token_cancel(s->srv->stop);
        WEFT_RETURN(&s->f, 0);
    }
    if (s->r != -ECANCELED) {
        fprintf(stderr, "weft-echo: signal wait: %s (%s)\n", weft_err_name((int)s->r), weft_strerror((int)s->r));
        weft_token_cancel(s->srv->stop);
    }
    WEFT_RETURN(&s->f, s->r);
    WEFT_END(&s->f);
}

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

/* Parses a decimal in [min, max]; false if text is not one. */
static bool parse_unsigned(const char *text, unsigned min, unsigned max, unsigned *out)
{
    char *end;
    if (!text || *text < '0' || *text > '9')
        return false;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

static bool parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){ .port = UINT_MAX, .threads = 0, .max_conns = 1024,
                           .idle_ms = 30000, .conn_ms = 60000 };
    for (int i = 1; i < argc; i += 2) {
        const char *name = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok;
        if (strcmp(name, "--port") == 0)
            ok = parse_unsigned(value, 0, 65535, &o->port);
        else if (strcmp(name, "--threads") == 0)
            ok = parse_unsigned(value, 0, 4096, &o->threads);
        else if (strcmp(name, "--max-conns") == 0)
            ok = parse_unsigned(value, 1, 1u << 20, &o->max_conns);
        else if (strcmp(name, "--idle-ms") == 0)
            ok = parse_unsigned(value, 1, UINT_MAX, &o->idle_ms);
        else if (strcmp(name, "--conn-ms") == 0)
            ok = parse_unsigned(value, 0, UINT_MAX, &o->conn_ms);
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

/* Every connection holds an fd: raise the soft limit if the default one would
 * run out before --max-conns does. Not fatal: accept backs off on EMFILE. */
static void fit_fd_limit(unsigned max_conns)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)max_conns + 64;   /* listener, rings, stdio, ... */
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        fprintf(stderr, "weft-echo: open-file limit %llu is below --max-conns\n",
                (unsigned long long)rl.rlim_cur);
}

/* Blocks SIGINT, SIGTERM and SIGUSR1 in this thread and opens *sig for them. Called
 * before the runtime starts, so every worker inherits the mask and the
 * signals are only ever consumed through weft_signal_wait (weft/signal.h). */
static int open_signals(weft_signal *sig)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    int rc = weft_signal_block(&set);
    return rc < 0 ? rc : weft_signal_open(sig, &set);
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

/* Spawns a task bound to the stop token, keeping its join handle. */
static int spawn_bound(weft_runtime *rt, struct echo_server *srv, weft_task_desc desc,
                       const char *name, weft_join *h)
{
    desc.name = name;
    desc.tokens = &srv->stop;
    desc.ntokens = 1;
    int rc = weft_spawn(rt, &desc, h);
    if (rc < 0)
        fprintf(stderr, "weft-echo: spawn %s: %s (%s)\n", name, weft_err_name(rc), weft_strerror(rc));
    return rc;
}

/* Waits for a task from main's thread; returns its result or an error. */
static int join(weft_join *h, const char *name)
{
    weft_outcome out;
    int rc = weft_join_wait(h, &out);
    if (rc == 0)
        rc = out.status < 0 ? out.status : (int)out.value;
    if (rc < 0 && rc != -ECANCELED)
        fprintf(stderr, "weft-echo: %s: %s (%s)\n", name, weft_err_name(rc), weft_strerror(rc));
    return rc == -ECANCELED ? 0 : rc;
}

/* Runs the tasks until the server is stopped and every connection has ended;
 * 0, or a negative errno. */
static int run_tasks(weft_runtime *rt, struct echo_server *srv, weft_signal *sig)
{
    struct signal_watch watch = { .srv = srv, .sig = sig };
    struct echo_acceptor acc;
    weft_task_desc acc_desc;
    echo_acceptor_task(srv, &acc, &acc_desc);
    weft_join watch_h = WEFT_JOIN_INIT, acc_h = WEFT_JOIN_INIT;

    int rc = spawn_bound(rt, srv, WEFT_TASK(signal_watch_poll, &watch), "signal-watch", &watch_h);
    if (rc < 0)
        return rc;
    rc = spawn_bound(rt, srv, acc_desc, "acceptor", &acc_h);
    if (rc == 0) {
        printf("listening on 127.0.0.1:%d\n", weft_local_port(srv->listen_fd));
        fflush(stdout);
        /* Returns once the stop token is cancelled, or after a fatal accept
         * error (the acceptor then cancels the token itself). */
        rc = join(&acc_h, "acceptor");
    }
    weft_token_cancel(srv->stop);       /* no-op after a signal */
    int wrc = join(&watch_h, "signal watcher");
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
    weft_runtime_opts opts = { 0 };
    const char *bad;
    int rc = weft_runtime_opts_from_env(&opts, &bad);
    if (rc < 0) {
        fprintf(stderr, "weft-echo: invalid %s=%s\n", bad, getenv(bad));
        return rc;
    }
    if (threads)
        opts.threads = threads;
    rc = weft_runtime_new(&rt, &opts);
    if (rc < 0) {
        fprintf(stderr, "weft-echo: runtime: %s (%s)\n", weft_err_name(rc), weft_strerror(rc));
        return rc;
    }
    rc = run_tasks(rt, srv, sig);
    /* Every task has returned: shutdown only stops the workers and closes
     * their rings. The counters are final. */
    int src = weft_runtime_free(rt);
    if (src < 0)
        fprintf(stderr, "weft-echo: shutdown: %s (%s)\n", weft_err_name(src), weft_strerror(src));
    return rc < 0 ? rc : src;
}

/* Open fds of this process (-1 if /proc is unavailable): compared at the start
 * and the end of main, it shows that every connection, ring and helper fd the
 * server opened was closed again. */
static int count_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;               /* the directory's own fd */
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
    fit_fd_limit(opt.max_conns);
    int fds_at_start = count_open_fds();

    struct echo_server srv = {
        .max_conns = opt.max_conns,
        .idle_ns = (uint64_t)opt.idle_ms * 1000000u,
        .conn_ns = (uint64_t)opt.conn_ms * 1000000u,
        .listen_fd = -1,
        .live = WEFT_WAITGROUP_INIT,
    };
    weft_signal sig = WEFT_SIGNAL_INIT;
    int rc = open_signals(&sig);
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
    print_summary(&srv, count_open_fds() - fds_at_start);
    return rc < 0 ? 1 : 0;
}
