/*
 * weft/task.h - stackless tasks: the frame, the state-machine macros and the
 * leaf-future protocol.
 *
 * A task is a poll function plus a frame: a user struct whose first member is a
 * weft_frame. Locals that must survive an await live in the frame. The macros
 * below turn the poll function into a resumable state machine with `switch`:
 *
 *     static weft_poll child_poll(weft_cx *cx, void *p) {
 *         struct child *c = p;
 *         WEFT_BEGIN(&c->f);
 *         WEFT_YIELD(&c->f, c->rc);          // c->rc: 0, or -ECANCELED
 *         WEFT_AWAIT(&c->f, c->rc, weft_join_await(cx, &c->h, &c->out));
 *         WEFT_RETURN(&c->f, c->out.value);
 *         WEFT_END(&c->f);
 *     }
 *
 * Rules a user must know:
 *  1. The poll function's context parameter must be named `cx`: the macros use it.
 *  2. At most one WEFT_AWAIT/WEFT_YIELD per source line (the line is the resume
 *     point), and no `switch` of your own may span an await: its `case` labels
 *     would capture the resume point. A resume that matches no point is
 *     caught: the process aborts naming the function's file and line.
 *  3. Plain locals do not survive an await; keep such values in the frame.
 *  4. An await's operand is evaluated at every poll of the task while it waits
 *     there: the first evaluation starts the leaf, later ones check it. Make
 *     the operand the leaf call itself; compute anything with a side effect
 *     (a counter, a random choice) into the frame before the await.
 *  5. WEFT_BEGIN binds the frame once; the `f` of the other macros is only
 *     checked to be a weft_frame pointer. `out` must be a signed integer of
 *     at least 32 bits (checked at compile time), so -ECANCELED survives.
 *  6. The frame's alignment may not exceed WEFT_FRAME_ALIGN (checked by
 *     WEFT_TASK at compile time).
 *
 * An awaitable (a "leaf future" such as a join, a timer or an I/O operation, or
 * a nested state machine) is an expression of type weft_poll: WEFT_PENDING while
 * it cannot finish, otherwise its result, which by convention is >= 0 on success
 * and a negative errno on failure. Every await is a cancellation point: when a
 * cancellation request is pending and no shield holds it, the await yields
 * -ECANCELED (docs/cancellation.md has the whole model), and inside an expired
 * deadline scope (weft/scope.h) it yields -ETIMEDOUT - except an await
 * of a release operation (weft_close, or any expression wrapped in
 * WEFT_RELEASE): that one is always performed and yields its real result,
 * and the cancellation is delivered at the next await instead.
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/version.h"

#ifdef __cplusplus
#include <type_traits>
extern "C" {
#endif

/* What every poll and every leaf returns: WEFT_PENDING, or the ready result. */
typedef int64_t weft_poll;
#define WEFT_PENDING INT64_MIN

/* The context of the poll in progress; valid only during that poll. */
typedef struct weft_cx weft_cx;

/* The header every frame starts with. All fields are private. */
typedef struct weft_frame {
    uint32_t weft_resume;       /* resume point: 0 = start, else an await line */
    uint32_t weft_reserved;
} weft_frame;

typedef weft_poll (*weft_poll_fn)(weft_cx *cx, void *frame);
typedef void (*weft_drop_fn)(void *frame);

/* Where an await is in the source; used for cancellation provenance. */
typedef struct weft_site {
    const char *file;
    const char *func;
    int line;
} weft_site;

/* ---- Leaf-future protocol ------------------------------------------------ */

/*
 * A waker is a counted reference to something that can be woken: a task, or a
 * plain thread blocked in a weft_*_wait call. Every waker obtained must be
 * consumed exactly once, by weft_waker_wake or weft_waker_drop.
 */
typedef struct weft_waker {
    uintptr_t weft_bits;        /* private; 0 = no waker */
} weft_waker;

WEFT_EXTERN weft_waker weft_cx_waker(weft_cx *cx);
WEFT_EXTERN weft_waker weft_waker_clone(const weft_waker *w);
WEFT_EXTERN void weft_waker_wake(weft_waker *w);
WEFT_EXTERN void weft_waker_wake_by_ref(const weft_waker *w);
WEFT_EXTERN void weft_waker_drop(weft_waker *w);
WEFT_EXTERN bool weft_waker_will_wake(const weft_waker *w, weft_cx *cx);

