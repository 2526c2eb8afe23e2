/*
 * weft/group.h - task groups: structured concurrency. A group owns the tasks
 * spawned into it; its owner joins them as they finish, can cancel them all,
 * and cannot leave them behind.
 *
 * Rules:
 *  - Every task spawned into a group is bound to the group's token (a child of
 *    the parent token given at creation, if any). weft_group_cancel cancels
 *    that token: each child sees a request with source WEFT_CANCEL_GROUP,
 *    delivered like any other (cooperative at its next await, forced only for
 *    a cancel-safe child). A task spawned into a cancelled group starts
 *    cancelled.
 *  - weft_group_join_next yields children's outcomes in completion order.
 *  - If the task suspended in join_next / join_all / shutdown is cancelled,
 *    the group cancels its children and the await finishes only once every
 *    child has finished: no child outlives the wait. join_next and join_all
 *    then yield -ECANCELED (the outcomes stay for a later join_next),
 *    shutdown yields 0. A wait that could already end when the request came
 *    (join_next with an outcome ready, no child running) did happen: it
 *    yields its real result, as any leaf that completed before its
 *    withdrawal (docs/cancellation.md).
 *  - Every await is a cancellation point (weft/task.h), so a plain WEFT_AWAIT
 *    on join_next or join_all by a task that is already cancelled yields
 *    -ECANCELED without touching the group. The wait for the children is the
 *    one await a cancelled owner must still make: weft_group_shutdown is a
 *    release operation (made even then), and WEFT_GROUP_AWAIT_ALL below is
 *    join_all made the same way. The request stays pending and is delivered
 *    at the first await after it.
 *  - weft_group_shutdown cancels the children, waits for all of them and
 *    closes the group (spawning into it fails with -ESHUTDOWN).
 *  - weft_group_free on a group with running children cancels them and, from
 *    a plain thread, blocks until they finish; on a worker thread it refuses
 *    with -EBUSY (await WEFT_GROUP_AWAIT_SHUTDOWN first).
 *  - One task (or thread) at a time may wait on a group. A task waits from
 *    its suspension in join_next, join_all or shutdown until that await
 *    yields; meanwhile another task's wait yields -EBUSY and weft_group_free
 *    returns -EBUSY (the waiter still has to poll the group once more, even
 *    after its last child finished), both changing nothing. While a thread
 *    frees the group, a task's wait on it yields -EBUSY.
 */
#ifndef WEFT_GROUP_H
#define WEFT_GROUP_H

#include <stddef.h>

#include "weft/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_group weft_group;

/* parent may be NULL; cancelling it cancels the group. */
WEFT_EXTERN int weft_group_new(weft_runtime *rt, weft_token *parent, weft_group **out);
WEFT_EXTERN int weft_group_free(weft_group *g);

/* desc may bind at most WEFT_MAX_TASK_TOKENS - 1 tokens of its own. */
WEFT_EXTERN int weft_group_spawn(weft_group *g, const weft_task_desc *desc);

/* Yields 1 with *out set to the next finished child's outcome, or 0 when the
 * group has no children left (all joined). */
WEFT_EXTERN weft_poll weft_group_join_next(weft_cx *cx, weft_group *g, weft_outcome *out);

/* Wait until every child has finished (their outcomes stay available to
 * join_next). Yields 0. */
WEFT_EXTERN weft_poll weft_group_join_all(weft_cx *cx, weft_group *g);

/* Cancel every child (source WEFT_CANCEL_GROUP). 0, or 1 if already done. */
WEFT_EXTERN int weft_group_cancel(weft_group *g);

/* Cancel, wait for every child, close. Yields 0, even if the awaiting task is
 * cancelled meanwhile (the wait is what makes the group structured). A
 * release operation (weft/task.h): a task cancelled before it still makes the
 * wait, so a plain WEFT_AWAIT is enough; WEFT_GROUP_AWAIT_SHUTDOWN is the
 * same. Call (weft_group_shutdown)(...) for the plain weft_poll. */
WEFT_EXTERN weft_poll weft_group_shutdown(weft_cx *cx, weft_group *g);
#define weft_group_shutdown(cx, g) WEFT_RELEASE(weft_group_shutdown(cx, g))

/* Children spawned and not yet joined (running or finished). */
WEFT_EXTERN size_t weft_group_len(weft_group *g);

/*
 * The structured end of a group, awaited even by a task that is already
 * cancelled (each is one await, in its own shield region; in a task body,
 * with the frame f, like WEFT_AWAIT):
 *
 *   WEFT_GROUP_AWAIT_SHUTDOWN(f, out, g)  weft_group_shutdown: cancel, wait
 *                                         for every child, close; out = 0.
 *   WEFT_GROUP_AWAIT_ALL(f, out, g)       join_all; if the task's request is
 *                                         pending (held by no shield but this
 *                                         one), the children are cancelled
 *                                         first and out = -ECANCELED, else 0.
 *
 * A cancel-safe task is not torn down inside them; its request takes effect
 * at the first await after them, like any request a shield held.
 */
#define WEFT_GROUP_AWAIT_SHUTDOWN(f, out, g)                                  \
    WEFT_AWAIT_SHIELDED(f, out, weft_group_shutdown(cx, (g)))
#define WEFT_GROUP_AWAIT_ALL(f, out, g)                                       \
    WEFT_AWAIT_SHIELDED(f, out, weft__group_join_all_scoped(cx, (g)))

/* Not API: the wait behind WEFT_GROUP_AWAIT_ALL. */
WEFT_EXTERN weft_poll weft__group_join_all_scoped(weft_cx *cx, weft_group *g);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_GROUP_H */
