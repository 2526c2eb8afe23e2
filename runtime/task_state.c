/*
 * runtime/task_state.c - the transitions of the task state word.
 *
 * Orderings: transitions that hand the task (and its frame) from one thread to
 * another use acq_rel; reference increments are relaxed because the caller
 * already holds a reference; the decrement that may free is acq_rel so the freeing
 * thread sees every write made under the other references.
 */
#include "runtime/task_state.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

uint64_t weft__state_initial(bool joinable, bool cancel_safe, uint64_t layout)
{
    assert((layout & ~WEFT__LAYOUT_MASK) == 0);
    uint64_t s = WEFT__NOTIFIED | 2 * WEFT__REF_ONE | layout;
    if (joinable)
        s += WEFT__JOIN_INTEREST + WEFT__REF_ONE;
    else
        s |= WEFT__DETACHED;
    if (cancel_safe)
        s |= WEFT__CANCEL_SAFE;
    return s;
}

weft__run_outcome weft__state_to_running(weft__state *s)
{
    uint64_t cur = atomic_load_explicit(s, memory_order_acquire), next;
    for (;;) {
        assert(cur & WEFT__NOTIFIED || cur & WEFT__COMPLETE);
        if (cur & (WEFT__RUNNING | WEFT__COMPLETE)) {
            next = (cur & ~WEFT__NOTIFIED) - WEFT__REF_ONE;
        } else {
            next = (cur & ~WEFT__NOTIFIED) | WEFT__RUNNING;
        }
        if (atomic_compare_exchange_weak_explicit(s, &cur, next, memory_order_acq_rel,
                                                  memory_order_acquire))
            break;
    }
    if (cur & (WEFT__RUNNING | WEFT__COMPLETE))
        return weft__state_refs(next) == 0 ? WEFT__RUN_DEALLOC : WEFT__RUN_FAILED;
    return (cur & WEFT__CANCEL_REQUESTED) ? WEFT__RUN_CANCELLED : WEFT__RUN_OK;
}

weft__idle_outcome weft__state_to_idle(weft__state *s)
{
    uint64_t cur = atomic_load_explicit(s, memory_order_relaxed), next;
    for (;;) {
        assert(cur & WEFT__RUNNING);
        next = cur & ~WEFT__RUNNING;
        /* Woken during the poll: the running reference becomes the notified one. */
        if (!(cur & WEFT__NOTIFIED)) {
            assert(weft__state_refs(cur) > 1);  /* the registry still holds one */
            next -= WEFT__REF_ONE;
        }
        if (atomic_compare_exchange_weak_explicit(s, &cur, next, memory_order_acq_rel,
                                                  memory_order_relaxed))
            break;
    }
    return (cur & WEFT__NOTIFIED) ? WEFT__IDLE_NOTIFIED : WEFT__IDLE_OK;
}

void weft__state_to_requeued(weft__state *s)
{
    uint64_t cur = atomic_load_explicit(s, memory_order_relaxed), next;
    do {
        assert(cur & WEFT__RUNNING);
        next = (cur & ~WEFT__RUNNING) | WEFT__NOTIFIED;
    } while (!atomic_compare_exchange_weak_explicit(s, &cur, next, memory_order_acq_rel,
                                                    memory_order_relaxed));
}

weft__done_outcome weft__state_to_complete_released(weft__state *s, bool torn_down,
                                                    uint64_t refs)
{
    uint64_t cur = atomic_load_explicit(s, memory_order_relaxed), next;
    uint64_t set = WEFT__COMPLETE | (torn_down ? WEFT__CANCEL_SEEN : 0);
    bool wake;
    do {
        assert(cur & WEFT__RUNNING && !(cur & WEFT__COMPLETE));
        wake = (cur & WEFT__JOIN_INTEREST) && (cur & WEFT__JOIN_WAKER);
        next = (cur & ~(WEFT__RUNNING | WEFT__NOTIFIED)) | set;
        if (!wake) {
            assert(weft__state_refs(cur) >= refs);
            next -= refs * WEFT__REF_ONE;
        }
    } while (!atomic_compare_exchange_weak_explicit(s, &cur, next, memory_order_acq_rel,
                                                    memory_order_relaxed));
    if (wake)
        return WEFT__DONE_WAKE_JOINER;
    return weft__state_refs(next) == 0 ? WEFT__DONE_LAST : WEFT__DONE_RELEASED;
}

