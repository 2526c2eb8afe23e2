/*
 * runtime/sim.c - the deterministic simulator (weft/sim.h): the loop that
 * steps simulated workers on the caller's thread, virtual time, the schedule
 * hash, injected cancellations, and the cancel-at-each-await sweep. PCT's
 * pool and priorities are in sim_pct.c, the decision list in sim_trace.c.
 *
 * Invariants:
 *   1. Every choice comes from sim.rng (or a worker's rng, seeded from it) or
 *      from state those choices built; nothing reads the real clock, a
 *      pointer value or another thread. So the same seed, options and program
 *      give the same steps.
 *   2. A step is one poll (or one failed search) by one worker, chosen among
 *      the workers that have something to do, through the worker's own
 *      choice functions (worker.h); weft__current_worker is that worker for
 *      the duration of the step and NULL between steps, so a wake made from
 *      outside a step (the sweep's cancel) goes to the inject queue. A step
 *      may instead complete one ready operation on a simulated descriptor
 *      (sim_io.c), a candidate after the workers; real I/O is reaped only
 *      when no step is possible.
 *   3. Virtual time moves only between steps, forward, to a wheel deadline
 *      or a cascade point before one (a far timer takes several jumps):
 *      when no worker can step, or by a seeded choice (1 in TIMER_EARLY) when
 *      some timer is armed. It never passes sim.limit (the end of the grace
 *      period at shutdown, which also ends after grace_ms * 1000 polls).
 *   4. The hash absorbs every decision: the worker of each step, what it
 *      polled (task size, name, resume point: stable across processes), and
 *      each new virtual time.
 *   5. A suspension is a poll after which the task is not complete; the
 *      simulator holds a reference across the poll to tell. Cancellations
 *      it injects (the sweep's k-th suspension, weft/harness.h's random
 *      ones, a script's) are requested between steps, right after such a
 *      poll, so they reach the task through the inject queue like any
 *      request from outside. Under a script (sim_trace.c) only the script
 *      decides, so a recorded run replays without the plan that made it.
 *   6. With `quiesce`, the root finishing does not end the run: it goes on
 *      until nothing can happen, so detached tasks finish before anyone
 *      checks. A pool that PCT filled is emptied back into the queues
 *      whenever simulate returns (sim_pct.c, invariant 1).
 */
#include "runtime/sim.h"

#include <errno.h>
#include <string.h>

#include "reactor/op.h"
#include "reactor/driver.h"
#include "runtime/harness.h"
#include "runtime/rt.h"
#include "runtime/task.h"

#define DEFAULT_WORKERS 2
#define DEFAULT_START_NS 1000000000ull
#define DEFAULT_MAX_STEPS 10000000ull
#define DEFAULT_PCT_STEPS 4096
#define DEFAULT_GRACE_MS 1000
#define DEFAULT_MAX_K 10000
/* With work waiting and a timer armed, time jumps ahead 1 step in this many. */
#define TIMER_EARLY 16
/* Real time an I/O operation gets before virtual time moves past it. */
#define IO_WAIT_NS 10000000
#define TAG_TIME 0x7431u

/* ---- seeded choices and the hash ----------------------------------------- */

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint32_t below(weft__sim *s, uint32_t n)
{
    return (uint32_t)(weft__sim_next(s) % n);
}

static void absorb(weft__sim *s, uint64_t v)
{
    uint64_t h = s->hash ^ v;
    s->hash = splitmix(&h);
}

static uint64_t name_hash(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL;     /* FNV-1a */
    for (; name && *name; name++)
        h = (h ^ (unsigned char)*name) * 0x100000001b3ULL;
    return h;
}

/* Invariant 4: what identifies a task across processes. */
static void absorb_task(weft__sim *s, weft__task *t)
{
    const weft_frame *f = weft__task_frame(t);
    uint64_t shape = weft__task_layout(t) | t->nbindings;
    absorb(s, (shape << 32) | f->weft_resume);
    absorb(s, name_hash(weft__task_name(t)));
}

/* ---- setting up ---------------------------------------------------------- */

/* PCT over tasks (sim_pct.c): the clock's priority, and the d - 1 steps
 * (distinct, in 1 .. horizon, sorted) at which the task that ran drops
 * below every other. Task priorities are drawn as tasks arrive. */
