/*
 * runtime/task.h - the task object: one allocation holding, in order, the
 * optional parts only some tasks need, the 64-byte header below (one cache
 * line for the tasks whose allocation starts with it), and the user's frame,
 * which never moves.
 *
 * The optional parts sit just before the header, nearest first, each present
 * only when the state word's LAYOUT bit says so (fixed at spawn):
 *   JOIN       the join waker (a task spawned with a handle);
 *   RECORD     the cancellation record: request time, shield times, the await
 *              where the request took effect (a task that can be cancelled by
 *              something other than shutdown: a handle, a token, or a shield
 *              from spawn on);
 *   DROP, NAME the drop hook and the name, when the spawner gave them;
 *   TIMES      when the task was spawned and last polled, and its group, for
 *              the task dump (runtime/dump.c): every task of a runtime made
 *              with task times on (WEFT_TASK_DUMP=1), none otherwise, so
 *              that a poll reads the clock only when someone asked for it;
 *   then the token bindings (`nbindings` of them) and padding to 16 bytes.
 * A detached task without tokens, hook or name is its header and its frame:
 * 128 bytes for a 64-byte frame. A shutdown request on such a task records
 * the runtime's closing time as its request time and no shield time.
 *
 * Who touches what:
 *   1. `state` is atomic and follows the rules in task_state.h.
 *   2. `queue_next` belongs to whoever holds the notified reference (a queue);
 *      after completion, to the registry's hand-back stack (registry.h).
 *   3. `leaf`, `leaf_hook`, `leaf_withdrawing`, `suspended_at`, `shield_depth`
 *      and the record's shield times and await site belong to the holder of
 *      RUNNING, and so does the frame.
 *   4. The record's `requested_ns` is written once, by the request that set
 *      CANCEL_REQUESTED, just after it; readers treat 0 as "not known yet".
 *      It is on the precise monotonic clock when a trace is on or the task
 *      is shielded, else on the coarse one (runtime/cancel.c, request_time).
 *   5. The outcome (`value`, `status`, the record's shield time) is written by
 *      the holder of RUNNING before COMPLETE, read by the join side after it
 *      (task_state.h rule 5). `value` and `status` share their place with
 *      `leaf` and `leaf_hook`, which are dead once the last poll returned.
 *   6. `reg_slot` belongs to the owner of the task's registry shard
 *      (registry.h, rules 1-3).
 *   7. The token bindings are linked at spawn and unlinked by the holder of
 *      RUNNING before COMPLETE; while linked, each belongs to its token's lock
 *      (token.c).
 *   8. The times' `polled_ns` is written (relaxed) by the holder of RUNNING
 *      and read by the task dump from any thread; `suspended_at` and
 *      `shield_depth` too, so they are written and read with relaxed atomic
 *      accesses (weft__task_site, weft__task_shield_depth).
 *   9. Everything else is immutable after spawn.
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
    /* What scheduling, waking, polling and completing touch. */
    weft__state state;
    struct weft__task *queue_next;
    weft_poll_fn poll;
    weft_runtime *rt;
    union {
        struct {                        /* until the last poll returned */
            void *leaf;                 /* the leaf the task is suspended on */
            weft_cancel_hook leaf_hook;
        };
        struct {                        /* from COMPLETE on (rule 5) */
            int64_t value;
            int status;
        };
    };
    const weft_site *suspended_at;
    uint32_t reg_slot;
    uint16_t shield_depth;
    uint8_t nbindings;              /* token bindings before the header */
    bool leaf_withdrawing;
} weft__task;

_Static_assert(sizeof(weft__task) == 64, "the task header is one cache line");

/* LAYOUT bits of the state word: the optional parts before the header. */
#define WEFT__HAS_JOIN      ((uint64_t)1 << WEFT__LAYOUT_SHIFT)
#define WEFT__HAS_RECORD    ((uint64_t)2 << WEFT__LAYOUT_SHIFT)
#define WEFT__HAS_DROP      ((uint64_t)4 << WEFT__LAYOUT_SHIFT)
#define WEFT__HAS_NAME      ((uint64_t)8 << WEFT__LAYOUT_SHIFT)
#define WEFT__HAS_TIMES     ((uint64_t)16 << WEFT__LAYOUT_SHIFT)
#define WEFT__PARTS_END     ((uint64_t)32 << WEFT__LAYOUT_SHIFT)   /* where bindings start */

/* When and where a cancellation request met the task (rules 3-5). */
typedef struct weft__cancel_record {
    _Atomic uint64_t requested_ns;      /* 0 = not yet set */
    uint64_t shield_started_ns;         /* 0: the shield predates the request */
    uint64_t shield_held_ns;
    const weft_site *delivered_at;
} weft__cancel_record;

/* When the task was spawned and last polled, on the coarse monotonic clock
 * (weft__coarse_ns; rule 8), and the group it was spawned into (an id: its token's address;
 * 0 for none). */
typedef struct weft__task_times {
    uint64_t spawned_ns;
    _Atomic uint64_t polled_ns;         /* 0 = not polled yet */
    uintptr_t group;
} weft__task_times;

/* The frame starts right after the header, max-aligned. */
#define WEFT__FRAME_ALIGN 16
#define WEFT__FRAME_OFFSET sizeof(weft__task)
_Static_assert(WEFT__FRAME_OFFSET % WEFT__FRAME_ALIGN == 0, "the frame is max-aligned");

