/*
 * tools/weft-stress/scenarios_bugs_delivery.c - the patterns of the
 * cancellation bug catalogue (docs/bug-catalogue.md) about what a request does
 * to the task it names: it stays delivered (level-triggered) and cannot be
 * swallowed (C11, C12), abort's answer tells the truth about the outcome
 * (C13), and a join that times out is no request at all for a cooperative
 * task (C17). Like every catalogue scenario, each is written the way weft says
 * the code should be written, and checks the oracle the catalogue gives:
 *
 *  c11_level         after a delivered cancel every await yields -ECANCELED
 *                    (sleep, recv, lock, yield) so cleanup cannot hang (C11),
 *                    awaits inside a shield still work, and a task that
 *                    swallows the error is still reported cancelled (C12).
 *  c13_abort_race    abort from a plain thread racing completion: abort's
 *                    answer (0 recorded, 1 finished) agrees with the outcome.
 *  c17_detached      join timeouts: a cancel-safe task stops at once (at most
 *                    the poll in progress finishes), a cooperative one runs to
 *                    completion detached (C17).
 *
 * The other catalogue scenarios are in scenarios_bugs_holders.c and
 * scenarios_bugs_chan.c.
 *
 * c11_level and c17_detached are written as stress_parts (stress.h): their
 * own runs and weft-stress --harness (harness.c) check the same invariants.
 * c13_abort_race is not: its abort comes from a plain thread, outside any
 * run the harness can make (docs/harness.md).
 */
#include <stdlib.h>

#include "scen_util.h"

#define NT 8            /* tasks at most */

/* ==== c11_level (and C12) =================================================== */

struct level {
    weft_mutex held;            /* locked by the run for the whole instance */
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;            /* always empty */
    _Atomic uint32_t drops[NT];
    uint32_t bad[NT];           /* bit k: check k failed */
};

struct leveller {
    weft_frame f;
    uint32_t id;
    struct level *s;
    weft_sleep nap;
    weft_mutex_waiter w;
    uint64_t v;
    weft_poll rc;
};

static void leveller_drop(void *p)
{
    struct leveller *t = p;
    atomic_fetch_add(&t->s->drops[t->id], 1);
}

/* Wait to be cancelled, then try every kind of await; returns 5 regardless
 * (swallowing the cancel, C12), with the checks that failed in s->bad. */
static weft_poll leveller_poll(weft_cx *cx, void *p)
{
    struct leveller *t = p;
    uint32_t *bad = &t->s->bad[t->id];
    WEFT_BEGIN(&t->f);
    do
        WEFT_YIELD(&t->f, t->rc);
    while (t->rc == 0);
    WEFT_AWAIT(&t->f, t->rc, weft_sleep_for(cx, &t->nap, 10000000000ull));
    *bad |= (t->rc != -ECANCELED) << 0;
    WEFT_AWAIT(&t->f, t->rc, weft_mpsc_recv(cx, &t->s->rx, &t->v));
    *bad |= (t->rc != -ECANCELED) << 1;
    WEFT_AWAIT(&t->f, t->rc, weft_mutex_lock(cx, &t->s->held, &t->w));
    *bad |= (t->rc != -ECANCELED) << 2;
    weft_shield_enter(cx);
    WEFT_YIELD(&t->f, t->rc);
    *bad |= (t->rc != 0) << 3;
    WEFT_AWAIT(&t->f, t->rc, weft_sleep_for(cx, &t->nap, 50000));
    *bad |= (t->rc != 0) << 4;
    weft_shield_exit(cx);
    WEFT_YIELD(&t->f, t->rc);
    *bad |= (t->rc != -ECANCELED) << 5;
    WEFT_RETURN(&t->f, 5);
    WEFT_END(&t->f);
}

static void check_level(uint64_t seed, struct level *s, const weft_outcome *outs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        const weft_outcome *o = &outs[i];
        if (s->bad[i])
            stress_violation("c11_level", seed, "task %u: awaits after a delivered cancel "
                             "misbehaved (mask 0x%x: bits 0-2 not level-triggered, 3-4 shield "
                             "did not hold, 5 not re-delivered) (C11)", i, s->bad[i]);
        if (o->status != 0 || o->value != 5 || o->cancel.source == WEFT_CANCEL_NONE
            || !o->cancel.delivered_at)
            stress_violation("c11_level", seed, "task %u: status %d value %lld source %s site %p: "
                             "a swallowed cancel must still be reported (C12)", i, o->status,
                             (long long)o->value, weft_cancel_source_name(o->cancel.source),
                             (const void *)o->cancel.delivered_at);
    }
}

