/*
 * runtime/idle.h - which workers are searching for work and which are asleep.
 *
 * One atomic word counts searching workers (low 16 bits) and unparked workers
 * (high 16 bits); the list of sleepers lives under a mutex. Rules:
 *   1. At most half the workers search at once (2 * searching < workers).
 *   2. A sleeper is woken only when nobody is searching: a searcher will find
 *      the new work itself. The woken worker starts out searching.
 *   3. When the last searcher finds work it wakes one more (gradual ramp-up);
 *      when the last searcher parks it rechecks every queue first.
 *   4. No lost wake-up: a producer publishes work (seq_cst) and then reads the
 *      idle word (seq_cst); a worker going to sleep updates the idle word
 *      (seq_cst) and then rechecks for work. One of them sees the other. A
 *      push onto a local queue that already held work may skip both: the
 *      work already there was published that way, so a worker that went to
 *      sleep since found the queue non-empty (worker.c, schedule_local).
 *   5. A watcher is a sleeper that saw another worker's queue and left it
 *      there (worker.c, worth_stealing), and will look again on its own
 *      within one watch interval. While one watches, a worker pushing on
 *      its own local queue wakes nobody: whoever it would wake would find
 *      the same queue and leave it too. Work for anyone (the inject queue,
 *      or a local queue now at least half full, which a thief takes at
 *      once) still wakes a sleeper by rules 2 and 4. `watchers` pairs like
 *      the idle word: the pusher publishes, fences and reads it; a watcher
 *      stops watching (seq_cst) before it looks at the queues again.
 */
#ifndef WEFT_RUNTIME_IDLE_H
#define WEFT_RUNTIME_IDLE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct weft__idle {
    _Alignas(64) _Atomic uint32_t state;
    _Atomic uint32_t watchers;      /* rule 5; on the same line as state */
    uint32_t num_workers;
    pthread_mutex_t lock;
    uint32_t nsleepers;
    uint32_t *sleepers;             /* worker indices, under lock */
    _Atomic bool *is_sleeper;       /* per worker; written under lock */
} weft__idle;

int weft__idle_init(weft__idle *idle, uint32_t num_workers);
void weft__idle_destroy(weft__idle *idle);

/* Rule 1. Returns true when the caller may search (and now counts as searching). */
bool weft__idle_try_search(weft__idle *idle);
/* Stop searching; true when the caller was the last searcher. */
bool weft__idle_stop_search(weft__idle *idle);
/* Go to sleep list; true when the caller was the last searcher. */
bool weft__idle_to_parked(weft__idle *idle, uint32_t worker, bool searching);
/* Rule 2: pick a sleeper to wake (marked unparked and searching); -1 for none. */
int weft__idle_worker_to_notify(weft__idle *idle);
/* The same for work pushed on the caller's own local queue: also -1 while
 * someone watches (rule 5). */
int weft__idle_worker_to_notify_local(weft__idle *idle);
/* Rule 5: start (+1) or stop (-1) watching; seq_cst. */
void weft__idle_watch(weft__idle *idle, int delta);
/* Take `worker` off the sleep list by itself (it found work); true if it was
 * still listed, false if a notifier had already taken it (then it searches). */
bool weft__idle_unpark_self(weft__idle *idle, uint32_t worker);
/* Take every sleeper off the list (shutdown); calls wake(arg, index) for each. */
void weft__idle_wake_all(weft__idle *idle, void (*wake)(void *arg, uint32_t worker), void *arg);

static inline bool weft__idle_is_sleeper(weft__idle *idle, uint32_t worker)
{
    /* Seq_cst: pairs with the awake flag of the ring park (reactor/ring.h). */
    return atomic_load_explicit(&idle->is_sleeper[worker], memory_order_seq_cst);
}

#endif /* WEFT_RUNTIME_IDLE_H */
