/*
 * reactor/wheel.h - a worker's timers: a hierarchical timing wheel after
 * tokio's time driver. Single-threaded: it has no atomics and no lock of its
 * own; its user serialises every call (reactor/driver.h: a worker's sleep
 * wheel under the driver's lock, its I/O deadline wheel on the worker's own
 * thread). No allocation.
 *
 * Time is counted in ticks of 2^16 ns (65.5 us). A timer fires at the
 * first advance whose now is at or past its exact deadline: its slot is the
 * tick its deadline falls in, and when the wheel reaches that tick, a timer
 * whose deadline has not come yet stays (on the pending list) instead of
 * firing. So a timer never fires early, and is late by no more than its
 * owner's own lag: the tick only sets how many timers one advance may look
 * at and leave (those of one tick), never the precision.
 *
 * Six levels. Level 0 has 1024 slots of one tick (the current 67 ms-aligned
 * block), so that most short sleeps never cascade (only those whose
 * deadline falls in the next block, once); levels 1 to 5 have 64 slots,
 * a slot of level L spanning 1024 * 64^(L-1) ticks; level 5 spans 2^40 ticks
 * (2^56 ns, about 2.3 years). A timer goes to the level of the highest slot
 * number (bits 0-9 of the tick, then 6-bit groups) in which its tick differs
 * from the wheel's position (`elapsed`). When the wheel reaches a slot of
 * level L > 0, that slot's timers cascade to lower levels (or fire, if their
 * deadline has come). A timer in a later 2^40-tick lap is put on level 5 at
 * the slot its tick's bits name and re-placed each time that slot comes
 * round, until it is near enough. Occupied bitmaps (one word per level
 * above 0; for level 0, 16 words and a word saying which are non-zero) find
 * the next busy slot with a few ctz, and each slot keeps the earliest
 * deadline in it, so the next deadline is exact in O(1).
 *
 * Timers are intrusive: the caller embeds a weft__timer (in a task frame) and
 * must not move it while it is armed. Every slot is a circular doubly linked
 * list with a sentinel, so insert and remove are O(1), and remove needs only
 * the timer's own links wherever it sits: a slot, the pending list, or a batch
 * that advance or drain has taken off the wheel. The wheel holds sentinels that
 * point to themselves: never copy or move it after init.
 *
 * Invariants (ticks are absolute: now_ns >> WEFT__WHEEL_TICK_SHIFT):
 *   1. A timer is armed iff link.next != NULL; `len` counts armed timers.
 *   2. A slot's occupied bit is set iff the slot is non-empty; then
 *      slot_min[L][s] is at or before every deadline in the slot, and at or
 *      after the instant the slot is due (the start of its first tick after
 *      elapsed). It equals the earliest deadline in the slot unless that
 *      timer was removed since: a removal leaves it early, never late, until
 *      the slot is next reached.
 *   3. Every timer in a slot has tick > elapsed (> now between advances). A
 *      timer whose tick is <= now waits on the pending list instead: when
 *      inserted (due already, or due within the current tick), or when an
 *      advance reached its tick before its deadline. `pending_min` is at or
 *      before every pending deadline, and exact after an advance unless a
 *      pending timer is removed.
 *   4. A timer on level L < 5 has its tick in the same span-aligned block of
 *      level L as elapsed, in a later slot; so the lowest occupied level
 *      holds the next expiry, and its first busy slot after elapsed is that
 *      expiry.
 *   5. elapsed <= now. They differ only inside advance, while elapsed walks
 *      from busy slot to busy slot towards the new now.
 */
#ifndef WEFT_REACTOR_WHEEL_H
#define WEFT_REACTOR_WHEEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEFT__WHEEL_LEVELS 6
#define WEFT__WHEEL_L0_BITS 10
#define WEFT__WHEEL_L0_SLOTS (1u << WEFT__WHEEL_L0_BITS)
#define WEFT__WHEEL_SLOTS 64    /* on each level above 0 */
#define WEFT__WHEEL_ALL_SLOTS (WEFT__WHEEL_L0_SLOTS + WEFT__WHEEL_SLOTS * (WEFT__WHEEL_LEVELS - 1))
#define WEFT__WHEEL_TICK_SHIFT 16
#define WEFT__WHEEL_NS_PER_TICK (1u << WEFT__WHEEL_TICK_SHIFT)

typedef struct weft__timer_link {
    struct weft__timer_link *next, *prev;
} weft__timer_link;

/* Embed one per pending sleep. All-zero (or weft__timer_init) is a valid
 * disarmed timer. Fields other than deadline_ns are the wheel's. */
