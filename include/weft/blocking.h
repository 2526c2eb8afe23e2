/*
 * weft/blocking.h - the blocking pool: work that must not run on a worker
 * (a call io_uring cannot do asynchronously, such as getaddrinfo, or
 * CPU-heavy user code) runs on a small pool of plain threads, and a task
 * awaits it like any other leaf.
 *
 * A job is a leaf future kept in the task's frame (a weft_blocking): the first
 * poll queues fn(arg) on the pool, later polls check it, and the await yields
 * fn's int result. The pool starts threads lazily, at most
 * weft_runtime_opts.blocking_threads of them (default 64); more jobs wait in
 * FIFO order. A thread idle for 10 s exits.
 *
 * Cancellation contract ("a cancelled operation did not happen; one that
 * happened is reported"):
 *  - A job still queued when its await is withdrawn (abort, token, select
 *    loss, shutdown) is taken off the queue: fn never runs, the await yields
 *    -ECANCELED.
 *  - A job already running cannot be stopped from outside. The withdrawal
 *    asks it to stop (weft_blocking_should_stop() turns true inside fn) and
 *    waits: the await yields fn's real result, whatever it is. The task, and
 *    so its frame and everything fn was handed from it, stays alive until fn
 *    has returned, even for a cancel-safe task being torn down.
 *  - A timeout on a job is a weft_select against a weft_sleep: a queued job
 *    is withdrawn; a running one is asked to stop and waited for (the select
 *    settles its losers), and its result is reported (weft_select_outcome).
 *
 * Shutdown: the pool keeps taking jobs through the grace period. Once the
 * workers have stopped it refuses new jobs (-ESHUTDOWN), cancels queued ones
 * (-ECANCELED), asks running ones to stop, waits for them and joins its
 * threads. A fn that never returns therefore blocks weft_runtime_shutdown:
 * long jobs should poll weft_blocking_should_stop(). For the same reason a
 * fn may not shut its own runtime down: weft_runtime_shutdown and
 * weft_runtime_free called from it fail with -EDEADLK, as from a task (it
 * may ask another thread to do it, or cancel a token that thread awaits).
 */
#ifndef WEFT_BLOCKING_H
#define WEFT_BLOCKING_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/runtime.h"
#include "weft/task.h"

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo;

/* What runs on a pool thread. Any int is passed through as the result. */
typedef int (*weft_blocking_fn)(void *arg);

/* One job. Start zeroed (WEFT_BLOCKING_INIT); reusable once its await has
 * finished. All fields private. */
typedef struct weft_blocking {
    uint64_t weft_private[16];
} weft_blocking;

#define WEFT_BLOCKING_INIT { { 0 } }

/*
 * Run fn(arg) on the blocking pool and yield its result. Whatever fn reads
 * through arg must stay valid until the await finishes (keep it in the frame).
 * Yields -EINVAL for a NULL cx, job or fn; -ESHUTDOWN once the runtime has
 * stopped; -ENOMEM or -EAGAIN when the pool could not be created or could not
 * start its first thread (the runtime stays usable); -ECANCELED when it was
 * withdrawn while queued.
 */
WEFT_EXTERN weft_poll weft_blocking_run(weft_cx *cx, weft_blocking *job,
                                        weft_blocking_fn fn, void *arg);

/*
 * Inside fn: true once the job has been asked to stop (its await was
 * withdrawn, or the runtime is shutting down). fn may then return early with
 * any result it likes; the awaiting task receives it. False outside a pool
 * thread.
 */
WEFT_EXTERN bool weft_blocking_should_stop(void);

/*
 * Spawn a task that runs fn(arg) on the pool, from anywhere (a task or any
 * thread). Joining it reports fn's result as weft_outcome.value (status 0).
 * weft_abort withdraws the job: if it was still queued the value is
 * -ECANCELED, otherwise fn is asked to stop and its result is reported.
 * arg must stay valid until the task finishes. -EINVAL for a NULL rt, fn or
 * join; -ESHUTDOWN after shutdown; -ENOMEM.
 */
WEFT_EXTERN int weft_spawn_blocking(weft_runtime *rt, weft_blocking_fn fn, void *arg,
                                    weft_join *join);

/*
 * getaddrinfo(3) on the blocking pool. On success yields 0 and sets *res,
 * which the caller frees with freeaddrinfo(3). node, service and hints follow
 * getaddrinfo's rules and must stay valid until the await finishes. Errors
 * are negative errno values:
 *   EAI_NONAME, EAI_NODATA, EAI_ADDRFAMILY  -ENOENT      (no such name)
 *   EAI_AGAIN                               -EAGAIN      (try again later)
 *   EAI_FAIL                                -EIO         (resolver failed)
 *   EAI_MEMORY                              -ENOMEM
 *   EAI_FAMILY                              -EAFNOSUPPORT
 *   EAI_SOCKTYPE                            -ESOCKTNOSUPPORT
 *   EAI_SERVICE                             -EPROTONOSUPPORT
 *   EAI_BADFLAGS                            -EINVAL
 *   EAI_OVERFLOW                            -EOVERFLOW
 *   EAI_SYSTEM                              -errno of the failed call
 *   anything else                           -EIO
 * plus the errors of weft_blocking_run (-EINVAL also for a NULL res, or NULL
 * node and service). A lookup withdrawn while queued yields -ECANCELED; one
 * that ran is reported. If the task is torn down after the lookup finished,
 * its result is freed: nothing leaks.
 */
WEFT_EXTERN weft_poll weft_getaddrinfo(weft_cx *cx, weft_blocking *job, const char *node,
                                       const char *service, const struct addrinfo *hints,
                                       struct addrinfo **res);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_BLOCKING_H */
