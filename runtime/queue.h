/*
 * runtime/queue.h - a worker's local run queue: a bounded single-producer,
 * multi-consumer ring of 256 task pointers (Go's runq, as tokio adapted it).
 *
 * Only the owning worker pushes and pops at the front; any worker may steal
 * half. `head` packs two 32-bit indices: `real` (the next task to pop) and
 * `steal` (where a steal in progress started); steal != real means a thief is
 * copying, and no second thief may start. Indices are 32-bit and wrap; the ring
 * position is index & MASK, and the width keeps ABA out of reach.
 *
 * Invariants:
 *   1. tail - steal <= CAPACITY (slots between steal and tail are live).
 *   2. Only the owner writes tail and the slots at or after tail.
 *   3. A slot in [real, tail) is read by exactly one consumer: the one whose CAS
 *      on head moved `real` past it.
 */
#ifndef WEFT_RUNTIME_QUEUE_H
#define WEFT_RUNTIME_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define WEFT__LOCAL_CAPACITY 256u
#define WEFT__LOCAL_MASK (WEFT__LOCAL_CAPACITY - 1)

struct weft__task;
struct weft__inject;

typedef struct weft__local_queue {
    _Alignas(64) _Atomic uint64_t head;     /* (steal << 32) | real */
    _Alignas(64) _Atomic uint32_t tail;
    struct weft__task *_Atomic buf[WEFT__LOCAL_CAPACITY];
} weft__local_queue;

void weft__local_init(weft__local_queue *q);

typedef enum {
    WEFT__PUSH_LOCAL,       /* in the ring */
    WEFT__PUSH_OVERFLOWED,  /* half the ring and the task went to `overflow` */
    WEFT__PUSH_INJECTED,    /* a steal was in progress: the task went to `overflow` */
} weft__push_outcome;

/* Owner only. Full ring: move half of it, plus t, to `overflow` (the
 * owner's spill, runtime/worker.c) in one batch. */
weft__push_outcome weft__local_push(weft__local_queue *q, struct weft__task *t,
                                    struct weft__inject *overflow);

/* Owner only. */
struct weft__task *weft__local_pop(weft__local_queue *q);

/* Any thief: move half of src into dst (owned by the caller) and return one
 * task to run now, or NULL. */
struct weft__task *weft__local_steal(weft__local_queue *src, weft__local_queue *dst);

/* Approximate from any thread; exact for the owner. */
uint32_t weft__local_len(const weft__local_queue *q);
bool weft__local_has_steal_room(const weft__local_queue *q);

#endif /* WEFT_RUNTIME_QUEUE_H */
