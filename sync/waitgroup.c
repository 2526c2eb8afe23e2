/*
 * sync/waitgroup.c - the wait group: a count of outstanding work, and waits
 * that complete when it reaches zero (Go's sync.WaitGroup, for tasks).
 *
 * The weft_waitgroup struct is the caller's; its lock word (sync/lock.h)
 * guards every other field and the state of every waiter node linked to it.
 * There are no other atomics: the lock word's acquire/release orderings
 * (lock.h) publish everything below, so whatever the work did before its
 * done() is visible to a wait that returns 0 because of it.
 *
 * A weft_waitgroup_waiter moves through these states; the node state is
 * written under the lock, weft_owner and weft_epoch by the waiting task
 * under the lock as well:
 *
 *   IDLE --(count is 0)----------------------------> IDLE, yields 0
 *   IDLE --(count > 0)--> QUEUED --(count hit 0)--> RELEASED
 *                           +----(withdrawn)-------> IDLE, -ECANCELED
 *   RELEASED --(re-poll, or withdrawn: RACED)-----> IDLE, yields 0
 *
 * Invariants:
 *   1. A node is queued only while weft_count > 0, recording weft_epoch.
 *   2. The done() that brings the count to 0 bumps weft_epoch in the same
 *      lock hold; from then on a node with an older epoch has seen zero, even
 *      while still linked (the release loop unlinks them a batch per lock
 *      hold, and an add() in between may already have raised the count).
 *      Older nodes are at the front of the list, so the loop stops at the
 *      first current one, and waits queued after an add() are not woken.
 *   3. A wait changes nothing but the list, so withdrawing one never affects
 *      the count or anyone else.
 *   4. weft_inflight counts the nodes whose weft_owner is set (QUEUED or
 *      RELEASED): queueing adds 1, settling (the poll that reports zero, or
 *      the withdrawal that ends the wait) takes 1 away. A RELEASED node is
 *      unlinked but still points here, so destroy checks this count. A
 *      thread's wait_blocking counts too, until it has been woken.
 */
#include <errno.h>
#include <stddef.h>

#include "runtime/waker.h"
#include "runtime/worker.h"
#include "sync/batch.h"
#include "sync/inspect_waits.h"
#include "sync/lock.h"
#include "sync/waitq.h"
#include "weft/sync.h"

enum { RELEASED = 2 };

static weft_waitgroup_waiter *waiter_of(weft_wait_node *n)
{
    return (weft_waitgroup_waiter *)((char *)n - offsetof(weft_waitgroup_waiter, weft_node));
}

int weft_waitgroup_init(weft_waitgroup *wg)
{
    if (!wg)
        return -EINVAL;
    *wg = (weft_waitgroup)WEFT_WAITGROUP_INIT;
    return 0;
}

int weft_waitgroup_destroy(weft_waitgroup *wg)
{
    if (!wg)
        return -EINVAL;
    weft__lock(&wg->weft_lock);
    bool busy = wg->weft_inflight > 0;    /* rule 4 */
    weft__unlock(&wg->weft_lock);
    return busy ? -EBUSY : 0;
}

int weft_waitgroup_add(weft_waitgroup *wg, uint64_t n)
{
    if (!wg || n == 0)
        return -EINVAL;
    int r = 0;
    weft__lock(&wg->weft_lock);
    if (n > (uint64_t)INT64_MAX || wg->weft_count > (uint64_t)INT64_MAX - n)
        r = -EOVERFLOW;
    else
        wg->weft_count += n;
    weft__unlock(&wg->weft_lock);
    return r;
}

int64_t weft_waitgroup_count(weft_waitgroup *wg)
{
    if (!wg)
        return -EINVAL;
    weft__lock(&wg->weft_lock);
    int64_t n = (int64_t)wg->weft_count;
    weft__unlock(&wg->weft_lock);
    return n;
}

/* The wait in flight is over (rule 4). Lock held. */
static void settle_idle(weft_waitgroup *wg, weft_waitgroup_waiter *w)
{
    wg->weft_inflight--;
    w->weft_node.weft_state = WEFT__WAIT_IDLE;
    w->weft_owner = NULL;
}

/* A linked node that has seen zero (rule 2): unlink it as RELEASED,
 * returning its waker. Lock held. */
static weft_waker release_node(weft_waitgroup *wg, weft_wait_node *n)
{
    weft__waitq_remove(&wg->weft_waiters, n);
    n->weft_state = RELEASED;
    return weft__wait_take_waker(n);
}

int weft_waitgroup_done(weft_waitgroup *wg)
{
    if (!wg)
        return -EINVAL;
    weft__lock(&wg->weft_lock);
    if (wg->weft_count == 0) {
        weft__unlock(&wg->weft_lock);
        return -EPERM;
    }
    if (--wg->weft_count > 0) {
        weft__unlock(&wg->weft_lock);
        return 0;
    }
    uint64_t epoch = ++wg->weft_epoch;
    for (;;) {
        weft__batch b = { .n = 0 };
        weft_wait_node *head;
        while (!weft__batch_full(&b) && (head = wg->weft_waiters.weft_head) != NULL
               && waiter_of(head)->weft_epoch < epoch)
            weft__batch_add(&b, release_node(wg, head));
        bool more = weft__batch_full(&b);
        weft__unlock(&wg->weft_lock);
        weft__batch_run(&b);
        if (!more)
            return 0;
        weft__lock(&wg->weft_lock);
    }
}

