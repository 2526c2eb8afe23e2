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
 *   1. Everything but `remote` and the ring's wake-up belongs to the owning
 *      thread (rules of op.h, sleep.c, ring.h); once workers have stopped,
 *      to the shutdown thread.
 *   2. Any thread may push a hand-off on `remote` (weft__driver_hand_off);
 *      only the owner takes the stack, whole, in a tick or a park.
 *   3. `clock` is set at init and never changes: NULL for CLOCK_MONOTONIC,
 *      else the simulator's virtual time (runtime/sim.h).
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

struct weft_runtime;

typedef struct weft__driver {
    weft__ring ring;
    weft__op_table ops;
    weft__wheel wheel;
    weft__handoff *_Atomic remote;  /* rule 2 */
    const uint64_t *clock;          /* rule 3 */
    struct weft_runtime *rt;
    uint32_t index;                 /* the owning worker's */
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
/* The earliest timer deadline on the driver's clock, UINT64_MAX for none. */
uint64_t weft__driver_next_deadline(weft__driver *d);

/* ---- For the leaves ----------------------------------------------------------------- */

/* The driver's time: CLOCK_MONOTONIC, or the simulator's. */
uint64_t weft__driver_now(const weft__driver *d);
/* Any thread: push h on d's stack and wake d (rule 2). */
void weft__driver_hand_off(weft__driver *d, weft__handoff *h);
/* The owner, for each hand-off it takes (sleep.c, op.c). */
void weft__sleep_settle_handoff(weft__driver *d, weft__handoff *h);
void weft__io_settle_handoff(weft__driver *d, weft__handoff *h);
/* The wheel's fire callback (arg: the driver): a sleep or an op deadline. */
void weft__timer_fire(weft__timer *t, void *arg);
/* A sleep's timer is due (sleep.c). */
void weft__sleep_fire(weft__timer *t);
/* At stop: withdraw every live record (op.c). */
void weft__io_withdraw_all(weft__driver *d);

#endif /* WEFT_REACTOR_DRIVER_H */
