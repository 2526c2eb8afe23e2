/*
 * tools/weft-stress/scenarios_sync_chan.c - cancellation against the
 * channels of weft/sync.h (mpsc, bounded and unbounded; oneshot; broadcast;
 * watch), with random aborts landing on their sends and receives.
 *
 *  chan_conserve  producers (plain send, send raced against a timer in a
 *                 select, cancel-safe send, unbounded send) and a consumer
 *                 that races recv against a timer; then oneshot pairs; then
 *                 broadcast or watch receivers aborted while a sender runs.
 *                 Invariants: no value is received twice; every send that
 *                 reported success is received; a cooperative send that
 *                 reported -ECANCELED or lost its select was not delivered
 *                 (C4); a receive withdrawn by a select took nothing (C2/C5);
 *                 a broadcast receiver sees every value in order or is told
 *                 how many it missed, a watch receiver only newer values, and
 *                 one that reaches the end has accounted for every value.
 *
 * Every task's drop hook must run exactly once, and every join must resolve
 * with a status that matches the cancellation rules (docs/cancellation.md).
 * The other sync primitives: scenarios_sync_locks.c (mutex, rwlock,
 * semaphore) and scenarios_sync_gather.c (group, wait group, barrier, notify).
 *
 * Each scenario here is written as stress_parts (stress.h): its own run and
 * weft-stress --harness (harness.c) check the same invariants.
 */
#include <stdlib.h>

#include "scen_util.h"

#define NP 8            /* producers at most */
#define NV 32           /* values per producer at most */

/* ==== chan_conserve ======================================================== */

enum pkind { P_SEND, P_SELECT, P_SAFE, P_KINDS };

struct chan {
    uint64_t seed;
    bool unbounded;
    uint32_t np, nv[NP];
    uint8_t kind[NP];
    uint8_t attempted[NP][NV], acked[NP][NV], received[NP][NV];
    _Atomic uint32_t drops[NP];
    weft_join h[NP];
    weft_mpsc_tx tx;
    weft_mpsc_unbounded_tx utx;
    weft_mpsc_rx rx;
};

struct producer {
    weft_frame f;
    struct chan *c;
    uint32_t id, seq;
    weft_mpsc_tx tx;
    weft_mpsc_unbounded_tx utx;
    weft_mpsc_send_op op;
    weft_selector sel;
    weft_sleep nap;
    uint64_t nap_ns;
    weft_poll rc;
};

static void producer_drop(void *p)
{
    struct producer *pr = p;
    weft_mpsc_tx_drop(&pr->tx);
    weft_mpsc_unbounded_tx_drop(&pr->utx);
    atomic_fetch_add(&pr->c->drops[pr->id], 1);
}

static uint64_t value_of(uint32_t id, uint32_t seq) { return (uint64_t)id << 16 | seq; }

static weft_poll send_or_nap(weft_cx *cx, void *frame, unsigned i)
{
    struct producer *pr = frame;
    if (i == 0)
        return weft_mpsc_send(cx, &pr->tx, &pr->op, value_of(pr->id, pr->seq));
    return weft_sleep_for(cx, &pr->nap, pr->nap_ns);
}

/* One value: yields 0 (delivered), 1 (not delivered), or -ECANCELED. */
static weft_poll produce_one(weft_cx *cx, struct producer *pr)
{
    struct chan *c = pr->c;
    if (c->unbounded)
        return weft_mpsc_unbounded_send(&pr->utx, value_of(pr->id, pr->seq)) == 0 ? 0 : 1;
    if (c->kind[pr->id] != P_SELECT)
        return weft_mpsc_send(cx, &pr->tx, &pr->op, value_of(pr->id, pr->seq));
    weft_poll r = weft_select(cx, &pr->sel, 2, send_or_nap, pr);
    if (r == WEFT_PENDING)
        return r;
    int64_t sent;
    if (weft_select_outcome(&pr->sel, 0, &sent) && sent == 0)
        return 0;   /* the send happened, whatever else the select says */
    return r == -ECANCELED ? r : 1;
}

