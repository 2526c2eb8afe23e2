/*
 * tests/core/test_spawn.c - spawning and joining: from tasks and from plain
 * threads, block_on, nesting, frame copies, drop hooks, yields, worker counts,
 * and the LIFO/steal paths of the scheduler.
 */
#include <sched.h>
#include <stdlib.h>

#include "core_util.h"
#include "runtime/worker.h"

TestSuite(spawn, .timeout = 60);

/* ---- a task that returns a value --------------------------------------- */

struct val {
    weft_frame f;
    int64_t v;
};

static weft_poll val_poll(weft_cx *cx, void *p)
{
    struct val *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_RETURN(&t->f, t->v);
    WEFT_END(&t->f);
}

static flag drops;

static void count_drop(void *p)
{
    (void)p;
    flag_add(&drops, 1);
}

Test(spawn, block_on_returns_value)
{
    weft_runtime *rt = rt_make(2, 0);
    struct val fr = { .v = 42 };
    weft_outcome out;
    memset(&out, 0xab, sizeof out);
    weft_task_desc d = DESC(val_poll, &fr, count_drop, 0);
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 42);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_NONE);
    cr_assert_null(out.cancel.delivered_at);
    cr_assert_eq(out.cancel.shield_held_ns, 0);
    cr_assert_eq(flag_get(&drops), 1);
    cr_assert_eq(weft_runtime_threads(rt), 2);
    rt_done(rt);
    cr_assert_eq(flag_get(&drops), 1);
    WEFT_ASSERT_NO_LEAKS();
}

