/*
 * runtime/idle.c - searching and sleeping workers (rules in idle.h).
 *
 * `state` is one half of the Dekker pairs with the inject length and the local
 * queues (rule 4). Workers change it with seq_cst RMWs, which cost only when
 * they change state. A producer, which runs on every wake, yield and spawn,
 * only reads it, after a seq_cst fence: a read-modify-write there would take
 * the line exclusive and move it between cores on every schedule, while
 * fence-then-load leaves it shared (tokio's notify_parked does the same).
 */
#include "runtime/idle.h"

#include <errno.h>
#include <stdlib.h>

#include "runtime/alloc.h"

#define SEARCH_ONE 1u
#define SEARCH_MASK 0xffffu
#define UNPARK_ONE (1u << 16)

static inline uint32_t searching(uint32_t s) { return s & SEARCH_MASK; }
static inline uint32_t unparked(uint32_t s) { return s >> 16; }

static void free_arrays(weft__idle *idle)
{
    weft__free(idle->sleepers, idle->num_workers * sizeof *idle->sleepers);
    weft__free(idle->is_sleeper, idle->num_workers * sizeof *idle->is_sleeper);
    idle->sleepers = NULL;
    idle->is_sleeper = NULL;
}

int weft__idle_init(weft__idle *idle, uint32_t num_workers)
{
    atomic_init(&idle->state, num_workers * UNPARK_ONE);
    atomic_init(&idle->watchers, 0);
    idle->num_workers = num_workers;
    idle->nsleepers = 0;
    idle->sleepers = weft__calloc(num_workers * sizeof *idle->sleepers);
    idle->is_sleeper = weft__calloc(num_workers * sizeof *idle->is_sleeper);
    int rc = (idle->sleepers && idle->is_sleeper) ? pthread_mutex_init(&idle->lock, NULL) : ENOMEM;
    if (rc) {
        free_arrays(idle);
        return -rc;
    }
    for (uint32_t i = 0; i < num_workers; i++)
        atomic_init(&idle->is_sleeper[i], false);
    return 0;
}

void weft__idle_destroy(weft__idle *idle)
{
    if (!idle->sleepers)
        return;
    free_arrays(idle);
    pthread_mutex_destroy(&idle->lock);
}

bool weft__idle_try_search(weft__idle *idle)
{
    uint32_t s = atomic_load_explicit(&idle->state, memory_order_seq_cst);
    /* Sloppy: two workers may both pass the check; the cap is a heuristic. */
    if (2 * searching(s) >= idle->num_workers)
        return false;
    atomic_fetch_add_explicit(&idle->state, SEARCH_ONE, memory_order_seq_cst);
    return true;
}

bool weft__idle_stop_search(weft__idle *idle)
{
    uint32_t prev = atomic_fetch_sub_explicit(&idle->state, SEARCH_ONE, memory_order_seq_cst);
    return searching(prev) == 1;
}

bool weft__idle_to_parked(weft__idle *idle, uint32_t worker, bool is_searching)
{
    pthread_mutex_lock(&idle->lock);
    uint32_t dec = UNPARK_ONE + (is_searching ? SEARCH_ONE : 0);
    uint32_t prev = atomic_fetch_sub_explicit(&idle->state, dec, memory_order_seq_cst);
    /* The parker's side of rule 4: its recheck of the queues (the caller's)
     * comes after this fence, the producer's read after its own. */
    atomic_thread_fence(memory_order_seq_cst);
    idle->sleepers[idle->nsleepers++] = worker;
    atomic_store_explicit(&idle->is_sleeper[worker], true, memory_order_seq_cst);
    pthread_mutex_unlock(&idle->lock);
    return is_searching && searching(prev) == 1;
}

static bool should_wake(weft__idle *idle)
{
    /* The local-queue push before this is only a release store; without the
     * fence the load could be ordered ahead of it (store-load), letting a
     * parking worker and this producer each miss the other. The fence pairs
     * with the one in weft__idle_to_parked. */
    atomic_thread_fence(memory_order_seq_cst);
    uint32_t s = atomic_load_explicit(&idle->state, memory_order_relaxed);
    return searching(s) == 0 && unparked(s) < idle->num_workers;
}

static int pick_sleeper(weft__idle *idle)
{
    pthread_mutex_lock(&idle->lock);
    int woken = -1;
    /* Recheck under the lock: another notifier may have woken someone. */
    if (should_wake(idle) && idle->nsleepers > 0) {
        woken = (int)idle->sleepers[--idle->nsleepers];
        atomic_fetch_add_explicit(&idle->state, UNPARK_ONE + SEARCH_ONE, memory_order_seq_cst);
        atomic_store_explicit(&idle->is_sleeper[woken], false, memory_order_seq_cst);
    }
    pthread_mutex_unlock(&idle->lock);
    return woken;
}

int weft__idle_worker_to_notify(weft__idle *idle)
{
    return should_wake(idle) ? pick_sleeper(idle) : -1;
}

int weft__idle_worker_to_notify_local(weft__idle *idle)
{
    /* should_wake's fence orders our push before this load too (rule 5). */
    if (!should_wake(idle) || atomic_load_explicit(&idle->watchers, memory_order_relaxed) > 0)
        return -1;
    return pick_sleeper(idle);
}

void weft__idle_watch(weft__idle *idle, int delta)
{
    if (delta > 0)
        atomic_fetch_add_explicit(&idle->watchers, 1, memory_order_seq_cst);
    else
        atomic_fetch_sub_explicit(&idle->watchers, 1, memory_order_seq_cst);
}

static bool remove_sleeper(weft__idle *idle, uint32_t worker)
{
    for (uint32_t i = 0; i < idle->nsleepers; i++) {
        if (idle->sleepers[i] == worker) {
            idle->sleepers[i] = idle->sleepers[--idle->nsleepers];
            atomic_store_explicit(&idle->is_sleeper[worker], false, memory_order_seq_cst);
            return true;
        }
    }
    return false;
}

bool weft__idle_unpark_self(weft__idle *idle, uint32_t worker)
{
    pthread_mutex_lock(&idle->lock);
    bool listed = remove_sleeper(idle, worker);
    if (listed)
        atomic_fetch_add_explicit(&idle->state, UNPARK_ONE, memory_order_seq_cst);
    pthread_mutex_unlock(&idle->lock);
    return listed;
}

void weft__idle_wake_all(weft__idle *idle, void (*wake)(void *arg, uint32_t worker), void *arg)
{
    pthread_mutex_lock(&idle->lock);
    while (idle->nsleepers > 0) {
        uint32_t w = idle->sleepers[--idle->nsleepers];
        /* Counted as searching, like any notified sleeper: the woken worker
         * finds itself unlisted and leaves park as a searcher, and will take
         * one off the search count. */
        atomic_fetch_add_explicit(&idle->state, UNPARK_ONE + SEARCH_ONE, memory_order_seq_cst);
        atomic_store_explicit(&idle->is_sleeper[w], false, memory_order_seq_cst);
        wake(arg, w);
    }
    pthread_mutex_unlock(&idle->lock);
}
