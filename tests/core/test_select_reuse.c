/*
 * tests/core/test_select_reuse.c - weft_select, the compound leaf over
 * branches: reusing one selector in a loop; a cancel at the await check
 * leaves no stale winner; a torn-down select lets the drop hook release the
 * winner; -EINVAL for bad sizes; a zero-initialised selector that never ran
 * reports winner -1; and the "did not happen / happened is reported" rule for
 * an io recv racing another branch, looped over a socketpair (a byte is never
 * lost: either weft_select_outcome reports it or it is still readable).
 *
 * Who wins, tokens and cancelling the selecting task are in
 * test_select_win.c; the scripted selecting task they share is in
 * select_test.h.
 */
#include <fcntl.h>
#include <sys/socket.h>

#include "core_util.h"
#include "select_test.h"
#include "weft/sim.h"
#include "reactor/op.h"
#include "runtime/task.h"
#include "runtime/worker.h"

TestSuite(select, .timeout = 120);

/* ---- reuse, limits, zero-init ---------------------------------------------- */

struct reuse {
    weft_frame f;
    weft_selector sel;
    forever_leaf fl;
    weft_sleep sl[2];
    weft_token *tok;
    weft_token_wait tw;
    int i, bad, bad_by[4];
    int64_t rc;
};

static weft_poll reuse_branch(weft_cx *cx, void *frame, unsigned b)
{
    struct reuse *r = frame;
    unsigned ready = (unsigned)r->i % 4;
    switch (b) {
    case 0: return ready == 0 ? weft_sleep_for(cx, &r->sl[0], 1000) : forever_poll(cx, &r->fl);
    case 1: return weft_sleep_for(cx, &r->sl[1], ready == 1 ? 0 : HOUR);
    case 2:
        if (ready == 2)
            return 1000 + r->i;
        return ready == 3 ? WEFT_PENDING : weft_token_cancelled(cx, r->tok, &r->tw);
    default: return ready == 3 ? weft_token_cancelled(cx, r->tok, &r->tw) : WEFT_PENDING;
    }
}

static weft_poll reuse_poll(weft_cx *cx, void *p)
{
    struct reuse *r = p;
    WEFT_BEGIN(&r->f);
    for (r->i = 0; r->i < 400; r->i++) {
        if (r->i % 4 == 3)
            weft_token_cancel(r->tok);
        WEFT_SELECT_AWAIT(&r->f, r->rc, &r->sel, 4, reuse_branch, r);
        int want = r->i % 4;
        if (weft_select_winner(&r->sel) != want)
            r->bad++, r->bad_by[want]++;
        if (want == 2 && r->rc != 1000 + r->i)
            r->bad++;
        if (want != 2 && r->rc != 0)
            r->bad++;
        for (unsigned b = 0; b < 4; b++)
            if ((int)b != want && weft_select_outcome(&r->sel, b, NULL))
                r->bad++;
        if (r->i % 4 == 3) {
            /* A fresh token for the next rounds; the wait node is idle. */
            weft_token_release(r->tok);
            if (weft_token_new(&r->tok) != 0)
                WEFT_RETURN(&r->f, -ENOMEM);
        }
    }
    if (cx->worker->driver.wheel.len != 0 || r->fl.armed || r->tw.weft_state != 0)
        r->bad += 1000;
    weft_token_release(r->tok);
    WEFT_RETURN(&r->f, r->bad);
    WEFT_END(&r->f);
}

static int reuse_bad_by[4];

static void reuse_drop(void *p)
{
    memcpy(reuse_bad_by, ((struct reuse *)p)->bad_by, sizeof reuse_bad_by);
}

Test(select, one_selector_reused_in_a_loop)
{
    weft_runtime *rt = rt_make(1, 0);
    struct reuse r = { .sel = WEFT_SELECTOR_INIT };
    cr_assert_eq(weft_token_new(&r.tok), 0);
    weft_outcome out;
    weft_task_desc d = DESC(reuse_poll, &r, reuse_drop, 0);
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 0, "%ld wrong rounds (>= 1000: something left armed); "
                 "wrong winner by kind %d %d %d %d", (long)out.value, reuse_bad_by[0],
                 reuse_bad_by[1], reuse_bad_by[2], reuse_bad_by[3]);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* A cancellation delivered at the await's own check never reaches
 * weft_select: WEFT_SELECT_AWAIT's reset keeps the last round's winner from
 * showing through. */
