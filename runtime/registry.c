/*
 * runtime/registry.c - the live-task registry (ownership rules in registry.h).
 *
 * Counters are written only by a shard's owner (or under the outside shard's
 * lock) and read by anyone: live = sum(inserted - removed), exact only when
 * nothing runs concurrently, which is when shutdown needs it exact.
 */
#include "runtime/registry.h"

#include <errno.h>

#include "runtime/alloc.h"
#include "runtime/task.h"

int weft__registry_init(weft__registry *r, uint32_t nworkers)
{
    r->nworkers = nworkers;
    r->shards = weft__calloc((nworkers + 1) * sizeof *r->shards);
    if (!r->shards)
        return -ENOMEM;
    for (uint32_t i = 0; i <= nworkers; i++) {
        atomic_init(&r->shards[i].inserted, 0);
        atomic_init(&r->shards[i].removed, 0);
        atomic_init(&r->shards[i].handed_back, NULL);
        weft__spin_init(&r->shards[i].lock);
    }
    return 0;
}

void weft__registry_destroy(weft__registry *r)
{
    weft__free(r->shards, (r->nworkers + 1) * sizeof *r->shards);
    r->shards = NULL;
}

static inline void bump(_Atomic size_t *counter)
{
    /* Single writer: a relaxed load and store, no RMW. */
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void link(weft__registry_shard *s, weft__task *t)
{
    t->reg_prev = NULL;
    t->reg_next = s->head;
    if (s->head)
        s->head->reg_prev = t;
    s->head = t;
    bump(&s->inserted);
}

static void unlink_task(weft__registry_shard *s, weft__task *t)
{
    if (t->reg_prev)
        t->reg_prev->reg_next = t->reg_next;
    else
        s->head = t->reg_next;
    if (t->reg_next)
        t->reg_next->reg_prev = t->reg_prev;
    bump(&s->removed);
}

int weft__registry_insert(weft__registry *r, weft__task *t, int worker)
{
    uint32_t idx = worker < 0 ? r->nworkers : (uint32_t)worker;
    weft__registry_shard *s = &r->shards[idx];
    t->reg_shard = (uint16_t)idx;
    if (worker >= 0) {
        if (s->closed)
            return -ESHUTDOWN;
        /* A task that spawns in a loop keeps its worker from reaching the
         * tick that drains: drain here too, so completed tasks are freed
         * (and their memory reused) while the loop runs. */
        if (weft__registry_has_handed_back(r, idx))
            weft__registry_drain(r, idx);
        link(s, t);
        return 0;
    }
    int rc = 0;
    weft__spin_lock(&s->lock);
    if (s->closed)
        rc = -ESHUTDOWN;
    else
        link(s, t);
    weft__spin_unlock(&s->lock);
    return rc;
}

int weft__registry_release(weft__registry *r, weft__task *t, int worker)
{
    weft__registry_shard *s = &r->shards[t->reg_shard];
    if (t->reg_shard == r->nworkers) {
        weft__spin_lock(&s->lock);
        unlink_task(s, t);
        weft__spin_unlock(&s->lock);
        weft__task_unref(t);
        return -1;
    }
    if ((int)t->reg_shard == worker) {
        unlink_task(s, t);
        weft__task_unref(t);
        return -1;
    }
    /* Seq_cst (not only release, so the owner that pops t sees its
     * completion): the caller next reads whether the owner sleeps, and the
     * owner publishes its sleep before rereading this stack. */
    uint32_t owner = t->reg_shard;
    weft__task *head = atomic_load_explicit(&s->handed_back, memory_order_relaxed);
    do {
        t->queue_next = head;
    } while (!atomic_compare_exchange_weak_explicit(&s->handed_back, &head, t,
                                                    memory_order_seq_cst,
                                                    memory_order_relaxed));
    return (int)owner;
}

void weft__registry_drain(weft__registry *r, uint32_t shard)
{
    weft__registry_shard *s = &r->shards[shard];
    /* Acquire: pairs with the release push; taking the whole stack at once
     * means the pop side never races with another pop (no ABA). */
    weft__task *t = atomic_exchange_explicit(&s->handed_back, NULL, memory_order_acquire);
    while (t) {
        weft__task *next = t->queue_next;
        unlink_task(s, t);
        weft__task_unref(t);
        t = next;
    }
}

void weft__registry_close(weft__registry *r, uint32_t shard, weft__registry_fn fn, void *arg)
{
    weft__registry_shard *s = &r->shards[shard];
    bool outside = shard == r->nworkers;
    if (outside)
        weft__spin_lock(&s->lock);
    s->closed = true;
    for (weft__task *t = s->head; t; t = t->reg_next)
        fn(t, arg);
    if (outside)
        weft__spin_unlock(&s->lock);
}

void weft__registry_for_each_stopped(weft__registry *r, weft__registry_fn fn, void *arg)
{
    for (uint32_t i = 0; i <= r->nworkers; i++) {
        weft__registry_shard *s = &r->shards[i];
        weft__spin_lock(&s->lock);  /* outside threads may still race an insert */
        for (weft__task *t = s->head; t; t = t->reg_next)
            fn(t, arg);
        weft__spin_unlock(&s->lock);
    }
}

size_t weft__registry_live(const weft__registry *r)
{
    size_t live = 0;
    for (uint32_t i = 0; i <= r->nworkers; i++) {
        const weft__registry_shard *s = &r->shards[i];
        /* removed first: it never exceeds an inserted read after it. */
        size_t removed = atomic_load_explicit(&s->removed, memory_order_acquire);
        live += atomic_load_explicit(&s->inserted, memory_order_acquire) - removed;
    }
    return live;
}
