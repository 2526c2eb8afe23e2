/*
 * tests/core/test_macros.c - the state-machine macros fail loudly and
 * release operations always release.
 *
 *  - A resume point that matches no case (a switch of the user's spanning an
 *    await captured it) aborts the process naming the body, instead of the
 *    task finishing silently with 0.
 *  - A finished frame polled again yields -EINVAL.
 *  - weft_close awaited by a task whose cancellation is pending closes the fd
 *    and yields close's result; the request is delivered at the next await,
 *    and provenance names that await. The same holds for any expression
 *    wrapped in WEFT_RELEASE.
 *  - Compile-time checks (out type, frame pointer, frame alignment) are
 *    checked when meson configures the tests (tests/compile/).
 */
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "core/core_util.h"

/* ---- a switch spanning an await ---------------------------------------- */

struct spanning {
    weft_frame f;
    int which;
    weft_poll rc;
};

static weft_poll spanning_poll(weft_cx *cx, void *p)
{
    struct spanning *s = p;
    WEFT_BEGIN(&s->f);
    switch (s->which) {             /* the mistake rule 2 forbids */
    case 1:
        WEFT_YIELD(&s->f, s->rc);   /* its resume case binds to this switch */
        break;
    default:
        break;
    }
    WEFT_RETURN(&s->f, 42);
    WEFT_END(&s->f);
}

Test(macros, a_switch_spanning_an_await_traps, .signal = SIGABRT)
{
    weft_runtime *rt = rt_make(1, 50);
    struct spanning s = { .which = 1 };
    weft_outcome out;
    weft_block_on(rt, &WEFT_TASK(spanning_poll, &s), &out);
    cr_assert_fail("the task finished with %lld instead of trapping", (long long)out.value);
}

static weft_poll done_poll(weft_cx *cx, void *p)
{
    struct spanning *s = p;
    WEFT_BEGIN(&s->f);
    WEFT_RETURN(&s->f, 7);
    WEFT_END(&s->f);
}

Test(macros, a_finished_frame_polled_again_yields_einval)
{
    struct spanning s = { 0 };
    cr_assert_eq(done_poll(NULL, &s), 7);
    cr_assert_eq(done_poll(NULL, &s), -EINVAL);
    cr_assert_eq(done_poll(NULL, &s), -EINVAL);
}

/* ---- release operations ------------------------------------------------ */

static flag closer_ready, closer_go;

struct closer {
    weft_frame f;
    weft_io io;
    weft_sleep s;
    int fd;
    weft_poll close_rc, next_rc, nap_rc;
    bool use_release_macro;
};

/* Waits until it has been aborted (a handshake with the test, so the request
 * is pending before the close is reached), then closes its fd and awaits
 * once more. */
static weft_poll closer_poll(weft_cx *cx, void *p)
{
    struct closer *c = p;
    WEFT_BEGIN(&c->f);
    flag_add(&closer_ready, 1);
    flag_wait_ge(&closer_go, 1);
    if (!weft_cx_cancel_requested(cx))
        WEFT_RETURN(&c->f, -EPROTO);
    if (c->use_release_macro) {
        /* Any leaf can be made a release: this sleep happens although the
         * task is cancelled. */
        WEFT_AWAIT(&c->f, c->nap_rc, WEFT_RELEASE(weft_sleep_for(cx, &c->s, 1000000)));
    }
    WEFT_AWAIT(&c->f, c->close_rc, weft_close(cx, &c->io, c->fd));
    WEFT_YIELD(&c->f, c->next_rc);
    if (c->close_rc != 0)
        WEFT_RETURN(&c->f, 100);        /* the close did not happen */
    if (c->use_release_macro && c->nap_rc != 0)
        WEFT_RETURN(&c->f, 101);        /* the wrapped sleep did not happen */
    if (c->next_rc != -ECANCELED)
        WEFT_RETURN(&c->f, 102);        /* the request was lost */
    WEFT_RETURN(&c->f, 0);
    WEFT_END(&c->f);
}

static void close_while_cancelled(bool use_release_macro)
{
    weft_runtime *rt = rt_make(2, 50);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    close(p[1]);
    flag_set(&closer_ready, 0);
    flag_set(&closer_go, 0);
    struct closer c = { .io = WEFT_IO_INIT, .s = WEFT_SLEEP_INIT, .fd = p[0],
                        .use_release_macro = use_release_macro };
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(closer_poll, &c), &h), 0);
    flag_wait_ge(&closer_ready, 1);
    cr_assert_eq(weft_abort(&h), 0);
    flag_add(&closer_go, 1);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.value, 0, "task answered %lld", (long long)out.value);
    cr_assert_eq(fcntl(p[0], F_GETFD), -1, "the fd is still open");
    cr_assert_eq(errno, EBADF);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
    cr_assert_not_null(out.cancel.delivered_at);
    cr_assert_str_eq(out.cancel.delivered_at->func, "closer_poll");
    rt_done(rt);
}

Test(macros, close_awaited_by_a_cancelled_task_closes_then_the_next_await_cancels)
{
    close_while_cancelled(false);
    WEFT_ASSERT_NO_LEAKS();
}

Test(macros, any_leaf_wrapped_in_weft_release_is_made_when_cancelled)
{
    close_while_cancelled(true);
    WEFT_ASSERT_NO_LEAKS();
}
