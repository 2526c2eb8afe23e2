/*
 * tests/core/test_cancel_rules.c - the rules of delivery that test_abort.c,
 * test_token.c and test_timeout.c leave out:
 *  - a request that arrives while the task is inside a long poll (from another
 *    thread) is seen by weft_cx_cancel_requested at once and delivered at the
 *    next await, even one whose leaf is ready; a cancel-safe task stops there;
 *  - a request that arrives while the task is suspended inside nested shields
 *    does not withdraw the leaf (its real result comes back), is held through
 *    awaits at every inner depth, and is delivered at the first await after
 *    the outermost shield ends, with shield_held_ns > 0 and delivered_at
 *    pointing at that await's line;
 *  - a request after completion changes nothing (abort returns 1, a token
 *    cancel leaves source NONE); a token cancelled twice returns 1; a task
 *    bound to a child token made after its parent was cancelled starts
 *    cancelled;
 *  - provenance: outcome.cancel.source and delivered_at (file:line) for
 *    abort, token, group and shutdown, and the trace hook's events for all
 *    five sources, including TIMEOUT (a cancel-safe join target whose waiter
 *    timed out);
 *  - weft_join_await_timeout: finishing in time, timing out (a cooperative
 *    target keeps running detached to completion; a cancel-safe one is torn
 *    down with source TIMEOUT), the waiter itself being aborted (the handle
 *    stays valid), and the deadline racing completion, looped.
 */
#include <pthread.h>
#include <time.h>

#include "core_util.h"

TestSuite(rules, .timeout = 120);

#define MS 1000000ull

static flag drops;

static void count_drop(void *p)
{
    (void)p;
    flag_add(&drops, 1);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Let CLOCK_MONOTONIC_COARSE move on, so a hold measured across this call is
 * at least one tick long (a lower bound only). The loop waits for the clock
 * itself to move; the naps only pace it. */
static void coarse_tick(void)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &a);
    do {
        const struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
        clock_gettime(CLOCK_MONOTONIC_COARSE, &b);
    } while (a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec);
}

/* ---- the trace hook -------------------------------------------------------- */

typedef struct trace_rec {
    weft_trace_kind kind;
    weft_cancel_source source;
    int line;
    const char *file;
    const char *name;
    uint64_t held;
} trace_rec;

static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static trace_rec traces[64];
static int ntraces;

static void on_trace(const weft_trace_event *ev, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&trace_lock);
    if (ntraces < 64)
        traces[ntraces++] = (trace_rec){ ev->kind, ev->source, ev->site ? ev->site->line : -1,
                                         ev->site ? ev->site->file : NULL, ev->task_name,
                                         ev->shield_held_ns };
    pthread_mutex_unlock(&trace_lock);
}

static weft_runtime *rt_traced(unsigned threads)
{
    weft_runtime *rt = NULL;
    weft_runtime_opts o = { .threads = threads, .shutdown_grace_ms = 2000, .trace = on_trace };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    return rt;
}

/* The trace events of the task named `name`; asserts there is exactly one. */
static trace_rec trace_of(const char *name)
{
    trace_rec r = { 0 };
    int n = 0;
    pthread_mutex_lock(&trace_lock);
    for (int i = 0; i < ntraces; i++)
        if (traces[i].name && strcmp(traces[i].name, name) == 0) {
            r = traces[i];
            n++;
        }
    pthread_mutex_unlock(&trace_lock);
    cr_assert_eq(n, 1, "task %s: %d trace events, want 1", name, n);
    return r;
}

/* ---- a request during a long poll ------------------------------------------ */

static flag in_long_poll, requested;
static int run_await_line;
static _Atomic int after_run_await;

struct runner {
    weft_frame f;
    bool saw_request;
    int64_t rc;
};

static weft_poll runner_poll(weft_cx *cx, void *p)
{
    struct runner *r = p;
    WEFT_BEGIN(&r->f);
    flag_add(&in_long_poll, 1);
    flag_wait_ge(&requested, 1);        /* the worker is busy in this poll */
    r->saw_request = weft_cx_cancel_requested(cx) && weft_cx_cancel_due(cx);
    run_await_line = __LINE__; WEFT_AWAIT(&r->f, r->rc, ready_now(9));
    atomic_fetch_add(&after_run_await, 1);
    WEFT_RETURN(&r->f, r->saw_request && r->rc == -ECANCELED ? 1 : -(int64_t)r->rc);
    WEFT_END(&r->f);
}

