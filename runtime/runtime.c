/*
 * runtime/runtime.c - creating the runtime, spawning into it, and shutting it
 * down (the phases are described in rt.h).
 *
 * Shutdown, step by step:
 *   1. Enter CLOSING: from here on spawn fails with -ESHUTDOWN. Every registry
 *      shard is closed and each of its tasks gets a SHUTDOWN request (workers
 *      do their own shards, see rt.h).
 *   2. Let the workers run for up to the grace period, so cooperative tasks
 *      can return on their own.
 *   3. Stop the workers and join them; then shut the blocking pool down
 *      (runtime/blocking.c), so no pool thread still uses a frame.
 *   4. Alone now, drain every queue and claim every idle task, tearing each one
 *      down without resuming it (drop hook once, join status -ECANCELED), until
 *      the registry is empty. Joiners are woken as usual.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "reactor/driver.h"
#include "runtime/alloc.h"
#include "runtime/blocking.h"
#include "runtime/env.h"
#include "runtime/harness.h"
#include "runtime/rt.h"
#include "runtime/task.h"
#include "runtime/trace.h"
#include "runtime/waker.h"

#define DEFAULT_GLOBAL_QUEUE_INTERVAL 61
#define DEFAULT_BLOCKING_THREADS 64
#define DEFAULT_GRACE_MS 1000
#define MAX_WORKERS 4096    /* the idle word counts workers in 16 bits */
_Static_assert(MAX_WORKERS + 1 <= (WEFT__SHARD_MASK >> WEFT__SHARD_SHIFT) + 1,
               "every registry shard (a worker's, and the outside one) fits the state word");
_Static_assert(WEFT__PARTS_END - ((uint64_t)1 << WEFT__LAYOUT_SHIFT) == WEFT__LAYOUT_MASK
               && (WEFT__LAYOUT_MASK & WEFT__SHARD_MASK) == 0
               && WEFT__LAYOUT_MASK >> WEFT__SHARD_SHIFT == 0,
               "every optional part of a task has a LAYOUT bit, below the shard field");

static void rt_free(weft_runtime *rt)
{
    weft__trace_free(rt);   /* WEFT_TRACE's file: every worker has stopped */
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft__driver_free(&rt->workers[i].driver);
    }
    weft__free(rt->workers, rt->nworkers * sizeof *rt->workers);
    weft__blocking_free(rt);
    weft__registry_destroy(&rt->registry);
    weft__idle_destroy(&rt->idle);
    pthread_cond_destroy(&rt->started_cond);
    pthread_mutex_destroy(&rt->lifecycle_lock);
    weft__free(rt, sizeof *rt);
}

static int rt_alloc(weft_runtime **out, uint32_t n)
{
    weft_runtime *rt = weft__calloc(sizeof *rt);
    if (!rt)
        return -ENOMEM;
    rt->nworkers = n;
    rt->workers = weft__calloc(n * sizeof *rt->workers);
    int rc = rt->workers ? 0 : -ENOMEM;
    weft__inject_init(&rt->inject);
    if (rc == 0)
        rc = weft__idle_init(&rt->idle, n);
    if (rc == 0 && (rc = weft__registry_init(&rt->registry, n)) != 0)
        weft__idle_destroy(&rt->idle);
    if (rc == 0) {
        pthread_mutex_init(&rt->lifecycle_lock, NULL);
        pthread_cond_init(&rt->started_cond, NULL);
        *out = rt;
        return 0;
    }
    weft__free(rt->workers, n * sizeof *rt->workers);
    weft__free(rt, sizeof *rt);
    return rc;
}

static void worker_init(weft_runtime *rt, uint32_t i)
{
    weft_worker *w = &rt->workers[i];
    weft__local_init(&w->queue);
    weft__inject_init(&w->spill);
    w->rt = rt;
    w->index = i;
    w->lifo_enabled = true;
    w->metrics.task_times = rt->task_times;
    w->rng = 0x9E3779B97F4A7C15ULL * (i + 1);
    w->driver.ring.eventfd = -1;
}

static void wake_worker(void *arg, uint32_t i)
{
    weft_runtime *rt = arg;
    weft__driver_unpark(&rt->workers[i].driver);
}

static void stop_workers(weft_runtime *rt)
{
    atomic_store_explicit(&rt->stop, true, memory_order_seq_cst);
    weft__idle_wake_all(&rt->idle, wake_worker, rt);
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft_worker *w = &rt->workers[i];
        if (w->thread_started) {
            weft__driver_unpark(&w->driver);
            pthread_join(w->thread, NULL);
            w->thread_started = false;
        }
    }
}

