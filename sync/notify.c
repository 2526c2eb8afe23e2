/*
 * sync/notify.c - notify: wake one waiter (or store a permit), or wake all.
 *
 * The weft_notify struct is the caller's; its lock word (sync/lock.h) guards
 * every other field and the state of every waiter node linked to it.
 *
 * Invariants:
 *   1. weft_permit is 1 only while no waiter is queued: notify_one stores it
 *      only when the queue is empty, and a wait takes it instead of queueing.
 *   2. A waiter's node is QUEUED exactly while linked. notify_one moves the
 *      head to NOTIFIED_ONE, notify_all moves waiters to NOTIFIED_ALL; both
 *      unlink the node and take its waker under the lock.
 *   3. A NOTIFIED_ONE node owns one notification until its task polls it
 *      (the wait yields 0) or withdraws it; a withdrawal hands the
 *      notification to the next queued waiter, or stores it as the permit.
 *      So no notify_one is ever lost to cancellation.
 *   4. notify_all wakes only waiters queued before it started: each waiter
 *      records weft_epoch when it queues; notify_all bumps the epoch and wakes,
 *      a batch per lock hold, queued waiters with an older epoch. They are all
 *      at the front of the FIFO, so it stops at the first newer one.
 *   5. weft_inflight counts the waiter nodes whose weft_owner is this notify
 *      (queued, or woken and not yet settled by a poll or a withdrawal);
 *      destroy refuses (-EBUSY) while any exists, since it still points here.
 */
#include <errno.h>
#include <stddef.h>

#include "sync/inspect.h"
#include "sync/lock.h"
#include "sync/waitq.h"
#include "weft/sync.h"

enum { NOTIFIED_ONE = 2, NOTIFIED_ALL = 3 };

/* Waiters woken per lock hold by notify_all. */
#define WAKE_BATCH 32

static weft_notify_waiter *waiter_of(weft_wait_node *n)
{
    return (weft_notify_waiter *)((char *)n - offsetof(weft_notify_waiter, weft_node));
}

int weft_notify_init(weft_notify *n)
{
    if (!n)
        return -EINVAL;
    *n = (weft_notify)WEFT_NOTIFY_INIT;
    return 0;
}

int weft_notify_destroy(weft_notify *n)
{
    if (!n)
        return -EINVAL;
    weft__lock(&n->weft_lock);
    bool busy = n->weft_inflight > 0;     /* rule 5 */
    weft__unlock(&n->weft_lock);
    return busy ? -EBUSY : 0;
}

static void settle_idle(weft_notify *n, weft_notify_waiter *w)
{
    w->weft_node.weft_state = WEFT__WAIT_IDLE;
    w->weft_owner = NULL;
    n->weft_inflight--;
}

/* Give one notification to the first waiter, or store it (rule 1). Returns
 * 1 when a waiter was chosen. Lock held. */
static int notify_one_locked(weft_notify *n, weft__deferred *d)
{
    weft_wait_node *node = weft__waitq_pop(&n->weft_waiters);
    if (!node) {
        n->weft_permit = 1;
        return 0;
    }
    node->weft_state = NOTIFIED_ONE;
    weft__defer_wake(d, weft__wait_take_waker(node));
    return 1;
}

int weft_notify_one(weft_notify *n)
{
    if (!n)
        return -EINVAL;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft__lock(&n->weft_lock);
    int chosen = notify_one_locked(n, &d);
    weft__unlock(&n->weft_lock);
    weft__deferred_run(&d);
    return chosen;
}

int64_t weft_notify_all(weft_notify *n)
{
    if (!n)
        return -EINVAL;
    int64_t woken = 0;
    weft__lock(&n->weft_lock);
    uint64_t epoch = ++n->weft_epoch;
    for (;;) {
        weft_waker batch[WAKE_BATCH];
        size_t count = 0;
        weft_wait_node *head;
        while (count < WAKE_BATCH && (head = n->weft_waiters.weft_head) != NULL
               && waiter_of(head)->weft_epoch < epoch) {
            weft__waitq_remove(&n->weft_waiters, head);
            head->weft_state = NOTIFIED_ALL;
            batch[count++] = weft__wait_take_waker(head);
        }
        head = n->weft_waiters.weft_head;
        bool more = count == WAKE_BATCH && head && waiter_of(head)->weft_epoch < epoch;
        weft__unlock(&n->weft_lock);
        for (size_t i = 0; i < count; i++)
            weft_waker_wake(&batch[i]);
        woken += (int64_t)count;
        if (!more)
            return woken;
        weft__lock(&n->weft_lock);
    }
}

static weft_withdraw wait_withdraw(weft_cx *cx, void *leaf)
{
    (void)cx;
    weft_notify_waiter *w = leaf;
    weft_notify *n = w->weft_owner;
    if (!n)
        return WEFT_WITHDRAWN;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft__lock(&n->weft_lock);
    switch (w->weft_node.weft_state) {
    case WEFT__WAIT_QUEUED:
        weft__waitq_remove(&n->weft_waiters, &w->weft_node);
        weft__defer_drop(&d, weft__wait_take_waker(&w->weft_node));
        break;
    case NOTIFIED_ONE:
        notify_one_locked(n, &d);   /* rule 3: pass it on */
        break;
    default:
        break;                      /* NOTIFIED_ALL: nothing to pass on */
    }
    settle_idle(n, w);
    weft__unlock(&n->weft_lock);
    weft__deferred_run(&d);
    return WEFT_WITHDRAWN;
}

weft_poll weft_notify_wait(weft_cx *cx, weft_notify *n, weft_notify_waiter *w)
{
    if (!cx || !n || !w || (w->weft_owner && w->weft_owner != n))
        return -EINVAL;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft_poll r = WEFT_PENDING;
    bool suspend = false;
    weft__lock(&n->weft_lock);
    if (!w->weft_owner) {
        if (n->weft_permit) {
            /* Out of budget: keep the permit; the task is requeued. */
            if (weft_cx_coop(cx)) {
                n->weft_permit = 0;
                r = 0;
            }
        } else {
            w->weft_owner = n;
            n->weft_inflight++;
            w->weft_epoch = n->weft_epoch;
            w->weft_node.weft_state = WEFT__WAIT_QUEUED;
            w->weft_node.weft_wake = weft_cx_waker(cx);
            weft__waitq_push(&n->weft_waiters, &w->weft_node);
            suspend = true;
        }
    } else if (w->weft_node.weft_state == WEFT__WAIT_QUEUED) {
        weft__defer_drop(&d, weft__wait_refresh_waker(&w->weft_node, cx));
        suspend = true;
    } else {
        settle_idle(n, w);  /* NOTIFIED_ONE or NOTIFIED_ALL */
        r = 0;
    }
    weft__unlock(&n->weft_lock);
    weft__deferred_run(&d);
    if (suspend)
        weft_cx_suspend(cx, w, wait_withdraw);
    return r;
}

size_t weft__notify_waiters(weft_notify *n)
{
    size_t count = 0;
    weft__lock(&n->weft_lock);
    for (weft_wait_node *w = n->weft_waiters.weft_head; w; w = w->weft_next)
        count++;
    weft__unlock(&n->weft_lock);
    return count;
}
