/*
 * tests/stress/stress_cancel.c - cancellation races across threads: token
 * trees, aborts, shields, join timeouts and task groups, on a 3-worker
 * runtime driven by several plain threads at once. A plain executable (no
 * Criterion), so it also runs under TSan.
 *
 * Each driver thread runs random rounds:
 *   tokens   tasks bound to a token tree (root, two mids, four leaves) are
 *            cancelled - by the driver and by tasks on the workers - while
 *            they run, suspend, sit in nested shields or after they finished;
 *            some are also aborted. The root is cancelled last.
 *   abort    aborts racing the completion of short tasks.
 *   timeout  a task spawns a target and awaits it with a short
 *            weft_join_await_timeout, racing the target's end; the driver
 *            sometimes aborts the waiter too.
 *   group    a task cancels a group while the driver spawns into it; the
 *            owner (cooperative or cancel-safe) joins, is sometimes aborted
 *            in join_next (the group drains), and ends with
 *            WEFT_GROUP_AWAIT_SHUTDOWN.
 *
 * Invariants checked (exit 1 on any violation, 0 when all hold):
 *   - every drop hook runs exactly once, and never for a refused spawn;
 *   - every join resolves with a status the rules allow (docs/cancellation.md,
 *     "Join outcomes"): status 0 only for a task that returned, with its own
 *     value; -ECANCELED only for a cancel-safe task that never returned and
 *     had a request; the source is one that asked; a cooperative task sees
 *     -ECANCELED at every unshielded await after the first (level-triggered),
 *     a cancel-safe one never sees it;
 *   - a two-step update inside nested shields is never torn (checked in the
 *     drop hook: both steps or neither), and no shielded await yields
 *     -ECANCELED;
 *   - a join timeout stops the waiting, not the work: a cooperative target
 *     runs to completion uncancelled;
 *   - a group's shutdown returns only once every child spawned into it ended;
 *   - nothing is left: the live-task count reaches 0 with no shutdown.
 *
 * Usage: stress-cancel [--threads T] [--rounds R] [--workers W] [--seed S] [--timeout S]
 */
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "stress_util.h"
#include "weft/weft.h"

#define US 1000ull

/* SHIELD: a two-step update in nested shields, then return; SHIELD_WAIT:
 * the same, then wait for a cancellation like WAIT. */
enum kind { QUICK, SPIN, WAIT, SHIELD, SHIELD_WAIT, NAP, CANCELLER, NKINDS };

/* Source bits a join may report besides NONE. */
#define SRC(s) (1u << (s))

typedef struct rec {
    _Atomic int drops;
    _Atomic int returned;
    _Atomic int spawned;        /* 1 spawned, -1 refused */
    _Atomic int torn;           /* the drop hook saw half a two-step update */
    _Atomic int level_broken;   /* an await after a delivery did not cancel */
    _Atomic int saw_cancel;     /* returned after an await yielded -ECANCELED */
    uint8_t kind;
    unsigned flags;
} rec;

/* How the races came out, to show each side is reached. */
static struct {
    _Atomic long abort_won, abort_late, joined, timed_out, waiter_cancelled;
    _Atomic long owner_cancelled, refused, torn_down;
} seen;

static rec *recs;
static uint32_t max_recs;
static _Atomic uint32_t next_rec;
static weft_runtime *rt;

/* ---- the task ---------------------------------------------------------------- */

struct task {
    weft_frame f;
    uint32_t id;
    uint8_t kind;
    int i, n;
    bool cancel_seen;
    int step_a, step_b;         /* the shielded two-step update */
    weft_token *to_cancel;      /* CANCELLER: the round holds a reference */
    weft_group *group;          /* CANCELLER: cancel this group */
    uint64_t nap_ns;
    forever_leaf leaf;
    weft_sleep nap;
    int64_t rc;
};

static void task_drop(void *p)
{
    struct task *t = p;
    if (t->step_a != t->step_b)
        atomic_store(&recs[t->id].torn, 1);
    int d = atomic_fetch_add(&recs[t->id].drops, 1);
    CHECK(d == 0, "task %u dropped twice", t->id);
}

