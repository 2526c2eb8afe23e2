/*
 * runtime/rt.h - the runtime object shared by all workers.
 *
 * Lifetime: tasks do not pin the runtime. Shutdown completes every task, and a
 * complete task never touches its runtime again (wakes are no-ops, its outcome
 * lives in the task), so join handles and wakers may outlive weft_runtime_free.
 *
 * Shutdown phases (`phase`, only moves forward):
 *   RUNNING   normal operation.
 *   CLOSING   spawn fails with -ESHUTDOWN. The shutdown thread closes the
 *             outside registry shard; each worker, seeing CLOSING, closes its
 *             own shard and records a SHUTDOWN request on every task in it,
 *             then counts itself in `closed_shards`. Workers keep running, so
 *             cooperative tasks can finish during the grace period.
 *   STOPPED   workers told to exit (`stop`) and joined; the blocking pool
 *             is shut down (its jobs finished or cancelled); the shutdown
 *             thread alone drains the queues and tears down what is left.
 */
#ifndef WEFT_RUNTIME_RT_H
#define WEFT_RUNTIME_RT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "runtime/idle.h"
#include "runtime/inject.h"
#include "runtime/registry.h"
#include "runtime/sim.h"
#include "runtime/task.h"
#include "runtime/worker.h"
#include "weft/runtime.h"

enum { WEFT__RT_RUNNING, WEFT__RT_CLOSING, WEFT__RT_STOPPED };

struct weft_runtime {
    weft_worker *workers;
    uint32_t nworkers;
    uint32_t global_queue_interval;
    uint32_t grace_ms;
    uint32_t blocking_max;          /* threads the blocking pool may start */
    bool pin_workers;
    bool task_times;                /* tasks keep dump times (runtime/task.h) */
    weft_trace_fn trace;
    void *trace_arg;
    struct weft__tracer *_Atomic tracer;    /* runtime/trace.h; NULL: off */
    /* The blocking pool (runtime/blocking.c), created on first use. */
    struct weft__blocking_pool *_Atomic blocking;

    weft__inject inject;
    weft__idle idle;
    weft__registry registry;

    _Atomic bool stop;              /* workers leave their loops */
    _Atomic int phase;
    _Atomic uint64_t closing_ns;    /* when CLOSING began: the request time of
                                     * tasks without a record (task.h) */
    pthread_mutex_t lifecycle_lock; /* serialises shutdown; guards startup */
    pthread_cond_t started_cond;
    uint32_t started;               /* workers that finished ring setup */
    _Atomic uint32_t closed_shards; /* workers that closed their shard */
    int start_error;
    weft__sim sim;                  /* sim.on: no threads; runtime/sim.h */
    /* Cancellations that took effect off this runtime's workers
     * (runtime/metrics.h, rule 3), by source. */
    _Atomic uint64_t cancelled_off_worker[WEFT__SOURCES];
    /* Threaded harness runs only; set before the first spawn (sim.h). */
    weft__cancel_plan *cancel_plan;
};

/* How the reactor reaches drivers (reactor/driver.h): the one of the worker
 * polling cx (NULL when the task is polled without a worker, as in the
 * shutdown sweep), and the one of worker `index`, to hand it a withdrawal. */
static inline weft__driver *weft__cx_driver(struct weft_cx *cx)
{
    return cx->worker ? &cx->worker->driver : NULL;
}

static inline weft__driver *weft__driver_of(weft_runtime *rt, uint32_t index)
{
    return &rt->workers[index].driver;
}

/* The blocking pool's part of shutdown (runtime/blocking.c): called once the
 * workers have stopped and before the sweep. Refuses new jobs, cancels queued
 * ones, waits for running ones and joins the pool's threads, so that no pool
 * thread still touches a frame when the sweep drops it. */
void weft__blocking_shutdown(weft_runtime *rt);
/* Frees the pool, if one was created; after weft__blocking_shutdown. */
void weft__blocking_free(weft_runtime *rt);
/* The pool's threads, idle threads and queued jobs now (0s before it is
 * first used), under its lock. */
void weft__blocking_stats(weft_runtime *rt, unsigned *threads, unsigned *idle, size_t *queued);

#endif /* WEFT_RUNTIME_RT_H */