static int start_workers(weft_runtime *rt)
{
    int rc = 0;
    uint32_t launched = 0;
    for (uint32_t i = 0; i < rt->nworkers && rc == 0; i++) {
        weft_worker *w = &rt->workers[i];
        rc = -pthread_create(&w->thread, NULL, weft__worker_main, w);
        w->thread_started = rc == 0;
        launched += rc == 0;
    }
    pthread_mutex_lock(&rt->lifecycle_lock);
    while (rt->started < launched)
        pthread_cond_wait(&rt->started_cond, &rt->lifecycle_lock);
    if (rc == 0)
        rc = rt->start_error;
    pthread_mutex_unlock(&rt->lifecycle_lock);
    if (rc)
        stop_workers(rt);
    return rc;
}

int weft__runtime_new_unstarted(weft_runtime **out, const weft_runtime_opts *opts)
{
    if (!out)
        return -EINVAL;
    weft_runtime_opts o = { 0 };
    if (opts)
        o = *opts;
    if (o.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = n > 0 ? (unsigned)n : 1;
    }
    if (o.threads > MAX_WORKERS)
        return -EINVAL;
    weft_runtime *rt;
    int rc = rt_alloc(&rt, o.threads);
    if (rc)
        return rc;
    rt->global_queue_interval = o.global_queue_interval ? o.global_queue_interval
                                                        : DEFAULT_GLOBAL_QUEUE_INTERVAL;
    rt->grace_ms = o.shutdown_grace_ms ? o.shutdown_grace_ms : DEFAULT_GRACE_MS;
    rt->blocking_max = o.blocking_threads ? o.blocking_threads : DEFAULT_BLOCKING_THREADS;
    rt->pin_workers = o.pin_workers;
    rt->task_times = o.task_times;
    rt->trace = o.trace;
    rt->trace_arg = o.trace_arg;
    atomic_init(&rt->phase, WEFT__RT_RUNNING);
    for (uint32_t i = 0; i < rt->nworkers; i++)
        worker_init(rt, i);
    *out = rt;
    return 0;
}

int weft_runtime_new(weft_runtime **out, const weft_runtime_opts *opts)
{
    if (!out)
        return -EINVAL;
    weft_runtime_opts env;      /* WEFT_WORKERS & co. fill what opts left default */
    int rc = weft__runtime_opts_env_defaults(opts, &env);
    if (rc)
        return rc;
    weft_runtime *rt;
    rc = weft__runtime_new_unstarted(&rt, &env);
    if (rc == 0 && ((rc = weft__trace_from_env(rt)) != 0 || (rc = start_workers(rt)) != 0))
        rt_free(rt);
    if (rc == 0)
        *out = rt;
    return rc;
}

static int spawn(weft_runtime *rt, const weft_task_desc *desc, weft_join *join)
{
    if (atomic_load_explicit(&rt->phase, memory_order_acquire) != WEFT__RT_RUNNING)
        return -ESHUTDOWN;
    int err;
    weft__task *t = weft__task_new(rt, desc, join != NULL, &err);
    if (!t)
        return err;
    weft_worker *w = weft__current_worker;
    int worker = (w && w->rt == rt) ? (int)w->index : -1;
    int rc = weft__registry_insert(&rt->registry, t, worker);
    if (rc < 0) {
        weft__task_free(t);
        return rc;
    }
    if (join)
        join->weft_task = t;
    weft__task_bind_tokens(t, desc);
    weft__trace_task(t, WEFT__TR_SPAWN, 0);
    weft__schedule(t, false);
    return 0;
}

int weft_spawn(weft_runtime *rt, const weft_task_desc *desc, weft_join *join)
{
    if (!rt || !desc || !join)
        return -EINVAL;
    return spawn(rt, desc, join);
}

int weft_spawn_detached(weft_runtime *rt, const weft_task_desc *desc)
{
    if (!rt || !desc)
        return -EINVAL;
    return spawn(rt, desc, NULL);
}

int weft_block_on(weft_runtime *rt, const weft_task_desc *desc, weft_outcome *out)
{
    if (!rt || !desc || !out)
        return -EINVAL;
    if (weft__current_worker)
        return -EDEADLK;
    if (rt->sim.on)
        return weft__sim_block_on(rt, desc, out);
    weft_join h = WEFT_JOIN_INIT;
    int rc = spawn(rt, desc, &h);
    return rc ? rc : weft_join_wait(&h, out);
}

static void sleep_1ms(void)
{
    const struct timespec tick = { 0, 1000000 };
    nanosleep(&tick, NULL);
}

/* Steps 1 and 2: close every shard (workers close their own, rt.h), then give
 * cooperative tasks the grace period. */
