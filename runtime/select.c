/*
 * runtime/select.c - weft_select: a compound leaf over up to WEFT_SELECT_MAX
 * branches (contract in weft/select.h).
 *
 * A task has one leaf slot (the leaf it is suspended on, with its cancel
 * hook). While the select polls a branch it lends that slot to the branch -
 * the branch's leaf and hook swap in, the poll runs, and whatever the branch
 * registered swaps back out into the branch - so each branch keeps its own
 * leaf and hook, nested awaits inside a branch see their own leaf, and the
 * task's slot holds the select itself.
 *
 * Branch states:
 *   IDLE         not polled yet (in this select)
 *   WAITING      polled, suspended on its leaf
 *   WITHDRAWING  its hook answered PENDING: poll it when woken
 *   RACED        its hook answered RACED: poll it once more for the result
 *   DONE         completed: it happened, weft_select_outcome reports it
 *   GONE         withdrawn, or never polled: it did not happen
 * Invariants:
 *   1. Once a branch is DONE (or the task's cancellation withdrew the select)
 *      the select is closing: no IDLE branch is ever polled again, and every
 *      WAITING branch is withdrawn.
 *   2. The select yields only when no branch is WAITING, WITHDRAWING or RACED,
 *      so no loser's operation still points into the frame.
 *   3. The winner is the lowest-indexed DONE branch.
 */
#include <errno.h>

#include "runtime/task.h"
#include "weft/select.h"

enum { B_IDLE, B_WAITING, B_WITHDRAWING, B_RACED, B_DONE, B_GONE };
enum { SEL_IDLE, SEL_RACING, SEL_CLOSING };

static weft_poll poll_branch(weft_cx *cx, weft_select_branch *b, weft_branch_fn fn,
                             void *frame, unsigned i)
{
    weft__task *t = cx->task;
    void *leaf = t->leaf;
    weft_cancel_hook hook = t->leaf_hook;
    bool withdrawing = t->leaf_withdrawing;
    t->leaf = b->weft_leaf;
    t->leaf_hook = b->weft_hook;
    t->leaf_withdrawing = b->weft_state == B_WITHDRAWING;
    weft_poll r = fn(cx, frame, i);
    b->weft_leaf = t->leaf;
    b->weft_hook = t->leaf_hook;
    t->leaf = leaf;
    t->leaf_hook = hook;
    t->leaf_withdrawing = withdrawing;
    return r;
}

static void record(weft_selector *sel, weft_select_branch *b, unsigned i, weft_poll r)
{
    if (b->weft_state == B_WITHDRAWING && r == -ECANCELED) {
        b->weft_state = B_GONE;     /* the withdrawal took: it did not happen */
        return;
    }
    b->weft_state = B_DONE;
    b->weft_result = r;
    if (sel->weft_winner < 0 || (unsigned)sel->weft_winner > i)
        sel->weft_winner = (int)i;
    sel->weft_running = SEL_CLOSING;
}

/* Withdraw a branch that is waiting (or ask a withdrawing one again: hooks
 * may be asked twice, and a tear-down needs the second ask to release what
 * the branch produced). */
static void withdraw_branch(weft_cx *cx, weft_select_branch *b)
{
    if (b->weft_state != B_WAITING && b->weft_state != B_WITHDRAWING)
        return;
    if (!b->weft_leaf) {
        b->weft_state = B_GONE;     /* it never suspended on anything */
        return;
    }
    switch (b->weft_hook(cx, b->weft_leaf)) {
    case WEFT_WITHDRAWN:
        b->weft_state = B_GONE;
        break;
    case WEFT_WITHDRAW_RACED:
        b->weft_state = B_RACED;
        break;
    case WEFT_WITHDRAW_PENDING:
        b->weft_state = B_WITHDRAWING;
        break;
    }
}

static bool unsettled(const weft_select_branch *b)
{
    return b->weft_state == B_WAITING || b->weft_state == B_WITHDRAWING
        || b->weft_state == B_RACED;
}

