/*
 * reactor/driver.h - all a worker needs from the reactor, behind one struct:
 * the io_uring it sleeps in and submits to, its operation records, its timing
 * wheel, the one stack other threads hand withdrawals to, and its clock.
 *
 * A worker (or the simulator, which drives simulated workers the same way)
 * calls only the functions below: init and stop on its own thread, free once
 * every worker has been joined, tick between tasks, park when it has nothing
 * to run, unpark from anywhere, has_remote before it sleeps, and
 * next_deadline to know how far time may jump. Leaves (I/O, sleeps) reach the
 * driver of the worker polling them through the task context
 * (weft__cx_driver) and another worker's through weft__driver_of.
 *
 * Who touches what:
 *   1. Everything but `remote`, the ring's wake-up and the sleep wheel's
 *      fields (rule 4) belongs to the owning thread (rules of op.h,
 *      sleep.c, ring.h); once workers have stopped, to the shutdown thread.
 *      I/O deadlines live on `deadlines`, which only the owner touches: a
 *      deadline ends in a cancel on the owner's ring, which only the owner
 *      may submit to.
 *   2. Any thread may push a hand-off on `remote` (weft__driver_hand_off);
 *      only the owner takes the stack, whole, in a tick or a park.
 *   3. `clock` is set at init and never changes: NULL for CLOCK_MONOTONIC,
 *      else the simulator's virtual time (runtime/sim.h).
 *   4. Sleeps live on `wheel`, which any worker may fire, so that a sleep
 *      does not wait for an owner stuck in a long poll: the wheel is touched
 *      only under `sleep_lock`, by the owner (arming, withdrawing, settling
 *      a hand-off, firing) and by other workers (firing only, and only with
 *      a trylock: one that finds the lock taken has nothing to wait for).
 *      A firing takes the due timers off the wheel and their wakers out of
 *      their sleeps in the lock, and wakes the tasks after releasing it:
 *      a wake can be a syscall (unparking a worker), and the holder of a
 *      lock that others only try must not sit in one.
 *      Deadline scopes' timers live there too (reactor/scope.c); those are
 *      also disarmed, with the lock, by whichever worker runs the task.
 *      `sleep_next` is when the wheel next needs an advance (its earliest
 *      deadline; under the simulator, its next cascade point if earlier),
 *      written under the lock; it may be early (a withdrawn sleep), never
 *      late.
 *      These four fields start zeroed with the runtime's allocation and are
 *      not touched by init, since other workers read them from the start.
 *   5. `wakes_at` says whether the owner is parked and until when: 0 while
 *      it is awake, UINT64_MAX from the moment it starts to park until it
 *      knows its timeout (or when it has none), then the time its park
 *      ends. A worker whose wheel gets an earlier sleep while it is awake
 *      notes it in `uncovered` (the owner's field); before it starts its
 *      next poll, if some parked worker would wake after it, it sets one
 *      parked worker's `retime` and unparks it (weft__driver_cover_noted).
 *      If it parks first, its own park covers the sleep and nobody else is
 *      woken: an idle runtime with a periodic timer wakes one worker per
 *      tick, not two. A parking worker reads the awake workers'
 *      `sleep_next` after setting wakes_at: both seq_cst, so one sees the
 *      other and a parked worker always wakes for the next due sleep of a
 *      worker that went on to poll. The one gap: a poll that arms a sleep
 *      and then itself runs long leaves that sleep to its own worker.
 */
#ifndef WEFT_REACTOR_DRIVER_H
#define WEFT_REACTOR_DRIVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "reactor/handoff.h"
#include "reactor/op.h"
#include "reactor/ring.h"
#include "reactor/wheel.h"
#include "runtime/spinlock.h"

struct weft_runtime;

typedef struct weft__driver {
    weft__ring ring;
    weft__op_table ops;
    weft__wheel wheel;              /* sleeps: rule 4 */
    weft__wheel deadlines;          /* I/O deadlines: the owner's only (rule 1) */
    weft__handoff *_Atomic remote;  /* rule 2 */
    const uint64_t *clock;          /* rule 3 */
    struct weft_runtime *rt;
    uint32_t index;                 /* the owning worker's */
    uint64_t uncovered;             /* rule 5; 0: none */
    _Alignas(64) weft__spinlock sleep_lock;     /* rule 4 */
    _Atomic uint64_t sleep_next;                /* rule 4 */
    _Atomic uint64_t wakes_at;                  /* rule 5 */
    _Atomic bool retime;                        /* rule 5 */
} weft__driver;

/* What a tick does besides settling hand-offs. */
enum weft__tick {
    WEFT__TICK_HANDOFFS,    /* only settle hand-offs */
    WEFT__TICK_BUSY,        /* and reap if completions are waiting */
    WEFT__TICK_FULL,        /* and submit, reap, fire due timers */
};

/* ---- The worker's entry points ------------------------------------------------ */

/* On the owning thread. Returns 0 or a negative errno. */
int weft__driver_init(weft__driver *d, struct weft_runtime *rt, uint32_t index,
                      const uint64_t *clock);
