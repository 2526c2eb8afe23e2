/*
 * examples/seed/seed.c - the seed scenario (see seed.h): the handler, the
 * server that drives it under timeouts and aborts, the chaos task that cancels
 * tokens, and the check of the file afterwards.
 *
 * The counter is guarded by a weft_mutex: a timed-out cooperative handler
 * keeps running (timeouts stop the waiting, not the work), so the next
 * request may start before it ends.
 */
#include "seed.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS 1000000ull
#define REQUEST_TIMEOUT_NS (1 * MS)

struct seed_state {
    int fd;
    enum seed_variant variant;
    weft_mutex lock;
    uint64_t counter;                   /* guarded by lock */
    weft_token *_Atomic current;        /* token of the request in progress */
    _Atomic bool done;
    _Atomic uint64_t token_cancels;
    pthread_mutex_t lost_lock;
    seed_report *report;
};

/* ---- the handler -------------------------------------------------------------- */

struct handler {
    weft_frame f;
    struct seed_state *st;
    uint64_t request;
    uint32_t nap_ms;        /* some requests are slow, so timeouts fire */
    uint32_t len;
    weft_sleep nap;
    weft_mutex_waiter wait;
    weft_io io;
    uint64_t next;
    char line[24];
    bool locked, wrote, recorded;
    weft_poll rc;
};

static weft_poll handler_poll(weft_cx *cx, void *p)
{
    struct handler *h = p;
    struct seed_state *st = h->st;
    WEFT_BEGIN(&h->f);
    if (h->nap_ms) {
        WEFT_AWAIT(&h->f, h->rc, weft_sleep_for(cx, &h->nap, h->nap_ms * MS));
        if (h->rc < 0)
            WEFT_RETURN(&h->f, h->rc);
    }
    WEFT_AWAIT(&h->f, h->rc, weft_mutex_lock(cx, &st->lock, &h->wait));
    if (h->rc < 0)
        WEFT_RETURN(&h->f, h->rc);      /* never got the lock: nothing happened */
    h->locked = true;
    if (st->variant == SEED_SHIELDED)
        weft_shield_enter(cx);
    h->next = st->counter + 1;
    h->len = (uint32_t)snprintf(h->line, sizeof h->line, "%llu\n", (unsigned long long)h->next);
    WEFT_AWAIT(&h->f, h->rc, weft_write(cx, &h->io, st->fd, h->line, h->len, -1));
    h->wrote = h->rc == (weft_poll)h->len;
    if (h->wrote) {
        WEFT_AWAIT(&h->f, h->rc, weft_fsync(cx, &h->io, st->fd, true));
        /* The number is in the file whether or not the fsync was cancelled:
         * -ECANCELED here says "not synced", not "not written". */
        st->counter = h->next;
        h->recorded = true;
    }
    if (st->variant == SEED_SHIELDED)
        weft_shield_exit(cx);
    h->locked = false;
    weft_mutex_unlock(&st->lock);
    WEFT_RETURN(&h->f, h->rc < 0 ? h->rc : 0);
    WEFT_END(&h->f);
}

/* Set by the trace hook just before a torn-down task's drop hook runs, on the
 * same thread. */
static __thread weft_trace_event last_teardown;

void seed_trace(const weft_trace_event *ev, void *arg)
{
    (void)arg;
    if (ev->kind == WEFT_TRACE_TORN_DOWN)
        last_teardown = *ev;
}

static void record_lost_update(struct handler *h)
{
    seed_report *r = h->st->report;
    pthread_mutex_lock(&h->st->lost_lock);
    if (r->nlost < sizeof r->lost / sizeof r->lost[0])
        r->lost[r->nlost] = (seed_lost_update){ h->request, h->next, last_teardown.source,
                                                last_teardown.site };
    r->nlost++;
    pthread_mutex_unlock(&h->st->lost_lock);
}

static void handler_drop(void *p)
{
    struct handler *h = p;
    if (h->locked)
        weft_mutex_unlock(&h->st->lock);    /* torn down holding it */
    if (h->wrote && !h->recorded)
        record_lost_update(h);
}

