/*
 * tests/core/test_misuse.c - every public call of the include/weft headers misused:
 * NULL arguments, empty, stale and double-used handles (double join, join
 * after detach, abort after join, drop twice, send after drop), awaits called
 * outside a task, *_blocking calls on a worker, and calls after runtime
 * shutdown. Each must return the documented error (-EINVAL, -EPERM,
 * -ESHUTDOWN, -EDEADLK, ...) and never crash; a callback is never called.
 * One test per function or per small family, so a crash names its culprit.
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
#include "runtime/alloc.h"
#include "weft/sim.h"

TestSuite(misuse, .timeout = 60);

static _Atomic int polled;
static flag drops;

static weft_poll count_poll(weft_cx *cx, void *p)
{
    (void)cx;
    (void)p;
    atomic_fetch_add(&polled, 1);
    return 11;
}

static void count_drop(void *p)
{
    (void)p;
    flag_add(&drops, 1);
}

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

static weft_poll no_branch(weft_cx *cx, void *frame, unsigned i)
{
    (void)cx;
    (void)frame;
    (void)i;
    return 0;
}

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

/* ---- io.h outside a task --------------------------------------------------------- */

Test(misuse, io_calls_outside_a_task)
{
    weft_io io = WEFT_IO_INIT;
    weft_xfer x = WEFT_XFER_INIT;
    char buf[4];
    struct iovec iov = { buf, sizeof buf };
    cr_assert_eq(weft_io_deadline(NULL, 1), -EINVAL);
    cr_assert_eq(weft_io_timeout(NULL, 1), -EINVAL);
    cr_assert_eq(weft_io_deadline(&io, 0), 0);
    cr_assert_eq(weft_socket(NULL, &io, AF_INET, SOCK_STREAM, 0), -EINVAL);
    cr_assert_eq(weft_accept(NULL, &io, 0, NULL, NULL, 0), -EINVAL);
    cr_assert_eq(weft_connect(NULL, &io, 0, NULL, 0), -EINVAL);
    cr_assert_eq(weft_recv(NULL, &io, 0, buf, 4, 0), -EINVAL);
    cr_assert_eq(weft_send(NULL, &io, 0, buf, 4, 0), -EINVAL);
    cr_assert_eq(weft_sendto(NULL, &io, 0, buf, 4, 0, NULL, 0), -EINVAL);
    cr_assert_eq(weft_recvfrom(NULL, &io, 0, buf, 4, 0, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_shutdown(NULL, &io, 0, SHUT_RDWR), -EINVAL);
    cr_assert_eq(weft_openat(NULL, &io, AT_FDCWD, "/", O_RDONLY, 0), -EINVAL);
    cr_assert_eq(weft_read(NULL, &io, 0, buf, 4, 0), -EINVAL);
    cr_assert_eq(weft_write(NULL, &io, 0, buf, 4, 0), -EINVAL);
    cr_assert_eq(weft_readv(NULL, &io, 0, &iov, 1, 0), -EINVAL);
    cr_assert_eq(weft_writev(NULL, &io, 0, &iov, 1, 0), -EINVAL);
    cr_assert_eq(weft_fsync(NULL, &io, 0, false), -EINVAL);
    cr_assert_eq(weft_statx(NULL, &io, AT_FDCWD, "/", 0, 0, NULL), -EINVAL);
    cr_assert_eq(WEFT_RELEASE_VALUE(weft_close(NULL, &io, 0)), -EINVAL);
    cr_assert_eq(weft_send_all(NULL, &x, 0, buf, 4), -EINVAL);
    cr_assert_eq(weft_recv_exact(NULL, &x, 0, buf, 4), -EINVAL);
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, io_sync_helpers_bad_args)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    cr_assert_eq(weft_tcp_listen(NULL, 0, 1), -EINVAL);
    cr_assert_lt(weft_tcp_listen((struct sockaddr *)&a, 1, 1), 0, "short address");
    cr_assert_lt(weft_local_port(-1), 0);
    cr_assert_lt(weft_local_port(INT_MAX), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- inside a task: NULL leaves, bad fds, blocking calls on a worker ------------ */

struct in_task {
    weft_frame f;
    unsigned i;
    uint32_t failed;            /* bit k: check k did not fail as it should */
    weft_io io;
    weft_xfer x;
    weft_poll rc;
    char buf[8];
    struct iovec iov;
    struct statx st;
    weft_group *g;
};

#define IN_TASK_NULL_CHECKS 24

/* Check k of the immediate ones: a NULL leaf or object, answered at once. */
static weft_poll null_leaf(weft_cx *cx, struct in_task *t, unsigned k)
{
    weft_outcome out;
    uint64_t v;
    static const weft_oneshot_rx empty_orx;
    static const weft_mpsc_rx empty_rx;
    static const weft_mpsc_tx empty_tx;
    weft_mpsc_permit permit = WEFT_MPSC_PERMIT_INIT;
    weft_mpsc_send_op op = WEFT_MPSC_SEND_OP_INIT;
    weft_oneshot_rx orx = empty_orx;
    weft_mpsc_rx rx = empty_rx;
    weft_mpsc_tx tx = empty_tx;
    weft_broadcast_rx brx = { 0 };
    weft_watch_rx wrx = { 0 };
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_notify n = WEFT_NOTIFY_INIT;
    if (k == 0) return weft_token_cancelled(cx, NULL, NULL);
    if (k == 1) return weft_sleep_until(cx, NULL, 0);
    if (k == 2) return weft_sleep_for(cx, NULL, 0);
    if (k == 3) return weft_select(cx, NULL, 1, no_branch, NULL);
    if (k == 4) return weft_select(cx, &(weft_selector)WEFT_SELECTOR_INIT, 0, no_branch, NULL);
    if (k == 5) return weft_select(cx, &(weft_selector)WEFT_SELECTOR_INIT, WEFT_SELECT_MAX + 1,
                                   no_branch, NULL);
    if (k == 6) return weft_group_join_next(cx, NULL, &out);
    if (k == 7) return weft_group_join_all(cx, NULL);
    if (k == 8) return (weft_group_shutdown)(cx, NULL);
    if (k == 9) return weft_socket(cx, NULL, AF_INET, SOCK_STREAM, 0);
    if (k == 10) return weft_recv(cx, NULL, 0, t->buf, 1, 0);
    if (k == 11) return weft_send_all(cx, NULL, 0, t->buf, 1);
    if (k == 12) return weft_oneshot_recv(cx, &orx, &v);
    if (k == 13) return weft_mpsc_reserve(cx, &tx, &permit);
    if (k == 14) return weft_mpsc_send(cx, &tx, &op, 1);
    if (k == 15) return weft_mpsc_recv(cx, &rx, &v);
    if (k == 16) return weft_notify_wait(cx, &n, NULL);
    if (k == 17) return weft_mutex_lock(cx, &m, NULL);
    if (k == 18) return weft_rwlock_read(cx, NULL, NULL);
    if (k == 19) return weft_rwlock_write(cx, NULL, NULL);
    if (k == 20) return weft_semaphore_acquire(cx, NULL, NULL, 1);
    if (k == 21) return weft_broadcast_recv(cx, &brx, &v);
    if (k == 22) return weft_watch_changed(cx, &wrx, &v);
    return weft_barrier_wait(cx, NULL, NULL);
}

/* Blocking calls on a worker thread refuse with -EDEADLK (or -EINVAL for an
 * empty handle, checked first by some). */
static int blocking_on_worker(unsigned k)
{
    weft_oneshot_tx otx;
    weft_oneshot_rx orx;
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    weft_waitgroup wg = WEFT_WAITGROUP_INIT;
    uint64_t v;
    int rc;
    if (k == 0) {
        if (weft_oneshot_new(&otx, &orx) < 0)
            return 0;
        rc = weft_oneshot_recv_blocking(&orx, &v);
        weft_oneshot_tx_drop(&otx);
        weft_oneshot_rx_drop(&orx);
        return rc;
    }
    if (k == 3) {
        weft_waitgroup_add(&wg, 1);
        return weft_waitgroup_wait_blocking(&wg);
    }
    if (weft_mpsc_new(&tx, &rx, 1) < 0 || weft_mpsc_try_send(&tx, 1) < 0)
        return 0;
    rc = k == 1 ? weft_mpsc_send_blocking(&tx, 2) : weft_mpsc_recv_blocking(&rx, &v);
    if (k == 2)     /* the queued value is there: drain it first */
        rc = weft_mpsc_recv_blocking(&rx, &v) == 0 ? weft_mpsc_recv_blocking(&rx, &v) : rc;
    weft_mpsc_tx_drop(&tx);
    weft_mpsc_rx_drop(&rx);
    return rc;
}

static weft_poll bad_fd_op(weft_cx *cx, struct in_task *t)
{
    unsigned k = t->i;
    t->iov = (struct iovec){ t->buf, sizeof t->buf };
    if (k == 0) return weft_recv(cx, &t->io, -1, t->buf, 1, 0);
    if (k == 1) return weft_send(cx, &t->io, -1, t->buf, 1, 0);
    if (k == 2) return weft_read(cx, &t->io, -1, t->buf, 1, 0);
    if (k == 3) return weft_write(cx, &t->io, -1, t->buf, 1, 0);
    if (k == 4) return weft_readv(cx, &t->io, -1, &t->iov, 1, 0);
    if (k == 5) return weft_writev(cx, &t->io, -1, &t->iov, 1, 0);
    if (k == 6) return weft_fsync(cx, &t->io, -1, true);
    if (k == 7) return weft_accept(cx, &t->io, -1, NULL, NULL, 0);
    if (k == 8) return weft_shutdown(cx, &t->io, -1, SHUT_RDWR);
    if (k == 9) return (weft_close)(cx, &t->io, -1);
    if (k == 10) return weft_statx(cx, &t->io, -1, "x", 0, 0, &t->st);
    if (k == 11) return weft_openat(cx, &t->io, AT_FDCWD, "/nonexistent/weft", O_RDONLY, 0);
    if (k == 12) return weft_sendto(cx, &t->io, -1, t->buf, 1, 0, NULL, 0);
    if (k == 13) return weft_recvfrom(cx, &t->io, -1, t->buf, 1, 0, NULL, NULL);
    return weft_recv_exact(cx, &t->x, -1, t->buf, 1);
}

#define BAD_FD_OPS 15

static weft_poll in_task_poll(weft_cx *cx, void *p)
{
    struct in_task *t = p;
    WEFT_BEGIN(&t->f);
    for (t->i = 0; t->i < IN_TASK_NULL_CHECKS; t->i++)
        if (null_leaf(cx, t, t->i) != -EINVAL)
            t->failed |= 1u << t->i;
    for (t->i = 0; t->i < 4; t->i++)
        if (blocking_on_worker(t->i) != -EDEADLK)
            t->failed |= 1u << (24 + t->i);
    {
        weft_join h = WEFT_JOIN_INIT;
        weft_outcome out;
        weft_frame fr = { 0 };
        weft_task_desc d = DESC(count_poll, &fr, NULL, 0);
        if (weft_spawn(weft_cx_runtime(cx), &d, &h) == 0) {
            t->failed |= (uint32_t)(weft_join_wait(&h, &out) != -EDEADLK) << 28;
            weft_detach(&h);
        }
        t->failed |= (uint32_t)(weft_runtime_shutdown(weft_cx_runtime(cx)) != -EDEADLK) << 29;
    }
    for (t->i = 0; t->i < BAD_FD_OPS; t->i++) {
        t->io = (weft_io)WEFT_IO_INIT;
        t->x = (weft_xfer)WEFT_XFER_INIT;
        WEFT_AWAIT(&t->f, t->rc, bad_fd_op(cx, t));
        if (t->rc >= 0)
            WEFT_RETURN(&t->f, 100 + t->i);
    }
    WEFT_RETURN(&t->f, t->failed);
    WEFT_END(&t->f);
}

Test(misuse, awaits_inside_a_task_reject_bad_args)
{
    weft_runtime *rt = rt_make(2, 0);
    struct in_task t = { 0 };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &DESC(in_task_poll, &t, NULL, 0), &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert(out.value < 100, "bad-fd operation %lld succeeded", (long long)out.value - 100);
    for (unsigned k = 0; k < 30; k++)
        cr_expect_eq(out.value >> k & 1, 0, "check %u accepted misuse (0-23: NULL leaf; 24-27: "
                     "*_blocking on a worker; 28: join_wait on a worker; 29: shutdown on a "
                     "worker)", k);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* Every weft_poll call with no task context answers -EINVAL at once. */
Test(misuse, sync_awaits_outside_a_task)
{
    uint64_t v;
    weft_oneshot_tx otx;
    weft_oneshot_rx orx;
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    weft_mpsc_permit permit = WEFT_MPSC_PERMIT_INIT;
    weft_mpsc_send_op op = WEFT_MPSC_SEND_OP_INIT;
    weft_notify n = WEFT_NOTIFY_INIT;
    weft_notify_waiter nw = WEFT_NOTIFY_WAITER_INIT;
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_mutex_waiter mw = WEFT_MUTEX_WAITER_INIT;
    weft_rwlock rw = WEFT_RWLOCK_INIT;
    weft_rwlock_waiter rww = WEFT_RWLOCK_WAITER_INIT;
    weft_semaphore s = WEFT_SEMAPHORE_INIT(1);
    weft_semaphore_waiter sw = WEFT_SEMAPHORE_WAITER_INIT;
    weft_barrier b = WEFT_BARRIER_INIT(2);
    weft_barrier_waiter bw = WEFT_BARRIER_WAITER_INIT;
    weft_waitgroup wg = WEFT_WAITGROUP_INIT;
    weft_waitgroup_waiter ww = WEFT_WAITGROUP_WAITER_INIT;
    weft_broadcast_tx btx;
    weft_broadcast_rx brx;
    weft_watch_tx wtx;
    weft_watch_rx wrx;
    cr_assert_eq(weft_oneshot_new(&otx, &orx), 0);
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    cr_assert_eq(weft_broadcast_new(&btx, &brx, 1), 0);
    cr_assert_eq(weft_watch_new(&wtx, &wrx, 0), 0);
    cr_assert_eq(weft_oneshot_recv(NULL, &orx, &v), -EINVAL);
    cr_assert_eq(weft_mpsc_reserve(NULL, &tx, &permit), -EINVAL);
    cr_assert_eq(weft_mpsc_send(NULL, &tx, &op, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_recv(NULL, &rx, &v), -EINVAL);
    cr_assert_eq(weft_notify_wait(NULL, &n, &nw), -EINVAL);
    cr_assert_eq(weft_mutex_lock(NULL, &m, &mw), -EINVAL);
    cr_assert_eq(weft_rwlock_read(NULL, &rw, &rww), -EINVAL);
    cr_assert_eq(weft_rwlock_write(NULL, &rw, &rww), -EINVAL);
    cr_assert_eq(weft_semaphore_acquire(NULL, &s, &sw, 1), -EINVAL);
    cr_assert_eq(weft_barrier_wait(NULL, &b, &bw), -EINVAL);
    cr_assert_eq(weft_waitgroup_wait(NULL, &wg, &ww), -EINVAL);
    cr_assert_eq(weft_broadcast_recv(NULL, &brx, &v), -EINVAL);
    cr_assert_eq(weft_watch_changed(NULL, &wrx, &v), -EINVAL);
    /* Nothing was consumed or left queued by the refused calls. */
    cr_assert_eq(weft_mutex_destroy(&m), 0);
    cr_assert_eq(weft_barrier_destroy(&b), 0);
    cr_assert_eq(weft_notify_destroy(&n), 0);
    cr_assert_eq(weft_oneshot_tx_drop(&otx), 0);
    cr_assert_eq(weft_oneshot_rx_drop(&orx), 0);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    cr_assert_eq(weft_broadcast_tx_drop(&btx), 0);
    cr_assert_eq(weft_broadcast_rx_drop(&brx), 0);
    cr_assert_eq(weft_watch_tx_drop(&wtx), 0);
    cr_assert_eq(weft_watch_rx_drop(&wrx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- sync.h: NULL, empty handles, double drops, use after drop ---------------- */

Test(misuse, oneshot_handles)
{
    weft_oneshot_tx tx, empty_tx = { 0 };
    weft_oneshot_rx rx, empty_rx = { 0 };
    uint64_t v;
    cr_assert_eq(weft_oneshot_new(NULL, &rx), -EINVAL);
    cr_assert_eq(weft_oneshot_new(&tx, NULL), -EINVAL);
    cr_assert_eq(weft_oneshot_send(NULL, 1), -EINVAL);
    cr_assert_eq(weft_oneshot_send(&empty_tx, 1), -EINVAL);
    cr_assert_eq(weft_oneshot_tx_drop(NULL), -EINVAL);
    cr_assert(weft_oneshot_tx_is_closed(NULL));
    cr_assert(weft_oneshot_tx_is_closed(&empty_tx));
    cr_assert_eq(weft_oneshot_try_recv(NULL, &v), -EINVAL);
    cr_assert_eq(weft_oneshot_try_recv(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_oneshot_recv_blocking(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_oneshot_rx_close(NULL), -EINVAL);
    cr_assert_eq(weft_oneshot_rx_drop(&empty_rx), -EINVAL);

    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    cr_assert_eq(weft_oneshot_try_recv(&rx, NULL), -EINVAL);
    cr_assert_eq(weft_oneshot_send(&tx, 1), 0);
    cr_assert_eq(weft_oneshot_send(&tx, 2), -EINVAL, "send after the sender was used");
    cr_assert_eq(weft_oneshot_tx_drop(&tx), -EINVAL, "drop after send");
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), 0);
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), -EPIPE, "received twice");
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), -EINVAL, "double drop");
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), -EINVAL, "recv after drop");
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, mpsc_handles)
{
    weft_mpsc_tx tx, tx2, empty = { 0 };
    weft_mpsc_rx rx, empty_rx = { 0 };
    weft_mpsc_permit p = WEFT_MPSC_PERMIT_INIT;
    uint64_t v;
    cr_assert_eq(weft_mpsc_new(NULL, &rx, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_new(&tx, NULL, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 0), -EINVAL);
    int big = weft_mpsc_new(&tx, &rx, SIZE_MAX);
    cr_assert(big == -EINVAL || big == -ENOMEM, "capacity SIZE_MAX: %d", big);
    cr_assert_eq(weft_mpsc_tx_clone(&tx2, &empty), -EINVAL);
    cr_assert_eq(weft_mpsc_tx_clone(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_tx_drop(NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_tx_drop(&empty), -EINVAL);
    cr_assert(weft_mpsc_tx_is_closed(&empty));
    cr_assert_eq(weft_mpsc_try_reserve(&empty, &p), -EINVAL);
    cr_assert_eq(weft_mpsc_try_reserve(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_permit_send(&p, 1), -EINVAL, "no permit held");
    cr_assert_eq(weft_mpsc_permit_send(NULL, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_permit_release(&p), -EINVAL);
    cr_assert_eq(weft_mpsc_permit_release(NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_try_send(&empty, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_send_blocking(&empty, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_try_recv(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_mpsc_recv_blocking(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_mpsc_rx_close(&empty_rx), -EINVAL);
    cr_assert_eq(weft_mpsc_rx_drop(&empty_rx), -EINVAL);
    cr_assert_eq(weft_mpsc_rx_drop(NULL), -EINVAL);

    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    cr_assert_eq(weft_mpsc_try_reserve(&tx, &p), 0);
    cr_assert_eq(weft_mpsc_try_reserve(&tx, &p), -EINVAL, "a second reserve into a held permit");
    cr_assert_eq(weft_mpsc_permit_send(&p, 1), 0);
    cr_assert_eq(weft_mpsc_permit_send(&p, 2), -EINVAL, "permit used twice");
    cr_assert_eq(weft_mpsc_try_recv(&rx, NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), -EINVAL, "double drop");
    cr_assert_eq(weft_mpsc_try_send(&tx, 3), -EINVAL, "send after drop");
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), 0);
    cr_assert_eq(v, 1);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), -EINVAL, "double drop");
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, mpsc_unbounded_handles)
{
    weft_mpsc_unbounded_tx tx, tx2, empty = { 0 };
    weft_mpsc_rx rx;
    cr_assert_eq(weft_mpsc_unbounded_new(NULL, &rx), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_new(&tx, NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_tx_clone(&tx2, &empty), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_tx_clone(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&empty), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_send(NULL, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_send(&empty, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_new(&tx, &rx), 0);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&tx), -EINVAL, "double drop");
    cr_assert_eq(weft_mpsc_unbounded_send(&tx, 1), -EINVAL, "send after drop");
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, notify_mutex_rwlock)
{
    weft_notify n;
    weft_mutex m;
    weft_rwlock rw;
    cr_assert_eq(weft_notify_init(NULL), -EINVAL);
    cr_assert_eq(weft_notify_destroy(NULL), -EINVAL);
    cr_assert_lt(weft_notify_one(NULL), 0);
    cr_assert_lt(weft_notify_all(NULL), 0);
    cr_assert_eq(weft_notify_init(&n), 0);
    cr_assert_eq(weft_notify_destroy(&n), 0);

    cr_assert_eq(weft_mutex_init(NULL), -EINVAL);
    cr_assert_eq(weft_mutex_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_mutex_try_lock(NULL), -EINVAL);
    cr_assert_eq(weft_mutex_unlock(NULL), -EINVAL);
    cr_assert_not(weft_mutex_is_locked(NULL));
    cr_assert_eq(weft_mutex_init(&m), 0);
    cr_assert_eq(weft_mutex_unlock(&m), -EPERM, "unlock when not held");
    cr_assert_eq(weft_mutex_try_lock(&m), 0);
    cr_assert_eq(weft_mutex_try_lock(&m), -EAGAIN, "not recursive");
    cr_assert_eq(weft_mutex_destroy(&m), -EBUSY);
    cr_assert_eq(weft_mutex_unlock(&m), 0);
    cr_assert_eq(weft_mutex_unlock(&m), -EPERM, "double unlock");
    cr_assert_eq(weft_mutex_destroy(&m), 0);

    cr_assert_eq(weft_rwlock_init(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_try_read(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_try_write(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_read_unlock(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_write_unlock(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_downgrade(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_init(&rw), 0);
    cr_assert_eq(weft_rwlock_read_unlock(&rw), -EPERM);
    cr_assert_eq(weft_rwlock_write_unlock(&rw), -EPERM);
    cr_assert_eq(weft_rwlock_downgrade(&rw), -EPERM);
    cr_assert_eq(weft_rwlock_try_read(&rw), 0);
    cr_assert_eq(weft_rwlock_write_unlock(&rw), -EPERM, "write unlock of a read hold");
    cr_assert_eq(weft_rwlock_downgrade(&rw), -EPERM);
    cr_assert_eq(weft_rwlock_destroy(&rw), -EBUSY);
    cr_assert_eq(weft_rwlock_read_unlock(&rw), 0);
    cr_assert_eq(weft_rwlock_read_unlock(&rw), -EPERM, "double read unlock");
    cr_assert_eq(weft_rwlock_destroy(&rw), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, semaphore_barrier_waitgroup)
{
    weft_semaphore s;
    weft_barrier b;
    weft_waitgroup wg;
    cr_assert_eq(weft_semaphore_init(NULL, 1), -EINVAL);
    cr_assert_eq(weft_semaphore_init(&s, WEFT_SEMAPHORE_MAX_PERMITS + 1), -EINVAL);
    cr_assert_eq(weft_semaphore_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_semaphore_try_acquire(NULL, 1), -EINVAL);
    cr_assert_eq(weft_semaphore_release(NULL, 1), -EINVAL);
    cr_assert_eq(weft_semaphore_close(NULL), -EINVAL);
    cr_assert_eq(weft_semaphore_available(NULL), -EINVAL);
    cr_assert(weft_semaphore_is_closed(NULL));
    cr_assert_eq(weft_semaphore_init(&s, 1), 0);
    cr_assert_eq(weft_semaphore_try_acquire(&s, 0), -EINVAL);
    cr_assert_eq(weft_semaphore_try_acquire(&s, WEFT_SEMAPHORE_MAX_PERMITS + 1), -EINVAL);
    cr_assert_eq(weft_semaphore_release(&s, WEFT_SEMAPHORE_MAX_PERMITS), -EOVERFLOW);
    cr_assert_eq(weft_semaphore_available(&s), 1, "a refused release added nothing");
    cr_assert_eq(weft_semaphore_close(&s), 0);
    cr_assert_eq(weft_semaphore_close(&s), 0, "idempotent");
    cr_assert_eq(weft_semaphore_try_acquire(&s, 1), -EPIPE);
    cr_assert_eq(weft_semaphore_destroy(&s), 0);

    cr_assert_eq(weft_barrier_init(NULL, 1), -EINVAL);
    cr_assert_eq(weft_barrier_init(&b, 0), -EINVAL);
    cr_assert_eq(weft_barrier_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_barrier_init(&b, 1), 0);
    cr_assert_eq(weft_barrier_destroy(&b), 0);

    cr_assert_eq(weft_waitgroup_init(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_add(NULL, 1), -EINVAL);
    cr_assert_eq(weft_waitgroup_done(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_count(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_wait_blocking(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_init(&wg), 0);
    cr_assert_eq(weft_waitgroup_done(&wg), -EPERM, "done below zero");
    cr_assert_eq(weft_waitgroup_add(&wg, UINT64_MAX), -EOVERFLOW);
    cr_assert_eq(weft_waitgroup_count(&wg), 0);
    cr_assert_eq(weft_waitgroup_wait_blocking(&wg), 0, "count 0: returns at once");
    cr_assert_eq(weft_waitgroup_destroy(&wg), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, broadcast_handles)
{
    weft_broadcast_tx tx, tx2, empty = { 0 };
    weft_broadcast_rx rx, rx2, empty_rx = { 0 };
    uint64_t v;
    cr_assert_eq(weft_broadcast_new(NULL, &rx, 1), -EINVAL);
    cr_assert_eq(weft_broadcast_new(&tx, NULL, 1), -EINVAL);
    cr_assert_eq(weft_broadcast_new(&tx, &rx, 0), -EINVAL);
    int big = weft_broadcast_new(&tx, &rx, SIZE_MAX);
    cr_assert(big == -EINVAL || big == -ENOMEM, "capacity SIZE_MAX: %d", big);
    cr_assert_eq(weft_broadcast_tx_clone(&tx2, &empty), -EINVAL);
    cr_assert_eq(weft_broadcast_tx_clone(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_broadcast_tx_drop(&empty), -EINVAL);
    cr_assert_eq(weft_broadcast_tx_drop(NULL), -EINVAL);
    cr_assert_eq(weft_broadcast_subscribe(&empty, &rx2), -EINVAL);
    cr_assert_eq(weft_broadcast_subscribe(NULL, NULL), -EINVAL);
    cr_assert_lt(weft_broadcast_send(&empty, 1), 0);
    cr_assert_lt(weft_broadcast_send(NULL, 1), 0);
    cr_assert_eq(weft_broadcast_try_recv(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_broadcast_try_recv(NULL, &v), -EINVAL);
    cr_assert_eq(weft_broadcast_rx_drop(&empty_rx), -EINVAL);
    cr_assert_eq(weft_broadcast_rx_drop(NULL), -EINVAL);
    cr_assert_eq(weft_broadcast_new(&tx, &rx, 2), 0);
    cr_assert_eq(weft_broadcast_try_recv(&rx, NULL), -EINVAL);
    cr_assert_eq(weft_broadcast_tx_drop(&tx), 0);
    cr_assert_eq(weft_broadcast_tx_drop(&tx), -EINVAL, "double drop");
    cr_assert_lt(weft_broadcast_send(&tx, 1), 0, "send after drop");
    cr_assert_eq(weft_broadcast_rx_drop(&rx), 0);
    cr_assert_eq(weft_broadcast_rx_drop(&rx), -EINVAL, "double drop");
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, watch_handles)
{
    weft_watch_tx tx, tx2, empty = { 0 };
    weft_watch_rx rx, rx2, empty_rx = { 0 };
    uint64_t v, ver;
    cr_assert_eq(weft_watch_new(NULL, &rx, 0), -EINVAL);
    cr_assert_eq(weft_watch_new(&tx, NULL, 0), -EINVAL);
    cr_assert_eq(weft_watch_tx_clone(&tx2, &empty), -EINVAL);
    cr_assert_eq(weft_watch_tx_clone(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_watch_tx_drop(&empty), -EINVAL);
    cr_assert_eq(weft_watch_tx_drop(NULL), -EINVAL);
    cr_assert_lt(weft_watch_send(&empty, 1), 0);
    cr_assert_lt(weft_watch_send(NULL, 1), 0);
    cr_assert_eq(weft_watch_subscribe(&empty, &rx2), -EINVAL);
    cr_assert_eq(weft_watch_subscribe(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_watch_rx_clone(&rx2, &empty_rx), -EINVAL);
    cr_assert_eq(weft_watch_rx_clone(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_watch_read(&empty_rx, &v, &ver), -EINVAL);
    cr_assert_eq(weft_watch_read(NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_watch_read_update(&empty_rx, &v, &ver), -EINVAL);
    cr_assert_eq(weft_watch_read_update(NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_watch_has_changed(&empty_rx), -EINVAL);
    cr_assert_eq(weft_watch_has_changed(NULL), -EINVAL);
    cr_assert_eq(weft_watch_rx_drop(&empty_rx), -EINVAL);
    cr_assert_eq(weft_watch_rx_drop(NULL), -EINVAL);
    cr_assert_eq(weft_watch_new(&tx, &rx, 7), 0);
    cr_assert_eq(weft_watch_read(&rx, NULL, NULL), 0, "both outputs may be NULL");
    cr_assert_eq(weft_watch_tx_drop(&tx), 0);
    cr_assert_eq(weft_watch_tx_drop(&tx), -EINVAL, "double drop");
    cr_assert_lt(weft_watch_send(&tx, 1), 0, "send after drop");
    cr_assert_eq(weft_watch_rx_drop(&rx), 0);
    cr_assert_eq(weft_watch_rx_drop(&rx), -EINVAL, "double drop");
    cr_assert_eq(weft_watch_read(&rx, &v, &ver), -EINVAL, "read after drop");
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- blocking.h, sim.h -------------------------------------------------------- */

static int nop_job(void *arg)
{
    (void)arg;
    return 0;
}

Test(misuse, blocking_calls_bad_args)
{
    weft_blocking job = WEFT_BLOCKING_INIT;
    weft_join h = WEFT_JOIN_INIT;
    struct addrinfo *res = NULL;
    cr_assert_eq(weft_blocking_run(NULL, &job, nop_job, NULL), -EINVAL, "outside a task");
    cr_assert_not(weft_blocking_should_stop(), "false outside a pool thread");
    cr_assert_eq(weft_getaddrinfo(NULL, &job, "localhost", NULL, NULL, &res), -EINVAL);
    cr_assert_null(res);
    cr_assert_eq(weft_spawn_blocking(NULL, nop_job, NULL, &h), -EINVAL);
    weft_runtime *rt = rt_make(1, 0);
    cr_assert_eq(weft_spawn_blocking(rt, NULL, NULL, &h), -EINVAL);
    cr_assert_eq(weft_spawn_blocking(rt, nop_job, NULL, NULL), -EINVAL);
    cr_assert_null(h.weft_task);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(weft_spawn_blocking(rt, nop_job, NULL, &h), -ESHUTDOWN);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

static int sim_check(void *arg, unsigned k, bool cancelled, int rc, const weft_outcome *out)
{
    (void)arg;
    (void)k;
    (void)cancelled;
    (void)rc;
    (void)out;
    return 0;
}

Test(misuse, sim_calls_bad_args)
{
    weft_runtime *rt = (weft_runtime *)0x1;
    weft_frame fr = { 0 };
    weft_task_desc d = DESC(count_poll, &fr, NULL, 0);
    weft_outcome out;
    weft_sim_sweep sw = { .check = NULL };
    weft_sim_sweep_result res;
    cr_assert_eq(weft_sim_runtime_new(NULL, NULL), -EINVAL);
    cr_assert_not(weft_sim_active(NULL));
    cr_assert_eq(weft_sim_schedule(NULL), 0);
    cr_assert_eq(weft_sim_steps(NULL), 0);
    cr_assert_eq(weft_sim_now(NULL), 0);
    cr_assert_eq(weft_sim_run(NULL, NULL, &out, NULL), -EINVAL);
    cr_assert_eq(weft_sim_sweep_cancel(NULL, &d, &res), -EINVAL);
    cr_assert_eq(weft_sim_sweep_cancel(&sw, &d, &res), -EINVAL, "no check function");
    sw.check = sim_check;
    cr_assert_eq(weft_sim_sweep_cancel(&sw, NULL, &res), -EINVAL);
    weft_sim_opts o = { .pct_depth = WEFT_SIM_MAX_PCT_DEPTH + 1 };
    cr_assert_lt(weft_sim_runtime_new(&rt, &o), 0, "pct depth above the maximum");
    cr_assert_eq(rt, (weft_runtime *)0x1, "out untouched on failure");
    cr_assert_eq(atomic_load(&polled), 0);
    WEFT_ASSERT_NO_LEAKS();
}
