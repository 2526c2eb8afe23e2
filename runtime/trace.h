/*
 * runtime/trace.h - recording the trace of weft/trace.h: the event record,
 * the buffers, and the inline helpers that the runtime's hot paths call.
 *
 * Each helper first tests weft__tracers, the number of runtimes in the
 * process that trace, a word on a line of its own that nothing writes while
 * no trace starts or ends; only when it is non-zero does it read the
 * runtime's tracer. Tracing off is that one load, with no dependence on the
 * task or runtime at hand (a woken task's header may not be in the cache
 * yet), and one well-predicted branch. The recording itself is out of line
 * (trace.c); the JSON writer is trace_json.c.
 *
 * Who touches what:
 *   1. rt->tracer is NULL until weft_trace_start publishes a tracer
 *      (release; the slow paths read it with acquire) and never changes
 *      again until the runtime is freed, after its workers have stopped.
 *      weft__tracers counts the runtimes whose tracer is set: raised after
 *      the tracer is published, lowered before it is cleared. A hot path
 *      that reads it relaxed may miss the first events of a trace started
 *      from another thread, as it may miss rt->tracer itself.
 *   2. Buffer i < nworkers is written only by the thread running worker i
 *      (weft__current_worker: its own thread, the simulator's thread while
 *      it steps that worker, or the shutdown sweep once the workers have
 *      stopped). The last buffer, for every other thread, is written under
 *      its mutex. `running` (the task being polled, the waker of the wakes
 *      it makes) belongs to the buffer's writer.
 *   3. `written` counts the events ever recorded in a buffer; event k lives
 *      in slot k mod cap. A writer first says it is starting event k
 *      (`begun` = k + 1, then a release fence), fills the slot with relaxed
 *      atomic stores, and publishes `written` = k + 1 (release). Keeping the
 *      first events (the default), a buffer that holds cap stays full and
 *      later events only count `dropped`; keeping the last ones
 *      (WEFT_TRACE_KEEP_LAST), event k overwrites event k - cap. A reader
 *      (the JSON writer, on any thread) reads `written` once (acquire),
 *      as W: every event before W is visible in full, and W alone sizes
 *      and ends the copy (the latest cap events before W, keeping the
 *      last); events from W on are left out. (A second, higher read would
 *      end the window past intact older events, counted as overwritten.)
 *      It copies the slots with relaxed atomic loads, fences (acquire) and
 *      reads `begun`: a slot whose event is older than begun - cap may have
 *      been overwritten since W was read, and is left out (a seqlock's
 *      check, per slot). However long ago W was read: a load that returns
 *      any word of event k + cap (>= W) comes after that event's `begun` =
 *      k + cap + 1 and release fence, so the reader's fence and `begun`
 *      load see it, and slot k is left out. So nothing is ever read torn,
 *      and the writer never waits.
 */
#ifndef WEFT_RUNTIME_TRACE_H
#define WEFT_RUNTIME_TRACE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "reactor/driver.h"
#include "runtime/rt.h"
#include "runtime/task.h"
#include "weft/trace.h"

enum weft__trace_kind {
    WEFT__TR_POLL,          /* span: ts, a = duration, task, name, c = 1: returned */
    WEFT__TR_PARK,          /* span: ts, a = duration */
    WEFT__TR_WAKE,          /* flow start: task = woken, b = waker (0: none) */
    WEFT__TR_SPAWN,         /* flow start: task = spawned, b = spawner */
    WEFT__TR_STEAL,         /* task, c = victim worker */
    WEFT__TR_IO_SUBMIT,     /* a = user_data, b = running task, p = op name */
    WEFT__TR_IO_DONE,       /* a = user_data, c = result, p = op name */
    WEFT__TR_TIMER,         /* p = what fired */
    WEFT__TR_CANCEL_REQ,    /* task = target, b = requester, c = source */
    WEFT__TR_CANCEL,        /* task, name, p = site, a = requested_ns,
                               b = shield_held_ns, c = source, d = trace kind */
};

#define WEFT__TRACE_NAME 16

/* One event: a cache line. */
typedef struct weft__trace_ev {
    uint64_t ts;                /* CLOCK_MONOTONIC ns */
    uint64_t a, b;
    uint64_t task;
    const void *p;              /* static data: a site, an op name */
    uint16_t kind;
    uint16_t d;
    int32_t c;
    char name[WEFT__TRACE_NAME];    /* the task's name, cut */
} weft__trace_ev;

_Static_assert(sizeof(weft__trace_ev) == 64, "a trace event is one cache line");

/* Where an event is kept: words a reader may load while the writer stores
 * (rule 3). */
#define WEFT__TRACE_WORDS (sizeof(weft__trace_ev) / sizeof(uint64_t))
typedef struct weft__trace_slot {
    _Atomic uint64_t w[WEFT__TRACE_WORDS];
} weft__trace_slot;