/* On the owning thread, when it stops: wait for every operation (no frame may
 * be freed under the kernel), then close the ring. */
void weft__driver_stop(weft__driver *d);
/* After every worker has been joined: the wake-up fd and the record table. */
void weft__driver_free(weft__driver *d);
void weft__driver_tick(weft__driver *d, enum weft__tick what);
/* Sleep until unparked, a completion, the next timer, or max_ns (< 0: no
 * cap), unless should_sleep() turns false; then reap. A simulated driver's
 * timers are in virtual time, so only max_ns bounds its wait. The caller
 * ticks (WEFT__TICK_FULL) to fire timers and settle hand-offs. */
void weft__driver_park(weft__driver *d, int64_t max_ns, bool (*should_sleep)(void *),
                       void *arg);
/* Any thread. */
void weft__driver_unpark(weft__driver *d);
/* A hand-off is waiting (seq_cst: pairs with the owner's sleep, as in ring.h). */
bool weft__driver_has_remote(weft__driver *d);
/* When the driver's wheels next need an advance, on its clock: the earliest
 * timer deadline (early after a withdrawal, never late); under the
 * simulator, a cascade point before it if there is one (wheel.h,
 * weft__wheel_next_change). UINT64_MAX for none. */
uint64_t weft__driver_next_deadline(weft__driver *d);
/* Rule 5, on the owning thread: the park about to start has no known end
 * yet (wakes_at = UINT64_MAX, retime cleared). The caller then reads other
 * drivers' weft__driver_sleep_next to cap the park it asks for. */
void weft__driver_park_begin(weft__driver *d);
/* Rule 5: 0 while d's owner is awake, else when its park ends. */
static inline uint64_t weft__driver_wakes_at(weft__driver *d)
{
    return atomic_load_explicit(&d->wakes_at, memory_order_seq_cst);
}
/* Rule 5: someone asked the parked owner to time its park again. */
static inline bool weft__driver_retime_wanted(weft__driver *d)
{
    return atomic_load_explicit(&d->retime, memory_order_seq_cst);
}

/* ---- Sleeps on any worker's wheel (rule 4) ------------------------------------ */

/* When d's next sleep is due (UINT64_MAX: none); may be early. Stored as 0
 * for none, so that a driver whose worker has not started yet (zeroed,
 * wheel not set up) reads as having no sleeps. */
static inline uint64_t weft__driver_sleep_next(weft__driver *d)
{
    uint64_t due = atomic_load_explicit(&d->sleep_next, memory_order_seq_cst);
    return due ? due : UINT64_MAX;
}
/* Any worker: fire the sleeps of d's wheel due by now (d's clock), unless
 * another thread holds the wheel. Returns how many fired. */
size_t weft__driver_fire_sleeps(weft__driver *d, uint64_t now);
/* Rule 5, the owner: its wheel's sleeps are due at `due` and no other
 * worker may know it; covered before the owner's next poll, or by its park. */
static inline void weft__driver_note_uncovered(weft__driver *d, uint64_t due)
{
    if (d->uncovered == 0 || due < d->uncovered)
        d->uncovered = due;
}
/* Rule 5, the owner, before a poll: make sure some parked worker wakes by
 * the noted time, if any is parked (retiming one otherwise), and clear it. */
void weft__driver_cover_noted(weft__driver *d);

/* ---- For the leaves ----------------------------------------------------------------- */

/* The driver's time: CLOCK_MONOTONIC, or the simulator's. */
uint64_t weft__driver_now(const weft__driver *d);
/* Any thread: push h on d's stack and wake d (rule 2). */
void weft__driver_hand_off(weft__driver *d, weft__handoff *h);
/* The owner: arm t on its sleep wheel for deadline_ns; notes the new
 * sleep_next as uncovered (rule 5) when the sleep made it earlier. */
void weft__driver_arm_sleep(weft__driver *d, weft__timer *t, uint64_t deadline_ns);
/* The owner (or the shutdown sweep): take t off the sleep wheel; false when
 * it was not armed (fired, on whichever worker, or never armed). */
bool weft__driver_disarm_sleep(weft__driver *d, weft__timer *t);
/* The owner, for each hand-off it takes (sleep.c, op.c). */
void weft__sleep_settle_handoff(weft__driver *d, weft__handoff *h);
void weft__io_settle_handoff(weft__driver *d, weft__handoff *h);
/* A fire callback for either wheel (arg: the driver) that wakes at once: a
 * sleep, a scope or an op deadline. */
void weft__timer_fire(weft__timer *t, void *arg);
/* A sleep's timer is due (sleep.c), under its wheel's lock: returns the
 * waker the caller wakes, after the lock (none when a withdrawal won). A
 * scope's is weft__scope_fire (scope.h). */
weft_waker weft__sleep_fire(weft__timer *t);
/* At stop: withdraw every live record (op.c). */
void weft__io_withdraw_all(weft__driver *d);

#endif /* WEFT_REACTOR_DRIVER_H */
