/*
 * tests/core/misuse_test.h - helpers shared by the misuse tests
 * (test_misuse_core.c, test_misuse_io.c, test_misuse_sync.c):
 *
 *   count_poll / polled       a poll that counts its calls and returns 11
 *   count_drop / drops        a drop hook that counts its calls
 *   no_branch                 a select branch that is never meant to run
 *
 * All static inline, so a file that uses only some of them builds
 * warning-free.
 */
#ifndef WEFT_TESTS_CORE_MISUSE_TEST_H
#define WEFT_TESTS_CORE_MISUSE_TEST_H

#include "core_util.h"

static _Atomic int polled;
static flag drops;

static inline weft_poll count_poll(weft_cx *cx, void *p)
{
    (void)cx;
    (void)p;
    atomic_fetch_add(&polled, 1);
    return 11;
}

static inline void count_drop(void *p)
{
    (void)p;
    flag_add(&drops, 1);
}

static inline weft_poll no_branch(weft_cx *cx, void *frame, unsigned i)
{
    (void)cx;
    (void)frame;
    (void)i;
    return 0;
}

#endif
