/*
 * tools/weft-stress/scenarios_io.c - cancellation against I/O (weft/io.h):
 * loopback TCP, files and pipes, with aborts, deadlines, select losses and
 * tear-down landing on operations in flight.
 *
 *  io_frames    a writer sends length-prefixed frames with send_all and is
 *               aborted at random; a cooperative writer that was cut mid-frame
 *               finishes that frame inside a shield (the C3 repair) and stops.
 *               The reader races every recv against a timer in a select (C2).
 *               Invariants: the reader parses only whole, ordered, intact
 *               frames; bytes received == bytes the writer reports sent.
 *  io_fds       acceptors (cooperative and cancel-safe) aborted while a
 *               connector connects; file tasks that openat, write, read and
 *               close (close in a shield after a cancel), some torn down.
 *               Invariant: the process has the same open fds afterwards (C10).
 *  io_deadline  a reader with a fresh random deadline on every recv or read
 *               (socketpair or pipe) against a writer that naps and is
 *               aborted. Invariant: a timed-out read took nothing: bytes read
 *               == bytes written, in order.
 *
 * Every task's drop hook must run exactly once and every join must resolve
 * with a status the cancellation rules allow.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <weft/harness.h>

#include "scen_util.h"

#define MAX_FRAME (64 * 1024)
#define HDR 8

/* A connected loopback TCP pair (blocking sockets, as weft requires). */
static int tcp_pair(int fds[2])
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int l = weft_tcp_listen((struct sockaddr *)&a, sizeof a, 4);
    if (l < 0)
        return l;
    a.sin_port = htons((uint16_t)weft_local_port(l));
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = fds[0] < 0 || connect(fds[0], (struct sockaddr *)&a, sizeof a) < 0 ? -1 : 0;
    fds[1] = rc == 0 ? accept4(l, NULL, NULL, SOCK_CLOEXEC) : -1;
    close(l);
    if (fds[1] < 0) {
        if (fds[0] >= 0)
            close(fds[0]);
        return -1;
    }
    return 0;
}

static void check_fds(const char *sc, uint64_t seed, int before)
{
    int after = weft_harness_open_fds();
    if (after != before)
        stress_violation(sc, seed, "%d fds open before, %d after", before, after);
}

/* ==== io_frames ============================================================= */

struct frames {
    uint64_t seed;
    uint32_t nframes;
    int fd[2];                  /* [0] writer's, [1] reader's */
    size_t sent;                /* bytes the writer reports sent */
    size_t received;            /* bytes the reader got */
    _Atomic uint32_t drops[2];
    weft_join h[2];
};

struct fwriter {
    weft_frame f;
    struct frames *fr;
    uint64_t rng;
    uint32_t seq, len, off;
    weft_xfer x;
    weft_poll rc;
    uint8_t buf[HDR + MAX_FRAME];
};

static void fill_frame(struct fwriter *w)
{
    w->len = 1 + stress_below(&w->rng, MAX_FRAME);
    memcpy(w->buf, &w->len, 4);
    memcpy(w->buf + 4, &w->seq, 4);
    for (uint32_t i = 0; i < w->len; i++)
        w->buf[HDR + i] = (uint8_t)(w->seq * 31u + i);
}

static void fwriter_drop(void *p)
{
    struct fwriter *w = p;
    shutdown(w->fr->fd[0], SHUT_WR);   /* the reader's EOF, on every path */
    atomic_fetch_add(&w->fr->drops[0], 1);
}

static weft_poll fwriter_poll(weft_cx *cx, void *p)
{
    struct fwriter *w = p;
    struct frames *fr = w->fr;
    WEFT_BEGIN(&w->f);
    for (w->seq = 0; w->seq < fr->nframes; w->seq++) {
        fill_frame(w);
        w->x = (weft_xfer)WEFT_XFER_INIT;
        WEFT_AWAIT(&w->f, w->rc, weft_send_all(cx, &w->x, fr->fd[0], w->buf, HDR + w->len));
        fr->sent += w->x.done;
        scen_count_withdrawn(w->rc);
        if (w->rc == (weft_poll)(HDR + w->len))
            continue;
        if (w->rc != -ECANCELED || w->x.done == 0)
            WEFT_RETURN(&w->f, w->rc == -ECANCELED ? 1 : -1);
        /* Cut mid-frame: finish it where no cancel can reach, then stop. */
        weft_shield_enter(cx);
        w->off = (uint32_t)w->x.done;
        w->len = HDR + w->len - w->off;
        w->x = (weft_xfer)WEFT_XFER_INIT;
        WEFT_AWAIT(&w->f, w->rc, weft_send_all(cx, &w->x, fr->fd[0], w->buf + w->off, w->len));
        fr->sent += w->x.done;
        weft_shield_exit(cx);
        WEFT_RETURN(&w->f, w->rc == (weft_poll)w->len ? 2 : -2);
    }
    WEFT_RETURN(&w->f, 0);
    WEFT_END(&w->f);
}

