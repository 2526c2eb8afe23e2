/*
 * reactor/wheel.c - the per-worker timing wheel (layout and invariants in
 * wheel.h).
 *
 * advance and drain never walk a slot in place: they move its whole list onto
 * a local batch first, then take timers off the batch one at a time. So a fire
 * callback may remove any timer, including one later in the batch (remove
 * unlinks by the timer's own links, and invariant 2 is restored by asking
 * whether the timer's recorded slot is now empty, which is right whether the
 * timer sat in that slot or in the batch), and a timer re-placed into the
 * slot being processed waits for that slot's next turn instead of looping.
 *
 * A timer whose tick the wheel reaches before its deadline goes back to the
 * pending list, and an advance walks that list only when something on it is
 * due (pending_min), putting back what is not. So ticks are fine (2^16 ns):
 * the timers an advance may look at and leave are those of one tick, not of
 * a whole millisecond, which a burst of sleeps can fill by the thousand.
 */
#include "reactor/wheel.h"

#include <assert.h>

#define LEVELS WEFT__WHEEL_LEVELS
#define L0_BITS WEFT__WHEEL_L0_BITS
#define L0_SLOTS WEFT__WHEEL_L0_SLOTS
#define SLOT_BITS 6
#define SLOT_MASK ((uint64_t)WEFT__WHEEL_SLOTS - 1)
#define LEVEL_PENDING LEVELS
/* Ticks one level-5 lap spans; timers further away are clamped to level 5. */
#define MAX_SPAN ((uint64_t)1 << (L0_BITS + SLOT_BITS * (LEVELS - 1)))

_Static_assert(WEFT__WHEEL_SLOTS == 1 << SLOT_BITS, "a slot bitmap is one uint64_t");
_Static_assert(L0_SLOTS % 64 == 0 && L0_SLOTS / 64 <= 64, "level 0's word bitmap is one uint64_t");
_Static_assert(LEVELS < 256 && L0_SLOTS <= 65536, "level and slot fit in their fields");

/* ---- ticks ---- */

/* The tick an instant falls in: a deadline's slot, or how far a clock
 * reading has come. No tick's start overflows. */
static uint64_t tick_of(uint64_t ns)
{
    return ns >> WEFT__WHEEL_TICK_SHIFT;
}

/* ---- intrusive circular lists with a sentinel head ---- */

static void list_init(weft__timer_link *h)
{
    h->next = h->prev = h;
}

static bool list_empty(const weft__timer_link *h)
{
    return h->next == h;
}

static void list_push_back(weft__timer_link *h, weft__timer_link *l)
{
    l->prev = h->prev;
    l->next = h;
    h->prev->next = l;
    h->prev = l;
}

/* Clearing the links is what marks the timer disarmed (invariant 1). */
static void list_unlink(weft__timer_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->next = l->prev = NULL;
}

/* Append every node of `from` to `to`, leaving `from` empty. O(1). */
static void list_splice_back(weft__timer_link *from, weft__timer_link *to)
{
    if (list_empty(from))
        return;
    from->next->prev = to->prev;
    to->prev->next = from->next;
    from->prev->next = to;
    to->prev = from->prev;
    list_init(from);
}

static weft__timer *timer_of(weft__timer_link *l)
{
    return (weft__timer *)((char *)l - offsetof(weft__timer, link));
}

/* ---- levels, slots and their bitmaps ---- */

static uint64_t bit(unsigned n)
{
    return (uint64_t)1 << n;
}

/* The lowest tick bit a level's slot number starts at, and its width. */
static unsigned level_shift(unsigned level)
{
    return level ? L0_BITS + SLOT_BITS * (level - 1) : 0;
}

static unsigned level_bits(unsigned level)
{
    return level ? SLOT_BITS : L0_BITS;
}

static unsigned slot_index(unsigned level, unsigned slot)
{
    return level ? L0_SLOTS + WEFT__WHEEL_SLOTS * (level - 1) + slot : slot;
}

