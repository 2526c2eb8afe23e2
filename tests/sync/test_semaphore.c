/*
 * tests/sync/test_semaphore.c - the semaphore: try_acquire/release, permit
 * conservation, strict FIFO with acquire-many (a large head blocks smaller
 * requests), close, misuse, and the cancellation contract of an acquire in
 * each state (queued, queued at the head, granted but not yet run, woken by
 * close, holding), for cooperative and cancel-safe tasks, and at shutdown.
 */
#include "sync/inspect_waits.h"
#include "sync_test.h"

TestSuite(semaphore, .timeout = 120);

/* ---- the acquirer task ------------------------------------------------------- */

/*
 * Acquire n; account for them; record the order; await `hold` (when set) or
 * yield while holding; release. Returns 1 when it held and released
 * normally, 2 when its await while holding was cancelled (it still
 * released), or the acquire's error. A cancel-safe acquirer torn down while
 * holding releases in its drop hook.
 */
static _Atomic int order[128];
static _Atomic int order_len;
static _Atomic int64_t in_use;
static _Atomic int released_in_drop;
static int64_t total_permits;

struct acquirer {
    weft_frame f;
    weft_semaphore *s;
    weft_notify *hold;
    uint64_t n;
    int id;
    bool held;
    weft_semaphore_waiter w;
    weft_notify_waiter hw;
    int64_t rc, hrc;
};

static weft_poll acquirer_poll(weft_cx *cx, void *p)
{
    struct acquirer *a = p;
    WEFT_BEGIN(&a->f);
    WEFT_AWAIT(&a->f, a->rc, weft_semaphore_acquire(cx, a->s, &a->w, a->n));
    if (a->rc < 0)
        WEFT_RETURN(&a->f, a->rc);
    a->held = true;
    cr_assert_leq(atomic_fetch_add(&in_use, (int64_t)a->n) + (int64_t)a->n, total_permits,
                  "more permits in use than exist");
    atomic_store(&order[atomic_fetch_add(&order_len, 1)], a->id);
    if (a->hold)
        WEFT_AWAIT(&a->f, a->hrc, weft_notify_wait(cx, a->hold, &a->hw));
    else
        WEFT_YIELD(&a->f, a->hrc);
    atomic_fetch_sub(&in_use, (int64_t)a->n);
    a->held = false;
    cr_assert_eq(weft_semaphore_release(a->s, a->n), 0);
    WEFT_RETURN(&a->f, a->hrc == 0 ? 1 : 2);
    WEFT_END(&a->f);
}

static void acquirer_drop(void *p)
{
    struct acquirer *a = p;
    if (a->held) {
        atomic_fetch_sub(&in_use, (int64_t)a->n);
        cr_assert_eq(weft_semaphore_release(a->s, a->n), 0);
        atomic_fetch_add(&released_in_drop, 1);
    }
}

static weft_join spawn_acquirer(weft_runtime *rt, weft_semaphore *s, uint64_t n, int id,
                                weft_notify *hold, unsigned flags)
{
    struct acquirer fr = { .s = s, .n = n, .id = id, .hold = hold };
    return spawn_task(rt, DESC(acquirer_poll, &fr, acquirer_drop, flags));
}

static weft_join queue_acquirer(weft_runtime *rt, weft_semaphore *s, uint64_t n, int id,
                                weft_notify *hold, unsigned flags)
{
    size_t before = weft__semaphore_waiters(s);
    weft_join h = spawn_acquirer(rt, s, n, id, hold, flags);
    WAIT_FOR(weft__semaphore_waiters(s) == before + 1);
    return h;
}

static void reset_counters(int64_t total)
{
    atomic_store(&order_len, 0);
    atomic_store(&in_use, 0);
    atomic_store(&released_in_drop, 0);
    total_permits = total;
}

/* ---- basics -------------------------------------------------------------------- */

