/*
 * runtime/group.c - task groups (contract in weft/group.h).
 *
 * Each child has a member record holding its join handle; the member's wake
 * hook is installed as the child's join waker, so the child's completion
 * moves the member onto the group's `done` list - completion order - and
 * wakes whoever waits on the group.
 *
 * Who touches what:
 *   1. `lock` guards `done`, `running`, `waiter`, `waiting`, `wait`,
 *      `draining` and `closed`.
 *   2. A member belongs to the group from spawn to free; its handle is
 *      consumed only once it is on `done` (its task is complete).
 *   3. `running` counts children whose member is not on `done` yet, and a
 *      spawn in flight. A member's completion (or a failed spawn) touches the
 *      group last when it decrements `running` under the lock, so once a
 *      waiter sees `running == 0` under the lock, no completion will touch
 *      the group again and it may be freed.
 *   4. The waiter's waker is taken out under the lock and woken after it,
 *      whenever `running` drops: a failed spawn wakes it as a completion
 *      does, since the waiter may have seen that spawn counted.
 *   5. `draining` is set when the waiter's cancellation reached its wait (the
 *      children were cancelled) and cleared by the wait that set it, when it
 *      ends: it never outlives that wait, so the next wait starts clean.
 *      While it is set the wait ends only when `running` is 0.
 *   6. `waiting` is who waits on the group: the waiting task, from the poll
 *      that suspends until its wait ends (a poll that yields, a withdrawal
 *      that answers WITHDRAWN, any answer at a tear-down), or the group
 *      itself while weft_group_free waits for the children. `waiter` is only
 *      that wait's wake-up, which a completion takes. A second wait and a
 *      free find `waiting` set and get -EBUSY: taking over `waiter` would
 *      leave the first waiter never woken, and freeing would free the group
 *      under it (it still has to poll once more, even with `running` at 0).
 */
#include <errno.h>
#include <pthread.h>

#include "runtime/alloc.h"
#include "runtime/join.h"
#include "runtime/spinlock.h"
#include "runtime/task.h"
#include "runtime/token.h"
#include "runtime/waker.h"
#include "runtime/worker.h"
#include "weft/group.h"

typedef struct weft__member {
    weft__wake_hook hook;           /* first: the waker points here */
    struct weft__member *next;
    struct weft_group *group;
    weft_join handle;
} weft__member;

struct weft_group {
    weft_runtime *rt;
    weft_token *token;
    weft__spinlock lock;
    weft__member *done_head, *done_tail;
    size_t running;
    weft_waker waiter;
    const void *waiting;            /* rule 6 */
    uint8_t wait;                   /* what the waiter waits for: enum wait */
    bool draining;                  /* rule 5 */
    bool closed;
};

/* What a wait needs before it can end (rule 5 aside). */
enum wait { WAIT_NEXT, WAIT_ALL, WAIT_SHUTDOWN };

/* Under the lock: a child no longer runs (rule 3). Returns the waiter's
 * waker, which the caller wakes after unlocking (rule 4). */
static weft_waker child_gone_locked(weft_group *g)
{
    weft_waker waiter = g->waiter;
    g->waiter = (weft_waker){ 0 };
    g->running--;
    return waiter;
}

static void member_done(weft__wake_hook *hook)
{
    weft__member *m = (weft__member *)hook;
    weft_group *g = m->group;
    weft__spin_lock(&g->lock);
    m->next = NULL;
    if (g->done_tail)
        g->done_tail->next = m;
    else
        g->done_head = m;
    g->done_tail = m;
    weft_waker waiter = child_gone_locked(g);   /* rule 3: our last touch */
    weft__spin_unlock(&g->lock);
    weft_waker_wake(&waiter);
}

/* A spawn counted in `running` failed: uncount it as a completion would. */
static void spawn_failed(weft_group *g)
{
    weft__spin_lock(&g->lock);
    weft_waker waiter = child_gone_locked(g);
    weft__spin_unlock(&g->lock);
    weft_waker_wake(&waiter);
}

int weft_group_new(weft_runtime *rt, weft_token *parent, weft_group **out)
{
    if (!rt || !out)
        return -EINVAL;
    weft_group *g = weft__calloc(sizeof *g);
    if (!g)
        return -ENOMEM;
    int rc = parent ? weft_token_child(parent, &g->token) : weft_token_new(&g->token);
    if (rc) {
        weft__free(g, sizeof *g);
        return rc;
    }
    weft__token_set_source(g->token, WEFT_CANCEL_GROUP);
    weft__spin_init(&g->lock);
    g->rt = rt;
    *out = g;
    return 0;
}

