/*
 * tests/trace/trace_prog.c - a small program whose trace has every kind of
 * event: trace-prog FILE runs it on two workers with tracing on and writes
 * the trace to FILE. check_trace.py then checks the file.
 *
 * What it does, from one root task:
 *   - spawns a "hog" that spawns children onto its own worker's queue and
 *     then keeps its worker busy until one of them has run: only a steal by
 *     the other worker can run it (a handshake, not a timed wait; it gives
 *     up after 10 s so that a broken steal fails the check, not the run);
 *   - writes to a pipe that a "reader" task reads: I/O submissions and
 *     completions, and a wake by a completion;
 *   - sleeps 1 ms: a timer fire and its wake;
 *   - cancels the token of a "victim" which, inside a shield, waits for
 *     that very cancellation and then sleeps 2 ms, so that the request is
 *     held 2 ms, and after the shield awaits a long sleep: the request takes
 *     effect there, at victim_poll's VICTIM_AWAIT line, source "token".
 * Exit status 0 when everything ran and the trace was written.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <weft/weft.h>

#define CHILDREN 8

static _Atomic int children_ran;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct child { weft_frame f; };

static weft_poll child_poll(weft_cx *cx, void *p)
{
    (void)cx;
    (void)p;
    atomic_fetch_add(&children_ran, 1);
    return 0;
}

struct hog { weft_frame f; };

static weft_poll hog_poll(weft_cx *cx, void *p)
{
    (void)p;
    for (int i = 0; i < CHILDREN; i++) {
        struct child c = { 0 };
        weft_task_desc d = WEFT_TASK(child_poll, &c);
        d.name = "stolen?";
        if (weft_spawn_detached(weft_cx_runtime(cx), &d) < 0)
            return -1;
    }
    uint64_t give_up = mono_ns() + 10000000000ull;
    while (atomic_load(&children_ran) == 0 && mono_ns() < give_up)
        ;   /* only another worker can run them now */
    return atomic_load(&children_ran) > 0 ? 0 : -1;
}

struct reader { weft_frame f; weft_io io; int fd; char buf[16]; weft_poll rc; };

static weft_poll reader_poll(weft_cx *cx, void *p)
{
    struct reader *r = p;
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->rc, weft_read(cx, &r->io, r->fd, r->buf, sizeof r->buf, -1));
    WEFT_RETURN(&r->f, r->rc);
    WEFT_END(&r->f);
}

struct victim { weft_frame f; weft_token *tok; weft_token_wait wait; weft_sleep s; weft_poll rc; };

static weft_poll victim_poll(weft_cx *cx, void *p)
{
    struct victim *v = p;
    WEFT_BEGIN(&v->f);
    weft_shield_enter(cx);
    WEFT_AWAIT(&v->f, v->rc, weft_token_cancelled(cx, v->tok, &v->wait));
    WEFT_AWAIT(&v->f, v->rc, weft_sleep_for(cx, &v->s, 2000000));   /* held 2 ms */
    weft_shield_exit(cx);
    WEFT_AWAIT(&v->f, v->rc, weft_sleep_for(cx, &v->s, 60000000000ull));   /* VICTIM_AWAIT */
    WEFT_RETURN(&v->f, v->rc == -ECANCELED ? 1 : -1);
    WEFT_END(&v->f);
}

struct root {
    weft_frame f;
    weft_join hog, reader, victim;
    weft_outcome out;
    weft_io io;
    weft_sleep s;
    weft_token *tok;
    int fds[2];
    weft_poll rc;
    int failures;
};

static int spawn_named(weft_cx *cx, weft_task_desc d, const char *name, weft_join *h)
{
    d.name = name;
    return weft_spawn(weft_cx_runtime(cx), &d, h);
}

static weft_poll root_poll(weft_cx *cx, void *p)
{
    struct root *r = p;
    WEFT_BEGIN(&r->f);
    {
        struct hog h = { 0 };
        struct reader rd = { .fd = r->fds[0] };
        struct victim v = { .tok = r->tok };
        weft_task_desc dv = WEFT_TASK(victim_poll, &v);
        dv.tokens = &r->tok;
        dv.ntokens = 1;
        if (spawn_named(cx, WEFT_TASK(hog_poll, &h), "hog", &r->hog) < 0
            || spawn_named(cx, WEFT_TASK(reader_poll, &rd), "reader", &r->reader) < 0
            || spawn_named(cx, dv, "victim", &r->victim) < 0)
            WEFT_RETURN(&r->f, -1);
    }
    WEFT_AWAIT(&r->f, r->rc, weft_write(cx, &r->io, r->fds[1], "ping", 4, -1));
    r->failures += r->rc != 4;
    WEFT_AWAIT(&r->f, r->rc, weft_sleep_for(cx, &r->s, 1000000));
    weft_token_cancel(r->tok);
    WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &r->reader, &r->out));
    r->failures += r->rc != 0 || r->out.value != 4;
    WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &r->victim, &r->out));
    r->failures += r->rc != 0 || r->out.value != 1;
    WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &r->hog, &r->out));
    r->failures += r->rc != 0 || r->out.value != 0;
    WEFT_RETURN(&r->f, r->failures);
    WEFT_END(&r->f);
}

/* Run the root task on rt with tracing on; write the trace after the
 * shutdown, so that it holds everything. */
static int run(weft_runtime *rt, struct root *r, const char *path)
{
    weft_outcome out;
    int rc = weft_trace_start(rt, 0);
    if (rc == 0)
        rc = weft_block_on(rt, &WEFT_TASK(root_poll, r), &out);
    if (rc == 0 && (out.status != 0 || out.value != 0)) {
        fprintf(stderr, "trace-prog: root: status %d value %lld\n", out.status,
                (long long)out.value);
        rc = -EPROTO;
    }
    if (rc == 0)
        rc = weft_runtime_shutdown(rt);
    return rc ? rc : weft_trace_write(rt, path);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: trace-prog FILE\n");
        return 2;
    }
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = 2 };
    struct root r = { 0 };
    if (pipe(r.fds) != 0 || weft_token_new(&r.tok) != 0 || weft_runtime_new(&rt, &o) != 0) {
        fprintf(stderr, "trace-prog: setup failed\n");
        return 1;
    }
    int rc = run(rt, &r, argv[1]);
    if (rc < 0)
        fprintf(stderr, "trace-prog: %s\n", weft_strerror(rc));
    weft_runtime_free(rt);
    weft_token_release(r.tok);
    close(r.fds[0]);
    close(r.fds[1]);
    return rc < 0;
}