Test(semaphore, try_acquire_and_release_count_permits)
{
    weft_semaphore s;
    cr_assert_eq(weft_semaphore_init(&s, 3), 0);
    cr_assert_eq(weft_semaphore_available(&s), 3);
    cr_assert_eq(weft_semaphore_try_acquire(&s, 2), 0);
    cr_assert_eq(weft_semaphore_try_acquire(&s, 2), -EAGAIN, "one left");
    cr_assert_eq(weft_semaphore_try_acquire(&s, 1), 0);
    cr_assert_eq(weft_semaphore_available(&s), 0);
    cr_assert_eq(weft_semaphore_release(&s, 3), 0);
    cr_assert_eq(weft_semaphore_available(&s), 3);
    cr_assert_eq(weft_semaphore_release(&s, 2), 0, "new permits may be added");
    cr_assert_eq(weft_semaphore_available(&s), 5);
    cr_assert_eq(weft_semaphore_release(&s, WEFT_SEMAPHORE_MAX_PERMITS), -EOVERFLOW);
    cr_assert_eq(weft_semaphore_available(&s), 5, "nothing added on overflow");
    cr_assert_eq(weft_semaphore_destroy(&s), 0);
    weft_semaphore big = WEFT_SEMAPHORE_INIT(WEFT_SEMAPHORE_MAX_PERMITS);
    cr_assert_eq(weft_semaphore_try_acquire(&big, WEFT_SEMAPHORE_MAX_PERMITS), 0);
    cr_assert_eq(weft_semaphore_release(&big, WEFT_SEMAPHORE_MAX_PERMITS), 0);
    cr_assert_eq(weft_semaphore_release(&big, 1), -EOVERFLOW);
    WEFT_ASSERT_NO_LEAKS();
}

/* Tasks take random amounts; the count in use never exceeds the total and
 * every permit comes back. */
struct churner {
    weft_frame f;
    weft_semaphore *s;
    uint32_t rng;
    int i;
    uint64_t n;
    weft_semaphore_waiter w;
    int64_t rc;
};

static weft_poll churner_poll(weft_cx *cx, void *p)
{
    struct churner *c = p;
    WEFT_BEGIN(&c->f);
    for (c->i = 0; c->i < 300; c->i++) {
        c->rng = c->rng * 1103515245u + 12345u;
        c->n = 1 + (c->rng >> 16) % 5;
        WEFT_AWAIT(&c->f, c->rc, weft_semaphore_acquire(cx, c->s, &c->w, c->n));
        cr_assert_eq(c->rc, 0);
        cr_assert_leq(atomic_fetch_add(&in_use, (int64_t)c->n) + (int64_t)c->n, total_permits);
        WEFT_YIELD(&c->f, c->rc);
        atomic_fetch_sub(&in_use, (int64_t)c->n);
        cr_assert_eq(weft_semaphore_release(c->s, c->n), 0);
    }
    WEFT_RETURN(&c->f, 0);
    WEFT_END(&c->f);
}

