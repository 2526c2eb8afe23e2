/*
 * runtime/trace.c - recording trace events (runtime/trace.h has the buffers
 * and their rules), starting a trace, and the WEFT_TRACE environment.
 *
 * Invariants:
 *   1. An event goes to the buffer of the thread that records it: the
 *      current worker's when that worker belongs to the runtime, else the
 *      outside buffer under its lock. So no buffer has two writers at once.
 *   2. A poll's span is one event, recorded when the poll returns: no span
 *      is ever left open, whenever the trace is written. While it runs,
 *      the buffer's `running` names the task, so the wakes, spawns and
 *      cancellation requests the poll makes name their waker.
 *   3. Recording never fails the runtime: a full buffer only loses events
 *      (counted in the file). Starting can fail: weft_trace_start returns
 *      -ENOMEM, and a WEFT_TRACE that cannot be honoured (an invalid
 *      WEFT_TRACE_EVENTS, no memory) fails weft_runtime_new, as any invalid
 *      WEFT_* variable does.
 */
#include "runtime/trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/alloc.h"
#include "runtime/worker.h"

/* Rule 1 of trace.h. On a line of its own: the hot paths read it. */
_Alignas(64) _Atomic unsigned weft__tracers;

/* Rule 1 of trace.h: the acquire that pairs with weft_trace_start. */
static weft__tracer *tracer_of(weft_runtime *rt)
{
    return atomic_load_explicit(&rt->tracer, memory_order_acquire);
}

static weft__trace_buf *own_buf(weft__tracer *tr, weft_runtime *rt)
{
    weft_worker *w = weft__current_worker;
    if (w && w->rt == rt)
        return &tr->bufs[w->index];
    return NULL;
}

/* Keeping the first events, a buffer that holds `written` of them takes
 * no more (trace.h, rule 3). */
static bool full(const weft__tracer *tr, const weft__trace_buf *b, uint64_t written)
{
    return !tr->keep_last && written >= b->cap;
}

/* trace.h, rule 3. */
static void push(weft__tracer *tr, weft__trace_buf *b, const weft__trace_ev *e)
{
    uint64_t k = atomic_load_explicit(&b->written, memory_order_relaxed);
    if (full(tr, b, k)) {
        atomic_fetch_add_explicit(&b->dropped, 1, memory_order_relaxed);
        return;
    }
    atomic_store_explicit(&b->begun, k + 1, memory_order_relaxed);
    /* Release: a reader that loads any word stored below, then fences,
     * sees this `begun` and leaves the slot out. */
    atomic_thread_fence(memory_order_release);
    weft__trace_slot_store(&b->ev[k % b->cap], e);
    atomic_store_explicit(&b->written, k + 1, memory_order_release);
}

/* The events whose `b` names who made them: the task polled on this
 * worker (rule 2), or none. */
static bool names_waker(const weft__trace_ev *e)
{
    return e->kind == WEFT__TR_WAKE || e->kind == WEFT__TR_SPAWN
        || e->kind == WEFT__TR_CANCEL_REQ || e->kind == WEFT__TR_IO_SUBMIT;
}

/* Rule 1. */
static void record(weft_runtime *rt, weft__trace_ev *e, bool stamp)
{
    weft__tracer *tr = tracer_of(rt);
    weft__trace_buf *b = own_buf(tr, rt);
    if (b) {
        if (names_waker(e))
            e->b = (uint64_t)(uintptr_t)b->running;
        if (stamp)
            e->ts = weft__monotonic_ns();
        push(tr, b, e);
        return;
    }
    b = &tr->bufs[tr->nbufs - 1];
    pthread_mutex_lock(&b->lock);
    if (stamp)
        e->ts = weft__monotonic_ns();   /* under the lock: in order */
    push(tr, b, e);
    pthread_mutex_unlock(&b->lock);
}

static void copy_name(weft__trace_ev *e, const char *name)
{
    if (name)
        memcpy(e->name, name, strnlen(name, sizeof e->name - 1));
}

weft_poll weft__trace_poll_slow(weft_worker *w, weft__task *t, struct weft_cx *cx)
{
    weft__tracer *tr = tracer_of(t->rt);
    weft__trace_buf *b = &tr->bufs[w->index];
    if (full(tr, b, atomic_load_explicit(&b->written, memory_order_relaxed))) {
        atomic_fetch_add_explicit(&b->dropped, 1, memory_order_relaxed);
        return t->poll(cx, weft__task_frame(t));
    }
    weft__trace_ev e = { .kind = WEFT__TR_POLL, .task = (uintptr_t)t };
    copy_name(&e, weft__task_name(t));   /* before the poll: it may free t */
    b->running = t;
    e.ts = weft__monotonic_ns();
    weft_poll r = t->poll(cx, weft__task_frame(t));
    e.a = weft__monotonic_ns() - e.ts;
    b->running = NULL;
    e.c = r != WEFT_PENDING;
    push(tr, b, &e);
    return r;
}

void weft__trace_task_slow(weft__task *t, enum weft__trace_kind kind, int32_t c)
{
    weft__trace_ev e = { .kind = (uint16_t)kind, .task = (uintptr_t)t, .c = c };
    if (kind == WEFT__TR_SPAWN)
        copy_name(&e, weft__task_name(t));
    record(t->rt, &e, true);
}

void weft__trace_io_slow(weft_runtime *rt, enum weft__trace_kind kind, const weft__op *op,
                         int32_t res)
{
    weft__trace_ev e = { .kind = (uint16_t)kind, .a = weft__op_ud(op), .c = res,
                         .p = weft__op_defs[op->kind].name };
    record(rt, &e, true);
}

