/*
 * runtime/join.c - the join handle: await it, wait on it, abort, detach.
 *
 * The handle owns one task reference and JOIN_INTEREST. The join_waker field
 * follows the numbered rules in task_state.h; the comments below cite them.
 * Emptying the handle (h->weft_task = NULL) is how a consumed handle is told
 * apart from a live one, so a second join or detach returns -EINVAL.
 */
#include "runtime/join.h"
#include "runtime/rt.h"
#include "runtime/task.h"
#include "runtime/waker.h"
#include "runtime/worker.h"

static void read_outcome(weft__task *t, weft_outcome *out)
{
    /* Rule 5: acquire COMPLETE before reading what was written before it. */
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    const weft__cancel_record *rec = weft__task_record(t);  /* a joinable task has one */
    out->status = t->status;
    out->value = t->value;
    out->cancel.source = (weft_cancel_source)weft__state_source(s);
    out->cancel.delivered_at = rec->delivered_at;
    out->cancel.shield_held_ns = rec->shield_held_ns;
}

/* The task is complete: hand its outcome over and empty the handle. */
static int consume(weft_join *h, weft_outcome *out)
{
    weft__task *t = h->weft_task;
    read_outcome(t, out);
    h->weft_task = NULL;
    int status = out->status;
    weft__task_unref(t);
    return status;
}

static bool is_complete(weft__task *t)
{
    return atomic_load_explicit(&t->state, memory_order_acquire) & WEFT__COMPLETE;
}

/* Install `waker` as the join waker. Returns false (and drops the waker) when
 * the task completed first. */
static bool install_waker(weft__task *t, weft_waker waker)
{
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    if (s & WEFT__JOIN_WAKER) {
        /* Rule 3: take the field back before replacing it. */
        if (weft__state_unset_join_waker(&t->state) == WEFT__JOIN_COMPLETE) {
            weft_waker_drop(&waker);
            return false;
        }
        weft_waker_drop(weft__task_join_waker(t));
    }
    *weft__task_join_waker(t) = waker;      /* rule 1 */
    if (weft__state_set_join_waker(&t->state) == WEFT__JOIN_COMPLETE) {
        weft_waker_drop(weft__task_join_waker(t));
        return false;
    }
    return true;
}

static weft_withdraw join_withdraw(weft_cx *cx, void *leaf)
{
    (void)cx;
    weft__task *t = ((weft_join *)leaf)->weft_task;
    if (!(atomic_load_explicit(&t->state, memory_order_acquire) & WEFT__JOIN_WAKER))
        return is_complete(t) ? WEFT_WITHDRAW_RACED : WEFT_WITHDRAWN;
    if (weft__state_unset_join_waker(&t->state) == WEFT__JOIN_COMPLETE)
        return WEFT_WITHDRAW_RACED;     /* rule 4: the completer wakes us */
    weft_waker_drop(weft__task_join_waker(t));
    return WEFT_WITHDRAWN;
}

weft_poll weft_join_await(weft_cx *cx, weft_join *h, weft_outcome *out)
{
    if (!cx || !h || !h->weft_task || !out)
        return -EINVAL;
    weft__task *t = h->weft_task;
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    if (!(s & WEFT__COMPLETE)) {
        /* Rule 3: with JOIN_WAKER set and COMPLETE clear nobody writes the field. */
        bool registered = (s & WEFT__JOIN_WAKER) && weft_waker_will_wake(weft__task_join_waker(t), cx);
        if (registered || install_waker(t, weft_cx_waker(cx))) {
            weft_cx_suspend(cx, h, join_withdraw);
            return WEFT_PENDING;
        }
    }
    if (!weft_cx_coop(cx))
        return WEFT_PENDING;
    return consume(h, out);
}

/* Give up waiting on a task that has not finished: take the waker back; if
 * the task completed meanwhile, its completer wakes us (rule 4) and the
 * outcome is ours after all. Returns true when the wait was withdrawn. */
