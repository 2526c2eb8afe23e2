/*
 * tests/stress/stress_io.c - I/O withdrawal races under load (weft/io.h,
 * reactor/op.c). Not Criterion: it must run under TSan.
 *
 * Each round runs, on one runtime:
 *   - stream lanes (loopback TCP with send_all / recv, pipes with write /
 *     read): a writer and a reader task per lane, cooperative, with random
 *     chunk sizes and random I/O timeouts. A canceller thread aborts them and
 *     cancels their lane's token at random; the main thread respawns every
 *     task that stopped, carrying on from the lane's byte count;
 *   - acceptors (half cancel-safe; half of them one multishot accept,
 *     weft_accept_each, whose callback closes each connection) on one
 *     listener while a client thread connects and disconnects, and file tasks (half cancel-safe, a drop hook
 *     closing their fd) that openat, write, read back and close.
 * At the end of a round every task is aborted and joined, and then:
 *   - bytes: what the writers reported as sent is exactly what the reader
 *     reported plus what is still queued, in order (each byte of a stream is
 *     a function of its position, so loss, duplication and reordering show);
 *   - fds: /proc/self/fd holds what it held before the round (an accept or
 *     open that completed after its task was torn down was closed by weft).
 * Every few rounds the runtime is shut down with all of this in flight and
 * a new one made: no fd may leak and, under ASan, no memory. Every other
 * runtime runs with submission faults injected (reactor/op.h), so that
 * operations and cancels also go through the overflow queues.
 *
 * Usage: stress-io [--seconds S] [--threads N] [--timeout S]
 */
#include <pthread.h>
#include <stdlib.h>

#include "reactor/io_test.h"
#include "reactor/op.h"
#include "stress_util.h"

#define MAX_CHUNK 16384u
#define ROUND_MS 40
#define ROUNDS_PER_RUNTIME 8
enum { TCP_LANES = 3, PIPE_LANES = 2, LANES = TCP_LANES + PIPE_LANES };
enum { ACCEPTORS = 4, FILERS = 4, JOBS = ACCEPTORS + FILERS };

static unsigned char pattern_at(uint64_t pos)
{
    return (unsigned char)((pos * 2654435761u) >> 13);
}

static bool pattern_ok(const unsigned char *b, uint64_t pos, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern_at(pos + i))
            return false;
    return true;
}

static _Atomic uint64_t aborts, token_cancels, connects, respawns;

/* ---- stream lanes ------------------------------------------------------------------- */

/* Touched by one writer and one reader task at a time, and by the main
 * thread only after joining them; the handles and the token are guarded by
 * `lock` (the canceller uses them). */
struct lane {
    bool tcp;
    int wfd, rfd;
    uint64_t sent, recvd;
    bool corrupt;
    pthread_mutex_t lock;
    weft_join wh, rh;
    bool wlive, rlive;
    weft_token *tok;
};

struct streamer {
    weft_frame f;
    struct lane *ln;
    weft_xfer x;
    weft_io io;
    uint32_t seed;
    size_t len;
    weft_poll rc;
    unsigned char buf[MAX_CHUNK];
};

static void maybe_timeout(struct streamer *s, weft_io *io)
{
    if (rnd(&s->seed) % 4 == 0)
        weft_io_timeout(io, (1 + rnd(&s->seed) % 4) * IOT_MS);
}

/* Yields the error that stopped it: -ECANCELED, when all is well. */
static weft_poll writer_poll(weft_cx *cx, void *p)
{
    struct streamer *s = p;
    WEFT_BEGIN(&s->f);
    for (;;) {
        s->len = 1 + rnd(&s->seed) % MAX_CHUNK;
        for (size_t i = 0; i < s->len; i++)
            s->buf[i] = pattern_at(s->ln->sent + i);
        if (s->ln->tcp) {
            /* zeroed for each transfer: an await cancelled before send_all
             * was ever polled leaves `done` as the last transfer left it */
            s->x = (weft_xfer)WEFT_XFER_INIT;
            maybe_timeout(s, &s->x.io);
            WEFT_AWAIT(&s->f, s->rc, weft_send_all(cx, &s->x, s->ln->wfd, s->buf, s->len));
            s->ln->sent += s->x.done;
        } else {
            maybe_timeout(s, &s->io);
            WEFT_AWAIT(&s->f, s->rc, weft_write(cx, &s->io, s->ln->wfd, s->buf, s->len, -1));
            if (s->rc > 0)
                s->ln->sent += (uint64_t)s->rc;
        }
        if (s->rc < 0 && s->rc != -ETIMEDOUT)
            WEFT_RETURN(&s->f, s->rc);
    }
    WEFT_END(&s->f);
}

