/*
 * tests/examples/readme_tasks.c - the task bodies README.md shows, written
 * here as they appear there (same awaits, in the same order), and their
 * sweep cases (sweep.h). Where the README shows only a line or two
 * (select, join timeouts, groups), the smallest task around those lines;
 * what is the README's is marked "README". The blocking job is in
 * readme_blocking.c.
 *
 * Each case names the invariant its check adds to the harness's (fds, drop
 * hook once, LeakSanitizer).
 *
 * Two snippets once failed the sweep as README.md wrote them, and README.md
 * now carries the fixes: "A first task" gives up the children it will not
 * join (a parent cancelled at a join used to keep looping and return
 * holding handles nobody could join, detach or abort any more), and
 * "Tokens and sleeping" releases the request token (every request leaked
 * it, and through it kept the server's token alive).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.h>

#include "cases.h"
#include "sweep.h"

#define MS 1000000ull

/* ==== "A first task" ======================================================== */

/* README */
struct child { weft_frame f; int64_t id, spins; weft_poll rc; };

static weft_poll child_poll(weft_cx *cx, void *frame)
{
    struct child *c = frame;
    WEFT_BEGIN(&c->f);
    for (c->spins = 0; c->spins < 100; c->spins++) {
        WEFT_YIELD(&c->f, c->rc);            /* an await point */
        if (c->rc == -ECANCELED)             /* cancellation is an ordinary error */
            WEFT_RETURN(&c->f, -1);
    }
    WEFT_RETURN(&c->f, c->id * c->id);
    WEFT_END(&c->f);
}

struct parent { weft_frame f; weft_join kids[10]; weft_outcome out; int64_t i, sum; weft_poll rc; };

/* A parent that stops early must not strand its children: a handle nobody
 * joins keeps its task's memory, and only its holder can abort it. */
static void give_up_children(struct parent *p, int64_t from, int64_t to)
{
    for (int64_t i = from; i < to; i++) {
        weft_abort(&p->kids[i]);
        weft_detach(&p->kids[i]);
    }
}

static weft_poll parent_poll(weft_cx *cx, void *frame)
{
    struct parent *p = frame;
    WEFT_BEGIN(&p->f);
    for (p->i = 0; p->i < 10; p->i++) {
        struct child c = { .id = p->i };     /* copied into the new task */
        int rc = weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(child_poll, &c), &p->kids[p->i]);
        if (rc < 0) {                        /* give up the ones already spawned */
            give_up_children(p, 0, p->i);
            WEFT_RETURN(&p->f, rc);
        }
    }
    weft_abort(&p->kids[3]);                 /* child 3 sees -ECANCELED at its next await */
    for (p->i = 0; p->i < 10; p->i++) {
        WEFT_AWAIT(&p->f, p->rc, weft_join_await(cx, &p->kids[p->i], &p->out));
        if (p->rc == -ECANCELED) {           /* we were cancelled, not the child */
            give_up_children(p, p->i, 10);
            WEFT_RETURN(&p->f, -ECANCELED);
        }
        if (p->out.value > 0)
            p->sum += p->out.value;
    }
    WEFT_RETURN(&p->f, p->sum);
    WEFT_END(&p->f);
}
/* end README */

/* The child alone: 100 yields, then id * id; -1 once it sees -ECANCELED. */
static int first_child_check(void *arg, unsigned k, bool cancelled, int rc,
                             const weft_outcome *out)
{
    (void)arg;
    (void)k;
    if (rc != 0)
        return sweep_fail("weft_sim_run: %s", weft_strerror(rc));
    int64_t want = cancelled ? -1 : 7 * 7;
    if (out->status != 0 || out->value != want)
        return sweep_fail("status %d value %lld, expected 0 and %lld", out->status,
                          (long long)out->value, (long long)want);
    return 0;
}

