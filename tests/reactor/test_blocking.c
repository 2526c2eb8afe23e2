/*
 * tests/reactor/test_blocking.c - the blocking pool (weft/blocking.h): jobs
 * yield fn's result; a queued job withdrawn did not run; a running job is
 * asked to stop, waited for, and its real result reported, with the frame
 * alive until fn returned; the thread cap holds; shutdown cancels queued
 * jobs and waits for running ones; getaddrinfo and its error mapping;
 * misuse and allocation failure.
 *
 * Gates are futex flags (tests/test_util.h): the test and the jobs block on
 * each other, so nothing here depends on how fast anything runs; a bound of
 * HANG_MS on every wait turns a hang into a failure. The one poll loop left
 * is a job's: should_stop can only be polled.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <netdb.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include <weft/weft.h>

#include "runtime/alloc.h"
#include "test_util.h"

#define MS 1000000ull
#define HANG_MS 20000           /* the hang guard of every wait */

/* Pacing of the poll loops below that wait for a real condition. */
static void nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Wait (bounded) until the flag is at least want. */
static bool wait_for(flag *f, uint32_t want)
{
    return flag_wait_ge_for(f, want, HANG_MS);
}

static weft_runtime *make(unsigned threads, unsigned blocking, unsigned grace_ms)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = threads, .blocking_threads = blocking,
                            .shutdown_grace_ms = grace_ms };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    return rt;
}

/* ---- job bodies ------------------------------------------------------------ */

/* Shared state of the job bodies below (and of the task that runs one). */
struct gate {
    flag started;               /* jobs that began */
    _Atomic int finished;       /* jobs that returned */
    flag open;                  /* 1: gated jobs may return */
    _Atomic int saw_stop;       /* jobs that saw should_stop */
    flag queued;                /* runner tasks whose job waits (queued or running) */
    _Atomic int running, max_running;
    flag changed;               /* bumped at every change of the counts above */
    int total;                  /* concurrent: how many jobs there are */
};

static int return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

/* Runs until the gate opens (or the hang guard gives up); returns 1. */
static int gated(void *arg)
{
    struct gate *g = arg;
    flag_add(&g->started, 1);
    wait_for(&g->open, 1);
    atomic_fetch_add(&g->finished, 1);
    return 1;
}

/* Runs until asked to stop; returns 7, or -ETIME if never asked. Nothing
 * wakes a job that is asked to stop (weft_blocking_should_stop is polled), so
 * this polls, paced by 1 ms naps, for up to HANG_MS. */
static int until_stopped(void *arg)
{
    struct gate *g = arg;
    flag_add(&g->started, 1);
    int rc = -ETIME;
    for (int i = 0; i < HANG_MS; i++) {
        if (weft_blocking_should_stop()) {
            atomic_fetch_add(&g->saw_stop, 1);
            rc = 7;
            break;
        }
        nap_ms(1);
    }
    atomic_fetch_add(&g->finished, 1);
    return rc;
}

/* Counts how many run at once. Each job stays until another runs beside it,
 * so the pool is kept at its cap, or until no other job is left to come. */
static int concurrent(void *arg)
{
    struct gate *g = arg;
    int now = atomic_fetch_add(&g->running, 1) + 1;
    int max = atomic_load(&g->max_running);
    while (now > max && !atomic_compare_exchange_weak(&g->max_running, &max, now))
        ;
    flag_add(&g->started, 1);
    flag_add(&g->changed, 1);
    for (;;) {
        uint32_t seen = flag_get(&g->changed);
        bool alone_and_last = (int)flag_get(&g->started) == g->total
                              && atomic_load(&g->running) == 1;
        if (atomic_load(&g->running) >= 2 || alone_and_last
            || !flag_wait_ge_for(&g->changed, seen + 1, HANG_MS))
            break;
    }
    atomic_fetch_sub(&g->running, 1);
    atomic_fetch_add(&g->finished, 1);
    flag_add(&g->changed, 1);
    return 3;
}

