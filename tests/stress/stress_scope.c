/*
 * tests/stress/stress_scope.c - deadline scopes across workers: scope timers
 * fire on the worker that armed them (or on any worker that finds it stuck)
 * while their task runs, yields or migrates elsewhere; scopes exit while the
 * firing is under way; aborts race expiries. A plain executable (no
 * Criterion), so it also runs under TSan, which is its main point.
 *
 * Each task runs rounds of: open a scope of 0-2 ms (sometimes an inner one
 * too), wait on one of a sleep of 0-3 ms, a burst of yields with some
 * spinning between them (so the task moves, and its worker is busy when a
 * timer is due), or a shared mutex that other tasks hold briefly; then exit
 * the scopes. Some tasks are aborted part-way.
 *
 * Invariants checked (exit 1 on any violation, 0 when all hold):
 *   - exits never fail (-EINVAL) and come in the order the scopes opened;
 *   - an await yields -ETIMEDOUT only if a scope enclosing it expired, and
 *     a scope's exit says "expired" only if its own deadline had passed;
 *   - after every scope is closed, an await yields 0 again (no expiry left
 *     behind), unless the task was aborted (then -ECANCELED);
 *   - a mutex wait that timed out holds nothing; every drop hook runs once;
 *   - both outcomes happen: some waits time out and some complete.
 *
 * Usage: stress-scope [--tasks N] [--rounds R] [--workers W] [--seed S] [--timeout S]
 */
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "stress_util.h"
#include "weft/scope.h"

#define MS 1000000ull

static weft_runtime *rt;
static weft_mutex shared_lock = WEFT_MUTEX_INIT;
static _Atomic long timeouts, completions, drops, cancels;
static long rounds;

struct scoped {
    weft_frame f;
    weft_scope outer, inner;
    weft_sleep s;
    weft_mutex_waiter w;
    weft_poll r;
    uint32_t seed;
    volatile uint32_t sink;     /* the spin loop's, so it stays */
    long round;
    int kind, i, nested, out_rc, in_rc;
    uint64_t dur, outer_deadline, inner_deadline;
};

/* Mostly short; one in sixteen long enough (about a millisecond) that the
 * worker misses its own timers and the others fire them. */
static void spin(struct scoped *t)
{
    uint32_t n = rnd(&t->seed) % 16 == 0 ? 400000 : rnd(&t->seed) % 20000;
    for (; n; n--)
        t->sink = t->sink + 1;
}

static void count_drop(void *p)
{
    (void)p;
    atomic_fetch_add(&drops, 1);
}

/* One round's checks, once its scopes are closed. */
static void check_round(struct scoped *t)
{
    CHECK(t->in_rc >= 0 && t->out_rc >= 0, "exit: %d %d", t->in_rc, t->out_rc);
    CHECK(t->out_rc == 0 || weft_now_ns() >= t->outer_deadline, "outer expired early");
    CHECK(t->in_rc == 0 || weft_now_ns() >= t->inner_deadline, "inner expired early");
    if (t->r == -ETIMEDOUT) {
        atomic_fetch_add(&timeouts, 1);
        CHECK(t->in_rc == 1 || t->out_rc == 1, "-ETIMEDOUT with no scope expired");
    } else if (t->r != -ECANCELED) {
        CHECK(t->r == 0, "wait yielded %lld", (long long)t->r);
        atomic_fetch_add(&completions, 1);
    }
}

static void open_scopes(weft_cx *cx, struct scoped *t)
{
    t->outer_deadline = weft_now_ns() + rnd(&t->seed) % (2 * MS);
    CHECK(weft_scope_enter(cx, &t->outer, t->outer_deadline) == 0, "enter outer");
    t->nested = rnd(&t->seed) % 2;
    if (t->nested) {
        t->inner_deadline = weft_now_ns() + rnd(&t->seed) % (2 * MS);
        CHECK(weft_scope_enter(cx, &t->inner, t->inner_deadline) == 0, "enter inner");
    }
    t->kind = (int)(rnd(&t->seed) % 3);
    t->dur = rnd(&t->seed) % (3 * MS);
}

