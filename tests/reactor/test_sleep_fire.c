/*
 * tests/reactor/test_sleep_fire.c - a worker that fires a sleep wheel wakes
 * the due sleeps' tasks after it has let go of the wheel's lock
 * (reactor/driver.h, rule 4): a wake may unpark another worker, a syscall,
 * and a thread can lose its CPU anywhere; inside the lock either would keep
 * every other worker from firing that wheel.
 *
 * White-box: a bare worker's driver (no ring, no runtime) with sleeps armed
 * whose wakers are wake hooks, so that the test sees each wake happen and
 * what the wheel's lock looked like at that moment.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "reactor/driver.h"
#include "runtime/spinlock.h"
#include "runtime/waker.h"
#include "runtime/worker.h"

/* reactor/sleep.c's SLEEP_ARMED: the state weft_sleep_until leaves an
 * armed sleep in (its first poll sets it before arming the timer). */
#define SLEEP_ARMED 1u

struct probe {
    weft__wake_hook hook;           /* first: the waker points here */
    weft__driver *d;
    int woken;
    int lock_free_at_wake;
};

static void on_wake(weft__wake_hook *hook)
{
    struct probe *p = (struct probe *)hook;
    p->woken++;
    if (weft__spin_trylock(&p->d->sleep_lock)) {
        p->lock_free_at_wake++;
        weft__spin_unlock(&p->d->sleep_lock);
    }
}

static weft_worker *bare_worker(void)
{
    weft_worker *w = aligned_alloc(_Alignof(weft_worker), sizeof *w);
    cr_assert_not_null(w);
    memset(w, 0, sizeof *w);
    weft__wheel_init(&w->driver.wheel, 0);
    return w;
}

static void arm(weft__driver *d, weft_sleep *s, struct probe *p, uint64_t deadline)
{
    *s = (weft_sleep)WEFT_SLEEP_INIT;
    p->hook.on_wake = on_wake;
    p->d = d;
    s->weft_wake = weft__waker_for_hook(&p->hook);
    s->weft_state = SLEEP_ARMED;
    weft__timer *t = (weft__timer *)(void *)s->weft_timer;
    weft__timer_init(t, WEFT__TIMER_SLEEP);
    weft__driver_arm_sleep(d, t, deadline);
}

Test(sleep_fire, wakes_after_the_wheel_lock_is_released)
{
    enum { N = 3 };
    weft_worker *w = bare_worker();
    weft_sleep sleeps[N];
    struct probe probes[N] = { 0 };
    for (int i = 0; i < N; i++)
        arm(&w->driver, &sleeps[i], &probes[i], 1000 + (uint64_t)i);

    cr_assert_eq(weft__driver_fire_sleeps(&w->driver, 999), 0, "nothing is due yet");
    cr_assert_eq(weft__driver_fire_sleeps(&w->driver, 5000), N);
    for (int i = 0; i < N; i++) {
        cr_expect_eq(probes[i].woken, 1, "sleep %d woken once", i);
        cr_expect_eq(probes[i].lock_free_at_wake, 1,
                     "sleep %d was woken while the wheel's lock was held", i);
    }
    cr_expect_eq(weft__driver_sleep_next(&w->driver), UINT64_MAX, "the wheel is empty");
    free(w);
}

/* A firing worker that finds the wheel's lock taken leaves the wheel alone:
 * its owner, or another worker, holds it and fires it. */
Test(sleep_fire, a_held_wheel_is_left_to_its_holder)
{
    weft_worker *w = bare_worker();
    weft_sleep s;
    struct probe p = { 0 };
    arm(&w->driver, &s, &p, 1000);

    weft__spin_lock(&w->driver.sleep_lock);
    cr_expect_eq(weft__driver_fire_sleeps(&w->driver, 5000), 0);
    weft__spin_unlock(&w->driver.sleep_lock);
    cr_expect_eq(p.woken, 0);
    cr_expect_eq(weft__driver_fire_sleeps(&w->driver, 5000), 1);
    cr_expect_eq(p.woken, 1);
    cr_expect_eq(p.lock_free_at_wake, 1);
    free(w);
}
