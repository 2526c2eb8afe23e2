/*
 * runtime/dump.c - the task dump of weft/observe.h: every live task of a
 * runtime, read from any thread while the runtime runs.
 *
 * A dump walks each registry shard under its lock (registry.h, rule 3) and
 * copies what it reads of each task into the caller's array, inside the
 * announcement of runtime/dump.h, so no task it finds can be freed before it
 * has finished reading. What it reads is atomic (the state word, the await
 * site, the shield depth, the last poll time) or fixed at spawn (name,
 * layout, spawn time, group): a snapshot per task, never a torn value.
 *
 * Invariants:
 *   1. `weft__dump_readers` moves only under `dump_lock`, and so does the
 *      list of tasks kept for the dumps (`kept`): a task is queued there
 *      only while a dump is announced, and the last dump to leave takes the
 *      whole list, so every kept task is freed exactly once.
 *   2. A walk calls nothing that could free a task or take a shard lock.
 */
#include "runtime/dump.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>

#include "runtime/alloc.h"
#include "runtime/rt.h"
#include "runtime/task.h"
#include "weft/observe.h"

_Alignas(64) _Atomic unsigned weft__dump_readers;
static pthread_mutex_t dump_lock = PTHREAD_MUTEX_INITIALIZER;
static weft__task *kept;        /* through queue_next: no queue holds them */

bool weft__dump_defer(weft__task *t)
{
    pthread_mutex_lock(&dump_lock);
    bool keep = atomic_load_explicit(&weft__dump_readers, memory_order_relaxed) > 0;
    if (keep) {
        t->queue_next = kept;
        kept = t;
    }
    pthread_mutex_unlock(&dump_lock);
    return keep;
}

static void dump_enter(void)
{
    pthread_mutex_lock(&dump_lock);
    /* Seq_cst: ordered before the slot reads that follow (dump.h, rule 1). */
    atomic_fetch_add_explicit(&weft__dump_readers, 1, memory_order_seq_cst);
    /* The store-load pair with a freer's fence and load: C11 orders the
     * increment before our later slot loads only through a fence of ours
     * (free on x86, where the RMW is one already). */
    atomic_thread_fence(memory_order_seq_cst);
    pthread_mutex_unlock(&dump_lock);
}

static void dump_leave(void)
{
    weft__task *t = NULL;
    pthread_mutex_lock(&dump_lock);
    if (atomic_fetch_sub_explicit(&weft__dump_readers, 1, memory_order_seq_cst) == 1) {
        t = kept;
        kept = NULL;
    }
    pthread_mutex_unlock(&dump_lock);
    while (t) {
        weft__task *next = t->queue_next;
        weft__task_free_now(t);
        t = next;
    }
}

struct walk {
    weft_task_info *out;
    size_t cap, found;
    uint64_t now;
    unsigned shard;
};

static weft_task_run_state run_state(uint64_t s)
{
    if (s & WEFT__RUNNING)
        return WEFT_TASK_RUNNING;
    return (s & WEFT__NOTIFIED) ? WEFT_TASK_QUEUED : WEFT_TASK_SUSPENDED;
}

static uint64_t since(uint64_t now, uint64_t then)
{
    if (then == 0)
        return WEFT_TIME_UNKNOWN;
    return now > then ? now - then : 0;
}

static void describe(weft__task *t, void *arg)
{
    struct walk *w = arg;
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    if (s & WEFT__COMPLETE)
        return;     /* finished, waiting for its shard owner to unlink it */
    if (w->found++ >= w->cap)
        return;
    bool requested = s & WEFT__CANCEL_REQUESTED;
    weft_task_info info = {
        .id = (uintptr_t)t,
        .name = weft__task_name(t),
        .state = run_state(s),
        .suspended_at = weft__task_site(t),
        .age_ns = WEFT_TIME_UNKNOWN,
        .since_poll_ns = WEFT_TIME_UNKNOWN,
        .cancel_requested = requested,
        .cancel_source = requested ? (weft_cancel_source)weft__state_source(s) : WEFT_CANCEL_NONE,
        .shield_depth = weft__task_shield_depth(t),
        .shard = w->shard,
    };
    weft__task_times *tm = weft__task_times_of(t);
    if (tm) {
        info.age_ns = since(w->now, tm->spawned_ns);
        info.since_poll_ns = since(w->now, atomic_load_explicit(&tm->polled_ns,
                                                               memory_order_relaxed));
        info.group = tm->group;
    }
    w->out[w->found - 1] = info;
}

int weft_task_dump(weft_runtime *rt, weft_task_info *tasks, size_t cap)
{
    if (!rt || (!tasks && cap > 0))
        return -EINVAL;
    struct walk w = { .out = tasks, .cap = cap, .now = weft__coarse_ns() };
    dump_enter();
    for (uint32_t i = 0; i <= rt->nworkers; i++) {
        w.shard = i;
        weft__registry_walk(&rt->registry, i, describe, &w);
    }
    dump_leave();
    return w.found > INT32_MAX ? INT32_MAX : (int)w.found;
}

static const char *state_name(weft_task_run_state s)
{
    switch (s) {
    case WEFT_TASK_QUEUED: return "queued";
    case WEFT_TASK_RUNNING: return "running";
    case WEFT_TASK_SUSPENDED: return "suspended";
    }
    return "?";
}

/* Whole milliseconds: the times come from the coarse clock (task.h). */
static void print_ms(FILE *out, const char *label, uint64_t ns)
{
    if (ns != WEFT_TIME_UNKNOWN)
        fprintf(out, " %s=%" PRIu64 "ms", label, ns / 1000000);
}

static void print_task(FILE *out, const weft_task_info *t, unsigned workers)
{
    fprintf(out, "task %#" PRIxPTR " %s %s", t->id, t->name ? t->name : "-",
            state_name(t->state));
    if (t->suspended_at)
        fprintf(out, " at %s:%d (%s)", t->suspended_at->file, t->suspended_at->line,
                t->suspended_at->func);
    print_ms(out, "age", t->age_ns);
    print_ms(out, "idle", t->since_poll_ns);
    if (t->cancel_requested)
        fprintf(out, " cancel=%s", weft_cancel_source_name(t->cancel_source));
    if (t->shield_depth == WEFT__SHIELD_STUCK)
        fputs(" shield=always", out);
    else if (t->shield_depth)
        fprintf(out, " shield=%u", t->shield_depth);
    if (t->group)
        fprintf(out, " group=%#" PRIxPTR, t->group);
    if (t->shard < workers)
        fprintf(out, " worker=%u\n", t->shard);
    else
        fputs(" outside\n", out);
}

int weft_task_dump_print(weft_runtime *rt, FILE *out)
{
    if (!rt || !out)
        return -EINVAL;
    /* The count moves while we allocate: ask again until it fits. */
    size_t cap = 0;
    weft_task_info *tasks = NULL;
    int n;
    while ((n = weft_task_dump(rt, tasks, cap)) >= 0 && (size_t)n > cap) {
        weft__free(tasks, cap * sizeof *tasks);
        cap = (size_t)n + n / 4 + 16;
        tasks = weft__alloc(cap * sizeof *tasks);
        if (!tasks)
            return -ENOMEM;
    }
    fprintf(out, "weft: %d live tasks\n", n);
    for (int i = 0; i < n; i++)
        print_task(out, &tasks[i], rt->nworkers);
    weft__free(tasks, cap * sizeof *tasks);
    return ferror(out) ? -EIO : n;
}
