/*
 * tests/core/test_scope.c - deadline scopes (weft/scope.h): an expiry ends
 * the waits inside its scope with -ETIMEDOUT and nothing else; nested scopes
 * take the earliest deadline and each sees only what encloses it; shields
 * defer an expiry; a completion that came first is reported; exit leaves no
 * timer armed; misuse is refused.
 *
 * Most tests run under the simulator, in virtual time: a deadline there is
 * exact and costs no real time, so nothing depends on the machine's load.
 * The clock checks ("no timer left") read the virtual clock: a timer left
 * armed would make the simulator jump to it.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>

#include "test_util.h"
#include "weft/scope.h"
#include "weft/sim.h"
#include "weft/weft.h"

#define MS 1000000ull
#define HOUR (3600ull * 1000 * MS)

TestSuite(scope, .timeout = 30);

static weft_outcome sim_run(const weft_task_desc *d, int want_rc, uint64_t *elapsed)
{
    weft_runtime *rt;
    weft_sim_opts o = { .seed = 7 };
    cr_assert_eq(weft_sim_runtime_new(&rt, &o), 0);
    uint64_t start = weft_sim_now(rt);
    weft_outcome out = { 0 };
    cr_assert_eq(weft_block_on(rt, d, &out), want_rc);
    if (elapsed)
        *elapsed = weft_sim_now(rt) - start;
    weft_runtime_free(rt);
    return out;
}

/* Each task returns a mask of the checks that failed inside it (0: all held). */
#define EXPECT(bit, cond) (t->bad |= (cond) ? 0u : 1u << (bit))

static void expect_ok(const weft_task_desc *d, uint64_t *elapsed)
{
    weft_outcome out = sim_run(d, 0, elapsed);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 0, "failed checks inside the task: mask %#llx",
                 (unsigned long long)out.value);
}

/* ---- expiry during a sleep; provenance; the code after the scope runs ---- */

struct one {
    weft_frame f;
    weft_scope sc;
    weft_sleep s;
    weft_poll r;
    uint32_t bad;
    int line;
    uint64_t deadline;
};

static weft_poll one_poll(weft_cx *cx, void *p)
{
    struct one *t = p;
    WEFT_BEGIN(&t->f);
    t->deadline = weft_now_ns() + 10 * MS;
    EXPECT(0, weft_scope_enter(cx, &t->sc, t->deadline) == 0);
    EXPECT(1, !weft_scope_expired(&t->sc) && weft_scope_deadline(&t->sc) == t->deadline);
    t->line = __LINE__ + 1;
    WEFT_AWAIT(&t->f, t->r, weft_sleep_for(cx, &t->s, HOUR));
    EXPECT(2, t->r == -ETIMEDOUT);
    EXPECT(3, weft_now_ns() >= t->deadline && weft_now_ns() < t->deadline + 5 * MS);
    EXPECT(4, weft_scope_expired(&t->sc) && weft_scope_expired_at(&t->sc) >= t->deadline);
    EXPECT(5, weft_scope_site(&t->sc) && weft_scope_site(&t->sc)->line == t->line);
    WEFT_YIELD(&t->f, t->r);    /* level-triggered inside the scope */
    EXPECT(6, t->r == -ETIMEDOUT);
    EXPECT(7, weft_scope_exit(cx, &t->sc) == 1);
    EXPECT(8, weft_scope_expired(&t->sc) && weft_scope_site(&t->sc)->line == t->line);
    WEFT_AWAIT(&t->f, t->r, weft_sleep_for(cx, &t->s, MS));
    EXPECT(9, t->r == 0);
    WEFT_RETURN(&t->f, t->bad);
    WEFT_END(&t->f);
}

Test(scope, expiry_ends_a_sleep_and_the_task_goes_on)
{
    struct one t = { .sc = WEFT_SCOPE_INIT, .s = WEFT_SLEEP_INIT };
    uint64_t elapsed;
    expect_ok(&WEFT_TASK(one_poll, &t), &elapsed);
    cr_assert_lt(elapsed, HOUR / 2, "the sleep was withdrawn at the scope's deadline");
}

/* ---- nested: the earliest wins, each expiry seen only inside its scope ---- */

struct nest {
    weft_frame f;
    weft_scope outer, inner;
    weft_sleep s;
    weft_poll r;
    uint32_t bad;
};

