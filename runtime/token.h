/*
 * runtime/token.h - what the runtime needs of tokens: binding a task to a
 * token for its lifetime (token.c explains the invariants).
 */
#ifndef WEFT_RUNTIME_TOKEN_H
#define WEFT_RUNTIME_TOKEN_H

#include "weft/runtime.h"
#include "weft/token.h"

struct weft__task;

/* One per (task, token) pair, stored at the end of the task's allocation. */
typedef struct weft__binding {
    struct weft__binding *prev, *next;      /* in the token's list */
    struct weft__task *task;
    weft_token *token;
} weft__binding;

/* Link b into t's bound tasks; requests cancellation at once if t already is
 * cancelled. Takes a token reference. */
void weft__token_bind(weft__binding *b, struct weft__task *task, weft_token *t);

/* Who bound tasks are told asked them to stop (default WEFT_CANCEL_TOKEN; a
 * task group's token says WEFT_CANCEL_GROUP). Set before any task is bound. */
void weft__token_set_source(weft_token *t, weft_cancel_source source);

/* The source set above: immutable once a task can be bound. */
weft_cancel_source weft__token_source(const weft_token *t);

/* Unlink (the task completed) and drop the token reference. */
void weft__token_unbind(weft__binding *b);

#endif /* WEFT_RUNTIME_TOKEN_H */
