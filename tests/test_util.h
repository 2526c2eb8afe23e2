/*
 * tests/test_util.h - helpers shared by the Criterion tests.
 *
 * WEFT_ASSERT_NO_LEAKS(): in ASan builds LeakSanitizer only prints leaks and
 * lets the test pass; asserting its recoverable check at the end of a test body
 * makes a leak fail the test. Elsewhere it does nothing.
 */
#ifndef WEFT_TESTS_TEST_UTIL_H
#define WEFT_TESTS_TEST_UTIL_H

#if defined(WEFT_TEST_LSAN) && WEFT_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#define WEFT_ASSERT_NO_LEAKS() \
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks")
#else
#define WEFT_ASSERT_NO_LEAKS() ((void)0)
#endif

#endif /* WEFT_TESTS_TEST_UTIL_H */
