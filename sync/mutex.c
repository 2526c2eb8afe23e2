/*
 * sync/mutex.c - the async mutex: one holder at a time, handed over in FIFO
 * order.
 *
 * The weft_mutex struct is the caller's; its lock word (sync/lock.h) guards
 * every other field and the state of every waiter node linked to it. There
 * are no other atomics: the lock word's acquire/release orderings (lock.h)
 * publish everything below.
 *
 * A weft_mutex_waiter moves through these states; the node state is written
 * under the lock, weft_owner only by the waiting task (its poll or its
 * withdrawal hook, never both at once):
 *
 *   IDLE --(free: take it)--------------------------------> IDLE, yields 0
 *   IDLE --(held)--> QUEUED --(unlock hands it over)-----> GRANTED
 *                      +----(withdrawn)-------------------> IDLE, -ECANCELED
 *   GRANTED --(re-poll, or withdrawn cooperatively: RACED)--> IDLE, yields 0
 *   GRANTED --(withdrawn at teardown: passed on)----------> IDLE
 *
 * Invariants:
 *   1. weft_locked is 1 exactly while a task or thread holds the mutex or a
 *      GRANTED node owns it; at most one of these exists.
 *   2. The wait list is non-empty only while weft_locked: an unlock with
 *      waiters hands the mutex to the head instead of clearing weft_locked, so
 *      a try_lock (or a new lock) can never overtake a queued waiter.
 *   3. A node is QUEUED exactly while linked. Removing a QUEUED node changes
 *      nobody else's prospects: the holder's unlock still finds the others.
 *   4. A GRANTED node is not linked and owns the mutex until its task takes
 *      it (re-poll) or its withdrawal passes it on, so a handoff is never lost.
 */
#include <errno.h>
#include <stddef.h>

#include "sync/inspect_waits.h"
#include "sync/lock.h"
#include "sync/waitq.h"
#include "weft/sync.h"

enum { GRANTED = 2 };

int weft_mutex_init(weft_mutex *m)
{
    if (!m)
        return -EINVAL;
    *m = (weft_mutex)WEFT_MUTEX_INIT;
    return 0;
}

int weft_mutex_destroy(weft_mutex *m)
{
    if (!m)
        return -EINVAL;
    weft__lock(&m->weft_lock);
    bool busy = m->weft_locked || !weft__waitq_empty(&m->weft_waiters);
    weft__unlock(&m->weft_lock);
    return busy ? -EBUSY : 0;
}

static void settle_idle(weft_mutex_waiter *w)
{
    w->weft_node.weft_state = WEFT__WAIT_IDLE;
    w->weft_owner = NULL;
}

/* The holder lets go: hand the mutex to the first waiter (rule 2), or free
 * it. Lock held, weft_locked set. */
static void hand_over_locked(weft_mutex *m, weft__deferred *d)
{
    weft_wait_node *n = weft__waitq_pop(&m->weft_waiters);
    if (!n) {
        m->weft_locked = 0;
        return;
    }
    n->weft_state = GRANTED;
    weft__defer_wake(d, weft__wait_take_waker(n));
}

int weft_mutex_unlock(weft_mutex *m)
{
    if (!m)
        return -EINVAL;
    weft__deferred d = WEFT__DEFERRED_INIT;
    int r = 0;
    weft__lock(&m->weft_lock);
    if (!m->weft_locked)
        r = -EPERM;
    else
        hand_over_locked(m, &d);
    weft__unlock(&m->weft_lock);
    weft__deferred_run(&d);
    return r;
}

int weft_mutex_try_lock(weft_mutex *m)
{
    if (!m)
        return -EINVAL;
    int r = 0;
    weft__lock(&m->weft_lock);
    if (m->weft_locked)
        r = -EAGAIN;    /* rule 2: no waiters unless locked */
    else
        m->weft_locked = 1;
    weft__unlock(&m->weft_lock);
    return r;
}

bool weft_mutex_is_locked(weft_mutex *m)
{
    if (!m)
        return false;
    weft__lock(&m->weft_lock);
    bool locked = m->weft_locked;
    weft__unlock(&m->weft_lock);
    return locked;
}

static weft_withdraw lock_withdraw(weft_cx *cx, void *leaf)
{
    weft_mutex_waiter *w = leaf;
    weft_mutex *m = w->weft_owner;
    if (!m)
        return WEFT_WITHDRAWN;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft_withdraw r = WEFT_WITHDRAWN;
    weft__lock(&m->weft_lock);
    switch (w->weft_node.weft_state) {
    case WEFT__WAIT_QUEUED:
        /* Rule 3: leave the line; nobody else's wake-up depended on it. */
        weft__waitq_remove(&m->weft_waiters, &w->weft_node);
        weft__defer_drop(&d, weft__wait_take_waker(&w->weft_node));
        settle_idle(w);
        break;
    case GRANTED:
        if (weft_cx_is_teardown(cx)) {
            /* Rule 4: the frame is going away; the next waiter gets it. */
            settle_idle(w);
            hand_over_locked(m, &d);
        } else {
            r = WEFT_WITHDRAW_RACED;    /* the re-poll yields 0, mutex held */
        }
        break;
    default:
        settle_idle(w);
        break;
    }
    weft__unlock(&m->weft_lock);
    weft__deferred_run(&d);
    return r;
}

weft_poll weft_mutex_lock(weft_cx *cx, weft_mutex *m, weft_mutex_waiter *w)
{
    if (!cx || !m || !w || (w->weft_owner && w->weft_owner != m))
        return -EINVAL;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft_poll r = WEFT_PENDING;
    bool suspend = false;
    weft__lock(&m->weft_lock);
    if (!w->weft_owner) {
        if (!m->weft_locked) {
            /* Out of budget: take nothing; the task is requeued. */
            if (weft_cx_coop(cx)) {
                m->weft_locked = 1;
                r = 0;
            }
        } else {
            w->weft_owner = m;
            w->weft_node.weft_state = WEFT__WAIT_QUEUED;
            w->weft_node.weft_wake = weft_cx_waker(cx);
            weft__waitq_push(&m->weft_waiters, &w->weft_node);
            suspend = true;
        }
    } else if (w->weft_node.weft_state == WEFT__WAIT_QUEUED) {
        weft__defer_drop(&d, weft__wait_refresh_waker(&w->weft_node, cx));
        suspend = true;
    } else {
        settle_idle(w);     /* GRANTED: the mutex is the caller's (rule 4) */
        r = 0;
    }
    weft__unlock(&m->weft_lock);
    weft__deferred_run(&d);
    if (suspend)
        weft_cx_suspend(cx, w, lock_withdraw);
    return r;
}

size_t weft__mutex_waiters(weft_mutex *m)
{
    weft__lock(&m->weft_lock);
    size_t n = weft__waitq_len(&m->weft_waiters);
    weft__unlock(&m->weft_lock);
    return n;
}
