/*
 * tests/core/test_group_misuse.c - task groups given what they must refuse.
 *
 *   - weft_group_spawn validates the desc as weft_spawn does before it reads
 *     it: ntokens > 0 with tokens NULL is -EINVAL (it used to dereference
 *     NULL).
 */
#include "core_util.h"

TestSuite(group_misuse, .timeout = 60);

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
