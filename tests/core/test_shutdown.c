/*
 * tests/core/test_shutdown.c - runtime shutdown with live tasks of every kind,
 * join handles that outlive the runtime, and the calls that must refuse to run
 * on a worker thread.
 */
#include <sched.h>

#include "core_util.h"
#include "runtime/task.h"

TestSuite(shutdown, .timeout = 60);

/* Per-task bookkeeping, indexed by the id in the frame. */
enum { MAXT = 256 };
static _Atomic int dropped[MAXT];
static _Atomic int past_await[MAXT];
static flag armed, drops;

enum kind {
    COOP,           /* returns its own value when cancelled */
    SAFE,           /* cancel-safe: torn down at once */
    SHIELDED,       /* spawned WEFT_TASK_SHIELDED: ignores it, torn down after grace */
    IN_SHIELD,      /* enters a shield region itself: same */
    SPIN_SHIELDED,  /* shielded and busy yielding: torn down from a run queue */
};

struct victim {
    weft_frame f;
    int id;
    enum kind kind;
    forever_leaf leaf;
    int64_t rc;
    int spawn_rc;
};

static void victim_drop(void *p)
{
    struct victim *v = p;
    atomic_fetch_add(&dropped[v->id], 1);
    flag_add(&drops, 1);
}

static weft_poll victim_poll(weft_cx *cx, void *p)
{
    struct victim *v = p;
    WEFT_BEGIN(&v->f);
    if (v->kind == IN_SHIELD)
        weft_shield_enter(cx);
    if (v->kind == SPIN_SHIELDED) {
        flag_add(&armed, 1);
        for (;;) {
            WEFT_YIELD(&v->f, v->rc);
            if (v->rc != 0)
                break;
        }
    } else {
        v->leaf.on_arm = &armed;
        WEFT_AWAIT(&v->f, v->rc, forever_poll(cx, &v->leaf));
    }
    atomic_fetch_add(&past_await[v->id], 1);
    /* Spawning while the runtime closes is refused. */
    {
        struct victim c = { .id = MAXT - 1 };
        weft_task_desc d = DESC(victim_poll, &c, victim_drop, 0);
        weft_join h = WEFT_JOIN_INIT;
        v->spawn_rc = weft_spawn(weft_cx_runtime(cx), &d, &h);
        if (v->spawn_rc == 0)
            weft_detach(&h);
    }
    WEFT_RETURN(&v->f, v->rc == -ECANCELED && v->spawn_rc == -ESHUTDOWN ? 100 + v->id : -1);
    WEFT_END(&v->f);
}

static unsigned kind_flags(enum kind k)
{
    switch (k) {
    case SAFE: return WEFT_TASK_CANCEL_SAFE;
    case SHIELDED: return WEFT_TASK_SHIELDED;
    case SPIN_SHIELDED: return WEFT_TASK_SHIELDED;
    default: return 0;
    }
}

static void spawn_victim(weft_runtime *rt, int id, enum kind k, weft_join *h)
{
    struct victim fr = { .id = id, .kind = k };
    weft_task_desc d = DESC(victim_poll, &fr, victim_drop, kind_flags(k));
    cr_assert_eq(weft_spawn(rt, &d, h), 0);
}

static void check_victim(int id, enum kind k, const weft_outcome *out)
{
    cr_assert_eq(atomic_load(&dropped[id]), 1, "task %d dropped %d times", id,
                 atomic_load(&dropped[id]));
    cr_assert_eq(out->cancel.source, WEFT_CANCEL_SHUTDOWN, "task %d (kind %d): source %d", id,
                 k, out->cancel.source);
    if (k == COOP) {
        cr_assert_eq(out->status, 0, "cooperative task %d: status %d (torn down instead of "
                     "returning)", id, out->status);
        cr_assert_eq(out->value, 100 + id, "task %d value %ld", id, (long)out->value);
        cr_assert_not_null(out->cancel.delivered_at);
        cr_assert_eq(atomic_load(&past_await[id]), 1);
    } else {
        cr_assert_eq(out->status, -ECANCELED, "task %d (kind %d) status %d", id, k, out->status);
        cr_assert_eq(atomic_load(&past_await[id]), 0, "task %d resumed past its await", id);
    }
}

/* ---- tasks spawned from a thread ------------------------------------------ */

