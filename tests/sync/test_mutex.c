/*
 * tests/sync/test_mutex.c - the async mutex: try_lock/unlock, mutual
 * exclusion, FIFO handoff, misuse, and the cancellation contract of a lock
 * wait in each state (queued, handed the mutex but not yet run, holding),
 * for cooperative and cancel-safe tasks, and at shutdown.
 */
#include "sync/inspect_waits.h"
#include "sync_test.h"

TestSuite(mutex, .timeout = 120);

/* ---- the locker task ---------------------------------------------------------- */

/*
 * Lock; check exclusivity; record the order; then either wait on `hold`
 * (when set) or yield, so there is an await while holding; unlock. Returns
 * 1 when it held the mutex and gave it up normally, 2 when it held it and
 * its await while holding was cancelled (it still unlocked), or the lock's
 * error. A cancel-safe locker torn down while holding unlocks in its drop
 * hook.
 */
static _Atomic int order[128];
static _Atomic int order_len;
static _Atomic int inside;
static _Atomic int unlocked_in_drop;

struct locker {
    weft_frame f;
    weft_mutex *m;
    weft_notify *hold;
    int id;
    bool held;
    weft_mutex_waiter w;
    weft_notify_waiter hw;
    int64_t rc, hrc;
};

static weft_poll locker_poll(weft_cx *cx, void *p)
{
    struct locker *l = p;
    WEFT_BEGIN(&l->f);
    WEFT_AWAIT(&l->f, l->rc, weft_mutex_lock(cx, l->m, &l->w));
    if (l->rc < 0)
        WEFT_RETURN(&l->f, l->rc);
    l->held = true;
    cr_assert_eq(atomic_fetch_add(&inside, 1), 0, "two holders at once");
    atomic_store(&order[atomic_fetch_add(&order_len, 1)], l->id);
    if (l->hold)
        WEFT_AWAIT(&l->f, l->hrc, weft_notify_wait(cx, l->hold, &l->hw));
    else
        WEFT_YIELD(&l->f, l->hrc);
    atomic_fetch_sub(&inside, 1);
    l->held = false;
    cr_assert_eq(weft_mutex_unlock(l->m), 0);
    WEFT_RETURN(&l->f, l->hrc == 0 ? 1 : 2);
    WEFT_END(&l->f);
}

static void locker_drop(void *p)
{
    struct locker *l = p;
    if (l->held) {
        atomic_fetch_sub(&inside, 1);
        cr_assert_eq(weft_mutex_unlock(l->m), 0);
        atomic_fetch_add(&unlocked_in_drop, 1);
    }
}

static weft_join spawn_locker(weft_runtime *rt, weft_mutex *m, int id, weft_notify *hold,
                              unsigned flags)
{
    struct locker fr = { .m = m, .id = id, .hold = hold };
    return spawn_task(rt, DESC(locker_poll, &fr, locker_drop, flags));
}

/* Spawn a locker and return once it is queued on m. */
static weft_join queue_locker(weft_runtime *rt, weft_mutex *m, int id, weft_notify *hold,
                              unsigned flags)
{
    size_t before = weft__mutex_waiters(m);
    weft_join h = spawn_locker(rt, m, id, hold, flags);
    WAIT_FOR(weft__mutex_waiters(m) == before + 1);
    return h;
}

static void reset_counters(void)
{
    atomic_store(&order_len, 0);
    atomic_store(&inside, 0);
    atomic_store(&unlocked_in_drop, 0);
}

/* ---- basics -------------------------------------------------------------------- */

