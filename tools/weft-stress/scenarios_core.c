/*
 * tools/weft-stress/scenarios_core.c - cancellation races in the runtime core:
 * aborts from tasks and from another thread against yields, joins, shield
 * regions and forced tear-down, and shutdown in the middle of all of it.
 *
 * Invariants checked for every task of every instance:
 *   I1. its drop hook ran exactly once;
 *   I2. its join outcome matches the rules: a cooperative task always returns
 *       (status 0), and if it reports having seen -ECANCELED the outcome names
 *       a source and an await site; a cancel-safe task either completed all its
 *       steps or was torn down (-ECANCELED) - never resumed to see the error;
 *   I3. a two-step update made inside a shield is never torn (both halves or
 *       neither), whatever was cancelled when;
 *   I4. a join await withdrawn by cancellation leaves the joined task running
 *       and joinable: joined again, it reports its real result;
 *   I5. a sleep yields 0 only once its deadline has passed, and a withdrawn
 *       one (possibly handed to the worker that owns its timer) ends the wait.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scen_util.h"

#define MAX_TASKS 64

enum kind {
    COOP, COOP_SHIELDED, SAFE, SAFE_SHIELDED, JOINER, SLEEPER, SAFE_SLEEPER,
    STUBBORN, KIND_COUNT
};

static bool is_cancel_safe(int kind)
{
    return kind == SAFE || kind == SAFE_SHIELDED || kind == SAFE_SLEEPER;
}

static bool sleeps(int kind) { return kind == SLEEPER || kind == SAFE_SLEEPER; }
static bool is_shielded(int kind) { return kind == COOP_SHIELDED || kind == SAFE_SHIELDED; }

struct mix {
    const char *scenario;
    bool shutdown;                  /* the runtime is shut down mid-flight */
    uint64_t seed;
    uint32_t ntasks;
    uint8_t kind[MAX_TASKS];
    uint32_t steps[MAX_TASKS];
    uint32_t first_half[MAX_TASKS], second_half[MAX_TASKS];
    _Atomic uint32_t drops[MAX_TASKS];
    weft_join handles[MAX_TASKS];
    weft_token *token;              /* some children are bound to it */
    uint64_t bound;                 /* bit i: child i is bound */
    _Atomic bool spawned, outside_done;
    uint64_t outside_seed;
};

/* ---- the tasks ------------------------------------------------------------ */

struct leaf_child {
    weft_frame f;
    uint32_t left;
    weft_poll rc;
};

static weft_poll leaf_child_poll(weft_cx *cx, void *p)
{
    struct leaf_child *c = p;
    WEFT_BEGIN(&c->f);
    for (; c->left > 0; c->left--) {
        WEFT_YIELD(&c->f, c->rc);
        if (c->rc < 0)
            WEFT_RETURN(&c->f, c->rc);
    }
    WEFT_RETURN(&c->f, 7);
    WEFT_END(&c->f);
}

struct child {
    weft_frame f;
    struct mix *m;
    uint32_t id, i;
    weft_poll rc;
    weft_sleep sleep;
    uint64_t nap, start;
    weft_join inner;
    weft_outcome out;
};

static void child_drop(void *p)
{
    struct child *c = p;
    atomic_fetch_add_explicit(&c->m->drops[c->id], 1, memory_order_relaxed);
    if (c->inner.weft_task)
        weft_detach(&c->inner);
}

/* The inner child ran to its end, or shutdown stopped it. */
static bool inner_ok(const struct child *c)
{
    return c->rc == 0 && (c->out.value == 7 || c->out.cancel.source == WEFT_CANCEL_SHUTDOWN);
}

/* JOINER: await a child; if that await is cancelled, join it again inside a
 * shield and check it still ran to completion (I4). */