/* ---- the server and the chaos task ----------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void retract_token(struct seed_state *st)
{
    weft_token *old = atomic_exchange(&st->current, NULL);
    if (old)
        weft_token_release(old);
}

struct server {
    weft_frame f;
    struct seed_state *st;
    uint64_t i, n, rng, chance;
    weft_token *tok;
    weft_join h;
    weft_join_timeout jt;
    weft_outcome out;
    weft_sleep pause;
    weft_poll rc;
};

/* One request's handler as a task, cancel-safe unless the variant is the
 * cooperative one; *hf is its initial frame. */
static void handler_task(struct seed_state *st, uint64_t request, uint32_t nap_ms,
                         struct handler *hf, weft_task_desc *d)
{
    *hf = (struct handler){ .st = st, .request = request, .nap_ms = nap_ms,
                            .nap = WEFT_SLEEP_INIT };
    *d = (weft_task_desc){ .poll = handler_poll, .frame = hf, .frame_size = sizeof *hf,
                           .drop = handler_drop, .name = "seed-handler" };
    if (st->variant != SEED_COOPERATIVE)
        d->flags = WEFT_TASK_CANCEL_SAFE;
}

static int spawn_handler(weft_cx *cx, struct server *s)
{
    struct handler hf;
    weft_task_desc d;
    handler_task(s->st, s->i, rng_next(&s->rng) % 64 == 0 ? 2 : 0, &hf, &d);
    d.tokens = &s->tok;
    d.ntokens = 1;
    int rc = weft_spawn(weft_cx_runtime(cx), &d, &s->h);
    if (rc == 0)    /* the chaos task may cancel it from now on */
        weft_token_release(atomic_exchange(&s->st->current, weft_token_ref(s->tok)));
    return rc;
}