int sweep_readme_first_child(void)
{
    static struct child c0 = { .id = 7 };
    sweep_case c = { .program = "README: A first task", .task = "child",
                     .root = WEFT_TASK(child_poll, &c0), .check = first_child_check };
    return sweep_case_run(&c);
}

/*
 * The parent: every handle it holds at the end must be empty - joined, or
 * given up - since a handle left in a freed frame is a task nobody can join,
 * detach or abort; its sum must be that of the children it joined, each
 * counted once (a cancelled join yields -ECANCELED and leaves out as the
 * previous join left it); it returns the sum, or -ECANCELED once cancelled.
 * Uncancelled: 285 - 9 = 276.
 */
int sweep_check_parent(const weft_join *kids, int64_t sum, int rc, bool cancelled,
                       const weft_outcome *out)
{
    int bad = 0;
    if (rc != 0)
        return sweep_fail("weft_sim_run: %s", weft_strerror(rc));
    int64_t joined_sum = 0;
    unsigned unjoined = 0;
    char names[64] = "";
    for (int i = 0; i < 10; i++) {
        if (kids[i].weft_task) {
            unjoined++;
            snprintf(names + strlen(names), sizeof names - strlen(names), " %d", i);
        } else if (i != 3) {
            joined_sum += i * i;
        }
    }
    if (unjoined)
        bad |= sweep_fail("returned holding %u unjoined handles (kids%s): nobody can join, "
                          "detach or abort those tasks any more", unjoined, names);
    bool gave_up = cancelled && out->value == -ECANCELED;  /* the rest were detached */
    if (!gave_up && sum != joined_sum)
        bad |= sweep_fail("sum %lld, but the children it joined add up to %lld",
                          (long long)sum, (long long)joined_sum);
    if (out->status != 0 || (out->value != sum && !gave_up))
        bad |= sweep_fail("outcome status %d value %lld, frame's sum %lld", out->status,
                          (long long)out->value, (long long)sum);
    if (!cancelled && sum != 276)
        bad |= sweep_fail("uncancelled sum %lld, expected 276", (long long)sum);
    return bad;
}

static int first_parent_check(void *arg, unsigned k, bool cancelled, int rc,
                              const weft_outcome *out)
{
    (void)arg;
    (void)k;
    const struct parent *p = sweep_final_frame();
    if (!p)
        return sweep_fail("no final frame");
    return sweep_check_parent(p->kids, p->sum, rc, cancelled, out);
}

int sweep_readme_first_parent(void)
{
    static struct parent p0;
    sweep_case c = { .program = "README: A first task", .task = "parent",
                     .root = WEFT_TASK(parent_poll, &p0), .check = first_parent_check };
    return sweep_case_run(&c);
}

/* ==== "Network and file I/O": the connection handler ========================== */

/* README */
struct conn { weft_frame f; weft_io io; weft_xfer x; int fd; char buf[4096]; weft_poll n; };

static weft_poll conn_poll(weft_cx *cx, void *p)
{
    struct conn *c = p;
    WEFT_BEGIN(&c->f);
    for (;;) {
        weft_io_timeout(&c->io, 30 * 1000000000ull);      /* idle limit */
        WEFT_AWAIT(&c->f, c->n, weft_recv(cx, &c->io, c->fd, c->buf, sizeof c->buf, 0));
        if (c->n <= 0)
            break;                       /* peer closed, -ETIMEDOUT, -ECANCELED, ... */
        WEFT_AWAIT(&c->f, c->n, weft_send_all(cx, &c->x, c->fd, c->buf, (size_t)c->n));
        if (c->n < 0)
            break;
    }
    WEFT_AWAIT(&c->f, c->n, weft_close(cx, &c->io, c->fd));
    WEFT_END(&c->f);
}
/* end README */

#define CONN_BYTES SWEEP_PEER_MAX   /* three recvs of up to 4 KiB, then EOF */

static struct sweep_peer readme_peer;
static struct conn conn0;

