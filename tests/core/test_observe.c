/*
 * tests/core/test_observe.c - weft/observe.h: the counters move as a known
 * workload says they must (spawns, completions, cancellations by source),
 * the task dump shows a task suspended at a known await with its name and
 * its cancellation and shield state, ages only when task times are on, and
 * misuse and allocation failure come back as -EINVAL and -ENOMEM.
 *
 * Counters are checked with >=: a worker's own bookkeeping may add polls or
 * runs the test does not know about, never fewer.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_util.h"
#include "runtime/alloc.h"
#include "weft/observe.h"

TestSuite(observe, .timeout = 60);

static weft_runtime *rt_times(unsigned threads, bool times)
{
    weft_runtime *rt = NULL;
    weft_runtime_opts o = { .threads = threads, .shutdown_grace_ms = 50, .task_times = times };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    return rt;
}

/* ---- counters ------------------------------------------------------------ */

enum { CHILDREN = 200 };

struct child { weft_frame f; weft_poll rc; };

static weft_poll child_poll(weft_cx *cx, void *p)
{
    struct child *c = p;
    WEFT_BEGIN(&c->f);
    WEFT_YIELD(&c->f, c->rc);
    WEFT_RETURN(&c->f, 1);
    WEFT_END(&c->f);
}

struct parent {
    weft_frame f;
    weft_join kids[CHILDREN];
    weft_outcome out;
    int i;
    int64_t sum;
    weft_poll rc;
};

static weft_poll parent_poll(weft_cx *cx, void *p)
{
    struct parent *pa = p;
    WEFT_BEGIN(&pa->f);
    for (pa->i = 0; pa->i < CHILDREN; pa->i++) {
        struct child c = { 0 };
        int rc = weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(child_poll, &c), &pa->kids[pa->i]);
        if (rc < 0)
            WEFT_RETURN(&pa->f, rc);
    }
    for (pa->i = 0; pa->i < CHILDREN; pa->i++) {
        WEFT_AWAIT(&pa->f, pa->rc, weft_join_await(cx, &pa->kids[pa->i], &pa->out));
        pa->sum += pa->out.value;
    }
    WEFT_RETURN(&pa->f, pa->sum);
    WEFT_END(&pa->f);
}

static void totals(weft_runtime *rt, weft_metrics *m, weft_worker_metrics *sum)
{
    weft_worker_metrics w[8];
    int n = weft_metrics_read(rt, m, w, 8);
    cr_assert_eq(n, (int)weft_runtime_threads(rt));
    *sum = (weft_worker_metrics){ 0 };
    for (int i = 0; i < n; i++) {
        sum->polls += w[i].polls;
        sum->lifo_runs += w[i].lifo_runs;
        sum->local_runs += w[i].local_runs;
        sum->inject_runs += w[i].inject_runs;
        sum->stolen_tasks += w[i].stolen_tasks;
        sum->steals += w[i].steals;
        sum->steal_attempts += w[i].steal_attempts;
        cr_assert_leq(w[i].steals, w[i].steal_attempts);
        cr_assert_leq(w[i].unparks, w[i].parks);
    }
}

Test(observe, counters_follow_spawns_and_completions)
{
    weft_runtime *rt = rt_make(2, 50);
    struct parent *pa = calloc(1, sizeof *pa);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(parent_poll, pa), &out), 0);
    cr_assert_eq(out.value, CHILDREN);
    cr_assert_eq(live_settled(rt, 0), 0);
    weft_metrics m;
    weft_worker_metrics sum;
    totals(rt, &m, &sum);
    cr_assert_eq(m.workers, 2);
    cr_assert_geq(m.spawned, CHILDREN + 1);
    cr_assert_eq(m.completed, m.spawned, "every task finished and was released");
    cr_assert_eq(m.live_tasks, 0);
    /* Each child polls twice (a yield), the parent at least once. */
    cr_assert_geq(sum.polls, 2 * CHILDREN + 1, "%llu polls", (unsigned long long)sum.polls);
    /* Every poll took its task from somewhere. */
    cr_assert_geq(sum.lifo_runs + sum.local_runs + sum.inject_runs + sum.steals, CHILDREN);
    for (int s = 0; s < 8; s++)
        cr_assert_eq(m.cancelled[s], 0);
    free(pa);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation by source ------------------------------------------------ */

