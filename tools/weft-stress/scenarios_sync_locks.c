/*
 * tools/weft-stress/scenarios_sync_locks.c - cancellation against the locks
 * of weft/sync.h (mutex, rwlock, semaphore), with random aborts landing on
 * their waits and on their holders.
 *
 *  locks          mutex, rwlock and semaphore holders with two-step updates
 *                 across an await, lock waits raced against timers.
 *                 Invariants: mutual exclusion (and readers-xor-writer, at
 *                 most k permit holders) at every moment, the two-step state
 *                 repaired after every cancel (C6), and at the end nothing
 *                 held, nothing queued, every permit back (C7).
 *
 * Every task's drop hook must run exactly once, and every join must resolve
 * with a status that matches the cancellation rules (docs/cancellation.md).
 * The other sync primitives: scenarios_sync_chan.c (channels) and
 * scenarios_sync_gather.c (group, wait group, barrier, notify).
 *
 * Each scenario here is written as stress_parts (stress.h): its own run and
 * weft-stress --harness (harness.c) check the same invariants.
 */
#include <stdlib.h>

#include "scen_util.h"

#define NP 8            /* lockers at most */

/* ==== locks ================================================================ */

enum lkind { L_MUTEX, L_MUTEX_SAFE, L_READ, L_WRITE, L_SEM, L_KINDS };

struct locks {
    uint64_t seed;
    uint32_t n, iters[NP], permits;
    uint8_t kind[NP];
    weft_mutex mx;
    weft_rwlock rw;
    weft_semaphore sem;
    uint64_t a, b;                      /* the two-step state under mx */
    _Atomic int in_mx, readers, writers;
    _Atomic int64_t sem_held;
    _Atomic uint32_t drops[NP];
    weft_join h[NP];
};

struct locker {
    weft_frame f;
    struct locks *l;
    uint32_t id, i;
    uint64_t need, nap_ns;
    bool holds;                         /* the drop hook releases what is held */
    weft_mutex_waiter mw;
    weft_rwlock_waiter rww;
    weft_semaphore_waiter sw;
    weft_selector sel;
    weft_sleep nap;
    weft_poll rc;
};

static void lk_violation(struct locks *l, const char *what, uint32_t id)
{
    stress_violation("locks", l->seed, "task %u (kind %d): %s", id, l->kind[id], what);
}

static void release(struct locker *k)
{
    struct locks *l = k->l;
    int kind = l->kind[k->id];
    if (kind == L_MUTEX || kind == L_MUTEX_SAFE)
        weft_mutex_unlock(&l->mx);
    else if (kind == L_READ)
        weft_rwlock_read_unlock(&l->rw);
    else if (kind == L_WRITE)
        weft_rwlock_write_unlock(&l->rw);
    else
        weft_semaphore_release(&l->sem, k->need);
    k->holds = false;
}

static void locker_drop(void *p)
{
    struct locker *k = p;
    if (k->holds)
        release(k);
    atomic_fetch_add(&k->l->drops[k->id], 1);
}

static weft_poll acquire_leaf(weft_cx *cx, struct locker *k)
{
    struct locks *l = k->l;
    int kind = l->kind[k->id];
    if (kind == L_MUTEX || kind == L_MUTEX_SAFE)
        return weft_mutex_lock(cx, &l->mx, &k->mw);
    if (kind == L_READ)
        return weft_rwlock_read(cx, &l->rw, &k->rww);
    if (kind == L_WRITE)
        return weft_rwlock_write(cx, &l->rw, &k->rww);
    return weft_semaphore_acquire(cx, &l->sem, &k->sw, k->need);
}

static weft_poll lock_or_nap(weft_cx *cx, void *frame, unsigned i)
{
    struct locker *k = frame;
    return i == 0 ? acquire_leaf(cx, k) : weft_sleep_for(cx, &k->nap, k->nap_ns);
}

