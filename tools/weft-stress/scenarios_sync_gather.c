/*
 * tools/weft-stress/scenarios_sync_gather.c - cancellation against the
 * primitives of weft/sync.h that gather tasks (task group, wait group,
 * barrier, notify), with a group cancel at a random moment and a final token
 * cancel landing on their waits.
 *
 *  gather         task group, wait group (done in drop hooks), barrier and
 *                 notify under aborts and a final token cancel.
 *                 Invariants: one group outcome per child; drop hooks once
 *                 (a second done() would fail with -EPERM); each barrier
 *                 generation has exactly one leader and all parties or none;
 *                 notifications consumed never exceed those sent.
 *
 * The other sync primitives: scenarios_sync_chan.c (channels) and
 * scenarios_sync_locks.c (mutex, rwlock, semaphore).
 *
 * Each scenario here is written as stress_parts (stress.h): its own run and
 * weft-stress --harness (harness.c) check the same invariants.
 */
#include <stdlib.h>

#include "scen_util.h"

#define NP 8            /* members at most */

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

struct gather_inst {
    struct gather g;
    struct gather_root root;
};

static void *gather_make(uint64_t seed, unsigned threads)
{
    (void)threads;
    struct gather_inst *x = scen_zalloc(sizeof *x);
    struct gather *g = &x->g;
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
    if (weft_token_new(&g->stop) < 0)
        abort();
    weft_barrier_init(&g->bar, g->parties ? g->parties : 1);
    weft_notify_init(&g->nt);
    weft_waitgroup_init(&g->wg);
    x->root = (struct gather_root){ .g = g, .rng = stress_rng(&rng) };
    return x;
}

/* The group needs the runtime; the root spawns the members into it. */
static int gather_start(void *st, weft_runtime *rt)
{
    struct gather_inst *x = st;
    return weft_group_new(rt, NULL, &x->g.group);
}

/* The root drives (notifies, cancels, joins): shielded, so only the
 * members are cancelled. */
static weft_task_desc gather_root(void *st)
{
    struct gather_inst *x = st;
    weft_task_desc d = WEFT_TASK(gather_root_poll, &x->root);
    d.flags = WEFT_TASK_SHIELDED;
    d.name = "gather-root";
    return d;
}

static void gather_check(void *st, int rc, const weft_outcome *root, unsigned injected)
{
    (void)root;
    (void)injected;
    struct gather_inst *x = st;
    if (rc < 0)
        return;
    check_gather(&x->g);
    stress_count(&stress_totals.tasks, x->g.n + 1);
    /* While the runtime lives, and only once every member is gone: freeing
     * a group waits for its children, which nothing would then run. */
    for (uint32_t i = 0; i < x->g.n; i++)
        if (atomic_load(&x->g.drops[i]) == 0)
            return;     /* leaked with the failure the check reported */
    weft_group_free(x->g.group);
}

static void gather_destroy(void *st)
{
    struct gather_inst *x = st;
    weft_token_release(x->g.stop);
    free(x);
}

const stress_parts scen_gather_parts = { gather_make, gather_start, gather_root, gather_check,
                                         gather_destroy };

void scen_run_gather(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    scen_run_parts(&scen_gather_parts, "gather", rt, seed, threads);
}
