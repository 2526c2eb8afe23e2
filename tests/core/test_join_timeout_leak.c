/*
 * tests/core/test_join_timeout_leak.c - the join-timeout paths leak nothing.
 *
 * A leak report from a fuzz of the public API (task objects outliving their
 * runtime, only with join timeouts enabled) named these paths; each test
 * drives one of them to its end and asserts that every task's drop hook ran
 * once and that LeakSanitizer finds nothing once the runtime is freed:
 *   - a task's weft_join_await_timeout runs out: the handle is given up, a
 *     cooperative target finishes detached, a cancel-safe one is torn down
 *     with source TIMEOUT;
 *   - the waiter itself is cancelled in the wait: the handle stays its own
 *     (cooperative waiter), or its drop hook gets it back (cancel-safe
 *     waiter torn down while its select settles);
 *   - the deadline races the target's completion, from a task and from a
 *     plain thread (weft_join_wait_timeout), many times;
 *   - shutdown finds waiters in the middle of timed joins;
 *   - a drop hook run by the shutdown sweep tries to join a child it still
 *     holds: refused with -EDEADLK as on a worker (it used to hang the
 *     sweep, waiting for a child only the sweep could tear down).
 * Tasks and the test thread synchronise on futex flags and gates, never on
 * sleeps; the timeouts are the code under test, not a way to wait.
 */
#include "core_util.h"

#define HOUR_NS (3600ull * 1000000000ull)
#define MS_NS 1000000ull

static flag target_drops, waiter_drops;

static void target_drop(void *p)
{
    (void)p;
    flag_add(&target_drops, 1);
}

/* ---- targets ---------------------------------------------------------------- */

/* Waits on a gate the test thread opens, then returns what it was given. */
struct gated {
    weft_frame f;
    gate_leaf *gate;
    weft_poll rc;
};

static weft_poll gated_poll(weft_cx *cx, void *p)
{
    struct gated *g = p;
    WEFT_BEGIN(&g->f);
    WEFT_AWAIT(&g->f, g->rc, gate_poll(cx, g->gate));
    WEFT_RETURN(&g->f, g->rc);
    WEFT_END(&g->f);
}

/* Returns at once, or after one yield. */
struct quick {
    weft_frame f;
    int yields;
    weft_poll rc;
};

static weft_poll quick_poll(weft_cx *cx, void *p)
{
    struct quick *q = p;
    WEFT_BEGIN(&q->f);
    while (q->yields-- > 0)
        WEFT_YIELD(&q->f, q->rc);
    WEFT_RETURN(&q->f, 7);
    WEFT_END(&q->f);
}

/* ---- the waiter ---------------------------------------------------------------- */

/* Awaits h with a limit; records the result and whether the handle survived. */
struct waiter {
    weft_frame f;
    weft_join h;
    weft_join_timeout jt;
    weft_outcome out;
    uint64_t ns;
    weft_poll rc;
    flag *started;          /* bumped just before the await */
    _Atomic int64_t *result;
    _Atomic bool *kept;     /* the handle was still full after the await */
};

static void waiter_drop(void *p)
{
    struct waiter *w = p;
    if (w->h.weft_task)     /* a torn-down waiter still owns its handle */
        cr_assert_eq(weft_detach(&w->h), 0);
    flag_add(&waiter_drops, 1);
}

static weft_poll waiter_poll(weft_cx *cx, void *p)
{
    struct waiter *w = p;
    WEFT_BEGIN(&w->f);
    if (w->started)
        flag_add(w->started, 1);
    WEFT_AWAIT(&w->f, w->rc, weft_join_await_timeout(cx, &w->jt, &w->h, &w->out, w->ns));
    if (w->result)
        atomic_store(w->result, w->rc);
    if (w->kept)
        atomic_store(w->kept, w->h.weft_task != NULL);
    WEFT_RETURN(&w->f, w->rc);
    WEFT_END(&w->f);
}

/* Spawn a waiter that takes over *target (the handle moves into its frame). */
static void spawn_waiter(weft_runtime *rt, weft_join *target, uint64_t ns, unsigned flags,
                         struct waiter *init, weft_join *h)
{
    init->h = *target;
    init->jt = (weft_join_timeout)WEFT_JOIN_TIMEOUT_INIT;
    init->ns = ns;
    weft_task_desc d = DESC(waiter_poll, init, waiter_drop, flags);
    cr_assert_eq(weft_spawn(rt, &d, h), 0);
    *target = (weft_join)WEFT_JOIN_INIT;
}

