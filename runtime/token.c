/*
 * runtime/token.c - cancellation tokens (weft/token.h): the tree, the tasks
 * bound to each token, and the waiters of weft_token_cancelled.
 *
 * Invariants:
 *   1. `cancelled` goes false -> true once (CAS), before the token's lists are
 *      walked; anything linked into a list checks it under the same lock, so
 *      a child, binding or waiter is either seen by the cancel walk or sees
 *      the flag itself.
 *   2. Each token's lists (children, bindings, waiters) change only under its
 *      spinlock. A cancel never holds two tokens' locks: it takes references
 *      to the children under the parent's lock and walks them afterwards
 *      (iteratively, so a deep tree cannot overflow the stack).
 *   3. A child holds a reference to its parent; a binding holds a reference to
 *      its token; so the parent outlives every link to it. A child stays in
 *      its parent's list until its last release unlinks it, so the cancel
 *      walk references a child only while its count is above zero.
 *   4. Bindings live at the end of their task's allocation and are unlinked
 *      when the task completes, before its memory can be freed.
 */
#include <errno.h>
#include <stdatomic.h>

#include "runtime/alloc.h"
#include "runtime/spinlock.h"
#include "runtime/task.h"
#include "runtime/token.h"

struct weft_token {
    _Atomic bool cancelled;
    uint8_t source;                     /* what bound tasks see as the requester */
    _Atomic uint32_t refs;
    weft__spinlock lock;
    struct weft_token *parent;
    struct weft_token *first_child, *next_sibling, *prev_sibling;
    weft__binding *bindings;
    weft_token_wait *waiters;
    struct weft_token *cancel_next;     /* worklist link during a cancel */
};

enum { WAIT_IDLE, WAIT_LINKED, WAIT_WOKEN };

static int token_alloc(weft_token **out)
{
    weft_token *t = weft__calloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    atomic_init(&t->cancelled, false);
    atomic_init(&t->refs, 1);
    t->source = WEFT_CANCEL_TOKEN;
    weft__spin_init(&t->lock);
    *out = t;
    return 0;
}

int weft_token_new(weft_token **out)
{
    return out ? token_alloc(out) : -EINVAL;
}

