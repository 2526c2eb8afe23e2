/*
 * tests/core/test_group.c - task groups (weft/group.h): join_next yields
 * outcomes in completion order (children are released one by one in a
 * scrambled order, each fully finished before the next, then joined); join_all
 * keeps the outcomes for join_next; weft_group_cancel reaches every child with
 * source GROUP (delivered at the child's await; cancel-safe children torn
 * down); a task spawned into a cancelled group starts cancelled; cancel racing
 * spawn from another thread, looped; an aborted owner waiting in join_next or
 * join_all cancels the children and finishes only after every child did (a
 * cancel-safe owner's drop hook likewise); a join_next withdrawn after a child
 * had already finished leaves the group consistent; weft_group_shutdown
 * closes the group (spawn: -ESHUTDOWN) and yields 0 even when its waiter is
 * aborted meanwhile; an owner cancelled before its last wait still makes it
 * with WEFT_GROUP_AWAIT_SHUTDOWN / _ALL (implicitly shielded);
 * weft_group_free from a plain thread cancels and waits, from a worker
 * refuses with -EBUSY; a parent token cancels the group;
 * tokens a child binds itself work beside the group's; -ENOMEM leaves the
 * group usable; NULL misuse is -EINVAL.
 */
#include "core_util.h"
#include "runtime/alloc.h"
#include "runtime/task.h"

TestSuite(group, .timeout = 120);

#define MS 1000000ull

/* ---- children ----------------------------------------------------------------- */

enum mode { QUICK, WAIT_TOKEN, FOREVER, FOREVER_CLEANUP, GATE };

static flag child_drops, child_armed, in_cleanup;
static _Atomic int child_finished;      /* children that got past their cleanup */
static _Atomic int drops_by_id[4096];
static int forever_line;

struct child {
    weft_frame f;
    int id;
    int mode;
    weft_token *tok;
    weft_token_wait tw;
    forever_leaf leaf;
    gate_leaf *gate;
    weft_sleep s;
    int64_t rc, rc2;
};

static void child_drop(void *p)
{
    atomic_fetch_add(&drops_by_id[((struct child *)p)->id], 1);
    flag_add(&child_drops, 1);
}

static weft_poll child_poll(weft_cx *cx, void *p)
{
    struct child *c = p;
    WEFT_BEGIN(&c->f);
    if (c->mode == QUICK)
        WEFT_RETURN(&c->f, c->id);
    if (c->mode == GATE) {
        WEFT_AWAIT(&c->f, c->rc, gate_poll(cx, c->gate));
        WEFT_RETURN(&c->f, c->rc);
    }
    if (c->mode == WAIT_TOKEN) {
        WEFT_AWAIT(&c->f, c->rc, weft_token_cancelled(cx, c->tok, &c->tw));
        WEFT_RETURN(&c->f, c->rc == 0 ? 100 + c->id : c->rc);
    }
    forever_line = __LINE__; WEFT_AWAIT(&c->f, c->rc, forever_poll(cx, &c->leaf));
    if (c->rc != -ECANCELED)
        WEFT_RETURN(&c->f, -1);
    if (c->mode == FOREVER_CLEANUP) {
        /* Cleanup that takes a while and must not be cut short. */
        flag_add(&in_cleanup, 1);
        WEFT_SHIELD_BEGIN();
        WEFT_AWAIT(&c->f, c->rc2, weft_sleep_for(cx, &c->s, 3 * MS));
        WEFT_SHIELD_END();
        atomic_fetch_add(&child_finished, 1);
    }
    WEFT_RETURN(&c->f, 200 + c->id);
    WEFT_END(&c->f);
}

static struct child child_frame(int id, int mode)
{
    struct child c;
    memset(&c, 0, sizeof c);
    c.id = id;
    c.mode = mode;
    c.tw = (weft_token_wait)WEFT_TOKEN_WAIT_INIT;
    c.s = (weft_sleep)WEFT_SLEEP_INIT;
    c.leaf.on_arm = &child_armed;
    return c;
}

static int spawn_child(weft_group *g, int id, int mode, unsigned flags)
{
    struct child c = child_frame(id, mode);
    weft_task_desc d = DESC(child_poll, &c, child_drop, flags);
    return weft_group_spawn(g, &d);
}

/* ---- an owner that joins everything ----------------------------------------- */

enum { MAXK = 64 };

struct owner {
    weft_frame f;
    weft_group *g;
    gate_leaf *go;              /* optional: wait for it first */
    int n;                      /* outcomes collected */
    int64_t rc;
    weft_outcome out;
};

