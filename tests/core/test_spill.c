/*
 * tests/core/test_spill.c - what overflows a worker's local queue stays that
 * worker's (runtime/worker.c, invariant 8): it goes to the worker's spill,
 * not to the shared inject queue; the worker still gets to it while its
 * queue never runs dry; and another worker takes it when the owner is stuck
 * in a long poll.
 *
 * Counted, not timed. The one clock in here is a hang guard: a parent that
 * waits, spinning, for another worker to run its children gives up after
 * 10 s, so that a broken steal fails the assertion after it instead of
 * hanging the suite.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "core_util.h"
#include "weft/observe.h"

TestSuite(spill, .timeout = 60);

/* More than a local queue holds (256), so spawning them in one poll
 * overflows it. */
enum { CHILDREN = 1000 };

static _Atomic long children_ran;

struct child { weft_frame f; };

static weft_poll child_poll(weft_cx *cx, void *p)
{
    (void)cx;
    struct child *c = p;
    WEFT_BEGIN(&c->f);
    atomic_fetch_add(&children_ran, 1);
    WEFT_RETURN(&c->f, 1);
    WEFT_END(&c->f);
}

/* What the test asks of the parent, and what it saw (the task works on a
 * copy of its frame, so these live outside it). */
struct parent_report {
    bool wait_spinning;             /* wait in one poll for the other worker */
    uint32_t depth_after_spawn;     /* the worker's local_depth then */
    long ran_while_spinning;
};

struct parent {
    weft_frame f;
    weft_runtime *rt;
    struct parent_report *report;
    weft_join kids[CHILDREN];
    weft_outcome out;
    int i;
    int64_t sum;
    weft_poll rc;
};

/* Stuck in one poll until another worker has run every child it can reach
 * (the last one spawned waits in our LIFO slot, which is ours alone). */
static long spin_until_others_ran_children(void)
{
    uint64_t give_up = weft_now_ns() + 10 * 1000000000ull;
    long ran;
    while ((ran = atomic_load(&children_ran)) < CHILDREN - 1 && weft_now_ns() < give_up)
        ;
    return ran;
}

static weft_poll parent_poll(weft_cx *cx, void *p)
{
    struct parent *pa = p;
    WEFT_BEGIN(&pa->f);
    for (pa->i = 0; pa->i < CHILDREN; pa->i++) {
        struct child c = { 0 };
        int rc = weft_spawn(pa->rt, &WEFT_TASK(child_poll, &c), &pa->kids[pa->i]);
        if (rc < 0)
            WEFT_RETURN(&pa->f, rc);
    }
    weft_worker_metrics w[2];
    weft_metrics m;
    cr_assert_geq(weft_metrics_read(pa->rt, &m, w, 2), 1);
    pa->report->depth_after_spawn = w[0].local_depth;
    if (pa->report->wait_spinning)
        pa->report->ran_while_spinning = spin_until_others_ran_children();
    for (pa->i = 0; pa->i < CHILDREN; pa->i++) {
        WEFT_AWAIT(&pa->f, pa->rc, weft_join_await(cx, &pa->kids[pa->i], &pa->out));
        pa->sum += pa->out.value;
    }
    WEFT_RETURN(&pa->f, pa->sum);
    WEFT_END(&pa->f);
}

static uint64_t inject_runs(weft_runtime *rt)
{
    weft_worker_metrics w[2];
    weft_metrics m;
    int n = weft_metrics_read(rt, &m, w, 2);
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += w[i].inject_runs;
    return sum;
}

/* A runtime of `threads` workers that has run the parent to its end. */
static weft_runtime *run_parent(unsigned threads, struct parent_report *report)
{
    atomic_store(&children_ran, 0);
    weft_runtime *rt = rt_make(threads, 50);
    struct parent *pa = calloc(1, sizeof *pa);
    cr_assert_not_null(pa);
    pa->rt = rt;
    pa->report = report;
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(parent_poll, pa), &out), 0);
    cr_assert_eq(out.value, CHILDREN);
    free(pa);
    return rt;
}

