/*
 * sync/oneshot.c - the oneshot channel: one value, one sender, one receiver.
 *
 * The shared object is one allocation: a state word, the value, the
 * receiver's waker and a flag only the receiver touches. There is no lock: a
 * round trip (receiver waits, sender sends, receiver takes, receiver drops)
 * costs five read-modify-writes on the object's line instead of a lock and an
 * unlock per step. The value is stored in the object, never in the receiver's
 * leaf, so a withdrawn receive cannot lose it.
 *
 * State bits:
 *   VALUE      a value was sent (set once, with TX_DONE; never cleared: the
 *              receiver's `taken` says whether it was received)
 *   TX_DONE    the sender has sent or dropped; nothing is ever sent after it
 *   TX_GONE    the sender will not touch the object again
 *   RX_CLOSED  the receiver closed or dropped; a send after it fails
 *   RX_GONE    the receiver dropped; it will not touch the object again
 *   RX_WAKER   the receiver published its waker in rx_waker (left set after
 *              the sender, past TX_DONE, took it)
 *
 * Rules for rx_waker (who may touch it), as for a task's join waker:
 *   1. While RX_WAKER is clear, only the receiver writes rx_waker. It claims
 *      the empty field with a CAS, so a second receive that races the first
 *      one (a misuse) gets -EBUSY instead of a torn waker.
 *   2. The receiver sets RX_WAKER (CAS) only after writing rx_waker, and only
 *      while TX_DONE is clear.
 *   3. While RX_WAKER is set and TX_DONE clear, nobody writes rx_waker; the
 *      receiver may clear RX_WAKER (CAS requiring TX_DONE clear) to take its
 *      waker back (a withdrawal, a drop).
 *   4. The sender sets TX_DONE; if RX_WAKER was set in that transition, the
 *      field is the sender's: it takes the waker, then sets TX_GONE, then
 *      wakes. A sender that found no waker sets TX_GONE in the same CAS.
 *   5. VALUE and the value are published by the sender's release CAS and read
 *      by the receiver after an acquire load that saw VALUE.
 *   6. The object is freed by whichever side sets the last of TX_GONE and
 *      RX_GONE. TX_GONE, not TX_DONE, because a sender that found a waker
 *      still reads the field after TX_DONE. Neither side touches the object
 *      after the RMW that sets its own *_GONE bit, unless that RMW found the
 *      other one's set (then it frees it).
 */
#include <errno.h>
#include <stdatomic.h>

#include "runtime/alloc.h"
#include "runtime/waker.h"
#include "runtime/worker.h"
#include "sync/inspect.h"
#include "weft/sync.h"

enum {
    VALUE = 1u << 0,
    TX_DONE = 1u << 1,
    TX_GONE = 1u << 2,
    RX_CLOSED = 1u << 3,
    RX_GONE = 1u << 4,
    RX_WAKER = 1u << 5,
};

struct weft__oneshot {
    _Atomic uint32_t state;
    bool taken;                     /* the receiver's alone: it took the value */
    uint64_t value;
    _Atomic uintptr_t rx_waker;     /* weft_waker bits; rules 1-4 */
};
typedef struct weft__oneshot weft__oneshot;

/* Each object gets a cache line to itself (jemalloc's 64-byte class puts
 * every region on a line of its own) rather than sharing one with another
 * oneshot: measured, not derived. On a 2-vCPU VM whose CPUs sat far apart
 * (a 450 ns cache-line round trip) ping_pong ran 8% faster so, 4% where
 * they sat close (150 ns), the same with one worker; which of its lines two
 * workers had contended for was not found without hardware counters. */
#define ONESHOT_BYTES 64
_Static_assert(sizeof(weft__oneshot) <= ONESHOT_BYTES, "a oneshot fits its line");

int weft_oneshot_new(weft_oneshot_tx *tx, weft_oneshot_rx *rx)
{
    if (!tx || !rx)
        return -EINVAL;
    weft__oneshot *o = weft__calloc(ONESHOT_BYTES);
    if (!o)
        return -ENOMEM;
    tx->weft_chan = o;
    rx->weft_chan = o;
    return 0;
}

static void free_oneshot(weft__oneshot *o)
{
    weft__free(o, ONESHOT_BYTES);
}

/* Take the receiver's waker out of the field (rules 3 and 4: the caller
 * owns it now). */
static weft_waker take_rx_waker(weft__oneshot *o)
{
    uintptr_t bits = atomic_load_explicit(&o->rx_waker, memory_order_relaxed);
    atomic_store_explicit(&o->rx_waker, 0, memory_order_relaxed);
    return (weft_waker){ .weft_bits = bits };
}

