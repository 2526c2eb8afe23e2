/*
 * weft/observe.h - what a running runtime is doing: counters (a snapshot of
 * per-worker and per-runtime metrics) and a task dump (every live task, what
 * it waits on and whether it was asked to stop). Both are read from any
 * thread, a task's included, while the runtime runs; neither stops it.
 *
 * Metrics are always kept. Each worker counts its own events in its own
 * cache lines, so a snapshot is a set of relaxed reads: every counter is
 * monotonic and exact for its worker, but the snapshot is not one instant
 * (a task may show as spawned in one line and not yet completed in another).
 *
 * The dump lists each task's name, state, the await it is suspended at,
 * cancellation and shield state. A task's age and the time since its last
 * poll cost a clock read per poll, so they are kept only by a runtime made
 * with task times on (weft_runtime_opts.task_times, or WEFT_TASK_DUMP=1 in
 * the environment); otherwise they read as WEFT_TIME_UNKNOWN.
 *
 * README "Observability: metrics and task dump" explains every field.
 */
#ifndef WEFT_OBSERVE_H
#define WEFT_OBSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "weft/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One worker's counters since the runtime started. */
typedef struct weft_worker_metrics {
    uint64_t polls;             /* task polls (tear-downs excluded) */
    uint64_t lifo_runs;         /* tasks taken from the LIFO slot */
    uint64_t local_runs;        /* tasks taken from its own queue or spill */
    uint64_t inject_runs;       /* tasks taken from the inject queue */
    uint64_t steal_attempts;    /* victims it tried to steal from */
    uint64_t steals;            /* attempts that got work */
    uint64_t stolen_tasks;      /* tasks those steals moved to it */
    uint64_t parks;             /* waits in its ring with nothing to run */
    uint64_t unparks;           /* parks ended by another thread's wake-up */
    uint64_t parked_ns;         /* time spent in those waits */
    uint64_t budget_yields;     /* polls ended by the cooperative budget */
    uint64_t timers_armed;      /* sleeps, deadline scopes and I/O deadlines armed on it */
    uint64_t timers_fired;      /* timers of its wheels that fired */
    uint64_t io_submitted;      /* I/O operations handed to its ring */
    uint64_t io_completed;      /* operations finished (any result) */
    uint64_t io_withdrawn;      /* operations it withdrew (cancel sent or unqueued) */
    uint32_t local_depth;       /* tasks in its local queue and spill now */
    uint32_t overflow_depth;    /* operations waiting for SQ room now */
} weft_worker_metrics;

/* The runtime's counters. cancelled[s] counts tasks in which a request from
 * source s (weft_cancel_source) took effect: delivered at an await or torn
 * down. */
typedef struct weft_metrics {
    unsigned workers;           /* the runtime's worker count */
    uint64_t live_tasks;        /* spawned and not finished */
    uint64_t spawned;
    uint64_t completed;         /* finished and released by the runtime */
    uint64_t cancelled[8];      /* indexed by weft_cancel_source */
    unsigned blocking_threads;  /* threads of the blocking pool now */
    unsigned blocking_idle;     /* of which waiting for work */
    size_t blocking_queued;     /* jobs waiting for a thread */
} weft_metrics;

/*
 * Fill *m, and workers[0 .. min(nworkers, worker count)) with the workers'
 * counters (workers may be NULL when nworkers is 0). Returns the runtime's
 * worker count, or -EINVAL for a NULL rt or m, or NULL workers with
 * nworkers > 0.
 */
WEFT_EXTERN int weft_metrics_read(weft_runtime *rt, weft_metrics *m,
                                  weft_worker_metrics *workers, size_t nworkers);

/* Write the snapshot as text to out, a table row per worker. Returns 0,
 * -EINVAL for a NULL argument, -ENOMEM, or -EIO when writing failed. */
WEFT_EXTERN int weft_metrics_print(weft_runtime *rt, FILE *out);

#define WEFT_TIME_UNKNOWN UINT64_MAX

typedef enum weft_task_run_state {
    WEFT_TASK_QUEUED = 1,       /* waiting in a run queue */
    WEFT_TASK_RUNNING,          /* being polled now */
    WEFT_TASK_SUSPENDED,        /* waiting for a wake-up */
} weft_task_run_state;

/* One live task. Pointers are into the program (names, await sites) and
 * stay valid as long as those do. */
typedef struct weft_task_info {
    uintptr_t id;               /* the trace events' task_id */
    const char *name;           /* as spawned; NULL: none */
    weft_task_run_state state;
    const weft_site *suspended_at;  /* its last await; NULL: never suspended */
    uint64_t age_ns;            /* since spawn, or WEFT_TIME_UNKNOWN */
    uint64_t since_poll_ns;     /* since its last poll began, or WEFT_TIME_UNKNOWN */
    bool cancel_requested;
    weft_cancel_source cancel_source;   /* WEFT_CANCEL_NONE when not requested */
    unsigned shield_depth;      /* open shield regions; 65535: shielded for
                                   good (spawned WEFT_TASK_SHIELDED, or
                                   enters piled up past the deepest nesting) */
    unsigned shard;             /* the worker that spawned it; the worker count
                                   for a task spawned from outside */
    uintptr_t group;            /* shared by a group's tasks; 0: none or unknown */
} weft_task_info;

/*
 * Describe up to cap live tasks in tasks[] (may be NULL when cap is 0).
 * Returns the number of live tasks found, which may exceed cap (only cap
 * were written), or -EINVAL for a NULL rt or NULL tasks with cap > 0.
 */
WEFT_EXTERN int weft_task_dump(weft_runtime *rt, weft_task_info *tasks, size_t cap);

/* Write every live task as a line of text to out (README has the format).
 * Returns the number of tasks written, -EINVAL for a NULL argument,
 * -ENOMEM, or -EIO when writing failed. */
WEFT_EXTERN int weft_task_dump_print(weft_runtime *rt, FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_OBSERVE_H */
