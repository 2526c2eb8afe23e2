/*
 * tests/sync/test_rwlock.c - the read-write lock: try variants, exclusion,
 * FIFO order with writer preference (a reader arriving after a queued writer
 * waits behind it; readers queued together are admitted together),
 * downgrade, misuse, and the cancellation contract of read and write waits
 * in each state (queued, queued writer at the head, handed the lock but not
 * yet run, holding), for cooperative and cancel-safe tasks, and at shutdown.
 */
#include "sync/inspect_waits.h"
#include "sync_test.h"

TestSuite(rwlock, .timeout = 120);

/* ---- the rw task ------------------------------------------------------------- */

/*
 * Take a read or write hold; check exclusion; record the order; await `hold`
 * (when set) or yield while holding; unlock. Returns 1 when it held and let
 * go normally, 2 when its await while holding was cancelled (it still
 * unlocked), or the wait's error. A cancel-safe one torn down while holding
 * unlocks in its drop hook.
 */
static _Atomic int order[128];
static _Atomic int order_len;
static _Atomic int readers_in, writers_in;
static _Atomic int unlocked_in_drop;

struct rw_task {
    weft_frame f;
    weft_rwlock *rw;
    weft_notify *hold;
    bool write, held;
    int id;
    weft_rwlock_waiter w;
    weft_notify_waiter hw;
    int64_t rc, hrc;
};

static void enter(bool write)
{
    if (write) {
        cr_assert_eq(atomic_fetch_add(&writers_in, 1), 0, "two writers");
        cr_assert_eq(atomic_load(&readers_in), 0, "a writer with readers");
    } else {
        atomic_fetch_add(&readers_in, 1);
        cr_assert_eq(atomic_load(&writers_in), 0, "a reader with a writer");
    }
}

static void leave(bool write)
{
    atomic_fetch_sub(write ? &writers_in : &readers_in, 1);
}

static int unlock_hold(weft_rwlock *rw, bool write)
{
    return write ? weft_rwlock_write_unlock(rw) : weft_rwlock_read_unlock(rw);
}

static weft_poll rw_poll(weft_cx *cx, void *p)
{
    struct rw_task *t = p;
    WEFT_BEGIN(&t->f);
    if (t->write)
        WEFT_AWAIT(&t->f, t->rc, weft_rwlock_write(cx, t->rw, &t->w));
    else
        WEFT_AWAIT(&t->f, t->rc, weft_rwlock_read(cx, t->rw, &t->w));
    if (t->rc < 0)
        WEFT_RETURN(&t->f, t->rc);
    t->held = true;
    enter(t->write);
    atomic_store(&order[atomic_fetch_add(&order_len, 1)], t->id);
    if (t->hold)
        WEFT_AWAIT(&t->f, t->hrc, weft_notify_wait(cx, t->hold, &t->hw));
    else
        WEFT_YIELD(&t->f, t->hrc);
    leave(t->write);
    t->held = false;
    cr_assert_eq(unlock_hold(t->rw, t->write), 0);
    WEFT_RETURN(&t->f, t->hrc == 0 ? 1 : 2);
    WEFT_END(&t->f);
}

static void rw_drop(void *p)
{
    struct rw_task *t = p;
    if (t->held) {
        leave(t->write);
        cr_assert_eq(unlock_hold(t->rw, t->write), 0);
        atomic_fetch_add(&unlocked_in_drop, 1);
    }
}

static weft_join spawn_rw(weft_runtime *rt, weft_rwlock *rw, bool write, int id,
                          weft_notify *hold, unsigned flags)
{
    struct rw_task fr = { .rw = rw, .write = write, .id = id, .hold = hold };
    return spawn_task(rt, DESC(rw_poll, &fr, rw_drop, flags));
}

static weft_join queue_rw(weft_runtime *rt, weft_rwlock *rw, bool write, int id,
                          weft_notify *hold, unsigned flags)
{
    size_t before = weft__rwlock_waiters(rw);
    weft_join h = spawn_rw(rt, rw, write, id, hold, flags);
    WAIT_FOR(weft__rwlock_waiters(rw) == before + 1);
    return h;
}

static void reset_counters(void)
{
    atomic_store(&order_len, 0);
    atomic_store(&readers_in, 0);
    atomic_store(&writers_in, 0);
    atomic_store(&unlocked_in_drop, 0);
}

#define R false
#define W true

/* ---- basics -------------------------------------------------------------------- */

