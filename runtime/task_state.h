/*
 * runtime/task_state.h - the task state word: one atomic 64-bit word per task
 * holding its lifecycle bits, the few facts about it that never change, and
 * its reference count.
 *
 * Bits (low to high):
 *
 *   RUNNING          The poll lock. Set by the worker that is polling (or tearing
 *                    down) the task; only that worker touches the frame and the
 *                    leaf slot while it is set.
 *   COMPLETE         The task has finished: returned, been torn down, or been
 *                    dropped at shutdown. Once set it is never unset, and the
 *                    outcome fields are immutable.
 *   NOTIFIED         The task is queued, or must be requeued after the current
 *                    poll. While set with RUNNING clear, one reference is owned by
 *                    the queue that holds the task (the "notified reference").
 *   JOIN_INTEREST    A join handle exists and may still read the outcome.
 *   JOIN_WAKER       The join_waker field holds a waker. See the rules below.
 *   CANCEL_REQUESTED A cancellation request was recorded (sticky). The first
 *                    request wins; later ones change nothing.
 *   CANCEL_SAFE      Spawned with WEFT_TASK_CANCEL_SAFE: a request tears the task
 *                    down instead of being delivered at an await. Never changes.
 *   DETACHED         The handle was given up (spawn_detached or detach) while
 *                    the task was alive; informational, for traces and stats.
 *   bits 8..10       CANCEL_SOURCE: the weft_cancel_source of the first request,
 *                    set in the same CAS as CANCEL_REQUESTED, never changed.
 *   CANCEL_SEEN      The request took effect at an await or a tear-down and
 *                    its provenance was recorded (set once, by the holder of
 *                    RUNNING, so a level-triggered cancellation is traced once:
 *                    at an await with its own RMW, at a tear-down in the CAS
 *                    that completes the task, which saves one locked
 *                    instruction on the path every abort of a cancel-safe
 *                    task takes).
 *   bits 12..16      LAYOUT: which optional parts the task's allocation holds
 *                    before its header (runtime/task.h). Set at spawn, never
 *                    changed: any thread may read them with a relaxed load.
 *   bits 17..30      SHARD: the registry shard the task is in, set before the
 *                    task is inserted there and never changed (registry.h).
 *                    14 bits: a runtime has at most 4096 workers, so 4097 shards.
 *   SCOPE_EXPIRED    (bit 31) A deadline scope of the task expired and may
 *                    still be open (reactor/scope.c). Set by the worker that
 *                    fires the scope's timer, or by the task entering a scope
 *                    whose deadline has passed; cleared and recomputed by
 *                    the holder of RUNNING when a scope exits. It may be set
 *                    with no expired scope open (a firing that lost to the
 *                    exit): awaits then find nothing to deliver. Never set
 *                    while an expired scope is open and clear.
 *   bits 32..63      Reference count, in units of REF_ONE. An increment that
 *                    would pass 2^31 aborts: it can only be a waker leak.
 *
 * References: the registry holds one until the task completes; a queued task
 * holds one (the notified reference, which becomes the running reference while
 * it is polled); the join handle holds one; every waker holds one. The task is
 * freed when the count reaches zero.
 *
 * Rules for the join_waker field (who may touch it):
 *   1. While JOIN_WAKER is clear, only the join handle's owner may read or write
 *      join_waker.
 *   2. The join side sets JOIN_WAKER (CAS) only after writing join_waker, and
 *      only while COMPLETE is clear.
 *   3. While JOIN_WAKER is set and COMPLETE is clear, nobody writes join_waker;
 *      the join side may clear JOIN_WAKER (CAS requiring COMPLETE clear) to take
 *      the field back (rule 1).
 *   4. The completing worker sets COMPLETE; if JOIN_WAKER was set in that same
 *      transition, the field is now the completer's: it takes the waker and
 *      wakes it. The join side must not touch the field after it observed
 *      COMPLETE together with JOIN_WAKER.
 *   5. The outcome fields are written before COMPLETE is set (release) and read
 *      only after COMPLETE is observed (acquire).
 *
 * Every transition is one CAS loop or one RMW, and returns an outcome enum.
 */
