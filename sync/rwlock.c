/*
 * sync/rwlock.c - the async read-write lock: many readers or one writer,
 * handed over in FIFO order (which keeps writers from starving).
 *
 * The weft_rwlock struct is the caller's; its lock word (sync/lock.h) guards
 * every other field and the state of every waiter node linked to it. There
 * are no other atomics: the lock word's acquire/release orderings (lock.h)
 * publish everything below.
 *
 * A weft_rwlock_waiter moves through these states; the node state is
 * written under the lock, weft_owner and weft_write only by the waiting task:
 *
 *   IDLE --(compatible, nobody queued)-------------------> IDLE, yields 0
 *   IDLE --(else)--> QUEUED --(granted at the head)-----> GRANTED
 *                      +----(withdrawn)-------------------> IDLE, -ECANCELED
 *   GRANTED --(re-poll, or withdrawn cooperatively: RACED)--> IDLE, yields 0
 *   GRANTED --(withdrawn at teardown: hold given back)----> IDLE
 *
 * Invariants:
 *   1. weft_writer is 1 exactly while one write hold exists (held, or owned
 *      by a GRANTED write node); weft_readers counts read holds the same way.
 *      Never both: weft_writer implies weft_readers == 0.
 *   2. The head of the line is never grantable: a write head needs no holds
 *      at all, a read head needs no writer. Every change that can make the
 *      head grantable (an unlock, a downgrade, the head's withdrawal) runs
 *      grant_unlock, which grants heads in order while they are grantable:
 *      the readers at the head are admitted together, up to the first
 *      writer. A newcomer takes a hold at once only when the line is empty,
 *      so a reader never overtakes a queued writer (no writer starvation)
 *      and nobody overtakes a queued reader.
 *   3. A node is QUEUED exactly while linked.
 */
#include <errno.h>
#include <stddef.h>

#include "sync/batch.h"
#include "sync/inspect_waits.h"
#include "sync/lock.h"
#include "sync/waitq.h"
#include "weft/sync.h"

enum { GRANTED = 2 };

static weft_rwlock_waiter *waiter_of(weft_wait_node *n)
{
    return (weft_rwlock_waiter *)((char *)n - offsetof(weft_rwlock_waiter, weft_node));
}

int weft_rwlock_init(weft_rwlock *rw)
{
    if (!rw)
        return -EINVAL;
    *rw = (weft_rwlock)WEFT_RWLOCK_INIT;
    return 0;
}

int weft_rwlock_destroy(weft_rwlock *rw)
{
    if (!rw)
        return -EINVAL;
    weft__lock(&rw->weft_lock);
    bool busy = rw->weft_writer || rw->weft_readers || !weft__waitq_empty(&rw->weft_waiters);
    weft__unlock(&rw->weft_lock);
    return busy ? -EBUSY : 0;
}

static void settle_idle(weft_rwlock_waiter *w)
{
    w->weft_node.weft_state = WEFT__WAIT_IDLE;
    w->weft_owner = NULL;
}

/* Could a hold of this kind be granted now, ignoring the line? Lock held. */
static bool compatible(const weft_rwlock *rw, bool write)
{
    return !rw->weft_writer && (!write || rw->weft_readers == 0);
}

static void take_hold(weft_rwlock *rw, bool write)
{
    if (write)
        rw->weft_writer = 1;
    else
        rw->weft_readers++;
}

static void give_back_hold(weft_rwlock *rw, bool write)
{
    if (write)
        rw->weft_writer = 0;
    else
        rw->weft_readers--;
}

/* Grant the head a hold if it is grantable now (rule 2). Lock held. */
static bool grant_head(weft_wait_node *head, void *arg)
{
    weft_rwlock *rw = arg;
    bool write = waiter_of(head)->weft_write;
    if (!compatible(rw, write))
        return false;
    take_hold(rw, write);
    return true;
}

/* Grant heads of the line in order while they are grantable (rule 2), then
 * unlock and wake them (batch.h); run `d` after the first unlock. Called with
 * the lock held; returns with it released. */
static void grant_unlock(weft_rwlock *rw, weft__deferred *d)
{
    weft__grant_front_unlock(&rw->weft_lock, &rw->weft_waiters, grant_head, rw, GRANTED, d);
}

static int try_take(weft_rwlock *rw, bool write)
{
    if (!rw)
        return -EINVAL;
    int r = 0;
    weft__lock(&rw->weft_lock);
    if (!weft__waitq_empty(&rw->weft_waiters) || !compatible(rw, write))
        r = -EAGAIN;    /* rule 2: never ahead of a queued wait */
    else
        take_hold(rw, write);
    weft__unlock(&rw->weft_lock);
    return r;
}

