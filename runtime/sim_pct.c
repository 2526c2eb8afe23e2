/*
 * runtime/sim_pct.c - task-level PCT for the simulator (weft/sim.h): the
 * pool of runnable tasks, their priorities, and the clock as one more
 * schedulable thing.
 *
 * Under PCT the simulator does not let a worker pick from its own queue:
 * before each step it takes every runnable task out of every worker (through
 * weft__worker_sim_pick, so hand-offs and shard closing happen as in a real
 * loop) into `pool`, and runs the pooled task of highest priority on the
 * worker it came from. So two tasks queued on one worker can run in either
 * order, which ranking workers never allowed.
 *
 * Invariants:
 *   1. The pool holds each task with its notified reference, in arrival
 *      order; a task leaves it only to be polled, or, when the simulation
 *      stops, to go back to the back of its worker's queue.
 *   2. A task's priority is drawn once, when it is first pooled, from
 *      sim.rng, above every change-point priority; it changes only at a
 *      change point, which sets the task just polled below all others
 *      (pct_depth - 1, then - 2, ...). It is forgotten when the task
 *      completes. The table is looked up by address only: no choice depends
 *      on an address or on the table's order.
 *   3. The clock has a priority like a task, and so has each simulated
 *      operation (drawn when it starts; it contends once it is ready). The
 *      clock may step (jump to the next deadline) only when a timer is
 *      armed and the previous step was not its own, so a program that
 *      keeps re-arming a timer cannot starve the tasks.
 */
#include <errno.h>
#include <stdlib.h>

#include "reactor/driver.h"
#include "runtime/rt.h"
#include "runtime/sim.h"
#include "runtime/task.h"
#include "runtime/worker.h"

/* A drain that finds more than this in one worker is a bug, not a program. */
#define DRAIN_MAX 1000000u