static weft__timer_link *slot_list(weft__wheel *w, unsigned level, unsigned slot)
{
    return &w->slots[slot_index(level, slot)];
}

/* Level 0 has a bit per slot in occupied0 and, in occupied[0], a bit per
 * non-zero word of it (invariant 2). */
static bool slot_busy(const weft__wheel *w, unsigned level, unsigned slot)
{
    if (level == 0)
        return w->occupied0[slot / 64] & bit(slot % 64);
    return w->occupied[level] & bit(slot);
}

static void mark_busy(weft__wheel *w, unsigned level, unsigned slot)
{
    if (level == 0) {
        w->occupied0[slot / 64] |= bit(slot % 64);
        w->occupied[0] |= bit(slot / 64);
    } else {
        w->occupied[level] |= bit(slot);
    }
}

static void mark_empty(weft__wheel *w, unsigned level, unsigned slot)
{
    if (level == 0) {
        if ((w->occupied0[slot / 64] &= ~bit(slot % 64)) == 0)
            w->occupied[0] &= ~bit(slot / 64);
    } else {
        w->occupied[level] &= ~bit(slot);
    }
}

/* ---- placement ---- */

/* The level of the highest slot-number group in which tick differs from
 * elapsed. OR-ing level 0's mask makes "same level-0 block" level 0 and
 * keeps clz off 0; a difference past the six levels is clamped to level 5
 * (a partial lap). */
static unsigned level_for(uint64_t elapsed, uint64_t tick)
{
    uint64_t masked = (elapsed ^ tick) | (L0_SLOTS - 1);
    if (masked >= MAX_SPAN)
        masked = MAX_SPAN - 1;
    unsigned high = 63u - (unsigned)__builtin_clzll(masked);
    return high < L0_BITS ? 0 : 1 + (high - L0_BITS) / SLOT_BITS;
}

/* Put t (armed, tick > elapsed) into its slot (invariant 2: a slot that was
 * empty starts its minimum afresh). */
static void place(weft__wheel *w, weft__timer *t)
{
    assert(t->tick > w->elapsed);
    unsigned level = level_for(w->elapsed, t->tick);
    unsigned slot = (unsigned)((t->tick >> level_shift(level)) & (bit(level_bits(level)) - 1));
    t->level = (uint8_t)level;
    t->slot = (uint16_t)slot;
    list_push_back(slot_list(w, level, slot), &t->link);
    uint64_t *min = &w->slot_min[slot_index(level, slot)];
    if (!slot_busy(w, level, slot) || t->deadline_ns < *min)
        *min = t->deadline_ns;
    mark_busy(w, level, slot);
}

/* Put t (armed, tick <= now) on the pending list (invariant 3). */
static void put_pending(weft__wheel *w, weft__timer *t)
{
    t->level = LEVEL_PENDING;
    list_push_back(&w->pending, &t->link);
    if (t->deadline_ns < w->pending_min)
        w->pending_min = t->deadline_ns;
}

/* ---- next expiry ---- */

typedef struct expiry {
    unsigned level, slot;
    uint64_t tick;  /* when the slot is due: its first tick after elapsed */
} expiry;

static uint64_t rotate_right(uint64_t x, unsigned n)
{
    return n ? (x >> n) | (x << (64 - n)) : x;
}

/* Level 0's first busy slot after the cursor's. Invariant 4 puts every
 * level-0 timer there, in the same block, so the search never wraps. */
static unsigned first_busy_l0(const weft__wheel *w)
{
    unsigned from = (unsigned)(w->elapsed % L0_SLOTS) + 1, word = from / 64;
    if (word < L0_SLOTS / 64) {
        uint64_t bits = w->occupied0[word] & (~(uint64_t)0 << (from % 64));
        if (bits)
            return word * 64 + (unsigned)__builtin_ctzll(bits);
    }
    uint64_t words = w->occupied[0] & (~(uint64_t)0 << (word + 1));
    assert(words && "invariant 4: a busy level-0 slot lies after the cursor");
    word = (unsigned)__builtin_ctzll(words);
    return word * 64 + (unsigned)__builtin_ctzll(w->occupied0[word]);
}

