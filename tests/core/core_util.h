/*
 * tests/core/core_util.h - helpers shared by the core runtime tests.
 *
 *   rt_make(threads, grace_ms)   start a runtime or fail the test.
 *   live_settled(rt, n)          the live-task count once it is down to n
 *                                (a polled wait: the count lags COMPLETE).
 *   flag_*                       the futex counter of tests/test_util.h:
 *                                tests synchronise on these, never on sleeps.
 *   forever_leaf                 a leaf future that never completes; its
 *                                cancel hook drops the waker (WITHDRAWN).
 *   gate_leaf                    a leaf opened from another thread; its hook
 *                                reports RACED once the gate was opened.
 *   pp_player                    one of a ping-pong pair: tasks that keep a
 *                                worker busy by waking each other.
 */
#ifndef WEFT_TESTS_CORE_UTIL_H
#define WEFT_TESTS_CORE_UTIL_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"
#include "weft/weft.h"

/* ---- runtime ------------------------------------------------------------- */

static inline weft_runtime *rt_make(unsigned threads, unsigned grace_ms)
{
    weft_runtime *rt = NULL;
    weft_runtime_opts o = { .threads = threads, .shutdown_grace_ms = grace_ms };
    int rc = weft_runtime_new(&rt, &o);
    cr_assert_eq(rc, 0, "weft_runtime_new: %d (%s)", rc, weft_strerror(rc));
    cr_assert_not_null(rt);
    return rt;
}

static inline void rt_done(weft_runtime *rt)
{
    cr_assert_eq(weft_runtime_free(rt), 0);
}

/*
 * A completing worker takes its task out of weft_runtime_live_tasks just
 * after COMPLETE and after waking the joiner, so right after a join the count
 * may still include the joined task. Nothing signals that last step, so this
 * polls the count itself (paced by 1 ms naps) until it is down to n, for at
 * most 10 s: a hang guard, far more than the step takes even on a loaded
 * machine. Returns the count either way, for the caller to assert on.
 */
static inline size_t live_settled(weft_runtime *rt, size_t n)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t live = weft_runtime_live_tasks(rt);
    while (live > n) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= 10)
            break;
        const struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
        live = weft_runtime_live_tasks(rt);
    }
    return live;
}

/* ---- a leaf that never completes ---------------------------------------- */

typedef struct forever_leaf {
    weft_waker w;
    bool armed;
    int withdrawn;          /* times the cancel hook ran */
    struct flag *on_arm;    /* optional: bumped when the leaf takes a waker */
} forever_leaf;

static inline weft_withdraw forever_withdraw(weft_cx *cx, void *leaf)
{
    (void)cx;
    forever_leaf *l = leaf;
    if (l->armed)
        weft_waker_drop(&l->w);
    l->armed = false;
    l->withdrawn++;
    return WEFT_WITHDRAWN;
}

static inline weft_poll forever_poll(weft_cx *cx, forever_leaf *l)
{
    if (!l->armed) {
        l->w = weft_cx_waker(cx);
        l->armed = true;
        weft_cx_suspend(cx, l, forever_withdraw);
        if (l->on_arm)
            flag_add(l->on_arm, 1);
        return WEFT_PENDING;
    }
    weft_cx_suspend(cx, l, forever_withdraw);
    return WEFT_PENDING;
}

/* ---- a leaf opened by another thread ------------------------------------ */

/*
 * The waker lives under a mutex because the opener and the polling worker
 * both touch it. gate_open() stores the result and wakes the task; the hook
 * reports RACED when the gate was opened before the withdrawal.
 */
typedef struct gate_leaf {
    pthread_mutex_t lock;
    weft_waker w;
    bool has_waker;
    bool open;
    bool wake_on_open;      /* false: open without waking (the task is woken
                               some other way, e.g. by an abort) */
    int64_t result;
    int hook_calls;
} gate_leaf;

static inline void gate_init(gate_leaf *g)
{
    memset(g, 0, sizeof *g);
    pthread_mutex_init(&g->lock, NULL);
    g->wake_on_open = true;
}

static inline void gate_open(gate_leaf *g, int64_t result)
{
    weft_waker w = { 0 };
    pthread_mutex_lock(&g->lock);
    g->open = true;
    g->result = result;
    if (g->has_waker && g->wake_on_open) {
        w = g->w;
        g->w.weft_bits = 0;
        g->has_waker = false;
    }
    pthread_mutex_unlock(&g->lock);
    weft_waker_wake(&w);
}

static inline void gate_release(gate_leaf *g)
{
    pthread_mutex_lock(&g->lock);
    if (g->has_waker)
        weft_waker_drop(&g->w);
    g->has_waker = false;
    pthread_mutex_unlock(&g->lock);
}

