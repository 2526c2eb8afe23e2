/*
 * tests/test_util.h - helpers shared by every test: the Criterion tests of
 * core, sync and reactor, and the plain stress executables (so nothing here
 * may use Criterion outside a macro body).
 *
 * WEFT_ASSERT_NO_LEAKS(): in ASan builds LeakSanitizer only prints leaks and
 * lets the test pass; asserting its recoverable check at the end of a test body
 * makes a leak fail the test. Elsewhere it does nothing.
 *
 * flag_*: a futex-backed counter. One side bumps it (flag_add) or sets it
 * (flag_set), the other blocks until it reaches a value (flag_wait_ge, or
 * flag_wait_ge_for with a hang guard).
 * Tests synchronise on these, never on sleeps: a sleep only makes the wanted
 * order likely, and on a loaded machine "likely" fails.
 */
#ifndef WEFT_TESTS_TEST_UTIL_H
#define WEFT_TESTS_TEST_UTIL_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(WEFT_TEST_LSAN) && WEFT_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#define WEFT_ASSERT_NO_LEAKS() \
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks")
#else
#define WEFT_ASSERT_NO_LEAKS() ((void)0)
#endif

/* ---- futex counter ------------------------------------------------------- */

typedef struct flag {
    _Alignas(8) _Atomic uint32_t v;
} flag;

static inline void flag_add(flag *f, uint32_t n)
{
    atomic_fetch_add_explicit(&f->v, n, memory_order_seq_cst);
    syscall(SYS_futex, &f->v, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static inline void flag_set(flag *f, uint32_t v)
{
    atomic_store_explicit(&f->v, v, memory_order_seq_cst);
    syscall(SYS_futex, &f->v, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

static inline uint32_t flag_get(flag *f)
{
    return atomic_load_explicit(&f->v, memory_order_seq_cst);
}

/* Block until the counter is at least v. */
static inline void flag_wait_ge(flag *f, uint32_t v)
{
    for (;;) {
        uint32_t cur = atomic_load_explicit(&f->v, memory_order_seq_cst);
        if (cur >= v)
            return;
        syscall(SYS_futex, &f->v, FUTEX_WAIT_PRIVATE, cur, NULL, NULL, 0);
    }
}

/* flag_wait_ge with a hang guard: false if the counter did not reach v within
 * ms milliseconds. The bound turns a hang into a failure; it is never what a
 * test waits for, so make it generous (seconds). */
static inline bool flag_wait_ge_for(flag *f, uint32_t v, unsigned ms)
{
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += ms / 1000;
    end.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    for (;;) {
        uint32_t cur = atomic_load_explicit(&f->v, memory_order_seq_cst);
        if (cur >= v)
            return true;
        struct timespec now, left;
        clock_gettime(CLOCK_MONOTONIC, &now);
        left.tv_sec = end.tv_sec - now.tv_sec;
        left.tv_nsec = end.tv_nsec - now.tv_nsec;
        if (left.tv_nsec < 0) {
            left.tv_sec--;
            left.tv_nsec += 1000000000L;
        }
        if (left.tv_sec < 0)
            return false;
        syscall(SYS_futex, &f->v, FUTEX_WAIT_PRIVATE, cur, &left, NULL, 0);
    }
}

#endif /* WEFT_TESTS_TEST_UTIL_H */