void weft__trace_timer_slow(weft_runtime *rt, unsigned timer_kind)
{
    static const char *const what[] = { "sleep", "io deadline", "scope deadline" };
    weft__trace_ev e = { .kind = WEFT__TR_TIMER, .p = timer_kind < 3 ? what[timer_kind] : "timer" };
    record(rt, &e, true);
}

void weft__trace_park_slow(weft_worker *w, uint64_t from, uint64_t to)
{
    weft__trace_ev e = { .kind = WEFT__TR_PARK, .ts = from, .a = to > from ? to - from : 0 };
    record(w->rt, &e, false);
}

void weft__trace_cancel_slow(weft_runtime *rt, const weft_trace_event *ev)
{
    weft__trace_ev e = {
        .kind = WEFT__TR_CANCEL, .task = ev->task_id, .p = ev->site,
        .a = ev->requested_ns, .b = ev->shield_held_ns, .c = (int32_t)ev->source,
        .d = (uint16_t)ev->kind,
    };
    copy_name(&e, ev->task_name);
    record(rt, &e, true);
}

/* ---- starting, the environment, the end ----------------------------------- */

static void tracer_free(weft__tracer *tr)
{
    for (uint32_t i = 0; i < tr->nbufs; i++) {
        free(tr->bufs[i].ev);
        pthread_mutex_destroy(&tr->bufs[i].lock);
    }
    free(tr->env_path);
    free(tr);
}

static weft__tracer *tracer_new(uint32_t nbufs, size_t cap)
{
    /* Aligned: each buffer's counters have a cache line of their own. */
    size_t size = sizeof(weft__tracer) + nbufs * sizeof(weft__trace_buf);
    weft__tracer *tr = aligned_alloc(64, (size + 63) & ~(size_t)63);
    if (!tr)
        return NULL;
    memset(tr, 0, size);
    tr->nbufs = nbufs;
    for (uint32_t i = 0; i < nbufs; i++) {
        weft__trace_buf *b = &tr->bufs[i];
        pthread_mutex_init(&b->lock, NULL);
        b->cap = cap;
        /* calloc: the pages are touched only as events arrive. */
        if (!(b->ev = calloc(cap, sizeof *b->ev))) {
            tr->nbufs = i + 1;
            tracer_free(tr);
            return NULL;
        }
    }
    tr->t0 = weft__monotonic_ns();
    return tr;
}

static int start(weft_runtime *rt, size_t events, unsigned flags, char *env_path)
{
    if (events == 0)
        events = WEFT_TRACE_DEFAULT_EVENTS;
    if (events > WEFT_TRACE_MAX_EVENTS || (flags & ~WEFT_TRACE_KEEP_LAST))
        return -EINVAL;
    if (atomic_load_explicit(&rt->tracer, memory_order_acquire))
        return -EALREADY;
    weft__tracer *tr = tracer_new(rt->nworkers + 1, events);
    if (!tr)
        return -ENOMEM;
    tr->keep_last = flags & WEFT_TRACE_KEEP_LAST;
    tr->env_path = env_path;
    weft__tracer *none = NULL;
    if (!atomic_compare_exchange_strong_explicit(&rt->tracer, &none, tr, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        tr->env_path = NULL;
        tracer_free(tr);
        return -EALREADY;
    }
    atomic_fetch_add_explicit(&weft__tracers, 1, memory_order_relaxed);
    return 0;
}

int weft_trace_start(weft_runtime *rt, size_t events_per_buffer)
{
    return weft_trace_start_flags(rt, events_per_buffer, 0);
}

int weft_trace_start_flags(weft_runtime *rt, size_t events_per_buffer, unsigned flags)
{
    if (!rt)
        return -EINVAL;
    return start(rt, events_per_buffer, flags, NULL);
}

/* WEFT_TRACE_KEEP: unset, empty, "first" or "last"; anything else is
 * refused, as every WEFT_* variable's malformed value is. */
static int keep_from_env(unsigned *flags)
{
    const char *keep = getenv("WEFT_TRACE_KEEP");
    if (!keep || !*keep || strcmp(keep, "first") == 0)
        return 0;
    if (strcmp(keep, "last") != 0)
        return -EINVAL;
    *flags |= WEFT_TRACE_KEEP_LAST;
    return 0;
}

int weft__trace_from_env(weft_runtime *rt)
{
    const char *path = getenv("WEFT_TRACE");
    if (!path || !*path)
        return 0;
    const char *n = getenv("WEFT_TRACE_EVENTS");
    size_t events = 0;
    if (n && *n) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(n, &end, 10);
        if (errno || *end || n[0] < '0' || n[0] > '9' || v == 0 || v > WEFT_TRACE_MAX_EVENTS)
            return -EINVAL;
        events = (size_t)v;
    }
    unsigned flags = 0;
    if (keep_from_env(&flags) < 0)
        return -EINVAL;
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    int rc = start(rt, events, flags, copy);
    if (rc)
        free(copy);
    return rc;
}

void weft__trace_free(weft_runtime *rt)
{
    weft__tracer *tr = atomic_load_explicit(&rt->tracer, memory_order_acquire);
    if (!tr)
        return;
    if (tr->env_path) {
        int rc = weft_trace_write(rt, tr->env_path);
        if (rc < 0)
            fprintf(stderr, "weft: WEFT_TRACE=%s: %s\n", tr->env_path, strerror(-rc));
    }
    atomic_fetch_sub_explicit(&weft__tracers, 1, memory_order_relaxed);
    atomic_store_explicit(&rt->tracer, NULL, memory_order_relaxed);
    tracer_free(tr);
}
