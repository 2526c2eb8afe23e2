/*
 * tests/core/select_test.h - what the select tests (test_select_win.c,
 * test_select_reuse.c) share: one task that selects over a scripted set of
 * branches (struct sel, sel_poll; spawn_sel / run_sel), whose drop hook
 * copies its frame into `last` so the test thread can inspect what the
 * select left behind after joining. All static inline, so a file that uses
 * only some of it builds warning-free.
 */
#ifndef WEFT_TESTS_CORE_SELECT_TEST_H
#define WEFT_TESTS_CORE_SELECT_TEST_H

#include <fcntl.h>
#include <sys/socket.h>

#include "core_util.h"
#include "weft/sim.h"
#include "reactor/op.h"
#include "runtime/task.h"
#include "runtime/worker.h"

#define MS 1000000ull
#define HOUR (3600ull * 1000 * MS)

/* ---- one task that selects over a scripted set of branches --------------- */

enum kind { K_READY = 1, K_FOREVER, K_SLEEP, K_GATE, K_TOKEN, K_JOIN, K_RECV };

struct sel {
    weft_frame f;
    unsigned n;
    uint8_t kind[WEFT_SELECT_MAX];
    int64_t arg[WEFT_SELECT_MAX];       /* K_READY: value; K_SLEEP: ns */
    gate_leaf *gate[WEFT_SELECT_MAX];
    forever_leaf fl[WEFT_SELECT_MAX];
    weft_sleep sl[WEFT_SELECT_MAX];
    weft_token *tok;
    weft_token_wait tw;
    weft_join *join;
    weft_outcome jout;
    weft_io io;
    int fd;
    char buf[8];
    weft_selector sel;
    int64_t rc, rc2;
    int winner;
    bool happened[WEFT_SELECT_MAX];
    int64_t res[WEFT_SELECT_MAX];
    uint64_t t0, elapsed;
    size_t wheel_len;                   /* on a 1-worker runtime: armed timers */
    bool leaves_idle;                   /* every sleep/token wait back to idle */
};

static struct sel last;
static flag drops, sel_armed;
static int select_line, level_line;

static inline void sel_drop(void *p)
{
    memcpy(&last, p, sizeof last);
    flag_add(&drops, 1);
}

static inline weft_poll gen_branch(weft_cx *cx, void *frame, unsigned i)
{
    struct sel *s = frame;
    switch (s->kind[i]) {
    case K_READY: return s->arg[i];
    case K_FOREVER: return forever_poll(cx, &s->fl[i]);
    case K_SLEEP: return weft_sleep_for(cx, &s->sl[i], (uint64_t)s->arg[i]);
    case K_GATE: return gate_poll(cx, s->gate[i]);
    case K_TOKEN: return weft_token_cancelled(cx, s->tok, &s->tw);
    case K_JOIN: return weft_join_await(cx, s->join, &s->jout);
    case K_RECV: return weft_recv(cx, &s->io, s->fd, s->buf, sizeof s->buf, 0);
    }
    return -EPROTO;
}

static inline bool leaves_idle(const struct sel *s)
{
    for (unsigned i = 0; i < WEFT_SELECT_MAX; i++)
        if (s->sl[i].weft_state != 0 || s->sl[i].weft_timer[0] != 0 || s->fl[i].armed)
            return false;
    return s->tw.weft_state == 0 && s->tw.weft_prev == NULL && s->tw.weft_next == NULL;
}

static inline weft_poll sel_poll(weft_cx *cx, void *p)
{
    struct sel *s = p;
    WEFT_BEGIN(&s->f);
    s->t0 = weft_now_ns();
    select_line = __LINE__; WEFT_AWAIT(&s->f, s->rc, weft_select(cx, &s->sel, s->n, gen_branch, s));
    s->elapsed = weft_now_ns() - s->t0;
    s->winner = weft_select_winner(&s->sel);
    for (unsigned i = 0; i < WEFT_SELECT_MAX; i++)
        s->happened[i] = weft_select_outcome(&s->sel, i, &s->res[i]);
    s->wheel_len = cx->worker->driver.wheel.len;
    s->leaves_idle = leaves_idle(s);
    /* Level-triggered: if the task was cancelled, this await says so too. */
    level_line = __LINE__; WEFT_AWAIT(&s->f, s->rc2, ready_now(5));
    WEFT_RETURN(&s->f, s->rc);
    WEFT_END(&s->f);
}

static inline struct sel sel_frame(unsigned n, const uint8_t *kinds, const int64_t *args)
{
    struct sel s;
    memset(&s, 0, sizeof s);
    s.sel = (weft_selector)WEFT_SELECTOR_INIT;
    s.winner = -99;             /* set only once the select's await finished */
    s.n = n;
    for (unsigned i = 0; i < n; i++) {
        s.kind[i] = kinds[i];
        s.arg[i] = args ? args[i] : 0;
        s.fl[i].on_arm = &sel_armed;
    }
    return s;
}

static inline void spawn_sel(weft_runtime *rt, struct sel *s, unsigned flags, weft_join *h)
{
    weft_task_desc d = DESC(sel_poll, s, sel_drop, flags);
    cr_assert_eq(weft_spawn(rt, &d, h), 0);
}

static inline weft_outcome run_sel(weft_runtime *rt, struct sel *s, unsigned flags)
{
    weft_join h = WEFT_JOIN_INIT;
    spawn_sel(rt, s, flags, &h);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(flag_get(&drops), 1, "drop hook ran %u times", flag_get(&drops));
    return out;
}

#endif