static weft_withdraw wait_withdraw(weft_cx *cx, void *leaf)
{
    weft_waitgroup_waiter *w = leaf;
    weft_waitgroup *wg = w->weft_owner;
    if (!wg)
        return WEFT_WITHDRAWN;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft_withdraw r = WEFT_WITHDRAW_RACED;
    weft__lock(&wg->weft_lock);
    if (w->weft_node.weft_state == WEFT__WAIT_QUEUED) {
        if (w->weft_epoch == wg->weft_epoch) {
            /* Rule 3: leave; nothing else to undo. */
            weft__waitq_remove(&wg->weft_waiters, &w->weft_node);
            weft__defer_drop(&d, weft__wait_take_waker(&w->weft_node));
            settle_idle(wg, w);
            r = WEFT_WITHDRAWN;
        } else {
            weft__defer_drop(&d, release_node(wg, &w->weft_node));
        }
    }
    if (r == WEFT_WITHDRAW_RACED && weft_cx_is_teardown(cx)) {
        /* RELEASED in a task torn down: nothing to report or undo. */
        settle_idle(wg, w);
        r = WEFT_WITHDRAWN;
    }
    /* Otherwise RELEASED: the count reached zero; the re-poll yields 0. */
    weft__unlock(&wg->weft_lock);
    weft__deferred_run(&d);
    return r;
}

weft_poll weft_waitgroup_wait(weft_cx *cx, weft_waitgroup *wg, weft_waitgroup_waiter *w)
{
    if (!cx || !wg || !w || (w->weft_owner && w->weft_owner != wg))
        return -EINVAL;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft_poll r = 0;
    weft__lock(&wg->weft_lock);
    if (!w->weft_owner) {
        if (wg->weft_count > 0) {
            wg->weft_inflight++;
            w->weft_owner = wg;
            w->weft_epoch = wg->weft_epoch;
            w->weft_node.weft_state = WEFT__WAIT_QUEUED;
            w->weft_node.weft_wake = weft_cx_waker(cx);
            weft__waitq_push(&wg->weft_waiters, &w->weft_node);
            r = WEFT_PENDING;
        } else if (!weft_cx_coop(cx)) {
            r = WEFT_PENDING;   /* out of budget: the task is requeued */
        }
        weft__unlock(&wg->weft_lock);
        if (r == WEFT_PENDING && w->weft_owner)
            weft_cx_suspend(cx, w, wait_withdraw);
        return r;
    }
    if (w->weft_node.weft_state == WEFT__WAIT_QUEUED) {
        if (w->weft_epoch == wg->weft_epoch) {
            weft__defer_drop(&d, weft__wait_refresh_waker(&w->weft_node, cx));
            r = WEFT_PENDING;
        } else {
            weft__defer_drop(&d, release_node(wg, &w->weft_node));
        }
    }
    if (r == 0)
        settle_idle(wg, w);
    weft__unlock(&wg->weft_lock);
    weft__deferred_run(&d);
    if (r == WEFT_PENDING)
        weft_cx_suspend(cx, w, wait_withdraw);
    return r;
}

int weft_waitgroup_wait_blocking(weft_waitgroup *wg)
{
    if (!wg)
        return -EINVAL;
    if (weft__current_worker)
        return -EDEADLK;
    weft_waitgroup_waiter w = WEFT_WAITGROUP_WAITER_INIT;
    weft__thread_waiter tw;
    weft__lock(&wg->weft_lock);
    if (wg->weft_count == 0) {
        weft__unlock(&wg->weft_lock);
        return 0;
    }
    /* Queue like a task; the node lives on this stack until the release
     * loop has unlinked it and woken us (nothing else unlinks it). */
    wg->weft_inflight++;
    w.weft_owner = wg;
    w.weft_epoch = wg->weft_epoch;
    w.weft_node.weft_state = WEFT__WAIT_QUEUED;
    w.weft_node.weft_wake = weft__waker_for_thread(&tw);
    weft__waitq_push(&wg->weft_waiters, &w.weft_node);
    weft__unlock(&wg->weft_lock);
    weft__thread_waiter_wait(&tw, 0);
    weft__lock(&wg->weft_lock);
    settle_idle(wg, &w);
    weft__unlock(&wg->weft_lock);
    return 0;
}

size_t weft__waitgroup_waiters(weft_waitgroup *wg)
{
    weft__lock(&wg->weft_lock);
    size_t n = weft__waitq_len(&wg->weft_waiters);
    weft__unlock(&wg->weft_lock);
    return n;
}