static weft_poll producer_poll(weft_cx *cx, void *p)
{
    struct producer *pr = p;
    struct chan *c = pr->c;
    WEFT_BEGIN(&pr->f);
    for (pr->seq = 0; pr->seq < c->nv[pr->id]; pr->seq++) {
        c->attempted[pr->id][pr->seq] = 1;
        pr->nap_ns = (pr->seq * 7919u % 5u) * 200000u;
        pr->sel = (weft_selector)WEFT_SELECTOR_INIT;   /* see scen_util.h */
        WEFT_AWAIT(&pr->f, pr->rc, produce_one(cx, pr));
        scen_count_withdrawn(pr->rc == 1 ? -ECANCELED : pr->rc);
        if (pr->rc == 0)
            c->acked[pr->id][pr->seq] = 1;
        else if (pr->rc == -ECANCELED)
            WEFT_RETURN(&pr->f, 1);
        WEFT_YIELD(&pr->f, pr->rc);
        if (pr->rc == -ECANCELED)
            WEFT_RETURN(&pr->f, 1);
    }
    WEFT_RETURN(&pr->f, 0);
    WEFT_END(&pr->f);
}

struct consumer {
    weft_frame f;
    struct chan *c;
    uint64_t rng, v, nap_ns;
    weft_selector sel;
    weft_sleep nap;
    weft_outcome out;
    uint32_t i;
    weft_poll rc;
};

static void take(struct chan *c, uint64_t v)
{
    uint32_t id = (uint32_t)(v >> 16), seq = (uint32_t)(v & 0xffff);
    if (id >= c->np || seq >= NV || !c->attempted[id][seq]) {
        stress_violation("chan_conserve", c->seed, "received a value never sent: %llx",
                         (unsigned long long)v);
        return;
    }
    if (c->received[id][seq]++)
        stress_violation("chan_conserve", c->seed, "value %u.%u received twice", id, seq);
}

static weft_poll recv_or_nap(weft_cx *cx, void *frame, unsigned i)
{
    struct consumer *co = frame;
    if (i == 0)
        return weft_mpsc_recv(cx, &co->c->rx, &co->v);
    return weft_sleep_for(cx, &co->nap, co->nap_ns);
}

static weft_poll consumer_poll(weft_cx *cx, void *p)
{
    struct consumer *co = p;
    struct chan *c = co->c;
    WEFT_BEGIN(&co->f);
    for (;;) {
        co->nap_ns = stress_below(&co->rng, 3) * 300000u;
        WEFT_SELECT_AWAIT(&co->f, co->rc, &co->sel, 2, recv_or_nap, co);
        {
            int64_t r;
            if (!weft_select_outcome(&co->sel, 0, &r))
                scen_count_withdrawn(-ECANCELED);
            else if (r == 0)
                take(c, co->v);
            else if (r == -EPIPE)
                break;
        }
        if (stress_below(&co->rng, 4) == 0)
            weft_abort(&c->h[stress_below(&co->rng, c->np)]);
    }
    for (co->i = 0; co->i < c->np; co->i++) {
        WEFT_AWAIT(&co->f, co->rc, weft_join_await(cx, &c->h[co->i], &co->out));
        scen_count_outcome(&co->out);
        scen_check_join("chan_conserve", c->seed, co->i, c->kind[co->i] == P_SAFE && !c->unbounded,
                   (int)co->rc, atomic_load(&c->drops[co->i]));
    }
    WEFT_RETURN(&co->f, 0);
    WEFT_END(&co->f);
}

static int spawn_producer(weft_runtime *rt, struct chan *c, uint32_t id)
{
    struct producer pr = { .c = c, .id = id };
    int rc = c->unbounded ? weft_mpsc_unbounded_tx_clone(&pr.utx, &c->utx)
                          : weft_mpsc_tx_clone(&pr.tx, &c->tx);
    if (rc < 0)
        return rc;
    weft_task_desc d = { .poll = producer_poll, .frame = &pr, .frame_size = sizeof pr,
                         .drop = producer_drop, .name = "producer" };
    if (c->kind[id] == P_SAFE && !c->unbounded)
        d.flags = WEFT_TASK_CANCEL_SAFE;
    rc = weft_spawn(rt, &d, &c->h[id]);
    if (rc < 0) {
        weft_mpsc_tx_drop(&pr.tx);
        weft_mpsc_unbounded_tx_drop(&pr.utx);
    }
    return rc;
}

static void check_conservation(struct chan *c)
{
    for (uint32_t id = 0; id < c->np; id++)
        for (uint32_t s = 0; s < c->nv[id]; s++) {
            bool got = c->received[id][s], acked = c->acked[id][s];
            if (acked && !got)
                stress_violation("chan_conserve", c->seed, "value %u.%u acked, never received",
                                 id, s);
            bool strict = c->unbounded || c->kind[id] != P_SAFE;
            if (strict && got && !acked)
                stress_violation("chan_conserve", c->seed,
                                 "value %u.%u received though its send reported failure", id, s);
        }
}

