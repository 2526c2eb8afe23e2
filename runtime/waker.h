/*
 * runtime/waker.h - the three kinds of waker behind weft_waker, told apart by
 * the low bits: a task reference (00), a thread waiter on the waiting thread's
 * stack (01), or a wake hook (10): a runtime object that wants a call when
 * woken (a task group's member). A wake hook is not counted: its owner keeps
 * it alive until it has been woken or dropped.
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

typedef struct weft__wake_hook {
    void (*on_wake)(struct weft__wake_hook *hook);
} weft__wake_hook;

static inline weft_waker weft__waker_for_hook(weft__wake_hook *hook)
{
    return (weft_waker){ .weft_bits = (uintptr_t)hook | 2u };
}

/* Block until woken, or until deadline_ns (CLOCK_MONOTONIC; 0 = none).
 * Returns true when woken. */
bool weft__thread_waiter_wait(weft__thread_waiter *tw, uint64_t deadline_ns);

#endif /* WEFT_RUNTIME_WAKER_H */
