/*
 * tests/core/test_token.c - cancellation tokens: the tree rules, the
 * cancelled() leaf and its withdrawal, tasks bound at spawn (cooperative,
 * cancel-safe, detached, already-cancelled token, several tokens), reference
 * order, misuse and -ENOMEM.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdatomic.h>

#include <weft/weft.h>

#include "runtime/alloc.h"
#include "test_util.h"

static _Atomic int drops;

static void count_drop(void *f)
{
    (void)f;
    atomic_fetch_add(&drops, 1);
}

static weft_runtime *make(void)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = 2, .shutdown_grace_ms = 50 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    atomic_store(&drops, 0);
    return rt;
}

Test(token, tree_rules)
{
    weft_token *root, *a, *b, *aa, *late;
    cr_assert_eq(weft_token_new(&root), 0);
    cr_assert_eq(weft_token_child(root, &a), 0);
    cr_assert_eq(weft_token_child(root, &b), 0);
    cr_assert_eq(weft_token_child(a, &aa), 0);
    cr_assert_eq(weft_token_cancel(a), 0);
    cr_assert(weft_token_is_cancelled(a) && weft_token_is_cancelled(aa));
    cr_assert(!weft_token_is_cancelled(root) && !weft_token_is_cancelled(b),
              "a child's cancel reached its parent or sibling");
    cr_assert_eq(weft_token_cancel(a), 1, "second cancel must report 'already'");
    cr_assert_eq(weft_token_cancel(root), 0);
    cr_assert(weft_token_is_cancelled(b));
    cr_assert_eq(weft_token_child(a, &late), 0);
    cr_assert(weft_token_is_cancelled(late), "child of a cancelled token starts cancelled");
    /* Release parents first: children keep them alive. */
    weft_token_release(root);
    weft_token_release(a);
    weft_token_release(aa);
    weft_token_release(b);
    weft_token_release(late);
    WEFT_ASSERT_NO_LEAKS();
}

Test(token, misuse_and_enomem)
{
    weft_token *t;
    cr_assert_eq(weft_token_new(NULL), -EINVAL);
    cr_assert_eq(weft_token_child(NULL, &t), -EINVAL);
    cr_assert_eq(weft_token_cancel(NULL), -EINVAL);
    cr_assert(!weft_token_is_cancelled(NULL));
    cr_assert_null(weft_token_ref(NULL));
    weft_token_release(NULL);
    weft__alloc_fail_after(1);
    cr_assert_eq(weft_token_new(&t), -ENOMEM);
    cr_assert_eq(weft_token_new(&t), 0, "tokens must work again after -ENOMEM");
    weft_token *c;
    weft__alloc_fail_after(1);
    cr_assert_eq(weft_token_child(t, &c), -ENOMEM);
    weft_token_release(t);
    WEFT_ASSERT_NO_LEAKS();
}

struct waiter {
    weft_frame f;
    weft_token *token;
    weft_token_wait wait;
    weft_poll rc;
};

static weft_poll waiter_poll(weft_cx *cx, void *p)
{
    struct waiter *w = p;
    WEFT_BEGIN(&w->f);
    WEFT_AWAIT(&w->f, w->rc, weft_token_cancelled(cx, w->token, &w->wait));
    WEFT_RETURN(&w->f, w->rc);
    WEFT_END(&w->f);
}

Test(token, cancelled_leaf_wakes_waiters_and_withdraws_cleanly)
{
    weft_runtime *rt = make();
    weft_token *t;
    cr_assert_eq(weft_token_new(&t), 0);
    enum { N = 40 };
    weft_join h[N];
    for (int i = 0; i < N; i++) {
        struct waiter w = { .token = t, .wait = WEFT_TOKEN_WAIT_INIT };
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(waiter_poll, &w), &h[i]), 0);
    }
    /* Half are aborted while (probably) queued on the token: their wait is
     * withdrawn and must leave nothing linked behind. */
    for (int i = 0; i < N; i += 2)
        weft_abort(&h[i]);
    cr_assert_eq(weft_token_cancel(t), 0);
    for (int i = 0; i < N; i++) {
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        if (i % 2)
            cr_assert_eq(out.value, 0);
        else
            cr_assert(out.value == 0 || out.value == -ECANCELED);
    }
    /* Already cancelled: the wait is ready at once. */
    struct waiter w = { .token = t, .wait = WEFT_TOKEN_WAIT_INIT };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(waiter_poll, &w), &out), 0);
    cr_assert_eq(out.value, 0);
    weft_token_release(t);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct spinner {
    weft_frame f;
    weft_poll rc;
};

