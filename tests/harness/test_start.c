/*
 * tests/harness/test_start.c - weft_harness_scenario.start: a program that
 * spawns a task before its root (as weft-stress's catalogue scenarios do)
 * runs through the harness, and the task spawned there is swept like the
 * root's own children: its two-step update, torn by a cancellation at its
 * only await, is found by the sweep, replays from its name, and is found on
 * threads too; shielded, it comes back clean in every mode. An error from
 * start stops the harness with that error.
 *
 * The root's only await is its join of the started task: cancelling the
 * root never tears the update, so a failure proves the started task itself
 * was cancelled. Public API only; seeds are fixed; nothing sleeps.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "test_util.h"
#include "weft/harness.h"
#include "weft/weft.h"

TestSuite(harness_start, .timeout = 120);

#define GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define INC(x) __atomic_fetch_add(&(x), 1, __ATOMIC_RELAXED)

static struct {
    bool fixed;
    int start_rc;                   /* what start returns */
    int first, second;              /* the two halves of the update */
    unsigned starts;
    weft_join h;                    /* the started task, joined by the root */
} st;

struct updater {
    weft_frame f;
    weft_poll rc;
};

static weft_poll updater_poll(weft_cx *cx, void *p)
{
    struct updater *u = p;
    WEFT_BEGIN(&u->f);
    if (st.fixed)
        weft_shield_enter(cx);
    INC(st.first);
    WEFT_YIELD(&u->f, u->rc);
    INC(st.second);
    if (st.fixed)
        weft_shield_exit(cx);
    WEFT_RETURN(&u->f, 0);
    WEFT_END(&u->f);
}

struct joiner {
    weft_frame f;
    weft_poll rc;
    weft_outcome out;
};

static weft_poll joiner_poll(weft_cx *cx, void *p)
{
    struct joiner *j = p;
    WEFT_BEGIN(&j->f);
    WEFT_AWAIT(&j->f, j->rc, weft_join_await(cx, &st.h, &j->out));
    if (j->rc == -ECANCELED)
        weft_detach(&st.h);         /* the updater runs on; quiescence waits */
    WEFT_RETURN(&j->f, 0);
    WEFT_END(&j->f);
}

static struct joiner root_frame;

static int setup(void *arg, weft_task_desc *root)
{
    (void)arg;
    st.first = st.second = 0;
    st.h = (weft_join)WEFT_JOIN_INIT;
    root_frame = (struct joiner){ 0 };
    *root = WEFT_TASK(joiner_poll, &root_frame);
    root->name = "joiner";
    return 0;
}

static int start(void *arg, weft_runtime *rt)
{
    (void)arg;
    st.starts++;
    if (st.start_rc)
        return st.start_rc;
    struct updater u = { 0 };
    weft_task_desc d = WEFT_TASK(updater_poll, &u);
    d.flags = WEFT_TASK_CANCEL_SAFE;
    d.name = "updater";
    return weft_spawn(rt, &d, &st.h);
}

static int check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    /* A threaded run may still count the harness's own task. */
    size_t own = run->mode == WEFT_HARNESS_THREADS;
    if (run->rc == 0 && GET(st.first) == GET(st.second) && run->live_tasks <= own)
        return 0;
    snprintf(why, n, "rc %d, halves %d and %d, %zu tasks left", run->rc, GET(st.first),
             GET(st.second), run->live_tasks);
    return 1;
}

/* The root joins or detaches the started task on every path: no teardown. */
static const weft_harness_scenario started = { .name = "started", .setup = setup,
                                               .check = check, .start = start };

static weft_harness_report run(unsigned modes, bool keep_going, int *rc)
{
    FILE *log = fopen("/dev/null", "w");
    cr_assert_not_null(log);
    weft_harness_opts o = { .seeds = 40, .pct_seeds = 20, .pct_depth = 2, .threaded_runs = 16,
                            .modes = modes, .keep_going = keep_going, .quiet = true,
                            .log = log, .program = "test-start" };
    weft_harness_report rep;
    *rc = weft_harness_run(&started, &o, &rep);
    fclose(log);
    return rep;
}

Test(harness_start, the_started_task_is_swept)
{
    st = (__typeof__(st)){ .fixed = false };
    int rc;
    weft_harness_report r = run(1u << WEFT_HARNESS_SWEEP, false, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_eq(r.failures, 1);
    cr_assert_eq(r.first_mode, WEFT_HARNESS_SWEEP);
    cr_assert_gt(r.first_k, 0, "the uncancelled run must hold");
    cr_assert_gt(st.starts, r.runs, "start before every run, the explanation's included");
    FILE *log = fopen("/dev/null", "w");
    weft_harness_opts o = { .log = log, .program = "test-start" };
    cr_assert_eq(weft_harness_replay(&started, &o, r.first_name), 1, "%s", r.first_name);
    fclose(log);
    WEFT_ASSERT_NO_LEAKS();
}

Test(harness_start, the_started_task_is_cancelled_on_threads)
{
    st = (__typeof__(st)){ .fixed = false };
    int rc;
    weft_harness_report r = run(1u << WEFT_HARNESS_THREADS, true, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_eq(r.runs, 16);
    cr_assert_gt(r.failures, 0, "some seeded cancel lands on the updater's await");
    WEFT_ASSERT_NO_LEAKS();
}

Test(harness_start, shielded_it_is_clean_in_every_mode)
{
    st = (__typeof__(st)){ .fixed = true };
    int rc;
    weft_harness_report r = run(0, true, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_eq(r.failures, 0, "first: %s", r.first_name);
    cr_assert_gt(r.runs, 40 + 2 * 20 + 16);
    WEFT_ASSERT_NO_LEAKS();
}

Test(harness_start, an_error_from_start_stops_the_harness)
{
    st = (__typeof__(st)){ .fixed = true, .start_rc = -ENOMEM };
    int rc;
    (void)run(0, true, &rc);
    cr_assert_eq(rc, -ENOMEM);
    st.start_rc = 1;
    (void)run(0, true, &rc);
    cr_assert_eq(rc, -EINVAL, "a positive result is misuse");
}
