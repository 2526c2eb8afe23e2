/*
 * runtime/rt.h - the runtime object shared by all workers.
 *
 * Lifetime: the runtime is reference counted - one reference for the user (from
 * weft_runtime_new to weft_runtime_free) and one per allocated task - so a join
 * handle or waker that outlives weft_runtime_free still points at valid memory.
 *
 * Shutdown phases (`phase`, only moves forward):
 *   RUNNING   normal operation.
 *   CLOSING   registry closed (spawn fails with -ESHUTDOWN); every task has a
 *             SHUTDOWN cancellation request; workers still run, so cooperative
 *             tasks can finish during the grace period.
 *   STOPPED   workers told to exit (`stop`) and joined; the shutdown thread
 *             alone drains the queues and tears down what is left.
 */
#ifndef WEFT_RUNTIME_RT_H
#define WEFT_RUNTIME_RT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "runtime/idle.h"
#include "runtime/inject.h"
#include "runtime/registry.h"
#include "runtime/worker.h"
#include "weft/runtime.h"

enum { WEFT__RT_RUNNING, WEFT__RT_CLOSING, WEFT__RT_STOPPED };

struct weft_runtime {
    weft_worker *workers;
    uint32_t nworkers;
    uint32_t global_queue_interval;
    uint32_t grace_ms;
    bool pin_workers;

    weft__inject inject;
    weft__idle idle;
    weft__registry registry;

    _Atomic bool stop;              /* workers leave their loops */
    _Atomic int phase;
    _Atomic size_t refs;
    pthread_mutex_t lifecycle_lock; /* serialises shutdown; guards startup */
    pthread_cond_t started_cond;
    uint32_t started;               /* workers that finished ring setup */
    int start_error;
};

void weft__rt_ref(weft_runtime *rt);
void weft__rt_unref(weft_runtime *rt);

#endif /* WEFT_RUNTIME_RT_H */
