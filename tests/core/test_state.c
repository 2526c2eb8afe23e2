/*
 * tests/core/test_state.c - every transition of the task state word
 * (runtime/task_state.h) and each of its outcomes, on a bare word.
 */
#include <criterion/criterion.h>

#include "runtime/task_state.h"
#include "weft/runtime.h"
#include "test_util.h"

TestSuite(state, .timeout = 30);

#define R(n) ((uint64_t)(n) * WEFT__REF_ONE)

static weft__state st;

static void set(uint64_t v) { atomic_store(&st, v); }
static uint64_t get(void) { return atomic_load(&st); }
static uint64_t flags(void) { return get() & WEFT__FLAG_MASK; }
static uint64_t refs(void) { return weft__state_refs(get()); }

Test(state, bits_are_distinct_and_below_refcount)
{
    const uint64_t bits[] = { WEFT__RUNNING, WEFT__COMPLETE, WEFT__NOTIFIED,
                              WEFT__JOIN_INTEREST, WEFT__JOIN_WAKER,
                              WEFT__CANCEL_REQUESTED, WEFT__CANCEL_SAFE,
                              WEFT__DETACHED };
    uint64_t all = 0;
    for (size_t i = 0; i < sizeof bits / sizeof *bits; i++) {
        cr_assert_eq(all & bits[i], 0);
        cr_assert_eq(bits[i] & ~WEFT__FLAG_MASK, 0);
        cr_assert_eq(bits[i] & WEFT__SOURCE_MASK, 0);
        all |= bits[i];
    }
    cr_assert_eq(WEFT__SOURCE_MASK & ~WEFT__FLAG_MASK, 0);
    cr_assert_geq(WEFT__SOURCE_MASK >> WEFT__SOURCE_SHIFT, WEFT_CANCEL_SHUTDOWN);
    cr_assert_eq(WEFT__CANCEL_REQUESTED, WEFT__STATE_CANCEL_REQUESTED);
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, layout_has_five_bits_below_the_shard)
{
    cr_assert_eq(WEFT__LAYOUT_MASK >> WEFT__LAYOUT_SHIFT, 31);
    cr_assert_eq(WEFT__LAYOUT_MASK & ~WEFT__FLAG_MASK, 0);
    cr_assert_eq(WEFT__LAYOUT_MASK & WEFT__SHARD_MASK, 0);
    cr_assert_eq(WEFT__SHARD_SHIFT, 17);
    set(WEFT__LAYOUT_MASK | R(1));
    weft__state_set_shard(&st, 4096);
    cr_assert_eq(get() & WEFT__LAYOUT_MASK, WEFT__LAYOUT_MASK, "the shard left the layout alone");
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, scope_bit_sits_between_the_shard_and_the_refcount)
{
    cr_assert_eq(WEFT__SCOPE_EXPIRED, WEFT__STATE_SCOPE_EXPIRED);
    cr_assert_eq(WEFT__SCOPE_EXPIRED & (WEFT__FLAG_MASK | WEFT__SHARD_MASK), 0);
    cr_assert_lt(WEFT__SCOPE_EXPIRED, WEFT__REF_ONE);
    /* Every shard of the largest runtime (4096 workers and the outside one). */
    cr_assert_geq(WEFT__SHARD_MASK >> WEFT__SHARD_SHIFT, 4096);
    set(WEFT__SCOPE_EXPIRED | R(1));
    weft__state_set_shard(&st, 4096);
    cr_assert_eq(weft__state_shard(get()), 4096);
    cr_assert(get() & WEFT__SCOPE_EXPIRED, "recording the shard kept the scope bit");
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, transitions_keep_the_scope_bit)
{
    set(WEFT__NOTIFIED | WEFT__SCOPE_EXPIRED | R(3));
    cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_OK);
    cr_assert_eq(weft__state_to_idle(&st), WEFT__IDLE_OK);
    cr_assert(get() & WEFT__SCOPE_EXPIRED);
    cr_assert_eq(weft__state_request_cancel(&st, WEFT_CANCEL_ABORT), WEFT__CANCEL_SUBMIT);
    cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_CANCELLED);
    cr_assert_eq(weft__state_to_complete_released(&st, true, 1), WEFT__DONE_RELEASED);
    cr_assert(get() & WEFT__SCOPE_EXPIRED);
    cr_assert_eq(flags() & (WEFT__COMPLETE | WEFT__CANCEL_REQUESTED),
                 WEFT__COMPLETE | WEFT__CANCEL_REQUESTED);
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, initial)
{
    uint64_t s = weft__state_initial(true, false, 0);
    cr_assert_eq(s & WEFT__FLAG_MASK, WEFT__NOTIFIED | WEFT__JOIN_INTEREST);
    cr_assert_eq(weft__state_refs(s), 3);   /* registry, queue, handle */

    s = weft__state_initial(false, false, 0);
    cr_assert_eq(s & WEFT__FLAG_MASK, WEFT__NOTIFIED | WEFT__DETACHED);
    cr_assert_eq(weft__state_refs(s), 2);

    s = weft__state_initial(true, true, 0);
    cr_assert_eq(s & WEFT__FLAG_MASK, WEFT__NOTIFIED | WEFT__JOIN_INTEREST | WEFT__CANCEL_SAFE);
    cr_assert_eq(weft__state_refs(s), 3);

    s = weft__state_initial(false, true, 0);
    cr_assert_eq(s & WEFT__FLAG_MASK, WEFT__NOTIFIED | WEFT__DETACHED | WEFT__CANCEL_SAFE);
    cr_assert_eq(weft__state_refs(s), 2);
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, to_running_ok)
{
    set(weft__state_initial(true, true, 0));
    cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_OK);
    cr_assert_eq(flags(), WEFT__RUNNING | WEFT__JOIN_INTEREST | WEFT__CANCEL_SAFE);
    cr_assert_eq(refs(), 3);    /* the notified ref became the running ref */
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, to_running_cancelled)
{
    set(WEFT__NOTIFIED | WEFT__CANCEL_REQUESTED | R(2));
    cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_CANCELLED);
    cr_assert_eq(flags(), WEFT__RUNNING | WEFT__CANCEL_REQUESTED);
    cr_assert_eq(refs(), 2);
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, to_running_failed_and_dealloc_on_complete)
{
    set(WEFT__COMPLETE | WEFT__NOTIFIED | R(2));
    cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_FAILED);
    cr_assert_eq(flags(), WEFT__COMPLETE);
    cr_assert_eq(refs(), 1);

    set(WEFT__COMPLETE | R(1));
    cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_DEALLOC);
    cr_assert_eq(flags(), WEFT__COMPLETE);
    cr_assert_eq(refs(), 0);

    /* Queued while another thread holds RUNNING (shutdown claim): dropped. */
    set(WEFT__RUNNING | WEFT__NOTIFIED | R(3));
    cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_FAILED);
    cr_assert_eq(flags(), WEFT__RUNNING);
    cr_assert_eq(refs(), 2);
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, to_idle_ok_drops_running_ref)
{
    set(WEFT__RUNNING | WEFT__JOIN_INTEREST | R(3));
    cr_assert_eq(weft__state_to_idle(&st), WEFT__IDLE_OK);
    cr_assert_eq(flags(), WEFT__JOIN_INTEREST);
    cr_assert_eq(refs(), 2);
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, to_idle_notified_keeps_ref)
{
    set(WEFT__RUNNING | WEFT__NOTIFIED | WEFT__CANCEL_SAFE | R(2));
    cr_assert_eq(weft__state_to_idle(&st), WEFT__IDLE_NOTIFIED);
    cr_assert_eq(flags(), WEFT__NOTIFIED | WEFT__CANCEL_SAFE);
    cr_assert_eq(refs(), 2);
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, to_complete)
{
    set(WEFT__RUNNING | WEFT__NOTIFIED | WEFT__JOIN_INTEREST | WEFT__JOIN_WAKER
        | WEFT__CANCEL_REQUESTED | R(3));
    cr_assert_eq(weft__state_to_complete_released(&st, false, 2), WEFT__DONE_WAKE_JOINER);
    cr_assert_eq(flags(), WEFT__COMPLETE | WEFT__JOIN_INTEREST | WEFT__JOIN_WAKER
                          | WEFT__CANCEL_REQUESTED);
    cr_assert_eq(refs(), 3);
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, to_complete_after_a_tear_down_marks_the_cancellation_seen)
{
    set(WEFT__RUNNING | WEFT__CANCEL_SAFE | WEFT__CANCEL_REQUESTED | R(2));
    cr_assert_not(weft__state_cancel_seen(&st));
    cr_assert_eq(weft__state_to_complete_released(&st, true, 1), WEFT__DONE_RELEASED);
    cr_assert_eq(flags(), WEFT__COMPLETE | WEFT__CANCEL_SAFE | WEFT__CANCEL_REQUESTED
                          | WEFT__CANCEL_SEEN);
    cr_assert(weft__state_cancel_seen(&st));
    cr_assert_eq(refs(), 1);
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, to_complete_released_drops_both_references_unless_a_joiner_waits)
{
    /* Detached, nobody else holds it: the completer frees it. */
    set(WEFT__RUNNING | R(2));
    cr_assert_eq(weft__state_to_complete_released(&st, false, 2), WEFT__DONE_LAST);
    cr_assert_eq(flags(), WEFT__COMPLETE);
    cr_assert_eq(refs(), 0);

    /* A handle that does not wait: its reference stays, the others go. */
    set(WEFT__RUNNING | WEFT__NOTIFIED | WEFT__JOIN_INTEREST | R(3));
    cr_assert_eq(weft__state_to_complete_released(&st, false, 2), WEFT__DONE_RELEASED);
    cr_assert_eq(flags(), WEFT__COMPLETE | WEFT__JOIN_INTEREST);
    cr_assert_eq(refs(), 1);

    /* A joiner waits: its waker lives in the task, so every reference stays
     * until the caller has woken it. */
    set(WEFT__RUNNING | WEFT__JOIN_INTEREST | WEFT__JOIN_WAKER | R(3));
    cr_assert_eq(weft__state_to_complete_released(&st, false, 2), WEFT__DONE_WAKE_JOINER);
    cr_assert_eq(flags(), WEFT__COMPLETE | WEFT__JOIN_INTEREST | WEFT__JOIN_WAKER);
    cr_assert_eq(refs(), 3);

    /* Away from its owner: only the running reference goes, the registry's
     * stays for the owner, so the task cannot be freed here. */
    set(WEFT__RUNNING | R(2));
    cr_assert_eq(weft__state_to_complete_released(&st, false, 1), WEFT__DONE_RELEASED);
    cr_assert_eq(refs(), 1);

    /* A tear-down marks the cancellation seen in the same CAS. */
    set(WEFT__RUNNING | WEFT__CANCEL_SAFE | WEFT__CANCEL_REQUESTED | R(2));
    cr_assert_eq(weft__state_to_complete_released(&st, true, 2), WEFT__DONE_LAST);
    cr_assert_eq(flags(), WEFT__COMPLETE | WEFT__CANCEL_SAFE | WEFT__CANCEL_REQUESTED
                          | WEFT__CANCEL_SEEN);
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, notify_by_ref_each_state)
{
    /* idle: submit, taking a reference for the queue */
    set(WEFT__JOIN_INTEREST | R(2));
    cr_assert_eq(weft__state_notify_by_ref(&st), WEFT__NOTIFY_SUBMIT);
    cr_assert_eq(flags(), WEFT__JOIN_INTEREST | WEFT__NOTIFIED);
    cr_assert_eq(refs(), 3);
    /* notified: nothing */
    cr_assert_eq(weft__state_notify_by_ref(&st), WEFT__NOTIFY_NOTHING);
    cr_assert_eq(flags(), WEFT__JOIN_INTEREST | WEFT__NOTIFIED);
    cr_assert_eq(refs(), 3);
    /* running: marked for requeue, no reference */
    set(WEFT__RUNNING | R(2));
    cr_assert_eq(weft__state_notify_by_ref(&st), WEFT__NOTIFY_NOTHING);
    cr_assert_eq(flags(), WEFT__RUNNING | WEFT__NOTIFIED);
    cr_assert_eq(refs(), 2);
    /* running and already notified: unchanged */
    cr_assert_eq(weft__state_notify_by_ref(&st), WEFT__NOTIFY_NOTHING);
    cr_assert_eq(flags(), WEFT__RUNNING | WEFT__NOTIFIED);
    /* complete: unchanged */
    set(WEFT__COMPLETE | R(1));
    cr_assert_eq(weft__state_notify_by_ref(&st), WEFT__NOTIFY_NOTHING);
    cr_assert_eq(get(), WEFT__COMPLETE | R(1));
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, notify_by_val_each_state)
{
    /* idle: our reference becomes the queue's */
    set(R(2));
    cr_assert_eq(weft__state_notify_by_val(&st), WEFT__NOTIFY_SUBMIT);
    cr_assert_eq(flags(), WEFT__NOTIFIED);
    cr_assert_eq(refs(), 2);
    /* notified: our reference is dropped */
    cr_assert_eq(weft__state_notify_by_val(&st), WEFT__NOTIFY_NOTHING);
    cr_assert_eq(flags(), WEFT__NOTIFIED);
    cr_assert_eq(refs(), 1);
    /* running: marked, reference dropped */
    set(WEFT__RUNNING | R(3));
    cr_assert_eq(weft__state_notify_by_val(&st), WEFT__NOTIFY_NOTHING);
    cr_assert_eq(flags(), WEFT__RUNNING | WEFT__NOTIFIED);
    cr_assert_eq(refs(), 2);
    /* complete: dropped; the last one says dealloc */
    set(WEFT__COMPLETE | R(2));
    cr_assert_eq(weft__state_notify_by_val(&st), WEFT__NOTIFY_NOTHING);
    cr_assert_eq(refs(), 1);
    cr_assert_eq(weft__state_notify_by_val(&st), WEFT__NOTIFY_DEALLOC);
    cr_assert_eq(refs(), 0);
    cr_assert_eq(flags(), WEFT__COMPLETE);
    WEFT_ASSERT_NO_LEAKS();
}

