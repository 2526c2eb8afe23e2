/*
 * tests/stress/stress_queue.c - the local run queue under concurrency: one
 * owner pushes (overflowing into the inject queue now and then) and pops,
 * while thieves steal from it and from each other and pop what they took.
 * Every item must be consumed exactly once.
 *
 * Items are recycled from a pool of fake tasks; item k lives in slot
 * k % POOL and carries k in `value`. A slot's generation counts how often it
 * was consumed: consuming item k must move it from k / POOL to k / POOL + 1
 * (a CAS), so a duplicate or a stale copy is caught, and the owner only reuses
 * a slot once its previous item was consumed, so a lost item hangs the run
 * (the watchdog turns that into a failure).
 *
 * Usage: stress-queue [--items N] [--thieves K] [--timeout S]
 */
#include <pthread.h>
#include <sched.h>

#include "runtime/inject.h"
#include "runtime/queue.h"
#include "runtime/task.h"
#include "stress_util.h"

#define POOL 2048u

static weft__task *pool;
static _Atomic uint32_t gen[POOL];
static _Atomic uint64_t consumed;
static uint64_t n_items;
static unsigned n_queues;           /* queue 0 is the owner's */
static weft__local_queue *queues;
static weft__inject inj;
static _Atomic uint64_t steals, overflows, refused;

static void consume(weft__task *t, unsigned who)
{
    uint64_t k = (uint64_t)t->value;
    uint32_t slot = (uint32_t)(k % POOL), expect = (uint32_t)(k / POOL);
    CHECK(k < n_items, "consumer %u: item %lu out of range", who, (unsigned long)k);
    /* Release: the owner reusing the slot sees our read of `value`. */
    uint32_t cur = expect;
    bool ok = atomic_compare_exchange_strong_explicit(&gen[slot], &cur, expect + 1,
                                                      memory_order_release,
                                                      memory_order_relaxed);
    CHECK(ok, "consumer %u: item %lu consumed twice or out of turn (gen %u, want %u)", who,
          (unsigned long)k, cur, expect);
    atomic_fetch_add_explicit(&consumed, 1, memory_order_relaxed);
}

static bool done(void)
{
    return atomic_load_explicit(&consumed, memory_order_relaxed) >= n_items
        || atomic_load(&stress_failures) > 0;
}

static bool pop_one(unsigned me)
{
    weft__task *t = weft__local_pop(&queues[me]);
    if (t) {
        consume(t, me);
        return true;
    }
    return false;
}

static bool pop_inject(unsigned me)
{
    weft__task *t = weft__inject_pop(&inj);
    if (t) {
        consume(t, me);
        return true;
    }
    return false;
}

static void *owner(void *arg)
{
    (void)arg;
    uint32_t seed = 12345;
    uint64_t k = 0;
    while (k < n_items && !done()) {
        /* A burst: mostly small, sometimes big enough to overflow. */
        uint32_t r = rnd(&seed);
        uint32_t burst = (r & 31) == 0 ? 300 + r % 200 : 1 + r % 24;
        for (uint32_t b = 0; b < burst && k < n_items; b++, k++) {
            uint32_t slot = (uint32_t)(k % POOL), want = (uint32_t)(k / POOL);
            /* Wait for the slot's previous item; consume meanwhile so our own
             * queue cannot hold the item we wait for. */
            while (atomic_load_explicit(&gen[slot], memory_order_acquire) != want) {
                if (done())
                    return NULL;
                if (!pop_one(0) && !pop_inject(0))
                    sched_yield();
            }
            weft__task *t = &pool[slot];
            t->value = (int64_t)k;
            weft__push_outcome o = weft__local_push(&queues[0], t, &inj);
            if (o != WEFT__PUSH_LOCAL)
                atomic_fetch_add_explicit(&overflows, 1, memory_order_relaxed);
        }
        uint32_t pops = rnd(&seed) % 16;
        for (uint32_t p = 0; p < pops; p++)
            if (!pop_one(0))
                break;
    }
    while (!done()) {
        if (!pop_one(0) && !pop_inject(0))
            sched_yield();
    }
    return NULL;
}

