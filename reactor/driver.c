/*
 * reactor/driver.c - the worker's one door into the reactor (driver.h): ring,
 * records, wheel and the shared hand-off stack, ticked and parked together.
 *
 * Invariants:
 *   1. A park never strands work the kernel will not announce: with records
 *      or cancels waiting on the overflow queues for room in the SQ (no
 *      completion may be coming), it sleeps at most BACKLOG_RETRY_NS.
 *   2. Hand-offs are settled in the order they are taken (the whole stack at
 *      once), each by the module that owns its leaf, on the owner's thread.
 *   3. At stop, every record has had its final CQE before the ring closes;
 *      the drain keeps settling hand-offs, since a record that completed while
 *      a hand-off was on its way stays live until the hand-off arrives.
 */
#include "reactor/driver.h"

#include <time.h>

#include "reactor/scope.h"
#include "runtime/metrics.h"
#include "runtime/rt.h"
#include "runtime/trace.h"
#include "weft/time.h"

#define RING_ENTRIES 256
/* Longest park while the submit layer holds an overflow backlog (rule 1). */
#define BACKLOG_RETRY_NS 1000000
/* While draining, re-check hand-offs this often. */
#define DRAIN_WAIT_NS 10000000

/* The clock a task reads: its worker's (virtual under the simulator), or the
 * real one on any other thread. */
uint64_t weft_now_ns(void)
{
    const weft_worker *w = weft__current_worker;
    return w ? weft__driver_now(&w->driver) : weft__monotonic_ns();
}

uint64_t weft__driver_now(const weft__driver *d)
{
    if (d->clock)
        return *d->clock;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int weft__driver_init(weft__driver *d, weft_runtime *rt, uint32_t index, const uint64_t *clock)
{
    d->rt = rt;
    d->index = index;
    d->clock = clock;
    d->uncovered = 0;
    weft__wheel_init(&d->wheel, weft__driver_now(d));
    weft__wheel_init(&d->deadlines, weft__driver_now(d));
    /* sleep_lock, sleep_next, wakes_at and retime are left as the runtime's
     * zeroed allocation made them (unlocked, no sleeps, awake, no request):
     * other workers may read them before this one gets here (rule 4). */
    atomic_init(&d->remote, NULL);
    return weft__ring_init(&d->ring, RING_ENTRIES);
}

void weft__driver_free(weft__driver *d)
{
    weft__ring_close_wakeup(&d->ring);
    weft__op_table_destroy(&d->ops);
}

/* ---- hand-offs (rule 2) ---------------------------------------------------------- */

bool weft__driver_has_remote(weft__driver *d)
{
    /* Seq_cst: pairs with the owner's sleep registration, as in registry.h. */
    return atomic_load_explicit(&d->remote, memory_order_seq_cst) != NULL;
}

void weft__driver_hand_off(weft__driver *d, weft__handoff *h)
{
    weft__handoff *head = atomic_load_explicit(&d->remote, memory_order_relaxed);
    do {
        h->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&d->remote, &head, h,
                                                    memory_order_seq_cst,
                                                    memory_order_relaxed));
    weft__ring_unpark(&d->ring);
}

static void settle_handoffs(weft__driver *d)
{
    if (!weft__driver_has_remote(d))
        return;
    /* Acquire: pairs with the pushes' release; the whole stack at once. */
    weft__handoff *h = atomic_exchange_explicit(&d->remote, NULL, memory_order_acquire);
    while (h) {
        weft__handoff *next = h->next;  /* before settling lets the leaf go */
        if (h->kind == WEFT__HANDOFF_SLEEP)
            weft__sleep_settle_handoff(d, h);
        else
            weft__io_settle_handoff(d, h);
        h = next;
    }
}

/* ---- tick and park ----------------------------------------------------------------- */

/* Two wheels: sleeps and deadline scopes on one, I/O deadlines on the other
 * (rules 1 and 4). A sleep or scope timer that comes due yields the waker
 * to wake for it (fire_due); the sleep wheel's firing wakes those after it
 * has let go of the wheel (fire_collect). */
static weft_waker fire_due(weft__driver *d, weft__timer *t)
{
    weft__trace_timer(d, t->kind);
    return t->kind == WEFT__TIMER_SCOPE ? weft__scope_fire(d, t) : weft__sleep_fire(t);
}

