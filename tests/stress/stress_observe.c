/*
 * tests/stress/stress_observe.c - reading metrics and task dumps from plain
 * threads while tasks are spawned, completed, aborted and freed on every
 * worker and from outside: under TSan this is the proof that the readers of
 * weft/observe.h race with nothing (runtime/dump.h explains why a dumped
 * task cannot be freed under its reader).
 *
 * Driver threads spawn rounds of tasks (short ones that yield, waiters that
 * only an abort or a token ends, and tasks that spawn detached children from
 * a worker), abort or cancel the waiters, and join everything. Reader threads
 * dump and read metrics in a loop meanwhile. Checked: every dumped task has
 * a state and a sane await site; per worker, counters never go backwards;
 * spawned and completed never go backwards; the runtime ends with no live
 * task and completed == spawned.
 *
 * Usage: stress-observe [--threads T] [--readers R] [--rounds N] [--workers W]
 */
#include <pthread.h>
#include <sched.h>

#include "stress_util.h"
#include "weft/observe.h"

enum { BATCH = 24, MAX_WORKERS = 8 };

static weft_runtime *rt;
static _Atomic bool done;
static _Atomic long dumped;     /* tasks the readers saw: the test is not vacuous */
static long rounds;

struct shorty { weft_frame f; int i; weft_poll rc; };

static weft_poll short_poll(weft_cx *cx, void *p)
{
    struct shorty *s = p;
    WEFT_BEGIN(&s->f);
    for (s->i = 0; s->i < 3; s->i++)
        WEFT_YIELD(&s->f, s->rc);
    WEFT_RETURN(&s->f, 1);
    WEFT_END(&s->f);
}

struct waiter { weft_frame f; forever_leaf leaf; weft_poll rc; };

static weft_poll waiter_poll(weft_cx *cx, void *p)
{
    struct waiter *w = p;
    WEFT_BEGIN(&w->f);
    WEFT_AWAIT(&w->f, w->rc, forever_poll(cx, &w->leaf));
    WEFT_RETURN(&w->f, w->rc);
    WEFT_END(&w->f);
}

struct parent { weft_frame f; int i; weft_poll rc; };

static weft_poll parent_poll(weft_cx *cx, void *p)
{
    struct parent *pa = p;
    WEFT_BEGIN(&pa->f);
    for (pa->i = 0; pa->i < 8; pa->i++) {
        struct shorty s = { 0 };
        weft_task_desc d = WEFT_TASK(short_poll, &s);
        d.name = "child";
        if (weft_spawn_detached(weft_cx_runtime(cx), &d) < 0)
            break;
        WEFT_YIELD(&pa->f, pa->rc);
    }
    WEFT_RETURN(&pa->f, 0);
    WEFT_END(&pa->f);
}

static void spawn_one(int kind, weft_join *h, weft_token *tok)
{
    static const char *const names[] = { "short", "waiter", "parent" };
    struct shorty s = { 0 };
    struct waiter w = { 0 };
    struct parent pa = { 0 };
    weft_task_desc d = kind == 0 ? WEFT_TASK(short_poll, &s)
                     : kind == 1 ? WEFT_TASK(waiter_poll, &w) : WEFT_TASK(parent_poll, &pa);
    d.name = names[kind];
    if (kind == 1) {
        d.tokens = &tok;
        d.ntokens = 1;
    }
    int rc = weft_spawn(rt, &d, h);
    CHECK(rc == 0, "spawn: %d", rc);
}

static void *driver(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg;
    for (long r = 0; r < rounds; r++) {
        weft_token *tok;
        CHECK(weft_token_new(&tok) == 0, "token");
        weft_join h[BATCH];
        for (int i = 0; i < BATCH; i++)
            spawn_one((int)(rnd(&seed) % 3), &h[i], tok);
        for (int i = 0; i < BATCH; i++)
            if (rnd(&seed) % 2)
                weft_abort(&h[i]);
        weft_token_cancel(tok);     /* ends every waiter not aborted */
        weft_token_release(tok);
        for (int i = 0; i < BATCH; i++) {
            weft_outcome out;
            CHECK(weft_join_wait(&h[i], &out) == 0, "join");
        }
    }
    return NULL;
}