#ifndef WEFT_RUNTIME_TASK_STATE_H
#define WEFT_RUNTIME_TASK_STATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft/task.h"

#define WEFT__RUNNING           ((uint64_t)1 << 0)
#define WEFT__COMPLETE          ((uint64_t)1 << 1)
#define WEFT__NOTIFIED          ((uint64_t)1 << 2)
#define WEFT__JOIN_INTEREST     ((uint64_t)1 << 3)
#define WEFT__JOIN_WAKER        ((uint64_t)1 << 4)
#define WEFT__CANCEL_REQUESTED  ((uint64_t)1 << 5)
#define WEFT__CANCEL_SAFE       ((uint64_t)1 << 6)
#define WEFT__DETACHED          ((uint64_t)1 << 7)
#define WEFT__SOURCE_SHIFT      8
#define WEFT__SOURCE_MASK       ((uint64_t)7 << WEFT__SOURCE_SHIFT)
#define WEFT__CANCEL_SEEN       ((uint64_t)1 << 11)
#define WEFT__LAYOUT_SHIFT      12
#define WEFT__LAYOUT_MASK       ((uint64_t)31 << WEFT__LAYOUT_SHIFT)
#define WEFT__SHARD_SHIFT       17
#define WEFT__SHARD_MASK        ((uint64_t)0x3fff << WEFT__SHARD_SHIFT)
#define WEFT__SCOPE_EXPIRED     ((uint64_t)1 << 31)
#define WEFT__FLAG_MASK         (((uint64_t)1 << WEFT__SHARD_SHIFT) - 1)
#define WEFT__REF_SHIFT         32
#define WEFT__REF_ONE           ((uint64_t)1 << WEFT__REF_SHIFT)

_Static_assert(WEFT__CANCEL_REQUESTED == WEFT__STATE_CANCEL_REQUESTED,
               "the inline await check in weft/task.h reads this bit");
_Static_assert(WEFT__SCOPE_EXPIRED == WEFT__STATE_SCOPE_EXPIRED,
               "the inline await check in weft/task.h reads this bit");
_Static_assert((WEFT__SHARD_MASK & WEFT__SCOPE_EXPIRED) == 0
               && (WEFT__SHARD_MASK | WEFT__SCOPE_EXPIRED | WEFT__FLAG_MASK) == 0xffffffffu,
               "the low half of the state word: flags, shard, scope bit");

typedef _Atomic uint64_t weft__state;

static inline uint64_t weft__state_refs(uint64_t s) { return s >> WEFT__REF_SHIFT; }

static inline uint32_t weft__state_shard(uint64_t s)
{
    return (uint32_t)((s & WEFT__SHARD_MASK) >> WEFT__SHARD_SHIFT);
}

static inline int weft__state_source(uint64_t s)
{
    return (int)((s & WEFT__SOURCE_MASK) >> WEFT__SOURCE_SHIFT);
}

/*
 * The initial word: queued (NOTIFIED, owning a reference), registered (one
 * reference), and with a join handle (JOIN_INTEREST and one reference) unless
 * detached; `layout` is the LAYOUT bits (task.h).
 */
uint64_t weft__state_initial(bool joinable, bool cancel_safe, uint64_t layout);

/* Registry insertion, before the task is linked anywhere (no other thread
 * can reach it yet): record its shard. */
void weft__state_set_shard(weft__state *s, uint32_t shard);

/* A cancellation took effect at an await: set CANCEL_SEEN. Returns true the
 * first time. (At a tear-down the completing CAS sets it instead: see
 * weft__state_to_complete_released.) */
bool weft__state_mark_cancel_seen(weft__state *s);

/* The holder of RUNNING asks whether a cancellation took effect before; only
 * it sets CANCEL_SEEN, so a relaxed load answers exactly. */
static inline bool weft__state_cancel_seen(weft__state *s)
{
    return atomic_load_explicit(s, memory_order_relaxed) & WEFT__CANCEL_SEEN;
}