struct freader {
    weft_frame f;
    struct frames *fr;
    uint64_t rng, nap_ns;
    size_t have;
    uint32_t next_seq;
    weft_io io;
    weft_sleep nap;
    weft_selector sel;
    weft_poll rc;
    uint8_t chunk[16384];
    uint8_t buf[HDR + MAX_FRAME + 16384];
};

static void freader_drop(void *p)
{
    struct freader *r = p;
    atomic_fetch_add(&r->fr->drops[1], 1);
}

/* Parse every whole frame in the buffer; false on a corrupt one. */
static bool parse(struct freader *r)
{
    for (;;) {
        uint32_t len, seq;
        if (r->have < HDR)
            return true;
        memcpy(&len, r->buf, 4);
        memcpy(&seq, r->buf + 4, 4);
        if (len == 0 || len > MAX_FRAME || seq != r->next_seq)
            return false;
        if (r->have < HDR + len)
            return true;
        for (uint32_t i = 0; i < len; i++)
            if (r->buf[HDR + i] != (uint8_t)(seq * 31u + i))
                return false;
        r->next_seq++;
        r->have -= HDR + len;
        memmove(r->buf, r->buf + HDR + len, r->have);
    }
}

static weft_poll recv_or_nap(weft_cx *cx, void *frame, unsigned i)
{
    struct freader *r = frame;
    if (i == 0)
        return weft_recv(cx, &r->io, r->fr->fd[1], r->chunk, sizeof r->chunk, 0);
    return weft_sleep_for(cx, &r->nap, r->nap_ns);
}

static weft_poll freader_poll(weft_cx *cx, void *p)
{
    struct freader *r = p;
    WEFT_BEGIN(&r->f);
    for (;;) {
        r->nap_ns = stress_below(&r->rng, 4) * 200000u + 1;
        WEFT_SELECT_AWAIT(&r->f, r->rc, &r->sel, 2, recv_or_nap, r);
        {
            int64_t n;
            if (!weft_select_outcome(&r->sel, 0, &n)) {
                scen_count_withdrawn(-ECANCELED);
                continue;   /* the timer won and the recv did not happen */
            }
            if (n <= 0)
                WEFT_RETURN(&r->f, n == 0 && r->have == 0 ? 0 : -1);
            memcpy(r->buf + r->have, r->chunk, (size_t)n);
            r->have += (size_t)n;
            r->fr->received += (size_t)n;
            if (!parse(r))
                WEFT_RETURN(&r->f, -2);
        }
    }
    WEFT_END(&r->f);
}

struct frames_root {
    weft_frame f;
    struct frames *fr;
    struct scen_chaos chaos;
    weft_outcome out[2];
    weft_poll rc;
};

static weft_poll frames_root_poll(weft_cx *cx, void *p)
{
    struct frames_root *r = p;
    WEFT_BEGIN(&r->f);
    WEFT_AWAIT(&r->f, r->rc, scen_chaos_poll(cx, &r->chaos));
    WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &r->fr->h[0], &r->out[0]));
    WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &r->fr->h[1], &r->out[1]));
    scen_count_outcome(&r->out[0]);
    scen_count_outcome(&r->out[1]);
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