weft__notify_outcome weft__state_notify_by_ref(weft__state *s)
{
    uint64_t cur = atomic_load_explicit(s, memory_order_relaxed), next;
    for (;;) {
        if (cur & (WEFT__COMPLETE | WEFT__NOTIFIED))
            return WEFT__NOTIFY_NOTHING;
        next = cur | WEFT__NOTIFIED;
        if (!(cur & WEFT__RUNNING))
            next += WEFT__REF_ONE;
        if (atomic_compare_exchange_weak_explicit(s, &cur, next, memory_order_acq_rel,
                                                  memory_order_relaxed))
            break;
    }
    return (cur & WEFT__RUNNING) ? WEFT__NOTIFY_NOTHING : WEFT__NOTIFY_SUBMIT;
}

weft__notify_outcome weft__state_notify_by_val(weft__state *s)
{
    uint64_t cur = atomic_load_explicit(s, memory_order_relaxed), next;
    for (;;) {
        if (cur & WEFT__RUNNING) {
            /* The poller requeues it; our reference is not needed. */
            next = (cur | WEFT__NOTIFIED) - WEFT__REF_ONE;
        } else if (cur & (WEFT__COMPLETE | WEFT__NOTIFIED)) {
            next = cur - WEFT__REF_ONE;
        } else {
            next = cur | WEFT__NOTIFIED;    /* our reference becomes the queue's */
        }
        if (atomic_compare_exchange_weak_explicit(s, &cur, next, memory_order_acq_rel,
                                                  memory_order_relaxed))
            break;
    }
    if (!(cur & (WEFT__RUNNING | WEFT__COMPLETE | WEFT__NOTIFIED)))
        return WEFT__NOTIFY_SUBMIT;
    return weft__state_refs(next) == 0 ? WEFT__NOTIFY_DEALLOC : WEFT__NOTIFY_NOTHING;
}

weft__cancel_outcome weft__state_request_cancel(weft__state *s, int source)
{
    uint64_t bits = WEFT__CANCEL_REQUESTED | WEFT__NOTIFIED
                  | (((uint64_t)source << WEFT__SOURCE_SHIFT) & WEFT__SOURCE_MASK);
    uint64_t cur = atomic_load_explicit(s, memory_order_relaxed), next;
    for (;;) {
        if (cur & WEFT__COMPLETE)
            return WEFT__CANCEL_FINISHED;
        if (cur & WEFT__CANCEL_REQUESTED)
            return WEFT__CANCEL_AGAIN;
        next = cur | bits;
        if (!(cur & (WEFT__RUNNING | WEFT__NOTIFIED)))
            next += WEFT__REF_ONE;
        if (atomic_compare_exchange_weak_explicit(s, &cur, next, memory_order_acq_rel,
                                                  memory_order_relaxed))
            break;
    }
    return (cur & (WEFT__RUNNING | WEFT__NOTIFIED)) ? WEFT__CANCEL_NOTED : WEFT__CANCEL_SUBMIT;
}

weft__join_outcome weft__state_set_join_waker(weft__state *s)
{
    /* Acquire: a COMPLETE seen here must make the outcome visible (rule 5). */
    uint64_t cur = atomic_load_explicit(s, memory_order_acquire);
    do {
        assert(cur & WEFT__JOIN_INTEREST && !(cur & WEFT__JOIN_WAKER));
        if (cur & WEFT__COMPLETE)
            return WEFT__JOIN_COMPLETE;
    } while (!atomic_compare_exchange_weak_explicit(s, &cur, cur | WEFT__JOIN_WAKER,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire));
    return WEFT__JOIN_OK;
}