Test(semaphore, permits_are_conserved_across_workers)
{
    enum { TASKS = 16 };
    weft_runtime *rt = rt_make(4);
    weft_semaphore s = WEFT_SEMAPHORE_INIT(7);
    weft_join h[TASKS];
    reset_counters(7);
    for (int i = 0; i < TASKS; i++) {
        struct churner fr = { .s = &s, .rng = (uint32_t)i * 7919u + 1 };
        h[i] = spawn_task(rt, DESC(churner_poll, &fr, NULL, 0));
    }
    for (int i = 0; i < TASKS; i++)
        cr_assert_eq(join_value(&h[i]), 0);
    cr_assert_eq(weft_semaphore_available(&s), 7);
    cr_assert_eq(weft_semaphore_destroy(&s), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(semaphore, strict_fifo_a_large_head_blocks_smaller_requests)
{
    weft_runtime *rt = rt_make(4);
    weft_semaphore s = WEFT_SEMAPHORE_INIT(0);
    weft_notify hold = WEFT_NOTIFY_INIT;
    reset_counters(6);
    weft_join a = queue_acquirer(rt, &s, 3, 1, &hold, 0);
    weft_join b = queue_acquirer(rt, &s, 1, 2, &hold, 0);
    weft_join c = queue_acquirer(rt, &s, 2, 3, &hold, 0);
    cr_assert_eq(weft_semaphore_release(&s, 2), 0);
    cr_assert_eq(weft__semaphore_waiters(&s), 3, "a (3) at the head blocks b (1) and c (2)");
    cr_assert_eq(weft_semaphore_available(&s), 2);
    cr_assert_eq(weft_semaphore_try_acquire(&s, 1), -EAGAIN, "no overtaking the line");
    cr_assert_eq(weft_semaphore_release(&s, 1), 0);
    WAIT_FOR(weft__notify_waiters(&hold) == 1);
    cr_assert_eq(weft__semaphore_waiters(&s), 2, "a got all 3 at once");
    cr_assert_eq(weft_semaphore_available(&s), 0);
    /* One grant at a time: tasks granted together may run in either order on
     * different workers, so only a staggered release shows the grant order. */
    cr_assert_eq(weft_semaphore_release(&s, 1), 0);
    WAIT_FOR(weft__notify_waiters(&hold) == 2);
    cr_assert_eq(weft__semaphore_waiters(&s), 1, "b (1) is next, c (2) still waits");
    cr_assert_eq(weft_semaphore_release(&s, 2), 0);
    WAIT_FOR(weft__notify_waiters(&hold) == 3);
    cr_assert_eq(weft_semaphore_available(&s), 0, "b and c hold the three");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(atomic_load(&order[i]), i + 1, "granted out of order");
    cr_assert_eq(weft_notify_all(&hold), 3);
    cr_assert_eq(join_value(&a), 1);
    cr_assert_eq(join_value(&b), 1);
    cr_assert_eq(join_value(&c), 1);
    cr_assert_eq(weft_semaphore_available(&s), 6);
    cr_assert_eq(weft_semaphore_destroy(&s), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(semaphore, one_release_wakes_many_waiters)
{
    enum { W = 70 };    /* more than one wake batch */
    weft_runtime *rt = rt_make(4);
    weft_semaphore s = WEFT_SEMAPHORE_INIT(0);
    static weft_join h[W];
    reset_counters(W);
    for (int i = 0; i < W; i++)
        h[i] = spawn_acquirer(rt, &s, 1, i, NULL, 0);
    WAIT_FOR(weft__semaphore_waiters(&s) == W);
    cr_assert_eq(weft_semaphore_release(&s, W), 0);
    for (int i = 0; i < W; i++)
        cr_assert_eq(join_value(&h[i]), 1);
    cr_assert_eq(weft_semaphore_available(&s), W);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(semaphore, close_fails_waiters_and_later_acquires)
{
    weft_runtime *rt = rt_make(2);
    weft_semaphore s = WEFT_SEMAPHORE_INIT(2);
    reset_counters(4);
    cr_assert_eq(weft_semaphore_try_acquire(&s, 1), 0);     /* held across the close */
    weft_join a = queue_acquirer(rt, &s, 2, 1, NULL, 0);
    weft_join b = queue_acquirer(rt, &s, 1, 2, NULL, 0);
    cr_assert_not(weft_semaphore_is_closed(&s));
    cr_assert_eq(weft_semaphore_close(&s), 0);
    cr_assert_eq(weft_semaphore_close(&s), 0, "idempotent");
    cr_assert(weft_semaphore_is_closed(&s));
    cr_assert_eq(join_value(&a), -EPIPE);
    cr_assert_eq(join_value(&b), -EPIPE);
    weft_join c = spawn_acquirer(rt, &s, 1, 3, NULL, 0);
    cr_assert_eq(join_value(&c), -EPIPE, "even with a permit free");
    cr_assert_eq(weft_semaphore_try_acquire(&s, 1), -EPIPE);
    cr_assert_eq(weft_semaphore_release(&s, 1), 0, "a held permit can still be given back");
    cr_assert_eq(weft_semaphore_available(&s), 2);
    cr_assert_eq(weft_semaphore_destroy(&s), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct switcher {
    weft_frame f;
    weft_semaphore *a, *b;
    weft_semaphore_waiter w;
};

static weft_poll switcher_poll(weft_cx *cx, void *p)
{
    struct switcher *s = p;
    if (!s->w.weft_owner)
        return weft_semaphore_acquire(cx, s->a, &s->w, 2);
    cr_assert_eq(weft_semaphore_acquire(cx, s->b, &s->w, 2), -EINVAL, "another semaphore");
    cr_assert_eq(weft_semaphore_acquire(cx, s->a, &s->w, 1), -EINVAL, "another count");
    weft_poll r = weft_semaphore_acquire(cx, s->a, &s->w, 2);
    if (r == 0)
        cr_assert_eq(weft_semaphore_release(s->a, 2), 0);
    return r;
}

Test(semaphore, misuse_is_rejected)
{
    weft_semaphore s = WEFT_SEMAPHORE_INIT(0), other = WEFT_SEMAPHORE_INIT(5);
    weft_semaphore_waiter w = WEFT_SEMAPHORE_WAITER_INIT;
    cr_assert_eq(weft_semaphore_init(NULL, 1), -EINVAL);
    cr_assert_eq(weft_semaphore_init(&s, WEFT_SEMAPHORE_MAX_PERMITS + 1), -EINVAL);
    cr_assert_eq(weft_semaphore_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_semaphore_try_acquire(NULL, 1), -EINVAL);
    cr_assert_eq(weft_semaphore_try_acquire(&s, 0), -EINVAL);
    cr_assert_eq(weft_semaphore_try_acquire(&s, WEFT_SEMAPHORE_MAX_PERMITS + 1), -EINVAL);
    cr_assert_eq(weft_semaphore_release(NULL, 1), -EINVAL);
    cr_assert_eq(weft_semaphore_release(&s, 0), -EINVAL);
    cr_assert_eq(weft_semaphore_close(NULL), -EINVAL);
    cr_assert_eq(weft_semaphore_available(NULL), -EINVAL);
    cr_assert(weft_semaphore_is_closed(NULL));
    cr_assert_eq(weft_semaphore_acquire(NULL, &s, &w, 1), -EINVAL);

    weft_runtime *rt = rt_make(1);
    struct switcher fr = { .a = &s, .b = &other };
    weft_join h = spawn_task(rt, DESC(switcher_poll, &fr, NULL, 0));
    WAIT_FOR(weft__semaphore_waiters(&s) == 1);
    cr_assert_eq(weft_semaphore_destroy(&s), -EBUSY);
    cr_assert_eq(weft_semaphore_release(&s, 2), 0);
    cr_assert_eq(join_value(&h), 0);
    cr_assert_eq(weft_semaphore_destroy(&s), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation -------------------------------------------------------------- */

static void cancel_queued(unsigned flags)
{
    weft_runtime *rt = rt_make(2);
    weft_semaphore s = WEFT_SEMAPHORE_INIT(0);
    reset_counters(2);
    weft_join a = queue_acquirer(rt, &s, 2, 1, NULL, 0);
    weft_join b = queue_acquirer(rt, &s, 1, 2, NULL, flags);
    weft_join c = queue_acquirer(rt, &s, 1, 3, NULL, 0);
    cr_assert_eq(weft_abort(&b), 0);
    weft_outcome o = join_outcome(&b);
    if (flags & WEFT_TASK_CANCEL_SAFE)
        cr_assert_eq(o.status, -ECANCELED);
    else
        cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(weft__semaphore_waiters(&s), 2);
    cr_assert_eq(weft_semaphore_release(&s, 2), 0);
    cr_assert_eq(join_value(&a), 1);
    cr_assert_eq(join_value(&c), 1, "the wait behind the withdrawn one lost nothing");
    cr_assert_eq(atomic_load(&order_len), 2);
    cr_assert_eq(weft_semaphore_available(&s), 2, "b kept no permit");
    rt_done(rt);
}

Test(semaphore, cancel_queued_acquire_keeps_nothing)
{
    cancel_queued(0);
    cancel_queued(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

static void cancel_queued_head(unsigned flags)
{
    weft_runtime *rt = rt_make(2);
    weft_semaphore s = WEFT_SEMAPHORE_INIT(2);
    reset_counters(2);
    weft_join a = queue_acquirer(rt, &s, 3, 1, NULL, flags);    /* blocks the line */
    weft_join b = queue_acquirer(rt, &s, 1, 2, NULL, 0);
    weft_join c = queue_acquirer(rt, &s, 1, 3, NULL, 0);
    cr_assert_eq(weft_abort(&a), 0);
    weft_outcome o = join_outcome(&a);
    if (flags & WEFT_TASK_CANCEL_SAFE)
        cr_assert_eq(o.status, -ECANCELED);
    else
        cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(join_value(&b), 1, "the withdrawal of the head let b in at once");
    cr_assert_eq(join_value(&c), 1);
    cr_assert_eq(weft_semaphore_available(&s), 2);
    rt_done(rt);
}

Test(semaphore, cancel_queued_head_grants_the_waiters_behind_it)
{
    cancel_queued_head(0);
    cancel_queued_head(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

/* a is granted 2 by a release but cannot run when it is aborted; b (2)
 * waits behind it. */
static void cancel_granted(unsigned flags)
{
    weft_runtime *rt = rt_make(1);
    weft_semaphore s = WEFT_SEMAPHORE_INIT(0);
    blocker bl;
    reset_counters(2);
    weft_join a = queue_acquirer(rt, &s, 2, 1, NULL, flags);
    weft_join b = queue_acquirer(rt, &s, 2, 2, NULL, 0);
    blocker_start(rt, &bl);
    cr_assert_eq(weft_semaphore_release(&s, 2), 0);     /* granted to a */
    cr_assert_eq(weft_semaphore_available(&s), 0);
    cr_assert_eq(weft_abort(&a), 0);
    blocker_release(&bl);
    weft_outcome o = join_outcome(&a);
    if (flags & WEFT_TASK_CANCEL_SAFE) {
        cr_assert_eq(o.status, -ECANCELED);
        cr_assert_eq(atomic_load(&released_in_drop), 0, "it never held them");
    } else {
        cr_assert_eq(o.value, 2, "RACED: it held both permits, then released them");
    }
    cr_assert_eq(join_value(&b), 1, "the permits reached b");
    cr_assert_eq(weft_semaphore_available(&s), 2, "none lost, none duplicated");
    cr_assert_eq(weft_semaphore_destroy(&s), 0);
    rt_done(rt);
}

Test(semaphore, cancel_granted_cooperative_keeps_the_permits)
{
    cancel_granted(0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(semaphore, cancel_granted_torn_down_passes_the_permits_on)
{
    cancel_granted(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

static void cancel_closed(unsigned flags)
{
    weft_runtime *rt = rt_make(1);
    weft_semaphore s = WEFT_SEMAPHORE_INIT(0);
    blocker bl;
    reset_counters(1);
    weft_join a = queue_acquirer(rt, &s, 1, 1, NULL, flags);
    blocker_start(rt, &bl);
    cr_assert_eq(weft_semaphore_close(&s), 0);
    cr_assert_eq(weft__semaphore_waiters(&s), 0);
    cr_assert_eq(weft_semaphore_destroy(&s), -EBUSY, "a is woken but still in flight");
    cr_assert_eq(weft_abort(&a), 0);
    blocker_release(&bl);
    weft_outcome o = join_outcome(&a);
    if (flags & WEFT_TASK_CANCEL_SAFE)
        cr_assert_eq(o.status, -ECANCELED);
    else
        cr_assert_eq(o.value, -EPIPE, "RACED: the close is reported");
    cr_assert_eq(weft_semaphore_destroy(&s), 0, "settled either way");
    rt_done(rt);
}

Test(semaphore, cancel_after_close_woke_it_reports_the_close)
{
    cancel_closed(0);
    cancel_closed(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

static void cancel_holding(unsigned flags)
{
    weft_runtime *rt = rt_make(2);
    weft_semaphore s = WEFT_SEMAPHORE_INIT(3);
    weft_notify never = WEFT_NOTIFY_INIT;
    reset_counters(3);
    weft_join a = spawn_acquirer(rt, &s, 2, 1, &never, flags);
    WAIT_FOR(weft__notify_waiters(&never) == 1);
    weft_join b = queue_acquirer(rt, &s, 3, 2, NULL, 0);
    cr_assert_eq(weft_abort(&a), 0);
    weft_outcome o = join_outcome(&a);
    if (flags & WEFT_TASK_CANCEL_SAFE) {
        cr_assert_eq(o.status, -ECANCELED);
        cr_assert_eq(atomic_load(&released_in_drop), 1, "the drop hook released");
    } else {
        cr_assert_eq(o.value, 2);
    }
    cr_assert_eq(join_value(&b), 1);
    cr_assert_eq(weft_semaphore_available(&s), 3);
    cr_assert_eq(weft_notify_destroy(&never), 0);
    rt_done(rt);
}

Test(semaphore, cancel_while_holding)
{
    cancel_holding(0);
    cancel_holding(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

Test(semaphore, shutdown_withdraws_acquires)
{
    weft_runtime *rt = rt_make(2);
    weft_semaphore s = WEFT_SEMAPHORE_INIT(0);
    reset_counters(1);
    weft_join a = queue_acquirer(rt, &s, 1, 1, NULL, WEFT_TASK_SHIELDED);
    weft_join b = queue_acquirer(rt, &s, 1, 2, NULL, 0);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(join_outcome(&a).status, -ECANCELED);
    cr_assert_eq(join_value(&b), -ECANCELED);
    cr_assert_eq(weft__semaphore_waiters(&s), 0);
    cr_assert_eq(weft_semaphore_available(&s), 0);
    cr_assert_eq(weft_semaphore_destroy(&s), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
