/*
 * tests/reactor/test_sleep_stuck.c - a sleep does not wait for its worker:
 * when the worker whose wheel holds it is stuck in one long poll, another
 * worker fires it (reactor/driver.h, rules 4 and 5), and the sleeping task
 * runs there while the long poll is still going.
 *
 * The scenario is built from the scheduler's own guarantees, not from
 * timing: the sleeper spawns the staller before it arms its sleep, so the
 * staller sits in that worker's LIFO slot (never stolen) and runs there
 * right after the sleeper's poll returns, with the sleep armed on that
 * worker's wheel. The staller spins until the sleeper says it woke up. The
 * guard (a few seconds of spinning) only keeps a broken build from hanging:
 * the test asserts what happened, never how long it took. On a loaded
 * machine the worker can lose the CPU for longer than the sleep between the
 * sleeper's suspension and the staller's start; the sleep then rightly
 * fires before anything is stuck, and that round proves nothing: it is run
 * again, until enough rounds had the staller running when the sleep ended.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <time.h>

#include <weft/weft.h>

#include "runtime/task.h"
#include "runtime/worker.h"
#include "test_util.h"

#define MS 1000000ull
#define GUARD_NS (5000 * MS)

struct scene {
    _Atomic int staller_started;    /* the staller's poll has begun */
    _Atomic int staller_running;    /* the staller is inside its long poll */
    _Atomic int sleeper_woke;       /* the sleeper's sleep ended */
    int armed_on, woke_on, stalled_on;
    int saw_staller_started;        /* the sleeper woke after the long poll began */
    int saw_staller_running;        /* the sleeper woke during the long poll */
    int guard_tripped;
    weft_poll sleep_result;
};

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct staller {
    weft_frame f;
    struct scene *sc;
};

/* One poll that does not return until the sleeper woke (or the guard). */
static weft_poll staller_poll(weft_cx *cx, void *p)
{
    struct staller *st = p;
    struct scene *sc = st->sc;
    sc->stalled_on = (int)cx->worker->index;
    atomic_store(&sc->staller_running, 1);
    atomic_store(&sc->staller_started, 1);
    uint64_t start = monotonic_ns();
    while (!atomic_load(&sc->sleeper_woke)) {
        if (monotonic_ns() - start > GUARD_NS) {
            sc->guard_tripped = 1;
            break;
        }
    }
    atomic_store(&sc->staller_running, 0);
    return 0;
}

struct sleeper {
    weft_frame f;
    weft_sleep s;
    struct scene *sc;
    struct staller st;
    weft_poll rc;
};

static weft_poll sleeper_poll(weft_cx *cx, void *p)
{
    struct sleeper *sl = p;
    struct scene *sc = sl->sc;
    WEFT_BEGIN(&sl->f);
    sc->armed_on = (int)cx->worker->index;
    sl->st = (struct staller){ .sc = sc };
    /* Into this worker's LIFO slot: it runs here as soon as we suspend. */
    sl->rc = weft_spawn_detached(weft_cx_runtime(cx), &WEFT_TASK(staller_poll, &sl->st));
    if (sl->rc < 0)
        WEFT_RETURN(&sl->f, sl->rc);
    WEFT_AWAIT(&sl->f, sl->rc, weft_sleep_for(cx, &sl->s, 1 * MS));
    sc->sleep_result = sl->rc;
    sc->woke_on = (int)cx->worker->index;
    sc->saw_staller_running = atomic_load(&sc->staller_running);
    sc->saw_staller_started = atomic_load(&sc->staller_started);
    atomic_store(&sc->sleeper_woke, 1);
    WEFT_RETURN(&sl->f, 0);
    WEFT_END(&sl->f);
}

static void run_scene(weft_runtime *rt, struct scene *sc)
{
    struct sleeper sl = { .s = WEFT_SLEEP_INIT, .sc = sc };
    weft_join h = WEFT_JOIN_INIT;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(sleeper_poll, &sl), &h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 0);
    /* The staller may still be on its way out of its poll: wait for it. */
    while (atomic_load(&sc->staller_running))
        sched_yield();
}

Test(sleep_stuck, fires_while_its_worker_is_in_a_long_poll, .timeout = 120)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = 2 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    /* Several rounds: the other worker is sometimes parked (it must be woken
     * for the deadline), sometimes just back from a park. */
    int round = 0;
    for (int tries = 0; round < 20; tries++) {
        cr_assert_lt(tries, 2000, "only %d of %d rounds had the staller running when the "
                     "sleep ended", round, tries);
        struct scene sc = { .armed_on = -1, .woke_on = -1, .stalled_on = -1 };
        run_scene(rt, &sc);
        cr_assert_eq(sc.sleep_result, 0, "round %d: the sleep yielded %lld", round,
                     (long long)sc.sleep_result);
        if (!sc.saw_staller_started)
            continue;   /* the worker lost the CPU before stalling: see the top */
        cr_assert_eq(sc.stalled_on, sc.armed_on,
                     "round %d: the staller ran on worker %d, the sleep was armed on %d",
                     round, sc.stalled_on, sc.armed_on);
        cr_assert_not(sc.guard_tripped, "round %d: the sleep never fired while worker %d "
                      "was stuck", round, sc.armed_on);
        cr_assert(sc.saw_staller_running, "round %d: the sleeper woke after the long poll",
                  round);
        cr_assert_neq(sc.woke_on, sc.armed_on,
                      "round %d: the sleeper ran on its stuck worker", round);
        round++;
    }
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}
