/*
 * runtime/sim_io.c - simulated descriptors (weft/sim.h): socket pairs,
 * pipes and listeners whose operations the simulator completes itself, one
 * completion per scheduling step, so that a program doing I/O replays bit
 * for bit and a timer, a cancellation or another task can come between any
 * two completions.
 *
 * The descriptors are process-wide (a table behind one lock), numbered from
 * WEFT_SIM_FD_BASE, far above any real descriptor; their operations are the
 * simulated runtime's (sim.io, in submission order). An operation does all
 * it does at the step that completes it: until then it has moved no byte,
 * which is what lets a withdrawal say "it did not happen".
 *
 * Invariants:
 *   1. Only the simulator's thread completes an operation, between steps,
 *      as the owner worker (weft__current_worker) would reap its CQE, and
 *      through weft__op_complete, so deadlines, hand-offs and the result a
 *      task sees follow the rules of reactor/op.h unchanged.
 *   2. An operation is a candidate (ready) when completing it now has a
 *      result other than "wait": bytes or room, an end of stream, an error,
 *      or a withdrawal (cancel_sent). A withdrawn operation that is also
 *      ready either happens or is cancelled, which a seeded coin decides:
 *      one that happened is reported, one cancelled moved nothing.
 *   3. Every other choice of a completion (a short transfer, the coin)
 *      comes from the run's seed and the number of completions before it,
 *      never from sim.rng, so a script (sim_trace.c), which replaces only
 *      the scheduling decisions, replays them too.
 *   4. A file is freed when its descriptor is closed and no operation holds
 *      it; a pair when both its files are gone and no backlog holds it.
 *      Closing an end ends the stream it writes (the peer reads 0 once it
 *      has drained what was sent) and fails the peer's writes (-EPIPE);
 *      operations still pending on a closed descriptor complete -EBADF.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "reactor/driver.h"
#include "runtime/rt.h"
#include "runtime/sim.h"

#define MAX_FDS 65536u
#define DEFAULT_CAPACITY 4096u
/* A transfer is cut short in one completion out of this many. */
#define SHORT_ONE_IN 4

typedef struct chan {           /* bytes written at one side */
    unsigned char *buf;
    size_t cap, len, head;
    bool eof;                   /* the writer is gone or shut down */
    bool reader_gone;           /* writes fail with -EPIPE */
} chan;

typedef struct pair {
    chan c[2];                  /* c[s]: written at side s, read at 1 - s */
    unsigned refs;              /* files and backlog entries */
} pair;

enum file_kind { F_SOCKET, F_PIPE_READ, F_PIPE_WRITE, F_LISTENER };

typedef struct file {
    uint8_t kind, side;
    bool open;                  /* its descriptor is still in the table */
    bool read_shut;
    unsigned refs;              /* the descriptor and pending operations */
    pair *p;                    /* socket, pipe */
    pair **backlog;             /* listener: connections not yet accepted */
    size_t nbacklog, backlog_cap;
} file;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static file **table;            /* by fd - WEFT_SIM_FD_BASE; grows */
static unsigned table_cap;
static unsigned nopen;
static uint64_t created;        /* descriptors ever made */

/* ---- files and pairs (invariant 4), under the lock ------------------------ */

static void pair_unref(pair *p)
{
    if (--p->refs > 0)
        return;
    free(p->c[0].buf);
    free(p->c[1].buf);
    free(p);
}

static pair *pair_new(size_t cap)
{
    pair *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    for (int s = 0; s < 2; s++) {
        p->c[s].cap = cap ? cap : DEFAULT_CAPACITY;
        p->c[s].buf = malloc(p->c[s].cap);
    }
    if (!p->c[0].buf || !p->c[1].buf) {
        p->refs = 1;
        pair_unref(p);
        return NULL;
    }
    return p;
}

/* The side s of p is gone: its stream ends, the other's has no reader. */
static void side_gone(pair *p, unsigned s)
{
    p->c[s].eof = true;
    p->c[1 - s].reader_gone = true;
}