/*
 * How a withdrawn leaf ended; returned by its cancel hook.
 *  WITHDRAWN - it did not happen and never will: the await yields -ECANCELED.
 *  RACED     - it completed before the withdrawal: poll it once more for the
 *              real result (it must not suspend again).
 *  PENDING   - withdrawal is under way (e.g. an io_uring cancel in flight); the
 *              leaf wakes the task when it has settled and then yields either
 *              -ECANCELED or its real result.
 */
typedef enum weft_withdraw {
    WEFT_WITHDRAWN = 0,
    WEFT_WITHDRAW_RACED = 1,
    WEFT_WITHDRAW_PENDING = 2,
} weft_withdraw;

typedef weft_withdraw (*weft_cancel_hook)(weft_cx *cx, void *leaf);

/*
 * True inside a cancel hook when the runtime is tearing the task down (a
 * cancel-safe task being stopped, or shutdown): the frame is dropped after the
 * hook whatever it returns, so a leaf that was handed something (a value, a
 * permit) must pass it on instead of answering RACED. False at ordinary awaits.
 */
WEFT_EXTERN bool weft_cx_is_teardown(weft_cx *cx);

/*
 * A leaf that returns WEFT_PENDING after arranging a wake-up must declare
 * itself with weft_cx_suspend, so that the runtime can withdraw it when the task
 * is cancelled. The hook runs on the thread that polls the task, never
 * concurrently with the task's poll.
 */
WEFT_EXTERN void weft_cx_suspend(weft_cx *cx, void *leaf, weft_cancel_hook hook);

/*
 * Cooperative budget: a leaf that is about to complete calls weft_cx_coop.
 * When the task has used its budget (128 completions per poll) it returns false
 * after rescheduling the task; the leaf must then return WEFT_PENDING without
 * consuming anything.
 */
WEFT_EXTERN bool weft_cx_coop(weft_cx *cx);

/* Shield regions (nestable): cancellation requests are held until the
 * outermost region ends, and delivered at the first await after it. An exit
 * with no region open does nothing, and none ends the shield of a task
 * spawned WEFT_TASK_SHIELDED. Regions nest 65534 deep; an enter past that
 * (unmatched enters piling up) leaves the task shielded until it ends,
 * exits included. */
WEFT_EXTERN void weft_shield_enter(weft_cx *cx);
WEFT_EXTERN void weft_shield_exit(weft_cx *cx);

/* A leaf that never completes: the task waits until it is cancelled (the await
 * then yields -ECANCELED, or a cancel-safe task is torn down). */
WEFT_EXTERN weft_poll weft_pending(weft_cx *cx);

/* True when a cancellation request is waiting for this task (shielded or not). */
WEFT_EXTERN bool weft_cx_cancel_requested(weft_cx *cx);

/*
 * True when an await would deliver a cancellation now (requested, no shield),
 * or the expiry of a deadline scope. A leaf built from several operations in
 * turn (a send-all loop) checks it before starting the next one and yields
 * -ECANCELED instead (the await turns that into -ETIMEDOUT for an expiry):
 * its withdrawal only reaches the operation in flight, not the ones it has
 * yet to start.
 */
WEFT_EXTERN bool weft_cx_cancel_due(weft_cx *cx);

/* The largest frame alignment the runtime provides. */
#define WEFT_FRAME_ALIGN 16

/*
 * A release operation: an awaitable that gives something back (closes an fd,
 * shuts a group down). WEFT_RELEASE(expr) wraps a weft_poll expression so the
 * await makes it even when the task has a cancellation pending: WEFT_AWAIT
 * runs it in its own shield region, it yields its real result, and the
 * request is delivered at the task's next await. Outside an await,
 * WEFT_RELEASE_VALUE unwraps it.
 */
typedef struct weft_release {
    weft_poll weft_value;
} weft_release;

static inline weft_release weft__release(weft_poll r)
{
    weft_release rel;
    rel.weft_value = r;
    return rel;
}

#define WEFT_RELEASE(expr) weft__release(expr)
#define WEFT_RELEASE_VALUE(rel) ((rel).weft_value)

/* ---- Internals the macros expand to (not API) ---------------------------- */

#define WEFT__STATE_CANCEL_REQUESTED ((uint64_t)1 << 5)
#define WEFT__STATE_SCOPE_EXPIRED ((uint64_t)1 << 31)
#define WEFT__RESUME_DONE UINT32_MAX

/* What the slow path of an await says: poll the leaf, yield the withdrawal's
 * error without polling, or suspend; TIMEDOUT marks a scope's expiry, whose
 * error is -ETIMEDOUT. A leaf polled under TIMEDOUT that yields -ECANCELED
 * asks weft__timeout_result whether that was the expiry (a withdrawal that
 * settled, a compound leaf that stopped) or its own real result. */