static weft_poll scoped_poll(weft_cx *cx, void *p)
{
    struct scoped *t = p;
    WEFT_BEGIN(&t->f);
    for (t->round = 0; t->round < rounds; t->round++) {
        open_scopes(cx, t);
        if (t->kind == 0) {
            WEFT_AWAIT(&t->f, t->r, weft_sleep_for(cx, &t->s, t->dur));
        } else if (t->kind == 1) {
            /* Busy between yields: the task moves, its worker is late. */
            for (t->i = 0; t->i < 8; t->i++) {
                spin(t);
                WEFT_YIELD(&t->f, t->r);
                if (t->r != 0)
                    break;
            }
        } else {
            WEFT_AWAIT(&t->f, t->r, weft_mutex_lock(cx, &shared_lock, &t->w));
            if (t->r == 0) {
                spin(t);
                weft_mutex_unlock(&shared_lock);
            }
        }
        t->in_rc = t->nested ? weft_scope_exit(cx, &t->inner) : 0;
        t->out_rc = weft_scope_exit(cx, &t->outer);
        check_round(t);
        if (t->r == -ECANCELED)
            break;
        WEFT_YIELD(&t->f, t->r);
        if (t->r == -ECANCELED)
            break;
        CHECK(t->r == 0, "an await after the scopes yielded %lld", (long long)t->r);
    }
    if (t->r == -ECANCELED)
        atomic_fetch_add(&cancels, 1);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

int main(int argc, char **argv)
{
    long ntasks = arg_long(argc, argv, "--tasks", 64);
    rounds = arg_long(argc, argv, "--rounds", 200);
    unsigned workers = (unsigned)arg_long(argc, argv, "--workers", 4);
    uint32_t seed = (uint32_t)arg_long(argc, argv, "--seed", (long)time(NULL));
    watchdog((unsigned)arg_long(argc, argv, "--timeout", 300));
    if (ntasks < 1 || ntasks > 4096 || rounds < 1)
        return 1;
    fprintf(stderr, "stress-scope: seed %u\n", seed);
    int rc = weft_runtime_new(&rt, &(weft_runtime_opts){ .threads = workers });
    if (rc == -ENOSYS || rc == -EPERM) {
        fprintf(stderr, "stress-scope: no io_uring here (%d): skip\n", rc);
        return 77;
    }
    CHECK(rc == 0, "runtime_new: %d", rc);
    if (rc)
        return 1;
    weft_join *h = calloc((size_t)ntasks, sizeof *h);
    if (!h)
        return 77;
    for (long i = 0; i < ntasks; i++) {
        struct scoped t = { .outer = WEFT_SCOPE_INIT, .inner = WEFT_SCOPE_INIT,
                            .s = WEFT_SLEEP_INIT, .w = WEFT_MUTEX_WAITER_INIT,
                            .seed = seed + (uint32_t)i * 7919u };
        weft_task_desc d = WEFT_TASK(scoped_poll, &t);
        d.drop = count_drop;
        CHECK(weft_spawn(rt, &d, &h[i]) == 0, "spawn %ld", i);
    }
    /* Aborts at random moments: every fourth task, after some of the others ran. */
    for (long i = 0; i < ntasks; i += 4) {
        for (uint32_t n = rnd(&seed) % 64; n; n--)
            sched_yield();
        CHECK(weft_abort(&h[i]) >= 0, "abort %ld", i);
    }
    for (long i = 0; i < ntasks; i++) {
        weft_outcome out;
        CHECK(weft_join_wait(&h[i], &out) == 0 && out.status == 0, "join %ld", i);
    }
    CHECK(atomic_load(&drops) == ntasks, "drops %ld of %ld", atomic_load(&drops), ntasks);
    CHECK(atomic_load(&timeouts) > 0 && atomic_load(&completions) > 0,
          "both outcomes: %ld timeouts, %ld completions", atomic_load(&timeouts),
          atomic_load(&completions));
    CHECK(weft_mutex_destroy(&shared_lock) == 0, "the shared lock is left held or waited for");
    fprintf(stderr, "stress-scope: %ld timeouts, %ld completions, %ld cancelled\n",
            atomic_load(&timeouts), atomic_load(&completions), atomic_load(&cancels));
    weft_runtime_free(rt);
    free(h);
    return stress_result("stress-scope");
}