static weft_poll server_poll(weft_cx *cx, void *p)
{
    struct server *s = p;
    seed_report *r = s->st->report;
    WEFT_BEGIN(&s->f);
    for (s->i = 0; s->i < s->n; s->i++) {
        if ((s->rc = weft_token_new(&s->tok)) != 0 || (s->rc = spawn_handler(cx, s)) != 0)
            WEFT_RETURN(&s->f, s->rc);
        /* One request in eight is aborted by the server: half at once, half
         * after letting the handler run a little. (No `switch` here: an
         * await must not sit inside one.) */
        s->chance = rng_next(&s->rng) % 16;
        if (s->chance == 1)
            WEFT_YIELD(&s->f, s->rc);
        if (s->chance <= 1) {
            weft_abort(&s->h);
            r->aborts++;
        }
        WEFT_AWAIT(&s->f, s->rc,
                   weft_join_await_timeout(cx, &s->jt, &s->h, &s->out, REQUEST_TIMEOUT_NS));
        r->timeouts += s->rc == -ETIMEDOUT;
        retract_token(s->st);
        weft_token_release(s->tok);
    }
    /* Timed-out cooperative handlers may still run: wait until only the
     * server and the chaos task are left. */
    while (weft_runtime_live_tasks(weft_cx_runtime(cx)) > 2)
        WEFT_AWAIT(&s->f, s->rc, weft_sleep_for(cx, &s->pause, MS));
    atomic_store(&s->st->done, true);
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

struct chaos {
    weft_frame f;
    struct seed_state *st;
    uint64_t rng;
    uint32_t j, k;
    weft_poll rc;
};

static weft_poll chaos_poll(weft_cx *cx, void *p)
{
    struct chaos *c = p;
    WEFT_BEGIN(&c->f);
    while (!atomic_load(&c->st->done)) {
        c->k = (uint32_t)(rng_next(&c->rng) % 256);
        for (c->j = 0; c->j < c->k; c->j++)
            WEFT_YIELD(&c->f, c->rc);
        if (rng_next(&c->rng) % 4 != 0)
            continue;
        weft_token *tok = atomic_exchange(&c->st->current, NULL);
        if (tok) {
            weft_token_cancel(tok);
            weft_token_release(tok);
            atomic_fetch_add(&c->st->token_cancels, 1);
        }
    }
    WEFT_RETURN(&c->f, 0);
    WEFT_END(&c->f);
}

/* ---- the check ------------------------------------------------------------------- */

static int check_file(int fd, seed_report *r)
{
    off_t size = lseek(fd, 0, SEEK_END);
    char *text = malloc((size_t)size + 1);
    if (!text || pread(fd, text, (size_t)size, 0) != size) {
        free(text);
        return -EIO;
    }
    text[size] = '\0';
    uint64_t prev = 0;
    unsigned char *seen = calloc(r->requests + 2, 1);
    for (char *line = text, *end; *line; line = end + 1) {
        uint64_t v = strtoull(line, &end, 10);
        if (*end != '\n')
            break;
        r->written++;
        r->out_of_order += v != prev + 1;
        if (v < r->requests + 2 && seen && seen[v]++)
            r->duplicates++;
        prev = v;
    }
    free(seen);
    free(text);
    return 0;
}

/* An unlinked scratch file in dir, opened for appending (and pread). */
static int open_scratch(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/weft-seed-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0)
        return -errno;
    unlink(path);
    if (fcntl(fd, F_SETFL, O_APPEND) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int seed_run(weft_runtime *rt, enum seed_variant variant, uint64_t requests, uint64_t rng_seed,
             const char *dir, seed_report *report)
{
    if (!rt || !report || !dir)
        return -EINVAL;
    memset(report, 0, sizeof *report);
    report->requests = requests;
    struct seed_state st = { .variant = variant, .report = report };
    pthread_mutex_init(&st.lost_lock, NULL);
    weft_mutex_init(&st.lock);
    st.fd = open_scratch(dir);
    if (st.fd < 0)
        return st.fd;
    struct server s = { .st = &st, .n = requests, .rng = rng_seed | 1,
                        .jt = WEFT_JOIN_TIMEOUT_INIT, .pause = WEFT_SLEEP_INIT };
    struct chaos c = { .st = &st, .rng = (rng_seed * 0x9E3779B97F4A7C15ULL) | 1 };
    weft_join hc;
    weft_outcome out;
    int rc = weft_spawn(rt, &WEFT_TASK(chaos_poll, &c), &hc);
    if (rc == 0) {
        rc = weft_block_on(rt, &WEFT_TASK(server_poll, &s), &out);
        rc = rc ? rc : (int)out.value;
        atomic_store(&st.done, true);
        weft_join_wait(&hc, &out);
    }
    report->counter = st.counter;
    report->token_cancels = atomic_load(&st.token_cancels);
    if (rc == 0)
        rc = check_file(st.fd, report);
    close(st.fd);
    weft_mutex_destroy(&st.lock);
    pthread_mutex_destroy(&st.lost_lock);
    return rc;
}

bool seed_report_ok(const seed_report *r)
{
    return r->duplicates == 0 && r->out_of_order == 0 && r->counter == r->written
        && r->nlost == 0;
}

/* ---- one request on its own (seed.h) ----------------------------------------------- */

struct seed_request {
    struct seed_state st;
    seed_report report;         /* st.report: handler_drop records lost updates */
    struct handler init;        /* the handler's initial frame */
    uint32_t nap_ms;
};

int seed_request_new(enum seed_variant variant, uint32_t nap_ms, const char *dir,
                     seed_request **out)
{
    if (!dir || !out)
        return -EINVAL;
    seed_request *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->st.variant = variant;
    r->st.report = &r->report;
    r->nap_ms = nap_ms;
    r->st.fd = open_scratch(dir);
    if (r->st.fd < 0) {
        int err = r->st.fd;
        free(r);
        return err;
    }
    pthread_mutex_init(&r->st.lost_lock, NULL);
    weft_mutex_init(&r->st.lock);
    r->report.requests = 1;
    *out = r;
    return 0;
}

void seed_request_task(seed_request *r, weft_task_desc *desc)
{
    handler_task(&r->st, 1, r->nap_ms, &r->init, desc);
}

int seed_request_reset(seed_request *r)
{
    if (ftruncate(r->st.fd, 0) != 0)
        return -errno;
    r->st.counter = 0;
    memset(&r->report, 0, sizeof r->report);
    r->report.requests = 1;
    return 0;
}

int seed_request_report(seed_request *r, seed_report *report)
{
    *report = r->report;
    report->written = report->duplicates = report->out_of_order = 0;
    report->counter = r->st.counter;
    return check_file(r->st.fd, report);
}

bool seed_request_locked(seed_request *r)
{
    return weft_mutex_is_locked(&r->st.lock);
}

void seed_request_free(seed_request *r)
{
    if (!r)
        return;
    close(r->st.fd);
    weft_mutex_destroy(&r->st.lock);
    pthread_mutex_destroy(&r->st.lost_lock);
    free(r);
}