Test(rwlock, try_variants_and_unlocks)
{
    weft_rwlock rw;
    cr_assert_eq(weft_rwlock_init(&rw), 0);
    cr_assert_eq(weft_rwlock_try_read(&rw), 0);
    cr_assert_eq(weft_rwlock_try_read(&rw), 0, "readers share");
    cr_assert_eq(weft_rwlock_try_write(&rw), -EAGAIN);
    cr_assert_eq(weft_rwlock_write_unlock(&rw), -EPERM, "not write-held");
    cr_assert_eq(weft_rwlock_downgrade(&rw), -EPERM);
    cr_assert_eq(weft_rwlock_destroy(&rw), -EBUSY);
    cr_assert_eq(weft_rwlock_read_unlock(&rw), 0);
    cr_assert_eq(weft_rwlock_read_unlock(&rw), 0);
    cr_assert_eq(weft_rwlock_read_unlock(&rw), -EPERM, "no read hold left");
    cr_assert_eq(weft_rwlock_try_write(&rw), 0);
    cr_assert_eq(weft_rwlock_try_read(&rw), -EAGAIN);
    cr_assert_eq(weft_rwlock_try_write(&rw), -EAGAIN);
    cr_assert_eq(weft_rwlock_read_unlock(&rw), -EPERM, "write-held, not read-held");
    cr_assert_eq(weft_rwlock_downgrade(&rw), 0);
    cr_assert_eq(weft_rwlock_try_read(&rw), 0, "downgraded: readers may join");
    cr_assert_eq(weft_rwlock_try_write(&rw), -EAGAIN);
    cr_assert_eq(weft_rwlock_read_unlock(&rw), 0);
    cr_assert_eq(weft_rwlock_read_unlock(&rw), 0);
    cr_assert_eq(weft_rwlock_destroy(&rw), 0);
    WEFT_ASSERT_NO_LEAKS();
}

struct mixer {
    weft_frame f;
    weft_rwlock *rw;
    uint64_t *data;     /* two words a writer keeps equal */
    uint32_t rng;
    int i;
    bool write;
    weft_rwlock_waiter w;
    int64_t rc;
};

static weft_poll mixer_poll(weft_cx *cx, void *p)
{
    struct mixer *m = p;
    WEFT_BEGIN(&m->f);
    for (m->i = 0; m->i < 300; m->i++) {
        m->rng = m->rng * 1103515245u + 12345u;
        m->write = (m->rng >> 16) % 4 == 0;
        if (m->write) {
            WEFT_AWAIT(&m->f, m->rc, weft_rwlock_write(cx, m->rw, &m->w));
            cr_assert_eq(m->rc, 0);
            enter(W);
            m->data[0]++;
            WEFT_YIELD(&m->f, m->rc);
            m->data[1]++;
            leave(W);
            cr_assert_eq(weft_rwlock_write_unlock(m->rw), 0);
        } else {
            WEFT_AWAIT(&m->f, m->rc, weft_rwlock_read(cx, m->rw, &m->w));
            cr_assert_eq(m->rc, 0);
            enter(R);
            cr_assert_eq(m->data[0], m->data[1], "a reader saw a half-done write");
            WEFT_YIELD(&m->f, m->rc);
            leave(R);
            cr_assert_eq(weft_rwlock_read_unlock(m->rw), 0);
        }
    }
    WEFT_RETURN(&m->f, 0);
    WEFT_END(&m->f);
}