struct c11_inst {
    struct level s;
    uint64_t seed, pause_ns;
    uint32_t n;
    uint8_t abort_at_spawn[NT];
    weft_token *tok;
    weft_join h[NT];
    weft_outcome outs[NT];
    struct c11_root {
        weft_frame f;
        struct c11_inst *x;
        uint32_t i;
        weft_sleep pause;
        weft_poll rc;
    } root;
};

/* A pause, the token cancelled (every task is cancelled one way or the
 * other), then every task joined: a join that never returns is C11. */
static weft_poll c11_root_poll(weft_cx *cx, void *p)
{
    struct c11_root *r = p;
    struct c11_inst *x = r->x;
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->rc, weft_sleep_for(cx, &r->pause, x->pause_ns));
    weft_token_cancel(x->tok);
    for (r->i = 0; r->i < x->n; r->i++)
        WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &x->h[r->i], &x->outs[r->i]));
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

static void *c11_make(uint64_t seed, unsigned threads)
{
    (void)threads;
    uint64_t rng = seed;
    struct c11_inst *x = scen_zalloc(sizeof *x);
    x->seed = seed;
    weft_mutex_init(&x->s.held);
    if (weft_mutex_try_lock(&x->s.held) != 0 || weft_mpsc_new(&x->s.tx, &x->s.rx, 1) < 0
        || weft_token_new(&x->tok) < 0)
        abort();
    x->n = 1 + stress_below(&rng, NT);
    for (uint32_t i = 0; i < x->n; i++)
        x->abort_at_spawn[i] = stress_below(&rng, 2);
    x->pause_ns = stress_below(&rng, 500000);
    x->root = (struct c11_root){ .x = x, .pause = WEFT_SLEEP_INIT };
    return x;
}

static int c11_start(void *st, weft_runtime *rt)
{
    struct c11_inst *x = st;
    for (uint32_t i = 0; i < x->n; i++) {
        struct leveller t = { .id = i, .s = &x->s };
        weft_task_desc d = { .poll = leveller_poll, .frame = &t, .frame_size = sizeof t,
                             .drop = leveller_drop, .name = "leveller", .tokens = &x->tok,
                             .ntokens = 1 };
        int rc = weft_spawn(rt, &d, &x->h[i]);
        if (rc < 0)
            return rc;
        if (x->abort_at_spawn[i])
            weft_abort(&x->h[i]);
    }
    return 0;
}

/* The root cancels and joins: shielded, so that only the levellers are
 * cancelled (also by weft-stress --harness). */
static weft_task_desc c11_root(void *st)
{
    struct c11_inst *x = st;
    weft_task_desc d = WEFT_TASK(c11_root_poll, &x->root);
    d.flags = WEFT_TASK_SHIELDED;
    d.name = "c11-root";
    return d;
}

static void c11_check(void *st, int rc, const weft_outcome *root, unsigned injected)
{
    (void)root;
    (void)injected;
    struct c11_inst *x = st;
    if (rc < 0) {
        stress_violation("c11_level", x->seed, "a task hangs after cancel (C11)");
        return;
    }
    for (uint32_t i = 0; i < x->n; i++)
        scen_count_outcome(&x->outs[i]);
    check_level(x->seed, &x->s, x->outs, x->n);
    scen_check_drops("c11_level", x->seed, x->s.drops, x->n);
    stress_count(&stress_totals.tasks, x->n);
}

static void c11_destroy(void *st)
{
    struct c11_inst *x = st;
    weft_mutex_unlock(&x->s.held);
    weft_mpsc_tx_drop(&x->s.tx);
    weft_mpsc_rx_drop(&x->s.rx);
    weft_token_release(x->tok);
    free(x);
}

/* Its tasks yield until they are cancelled: no PCT (stress.h). */
const stress_parts scen_c11_parts = { c11_make, c11_start, c11_root, c11_check, c11_destroy,
                                      STRESS_NO_PCT };

void scen_run_c11_c12_level(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    scen_run_parts(&scen_c11_parts, "c11_level", rt, seed, threads);
}

/* ==== c13_abort_race ======================================================== */

#define NRACE 32

struct racer {
    weft_frame f;
    uint32_t id, yields;
    _Atomic uint32_t *drops;
    weft_poll rc;
};

static void racer_drop(void *p)
{
    struct racer *t = p;
    atomic_fetch_add(&t->drops[t->id], 1);
}

static weft_poll racer_poll(weft_cx *cx, void *p)
{
    struct racer *t = p;
    WEFT_BEGIN(&t->f);
    while (t->yields-- > 0) {
        WEFT_YIELD(&t->f, t->rc);
        if (t->rc == -ECANCELED)
            WEFT_RETURN(&t->f, 1);
    }
    WEFT_RETURN(&t->f, 9);
    WEFT_END(&t->f);
}

