/*
 * runtime/registry.c - the live-task registry (ownership rules in registry.h).
 *
 * Counters are written only by a shard's owner (or under the outside shard's
 * lock) and read by anyone: live = sum(inserted - removed), exact only when
 * nothing runs concurrently, which is when shutdown needs it exact.
 *
 * A free slot holds (index of the next free slot << 1) | 1: task pointers are
 * aligned, so the low bit tells the two apart, and the free list needs no
 * memory of its own. Freed slots are reused before new ones, so the live
 * tasks stay packed in the first chunks.
 */
#include "runtime/registry.h"

#include <errno.h>
#include <string.h>

#include "runtime/alloc.h"
#include "runtime/task.h"

#define NO_SLOT UINT32_MAX
/* A chunk is a page of slots: allocated once, never moved or freed before the
 * registry, so a shard's peak costs a page per 512 tasks and no copy. */
#define CHUNK_SHIFT 9
#define CHUNK_SLOTS ((uint32_t)1 << CHUNK_SHIFT)
#define MAX_CHUNKS ((uint32_t)1 << (32 - CHUNK_SHIFT))

int weft__registry_init(weft__registry *r, uint32_t nworkers)
{
    r->nworkers = nworkers;
    r->shards = weft__calloc((nworkers + 1) * sizeof *r->shards);
    if (!r->shards)
        return -ENOMEM;
    for (uint32_t i = 0; i <= nworkers; i++) {
        r->shards[i].free_head = NO_SLOT;
        atomic_init(&r->shards[i].used, 0);
        atomic_init(&r->shards[i].inserted, 0);
        atomic_init(&r->shards[i].removed, 0);
        atomic_init(&r->shards[i].handed_back, NULL);
        weft__spin_init(&r->shards[i].lock);
    }
    return 0;
}

void weft__registry_destroy(weft__registry *r)
{
    for (uint32_t i = 0; i <= r->nworkers; i++) {
        weft__registry_shard *s = &r->shards[i];
        for (uint32_t c = 0; c < s->nchunks; c++)
            weft__free(s->chunks[c], CHUNK_SLOTS * sizeof *s->chunks[c]);
        weft__free(s->chunks, s->chunks_cap * sizeof *s->chunks);
    }
    weft__free(r->shards, (r->nworkers + 1) * sizeof *r->shards);
    r->shards = NULL;
}

