/*
 * tests/core/test_group_misuse.c - task groups given what they must refuse.
 *
 *   - weft_group_spawn validates the desc as weft_spawn does before it reads
 *     it: ntokens > 0 with tokens NULL is -EINVAL (it used to dereference
 *     NULL).
 *   - A spawn that fails after the group counted its child wakes a waiter
 *     that saw that child running, as the child's end would have (the
 *     waiter used to stay suspended with nothing left to run).
 *   - One waiter at a time: while a task waits on the group, a second
 *     join_next, join_all or shutdown gets -EBUSY and changes nothing (it
 *     used to take the first waiter's wake-up), and weft_group_free gets
 *     -EBUSY (it used to free the group under the waiting task). While a
 *     thread frees the group, a task's wait on it gets -EBUSY. A waiter torn
 *     down by the shutdown sweep no longer waits: the group frees after.
 *
 * Handshakes, never sleeps: a waiting task is known to wait once its leaf
 * slot points at the group; a spawn is known to be in flight while
 * weft_group_len counts a child that cannot exist. Every wait on the test
 * thread is bounded (HANG_NS), so a lost wake-up fails the test instead of
 * hanging it.
 */
#include "core_util.h"
#include "runtime/task.h"

TestSuite(group_misuse, .timeout = 60);

#define HANG_NS (20ull * 1000000000ull)

/* ---- children ----------------------------------------------------------------- */

/* Yields once, or waits for its gate if it has one, and returns 1 (or what
 * the gate was opened with). Every poll is counted. */
struct child {
    weft_frame f;
    gate_leaf *gate;
    weft_poll rc;
};

static flag child_polls;

static weft_poll child_poll(weft_cx *cx, void *p)
{
    struct child *c = p;
    flag_add(&child_polls, 1);
    WEFT_BEGIN(&c->f);
    if (c->gate)
        WEFT_AWAIT(&c->f, c->rc, gate_poll(cx, c->gate));
    else
        WEFT_YIELD(&c->f, c->rc);
    WEFT_RETURN(&c->f, c->gate ? c->rc : 1);
    WEFT_END(&c->f);
}

static void spawn_gated(weft_group *g, gate_leaf *gate, unsigned flags)
{
    struct child c = { .gate = gate };
    cr_assert_eq(weft_group_spawn(g, &DESC(child_poll, &c, NULL, flags)), 0);
}

static weft_group *group_make(weft_runtime *rt)
{
    weft_group *g = NULL;
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    return g;
}

/* ---- a task that waits on the group once ------------------------------------------ */

enum how { NEXT, ALL, SHUTDOWN };

struct waiter {
    weft_frame f;
    weft_group *g;
    int how;
    weft_outcome out;
    weft_poll rc;
};

static weft_poll waiter_poll(weft_cx *cx, void *p)
{
    struct waiter *w = p;
    WEFT_BEGIN(&w->f);
    if (w->how == NEXT)
        WEFT_AWAIT(&w->f, w->rc, weft_group_join_next(cx, w->g, &w->out));
    else if (w->how == ALL)
        WEFT_AWAIT(&w->f, w->rc, weft_group_join_all(cx, w->g));
    else
        WEFT_AWAIT(&w->f, w->rc, weft_group_shutdown(cx, w->g));
    /* join_next: the child's value when it yielded 1. */
    WEFT_RETURN(&w->f, w->how == NEXT && w->rc == 1 ? w->out.value : w->rc);
    WEFT_END(&w->f);
}

