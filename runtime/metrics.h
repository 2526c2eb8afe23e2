/*
 * runtime/metrics.h - the counters behind weft/observe.h, and the one-line
 * helpers the run loop, the harness and the reactor call to move them.
 *
 * Who touches what:
 *   1. Each worker has its own weft__worker_metrics, on cache lines of its
 *      own. A counter is written only by its worker's thread (or by the
 *      shutdown thread once the workers have stopped, acting as their
 *      owner, as registry.h rule 4 says): a relaxed load and a relaxed
 *      store, no read-modify-write, so the hot path pays a plain add and
 *      readers on other threads see whole values.
 *   2. `sleeps_fired` is the exception: any worker may fire the sleeps of
 *      another's wheel (reactor/driver.c), always under that wheel's
 *      sleep_lock, which orders the writers; it has its own line.
 *   3. A cancellation that takes effect on a thread with no worker of the
 *      task's runtime (a simulator driving several, a hook) is counted in
 *      the runtime's `cancelled_off_worker` with an atomic add: rare.
 *   4. Gauges (`overflow_depth`) go up and down on their worker only;
 *      queue depth and the blocking pool are read where they live
 *      (runtime/metrics.c).
 *   5. Polls are not counted one by one: every task a worker polls was
 *      taken from exactly one place (LIFO slot, own queue or spill, inject
 *      queue, a steal) and counted there, so polls = those takes minus
 *      `unpolled`, the takes that found the task complete or tore it down.
 *      That keeps the poll path itself free of counters (it measured 2-3%
 *      of chained_spawn).
 *   6. Those counters are read one after another while the worker moves
 *      them, so a derived count could go back between two reads (a
 *      teardown taken before one read and marked unpolled before the next).
 *      Readers read the takes first and `unpolled` after, so the difference
 *      never counts a poll that did not happen, and report at least what any
 *      reader reported before: `polls_reported`, raised with a CAS by
 *      readers only, on a line of its own so that the worker never meets it.
 */
#ifndef WEFT_RUNTIME_METRICS_H
#define WEFT_RUNTIME_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/task.h"

#define WEFT__SOURCES 8     /* weft_cancel_source values fit the state word's 3 bits */

typedef _Atomic uint64_t weft__counter;

typedef struct weft__worker_metrics {
    _Alignas(64) bool task_times;       /* the runtime's, copied: read per poll */
    weft__counter lifo_runs, local_runs, inject_runs;
    weft__counter unpolled;             /* taken, then not polled (rule 5) */
    weft__counter steal_attempts, steals, stolen_tasks;
    weft__counter parks, unparks, parked_ns;
    weft__counter budget_yields;
    weft__counter timers_armed, timers_fired;
    weft__counter io_submitted, io_completed, io_withdrawn;
    weft__counter overflow_depth;
    weft__counter cancelled[WEFT__SOURCES];
    _Alignas(64) weft__counter sleeps_fired;    /* rule 2 */
    _Alignas(64) weft__counter polls_reported;  /* rule 6 */
} weft__worker_metrics;

/* Rule 1: the single writer's add. */
static inline void weft__count(weft__counter *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t weft__counter_read(weft__counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Count a task taken from `source` (one of w's run counters) and pass it
 * on; NULL (nothing taken) counts nothing. */
static inline struct weft__task *weft__count_run(weft__counter *source, struct weft__task *t)
{
    if (t)
        weft__count(source, 1);
    return t;
}

/* A poll begins: when the runtime keeps task times (every task of it has
 * them), stamp it. Polls are counted by their takes (rule 5). */
static inline void weft__stamp_poll(weft__worker_metrics *m, weft__task *t)
{
    if (__builtin_expect(m->task_times, 0))
        atomic_store_explicit(&weft__task_times_of(t)->polled_ns, weft__coarse_ns(),
                              memory_order_relaxed);
}

/* One steal attempt; `got` is what it returned. The thief's queue was empty
 * before (it steals only then), so what it holds now, plus the task it
 * runs, is what moved. */
void weft__count_steal(weft__worker_metrics *m, struct weft__task *got, uint32_t queued_now);

/* A park ended after `ns`; `woken`: another thread's wake-up ended it. */
static inline void weft__count_park(weft__worker_metrics *m, uint64_t ns, bool woken)
{
    weft__count(&m->parks, 1);
    weft__count(&m->parked_ns, ns);
    weft__count(&m->unparks, woken);
}

/* A cancellation took effect in t, on the calling thread (rule 3). */
void weft__count_cancelled(weft__task *t);


#endif /* WEFT_RUNTIME_METRICS_H */
