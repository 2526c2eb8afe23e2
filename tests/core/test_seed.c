/*
 * tests/core/test_seed.c - the seed scenario (examples/seed/seed.h) as a
 * test: with the default cooperative delivery, and with cancel-safe handlers
 * whose two steps sit in a shield, the file holds 1, 2, 3, ... with no
 * duplicate and the counter equals the last number written, over 100,000
 * requests under timeouts, aborts and token cancellations (20,000 in
 * sanitizer builds, which run several times slower). The wrong variant is
 * the example's to show, not a test's to fail.
 */
#include <criterion/criterion.h>
#include <unistd.h>

#include "../../examples/seed/seed.h"
#include "test_util.h"

#if defined(WEFT_TEST_LSAN) && WEFT_TEST_LSAN
#define REQUESTS 20000
#else
#define REQUESTS 100000
#endif

static void run_variant(enum seed_variant variant, uint64_t rng_seed)
{
    weft_runtime_opts opts = { .threads = 2, .trace = seed_trace, .shutdown_grace_ms = 100 };
    weft_runtime *rt;
    cr_assert_eq(weft_runtime_new(&rt, &opts), 0);
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    seed_report r;
    cr_assert_eq(seed_run(rt, variant, REQUESTS, rng_seed, dir, &r), 0);
    cr_expect_eq(r.duplicates, 0, "%llu duplicate numbers", (unsigned long long)r.duplicates);
    cr_expect_eq(r.out_of_order, 0, "%llu numbers out of order",
                 (unsigned long long)r.out_of_order);
    cr_expect_eq(r.counter, r.written, "counter %llu, %llu numbers in the file",
                 (unsigned long long)r.counter, (unsigned long long)r.written);
    cr_expect_eq(r.nlost, 0, "%llu updates lost", (unsigned long long)r.nlost);
    /* The run must have exercised every kind of cancellation. */
    cr_expect_gt(r.written, 0);
    cr_expect_gt(r.aborts, 0);
    cr_expect_gt(r.token_cancels, 0);
    cr_expect_gt(r.timeouts, 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(seed, cooperative_default_keeps_file_and_counter_consistent, .timeout = 240)
{
    run_variant(SEED_COOPERATIVE, 1);
}

Test(seed, cancel_safe_with_shield_keeps_file_and_counter_consistent, .timeout = 240)
{
    run_variant(SEED_SHIELDED, 2);
}