static int make_channel(struct chan *c, uint64_t *rng)
{
    if (c->unbounded)
        return weft_mpsc_unbounded_new(&c->utx, &c->rx);
    return weft_mpsc_new(&c->tx, &c->rx, 1 + stress_below(rng, 4));
}

/* ---- oneshot: a value sent is received exactly once ------------------------ */

struct os_pair {
    _Atomic int sent;           /* 1: send returned 0 */
    _Atomic int got;            /* receptions of the value */
    _Atomic uint32_t drops;
};

struct os_task {
    weft_frame f;
    struct os_pair *p;
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    bool is_rx;
    uint64_t v;
    weft_poll rc;
};

static void os_drop(void *p)
{
    struct os_task *t = p;
    weft_oneshot_tx_drop(&t->tx);   /* -EINVAL when sent: harmless */
    atomic_fetch_add(&t->p->drops, 1);
}

static weft_poll os_poll(weft_cx *cx, void *p)
{
    struct os_task *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_YIELD(&t->f, t->rc);
    if (!t->is_rx) {
        if (t->rc == 0 && weft_oneshot_send(&t->tx, 42) == 0)
            atomic_store(&t->p->sent, 1);
        WEFT_RETURN(&t->f, 0);
    }
    WEFT_AWAIT(&t->f, t->rc, weft_oneshot_recv(cx, &t->rx, &t->v));
    if (t->rc == 0 && t->v == 42)
        atomic_fetch_add(&t->p->got, 1);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

/* ---- broadcast and watch: every receiver sees an ordered stream ------------ */

#define NRX 6

struct fan {
    uint64_t seed;
    bool watch;                 /* else broadcast */
    uint32_t nrx, nvals;
    weft_broadcast_tx btx;
    weft_watch_tx wtx;
    uint64_t last[NRX];         /* last value seen (values start at 1) */
    uint64_t seen[NRX];         /* values received plus values reported missed */
    uint8_t ended[NRX];         /* 1: reached -EPIPE; 2: cancelled; 3: misordered */
    _Atomic uint32_t drops[NRX];
    weft_join h[NRX];
};

struct fan_rx {
    weft_frame f;
    struct fan *s;
    uint32_t id;
    weft_broadcast_rx brx;
    weft_watch_rx wrx;
    uint64_t v;
    weft_poll rc;
};

static void fan_rx_drop(void *p)
{
    struct fan_rx *r = p;
    weft_broadcast_rx_drop(&r->brx);
    weft_watch_rx_drop(&r->wrx);
    atomic_fetch_add(&r->s->drops[r->id], 1);
}

static weft_poll fan_recv(weft_cx *cx, struct fan_rx *r)
{
    if (r->s->watch)
        return weft_watch_changed(cx, &r->wrx, &r->v);
    return weft_broadcast_recv(cx, &r->brx, &r->v);
}

/* Broadcast: every value in order, or reported missed; watch: only newer. */
static bool fan_take(struct fan *s, uint32_t id, int64_t rc, uint64_t v)
{
    if (rc == -EOVERFLOW && !s->watch) {
        s->seen[id] += v;
        s->last[id] += v;
        return true;
    }
    bool ok = s->watch ? v > s->last[id] : v == s->last[id] + 1;
    s->seen[id]++;
    s->last[id] = v;
    return ok;
}

static weft_poll fan_rx_poll(weft_cx *cx, void *p)
{
    struct fan_rx *r = p;
    struct fan *s = r->s;
    WEFT_BEGIN(&r->f);
    for (;;) {
        WEFT_AWAIT(&r->f, r->rc, fan_recv(cx, r));
        if (r->rc == -EPIPE || r->rc == -ECANCELED) {
            s->ended[r->id] = r->rc == -EPIPE ? 1 : 2;
            WEFT_RETURN(&r->f, 0);
        }
        if ((r->rc != 0 && r->rc != -EOVERFLOW) || !fan_take(s, r->id, r->rc, r->v)) {
            s->ended[r->id] = 3;
            WEFT_RETURN(&r->f, -1);
        }
    }
    WEFT_END(&r->f);
}

struct fan_root {
    weft_frame f;
    struct fan *s;
    uint64_t rng, v;
    uint32_t i;
    weft_outcome out;
    weft_poll rc;
};

static weft_poll fan_root_poll(weft_cx *cx, void *p)
{
    struct fan_root *r = p;
    struct fan *s = r->s;
    WEFT_BEGIN(&r->f);
    for (r->v = 1; r->v <= s->nvals; r->v++) {
        if (s->watch)
            weft_watch_send(&s->wtx, r->v);
        else
            weft_broadcast_send(&s->btx, r->v);
        if (stress_below(&r->rng, 8) == 0)
            weft_abort(&s->h[stress_below(&r->rng, s->nrx)]);
        if (stress_below(&r->rng, 2))
            WEFT_YIELD(&r->f, r->rc);
    }
    weft_watch_tx_drop(&s->wtx);
    weft_broadcast_tx_drop(&s->btx);
    for (r->i = 0; r->i < s->nrx; r->i++) {
        WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &s->h[r->i], &r->out));
        scen_count_outcome(&r->out);
    }
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

