/*
 * tools/weft-stress/sim_scenarios.c - the scenarios of weft-stress
 * --deterministic. Every cancellation comes from a task, nothing starts a
 * thread or does I/O, and roots are waited for with weft_block_on, so on a
 * simulated runtime the seed fixes the whole run, interleaving included.
 *
 *   sim_mix    the abort mix of scenarios_core.c rebuilt for the simulator:
 *              the root and an aborter task (in place of the outside thread)
 *              abort and token-cancel cooperative, cancel-safe, shielded and
 *              sleeping tasks; some naps last up to an hour of virtual time.
 *   sim_sweep  weft_sim_sweep_cancel over a root that persists and then
 *              counts inside a shield (the motivating bug, fixed), joining a
 *              child in between: cancelled at each of its awaits in turn, by
 *              abort (cancel-safe) and by token (cooperative), the ledger
 *              always balances. Its runs make their own simulated runtimes.
 *              Then the same root through weft/harness.h: its sweep also
 *              cancels the child at each of the child's awaits, and a few
 *              uniform (with random cancels) and PCT seeds follow; a failure
 *              names the harness run that replays it.
 *
 * Invariants (sim_mix, every task):
 *   S1. its drop hook ran exactly once;
 *   S2. both halves of a shielded two-step update happened, or neither;
 *   S3. a cancel-safe task completed every step or was torn down; it was
 *       never resumed to see -ECANCELED;
 *   S4. a cooperative task returned by itself, and if it saw -ECANCELED its
 *       outcome names a source and an await site;
 *   S5. a nap yielded 0 only once its virtual deadline had passed.
 */
#include <stdlib.h>

#include <stdio.h>
#include <weft/harness.h>
#include <weft/sim.h>

#include "scen_util.h"
#include "sim_scenarios.h"

#define MAX_TASKS 48
#define HOUR_NS (3600ull * 1000000000ull)

enum kind { COOP, COOP_SHIELDED, SAFE, SAFE_SHIELDED, SLEEPER, SAFE_SLEEPER, KIND_COUNT };

static bool is_safe(int k) { return k == SAFE || k == SAFE_SHIELDED || k == SAFE_SLEEPER; }
static bool is_shielded(int k) { return k == COOP_SHIELDED || k == SAFE_SHIELDED; }
static bool sleeps(int k) { return k == SLEEPER || k == SAFE_SLEEPER; }

struct mix {
    uint64_t seed;
    uint32_t ntasks;
    uint8_t kind[MAX_TASKS];
    uint32_t steps[MAX_TASKS];
    uint32_t first_half[MAX_TASKS], second_half[MAX_TASKS];
    uint32_t drops[MAX_TASKS];
    weft_join handles[MAX_TASKS];
    weft_token *token;
    uint64_t bound;                 /* bit i: child i is bound to token */
};

/* ---- sim_mix: the tasks ------------------------------------------------------ */

struct child {
    weft_frame f;
    struct mix *m;
    uint32_t id, i;
    uint64_t rng, nap, start;
    weft_poll rc;
    weft_sleep sleep;
};

static void child_drop(void *p)
{
    struct child *c = p;
    c->m->drops[c->id]++;
}

/* Mostly short naps; one in eight up to an hour, which costs nothing here. */
static uint64_t pick_nap(uint64_t *rng)
{
    if (stress_below(rng, 8) == 0)
        return stress_rng(rng) % HOUR_NS;
    return stress_below(rng, 3000000);
}