static void run_long_poll(unsigned flags, bool by_token, weft_outcome *out)
{
    weft_runtime *rt = rt_make(2, 0);
    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    struct runner fr = { .f = { 0 } };
    weft_task_desc d = DESC(runner_poll, &fr, count_drop, flags);
    d.tokens = &tok;
    d.ntokens = 1;
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&in_long_poll, 1);
    if (by_token)
        cr_assert_eq(weft_token_cancel(tok), 0);
    else
        cr_assert_eq(weft_abort(&h), 0);
    flag_set(&requested, 1);
    cr_assert_eq(weft_join_wait(&h, out), 0);
    cr_assert_eq(flag_get(&drops), 1);
    cr_assert_eq(out->cancel.source, by_token ? WEFT_CANCEL_TOKEN : WEFT_CANCEL_ABORT);
    cr_assert_not_null(out->cancel.delivered_at);
    cr_assert_eq(out->cancel.delivered_at->line, run_await_line);
    cr_assert_eq(out->cancel.shield_held_ns, 0);
    weft_token_release(tok);
    rt_done(rt);
}

Test(rules, request_during_a_long_poll_cooperative)
{
    weft_outcome out;
    run_long_poll(0, false, &out);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 1, "seen in the poll and delivered at the next await "
                 "(even a ready one): got %ld", (long)out.value);
    cr_assert_eq(atomic_load(&after_run_await), 1);
    WEFT_ASSERT_NO_LEAKS();
}

Test(rules, request_during_a_long_poll_cancel_safe)
{
    weft_outcome out;
    run_long_poll(WEFT_TASK_CANCEL_SAFE, true, &out);
    cr_assert_eq(out.status, -ECANCELED);
    cr_assert_eq(atomic_load(&after_run_await), 0, "resumed past the await");
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- nested shields across a suspension ------------------------------------- */

static gate_leaf sgate;
static int after_shield_line;
static _Atomic int after_shield_ran;
static int64_t shield_seen[3];

struct shielded {
    weft_frame f;
    int64_t rc_gate, rc1, rc2, rc_after;
};

static weft_poll shielded_poll(weft_cx *cx, void *p)
{
    struct shielded *s = p;
    WEFT_BEGIN(&s->f);
    WEFT_SHIELD_BEGIN();
    WEFT_SHIELD_BEGIN();
    WEFT_SHIELD_BEGIN();
    WEFT_AWAIT(&s->f, s->rc_gate, gate_poll(cx, &sgate));  /* the request lands here */
    WEFT_SHIELD_END();
    WEFT_YIELD(&s->f, s->rc1);                              /* depth 2 */
    WEFT_SHIELD_END();
    WEFT_YIELD(&s->f, s->rc2);                              /* depth 1 */
    shield_seen[0] = s->rc_gate;
    shield_seen[1] = s->rc1;
    shield_seen[2] = s->rc2;
    WEFT_SHIELD_END();
    after_shield_line = __LINE__; WEFT_YIELD(&s->f, s->rc_after);
    atomic_fetch_add(&after_shield_ran, 1);
    WEFT_RETURN(&s->f, s->rc_after);
    WEFT_END(&s->f);
}

static void run_shielded(unsigned flags, weft_outcome *out)
{
    weft_runtime *rt = rt_make(2, 0);
    gate_init(&sgate);
    struct shielded fr = { .f = { 0 } };
    weft_task_desc d = DESC(shielded_poll, &fr, count_drop, flags);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    gate_wait_armed(&sgate);            /* suspended inside three shields */
    cr_assert_eq(weft_abort(&h), 0);
    coarse_tick();
    gate_open(&sgate, 5);
    cr_assert_eq(weft_join_wait(&h, out), 0);
    cr_assert_eq(flag_get(&drops), 1);
    cr_assert_eq(sgate.hook_calls, 0, "a shielded leaf must not be withdrawn");
    cr_assert_eq(shield_seen[0], 5, "the shielded await got %ld, not its real result",
                 (long)shield_seen[0]);
    cr_assert_eq(shield_seen[1], 0, "delivered at depth 2");
    cr_assert_eq(shield_seen[2], 0, "delivered at depth 1");
    cr_assert_eq(out->cancel.source, WEFT_CANCEL_ABORT);
    cr_assert_not_null(out->cancel.delivered_at);
    cr_assert_eq(out->cancel.delivered_at->line, after_shield_line,
                 "delivered at line %d, first await after the shield is %d",
                 out->cancel.delivered_at->line, after_shield_line);
    cr_assert(ends_with(out->cancel.delivered_at->file, "test_cancel_rules.c"));
    cr_assert_gt(out->cancel.shield_held_ns, 0);
    gate_release(&sgate);
    rt_done(rt);
}

Test(rules, nested_shields_hold_a_request_across_a_suspension_cooperative)
{
    weft_outcome out;
    run_shielded(0, &out);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, -ECANCELED);
    cr_assert_eq(atomic_load(&after_shield_ran), 1);
    WEFT_ASSERT_NO_LEAKS();
}

