/*
 * runtime/blocking.c - the blocking pool (weft/blocking.h): plain threads
 * that run jobs a worker must not, the job leaf tasks await, spawn_blocking
 * and getaddrinfo on top of it, and the pool's part of runtime shutdown.
 *
 * A job (weft__job, the private face of weft_blocking) moves through these
 * states (`state`, atomic):
 *
 *   IDLE ──poll──▶ QUEUED ──a pool thread takes it──▶ RUNNING ──fn returned──▶
 *                    │                                  DONE ──poll──▶ IDLE
 *                    ├─withdrawn──▶ IDLE               (yields fn's result)
 *                    └─pool shuts down──▶ DONE (result -ECANCELED)
 *
 * Rules:
 *   1. The queue, the thread counts and every move out of QUEUED happen under
 *      the pool lock, so a withdrawal and a pool thread never both claim a
 *      queued job.
 *   2. RUNNING -> DONE is the running thread's alone. It copies the waker
 *      first and publishes DONE with release; after that store it never
 *      touches the job again, because the task may then reuse or free it.
 *   3. Withdrawing a RUNNING job answers WEFT_WITHDRAW_PENDING and sets
 *      `stop`: the harness keeps the task (and its frame, which fn may be
 *      using) alive and unresumed until DONE wakes it, as for an io_uring
 *      operation whose cancel is in flight (reactor/op.h, rule 5).
 *   4. The waker taken at submission is consumed once: woken at DONE, or
 *      dropped when the job is withdrawn from the queue or never queued.
 *   5. Threads are joinable. One that leaves puts itself on `exited`; whoever
 *      next starts a thread, or shutdown, joins it, so no thread outlives the
 *      pool and no exited thread keeps its stack.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "runtime/alloc.h"
#include "runtime/blocking.h"
#include "runtime/rt.h"
#include "runtime/task.h"
#include "weft/blocking.h"

#define IDLE_EXIT_S 10      /* a thread with nothing to do for this long exits */