static weft_poll reader_poll(weft_cx *cx, void *p)
{
    struct streamer *s = p;
    WEFT_BEGIN(&s->f);
    for (;;) {
        s->len = 1 + rnd(&s->seed) % MAX_CHUNK;
        maybe_timeout(s, &s->io);
        if (s->ln->tcp)
            WEFT_AWAIT(&s->f, s->rc, weft_recv(cx, &s->io, s->ln->rfd, s->buf, s->len, 0));
        else
            WEFT_AWAIT(&s->f, s->rc, weft_read(cx, &s->io, s->ln->rfd, s->buf, s->len, -1));
        if (s->rc > 0) {
            if (!pattern_ok(s->buf, s->ln->recvd, (size_t)s->rc))
                s->ln->corrupt = true;
            s->ln->recvd += (uint64_t)s->rc;
        } else if (s->rc != -ETIMEDOUT) {
            WEFT_RETURN(&s->f, s->rc == 0 ? -EPIPE : s->rc);
        }
    }
    WEFT_END(&s->f);
}

static void lane_spawn(weft_runtime *rt, struct lane *ln, bool writer, uint32_t seed)
{
    struct streamer s = { .ln = ln, .seed = seed, .x = WEFT_XFER_INIT };
    weft_task_desc d = { .poll = writer ? writer_poll : reader_poll, .frame = &s,
                         .frame_size = sizeof s, .tokens = &ln->tok, .ntokens = 1 };
    int rc = weft_spawn(rt, &d, writer ? &ln->wh : &ln->rh);
    CHECK(rc == 0, "spawn: %d", rc);
    *(writer ? &ln->wlive : &ln->rlive) = rc == 0;
}

/* Join a finished (or, at the end, aborted) task; it may only have stopped
 * because it was cancelled. Caller holds ln->lock. */
static void lane_join(struct lane *ln, bool writer)
{
    weft_outcome out;
    int rc = weft_join_wait(writer ? &ln->wh : &ln->rh, &out);
    CHECK(rc == 0 && out.status == 0 && out.value == -ECANCELED,
          "%s %s: join %d, status %d, value %lld", ln->tcp ? "tcp" : "pipe",
          writer ? "writer" : "reader", rc, out.status, (long long)out.value);
    *(writer ? &ln->wlive : &ln->rlive) = false;
}

static void lane_refresh_token(struct lane *ln)
{
    if (!weft_token_is_cancelled(ln->tok))
        return;
    weft_token_release(ln->tok);    /* the tasks bound to it keep it alive */
    int rc = weft_token_new(&ln->tok);
    CHECK(rc == 0, "token: %d", rc);
}

/* Main thread, during a round: respawn what the canceller stopped. */
static void lane_tend(weft_runtime *rt, struct lane *ln, uint32_t *seed)
{
    pthread_mutex_lock(&ln->lock);
    lane_refresh_token(ln);
    for (int w = 0; w < 2; w++) {
        bool writer = w == 0;
        weft_join *h = writer ? &ln->wh : &ln->rh;
        if (*(writer ? &ln->wlive : &ln->rlive) && weft_join_is_finished(h)) {
            lane_join(ln, writer);
            lane_spawn(rt, ln, writer, rnd(seed));
            atomic_fetch_add(&respawns, 1);
        }
    }
    pthread_mutex_unlock(&ln->lock);
}