int weft_group_spawn(weft_group *g, const weft_task_desc *desc)
{
    /* The tokens are copied before weft_spawn validates the desc. */
    if (!g || !desc || desc->ntokens >= WEFT_MAX_TASK_TOKENS
        || (desc->ntokens && !desc->tokens))
        return -EINVAL;
    weft_token *tokens[WEFT_MAX_TASK_TOKENS];
    for (unsigned i = 0; i < desc->ntokens; i++)
        tokens[i] = desc->tokens[i];
    tokens[desc->ntokens] = g->token;
    weft_task_desc d = *desc;
    d.tokens = tokens;
    d.ntokens = desc->ntokens + 1;

    weft__member *m = weft__calloc(sizeof *m);
    if (!m)
        return -ENOMEM;
    m->hook.on_wake = member_done;
    m->group = g;
    weft__spin_lock(&g->lock);
    bool closed = g->closed;
    g->running += !closed;          /* before the child can complete */
    weft__spin_unlock(&g->lock);
    int rc = closed ? -ESHUTDOWN : weft_spawn(g->rt, &d, &m->handle);
    if (rc) {
        weft__free(m, sizeof *m);
        if (!closed)
            spawn_failed(g);
        return rc;
    }
    if (!weft__join_install_waker(&m->handle, weft__waker_for_hook(&m->hook)))
        member_done(&m->hook);      /* it finished before we could listen */
    return 0;
}

int weft_group_cancel(weft_group *g)
{
    return g ? weft_token_cancel(g->token) : -EINVAL;
}

size_t weft_group_len(weft_group *g)
{
    if (!g)
        return 0;
    weft__spin_lock(&g->lock);
    size_t n = g->running;
    for (weft__member *m = g->done_head; m; m = m->next)
        n++;
    weft__spin_unlock(&g->lock);
    return n;
}

/* ---- waiting ------------------------------------------------------------------- */

/* Lock g unless another task waits on it or a thread frees it (rule 6);
 * false, unlocked, then. */
static bool lock_unless_busy(weft_group *g, weft_cx *cx)
{
    weft__spin_lock(&g->lock);
    if (!g->waiting || g->waiting == cx->task)
        return true;
    weft__spin_unlock(&g->lock);
    return false;
}

/* Under the lock: make cx's task the waiter (one waiter at a time). */
static void set_waiter(weft_group *g, weft_cx *cx)
{
    if (weft_waker_will_wake(&g->waiter, cx))
        return;
    weft_waker_drop(&g->waiter);
    g->waiter = weft_cx_waker(cx);
}

/* Under the lock: could the current wait end now? */
static bool wait_satisfied(const weft_group *g)
{
    if (g->running == 0)
        return true;
    return !g->draining && g->wait == WAIT_NEXT && g->done_head;
}

/* Under the lock: the waiter's cancellation reached the group. Returns true
 * the first time, when the caller must cancel the children (after unlocking). */
static bool start_draining_locked(weft_group *g)
{
    bool first = !g->draining;
    g->draining = true;
    return first;
}

/*
 * The waiting task's cancellation reached its wait. A wait that could end
 * already did happen (RACED: the next poll reports it, as for any leaf that
 * completed before its withdrawal). Otherwise no child may outlive the wait:
 * cancel them all and keep waiting (PENDING) until the last has finished.
 * The hook is asked again when a torn-down task is woken, without a poll in
 * between, so it re-arms the waker each time it answers PENDING - except in
 * the shutdown sweep (a tear-down with no worker), which drops the frame
 * whatever the answer: the wait ends there (rules 5 and 6), and the sweep
 * tears the children down itself.
 */
static weft_withdraw group_withdraw(weft_cx *cx, void *leaf)
{
    weft_group *g = leaf;
    weft__spin_lock(&g->lock);
    if (g->waiting != cx->task) {       /* asked again after the wait ended */
        weft__spin_unlock(&g->lock);
        return WEFT_WITHDRAWN;
    }
    if (wait_satisfied(g)) {
        bool cancelled = g->draining && g->wait != WAIT_SHUTDOWN;
        g->draining = false;            /* rule 5: this wait is over */
        weft_waker_drop(&g->waiter);
        if (cancelled || weft_cx_is_teardown(cx))
            g->waiting = NULL;          /* rule 6: no poll will end it */
        weft__spin_unlock(&g->lock);
        return cancelled ? WEFT_WITHDRAWN : WEFT_WITHDRAW_RACED;
    }
    bool first = start_draining_locked(g);
    bool swept = weft_cx_is_teardown(cx) && !cx->worker;
    if (swept) {
        g->draining = false;
        g->waiting = NULL;
    } else {
        set_waiter(g, cx);
    }
    weft__spin_unlock(&g->lock);
    if (first)
        weft_token_cancel(g->token);
    return swept ? WEFT_WITHDRAWN : WEFT_WITHDRAW_PENDING;  /* a completion wakes it */
}

/* Under the lock, with the wait unsatisfied: suspend until a child completes. */
static weft_poll suspend_locked(weft_group *g, weft_cx *cx, enum wait wait)
{
    g->wait = (uint8_t)wait;
    g->waiting = cx->task;
    set_waiter(g, cx);
    weft__spin_unlock(&g->lock);
    weft_cx_suspend(cx, g, group_withdraw);
    return WEFT_PENDING;
}