enum job_state { JOB_IDLE, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

typedef struct weft__job {
    _Atomic uint32_t state;
    _Atomic bool stop;              /* withdrawn while running (rule 3) */
    int result;
    weft_blocking_fn fn;
    void *arg;
    /* At a tear-down, frees what a finished job produced and nobody will
     * read (NULL: nothing to free). */
    void (*release)(struct weft__job *j);
    weft_waker waker;
    struct weft__job *next, *prev;  /* the pool queue (rule 1) */
    struct weft__blocking_pool *pool;
    /* weft_getaddrinfo's arguments and result. */
    const char *node, *service;
    const struct addrinfo *hints;
    struct addrinfo *res;
} weft__job;

_Static_assert(sizeof(weft__job) <= sizeof(weft_blocking), "weft_blocking must hold a weft__job");
_Static_assert(_Alignof(weft__job) <= _Alignof(weft_blocking), "weft_blocking alignment");

static inline weft__job *job_of(weft_blocking *b) { return (weft__job *)(void *)b; }

struct pool_thread {
    pthread_t tid;
    struct pool_thread *next;
    struct weft__blocking_pool *pool;
};

typedef struct weft__blocking_pool {
    pthread_mutex_t lock;
    pthread_cond_t work;            /* idle threads wait here */
    pthread_cond_t quiet;           /* shutdown waits here for the last thread */
    weft__job *head, *tail;
    uint32_t max;                   /* most threads at once */
    uint32_t nthreads;              /* started and not yet exited */
    uint32_t nidle;                 /* waiting for work and not yet claimed */
    uint32_t nnotify;               /* claimed idle threads yet to wake */
    _Atomic bool closing;           /* no new jobs; running ones should stop */
    struct pool_thread *exited;     /* to be joined (rule 5) */
} weft__blocking_pool;

/* The job the calling pool thread is running, for weft_blocking_should_stop. */
static __thread weft__job *current_job;

/* ---- the queue, under the pool lock -------------------------------------------- */

static void push(weft__blocking_pool *p, weft__job *j)
{
    j->next = NULL;
    j->prev = p->tail;
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    atomic_store_explicit(&j->state, JOB_QUEUED, memory_order_relaxed);
}

static void unlink_job(weft__blocking_pool *p, weft__job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        p->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        p->tail = j->prev;
}

/* ---- pool threads ---------------------------------------------------------------- */

static void join_all(struct pool_thread *t)
{
    while (t) {
        struct pool_thread *next = t->next;
        pthread_join(t->tid, NULL);
        weft__free(t, sizeof *t);
        t = next;
    }
}

static struct timespec idle_deadline(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += IDLE_EXIT_S;
    return ts;
}

/* Under the lock: the next job to run, waiting for one if need be; NULL when
 * the thread should exit (idle too long, or the pool is closing). */
static weft__job *next_job(weft__blocking_pool *p)
{
    for (;;) {
        weft__job *j = p->head;
        if (j) {
            unlink_job(p, j);
            atomic_store_explicit(&j->state, JOB_RUNNING, memory_order_relaxed);
            return j;
        }
        if (atomic_load_explicit(&p->closing, memory_order_relaxed))
            return NULL;
        p->nidle++;
        struct timespec until = idle_deadline();
        int rc = 0;
        while (p->nnotify == 0 && rc != ETIMEDOUT
               && !atomic_load_explicit(&p->closing, memory_order_relaxed))
            rc = pthread_cond_timedwait(&p->work, &p->lock, &until);
        if (p->nnotify > 0) {
            p->nnotify--;       /* the submitter already took us off nidle */
            continue;
        }
        p->nidle--;
        if (rc == ETIMEDOUT && !p->head)
            return NULL;
    }
}

static void run_job(weft__job *j)
{
    current_job = j;
    int result = j->fn(j->arg);
    current_job = NULL;
    j->result = result;
    weft_waker waker = j->waker;
    /* Release: the result is visible before DONE; from here on the job is
     * the task's (rule 2). */
    atomic_store_explicit(&j->state, JOB_DONE, memory_order_release);
    weft_waker_wake(&waker);
}

static void *pool_main(void *arg)
{
    struct pool_thread *self = arg;
    weft__blocking_pool *p = self->pool;
    pthread_mutex_lock(&p->lock);
    weft__job *j;
    while ((j = next_job(p)) != NULL) {
        pthread_mutex_unlock(&p->lock);
        run_job(j);
        pthread_mutex_lock(&p->lock);
    }
    p->nthreads--;
    self->next = p->exited;
    p->exited = self;
    if (p->nthreads == 0)
        pthread_cond_broadcast(&p->quiet);
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Under the lock. */
static int start_thread(weft__blocking_pool *p)
{
    struct pool_thread *t = weft__alloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    t->pool = p;
    int rc = pthread_create(&t->tid, NULL, pool_main, t);
    if (rc) {
        weft__free(t, sizeof *t);
        return -rc;
    }
    pthread_setname_np(t->tid, "weft-blocking");
    p->nthreads++;
    return 0;
}

/* Queue j and make sure a thread will take it. Fails only when the pool is
 * closing, or when no thread runs and none could be started. */
static int submit(weft__blocking_pool *p, weft__job *j)
{
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    if (atomic_load_explicit(&p->closing, memory_order_relaxed)) {
        pthread_mutex_unlock(&p->lock);
        return -ESHUTDOWN;
    }
    push(p, j);
    if (p->nidle > 0) {
        p->nidle--;
        p->nnotify++;
        pthread_cond_signal(&p->work);
    } else if (p->nthreads < p->max && (rc = start_thread(p)) != 0) {
        if (p->nthreads > 0) {
            rc = 0;         /* a busy thread will take it */
        } else {
            unlink_job(p, j);
            atomic_store_explicit(&j->state, JOB_IDLE, memory_order_relaxed);
        }
    }
    struct pool_thread *exited = p->exited;
    p->exited = NULL;
    pthread_mutex_unlock(&p->lock);
    join_all(exited);
    return rc;
}

/* ---- the pool's life ------------------------------------------------------------------ */

static weft__blocking_pool *pool_new(uint32_t max)
{
    weft__blocking_pool *p = weft__calloc(sizeof *p);
    if (!p)
        return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->work, &attr);
    pthread_condattr_destroy(&attr);
    pthread_cond_init(&p->quiet, NULL);
    pthread_mutex_init(&p->lock, NULL);
    p->max = max;
    return p;
}

static void pool_destroy(weft__blocking_pool *p)
{
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->quiet);
    weft__free(p, sizeof *p);
}

/* The runtime's pool, created on first use; NULL when memory is short. */
static weft__blocking_pool *get_pool(weft_runtime *rt)
{
    /* Acquire: pairs with the CAS below, so the pool is seen initialised. */
    weft__blocking_pool *p = atomic_load_explicit(&rt->blocking, memory_order_acquire);
    if (p)
        return p;
    weft__blocking_pool *fresh = pool_new(rt->blocking_max);
    if (!fresh)
        return NULL;
    if (atomic_compare_exchange_strong_explicit(&rt->blocking, &p, fresh,
                                                memory_order_acq_rel, memory_order_acquire))
        return fresh;
    pool_destroy(fresh);        /* another task created it first */
    return p;
}

