/*
 * tests/reactor/test_release.c - a close, once started, happens: whatever
 * withdraws its task (abort, teardown of a cancel-safe task, a deadline,
 * shutdown), and wherever the close is (in the kernel, or on the userspace
 * overflow queue because the SQ was full). Counted in open fds: every pipe
 * end a task was given is closed in the end.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <weft/weft.h>

#include "reactor/op.h"
#include "test_util.h"

#define TASKS 2000

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

struct closer {
    weft_frame f;
    weft_io io;
    int fd;         /* owned by the frame: the drop hook closes it */
    int closing;    /* handed to weft_close: from here on the close owns it */
    weft_poll rc;
};

/* The pattern io.h asks for: the frame gives the fd up before the await, so
 * a task torn down before it started the close has its fd closed by the drop
 * hook, and one torn down after must have it closed by the close itself. */
static weft_poll closer_poll(weft_cx *cx, void *p)
{
    struct closer *c = p;
    WEFT_BEGIN(&c->f);
    c->closing = c->fd;
    c->fd = -1;
    WEFT_AWAIT(&c->f, c->rc, weft_close(cx, &c->io, c->closing));
    WEFT_RETURN(&c->f, c->rc);
    WEFT_END(&c->f);
}

static void closer_drop(void *p)
{
    struct closer *c = p;
    if (c->fd >= 0)
        close(c->fd);
}

static weft_runtime *make(void)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = 2, .shutdown_grace_ms = 20 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    return rt;
}

/* Half the SQE requests find the SQ full, so many closes sit on the overflow
 * queue when their cancel-safe task is aborted and torn down. */
Test(release, close_is_never_withdrawn_even_off_the_overflow_queue)
{
    weft__io_inject_faults(2, 0);
    int before = open_fds();           /* before the runtime's own fds */
    weft_runtime *rt = make();
    static weft_join h[TASKS];
    for (int i = 0; i < TASKS; i++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        close(p[1]);
        struct closer c = { .io = WEFT_IO_INIT, .fd = p[0] };
        weft_task_desc d = WEFT_TASK(closer_poll, &c);
        d.drop = closer_drop;
        d.flags = (i & 1) ? WEFT_TASK_CANCEL_SAFE : 0;
        cr_assert_eq(weft_spawn(rt, &d, &h[i]), 0);
        weft_abort(&h[i]);
    }
    for (int i = 0; i < TASKS; i++) {
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        if (out.status == 0)
            cr_assert_eq(out.value, 0, "task %d: close yielded %lld", i, (long long)out.value);
    }
    weft__io_inject_faults(0, 0);
    weft_runtime_free(rt);
    cr_assert_eq(open_fds(), before, "closes were dropped: %d left", open_fds() - before);
    WEFT_ASSERT_NO_LEAKS();
}

/* Closes still queued or in flight when the runtime shuts down are flushed
 * by the drain, not dropped. */
Test(release, close_queued_at_shutdown_still_happens)
{
    weft__io_inject_faults(2, 0);
    int before = open_fds();           /* before the runtime's own fds */
    weft_runtime *rt = make();
    for (int i = 0; i < TASKS; i++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        close(p[1]);
        struct closer c = { .io = WEFT_IO_INIT, .fd = p[0] };
        weft_task_desc d = WEFT_TASK(closer_poll, &c);
        d.drop = closer_drop;
        d.flags = (i & 1) ? WEFT_TASK_CANCEL_SAFE : 0;
        cr_assert_eq(weft_spawn_detached(rt, &d), 0);
    }
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    weft__io_inject_faults(0, 0);
    weft_runtime_free(rt);
    cr_assert_eq(open_fds(), before, "closes were dropped at shutdown: %d left",
                 open_fds() - before);
    WEFT_ASSERT_NO_LEAKS();
}

/* A deadline cannot withdraw a close, even one that passed before it began. */
Test(release, a_deadline_does_not_apply_to_close)
{
    weft_runtime *rt = make();
    int p[2];
    cr_assert_eq(pipe(p), 0);
    close(p[1]);
    struct closer c = { .io = WEFT_IO_INIT, .fd = p[0] };
    cr_assert_eq(weft_io_deadline(&c.io, 1), 0);       /* long past */
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(closer_poll, &c), &out), 0);
    cr_assert_eq(out.value, 0, "close yielded %lld", (long long)out.value);
    cr_assert_eq(fcntl(p[0], F_GETFD), -1);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* The on-owner withdrawal path, made deterministic: a select polls a close
 * (often put on the overflow queue by the injected SQ-full) and then a branch
 * that is ready at once, so the close loses and is withdrawn on its own worker
 * in the same poll, while it is still queued. */
struct racer {
    weft_frame f;
    weft_selector sel;
    weft_io io;
    weft_sleep s;
    int closing;
    weft_poll rc;
};

static weft_poll racer_branch(weft_cx *cx, void *p, unsigned i)
{
    struct racer *r = p;
    if (i == 0)
        return (weft_close)(cx, &r->io, r->closing);
    return weft_sleep_until(cx, &r->s, 0);     /* deadline long past: ready */
}

static weft_poll racer_poll(weft_cx *cx, void *p)
{
    struct racer *r = p;
    WEFT_BEGIN(&r->f);
    WEFT_SELECT_AWAIT(&r->f, r->rc, &r->sel, 2, racer_branch, r);
    WEFT_RETURN(&r->f, r->rc);
    WEFT_END(&r->f);
}

Test(release, a_queued_close_that_loses_a_select_still_happens)
{
    weft__io_inject_faults(2, 0);
    int before = open_fds();
    weft_runtime *rt = make();
    for (int i = 0; i < 200; i++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        close(p[1]);
        struct racer r = { .sel = WEFT_SELECTOR_INIT, .io = WEFT_IO_INIT,
                           .s = WEFT_SLEEP_INIT, .closing = p[0] };
        weft_outcome out;
        cr_assert_eq(weft_block_on(rt, &WEFT_TASK(racer_poll, &r), &out), 0);
    }
    weft__io_inject_faults(0, 0);
    weft_runtime_free(rt);
    cr_assert_eq(open_fds(), before, "closes were dropped: %d left", open_fds() - before);
    WEFT_ASSERT_NO_LEAKS();
}
