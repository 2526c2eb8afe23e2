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

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft/runtime.h"
#include "weft/sim.h"
#include "weft/token.h"

struct weft__task;
struct weft_worker;

/* One decision of a run, as the trace records it and a script forces it:
 * `choice` indexes the candidates of that step (the ready workers in worker
 * order, or under PCT the pooled tasks in arrival order then the clock). */
typedef struct weft__sim_decision {
    uint32_t choice;
    bool jump;                      /* uniform only: time jumped first */
    bool cancel;                    /* cancel the task polled if it suspends */
} weft__sim_decision;

/* One line of the readable schedule (weft/harness.h prints it). */
typedef struct weft__sim_event {
    uint64_t step, now;
    uint32_t worker;                /* UINT32_MAX: a clock step */
    uint32_t from_line, to_line;    /* resume points before and after */
    weft__sim_decision d;
    bool decision;                  /* a step (a poll or PCT's clock) */
    bool polled, finished, cancelled;
    char name[24];
} weft__sim_event;

/* A task the PCT pool holds with its notified reference (sim_pct.c). */
typedef struct weft__sim_slot {
    struct weft__task *task;
    uint32_t worker;                /* the worker whose queue it came from */
} weft__sim_slot;

/* An operation on a simulated descriptor (sim_io.c), waiting for the step
 * that completes it. */
typedef struct weft__sim_iop {
    struct weft__op *op;
    void *file;                     /* what its descriptor named, held */
    uint32_t worker;                /* the owner: the ring it was started on */
    uint64_t prio;                  /* PCT's */
} weft__sim_iop;

/* weft__sim_event.worker of a step that completed an operation. */
#define WEFT__SIM_IO_STEP (UINT32_MAX - 1)

/* Task priorities by address; an entry goes when its task completes. */
typedef struct weft__sim_prio {
    struct weft__task *task;
    uint64_t prio;
} weft__sim_prio;

typedef struct weft__sim {
    bool on;                        /* the runtime is simulated */
    uint64_t now;                   /* virtual clock: every worker's `clock` */
    uint64_t rng;                   /* splitmix64 state: every seeded choice */
    uint64_t hash;                  /* the schedule so far */
    uint64_t steps, max_steps;
    uint64_t limit;                 /* virtual time may not pass this */
    uint32_t grace_ms;
    /* PCT, over tasks (runtime/sim_pct.c). */
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
    /* weft/harness.h's extensions (all off for weft_sim_run). */
    bool cancel_any;                /* cancel_at counts every task's suspensions */
    bool quiesce;                   /* after the root: run until nothing can */
    bool quiesce_armed;             /* the root is done: the budget applies */
    uint64_t quiesce_steps;         /* polls allowed after the root; 0 = any */
    uint32_t cancel_one_in;         /* random cancels: 1 in n suspensions */
    uint32_t suspensions;           /* of every task */
    uint32_t cancels;               /* cancellations issued */
    /* Task-level PCT (sim_pct.c): the pool of runnable tasks, priorities. */
    weft__sim_slot *pool;
    uint32_t npool, pool_cap;
    weft__sim_prio *prio;           /* open addressing, linear probing */
    uint32_t nprio, prio_cap;
    uint64_t clock_prio;
    bool clock_last;                /* the previous step was the clock's */
    /* The decision list: recorded, and forced by a script (sim_trace.c). */
    weft__sim_event *trace;
    size_t ntrace, trace_cap;
    bool record;
    const weft__sim_decision *script;
    size_t script_len;
    int error;                      /* -ENOMEM: the pool could not grow */
    bool trace_lost;                /* the list could not grow: it stops */
    bool quiesce_cut;               /* max_steps ended the wait for quiescence */
    /* Simulated I/O (sim_io.c): operations in submission order. */
    weft__sim_iop *io;
    uint32_t nio, io_cap;
    uint64_t io_salt;               /* from the seed: a completion's own coin */
    uint64_t io_done;               /* completions so far */
} weft__sim;

/* Options the harness sets on a simulated runtime before it runs. */
typedef struct weft__sim_plan {
    uint32_t cancel_at;             /* k-th suspension (0: none) */
    bool cancel_any;
    bool quiesce;
    uint64_t quiesce_steps;         /* 0: up to max_steps */
    uint32_t cancel_one_in;
    bool record;
    const weft__sim_decision *script;
    size_t script_len;
} weft__sim_plan;