/* An unshielded await yielded rc: once one cancelled, all later ones must. */
static void note(struct task *t, int64_t rc)
{
    if (rc == -ECANCELED)
        t->cancel_seen = true;
    else if (t->cancel_seen)
        atomic_store(&recs[t->id].level_broken, 1);
}

static weft_poll task_poll(weft_cx *cx, void *p)
{
    struct task *t = p;
    WEFT_BEGIN(&t->f);
    for (t->i = 0; t->i < t->n; t->i++) {
        WEFT_YIELD(&t->f, t->rc);
        note(t, t->rc);
    }
    if (t->kind == NAP) {
        WEFT_AWAIT(&t->f, t->rc, weft_sleep_for(cx, &t->nap, t->nap_ns));
        note(t, t->rc);
    } else if (t->kind == CANCELLER) {
        if (t->to_cancel)
            CHECK(weft_token_cancel(t->to_cancel) >= 0, "token cancel from a task");
        if (t->group)
            CHECK(weft_group_cancel(t->group) >= 0, "group cancel from a task");
    } else if (t->kind == SHIELD || t->kind == SHIELD_WAIT) {
        WEFT_SHIELD_BEGIN();
        t->step_a = 1;
        WEFT_YIELD(&t->f, t->rc);
        CHECK(t->rc == 0, "task %u: shielded yield gave %ld", t->id, (long)t->rc);
        WEFT_SHIELD_BEGIN();
        WEFT_AWAIT(&t->f, t->rc, weft_sleep_for(cx, &t->nap, t->nap_ns));
        CHECK(t->rc == 0, "task %u: nested shielded sleep gave %ld", t->id, (long)t->rc);
        WEFT_SHIELD_END();
        WEFT_YIELD(&t->f, t->rc);
        CHECK(t->rc == 0, "task %u: yield at depth 1 gave %ld", t->id, (long)t->rc);
        t->step_b = 1;
        WEFT_SHIELD_END();
    }
    if (t->kind == WAIT || t->kind == SHIELD_WAIT) {
        WEFT_AWAIT(&t->f, t->rc, forever_poll(cx, &t->leaf));
        CHECK(t->rc == -ECANCELED, "task %u: forever leaf gave %ld", t->id, (long)t->rc);
        note(t, t->rc);
    }
    atomic_store(&recs[t->id].saw_cancel, t->cancel_seen);
    atomic_store(&recs[t->id].returned, 1);
    WEFT_RETURN(&t->f, (int64_t)t->id * 2 + t->cancel_seen);
    WEFT_END(&t->f);
}

/* A fresh record and the frame of a task of kind k; id UINT32_MAX when out
 * of records. */
static struct task task_frame(enum kind k, unsigned flags, uint32_t s)
{
    struct task t = { .kind = (uint8_t)k, .n = (int)(s % 4), .nap = WEFT_SLEEP_INIT,
                      .nap_ns = 5 * US + (s >> 4) % 40 * US };
    t.id = atomic_fetch_add(&next_rec, 1);
    if (t.id >= max_recs) {
        CHECK(0, "out of records");
        t.id = UINT32_MAX;
        return t;
    }
    recs[t.id].kind = (uint8_t)k;
    recs[t.id].flags = flags;
    return t;
}

static weft_task_desc task_desc(const struct task *t, unsigned flags)
{
    return (weft_task_desc){ .poll = task_poll, .frame = t, .frame_size = sizeof *t,
                             .drop = task_drop, .flags = flags };
}

/* Spawn (h != NULL) or spawn into g. Returns the spawn's result. */
static int spawn_rec(const struct task *t, const weft_task_desc *d, weft_join *h, weft_group *g)
{
    if (t->id == UINT32_MAX)
        return -ENOMEM;
    int rc = g ? weft_group_spawn(g, d) : weft_spawn(rt, d, h);
    atomic_store(&recs[t->id].spawned, rc == 0 ? 1 : -1);
    return rc;
}

/* ---- checking a join ---------------------------------------------------------- */

static void check_rec(uint32_t id)
{
    rec *r = &recs[id];
    CHECK(atomic_load(&r->drops) == 1, "task %u ended with %d drops", id,
          atomic_load(&r->drops));
    CHECK(!atomic_load(&r->torn), "task %u (kind %d): shielded update torn", id, r->kind);
    CHECK(!atomic_load(&r->level_broken), "task %u: an await after a delivery did not "
          "yield -ECANCELED", id);
    if (r->flags & WEFT_TASK_CANCEL_SAFE)
        CHECK(!atomic_load(&r->saw_cancel), "cancel-safe task %u saw -ECANCELED", id);
}