static void reset(void)
{
    flag_set(&target_drops, 0);
    flag_set(&waiter_drops, 0);
}

static void spawn_gated(weft_runtime *rt, gate_leaf *gate, unsigned flags, weft_join *h)
{
    struct gated g = { .gate = gate };
    weft_task_desc d = DESC(gated_poll, &g, target_drop, flags);
    cr_assert_eq(weft_spawn(rt, &d, h), 0);
}

/* ---- a task's wait runs out ------------------------------------------------------ */

Test(join_timeout_leak, task_timeout_leaves_a_cooperative_target_running_detached)
{
    reset();
    weft_runtime *rt = rt_make(2, 0);
    gate_leaf gate;
    gate_init(&gate);
    weft_join target, wh;
    spawn_gated(rt, &gate, 0, &target);
    gate_wait_armed(&gate);
    _Atomic int64_t result = 0;
    _Atomic bool kept = true;
    struct waiter w = { .result = &result, .kept = &kept };
    spawn_waiter(rt, &target, MS_NS, 0, &w, &wh);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&wh, &out), 0);
    cr_assert_eq(atomic_load(&result), -ETIMEDOUT);
    cr_assert(!atomic_load(&kept), "a timed-out handle is given up");
    cr_assert_eq(flag_get(&target_drops), 0, "timeouts stop the waiting, not the work");
    gate_open(&gate, 5);
    flag_wait_ge(&target_drops, 1);
    rt_done(rt);
    cr_assert_eq(flag_get(&target_drops), 1);
    cr_assert_eq(flag_get(&waiter_drops), 1);
    WEFT_ASSERT_NO_LEAKS();
}

static _Atomic int torn_down_by_timeout;

static void count_timeout_teardown(const weft_trace_event *ev, void *arg)
{
    (void)arg;
    if (ev->kind == WEFT_TRACE_TORN_DOWN && ev->source == WEFT_CANCEL_TIMEOUT)
        atomic_fetch_add(&torn_down_by_timeout, 1);
}

Test(join_timeout_leak, task_timeout_tears_a_cancel_safe_target_down)
{
    reset();
    atomic_store(&torn_down_by_timeout, 0);
    weft_runtime *rt = NULL;
    weft_runtime_opts o = { .threads = 2, .trace = count_timeout_teardown };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    gate_leaf gate;
    gate_init(&gate);
    weft_join target, wh;
    spawn_gated(rt, &gate, WEFT_TASK_CANCEL_SAFE, &target);
    gate_wait_armed(&gate);
    _Atomic int64_t result = 0;
    struct waiter w = { .result = &result };
    spawn_waiter(rt, &target, MS_NS, 0, &w, &wh);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&wh, &out), 0);
    cr_assert_eq(atomic_load(&result), -ETIMEDOUT);
    flag_wait_ge(&target_drops, 1);     /* torn down, never resumed */
    cr_assert_eq(atomic_load(&torn_down_by_timeout), 1);
    pthread_mutex_lock(&gate.lock);
    cr_assert_eq(gate.hook_calls, 1, "the gate was withdrawn once");
    pthread_mutex_unlock(&gate.lock);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- the waiter is cancelled in the wait ------------------------------------------ */

Test(join_timeout_leak, cancelled_waiter_keeps_the_handle_and_gives_it_back)
{
    reset();
    weft_runtime *rt = rt_make(2, 0);
    gate_leaf gate;
    gate_init(&gate);
    weft_join target, wh;
    spawn_gated(rt, &gate, 0, &target);
    gate_wait_armed(&gate);
    flag started = { 0 };
    _Atomic int64_t result = 0;
    _Atomic bool kept = false;
    struct waiter w = { .started = &started, .result = &result, .kept = &kept };
    spawn_waiter(rt, &target, HOUR_NS, 0, &w, &wh);
    flag_wait_ge(&started, 1);
    cr_assert_eq(weft_abort(&wh), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&wh, &out), 0);
    cr_assert_eq(atomic_load(&result), -ECANCELED);
    cr_assert(atomic_load(&kept), "a cancelled wait keeps the handle; the drop hook detaches it");
    cr_assert_eq(flag_get(&target_drops), 0);
    gate_open(&gate, 5);
    flag_wait_ge(&target_drops, 1);
    rt_done(rt);
    cr_assert_eq(flag_get(&waiter_drops), 1);
    WEFT_ASSERT_NO_LEAKS();
}

