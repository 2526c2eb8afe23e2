/*
 * weft/select.h - wait for the first of several leaf futures; withdraw the rest.
 *
 * The branches are leaf expressions (a recv, a sleep, a token's cancelled(), a
 * join, a nested state machine) returned by a function you write:
 *
 *     static weft_poll conn_branch(weft_cx *cx, void *frame, unsigned i)
 *     {
 *         struct conn *c = frame;
 *         switch (i) {
 *         case 0: return weft_recv(cx, &c->io, c->fd, c->buf, sizeof c->buf, 0);
 *         case 1: return weft_token_cancelled(cx, c->stop, &c->stop_wait);
 *         default: return weft_sleep_for(cx, &c->nap, 5000000000ull);
 *         }
 *     }
 *     ...
 *     WEFT_SELECT_AWAIT(&c->f, c->rc, &c->sel, 3, conn_branch, c);
 *     switch (weft_select_winner(&c->sel)) { ... }
 *
 * WEFT_SELECT_AWAIT is WEFT_AWAIT of weft_select after weft_select_reset:
 * an await whose cancellation check fires never reaches weft_select, and an
 * unreset selector would still describe the previous round.
 *
 * Every branch's leaf state (the weft_io, weft_sleep, ...) lives in the frame,
 * as for a plain await. Branches are polled in order, so an earlier branch
 * wins when several are ready at once ("biased").
 *
 * Cancellation contract (the "did not happen" rule):
 *  - When a branch completes, every other branch still waiting is withdrawn:
 *    a withdrawn branch did not happen. A branch that completed before its
 *    withdrawal took effect (a recv that got data, an accept that got an fd)
 *    did happen: weft_select_outcome reports it, and the caller owns what it
 *    produced. The select yields only once every loser has settled, so no
 *    kernel operation of a loser still points into the frame.
 *  - When the task itself is cancelled while selecting, every branch is
 *    withdrawn; the await yields -ECANCELED (no winner), unless a branch had
 *    completed first, which is then reported as the winner.
 *  - Timeouts and select stop the waiting, not the work: a losing join branch
 *    only stops waiting for its task; the handle stays valid.
 *  - A cancel-safe task torn down while its select is still settling the
 *    losers never reads the winner, but its drop hook can: the selector
 *    keeps every branch that happened, so the hook releases what they
 *    produced (closes an accepted fd, unlocks a mutex the select won) after
 *    asking weft_select_outcome. Or select inside a shield.
 */
#ifndef WEFT_SELECT_H
#define WEFT_SELECT_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/task.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_SELECT_MAX 8

typedef weft_poll (*weft_branch_fn)(weft_cx *cx, void *frame, unsigned index);

typedef struct weft_select_branch {
    /* private */
    void *weft_leaf;
    weft_cancel_hook weft_hook;
    int64_t weft_result;
    uint8_t weft_state;
} weft_select_branch;

/* Start zeroed (WEFT_SELECTOR_INIT); reusable once an await on it finished. */
typedef struct weft_selector {
    /* private */
    int weft_winner;
    uint32_t weft_running;
    weft_select_branch weft_branch[WEFT_SELECT_MAX];
} weft_selector;

#define WEFT_SELECTOR_INIT { -1, 0, { { 0 } } }

/* Yields the winner's result; -EINVAL for n outside 1..WEFT_SELECT_MAX. */
WEFT_EXTERN weft_poll weft_select(weft_cx *cx, weft_selector *sel, unsigned n,
                                  weft_branch_fn branch, void *frame);

/* Forget the previous round: winner -1, no branch happened. -EBUSY while an
 * await on the selector is in progress. */
WEFT_EXTERN int weft_select_reset(weft_selector *sel);

/* Await a select on a reset selector (in a task body, like WEFT_AWAIT). */
#define WEFT_SELECT_AWAIT(f, out, sel, n, branch, frame)                      \
    do {                                                                      \
        weft_select_reset(sel);                                               \
        WEFT_AWAIT(f, out, weft_select(cx, (sel), (n), (branch), (frame)));   \
    } while (0)

/* After the await: the branch whose result it yielded, or -1 (the select was
 * withdrawn, or - after weft_select_reset - a cancellation was delivered
 * before it ever ran). */
WEFT_EXTERN int weft_select_winner(const weft_selector *sel);

/* After the await: did branch i complete (true), and with what result? A
 * branch that was withdrawn, or never polled, did not happen (false). */
WEFT_EXTERN bool weft_select_outcome(const weft_selector *sel, unsigned i, int64_t *result);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SELECT_H */