static weft_poll joiner_poll(weft_cx *cx, struct child *c)
{
    WEFT_BEGIN(&c->f);
    {
        struct leaf_child lc = { .left = c->m->steps[c->id] };
        int rc = weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(leaf_child_poll, &lc), &c->inner);
        if (rc < 0)
            WEFT_RETURN(&c->f, rc == -ESHUTDOWN && c->m->shutdown ? 2 : -1);
    }
    WEFT_AWAIT(&c->f, c->rc, weft_join_await(cx, &c->inner, &c->out));
    if (c->rc != -ECANCELED)
        WEFT_RETURN(&c->f, inner_ok(c) ? 0 : -2);
    stress_count(&stress_totals.at_join, 1);
    weft_shield_enter(cx);
    WEFT_AWAIT(&c->f, c->rc, weft_join_await(cx, &c->inner, &c->out));
    weft_shield_exit(cx);
    WEFT_RETURN(&c->f, inner_ok(c) ? 1 : -3);
    WEFT_END(&c->f);
}

static weft_poll child_poll(weft_cx *cx, void *p)
{
    struct child *c = p;
    struct mix *m = c->m;
    int kind = m->kind[c->id];
    if (kind == JOINER)
        return joiner_poll(cx, c);
    WEFT_BEGIN(&c->f);
    for (c->i = 0; kind == STUBBORN || c->i < m->steps[c->id]; c->i++) {
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
            c->nap = (uint64_t)((c->id * 7919u + c->i * 104729u) % 300u) * 1000u;
            c->start = weft_now_ns();
            WEFT_AWAIT(&c->f, c->rc, weft_sleep_for(cx, &c->sleep, c->nap));
            if (c->rc == 0 && weft_now_ns() - c->start < c->nap)
                WEFT_RETURN(&c->f, -6);   /* I5: woke early */
        } else {
            WEFT_YIELD(&c->f, c->rc);
        }
        if (c->rc == -ECANCELED && kind != STUBBORN) {
            stress_count(&stress_totals.at_yield, 1);
            WEFT_RETURN(&c->f, is_cancel_safe(kind) ? -5 : 1);
        }
    }
    WEFT_RETURN(&c->f, 0);
    WEFT_END(&c->f);
}

static int spawn_child(weft_runtime *rt, struct mix *m, uint32_t id)
{
    struct child c = { .m = m, .id = id, .sleep = WEFT_SLEEP_INIT };
    weft_task_desc d = { .poll = child_poll, .frame = &c, .frame_size = sizeof c,
                         .drop = child_drop, .name = "stress-child" };
    if (is_cancel_safe(m->kind[id]))
        d.flags = WEFT_TASK_CANCEL_SAFE;
    if (m->token && (m->bound >> id & 1)) {
        d.tokens = &m->token;
        d.ntokens = 1;
    }
    return weft_spawn(rt, &d, &m->handles[id]);
}

/* ---- checking an outcome --------------------------------------------------- */

static void check_outcome(struct mix *m, uint32_t id, int rc, const weft_outcome *o)
{
    int kind = m->kind[id];
    const char *sc = m->scenario;
    uint32_t drops = atomic_load_explicit(&m->drops[id], memory_order_relaxed);
    if (drops != 1)
        stress_violation(sc, m->seed, "task %u (kind %d): drop hook ran %u times", id, kind, drops);
    if (m->first_half[id] != m->second_half[id] && !(m->shutdown && rc == -ECANCELED))
        stress_violation(sc, m->seed, "task %u: shielded two-step torn (%u vs %u)", id,
                         m->first_half[id], m->second_half[id]);
    scen_count_cancel(o);
    bool cancelled = o->cancel.source != WEFT_CANCEL_NONE;
    if (m->shutdown && rc == -ECANCELED && o->cancel.source == WEFT_CANCEL_SHUTDOWN) {
        /* Torn down after the grace period: shields do not survive that, so
         * only I1 applies. */
        stress_count(&stress_totals.torn_down, 1);
        return;
    }
    if (is_cancel_safe(kind)) {
        if (rc == -ECANCELED) {
            stress_count(&stress_totals.torn_down, 1);
            if (!cancelled)
                stress_violation(sc, m->seed, "task %u torn down with no request", id);
        } else if (rc != 0 || o->value != 0) {
            stress_violation(sc, m->seed, "cancel-safe task %u: status %d value %lld", id, rc,
                             (long long)o->value);
        }
        return;
    }
    if (kind == STUBBORN) {
        stress_violation(sc, m->seed, "stubborn task %u: status %d source %s", id, rc,
                         weft_cancel_source_name(o->cancel.source));
        return;
    }
    if (rc != 0 || o->value < 0 || (o->value == 2 && kind != JOINER)
        || (o->value == 1 && (!cancelled || !o->cancel.delivered_at)))
        stress_violation(sc, m->seed, "cooperative task %u (kind %d): status %d value %lld "
                         "source %s site %p", id, kind, rc, (long long)o->value,
                         weft_cancel_source_name(o->cancel.source),
                         (const void *)o->cancel.delivered_at);
}

