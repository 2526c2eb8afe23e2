/*
 * reactor/sleep.c - the weft_sleep leaf: armed on the wheel of the driver
 * that first polls it, fired there, and withdrawn there or through a hand-off
 * (the wheel and the clock are reactor/driver.c's).
 *
 * A sleep moves through these states (weft_sleep.weft_state, atomic):
 *
 *   IDLE ──poll──▶ ARMED ──owner fires──▶ FIRED ──poll──▶ IDLE   (yields 0)
 *                    │
 *                    ├─withdrawn on the owner (or at shutdown)──▶ IDLE
 *                    │                                  (yields -ECANCELED)
 *                    ├─withdrawn elsewhere──▶ CANCELLING ──owner settles──▶
 *                    │                        CANCELLED ──poll──▶ IDLE
 *                    │                                   (yields -ECANCELED)
 *                    └─withdrawn after its deadline, before the owner fired
 *                      it: on the owner ──▶ FIRED; elsewhere ──▶ EXPIRING
 *                      ──owner settles──▶ FIRED                  (yields 0)
 *
 * Rules:
 *   1. The timer is linked and unlinked only under its wheel's lock
 *      (driver.h, rule 4): by the owner (the worker whose wheel holds it)
 *      when it arms, withdraws or settles a hand-off, and by whichever
 *      worker fires the wheel's due sleeps: the owner, or another worker
 *      while the owner is stuck in a long poll. So its node in the frame is
 *      never touched by two threads at once, and the firing worker reads
 *      the waker under the lock that the owner takes before dropping it
 *      (the wake itself comes after the lock: the reference read is the
 *      firer's from the FIRED CAS on).
 *   2. ARMED -> FIRED and ARMED -> CANCELLING are CASes: exactly one of "the
 *      deadline passed" and "the wait was withdrawn" wins. A withdrawal that
 *      loses answers RACED and the sleep reports 0. So does a withdrawal that
 *      comes after the deadline, while a busy owner has not fired the timer
 *      yet: the sleep happened, whoever got to it first (rule 6).
 *   3. The waker taken when arming is consumed exactly once: by the firing, by
 *      the owner settling a hand-off, or dropped by a withdrawal on the owner.
 *   4. A hand-off answers WEFT_WITHDRAW_PENDING: the task is not resumed (and
 *      its frame not dropped) until the owner has unlinked the timer and woken
 *      it with CANCELLED.
 *   5. A wheel is read and armed with its driver's clock (driver.h, rule 3):
 *      CLOCK_MONOTONIC, or the simulator's virtual time. weft_now_ns inside a
 *      task reads the clock of the worker polling it, so a deadline a task
 *      computes and the wheel it arms always agree.
 *   6. "Did the deadline pass" is judged by the owner's clock against the
 *      timer's deadline_ns, which insert wrote before ARMED was published and
 *      nobody changes while the timer is linked.
 */
#include "reactor/driver.h"

#include <errno.h>
#include <stdatomic.h>
#include <time.h>

#include "reactor/driver.h"
#include "runtime/rt.h"
#include "runtime/task.h"
#include "runtime/worker.h"
#include "weft/time.h"

_Static_assert(sizeof(weft__timer) <= sizeof(((weft_sleep *)0)->weft_timer),
               "weft_sleep.weft_timer must hold a weft__timer");
_Static_assert(_Alignof(weft__timer) <= _Alignof(uint64_t), "timer storage alignment");
_Static_assert(sizeof(weft__handoff) <= sizeof(((weft_sleep *)0)->weft_handoff),
               "weft_sleep.weft_handoff must hold a weft__handoff");

enum { SLEEP_IDLE, SLEEP_ARMED, SLEEP_FIRED, SLEEP_CANCELLING, SLEEP_CANCELLED, SLEEP_EXPIRING };

static inline weft__timer *timer_of(weft_sleep *s) { return (weft__timer *)s->weft_timer; }

static inline weft_sleep *sleep_of(weft__timer *t)
{
    return (weft_sleep *)((char *)t - offsetof(weft_sleep, weft_timer));
}

static inline _Atomic uint32_t *state_of(weft_sleep *s)
{
    return (_Atomic uint32_t *)&s->weft_state;
}

static inline bool cas_state(weft_sleep *s, uint32_t from, uint32_t to)
{
    /* Acq_rel: the winner publishes its side (FIRED, or the hand-off) and
     * sees the other's writes. */
    return atomic_compare_exchange_strong_explicit(state_of(s), &from, to,
                                                   memory_order_acq_rel,
                                                   memory_order_acquire);
}

static inline weft__handoff *handoff_of(weft_sleep *s)
{
    return (weft__handoff *)(void *)s->weft_handoff;
}

/* ---- on the owning driver ----------------------------------------------------- */

weft_waker weft__sleep_fire(weft__timer *t)
{
    weft_sleep *s = sleep_of(t);
    /* Read the waker before the CAS: once FIRED is visible the task may finish
     * the sleep and reuse or free it. While the timer is linked nobody writes
     * the waker (rule 3), so the early read is stable; the caller's copy holds
     * the task's reference, so it may wake it after the task has moved on.
     * Rule 2: if a withdrawal is being handed over, its settling wakes the
     * task instead. */
    weft_waker waker = s->weft_wake;
    if (cas_state(s, SLEEP_ARMED, SLEEP_FIRED))
        return waker;
    return (weft_waker){ .weft_bits = 0 };
}

