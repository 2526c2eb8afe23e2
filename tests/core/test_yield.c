/*
 * tests/core/test_yield.c - a yield gives way to what other threads send
 * (runtime/worker.c, invariant 7): a task woken from a plain thread while
 * tasks yield in a loop on the only worker runs within about one round of
 * their yields, not after global_queue_interval (61) of their polls.
 *
 * Counted, not timed: the opener reads the yield count right after it woke
 * the task, the woken task reads it when it runs. Load on the machine only
 * delays the opener's read, which makes the difference smaller.
 */
#include <criterion/criterion.h>

#include "core_util.h"

TestSuite(yield, .timeout = 60);

enum { YIELDERS = 4, ROUNDS_ALLOWED = 3 };

static _Atomic long yields;
static _Atomic bool stop;
static struct flag yielders_running;

struct yielder {
    weft_frame f;
    bool counted;
    weft_poll rc;
};

static weft_poll yielder_poll(weft_cx *cx, void *p)
{
    struct yielder *y = p;
    WEFT_BEGIN(&y->f);
    while (!atomic_load(&stop)) {
        if (!y->counted) {
            y->counted = true;
            flag_add(&yielders_running, 1);
        }
        atomic_fetch_add(&yields, 1);
        WEFT_YIELD(&y->f, y->rc);
    }
    WEFT_RETURN(&y->f, 0);
    WEFT_END(&y->f);
}

struct woken {
    weft_frame f;
    gate_leaf *gate;
    long *yields_when_run;
    weft_poll rc;
};

static weft_poll woken_poll(weft_cx *cx, void *p)
{
    struct woken *w = p;
    WEFT_BEGIN(&w->f);
    WEFT_AWAIT(&w->f, w->rc, gate_poll(cx, w->gate));
    *w->yields_when_run = atomic_load(&yields);
    atomic_store(&stop, true);
    WEFT_RETURN(&w->f, w->rc);
    WEFT_END(&w->f);
}

Test(yield, task_woken_from_a_thread_runs_within_a_round_of_yields)
{
    weft_runtime *rt = rt_make(1, 100);
    gate_leaf gate;
    gate_init(&gate);
    long yields_when_run = -1;
    struct woken wf = { .gate = &gate, .yields_when_run = &yields_when_run };
    weft_join wj = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(woken_poll, &wf), &wj), 0);
    gate_wait_armed(&gate);
    weft_join yj[YIELDERS];
    for (int i = 0; i < YIELDERS; i++) {
        struct yielder y = { 0 };
        yj[i] = (weft_join)WEFT_JOIN_INIT;
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(yielder_poll, &y), &yj[i]), 0);
    }
    flag_wait_ge(&yielders_running, YIELDERS);
    gate_open(&gate, 7);
    long yields_at_open = atomic_load(&yields);

    weft_outcome out;
    cr_assert_eq(weft_join_wait(&wj, &out), 0);
    cr_assert_eq(out.value, 7);
    for (int i = 0; i < YIELDERS; i++)
        cr_assert_eq(weft_join_wait(&yj[i], &out), 0);
    long waited = yields_when_run - yields_at_open;
    cr_assert_leq(waited, YIELDERS * ROUNDS_ALLOWED,
                  "the woken task ran after %ld yields of %d yielders", waited, YIELDERS);
    gate_release(&gate);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