static void pct_init(weft__sim *s, uint64_t horizon)
{
    s->clock_prio = (uint64_t)WEFT_SIM_MAX_PCT_DEPTH + 1 + (weft__sim_next(s) >> 2);
    uint32_t n = s->pct_depth - 1;
    for (uint32_t c = 0; c < n; c++) {
        uint64_t at;
        bool dup;
        uint32_t tries = 0;
        do {        /* distinct while the horizon has room */
            at = 1 + weft__sim_next(s) % horizon;
            dup = false;
            for (uint32_t k = 0; k < c; k++)
                dup |= s->change_at[k] == at;
        } while (dup && ++tries < 64);
        s->change_at[c] = at;
    }
    for (uint32_t i = 1; i < n; i++)        /* insertion sort: n < 64 */
        for (uint32_t j = i; j > 0 && s->change_at[j - 1] > s->change_at[j]; j--) {
            uint64_t tmp = s->change_at[j];
            s->change_at[j] = s->change_at[j - 1];
            s->change_at[j - 1] = tmp;
        }
}

static void sim_init(weft__sim *s, weft_runtime *rt, const weft_sim_opts *o)
{
    s->on = true;
    /* The depth is part of the seed: depth 2 and depth 3 of one seed are
     * different schedules, not one schedule with an extra change point. */
    s->rng = o->seed ^ ((uint64_t)o->pct_depth * 0xD1B54A32D192ED03ULL);
    uint64_t salt = s->rng;
    s->io_salt = splitmix(&salt);   /* sim_io.c, invariant 3: not from rng */
    s->now = o->start_ns ? o->start_ns : DEFAULT_START_NS;
    s->hash = name_hash("weft-sim");
    s->max_steps = o->max_steps ? o->max_steps : DEFAULT_MAX_STEPS;
    s->limit = UINT64_MAX;
    s->grace_ms = o->shutdown_grace_ms ? o->shutdown_grace_ms : DEFAULT_GRACE_MS;
    s->pct_depth = o->pct_depth;
    if (s->pct_depth)
        pct_init(s, o->pct_steps ? o->pct_steps : DEFAULT_PCT_STEPS);
    for (uint32_t i = 0; i < rt->nworkers; i++)
        rt->workers[i].rng = weft__sim_next(s) | 1;    /* xorshift needs nonzero */
}

int weft_sim_runtime_new(weft_runtime **out, const weft_sim_opts *opts)
{
    if (!out || !opts || opts->pct_depth > WEFT_SIM_MAX_PCT_DEPTH)
        return -EINVAL;
    weft_runtime_opts ro = { .threads = opts->workers ? opts->workers : DEFAULT_WORKERS };
    weft_runtime *rt;
    int rc = weft__runtime_new_unstarted(&rt, &ro);
    if (rc)
        return rc;
    sim_init(&rt->sim, rt, opts);
    for (uint32_t i = 0; i < rt->nworkers && rc == 0; i++)
        rc = weft__worker_sim_attach(&rt->workers[i], &rt->sim.now);
    if (rc) {
        weft_runtime_free(rt);  /* a simulated shutdown: detaches what attached */
        return rc;
    }
    *out = rt;
    return 0;
}

/* ---- one step ------------------------------------------------------------ */

static bool root_finished(const weft__sim *s)
{
    return !s->root || weft_join_is_finished(s->root);
}

/* Cancel t, which has just suspended: the root by the sweep's token when it
 * has one, anything else by an abort request (source WEFT_CANCEL_ABORT). */
static void cancel_task(weft__sim *s, weft__task *t)
{
    s->cancel_issued = true;
    s->cancels++;
    if (t == s->root_task && s->cancel_token)
        weft_token_cancel(s->cancel_token);
    else if (t == s->root_task && s->root)
        weft_abort(s->root);
    else
        (void)weft__task_request_cancel(t, WEFT_CANCEL_ABORT);
}

/* Unscripted: the sweep's k-th suspension (the root's, or with cancel_any
 * anybody's), or a 1 in cancel_one_in chance. */
static bool plan_cancel(weft__sim *s, weft__task *t)
{
    if (s->cancel_at && !s->cancel_issued) {
        uint32_t n = s->cancel_any ? s->suspensions
                                   : t == s->root_task ? s->root_suspensions : 0;
        if (n == s->cancel_at)
            return true;
    }
    return s->cancel_one_in && below(s, s->cancel_one_in) == 0;
}

static uint32_t resume_line(weft__task *t)
{
    return ((const weft_frame *)weft__task_frame(t))->weft_resume;
}