static void readme_conn_reset(void *arg, weft_task_desc *root)
{
    (void)arg;
    (void)root;
    sweep_peer_open(&readme_peer, CONN_BYTES, true);
    conn0 = (struct conn){ .io = WEFT_IO_INIT, .x = WEFT_XFER_INIT, .fd = readme_peer.server };
}

static int readme_conn_check(void *arg, unsigned k, bool cancelled, int rc,
                             const weft_outcome *out)
{
    (void)arg;
    (void)k;
    size_t echoed;
    int bad = sweep_peer_close(&readme_peer, "the handler", &echoed);
    if (rc != 0)
        return bad | sweep_fail("weft_sim_run: %s", weft_strerror(rc));
    if (out->status != 0)
        bad |= sweep_fail("outcome status %d", out->status);
    if (!cancelled && echoed != CONN_BYTES)
        bad |= sweep_fail("uncancelled, it echoed %zu of %d bytes", echoed, CONN_BYTES);
    return bad;
}

int sweep_readme_conn(void)
{
    sweep_case c = { .program = "README: Network and file I/O", .task = "conn handler",
                     .root = WEFT_TASK(conn_poll, &conn0), .reset = readme_conn_reset,
                     .check = readme_conn_check };
    return sweep_case_run(&c);
}

/* ==== "Tokens and sleeping": a handler bound to a request token ================ */

/*
 * The README's lines run from a server task: make a request token under the
 * server's, spawn the handler (the README's conn handler) bound to it, and
 * when "the client went away" (one await later) cancel it; then join the
 * handler (detaching it if the server itself is cancelled meanwhile).
 */
struct tok_server {
    weft_frame f;
    weft_token *server_token;
    weft_token *req;
    weft_join h;
    weft_outcome out;
    struct conn frame;
    weft_poll rc;
};

#define handler_poll conn_poll

static weft_poll tok_server_poll(weft_cx *cx, void *p)
{
    struct tok_server *s = p;
    weft_runtime *rt = weft_cx_runtime(cx);
    WEFT_BEGIN(&s->f);
    {
        /* README (with s-> for the server's frame) */
        weft_token *req;                                 /* one per request */
        weft_token_child(s->server_token, &req);
        weft_task_desc d = WEFT_TASK(handler_poll, &s->frame);
        d.tokens = &req;
        d.ntokens = 1;
        weft_spawn(rt, &d, &s->h);
        /* end README */
        s->req = req;
    }
    /* ... the client went away: */
    WEFT_YIELD(&s->f, s->rc);
    weft_token_cancel(s->req);                          /* handler sees -ECANCELED */
    weft_token_release(s->req);                         /* the task holds its own reference */
    WEFT_AWAIT(&s->f, s->rc, weft_join_await(cx, &s->h, &s->out));
    if (s->rc == -ECANCELED)
        weft_detach(&s->h);     /* we stop waiting; the handler still ends (req) */
    WEFT_RETURN(&s->f, s->rc);
    WEFT_END(&s->f);
}

static struct sweep_peer tok_peer;
static struct tok_server tok0;
static weft_token *server_token;

static void tok_reset(void *arg, weft_task_desc *root)
{
    (void)arg;
    (void)root;
    /* The client stays connected: the handler echoes, then waits in recv. */
    sweep_peer_open(&tok_peer, 100, false);
    weft_token_new(&server_token);
    tok0 = (struct tok_server){ .server_token = server_token,
                                .frame = { .io = WEFT_IO_INIT, .x = WEFT_XFER_INIT,
                                           .fd = tok_peer.server } };
}