/* A joined outcome of task id; sources: who may have asked it to stop. */
static void check_outcome(uint32_t id, const weft_outcome *out, unsigned sources)
{
    rec *r = &recs[id];
    bool safe = r->flags & WEFT_TASK_CANCEL_SAFE;
    check_rec(id);
    if (out->cancel.source != WEFT_CANCEL_NONE)
        CHECK(sources & SRC(out->cancel.source), "task %u: source %s", id,
              weft_cancel_source_name(out->cancel.source));
    if (out->status == 0) {
        CHECK(atomic_load(&r->returned) == 1, "task %u: status 0 but it never returned", id);
        CHECK(out->value == (int64_t)id * 2 || out->value == (int64_t)id * 2 + 1,
              "task %u: value %ld", id, (long)out->value);
        if (out->value & 1) {
            CHECK(out->cancel.source != WEFT_CANCEL_NONE, "task %u cancelled by nobody", id);
            CHECK(out->cancel.delivered_at != NULL, "task %u: no delivery site", id);
        }
        if (r->kind == WAIT || r->kind == SHIELD_WAIT)
            CHECK(out->value & 1, "waiting task %u returned uncancelled", id);
        return;
    }
    CHECK(out->status == -ECANCELED, "task %u: status %d", id, out->status);
    atomic_fetch_add(&seen.torn_down, 1);
    CHECK(safe, "cooperative task %u torn down", id);
    CHECK(atomic_load(&r->returned) == 0, "task %u torn down after returning", id);
    CHECK(out->cancel.source != WEFT_CANCEL_NONE, "task %u torn down unasked", id);
}

static void spin(uint32_t s)
{
    for (volatile uint32_t i = 0; i < s % 2000; i++)
        ;
    if (s & 0x10000)
        sched_yield();
}

/* ---- round: a token tree -------------------------------------------------------- */

enum { TREE = 7, TOKEN_TASKS = 10 };

static void round_tokens(uint32_t *seed)
{
    /* 0 is the root; 1, 2 its children; 3, 4 under 1; 5, 6 under 2. */
    weft_token *tok[TREE];
    CHECK(weft_token_new(&tok[0]) == 0, "token_new");
    for (int i = 1; i < TREE; i++)
        CHECK(weft_token_child(tok[(i - 1) / 2], &tok[i]) == 0, "token_child");
    weft_join h[TOKEN_TASKS];
    uint32_t ids[TOKEN_TASKS];
    for (int k = 0; k < TOKEN_TASKS; k++) {
        uint32_t s = rnd(seed);
        unsigned flags = s % 2 ? WEFT_TASK_CANCEL_SAFE : 0;
        struct task t = task_frame((enum kind)((s >> 1) % NKINDS), flags, s >> 3);
        if (t.kind == CANCELLER)
            t.to_cancel = tok[1 + (s >> 7) % (TREE - 1)];
        weft_token *bound[2] = { tok[1 + (s >> 10) % (TREE - 1)],
                                 tok[1 + (s >> 13) % (TREE - 1)] };
        weft_task_desc d = task_desc(&t, flags);
        d.tokens = bound;
        d.ntokens = 1 + (s >> 16) % 2;
        h[k] = (weft_join)WEFT_JOIN_INIT;
        ids[k] = t.id;
        CHECK(spawn_rec(&t, &d, &h[k], NULL) == 0, "spawn");
        if ((s >> 17) % 8 == 0 && h[k].weft_task)
            CHECK(weft_abort(&h[k]) >= 0, "abort");
    }
    for (int j = 0; j < 3; j++) {
        uint32_t s = rnd(seed);
        spin(s);
        CHECK(weft_token_cancel(tok[1 + s % (TREE - 1)]) >= 0, "token cancel");
    }
    spin(rnd(seed));
    CHECK(weft_token_cancel(tok[0]) >= 0, "root cancel");
    for (int k = 0; k < TOKEN_TASKS; k++) {
        weft_outcome out;
        if (!h[k].weft_task)
            continue;
        CHECK(weft_join_wait(&h[k], &out) == 0, "join_wait");
        check_outcome(ids[k], &out, SRC(WEFT_CANCEL_TOKEN) | SRC(WEFT_CANCEL_ABORT));
    }
    for (int i = 0; i < TREE; i++)
        weft_token_release(tok[i]);
}