void weft__sleep_settle_handoff(weft__driver *d, weft__handoff *h)
{
    weft_sleep *s = (weft_sleep *)(void *)((char *)h - offsetof(weft_sleep, weft_handoff));
    /* Another worker may have fired the wheel meanwhile: the timer is then
     * off it already, its CAS lost to ours (rule 2), and this is a no-op. */
    weft__driver_disarm_sleep(d, timer_of(s));
    weft_waker waker = s->weft_wake;
    /* Only this driver moves a handed-off sleep on, so a plain load. */
    uint32_t settled = atomic_load_explicit(state_of(s), memory_order_relaxed)
                       == SLEEP_EXPIRING ? SLEEP_FIRED : SLEEP_CANCELLED;
    /* Release: after this store the task may reuse the sleep (rule 4). */
    atomic_store_explicit(state_of(s), settled, memory_order_release);
    weft_waker_wake(&waker);
}

static void hand_to_owner(weft__driver *owner, weft_sleep *s)
{
    handoff_of(s)->kind = WEFT__HANDOFF_SLEEP;
    weft__driver_hand_off(owner, handoff_of(s));
}

/* ---- the leaf ------------------------------------------------------------------ */

static weft_withdraw sleep_withdraw(weft_cx *cx, void *leaf)
{
    weft_sleep *s = leaf;
    switch (atomic_load_explicit(state_of(s), memory_order_acquire)) {
    case SLEEP_FIRED:
        return WEFT_WITHDRAW_RACED;
    case SLEEP_CANCELLING:
    case SLEEP_EXPIRING:
        return WEFT_WITHDRAW_PENDING;
    case SLEEP_CANCELLED:
    case SLEEP_IDLE:
        atomic_store_explicit(state_of(s), SLEEP_IDLE, memory_order_relaxed);
        return WEFT_WITHDRAWN;
    }
    /* ARMED. With no worker we are the shutdown sweep, alone with every
     * wheel; on the owner we may unlink directly (rule 1). */
    weft__driver *d = weft__cx_driver(cx);
    weft__driver *owner = weft__driver_of(cx->task->rt, s->weft_owner);
    bool expired = weft__driver_now(owner) >= timer_of(s)->deadline_ns;     /* rule 6 */
    if (!d || d == owner) {
        if (!cas_state(s, SLEEP_ARMED, expired ? SLEEP_FIRED : SLEEP_IDLE))
            return WEFT_WITHDRAW_RACED;
        weft__driver_disarm_sleep(owner, timer_of(s));
        weft_waker_drop(&s->weft_wake);
        return expired ? WEFT_WITHDRAW_RACED : WEFT_WITHDRAWN;
    }
    if (!cas_state(s, SLEEP_ARMED, expired ? SLEEP_EXPIRING : SLEEP_CANCELLING))
        return WEFT_WITHDRAW_RACED;
    hand_to_owner(owner, s);
    return WEFT_WITHDRAW_PENDING;
}

static weft_poll sleep_poll(weft_cx *cx, weft_sleep *s, uint64_t deadline, bool relative)
{
    if (!cx || !s)
        return -EINVAL;
    switch (atomic_load_explicit(state_of(s), memory_order_acquire)) {
    case SLEEP_IDLE: {
        weft__driver *d = weft__cx_driver(cx);
        uint64_t now = weft__driver_now(d);
        if (relative)
            deadline = deadline > UINT64_MAX - now ? UINT64_MAX : now + deadline;
        if (deadline <= now)
            return weft_cx_coop(cx) ? 0 : WEFT_PENDING;
        weft__timer_init(timer_of(s), WEFT__TIMER_SLEEP);
        s->weft_wake = weft_cx_waker(cx);
        s->weft_owner = d->index;
        /* Relaxed: another worker reads it only after the task migrates,
         * which the scheduler's hand-off orders after this store. */
        atomic_store_explicit(state_of(s), SLEEP_ARMED, memory_order_relaxed);
        weft__driver_arm_sleep(d, timer_of(s), deadline);
        break;
    }
    case SLEEP_ARMED:
    case SLEEP_CANCELLING:
    case SLEEP_EXPIRING:
        break;
    case SLEEP_FIRED:
        if (!weft_cx_coop(cx))
            return WEFT_PENDING;
        atomic_store_explicit(state_of(s), SLEEP_IDLE, memory_order_relaxed);
        return 0;
    case SLEEP_CANCELLED:
        atomic_store_explicit(state_of(s), SLEEP_IDLE, memory_order_relaxed);
        return -ECANCELED;
    }
    weft_cx_suspend(cx, s, sleep_withdraw);
    return WEFT_PENDING;
}

weft_poll weft_sleep_until(weft_cx *cx, weft_sleep *s, uint64_t deadline_ns)
{
    return sleep_poll(cx, s, deadline_ns, false);
}

weft_poll weft_sleep_for(weft_cx *cx, weft_sleep *s, uint64_t ns)
{
    return sleep_poll(cx, s, ns, true);
}
