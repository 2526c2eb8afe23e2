/*
 * runtime/sim_harness.c - weft_harness_run (weft/harness.h): the sweep over
 * every task's suspensions, uniform and PCT seeds, threaded runs, and the
 * minimisation of a failing schedule.
 *
 * Invariants:
 *   1. Every simulated run is named by its weft__hrun (mode, seed, depth,
 *      horizon, k, cancel rate) and nothing else: running the same name
 *      again gives the same schedule, which is what makes the printed replay
 *      command, the recorded trace of a failure and minimisation agree.
 *   2. check runs once per run, after quiescence, before shutdown; setup
 *      before the run, start (if any) on the run's runtime before the root
 *      is spawned, and teardown after shutdown, so a drop hook run at
 *      shutdown still finds the scenario's state.
 *   3. Minimisation only replays scripts (sim_trace.c): a candidate is kept
 *      only if the check still fails on it, so what is printed at the end
 *      is a schedule that fails.
 *   4. A threaded run spawns the scenario's root unchanged under a task of
 *      the harness's, and injects at most one cancellation: an abort
 *      request to whichever task makes the planned suspension (counted over
 *      every task but the harness's), right after that poll, from the
 *      worker that polled it (weft__cancel_plan, via runtime/harness.c).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/sim_harness.h"
#include "runtime/rt.h"
#include "weft/task.h"
#include "weft/time.h"

#define DEF_SEEDS 200
#define DEF_PCT_SEEDS 200
#define DEF_PCT_DEPTH 3
#define DEF_THREADED 20
#define DEF_WORKERS 2
#define DEF_CANCEL_ONE_IN 8
#define DEF_MAX_SWEEP 2000
#define DEF_QUIESCE_STEPS 100000
#define DEF_MINIMISE_RUNS 300
/* Virtual grace at the end of a simulated run (weft_sim_opts). */
#define SHUTDOWN_GRACE_MS 10
/* A threaded run waits for quiescence this many times 1 ms at most. */
#define THREAD_QUIESCE_MS 200
/* A threaded run gives up on its root after this long (real time): a root
 * that deadlocks on real threads must not hang the harness. */
#define ROOT_LIMIT_NS (10ull * 1000000000ull)

static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void weft__harness_defaults(weft__harness *h, const weft_harness_scenario *sc,
                            const weft_harness_opts *opts, weft_harness_report *rep)
{
    static const weft_harness_opts none;
    memset(h, 0, sizeof *h);
    h->sc = sc;
    h->o = opts ? *opts : none;
    weft_harness_opts *o = &h->o;
    o->seeds = o->seeds ? o->seeds : DEF_SEEDS;
    o->pct_seeds = o->pct_seeds ? o->pct_seeds : DEF_PCT_SEEDS;
    o->pct_depth = o->pct_depth ? o->pct_depth : DEF_PCT_DEPTH;
    o->threaded_runs = o->threaded_runs ? o->threaded_runs : DEF_THREADED;
    o->workers = o->workers ? o->workers : DEF_WORKERS;
    o->first_seed = o->first_seed ? o->first_seed : 1;
    o->cancel_one_in = o->cancel_one_in ? o->cancel_one_in : DEF_CANCEL_ONE_IN;
    o->max_sweep = o->max_sweep ? o->max_sweep : DEF_MAX_SWEEP;
    o->quiesce_steps = o->quiesce_steps ? o->quiesce_steps : DEF_QUIESCE_STEPS;
    o->minimise_runs = o->minimise_runs ? o->minimise_runs : DEF_MINIMISE_RUNS;
    o->modes = o->modes ? o->modes : ~0u;
    o->program = o->program ? o->program : "PROGRAM";
    if (o->pct_depth > WEFT_SIM_MAX_PCT_DEPTH)
        o->pct_depth = WEFT_SIM_MAX_PCT_DEPTH;
    h->log = o->log ? o->log : stderr;
    h->rep = rep;
    h->t0 = wall_ns();
}

/* ---- one simulated run --------------------------------------------------- */

static void check_run(weft__harness *h, weft__hrun *r)
{
    r->why[0] = '\0';
    r->failed = h->sc->check(h->sc->arg, &r->info, r->why, sizeof r->why) != 0;
    r->why[sizeof r->why - 1] = '\0';
}