static int tok_check(void *arg, unsigned k, bool cancelled, int rc, const weft_outcome *out)
{
    (void)arg;
    (void)k;
    (void)cancelled;
    size_t echoed;
    int bad = sweep_peer_close(&tok_peer, "the handler", &echoed);
    weft_token_release(server_token);
    const struct tok_server *s = sweep_final_frame();
    if (rc != 0)
        return bad | sweep_fail("weft_sim_run: %s", weft_strerror(rc));
    if (!s)
        return bad | sweep_fail("no final frame");
    if (s->h.weft_task)
        bad |= sweep_fail("the server returned holding the handler's handle");
    if (out->value == 0 && s->out.cancel.source != WEFT_CANCEL_TOKEN)
        bad |= sweep_fail("the handler ended by %s, not by its token",
                          weft_cancel_source_name(s->out.cancel.source));
    return bad;
}

int sweep_readme_token(void)
{
    sweep_case c = { .program = "README: Tokens and sleeping", .task = "request token",
                     .root = WEFT_TASK(tok_server_poll, &tok0), .reset = tok_reset,
                     .check = tok_check };
    return sweep_case_run(&c);
}

/* ==== "Select, join timeouts and task groups": select ========================== */

/*
 * The branch function of weft/select.h's example (a recv, the stop token, a
 * 5 s idle nap), awaited with the README's WEFT_SELECT_AWAIT line, in an
 * echo loop. A recv that completed while another branch won still happened:
 * its bytes are echoed (weft_select_outcome).
 */
struct sconn {
    weft_frame f;
    weft_io io;
    weft_xfer x;
    int fd, closing;
    weft_token *stop;
    weft_token_wait stop_wait;
    weft_sleep nap;
    weft_selector sel;
    int64_t n;
    weft_poll rc;
    char buf[4096];
};

static weft_poll conn_branch(weft_cx *cx, void *frame, unsigned i)
{
    struct sconn *c = frame;
    switch (i) {
    case 0: return weft_recv(cx, &c->io, c->fd, c->buf, sizeof c->buf, 0);
    case 1: return weft_token_cancelled(cx, c->stop, &c->stop_wait);
    default: return weft_sleep_for(cx, &c->nap, 5000000000ull);
    }
}

static weft_poll sconn_poll(weft_cx *cx, void *p)
{
    struct sconn *f = p;
    WEFT_BEGIN(&f->f);
    for (;;) {
        WEFT_SELECT_AWAIT(&f->f, f->rc, &f->sel, 3, conn_branch, f);  /* README */
        if (!weft_select_outcome(&f->sel, 0, &f->n) || f->n <= 0)
            break;      /* no recv happened (stop, idle, cancelled), EOF or an error */
        f->x = (weft_xfer)WEFT_XFER_INIT;
        WEFT_AWAIT(&f->f, f->rc, weft_send_all(cx, &f->x, f->fd, f->buf, (size_t)f->n));
        if (f->rc < 0 || weft_select_winner(&f->sel) != 0)
            break;
    }
    f->closing = f->fd;
    f->fd = -1;
    WEFT_AWAIT(&f->f, f->rc, weft_close(cx, &f->io, f->closing));
    WEFT_RETURN(&f->f, 0);
    WEFT_END(&f->f);
}

static struct sweep_peer sel_peer;
static struct sconn sconn0;
static weft_token *sel_stop;

static void sel_reset(void *arg, weft_task_desc *root)
{
    (void)arg;
    (void)root;
    sweep_peer_open(&sel_peer, CONN_BYTES, true);
    weft_token_new(&sel_stop);
    sconn0 = (struct sconn){ .io = WEFT_IO_INIT, .x = WEFT_XFER_INIT, .fd = sel_peer.server,
                             .stop = sel_stop, .stop_wait = WEFT_TOKEN_WAIT_INIT,
                             .nap = WEFT_SLEEP_INIT, .sel = WEFT_SELECTOR_INIT };
}

