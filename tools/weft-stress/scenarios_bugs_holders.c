/*
 * tools/weft-stress/scenarios_bugs_holders.c - the patterns of the
 * cancellation bug catalogue (docs/bug-catalogue.md) in which a task holds a
 * mutex while a cancellation can reach it: across a persist (C1), while its
 * lock waits lose selects (C8), while its critical part runs on the blocking
 * pool (C9). Each scenario spawns up to NT holders of one kind, lets a root
 * abort them at random moments (struct scen_chaos) and joins them; then the
 * mutex must be idle and every drop hook must have run once. Like every
 * catalogue scenario, each is written the way weft says the code should be
 * written, and checks the oracle the catalogue gives:
 *
 *  c1_persist        persist-then-count inside a shield under a mutex: the
 *                    file and the counter always agree (C1).
 *  c8_futurelock     lock waits that lose selects, then lock again: a loser
 *                    is withdrawn, so nobody waits on a lock parked in an
 *                    unpolled future; every task ends, the mutex ends idle (C8).
 *  c9_blocking       lock holders whose critical part runs on the blocking
 *                    pool, aborted and torn down mid-job: the lock passes on
 *                    only after the job returned, so holders never overlap (C9).
 *
 * The other catalogue scenarios: scenarios_bugs_delivery.c (how a request is
 * delivered and answered) and scenarios_bugs_chan.c (channel values across
 * selects and relays); the patterns the sync and I/O scenarios already cover
 * are not repeated.
 *
 * Each scenario here is written as stress_parts (stress.h): its own run and
 * weft-stress --harness (harness.c) check the same invariants.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scen_util.h"

#define NT 8            /* holders at most */