static weft_poll inner_first_poll(weft_cx *cx, void *p)
{
    struct nest *t = p;
    WEFT_BEGIN(&t->f);
    EXPECT(0, weft_scope_enter_for(cx, &t->outer, 50 * MS) == 0);
    EXPECT(1, weft_scope_enter_for(cx, &t->inner, 10 * MS) == 0);
    WEFT_AWAIT(&t->f, t->r, weft_sleep_for(cx, &t->s, HOUR));
    EXPECT(2, t->r == -ETIMEDOUT);
    EXPECT(3, weft_scope_exit(cx, &t->inner) == 1);
    EXPECT(4, !weft_scope_expired(&t->outer));
    WEFT_AWAIT(&t->f, t->r, weft_sleep_for(cx, &t->s, 5 * MS));
    EXPECT(5, t->r == 0);       /* the inner expiry stayed inside the inner scope */
    WEFT_AWAIT(&t->f, t->r, weft_sleep_for(cx, &t->s, HOUR));
    EXPECT(6, t->r == -ETIMEDOUT);
    EXPECT(7, weft_scope_exit(cx, &t->outer) == 1);
    WEFT_RETURN(&t->f, t->bad);
    WEFT_END(&t->f);
}

Test(scope, nested_inner_expiry_is_seen_only_inside_the_inner_scope)
{
    struct nest t = { .outer = WEFT_SCOPE_INIT, .inner = WEFT_SCOPE_INIT, .s = WEFT_SLEEP_INIT };
    uint64_t elapsed;
    expect_ok(&WEFT_TASK(inner_first_poll, &t), &elapsed);
    cr_assert_geq(elapsed, 50 * MS);
    cr_assert_lt(elapsed, 60 * MS);
}

static weft_poll outer_first_poll(weft_cx *cx, void *p)
{
    struct nest *t = p;
    WEFT_BEGIN(&t->f);
    EXPECT(0, weft_scope_enter_for(cx, &t->outer, 10 * MS) == 0);
    EXPECT(1, weft_scope_enter_for(cx, &t->inner, HOUR) == 0);
    WEFT_AWAIT(&t->f, t->r, weft_sleep_for(cx, &t->s, HOUR));
    EXPECT(2, t->r == -ETIMEDOUT);          /* the outer's expiry, seen in the inner */
    EXPECT(3, !weft_scope_expired(&t->inner) && weft_scope_expired(&t->outer));
    EXPECT(4, weft_scope_exit(cx, &t->inner) == 0);
    WEFT_YIELD(&t->f, t->r);
    EXPECT(5, t->r == -ETIMEDOUT);          /* still inside the expired outer */
    EXPECT(6, weft_scope_exit(cx, &t->outer) == 1);
    WEFT_YIELD(&t->f, t->r);
    EXPECT(7, t->r == 0);
    WEFT_RETURN(&t->f, t->bad);
    WEFT_END(&t->f);
}

Test(scope, nested_outer_expiry_is_seen_in_the_inner_scope)
{
    struct nest t = { .outer = WEFT_SCOPE_INIT, .inner = WEFT_SCOPE_INIT, .s = WEFT_SLEEP_INIT };
    uint64_t elapsed;
    expect_ok(&WEFT_TASK(outer_first_poll, &t), &elapsed);
    cr_assert_lt(elapsed, 20 * MS, "the hour-long inner scope armed no timer to wait for");
}

/* ---- shields --------------------------------------------------------------- */

static weft_poll shield_poll(weft_cx *cx, void *p)
{
    struct nest *t = p;
    WEFT_BEGIN(&t->f);
    EXPECT(0, weft_scope_enter_for(cx, &t->outer, 10 * MS) == 0);
    WEFT_SHIELD_BEGIN();
    WEFT_AWAIT(&t->f, t->r, weft_sleep_for(cx, &t->s, 30 * MS));
    EXPECT(1, t->r == 0);                   /* deferred: the sleep ran its course */
    EXPECT(2, weft_scope_expired(&t->outer));
    /* A scope opened inside the shield still expires there. */
    EXPECT(3, weft_scope_enter_for(cx, &t->inner, 10 * MS) == 0);
    WEFT_AWAIT(&t->f, t->r, weft_sleep_for(cx, &t->s, HOUR));
    EXPECT(4, t->r == -ETIMEDOUT);
    EXPECT(5, weft_scope_exit(cx, &t->inner) == 1);
    WEFT_SHIELD_END();
    WEFT_YIELD(&t->f, t->r);                /* the deferred expiry lands here */
    EXPECT(6, t->r == -ETIMEDOUT);
    EXPECT(7, weft_scope_exit(cx, &t->outer) == 1);
    WEFT_RETURN(&t->f, t->bad);
    WEFT_END(&t->f);
}

Test(scope, a_shield_defers_the_expiry_and_a_scope_inside_it_still_expires)
{
    struct nest t = { .outer = WEFT_SCOPE_INIT, .inner = WEFT_SCOPE_INIT, .s = WEFT_SLEEP_INIT };
    expect_ok(&WEFT_TASK(shield_poll, &t), NULL);
}