static int sel_check(void *arg, unsigned k, bool cancelled, int rc, const weft_outcome *out)
{
    (void)arg;
    (void)k;
    size_t echoed;
    int bad = sweep_peer_close(&sel_peer, "the select loop", &echoed);
    weft_token_release(sel_stop);
    if (rc != 0)
        return bad | sweep_fail("weft_sim_run: %s", weft_strerror(rc));
    if (out->status != 0)
        bad |= sweep_fail("outcome status %d", out->status);
    if (!cancelled && echoed != CONN_BYTES)
        bad |= sweep_fail("uncancelled, it echoed %zu of %d bytes", echoed, CONN_BYTES);
    return bad;
}

int sweep_readme_select(void)
{
    sweep_case c = { .program = "README: Select", .task = "select loop",
                     .root = WEFT_TASK(sconn_poll, &sconn0), .reset = sel_reset,
                     .check = sel_check };
    return sweep_case_run(&c);
}

/* ==== join timeouts ================================================================ */

/* A child that naps 1 ms three times; returns the naps it completed. */
struct jchild { weft_frame f; uint32_t i; weft_sleep s; weft_poll rc; };

static atomic_uint jchild_drops, jchild_naps;

static weft_poll jchild_poll(weft_cx *cx, void *p)
{
    struct jchild *c = p;
    WEFT_BEGIN(&c->f);
    for (c->i = 0; c->i < 3; c->i++) {
        WEFT_AWAIT(&c->f, c->rc, weft_sleep_for(cx, &c->s, 1 * MS));
        if (c->rc < 0)
            WEFT_RETURN(&c->f, -1);
        atomic_fetch_add(&jchild_naps, 1);
    }
    WEFT_RETURN(&c->f, c->i);
    WEFT_END(&c->f);
}

static void jchild_drop(void *p)
{
    (void)p;
    atomic_fetch_add(&jchild_drops, 1);
}

/*
 * Spawn the child, wait for it at most 2 ms (README: weft_join_await_timeout),
 * then - if the wait timed out - nap 5 ms so a cooperative child, which keeps
 * running detached, can finish its work.
 */
struct jroot {
    weft_frame f;
    unsigned child_flags;
    weft_join h;
    weft_join_timeout jt;
    weft_outcome out;
    weft_sleep nap;
    weft_poll rc, waited;
};

static weft_poll jroot_poll(weft_cx *cx, void *p)
{
    struct jroot *f = p;
    WEFT_BEGIN(&f->f);
    {
        struct jchild c = { .s = WEFT_SLEEP_INIT };
        weft_task_desc d = WEFT_TASK(jchild_poll, &c);
        d.flags = f->child_flags;
        d.drop = jchild_drop;
        int rc = weft_spawn(weft_cx_runtime(cx), &d, &f->h);
        if (rc < 0)
            WEFT_RETURN(&f->f, rc);
    }
    f->jt = (weft_join_timeout)WEFT_JOIN_TIMEOUT_INIT;
    WEFT_AWAIT(&f->f, f->waited, weft_join_await_timeout(cx, &f->jt, &f->h, &f->out, 2 * MS));
    if (f->waited == -ECANCELED) {
        weft_detach(&f->h);     /* we were cancelled: stop waiting, keep nothing */
        WEFT_RETURN(&f->f, f->waited);
    }
    if (f->waited == -ETIMEDOUT)
        WEFT_AWAIT(&f->f, f->rc, weft_sleep_for(cx, &f->nap, 5 * MS));
    WEFT_RETURN(&f->f, f->waited);
    WEFT_END(&f->f);
}

static struct jroot jroot0;

static void jroot_reset(void *arg, weft_task_desc *root)
{
    (void)root;
    atomic_store(&jchild_drops, 0);
    atomic_store(&jchild_naps, 0);
    jroot0 = (struct jroot){ .child_flags = *(unsigned *)arg, .nap = WEFT_SLEEP_INIT };
}

/*
 * The child was dropped once and no handle is left. Joined: it returned 3.
 * Timed out: a cancel-safe child was stopped (fewer than 3 naps); a
 * cooperative one finished its 3 naps, unless the nap after the timeout was
 * itself cancelled (the run then ends at once and shutdown stops the child).
 */
