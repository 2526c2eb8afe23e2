/*
 * runtime/metrics.c - reading the counters of runtime/metrics.h into the
 * snapshot of weft/observe.h, and printing it.
 *
 * A snapshot is relaxed reads of counters that keep moving: each value is
 * one its worker really had, the set is not one instant. The runtime-wide
 * task counts come from the registry (spawned = inserted, completed =
 * released), which counts them per shard already, so spawning pays nothing
 * more for them.
 */
#include "runtime/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>

#include "runtime/alloc.h"
#include "runtime/rt.h"
#include "runtime/worker.h"
#include "weft/observe.h"

void weft__count_steal(weft__worker_metrics *m, struct weft__task *got, uint32_t queued_now)
{
    weft__count(&m->steal_attempts, 1);
    if (!got)
        return;
    weft__count(&m->steals, 1);
    weft__count(&m->stolen_tasks, (uint64_t)queued_now + 1);
}

void weft__count_cancelled(weft__task *t)
{
    weft_runtime *rt = t->rt;
    int source = weft__state_source(atomic_load_explicit(&t->state, memory_order_relaxed));
    weft_worker *w = weft__current_worker;
    if (w && w->rt == rt)
        weft__count(&w->metrics.cancelled[source], 1);
    else
        atomic_fetch_add_explicit(&rt->cancelled_off_worker[source], 1, memory_order_relaxed);
}

/* Rules 5 and 6: `taken` was read before this call reads `unpolled`. */
static uint64_t polls_since_start(weft__worker_metrics *m, uint64_t taken)
{
    /* Acquire: the takes' loads stay before this one on any CPU. */
    atomic_thread_fence(memory_order_acquire);
    uint64_t unpolled = weft__counter_read(&m->unpolled);
    uint64_t polls = taken > unpolled ? taken - unpolled : 0;
    uint64_t floor = atomic_load_explicit(&m->polls_reported, memory_order_relaxed);
    while (polls > floor
           && !atomic_compare_exchange_weak_explicit(&m->polls_reported, &floor, polls,
                                                     memory_order_relaxed,
                                                     memory_order_relaxed))
        ;
    return polls > floor ? polls : floor;
}

static void read_worker(weft_worker *w, weft_worker_metrics *out)
{
    weft__worker_metrics *m = &w->metrics;
    *out = (weft_worker_metrics){
        .lifo_runs = weft__counter_read(&m->lifo_runs),
        .local_runs = weft__counter_read(&m->local_runs),
        .inject_runs = weft__counter_read(&m->inject_runs),
        .steal_attempts = weft__counter_read(&m->steal_attempts),
        .steals = weft__counter_read(&m->steals),
        .stolen_tasks = weft__counter_read(&m->stolen_tasks),
        .parks = weft__counter_read(&m->parks),
        .unparks = weft__counter_read(&m->unparks),
        .parked_ns = weft__counter_read(&m->parked_ns),
        .budget_yields = weft__counter_read(&m->budget_yields),
        .timers_armed = weft__counter_read(&m->timers_armed),
        .timers_fired = weft__counter_read(&m->timers_fired)
                      + weft__counter_read(&m->sleeps_fired),
        .io_submitted = weft__counter_read(&m->io_submitted),
        .io_completed = weft__counter_read(&m->io_completed),
        .io_withdrawn = weft__counter_read(&m->io_withdrawn),
        .local_depth = weft__local_len(&w->queue) + (uint32_t)weft__inject_len(&w->spill),
        .overflow_depth = (uint32_t)weft__counter_read(&m->overflow_depth),
    };
    out->polls = polls_since_start(m, out->lifo_runs + out->local_runs + out->inject_runs
                                          + out->steals);
}

static void read_runtime(weft_runtime *rt, weft_metrics *m)
{
    *m = (weft_metrics){ .workers = rt->nworkers };
    /* Removed first, so that live never reads negative. */
    m->completed = weft__registry_removed(&rt->registry);
    m->spawned = weft__registry_inserted(&rt->registry);
    m->live_tasks = m->spawned > m->completed ? m->spawned - m->completed : 0;
    for (int s = 0; s < WEFT__SOURCES; s++) {
        m->cancelled[s] = atomic_load_explicit(&rt->cancelled_off_worker[s],
                                               memory_order_relaxed);
        for (uint32_t i = 0; i < rt->nworkers; i++)
            m->cancelled[s] += weft__counter_read(&rt->workers[i].metrics.cancelled[s]);
    }
    weft__blocking_stats(rt, &m->blocking_threads, &m->blocking_idle, &m->blocking_queued);
}

int weft_metrics_read(weft_runtime *rt, weft_metrics *m, weft_worker_metrics *workers,
                      size_t nworkers)
{
    if (!rt || !m || (!workers && nworkers > 0))
        return -EINVAL;
    read_runtime(rt, m);
    for (size_t i = 0; i < nworkers && i < rt->nworkers; i++)
        read_worker(&rt->workers[i], &workers[i]);
    return (int)rt->nworkers;
}

static void print_worker(FILE *out, unsigned i, const weft_worker_metrics *w)
{
    const uint64_t v[] = {
        w->polls, w->lifo_runs, w->local_runs, w->inject_runs, w->steals, w->steal_attempts,
        w->stolen_tasks, w->parks, w->unparks, w->budget_yields, w->timers_armed,
        w->timers_fired, w->io_submitted, w->io_completed, w->io_withdrawn,
    };
    fprintf(out, "%3u", i);
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
        fprintf(out, " %9" PRIu64, v[k]);
    fprintf(out, " %9.3f %9u %9u\n", w->parked_ns / 1e9, w->local_depth, w->overflow_depth);
}

int weft_metrics_print(weft_runtime *rt, FILE *out)
{
    if (!rt || !out)
        return -EINVAL;
    size_t n = rt->nworkers;
    weft_worker_metrics *w = weft__alloc(n * sizeof *w);
    if (!w)
        return -ENOMEM;
    weft_metrics m;
    weft_metrics_read(rt, &m, w, n);
    fprintf(out,
            "weft: %" PRIu64 " live tasks, %" PRIu64 " spawned, %" PRIu64 " completed;"
            " cancelled: abort %" PRIu64 " token %" PRIu64 " timeout %" PRIu64
            " group %" PRIu64 " shutdown %" PRIu64 "; blocking pool: %u threads"
            " (%u idle), %zu queued\n",
            m.live_tasks, m.spawned, m.completed, m.cancelled[WEFT_CANCEL_ABORT],
            m.cancelled[WEFT_CANCEL_TOKEN], m.cancelled[WEFT_CANCEL_TIMEOUT],
            m.cancelled[WEFT_CANCEL_GROUP], m.cancelled[WEFT_CANCEL_SHUTDOWN],
            m.blocking_threads, m.blocking_idle, m.blocking_queued);
    static const char *const head[] = {
        "polls", "lifo", "local", "inject", "steals", "tries", "stolen", "parks", "unparks",
        "budget", "armed", "fired", "io_sub", "io_done", "io_wdrawn", "parked_s", "queue",
        "overflow",
    };
    fputs("  w", out);
    for (size_t k = 0; k < sizeof head / sizeof head[0]; k++)
        fprintf(out, " %9s", head[k]);
    fputc('\n', out);
    for (size_t i = 0; i < n; i++)
        print_worker(out, (unsigned)i, &w[i]);
    weft__free(w, n * sizeof *w);
    return ferror(out) ? -EIO : 0;
}