weft__join_outcome weft__state_unset_join_waker(weft__state *s)
{
    uint64_t cur = atomic_load_explicit(s, memory_order_acquire);
    do {
        assert(cur & WEFT__JOIN_WAKER);
        if (cur & WEFT__COMPLETE)
            return WEFT__JOIN_COMPLETE;
    } while (!atomic_compare_exchange_weak_explicit(s, &cur, cur & ~WEFT__JOIN_WAKER,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire));
    return WEFT__JOIN_OK;
}

weft__join_outcome weft__state_drop_join_interest(weft__state *s, bool detach)
{
    uint64_t cur = atomic_load_explicit(s, memory_order_acquire), next;
    do {
        if (cur & WEFT__COMPLETE)
            return WEFT__JOIN_COMPLETE;
        next = cur & ~(WEFT__JOIN_INTEREST | WEFT__JOIN_WAKER);
        if (detach)
            next |= WEFT__DETACHED;
    } while (!atomic_compare_exchange_weak_explicit(s, &cur, next, memory_order_acq_rel,
                                                    memory_order_acquire));
    return WEFT__JOIN_OK;
}

weft__claim_outcome weft__state_claim_idle(weft__state *s)
{
    uint64_t cur = atomic_load_explicit(s, memory_order_acquire);
    do {
        if (cur & (WEFT__RUNNING | WEFT__COMPLETE | WEFT__NOTIFIED))
            return WEFT__CLAIM_BUSY;
    } while (!atomic_compare_exchange_weak_explicit(s, &cur,
                                                    (cur | WEFT__RUNNING) + WEFT__REF_ONE,
                                                    memory_order_acq_rel,
                                                    memory_order_acquire));
    return WEFT__CLAIM_OK;
}

void weft__state_set_shard(weft__state *s, uint32_t shard)
{
    /* A load and a store, no RMW: the task is in no registry, token or queue
     * yet, so nothing else can be changing the word (the caller's contract). */
    uint64_t cur = atomic_load_explicit(s, memory_order_relaxed) & ~WEFT__SHARD_MASK;
    atomic_store_explicit(s, cur | (uint64_t)shard << WEFT__SHARD_SHIFT, memory_order_relaxed);
}

bool weft__state_mark_cancel_seen(weft__state *s)
{
    /* Only the holder of RUNNING sets it, once per task, on a cancel path. */
    uint64_t prev = atomic_fetch_or_explicit(s, WEFT__CANCEL_SEEN, memory_order_relaxed);
    return !(prev & WEFT__CANCEL_SEEN);
}

void weft__state_ref_inc(weft__state *s)
{
    /* Relaxed: the caller already holds a reference that keeps the task alive. */
    uint64_t prev = atomic_fetch_add_explicit(s, WEFT__REF_ONE, memory_order_relaxed);
    assert(weft__state_refs(prev) > 0);
    if (__builtin_expect(weft__state_refs(prev) >= (UINT64_C(1) << 31), 0)) {
        /* Far past any real count: wakers are being cloned and never dropped,
         * and the next 2^31 would wrap the count to zero and free a live task. */
        fputs("weft: task reference count overflow (leaked wakers?)\n", stderr);
        abort();
    }
}

bool weft__state_ref_dec(weft__state *s)
{
    return weft__state_ref_dec_n(s, 1);
}

bool weft__state_ref_dec_n(weft__state *s, uint64_t n)
{
    uint64_t prev = atomic_fetch_sub_explicit(s, n * WEFT__REF_ONE, memory_order_acq_rel);
    assert(weft__state_refs(prev) >= n);
    return weft__state_refs(prev) == n;
}
