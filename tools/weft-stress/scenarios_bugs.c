/*
 * tools/weft-stress/scenarios_bugs.c - one small scenario per pattern of the
 * cancellation bug catalogue (docs/bug-catalogue.md, C1-C17) that the
 * other scenario files do not already cover. Each is written the way weft
 * says the code should be written, and checks the oracle the catalogue gives:
 *
 *  c1_persist        persist-then-count inside a shield under a mutex: the
 *                    file and the counter always agree (C1).
 *  c8_futurelock     lock waits that lose selects, then lock again: a loser
 *                    is withdrawn, so nobody waits on a lock parked in an
 *                    unpolled future; every task ends, the mutex ends idle (C8).
 *  c11_level         after a delivered cancel every await yields -ECANCELED
 *                    (sleep, recv, lock, yield) so cleanup cannot hang (C11),
 *                    awaits inside a shield still work, and a task that
 *                    swallows the error is still reported cancelled (C12).
 *  c13_abort_race    abort from a plain thread racing completion: abort's
 *                    answer (0 recorded, 1 finished) agrees with the outcome.
 *  c14_select_timer  select of two timers and a channel receive: a timer that
 *                    won or completed was due; a receive that lost took
 *                    nothing (C14).
 *  c16_relay         relays that recv from one channel and send to another
 *                    (the second step in a shield), a relay cancelling the
 *                    token of the others while holding their mutex (C15):
 *                    every value ends in exactly one channel (C16).
 *  c9_blocking       lock holders whose critical part runs on the blocking
 *                    pool, aborted and torn down mid-job: the lock passes on
 *                    only after the job returned, so holders never overlap (C9).
 *  c17_detached      join timeouts: a cancel-safe task stops at once (at most
 *                    the poll in progress finishes), a cooperative one runs to
 *                    completion detached (C17).
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scen_util.h"

#define NT 8

static void *zalloc(size_t n)
{
    void *p = calloc(1, n);
    if (!p)
        abort();
    return p;
}

static void check_drops(const char *sc, uint64_t seed, _Atomic uint32_t *drops, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (atomic_load(&drops[i]) != 1)
            stress_violation(sc, seed, "task %u: drop hook ran %u times", i,
                             atomic_load(&drops[i]));
}

/* Spawn n copies of a frame, frame->id set to i; id is a uint32_t at id_off. */
static void spawn_n(weft_runtime *rt, weft_task_desc d, void *frame, size_t id_off, uint32_t n,
                    const uint8_t *safe, weft_join *h)
{
    for (uint32_t i = 0; i < n; i++) {
        memcpy((char *)frame + id_off, &i, sizeof i);
        d.frame = frame;
        d.flags = safe && safe[i] ? WEFT_TASK_CANCEL_SAFE : 0;
        if (weft_spawn(rt, &d, &h[i]) < 0)
            abort();
    }
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

static int run_chaos_root(weft_runtime *rt, weft_join *h, weft_outcome *outs, uint32_t n,
                          uint64_t rng, const char *sc, uint64_t seed)
{
    struct chaos_root r = { .h = h, .outs = outs, .n = n,
                            .chaos = { .h = h, .n = n, .rounds = 30, .odds = 3, .rng = rng } };
    weft_outcome out;
    return scen_block_on(rt, &WEFT_TASK(chaos_root_poll, &r), &out, sc, seed);
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

void scen_run_c1_persist(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    uint64_t rng = seed;
    char path[64];
    snprintf(path, sizeof path, "/tmp/weft-stress-c1-%d", (int)getpid());
    struct persist *s = zalloc(sizeof *s);
    s->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (s->fd < 0)
        abort();
    unlink(path);
    weft_mutex_init(&s->mx);
    uint32_t n = 1 + stress_below(&rng, NT);
    uint8_t safe[NT];
    for (uint32_t i = 0; i < n; i++)
        safe[i] = stress_below(&rng, 2);
    struct persister t = { .s = s, .steps = 1 + stress_below(&rng, 20) };
    weft_task_desc d = { .poll = persister_poll, .frame_size = sizeof t, .drop = persister_drop };
    spawn_n(rt, d, &t, offsetof(struct persister, id), n, safe, s->h);
    if (run_chaos_root(rt, s->h, s->outs, n, stress_rng(&rng), "c1_persist", seed) < 0)
        return;     /* hung: s is left to the tasks still using it */
    uint64_t on_disk = 0;
    if (pread(s->fd, &on_disk, sizeof on_disk, 0) < 0 || on_disk != s->counter)
        stress_violation("c1_persist", seed, "persisted %llu, counter %llu (C1)",
                         (unsigned long long)on_disk, (unsigned long long)s->counter);
    if (weft_mutex_destroy(&s->mx) != 0)
        stress_violation("c1_persist", seed, "mutex left held");
    check_drops("c1_persist", seed, s->drops, n);
    close(s->fd);
    free(s);
    stress_count(&stress_totals.tasks, n + 1);
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

void scen_run_c8_futurelock(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    uint64_t rng = seed;
    struct flock_state *s = zalloc(sizeof *s);
    s->seed = seed;
    weft_mutex_init(&s->mx);
    uint32_t n = 2 + stress_below(&rng, NT - 1);
    uint8_t *safe = s->safe;
    for (uint32_t i = 0; i < n; i++)
        safe[i] = stress_below(&rng, 3) == 0;
    struct flocker t = { .s = s, .sel = WEFT_SELECTOR_INIT };
    weft_task_desc d = { .poll = flocker_poll, .frame_size = sizeof t, .drop = flocker_drop };
    spawn_n(rt, d, &t, offsetof(struct flocker, id), n, safe, s->h);
    if (run_chaos_root(rt, s->h, s->outs, n, stress_rng(&rng), "c8_futurelock", seed) < 0) {
        report_stuck(s, n);
        return;     /* hung: s is left to the tasks still using it */
    }
    for (uint32_t i = 0; i < n; i++)
        if (s->outs[i].status != 0 && !(safe[i] && s->outs[i].status == -ECANCELED))
            stress_violation("c8_futurelock", seed, "task %u: status %d", i, s->outs[i].status);
    if (weft_mutex_destroy(&s->mx) != 0)
        stress_violation("c8_futurelock", seed, "mutex left held or waited for (C8)");
    check_drops("c8_futurelock", seed, s->drops, n);
    free(s);
    stress_count(&stress_totals.tasks, n + 1);
}

/* ==== c11_level (and C12) =================================================== */

struct level {
    weft_mutex held;            /* locked by the run for the whole instance */
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;            /* always empty */
    _Atomic uint32_t drops[NT];
    uint32_t bad[NT];           /* bit k: check k failed */
};

struct leveller {
    weft_frame f;
    uint32_t id;
    struct level *s;
    weft_sleep nap;
    weft_mutex_waiter w;
    uint64_t v;
    weft_poll rc;
};

static void leveller_drop(void *p)
{
    struct leveller *t = p;
    atomic_fetch_add(&t->s->drops[t->id], 1);
}

/* Wait to be cancelled, then try every kind of await; returns 5 regardless
 * (swallowing the cancel, C12), with the checks that failed in s->bad. */
static weft_poll leveller_poll(weft_cx *cx, void *p)
{
    struct leveller *t = p;
    uint32_t *bad = &t->s->bad[t->id];
    WEFT_BEGIN(&t->f);
    do
        WEFT_YIELD(&t->f, t->rc);
    while (t->rc == 0);
    WEFT_AWAIT(&t->f, t->rc, weft_sleep_for(cx, &t->nap, 10000000000ull));
    *bad |= (t->rc != -ECANCELED) << 0;
    WEFT_AWAIT(&t->f, t->rc, weft_mpsc_recv(cx, &t->s->rx, &t->v));
    *bad |= (t->rc != -ECANCELED) << 1;
    WEFT_AWAIT(&t->f, t->rc, weft_mutex_lock(cx, &t->s->held, &t->w));
    *bad |= (t->rc != -ECANCELED) << 2;
    weft_shield_enter(cx);
    WEFT_YIELD(&t->f, t->rc);
    *bad |= (t->rc != 0) << 3;
    WEFT_AWAIT(&t->f, t->rc, weft_sleep_for(cx, &t->nap, 50000));
    *bad |= (t->rc != 0) << 4;
    weft_shield_exit(cx);
    WEFT_YIELD(&t->f, t->rc);
    *bad |= (t->rc != -ECANCELED) << 5;
    WEFT_RETURN(&t->f, 5);
    WEFT_END(&t->f);
}

static void check_level(uint64_t seed, struct level *s, const weft_outcome *outs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        const weft_outcome *o = &outs[i];
        if (s->bad[i])
            stress_violation("c11_level", seed, "task %u: awaits after a delivered cancel "
                             "misbehaved (mask 0x%x: bits 0-2 not level-triggered, 3-4 shield "
                             "did not hold, 5 not re-delivered) (C11)", i, s->bad[i]);
        if (o->status != 0 || o->value != 5 || o->cancel.source == WEFT_CANCEL_NONE
            || !o->cancel.delivered_at)
            stress_violation("c11_level", seed, "task %u: status %d value %lld source %s site %p: "
                             "a swallowed cancel must still be reported (C12)", i, o->status,
                             (long long)o->value, weft_cancel_source_name(o->cancel.source),
                             (const void *)o->cancel.delivered_at);
    }
}

void scen_run_c11_c12_level(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    uint64_t rng = seed;
    struct level *s = zalloc(sizeof *s);
    weft_mutex_init(&s->held);
    if (weft_mutex_try_lock(&s->held) != 0 || weft_mpsc_new(&s->tx, &s->rx, 1) < 0)
        abort();
    weft_token *tok;
    if (weft_token_new(&tok) < 0)
        abort();
    uint32_t n = 1 + stress_below(&rng, NT);
    weft_join h[NT];
    weft_outcome outs[NT];
    for (uint32_t i = 0; i < n; i++) {
        struct leveller t = { .id = i, .s = s };
        weft_task_desc d = { .poll = leveller_poll, .frame = &t, .frame_size = sizeof t,
                             .drop = leveller_drop, .tokens = &tok, .ntokens = 1 };
        if (weft_spawn(rt, &d, &h[i]) < 0)
            abort();
        if (stress_below(&rng, 2))
            weft_abort(&h[i]);
    }
    struct timespec pause = { 0, (long)stress_below(&rng, 500000) };
    nanosleep(&pause, NULL);
    weft_token_cancel(tok);     /* every task is cancelled one way or the other */
    for (uint32_t i = 0; i < n; i++)
        if (weft_join_wait_timeout(&h[i], &outs[i], SCEN_HANG_NS) < 0) {
            stress_violation("c11_level", seed, "task %u hangs after cancel (C11)", i);
            return;
        }
    for (uint32_t i = 0; i < n; i++)
        scen_count_outcome(&outs[i]);
    check_level(seed, s, outs, n);
    check_drops("c11_level", seed, s->drops, n);
    weft_mutex_unlock(&s->held);
    weft_mpsc_tx_drop(&s->tx);
    weft_mpsc_rx_drop(&s->rx);
    weft_token_release(tok);
    free(s);
    stress_count(&stress_totals.tasks, n);
}

/* ==== c13_abort_race ======================================================== */

#define NRACE 32

struct racer {
    weft_frame f;
    uint32_t id, yields;
    _Atomic uint32_t *drops;
    weft_poll rc;
};

static void racer_drop(void *p)
{
    struct racer *t = p;
    atomic_fetch_add(&t->drops[t->id], 1);
}

static weft_poll racer_poll(weft_cx *cx, void *p)
{
    struct racer *t = p;
    WEFT_BEGIN(&t->f);
    while (t->yields-- > 0) {
        WEFT_YIELD(&t->f, t->rc);
        if (t->rc == -ECANCELED)
            WEFT_RETURN(&t->f, 1);
    }
    WEFT_RETURN(&t->f, 9);
    WEFT_END(&t->f);
}

/* The outcome must agree with what abort answered (C13). */
static void check_race(uint64_t seed, uint32_t i, bool safe, int answer, bool finished_then,
                       const weft_outcome *o)
{
    const char *why = NULL;
    if (answer == 1 && !finished_then)
        why = "abort said finished, is_finished said no";
    else if (answer == 1 && (o->status != 0 || o->value != 9 || o->cancel.source != 0))
        why = "abort said finished, yet the task was cancelled";
    else if (o->status == -ECANCELED && (!safe || o->cancel.source != WEFT_CANCEL_ABORT))
        why = "torn down without being cancel-safe or without a request";
    else if (o->status == 0 && o->value == 1 && (!o->cancel.delivered_at || safe))
        why = "saw -ECANCELED but no delivery recorded";
    else if (o->status == 0 && o->value != 1 && o->value != 9)
        why = "unexpected value";
    if (why)
        stress_violation("c13_abort_race", seed, "task %u (%s, abort %d): %s; status %d value "
                         "%lld source %s", i, safe ? "safe" : "coop", answer, why, o->status,
                         (long long)o->value, weft_cancel_source_name(o->cancel.source));
}

void scen_run_c13_abort_race(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    uint64_t rng = seed;
    _Atomic uint32_t *drops = calloc(NRACE, sizeof *drops);    /* leaked on a hang */
    weft_join h[NRACE];
    bool safe[NRACE];
    if (!drops)
        abort();
    for (uint32_t i = 0; i < NRACE; i++) {
        struct racer t = { .id = i, .yields = stress_below(&rng, 3), .drops = drops };
        safe[i] = stress_below(&rng, 2);
        weft_task_desc d = { .poll = racer_poll, .frame = &t, .frame_size = sizeof t,
                             .drop = racer_drop, .flags = safe[i] ? WEFT_TASK_CANCEL_SAFE : 0 };
        if (weft_spawn(rt, &d, &h[i]) < 0)
            abort();
    }
    for (uint32_t i = 0; i < NRACE; i++) {
        for (uint32_t spin = stress_below(&rng, 2000); spin > 0; spin--)
            atomic_signal_fence(memory_order_seq_cst);
        int answer = weft_abort(&h[i]);
        bool finished = weft_join_is_finished(&h[i]);
        weft_outcome o;
        if (weft_join_wait_timeout(&h[i], &o, SCEN_HANG_NS) < 0) {
            stress_violation("c13_abort_race", seed, "task %u hangs", i);
            return;
        }
        scen_count_outcome(&o);
        check_race(seed, i, safe[i], answer, finished, &o);
    }
    check_drops("c13_abort_race", seed, drops, NRACE);
    free(drops);
    stress_count(&stress_totals.tasks, NRACE);
}

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
    struct sel_state *s = zalloc(sizeof *s);
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
    struct relay_state *s = zalloc(sizeof *s);
    s->seed = seed;
    relay_setup(s, &rng);
    struct relay_root *r = zalloc(sizeof *r);
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
    check_drops("c16_relay", seed, s->drops, r->n);
    stress_count(&stress_totals.tasks, r->n + 1);
    weft_mpsc_rx_drop(&s->in_rx);
    weft_mpsc_rx_drop(&s->out_rx);
    weft_token_release(s->tok);
    free(r);
    free(s);
}

/* ==== c17_detached ========================================================== */

struct det_state {
    _Atomic uint32_t writes[NT];
    _Atomic uint32_t drops[NT];
    weft_waitgroup wg;
};

struct det_task {
    weft_frame f;
    uint32_t id, steps, i;
    struct det_state *s;
    weft_sleep nap;
    weft_poll rc;
};

static void det_drop(void *p)
{
    struct det_task *t = p;
    atomic_fetch_add(&t->s->drops[t->id], 1);
    weft_waitgroup_done(&t->s->wg);
}

static weft_poll det_poll(weft_cx *cx, void *p)
{
    struct det_task *t = p;
    WEFT_BEGIN(&t->f);
    for (t->i = 0; t->i < t->steps; t->i++) {
        WEFT_AWAIT(&t->f, t->rc, weft_sleep_for(cx, &t->nap, 100000u * (t->i % 3)));
        if (t->rc < 0)
            WEFT_RETURN(&t->f, -1);     /* nobody cancels these but the timeout rule */
        atomic_fetch_add(&t->s->writes[t->id], 1);
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

struct det_root {
    weft_frame f;
    struct det_state *s;
    weft_join h[NT];
    uint8_t safe[NT];
    uint32_t steps[NT], snap[NT];
    bool timed_out[NT];
    uint64_t limit[NT], ns;
    uint32_t n, i;
    weft_join_timeout jt;
    weft_waitgroup_waiter ww;
    weft_outcome out;
    weft_poll rc;
};

static weft_poll det_root_poll(weft_cx *cx, void *p)
{
    struct det_root *r = p;
    WEFT_BEGIN(&r->f);
    for (r->i = 0; r->i < r->n; r->i++) {
        r->jt = (weft_join_timeout)WEFT_JOIN_TIMEOUT_INIT;
        r->ns = r->limit[r->i];
        /* On one line: a multi-line await's resume point (__LINE__) differs
         * between gcc and clang, and the schedule hash with it. */
        WEFT_AWAIT(&r->f, r->rc, weft_join_await_timeout(cx, &r->jt, &r->h[r->i], &r->out, r->ns));
        r->timed_out[r->i] = r->rc == -ETIMEDOUT;
        r->snap[r->i] = atomic_load(&r->s->writes[r->i]);
        if (r->rc == 0 && (r->out.status != 0 || r->snap[r->i] != r->steps[r->i]))
            WEFT_RETURN(&r->f, -(int64_t)r->i - 1);
    }
    WEFT_AWAIT(&r->f, r->rc, weft_waitgroup_wait(cx, &r->s->wg, &r->ww));
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

static void check_detached(uint64_t seed, struct det_root *r)
{
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t w = atomic_load(&r->s->writes[i]);
        if (!r->timed_out[i])
            continue;
        if (r->safe[i] && w > r->snap[i] + 1)
            stress_violation("c17_detached", seed, "cancel-safe task %u wrote %u times after "
                             "its join timed out (C17)", i, w - r->snap[i]);
        if (!r->safe[i] && w != r->steps[i])
            stress_violation("c17_detached", seed, "cooperative task %u stopped at %u of %u "
                             "steps after a join timeout: timeouts must not stop the work", i, w,
                             r->steps[i]);
    }
}

void scen_run_c17_detached(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    uint64_t rng = seed;
    struct det_state *s = zalloc(sizeof *s);
    struct det_root *r = zalloc(sizeof *r);
    r->s = s;
    r->n = 1 + stress_below(&rng, NT);
    weft_waitgroup_init(&s->wg);
    weft_waitgroup_add(&s->wg, r->n);
    for (uint32_t i = 0; i < r->n; i++) {
        r->safe[i] = stress_below(&rng, 2);
        r->steps[i] = stress_below(&rng, 10);
        r->limit[i] = stress_below(&rng, 4) * 300000u + 1;
        struct det_task t = { .id = i, .steps = r->steps[i], .s = s };
        weft_task_desc d = { .poll = det_poll, .frame = &t, .frame_size = sizeof t,
                             .drop = det_drop, .flags = r->safe[i] ? WEFT_TASK_CANCEL_SAFE : 0 };
        if (weft_spawn(rt, &d, &r->h[i]) < 0)
            abort();
    }
    weft_outcome out;
    if (scen_block_on(rt, &WEFT_TASK(det_root_poll, r), &out, "c17_detached", seed) < 0)
        return;
    if (out.value != 0)
        stress_violation("c17_detached", seed, "join %lld within the limit reported a wrong "
                         "outcome", (long long)-out.value - 1);
    check_detached(seed, r);
    check_drops("c17_detached", seed, s->drops, r->n);
    stress_count(&stress_totals.tasks, r->n + 1);
    free(r);
    free(s);
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

void scen_run_c9_blocking(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    uint64_t rng = seed;
    struct bl_state *s = zalloc(sizeof *s);
    weft_mutex_init(&s->mx);
    uint32_t n = 2 + stress_below(&rng, NT - 1);
    for (uint32_t i = 0; i < n; i++)
        s->safe[i] = stress_below(&rng, 2);
    struct bl_task t = { .s = s };
    weft_task_desc d = { .poll = bl_poll, .frame_size = sizeof t, .drop = bl_drop };
    spawn_n(rt, d, &t, offsetof(struct bl_task, id), n, s->safe, s->h);
    if (run_chaos_root(rt, s->h, s->outs, n, stress_rng(&rng), "c9_blocking", seed) < 0)
        return;     /* hung: s is left to the tasks still using it */
    for (uint32_t i = 0; i < n; i++)
        if (s->outs[i].status != 0 ? !(s->safe[i] && s->outs[i].status == -ECANCELED)
                                   : s->outs[i].value < 0)
            stress_violation("c9_blocking", seed, "task %u: status %d value %lld", i,
                             s->outs[i].status, (long long)s->outs[i].value);
    if (atomic_load(&s->overlaps))
        stress_violation("c9_blocking", seed, "%llu overlapping holders: a torn-down task's "
                         "blocking job still ran after its lock passed on (C9)",
                         (unsigned long long)atomic_load(&s->overlaps));
    if (weft_mutex_destroy(&s->mx) != 0)
        stress_violation("c9_blocking", seed, "mutex left held");
    check_drops("c9_blocking", seed, s->drops, n);
    free(s);
    stress_count(&stress_totals.tasks, n + 1);
}
