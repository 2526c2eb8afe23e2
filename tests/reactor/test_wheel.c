/*
 * tests/reactor/test_wheel.c - the per-worker timing wheel (reactor/wheel.h)
 * against a fake clock: the tests pass nanosecond instants to advance and
 * never sleep or read a real clock. Random tests use a fixed-seed splitmix64
 * and check the wheel against a brute-force model: the set of timers an
 * advance must fire is every armed timer whose deadline is at or before the
 * advance's now, and next_deadline is the earliest armed deadline (earlier
 * only once timers have been removed).
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "reactor/wheel.h"
#include "test_util.h"

#define MS 1000000ull
#define SEC (1000 * MS)
#define HOUR (3600 * SEC)
#define DAY (24 * HOUR)
#define TICK ((uint64_t)WEFT__WHEEL_NS_PER_TICK)
#define SPAN_TICKS (1ull << 40) /* ticks covered by the six levels */

typedef struct item {
    weft__timer t;
    uint64_t id;
    uint64_t fired;        /* total fire calls */
    uint64_t fired_now;    /* fire calls in the current advance */
    uint64_t last_tick;    /* tick of the advance that last fired it */
    bool model_armed;
    uint64_t model_deadline;
} item;

/* What a fire callback sees and records. */
typedef struct ctx {
    uint64_t now_ns;       /* the advance in progress */
    uint64_t prev_tick;    /* wheel tick of the previous fire in this run */
    bool ordered;          /* check nondecreasing ticks */
    size_t calls;
    /* Optional extra behaviour per test. */
    weft__wheel *w;
    void (*hook)(struct ctx *c, item *it);
    void *hook_arg;
} ctx;

/* The wheel tick a deadline falls in: the order advance fires in. */
static uint64_t tick_of(uint64_t deadline_ns)
{
    return deadline_ns / TICK;
}

static item *item_of(weft__timer *t)
{
    return (item *)((char *)t - offsetof(item, t));
}

static void on_fire(weft__timer *t, void *arg)
{
    ctx *c = arg;
    item *it = item_of(t);
    cr_assert(!weft__timer_armed(t), "timer %lu armed inside its fire callback",
              (unsigned long)it->id);
    cr_assert_leq(t->deadline_ns, c->now_ns, "timer %lu fired early: deadline %lu > now %lu",
                  (unsigned long)it->id, (unsigned long)t->deadline_ns, (unsigned long)c->now_ns);
    if (c->ordered) {
        cr_assert_geq(tick_of(t->deadline_ns), c->prev_tick, "timer %lu fired out of order",
                      (unsigned long)it->id);
        c->prev_tick = tick_of(t->deadline_ns);
    }
    it->fired++;
    it->fired_now++;
    it->last_tick = c->now_ns / MS;
    c->calls++;
    if (c->hook)
        c->hook(c, it);
}