Test(mutex, try_lock_and_unlock)
{
    weft_mutex m;
    cr_assert_eq(weft_mutex_init(&m), 0);
    cr_assert_not(weft_mutex_is_locked(&m));
    cr_assert_eq(weft_mutex_try_lock(&m), 0);
    cr_assert(weft_mutex_is_locked(&m));
    cr_assert_eq(weft_mutex_try_lock(&m), -EAGAIN);
    cr_assert_eq(weft_mutex_destroy(&m), -EBUSY, "held");
    cr_assert_eq(weft_mutex_unlock(&m), 0);
    cr_assert_eq(weft_mutex_unlock(&m), -EPERM, "unlocked by nobody");
    cr_assert_eq(weft_mutex_destroy(&m), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* Many tasks increment a plain counter under the mutex, with an await in the
 * critical section so holders really overlap in time with waiters. */
struct incrementer {
    weft_frame f;
    weft_mutex *m;
    uint64_t *counter;
    int i, n;
    weft_mutex_waiter w;
    int64_t rc;
    uint64_t seen;
};

static weft_poll incrementer_poll(weft_cx *cx, void *p)
{
    struct incrementer *t = p;
    WEFT_BEGIN(&t->f);
    for (t->i = 0; t->i < t->n; t->i++) {
        WEFT_AWAIT(&t->f, t->rc, weft_mutex_lock(cx, t->m, &t->w));
        cr_assert_eq(t->rc, 0);
        t->seen = *t->counter;
        WEFT_YIELD(&t->f, t->rc);
        *t->counter = t->seen + 1;
        cr_assert_eq(weft_mutex_unlock(t->m), 0);
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(mutex, mutual_exclusion_across_workers)
{
    enum { TASKS = 16, ITERS = 500 };
    weft_runtime *rt = rt_make(4);
    weft_mutex m = WEFT_MUTEX_INIT;
    uint64_t counter = 0;
    weft_join h[TASKS];
    for (int i = 0; i < TASKS; i++) {
        struct incrementer fr = { .m = &m, .counter = &counter, .n = ITERS };
        h[i] = spawn_task(rt, DESC(incrementer_poll, &fr, NULL, 0));
    }
    for (int i = 0; i < TASKS; i++)
        cr_assert_eq(join_value(&h[i]), 0);
    cr_assert_eq(counter, (uint64_t)TASKS * ITERS, "lost updates: no mutual exclusion");
    cr_assert_eq(weft_mutex_destroy(&m), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mutex, unlock_hands_over_in_fifo_order)
{
    enum { W = 10 };
    weft_runtime *rt = rt_make(4);
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_join h[W];
    reset_counters();
    cr_assert_eq(weft_mutex_try_lock(&m), 0);   /* held by this thread */
    for (int i = 0; i < W; i++)
        h[i] = queue_locker(rt, &m, i, NULL, 0);
    cr_assert_eq(weft_mutex_try_lock(&m), -EAGAIN);
    cr_assert_eq(weft_mutex_unlock(&m), 0, "a thread may unlock for a task to get it");
    for (int i = 0; i < W; i++)
        cr_assert_eq(join_value(&h[i]), 1);
    for (int i = 0; i < W; i++)
        cr_assert_eq(atomic_load(&order[i]), i, "handed over out of order");
    cr_assert_not(weft_mutex_is_locked(&m));
    cr_assert_eq(weft_mutex_destroy(&m), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mutex, unlock_never_lets_try_lock_overtake_a_waiter)
{
    weft_runtime *rt = rt_make(1);
    weft_mutex m = WEFT_MUTEX_INIT;
    blocker bl;
    reset_counters();
    cr_assert_eq(weft_mutex_try_lock(&m), 0);
    weft_join a = queue_locker(rt, &m, 1, NULL, 0);
    blocker_start(rt, &bl);
    cr_assert_eq(weft_mutex_unlock(&m), 0);     /* a owns it now, not yet run */
    cr_assert(weft_mutex_is_locked(&m));
    cr_assert_eq(weft_mutex_try_lock(&m), -EAGAIN, "the handoff is a's");
    blocker_release(&bl);
    cr_assert_eq(join_value(&a), 1);
    cr_assert_not(weft_mutex_is_locked(&m));
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct switcher {
    weft_frame f;
    weft_mutex *a, *b;
    weft_mutex_waiter w;
};

static weft_poll switcher_poll(weft_cx *cx, void *p)
{
    struct switcher *s = p;
    /* First poll queues on a; the re-poll tries b with the same waiter. */
    if (!s->w.weft_owner)
        return weft_mutex_lock(cx, s->a, &s->w);
    cr_assert_eq(weft_mutex_lock(cx, s->b, &s->w), -EINVAL);
    weft_poll r = weft_mutex_lock(cx, s->a, &s->w);
    if (r == 0)
        cr_assert_eq(weft_mutex_unlock(s->a), 0);
    return r;
}

Test(mutex, misuse_is_rejected)
{
    weft_mutex m = WEFT_MUTEX_INIT, other = WEFT_MUTEX_INIT;
    weft_mutex_waiter w = WEFT_MUTEX_WAITER_INIT;
    cr_assert_eq(weft_mutex_init(NULL), -EINVAL);
    cr_assert_eq(weft_mutex_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_mutex_try_lock(NULL), -EINVAL);
    cr_assert_eq(weft_mutex_unlock(NULL), -EINVAL);
    cr_assert_not(weft_mutex_is_locked(NULL));
    cr_assert_eq(weft_mutex_lock(NULL, &m, &w), -EINVAL);
    cr_assert_eq(weft_mutex_unlock(&m), -EPERM);

    weft_runtime *rt = rt_make(1);
    cr_assert_eq(weft_mutex_try_lock(&m), 0);
    struct switcher fr = { .a = &m, .b = &other };
    weft_join h = spawn_task(rt, DESC(switcher_poll, &fr, NULL, 0));
    WAIT_FOR(weft__mutex_waiters(&m) == 1);
    cr_assert_eq(weft_mutex_destroy(&m), -EBUSY);
    cr_assert_eq(weft_mutex_unlock(&m), 0);
    cr_assert_eq(join_value(&h), 0);
    cr_assert_eq(weft_mutex_destroy(&m), 0);
    cr_assert_eq(weft_mutex_destroy(&other), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation -------------------------------------------------------------- */

static void cancel_queued(unsigned flags)
{
    weft_runtime *rt = rt_make(2);
    weft_mutex m = WEFT_MUTEX_INIT;
    reset_counters();
    cr_assert_eq(weft_mutex_try_lock(&m), 0);
    weft_join a = queue_locker(rt, &m, 1, NULL, flags);
    weft_join b = queue_locker(rt, &m, 2, NULL, 0);
    cr_assert_eq(weft_abort(&a), 0);
    weft_outcome o = join_outcome(&a);
    if (flags & WEFT_TASK_CANCEL_SAFE)
        cr_assert_eq(o.status, -ECANCELED);
    else
        cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(weft__mutex_waiters(&m), 1, "the withdrawn wait left the line");
    cr_assert_eq(weft_mutex_unlock(&m), 0);
    cr_assert_eq(join_value(&b), 1, "b got the unlock: no wake-up lost");
    cr_assert_eq(atomic_load(&order_len), 1);
    cr_assert_eq(atomic_load(&order[0]), 2);
    cr_assert_not(weft_mutex_is_locked(&m), "a kept nothing");
    cr_assert_eq(weft_mutex_destroy(&m), 0);
    rt_done(rt);
}

Test(mutex, cancel_queued_lock_keeps_nothing_and_loses_no_wakeup)
{
    cancel_queued(0);
    cancel_queued(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

/* a is handed the mutex by an unlock but cannot run (the only worker is
 * busy) when it is aborted; b waits behind it unless `alone`. */
static void cancel_handed_over(unsigned flags, bool alone)
{
    weft_runtime *rt = rt_make(1);
    weft_mutex m = WEFT_MUTEX_INIT;
    blocker bl;
    reset_counters();
    cr_assert_eq(weft_mutex_try_lock(&m), 0);
    weft_join a = queue_locker(rt, &m, 1, NULL, flags);
    weft_join b = WEFT_JOIN_INIT;
    if (!alone)
        b = queue_locker(rt, &m, 2, NULL, 0);
    blocker_start(rt, &bl);
    cr_assert_eq(weft_mutex_unlock(&m), 0);     /* hands it to a */
    cr_assert_eq(weft_abort(&a), 0);
    blocker_release(&bl);
    weft_outcome o = join_outcome(&a);
    if (flags & WEFT_TASK_CANCEL_SAFE) {
        cr_assert_eq(o.status, -ECANCELED, "torn down");
        cr_assert_eq(atomic_load(&unlocked_in_drop), 0, "it never held: nothing to unlock");
    } else {
        cr_assert_eq(o.value, 2, "RACED: it got the mutex, then saw -ECANCELED and unlocked");
        cr_assert_eq(o.cancel.source, WEFT_CANCEL_ABORT);
    }
    if (!alone) {
        cr_assert_eq(join_value(&b), 1, "the mutex reached b");
    } else {
        cr_assert_not(weft_mutex_is_locked(&m), "passed on to nobody: free");
        cr_assert_eq(weft_mutex_try_lock(&m), 0);
        cr_assert_eq(weft_mutex_unlock(&m), 0);
    }
    cr_assert_eq(weft_mutex_destroy(&m), 0);
    rt_done(rt);
}

Test(mutex, cancel_handed_over_cooperative_keeps_the_mutex)
{
    cancel_handed_over(0, false);
    cancel_handed_over(0, true);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mutex, cancel_handed_over_torn_down_passes_it_on)
{
    cancel_handed_over(WEFT_TASK_CANCEL_SAFE, false);
    cancel_handed_over(WEFT_TASK_CANCEL_SAFE, true);
    WEFT_ASSERT_NO_LEAKS();
}

static void cancel_holding(unsigned flags)
{
    weft_runtime *rt = rt_make(2);
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_notify never = WEFT_NOTIFY_INIT;
    reset_counters();
    weft_join a = spawn_locker(rt, &m, 1, &never, flags);
    WAIT_FOR(weft__notify_waiters(&never) == 1);    /* a holds the mutex */
    cr_assert(weft_mutex_is_locked(&m));
    weft_join b = queue_locker(rt, &m, 2, NULL, 0);
    cr_assert_eq(weft_abort(&a), 0);
    weft_outcome o = join_outcome(&a);
    if (flags & WEFT_TASK_CANCEL_SAFE) {
        cr_assert_eq(o.status, -ECANCELED);
        cr_assert_eq(atomic_load(&unlocked_in_drop), 1, "the drop hook unlocked");
    } else {
        cr_assert_eq(o.value, 2, "the await while holding yielded -ECANCELED; it unlocked");
    }
    cr_assert_eq(join_value(&b), 1);
    cr_assert_not(weft_mutex_is_locked(&m));
    cr_assert_eq(weft_notify_destroy(&never), 0);
    cr_assert_eq(weft_mutex_destroy(&m), 0);
    rt_done(rt);
}

Test(mutex, cancel_while_holding)
{
    cancel_holding(0);
    cancel_holding(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mutex, token_cancels_a_queued_lock_wait)
{
    weft_runtime *rt = rt_make(2);
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_token *tok;
    reset_counters();
    cr_assert_eq(weft_token_new(&tok), 0);
    cr_assert_eq(weft_mutex_try_lock(&m), 0);
    struct locker fr = { .m = &m, .id = 1 };
    weft_task_desc d = DESC(locker_poll, &fr, locker_drop, 0);
    d.tokens = &tok;
    d.ntokens = 1;
    weft_join a = spawn_task(rt, d);
    WAIT_FOR(weft__mutex_waiters(&m) == 1);
    weft_join b = queue_locker(rt, &m, 2, NULL, 0);
    cr_assert_eq(weft_token_cancel(tok), 0);
    weft_outcome o = join_outcome(&a);
    cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(o.cancel.source, WEFT_CANCEL_TOKEN);
    cr_assert_eq(weft_mutex_unlock(&m), 0);
    cr_assert_eq(join_value(&b), 1);
    cr_assert_eq(weft_mutex_destroy(&m), 0);
    weft_token_release(tok);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(mutex, shutdown_withdraws_lock_waits)
{
    weft_runtime *rt = rt_make(2);
    weft_mutex m = WEFT_MUTEX_INIT;
    reset_counters();
    cr_assert_eq(weft_mutex_try_lock(&m), 0);
    weft_join a = queue_locker(rt, &m, 1, NULL, WEFT_TASK_SHIELDED);
    weft_join b = queue_locker(rt, &m, 2, NULL, 0);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(join_outcome(&a).status, -ECANCELED);
    cr_assert_eq(join_value(&b), -ECANCELED);
    cr_assert_eq(weft__mutex_waiters(&m), 0, "no wait left linked");
    cr_assert_eq(weft_mutex_unlock(&m), 0);
    cr_assert_not(weft_mutex_is_locked(&m));
    cr_assert_eq(weft_mutex_destroy(&m), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