/* ---- a task that runs one job ------------------------------------------------ */

static _Atomic int drops;
static _Atomic int drops_after_fn;  /* drops that saw the job's fn finished */

struct runner {
    weft_frame f;
    weft_blocking job;
    weft_blocking_fn fn;
    void *arg;
    struct gate *g;
    bool said;
    weft_poll rc, rc2;
};

/* The job, saying once (g->queued) that it waits: it is in the pool's queue,
 * or running. */
static weft_poll runner_job(weft_cx *cx, struct runner *r)
{
    weft_poll rc = weft_blocking_run(cx, &r->job, r->fn, r->arg);
    if (rc == WEFT_PENDING && !r->said) {
        r->said = true;
        if (r->g)
            flag_add(&r->g->queued, 1);
    }
    return rc;
}

static weft_poll runner_poll(weft_cx *cx, void *p)
{
    struct runner *r = p;
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->rc, runner_job(cx, r));
    WEFT_RETURN(&r->f, r->rc);
    WEFT_END(&r->f);
}

static void runner_drop(void *p)
{
    struct runner *r = p;
    atomic_fetch_add(&drops, 1);
    if (r->g && atomic_load(&r->g->finished) > 0)
        atomic_fetch_add(&drops_after_fn, 1);
}

static void spawn_runner(weft_runtime *rt, weft_blocking_fn fn, void *arg, struct gate *g,
                         unsigned flags, weft_join *h)
{
    struct runner r = { .job = WEFT_BLOCKING_INIT, .fn = fn, .arg = arg, .g = g };
    weft_task_desc d = WEFT_TASK(runner_poll, &r);
    d.drop = runner_drop;
    d.flags = flags;
    cr_assert_eq(weft_spawn(rt, &d, h), 0);
}

static int64_t join_value(weft_join *h, int want_status)
{
    weft_outcome out;
    cr_assert_eq(weft_join_wait(h, &out), 0);
    cr_assert_eq(out.status, want_status);
    return out.value;
}

/* ---- tests ------------------------------------------------------------------------ */

struct twice {
    weft_frame f;
    weft_blocking job;
    weft_poll a, b;
};

/* One weft_blocking reused for two jobs. */
static weft_poll twice_poll(weft_cx *cx, void *p)
{
    struct twice *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->a, weft_blocking_run(cx, &t->job, return_arg, (void *)(intptr_t)42));
    WEFT_AWAIT(&t->f, t->b, weft_blocking_run(cx, &t->job, return_arg, (void *)(intptr_t)-5));
    WEFT_RETURN(&t->f, t->a * 1000 + t->b);
    WEFT_END(&t->f);
}

