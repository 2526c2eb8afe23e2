/*
 * tools/weft-stress/scenarios_sync.c - cancellation against the sync
 * primitives of weft/sync.h, with random aborts landing on their waits.
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
 *  locks          mutex, rwlock and semaphore holders with two-step updates
 *                 across an await, lock waits raced against timers.
 *                 Invariants: mutual exclusion (and readers-xor-writer, at
 *                 most k permit holders) at every moment, the two-step state
 *                 repaired after every cancel (C6), and at the end nothing
 *                 held, nothing queued, every permit back (C7).
 *  gather         task group, wait group (done in drop hooks), barrier and
 *                 notify under aborts and a final token cancel.
 *                 Invariants: one group outcome per child; drop hooks once
 *                 (a second done() would fail with -EPERM); each barrier
 *                 generation has exactly one leader and all parties or none;
 *                 notifications consumed never exceed those sent.
 *
 * Every task's drop hook must run exactly once, and every join must resolve
 * with a status that matches the cancellation rules (docs/cancellation.md).
 */
#include <stdlib.h>

#include "scen_util.h"

#define NP 8            /* producers or workers at most */
#define NV 32           /* values per producer at most */

static void *zalloc(size_t n)
{
    void *p = calloc(1, n);
    if (!p)
        abort();
    return p;
}

