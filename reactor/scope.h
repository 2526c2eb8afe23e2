/*
 * reactor/scope.h - what the rest of weft needs from deadline scopes
 * (reactor/scope.c): the await's slow path, the compound leaves' check, the
 * timer's firing, and closing the scopes a finishing task left open.
 * All but weft__scope_fire run on the holder of the task's RUNNING bit.
 */
#ifndef WEFT_REACTOR_SCOPE_H
#define WEFT_REACTOR_SCOPE_H

#include <stdbool.h>

#include "weft/task.h"

struct weft__task;
struct weft__driver;
struct weft__timer;

/* An await found SCOPE_EXPIRED (and no cancellation to deliver): withdraw
 * the leaf if an expired scope applies; a WEFT__AWAIT_* answer. */
int weft__scope_at_await(weft_cx *cx, const weft_site *site);
/* An expired scope applies at the task's next await. */
bool weft__scope_due(struct weft__task *t);
/* A scope's timer is due (any worker, under the wheel's lock; d is the
 * wheel's driver): marks the task's scope expired and returns the waker,
 * which holds the timer's reference, for the caller to wake after the lock. */
weft_waker weft__scope_fire(struct weft__driver *d, struct weft__timer *t);
/* Before the frame is dropped: withdraw the timers of the scopes still open. */
void weft__scopes_close_all(struct weft__task *t);

#endif /* WEFT_REACTOR_SCOPE_H */
