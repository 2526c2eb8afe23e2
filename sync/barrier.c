/*
 * sync/barrier.c - the barrier: `parties` arrivals per generation; the last
 * arrival trips it, is told it leads, and releases the others.
 *
 * The weft_barrier struct is the caller's; its lock word (sync/lock.h)
 * guards every other field and the state of every waiter node linked to it.
 * There are no other atomics: the lock word's acquire/release orderings
 * (lock.h) publish everything below.
 *
 * A weft_barrier_waiter moves through these states; the node state is
 * written under the lock, weft_owner and weft_generation by the waiting task
 * (its poll or its withdrawal hook) under the lock as well:
 *
 *   IDLE --(last arrival: trips)---------------------> IDLE, yields LEADER
 *   IDLE --(else: arrives)--> QUEUED --(tripped)-----> RELEASED
 *                               +---(withdrawn)------> IDLE, -ECANCELED
 *   RELEASED --(re-poll, or withdrawn: RACED)--------> IDLE, yields 0
 *
 * Invariants:
 *   1. weft_arrived counts the QUEUED nodes of the current generation, and
 *      stays below weft_parties: the arrival that would make it equal trips
 *      the barrier instead of queueing (so the leader never waits).
 *   2. Tripping bumps weft_generation and zeroes weft_arrived in one lock
 *      hold; from then on, a node whose weft_generation is older has passed
 *      the barrier even while it is still linked (the release loop unlinks
 *      them a batch per lock hold). Old nodes are always at the front of the
 *      list, so the release loop stops at the first current one.
 *   3. Only a withdrawal of a current-generation node takes an arrival back;
 *      an old one has passed and is reported (RACED).
 *   4. weft_inflight counts the nodes whose weft_owner is set (QUEUED or
 *      RELEASED): arriving adds 1, settling (the poll that reports the pass,
 *      or the withdrawal that ends the wait) takes 1 away. A RELEASED node is
 *      unlinked but still points here, so destroy checks this count.
 */
#include <errno.h>
#include <stddef.h>

#include "sync/batch.h"
#include "sync/inspect_waits.h"
#include "sync/lock.h"
#include "sync/waitq.h"
#include "weft/sync.h"

enum { RELEASED = 2 };

static weft_barrier_waiter *waiter_of(weft_wait_node *n)
{
    return (weft_barrier_waiter *)((char *)n - offsetof(weft_barrier_waiter, weft_node));
}

int weft_barrier_init(weft_barrier *b, uint32_t parties)
{
    if (!b || parties == 0)
        return -EINVAL;
    *b = (weft_barrier)WEFT_BARRIER_INIT(parties);
    return 0;
}

int weft_barrier_destroy(weft_barrier *b)
{
    if (!b)
        return -EINVAL;
    weft__lock(&b->weft_lock);
    bool busy = b->weft_inflight > 0;     /* rule 4 */
    weft__unlock(&b->weft_lock);
    return busy ? -EBUSY : 0;
}

/* The wait in flight is over (rule 4). Lock held. */
static void settle_idle(weft_barrier *b, weft_barrier_waiter *w)
{
    b->weft_inflight--;
    w->weft_node.weft_state = WEFT__WAIT_IDLE;
    w->weft_owner = NULL;
}

/* A linked node that passed the barrier (rule 2): unlink it as RELEASED,
 * returning its waker. Lock held. */
static weft_waker release_node(weft_barrier *b, weft_wait_node *n)
{
    weft__waitq_remove(&b->weft_waiters, n);
    n->weft_state = RELEASED;
    return weft__wait_take_waker(n);
}

/* Trip (rule 2), then unlock and wake the released waiters a batch per lock
 * hold. Called with the lock held; returns with it released. */
