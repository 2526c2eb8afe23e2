/*
 * tests/core/test_sim.c - the deterministic simulator (weft/sim.h): the same
 * seed gives the same schedule, other seeds give others, virtual time costs
 * no real time, a blocked program is reported, and the cancel-at-each-await
 * sweep finds a torn two-step update exactly where it is and nowhere when
 * the two steps are shielded, in the root or, with every_task, in a child.
 *
 * No test sleeps or measures time: the Criterion timeout is what would catch
 * a simulator that really waited for its hour.
 */
#include <criterion/criterion.h>
#include <unistd.h>

#include "test_util.h"
#include "weft/sim.h"
#include "weft/weft.h"

#define NCHILD 12

TestSuite(sim, .timeout = 30);

/* ---- a small program with yields, sleeps, spawns and joins ---------------- */

struct child {
    weft_frame f;
    uint32_t id, i;
    weft_poll rc;
    weft_sleep sleep;
};

static weft_poll child_poll(weft_cx *cx, void *p)
{
    struct child *c = p;
    WEFT_BEGIN(&c->f);
    for (c->i = 0; c->i < c->id % 5 + 1; c->i++) {
        if ((c->id + c->i) % 3 == 0)
            WEFT_AWAIT(&c->f, c->rc, weft_sleep_for(cx, &c->sleep, (c->id + 1) * 1000000ull));
        else
            WEFT_YIELD(&c->f, c->rc);
    }
    WEFT_RETURN(&c->f, c->id);
    WEFT_END(&c->f);
}

struct parent {
    weft_frame f;
    uint32_t i;
    int64_t sum;
    weft_poll rc;
    weft_join h[NCHILD];
    weft_outcome out;
};

static weft_poll parent_poll(weft_cx *cx, void *p)
{
    struct parent *r = p;
    WEFT_BEGIN(&r->f);
    for (r->i = 0; r->i < NCHILD; r->i++) {
        struct child c = { .id = r->i, .sleep = WEFT_SLEEP_INIT };
        if (weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(child_poll, &c), &r->h[r->i]) < 0)
            WEFT_RETURN(&r->f, -1);
    }
    for (r->i = 0; r->i < NCHILD; r->i++) {
        WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &r->h[r->i], &r->out));
        r->sum += r->out.value;
    }
    WEFT_RETURN(&r->f, r->sum);
    WEFT_END(&r->f);
}

static uint64_t run_parent(uint64_t seed, unsigned workers, unsigned pct)
{
    weft_sim_opts o = { .seed = seed, .workers = workers, .pct_depth = pct };
    struct parent r = { 0 };
    weft_outcome out;
    uint64_t hash = 0;
    int rc = weft_sim_run(&o, &WEFT_TASK(parent_poll, &r), &out, &hash);
    cr_assert_eq(rc, 0, "weft_sim_run: %d", rc);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, NCHILD * (NCHILD - 1) / 2);
    return hash;
}

Test(sim, same_seed_same_schedule)
{
    for (uint64_t seed = 1; seed <= 4; seed++) {
        uint64_t a = run_parent(seed, 3, 0), b = run_parent(seed, 3, 0);
        cr_assert_eq(a, b, "seed %llu: %llx vs %llx", (unsigned long long)seed,
                     (unsigned long long)a, (unsigned long long)b);
        cr_assert_eq(run_parent(seed, 3, 3), run_parent(seed, 3, 3), "PCT seed %llu",
                     (unsigned long long)seed);
    }
    WEFT_ASSERT_NO_LEAKS();
}

