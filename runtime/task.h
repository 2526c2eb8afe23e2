/*
 * runtime/task.h - the task object: one allocation holding the header below
 * followed by the user's frame, which never moves.
 *
 * Who touches what:
 *   1. `state` is atomic and follows the rules in task_state.h.
 *   2. `queue_next` belongs to whoever holds the notified reference (a queue);
 *      after completion, to the registry's hand-back stack (registry.h).
 *   3. `leaf`, `leaf_hook`, `leaf_withdrawing`, `suspended_at`, `shield_depth`,
 *      `cancel_delivered_at` and the frame belong to the holder of RUNNING.
 *   4. `cancel_requested_ns` is written once, by the request that set
 *      CANCEL_REQUESTED, just after it; readers treat 0 as "not known yet".
 *   5. The outcome (`value`, `status`, shield time) is written by the holder of
 *      RUNNING before COMPLETE, read by the join side after it (rule 5).
 *   6. `reg_prev`/`reg_next` belong to the owner of the task's registry shard
 *      (registry.h, rules 1-3).
 *   7. The token bindings after the frame are linked at spawn and unlinked by
 *      the holder of RUNNING before COMPLETE; while linked, each belongs to its
 *      token's lock (token.c).
 *   8. Everything else is immutable after spawn.
 */
#ifndef WEFT_RUNTIME_TASK_H
#define WEFT_RUNTIME_TASK_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/task_state.h"
#include "weft/runtime.h"

struct weft_worker;

typedef struct weft__task {
    /* First cache line: what scheduling, waking, cancelling and joining touch. */
    weft__state state;
    struct weft__task *queue_next;
    weft_poll_fn poll;
    weft_runtime *rt;
    weft_waker join_waker;
    int64_t value;
    void *leaf;                     /* the leaf the task is suspended on */
    int status;
    uint32_t shield_depth;

    weft_cancel_hook leaf_hook;
    const weft_site *suspended_at;
    struct weft__task *reg_prev, *reg_next;
    weft_drop_fn drop;
    _Atomic uint64_t cancel_requested_ns;   /* 0 = not yet set */
    uint64_t shield_started_ns;
    uint64_t shield_held_ns;
    const weft_site *cancel_delivered_at;
    const char *name;
    uint32_t alloc_size;
    uint16_t reg_shard;
    bool leaf_withdrawing;
    uint8_t nbindings;              /* token bindings at the allocation's end */
} weft__task;

/* The frame starts at a fixed, max-aligned offset after the header. */
#define WEFT__FRAME_ALIGN 16
#define WEFT__FRAME_OFFSET \
    ((sizeof(weft__task) + WEFT__FRAME_ALIGN - 1) & ~(size_t)(WEFT__FRAME_ALIGN - 1))

static inline void *weft__task_frame(weft__task *t)
{
    return (char *)t + WEFT__FRAME_OFFSET;
}

struct weft__binding;

/* The token bindings, after the frame (runtime/token.h). */
struct weft__binding *weft__task_bindings(weft__task *t);
/* At spawn, once the task is registered: link it into its tokens' lists. */
void weft__task_bind_tokens(weft__task *t, const weft_task_desc *desc);
/* At completion, before the task can be freed. */
void weft__task_unbind_tokens(weft__task *t);

/* Leaf completions a task may make in one poll before its leaves answer
 * PENDING and it is requeued (weft_cx_coop), so no task starves a worker. */
#define WEFT__COOP_BUDGET 128

/*
 * The context of one poll. Lives on the polling worker's stack; its head is what
 * the inline await check in weft/task.h reads.
 */
struct weft_cx {
    struct weft__cx_head head;
    weft__task *task;
    struct weft_worker *worker;
    uint32_t budget;
    bool teardown;      /* hooks run now precede dropping the frame */
};

void weft__cx_init(struct weft_cx *cx, weft__task *t, struct weft_worker *w);

/* Allocate and initialise a task from desc; NULL with *err set on failure. */
weft__task *weft__task_new(weft_runtime *rt, const weft_task_desc *desc, bool joinable,
                           int *err);

/* Drop one reference; frees the task on the last. */
void weft__task_unref(weft__task *t);
void weft__task_free(weft__task *t);

/* Wake paths: schedule the task if the transition says so. */
void weft__task_wake_by_ref(weft__task *t);
void weft__task_wake_by_val(weft__task *t);

/* Record a cancellation request from `source` and make sure the task sees it.
 * Returns the state transition's outcome. */
weft__cancel_outcome weft__task_request_cancel(weft__task *t, weft_cancel_source source);

/* weft__registry_fn form of a SHUTDOWN request. */
void weft__task_request_shutdown(weft__task *t, void *arg);

/* A cancellation took effect at site: record the first such site as the
 * task's provenance and emit it to the runtime's trace hook. */
void weft__cancel_took_effect(weft__task *t, const weft_site *site, weft_trace_kind kind);

/* How long the current outermost shield has held the pending request. */
uint64_t weft__shield_hold(weft__task *t);

/* The real monotonic clock, whatever runs the task: provenance, shield hold
 * times and grace periods are real time. Not weft_now_ns (weft/time.h), which
 * a task reads and the simulator makes virtual. */
uint64_t weft__monotonic_ns(void);

#endif /* WEFT_RUNTIME_TASK_H */
