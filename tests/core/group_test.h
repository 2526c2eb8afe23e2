/*
 * tests/core/group_test.h - what the task-group tests (test_group_join.c,
 * test_group_shutdown.c) share: the children (child_poll, in modes QUICK,
 * WAIT_TOKEN, FOREVER, FOREVER_CLEANUP, GATE; their drop hook counts drops per
 * id) and an owner task that joins everything (join_everything, the outcomes
 * in outs[0..n_outs)). All static inline, so a file that uses only some of
 * it builds warning-free. owner_waiting is bumped by an owner about to wait
 * on the group.
 */
#ifndef WEFT_TESTS_CORE_GROUP_TEST_H
#define WEFT_TESTS_CORE_GROUP_TEST_H

#include "core_util.h"
#include "runtime/alloc.h"
#include "runtime/task.h"

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

static inline void child_drop(void *p)
{
    atomic_fetch_add(&drops_by_id[((struct child *)p)->id], 1);
    flag_add(&child_drops, 1);
}

static inline weft_poll child_poll(weft_cx *cx, void *p)
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

static inline struct child child_frame(int id, int mode)
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

static inline int spawn_child(weft_group *g, int id, int mode, unsigned flags)
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

static inline weft_poll owner_poll(weft_cx *cx, void *p)
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
static inline int join_everything(weft_runtime *rt, weft_group *g)
{
    struct owner o = { .g = g };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(owner_poll, &o), &out), 0);
    cr_assert_eq(out.value, 0, "join_next ended with %ld", (long)out.value);
    return n_outs;
}

/* ---- an owner waiting on the group -------------------------------------------- */

/* Bumped by an owner just before it waits on the group. */
static flag owner_waiting;

#endif