static size_t advance(weft__wheel *w, ctx *c, uint64_t now_ns)
{
    c->now_ns = now_ns;
    return weft__wheel_advance(w, now_ns, on_fire, c);
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

/* A distance (ns) spread over every level, including past the 2^40-tick
 * span, and often within the current tick or the next few. */
static uint64_t rnd_distance(void)
{
    unsigned level = (unsigned)rnd_below(8);
    uint64_t ticks;
    if (level < 6)
        ticks = rnd_below(1ull << (WEFT__WHEEL_L0_BITS + 6 * level));
    else if (level == 6)
        ticks = SPAN_TICKS + rnd_below(SPAN_TICKS * 8); /* clamped: beyond the six levels */
    else
        ticks = rnd_below(4);
    return ticks * TICK + rnd_below(TICK);
}

/* A clock step: mostly small, sometimes hours, days or a whole level-5 lap. */
static uint64_t rnd_step(void)
{
    switch (rnd_below(10)) {
    case 0: return 0;
    case 1: return rnd_below(MS);
    case 2: case 3: return rnd_below(5 * MS);
    case 4: return rnd_below(100 * MS);
    case 5: return rnd_below(10 * SEC);
    case 6: return rnd_below(HOUR);
    case 7: return rnd_below(30 * DAY);
    case 8: return rnd_below(SPAN_TICKS * TICK / 4);
    default: return rnd_below(SPAN_TICKS * TICK * 2);
    }
}

static weft__wheel *new_wheel(uint64_t now_ns)
{
    weft__wheel *w = malloc(sizeof *w);
    cr_assert_not_null(w);
    weft__wheel_init(w, now_ns);
    return w;
}

static item *new_items(size_t n)
{
    item *items = calloc(n, sizeof *items);
    cr_assert_not_null(items);
    for (size_t i = 0; i < n; i++)
        items[i].id = i;
    return items;
}

static void reset_fired_now(item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        items[i].fired_now = 0;
}

/* Advance and check against the model: exactly the armed timers whose
 * deadline has come fire, each once. */
static void advance_checked(weft__wheel *w, ctx *c, item *items, size_t n, uint64_t now_ns)
{
    reset_fired_now(items, n);
    size_t expect = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].model_armed && items[i].model_deadline <= now_ns)
            expect++;
    size_t fired = advance(w, c, now_ns);
    cr_assert_eq(fired, expect, "now %lu: fired %zu, model says %zu", (unsigned long)now_ns,
                 fired, expect);
    for (size_t i = 0; i < n; i++) {
        item *it = &items[i];
        bool due = it->model_armed && it->model_deadline <= now_ns;
        cr_assert_eq(it->fired_now, due ? 1u : 0u, "timer %zu (deadline %lu, now %lu) fired %lu",
                     i, (unsigned long)it->model_deadline, (unsigned long)now_ns,
                     (unsigned long)it->fired_now);
        if (due)
            it->model_armed = false;
        cr_assert_eq(weft__timer_armed(&it->t), it->model_armed, "timer %zu armed state", i);
    }
    /* What a driver parks until, or a simulator jumps to, is ahead: waking
     * there makes progress, never a loop at the same time. */
    cr_assert_gt(weft__wheel_next_deadline(w), now_ns, "next deadline not ahead of now");
    cr_assert_gt(weft__wheel_next_change(w), now_ns, "next change not ahead of now");
}

/* next_deadline is never later than the earliest armed deadline, equal to
 * it when `exact` (no timer was removed), and UINT64_MAX when the wheel is
 * empty. */
static void check_next_deadline(weft__wheel *w, item *items, size_t n, bool exact)
{
    uint64_t min = UINT64_MAX;
    size_t armed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!items[i].model_armed)
            continue;
        armed++;
        if (items[i].model_deadline < min)
            min = items[i].model_deadline;
    }
    cr_assert_eq(weft__wheel_len(w), armed);
    uint64_t next = weft__wheel_next_deadline(w);
    if (armed == 0)
        cr_assert_eq(next, UINT64_MAX);
    cr_assert_leq(next, min, "next_deadline %lu later than earliest armed %lu",
                  (unsigned long)next, (unsigned long)min);
    if (exact)
        cr_assert_eq(next, min, "next_deadline %lu, earliest armed %lu", (unsigned long)next,
                     (unsigned long)min);
    cr_assert_leq(weft__wheel_next_change(w), next, "a change no later than the deadline");
}

static void model_insert(weft__wheel *w, item *it, uint64_t deadline)
{
    weft__wheel_insert(w, &it->t, deadline);
    it->model_armed = true;
    it->model_deadline = deadline;
}