static weft_poll spinner_poll(weft_cx *cx, void *p)
{
    struct spinner *s = p;
    WEFT_BEGIN(&s->f);
    for (;;) {
        WEFT_YIELD(&s->f, s->rc);
        if (s->rc == -ECANCELED)
            WEFT_RETURN(&s->f, 1);
    }
    WEFT_END(&s->f);
}

static int spawn_bound(weft_runtime *rt, weft_token **tokens, unsigned n, unsigned flags,
                       weft_join *h)
{
    weft_task_desc d = { .poll = spinner_poll, .frame_size = sizeof(struct spinner),
                         .drop = count_drop, .flags = flags, .tokens = tokens,
                         .ntokens = n };
    return h ? weft_spawn(rt, &d, h) : weft_spawn_detached(rt, &d);
}

Test(token, bound_tasks_receive_token_cancellation)
{
    weft_runtime *rt = make();
    weft_token *a, *b, *child;
    cr_assert_eq(weft_token_new(&a), 0);
    cr_assert_eq(weft_token_new(&b), 0);
    cr_assert_eq(weft_token_child(a, &child), 0);
    weft_token *both[2] = { child, b };
    weft_join coop, safe;
    cr_assert_eq(spawn_bound(rt, both, 2, 0, &coop), 0);
    cr_assert_eq(spawn_bound(rt, both, 2, WEFT_TASK_CANCEL_SAFE, &safe), 0);
    cr_assert_eq(spawn_bound(rt, &b, 1, 0, NULL), 0);         /* detached */
    cr_assert_eq(weft_token_cancel(a), 0);     /* reaches both through child */
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&coop, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 1);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_TOKEN);
    cr_assert_not_null(out.cancel.delivered_at);
    cr_assert_eq(weft_join_wait(&safe, &out), 0);
    cr_assert_eq(out.status, -ECANCELED);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_TOKEN);
    cr_assert_eq(weft_token_cancel(b), 0);     /* the detached one stops too */
    while (atomic_load(&drops) < 3)
        sched_yield();
    /* A token cancelled before the spawn: the task starts cancelled. */
    weft_join late;
    cr_assert_eq(spawn_bound(rt, &b, 1, 0, &late), 0);
    cr_assert_eq(weft_join_wait(&late, &out), 0);
    cr_assert_eq(out.value, 1);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_TOKEN);
    weft_token_release(child);
    weft_token_release(a);
    weft_token_release(b);
    weft_runtime_free(rt);
    cr_assert_eq(atomic_load(&drops), 4);
    WEFT_ASSERT_NO_LEAKS();
}

Test(token, bad_token_lists_are_rejected)
{
    weft_runtime *rt = make();
    weft_token *none[1] = { NULL };
    weft_join h;
    cr_assert_eq(spawn_bound(rt, none, 1, 0, &h), -EINVAL);
    cr_assert_eq(spawn_bound(rt, NULL, 1, 0, &h), -EINVAL);
    weft_token *t;
    cr_assert_eq(weft_token_new(&t), 0);
    weft_token *many[WEFT_MAX_TASK_TOKENS + 1];
    for (int i = 0; i <= WEFT_MAX_TASK_TOKENS; i++)
        many[i] = t;
    cr_assert_eq(spawn_bound(rt, many, WEFT_MAX_TASK_TOKENS + 1, 0, &h), -EINVAL);
    weft_token_release(t);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* Cancel racing tasks that complete on their own: unbinding and the cancel
 * walk meet under the token lock; nothing leaks or is touched after free. */
Test(token, cancel_races_completion)
{
    weft_runtime *rt = make();
    for (int round = 0; round < 200; round++) {
        weft_token *t;
        cr_assert_eq(weft_token_new(&t), 0);
        for (int i = 0; i < 8; i++) {
            weft_task_desc d = { .poll = spinner_poll, .frame_size = sizeof(struct spinner),
                                 .drop = count_drop, .tokens = &t, .ntokens = 1,
                                 .flags = i % 2 ? WEFT_TASK_CANCEL_SAFE : 0 };
            cr_assert_eq(weft_spawn_detached(rt, &d), 0);
        }
        weft_token_cancel(t);
        weft_token_release(t);
    }
    while (atomic_load(&drops) < 200 * 8)
        sched_yield();
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}
