/*
 * weft/harness.h - race-finding for your own tasks: give a scenario (set
 * up, a root task, an invariant check) and the harness runs it under every
 * schedule-exploring mode weft has, waits for quiescence after each run,
 * checks, and for a failure prints a replay command and a readable,
 * minimised schedule.
 *
 * The modes, in the order weft_harness_run tries them:
 *   sweep     on the simulator (weft/sim.h), one run that cancels nothing,
 *             counting the suspensions of every task the scenario spawns
 *             (detached ones included); then one run per suspension k,
 *             cancelling the task that made the k-th one (an abort request)
 *             right after it. The seed is fixed, so run k replays the
 *             uncancelled run up to that point.
 *   uniform   `seeds` simulated runs, each seed a different interleaving and
 *             different early timer firings; every other seed also cancels
 *             a random task at 1 in `cancel_one_in` of its suspensions.
 *   pct       for each depth d in 1 .. pct_depth, `pct_seeds` runs of PCT
 *             over tasks (weft/sim.h) with the horizon set to the length of
 *             the uncancelled run.
 *   threads   `threaded_runs` runs on a real runtime of `workers` threads;
 *             three in four cancel (an abort request) whichever task makes
 *             a seeded one of the suspensions of all tasks, counted as in
 *             the uncancelled simulated run, right after that poll. The
 *             interleaving is the machine's: not replayable. Skipped for a
 *             scenario that makes simulated descriptors (weft/sim.h), whose
 *             operations only the simulator completes.
 *
 * I/O: a scenario whose tasks use simulated descriptors (weft/sim.h)
 * replays bit for bit like any other, and its schedules show each
 * completion; one using real descriptors does not (see weft/sim.h).
 *
 * Quiescence: after the root finishes, a simulated run goes on until no
 * task can run and no timer or I/O is left (at most `quiesce_steps` polls);
 * a threaded run waits for its root at most 10 s (then rc is -ETIMEDOUT),
 * then polls every millisecond, for at most 200 ms, until only the
 * harness's task is live. Then check runs, with
 * weft_harness_run_info.live_tasks saying what was left.
 *
 * Per run: setup (fill in the root's description; the frame is yours and
 * must live until teardown), start (optional: spawn on the run's runtime
 * before the root), the run, check, teardown. Runs are sequential
 * on the calling thread; check runs after the tasks stopped running, before
 * the runtime is shut down (so the runtime and any task still blocked are
 * still there to look at), and teardown after the runtime is freed (so a
 * drop hook run at shutdown still finds the scenario's state).
 *
 * Results are negative errno values as everywhere in weft; a failing check
 * is not an error (see the report).
 */
#ifndef WEFT_HARNESS_H
#define WEFT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "weft/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum weft_harness_mode {
    WEFT_HARNESS_SWEEP = 1,
    WEFT_HARNESS_UNIFORM,
    WEFT_HARNESS_PCT,
    WEFT_HARNESS_THREADS,
} weft_harness_mode;

/* What check is told about the run it checks. */
typedef struct weft_harness_run_info {
    weft_harness_mode mode;
    uint64_t seed;
    unsigned pct_depth;         /* pct: the depth */
    unsigned k;                 /* sweep: the suspension cancelled after; 0 none */
    unsigned cancels;           /* cancellations the harness injected */
    int rc;                     /* 0, or weft_block_on's -EDEADLK / -ELOOP */
    weft_outcome root;          /* the root's outcome when rc == 0 */
    size_t live_tasks;          /* tasks still live after the wait for quiescence */
    weft_runtime *rt;           /* the runtime, not yet shut down */
} weft_harness_run_info;

typedef struct weft_harness_scenario {
    const char *name;
    /* Before each run: reset the program's state, describe the root. */
    int (*setup)(void *arg, weft_task_desc *root);
    /* After each run: 0 when the invariants hold; else non-zero, with a
     * reason written into why (why_size bytes, may be left empty). */
    int (*check)(void *arg, const weft_harness_run_info *run, char *why, size_t why_size);
    void (*teardown)(void *arg);        /* optional */
    void *arg;
    /* Optional, after setup: the run's runtime exists, the root is not yet
     * spawned. Called on the calling thread, outside any task, as a program
     * spawns before it calls weft_block_on: start the tasks (channels,
     * handles) the root expects to find. They are the scenario's tasks like
     * any other: the sweep cancels their awaits too. On a threaded run they
     * start running at once. 0, or a negative errno that stops the harness. */
    int (*start)(void *arg, weft_runtime *rt);
} weft_harness_scenario;

