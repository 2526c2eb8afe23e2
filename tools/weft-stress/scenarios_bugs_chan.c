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

/* Every branch that happened must have been entitled to happen. */
static void check_select(struct selector_task *t, uint64_t end)
{
    int64_t r;
    for (unsigned i = 0; i < 2; i++)
        if (weft_select_outcome(&t->sel, i, &r) && r == 0 && end < t->start + t->d[i])
            stress_violation("c14_select_timer", t->s->seed, "timer %u reported before its "
                             "deadline (C14)", i);
    if (weft_select_outcome(&t->sel, 2, &r) && r == 0)
        t->s->received++;
    int w = weft_select_winner(&t->sel);
    if (w < 0 || !weft_select_outcome(&t->sel, (unsigned)w, &r))
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
        check_select(t, weft_now_ns());
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

void scen_run_c14_select_timer(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    struct sel_state *s = scen_zalloc(sizeof *s);
    s->seed = seed;
    if (weft_mpsc_unbounded_new(&s->tx, &s->rx) < 0)
        abort();
    struct selector_task t = { .s = s, .rng = seed, .sel = WEFT_SELECTOR_INIT };
    weft_outcome out;
    if (scen_block_on(rt, &WEFT_TASK(selector_poll, &t), &out, "c14_select_timer", seed) < 0)
        return;
    uint64_t v;
    while (weft_mpsc_try_recv(&s->rx, &v) == 0)
        s->received++;
    if (s->received != s->sent)
        stress_violation("c14_select_timer", seed, "sent %llu, received %llu",
                         (unsigned long long)s->sent, (unsigned long long)s->received);
    weft_mpsc_unbounded_tx_drop(&s->tx);
    weft_mpsc_rx_drop(&s->rx);
    free(s);
    stress_count(&stress_totals.tasks, 1);
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
        /* Received: the second step must happen too (C16). */
        weft_shield_enter(cx);
        WEFT_AWAIT(&t->f, t->rc, weft_mpsc_send(cx, &t->tx, &t->op, t->v));
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

void scen_run_c15_c16_relay(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    uint64_t rng = seed;
    struct relay_state *s = scen_zalloc(sizeof *s);
    s->seed = seed;
    relay_setup(s, &rng);
    struct relay_root *r = scen_zalloc(sizeof *r);
    *r = (struct relay_root){ .s = s, .n = 1 + stress_below(&rng, NT), .rng = stress_rng(&rng),
                              .sel = WEFT_SELECTOR_INIT };
    s->canceller = stress_below(&rng, 2 * r->n);    /* half the time, nobody */
    for (uint32_t i = 0; i < r->n; i++) {
        struct relay t = { .id = i, .s = s };
        weft_task_desc d = { .poll = relay_poll, .frame = &t, .frame_size = sizeof t,
                             .drop = relay_drop, .tokens = &s->tok, .ntokens = 1 };
        if (weft_mpsc_tx_clone(&t.tx, &s->out_tx) < 0 || weft_spawn(rt, &d, &r->h[i]) < 0)
            abort();
    }
    weft_mpsc_tx_drop(&s->out_tx);
    weft_outcome out;
    if (scen_block_on(rt, &WEFT_TASK(relay_root_poll, r), &out, "c16_relay", seed) < 0)
        return;
    uint64_t v;
    while (weft_mpsc_try_recv(&s->in_rx, &v) == 0)
        seen(s, v);
    for (v = 0; v < NVAL; v++)
        if (s->seen[v] != 1)
            stress_violation("c16_relay", seed, "value %llu lost between recv and send (C16)",
                             (unsigned long long)v);
    if (weft_mutex_destroy(&s->mx) != 0)
        stress_violation("c16_relay", seed, "mutex left held (C15)");
    scen_check_drops("c16_relay", seed, s->drops, r->n);
    stress_count(&stress_totals.tasks, r->n + 1);
    weft_mpsc_rx_drop(&s->in_rx);
    weft_mpsc_rx_drop(&s->out_rx);
    weft_token_release(s->tok);
    free(r);
    free(s);
}