void weft__timer_fire(weft__timer *t, void *arg)
{
    if (t->kind == WEFT__TIMER_OP_DEADLINE) {
        weft__trace_timer(arg, t->kind);
        weft__op_deadline_fired(arg, t);
        return;
    }
    weft_waker w = fire_due(arg, t);
    weft_waker_wake(&w);
}

/* ---- the sleep wheel (rule 4) ---------------------------------------------------- */

/* When w next needs an advance. On real time, its earliest deadline: an
 * advance to it also moves down every slot it passes on the way (wheel.h),
 * so waking at the cascade points before it would only cost parks. The
 * simulator's virtual time jumps to each cascade point instead (next_change):
 * it may jump short of a deadline, and must not skip over the levels. */
static uint64_t wake_point(const weft__driver *d, const weft__wheel *w)
{
    return d->clock ? weft__wheel_next_change(w) : weft__wheel_next_deadline(w);
}

/* Under sleep_lock. 0 stands for none (driver.h); a due time of 0 (a sleep
 * armed with deadline 0 by a clock that reads 0) reads as 1 ns, which is
 * early, never late. */
static void store_sleep_next(weft__driver *d, uint64_t due)
{
    atomic_store_explicit(&d->sleep_next, due == UINT64_MAX ? 0 : due ? due : 1,
                          memory_order_seq_cst);
}

void weft__driver_arm_sleep(weft__driver *d, weft__timer *t, uint64_t deadline_ns)
{
    weft__spin_lock(&d->sleep_lock);
    weft__wheel_insert(&d->wheel, t, deadline_ns);
    weft__count(&weft__driver_metrics(d)->timers_armed, 1);
    /* The wheel's own next time, not this deadline: an earlier sleep's, or
     * earlier still after a withdrawal, until an advance brings it up to
     * date. */
    uint64_t due = wake_point(d, &d->wheel);
    bool earlier = due < weft__driver_sleep_next(d);
    if (earlier)
        store_sleep_next(d, due);   /* seq_cst: rule 5's pair with a parking worker */
    weft__spin_unlock(&d->sleep_lock);
    if (earlier)
        weft__driver_note_uncovered(d, due);
}

bool weft__driver_disarm_sleep(weft__driver *d, weft__timer *t)
{
    /* sleep_next may now be early: harmless (rule 4), and cheaper than
     * looking for the next one on every withdrawal. */
    weft__spin_lock(&d->sleep_lock);
    bool armed = weft__wheel_remove(&d->wheel, t);
    weft__spin_unlock(&d->sleep_lock);
    return armed;
}

/* The wakers of one advance of the sleep wheel, woken once its lock is
 * released (rule 4): a wake may unpark a worker (a syscall), and a thread
 * can lose its CPU for a millisecond at any instruction (a virtual CPU
 * preempted by its host, measured on the VMs weft is benchmarked on); in
 * the lock, either would keep every other worker from firing the wheel. */
#define FIRE_BATCH 32

struct fire_batch {
    weft__driver *d;
    unsigned n;
    weft_waker wake[FIRE_BATCH];
};

static void fire_collect(weft__timer *t, void *arg)
{
    struct fire_batch *b = arg;
    weft_waker w = fire_due(b->d, t);
    if (b->n < FIRE_BATCH)
        b->wake[b->n++] = w;
    else
        weft_waker_wake(&w);    /* a crowd: the rest wake in the lock, as it comes */
}

size_t weft__driver_fire_sleeps(weft__driver *d, uint64_t now)
{
    if (weft__driver_sleep_next(d) > now || !weft__spin_trylock(&d->sleep_lock))
        return 0;
    struct fire_batch b = { .d = d, .n = 0 };
    size_t fired = weft__wheel_advance(&d->wheel, now, fire_collect, &b);
    weft__count(&weft__driver_metrics(d)->sleeps_fired, fired);    /* metrics.h, rule 2 */
    store_sleep_next(d, wake_point(d, &d->wheel));
    weft__spin_unlock(&d->sleep_lock);
    for (unsigned i = 0; i < b.n; i++)
        weft_waker_wake(&b.wake[i]);
    return fired;
}