static weft_outcome outs[MAXK];
static int n_outs;

static weft_poll owner_poll(weft_cx *cx, void *p)
{
    struct owner *o = p;
    WEFT_BEGIN(&o->f);
    if (o->go)
        WEFT_AWAIT(&o->f, o->rc, gate_poll(cx, o->go));
    for (;;) {
        WEFT_AWAIT(&o->f, o->rc, weft_group_join_next(cx, o->g, &o->out));
        if (o->rc != 1)
            break;
        if (o->n < MAXK)
            outs[o->n] = o->out;
        o->n++;
    }
    n_outs = o->n;
    WEFT_RETURN(&o->f, o->rc);
    WEFT_END(&o->f);
}

/* Join every child of g from a task; returns how many outcomes it got. */
static int join_everything(weft_runtime *rt, weft_group *g)
{
    struct owner o = { .g = g };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(owner_poll, &o), &out), 0);
    cr_assert_eq(out.value, 0, "join_next ended with %ld", (long)out.value);
    return n_outs;
}

/* ---- ordering ------------------------------------------------------------------ */

Test(group, join_next_yields_outcomes_in_completion_order)
{
    enum { N = 8 };
    static const int perm[N] = { 5, 2, 7, 0, 3, 6, 1, 4 };
    weft_runtime *rt = rt_make(2, 0);
    weft_group *g;
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    weft_token *tok[N];
    for (int i = 0; i < N; i++) {
        cr_assert_eq(weft_token_new(&tok[i]), 0);
        struct child c = child_frame(i, WAIT_TOKEN);
        c.tok = tok[i];
        weft_task_desc d = DESC(child_poll, &c, child_drop, 0);
        cr_assert_eq(weft_group_spawn(g, &d), 0);
    }
    cr_assert_eq(weft_group_len(g), N);
    gate_leaf go;
    gate_init(&go);
    struct owner o = { .g = g, .go = &go };
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &DESC(owner_poll, &o, NULL, 0), &h), 0);
    size_t live0 = N + 1;
    /* Release one child at a time; a child counts as finished (and its
     * completion has reached the group) once it has left the live count. */
    for (int k = 0; k < N; k++) {
        cr_assert_eq(weft_token_cancel(tok[perm[k]]), 0);
        while (weft_runtime_live_tasks(rt) > live0 - (size_t)(k + 1))
            sched_yield();
    }
    cr_assert_eq(weft_group_len(g), N, "finished but unjoined children still count");
    gate_open(&go, 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.value, 0);
    cr_assert_eq(n_outs, N);
    for (int k = 0; k < N; k++) {
        cr_assert_eq(outs[k].status, 0);
        cr_assert_eq(outs[k].value, 100 + perm[k], "position %d: child %ld, expected %d", k,
                     (long)outs[k].value - 100, perm[k]);
        cr_assert_eq(outs[k].cancel.source, WEFT_CANCEL_NONE);
    }
    cr_assert_eq(weft_group_len(g), 0);
    cr_assert_eq(weft_group_free(g), 0);
    for (int i = 0; i < N; i++)
        weft_token_release(tok[i]);
    gate_release(&go);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct all_owner {
    weft_frame f;
    weft_group *g;
    int64_t rc;
    size_t len_after;
    uint32_t drops_after;
};

static flag all_waiting;

static weft_poll all_owner_poll(weft_cx *cx, void *p)
{
    struct all_owner *o = p;
    WEFT_BEGIN(&o->f);
    flag_add(&all_waiting, 1);
    WEFT_AWAIT(&o->f, o->rc, weft_group_join_all(cx, o->g));
    o->drops_after = flag_get(&child_drops);
    o->len_after = weft_group_len(o->g);
    WEFT_RETURN(&o->f, o->rc);
    WEFT_END(&o->f);
}

static struct all_owner last_all;

static void all_owner_drop(void *p)
{
    last_all = *(struct all_owner *)p;
}

