/*
 * runtime/worker.c - the worker run loop: pick a task (LIFO slot, local queue,
 * spill, inject queue; the inject queue or the spill first every
 * `global_queue_interval` ticks), steal when empty, spin while spinning
 * pays, park in the ring when there is nothing anywhere.
 *
 * Invariants:
 *   1. A task reaches a queue only with its notified reference; the worker that
 *      pops it passes that reference to the harness.
 *   2. The LIFO slot runs at most MAX_LIFO_POLLS tasks per run_task; after that
 *      it is disabled until the next one, so two tasks waking each other cannot
 *      starve the queue.
 *   3. A worker counts as searching from the moment it may steal until it runs
 *      a task or parks; the last searcher to find work wakes one more (idle.h).
 *   4. A simulated worker (runtime/sim.h) makes the same choices through the
 *      same functions, one poll per weft__worker_sim_pick; only the ring is
 *      left to the simulator, and a worker that finds nothing stops
 *      searching where a real one would park. So the real loop carries no
 *      test for "simulated" at all, with one exception: worth_stealing's
 *      gate is judged in time, and virtual time moves only to timer
 *      deadlines, so under it a simulated thief would almost never steal; it
 *      takes whatever it finds, so the simulator keeps exploring steals.
 *      (Spinning, watching and the pace.h measurements belong to parking,
 *      which a simulated worker never does.)
 *   5. Every duration the loop acts on is measured (pace.h: a park's CPU
 *      cost, idle gaps) or is WATCH_INTERVAL_NS, the timer lateness; the
 *      only other numbers are counts (MAX_LIFO_POLLS, EVENT_INTERVAL,
 *      PULL_BATCH_MAX, the half-full queue).
 *   6. A thief that leaves work in a victim's queue watches it (idle.h, rule
 *      5): it parks at most until the gate would open, WATCH_INTERVAL_NS
 *      after its first look at that queue, and looks again, so no queue is
 *      left behind a stuck poll for longer than that after a thief saw it
 *      while another worker sleeps.
 *   7. A task that yielded, or spent its budget, waits in the worker's
 *      yielded list, not the local queue, until the worker finds nothing else
 *      to run; then the worker reaps its ring, fires its due timers, takes a
 *      batch from the inject queue, and only then requeues the yielded tasks
 *      behind all that, as many as the local queue has room for (the rest
 *      keep their turn in the list). Otherwise tasks that yield in a loop
 *      keep the local queue full, and a task woken from another thread (the
 *      inject queue) or by I/O waits up to global_queue_interval polls of
 *      theirs. On a worker whose queue never runs dry, the list also goes
 *      to the back of the queue once its head's turn has come: after as
 *      many ticks as there were tasks in the queue and spill when the head
 *      started waiting (`yielded_due`), or a yielded task would wait as
 *      long as the queue stays busy; and then as when the queue runs dry,
 *      behind the ring, the timers and a batch of the inject queue. Not
 *      sooner, on a fixed interval (as tokio wakes its deferred tasks at
 *      each maintenance): that keeps a worker whose tasks all yield from
 *      ever running dry, and cost yield_many a third of its throughput on
 *      two workers. A yield costs one CAS on the task's state (RUNNING to
 *      NOTIFIED after the poll), not a wake during the poll and then a
 *      transition to idle.
 *   8. What overflows the local queue (half of it, when full) goes to the
 *      worker's own spill, not to the inject queue. The owner takes from
 *      its spill when its queue runs dry and on alternate fairness ticks;
 *      another worker only as a thief that finds the owner's backlog (queue
 *      plus spill) worth stealing, and then from the spill first. Tasks
 *      that overflowed into a queue every worker takes from freely moved
 *      between workers, away from the tasks they talk to (ping_pong: 1,000
 *      pairs keep ~500 tasks runnable per worker). Idle workers still get
 *      the surplus: an overflow leaves the queue half full, which the steal
 *      gate takes at once, and a parking worker counts spills as pending
 *      work.
 */
#include "runtime/worker.h"

#include <sched.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>

#include "reactor/driver.h"
#include "runtime/alloc.h"
#include "runtime/harness.h"
#include "runtime/rt.h"
#include "runtime/task.h"
#include "runtime/trace.h"