static void name_event(weft__sim_event *e, weft__task *t)
{
    const char *n = weft__task_name(t);
    size_t i = 0;
    for (; n && n[i] && i + 1 < sizeof e->name; i++)
        e->name[i] = n[i];
    e->name[i] = '\0';
}

/* After t's poll (we hold a reference, so it is still there to look at):
 * count a suspension, maybe cancel, tell PCT. */
static void polled(weft_runtime *rt, weft__task *t, weft__sim_decision *d, weft__sim_event *e)
{
    weft__sim *s = &rt->sim;
    uint64_t st = atomic_load_explicit(&t->state, memory_order_acquire);
    e->finished = st & WEFT__COMPLETE;
    if (!e->finished) {
        e->to_line = resume_line(t);
        s->suspensions++;
        if (t == s->root_task)
            s->root_suspensions++;
        bool cancel = s->script ? d->cancel : plan_cancel(s, t);
        if (cancel)
            cancel_task(s, t);
        d->cancel = e->cancelled = cancel;
    }
    if (s->pct_depth)
        weft__sim_pct_ran(rt, t, e->finished);
}

/* One poll by worker i: of t when PCT chose it, else of what i picks. */
static void step(weft_runtime *rt, uint32_t i, weft__task *t, weft__sim_decision *d)
{
    weft__sim *s = &rt->sim;
    weft_worker *w = &rt->workers[i];
    weft__sim_event e = { .step = s->steps, .worker = i, .decision = true };
    weft__current_worker = w;
    if (!t)
        t = weft__worker_sim_pick(w);
    absorb(s, i);
    if (t) {
        absorb_task(s, t);
        e.polled = true;
        e.from_line = resume_line(t);
        name_event(&e, t);
        weft__state_ref_inc(&t->state);     /* to look at it after the poll */
        weft__harness_poll(w, t);
    }
    weft__current_worker = NULL;
    s->steps++;
    if (t) {
        polled(rt, t, d, &e);       /* a cancel made here goes to inject */
        weft__current_worker = w;   /* a last reference dropped as w would */
        weft__task_unref(t);
        weft__current_worker = NULL;
    }
    e.now = s->now;
    e.d = *d;
    weft__sim_trace_add(s, &e);
}

/* Uniform: among the ready workers, then the ready simulated operations
 * (reservoir sampling), or the script's candidate (the first when it names
 * none). Returns a worker, IO_PICK for an operation (*nth: its rank among
 * the ready ones) or -1; *idx: the choice. */
#define IO_PICK INT32_MAX
static int choose(weft_runtime *rt, const weft__sim_decision *script, uint32_t *idx,
                  uint32_t *nth)
{
    weft__sim *s = &rt->sim;
    uint32_t nready = 0, nio = s->nio ? weft__sim_io_nready(rt) : 0;
    int pick = -1, first = -1;
    for (uint32_t c = 0; c < rt->nworkers + nio; c++) {
        bool io = c >= rt->nworkers;
        if (!io && !weft__worker_sim_ready(&rt->workers[c]))
            continue;
        int cand = io ? IO_PICK : (int)c;
        if (first < 0)
            first = cand;       /* an operation first: the first ready, nth 0 */
        bool take = script ? nready == script->choice : below(s, nready + 1) == 0;
        if (take) {
            pick = cand;
            *idx = nready;
            *nth = io ? c - rt->nworkers : 0;
        }
        nready++;
    }
    if (pick < 0 && first >= 0) {
        pick = first;
        *idx = 0;
    }
    return pick;
}

/* A step that completes a simulated operation (sim_io.c): a decision, in
 * the hash by its name and result. */
static void io_step(weft_runtime *rt, uint32_t nth, const weft__sim_decision *d)
{
    weft__sim *s = &rt->sim;
    weft__sim_event e = { .step = s->steps, .decision = true, .d = *d };
    int32_t res = weft__sim_io_run(rt, nth, &e);
    absorb(s, name_hash(e.name) ^ (uint64_t)(uint32_t)res);
    s->steps++;
    e.now = s->now;
    weft__sim_trace_add(s, &e);
}

/* ---- time and I/O -------------------------------------------------------- */

/* Where time moves next: a deadline, or a cascade point on the way to a
 * far one (reactor/wheel.h, weft__wheel_next_change). */
static uint64_t next_deadline(weft_runtime *rt)
{
    uint64_t next = UINT64_MAX;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        uint64_t d = weft__driver_next_deadline(&rt->workers[i].driver);
        next = d < next ? d : next;
    }
    return next;
}