/* Under the lock, running == 0: end a wait; -ECANCELED if it drained. */
static weft_poll end_wait_locked(weft_group *g, enum wait wait)
{
    bool cancelled = g->draining && wait != WAIT_SHUTDOWN;
    g->draining = false;
    g->waiting = NULL;              /* rule 6: the wait ends here */
    weft__spin_unlock(&g->lock);
    return cancelled ? -ECANCELED : 0;
}

weft_poll weft_group_join_next(weft_cx *cx, weft_group *g, weft_outcome *out)
{
    if (!cx || !g || !out)
        return -EINVAL;
    if (!lock_unless_busy(g, cx))
        return -EBUSY;
    if (g->draining || !g->done_head) {
        if (g->running > 0)
            return suspend_locked(g, cx, WAIT_NEXT);
        return end_wait_locked(g, WAIT_NEXT);
    }
    if (!weft_cx_coop(cx)) {
        weft__spin_unlock(&g->lock);
        return WEFT_PENDING;
    }
    weft__member *m = g->done_head;
    g->done_head = m->next;
    if (!g->done_head)
        g->done_tail = NULL;
    g->waiting = NULL;              /* rule 6: the wait ends here */
    weft__spin_unlock(&g->lock);
    weft__join_consume(&m->handle, out);
    weft__free(m, sizeof *m);
    return 1;
}

/* Wait until no child runs; a shutdown closes the group first. owner_cancelled:
 * the awaiting task's request is held only by the implicit shield of a
 * scoped wait (weft/group.h), so it drains the group as an unshielded wait's
 * withdrawal would. */
static weft_poll wait_all(weft_cx *cx, weft_group *g, enum wait wait, bool owner_cancelled)
{
    if (!lock_unless_busy(g, cx))
        return -EBUSY;
    bool cancel = owner_cancelled && start_draining_locked(g) && g->running > 0;
    if (wait == WAIT_SHUTDOWN && !g->closed) {
        g->closed = true;           /* the first shutdown closes and cancels */
        cancel = true;
    }
    if (cancel) {
        g->waiting = cx->task;      /* rule 6: ours while the lock is let go */
        weft__spin_unlock(&g->lock);
        weft_token_cancel(g->token);
        weft__spin_lock(&g->lock);
    }
    if (g->running > 0)
        return suspend_locked(g, cx, wait);
    return end_wait_locked(g, wait);
}

weft_poll weft_group_join_all(weft_cx *cx, weft_group *g)
{
    if (!cx || !g)
        return -EINVAL;
    return wait_all(cx, g, WAIT_ALL, false);
}

weft_poll weft__group_join_all_scoped(weft_cx *cx, weft_group *g)
{
    if (!cx || !g)
        return -EINVAL;
    /* Depth 1 is the macro's own shield: an outer shield of the user's
     * still holds the request, and then the children are not cancelled. */
    bool owner_cancelled = weft_cx_cancel_requested(cx) && cx->task->shield_depth == 1;
    return wait_all(cx, g, WAIT_ALL, owner_cancelled);
}

weft_poll (weft_group_shutdown)(weft_cx *cx, weft_group *g)
{
    if (!cx || !g)
        return -EINVAL;
    return wait_all(cx, g, WAIT_SHUTDOWN, false);
}

/* ---- freeing ------------------------------------------------------------------- */

/* Under the lock: may the calling thread free g? 0: at once; 1: once the
 * children have finished, which the caller waits for as the group's waiter
 * (rule 6); -EBUSY: a task waits on g, or the caller is a worker, which must
 * not block. */
static int claim_for_free_locked(weft_group *g)
{
    if (g->waiting)
        return -EBUSY;
    if (g->running == 0)
        return 0;
    if (weft__current_worker)
        return -EBUSY;
    g->waiting = g;
    return 1;
}

/* Cancel the children and block until none runs (rule 3). */
static void wait_from_thread(weft_group *g)
{
    weft_token_cancel(g->token);
    for (;;) {
        weft__thread_waiter tw;
        weft__spin_lock(&g->lock);
        if (g->running == 0) {
            weft__spin_unlock(&g->lock);
            return;
        }
        weft_waker_drop(&g->waiter);
        g->waiter = weft__waker_for_thread(&tw);
        weft__spin_unlock(&g->lock);
        weft__thread_waiter_wait(&tw, 0);
    }
}

int weft_group_free(weft_group *g)
{
    if (!g)
        return -EINVAL;
    weft__spin_lock(&g->lock);
    int rc = claim_for_free_locked(g);
    weft__spin_unlock(&g->lock);
    if (rc < 0)
        return rc;
    if (rc > 0)
        wait_from_thread(g);
    for (weft__member *m = g->done_head, *next; m; m = next) {
        next = m->next;
        weft_outcome unread;
        weft__join_consume(&m->handle, &unread);
        weft__free(m, sizeof *m);
    }
    weft_waker_drop(&g->waiter);
    weft_token_release(g->token);
    weft__free(g, sizeof *g);
    return 0;
}
