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

#include "runtime/rt.h"
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
    weft__wheel_init(&d->wheel, weft__driver_now(d));
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

/* The wheel holds two kinds of timer: sleeps, and I/O deadlines. */
void weft__timer_fire(weft__timer *t, void *arg)
{
    if (t->kind == WEFT__TIMER_OP_DEADLINE)
        weft__op_deadline_fired(arg, t);
    else
        weft__sleep_fire(t);
}

static void fire_due_timers(weft__driver *d)
{
    if (weft__wheel_len(&d->wheel) > 0)
        weft__wheel_advance(&d->wheel, weft__driver_now(d), weft__timer_fire, d);
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

uint64_t weft__driver_next_deadline(weft__driver *d)
{
    return weft__wheel_next_deadline(&d->wheel);
}

/* The ring wait ends at the next timer, or soon while the overflow queues
 * hold a backlog (rule 1), or at the caller's cap. A simulated driver's wheel
 * runs on virtual time, which no real wait can reach: only the cap counts. */
static int64_t park_timeout(weft__driver *d, int64_t max_ns)
{
    uint64_t next = weft__wheel_next_deadline(&d->wheel), now = weft__driver_now(d);
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
    weft__ring_park(&d->ring, park_timeout(d, max_ns), should_sleep, arg);
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