static bool withdraw_thread_wait(weft__task *t, weft__thread_waiter *tw)
{
    if (weft__state_unset_join_waker(&t->state) == WEFT__JOIN_OK)
        return true;
    weft__thread_waiter_wait(tw, 0);
    return false;
}

/* A wait that stopped waiting: abort a cancel-safe task, let go of the rest. */
static void give_up(weft_join *h)
{
    weft__task *t = h->weft_task;
    if (atomic_load_explicit(&t->state, memory_order_relaxed) & WEFT__CANCEL_SAFE)
        weft__task_request_cancel(t, WEFT_CANCEL_TIMEOUT);
    weft_detach(h);
}

static int wait_from_thread(weft_join *h, weft_outcome *out, uint64_t deadline_ns)
{
    if (!h || !h->weft_task || !out)
        return -EINVAL;
    if (weft__current_worker)
        return -EDEADLK;
    weft__task *t = h->weft_task;
    if (!is_complete(t)) {
        weft__thread_waiter tw;
        if (install_waker(t, weft__waker_for_thread(&tw))
            && !weft__thread_waiter_wait(&tw, deadline_ns)
            && withdraw_thread_wait(t, &tw)) {
            give_up(h);
            return -ETIMEDOUT;
        }
    }
    consume(h, out);
    return 0;
}

int weft_join_wait(weft_join *h, weft_outcome *out)
{
    return wait_from_thread(h, out, 0);
}

int weft_join_wait_timeout(weft_join *h, weft_outcome *out, uint64_t timeout_ns)
{
    uint64_t now = weft__monotonic_ns();
    uint64_t deadline = timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
    return wait_from_thread(h, out, deadline ? deadline : 1);
}

static weft_poll join_or_timer(weft_cx *cx, void *frame, unsigned branch)
{
    weft_join_timeout *jt = frame;
    if (branch == 0)
        return weft_join_await(cx, jt->weft_handle, jt->weft_out);
    return weft_sleep_for(cx, &jt->weft_timer, jt->weft_ns);
}

weft_poll weft_join_await_timeout(weft_cx *cx, weft_join_timeout *jt, weft_join *h,
                                  weft_outcome *out, uint64_t timeout_ns)
{
    if (!cx || !jt || !h || !out)
        return -EINVAL;
    /* Once the select runs, the join branch may have consumed the handle
     * while a losing timer still settles. */
    if (jt->weft_sel.weft_running == 0 && !h->weft_task)
        return -EINVAL;
    jt->weft_handle = h;
    jt->weft_out = out;
    jt->weft_ns = timeout_ns;
    weft_poll r = weft_select(cx, &jt->weft_sel, 2, join_or_timer, jt);
    if (r == WEFT_PENDING || weft_select_winner(&jt->weft_sel) != 1)
        return r;   /* joined, or -ECANCELED: the handle is as join_await leaves it */
    give_up(h);
    return -ETIMEDOUT;
}

bool weft__join_install_waker(weft_join *h, weft_waker waker)
{
    return install_waker(h->weft_task, waker);
}

int weft__join_consume(weft_join *h, weft_outcome *out)
{
    return consume(h, out);
}

int weft_abort(weft_join *h)
{
    if (!h || !h->weft_task)
        return -EINVAL;
    weft__cancel_outcome o = weft__task_request_cancel(h->weft_task, WEFT_CANCEL_ABORT);
    return o == WEFT__CANCEL_FINISHED ? 1 : 0;
}

int weft_detach(weft_join *h)
{
    if (!h || !h->weft_task)
        return -EINVAL;
    weft__task *t = h->weft_task;
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    bool had_waker = s & WEFT__JOIN_WAKER;
    if (weft__state_drop_join_interest(&t->state, true) == WEFT__JOIN_OK && had_waker)
        weft_waker_drop(weft__task_join_waker(t));  /* rule 3: cleared while not complete */
    h->weft_task = NULL;
    weft__task_unref(t);
    return 0;
}

bool weft_join_is_finished(const weft_join *h)
{
    return h && h->weft_task && is_complete(h->weft_task);
}
