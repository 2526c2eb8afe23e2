/*
 * examples/echo/echo.c - weft-echo: a TCP echo server on 127.0.0.1.
 *
 *     weft-echo --port P [--threads N] [--max-conns M] [--idle-ms T]
 *
 * Each connection reads up to 4 KiB and writes it all back, until the peer
 * closes, an error occurs, the connection sits idle for T ms (no data
 * arrives, or the peer stops reading our echo), or the server is stopped.
 * --port 0 picks a free port; the chosen one is printed first:
 *
 *     listening on 127.0.0.1:<port>
 *
 * The tasks:
 *
 *   signal_watch  awaits a read on a signalfd; SIGINT or SIGTERM cancels the
 *                 server's stop token.
 *   acceptor      accepts connections and spawns one conn task for each.
 *   conn          the echo loop of one connection.
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
 *     cc echo.c $(pkg-config --cflags --libs weft) -o weft-echo
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.h>

#define BUF_SIZE 4096
#define BACKOFF_NS (100 * 1000000ull)   /* pause after running out of fds */

struct options {
    unsigned port;
    unsigned threads;           /* 0: one worker per online CPU */
    unsigned max_conns;
    unsigned idle_ms;
};

/* What the tasks share. The counters are updated from any worker. */
struct server {
    int listen_fd;
    int signal_fd;
    unsigned max_conns;
    uint64_t idle_ns;
    weft_token *stop;           /* every task is bound to it */
    atomic_int signo;           /* the signal that stopped us, or 0 */
    atomic_uint open;           /* connections open right now */
    weft_waitgroup live;        /* one count per conn task, done in its drop */
    atomic_uint_fast64_t served;    /* connections that got a conn task */
    atomic_uint_fast64_t rejected;  /* closed at once: limit reached */
    atomic_uint_fast64_t idled;     /* closed by the idle timeout */
    atomic_uint_fast64_t messages;  /* reads echoed back */
    atomic_uint_fast64_t bytes;     /* bytes echoed back */
};

/* ---- one connection ------------------------------------------------------ */

struct conn {
    weft_frame f;
    struct server *srv;
    int fd;
    weft_io rx;                 /* the recv in flight */
    weft_xfer tx;               /* the send_all in flight */
    weft_poll n;                /* result of the last await */
    uint64_t messages, bytes;   /* added to the server's totals at the end */
    char buf[BUF_SIZE];         /* in the frame: the kernel writes into it */
};

/*
 * Echo until EOF (recv yields 0), an error, the idle timeout (-ETIMEDOUT) or
 * the stop token (-ECANCELED). Every way out ends at WEFT_RETURN; closing the
 * socket is left to conn_drop, which runs exactly once however the task ends.
 */
static weft_poll conn_poll(weft_cx *cx, void *frame)
{
    struct conn *c = frame;
    WEFT_BEGIN(&c->f);
    for (;;) {
        /* A timeout covers one operation, so it is set again before each recv;
         * it fails only on misuse (an operation in flight), never here. */
        c->n = weft_io_timeout(&c->rx, c->srv->idle_ns);
        if (c->n < 0)
            break;
        WEFT_AWAIT(&c->f, c->n, weft_recv(cx, &c->rx, c->fd, c->buf, sizeof c->buf, 0));
        if (c->n <= 0)
            break;
        /* A peer that stops reading is idle too: bound the whole write back. */
        if (weft_io_timeout(&c->tx.io, c->srv->idle_ns) < 0)
            break;
        WEFT_AWAIT(&c->f, c->n, weft_send_all(cx, &c->tx, c->fd, c->buf, (size_t)c->n));
        if (c->n < 0)
            break;
        c->messages++;
        c->bytes += (uint64_t)c->n;
    }
    if (c->n == -ETIMEDOUT)
        atomic_fetch_add_explicit(&c->srv->idled, 1, memory_order_relaxed);
    /* EOF, a peer reset, a timeout or a stop are all normal endings here. */
    WEFT_RETURN(&c->f, c->n < 0 ? c->n : 0);
    WEFT_END(&c->f);
}

/* Runs once per conn task, after it returned or was torn down (at the end of
 * a runtime shutdown), and only once the kernel has finished with its frame. */
static void conn_drop(void *frame)
{
    struct conn *c = frame;
    struct server *srv = c->srv;
    close(c->fd);
    atomic_fetch_add_explicit(&srv->messages, c->messages, memory_order_relaxed);
    atomic_fetch_add_explicit(&srv->bytes, c->bytes, memory_order_relaxed);
    atomic_fetch_sub_explicit(&srv->open, 1, memory_order_relaxed);
    weft_waitgroup_done(&srv->live);    /* last: main may return after it */
}

