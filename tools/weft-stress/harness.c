/*
 * tools/weft-stress/harness.c - weft-stress --harness: every scenario that
 * has the shape weft/harness.h takes (stress_parts, stress.h) runs through
 * weft_harness_run: the sweep cancels each await of every task in turn,
 * then uniform seeds (half with random cancellations), PCT over tasks and
 * threaded runs with a cancellation injected; a failure prints its replay
 * command and its minimised schedule.
 *
 * One instance per scenario: --seed plans it (the same tasks, kinds and
 * steps in every run), the harness varies the schedule and the
 * cancellations. Each run: setup makes the instance and describes its
 * root, the start hook spawns what the scenario spawns before its root,
 * check runs the scenario's own checks (after quiescence) and adds two of
 * the harness's: the root did not hang, no task was left behind. The
 * scenario's violations of that run are captured (stress_capture): they
 * are the check's result, the first one its reason.
 *
 * --planted runs only the scenarios with a planted bug (a catalogue fix
 * turned off) and succeeds when each is found and its first failure
 * replays.
 *
 * Invariant: the instance lives from setup to teardown, which runs after
 * the run's runtime is freed, so no task can touch it when it is destroyed.
 */
#include <stdio.h>
#include <string.h>

#include <weft/harness.h>

#include "stress.h"

typedef struct hx {
    const stress_scenario *sc;
    uint64_t seed;
    unsigned threads;
    void *st;
    uint64_t violations;            /* stress_totals.violations at setup */
    char why[200];
} hx;

static int hx_setup(void *arg, weft_task_desc *root)
{
    hx *x = arg;
    x->why[0] = '\0';
    stress_capture(x->why, sizeof x->why);
    x->violations = atomic_load(&stress_totals.violations);
    x->st = x->sc->parts->make(x->seed, x->threads);
    *root = x->sc->parts->root(x->st);
    return 0;
}

static int hx_start(void *arg, weft_runtime *rt)
{
    hx *x = arg;
    return x->sc->parts->start ? x->sc->parts->start(x->st, rt) : 0;
}

static int hx_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    hx *x = arg;
    const char *name = x->sc->name;
    /* A threaded run counts the harness's own task, whose completion the
     * registry may not have settled yet. */
    size_t own = run->mode == WEFT_HARNESS_THREADS;
    if (run->rc != 0)
        stress_violation(name, x->seed, "root: %s", weft_strerror(run->rc));
    else if (run->live_tasks > own)
        stress_violation(name, x->seed, "%zu tasks never finished", run->live_tasks - own);
    x->sc->parts->check(x->st, run->rc, &run->root, run->cancels);
    stress_capture(NULL, 0);
    if (atomic_load(&stress_totals.violations) == x->violations)
        return 0;
    snprintf(why, n, "%s", x->why);
    return 1;
}

static void hx_teardown(void *arg)
{
    hx *x = arg;
    stress_capture(NULL, 0);
    x->sc->parts->destroy(x->st);
    x->st = NULL;
}

/* --planted: the bug must be found, and its first failure must replay
 * (a threaded one cannot). */
static bool planted_found(const weft_harness_scenario *hs, const weft_harness_opts *ho,
                          const weft_harness_report *rep)
{
    if (rep->failures == 0) {
        printf("weft-stress: %s: the planted bug was not found\n", hs->name);
        return false;
    }
    if (rep->first_mode == WEFT_HARNESS_THREADS)
        return true;
    weft_harness_opts quiet = *ho;
    quiet.log = fopen("/dev/null", "w");
    int rc = quiet.log ? weft_harness_replay(hs, &quiet, rep->first_name) : -1;
    if (quiet.log)
        fclose(quiet.log);
    printf("weft-stress: %s: planted bug found by %s, %s\n", hs->name, rep->first_name,
           rc == 1 ? "and its replay fails the same way" : "but its replay does not fail");
    return rc == 1;
}

/* One scenario: 0 when it ran (*failed tells), or a negative errno. */
static int one(const stress_scenario *sc, const stress_harness_opts *o, unsigned *failed,
               unsigned *runs)
{
    hx x = { .sc = sc, .seed = o->seed, .threads = o->threads };
    weft_harness_scenario hs = { .name = sc->name, .setup = hx_setup, .check = hx_check,
                                 .teardown = hx_teardown, .arg = &x, .start = hx_start };
    char program[200];
    snprintf(program, sizeof program, "weft-stress --harness --seed 0x%llx --threads %u%s "
             "--scenario %s", (unsigned long long)o->seed, o->threads,
             stress_planted ? " --planted" : "", sc->name);
    weft_harness_opts ho = {
        .seeds = o->runs, .pct_seeds = o->runs, .pct_depth = o->pct,
        .threaded_runs = (o->runs + 9) / 10, .workers = o->threads, .max_sweep = 10 * o->runs,
        .modes = sc->parts->modes,
        .quiet = true, .log = stdout, .program = program,
    };
    if (o->replay) {
        int rc = weft_harness_replay(&hs, &ho, o->replay);
        *failed += rc == 1;
        return rc < 0 ? rc : 0;
    }
    weft_harness_report rep;
    int rc = weft_harness_run(&hs, &ho, &rep);
    if (rc == 0 && stress_planted)
        *failed += !planted_found(&hs, &ho, &rep);
    else
        *failed += rep.failures > 0;
    *runs += rep.runs;
    return rc;
}

int stress_harness(const stress_scenario *const *chosen, unsigned n,
                   const stress_harness_opts *o)
{
    unsigned ran = 0, failed = 0, runs = 0;
    for (unsigned i = 0; i < n; i++) {
        if (!chosen[i]->parts || (stress_planted && !chosen[i]->parts->planted))
            continue;
        int rc = one(chosen[i], o, &failed, &runs);
        if (rc < 0) {
            fprintf(stderr, "weft-stress: %s: harness: %s\n", chosen[i]->name,
                    weft_strerror(rc));
            return 2;
        }
        ran++;
        fflush(stdout);
    }
    if (!o->replay)
        printf("weft-stress --harness%s: %u scenarios, %u runs, %u %s (seed 0x%llx)\n",
               stress_planted ? " --planted" : "", ran, runs, failed,
               stress_planted ? "planted bugs missed" : "failing", (unsigned long long)o->seed);
    return failed ? 1 : 0;
}
