/*
 * reactor/scope.c - deadline scopes (weft/scope.h): entering and exiting
 * them, their timers on the sleep wheels, and delivering their expiry at
 * awaits as -ETIMEDOUT.
 *
 * Where things live, with a task header that has no room left:
 *   - The open scopes of a task form a chain through the scopes themselves
 *     (weft_outer, innermost first). Its head is the top-level frame's
 *     weft_reserved word: the innermost scope's byte offset from the frame
 *     (0: none), which is why a scope must be part of the task's frame.
 *   - "Some open scope may have expired" is the SCOPE_EXPIRED bit of the
 *     state word (runtime/task_state.h), which every await already loads:
 *     an await pays for scopes only once one has expired.
 *   - A scope's timer is a wheel timer (kind WEFT__TIMER_SCOPE) on the sleep
 *     wheel of the worker that entered it, so it fires like a sleep, on its
 *     owner or on any worker that finds the owner stuck (driver.h, rule 4).
 *
 * Rules:
 *   1. The chain, every field of an open scope but weft_state and
 *      weft_expired_ns, and weft_reserved belong to the holder of RUNNING.
 *   2. An armed timer holds a reference to the task, taken when it is armed
 *      and given back by exactly one of: the firing (a wake by value), or
 *      the disarm that took it off the wheel.
 *   3. The firing runs under the wheel's lock, and touches the scope only
 *      until it has stored FIRED. Exit disarms under the same lock, so once
 *      a disarm returns, no firing is running or will run: the scope may be
 *      reused or its frame dropped.
 *   4. Firing stores FIRED, then sets SCOPE_EXPIRED; an exit clears the bit,
 *      then looks for an expired scope still open and sets it back (all
 *      seq_cst): either the exit sees FIRED or the firing's bit lands after
 *      the clear, so an open expired scope never goes unseen.
 *   5. A task that finishes with scopes open has them closed (timers
 *      withdrawn) before its drop hook runs and its frame can be freed.
 */
#include "reactor/scope.h"

#include <errno.h>
#include <stdatomic.h>

#include "reactor/driver.h"
#include "runtime/rt.h"
#include "runtime/task.h"
#include "weft/scope.h"

_Static_assert(sizeof(weft__timer) <= sizeof(((weft_scope *)0)->weft_timer),
               "weft_scope.weft_timer must hold a weft__timer");

enum { SCOPE_IDLE, SCOPE_OPEN, SCOPE_ARMED, SCOPE_FIRED, SCOPE_CLOSED_EXPIRED };

#define NO_TIMER UINT16_MAX     /* weft_owner of a scope with no timer on a wheel */

static inline weft__timer *timer_of(weft_scope *sc) { return (weft__timer *)sc->weft_timer; }

static inline weft_scope *scope_of(weft__timer *t)
{
    return (weft_scope *)((char *)t - offsetof(weft_scope, weft_timer));
}

static inline _Atomic uint32_t *state_of(const weft_scope *sc)
{
    return (_Atomic uint32_t *)&((weft_scope *)sc)->weft_state;
}

static inline uint32_t state(const weft_scope *sc)
{
    return atomic_load_explicit(state_of(sc), memory_order_seq_cst);
}

static inline _Atomic uint64_t *task_state(weft__task *t) { return &t->state; }

/* ---- the chain (rule 1) ------------------------------------------------------------ */

static inline weft_frame *top_frame(weft__task *t) { return weft__task_frame(t); }

static weft_scope *innermost(weft__task *t)
{
    uint32_t off = top_frame(t)->weft_reserved;
    return off ? (weft_scope *)(void *)((char *)top_frame(t) + off) : NULL;
}

/* The scope's offset in the frame (checked by in_frame on entry). */
static uint32_t frame_offset(weft__task *t, const weft_scope *sc)
{
    return (uint32_t)((uintptr_t)sc - (uintptr_t)top_frame(t));
}

/* Whether sc lies wholly in the frame, after its header: the chain stores
 * it as a 32-bit offset, and only the frame lives exactly as long as the
 * task (scope.h's -EINVAL for "a scope outside the task's frame"). Checked
 * before sc is read, since memory outside the frame may not be readable. */
static bool in_frame(weft__task *t, const weft_scope *sc)
{
    uintptr_t top = (uintptr_t)top_frame(t), at = (uintptr_t)sc;
    size_t room = weft__task_frame_room(t);
    return at >= top + sizeof(weft_frame) && room >= sizeof *sc
        && at - top <= room - sizeof *sc;
}

static void set_innermost(weft__task *t, weft_scope *sc)
{
    top_frame(t)->weft_reserved = sc ? frame_offset(t, sc) : 0;
}

/* ---- the timer ------------------------------------------------------------------------ */