/* ---- abort_mix ------------------------------------------------------------- */

static void plan(struct mix *m, uint64_t *rng, int kinds)
{
    m->ntasks = 1 + stress_below(rng, MAX_TASKS);
    for (uint32_t i = 0; i < m->ntasks; i++) {
        m->kind[i] = (uint8_t)stress_below(rng, (uint32_t)kinds);
        m->steps[i] = stress_below(rng, 40);
    }
    m->bound = stress_rng(rng);
    m->outside_seed = stress_rng(rng);
}

/* Another thread aborts a random subset while the root is also aborting. */
static void *outside_aborter(void *arg)
{
    struct mix *m = arg;
    uint64_t rng = m->outside_seed;
    while (!atomic_load_explicit(&m->spawned, memory_order_acquire))
        sched_yield();
    for (uint32_t n = stress_below(&rng, m->ntasks + 1); n > 0; n--) {
        weft_abort(&m->handles[stress_below(&rng, m->ntasks)]);
        if (stress_below(&rng, 4) == 0)
            sched_yield();
    }
    atomic_store_explicit(&m->outside_done, true, memory_order_release);
    return NULL;
}

struct mix_root {
    weft_frame f;
    struct mix *m;
    uint64_t rng;
    uint32_t i;
    weft_poll rc;
    weft_outcome out;
};

static weft_poll mix_root_poll(weft_cx *cx, void *p)
{
    struct mix_root *r = p;
    struct mix *m = r->m;
    WEFT_BEGIN(&r->f);
    for (r->i = 0; r->i < m->ntasks; r->i++)
        if (spawn_child(weft_cx_runtime(cx), m, r->i) < 0)
            WEFT_RETURN(&r->f, -1);
    atomic_store_explicit(&m->spawned, true, memory_order_release);
    for (r->i = 0; r->i < 2 * m->ntasks; r->i++) {
        if (stress_below(&r->rng, 3) == 0)
            weft_abort(&m->handles[stress_below(&r->rng, m->ntasks)]);
        if (stress_below(&r->rng, 2 * m->ntasks) == 0)
            weft_token_cancel(m->token);
        WEFT_YIELD(&r->f, r->rc);
    }
    /* Handles are not shared across threads once joining starts. */
    while (!atomic_load_explicit(&m->outside_done, memory_order_acquire))
        WEFT_YIELD(&r->f, r->rc);
    for (r->i = 0; r->i < m->ntasks; r->i++) {
        WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &m->handles[r->i], &r->out));
        check_outcome(m, r->i, (int)r->rc, &r->out);
    }
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

static void run_abort_mix(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    struct mix *m = scen_zalloc(sizeof *m);
    uint64_t rng = seed;
    m->scenario = "abort_mix";
    m->seed = seed;
    plan(m, &rng, STUBBORN);    /* every kind that returns by itself */
    if (weft_token_new(&m->token) < 0)
        abort();
    pthread_t outside;
    if (pthread_create(&outside, NULL, outside_aborter, m) != 0)
        abort();
    struct mix_root root = { .m = m, .rng = stress_rng(&rng) };
    weft_outcome out;
    int rc = weft_block_on(rt, &WEFT_TASK(mix_root_poll, &root), &out);
    if (rc < 0 || out.status != 0 || out.value != 0)
        stress_violation(m->scenario, seed, "root: rc %d status %d value %lld", rc, out.status,
                         (long long)out.value);
    atomic_store(&m->spawned, true);    /* let the thread finish on every path */
    pthread_join(outside, NULL);
    weft_token_release(m->token);
    stress_count(&stress_totals.tasks, m->ntasks);
    free(m);
}

