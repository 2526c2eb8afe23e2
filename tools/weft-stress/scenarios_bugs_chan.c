/*
 * tools/weft-stress/scenarios_bugs_chan.c - the patterns of the cancellation
 * bug catalogue (docs/bug-catalogue.md) about values on their way through
 * channels while selects and cancellations cut in: a receive that loses a
 * select took nothing (C14), and a relay's receive-then-send, cancelled
 * between the two, loses no value (C15, C16). Like every catalogue scenario,
 * each is written the way weft says the code should be written, and checks
 * the oracle the catalogue gives:
 *
 *  c14_select_timer  select of two timers and a channel receive: a timer that
 *                    won or completed was due; a receive that lost took
 *                    nothing (C14).
 *  c16_relay         relays that recv from one channel and send to another
 *                    (the second step in a shield), a relay cancelling the
 *                    token of the others while holding their mutex (C15):
 *                    every value ends in exactly one channel (C16).
 *
 * The other catalogue scenarios are in scenarios_bugs_holders.c and
 * scenarios_bugs_delivery.c.
 *
 * Each scenario here is written as stress_parts (stress.h): its own run and
 * weft-stress --harness (harness.c) check the same invariants.
 */
#include <stdlib.h>

#include "scen_util.h"

#define NT 8            /* relays at most */

/* ==== c14_select_timer ====================================================== */

struct sel_state {
    uint64_t seed;
    weft_mpsc_unbounded_tx tx;
    weft_mpsc_rx rx;
    uint64_t sent, received;
};

struct selector_task {
    weft_frame f;
    struct sel_state *s;
    uint64_t rng, start, d[2], v;
    uint32_t round;
    weft_selector sel;
    weft_sleep t[2];
    weft_poll rc;
};

static weft_poll timers_or_recv(weft_cx *cx, void *frame, unsigned i)
{
    struct selector_task *t = frame;
    if (i < 2)
        return weft_sleep_until(cx, &t->t[i], t->start + t->d[i]);
    return weft_mpsc_recv(cx, &t->s->rx, &t->v);
}

/* Every branch that happened must have been entitled to happen; a select
 * that was cancelled has no winner, but what happened still counts. */
static void check_select(struct selector_task *t, uint64_t end, bool cancelled)
{
    int64_t r;
    for (unsigned i = 0; i < 2; i++)
        if (weft_select_outcome(&t->sel, i, &r) && r == 0 && end < t->start + t->d[i])
            stress_violation("c14_select_timer", t->s->seed, "timer %u reported before its "
                             "deadline (C14)", i);
    if (weft_select_outcome(&t->sel, 2, &r) && r == 0)
        t->s->received++;
    int w = weft_select_winner(&t->sel);
    if (!cancelled && (w < 0 || !weft_select_outcome(&t->sel, (unsigned)w, &r)))
        stress_violation("c14_select_timer", t->s->seed, "winner %d did not happen", w);
}

