/*
 * examples/copy/main.c - weft-copy: copy a file with weft's file I/O, and
 * stop cleanly on SIGINT or SIGTERM.
 *
 *     weft-copy SRC DST
 *
 * The copy task (copy.c) writes "DST.partial" and renames it over DST once
 * it is whole and synced. A signal cancels the task's token: its pending
 * read, write or fsync yields -ECANCELED, the task returns, and its drop
 * hook closes the files and removes the partial file, so DST is left as it
 * was. Exit status: 0 copied; 1 an error (said on stderr; DST unchanged);
 * 2 bad usage; 128 + the signal's number (130 for SIGINT, 143 for SIGTERM)
 * when interrupted (DST unchanged). WEFT_WORKERS and the other WEFT_*
 * variables apply, as in every weft program.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/signal.h>
#include <weft/weft.h>

#include "copy.h"

struct signal_watch {
    weft_frame f;
    weft_signal *sig;
    weft_token *stop;
    weft_poll r;
};

/* The first SIGINT or SIGTERM cancels the copy; bound to the same token,
 * so it returns -ECANCELED when the copy ends first. */
static weft_poll signal_watch_poll(weft_cx *cx, void *frame)
{
    struct signal_watch *s = frame;
    WEFT_BEGIN(&s->f);
    WEFT_AWAIT(&s->f, s->r, weft_signal_wait(cx, s->sig));
    if (s->r > 0)
        weft_token_cancel(s->stop);
    WEFT_RETURN(&s->f, s->r);
    WEFT_END(&s->f);
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "weft-copy: %s: %s\n", what, weft_strerror(rc));
    return 1;
}

/* Runs the copy and the watcher; the copy's result, *signo the signal that
 * stopped it (0 if none). */
static int run(weft_runtime *rt, weft_signal *sig, weft_token *stop, const char *src,
               const char *dst, int *signo)
{
    struct copy_job job;
    struct signal_watch watch = { .sig = sig, .stop = stop };
    weft_task_desc d;
    weft_join copy_h = WEFT_JOIN_INIT, watch_h = WEFT_JOIN_INIT;
    copy_task(src, dst, &job, &d);
    d.tokens = &stop;
    d.ntokens = 1;
    int rc = weft_spawn(rt, &d, &copy_h);
    if (rc < 0)
        return rc;
    d = WEFT_TASK(signal_watch_poll, &watch);
    d.name = "signal-watch";
    d.tokens = &stop;
    d.ntokens = 1;
    if (weft_spawn(rt, &d, &watch_h) < 0)
        weft_token_cancel(stop);    /* no watcher: do not copy unstoppable */
    weft_outcome out, wout;
    rc = weft_join_wait(&copy_h, &out);
    weft_token_cancel(stop);        /* ends the watcher */
    if (weft_join_wait(&watch_h, &wout) == 0 && wout.status == 0 && wout.value > 0)
        *signo = (int)wout.value;
    if (rc == 0)
        rc = out.status < 0 ? out.status : (int)(out.value < 0 ? out.value : 0);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fputs("usage: weft-copy SRC DST\n", stderr);
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    weft_signal sig = WEFT_SIGNAL_INIT;
    int rc = weft_signal_block(&set);       /* before the workers start */
    if (rc < 0 || (rc = weft_signal_open(&sig, &set)) < 0)
        return fail("signals", rc);
    weft_runtime *rt;
    weft_token *stop;
    if ((rc = weft_runtime_new(&rt, NULL)) < 0)
        return fail("runtime", rc);
    if ((rc = weft_token_new(&stop)) < 0)
        return fail("token", rc);
    int signo = 0;
    rc = run(rt, &sig, stop, argv[1], argv[2], &signo);
    weft_token_release(stop);
    weft_runtime_free(rt);
    weft_signal_close(&sig);
    if (signo && rc == -ECANCELED) {   /* a copy that finished first stands */
        fprintf(stderr, "weft-copy: %s: stopped, %s left unchanged\n", strsignal(signo), argv[2]);
        return 128 + signo;
    }
    if (rc < 0) {
        fprintf(stderr, "weft-copy: %s -> %s: %s; %s left unchanged\n", argv[1], argv[2],
                weft_strerror(rc), argv[2]);
        return 1;
    }
    return 0;
}