/* Acquire, half the time raced against a timer (C7/C8): yields 0 when held. */
static weft_poll acquire(weft_cx *cx, struct locker *k)
{
    if (k->nap_ns == 0)
        return acquire_leaf(cx, k);
    weft_poll r = weft_select(cx, &k->sel, 2, lock_or_nap, k);
    if (r == WEFT_PENDING)
        return r;
    int64_t got;
    if (weft_select_outcome(&k->sel, 0, &got) && got == 0)
        return 0;   /* acquired, even if the task was cancelled meanwhile */
    return r == -ECANCELED ? r : -EAGAIN;
}

/* Entering the critical section: check exclusion, start the two-step. */
static void enter(struct locker *k)
{
    struct locks *l = k->l;
    int kind = l->kind[k->id];
    k->holds = true;
    if (kind == L_MUTEX || kind == L_MUTEX_SAFE) {
        if (atomic_fetch_add(&l->in_mx, 1) != 0)
            lk_violation(l, "two mutex holders", k->id);
        if (l->a != l->b)
            lk_violation(l, "mutex state left broken (C6)", k->id);
        l->a++;
    } else if (kind == L_READ) {
        atomic_fetch_add(&l->readers, 1);
        if (atomic_load(&l->writers) != 0)
            lk_violation(l, "reader beside a writer", k->id);
    } else if (kind == L_WRITE) {
        if (atomic_fetch_add(&l->writers, 1) != 0 || atomic_load(&l->readers) != 0)
            lk_violation(l, "writer not alone", k->id);
    } else if (atomic_fetch_add(&l->sem_held, (int64_t)k->need) + (int64_t)k->need
               > (int64_t)l->permits) {
        lk_violation(l, "more permits held than exist", k->id);
    }
}

/* Leaving: finish the two-step (also after a cancel: the repair), release. */
static void leave(struct locker *k)
{
    struct locks *l = k->l;
    int kind = l->kind[k->id];
    if (kind == L_MUTEX || kind == L_MUTEX_SAFE) {
        l->b++;
        atomic_fetch_sub(&l->in_mx, 1);
    } else if (kind == L_READ) {
        atomic_fetch_sub(&l->readers, 1);
    } else if (kind == L_WRITE) {
        atomic_fetch_sub(&l->writers, 1);
    } else {
        atomic_fetch_sub(&l->sem_held, (int64_t)k->need);
    }
    release(k);
}

static weft_poll locker_poll(weft_cx *cx, void *p)
{
    struct locker *k = p;
    struct locks *l = k->l;
    bool safe = l->kind[k->id] == L_MUTEX_SAFE;
    WEFT_BEGIN(&k->f);
    for (k->i = 0; k->i < l->iters[k->id]; k->i++) {
        k->nap_ns = (k->i + k->id) % 2 ? (k->i % 3) * 250000u + 1 : 0;
        /* A cancel-safe task must not be torn down while a select settles:
         * the won lock would be dropped unread (select.h "Limit"). */
        if (safe && k->nap_ns)
            weft_shield_enter(cx);
        k->sel = (weft_selector)WEFT_SELECTOR_INIT;   /* see scen_util.h */
        WEFT_AWAIT(&k->f, k->rc, acquire(cx, k));
        if (safe && k->nap_ns)
            weft_shield_exit(cx);
        scen_count_withdrawn(k->rc == -EAGAIN ? -ECANCELED : k->rc);
        if (k->rc == -EAGAIN)
            continue;       /* the timer won: retry from the back of the line */
        if (k->rc != 0)
            WEFT_RETURN(&k->f, k->rc == -ECANCELED ? 1 : -1);
        /* A cancel-safe holder shields its two-step so tear-down cannot split
         * it (C6); --planted leaves the shield out. */
        if (safe && !stress_planted)
            weft_shield_enter(cx);
        enter(k);
        WEFT_YIELD(&k->f, k->rc);
        leave(k);
        if (safe && !stress_planted)
            weft_shield_exit(cx);
        if (k->rc == -ECANCELED)
            WEFT_RETURN(&k->f, 1);
    }
    WEFT_RETURN(&k->f, 0);
    WEFT_END(&k->f);
}

struct locks_root {
    weft_frame f;
    struct locks *l;
    struct scen_chaos chaos;
    weft_outcome out;
    uint32_t i;
    weft_poll rc;
};

