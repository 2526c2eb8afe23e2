/*
 * tools/weft-stress/scen_util.h - helpers the scenarios share, and the run
 * functions the scenario table names.
 *
 *   scen_zalloc()        zeroed memory, or abort: scenario state is small and
 *                        a stress run has no use for a failed allocation;
 *   scen_block_on()      run a root task with a hang limit: a root that does
 *                        not finish is a violation (a lost wake-up, a lock
 *                        never handed over), and its state is then leaked on
 *                        purpose, since tasks may still point into it. On a
 *                        simulated runtime (weft/sim.h) it is weft_block_on,
 *                        which reports such a root as -EDEADLK; scenarios
 *                        that use nothing else from outside their tasks (no
 *                        threads, no I/O) are marked deterministic;
 *   struct scen_chaos    a nested state machine that aborts random handles
 *                        between random yields and naps, so cancellations land
 *                        at random await points of the tasks behind them;
 *   scen_count_*()       a join outcome into the run's statistics;
 *   scen_check_*()       the checks every task of a scenario gets: its drop
 *                        hook ran once, its join status obeys the rules;
 *   scen_run_parts()     a scenario's run from its parts (stress.h), the
 *                        shape weft-stress --harness also runs.
 *
 * Selects are awaited with WEFT_SELECT_AWAIT, which resets the selector: a
 * cancellation delivered at the await before weft_select ever runs would
 * leave it as the previous select left it, and weft_select_outcome would
 * report the previous round's winner as this one's (found by c8_futurelock:
 * a task "held" a mutex it had already unlocked, and unlocked it twice).
 *
 * Invariant: the chaos phase only aborts; it never joins or detaches, so the
 * handles stay valid for the root that owns them.
 */
#ifndef WEFT_STRESS_SCEN_UTIL_H
#define WEFT_STRESS_SCEN_UTIL_H

#include <stddef.h>

#include "stress.h"

#define SCEN_HANG_NS (20ull * 1000000000ull)

/* calloc(1, n) that aborts instead of returning NULL. */
void *scen_zalloc(size_t n);

/* 0 when the root finished (its outcome in *out), -ETIMEDOUT when it hung. */
int scen_block_on(weft_runtime *rt, const weft_task_desc *d, weft_outcome *out,
                  const char *scenario, uint64_t seed);

struct scen_chaos {
    weft_frame f;
    weft_join *h;           /* the handles to abort from */
    uint32_t n;             /* how many */
    uint32_t rounds;        /* yields or naps to spread the aborts over */
    uint32_t odds;          /* one abort in `odds` rounds */
    uint64_t rng;
    uint64_t nap_ns;        /* this round's nap, drawn before its await */
    bool naps;              /* this round naps rather than yields */
    uint32_t i;
    weft_poll rc;
    weft_sleep nap;
};

/* Add a join outcome to the run's cancellation statistics: its request's
 * source, a shield that held it, and whether it was torn down or delivered
 * (as its status and delivery site say). */
void scen_count_outcome(const weft_outcome *o);

/* Only the source and the shield: for scenarios whose tasks count their own
 * deliveries and whose checks decide what counts as torn down. */
void scen_count_cancel(const weft_outcome *o);

/* Count a withdrawn wait when r says so (-ECANCELED, -ETIMEDOUT). */
static inline void scen_count_withdrawn(int64_t r)
{
    if (r == -ECANCELED || r == -ETIMEDOUT)
        stress_count(&stress_totals.withdrawn, 1);
}

/* Await from a root; yields 0, or -ECANCELED if the root itself is cancelled. */
weft_poll scen_chaos_poll(weft_cx *cx, struct scen_chaos *c);

/* A violation for each of the n tasks whose drop hook did not run exactly once. */
void scen_check_drops(const char *sc, uint64_t seed, _Atomic uint32_t *drops, uint32_t n);

/* Task id's drop count and join status against the rules for a task of its
 * kind: a cooperative task returns (0), a cancel-safe one may be torn down. */
void scen_check_join(const char *sc, uint64_t seed, uint32_t id, bool cancel_safe, int status,
                     uint32_t drops);

/* A scenario's own run from its parts (stress.h): make, start, the root
 * through scen_block_on, check, destroy; after a hang the instance is
 * leaked, since tasks may still point into it. */
void scen_run_parts(const stress_parts *p, const char *scenario, weft_runtime *rt,
                    uint64_t seed, unsigned threads);

/* The scenarios' parts, for the tables (stress.h). */
extern const stress_parts scen_locks_parts, scen_gather_parts, scen_c1_parts, scen_c8_parts,
    scen_c9_parts, scen_c11_parts, scen_c14_parts, scen_c16_parts, scen_c17_parts, scen_chan_parts;

/* The scenarios outside scenarios_core.c (see each file's header). */
void scen_run_io_frames(weft_runtime *rt, uint64_t seed, unsigned threads);
void scen_run_io_fds(weft_runtime *rt, uint64_t seed, unsigned threads);
void scen_run_io_deadline(weft_runtime *rt, uint64_t seed, unsigned threads);
void scen_run_chan_conserve(weft_runtime *rt, uint64_t seed, unsigned threads);
void scen_run_locks(weft_runtime *rt, uint64_t seed, unsigned threads);
void scen_run_gather(weft_runtime *rt, uint64_t seed, unsigned threads);
void scen_run_c1_persist(weft_runtime *rt, uint64_t seed, unsigned threads);
void scen_run_c8_futurelock(weft_runtime *rt, uint64_t seed, unsigned threads);
void scen_run_c9_blocking(weft_runtime *rt, uint64_t seed, unsigned threads);
void scen_run_c11_c12_level(weft_runtime *rt, uint64_t seed, unsigned threads);
void scen_run_c13_abort_race(weft_runtime *rt, uint64_t seed, unsigned threads);
void scen_run_c14_select_timer(weft_runtime *rt, uint64_t seed, unsigned threads);
void scen_run_c15_c16_relay(weft_runtime *rt, uint64_t seed, unsigned threads);
void scen_run_c17_detached(weft_runtime *rt, uint64_t seed, unsigned threads);

#endif /* WEFT_STRESS_SCEN_UTIL_H */
