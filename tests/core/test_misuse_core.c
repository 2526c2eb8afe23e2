/*
 * tests/core/test_misuse_core.c - the core calls of the include/weft headers
 * misused (runtime.h, task.h, error.h, join handles, token.h, group.h,
 * select.h, time.h): NULL arguments, empty, stale and double-used handles
 * (double join, join after detach, abort after join), and calls after runtime
 * shutdown. Each must return the documented error (-EINVAL, -EPERM,
 * -ESHUTDOWN, -EDEADLK, ...) and never crash; a callback is never called.
 * One test per function or per small family, so a crash names its culprit.
 * The misuse tests are split over test_misuse_core.c, test_misuse_io.c and
 * test_misuse_sync.c; their shared helpers are in misuse_test.h.
 * Also allocation failure (runtime/alloc.h fault injection); the full sweep
 * over a workload is test_alloc_faults.c.
 *
 * Not checked, because no API can detect them: using a runtime, group or
 * token after freeing or releasing it (the pointer is gone), and copies of a
 * handle (README: "copies of a handle are not tracked").
 */
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/stat.h>

#include "core_util.h"
#include "misuse_test.h"
#include "runtime/alloc.h"
#include "weft/sim.h"

TestSuite(misuse, .timeout = 60);

/* ---- runtime.h ------------------------------------------------------------- */