/* ---- round: aborts racing completion --------------------------------------------- */

enum { ABORT_TASKS = 8 };

static void round_abort(uint32_t *seed)
{
    static const enum kind kinds[] = { QUICK, SPIN, NAP, SHIELD, SHIELD_WAIT, WAIT };
    for (int k = 0; k < ABORT_TASKS; k++) {
        uint32_t s = rnd(seed);
        unsigned flags = s % 2 ? WEFT_TASK_CANCEL_SAFE : 0;
        struct task t = task_frame(kinds[(s >> 1) % 6], flags, s >> 3);
        weft_task_desc d = task_desc(&t, flags);
        weft_join h = WEFT_JOIN_INIT;
        if (spawn_rec(&t, &d, &h, NULL) != 0) {
            CHECK(0, "spawn");
            continue;
        }
        spin(s >> 8);
        int a = weft_abort(&h);
        CHECK(a == 0 || a == 1, "abort: %d", a);
        weft_outcome out;
        CHECK(weft_join_wait(&h, &out) == 0, "join_wait");
        check_outcome(t.id, &out, SRC(WEFT_CANCEL_ABORT));
        atomic_fetch_add(a == 1 ? &seen.abort_late : &seen.abort_won, 1);
        if (a == 1)
            CHECK(out.status == 0 && out.cancel.source == WEFT_CANCEL_NONE,
                  "abort after completion changed task %u", t.id);
        else
            CHECK(out.cancel.source == WEFT_CANCEL_ABORT, "recorded abort of task %u lost",
                  t.id);
    }
}

/* ---- round: join timeouts racing completion ---------------------------------------- */

struct waiter {
    weft_frame f;
    uint32_t id;                /* the waiter's own record */
    uint32_t target;            /* the target's record */
    uint32_t seed;
    uint64_t ns;
    weft_join_timeout jt;
    weft_join h;
    weft_outcome out;
    int64_t rc;
};

static uint32_t *targets;       /* detached targets, checked after the run */
static _Atomic uint32_t n_targets;
static uint32_t max_targets;

static void waiter_drop(void *p)
{
    struct waiter *w = p;
    if (w->h.weft_task)
        weft_detach(&w->h);     /* the waiter was cancelled: stop waiting only */
    int d = atomic_fetch_add(&recs[w->id].drops, 1);
    CHECK(d == 0, "waiter %u dropped twice", w->id);
}

static void keep_target(uint32_t id)
{
    uint32_t slot = atomic_fetch_add(&n_targets, 1);
    if (slot < max_targets)
        targets[slot] = id;
    else
        CHECK(0, "out of target slots");
}

static weft_poll waiter_poll(weft_cx *cx, void *p)
{
    static const enum kind kinds[] = { QUICK, SPIN, NAP, SHIELD };
    struct waiter *w = p;
    WEFT_BEGIN(&w->f);
    {
        unsigned flags = w->seed % 2 ? WEFT_TASK_CANCEL_SAFE : 0;
        struct task t = task_frame(kinds[(w->seed >> 1) % 4], flags, w->seed >> 3);
        weft_task_desc d = task_desc(&t, flags);
        w->target = t.id;
        if (spawn_rec(&t, &d, &w->h, NULL) != 0) {
            CHECK(0, "spawn from a task");
            WEFT_RETURN(&w->f, -1);
        }
        keep_target(t.id);
    }
    WEFT_AWAIT(&w->f, w->rc, weft_join_await_timeout(cx, &w->jt, &w->h, &w->out, w->ns));
    if (w->rc == 0) {
        atomic_fetch_add(&seen.joined, 1);
        CHECK(!w->h.weft_task, "joined, handle not consumed");
        check_outcome(w->target, &w->out, 0);
    } else if (w->rc == -ETIMEDOUT) {
        atomic_fetch_add(&seen.timed_out, 1);
        CHECK(!w->h.weft_task, "timed out, handle not given up");
    } else {
        CHECK(w->rc == -ECANCELED, "join_await_timeout: %ld", (long)w->rc);
        atomic_fetch_add(&seen.waiter_cancelled, 1);
        CHECK(w->h.weft_task != NULL, "waiter cancelled: the handle must stay valid");
    }
    atomic_store(&recs[w->id].returned, 1);
    WEFT_RETURN(&w->f, w->rc);
    WEFT_END(&w->f);
}

