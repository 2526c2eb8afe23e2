/*
 * runtime/join.h - what other runtime parts (task groups) need of join
 * handles: installing a join waker, and taking a finished task's outcome.
 */
#ifndef WEFT_RUNTIME_JOIN_H
#define WEFT_RUNTIME_JOIN_H

#include <stdbool.h>

#include "weft/runtime.h"

/* Install waker as h's join waker. Returns false (having dropped the waker)
 * when the task completed first. */
bool weft__join_install_waker(weft_join *h, weft_waker waker);

/* h's task is complete: fill *out, empty the handle; returns the status. */
int weft__join_consume(weft_join *h, weft_outcome *out);

#endif /* WEFT_RUNTIME_JOIN_H */