static int jroot_check(void *arg, unsigned k, bool cancelled, int rc, const weft_outcome *out)
{
    (void)k;
    (void)cancelled;
    bool safe = *(unsigned *)arg & WEFT_TASK_CANCEL_SAFE;
    const struct jroot *f = sweep_final_frame();
    unsigned drops = atomic_load(&jchild_drops), naps = atomic_load(&jchild_naps);
    int bad = 0;
    if (drops != 1)
        bad |= sweep_fail("the child's drop hook ran %u times", drops);
    if (rc != 0)
        return bad | sweep_fail("weft_sim_run: %s", weft_strerror(rc));
    if (!f)
        return bad | sweep_fail("no final frame");
    if (f->h.weft_task)
        bad |= sweep_fail("the root returned holding the child's handle");
    if (f->waited == 0 && (f->out.status != 0 || f->out.value != 3))
        bad |= sweep_fail("joined: status %d value %lld", f->out.status,
                          (long long)f->out.value);
    if (f->waited == -ETIMEDOUT && safe && naps >= 3)
        bad |= sweep_fail("cancel-safe child timed out but kept working (%u naps)", naps);
    if (f->waited == -ETIMEDOUT && !safe && f->rc == 0 && naps != 3)
        bad |= sweep_fail("cooperative child stopped at %u naps after a join timeout", naps);
    if (out->status != 0 || out->value != f->waited)
        bad |= sweep_fail("root outcome %d/%lld", out->status, (long long)out->value);
    return bad;
}

int sweep_readme_join_timeout(bool safe_child)
{
    static unsigned flags;
    flags = safe_child ? WEFT_TASK_CANCEL_SAFE : 0;
    sweep_case c = { .program = "README: Join timeouts",
                     .task = safe_child ? "join, cancel-safe child" : "join, cooperative child",
                     .root = WEFT_TASK(jroot_poll, &jroot0), .reset = jroot_reset,
                     .check = jroot_check, .arg = &flags };
    return sweep_case_run(&c);
}

/* ==== task groups ================================================================= */

/* Child i naps i ms (one yield for child 0) and returns 1 << i. */
struct gchild { weft_frame f; uint32_t id; weft_sleep s; weft_poll rc; };

#define GCHILDREN 4
static atomic_uint gchild_drops;

static weft_poll gchild_poll(weft_cx *cx, void *p)
{
    struct gchild *c = p;
    WEFT_BEGIN(&c->f);
    if (c->id == 0)
        WEFT_YIELD(&c->f, c->rc);
    else
        WEFT_AWAIT(&c->f, c->rc, weft_sleep_for(cx, &c->s, c->id * MS));
    WEFT_RETURN(&c->f, c->rc < 0 ? c->rc : 1 << c->id);
    WEFT_END(&c->f);
}

static void gchild_drop(void *p)
{
    (void)p;
    atomic_fetch_add(&gchild_drops, 1);
}

/*
 * Spawn four children into a group and join them as they finish; end with
 * the README's WEFT_GROUP_AWAIT_SHUTDOWN (or, with all_wait, the README's
 * WEFT_GROUP_AWAIT_ALL first and then a drain of the outcomes), then free
 * the group. drops_at_end is how many children had been dropped when the
 * owner got past the group's end: all of them, or a child outlived its scope.
 */
struct gowner {
    weft_frame f;
    bool all_wait;
    weft_group *group;
    weft_outcome out;
    uint32_t i, joined;
    int64_t sum, joined_mask;
    unsigned drops_at_end;
    int free_rc;
    weft_poll rc, end_rc;
};