enum { WAITERS = 6 };

static void round_timeout(uint32_t *seed)
{
    weft_join h[WAITERS];
    uint32_t ids[WAITERS];
    for (int k = 0; k < WAITERS; k++) {
        uint32_t s = rnd(seed);
        struct task rec_only = task_frame(QUICK, 0, 0);    /* a record for the waiter */
        struct waiter w = { .id = rec_only.id, .seed = s >> 4,
                            .ns = (s % 60) * US, .jt = WEFT_JOIN_TIMEOUT_INIT,
                            .h = WEFT_JOIN_INIT };
        weft_task_desc d = { .poll = waiter_poll, .frame = &w, .frame_size = sizeof w,
                             .drop = waiter_drop };
        h[k] = (weft_join)WEFT_JOIN_INIT;
        ids[k] = w.id;
        if (w.id == UINT32_MAX || weft_spawn(rt, &d, &h[k]) != 0) {
            CHECK(0, "spawn waiter");
            continue;
        }
        atomic_store(&recs[w.id].spawned, 1);
        if ((s >> 20) % 4 == 0) {
            spin(s >> 8);
            CHECK(weft_abort(&h[k]) >= 0, "abort waiter");
        }
    }
    for (int k = 0; k < WAITERS; k++) {
        weft_outcome out;
        if (!h[k].weft_task)
            continue;
        CHECK(weft_join_wait(&h[k], &out) == 0, "join waiter");
        CHECK(out.status == 0, "cooperative waiter %u: status %d", ids[k], out.status);
        CHECK(atomic_load(&recs[ids[k]].drops) == 1, "waiter %u drops", ids[k]);
    }
}

/* A detached target has ended by itself (after the run): it ran to completion
 * unless it was cancel-safe (then the timeout may have torn it down). */
static void check_target(uint32_t id)
{
    rec *r = &recs[id];
    check_rec(id);
    if (!(r->flags & WEFT_TASK_CANCEL_SAFE)) {
        CHECK(atomic_load(&r->returned) == 1, "cooperative target %u stopped with the wait",
              id);
        CHECK(!atomic_load(&r->saw_cancel), "a timeout cancelled cooperative target %u", id);
    }
}

/* ---- round: a group cancelled while it is being spawned into ----------------------- */

enum { GROUP_KIDS = 10 };

struct ground {
    _Atomic uint32_t ids[GROUP_KIDS];
    _Atomic int n;
    _Atomic int owner_drops;
};

struct owner {
    weft_frame f;
    weft_group *g;
    struct ground *round;
    int joined;
    int64_t rc;
    weft_outcome out;
};

static void check_group_outcome(const weft_outcome *out)
{
    unsigned sources = SRC(WEFT_CANCEL_GROUP) | SRC(WEFT_CANCEL_TOKEN);
    if (out->status == 0) {
        check_outcome((uint32_t)(out->value / 2), out, sources);
        return;
    }
    CHECK(out->status == -ECANCELED, "child status %d", out->status);
    CHECK(sources & SRC(out->cancel.source), "child torn down by %s",
          weft_cancel_source_name(out->cancel.source));
}

/* After the shutdown: every child the driver saw spawned has ended. */
static void check_shut(const struct ground *round)
{
    int n = atomic_load(&round->n);
    for (int k = 0; k < n; k++) {
        uint32_t id = atomic_load(&round->ids[k]);
        if (atomic_load(&recs[id].spawned) == 1)
            CHECK(atomic_load(&recs[id].drops) == 1, "child %u outlived the shutdown", id);
    }
}

static void owner_drop(void *p)
{
    atomic_fetch_add(&((struct owner *)p)->round->owner_drops, 1);
}

