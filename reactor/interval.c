/*
 * reactor/interval.c - weft_interval: a sleep re-armed on a fixed schedule,
 * and the missed-tick policies (weft/time.h).
 *
 * Invariants:
 *   1. `weft_next` moves only when a tick completes (its sleep yielded 0). A
 *      withdrawn tick leaves it alone, so the next await waits for the same
 *      tick: a cancelled tick did not happen.
 *   2. `weft_next` never moves backwards and never overflows (sums saturate).
 *   3. The embedded sleep owns every cross-thread concern (timer, waker,
 *      withdrawal); the interval's own fields are touched only by the task.
 */
#include <errno.h>

#include "weft/time.h"

enum { SLEEP_IDLE = 0 };    /* reactor/sleep.c: a zeroed sleep is idle */

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static bool sleep_busy(const weft_interval *iv)
{
    return __atomic_load_n(&iv->weft_tick_sleep.weft_state, __ATOMIC_ACQUIRE) != SLEEP_IDLE;
}

int weft_interval_init(weft_interval *iv, uint64_t start_ns, uint64_t period_ns,
                       weft_missed_tick policy)
{
    if (!iv || period_ns == 0 || (unsigned)policy > WEFT_TICK_SKIP)
        return -EINVAL;
    if (iv->weft_period && sleep_busy(iv))
        return -EBUSY;
    *iv = (weft_interval){ .weft_tick_sleep = WEFT_SLEEP_INIT };
    iv->weft_next = start_ns ? start_ns : weft_now_ns();
    iv->weft_period = period_ns;
    iv->weft_policy = (uint32_t)policy;
    return 0;
}

/* The tick scheduled at `at` completed at `now`: when is the next one? */
static uint64_t next_tick(const weft_interval *iv, uint64_t at, uint64_t now)
{
    uint64_t period = iv->weft_period;
    uint64_t next = add_sat(at, period);
    if (now < next || iv->weft_policy == WEFT_TICK_BURST)
        return next;
    if (iv->weft_policy == WEFT_TICK_DELAY)
        return add_sat(now, period);
    /* SKIP: the first instant of the original schedule after now. */
    uint64_t periods = (now - at) / period + 1;
    return periods > (UINT64_MAX - at) / period ? UINT64_MAX : at + periods * period;
}

weft_poll weft_interval_tick(weft_cx *cx, weft_interval *iv)
{
    if (!cx || !iv || iv->weft_period == 0)
        return -EINVAL;
    weft_poll r = weft_sleep_until(cx, &iv->weft_tick_sleep, iv->weft_next);
    if (r != 0)
        return r;   /* still waiting, or withdrawn: the schedule stays (rule 1) */
    iv->weft_last = iv->weft_next;
    iv->weft_next = next_tick(iv, iv->weft_next, weft_now_ns());
    return 0;
}

uint64_t weft_interval_scheduled(const weft_interval *iv)
{
    return iv ? iv->weft_last : 0;
}

int weft_interval_reset(weft_interval *iv)
{
    if (!iv || iv->weft_period == 0)
        return -EINVAL;
    if (sleep_busy(iv))
        return -EBUSY;
    iv->weft_next = add_sat(weft_now_ns(), iv->weft_period);
    return 0;
}
