/*
 * tests/sync/test_barrier.c - the barrier: one leader per generation (the
 * arrival that trips it), reuse across generations, misuse, and the
 * cancellation contract of a wait: withdrawn before the trip it takes its
 * arrival back; withdrawn after the trip (woken, not yet run) it reports
 * that it passed; torn down, at shutdown.
 */
#include "sync/inspect_waits.h"
#include "sync_test.h"

TestSuite(barrier, .timeout = 120);

struct arriver {
    weft_frame f;
    weft_barrier *b;
    int rounds, i, leads;
    weft_barrier_waiter w;
    int64_t rc;
};

/* Wait `rounds` times (at least once); returns the last result, or with
 * several rounds how many times it led. */
static weft_poll arriver_poll(weft_cx *cx, void *p)
{
    struct arriver *a = p;
    WEFT_BEGIN(&a->f);
    for (a->i = 0; a->i < (a->rounds ? a->rounds : 1); a->i++) {
        WEFT_AWAIT(&a->f, a->rc, weft_barrier_wait(cx, a->b, &a->w));
        if (a->rc < 0)
            WEFT_RETURN(&a->f, a->rc);
        a->leads += a->rc == WEFT_BARRIER_LEADER;
    }
    WEFT_RETURN(&a->f, a->rounds ? a->leads : a->rc);
    WEFT_END(&a->f);
}

static weft_join spawn_arriver(weft_runtime *rt, weft_barrier *b, int rounds, unsigned flags)
{
    struct arriver fr = { .b = b, .rounds = rounds };
    return spawn_task(rt, DESC(arriver_poll, &fr, NULL, flags));
}

static weft_join queue_arriver(weft_runtime *rt, weft_barrier *b, unsigned flags)
{
    size_t before = weft__barrier_waiters(b);
    weft_join h = spawn_arriver(rt, b, 0, flags);
    WAIT_FOR(weft__barrier_waiters(b) == before + 1);
    return h;
}