static void check_frames(struct frames *fr, const struct frames_root *r)
{
    const weft_outcome *w = &r->out[0], *rd = &r->out[1];
    if (w->status != 0 || w->value < 0)
        stress_violation("io_frames", fr->seed, "writer: status %d value %lld", w->status,
                         (long long)w->value);
    if (rd->status != 0 || rd->value != 0)
        stress_violation("io_frames", fr->seed, "reader: status %d value %lld (-1: torn frame or "
                         "error at EOF, -2: corrupt frame) (C2/C3)", rd->status,
                         (long long)rd->value);
    if (fr->received != fr->sent)
        stress_violation("io_frames", fr->seed, "writer sent %zu bytes, reader got %zu",
                         fr->sent, fr->received);
    scen_check_drops("io_frames", fr->seed, fr->drops, 2);
}

void scen_run_io_frames(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    int before = weft_harness_open_fds();
    struct frames *fr = scen_zalloc(sizeof *fr);
    uint64_t rng = seed;
    fr->seed = seed;
    fr->nframes = 1 + stress_below(&rng, 40);
    if (tcp_pair(fr->fd) < 0)
        abort();
    struct fwriter *w = scen_zalloc(sizeof *w);
    struct freader *rd = scen_zalloc(sizeof *rd);
    *w = (struct fwriter){ .fr = fr, .rng = stress_rng(&rng) };
    *rd = (struct freader){ .fr = fr, .rng = stress_rng(&rng), .sel = WEFT_SELECTOR_INIT };
    weft_task_desc dw = { .poll = fwriter_poll, .frame = w, .frame_size = sizeof *w,
                          .drop = fwriter_drop, .name = "frame-writer" };
    weft_task_desc dr = { .poll = freader_poll, .frame = rd, .frame_size = sizeof *rd,
                          .drop = freader_drop, .name = "frame-reader" };
    if (weft_spawn(rt, &dw, &fr->h[0]) < 0 || weft_spawn(rt, &dr, &fr->h[1]) < 0)
        abort();
    free(w);
    free(rd);
    struct frames_root root = { .fr = fr, .chaos = { .h = fr->h, .n = 1, .rounds = 30,
                                                     .odds = 20, .rng = stress_rng(&rng) } };
    weft_outcome out;
    if (scen_block_on(rt, &WEFT_TASK(frames_root_poll, &root), &out, "io_frames", seed) < 0)
        return;
    check_frames(fr, &root);
    close(fr->fd[0]);
    close(fr->fd[1]);
    free(fr);
    check_fds("io_frames", seed, before);
    stress_count(&stress_totals.tasks, 3);
}

/* ==== io_fds ================================================================ */

#define NACC 6
#define NFILE 6
#define NCONN 8

enum fkind { F_ACCEPT, F_ACCEPT_SAFE, F_FILE, F_FILE_SAFE, F_KINDS };

struct fds {
    uint64_t seed;
    int listener;
    uint16_t port;
    char path[64];
    uint32_t n;
    uint8_t kind[NACC + NFILE];
    _Atomic uint32_t drops[NACC + NFILE];
    weft_join h[NACC + NFILE];
    int conn[NCONN];
    uint32_t nconn;
};

struct fd_task {
    weft_frame f;
    struct fds *s;
    uint32_t id;
    int fd;                     /* owned while >= 0; the drop hook closes it */
    int closing;                /* handed to weft_close, which owns it now */
    int64_t off;                /* where file_task writes */
    weft_io io;
    weft_poll rc, ignored;
    char data[256];
};

static void fd_task_drop(void *p)
{
    struct fd_task *t = p;
    if (t->fd >= 0)
        close(t->fd);
    atomic_fetch_add(&t->s->drops[t->id], 1);
}

/* Close what the task owns. weft_close is a release operation: it runs even
 * after a cancellation, which the next await would deliver. The frame gives
 * the fd up before the await (io.h), so a task torn down after the close
 * started is not closed twice by its drop hook. */
