/*
 * sync/semaphore.c - the counting semaphore: FIFO, acquire-many, close.
 *
 * The weft_semaphore struct is the caller's; its lock word (sync/lock.h)
 * guards every other field and the state of every waiter node linked to it.
 * There are no other atomics: the lock word's acquire/release orderings
 * (lock.h) publish everything below.
 *
 * A weft_semaphore_waiter moves through these states; the node state is
 * written under the lock, weft_owner and weft_need only by the waiting task:
 *
 *   IDLE --(n free, nobody queued)----------------------> IDLE, yields 0
 *   IDLE --(closed)-------------------------------------> IDLE, -EPIPE
 *   IDLE --(else)--> QUEUED --(granted n at the head)---> GRANTED
 *                      |    --(close)-------------------> CLOSED
 *                      +----(withdrawn)-----------------> IDLE, -ECANCELED
 *   GRANTED --(re-poll, or withdrawn cooperatively: RACED)--> IDLE, yields 0
 *   GRANTED --(withdrawn at teardown: n released)--------> IDLE
 *   CLOSED --(re-poll, or withdrawn: RACED)--------------> IDLE, -EPIPE
 *
 * Invariants:
 *   1. weft_permits counts free permits only. A GRANTED node owns its
 *      weft_need permits until its task takes them (re-poll) or its
 *      withdrawal releases them; permits are never split between waits.
 *   2. While open, the head of the line is never satisfiable: every change
 *      that can satisfy it (a release, the head's withdrawal) runs
 *      grant_unlock, which grants heads in order while their need fits. So
 *      the line is non-empty only while its head's need exceeds weft_permits,
 *      and a newcomer (acquire or try_acquire) takes permits only when the
 *      line is empty: nobody overtakes a queued wait, large or small.
 *   3. Once weft_closed is set no node queues and none is granted; close
 *      wakes every queued node with CLOSED, a batch per lock hold.
 *   4. A node is QUEUED exactly while linked.
 *   5. weft_inflight counts the nodes whose weft_owner is set (QUEUED,
 *      GRANTED, CLOSED): one queueing adds 1, its settling (the poll that
 *      takes the outcome, or the withdrawal that ends it) takes 1 away. A
 *      GRANTED or CLOSED node is unlinked but still points here, so destroy
 *      checks this count, not the list.
 */
#include <errno.h>
#include <stddef.h>

#include "sync/batch.h"
#include "sync/inspect_waits.h"
#include "sync/lock.h"
#include "sync/waitq.h"
#include "weft/sync.h"

enum { GRANTED = 2, CLOSED = 3 };

static weft_semaphore_waiter *waiter_of(weft_wait_node *n)
{
    return (weft_semaphore_waiter *)((char *)n - offsetof(weft_semaphore_waiter, weft_node));
}

int weft_semaphore_init(weft_semaphore *s, uint64_t permits)
{
    if (!s || permits > WEFT_SEMAPHORE_MAX_PERMITS)
        return -EINVAL;
    *s = (weft_semaphore)WEFT_SEMAPHORE_INIT(permits);
    return 0;
}

int weft_semaphore_destroy(weft_semaphore *s)
{
    if (!s)
        return -EINVAL;
    weft__lock(&s->weft_lock);
    bool busy = s->weft_inflight > 0;     /* rule 5 */
    weft__unlock(&s->weft_lock);
    return busy ? -EBUSY : 0;
}

/* The wait in flight is over (rule 5). Lock held. */
static void settle_idle(weft_semaphore *s, weft_semaphore_waiter *w)
{
    s->weft_inflight--;
    w->weft_node.weft_state = WEFT__WAIT_IDLE;
    w->weft_owner = NULL;
    w->weft_need = 0;
}

/* Grant the head its need if the semaphore is open and the need fits
 * (rules 2, 3). Lock held. */
static bool grant_head(weft_wait_node *head, void *arg)
{
    weft_semaphore *s = arg;
    uint64_t need = waiter_of(head)->weft_need;
    if (s->weft_closed || need > s->weft_permits)
        return false;
    s->weft_permits -= need;
    return true;
}

/* Grant heads of the line in order while their need fits (rule 2), then
 * unlock and wake them (batch.h); run `d` after the first unlock. Called with
 * the lock held; returns with it released. */
static void grant_unlock(weft_semaphore *s, weft__deferred *d)
{
    weft__grant_front_unlock(&s->weft_lock, &s->weft_waiters, grant_head, s, GRANTED, d);
}

int weft_semaphore_release(weft_semaphore *s, uint64_t n)
{
    if (!s || n == 0)
        return -EINVAL;
    weft__lock(&s->weft_lock);
    if (n > WEFT_SEMAPHORE_MAX_PERMITS || s->weft_permits > WEFT_SEMAPHORE_MAX_PERMITS - n) {
        weft__unlock(&s->weft_lock);
        return -EOVERFLOW;
    }
    s->weft_permits += n;
    grant_unlock(s, NULL);
    return 0;
}

int weft_semaphore_try_acquire(weft_semaphore *s, uint64_t n)
{
    if (!s || n == 0 || n > WEFT_SEMAPHORE_MAX_PERMITS)
        return -EINVAL;
    int r = 0;
    weft__lock(&s->weft_lock);
    if (s->weft_closed)
        r = -EPIPE;
    else if (!weft__waitq_empty(&s->weft_waiters) || s->weft_permits < n)
        r = -EAGAIN;    /* rule 2: never ahead of a queued wait */
    else
        s->weft_permits -= n;
    weft__unlock(&s->weft_lock);
    return r;
}