/* Queued jobs did not happen: each yields -ECANCELED. Workers have stopped,
 * so the wake only queues the task for the shutdown sweep. */
static void cancel_queued(weft__blocking_pool *p)
{
    weft__job *j;
    while ((j = p->head) != NULL) {
        unlink_job(p, j);
        j->result = -ECANCELED;
        weft_waker waker = j->waker;
        atomic_store_explicit(&j->state, JOB_DONE, memory_order_release);
        weft_waker_wake(&waker);
    }
}

void weft__blocking_shutdown(weft_runtime *rt)
{
    weft__blocking_pool *p = atomic_load_explicit(&rt->blocking, memory_order_acquire);
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    atomic_store_explicit(&p->closing, true, memory_order_relaxed);
    cancel_queued(p);
    pthread_cond_broadcast(&p->work);
    while (p->nthreads > 0)
        pthread_cond_wait(&p->quiet, &p->lock);
    struct pool_thread *exited = p->exited;
    p->exited = NULL;
    pthread_mutex_unlock(&p->lock);
    join_all(exited);
}

void weft__blocking_free(weft_runtime *rt)
{
    weft__blocking_pool *p = atomic_load_explicit(&rt->blocking, memory_order_acquire);
    if (p)
        pool_destroy(p);
}

/* ---- the leaf ------------------------------------------------------------------------- */

/* The job finished before the withdrawal. At a tear-down nobody will read its
 * result, so whatever it produced is released here. */
static weft_withdraw settled(weft_cx *cx, weft__job *j)
{
    if (!weft_cx_is_teardown(cx))
        return WEFT_WITHDRAW_RACED;
    if (j->release)
        j->release(j);
    atomic_store_explicit(&j->state, JOB_IDLE, memory_order_relaxed);
    return WEFT_WITHDRAWN;
}

static weft_withdraw job_withdraw(weft_cx *cx, void *leaf)
{
    weft__job *j = leaf;
    uint32_t state = atomic_load_explicit(&j->state, memory_order_acquire);
    if (state == JOB_IDLE)
        return WEFT_WITHDRAWN;
    if (state == JOB_DONE)
        return settled(cx, j);
    weft__blocking_pool *p = j->pool;
    pthread_mutex_lock(&p->lock);
    state = atomic_load_explicit(&j->state, memory_order_acquire);
    if (state == JOB_QUEUED) {
        unlink_job(p, j);
        atomic_store_explicit(&j->state, JOB_IDLE, memory_order_relaxed);
    } else if (state == JOB_RUNNING) {
        atomic_store_explicit(&j->stop, true, memory_order_relaxed);
    }
    pthread_mutex_unlock(&p->lock);
    switch (state) {
    case JOB_QUEUED:
        weft_waker_drop(&j->waker);     /* it did not happen (rule 4) */
        return WEFT_WITHDRAWN;
    case JOB_RUNNING:
        return WEFT_WITHDRAW_PENDING;   /* DONE wakes the task (rule 3) */
    default:
        return settled(cx, j);
    }
}

static weft_poll start_job(weft_cx *cx, weft__job *j, weft_blocking_fn fn, void *arg,
                           void (*release)(weft__job *))
{
    weft__blocking_pool *p = get_pool(cx->task->rt);
    if (!p)
        return -ENOMEM;
    j->fn = fn;
    j->arg = arg;
    j->release = release;
    j->pool = p;
    atomic_store_explicit(&j->stop, false, memory_order_relaxed);
    j->waker = weft_cx_waker(cx);
    int rc = submit(p, j);
    if (rc) {
        weft_waker_drop(&j->waker);
        return rc;
    }
    weft_cx_suspend(cx, j, job_withdraw);
    return WEFT_PENDING;
}

static weft_poll job_poll(weft_cx *cx, weft__job *j, weft_blocking_fn fn, void *arg,
                          void (*release)(weft__job *))
{
    switch (atomic_load_explicit(&j->state, memory_order_acquire)) {
    case JOB_IDLE:
        return start_job(cx, j, fn, arg, release);
    case JOB_DONE:
        if (!weft_cx_coop(cx))
            return WEFT_PENDING;
        atomic_store_explicit(&j->state, JOB_IDLE, memory_order_relaxed);
        return j->result;
    default:
        weft_cx_suspend(cx, j, job_withdraw);
        return WEFT_PENDING;
    }
}