/* The sender's end, with or without a value. Empties the handle. */
static int sender_done(weft_oneshot_tx *tx, bool with_value, uint64_t value)
{
    weft__oneshot *o = tx ? tx->weft_chan : NULL;
    if (!o)
        return -EINVAL;
    tx->weft_chan = NULL;
    if (with_value)
        o->value = value;       /* unread until VALUE is published (rule 5) */
    uint32_t s = atomic_load_explicit(&o->state, memory_order_relaxed);
    uint32_t next;
    int r;
    do {
        r = with_value && (s & RX_CLOSED) ? -EPIPE : 0;     /* -EPIPE: still the caller's */
        next = s | TX_DONE | (with_value && r == 0 ? VALUE : 0);
        if (!(s & RX_WAKER))
            next |= TX_GONE;    /* rule 4: no waker to take */
    /* Release: publishes the value; acquire: the receiver's waker (rule 2). */
    } while (!atomic_compare_exchange_weak_explicit(&o->state, &s, next, memory_order_acq_rel,
                                                    memory_order_relaxed));
    if (next & TX_GONE) {
        if (s & RX_GONE)
            free_oneshot(o);    /* rule 6 */
        return r;
    }
    weft_waker w = take_rx_waker(o);
    /* Release: the field is left empty before the receiver may free it. */
    uint32_t prev = atomic_fetch_or_explicit(&o->state, TX_GONE, memory_order_acq_rel);
    if (prev & RX_GONE)
        free_oneshot(o);
    weft_waker_wake(&w);
    return r;
}

int weft_oneshot_send(weft_oneshot_tx *tx, uint64_t value)
{
    return sender_done(tx, true, value);
}

int weft_oneshot_tx_drop(weft_oneshot_tx *tx)
{
    return sender_done(tx, false, 0);
}

bool weft_oneshot_tx_is_closed(const weft_oneshot_tx *tx)
{
    weft__oneshot *o = tx ? tx->weft_chan : NULL;
    if (!o)
        return true;
    return atomic_load_explicit(&o->state, memory_order_relaxed) & RX_CLOSED;
}

/* What a receive finds in state `s` (loaded with acquire): 0 with the value
 * taken, -EPIPE at the end, or 1 when it has to wait. */
static int take(weft__oneshot *o, uint32_t s, uint64_t *out)
{
    if ((s & VALUE) && !o->taken) {
        *out = o->value;
        o->taken = true;
        return 0;
    }
    return (s & (TX_DONE | RX_CLOSED)) ? -EPIPE : 1;
}

static uint32_t load_state(weft__oneshot *o)
{
    /* Acquire: pairs with the sender's release CAS (rule 5). */
    return atomic_load_explicit(&o->state, memory_order_acquire);
}

enum install_outcome {
    INSTALL_WAITING,    /* RX_WAKER set: the sender will wake w */
    INSTALL_DECIDED,    /* the sender finished first; w is the caller's again */
    INSTALL_BUSY,       /* another receive holds the field (rule 1) */
};

/* Publish the receiver's waker w (rules 1 and 2). */
static enum install_outcome install_rx_waker(weft__oneshot *o, weft_waker w)
{
    uintptr_t empty = 0;
    if (!atomic_compare_exchange_strong_explicit(&o->rx_waker, &empty, w.weft_bits,
                                                 memory_order_relaxed, memory_order_relaxed))
        return INSTALL_BUSY;
    uint32_t s = atomic_load_explicit(&o->state, memory_order_relaxed);
    do {
        if (s & TX_DONE) {
            atomic_store_explicit(&o->rx_waker, 0, memory_order_relaxed);
            return INSTALL_DECIDED;
        }
    /* Release: the field's write before the bit the sender acts on. */
    } while (!atomic_compare_exchange_weak_explicit(&o->state, &s, s | RX_WAKER,
                                                    memory_order_release, memory_order_relaxed));
    return INSTALL_WAITING;
}

/* Take the receiver's waker back while the sender has not finished (rule
 * 3), also setting `also`. Returns the state before, and in *w the waker
 * taken back (none when RX_WAKER was clear or TX_DONE already set). */
static uint32_t reclaim_rx_waker(weft__oneshot *o, uint32_t also, weft_waker *w)
{
    uint32_t s = atomic_load_explicit(&o->state, memory_order_relaxed);
    uint32_t next;
    do {
        next = s | also;
        if (!(s & TX_DONE))
            next &= ~(uint32_t)RX_WAKER;
    /* Acquire: a value or a TX_GONE seen here is complete (rules 5, 6). */
    } while (!atomic_compare_exchange_weak_explicit(&o->state, &s, next, memory_order_acq_rel,
                                                    memory_order_acquire));
    *w = (weft_waker){ 0 };
    if ((s & RX_WAKER) && !(s & TX_DONE))
        *w = take_rx_waker(o);
    return s;
}