/* Invariant 2: called by the simulator once the run is quiescent. */
static void inspect(void *arg, weft_runtime *rt, int rc, const weft_outcome *out)
{
    void **pair = arg;
    weft__harness *h = pair[0];
    weft__hrun *r = pair[1];
    weft__sim *s = &rt->sim;
    r->info.rc = rc;
    r->info.root = rc == 0 ? *out : (weft_outcome){ 0 };
    r->info.cancels = s->cancels;
    r->info.live_tasks = weft_runtime_live_tasks(rt);
    r->info.rt = rt;
    r->steps = s->steps;
    r->suspensions = s->suspensions;
    r->root_suspensions = s->root_suspensions;
    check_run(h, r);
    r->info.rt = NULL;
    if (r->plan.record) {       /* the trace is ours now */
        r->trace = s->trace;
        r->ntrace = s->ntrace;
        s->trace = NULL;
        s->ntrace = s->trace_cap = 0;
        s->record = false;
    }
}

/* The scenario's start hook, if it has one; a positive result is misuse. */
static int start_hook(const weft_harness_scenario *sc, weft_runtime *rt)
{
    int rc = sc->start ? sc->start(sc->arg, rt) : 0;
    return rc > 0 ? -EINVAL : rc;
}

static int sim_start(void *arg, weft_runtime *rt)
{
    void **pair = arg;
    const weft__harness *h = pair[0];
    return start_hook(h->sc, rt);
}

int weft__harness_sim_one(weft__harness *h, weft__hrun *r)
{
    weft_task_desc root;
    memset(&root, 0, sizeof root);
    int rc = h->sc->setup(h->sc->arg, &root);
    if (rc)
        return rc < 0 ? rc : -EINVAL;
    r->sim.workers = h->o.workers;
    r->sim.seed = r->info.seed;
    r->sim.max_steps = 0;
    /* The check has run by shutdown: a task that ignores it (polled once a
     * virtual microsecond) need not hold the run for a second of polls. */
    r->sim.shutdown_grace_ms = SHUTDOWN_GRACE_MS;
    r->plan.quiesce = true;
    r->plan.quiesce_steps = h->o.quiesce_steps;
    r->failed = false;
    void *pair[2] = { h, r };
    weft_outcome out;
    memset(&out, 0, sizeof out);
    rc = weft__sim_run_plan(&r->sim, &r->plan, &root, &out, sim_start, inspect, pair);
    if (h->sc->teardown)
        h->sc->teardown(h->sc->arg);
    /* The check has seen them: the next run starts from the same numbers. */
    (void)weft__sim_io_close_all();
    return rc == 0 || rc == -EDEADLK || rc == -ELOOP ? 0 : rc;
}

/* ---- failures and the count ---------------------------------------------- */

static void counted(weft__harness *h, const weft__hrun *r)
{
    weft_harness_report *rep = h->rep;
    rep->runs++;
    if (!r->failed)
        return;
    char name[96];
    weft__harness_name(r, name, sizeof name);
    fprintf(h->log, "FAIL %s: %s\n  replay: %s --replay %s\n", name,
            r->why[0] ? r->why : "the check failed", h->o.program, name);
    if (rep->failures++ > 0)
        return;
    rep->first_mode = r->info.mode;
    weft__harness_name(r, rep->first_name, sizeof rep->first_name);
    rep->first_seed = r->info.seed;
    rep->first_depth = r->info.pct_depth;
    rep->first_k = r->info.k;
    rep->runs_to_first = rep->runs;
    rep->seconds_to_first = (double)(wall_ns() - h->t0) / 1e9;
    if (r->info.mode != WEFT_HARNESS_THREADS)
        weft__harness_explain(h, r);
}

static bool stop(const weft__harness *h)
{
    return h->rep->failures > 0 && !h->o.keep_going;
}

static bool mode_on(const weft__harness *h, weft_harness_mode m)
{
    return h->o.modes & (1u << m);
}

/* ---- the modes ----------------------------------------------------------- */

