/*
 * tests/core/test_join_misuse.c - a join handle someone already waits on.
 *
 * While a task awaits a handle (weft_join_await) or a thread waits on it
 * (weft_join_wait), a second join from a task or a thread and a detach get
 * -EBUSY and change nothing: the first wait ends normally once the task
 * finishes. They used to take the handle from under the first wait, which
 * was then never woken and crashed when cancelled (a NULL task in its
 * withdrawal). Two threads that wait at once get 0 and -EBUSY, where a
 * debug build used to fail an assertion.
 *
 * On a simulated runtime, which runs tasks only inside weft_block_on, a
 * thread's join of a task that has not finished is -EDEADLK and keeps the
 * handle (weft_join_wait used to wait for ever, weft_join_wait_timeout to
 * wait out its limit and give the handle up).
 *
 * Handshakes, never sleeps: a task waits on the handle once its leaf slot
 * points at it (the join waker is installed before); a thread once the
 * child's JOIN_WAKER bit is set; the child returns when the test opens its
 * gate. Every wait on the test thread is bounded (HANG_NS), so a wait that
 * is never woken fails the test instead of hanging it.
 */
#include "core_util.h"
#include "runtime/task.h"
#include "weft/sim.h"

TestSuite(join_misuse, .timeout = 120);

#define HANG_NS (20ull * 1000000000ull)
#define VALUE 42

/* ---- the tasks -------------------------------------------------------------- */

/* Returns what its gate is opened with. */
struct child {
    weft_frame f;
    gate_leaf *gate;
    weft_poll rc;
};

static weft_poll child_poll(weft_cx *cx, void *p)
{
    struct child *c = p;
    WEFT_BEGIN(&c->f);
    WEFT_AWAIT(&c->f, c->rc, gate_poll(cx, c->gate));
    WEFT_RETURN(&c->f, c->rc);
    WEFT_END(&c->f);
}

/* Awaits *h; returns the joined value, or the await's error. */
struct joiner {
    weft_frame f;
    weft_join *h;
    weft_outcome out;
    weft_poll rc;
};

static weft_poll joiner_poll(weft_cx *cx, void *p)
{
    struct joiner *j = p;
    WEFT_BEGIN(&j->f);
    WEFT_AWAIT(&j->f, j->rc, weft_join_await(cx, j->h, &j->out));
    WEFT_RETURN(&j->f, j->rc < 0 ? j->rc : j->out.value);
    WEFT_END(&j->f);
}

static void spawn_child(weft_runtime *rt, gate_leaf *gate, weft_join *h)
{
    struct child c = { .gate = gate };
    cr_assert_eq(weft_spawn(rt, &DESC(child_poll, &c, NULL, 0), h), 0);
}

static void spawn_joiner(weft_runtime *rt, weft_join *target, weft_join *h)
{
    struct joiner j = { .h = target };
    cr_assert_eq(weft_spawn(rt, &DESC(joiner_poll, &j, NULL, 0), h), 0);
}

/* The value the task behind h returned (a bounded wait). */
static int64_t joined_value(weft_join *h)
{
    weft_outcome out;
    int rc = weft_join_wait_timeout(h, &out, HANG_NS);
    cr_assert_eq(rc, 0, "join: %d (%s)", rc, weft_strerror(rc));
    cr_assert_eq(out.status, 0);
    return out.value;
}

/* ---- handshakes ------------------------------------------------------------- */

/* Until the task behind `task` is suspended on `leaf`. */
static void wait_suspended_on(weft_join *task, const void *leaf)
{
    weft__task *t = task->weft_task;
    while (__atomic_load_n(&t->leaf, __ATOMIC_ACQUIRE) != leaf)
        sched_yield();
}

/* Until somebody's waker is installed on the task behind h. */
static void wait_join_waker(weft_join *h)
{
    weft__task *t = h->weft_task;
    while (!(atomic_load(&t->state) & WEFT__JOIN_WAKER))
        sched_yield();
}

/* ---- a task awaits the handle ------------------------------------------------ */

