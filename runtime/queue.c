/*
 * runtime/queue.c - the local run queue (see queue.h for its invariants).
 *
 * Slots are atomics accessed relaxed: the happens-before edges come from the
 * release store of tail (push -> stealers) and from the acq_rel CAS on head
 * (claiming slots). Making the slots atomic keeps TSan exact without costing an
 * instruction on x86.
 */
#include "runtime/queue.h"

#include <assert.h>

#include "runtime/inject.h"
#include "runtime/task.h"

static inline uint32_t head_real(uint64_t h) { return (uint32_t)h; }
static inline uint32_t head_steal(uint64_t h) { return (uint32_t)(h >> 32); }
static inline uint64_t pack(uint32_t steal, uint32_t real)
{
    return ((uint64_t)steal << 32) | real;
}

static inline weft__task *slot_load(weft__local_queue *q, uint32_t i)
{
    return atomic_load_explicit(&q->buf[i & WEFT__LOCAL_MASK], memory_order_relaxed);
}

static inline void slot_store(weft__local_queue *q, uint32_t i, weft__task *t)
{
    atomic_store_explicit(&q->buf[i & WEFT__LOCAL_MASK], t, memory_order_relaxed);
}

void weft__local_init(weft__local_queue *q)
{
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    for (uint32_t i = 0; i < WEFT__LOCAL_CAPACITY; i++)
        atomic_init(&q->buf[i], NULL);
}

uint32_t weft__local_len(const weft__local_queue *q)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    return t - head_real(h);
}

bool weft__local_has_steal_room(const weft__local_queue *q)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    return t - head_steal(h) <= WEFT__LOCAL_CAPACITY / 2;
}

/* Claim the oldest half of a full ring and send it, with t, to overflow. Fails
 * (returns false) when a thief moved head first; the caller retries the push. */
static bool push_overflow(weft__local_queue *q, weft__task *t, uint32_t real, uint32_t tail,
                          weft__inject *overflow)
{
    const uint32_t n = WEFT__LOCAL_CAPACITY / 2;
    assert(tail - real == WEFT__LOCAL_CAPACITY);
    uint64_t expected = pack(real, real);
    /* Release: thieves that later read these indices must not see our slots
     * reused before the CAS. Acquire pairs with thieves' head updates. */
    if (!atomic_compare_exchange_strong_explicit(&q->head, &expected, pack(real + n, real + n),
                                                 memory_order_acq_rel, memory_order_acquire))
        return false;
    weft__task *first = slot_load(q, real), *prev = first;
    for (uint32_t i = 1; i < n; i++) {
        weft__task *cur = slot_load(q, real + i);
        prev->queue_next = cur;
        prev = cur;
    }
    prev->queue_next = t;
    t->queue_next = NULL;
    weft__inject_push_batch(overflow, first, t, n + 1);
    return true;
}

weft__push_outcome weft__local_push(weft__local_queue *q, weft__task *t,
                                    weft__inject *overflow)
{
    for (;;) {
        /* Acquire: slots freed by consumers are ours to reuse only after we
         * see their head update. */
        uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire);
        uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
        if (tail - head_steal(h) < WEFT__LOCAL_CAPACITY) {
            slot_store(q, tail, t);
            /* Release: publishes the slot to consumers that acquire tail. */
            atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
            return WEFT__PUSH_LOCAL;
        }
        if (head_steal(h) != head_real(h)) {
            weft__inject_push(overflow, t);
            return WEFT__PUSH_INJECTED;
        }
        if (push_overflow(q, t, head_real(h), tail, overflow))
            return WEFT__PUSH_OVERFLOWED;
    }
}

weft__task *weft__local_pop(weft__local_queue *q)
{
    uint64_t h = atomic_load_explicit(&q->head, memory_order_acquire), next;
    uint32_t real;
    do {
        real = head_real(h);
        uint32_t steal = head_steal(h);
        if (real == atomic_load_explicit(&q->tail, memory_order_relaxed))
            return NULL;
        /* With no steal in progress both indices advance together. */
        next = steal == real ? pack(real + 1, real + 1) : pack(steal, real + 1);
    } while (!atomic_compare_exchange_weak_explicit(&q->head, &h, next, memory_order_acq_rel,
                                                    memory_order_acquire));
    return slot_load(q, real);
}

/* Claim half of src for a steal; returns how many, and the first index. */
static uint32_t steal_claim(weft__local_queue *src, uint32_t *first)
{
    uint64_t h = atomic_load_explicit(&src->head, memory_order_acquire), next;
    uint32_t n;
    do {
        uint32_t steal = head_steal(h), real = head_real(h);
        if (steal != real)
            return 0;   /* another thief is copying */
        /* Acquire: the slots below tail were written before its release. */
        uint32_t tail = atomic_load_explicit(&src->tail, memory_order_acquire);
        n = tail - real;
        n -= n / 2;
        if (n == 0)
            return 0;
        next = pack(steal, real + n);
    } while (!atomic_compare_exchange_weak_explicit(&src->head, &h, next, memory_order_acq_rel,
                                                    memory_order_acquire));
    *first = head_steal(next);
    return n;
}

/* Mark the steal finished: steal catches up with real (which the owner may
 * have advanced meanwhile). */
static void steal_finish(weft__local_queue *src)
{
    uint64_t h = atomic_load_explicit(&src->head, memory_order_acquire);
    while (!atomic_compare_exchange_weak_explicit(&src->head, &h,
                                                  pack(head_real(h), head_real(h)),
                                                  memory_order_acq_rel, memory_order_acquire))
        ;
}

weft__task *weft__local_steal(weft__local_queue *src, weft__local_queue *dst)
{
    if (!weft__local_has_steal_room(dst))
        return NULL;
    uint32_t first, n = steal_claim(src, &first);
    if (n == 0)
        return NULL;
    uint32_t dst_tail = atomic_load_explicit(&dst->tail, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++)
        slot_store(dst, dst_tail + i, slot_load(src, first + i));
    steal_finish(src);

    weft__task *ret = slot_load(dst, dst_tail + n - 1);
    if (n > 1) {
        /* Release: publishes the copied slots to anyone stealing from dst. */
        atomic_store_explicit(&dst->tail, dst_tail + n - 1, memory_order_release);
    }
    return ret;
}