enum {
    WEFT__AWAIT_POLL = 0,
    WEFT__AWAIT_CANCELLED = 1,
    WEFT__AWAIT_SUSPEND = 2,
    WEFT__AWAIT_TIMEDOUT = 4,
};

/* The first member of the runtime's cx; read inline on every await. */
struct weft__cx_head {
    const uint64_t *state;      /* the task's state word */
    void **leaf;                /* the task's leaf-in-flight slot */
    const weft_site **site;     /* where the task last suspended */
};

WEFT_EXTERN int weft__cancel_at_await(weft_cx *cx, const weft_site *site);
WEFT_EXTERN weft_poll weft__timeout_result(weft_cx *cx);
WEFT_EXTERN weft_poll weft__yield_now(weft_cx *cx);
WEFT_EXTERN weft_poll weft__frame_end(weft_frame *f);
WEFT_EXTERN weft_poll weft__resume_lost(weft_frame *f, const char *file, int line);

static inline bool weft__cancel_flagged(weft_cx *cx)
{
    /* Relaxed: the requester's release pairs with the acquire in the slow path. */
    const struct weft__cx_head *h = (const struct weft__cx_head *)cx;
    return __builtin_expect((__atomic_load_n(h->state, __ATOMIC_RELAXED)
                             & (WEFT__STATE_CANCEL_REQUESTED | WEFT__STATE_SCOPE_EXPIRED)) != 0,
                            0);
}

static inline void weft__await_done(weft_cx *cx)
{
    *((const struct weft__cx_head *)cx)->leaf = NULL;
}

static inline void weft__suspended_at(weft_cx *cx, const weft_site *site)
{
    /* Relaxed atomic (a plain store on every target): the task dump reads
     * it from other threads (weft/observe.h). */
    __atomic_store_n(((const struct weft__cx_head *)cx)->site, site, __ATOMIC_RELAXED);
}

static inline weft_poll weft__poll_value(weft_poll r) { return r; }
static inline weft_poll weft__release_value(weft_release r) { return r.weft_value; }

#if defined(__cplusplus) && __cplusplus >= 201703L
#define WEFT__FALLTHROUGH [[fallthrough]]
#elif defined(__GNUC__)
#define WEFT__FALLTHROUGH __attribute__((fallthrough))
#else
#define WEFT__FALLTHROUGH ((void)0)
#endif

/*
 * Compile-time checks the macros make. None evaluates its operand: C11's
 * _Generic and sizeof, GNU C's __typeof__, C++'s decltype only look at types.
 *   WEFT__IS_RELEASE(e)  e is a release operation (type weft_release)
 *   WEFT__VALUE(e)       e's weft_poll, unwrapped if it is a release
 *   WEFT__CHECK_OUT(o)   o can hold every result (signed, >= 32 bits)
 *   WEFT__CHECK_FRAME(f) f points to a weft_frame
 */
#if defined(__cplusplus)
#define WEFT__IS_RELEASE(e) (weft__is_release<decltype(e)>::value)
#define WEFT__VALUE(e) weft__value(e)
#define WEFT__CHECK_OUT(o)                                                    \
    static_assert(weft__signed_out<decltype(o)>::value,                       \
                  "WEFT_AWAIT: out must be a signed integer of >= 32 bits")
#define WEFT__CHECK_FRAME(f)                                                  \
    static_assert(weft__is_frame_ptr<decltype(f)>::value,                     \
                  "weft macros: f must point to the frame's weft_frame")
#else
#define WEFT__IS_RELEASE(e) _Generic((e), weft_release: 1, default: 0)
#define WEFT__VALUE(e)                                                        \
    _Generic((e), weft_release: weft__release_value, default: weft__poll_value)(e)
#if defined(__GNUC__)
#define WEFT__CHECK_OUT(o)                                                    \
    _Static_assert(sizeof(o) >= 4 && (__typeof__(o))-1 < 1,                  \
                   "WEFT_AWAIT: out must be a signed integer of >= 32 bits")
#define WEFT__CHECK_FRAME(f)                                                  \
    _Static_assert(_Generic((f), weft_frame *: 1, default: 0),                \
                   "weft macros: f must point to the frame's weft_frame")
#else
#define WEFT__CHECK_OUT(o) _Static_assert(sizeof(o) >= 4, "WEFT_AWAIT: out too small")
#define WEFT__CHECK_FRAME(f) _Static_assert(1, "")
#endif
#endif

/* ---- The state-machine macros ------------------------------------------- */