Test(join_timeout_leak, cancel_safe_waiter_torn_down_in_the_wait)
{
    reset();
    weft_runtime *rt = rt_make(2, 0);
    enum { N = 32 };
    gate_leaf gates[N];
    weft_join wh[N];
    flag started = { 0 };
    struct waiter w[N];
    for (int i = 0; i < N; i++) {
        gate_init(&gates[i]);
        weft_join target;
        spawn_gated(rt, &gates[i], i % 2 ? WEFT_TASK_CANCEL_SAFE : 0, &target);
        gate_wait_armed(&gates[i]);
        w[i] = (struct waiter){ .started = &started };
        /* Limits around the abort: some waits run out first, some do not. */
        spawn_waiter(rt, &target, (uint64_t)(i % 4) * MS_NS / 2, WEFT_TASK_CANCEL_SAFE, &w[i],
                     &wh[i]);
    }
    flag_wait_ge(&started, N);
    for (int i = 0; i < N; i++)
        cr_assert_geq(weft_abort(&wh[i]), 0);
    for (int i = 0; i < N; i++)
        gate_open(&gates[i], i);
    for (int i = 0; i < N; i++) {
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&wh[i], &out), 0);
    }
    flag_wait_ge(&target_drops, N);
    rt_done(rt);
    cr_assert_eq(flag_get(&target_drops), N);
    cr_assert_eq(flag_get(&waiter_drops), N);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- the deadline races the target's end ------------------------------------------ */

Test(join_timeout_leak, task_deadline_racing_completion)
{
    reset();
    weft_runtime *rt = rt_make(3, 0);
    enum { ROUNDS = 400 };
    for (int i = 0; i < ROUNDS; i++) {
        struct quick q = { .yields = i % 3 };
        weft_join target, wh;
        weft_task_desc d = DESC(quick_poll, &q, target_drop, i % 2 ? WEFT_TASK_CANCEL_SAFE : 0);
        cr_assert_eq(weft_spawn(rt, &d, &target), 0);
        _Atomic int64_t result = 0;
        struct waiter w = { .result = &result };
        spawn_waiter(rt, &target, (uint64_t)(i % 5) * 20000, (i / 2) % 2 ? WEFT_TASK_CANCEL_SAFE : 0,
                     &w, &wh);
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&wh, &out), 0);
        int64_t r = atomic_load(&result);
        cr_assert(r == 0 || r == -ETIMEDOUT, "round %d: %lld", i, (long long)r);
    }
    flag_wait_ge(&target_drops, ROUNDS);
    rt_done(rt);
    cr_assert_eq(flag_get(&waiter_drops), ROUNDS);
    WEFT_ASSERT_NO_LEAKS();
}

Test(join_timeout_leak, thread_deadline_racing_completion)
{
    reset();
    weft_runtime *rt = rt_make(2, 0);
    enum { ROUNDS = 400 };
    int timed_out = 0;
    for (int i = 0; i < ROUNDS; i++) {
        struct quick q = { .yields = i % 3 };
        weft_join h;
        weft_task_desc d = DESC(quick_poll, &q, target_drop, i % 2 ? WEFT_TASK_CANCEL_SAFE : 0);
        cr_assert_eq(weft_spawn(rt, &d, &h), 0);
        weft_outcome out;
        int rc = weft_join_wait_timeout(&h, &out, (uint64_t)(i % 5) * 10000);
        cr_assert(rc == 0 || rc == -ETIMEDOUT);
        cr_assert_null(h.weft_task, "joined or given up");
        timed_out += rc == -ETIMEDOUT;
    }
    flag_wait_ge(&target_drops, ROUNDS);
    rt_done(rt);
    cr_log_info("%d of %d waits timed out", timed_out, ROUNDS);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- shutdown finds waiters in timed joins ----------------------------------------- */

Test(join_timeout_leak, shutdown_with_waiters_in_timed_joins)
{
    reset();
    weft_runtime *rt = rt_make(3, 5);
    enum { N = 24 };
    gate_leaf gates[N];
    flag started = { 0 };
    weft_join wh[N];
    struct waiter w[N];
    for (int i = 0; i < N; i++) {
        gate_init(&gates[i]);
        weft_join target;
        spawn_gated(rt, &gates[i], i % 3 == 0 ? WEFT_TASK_CANCEL_SAFE : 0, &target);
        gate_wait_armed(&gates[i]);
        w[i] = (struct waiter){ .started = &started };
        spawn_waiter(rt, &target, HOUR_NS, i % 2 ? WEFT_TASK_CANCEL_SAFE : 0, &w[i], &wh[i]);
    }
    flag_wait_ge(&started, N);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    for (int i = 0; i < N; i++) {
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&wh[i], &out), 0);
        cr_assert_eq(out.cancel.source, WEFT_CANCEL_SHUTDOWN);
    }
    rt_done(rt);
    cr_assert_eq(flag_get(&target_drops), N);
    cr_assert_eq(flag_get(&waiter_drops), N);
    for (int i = 0; i < N; i++)
        gate_release(&gates[i]);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- drop hooks at shutdown ---------------------------------------------------------- */

