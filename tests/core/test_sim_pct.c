/*
 * tests/core/test_sim_pct.c - PCT over tasks (weft/sim.h): planted ordering
 * bugs of depth 1, 2 and 3 among tasks that all start on one worker are
 * found within the number of seeds the PCT bound promises; the depth is part
 * of the seed, so depth 2 and depth 3 of one seed are different schedules;
 * and a timer can fire between two polls under PCT too.
 *
 * The bound (weft/sim.h): a run finds a bug of depth d with probability at
 * least 1 / (n * h^(d-1)), n the tasks of the run, h = pct_steps no smaller
 * than the run's steps. Seeds are fixed, so each count below is the same on
 * every run; the tests assert the first find comes within 3 / p seeds (for a
 * fresh random seed sequence that would fail with probability under e^-3),
 * and print the count.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "test_util.h"
#include "weft/sim.h"
#include "weft/weft.h"

TestSuite(sim_pct, .timeout = 120);

/* ---- the planted bugs ---------------------------------------------------- */

/* depth 1: a before b.   depth 2: a1 < b1 < a2.   depth 3: a1 < b1 < a2 < b2,
 * where b2 must see a2's write and b1 must have seen a1's. */
static struct planted { int x; bool seen, bug; unsigned depth; } g;

struct ta { weft_frame f; weft_poll rc; };

static weft_poll a_poll(weft_cx *cx, void *p)
{
    struct ta *a = p;
    WEFT_BEGIN(&a->f);
    g.x = 1;
    if (g.depth > 1)
        WEFT_YIELD(&a->f, a->rc);
    g.x = 2;
    WEFT_RETURN(&a->f, 0);
    WEFT_END(&a->f);
}

static weft_poll b_poll(weft_cx *cx, void *p)
{
    struct ta *b = p;
    WEFT_BEGIN(&b->f);
    if (g.depth == 1) {
        g.bug = g.x != 0;       /* a ran first: the queue runs b (LIFO) first */
        WEFT_RETURN(&b->f, 0);
    }
    g.seen = g.x == 1;
    if (g.depth == 2) {
        g.bug = g.seen;
        WEFT_RETURN(&b->f, 0);
    }
    WEFT_YIELD(&b->f, b->rc);
    g.bug = g.seen && g.x == 2;
    WEFT_RETURN(&b->f, 0);
    WEFT_END(&b->f);
}

struct root { weft_frame f; weft_poll rc; weft_join h[2]; weft_outcome out; int i; };

static weft_poll root_poll(weft_cx *cx, void *p)
{
    struct root *r = p;
    WEFT_BEGIN(&r->f);
    struct ta a = { 0 }, b = { 0 };
    if (weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(a_poll, &a), &r->h[0]) < 0)
        WEFT_RETURN(&r->f, -1);
    if (weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(b_poll, &b), &r->h[1]) < 0)
        WEFT_RETURN(&r->f, -1);
    for (r->i = 0; r->i < 2; r->i++)
        WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &r->h[r->i], &r->out));
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

static uint64_t run_steps(const weft_sim_opts *o)
{
    weft_runtime *rt;
    cr_assert_eq(weft_sim_runtime_new(&rt, o), 0);
    struct root r = { .h = { WEFT_JOIN_INIT, WEFT_JOIN_INIT } };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(root_poll, &r), &out), 0);
    uint64_t steps = weft_sim_steps(rt);
    cr_assert_eq(weft_runtime_free(rt), 0);
    return steps;
}

/* Does the PCT run of depth d with this seed hit the bug? */
static bool hits(unsigned d, uint64_t horizon, unsigned seed)
{
    g = (struct planted){ .depth = d };
    weft_sim_opts o = { .seed = seed, .workers = 1, .pct_depth = d, .pct_steps = horizon };
    struct root r = { .h = { WEFT_JOIN_INIT, WEFT_JOIN_INIT } };
    weft_outcome out;
    cr_assert_eq(weft_sim_run(&o, &WEFT_TASK(root_poll, &r), &out, NULL), 0);
    return g.bug;
}

/* The first seed (counting from 1) whose PCT run of depth d hits the bug. */
static unsigned first_find(unsigned d, uint64_t horizon, unsigned max_seeds)
{
    for (unsigned seed = 1; seed <= max_seeds; seed++)
        if (hits(d, horizon, seed))
            return seed;
    return 0;
}

/* One worker: every task sits in one queue, which worker-level PCT could
 * never reorder. */
