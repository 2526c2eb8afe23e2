/*
 * tests/trace/trace_ring.c - a flight recorder written while it records:
 * trace-ring DIR runs busy tasks on two workers, tracing with
 * WEFT_TRACE_KEEP_LAST into small buffers that wrap over and over, and
 * meanwhile writes the trace WRITES times from the main thread, to
 * DIR/ring-<i>.json. check_trace.py --ring checks every file: none may
 * hold an event torn by an overwrite (trace.h, rule 3). It is in the
 * stress suite, so the TSan build runs it: the writer's reads and the
 * workers' overwrites race by design, and must do so without a data race.
 *
 * The tasks: PLAYERS tasks that pass a turn round a ring of notifies
 * (wakes, flows), each also sleeping a little now and then (timer fires,
 * parks), and spawning a short-lived child (spawns), until the main
 * thread says stop. Exit status 0 when every write succeeded.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/weft.h>

#define PLAYERS 16
#define WRITES 20
#define EVENTS_PER_BUFFER 512

static _Atomic bool stop;
static _Atomic long turns;

struct child { weft_frame f; };

static weft_poll child_poll(weft_cx *cx, void *p)
{
    (void)cx;
    (void)p;
    return 0;
}

struct player {
    weft_frame f;
    weft_notify *mine, *next;
    weft_notify_waiter waiter;
    weft_sleep sleep;
    long n;
    weft_poll rc;
};

static weft_poll player_poll(weft_cx *cx, void *p)
{
    struct player *pl = p;
    WEFT_BEGIN(&pl->f);
    while (!atomic_load(&stop)) {
        pl->waiter = (weft_notify_waiter)WEFT_NOTIFY_WAITER_INIT;
        WEFT_AWAIT(&pl->f, pl->rc, weft_notify_wait(cx, pl->mine, &pl->waiter));
        if (pl->rc < 0)
            break;
        atomic_fetch_add(&turns, 1);
        if (++pl->n % 8 == 0) {
            struct child c = { 0 };
            weft_task_desc d = WEFT_TASK(child_poll, &c);
            d.name = "child";
            weft_spawn_detached(weft_cx_runtime(cx), &d);
        }
        if (pl->n % 32 == 0) {
            pl->sleep = (weft_sleep)WEFT_SLEEP_INIT;
            WEFT_AWAIT(&pl->f, pl->rc, weft_sleep_for(cx, &pl->sleep, 100000));
        }
        weft_notify_one(pl->next);
    }
    weft_notify_one(pl->next);  /* whoever waits next sees stop too */
    WEFT_RETURN(&pl->f, 0);
    WEFT_END(&pl->f);
}

struct table {
    weft_frame f;
    weft_notify seats[PLAYERS];
    weft_join players[PLAYERS];
    weft_outcome out;
    int i;
    weft_poll rc;
};

static weft_poll table_poll(weft_cx *cx, void *p)
{
    struct table *t = p;
    WEFT_BEGIN(&t->f);
    for (t->i = 0; t->i < PLAYERS; t->i++)
        weft_notify_init(&t->seats[t->i]);
    for (t->i = 0; t->i < PLAYERS; t->i++) {
        struct player pl = { .mine = &t->seats[t->i],
                             .next = &t->seats[(t->i + 1) % PLAYERS] };
        weft_task_desc d = WEFT_TASK(player_poll, &pl);
        d.name = "player";
        int rc = weft_spawn(weft_cx_runtime(cx), &d, &t->players[t->i]);
        if (rc < 0)
            WEFT_RETURN(&t->f, rc);
    }
    weft_notify_one(&t->seats[0]);
    for (t->i = 0; t->i < PLAYERS; t->i++)
        WEFT_AWAIT(&t->f, t->rc, weft_join_await(cx, &t->players[t->i], &t->out));
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

struct table_runner {
    weft_runtime *rt;
    int rc;
};

static void *run_table(void *arg)
{
    struct table_runner *r = arg;
    struct table *t = calloc(1, sizeof *t);
    weft_outcome out;
    r->rc = t ? weft_block_on(r->rt, &WEFT_TASK(table_poll, t), &out) : -ENOMEM;
    if (r->rc == 0 && out.status != 0)
        r->rc = -EPROTO;
    free(t);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: trace-ring DIR\n");
        return 2;
    }
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = 2 };
    if (weft_runtime_new(&rt, &o) != 0
        || weft_trace_start_flags(rt, EVENTS_PER_BUFFER, WEFT_TRACE_KEEP_LAST) != 0) {
        fprintf(stderr, "trace-ring: setup failed\n");
        return 1;
    }
    struct table_runner runner = { .rt = rt };
    pthread_t th;
    if (pthread_create(&th, NULL, run_table, &runner) != 0)
        return 1;
    int rc = 0;
    char path[4096];
    for (int i = 0; i < WRITES && rc == 0; i++) {
        /* Let the buffers wrap between writes: a handshake on the
         * players' progress, not a sleep. */
        long until = atomic_load(&turns) + 4 * EVENTS_PER_BUFFER;
        while (atomic_load(&turns) < until)
            sched_yield();
        snprintf(path, sizeof path, "%s/ring-%d.json", argv[1], i);
        rc = weft_trace_write(rt, path);
    }
    atomic_store(&stop, true);
    pthread_join(th, NULL);
    if (rc < 0)
        fprintf(stderr, "trace-ring: writing %s: %s\n", path, weft_strerror(rc));
    if (runner.rc < 0)
        fprintf(stderr, "trace-ring: the tasks: %s\n", weft_strerror(runner.rc));
    weft_runtime_free(rt);
    return rc < 0 || runner.rc < 0;
}
