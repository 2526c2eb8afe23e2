/*
 * tests/core/test_pace.c - the spin rule of runtime/pace.h as arithmetic:
 * no spin before a park has been measured, spinning once short idle gaps
 * dominate, none once long gaps do, a spin bounded by one park cost from
 * the start of the idle period, and an idle period counted once. Times are
 * plain numbers fed in; nothing here reads a clock.
 */
#include <criterion/criterion.h>

#include "runtime/pace.h"

#define US 1000u

/* One idle period that starts at `at` and ends `gap` later. */
static void idle_for(weft__pace *p, uint64_t at, uint64_t gap)
{
    weft__pace_idle(p, at);
    weft__pace_work(p, at + gap);
}

Test(pace, nothing_spins_before_a_park_was_measured)
{
    weft__pace p = { 0 };
    for (uint64_t i = 1; i <= 20; i++)
        idle_for(&p, i * 1000 * US, 1 * US);
    weft__pace_idle(&p, 100000 * US);
    cr_assert_eq(weft__pace_spin_until(&p), 0);
}

Test(pace, short_gaps_make_it_spin_for_one_park_cost)
{
    weft__pace p = { 0 };
    weft__pace_park_cost(&p, 20 * US);
    for (uint64_t i = 1; i <= 20; i++)
        idle_for(&p, i * 1000 * US, 2 * US);
    cr_assert_gt(p.spin_gain_ns, 0);
    weft__pace_idle(&p, 50000 * US);
    cr_assert_eq(weft__pace_spin_until(&p), 50000 * US + 20 * US);
}

Test(pace, long_gaps_stop_the_spin)
{
    weft__pace p = { 0 };
    weft__pace_park_cost(&p, 20 * US);
    for (uint64_t i = 1; i <= 20; i++)
        idle_for(&p, i * 1000 * US, 2 * US);
    /* Then the load drops: a millisecond between requests. */
    for (uint64_t i = 21; i <= 60; i++)
        idle_for(&p, i * 1000 * US, 1000 * US);
    cr_assert_leq(p.spin_gain_ns, 0);
    weft__pace_idle(&p, 100000 * US);
    cr_assert_eq(weft__pace_spin_until(&p), 0);
}

Test(pace, mostly_long_gaps_with_a_few_short_ones_do_not_spin)
{
    /* What an RPC server at low rate sees: the reply's completion comes
     * back quickly, the next request a millisecond later. Half short, half
     * long: each short one saves less than a long one wastes. */
    weft__pace p = { 0 };
    weft__pace_park_cost(&p, 20 * US);
    for (uint64_t i = 1; i <= 40; i++)
        idle_for(&p, i * 1000 * US, i % 2 ? 5 * US : 1000 * US);
    cr_assert_leq(p.spin_gain_ns, 0);
}

Test(pace, an_idle_period_starts_once_and_ends_once)
{
    weft__pace p = { 0 };
    weft__pace_park_cost(&p, 20 * US);
    weft__pace_idle(&p, 1000 * US);
    weft__pace_idle(&p, 1015 * US);     /* still the same period */
    cr_assert_eq(p.idle_since, 1000 * US);
    weft__pace_work(&p, 1016 * US);     /* a 16 us gap: under the cost */
    int64_t gain = p.spin_gain_ns;
    cr_assert_gt(gain, 0);
    weft__pace_work(&p, 5000 * US);     /* not idle: ignored */
    cr_assert_eq(p.spin_gain_ns, gain);
    cr_assert_not(weft__pace_is_idle(&p));
}

Test(pace, the_park_cost_follows_its_samples)
{
    weft__pace p = { 0 };
    weft__pace_park_cost(&p, 0);        /* no sample */
    cr_assert_eq(p.park_cost_ns, 0);
    weft__pace_park_cost(&p, 40 * US);
    cr_assert_eq(p.park_cost_ns, 40 * US);
    for (int i = 0; i < 100; i++)
        weft__pace_park_cost(&p, 10 * US);
    cr_assert_lt(p.park_cost_ns, 11 * US);
    cr_assert_geq(p.park_cost_ns, 10 * US);
}