static void *thief(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    uint32_t seed = 777 * me + 1;
    while (!done()) {
        bool progress = false;
        /* Mostly the owner, sometimes another thief. */
        unsigned victim = (rnd(&seed) % 4) ? 0 : rnd(&seed) % n_queues;
        if (victim != me) {
            bool room = weft__local_has_steal_room(&queues[me]);
            weft__task *t = weft__local_steal(&queues[victim], &queues[me]);
            if (t) {
                atomic_fetch_add_explicit(&steals, 1, memory_order_relaxed);
                consume(t, me);
                progress = true;
            } else if (!room) {
                atomic_fetch_add_explicit(&refused, 1, memory_order_relaxed);
            }
        }
        /* Pop some of what we hold; leave the rest to be stolen from us. */
        uint32_t pops = rnd(&seed) % 10;
        for (uint32_t p = 0; p < pops; p++) {
            if (!pop_one(me))
                break;
            progress = true;
        }
        if (rnd(&seed) % 8 == 0)
            progress |= pop_inject(me);
        if (!progress)
            sched_yield();
    }
    /* Leave our queue empty. */
    while (pop_one(me))
        ;
    return NULL;
}

int main(int argc, char **argv)
{
    n_items = (uint64_t)arg_long(argc, argv, "--items", 2000000);
    unsigned thieves = (unsigned)arg_long(argc, argv, "--thieves", 3);
    watchdog((unsigned)arg_long(argc, argv, "--timeout", 300));
    if (thieves < 1 || thieves > 64 || n_items == 0) {
        fprintf(stderr, "bad arguments\n");
        return 1;
    }
    n_queues = thieves + 1;
    pool = calloc(POOL, sizeof *pool);
    queues = aligned_alloc(64, n_queues * sizeof *queues);
    if (!pool || !queues)
        return 77;
    for (unsigned i = 0; i < n_queues; i++)
        weft__local_init(&queues[i]);
    weft__inject_init(&inj);

    pthread_t th[65];
    pthread_create(&th[0], NULL, owner, NULL);
    for (unsigned i = 1; i <= thieves; i++)
        pthread_create(&th[i], NULL, thief, (void *)(uintptr_t)i);
    for (unsigned i = 0; i <= thieves; i++)
        pthread_join(th[i], NULL);

    /* Everything was consumed once, and nothing is left anywhere. */
    CHECK(atomic_load(&consumed) == n_items, "consumed %lu of %lu",
          (unsigned long)atomic_load(&consumed), (unsigned long)n_items);
    uint64_t total = 0;
    for (uint32_t s = 0; s < POOL; s++)
        total += atomic_load(&gen[s]);
    CHECK(total == n_items, "generations add up to %lu, not %lu", (unsigned long)total,
          (unsigned long)n_items);
    for (uint64_t k = n_items > POOL ? n_items - POOL : 0; k < n_items; k++)
        CHECK(atomic_load(&gen[k % POOL]) == k / POOL + 1, "item %lu not consumed",
              (unsigned long)k);
    for (unsigned i = 0; i < n_queues; i++)
        CHECK(weft__local_len(&queues[i]) == 0, "queue %u holds %u", i,
              weft__local_len(&queues[i]));
    CHECK(weft__inject_len(&inj) == 0, "inject holds %zu", weft__inject_len(&inj));
    fprintf(stderr, "stress-queue: %lu items, %u thieves, %lu steals, %lu overflows, "
                    "%lu refused steals\n",
            (unsigned long)n_items, thieves, (unsigned long)atomic_load(&steals),
            (unsigned long)atomic_load(&overflows), (unsigned long)atomic_load(&refused));
    free(queues);
    free(pool);
    return stress_result("stress-queue");
}