/* The uncancelled run fixes the sweep's length and PCT's horizon. */
static int sweep(weft__harness *h)
{
    weft__hrun base = { .info = { .mode = WEFT_HARNESS_SWEEP, .seed = h->o.first_seed },
                        .plan = { .cancel_any = true } };
    uint64_t made = weft__sim_io_created();
    int rc = weft__harness_sim_one(h, &base);
    if (rc)
        return rc;
    h->sim_io = weft__sim_io_created() != made;
    h->horizon = base.steps ? base.steps : 1;
    h->all_awaits = base.suspensions;
    if (!mode_on(h, WEFT_HARNESS_SWEEP))
        return 0;
    counted(h, &base);
    unsigned n = base.suspensions < h->o.max_sweep ? base.suspensions : h->o.max_sweep;
    for (unsigned k = 1; k <= n && !stop(h); k++) {
        weft__hrun r = base;
        r.info.k = k;
        r.plan.cancel_at = k;
        if ((rc = weft__harness_sim_one(h, &r)) != 0)
            return rc;
        counted(h, &r);
    }
    if (!h->o.quiet && !stop(h))
        fprintf(h->log, "  sweep: %u suspensions of all tasks, each cancelled once\n", n);
    return 0;
}

static void mode_done(const weft__harness *h, const char *what, unsigned n)
{
    if (!h->o.quiet && !stop(h))
        fprintf(h->log, "  %s: %u runs\n", what, n);
}

static int uniform(weft__harness *h)
{
    for (unsigned i = 0; i < h->o.seeds && !stop(h); i++) {
        weft__hrun r = { .info = { .mode = WEFT_HARNESS_UNIFORM, .seed = h->o.first_seed + i } };
        r.cancel_one_in = i % 2 ? h->o.cancel_one_in : 0;
        r.plan.cancel_one_in = r.cancel_one_in;
        int rc = weft__harness_sim_one(h, &r);
        if (rc)
            return rc;
        counted(h, &r);
    }
    mode_done(h, "uniform seeds, half with random cancellations", h->o.seeds);
    return 0;
}

static int pct(weft__harness *h)
{
    for (unsigned d = 1; d <= h->o.pct_depth; d++)
        for (unsigned i = 0; i < h->o.pct_seeds && !stop(h); i++) {
            weft__hrun r = { .info = { .mode = WEFT_HARNESS_PCT, .seed = h->o.first_seed + i,
                                       .pct_depth = d } };
            r.sim.pct_depth = d;
            r.sim.pct_steps = h->horizon;
            int rc = weft__harness_sim_one(h, &r);
            if (rc)
                return rc;
            counted(h, &r);
        }
    mode_done(h, "PCT over tasks, every depth", h->o.pct_depth * h->o.pct_seeds);
    return 0;
}

/* ---- threaded runs ------------------------------------------------------- */

void weft__cancel_plan_suspended(weft__cancel_plan *p, weft__task *t)
{
    if (t == atomic_load_explicit(&p->skip, memory_order_relaxed))
        return;
    uint32_t n = atomic_fetch_add_explicit(&p->suspensions, 1, memory_order_relaxed) + 1;
    if (n != p->at)
        return;
    (void)weft__task_request_cancel(t, WEFT_CANCEL_ABORT);
    atomic_fetch_add_explicit(&p->cancels, 1, memory_order_relaxed);
}

/* The root of a threaded run: spawns the scenario's root, waits for it (for
 * ROOT_LIMIT_NS at most), then for quiescence. It is the plan's `skip`, so
 * its own suspensions are not counted. */
struct driver {
    weft_frame f;
    weft_task_desc root;
    weft__cancel_plan *plan;
    weft_outcome *root_out;         /* read after weft_block_on returned */
    weft_join h;
    weft_join_timeout jt;
    weft_outcome out;
    uint32_t i;
    weft_poll rc;
    weft_sleep sleep;
};

static weft_poll driver_poll(weft_cx *cx, void *p)
{
    struct driver *d = p;
    weft_runtime *rt = weft_cx_runtime(cx);
    WEFT_BEGIN(&d->f);
    atomic_store_explicit(&d->plan->skip, cx->task, memory_order_relaxed);
    d->rc = weft_spawn(rt, &d->root, &d->h);
    if (d->rc < 0)
        WEFT_RETURN(&d->f, d->rc);
    WEFT_AWAIT(&d->f, d->rc, weft_join_await_timeout(cx, &d->jt, &d->h, &d->out, ROOT_LIMIT_NS));
    if (d->rc == -ETIMEDOUT)
        WEFT_RETURN(&d->f, -ETIMEDOUT);     /* reported as run->rc */
    *d->root_out = d->out;
    for (d->i = 0; d->i < THREAD_QUIESCE_MS && weft_runtime_live_tasks(rt) > 1; d->i++)
        WEFT_AWAIT(&d->f, d->rc, weft_sleep_for(cx, &d->sleep, 1000000));
    WEFT_RETURN(&d->f, 0);
    WEFT_END(&d->f);
}