/* Invariant 3: move to the next deadline and fire what is due, wheel by
 * wheel in worker order. False when there is none within the limit. */
static bool advance_time(weft_runtime *rt)
{
    weft__sim *s = &rt->sim;
    uint64_t next = next_deadline(rt);
    if (next == UINT64_MAX || next > s->limit)
        return false;
    if (next > s->now)
        s->now = next;
    absorb(s, ((uint64_t)TAG_TIME << 48) ^ s->now);
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft__current_worker = &rt->workers[i];
        weft__driver_tick(&rt->workers[i].driver, WEFT__TICK_FULL);
    }
    weft__current_worker = NULL;
    return true;
}

/* Time moved because nothing could run: not a decision, but the reader of
 * a schedule wants to see it. */
static bool time_passes(weft_runtime *rt)
{
    if (!advance_time(rt))
        return false;
    weft__sim_event e = { .step = rt->sim.steps, .now = rt->sim.now, .worker = UINT32_MAX };
    weft__sim_trace_add(&rt->sim, &e);
    return true;
}

static bool always(void *arg)
{
    (void)arg;
    return true;
}

/* Not deterministic (weft/sim.h): submit what the workers queued, give the
 * kernel up to IO_WAIT_NS on the first ring with operations in flight, and
 * reap every ring. False when no operation is in flight. */
static bool wait_io(weft_runtime *rt)
{
    bool waited = false;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft_worker *w = &rt->workers[i];
        if (w->driver.ops.live == weft__sim_io_live(rt, i))
            continue;       /* none in the kernel: the simulator has them */
        weft__current_worker = w;
        if (!waited)
            weft__driver_park(&w->driver, IO_WAIT_NS, always, NULL);  /* submits too */
        weft__driver_tick(&w->driver, WEFT__TICK_FULL);
        waited = true;
    }
    weft__current_worker = NULL;
    return waited;
}

static bool any_ready(weft_runtime *rt)
{
    for (uint32_t i = 0; i < rt->nworkers; i++)
        if (weft__worker_sim_ready(&rt->workers[i]))
            return true;
    return false;
}

/* Nobody can step: let I/O in, else move time. False when nothing can
 * ever happen again. */
static bool unblock(weft_runtime *rt)
{
    bool io = wait_io(rt);
    return any_ready(rt) || time_passes(rt) || io;
}

/* Uniform: 1 when a worker stepped, 0 when none could. */
static int uniform_step(weft_runtime *rt)
{
    weft__sim *s = &rt->sim;
    weft__sim_decision d = { 0 };
    bool scripted = weft__sim_scripted(s, &d);
    uint32_t idx = 0, nth = 0;
    int i = choose(rt, scripted ? &d : NULL, &idx, &nth);
    if (i < 0)
        return 0;
    bool armed = next_deadline(rt) != UINT64_MAX;
    bool jump = scripted ? d.jump : below(s, TIMER_EARLY) == 0;
    d = (weft__sim_decision){ .choice = idx, .jump = jump && armed, .cancel = d.cancel };
    if (d.jump)
        advance_time(rt);
    if (i == IO_PICK)
        io_step(rt, nth, &d);      /* still ready: a jump only adds withdrawals */
    else
        step(rt, (uint32_t)i, NULL, &d);
    return 1;
}

/* PCT (sim_pct.c): the pooled task of highest priority, or the clock. */
static int pct_step(weft_runtime *rt)
{
    weft__sim *s = &rt->sim;
    weft__sim_pct_collect(rt);
    if (s->error)
        return s->error;
    weft__sim_decision d = { 0 };
    (void)weft__sim_scripted(s, &d);
    bool clock;
    int32_t io = -1;
    int idx = weft__sim_pct_choose(rt, &clock, &io);
    if (idx < 0)
        return 0;
    d.choice = (uint32_t)idx;
    if (io >= 0) {
        io_step(rt, (uint32_t)io, &(weft__sim_decision){ .choice = d.choice });
        weft__sim_pct_io_ran(rt);
        return 1;
    }
    if (clock) {
        advance_time(rt);
        weft__sim_event e = { .step = s->steps, .now = s->now, .worker = UINT32_MAX,
                              .d = { .choice = d.choice }, .decision = true };
        s->steps++;
        weft__sim_pct_clock_ran(rt);
        weft__sim_trace_add(s, &e);
        return 1;
    }
    uint32_t wi;
    weft__task *t = weft__sim_pct_take(rt, (uint32_t)idx, &wi);
    step(rt, wi, t, &d);
    return 1;
}

