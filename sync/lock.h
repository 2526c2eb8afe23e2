/*
 * sync/lock.h - the lock every sync primitive uses: a 32-bit futex mutex that
 * spins briefly before sleeping (Drepper, "Futexes Are Tricky", mutex 3).
 *
 * The word lives in the primitive's own struct (public headers declare it as a
 * plain uint32_t, so it is accessed with the __atomic builtins):
 *   0  unlocked
 *   1  locked, nobody sleeping
 *   2  locked, someone may be sleeping in futex_wait (unlock must wake one)
 *
 * Memory order: acquiring is an ACQUIRE RMW and releasing a RELEASE RMW, so
 * everything written under the lock is visible to the next holder.
 *
 * Rules for holders: critical sections are a few dozen instructions; nothing
 * allocates or frees, and no waker is woken or dropped, while the lock is held
 * (wakers are collected in a weft__deferred and run after unlocking). Two
 * runtime calls are allowed under it: weft_cx_waker (a reference increment)
 * and weft_cx_coop, whose requeue of an exhausted task only marks the running
 * task NOTIFIED and never schedules it from inside the poll.
 */
#ifndef WEFT_SYNC_LOCK_H
#define WEFT_SYNC_LOCK_H

#include <stdbool.h>
#include <stdint.h>

void weft__lock_slow(uint32_t *word);
void weft__lock_wake(uint32_t *word);

static inline void weft__lock(uint32_t *word)
{
    uint32_t unlocked = 0;
    /* Acquire: pairs with the release in weft__unlock. */
    if (__builtin_expect(__atomic_compare_exchange_n(word, &unlocked, 1, false, __ATOMIC_ACQUIRE,
                                                     __ATOMIC_RELAXED), 1))
        return;
    weft__lock_slow(word);
}

static inline void weft__unlock(uint32_t *word)
{
    /* Release: publishes the critical section to the next acquirer. */
    if (__builtin_expect(__atomic_exchange_n(word, 0, __ATOMIC_RELEASE) == 2, 0))
        weft__lock_wake(word);
}

#endif /* WEFT_SYNC_LOCK_H */
