/*
 * runtime/waker.h - the two kinds of waker behind weft_waker: a task reference
 * (bit 0 clear), or a thread waiter on the waiting thread's stack (bit 0 set).
 *
 * A thread waiter is safe to wake after the waiting thread may have returned:
 * the waker stores the flag (the last access to the waiter's memory) before
 * the futex wake, which only names the address.
 */
#ifndef WEFT_RUNTIME_WAKER_H
#define WEFT_RUNTIME_WAKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft/task.h"

typedef struct weft__thread_waiter {
    _Alignas(8) _Atomic uint32_t woken;
} weft__thread_waiter;

static inline weft_waker weft__waker_for_thread(weft__thread_waiter *tw)
{
    atomic_init(&tw->woken, 0);
    return (weft_waker){ .weft_bits = (uintptr_t)tw | 1u };
}

/* Block until woken, or until deadline_ns (CLOCK_MONOTONIC; 0 = none).
 * Returns true when woken. */
bool weft__thread_waiter_wait(weft__thread_waiter *tw, uint64_t deadline_ns);

#endif /* WEFT_RUNTIME_WAKER_H */