void weft__driver_cover_noted(weft__driver *d)
{
    uint64_t due = d->uncovered;
    d->uncovered = 0;
    weft_runtime *rt = d->rt;
    weft__driver *retimed = NULL;
    for (uint32_t i = 0; i < rt->nworkers; i++) {
        weft__driver *other = weft__driver_of(rt, i);
        uint64_t wakes_at = other == d ? 0 : weft__driver_wakes_at(other);
        if (wakes_at == 0)
            continue;           /* awake: it reads sleep_next before it parks */
        if (wakes_at <= due)
            return;             /* it will be up in time */
        retimed = other;
    }
    if (!retimed)
        return;
    atomic_store_explicit(&retimed->retime, true, memory_order_seq_cst);
    weft__ring_unpark(&retimed->ring);
}

/* ---- the owner's own timers ----------------------------------------------------- */

static void fire_due_timers(weft__driver *d)
{
    bool sleeps = weft__driver_sleep_next(d) != UINT64_MAX;
    if (!sleeps && weft__wheel_len(&d->deadlines) == 0)
        return;
    uint64_t now = weft__driver_now(d);
    if (weft__wheel_len(&d->deadlines) > 0)
        weft__count(&weft__driver_metrics(d)->timers_fired,
                    weft__wheel_advance(&d->deadlines, now, weft__timer_fire, d));
    if (sleeps)
        weft__driver_fire_sleeps(d, now);
}

void weft__driver_tick(weft__driver *d, enum weft__tick what)
{
    if (what == WEFT__TICK_FULL) {
        if (weft__submit_pending(d))
            weft__submit_flush(d);
        weft__reap(d);
        fire_due_timers(d);
    } else if (what == WEFT__TICK_BUSY && d->ops.live > 0 && weft__reap_wanted(d)) {
        weft__reap(d);          /* a busy worker still sees its I/O */
    }
    settle_handoffs(d);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

uint64_t weft__driver_next_deadline(weft__driver *d)
{
    weft__spin_lock(&d->sleep_lock);
    uint64_t sleeps = wake_point(d, &d->wheel);
    weft__spin_unlock(&d->sleep_lock);
    return min_u64(sleeps, wake_point(d, &d->deadlines));
}

void weft__driver_park_begin(weft__driver *d)
{
    atomic_store_explicit(&d->retime, false, memory_order_relaxed);
    atomic_store_explicit(&d->wakes_at, UINT64_MAX, memory_order_seq_cst);
}

/* The ring wait ends at the next timer, or soon while the overflow queues
 * hold a backlog (rule 1), or at the caller's cap. A simulated driver's wheel
 * runs on virtual time, which no real wait can reach: only the cap counts. */
static int64_t park_timeout(weft__driver *d, int64_t max_ns, uint64_t now)
{
    uint64_t next = weft__driver_next_deadline(d);
    int64_t timeout = next == UINT64_MAX || d->clock ? -1        /* virtual: no wait */
                    : next > now ? (int64_t)(next - now) : 0;
    if (weft__submit_backlog(d) && (timeout < 0 || timeout > BACKLOG_RETRY_NS))
        timeout = BACKLOG_RETRY_NS;
    if (max_ns >= 0 && (timeout < 0 || timeout > max_ns))
        timeout = max_ns;
    return timeout;
}

void weft__driver_park(weft__driver *d, int64_t max_ns, bool (*should_sleep)(void *), void *arg)
{
    weft__submit_fill(d);       /* the park's enter submits the SQ */
    uint64_t now = weft__driver_now(d);
    int64_t timeout = park_timeout(d, max_ns, now);
    if (timeout >= 0 && !d->clock)     /* rule 5: from unknown to known */
        atomic_store_explicit(&d->wakes_at, now + (uint64_t)timeout, memory_order_seq_cst);
    weft__ring_park(&d->ring, timeout, should_sleep, arg);
    atomic_store_explicit(&d->wakes_at, 0, memory_order_seq_cst);
    weft__reap(d);              /* completions may queue woken tasks locally */
}

void weft__driver_unpark(weft__driver *d)
{
    weft__ring_unpark(&d->ring);
}

/* ---- stop (rule 3) ---------------------------------------------------------------- */

void weft__driver_stop(weft__driver *d)
{
    settle_handoffs(d);
    weft__io_withdraw_all(d);
    while (d->ops.live > 0) {
        weft__submit_flush(d);
        struct __kernel_timespec ts = { 0, DRAIN_WAIT_NS };
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&d->ring.uring, &cqe, 1, &ts, NULL);
        weft__reap(d);
        settle_handoffs(d);
    }
    weft__ring_destroy(&d->ring);
}
