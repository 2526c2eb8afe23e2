/*
 * tests/stress/stress_spawn.c - spawn, join, abort and detach from many
 * threads and tasks at once on a 4-worker runtime, then shut it down while
 * tasks are live and while threads are still spawning.
 *
 * Every spawned task has a record. Checks:
 *   - every drop hook runs exactly once (and never for a refused spawn);
 *   - a join reports status 0 only for a task that returned, with its own
 *     value; -ECANCELED only for one that never returned and had a request
 *     (cooperative tasks only from shutdown, after the grace period);
 *   - the cancel source matches who asked;
 *   - join handles still work after weft_runtime_free.
 *
 * Usage: stress-spawn [--threads T] [--hot H] [--iters N] [--workers W] [--timeout S]
 *   --hot H    first H rounds of spawn_detached + spawn/join_wait per thread
 *   --iters N  then N rounds of random actions; shutdown comes halfway
 */
#include <pthread.h>
#include <sched.h>

#include "stress_util.h"
#include "weft/weft.h"

enum kind { QUICK, FOREVER, PARENT };

typedef struct rec {
    _Atomic int drops;
    _Atomic int returned;
    _Atomic int spawned;        /* 1 spawned, -1 refused */
    uint8_t kind;
    unsigned flags;
} rec;

static rec *recs;
static uint32_t max_recs;
static _Atomic uint32_t next_rec;
static weft_runtime *rt;
static _Atomic int shutting_down;

static uint32_t new_rec(enum kind k, unsigned flags)
{
    uint32_t id = atomic_fetch_add(&next_rec, 1);
    if (id >= max_recs) {
        CHECK(0, "out of records");
        return UINT32_MAX;
    }
    recs[id].kind = (uint8_t)k;
    recs[id].flags = flags;
    return id;
}

/* ---- the task ---------------------------------------------------------------- */

enum action { JOIN, ABORT_JOIN, DETACH, ACTIONS };

struct task {
    weft_frame f;
    uint32_t id;
    uint32_t seed;
    int yields, i, nchild;
    forever_leaf leaf;
    int64_t rc;
    bool cancelled;
    weft_join child[4];
    uint32_t child_id[4];
    uint8_t child_action[4];
    weft_outcome out;
};

static void check_outcome(uint32_t id, const weft_outcome *out, bool aborted);

static void task_drop(void *p)
{
    struct task *t = p;
    /* Handles we still hold: give them up. */
    for (int i = 0; i < 4; i++)
        if (t->child[i].weft_task)
            weft_detach(&t->child[i]);
    int d = atomic_fetch_add(&recs[t->id].drops, 1);
    CHECK(d == 0, "task %u dropped twice", t->id);
}

static weft_poll task_poll(weft_cx *cx, void *p);

static int spawn_task(weft_runtime *r, enum kind k, unsigned flags, uint32_t seed,
                      weft_join *h, uint32_t *idp)
{
    uint32_t id = new_rec(k, flags);
    *idp = id;
    if (id == UINT32_MAX)
        return -ENOMEM;
    struct task fr = { .id = id, .seed = seed, .yields = (int)(seed % 3) };
    if (k == PARENT)
        fr.nchild = 1 + (int)(seed % 4);
    weft_task_desc d = { .poll = task_poll, .frame = &fr, .frame_size = sizeof fr,
                         .drop = task_drop, .flags = flags };
    int rc = h ? weft_spawn(r, &d, h) : weft_spawn_detached(r, &d);
    atomic_store(&recs[id].spawned, rc == 0 ? 1 : -1);
    CHECK(rc == 0 || rc == -ESHUTDOWN, "spawn: %d", rc);
    CHECK(rc == 0 || atomic_load(&shutting_down), "spawn refused before shutdown");
    return rc;
}