typedef struct weft_harness_opts {
    unsigned seeds;             /* uniform runs; 0 = 200 */
    unsigned pct_seeds;         /* runs per PCT depth; 0 = 200 */
    unsigned pct_depth;         /* depths 1 .. this; 0 = 3 */
    unsigned threaded_runs;     /* 0 = 20 */
    unsigned workers;           /* simulated workers and threads; 0 = 2 */
    uint64_t first_seed;        /* 0 = 1 */
    unsigned cancel_one_in;     /* uniform's random cancels; 0 = 8 */
    unsigned max_sweep;         /* sweep runs at most; 0 = 2000 */
    uint64_t quiesce_steps;     /* 0 = 100000 */
    unsigned minimise_runs;     /* 0 = 300 */
    unsigned modes;             /* bits 1 << weft_harness_mode; 0 = all */
    bool keep_going;            /* go on after the first failure */
    bool quiet;                 /* only failures and the summary */
    FILE *log;                  /* NULL = stderr */
    const char *program;        /* for replay commands; NULL = "PROGRAM" */
    const char *save_dir;       /* failing schedules saved here; NULL = none */
} weft_harness_opts;

typedef struct weft_harness_report {
    unsigned runs;
    unsigned failures;
    /* The first failure (first_mode 0: none), and the name that replays it
     * (weft_harness_replay; a threaded run's cannot). */
    weft_harness_mode first_mode;
    char first_name[64];
    uint64_t first_seed;
    unsigned first_depth, first_k;
    unsigned runs_to_first;     /* runs made, that one included */
    double seconds_to_first;    /* wall clock */
    size_t steps, min_steps;    /* its schedule before and after minimising */
    unsigned choices, min_choices;  /* decisions other than the default */
    unsigned cancels, min_cancels;
} weft_harness_report;

/*
 * Run the scenario in every mode opts selects (see above), print what
 * happened to opts->log, fill *report (may be NULL). Returns 0 when it ran
 * (failures or not: see the report), -EINVAL for a scenario without setup
 * or check, -ENOMEM, or the first error setup or start returned.
 */
WEFT_EXTERN int weft_harness_run(const weft_harness_scenario *sc, const weft_harness_opts *opts,
                                 weft_harness_report *report);

/*
 * Replay one run named by the string a failure printed ("sweep:SEED:K",
 * "uniform:SEED:C", "pct:DEPTH:SEED:HORIZON"), or the minimised schedule a
 * failure saved ("file:PATH"), printing its whole schedule.
 * Returns 1 when the check fails, 0 when it holds, or a negative errno
 * (-EINVAL for a string that names no run).
 */
WEFT_EXTERN int weft_harness_replay(const weft_harness_scenario *sc, const weft_harness_opts *opts,
                                    const char *run);

/*
 * A main: `PROGRAM [--seeds N] [--pct D] [--pct-seeds N] [--threads N]
 * [--workers N] [--seed S] [--modes sweep,uniform,pct,threads] [--keep-going]
 * [--quiet] [--save DIR] [--replay RUN]`. Exits 0 when every check held, 1
 * when one failed, 2 on a usage or run error.
 */
WEFT_EXTERN int weft_harness_main(const weft_harness_scenario *sc, int argc, char **argv);

#define WEFT_HARNESS_MAIN(scenario)                                                       \
    int main(int argc, char **argv)                                                       \
    {                                                                                     \
        return weft_harness_main(&(scenario), argc, argv);                                \
    }

/* ---- Invariant helpers ---------------------------------------------------- */

/* Open file descriptors of this process (-errno if /proc cannot say). */
WEFT_EXTERN int weft_harness_open_fds(void);

/*
 * A counter of things acquired and released (pool slots, locks, fds): the
 * check asserts weft_harness_outstanding is 0 after quiescence. Thread-safe
 * (its fields are updated atomically through these calls only).
 */
typedef struct weft_harness_counter {
    long acquired, released;
} weft_harness_counter;

WEFT_EXTERN void weft_harness_acquire(weft_harness_counter *c);
WEFT_EXTERN void weft_harness_release(weft_harness_counter *c);
WEFT_EXTERN void weft_harness_counter_reset(weft_harness_counter *c);
/* acquired - released: 0 when balanced; -EINVAL for a NULL c (the other
 * counter calls do nothing with NULL). */
WEFT_EXTERN long weft_harness_outstanding(const weft_harness_counter *c);

/*
 * A watcher for "nothing happens on behalf of a task after it was
 * cancelled": the task calls weft_harness_watch_effect(cx, w) before each
 * side effect; it counts the effects made while weft_cx_cancel_requested
 * was true, or after weft_harness_watch_close (its caller gave up: timed
 * out or was cancelled). The check asserts late == 0. A NULL w does nothing.
 */
typedef struct weft_harness_watch {
    unsigned effects, late;     /* read them after quiescence */
    bool closed;
} weft_harness_watch;

WEFT_EXTERN void weft_harness_watch_reset(weft_harness_watch *w);
WEFT_EXTERN void weft_harness_watch_close(weft_harness_watch *w);
WEFT_EXTERN void weft_harness_watch_effect(weft_cx *cx, weft_harness_watch *w);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_HARNESS_H */