/* The first busy slot of the lowest busy level (invariant 4 makes it the
 * earliest, and below level 5 its slot_min the earliest deadline). Its tick
 * is the start of the slot, which is at or before every timer in it, so
 * advance reaches it no later than the first of them is due.
 *
 * Above level 0 the search starts one past the cursor's slot, so the
 * cursor's own slot is looked at last. Below level 5 it is never busy
 * (invariant 4); on level 5 it can hold clamped far timers, which are due
 * only on the next lap, after every other slot of this one. */
static bool next_expiry(const weft__wheel *w, expiry *e)
{
    for (unsigned level = 0; level < LEVELS; level++) {
        uint64_t occupied = w->occupied[level];
        if (!occupied)
            continue;
        unsigned shift = level_shift(level), slot;
        if (level == 0) {
            slot = first_busy_l0(w);
        } else {
            unsigned from = (unsigned)(((w->elapsed >> shift) + 1) & SLOT_MASK);
            slot = (from + (unsigned)__builtin_ctzll(rotate_right(occupied, from))) &
                   (unsigned)SLOT_MASK;
        }
        uint64_t level_span = bit(shift + level_bits(level));
        uint64_t tick = (w->elapsed & ~(level_span - 1)) + ((uint64_t)slot << shift);
        /* Only clamped far timers sit at or behind the cursor. */
        if (tick <= w->elapsed) {
            assert(level == LEVELS - 1);
            tick += level_span;
        }
        *e = (expiry){ .level = level, .slot = slot, .tick = tick };
        return true;
    }
    return false;
}

/* ---- API ---- */

void weft__wheel_init(weft__wheel *w, uint64_t now_ns)
{
    w->elapsed = w->now = tick_of(now_ns);
    w->pending_min = UINT64_MAX;
    w->len = 0;
    w->busy = false;
    list_init(&w->pending);
    for (unsigned level = 0; level < LEVELS; level++)
        w->occupied[level] = 0;
    for (unsigned word = 0; word < L0_SLOTS / 64; word++)
        w->occupied0[word] = 0;
    for (unsigned i = 0; i < WEFT__WHEEL_ALL_SLOTS; i++)
        list_init(&w->slots[i]);
}

void weft__wheel_insert(weft__wheel *w, weft__timer *t, uint64_t deadline_ns)
{
    weft__wheel_remove(w, t);
    t->deadline_ns = deadline_ns;
    t->tick = tick_of(deadline_ns);
    w->len++;
    /* In the current tick or before it (or, inside advance, before the end
     * of the tick advance is moving to): the next advance looks at it. */
    if (t->tick > w->now)
        place(w, t);
    else
        put_pending(w, t);
}

bool weft__wheel_remove(weft__wheel *w, weft__timer *t)
{
    if (!weft__timer_armed(t))
        return false;
    list_unlink(&t->link);
    w->len--;
    if (t->level != LEVEL_PENDING && list_empty(slot_list(w, t->level, t->slot)))
        mark_empty(w, t->level, t->slot);
    return true;
}

size_t weft__wheel_len(const weft__wheel *w)
{
    return w->len;
}

/* The earliest deadline on a wheel with no pending timer, whose next
 * expiry is e. */
static uint64_t slotted_deadline(const weft__wheel *w, const expiry *e)
{
    if (e->level < LEVELS - 1)
        return w->slot_min[slot_index(e->level, e->slot)];
    /* Level 5 may hold a clamped far timer in a slot before a nearer one's
     * (invariant 4 stops short of it): the earliest of its slots. */
    uint64_t min = UINT64_MAX;
    for (uint64_t occ = w->occupied[LEVELS - 1]; occ; occ &= occ - 1) {
        uint64_t slot_min = w->slot_min[slot_index(LEVELS - 1, (unsigned)__builtin_ctzll(occ))];
        min = slot_min < min ? slot_min : min;
    }
    return min;
}