typedef struct weft__trace_buf {
    _Alignas(64) _Atomic uint64_t written;  /* rule 3 */
    _Atomic uint64_t begun;                 /* rule 3 */
    _Atomic uint64_t dropped;
    size_t cap;
    weft__task *running;                /* rule 2 */
    weft__trace_slot *ev;
    pthread_mutex_t lock;               /* the outside buffer only */
} weft__trace_buf;

typedef struct weft__tracer {
    uint64_t t0;                /* when tracing started */
    bool keep_last;             /* WEFT_TRACE_KEEP_LAST: buffers wrap */
    uint32_t nbufs;             /* workers + 1: the last is "outside" */
    char *env_path;             /* WEFT_TRACE: written when rt is freed */
    weft__trace_buf bufs[];
} weft__tracer;

extern _Atomic unsigned weft__tracers;

/* Rule 3: an event in and out of its slot, a word at a time. */
static inline void weft__trace_slot_store(weft__trace_slot *slot, const weft__trace_ev *e)
{
    uint64_t w[WEFT__TRACE_WORDS];
    memcpy(w, e, sizeof w);
    for (size_t i = 0; i < WEFT__TRACE_WORDS; i++)
        atomic_store_explicit(&slot->w[i], w[i], memory_order_relaxed);
}

static inline void weft__trace_slot_load(weft__trace_slot *slot, weft__trace_ev *e)
{
    uint64_t w[WEFT__TRACE_WORDS];
    for (size_t i = 0; i < WEFT__TRACE_WORDS; i++)
        w[i] = atomic_load_explicit(&slot->w[i], memory_order_relaxed);
    memcpy(e, w, sizeof w);
}

/* Rule 1: the hot paths' test. */
static inline bool weft__tracing(weft_runtime *rt)
{
    if (__builtin_expect(atomic_load_explicit(&weft__tracers, memory_order_relaxed) == 0, 1))
        return false;
    return atomic_load_explicit(&rt->tracer, memory_order_relaxed) != NULL;
}

/* ---- out of line (trace.c) ------------------------------------------------ */

weft_poll weft__trace_poll_slow(weft_worker *w, weft__task *t, struct weft_cx *cx);
void weft__trace_task_slow(weft__task *t, enum weft__trace_kind kind, int32_t c);
void weft__trace_io_slow(weft_runtime *rt, enum weft__trace_kind kind, const weft__op *op,
                         int32_t res);
void weft__trace_timer_slow(weft_runtime *rt, unsigned timer_kind);
void weft__trace_park_slow(weft_worker *w, uint64_t from, uint64_t to);
void weft__trace_cancel_slow(weft_runtime *rt, const weft_trace_event *ev);
/* weft_runtime_new: WEFT_TRACE, WEFT_TRACE_EVENTS and WEFT_TRACE_KEEP
 * (weft/trace.h). */
int weft__trace_from_env(weft_runtime *rt);
/* rt_free, workers stopped: write the WEFT_TRACE file, free the tracer. */
void weft__trace_free(weft_runtime *rt);

/* ---- the hot paths' one line each ----------------------------------------- */

/* harness.c: poll t, recording the poll as a span. */
static inline weft_poll weft__trace_poll(weft_worker *w, weft__task *t, struct weft_cx *cx)
{
    if (weft__tracing(t->rt))
        return weft__trace_poll_slow(w, t, cx);
    return t->poll(cx, weft__task_frame(t));
}

/* task.c, runtime.c, cancel.c: t is woken, spawned, or asked to cancel. */
static inline void weft__trace_task(weft__task *t, enum weft__trace_kind kind, int32_t c)
{
    if (weft__tracing(t->rt))
        weft__trace_task_slow(t, kind, c);
}

/* worker.c: w stole t from worker `victim`. */
static inline void weft__trace_steal(weft_worker *w, uint32_t victim, weft__task *t)
{
    if (weft__tracing(w->rt))
        weft__trace_task_slow(t, WEFT__TR_STEAL, (int32_t)victim);
}

/* op.c: an operation of d's ring was submitted, or completed with res. */
static inline void weft__trace_io(weft__driver *d, enum weft__trace_kind kind,
                                  const weft__op *op, int32_t res)
{
    if (weft__tracing(d->rt))
        weft__trace_io_slow(d->rt, kind, op, res);
}

/* driver.c: a timer of d's wheels fired. */
static inline void weft__trace_timer(weft__driver *d, unsigned timer_kind)
{
    if (weft__tracing(d->rt))
        weft__trace_timer_slow(d->rt, timer_kind);
}

/* worker.c: w parked from `from` to `to` (its driver's clock). */
static inline void weft__trace_park(weft_worker *w, uint64_t from, uint64_t to)
{
    if (weft__tracing(w->rt))
        weft__trace_park_slow(w, from, to);
}

#endif /* WEFT_RUNTIME_TRACE_H */