/* Hand an accepted socket to a new conn task, or close it if we are full. */
static void admit(weft_cx *cx, struct server *srv, int fd)
{
    /* Take a slot first, give it back if there was none: no lock needed. */
    if (atomic_fetch_add_explicit(&srv->open, 1, memory_order_relaxed) >= srv->max_conns) {
        atomic_fetch_sub_explicit(&srv->open, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&srv->rejected, 1, memory_order_relaxed);
        close(fd);
        return;
    }
    /* Small echoes must leave at once, not wait for Nagle's algorithm. */
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        fprintf(stderr, "weft-echo: TCP_NODELAY: %s\n", strerror(errno));

    struct conn init = { .srv = srv, .fd = fd, .rx = WEFT_IO_INIT, .tx = WEFT_XFER_INIT };
    weft_task_desc desc = WEFT_TASK(conn_poll, &init);
    desc.drop = conn_drop;
    desc.name = "echo-conn";
    desc.tokens = &srv->stop;
    desc.ntokens = 1;
    /* Detached: nobody needs a connection's result; main waits for all of
     * them through srv->live instead. */
    weft_waitgroup_add(&srv->live, 1);
    int rc = weft_spawn_detached(weft_cx_runtime(cx), &desc);
    if (rc < 0) {
        /* A failed spawn never calls the drop hook: undo its work here. */
        if (rc != -ESHUTDOWN)
            fprintf(stderr, "weft-echo: spawn: %s (%s)\n", weft_err_name(rc), weft_strerror(rc));
        close(fd);
        atomic_fetch_sub_explicit(&srv->open, 1, memory_order_relaxed);
        weft_waitgroup_done(&srv->live);
        return;
    }
    atomic_fetch_add_explicit(&srv->served, 1, memory_order_relaxed);
}

/* ---- the accept loop ----------------------------------------------------- */

struct acceptor {
    weft_frame f;
    struct server *srv;
    weft_io io;
    weft_sleep backoff;
    weft_poll r;
};

/* accept(2) errors that concern one connection only: try the next one. */
static bool accept_error_is_transient(weft_poll err)
{
    return err == -ECONNABORTED || err == -EINTR || err == -EPROTO || err == -EPERM
        || err == -ENETDOWN || err == -ENOPROTOOPT || err == -EHOSTDOWN || err == -ENONET
        || err == -EHOSTUNREACH || err == -EOPNOTSUPP || err == -ENETUNREACH;
}

/* Out of fds or memory: waiting lets connections finish and free some. */
static bool accept_error_is_exhaustion(weft_poll err)
{
    return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM;
}

/* Returns 0 once stopped, or the error that made it give up (after cancelling
 * the stop token, so that the rest of the server stops too). */
static weft_poll acceptor_poll(weft_cx *cx, void *frame)
{
    struct acceptor *a = frame;
    WEFT_BEGIN(&a->f);
    for (;;) {
        WEFT_AWAIT(&a->f, a->r, weft_accept(cx, &a->io, a->srv->listen_fd, NULL, NULL, 0));
        if (a->r >= 0) {
            admit(cx, a->srv, (int)a->r);
        } else if (a->r == -ECANCELED) {
            break;
        } else if (accept_error_is_exhaustion(a->r)) {
            fprintf(stderr, "weft-echo: accept: %s (%s); pausing\n", weft_err_name((int)a->r), weft_strerror((int)a->r));
            WEFT_AWAIT(&a->f, a->r, weft_sleep_for(cx, &a->backoff, BACKOFF_NS));
            if (a->r == -ECANCELED)
                break;
        } else if (!accept_error_is_transient(a->r)) {
            fprintf(stderr, "weft-echo: accept: %s (%s)\n", weft_err_name((int)a->r), weft_strerror((int)a->r));
            weft_token_cancel(a->srv->stop);
            WEFT_RETURN(&a->f, a->r);
        }
    }
    WEFT_RETURN(&a->f, 0);
    WEFT_END(&a->f);
}

/* ---- the signal watcher -------------------------------------------------- */

struct signal_watch {
    weft_frame f;
    struct server *srv;
    weft_io io;
    struct signalfd_siginfo info;   /* in the frame: the kernel writes into it */
    weft_poll r;
};

/* Waits for SIGINT or SIGTERM and cancels the stop token. Also returns, with
 * -ECANCELED, when the token is cancelled for another reason. */