uint64_t weft__wheel_next_deadline(const weft__wheel *w)
{
    /* A pending deadline falls in a tick <= now, every slotted one in a
     * later tick, so pending wins outright. */
    if (!list_empty(&w->pending))
        return w->pending_min;
    expiry e;
    return next_expiry(w, &e) ? slotted_deadline(w, &e) : UINT64_MAX;
}

uint64_t weft__wheel_next_change(const weft__wheel *w)
{
    if (!list_empty(&w->pending))
        return w->pending_min;      /* as next_deadline */
    expiry e;
    if (!next_expiry(w, &e))
        return UINT64_MAX;
    if (e.level == 0)
        return slotted_deadline(w, &e);
    /* The slot's start is at or before every deadline on the wheel. */
    return e.tick > UINT64_MAX >> WEFT__WHEEL_TICK_SHIFT ? UINT64_MAX
                                                         : e.tick << WEFT__WHEEL_TICK_SHIFT;
}

/* Take each timer off a batch: cascade it to the level it now belongs to
 * (relative to the new elapsed) if its tick is still ahead, else fire it if
 * its deadline has come, else (it is in the current tick) leave it pending. */
static size_t run_batch(weft__wheel *w, weft__timer_link *batch, uint64_t now_ns,
                        weft__timer_fn fire, void *arg)
{
    size_t fired = 0;
    while (!list_empty(batch)) {
        weft__timer *t = timer_of(batch->next);
        list_unlink(&t->link);
        if (t->tick > w->elapsed) {
            place(w, t);
            continue;
        }
        if (t->deadline_ns > now_ns) {
            put_pending(w, t);
            continue;
        }
        w->len--;
        fire(t, arg);
        fired++;
    }
    return fired;
}

size_t weft__wheel_advance(weft__wheel *w, uint64_t now_ns, weft__timer_fn fire, void *arg)
{
    assert(!w->busy && "fire callbacks must not advance or drain the wheel");
    w->busy = true;
    uint64_t target = tick_of(now_ns);
    /* Raising now first is what defers timers that fire inserts with
     * tick <= target to the pending list (invariant 3). */
    if (target > w->now)
        w->now = target;

    weft__timer_link batch;
    list_init(&batch);
    size_t fired = 0;
    /* Nothing pending is due before pending_min: leave the list alone. */
    if (w->pending_min <= now_ns) {
        list_splice_back(&w->pending, &batch);
        w->pending_min = UINT64_MAX;
        fired = run_batch(w, &batch, now_ns, fire, arg);
    }

    expiry e;
    while (next_expiry(w, &e) && e.tick <= w->now) {
        w->elapsed = e.tick;
        list_splice_back(slot_list(w, e.level, e.slot), &batch);
        mark_empty(w, e.level, e.slot);
        fired += run_batch(w, &batch, now_ns, fire, arg);
    }
    /* No busy slot is due by now, so jumping keeps invariant 4. */
    w->elapsed = w->now;
    w->busy = false;
    return fired;
}

size_t weft__wheel_drain(weft__wheel *w, weft__timer_fn fire, void *arg)
{
    assert(!w->busy && "fire callbacks must not advance or drain the wheel");
    w->busy = true;
    weft__timer_link batch;
    list_init(&batch);
    list_splice_back(&w->pending, &batch);
    w->pending_min = UINT64_MAX;
    for (unsigned i = 0; i < WEFT__WHEEL_ALL_SLOTS; i++)
        list_splice_back(&w->slots[i], &batch);
    for (unsigned level = 0; level < LEVELS; level++)
        w->occupied[level] = 0;
    for (unsigned word = 0; word < L0_SLOTS / 64; word++)
        w->occupied0[word] = 0;
    size_t drained = 0;
    while (!list_empty(&batch)) {
        weft__timer *t = timer_of(batch.next);
        list_unlink(&t->link);
        w->len--;
        fire(t, arg);
        drained++;
    }
    w->busy = false;
    return drained;
}