static weft_poll selector_poll(weft_cx *cx, void *p)
{
    struct selector_task *t = p;
    WEFT_BEGIN(&t->f);
    for (t->round = 0; t->round < 16; t->round++) {
        t->start = weft_now_ns();
        t->d[0] = stress_below(&t->rng, 3) * 1000000u;
        t->d[1] = stress_below(&t->rng, 3) * 1000000u;
        if (stress_below(&t->rng, 2) && weft_mpsc_unbounded_send(&t->s->tx, t->round) == 0)
            t->s->sent++;
        WEFT_SELECT_AWAIT(&t->f, t->rc, &t->sel, 3, timers_or_recv, t);
        check_select(t, weft_now_ns(), t->rc == -ECANCELED);
        if (t->rc == -ECANCELED)
            WEFT_RETURN(&t->f, 1);      /* cancelled (weft-stress --harness) */
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

struct c14_inst {
    struct sel_state s;
    struct selector_task t;
};

static void *c14_make(uint64_t seed, unsigned threads)
{
    (void)threads;
    struct c14_inst *x = scen_zalloc(sizeof *x);
    x->s.seed = seed;
    if (weft_mpsc_unbounded_new(&x->s.tx, &x->s.rx) < 0)
        abort();
    x->t = (struct selector_task){ .s = &x->s, .rng = seed, .sel = WEFT_SELECTOR_INIT };
    return x;
}

/* The selector is the root and the task under test: not shielded. */
static weft_task_desc c14_root(void *st)
{
    struct c14_inst *x = st;
    weft_task_desc d = WEFT_TASK(selector_poll, &x->t);
    d.name = "selector";
    return d;
}

static void c14_check(void *st, int rc, const weft_outcome *root, unsigned injected)
{
    (void)root;
    (void)injected;
    struct c14_inst *x = st;
    struct sel_state *s = &x->s;
    if (rc < 0)
        return;
    uint64_t v;
    while (weft_mpsc_try_recv(&s->rx, &v) == 0)
        s->received++;
    if (s->received != s->sent)
        stress_violation("c14_select_timer", s->seed, "sent %llu, received %llu",
                         (unsigned long long)s->sent, (unsigned long long)s->received);
    stress_count(&stress_totals.tasks, 1);
}

static void c14_destroy(void *st)
{
    struct c14_inst *x = st;
    weft_mpsc_unbounded_tx_drop(&x->s.tx);
    weft_mpsc_rx_drop(&x->s.rx);
    free(x);
}

const stress_parts scen_c14_parts = { c14_make, NULL, c14_root, c14_check, c14_destroy };

void scen_run_c14_select_timer(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    scen_run_parts(&scen_c14_parts, "c14_select_timer", rt, seed, threads);
}

/* ==== c16_relay (and C15) =================================================== */

#define NVAL 64

struct relay_state {
    uint64_t seed;
    weft_mpsc_unbounded_tx in_tx;
    weft_mpsc_rx in_rx;
    weft_mpsc_tx out_tx;
    weft_mpsc_rx out_rx;
    weft_mutex mx;
    weft_token *tok;
    uint32_t canceller;         /* the relay that cancels the token */
    uint8_t seen[NVAL];
    _Atomic uint32_t drops[NT];
};

struct relay {
    weft_frame f;
    uint32_t id, i;
    struct relay_state *s;
    weft_mpsc_tx tx;
    weft_mutex_waiter w;
    weft_mpsc_send_op op;
    uint64_t v;
    weft_poll rc;
};

static void relay_drop(void *p)
{
    struct relay *t = p;
    weft_mpsc_tx_drop(&t->tx);
    atomic_fetch_add(&t->s->drops[t->id], 1);
}

static weft_poll relay_poll(weft_cx *cx, void *p)
{
    struct relay *t = p;
    struct relay_state *s = t->s;
    WEFT_BEGIN(&t->f);
    for (t->i = 0;; t->i++) {
        WEFT_AWAIT(&t->f, t->rc, weft_mutex_lock(cx, &s->mx, &t->w));
        if (t->rc < 0)
            WEFT_RETURN(&t->f, 1);
        if (t->id == s->canceller && t->i == 3)
            weft_token_cancel(s->tok);      /* from inside, holding the mutex (C15) */
        WEFT_AWAIT(&t->f, t->rc, weft_mpsc_recv(cx, &s->in_rx, &t->v));
        if (t->rc < 0) {
            weft_mutex_unlock(&s->mx);
            WEFT_RETURN(&t->f, t->rc == -ECANCELED || t->rc == -EPIPE ? 1 : -1);
        }
        /* Received: the second step must happen too (C16); --planted
         * leaves the shield out. */
        if (!stress_planted)
            weft_shield_enter(cx);
        WEFT_AWAIT(&t->f, t->rc, weft_mpsc_send(cx, &t->tx, &t->op, t->v));
        if (!stress_planted)
            weft_shield_exit(cx);
        weft_mutex_unlock(&s->mx);
        if (t->rc < 0)
            WEFT_RETURN(&t->f, -2);
    }
    WEFT_END(&t->f);
}

struct relay_root {
    weft_frame f;
    struct relay_state *s;
    weft_join h[NT];
    weft_outcome out;
    uint32_t n, i;
    uint64_t v, rng;
    weft_selector sel;
    weft_sleep nap;
    weft_poll rc;
};

static weft_poll out_or_nap(weft_cx *cx, void *frame, unsigned i)
{
    struct relay_root *r = frame;
    if (i == 0)
        return weft_mpsc_recv(cx, &r->s->out_rx, &r->v);
    return weft_sleep_for(cx, &r->nap, 200000);
}

static void seen(struct relay_state *s, uint64_t v)
{
    if (v >= NVAL || s->seen[v]++)
        stress_violation("c16_relay", s->seed, "value %llu arrived twice or from nowhere",
                         (unsigned long long)v);
}

/* Drain the output until every relay is gone (the channel reports -EPIPE). */
static weft_poll relay_root_poll(weft_cx *cx, void *p)
{
    struct relay_root *r = p;
    WEFT_BEGIN(&r->f);
    for (;;) {
        if (stress_below(&r->rng, 6) == 0)
            weft_abort(&r->h[stress_below(&r->rng, r->n)]);
        WEFT_SELECT_AWAIT(&r->f, r->rc, &r->sel, 2, out_or_nap, r);
        {
            int64_t got;
            if (weft_select_outcome(&r->sel, 0, &got) && got == 0)
                seen(r->s, r->v);
            else if (weft_select_outcome(&r->sel, 0, &got) && got == -EPIPE)
                break;
        }
    }
    for (r->i = 0; r->i < r->n; r->i++) {
        WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &r->h[r->i], &r->out));
        scen_count_outcome(&r->out);
        if (r->rc != 0 || r->out.value < 0)
            stress_violation("c16_relay", r->s->seed, "relay %u: status %lld value %lld", r->i,
                             (long long)r->rc, (long long)r->out.value);
    }
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

static void relay_setup(struct relay_state *s, uint64_t *rng)
{
    if (weft_mpsc_unbounded_new(&s->in_tx, &s->in_rx) < 0
        || weft_mpsc_new(&s->out_tx, &s->out_rx, 1 + stress_below(rng, 3)) < 0
        || weft_token_new(&s->tok) < 0)
        abort();
    weft_mutex_init(&s->mx);
    for (uint64_t v = 0; v < NVAL; v++)
        weft_mpsc_unbounded_send(&s->in_tx, v);
    weft_mpsc_unbounded_tx_drop(&s->in_tx);
}

struct c16_inst {
    struct relay_state s;
    struct relay_root r;
};

static void *c16_make(uint64_t seed, unsigned threads)
{
    (void)threads;
    uint64_t rng = seed;
    struct c16_inst *x = scen_zalloc(sizeof *x);
    x->s.seed = seed;
    relay_setup(&x->s, &rng);
    x->r = (struct relay_root){ .s = &x->s, .n = 1 + stress_below(&rng, NT),
                                .rng = stress_rng(&rng), .sel = WEFT_SELECTOR_INIT };
    x->s.canceller = stress_below(&rng, 2 * x->r.n);    /* half the time, nobody */
    return x;
}

static int c16_start(void *st, weft_runtime *rt)
{
    struct c16_inst *x = st;
    struct relay_state *s = &x->s;
    int rc = 0;
    for (uint32_t i = 0; i < x->r.n && rc == 0; i++) {
        struct relay t = { .id = i, .s = s };
        weft_task_desc d = { .poll = relay_poll, .frame = &t, .frame_size = sizeof t,
                             .drop = relay_drop, .name = "relay", .tokens = &s->tok,
                             .ntokens = 1 };
        rc = weft_mpsc_tx_clone(&t.tx, &s->out_tx);
        if (rc == 0 && (rc = weft_spawn(rt, &d, &x->r.h[i])) < 0)
            weft_mpsc_tx_drop(&t.tx);
    }
    weft_mpsc_tx_drop(&s->out_tx);      /* the relays hold the only senders */
    return rc;
}

/* The root drains and aborts: shielded, so that only the relays are cancelled. */
static weft_task_desc c16_root(void *st)
{
    struct c16_inst *x = st;
    weft_task_desc d = WEFT_TASK(relay_root_poll, &x->r);
    d.flags = WEFT_TASK_SHIELDED;
    d.name = "relay-root";
    return d;
}

static void c16_check(void *st, int rc, const weft_outcome *root, unsigned injected)
{
    (void)root;
    (void)injected;
    struct c16_inst *x = st;
    struct relay_state *s = &x->s;
    if (rc < 0)
        return;
    uint64_t v;
    while (weft_mpsc_try_recv(&s->in_rx, &v) == 0)
        seen(s, v);
    for (v = 0; v < NVAL; v++)
        if (s->seen[v] != 1)
            stress_violation("c16_relay", s->seed, "value %llu lost between recv and send (C16)",
                             (unsigned long long)v);
    if (weft_mutex_destroy(&s->mx) != 0)
        stress_violation("c16_relay", s->seed, "mutex left held (C15)");
    scen_check_drops("c16_relay", s->seed, s->drops, x->r.n);
    stress_count(&stress_totals.tasks, x->r.n + 1);
}

static void c16_destroy(void *st)
{
    struct c16_inst *x = st;
    weft_mpsc_rx_drop(&x->s.in_rx);
    weft_mpsc_rx_drop(&x->s.out_rx);
    weft_token_release(x->s.tok);
    free(x);
}

/* Its root polls the output between naps: no PCT (stress.h). */
const stress_parts scen_c16_parts = {
    c16_make, c16_start, c16_root, c16_check, c16_destroy, STRESS_NO_PCT,
    "C16: a relay's send, after its receive, without its shield",
};

void scen_run_c15_c16_relay(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    scen_run_parts(&scen_c16_parts, "c16_relay", rt, seed, threads);
}