static weft_poll owner_poll(weft_cx *cx, void *p)
{
    struct owner *o = p;
    WEFT_BEGIN(&o->f);
    for (;;) {
        WEFT_AWAIT(&o->f, o->rc, weft_group_join_next(cx, o->g, &o->out));
        if (o->rc != 1)
            break;
        check_group_outcome(&o->out);
        o->joined++;
    }
    CHECK(o->rc == 0 || o->rc == -ECANCELED, "join_next: %ld", (long)o->rc);
    if (o->rc == -ECANCELED)
        atomic_fetch_add(&seen.owner_cancelled, 1);
    WEFT_GROUP_AWAIT_SHUTDOWN(&o->f, o->rc, o->g);
    CHECK(o->rc == 0, "shutdown: %ld", (long)o->rc);
    check_shut(o->round);
    WEFT_RETURN(&o->f, o->joined);
    WEFT_END(&o->f);
}

static void round_group(uint32_t *seed)
{
    uint32_t s0 = rnd(seed);
    weft_token *parent = NULL;
    if (s0 % 2)
        CHECK(weft_token_new(&parent) == 0, "token_new");
    weft_group *g;
    CHECK(weft_group_new(rt, parent, &g) == 0, "group_new");
    struct ground round = { .n = 0 };

    struct task c = task_frame(CANCELLER, 0, s0 >> 1);
    c.group = g;
    weft_task_desc cd = task_desc(&c, 0);
    weft_join ch = WEFT_JOIN_INIT;
    CHECK(spawn_rec(&c, &cd, &ch, NULL) == 0, "spawn canceller");
    /* A cancel-safe owner aborted in join_next is torn down once the
     * children it cancelled have all finished. */
    struct owner o = { .g = g, .round = &round };
    unsigned oflags = (s0 >> 20) % 2 ? WEFT_TASK_CANCEL_SAFE : 0;
    weft_join oh = WEFT_JOIN_INIT;
    CHECK(weft_spawn(rt, &(weft_task_desc){ .poll = owner_poll, .frame = &o,
                                            .frame_size = sizeof o, .drop = owner_drop,
                                            .flags = oflags }, &oh) == 0,
          "spawn owner");
    bool abort_owner = (s0 >> 8) % 3 == 0;
    for (int k = 0; k < GROUP_KIDS; k++) {
        static const enum kind kinds[] = { QUICK, SPIN, WAIT, SHIELD, SHIELD_WAIT, NAP };
        uint32_t s = rnd(seed);
        unsigned flags = s % 2 ? WEFT_TASK_CANCEL_SAFE : 0;
        struct task t = task_frame(kinds[(s >> 1) % 6], flags, s >> 4);
        weft_task_desc d = task_desc(&t, flags);
        if (t.id == UINT32_MAX)
            break;
        atomic_store(&round.ids[k], t.id);
        atomic_store(&round.n, k + 1);
        int rc = spawn_rec(&t, &d, NULL, g);
        CHECK(rc == 0 || rc == -ESHUTDOWN, "group spawn: %d", rc);
        if (rc == -ESHUTDOWN)
            atomic_fetch_add(&seen.refused, 1);
        if (abort_owner && k == (int)(s0 >> 12) % GROUP_KIDS)
            CHECK(weft_abort(&oh) >= 0, "abort owner");
    }
    if (parent && (s0 >> 16) % 2)
        weft_token_cancel(parent);
    weft_outcome out;
    CHECK(weft_join_wait(&ch, &out) == 0, "join canceller");
    check_outcome(c.id, &out, 0);
    CHECK(weft_join_wait(&oh, &out) == 0, "join owner");
    CHECK(out.status == 0 || (out.status == -ECANCELED && oflags && abort_owner),
          "owner status %d", out.status);
    CHECK(atomic_load(&round.owner_drops) == 1, "owner dropped %d times",
          atomic_load(&round.owner_drops));
    CHECK(weft_group_free(g) == 0, "group_free");
    int n = atomic_load(&round.n);
    for (int k = 0; k < n; k++) {
        uint32_t id = atomic_load(&round.ids[k]);
        if (atomic_load(&recs[id].spawned) == 1)
            check_rec(id);
        else
            CHECK(atomic_load(&recs[id].drops) == 0, "refused child %u dropped", id);
    }
    weft_token_release(parent);
}