weft_waker weft__scope_fire(weft__driver *d, weft__timer *tm)
{
    weft_scope *sc = scope_of(tm);
    weft__task *t = sc->weft_task;
    uint64_t now = weft__driver_now(d);
    sc->weft_expired_ns = now ? now : 1;    /* published by FIRED below */
    atomic_store_explicit(state_of(sc), SCOPE_FIRED, memory_order_seq_cst);
    /* Rule 4; from here on, sc is the task's again (rule 3). */
    atomic_fetch_or_explicit(task_state(t), WEFT__SCOPE_EXPIRED, memory_order_seq_cst);
    /* The timer's reference (rule 2), for the caller to wake. */
    return (weft_waker){ .weft_bits = (uintptr_t)t };
}

static void arm(weft_cx *cx, weft_scope *sc, weft__driver *d)
{
    weft__task *t = cx->task;
    weft__timer_init(timer_of(sc), WEFT__TIMER_SCOPE);
    weft__state_ref_inc(&t->state);     /* rule 2 */
    sc->weft_owner = (uint16_t)d->index;
    atomic_store_explicit(state_of(sc), SCOPE_ARMED, memory_order_relaxed);
    weft__driver_arm_sleep(d, timer_of(sc), sc->weft_deadline);   /* covered as a sleep's */
}

/* Rules 2 and 3: afterwards no firing can touch sc. */
static void disarm(weft__task *t, weft_scope *sc)
{
    if (sc->weft_owner == NO_TIMER)
        return;
    weft__driver *owner = weft__driver_of(t->rt, sc->weft_owner);
    sc->weft_owner = NO_TIMER;
    if (weft__driver_disarm_sleep(owner, timer_of(sc)))
        weft__task_unref(t);    /* never the last: the caller holds one */
}

/* ---- expiry at awaits ---------------------------------------------------------------- */

static void set_expired_bit(weft__task *t)
{
    atomic_fetch_or_explicit(task_state(t), WEFT__SCOPE_EXPIRED, memory_order_seq_cst);
}

/* Rule 4, after a scope left the chain. */
static void recompute_bit(weft__task *t)
{
    if (!(atomic_load_explicit(task_state(t), memory_order_relaxed) & WEFT__SCOPE_EXPIRED))
        return;     /* nothing expired, or only a firing yet to land (it sets the bit) */
    atomic_fetch_and_explicit(task_state(t), ~WEFT__SCOPE_EXPIRED, memory_order_seq_cst);
    for (weft_scope *s = innermost(t); s; s = s->weft_outer)
        if (state(s) == SCOPE_FIRED) {
            set_expired_bit(t);
            return;
        }
}

/* An expired scope applies at an await unless a shield was opened inside it
 * since; scopes nearer the frame were entered at no deeper a shield. */
static bool applies(const weft__task *t, const weft_scope *s)
{
    return s->weft_shield >= t->shield_depth;
}

bool weft__scope_due(weft__task *t)
{
    if (!(atomic_load_explicit(task_state(t), memory_order_relaxed) & WEFT__SCOPE_EXPIRED))
        return false;
    for (weft_scope *s = innermost(t); s && applies(t, s); s = s->weft_outer)
        if (state(s) == SCOPE_FIRED)
            return true;
    return false;
}

/* Provenance: the first await each applying expired scope met. */
static void took_effect(weft__task *t, const weft_site *site)
{
    for (weft_scope *s = innermost(t); s && applies(t, s); s = s->weft_outer)
        if (state(s) == SCOPE_FIRED && !s->weft_met_at)
            s->weft_met_at = site;
}

int weft__scope_at_await(weft_cx *cx, const weft_site *site)
{
    weft__task *t = cx->task;
    if (!weft__scope_due(t))
        return WEFT__AWAIT_POLL;
    if (t->leaf && !t->leaf_withdrawing) {
        switch (t->leaf_hook(cx, t->leaf)) {
        case WEFT_WITHDRAW_RACED:
            return WEFT__AWAIT_POLL | WEFT__AWAIT_TIMEDOUT;
        case WEFT_WITHDRAW_PENDING:
            t->leaf_withdrawing = true;
            weft__task_set_site(t, site);
            took_effect(t, site);
            return WEFT__AWAIT_SUSPEND;
        case WEFT_WITHDRAWN:
            break;
        }
    } else if (t->leaf) {
        return WEFT__AWAIT_POLL | WEFT__AWAIT_TIMEDOUT;    /* settled: its result */
    }
    t->leaf_withdrawing = false;
    t->leaf = NULL;
    if (!weft_cx_coop(cx)) {    /* a delivery spends budget, as in cancel.c */
        weft__task_set_site(t, site);
        return WEFT__AWAIT_SUSPEND;
    }
    took_effect(t, site);
    return WEFT__AWAIT_CANCELLED | WEFT__AWAIT_TIMEDOUT;
}

