/*
 * examples/common/server.c - what weft's example servers do alike (see
 * server.h). Built into weft-echo and weft-http; to build one of them
 * against an installed weft, add this file to its sources:
 *     cc echo.c conn.c ../common/server.c $(pkg-config --cflags --libs weft) -o weft-echo
 */
#include "server.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

/* ---- options and the fd budget ------------------------------------------------ */

bool example_parse_unsigned(const char *text, unsigned min, unsigned max, unsigned *out)
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

void example_fit_fd_limit(const char *prog, unsigned max_conns, unsigned fds_per_conn)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)fds_per_conn * max_conns + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        fprintf(stderr, "%s: open-file limit %llu is below the %llu --max-conns needs\n",
                prog, (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

int example_count_open_fds(void)
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

/* ---- signals ------------------------------------------------------------------ */

int example_open_signals(weft_signal *sig)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    int rc = weft_signal_block(&set);
    return rc < 0 ? rc : weft_signal_open(sig, &set);
}

static weft_poll signal_watch_poll(weft_cx *cx, void *frame)
{
    struct example_signal_watch *w = frame;
    WEFT_BEGIN(&w->f);
    for (;;) {
        WEFT_AWAIT(&w->f, w->r, weft_signal_wait(cx, w->sig));
        if (w->r != SIGUSR1)
            break;
        /* A look inside, and the server carries on (weft/observe.h). */
        weft_task_dump_print(weft_cx_runtime(cx), stderr);
        weft_metrics_print(weft_cx_runtime(cx), stderr);
    }
    if (w->r > 0) {
        atomic_store(w->signo, (int)w->r);
        weft_token_cancel(w->token);
        WEFT_RETURN(&w->f, 0);
    }
    if (w->r != -ECANCELED) {
        fprintf(stderr, "%s: signal wait: %s (%s)\n", w->prog, weft_err_name((int)w->r),
                weft_strerror((int)w->r));
        weft_token_cancel(w->token);    /* a server that cannot be stopped must not run */
    }
    WEFT_RETURN(&w->f, w->r);
    WEFT_END(&w->f);
}

void example_signal_watch_task(struct example_signal_watch *w, weft_task_desc *desc)
{
    *desc = WEFT_TASK(signal_watch_poll, w);
    desc->name = "signal-watch";
    desc->tokens = &w->token;
    desc->ntokens = 1;
}

/* ---- the runtime and tasks ---------------------------------------------------- */

int example_runtime_new(const char *prog, unsigned threads, weft_runtime **rt)
{
    weft_runtime_opts opts = { 0 };
    const char *bad;
    int rc = weft_runtime_opts_from_env(&opts, &bad);
    if (rc < 0) {
        fprintf(stderr, "%s: invalid %s=%s\n", prog, bad, getenv(bad));
        return rc;
    }
    if (threads)
        opts.threads = threads;
    rc = weft_runtime_new(rt, &opts);
    if (rc < 0)
        fprintf(stderr, "%s: runtime: %s (%s)\n", prog, weft_err_name(rc), weft_strerror(rc));
    return rc;
}

int example_join(const char *prog, weft_join *h, const char *what)
{
    weft_outcome out;
    int rc = weft_join_wait(h, &out);
    if (rc == 0)
        rc = out.status < 0 ? out.status : (int)out.value;
    if (rc < 0 && rc != -ECANCELED)
        fprintf(stderr, "%s: %s: %s (%s)\n", prog, what, weft_err_name(rc), weft_strerror(rc));
    return rc == -ECANCELED ? 0 : rc;
}

/* ---- accept errors ------------------------------------------------------------ */

/* accept(2) errors that concern one connection only. */
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

enum example_accept_next example_accept_failed(const char *prog, weft_poll err)
{
    if (accept_error_is_transient(err))
        return EXAMPLE_ACCEPT_RETRY;
    bool pause = accept_error_is_exhaustion(err);
    fprintf(stderr, "%s: accept: %s (%s)%s\n", prog, weft_err_name((int)err),
            weft_strerror((int)err), pause ? "; pausing" : "");
    return pause ? EXAMPLE_ACCEPT_PAUSE : EXAMPLE_ACCEPT_GIVE_UP;
}
