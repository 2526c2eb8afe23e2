/*
 * tools/weft-stress/stress.h - what a weft-stress scenario is and what it
 * reports.
 *
 * A scenario instance is a pure function of its seed: the seed fixes every
 * random choice the scenario makes (how many tasks, of which kinds, which get
 * aborted and when). Thread interleavings are not fixed by the seed; running the
 * same seed again replays the same choices under new interleavings.
 *
 * A scenario checks its own invariants and reports violations through
 * stress_violation(), which prints what went wrong; the driver prints the seed
 * and the command that replays it.
 */
#ifndef WEFT_STRESS_H
#define WEFT_STRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <weft/weft.h>

typedef struct stress_stats {
    _Atomic uint64_t scenarios;
    _Atomic uint64_t tasks;
    _Atomic uint64_t by_source[WEFT_CANCEL_SHUTDOWN + 1];  /* requests seen by joins */
    _Atomic uint64_t at_yield;      /* cooperative delivery at a yield or sleep */
    _Atomic uint64_t at_join;       /* cooperative delivery at a join await */
    _Atomic uint64_t torn_down;     /* cancel-safe tasks stopped at an await */
    _Atomic uint64_t shield_held;   /* deliveries a shield deferred */
    _Atomic uint64_t violations;
    _Atomic uint64_t withdrawn;     /* leaf waits (I/O, sync, timers) withdrawn by a
                                       cancel, a deadline or a lost select */
} stress_stats;

extern stress_stats stress_totals;

typedef struct stress_scenario {
    const char *name;
    const char *what;
    /* Run one instance on rt (NULL: the scenario makes its own runtime). */
    void (*run)(weft_runtime *rt, uint64_t seed, unsigned threads);
    /* Runs under --deterministic, where rt is simulated (weft/sim.h): the
     * scenario waits for its root with weft_block_on only (nothing else
     * drives a simulated runtime), starts no threads, does no I/O and makes
     * no runtime of its own; then the seed fixes the interleaving too. */
    bool deterministic;
} stress_scenario;

extern const stress_scenario stress_scenarios[];
extern const unsigned stress_scenario_count;

/* Record a violation for the instance with this seed (printf-style detail). */
void stress_violation(const char *scenario, uint64_t seed, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static inline uint64_t stress_rng(uint64_t *state)
{
    /* splitmix64: tiny, and good enough to drive choices. */
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint32_t stress_below(uint64_t *state, uint32_t n)
{
    return (uint32_t)(stress_rng(state) % n);
}

static inline void stress_count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

#endif /* WEFT_STRESS_H */