Test(spill, an_overflow_stays_on_its_worker)
{
    struct parent_report report = { 0 };
    weft_runtime *rt = run_parent(1, &report);
    /* Every child but the one in the LIFO slot, in the queue or the spill:
     * the gauge counts both. */
    cr_assert_eq(report.depth_after_spawn, CHILDREN - 1);
    /* The parent came from outside; no child went through the inject
     * queue, although 3/4 of them overflowed the local queue. */
    cr_assert_eq(inject_runs(rt), 1, "inject runs: %llu",
                 (unsigned long long)inject_runs(rt));
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(spill, a_stuck_worker_s_spill_goes_to_another)
{
    struct parent_report report = { .wait_spinning = true };
    weft_runtime *rt = run_parent(2, &report);
    cr_assert_eq(report.ran_while_spinning, CHILDREN - 1,
                 "the other worker ran %ld of the %d children it could reach",
                 report.ran_while_spinning, CHILDREN - 1);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a spill is served while the local queue never runs dry ------------- */

/* Pairs of tasks hand a turn back and forth through two notifies. With more
 * tasks than the queue holds, the overflow waits in the spill while the
 * pairs still in the queue keep it busy for ever: only the worker's
 * fairness turns reach the spill. The test ends when every task has had at
 * least two turns; ROUNDS_GUARD turns in all end it otherwise. */
enum { PAIRS = 300, TASKS = 2 * PAIRS, ROUNDS_GUARD = 5 * 1000 * 1000 };

static _Atomic bool stop;
static _Atomic long ran_twice, rounds;

/* Each player's every turn counts; the second of each ends the test once
 * every player has had it. */
static void took_turn(struct pp_player *pl)
{
    if (++pl->turns == 2 && atomic_fetch_add(&ran_twice, 1) + 1 == TASKS)
        atomic_store(&stop, true);
    if (atomic_fetch_add(&rounds, 1) + 1 >= ROUNDS_GUARD)
        atomic_store(&stop, true);
}

static bool stopped(void)
{
    return atomic_load(&stop);
}

struct table {
    weft_frame f;
    weft_runtime *rt;
    struct pp_pair pairs[PAIRS];
    weft_join players[TASKS];
    weft_outcome out;
    int i;
    weft_poll rc;
};

static weft_poll table_poll(weft_cx *cx, void *p)
{
    struct table *tb = p;
    WEFT_BEGIN(&tb->f);
    for (tb->i = 0; tb->i < TASKS; tb->i++) {
        int rc = pp_spawn(tb->rt, tb->pairs, tb->i, took_turn, stopped, &tb->players[tb->i]);
        if (rc < 0)
            WEFT_RETURN(&tb->f, rc);
    }
    for (tb->i = 0; tb->i < TASKS; tb->i++) {
        WEFT_AWAIT(&tb->f, tb->rc, weft_join_await(cx, &tb->players[tb->i], &tb->out));
        if (tb->rc < 0 || tb->out.value != 0)
            WEFT_RETURN(&tb->f, -EPROTO);
    }
    WEFT_RETURN(&tb->f, 0);
    WEFT_END(&tb->f);
}

Test(spill, a_spill_gets_turns_while_the_queue_stays_busy)
{
    atomic_store(&stop, false);
    atomic_store(&ran_twice, 0);
    atomic_store(&rounds, 0);
    weft_runtime *rt = rt_make(1, 50);
    struct table *tb = calloc(1, sizeof *tb);
    tb->rt = rt;
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(table_poll, tb), &out), 0);
    cr_assert_eq(out.value, 0);
    cr_assert_eq(atomic_load(&ran_twice), TASKS,
                 "%ld of %d tasks had two turns in %ld turns", atomic_load(&ran_twice), TASKS,
                 atomic_load(&rounds));
    free(tb);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
