/*
 * tests/stress/stress_sync_locks.c - mutex, rwlock and semaphore under many
 * tasks on several workers plus plain threads, with aborts thrown in at
 * random so lock waits are withdrawn in every state (queued, handed the lock
 * but not yet run, holding). A plain executable (Criterion cannot start under
 * TSan): exit 0 = pass, 1 = fail, 77 = skip (no runtime on this machine).
 *
 *   usage: stress-sync-locks [--rounds R] [--tasks T] [--iters I] [--seed S]
 *
 * Each round spawns T tasks (a third on each primitive, half of them
 * cancel-safe), runs two threads of try_* calls beside them, and a chaos
 * thread that aborts most of them at random moments. Checks:
 *   - mutual exclusion: a holder count that must be 0 on entry, and plain
 *     (non-atomic) data written only under the lock, which TSan watches;
 *   - rwlock: no reader beside a writer, no two writers, and a pair of plain
 *     words a writer keeps equal is never seen unequal;
 *   - permit conservation: the permits in use never exceed the total, and
 *     after the round every permit is free again;
 *   - nothing lost: every lock is free at the end of a round (no handoff was
 *     dropped by a withdrawal, no waiter left linked), and the round ends at
 *     all (a lost wake-up would hang it: the watchdog fails the run).
 * A cancel-safe task torn down while holding gives the lock back in its drop
 * hook; a cooperative one sees -ECANCELED at its next await and unlocks.
 *
 * Then, more briefly, the rest of the batch, mainly for TSan: broadcast and
 * watch with senders on threads and receiving tasks aborted and replaced at
 * random (every broadcast value arrives once and in order, the newest watch
 * value is always seen before the end), a wait group whose waits are aborted
 * at random (a wait that sees zero sees all the work), and a barrier (one
 * leader per generation; writes before a trip are seen after it).
 */
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "stress_util.h"
#include "weft/weft.h"

#define PERMITS 5

enum kind { MUTEX, RWLOCK, SEMAPHORE };
enum held { NONE, HELD, READ_HELD, WRITE_HELD };

static weft_mutex mtx = WEFT_MUTEX_INIT;
static uint64_t mtx_counter;                    /* plain: written under mtx */
static _Atomic int mtx_inside;
static _Atomic uint64_t mtx_increments;

static weft_rwlock rwl = WEFT_RWLOCK_INIT;
static uint64_t rw_a, rw_b;                     /* plain: equal outside a write */
static _Atomic int rw_readers, rw_writers;
static _Atomic uint64_t rw_writes;

static weft_semaphore sem = WEFT_SEMAPHORE_INIT(PERMITS);
static _Atomic int64_t sem_in_use;
static _Atomic uint64_t sem_grants;

static _Atomic uint64_t cancelled_while_holding, torn_down_holding;

struct task {
    weft_frame f;
    enum kind kind;
    enum held held;
    int i, iters;
    uint32_t rng;
    uint64_t n, v;
    weft_mutex_waiter mw;
    weft_rwlock_waiter rw;
    weft_semaphore_waiter sw;
    int64_t rc, hrc;
};

/* ---- entering and leaving, for tasks, drop hooks and threads ------------------ */

static void mtx_enter(void)
{
    CHECK(atomic_fetch_add(&mtx_inside, 1) == 0, "two mutex holders");
}

static void mtx_leave(void)
{
    atomic_fetch_sub(&mtx_inside, 1);
    CHECK(weft_mutex_unlock(&mtx) == 0, "mutex unlock");
}

static void rw_enter(bool write)
{
    if (write) {
        CHECK(atomic_fetch_add(&rw_writers, 1) == 0, "two writers");
        CHECK(atomic_load(&rw_readers) == 0, "a writer beside readers");
    } else {
        atomic_fetch_add(&rw_readers, 1);
        CHECK(atomic_load(&rw_writers) == 0, "a reader beside a writer");
        CHECK(rw_a == rw_b, "a reader saw a half-done write");
    }
}

static void rw_leave(bool write)
{
    atomic_fetch_sub(write ? &rw_writers : &rw_readers, 1);
    int rc = write ? weft_rwlock_write_unlock(&rwl) : weft_rwlock_read_unlock(&rwl);
    CHECK(rc == 0, "rwlock unlock: %d", rc);
}

