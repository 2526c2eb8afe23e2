/*
 * runtime/sim.h - the simulator's state inside a runtime, and the hooks
 * runtime.c calls for a simulated runtime (public face: weft/sim.h).
 *
 * Who touches what: everything here belongs to the one thread that drives
 * the simulation (the caller of weft_block_on / weft_runtime_shutdown);
 * there are no other threads, except those of the blocking pool, which only
 * ever wake tasks (an inject-queue push).
 */
#ifndef WEFT_RUNTIME_SIM_H
#define WEFT_RUNTIME_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/runtime.h"
#include "weft/sim.h"
#include "weft/token.h"

struct weft__task;

typedef struct weft__sim {
    bool on;                        /* the runtime is simulated */
    uint64_t now;                   /* virtual clock: every worker's `clock` */
    uint64_t rng;                   /* splitmix64 state: every seeded choice */
    uint64_t hash;                  /* the schedule so far */
    uint64_t steps, max_steps;
    uint64_t limit;                 /* virtual time may not pass this */
    uint32_t grace_ms;
    /* PCT: priorities live in the workers (worker.h, sim_priority). */
    uint32_t pct_depth;
    uint32_t next_change;           /* index into change_at */
    uint64_t change_at[WEFT_SIM_MAX_PCT_DEPTH];
    /* The root being blocked on, and the sweep's plan to cancel it. */
    weft_join *root;
    struct weft__task *root_task;
    uint32_t root_suspensions;
    uint32_t cancel_at;             /* 0: never */
    bool cancel_issued;
    weft_token *cancel_token;       /* NULL: cancel by weft_abort */
} weft__sim;

/* runtime.c: a runtime set up as weft_runtime_new would, minus its threads. */
int weft__runtime_new_unstarted(weft_runtime **out, const weft_runtime_opts *opts);

/* weft_block_on for a simulated runtime: spawn, then simulate until the task
 * finishes (0), nothing can run (-EDEADLK) or max_steps is hit (-ELOOP). */
int weft__sim_block_on(weft_runtime *rt, const weft_task_desc *desc, weft_outcome *out);

/* Shutdown steps 1 and 2 in virtual time; afterwards the workers' rings are
 * closed, so steps 3 and 4 proceed as for threads that have stopped. */
void weft__sim_close(weft_runtime *rt);

#endif /* WEFT_RUNTIME_SIM_H */
