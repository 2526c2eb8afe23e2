/*
 * weft/time.h - the clock, sleeping and intervals.
 *
 * A sleep is a leaf future stored in the task's frame. Its timer lives on the
 * timing wheel of the worker that first polled it (it fires at the exact
 * deadline; a sleep never ends early). The task may later run on another
 * worker; the sleep still ends, and withdrawing it still works, wherever the
 * task is.
 *
 * Cancellation contract: a sleep withdrawn before its deadline yields
 * -ECANCELED and leaves nothing armed; one whose deadline passed first yields 0
 * ("a cancelled operation did not happen; one that happened is reported").
 *
 * An interval (weft_interval) is a sleep re-armed on a fixed schedule, with a
 * policy for ticks that come late; a tick is awaited like a sleep and has the
 * same cancellation contract. A deadline on another leaf is that leaf's own
 * (weft_io_deadline), or a weft_select against a sleep.
 */
#ifndef WEFT_TIME_H
#define WEFT_TIME_H

#include <stdint.h>

#include "weft/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CLOCK_MONOTONIC in nanoseconds: the clock every weft deadline uses. */
WEFT_EXTERN uint64_t weft_now_ns(void);

typedef struct weft_sleep {
    /* private: start zeroed (WEFT_SLEEP_INIT); back to idle after each sleep */
    uint64_t weft_timer[5];         /* the wheel's timer node (reactor/wheel.h) */
    void *weft_handoff[2];          /* hands a withdrawal to the owning worker */
    weft_waker weft_wake;
    uint32_t weft_state;
    uint32_t weft_owner;            /* worker whose wheel holds the timer */
} weft_sleep;

#define WEFT_SLEEP_INIT { { 0 }, { NULL, NULL }, { 0 }, 0, 0 }

/* Sleep until deadline_ns (weft_now_ns clock). Yields 0, -ECANCELED, or
 * -EINVAL for a NULL argument. */
WEFT_EXTERN weft_poll weft_sleep_until(weft_cx *cx, weft_sleep *s, uint64_t deadline_ns);

/* Sleep for ns nanoseconds from the first poll. */
WEFT_EXTERN weft_poll weft_sleep_for(weft_cx *cx, weft_sleep *s, uint64_t ns);

/* ---- Intervals ------------------------------------------------------------ */

/*
 * What an interval does when a tick completes late, so late that the next
 * tick is already due (tokio's MissedTickBehavior):
 *   BURST  keep the original schedule: the ticks that were missed complete
 *          at once, one per await, until the interval has caught up.
 *   DELAY  start the schedule afresh: the next tick is one period after the
 *          late one completed.
 *   SKIP   keep the original rhythm but drop the missed ticks: the next tick
 *          is the first instant of the original schedule after now.
 * A tick that is late by less than one period keeps the schedule in every
 * policy.
 */
typedef enum weft_missed_tick {
    WEFT_TICK_BURST = 0,
    WEFT_TICK_DELAY,
    WEFT_TICK_SKIP,
} weft_missed_tick;

/* A periodic timer kept in the frame; all fields private. */
typedef struct weft_interval {
    weft_sleep weft_tick_sleep;
    uint64_t weft_next;             /* when the next tick is scheduled */
    uint64_t weft_last;             /* when the last completed tick was */
    uint64_t weft_period;           /* 0: not initialised */
    uint32_t weft_policy;
} weft_interval;

/*
 * Set iv up to tick at start_ns (0: now), then every period_ns. The first
 * tick completes at start_ns, at once if that has passed. -EINVAL for a NULL
 * iv, a zero period or an unknown policy; -EBUSY while a tick is waiting.
 */
WEFT_EXTERN int weft_interval_init(weft_interval *iv, uint64_t start_ns, uint64_t period_ns,
                                   weft_missed_tick policy);

/*
 * Wait for the next tick; yields 0, -ECANCELED, or -EINVAL for a NULL
 * argument or an interval never initialised. Cancellation as for a sleep: a
 * withdrawn tick did not happen and the schedule does not move (the next
 * await waits for the same tick); a tick whose time came first is reported.
 */
WEFT_EXTERN weft_poll weft_interval_tick(weft_cx *cx, weft_interval *iv);

/* The instant (weft_now_ns clock) the last completed tick was scheduled
 * for; 0 before the first tick. */
WEFT_EXTERN uint64_t weft_interval_scheduled(const weft_interval *iv);

/* Restart the schedule: the next tick is one period from now. -EINVAL for a
 * NULL or uninitialised iv, -EBUSY while a tick is waiting. */
WEFT_EXTERN int weft_interval_reset(weft_interval *iv);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_TIME_H */