static weft_poll accept_task(weft_cx *cx, struct fd_task *t)
{
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->rc, weft_accept(cx, &t->io, t->s->listener, NULL, NULL, 0));
    scen_count_withdrawn(t->rc);
    if (t->rc < 0)
        WEFT_RETURN(&t->f, t->rc == -ECANCELED ? 1 : -1);
    t->fd = (int)t->rc;
    t->closing = t->fd;
    t->fd = -1;
    WEFT_AWAIT(&t->f, t->ignored, weft_close(cx, &t->io, t->closing));
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static weft_poll file_task(weft_cx *cx, struct fd_task *t)
{
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->rc, weft_openat(cx, &t->io, AT_FDCWD, t->s->path, O_RDWR, 0));
    if (t->rc < 0)
        WEFT_RETURN(&t->f, t->rc == -ECANCELED ? 1 : -1);
    t->fd = (int)t->rc;
    memset(t->data, (int)t->id, sizeof t->data);
    t->off = (int64_t)(t->id * sizeof t->data);
    /* One line per await: a multi-line one's resume point (__LINE__) differs
     * between gcc and clang, and with it the simulator's schedule hash. */
    WEFT_AWAIT(&t->f, t->rc, weft_write(cx, &t->io, t->fd, t->data, sizeof t->data, t->off));
    if (t->rc >= 0)
        WEFT_AWAIT(&t->f, t->rc, weft_read(cx, &t->io, t->fd, t->data, sizeof t->data, 0));
    if (t->rc >= 0)
        WEFT_AWAIT(&t->f, t->rc, weft_fsync(cx, &t->io, t->fd, true));
    t->closing = t->fd;
    t->fd = -1;
    WEFT_AWAIT(&t->f, t->ignored, weft_close(cx, &t->io, t->closing));
    WEFT_RETURN(&t->f, t->rc >= 0 || t->rc == -ECANCELED ? 0 : -1);
    WEFT_END(&t->f);
}

static weft_poll fd_task_poll(weft_cx *cx, void *p)
{
    struct fd_task *t = p;
    int kind = t->s->kind[t->id];
    if (kind == F_ACCEPT || kind == F_ACCEPT_SAFE)
        return accept_task(cx, t);
    return file_task(cx, t);
}

struct fds_root {
    weft_frame f;
    struct fds *s;
    struct scen_chaos chaos;
    uint32_t i;
    int fd;
    struct sockaddr_in addr;
    weft_io io;
    weft_outcome out;
    weft_poll rc;
};

/* Connect nconn clients through weft while the chaos phase aborts acceptors. */
static weft_poll connect_one(weft_cx *cx, struct fds_root *r)
{
    return weft_connect(cx, &r->io, r->fd, (struct sockaddr *)&r->addr, sizeof r->addr);
}