/* ---- a completion that came first is reported -------------------------------- */

/* A leaf that completes when `ready` is set, without waking anybody: its
 * withdrawal finds it done and answers RACED, as a recv whose bytes came. */
struct quiet {
    _Atomic int ready;
    int polls;
    weft_poll value;        /* what it yields once ready; 0: 7 */
    bool compound;          /* a second step it starts only if nothing stops it */
};

static weft_withdraw quiet_withdraw(weft_cx *cx, void *leaf)
{
    (void)cx;
    struct quiet *q = leaf;
    return atomic_load(&q->ready) ? WEFT_WITHDRAW_RACED : WEFT_WITHDRAWN;
}

static weft_poll quiet_wait(weft_cx *cx, struct quiet *q)
{
    q->polls++;
    if (atomic_load(&q->ready) && q->compound && weft_cx_cancel_due(cx))
        return -ECANCELED;  /* as a compound leaf stops before its next step */
    if (atomic_load(&q->ready))
        return weft_cx_coop(cx) ? (q->value ? q->value : 7) : WEFT_PENDING;
    weft_cx_suspend(cx, q, quiet_withdraw);
    return WEFT_PENDING;
}

struct setter {
    weft_frame f;
    struct quiet *q;
    weft_sleep s;
    weft_poll r;
};

static weft_poll setter_poll(weft_cx *cx, void *p)
{
    struct setter *s = p;
    WEFT_BEGIN(&s->f);
    WEFT_AWAIT(&s->f, s->r, weft_sleep_for(cx, &s->s, 5 * MS));
    atomic_store(&s->q->ready, 1);
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

struct race {
    weft_frame f;
    weft_scope sc;
    weft_sleep s;
    struct quiet q;
    weft_join h;
    weft_outcome out;
    weft_poll r;
    uint32_t bad;
};

/* Starts the task that readies t->q in 5 ms (an await, for its result). */
static weft_poll spawn_setter(weft_cx *cx, struct race *t)
{
    struct setter s = { .q = &t->q, .s = WEFT_SLEEP_INIT };
    return weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(setter_poll, &s), &t->h);
}

static weft_poll race_poll(weft_cx *cx, void *p)
{
    struct race *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->r, spawn_setter(cx, t));
    EXPECT(0, t->r == 0);
    EXPECT(1, weft_scope_enter_for(cx, &t->sc, 10 * MS) == 0);
    WEFT_AWAIT(&t->f, t->r, quiet_wait(cx, &t->q));
    EXPECT(2, t->r == 7);           /* done at 5 ms, withdrawn at 10: reported */
    EXPECT(3, weft_scope_expired(&t->sc));
    WEFT_YIELD(&t->f, t->r);
    EXPECT(4, t->r == -ETIMEDOUT);  /* no leaf in flight: the expiry, at once */
    EXPECT(5, weft_scope_exit(cx, &t->sc) == 1);
    /* A sleep due at the scope's own deadline: whichever timer fires first,
     * the sleep happened, so it is reported. */
    EXPECT(6, weft_scope_enter_for(cx, &t->sc, 10 * MS) == 0);
    WEFT_AWAIT(&t->f, t->r, weft_sleep_for(cx, &t->s, 10 * MS));
    EXPECT(7, t->r == 0);
    EXPECT(8, weft_scope_exit(cx, &t->sc) == 1);
    WEFT_AWAIT(&t->f, t->r, weft_join_await(cx, &t->h, &t->out));
    /* A leaf whose real result is -ECANCELED (a join of a torn-down task)
     * keeps it; a compound leaf that stops because the expiry is due
     * yields -ETIMEDOUT. Both completed before the expiry was seen. */
    t->q = (struct quiet){ .value = -ECANCELED };
    WEFT_AWAIT(&t->f, t->r, spawn_setter(cx, t));
    EXPECT(9, weft_scope_enter_for(cx, &t->sc, 10 * MS) == 0);
    WEFT_AWAIT(&t->f, t->r, quiet_wait(cx, &t->q));
    EXPECT(10, t->r == -ECANCELED);
    EXPECT(11, weft_scope_exit(cx, &t->sc) == 1);
    WEFT_AWAIT(&t->f, t->r, weft_join_await(cx, &t->h, &t->out));
    t->q = (struct quiet){ .compound = true };
    WEFT_AWAIT(&t->f, t->r, spawn_setter(cx, t));
    EXPECT(12, weft_scope_enter_for(cx, &t->sc, 10 * MS) == 0);
    WEFT_AWAIT(&t->f, t->r, quiet_wait(cx, &t->q));
    EXPECT(13, t->r == -ETIMEDOUT);
    EXPECT(14, weft_scope_exit(cx, &t->sc) == 1);
    WEFT_AWAIT(&t->f, t->r, weft_join_await(cx, &t->h, &t->out));
    WEFT_RETURN(&t->f, t->bad);
    WEFT_END(&t->f);
}

