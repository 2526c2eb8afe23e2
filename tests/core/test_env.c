/*
 * tests/core/test_env.c - runtime options from the environment
 * (weft_runtime_opts_from_env, and weft_runtime_new honouring WEFT_WORKERS,
 * WEFT_PIN and WEFT_BLOCKING_THREADS for the fields its caller left at
 * their default): values applied, explicit options winning, unset and empty
 * variables ignored, and every malformed value refused with -EINVAL, the
 * variable named and the options untouched. Each test is its own process
 * (Criterion forks), so setenv does not leak between tests.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "test_util.h"
#include "weft/weft.h"

TestSuite(env, .timeout = 60);

static void clear_env(void)
{
    unsetenv("WEFT_WORKERS");
    unsetenv("WEFT_PIN");
    unsetenv("WEFT_BLOCKING_THREADS");
    unsetenv("WEFT_HUGEPAGES");
}

Test(env, values_are_applied_and_unset_or_empty_ones_ignored)
{
    clear_env();
    weft_runtime_opts o = { .threads = 7, .blocking_threads = 9 };
    const char *bad = "untouched";
    cr_assert_eq(weft_runtime_opts_from_env(&o, &bad), 0);
    cr_assert_eq(o.threads, 7);
    cr_assert_str_eq(bad, "untouched");
    setenv("WEFT_WORKERS", "3", 1);
    setenv("WEFT_PIN", "Yes", 1);
    setenv("WEFT_BLOCKING_THREADS", "", 1);
    cr_assert_eq(weft_runtime_opts_from_env(&o, NULL), 0);
    cr_assert_eq(o.threads, 3);
    cr_assert(o.pin_workers);
    cr_assert_eq(o.blocking_threads, 9);
    setenv("WEFT_PIN", "off", 1);
    setenv("WEFT_BLOCKING_THREADS", "12", 1);
    cr_assert_eq(weft_runtime_opts_from_env(&o, NULL), 0);
    cr_assert(!o.pin_workers);
    cr_assert_eq(o.blocking_threads, 12);
}

Test(env, runtime_new_honours_it_for_defaults_only)
{
    clear_env();
    setenv("WEFT_WORKERS", "3", 1);
    weft_runtime *rt;
    cr_assert_eq(weft_runtime_new(&rt, NULL), 0);
    cr_assert_eq(weft_runtime_threads(rt), 3);
    cr_assert_eq(weft_runtime_free(rt), 0);
    weft_runtime_opts o = { .threads = 2 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    cr_assert_eq(weft_runtime_threads(rt), 2, "an explicit option must win");
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

static void refused(const char *name, const char *value)
{
    clear_env();
    setenv(name, value, 1);
    weft_runtime_opts o = { .threads = 5, .blocking_threads = 6 };
    const char *bad = NULL;
    cr_assert_eq(weft_runtime_opts_from_env(&o, &bad), -EINVAL, "%s=%s accepted", name, value);
    cr_assert_str_eq(bad, name);
    cr_assert_eq(o.threads, 5);
    cr_assert_eq(o.blocking_threads, 6);
    cr_assert(!o.pin_workers);
    weft_runtime *rt = NULL;
    cr_assert_eq(weft_runtime_new(&rt, NULL), -EINVAL, "%s=%s started a runtime", name, value);
    cr_assert_null(rt);
}

Test(env, malformed_values_are_refused_and_named)
{
    const char *workers[] = { "abc", "-1", "+2", " 3", "3 ", "3x", "4097", "99999999999", "0x4" };
    for (size_t i = 0; i < sizeof workers / sizeof workers[0]; i++)
        refused("WEFT_WORKERS", workers[i]);
    refused("WEFT_PIN", "maybe");
    refused("WEFT_PIN", "2");
    refused("WEFT_HUGEPAGES", "sometimes");
    refused("WEFT_BLOCKING_THREADS", "0");
    refused("WEFT_BLOCKING_THREADS", "many");
    /* the first bad variable wins; a good one beside it changes nothing */
    clear_env();
    setenv("WEFT_PIN", "1", 1);
    setenv("WEFT_BLOCKING_THREADS", "x", 1);
    weft_runtime_opts o = { 0 };
    const char *bad = NULL;
    cr_assert_eq(weft_runtime_opts_from_env(&o, &bad), -EINVAL);
    cr_assert_str_eq(bad, "WEFT_BLOCKING_THREADS");
    cr_assert(!o.pin_workers);
}

Test(env, misuse)
{
    cr_assert_eq(weft_runtime_opts_from_env(NULL, NULL), -EINVAL);
    const char *bad = NULL;
    cr_assert_eq(weft_runtime_opts_from_env(NULL, &bad), -EINVAL);
}