static int lane_open(struct lane *ln, bool tcp)
{
    memset(ln, 0, sizeof *ln);
    ln->tcp = tcp;
    pthread_mutex_init(&ln->lock, NULL);
    int fds[2], rc;
    if (tcp)
        rc = iot_tcp_pair_bufs(&fds[0], &fds[1], 16384);
    else
        rc = pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
    if (rc != 0)
        return rc;
    ln->rfd = fds[0];
    ln->wfd = fds[1];
    return weft_token_new(&ln->tok);
}

/* After both tasks were joined: the rest of the stream is still queued. */
static void lane_settle(struct lane *ln)
{
    close(ln->wfd);
    static unsigned char buf[65536];
    uint64_t pos = ln->recvd;
    ssize_t n;
    while ((n = read(ln->rfd, buf, sizeof buf)) > 0) {
        if (!pattern_ok(buf, pos, (size_t)n))
            ln->corrupt = true;
        pos += (uint64_t)n;
    }
    CHECK(!ln->corrupt, "%s lane: bytes lost, duplicated or reordered", ln->tcp ? "tcp" : "pipe");
    CHECK(pos == ln->sent, "%s lane: writers reported %llu bytes, the peer got %llu",
          ln->tcp ? "tcp" : "pipe", (unsigned long long)ln->sent, (unsigned long long)pos);
    close(ln->rfd);
    weft_token_release(ln->tok);
    pthread_mutex_destroy(&ln->lock);
}

/* ---- acceptors and file tasks: fds only --------------------------------------------- */

struct job {
    weft_frame f;
    weft_io io;
    weft_accept_loop loop;
    int lfd, fd;
    const char *path;
    int64_t off;
    weft_poll rc;
    char buf[512], back[512];
};

static weft_poll acceptor_poll(weft_cx *cx, void *p)
{
    struct job *j = p;
    WEFT_BEGIN(&j->f);
    for (;;) {
        WEFT_AWAIT(&j->f, j->rc, weft_accept(cx, &j->io, j->lfd, NULL, NULL, 0));
        if (j->rc < 0)
            WEFT_RETURN(&j->f, j->rc);
        close((int)j->rc);
    }
    WEFT_END(&j->f);
}

static void close_accepted(void *arg, int fd)
{
    (void)arg;
    close(fd);
}

static weft_poll multi_acceptor_poll(weft_cx *cx, void *p)
{
    struct job *j = p;
    WEFT_BEGIN(&j->f);
    WEFT_AWAIT(&j->f, j->rc, weft_accept_each(cx, &j->loop, j->lfd, close_accepted, NULL));
    WEFT_RETURN(&j->f, j->rc);
    WEFT_END(&j->f);
}

static weft_poll filer_poll(weft_cx *cx, void *p)
{
    struct job *j = p;
    WEFT_BEGIN(&j->f);
    for (;;) {
        WEFT_AWAIT(&j->f, j->rc, weft_openat(cx, &j->io, AT_FDCWD, j->path, O_RDWR, 0));
        if (j->rc < 0)
            WEFT_RETURN(&j->f, j->rc);
        j->fd = (int)j->rc;
        memset(j->buf, (int)(j->off & 0x7f), sizeof j->buf);
        WEFT_AWAIT(&j->f, j->rc, weft_write(cx, &j->io, j->fd, j->buf, sizeof j->buf, j->off));
        if (j->rc == (weft_poll)sizeof j->buf)
            WEFT_AWAIT(&j->f, j->rc, weft_read(cx, &j->io, j->fd, j->back, sizeof j->back,
                                               j->off));
        if (j->rc == (weft_poll)sizeof j->buf)
            CHECK(memcmp(j->buf, j->back, sizeof j->buf) == 0, "file: read back other bytes");
        close(j->fd);           /* synchronous: a close is never withdrawn anyway */
        j->fd = -1;
        if (j->rc < 0)
            WEFT_RETURN(&j->f, j->rc);
    }
    WEFT_END(&j->f);
}