Test(rules, nested_shields_hold_a_request_across_a_suspension_cancel_safe)
{
    weft_outcome out;
    run_shielded(WEFT_TASK_CANCEL_SAFE, &out);
    cr_assert_eq(out.status, -ECANCELED);
    cr_assert_eq(atomic_load(&after_shield_ran), 0, "resumed past the first await "
                 "after the shield");
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- requests that come too late, twice, or before the task ------------------ */

struct quick {
    weft_frame f;
    int64_t rc;
};

static int quick_line;

static weft_poll quick_poll(weft_cx *cx, void *p)
{
    struct quick *q = p;
    WEFT_BEGIN(&q->f);
    quick_line = __LINE__; WEFT_YIELD(&q->f, q->rc);
    WEFT_RETURN(&q->f, q->rc == 0 ? 3 : q->rc);
    WEFT_END(&q->f);
}

Test(rules, after_completion_twice_and_late_children)
{
    weft_runtime *rt = rt_make(2, 0);
    weft_token *parent, *late;
    cr_assert_eq(weft_token_new(&parent), 0);
    struct quick q = { .f = { 0 } };
    weft_task_desc d = DESC(quick_poll, &q, count_drop, 0);
    d.tokens = &parent;
    d.ntokens = 1;
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    while (!weft_join_is_finished(&h))
        sched_yield();
    cr_assert_eq(weft_token_cancel(parent), 0, "first cancel of the token");
    cr_assert_eq(weft_token_cancel(parent), 1, "second cancel");
    cr_assert_eq(weft_abort(&h), 1, "abort after completion");
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.value, 3);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_NONE, "a late request is not recorded");
    cr_assert_null(out.cancel.delivered_at);

    /* A child made after its parent was cancelled starts cancelled, and so
     * does a task bound to it: delivered at its first await. */
    cr_assert_eq(weft_token_child(parent, &late), 0);
    cr_assert(weft_token_is_cancelled(late));
    cr_assert_eq(weft_token_cancel(late), 1, "already cancelled at birth");
    d.tokens = &late;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.value, -ECANCELED);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_TOKEN);
    cr_assert_not_null(out.cancel.delivered_at);
    cr_assert_eq(out.cancel.delivered_at->line, quick_line);
    weft_token_release(late);
    weft_token_release(parent);
    rt_done(rt);
    cr_assert_eq(flag_get(&drops), 2);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- provenance, source by source ------------------------------------------- */

static flag parked;
static int park_line;

struct park {
    weft_frame f;
    forever_leaf leaf;
    int64_t rc, rc2;
};

static weft_poll park_poll(weft_cx *cx, void *p)
{
    struct park *k = p;
    WEFT_BEGIN(&k->f);
    park_line = __LINE__; WEFT_AWAIT(&k->f, k->rc, forever_poll(cx, &k->leaf));
    WEFT_YIELD(&k->f, k->rc2);
    WEFT_RETURN(&k->f, k->rc == -ECANCELED && k->rc2 == -ECANCELED ? 1 : -1);
    WEFT_END(&k->f);
}

static weft_task_desc park_desc(struct park *k, const char *name, unsigned flags)
{
    memset(k, 0, sizeof *k);
    k->leaf.on_arm = &parked;
    weft_task_desc d = DESC(park_poll, k, count_drop, flags);
    d.name = name;
    return d;
}

static void check_delivered(const weft_outcome *out, weft_cancel_source src, const char *name)
{
    cr_assert_eq(out->status, 0);
    cr_assert_eq(out->value, 1);
    cr_assert_eq(out->cancel.source, src, "%s: source %s", name,
                 weft_cancel_source_name(out->cancel.source));
    cr_assert_not_null(out->cancel.delivered_at);
    cr_assert_eq(out->cancel.delivered_at->line, park_line);
    cr_assert(ends_with(out->cancel.delivered_at->file, "test_cancel_rules.c"));
    cr_assert_str_eq(out->cancel.delivered_at->func, "park_poll");
    trace_rec t = trace_of(name);
    cr_assert_eq(t.kind, WEFT_TRACE_CANCEL_DELIVERED);
    cr_assert_eq(t.source, src);
    cr_assert_eq(t.line, park_line);
}