/* Opens the body and binds the frame. A resume point that no case matches
 * (a user's switch captured it) traps instead of finishing the task. */
#define WEFT_BEGIN(f)                                                         \
    weft_frame *const weft__frame_ = (f);                                     \
    switch (weft__frame_->weft_resume) {                                      \
    default:                                                                  \
        return weft__resume_lost(weft__frame_, __FILE__, __LINE__);           \
    case 0:

/* Await `expr` (a weft_poll expression, or a release operation, which is
 * made inside its own shield) and store its result in `out`. The release
 * test is on the operand's type: a constant, so the other branch vanishes. */
#define WEFT_AWAIT(f, out, expr)                                              \
    do {                                                                      \
        static const weft_site weft__site_ = { __FILE__, __func__, __LINE__ };\
        WEFT__CHECK_FRAME(f);                                                 \
        if (WEFT__IS_RELEASE(expr))                                           \
            weft_shield_enter(cx);                                            \
        weft__frame_->weft_resume = __LINE__;                                 \
        WEFT__FALLTHROUGH;                                                    \
    case __LINE__: {                                                          \
        WEFT__CHECK_OUT(out);                                                 \
        weft_poll weft__r_ = -ECANCELED;                                      \
        int weft__c_ = !WEFT__IS_RELEASE(expr) && weft__cancel_flagged(cx)    \
            ? weft__cancel_at_await(cx, &weft__site_) : WEFT__AWAIT_POLL;     \
        if (weft__c_ == WEFT__AWAIT_SUSPEND)                                  \
            return WEFT_PENDING;                                              \
        if (!(weft__c_ & WEFT__AWAIT_CANCELLED)                               \
            && (weft__r_ = WEFT__VALUE(expr)) == WEFT_PENDING) {              \
            weft__suspended_at(cx, &weft__site_);                             \
            return WEFT_PENDING;                                              \
        }                                                                     \
        if ((weft__c_ & WEFT__AWAIT_TIMEDOUT) && weft__r_ == -ECANCELED)      \
            weft__r_ = (weft__c_ & WEFT__AWAIT_CANCELLED) ? -ETIMEDOUT        \
                       : weft__timeout_result(cx);                            \
        weft__await_done(cx);                                                 \
        if (WEFT__IS_RELEASE(expr))                                           \
            weft_shield_exit(cx);                                             \
        (out) = weft__r_;                                                     \
    }                                                                         \
    } while (0)

/* Let other tasks run; `out` becomes 0, or -ECANCELED if cancelled. */
#define WEFT_YIELD(f, out) WEFT_AWAIT(f, out, weft__yield_now(cx))

/* Finish with `value` (anything but WEFT_PENDING). */
#define WEFT_RETURN(f, value)                                                 \
    do {                                                                      \
        WEFT__CHECK_FRAME(f);                                                 \
        weft__frame_->weft_resume = WEFT__RESUME_DONE;                        \
        return (weft_poll)(value);                                            \
    } while (0)

/* Close the body; falling off the end returns 0, re-polling a finished frame
 * returns -EINVAL. */
#define WEFT_END(f) } return weft__frame_end(weft__frame_)

#define WEFT_SHIELD_BEGIN() weft_shield_enter(cx)
#define WEFT_SHIELD_END() weft_shield_exit(cx)

/* One await inside its own shield: made even by a task that is already
 * cancelled (cleanup that must happen), whose request is then delivered at
 * its next await. */
#define WEFT_AWAIT_SHIELDED(f, out, expr)                                     \
    do {                                                                      \
        WEFT_SHIELD_BEGIN();                                                  \
        WEFT_AWAIT(f, out, expr);                                             \
        WEFT_SHIELD_END();                                                    \
    } while (0)

#ifdef __cplusplus
}

/* C++ forms of the compile-time checks (templates cannot be extern "C"). */
template <typename T> struct weft__is_release {
    static const bool value = std::is_same<typename std::decay<T>::type, weft_release>::value;
};
template <typename T> struct weft__signed_out {
    typedef typename std::remove_reference<T>::type U;
    static const bool value = std::is_integral<U>::value && std::is_signed<U>::value
                              && sizeof(U) >= 4 && !std::is_const<U>::value;
};
template <typename T> struct weft__is_frame_ptr {
    static const bool value = std::is_same<typename std::decay<T>::type, weft_frame *>::value;
};
static inline weft_poll weft__value(weft_poll r) { return r; }
static inline weft_poll weft__value(weft_release r) { return r.weft_value; }
#endif

#endif /* WEFT_TASK_H */