/* A join's status against the rules for a task of this kind. */
static void check_join(const char *sc, uint64_t seed, uint32_t id, bool cancel_safe, int status,
                       uint32_t drops)
{
    if (drops != 1)
        stress_violation(sc, seed, "task %u: drop hook ran %u times", id, drops);
    if (status != 0 && !(cancel_safe && status == -ECANCELED))
        stress_violation(sc, seed, "task %u (%s): join status %d", id,
                         cancel_safe ? "cancel-safe" : "cooperative", status);
}

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
        check_join("chan_conserve", c->seed, co->i, c->kind[co->i] == P_SAFE && !c->unbounded,
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
    struct chan *c = zalloc(sizeof *c);
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
    struct os_pair *pair = zalloc(sizeof *pair);    /* leaked on a hang */
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
    struct fan *s = zalloc(sizeof *s);
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

/* ==== locks ================================================================ */

enum lkind { L_MUTEX, L_MUTEX_SAFE, L_READ, L_WRITE, L_SEM, L_KINDS };

struct locks {
    uint64_t seed;
    uint32_t n, iters[NP], permits;
    uint8_t kind[NP];
    weft_mutex mx;
    weft_rwlock rw;
    weft_semaphore sem;
    uint64_t a, b;                      /* the two-step state under mx */
    _Atomic int in_mx, readers, writers;
    _Atomic int64_t sem_held;
    _Atomic uint32_t drops[NP];
    weft_join h[NP];
};

struct locker {
    weft_frame f;
    struct locks *l;
    uint32_t id, i;
    uint64_t need, nap_ns;
    bool holds;                         /* the drop hook releases what is held */
    weft_mutex_waiter mw;
    weft_rwlock_waiter rww;
    weft_semaphore_waiter sw;
    weft_selector sel;
    weft_sleep nap;
    weft_poll rc;
};

static void lk_violation(struct locks *l, const char *what, uint32_t id)
{
    stress_violation("locks", l->seed, "task %u (kind %d): %s", id, l->kind[id], what);
}

static void release(struct locker *k)
{
    struct locks *l = k->l;
    int kind = l->kind[k->id];
    if (kind == L_MUTEX || kind == L_MUTEX_SAFE)
        weft_mutex_unlock(&l->mx);
    else if (kind == L_READ)
        weft_rwlock_read_unlock(&l->rw);
    else if (kind == L_WRITE)
        weft_rwlock_write_unlock(&l->rw);
    else
        weft_semaphore_release(&l->sem, k->need);
    k->holds = false;
}

static void locker_drop(void *p)
{
    struct locker *k = p;
    if (k->holds)
        release(k);
    atomic_fetch_add(&k->l->drops[k->id], 1);
}

static weft_poll acquire_leaf(weft_cx *cx, struct locker *k)
{
    struct locks *l = k->l;
    int kind = l->kind[k->id];
    if (kind == L_MUTEX || kind == L_MUTEX_SAFE)
        return weft_mutex_lock(cx, &l->mx, &k->mw);
    if (kind == L_READ)
        return weft_rwlock_read(cx, &l->rw, &k->rww);
    if (kind == L_WRITE)
        return weft_rwlock_write(cx, &l->rw, &k->rww);
    return weft_semaphore_acquire(cx, &l->sem, &k->sw, k->need);
}

static weft_poll lock_or_nap(weft_cx *cx, void *frame, unsigned i)
{
    struct locker *k = frame;
    return i == 0 ? acquire_leaf(cx, k) : weft_sleep_for(cx, &k->nap, k->nap_ns);
}

/* Acquire, half the time raced against a timer (C7/C8): yields 0 when held. */
static weft_poll acquire(weft_cx *cx, struct locker *k)
{
    if (k->nap_ns == 0)
        return acquire_leaf(cx, k);
    weft_poll r = weft_select(cx, &k->sel, 2, lock_or_nap, k);
    if (r == WEFT_PENDING)
        return r;
    int64_t got;
    if (weft_select_outcome(&k->sel, 0, &got) && got == 0)
        return 0;   /* acquired, even if the task was cancelled meanwhile */
    return r == -ECANCELED ? r : -EAGAIN;
}

/* Entering the critical section: check exclusion, start the two-step. */
static void enter(struct locker *k)
{
    struct locks *l = k->l;
    int kind = l->kind[k->id];
    k->holds = true;
    if (kind == L_MUTEX || kind == L_MUTEX_SAFE) {
        if (atomic_fetch_add(&l->in_mx, 1) != 0)
            lk_violation(l, "two mutex holders", k->id);
        if (l->a != l->b)
            lk_violation(l, "mutex state left broken (C6)", k->id);
        l->a++;
    } else if (kind == L_READ) {
        atomic_fetch_add(&l->readers, 1);
        if (atomic_load(&l->writers) != 0)
            lk_violation(l, "reader beside a writer", k->id);
    } else if (kind == L_WRITE) {
        if (atomic_fetch_add(&l->writers, 1) != 0 || atomic_load(&l->readers) != 0)
            lk_violation(l, "writer not alone", k->id);
    } else if (atomic_fetch_add(&l->sem_held, (int64_t)k->need) + (int64_t)k->need
               > (int64_t)l->permits) {
        lk_violation(l, "more permits held than exist", k->id);
    }
}

/* Leaving: finish the two-step (also after a cancel: the repair), release. */
static void leave(struct locker *k)
{
    struct locks *l = k->l;
    int kind = l->kind[k->id];
    if (kind == L_MUTEX || kind == L_MUTEX_SAFE) {
        l->b++;
        atomic_fetch_sub(&l->in_mx, 1);
    } else if (kind == L_READ) {
        atomic_fetch_sub(&l->readers, 1);
    } else if (kind == L_WRITE) {
        atomic_fetch_sub(&l->writers, 1);
    } else {
        atomic_fetch_sub(&l->sem_held, (int64_t)k->need);
    }
    release(k);
}

static weft_poll locker_poll(weft_cx *cx, void *p)
{
    struct locker *k = p;
    struct locks *l = k->l;
    bool safe = l->kind[k->id] == L_MUTEX_SAFE;
    WEFT_BEGIN(&k->f);
    for (k->i = 0; k->i < l->iters[k->id]; k->i++) {
        k->nap_ns = (k->i + k->id) % 2 ? (k->i % 3) * 250000u + 1 : 0;
        /* A cancel-safe task must not be torn down while a select settles:
         * the won lock would be dropped unread (select.h "Limit"). */
        if (safe && k->nap_ns)
            weft_shield_enter(cx);
        k->sel = (weft_selector)WEFT_SELECTOR_INIT;   /* see scen_util.h */
        WEFT_AWAIT(&k->f, k->rc, acquire(cx, k));
        if (safe && k->nap_ns)
            weft_shield_exit(cx);
        scen_count_withdrawn(k->rc == -EAGAIN ? -ECANCELED : k->rc);
        if (k->rc == -EAGAIN)
            continue;       /* the timer won: retry from the back of the line */
        if (k->rc != 0)
            WEFT_RETURN(&k->f, k->rc == -ECANCELED ? 1 : -1);
        /* A cancel-safe holder shields its two-step so tear-down cannot split it. */
        if (safe)
            weft_shield_enter(cx);
        enter(k);
        WEFT_YIELD(&k->f, k->rc);
        leave(k);
        if (safe)
            weft_shield_exit(cx);
        if (k->rc == -ECANCELED)
            WEFT_RETURN(&k->f, 1);
    }
    WEFT_RETURN(&k->f, 0);
    WEFT_END(&k->f);
}

struct locks_root {
    weft_frame f;
    struct locks *l;
    struct scen_chaos chaos;
    weft_outcome out;
    uint32_t i;
    weft_poll rc;
};

static weft_poll locks_root_poll(weft_cx *cx, void *p)
{
    struct locks_root *r = p;
    struct locks *l = r->l;
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->rc, scen_chaos_poll(cx, &r->chaos));
    for (r->i = 0; r->i < l->n; r->i++) {
        WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &l->h[r->i], &r->out));
        scen_count_outcome(&r->out);
        check_join("locks", l->seed, r->i, l->kind[r->i] == L_MUTEX_SAFE, (int)r->rc,
                   atomic_load(&l->drops[r->i]));
        if (r->out.status == 0 && r->out.value < 0)
            lk_violation(l, "lock wait failed", r->i);
    }
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