Test(scope, a_completion_that_came_first_wins_over_the_expiry)
{
    struct race t = { .sc = WEFT_SCOPE_INIT, .s = WEFT_SLEEP_INIT };
    expect_ok(&WEFT_TASK(race_poll, &t), NULL);
}

/* ---- entering past the deadline; no timer left after exit -------------------- */

struct quick {
    weft_frame f;
    weft_scope sc;
    struct quiet q;
    weft_poll r;
    uint32_t bad;
    bool leave_open;
};

static weft_poll past_poll(weft_cx *cx, void *p)
{
    struct quick *t = p;
    WEFT_BEGIN(&t->f);
    EXPECT(0, weft_scope_enter(cx, &t->sc, weft_now_ns() - 1) == 0);
    EXPECT(1, weft_scope_expired(&t->sc));
    WEFT_AWAIT(&t->f, t->r, quiet_wait(cx, &t->q));
    EXPECT(2, t->r == -ETIMEDOUT && t->q.polls == 0);   /* never started */
    EXPECT(3, weft_scope_exit(cx, &t->sc) == 1);
    WEFT_RETURN(&t->f, t->bad);
    WEFT_END(&t->f);
}

Test(scope, a_deadline_already_past_stops_the_first_await_before_it_starts)
{
    struct quick t = { .sc = WEFT_SCOPE_INIT };
    expect_ok(&WEFT_TASK(past_poll, &t), NULL);
}

static weft_poll no_timer_poll(weft_cx *cx, void *p)
{
    struct quick *t = p;
    WEFT_BEGIN(&t->f);
    EXPECT(0, weft_scope_enter_for(cx, &t->sc, HOUR) == 0);
    WEFT_YIELD(&t->f, t->r);
    if (t->leave_open)
        WEFT_RETURN(&t->f, t->bad);     /* finishing with it open withdraws it too */
    EXPECT(1, weft_scope_exit(cx, &t->sc) == 0);
    WEFT_AWAIT(&t->f, t->r, weft_pending(cx));
    WEFT_RETURN(&t->f, t->bad);
    WEFT_END(&t->f);
}

Test(scope, exit_before_the_deadline_leaves_no_timer)
{
    struct quick t = { .sc = WEFT_SCOPE_INIT };
    uint64_t elapsed;
    /* Blocked for ever with nothing armed: the simulator reports it without
     * moving its clock. A timer left on a wheel would take it an hour on. */
    sim_run(&WEFT_TASK(no_timer_poll, &t), -EDEADLK, &elapsed);
    cr_assert_lt(elapsed, HOUR);
    t.leave_open = true;
    weft_outcome out = sim_run(&WEFT_TASK(no_timer_poll, &t), 0, &elapsed);
    cr_assert_eq(out.value, 0);
    cr_assert_lt(elapsed, HOUR);
    WEFT_ASSERT_NO_LEAKS();     /* a timer's task reference would keep the task */
}

/* ---- misuse ---------------------------------------------------------------------- */

struct misuse {
    weft_frame f;
    weft_scope a, b;
    uint32_t bad;
};

static weft_poll misuse_poll(weft_cx *cx, void *p)
{
    struct misuse *t = p;
    weft_scope on_stack = WEFT_SCOPE_INIT;
    WEFT_BEGIN(&t->f);
    EXPECT(0, weft_scope_enter(NULL, &t->a, 0) == -EINVAL);
    EXPECT(1, weft_scope_enter(cx, NULL, 0) == -EINVAL);
    EXPECT(2, weft_scope_enter_for(NULL, &t->a, 0) == -EINVAL);
    EXPECT(3, weft_scope_exit(cx, NULL) == -EINVAL);
    EXPECT(4, weft_scope_exit(NULL, &t->a) == -EINVAL);
    EXPECT(5, weft_scope_exit(cx, &t->a) == -EINVAL);           /* never entered */
    EXPECT(6, weft_scope_enter(cx, &on_stack, HOUR) == -EINVAL);  /* not in the frame */
    EXPECT(7, weft_scope_enter_for(cx, &t->a, HOUR) == 0);
    EXPECT(8, weft_scope_enter_for(cx, &t->a, HOUR) == -EINVAL);  /* already open */
    EXPECT(9, weft_scope_enter_for(cx, &t->b, HOUR) == 0);
    EXPECT(10, weft_scope_exit(cx, &t->a) == -EINVAL);          /* not the innermost */
    EXPECT(11, weft_scope_exit(cx, &t->b) == 0);
    EXPECT(12, weft_scope_exit(cx, &t->b) == -EINVAL);          /* twice */
    EXPECT(13, weft_scope_exit(cx, &t->a) == 0);
    EXPECT(14, !weft_scope_expired(NULL) && weft_scope_expired_at(NULL) == 0
                   && weft_scope_site(NULL) == NULL && weft_scope_deadline(NULL) == 0);
    EXPECT(15, weft_scope_enter(cx, &t->a, WEFT_SCOPE_NEVER) == 0);   /* reusable */
    EXPECT(16, weft_scope_exit(cx, &t->a) == 0);
    WEFT_RETURN(&t->f, t->bad);
    WEFT_END(&t->f);
}