/*
 * A drop hook that would rather join its child than detach it asks
 * weft_join_wait(_timeout) first: on a worker both answer -EDEADLK. The
 * shutdown sweep runs drop hooks on the thread that called shutdown, after
 * the workers have stopped, and must answer the same: the child may be one
 * the sweep has yet to tear down, and nothing else would ever finish it.
 */
struct stuck {
    weft_frame f;
    forever_leaf wait;
    weft_poll rc;
};

static weft_poll stuck_poll(weft_cx *cx, void *p)
{
    struct stuck *s = p;
    WEFT_BEGIN(&s->f);
    WEFT_AWAIT(&s->f, s->rc, forever_poll(cx, &s->wait));
    WEFT_RETURN(&s->f, s->rc);
    WEFT_END(&s->f);
}

struct parent {
    weft_frame f;
    weft_join child;
    forever_leaf wait;
    weft_poll rc;
    flag *armed;
    _Atomic int *timed_rc, *join_rc;
};

static void parent_drop(void *p)
{
    struct parent *pa = p;
    weft_outcome out;
    int rc = weft_join_wait_timeout(&pa->child, &out, HOUR_NS);
    atomic_store(pa->timed_rc, rc);
    if (rc == -EDEADLK)
        atomic_store(pa->join_rc, weft_join_wait(&pa->child, &out));
    if (pa->child.weft_task)
        weft_detach(&pa->child);
    flag_add(&waiter_drops, 1);
}

/* Spawns its child from a worker (so the child sits in that worker's
 * registry shard, which the sweep reaches after the outside one where the
 * test thread put the parent), then waits for ever, shielded. */
static weft_poll parent_poll(weft_cx *cx, void *p)
{
    struct parent *pa = p;
    WEFT_BEGIN(&pa->f);
    {
        struct stuck s = { .wait = { .on_arm = pa->armed } };
        weft_task_desc d = DESC(stuck_poll, &s, target_drop, WEFT_TASK_SHIELDED);
        if (weft_spawn(weft_cx_runtime(cx), &d, &pa->child) != 0)
            WEFT_RETURN(&pa->f, -1);
    }
    pa->wait.on_arm = pa->armed;
    WEFT_AWAIT(&pa->f, pa->rc, forever_poll(cx, &pa->wait));
    WEFT_RETURN(&pa->f, pa->rc);
    WEFT_END(&pa->f);
}

Test(join_timeout_leak, drop_hook_joining_in_the_shutdown_sweep_is_refused, .timeout = 60)
{
    reset();
    weft_runtime *rt = rt_make(2, 1);
    flag armed = { 0 };
    _Atomic int timed_rc = 1, join_rc = 1;
    struct parent pa = { .armed = &armed, .timed_rc = &timed_rc, .join_rc = &join_rc };
    weft_task_desc d = DESC(parent_poll, &pa, parent_drop, WEFT_TASK_SHIELDED);
    cr_assert_eq(weft_spawn_detached(rt, &d), 0);
    flag_wait_ge(&armed, 2);            /* parent and child both waiting */
    /* Shielded, both outlive the grace period: the sweep tears them down,
     * the parent first. Before the fix its drop hook waited for ever here. */
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(atomic_load(&timed_rc), -EDEADLK);
    cr_assert_eq(atomic_load(&join_rc), -EDEADLK);
    cr_assert_eq(flag_get(&waiter_drops), 1);
    cr_assert_eq(flag_get(&target_drops), 1);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
