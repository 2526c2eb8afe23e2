/*
 * tests/sync/sync_test.h - helpers shared by the sync primitive tests.
 *
 *   rt_make(threads)         start a runtime or fail the test.
 *   WAIT_FOR(cond)           poll a condition (with a hang guard, not a timing
 *                            judgement) until it holds: used to wait until a
 *                            task is really queued in a primitive.
 *   blocker_*                occupy the only worker of a 1-thread runtime, so a
 *                            task that is woken cannot run until released: the
 *                            way to reach "woken but not yet run".
 *   join_value / join_outcome wait for a task from the test thread.
 */
#ifndef WEFT_TESTS_SYNC_TEST_H
#define WEFT_TESTS_SYNC_TEST_H

#include <criterion/criterion.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "sync/inspect.h"
#include "test_util.h"
#include "weft/weft.h"

static inline weft_runtime *rt_make(unsigned threads)
{
    weft_runtime *rt = NULL;
    weft_runtime_opts o = { .threads = threads, .shutdown_grace_ms = 200 };
    int rc = weft_runtime_new(&rt, &o);
    cr_assert_eq(rc, 0, "weft_runtime_new: %d (%s)", rc, weft_strerror(rc));
    return rt;
}

static inline void rt_done(weft_runtime *rt)
{
    cr_assert_eq(weft_runtime_free(rt), 0);
}

/* A hang guard of about a minute; conditions normally hold within microseconds. */
#define WAIT_FOR(cond)                                                        \
    do {                                                                      \
        long spins_ = 0;                                                      \
        while (!(cond)) {                                                     \
            cr_assert_lt(++spins_, 600000L, "never happened: %s", #cond);     \
            usleep(100);                                                      \
        }                                                                     \
    } while (0)

#define DESC(poll_fn, frame_ptr, drop_fn, fl)                                 \
    ((weft_task_desc){ .poll = (poll_fn), .frame = (frame_ptr),               \
                       .frame_size = sizeof *(frame_ptr), .drop = (drop_fn),  \
                       .flags = (fl) })

static inline weft_join spawn_task(weft_runtime *rt, weft_task_desc d)
{
    weft_join h = WEFT_JOIN_INIT;
    int rc = weft_spawn(rt, &d, &h);
    cr_assert_eq(rc, 0, "weft_spawn: %d", rc);
    return h;
}

/* The next value of a bounded or unbounded mpsc channel, taken without
 * waiting: it must be there and be `want`. */
static inline void expect_mpsc_recv(weft_mpsc_rx *rx, uint64_t want)
{
    uint64_t v = ~want;
    int rc = weft_mpsc_try_recv(rx, &v);
    cr_assert_eq(rc, 0, "try_recv: %d", rc);
    cr_assert_eq(v, want, "got %lu, want %lu", (unsigned long)v, (unsigned long)want);
}

static inline weft_outcome join_outcome(weft_join *h)
{
    weft_outcome o;
    cr_assert_eq(weft_join_wait(h, &o), 0);
    return o;
}

/* The value a task returned (it must have returned, not been torn down). */
static inline int64_t join_value(weft_join *h)
{
    weft_outcome o = join_outcome(h);
    cr_assert_eq(o.status, 0, "task was torn down");
    return o.value;
}

/* ---- blocker: a task that spins until released ----------------------------- */

typedef struct blocker {
    _Atomic int running;
    _Atomic int release;
    weft_join h;
} blocker;

struct blocker_frame {
    weft_frame f;
    blocker *b;
};

static inline weft_poll blocker_poll(weft_cx *cx, void *p)
{
    (void)cx;
    blocker *b = ((struct blocker_frame *)p)->b;
    atomic_store(&b->running, 1);
    while (!atomic_load(&b->release))
        sched_yield();
    return 0;
}

/* Occupy a worker until blocker_release; returns once the blocker runs. */
static inline void blocker_start(weft_runtime *rt, blocker *b)
{
    atomic_store(&b->running, 0);
    atomic_store(&b->release, 0);
    struct blocker_frame fr = { .b = b };
    b->h = spawn_task(rt, DESC(blocker_poll, &fr, NULL, 0));
    WAIT_FOR(atomic_load(&b->running));
}

static inline void blocker_release(blocker *b)
{
    atomic_store(&b->release, 1);
    cr_assert_eq(join_value(&b->h), 0);
}

#endif /* WEFT_TESTS_SYNC_TEST_H */
