/*
 * tests/core/test_yield.c - a yield gives way to what other threads send
 * (runtime/worker.c, invariant 7): a task woken from a plain thread while
 * tasks yield in a loop on the only worker runs within about one round of
 * their yields, not after global_queue_interval (61) of their polls. A
 * yield wakes nobody when nothing waits behind it. And a yielded task runs
 * again on a worker whose queue never runs dry.
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

/* A task that yields alone on its worker gives the other worker nothing to
 * take: its worker picks it up again at once. So the other worker, once
 * parked, stays parked however often it yields. (Each requeue used to wake
 * whoever slept, and a parking worker that caught the task in the queue
 * woke itself: about one wake-up per hundred yields, for a worker that then
 * declined the task.) The count covers every worker, so the task moving
 * between workers now and then is allowed for: one wake-up per thousand
 * yields. */
enum { LONE_YIELDS = 50000 };

struct lone {
    weft_frame f;
    long left;
    weft_poll rc;
};

static weft_poll lone_poll(weft_cx *cx, void *p)
{
    struct lone *l = p;
    WEFT_BEGIN(&l->f);
    for (; l->left > 0; l->left--)
        WEFT_YIELD(&l->f, l->rc);
    WEFT_RETURN(&l->f, 0);
    WEFT_END(&l->f);
}

static uint64_t unparks(weft_runtime *rt)
{
    weft_metrics m;
    weft_worker_metrics w[2];
    cr_assert_eq(weft_metrics_read(rt, &m, w, 2), 2);
    return w[0].unparks + w[1].unparks;
}

Test(yield, a_task_yielding_alone_does_not_wake_the_other_worker)
{
    weft_runtime *rt = rt_make(2, 100);
    uint64_t before = unparks(rt);
    struct lone l = { .left = LONE_YIELDS };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(lone_poll, &l), &out), 0);
    uint64_t woken = unparks(rt) - before;
    cr_assert_leq(woken, LONE_YIELDS / 1000, "%llu wake-ups for %d yields of one task",
                  (unsigned long long)woken, LONE_YIELDS);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* A worker whose queue never runs dry still runs its yielded tasks again
 * (invariant 7): ping-pong pairs on the only worker keep it busy, and a task
 * that yields once must be back before they have exchanged many times, not
 * only when they stop. Eight pairs keep the queue itself busy; one pair
 * hands the worker on through the LIFO slot, so the queue holds at most the
 * task the slot's limit pushes back. Counted in exchanges, not timed; the
 * pairs stop by themselves after PAIR_ROUNDS_CAP exchanges, so a yielded
 * task that waits for that fails the test instead of hanging it. */
enum { MAX_PAIRS = 8, PAIR_ROUNDS_CAP = 1000000, ROUNDS_BEFORE_BACK = 10000 };

static _Atomic long pair_rounds;
static _Atomic bool pairs_stop;

static bool pairs_done(void)
{
    return atomic_load(&pairs_stop) || atomic_load(&pair_rounds) >= PAIR_ROUNDS_CAP;
}

/* One exchange: A passed, B was woken and passed back. */
static void count_exchange(struct pp_player *pl)
{
    if (!pl->is_a)
        atomic_fetch_add(&pair_rounds, 1);
}

struct once_yielder {
    weft_frame f;
    long rounds_at_yield;
    weft_poll rc;
};

static weft_poll once_yielder_poll(weft_cx *cx, void *p)
{
    struct once_yielder *y = p;
    WEFT_BEGIN(&y->f);
    y->rounds_at_yield = atomic_load(&pair_rounds);
    WEFT_YIELD(&y->f, y->rc);
    atomic_store(&pairs_stop, true);
    WEFT_RETURN(&y->f, atomic_load(&pair_rounds) - y->rounds_at_yield);
    WEFT_END(&y->f);
}

/* Exchanges the pairs made between the yield and the yielded task's return. */
static int64_t exchanges_while_yielded(int npairs)
{
    atomic_store(&pair_rounds, 0);
    atomic_store(&pairs_stop, false);
    weft_runtime *rt = rt_make(1, 100);
    static struct pp_pair pairs[MAX_PAIRS];
    weft_join pj[2 * MAX_PAIRS];
    for (int i = 0; i < 2 * npairs; i++) {
        pj[i] = (weft_join)WEFT_JOIN_INIT;
        cr_assert_eq(pp_spawn(rt, pairs, i, count_exchange, pairs_done, &pj[i]), 0);
    }
    while (atomic_load(&pair_rounds) < 1000)
        sched_yield();          /* the pairs are going: the queue is busy */
    struct once_yielder y = { 0 };
    weft_join yj = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(once_yielder_poll, &y), &yj), 0);

    weft_outcome out;
    cr_assert_eq(weft_join_wait(&yj, &out), 0);
    int64_t waited = out.value;
    for (int i = 0; i < 2 * npairs; i++)
        cr_assert_eq(weft_join_wait(&pj[i], &out), 0);
    rt_done(rt);
    return waited;
}

Test(yield, a_yielded_task_runs_again_while_its_worker_stays_busy)
{
    int64_t waited = exchanges_while_yielded(MAX_PAIRS);
    cr_assert_lt(waited, ROUNDS_BEFORE_BACK, "the yielded task ran again after %lld exchanges",
                 (long long)waited);
    WEFT_ASSERT_NO_LEAKS();
}

Test(yield, a_yielded_task_runs_again_beside_a_lifo_chain)
{
    int64_t waited = exchanges_while_yielded(1);
    cr_assert_lt(waited, ROUNDS_BEFORE_BACK, "the yielded task ran again after %lld exchanges",
                 (long long)waited);
    WEFT_ASSERT_NO_LEAKS();
}
