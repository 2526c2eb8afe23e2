/*
 * runtime/cancel.c - recording cancellation requests, delivering them at
 * await points (withdrawing the leaf in flight), shield regions, and the
 * provenance of each delivery. The await protocol itself (suspending, the
 * budget, yield) is runtime/await.c.
 *
 * Delivery rules (docs/cancellation.md states them for users):
 *   1. A request is recorded once (the first source wins, in the same CAS that
 *      sets CANCEL_REQUESTED) and never cleared.
 *   2. While the task's shield depth is above zero nothing is delivered.
 *   3. Cooperative task: at an await that has no leaf in flight, the await
 *      yields -ECANCELED. At an await whose leaf is suspended, the leaf is
 *      withdrawn first; a leaf that completed before the withdrawal wins and
 *      its real result is returned. Level-triggered: every later await repeats.
 *   4. Cancel-safe task: the await suspends instead; the task was notified by
 *      the requester and the harness tears it down before it can be resumed.
 *   5. A delivery spends one unit of the cooperative budget, like a leaf that
 *      completes; with the budget gone the await suspends and the task is
 *      requeued, and the delivery happens at the next poll.
 *   6. A request takes precedence over a deadline scope's expiry; with no
 *      request to deliver (none, or shielded), the await is the scopes'
 *      (reactor/scope.c).
 */
#include <stdatomic.h>
#include <stddef.h>

#include "reactor/scope.h"
#include "runtime/rt.h"
#include "runtime/task.h"
#include "runtime/trace.h"
#include "runtime/worker.h"

/* The request time (task.h rule 4). Its readers are a trace (the hook or
 * weft_trace_start) and a shield's hold, which starts at the later of the
 * request and the shield's entry; with neither in sight the precise clock
 * costs more than a cancelled task's whole teardown step, so the coarse one
 * (a tick behind at most) stands in. A shield entered just as the request
 * lands may be missed here; its hold is then at most a tick too long. */
static uint64_t request_time(weft__task *t)
{
    weft_runtime *rt = t->rt;
    if (rt->trace || weft__tracing(rt) || weft__task_shield_depth(t) > 0)
        return weft__monotonic_ns();
    return weft__coarse_ns();
}

weft__cancel_outcome weft__task_request_cancel(weft__task *t, weft_cancel_source source)
{
    weft__cancel_outcome o = weft__state_request_cancel(&t->state, (int)source);
    if (o == WEFT__CANCEL_SUBMIT || o == WEFT__CANCEL_NOTED) {
        weft__cancel_record *rec = weft__task_record(t);
        if (rec)
            atomic_store_explicit(&rec->requested_ns, request_time(t), memory_order_relaxed);
        weft__trace_task(t, WEFT__TR_CANCEL_REQ, (int32_t)source);
    }
    if (o == WEFT__CANCEL_SUBMIT)
        weft__schedule(t, false);
    return o;
}

void weft__task_request_shutdown(weft__task *t, void *arg)
{
    (void)arg;
    weft__task_request_cancel(t, WEFT_CANCEL_SHUTDOWN);
}

/* A task without a record can only have been asked by shutdown (task.h). */
static uint64_t requested_ns(weft__task *t, const weft__cancel_record *rec)
{
    if (rec)
        return atomic_load_explicit(&rec->requested_ns, memory_order_relaxed);
    return atomic_load_explicit(&t->rt->closing_ns, memory_order_relaxed);
}

uint64_t weft__shield_hold(weft__task *t)
{
    weft__cancel_record *rec = weft__task_record(t);
    if (!rec)
        return 0;
    uint64_t req = requested_ns(t, rec);
    uint64_t from = req > rec->shield_started_ns ? req : rec->shield_started_ns;
    uint64_t now = weft__monotonic_ns();
    return now > from ? now - from : 0;
}

void weft__cancel_took_effect(weft__task *t, const weft_site *site, weft_trace_kind kind)
{
    /* Provenance records the first await only. A tear-down is the last
     * thing that happens to the task: it only looks, and leaves the bit to
     * the CAS that completes the task (task_state.h, CANCEL_SEEN). */
    bool first = kind == WEFT_TRACE_TORN_DOWN ? !weft__state_cancel_seen(&t->state)
                                              : weft__state_mark_cancel_seen(&t->state);
    if (!first)
        return;
    weft__count_cancelled(t);
    weft__cancel_record *rec = weft__task_record(t);
    if (rec)
        rec->delivered_at = site;
    weft_runtime *rt = t->rt;
    if (!rt->trace && !weft__tracing(rt))
        return;
    weft_trace_event ev = {
        .kind = kind,
        .task_name = weft__task_name(t),
        .task_id = (uintptr_t)t,
        .source = (weft_cancel_source)weft__state_source(
            atomic_load_explicit(&t->state, memory_order_acquire)),
        .site = site,
        .requested_ns = requested_ns(t, rec),
        .shield_held_ns = rec ? rec->shield_held_ns : 0,
    };
    if (rt->trace)
        rt->trace(&ev, rt->trace_arg);
    if (weft__tracing(rt))
        weft__trace_cancel_slow(rt, &ev);
}

