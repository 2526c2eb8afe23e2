/*
 * sync/fanout.c - the channel core of fanout.h, shared by broadcast.c and
 * watch.c: handle counts, close, freeing, and the receiver wait protocol.
 * The rules cited here are fanout.h's.
 */
#include "sync/fanout.h"

#include <errno.h>

#include "runtime/alloc.h"
#include "sync/batch.h"
#include "sync/inspect_waits.h"
#include "sync/lock.h"
#include "sync/waitq.h"

weft__fanout *weft__fanout_new(size_t alloc_size)
{
    weft__fanout *f = weft__calloc(alloc_size);
    if (!f)
        return NULL;
    f->alloc_size = alloc_size;
    f->senders = 1;
    f->receivers = 1;
    return f;
}

/* Unlock, run the deferred wakes, and free the object if the caller's
 * handle was the last (rule 3). */
static void unlock_and_settle(weft__fanout *f, weft__deferred *d)
{
    bool free_it = f->senders == 0 && f->receivers == 0;
    weft__unlock(&f->lock);
    weft__deferred_run(d);
    if (free_it)
        weft__free(f, f->alloc_size);
}

void weft__fanout_tx_clone(weft__fanout *f)
{
    weft__lock(&f->lock);
    f->senders++;
    weft__unlock(&f->lock);
}

struct front {
    weft__fanout *f;
    const weft__fanout_ops *ops;
    uint64_t mark;
};

static bool front_ready(weft_wait_node *node, void *arg)
{
    const struct front *fr = arg;
    return fr->f->closed || fr->ops->behind(node, fr->mark);
}

void weft__fanout_wake_front(weft__fanout *f, const weft__fanout_ops *ops, uint64_t mark)
{
    struct front fr = { f, ops, mark };
    weft__wake_front(&f->lock, &f->waiters, front_ready, &fr);
}

static bool is_closed(weft_wait_node *node, void *arg)
{
    (void)node;
    return ((const weft__fanout *)arg)->closed;
}

void weft__fanout_tx_drop(weft__fanout *f)
{
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft__lock(&f->lock);
    if (f->senders == 1) {
        f->closed = true;       /* rule 2: from here every node is woken */
        weft__wake_front(&f->lock, &f->waiters, is_closed, f);
    }
    f->senders--;
    unlock_and_settle(f, &d);
}

uint64_t weft__fanout_rx_join(weft__fanout *f, const uint64_t *pos)
{
    weft__lock(&f->lock);
    f->receivers++;
    uint64_t start = *pos;
    weft__unlock(&f->lock);
    return start;
}

/* Unlink the receiver's node if it is queued. Lock held. */
static void unqueue(weft__fanout *f, weft_wait_node *node, weft__deferred *d)
{
    if (node->weft_state != WEFT__WAIT_QUEUED)
        return;
    weft__waitq_remove(&f->waiters, node);
    node->weft_state = WEFT__WAIT_IDLE;
    weft__defer_drop(d, weft__wait_take_waker(node));
}

void weft__fanout_rx_drop(weft__fanout *f, weft_wait_node *node)
{
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft__lock(&f->lock);
    unqueue(f, node, &d);       /* none unless misused */
    f->receivers--;
    unlock_and_settle(f, &d);
}

/* Queue the receiver's node unless it is already (rule 1). Lock held. */
static void enqueue(weft__fanout *f, weft_wait_node *node, weft_cx *cx)
{
    if (node->weft_state == WEFT__WAIT_QUEUED)
        return;
    node->weft_state = WEFT__WAIT_QUEUED;
    node->weft_wake = weft_cx_waker(cx);
    weft__waitq_push(&f->waiters, node);
}

weft_poll weft__fanout_poll(weft_cx *cx, weft__fanout *f, void *rx, weft_wait_node *node,
                            const weft__fanout_ops *ops, uint64_t *out)
{
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft_poll r = WEFT_PENDING;
    bool suspend = false;
    weft__lock(&f->lock);
    bool queued = node->weft_state == WEFT__WAIT_QUEUED;
    if (queued && !weft_waker_will_wake(&node->weft_wake, cx)) {
        r = -EBUSY;     /* another task waits on this receiver */
    } else if (ops->ready(f, node)) {
        unqueue(f, node, &d);
        r = ops->take(cx, f, node, out);
    } else {
        enqueue(f, node, cx);
        suspend = true;
    }
    weft__unlock(&f->lock);
    weft__deferred_run(&d);
    if (suspend)
        weft_cx_suspend(cx, rx, ops->withdraw);
    return r;
}

weft_withdraw weft__fanout_withdraw(weft__fanout *f, weft_wait_node *node,
                                    weft__fanout_ready_fn *ready)
{
    if (!f)
        return WEFT_WITHDRAWN;
    weft__deferred d = WEFT__DEFERRED_INIT;
    weft__lock(&f->lock);
    unqueue(f, node, &d);
    /* Nothing is taken here: a re-poll reports what came (RACED); a
     * torn-down task leaves its position where it was. */
    bool decided = ready(f, node);
    weft__unlock(&f->lock);
    weft__deferred_run(&d);
    return decided ? WEFT_WITHDRAW_RACED : WEFT_WITHDRAWN;
}

size_t weft__fanout_waiters(weft__fanout *f)
{
    weft__lock(&f->lock);
    size_t n = weft__waitq_len(&f->waiters);
    weft__unlock(&f->lock);
    return n;
}