static void check_dump(const weft_task_info *t, int n)
{
    for (int i = 0; i < n; i++) {
        CHECK(t[i].state >= WEFT_TASK_QUEUED && t[i].state <= WEFT_TASK_SUSPENDED,
              "state %d", (int)t[i].state);
        CHECK(t[i].name != NULL, "every task here is named");
        CHECK(!t[i].suspended_at || t[i].suspended_at->line > 0, "site");
        CHECK(t[i].age_ns != WEFT_TIME_UNKNOWN, "task times are on");
        CHECK(t[i].cancel_requested || t[i].cancel_source == WEFT_CANCEL_NONE, "source");
    }
}

static void *reader(void *arg)
{
    (void)arg;
    weft_task_info tasks[256];
    weft_worker_metrics w[MAX_WORKERS], prev[MAX_WORKERS] = { 0 };
    weft_metrics m, last = { 0 };
    FILE *null = fopen("/dev/null", "w");
    long reads = 0;
    while (!atomic_load(&done) || reads < 10) {
        int n = weft_task_dump(rt, tasks, 256);
        CHECK(n >= 0, "dump: %d", n);
        check_dump(tasks, n < 256 ? n : 256);
        atomic_fetch_add(&dumped, n);
        int nw = weft_metrics_read(rt, &m, w, MAX_WORKERS);
        CHECK(m.spawned >= last.spawned && m.completed >= last.completed, "task counts went back");
        for (int i = 0; i < nw && i < MAX_WORKERS; i++) {
            CHECK(w[i].polls >= prev[i].polls && w[i].parks >= prev[i].parks
                  && w[i].steal_attempts >= prev[i].steal_attempts, "worker %d went back", i);
            prev[i] = w[i];
        }
        last = m;
        if (reads++ % 16 == 0) {
            CHECK(weft_task_dump_print(rt, null) >= 0, "print");
            CHECK(weft_metrics_print(rt, null) == 0, "print");
        }
    }
    fclose(null);
    return NULL;
}

int main(int argc, char **argv)
{
    long threads = arg_long(argc, argv, "--threads", 3);
    long readers = arg_long(argc, argv, "--readers", 2);
    long workers = arg_long(argc, argv, "--workers", 3);
    rounds = arg_long(argc, argv, "--rounds", 200);
    if (workers > MAX_WORKERS)
        workers = MAX_WORKERS;
    watchdog(120);
    weft_runtime_opts o = { .threads = (unsigned)workers, .task_times = true };
    if (weft_runtime_new(&rt, &o) != 0)
        return 77;
    pthread_t d[16], r[16];
    threads = threads > 16 ? 16 : threads;
    readers = readers > 16 ? 16 : readers;
    for (long i = 0; i < readers; i++)
        pthread_create(&r[i], NULL, reader, NULL);
    for (long i = 0; i < threads; i++)
        pthread_create(&d[i], NULL, driver, (void *)(uintptr_t)(i * 7919 + 1));
    for (long i = 0; i < threads; i++)
        pthread_join(d[i], NULL);
    atomic_store(&done, true);
    for (long i = 0; i < readers; i++)
        pthread_join(r[i], NULL);
    /* Detached children may still run: wait for them as the readers did. */
    while (weft_runtime_live_tasks(rt) > 0)
        sched_yield();
    weft_metrics m;
    weft_metrics_read(rt, &m, NULL, 0);
    CHECK(m.completed == m.spawned && m.live_tasks == 0, "%llu spawned, %llu completed",
          (unsigned long long)m.spawned, (unsigned long long)m.completed);
    CHECK(m.spawned >= (uint64_t)(threads * rounds * BATCH), "spawned %llu",
          (unsigned long long)m.spawned);
    CHECK(atomic_load(&dumped) > 0, "the readers never saw a live task");
    fprintf(stderr, "stress-observe: readers saw %ld live tasks\n", atomic_load(&dumped));
    weft_runtime_free(rt);
    return stress_result("stress-observe");
}
