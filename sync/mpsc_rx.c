/*
 * sync/mpsc_rx.c - the receiving side of a bounded mpsc channel, without the
 * lock: recv, try_recv and recv_blocking take a ready slot, or publish the
 * receiver's waker, with atomic operations on the state word (chan.h: its
 * fields and rules R1-R2); the lock is taken only to hand a freed slot to a
 * queued sender (QUEUED set) and by the drop.
 *
 * As with the locked kind (chan.c), the receiver never holds a value in its
 * leaf: a value stays in its slot until the poll that returns it takes it,
 * so a withdrawn recv never loses a message.
 *
 * A slot can be claimed (TAIL moved past it) and not ready yet: its sender
 * is between its CAS and the store that fills it. Only the receiver can see
 * that, and only for a few instructions unless that sender is preempted; it
 * spins briefly, then a task requeues itself and looks again at its next
 * poll. A thread (try_recv, recv_blocking) cannot suspend there: it yields
 * the CPU, and after YIELDS_BEFORE_NAPS yields it naps, each nap twice the
 * last up to a millisecond, so that a sender stopped between its claim and
 * its store (a debugger, SIGSTOP, a lower real-time priority on the same
 * CPU) costs the waiting thread no more than a thousand wake-ups a second.
 * The same goes for a waker field a sender has not emptied yet (R2).
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "runtime/spinlock.h"
#include "runtime/task.h"
#include "runtime/waker.h"
#include "sync/chan.h"
#include "sync/lock.h"

/* Spins on a claimed slot before giving the CPU away. */
#define READY_SPINS 64
/* A thread's yields before it naps, and its longest nap. */
#define YIELDS_BEFORE_NAPS 64
#define MAX_NAP_NS 1000000L

/* Naps begun so far, process-wide (weft__ring_naps): counted only on the
 * nap path, where a relaxed increment is nothing beside the nap. */
static _Atomic uint64_t naps;

/* A thread waits for a sender to finish a step it has begun (the header):
 * `waited` counts the calls of one wait, from 0. */
static void thread_backoff(unsigned *waited)
{
    unsigned n = (*waited)++;
    if (n < YIELDS_BEFORE_NAPS) {
        sched_yield();
        return;
    }
    unsigned doublings = n - YIELDS_BEFORE_NAPS;
    long ns = doublings >= 10 ? MAX_NAP_NS : 1000L << doublings;
    struct timespec nap = { 0, ns < MAX_NAP_NS ? ns : MAX_NAP_NS };
    atomic_fetch_add_explicit(&naps, 1, memory_order_relaxed);
    nanosleep(&nap, NULL);
}

uint64_t weft__ring_naps(void)
{
    return atomic_load_explicit(&naps, memory_order_relaxed);
}

static bool claimed(const weft__chan *c, uint64_t s)
{
    return (s & WEFT__ST_TAIL_MASK) != (c->head & WEFT__ST_TAIL_MASK);
}

/* Acquire: pairs with the senders' claims, and with the release of ENDED
 * and CLOSED's lock. */
static uint64_t load_st(weft__chan *c)
{
    return atomic_load_explicit(&c->st, memory_order_acquire);
}

/* The slot at head once its sender has filled it; NULL while it is being
 * filled (after READY_SPINS tries). The caller saw it claimed. */
static weft__chan_slot *ready_slot(weft__chan *c)
{
    weft__chan_slot *slot = &c->slots[c->head & c->mask];
    /* Acquire: pairs with weft__chan_put's release; the value is complete. */
    for (unsigned i = 0; !atomic_load_explicit(&slot->ready, memory_order_acquire); i++) {
        if (i == READY_SPINS)
            return NULL;
        weft__cpu_relax();
    }
    return slot;
}

/* Free the permit of a slot just taken: to the first queued sender, under
 * the lock, or back to the free ones (rule 2: not past a queued sender). */
static void free_permit(weft__chan *c)
{
    uint64_t s = atomic_load_explicit(&c->st, memory_order_relaxed);
    do {
        if (s & WEFT__ST_QUEUED) {
            weft__chan_after a = WEFT__CHAN_AFTER_INIT;
            weft__lock(&c->lock);
            weft__chan_give_permit_locked(c, &a);
            weft__chan_unlock(c, &a);
            return;
        }
    /* Release: the emptied slot before the permit a sender will claim. */
    } while (!atomic_compare_exchange_weak_explicit(&c->st, &s, s + WEFT__ST_PERMIT,
                                                    memory_order_release, memory_order_relaxed));
}

static uint64_t take(weft__chan *c, weft__chan_slot *slot)
{
    uint64_t v = slot->value;
    atomic_store_explicit(&slot->ready, 0, memory_order_relaxed);
    c->head++;
    free_permit(c);
    return v;
}

/* Publish w as the waiting receiver's waker (R2), if the state is still s
 * and s has nothing to take and no end. True when RXW is set; false when
 * the state moved on (a value, the end) and w is the caller's again, or
 * *busy when a sender has not emptied the field yet. */
static bool publish_waker(weft__chan *c, uint64_t s, weft_waker w, bool *busy)
{
    if (claimed(c, s) || (s & (WEFT__ST_ENDED | WEFT__ST_CLOSED)))
        return false;
    /* Acquire: pairs with the release that emptied it (R1). */
    if (__atomic_load_n(&c->rx_waker.weft_bits, __ATOMIC_ACQUIRE)) {
        *busy = true;
        return false;
    }
    __atomic_store_n(&c->rx_waker.weft_bits, w.weft_bits, __ATOMIC_RELAXED);
    /* Release: the field before the bit a sender acts on. */
    if (atomic_compare_exchange_strong_explicit(&c->st, &s, s | WEFT__ST_RXW,
                                                memory_order_release, memory_order_relaxed))
        return true;
    __atomic_store_n(&c->rx_waker.weft_bits, 0, __ATOMIC_RELAXED);
    return false;
}

