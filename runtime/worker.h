/*
 * runtime/worker.h - a worker thread: its local queue, LIFO slot, ring and the
 * run loop that ties them together.
 *
 * Who touches what:
 *   1. `lifo`, `tick`, `searching`, `rng`, `lifo_enabled` and `shard_closed`
 *      belong to the worker's own thread.
 *   2. `queue` follows queue.h: the owner pushes and pops, anyone steals.
 *   3. `ring` is submitted to and reaped only by the owner; any thread may
 *      unpark it (ring.h).
 *   4. `wheel` and `remote_cancels` follow reactor/timer.h.
 *   5. `ops` follows reactor/op.h: the owner alone, except `ops.remote`.
 */
#ifndef WEFT_RUNTIME_WORKER_H
#define WEFT_RUNTIME_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "reactor/op.h"
#include "reactor/ring.h"
#include "reactor/wheel.h"
#include "runtime/queue.h"

struct weft_runtime;
struct weft__task;

typedef struct weft_worker {
    weft__local_queue queue;
    struct weft_runtime *rt;
    struct weft__task *lifo;
    uint32_t index;
    uint32_t tick;
    bool lifo_enabled;
    bool searching;
    bool shard_closed;
    uint64_t rng;
    pthread_t thread;
    bool thread_started;
    weft__ring ring;
    weft__op_table ops;
    weft__wheel wheel;
    struct weft_sleep *_Atomic remote_cancels;
} weft_worker;

/* The worker running on this thread, or NULL. */
extern __thread weft_worker *weft__current_worker;

/* Queue a task that carries its notified reference. is_yield sends it to the
 * back of the local queue instead of the LIFO slot. */
void weft__schedule(struct weft__task *t, bool is_yield);

/* Thread entry of a worker. */
void *weft__worker_main(void *arg);

/* Wake a sleeping worker if the idle rules say so. */
void weft__notify_parked(struct weft_runtime *rt);

#endif /* WEFT_RUNTIME_WORKER_H */
