/*
 * weft/sim.h - the deterministic simulator: run task code on simulated
 * workers, on the calling thread, in virtual time, so that a seed names one
 * schedule and replays it bit for bit.
 *
 * A simulated runtime starts no threads. Each step, a seeded choice picks one
 * worker that has something to do, and that worker makes one poll exactly as
 * its real run loop would (LIFO slot, local queue, inject queue, stealing from
 * a victim picked by its own seeded generator). When no worker has anything
 * to do, virtual time jumps to the next timer deadline and the due timers
 * fire; without PCT, a small seeded probability also makes it jump while work
 * is waiting, so a timer can fire between any two polls. A cancellation
 * requested from outside the tasks goes to the inject queue, so when it is
 * delivered is a seeded choice too. Nothing real sleeps: an hour of virtual
 * time costs what its polls cost.
 *
 * Deterministic: every scheduling decision; weft_now_ns and every sleep,
 * timeout and interval inside a task (outside the tasks weft_now_ns is the
 * real clock: use weft_sim_now); when cancellations are delivered.
 * Simulated I/O (below): every operation on a simulated descriptor, its
 * result, its length (a short transfer is a seeded choice), and when it
 * completes, which is one more choice of a step.
 * Not deterministic:
 *   - real I/O: io_uring operations on real descriptors, reaped only when
 *     no task can run, given up to 10 ms of real time before virtual time
 *     moves on (their deadlines are on virtual time);
 *   - the blocking pool: real threads, which the simulator does not wait for
 *     (a root that waits only on a blocking job may be reported as blocked);
 *   - anything a task does with threads or the real clock itself;
 *   - the provenance timestamps of weft_trace_event and weft_cancel_info
 *     (requested_ns, shield_held_ns), which stay on CLOCK_MONOTONIC.
 *
 * `schedule` is a 64-bit hash over the decisions: the worker of each step,
 * each task it polled (by its size, name and resume point, never its
 * address), each jump of virtual time. Two runs with the same seed, options
 * and program give the same hash; print it to compare runs. A resume point
 * is the await's __LINE__, which gcc and clang give differently for an await
 * written over several lines: write each await on one line for hashes that
 * also agree between compilers (the decisions, and so the replay, do not
 * depend on it).
 *
 * PCT (probabilistic concurrency testing, Burckhardt et al.) over tasks:
 * with pct_depth d > 0, workers no longer choose from their own queues.
 * Before each step every runnable task is taken out of every queue; each
 * task gets a random priority when first seen, distinct from all others,
 * and the task of highest priority runs (on the worker whose queue it came
 * from). The clock is one more contender with a priority of its own: when
 * it wins (never twice in a row) virtual time jumps to the next deadline,
 * so a timer can fire between any two polls under PCT too. At d - 1 random
 * distinct steps among the first pct_steps, whatever just ran (a task or
 * the clock) drops below everything else. Each operation on a simulated
 * descriptor (below) is a contender too, with a priority drawn when it
 * starts, from the step it can complete. The bound that holds: a bug
 * needing d ordering constraints among n contenders (the tasks of the run,
 * plus the clock when it has timers, plus its simulated operations) is found by one seed with probability
 * at least 1 / (n * pct_steps^(d-1)), provided the run takes at most
 * pct_steps steps; a pct_steps far above the run's length wastes change
 * points (weft/harness.h sets it to the length of an uncancelled run). The
 * depth is mixed into the seed: depths 2 and 3 of one seed are different
 * schedules.
 *
 * From outside the tasks, only weft_block_on (and weft_runtime_shutdown/free)
 * drive a simulated runtime, and only from the thread that created it (its
 * rings are that thread's); weft_join_wait (and _timeout) on a task that
 * has not finished returns -EDEADLK and keeps the handle, because nothing
 * else runs the workers.
 */
