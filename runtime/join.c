/*
 * runtime/join.c - the join handle: await it, wait on it, abort, detach.
 *
 * The handle owns one task reference and JOIN_INTEREST. The join_waker field
 * follows the numbered rules in task_state.h; the comments below cite them.
 * Emptying the handle (h->weft_task = NULL) is how a consumed handle is told
 * apart from a live one, so a second join or detach returns -EINVAL.
 *
 * One wait at a time. A waiter claims the empty join_waker field with a CAS
 * before it sets JOIN_WAKER, and empties the field again after it has taken
 * its waker back, so two would-be waiters that race (a misuse) cannot both
 * write it (rule 1). The field is therefore non-zero exactly while a wait
 * holds the handle; after COMPLETE it keeps the woken waiter's bits, since
 * that waiter has yet to take the outcome. A second join, from a task or a
 * thread, and a detach find it held and return -EBUSY without touching
 * anything: replacing the waker would leave the first waiter never woken,
 * and emptying the handle would leave it a NULL task to withdraw from.
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

/* The join waker field as one word, for the claim and the checks above. */
static uintptr_t *waker_word(weft__task *t)
{
    return &weft__task_join_waker(t)->weft_bits;
}

/* Does a wait hold the handle, and is it cx's task's (cx may be NULL)? */
enum holder { HELD_BY_NONE, HELD_BY_CALLER, HELD_BY_OTHER };

static enum holder holder(weft__task *t, weft_cx *cx)
{
    weft_waker w = { __atomic_load_n(waker_word(t), __ATOMIC_ACQUIRE) };
    if (!w.weft_bits)
        return HELD_BY_NONE;
    return weft_waker_will_wake(&w, cx) ? HELD_BY_CALLER : HELD_BY_OTHER;
}

/* Take the waker back (JOIN_WAKER is clear: rule 1) and free the field for
 * the next wait. Release: the next claim sees JOIN_WAKER clear. */
static void release_waker(weft__task *t)
{
    weft_waker w = { __atomic_exchange_n(waker_word(t), 0, __ATOMIC_RELEASE) };
    weft_waker_drop(&w);
}

enum install { INSTALLED, COMPLETED, BUSY };

/* Claim the field for `waker` and publish it (rules 1 and 2). COMPLETED: the
 * task finished first; BUSY: another wait holds the field. Both drop the
 * waker. */
static enum install install_waker(weft__task *t, weft_waker waker)
{
    uintptr_t none = 0;
    if (!__atomic_compare_exchange_n(waker_word(t), &none, waker.weft_bits, false,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
        weft_waker_drop(&waker);
        return BUSY;
    }
    if (weft__state_set_join_waker(&t->state) == WEFT__JOIN_COMPLETE) {
        release_waker(t);
        return COMPLETED;
    }
    return INSTALLED;
}

static weft_withdraw join_withdraw(weft_cx *cx, void *leaf)
{
    weft__task *t = ((weft_join *)leaf)->weft_task;
    /* A backstop: a detach may empty the handle between the task's end and
     * our next poll; then nothing of the wait is left to withdraw. */
    if (!t)
        return WEFT_WITHDRAWN;
    if (is_complete(t))
        return WEFT_WITHDRAW_RACED;     /* rule 4: the completer wakes us */
    if (holder(t, cx) != HELD_BY_CALLER)
        return WEFT_WITHDRAWN;          /* asked again after a withdrawal */
    if (weft__state_unset_join_waker(&t->state) == WEFT__JOIN_COMPLETE)
        return WEFT_WITHDRAW_RACED;     /* rule 4: the completer wakes us */
    release_waker(t);
    return WEFT_WITHDRAWN;
}

weft_poll weft_join_await(weft_cx *cx, weft_join *h, weft_outcome *out)
{
    if (!cx || !h || !h->weft_task || !out)
        return -EINVAL;
    weft__task *t = h->weft_task;
    enum holder who = holder(t, cx);
    if (who == HELD_BY_OTHER)
        return -EBUSY;
    if (!is_complete(t)) {
        enum install r = who == HELD_BY_CALLER ? INSTALLED : install_waker(t, weft_cx_waker(cx));
        if (r == BUSY)
            return -EBUSY;
        if (r == INSTALLED) {
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
    if (weft__state_unset_join_waker(&t->state) == WEFT__JOIN_OK) {
        release_waker(t);
        return true;
    }
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
    if (holder(t, NULL) != HELD_BY_NONE)
        return -EBUSY;
    if (!is_complete(t)) {
        /* A simulated runtime runs tasks only inside weft_block_on on its
         * own thread (weft/sim.h): nothing would finish this one meanwhile. */
        if (t->rt->sim.on)
            return -EDEADLK;
        weft__thread_waiter tw;
        enum install r = install_waker(t, weft__waker_for_thread(&tw));
        if (r == BUSY)
            return -EBUSY;
        if (r == INSTALLED && !weft__thread_waiter_wait(&tw, deadline_ns)
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
        return r;   /* joined, -EBUSY or -ECANCELED: the handle is as join_await left it */
    give_up(h);
    return -ETIMEDOUT;
}

bool weft__join_install_waker(weft_join *h, weft_waker waker)
{
    /* A group's own handle, which nobody else waits on: never BUSY. */
    return install_waker(h->weft_task, waker) == INSTALLED;
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
    /* A wait not yet woken holds the handle. Once the task is complete the
     * waker is the completer's (rule 4), and a cancel-safe task torn down
     * while awaiting the handle must still detach it from its drop hook. */
    if (holder(t, NULL) != HELD_BY_NONE && !is_complete(t))
        return -EBUSY;
    weft__state_drop_join_interest(&t->state, true);
    h->weft_task = NULL;
    weft__task_unref(t);
    return 0;
}

bool weft_join_is_finished(const weft_join *h)
{
    return h && h->weft_task && is_complete(h->weft_task);
}