static void sem_enter(uint64_t n)
{
    int64_t now = atomic_fetch_add(&sem_in_use, (int64_t)n) + (int64_t)n;
    CHECK(now <= PERMITS, "%ld permits in use of %d", (long)now, PERMITS);
    atomic_fetch_add(&sem_grants, 1);
}

static void sem_leave(uint64_t n)
{
    atomic_fetch_sub(&sem_in_use, (int64_t)n);
    CHECK(weft_semaphore_release(&sem, n) == 0, "release");
}

/* Give back what a task holds (its drop hook, or its own unlock). */
static void give_back(struct task *t)
{
    switch (t->held) {
    case HELD:
        if (t->kind == MUTEX)
            mtx_leave();
        else
            sem_leave(t->n);
        break;
    case READ_HELD:
        rw_leave(false);
        break;
    case WRITE_HELD:
        rw_leave(true);
        break;
    case NONE:
        break;
    }
    t->held = NONE;
}

/* ---- the tasks ---------------------------------------------------------------- */

static uint32_t next_rnd(struct task *t)
{
    return rnd(&t->rng);
}

static weft_poll task_poll(weft_cx *cx, void *p)
{
    struct task *t = p;
    WEFT_BEGIN(&t->f);
    for (t->i = 0; t->i < t->iters; t->i++) {
        t->hrc = 0;
        if (t->kind == MUTEX) {
            WEFT_AWAIT(&t->f, t->rc, weft_mutex_lock(cx, &mtx, &t->mw));
            if (t->rc < 0)
                break;
            t->held = HELD;
            mtx_enter();
            t->v = mtx_counter;
            if (next_rnd(t) % 3 == 0)
                WEFT_YIELD(&t->f, t->hrc);      /* an await while holding */
            mtx_counter = t->v + 1;
            atomic_fetch_add(&mtx_increments, 1);
        } else if (t->kind == RWLOCK && next_rnd(t) % 4 == 0) {
            WEFT_AWAIT(&t->f, t->rc, weft_rwlock_write(cx, &rwl, &t->rw));
            if (t->rc < 0)
                break;
            t->held = WRITE_HELD;
            rw_enter(true);
            t->v = rw_a;
            if (next_rnd(t) % 3 == 0)
                WEFT_YIELD(&t->f, t->hrc);
            rw_a = rw_b = t->v + 1;             /* both, after the await */
            atomic_fetch_add(&rw_writes, 1);
            if (next_rnd(t) % 4 == 0) {
                /* Keep reading what was written, with no writer between. */
                atomic_fetch_sub(&rw_writers, 1);
                CHECK(weft_rwlock_downgrade(&rwl) == 0, "downgrade");
                t->held = READ_HELD;
                rw_enter(false);
            }
        } else if (t->kind == RWLOCK) {
            WEFT_AWAIT(&t->f, t->rc, weft_rwlock_read(cx, &rwl, &t->rw));
            if (t->rc < 0)
                break;
            t->held = READ_HELD;
            rw_enter(false);
            if (next_rnd(t) % 3 == 0)
                WEFT_YIELD(&t->f, t->hrc);
            CHECK(rw_a == rw_b, "a write happened under a read hold");
        } else {
            /* Sometimes all the permits: a large head blocks smaller ones. */
            t->n = next_rnd(t) % 8 == 0 ? PERMITS : 1 + next_rnd(t) % 3;
            WEFT_AWAIT(&t->f, t->rc, weft_semaphore_acquire(cx, &sem, &t->sw, t->n));
            if (t->rc < 0)
                break;
            t->held = HELD;
            sem_enter(t->n);
            if (next_rnd(t) % 3 == 0)
                WEFT_YIELD(&t->f, t->hrc);
        }
        if (t->hrc < 0)
            atomic_fetch_add(&cancelled_while_holding, 1);
        give_back(t);
        if (t->hrc < 0)
            break;
        if (next_rnd(t) % 8 == 0) {
            WEFT_YIELD(&t->f, t->rc);
            if (t->rc < 0)
                break;
        }
    }
    CHECK(t->rc == 0 || t->rc == -ECANCELED, "task ended with %ld", (long)t->rc);
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

/* Runs once per task; only a task torn down while holding still holds. */
static void task_drop(void *p)
{
    struct task *t = p;
    if (t->held != NONE)
        atomic_fetch_add(&torn_down_holding, 1);
    give_back(t);
}

/* ---- threads beside the tasks ------------------------------------------------- */

static _Atomic int threads_stop;

static void *try_thread(void *arg)
{
    uint32_t rng = (uint32_t)(uintptr_t)arg | 1;
    while (!atomic_load(&threads_stop)) {
        switch (rnd(&rng) % 4) {
        case 0:
            if (weft_mutex_try_lock(&mtx) == 0) {
                mtx_enter();
                mtx_counter++;
                atomic_fetch_add(&mtx_increments, 1);
                mtx_leave();
            }
            break;
        case 1:
            if (weft_rwlock_try_read(&rwl) == 0) {
                rw_enter(false);
                rw_leave(false);
            }
            break;
        case 2:
            if (weft_rwlock_try_write(&rwl) == 0) {
                rw_enter(true);
                rw_a++;
                rw_b++;
                atomic_fetch_add(&rw_writes, 1);
                rw_leave(true);
            }
            break;
        default:
            if (weft_semaphore_try_acquire(&sem, 2) == 0) {
                sem_enter(2);
                sem_leave(2);
            }
            break;
        }
        sched_yield();
    }
    return NULL;
}

/* ---- chaos --------------------------------------------------------------------- */

struct chaos {
    weft_join *handles;
    unsigned n;
    uint32_t seed;
    unsigned aborted;
};

static void pause_ns(uint32_t *rng, unsigned max_us)
{
    struct timespec start, now;
    uint64_t ns = rnd(rng) % ((uint64_t)max_us * 1000 + 1);
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((uint64_t)(now.tv_sec - start.tv_sec) * 1000000000u + (uint64_t)now.tv_nsec
             - (uint64_t)start.tv_nsec < ns);
}

/* Abort up to three quarters of the tasks, each at a random moment while it
 * runs. */
static void *chaos_main(void *arg)
{
    struct chaos *c = arg;
    uint32_t rng = c->seed | 1;
    unsigned finished;
    do {
        pause_ns(&rng, 30);
        unsigned i = rnd(&rng) % c->n;
        if (!weft_join_is_finished(&c->handles[i]) && rnd(&rng) % 2 == 0
            && weft_abort(&c->handles[i]) == 0)
            c->aborted++;
        finished = 0;
        for (unsigned j = 0; j < c->n; j++)
            finished += weft_join_is_finished(&c->handles[j]);
    } while (finished < c->n && c->aborted < c->n * 3 / 4);
    return NULL;
}

/* ---- a round ------------------------------------------------------------------- */

static void round_checks(unsigned round)
{
    CHECK(!weft_mutex_is_locked(&mtx), "round %u: mutex left locked", round);
    CHECK(weft_mutex_destroy(&mtx) == 0, "round %u: mutex busy", round);
    CHECK(mtx_counter == atomic_load(&mtx_increments), "round %u: mutex counter %lu, %lu "
          "increments", round, (unsigned long)mtx_counter,
          (unsigned long)atomic_load(&mtx_increments));
    CHECK(weft_rwlock_destroy(&rwl) == 0, "round %u: rwlock left held or waited for", round);
    CHECK(rw_a == rw_b && rw_a == atomic_load(&rw_writes), "round %u: rwlock data %lu/%lu, "
          "%lu writes", round, (unsigned long)rw_a, (unsigned long)rw_b,
          (unsigned long)atomic_load(&rw_writes));
    CHECK(weft_semaphore_available(&sem) == PERMITS, "round %u: %ld permits free of %d",
          round, (long)weft_semaphore_available(&sem), PERMITS);
    CHECK(atomic_load(&sem_in_use) == 0, "round %u: permits still counted in use", round);
    CHECK(weft_semaphore_destroy(&sem) == 0, "round %u: semaphore busy", round);
}

static unsigned run_round(weft_runtime *rt, unsigned round, unsigned tasks, unsigned iters,
                          uint32_t *rng)
{
    weft_join *handles = calloc(tasks, sizeof *handles);
    pthread_t th[2];
    atomic_store(&threads_stop, 0);
    for (uintptr_t i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, try_thread, (void *)(uintptr_t)(rnd(rng) + i));
    for (unsigned i = 0; i < tasks; i++) {
        struct task fr = { .kind = (enum kind)(i % 3), .iters = (int)iters,
                           .rng = rnd(rng) | 1 };
        weft_task_desc d = WEFT_TASK(task_poll, &fr);
        d.drop = task_drop;
        d.flags = (rnd(rng) & 1) ? WEFT_TASK_CANCEL_SAFE : 0;
        handles[i] = (weft_join)WEFT_JOIN_INIT;
        CHECK(weft_spawn(rt, &d, &handles[i]) == 0, "spawn");
    }
    struct chaos chaos = { .handles = handles, .n = tasks, .seed = rnd(rng) };
    pthread_t chaos_th;
    pthread_create(&chaos_th, NULL, chaos_main, &chaos);
    pthread_join(chaos_th, NULL);
    for (unsigned i = 0; i < tasks; i++) {
        weft_outcome o;
        CHECK(weft_join_wait(&handles[i], &o) == 0, "join");
    }
    atomic_store(&threads_stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    round_checks(round);
    free(handles);
    return chaos.aborted;
}

/* ==== The rest of the batch, more briefly: broadcast, watch, wait group and
 * barrier with senders on threads, receivers aborted and replaced. ========== */

/* Run a chain of receiving tasks on one slot: each is spawned (cooperative or
 * cancel-safe at random), aborted after a random moment, joined and
 * replaced, until one returns -EPIPE (the channel ended). */
struct chain {
    weft_runtime *rt;
    weft_poll_fn poll;
    void *slot;
    uint32_t rng;
    unsigned aborted;
    pthread_t th;
};

struct chain_frame {
    weft_frame f;
    void *slot;
    uint64_t v;
    int64_t rc;
};

static void *chain_main(void *arg)
{
    struct chain *c = arg;
    for (;;) {
        struct chain_frame fr = { .slot = c->slot };
        weft_task_desc d = WEFT_TASK(c->poll, &fr);
        d.flags = (rnd(&c->rng) & 1) ? WEFT_TASK_CANCEL_SAFE : 0;
        weft_join h = WEFT_JOIN_INIT;
        if (weft_spawn(c->rt, &d, &h) != 0) {
            CHECK(0, "spawn receiver");
            return NULL;
        }
        pause_ns(&c->rng, 200);
        weft_abort(&h);
        weft_outcome o;
        weft_join_wait(&h, &o);
        if (o.status == 0 && o.value == -EPIPE)
            return NULL;
        CHECK(o.status == -ECANCELED || o.value == -ECANCELED, "receiver ended with %d/%ld",
              o.status, (long)o.value);
        c->aborted++;
    }
}

#define BC_SENDERS 2
#define BC_RECEIVERS 3

struct bc_slot {
    weft_broadcast_rx rx;
    uint64_t next_seq[BC_SENDERS];      /* plain: one task of the chain at a time */
};

/* Record each value in the same poll that receives it: nothing is between a
 * receive and its record for a tear-down to lose. */
static weft_poll bc_poll(weft_cx *cx, void *p)
{
    struct chain_frame *t = p;
    struct bc_slot *s = t->slot;
    WEFT_BEGIN(&t->f);
    for (;;) {
        WEFT_AWAIT(&t->f, t->rc, weft_broadcast_recv(cx, &s->rx, &t->v));
        if (t->rc < 0)
            break;
        uint64_t sender = t->v >> 32, seq = t->v & 0xffffffffu;
        CHECK(sender < BC_SENDERS && seq == s->next_seq[sender],
              "broadcast: %lx out of order (lost or repeated)", (unsigned long)t->v);
        if (sender < BC_SENDERS)
            s->next_seq[sender] = seq + 1;
    }
    CHECK(t->rc == -EPIPE || t->rc == -ECANCELED, "broadcast recv: %ld", (long)t->rc);
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

struct bc_sender {
    weft_broadcast_tx tx;
    uint64_t id, count;
    pthread_t th;
};

static void *bc_send_main(void *arg)
{
    struct bc_sender *b = arg;
    for (uint64_t i = 0; i < b->count; i++) {
        int64_t n = weft_broadcast_send(&b->tx, b->id << 32 | i);
        CHECK(n == BC_RECEIVERS, "broadcast send: %ld", (long)n);
        if (i % 64 == 0)
            sched_yield();
    }
    CHECK(weft_broadcast_tx_drop(&b->tx) == 0, "tx drop");
    return NULL;
}

static unsigned run_broadcast(weft_runtime *rt, uint64_t count, uint32_t *rng)
{
    static struct bc_slot slots[BC_RECEIVERS];
    struct chain chains[BC_RECEIVERS];
    struct bc_sender senders[BC_SENDERS];
    weft_broadcast_tx tx;
    /* Room for everything: a receiver never lags, so every value must come. */
    CHECK(weft_broadcast_new(&tx, &slots[0].rx, BC_SENDERS * count) == 0, "broadcast_new");
    for (int i = 1; i < BC_RECEIVERS; i++)
        CHECK(weft_broadcast_subscribe(&tx, &slots[i].rx) == 0, "subscribe");
    for (int i = 0; i < BC_RECEIVERS; i++) {
        for (int j = 0; j < BC_SENDERS; j++)
            slots[i].next_seq[j] = 0;
        chains[i] = (struct chain){ .rt = rt, .poll = bc_poll, .slot = &slots[i],
                                    .rng = rnd(rng) | 1 };
        pthread_create(&chains[i].th, NULL, chain_main, &chains[i]);
    }
    for (int i = 0; i < BC_SENDERS; i++) {
        senders[i] = (struct bc_sender){ .id = (uint64_t)i, .count = count };
        CHECK(weft_broadcast_tx_clone(&senders[i].tx, &tx) == 0, "tx clone");
        pthread_create(&senders[i].th, NULL, bc_send_main, &senders[i]);
    }
    CHECK(weft_broadcast_tx_drop(&tx) == 0, "tx drop");
    unsigned aborted = 0;
    for (int i = 0; i < BC_SENDERS; i++)
        pthread_join(senders[i].th, NULL);
    for (int i = 0; i < BC_RECEIVERS; i++) {
        pthread_join(chains[i].th, NULL);
        aborted += chains[i].aborted;
        for (int j = 0; j < BC_SENDERS; j++)
            CHECK(slots[i].next_seq[j] == count, "broadcast: receiver %d saw %lu of %lu from "
                  "sender %d", i, (unsigned long)slots[i].next_seq[j], (unsigned long)count, j);
        CHECK(weft_broadcast_rx_drop(&slots[i].rx) == 0, "rx drop");
    }
    return aborted;
}

#define WT_RECEIVERS 2

struct wt_slot {
    weft_watch_rx rx;
    uint64_t last;                      /* plain: one task of the chain at a time */
};

static weft_poll wt_poll(weft_cx *cx, void *p)
{
    struct chain_frame *t = p;
    struct wt_slot *s = t->slot;
    WEFT_BEGIN(&t->f);
    for (;;) {
        WEFT_AWAIT(&t->f, t->rc, weft_watch_changed(cx, &s->rx, &t->v));
        if (t->rc < 0)
            break;
        CHECK(t->v > s->last, "watch: %lu after %lu", (unsigned long)t->v,
              (unsigned long)s->last);
        s->last = t->v;
    }
    CHECK(t->rc == -EPIPE || t->rc == -ECANCELED, "watch changed: %ld", (long)t->rc);
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

static unsigned run_watch(weft_runtime *rt, uint64_t count, uint32_t *rng)
{
    static struct wt_slot slots[WT_RECEIVERS];
    struct chain chains[WT_RECEIVERS];
    weft_watch_tx tx;
    CHECK(weft_watch_new(&tx, &slots[0].rx, 0) == 0, "watch_new");
    for (int i = 1; i < WT_RECEIVERS; i++)
        CHECK(weft_watch_subscribe(&tx, &slots[i].rx) == 0, "subscribe");
    for (int i = 0; i < WT_RECEIVERS; i++) {
        slots[i].last = 0;
        chains[i] = (struct chain){ .rt = rt, .poll = wt_poll, .slot = &slots[i],
                                    .rng = rnd(rng) | 1 };
        pthread_create(&chains[i].th, NULL, chain_main, &chains[i]);
    }
    for (uint64_t v = 1; v <= count; v++) {
        CHECK(weft_watch_send(&tx, v) == WT_RECEIVERS, "watch send");
        if (v % 64 == 0)
            sched_yield();
    }
    CHECK(weft_watch_tx_drop(&tx) == 0, "tx drop");
    unsigned aborted = 0;
    for (int i = 0; i < WT_RECEIVERS; i++) {
        pthread_join(chains[i].th, NULL);
        aborted += chains[i].aborted;
        /* The newest change is reported before the end: it cannot be lost. */
        CHECK(slots[i].last == count, "watch: receiver %d last saw %lu of %lu", i,
              (unsigned long)slots[i].last, (unsigned long)count);
        CHECK(weft_watch_rx_drop(&slots[i].rx) == 0, "rx drop");
    }
    return aborted;
}

/* Wait group: workers publish plain data then done(); waiters (some aborted)
 * that see zero must see all of it. */
#define WG_WORKERS 16
#define WG_WAITERS 8

static weft_waitgroup wg = WEFT_WAITGROUP_INIT;
static uint64_t wg_data[WG_WORKERS];        /* plain: published by done() */
static uint64_t wg_round;

struct wg_task {
    weft_frame f;
    int id;
    bool waiter;
    weft_waitgroup_waiter w;
    int64_t rc;
};

static void wg_check_data(void)
{
    for (int i = 0; i < WG_WORKERS; i++)
        CHECK(wg_data[i] == wg_round, "wait group: worker %d not done after zero", i);
}

static weft_poll wg_poll(weft_cx *cx, void *p)
{
    struct wg_task *t = p;
    WEFT_BEGIN(&t->f);
    if (t->waiter) {
        WEFT_AWAIT(&t->f, t->rc, weft_waitgroup_wait(cx, &wg, &t->w));
        if (t->rc == 0)
            wg_check_data();
        CHECK(t->rc == 0 || t->rc == -ECANCELED, "wait: %ld", (long)t->rc);
        WEFT_RETURN(&t->f, t->rc);
    }
    WEFT_YIELD(&t->f, t->rc);
    wg_data[t->id] = wg_round;
    CHECK(weft_waitgroup_done(&wg) == 0, "done");
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static void *wg_blocking_main(void *arg)
{
    (void)arg;
    CHECK(weft_waitgroup_wait_blocking(&wg) == 0, "wait_blocking");
    wg_check_data();
    return NULL;
}

static unsigned run_waitgroup(weft_runtime *rt, uint32_t *rng)
{
    weft_join waiters[WG_WAITERS], workers[WG_WORKERS];
    unsigned aborted = 0;
    wg_round++;
    CHECK(weft_waitgroup_add(&wg, WG_WORKERS) == 0, "add");
    pthread_t th;
    pthread_create(&th, NULL, wg_blocking_main, NULL);
    for (int i = 0; i < WG_WAITERS; i++) {
        struct wg_task fr = { .waiter = true };
        weft_task_desc d = WEFT_TASK(wg_poll, &fr);
        d.flags = (rnd(rng) & 1) ? WEFT_TASK_CANCEL_SAFE : 0;
        waiters[i] = (weft_join)WEFT_JOIN_INIT;
        CHECK(weft_spawn(rt, &d, &waiters[i]) == 0, "spawn");
    }
    for (int i = 0; i < WG_WORKERS; i++) {
        struct wg_task fr = { .id = i };
        weft_task_desc d = WEFT_TASK(wg_poll, &fr);
        workers[i] = (weft_join)WEFT_JOIN_INIT;
        CHECK(weft_spawn(rt, &d, &workers[i]) == 0, "spawn");
        if (rnd(rng) % 2 == 0)
            aborted += weft_abort(&waiters[rnd(rng) % WG_WAITERS]) == 0;
    }
    for (int i = 0; i < WG_WAITERS; i++) {
        weft_outcome o;
        weft_join_wait(&waiters[i], &o);
    }
    for (int i = 0; i < WG_WORKERS; i++) {
        weft_outcome o;
        weft_join_wait(&workers[i], &o);
        CHECK(o.status == 0 && o.value == 0, "worker ended with %d/%ld", o.status,
              (long)o.value);
    }
    pthread_join(th, NULL);
    CHECK(weft_waitgroup_count(&wg) == 0, "count left");
    CHECK(weft_waitgroup_destroy(&wg) == 0, "a wait left linked");
    return aborted;
}

/* Barrier: each party writes its slot, waits, reads every slot, waits again
 * (so no write races a read); one leader per generation. */
#define BAR_PARTIES 6

static weft_barrier bar = WEFT_BARRIER_INIT(BAR_PARTIES);
static uint64_t bar_slots[BAR_PARTIES];     /* plain: ordered by the barrier */
static _Atomic uint64_t bar_leaders;

struct bar_task {
    weft_frame f;
    int id;
    uint64_t round, rounds;
    weft_barrier_waiter w;
    int64_t rc;
};

static weft_poll bar_poll(weft_cx *cx, void *p)
{
    struct bar_task *t = p;
    WEFT_BEGIN(&t->f);
    for (t->round = 1; t->round <= t->rounds; t->round++) {
        bar_slots[t->id] = t->round;
        WEFT_AWAIT(&t->f, t->rc, weft_barrier_wait(cx, &bar, &t->w));
        CHECK(t->rc >= 0, "barrier: %ld", (long)t->rc);
        atomic_fetch_add(&bar_leaders, t->rc == WEFT_BARRIER_LEADER);
        for (int i = 0; i < BAR_PARTIES; i++)
            CHECK(bar_slots[i] == t->round, "barrier: party %d not at round %lu", i,
                  (unsigned long)t->round);
        WEFT_AWAIT(&t->f, t->rc, weft_barrier_wait(cx, &bar, &t->w));
        atomic_fetch_add(&bar_leaders, t->rc == WEFT_BARRIER_LEADER);
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static void run_barrier(weft_runtime *rt, uint64_t rounds)
{
    weft_join h[BAR_PARTIES];
    atomic_store(&bar_leaders, 0);
    for (int i = 0; i < BAR_PARTIES; i++) {
        struct bar_task fr = { .id = i, .rounds = rounds };
        weft_task_desc d = WEFT_TASK(bar_poll, &fr);
        h[i] = (weft_join)WEFT_JOIN_INIT;
        CHECK(weft_spawn(rt, &d, &h[i]) == 0, "spawn");
    }
    for (int i = 0; i < BAR_PARTIES; i++) {
        weft_outcome o;
        weft_join_wait(&h[i], &o);
    }
    CHECK(atomic_load(&bar_leaders) == 2 * rounds, "barrier: %lu leaders for %lu generations",
          (unsigned long)atomic_load(&bar_leaders), (unsigned long)(2 * rounds));
    CHECK(weft_barrier_destroy(&bar) == 0, "barrier left busy");
}

static void run_the_rest(weft_runtime *rt, unsigned rounds, unsigned iters, uint32_t *rng)
{
    unsigned bc_aborted = 0, wt_aborted = 0, wg_aborted = 0;
    for (unsigned r = 0; r < rounds && !atomic_load(&stress_failures); r++) {
        bc_aborted += run_broadcast(rt, iters, rng);
        wt_aborted += run_watch(rt, 4 * (uint64_t)iters, rng);
        wg_aborted += run_waitgroup(rt, rng);
        run_barrier(rt, iters / 10 + 1);
    }
    printf("the rest: %u broadcast, %u watch receivers replaced; %u wait group waits "
           "aborted\n", bc_aborted, wt_aborted, wg_aborted);
}

int main(int argc, char **argv)
{
    unsigned rounds = (unsigned)arg_long(argc, argv, "--rounds", 12);
    unsigned tasks = (unsigned)arg_long(argc, argv, "--tasks", 48);
    unsigned iters = (unsigned)arg_long(argc, argv, "--iters", 3000);
    uint32_t seed = (uint32_t)arg_long(argc, argv, "--seed", (long)time(NULL));
    if (tasks < 3)
        tasks = 3;
    watchdog(300);
    printf("stress-sync-locks: %u rounds of %u tasks x %u iterations, seed %u\n", rounds, tasks,
           iters, seed);

    weft_runtime *rt;
    weft_runtime_opts opts = { .threads = 4 };
    int rc = weft_runtime_new(&rt, &opts);
    if (rc) {
        fprintf(stderr, "SKIP: no runtime: %s\n", weft_strerror(rc));
        return 77;
    }
    uint32_t rng = seed | 1;
    unsigned aborted = 0;
    for (unsigned r = 0; r < rounds && !atomic_load(&stress_failures); r++)
        aborted += run_round(rt, r, tasks, iters, &rng);
    run_the_rest(rt, rounds / 3 + 1, iters, &rng);
    weft_runtime_free(rt);
    printf("stress-sync-locks: %u aborts; %lu mutex increments, %lu rwlock writes, "
           "%lu semaphore grants; %lu cancelled while holding, %lu torn down holding\n",
           aborted, (unsigned long)atomic_load(&mtx_increments),
           (unsigned long)atomic_load(&rw_writes), (unsigned long)atomic_load(&sem_grants),
           (unsigned long)atomic_load(&cancelled_while_holding),
           (unsigned long)atomic_load(&torn_down_holding));
    fflush(stdout);
    if (atomic_load(&stress_failures))
        fprintf(stderr, "seed %u\n", seed);
    return stress_result("stress-sync-locks");
}
