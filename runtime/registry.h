/*
 * runtime/registry.h - every live task, so that shutdown can find tasks that
 * are waiting on something that will never happen.
 *
 * Sharded intrusive lists (one shard per worker plus one for outside threads),
 * each under its own mutex; a task stays in the shard it was spawned into. The
 * registry holds one task reference from insertion until removal at completion.
 * Once closed, insertion fails: the check and the close both happen under the
 * shard lock, so a task is either refused or seen by the shutdown sweep.
 *
 * Lock order: a shard lock is taken before the inject and idle locks, never
 * after.
 */
#ifndef WEFT_RUNTIME_REGISTRY_H
#define WEFT_RUNTIME_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct weft__task;

typedef struct weft__registry_shard {
    _Alignas(64) pthread_mutex_t lock;
    struct weft__task *head;
    bool closed;
} weft__registry_shard;

typedef struct weft__registry {
    weft__registry_shard *shards;
    uint32_t nshards;
    _Atomic size_t live;
} weft__registry;

int weft__registry_init(weft__registry *r, uint32_t nshards);
void weft__registry_destroy(weft__registry *r);

/* -ESHUTDOWN once closed. */
int weft__registry_insert(weft__registry *r, struct weft__task *t, uint32_t shard);
void weft__registry_remove(weft__registry *r, struct weft__task *t);
void weft__registry_close(weft__registry *r);

/* Call fn on every live task, under its shard lock (fn must not block or take
 * a shard lock). */
void weft__registry_for_each(weft__registry *r, void (*fn)(struct weft__task *, void *),
                             void *arg);

static inline size_t weft__registry_live(const weft__registry *r)
{
    return atomic_load_explicit(&r->live, memory_order_acquire);
}

#endif /* WEFT_RUNTIME_REGISTRY_H */