static weft_poll child_poll(weft_cx *cx, void *p)
{
    struct child *c = p;
    struct mix *m = c->m;
    int kind = m->kind[c->id];
    WEFT_BEGIN(&c->f);
    for (c->i = 0; c->i < m->steps[c->id]; c->i++) {
        if (is_shielded(kind) && c->i % 2 == 0) {
            weft_shield_enter(cx);
            m->first_half[c->id]++;
            WEFT_YIELD(&c->f, c->rc);
            if (c->rc < 0)
                WEFT_RETURN(&c->f, -4);   /* a shield let a request through */
            m->second_half[c->id]++;
            weft_shield_exit(cx);
        }
        if (sleeps(kind)) {
            c->nap = pick_nap(&c->rng);
            c->start = weft_now_ns();
            WEFT_AWAIT(&c->f, c->rc, weft_sleep_for(cx, &c->sleep, c->nap));
            if (c->rc == 0 && weft_now_ns() - c->start < c->nap)
                WEFT_RETURN(&c->f, -6);   /* S5: woke early */
        } else {
            WEFT_YIELD(&c->f, c->rc);
        }
        if (c->rc == -ECANCELED) {
            stress_count(&stress_totals.at_yield, 1);
            WEFT_RETURN(&c->f, is_safe(kind) ? -5 : 1);
        }
    }
    WEFT_RETURN(&c->f, 0);
    WEFT_END(&c->f);
}

static int spawn_child(weft_runtime *rt, struct mix *m, uint32_t id, uint64_t rng)
{
    struct child c = { .m = m, .id = id, .rng = rng, .sleep = WEFT_SLEEP_INIT };
    weft_task_desc d = { .poll = child_poll, .frame = &c, .frame_size = sizeof c,
                         .drop = child_drop, .name = "sim-child" };
    if (is_safe(m->kind[id]))
        d.flags = WEFT_TASK_CANCEL_SAFE;
    if (m->bound >> id & 1) {
        d.tokens = &m->token;
        d.ntokens = 1;
    }
    return weft_spawn(rt, &d, &m->handles[id]);
}

/* In place of the outside thread of abort_mix: aborts between yields and
 * naps, from a task, so that the simulator orders it. */
struct aborter {
    weft_frame f;
    struct mix *m;
    uint64_t rng;
    uint32_t left;
    uint64_t nap_ns;        /* drawn before the await (weft/task.h, rule 4) */
    bool naps;
    weft_poll rc;
    weft_sleep nap;
};

static weft_poll aborter_poll(weft_cx *cx, void *p)
{
    struct aborter *a = p;
    struct mix *m = a->m;
    WEFT_BEGIN(&a->f);
    for (a->left = stress_below(&a->rng, m->ntasks + 1); a->left > 0; a->left--) {
        weft_abort(&m->handles[stress_below(&a->rng, m->ntasks)]);
        a->naps = stress_below(&a->rng, 3) == 0;
        a->nap_ns = a->naps ? stress_below(&a->rng, 5000000) : 0;
        if (a->naps)
            WEFT_AWAIT(&a->f, a->rc, weft_sleep_for(cx, &a->nap, a->nap_ns));
        else
            WEFT_YIELD(&a->f, a->rc);
    }
    WEFT_RETURN(&a->f, 0);
    WEFT_END(&a->f);
}

/* ---- sim_mix: checking an outcome ------------------------------------------ */

static void check_outcome(struct mix *m, uint32_t id, int rc, const weft_outcome *o)
{
    int kind = m->kind[id];
    if (m->drops[id] != 1)
        stress_violation("sim_mix", m->seed, "task %u: drop hook ran %u times", id, m->drops[id]);
    if (m->first_half[id] != m->second_half[id])
        stress_violation("sim_mix", m->seed, "task %u: shielded two-step torn (%u vs %u)", id,
                         m->first_half[id], m->second_half[id]);
    scen_count_cancel(o);
    bool cancelled = o->cancel.source != WEFT_CANCEL_NONE;
    if (is_safe(kind)) {
        if (rc == -ECANCELED)
            stress_count(&stress_totals.torn_down, 1);
        if ((rc == -ECANCELED && !cancelled) || (rc == 0 && o->value != 0))
            stress_violation("sim_mix", m->seed, "cancel-safe task %u: status %d value %lld", id,
                             rc, (long long)o->value);
        return;
    }
    if (rc != 0 || o->value < 0 || (o->value == 1 && (!cancelled || !o->cancel.delivered_at)))
        stress_violation("sim_mix", m->seed, "cooperative task %u (kind %d): status %d value %lld "
                         "source %s", id, kind, rc, (long long)o->value,
                         weft_cancel_source_name(o->cancel.source));
}

