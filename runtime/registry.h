/*
 * runtime/registry.h - every live task, so that shutdown can find tasks that
 * wait on something that will never happen.
 *
 * One shard per worker plus one for tasks spawned from outside threads. The
 * registry holds one reference to each task from insertion until it unlinks
 * the task as it completes. A shard is an array of slots, out of the tasks'
 * headers: each holds a task or the index of the next free slot, so insert
 * and unlink are a few stores and a task carries only its slot's index.
 * The array is made of page-sized chunks that never move; it grows a chunk
 * at a time and never shrinks: it stays as large as the shard's peak of
 * live tasks (8 bytes each).
 *
 * Who touches what:
 *   1. A worker shard's list and counters belong to its worker: it inserts the
 *      tasks it spawns and unlinks them without a lock.
 *   2. A task that completes on another thread is not unlinked there: it is
 *      pushed (lock-free, through task->queue_next, which a complete task no
 *      longer uses) onto its shard's `handed_back` stack, and the owner unlinks
 *      it at its next tick or its next spawn, whichever comes first. The owner also frees it, on the thread whose
 *      allocator cache it came from.
 *   3. The outside shard is guarded by its spinlock. A worker shard's lock
 *      guards only its chunk array's growth, against a reader walking the
 *      shard from another thread (weft__registry_walk); the slots and
 *      `used` are atomics (relaxed, published with release), so such a
 *      reader sees each slot hold a whole task pointer or a free mark. The
 *      tasks it finds stay allocated while it reads them: runtime/dump.h.
 *   4. Closing: the outside shard is closed by the shutdown thread; each worker
 *      closes its own shard when it sees the runtime closing. After a shard is
 *      closed, insertion into it fails with -ESHUTDOWN. Once the workers have
 *      stopped, the shutdown thread acts as the owner of every shard.
 */
#ifndef WEFT_RUNTIME_REGISTRY_H
#define WEFT_RUNTIME_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/spinlock.h"

struct weft__task;

typedef struct weft__registry_shard {
    _Alignas(64) _Atomic uintptr_t **chunks;    /* slots: a task, or (next free << 1) | 1 */
    uint32_t nchunks, chunks_cap;
    _Atomic uint32_t used;          /* slots [0, used) were handed out */
    uint32_t free_head;             /* UINT32_MAX: no free slot below used */
    bool closed;
    _Atomic size_t inserted;        /* written by the owner only (relaxed) */
    _Atomic size_t removed;         /* written by the owner only (relaxed) */
    weft__spinlock lock;            /* rule 3 */
    _Alignas(64) struct weft__task *_Atomic handed_back;
} weft__registry_shard;

typedef struct weft__registry {
    weft__registry_shard *shards;   /* [0, nworkers): workers; [nworkers]: outside */
    uint32_t nworkers;
} weft__registry;

typedef void (*weft__registry_fn)(struct weft__task *t, void *arg);

int weft__registry_init(weft__registry *r, uint32_t nworkers);
void weft__registry_destroy(weft__registry *r);

/* worker: the calling worker's index, or -1 from outside. -ESHUTDOWN once the
 * shard is closed, -ENOMEM when its array could not grow. */
int weft__registry_insert(weft__registry *r, struct weft__task *t, int worker);

/* A task about to complete on `worker` (-1: on no worker): if the caller
 * may take it out of the registry itself (it owns the task's shard, or the
 * shard is the outside one), unlink it now and return true; the registry's
 * reference is then the caller's to drop, after a read-modify-write on the
 * state word as runtime/dump.h requires. Else return false: once complete,
 * the task goes back to its owner (weft__registry_hand_back). */
bool weft__registry_unlink_own(weft__registry *r, struct weft__task *t, int worker);

/* A complete task of a shard another worker owns: push it on that shard's
 * hand-back stack with the registry's reference, for the owner to unlink and
 * drop (rule 2). That reference keeps the task alive until the owner has
 * popped it, so the caller may have dropped its own already. Returns the
 * owner's index: the caller must make sure that worker is not asleep (it
 * cannot drain). */
uint32_t weft__registry_hand_back(weft__registry *r, struct weft__task *t);

/* Owner: unlink and release the tasks handed back to this shard. */
void weft__registry_drain(weft__registry *r, uint32_t shard);

static inline bool weft__registry_has_handed_back(weft__registry *r, uint32_t shard)
{
    /* Seq_cst: pairs with the owner's sleep registration (idle.h, rule 4). */
    return atomic_load_explicit(&r->shards[shard].handed_back, memory_order_seq_cst) != NULL;
}

/* Close a shard (a worker's own, or the outside one with shard == nworkers)
 * and call fn on each task in it. */
void weft__registry_close(weft__registry *r, uint32_t shard, weft__registry_fn fn, void *arg);

/* Shutdown thread, workers stopped: call fn on every task in every shard. fn
 * must not release tasks (collect them and act afterwards). */
void weft__registry_for_each_stopped(weft__registry *r, weft__registry_fn fn, void *arg);

/* Any thread, inside a dump (runtime/dump.h): call fn on each task in the
 * shard, under its lock. fn must not take a shard lock. */
void weft__registry_walk(weft__registry *r, uint32_t shard, weft__registry_fn fn, void *arg);

/* Tasks ever inserted into / released from the registry. */
size_t weft__registry_inserted(const weft__registry *r);
size_t weft__registry_removed(const weft__registry *r);

/* Tasks inserted and not yet released (exact once the workers have stopped). */
size_t weft__registry_live(const weft__registry *r);

#endif /* WEFT_RUNTIME_REGISTRY_H */
