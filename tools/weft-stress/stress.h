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
#include <stddef.h>
#include <stdint.h>

#include <weft/harness.h>
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

/*
 * A scenario in the shape weft/harness.h runs (harness.c, --harness):
 *   make     plans an instance from its seed; no runtime yet;
 *   start    (optional) spawns on rt the tasks the root expects to find:
 *            the harness's start hook;
 *   root     describes the root, whose frame lives in the instance;
 *   check    after the root returned (rc: 0, or the root hung, already
 *            reported), every broken invariant through stress_violation;
 *            `injected`: cancellations from outside the scenario (the
 *            harness's), for the oracles that assume only their own;
 *   destroy  frees the instance once no task can touch it.
 * The scenario's own run is these in a row (stress_run_parts), so both
 * drivers check the same invariants.
 */
/* stress_parts.modes: the simulator's modes, and every mode but PCT (for a
 * scenario with a task that polls until another acts: PCT keeps running
 * the poller while its priority is the highest, and the run never ends). */
#define STRESS_SIM_MODES                                                      \
    (1u << WEFT_HARNESS_SWEEP | 1u << WEFT_HARNESS_UNIFORM | 1u << WEFT_HARNESS_PCT)
#define STRESS_NO_PCT                                                         \
    (1u << WEFT_HARNESS_SWEEP | 1u << WEFT_HARNESS_UNIFORM | 1u << WEFT_HARNESS_THREADS)

typedef struct stress_parts {
    void *(*make)(uint64_t seed, unsigned threads);
    int (*start)(void *st, weft_runtime *rt);
    weft_task_desc (*root)(void *st);
    void (*check)(void *st, int rc, const weft_outcome *root, unsigned injected);
    void (*destroy)(void *st);
    /* The harness's modes it runs in (bits 1 << weft_harness_mode; 0: all),
     * for the scenarios a mode cannot run (see STRESS_*): docs/harness.md
     * says why for each. */
    unsigned modes;
    /* The catalogue fix --planted turns off in it (NULL: none). */
    const char *planted;
} stress_parts;

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
    /* Runs under --harness (NULL: it cannot; docs/harness.md says why). */
    const stress_parts *parts;
} stress_scenario;

/* --planted: the scenarios that have a planted bug (a fix of the catalogue
 * turned off, stress_parts.planted) plant it, and --harness runs only those
 * and succeeds only when it finds each (the test that proves it can). */
extern bool stress_planted;

extern const stress_scenario stress_scenarios[];
extern const unsigned stress_scenario_count;

/* Record a violation for the instance with this seed (printf-style detail). */
void stress_violation(const char *scenario, uint64_t seed, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --harness: from now on violations are counted but not printed, and the
 * first one's detail goes into why (size bytes); NULL prints them again. */
void stress_capture(char *why, size_t size);

/* --harness: run each chosen scenario that has parts through weft/harness.h
 * (harness.c); `replay` names one run of the one scenario chosen. 0 when
 * every check held (--planted: when every planted bug was found and its
 * first failure replayed), 1 when not, 2 on an error. */
typedef struct stress_harness_opts {
    uint64_t seed;
    unsigned threads, runs, pct;
    const char *replay;
} stress_harness_opts;
int stress_harness(const stress_scenario *const *chosen, unsigned n,
                   const stress_harness_opts *o);

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