int weft_rwlock_try_read(weft_rwlock *rw)
{
    return try_take(rw, false);
}

int weft_rwlock_try_write(weft_rwlock *rw)
{
    return try_take(rw, true);
}

int weft_rwlock_read_unlock(weft_rwlock *rw)
{
    if (!rw)
        return -EINVAL;
    weft__lock(&rw->weft_lock);
    if (rw->weft_readers == 0) {
        weft__unlock(&rw->weft_lock);
        return -EPERM;
    }
    rw->weft_readers--;
    grant_unlock(rw, NULL);
    return 0;
}

/* write_unlock (readers = 0) and downgrade (readers = 1, the caller's). */
static int end_write(weft_rwlock *rw, uint64_t readers)
{
    if (!rw)
        return -EINVAL;
    weft__lock(&rw->weft_lock);
    if (!rw->weft_writer) {
        weft__unlock(&rw->weft_lock);
        return -EPERM;
    }
    rw->weft_writer = 0;
    rw->weft_readers = readers;
    grant_unlock(rw, NULL);
    return 0;
}

int weft_rwlock_write_unlock(weft_rwlock *rw)
{
    return end_write(rw, 0);
}

int weft_rwlock_downgrade(weft_rwlock *rw)
{
    return end_write(rw, 1);
}

static weft_withdraw lock_withdraw(weft_cx *cx, void *leaf)
{
    weft_rwlock_waiter *w = leaf;
    weft_rwlock *rw = w->weft_owner;
    if (!rw)
        return WEFT_WITHDRAWN;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft__lock(&rw->weft_lock);
    switch (w->weft_node.weft_state) {
    case WEFT__WAIT_QUEUED:
        /* Leave the line. A write wait at the head may have been all that
         * kept the readers behind it out (rule 2): grant_unlock finds out. */
        weft__waitq_remove(&rw->weft_waiters, &w->weft_node);
        weft__defer_drop(&d, weft__wait_take_waker(&w->weft_node));
        settle_idle(w);
        grant_unlock(rw, &d);
        return WEFT_WITHDRAWN;
    case GRANTED:
        if (weft_cx_is_teardown(cx)) {
            /* The frame is going away: give the hold back (rule 1). */
            give_back_hold(rw, w->weft_write);
            settle_idle(w);
            grant_unlock(rw, NULL);
            return WEFT_WITHDRAWN;
        }
        weft__unlock(&rw->weft_lock);
        return WEFT_WITHDRAW_RACED;     /* the re-poll yields 0, hold kept */
    default:
        settle_idle(w);
        weft__unlock(&rw->weft_lock);
        return WEFT_WITHDRAWN;
    }
}

static weft_poll acquire(weft_cx *cx, weft_rwlock *rw, weft_rwlock_waiter *w, bool write)
{
    if (!cx || !rw || !w
        || (w->weft_owner && (w->weft_owner != rw || w->weft_write != (uint32_t)write)))
        return -EINVAL;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft_poll r = WEFT_PENDING;
    bool suspend = false;
    weft__lock(&rw->weft_lock);
    if (!w->weft_owner) {
        if (weft__waitq_empty(&rw->weft_waiters) && compatible(rw, write)) {
            /* Out of budget: take nothing; the task is requeued. */
            if (weft_cx_coop(cx)) {
                take_hold(rw, write);
                r = 0;
            }
        } else {
            w->weft_owner = rw;
            w->weft_write = write;
            w->weft_node.weft_state = WEFT__WAIT_QUEUED;
            w->weft_node.weft_wake = weft_cx_waker(cx);
            weft__waitq_push(&rw->weft_waiters, &w->weft_node);
            suspend = true;
        }
    } else if (w->weft_node.weft_state == WEFT__WAIT_QUEUED) {
        weft__defer_drop(&d, weft__wait_refresh_waker(&w->weft_node, cx));
        suspend = true;
    } else {
        settle_idle(w);     /* GRANTED: the hold is the caller's (rule 1) */
        r = 0;
    }
    weft__unlock(&rw->weft_lock);
    weft__deferred_run(&d);
    if (suspend)
        weft_cx_suspend(cx, w, lock_withdraw);
    return r;
}

weft_poll weft_rwlock_read(weft_cx *cx, weft_rwlock *rw, weft_rwlock_waiter *w)
{
    return acquire(cx, rw, w, false);
}

weft_poll weft_rwlock_write(weft_cx *cx, weft_rwlock *rw, weft_rwlock_waiter *w)
{
    return acquire(cx, rw, w, true);
}

size_t weft__rwlock_waiters(weft_rwlock *rw)
{
    weft__lock(&rw->weft_lock);
    size_t n = weft__waitq_len(&rw->weft_waiters);
    weft__unlock(&rw->weft_lock);
    return n;
}
