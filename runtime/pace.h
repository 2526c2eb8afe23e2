/*
 * runtime/pace.h - what a worker's idle time is worth: the measured cost of a
 * park, and whether spinning before one has been paying for itself. The run
 * loop (worker.c) feeds it two kinds of sample and asks it two questions;
 * nothing here reads a clock or another thread, so it is plain arithmetic
 * on nanoseconds, tested as such (tests/core/test_pace.c).
 *
 * The two samples:
 *   - a park's CPU cost: the CPU time the worker's thread used between
 *     deciding to park and running again, for a park that really slept
 *     (the kernel entry, two context switches, the way back). The unparker
 *     pays about as much again for its wake-up write; leaving that out
 *     only makes the spin shorter.
 *   - an idle gap: the worker ran out of work at i and work showed up at s
 *     (found by a spin, or the stamp of the unpark that woke it).

 * The two questions:
 *   - spin or park? Spin only while spinning has recently paid: had the
 *     worker spun for one park cost on each recent idle period, a gap no
 *     longer than that would have saved (park cost - gap) of CPU, a longer
 *     one would have wasted the whole park cost. (It saves latency too: a
 *     spinning worker takes work at once, a parked one after a wake-up.) The running average of that
 *     saving is `spin_gain`; spin while it is positive. A worker idle for
 *     long therefore stops spinning after a few such periods, whatever the
 *     machine; one on a fast ping-pong keeps spinning.
 *   - how long? At most one park cost from the start of the idle period
 *     (the rent-or-buy rule: spinning for as long as buying costs is never
 *     more than twice the better choice made in hindsight).
 *
 * Invariants (who touches what):
 *   1. A weft__pace belongs to its worker's thread; nobody else reads it.
 *   2. park_cost_ns is 0 until the first park has been measured, and with
 *      it 0 nothing spins: the first parks measure the machine.
 *   3. The only constant is PACE_MEMORY, the number of samples the two
 *      averages remember (each new sample weighs 1/PACE_MEMORY), and how
 *      many parks go by per park-cost sample. It is a count, not a
 *      duration: it sets how fast the rule follows a change of load, not
 *      where the rule switches.
 */
#ifndef WEFT_RUNTIME_PACE_H
#define WEFT_RUNTIME_PACE_H

#include <stdbool.h>
#include <stdint.h>

#define WEFT__PACE_MEMORY 8

typedef struct weft__pace {
    uint64_t park_cost_ns;  /* average CPU cost of a park; 0: none measured yet */
    uint32_t parks;         /* parks so far, to sample one in WEFT__PACE_MEMORY */
    int64_t spin_gain_ns;   /* average saving a spin of park_cost_ns would have made */
    uint64_t idle_since;    /* when the worker ran out of work; 0 while it has some */
} weft__pace;

static inline int64_t weft__pace_average(int64_t avg, int64_t sample)
{
    return avg + (sample - avg) / WEFT__PACE_MEMORY;
}

/* Measure this park? Reading a thread's CPU clock is a system call (0.3 to
 * 0.5 us on a VM), twice per park: one park in WEFT__PACE_MEMORY is plenty
 * for an average that remembers that many samples. The first park is
 * always measured (rule 2). */
static inline bool weft__pace_sample_park(weft__pace *p)
{
    return p->parks++ % WEFT__PACE_MEMORY == 0;
}

/* A park that slept used `cpu_ns` of the worker thread's CPU time. */
static inline void weft__pace_park_cost(weft__pace *p, uint64_t cpu_ns)
{
    if (cpu_ns == 0)
        return;
    p->park_cost_ns = p->park_cost_ns == 0
        ? cpu_ns : (uint64_t)weft__pace_average((int64_t)p->park_cost_ns, (int64_t)cpu_ns);
}

/* The worker found nothing to run at `now` (only the first call of an idle
 * period counts). */
static inline void weft__pace_idle(weft__pace *p, uint64_t now)
{
    if (p->idle_since == 0)
        p->idle_since = now ? now : 1;
}

static inline bool weft__pace_is_idle(const weft__pace *p)
{
    return p->idle_since != 0;
}

/* The idle period ended: work showed up at `seen`. */
static inline void weft__pace_work(weft__pace *p, uint64_t seen)
{
    if (p->idle_since == 0)
        return;
    uint64_t gap = seen > p->idle_since ? seen - p->idle_since : 0;
    int64_t cost = (int64_t)p->park_cost_ns;
    int64_t saved = gap <= p->park_cost_ns ? cost - (int64_t)gap : -cost;
    p->spin_gain_ns = weft__pace_average(p->spin_gain_ns, saved);
    p->idle_since = 0;
}

/* Spin before parking? Until when (a time on the worker's clock)? 0: park. */
static inline uint64_t weft__pace_spin_until(const weft__pace *p)
{
    if (p->idle_since == 0 || p->park_cost_ns == 0 || p->spin_gain_ns <= 0)
        return 0;
    return p->idle_since + p->park_cost_ns;
}

#endif /* WEFT_RUNTIME_PACE_H */