static inline void bump(_Atomic size_t *counter)
{
    /* Single writer: a relaxed load and store, no RMW. */
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static inline bool slot_is_free(uintptr_t v) { return v & 1; }
static inline uintptr_t free_slot(uint32_t next) { return ((uintptr_t)next << 1) | 1; }

static inline _Atomic uintptr_t *slot_at(weft__registry_shard *s, uint32_t i)
{
    return &s->chunks[i >> CHUNK_SHIFT][i & (CHUNK_SLOTS - 1)];
}

/* Rule 3: relaxed, or release where a reader on another thread must see the
 * task it points to initialised. */
static inline uintptr_t slot_get(weft__registry_shard *s, uint32_t i)
{
    return atomic_load_explicit(slot_at(s, i), memory_order_acquire);
}

static inline void slot_set(weft__registry_shard *s, uint32_t i, uintptr_t v)
{
    atomic_store_explicit(slot_at(s, i), v, memory_order_release);
}

/* One more chunk: the chunk array doubles when full (a pointer per
 * CHUNK_SLOTS tasks), the slots already handed out never move. Under the
 * shard's lock (rule 3): a walker reads the array. */
static int grow_locked(weft__registry_shard *s)
{
    if (s->nchunks == s->chunks_cap) {
        if (s->chunks_cap >= MAX_CHUNKS / 2)
            return -ENOMEM;
        uint32_t cap = s->chunks_cap ? s->chunks_cap * 2 : 4;
        _Atomic uintptr_t **chunks = weft__alloc(cap * sizeof *chunks);
        if (!chunks)
            return -ENOMEM;
        if (s->nchunks)
            memcpy(chunks, s->chunks, s->nchunks * sizeof *chunks);
        weft__free(s->chunks, s->chunks_cap * sizeof *s->chunks);
        s->chunks = chunks;
        s->chunks_cap = cap;
    }
    _Atomic uintptr_t *chunk = weft__alloc(CHUNK_SLOTS * sizeof *chunk);
    if (!chunk)
        return -ENOMEM;
    s->chunks[s->nchunks++] = chunk;
    return 0;
}

static int grow(weft__registry_shard *s, bool locked)
{
    if (locked)
        return grow_locked(s);
    weft__spin_lock(&s->lock);
    int rc = grow_locked(s);
    weft__spin_unlock(&s->lock);
    return rc;
}

/* locked: the caller holds the shard's lock (the outside shard). */
static int link(weft__registry_shard *s, weft__task *t, bool locked)
{
    uint32_t slot = s->free_head;
    t->reg_slot = slot;
    if (slot != NO_SLOT) {
        uintptr_t next = atomic_load_explicit(slot_at(s, slot), memory_order_relaxed);
        s->free_head = (uint32_t)(next >> 1);
        slot_set(s, slot, (uintptr_t)t);
    } else {
        uint32_t used = atomic_load_explicit(&s->used, memory_order_relaxed);
        if (used == s->nchunks * CHUNK_SLOTS && grow(s, locked) != 0)
            return -ENOMEM;
        t->reg_slot = used;
        slot_set(s, used, (uintptr_t)t);
        /* Release: a walker that sees the slot handed out sees it set. */
        atomic_store_explicit(&s->used, used + 1, memory_order_release);
    }
    bump(&s->inserted);
    return 0;
}

static void unlink_task(weft__registry_shard *s, weft__task *t)
{
    atomic_store_explicit(slot_at(s, t->reg_slot), free_slot(s->free_head),
                          memory_order_relaxed);
    s->free_head = t->reg_slot;
    bump(&s->removed);
}

static void for_each(weft__registry_shard *s, weft__registry_fn fn, void *arg)
{
    uint32_t used = atomic_load_explicit(&s->used, memory_order_acquire);
    for (uint32_t i = 0; i < used; i++) {
        uintptr_t v = slot_get(s, i);
        if (!slot_is_free(v))
            fn((weft__task *)v, arg);
    }
}

int weft__registry_insert(weft__registry *r, weft__task *t, int worker)
{
    uint32_t idx = worker < 0 ? r->nworkers : (uint32_t)worker;
    weft__registry_shard *s = &r->shards[idx];
    weft__state_set_shard(&t->state, idx);
    if (worker >= 0) {
        if (s->closed)
            return -ESHUTDOWN;
        /* A task that spawns in a loop keeps its worker from reaching the
         * tick that drains. Drain here too, but only once the free slots
         * are used up: the hand-back stack's line is written by the workers
         * that complete our tasks, so reading it on every spawn would pull
         * it across cores each time. Read before taking a new slot instead:
         * what waits is bounded by the free slots, so the shard's memory
         * never grows past its peak of live tasks for want of a drain. */
        if (s->free_head == NO_SLOT && weft__registry_has_handed_back(r, idx))
            weft__registry_drain(r, idx);
        return link(s, t, false);
    }
    weft__spin_lock(&s->lock);
    int rc = s->closed ? -ESHUTDOWN : link(s, t, true);
    weft__spin_unlock(&s->lock);
    return rc;
}

bool weft__registry_unlink_own(weft__registry *r, weft__task *t, int worker)
{
    uint32_t owner = weft__state_shard(atomic_load_explicit(&t->state, memory_order_relaxed));
    weft__registry_shard *s = &r->shards[owner];
    if (owner == r->nworkers) {
        weft__spin_lock(&s->lock);
        unlink_task(s, t);
        weft__spin_unlock(&s->lock);
        return true;
    }
    if ((int)owner != worker)
        return false;
    unlink_task(s, t);
    return true;
}

uint32_t weft__registry_hand_back(weft__registry *r, weft__task *t)
{
    uint32_t owner = weft__state_shard(atomic_load_explicit(&t->state, memory_order_relaxed));
    weft__registry_shard *s = &r->shards[owner];
    /* Seq_cst (not only release, so the owner that pops t sees its
     * completion): the caller next reads whether the owner sleeps, and the
     * owner publishes its sleep before rereading this stack. */
    weft__task *head = atomic_load_explicit(&s->handed_back, memory_order_relaxed);
    do {
        t->queue_next = head;
    } while (!atomic_compare_exchange_weak_explicit(&s->handed_back, &head, t,
                                                    memory_order_seq_cst,
                                                    memory_order_relaxed));
    return owner;
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
    for_each(s, fn, arg);
    if (outside)
        weft__spin_unlock(&s->lock);
}

void weft__registry_for_each_stopped(weft__registry *r, weft__registry_fn fn, void *arg)
{
    for (uint32_t i = 0; i <= r->nworkers; i++) {
        weft__registry_shard *s = &r->shards[i];
        weft__spin_lock(&s->lock);  /* outside threads may still race an insert */
        for_each(s, fn, arg);
        weft__spin_unlock(&s->lock);
    }
}

void weft__registry_walk(weft__registry *r, uint32_t shard, weft__registry_fn fn, void *arg)
{
    weft__registry_shard *s = &r->shards[shard];
    weft__spin_lock(&s->lock);
    for_each(s, fn, arg);
    weft__spin_unlock(&s->lock);
}

static size_t sum(const weft__registry *r, size_t offset)
{
    size_t n = 0;
    for (uint32_t i = 0; i <= r->nworkers; i++)
        n += atomic_load_explicit((_Atomic size_t *)((char *)&r->shards[i] + offset),
                                  memory_order_relaxed);
    return n;
}

size_t weft__registry_inserted(const weft__registry *r)
{
    return sum(r, offsetof(weft__registry_shard, inserted));
}

size_t weft__registry_removed(const weft__registry *r)
{
    return sum(r, offsetof(weft__registry_shard, removed));
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
