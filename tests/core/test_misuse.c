/*
 * tests/core/test_misuse.c - every public call of runtime.h, task.h and
 * error.h with NULL, empty handles and bad descriptions: the documented error,
 * never a crash, and a callback that is never called. Also allocation failure
 * (runtime/alloc.h fault injection).
 */
#include <limits.h>
#include <sched.h>

#include "core_util.h"
#include "runtime/alloc.h"

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
 * crash (DESIGN.md: "Misuse that can be detected (NULL, ...) ... never
 * crashes"). One test per call so each failure names its function. */
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
    cr_assert_str_eq(weft_err_name(-EXDEV), "UNKNOWN");
    cr_assert_not_null(weft_strerror(INT_MAX));
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
