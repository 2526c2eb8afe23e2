/*
 * tests/core/test_scope_live.c - deadline scopes on real workers and at the
 * ends of a task: a recv on a socketpair that never gets data times out and
 * loses no byte; a task aborted, shut down or returning with a scope open
 * has its timer withdrawn before its frame goes (ASan and LeakSanitizer
 * check that nothing is touched or kept); the simulator's
 * cancel-at-every-await sweep over a task that uses scopes, and the race
 * harness over two such tasks.
 *
 * Synchronisation is by handshakes (test_util.h flags). The deadlines here
 * are short but only bound how long a test waits: every assertion holds
 * however late a timer fires on a loaded machine.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_util.h"
#include "weft/harness.h"
#include "weft/scope.h"
#include "weft/sim.h"
#include "weft/weft.h"

#define MS 1000000ull
#define HOUR (3600ull * 1000 * MS)

TestSuite(scope_live, .timeout = 60);

static weft_runtime *make(unsigned threads)
{
    weft_runtime *rt;
    cr_assert_eq(weft_runtime_new(&rt, &(weft_runtime_opts){ .threads = threads }), 0);
    return rt;
}

/* ---- I/O ------------------------------------------------------------------------- */

struct reader {
    weft_frame f;
    weft_scope sc;
    weft_io io;
    int fd, peer;
    char buf[8];
    weft_poll r1, r2;
    int exited;
};

static weft_poll reader_poll(weft_cx *cx, void *p)
{
    struct reader *t = p;
    WEFT_BEGIN(&t->f);
    weft_scope_enter_for(cx, &t->sc, 20 * MS);
    WEFT_AWAIT(&t->f, t->r1, weft_recv(cx, &t->io, t->fd, t->buf, sizeof t->buf, 0));
    t->exited = weft_scope_exit(cx, &t->sc);
    /* The byte is written only now: the timed-out recv must not have taken it. */
    if (write(t->peer, "x", 1) != 1)
        WEFT_RETURN(&t->f, -1);
    t->io = (weft_io)WEFT_IO_INIT;
    WEFT_AWAIT(&t->f, t->r2, weft_recv(cx, &t->io, t->fd, t->buf, sizeof t->buf, 0));
    WEFT_RETURN(&t->f, t->r1 == -ETIMEDOUT && t->exited == 1 && t->r2 == 1 && t->buf[0] == 'x');
    WEFT_END(&t->f);
}

Test(scope_live, expiry_withdraws_a_recv_that_never_gets_data)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    weft_runtime *rt = make(2);
    struct reader t = { .sc = WEFT_SCOPE_INIT, .io = WEFT_IO_INIT, .fd = sv[0], .peer = sv[1] };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(reader_poll, &t), &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 1, "the recv timed out, exit said so, and the next recv got the byte");
    weft_runtime_free(rt);
    close(sv[0]);
    close(sv[1]);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- the ends of a task with a scope open --------------------------------------- */

static flag parked, dropped;

static void count_drop(void *p)
{
    (void)p;
    flag_add(&dropped, 1);
}

struct stuck {
    weft_frame f;
    weft_scope outer, inner;
    weft_poll r;
};

static weft_poll stuck_poll(weft_cx *cx, void *p)
{
    struct stuck *t = p;
    WEFT_BEGIN(&t->f);
    weft_scope_enter_for(cx, &t->outer, HOUR);
    weft_scope_enter_for(cx, &t->inner, HOUR / 2);
    flag_add(&parked, 1);
    WEFT_AWAIT(&t->f, t->r, weft_pending(cx));
    WEFT_RETURN(&t->f, t->r);
    WEFT_END(&t->f);
}

static void reset_flags(void)
{
    flag_set(&parked, 0);
    flag_set(&dropped, 0);
}

Test(scope_live, abort_of_a_cancel_safe_task_withdraws_its_scope_timers)
{
    reset_flags();
    weft_runtime *rt = make(2);
    struct stuck t = { .outer = WEFT_SCOPE_INIT, .inner = WEFT_SCOPE_INIT };
    weft_task_desc d = WEFT_TASK(stuck_poll, &t);
    d.flags = WEFT_TASK_CANCEL_SAFE;
    d.drop = count_drop;
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&parked, 1);
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, -ECANCELED);
    cr_assert_eq(flag_get(&dropped), 1);
    weft_runtime_free(rt);
    /* The timers held references to the task: left armed, they would keep it. */
    WEFT_ASSERT_NO_LEAKS();
}