/* A torn-down file task still owns the fd it opened. */
static void filer_drop(void *frame)
{
    struct job *j = frame;
    if (j->fd >= 0)
        close(j->fd);
}

/* ---- the threads around the runtime ------------------------------------------------ */

struct round {
    struct lane lanes[LANES];
    weft_join jobs[JOBS];
    struct sockaddr_in sa;
    _Atomic bool over;
    uint32_t seed;
};


static void *canceller_main(void *arg)
{
    struct round *r = arg;
    uint32_t seed = r->seed ^ 0x5bd1e995u;
    while (!atomic_load(&r->over)) {
        iot_spin(rnd(&seed) % 200000);
        struct lane *ln = &r->lanes[rnd(&seed) % LANES];
        pthread_mutex_lock(&ln->lock);
        uint32_t what = rnd(&seed) % 4;
        if (what == 0) {
            weft_token_cancel(ln->tok);
            atomic_fetch_add(&token_cancels, 1);
        } else if (what == 1 && ln->wlive) {
            weft_abort(&ln->wh);
            atomic_fetch_add(&aborts, 1);
        } else if (what == 2 && ln->rlive) {
            weft_abort(&ln->rh);
            atomic_fetch_add(&aborts, 1);
        }
        pthread_mutex_unlock(&ln->lock);
    }
    return NULL;
}

static void *client_main(void *arg)
{
    struct round *r = arg;
    while (!atomic_load(&r->over)) {
        int c = iot_connect(&r->sa);
        if (c >= 0) {
            atomic_fetch_add(&connects, 1);
            close(c);
        }
        iot_pace_ms(1);         /* load, not order: the checks hold at any pace */
    }
    return NULL;
}

static void spawn_jobs(weft_runtime *rt, struct round *r, int l, const char *path)
{
    for (int i = 0; i < JOBS; i++) {
        bool acceptor = i < ACCEPTORS;
        struct job j = { .loop = WEFT_ACCEPT_LOOP_INIT, .lfd = l, .fd = -1, .path = path,
                         .off = (int64_t)i * 512 };
        weft_poll_fn accept_fn = i < ACCEPTORS / 2 ? acceptor_poll : multi_acceptor_poll;
        weft_task_desc d = { .poll = acceptor ? accept_fn : filer_poll, .frame = &j,
                             .frame_size = sizeof j, .drop = acceptor ? NULL : filer_drop,
                             .flags = i % 2 ? WEFT_TASK_CANCEL_SAFE : 0 };
        int rc = weft_spawn(rt, &d, &r->jobs[i]);
        CHECK(rc == 0, "spawn job: %d", rc);
    }
}

static void join_jobs(struct round *r)
{
    for (int i = 0; i < JOBS; i++) {
        weft_abort(&r->jobs[i]);
        weft_outcome out;
        int rc = weft_join_wait(&r->jobs[i], &out);
        CHECK(rc == 0 && (out.status == -ECANCELED || out.value == -ECANCELED),
              "job %d: join %d, status %d, value %lld", i, rc, out.status,
              (long long)out.value);
    }
}

/* One round; with `shutdown`, the runtime is shut down with everything in
 * flight instead of the tasks being aborted. */