/* The task's cancellation reached the select (invariant 1). */
static weft_withdraw select_withdraw(weft_cx *cx, void *leaf)
{
    weft_selector *sel = leaf;
    bool withdrawing = false, raced = false;
    sel->weft_running = SEL_CLOSING;
    for (unsigned i = 0; i < WEFT_SELECT_MAX; i++) {
        weft_select_branch *b = &sel->weft_branch[i];
        if (b->weft_state == B_IDLE)
            b->weft_state = B_GONE;
        withdraw_branch(cx, b);
        withdrawing |= b->weft_state == B_WITHDRAWING;
        raced |= b->weft_state == B_RACED;
    }
    if (withdrawing)
        return WEFT_WITHDRAW_PENDING;
    if (raced || sel->weft_winner >= 0)
        return WEFT_WITHDRAW_RACED;     /* the next poll reports what happened */
    sel->weft_running = SEL_IDLE;
    return WEFT_WITHDRAWN;
}

static void poll_open_branches(weft_cx *cx, weft_selector *sel, unsigned n, weft_branch_fn fn,
                               void *frame)
{
    for (unsigned i = 0; i < n; i++) {
        weft_select_branch *b = &sel->weft_branch[i];
        bool closing = sel->weft_running == SEL_CLOSING;
        if (b->weft_state == B_DONE || b->weft_state == B_GONE)
            continue;
        if (b->weft_state == B_IDLE && closing) {
            b->weft_state = B_GONE;     /* never polled: it did not happen */
            continue;
        }
        if (b->weft_state == B_WAITING && closing)
            continue;                   /* withdrawn by the caller */
        weft_poll r = poll_branch(cx, b, fn, frame, i);
        if (r != WEFT_PENDING)
            record(sel, b, i, r);
        else if (b->weft_state != B_WITHDRAWING)
            b->weft_state = B_WAITING;
    }
}

weft_poll weft_select(weft_cx *cx, weft_selector *sel, unsigned n, weft_branch_fn fn, void *frame)
{
    if (!cx || !sel || !fn || n == 0 || n > WEFT_SELECT_MAX)
        return -EINVAL;
    if (sel->weft_running == SEL_IDLE) {
        for (unsigned i = 0; i < WEFT_SELECT_MAX; i++)
            sel->weft_branch[i] = (weft_select_branch){ 0 };
        sel->weft_winner = -1;
        sel->weft_running = SEL_RACING;
    }
    poll_open_branches(cx, sel, n, fn, frame);
    bool pending = false;
    for (unsigned i = 0; i < n; i++) {
        weft_select_branch *b = &sel->weft_branch[i];
        if (sel->weft_running == SEL_CLOSING) {
            withdraw_branch(cx, b);
            if (b->weft_state == B_RACED) {
                weft_poll r = poll_branch(cx, b, fn, frame, i);
                if (r != WEFT_PENDING)
                    record(sel, b, i, r);
            }
        }
        pending |= unsettled(b);
    }
    if (pending) {
        weft_cx_suspend(cx, sel, select_withdraw);
        return WEFT_PENDING;
    }
    sel->weft_running = SEL_IDLE;       /* invariant 2: everything settled */
    return sel->weft_winner >= 0 ? sel->weft_branch[sel->weft_winner].weft_result : -ECANCELED;
}

int weft_select_reset(weft_selector *sel)
{
    if (!sel)
        return -EINVAL;
    if (sel->weft_running != SEL_IDLE)
        return -EBUSY;
    *sel = (weft_selector)WEFT_SELECTOR_INIT;
    return 0;
}

int weft_select_winner(const weft_selector *sel)
{
    if (!sel || sel->weft_winner < 0 || sel->weft_winner >= WEFT_SELECT_MAX
        || sel->weft_branch[sel->weft_winner].weft_state != B_DONE)
        return -1;
    return sel->weft_winner;
}

bool weft_select_outcome(const weft_selector *sel, unsigned i, int64_t *result)
{
    if (!sel || i >= WEFT_SELECT_MAX || sel->weft_branch[i].weft_state != B_DONE)
        return false;
    if (result)
        *result = sel->weft_branch[i].weft_result;
    return true;
}