/* ---- sim_mix: the root --------------------------------------------------------- */

struct mix_root {
    weft_frame f;
    struct mix *m;
    uint64_t rng;
    uint32_t i;
    weft_poll rc;
    weft_join aborter;
    weft_outcome out;
};

static weft_poll mix_root_poll(weft_cx *cx, void *p)
{
    struct mix_root *r = p;
    struct mix *m = r->m;
    WEFT_BEGIN(&r->f);
    for (r->i = 0; r->i < m->ntasks; r->i++)
        if (spawn_child(weft_cx_runtime(cx), m, r->i, stress_rng(&r->rng)) < 0)
            WEFT_RETURN(&r->f, -1);
    {
        struct aborter a = { .m = m, .rng = stress_rng(&r->rng), .nap = WEFT_SLEEP_INIT };
        if (weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(aborter_poll, &a), &r->aborter) < 0)
            WEFT_RETURN(&r->f, -1);
    }
    for (r->i = 0; r->i < 2 * m->ntasks; r->i++) {
        if (stress_below(&r->rng, 3) == 0)
            weft_abort(&m->handles[stress_below(&r->rng, m->ntasks)]);
        if (stress_below(&r->rng, 2 * m->ntasks) == 0)
            weft_token_cancel(m->token);
        WEFT_YIELD(&r->f, r->rc);
    }
    /* Handles are joined only once the aborter can no longer use them. */
    WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &r->aborter, &r->out));
    for (r->i = 0; r->i < m->ntasks; r->i++) {
        WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &m->handles[r->i], &r->out));
        check_outcome(m, r->i, (int)r->rc, &r->out);
    }
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

struct mix_inst {
    struct mix m;
    struct mix_root root;
};

static void *mix_make(uint64_t seed, unsigned threads)
{
    (void)threads;
    struct mix_inst *x = scen_zalloc(sizeof *x);
    struct mix *m = &x->m;
    if (weft_token_new(&m->token) < 0)
        abort();
    uint64_t rng = seed;
    m->seed = seed;
    m->ntasks = 1 + stress_below(&rng, MAX_TASKS);
    for (uint32_t i = 0; i < m->ntasks; i++) {
        m->kind[i] = (uint8_t)stress_below(&rng, KIND_COUNT);
        m->steps[i] = stress_below(&rng, 30);
    }
    m->bound = stress_rng(&rng);
    x->root = (struct mix_root){ .m = m, .rng = stress_rng(&rng) };
    return x;
}

/* The root spawns, aborts and joins: shielded, so that only its children
 * are cancelled by weft-stress --harness. */
static weft_task_desc mix_root(void *st)
{
    struct mix_inst *x = st;
    weft_task_desc d = WEFT_TASK(mix_root_poll, &x->root);
    d.flags = WEFT_TASK_SHIELDED;
    d.name = "sim-mix-root";
    return d;
}

/* The root checked every task as it joined it. */
static void mix_check(void *st, int rc, const weft_outcome *out, unsigned injected)
{
    (void)injected;
    struct mix_inst *x = st;
    stress_count(&stress_totals.tasks, x->m.ntasks);
    if (rc == 0 && (out->status != 0 || out->value != 0))
        stress_violation("sim_mix", x->m.seed, "root: status %d value %lld", out->status,
                         (long long)out->value);
}

static void mix_destroy(void *st)
{
    struct mix_inst *x = st;
    weft_token_release(x->m.token);
    free(x);
}

/* Its naps last up to an hour: virtual time only. */
static const stress_parts mix_parts = { mix_make, NULL, mix_root, mix_check, mix_destroy,
                                        STRESS_SIM_MODES };

