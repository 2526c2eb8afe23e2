/*
 * weft/runtime.h - the runtime (worker threads), spawning, and the join handle
 * with its three verbs: join, abort, detach.
 *
 * Semantics in one table (README "Tasks, abort and detach" has the long form):
 *
 *   abort, task spawned default     request delivered as -ECANCELED at the
 *   (cooperative)                   task's next await; the task returns its own
 *                                   result, join reports it with status 0
 *   abort, task spawned             task is not resumed after its current poll;
 *   WEFT_TASK_CANCEL_SAFE           its drop hook runs once; join reports
 *                                   status -ECANCELED
 *   abort, task already finished    no-op, returns 1
 *   detach / spawn_detached         no handle: the task can no longer be
 *                                   aborted; its result is dropped
 *   runtime shutdown                every task is cancelled (source SHUTDOWN);
 *                                   after the grace period the rest are torn
 *                                   down without being resumed
 *
 * A task's drop hook runs exactly once: after it returns, after a forced abort,
 * or at shutdown.
 */
#ifndef WEFT_RUNTIME_H
#define WEFT_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/select.h"
#include "weft/task.h"
#include "weft/time.h"
#include "weft/token.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_runtime weft_runtime;

typedef enum weft_cancel_source {
    WEFT_CANCEL_NONE = 0,
    WEFT_CANCEL_ABORT,
    WEFT_CANCEL_TOKEN,
    WEFT_CANCEL_TIMEOUT,
    WEFT_CANCEL_GROUP,
    WEFT_CANCEL_SHUTDOWN,
} weft_cancel_source;

/*
 * Cancellation provenance as it happens: a trace hook (weft_runtime_opts)
 * is called on the thread where a cancellation takes effect, once per task:
 *   DELIVERED  an await yielded -ECANCELED (or withdrew its leaf) because of
 *              the request; `site` is that await
 *   TORN_DOWN  a cancel-safe task (or any task at shutdown) was stopped
 *              without being resumed; `site` is where it was suspended
 * The hook must be quick and must not block; it must not call into weft.
 */
typedef enum weft_trace_kind {
    WEFT_TRACE_CANCEL_DELIVERED = 1,
    WEFT_TRACE_TORN_DOWN,
} weft_trace_kind;

typedef struct weft_trace_event {
    weft_trace_kind kind;
    const char *task_name;          /* as spawned; may be NULL */
    uintptr_t task_id;              /* unique while the task lives */
    weft_cancel_source source;      /* who asked first */
    const weft_site *site;          /* may be NULL: never suspended */
    uint64_t requested_ns;          /* weft_now_ns of the request (0: unknown);
                                     * a tick early at most if no trace was on */
    uint64_t shield_held_ns;        /* how long shields deferred it so far */
} weft_trace_event;

typedef void (*weft_trace_fn)(const weft_trace_event *ev, void *arg);

typedef struct weft_runtime_opts {
    unsigned threads;               /* workers; 0 = online CPUs */
    bool pin_workers;               /* pin worker i to the i-th allowed CPU */
    unsigned global_queue_interval; /* ticks between fairness turns; 0 = 61 */
    unsigned shutdown_grace_ms;     /* time cooperative tasks get to finish
                                       at shutdown; 0 = 1000 */
    unsigned blocking_threads;      /* most threads of the blocking pool
                                       (weft/blocking.h); 0 = 64 */
    weft_trace_fn trace;            /* optional cancellation trace hook */
    void *trace_arg;
    bool task_times;                /* tasks keep their spawn and last poll
                                       times for the task dump (weft/observe.h):
                                       a clock read per poll */
} weft_runtime_opts;

/* Start a runtime. opts may be NULL for the defaults. Fields left at their
 * default are taken from the environment (weft_runtime_opts_from_env);
 * -EINVAL when a variable there is invalid. */
WEFT_EXTERN int weft_runtime_new(weft_runtime **out, const weft_runtime_opts *opts);

/*
 * The environment convention every weft program honours:
 *   WEFT_WORKERS=N           worker threads (0..4096; 0: one per online CPU)
 *   WEFT_PIN=1|0             pin workers to CPUs (also yes/no, true/false, on/off)
 *   WEFT_BLOCKING_THREADS=N  most threads of the blocking pool (1..4096)
 *   WEFT_TASK_DUMP=1|0       task_times: ages in the task dump (weft/observe.h)
 *   WEFT_TRACE=FILE          record a trace, written to FILE by weft_runtime_free
 *                            (weft/trace.h); WEFT_TRACE_EVENTS=N events per buffer
 *   WEFT_HUGEPAGES=1|0       task memory in transparent huge pages (default 1);
 *                            process-wide, read by weft_runtime_new
 * An unset or empty variable changes nothing. weft_runtime_new applies them
 * to the fields its caller left at their default (0 / false); this call
 * applies them to *opts whatever it holds, so a program can read them
 * first, report a bad one, and still override what it must. Returns 0, or
 * -EINVAL for a NULL opts or an invalid value, with *bad (may be NULL)
 * naming the variable and *opts unchanged.
 */