/* The outcome must agree with what abort answered (C13). */
static void check_race(uint64_t seed, uint32_t i, bool safe, int answer, bool finished_then,
                       const weft_outcome *o)
{
    const char *why = NULL;
    if (answer == 1 && !finished_then)
        why = "abort said finished, is_finished said no";
    else if (answer == 1 && (o->status != 0 || o->value != 9 || o->cancel.source != 0))
        why = "abort said finished, yet the task was cancelled";
    else if (o->status == -ECANCELED && (!safe || o->cancel.source != WEFT_CANCEL_ABORT))
        why = "torn down without being cancel-safe or without a request";
    else if (o->status == 0 && o->value == 1 && (!o->cancel.delivered_at || safe))
        why = "saw -ECANCELED but no delivery recorded";
    else if (o->status == 0 && o->value != 1 && o->value != 9)
        why = "unexpected value";
    if (why)
        stress_violation("c13_abort_race", seed, "task %u (%s, abort %d): %s; status %d value "
                         "%lld source %s", i, safe ? "safe" : "coop", answer, why, o->status,
                         (long long)o->value, weft_cancel_source_name(o->cancel.source));
}

void scen_run_c13_abort_race(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    uint64_t rng = seed;
    _Atomic uint32_t *drops = scen_zalloc(NRACE * sizeof *drops);    /* leaked on a hang */
    weft_join h[NRACE];
    bool safe[NRACE];
    for (uint32_t i = 0; i < NRACE; i++) {
        struct racer t = { .id = i, .yields = stress_below(&rng, 3), .drops = drops };
        safe[i] = stress_below(&rng, 2);
        weft_task_desc d = { .poll = racer_poll, .frame = &t, .frame_size = sizeof t,
                             .drop = racer_drop, .flags = safe[i] ? WEFT_TASK_CANCEL_SAFE : 0 };
        if (weft_spawn(rt, &d, &h[i]) < 0)
            abort();
    }
    for (uint32_t i = 0; i < NRACE; i++) {
        for (uint32_t spin = stress_below(&rng, 2000); spin > 0; spin--)
            atomic_signal_fence(memory_order_seq_cst);
        int answer = weft_abort(&h[i]);
        bool finished = weft_join_is_finished(&h[i]);
        weft_outcome o;
        if (weft_join_wait_timeout(&h[i], &o, SCEN_HANG_NS) < 0) {
            stress_violation("c13_abort_race", seed, "task %u hangs", i);
            return;
        }
        scen_count_outcome(&o);
        check_race(seed, i, safe[i], answer, finished, &o);
    }
    scen_check_drops("c13_abort_race", seed, drops, NRACE);
    free(drops);
    stress_count(&stress_totals.tasks, NRACE);
}

/* ==== c17_detached ========================================================== */

struct det_state {
    _Atomic uint32_t writes[NT];
    _Atomic uint32_t drops[NT];
    weft_waitgroup wg;
};

struct det_task {
    weft_frame f;
    uint32_t id, steps, i;
    struct det_state *s;
    weft_sleep nap;
    weft_poll rc;
};

static void det_drop(void *p)
{
    struct det_task *t = p;
    atomic_fetch_add(&t->s->drops[t->id], 1);
    weft_waitgroup_done(&t->s->wg);
}

