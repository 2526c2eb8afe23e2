/*
 * tests/stress/stress_util.h - helpers for the plain stress executables (no
 * Criterion: they must run under TSan). Exit codes: 0 pass, 1 fail, 77 skip.
 *
 *   CHECK(cond, fmt, ...)   record a failure (does not stop the run)
 *   watchdog(seconds)       fail the run if it hangs
 *   arg_long(argc, argv, "--name", default)
 *   forever_poll(cx, &leaf)  a leaf that never completes: only cancellation
 *                            ends a wait on it
 */
#ifndef WEFT_TESTS_STRESS_UTIL_H
#define WEFT_TESTS_STRESS_UTIL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft/weft.h>

static _Atomic long stress_failures;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            if (atomic_fetch_add(&stress_failures, 1) < 20) {                   \
                fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__,\
                        #cond);                                                 \
                fprintf(stderr, __VA_ARGS__);                                   \
                fputc('\n', stderr);                                            \
            }                                                                   \
        }                                                                       \
    } while (0)

static void stress_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "stress: watchdog expired (hang: lost wake-up or lost task?)\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(1);
}

static inline void watchdog(unsigned seconds)
{
    signal(SIGALRM, stress_alarm);
    alarm(seconds);
}

static inline long arg_long(int argc, char **argv, const char *name, long def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return strtol(argv[i + 1], NULL, 0);
    return def;
}

/* xorshift32, per thread */
static inline uint32_t rnd(uint32_t *s)
{
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static inline int stress_result(const char *name)
{
    long f = atomic_load(&stress_failures);
    if (f) {
        fprintf(stderr, "%s: FAIL (%ld failed checks)\n", name, f);
        return 1;
    }
    fprintf(stderr, "%s: ok\n", name);
    return 0;
}

/* ---- a leaf that never completes ------------------------------------------ */

typedef struct forever_leaf {
    weft_waker w;
    bool armed;
} forever_leaf;

static inline weft_withdraw forever_withdraw(weft_cx *cx, void *leaf)
{
    (void)cx;
    forever_leaf *l = leaf;
    if (l->armed)
        weft_waker_drop(&l->w);
    l->armed = false;
    return WEFT_WITHDRAWN;
}

static inline weft_poll forever_poll(weft_cx *cx, forever_leaf *l)
{
    if (!l->armed) {
        l->w = weft_cx_waker(cx);
        l->armed = true;
    }
    weft_cx_suspend(cx, l, forever_withdraw);
    return WEFT_PENDING;
}

#endif /* WEFT_TESTS_STRESS_UTIL_H */