static weft_withdraw recv_withdraw(weft_cx *cx, void *leaf)
{
    weft__oneshot *o = ((weft_oneshot_rx *)leaf)->weft_chan;
    if (!o)
        return WEFT_WITHDRAWN;
    weft_waker w = { atomic_load_explicit(&o->rx_waker, memory_order_relaxed) };
    uint32_t s = load_state(o);
    if ((s & RX_WAKER) && !(s & TX_DONE) && weft_waker_will_wake(&w, cx)) {
        s = reclaim_rx_waker(o, 0, &w);
        weft_waker_drop(&w);
    }
    /* Nothing is taken here: if the value (or the end) came, the re-poll
     * returns it; a torn-down task leaves the value in the channel. */
    return (s & (VALUE | TX_DONE | RX_CLOSED)) ? WEFT_WITHDRAW_RACED : WEFT_WITHDRAWN;
}

weft_poll weft_oneshot_recv(weft_cx *cx, weft_oneshot_rx *rx, uint64_t *out)
{
    if (!cx || !rx || !rx->weft_chan || !out)
        return -EINVAL;
    weft__oneshot *o = rx->weft_chan;
    for (;;) {
        uint32_t s = load_state(o);
        if ((s & VALUE) && !o->taken)   /* out of budget: take nothing; requeued */
            return weft_cx_coop(cx) ? take(o, s, out) : WEFT_PENDING;
        if (s & (TX_DONE | RX_CLOSED))
            return -EPIPE;
        weft_waker held = { atomic_load_explicit(&o->rx_waker, memory_order_relaxed) };
        if (held.weft_bits) {
            if (!weft_waker_will_wake(&held, cx))
                return -EBUSY;  /* another receive is already waiting */
            break;              /* a re-poll while waiting: the waker stays */
        }
        weft_waker mine = weft_cx_waker(cx);
        enum install_outcome io = install_rx_waker(o, mine);
        if (io == INSTALL_WAITING)
            break;
        weft_waker_drop(&mine);
        if (io == INSTALL_BUSY)
            return -EBUSY;
    }
    weft_cx_suspend(cx, rx, recv_withdraw);
    return WEFT_PENDING;
}

int weft_oneshot_try_recv(weft_oneshot_rx *rx, uint64_t *out)
{
    if (!rx || !rx->weft_chan || !out)
        return -EINVAL;
    int r = take(rx->weft_chan, load_state(rx->weft_chan), out);
    return r == 1 ? -EAGAIN : r;
}

int weft_oneshot_recv_blocking(weft_oneshot_rx *rx, uint64_t *out)
{
    if (!rx || !rx->weft_chan || !out)
        return -EINVAL;
    if (weft__current_worker)
        return -EDEADLK;
    weft__oneshot *o = rx->weft_chan;
    for (;;) {
        int r = take(o, load_state(o), out);
        if (r != 1)
            return r;
        weft__thread_waiter tw;
        enum install_outcome io = install_rx_waker(o, weft__waker_for_thread(&tw));
        if (io == INSTALL_BUSY)
            return -EBUSY;
        if (io == INSTALL_WAITING) {
            /* Only the sender takes the waker (rule 4), after TX_DONE: the
             * answer is final once it wakes this thread. */
            weft__thread_waiter_wait(&tw, 0);
            return take(o, load_state(o), out);
        }
    }
}

int weft_oneshot_rx_close(weft_oneshot_rx *rx)
{
    if (!rx || !rx->weft_chan)
        return -EINVAL;
    atomic_fetch_or_explicit(&rx->weft_chan->state, RX_CLOSED, memory_order_relaxed);
    return 0;
}

int weft_oneshot_rx_drop(weft_oneshot_rx *rx)
{
    weft__oneshot *o = rx ? rx->weft_chan : NULL;
    if (!o)
        return -EINVAL;
    rx->weft_chan = NULL;
    bool taken = o->taken;
    uint32_t s = load_state(o);
    if ((s & RX_WAKER) && !(s & TX_DONE)) {
        /* A receive still waits (a misuse): take its waker back first, in a
         * step of its own, since after RX_GONE the sender may free o. Only
         * the receiver sets RX_WAKER, so otherwise there is nothing to take. */
        weft_waker w;
        reclaim_rx_waker(o, RX_CLOSED, &w);
        weft_waker_drop(&w);
    }
    /* Acq_rel: a TX_GONE seen here is the sender's last touch (rule 6). */
    s = atomic_fetch_or_explicit(&o->state, RX_CLOSED | RX_GONE, memory_order_acq_rel);
    if (s & TX_GONE)
        free_oneshot(o);        /* rule 6 */
    return (s & VALUE) && !taken ? 1 : 0;
}

/* A receive is waiting: its waker is published and the sender has not taken
 * it. RX_WAKER itself stays set after the sender takes the waker. */
bool weft__oneshot_rx_waiting(const weft_oneshot_rx *rx)
{
    uint32_t s = atomic_load_explicit(&rx->weft_chan->state, memory_order_acquire);
    return (s & RX_WAKER) && !(s & TX_DONE);
}