/* A task awaits h; a second task's join_await gets -EBUSY. */
Test(join_misuse, second_task_join_is_ebusy)
{
    weft_runtime *rt = rt_make(2, 0);
    gate_leaf gate;
    gate_init(&gate);
    weft_join h = WEFT_JOIN_INIT, ha = WEFT_JOIN_INIT, hb = WEFT_JOIN_INIT;
    spawn_child(rt, &gate, &h);
    spawn_joiner(rt, &h, &ha);
    wait_suspended_on(&ha, &h);
    spawn_joiner(rt, &h, &hb);
    cr_assert_eq(joined_value(&hb), -EBUSY, "the second join was accepted");
    cr_assert_not_null(h.weft_task, "the handle was consumed");
    gate_open(&gate, VALUE);
    cr_assert_eq(joined_value(&ha), VALUE, "the first joiner lost its outcome");
    cr_assert_null(h.weft_task);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* A task awaits h; a thread's join_wait[_timeout] and a detach get -EBUSY. */
Test(join_misuse, thread_join_and_detach_of_an_awaited_handle_are_ebusy)
{
    weft_runtime *rt = rt_make(2, 0);
    gate_leaf gate;
    gate_init(&gate);
    weft_join h = WEFT_JOIN_INIT, ha = WEFT_JOIN_INIT;
    spawn_child(rt, &gate, &h);
    spawn_joiner(rt, &h, &ha);
    wait_suspended_on(&ha, &h);
    weft__task *t = h.weft_task;
    weft_outcome out;
    memset(&out, 0x5a, sizeof out);
    weft_outcome before = out;
    cr_assert_eq(weft_join_wait_timeout(&h, &out, 0), -EBUSY);
    cr_assert_eq(weft_join_wait_timeout(&h, &out, 1000000), -EBUSY);
    cr_assert_eq(weft_detach(&h), -EBUSY);
    cr_assert_eq(weft_join_wait(&h, &out), -EBUSY);
    cr_assert_eq(h.weft_task, t, "a refused call changed the handle");
    cr_assert_eq(memcmp(&out, &before, sizeof out), 0, "a refused join wrote *out");
    gate_open(&gate, VALUE);
    cr_assert_eq(joined_value(&ha), VALUE, "the awaiting task was not woken");
    cr_assert_null(h.weft_task);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* The refused detach left the wait whole: the awaiting task can still be
 * aborted (its withdrawal takes its waker back), and the handle detached. */
Test(join_misuse, refused_detach_then_abort_the_awaiting_task)
{
    weft_runtime *rt = rt_make(1, 0);
    gate_leaf gate;
    gate_init(&gate);
    weft_join h = WEFT_JOIN_INIT, ha = WEFT_JOIN_INIT;
    spawn_child(rt, &gate, &h);
    spawn_joiner(rt, &h, &ha);
    wait_suspended_on(&ha, &h);
    cr_assert_eq(weft_detach(&h), -EBUSY);
    cr_assert_eq(weft_abort(&ha), 0);
    cr_assert_eq(joined_value(&ha), -ECANCELED);
    cr_assert_not_null(h.weft_task, "a withdrawn join keeps the handle");
    cr_assert_eq(weft_detach(&h), 0, "nobody waits any more");
    gate_open(&gate, VALUE);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a thread waits on the handle --------------------------------------------- */

struct thread_join {
    weft_join *h;
    int rc;
    weft_outcome out;
    flag *refused;          /* bumped when the join is refused with -EBUSY */
    pthread_barrier_t *start;
};

static void *join_thread(void *arg)
{
    struct thread_join *tj = arg;
    if (tj->start)
        pthread_barrier_wait(tj->start);
    tj->rc = weft_join_wait(tj->h, &tj->out);
    if (tj->rc == -EBUSY && tj->refused)
        flag_add(tj->refused, 1);
    return NULL;
}

/* A thread waits on h; another thread's join, a detach and a task's join get
 * -EBUSY. */
Test(join_misuse, a_waiting_thread_holds_the_handle)
{
    weft_runtime *rt = rt_make(2, 0);
    gate_leaf gate;
    gate_init(&gate);
    weft_join h = WEFT_JOIN_INIT, hb = WEFT_JOIN_INIT;
    spawn_child(rt, &gate, &h);
    struct thread_join tj = { .h = &h };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, join_thread, &tj), 0);
    wait_join_waker(&h);
    weft_outcome out;
    cr_assert_eq(weft_join_wait_timeout(&h, &out, 0), -EBUSY);
    cr_assert_eq(weft_detach(&h), -EBUSY);
    spawn_joiner(rt, &h, &hb);
    cr_assert_eq(joined_value(&hb), -EBUSY, "a task joined a handle a thread waits on");
    gate_open(&gate, VALUE);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(tj.rc, 0);
    cr_assert_eq(tj.out.value, VALUE);
    cr_assert_null(h.weft_task);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* Two threads call weft_join_wait on one handle at the same moment: one
 * waits and gets the outcome, the other gets -EBUSY. The child finishes only
 * after the refusal, so neither can see an emptied handle. */
Test(join_misuse, two_threads_wait_at_once)
{
    weft_runtime *rt = rt_make(2, 0);
    enum { ROUNDS = 200 };
    for (int round = 0; round < ROUNDS; round++) {
        gate_leaf gate;
        gate_init(&gate);
        weft_join h = WEFT_JOIN_INIT;
        spawn_child(rt, &gate, &h);
        flag refused = { 0 };
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, 2);
        struct thread_join tj[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            tj[i] = (struct thread_join){ .h = &h, .refused = &refused, .start = &start };
            cr_assert_eq(pthread_create(&th[i], NULL, join_thread, &tj[i]), 0);
        }
        cr_assert(flag_wait_ge_for(&refused, 1, 20000), "round %d: no join was refused", round);
        gate_open(&gate, VALUE);
        for (int i = 0; i < 2; i++)
            cr_assert_eq(pthread_join(th[i], NULL), 0);
        pthread_barrier_destroy(&start);
        int waited = tj[0].rc == 0 ? 0 : 1;
        cr_assert_eq(tj[waited].rc, 0, "round %d: %d, %d", round, tj[0].rc, tj[1].rc);
        cr_assert_eq(tj[waited].out.value, VALUE);
        cr_assert_eq(tj[1 - waited].rc, -EBUSY, "round %d: %d, %d", round, tj[0].rc, tj[1].rc);
        cr_assert_null(h.weft_task);
    }
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a simulated runtime ------------------------------------------------------ */

struct yielder {
    weft_frame f;
    weft_poll rc;
};

static weft_poll yielder_poll(weft_cx *cx, void *p)
{
    struct yielder *y = p;
    WEFT_BEGIN(&y->f);
    WEFT_YIELD(&y->f, y->rc);
    WEFT_RETURN(&y->f, VALUE);
    WEFT_END(&y->f);
}

Test(join_misuse, thread_join_on_a_simulated_runtime_is_edeadlk)
{
    weft_runtime *rt;
    weft_sim_opts o = { .seed = 7 };
    cr_assert_eq(weft_sim_runtime_new(&rt, &o), 0);
    struct yielder y = { .rc = 0 };
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &DESC(yielder_poll, &y, NULL, 0), &h), 0);
    weft__task *t = h.weft_task;
    weft_outcome out;
    cr_assert_eq(weft_join_wait_timeout(&h, &out, 1000000000ull), -EDEADLK);
    cr_assert_eq(weft_join_wait(&h, &out), -EDEADLK);
    cr_assert_eq(h.weft_task, t, "a refused join changed the handle");
    /* The simulation runs inside weft_block_on; a task there joins it. */
    struct joiner j = { .h = &h };
    cr_assert_eq(weft_block_on(rt, &DESC(joiner_poll, &j, NULL, 0), &out), 0);
    cr_assert_eq(out.value, VALUE);
    cr_assert_null(h.weft_task);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}