/* One in four runs cancels nothing; the others cancel whichever task makes
 * a seeded one of the suspensions the uncancelled simulated run saw (of all
 * its tasks), on real threads. */
static uint32_t thread_cancel_at(const weft__harness *h, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL;
    if (x >> 62 == 0 || h->all_awaits == 0)
        return 0;
    return 1 + (uint32_t)((x >> 8) % h->all_awaits);
}

static int threaded_run(weft__harness *h, weft__hrun *r, struct driver *d)
{
    weft_runtime *rt;
    weft_runtime_opts ro = { .threads = h->o.workers };
    int rc = weft_runtime_new(&rt, &ro);
    if (rc)
        return rc;
    rt->cancel_plan = d->plan;      /* before the first spawn (sim.h) */
    weft_outcome out, root = { 0 };
    d->root_out = &root;
    rc = start_hook(h->sc, rt);
    if (rc) {
        weft_runtime_free(rt);
        return rc;
    }
    rc = weft_block_on(rt, &WEFT_TASK(driver_poll, d), &out);
    r->info.rc = rc ? rc : (int)out.value;
    r->info.root = root;
    r->info.cancels = atomic_load_explicit(&d->plan->cancels, memory_order_relaxed);
    r->info.live_tasks = weft_runtime_live_tasks(rt);
    r->info.rt = rt;
    check_run(h, r);
    r->info.rt = NULL;
    weft_runtime_free(rt);
    return 0;
}

static int threaded_one(weft__harness *h, weft__hrun *r)
{
    weft__cancel_plan plan = { .at = thread_cancel_at(h, r->info.seed) };
    struct driver d = { .plan = &plan, .h = WEFT_JOIN_INIT, .jt = WEFT_JOIN_TIMEOUT_INIT,
                        .sleep = WEFT_SLEEP_INIT };
    memset(&d.root, 0, sizeof d.root);
    int rc = h->sc->setup(h->sc->arg, &d.root);
    if (rc)
        return rc < 0 ? rc : -EINVAL;
    rc = threaded_run(h, r, &d);
    if (h->sc->teardown)
        h->sc->teardown(h->sc->arg);
    return rc;
}

static int threaded(weft__harness *h)
{
    if (h->sim_io) {
        if (!h->o.quiet)
            fprintf(h->log, "  threaded: skipped, simulated descriptors need the simulator\n");
        return 0;
    }
    for (unsigned i = 0; i < h->o.threaded_runs && !stop(h); i++) {
        weft__hrun r = { .info = { .mode = WEFT_HARNESS_THREADS, .seed = h->o.first_seed + i } };
        int rc = threaded_one(h, &r);
        if (rc)
            return rc;
        counted(h, &r);
    }
    mode_done(h, "threaded, a task cancelled at a seeded await of all tasks",
              h->o.threaded_runs);
    return 0;
}

/* ---- minimisation (invariant 3) ------------------------------------------ */

typedef struct shrink {
    weft__harness *h;
    weft__hrun base;
    weft__sim_decision *script;
    size_t len;
    unsigned budget;
} shrink;

/* Does the scenario still fail under script[0 .. len)? */
static bool still_fails(shrink *m, size_t len)
{
    if (m->budget == 0)
        return false;
    m->budget--;
    weft__hrun r = m->base;
    r.plan.cancel_at = 0;
    r.plan.cancel_one_in = 0;
    r.plan.record = false;
    r.plan.script = m->script;
    r.plan.script_len = len;
    return weft__harness_sim_one(m->h, &r) == 0 && r.failed;
}

static bool is_default(const weft__sim_decision *d)
{
    return d->choice == 0 && !d->jump && !d->cancel;
}

/* Shortest failing prefix (bisection; the rest takes default choices),
 * then each remaining non-default decision made default if the failure
 * stays: cancellations first, then the rest. */
static void shrink_script(shrink *m)
{
    size_t lo = 0, hi = m->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (still_fails(m, mid))
            hi = mid;
        else
            lo = mid + 1;
    }
    m->len = hi;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = m->len; i-- > 0;) {
            weft__sim_decision keep = m->script[i];
            if (is_default(&keep) || (pass == 0 && !keep.cancel))
                continue;
            m->script[i] = (weft__sim_decision){ 0 };
            if (!still_fails(m, m->len))
                m->script[i] = keep;
        }
}

static unsigned count_cancels(const weft__sim_event *ev, size_t n)
{
    unsigned c = 0;
    for (size_t i = 0; i < n; i++)
        c += ev[i].decision && ev[i].d.cancel;
    return c;
}