WEFT_EXTERN int weft_runtime_opts_from_env(weft_runtime_opts *opts, const char **bad);

/*
 * Cancel every task (source WEFT_CANCEL_SHUTDOWN), give cooperative tasks the
 * grace period to return, tear down the rest without resuming them (each drop
 * hook runs once), and join the worker threads. Spawning afterwards fails with
 * -ESHUTDOWN. Idempotent. Fails with -EDEADLK, changing nothing, when called
 * from a worker or from a job on rt's own blocking pool (weft/blocking.h):
 * it would wait for its own thread.
 */
WEFT_EXTERN int weft_runtime_shutdown(weft_runtime *rt);

/* Shut down if still running, then free the runtime. Fails as shutdown does
 * (-EDEADLK on a worker or in a job of rt's pool), leaving rt as it was. */
WEFT_EXTERN int weft_runtime_free(weft_runtime *rt);

WEFT_EXTERN unsigned weft_runtime_threads(const weft_runtime *rt);

/* Number of tasks spawned and not yet finished. */
WEFT_EXTERN size_t weft_runtime_live_tasks(const weft_runtime *rt);

/* The runtime running the current task. */
WEFT_EXTERN weft_runtime *weft_cx_runtime(weft_cx *cx);

/* The name the current task was spawned with, or NULL. */
WEFT_EXTERN const char *weft_cx_task_name(weft_cx *cx);

/* ---- Spawning ------------------------------------------------------------ */

enum weft_task_flags {
    /* The task may be torn down at any await: an abort, token or shutdown
     * stops it without resuming it. */
    WEFT_TASK_CANCEL_SAFE = 1u << 0,
    /* The whole task is one shield region: requests are recorded but never
     * delivered, and no weft_shield_exit ends it (its task dump shows
     * shield_depth 65535); shutdown still tears it down after the grace
     * period. */
    WEFT_TASK_SHIELDED = 1u << 1,
};

typedef struct weft_task_desc {
    weft_poll_fn poll;          /* required */
    const void *frame;          /* initial frame, copied; NULL = all zero */
    size_t frame_size;          /* >= sizeof(weft_frame) */
    weft_drop_fn drop;          /* optional; runs once, see above */
    const char *name;           /* optional, for traces; must outlive the task */
    unsigned flags;             /* enum weft_task_flags */
    weft_token *const *tokens;  /* optional: bind the task to these tokens */
    unsigned ntokens;           /* at most WEFT_MAX_TASK_TOKENS */
} weft_task_desc;

#define WEFT_MAX_TASK_TOKENS 16

/*
 * A description of a task whose frame is *frame_ptr, as a temporary whose
 * address can be passed to weft_spawn (`&WEFT_TASK(fn, &frame)`) or which can
 * be copied into a weft_task_desc to set more fields. The frame's alignment
 * is checked against WEFT_FRAME_ALIGN at compile time. In C++ it is an object
 * with the same two uses (see below).
 */
#ifndef __cplusplus
#define WEFT_TASK(poll_fn, frame_ptr)                                         \
    ((weft_task_desc){ .poll = (poll_fn), .frame = (frame_ptr),               \
                       .frame_size = sizeof *(frame_ptr)                      \
                           + 0 * sizeof(struct {                              \
                                 _Static_assert(_Alignof(__typeof__(*(frame_ptr)))\
                                                <= WEFT_FRAME_ALIGN,          \
                                                "frame over-aligned");        \
                                 int weft__unused; }) })
#endif

/*
 * The handle to a spawned task's result. Caller-allocated; weft_spawn fills
 * it. Joining consumes it (it becomes empty); so do detach and a successful
 * join after which the task is gone. Copies of a handle are not tracked: use
 * one copy, from one thread or task at a time. A join or detach while another
 * waits on the handle returns -EBUSY, but two calls that start on it at the
 * same moment race on the handle itself: order them as for any shared data.
 */
typedef struct weft_join {
    struct weft__task *weft_task;   /* private; NULL = empty */
} weft_join;

#define WEFT_JOIN_INIT { NULL }

/* Spawn a task from anywhere (a task, or any thread). join must not be NULL:
 * to give up the result, use weft_spawn_detached or weft_detach. */
WEFT_EXTERN int weft_spawn(weft_runtime *rt, const weft_task_desc *desc, weft_join *join);
WEFT_EXTERN int weft_spawn_detached(weft_runtime *rt, const weft_task_desc *desc);

/* ---- Outcomes and cancellation provenance --------------------------------- */

typedef struct weft_cancel_info {
    weft_cancel_source source;      /* first requester; NONE if never asked */
    const weft_site *delivered_at;  /* await where it took effect; NULL if it
                                       never did (the task finished first, or
                                       was torn down before its first poll) */
    uint64_t shield_held_ns;        /* how long shields deferred it */
} weft_cancel_info;

typedef struct weft_outcome {
    int status;                 /* 0: the task returned value;
                                   -ECANCELED: torn down without returning */
    int64_t value;
    weft_cancel_info cancel;
} weft_outcome;