Test(scope, misuse_is_refused)
{
    struct misuse t = { .a = WEFT_SCOPE_INIT, .b = WEFT_SCOPE_INIT };
    expect_ok(&WEFT_TASK(misuse_poll, &t), NULL);
}

/* ---- sync waits: a mutex and a channel -------------------------------------- */

struct waiter {
    weft_frame f;
    weft_scope sc;
    weft_mutex *m;
    weft_mutex_waiter w;
    weft_mpsc_rx *rx;
    uint64_t v;
    weft_poll r;
    uint32_t bad;
};

static weft_poll lock_waiter_poll(weft_cx *cx, void *p)
{
    struct waiter *t = p;
    WEFT_BEGIN(&t->f);
    EXPECT(0, weft_scope_enter_for(cx, &t->sc, 10 * MS) == 0);
    WEFT_AWAIT(&t->f, t->r, weft_mutex_lock(cx, t->m, &t->w));
    EXPECT(1, t->r == -ETIMEDOUT);
    EXPECT(2, weft_scope_exit(cx, &t->sc) == 1);
    WEFT_AWAIT(&t->f, t->r, weft_mpsc_recv(cx, t->rx, &t->v));
    EXPECT(3, t->r == 0 && t->v == 42);     /* no scope: waits for the message */
    EXPECT(4, weft_scope_enter_for(cx, &t->sc, 10 * MS) == 0);
    WEFT_AWAIT(&t->f, t->r, weft_mpsc_recv(cx, t->rx, &t->v));
    EXPECT(5, t->r == -ETIMEDOUT);
    EXPECT(6, weft_scope_exit(cx, &t->sc) == 1);
    WEFT_RETURN(&t->f, t->bad);
    WEFT_END(&t->f);
}

struct holder {
    weft_frame f;
    weft_mutex m;
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    weft_join h;
    weft_outcome out;
    weft_sleep s;
    weft_poll r;
    uint32_t bad;
};

static weft_poll holder_poll(weft_cx *cx, void *p)
{
    struct holder *t = p;
    WEFT_BEGIN(&t->f);
    EXPECT(0, weft_mutex_try_lock(&t->m) == 0);
    EXPECT(1, weft_mpsc_new(&t->tx, &t->rx, 4) == 0);
    {
        struct waiter w = { .sc = WEFT_SCOPE_INIT, .m = &t->m, .w = WEFT_MUTEX_WAITER_INIT,
                            .rx = &t->rx };
        EXPECT(2, weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(lock_waiter_poll, &w), &t->h) == 0);
    }
    WEFT_AWAIT(&t->f, t->r, weft_sleep_for(cx, &t->s, 20 * MS));
    EXPECT(3, weft_mpsc_try_send(&t->tx, 42) == 0);
    WEFT_AWAIT(&t->f, t->r, weft_join_await(cx, &t->h, &t->out));
    EXPECT(4, t->out.status == 0 && t->out.value == 0);
    EXPECT(5, weft_mutex_unlock(&t->m) == 0);
    EXPECT(6, weft_mutex_destroy(&t->m) == 0);   /* the timed-out wait left no waiter */
    weft_mpsc_tx_drop(&t->tx);
    weft_mpsc_rx_drop(&t->rx);
    WEFT_RETURN(&t->f, t->bad | (uint32_t)t->out.value << 8);
    WEFT_END(&t->f);
}

Test(scope, expiry_ends_a_mutex_wait_and_a_channel_receive)
{
    struct holder t = { .m = WEFT_MUTEX_INIT, .s = WEFT_SLEEP_INIT };
    expect_ok(&WEFT_TASK(holder_poll, &t), NULL);
}
