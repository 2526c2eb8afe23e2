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

static void run_mpsc(weft_runtime *rt, uint64_t seed)
{
    struct chan *c = scen_zalloc(sizeof *c);
    uint64_t rng = seed;
    c->seed = seed;
    c->unbounded = stress_below(&rng, 4) == 0;
    c->np = 1 + stress_below(&rng, NP);
    for (uint32_t i = 0; i < c->np; i++) {
        c->kind[i] = (uint8_t)stress_below(&rng, P_KINDS);
        c->nv[i] = 1 + stress_below(&rng, NV);
    }
    if (make_channel(c, &rng) < 0)
        abort();
    for (uint32_t i = 0; i < c->np; i++)
        if (spawn_producer(rt, c, i) < 0)
            abort();
    weft_mpsc_tx_drop(&c->tx);
    weft_mpsc_unbounded_tx_drop(&c->utx);
    struct consumer co = { .c = c, .rng = stress_rng(&rng), .sel = WEFT_SELECTOR_INIT };
    weft_outcome out;
    if (scen_block_on(rt, &WEFT_TASK(consumer_poll, &co), &out, "chan_conserve", seed) < 0)
        return;     /* hung: tasks may still use c */
    check_conservation(c);
    weft_mpsc_rx_drop(&c->rx);
    stress_count(&stress_totals.tasks, c->np + 1);
    free(c);
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

static void run_oneshot(weft_runtime *rt, uint64_t seed)
{
    struct os_pair *pair = scen_zalloc(sizeof *pair);    /* leaked on a hang */
    weft_oneshot_rx rx;
    struct os_task s = { .p = pair }, r = { .p = pair, .is_rx = true };
    if (weft_oneshot_new(&s.tx, &rx) < 0)
        abort();
    r.rx = rx;      /* the receiving task borrows the handle; the run owns it */
    weft_join hs, hr;
    weft_task_desc ds = { .poll = os_poll, .frame = &s, .frame_size = sizeof s, .drop = os_drop };
    weft_task_desc dr = ds;
    dr.frame = &r;
    if (weft_spawn(rt, &ds, &hs) < 0 || weft_spawn(rt, &dr, &hr) < 0)
        abort();
    uint64_t rng = seed;
    if (stress_below(&rng, 2))
        weft_abort(&hr);
    if (stress_below(&rng, 3) == 0)
        weft_abort(&hs);
    weft_outcome os, orv;
    if (weft_join_wait_timeout(&hs, &os, SCEN_HANG_NS) < 0
        || weft_join_wait_timeout(&hr, &orv, SCEN_HANG_NS) < 0) {
        stress_violation("chan_conserve", seed, "oneshot: hang");
        return;
    }
    if (os.status != 0 || orv.status != 0)
        stress_violation("chan_conserve", seed, "oneshot task status %d / %d", os.status,
                         orv.status);
    uint64_t v;
    if (weft_oneshot_try_recv(&rx, &v) == 0)
        atomic_fetch_add(&pair->got, 1);
    weft_oneshot_rx_drop(&rx);
    if (atomic_load(&pair->got) != atomic_load(&pair->sent) || atomic_load(&pair->drops) != 2)
        stress_violation("chan_conserve", seed, "oneshot: sent %d, received %d, drops %u",
                         atomic_load(&pair->sent), atomic_load(&pair->got),
                         atomic_load(&pair->drops));
    free(pair);
    stress_count(&stress_totals.tasks, 2);
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

static void run_fan(weft_runtime *rt, uint64_t seed)
{
    struct fan *s = scen_zalloc(sizeof *s);
    uint64_t rng = seed ^ 0xfa;
    s->seed = seed;
    s->watch = stress_below(&rng, 2);
    s->nrx = 1 + stress_below(&rng, NRX);
    s->nvals = 1 + stress_below(&rng, 64);
    weft_broadcast_rx first_b;
    weft_watch_rx first_w;
    int rc = s->watch ? weft_watch_new(&s->wtx, &first_w, 0)
                      : weft_broadcast_new(&s->btx, &first_b, 1 + stress_below(&rng, 8));
    if (rc < 0)
        abort();
    for (uint32_t i = 0; i < s->nrx; i++) {
        struct fan_rx r = { .s = s, .id = i };
        weft_task_desc d = { .poll = fan_rx_poll, .frame = &r, .frame_size = sizeof r,
                             .drop = fan_rx_drop, .name = "fan-rx" };
        if (fan_subscribe(s, &r) < 0 || weft_spawn(rt, &d, &s->h[i]) < 0)
            abort();
    }
    if (s->watch)
        weft_watch_rx_drop(&first_w);
    else
        weft_broadcast_rx_drop(&first_b);
    struct fan_root root = { .s = s, .rng = stress_rng(&rng) };
    weft_outcome out;
    if (scen_block_on(rt, &WEFT_TASK(fan_root_poll, &root), &out, "chan_conserve", seed) < 0)
        return;
    check_fan(s);
    stress_count(&stress_totals.tasks, s->nrx + 1);
    free(s);
}

void scen_run_chan_conserve(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    run_mpsc(rt, seed);
    run_oneshot(rt, seed);
    run_fan(rt, seed);
}