#define MAX_LIFO_POLLS 3
#define EVENT_INTERVAL 61
/* A pull from the inject queue takes its fair share (len / workers + 1),
 * one from a spill what is there, but at most half the local queue, as
 * tokio does: a full local queue would push half of itself straight back
 * to the spill on the next overflow, so taking more only moves tasks
 * twice. */
#define PULL_BATCH_MAX (WEFT__LOCAL_CAPACITY / 2)
/* How long a worker that left work in another worker's queue may sleep
 * before it looks again (idle.h, rule 5), and so the time scale of the steal
 * gate: a victim is stuck when it starts no new chain for this long, and
 * its backlog is worth moving when it would last longer than this. It is
 * the lateness weft allows a due timer while a worker is stuck (1 ms), so
 * a timer on a stuck worker and a task queued behind it wait about as
 * long; a watching worker pays one park per interval for it. */
#define WATCH_INTERVAL_NS 1000000u

__thread weft_worker *weft__current_worker;

static uint32_t rng_next(weft_worker *w)
{
    /* xorshift64*: cheap, good enough to pick a steal victim. */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return (uint32_t)((w->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static void unpark_worker(weft_worker *sleeper)
{
    /* When the work showed up, for the sleeper's idle gap (pace.h). */
    atomic_store_explicit(&sleeper->unparked_at, weft__driver_now(&sleeper->driver),
                          memory_order_relaxed);
    weft__driver_unpark(&sleeper->driver);
}

void weft__notify_parked(weft_runtime *rt)
{
    int i = weft__idle_worker_to_notify(&rt->idle);
    if (i >= 0)
        unpark_worker(&rt->workers[i]);
}

/* Invariant 8: what overflows the local queue goes to our spill. */
static weft__push_outcome push_back(weft_worker *w, weft__task *t)
{
    return weft__local_push(&w->queue, t, &w->spill);
}

/* Work went on our own queue, which now holds `len` tasks: wake a sleeper
 * unless one watches it already (idle.h, rule 5). A queue at least half
 * full, or one that overflowed to our spill (which leaves it half full), is
 * anyone's: a watcher would take it at its next look (worth_stealing), so
 * it should not wait for that look. */
static void notify_after_push(weft_worker *w, weft__push_outcome how, uint32_t len)
{
    weft_runtime *rt = w->rt;
    bool ours = how == WEFT__PUSH_LOCAL && len < WEFT__LOCAL_CAPACITY / 2;
    int i = ours ? weft__idle_worker_to_notify_local(&rt->idle)
                 : weft__idle_worker_to_notify(&rt->idle);
    if (i >= 0)
        unpark_worker(&rt->workers[i]);
}

static void schedule_local(weft_worker *w, weft__task *t, bool is_yield)
{
    if (!is_yield && w->lifo_enabled) {
        weft__task *prev = w->lifo;
        w->lifo = t;
        if (!prev)
            return;     /* nothing displaced: this worker runs it next */
        t = prev;
    }
    weft__push_outcome how = push_back(w, t);
    /* A queue that held work already had its wake-up decided when it got
     * that work (idle.h, rules 2-4: a searcher that parks rechecks it), so
     * only a push that makes it non-empty, or half full, needs the fence and
     * the look at the idle word. */
    uint32_t len = weft__local_len(&w->queue);
    if (how != WEFT__PUSH_LOCAL || len == 1 || len == WEFT__LOCAL_CAPACITY / 2)
        notify_after_push(w, how, len);
}

/* Invariant 7: the tick by which everything queued ahead of a task that
 * starts waiting in the yielded list now has had a turn. */
static uint32_t turn_after_backlog(weft_worker *w)
{
    return w->tick + weft__local_len(&w->queue) + (uint32_t)weft__inject_len(&w->spill) + 1;
}

void weft__schedule_yielded(weft__task *t)
{
    weft_worker *w = weft__current_worker;
    if (!w || w->rt != t->rt) {
        weft__schedule(t, true);
        return;
    }
    t->queue_next = NULL;
    if (w->yielded_tail) {
        w->yielded_tail->queue_next = t;
    } else {
        w->yielded_head = t;
        w->yielded_due = turn_after_backlog(w);
    }
    w->yielded_tail = t;
}

void weft__schedule(weft__task *t, bool is_yield)
{
    weft_worker *w = weft__current_worker;
    if (w && w->rt == t->rt) {
        schedule_local(w, t, is_yield);
        return;
    }
    /* Once pushed, t may run and be freed at once: read rt first. */
    weft_runtime *rt = t->rt;
    weft__inject_push(&rt->inject, t);
    weft__notify_parked(rt);
}

/* Move up to `want` tasks from q (the inject queue or a spill) into our
 * local queue, as many as it has room for and at most PULL_BATCH_MAX;
 * returns the first, to run now. */
static weft__task *pull_batch(weft_worker *w, weft__inject *q, size_t want)
{
    size_t room = WEFT__LOCAL_CAPACITY - weft__local_len(&w->queue);
    if (want > room + 1)
        want = room + 1;
    if (want > PULL_BATCH_MAX)
        want = PULL_BATCH_MAX;
    size_t got;
    weft__task *first = weft__inject_pop_batch(q, want, &got);
    if (!first)
        return NULL;
    for (weft__task *t = first->queue_next, *next; t; t = next) {
        next = t->queue_next;
        push_back(w, t);
    }
    return first;
}

/* Our fair share of the inject queue (len / workers + 1). */
static weft__task *pull_inject(weft_worker *w)
{
    weft_runtime *rt = w->rt;
    size_t len = weft__inject_len(&rt->inject);
    if (len == 0)
        return NULL;
    return weft__count_run(&w->metrics.inject_runs,
                           pull_batch(w, &rt->inject, len / rt->nworkers + 1));
}

/* Invariant 8: our spill is all ours. */
static weft__task *pull_spill(weft_worker *w)
{
    size_t len = weft__inject_len(&w->spill);
    if (len == 0)
        return NULL;
    return weft__count_run(&w->metrics.local_runs, pull_batch(w, &w->spill, len));
}

/* Every global_queue_interval ticks: one task from the inject queue or our
 * spill, each first on alternate turns, so that neither waits for the local
 * queue to run dry, nor for the other to empty (invariant 8). */
static weft__task *fair_pick(weft_worker *w)
{
    weft_runtime *rt = w->rt;
    bool spill_first = (w->tick / rt->global_queue_interval) & 1;
    weft__task *t = NULL;
    if (spill_first)
        t = weft__count_run(&w->metrics.local_runs, weft__inject_pop(&w->spill));
    if (!t)
        t = weft__count_run(&w->metrics.inject_runs, weft__inject_pop(&rt->inject));
    if (!t && !spill_first)
        t = weft__count_run(&w->metrics.local_runs, weft__inject_pop(&w->spill));
    return t;
}

static weft__task *next_task(weft_worker *w)
{
    if (w->tick % w->rt->global_queue_interval == 0) {
        weft__task *t = fair_pick(w);
        if (t)
            return t;
    }
    if (w->lifo) {
        weft__task *t = w->lifo;
        w->lifo = NULL;
        return weft__count_run(&w->metrics.lifo_runs, t);
    }
    weft__task *t = weft__count_run(&w->metrics.local_runs, weft__local_pop(&w->queue));
    if (!t)
        t = pull_spill(w);
    return t ? t : pull_inject(w);
}

/* Move the yielded tasks to the back of the local queue, only as many as
 * fit: pushing more would overflow half the queue to our spill, under its
 * lock, only for this worker to pull it back. The rest keep their turn at
 * the head of the list. */
static weft__push_outcome requeue_yielded(weft_worker *w)
{
    uint32_t room = WEFT__LOCAL_CAPACITY - weft__local_len(&w->queue);
    weft__task *t = w->yielded_head;
    weft__push_outcome how = WEFT__PUSH_LOCAL;
    for (; t && room > 0; room--) {
        weft__task *next = t->queue_next;
        weft__push_outcome one = push_back(w, t);
        how = one == WEFT__PUSH_LOCAL ? how : one;
        t = next;
    }
    w->yielded_head = t;
    if (!t)
        w->yielded_tail = NULL;
    else
        w->yielded_due = turn_after_backlog(w);
    return how;
}

/* Invariant 7: the yielded tasks' turn (nothing else to run, or their turn
 * has come), after the ring, the due timers (`what`: the simulator reaps
 * and fires itself) and a batch of the inject queue. Returns the next task,
 * or NULL when none yielded. */
static weft__task *after_yields(weft_worker *w, enum weft__tick what)
{
    if (!w->yielded_head)
        return NULL;
    weft__driver_tick(&w->driver, what);
    weft__task *first = pull_inject(w);
    weft__push_outcome how = requeue_yielded(w);
    /* Wake a sleeper only for what waits behind the task we run next (or
     * went to the inject queue): a task that yields alone on this worker
     * would otherwise cost a wake-up per yield, of a worker that then finds
     * our queue empty. */
    weft__task *next = first ? first : next_task(w);
    uint32_t len = weft__local_len(&w->queue);
    if (how != WEFT__PUSH_LOCAL || len > 0)
        notify_after_push(w, how, len);
    return next;
}

/* A declined victim's gate opens WATCH_INTERVAL_NS after the record's
 * look if it makes no progress meanwhile (with progress, the next look
 * judges afresh): the park watches until the first gate opens, not for a
 * whole interval from whenever it starts, or a thief woken in between (by
 * its own timer) would put off a stuck victim's queue by up to twice the
 * interval. */
static void note_look_again(weft_worker *w, uint64_t when)
{
    if (w->look_again_at == 0 || when < w->look_again_at)
        w->look_again_at = when;
}

/* Is v's backlog (its queue and its spill) worth taking from? A steal
 * moves tasks to another core, and with them every line they share with
 * the tasks left behind: two tasks that talk through a channel or a mutex
 * cost several times more on two cores than on one. So take only what the victim would not soon run itself, judged on
 * the one time scale a thief that declines commits to, WATCH_INTERVAL_NS
 * (it looks again within that): the victim has started no new chain for
 * that long while holding a backlog (stuck in one poll), or its backlog, at
 * the pace it got through chains since our previous look, would last
 * longer; or the backlog is at least half a queue (the victim has more than
 * it can keep in its queue, or soon will).
 *
 * A record is kept only across looks that found the queue non-empty: "no
 * progress between two such looks" then means one chain ran all along,
 * however far apart the looks were, so no record goes stale. Declining
 * sets `look_again_at`, which makes the thief a watcher when it parks. */
static bool worth_stealing(weft_worker *w, uint32_t victim)
{
    weft_worker *v = &w->rt->workers[victim];
    weft__steal_seen *s = &w->steal_seen[victim % WEFT__STEAL_SEEN];
    size_t len = weft__local_len(&v->queue) + weft__inject_len(&v->spill);
    if (len == 0) {
        s->at = 0;
        return false;
    }
    if (len >= WEFT__LOCAL_CAPACITY / 2)
        return true;    /* filling up */
    if (w->driver.clock)
        return true;    /* simulated: invariant 4's exception */
    uint32_t progress = atomic_load_explicit(&v->progress, memory_order_relaxed);
    uint64_t now = weft__driver_now(&w->driver);
    uint32_t done = progress - s->progress;
    uint64_t elapsed = now - s->at;
    bool worth;
    if (s->at == 0)
        worth = false;  /* a first look only opens the record */
    else if (done == 0)
        worth = elapsed >= WATCH_INTERVAL_NS;
    else
        worth = (uint64_t)len * elapsed >= (uint64_t)done * WATCH_INTERVAL_NS;
    if (s->at == 0 || done != 0)
        *s = (weft__steal_seen){ .at = now, .progress = progress };
    if (!worth)
        note_look_again(w, s->at + WATCH_INTERVAL_NS);
    return worth;
}

/* Half of v's spill, up to PULL_BATCH_MAX (invariant 8): v reaches its
 * spill only after its queue, so these wait longest there. The older half,
 * in one piece, from the spill's head. */
static weft__task *steal_spill(weft_worker *w, weft_worker *v)
{
    size_t len = weft__inject_len(&v->spill);
    return len ? pull_batch(w, &v->spill, len - len / 2) : NULL;
}

static weft__task *steal_work(weft_worker *w)
{
    weft_runtime *rt = w->rt;
    if (!w->searching) {
        if (!weft__idle_try_search(&rt->idle))
            return NULL;
        w->searching = true;
    }
    uint32_t n = rt->nworkers, start = rng_next(w) % n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t victim = (start + i) % n;
        if (victim == w->index)
            continue;
        if (!worth_stealing(w, victim))
            continue;
        weft_worker *v = &rt->workers[victim];
        weft__task *t = steal_spill(w, v);
        if (!t)
            t = weft__local_steal(&v->queue, &w->queue);
        weft__count_steal(&w->metrics, t, weft__local_len(&w->queue));
        if (t) {
            weft__trace_steal(w, victim, t);
            return t;
        }
    }
    return pull_inject(w);
}

static void stop_searching(weft_worker *w)
{
    if (!w->searching)
        return;
    w->searching = false;
    if (weft__idle_stop_search(&w->rt->idle))
        weft__notify_parked(w->rt);     /* rule 3: ramp up one more */
}

/* The next task of a run_task chain from the LIFO slot, or NULL when the chain
 * ends: the slot is empty, or invariant 2's cap sent its task to the queue. */
static weft__task *lifo_next(weft_worker *w, uint32_t *lifo_polls)
{
    weft__task *t = w->lifo;
    if (!t)
        return NULL;
    w->lifo = NULL;
    if ((*lifo_polls)++ < MAX_LIFO_POLLS)
        return weft__count_run(&w->metrics.lifo_runs, t);
    w->lifo_enabled = false;
    push_back(w, t);
    return NULL;
}

static void start_chain(weft_worker *w)
{
    if (__builtin_expect(weft__pace_is_idle(&w->pace), 0))
        weft__pace_work(&w->pace, weft__driver_now(&w->driver));
    atomic_store_explicit(&w->progress, w->tick, memory_order_relaxed);
    w->look_again_at = 0;
    stop_searching(w);
    w->lifo_enabled = true;
}

static void run_task(weft_worker *w, weft__task *t)
{
    start_chain(w);
    uint32_t lifo_polls = 0;
    do {
        /* A poll may not return for a while: whoever parked without our
         * new sleeps must wake for them (driver.h, rule 5). */
        if (__builtin_expect(w->driver.uncovered != 0, 0))
            weft__driver_cover_noted(&w->driver);
        weft__harness_poll(w, t);
    } while ((t = lifo_next(w, &lifo_polls)) != NULL);
}

/* Tasks in w's queue or spill, for anyone to look at. */
static bool has_backlog(weft_worker *w)
{
    return weft__local_len(&w->queue) > 0 || weft__inject_len(&w->spill) > 0;
}

static bool work_pending(weft_runtime *rt)
{
    if (weft__inject_len(&rt->inject) > 0)
        return true;
    for (uint32_t i = 0; i < rt->nworkers; i++)
        if (has_backlog(&rt->workers[i]))
            return true;
    return false;
}

/* Work the steal gate hands to any worker at once: the inject queue, or a
 * backlog of at least half a queue (what an overflow to a spill leaves). */
static bool work_for_anyone(weft_runtime *rt)
{
    if (weft__inject_len(&rt->inject) > 0)
        return true;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft_worker *v = &rt->workers[i];
        if (weft__local_len(&v->queue) + weft__inject_len(&v->spill) >= WEFT__LOCAL_CAPACITY / 2)
            return true;
    }
    return false;
}

static bool closing_unseen(weft_worker *w)
{
    return !w->shard_closed
        && atomic_load_explicit(&w->rt->phase, memory_order_relaxed) != WEFT__RT_RUNNING;
}

/* rt.h, CLOSING: close our registry shard and cancel what is in it. */
static void close_shard(weft_worker *w)
{
    weft__registry_close(&w->rt->registry, w->index, weft__task_request_shutdown, NULL);
    w->shard_closed = true;
    atomic_fetch_add_explicit(&w->rt->closed_shards, 1, memory_order_release);
}

static bool should_sleep(void *arg)
{
    weft_worker *w = arg;
    return weft__idle_is_sleeper(&w->rt->idle, w->index)
        && !atomic_load_explicit(&w->rt->stop, memory_order_seq_cst)
        && !closing_unseen(w)
        && !weft__registry_has_handed_back(&w->rt->registry, w->index)
        && !weft__driver_has_remote(&w->driver)
        && !weft__driver_retime_wanted(&w->driver);
}

/* ---- sleeps on other workers' wheels (driver.h, rules 4 and 5) ---- */

/* When the next sleep of an awake worker other than w is due: a parked one
 * wakes for its own. */
static uint64_t others_sleep_next(weft_worker *w)
{
    weft_runtime *rt = w->rt;
    uint64_t next = UINT64_MAX;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft__driver *d = &rt->workers[i].driver;
        if (i == w->index || weft__driver_wakes_at(d) != 0)
            continue;
        uint64_t due = weft__driver_sleep_next(d);
        next = due < next ? due : next;
    }
    return next;
}

