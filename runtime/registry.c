/*
 * runtime/registry.c - the live-task registry (see registry.h).
 */
#include "runtime/registry.h"

#include <errno.h>

#include "runtime/alloc.h"
#include "runtime/task.h"

int weft__registry_init(weft__registry *r, uint32_t nshards)
{
    r->nshards = nshards;
    atomic_init(&r->live, 0);
    r->shards = weft__calloc(nshards * sizeof *r->shards);
    if (!r->shards)
        return -ENOMEM;
    for (uint32_t i = 0; i < nshards; i++) {
        int rc = pthread_mutex_init(&r->shards[i].lock, NULL);
        if (rc) {
            while (i-- > 0)
                pthread_mutex_destroy(&r->shards[i].lock);
            weft__free(r->shards, nshards * sizeof *r->shards);
            r->shards = NULL;
            return -rc;
        }
    }
    return 0;
}

void weft__registry_destroy(weft__registry *r)
{
    if (!r->shards)
        return;
    for (uint32_t i = 0; i < r->nshards; i++)
        pthread_mutex_destroy(&r->shards[i].lock);
    weft__free(r->shards, r->nshards * sizeof *r->shards);
    r->shards = NULL;
}

int weft__registry_insert(weft__registry *r, weft__task *t, uint32_t shard)
{
    weft__registry_shard *s = &r->shards[shard % r->nshards];
    pthread_mutex_lock(&s->lock);
    if (s->closed) {
        pthread_mutex_unlock(&s->lock);
        return -ESHUTDOWN;
    }
    t->reg_shard = shard % r->nshards;
    t->reg_prev = NULL;
    t->reg_next = s->head;
    if (s->head)
        s->head->reg_prev = t;
    s->head = t;
    atomic_fetch_add_explicit(&r->live, 1, memory_order_relaxed);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void weft__registry_remove(weft__registry *r, weft__task *t)
{
    weft__registry_shard *s = &r->shards[t->reg_shard];
    pthread_mutex_lock(&s->lock);
    if (t->reg_prev)
        t->reg_prev->reg_next = t->reg_next;
    else
        s->head = t->reg_next;
    if (t->reg_next)
        t->reg_next->reg_prev = t->reg_prev;
    t->reg_prev = t->reg_next = NULL;
    /* Release: the shutdown thread that sees live reach 0 sees the task's
     * completion, including its drop hook. */
    atomic_fetch_sub_explicit(&r->live, 1, memory_order_release);
    pthread_mutex_unlock(&s->lock);
}

void weft__registry_close(weft__registry *r)
{
    for (uint32_t i = 0; i < r->nshards; i++) {
        pthread_mutex_lock(&r->shards[i].lock);
        r->shards[i].closed = true;
        pthread_mutex_unlock(&r->shards[i].lock);
    }
}

void weft__registry_for_each(weft__registry *r, void (*fn)(weft__task *, void *), void *arg)
{
    for (uint32_t i = 0; i < r->nshards; i++) {
        pthread_mutex_lock(&r->shards[i].lock);
        for (weft__task *t = r->shards[i].head; t; t = t->reg_next)
            fn(t, arg);
        pthread_mutex_unlock(&r->shards[i].lock);
    }
}