int weft__cancel_at_await(weft_cx *cx, const weft_site *site)
{
    weft__task *t = cx->task;
    /* No request to deliver: the await may be inside an expired deadline
     * scope instead (a shield outside the scope does not hold its expiry). */
    if (t->shield_depth > 0
        || !(atomic_load_explicit(&t->state, memory_order_acquire) & WEFT__CANCEL_REQUESTED))
        return weft__scope_at_await(cx, site);
    if (atomic_load_explicit(&t->state, memory_order_acquire) & WEFT__CANCEL_SAFE) {
        weft__task_set_site(t, site);
        return WEFT__AWAIT_SUSPEND;
    }
    if (t->leaf && !t->leaf_withdrawing) {
        switch (t->leaf_hook(cx, t->leaf)) {
        case WEFT_WITHDRAW_RACED:
            return WEFT__AWAIT_POLL;
        case WEFT_WITHDRAW_PENDING:
            /* The leaf will most likely report -ECANCELED here once it has
             * settled; this await is where the request took effect. */
            t->leaf_withdrawing = true;
            weft__task_set_site(t, site);
            weft__cancel_took_effect(t, site, WEFT_TRACE_CANCEL_DELIVERED);
            return WEFT__AWAIT_SUSPEND;
        case WEFT_WITHDRAWN:
            break;
        }
    } else if (t->leaf) {
        return WEFT__AWAIT_POLL;    /* the leaf reports how its withdrawal ended */
    }
    t->leaf_withdrawing = false;
    t->leaf = NULL;
    /* A delivery completes the await like any leaf, so it spends budget: a
     * task that ignores -ECANCELED in a loop still gives its worker back. */
    if (!weft_cx_coop(cx)) {
        weft__task_set_site(t, site);
        return WEFT__AWAIT_SUSPEND;
    }
    weft__cancel_took_effect(t, site, WEFT_TRACE_CANCEL_DELIVERED);
    return WEFT__AWAIT_CANCELLED;
}

bool weft_cx_cancel_requested(weft_cx *cx)
{
    return cx && (atomic_load_explicit(&cx->task->state, memory_order_relaxed)
                  & WEFT__CANCEL_REQUESTED);
}

bool weft_cx_cancel_due(weft_cx *cx)
{
    if (weft_cx_cancel_requested(cx) && cx->task->shield_depth == 0)
        return true;
    /* A compound leaf stops with -ECANCELED: remember that it meant the
     * expiry (weft__timeout_result). */
    if (cx && weft__scope_due(cx->task))
        return cx->scope_stop = true;
    return false;
}

/* Regions 65535 deep can only be unmatched enters piling up (a loop that
 * enters and never exits), and the call has no error to return: the task
 * stays shielded for good (WEFT__SHIELD_STUCK), which is what those enters
 * asked for, rather than have weft abort the process on the user's behalf.
 * Exits no longer count there, since the depth has lost track of them; the
 * runtime's shutdown still tears such a task down after its grace period. */
#define SHIELD_STUCK WEFT__SHIELD_STUCK

void weft_shield_enter(weft_cx *cx)
{
    if (!cx)
        return;
    weft__task *t = cx->task;
    if (t->shield_depth == SHIELD_STUCK)
        return;
    weft__task_set_shield_depth(t, (uint16_t)(t->shield_depth + 1));
    if (t->shield_depth > 1)
        return;
    /* The hold runs from the later of the request and the shield's start, so
     * the start matters only when the request came first: read the clock only
     * then, and leave the common entry free of it. */
    weft__cancel_record *rec = weft__task_record(t);
    if (rec)
        rec->shield_started_ns = weft_cx_cancel_requested(cx) ? weft__monotonic_ns() : 0;
}

void weft_shield_exit(weft_cx *cx)
{
    if (!cx)
        return;
    weft__task *t = cx->task;
    if (t->shield_depth == 0 || t->shield_depth == SHIELD_STUCK)
        return;
    weft__task_set_shield_depth(t, (uint16_t)(t->shield_depth - 1));
    if (t->shield_depth > 0)
        return;
    if (atomic_load_explicit(&t->state, memory_order_acquire) & WEFT__CANCEL_REQUESTED) {
        weft__cancel_record *rec = weft__task_record(t);
        if (rec)
            rec->shield_held_ns += weft__shield_hold(t);
        /* A cancel-safe task parked its teardown behind the shield: it must
         * not be resumed past the next await, and the harness must see it. */
        if (atomic_load_explicit(&t->state, memory_order_relaxed) & WEFT__CANCEL_SAFE)
            weft__task_wake_by_ref(t);
    }
}

const char *weft_cancel_source_name(weft_cancel_source source)
{
    switch (source) {
    case WEFT_CANCEL_NONE: return "none";
    case WEFT_CANCEL_ABORT: return "abort";
    case WEFT_CANCEL_TOKEN: return "token";
    case WEFT_CANCEL_TIMEOUT: return "timeout";
    case WEFT_CANCEL_GROUP: return "group";
    case WEFT_CANCEL_SHUTDOWN: return "shutdown";
    }
    return "unknown";
}