Test(rwlock, readers_and_writers_exclude_each_other)
{
    enum { TASKS = 16 };
    weft_runtime *rt = rt_make(4);
    weft_rwlock rw = WEFT_RWLOCK_INIT;
    uint64_t data[2] = { 0, 0 };
    weft_join h[TASKS];
    reset_counters();
    for (int i = 0; i < TASKS; i++) {
        struct mixer fr = { .rw = &rw, .data = data, .rng = (uint32_t)i * 7919u + 3 };
        h[i] = spawn_task(rt, DESC(mixer_poll, &fr, NULL, 0));
    }
    for (int i = 0; i < TASKS; i++)
        cr_assert_eq(join_value(&h[i]), 0);
    cr_assert_eq(data[0], data[1]);
    cr_assert_eq(weft_rwlock_destroy(&rw), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(rwlock, a_queued_writer_keeps_later_readers_out)
{
    weft_runtime *rt = rt_make(2);
    weft_rwlock rw = WEFT_RWLOCK_INIT;
    reset_counters();
    cr_assert_eq(weft_rwlock_try_read(&rw), 0);             /* this thread reads */
    weft_join w = queue_rw(rt, &rw, W, 1, NULL, 0);
    cr_assert_eq(weft_rwlock_try_read(&rw), -EAGAIN, "a writer waits: no new readers");
    weft_join r = queue_rw(rt, &rw, R, 2, NULL, 0);
    cr_assert_eq(weft_rwlock_read_unlock(&rw), 0);
    cr_assert_eq(join_value(&w), 1);
    cr_assert_eq(join_value(&r), 1);
    cr_assert_eq(atomic_load(&order[0]), 1, "the writer went first");
    cr_assert_eq(atomic_load(&order[1]), 2);
    cr_assert_eq(weft_rwlock_destroy(&rw), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(rwlock, readers_queued_before_a_writer_are_admitted_together)
{
    weft_runtime *rt = rt_make(4);
    weft_rwlock rw = WEFT_RWLOCK_INIT;
    weft_notify hold = WEFT_NOTIFY_INIT;
    reset_counters();
    cr_assert_eq(weft_rwlock_try_write(&rw), 0);            /* this thread writes */
    weft_join r1 = queue_rw(rt, &rw, R, 1, &hold, 0);
    weft_join r2 = queue_rw(rt, &rw, R, 2, &hold, 0);
    weft_join w = queue_rw(rt, &rw, W, 3, &hold, 0);
    weft_join r3 = queue_rw(rt, &rw, R, 4, &hold, 0);
    cr_assert_eq(weft_rwlock_write_unlock(&rw), 0);
    WAIT_FOR(weft__notify_waiters(&hold) == 2);             /* r1 and r2 both hold */
    cr_assert_eq(weft__rwlock_waiters(&rw), 2, "w and r3 still wait");
    cr_assert_eq(atomic_load(&readers_in), 2);
    cr_assert_eq(weft_notify_all(&hold), 2);
    cr_assert_eq(join_value(&r1), 1);
    cr_assert_eq(join_value(&r2), 1);
    WAIT_FOR(weft__notify_waiters(&hold) == 1);             /* now w holds */
    cr_assert_eq(atomic_load(&writers_in), 1);
    cr_assert_eq(weft__rwlock_waiters(&rw), 1, "r3 waits for the writer");
    cr_assert_eq(weft_notify_one(&hold), 1);
    cr_assert_eq(join_value(&w), 1);
    WAIT_FOR(weft__notify_waiters(&hold) == 1);             /* r3 */
    cr_assert_eq(weft_notify_one(&hold), 1);
    cr_assert_eq(join_value(&r3), 1);
    cr_assert_eq(atomic_load(&order[2]), 3);
    cr_assert_eq(atomic_load(&order[3]), 4);
    cr_assert_eq(weft_rwlock_destroy(&rw), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(rwlock, downgrade_admits_the_readers_at_the_head)
{
    weft_runtime *rt = rt_make(2);
    weft_rwlock rw = WEFT_RWLOCK_INIT;
    reset_counters();
    cr_assert_eq(weft_rwlock_try_write(&rw), 0);
    weft_join r1 = queue_rw(rt, &rw, R, 1, NULL, 0);
    weft_join w = queue_rw(rt, &rw, W, 2, NULL, 0);
    cr_assert_eq(weft_rwlock_downgrade(&rw), 0);
    cr_assert_eq(join_value(&r1), 1, "r1 read alongside the downgraded hold");
    cr_assert_eq(weft__rwlock_waiters(&rw), 1, "w waits for the downgraded hold");
    cr_assert_eq(weft_rwlock_read_unlock(&rw), 0);
    cr_assert_eq(join_value(&w), 1);
    cr_assert_eq(weft_rwlock_destroy(&rw), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(rwlock, many_readers_woken_by_one_unlock)
{
    enum { N = 70 };    /* more than one wake batch */
    weft_runtime *rt = rt_make(4);
    weft_rwlock rw = WEFT_RWLOCK_INIT;
    static weft_join h[N];
    reset_counters();
    cr_assert_eq(weft_rwlock_try_write(&rw), 0);
    for (int i = 0; i < N; i++)
        h[i] = spawn_rw(rt, &rw, R, i, NULL, 0);
    WAIT_FOR(weft__rwlock_waiters(&rw) == N);
    cr_assert_eq(weft_rwlock_write_unlock(&rw), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(join_value(&h[i]), 1);
    cr_assert_eq(weft_rwlock_destroy(&rw), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct switcher {
    weft_frame f;
    weft_rwlock *a, *b;
    weft_rwlock_waiter w;
};

static weft_poll switcher_poll(weft_cx *cx, void *p)
{
    struct switcher *s = p;
    if (!s->w.weft_owner)
        return weft_rwlock_read(cx, s->a, &s->w);
    cr_assert_eq(weft_rwlock_read(cx, s->b, &s->w), -EINVAL, "another lock");
    cr_assert_eq(weft_rwlock_write(cx, s->a, &s->w), -EINVAL, "another kind of wait");
    weft_poll r = weft_rwlock_read(cx, s->a, &s->w);
    if (r == 0)
        cr_assert_eq(weft_rwlock_read_unlock(s->a), 0);
    return r;
}

Test(rwlock, misuse_is_rejected)
{
    weft_rwlock rw = WEFT_RWLOCK_INIT, other = WEFT_RWLOCK_INIT;
    weft_rwlock_waiter w = WEFT_RWLOCK_WAITER_INIT;
    cr_assert_eq(weft_rwlock_init(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_try_read(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_try_write(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_read_unlock(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_write_unlock(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_downgrade(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_read(NULL, &rw, &w), -EINVAL);
    cr_assert_eq(weft_rwlock_write(NULL, &rw, &w), -EINVAL);

    weft_runtime *rt = rt_make(1);
    cr_assert_eq(weft_rwlock_try_write(&rw), 0);
    struct switcher fr = { .a = &rw, .b = &other };
    weft_join h = spawn_task(rt, DESC(switcher_poll, &fr, NULL, 0));
    WAIT_FOR(weft__rwlock_waiters(&rw) == 1);
    cr_assert_eq(weft_rwlock_destroy(&rw), -EBUSY);
    cr_assert_eq(weft_rwlock_write_unlock(&rw), 0);
    cr_assert_eq(join_value(&h), 0);
    cr_assert_eq(weft_rwlock_destroy(&rw), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation -------------------------------------------------------------- */

static void expect_cancelled(weft_join *h, unsigned flags)
{
    weft_outcome o = join_outcome(h);
    if (flags & WEFT_TASK_CANCEL_SAFE)
        cr_assert_eq(o.status, -ECANCELED);
    else
        cr_assert_eq(o.value, -ECANCELED);
}

static void cancel_queued_reader(unsigned flags)
{
    weft_runtime *rt = rt_make(2);
    weft_rwlock rw = WEFT_RWLOCK_INIT;
    reset_counters();
    cr_assert_eq(weft_rwlock_try_write(&rw), 0);
    weft_join a = queue_rw(rt, &rw, R, 1, NULL, flags);
    weft_join b = queue_rw(rt, &rw, W, 2, NULL, 0);
    cr_assert_eq(weft_abort(&a), 0);
    expect_cancelled(&a, flags);
    cr_assert_eq(weft__rwlock_waiters(&rw), 1);
    cr_assert_eq(weft_rwlock_write_unlock(&rw), 0);
    cr_assert_eq(join_value(&b), 1, "b got the unlock: no wake-up lost");
    cr_assert_eq(atomic_load(&order_len), 1);
    cr_assert_eq(weft_rwlock_destroy(&rw), 0, "a kept no hold");
    rt_done(rt);
}

Test(rwlock, cancel_queued_read_keeps_nothing)
{
    cancel_queued_reader(0);
    cancel_queued_reader(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

/* A writer at the head waits for this thread's read hold; readers queue
 * behind it. Withdrawing the writer lets them in at once. */
static void cancel_queued_head_writer(unsigned flags)
{
    weft_runtime *rt = rt_make(2);
    weft_rwlock rw = WEFT_RWLOCK_INIT;
    reset_counters();
    cr_assert_eq(weft_rwlock_try_read(&rw), 0);
    weft_join w = queue_rw(rt, &rw, W, 1, NULL, flags);
    weft_join r1 = queue_rw(rt, &rw, R, 2, NULL, 0);
    weft_join r2 = queue_rw(rt, &rw, R, 3, NULL, 0);
    cr_assert_eq(weft_abort(&w), 0);
    expect_cancelled(&w, flags);
    cr_assert_eq(join_value(&r1), 1, "admitted while this thread still reads");
    cr_assert_eq(join_value(&r2), 1);
    cr_assert_eq(weft_rwlock_read_unlock(&rw), 0);
    cr_assert_eq(weft_rwlock_destroy(&rw), 0);
    rt_done(rt);
}

Test(rwlock, cancel_queued_head_writer_admits_the_readers_behind_it)
{
    cancel_queued_head_writer(0);
    cancel_queued_head_writer(WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

/* `a` (a writer, or a reader) is handed the lock by this thread's write
 * unlock but cannot run when it is aborted; a writer waits behind it. */
static void cancel_handed_over(bool a_writes, unsigned flags)
{
    weft_runtime *rt = rt_make(1);
    weft_rwlock rw = WEFT_RWLOCK_INIT;
    blocker bl;
    reset_counters();
    cr_assert_eq(weft_rwlock_try_write(&rw), 0);
    weft_join a = queue_rw(rt, &rw, a_writes, 1, NULL, flags);
    weft_join b = queue_rw(rt, &rw, W, 2, NULL, 0);
    blocker_start(rt, &bl);
    cr_assert_eq(weft_rwlock_write_unlock(&rw), 0);     /* hands it to a */
    cr_assert_eq(weft_rwlock_try_read(&rw), -EAGAIN);
    cr_assert_eq(weft_abort(&a), 0);
    blocker_release(&bl);
    weft_outcome o = join_outcome(&a);
    if (flags & WEFT_TASK_CANCEL_SAFE) {
        cr_assert_eq(o.status, -ECANCELED);
        cr_assert_eq(atomic_load(&unlocked_in_drop), 0);
    } else {
        cr_assert_eq(o.value, 2, "RACED: it held the lock, then unlocked");
    }
    cr_assert_eq(join_value(&b), 1, "the lock reached the writer behind");
    cr_assert_eq(weft_rwlock_destroy(&rw), 0);
    rt_done(rt);
}

Test(rwlock, cancel_handed_over_cooperative_keeps_the_hold)
{
    cancel_handed_over(W, 0);
    cancel_handed_over(R, 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(rwlock, cancel_handed_over_torn_down_gives_the_hold_back)
{
    cancel_handed_over(W, WEFT_TASK_CANCEL_SAFE);
    cancel_handed_over(R, WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

static void cancel_holding(bool a_writes, unsigned flags)
{
    weft_runtime *rt = rt_make(2);
    weft_rwlock rw = WEFT_RWLOCK_INIT;
    weft_notify never = WEFT_NOTIFY_INIT;
    reset_counters();
    weft_join a = spawn_rw(rt, &rw, a_writes, 1, &never, flags);
    WAIT_FOR(weft__notify_waiters(&never) == 1);
    weft_join b = queue_rw(rt, &rw, W, 2, NULL, 0);
    cr_assert_eq(weft_abort(&a), 0);
    weft_outcome o = join_outcome(&a);
    if (flags & WEFT_TASK_CANCEL_SAFE) {
        cr_assert_eq(o.status, -ECANCELED);
        cr_assert_eq(atomic_load(&unlocked_in_drop), 1);
    } else {
        cr_assert_eq(o.value, 2);
    }
    cr_assert_eq(join_value(&b), 1);
    cr_assert_eq(weft_notify_destroy(&never), 0);
    cr_assert_eq(weft_rwlock_destroy(&rw), 0);
    rt_done(rt);
}

Test(rwlock, cancel_while_holding)
{
    cancel_holding(W, 0);
    cancel_holding(R, 0);
    cancel_holding(W, WEFT_TASK_CANCEL_SAFE);
    cancel_holding(R, WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

Test(rwlock, shutdown_withdraws_waits)
{
    weft_runtime *rt = rt_make(2);
    weft_rwlock rw = WEFT_RWLOCK_INIT;
    reset_counters();
    cr_assert_eq(weft_rwlock_try_write(&rw), 0);
    weft_join a = queue_rw(rt, &rw, R, 1, NULL, WEFT_TASK_SHIELDED);
    weft_join b = queue_rw(rt, &rw, W, 2, NULL, 0);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(join_outcome(&a).status, -ECANCELED);
    cr_assert_eq(join_value(&b), -ECANCELED);
    cr_assert_eq(weft__rwlock_waiters(&rw), 0);
    cr_assert_eq(weft_rwlock_write_unlock(&rw), 0);
    cr_assert_eq(weft_rwlock_destroy(&rw), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