static void trip_unlock(weft_barrier *b)
{
    uint64_t generation = ++b->weft_generation;
    b->weft_arrived = 0;
    for (;;) {
        weft__batch batch = { .n = 0 };
        weft_wait_node *head;
        while (!weft__batch_full(&batch) && (head = b->weft_waiters.weft_head) != NULL
               && waiter_of(head)->weft_generation < generation)
            weft__batch_add(&batch, release_node(b, head));
        bool more = weft__batch_full(&batch);
        weft__unlock(&b->weft_lock);
        weft__batch_run(&batch);
        if (!more)
            return;
        weft__lock(&b->weft_lock);
    }
}

static weft_withdraw wait_withdraw(weft_cx *cx, void *leaf)
{
    weft_barrier_waiter *w = leaf;
    weft_barrier *b = w->weft_owner;
    if (!b)
        return WEFT_WITHDRAWN;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft_withdraw r = WEFT_WITHDRAW_RACED;
    weft__lock(&b->weft_lock);
    if (w->weft_node.weft_state == WEFT__WAIT_QUEUED) {
        if (w->weft_generation == b->weft_generation) {
            /* Rule 3: not tripped yet; take the arrival back. */
            weft__waitq_remove(&b->weft_waiters, &w->weft_node);
            weft__defer_drop(&d, weft__wait_take_waker(&w->weft_node));
            b->weft_arrived--;
            settle_idle(b, w);
            r = WEFT_WITHDRAWN;
        } else {
            /* Tripped; the release loop has not reached it yet. */
            weft__defer_drop(&d, release_node(b, &w->weft_node));
        }
    }
    if (r == WEFT_WITHDRAW_RACED && weft_cx_is_teardown(cx)) {
        /* RELEASED in a task torn down: it passed; nothing to undo. */
        settle_idle(b, w);
        r = WEFT_WITHDRAWN;
    }
    /* Otherwise RELEASED: it passed; the re-poll yields 0. */
    weft__unlock(&b->weft_lock);
    weft__deferred_run(&d);
    return r;
}

weft_poll weft_barrier_wait(weft_cx *cx, weft_barrier *b, weft_barrier_waiter *w)
{
    if (!cx || !b || !w || (w->weft_owner && w->weft_owner != b))
        return -EINVAL;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft__lock(&b->weft_lock);
    if (b->weft_parties == 0) {
        weft__unlock(&b->weft_lock);
        return -EINVAL;     /* never initialised */
    }
    if (!w->weft_owner) {
        if (b->weft_arrived + 1 < b->weft_parties) {
            b->weft_arrived++;
            b->weft_inflight++;
            w->weft_owner = b;
            w->weft_generation = b->weft_generation;
            w->weft_node.weft_state = WEFT__WAIT_QUEUED;
            w->weft_node.weft_wake = weft_cx_waker(cx);
            weft__waitq_push(&b->weft_waiters, &w->weft_node);
            weft__unlock(&b->weft_lock);
            weft_cx_suspend(cx, w, wait_withdraw);
            return WEFT_PENDING;
        }
        /* The last arrival (rule 1). Out of budget: do not arrive yet; the
         * task is requeued and arrives at its next poll. */
        if (!weft_cx_coop(cx)) {
            weft__unlock(&b->weft_lock);
            return WEFT_PENDING;
        }
        trip_unlock(b);
        return WEFT_BARRIER_LEADER;
    }
    weft_poll r = 0;
    if (w->weft_node.weft_state == WEFT__WAIT_QUEUED) {
        if (w->weft_generation == b->weft_generation) {
            weft__defer_drop(&d, weft__wait_refresh_waker(&w->weft_node, cx));
            r = WEFT_PENDING;
        } else {
            weft__defer_drop(&d, release_node(b, &w->weft_node));
        }
    }
    if (r == 0)
        settle_idle(b, w);
    weft__unlock(&b->weft_lock);
    weft__deferred_run(&d);
    if (r == WEFT_PENDING)
        weft_cx_suspend(cx, w, wait_withdraw);
    return r;
}

size_t weft__barrier_waiters(weft_barrier *b)
{
    weft__lock(&b->weft_lock);
    size_t n = weft__waitq_len(&b->weft_waiters);
    weft__unlock(&b->weft_lock);
    return n;
}
