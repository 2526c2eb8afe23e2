/*
 * bench/workloads_idle.c - idle_tasks: what one waiting task costs in memory.
 *
 * A root task spawns N detached tasks that each wait for one shared token to
 * be cancelled. Once every one of them has been polled and is suspended on
 * the token, the resident set size is read again: (RSS now - RSS before the
 * spawns) / N is the figure, printed on stderr as "bytes_per_task N". Then
 * the token is cancelled and the workload ends when every task has seen it
 * and exited. The tokio and Go peers do the same with a CancellationToken and
 * a closed channel. Operations: N tasks spawned, parked and released.
 *
 * Counting uses two plain atomics; only the task that brings one to N touches
 * a wait group (each of count 1), so the counters add no lock per task and no
 * memory per task: the delta is the tasks' own (frame, header, queues).
 */
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>

#include "bench.h"

struct idle_shared {
    weft_token *release;        /* cancelled once the RSS was read */
    int64_t n;
    int64_t spawned;            /* < n only when a spawn failed */
    _Atomic int64_t parked, exited, failed;
    weft_waitgroup all_parked, all_exited;
};

struct idle_task {
    weft_frame f;
    struct idle_shared *sh;
    weft_token_wait wait;
    weft_poll rc;
};

/* The task that brings *counter to n opens the wait group. */
static void count_up(_Atomic int64_t *counter, int64_t n, weft_waitgroup *wg)
{
    if (atomic_fetch_add_explicit(counter, 1, memory_order_acq_rel) + 1 == n)
        weft_waitgroup_done(wg);
}

static weft_poll idle_task_poll(weft_cx *cx, void *p)
{
    struct idle_task *t = p;
    WEFT_BEGIN(&t->f);
    /* Counted before the first await: the last one may find every other task
     * already suspended, and the wait itself needs no memory outside the frame. */
    count_up(&t->sh->parked, t->sh->n, &t->sh->all_parked);
    WEFT_AWAIT(&t->f, t->rc, weft_token_cancelled(cx, t->sh->release, &t->wait));
    if (t->rc != 0)
        atomic_fetch_add_explicit(&t->sh->failed, 1, memory_order_relaxed);
    /* After this, *sh may be gone: the main thread returns once all exited. */
    count_up(&t->sh->exited, t->sh->n, &t->sh->all_exited);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

struct idle_root {
    weft_frame f;
    struct idle_shared *sh;
    weft_waitgroup_waiter w;
    weft_poll rc;
};

/* Spawns the tasks and returns once every one of them is suspended. */
static weft_poll idle_root_poll(weft_cx *cx, void *p)
{
    struct idle_root *r = p;
    WEFT_BEGIN(&r->f);
    for (r->sh->spawned = 0; r->sh->spawned < r->sh->n; r->sh->spawned++) {
        struct idle_task t = { .sh = r->sh, .wait = WEFT_TOKEN_WAIT_INIT };
        int rc = weft_spawn_detached(weft_cx_runtime(cx), &WEFT_TASK(idle_task_poll, &t));
        if (rc < 0)
            WEFT_RETURN(&r->f, rc);
    }
    WEFT_AWAIT(&r->f, r->rc, weft_waitgroup_wait(cx, &r->sh->all_parked, &r->w));
    WEFT_RETURN(&r->f, r->rc);
    WEFT_END(&r->f);
}

int64_t bench_idle_tasks(weft_runtime *rt, double scale)
{
    struct idle_shared sh = { .n = bench_scaled(1000000, scale),
                              .all_parked = WEFT_WAITGROUP_INIT,
                              .all_exited = WEFT_WAITGROUP_INIT };
    int rc = weft_token_new(&sh.release);
    if (rc < 0)
        return rc;
    weft_waitgroup_add(&sh.all_parked, 1);
    weft_waitgroup_add(&sh.all_exited, 1);

    int64_t before = bench_rss_bytes();
    struct idle_root r = { .sh = &sh, .w = WEFT_WAITGROUP_WAITER_INIT };
    int64_t res = bench_block_on(rt, idle_root_poll, &r, sizeof r);
    int64_t after = bench_rss_bytes();
    weft_token_cancel(sh.release);
    if (res == 0) {
        weft_waitgroup_wait_blocking(&sh.all_exited);
    } else {
        /* A spawn failed: the count never reaches n, but the tasks that were
         * spawned use sh and the token until they have exited. */
        while (atomic_load(&sh.exited) < sh.spawned)
            sched_yield();
    }
    weft_token_release(sh.release);
    if (res < 0)
        return res;
    BENCH_CHECK(before > 0 && after > 0, "idle_tasks cannot read VmRSS");
    BENCH_CHECK(atomic_load(&sh.failed) == 0, "idle_tasks: %lld tasks were not released",
                (long long)atomic_load(&sh.failed));
    fprintf(stderr, "bytes_per_task %lld\n", (long long)((after - before) / sh.n));
    return sh.n;
}