Test(spawn, spawn_from_thread_and_join_wait)
{
    weft_runtime *rt = rt_make(2, 0);
    enum { N = 64 };
    weft_join h[N];
    for (int i = 0; i < N; i++) {
        struct val fr = { .v = 1000 + i };
        weft_task_desc d = DESC(val_poll, &fr, count_drop, 0);
        h[i] = (weft_join)WEFT_JOIN_INIT;
        cr_assert_eq(weft_spawn(rt, &d, &h[i]), 0);
        cr_assert_not_null(h[i].weft_task);
    }
    for (int i = N - 1; i >= 0; i--) {
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        cr_assert_eq(out.status, 0);
        cr_assert_eq(out.value, 1000 + i);
        cr_assert_null(h[i].weft_task, "a joined handle is empty");
    }
    cr_assert_eq(flag_get(&drops), N);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(spawn, default_threads_is_online_cpus)
{
    weft_runtime *rt = NULL;
    cr_assert_eq(weft_runtime_new(&rt, NULL), 0);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cr_assert_eq(weft_runtime_threads(rt), (unsigned)n);
    struct val fr = { .v = 7 };
    weft_task_desc d = WEFT_TASK(val_poll, &fr);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.value, 7);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- NULL frame is zeroed; the frame is a copy; frames never move ------- */

struct copy {
    weft_frame f;
    int64_t x;
    gate_leaf *gate;
    void *addr;
    int64_t rc;
    int64_t pad[8];
};

static _Atomic(void *) dropped_frame;
static _Atomic int64_t dropped_x;

static void copy_drop(void *p)
{
    struct copy *c = p;
    atomic_store(&dropped_frame, p);
    atomic_store(&dropped_x, c->x);
    flag_add(&drops, 1);
}

static weft_poll copy_poll(weft_cx *cx, void *p)
{
    struct copy *c = p;
    WEFT_BEGIN(&c->f);
    c->addr = c;
    WEFT_AWAIT(&c->f, c->rc, gate_poll(cx, c->gate));
    if (c->addr != (void *)c)
        WEFT_RETURN(&c->f, -1);     /* the frame moved */
    c->x += c->rc;
    WEFT_RETURN(&c->f, c->x);
    WEFT_END(&c->f);
}

Test(spawn, frame_is_copied_at_spawn_and_never_moves)
{
    weft_runtime *rt = rt_make(2, 0);
    gate_leaf g;
    gate_init(&g);
    struct copy fr = { .x = 5, .gate = &g };
    weft_task_desc d = DESC(copy_poll, &fr, copy_drop, 0);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    fr.x = 99;              /* must not reach the task */
    memset(fr.pad, 0xff, sizeof fr.pad);
    cr_assert_not(weft_join_is_finished(&h));
    gate_open(&g, 10);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 15);
    cr_assert_eq(flag_get(&drops), 1);
    cr_assert_eq(atomic_load(&dropped_x), 15, "drop sees the final frame");
    cr_assert_neq(atomic_load(&dropped_frame), (void *)&fr);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct zero {
    weft_frame f;
    int64_t a[16];
};

static weft_poll zero_poll(weft_cx *cx, void *p)
{
    struct zero *z = p;
    (void)cx;
    int64_t sum = 0;
    for (int i = 0; i < 16; i++)
        sum += z->a[i] != 0;
    return sum;
}

Test(spawn, null_frame_is_zeroed)
{
    weft_runtime *rt = rt_make(1, 0);
    weft_task_desc d = { .poll = zero_poll, .frame = NULL, .frame_size = sizeof(struct zero) };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- drop hook: exactly once, after return ------------------------------- */

static _Atomic int returned_before_drop;

struct order {
    weft_frame f;
    int done;
};

static void order_drop(void *p)
{
    struct order *o = p;
    atomic_store(&returned_before_drop, o->done);
    flag_add(&drops, 1);
}

static weft_poll order_poll(weft_cx *cx, void *p)
{
    struct order *o = p;
    int64_t rc;
    WEFT_BEGIN(&o->f);
    WEFT_YIELD(&o->f, rc);
    (void)rc;
    o->done = 1;
    WEFT_RETURN(&o->f, 3);
    WEFT_END(&o->f);
}

Test(spawn, drop_hook_runs_once_after_return)
{
    weft_runtime *rt = rt_make(2, 0);
    struct order fr = { 0 };
    weft_task_desc d = DESC(order_poll, &fr, order_drop, 0);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.value, 3);
    cr_assert_eq(flag_get(&drops), 1, "drop ran before join returned");
    cr_assert_eq(atomic_load(&returned_before_drop), 1);
    rt_done(rt);
    cr_assert_eq(flag_get(&drops), 1);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- spawn and join from tasks -------------------------------------------- */

enum { FAN = 1500 };
static weft_join fan_handles[FAN];
static _Atomic int fan_ran[FAN];
static _Atomic int fan_worker_mask;

struct child {
    weft_frame f;
    int idx;
    int64_t rc;
};

static weft_poll child_poll(weft_cx *cx, void *p)
{
    struct child *c = p;
    WEFT_BEGIN(&c->f);
    atomic_fetch_add(&fan_ran[c->idx], 1);
    if (weft__current_worker)
        atomic_fetch_or(&fan_worker_mask, 1 << weft__current_worker->index);
    if (c->idx % 3 == 0)
        WEFT_YIELD(&c->f, c->rc);
    WEFT_RETURN(&c->f, c->idx * 2);
    WEFT_END(&c->f);
}

struct parent {
    weft_frame f;
    int n;
    int i;
    int64_t sum;
    int64_t rc;
    weft_outcome out;
};

static weft_poll parent_poll(weft_cx *cx, void *p)
{
    struct parent *pa = p;
    WEFT_BEGIN(&pa->f);
    for (pa->i = 0; pa->i < pa->n; pa->i++) {
        struct child c = { .idx = pa->i };
        weft_task_desc d = DESC(child_poll, &c, count_drop, 0);
        fan_handles[pa->i] = (weft_join)WEFT_JOIN_INIT;
        int rc = weft_spawn(weft_cx_runtime(cx), &d, &fan_handles[pa->i]);
        if (rc)
            WEFT_RETURN(&pa->f, rc);
    }
    for (pa->i = 0; pa->i < pa->n; pa->i++) {
        WEFT_AWAIT(&pa->f, pa->rc, weft_join_await(cx, &fan_handles[pa->i], &pa->out));
        if (pa->rc != 0 || pa->out.status != 0 || pa->out.value != pa->i * 2)
            WEFT_RETURN(&pa->f, -1000 - pa->i);
        pa->sum += pa->out.value;
    }
    WEFT_RETURN(&pa->f, pa->sum);
    WEFT_END(&pa->f);
}

static void run_fan(unsigned threads, int n)
{
    memset(fan_ran, 0, sizeof fan_ran);
    flag_set(&drops, 0);
    weft_runtime *rt = rt_make(threads, 0);
    struct parent fr = { .n = n };
    weft_task_desc d = DESC(parent_poll, &fr, NULL, 0);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, (int64_t)n * (n - 1), "threads %u: %ld", threads, (long)out.value);
    for (int i = 0; i < n; i++)
        cr_assert_eq(atomic_load(&fan_ran[i]), 1, "child %d ran %d times", i,
                     atomic_load(&fan_ran[i]));
    cr_assert_eq(flag_get(&drops), (uint32_t)n);
    rt_done(rt);
}

Test(spawn, spawn_and_join_from_a_task_1_to_8_workers)
{
    for (unsigned threads = 1; threads <= 8; threads++)
        run_fan(threads, 300);
    WEFT_ASSERT_NO_LEAKS();
}

Test(spawn, many_children_from_one_task_on_4_workers)
{
    /* 1500 spawns from one poll overflow the local queue into inject; idle
     * workers steal. Every child runs exactly once. */
    atomic_store(&fan_worker_mask, 0);
    run_fan(4, FAN);
    cr_assert_neq(atomic_load(&fan_worker_mask), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- nested spawns -------------------------------------------------------- */

struct nest {
    weft_frame f;
    int depth;
    weft_join h;
    weft_outcome out;
    int64_t rc;
};

static weft_poll nest_poll(weft_cx *cx, void *p)
{
    struct nest *n = p;
    WEFT_BEGIN(&n->f);
    if (n->depth == 0)
        WEFT_RETURN(&n->f, 0);
    {
        struct nest c = { .depth = n->depth - 1 };
        weft_task_desc d = DESC(nest_poll, &c, count_drop, 0);
        n->h = (weft_join)WEFT_JOIN_INIT;
        int rc = weft_spawn(weft_cx_runtime(cx), &d, &n->h);
        if (rc)
            WEFT_RETURN(&n->f, rc);
    }
    WEFT_AWAIT(&n->f, n->rc, weft_join_await(cx, &n->h, &n->out));
    if (n->rc != 0)
        WEFT_RETURN(&n->f, n->rc);
    WEFT_RETURN(&n->f, n->out.value + 1);
    WEFT_END(&n->f);
}

Test(spawn, nested_spawns)
{
    weft_runtime *rt = rt_make(3, 0);
    struct nest fr = { .depth = 200 };
    weft_task_desc d = DESC(nest_poll, &fr, count_drop, 0);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 200);
    cr_assert_eq(flag_get(&drops), 201);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- spawn from many threads at once --------------------------------------- */

enum { SPAWN_THREADS = 8, PER_THREAD = 200 };
static weft_runtime *shared_rt;
static flag start_line;
static _Atomic int thread_failures;

static void *spawner(void *arg)
{
    intptr_t id = (intptr_t)arg;
    weft_join h[PER_THREAD];
    flag_wait_ge(&start_line, 1);
    for (int i = 0; i < PER_THREAD; i++) {
        struct val fr = { .v = id * 100000 + i };
        weft_task_desc d = DESC(val_poll, &fr, count_drop, 0);
        h[i] = (weft_join)WEFT_JOIN_INIT;
        if (weft_spawn(shared_rt, &d, &h[i]) != 0) {
            atomic_fetch_add(&thread_failures, 1);
            return NULL;
        }
    }
    for (int i = 0; i < PER_THREAD; i++) {
        weft_outcome out;
        if (weft_join_wait(&h[i], &out) != 0 || out.status != 0
            || out.value != id * 100000 + i)
            atomic_fetch_add(&thread_failures, 1);
    }
    return NULL;
}

Test(spawn, spawn_from_many_threads_at_once)
{
    shared_rt = rt_make(4, 0);
    pthread_t th[SPAWN_THREADS];
    for (intptr_t i = 0; i < SPAWN_THREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, spawner, (void *)i), 0);
    flag_set(&start_line, 1);
    for (int i = 0; i < SPAWN_THREADS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&thread_failures), 0);
    cr_assert_eq(flag_get(&drops), SPAWN_THREADS * PER_THREAD);
    rt_done(shared_rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- yields ----------------------------------------------------------------- */

struct yielder {
    weft_frame f;
    int i, n, ok;
    int64_t rc;
};

static weft_poll yielder_poll(weft_cx *cx, void *p)
{
    struct yielder *y = p;
    WEFT_BEGIN(&y->f);
    for (y->i = 0; y->i < y->n; y->i++) {
        WEFT_YIELD(&y->f, y->rc);
        y->ok += y->rc == 0;
    }
    WEFT_RETURN(&y->f, y->ok);
    WEFT_END(&y->f);
}

Test(spawn, yield_from_many_tasks)
{
    weft_runtime *rt = rt_make(4, 0);
    enum { N = 200, Y = 100 };
    static weft_join h[N];
    for (int i = 0; i < N; i++) {
        struct yielder fr = { .n = Y };
        weft_task_desc d = DESC(yielder_poll, &fr, count_drop, 0);
        h[i] = (weft_join)WEFT_JOIN_INIT;
        cr_assert_eq(weft_spawn(rt, &d, &h[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        cr_assert_eq(out.status, 0);
        cr_assert_eq(out.value, Y, "every yield returns 0");
    }
    cr_assert_eq(flag_get(&drops), N);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- the steal path: two tasks that can only finish in parallel ----------- */

/*
 * The parent spawns A then B from a worker: A goes to the LIFO slot, then B
 * displaces it into the local queue. B runs next on the same worker and spins
 * (without yielding) until A has started, so A can only run if another worker
 * steals it. A hang here is a lost wake-up or a broken steal.
 */
static _Atomic int pair_started[2];

struct spin {
    weft_frame f;
    int me;
};

static weft_poll spin_poll(weft_cx *cx, void *p)
{
    struct spin *s = p;
    (void)cx;
    atomic_store(&pair_started[s->me], 1);
    while (!atomic_load(&pair_started[!s->me]))
        sched_yield();
    return s->me;
}

struct pair_parent {
    weft_frame f;
    weft_join a, b;
    weft_outcome oa, ob;
    int64_t ra, rb;
};

static weft_poll pair_parent_poll(weft_cx *cx, void *p)
{
    struct pair_parent *pp = p;
    WEFT_BEGIN(&pp->f);
    {
        struct spin sa = { .me = 0 }, sb = { .me = 1 };
        weft_task_desc da = DESC(spin_poll, &sa, NULL, 0), db = DESC(spin_poll, &sb, NULL, 0);
        if (weft_spawn(weft_cx_runtime(cx), &da, &pp->a) || weft_spawn(weft_cx_runtime(cx), &db, &pp->b))
            WEFT_RETURN(&pp->f, -1);
    }
    WEFT_AWAIT(&pp->f, pp->ra, weft_join_await(cx, &pp->a, &pp->oa));
    WEFT_AWAIT(&pp->f, pp->rb, weft_join_await(cx, &pp->b, &pp->ob));
    WEFT_RETURN(&pp->f, pp->ra == 0 && pp->rb == 0 && pp->oa.value == 0 && pp->ob.value == 1);
    WEFT_END(&pp->f);
}

Test(spawn, steal_path_two_tasks_that_need_two_workers)
{
    weft_runtime *rt = rt_make(4, 0);
    for (int round = 0; round < 50; round++) {
        atomic_store(&pair_started[0], 0);
        atomic_store(&pair_started[1], 0);
        struct pair_parent fr = { .a = WEFT_JOIN_INIT, .b = WEFT_JOIN_INIT };
        weft_task_desc d = DESC(pair_parent_poll, &fr, NULL, 0);
        weft_outcome out;
        cr_assert_eq(weft_block_on(rt, &d, &out), 0);
        cr_assert_eq(out.status, 0);
        cr_assert_eq(out.value, 1, "round %d", round);
    }
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* A burst of spawns from a task that then stays in its poll until every
 * child but the last has run: those can only run on the other worker (the
 * last one waits in the LIFO slot, which only the spawner's worker takes).
 * A push wakes a sleeper only when it makes the queue non-empty or half
 * full (the rest had their wake-up decided already), so this checks that
 * the burst still reaches the idle worker, below half a queue and past it
 * (the spawner overflowing to the inject queue). A hang is a lost wake-up. */
static _Atomic int burst_ran;

static weft_poll burst_child_poll(weft_cx *cx, void *p)
{
    (void)cx;
    (void)p;
    atomic_fetch_add(&burst_ran, 1);
    return 0;
}

struct burst_parent {
    weft_frame f;
    int children;
};

static weft_poll burst_parent_poll(weft_cx *cx, void *p)
{
    struct burst_parent *bp = p;
    for (int i = 0; i < bp->children; i++) {
        struct weft_frame child = { 0 };
        weft_task_desc d = DESC(burst_child_poll, &child, NULL, 0);
        if (weft_spawn_detached(weft_cx_runtime(cx), &d) != 0)
            return -1;
    }
    while (atomic_load(&burst_ran) < bp->children - 1)
        sched_yield();
    return 0;
}

Test(spawn, a_burst_reaches_the_idle_worker_while_its_spawner_stays_busy)
{
    weft_runtime *rt = rt_make(2, 0);
    static const int sizes[] = { 2, 3, 50, 128, 129, 130, 300, 1000 };
    for (int round = 0; round < 40; round++) {
        struct burst_parent bp = { .children = sizes[round % 8] };
        atomic_store(&burst_ran, 0);
        weft_task_desc d = DESC(burst_parent_poll, &bp, NULL, 0);
        weft_outcome out;
        cr_assert_eq(weft_block_on(rt, &d, &out), 0);
        cr_assert_eq(out.status, 0);
        cr_assert_eq(out.value, 0, "round %d", round);
    }
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- join state --------------------------------------------------------------- */

struct gated {
    weft_frame f;
    gate_leaf *g;
    int64_t rc;
};

static weft_poll gated_poll(weft_cx *cx, void *p)
{
    struct gated *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->rc, gate_poll(cx, t->g));
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

Test(spawn, live_tasks_and_is_finished)
{
    weft_runtime *rt = rt_make(2, 0);
    enum { N = 10 };
    gate_leaf g[N];
    weft_join h[N];
    for (int i = 0; i < N; i++) {
        gate_init(&g[i]);
        struct gated fr = { .g = &g[i] };
        weft_task_desc d = DESC(gated_poll, &fr, count_drop, 0);
        h[i] = (weft_join)WEFT_JOIN_INIT;
        cr_assert_eq(weft_spawn(rt, &d, &h[i]), 0);
    }
    cr_assert_eq(weft_runtime_live_tasks(rt), N);
    for (int i = 0; i < N; i++) {
        cr_assert_not(weft_join_is_finished(&h[i]));
        gate_open(&g[i], i);
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        cr_assert_eq(out.value, i);
        cr_assert_not(weft_join_is_finished(&h[i]), "empty handle");
    }
    cr_assert_eq(flag_get(&drops), N);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct joiner {
    weft_frame f;
    weft_join *h;
    weft_outcome out;
    int64_t rc;
};

static weft_poll joiner_poll(weft_cx *cx, void *p)
{
    struct joiner *j = p;
    WEFT_BEGIN(&j->f);
    WEFT_AWAIT(&j->f, j->rc, weft_join_await(cx, j->h, &j->out));
    if (j->rc != 0)
        WEFT_RETURN(&j->f, j->rc);
    WEFT_RETURN(&j->f, j->out.value);
    WEFT_END(&j->f);
}

Test(spawn, join_await_from_task_on_finished_task)
{
    /* The child finishes before a task awaits it: the await completes at
     * once with the child's outcome and empties the handle. */
    weft_runtime *rt = rt_make(2, 0);
    struct val c = { .v = 77 };
    weft_task_desc dc = DESC(val_poll, &c, count_drop, 0);
    static weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &dc, &h), 0);
    while (!weft_join_is_finished(&h))
        sched_yield();
    struct joiner fr = { .h = &h };
    weft_task_desc d = DESC(joiner_poll, &fr, NULL, 0);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 77);
    cr_assert_null(h.weft_task);
    cr_assert_eq(flag_get(&drops), 1);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a task that finishes on another worker than the one it was spawned on -- */

/*
 * P, on worker A, spawns C1 then C2: C2 takes the LIFO slot and pushes C1 to
 * A's queue. A runs C2, which spins until C1 has started, so C1 is stolen by
 * B. C1 then spins (without yielding, so A cannot steal it back) until A has
 * gone to sleep, and returns: its registry entry is handed back to A's shard.
 * Every task has now finished, so the live count must drop to 0 although A
 * sleeps on.
 */
#include "runtime/rt.h"

static weft_runtime *ho_rt;
static _Atomic int ho_a = -1, ho_b = -1;
static _Atomic int ho_c1_started;
static weft_join ho_c1, ho_c2;

static weft_poll ho_c1_poll(weft_cx *cx, void *p)
{
    (void)cx;
    (void)p;
    atomic_store(&ho_b, (int)weft__current_worker->index);
    atomic_store(&ho_c1_started, 1);
    int a = atomic_load(&ho_a);
    if (a == (int)weft__current_worker->index)
        return -1;      /* not stolen: cannot happen, C2 holds A */
    while (!weft__idle_is_sleeper(&ho_rt->idle, (uint32_t)a))
        sched_yield();
    return 1;
}

static weft_poll ho_c2_poll(weft_cx *cx, void *p)
{
    (void)cx;
    (void)p;
    while (!atomic_load(&ho_c1_started))
        sched_yield();
    return 2;
}

static weft_poll ho_parent_poll(weft_cx *cx, void *p)
{
    (void)p;
    atomic_store(&ho_a, (int)weft__current_worker->index);
    weft_frame f1 = { 0 }, f2 = { 0 };
    weft_task_desc d1 = DESC(ho_c1_poll, &f1, NULL, 0), d2 = DESC(ho_c2_poll, &f2, NULL, 0);
    if (weft_spawn(weft_cx_runtime(cx), &d1, &ho_c1) || weft_spawn(weft_cx_runtime(cx), &d2, &ho_c2))
        return -1;
    return 0;
}

Test(spawn, live_tasks_counts_tasks_finished_on_another_worker)
{
    ho_rt = rt_make(2, 0);
    weft_frame fr = { 0 };
    weft_task_desc d = DESC(ho_parent_poll, &fr, NULL, 0);
    weft_outcome out;
    cr_assert_eq(weft_block_on(ho_rt, &d, &out), 0);
    cr_assert_eq(out.value, 0);
    cr_assert_eq(weft_join_wait(&ho_c1, &out), 0);
    cr_assert_eq(out.value, 1);
    cr_assert_eq(weft_join_wait(&ho_c2, &out), 0);
    cr_assert_eq(out.value, 2);
    cr_assert_neq(atomic_load(&ho_a), atomic_load(&ho_b));
    /* A completing worker updates the count just after COMPLETE */
    size_t live = live_settled(ho_rt, 0);
    cr_assert_eq(live, 0, "%zu task(s) still counted live after every task finished", live);
    rt_done(ho_rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- pinning and names ------------------------------------------------------ */

struct where {
    weft_frame f;
};

/* Returns how many CPUs the polling worker may run on, or -1; checks the name. */
static weft_poll where_poll(weft_cx *cx, void *p)
{
    (void)p;
    const char *name = weft_cx_task_name(cx);
    if (!name || strcmp(name, "where") != 0)
        return -2;
    cpu_set_t set;
    if (pthread_getaffinity_np(pthread_self(), sizeof set, &set) != 0)
        return -1;
    return CPU_COUNT(&set);
}

Test(spawn, pinned_workers_run_on_one_cpu_and_names_are_visible)
{
    weft_runtime_opts o = { .threads = 2, .pin_workers = true };
    weft_runtime *rt;
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    for (int i = 0; i < 8; i++) {
        struct where fr = { 0 };
        weft_task_desc d = { .poll = where_poll, .frame = &fr, .frame_size = sizeof fr,
                             .name = "where" };
        weft_outcome out;
        cr_assert_eq(weft_block_on(rt, &d, &out), 0);
        cr_assert_eq(out.value, 1, "a pinned worker may run on %lld CPUs", (long long)out.value);
    }
    cr_assert_null(weft_cx_task_name(NULL));
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}