Test(wheel, single_timer_fires_exactly_at_its_deadline)
{
    const uint64_t base = 12345 * MS + 678;
    weft__wheel *w = new_wheel(base);
    ctx c = { 0 };
    item *it = new_items(2);

    /* 5.3 ms ahead, mid-tick: it fires at the deadline itself, not at the
     * end of its tick. */
    uint64_t deadline = base + 5 * MS + 300001;
    cr_assert_neq(deadline % TICK, 0, "mid-tick");
    weft__wheel_insert(w, &it[0].t, deadline);
    cr_assert(weft__timer_armed(&it[0].t));
    cr_assert_eq(weft__wheel_len(w), 1);
    cr_assert_eq(it[0].t.deadline_ns, deadline);
    cr_assert_eq(weft__wheel_next_deadline(w), deadline, "exact");

    for (uint64_t now = base; now < deadline; now += 97 * 1000)
        cr_assert_eq(advance(w, &c, now), 0, "fired early at %lu", (unsigned long)now);
    cr_assert_eq(advance(w, &c, deadline - 1), 0);
    cr_assert_eq(weft__wheel_next_deadline(w), deadline);
    cr_assert_eq(advance(w, &c, deadline), 1);
    cr_assert_eq(it[0].fired, 1);
    cr_assert(!weft__timer_armed(&it[0].t));
    cr_assert_eq(weft__wheel_len(w), 0);
    cr_assert_eq(weft__wheel_next_deadline(w), UINT64_MAX);
    cr_assert_eq(advance(w, &c, deadline + HOUR), 0);

    /* 70 ms ahead is on level 1: next_deadline is still the deadline, and
     * one advance to it cascades and fires. */
    uint64_t far = deadline + HOUR + 70 * MS;
    weft__wheel_insert(w, &it[1].t, far);
    cr_assert_eq(weft__wheel_next_deadline(w), far);
    cr_assert_eq(advance(w, &c, far - 1), 0);
    cr_assert_eq(weft__wheel_next_deadline(w), far);
    cr_assert_eq(advance(w, &c, far), 1);
    cr_assert_eq(it[1].fired, 1);

    free(it);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

/* The wheel reaches a timer's tick before its deadline: the timer stays
 * armed, next_deadline is its deadline, and it fires at that instant, while
 * a timer of the same tick whose deadline has come fires. */
Test(wheel, timer_in_current_tick_waits_for_its_deadline)
{
    const uint64_t base = 1000 * TICK;
    weft__wheel *w = new_wheel(base);
    ctx c = { 0 };
    item *it = new_items(4);
    uint64_t early = base + 3 * TICK + TICK / 4, late = base + 3 * TICK + TICK / 2;
    weft__wheel_insert(w, &it[0].t, late);
    weft__wheel_insert(w, &it[1].t, early);
    /* Inserted while the wheel is already in their tick. */
    weft__wheel_insert(w, &it[2].t, base + TICK / 2);
    weft__wheel_insert(w, &it[3].t, base + TICK / 3);
    cr_assert_eq(weft__wheel_next_deadline(w), base + TICK / 3);
    cr_assert_eq(advance(w, &c, base + TICK / 3), 1);
    cr_assert_eq(it[3].fired, 1);
    cr_assert_eq(weft__wheel_next_deadline(w), base + TICK / 2);
    cr_assert_eq(advance(w, &c, base + TICK / 2 - 1), 0, "same tick, not due");
    cr_assert_eq(advance(w, &c, base + TICK / 2), 1);

    cr_assert_eq(weft__wheel_next_deadline(w), early);
    cr_assert_eq(advance(w, &c, base + 3 * TICK), 0, "tick reached, no deadline yet");
    cr_assert(weft__timer_armed(&it[0].t) && weft__timer_armed(&it[1].t));
    cr_assert_eq(weft__wheel_next_deadline(w), early);
    cr_assert_eq(advance(w, &c, early), 1);
    cr_assert_eq(it[1].fired, 1);
    cr_assert_eq(it[0].fired, 0);
    cr_assert_eq(weft__wheel_next_deadline(w), late);
    cr_assert_eq(advance(w, &c, late - 1), 0);
    cr_assert_eq(advance(w, &c, late), 1);
    cr_assert_eq(it[0].fired, 1);
    cr_assert_eq(weft__wheel_len(w), 0);
    cr_assert_eq(weft__wheel_next_deadline(w), UINT64_MAX);
    free(it);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

/* next_change steps towards a far deadline through its cascade points: each
 * advance to it fires nothing until the last, and the last is the deadline;
 * a near one (level 0) is its deadline at once. */
Test(wheel, next_change_walks_the_cascade_points)
{
    const uint64_t base = 3 * SEC + 12345;
    weft__wheel *w = new_wheel(base);
    ctx c = { 0 };
    item *it = new_items(1);
    uint64_t far = base + 2 * HOUR + 777;
    weft__wheel_insert(w, &it[0].t, far);
    size_t hops = 0;
    for (uint64_t next; (next = weft__wheel_next_change(w)) < far; hops++) {
        cr_assert_eq(weft__wheel_next_deadline(w), far);
        cr_assert_eq(advance(w, &c, next), 0);
        cr_assert_gt(weft__wheel_next_change(w), next, "progress");
        cr_assert_lt(hops, WEFT__WHEEL_LEVELS);
    }
    cr_assert_geq(hops, 1, "two hours away cascades");
    cr_assert_eq(weft__wheel_next_change(w), far);
    cr_assert_eq(advance(w, &c, far), 1);
    weft__wheel_insert(w, &it[0].t, far + 5 * MS);
    cr_assert_eq(weft__wheel_next_change(w), far + 5 * MS, "level 0: the deadline");
    cr_assert(weft__wheel_remove(w, &it[0].t));
    free(it);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

/* A removal may leave next_deadline early (never late); one advance to it
 * fires nothing and brings it back to the earliest deadline. */
Test(wheel, next_deadline_after_removal)
{
    weft__wheel *w = new_wheel(0);
    ctx c = { 0 };
    item *it = new_items(3);
    weft__wheel_insert(w, &it[0].t, 5 * MS + 7);
    weft__wheel_insert(w, &it[1].t, 5 * MS + 9);
    weft__wheel_insert(w, &it[2].t, 40 * MS);
    cr_assert_eq(weft__wheel_next_deadline(w), 5 * MS + 7);
    cr_assert(weft__wheel_remove(w, &it[0].t));
    uint64_t next = weft__wheel_next_deadline(w);
    cr_assert_leq(next, 5 * MS + 9);
    cr_assert_eq(advance(w, &c, next), next == 5 * MS + 9 ? 1u : 0u);
    if (next != 5 * MS + 9) {
        cr_assert_eq(weft__wheel_next_deadline(w), 5 * MS + 9, "brought up to date");
        cr_assert_eq(advance(w, &c, 5 * MS + 9), 1);
    }
    cr_assert(weft__wheel_remove(w, &it[2].t));
    cr_assert_eq(weft__wheel_len(w), 0);
    cr_assert_eq(weft__wheel_next_deadline(w), UINT64_MAX);
    free(it);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

Test(wheel, past_deadline_fires_at_next_advance)
{
    weft__wheel *w = new_wheel(50 * MS);
    ctx c = { 0 };
    item *it = new_items(3);
    weft__wheel_insert(w, &it[0].t, 0);
    weft__wheel_insert(w, &it[1].t, 50 * MS);     /* exactly now */
    weft__wheel_insert(w, &it[2].t, 49 * MS + 1); /* in the past */
    cr_assert_eq(weft__wheel_len(w), 3);
    cr_assert_eq(weft__wheel_next_deadline(w), 0, "due already: earliest is 0");
    cr_assert_eq(advance(w, &c, 50 * MS), 3, "same now: still fires");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(it[i].fired, 1);
    cr_assert_eq(weft__wheel_next_deadline(w), UINT64_MAX);
    free(it);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

Test(wheel, remove_before_and_after_fire)
{
    weft__wheel *w = new_wheel(0);
    ctx c = { 0 };
    item *it = new_items(4);
    const uint64_t deadlines[4] = { 3 * MS, 3 * MS, 5000 * MS, 0 };
    for (int i = 0; i < 4; i++)
        weft__wheel_insert(w, &it[i].t, deadlines[i]);
    cr_assert(weft__wheel_remove(w, &it[1].t), "same slot as a timer that stays");
    cr_assert(weft__wheel_remove(w, &it[2].t), "level 2");
    cr_assert(weft__wheel_remove(w, &it[3].t), "pending list");
    cr_assert(!weft__wheel_remove(w, &it[2].t), "idempotent");
    cr_assert(!weft__timer_armed(&it[2].t));
    cr_assert_eq(weft__wheel_len(w), 1);
    cr_assert_eq(weft__wheel_next_deadline(w), 3 * MS);

    cr_assert_eq(advance(w, &c, DAY), 1);
    cr_assert_eq(it[0].fired, 1);
    cr_assert_eq(it[1].fired + it[2].fired + it[3].fired, 0);
    cr_assert(!weft__wheel_remove(w, &it[0].t), "already fired");
    cr_assert_eq(weft__wheel_len(w), 0);

    item never = { 0 };
    cr_assert(!weft__wheel_remove(w, &never.t), "zeroed timer is disarmed");
    weft__timer_init(&never.t, WEFT__TIMER_SLEEP);
    cr_assert(!weft__timer_armed(&never.t));
    free(it);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

Test(wheel, insert_on_armed_timer_rearms_it)
{
    weft__wheel *w = new_wheel(0);
    ctx c = { 0 };
    item *it = new_items(1);
    weft__wheel_insert(w, &it[0].t, 10 * MS);
    weft__wheel_insert(w, &it[0].t, 3 * DAY);
    cr_assert_eq(weft__wheel_len(w), 1);
    cr_assert_eq(advance(w, &c, 10 * MS), 0);
    weft__wheel_insert(w, &it[0].t, 20 * MS);
    cr_assert_eq(weft__wheel_len(w), 1);
    cr_assert_eq(advance(w, &c, 20 * MS), 1);
    cr_assert_eq(advance(w, &c, 4 * DAY), 0);
    free(it);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

/* Interval: fire re-inserts the same timer one period after its deadline. */
static void reinsert_period(ctx *c, item *it)
{
    weft__wheel_insert(c->w, &it->t, it->t.deadline_ns + *(uint64_t *)c->hook_arg);
}

Test(wheel, interval_reinserts_itself_from_fire)
{
    weft__wheel *w = new_wheel(0);
    uint64_t period = 7 * MS;
    ctx c = { .w = w, .hook = reinsert_period, .hook_arg = &period, .ordered = true };
    item *it = new_items(1);
    weft__wheel_insert(w, &it[0].t, period);
    for (uint64_t ms = 1; ms <= 1000; ms++) {
        size_t n = advance(w, &c, ms * MS);
        cr_assert_eq(n, ms % 7 == 0 ? 1u : 0u, "ms %lu", (unsigned long)ms);
        if (n)
            cr_assert_eq(it[0].last_tick, ms);
        cr_assert(weft__timer_armed(&it[0].t));
        cr_assert_leq(weft__wheel_next_deadline(w), (ms / 7 + 1) * 7 * MS);
    }
    cr_assert_eq(it[0].fired, 1000 / 7);
    cr_assert(weft__wheel_remove(w, &it[0].t));
    free(it);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

/* Documented choice: a timer that fire inserts with a tick <= the advance's
 * now waits for the NEXT advance. An interval that fell behind therefore
 * catches up one period per advance; one advance never spins on it. */
Test(wheel, interval_behind_catches_up_one_per_advance)
{
    weft__wheel *w = new_wheel(0);
    uint64_t period = 10 * MS;
    ctx c = { .w = w, .hook = reinsert_period, .hook_arg = &period };
    item *it = new_items(1);
    weft__wheel_insert(w, &it[0].t, period);
    cr_assert_eq(advance(w, &c, 1000 * MS), 1, "a jump of 100 periods fires it once");
    cr_assert_eq(it[0].t.deadline_ns, 20 * MS);
    cr_assert_leq(weft__wheel_next_deadline(w), 1000 * MS, "overdue: wake at once");
    for (int i = 2; i <= 100; i++)
        cr_assert_eq(advance(w, &c, 1000 * MS), 1, "catch-up %d", i);
    cr_assert_eq(it[0].t.deadline_ns, 1010 * MS);
    cr_assert_gt(weft__wheel_next_deadline(w), 1000 * MS, "caught up");
    cr_assert_leq(weft__wheel_next_deadline(w), 1010 * MS);
    cr_assert_eq(advance(w, &c, 1000 * MS), 0);
    cr_assert(weft__wheel_remove(w, &it[0].t));
    free(it);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

typedef struct spawn_plan {
    item *child;
    uint64_t deadline;
} spawn_plan;

static void insert_child(ctx *c, item *it)
{
    spawn_plan *p = c->hook_arg;
    if (it != p->child)
        weft__wheel_insert(c->w, &p->child->t, p->deadline);
}

Test(wheel, insert_from_fire_with_past_deadline_fires_next_advance)
{
    /* Past, due within the jump being advanced, and after it. */
    const uint64_t deadlines[3] = { 1 * MS, 150 * MS, 201 * MS };
    for (int k = 0; k < 3; k++) {
        weft__wheel *w = new_wheel(0);
        item *it = new_items(2);
        spawn_plan plan = { .child = &it[1], .deadline = deadlines[k] };
        ctx c = { .w = w, .hook = insert_child, .hook_arg = &plan };
        weft__wheel_insert(w, &it[0].t, 100 * MS);
        cr_assert_eq(advance(w, &c, 200 * MS), 1);
        cr_assert_eq(it[1].fired, 0, "case %d: not in the same advance", k);
        cr_assert(weft__timer_armed(&it[1].t));
        uint64_t next = weft__wheel_next_deadline(w);
        cr_assert_eq(next, deadlines[k], "case %d", k);
        size_t n = advance(w, &c, 200 * MS);
        cr_assert_eq(n, k < 2 ? 1u : 0u, "case %d: due ones fire at the next advance", k);
        if (k == 2) {
            cr_assert_eq(next, 201 * MS);
            cr_assert_eq(advance(w, &c, 201 * MS), 1);
        }
        cr_assert_eq(it[1].fired, 1);
        cr_assert_eq(weft__wheel_len(w), 0);
        free(it);
        free(w);
    }
    WEFT_ASSERT_NO_LEAKS();
}

/* fire removes other timers that are due in the same advance: from the same
 * slot (already taken into advance's batch), a later level and the pending
 * list. They must not fire. The first of items[0..3] to fire removes the
 * other three (the order within a tick is unspecified). */
typedef struct victims {
    item *items;
    bool done;
} victims;

static void remove_victims(ctx *c, item *it)
{
    victims *v = c->hook_arg;
    if (it - v->items >= 4 || v->done)
        return;
    v->done = true;
    for (int i = 0; i < 4; i++)
        if (&v->items[i] != it)
            cr_assert(weft__wheel_remove(c->w, &v->items[i].t), "victim %d armed", i);
}

static uint64_t fired_sum(const item *items, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += items[i].fired;
    return sum;
}

Test(wheel, fire_removes_timers_due_in_the_same_advance)
{
    weft__wheel *w = new_wheel(10 * MS);
    item *it = new_items(5);
    victims v = { .items = it };
    ctx c = { .w = w, .hook = remove_victims, .hook_arg = &v };
    weft__wheel_insert(w, &it[4].t, 0);         /* pending bystander */
    weft__wheel_insert(w, &it[0].t, 0);         /* pending */
    weft__wheel_insert(w, &it[3].t, 0);         /* pending */
    weft__wheel_insert(w, &it[1].t, 20 * MS);   /* level 0 */
    weft__wheel_insert(w, &it[2].t, 9000 * MS); /* level 2 */
    cr_assert_eq(advance(w, &c, 10 * SEC), 2);
    cr_assert_eq(it[4].fired, 1);
    cr_assert_eq(fired_sum(it, 4), 1);
    cr_assert_eq(weft__wheel_len(w), 0);
    cr_assert_eq(weft__wheel_next_deadline(w), UINT64_MAX);

    /* Same tick: they share a slot at every level they cascade through, and
     * the last batch holds all four when the first fires. */
    v.done = false;
    for (int i = 0; i < 4; i++)
        weft__wheel_insert(w, &it[i].t, 20 * SEC);
    cr_assert_eq(advance(w, &c, 20 * SEC), 1);
    cr_assert_eq(fired_sum(it, 4), 2);
    cr_assert_eq(weft__wheel_len(w), 0);
    free(it);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

/* Everything armed up front (all levels and the level-5 clamp), then random
 * clock jumps until empty: the whole firing sequence is in nondecreasing tick
 * order and every advance fires exactly the model's due set. */
Test(wheel, random_deadlines_fire_in_order_across_levels)
{
    enum { N = 20000 };
    rng_state = 0x5eed0001;
    const uint64_t base = 987654321 * MS + 4321;
    weft__wheel *w = new_wheel(base);
    item *items = new_items(N);
    ctx c = { .ordered = true };
    for (size_t i = 0; i < N; i++) {
        uint64_t d = rnd_distance();
        model_insert(w, &items[i], base + (rnd_below(8) ? d : d % (3 * MS)));
    }
    check_next_deadline(w, items, N, true);
    uint64_t now = base;
    size_t advances = 0;
    while (weft__wheel_len(w) > 0) {
        now += rnd_step();
        advance_checked(w, &c, items, N, now);
        check_next_deadline(w, items, N, true);
        advances++;
        cr_assert_lt(advances, 100000, "wheel never empties");
    }
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(items[i].fired, 1, "timer %zu fired %lu times", i,
                     (unsigned long)items[i].fired);
    free(items);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

/* Mixed inserts, re-arms, removes and advances (random steps, and straight to
 * next_deadline), with the model checked after every operation. Advancing to
 * next_deadline always makes progress: something fires or it moves later. */
Test(wheel, random_operations_match_model)
{
    enum { N = 2048, STEPS = 40000 };
    rng_state = 0x5eed0002;
    uint64_t now = 42 * DAY + 17;
    weft__wheel *w = new_wheel(now);
    item *items = new_items(N);
    ctx c = { .ordered = false };
    for (size_t step = 0; step < STEPS; step++) {
        item *it = &items[rnd_below(N)];
        unsigned op = (unsigned)rnd_below(100);
        if (op < 45) {
            uint64_t d = rnd_distance();
            uint64_t deadline = rnd_below(10) ? now + d : (now > d ? now - d : 0);
            model_insert(w, it, deadline);
        } else if (op < 60) {
            cr_assert_eq(weft__wheel_remove(w, &it->t), it->model_armed);
            it->model_armed = false;
        } else if (op < 80) {
            /* Mostly steps under an hour, so 40000 steps stay far from
             * overflowing the ns clock; a few large ones still lap level 5. */
            uint64_t jump = rnd_step();
            now += rnd_below(50) ? jump % HOUR : jump;
            advance_checked(w, &c, items, N, now);
        } else {
            uint64_t next = weft__wheel_next_deadline(w);
            if (next == UINT64_MAX)
                continue;
            if (next > now)
                now = next;
            advance_checked(w, &c, items, N, now);
            size_t fired = 0;
            for (size_t i = 0; i < N; i++)
                fired += items[i].fired_now;
            cr_assert(fired > 0 || weft__wheel_next_deadline(w) > next,
                      "advance to next_deadline made no progress");
        }
        check_next_deadline(w, items, N, false);
    }
    cr_assert_lt(now, 1ull << 63, "the fake clock stayed far from wrapping");
    c.now_ns = UINT64_MAX; /* drain fires future timers too */
    weft__wheel_drain(w, on_fire, &c);
    cr_assert_eq(weft__wheel_len(w), 0);
    free(items);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

/* Hours, days, years and beyond the 2^40-tick span, fired by a few huge jumps:
 * far timers cascade (or wrap round level 5) without ever firing early. */
Test(wheel, large_jumps_and_far_future)
{
    const uint64_t far[] = {
        2 * HOUR + 1, 3 * DAY, 400 * DAY + 5 * MS, (SPAN_TICKS - 1) * TICK, SPAN_TICKS * TICK,
        (SPAN_TICKS + 1) * TICK + 1, 3 * SPAN_TICKS * TICK + 12345 * MS, 10 * 365 * DAY,
        (1ull << 40) * MS + 999999,
    };
    enum { NF = sizeof far / sizeof far[0] };
    rng_state = 0x5eed0003;
    const uint64_t base = 5 * MS + 5;
    weft__wheel *w = new_wheel(base);
    item *items = new_items(NF);
    ctx c = { .ordered = true };
    for (size_t i = 0; i < NF; i++)
        model_insert(w, &items[i], base + far[i]);
    /* Jumps that land just before, on and after each deadline. */
    for (size_t i = 0; i < NF; i++) {
        uint64_t at = base + far[i];
        advance_checked(w, &c, items, NF, at - 1);
        check_next_deadline(w, items, NF, true);
        advance_checked(w, &c, items, NF, at);
        cr_assert_eq(items[i].fired, 1, "far timer %zu", i);
        check_next_deadline(w, items, NF, true);
    }
    /* One jump over everything. */
    for (size_t i = 0; i < NF; i++)
        model_insert(w, &items[i], base + far[NF - 1 - i] + base + far[NF - 1]);
    check_next_deadline(w, items, NF, true);
    advance_checked(w, &c, items, NF, 3 * (base + far[NF - 1]));
    cr_assert_eq(weft__wheel_len(w), 0);
    free(items);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

Test(wheel, end_of_time)
{
    weft__wheel *w = new_wheel(0);
    ctx c = { 0 };
    item *items = new_items(2);
    weft__wheel_insert(w, &items[0].t, UINT64_MAX);
    weft__wheel_insert(w, &items[1].t, UINT64_MAX - 1);
    /* Both sit in the final tick, 2^8 level-5 laps away: next_deadline is
     * exact all the same, and one advance laps there. */
    cr_assert_eq(weft__wheel_next_deadline(w), UINT64_MAX - 1);
    cr_assert_eq(advance(w, &c, UINT64_MAX - 2), 0);
    cr_assert_eq(weft__wheel_next_deadline(w), UINT64_MAX - 1);
    cr_assert_eq(advance(w, &c, UINT64_MAX - 1), 1);
    cr_assert_eq(items[1].fired, 1);
    /* A deadline of UINT64_MAX reads as none, as documented. */
    cr_assert_eq(weft__wheel_len(w), 1);
    cr_assert_eq(weft__wheel_next_deadline(w), UINT64_MAX);
    cr_assert_eq(advance(w, &c, UINT64_MAX), 1);
    cr_assert_eq(weft__wheel_len(w), 0);
    free(items);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

Test(wheel, million_timers_insert_remove)
{
    enum { N = 1000000 };
    rng_state = 0x5eed0004;
    weft__wheel *w = new_wheel(0);
    item *items = new_items(N);
    ctx c = { 0 };
    for (size_t i = 0; i < N; i++)
        weft__wheel_insert(w, &items[i].t, rnd_distance());
    cr_assert_eq(weft__wheel_len(w), N);
    for (size_t i = 0; i < N; i += 2)
        cr_assert(weft__wheel_remove(w, &items[i].t));
    for (size_t i = 0; i < N; i += 2)
        cr_assert(!weft__wheel_remove(w, &items[i].t));
    cr_assert_eq(weft__wheel_len(w), N / 2);
    size_t fired = 0;
    for (uint64_t now = 0; weft__wheel_len(w) > 0; now += 97 * SEC + (now >> 2))
        fired += advance(w, &c, now);
    cr_assert_eq(fired, N / 2);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(items[i].fired, i % 2, "timer %zu", i);
    for (size_t i = 0; i < N; i++)
        weft__wheel_insert(w, &items[i].t, rnd_distance());
    for (size_t i = N; i-- > 0;)
        cr_assert(weft__wheel_remove(w, &items[i].t));
    cr_assert_eq(weft__wheel_len(w), 0);
    cr_assert_eq(weft__wheel_next_deadline(w), UINT64_MAX);
    free(items);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}

/* During drain, item 0's callback removes item 1 (still in drain's batch)
 * and arms item 2 again, which stays armed. */
static void drain_hook(ctx *c, item *it)
{
    item *items = c->hook_arg;
    if (it == &items[0]) {
        weft__wheel_remove(c->w, &items[1].t);
        weft__wheel_insert(c->w, &items[2].t, 5 * DAY);
    }
}

Test(wheel, drain_disarms_everything)
{
    enum { N = 4096 };
    rng_state = 0x5eed0005;
    weft__wheel *w = new_wheel(SEC);
    item *items = new_items(N);
    ctx c = { .now_ns = UINT64_MAX, .w = w };
    for (size_t i = 0; i < N; i++)
        weft__wheel_insert(w, &items[i].t, SEC + rnd_distance() - 2 * MS);
    cr_assert_eq(weft__wheel_drain(w, on_fire, &c), N);
    cr_assert_eq(weft__wheel_len(w), 0);
    cr_assert_eq(weft__wheel_next_deadline(w), UINT64_MAX);
    for (size_t i = 0; i < N; i++) {
        cr_assert_eq(items[i].fired, 1);
        cr_assert(!weft__timer_armed(&items[i].t));
    }
    cr_assert_eq(advance(w, &c, UINT64_MAX), 0);
    cr_assert_eq(weft__wheel_drain(w, on_fire, &c), 0);

    weft__wheel *w2 = new_wheel(0);
    c.w = w2;
    c.hook = drain_hook;
    c.hook_arg = items;
    weft__wheel_insert(w2, &items[0].t, 1 * MS);
    weft__wheel_insert(w2, &items[1].t, 2 * MS);
    weft__wheel_insert(w2, &items[2].t, 3 * MS);
    /* Item 2 left the batch when it was re-armed: only item 0 drains. */
    cr_assert_eq(weft__wheel_drain(w2, on_fire, &c), 1);
    cr_assert_eq(items[1].fired, 1, "removed by the callback: not drained");
    cr_assert(weft__timer_armed(&items[2].t), "inserted by the callback: stays armed");
    cr_assert_eq(weft__wheel_len(w2), 1);
    c.hook = NULL;
    cr_assert_eq(weft__wheel_drain(w2, on_fire, &c), 1);
    cr_assert_eq(weft__wheel_len(w2), 0);
    free(w2);
    free(items);
    free(w);
    WEFT_ASSERT_NO_LEAKS();
}