static void run_sim_mix(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    scen_run_parts(&mix_parts, "sim_mix", rt, seed, threads);
}

/* ---- sim_sweep ---------------------------------------------------------------------- */

struct book {
    uint32_t persisted, counted;
};

struct step_child {
    weft_frame f;
    uint32_t left;
    weft_poll rc;
};

static weft_poll step_child_poll(weft_cx *cx, void *p)
{
    struct step_child *c = p;
    WEFT_BEGIN(&c->f);
    for (; c->left > 0; c->left--)
        WEFT_YIELD(&c->f, c->rc);
    WEFT_RETURN(&c->f, 0);
    WEFT_END(&c->f);
}

/* Persist, then count: the two halves sit in one shield, so a cancellation
 * lands only on the nap before them or on the await after the shield. */
struct persist {
    weft_frame f;
    struct book *b;
    uint64_t rng, nap_ns;
    uint32_t i, n;
    weft_poll rc;
    weft_sleep nap;
    weft_join child;
    weft_outcome out;
};

static weft_poll persist_poll(weft_cx *cx, void *p)
{
    struct persist *s = p;
    WEFT_BEGIN(&s->f);
    for (s->i = 0; s->i < s->n; s->i++) {
        s->nap_ns = stress_below(&s->rng, 2000000);     /* not in the operand: rule 4 */
        WEFT_AWAIT(&s->f, s->rc, weft_sleep_for(cx, &s->nap, s->nap_ns));
        if (s->rc < 0)
            WEFT_RETURN(&s->f, s->rc);
        weft_shield_enter(cx);
        s->b->persisted++;
        {
            struct step_child c = { .left = stress_below(&s->rng, 4) };
            if (weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(step_child_poll, &c), &s->child) < 0)
                WEFT_RETURN(&s->f, -1);
        }
        WEFT_AWAIT(&s->f, s->rc, weft_join_await(cx, &s->child, &s->out));
        WEFT_YIELD(&s->f, s->rc);
        s->b->counted++;
        weft_shield_exit(cx);
    }
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

struct sweep_ctx {
    struct book book;
    uint64_t seed;
    unsigned flags;
    struct persist frame;           /* the harness's root, set up per run */
};

static void reset_book(void *arg)
{
    struct sweep_ctx *x = arg;
    x->book = (struct book){ 0, 0 };
}

static int book_balanced(void *arg, unsigned k, bool cancelled, int rc, const weft_outcome *out)
{
    struct sweep_ctx *x = arg;
    bool torn_down = out->status == -ECANCELED;
    if (rc == 0 && x->book.persisted == x->book.counted && (cancelled || !torn_down)
        && (!torn_down || (x->flags & WEFT_TASK_CANCEL_SAFE)))
        return 0;
    stress_violation("sim_sweep", x->seed, "cancelled at await %u: rc %d status %d, persisted %u "
                     "counted %u", k, rc, out->status, x->book.persisted, x->book.counted);
    return 1;
}

static void sweep_once(uint64_t seed, unsigned threads, weft_sim_cancel how, unsigned flags)
{
    struct sweep_ctx x = { .seed = seed, .flags = flags };
    weft_sim_sweep sw = {
        .sim = { .seed = seed, .workers = threads, .pct_depth = stress_sim_pct },
        .how = how, .check = book_balanced, .reset = reset_book, .arg = &x, .max_k = 400,
    };
    uint64_t rng = seed;
    struct persist s = { .b = &x.book, .rng = stress_rng(&rng), .n = 1 + stress_below(&rng, 6),
                         .nap = WEFT_SLEEP_INIT };
    weft_task_desc d = { .poll = persist_poll, .frame = &s, .frame_size = sizeof s,
                         .flags = flags, .name = "sim-persist" };
    weft_sim_sweep_result res;
    int rc = weft_sim_sweep_cancel(&sw, &d, &res);
    if (rc < 0)
        stress_violation("sim_sweep", seed, "sweep: %s", weft_strerror(rc));
    stress_count(&stress_totals.tasks, res.runs);
    stress_count(&stress_totals.by_source[how == WEFT_SIM_CANCEL_TOKEN ? WEFT_CANCEL_TOKEN
                                                                       : WEFT_CANCEL_ABORT],
                 res.runs > 0 ? res.runs - 1 : 0);
}