static void close_and_wait(weft_runtime *rt)
{
    atomic_store_explicit(&rt->closing_ns, weft__monotonic_ns(), memory_order_relaxed);
    atomic_store_explicit(&rt->phase, WEFT__RT_CLOSING, memory_order_seq_cst);
    weft__registry_close(&rt->registry, rt->nworkers, weft__task_request_shutdown, NULL);
    for (uint32_t i = 0; i < rt->nworkers; i++)
        weft__driver_unpark(&rt->workers[i].driver);
    weft__idle_wake_all(&rt->idle, wake_worker, rt);
    while (atomic_load_explicit(&rt->closed_shards, memory_order_acquire) < rt->nworkers)
        sleep_1ms();
    uint64_t deadline = weft__monotonic_ns() + (uint64_t)rt->grace_ms * 1000000u;
    while (weft__registry_live(&rt->registry) > 0 && weft__monotonic_ns() < deadline)
        sleep_1ms();
}

static void shut_down_queued(weft__task *t)
{
    switch (weft__state_to_running(&t->state)) {
    case WEFT__RUN_OK:
    case WEFT__RUN_CANCELLED:
        weft__harness_shutdown(t);
        break;
    case WEFT__RUN_DEALLOC:
        weft__task_free(t);
        break;
    case WEFT__RUN_FAILED:
        break;
    }
}

static void drain_queues(weft_runtime *rt)
{
    weft__task *t;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft_worker *w = &rt->workers[i];
        if ((t = w->lifo) != NULL) {
            w->lifo = NULL;
            shut_down_queued(t);
        }
        while ((t = weft__local_pop(&w->queue)) != NULL)
            shut_down_queued(t);
        while ((t = weft__inject_pop(&w->spill)) != NULL)
            shut_down_queued(t);
        while ((t = w->yielded_head) != NULL) {
            w->yielded_head = t->queue_next;
            if (!w->yielded_head)
                w->yielded_tail = NULL;
            shut_down_queued(t);
        }
    }
    while ((t = weft__inject_pop(&rt->inject)) != NULL)
        shut_down_queued(t);
}

/* Claim idle tasks under the shard lock; tear them down after releasing it
 * (completion removes the task from the registry, which takes that lock). */
static void claim_idle(weft__task *t, void *arg)
{
    weft__task **claimed = arg;
    if (weft__state_claim_idle(&t->state) == WEFT__CLAIM_OK) {
        t->queue_next = *claimed;
        *claimed = t;
    }
}

static void sweep(weft_runtime *rt)
{
    /* Withdrawals handed to a worker that has stopped: settle them as its
     * owner now, before any of their tasks is torn down. */
    for (uint32_t i = 0; i < rt->nworkers; i++)
        weft__driver_tick(&rt->workers[i].driver, WEFT__TICK_HANDOFFS);
    for (;;) {
        for (uint32_t i = 0; i < rt->nworkers; i++)
            weft__registry_drain(&rt->registry, i);
        if (weft__registry_live(&rt->registry) == 0)
            break;
        drain_queues(rt);
        weft__task *claimed = NULL;
        weft__registry_for_each_stopped(&rt->registry, claim_idle, &claimed);
        while (claimed) {
            weft__task *next = claimed->queue_next;
            weft__harness_shutdown(claimed);
            claimed = next;
        }
    }
    drain_queues(rt);
}

int weft_runtime_shutdown(weft_runtime *rt)
{
    if (!rt)
        return -EINVAL;
    /* Shutdown joins the workers and the pool's threads: on one of them it
     * would wait for itself, holding lifecycle_lock for good. */
    if (weft__current_worker || weft__blocking_in_own_job(rt))
        return -EDEADLK;
    pthread_mutex_lock(&rt->lifecycle_lock);
    if (atomic_load_explicit(&rt->phase, memory_order_acquire) == WEFT__RT_RUNNING) {
        if (rt->sim.on)
            weft__sim_close(rt);    /* the same steps, in virtual time */
        else
            close_and_wait(rt);
        stop_workers(rt);
        weft__blocking_shutdown(rt);
        sweep(rt);
        atomic_store_explicit(&rt->phase, WEFT__RT_STOPPED, memory_order_release);
    }
    pthread_mutex_unlock(&rt->lifecycle_lock);
    return 0;
}

int weft_runtime_free(weft_runtime *rt)
{
    int rc = weft_runtime_shutdown(rt);
    if (rc)
        return rc;
    rt_free(rt);
    return 0;
}

unsigned weft_runtime_threads(const weft_runtime *rt)
{
    return rt ? rt->nworkers : 0;
}

size_t weft_runtime_live_tasks(const weft_runtime *rt)
{
    return rt ? weft__registry_live(&rt->registry) : 0;
}

weft_runtime *weft_cx_runtime(weft_cx *cx)
{
    return cx ? cx->task->rt : NULL;
}

const char *weft_cx_task_name(weft_cx *cx)
{
    return cx ? weft__task_name(cx->task) : NULL;
}