typedef enum {
    WEFT__RUN_OK,           /* now RUNNING: poll it */
    WEFT__RUN_CANCELLED,    /* now RUNNING and a request is pending */
    WEFT__RUN_FAILED,       /* complete already; the notified ref was dropped */
    WEFT__RUN_DEALLOC,      /* as FAILED, and that was the last reference */
} weft__run_outcome;
weft__run_outcome weft__state_to_running(weft__state *s);

typedef enum {
    WEFT__IDLE_OK,          /* parked; the running reference was dropped */
    WEFT__IDLE_NOTIFIED,    /* woken during the poll: requeue (ref kept) */
} weft__idle_outcome;
weft__idle_outcome weft__state_to_idle(weft__state *s);

/* RUNNING -> NOTIFIED for a task that gave its worker back (a yield, or no
 * budget left): the running reference becomes the notified one, so the
 * caller requeues it. One CAS where a wake during the poll and then
 * weft__state_to_idle would take two. */
void weft__state_to_requeued(weft__state *s);

typedef enum {
    WEFT__DONE_RELEASED,    /* complete, and the references dropped */
    WEFT__DONE_LAST,        /* as RELEASED, and they were the last: free it */
    WEFT__DONE_WAKE_JOINER, /* complete, references kept: wake the joiner
                               (its waker lives in the task), then drop them */
} weft__done_outcome;

/* RUNNING -> COMPLETE (clears NOTIFIED; a task torn down by a cancellation
 * also gets CANCEL_SEEN here), dropping `refs` references in the same CAS
 * unless a joiner waits to be woken: the running one (refs == 1), and the
 * registry's too (refs == 2) when the completer has just unlinked the task
 * from the registry. */
weft__done_outcome weft__state_to_complete_released(weft__state *s, bool torn_down,
                                                    uint64_t refs);

typedef enum {
    WEFT__NOTIFY_NOTHING,   /* running, queued or complete: no action */
    WEFT__NOTIFY_SUBMIT,    /* caller must schedule; it holds the notified ref */
    WEFT__NOTIFY_DEALLOC,   /* by_val only: the dropped ref was the last one */
} weft__notify_outcome;
weft__notify_outcome weft__state_notify_by_ref(weft__state *s);
weft__notify_outcome weft__state_notify_by_val(weft__state *s);

typedef enum {
    WEFT__CANCEL_SUBMIT,    /* recorded; task was idle: schedule it (ref taken) */
    WEFT__CANCEL_NOTED,     /* recorded; running or queued: it will see it */
    WEFT__CANCEL_AGAIN,     /* an earlier request is already recorded */
    WEFT__CANCEL_FINISHED,  /* the task had completed: nothing to do */
} weft__cancel_outcome;
/* Record CANCEL_REQUESTED with `source` (a weft_cancel_source, 1..7). */
weft__cancel_outcome weft__state_request_cancel(weft__state *s, int source);

typedef enum {
    WEFT__JOIN_OK,          /* the bit changed */
    WEFT__JOIN_COMPLETE,    /* refused: the task completed first */
} weft__join_outcome;
weft__join_outcome weft__state_set_join_waker(weft__state *s);
weft__join_outcome weft__state_unset_join_waker(weft__state *s);
/* Drop JOIN_INTEREST (and JOIN_WAKER); set DETACHED if not complete. */
weft__join_outcome weft__state_drop_join_interest(weft__state *s, bool detach);

typedef enum {
    WEFT__CLAIM_OK,         /* idle task is now RUNNING; a reference was taken */
    WEFT__CLAIM_BUSY,       /* queued, running or complete: not claimable now */
} weft__claim_outcome;
/* Shutdown sweep only: take an idle (not queued) task without a notification. */
weft__claim_outcome weft__state_claim_idle(weft__state *s);

void weft__state_ref_inc(weft__state *s);
/* Returns true when that was the last reference. */
bool weft__state_ref_dec(weft__state *s);
bool weft__state_ref_dec_n(weft__state *s, uint64_t n);

#endif /* WEFT_RUNTIME_TASK_STATE_H */
