/*
 * tests/core/test_layout.c - the task allocation (runtime/task.h): a 64-byte
 * header, the optional parts before it present exactly when a task needs
 * them, a max-aligned frame; and the registry's chunked slots (registry.h)
 * holding thousands of live tasks that shutdown must still find.
 *
 * The layout cases write every byte of every part they expect, so an ASan
 * build catches a part placed outside the allocation, and free each task
 * through weft__task_free, which must find the allocation's start.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "core_util.h"
#include "runtime/rt.h"
#include "runtime/task.h"
#include "runtime/token.h"

TestSuite(layout, .timeout = 60);

struct small_frame {
    weft_frame f;
    int64_t payload[3];
};

static weft_poll never_polled(weft_cx *cx, void *frame)
{
    (void)cx;
    (void)frame;
    return 0;
}

static void drop_nothing(void *frame)
{
    (void)frame;
}

struct shape {
    bool joinable, drop, name, shielded, times;
    unsigned ntokens;
};

static void check_shape(const struct shape *sh, weft_token **tokens)
{
    struct small_frame fr = { .payload = { 1, 2, 3 } };
    weft_task_desc d = WEFT_TASK(never_polled, &fr);
    d.drop = sh->drop ? drop_nothing : NULL;
    d.name = sh->name ? "shape" : NULL;
    d.flags = sh->shielded ? WEFT_TASK_SHIELDED : 0;
    d.tokens = tokens;
    d.ntokens = sh->ntokens;
    int err = 0;
    static weft_runtime rt;         /* task_new reads only task_times */
    rt.task_times = sh->times;
    weft__task *t = weft__task_new(&rt, &d, sh->joinable, &err);
    cr_assert_not_null(t, "task_new: %d", err);

    struct small_frame *frame = weft__task_frame(t);
    cr_assert_eq((uintptr_t)frame % WEFT__FRAME_ALIGN, 0);
    cr_assert_eq(frame->payload[2], 3);
    cr_assert_eq(weft__task_drop_fn(t), d.drop);
    cr_assert_eq(weft__task_name(t), d.name);
    cr_assert_eq(t->shield_depth, sh->shielded ? WEFT__SHIELD_STUCK : 0);

    bool want_record = sh->joinable || sh->ntokens || sh->shielded;
    weft__cancel_record *rec = weft__task_record(t);
    cr_assert_eq(rec != NULL, want_record);
    if (rec) {
        cr_assert_eq(atomic_load(&rec->requested_ns), 0);
        cr_assert_eq(rec->delivered_at, NULL);
        memset(rec, 0xa5, sizeof *rec);
    }
    if (sh->joinable)
        memset(weft__task_join_waker(t), 0x5a, sizeof(weft_waker));
    weft__task_times *tm = weft__task_times_of(t);
    cr_assert_eq(tm != NULL, sh->times);
    if (tm) {
        cr_assert_gt(tm->spawned_ns, 0);
        cr_assert_eq(atomic_load(&tm->polled_ns), 0);
        cr_assert_eq(tm->group, 0);
        memset(tm, 0x77, sizeof *tm);
    }
    weft__binding *b = weft__task_bindings(t);
    cr_assert_eq(t->nbindings, sh->ntokens);
    memset(b, 0x3c, sh->ntokens * sizeof *b);
    if (!want_record && !sh->drop && !sh->name && !sh->times && !sh->ntokens)
        cr_assert_eq((void *)b, (void *)t, "a plain task is its header and frame");

    /* The parts must not overlap one another or the header. */
    cr_assert_leq((char *)(b + sh->ntokens), (char *)t);
    cr_assert_eq(weft__task_drop_fn(t), d.drop, "a part's write reached the drop hook");
    cr_assert_eq(weft__task_name(t), d.name, "a part's write reached the name");
    weft__task_free(t);
}

Test(layout, header_is_one_cache_line)
{
    cr_assert_eq(sizeof(weft__task), 64);
    cr_assert_eq(WEFT__FRAME_OFFSET, 64);
}

Test(layout, optional_parts_exactly_when_needed)
{
    weft_token *tokens[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(weft_token_new(&tokens[i]), 0);
    const unsigned token_counts[] = { 0, 1, 3 };
    int cases = 0;
    for (unsigned bits = 0; bits < 32; bits++) {
        for (size_t k = 0; k < sizeof token_counts / sizeof *token_counts; k++) {
            struct shape sh = {
                .joinable = bits & 1, .drop = bits & 2, .name = bits & 4,
                .shielded = bits & 8, .times = bits & 16, .ntokens = token_counts[k],
            };
            check_shape(&sh, tokens);
            cases++;
        }
    }
    cr_assert_eq(cases, 96);
    for (int i = 0; i < 3; i++)
        weft_token_release(tokens[i]);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- the registry past its first chunks --------------------------------- */

static struct flag parked, dropped;

struct idle_frame {
    weft_frame f;
    forever_leaf leaf;
    weft_poll rc;
};

static weft_poll idle_poll(weft_cx *cx, void *p)
{
    struct idle_frame *fr = p;
    WEFT_BEGIN(&fr->f);
    fr->leaf.on_arm = &parked;
    WEFT_AWAIT(&fr->f, fr->rc, forever_poll(cx, &fr->leaf));
    WEFT_RETURN(&fr->f, fr->rc);
    WEFT_END(&fr->f);
}

static void idle_drop(void *frame)
{
    (void)frame;
    flag_add(&dropped, 1);
}

struct spawner {
    weft_frame f;
    int n;
};

static weft_poll spawner_poll(weft_cx *cx, void *p)
{
    struct spawner *s = p;
    for (int i = 0; i < s->n; i++) {
        struct idle_frame fr = { 0 };
        weft_task_desc d = WEFT_TASK(idle_poll, &fr);
        d.drop = idle_drop;
        int rc = weft_spawn_detached(weft_cx_runtime(cx), &d);
        if (rc < 0)
            return rc;
    }
    return 0;
}

Test(layout, shutdown_finds_tasks_across_registry_chunks)
{
    enum { PER_SHARD = 1500 };      /* about three chunks of slots */
    weft_runtime *rt = rt_make(2, 50);
    for (int i = 0; i < PER_SHARD; i++) {
        struct idle_frame fr = { 0 };
        weft_task_desc d = WEFT_TASK(idle_poll, &fr);
        d.drop = idle_drop;
        cr_assert_eq(weft_spawn_detached(rt, &d), 0);
    }
    struct spawner s = { .n = PER_SHARD };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(spawner_poll, &s), &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 0);
    flag_wait_ge(&parked, 2 * PER_SHARD);
    cr_assert_eq(live_settled(rt, 2 * PER_SHARD), 2 * PER_SHARD);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(weft_runtime_live_tasks(rt), 0);
    cr_assert_eq(flag_get(&dropped), 2 * PER_SHARD);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
