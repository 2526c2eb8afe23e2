/*
 * tests/core/test_timeout.c - weft_join_wait_timeout: timeouts stop the
 * waiting, not the work. A cooperative task outlives the timeout and finishes
 * on its own; a cancel-safe one is aborted with source TIMEOUT; a task that
 * finishes in time is joined normally.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdatomic.h>

#include <weft/weft.h>

#include "test_util.h"

static _Atomic int drops, finished_normally, saw_cancel;

static void count_drop(void *f)
{
    (void)f;
    atomic_fetch_add(&drops, 1);
}

struct token_task {
    weft_frame f;
    weft_token *token;
    weft_token_wait wait;
    weft_poll rc;
};

/* Waits for its token; records whether it was cancelled instead. */
static weft_poll token_task_poll(weft_cx *cx, void *p)
{
    struct token_task *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->rc, weft_token_cancelled(cx, t->token, &t->wait));
    atomic_fetch_add(t->rc == 0 ? &finished_normally : &saw_cancel, 1);
    WEFT_RETURN(&t->f, 5);
    WEFT_END(&t->f);
}

static weft_runtime *make(void)
{
    weft_runtime *rt;
    cr_assert_eq(weft_runtime_new(&rt, &(weft_runtime_opts){ .threads = 2 }), 0);
    atomic_store(&drops, 0);
    atomic_store(&finished_normally, 0);
    atomic_store(&saw_cancel, 0);
    return rt;
}

static int spawn_token_task(weft_runtime *rt, weft_token *tok, unsigned flags, weft_join *h)
{
    struct token_task t = { .token = tok, .wait = WEFT_TOKEN_WAIT_INIT };
    weft_task_desc d = { .poll = token_task_poll, .frame = &t, .frame_size = sizeof t,
                         .drop = count_drop, .flags = flags };
    return weft_spawn(rt, &d, h);
}

Test(timeout, cooperative_task_keeps_running_after_the_wait_times_out)
{
    weft_runtime *rt = make();
    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    weft_join h;
    cr_assert_eq(spawn_token_task(rt, tok, 0, &h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait_timeout(&h, &out, 1000000), -ETIMEDOUT);
    cr_assert_null(h.weft_task, "a timed-out handle is given up");
    cr_assert_eq(weft_join_wait(&h, &out), -EINVAL);
    cr_assert_eq(atomic_load(&drops), 0, "the work must not stop with the waiting");
    weft_token_cancel(tok);     /* now let it finish by itself */
    while (atomic_load(&drops) == 0)
        sched_yield();
    cr_assert_eq(atomic_load(&finished_normally), 1);
    cr_assert_eq(atomic_load(&saw_cancel), 0, "the timeout must not cancel it");
    weft_token_release(tok);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(timeout, cancel_safe_task_is_aborted_with_source_timeout)
{
    weft_runtime *rt = make();
    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    weft_join h;
    cr_assert_eq(spawn_token_task(rt, tok, WEFT_TASK_CANCEL_SAFE, &h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait_timeout(&h, &out, 1000000), -ETIMEDOUT);
    while (atomic_load(&drops) == 0)
        sched_yield();
    cr_assert_eq(atomic_load(&finished_normally) + atomic_load(&saw_cancel), 0,
                 "a torn-down task is never resumed");
    weft_token_release(tok);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(timeout, finishing_in_time_is_an_ordinary_join)
{
    weft_runtime *rt = make();
    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    weft_token_cancel(tok);     /* the task finishes at once */
    for (int i = 0; i < 50; i++) {
        weft_join h;
        cr_assert_eq(spawn_token_task(rt, tok, i % 2 ? WEFT_TASK_CANCEL_SAFE : 0, &h), 0);
        weft_outcome out;
        int rc = weft_join_wait_timeout(&h, &out, 3600ull * 1000000000ull);
        cr_assert_eq(rc, 0);
        cr_assert_eq(out.status, 0);
        cr_assert_eq(out.value, 5);
        cr_assert_eq(out.cancel.source, WEFT_CANCEL_NONE);
    }
    cr_assert_eq(weft_join_wait_timeout(NULL, NULL, 1), -EINVAL);
    weft_token_release(tok);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* The deadline and completion at the same instant, many times: the result is
 * either an ordinary join or -ETIMEDOUT with the handle given up, never a hang
 * or a lost drop. */
Test(timeout, deadline_racing_completion)
{
    weft_runtime *rt = make();
    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    weft_token_cancel(tok);
    int timed_out = 0;
    for (int i = 0; i < 400; i++) {
        weft_join h;
        cr_assert_eq(spawn_token_task(rt, tok, i % 2 ? WEFT_TASK_CANCEL_SAFE : 0, &h), 0);
        weft_outcome out;
        int rc = weft_join_wait_timeout(&h, &out, (uint64_t)(i % 5) * 2000);
        if (rc == -ETIMEDOUT) {
            timed_out++;
            cr_assert_null(h.weft_task);
        } else {
            cr_assert_eq(rc, 0);
            cr_assert(out.value == 5 || out.status == -ECANCELED);
        }
    }
    while (atomic_load(&drops) < 400)
        sched_yield();
    weft_token_release(tok);
    weft_runtime_free(rt);
    cr_log_info("%d of 400 joins timed out", timed_out);
    WEFT_ASSERT_NO_LEAKS();
}