static void spawn_waiter(weft_runtime *rt, weft_group *g, int how, weft_join *h)
{
    struct waiter w = { .g = g, .how = how };
    cr_assert_eq(weft_spawn(rt, &DESC(waiter_poll, &w, NULL, 0), h), 0);
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

/* Until the task behind h is suspended on g. */
static void wait_suspended_on(weft_join *h, weft_group *g)
{
    weft__task *t = h->weft_task;
    while (__atomic_load_n(&t->leaf, __ATOMIC_ACQUIRE) != (void *)g)
        sched_yield();
}

/* ---- the desc ------------------------------------------------------------------ */

Test(group_misuse, spawn_with_tokens_null_is_einval)
{
    weft_runtime *rt = rt_make(1, 0);
    weft_group *g = group_make(rt);
    struct child c = { .rc = 0 };
    weft_task_desc d = DESC(child_poll, &c, NULL, 0);
    d.ntokens = 1;
    cr_assert_eq(weft_spawn(rt, &d, &(weft_join)WEFT_JOIN_INIT), -EINVAL);
    cr_assert_eq(weft_group_spawn(g, &d), -EINVAL);
    cr_assert_eq(weft_group_len(g), 0, "a refused spawn left a child");
    d.ntokens = 0;
    cr_assert_eq(weft_group_spawn(g, &d), 0, "the group is still usable");
    cr_assert_eq(weft_group_free(g), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a failed spawn wakes the waiter ---------------------------------------------- */

static _Atomic int spam_stop;

/* Spawns a desc weft_spawn refuses (no poll function) until told to stop:
 * each is counted in the group while weft_spawn runs, then uncounted. */
static void *spam_failing_spawns(void *arg)
{
    weft_group *g = arg;
    weft_frame fr = { 0, 0 };
    weft_task_desc bad = { .poll = NULL, .frame = &fr, .frame_size = sizeof fr };
    while (!atomic_load(&spam_stop))
        if (weft_group_spawn(g, &bad) != -EINVAL)
            return (void *)1;
    return NULL;
}

/* Waits for every child, n times, each time while a failing spawn is in
 * flight (weft_group_len is 1 only then: no spawn here succeeds). */
struct all_waiter {
    weft_frame f;
    weft_group *g;
    int i, n;
    weft_poll rc;
};

static weft_poll all_waiter_poll(weft_cx *cx, void *p)
{
    struct all_waiter *w = p;
    WEFT_BEGIN(&w->f);
    for (w->i = 0; w->i < w->n; w->i++) {
        while (weft_group_len(w->g) == 0 && !atomic_load(&spam_stop))
            ;
        WEFT_AWAIT(&w->f, w->rc, weft_group_join_all(cx, w->g));
        if (w->rc != 0)
            WEFT_RETURN(&w->f, w->rc);
    }
    WEFT_RETURN(&w->f, 0);
    WEFT_END(&w->f);
}

Test(group_misuse, failed_spawn_wakes_the_waiter)
{
    weft_runtime *rt = rt_make(1, 0);
    weft_group *g = group_make(rt);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, spam_failing_spawns, g), 0);
    struct all_waiter w = { .g = g, .n = 1000 };
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &DESC(all_waiter_poll, &w, NULL, 0), &h), 0);
    weft_outcome out;
    int rc = weft_join_wait_timeout(&h, &out, HANG_NS);
    atomic_store(&spam_stop, 1);
    void *spam_rc;
    cr_assert_eq(pthread_join(th, &spam_rc), 0);
    cr_assert_eq(rc, 0, "join_all was never woken: %d (%s)", rc, weft_strerror(rc));
    cr_assert_eq(out.value, 0);
    cr_assert_null(spam_rc, "a spawn of a bad desc did not fail with -EINVAL");
    cr_assert_eq(weft_group_len(g), 0);
    cr_assert_eq(weft_group_free(g), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- one waiter at a time ------------------------------------------------------------ */

/* A task waits in join_next; a second join_next, a join_all and a shutdown
 * each get -EBUSY; the group is not closed by the refused shutdown; the
 * first waiter gets the child's outcome once it finishes. */
Test(group_misuse, second_waiter_is_ebusy)
{
    weft_runtime *rt = rt_make(2, 0);
    weft_group *g = group_make(rt);
    gate_leaf gate;
    gate_init(&gate);
    spawn_gated(g, &gate, 0);
    weft_join first = WEFT_JOIN_INIT;
    spawn_waiter(rt, g, NEXT, &first);
    wait_suspended_on(&first, g);
    for (int how = NEXT; how <= SHUTDOWN; how++) {
        weft_join second = WEFT_JOIN_INIT;
        spawn_waiter(rt, g, how, &second);
        cr_assert_eq(joined_value(&second), -EBUSY, "wait %d was accepted", how);
    }
    cr_assert_eq(weft_group_len(g), 1);
    gate_open(&gate, 7);
    cr_assert_eq(joined_value(&first), 7, "the first waiter lost its wake-up");
    spawn_gated(g, NULL, 0);    /* not closed by the refused shutdown */
    cr_assert_eq(weft_group_free(g), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* A task waits in join_all; weft_group_free gets -EBUSY and cancels
 * nothing; once the wait has ended the group is freed. */
Test(group_misuse, free_while_a_task_waits_is_ebusy)
{
    weft_runtime *rt = rt_make(2, 0);
    weft_group *g = group_make(rt);
    gate_leaf gate;
    gate_init(&gate);
    spawn_gated(g, &gate, 0);
    weft_join h = WEFT_JOIN_INIT;
    spawn_waiter(rt, g, ALL, &h);
    wait_suspended_on(&h, g);
    cr_assert_eq(weft_group_free(g), -EBUSY);
    gate_open(&gate, 7);
    cr_assert_eq(joined_value(&h), 0, "join_all");
    weft_outcome out;
    cr_assert_eq(weft_group_len(g), 1);
    struct waiter next = { .g = g, .how = NEXT };
    cr_assert_eq(weft_block_on(rt, &DESC(waiter_poll, &next, NULL, 0), &out), 0);
    cr_assert_eq(out.value, 7, "the child was cancelled by the refused free");
    cr_assert_eq(weft_group_free(g), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* A thread frees the group and waits for a shielded child (which ignores
 * the cancellation); a task's wait on the group meanwhile gets -EBUSY. */
struct free_call {
    weft_group *g;
    int rc;
};

static void *free_thread(void *arg)
{
    struct free_call *fc = arg;
    fc->rc = weft_group_free(fc->g);
    return NULL;
}

Test(group_misuse, wait_while_a_thread_frees_is_ebusy)
{
    weft_runtime *rt = rt_make(2, 0);
    weft_group *g = group_make(rt);
    gate_leaf gate;
    gate_init(&gate);
    spawn_gated(g, &gate, WEFT_TASK_SHIELDED);
    gate_wait_armed(&gate);
    uint32_t polls = flag_get(&child_polls);
    struct free_call fc = { .g = g };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, free_thread, &fc), 0);
    /* The free cancels the group's token once it holds the group: the
     * request wakes the child for one more (shielded) poll. */
    cr_assert(flag_wait_ge_for(&child_polls, polls + 1, 20000), "the free cancelled nothing");
    weft_join h = WEFT_JOIN_INIT;
    spawn_waiter(rt, g, NEXT, &h);
    cr_assert_eq(joined_value(&h), -EBUSY, "a task waited on a group being freed");
    gate_open(&gate, 7);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(fc.rc, 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* Shutdown tears down a task waiting on the group while its shielded child
 * still runs; the wait ends with the task, so the group frees afterwards. */
Test(group_misuse, free_after_shutdown_tore_the_waiter_down)
{
    weft_runtime *rt = rt_make(2, 1);
    weft_group *g = group_make(rt);
    gate_leaf gate;
    gate_init(&gate);
    spawn_gated(g, &gate, WEFT_TASK_SHIELDED);
    weft_join h = WEFT_JOIN_INIT;
    spawn_waiter(rt, g, ALL, &h);
    wait_suspended_on(&h, g);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, -ECANCELED, "the waiter was torn down");
    cr_assert_eq(weft_group_free(g), 0);
    rt_done(rt);
    gate_release(&gate);
    WEFT_ASSERT_NO_LEAKS();
}
