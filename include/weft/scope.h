/*
 * weft/scope.h - deadline scopes: a deadline set once on a region of a task
 * and honoured by every await inside it (Trio's cancel scopes, its
 * move_on_after and fail_after).
 *
 *     weft_scope_enter_for(cx, &c->conn_scope, 30000000000u);   // 30 s
 *     ... every await here yields -ETIMEDOUT once the 30 s have passed ...
 *     if (weft_scope_exit(cx, &c->conn_scope) == 1)
 *         ;   // this scope's own deadline ended the region
 *
 * A scope is user storage kept in the task's frame (like a weft_sleep), so
 * entering one never allocates. Its timer lives on the timing wheel of the
 * worker that entered it; it may fire on any worker while the task runs
 * elsewhere.
 *
 * Contract (docs/cancellation.md, "Deadline scopes"):
 *  - Timeouts stop the waiting, not the work. Once a scope's deadline has
 *    passed, every await inside it yields -ETIMEDOUT instead of starting its
 *    operation; an await suspended at that moment has its leaf withdrawn
 *    exactly as a cancellation would ("a cancelled operation did not happen;
 *    one that happened is reported": a leaf that completed first yields its
 *    real result). The task is not torn down and the code after the scope
 *    runs normally: weft_scope_exit ends the region and its expiry with it.
 *  - Nested scopes: the earliest deadline wins. An expired scope's -ETIMEDOUT
 *    is seen by every await inside it, including inside scopes nested in it;
 *    an inner scope's expiry is seen only inside the inner scope. A scope
 *    whose deadline is not earlier than an enclosing one's arms no timer and
 *    never expires on its own: the enclosing scope does.
 *  - A shield (weft_shield_enter) opened inside an expired scope defers its
 *    expiry to the first await after the shield, as it defers cancellation.
 *    A scope opened inside a shield still expires there: that is how a
 *    shielded clean-up gets a time limit. Release operations (weft_close,
 *    WEFT_RELEASE) are always made.
 *  - A cancellation request takes precedence: an await with both pending
 *    yields -ECANCELED.
 *  - Scopes close in the reverse order they were opened. A task that
 *    finishes (returns, is torn down, or is dropped at shutdown) with scopes
 *    still open has their timers withdrawn before its frame is dropped.
 *
 * Every call here rejects misuse with -EINVAL: a NULL argument, entering a
 * scope that is already open, a scope outside the task's frame (even in
 * part), exiting a scope that is not open or not the innermost one.
 */
#ifndef WEFT_SCOPE_H
#define WEFT_SCOPE_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* No deadline: a scope that only expires through an enclosing one. */
#define WEFT_SCOPE_NEVER UINT64_MAX

typedef struct weft_scope {
    /* private: start zeroed (WEFT_SCOPE_INIT); reusable once exited */
    uint64_t weft_timer[5];         /* the wheel's timer node (reactor/wheel.h) */
    struct weft_scope *weft_outer;  /* the enclosing open scope, or NULL */
    void *weft_task;                /* the task it was entered in */
    const weft_site *weft_met_at;   /* first await its expiry took effect at */
    uint64_t weft_deadline;         /* its own */
    uint64_t weft_effective;        /* the earliest of its own and the enclosing ones */
    uint64_t weft_expired_ns;       /* when it expired; 0: it has not */
    uint32_t weft_state;
    uint16_t weft_owner;            /* worker whose wheel holds the timer */
    uint16_t weft_shield;           /* the task's shield depth when entered */
} weft_scope;

#define WEFT_SCOPE_INIT { { 0 }, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0 }

/*
 * Open sc (in the task's frame) with a deadline on the weft_now_ns clock
 * (virtual under the simulator); WEFT_SCOPE_NEVER for none. A deadline that
 * has passed already makes the scope expired at once. Returns 0, or -EINVAL.
 */
WEFT_EXTERN int weft_scope_enter(weft_cx *cx, weft_scope *sc, uint64_t deadline_ns);

/* As weft_scope_enter, with the deadline timeout_ns from now. */
WEFT_EXTERN int weft_scope_enter_for(weft_cx *cx, weft_scope *sc, uint64_t timeout_ns);

/*
 * Close sc, the innermost open scope: its timer is withdrawn and its expiry
 * no longer affects the task's awaits. Returns 1 when sc's own deadline
 * expired while it was open, 0 when it did not, -EINVAL for misuse (the
 * scope stays open then). Its provenance stays readable until it is entered
 * again.
 */
WEFT_EXTERN int weft_scope_exit(weft_cx *cx, weft_scope *sc);

/* True once sc's own deadline has expired (while open, or at its last exit). */
WEFT_EXTERN bool weft_scope_expired(const weft_scope *sc);

/* When sc expired (weft_now_ns clock, as read by the worker whose timer
 * fired), or 0. */
WEFT_EXTERN uint64_t weft_scope_expired_at(const weft_scope *sc);

/* The first await that yielded -ETIMEDOUT (or had its leaf withdrawn)
 * because of sc's expiry, or NULL (not expired, or no await met it). */
WEFT_EXTERN const weft_site *weft_scope_site(const weft_scope *sc);

/* sc's own deadline as entered (WEFT_SCOPE_NEVER for none), or 0 for a
 * scope never entered. */
WEFT_EXTERN uint64_t weft_scope_deadline(const weft_scope *sc);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SCOPE_H */