/* Fire the due sleeps of the other workers' wheels: one stuck in a long
 * poll cannot, and a sleep should not wait for it. The woken tasks come
 * here (our LIFO slot and queue). Returns how many fired. */
static size_t fire_others_sleeps(weft_worker *w)
{
    weft_runtime *rt = w->rt;
    uint64_t now = 0;
    size_t fired = 0;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft__driver *d = &rt->workers[i].driver;
        if (i == w->index || weft__driver_sleep_next(d) == UINT64_MAX)
            continue;
        if (now == 0)
            now = weft__driver_now(&w->driver);
        fired += weft__driver_fire_sleeps(d, now);
    }
    return fired;
}

/* We are awake again with sleeps armed: a parked worker timed its park
 * without them (driver.h, rule 5), so they need covering before we poll. */
static void cover_own_sleeps(weft_worker *w)
{
    uint64_t due = weft__driver_sleep_next(&w->driver);
    if (due != UINT64_MAX)
        weft__driver_note_uncovered(&w->driver, due);
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One wait in the ring (at most max_ns, < 0: no cap), measured for pace.h:
 * its CPU cost (when pace.h samples this park and it slept: it took longer
 * than the CPU it used), and when the work that ended it showed up: a
 * notifier's stamp newer than the wait's start, or else (a completion, a
 * timer: nobody wrote the moment down) the time we got back. Returns that
 * time. */
static uint64_t park_once(weft_worker *w, int64_t max_ns)
{
    /* driver.h, rule 5: say we are parking, then read when the awake
     * workers' sleeps are due; a sleep armed after this retimes us. */
    weft__driver_park_begin(&w->driver);
    bool sample = weft__pace_sample_park(&w->pace);
    uint64_t parked_at = weft__driver_now(&w->driver), cpu = sample ? thread_cpu_ns() : 0;
    uint64_t others = others_sleep_next(w);
    if (others != UINT64_MAX) {
        int64_t until = others > parked_at ? (int64_t)(others - parked_at) : 0;
        if (max_ns < 0 || until < max_ns)
            max_ns = until;
    }
    weft__driver_park(&w->driver, max_ns, should_sleep, w);
    uint64_t back = weft__driver_now(&w->driver);
    weft__trace_park(w, parked_at, back);
    if (sample) {
        uint64_t used = thread_cpu_ns() - cpu;
        if (back - parked_at > used)
            weft__pace_park_cost(&w->pace, used);
    }
    uint64_t stamp = atomic_load_explicit(&w->unparked_at, memory_order_relaxed);
    w->work_seen = stamp >= parked_at && stamp <= back ? stamp : back;
    weft__count_park(&w->metrics, back - parked_at, stamp >= parked_at && stamp <= back);
    return back;
}

/* Leave the sleeper list by ourselves; a notifier that got there first
 * counted us as searching. */
static void unpark_self(weft_worker *w)
{
    if (!weft__idle_unpark_self(&w->rt->idle, w->index))
        w->searching = true;
}

/* Sleep until there is work. A worker that left work in another's queue
 * watches it (idle.h, rule 5): it sleeps at most until the steal gate would
 * open (`look_again_at`), then goes back to look, without ending its idle
 * period. */
static void park(weft_worker *w)
{
    weft_runtime *rt = w->rt;
    uint64_t watch_until = w->look_again_at;
    bool watch = watch_until != 0;
    w->look_again_at = 0;
    w->driver.uncovered = 0;    /* our park covers our own wheel (rule 5) */
    if (watch)
        weft__idle_watch(&rt->idle, +1);
    bool last_searcher = weft__idle_to_parked(&rt->idle, w->index, w->searching);
    w->searching = false;
    /* The queue we watch does not count: waking someone for it is what
     * watching is there to avoid. A backlog the gate takes at once does:
     * its overflow's notifier left it to us while we were searching. */
    if (last_searcher && (watch ? work_for_anyone(rt) : work_pending(rt)))
        weft__notify_parked(rt);
    bool found = false;
    for (;;) {
        int64_t left = -1;
        if (watch) {
            uint64_t now = weft__driver_now(&w->driver);
            left = watch_until > now ? (int64_t)(watch_until - now) : 0;
        }
        uint64_t back = park_once(w, left);
        if (atomic_load_explicit(&rt->stop, memory_order_acquire))
            break;
        weft__driver_tick(&w->driver, WEFT__TICK_FULL);
        fire_others_sleeps(w);      /* their tasks land on our queue: below */
        if (!weft__idle_is_sleeper(&rt->idle, w->index)) {
            w->searching = true;    /* the notifier counted us as searching */
            found = true;
            break;
        }
        if (w->lifo || has_backlog(w) || closing_unseen(w)
            || weft__registry_has_handed_back(&rt->registry, w->index)) {
            unpark_self(w);
            found = true;
            break;
        }
        if (watch && back >= watch_until) {
            unpark_self(w);     /* time to look again */
            break;
        }
    }
    if (watch)
        weft__idle_watch(&rt->idle, -1);    /* before we look again (rule 5) */
    cover_own_sleeps(w);
    /* The idle period ends when the work was seen, not when we got to it. */
    if (found)
        weft__pace_work(&w->pace, w->work_seen);
}

/* Per tick: the driver (every EVENT_INTERVAL ticks in full, else only what
 * is waiting), tasks handed back to our registry shard, and shutdown. */
static void maintain(weft_worker *w, enum weft__tick what)
{
    weft_runtime *rt = w->rt;
    weft__driver_tick(&w->driver, what);
    if (what == WEFT__TICK_FULL)
        fire_others_sleeps(w);
    if (weft__registry_has_handed_back(&rt->registry, w->index))
        weft__registry_drain(&rt->registry, w->index);
    if (__builtin_expect(closing_unseen(w), 0))
        close_shard(w);
}

/* Something for the run loop that a thief would not see: completions or
 * hand-offs on our own driver, tasks handed back, shutdown. */
static bool own_work_waiting(weft_worker *w)
{
    return atomic_load_explicit(&w->rt->stop, memory_order_relaxed) || closing_unseen(w)
        || weft__reap_wanted(&w->driver) || weft__driver_has_remote(&w->driver)
        || weft__registry_has_handed_back(&w->rt->registry, w->index);
}

/* Spin before parking only as pace.h allows: while spinning has recently
 * paid, and for at most one park cost. Rule 3 keeps at most half the workers
 * here, and a lone worker has nobody to wait for. The looks back off
 * exponentially (1, 2, 4, ... pauses apart): each look reads other workers'
 * queue lines, so looking flat out would slow the very workers we wait on,
 * and doubling needs no idea of how long a pause takes. Returns true when
 * the loop should go round again instead of parking (*t set, or our own
 * driver has something). */
static bool spin_for_work(weft_worker *w, weft__task **t)
{
    uint64_t until = weft__pace_spin_until(&w->pace);
    if (w->rt->nworkers == 1 || !w->searching || until == 0)
        return false;
    for (uint32_t pauses = 1; weft__driver_now(&w->driver) < until; pauses *= 2) {
        for (uint32_t i = 0; i < pauses; i++)
            weft__cpu_relax();
        if (own_work_waiting(w))
            return true;
        if ((*t = steal_work(w)) != NULL)
            return true;
    }
    return false;
}

/* Invariant 7's other half: on a worker whose queue never runs dry, the
 * yielded tasks' turn comes when everything queued ahead of them has had
 * one. Then they go the way they go when the queue runs dry, behind what
 * the ring, the timers and the inject queue hold: requeued alone, they
 * would put a task woken from outside behind all of them. */
static bool yielded_turn_due(weft_worker *w)
{
    return __builtin_expect(w->yielded_head != NULL, 0)
        && (int32_t)(w->tick - w->yielded_due) >= 0 && weft__local_len(&w->queue) > 0;
}

/* The next task this worker holds itself, or NULL. */
static weft__task *next_own_task(weft_worker *w, enum weft__tick what)
{
    if (yielded_turn_due(w))
        return after_yields(w, what);
    weft__task *t = next_task(w);
    return t ? t : after_yields(w, what);
}

static void run(weft_worker *w)
{
    weft_runtime *rt = w->rt;
    while (!atomic_load_explicit(&rt->stop, memory_order_acquire)) {
        w->tick++;
        maintain(w, w->tick % EVENT_INTERVAL == 0 ? WEFT__TICK_FULL : WEFT__TICK_BUSY);
        weft__task *t = next_own_task(w, WEFT__TICK_FULL);
        if (!t)
            t = steal_work(w);
        if (!t && fire_others_sleeps(w) > 0)
            continue;           /* the woken tasks are ours to run now */
        if (!t) {
            if (!weft__pace_is_idle(&w->pace))
                weft__pace_idle(&w->pace, weft__driver_now(&w->driver));
            if (spin_for_work(w, &t) && !t)
                continue;
        }
        if (t)
            run_task(w, t);
        else
            park(w);
    }
    stop_searching(w);
}

static void pin_to_cpu(weft_worker *w)
{
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return;
    int count = CPU_COUNT(&allowed), nth = (int)(w->index % (uint32_t)count);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &allowed) && nth-- == 0) {
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            pthread_setaffinity_np(pthread_self(), sizeof one, &one);
            return;
        }
    }
}

