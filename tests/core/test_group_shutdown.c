/*
 * tests/core/test_group_shutdown.c - task groups (weft/group.h), closing and
 * the rest: weft_group_shutdown closes the group (spawn: -ESHUTDOWN) and
 * yields 0 even when its waiter is aborted meanwhile; an owner cancelled
 * before its last wait still makes it with WEFT_GROUP_AWAIT_SHUTDOWN / _ALL
 * (implicitly shielded); weft_group_free from a plain thread cancels and
 * waits, from a worker refuses with -EBUSY; a parent token cancels the group;
 * tokens a child binds itself work beside the group's; -ENOMEM leaves the
 * group usable; NULL misuse is -EINVAL.
 *
 * Joining and cancelling are in test_group_join.c; the children and the
 * joining owner they share are in group_test.h.
 */
#include "core_util.h"
#include "group_test.h"
#include "runtime/alloc.h"
#include "runtime/task.h"

TestSuite(group, .timeout = 120);

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