static void check_fan(struct fan *s)
{
    const char *kind = s->watch ? "watch" : "broadcast";
    for (uint32_t i = 0; i < s->nrx; i++) {
        if (atomic_load(&s->drops[i]) != 1)
            stress_violation("chan_conserve", s->seed, "%s receiver %u: drop hook ran %u times",
                             kind, i, atomic_load(&s->drops[i]));
        if (s->ended[i] == 3)
            stress_violation("chan_conserve", s->seed, "%s receiver %u: value out of order "
                             "after %llu", kind, i, (unsigned long long)s->last[i]);
        bool complete = s->watch ? s->last[i] == s->nvals : s->seen[i] == s->nvals;
        if (s->ended[i] == 1 && !complete)
            stress_violation("chan_conserve", s->seed, "%s receiver %u ended at %llu of %u "
                             "values (%llu seen or missed): lost by a withdrawn wait", kind, i,
                             (unsigned long long)s->last[i], s->nvals,
                             (unsigned long long)s->seen[i]);
    }
}

static int fan_subscribe(struct fan *s, struct fan_rx *r)
{
    if (s->watch)
        return weft_watch_subscribe(&s->wtx, &r->wrx);
    return weft_broadcast_subscribe(&s->btx, &r->brx);
}

/* ---- the instance: the three parts at once, under one root -------------- */

struct cc_inst {
    uint64_t seed;
    struct chan c;
    struct consumer co;
    struct os_pair pair;
    weft_oneshot_rx os_rx;              /* the run's; the receiver borrows it */
    struct os_task os_s, os_r;
    bool abort_s, abort_r;
    weft_join hs, hr;
    weft_outcome os_out, or_out;
    struct fan fan;
    weft_broadcast_rx first_b;
    weft_watch_rx first_w;
    struct fan_root fr;
    struct cc_root {
        weft_frame f;
        struct cc_inst *x;
        weft_poll rc;
    } root;
};

/* The consumer of the mpsc part (it also aborts producers and joins them),
 * the oneshot pair joined, then the fan part's sender (it aborts receivers
 * and joins them): each a state machine of its own, awaited in turn. */
static weft_poll cc_root_poll(weft_cx *cx, void *p)
{
    struct cc_root *r = p;
    struct cc_inst *x = r->x;
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->rc, consumer_poll(cx, &x->co));
    WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &x->hs, &x->os_out));
    WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &x->hr, &x->or_out));
    WEFT_AWAIT(&r->f, r->rc, fan_root_poll(cx, &x->fr));
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

static void mpsc_make(struct cc_inst *x)
{
    struct chan *c = &x->c;
    uint64_t rng = x->seed;
    c->seed = x->seed;
    c->unbounded = stress_below(&rng, 4) == 0;
    c->np = 1 + stress_below(&rng, NP);
    for (uint32_t i = 0; i < c->np; i++) {
        c->kind[i] = (uint8_t)stress_below(&rng, P_KINDS);
        c->nv[i] = 1 + stress_below(&rng, NV);
    }
    if (make_channel(c, &rng) < 0)
        abort();
    x->co = (struct consumer){ .c = c, .rng = stress_rng(&rng), .sel = WEFT_SELECTOR_INIT };
}

static void oneshot_make(struct cc_inst *x)
{
    uint64_t rng = x->seed;
    x->os_s = (struct os_task){ .p = &x->pair };
    x->os_r = (struct os_task){ .p = &x->pair, .is_rx = true };
    if (weft_oneshot_new(&x->os_s.tx, &x->os_rx) < 0)
        abort();
    x->os_r.rx = x->os_rx;
    x->abort_r = stress_below(&rng, 2);
    x->abort_s = stress_below(&rng, 3) == 0;
}

