/*
 * bench/workloads_mutex.c - the mutex workload of docs/benchmarks.md: 100
 * tasks each lock one async mutex 10,000 times, add 1 to the counter it
 * protects, unlock, and yield.
 */
#include <errno.h>

#include <weft/sync.h>

#include "bench.h"

struct guarded {
    weft_mutex lock;
    int64_t counter;            /* only touched while holding lock */
};

struct locker {
    weft_frame f;
    struct guarded *g;
    weft_mutex_waiter waiter;
    int64_t left;
    weft_poll rc;
};

static weft_poll locker_poll(weft_cx *cx, void *p)
{
    struct locker *l = p;
    WEFT_BEGIN(&l->f);
    for (; l->left > 0; l->left--) {
        WEFT_AWAIT(&l->f, l->rc, weft_mutex_lock(cx, &l->g->lock, &l->waiter));
        if (l->rc < 0)
            WEFT_RETURN(&l->f, l->rc);
        l->g->counter++;
        weft_mutex_unlock(&l->g->lock);
        WEFT_YIELD(&l->f, l->rc);
    }
    WEFT_RETURN(&l->f, 0);
    WEFT_END(&l->f);
}

#define LOCKERS 100

struct mutex_root {
    weft_frame f;
    struct guarded g;
    weft_join handles[LOCKERS];
    int64_t per_task;
    struct bench_join_all join;
    weft_poll rc;
};

static weft_poll mutex_root_poll(weft_cx *cx, void *p)
{
    struct mutex_root *r = p;
    WEFT_BEGIN(&r->f);
    weft_mutex_init(&r->g.lock);
    for (int i = 0; i < LOCKERS; i++) {
        struct locker l = { .g = &r->g, .waiter = WEFT_MUTEX_WAITER_INIT, .left = r->per_task };
        int rc = weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(locker_poll, &l), &r->handles[i]);
        if (rc < 0)
            WEFT_RETURN(&r->f, rc);
    }
    r->join = (struct bench_join_all){ .handles = r->handles, .n = LOCKERS };
    WEFT_AWAIT(&r->f, r->rc, bench_join_all(cx, &r->join));
    weft_mutex_destroy(&r->g.lock);
    WEFT_RETURN(&r->f, r->rc == 0 && r->g.counter == LOCKERS * r->per_task ? r->g.counter
                                                                            : -EPROTO);
    WEFT_END(&r->f);
}

int64_t bench_mutex(weft_runtime *rt, double scale)
{
    struct mutex_root *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->per_task = bench_scaled(10000, scale);
    int64_t n = bench_block_on(rt, mutex_root_poll, r, sizeof *r);
    free(r);
    if (n == -EPROTO)
        fprintf(stderr, "weft-bench: mutex: the protected counter is wrong\n");
    return n;
}