/* The same root as sweep_once's, from the same seed, each harness run. */
static int harness_setup(void *arg, weft_task_desc *root)
{
    struct sweep_ctx *x = arg;
    uint64_t rng = x->seed;
    x->book = (struct book){ 0, 0 };
    x->frame = (struct persist){ .b = &x->book, .rng = stress_rng(&rng),
                                 .n = 1 + stress_below(&rng, 6), .nap = WEFT_SLEEP_INIT };
    *root = (weft_task_desc){ .poll = persist_poll, .frame = &x->frame,
                              .frame_size = sizeof x->frame, .flags = WEFT_TASK_CANCEL_SAFE,
                              .name = "sim-persist" };
    return 0;
}

static int harness_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    struct sweep_ctx *x = arg;
    if (run->rc == 0 && x->book.persisted == x->book.counted && run->live_tasks == 0)
        return 0;
    snprintf(why, n, "rc %d, persisted %u counted %u, %zu tasks left", run->rc,
             x->book.persisted, x->book.counted, run->live_tasks);
    return 1;
}

static void harness_once(uint64_t seed, unsigned threads)
{
    struct sweep_ctx x = { .seed = seed, .flags = WEFT_TASK_CANCEL_SAFE };
    weft_harness_scenario sc = { "sim_sweep", harness_setup, harness_check, NULL, &x };
    FILE *log = fopen("/dev/null", "w");
    weft_harness_opts o = {
        .seeds = 6, .pct_seeds = 3, .pct_depth = stress_sim_pct ? stress_sim_pct : 2,
        .workers = threads, .first_seed = seed, .max_sweep = 400, .quiet = true, .log = log,
        .modes = 1u << WEFT_HARNESS_SWEEP | 1u << WEFT_HARNESS_UNIFORM | 1u << WEFT_HARNESS_PCT,
        .program = "harness",
    };
    weft_harness_report rep;
    int rc = log ? weft_harness_run(&sc, &o, &rep) : -errno;
    if (log)
        fclose(log);
    if (rc < 0)
        stress_violation("sim_sweep", seed, "harness: %s", weft_strerror(rc));
    else if (rep.failures)
        stress_violation("sim_sweep", seed, "harness: %u failing runs, the first after %u runs "
                         "(mode %d, seed %llu, k %u)", rep.failures, rep.runs_to_first,
                         (int)rep.first_mode, (unsigned long long)rep.first_seed, rep.first_k);
    else
        stress_count(&stress_totals.tasks, rep.runs);
}

static void run_sim_sweep(weft_runtime *unused, uint64_t seed, unsigned threads)
{
    (void)unused;
    sweep_once(seed, threads, WEFT_SIM_CANCEL_ABORT, WEFT_TASK_CANCEL_SAFE);
    sweep_once(seed, threads, WEFT_SIM_CANCEL_TOKEN, 0);
    harness_once(seed, threads);
}

const stress_scenario stress_sim_scenarios[] = {
    { "sim_mix", "abort_mix on the simulator: aborts and token cancels from tasks only; "
                 "yields, hour-long naps, shields, tear-down", run_sim_mix, true, &mix_parts },
    { "sim_sweep", "cancel a shielded persist-then-count root at each of its awaits in turn, "
                   "by abort and by token, then every task's awaits and a few seeds through "
                   "weft/harness.h (own runtimes per run)", run_sim_sweep, true },
};
const unsigned stress_sim_scenario_count =
    sizeof stress_sim_scenarios / sizeof stress_sim_scenarios[0];