static struct flag armed;

struct waiter { weft_frame f; forever_leaf leaf; weft_poll rc; };

static int await_line;

static weft_poll waiter_poll(weft_cx *cx, void *p)
{
    struct waiter *w = p;
    enum { AWAIT_LINE = __LINE__ + 4 };
    await_line = AWAIT_LINE;
    WEFT_BEGIN(&w->f);
    w->leaf.on_arm = &armed;
    WEFT_AWAIT(&w->f, w->rc, forever_poll(cx, &w->leaf));
    WEFT_RETURN(&w->f, w->rc);
    WEFT_END(&w->f);
}

static void spawn_waiter(weft_runtime *rt, weft_join *h, const char *name, weft_token *tok,
                         unsigned flags)
{
    struct waiter w = { 0 };
    weft_task_desc d = WEFT_TASK(waiter_poll, &w);
    d.name = name;
    d.flags = flags;
    if (tok) {
        d.tokens = &tok;
        d.ntokens = 1;
    }
    int before = flag_get(&armed);
    cr_assert_eq(weft_spawn(rt, &d, h), 0);
    flag_wait_ge(&armed, before + 1);
}

Test(observe, cancellations_are_counted_by_source)
{
    weft_runtime *rt = rt_make(2, 50);
    weft_join h = WEFT_JOIN_INIT;
    weft_outcome out;
    spawn_waiter(rt, &h, "aborted", NULL, 0);
    cr_assert_eq(weft_abort(&h), 0);
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.value, -ECANCELED);

    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    spawn_waiter(rt, &h, "token-bound", tok, 0);
    cr_assert_eq(weft_token_cancel(tok), 0);
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.cancel.source, WEFT_CANCEL_TOKEN);
    weft_token_release(tok);

    weft_metrics m;
    cr_assert_eq(weft_metrics_read(rt, &m, NULL, 0), 2);
    cr_assert_eq(m.cancelled[WEFT_CANCEL_ABORT], 1);
    cr_assert_eq(m.cancelled[WEFT_CANCEL_TOKEN], 1);
    cr_assert_eq(m.cancelled[WEFT_CANCEL_SHUTDOWN], 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- the task dump ----------------------------------------------------------- */

/* The dump entry of the task named `name` once it is suspended at its await
 * (the leaf arms before the await records its site: look again until it
 * has). */
static weft_task_info find_suspended(weft_runtime *rt, const char *name)
{
    weft_task_info tasks[16];
    for (;;) {
        int n = weft_task_dump(rt, tasks, 16);
        cr_assert_geq(n, 0);
        cr_assert_leq(n, 16);
        for (int i = 0; i < n; i++)
            if (tasks[i].name && strcmp(tasks[i].name, name) == 0
                && tasks[i].state == WEFT_TASK_SUSPENDED && tasks[i].suspended_at)
                return tasks[i];
        sched_yield();
    }
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

Test(observe, dump_shows_the_await_and_the_cancellation)
{
    weft_runtime *rt = rt_times(2, true);
    weft_join plain = WEFT_JOIN_INIT, shielded = WEFT_JOIN_INIT;
    spawn_waiter(rt, &plain, "plain", NULL, 0);
    spawn_waiter(rt, &shielded, "shielded", NULL, WEFT_TASK_SHIELDED);
    cr_assert_eq(weft_abort(&shielded), 0);     /* recorded, held by the shield */

    weft_task_info t = find_suspended(rt, "plain");
    cr_assert(ends_with(t.suspended_at->file, "test_observe.c"), "%s", t.suspended_at->file);
    cr_assert_eq(t.suspended_at->line, await_line);
    cr_assert_str_eq(t.suspended_at->func, "waiter_poll");
    cr_assert_neq(t.age_ns, WEFT_TIME_UNKNOWN);
    cr_assert_neq(t.since_poll_ns, WEFT_TIME_UNKNOWN);
    cr_assert_geq(t.age_ns, t.since_poll_ns);
    cr_assert_not(t.cancel_requested);
    cr_assert_eq(t.cancel_source, WEFT_CANCEL_NONE);
    cr_assert_eq(t.shield_depth, 0);
    cr_assert_eq(t.shard, 2, "spawned from outside the workers");

    t = find_suspended(rt, "shielded");
    cr_assert(t.cancel_requested);
    cr_assert_eq(t.cancel_source, WEFT_CANCEL_ABORT);
    cr_assert_eq(t.shield_depth, 65535, "a shield no exit lifts");

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_eq(weft_task_dump_print(rt, f), 2);
    cr_assert_eq(weft_metrics_print(rt, f), 0);
    fclose(f);
    char want[64];
    snprintf(want, sizeof want, "test_observe.c:%d (waiter_poll)", await_line);
    cr_assert_not_null(strstr(text, want), "%s", text);
    cr_assert_not_null(strstr(text, "shielded suspended"), "%s", text);
    cr_assert_not_null(strstr(text, "cancel=abort shield=always"), "%s", text);
    free(text);

    cr_assert_eq(weft_abort(&plain), 0);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&plain, &out), 0);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);    /* tears the shielded one down */
    cr_assert_eq(weft_join_wait(&shielded, &out), 0);
    cr_assert_eq(out.status, -ECANCELED);
    cr_assert_eq(weft_task_dump(rt, NULL, 0), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(observe, ages_only_with_task_times)
{
    weft_runtime *rt = rt_times(1, false);
    weft_join h = WEFT_JOIN_INIT;
    spawn_waiter(rt, &h, "untimed", NULL, 0);
    weft_task_info t = find_suspended(rt, "untimed");
    cr_assert_eq(t.age_ns, WEFT_TIME_UNKNOWN);
    cr_assert_eq(t.since_poll_ns, WEFT_TIME_UNKNOWN);
    cr_assert_eq(t.shard, 1);
    weft_abort(&h);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    rt_done(rt);

    cr_assert_eq(setenv("WEFT_TASK_DUMP", "1", 1), 0);
    rt = rt_times(1, false);
    spawn_waiter(rt, &h, "timed-by-env", NULL, 0);
    t = find_suspended(rt, "timed-by-env");
    cr_assert_neq(t.age_ns, WEFT_TIME_UNKNOWN);
    weft_abort(&h);
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    rt_done(rt);
    cr_assert_eq(setenv("WEFT_TASK_DUMP", "sometimes", 1), 0);
    cr_assert_eq(weft_runtime_new(&rt, NULL), -EINVAL);
    unsetenv("WEFT_TASK_DUMP");
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- misuse and allocation failure ----------------------------------------- */

Test(observe, misuse_is_refused)
{
    weft_runtime *rt = rt_make(1, 50);
    weft_metrics m;
    weft_worker_metrics w;
    weft_task_info t;
    cr_assert_eq(weft_metrics_read(NULL, &m, &w, 1), -EINVAL);
    cr_assert_eq(weft_metrics_read(rt, NULL, &w, 1), -EINVAL);
    cr_assert_eq(weft_metrics_read(rt, &m, NULL, 1), -EINVAL);
    cr_assert_eq(weft_metrics_read(rt, &m, &w, 1), 1);
    cr_assert_eq(weft_metrics_print(NULL, stdout), -EINVAL);
    cr_assert_eq(weft_metrics_print(rt, NULL), -EINVAL);
    cr_assert_eq(weft_task_dump(NULL, &t, 1), -EINVAL);
    cr_assert_eq(weft_task_dump(rt, NULL, 1), -EINVAL);
    cr_assert_eq(weft_task_dump(rt, NULL, 0), 0);
    cr_assert_eq(weft_task_dump_print(NULL, stdout), -EINVAL);
    cr_assert_eq(weft_task_dump_print(rt, NULL), -EINVAL);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(observe, allocation_failure_is_enomem_and_harmless)
{
    weft_runtime *rt = rt_make(1, 50);
    weft_join h = WEFT_JOIN_INIT;
    spawn_waiter(rt, &h, "held", NULL, 0);
    FILE *f = fopen("/dev/null", "w");
    weft__alloc_fail_after(1);
    cr_assert_eq(weft_metrics_print(rt, f), -ENOMEM);
    weft__alloc_fail_after(1);
    cr_assert_eq(weft_task_dump_print(rt, f), -ENOMEM);
    weft__alloc_fail_after(0);
    cr_assert_eq(weft_metrics_print(rt, f), 0);
    cr_assert_eq(weft_task_dump_print(rt, f), 1);
    fclose(f);
    weft_abort(&h);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- polls never go back ------------------------------------------------- */

/* Torn-down tasks are taken and then marked unpolled, so a reader between
 * the two steps must not count the take as a poll it later takes back. */

enum { DOOMED = 20000, DOOMED_ROUNDS = 4 };

struct doomed { weft_frame f; weft_poll r; };

static weft_poll doomed_poll(weft_cx *cx, void *p)
{
    struct doomed *d = p;
    WEFT_BEGIN(&d->f);
    WEFT_AWAIT(&d->f, d->r, weft_pending(cx));
    WEFT_RETURN(&d->f, 0);
    WEFT_END(&d->f);
}

struct doom_root {
    weft_frame f;
    int round, i;
    weft_poll r;
    weft_outcome out;
    weft_join *handles;
};

static weft_poll doom_root_poll(weft_cx *cx, void *p)
{
    struct doom_root *s = p;
    WEFT_BEGIN(&s->f);
    for (s->round = 0; s->round < DOOMED_ROUNDS; s->round++) {
        for (s->i = 0; s->i < DOOMED; s->i++) {
            weft_task_desc d = { .poll = doomed_poll, .frame_size = sizeof(struct doomed),
                                 .flags = WEFT_TASK_CANCEL_SAFE };
            cr_assert_eq(weft_spawn(weft_cx_runtime(cx), &d, &s->handles[s->i]), 0);
        }
        for (s->i = 0; s->i < DOOMED; s->i++)
            cr_assert_eq(weft_abort(&s->handles[s->i]), 0);
        for (s->i = 0; s->i < DOOMED; s->i++) {
            WEFT_AWAIT(&s->f, s->r, weft_join_await(cx, &s->handles[s->i], &s->out));
            cr_assert_eq(s->r, -ECANCELED);
        }
    }
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

struct poll_watch {
    weft_runtime *rt;
    flag started;
    atomic_bool done;
    unsigned long reads, backwards;
};

static void *watch_polls(void *arg)
{
    struct poll_watch *pw = arg;
    uint64_t last[2] = { 0, 0 };
    flag_add(&pw->started, 1);
    while (!atomic_load(&pw->done)) {
        weft_metrics m;
        weft_worker_metrics w[2];
        cr_assert_eq(weft_metrics_read(pw->rt, &m, w, 2), 2);
        for (int i = 0; i < 2; i++) {
            pw->backwards += w[i].polls < last[i];
            last[i] = w[i].polls;
        }
        pw->reads++;
    }
    return NULL;
}

Test(observe, polls_never_go_back_while_tasks_are_torn_down)
{
    weft_runtime *rt = rt_make(2, 50);
    struct poll_watch pw = { .rt = rt };
    pthread_t reader;
    cr_assert_eq(pthread_create(&reader, NULL, watch_polls, &pw), 0);
    flag_wait_ge(&pw.started, 1);

    struct doom_root *root = calloc(1, sizeof *root);
    root->handles = calloc(DOOMED, sizeof *root->handles);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(doom_root_poll, root), &out), 0);
    cr_assert_eq(out.status, 0);

    atomic_store(&pw.done, true);
    pthread_join(reader, NULL);
    cr_assert_gt(pw.reads, 0);
    cr_assert_eq(pw.backwards, 0, "polls went back %lu times in %lu reads", pw.backwards,
                 pw.reads);
    free(root->handles);
    free(root);
    rt_done(rt);
}