static weft_poll task_poll(weft_cx *cx, void *p)
{
    struct task *t = p;
    rec *r = &recs[t->id];
    WEFT_BEGIN(&t->f);
    for (t->i = 0; t->i < t->yields; t->i++) {
        WEFT_YIELD(&t->f, t->rc);
        if (t->rc == -ECANCELED)
            t->cancelled = true;
    }
    if (r->kind == FOREVER) {
        WEFT_AWAIT(&t->f, t->rc, forever_poll(cx, &t->leaf));
        CHECK(t->rc == -ECANCELED, "forever leaf returned %ld", (long)t->rc);
        t->cancelled = true;
    } else if (r->kind == PARENT) {
        for (t->i = 0; t->i < t->nchild; t->i++) {
            uint32_t s = rnd(&t->seed);
            enum kind k = s % 3 == 0 ? FOREVER : QUICK;
            unsigned flags = (s >> 4) % 2 ? WEFT_TASK_CANCEL_SAFE : 0;
            uint8_t a = (uint8_t)((s >> 8) % ACTIONS);
            if (k == FOREVER && a == JOIN)
                a = ABORT_JOIN;
            t->child_action[t->i] = a;
            if (spawn_task(weft_cx_runtime(cx), k, flags, s, &t->child[t->i],
                           &t->child_id[t->i]) != 0)
                continue;
            if (a == DETACH)
                CHECK(weft_detach(&t->child[t->i]) == 0, "detach");
            else if (a == ABORT_JOIN)
                CHECK(weft_abort(&t->child[t->i]) >= 0, "abort");
        }
        for (t->i = 0; t->i < t->nchild; t->i++) {
            if (!t->child[t->i].weft_task)
                continue;
            WEFT_AWAIT(&t->f, t->rc, weft_join_await(cx, &t->child[t->i], &t->out));
            if (t->rc == -ECANCELED && t->child[t->i].weft_task) {
                /* We were cancelled: stop waiting; the drop hook detaches. */
                t->cancelled = true;
                break;
            }
            CHECK(t->rc == t->out.status, "join await %ld vs status %d", (long)t->rc,
                  t->out.status);
            check_outcome(t->child_id[t->i], &t->out, t->child_action[t->i] == ABORT_JOIN);
        }
    }
    atomic_store(&r->returned, 1);
    WEFT_RETURN(&t->f, (int64_t)t->id * 2 + t->cancelled);
    WEFT_END(&t->f);
}

/* ---- checking a join ---------------------------------------------------------- */

static void check_outcome(uint32_t id, const weft_outcome *out, bool aborted)
{
    rec *r = &recs[id];
    bool safe = r->flags & WEFT_TASK_CANCEL_SAFE;
    CHECK(atomic_load(&r->drops) == 1, "task %u joined with %d drops", id,
          atomic_load(&r->drops));
    if (out->status == 0) {
        CHECK(atomic_load(&r->returned) == 1, "task %u: status 0 but it never returned", id);
        CHECK(out->value == (int64_t)id * 2 || out->value == (int64_t)id * 2 + 1,
              "task %u: value %ld", id, (long)out->value);
        if (out->value & 1) {
            CHECK(!safe, "cancel-safe task %u saw -ECANCELED at an await", id);
            CHECK(out->cancel.source != WEFT_CANCEL_NONE, "task %u cancelled by nobody", id);
            CHECK(out->cancel.delivered_at != NULL, "task %u: no delivery site", id);
        }
        if (r->kind == FOREVER)
            CHECK(out->value & 1, "forever task %u returned without a cancellation", id);
    } else {
        CHECK(out->status == -ECANCELED, "task %u: status %d", id, out->status);
        CHECK(atomic_load(&r->returned) == 0, "task %u torn down after returning", id);
        CHECK(out->cancel.source != WEFT_CANCEL_NONE, "task %u torn down without a request",
              id);
        if (!safe)
            CHECK(out->cancel.source == WEFT_CANCEL_SHUTDOWN,
                  "cooperative task %u torn down by source %d", id, out->cancel.source);
    }
    if (aborted && out->cancel.source != WEFT_CANCEL_NONE)
        CHECK(out->cancel.source == WEFT_CANCEL_ABORT
                  || out->cancel.source == WEFT_CANCEL_SHUTDOWN,
              "task %u aborted, source %d", id, out->cancel.source);
    if (!aborted && out->cancel.source != WEFT_CANCEL_NONE)
        CHECK(out->cancel.source == WEFT_CANCEL_SHUTDOWN, "task %u: source %d, never aborted",
              id, out->cancel.source);
}