static unsigned count_choices(const weft__sim_event *ev, size_t n)
{
    unsigned c = 0;
    for (size_t i = 0; i < n; i++)
        c += ev[i].decision && (ev[i].d.choice || ev[i].d.jump);
    return c;
}

static size_t count_steps(const weft__sim_event *ev, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ev[i].decision;
    return c;
}

/* The script of a recorded run: one decision per step. */
static weft__sim_decision *script_of(const weft__sim_event *ev, size_t n, size_t *len)
{
    weft__sim_decision *s = calloc(n ? n : 1, sizeof *s);
    if (!s)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i].decision)
            s[k++] = ev[i].d;
    *len = k;
    return s;
}

/* Record the scripted run again (the minimised one, or the original). */
static void record_final(shrink *m, weft__hrun *out)
{
    *out = m->base;
    out->plan.cancel_at = 0;
    out->plan.cancel_one_in = 0;
    out->plan.record = true;
    out->plan.script = m->script;
    out->plan.script_len = m->len;
    out->trace = NULL;
    if (weft__harness_sim_one(m->h, out) != 0)
        out->ntrace = 0;
}

void weft__harness_explain(weft__harness *h, const weft__hrun *failing)
{
    shrink m = { .h = h, .base = *failing, .budget = h->o.minimise_runs };
    weft__hrun rec = *failing;
    rec.plan.record = true;
    rec.trace = NULL;
    if (weft__harness_sim_one(h, &rec) != 0 || !rec.failed) {
        fprintf(h->log, "  (the run did not fail again when replayed: real I/O or threads?)\n");
        free(rec.trace);
        return;
    }
    h->rep->steps = count_steps(rec.trace, rec.ntrace);
    h->rep->cancels = count_cancels(rec.trace, rec.ntrace);
    h->rep->choices = count_choices(rec.trace, rec.ntrace);
    m.script = script_of(rec.trace, rec.ntrace, &m.len);
    weft__hrun fin = rec;
    if (m.script && still_fails(&m, m.len)) {
        shrink_script(&m);
        record_final(&m, &fin);
    }
    if (fin.trace == NULL || !fin.failed) {     /* keep the unminimised one */
        free(fin.trace);
        fin = rec;
        rec.trace = NULL;
    }
    h->rep->min_steps = count_steps(fin.trace, fin.ntrace);
    h->rep->min_cancels = count_cancels(fin.trace, fin.ntrace);
    h->rep->min_choices = count_choices(fin.trace, fin.ntrace);
    const weft_harness_report *p = h->rep;
    fprintf(h->log, "  schedule, minimised: %zu steps, %u other than the default, %u cancels "
                    "(was %zu, %u, %u); * marks a choice other than the first candidate:\n",
            p->min_steps, p->min_choices, p->min_cancels, p->steps, p->choices, p->cancels);
    weft__harness_print_schedule(h->log, fin.trace, fin.ntrace, false);
    weft__harness_save(h, failing, fin.trace, fin.ntrace);
    if (fin.trace != rec.trace)
        free(fin.trace);
    free(rec.trace);
    free(m.script);
}

/* ---- the entry point ----------------------------------------------------- */

int weft_harness_run(const weft_harness_scenario *sc, const weft_harness_opts *opts,
                     weft_harness_report *report)
{
    if (!sc || !sc->setup || !sc->check)
        return -EINVAL;
    weft_harness_report local;
    weft_harness_report *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    weft__harness h;
    weft__harness_defaults(&h, sc, opts, rep);
    int rc = sweep(&h);
    if (rc == 0 && mode_on(&h, WEFT_HARNESS_UNIFORM) && !stop(&h))
        rc = uniform(&h);
    if (rc == 0 && mode_on(&h, WEFT_HARNESS_PCT) && !stop(&h))
        rc = pct(&h);
    if (rc == 0 && mode_on(&h, WEFT_HARNESS_THREADS) && !stop(&h))
        rc = threaded(&h);
    fprintf(h.log, "weft-harness %s: %u runs, %u failing", sc->name ? sc->name : "scenario",
            rep->runs, rep->failures);
    if (rep->failures)
        fprintf(h.log, "; first after %u runs, %.3f s", rep->runs_to_first,
                rep->seconds_to_first);
    fprintf(h.log, "%s\n", rc ? " (stopped by an error)" : "");
    return rc;
}