Test(shutdown, live_tasks_spawned_from_a_thread)
{
    weft_runtime *rt = rt_make(2, 300);
    static const enum kind kinds[] = { COOP, SAFE, SHIELDED, IN_SHIELD, SPIN_SHIELDED,
                                       COOP, SAFE, COOP };
    enum { N = sizeof kinds / sizeof *kinds };
    weft_join h[N];
    for (int i = 0; i < N; i++) {
        h[i] = (weft_join)WEFT_JOIN_INIT;
        spawn_victim(rt, i, kinds[i], &h[i]);
    }
    flag_wait_ge(&armed, N);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(flag_get(&drops), N, "every drop hook ran during shutdown");
    cr_assert_eq(weft_runtime_live_tasks(rt), 0);
    for (int i = 0; i < N; i++) {
        cr_assert(weft_join_is_finished(&h[i]));
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        check_victim(i, kinds[i], &out);
    }
    cr_assert_eq(weft_runtime_shutdown(rt), 0, "shutdown twice");
    rt_done(rt);
    cr_assert_eq(flag_get(&drops), N);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- the same, spawned from a task (so they sit in a worker's shard) ------ */

static weft_join task_spawned[8];
static const enum kind task_kinds[8] = { COOP, SAFE, SHIELDED, IN_SHIELD, SPIN_SHIELDED,
                                         COOP, SAFE, COOP };

struct spawner {
    weft_frame f;
};

static weft_poll spawner_poll(weft_cx *cx, void *p)
{
    (void)p;
    for (int i = 0; i < 8; i++) {
        struct victim fr = { .id = i, .kind = task_kinds[i] };
        weft_task_desc d = DESC(victim_poll, &fr, victim_drop, kind_flags(task_kinds[i]));
        task_spawned[i] = (weft_join)WEFT_JOIN_INIT;
        if (weft_spawn(weft_cx_runtime(cx), &d, &task_spawned[i]) != 0)
            return -1;
    }
    return 0;
}

Test(shutdown, live_tasks_spawned_from_a_task)
{
    weft_runtime *rt = rt_make(2, 300);
    struct spawner fr = { 0 };
    weft_task_desc d = DESC(spawner_poll, &fr, NULL, 0);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.value, 0);
    flag_wait_ge(&armed, 8);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(flag_get(&drops), 8);
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(weft_join_wait(&task_spawned[i], &out), 0);
        check_victim(i, task_kinds[i], &out);
    }
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cooperative tasks do not wait for the grace period --------------------- */

/* Every task returns as soon as it sees the request, so shutdown must not wait
 * out the grace period. The grace is an hour: a runtime that waited for it
 * would hit the test's timeout, which only detects the hang and judges no
 * speed. */
Test(shutdown, cooperative_tasks_return_without_waiting_for_grace, .timeout = 120)
{
    weft_runtime *rt = rt_make(2, 3600u * 1000u);
    weft_join h[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (weft_join)WEFT_JOIN_INIT;
        spawn_victim(rt, i, i % 2 ? SAFE : COOP, &h[i]);
    }
    flag_wait_ge(&armed, 4);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    for (int i = 0; i < 4; i++) {
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        check_victim(i, i % 2 ? SAFE : COOP, &out);
    }
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a thread blocked in join_wait is woken --------------------------------- */

static weft_join waited;
static weft_outcome waited_out;
static int waited_rc = 1;

static void *join_thread(void *arg)
{
    (void)arg;
    waited_rc = weft_join_wait(&waited, &waited_out);
    return NULL;
}

Test(shutdown, thread_blocked_in_join_wait_is_woken)
{
    weft_runtime *rt = rt_make(2, 50);
    waited = (weft_join)WEFT_JOIN_INIT;
    spawn_victim(rt, 0, SHIELDED, &waited);
    flag_wait_ge(&armed, 1);
    weft__task *t = waited.weft_task;
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, join_thread, NULL), 0);
    /* Wait until the thread has installed its waker (it is then blocked). */
    while (!(atomic_load(&t->state) & WEFT__JOIN_WAKER))
        sched_yield();
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    pthread_join(th, NULL);
    cr_assert_eq(waited_rc, 0);
    check_victim(0, SHIELDED, &waited_out);
    cr_assert_null(waited.weft_task);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- after shutdown ---------------------------------------------------------- */

static _Atomic int polled;

static weft_poll count_poll(weft_cx *cx, void *p)
{
    (void)cx;
    (void)p;
    atomic_fetch_add(&polled, 1);
    return 0;
}

static void count_drop(void *p)
{
    (void)p;
    flag_add(&drops, 1);
}

Test(shutdown, spawn_after_shutdown_is_refused)
{
    weft_runtime *rt = rt_make(2, 0);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    weft_frame fr = { 0 };
    weft_task_desc d = DESC(count_poll, &fr, count_drop, 0);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), -ESHUTDOWN);
    cr_assert_null(h.weft_task);
    cr_assert_eq(weft_spawn_detached(rt, &d), -ESHUTDOWN);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), -ESHUTDOWN);
    cr_assert_eq(atomic_load(&polled), 0, "a refused spawn never polls");
    cr_assert_eq(flag_get(&drops), 0, "a refused spawn never drops");
    cr_assert_eq(weft_runtime_live_tasks(rt), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(shutdown, free_with_outstanding_handles_then_join)
{
    weft_runtime *rt = rt_make(3, 300);
    /* One finished, one blocked (cancel-safe), one cooperative, one shielded. */
    struct val {
        weft_frame f;
    } vf = { 0 };
    weft_task_desc dv = DESC(count_poll, &vf, count_drop, 0);
    weft_join done = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &dv, &done), 0);
    while (!weft_join_is_finished(&done))
        sched_yield();
    weft_join h[3];
    static const enum kind kinds[3] = { SAFE, COOP, SHIELDED };
    for (int i = 0; i < 3; i++) {
        h[i] = (weft_join)WEFT_JOIN_INIT;
        spawn_victim(rt, i, kinds[i], &h[i]);
    }
    flag_wait_ge(&armed, 3);
    cr_assert_eq(weft_runtime_free(rt), 0);
    /* The runtime is gone; the handles are still valid. */
    cr_assert(weft_join_is_finished(&done));
    cr_assert_eq(weft_abort(&done), 1);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&done, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_NONE);
    cr_assert_eq(weft_abort(&h[0]), 1);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        check_victim(i, kinds[i], &out);
    }
    cr_assert_eq(weft_detach(&h[2]), 0, "detach after free");
    cr_assert_eq(atomic_load(&dropped[2]), 1);
    WEFT_ASSERT_NO_LEAKS();
}