static weft_poll signal_watch_poll(weft_cx *cx, void *frame)
{
    struct signal_watch *s = frame;
    WEFT_BEGIN(&s->f);
    WEFT_AWAIT(&s->f, s->r, weft_read(cx, &s->io, s->srv->signal_fd, &s->info,
                                      sizeof s->info, -1));
    if (s->r == (weft_poll)sizeof s->info) {
        atomic_store(&s->srv->signo, (int)s->info.ssi_signo);
        weft_token_cancel(s->srv->stop);
        WEFT_RETURN(&s->f, 0);
    }
    if (s->r >= 0)
        s->r = -EIO;            /* a signalfd never returns a short record */
    if (s->r != -ECANCELED) {
        fprintf(stderr, "weft-echo: signalfd read: %s (%s)\n", weft_err_name((int)s->r), weft_strerror((int)s->r));
        weft_token_cancel(s->srv->stop);
    }
    WEFT_RETURN(&s->f, s->r);
    WEFT_END(&s->f);
}

/* ---- setup and teardown -------------------------------------------------- */

static const char usage[] =
    "usage: weft-echo --port P [--threads N] [--max-conns M] [--idle-ms T]\n"
    "  --port P       TCP port on 127.0.0.1; 0 picks a free one\n"
    "  --threads N    worker threads (default: one per online CPU)\n"
    "  --max-conns M  connections served at once; more are closed at once\n"
    "                 (default 1024)\n"
    "  --idle-ms T    close a connection idle for T ms (default 30000)\n";

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
                           .idle_ms = 30000 };
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

/* Blocks SIGINT and SIGTERM in this thread and returns a signalfd for them.
 * Called before the runtime starts, so every worker inherits the mask and the
 * signals are only ever consumed through the signalfd. */
static int open_signal_fd(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (rc != 0)
        return -rc;
    /* Blocking, like every fd weft reads: io_uring waits for it itself. */
    int fd = signalfd(-1, &set, SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
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
static int spawn_bound(weft_runtime *rt, struct server *srv, weft_task_desc desc,
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
static int run_tasks(weft_runtime *rt, struct server *srv)
{
    struct signal_watch watch = { .srv = srv, .io = WEFT_IO_INIT };
    struct acceptor acc = { .srv = srv, .io = WEFT_IO_INIT, .backoff = WEFT_SLEEP_INIT };
    weft_join watch_h = WEFT_JOIN_INIT, acc_h = WEFT_JOIN_INIT;

    int rc = spawn_bound(rt, srv, WEFT_TASK(signal_watch_poll, &watch), "signal-watch", &watch_h);
    if (rc < 0)
        return rc;
    rc = spawn_bound(rt, srv, WEFT_TASK(acceptor_poll, &acc), "acceptor", &acc_h);
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

/* Starts the runtime, serves until stopped, shuts down; 0 or a negative errno. */
static int serve(struct server *srv, unsigned threads)
{
    weft_runtime *rt;
    weft_runtime_opts opts = { .threads = threads };
    int rc = weft_runtime_new(&rt, &opts);
    if (rc < 0) {
        fprintf(stderr, "weft-echo: runtime: %s (%s)\n", weft_err_name(rc), weft_strerror(rc));
        return rc;
    }
    rc = run_tasks(rt, srv);
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

static void print_summary(struct server *srv, int fds_left)
{
    int signo = atomic_load(&srv->signo);
    printf("weft-echo: stopped (%s); served %llu connections (%llu rejected at the limit,"
           " %llu closed idle), echoed %llu messages (%llu bytes); %d fds left open\n",
           signo ? strsignal(signo) : "error",
           (unsigned long long)atomic_load(&srv->served),
           (unsigned long long)atomic_load(&srv->rejected),
           (unsigned long long)atomic_load(&srv->idled),
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

    struct server srv = {
        .max_conns = opt.max_conns,
        .idle_ns = (uint64_t)opt.idle_ms * 1000000u,
        .listen_fd = -1,
        .live = WEFT_WAITGROUP_INIT,
    };
    int rc = srv.signal_fd = open_signal_fd();
    if (rc < 0) {
        fprintf(stderr, "weft-echo: signalfd: %s (%s)\n", weft_err_name(rc), weft_strerror(rc));
        return 1;
    }
    rc = srv.listen_fd = open_listener(opt.port);
    if (rc < 0) {
        fprintf(stderr, "weft-echo: listen on 127.0.0.1:%u: %s (%s)\n", opt.port, weft_err_name(rc), weft_strerror(rc));
        close(srv.signal_fd);
        return 1;
    }
    rc = weft_token_new(&srv.stop);
    if (rc == 0) {
        rc = serve(&srv, opt.threads);
        weft_token_release(srv.stop);
    } else {
        fprintf(stderr, "weft-echo: token: %s (%s)\n", weft_err_name(rc), weft_strerror(rc));
    }
    close(srv.listen_fd);
    close(srv.signal_fd);
    print_summary(&srv, count_open_fds() - fds_at_start);
    return rc < 0 ? 1 : 0;
}