static weft_poll gowner_poll(weft_cx *cx, void *frame)
{
    struct gowner *f = frame;
    WEFT_BEGIN(&f->f);
    f->rc = weft_group_new(weft_cx_runtime(cx), NULL, &f->group);
    if (f->rc < 0)
        WEFT_RETURN(&f->f, f->rc);
    for (f->i = 0; f->i < GCHILDREN; f->i++) {
        struct gchild c = { .id = f->i, .s = WEFT_SLEEP_INIT };
        weft_task_desc d = WEFT_TASK(gchild_poll, &c);
        d.drop = gchild_drop;
        weft_group_spawn(f->group, &d);
    }
    if (f->all_wait) {
        WEFT_GROUP_AWAIT_ALL(&f->f, f->rc, f->group);       /* rc = -ECANCELED if the owner was */
        f->end_rc = f->rc;
        f->drops_at_end = atomic_load(&gchild_drops);
    }
    for (;;) {
        WEFT_AWAIT(&f->f, f->rc, weft_group_join_next(cx, f->group, &f->out));
        if (f->rc != 1)
            break;
        f->joined++;
        if (f->out.status == 0 && f->out.value > 0)
            f->sum += f->out.value;
    }
    if (!f->all_wait) {
        WEFT_GROUP_AWAIT_SHUTDOWN(&f->f, f->rc, f->group);  /* cancel, wait for all, close; rc = 0 */
        f->end_rc = f->rc;
        f->drops_at_end = atomic_load(&gchild_drops);
    }
    f->free_rc = weft_group_free(f->group);
    WEFT_RETURN(&f->f, f->sum);
    WEFT_END(&f->f);
}

static struct gowner gowner0;

static void gowner_reset(void *arg, weft_task_desc *root)
{
    (void)root;
    atomic_store(&gchild_drops, 0);
    gowner0 = (struct gowner){ .all_wait = *(bool *)arg };
}

static int gowner_check(void *arg, unsigned k, bool cancelled, int rc, const weft_outcome *out)
{
    (void)k;
    bool all_wait = *(bool *)arg;
    const struct gowner *f = sweep_final_frame();
    int bad = 0;
    if (atomic_load(&gchild_drops) != GCHILDREN)
        bad |= sweep_fail("%u of %d children dropped", atomic_load(&gchild_drops), GCHILDREN);
    if (rc != 0)
        return bad | sweep_fail("weft_sim_run: %s", weft_strerror(rc));
    if (!f)
        return bad | sweep_fail("no final frame");
    if (f->drops_at_end != GCHILDREN)
        bad |= sweep_fail("only %u of %d children had ended when the owner passed the "
                          "group's end: a child outlived its scope", f->drops_at_end, GCHILDREN);
    if (f->free_rc != 0)
        bad |= sweep_fail("weft_group_free: %s", weft_strerror(f->free_rc));
    if (!all_wait && f->end_rc != 0)
        bad |= sweep_fail("WEFT_GROUP_AWAIT_SHUTDOWN yielded %lld", (long long)f->end_rc);
    if (all_wait && f->end_rc != 0 && f->end_rc != -ECANCELED)
        bad |= sweep_fail("WEFT_GROUP_AWAIT_ALL yielded %lld", (long long)f->end_rc);
    if (out->status != 0 || out->value != f->sum)
        bad |= sweep_fail("owner outcome %d/%lld, sum %lld", out->status,
                          (long long)out->value, (long long)f->sum);
    if (!cancelled && (f->sum != (1 << GCHILDREN) - 1 || f->joined != GCHILDREN))
        bad |= sweep_fail("uncancelled: joined %u, sum %lld", f->joined, (long long)f->sum);
    return bad;
}

int sweep_readme_group(bool all_wait)
{
    static bool arg;
    arg = all_wait;
    sweep_case c = { .program = "README: Task groups",
                     .task = all_wait ? "owner, AWAIT_ALL" : "owner, AWAIT_SHUTDOWN",
                     .root = WEFT_TASK(gowner_poll, &gowner0), .reset = gowner_reset,
                     .check = gowner_check, .arg = &arg };
    return sweep_case_run(&c);
}