static void file_unref(file *f)
{
    if (--f->refs > 0)
        return;
    if (f->p)
        pair_unref(f->p);
    free(f->backlog);
    free(f);
}

static int fd_index(int fd)
{
    if (fd < WEFT_SIM_FD_BASE || (unsigned)(fd - WEFT_SIM_FD_BASE) >= MAX_FDS)
        return -1;
    return fd - WEFT_SIM_FD_BASE;
}

/* The file behind descriptor index i, or NULL. */
static file *file_at(int i)
{
    return i >= 0 && (unsigned)i < table_cap ? table[i] : NULL;
}

static int table_grow(void)
{
    unsigned cap = table_cap ? table_cap * 2 : 64;
    if (table_cap == MAX_FDS)
        return -EMFILE;
    file **t = realloc(table, cap * sizeof *t);
    if (!t)
        return -ENOMEM;
    memset(t + table_cap, 0, (cap - table_cap) * sizeof *t);
    table = t;
    table_cap = cap;
    return 0;
}

/* A descriptor for a new file on p's side `side` (p may be NULL). */
static int file_install(uint8_t kind, pair *p, uint8_t side)
{
    unsigned i = 0;
    while (i < table_cap && table[i])
        i++;
    int rc = i == table_cap ? table_grow() : 0;
    if (rc)
        return rc;
    file *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    *f = (file){ .kind = kind, .side = side, .open = true, .refs = 1, .p = p };
    if (p)
        p->refs++;
    table[i] = f;
    nopen++;
    created++;
    return WEFT_SIM_FD_BASE + (int)i;
}

static void close_locked(int i)
{
    file *f = table[i];
    table[i] = NULL;
    nopen--;
    f->open = false;
    if (f->p)
        side_gone(f->p, f->side);
    for (size_t k = 0; k < f->nbacklog; k++) {      /* never accepted */
        side_gone(f->backlog[k], 1);
        pair_unref(f->backlog[k]);
    }
    f->nbacklog = 0;
    file_unref(f);
}

/* ---- the public descriptors ------------------------------------------------ */

