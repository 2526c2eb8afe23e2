/*
 * runtime/harness.c - the life of one poll, and the end of a task.
 *
 * A task ends in exactly one of three ways, and each runs the drop hook once,
 * then publishes the outcome, then sets COMPLETE:
 *   returned     poll gave a value: status 0.
 *   torn down    a cancel-safe task with a request and no shield: its leaf is
 *                withdrawn (waiting, if the withdrawal is asynchronous, so no
 *                kernel operation still points into the frame), then status
 *                -ECANCELED.
 *   shut down    the shutdown sweep does the same as a tear-down.
 *
 * Hooks (cancel hooks, drop hooks) run in a worker's context, always: the
 * sweep runs on the thread that called shutdown, after the workers stopped,
 * and lends it a worker of the task's runtime while it tears a task down.
 * So a blocking call made from a hook is refused there as on a worker
 * (-EDEADLK; -EBUSY for a group), instead of waiting for a task that only
 * this thread could finish; and a task such a hook wakes goes to a queue
 * the sweep drains.
 */
#include "runtime/harness.h"

#include "reactor/scope.h"
#include "runtime/rt.h"
#include "runtime/task.h"
#include "runtime/trace.h"
#include "runtime/worker.h"

/* Rule 4 of task_state.h: the joiner's waker is ours once COMPLETE found it
 * set. The field is left as it is: the join side may still be reading it
 * (rule 3). */
static void wake_joiner(weft__task *t)
{
    weft_waker waker = *weft__task_join_waker(t);
    weft_waker_wake(&waker);
}

/* status: 0 for a task whose poll returned `value`, -ECANCELED for one torn
 * down by a cancellation. */
static void finish(weft__task *t, int worker, int64_t value, int status)
{
    weft__scopes_close_all(t);      /* no scope timer may outlive the frame */
    weft_drop_fn drop = weft__task_drop_fn(t);
    if (drop)
        drop(weft__task_frame(t));
    t->value = value;       /* over leaf and leaf_hook: task.h rule 5 */
    t->status = status;
    weft__cancel_record *rec = weft__task_record(t);
    if (rec && t->shield_depth > 0
        && (atomic_load_explicit(&t->state, memory_order_acquire) & WEFT__CANCEL_REQUESTED))
        rec->shield_held_ns += weft__shield_hold(t);
    weft__task_unbind_tokens(t);    /* before anyone can free the task */
    weft_runtime *rt = t->rt;
    bool torn_down = status == -ECANCELED;
    if (weft__registry_unlink_own(&rt->registry, t, worker)) {
        /* The usual case, a task completing on the worker that spawned it:
         * completing and dropping the registry's and the running reference
         * take one CAS. */
        switch (weft__state_to_complete_released(&t->state, torn_down, 2)) {
        case WEFT__DONE_WAKE_JOINER:
            wake_joiner(t);
            if (weft__state_ref_dec_n(&t->state, 2))
                weft__task_free(t);
            break;
        case WEFT__DONE_LAST:
            weft__task_free(t);
            break;
        case WEFT__DONE_RELEASED:
            break;
        }
        return;
    }
    /* Completed away from its owner: the running reference goes in the
     * completing CAS too, unless a joiner must be woken first; the
     * registry's stays with the task for the owner (registry.h, rule 2). */
    uint32_t owner;
    if (weft__state_to_complete_released(&t->state, torn_down, 1) == WEFT__DONE_WAKE_JOINER) {
        wake_joiner(t);
        owner = weft__registry_hand_back(&rt->registry, t);
        weft__task_unref(t);
    } else {
        owner = weft__registry_hand_back(&rt->registry, t);
    }
    if (weft__idle_is_sleeper(&rt->idle, owner))
        weft__driver_unpark(&rt->workers[owner].driver);
}

/* Withdraw the leaf a torn-down task is suspended on. Returns false while an
 * asynchronous withdrawal is still under way. */
static bool withdraw_leaf(struct weft_cx *cx, weft__task *t)
{
    if (!t->leaf)
        return true;
    if (t->leaf_hook(cx, t->leaf) == WEFT_WITHDRAW_PENDING) {
        t->leaf_withdrawing = true;
        return false;
    }
    t->leaf = NULL;
    t->leaf_withdrawing = false;
    return true;
}

static bool must_tear_down(weft__task *t)
{
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    return (s & WEFT__CANCEL_SAFE) && (s & WEFT__CANCEL_REQUESTED) && t->shield_depth == 0;
}

/* A task woken during its poll goes to the back of the queue; one that gave
 * its worker back waits, besides, for the worker's I/O, timers and inject
 * queue (weft__schedule_yielded). */
static void go_idle(weft__task *t, bool yielded)
{
    if (yielded) {
        weft__state_to_requeued(&t->state);
        weft__schedule_yielded(t);
    } else if (weft__state_to_idle(&t->state) == WEFT__IDLE_NOTIFIED) {
        weft__schedule(t, true);
    }
}

static void tear_down(weft_worker *w, weft__task *t)
{
    struct weft_cx cx;
    weft__cx_init(&cx, t, w);
    cx.teardown = true;
    if (!withdraw_leaf(&cx, t)) {
        go_idle(t, false);  /* the leaf wakes the task once it has settled */
        return;
    }
    weft__cancel_took_effect(t, t->suspended_at, WEFT_TRACE_TORN_DOWN);
    finish(t, (int)w->index, 0, -ECANCELED);
}

void weft__harness_poll(weft_worker *w, weft__task *t)
{
    switch (weft__state_to_running(&t->state)) {
    case WEFT__RUN_FAILED:
        weft__count(&w->metrics.unpolled, 1);
        return;
    case WEFT__RUN_DEALLOC:
        weft__count(&w->metrics.unpolled, 1);
        weft__task_free(t);
        return;
    case WEFT__RUN_CANCELLED:
        if (must_tear_down(t)) {
            weft__count(&w->metrics.unpolled, 1);
            tear_down(w, t);
            return;
        }
        break;
    case WEFT__RUN_OK:
        break;
    }
    struct weft_cx cx;
    weft__cx_init(&cx, t, w);
    weft__stamp_poll(&w->metrics, t);
    weft_poll r = weft__trace_poll(w, t, &cx);
    if (r != WEFT_PENDING) {
        finish(t, (int)w->index, r, 0);
        return;
    }
    if (__builtin_expect(t->rt->cancel_plan != NULL, 0))
        weft__cancel_plan_suspended(t->rt->cancel_plan, t);    /* still ours */
    go_idle(t, cx.yielded);
}

void weft__harness_shutdown(weft__task *t)
{
    /* The workers have stopped and this thread owns their queues (registry.h,
     * rule 4): lend it the worker of the task's shard (see the top). The cx
     * keeps no worker: leaves take their shutdown path, not an owner's. */
    weft_runtime *rt = t->rt;
    weft_worker *lent = weft__current_worker;
    uint32_t shard = weft__state_shard(atomic_load_explicit(&t->state, memory_order_relaxed));
    weft__current_worker = &rt->workers[shard < rt->nworkers ? shard : 0];
    struct weft_cx cx;
    weft__cx_init(&cx, t, NULL);
    cx.teardown = true;
    /* Workers drained their rings (and timers were settled) before this
     * sweep, so no withdrawal can still be pending here (reactor/op.h). */
    withdraw_leaf(&cx, t);
    weft__cancel_took_effect(t, t->suspended_at, WEFT_TRACE_TORN_DOWN);
    finish(t, -1, 0, -ECANCELED);
    weft__current_worker = lent;
}
