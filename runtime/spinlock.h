/*
 * runtime/spinlock.h - a test-and-test-and-set lock for critical sections of a
 * few instructions (linking a task into a list). Under contention it spins with
 * a pause, then yields the CPU so a preempted holder can finish; it never
 * sleeps in the kernel, which is what made a mutex here cost a futex round
 * trip per spawn.
 */
#ifndef WEFT_RUNTIME_SPINLOCK_H
#define WEFT_RUNTIME_SPINLOCK_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct weft__spinlock {
    _Atomic bool locked;
} weft__spinlock;

#define WEFT__SPIN_BEFORE_YIELD 64

static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline void weft__spin_init(weft__spinlock *l)
{
    atomic_init(&l->locked, false);
}

static inline void weft__spin_lock(weft__spinlock *l)
{
    unsigned spins = 0;
    /* Acquire: the critical section sees the previous holder's writes. */
    while (atomic_exchange_explicit(&l->locked, true, memory_order_acquire)) {
        while (atomic_load_explicit(&l->locked, memory_order_relaxed)) {
            if (++spins < WEFT__SPIN_BEFORE_YIELD)
                weft__cpu_relax();
            else
                sched_yield();
        }
    }
}

/* One attempt, for a caller with something better to do than wait. */
static inline bool weft__spin_trylock(weft__spinlock *l)
{
    return !atomic_load_explicit(&l->locked, memory_order_relaxed)
        && !atomic_exchange_explicit(&l->locked, true, memory_order_acquire);
}

static inline void weft__spin_unlock(weft__spinlock *l)
{
    /* Release: publishes the critical section to the next holder. */
    atomic_store_explicit(&l->locked, false, memory_order_release);
}

#endif /* WEFT_RUNTIME_SPINLOCK_H */