typedef struct weft__timer {
    weft__timer_link link;  /* next == NULL: not armed */
    uint64_t tick;          /* the tick deadline_ns falls in */
    uint8_t level;          /* 0..5, or WEFT__WHEEL_LEVELS for the pending list */
    uint8_t kind;           /* the owner's: what fires (enum weft__timer_kind) */
    uint16_t slot;
    uint64_t deadline_ns;   /* read-only: as last passed to insert */
} weft__timer;

/* What a timer belongs to, for the driver's fire callback. */
enum weft__timer_kind { WEFT__TIMER_SLEEP = 0, WEFT__TIMER_OP_DEADLINE = 1, WEFT__TIMER_SCOPE = 2 };

typedef void (*weft__timer_fn)(weft__timer *t, void *arg);

typedef struct weft__wheel {
    uint64_t elapsed;       /* position: every slot up to this tick processed */
    uint64_t now;           /* tick of the latest advance (or init) */
    uint64_t pending_min;   /* invariant 3 */
    size_t len;
    bool busy;              /* inside advance or drain (catches re-entry) */
    uint64_t occupied[WEFT__WHEEL_LEVELS];      /* level 0's: which occupied0 words */
    uint64_t occupied0[WEFT__WHEEL_L0_SLOTS / 64];
    weft__timer_link pending;
    /* Level 0's slots, then 64 per level above it. */
    weft__timer_link slots[WEFT__WHEEL_ALL_SLOTS];
    uint64_t slot_min[WEFT__WHEEL_ALL_SLOTS];   /* invariant 2 */
} weft__wheel;

static inline void weft__timer_init(weft__timer *t, uint8_t kind)
{
    t->link.next = t->link.prev = NULL;
    t->kind = kind;
}

/* True from insert until the timer fires, is removed or is drained. */
static inline bool weft__timer_armed(const weft__timer *t)
{
    return t->link.next != NULL;
}

/* Empty wheel positioned at now_ns (a monotonic clock, e.g. CLOCK_MONOTONIC). */
void weft__wheel_init(weft__wheel *w, uint64_t now_ns);

/* Arm t to fire at the first advance whose now_ns >= deadline_ns; one at
 * or before the wheel's current time fires at the next advance. Inserting an
 * armed timer re-arms it (remove, then insert). */
void weft__wheel_insert(weft__wheel *w, weft__timer *t, uint64_t deadline_ns);

/* Disarm t. Returns false if it was not armed (never inserted, already fired,
 * removed or drained); calling it again is harmless. O(1). */
bool weft__wheel_remove(weft__wheel *w, weft__timer *t);

/* Armed timers. */
size_t weft__wheel_len(const weft__wheel *w);

/* The instant (ns) to wake up and advance: the earliest armed deadline, and
 * UINT64_MAX when empty (or when that deadline is UINT64_MAX itself). Never
 * later than the earliest deadline; earlier only after removals (invariants
 * 2 and 3), and then an advance to it fires nothing but brings it up to date.
 * It is already past when timers wait on the pending list overdue. */
uint64_t weft__wheel_next_deadline(const weft__wheel *w);

/* The next instant an advance changes the wheel: the earliest deadline, or
 * before it the start of the slot above level 0 that cascades next;
 * UINT64_MAX when empty. The driver wakes and advances at these (a timer
 * more than one level-0 span away costs a wake per level it cascades
 * through), and the simulator moves virtual time in these steps, so that a
 * far timer takes a jump per level before it fires and a near one fires in
 * one. */
uint64_t weft__wheel_next_change(const weft__wheel *w);

/* Move the wheel to now_ns (a now earlier than the last one leaves it
 * where it is) and call fire(t, arg) for every timer whose deadline <= now_ns:
 * first those that were pending, then the rest in nondecreasing tick order.
 * The order of timers within one tick is unspecified. Returns how many fired.
 *
 * t is disarmed before fire(t) runs. fire may insert and remove any timers,
 * including t (intervals) and timers due in this same advance (a removed one
 * does not fire). A timer inserted by fire with a tick <= now waits for the
 * NEXT advance (it goes to the pending list), even one already due: so one
 * advance is bounded by the timers armed when it began, and an interval that
 * fell behind catches up one period per advance instead of spinning. fire
 * must not call advance or drain.
 */
size_t weft__wheel_advance(weft__wheel *w, uint64_t now_ns, weft__timer_fn fire, void *arg);

/* Shutdown: disarm every armed timer and call fire on each, in no particular
 * order. Timers that fire inserts stay armed. Returns how many were drained. */
size_t weft__wheel_drain(weft__wheel *w, weft__timer_fn fire, void *arg);

#endif /* WEFT_REACTOR_WHEEL_H */
