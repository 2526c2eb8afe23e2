/*
 * tests/reactor/test_blocking_shutdown.c - a blocking-pool job that shuts
 * its own runtime down gets -EDEADLK, as a task does.
 *
 * Shutdown waits for every pool thread to exit, so called from a job it
 * used to wait for its own thread for ever, holding the runtime's lifecycle
 * lock (and weft_runtime_free would have freed the runtime under its pool).
 * Now both calls fail at once and change nothing: the runtime runs on, and
 * the test thread shuts it down afterwards. Another runtime's job may shut
 * a runtime down: it does not wait for itself.
 *
 * Every wait is bounded (HANG_NS), so a job that hangs fails the test
 * instead of hanging it.
 */
#include <criterion/criterion.h>

#include <weft/weft.h>

#include "test_util.h"

TestSuite(blocking_shutdown, .timeout = 60);

#define HANG_NS (20ull * 1000000000ull)

static weft_runtime *make(void)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = 1, .blocking_threads = 2 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    return rt;
}

/* The value fn returned in a job spawned on rt (a bounded wait). */
static int64_t run_job(weft_runtime *rt, weft_blocking_fn fn, void *arg)
{
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn_blocking(rt, fn, arg, &h), 0);
    weft_outcome out;
    int rc = weft_join_wait_timeout(&h, &out, HANG_NS);
    cr_assert_eq(rc, 0, "the job did not return: %d (%s)", rc, weft_strerror(rc));
    cr_assert_eq(out.status, 0);
    return out.value;
}

struct stop_call {
    weft_runtime *rt;       /* the runtime the job stops */
    int shutdown_rc, free_rc;
};

static int stop_rt(void *arg)
{
    struct stop_call *c = arg;
    c->shutdown_rc = weft_runtime_shutdown(c->rt);
    c->free_rc = weft_runtime_free(c->rt);
    return 0;
}

static int seven(void *arg)
{
    (void)arg;
    return 7;
}

Test(blocking_shutdown, own_runtime_from_a_job_is_edeadlk)
{
    weft_runtime *rt = make();
    struct stop_call c = { .rt = rt };
    cr_assert_eq(run_job(rt, stop_rt, &c), 0);
    cr_assert_eq(c.shutdown_rc, -EDEADLK);
    cr_assert_eq(c.free_rc, -EDEADLK);
    cr_assert_eq(run_job(rt, seven, NULL), 7, "the refused calls changed the runtime");
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(blocking_shutdown, another_runtime_from_a_job_is_made)
{
    weft_runtime *rt = make(), *other = make();
    struct stop_call c = { .rt = other };
    cr_assert_eq(run_job(rt, stop_rt, &c), 0);
    cr_assert_eq(c.shutdown_rc, 0);
    cr_assert_eq(c.free_rc, 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}