#ifndef WEFT_SIM_H
#define WEFT_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/runtime.h"
#include "weft/token.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_sim_opts {
    uint64_t seed;
    unsigned workers;               /* simulated workers; 0 = 2 */
    unsigned pct_depth;             /* 0: uniform choice; d: PCT, d - 1 change
                                       points (at most WEFT_SIM_MAX_PCT_DEPTH) */
    uint64_t pct_steps;             /* steps the change points fall in (set it
                                       to the run's length); 0 = 4096 */
    uint64_t start_ns;              /* virtual weft_now_ns at start; 0 = 1 s */
    uint64_t max_steps;             /* polls before giving up; 0 = 10 million */
    unsigned shutdown_grace_ms;     /* virtual grace period; 0 = 1000 */
} weft_sim_opts;

#define WEFT_SIM_MAX_PCT_DEPTH 64

/*
 * A runtime whose workers are simulated (see above). Use it like any other:
 * spawn into it, weft_block_on a root task (which runs the simulation until
 * that task finishes), weft_runtime_free it (a shutdown in virtual time).
 * weft_block_on returns -EDEADLK when every task is blocked with no timer
 * left to fire, and -ELOOP after max_steps polls.
 */
WEFT_EXTERN int weft_sim_runtime_new(weft_runtime **out, const weft_sim_opts *opts);

/* True for a runtime made by weft_sim_runtime_new. */
WEFT_EXTERN bool weft_sim_active(const weft_runtime *rt);

/* The schedule hash so far, the polls made so far and the virtual clock;
 * 0 for a runtime that is not simulated. */
WEFT_EXTERN uint64_t weft_sim_schedule(const weft_runtime *rt);
WEFT_EXTERN uint64_t weft_sim_steps(const weft_runtime *rt);
WEFT_EXTERN uint64_t weft_sim_now(const weft_runtime *rt);

/*
 * One whole simulation: a simulated runtime, root blocked on, then shut
 * down. Fills *out as weft_block_on does and *schedule (may be NULL) with the
 * hash of the whole run, shutdown included. Returns 0, -EDEADLK or -ELOOP as
 * weft_block_on, or an error from creating the runtime.
 */
WEFT_EXTERN int weft_sim_run(const weft_sim_opts *opts, const weft_task_desc *root,
                             weft_outcome *out, uint64_t *schedule);

/* ---- Simulated descriptors ------------------------------------------------- */

/*
 * Socket pairs, pipes and listeners that exist only for the simulator, so
 * that a program doing I/O replays bit for bit. Their descriptors are
 * numbers from WEFT_SIM_FD_BASE up, process-wide, which no real descriptor
 * reaches; pass them to the ordinary awaitables of weft/io.h: weft_recv,
 * weft_send, weft_read, weft_write (and what is built on them:
 * weft_send_all, weft_recv_exact, streams), weft_accept, weft_shutdown,
 * weft_close. Any other operation on one completes -EOPNOTSUPP; under a
 * runtime that is not simulated every operation on one fails -EBADF.
 *
 * An operation does nothing when it starts. It waits until it can complete
 * (bytes to read, room to write, a connection to accept, an end of stream,
 * an error, or a withdrawal), and then completing it is one more candidate
 * of the simulator's steps, like a worker with a task to poll: so a timer,
 * a cancellation or a poll of another task can come between any two
 * completions, and the order in which ready operations complete is a
 * seeded choice. At the step that completes it, it moves its bytes, at
 * most what its buffer holds; one transfer in four moves fewer, a seeded
 * count from 1 up (a short read or write).
 *
 * Cancellation: the contract of real operations holds. A withdrawal (the
 * task cancelled at the await, an I/O deadline in virtual time) is
 * answered by the completion of the operation: -ECANCELED (-ETIMEDOUT for
 * a deadline) when it did not happen, having moved nothing; when it could
 * also complete at that step, a seeded coin decides whether it happened
 * instead, and then its result is reported. weft_close is never withdrawn.
 *
 * Streams: each direction buffers `capacity` bytes (0 = 4096); a send that
 * finds no room waits. Closing (or shutting down for writing) one end ends
 * the stream it writes: the peer reads what was sent, then 0. Writing to
 * an end whose peer is closed fails -EPIPE. An operation still pending on
 * a descriptor that gets closed completes -EBADF.
 *
 * Descriptors are counted by weft_harness_open_fds (weft/harness.h) with
 * the real ones, so a leak check covers both; the harness closes any left
 * open after each run (after its check), so every run starts from the same
 * numbers. Outside the harness, close them yourself: a leaked one keeps
 * its number, and later ones get others.
 */