static weft_poll det_poll(weft_cx *cx, void *p)
{
    struct det_task *t = p;
    WEFT_BEGIN(&t->f);
    for (t->i = 0; t->i < t->steps; t->i++) {
        WEFT_AWAIT(&t->f, t->rc, weft_sleep_for(cx, &t->nap, 100000u * (t->i % 3)));
        if (t->rc < 0)
            WEFT_RETURN(&t->f, -1);     /* nobody cancels these but the timeout rule */
        atomic_fetch_add(&t->s->writes[t->id], 1);
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

struct det_root {
    weft_frame f;
    struct det_root *self;      /* the original: the spawned root is a copy */
    struct det_state *s;
    weft_join h[NT];
    uint8_t safe[NT];
    uint32_t steps[NT], snap[NT];
    bool timed_out[NT];
    uint64_t limit[NT], ns;
    uint32_t n, i;
    int64_t wrong;              /* -(i + 1) for the first join that saw a wrong result */
    weft_join_timeout jt;
    weft_waitgroup_waiter ww;
    weft_outcome out;
    weft_poll rc;
};

static weft_poll det_root_poll(weft_cx *cx, void *p)
{
    struct det_root *r = p;
    WEFT_BEGIN(&r->f);
    for (r->i = 0; r->i < r->n; r->i++) {
        r->jt = (weft_join_timeout)WEFT_JOIN_TIMEOUT_INIT;
        r->ns = r->limit[r->i];
        /* On one line: a multi-line await's resume point (__LINE__) differs
         * between gcc and clang, and the schedule hash with it. */
        WEFT_AWAIT(&r->f, r->rc, weft_join_await_timeout(cx, &r->jt, &r->h[r->i], &r->out, r->ns));
        /* Into the original, where the check reads them. */
        r->self->timed_out[r->i] = r->rc == -ETIMEDOUT;
        r->self->snap[r->i] = r->snap[r->i] = atomic_load(&r->s->writes[r->i]);
        /* Noted, and the rest still joined: every handle is consumed. */
        if (r->rc == 0 && (r->out.status != 0 || r->snap[r->i] != r->steps[r->i])
            && r->wrong == 0)
            r->wrong = -(int64_t)r->i - 1;
    }
    WEFT_AWAIT(&r->f, r->rc, weft_waitgroup_wait(cx, &r->s->wg, &r->ww));
    WEFT_RETURN(&r->f, r->wrong);
    WEFT_END(&r->f);
}

static void check_detached(uint64_t seed, struct det_root *r, bool injected)
{
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t w = atomic_load(&r->s->writes[i]);
        if (!r->timed_out[i])
            continue;
        /* Its handle was given up, outcome and all: a timed-out join of a
         * cancel-safe task is the one place a timeout cancels, and the
         * check below is what shows it took effect. */
        if (r->safe[i])
            stress_count(&stress_totals.by_source[WEFT_CANCEL_TIMEOUT], 1);
        if (r->safe[i] && w > r->snap[i] + 1)
            stress_violation("c17_detached", seed, "cancel-safe task %u wrote %u times after "
                             "its join timed out (C17)", i, w - r->snap[i]);
        if (!r->safe[i] && w != r->steps[i] && !injected)
            stress_violation("c17_detached", seed, "cooperative task %u stopped at %u of %u "
                             "steps after a join timeout: timeouts must not stop the work", i, w,
                             r->steps[i]);
    }
}

struct c17_inst {
    struct det_state s;
    struct det_root r;
    uint64_t seed;
};

static void *c17_make(uint64_t seed, unsigned threads)
{
    (void)threads;
    uint64_t rng = seed;
    struct c17_inst *x = scen_zalloc(sizeof *x);
    struct det_root *r = &x->r;
    x->seed = seed;
    r->self = r;
    r->s = &x->s;
    r->n = 1 + stress_below(&rng, NT);
    weft_waitgroup_init(&x->s.wg);
    weft_waitgroup_add(&x->s.wg, r->n);
    for (uint32_t i = 0; i < r->n; i++) {
        r->safe[i] = stress_below(&rng, 2);
        r->steps[i] = stress_below(&rng, 10);
        r->limit[i] = stress_below(&rng, 4) * 300000u + 1;
    }
    return x;
}

static int c17_start(void *st, weft_runtime *rt)
{
    struct c17_inst *x = st;
    struct det_root *r = &x->r;
    for (uint32_t i = 0; i < r->n; i++) {
        struct det_task t = { .id = i, .steps = r->steps[i], .s = &x->s };
        weft_task_desc d = { .poll = det_poll, .frame = &t, .frame_size = sizeof t,
                             .drop = det_drop, .name = "det-task",
                             .flags = r->safe[i] ? WEFT_TASK_CANCEL_SAFE : 0 };
        int rc = weft_spawn(rt, &d, &r->h[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The root joins with timeouts: shielded, so that only the tasks it joins
 * are cancelled (by weft-stress --harness: nobody else cancels them). */
static weft_task_desc c17_root(void *st)
{
    struct c17_inst *x = st;
    weft_task_desc d = WEFT_TASK(det_root_poll, &x->r);
    d.flags = WEFT_TASK_SHIELDED;
    d.name = "det-root";
    return d;
}

/* With cancellations injected from outside, a cooperative task may stop
 * short for a reason of its own: only the cancel-safe half of the oracle
 * (a timed-out task stops at once) is left to check then. */
static void c17_check(void *st, int rc, const weft_outcome *root, unsigned injected)
{
    struct c17_inst *x = st;
    if (rc < 0)
        return;
    if (root->value != 0 && !injected)
        stress_violation("c17_detached", x->seed, "join %lld within the limit reported a wrong "
                         "outcome", (long long)-root->value - 1);
    check_detached(x->seed, &x->r, injected != 0);
    scen_check_drops("c17_detached", x->seed, x->s.drops, x->r.n);
    stress_count(&stress_totals.tasks, x->r.n + 1);
}

const stress_parts scen_c17_parts = { c17_make, c17_start, c17_root, c17_check, free };

void scen_run_c17_detached(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    scen_run_parts(&scen_c17_parts, "c17_detached", rt, seed, threads);
}
