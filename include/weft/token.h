/*
 * weft/token.h - cancellation tokens: a tree of "please stop" flags.
 *
 *  - Cancelling a token cancels its whole subtree, never its parent.
 *  - A child created under a cancelled token starts cancelled.
 *  - weft_token_is_cancelled is one atomic load.
 *  - A task bound to tokens at spawn (weft_task_desc.tokens) receives a
 *    cancellation request with source WEFT_CANCEL_TOKEN when any of them is
 *    cancelled, delivered like an abort (docs/cancellation.md). Detached
 *    tasks still honour their tokens.
 *  - weft_token_cancelled is a leaf: await it to wait for the cancellation.
 *
 * Tokens are reference counted: new/child/ref give a reference, release drops
 * one. A token and its parent stay alive while a child or a bound task needs
 * them.
 */
#ifndef WEFT_TOKEN_H
#define WEFT_TOKEN_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/task.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_token weft_token;

/* A new root token. -EINVAL, -ENOMEM. */
WEFT_EXTERN int weft_token_new(weft_token **out);

/* A child of parent (cancelled at once if parent is). -EINVAL, -ENOMEM. */
WEFT_EXTERN int weft_token_child(weft_token *parent, weft_token **out);

/* Cancel t and its subtree: every bound task gets a request, every waiter is
 * woken. Returns 0, or 1 if t was already cancelled; -EINVAL for NULL. Runs
 * no user callback; safe from any thread, including inside a task. */
WEFT_EXTERN int weft_token_cancel(weft_token *t);

/* One atomic load. false for NULL. */
WEFT_EXTERN bool weft_token_is_cancelled(const weft_token *t);

WEFT_EXTERN weft_token *weft_token_ref(weft_token *t);
WEFT_EXTERN void weft_token_release(weft_token *t);

/* The leaf of a wait for cancellation; in the frame, zeroed to start. */
typedef struct weft_token_wait {
    /* private */
    struct weft_token_wait *weft_prev, *weft_next;
    weft_token *weft_tok;
    weft_waker weft_wake;
    uint32_t weft_state;
} weft_token_wait;

#define WEFT_TOKEN_WAIT_INIT { NULL, NULL, NULL, { 0 }, 0 }

/*
 * Await the cancellation of t: yields 0 once t is cancelled, -EINVAL for NULL.
 * Cancellation contract: withdrawn (the waiting task was itself cancelled),
 * the wait is unlinked and yields -ECANCELED; if t was cancelled first, the
 * await yields 0 (RACED). The caller keeps its reference to t while waiting.
 */
WEFT_EXTERN weft_poll weft_token_cancelled(weft_cx *cx, weft_token *t, weft_token_wait *w);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_TOKEN_H */