static void fan_make(struct cc_inst *x)
{
    struct fan *s = &x->fan;
    uint64_t rng = x->seed ^ 0xfa;
    s->seed = x->seed;
    s->watch = stress_below(&rng, 2);
    s->nrx = 1 + stress_below(&rng, NRX);
    s->nvals = 1 + stress_below(&rng, 64);
    int rc = s->watch ? weft_watch_new(&s->wtx, &x->first_w, 0)
                      : weft_broadcast_new(&s->btx, &x->first_b, 1 + stress_below(&rng, 8));
    if (rc < 0)
        abort();
    x->fr = (struct fan_root){ .s = s, .rng = stress_rng(&rng) };
}

static void *cc_make(uint64_t seed, unsigned threads)
{
    (void)threads;
    struct cc_inst *x = scen_zalloc(sizeof *x);
    x->seed = seed;
    mpsc_make(x);
    oneshot_make(x);
    fan_make(x);
    x->root = (struct cc_root){ .x = x };
    return x;
}

static int cc_start(void *st, weft_runtime *rt)
{
    struct cc_inst *x = st;
    int rc = 0;
    for (uint32_t i = 0; i < x->c.np && rc == 0; i++)
        rc = spawn_producer(rt, &x->c, i);
    weft_mpsc_tx_drop(&x->c.tx);        /* the producers hold the only senders */
    weft_mpsc_unbounded_tx_drop(&x->c.utx);
    weft_task_desc ds = { .poll = os_poll, .frame = &x->os_s, .frame_size = sizeof x->os_s,
                          .drop = os_drop, .name = "os-send" };
    weft_task_desc dr = ds;
    dr.frame = &x->os_r;
    dr.name = "os-recv";
    if (rc == 0 && (rc = weft_spawn(rt, &ds, &x->hs)) == 0)
        rc = weft_spawn(rt, &dr, &x->hr);
    if (rc == 0 && x->abort_r)
        weft_abort(&x->hr);
    if (rc == 0 && x->abort_s)
        weft_abort(&x->hs);
    struct fan *s = &x->fan;
    for (uint32_t i = 0; i < s->nrx && rc == 0; i++) {
        struct fan_rx r = { .s = s, .id = i };
        weft_task_desc d = { .poll = fan_rx_poll, .frame = &r, .frame_size = sizeof r,
                             .drop = fan_rx_drop, .name = "fan-rx" };
        if ((rc = fan_subscribe(s, &r)) == 0)
            rc = weft_spawn(rt, &d, &s->h[i]);
    }
    weft_watch_rx_drop(&x->first_w);
    weft_broadcast_rx_drop(&x->first_b);
    return rc;
}

/* The root drives all three parts: shielded, so that only the producers,
 * the oneshot pair and the receivers are cancelled by the harness. The
 * consumer's receive still loses a select to its timer at random. */
static weft_task_desc cc_root(void *st)
{
    struct cc_inst *x = st;
    weft_task_desc d = WEFT_TASK(cc_root_poll, &x->root);
    d.flags = WEFT_TASK_SHIELDED;
    d.name = "chan-root";
    return d;
}

static void check_oneshot(struct cc_inst *x)
{
    if (x->os_out.status != 0 || x->or_out.status != 0)
        stress_violation("chan_conserve", x->seed, "oneshot task status %d / %d",
                         x->os_out.status, x->or_out.status);
    uint64_t v;
    if (weft_oneshot_try_recv(&x->os_rx, &v) == 0)
        atomic_fetch_add(&x->pair.got, 1);
    if (atomic_load(&x->pair.got) != atomic_load(&x->pair.sent)
        || atomic_load(&x->pair.drops) != 2)
        stress_violation("chan_conserve", x->seed, "oneshot: sent %d, received %d, drops %u",
                         atomic_load(&x->pair.sent), atomic_load(&x->pair.got),
                         atomic_load(&x->pair.drops));
}

static void cc_check(void *st, int rc, const weft_outcome *root, unsigned injected)
{
    (void)root;
    (void)injected;
    struct cc_inst *x = st;
    if (rc < 0)
        return;
    check_conservation(&x->c);
    check_oneshot(x);
    check_fan(&x->fan);
    stress_count(&stress_totals.tasks, x->c.np + 2 + x->fan.nrx + 1);
}

static void cc_destroy(void *st)
{
    struct cc_inst *x = st;
    weft_mpsc_rx_drop(&x->c.rx);
    weft_oneshot_rx_drop(&x->os_rx);
    free(x);
}

/* Its consumer polls the channel between naps: no PCT (stress.h). */
const stress_parts scen_chan_parts = { cc_make, cc_start, cc_root, cc_check, cc_destroy,
                                       STRESS_NO_PCT };

void scen_run_chan_conserve(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    scen_run_parts(&scen_chan_parts, "chan_conserve", rt, seed, threads);
}