static inline void *weft__task_frame(weft__task *t)
{
    return (char *)t + WEFT__FRAME_OFFSET;
}

static inline uint64_t weft__task_layout(const weft__task *t)
{
    /* Relaxed: the LAYOUT bits never change after spawn. */
    return atomic_load_explicit(&((weft__task *)t)->state, memory_order_relaxed)
         & WEFT__LAYOUT_MASK;
}

/* Bytes of the optional parts before `part` (a HAS_* bit), nearest first. */
static inline size_t weft__task_part_offset(uint64_t layout, uint64_t part)
{
    size_t off = 0;
    if ((layout & WEFT__HAS_JOIN) && part > WEFT__HAS_JOIN)
        off += sizeof(weft_waker);
    if ((layout & WEFT__HAS_RECORD) && part > WEFT__HAS_RECORD)
        off += sizeof(weft__cancel_record);
    if ((layout & WEFT__HAS_DROP) && part > WEFT__HAS_DROP)
        off += sizeof(weft_drop_fn);
    if ((layout & WEFT__HAS_NAME) && part > WEFT__HAS_NAME)
        off += sizeof(const char *);
    if ((layout & WEFT__HAS_TIMES) && part > WEFT__HAS_TIMES)
        off += sizeof(weft__task_times);
    return off;
}

/* The join waker: only for a task spawned with a handle. */
static inline weft_waker *weft__task_join_waker(weft__task *t)
{
    return (weft_waker *)t - 1;
}

/* The cancellation record, or NULL for a task that has none. */
static inline weft__cancel_record *weft__task_record(weft__task *t)
{
    uint64_t layout = weft__task_layout(t);
    if (!(layout & WEFT__HAS_RECORD))
        return NULL;
    return (weft__cancel_record *)((char *)t - weft__task_part_offset(layout, WEFT__HAS_RECORD))
         - 1;
}

static inline weft_drop_fn weft__task_drop_fn(weft__task *t)
{
    uint64_t layout = weft__task_layout(t);
    if (!(layout & WEFT__HAS_DROP))
        return NULL;
    return *((weft_drop_fn *)((char *)t - weft__task_part_offset(layout, WEFT__HAS_DROP)) - 1);
}

static inline const char *weft__task_name(weft__task *t)
{
    uint64_t layout = weft__task_layout(t);
    if (!(layout & WEFT__HAS_NAME))
        return NULL;
    return *((const char **)((char *)t - weft__task_part_offset(layout, WEFT__HAS_NAME)) - 1);
}

/* The dump times, or NULL for a task that has none. */
static inline weft__task_times *weft__task_times_of(weft__task *t)
{
    uint64_t layout = weft__task_layout(t);
    if (!(layout & WEFT__HAS_TIMES))
        return NULL;
    return (weft__task_times *)((char *)t - weft__task_part_offset(layout, WEFT__HAS_TIMES)) - 1;
}

/* Rule 8: the fields the task dump reads while the task runs. */
static inline const weft_site *weft__task_site(const weft__task *t)
{
    return __atomic_load_n(&t->suspended_at, __ATOMIC_RELAXED);
}

static inline void weft__task_set_site(weft__task *t, const weft_site *site)
{
    __atomic_store_n(&t->suspended_at, site, __ATOMIC_RELAXED);
}

/* A shield depth that enters and exits leave alone: a task spawned
 * WEFT_TASK_SHIELDED (an unmatched exit must not lift its shield), or one
 * whose enters piled up past the counter (runtime/cancel.c). */
#define WEFT__SHIELD_STUCK UINT16_MAX

static inline uint16_t weft__task_shield_depth(const weft__task *t)
{
    return __atomic_load_n(&t->shield_depth, __ATOMIC_RELAXED);
}

static inline void weft__task_set_shield_depth(weft__task *t, uint16_t depth)
{
    __atomic_store_n(&t->shield_depth, depth, __ATOMIC_RELAXED);
}

struct weft__binding;

/* The token bindings, before the optional parts above (runtime/token.h). */
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
    bool yielded;       /* gave its worker back (a yield, or no budget left):
                           requeued only after what others sent (worker.c) */
    bool scope_stop;    /* weft_cx_cancel_due said yes for a scope's expiry */
};

void weft__cx_init(struct weft_cx *cx, weft__task *t, struct weft_worker *w);

/* Allocate and initialise a task from desc; NULL with *err set on failure. */
weft__task *weft__task_new(weft_runtime *rt, const weft_task_desc *desc, bool joinable,
                           int *err);

/* Drop one reference; frees the task on the last. */
void weft__task_unref(weft__task *t);
void weft__task_free(weft__task *t);
/* weft__task_free without asking the task dump (runtime/dump.h). */
void weft__task_free_now(weft__task *t);
/* Bytes from the frame to the end of the task's allocation: the frame and
 * at most the allocator's rounding (the task keeps no frame size). */
size_t weft__task_frame_room(weft__task *t);

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

/* The monotonic clock at the kernel tick's resolution (a few ms), for the
 * dump times: a memory read where the precise clock reads the TSC, and the
 * dump reports ages and idle times, where milliseconds are plenty. */
uint64_t weft__coarse_ns(void);

#endif /* WEFT_RUNTIME_TASK_H */
