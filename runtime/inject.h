/*
 * runtime/inject.h - the runtime-wide inject queue (tasks spawned or woken
 * from outside a worker) and, the same structure, each worker's spill (what
 * overflows its local queue; runtime/worker.c, invariant 8).
 *
 * An intrusive FIFO through task->queue_next under a spinlock, with an atomic
 * length so workers can test for emptiness without the lock. The queue holds
 * the notified reference of every task in it.
 */
#ifndef WEFT_RUNTIME_INJECT_H
#define WEFT_RUNTIME_INJECT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "runtime/spinlock.h"

struct weft__task;

typedef struct weft__inject {
    weft__spinlock lock;
    struct weft__task *head, *tail;
    _Alignas(64) _Atomic size_t len;
} weft__inject;

void weft__inject_init(weft__inject *q);

void weft__inject_push(weft__inject *q, struct weft__task *t);
/* Push a chain first..last (linked through queue_next) of n tasks. */
void weft__inject_push_batch(weft__inject *q, struct weft__task *first,
                             struct weft__task *last, size_t n);
struct weft__task *weft__inject_pop(weft__inject *q);
/* Pop up to max tasks; returns the chain and sets *n. */
struct weft__task *weft__inject_pop_batch(weft__inject *q, size_t max, size_t *n);

static inline size_t weft__inject_len(weft__inject *q)
{
    /* Seq_cst: one side of the Dekker pair with the idle state (idle.h). */
    return atomic_load_explicit(&q->len, memory_order_seq_cst);
}

#endif /* WEFT_RUNTIME_INJECT_H */