Test(shutdown, detached_tasks_are_dropped_once)
{
    weft_runtime *rt = rt_make(2, 300);
    enum { N = 40 };
    for (int i = 0; i < N; i++) {
        struct victim fr = { .id = i, .kind = (enum kind)(i % 5) };
        weft_task_desc d = DESC(victim_poll, &fr, victim_drop, kind_flags(fr.kind));
        cr_assert_eq(weft_spawn_detached(rt, &d), 0);
    }
    flag_wait_ge(&armed, N);
    rt_done(rt);
    cr_assert_eq(flag_get(&drops), N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(atomic_load(&dropped[i]), 1, "task %d", i);
        cr_assert_eq(atomic_load(&past_await[i]), i % 5 == COOP, "task %d kind %d", i, i % 5);
    }
    WEFT_ASSERT_NO_LEAKS();
}

Test(shutdown, shutdown_with_nothing_running)
{
    for (unsigned n = 1; n <= 4; n++) {
        weft_runtime *rt = rt_make(n, 0);
        cr_assert_eq(weft_runtime_live_tasks(rt), 0);
        rt_done(rt);
    }
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- blocking calls from inside a task ---------------------------------------- */

struct inside {
    weft_frame f;
    weft_join *other;
};

static weft_poll inside_poll(weft_cx *cx, void *p)
{
    struct inside *in = p;
    weft_runtime *rt = weft_cx_runtime(cx);
    int64_t bad = 0;
    if (weft_runtime_shutdown(rt) != -EDEADLK)
        bad |= 1;
    if (weft_runtime_free(rt) != -EDEADLK)
        bad |= 2;
    weft_outcome out;
    if (weft_join_wait(in->other, &out) != -EDEADLK)
        bad |= 4;
    weft_frame vf = { 0 };
    weft_task_desc d = DESC(count_poll, &vf, NULL, 0);
    if (weft_block_on(rt, &d, &out) != -EDEADLK)
        bad |= 8;
    return bad;
}

Test(shutdown, blocking_calls_from_a_task_return_edeadlk)
{
    weft_runtime *rt = rt_make(2, 0);
    weft_frame vf = { 0 };
    weft_task_desc dv = DESC(count_poll, &vf, NULL, 0);
    weft_join other = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &dv, &other), 0);
    struct inside fr = { .other = &other };
    weft_task_desc d = DESC(inside_poll, &fr, NULL, 0);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 0, "failed checks (bitmask): %ld", (long)out.value);
    /* The runtime still works and the handle is still usable. */
    cr_assert_not_null(other.weft_task);
    cr_assert_eq(weft_join_wait(&other, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(atomic_load(&polled), 1, "block_on from a task must not spawn");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- two threads shutting down at once ---------------------------------------- */

static weft_runtime *shared_rt;
static int shutdown_rc[2] = { 1, 1 };

static void *shutdown_thread(void *arg)
{
    intptr_t i = (intptr_t)arg;
    shutdown_rc[i] = weft_runtime_shutdown(shared_rt);
    return NULL;
}

Test(shutdown, concurrent_shutdown_calls)
{
    shared_rt = rt_make(2, 50);
    weft_join h[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (weft_join)WEFT_JOIN_INIT;
        spawn_victim(shared_rt, i, i % 2 ? SAFE : SHIELDED, &h[i]);
    }
    flag_wait_ge(&armed, 4);
    pthread_t th[2];
    for (intptr_t i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, shutdown_thread, (void *)i), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(shutdown_rc[0], 0);
    cr_assert_eq(shutdown_rc[1], 0);
    cr_assert_eq(flag_get(&drops), 4);
    for (int i = 0; i < 4; i++) {
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        check_victim(i, i % 2 ? SAFE : SHIELDED, &out);
    }
    rt_done(shared_rt);
    WEFT_ASSERT_NO_LEAKS();
}