#define WEFT_SIM_FD_BASE 0x60000000

/* A connected pair, fds[0] and fds[1], both read and written. */
WEFT_EXTERN int weft_sim_socketpair(int fds[2], size_t capacity);
/* A pipe: fds[0] reads what fds[1] writes. */
WEFT_EXTERN int weft_sim_pipe(int fds[2], size_t capacity);
/* A listener: weft_accept on *fd completes once weft_sim_connect queued a
 * connection, with a descriptor for the server's end of it. */
WEFT_EXTERN int weft_sim_listen(int *fd);
/* Queue a connection on a simulated listener; *fd is the client's end. */
WEFT_EXTERN int weft_sim_connect(int listen_fd, int *fd, size_t capacity);
/* Close a descriptor now, without awaiting (a drop hook's close): a
 * simulated one, or a real one with close(2). 0 or -errno (-EBADF). */
WEFT_EXTERN int weft_sim_close(int fd);
/* Simulated descriptors open in this process. */
WEFT_EXTERN int weft_sim_open_fds(void);

/* ---- Cancel at each await: the sweep -------------------------------------- */

typedef enum weft_sim_cancel {
    WEFT_SIM_CANCEL_ABORT = 0,      /* weft_abort on the root's handle */
    WEFT_SIM_CANCEL_TOKEN,          /* cancel a token the root is bound to */
} weft_sim_cancel;

/*
 * After each run: run k cancels the root right after its k-th suspension
 * (counting from 1; with every_task, whichever task made the k-th
 * suspension of all tasks); cancelled is false for the last run, which
 * finished before suspending k times. rc is what weft_sim_run returned.
 * Return 0 when the invariants hold.
 */
typedef int (*weft_sim_check_fn)(void *arg, unsigned k, bool cancelled, int rc,
                                 const weft_outcome *out);

typedef struct weft_sim_sweep {
    weft_sim_opts sim;              /* every run uses these, seed included */
    weft_sim_cancel how;
    weft_sim_check_fn check;        /* required */
    void (*reset)(void *arg);       /* optional: before each run */
    void *arg;
    unsigned max_k;                 /* stop after this many runs; 0 = 10000 */
    bool every_task;                /* count and cancel every task's awaits (a
                                       task other than the root by an abort
                                       request), and check only once nothing
                                       more can run; weft/harness.h does more */
} weft_sim_sweep;

typedef struct weft_sim_sweep_result {
    unsigned runs;
    unsigned awaits;                /* suspensions of the run that was not
                                       cancelled (every_task: of all tasks) */
    unsigned failures;              /* runs whose check failed */
    unsigned first_failing_k;       /* 0: none; else the k of that run */
} weft_sim_sweep_result;

/*
 * Run root under the simulator again and again with the same seed,
 * cancelling it right after its 1st suspension, then its 2nd, and so on,
 * until a run finishes without suspending k times; call check after every
 * run. Since the seed is fixed, each run replays the one before up to its
 * cancellation point. Returns 0 (whatever the checks said: see *res) or a
 * negative errno (-EINVAL without check; errors creating a runtime or token).
 */
WEFT_EXTERN int weft_sim_sweep_cancel(const weft_sim_sweep *sweep, const weft_task_desc *root,
                                      weft_sim_sweep_result *res);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SIM_H */
