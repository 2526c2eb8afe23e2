/*
 * runtime/await.c - the await protocol every leaf follows (weft/task.h):
 * declaring a suspension so the runtime can withdraw it, the cooperative
 * budget, the two leaves the runtime provides itself (a yield and a wait that
 * never ends), and the ends of a frame (finished, or resumed at a point no
 * case matches).
 *
 * Invariants:
 *   1. A task has at most one leaf in flight, recorded with its hook by
 *      weft_cx_suspend on the polling thread; the await macro clears it once
 *      the await has its result, so a hook only ever sees a live leaf.
 *   2. A leaf that is about to complete spends one unit of budget
 *      (weft_cx_coop); with none left it must answer PENDING without consuming
 *      anything, and the task is requeued behind the others.
 * Delivering a cancellation at an await is runtime/cancel.c's part.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/rt.h"
#include "runtime/task.h"

void weft_cx_suspend(weft_cx *cx, void *leaf, weft_cancel_hook hook)
{
    if (!cx || !leaf || !hook)
        return;
    weft__task *t = cx->task;
    if (t->leaf != leaf)
        t->leaf_withdrawing = false;
    t->leaf = leaf;
    t->leaf_hook = hook;
}

bool weft_cx_coop(weft_cx *cx)
{
    if (!cx)
        return false;
    if (cx->budget > 0) {
        cx->budget--;
        return true;
    }
    if (!cx->yielded)           /* once per poll, however many leaves ask */
        weft__count_budget_yield(cx->worker);
    cx->yielded = true;         /* requeued after this poll (harness.c, go_idle) */
    return false;
}

bool weft_cx_is_teardown(weft_cx *cx)
{
    return cx && cx->teardown;
}

/* Yield and pending have nothing to undo: withdrawing them always succeeds. */
static weft_withdraw nothing_to_withdraw(weft_cx *cx, void *leaf)
{
    (void)cx;
    (void)leaf;
    return WEFT_WITHDRAWN;
}

/* The addresses of these mark "suspended in a yield" and "in weft_pending". */
static const char yield_marker, pending_marker;

weft_poll weft_pending(weft_cx *cx)
{
    if (!cx)
        return -EINVAL;
    weft_cx_suspend(cx, (void *)&pending_marker, nothing_to_withdraw);
    return WEFT_PENDING;
}

weft_poll weft__yield_now(weft_cx *cx)
{
    weft__task *t = cx->task;
    if (t->leaf == &yield_marker)
        return 0;   /* resumed after the yield */
    weft_cx_suspend(cx, (void *)&yield_marker, nothing_to_withdraw);
    cx->yielded = true;         /* requeued at the back after this poll (go_idle) */
    return WEFT_PENDING;
}

weft_poll weft__resume_lost(weft_frame *f, const char *file, int line)
{
    if (f->weft_resume == WEFT__RESUME_DONE)
        return -EINVAL;     /* polled again after it finished */
    fprintf(stderr, "weft: %s:%d: task resumed at line %" PRIu32 ", which is no "
            "resume point of this body (does a switch of your own span an await?)\n",
            file, line, f->weft_resume);
    abort();
}

weft_poll weft__frame_end(weft_frame *f)
{
    if (f->weft_resume == WEFT__RESUME_DONE)
        return -EINVAL;     /* polled again after it finished */
    f->weft_resume = WEFT__RESUME_DONE;
    return 0;
}