Test(barrier, the_last_arrival_leads_and_releases_the_others)
{
    weft_runtime *rt = rt_make(2);
    weft_barrier b;
    cr_assert_eq(weft_barrier_init(&b, 3), 0);
    weft_join x = queue_arriver(rt, &b, 0);
    weft_join y = queue_arriver(rt, &b, 0);
    cr_assert_eq(weft_barrier_destroy(&b), -EBUSY, "arrivals are waiting");
    weft_join z = spawn_arriver(rt, &b, 0, 0);
    cr_assert_eq(join_value(&z), WEFT_BARRIER_LEADER);
    cr_assert_eq(join_value(&x), 0);
    cr_assert_eq(join_value(&y), 0);
    cr_assert_eq(weft_barrier_destroy(&b), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(barrier, generations_reuse_it_with_one_leader_each)
{
    enum { P = 5, ROUNDS = 200 };
    weft_runtime *rt = rt_make(4);
    weft_barrier b = WEFT_BARRIER_INIT(P);
    weft_join h[P];
    for (int i = 0; i < P; i++)
        h[i] = spawn_arriver(rt, &b, ROUNDS, 0);
    int64_t leads = 0;
    for (int i = 0; i < P; i++)
        leads += join_value(&h[i]);
    cr_assert_eq(leads, ROUNDS, "exactly one leader per generation");
    cr_assert_eq(weft_barrier_destroy(&b), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(barrier, one_party_always_leads_and_many_are_released_at_once)
{
    enum { P = 70 };    /* more than one wake batch */
    weft_runtime *rt = rt_make(4);
    weft_barrier one = WEFT_BARRIER_INIT(1), many = WEFT_BARRIER_INIT(P);
    weft_join h = spawn_arriver(rt, &one, 0, 0);
    cr_assert_eq(join_value(&h), WEFT_BARRIER_LEADER);
    static weft_join hs[P];
    for (int i = 0; i < P; i++)
        hs[i] = spawn_arriver(rt, &many, 0, 0);
    int64_t leads = 0;
    for (int i = 0; i < P; i++)
        leads += join_value(&hs[i]);
    cr_assert_eq(leads, 1);
    cr_assert_eq(weft_barrier_destroy(&many), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct switcher {
    weft_frame f;
    weft_barrier *a, *b;
    weft_barrier_waiter w;
};

static weft_poll switcher_poll(weft_cx *cx, void *p)
{
    struct switcher *s = p;
    if (!s->w.weft_owner)
        return weft_barrier_wait(cx, s->a, &s->w);
    cr_assert_eq(weft_barrier_wait(cx, s->b, &s->w), -EINVAL);
    return weft_barrier_wait(cx, s->a, &s->w);
}

Test(barrier, misuse_is_rejected)
{
    weft_barrier b = WEFT_BARRIER_INIT(2), other = WEFT_BARRIER_INIT(2), zero = { 0 };
    weft_barrier_waiter w = WEFT_BARRIER_WAITER_INIT;
    cr_assert_eq(weft_barrier_init(NULL, 1), -EINVAL);
    cr_assert_eq(weft_barrier_init(&b, 0), -EINVAL);
    cr_assert_eq(weft_barrier_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_barrier_wait(NULL, &b, &w), -EINVAL);

    weft_runtime *rt = rt_make(1);
    struct switcher fr = { .a = &b, .b = &other };
    weft_join h = spawn_task(rt, DESC(switcher_poll, &fr, NULL, 0));
    WAIT_FOR(weft__barrier_waiters(&b) == 1);
    weft_join h2 = spawn_arriver(rt, &b, 0, 0);
    cr_assert_eq(join_value(&h2), WEFT_BARRIER_LEADER);
    cr_assert_eq(join_value(&h), 0);
    weft_join hz = spawn_arriver(rt, &zero, 0, 0);
    cr_assert_eq(join_value(&hz), -EINVAL, "never initialised");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation -------------------------------------------------------------- */

static void cancel_before_trip(unsigned flags)
{
    weft_runtime *rt = rt_make(2);
    weft_barrier b = WEFT_BARRIER_INIT(3);
    weft_join x = queue_arriver(rt, &b, flags);
    weft_join y = queue_arriver(rt, &b, 0);
    cr_assert_eq(weft_abort(&x), 0);
    weft_outcome o = join_outcome(&x);
    if (flags & WEFT_TASK_CANCEL_SAFE)
        cr_assert_eq(o.status, -ECANCELED);
    else
        cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(weft__barrier_waiters(&b), 1);
    /* x's arrival was taken back: one more arrival does not trip it. */
    weft_join z = queue_arriver(rt, &b, 0);
    weft_join last = spawn_arriver(rt, &b, 0, 0);
    cr_assert_eq(join_value(&last), WEFT_BARRIER_LEADER);
    cr_assert_eq(join_value(&y), 0);
    cr_assert_eq(join_value(&z), 0);
    cr_assert_eq(weft_barrier_destroy(&b), 0);
    rt_done(rt);
}

Test(barrier, cancel_before_the_trip_takes_the_arrival_back)
{
    cancel_before_trip(0);
    cancel_before_trip(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

/* Trips the barrier, then occupies the only worker until released, so the
 * waiters it woke cannot run yet. */
struct tripper {
    weft_frame f;
    weft_barrier *b;
    blocker *bl;
    weft_barrier_waiter w;
};

static weft_poll tripper_poll(weft_cx *cx, void *p)
{
    struct tripper *t = p;
    weft_poll r = weft_barrier_wait(cx, t->b, &t->w);
    cr_assert_eq(r, WEFT_BARRIER_LEADER);
    atomic_store(&t->bl->running, 1);
    while (!atomic_load(&t->bl->release))
        sched_yield();
    return r;
}

static void cancel_after_trip(unsigned flags)
{
    weft_runtime *rt = rt_make(1);
    weft_barrier b = WEFT_BARRIER_INIT(2);
    blocker bl = { 0 };
    weft_join x = queue_arriver(rt, &b, flags);
    struct tripper fr = { .b = &b, .bl = &bl };
    weft_join t = spawn_task(rt, DESC(tripper_poll, &fr, NULL, 0));
    WAIT_FOR(atomic_load(&bl.running));             /* tripped; x woken, not run */
    cr_assert_eq(weft__barrier_waiters(&b), 0);
    cr_assert_eq(weft_barrier_destroy(&b), -EBUSY, "x is released but still in flight");
    cr_assert_eq(weft_abort(&x), 0);
    atomic_store(&bl.release, 1);
    cr_assert_eq(join_value(&t), WEFT_BARRIER_LEADER);
    weft_outcome o = join_outcome(&x);
    if (flags & WEFT_TASK_CANCEL_SAFE)
        cr_assert_eq(o.status, -ECANCELED, "torn down: nothing to undo");
    else
        cr_assert_eq(o.value, 0, "RACED: it passed the barrier and says so");
    /* The next generation is whole: two fresh arrivals trip it. */
    weft_join y = queue_arriver(rt, &b, 0);
    weft_join z = spawn_arriver(rt, &b, 0, 0);
    cr_assert_eq(join_value(&z), WEFT_BARRIER_LEADER);
    cr_assert_eq(join_value(&y), 0);
    cr_assert_eq(weft_barrier_destroy(&b), 0);
    rt_done(rt);
}

Test(barrier, cancel_after_the_trip_reports_the_pass)
{
    cancel_after_trip(0);
    cancel_after_trip(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

Test(barrier, shutdown_withdraws_waits_and_their_arrivals)
{
    weft_runtime *rt = rt_make(2);
    weft_barrier b = WEFT_BARRIER_INIT(3);
    weft_join x = queue_arriver(rt, &b, WEFT_TASK_SHIELDED);
    weft_join y = queue_arriver(rt, &b, 0);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(join_outcome(&x).status, -ECANCELED);
    cr_assert_eq(join_value(&y), -ECANCELED);
    cr_assert_eq(weft__barrier_waiters(&b), 0);
    cr_assert_eq(b.weft_arrived, 0u, "both arrivals were taken back");
    cr_assert_eq(weft_barrier_destroy(&b), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