static void check_locks_idle(struct locks *l)
{
    if (weft_mutex_destroy(&l->mx) != 0)
        stress_violation("locks", l->seed, "mutex still held or waited for");
    if (weft_rwlock_destroy(&l->rw) != 0)
        stress_violation("locks", l->seed, "rwlock still held or waited for");
    if (weft_semaphore_destroy(&l->sem) != 0
        || weft_semaphore_available(&l->sem) != (int64_t)l->permits)
        stress_violation("locks", l->seed, "semaphore: %lld of %u permits free",
                         (long long)weft_semaphore_available(&l->sem), l->permits);
    if (l->a != l->b)
        stress_violation("locks", l->seed, "two-step state torn: %llu vs %llu",
                         (unsigned long long)l->a, (unsigned long long)l->b);
}

void scen_run_locks(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    struct locks *l = zalloc(sizeof *l);
    uint64_t rng = seed;
    l->seed = seed;
    l->n = 2 + stress_below(&rng, NP - 1);
    l->permits = 1 + stress_below(&rng, 3);
    weft_mutex_init(&l->mx);
    weft_rwlock_init(&l->rw);
    weft_semaphore_init(&l->sem, l->permits);
    for (uint32_t i = 0; i < l->n; i++) {
        l->kind[i] = (uint8_t)stress_below(&rng, L_KINDS);
        l->iters[i] = 1 + stress_below(&rng, 24);
        struct locker k = { .l = l, .id = i, .need = 1 + stress_below(&rng, l->permits) };
        weft_task_desc d = { .poll = locker_poll, .frame = &k, .frame_size = sizeof k,
                             .drop = locker_drop, .name = "locker" };
        if (l->kind[i] == L_MUTEX_SAFE)
            d.flags = WEFT_TASK_CANCEL_SAFE;
        if (weft_spawn(rt, &d, &l->h[i]) < 0)
            abort();
    }
    struct locks_root root = { .l = l, .chaos = { .h = l->h, .n = l->n, .rounds = 40,
                                                  .odds = 6, .rng = stress_rng(&rng) } };
    weft_outcome out;
    if (scen_block_on(rt, &WEFT_TASK(locks_root_poll, &root), &out, "locks", seed) < 0)
        return;
    check_locks_idle(l);
    stress_count(&stress_totals.tasks, l->n + 1);
    free(l);
}

/* ==== gather: group, wait group, barrier, notify =========================== */

