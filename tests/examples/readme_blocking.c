/*
 * tests/examples/readme_blocking.c - the README's blocking job ("Blocking
 * work and intervals") under the sweep, and the same job cancelled on a real
 * runtime while it is queued, while it runs, and not at all: the simulator
 * does not wait for pool threads, so the real runtime checks what the sweep
 * cannot see. Written as the README shows it; see readme_tasks.c for the
 * other README bodies.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.h>

#include "cases.h"
#include "sweep.h"


/* ==== "Blocking work and intervals": a blocking job =========================== */

struct input { uint32_t n; };

static atomic_uint crunch_runs;
static atomic_int crunch_result;

/* For the real-runtime check: crunch_gated makes crunch announce that it
 * runs and wait for the gate; blocker() holds the pool's one thread the
 * same way. */
static pthread_mutex_t gate_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool crunch_gated, gate_open, gate_reached;

static void gate_pass(void)
{
    pthread_mutex_lock(&gate_mx);
    gate_reached = true;
    pthread_cond_broadcast(&gate_cv);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mx);
    pthread_mutex_unlock(&gate_mx);
}

/* Sums 0..n-1 on a pool thread (less if asked to stop); the result is the
 * sum mod 10007, also kept in crunch_result. */
static int crunch(void *arg)
{
    const struct input *in = arg;
    atomic_fetch_add(&crunch_runs, 1);
    if (crunch_gated)
        gate_pass();
    uint64_t s = 0;
    for (uint32_t i = 0; i < in->n && !weft_blocking_should_stop(); i++)
        s += i;
    atomic_store(&crunch_result, (int)(s % 10007));
    return (int)(s % 10007);
}

/* README: the frame and the await */
struct job { weft_frame f; weft_blocking b; struct input in; weft_poll rc; };

static weft_poll job_poll(weft_cx *cx, void *p)
{
    struct job *j = p;
    WEFT_BEGIN(&j->f);
    WEFT_AWAIT(&j->f, j->rc, weft_blocking_run(cx, &j->b, crunch, &j->in));   /* crunch(&j->in) */
    WEFT_RETURN(&j->f, j->rc);
    WEFT_END(&j->f);
}

static struct job job0 = { .b = WEFT_BLOCKING_INIT, .in = { 1000 } };

static void job_reset(void *arg, weft_task_desc *root)
{
    (void)arg;
    (void)root;
    atomic_store(&crunch_runs, 0);
}

static unsigned job_deadlocks;

/* The await yielded crunch's real result (it ran once), or -ECANCELED and
 * crunch never ran; completed: the whole sum. */
static int job_outcome_check(const weft_outcome *out, unsigned runs, bool completed)
{
    int whole = (int)((uint64_t)999 * 1000 / 2 % 10007);
    if (out->status != 0)
        return sweep_fail("outcome status %d", out->status);
    if (out->value == -ECANCELED && runs != 0)
        return sweep_fail("the await yielded -ECANCELED but crunch ran");
    if (out->value != -ECANCELED && (out->value != atomic_load(&crunch_result) || runs != 1))
        return sweep_fail("the await yielded %lld, crunch ran %u times and returned %d",
                          (long long)out->value, runs, atomic_load(&crunch_result));
    if (completed && out->value != whole)
        return sweep_fail("not cancelled, the await yielded %lld, expected %d",
                          (long long)out->value, whole);
    return 0;
}

/*
 * The job ran at most once; the await yielded its real result, or
 * -ECANCELED only if it never ran. The simulator does not wait for pool
 * threads (weft/sim.h): a root waiting on a running job may come back as
 * -EDEADLK, and is then torn down at shutdown - which must still wait for
 * crunch and drop the task once (the harness checks the drop).
 */
static int job_check(void *arg, unsigned k, bool cancelled, int rc, const weft_outcome *out)
{
    (void)arg;
    (void)k;
    (void)cancelled;
    unsigned runs = atomic_load(&crunch_runs);
    int bad = 0;
    if (runs > 1)
        bad |= sweep_fail("crunch ran %u times", runs);
    if (rc == -EDEADLK) {
        job_deadlocks++;
        return bad;
    }
    if (rc != 0)
        return bad | sweep_fail("weft_sim_run: %s", weft_strerror(rc));
    return bad | job_outcome_check(out, runs, !cancelled);
}

/* Hold the pool's only thread until the gate opens. */
static int blocker(void *arg)
{
    (void)arg;
    gate_pass();
    return 0;
}

static atomic_uint job_drops;

static void job_drop(void *p)
{
    (void)p;
    atomic_fetch_add(&job_drops, 1);
}

enum job_when { JOB_NOT_CANCELLED, JOB_CANCELLED_QUEUED, JOB_CANCELLED_RUNNING };