Test(blocking, yields_fn_result_and_job_is_reusable)
{
    weft_runtime *rt = make(2, 0, 50);
    struct twice t = { .job = WEFT_BLOCKING_INIT };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(twice_poll, &t), &out), 0);
    cr_assert_eq(out.value, 42 * 1000 - 5);
    cr_assert_not(weft_blocking_should_stop(), "false outside a pool thread");
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(blocking, many_jobs_from_many_tasks)
{
    weft_runtime *rt = make(2, 4, 50);
    enum { N = 64 };
    weft_join h[N];
    for (int i = 0; i < N; i++)
        spawn_runner(rt, return_arg, (void *)(intptr_t)i, NULL, 0, &h[i]);
    for (int i = 0; i < N; i++)
        cr_assert_eq(join_value(&h[i], 0), i);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(blocking, thread_cap_is_honoured)
{
    weft_runtime *rt = make(2, 2, 50);
    enum { N = 8 };
    struct gate g = { .total = N };
    weft_join h[N];
    for (int i = 0; i < N; i++)
        cr_assert_eq(weft_spawn_blocking(rt, concurrent, &g, &h[i]), 0);
    for (int i = 0; i < N; i++)
        cr_assert_eq(join_value(&h[i], 0), 3);
    cr_assert_eq(atomic_load(&g.finished), N);
    cr_assert_leq(atomic_load(&g.max_running), 2, "ran %d at once", atomic_load(&g.max_running));
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(blocking, withdrawn_while_queued_did_not_run)
{
    weft_runtime *rt = make(2, 1, 50);
    struct gate busy = { 0 }, queued = { 0 };
    weft_join hb, hq;
    spawn_runner(rt, gated, &busy, &busy, 0, &hb);
    cr_assert(wait_for(&busy.started, 1));
    spawn_runner(rt, gated, &queued, &queued, 0, &hq);
    /* withdraw it from the queue: the only pool thread is busy */
    cr_assert(wait_for(&queued.queued, 1));
    cr_assert_eq(weft_abort(&hq), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&hq, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, -ECANCELED);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_ABORT);
    flag_set(&busy.open, 1);
    cr_assert_eq(join_value(&hb, 0), 1);
    cr_assert_eq(flag_get(&queued.started), 0, "a withdrawn queued job ran");
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(blocking, running_job_is_asked_to_stop_and_reported)
{
    weft_runtime *rt = make(2, 1, 50);
    struct gate g = { 0 };
    weft_join h;
    spawn_runner(rt, until_stopped, &g, &g, 0, &h);
    cr_assert(wait_for(&g.started, 1));
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 7, "the job's real result: %lld", (long long)out.value);
    cr_assert_eq(atomic_load(&g.saw_stop), 1);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(blocking, cancel_safe_task_outlives_its_running_job)
{
    weft_runtime *rt = make(2, 1, 50);
    struct gate g = { 0 };
    atomic_store(&drops, 0);
    atomic_store(&drops_after_fn, 0);
    weft_join h;
    spawn_runner(rt, until_stopped, &g, &g, WEFT_TASK_CANCEL_SAFE, &h);
    cr_assert(wait_for(&g.started, 1));
    cr_assert_eq(weft_abort(&h), 0);
    join_value(&h, -ECANCELED);
    cr_assert_eq(atomic_load(&drops), 1);
    cr_assert_eq(atomic_load(&drops_after_fn), 1, "frame dropped while fn still ran");
    cr_assert_eq(atomic_load(&g.saw_stop), 1);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(blocking, spawn_blocking_join_and_abort)
{
    weft_runtime *rt = make(2, 1, 50);
    weft_join h;
    cr_assert_eq(weft_spawn_blocking(rt, return_arg, (void *)(intptr_t)9, &h), 0);
    cr_assert_eq(join_value(&h, 0), 9);

    struct gate busy = { 0 }, queued = { 0 };
    weft_join hb, hq;
    cr_assert_eq(weft_spawn_blocking(rt, gated, &busy, &hb), 0);
    cr_assert(wait_for(&busy.started, 1));
    cr_assert_eq(weft_spawn_blocking(rt, gated, &queued, &hq), 0);
    cr_assert_eq(weft_abort(&hq), 0);
    cr_assert_eq(join_value(&hq, 0), -ECANCELED);
    flag_set(&busy.open, 1);
    cr_assert_eq(join_value(&hb, 0), 1);
    cr_assert_eq(flag_get(&queued.started), 0);

    struct gate g = { 0 };
    cr_assert_eq(weft_spawn_blocking(rt, until_stopped, &g, &h), 0);
    cr_assert(wait_for(&g.started, 1));
    cr_assert_eq(weft_abort(&h), 0);
    cr_assert_eq(join_value(&h, 0), 7);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* Shielded tasks ignore the shutdown request, so their jobs are still queued
 * and running when the pool shuts down: the queued one is cancelled, the
 * running one is asked to stop and waited for, then the sweep drops both. */
Test(blocking, shutdown_cancels_queued_and_waits_for_running)
{
    weft_runtime *rt = make(2, 1, 30);
    struct gate run = { 0 }, queued = { 0 };
    atomic_store(&drops, 0);
    atomic_store(&drops_after_fn, 0);
    weft_join hr, hq;
    spawn_runner(rt, until_stopped, &run, &run, WEFT_TASK_SHIELDED, &hr);
    cr_assert(wait_for(&run.started, 1));
    spawn_runner(rt, gated, &queued, &queued, WEFT_TASK_SHIELDED, &hq);
    cr_assert(wait_for(&queued.queued, 1));     /* queued behind `run` */
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(atomic_load(&run.saw_stop), 1);
    cr_assert_eq(atomic_load(&run.finished), 1);
    cr_assert_eq(flag_get(&queued.started), 0, "a cancelled queued job ran");
    cr_assert_eq(atomic_load(&drops), 2);
    cr_assert_eq(atomic_load(&drops_after_fn), 1, "dropped before fn returned");
    join_value(&hr, -ECANCELED);
    join_value(&hq, -ECANCELED);
    weft_join h;
    cr_assert_eq(weft_spawn_blocking(rt, return_arg, NULL, &h), -ESHUTDOWN);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* A cooperative task's running job is asked to stop during the grace period
 * and the task returns its result. */
Test(blocking, shutdown_lets_cooperative_task_report)
{
    weft_runtime *rt = make(2, 2, 5000);
    struct gate g = { 0 };
    weft_join h;
    spawn_runner(rt, until_stopped, &g, &g, 0, &h);
    cr_assert(wait_for(&g.started, 1));
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    /* The job's wake comes from a pool thread (the inject queue), so this
     * also checks that workers still take outside wakes while closing. */
    cr_assert_eq(out.status, 0, "not resumed after the job's wake during the grace period");
    cr_assert_eq(out.value, 7);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_SHUTDOWN);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(blocking, free_with_idle_pool_threads)
{
    weft_runtime *rt = make(1, 4, 50);
    weft_join h[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(weft_spawn_blocking(rt, return_arg, NULL, &h[i]), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(join_value(&h[i], 0), 0);
    weft_runtime_free(rt);      /* the idle threads are joined, not leaked */
    WEFT_ASSERT_NO_LEAKS();
}

/* A timeout on a job is a select against a sleep: a queued job loses and did
 * not happen; a running one is asked to stop and waited for, and what it
 * produced is reported. */
struct raced {
    weft_frame f;
    weft_selector sel;
    weft_blocking job;
    weft_sleep nap;
    weft_blocking_fn fn;
    struct gate *g;
    int64_t job_result;
    weft_poll rc;
};

static weft_poll raced_branch(weft_cx *cx, void *frame, unsigned i)
{
    struct raced *r = frame;
    if (i == 0)
        return weft_blocking_run(cx, &r->job, r->fn, r->g);
    return weft_sleep_for(cx, &r->nap, 20 * MS);
}

/* Yields: winner * 1000 + the job's result, or -1000 - 1 if the job branch
 * did not happen. */
static weft_poll raced_poll(weft_cx *cx, void *p)
{
    struct raced *r = p;
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->rc, weft_select(cx, &r->sel, 2, raced_branch, r));
    if (r->rc < 0)
        WEFT_RETURN(&r->f, r->rc);
    if (!weft_select_outcome(&r->sel, 0, &r->job_result))
        r->job_result = -1;
    WEFT_RETURN(&r->f, weft_select_winner(&r->sel) * 1000 + r->job_result);
    WEFT_END(&r->f);
}

static int64_t race_job(weft_runtime *rt, weft_blocking_fn fn, struct gate *g)
{
    struct raced r = { .sel = WEFT_SELECTOR_INIT, .job = WEFT_BLOCKING_INIT,
                       .nap = WEFT_SLEEP_INIT, .fn = fn, .g = g };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(raced_poll, &r), &out), 0);
    return out.value;
}

Test(blocking, timeout_by_select_withdraws_queued_and_waits_for_running)
{
    weft_runtime *rt = make(2, 1, 50);
    struct gate busy = { 0 }, queued = { 0 }, run = { 0 };
    weft_join hb;
    cr_assert_eq(weft_spawn_blocking(rt, gated, &busy, &hb), 0);
    cr_assert(wait_for(&busy.started, 1));
    cr_assert_eq(race_job(rt, gated, &queued), 1000 - 1, "the sleep wins, the job did not run");
    cr_assert_eq(flag_get(&queued.started), 0);
    flag_set(&busy.open, 1);
    cr_assert_eq(join_value(&hb, 0), 1);
    /* Both branches end up done; select reports the lower index as winner,
     * so the job's result is the select's, and in any case it is reported. */
    int64_t v = race_job(rt, until_stopped, &run);
    cr_assert(v == 7 || v == 1000 + 7, "the running job is reported: %lld", (long long)v);
    cr_assert_eq(atomic_load(&run.saw_stop), 1);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Threads idle for 10 s exit; the pool starts new ones when work comes. */
Test(blocking, idle_threads_exit_and_come_back, .timeout = 60)
{
    weft_runtime *rt = make(1, 3, 50);
    int before = count_threads();
    struct gate g = { 0 };
    weft_join h[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(weft_spawn_blocking(rt, gated, &g, &h[i]), 0);
    cr_assert(wait_for(&g.started, 3), "three jobs run at once on three threads");
    cr_assert_eq(count_threads(), before + 3);
    flag_set(&g.open, 1);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(join_value(&h[i], 0), 1);
    /* The exit itself is what is waited for (the pool has no way to say
     * so); 30 s is three times the idle timeout. */
    int n = count_threads();
    for (int i = 0; i < 300 && n > before; i++) {
        nap_ms(100);
        n = count_threads();
    }
    cr_assert_eq(n, before, "idle threads did not exit");
    cr_assert_eq(weft_spawn_blocking(rt, return_arg, (void *)(intptr_t)5, &h[0]), 0);
    cr_assert_eq(join_value(&h[0], 0), 5);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- getaddrinfo ------------------------------------------------------------------ */

struct resolver {
    weft_frame f;
    weft_blocking job;
    const char *node, *service;
    struct addrinfo hints;
    struct addrinfo *res;
    bool null_res;
    weft_poll rc;
    int naddrs;
};

static weft_poll resolver_poll(weft_cx *cx, void *p)
{
    struct resolver *r = p;
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->rc, weft_getaddrinfo(cx, &r->job, r->node, r->service, &r->hints,
                                              r->null_res ? NULL : &r->res));
    if (r->rc == 0) {
        for (struct addrinfo *ai = r->res; ai; ai = ai->ai_next)
            r->naddrs++;
        freeaddrinfo(r->res);
        WEFT_RETURN(&r->f, r->naddrs);
    }
    WEFT_RETURN(&r->f, r->rc);
    WEFT_END(&r->f);
}

static int64_t resolve(weft_runtime *rt, const char *node, const char *service, int flags,
                       bool null_res)
{
    struct resolver r = { .job = WEFT_BLOCKING_INIT, .node = node, .service = service,
                          .null_res = null_res };
    r.hints.ai_family = AF_UNSPEC;
    r.hints.ai_socktype = SOCK_STREAM;
    r.hints.ai_flags = flags;
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(resolver_poll, &r), &out), 0);
    return out.value;
}

Test(blocking, getaddrinfo_localhost)
{
    weft_runtime *rt = make(2, 0, 50);
    int64_t n = resolve(rt, "localhost", "80", 0, false);
    cr_assert_gt(n, 0, "localhost: %lld", (long long)n);
    cr_assert_gt(resolve(rt, "127.0.0.1", "8080", AI_NUMERICHOST | AI_NUMERICSERV, false), 0);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(blocking, getaddrinfo_errors_are_negative_errno)
{
    weft_runtime *rt = make(2, 0, 50);
    cr_assert_eq(resolve(rt, "not-an-address", NULL, AI_NUMERICHOST, false), -ENOENT);
    /* .invalid never resolves (RFC 6761); without a reachable resolver the
     * answer may be "try again" instead. */
    int64_t rc = resolve(rt, "no-such-host.invalid", NULL, 0, false);
    cr_assert(rc == -ENOENT || rc == -EAGAIN, "got %lld", (long long)rc);
    cr_assert_eq(resolve(rt, "localhost", "80", 0x7fff0000, false), -EINVAL, "EAI_BADFLAGS");
    cr_assert_eq(resolve(rt, "localhost", NULL, 0, true), -EINVAL, "NULL res");
    cr_assert_eq(resolve(rt, NULL, NULL, 0, false), -EINVAL, "no node, no service");
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- misuse and allocation failure ------------------------------------------------ */

struct misuse {
    weft_frame f;
    weft_blocking job;
    weft_poll a, b, c;
};

static weft_poll misuse_poll(weft_cx *cx, void *p)
{
    struct misuse *m = p;
    WEFT_BEGIN(&m->f);
    WEFT_AWAIT(&m->f, m->a, weft_blocking_run(cx, NULL, return_arg, NULL));
    WEFT_AWAIT(&m->f, m->b, weft_blocking_run(cx, &m->job, NULL, NULL));
    WEFT_AWAIT(&m->f, m->c, weft_getaddrinfo(cx, NULL, "localhost", NULL, NULL, NULL));
    WEFT_RETURN(&m->f, (m->a == -EINVAL) + (m->b == -EINVAL) + (m->c == -EINVAL));
    WEFT_END(&m->f);
}

Test(blocking, misuse_is_rejected)
{
    weft_blocking job = WEFT_BLOCKING_INIT;
    struct addrinfo *res;
    cr_assert_eq(weft_blocking_run(NULL, &job, return_arg, NULL), -EINVAL);
    cr_assert_eq(weft_getaddrinfo(NULL, &job, "localhost", NULL, NULL, &res), -EINVAL);
    weft_join h;
    cr_assert_eq(weft_spawn_blocking(NULL, return_arg, NULL, &h), -EINVAL);
    weft_runtime *rt = make(1, 0, 50);
    cr_assert_eq(weft_spawn_blocking(rt, NULL, NULL, &h), -EINVAL);
    cr_assert_eq(weft_spawn_blocking(rt, return_arg, NULL, NULL), -EINVAL);
    struct misuse m = { .job = WEFT_BLOCKING_INIT };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(misuse_poll, &m), &out), 0);
    cr_assert_eq(out.value, 3);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}

struct oom {
    weft_frame f;
    weft_blocking job;
    long fail_at;
    weft_poll first, second;
};

/* Fails the fail_at-th allocation of the first job (1: the pool, 2: its
 * first thread's record), then runs a second job normally. */
static weft_poll oom_poll(weft_cx *cx, void *p)
{
    struct oom *o = p;
    WEFT_BEGIN(&o->f);
    weft__alloc_fail_after(o->fail_at);
    WEFT_AWAIT(&o->f, o->first, weft_blocking_run(cx, &o->job, return_arg, (void *)(intptr_t)1));
    weft__alloc_fail_after(0);
    WEFT_AWAIT(&o->f, o->second, weft_blocking_run(cx, &o->job, return_arg, (void *)(intptr_t)2));
    WEFT_RETURN(&o->f, o->first * 100 + o->second);
    WEFT_END(&o->f);
}

Test(blocking, allocation_failure_leaves_runtime_usable)
{
    for (long at = 1; at <= 2; at++) {
        weft_runtime *rt = make(1, 0, 50);
        struct oom o = { .job = WEFT_BLOCKING_INIT, .fail_at = at };
        weft_outcome out;
        cr_assert_eq(weft_block_on(rt, &WEFT_TASK(oom_poll, &o), &out), 0);
        cr_assert_eq(out.value, -ENOMEM * 100 + 2, "fail_at %ld: %lld", at, (long long)out.value);
        weft_runtime_free(rt);
    }
    WEFT_ASSERT_NO_LEAKS();
}