/* A leaf polled after the expiry was due yielded -ECANCELED: the expiry if
 * its withdrawal for it settled, or it stopped because weft_cx_cancel_due
 * said so; otherwise its own result (a join of a torn-down task). */
weft_poll weft__timeout_result(weft_cx *cx)
{
    return cx->task->leaf_withdrawing || cx->scope_stop ? -ETIMEDOUT : -ECANCELED;
}

/* Rule 5. */
void weft__scopes_close_all(weft__task *t)
{
    weft_scope *s = innermost(t);
    if (!s)
        return;
    for (; s; s = s->weft_outer) {
        disarm(t, s);
        atomic_store_explicit(state_of(s), SCOPE_IDLE, memory_order_relaxed);
    }
    set_innermost(t, NULL);
}

/* ---- the calls ------------------------------------------------------------------------- */

/* deadline_ns on d's clock, which read `now` (one clock read per enter). */
static int enter_at(weft_cx *cx, weft__driver *d, weft_scope *sc, uint64_t deadline_ns,
                    uint64_t now)
{
    weft__task *t = cx->task;
    if (!in_frame(t, sc))
        return -EINVAL;
    uint32_t st = atomic_load_explicit(state_of(sc), memory_order_relaxed);
    if (st != SCOPE_IDLE && st != SCOPE_CLOSED_EXPIRED)
        return -EINVAL;
    weft_scope *outer = innermost(t);
    /* An enclosing scope bounds this one unless a shield opened since holds
     * its expiry back. */
    uint64_t enclosing = outer && outer->weft_shield >= t->shield_depth
                       ? outer->weft_effective : WEFT_SCOPE_NEVER;
    sc->weft_outer = outer;
    sc->weft_task = t;
    sc->weft_met_at = NULL;
    sc->weft_deadline = deadline_ns;
    sc->weft_effective = deadline_ns < enclosing ? deadline_ns : enclosing;
    sc->weft_expired_ns = 0;
    sc->weft_owner = NO_TIMER;
    sc->weft_shield = t->shield_depth;
    if (deadline_ns >= enclosing) {
        /* The enclosing scope expires first, or together: it answers for both. */
        atomic_store_explicit(state_of(sc), SCOPE_OPEN, memory_order_relaxed);
    } else if (deadline_ns <= now) {
        sc->weft_expired_ns = now ? now : 1;
        atomic_store_explicit(state_of(sc), SCOPE_FIRED, memory_order_relaxed);
        set_expired_bit(t);
    } else {
        arm(cx, sc, d);
    }
    set_innermost(t, sc);
    return 0;
}

int weft_scope_enter(weft_cx *cx, weft_scope *sc, uint64_t deadline_ns)
{
    weft__driver *d = cx ? weft__cx_driver(cx) : NULL;
    if (!d || !sc)
        return -EINVAL;
    return enter_at(cx, d, sc, deadline_ns, weft__driver_now(d));
}

int weft_scope_enter_for(weft_cx *cx, weft_scope *sc, uint64_t timeout_ns)
{
    weft__driver *d = cx ? weft__cx_driver(cx) : NULL;
    if (!d || !sc)
        return -EINVAL;
    uint64_t now = weft__driver_now(d);
    uint64_t deadline = timeout_ns >= WEFT_SCOPE_NEVER - now ? WEFT_SCOPE_NEVER : now + timeout_ns;
    return enter_at(cx, d, sc, deadline, now);
}

int weft_scope_exit(weft_cx *cx, weft_scope *sc)
{
    if (!cx || !sc || innermost(cx->task) != sc)
        return -EINVAL;
    weft__task *t = cx->task;
    disarm(t, sc);
    bool expired = state(sc) == SCOPE_FIRED;
    set_innermost(t, sc->weft_outer);
    atomic_store_explicit(state_of(sc), expired ? SCOPE_CLOSED_EXPIRED : SCOPE_IDLE,
                          memory_order_relaxed);
    recompute_bit(t);
    return expired;
}

/* ---- provenance (read by the task that owns the scope) -------------------------------- */

bool weft_scope_expired(const weft_scope *sc)
{
    uint32_t st = sc ? state(sc) : SCOPE_IDLE;
    return st == SCOPE_FIRED || st == SCOPE_CLOSED_EXPIRED;
}

uint64_t weft_scope_expired_at(const weft_scope *sc)
{
    return weft_scope_expired(sc) ? sc->weft_expired_ns : 0;
}

const weft_site *weft_scope_site(const weft_scope *sc)
{
    return weft_scope_expired(sc) ? sc->weft_met_at : NULL;
}

uint64_t weft_scope_deadline(const weft_scope *sc)
{
    return sc ? sc->weft_deadline : 0;
}