#define MAXGEN 16

enum gkind { G_BARRIER, G_NOTIFY, G_KINDS };

struct gather {
    uint64_t seed;
    uint32_t n, gens;
    uint8_t kind[NP], safe[NP];
    weft_group *group;
    weft_token *stop;
    weft_waitgroup wg;
    weft_barrier bar;
    weft_notify nt;
    uint32_t parties;
    bool safe_parties;          /* a torn-down party passed uncounted */
    _Atomic uint32_t passes[MAXGEN], leaders[MAXGEN];
    _Atomic int64_t woken, notified;
    _Atomic uint32_t drops[NP];
};

struct member {
    weft_frame f;
    struct gather *g;
    uint32_t id, gen;
    weft_barrier_waiter bw;
    weft_notify_waiter nw;
    weft_poll rc;
};

static void member_drop(void *p)
{
    struct member *m = p;
    atomic_fetch_add(&m->g->drops[m->id], 1);
    if (weft_waitgroup_done(&m->g->wg) != 0)
        stress_violation("gather", m->g->seed, "waitgroup done failed: drop hook ran twice?");
}

static weft_poll barrier_member(weft_cx *cx, struct member *m)
{
    struct gather *g = m->g;
    WEFT_BEGIN(&m->f);
    for (m->gen = 0; m->gen < g->gens; m->gen++) {
        WEFT_AWAIT(&m->f, m->rc, weft_barrier_wait(cx, &g->bar, &m->bw));
        if (m->rc < 0)
            WEFT_RETURN(&m->f, m->rc == -ECANCELED ? 1 : -1);
        atomic_fetch_add(&g->passes[m->gen], 1);
        if (m->rc == WEFT_BARRIER_LEADER)
            atomic_fetch_add(&g->leaders[m->gen], 1);
    }
    WEFT_RETURN(&m->f, 0);
    WEFT_END(&m->f);
}

static weft_poll notify_member(weft_cx *cx, struct member *m)
{
    struct gather *g = m->g;
    WEFT_BEGIN(&m->f);
    for (;;) {
        WEFT_AWAIT(&m->f, m->rc, weft_notify_wait(cx, &g->nt, &m->nw));
        if (m->rc < 0)
            WEFT_RETURN(&m->f, m->rc == -ECANCELED ? 1 : -1);
        atomic_fetch_add(&g->woken, 1);
    }
    WEFT_END(&m->f);
}

static weft_poll member_poll(weft_cx *cx, void *p)
{
    struct member *m = p;
    if (m->g->kind[m->id] == G_BARRIER)
        return barrier_member(cx, m);
    return notify_member(cx, m);
}

struct gather_root {
    weft_frame f;
    struct gather *g;
    uint64_t rng;
    uint32_t i, outcomes;
    weft_outcome out;
    weft_waitgroup_waiter ww;
    weft_poll rc;
};

static void gather_spawn_all(struct gather *g)
{
    for (uint32_t i = 0; i < g->n; i++) {
        struct member m = { .g = g, .id = i };
        weft_task_desc d = { .poll = member_poll, .frame = &m, .frame_size = sizeof m,
                             .drop = member_drop, .name = "member",
                             .tokens = &g->stop, .ntokens = 1 };
        if (g->safe[i])
            d.flags = WEFT_TASK_CANCEL_SAFE;
        weft_waitgroup_add(&g->wg, 1);
        if (weft_group_spawn(g->group, &d) < 0) {
            stress_violation("gather", g->seed, "group spawn %u failed", i);
            weft_waitgroup_done(&g->wg);
        }
    }
}

static void check_outcome_gather(struct gather *g, const weft_outcome *o)
{
    if (o->status == -ECANCELED ? o->cancel.source == WEFT_CANCEL_NONE
                                : o->status != 0 || o->value < 0)
        stress_violation("gather", g->seed, "member outcome status %d value %lld source %s",
                         o->status, (long long)o->value, weft_cancel_source_name(o->cancel.source));
}