static int make_pair(int fds[2], size_t capacity, uint8_t k0, uint8_t k1)
{
    if (!fds)
        return -EINVAL;
    pthread_mutex_lock(&lock);
    int rc = -ENOMEM;
    pair *p = pair_new(capacity);
    if (p) {
        p->refs = 1;        /* ours until both files hold it */
        int a = file_install(k0, p, 0);
        int b = a < 0 ? a : file_install(k1, p, 1);
        if (b < 0 && a >= 0)
            close_locked(fd_index(a));
        if (b >= 0) {
            fds[0] = a;
            fds[1] = b;
        }
        rc = b < 0 ? b : 0;
        pair_unref(p);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

int weft_sim_socketpair(int fds[2], size_t capacity)
{
    return make_pair(fds, capacity, F_SOCKET, F_SOCKET);
}

int weft_sim_pipe(int fds[2], size_t capacity)
{
    return make_pair(fds, capacity, F_PIPE_READ, F_PIPE_WRITE);
}

int weft_sim_listen(int *fd)
{
    if (!fd)
        return -EINVAL;
    pthread_mutex_lock(&lock);
    int rc = file_install(F_LISTENER, NULL, 0);
    pthread_mutex_unlock(&lock);
    if (rc < 0)
        return rc;
    *fd = rc;
    return 0;
}

static int backlog_push(file *l, pair *p)
{
    if (l->nbacklog == l->backlog_cap) {
        size_t cap = l->backlog_cap ? l->backlog_cap * 2 : 8;
        pair **b = realloc(l->backlog, cap * sizeof *b);
        if (!b)
            return -ENOMEM;
        l->backlog = b;
        l->backlog_cap = cap;
    }
    l->backlog[l->nbacklog++] = p;
    p->refs++;
    return 0;
}

int weft_sim_connect(int listen_fd, int *fd, size_t capacity)
{
    if (!fd)
        return -EINVAL;
    pthread_mutex_lock(&lock);
    int i = fd_index(listen_fd), rc;
    file *l = file_at(i);
    pair *p = NULL;
    if (!l)
        rc = -EBADF;
    else if (l->kind != F_LISTENER)
        rc = -ENOTSOCK;
    else if ((p = pair_new(capacity)) == NULL)
        rc = -ENOMEM;
    else if ((p->refs = 1, rc = file_install(F_SOCKET, p, 0)) >= 0) {
        int err = backlog_push(l, p);
        if (err) {
            close_locked(fd_index(rc));
            rc = err;
        }
    }
    if (p)
        pair_unref(p);
    pthread_mutex_unlock(&lock);
    if (rc < 0)
        return rc;
    *fd = rc;
    return 0;
}

int weft_sim_close(int fd)
{
    int i = fd_index(fd);
    if (i < 0)
        return fd < 0 ? -EBADF : close(fd) == 0 ? 0 : -errno;
    pthread_mutex_lock(&lock);
    int rc = file_at(i) ? 0 : -EBADF;
    if (rc == 0)
        close_locked(i);
    pthread_mutex_unlock(&lock);
    return rc;
}

int weft_sim_open_fds(void)
{
    pthread_mutex_lock(&lock);
    int n = (int)nopen;
    pthread_mutex_unlock(&lock);
    return n;
}

uint64_t weft__sim_io_created(void)
{
    pthread_mutex_lock(&lock);
    uint64_t n = created;
    pthread_mutex_unlock(&lock);
    return n;
}

int weft__sim_io_close_all(void)
{
    pthread_mutex_lock(&lock);
    int n = (int)nopen;
    for (unsigned i = 0; i < table_cap && nopen; i++)
        if (table[i])
            close_locked((int)i);
    pthread_mutex_unlock(&lock);
    return n;
}

/* ---- operations: what completing one now would do --------------------------- */

static size_t chan_room(const chan *c)
{
    return c->cap - c->len;
}

static void chan_put(chan *c, const unsigned char *src, size_t n)
{
    for (size_t k = 0; k < n; k++)
        c->buf[(c->head + c->len + k) % c->cap] = src[k];
    c->len += n;
}

static void chan_get(chan *c, unsigned char *dst, size_t n)
{
    for (size_t k = 0; k < n; k++)
        dst[k] = c->buf[(c->head + k) % c->cap];
    c->head = (c->head + n) % c->cap;
    c->len -= n;
}

static bool reads(const file *f)
{
    return f->kind == F_SOCKET || f->kind == F_PIPE_READ;
}

static bool writes(const file *f)
{
    return f->kind == F_SOCKET || f->kind == F_PIPE_WRITE;
}

/* Not a result: the operation cannot complete yet. */
#define WAIT INT32_MIN

/* The result completing `op` on f would give now, moving at most `limit`
 * bytes, and, with `apply`, its effect. */
static int32_t perform(file *f, weft__op *op, size_t limit, bool apply)
{
    const struct io_uring_sqe *q = &op->sqe;
    void *buf = (void *)(uintptr_t)q->addr;
    size_t len = q->len < limit ? q->len : limit;
    len = len < INT32_MAX ? len : INT32_MAX;    /* a result is an int32 */
    if (!f || !f->open)
        return -EBADF;
    switch (q->opcode) {
    case IORING_OP_CLOSE:
    case IORING_OP_SHUTDOWN:
        return 0;           /* their effect is sim_io_effect's */
    case IORING_OP_ACCEPT:
        if (f->kind != F_LISTENER)
            return -EINVAL;
        return f->nbacklog ? 0 : WAIT;
    case IORING_OP_RECV:
    case IORING_OP_READ: {
        if (!reads(f))
            return f->kind == F_LISTENER ? -ENOTCONN : -EBADF;
        chan *c = &f->p->c[1 - f->side];
        size_t n = c->len < len ? c->len : len;
        if (n == 0)
            return len == 0 || c->eof || f->read_shut ? 0 : WAIT;
        if (apply)
            chan_get(c, buf, n);
        return (int32_t)n;
    }
    case IORING_OP_SEND:
    case IORING_OP_WRITE: {
        if (!writes(f))
            return f->kind == F_LISTENER ? -ENOTCONN : -EBADF;
        chan *c = &f->p->c[f->side];
        if (c->reader_gone || c->eof)
            return -EPIPE;
        size_t n = chan_room(c) < len ? chan_room(c) : len;
        if (n == 0 && len > 0)
            return WAIT;
        if (apply)
            chan_put(c, buf, n);
        return (int32_t)n;
    }
    }
    return -EOPNOTSUPP;
}

/* Close, shutdown and accept act on the table or the pair, not on bytes. */
static int32_t sim_io_effect(file *f, weft__op *op, int32_t res)
{
    const struct io_uring_sqe *q = &op->sqe;
    if (res < 0)
        return res;
    switch (q->opcode) {
    case IORING_OP_CLOSE:
        close_locked(fd_index(q->fd));
        return 0;
    case IORING_OP_SHUTDOWN:
        if (f->kind != F_SOCKET)
            return -ENOTSOCK;
        if (q->len != SHUT_RD)
            f->p->c[f->side].eof = true;
        if (q->len != SHUT_WR)
            f->read_shut = true;
        return 0;
    case IORING_OP_ACCEPT: {
        pair *p = f->backlog[0];
        memmove(f->backlog, f->backlog + 1, --f->nbacklog * sizeof *f->backlog);
        int fd = file_install(F_SOCKET, p, 1);
        if (fd < 0)
            side_gone(p, 1);
        pair_unref(p);      /* the backlog's reference; the file took its own */
        if (fd >= 0 && q->addr2)
            *(socklen_t *)(uintptr_t)q->addr2 = 0;  /* a peer without an address */
        return fd;
    }
    }
    return res;
}

/* ---- the simulated runtime's operations -------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* Invariant 3: the seeded coin of the next completion. */
static uint64_t coin(const weft__sim *s)
{
    return mix(s->io_salt ^ mix(s->io_done));
}

bool weft__sim_io_submit(weft__driver *d, weft__op *op)
{
    if (!d->clock || fd_index(op->sqe.fd) < 0)
        return false;
    weft__sim *s = &d->rt->sim;
    if (s->nio == s->io_cap) {
        uint32_t cap = s->io_cap ? s->io_cap * 2 : 16;
        weft__sim_iop *q = realloc(s->io, cap * sizeof *q);
        if (!q) {
            weft__op_complete(d, op, -ENOMEM);  /* it did not happen */
            return true;
        }
        s->io = q;
        s->io_cap = cap;
    }
    pthread_mutex_lock(&lock);
    file *f = file_at(fd_index(op->sqe.fd));
    if (f)
        f->refs++;
    pthread_mutex_unlock(&lock);
    /* PCT draws a priority per operation, as per task; uniform draws
     * nothing, so programs without simulated I/O keep their schedules. */
    uint64_t prio = s->pct_depth ? WEFT_SIM_MAX_PCT_DEPTH + 1 + (weft__sim_next(s) >> 2) : 0;
    s->io[s->nio++] = (weft__sim_iop){ .op = op, .file = f, .worker = d->index, .prio = prio };
    op->where = WEFT__OP_SIM;
    return true;
}

static bool iop_ready(const weft__sim_iop *e)
{
    if (e->op->cancel_sent)
        return true;
    pthread_mutex_lock(&lock);
    bool ready = perform(e->file, e->op, SIZE_MAX, false) != WAIT;
    pthread_mutex_unlock(&lock);
    return ready;
}

uint32_t weft__sim_io_nready(weft_runtime *rt)
{
    uint32_t n = 0;
    for (uint32_t j = 0; j < rt->sim.nio; j++)
        n += iop_ready(&rt->sim.io[j]);
    return n;
}

/* The index in sim.io of the nth ready operation. */
static uint32_t nth_ready(weft_runtime *rt, uint32_t nth)
{
    for (uint32_t j = 0; j < rt->sim.nio; j++)
        if (iop_ready(&rt->sim.io[j]) && nth-- == 0)
            return j;
    return UINT32_MAX;
}

int weft__sim_io_pct_best(weft_runtime *rt, uint64_t *prio)
{
    int best = -1;
    uint32_t nth = 0;
    for (uint32_t j = 0; j < rt->sim.nio; j++) {
        const weft__sim_iop *e = &rt->sim.io[j];
        if (!iop_ready(e))
            continue;
        if (best < 0 || e->prio > *prio) {
            best = (int)nth;
            *prio = e->prio;
        }
        nth++;
    }
    return best;
}

uint32_t weft__sim_io_live(const weft_runtime *rt, uint32_t worker)
{
    uint32_t n = 0;
    for (uint32_t j = 0; j < rt->sim.nio; j++)
        n += rt->sim.io[j].worker == worker;
    return n;
}

/* Invariants 2 and 3: the result of the operation at sim.io[j], its bytes
 * moved (or not) and its file released. */
static int32_t settle(weft__sim *s, const weft__sim_iop *e, bool drain)
{
    uint64_t c = coin(s);
    s->io_done++;
    pthread_mutex_lock(&lock);
    int32_t res = perform(e->file, e->op, SIZE_MAX, false);
    bool withdrawn = e->op->cancel_sent || (drain && weft__op_defs[e->op->kind].withdrawable);
    if (withdrawn && (res == WAIT || drain || c & 1)) {
        res = -ECANCELED;       /* it did not happen */
    } else {
        size_t limit = SIZE_MAX;
        if (res > 1 && (c >> 8) % SHORT_ONE_IN == 0)
            limit = 1 + (size_t)((c >> 16) % (uint64_t)(res - 1));
        res = sim_io_effect(e->file, e->op, perform(e->file, e->op, limit, true));
    }
    if (e->file)
        file_unref(e->file);
    pthread_mutex_unlock(&lock);
    return res;
}

/* "recv s1 = 4": descriptors by their index, an accepted one too. */
static void op_name(const weft__op *op, int32_t res, char *buf, size_t n)
{
    const char *name = weft__op_defs[op->kind].name;
    int i = fd_index(op->sqe.fd), r = fd_index(res);
    if (weft__op_defs[op->kind].yields_fd && r >= 0)
        snprintf(buf, n, "%s s%d = s%d", name, i, r);
    else
        snprintf(buf, n, "%s s%d = %d", name, i, (int)res);
}

/* Complete sim.io[j] as its owner would reap it (invariant 1). */
static int32_t complete_at(weft_runtime *rt, uint32_t j, bool drain, weft__sim_event *ev)
{
    weft__sim *s = &rt->sim;
    weft__sim_iop e = s->io[j];
    memmove(&s->io[j], &s->io[j + 1], (s->nio - j - 1) * sizeof *s->io);
    s->nio--;
    int32_t res = settle(s, &e, drain);
    if (ev)
        op_name(e.op, res, ev->name, sizeof ev->name);
    weft_worker *prev = weft__current_worker;
    weft__current_worker = &rt->workers[e.worker];
    weft__op_complete(&rt->workers[e.worker].driver, e.op, res);
    weft__current_worker = prev;
    return res;
}

int32_t weft__sim_io_run(weft_runtime *rt, uint32_t nth, weft__sim_event *ev)
{
    uint32_t j = nth_ready(rt, nth);
    if (j == UINT32_MAX)
        return -ENOENT;
    ev->worker = WEFT__SIM_IO_STEP;
    ev->polled = false;
    return complete_at(rt, j, false, ev);
}

void weft__sim_io_drain(weft_runtime *rt)
{
    while (rt->sim.nio > 0)
        (void)complete_at(rt, 0, true, NULL);
}

void weft__sim_io_free(weft__sim *s)
{
    free(s->io);
    s->io = NULL;
    s->nio = s->io_cap = 0;
}
