/*
 * runtime/blocking.h - what runtime.c asks of the blocking pool besides the
 * lifecycle hooks declared in rt.h: whether the caller is one of its jobs.
 */
#ifndef WEFT_RUNTIME_BLOCKING_H
#define WEFT_RUNTIME_BLOCKING_H

#include <stdbool.h>

#include "weft/runtime.h"

/* True inside a job's fn running on rt's own pool: shutting rt down there
 * would wait for this very thread to leave the pool. */
bool weft__blocking_in_own_job(weft_runtime *rt);

#endif /* WEFT_RUNTIME_BLOCKING_H */