/* ---- shutdown_mid ------------------------------------------------------------ */

/* A runtime of its own, shut down at a random moment with everything in flight
 * (including tasks that ignore cancellation, which the grace period ends). */
static void run_shutdown_mid(weft_runtime *unused, uint64_t seed, unsigned threads)
{
    (void)unused;
    struct mix *m = scen_zalloc(sizeof *m);
    uint64_t rng = seed;
    m->scenario = "shutdown_mid";
    m->shutdown = true;
    m->seed = seed;
    plan(m, &rng, KIND_COUNT);
    weft_runtime *rt;
    weft_runtime_opts opts = { .threads = threads, .shutdown_grace_ms = 5 };
    if (weft_runtime_new(&rt, &opts) < 0)
        abort();
    for (uint32_t i = 0; i < m->ntasks; i++)
        if (spawn_child(rt, m, i) < 0)
            stress_violation(m->scenario, seed, "spawn %u failed", i);
    struct timespec pause = { 0, (long)stress_below(&rng, 2000000) };
    nanosleep(&pause, NULL);
    weft_runtime_shutdown(rt);
    for (uint32_t i = 0; i < m->ntasks; i++) {
        weft_outcome out;
        int rc = weft_join_wait(&m->handles[i], &out);
        if (rc < 0) {
            stress_violation(m->scenario, seed, "join %u: %s", i, weft_strerror(rc));
            continue;
        }
        check_outcome(m, i, out.status, &out);
    }
    weft_runtime_free(rt);
    stress_count(&stress_totals.tasks, m->ntasks);
    free(m);
}

const stress_scenario stress_scenarios[] = {
    { "abort_mix", "aborts and token cancels from tasks and another thread vs yields, "
                   "sleeps, joins, shields, tear-down",
      run_abort_mix },
    { "shutdown_mid", "shutdown with cooperative, cancel-safe, shielded and stubborn tasks live",
      run_shutdown_mid },
    { "io_frames", "framed send_all/recv over loopback TCP, sends and recvs withdrawn (C2, C3)",
      scen_run_io_frames },
    { "io_fds", "accept, openat, pipes and close under aborts and tear-down: no fd leaks (C10)",
      scen_run_io_fds },
    { "io_deadline", "recv and read with deadlines racing writers: timed out or delivered",
      scen_run_io_deadline },
    { "chan_conserve", "mpsc (bounded, unbounded) and oneshot under aborts and select (C4, C5)",
      scen_run_chan_conserve, false, &scen_chan_parts },
    { "locks", "mutex, rwlock, semaphore holders and raced waits (C6, C7)", scen_run_locks,
      true, &scen_locks_parts },
    { "gather", "group, wait group, barrier and notify under aborts and cancels",
      scen_run_gather, true, &scen_gather_parts },
    { "c1_persist", "two-step persist-then-count in a shield, cancelled anywhere (C1)",
      scen_run_c1_persist, false, &scen_c1_parts },
    { "c8_futurelock", "lock waits that lose selects while the holder waits (C8)",
      scen_run_c8_futurelock, true, &scen_c8_parts },
    { "c9_blocking", "lock holders running blocking-pool jobs, aborted and torn down (C9)",
      scen_run_c9_blocking, false, &scen_c9_parts },
    { "c11_level", "cancellation is level-triggered and cannot be swallowed (C11, C12)",
      scen_run_c11_c12_level, false, &scen_c11_parts },
    { "c13_abort_race", "abort racing completion: the outcome matches abort's answer (C13)",
      scen_run_c13_abort_race },
    { "c14_select_timer", "select of timers and a channel: winners are due, losers did not "
                          "happen (C14)", scen_run_c14_select_timer, true, &scen_c14_parts },
    { "c16_relay", "recv-then-send relays and token cancels from inside tasks (C15, C16)",
      scen_run_c15_c16_relay, true, &scen_c16_parts },
    { "c17_detached", "join timeouts: cancel-safe tasks stop, others finish detached (C17)",
      scen_run_c17_detached, true, &scen_c17_parts },
};
const unsigned stress_scenario_count = sizeof stress_scenarios / sizeof stress_scenarios[0];