Test(sim, other_seeds_other_schedules)
{
    uint64_t seen[16];
    unsigned distinct = 0;
    for (uint64_t seed = 0; seed < 16; seed++) {
        uint64_t h = run_parent(seed * 7919 + 1, 4, seed % 2 ? 2 : 0);
        bool dup = false;
        for (unsigned i = 0; i < distinct; i++)
            dup |= seen[i] == h;
        if (!dup)
            seen[distinct++] = h;
    }
    cr_assert_geq(distinct, 14, "only %u distinct schedules out of 16", distinct);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- virtual time ----------------------------------------------------------- */

#define HOUR_NS (3600ull * 1000000000ull)

struct napper {
    weft_frame f;
    weft_sleep s;
    uint64_t start;
    weft_poll rc;
};

static weft_poll napper_poll(weft_cx *cx, void *p)
{
    struct napper *n = p;
    WEFT_BEGIN(&n->f);
    n->start = weft_now_ns();
    WEFT_AWAIT(&n->f, n->rc, weft_sleep_for(cx, &n->s, HOUR_NS));
    if (n->rc != 0)
        WEFT_RETURN(&n->f, -1);
    WEFT_RETURN(&n->f, (int64_t)(weft_now_ns() - n->start));
    WEFT_END(&n->f);
}

Test(sim, an_hour_passes_at_once)
{
    weft_sim_opts o = { .seed = 42, .workers = 2, .start_ns = 5 * HOUR_NS };
    weft_runtime *rt;
    cr_assert_eq(weft_sim_runtime_new(&rt, &o), 0);
    struct napper n = { .s = WEFT_SLEEP_INIT };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(napper_poll, &n), &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_geq(out.value, (int64_t)HOUR_NS, "slept %lld ns of virtual time",
                  (long long)out.value);
    cr_assert_lt(out.value, (int64_t)HOUR_NS + 2000000, "a sleep is late by at most a tick");
    cr_assert_geq(weft_sim_now(rt), 6 * HOUR_NS);
    cr_assert_gt(weft_sim_steps(rt), 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a program that can never finish ------------------------------------------- */

struct stuck {
    weft_frame f;
    weft_poll rc;
};

static weft_poll stuck_poll(weft_cx *cx, void *p)
{
    struct stuck *s = p;
    WEFT_BEGIN(&s->f);
    WEFT_AWAIT(&s->f, s->rc, weft_pending(cx));
    WEFT_RETURN(&s->f, s->rc);
    WEFT_END(&s->f);
}

static int drops;

static void stuck_drop(void *p)
{
    (void)p;
    drops++;
}

Test(sim, deadlock_is_reported_and_torn_down)
{
    weft_sim_opts o = { .seed = 7 };
    struct stuck s = { 0 };
    weft_task_desc d = { .poll = stuck_poll, .frame = &s, .frame_size = sizeof s,
                         .drop = stuck_drop };
    weft_outcome out;
    cr_assert_eq(weft_sim_run(&o, &d, &out, NULL), -EDEADLK);
    cr_assert_eq(drops, 1, "the blocked root is dropped once at shutdown");
    WEFT_ASSERT_NO_LEAKS();
}

Test(sim, step_limit_ends_a_livelock)
{
    weft_sim_opts o = { .seed = 7, .max_steps = 1000 };
    struct child c = { .id = 4, .sleep = WEFT_SLEEP_INIT };    /* 5 awaits */
    weft_sim_opts tight = o;
    tight.max_steps = 3;
    weft_outcome out;
    cr_assert_eq(weft_sim_run(&tight, &WEFT_TASK(child_poll, &c), &out, NULL), -ELOOP);
    cr_assert_eq(weft_sim_run(&o, &WEFT_TASK(child_poll, &c), &out, NULL), 0);
    cr_assert_eq(out.value, 4);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- the cancel-at-each-await sweep -------------------------------------------- */

/* Two halves of one update, split by an await: a ledger that must always
 * show both or neither. */
static struct ledger {
    int debit, credit;
} ledger;

struct transfer {
    weft_frame f;
    bool shielded;
    weft_poll rc;
};

/* Awaits 1, 2 and 3 are the three yields; the update is torn only by a
 * cancellation delivered at await 2. */
static weft_poll transfer_poll(weft_cx *cx, void *p)
{
    struct transfer *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_YIELD(&t->f, t->rc);
    if (t->rc < 0)
        WEFT_RETURN(&t->f, t->rc);
    if (t->shielded)
        weft_shield_enter(cx);
    ledger.debit++;
    WEFT_YIELD(&t->f, t->rc);
    if (t->rc < 0)
        WEFT_RETURN(&t->f, t->rc);   /* a cooperative task that just leaves */
    ledger.credit++;
    if (t->shielded)
        weft_shield_exit(cx);
    WEFT_YIELD(&t->f, t->rc);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static void reset_ledger(void *arg)
{
    (void)arg;
    ledger = (struct ledger){ 0, 0 };
}

static int ledger_balanced(void *arg, unsigned k, bool cancelled, int rc, const weft_outcome *out)
{
    (void)arg;
    (void)k;
    (void)cancelled;
    (void)out;
    return rc == 0 && ledger.debit == ledger.credit ? 0 : 1;
}

static weft_sim_sweep_result sweep(bool shielded, unsigned flags, weft_sim_cancel how)
{
    weft_sim_sweep sw = {
        .sim = { .seed = 99, .workers = 2 },
        .how = how,
        .check = ledger_balanced,
        .reset = reset_ledger,
    };
    struct transfer t = { .shielded = shielded };
    weft_task_desc d = { .poll = transfer_poll, .frame = &t, .frame_size = sizeof t,
                         .flags = flags };
    weft_sim_sweep_result res;
    cr_assert_eq(weft_sim_sweep_cancel(&sw, &d, &res), 0);
    cr_assert_eq(res.runs, 4, "runs %u", res.runs);
    cr_assert_eq(res.awaits, 3, "awaits %u", res.awaits);
    return res;
}

Test(sim, sweep_finds_torn_update_in_cancel_safe_task)
{
    weft_sim_sweep_result r = sweep(false, WEFT_TASK_CANCEL_SAFE, WEFT_SIM_CANCEL_ABORT);
    cr_assert_eq(r.failures, 1);
    cr_assert_eq(r.first_failing_k, 2);
    WEFT_ASSERT_NO_LEAKS();
}

Test(sim, sweep_shield_keeps_cancel_safe_update_whole)
{
    weft_sim_sweep_result r = sweep(true, WEFT_TASK_CANCEL_SAFE, WEFT_SIM_CANCEL_ABORT);
    cr_assert_eq(r.failures, 0, "failing k %u", r.first_failing_k);
    WEFT_ASSERT_NO_LEAKS();
}

Test(sim, sweep_token_cancel_finds_torn_cooperative_update)
{
    weft_sim_sweep_result r = sweep(false, 0, WEFT_SIM_CANCEL_TOKEN);
    cr_assert_eq(r.failures, 1);
    cr_assert_eq(r.first_failing_k, 2);
    r = sweep(true, 0, WEFT_SIM_CANCEL_TOKEN);
    cr_assert_eq(r.failures, 0, "failing k %u", r.first_failing_k);
    WEFT_ASSERT_NO_LEAKS();
}

/* The torn update in a child the root joins: cancelling the root never
 * tears it (the cooperative root leaves, the child goes on); cancelling the
 * child at its 2nd await does. */
struct joiner {
    weft_frame f;
    bool shielded;
    weft_poll rc;
    weft_join h;
    weft_outcome out;
};

static weft_poll joiner_poll(weft_cx *cx, void *p)
{
    struct joiner *j = p;
    WEFT_BEGIN(&j->f);
    struct transfer t = { .shielded = j->shielded };
    weft_task_desc d = { .poll = transfer_poll, .frame = &t, .frame_size = sizeof t,
                         .flags = WEFT_TASK_CANCEL_SAFE };
    if (weft_spawn(weft_cx_runtime(cx), &d, &j->h) < 0)
        WEFT_RETURN(&j->f, -1);
    WEFT_AWAIT(&j->f, j->rc, weft_join_await(cx, &j->h, &j->out));
    if (j->rc < 0)
        weft_detach(&j->h);
    WEFT_RETURN(&j->f, 0);
    WEFT_END(&j->f);
}

static weft_sim_sweep_result sweep_child(bool shielded, bool every)
{
    weft_sim_sweep sw = { .sim = { .seed = 99, .workers = 2 }, .check = ledger_balanced,
                          .reset = reset_ledger, .every_task = every };
    struct joiner j = { .shielded = shielded, .h = WEFT_JOIN_INIT };
    weft_sim_sweep_result res;
    cr_assert_eq(weft_sim_sweep_cancel(&sw, &WEFT_TASK(joiner_poll, &j), &res), 0);
    return res;
}

Test(sim, sweep_every_task_reaches_a_child)
{
    weft_sim_sweep_result r = sweep_child(false, false);
    cr_assert_eq(r.failures, 0, "root-only sweep: failing k %u", r.first_failing_k);
    r = sweep_child(false, true);
    cr_assert_eq(r.failures, 1, "every-task sweep: %u failures", r.failures);
    cr_assert_gt(r.awaits, 3, "the child's awaits are counted too: %u", r.awaits);
    r = sweep_child(true, true);
    cr_assert_eq(r.failures, 0, "shielded: failing k %u", r.first_failing_k);
    WEFT_ASSERT_NO_LEAKS();
}

Test(sim, sweep_misuse)
{
    weft_sim_sweep sw = { .sim = { .seed = 1 } };
    struct transfer t = { 0 };
    weft_sim_sweep_result res;
    cr_assert_eq(weft_sim_sweep_cancel(&sw, &WEFT_TASK(transfer_poll, &t), &res), -EINVAL);
    weft_sim_opts bad = { .pct_depth = WEFT_SIM_MAX_PCT_DEPTH + 1 };
    weft_runtime *rt;
    cr_assert_eq(weft_sim_runtime_new(&rt, &bad), -EINVAL);
    cr_assert_eq(weft_sim_schedule(NULL), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- I/O runs for real (not deterministically) ---------------------------------- */

struct reader {
    weft_frame f;
    int fd;
    char buf[8];
    weft_io io;
    weft_poll n;
};

static weft_poll reader_poll(weft_cx *cx, void *p)
{
    struct reader *r = p;
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->n, weft_read(cx, &r->io, r->fd, r->buf, sizeof r->buf, -1));
    WEFT_RETURN(&r->f, r->n);
    WEFT_END(&r->f);
}

Test(sim, io_completes_when_nothing_else_can_run)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], "weft", 4), 4);
    struct reader r = { .fd = p[0], .io = WEFT_IO_INIT };
    weft_sim_opts o = { .seed = 3 };
    weft_outcome out;
    cr_assert_eq(weft_sim_run(&o, &WEFT_TASK(reader_poll, &r), &out, NULL), 0);
    cr_assert_eq(out.value, 4);
    close(p[0]);
    close(p[1]);
    WEFT_ASSERT_NO_LEAKS();
}