/* ---- external threads --------------------------------------------------------- */

typedef struct outstanding {
    weft_join h;
    uint32_t id;
} outstanding;

static outstanding *held;
static _Atomic uint32_t n_held;
static uint32_t max_held;
static long iters;
static _Atomic long progress;

static long hot;

static void *thread_main(void *arg)
{
    uint32_t seed = (uint32_t)(uintptr_t)arg * 2654435761u + 1;
    /* Hot phase, no shutdown yet: the two commonest paths back to back (a
     * detached task that finishes at once; spawn then join_wait), where the
     * spawner races the worker that completes and frees the task. */
    for (long it = 0; it < hot; it++) {
        weft_join h = WEFT_JOIN_INIT;
        weft_outcome out;
        uint32_t id;
        spawn_task(rt, QUICK, 0, 0, NULL, &id);
        if (spawn_task(rt, QUICK, it % 2 ? WEFT_TASK_CANCEL_SAFE : 0, 0, &h, &id) == 0) {
            CHECK(weft_join_wait(&h, &out) == 0, "join_wait");
            check_outcome(id, &out, false);
        }
    }
    for (long it = 0; it < iters; it++) {
        atomic_fetch_add(&progress, 1);
        uint32_t s = rnd(&seed);
        unsigned flags = (s >> 3) % 2 ? WEFT_TASK_CANCEL_SAFE : 0;
        weft_join h = WEFT_JOIN_INIT;
        weft_outcome out;
        uint32_t id;
        switch (s % 8) {
        case 0: case 1:     /* spawn and join */
            if (spawn_task(rt, QUICK, flags, s >> 8, &h, &id) == 0) {
                CHECK(weft_join_wait(&h, &out) == 0, "join_wait");
                check_outcome(id, &out, false);
            }
            break;
        case 2:             /* abort a task that waits forever, join it */
            if (spawn_task(rt, FOREVER, flags, s >> 8, &h, &id) == 0) {
                CHECK(weft_abort(&h) >= 0, "abort");
                CHECK(weft_join_wait(&h, &out) == 0, "join_wait");
                check_outcome(id, &out, true);
                if (!(flags & WEFT_TASK_CANCEL_SAFE))
                    CHECK(out.status == 0 || out.cancel.source == WEFT_CANCEL_SHUTDOWN,
                          "aborted cooperative task %u: status %d", id, out.status);
            }
            break;
        case 3:             /* abort right away, racing the task */
            if (spawn_task(rt, QUICK, flags, s >> 8, &h, &id) == 0) {
                int a = weft_abort(&h);
                CHECK(a == 0 || a == 1, "abort: %d", a);
                CHECK(weft_join_wait(&h, &out) == 0, "join_wait");
                check_outcome(id, &out, true);
                if (a == 1)
                    CHECK(out.status == 0, "abort of finished task %u changed it", id);
            }
            break;
        case 4:             /* detach */
            if (spawn_task(rt, (s >> 8) % 4 ? QUICK : PARENT, flags, s >> 8, &h, &id) == 0)
                CHECK(weft_detach(&h) == 0, "detach");
            break;
        case 5:             /* a parent that spawns, joins, aborts and detaches */
            if (spawn_task(rt, PARENT, flags, s >> 8, &h, &id) == 0) {
                CHECK(weft_join_wait(&h, &out) == 0, "join_wait");
                check_outcome(id, &out, false);
            }
            break;
        case 6: {           /* leave it waiting: joined after the runtime is freed */
            uint32_t slot = atomic_fetch_add(&n_held, 1);
            if (slot >= max_held)
                break;
            unsigned f2 = (s >> 9) % 3 == 0 ? WEFT_TASK_SHIELDED : flags;
            held[slot].h = (weft_join)WEFT_JOIN_INIT;
            held[slot].id = UINT32_MAX;
            if (spawn_task(rt, FOREVER, f2, s >> 8, &held[slot].h, &id) == 0)
                held[slot].id = id;
            break;
        }
        case 7:             /* detached and waiting forever: only shutdown ends it */
            if ((s >> 8) % 8 == 0)
                spawn_task(rt, FOREVER, flags | ((s >> 12) % 2 ? WEFT_TASK_SHIELDED : 0),
                           s >> 8, NULL, &id);
            else
                spawn_task(rt, QUICK, flags, s >> 8, NULL, &id);
            break;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = (int)arg_long(argc, argv, "--threads", 6);
    iters = arg_long(argc, argv, "--iters", 6000);
    hot = arg_long(argc, argv, "--hot", 5000);
    unsigned workers = (unsigned)arg_long(argc, argv, "--workers", 4);
    watchdog((unsigned)arg_long(argc, argv, "--timeout", 300));
    if (nthreads < 1 || nthreads > 256 || iters < 1)
        return 1;

    /* Each iteration makes at most one record itself, plus up to four per
     * parent, plus children's children: bound generously. */
    max_recs = (uint32_t)(nthreads * (iters * 6 + hot * 2) + 1024);
    recs = calloc(max_recs, sizeof *recs);
    max_held = (uint32_t)(nthreads * iters / 4 + 16);
    held = calloc(max_held, sizeof *held);
    if (!recs || !held)
        return 77;

    weft_runtime_opts o = { .threads = workers, .shutdown_grace_ms = 200 };
    int rc = weft_runtime_new(&rt, &o);
    if (rc == -ENOSYS || rc == -EPERM) {
        fprintf(stderr, "stress-spawn: no io_uring here (%d): skip\n", rc);
        return 77;
    }
    CHECK(rc == 0, "runtime_new: %d", rc);
    if (rc)
        return 1;

    pthread_t th[256];
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, thread_main, (void *)(uintptr_t)(i + 1));

    /* Shut down halfway, with tasks live and threads still spawning. */
    long half = (long)nthreads * iters / 2;
    while (atomic_load(&progress) < half)
        sched_yield();
    atomic_store(&shutting_down, 1);
    CHECK(weft_runtime_shutdown(rt) == 0, "shutdown");
    CHECK(weft_runtime_live_tasks(rt) == 0, "live tasks after shutdown: %zu",
          weft_runtime_live_tasks(rt));
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    CHECK(weft_runtime_free(rt) == 0, "free");

    /* Handles outlive the runtime. */
    uint32_t nh = atomic_load(&n_held);
    if (nh > max_held)
        nh = max_held;
    for (uint32_t i = 0; i < nh; i++) {
        if (held[i].id == UINT32_MAX)
            continue;
        weft_outcome out;
        CHECK(weft_join_wait(&held[i].h, &out) == 0, "join after free");
        check_outcome(held[i].id, &out, false);
        CHECK(out.cancel.source == WEFT_CANCEL_SHUTDOWN, "held task %u: source %d",
              held[i].id, out.cancel.source);
    }

    uint32_t n = atomic_load(&next_rec), spawned = 0, refused = 0;
    if (n > max_recs)
        n = max_recs;
    for (uint32_t id = 0; id < n; id++) {
        int sp = atomic_load(&recs[id].spawned);
        int d = atomic_load(&recs[id].drops);
        if (sp == 1) {
            spawned++;
            CHECK(d == 1, "task %u (kind %d, flags %u): %d drops", id, recs[id].kind,
                  recs[id].flags, d);
        } else {
            refused++;
            CHECK(d == 0, "refused task %u dropped", id);
        }
    }
    fprintf(stderr, "stress-spawn: %d threads x %ld iterations, %u tasks spawned, %u refused "
                    "after shutdown, %u held across free\n",
            nthreads, iters, spawned, refused, nh);
    free(recs);
    free(held);
    return stress_result("stress-spawn");
}