/* Simulate until the root finishes (with a root; with quiesce, until
 * nothing more can happen after it) or nothing can happen. */
static int simulate_loop(weft_runtime *rt)
{
    weft__sim *s = &rt->sim;
    for (;;) {
        if (s->root && root_finished(s) && !s->quiesce_armed) {
            if (!s->quiesce)
                return 0;
            s->quiesce_armed = true;    /* invariant 6: a budget for the rest */
            if (s->quiesce_steps && s->steps + s->quiesce_steps < s->max_steps)
                s->max_steps = s->steps + s->quiesce_steps;
        }
        if (s->steps >= s->max_steps)
            return -ELOOP;
        int rc = s->pct_depth ? pct_step(rt) : uniform_step(rt);
        if (rc < 0)
            return rc;
        if (rc == 0 && !unblock(rt))
            return s->root && !root_finished(s) ? -EDEADLK : 0;
    }
}

static int simulate(weft_runtime *rt)
{
    int rc = simulate_loop(rt);
    weft__sim_pct_requeue(rt);      /* sim_pct.c, invariant 1 */
    return rc;
}

/* ---- the runtime's hooks ------------------------------------------------- */

int weft__sim_block_on(weft_runtime *rt, const weft_task_desc *desc, weft_outcome *out)
{
    weft__sim *s = &rt->sim;
    weft_join h = WEFT_JOIN_INIT;
    int rc = weft_spawn(rt, desc, &h);
    if (rc)
        return rc;
    s->root = &h;
    s->root_task = h.weft_task;
    s->root_suspensions = 0;
    s->cancel_issued = false;
    s->quiesce_armed = false;
    rc = simulate(rt);
    if (rc == -ELOOP && s->quiesce && root_finished(s)) {
        s->quiesce_cut = true;      /* the root is done; its leftovers are not */
        rc = 0;
    }
    s->root = NULL;
    s->root_task = NULL;
    if (rc == 0)
        return weft_join_wait(&h, out);     /* finished: does not block */
    weft_detach(&h);    /* shutdown tears it down */
    return rc;
}

void weft__sim_close(weft_runtime *rt)
{
    weft__sim *s = &rt->sim;
    atomic_store_explicit(&rt->closing_ns, weft__monotonic_ns(), memory_order_relaxed);
    atomic_store_explicit(&rt->phase, WEFT__RT_CLOSING, memory_order_seq_cst);
    weft__registry_close(&rt->registry, rt->nworkers, weft__task_request_shutdown, NULL);
    uint64_t grace = (uint64_t)s->grace_ms * 1000000u;
    s->limit = s->now > UINT64_MAX - grace ? UINT64_MAX : s->now + grace;
    /* Polls do not move virtual time, so a task that ignores the request and
     * keeps yielding would hold the grace open: each poll counts as 1 us. */
    s->max_steps = s->steps + (uint64_t)s->grace_ms * 1000u;
    s->script = NULL;   /* shutdown is not part of a scripted schedule */
    s->cancel_one_in = 0;
    s->record = false;
    simulate(rt);       /* each worker closes its shard at its next step */
    weft__sim_io_drain(rt);     /* what the grace left: no ring holds them */
    for (uint32_t i = 0; i < rt->nworkers; i++)
        weft__worker_sim_detach(&rt->workers[i]);
    weft__sim_io_free(s);
    weft__sim_pct_free(s);
    weft__sim_trace_free(s);
}

/* ---- the public entry points --------------------------------------------- */

bool weft_sim_active(const weft_runtime *rt)
{
    return rt && rt->sim.on;
}

uint64_t weft_sim_schedule(const weft_runtime *rt)
{
    return rt && rt->sim.on ? rt->sim.hash : 0;
}

uint64_t weft_sim_steps(const weft_runtime *rt)
{
    return rt && rt->sim.on ? rt->sim.steps : 0;
}

uint64_t weft_sim_now(const weft_runtime *rt)
{
    return rt && rt->sim.on ? rt->sim.now : 0;
}

/* One run; cancel_at, token and every set up the sweep's plan (0, NULL,
 * false: none). every: count every task's suspensions, cancel whichever
 * task made the k-th, and run on to quiescence. */