/* sim.c: a whole run under a plan. `start` (may be NULL) is called with
 * the new runtime before the root is spawned (a non-zero result ends the
 * run with it); `inspect` with the runtime once the root is done, before
 * it is shut down. Both get `arg`. */
typedef int (*weft__sim_start_fn)(void *arg, weft_runtime *rt);
typedef void (*weft__sim_inspect_fn)(void *arg, weft_runtime *rt, int rc,
                                     const weft_outcome *out);
int weft__sim_run_plan(const weft_sim_opts *opts, const weft__sim_plan *plan,
                       const weft_task_desc *root, weft_outcome *out,
                       weft__sim_start_fn start, weft__sim_inspect_fn inspect, void *arg);

/* sim_pct.c: task-level PCT. */
uint64_t weft__sim_next(weft__sim *s);
void weft__sim_pct_collect(weft_runtime *rt);
int weft__sim_pct_choose(weft_runtime *rt, bool *clock, int32_t *io);
void weft__sim_pct_io_ran(weft_runtime *rt);
struct weft__task *weft__sim_pct_take(weft_runtime *rt, uint32_t idx, uint32_t *worker);
void weft__sim_pct_ran(weft_runtime *rt, struct weft__task *t, bool complete);
void weft__sim_pct_clock_ran(weft_runtime *rt);
void weft__sim_pct_requeue(weft_runtime *rt);
void weft__sim_pct_free(weft__sim *s);

/* sim_trace.c: the decision list. */
void weft__sim_trace_add(weft__sim *s, const weft__sim_event *e);
bool weft__sim_scripted(const weft__sim *s, weft__sim_decision *d);
void weft__sim_trace_free(weft__sim *s);

/* sim_io.c: simulated descriptors. The candidates of a step are the ready
 * workers (PCT: the pooled tasks, then the clock), then the ready
 * operations in submission order. */
struct weft__driver;
/* reactor/op.c, at the start of an operation: true when the simulator took
 * it (a simulated driver and a simulated descriptor). */
bool weft__sim_io_submit(struct weft__driver *d, struct weft__op *op);
uint32_t weft__sim_io_nready(weft_runtime *rt);
/* The ready operation of highest priority (its rank among the ready), or
 * -1; *prio receives its priority. */
int weft__sim_io_pct_best(weft_runtime *rt, uint64_t *prio);
/* Complete the nth ready operation; fills ev's worker and name. */
int32_t weft__sim_io_run(weft_runtime *rt, uint32_t nth, weft__sim_event *ev);
/* Operations worker `worker` started that are still pending. */
uint32_t weft__sim_io_live(const weft_runtime *rt, uint32_t worker);
/* Shutdown: complete every operation left, withdrawn (close happens). */
void weft__sim_io_drain(weft_runtime *rt);
void weft__sim_io_free(weft__sim *s);
/* The harness, after each run: close every simulated descriptor left. */
int weft__sim_io_close_all(void);
/* Simulated descriptors ever made in this process. */
uint64_t weft__sim_io_created(void);

/* Threaded harness runs (sim_harness.c): the task that makes the at-th
 * suspension of all tasks but `skip` gets an abort request, right after
 * that poll. runtime/harness.c calls in when a runtime has a plan. */
typedef struct weft__cancel_plan {
    _Atomic uint32_t suspensions;
    _Atomic uint32_t cancels;
    uint32_t at;                    /* 0: never */
    struct weft__task *_Atomic skip;    /* the harness's own task */
} weft__cancel_plan;
void weft__cancel_plan_suspended(weft__cancel_plan *p, struct weft__task *t);

/* runtime.c: a runtime set up as weft_runtime_new would, minus its threads. */
int weft__runtime_new_unstarted(weft_runtime **out, const weft_runtime_opts *opts);

/* weft_block_on for a simulated runtime: spawn, then simulate until the task
 * finishes (0), nothing can run (-EDEADLK) or max_steps is hit (-ELOOP). */
int weft__sim_block_on(weft_runtime *rt, const weft_task_desc *desc, weft_outcome *out);

/* Shutdown steps 1 and 2 in virtual time; afterwards the workers' rings are
 * closed, so steps 3 and 4 proceed as for threads that have stopped. */
void weft__sim_close(weft_runtime *rt);

#endif /* WEFT_RUNTIME_SIM_H */