Test(group, join_all_waits_for_every_child_and_keeps_the_outcomes)
{
    enum { N = 10 };
    weft_runtime *rt = rt_make(2, 0);
    weft_group *g;
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    for (int i = 0; i < N; i++) {
        struct child c = child_frame(i, i % 3 ? WAIT_TOKEN : QUICK);
        c.tok = tok;
        cr_assert_eq(weft_group_spawn(g, &DESC(child_poll, &c, child_drop, 0)), 0);
    }
    struct all_owner o = { .g = g };
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &DESC(all_owner_poll, &o, all_owner_drop, 0), &h), 0);
    flag_wait_ge(&all_waiting, 1);
    cr_assert_eq(weft_token_cancel(tok), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.value, 0);
    cr_assert_eq(last_all.drops_after, N, "join_all returned before every child finished");
    cr_assert_eq(last_all.len_after, N, "join_all consumed outcomes");
    cr_assert_eq(join_everything(rt, g), N);
    int quick = 0;
    for (int k = 0; k < N; k++)
        quick += outs[k].value < 100;
    cr_assert_eq(quick, 4);
    cr_assert_eq(weft_group_free(g), 0);
    weft_token_release(tok);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancelling the group ------------------------------------------------------ */

Test(group, cancel_reaches_every_child_with_source_group)
{
    enum { N = 12 };
    weft_runtime *rt = rt_make(2, 0);
    weft_group *g;
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(spawn_child(g, i, FOREVER, i % 2 ? WEFT_TASK_CANCEL_SAFE : 0), 0);
    flag_wait_ge(&child_armed, N);
    cr_assert_eq(weft_group_cancel(g), 0);
    cr_assert_eq(weft_group_cancel(g), 1, "second cancel");
    cr_assert_eq(join_everything(rt, g), N);
    for (int k = 0; k < N; k++) {
        cr_assert_eq(outs[k].cancel.source, WEFT_CANCEL_GROUP, "source %s",
                     weft_cancel_source_name(outs[k].cancel.source));
        cr_assert_not_null(outs[k].cancel.delivered_at);
        cr_assert_eq(outs[k].cancel.delivered_at->line, forever_line);
        if (outs[k].status == 0)
            cr_assert(outs[k].value >= 200 && (outs[k].value - 200) % 2 == 0,
                      "cooperative children return; got %ld", (long)outs[k].value);
        else
            cr_assert_eq(outs[k].status, -ECANCELED);
    }
    cr_assert_eq(flag_get(&child_drops), N);
    /* Spawning into the cancelled group: the task starts cancelled. */
    cr_assert_eq(spawn_child(g, 100, FOREVER, 0), 0);
    cr_assert_eq(spawn_child(g, 101, FOREVER, WEFT_TASK_CANCEL_SAFE), 0);
    cr_assert_eq(join_everything(rt, g), 2);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(outs[k].cancel.source, WEFT_CANCEL_GROUP);
        cr_assert(outs[k].value == 300 || outs[k].status == -ECANCELED);
    }
    cr_assert_eq(weft_group_free(g), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct race_arg {
    weft_group *g;
    flag *start;
    int spin;
};

static void *cancel_thread(void *p)
{
    struct race_arg *a = p;
    flag_wait_ge(a->start, 1);
    for (volatile int i = 0; i < a->spin; i++)
        ;
    weft_group_cancel(a->g);
    return NULL;
}

Test(group, cancel_racing_spawn_reaches_every_child)
{
    enum { ROUNDS = 150, K = 12 };
    weft_runtime *rt = rt_make(2, 0);
    for (int r = 0; r < ROUNDS; r++) {
        weft_group *g;
        cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
        flag start = { 0 };
        struct race_arg a = { .g = g, .start = &start, .spin = (r % 13) * 2000 };
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, cancel_thread, &a), 0);
        flag_set(&start, 1);
        for (int i = 0; i < K; i++)
            cr_assert_eq(spawn_child(g, r * K + i, FOREVER, i % 3 == 0 ? WEFT_TASK_CANCEL_SAFE
                                                                       : 0), 0);
        pthread_join(th, NULL);
        /* If a child missed the cancel, this join never ends (test timeout). */
        cr_assert_eq(join_everything(rt, g), K);
        for (int k = 0; k < K; k++)
            cr_assert_eq(outs[k].cancel.source, WEFT_CANCEL_GROUP);
        cr_assert_eq(weft_group_free(g), 0);
    }
    for (int i = 0; i < ROUNDS * K; i++)
        cr_assert_eq(atomic_load(&drops_by_id[i]), 1, "child %d dropped %d times", i,
                     atomic_load(&drops_by_id[i]));
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- the owner is cancelled ------------------------------------------------------ */

struct waiter {
    weft_frame f;
    weft_group *g;
    bool use_join_all;
    int64_t rc;
    weft_outcome out;
    int finished_at_return;
};

static flag owner_waiting;
static int owner_finished_seen = -1;