static void run_round(weft_runtime *rt, uint32_t seed, const char *path, bool shutdown,
                      int fds0)
{
    static struct round r;
    memset(&r, 0, sizeof r);
    r.seed = seed;
    for (int i = 0; i < LANES; i++) {
        int rc = lane_open(&r.lanes[i], i < TCP_LANES);
        CHECK(rc == 0, "lane: %d", rc);
        lane_spawn(rt, &r.lanes[i], true, rnd(&seed));
        lane_spawn(rt, &r.lanes[i], false, rnd(&seed));
    }
    int l = iot_listen(64, &r.sa);
    CHECK(l >= 0, "listen: %d", l);
    spawn_jobs(rt, &r, l, path);
    pthread_t canceller, client;
    pthread_create(&canceller, NULL, canceller_main, &r);
    pthread_create(&client, NULL, client_main, &r);
    uint64_t end = weft_now_ns() + ROUND_MS * IOT_MS;
    while (weft_now_ns() < end) {
        for (int i = 0; i < LANES; i++)
            lane_tend(rt, &r.lanes[i], &seed);
        iot_pace_ms(1);         /* pacing only: how often lanes are tended
                                   varies the interleaving, not a check */
    }
    atomic_store(&r.over, true);
    pthread_join(canceller, NULL);
    pthread_join(client, NULL);
    if (shutdown)
        CHECK(weft_runtime_shutdown(rt) == 0, "shutdown");
    for (int i = 0; i < LANES; i++) {
        struct lane *ln = &r.lanes[i];
        for (int w = 0; w < 2; w++) {
            if (!*(w == 0 ? &ln->wlive : &ln->rlive))
                continue;
            weft_abort(w == 0 ? &ln->wh : &ln->rh);
            pthread_mutex_lock(&ln->lock);
            if (shutdown) {
                weft_outcome out;
                weft_join_wait(w == 0 ? &ln->wh : &ln->rh, &out);
            } else {
                lane_join(ln, w == 0);
            }
            pthread_mutex_unlock(&ln->lock);
        }
        if (shutdown) {
            /* tasks torn down by the shutdown dropped what they had read */
            close(ln->wfd);
            close(ln->rfd);
            weft_token_release(ln->tok);
            pthread_mutex_destroy(&ln->lock);
        } else {
            lane_settle(ln);
        }
    }
    if (shutdown) {
        for (int i = 0; i < JOBS; i++) {
            weft_outcome out;
            weft_join_wait(&r.jobs[i], &out);
        }
    } else {
        join_jobs(&r);
    }
    close(l);
    int fds = iot_fd_count();
    CHECK(shutdown || fds == fds0, "after a round: %d fds open, %d before", fds, fds0);
}

int main(int argc, char **argv)
{
    long seconds = arg_long(argc, argv, "--seconds", 5);
    long threads = arg_long(argc, argv, "--threads", 3);
    watchdog((unsigned)arg_long(argc, argv, "--timeout", seconds * 20 + 60));
    char dir[] = "/tmp/weft-stress-io-XXXXXX", path[64];
    if (!mkdtemp(dir))
        return 77;
    snprintf(path, sizeof path, "%s/file", dir);
    int fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return 77;
    close(fd);
    int fds0 = iot_fd_count();
    uint32_t seed = 0x1234567u;
    uint64_t end = weft_now_ns() + (uint64_t)seconds * 1000 * IOT_MS;
    unsigned rounds = 0, runtimes = 0;
    while (weft_now_ns() < end && atomic_load(&stress_failures) == 0) {
        weft_runtime *rt;
        weft_runtime_opts o = { .threads = (unsigned)threads, .shutdown_grace_ms = 20 };
        if (weft_runtime_new(&rt, &o) != 0)
            return 77;
        runtimes++;
        weft__io_inject_faults(runtimes % 2 ? 0 : 3, runtimes % 2 ? 0 : 4);
        int fds_rt = iot_fd_count();
        for (int i = 0; i < ROUNDS_PER_RUNTIME && weft_now_ns() < end; i++, rounds++)
            run_round(rt, rnd(&seed), path, i == ROUNDS_PER_RUNTIME - 1, fds_rt);
        CHECK(weft_runtime_free(rt) == 0, "runtime_free");
        int fds = iot_fd_count();
        CHECK(fds == fds0, "after runtime %u: %d fds open, %d before", runtimes, fds, fds0);
    }
    unlink(path);
    rmdir(dir);
    fprintf(stderr, "stress-io: %u rounds on %u runtimes, %llu aborts, %llu token cancels, "
                    "%llu connects, %llu respawns\n", rounds, runtimes,
            (unsigned long long)atomic_load(&aborts),
            (unsigned long long)atomic_load(&token_cancels),
            (unsigned long long)atomic_load(&connects), (unsigned long long)atomic_load(&respawns));
    return stress_result("stress-io");
}