struct stale {
    weft_frame f;
    weft_selector sel;
    weft_token *tok;
    int64_t rc, first_winner, second_rc, second_winner;
};

static weft_poll ready_branch(weft_cx *cx, void *frame, unsigned i)
{
    (void)cx;
    (void)frame;
    return i == 0 ? 5 : WEFT_PENDING;
}

static weft_poll stale_poll(weft_cx *cx, void *p)
{
    struct stale *s = p;
    WEFT_BEGIN(&s->f);
    WEFT_SELECT_AWAIT(&s->f, s->rc, &s->sel, 2, ready_branch, s);
    s->first_winner = weft_select_winner(&s->sel);
    weft_token_cancel(s->tok);
    WEFT_SELECT_AWAIT(&s->f, s->second_rc, &s->sel, 2, ready_branch, s);
    s->second_winner = weft_select_winner(&s->sel);
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

static struct stale stale_seen;

static void stale_drop(void *p)
{
    stale_seen = *(struct stale *)p;
}

Test(select, a_cancel_at_the_await_check_leaves_no_stale_winner)
{
    weft_runtime *rt = rt_make(1, 0);
    struct stale s = { .sel = WEFT_SELECTOR_INIT };
    cr_assert_eq(weft_token_new(&s.tok), 0);
    weft_task_desc d = DESC(stale_poll, &s, stale_drop, 0);
    d.tokens = &s.tok;
    d.ntokens = 1;
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(stale_seen.rc, 5);
    cr_assert_eq(stale_seen.first_winner, 0);
    cr_assert_eq(stale_seen.second_rc, -ECANCELED);
    cr_assert_eq(stale_seen.second_winner, -1, "the previous round's winner showed through");
    cr_assert_eq(weft_select_reset(NULL), -EINVAL);
    weft_token_release(s.tok);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* A cancel-safe task torn down while its select settles a losing timer never
 * reads the winner; its drop hook does, and releases the mutex the select
 * won. Swept over simulator seeds, so the tear-down lands in every phase. */
static weft_mutex torn_mx;

struct torn {
    weft_frame f;
    weft_selector sel;
    weft_mutex_waiter w;
    weft_sleep nap;
    weft_poll rc;
};

static weft_poll torn_branch(weft_cx *cx, void *frame, unsigned i)
{
    struct torn *v = frame;
    return i == 0 ? weft_mutex_lock(cx, &torn_mx, &v->w) : weft_sleep_for(cx, &v->nap, 1000000);
}

static weft_poll torn_poll(weft_cx *cx, void *p)
{
    struct torn *v = p;
    WEFT_BEGIN(&v->f);
    WEFT_SELECT_AWAIT(&v->f, v->rc, &v->sel, 2, torn_branch, v);
    if (weft_select_winner(&v->sel) == 0)
        weft_mutex_unlock(&torn_mx);
    WEFT_RETURN(&v->f, 0);
    WEFT_END(&v->f);
}

static void torn_drop(void *p)
{
    struct torn *v = p;
    if (weft_select_outcome(&v->sel, 0, NULL))
        weft_mutex_unlock(&torn_mx);    /* the select won it; nobody else will */
}

struct unlocker {
    weft_frame f;
    int i;
    weft_poll rc;
};

static weft_poll unlocker_poll(weft_cx *cx, void *p)
{
    struct unlocker *u = p;
    WEFT_BEGIN(&u->f);
    for (u->i = 0; u->i < 3; u->i++)
        WEFT_YIELD(&u->f, u->rc);
    weft_mutex_unlock(&torn_mx);        /* hands the mutex to the lock branch */
    WEFT_RETURN(&u->f, 0);
    WEFT_END(&u->f);
}

struct torn_root {
    weft_frame f;
    weft_join h, hu;
    weft_outcome out;
    int i, n;
    weft_poll rc;
};

static weft_poll torn_root_poll(weft_cx *cx, void *p)
{
    struct torn_root *r = p;
    WEFT_BEGIN(&r->f);
    weft_mutex_try_lock(&torn_mx);
    struct torn v = { .sel = WEFT_SELECTOR_INIT };
    weft_task_desc d = DESC(torn_poll, &v, torn_drop, WEFT_TASK_CANCEL_SAFE);
    struct unlocker u = { .i = 0 };
    if (weft_spawn(weft_cx_runtime(cx), &d, &r->h) != 0
        || weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(unlocker_poll, &u), &r->hu) != 0)
        WEFT_RETURN(&r->f, -ENOMEM);
    for (r->i = 0; r->i < r->n; r->i++)
        WEFT_YIELD(&r->f, r->rc);
    weft_abort(&r->h);
    WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &r->hu, &r->out));
    WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &r->h, &r->out));
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