WEFT_EXTERN const char *weft_cancel_source_name(weft_cancel_source source);

/* ---- Join, abort, detach ---------------------------------------------------- */

/*
 * Await the task behind h from inside a task. Yields its status (0 or
 * -ECANCELED) and fills *out; the handle is then empty. -EINVAL for an empty
 * handle. If the awaiting task is itself cancelled, the await yields -ECANCELED,
 * the handle stays valid and the task behind it keeps running.
 *
 * One task or thread at a time may wait on a handle: while one does (until
 * it has taken the outcome or stopped waiting), another join of it, here or
 * with weft_join_wait[_timeout], yields -EBUSY, and so does weft_detach; the
 * handle and the first wait are left as they were.
 */
WEFT_EXTERN weft_poll weft_join_await(weft_cx *cx, weft_join *h, weft_outcome *out);

/*
 * weft_join_await with a limit, from inside a task: timeouts stop the waiting,
 * not the work. If the task finishes within timeout_ns (from the first poll),
 * this is weft_join_await. Otherwise the await yields -ETIMEDOUT and gives the
 * handle up exactly as weft_join_wait_timeout does: a WEFT_TASK_CANCEL_SAFE
 * task is aborted (source WEFT_CANCEL_TIMEOUT), any other keeps running,
 * detached. A task that finished just as the limit passed is reported, not
 * dropped. Start jt zeroed (WEFT_JOIN_TIMEOUT_INIT).
 */
typedef struct weft_join_timeout {
    /* private */
    weft_selector weft_sel;
    weft_sleep weft_timer;
    weft_join *weft_handle;
    weft_outcome *weft_out;
    uint64_t weft_ns;
} weft_join_timeout;

#define WEFT_JOIN_TIMEOUT_INIT { WEFT_SELECTOR_INIT, WEFT_SLEEP_INIT, NULL, NULL, 0 }

WEFT_EXTERN weft_poll weft_join_await_timeout(weft_cx *cx, weft_join_timeout *jt, weft_join *h,
                                              weft_outcome *out, uint64_t timeout_ns);

/* Block the calling thread (not a worker: -EDEADLK) until the task finishes.
 * -EBUSY, with nothing changed, while another task or thread waits on h.
 * -EDEADLK too for a task of a simulated runtime (weft/sim.h) that has not
 * finished: only weft_block_on runs its tasks. */
WEFT_EXTERN int weft_join_wait(weft_join *h, weft_outcome *out);

/*
 * weft_join_wait with a limit: timeouts stop the waiting, not the work. If the
 * task finishes within timeout_ns, this is weft_join_wait. Otherwise it returns
 * -ETIMEDOUT at once and gives the handle up (it is empty afterwards): a task
 * spawned WEFT_TASK_CANCEL_SAFE is also aborted (source WEFT_CANCEL_TIMEOUT);
 * any other task keeps running to completion, detached, its result dropped.
 * Refuses what weft_join_wait refuses, with the same errors, before waiting.
 */
WEFT_EXTERN int weft_join_wait_timeout(weft_join *h, weft_outcome *out, uint64_t timeout_ns);

/* Spawn a root task and wait for it from the calling thread. */
WEFT_EXTERN int weft_block_on(weft_runtime *rt, const weft_task_desc *desc, weft_outcome *out);

/* Ask the task to stop (source WEFT_CANCEL_ABORT). Returns 0 when the request
 * was recorded, 1 when the task had already finished (nothing to do). The handle
 * stays valid: join it to see how the task ended. */
WEFT_EXTERN int weft_abort(weft_join *h);

/* Give up the handle; the task keeps running and its result is dropped.
 * -EBUSY, with nothing changed, while a task or thread waits on h and the
 * task has not finished. */
WEFT_EXTERN int weft_detach(weft_join *h);

/* True once the task has finished (returned or been torn down). */
WEFT_EXTERN bool weft_join_is_finished(const weft_join *h);

#ifdef __cplusplus
}

/*
 * C++ has no compound literals, so WEFT_TASK builds a small object instead:
 * `&WEFT_TASK(fn, &frame)` yields a pointer to its descriptor that lives to
 * the end of the full expression (weft_spawn copies it), and it converts to
 * a weft_task_desc for code that sets more fields.
 */
struct weft__task_temp {
    weft_task_desc desc;
    const weft_task_desc *operator&() const { return &desc; }
    operator const weft_task_desc &() const { return desc; }
};

template <typename Frame>
static inline weft__task_temp weft__task(weft_poll_fn poll, const Frame *frame)
{
    static_assert(alignof(Frame) <= WEFT_FRAME_ALIGN, "frame over-aligned");
    weft__task_temp t = {};
    t.desc.poll = poll;
    t.desc.frame = frame;
    t.desc.frame_size = sizeof(Frame);
    return t;
}

#define WEFT_TASK(poll_fn, frame_ptr) weft__task((poll_fn), (frame_ptr))
#endif

#endif /* WEFT_RUNTIME_H */
