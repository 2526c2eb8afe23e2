/*
 * weft/time.h - the clock and sleeping.
 *
 * A sleep is a leaf future stored in the task's frame. Its timer lives on the
 * timing wheel of the worker that first polled it (1 ms resolution; a sleep
 * never ends early). The task may later run on another worker; the sleep still
 * ends, and withdrawing it still works, wherever the task is.
 *
 * Cancellation contract: a sleep withdrawn before its deadline yields
 * -ECANCELED and leaves nothing armed; one whose deadline passed first yields 0
 * ("a cancelled operation did not happen; one that happened is reported").
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
    struct weft_sleep *weft_next;   /* hand-off link for a withdrawal */
    weft_waker weft_waker;
    uint32_t weft_state;
    uint32_t weft_owner;            /* worker whose wheel holds the timer */
} weft_sleep;

#define WEFT_SLEEP_INIT { { 0 }, NULL, { 0 }, 0, 0 }

/* Sleep until deadline_ns (weft_now_ns clock). Yields 0, -ECANCELED, or
 * -EINVAL for a NULL argument. */
WEFT_EXTERN weft_poll weft_sleep_until(weft_cx *cx, weft_sleep *s, uint64_t deadline_ns);

/* Sleep for ns nanoseconds from the first poll. */
WEFT_EXTERN weft_poll weft_sleep_for(weft_cx *cx, weft_sleep *s, uint64_t ns);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_TIME_H */