/* Spawn n copies of a frame, frame->id set to i; id is a uint32_t at id_off. */
static int spawn_n(weft_runtime *rt, weft_task_desc d, void *frame, size_t id_off, uint32_t n,
                   const uint8_t *safe, weft_join *h)
{
    for (uint32_t i = 0; i < n; i++) {
        memcpy((char *)frame + id_off, &i, sizeof i);
        d.frame = frame;
        d.flags = safe && safe[i] ? WEFT_TASK_CANCEL_SAFE : 0;
        int rc = weft_spawn(rt, &d, &h[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A root that runs the chaos phase, then joins n handles into outs. */
struct chaos_root {
    weft_frame f;
    weft_join *h;
    weft_outcome *outs;
    uint32_t n, i;
    struct scen_chaos chaos;
    weft_poll rc;
};

static weft_poll chaos_root_poll(weft_cx *cx, void *p)
{
    struct chaos_root *r = p;
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->rc, scen_chaos_poll(cx, &r->chaos));
    for (r->i = 0; r->i < r->n; r->i++) {
        WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &r->h[r->i], &r->outs[r->i]));
        scen_count_outcome(&r->outs[r->i]);
    }
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

static struct chaos_root chaos_root_of(weft_join *h, weft_outcome *outs, uint32_t n,
                                        uint64_t rng)
{
    return (struct chaos_root){ .h = h, .outs = outs, .n = n,
                                .chaos = { .h = h, .n = n, .rounds = 30, .odds = 3, .rng = rng } };
}

/* At shutdown, a root that hung is torn down (its join withdrawn first):
 * give up the handles it did not join, so that the tasks are freed with
 * the runtime. Under --harness this happens on every simulated run of
 * c9_blocking, whose jobs the simulator does not wait for (its simulated
 * runs only count suspensions for the threaded ones). Not from the check:
 * the root may still be awaiting one of them there. */
static void chaos_root_drop(void *p)
{
    struct chaos_root *r = p;
    for (uint32_t i = 0; i < r->n; i++)
        if (r->h[i].weft_task)
            weft_detach(&r->h[i]);
}

/* The root drives (aborts, joins): shielded, so that only the holders are
 * cancelled, by it and by weft-stress --harness. */
static weft_task_desc chaos_root_desc(struct chaos_root *r, const char *name)
{
    weft_task_desc d = WEFT_TASK(chaos_root_poll, r);
    d.drop = chaos_root_drop;
    d.flags = WEFT_TASK_SHIELDED;
    d.name = name;
    return d;
}

/* ==== c1_persist ============================================================ */

struct persist {
    int fd;
    uint64_t counter;
    weft_mutex mx;
    _Atomic uint32_t drops[NT];
    weft_join h[NT];
    weft_outcome outs[NT];
};

struct persister {
    weft_frame f;
    uint32_t id;
    struct persist *s;
    uint32_t steps, i;
    uint64_t next;
    bool holds;
    weft_mutex_waiter w;
    weft_io io;
    weft_poll rc;
};

static void persister_drop(void *p)
{
    struct persister *t = p;
    if (t->holds)
        weft_mutex_unlock(&t->s->mx);
    atomic_fetch_add(&t->s->drops[t->id], 1);
}

static weft_poll persister_poll(weft_cx *cx, void *p)
{
    struct persister *t = p;
    WEFT_BEGIN(&t->f);
    for (t->i = 0; t->i < t->steps; t->i++) {
        WEFT_AWAIT(&t->f, t->rc, weft_mutex_lock(cx, &t->s->mx, &t->w));
        if (t->rc < 0)
            WEFT_RETURN(&t->f, 1);
        t->holds = true;
        weft_shield_enter(cx);
        t->next = t->s->counter + 1;
        WEFT_AWAIT(&t->f, t->rc, weft_write(cx, &t->io, t->s->fd, &t->next, sizeof t->next, 0));
        if (t->rc == (weft_poll)sizeof t->next)
            t->s->counter = t->next;
        weft_shield_exit(cx);
        t->holds = false;
        weft_mutex_unlock(&t->s->mx);
        WEFT_YIELD(&t->f, t->rc);
        if (t->rc < 0)
            WEFT_RETURN(&t->f, 1);
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

struct c1_inst {
    struct persist s;
    uint64_t seed;
    uint32_t n, steps;
    uint8_t safe[NT];
    struct chaos_root root;
};

static void *c1_make(uint64_t seed, unsigned threads)
{
    (void)threads;
    uint64_t rng = seed;
    char path[64];
    snprintf(path, sizeof path, "/tmp/weft-stress-c1-%d", (int)getpid());
    struct c1_inst *x = scen_zalloc(sizeof *x);
    struct persist *s = &x->s;
    x->seed = seed;
    s->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (s->fd < 0)
        abort();
    unlink(path);
    weft_mutex_init(&s->mx);
    x->n = 1 + stress_below(&rng, NT);
    for (uint32_t i = 0; i < x->n; i++)
        x->safe[i] = stress_below(&rng, 2);
    x->steps = 1 + stress_below(&rng, 20);
    x->root = chaos_root_of(s->h, s->outs, x->n, stress_rng(&rng));
    return x;
}

static int c1_start(void *st, weft_runtime *rt)
{
    struct c1_inst *x = st;
    struct persister t = { .s = &x->s, .steps = x->steps };
    weft_task_desc d = { .poll = persister_poll, .frame_size = sizeof t, .drop = persister_drop,
                         .name = "persister" };
    return spawn_n(rt, d, &t, offsetof(struct persister, id), x->n, x->safe, x->s.h);
}

static weft_task_desc c1_root(void *st)
{
    return chaos_root_desc(&((struct c1_inst *)st)->root, "c1-root");
}

static void c1_check(void *st, int rc, const weft_outcome *root, unsigned injected)
{
    (void)root;
    (void)injected;
    struct c1_inst *x = st;
    struct persist *s = &x->s;
    if (rc < 0)
        return;
    uint64_t on_disk = 0;
    if (pread(s->fd, &on_disk, sizeof on_disk, 0) < 0 || on_disk != s->counter)
        stress_violation("c1_persist", x->seed, "persisted %llu, counter %llu (C1)",
                         (unsigned long long)on_disk, (unsigned long long)s->counter);
    if (weft_mutex_destroy(&s->mx) != 0)
        stress_violation("c1_persist", x->seed, "mutex left held");
    scen_check_drops("c1_persist", x->seed, s->drops, x->n);
    stress_count(&stress_totals.tasks, x->n + 1);
}

static void c1_destroy(void *st)
{
    struct c1_inst *x = st;
    close(x->s.fd);
    free(x);
}

const stress_parts scen_c1_parts = { c1_make, c1_start, c1_root, c1_check, c1_destroy };

void scen_run_c1_persist(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    scen_run_parts(&scen_c1_parts, "c1_persist", rt, seed, threads);
}

/* ==== c8_futurelock ========================================================= */

struct flock_state {
    weft_mutex mx;
    _Atomic int inside;
    _Atomic uint64_t seed;
    _Atomic uint32_t drops[NT];
    uint8_t safe[NT];
    weft_join h[NT];
    weft_outcome outs[NT];
};

struct flocker {
    weft_frame f;
    uint32_t id;
    struct flock_state *s;
    uint32_t i;
    bool holds;
    weft_mutex_waiter w1, w2;
    weft_selector sel;
    weft_sleep nap, hold;
    weft_poll rc;
};

static void flocker_drop(void *p)
{
    struct flocker *t = p;
    if (t->holds) {
        atomic_fetch_sub(&t->s->inside, 1);
        weft_mutex_unlock(&t->s->mx);
    }
    atomic_fetch_add(&t->s->drops[t->id], 1);
}

static weft_poll lock_or_timer(weft_cx *cx, void *frame, unsigned i)
{
    struct flocker *t = frame;
    if (i == 0)
        return weft_mutex_lock(cx, &t->s->mx, &t->w1);
    return weft_sleep_for(cx, &t->nap, 100000u * (t->i % 3));
}

/* Held for a nap, so the others' selects time out while the lock is taken. */
static weft_poll hold_it(weft_cx *cx, struct flocker *t)
{
    return weft_sleep_for(cx, &t->hold, 150000u * (t->id % 2));
}

static weft_poll flocker_poll(weft_cx *cx, void *p)
{
    struct flocker *t = p;
    WEFT_BEGIN(&t->f);
    for (t->i = 0; t->i < 8; t->i++) {
        /* A cancel-safe task torn down while its select settles a losing
         * timer drops the winner unread (select.h, "Limit"): a won lock would
         * stay locked forever. Such tasks select inside a shield. */
        if (t->s->safe[t->id])
            weft_shield_enter(cx);
        WEFT_SELECT_AWAIT(&t->f, t->rc, &t->sel, 2, lock_or_timer, t);
        if (t->s->safe[t->id])
            weft_shield_exit(cx);
        {
            int64_t got;
            t->holds = weft_select_outcome(&t->sel, 0, &got) && got == 0;
        }
        if (!t->holds && t->rc != -ECANCELED)
            WEFT_AWAIT(&t->f, t->rc, weft_mutex_lock(cx, &t->s->mx, &t->w2));
        t->holds |= t->rc == 0;
        if (t->holds && atomic_fetch_add(&t->s->inside, 1) != 0)
            stress_violation("c8_futurelock", atomic_load(&t->s->seed), "two holders");
        if (t->holds)
            WEFT_AWAIT(&t->f, t->rc, hold_it(cx, t));
        if (t->holds) {
            atomic_fetch_sub(&t->s->inside, 1);
            t->holds = false;
            weft_mutex_unlock(&t->s->mx);
        }
        if (t->rc == -ECANCELED)
            WEFT_RETURN(&t->f, 1);
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

/* After a hang: is the mutex held by nobody (a lost hand-over), or by a task? */
static void report_stuck(struct flock_state *s, uint32_t n)
{
    uint32_t live = 0, dropped = 0;
    for (uint32_t i = 0; i < n; i++) {
        live += s->h[i].weft_task && !weft_join_is_finished(&s->h[i]);
        dropped += atomic_load(&s->drops[i]);
    }
    stress_violation("c8_futurelock", atomic_load(&s->seed),
                     "stuck: mutex %s, %d inside, %u of %u tasks unfinished, %u dropped",
                     weft_mutex_is_locked(&s->mx) ? "locked" : "free", atomic_load(&s->inside),
                     live, n, dropped);
}

struct c8_inst {
    struct flock_state s;
    uint64_t seed;
    uint32_t n;
    struct chaos_root root;
};

static void *c8_make(uint64_t seed, unsigned threads)
{
    (void)threads;
    uint64_t rng = seed;
    struct c8_inst *x = scen_zalloc(sizeof *x);
    struct flock_state *s = &x->s;
    x->seed = seed;
    s->seed = seed;
    weft_mutex_init(&s->mx);
    x->n = 2 + stress_below(&rng, NT - 1);
    for (uint32_t i = 0; i < x->n; i++)
        s->safe[i] = stress_below(&rng, 3) == 0;
    x->root = chaos_root_of(s->h, s->outs, x->n, stress_rng(&rng));
    return x;
}

static int c8_start(void *st, weft_runtime *rt)
{
    struct c8_inst *x = st;
    struct flocker t = { .s = &x->s, .sel = WEFT_SELECTOR_INIT };
    weft_task_desc d = { .poll = flocker_poll, .frame_size = sizeof t, .drop = flocker_drop,
                         .name = "flocker" };
    return spawn_n(rt, d, &t, offsetof(struct flocker, id), x->n, x->s.safe, x->s.h);
}

static weft_task_desc c8_root(void *st)
{
    return chaos_root_desc(&((struct c8_inst *)st)->root, "c8-root");
}

static void c8_check(void *st, int rc, const weft_outcome *root, unsigned injected)
{
    (void)root;
    (void)injected;
    struct c8_inst *x = st;
    struct flock_state *s = &x->s;
    if (rc < 0) {
        report_stuck(s, x->n);
        return;
    }
    for (uint32_t i = 0; i < x->n; i++)
        if (s->outs[i].status != 0 && !(s->safe[i] && s->outs[i].status == -ECANCELED))
            stress_violation("c8_futurelock", x->seed, "task %u: status %d", i,
                             s->outs[i].status);
    if (weft_mutex_destroy(&s->mx) != 0)
        stress_violation("c8_futurelock", x->seed, "mutex left held or waited for (C8)");
    scen_check_drops("c8_futurelock", x->seed, s->drops, x->n);
    stress_count(&stress_totals.tasks, x->n + 1);
}

const stress_parts scen_c8_parts = { c8_make, c8_start, c8_root, c8_check, free };

void scen_run_c8_futurelock(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    scen_run_parts(&scen_c8_parts, "c8_futurelock", rt, seed, threads);
}

/* ==== c9_blocking =========================================================== */

struct bl_state {
    weft_mutex mx;
    _Atomic int inside;         /* holders of mx doing their blocking part */
    _Atomic uint64_t overlaps;
    _Atomic uint32_t drops[NT];
    uint8_t safe[NT];
    weft_join h[NT];
    weft_outcome outs[NT];
};

/* The part that runs on a pool thread while its task holds mx. */
static int critical_fn(void *arg)
{
    struct bl_state *s = arg;
    if (atomic_fetch_add(&s->inside, 1) != 0)
        atomic_fetch_add(&s->overlaps, 1);
    for (int i = 0; i < 50 && !weft_blocking_should_stop(); i++) {
        struct timespec ts = { 0, 2000 };
        nanosleep(&ts, NULL);
    }
    atomic_fetch_sub(&s->inside, 1);
    return 0;
}

struct bl_task {
    weft_frame f;
    uint32_t id, i;
    struct bl_state *s;
    bool holds;
    weft_mutex_waiter w;
    weft_blocking job;
    weft_poll rc;
};

static void bl_drop(void *p)
{
    struct bl_task *t = p;
    if (t->holds)
        weft_mutex_unlock(&t->s->mx);   /* only after fn returned: the runtime waits */
    atomic_fetch_add(&t->s->drops[t->id], 1);
}

static weft_poll bl_poll(weft_cx *cx, void *p)
{
    struct bl_task *t = p;
    WEFT_BEGIN(&t->f);
    for (t->i = 0; t->i < 6; t->i++) {
        WEFT_AWAIT(&t->f, t->rc, weft_mutex_lock(cx, &t->s->mx, &t->w));
        if (t->rc < 0)
            WEFT_RETURN(&t->f, 1);
        t->holds = true;
        t->job = (weft_blocking)WEFT_BLOCKING_INIT;
        WEFT_AWAIT(&t->f, t->rc, weft_blocking_run(cx, &t->job, critical_fn, t->s));
        t->holds = false;
        weft_mutex_unlock(&t->s->mx);
        if (t->rc == -ECANCELED)
            WEFT_RETURN(&t->f, 1);
        if (t->rc < 0)
            WEFT_RETURN(&t->f, -1);
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

struct c9_inst {
    struct bl_state s;
    uint64_t seed;
    uint32_t n;
    struct chaos_root root;
};

static void *c9_make(uint64_t seed, unsigned threads)
{
    (void)threads;
    uint64_t rng = seed;
    struct c9_inst *x = scen_zalloc(sizeof *x);
    struct bl_state *s = &x->s;
    x->seed = seed;
    weft_mutex_init(&s->mx);
    x->n = 2 + stress_below(&rng, NT - 1);
    for (uint32_t i = 0; i < x->n; i++)
        s->safe[i] = stress_below(&rng, 2);
    x->root = chaos_root_of(s->h, s->outs, x->n, stress_rng(&rng));
    return x;
}

static int c9_start(void *st, weft_runtime *rt)
{
    struct c9_inst *x = st;
    struct bl_task t = { .s = &x->s };
    weft_task_desc d = { .poll = bl_poll, .frame_size = sizeof t, .drop = bl_drop,
                         .name = "bl-holder" };
    return spawn_n(rt, d, &t, offsetof(struct bl_task, id), x->n, x->s.safe, x->s.h);
}

static weft_task_desc c9_root(void *st)
{
    return chaos_root_desc(&((struct c9_inst *)st)->root, "c9-root");
}

static void c9_check(void *st, int rc, const weft_outcome *root, unsigned injected)
{
    (void)root;
    (void)injected;
    struct c9_inst *x = st;
    struct bl_state *s = &x->s;
    if (rc < 0)
        return;
    for (uint32_t i = 0; i < x->n; i++)
        if (s->outs[i].status != 0 ? !(s->safe[i] && s->outs[i].status == -ECANCELED)
                                   : s->outs[i].value < 0)
            stress_violation("c9_blocking", x->seed, "task %u: status %d value %lld", i,
                             s->outs[i].status, (long long)s->outs[i].value);
    if (atomic_load(&s->overlaps))
        stress_violation("c9_blocking", x->seed, "%llu overlapping holders: a torn-down task's "
                         "blocking job still ran after its lock passed on (C9)",
                         (unsigned long long)atomic_load(&s->overlaps));
    if (weft_mutex_destroy(&s->mx) != 0)
        stress_violation("c9_blocking", x->seed, "mutex left held");
    scen_check_drops("c9_blocking", x->seed, s->drops, x->n);
    stress_count(&stress_totals.tasks, x->n + 1);
}

/* Threads only under --harness: the simulator does not wait for a job on
 * the blocking pool, and would call the run deadlocked. */
const stress_parts scen_c9_parts = { c9_make, c9_start, c9_root, c9_check, free,
                                     1u << WEFT_HARNESS_THREADS };

void scen_run_c9_blocking(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    scen_run_parts(&scen_c9_parts, "c9_blocking", rt, seed, threads);
}