static int run_once(const weft_sim_opts *opts, const weft_task_desc *root, weft_outcome *out,
                    uint64_t *schedule, uint32_t cancel_at, weft_token *token, bool every,
                    uint32_t *susp)
{
    if (weft__current_worker)
        return -EDEADLK;    /* from inside a task, as weft_block_on */
    weft_runtime *rt;
    int rc = weft_sim_runtime_new(&rt, opts);
    if (rc)
        return rc;
    rt->sim.cancel_at = cancel_at;
    rt->sim.cancel_token = token;
    rt->sim.cancel_any = every;
    rt->sim.quiesce = every;
    rc = weft_block_on(rt, root, out);
    if (susp)
        *susp = every ? rt->sim.suspensions : rt->sim.root_suspensions;
    weft_runtime_shutdown(rt);
    if (schedule)
        *schedule = rt->sim.hash;
    weft_runtime_free(rt);
    return rc;
}

int weft_sim_run(const weft_sim_opts *opts, const weft_task_desc *root, weft_outcome *out,
                 uint64_t *schedule)
{
    if (!opts || !root || !out)
        return -EINVAL;
    return run_once(opts, root, out, schedule, 0, NULL, false, NULL);
}

int weft__sim_run_plan(const weft_sim_opts *opts, const weft__sim_plan *plan,
                       const weft_task_desc *root, weft_outcome *out,
                       weft__sim_start_fn start, weft__sim_inspect_fn inspect, void *arg)
{
    if (weft__current_worker)
        return -EDEADLK;
    weft_runtime *rt;
    int rc = weft_sim_runtime_new(&rt, opts);
    if (rc)
        return rc;
    weft__sim *s = &rt->sim;
    s->cancel_at = plan->cancel_at;
    s->cancel_any = plan->cancel_any;
    s->quiesce = plan->quiesce;
    s->quiesce_steps = plan->quiesce_steps;
    s->cancel_one_in = plan->cancel_one_in;
    s->record = plan->record;
    s->script = plan->script;
    s->script_len = plan->script_len;
    int started = start ? start(arg, rt) : 0;
    rc = started ? started : weft_block_on(rt, root, out);
    if (inspect && started == 0)
        inspect(arg, rt, rc, out);
    weft_runtime_shutdown(rt);
    weft_runtime_free(rt);
    return rc;
}

/* The root's description with the sweep's token added to its own. */
static int with_token(const weft_task_desc *root, weft_task_desc *d, weft_token **tokens,
                      weft_token *token)
{
    *d = *root;
    if (root->ntokens >= WEFT_MAX_TASK_TOKENS)
        return -EINVAL;
    for (unsigned i = 0; i < root->ntokens; i++)
        tokens[i] = root->tokens[i];
    tokens[root->ntokens] = token;
    d->tokens = tokens;
    d->ntokens = root->ntokens + 1;
    return 0;
}

static int sweep_run(const weft_sim_sweep *sw, const weft_task_desc *root, uint32_t k,
                     weft_outcome *out, uint32_t *susp)
{
    if (sw->how != WEFT_SIM_CANCEL_TOKEN)
        return run_once(&sw->sim, root, out, NULL, k, NULL, sw->every_task, susp);
    weft_token *token;
    int rc = weft_token_new(&token);
    if (rc)
        return rc;
    weft_task_desc d;
    weft_token *tokens[WEFT_MAX_TASK_TOKENS];
    rc = with_token(root, &d, tokens, token);
    if (rc == 0)
        rc = run_once(&sw->sim, &d, out, NULL, k, token, sw->every_task, susp);
    weft_token_release(token);
    return rc;
}

int weft_sim_sweep_cancel(const weft_sim_sweep *sw, const weft_task_desc *root,
                          weft_sim_sweep_result *res)
{
    if (!sw || !root || !res || !sw->check)
        return -EINVAL;
    memset(res, 0, sizeof *res);
    unsigned max_k = sw->max_k ? sw->max_k : DEFAULT_MAX_K;
    for (uint32_t k = 1; k <= max_k; k++) {
        if (sw->reset)
            sw->reset(sw->arg);
        weft_outcome out;
        memset(&out, 0, sizeof out);
        uint32_t susp = 0;
        int rc = sweep_run(sw, root, k, &out, &susp);
        if (rc != 0 && rc != -EDEADLK && rc != -ELOOP)
            return rc;
        bool cancelled = susp >= k;
        res->runs++;
        if (sw->check(sw->arg, k, cancelled, rc, &out) != 0 && res->failures++ == 0)
            res->first_failing_k = k;
        if (!cancelled) {
            res->awaits = susp;
            break;
        }
    }
    return 0;
}