static weft_poll gather_root_poll(weft_cx *cx, void *p)
{
    struct gather_root *r = p;
    struct gather *g = r->g;
    WEFT_BEGIN(&r->f);
    gather_spawn_all(g);
    for (r->i = 0; r->i < 3 * g->n; r->i++) {
        if (stress_below(&r->rng, 3) == 0 && weft_notify_one(&g->nt) >= 0)
            atomic_fetch_add(&g->notified, 1);
        if (stress_below(&r->rng, 8) == 0)
            atomic_fetch_add(&g->notified, weft_notify_all(&g->nt));
        if (stress_below(&r->rng, 4 * g->n) == 0)
            weft_group_cancel(g->group);
        WEFT_YIELD(&r->f, r->rc);
    }
    weft_token_cancel(g->stop);     /* releases the waits nobody will satisfy */
    WEFT_AWAIT(&r->f, r->rc, weft_waitgroup_wait(cx, &g->wg, &r->ww));
    for (;;) {
        WEFT_AWAIT(&r->f, r->rc, weft_group_join_next(cx, g->group, &r->out));
        if (r->rc != 1)
            break;
        r->outcomes++;
        scen_count_outcome(&r->out);
        check_outcome_gather(g, &r->out);
    }
    if (r->rc != 0 || r->outcomes != g->n)
        stress_violation("gather", g->seed, "group gave %u outcomes of %u (last %lld)",
                         r->outcomes, g->n, (long long)r->rc);
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

static void check_gather(struct gather *g)
{
    for (uint32_t i = 0; i < g->n; i++)
        if (atomic_load(&g->drops[i]) != 1)
            stress_violation("gather", g->seed, "member %u: drop hook ran %u times", i,
                             atomic_load(&g->drops[i]));
    for (uint32_t k = 0; k < g->gens; k++) {
        uint32_t pass = atomic_load(&g->passes[k]), lead = atomic_load(&g->leaders[k]);
        bool ok = g->safe_parties ? pass <= g->parties && lead == (pass > 0)
                                  : (pass == 0 && lead == 0) || (pass == g->parties && lead == 1);
        if (!ok)
            stress_violation("gather", g->seed, "barrier generation %u: %u passed, %u leaders "
                             "(parties %u)", k, pass, lead, g->parties);
    }
    if (atomic_load(&g->woken) > atomic_load(&g->notified))
        stress_violation("gather", g->seed, "notify: %lld woken, %lld notifications sent",
                         (long long)atomic_load(&g->woken), (long long)atomic_load(&g->notified));
    if (weft_barrier_destroy(&g->bar) != 0 || weft_notify_destroy(&g->nt) != 0
        || weft_waitgroup_destroy(&g->wg) != 0)
        stress_violation("gather", g->seed, "a barrier, notify or waitgroup wait still in flight");
}

void scen_run_gather(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    struct gather *g = zalloc(sizeof *g);
    uint64_t rng = seed;
    g->seed = seed;
    g->n = 1 + stress_below(&rng, NP);
    g->gens = 1 + stress_below(&rng, MAXGEN);
    for (uint32_t i = 0; i < g->n; i++) {
        g->kind[i] = (uint8_t)stress_below(&rng, G_KINDS);
        g->safe[i] = stress_below(&rng, 3) == 0;
        g->parties += g->kind[i] == G_BARRIER;
        g->safe_parties |= g->kind[i] == G_BARRIER && g->safe[i];
    }
    if (weft_token_new(&g->stop) < 0 || weft_group_new(rt, NULL, &g->group) < 0)
        abort();
    weft_barrier_init(&g->bar, g->parties ? g->parties : 1);
    weft_notify_init(&g->nt);
    weft_waitgroup_init(&g->wg);
    struct gather_root root = { .g = g, .rng = stress_rng(&rng) };
    weft_outcome out;
    if (scen_block_on(rt, &WEFT_TASK(gather_root_poll, &root), &out, "gather", seed) < 0)
        return;
    check_gather(g);
    weft_group_free(g->group);
    weft_token_release(g->stop);
    stress_count(&stress_totals.tasks, g->n + 1);
    free(g);
}
