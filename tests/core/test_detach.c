/*
 * tests/core/test_detach.c - spawn_detached and weft_detach: the task runs on,
 * its result is dropped, the handle is empty afterwards.
 */
#include <sched.h>

#include "core_util.h"
#include "runtime/task.h"

TestSuite(detach, .timeout = 60);

static flag drops, returned;

struct work {
    weft_frame f;
    gate_leaf *g;
    int yields, i;
    int64_t rc;
    int64_t result;
};

static void work_drop(void *p)
{
    struct work *w = p;
    (void)w;
    flag_add(&drops, 1);
}

static weft_poll work_poll(weft_cx *cx, void *p)
{
    struct work *w = p;
    WEFT_BEGIN(&w->f);
    for (w->i = 0; w->i < w->yields; w->i++)
        WEFT_YIELD(&w->f, w->rc);
    if (w->g)
        WEFT_AWAIT(&w->f, w->rc, gate_poll(cx, w->g));
    flag_add(&returned, 1);
    WEFT_RETURN(&w->f, w->result);
    WEFT_END(&w->f);
}

Test(detach, spawn_detached_runs_to_completion)
{
    weft_runtime *rt = rt_make(2, 0);
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        struct work fr = { .yields = i % 4, .result = i };
        weft_task_desc d = DESC(work_poll, &fr, work_drop, i % 2 ? WEFT_TASK_CANCEL_SAFE : 0);
        cr_assert_eq(weft_spawn_detached(rt, &d), 0);
    }
    flag_wait_ge(&drops, N);
    cr_assert_eq(flag_get(&returned), N);
    rt_done(rt);
    cr_assert_eq(flag_get(&drops), N, "no drop hook ran twice");
    WEFT_ASSERT_NO_LEAKS();
}

Test(detach, detach_then_join_is_einval_and_task_runs_on)
{
    weft_runtime *rt = rt_make(2, 0);
    gate_leaf g;
    gate_init(&g);
    struct work fr = { .g = &g, .result = 5 };
    weft_task_desc d = DESC(work_poll, &fr, work_drop, 0);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    weft__task *t = h.weft_task;
    gate_wait_armed(&g);
    cr_assert_eq(weft_detach(&h), 0);
    cr_assert_null(h.weft_task);
    cr_assert(atomic_load(&t->state) & WEFT__DETACHED);    /* still alive: waiting */
    cr_assert_not(atomic_load(&t->state) & WEFT__JOIN_INTEREST);

    weft_outcome out;
    memset(&out, 0x5a, sizeof out);
    weft_outcome before = out;
    cr_assert_eq(weft_join_wait(&h, &out), -EINVAL);
    cr_assert_eq(memcmp(&out, &before, sizeof out), 0, "a failed join leaves out alone");
    cr_assert_eq(weft_abort(&h), -EINVAL);
    cr_assert_eq(weft_detach(&h), -EINVAL);
    cr_assert_not(weft_join_is_finished(&h));

    gate_open(&g, 0);
    flag_wait_ge(&drops, 1);
    cr_assert_eq(flag_get(&returned), 1);
    rt_done(rt);
    cr_assert_eq(flag_get(&drops), 1);
    WEFT_ASSERT_NO_LEAKS();
}

Test(detach, double_join_is_einval)
{
    weft_runtime *rt = rt_make(2, 0);
    struct work fr = { .result = 8 };
    weft_task_desc d = DESC(work_poll, &fr, work_drop, 0);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.value, 8);
    cr_assert_eq(weft_join_wait(&h, &out), -EINVAL);
    cr_assert_eq(weft_abort(&h), -EINVAL);
    cr_assert_eq(weft_detach(&h), -EINVAL);
    cr_assert_eq(out.value, 8, "a failed join leaves out alone");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(detach, detach_after_finish)
{
    weft_runtime *rt = rt_make(2, 0);
    struct work fr = { .result = 3 };
    weft_task_desc d = DESC(work_poll, &fr, work_drop, 0);
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    while (!weft_join_is_finished(&h))
        sched_yield();
    weft__task *t = h.weft_task;
    cr_assert_not(atomic_load(&t->state) & WEFT__DETACHED, "finished while joinable");
    cr_assert_eq(weft_detach(&h), 0);   /* frees the task: LSan checks below */
    cr_assert_null(h.weft_task);
    cr_assert_eq(flag_get(&drops), 1);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), -EINVAL);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(detach, abort_on_empty_handle_is_einval)
{
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_abort(&h), -EINVAL);
    cr_assert_eq(weft_detach(&h), -EINVAL);
    cr_assert_eq(weft_abort(NULL), -EINVAL);
    cr_assert_eq(weft_detach(NULL), -EINVAL);
    WEFT_ASSERT_NO_LEAKS();
}

/* A task awaiting a join, whose target is detached by a third party after the
 * await was withdrawn: nothing dangles. */
struct awaiter {
    weft_frame f;
    weft_join *h;
    weft_outcome out;
    int64_t rc;
};

static flag awaiting;

static weft_poll awaiter_poll(weft_cx *cx, void *p)
{
    struct awaiter *a = p;
    WEFT_BEGIN(&a->f);
    flag_add(&awaiting, 1);
    WEFT_AWAIT(&a->f, a->rc, weft_join_await(cx, a->h, &a->out));
    WEFT_RETURN(&a->f, a->rc);
    WEFT_END(&a->f);
}

Test(detach, detach_after_withdrawn_join_await)
{
    weft_runtime *rt = rt_make(2, 0);
    gate_leaf g;
    gate_init(&g);
    static weft_join target = WEFT_JOIN_INIT;
    struct work tf = { .g = &g, .result = 1 };
    weft_task_desc dt = DESC(work_poll, &tf, work_drop, 0);
    cr_assert_eq(weft_spawn(rt, &dt, &target), 0);
    gate_wait_armed(&g);

    struct awaiter af = { .h = &target };
    weft_task_desc da = DESC(awaiter_poll, &af, NULL, 0);
    weft_join ha = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &da, &ha), 0);
    flag_wait_ge(&awaiting, 1);
    /* Let the awaiter install its join waker, then cancel its wait. */
    while (!(atomic_load(&target.weft_task->state) & WEFT__JOIN_WAKER))
        sched_yield();
    cr_assert_eq(weft_abort(&ha), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&ha, &out), 0);
    cr_assert_eq(out.value, -ECANCELED);
    cr_assert_not(atomic_load(&target.weft_task->state) & WEFT__JOIN_WAKER,
                  "the withdrawn await took its waker back");
    cr_assert_eq(weft_detach(&target), 0);
    gate_open(&g, 0);
    flag_wait_ge(&drops, 1);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
