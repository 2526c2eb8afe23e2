/*
 * reactor/timer.h - the per-worker timer driver: the wheel every sleep of a
 * worker is armed on, firing due timers, and settling withdrawals handed over
 * from other workers.
 *
 * Who touches what:
 *   1. A worker's wheel belongs to that worker; once workers have stopped, to
 *      the shutdown thread.
 *   2. Any thread may push a sleep onto a worker's `remote_cancels` stack
 *      (lock-free, through weft_sleep.weft_next); only the owner pops it.
 */
#ifndef WEFT_REACTOR_TIMER_H
#define WEFT_REACTOR_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct weft_worker;

void weft__timers_init(struct weft_worker *w);

/* Fire every due timer; returns how many fired. */
unsigned weft__timers_advance(struct weft_worker *w);

/* Nanoseconds until the next timer may fire: -1 for none, 0 for overdue. */
int64_t weft__timers_park_timeout(struct weft_worker *w);

/* Settle withdrawals other threads handed to this worker. */
void weft__timers_settle_remote(struct weft_worker *w);
bool weft__timers_have_remote(struct weft_worker *w);

#endif /* WEFT_REACTOR_TIMER_H */
