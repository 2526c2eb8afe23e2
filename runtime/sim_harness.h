/*
 * runtime/sim_harness.h - what the two halves of weft/harness.h share:
 * sim_harness.c runs the modes and minimises, sim_harness_cli.c prints,
 * saves, parses run names and command lines.
 *
 * Everything here lives on the one thread that called weft_harness_run (or
 * _replay or _main); a threaded run's tasks touch none of it.
 */
#ifndef WEFT_RUNTIME_SIM_HARNESS_H
#define WEFT_RUNTIME_SIM_HARNESS_H

#include "runtime/sim.h"
#include "weft/harness.h"

#define WEFT__WHY_SIZE 256

/* One run: what it is (a name that replays it) and what it gave. */
typedef struct weft__hrun {
    weft_harness_run_info info;
    weft_sim_opts sim;
    weft__sim_plan plan;
    unsigned cancel_one_in;         /* uniform: the name's C */
    bool failed;
    char why[WEFT__WHY_SIZE];
    weft__sim_event *trace;         /* when plan.record: taken from the runtime */
    size_t ntrace;
    uint64_t steps;
    uint32_t suspensions, root_suspensions;
} weft__hrun;

/* One call of weft_harness_run: the options with defaults filled in. */
typedef struct weft__harness {
    const weft_harness_scenario *sc;
    weft_harness_opts o;
    weft_harness_report *rep;
    FILE *log;
    uint64_t t0;
    uint64_t horizon;               /* steps of the uncancelled run */
    uint32_t all_awaits;            /* every task's suspensions in that run */
    bool sim_io;                    /* that run made simulated descriptors */
} weft__harness;

void weft__harness_defaults(weft__harness *h, const weft_harness_scenario *sc,
                            const weft_harness_opts *opts, weft_harness_report *rep);
/* Run r (named by its info, sim and plan) and check it; 0 or -errno. */
int weft__harness_sim_one(weft__harness *h, weft__hrun *r);
/* After a failing run: replay it recorded, minimise, print, save. */
void weft__harness_explain(weft__harness *h, const weft__hrun *r);

/* sim_harness_cli.c */
/* "sweep:SEED:K" and the like, into buf. */
void weft__harness_name(const weft__hrun *r, char *buf, size_t size);
/* The inverse; -EINVAL for a string that names no run. */
int weft__harness_parse(weft__harness *h, const char *name, weft__hrun *r);
void weft__harness_print_schedule(FILE *f, const weft__sim_event *ev, size_t n, bool all);
void weft__harness_save(weft__harness *h, const weft__hrun *r, const weft__sim_event *ev,
                        size_t n);

#endif /* WEFT_RUNTIME_SIM_HARNESS_H */