static weft_poll locks_root_poll(weft_cx *cx, void *p)
{
    struct locks_root *r = p;
    struct locks *l = r->l;
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->rc, scen_chaos_poll(cx, &r->chaos));
    for (r->i = 0; r->i < l->n; r->i++) {
        WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &l->h[r->i], &r->out));
        scen_count_outcome(&r->out);
        scen_check_join("locks", l->seed, r->i, l->kind[r->i] == L_MUTEX_SAFE, (int)r->rc,
                   atomic_load(&l->drops[r->i]));
        if (r->out.status == 0 && r->out.value < 0)
            lk_violation(l, "lock wait failed", r->i);
    }
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

/* The instance: the shared state and the root's frame. */
struct locks_inst {
    struct locks l;
    struct locks_root root;
    uint32_t need[NP];
};

static void *locks_make(uint64_t seed, unsigned threads)
{
    (void)threads;
    struct locks_inst *x = scen_zalloc(sizeof *x);
    struct locks *l = &x->l;
    uint64_t rng = seed;
    l->seed = seed;
    l->n = 2 + stress_below(&rng, NP - 1);
    l->permits = 1 + stress_below(&rng, 3);
    weft_mutex_init(&l->mx);
    weft_rwlock_init(&l->rw);
    weft_semaphore_init(&l->sem, l->permits);
    for (uint32_t i = 0; i < l->n; i++) {
        l->kind[i] = (uint8_t)stress_below(&rng, L_KINDS);
        l->iters[i] = 1 + stress_below(&rng, 24);
        x->need[i] = 1 + stress_below(&rng, l->permits);
    }
    x->root = (struct locks_root){ .l = l, .chaos = { .h = l->h, .n = l->n, .rounds = 40,
                                                      .odds = 6, .rng = stress_rng(&rng) } };
    return x;
}

static int locks_start(void *st, weft_runtime *rt)
{
    struct locks_inst *x = st;
    struct locks *l = &x->l;
    for (uint32_t i = 0; i < l->n; i++) {
        struct locker k = { .l = l, .id = i, .need = x->need[i] };
        weft_task_desc d = { .poll = locker_poll, .frame = &k, .frame_size = sizeof k,
                             .drop = locker_drop, .name = "locker" };
        if (l->kind[i] == L_MUTEX_SAFE)
            d.flags = WEFT_TASK_CANCEL_SAFE;
        int rc = weft_spawn(rt, &d, &l->h[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* The root drives (aborts, joins): shielded, so only the lockers are cancelled. */
static weft_task_desc locks_root(void *st)
{
    struct locks_inst *x = st;
    weft_task_desc d = WEFT_TASK(locks_root_poll, &x->root);
    d.flags = WEFT_TASK_SHIELDED;
    d.name = "locks-root";
    return d;
}

static void locks_check(void *st, int rc, const weft_outcome *root, unsigned injected)
{
    (void)root;
    (void)injected;
    struct locks_inst *x = st;
    struct locks *l = &x->l;
    if (rc < 0)
        return;
    if (weft_mutex_destroy(&l->mx) != 0)
        stress_violation("locks", l->seed, "mutex still held or waited for");
    if (weft_rwlock_destroy(&l->rw) != 0)
        stress_violation("locks", l->seed, "rwlock still held or waited for");
    if (weft_semaphore_destroy(&l->sem) != 0
        || weft_semaphore_available(&l->sem) != (int64_t)l->permits)
        stress_violation("locks", l->seed, "semaphore: %lld of %u permits free",
                         (long long)weft_semaphore_available(&l->sem), l->permits);
    if (l->a != l->b)
        stress_violation("locks", l->seed, "two-step state torn: %llu vs %llu",
                         (unsigned long long)l->a, (unsigned long long)l->b);
    stress_count(&stress_totals.tasks, l->n + 1);
}

const stress_parts scen_locks_parts = {
    locks_make, locks_start, locks_root, locks_check, free, 0,
    "C6: a cancel-safe mutex holder's two-step update without its shield",
};

void scen_run_locks(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    scen_run_parts(&scen_locks_parts, "locks", rt, seed, threads);
}