Test(rules, provenance_abort_and_token)
{
    weft_runtime *rt = rt_traced(2);
    struct park k;
    weft_task_desc d = park_desc(&k, "by-abort", 0);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&parked, 1);
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    check_delivered(&out, WEFT_CANCEL_ABORT, "by-abort");

    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    d = park_desc(&k, "by-token", 0);
    d.tokens = &tok;
    d.ntokens = 1;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&parked, 2);
    cr_assert_eq(weft_token_cancel(tok), 0);
    cr_assert_eq(weft_abort(&h), 0, "a second request is accepted");
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    check_delivered(&out, WEFT_CANCEL_TOKEN, "by-token");   /* the first asker */
    weft_token_release(tok);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct gowner {
    weft_frame f;
    weft_group *g;
    int64_t rc;
};

static weft_outcome gowner_out;

static weft_poll gowner_poll(weft_cx *cx, void *p)
{
    struct gowner *o = p;
    WEFT_BEGIN(&o->f);
    WEFT_AWAIT(&o->f, o->rc, weft_group_join_next(cx, o->g, &gowner_out));
    WEFT_RETURN(&o->f, o->rc);
    WEFT_END(&o->f);
}

Test(rules, provenance_group)
{
    weft_runtime *rt = rt_traced(2);
    weft_group *g;
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    struct park k;
    weft_task_desc d = park_desc(&k, "by-group", 0);
    cr_assert_eq(weft_group_spawn(g, &d), 0);
    flag_wait_ge(&parked, 1);
    cr_assert_eq(weft_group_cancel(g), 0);
    struct gowner o = { .g = g };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(gowner_poll, &o), &out), 0);
    cr_assert_eq(out.value, 1, "join_next: %ld", (long)out.value);
    check_delivered(&gowner_out, WEFT_CANCEL_GROUP, "by-group");
    cr_assert_eq(weft_group_free(g), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(rules, provenance_shutdown)
{
    weft_runtime *rt = rt_traced(2);
    struct park k;
    weft_task_desc d = park_desc(&k, "by-shutdown", 0);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&parked, 1);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    check_delivered(&out, WEFT_CANCEL_SHUTDOWN, "by-shutdown");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- weft_join_await_timeout ----------------------------------------------- */

struct jwaiter {
    weft_frame f;
    weft_join_timeout jt;
    weft_join h;
    weft_outcome out;
    uint64_t ns, t0, elapsed;
    int64_t rc;
};

static struct jwaiter last_jw;
static flag jw_drops, jw_waiting;

static void jw_drop(void *p)
{
    memcpy(&last_jw, p, sizeof last_jw);
    flag_add(&jw_drops, 1);
}

static weft_poll jwaiter_poll(weft_cx *cx, void *p)
{
    struct jwaiter *w = p;
    WEFT_BEGIN(&w->f);
    w->t0 = weft_now_ns();
    flag_add(&jw_waiting, 1);
    WEFT_AWAIT(&w->f, w->rc, weft_join_await_timeout(cx, &w->jt, &w->h, &w->out, w->ns));
    w->elapsed = weft_now_ns() - w->t0;
    WEFT_RETURN(&w->f, w->rc);
    WEFT_END(&w->f);
}

/* Spawn the target into a waiter's frame, then the waiter; join the waiter. */
static int64_t wait_with_timeout(weft_runtime *rt, const weft_task_desc *target, uint64_t ns,
                                 weft_join *waiter)
{
    struct jwaiter w = { .jt = WEFT_JOIN_TIMEOUT_INIT, .ns = ns };
    cr_assert_eq(weft_spawn(rt, target, &w.h), 0);
    weft_task_desc d = DESC(jwaiter_poll, &w, jw_drop, 0);
    weft_join local = WEFT_JOIN_INIT;
    weft_join *wh = waiter ? waiter : &local;
    cr_assert_eq(weft_spawn(rt, &d, wh), 0);
    if (waiter)
        return 0;
    weft_outcome out;
    cr_assert_eq(weft_join_wait(wh, &out), 0);
    cr_assert_eq(out.status, 0);
    return out.value;
}

/* A target that waits for a token (not bound to it) and records how it ended. */
static _Atomic int tgt_completed, tgt_saw_request;
static flag tgt_drops;

struct tgt {
    weft_frame f;
    weft_token *tok;
    weft_token_wait tw;
    int64_t rc;
};

static void tgt_drop(void *p)
{
    (void)p;
    flag_add(&tgt_drops, 1);
}

static int tgt_line;

static weft_poll tgt_poll(weft_cx *cx, void *p)
{
    struct tgt *t = p;
    WEFT_BEGIN(&t->f);
    tgt_line = __LINE__; WEFT_AWAIT(&t->f, t->rc, weft_token_cancelled(cx, t->tok, &t->tw));
    atomic_fetch_add(&tgt_completed, 1);
    if (weft_cx_cancel_requested(cx))
        atomic_fetch_add(&tgt_saw_request, 1);
    WEFT_RETURN(&t->f, t->rc == 0 ? 61 : t->rc);
    WEFT_END(&t->f);
}

static weft_task_desc tgt_desc(struct tgt *t, weft_token *tok, unsigned flags, const char *name)
{
    *t = (struct tgt){ .tok = tok, .tw = WEFT_TOKEN_WAIT_INIT };
    weft_task_desc d = DESC(tgt_poll, t, tgt_drop, flags);
    d.name = name;
    return d;
}

Test(rules, join_await_timeout_finishing_in_time_is_a_join)
{
    weft_runtime *rt = rt_make(2, 0);
    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    cr_assert_eq(weft_token_cancel(tok), 0);       /* the target finishes at once */
    struct tgt t;
    weft_task_desc d = tgt_desc(&t, tok, 0, NULL);
    cr_assert_eq(wait_with_timeout(rt, &d, 3600ull * 1000 * MS, NULL), 0);
    cr_assert_eq(last_jw.out.status, 0);
    cr_assert_eq(last_jw.out.value, 61);
    cr_assert_eq(last_jw.out.cancel.source, WEFT_CANCEL_NONE);
    cr_assert_null(last_jw.h.weft_task, "the handle is consumed");
    cr_assert_eq(atomic_load(&tgt_completed), 1);
    cr_assert_eq(flag_get(&tgt_drops), 1);
    weft_token_release(tok);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(rules, join_await_timeout_cooperative_target_keeps_running_detached)
{
    weft_runtime *rt = rt_make(2, 0);
    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    struct tgt t;
    weft_task_desc d = tgt_desc(&t, tok, 0, NULL);
    cr_assert_eq(wait_with_timeout(rt, &d, 5 * MS, NULL), -ETIMEDOUT);
    cr_assert_geq(last_jw.elapsed, 5 * MS, "timed out early: %lu ns",
                  (unsigned long)last_jw.elapsed);
    cr_assert_null(last_jw.h.weft_task, "a timed-out handle is given up");
    cr_assert_eq(flag_get(&tgt_drops), 0, "the work stopped with the waiting");
    /* The waiter has finished; the target, which only the token ends, has not. */
    cr_assert_eq(live_settled(rt, 1), 1, "the target is still running");
    cr_assert_eq(weft_token_cancel(tok), 0);       /* let it finish by itself */
    flag_wait_ge(&tgt_drops, 1);
    cr_assert_eq(atomic_load(&tgt_completed), 1);
    cr_assert_eq(atomic_load(&tgt_saw_request), 0, "the timeout cancelled a cooperative task");
    weft_token_release(tok);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(rules, join_await_timeout_tears_down_a_cancel_safe_target_with_source_timeout)
{
    weft_runtime *rt = rt_traced(2);
    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    struct tgt t;
    weft_task_desc d = tgt_desc(&t, tok, WEFT_TASK_CANCEL_SAFE, "safe-target");
    cr_assert_eq(wait_with_timeout(rt, &d, 2 * MS, NULL), -ETIMEDOUT);
    cr_assert_null(last_jw.h.weft_task);
    flag_wait_ge(&tgt_drops, 1);
    cr_assert_eq(atomic_load(&tgt_completed), 0, "a torn-down target was resumed");
    trace_rec tr = trace_of("safe-target");
    cr_assert_eq(tr.kind, WEFT_TRACE_TORN_DOWN);
    cr_assert_eq(tr.source, WEFT_CANCEL_TIMEOUT, "source %s",
                 weft_cancel_source_name(tr.source));
    cr_assert(tr.file && ends_with(tr.file, "test_cancel_rules.c"));
    cr_assert_eq(tr.line, tgt_line, "torn down at line %d, suspended at %d", tr.line, tgt_line);
    weft_token_release(tok);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(rules, join_await_timeout_waiter_aborted_keeps_the_handle)
{
    weft_runtime *rt = rt_make(2, 0);
    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    struct tgt t;
    weft_task_desc d = tgt_desc(&t, tok, WEFT_TASK_CANCEL_SAFE, NULL);
    weft_join waiter = WEFT_JOIN_INIT;
    wait_with_timeout(rt, &d, 3600ull * 1000 * MS, &waiter);
    flag_wait_ge(&jw_waiting, 1);
    cr_assert_eq(weft_abort(&waiter), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&waiter, &out), 0);
    cr_assert_eq(out.value, -ECANCELED);
    cr_assert_eq(flag_get(&tgt_drops), 0, "the waiter's cancellation stopped the target");
    /* The frame's copy of the handle is still good: the target is untouched. */
    cr_assert_not_null(last_jw.h.weft_task);
    cr_assert_not(weft_join_is_finished(&last_jw.h));
    cr_assert_eq(weft_token_cancel(tok), 0);
    cr_assert_eq(weft_join_wait(&last_jw.h, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 61);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_NONE);
    weft_token_release(tok);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* The deadline and the target's end at the same instant, many times. */
enum { RACE_N = 300 };
static _Atomic int race_completed[RACE_N], race_dropped[RACE_N];
static flag race_drops;

struct napper {
    weft_frame f;
    weft_sleep s;
    int id;
    int64_t rc;
};

static void napper_drop(void *p)
{
    atomic_fetch_add(&race_dropped[((struct napper *)p)->id], 1);
    flag_add(&race_drops, 1);
}

static weft_poll napper_poll(weft_cx *cx, void *p)
{
    struct napper *n = p;
    WEFT_BEGIN(&n->f);
    WEFT_AWAIT(&n->f, n->rc, weft_sleep_for(cx, &n->s, MS));
    atomic_fetch_add(&race_completed[n->id], 1);
    WEFT_RETURN(&n->f, 1000 + n->id);
    WEFT_END(&n->f);
}

Test(rules, join_await_timeout_racing_completion_loses_nothing)
{
    weft_runtime *rt = rt_make(2, 0);
    int timed_out = 0, joined = 0;
    for (int i = 0; i < RACE_N; i++) {
        bool safe = i % 2;
        struct napper n = { .s = WEFT_SLEEP_INIT, .id = i };
        weft_task_desc d = DESC(napper_poll, &n, napper_drop, safe ? WEFT_TASK_CANCEL_SAFE : 0);
        uint64_t ns = MS / 2 + (uint64_t)(i % 4) * (MS / 4);    /* 0.5 .. 1.25 ms */
        int64_t rc = wait_with_timeout(rt, &d, ns, NULL);
        if (rc == 0) {
            joined++;
            cr_assert_eq(last_jw.out.status, 0, "%d: status %d", i, last_jw.out.status);
            cr_assert_eq(last_jw.out.value, 1000 + i);
            cr_assert_eq(atomic_load(&race_completed[i]), 1);
            cr_assert_null(last_jw.h.weft_task);
        } else {
            cr_assert_eq(rc, -ETIMEDOUT, "%d: %ld", i, (long)rc);
            cr_assert_geq(last_jw.elapsed, ns);
            cr_assert_null(last_jw.h.weft_task);
            timed_out++;
        }
    }
    flag_wait_ge(&race_drops, RACE_N);
    for (int i = 0; i < RACE_N; i++) {
        cr_assert_eq(atomic_load(&race_dropped[i]), 1, "target %d dropped %d times", i,
                     atomic_load(&race_dropped[i]));
        int c = atomic_load(&race_completed[i]);
        if (i % 2)
            cr_assert(c == 0 || c == 1, "cancel-safe target %d completed %d times", i, c);
        else
            cr_assert_eq(c, 1, "cooperative target %d completed %d times", i, c);
    }
    cr_log_info("%d joined, %d timed out", joined, timed_out);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(rules, join_await_timeout_misuse)
{
    weft_runtime *rt = rt_make(1, 0);
    /* An empty handle: awaiting it with a timeout is -EINVAL, as for a join. */
    struct jwaiter w = { .jt = WEFT_JOIN_TIMEOUT_INIT, .ns = MS };
    weft_task_desc dw = DESC(jwaiter_poll, &w, jw_drop, 0);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &dw, &out), 0);
    cr_assert_eq(out.value, -EINVAL);
    cr_assert_eq(weft_join_await_timeout(NULL, NULL, NULL, NULL, 0), -EINVAL);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