static void planted(unsigned d)
{
    g = (struct planted){ .depth = d };
    weft_sim_opts base = { .seed = 1, .workers = 1 };
    uint64_t k = run_steps(&base);
    cr_assert(!g.bug, "the default order must not hit the depth-%u bug", d);
    double n = 3, bound = n;   /* root, a, b */
    for (unsigned i = 1; i < d; i++)
        bound *= (double)k;
    unsigned limit = (unsigned)(3 * bound) + 1;
    unsigned found = first_find(d, k, limit);
    fprintf(stderr, "PCT depth %u: %llu steps, bound 1/%.0f, found at seed %u (limit %u)\n", d,
            (unsigned long long)k, bound, found, limit);
    cr_assert_neq(found, 0, "depth %u not found in %u seeds", d, limit);
    WEFT_ASSERT_NO_LEAKS();
}

Test(sim_pct, planted_depth_1) { planted(1); }
Test(sim_pct, planted_depth_2) { planted(2); }
Test(sim_pct, planted_depth_3) { planted(3); }

/* The bound as a frequency: over 20 / p seeds, at least p of them find the
 * bug (asserted with half that margin, for a fixed seed sequence that is
 * no sampling luck: the printed counts are the same on every run). */
static void bound_holds(unsigned d)
{
    g = (struct planted){ .depth = d };
    uint64_t k = run_steps(&(weft_sim_opts){ .seed = 1, .workers = 1 });
    double bound = 3;
    for (unsigned i = 1; i < d; i++)
        bound *= (double)k;
    unsigned n = (unsigned)(20 * bound), found = 0;
    for (unsigned seed = 1; seed <= n; seed++)
        found += hits(d, k, seed);
    fprintf(stderr, "PCT depth %u: %u of %u seeds (%.4f) find it; the bound is %.4f\n", d, found,
            n, (double)found / n, 1 / bound);
    cr_assert_geq(2.0 * found, n / bound, "depth %u: %u of %u", d, found, n);
}

Test(sim_pct, bound_holds_depth_1) { bound_holds(1); }
Test(sim_pct, bound_holds_depth_2) { bound_holds(2); }
Test(sim_pct, bound_holds_depth_3) { bound_holds(3); }

/* ---- the depth is part of the seed --------------------------------------- */

Test(sim_pct, depths_differ_for_one_seed)
{
    unsigned differ = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        uint64_t h[2];
        for (unsigned d = 2; d <= 3; d++) {
            g = (struct planted){ .depth = 3 };
            weft_sim_opts o = { .seed = seed, .workers = 2, .pct_depth = d, .pct_steps = 12 };
            struct root r = { .h = { WEFT_JOIN_INIT, WEFT_JOIN_INIT } };
            weft_outcome out;
            cr_assert_eq(weft_sim_run(&o, &WEFT_TASK(root_poll, &r), &out, &h[d - 2]), 0);
        }
        differ += h[0] != h[1];
    }
    cr_assert_geq(differ, 12, "only %u of 20 seeds differ between depth 2 and 3", differ);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- the clock under PCT ------------------------------------------------- */

static struct machine { int state; bool saw_busy; } m;

struct stepper { weft_frame f; weft_poll rc; };

static weft_poll stepper_poll(weft_cx *cx, void *p)
{
    struct stepper *s = p;
    WEFT_BEGIN(&s->f);
    m.state = 1;
    WEFT_YIELD(&s->f, s->rc);
    m.state = 2;
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

struct ticker { weft_frame f; weft_poll rc; weft_join h; weft_sleep s; weft_outcome out; };

static weft_poll ticker_poll(weft_cx *cx, void *p)
{
    struct ticker *t = p;
    WEFT_BEGIN(&t->f);
    struct stepper s = { 0 };
    if (weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(stepper_poll, &s), &t->h) < 0)
        WEFT_RETURN(&t->f, -1);
    WEFT_AWAIT(&t->f, t->rc, weft_sleep_for(cx, &t->s, 1000000));
    m.saw_busy = m.state == 1;
    WEFT_AWAIT(&t->f, t->rc, weft_join_await(cx, &t->h, &t->out));
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(sim_pct, timer_fires_between_two_polls)
{
    unsigned found = 0;
    for (uint64_t seed = 1; seed <= 200 && !found; seed++) {
        m = (struct machine){ 0 };
        weft_sim_opts o = { .seed = seed, .workers = 1, .pct_depth = 2, .pct_steps = 8 };
        struct ticker t = { .h = WEFT_JOIN_INIT, .s = WEFT_SLEEP_INIT };
        weft_outcome out;
        cr_assert_eq(weft_sim_run(&o, &WEFT_TASK(ticker_poll, &t), &out, NULL), 0);
        found = m.saw_busy ? (unsigned)seed : 0;
    }
    fprintf(stderr, "PCT timer between two polls: seed %u\n", found);
    cr_assert_neq(found, 0);
    WEFT_ASSERT_NO_LEAKS();
}