Test(select, torn_down_select_lets_the_drop_hook_release_the_winner)
{
    int locked = 0, runs = 0;
    for (uint64_t seed = 1; seed <= 400; seed++) {
        cr_assert_eq(weft_mutex_init(&torn_mx), 0);
        weft_sim_opts o = { .seed = seed, .workers = 2 };
        struct torn_root r = { .n = (int)(seed % 8) };
        weft_task_desc d = WEFT_TASK(torn_root_poll, &r);
        weft_outcome out;
        if (weft_sim_run(&o, &d, &out, NULL) < 0)
            continue;
        runs++;
        locked += weft_mutex_is_locked(&torn_mx);
    }
    cr_assert_gt(runs, 350);
    cr_assert_eq(locked, 0, "%d of %d runs left the mutex locked with no holder", locked, runs);
    WEFT_ASSERT_NO_LEAKS();
}

static weft_poll max_branch(weft_cx *cx, void *frame, unsigned i)
{
    (void)cx;
    (void)frame;
    return i == WEFT_SELECT_MAX - 1 ? 77 : WEFT_PENDING;
}

struct limits {
    weft_frame f;
    weft_selector sel;
    int64_t rc;
    int64_t e0, e9, enull, efn;
};

static weft_poll limits_poll(weft_cx *cx, void *p)
{
    struct limits *l = p;
    WEFT_BEGIN(&l->f);
    l->e0 = weft_select(cx, &l->sel, 0, max_branch, l);
    l->e9 = weft_select(cx, &l->sel, WEFT_SELECT_MAX + 1, max_branch, l);
    l->enull = weft_select(cx, NULL, 1, max_branch, l);
    l->efn = weft_select(cx, &l->sel, 1, NULL, l);
    WEFT_AWAIT(&l->f, l->rc, weft_select(cx, &l->sel, WEFT_SELECT_MAX, max_branch, l));
    WEFT_RETURN(&l->f, l->rc * 10 + weft_select_winner(&l->sel));
    WEFT_END(&l->f);
}

static int64_t limits_seen[4];

static void limits_drop(void *p)
{
    struct limits *l = p;
    limits_seen[0] = l->e0;
    limits_seen[1] = l->e9;
    limits_seen[2] = l->enull;
    limits_seen[3] = l->efn;
}

Test(select, einval_for_zero_or_too_many_branches)
{
    weft_runtime *rt = rt_make(1, 0);
    struct limits l = { .sel = WEFT_SELECTOR_INIT };
    weft_task_desc d = DESC(limits_poll, &l, limits_drop, 0);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    const char *what[4] = { "n = 0", "n = WEFT_SELECT_MAX + 1", "NULL selector",
                            "NULL branch function" };
    for (int i = 0; i < 4; i++)
        cr_assert_eq(limits_seen[i], -EINVAL, "%s: %ld", what[i], (long)limits_seen[i]);
    cr_assert_eq(out.value, 77 * 10 + WEFT_SELECT_MAX - 1,
                 "WEFT_SELECT_MAX branches must work; got %ld", (long)out.value);
    cr_assert_eq(weft_select_winner(NULL), -1);
    cr_assert_not(weft_select_outcome(NULL, 0, NULL));
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(select, zero_initialised_selector_cancelled_before_it_ran)
{
    weft_runtime *rt = rt_make(2, 0);
    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    cr_assert_eq(weft_token_cancel(tok), 0);
    const uint8_t k[2] = { K_READY, K_READY };
    const int64_t a[2] = { 1, 2 };
    struct sel s = sel_frame(2, k, a);
    weft_join h = WEFT_JOIN_INIT;
    memset(&s.sel, 0, sizeof s.sel);
    weft_task_desc d = DESC(sel_poll, &s, sel_drop, 0);
    d.tokens = &tok;
    d.ntokens = 1;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.value, -ECANCELED, "the select await must deliver the cancellation");
    cr_assert_eq(last.winner, -1, "a zeroed selector that never ran has no winner");
    cr_assert(!last.happened[0] && !last.happened[1]);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_TOKEN);
    cr_assert_not_null(out.cancel.delivered_at);
    cr_assert_eq(out.cancel.delivered_at->line, select_line);
    weft_token_release(tok);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a recv racing another branch: no byte is ever lost --------------------- */