static void report_started(weft_runtime *rt, int rc)
{
    pthread_mutex_lock(&rt->lifecycle_lock);
    rt->started++;
    if (rc && !rt->start_error)
        rt->start_error = rc;
    pthread_cond_broadcast(&rt->started_cond);
    pthread_mutex_unlock(&rt->lifecycle_lock);
}

void *weft__worker_main(void *arg)
{
    weft_worker *w = arg;
    if (w->rt->pin_workers)
        pin_to_cpu(w);
    weft__alloc_thread_start(w->index);
    int rc = weft__driver_init(&w->driver, w->rt, w->index, NULL);
    report_started(w->rt, rc);
    if (rc == 0) {
        weft__current_worker = w;
        run(w);
        weft__driver_stop(&w->driver);  /* no frame may be freed under the kernel */
        weft__current_worker = NULL;
    }
    weft__alloc_thread_stop();
    return NULL;
}

/* ---- simulated workers (invariant 4) ------------------------------------ */

int weft__worker_sim_attach(weft_worker *w, const uint64_t *clock)
{
    /* A real ring, so that an I/O leaf polled under the simulator is as safe
     * as anywhere else; the simulator decides when it is reaped. */
    return weft__driver_init(&w->driver, w->rt, w->index, clock);
}

void weft__worker_sim_detach(weft_worker *w)
{
    weft__current_worker = w;
    weft__driver_stop(&w->driver);  /* no frame may be freed under the kernel */
    weft__current_worker = NULL;
}

weft__task *weft__worker_sim_pick(weft_worker *w)
{
    weft__task *t = w->sim_chain ? lifo_next(w, &w->sim_lifo_polls) : NULL;
    if (t)
        return t;
    w->sim_chain = false;
    w->tick++;
    maintain(w, WEFT__TICK_HANDOFFS);   /* the simulator reaps and fires itself */
    t = next_own_task(w, WEFT__TICK_HANDOFFS);
    if (!t)
        t = steal_work(w);
    if (!t) {
        stop_searching(w);      /* where a real worker would park */
        return NULL;
    }
    start_chain(w);
    w->sim_chain = true;
    w->sim_lifo_polls = 0;
    return t;
}

bool weft__worker_sim_ready(weft_worker *w)
{
    weft_runtime *rt = w->rt;
    if (w->lifo || w->yielded_head || has_backlog(w) || weft__inject_len(&rt->inject) > 0
        || weft__driver_has_remote(&w->driver)
        || weft__registry_has_handed_back(&rt->registry, w->index) || closing_unseen(w))
        return true;
    for (uint32_t i = 0; i < rt->nworkers; i++)
        if (i != w->index && has_backlog(&rt->workers[i]))
            return true;
    return false;
}
