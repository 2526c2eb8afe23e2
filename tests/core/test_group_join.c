/*
 * tests/core/test_group_join.c - task groups (weft/group.h), joining and
 * cancelling: join_next yields outcomes in completion order (children are
 * released one by one in a scrambled order, each fully finished before the
 * next, then joined); join_all keeps the outcomes for join_next;
 * weft_group_cancel reaches every child with source GROUP (delivered at the
 * child's await; cancel-safe children torn down); a task spawned into a
 * cancelled group starts cancelled; cancel racing spawn from another thread,
 * looped; an aborted owner waiting in join_next or join_all cancels the
 * children and finishes only after every child did (a cancel-safe owner's
 * drop hook likewise); a join_next withdrawn after a child had already
 * finished leaves the group consistent.
 *
 * Shutdown, free, tokens and misuse are in test_group_shutdown.c; the
 * children and the joining owner they share are in group_test.h.
 */
#include "core_util.h"
#include "group_test.h"
#include "runtime/alloc.h"
#include "runtime/task.h"

TestSuite(group, .timeout = 120);

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