uint64_t weft__sim_next(weft__sim *s)
{
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Invariant 2: fresh priorities sit above every change point's. */
static uint64_t fresh_prio(weft__sim *s)
{
    return (uint64_t)WEFT_SIM_MAX_PCT_DEPTH + 1 + (weft__sim_next(s) >> 2);
}

static uint32_t slot_of(const weft__sim *s, const weft__task *t)
{
    uintptr_t h = (uintptr_t)t >> 4;
    h ^= h >> 17;
    return (uint32_t)(h * 0x9E3779B1u) & (s->prio_cap - 1);
}

static int prio_grow(weft__sim *s)
{
    uint32_t cap = s->prio_cap ? s->prio_cap * 2 : 64;
    weft__sim_prio *old = s->prio, *nt = calloc(cap, sizeof *nt);
    if (!nt)
        return -ENOMEM;
    uint32_t oldcap = s->prio_cap;
    s->prio = nt;
    s->prio_cap = cap;
    for (uint32_t i = 0; i < oldcap; i++) {
        if (!old[i].task)
            continue;
        uint32_t j = slot_of(s, old[i].task);
        while (nt[j].task)
            j = (j + 1) & (cap - 1);
        nt[j] = old[i];
    }
    free(old);
    return 0;
}

/* The entry for t, made with a fresh priority if t has none; NULL only when
 * the table cannot grow. */
static weft__sim_prio *prio_entry(weft__sim *s, weft__task *t)
{
    if ((s->nprio + 1) * 2 > s->prio_cap && prio_grow(s) != 0)
        return NULL;
    uint32_t j = slot_of(s, t);
    while (s->prio[j].task && s->prio[j].task != t)
        j = (j + 1) & (s->prio_cap - 1);
    if (!s->prio[j].task) {
        s->prio[j].task = t;
        s->prio[j].prio = fresh_prio(s);
        s->nprio++;
    }
    return &s->prio[j];
}

/* Linear probing's deletion: shift back the entries the hole would hide. */
static void prio_forget(weft__sim *s, weft__task *t)
{
    if (!s->prio_cap)
        return;
    uint32_t mask = s->prio_cap - 1, j = slot_of(s, t);
    while (s->prio[j].task && s->prio[j].task != t)
        j = (j + 1) & mask;
    if (!s->prio[j].task)
        return;
    s->nprio--;
    for (uint32_t k = (j + 1) & mask; s->prio[k].task; k = (k + 1) & mask) {
        uint32_t home = slot_of(s, s->prio[k].task);
        if (((k - home) & mask) >= ((k - j) & mask)) {
            s->prio[j] = s->prio[k];
            j = k;
        }
    }
    s->prio[j].task = NULL;
}

static int pool_push(weft__sim *s, weft__task *t, uint32_t worker)
{
    if (s->npool == s->pool_cap) {
        uint32_t cap = s->pool_cap ? s->pool_cap * 2 : 64;
        weft__sim_slot *p = realloc(s->pool, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        s->pool = p;
        s->pool_cap = cap;
    }
    s->pool[s->npool++] = (weft__sim_slot){ t, worker };
    return prio_entry(s, t) ? 0 : -ENOMEM;
}

/* Hand t back to worker i's queue, as a yield would (invariant 1). */
static void requeue(weft_runtime *rt, weft__task *t, uint32_t i)
{
    weft_worker *prev = weft__current_worker;
    weft__current_worker = &rt->workers[i];
    weft__schedule(t, true);
    weft__current_worker = prev;
}

void weft__sim_pct_collect(weft_runtime *rt)
{
    weft__sim *s = &rt->sim;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft_worker *w = &rt->workers[i];
        weft__current_worker = w;
        for (uint32_t n = 0; n < DRAIN_MAX && weft__worker_sim_ready(w); n++) {
            weft__task *t = weft__worker_sim_pick(w);
            if (!t)
                break;
            if (pool_push(s, t, i) != 0) {
                s->error = -ENOMEM;
                requeue(rt, t, i);      /* the pool could not take it */
                break;
            }
        }
        weft__current_worker = NULL;
        if (s->error)
            return;
    }
}

static bool clock_may_step(weft_runtime *rt)
{
    if (rt->sim.clock_last)
        return false;
    for (uint32_t i = 0; i < rt->nworkers; i++)
        if (weft__driver_next_deadline(&rt->workers[i].driver) != UINT64_MAX)
            return true;
    return false;
}

/* The pooled task of highest priority, the clock (*clock, returning npool)
 * or a ready simulated operation (*io: its rank among the ready ones) when
 * its priority is higher still; -1 when none can step. A script's choice,
 * when it names a candidate, wins. */
int weft__sim_pct_choose(weft_runtime *rt, bool *clock, int32_t *io)
{
    weft__sim *s = &rt->sim;
    bool clk = clock_may_step(rt);
    uint32_t nio = s->nio ? weft__sim_io_nready(rt) : 0;
    uint32_t first_io = s->npool + (clk ? 1 : 0), ncand = first_io + nio;
    *clock = false;
    *io = -1;
    if (ncand == 0)
        return -1;
    weft__sim_decision d;
    int pick = -1;
    if (weft__sim_scripted(s, &d)) {
        pick = d.choice < ncand ? (int)d.choice : 0;
    } else {
        uint64_t best = 0, iop = 0;
        for (uint32_t i = 0; i < s->npool; i++) {
            weft__sim_prio *e = prio_entry(s, s->pool[i].task);
            uint64_t p = e ? e->prio : 0;
            if (pick < 0 || p > best) {
                pick = (int)i;
                best = p;
            }
        }
        if (clk && (pick < 0 || s->clock_prio > best)) {
            pick = (int)s->npool;
            best = s->clock_prio;
        }
        int nth = nio ? weft__sim_io_pct_best(rt, &iop) : -1;
        if (nth >= 0 && (pick < 0 || iop > best))
            pick = (int)first_io + nth;
    }
    *clock = clk && (uint32_t)pick == s->npool;
    if ((uint32_t)pick >= first_io)
        *io = pick - (int)first_io;
    return pick;
}

/* Take pool entry idx out, keeping the others in arrival order. */
weft__task *weft__sim_pct_take(weft_runtime *rt, uint32_t idx, uint32_t *worker)
{
    weft__sim *s = &rt->sim;
    weft__task *t = s->pool[idx].task;
    *worker = s->pool[idx].worker;
    for (uint32_t i = idx + 1; i < s->npool; i++)
        s->pool[i - 1] = s->pool[i];
    s->npool--;
    s->clock_last = false;
    return t;
}

/* A change point falls on this step: whatever just ran goes lowest. */
static bool change_point(weft__sim *s, uint64_t *prio)
{
    if (s->next_change + 1 >= s->pct_depth || s->steps != s->change_at[s->next_change])
        return false;
    *prio = s->pct_depth - 1 - s->next_change;
    s->next_change++;
    return true;
}

void weft__sim_pct_ran(weft_runtime *rt, weft__task *t, bool complete)
{
    weft__sim *s = &rt->sim;
    uint64_t low;
    if (complete) {
        prio_forget(s, t);
        (void)change_point(s, &low);    /* spent on a task that is gone */
        return;
    }
    if (change_point(s, &low)) {
        weft__sim_prio *e = prio_entry(s, t);
        if (e)
            e->prio = low;
    }
}

void weft__sim_pct_clock_ran(weft_runtime *rt)
{
    weft__sim *s = &rt->sim;
    uint64_t low;
    s->clock_last = true;
    if (change_point(s, &low))
        s->clock_prio = low;
}

/* An operation completed: like a task that did, it spends a change point
 * that falls on its step. */
void weft__sim_pct_io_ran(weft_runtime *rt)
{
    weft__sim *s = &rt->sim;
    uint64_t low;
    s->clock_last = false;
    (void)change_point(s, &low);
}

void weft__sim_pct_requeue(weft_runtime *rt)
{
    weft__sim *s = &rt->sim;
    for (uint32_t i = 0; i < s->npool; i++)
        requeue(rt, s->pool[i].task, s->pool[i].worker);
    s->npool = 0;
}

void weft__sim_pct_free(weft__sim *s)
{
    free(s->pool);
    free(s->prio);
    s->pool = NULL;
    s->prio = NULL;
    s->npool = s->pool_cap = s->nprio = s->prio_cap = 0;
}