Test(scope_live, shutdown_withdraws_the_scope_timers_of_the_tasks_it_drops)
{
    reset_flags();
    weft_runtime *rt = make(2);
    for (int i = 0; i < 8; i++) {
        struct stuck t = { .outer = WEFT_SCOPE_INIT, .inner = WEFT_SCOPE_INIT };
        weft_task_desc d = WEFT_TASK(stuck_poll, &t);
        d.drop = count_drop;
        cr_assert_eq(weft_spawn_detached(rt, &d), 0);
    }
    flag_wait_ge(&parked, 8);
    weft_runtime_free(rt);      /* a cooperative task ignoring -ECANCELED is torn down at the end */
    cr_assert_eq(flag_get(&dropped), 8);
    WEFT_ASSERT_NO_LEAKS();
}

struct leaver {
    weft_frame f;
    weft_scope sc;
};

static weft_poll leaver_poll(weft_cx *cx, void *p)
{
    struct leaver *t = p;
    WEFT_BEGIN(&t->f);
    weft_scope_enter_for(cx, &t->sc, HOUR);
    WEFT_RETURN(&t->f, 3);      /* with the scope still open */
    WEFT_END(&t->f);
}

Test(scope_live, a_task_that_returns_with_a_scope_open_leaves_no_timer)
{
    weft_runtime *rt = make(2);
    for (int i = 0; i < 16; i++) {
        struct leaver t = { .sc = WEFT_SCOPE_INIT };
        weft_outcome out;
        cr_assert_eq(weft_block_on(rt, &WEFT_TASK(leaver_poll, &t), &out), 0);
        cr_assert_eq(out.value, 3);
    }
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- the simulator's sweep over a task using scopes ----------------------------- */

/* A worker with a per-step scope inside a whole-job scope: three 10 ms steps
 * under a 25 ms job deadline, each step bounded to 15 ms. Whatever await a
 * cancellation lands on, the task must leave every scope it entered (exit
 * answers 0 or 1, never -EINVAL) and report a consistent count. A step's
 * scope may expire after its sleep completed (the task resumed late: the
 * sleep is still reported), but can never end the sleep: only the job
 * deadline yields -ETIMEDOUT. */
struct job {
    weft_frame f;
    weft_scope whole, step;
    weft_sleep s;
    weft_poll r;
    int steps, step_rc, bad;
};

static weft_poll job_poll(weft_cx *cx, void *p)
{
    struct job *t = p;
    WEFT_BEGIN(&t->f);
    weft_scope_enter_for(cx, &t->whole, 25 * MS);
    for (t->steps = 0; t->steps < 3; t->steps++) {
        weft_scope_enter_for(cx, &t->step, 15 * MS);
        WEFT_AWAIT(&t->f, t->r, weft_sleep_for(cx, &t->s, 10 * MS));
        t->step_rc = weft_scope_exit(cx, &t->step);
        if (t->step_rc < 0 || (t->r == -ETIMEDOUT && t->step_rc == 1))
            t->bad |= 1;
        if (t->r != 0)
            break;
    }
    int whole = weft_scope_exit(cx, &t->whole);
    if (whole < 0)
        t->bad |= 2;
    if (t->r == -ETIMEDOUT && whole != 1)
        t->bad |= 4;
    if (t->r == 0 && t->steps != 3)
        t->bad |= 8;
    if (t->r != 0 && t->r != -ETIMEDOUT && t->r != -ECANCELED)
        t->bad |= 32;
    WEFT_YIELD(&t->f, t->r);    /* after the scopes: only a cancellation */
    WEFT_RETURN(&t->f, t->bad);
    WEFT_END(&t->f);
}

static int job_ok(void *arg, unsigned k, bool cancelled, int rc, const weft_outcome *out)
{
    (void)arg;
    (void)k;
    (void)cancelled;
    return rc == 0 && (out->status == -ECANCELED || out->value == 0) ? 0 : -1;
}

Test(scope_live, cancel_sweep_over_a_task_with_nested_scopes)
{
    for (unsigned flags = 0; flags <= WEFT_TASK_CANCEL_SAFE; flags += WEFT_TASK_CANCEL_SAFE) {
        weft_sim_sweep sw = { .sim = { .seed = 5, .workers = 2 }, .check = job_ok };
        struct job t = { .whole = WEFT_SCOPE_INIT, .step = WEFT_SCOPE_INIT,
                         .s = WEFT_SLEEP_INIT };
        weft_task_desc d = WEFT_TASK(job_poll, &t);
        d.flags = flags;
        weft_sim_sweep_result res;
        cr_assert_eq(weft_sim_sweep_cancel(&sw, &d, &res), 0);
        cr_assert_eq(res.failures, 0, "flags %u: first failing k %u", flags, res.first_failing_k);
        cr_assert_geq(res.awaits, 4, "three steps and the yield: %u", res.awaits);
    }
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- the race harness (weft/harness.h) over a task and a child using scopes ----- */

/* The root spawns a child running the same job, then runs it itself: two
 * tasks whose scope timers fire on the workers in every order the modes
 * explore, with cancellations at each await (sweep) and at random (uniform,
 * pct, threads). The harness's tasks report through `bad`. */
static _Atomic int harness_bad;

struct pair {
    weft_frame f;
    struct job mine;
    weft_join child;
    weft_outcome out;
    weft_poll r;
};

static weft_poll pair_poll(weft_cx *cx, void *p)
{
    struct pair *t = p;
    WEFT_BEGIN(&t->f);
    {
        struct job j = { .whole = WEFT_SCOPE_INIT, .step = WEFT_SCOPE_INIT,
                         .s = WEFT_SLEEP_INIT };
        if (weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(job_poll, &j), &t->child) < 0)
            atomic_fetch_or(&harness_bad, 16);
    }
    WEFT_AWAIT(&t->f, t->r, job_poll(cx, &t->mine));
    atomic_fetch_or(&harness_bad, (int)(t->r > 0 ? t->r : 0));
    WEFT_AWAIT_SHIELDED(&t->f, t->r, weft_join_await(cx, &t->child, &t->out));
    if (t->out.status == 0 && t->out.value > 0)
        atomic_fetch_or(&harness_bad, (int)t->out.value);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static struct pair pair_frame;

static int pair_setup(void *arg, weft_task_desc *root)
{
    (void)arg;
    atomic_store(&harness_bad, 0);
    pair_frame = (struct pair){ .mine = { .whole = WEFT_SCOPE_INIT, .step = WEFT_SCOPE_INIT,
                                          .s = WEFT_SLEEP_INIT },
                                .child = WEFT_JOIN_INIT };
    *root = WEFT_TASK(pair_poll, &pair_frame);
    return 0;
}

static int pair_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    int bad = atomic_load(&harness_bad);
    /* A threaded run counts the harness's own task, whose completion the
     * registry may not have settled yet. */
    size_t harness_own = run->mode == WEFT_HARNESS_THREADS ? 1 : 0;
    if (run->rc != 0 || bad || run->live_tasks > harness_own) {
        snprintf(why, n, "rc %d, failed checks %#x, %zu tasks left", run->rc, bad,
                 run->live_tasks);
        return 1;
    }
    return 0;
}

Test(scope_live, race_harness_over_two_tasks_with_nested_scopes)
{
    weft_harness_scenario sc = { .name = "scopes", .setup = pair_setup, .check = pair_check };
    weft_harness_opts o = { .seeds = 24, .pct_seeds = 8, .pct_depth = 2, .threaded_runs = 4,
                            .quiet = true, .log = stderr };
    weft_harness_report rep;
    cr_assert_eq(weft_harness_run(&sc, &o, &rep), 0);
    cr_assert_eq(rep.failures, 0, "first failure: %s", rep.first_name);
    cr_assert_gt(rep.runs, 24);
    WEFT_ASSERT_NO_LEAKS();
}
