/*
 * sync/lock.c - the contended paths of the futex mutex in lock.h.
 *
 * A contender spins a little (the holder is usually out within a few hundred
 * cycles), then marks the word 2 ("someone may sleep") and sleeps on it. The
 * unlocker that finds 2 wakes one sleeper; the woken one takes the lock with
 * the word set to 2 again, because other sleepers may remain.
 */
#include "sync/lock.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SPINS 100

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void weft__lock_slow(uint32_t *word)
{
    for (int i = 0; i < SPINS; i++) {
        uint32_t unlocked = 0;
        /* Relaxed load to spin without owning the line; acquire on success. */
        if (__atomic_load_n(word, __ATOMIC_RELAXED) == 0
            && __atomic_compare_exchange_n(word, &unlocked, 1, false, __ATOMIC_ACQUIRE,
                                           __ATOMIC_RELAXED))
            return;
        cpu_relax();
    }
    /* Acquire: whoever swaps 0 out holds the lock (and marks it contended). */
    while (__atomic_exchange_n(word, 2, __ATOMIC_ACQUIRE) != 0)
        syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

void weft__lock_wake(uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