/* Take the receiver's own waker back if it still waits (R1). The state
 * after. */
static uint64_t reclaim_waker(weft__chan *c, weft_waker *w)
{
    uint64_t s = load_st(c);
    *w = (weft_waker){ 0 };
    while (s & WEFT__ST_RXW) {
        if (atomic_compare_exchange_weak_explicit(&c->st, &s, s & ~WEFT__ST_RXW,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            *w = weft__chan_take_rx_waker(c);
            return s & ~WEFT__ST_RXW;
        }
    }
    return s;
}

static weft_withdraw recv_withdraw(weft_cx *cx, void *leaf)
{
    weft__chan *c = ((weft_mpsc_rx *)leaf)->weft_chan;
    if (!c)
        return WEFT_WITHDRAWN;
    uint64_t s = load_st(c);
    /* Acquire: a sender that emptied the field (R1) claimed before it. */
    weft_waker held = { __atomic_load_n(&c->rx_waker.weft_bits, __ATOMIC_ACQUIRE) };
    if ((s & WEFT__ST_RXW) && weft_waker_will_wake(&held, cx)) {
        weft_waker w;
        s = reclaim_waker(c, &w);
        weft_waker_drop(&w);
    } else {
        /* A sender may have claimed, and taken the waker, since s was read:
         * then the task was woken, and this withdrawal raced. */
        s = load_st(c);
    }
    /* Nothing is ever taken here. If what the wait was for has come (a value,
     * or the end), the re-poll returns it; a torn-down task leaves it queued.
     * A sender that took the waker first wakes the task in vain. */
    bool decided = claimed(c, s) || (s & (WEFT__ST_ENDED | WEFT__ST_CLOSED));
    return decided ? WEFT_WITHDRAW_RACED : WEFT_WITHDRAWN;
}

weft_poll weft__ring_recv(weft_cx *cx, weft_mpsc_rx *rx, uint64_t *out)
{
    weft__chan *c = rx->weft_chan;
    for (;;) {
        uint64_t s = load_st(c);
        if (claimed(c, s)) {
            weft__chan_slot *slot = ready_slot(c);
            if (!slot)
                break;
            if (!weft_cx_coop(cx))
                return WEFT_PENDING;    /* out of budget: take nothing; requeued */
            *out = take(c, slot);
            return 0;
        }
        if (s & (WEFT__ST_ENDED | WEFT__ST_CLOSED))
            return -EPIPE;      /* rule 3 */
        if (s & WEFT__ST_RXW) {
            weft_waker held = { __atomic_load_n(&c->rx_waker.weft_bits, __ATOMIC_RELAXED) };
            if (held.weft_bits && !weft_waker_will_wake(&held, cx))
                return -EBUSY;  /* another receive is already waiting */
            weft_cx_suspend(cx, rx, recv_withdraw);     /* a re-poll while waiting */
            return WEFT_PENDING;
        }
        bool busy = false;
        weft_waker mine = weft_cx_waker(cx);
        if (publish_waker(c, s, mine, &busy)) {
            weft_cx_suspend(cx, rx, recv_withdraw);
            return WEFT_PENDING;
        }
        weft_waker_drop(&mine);
        if (busy)
            break;
    }
    /* A slot being filled, or a waker field being emptied: look again at
     * the next poll, requeued as an exhausted budget is (await.c). */
    weft_cx_suspend(cx, rx, recv_withdraw);
    cx->yielded = true;
    return WEFT_PENDING;
}

int weft__ring_try_recv(weft__chan *c, uint64_t *out)
{
    unsigned waited = 0;
    for (;;) {
        uint64_t s = load_st(c);
        if (!claimed(c, s))
            return (s & (WEFT__ST_ENDED | WEFT__ST_CLOSED)) ? -EPIPE : -EAGAIN;
        weft__chan_slot *slot = ready_slot(c);
        if (slot) {
            *out = take(c, slot);
            return 0;
        }
        thread_backoff(&waited);    /* its sender was preempted mid-send */
    }
}

int weft__ring_recv_blocking(weft__chan *c, uint64_t *out)
{
    unsigned waited = 0;
    for (;;) {
        int r = weft__ring_try_recv(c, out);
        if (r != -EAGAIN)
            return r;
        uint64_t s = load_st(c);
        if (s & WEFT__ST_RXW)
            return -EBUSY;      /* another receive is already waiting */
        weft__thread_waiter tw;
        bool busy = false;
        if (publish_waker(c, s, weft__waker_for_thread(&tw), &busy)) {
            /* Whoever clears RXW takes the waker before waking it (R1), so
             * nothing is left registered on return. */
            weft__thread_waiter_wait(&tw, 0);
        } else if (busy) {
            thread_backoff(&waited);
        }
    }
}

int64_t weft__ring_rx_drop_locked(weft__chan *c, weft__chan_after *a)
{
    /* CLOSED is set: no sender claims a position any more. One that claimed
     * before may still be filling its slot; it counts as discarded. */
    weft_waker w;
    uint64_t s = reclaim_waker(c, &w);      /* none unless misused */
    weft__defer_drop(&a->d, w);
    uint64_t len = ((s & WEFT__ST_TAIL_MASK) - c->head) & WEFT__ST_TAIL_MASK;
    c->head += len;
    /* Rule 1, though nobody can use them now. */
    atomic_fetch_add_explicit(&c->st, len * WEFT__ST_PERMIT, memory_order_relaxed);
    return (int64_t)len;
}