int weft_semaphore_close(weft_semaphore *s)
{
    if (!s)
        return -EINVAL;
    weft__lock(&s->weft_lock);
    s->weft_closed = 1;
    /* Rule 3: nothing queues any more, so this loop ends. */
    for (;;) {
        weft__batch b = { .n = 0 };
        weft_wait_node *n;
        while (!weft__batch_full(&b) && (n = weft__waitq_pop(&s->weft_waiters)) != NULL) {
            n->weft_state = CLOSED;
            weft__batch_add(&b, weft__wait_take_waker(n));
        }
        bool more = !weft__waitq_empty(&s->weft_waiters);
        weft__unlock(&s->weft_lock);
        weft__batch_run(&b);
        if (!more)
            return 0;
        weft__lock(&s->weft_lock);
    }
}

int64_t weft_semaphore_available(weft_semaphore *s)
{
    if (!s)
        return -EINVAL;
    weft__lock(&s->weft_lock);
    uint64_t n = s->weft_permits;
    weft__unlock(&s->weft_lock);
    return n > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)n;
}

bool weft_semaphore_is_closed(weft_semaphore *s)
{
    if (!s)
        return true;
    weft__lock(&s->weft_lock);
    bool closed = s->weft_closed;
    weft__unlock(&s->weft_lock);
    return closed;
}

static weft_withdraw acquire_withdraw(weft_cx *cx, void *leaf)
{
    weft_semaphore_waiter *w = leaf;
    weft_semaphore *s = w->weft_owner;
    if (!s)
        return WEFT_WITHDRAWN;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft__lock(&s->weft_lock);
    switch (w->weft_node.weft_state) {
    case WEFT__WAIT_QUEUED:
        /* Leave the line. If it was the head, the next may fit now (rule 2);
         * grant_unlock finds out. */
        weft__waitq_remove(&s->weft_waiters, &w->weft_node);
        weft__defer_drop(&d, weft__wait_take_waker(&w->weft_node));
        settle_idle(s, w);
        grant_unlock(s, &d);
        return WEFT_WITHDRAWN;
    case GRANTED:
        if (weft_cx_is_teardown(cx)) {
            /* Rule 1: the frame is going away; its permits go back. */
            s->weft_permits += w->weft_need;
            settle_idle(s, w);
            grant_unlock(s, NULL);
            return WEFT_WITHDRAWN;
        }
        weft__unlock(&s->weft_lock);
        return WEFT_WITHDRAW_RACED;     /* the re-poll yields 0, n held */
    default:
        /* CLOSED: nothing held. A task that runs again is told (RACED: the
         * re-poll yields -EPIPE); one torn down just ends the wait. */
        if (!weft_cx_is_teardown(cx)) {
            weft__unlock(&s->weft_lock);
            return WEFT_WITHDRAW_RACED;
        }
        settle_idle(s, w);
        weft__unlock(&s->weft_lock);
        return WEFT_WITHDRAWN;
    }
}

weft_poll weft_semaphore_acquire(weft_cx *cx, weft_semaphore *s, weft_semaphore_waiter *w,
                                 uint64_t n)
{
    if (!cx || !s || !w || n == 0 || n > WEFT_SEMAPHORE_MAX_PERMITS
        || (w->weft_owner && (w->weft_owner != s || w->weft_need != n)))
        return -EINVAL;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft_poll r = WEFT_PENDING;
    bool suspend = false;
    weft__lock(&s->weft_lock);
    if (!w->weft_owner) {
        if (s->weft_closed) {
            r = -EPIPE;
        } else if (weft__waitq_empty(&s->weft_waiters) && s->weft_permits >= n) {
            /* Out of budget: take nothing; the task is requeued. */
            if (weft_cx_coop(cx)) {
                s->weft_permits -= n;
                r = 0;
            }
        } else {
            s->weft_inflight++;
            w->weft_owner = s;
            w->weft_need = n;
            w->weft_node.weft_state = WEFT__WAIT_QUEUED;
            w->weft_node.weft_wake = weft_cx_waker(cx);
            weft__waitq_push(&s->weft_waiters, &w->weft_node);
            suspend = true;
        }
    } else {
        switch (w->weft_node.weft_state) {
        case WEFT__WAIT_QUEUED:
            weft__defer_drop(&d, weft__wait_refresh_waker(&w->weft_node, cx));
            suspend = true;
            break;
        case GRANTED:
            settle_idle(s, w);  /* the n permits are the caller's (rule 1) */
            r = 0;
            break;
        default:
            settle_idle(s, w);  /* CLOSED */
            r = -EPIPE;
            break;
        }
    }
    weft__unlock(&s->weft_lock);
    weft__deferred_run(&d);
    if (suspend)
        weft_cx_suspend(cx, w, acquire_withdraw);
    return r;
}

size_t weft__semaphore_waiters(weft_semaphore *s)
{
    weft__lock(&s->weft_lock);
    size_t n = weft__waitq_len(&s->weft_waiters);
    weft__unlock(&s->weft_lock);
    return n;
}