static weft_poll fds_root_poll(weft_cx *cx, void *p)
{
    struct fds_root *r = p;
    struct fds *s = r->s;
    WEFT_BEGIN(&r->f);
    for (r->i = 0; r->i < s->nconn; r->i++) {
        WEFT_AWAIT(&r->f, r->rc, weft_socket(cx, &r->io, AF_INET, SOCK_STREAM, 0));
        if (r->rc < 0)
            WEFT_RETURN(&r->f, -1);
        r->fd = s->conn[r->i] = (int)r->rc;
        WEFT_AWAIT(&r->f, r->rc, connect_one(cx, r));
        WEFT_YIELD(&r->f, r->rc);
    }
    WEFT_AWAIT(&r->f, r->rc, scen_chaos_poll(cx, &r->chaos));
    for (r->i = 0; r->i < s->n; r->i++)
        weft_abort(&s->h[r->i]);    /* acceptors left without a client */
    for (r->i = 0; r->i < s->n; r->i++) {
        WEFT_AWAIT(&r->f, r->rc, weft_join_await(cx, &s->h[r->i], &r->out));
        scen_count_outcome(&r->out);
        bool safe = s->kind[r->i] == F_ACCEPT_SAFE || s->kind[r->i] == F_FILE_SAFE;
        if (atomic_load(&s->drops[r->i]) != 1 || (r->rc != 0 && !(safe && r->rc == -ECANCELED))
            || (r->rc == 0 && r->out.value < 0))
            stress_violation("io_fds", s->seed, "task %u (kind %d): drops %u status %lld "
                             "value %lld", r->i, s->kind[r->i], atomic_load(&s->drops[r->i]),
                             (long long)r->rc, (long long)r->out.value);
    }
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

static int fds_setup(struct fds *s, uint64_t *rng)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    s->listener = weft_tcp_listen((struct sockaddr *)&a, sizeof a, NCONN);
    if (s->listener < 0)
        return -1;
    s->port = (uint16_t)weft_local_port(s->listener);
    snprintf(s->path, sizeof s->path, "/tmp/weft-stress-%d-%llx", (int)getpid(),
             (unsigned long long)s->seed);
    int fd = open(s->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    close(fd);
    s->n = 1 + stress_below(rng, NACC + NFILE);
    s->nconn = stress_below(rng, NCONN + 1);
    for (uint32_t i = 0; i < s->n; i++)
        s->kind[i] = (uint8_t)stress_below(rng, F_KINDS);
    return 0;
}

static int spawn_fd_task(weft_runtime *rt, struct fds *s, uint32_t i)
{
    struct fd_task t = { .s = s, .id = i, .fd = -1 };
    weft_task_desc d = { .poll = fd_task_poll, .frame = &t, .frame_size = sizeof t,
                         .drop = fd_task_drop, .name = "fd-task" };
    if (s->kind[i] == F_ACCEPT_SAFE || s->kind[i] == F_FILE_SAFE)
        d.flags = WEFT_TASK_CANCEL_SAFE;
    return weft_spawn(rt, &d, &s->h[i]);
}

void scen_run_io_fds(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    int before = weft_harness_open_fds();
    struct fds *s = scen_zalloc(sizeof *s);
    uint64_t rng = seed;
    s->seed = seed;
    if (fds_setup(s, &rng) < 0)
        abort();
    for (uint32_t i = 0; i < s->n; i++)
        if (spawn_fd_task(rt, s, i) < 0)
            abort();
    struct fds_root root = { .s = s, .chaos = { .h = s->h, .n = s->n, .rounds = 12, .odds = 2,
                                                .rng = stress_rng(&rng) } };
    root.addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(s->port),
                                      .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    weft_outcome out;
    if (scen_block_on(rt, &WEFT_TASK(fds_root_poll, &root), &out, "io_fds", seed) < 0)
        return;
    if (out.value != 0)
        stress_violation("io_fds", seed, "root: %lld", (long long)out.value);
    for (uint32_t i = 0; i < s->nconn; i++)
        close(s->conn[i]);
    close(s->listener);
    unlink(s->path);
    stress_count(&stress_totals.tasks, s->n + 1);
    free(s);
    check_fds("io_fds", seed, before);
}

/* ==== io_deadline =========================================================== */

#define DL_BYTES 8192

struct dl {
    uint64_t seed;
    bool pipe;
    int fd[2];                  /* [0] read end, [1] write end */
    size_t written, read;
    bool bad_order;
    _Atomic uint32_t drops[2];
};

struct dl_task {
    weft_frame f;
    struct dl *d;
    bool writer;
    uint64_t rng;
    size_t off;
    size_t n;               /* the writer's next chunk, drawn before its await */
    uint64_t nap_ns;        /* the writer's next nap, drawn before its await */
    weft_io io;
    weft_sleep nap;
    weft_poll rc;
    uint8_t buf[512];
};

static void dl_drop(void *p)
{
    struct dl_task *t = p;
    if (t->writer)
        close(t->d->fd[1]);     /* EOF for the reader on every path */
    atomic_fetch_add(&t->d->drops[t->writer], 1);
}

/* The next chunk: its size is a seeded choice, so it is drawn (and the
 * buffer filled) before the await, never in its operand, which is evaluated
 * at every poll while the write waits (weft/task.h, rule 4). */
static void dl_next_chunk(struct dl_task *t)
{
    t->n = 1 + stress_below(&t->rng, sizeof t->buf);
    if (t->n > DL_BYTES - t->off)
        t->n = DL_BYTES - t->off;
    for (size_t i = 0; i < t->n; i++)
        t->buf[i] = (uint8_t)(t->off + i);
}

static weft_poll dl_write(weft_cx *cx, struct dl_task *t)
{
    if (t->d->pipe)
        return weft_write(cx, &t->io, t->d->fd[1], t->buf, t->n, -1);
    return weft_send(cx, &t->io, t->d->fd[1], t->buf, t->n, MSG_NOSIGNAL);
}

static weft_poll dl_writer(weft_cx *cx, struct dl_task *t)
{
    WEFT_BEGIN(&t->f);
    while (t->off < DL_BYTES) {
        dl_next_chunk(t);
        WEFT_AWAIT(&t->f, t->rc, dl_write(cx, t));
        if (t->rc < 0)
            WEFT_RETURN(&t->f, t->rc == -ECANCELED ? 1 : -1);
        t->off += (size_t)t->rc;
        t->d->written = t->off;
        t->nap_ns = stress_below(&t->rng, 3) * 400000u;
        WEFT_AWAIT(&t->f, t->rc, weft_sleep_for(cx, &t->nap, t->nap_ns));
        if (t->rc < 0)
            WEFT_RETURN(&t->f, 1);
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static weft_poll dl_read(weft_cx *cx, struct dl_task *t)
{
    if (t->d->pipe)
        return weft_read(cx, &t->io, t->d->fd[0], t->buf, sizeof t->buf, -1);
    return weft_recv(cx, &t->io, t->d->fd[0], t->buf, sizeof t->buf, 0);
}

static weft_poll dl_reader(weft_cx *cx, struct dl_task *t)
{
    WEFT_BEGIN(&t->f);
    for (;;) {
        weft_io_timeout(&t->io, 1 + stress_below(&t->rng, 1500000));
        WEFT_AWAIT(&t->f, t->rc, dl_read(cx, t));
        scen_count_withdrawn(t->rc);
        if (t->rc == -ETIMEDOUT)
            continue;
        if (t->rc <= 0)
            WEFT_RETURN(&t->f, t->rc);
        for (size_t i = 0; i < (size_t)t->rc; i++)
            t->d->bad_order |= t->buf[i] != (uint8_t)(t->off + i);
        t->off += (size_t)t->rc;
        t->d->read = t->off;
    }
    WEFT_END(&t->f);
}

static weft_poll dl_poll(weft_cx *cx, void *p)
{
    struct dl_task *t = p;
    return t->writer ? dl_writer(cx, t) : dl_reader(cx, t);
}

static void check_dl(struct dl *d, const weft_outcome *w, const weft_outcome *r)
{
    if (w->status != 0 || w->value < 0 || r->status != 0 || r->value != 0)
        stress_violation("io_deadline", d->seed, "writer %d/%lld, reader %d/%lld", w->status,
                         (long long)w->value, r->status, (long long)r->value);
    if (d->read != d->written || d->bad_order)
        stress_violation("io_deadline", d->seed, "%s: wrote %zu, read %zu%s",
                         d->pipe ? "pipe" : "socket", d->written, d->read,
                         d->bad_order ? ", out of order" : "");
    if (atomic_load(&d->drops[0]) != 1 || atomic_load(&d->drops[1]) != 1)
        stress_violation("io_deadline", d->seed, "drop hooks ran %u and %u times",
                         atomic_load(&d->drops[0]), atomic_load(&d->drops[1]));
}

void scen_run_io_deadline(weft_runtime *rt, uint64_t seed, unsigned threads)
{
    (void)threads;
    int before = weft_harness_open_fds();
    struct dl *d = scen_zalloc(sizeof *d);
    uint64_t rng = seed;
    d->seed = seed;
    d->pipe = stress_below(&rng, 2);
    int rc = d->pipe ? pipe2(d->fd, O_CLOEXEC) : socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC,
                                                           0, d->fd);
    if (rc < 0)
        abort();
    struct dl_task w = { .d = d, .writer = true, .rng = stress_rng(&rng) };
    struct dl_task r = { .d = d, .rng = stress_rng(&rng) };
    weft_join hw, hr;
    weft_task_desc dw = { .poll = dl_poll, .frame = &w, .frame_size = sizeof w, .drop = dl_drop };
    weft_task_desc dr = dw;
    dr.frame = &r;
    if (weft_spawn(rt, &dw, &hw) < 0 || weft_spawn(rt, &dr, &hr) < 0)
        abort();
    struct timespec pause = { 0, (long)stress_below(&rng, 6000000) };
    nanosleep(&pause, NULL);
    if (stress_below(&rng, 2))
        weft_abort(&hw);
    weft_outcome ow, or;
    if (weft_join_wait_timeout(&hw, &ow, SCEN_HANG_NS) < 0
        || weft_join_wait_timeout(&hr, &or, SCEN_HANG_NS) < 0) {
        stress_violation("io_deadline", seed, "hang");
        return;
    }
    scen_count_outcome(&ow);
    check_dl(d, &ow, &or);
    close(d->fd[0]);
    free(d);
    check_fds("io_deadline", seed, before);
    stress_count(&stress_totals.tasks, 2);
}
