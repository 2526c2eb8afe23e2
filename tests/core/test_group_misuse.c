/*
 * tests/core/test_group_misuse.c - task groups given what they must refuse.
 *
 *   - weft_group_spawn validates the desc as weft_spawn does before it reads
 *     it: ntokens > 0 with tokens NULL is -EINVAL (it used to dereference
 *     NULL).
 *   - A spawn that fails after the group counted its child wakes a waiter
 *     that saw that child running, as the child's end would have (the
 *     waiter used to stay suspended with nothing left to run).
 *
 * Handshakes, never sleeps: a waiting task is known to wait once its leaf
 * slot points at the group; a spawn is known to be in flight while
 * weft_group_len counts a child that cannot exist. Every wait on the test
 * thread is bounded (HANG_NS), so a lost wake-up fails the test instead of
 * hanging it.
 */
#include "core_util.h"

TestSuite(group_misuse, .timeout = 60);

#define HANG_NS (20ull * 1000000000ull)

/* ---- a child ------------------------------------------------------------------ */

struct child {
    weft_frame f;
    weft_poll rc;
};

static weft_poll child_poll(weft_cx *cx, void *p)
{
    struct child *c = p;
    WEFT_BEGIN(&c->f);
    WEFT_YIELD(&c->f, c->rc);
    WEFT_RETURN(&c->f, 1);
    WEFT_END(&c->f);
}

static weft_group *group_make(weft_runtime *rt)
{
    weft_group *g = NULL;
    cr_assert_eq(weft_group_new(rt, NULL, &g), 0);
    return g;
}

/* ---- the desc ------------------------------------------------------------------ */

Test(group_misuse, spawn_with_tokens_null_is_einval)
{
    weft_runtime *rt = rt_make(1, 0);
    weft_group *g = group_make(rt);
    struct child c = { .rc = 0 };
    weft_task_desc d = DESC(child_poll, &c, NULL, 0);
    d.ntokens = 1;
    cr_assert_eq(weft_spawn(rt, &d, &(weft_join)WEFT_JOIN_INIT), -EINVAL);
    cr_assert_eq(weft_group_spawn(g, &d), -EINVAL);
    cr_assert_eq(weft_group_len(g), 0, "a refused spawn left a child");
    d.ntokens = 0;
    cr_assert_eq(weft_group_spawn(g, &d), 0, "the group is still usable");
    cr_assert_eq(weft_group_free(g), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a failed spawn wakes the waiter ---------------------------------------------- */

static _Atomic int spam_stop;

/* Spawns a desc weft_spawn refuses (no poll function) until told to stop:
 * each is counted in the group while weft_spawn runs, then uncounted. */
static void *spam_failing_spawns(void *arg)
{
    weft_group *g = arg;
    weft_frame fr = { 0, 0 };
    weft_task_desc bad = { .poll = NULL, .frame = &fr, .frame_size = sizeof fr };
    while (!atomic_load(&spam_stop))
        if (weft_group_spawn(g, &bad) != -EINVAL)
            return (void *)1;
    return NULL;
}

/* Waits for every child, n times, each time while a failing spawn is in
 * flight (weft_group_len is 1 only then: no spawn here succeeds). */
struct all_waiter {
    weft_frame f;
    weft_group *g;
    int i, n;
    weft_poll rc;
};

static weft_poll all_waiter_poll(weft_cx *cx, void *p)
{
    struct all_waiter *w = p;
    WEFT_BEGIN(&w->f);
    for (w->i = 0; w->i < w->n; w->i++) {
        while (weft_group_len(w->g) == 0 && !atomic_load(&spam_stop))
            ;
        WEFT_AWAIT(&w->f, w->rc, weft_group_join_all(cx, w->g));
        if (w->rc != 0)
            WEFT_RETURN(&w->f, w->rc);
    }
    WEFT_RETURN(&w->f, 0);
    WEFT_END(&w->f);
}

Test(group_misuse, failed_spawn_wakes_the_waiter)
{
    weft_runtime *rt = rt_make(1, 0);
    weft_group *g = group_make(rt);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, spam_failing_spawns, g), 0);
    struct all_waiter w = { .g = g, .n = 1000 };
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &DESC(all_waiter_poll, &w, NULL, 0), &h), 0);
    weft_outcome out;
    int rc = weft_join_wait_timeout(&h, &out, HANG_NS);
    atomic_store(&spam_stop, 1);
    void *spam_rc;
    cr_assert_eq(pthread_join(th, &spam_rc), 0);
    cr_assert_eq(rc, 0, "join_all was never woken: %d (%s)", rc, weft_strerror(rc));
    cr_assert_eq(out.value, 0);
    cr_assert_null(spam_rc, "a spawn of a bad desc did not fail with -EINVAL");
    cr_assert_eq(weft_group_len(g), 0);
    cr_assert_eq(weft_group_free(g), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