static weft_poll waiter_poll(weft_cx *cx, void *p)
{
    struct waiter *w = p;
    WEFT_BEGIN(&w->f);
    flag_add(&owner_waiting, 1);
    if (w->use_join_all)
        WEFT_AWAIT(&w->f, w->rc, weft_group_join_all(cx, w->g));
    else
        WEFT_AWAIT(&w->f, w->rc, weft_group_join_next(cx, w->g, &w->out));
    w->finished_at_return = atomic_load(&child_finished);
    WEFT_RETURN(&w->f, w->rc);
    WEFT_END(&w->f);
}

static void waiter_drop(void *p)
{
    struct waiter *w = p;
    (void)w;
    owner_finished_seen = atomic_load(&child_finished);
}

/* Wait until the task behind h is suspended in a wait on g: a request that
 * came earlier would be delivered by the await before the group is asked. */
static void wait_suspended_on(weft_join *h, weft_group *g)
{
    weft__task *t = h->weft_task;
    while (__atomic_load_n(&t->leaf, __ATOMIC_ACQUIRE) != (void *)g)
        sched_yield();
}

static void run_aborted_owner(bool join_all, unsigned owner_flags)
{
    enum { N = 6 };
    weft_runtime *rt = rt_make(2, 0);
    weft_group *g;
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(spawn_child(g, i, FOREVER_CLEANUP, 0), 0);
    flag_wait_ge(&child_armed, N);
    struct waiter w = { .g = g, .use_join_all = join_all };
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &DESC(waiter_poll, &w, waiter_drop, owner_flags), &h), 0);
    flag_wait_ge(&owner_waiting, 1);
    wait_suspended_on(&h, g);
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
    cr_assert_eq(owner_finished_seen, N,
                 "the owner ended when %d of %d children had finished their cleanup",
                 owner_finished_seen, N);
    if (owner_flags & WEFT_TASK_CANCEL_SAFE) {
        cr_assert_eq(out.status, -ECANCELED);
    } else {
        cr_assert_eq(out.status, 0);
        cr_assert_eq(out.value, -ECANCELED);
    }
    cr_assert_eq(flag_get(&child_drops), N);
    cr_assert_eq(flag_get(&in_cleanup), N, "every child was cancelled");
    /* The outcomes are still there, all cancelled by the group. */
    cr_assert_eq(join_everything(rt, g), N);
    for (int k = 0; k < N; k++) {
        cr_assert_eq(outs[k].cancel.source, WEFT_CANCEL_GROUP);
        cr_assert(outs[k].value >= 200 && outs[k].value < 200 + N, "value %ld",
                  (long)outs[k].value);
    }
    cr_assert_eq(weft_group_free(g), 0);
    rt_done(rt);
}