/* ---- driver threads ------------------------------------------------------------------ */

static long rounds;
static uint32_t base_seed;

static void *driver_main(void *arg)
{
    uint32_t seed = base_seed ^ ((uint32_t)(uintptr_t)arg * 2654435761u);
    for (long r = 0; r < rounds; r++) {
        switch (rnd(&seed) % 4) {
        case 0: round_tokens(&seed); break;
        case 1: round_abort(&seed); break;
        case 2: round_timeout(&seed); break;
        default: round_group(&seed); break;
        }
    }
    return NULL;
}

/* Detached targets end by themselves; wait for the count to reach 0. Nothing
 * signals that, so this polls the count itself, paced by 1 ms naps, with a
 * hang guard of 30 s; the caller checks the count. */
static size_t settle(void)
{
    size_t live = weft_runtime_live_tasks(rt);
    for (int i = 0; i < 30000 && live > 0; i++) {
        const struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
        live = weft_runtime_live_tasks(rt);
    }
    return live;
}

int main(int argc, char **argv)
{
    int nthreads = (int)arg_long(argc, argv, "--threads", 3);
    rounds = arg_long(argc, argv, "--rounds", 1000);
    unsigned workers = (unsigned)arg_long(argc, argv, "--workers", 3);
    base_seed = (uint32_t)arg_long(argc, argv, "--seed", (long)time(NULL));
    watchdog((unsigned)arg_long(argc, argv, "--timeout", 300));
    if (nthreads < 1 || nthreads > 64 || rounds < 1)
        return 1;
    fprintf(stderr, "stress-cancel: seed %u\n", base_seed);

    /* At most 11 records per round (the group round), one target per waiter. */
    max_recs = (uint32_t)(nthreads * rounds * 13 + 64);
    max_targets = (uint32_t)(nthreads * rounds * WAITERS + 16);
    recs = calloc(max_recs, sizeof *recs);
    targets = calloc(max_targets, sizeof *targets);
    if (!recs || !targets)
        return 77;

    weft_runtime_opts o = { .threads = workers, .shutdown_grace_ms = 1000 };
    int rc = weft_runtime_new(&rt, &o);
    if (rc == -ENOSYS || rc == -EPERM) {
        fprintf(stderr, "stress-cancel: no io_uring here (%d): skip\n", rc);
        return 77;
    }
    CHECK(rc == 0, "runtime_new: %d", rc);
    if (rc)
        return 1;

    pthread_t th[64];
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, driver_main, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);

    size_t live = settle();
    CHECK(live == 0, "%zu task(s) still live after every round ended", live);
    uint32_t nt = atomic_load(&n_targets);
    for (uint32_t i = 0; i < nt && i < max_targets; i++)
        check_target(targets[i]);
    CHECK(weft_runtime_free(rt) == 0, "runtime_free");

    uint32_t n = atomic_load(&next_rec), spawned = 0;
    for (uint32_t id = 0; id < n && id < max_recs; id++) {
        int sp = atomic_load(&recs[id].spawned);
        int d = atomic_load(&recs[id].drops);
        spawned += sp == 1;
        if (sp == 1)
            CHECK(d == 1, "task %u (kind %d, flags %u): %d drops", id, recs[id].kind,
                  recs[id].flags, d);
        else
            CHECK(d == 0, "unspawned task %u dropped %d times", id, d);
    }
    fprintf(stderr, "stress-cancel: %d threads x %ld rounds, %u tasks (%ld torn down); "
                    "abort before/after the end %ld/%ld; join timeouts: %ld joined, %ld timed "
                    "out, %ld waiters cancelled; group owners cancelled %ld, spawns refused "
                    "after shutdown %ld\n", nthreads, rounds, spawned,
            atomic_load(&seen.torn_down), atomic_load(&seen.abort_won),
            atomic_load(&seen.abort_late), atomic_load(&seen.joined),
            atomic_load(&seen.timed_out), atomic_load(&seen.waiter_cancelled),
            atomic_load(&seen.owner_cancelled), atomic_load(&seen.refused));
    free(recs);
    free(targets);
    return stress_result("stress-cancel");
}