#define SRC(x) ((uint64_t)(x) << WEFT__SOURCE_SHIFT)

Test(state, request_cancel_outcomes)
{
    /* idle: submit, with a reference for the queue; the source is recorded */
    set(WEFT__JOIN_INTEREST | R(2));
    cr_assert_eq(weft__state_request_cancel(&st, WEFT_CANCEL_ABORT), WEFT__CANCEL_SUBMIT);
    cr_assert_eq(flags(), WEFT__JOIN_INTEREST | WEFT__CANCEL_REQUESTED | WEFT__NOTIFIED
                          | SRC(WEFT_CANCEL_ABORT));
    cr_assert_eq(weft__state_source(get()), WEFT_CANCEL_ABORT);
    cr_assert_eq(refs(), 3);
    /* already requested: the first source stays */
    cr_assert_eq(weft__state_request_cancel(&st, WEFT_CANCEL_SHUTDOWN), WEFT__CANCEL_AGAIN);
    cr_assert_eq(flags(), WEFT__JOIN_INTEREST | WEFT__CANCEL_REQUESTED | WEFT__NOTIFIED
                          | SRC(WEFT_CANCEL_ABORT));
    cr_assert_eq(refs(), 3);
    /* running: noted, marked for requeue, no reference */
    set(WEFT__RUNNING | R(2));
    cr_assert_eq(weft__state_request_cancel(&st, WEFT_CANCEL_SHUTDOWN), WEFT__CANCEL_NOTED);
    cr_assert_eq(flags(), WEFT__RUNNING | WEFT__CANCEL_REQUESTED | WEFT__NOTIFIED
                          | SRC(WEFT_CANCEL_SHUTDOWN));
    cr_assert_eq(refs(), 2);
    /* queued: noted */
    set(WEFT__NOTIFIED | R(2));
    cr_assert_eq(weft__state_request_cancel(&st, WEFT_CANCEL_TOKEN), WEFT__CANCEL_NOTED);
    cr_assert_eq(flags(), WEFT__NOTIFIED | WEFT__CANCEL_REQUESTED | SRC(WEFT_CANCEL_TOKEN));
    cr_assert_eq(refs(), 2);
    /* complete: finished, unchanged, no source recorded */
    set(WEFT__COMPLETE | R(1));
    cr_assert_eq(weft__state_request_cancel(&st, WEFT_CANCEL_ABORT), WEFT__CANCEL_FINISHED);
    cr_assert_eq(get(), WEFT__COMPLETE | R(1));
    cr_assert_eq(weft__state_source(get()), WEFT_CANCEL_NONE);
    set(WEFT__COMPLETE | WEFT__CANCEL_REQUESTED | SRC(WEFT_CANCEL_GROUP) | R(1));
    cr_assert_eq(weft__state_request_cancel(&st, WEFT_CANCEL_ABORT), WEFT__CANCEL_FINISHED);
    cr_assert_eq(weft__state_source(get()), WEFT_CANCEL_GROUP);
    /* cancel-safe bit is kept */
    set(WEFT__CANCEL_SAFE | R(2));
    cr_assert_eq(weft__state_request_cancel(&st, WEFT_CANCEL_TIMEOUT), WEFT__CANCEL_SUBMIT);
    cr_assert(flags() & WEFT__CANCEL_SAFE);
    cr_assert_eq(weft__state_source(get()), WEFT_CANCEL_TIMEOUT);
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, every_source_round_trips)
{
    for (int src = WEFT_CANCEL_ABORT; src <= WEFT_CANCEL_SHUTDOWN; src++) {
        set(R(2));
        cr_assert_eq(weft__state_request_cancel(&st, src), WEFT__CANCEL_SUBMIT);
        cr_assert_eq(weft__state_source(get()), src);
        cr_assert_eq(refs(), 3, "the source bits do not leak into the refcount");
        /* later transitions keep it */
        cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_CANCELLED);
        cr_assert_eq(weft__state_to_complete_released(&st, false, 1), WEFT__DONE_RELEASED);
        cr_assert_eq(weft__state_source(get()), src);
    }
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, join_waker_set_unset)
{
    set(WEFT__JOIN_INTEREST | R(3));
    cr_assert_eq(weft__state_set_join_waker(&st), WEFT__JOIN_OK);
    cr_assert_eq(flags(), WEFT__JOIN_INTEREST | WEFT__JOIN_WAKER);
    cr_assert_eq(weft__state_unset_join_waker(&st), WEFT__JOIN_OK);
    cr_assert_eq(flags(), WEFT__JOIN_INTEREST);
    cr_assert_eq(refs(), 3);

    /* Completed first: set is refused and changes nothing. */
    set(WEFT__JOIN_INTEREST | WEFT__COMPLETE | R(1));
    cr_assert_eq(weft__state_set_join_waker(&st), WEFT__JOIN_COMPLETE);
    cr_assert_eq(flags(), WEFT__JOIN_INTEREST | WEFT__COMPLETE);

    /* Completed with the waker installed: unset is refused, the bit stays
     * (the completer owns the field, rule 4). */
    set(WEFT__JOIN_INTEREST | WEFT__JOIN_WAKER | WEFT__COMPLETE | R(1));
    cr_assert_eq(weft__state_unset_join_waker(&st), WEFT__JOIN_COMPLETE);
    cr_assert_eq(flags(), WEFT__JOIN_INTEREST | WEFT__JOIN_WAKER | WEFT__COMPLETE);
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, drop_join_interest)
{
    set(WEFT__JOIN_INTEREST | WEFT__JOIN_WAKER | WEFT__NOTIFIED | R(3));
    cr_assert_eq(weft__state_drop_join_interest(&st, true), WEFT__JOIN_OK);
    cr_assert_eq(flags(), WEFT__NOTIFIED | WEFT__DETACHED);
    cr_assert_eq(refs(), 3);    /* the caller drops its reference itself */

    set(WEFT__JOIN_INTEREST | WEFT__RUNNING | R(3));
    cr_assert_eq(weft__state_drop_join_interest(&st, false), WEFT__JOIN_OK);
    cr_assert_eq(flags(), WEFT__RUNNING);

    set(WEFT__JOIN_INTEREST | WEFT__JOIN_WAKER | WEFT__COMPLETE | R(1));
    cr_assert_eq(weft__state_drop_join_interest(&st, true), WEFT__JOIN_COMPLETE);
    cr_assert_eq(flags(), WEFT__JOIN_INTEREST | WEFT__JOIN_WAKER | WEFT__COMPLETE);
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, claim_idle)
{
    set(WEFT__JOIN_INTEREST | WEFT__CANCEL_REQUESTED | R(2));
    cr_assert_eq(weft__state_claim_idle(&st), WEFT__CLAIM_OK);
    cr_assert_eq(flags(), WEFT__JOIN_INTEREST | WEFT__CANCEL_REQUESTED | WEFT__RUNNING);
    cr_assert_eq(refs(), 3);

    const uint64_t busy[] = { WEFT__RUNNING, WEFT__NOTIFIED, WEFT__COMPLETE,
                              WEFT__RUNNING | WEFT__NOTIFIED };
    for (size_t i = 0; i < sizeof busy / sizeof *busy; i++) {
        set(busy[i] | R(2));
        cr_assert_eq(weft__state_claim_idle(&st), WEFT__CLAIM_BUSY, "state %#lx",
                     (unsigned long)busy[i]);
        cr_assert_eq(get(), busy[i] | R(2));
    }
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, refcounts)
{
    set(WEFT__NOTIFIED | R(1));
    weft__state_ref_inc(&st);
    weft__state_ref_inc(&st);
    cr_assert_eq(refs(), 3);
    cr_assert_eq(flags(), WEFT__NOTIFIED);
    cr_assert_not(weft__state_ref_dec(&st));
    cr_assert_eq(refs(), 2);
    cr_assert_not(weft__state_ref_dec_n(&st, 1));
    cr_assert(weft__state_ref_dec(&st));
    cr_assert_eq(refs(), 0);
    cr_assert_eq(flags(), WEFT__NOTIFIED);

    set(R(5));
    cr_assert_not(weft__state_ref_dec_n(&st, 3));
    cr_assert(weft__state_ref_dec_n(&st, 2));
    cr_assert_eq(get(), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(state, whole_life_of_a_joined_task)
{
    /* spawn -> poll (pending) -> woken -> poll -> complete -> joined */
    set(weft__state_initial(true, false, 0));                 /* refs 3 */
    cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_OK);
    weft__state_ref_inc(&st);                              /* a waker: 4 */
    cr_assert_eq(weft__state_to_idle(&st), WEFT__IDLE_OK); /* 3 */
    cr_assert_eq(refs(), 3);
    cr_assert_eq(weft__state_set_join_waker(&st), WEFT__JOIN_OK);
    cr_assert_eq(weft__state_notify_by_val(&st), WEFT__NOTIFY_SUBMIT); /* 3 */
    cr_assert_eq(weft__state_to_running(&st), WEFT__RUN_OK);
    /* the joiner waits: the references stay until its waker was woken */
    cr_assert_eq(weft__state_to_complete_released(&st, false, 2), WEFT__DONE_WAKE_JOINER);
    cr_assert_not(weft__state_ref_dec_n(&st, 2));          /* registry + running */
    cr_assert_eq(refs(), 1);
    cr_assert(weft__state_ref_dec(&st));                   /* the handle */
    WEFT_ASSERT_NO_LEAKS();
}