Test(group, aborted_owner_in_join_next_waits_for_all_children)
{
    run_aborted_owner(false, 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(group, aborted_owner_in_join_all_waits_for_all_children)
{
    run_aborted_owner(true, 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(group, aborted_cancel_safe_owner_dropped_after_all_children)
{
    run_aborted_owner(false, WEFT_TASK_CANCEL_SAFE);
    WEFT_ASSERT_NO_LEAKS();
}

/*
 * The owner's join_next is withdrawn after its only child had finished but
 * before the owner ran again. Whatever the first await yields, a later
 * join_next (in a shield, since the owner is cancelled) must hand over the
 * outcome, then report the group empty: the withdrawal must not leave the
 * group "draining" for the next wait.
 */
static flag blocker_in, blocker_go;

static weft_poll blocker_poll(weft_cx *cx, void *p)
{
    (void)cx;
    (void)p;
    flag_add(&blocker_in, 1);
    flag_wait_ge(&blocker_go, 1);       /* hold the only worker */
    return 0;
}

struct late_owner {
    weft_frame f;
    weft_group *g;
    int64_t r1, r2, r3;
    weft_outcome o1, o2;
};

static struct late_owner last_late;

static weft_poll late_owner_poll(weft_cx *cx, void *p)
{
    struct late_owner *o = p;
    WEFT_BEGIN(&o->f);
    flag_add(&owner_waiting, 1);
    WEFT_AWAIT(&o->f, o->r1, weft_group_join_next(cx, o->g, &o->o1));
    WEFT_SHIELD_BEGIN();
    WEFT_AWAIT(&o->f, o->r2, weft_group_join_next(cx, o->g, &o->o2));
    WEFT_AWAIT(&o->f, o->r3, weft_group_join_next(cx, o->g, &o->o2));
    WEFT_SHIELD_END();
    WEFT_RETURN(&o->f, 0);
    WEFT_END(&o->f);
}

static void late_owner_drop(void *p)
{
    last_late = *(struct late_owner *)p;
}

Test(group, join_next_withdrawn_after_the_child_finished_keeps_the_group_consistent)
{
    weft_runtime *rt = rt_make(1, 0);
    weft_group *g;
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    gate_leaf cg;
    gate_init(&cg);
    struct child c = child_frame(0, GATE);
    c.gate = &cg;
    cr_assert_eq(weft_group_spawn(g, &DESC(child_poll, &c, child_drop, 0)), 0);
    struct late_owner o = { .g = g };
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &DESC(late_owner_poll, &o, late_owner_drop, 0), &h), 0);
    gate_wait_armed(&cg);
    flag_wait_ge(&owner_waiting, 1);
    weft_join hb = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &DESC(blocker_poll, &o, NULL, 0), &hb), 0);
    flag_wait_ge(&blocker_in, 1);   /* the owner's poll is over: it waits */
    gate_open(&cg, 7);              /* the child is queued first... */
    cr_assert_eq(weft_abort(&h), 0);    /* ...then the owner */
    flag_set(&blocker_go, 1);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(weft_join_wait(&hb, &out), 0);
    cr_assert(last_late.r1 == -ECANCELED || last_late.r1 == 1, "r1 %ld", (long)last_late.r1);
    if (last_late.r1 == 1) {
        cr_assert_eq(last_late.o1.value, 7);
        cr_assert_eq(last_late.r2, 0);
    } else {
        cr_assert_eq(last_late.r2, 1, "after a withdrawn join_next, the next one yielded %ld "
                     "instead of the finished child's outcome", (long)last_late.r2);
        cr_assert_eq(last_late.o2.value, 7);
        cr_assert_eq(last_late.r3, 0);
    }
    cr_assert_eq(weft_group_len(g), 0);
    cr_assert_eq(weft_group_free(g), 0);
    gate_release(&cg);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- shutdown and free -------------------------------------------------------- */

struct closer {
    weft_frame f;
    weft_group *g;
    int64_t rc;
    int spawn_after, free_busy, free_after;
    int finished_at_return;
};

static struct closer last_closer;

static void closer_drop(void *p)
{
    last_closer = *(struct closer *)p;
}

static weft_poll closer_poll(weft_cx *cx, void *p)
{
    struct closer *c = p;
    WEFT_BEGIN(&c->f);
    c->free_busy = weft_group_free(c->g);       /* children running: refused */
    flag_add(&owner_waiting, 1);
    WEFT_AWAIT(&c->f, c->rc, weft_group_shutdown(cx, c->g));
    c->finished_at_return = atomic_load(&child_finished);
    c->spawn_after = spawn_child(c->g, 999, QUICK, 0);
    c->free_after = weft_group_free(c->g);      /* nothing running: freed */
    WEFT_RETURN(&c->f, c->rc);
    WEFT_END(&c->f);
}

Test(group, shutdown_closes_and_free_on_a_worker_is_ebusy_while_children_run)
{
    enum { N = 5 };
    weft_runtime *rt = rt_make(2, 0);
    weft_group *g;
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(spawn_child(g, i, FOREVER_CLEANUP, i % 2 ? WEFT_TASK_CANCEL_SAFE : 0), 0);
    flag_wait_ge(&child_armed, N);
    struct closer c = { .g = g };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &DESC(closer_poll, &c, closer_drop, 0), &out), 0);
    cr_assert_eq(out.value, 0);
    cr_assert_eq(last_closer.free_busy, -EBUSY);
    cr_assert_eq(last_closer.spawn_after, -ESHUTDOWN, "spawn into a shut-down group: %d",
                 last_closer.spawn_after);
    cr_assert_eq(last_closer.free_after, 0);
    cr_assert_eq(flag_get(&child_drops), N, "shutdown returned before every child finished");
    cr_assert_eq(last_closer.finished_at_return, (N + 1) / 2,
                 "cooperative children finish their cleanup before shutdown returns");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(group, shutdown_yields_zero_even_if_its_waiter_is_aborted_meanwhile)
{
    enum { N = 4 };
    weft_runtime *rt = rt_make(2, 0);
    weft_group *g;
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(spawn_child(g, i, FOREVER_CLEANUP, 0), 0);
    flag_wait_ge(&child_armed, N);
    struct closer c = { .g = g };
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &DESC(closer_poll, &c, closer_drop, 0), &h), 0);
    flag_wait_ge(&in_cleanup, 1);   /* shutdown is under way: it cancelled them */
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.value, 0, "shutdown yielded %ld", (long)out.value);
    cr_assert_eq(last_closer.finished_at_return, N);
    cr_assert_eq(last_closer.spawn_after, -ESHUTDOWN);
    cr_assert_eq(last_closer.free_after, 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/*
 * The owner was cancelled before it asked for the shutdown (the usual cleanup
 * path: its last wait returned -ECANCELED). Every await is a cancellation
 * point, so the shutdown is awaited with WEFT_GROUP_AWAIT_SHUTDOWN, the
 * implicitly shielded form (weft/group.h): the children must be cancelled and
 * waited for, and the group closed, or they outlive their owner. The request
 * the shield held is delivered at the next await.
 */
struct late_closer {
    weft_frame f;
    weft_group *g;
    forever_leaf leaf;
    int64_t rc0, rc, rc_after;
    int finished_at_return, spawn_after;
};

static struct late_closer last_late_closer;

static void late_closer_drop(void *p)
{
    last_late_closer = *(struct late_closer *)p;
}

static weft_poll late_closer_poll(weft_cx *cx, void *p)
{
    struct late_closer *c = p;
    WEFT_BEGIN(&c->f);
    WEFT_AWAIT(&c->f, c->rc0, forever_poll(cx, &c->leaf));     /* aborted here */
    WEFT_GROUP_AWAIT_SHUTDOWN(&c->f, c->rc, c->g);
    c->finished_at_return = atomic_load(&child_finished);
    c->spawn_after = spawn_child(c->g, 998, QUICK, 0);
    WEFT_YIELD(&c->f, c->rc_after);                            /* still cancelled */
    WEFT_RETURN(&c->f, c->rc);
    WEFT_END(&c->f);
}

Test(group, shutdown_awaited_by_an_already_cancelled_owner_still_waits)
{
    enum { N = 3 };
    weft_runtime *rt = rt_make(2, 0);
    weft_group *g;
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(spawn_child(g, i, FOREVER_CLEANUP, 0), 0);
    flag_wait_ge(&child_armed, N);
    flag owner_armed = { 0 };
    struct late_closer c = { .g = g, .leaf.on_arm = &owner_armed };
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &DESC(late_closer_poll, &c, late_closer_drop, 0), &h), 0);
    flag_wait_ge(&owner_armed, 1);
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(last_late_closer.rc0, -ECANCELED);
    int64_t rc = out.value;
    int fin = last_late_closer.finished_at_return, sp = last_late_closer.spawn_after;
    /* Clean up before asserting, so a failure does not hang on the children. */
    cr_assert_eq(weft_group_free(g), 0);
    cr_assert_eq(rc, 0, "shutdown awaited by a cancelled owner yielded %ld without "
                 "waiting (%d of %d children finished, spawn after it: %d)", (long)rc, fin,
                 N, sp);
    cr_assert_eq(fin, N);
    cr_assert_eq(sp, -ESHUTDOWN);
    cr_assert_eq(last_late_closer.rc_after, -ECANCELED, "the held request is delivered after");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* The same for WEFT_GROUP_AWAIT_ALL: the owner's pending request cancels the
 * children, the wait outlasts them all, then yields -ECANCELED; the outcomes
 * stay for join_next. */