weft_poll weft_blocking_run(weft_cx *cx, weft_blocking *job, weft_blocking_fn fn, void *arg)
{
    if (!cx || !job || !fn)
        return -EINVAL;
    return job_poll(cx, job_of(job), fn, arg, NULL);
}

bool weft__blocking_in_own_job(weft_runtime *rt)
{
    /* A pool thread runs user code only inside fn, under current_job. */
    weft__job *j = current_job;
    return j && j->pool == atomic_load_explicit(&rt->blocking, memory_order_acquire);
}

bool weft_blocking_should_stop(void)
{
    weft__job *j = current_job;
    return j && (atomic_load_explicit(&j->stop, memory_order_relaxed)
                 || atomic_load_explicit(&j->pool->closing, memory_order_relaxed));
}

/* ---- spawn_blocking ------------------------------------------------------------------- */

struct blocking_task {
    weft_frame f;
    weft_blocking job;
    weft_blocking_fn fn;
    void *arg;
    weft_poll rc;
};

static weft_poll blocking_task_poll(weft_cx *cx, void *frame)
{
    struct blocking_task *b = frame;
    WEFT_BEGIN(&b->f);
    WEFT_AWAIT(&b->f, b->rc, weft_blocking_run(cx, &b->job, b->fn, b->arg));
    WEFT_RETURN(&b->f, b->rc);
    WEFT_END(&b->f);
}

int weft_spawn_blocking(weft_runtime *rt, weft_blocking_fn fn, void *arg, weft_join *join)
{
    if (!rt || !fn || !join)
        return -EINVAL;
    struct blocking_task b = { .job = WEFT_BLOCKING_INIT, .fn = fn, .arg = arg };
    weft_task_desc d = WEFT_TASK(blocking_task_poll, &b);
    d.name = "weft_spawn_blocking";
    return weft_spawn(rt, &d, join);
}

/* ---- getaddrinfo ---------------------------------------------------------------------- */

static int gai_errno(int rc, int sys_errno)
{
    switch (rc) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return -ENOENT;
    case EAI_AGAIN: return -EAGAIN;
    case EAI_FAIL: return -EIO;
    case EAI_MEMORY: return -ENOMEM;
    case EAI_FAMILY: return -EAFNOSUPPORT;
    case EAI_SOCKTYPE: return -ESOCKTNOSUPPORT;
    case EAI_SERVICE: return -EPROTONOSUPPORT;
    case EAI_BADFLAGS: return -EINVAL;
    case EAI_OVERFLOW: return -EOVERFLOW;
    case EAI_SYSTEM: return sys_errno > 0 ? -sys_errno : -EIO;
    default: return -EIO;
    }
}

static int gai_run(void *arg)
{
    weft__job *j = arg;
    j->res = NULL;
    int rc = getaddrinfo(j->node, j->service, j->hints, &j->res);
    if (rc == 0)
        return 0;
    j->res = NULL;
    return gai_errno(rc, errno);
}

static void gai_release(weft__job *j)
{
    if (j->res)
        freeaddrinfo(j->res);
    j->res = NULL;
}

weft_poll weft_getaddrinfo(weft_cx *cx, weft_blocking *job, const char *node,
                           const char *service, const struct addrinfo *hints,
                           struct addrinfo **res)
{
    if (!cx || !job || !res || (!node && !service))
        return -EINVAL;
    weft__job *j = job_of(job);
    if (atomic_load_explicit(&j->state, memory_order_acquire) == JOB_IDLE) {
        j->node = node;
        j->service = service;
        j->hints = hints;
        j->res = NULL;
    }
    weft_poll r = job_poll(cx, j, gai_run, j, gai_release);
    if (r == 0) {
        *res = j->res;      /* the caller's now */
        j->res = NULL;
    }
    return r;
}

void weft__blocking_stats(weft_runtime *rt, unsigned *threads, unsigned *idle, size_t *queued)
{
    *threads = *idle = 0;
    *queued = 0;
    weft__blocking_pool *p = atomic_load_explicit(&rt->blocking, memory_order_acquire);
    if (!p)
        return;     /* not created yet: no job ever ran */
    pthread_mutex_lock(&p->lock);
    *threads = p->nthreads;
    *idle = p->nidle;
    for (const weft__job *j = p->head; j; j = j->next)
        (*queued)++;
    pthread_mutex_unlock(&p->lock);
}