weft_token *weft_token_ref(weft_token *t)
{
    if (t)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

int weft_token_child(weft_token *parent, weft_token **out)
{
    if (!parent || !out)
        return -EINVAL;
    weft_token *c;
    int rc = token_alloc(&c);
    if (rc)
        return rc;
    c->parent = weft_token_ref(parent);
    weft__spin_lock(&parent->lock);
    if (atomic_load_explicit(&parent->cancelled, memory_order_relaxed)) {
        atomic_store_explicit(&c->cancelled, true, memory_order_release);
    } else {
        c->next_sibling = parent->first_child;
        if (parent->first_child)
            parent->first_child->prev_sibling = c;
        parent->first_child = c;
    }
    weft__spin_unlock(&parent->lock);
    *out = c;
    return 0;
}

bool weft_token_is_cancelled(const weft_token *t)
{
    /* Acquire: whoever sees the flag sees what was done before cancelling. */
    return t && atomic_load_explicit(&t->cancelled, memory_order_acquire);
}

static void unlink_child(weft_token *c)
{
    weft_token *p = c->parent;
    weft__spin_lock(&p->lock);
    if (c->prev_sibling)
        c->prev_sibling->next_sibling = c->next_sibling;
    else if (p->first_child == c)
        p->first_child = c->next_sibling;
    if (c->next_sibling)
        c->next_sibling->prev_sibling = c->prev_sibling;
    c->prev_sibling = c->next_sibling = NULL;
    weft__spin_unlock(&p->lock);
}

void weft_token_release(weft_token *t)
{
    while (t && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
        weft_token *parent = t->parent;
        if (parent)
            unlink_child(t);
        weft__free(t, sizeof *t);
        t = parent;     /* drop the child's reference to it (rule 3) */
    }
}

/*
 * Take a reference to a child found in its parent's list, unless its count
 * already reached zero: then its last release is waiting for the parent's
 * lock (which the caller holds) to unlink and free it. Such a child has no
 * children, bindings or waiters left (each held a reference), so there is
 * nothing under it to cancel.
 */
static bool ref_unless_dying(weft_token *c)
{
    uint32_t n = atomic_load_explicit(&c->refs, memory_order_relaxed);
    do {
        if (n == 0)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&c->refs, &n, n + 1, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

/* Under t's lock: request cancellation of bound tasks, wake waiters, and push
 * referenced children onto the worklist. */
static void cancel_locked(weft_token *t, weft_token **work)
{
    for (weft__binding *b = t->bindings; b; b = b->next)
        weft__task_request_cancel(b->task, (weft_cancel_source)t->source);
    for (weft_token_wait *w = t->waiters, *next; w; w = next) {
        next = w->weft_next;
        w->weft_prev = w->weft_next = NULL;
        weft_waker waker = w->weft_wake;
        w->weft_wake.weft_bits = 0;
        /* Release: the waiter that sees WOKEN owns the node again. */
        __atomic_store_n(&w->weft_state, WAIT_WOKEN, __ATOMIC_RELEASE);
        weft_waker_wake(&waker);
    }
    t->waiters = NULL;
    for (weft_token *c = t->first_child; c; c = c->next_sibling) {
        if (atomic_exchange_explicit(&c->cancelled, true, memory_order_acq_rel))
            continue;   /* cancelled on its own already */
        if (!ref_unless_dying(c))
            continue;   /* a plain ref would revive it, and it would be freed twice */
        c->cancel_next = *work;
        *work = c;
    }
}

int weft_token_cancel(weft_token *t)
{
    if (!t)
        return -EINVAL;
    /* Acq_rel: rule 1; also orders the caller's writes before the flag. */
    if (atomic_exchange_explicit(&t->cancelled, true, memory_order_acq_rel))
        return 1;
    weft_token *work = weft_token_ref(t);
    work->cancel_next = NULL;
    while (work) {
        weft_token *cur = work;
        work = cur->cancel_next;
        weft__spin_lock(&cur->lock);
        cancel_locked(cur, &work);
        weft__spin_unlock(&cur->lock);
        weft_token_release(cur);
    }
    return 0;
}

/* ---- bindings (runtime side) ------------------------------------------------- */

void weft__token_bind(weft__binding *b, weft__task *task, weft_token *t)
{
    b->task = task;
    b->token = weft_token_ref(t);
    b->prev = NULL;
    weft__spin_lock(&t->lock);
    bool cancelled = atomic_load_explicit(&t->cancelled, memory_order_relaxed);
    b->next = t->bindings;
    if (t->bindings)
        t->bindings->prev = b;
    t->bindings = b;
    weft__spin_unlock(&t->lock);
    if (cancelled)
        weft__task_request_cancel(task, (weft_cancel_source)t->source);
}

weft_cancel_source weft__token_source(const weft_token *t)
{
    return (weft_cancel_source)t->source;
}

void weft__token_set_source(weft_token *t, weft_cancel_source source)
{
    t->source = (uint8_t)source;
}

void weft__token_unbind(weft__binding *b)
{
    weft_token *t = b->token;
    weft__spin_lock(&t->lock);
    if (b->prev)
        b->prev->next = b->next;
    else
        t->bindings = b->next;
    if (b->next)
        b->next->prev = b->prev;
    weft__spin_unlock(&t->lock);
    weft_token_release(t);
}

/* ---- the cancelled() leaf ----------------------------------------------------- */

static weft_withdraw wait_withdraw(weft_cx *cx, void *leaf)
{
    (void)cx;
    weft_token_wait *w = leaf;
    weft_token *t = w->weft_tok;
    weft__spin_lock(&t->lock);
    bool linked = __atomic_load_n(&w->weft_state, __ATOMIC_RELAXED) == WAIT_LINKED;
    if (linked) {
        if (w->weft_prev)
            w->weft_prev->weft_next = w->weft_next;
        else
            t->waiters = w->weft_next;
        if (w->weft_next)
            w->weft_next->weft_prev = w->weft_prev;
        w->weft_prev = w->weft_next = NULL;
        __atomic_store_n(&w->weft_state, WAIT_IDLE, __ATOMIC_RELAXED);
    }
    weft__spin_unlock(&t->lock);
    if (!linked)
        return WEFT_WITHDRAW_RACED;     /* the cancel woke it first */
    weft_waker_drop(&w->weft_wake);
    return WEFT_WITHDRAWN;
}

weft_poll weft_token_cancelled(weft_cx *cx, weft_token *t, weft_token_wait *w)
{
    if (!cx || !t || !w)
        return -EINVAL;
    switch (__atomic_load_n(&w->weft_state, __ATOMIC_ACQUIRE)) {
    case WAIT_LINKED:
        weft_cx_suspend(cx, w, wait_withdraw);
        return WEFT_PENDING;
    case WAIT_WOKEN:
        if (!weft_cx_coop(cx))
            return WEFT_PENDING;
        __atomic_store_n(&w->weft_state, WAIT_IDLE, __ATOMIC_RELAXED);
        return 0;
    }
    if (!weft_token_is_cancelled(t)) {
        weft__spin_lock(&t->lock);
        if (!atomic_load_explicit(&t->cancelled, memory_order_relaxed)) {
            w->weft_tok = t;
            w->weft_wake = weft_cx_waker(cx);
            w->weft_prev = NULL;
            w->weft_next = t->waiters;
            if (t->waiters)
                t->waiters->weft_prev = w;
            t->waiters = w;
            __atomic_store_n(&w->weft_state, WAIT_LINKED, __ATOMIC_RELAXED);
            weft__spin_unlock(&t->lock);
            weft_cx_suspend(cx, w, wait_withdraw);
            return WEFT_PENDING;
        }
        weft__spin_unlock(&t->lock);
    }
    return weft_cx_coop(cx) ? 0 : WEFT_PENDING;
}