struct late_all {
    weft_frame f;
    weft_group *g;
    forever_leaf leaf;
    int64_t rc0, rc;
    int finished_at_return;
};

static struct late_all last_late_all;

static void late_all_drop(void *p)
{
    last_late_all = *(struct late_all *)p;
}

static weft_poll late_all_poll(weft_cx *cx, void *p)
{
    struct late_all *c = p;
    WEFT_BEGIN(&c->f);
    WEFT_AWAIT(&c->f, c->rc0, forever_poll(cx, &c->leaf));     /* aborted here */
    WEFT_GROUP_AWAIT_ALL(&c->f, c->rc, c->g);
    c->finished_at_return = atomic_load(&child_finished);
    WEFT_RETURN(&c->f, c->rc);
    WEFT_END(&c->f);
}

Test(group, join_all_awaited_by_an_already_cancelled_owner_drains_the_group)
{
    enum { N = 3 };
    weft_runtime *rt = rt_make(2, 0);
    weft_group *g;
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(spawn_child(g, i, FOREVER_CLEANUP, 0), 0);
    flag_wait_ge(&child_armed, N);
    flag owner_armed = { 0 };
    struct late_all c = { .g = g, .leaf.on_arm = &owner_armed };
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &DESC(late_all_poll, &c, late_all_drop, 0), &h), 0);
    flag_wait_ge(&owner_armed, 1);
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    int fin = last_late_all.finished_at_return;
    int joined = out.value == -ECANCELED ? join_everything(rt, g) : -1;
    cr_assert_eq(weft_group_free(g), 0);
    cr_assert_eq(out.value, -ECANCELED, "join_all yielded %ld", (long)out.value);
    cr_assert_eq(fin, N, "%d of %d children had finished", fin, N);
    cr_assert_eq(flag_get(&in_cleanup), N, "every child was cancelled");
    cr_assert_eq(joined, N, "the outcomes stay for join_next");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(group, free_from_a_plain_thread_cancels_and_waits)
{
    enum { N = 8 };
    weft_runtime *rt = rt_make(2, 0);
    weft_group *g;
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(spawn_child(g, i, i % 2 ? FOREVER_CLEANUP : QUICK, 0), 0);
    flag_wait_ge(&child_armed, N / 2);
    cr_assert_eq(weft_group_free(g), 0);
    cr_assert_eq(atomic_load(&child_finished), N / 2, "free returned before the children's "
                 "cleanup ended");
    cr_assert_eq(flag_get(&child_drops), N);
    cr_assert_eq(live_settled(rt, 0), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- tokens ---------------------------------------------------------------------- */

Test(group, parent_token_cancels_the_group)
{
    enum { N = 6 };
    weft_runtime *rt = rt_make(2, 0);
    weft_token *parent;
    cr_assert_eq(weft_token_new(&parent), 0);
    weft_group *g;
    cr_assert_eq(weft_group_new(rt, parent, &g), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(spawn_child(g, i, FOREVER, i % 2 ? WEFT_TASK_CANCEL_SAFE : 0), 0);
    flag_wait_ge(&child_armed, N);
    cr_assert_eq(weft_token_cancel(parent), 0);
    cr_assert_eq(join_everything(rt, g), N);
    for (int k = 0; k < N; k++) {
        weft_cancel_source s = outs[k].cancel.source;
        cr_assert(s == WEFT_CANCEL_GROUP || s == WEFT_CANCEL_TOKEN, "source %s",
                  weft_cancel_source_name(s));
    }
    cr_assert_eq(weft_group_cancel(g), 1, "the group token was cancelled through its parent");
    cr_assert_eq(weft_group_free(g), 0);

    /* A group made under a cancelled parent starts cancelled. */
    cr_assert_eq(weft_group_new(rt, parent, &g), 0);
    cr_assert_eq(spawn_child(g, 50, FOREVER, 0), 0);
    cr_assert_eq(join_everything(rt, g), 1);
    cr_assert_eq(outs[0].value, 250);
    cr_assert_eq(weft_group_free(g), 0);
    weft_token_release(parent);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct tok_owner {
    weft_frame f;
    weft_group *g;
    weft_token *own;
    int64_t rc;
    weft_outcome first;
};

static weft_outcome tok_first;

static weft_poll tok_owner_poll(weft_cx *cx, void *p)
{
    struct tok_owner *o = p;
    WEFT_BEGIN(&o->f);
    weft_token_cancel(o->own);          /* only the child bound to it stops */
    WEFT_AWAIT(&o->f, o->rc, weft_group_join_next(cx, o->g, &o->first));
    tok_first = o->first;
    if (o->rc != 1)
        WEFT_RETURN(&o->f, -1);
    WEFT_RETURN(&o->f, (int64_t)weft_group_len(o->g));
    WEFT_END(&o->f);
}

Test(group, child_tokens_are_bound_beside_the_group_token)
{
    enum { N = 4 };
    weft_runtime *rt = rt_make(2, 0);
    weft_group *g;
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    weft_token *own;
    cr_assert_eq(weft_token_new(&own), 0);
    weft_token *many[WEFT_MAX_TASK_TOKENS];
    for (int i = 0; i < WEFT_MAX_TASK_TOKENS; i++)
        many[i] = own;
    struct child c = child_frame(0, FOREVER);
    weft_task_desc d = DESC(child_poll, &c, child_drop, 0);
    d.tokens = many;
    d.ntokens = WEFT_MAX_TASK_TOKENS;
    cr_assert_eq(weft_group_spawn(g, &d), -EINVAL, "no room left for the group's token");
    d.ntokens = WEFT_MAX_TASK_TOKENS - 1;
    cr_assert_eq(weft_group_spawn(g, &d), 0);
    for (int i = 1; i < N; i++)
        cr_assert_eq(spawn_child(g, i, FOREVER, 0), 0);
    flag_wait_ge(&child_armed, N);
    struct tok_owner o = { .g = g, .own = own };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(tok_owner_poll, &o), &out), 0);
    cr_assert_eq(out.value, N - 1, "the others kept running (len %ld)", (long)out.value);
    cr_assert_eq(tok_first.value, 200);
    cr_assert_eq(tok_first.cancel.source, WEFT_CANCEL_TOKEN);
    cr_assert_eq(weft_group_cancel(g), 0);
    cr_assert_eq(join_everything(rt, g), N - 1);
    for (int k = 0; k < N - 1; k++)
        cr_assert_eq(outs[k].cancel.source, WEFT_CANCEL_GROUP);
    cr_assert_eq(weft_group_free(g), 0);
    weft_token_release(own);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- -ENOMEM and misuse ---------------------------------------------------------- */

Test(group, enomem_leaves_the_group_usable)
{
    weft_runtime *rt = rt_make(1, 0);
    weft_group *g = NULL;
    weft__alloc_fail_after(1);
    cr_assert_eq(weft_group_new(rt, NULL, &g), -ENOMEM);
    weft__alloc_fail_after(2);
    cr_assert_eq(weft_group_new(rt, NULL, &g), -ENOMEM, "the group's token");
    weft__alloc_fail_after(0);
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    for (long n = 1; n <= 2; n++) {
        weft__alloc_fail_after(n);
        cr_assert_eq(spawn_child(g, 0, QUICK, 0), -ENOMEM, "allocation %ld", n);
        weft__alloc_fail_after(0);
        cr_assert_eq(weft_group_len(g), 0);
    }
    cr_assert_eq(flag_get(&child_drops), 0, "a refused spawn ran a drop hook");
    cr_assert_eq(spawn_child(g, 1, QUICK, 0), 0);
    cr_assert_eq(spawn_child(g, 2, FOREVER, 0), 0);
    cr_assert_eq(weft_group_len(g), 2);
    cr_assert_eq(weft_group_cancel(g), 0);
    cr_assert_eq(join_everything(rt, g), 2);
    cr_assert_eq(weft_group_free(g), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct misuse {
    weft_frame f;
    weft_group *g;
    int64_t r[6];
};

static int64_t misuse_seen[6];

static weft_poll misuse_poll(weft_cx *cx, void *p)
{
    struct misuse *m = p;
    weft_outcome out;
    m->r[0] = weft_group_join_next(cx, NULL, &out);
    m->r[1] = weft_group_join_next(cx, m->g, NULL);
    m->r[2] = weft_group_join_all(cx, NULL);
    m->r[3] = (weft_group_shutdown)(cx, NULL);
    m->r[4] = weft_group_join_next(cx, m->g, &out);     /* empty: 0 */
    m->r[5] = weft_group_join_all(cx, m->g);            /* empty: 0 */
    memcpy(misuse_seen, m->r, sizeof misuse_seen);
    return 0;
}

Test(group, null_misuse_is_einval)
{
    weft_runtime *rt = rt_make(1, 0);
    weft_group *g;
    cr_assert_eq(weft_group_new(NULL, NULL, &g), -EINVAL);
    cr_assert_eq(weft_group_new(rt, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    struct child c = child_frame(0, QUICK);
    cr_assert_eq(weft_group_spawn(NULL, &DESC(child_poll, &c, NULL, 0)), -EINVAL);
    cr_assert_eq(weft_group_spawn(g, NULL), -EINVAL);
    weft_task_desc bad = { .poll = NULL, .frame_size = sizeof c };
    cr_assert_eq(weft_group_spawn(g, &bad), -EINVAL, "spawn errors pass through");
    cr_assert_eq(weft_group_len(g), 0);
    cr_assert_eq(weft_group_cancel(NULL), -EINVAL);
    cr_assert_eq(weft_group_free(NULL), -EINVAL);
    cr_assert_eq(weft_group_len(NULL), 0);
    weft_outcome out;
    cr_assert_eq(weft_group_join_next(NULL, g, &out), -EINVAL);
    cr_assert_eq(weft_group_join_all(NULL, g), -EINVAL);
    cr_assert_eq((weft_group_shutdown)(NULL, g), -EINVAL);
    struct misuse m = { .g = g };
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(misuse_poll, &m), &out), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(misuse_seen[i], -EINVAL, "case %d: %ld", i, (long)misuse_seen[i]);
    cr_assert_eq(misuse_seen[4], 0);
    cr_assert_eq(misuse_seen[5], 0);
    cr_assert_eq(weft_group_free(g), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