/* Block until a task has polled the gate and left a waker in it. */
static inline void gate_wait_armed(gate_leaf *g)
{
    for (;;) {
        pthread_mutex_lock(&g->lock);
        bool armed = g->has_waker;
        pthread_mutex_unlock(&g->lock);
        if (armed)
            return;
        sched_yield();
    }
}

static inline weft_withdraw gate_withdraw(weft_cx *cx, void *leaf)
{
    (void)cx;
    gate_leaf *g = leaf;
    pthread_mutex_lock(&g->lock);
    g->hook_calls++;
    bool raced = g->open;
    if (g->has_waker)
        weft_waker_drop(&g->w);
    g->has_waker = false;
    pthread_mutex_unlock(&g->lock);
    return raced ? WEFT_WITHDRAW_RACED : WEFT_WITHDRAWN;
}

static inline weft_poll gate_poll(weft_cx *cx, gate_leaf *g)
{
    pthread_mutex_lock(&g->lock);
    if (g->open) {
        if (g->has_waker)
            weft_waker_drop(&g->w);
        g->has_waker = false;
        int64_t r = g->result;
        pthread_mutex_unlock(&g->lock);
        return r;
    }
    if (!g->has_waker) {
        g->w = weft_cx_waker(cx);
        g->has_waker = true;
    }
    pthread_mutex_unlock(&g->lock);
    weft_cx_suspend(cx, g, gate_withdraw);
    return WEFT_PENDING;
}

/* ---- ping-pong pairs ----------------------------------------------------- */

/* Two tasks that wake each other through a pair of weft_notify, for tests
 * that need a worker kept busy without ever running dry. After each wake a
 * player calls `turn` (the test counts there) and leaves once `done` says
 * so: A right after a pass, B right after its reply, so its partner is never
 * left waiting, even one that never had a turn. pp_spawn starts player i of
 * pairs[i / 2] (even i: A, which sets the pair up). */
struct pp_pair {
    weft_notify to_a, to_b;
};

struct pp_player {
    weft_frame f;
    struct pp_pair *pair;
    bool is_a;
    void (*turn)(struct pp_player *pl);
    bool (*done)(void);
    long turns;                 /* for `turn`'s use */
    weft_notify_waiter waiter;
    weft_poll rc;
};

static inline weft_poll pp_player_poll(weft_cx *cx, void *p)
{
    struct pp_player *pl = p;
    weft_notify *mine = pl->is_a ? &pl->pair->to_a : &pl->pair->to_b;
    weft_notify *theirs = pl->is_a ? &pl->pair->to_b : &pl->pair->to_a;
    WEFT_BEGIN(&pl->f);
    for (;;) {
        if (pl->is_a) {
            weft_notify_one(theirs);
            if (pl->done())
                break;
        }
        pl->waiter = (weft_notify_waiter)WEFT_NOTIFY_WAITER_INIT;
        WEFT_AWAIT(&pl->f, pl->rc, weft_notify_wait(cx, mine, &pl->waiter));
        if (pl->rc < 0)
            WEFT_RETURN(&pl->f, pl->rc);
        if (!pl->is_a)
            weft_notify_one(theirs);
        pl->turn(pl);
        if (!pl->is_a && pl->done())
            break;
    }
    WEFT_RETURN(&pl->f, 0);
    WEFT_END(&pl->f);
}

static inline int pp_spawn(weft_runtime *rt, struct pp_pair *pairs, int i,
                           void (*turn)(struct pp_player *), bool (*done)(void), weft_join *join)
{
    struct pp_pair *pair = &pairs[i / 2];
    if (i % 2 == 0)
        *pair = (struct pp_pair){ WEFT_NOTIFY_INIT, WEFT_NOTIFY_INIT };
    struct pp_player pl = { .pair = pair, .is_a = i % 2 == 0, .turn = turn, .done = done };
    return weft_spawn(rt, &WEFT_TASK(pp_player_poll, &pl), join);
}

/* ---- misc ----------------------------------------------------------------- */

static inline weft_poll ready_now(int64_t v) { return v; }

/* Every field named, so that no compiler asks for braces or initializers. */
#define DESC(poll_fn, frame_ptr, drop_fn, fl)                                 \
    ((weft_task_desc){ .poll = (poll_fn), .frame = (frame_ptr),               \
                       .frame_size = sizeof *(frame_ptr), .drop = (drop_fn),  \
                       .name = NULL, .flags = (fl), .tokens = NULL,           \
                       .ntokens = 0 })

#endif /* WEFT_TESTS_CORE_UTIL_H */