Test(misuse, runtime_new_and_free_bad_args)
{
    cr_assert_eq(weft_runtime_new(NULL, NULL), -EINVAL);
    weft_runtime *rt = (weft_runtime *)0x1;
    weft_runtime_opts o = { .threads = 5000 };
    cr_assert_eq(weft_runtime_new(&rt, &o), -EINVAL);
    cr_assert_eq(rt, (weft_runtime *)0x1, "out untouched on failure");
    cr_assert_eq(weft_runtime_shutdown(NULL), -EINVAL);
    cr_assert_eq(weft_runtime_free(NULL), -EINVAL);
    cr_assert_eq(weft_runtime_threads(NULL), 0);
    cr_assert_eq(weft_runtime_live_tasks(NULL), 0);
    cr_assert_null(weft_cx_runtime(NULL));
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, spawn_bad_args)
{
    weft_runtime *rt = rt_make(1, 0);
    weft_frame fr = { 0 };
    weft_task_desc good = DESC(count_poll, &fr, count_drop, 0);
    weft_join h = WEFT_JOIN_INIT;
    weft_outcome out;

    cr_assert_eq(weft_spawn(NULL, &good, &h), -EINVAL);
    cr_assert_eq(weft_spawn(rt, NULL, &h), -EINVAL);
    cr_assert_eq(weft_spawn(rt, &good, NULL), -EINVAL);
    cr_assert_eq(weft_spawn_detached(NULL, &good), -EINVAL);
    cr_assert_eq(weft_spawn_detached(rt, NULL), -EINVAL);
    cr_assert_eq(weft_block_on(NULL, &good, &out), -EINVAL);
    cr_assert_eq(weft_block_on(rt, NULL, &out), -EINVAL);
    cr_assert_eq(weft_block_on(rt, &good, NULL), -EINVAL);

    weft_task_desc bad[] = {
        { .poll = NULL, .frame = &fr, .frame_size = sizeof fr },
        { .poll = count_poll, .frame = &fr, .frame_size = 0 },
        { .poll = count_poll, .frame = &fr, .frame_size = sizeof fr - 1 },
        { .poll = count_poll, .frame = &fr, .frame_size = sizeof fr, .flags = 1u << 2 },
        { .poll = count_poll, .frame = &fr, .frame_size = sizeof fr, .flags = 1u << 31 },
        { .poll = count_poll, .frame = NULL, .frame_size = (size_t)1 << 40 },
        { .poll = count_poll, .frame = NULL, .frame_size = SIZE_MAX },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bad[i].drop = count_drop;
        cr_assert_eq(weft_spawn(rt, &bad[i], &h), -EINVAL, "desc %zu", i);
        cr_assert_null(h.weft_task, "desc %zu filled the handle", i);
        cr_assert_eq(weft_spawn_detached(rt, &bad[i]), -EINVAL, "desc %zu", i);
        cr_assert_eq(weft_block_on(rt, &bad[i], &out), -EINVAL, "desc %zu", i);
    }
    cr_assert_eq(weft_runtime_live_tasks(rt), 0);
    /* Still usable. */
    cr_assert_eq(weft_block_on(rt, &good, &out), 0);
    cr_assert_eq(out.value, 11);
    rt_done(rt);
    cr_assert_eq(atomic_load(&polled), 1, "no failed spawn ran its poll");
    cr_assert_eq(flag_get(&drops), 1, "no failed spawn ran its drop hook");
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, join_calls_bad_args)
{
    weft_join empty = WEFT_JOIN_INIT;
    weft_outcome out;
    cr_assert_eq(weft_join_wait(NULL, &out), -EINVAL);
    cr_assert_eq(weft_join_wait(&empty, &out), -EINVAL);
    cr_assert_eq(weft_join_await(NULL, &empty, &out), -EINVAL, "await outside a task");
    cr_assert_eq(weft_join_await(NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_abort(NULL), -EINVAL);
    cr_assert_eq(weft_abort(&empty), -EINVAL);
    cr_assert_eq(weft_detach(NULL), -EINVAL);
    cr_assert_eq(weft_detach(&empty), -EINVAL);
    cr_assert_not(weft_join_is_finished(NULL));
    cr_assert_not(weft_join_is_finished(&empty));

    weft_runtime *rt = rt_make(1, 0);
    weft_frame fr = { 0 };
    weft_task_desc d = DESC(count_poll, &fr, NULL, 0);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    cr_assert_eq(weft_join_wait(&h, NULL), -EINVAL);
    cr_assert_not_null(h.weft_task, "a failed join keeps the handle");
    cr_assert_eq(weft_join_await(NULL, &h, &out), -EINVAL);
    cr_assert_not_null(h.weft_task);
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.value, 11);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* join_await inside a task with an empty handle or no outcome. */
struct bad_await {
    weft_frame f;
    weft_join empty;
    weft_join *real;
    weft_outcome out;
    int64_t r1, r2, r3;
};

static weft_poll bad_await_poll(weft_cx *cx, void *p)
{
    struct bad_await *b = p;
    WEFT_BEGIN(&b->f);
    WEFT_AWAIT(&b->f, b->r1, weft_join_await(cx, &b->empty, &b->out));
    WEFT_AWAIT(&b->f, b->r2, weft_join_await(cx, NULL, &b->out));
    WEFT_AWAIT(&b->f, b->r3, weft_join_await(cx, b->real, NULL));
    WEFT_RETURN(&b->f, b->r1 == -EINVAL && b->r2 == -EINVAL && b->r3 == -EINVAL);
    WEFT_END(&b->f);
}

Test(misuse, join_await_bad_args_in_a_task)
{
    weft_runtime *rt = rt_make(2, 0);
    weft_frame vf = { 0 };
    weft_task_desc dv = DESC(count_poll, &vf, NULL, 0);
    static weft_join real = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &dv, &real), 0);
    struct bad_await fr = { .real = &real };
    weft_task_desc d = DESC(bad_await_poll, &fr, NULL, 0);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.value, 1);
    cr_assert_not_null(real.weft_task);
    cr_assert_eq(weft_join_wait(&real, &out), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, cancel_source_names)
{
    cr_assert_str_eq(weft_cancel_source_name(WEFT_CANCEL_NONE), "none");
    cr_assert_str_eq(weft_cancel_source_name(WEFT_CANCEL_ABORT), "abort");
    cr_assert_str_eq(weft_cancel_source_name(WEFT_CANCEL_TOKEN), "token");
    cr_assert_str_eq(weft_cancel_source_name(WEFT_CANCEL_TIMEOUT), "timeout");
    cr_assert_str_eq(weft_cancel_source_name(WEFT_CANCEL_GROUP), "group");
    cr_assert_str_eq(weft_cancel_source_name(WEFT_CANCEL_SHUTDOWN), "shutdown");
    cr_assert_str_eq(weft_cancel_source_name((weft_cancel_source)99), "unknown");
    cr_assert_str_eq(weft_cancel_source_name((weft_cancel_source)-1), "unknown");
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- task.h ------------------------------------------------------------------ */

struct once {
    weft_frame f;
};

static weft_poll once_poll(weft_cx *cx, void *p)
{
    struct once *o = p;
    (void)cx;
    WEFT_BEGIN(&o->f);
    WEFT_RETURN(&o->f, 7);
    WEFT_END(&o->f);
}

static weft_poll falls_off_poll(weft_cx *cx, void *p)
{
    struct once *o = p;
    (void)cx;
    WEFT_BEGIN(&o->f);
    WEFT_END(&o->f);
}

Test(misuse, polling_a_finished_frame_returns_einval)
{
    struct once o = { 0 };
    cr_assert_eq(once_poll(NULL, &o), 7);
    cr_assert_eq(once_poll(NULL, &o), -EINVAL);
    cr_assert_eq(once_poll(NULL, &o), -EINVAL);
    struct once z = { 0 };
    cr_assert_eq(falls_off_poll(NULL, &z), 0);
    cr_assert_eq(falls_off_poll(NULL, &z), -EINVAL);
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, null_waker_is_a_no_op)
{
    weft_waker w = { 0 };
    weft_waker c = weft_waker_clone(&w);
    cr_assert_eq(c.weft_bits, 0);
    weft_waker_wake_by_ref(&w);
    weft_waker_wake(&w);
    weft_waker_drop(&w);
    cr_assert_not(weft_waker_will_wake(&w, NULL));
    cr_assert_not(weft_cx_cancel_requested(NULL));
    WEFT_ASSERT_NO_LEAKS();
}

/* Each of these takes a pointer that can be checked; passing NULL must not
 * crash (docs/architecture.md, "API conventions": detectable misuse gets an
 * error, never a crash). One test per call so each failure names its function. */
Test(misuse, waker_clone_null)
{
    weft_waker c = weft_waker_clone(NULL);
    cr_assert_eq(c.weft_bits, 0);
    WEFT_ASSERT_NO_LEAKS();
}

#define NULL_CALL_TEST(name, call)                                            \
    Test(misuse, name)                                                        \
    {                                                                         \
        call;                                                                 \
        WEFT_ASSERT_NO_LEAKS();                                               \
    }

NULL_CALL_TEST(waker_wake_null, weft_waker_wake(NULL))
NULL_CALL_TEST(waker_wake_by_ref_null, weft_waker_wake_by_ref(NULL))
NULL_CALL_TEST(waker_drop_null, weft_waker_drop(NULL))
NULL_CALL_TEST(waker_will_wake_null, cr_assert_not(weft_waker_will_wake(NULL, NULL)))
NULL_CALL_TEST(cx_suspend_null, weft_cx_suspend(NULL, NULL, NULL))
NULL_CALL_TEST(cx_coop_null, (void)weft_cx_coop(NULL))
NULL_CALL_TEST(shield_enter_null, weft_shield_enter(NULL))
NULL_CALL_TEST(shield_exit_null, weft_shield_exit(NULL))

Test(misuse, cx_waker_null)
{
    weft_waker w = weft_cx_waker(NULL);
    cr_assert_eq(w.weft_bits, 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- error.h ------------------------------------------------------------------ */

Test(misuse, strerror_and_err_name_known_codes)
{
    static const struct { int err; const char *name; } known[] = {
        { -EINVAL, "EINVAL" }, { -ENOMEM, "ENOMEM" }, { -ECANCELED, "ECANCELED" },
        { -ETIMEDOUT, "ETIMEDOUT" }, { -ESHUTDOWN, "ESHUTDOWN" }, { -EDEADLK, "EDEADLK" },
        { -EPERM, "EPERM" }, { -EAGAIN, "EAGAIN" }, { -EBUSY, "EBUSY" },
        { -ENOSYS, "ENOSYS" }, { -EBADF, "EBADF" }, { -EPIPE, "EPIPE" },
        { -ECONNRESET, "ECONNRESET" }, { -ENOENT, "ENOENT" },
    };
    const char *unknown_text = weft_strerror(-100000);
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        cr_assert_str_eq(weft_err_name(known[i].err), known[i].name);
        const char *s = weft_strerror(known[i].err);
        cr_assert_not_null(s);
        cr_assert_gt(strlen(s), 0);
        cr_assert_str_neq(s, unknown_text, "%s has its own text", known[i].name);
    }
    cr_assert_str_eq(weft_strerror(-ECANCELED), "operation cancelled");
    cr_assert_str_eq(weft_strerror(-ESHUTDOWN), "runtime is shut down");
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, strerror_and_err_name_success_and_unknown)
{
    cr_assert_str_eq(weft_strerror(0), "success");
    cr_assert_str_eq(weft_strerror(5), "success");
    cr_assert_str_eq(weft_err_name(0), "OK");
    cr_assert_str_eq(weft_err_name(12345), "OK");
    cr_assert_str_eq(weft_strerror(-100000), "unknown error");
    cr_assert_str_eq(weft_err_name(-100000), "UNKNOWN");
    cr_assert_not_null(weft_strerror(INT_MAX));
    WEFT_ASSERT_NO_LEAKS();
}

/* Kernel results weft has no wording for still get a name and a text: a
 * server printing -EMFILE from accept must not say "unknown error". */
Test(misuse, strerror_and_err_name_every_errno)
{
    static const struct { int err; const char *name; } libc[] = {
        { -EMFILE, "EMFILE" }, { -EADDRINUSE, "EADDRINUSE" }, { -EXDEV, "EXDEV" },
        { -ECONNREFUSED, "ECONNREFUSED" }, { -ENFILE, "ENFILE" }, { -EIO, "EIO" },
    };
    for (size_t i = 0; i < sizeof libc / sizeof *libc; i++) {
        cr_assert_str_eq(weft_err_name(libc[i].err), libc[i].name);
        cr_assert_str_eq(weft_strerror(libc[i].err), strerror(-libc[i].err));
    }
    for (int e = 1; e < 134; e++) {     /* every errno Linux defines */
        if (e == 41 || e == 58)         /* the two gaps in the table */
            continue;
        cr_assert_str_neq(weft_err_name(-e), "UNKNOWN", "errno %d has no name", e);
        cr_assert_str_neq(weft_strerror(-e), "unknown error", "errno %d has no text", e);
    }
    WEFT_ASSERT_NO_LEAKS();
}

/* -INT_MIN overflows: the lookup must not negate it (UBSan halts here). */
Test(misuse, strerror_int_min)
{
    cr_assert_str_eq(weft_strerror(INT_MIN), "unknown error");
    cr_assert_str_eq(weft_err_name(INT_MIN), "UNKNOWN");
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- allocation failure ------------------------------------------------------- */

Test(misuse, spawn_enomem_leaves_runtime_usable)
{
    weft_runtime *rt = rt_make(2, 0);
    weft_frame fr = { 0 };
    weft_task_desc d = DESC(count_poll, &fr, count_drop, 0);
    weft_join h = WEFT_JOIN_INIT;
    weft_outcome out;

    weft__alloc_fail_after(1);
    cr_assert_eq(weft_spawn(rt, &d, &h), -ENOMEM);
    cr_assert_null(h.weft_task);
    weft__alloc_fail_after(1);
    cr_assert_eq(weft_spawn_detached(rt, &d), -ENOMEM);
    weft__alloc_fail_after(1);
    cr_assert_eq(weft_block_on(rt, &d, &out), -ENOMEM);
    weft__alloc_fail_after(0);
    cr_assert_eq(atomic_load(&polled), 0);
    cr_assert_eq(flag_get(&drops), 0);
    cr_assert_eq(weft_runtime_live_tasks(rt), 0);

    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.value, 11);
    cr_assert_eq(flag_get(&drops), 1);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, runtime_new_enomem_at_every_allocation)
{
    int failures = 0, first_success = 0;
    for (long n = 1; n <= 40; n++) {
        weft_runtime *rt = NULL;
        weft_runtime_opts o = { .threads = 3 };
        weft__alloc_fail_after(n);
        int rc = weft_runtime_new(&rt, &o);
        weft__alloc_fail_after(0);
        if (rc == 0) {
            if (!first_success)
                first_success = (int)n;
            /* The runtime works: one task through it. */
            weft_frame fr = { 0 };
            weft_task_desc d = DESC(count_poll, &fr, NULL, 0);
            weft_outcome out;
            cr_assert_eq(weft_block_on(rt, &d, &out), 0);
            cr_assert_eq(out.value, 11);
            rt_done(rt);
        } else {
            cr_assert_eq(rc, -ENOMEM, "allocation %ld: %d", n, rc);
            cr_assert_eq(first_success, 0, "allocation %ld failed after %d succeeded", n,
                         first_success);
            cr_assert_null(rt, "out written on failure");
            failures++;
        }
    }
    cr_assert_gt(failures, 0, "runtime_new allocates");
    cr_assert_gt(first_success, 0);
    cr_log_info("weft_runtime_new makes %d allocations", failures);
    WEFT_ASSERT_NO_LEAKS();
}

struct enomem_parent {
    weft_frame f;
    int i;
    int64_t rc;
    weft_join h;
    weft_outcome out;
};

static weft_poll enomem_parent_poll(weft_cx *cx, void *p)
{
    struct enomem_parent *e = p;
    WEFT_BEGIN(&e->f);
    for (e->i = 0; e->i < 20; e->i++) {
        {
            weft_frame cf = { 0 };
            weft_task_desc d = DESC(count_poll, &cf, count_drop, 0);
            weft__alloc_fail_after(1);
            int rc = weft_spawn(weft_cx_runtime(cx), &d, &e->h);
            weft__alloc_fail_after(0);
            if (rc != -ENOMEM || e->h.weft_task)
                WEFT_RETURN(&e->f, -1);
            if (weft_spawn(weft_cx_runtime(cx), &d, &e->h) != 0)
                WEFT_RETURN(&e->f, -2);
        }
        WEFT_AWAIT(&e->f, e->rc, weft_join_await(cx, &e->h, &e->out));
        if (e->rc != 0 || e->out.value != 11)
            WEFT_RETURN(&e->f, -3);
    }
    WEFT_RETURN(&e->f, e->i);
    WEFT_END(&e->f);
}

Test(misuse, enomem_inside_a_task)
{
    /* A spawn from a task that fails with -ENOMEM leaves the task, its worker
     * and the runtime working. */
    weft_runtime *rt = rt_make(2, 0);
    struct enomem_parent fr = { .h = WEFT_JOIN_INIT };
    weft_task_desc d = DESC(enomem_parent_poll, &fr, NULL, 0);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.value, 20, "value %ld", (long)out.value);
    cr_assert_eq(flag_get(&drops), 20);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- stale and double-used join handles ------------------------------------ */

Test(misuse, join_handle_double_use)
{
    weft_runtime *rt = rt_make(1, 0);
    weft_frame fr = { 0 };
    weft_task_desc d = DESC(count_poll, &fr, NULL, 0);
    weft_join h = WEFT_JOIN_INIT, copy;
    weft_outcome out;

    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(weft_join_wait(&h, &out), -EINVAL, "double join");
    cr_assert_eq(weft_abort(&h), -EINVAL, "abort after join");
    cr_assert_eq(weft_detach(&h), -EINVAL, "detach after join");
    cr_assert_eq(weft_join_wait_timeout(&h, &out, 1000), -EINVAL, "timed join after join");
    cr_assert_not(weft_join_is_finished(&h));

    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    copy = h;
    cr_assert_eq(weft_detach(&h), 0);
    cr_assert_eq(weft_detach(&h), -EINVAL, "double detach");
    cr_assert_eq(weft_join_wait(&h, &out), -EINVAL, "join after detach");
    cr_assert_eq(weft_abort(&h), -EINVAL, "abort after detach");
    (void)copy;     /* a copy is not tracked (README); using it is not checked */
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, join_wait_timeout_and_await_timeout_bad_args)
{
    weft_join empty = WEFT_JOIN_INIT;
    weft_join_timeout jt = WEFT_JOIN_TIMEOUT_INIT;
    weft_outcome out;
    cr_assert_eq(weft_join_wait_timeout(NULL, &out, 1), -EINVAL);
    cr_assert_eq(weft_join_wait_timeout(&empty, &out, 1), -EINVAL);
    cr_assert_eq(weft_join_await_timeout(NULL, &jt, &empty, &out, 1), -EINVAL);
    cr_assert_eq(weft_join_await_timeout(NULL, NULL, NULL, NULL, 1), -EINVAL);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- after shutdown ------------------------------------------------------------ */

Test(misuse, calls_after_shutdown)
{
    weft_runtime *rt = rt_make(2, 0);
    weft_frame fr = { 0 };
    weft_task_desc d = DESC(count_poll, &fr, count_drop, 0);
    weft_join h = WEFT_JOIN_INIT, done = WEFT_JOIN_INIT;
    weft_outcome out;
    weft_group *g = NULL, *g2 = NULL;

    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    cr_assert_eq(weft_spawn(rt, &d, &done), 0);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(weft_runtime_shutdown(rt), 0, "idempotent");
    cr_assert_eq(weft_spawn(rt, &d, &h), -ESHUTDOWN);
    cr_assert_null(h.weft_task);
    cr_assert_eq(weft_spawn_detached(rt, &d), -ESHUTDOWN);
    cr_assert_eq(weft_block_on(rt, &d, &out), -ESHUTDOWN);
    cr_assert_eq(weft_group_spawn(g, &d), -ESHUTDOWN);
    int rc = weft_group_new(rt, NULL, &g2);
    cr_assert(rc == -ESHUTDOWN || rc == 0, "group_new after shutdown: %d", rc);
    if (rc == 0)
        cr_assert_eq(weft_group_spawn(g2, &d), -ESHUTDOWN);
    cr_assert_eq(weft_join_wait(&done, &out), 0, "a handle outlives shutdown");
    cr_assert_eq(weft_runtime_live_tasks(rt), 0);
    cr_assert_eq(weft_group_free(g), 0);
    if (g2)
        cr_assert_eq(weft_group_free(g2), 0);
    rt_done(rt);
    cr_assert_eq(atomic_load(&polled), 1, "only the task spawned before shutdown ran");
    cr_assert_eq(flag_get(&drops), 1, "and only its drop hook");
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- task.h leftovers ------------------------------------------------------------ */

Test(misuse, task_context_calls_null)
{
    cr_assert_not(weft_cx_is_teardown(NULL));
    cr_assert_not(weft_cx_cancel_due(NULL));
    cr_assert_eq(weft_pending(NULL), -EINVAL);
    cr_assert_null(weft_cx_task_name(NULL));
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- token.h ---------------------------------------------------------------------- */

Test(misuse, token_calls_bad_args)
{
    weft_token *t = NULL, *c = (weft_token *)0x1;
    weft_token_wait w = WEFT_TOKEN_WAIT_INIT;
    cr_assert_eq(weft_token_new(NULL), -EINVAL);
    cr_assert_eq(weft_token_child(NULL, &c), -EINVAL);
    cr_assert_eq(c, (weft_token *)0x1, "out untouched on failure");
    cr_assert_eq(weft_token_cancel(NULL), -EINVAL);
    cr_assert_not(weft_token_is_cancelled(NULL));
    cr_assert_null(weft_token_ref(NULL));
    weft_token_release(NULL);
    cr_assert_eq(weft_token_new(&t), 0);
    cr_assert_eq(weft_token_child(t, NULL), -EINVAL);
    cr_assert_eq(weft_token_cancelled(NULL, t, &w), -EINVAL, "await outside a task");
    cr_assert_eq(weft_token_cancel(t), 0);
    cr_assert_eq(weft_token_cancel(t), 1, "second cancel");
    weft_token_release(t);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- group.h ---------------------------------------------------------------------- */

Test(misuse, group_calls_bad_args)
{
    weft_runtime *rt = rt_make(1, 0);
    weft_group *g = (weft_group *)0x1;
    weft_outcome out;
    weft_frame fr = { 0 };
    weft_task_desc d = DESC(count_poll, &fr, count_drop, 0);
    cr_assert_eq(weft_group_new(NULL, NULL, &g), -EINVAL);
    cr_assert_eq(weft_group_new(rt, NULL, NULL), -EINVAL);
    cr_assert_eq(g, (weft_group *)0x1);
    cr_assert_eq(weft_group_free(NULL), -EINVAL);
    cr_assert_eq(weft_group_spawn(NULL, &d), -EINVAL);
    cr_assert_eq(weft_group_cancel(NULL), -EINVAL);
    cr_assert_eq(weft_group_len(NULL), 0);
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    cr_assert_eq(weft_group_spawn(g, NULL), -EINVAL);
    weft_task_desc bad = d;
    bad.poll = NULL;
    cr_assert_eq(weft_group_spawn(g, &bad), -EINVAL);
    weft_token *toks[WEFT_MAX_TASK_TOKENS] = { 0 };
    bad = d;
    bad.tokens = toks;
    bad.ntokens = WEFT_MAX_TASK_TOKENS;
    cr_assert_eq(weft_group_spawn(g, &bad), -EINVAL, "no room for the group's token");
    cr_assert_eq(weft_group_len(g), 0);
    cr_assert_eq(weft_group_join_next(NULL, g, &out), -EINVAL, "await outside a task");
    cr_assert_eq(weft_group_join_all(NULL, g), -EINVAL);
    cr_assert_eq((weft_group_shutdown)(NULL, g), -EINVAL);
    cr_assert_eq(weft_group_free(g), 0);
    rt_done(rt);
    cr_assert_eq(atomic_load(&polled), 0, "no failed spawn ran");
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- select.h, time.h -------------------------------------------------------------- */

Test(misuse, select_and_sleep_bad_args_outside_a_task)
{
    weft_selector sel = WEFT_SELECTOR_INIT;
    weft_sleep s = WEFT_SLEEP_INIT;
    int64_t r;
    cr_assert_eq(weft_select(NULL, &sel, 1, no_branch, NULL), -EINVAL);
    cr_assert_eq(weft_select_winner(NULL), -1);
    cr_assert_eq(weft_select_winner(&sel), -1);
    cr_assert_not(weft_select_outcome(NULL, 0, &r));
    cr_assert_not(weft_select_outcome(&sel, 0, &r));
    cr_assert_not(weft_select_outcome(&sel, WEFT_SELECT_MAX, &r));
    cr_assert_not(weft_select_outcome(&sel, UINT_MAX, NULL));
    cr_assert_eq(weft_sleep_until(NULL, &s, 0), -EINVAL);
    cr_assert_eq(weft_sleep_for(NULL, &s, 0), -EINVAL);
    cr_assert_gt(weft_now_ns(), 0);
    WEFT_ASSERT_NO_LEAKS();
}