/*
 * The job task on a real runtime with one pool thread, cancelled (by abort
 * or by its token) while its job waits behind another, or while crunch runs
 * (crunch waits at the gate until the request is made), or not at all. The
 * queued case may also find the job already running or not yet queued: the
 * outcome check holds in every case.
 */
static int blocking_real_once(weft_runtime *rt, enum job_when when, bool by_token)
{
    static const char *const names[] = { "not cancelled", "cancelled while queued",
                                         "cancelled while running" };
    atomic_store(&crunch_runs, 0);
    atomic_store(&job_drops, 0);
    gate_open = gate_reached = false;
    crunch_gated = when == JOB_CANCELLED_RUNNING;
    int bad = 0;
    weft_join bh = WEFT_JOIN_INIT, h = WEFT_JOIN_INIT;
    if (when == JOB_CANCELLED_QUEUED) {
        if (weft_spawn_blocking(rt, blocker, NULL, &bh) != 0)
            return sweep_fail("blocking job (%s): weft_spawn_blocking failed", names[when]);
        pthread_mutex_lock(&gate_mx);
        while (!gate_reached)
            pthread_cond_wait(&gate_cv, &gate_mx);
        pthread_mutex_unlock(&gate_mx);
    }
    weft_token *tok = NULL;
    struct job j = job0;
    weft_task_desc d = WEFT_TASK(job_poll, &j);
    d.drop = job_drop;
    if (by_token && weft_token_new(&tok) == 0) {
        d.tokens = &tok;
        d.ntokens = 1;
    }
    if (weft_spawn(rt, &d, &h) != 0)
        bad |= sweep_fail("blocking job (%s): spawn failed", names[when]);
    if (when == JOB_CANCELLED_RUNNING) {
        pthread_mutex_lock(&gate_mx);
        while (!gate_reached)
            pthread_cond_wait(&gate_cv, &gate_mx);
        pthread_mutex_unlock(&gate_mx);
    }
    if (when != JOB_NOT_CANCELLED) {
        if (tok)
            weft_token_cancel(tok);
        else
            weft_abort(&h);
    }
    pthread_mutex_lock(&gate_mx);
    gate_open = true;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mx);
    weft_outcome out, bout;
    if (weft_join_wait(&h, &out) != 0)
        return bad | sweep_fail("blocking job (%s): join failed", names[when]);
    if (when == JOB_CANCELLED_QUEUED)
        weft_join_wait(&bh, &bout);
    weft_token_release(tok);
    unsigned runs = atomic_load(&crunch_runs);
    int err = job_outcome_check(&out, runs, when == JOB_NOT_CANCELLED);
    if (err)
        bad |= sweep_fail("blocking job, real runtime: %s by %s", names[when],
                          by_token ? "token" : "abort");
    if (when == JOB_CANCELLED_RUNNING && (runs != 1 || out.value == -ECANCELED))
        bad |= sweep_fail("blocking job, real runtime: cancelled while crunch ran, the await "
                          "yielded %lld (must be crunch's result)", (long long)out.value);
    if (atomic_load(&job_drops) != 1)
        bad |= sweep_fail("blocking job, real runtime: dropped %u times",
                          atomic_load(&job_drops));
    crunch_gated = false;
    return bad;
}

int check_readme_blocking_real(void)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = 2, .blocking_threads = 1 };
    int fds = weft_harness_open_fds(), bad = 0;
    if (weft_runtime_new(&rt, &o) != 0)
        return sweep_fail("weft_runtime_new failed");
    for (int when = JOB_NOT_CANCELLED; when <= JOB_CANCELLED_RUNNING; when++)
        for (int by_token = 0; by_token <= 1; by_token++)
            bad |= blocking_real_once(rt, (enum job_when)when, by_token);
    if (weft_runtime_free(rt) != 0)
        bad |= sweep_fail("weft_runtime_free failed");
    if (weft_harness_open_fds() != fds)
        bad |= sweep_fail("blocking job, real runtime: %d fds leaked", weft_harness_open_fds() - fds);
    sweep_note("| %-28s | %-23s | %-11s | both  | real runtime: cancelled while queued, "
               "while running, not at all | %s\n", "README: Blocking work", "blocking job",
               "cooperative", bad ? "FAILED" : "ok");
    return bad;
}

int sweep_readme_blocking(unsigned *deadlocks)
{
    job_deadlocks = 0;
    sweep_case c = { .program = "README: Blocking work", .task = "blocking job",
                     .root = WEFT_TASK(job_poll, &job0), .reset = job_reset,
                     .check = job_check };
    int bad = sweep_case_run(&c);
    *deadlocks = job_deadlocks;
    return bad;
}