enum { RECV_ROUNDS = 600 };

static gate_leaf rgate, rgo;
static flag round_done;
static int8_t got_by_select[RECV_ROUNDS];
static int64_t got_value[RECV_ROUNDS];
static int8_t winner_of[RECV_ROUNDS];

struct recv_race {
    weft_frame f;
    int fd, round;
    weft_selector sel;
    weft_io io;
    char buf[8];
    int64_t rc;
};

static weft_poll recv_race_branch(weft_cx *cx, void *frame, unsigned i)
{
    struct recv_race *r = frame;
    bool recv_first = r->round % 2;
    if ((i == 0) == recv_first)
        return weft_recv(cx, &r->io, r->fd, r->buf, 1, 0);
    return gate_poll(cx, &rgate);
}

/* Each round: wait for the test thread's go, then select over the recv and
 * the gate; the test thread sends one byte and opens the gate in some order,
 * then checks the byte was either reported or is still in the socket. */
static weft_poll recv_race_poll(weft_cx *cx, void *p)
{
    struct recv_race *r = p;
    WEFT_BEGIN(&r->f);
    for (r->round = 0; r->round < RECV_ROUNDS; r->round++) {
        WEFT_AWAIT(&r->f, r->rc, gate_poll(cx, &rgo));
        pthread_mutex_lock(&rgo.lock);
        rgo.open = false;
        pthread_mutex_unlock(&rgo.lock);
        r->buf[0] = 0;
        WEFT_AWAIT(&r->f, r->rc, weft_select(cx, &r->sel, 2, recv_race_branch, r));
        unsigned recv_idx = r->round % 2 ? 0 : 1;
        int64_t res = 0;
        winner_of[r->round] = (int8_t)weft_select_winner(&r->sel);
        if (weft_select_outcome(&r->sel, recv_idx, &res)) {
            got_by_select[r->round] = (int8_t)res;
            got_value[r->round] = (unsigned char)r->buf[0];
        } else {
            got_by_select[r->round] = 0;
        }
        flag_add(&round_done, 1);
    }
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

Test(select, recv_loser_with_data_is_reported_never_lost)
{
    weft_runtime *rt = rt_make(2, 0);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    gate_init(&rgate);
    gate_init(&rgo);
    struct recv_race r = { .fd = sv[0], .sel = WEFT_SELECTOR_INIT };
    weft_join h = WEFT_JOIN_INIT;
    weft_task_desc d = DESC(recv_race_poll, &r, NULL, 0);
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    int reported = 0, drained = 0, as_loser = 0;
    for (int i = 0; i < RECV_ROUNDS; i++) {
        pthread_mutex_lock(&rgate.lock);
        rgate.open = false;     /* the task waits for go: it is not looking */
        pthread_mutex_unlock(&rgate.lock);
        gate_open(&rgo, 0);
        gate_wait_armed(&rgate);
        unsigned char byte = (unsigned char)(i * 7 + 1);
        if (i % 3 == 0)
            gate_open(&rgate, 1000);
        cr_assert_eq(send(sv[1], &byte, 1, 0), 1);
        if (i % 3 != 0) {
            for (volatile int spin = 0; spin < (i % 5) * 3000; spin++)
                ;
            gate_open(&rgate, 1000);
        }
        flag_wait_ge(&round_done, (uint32_t)i + 1);
        unsigned char c;
        ssize_t n = recv(sv[0], &c, 1, MSG_DONTWAIT);
        int sel = got_by_select[i];
        cr_assert(sel == 0 || sel == 1, "round %d: recv reported %d", i, sel);
        cr_assert_eq(sel + (n == 1), 1,
                     "round %d: byte %s (select %d, still readable %zd)", i,
                     sel + (n == 1) == 0 ? "lost" : "seen twice", sel, n);
        if (sel) {
            cr_assert_eq(got_value[i], byte, "round %d: wrong byte", i);
            reported++;
            as_loser += winner_of[i] != (i % 2 ? 0 : 1);
        } else {
            cr_assert_eq(c, byte, "round %d: wrong byte left in the socket", i);
            drained++;
        }
    }
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.value, 0);
    cr_log_info("recv race: %d reported by the select (%d of them as a loser), %d left in "
                "the socket", reported, as_loser, drained);
    gate_release(&rgate);
    gate_release(&rgo);
    close(sv[0]);
    close(sv[1]);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
