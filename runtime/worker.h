/*
 * runtime/worker.h - a worker thread: its local queue, LIFO slot, ring and the
 * run loop that ties them together.
 *
 * Who touches what:
 *   1. `lifo`, `tick`, `searching`, `rng`, `lifo_enabled`, `shard_closed`,
 *      `steal_seen`, `pace`, `work_seen` and `look_again_at` belong to the worker's own
 *      thread; `progress` is written only by it and read by thieves;
 *      `unparked_at` is written by whoever unparks it, read only by it.
 *   2. `queue` follows queue.h: the owner pushes and pops, anyone steals.
 *      `spill` is a locked FIFO (inject.h) of what overflowed `queue`: only
 *      the owner pushes; the owner pops, and so may a thief that found the
 *      owner's queue worth stealing (worker.c, invariant 8).
 *   3. `driver` (ring, operation records, wheel, hand-off stack, clock)
 *      follows reactor/driver.h: the owner drives it, any thread may unpark
 *      it or hand it a withdrawal. Its clock is NULL for CLOCK_MONOTONIC;
 *      otherwise the worker is simulated (runtime/sim.h) and the clock is the
 *      simulator's virtual time, which only the simulator's thread moves.
 *   4. `sim_chain` and `sim_lifo_polls` are the simulator's copy of
 *      run_task's LIFO bookkeeping.
 *   5. `metrics` follows runtime/metrics.h: written by the owner, read by
 *      anyone.
 */
#ifndef WEFT_RUNTIME_WORKER_H
#define WEFT_RUNTIME_WORKER_H

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "reactor/driver.h"
#include "runtime/inject.h"
#include "runtime/metrics.h"
#include "runtime/pace.h"
#include "runtime/queue.h"

struct weft_runtime;
struct weft__task;

/* What a thief saw of one victim at its previous look that found work in
 * its queue (worker.c, worth_stealing); at == 0: no such look. */
#define WEFT__STEAL_SEEN 64
typedef struct weft__steal_seen {
    uint64_t at;            /* the thief's clock then */
    uint32_t progress;      /* the victim's `progress` then */
} weft__steal_seen;

typedef struct weft_worker {
    weft__local_queue queue;
    weft__inject spill;
    struct weft_runtime *rt;
    struct weft__task *lifo;
    struct weft__task *yielded_head, *yielded_tail;   /* owner only, FIFO */
    /* Owner only: the tick by which the list's head has waited its turn
     * (worker.c, invariant 7); compared as a difference, so it may wrap. */
    uint32_t yielded_due;
    uint32_t index;
    uint32_t tick;
    bool lifo_enabled;
    bool searching;
    bool shard_closed;
    uint64_t rng;
    /* Set by the owner (relaxed) each time it starts a run_task chain; only
     * thieves read it, to tell a worker getting through its queue from one
     * stuck in a long poll (worker.c, worth_stealing). */
    _Atomic uint32_t progress;
    /* Owner only: per victim (index % WEFT__STEAL_SEEN). */
    weft__steal_seen steal_seen[WEFT__STEAL_SEEN];
    /* Owner only: the spin rule's measurements (pace.h), and when the work
     * that ended the last park showed up. */
    weft__pace pace;
    uint64_t work_seen;
    /* Owner only: nonzero when this search left work in another worker's
     * queue, and then the earliest time the steal gate would let us take it
     * (worker.c, worth_stealing); the coming park watches until then
     * (idle.h, rule 5). */
    uint64_t look_again_at;
    /* When a notifier last unparked this worker, on its driver's clock:
     * written (relaxed) by the notifier, read by the owner when it wakes,
     * to measure what the park cost (pace.h). */
    _Atomic uint64_t unparked_at;
    pthread_t thread;
    bool thread_started;
    weft__driver driver;
    bool sim_chain;
    uint32_t sim_lifo_polls;
    weft__worker_metrics metrics;
} weft_worker;

/* The counters of the worker whose driver is d (runtime/metrics.h): every
 * driver is a worker's. Inline: I/O and timer paths count through it. */
static inline weft__worker_metrics *weft__driver_metrics(weft__driver *d)
{
    return &((weft_worker *)(void *)((char *)d - offsetof(weft_worker, driver)))->metrics;
}

/* The cooperative budget ended a poll (no worker in a shutdown sweep). */
static inline void weft__count_budget_yield(weft_worker *w)
{
    if (w)
        weft__count(&w->metrics.budget_yields, 1);
}

/* The worker running on this thread, or NULL. */
extern __thread weft_worker *weft__current_worker;

/* Queue a task that carries its notified reference. is_yield sends it to the
 * back of the local queue instead of the LIFO slot. */
void weft__schedule(struct weft__task *t, bool is_yield);

/* Queue a task that yielded (or spent its budget) on the current worker:
 * it runs again only after the worker has reaped its ring, fired its due
 * timers and taken what other threads sent, so a yield gives way to them,
 * not only to the local queue (worker.c, invariant 7). */
void weft__schedule_yielded(struct weft__task *t);

/* Thread entry of a worker. */
void *weft__worker_main(void *arg);

/* Wake a sleeping worker if the idle rules say so. */
void weft__notify_parked(struct weft_runtime *rt);

/* ---- Simulated workers (runtime/sim.c drives them on its own thread) ---- */

/* Give w its driver as its thread would, reading `clock` for time. */
int weft__worker_sim_attach(weft_worker *w, const uint64_t *clock);
/* Stop w's driver, as its thread does when it stops. */
void weft__worker_sim_detach(weft_worker *w);
/* The task w would poll next, exactly as its run loop would choose it (the
 * LIFO slot, its queue, its spill, the inject queue, a steal), or NULL when
 * it finds none. The caller polls it with weft__harness_poll. */
struct weft__task *weft__worker_sim_pick(weft_worker *w);
/* True when w has something to do: a task to run, one to steal, or a
 * hand-off to settle. */
bool weft__worker_sim_ready(weft_worker *w);

#endif /* WEFT_RUNTIME_WORKER_H */
