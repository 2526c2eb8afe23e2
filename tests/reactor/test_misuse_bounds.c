/*
 * tests/reactor/test_misuse_bounds.c - misuse that a range or state check
 * must catch, each once accepted (or crashed) although the headers promise
 * an error: a negative listen backlog, a deadline scope outside the task's
 * frame, setting up a stream that is set up already, shields nested past
 * the depth counter or exited once too often in a task spawned shielded,
 * NULL given to the harness's invariant helpers.
 * Each call must return the documented error, leave nothing behind and
 * never crash. (The other misuse tests are tests/core/test_misuse_*.c.)
 */
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "core/core_util.h"
#include "reactor/io_test.h"
#include "weft/harness.h"

TestSuite(bounds, .timeout = 60);

/* ---- listeners: a negative backlog ---------------------------------------------- */

static int fd_count(void)
{
    int n = weft_harness_open_fds();
    cr_assert_geq(n, 0);
    return n;
}

Test(bounds, listen_refuses_a_negative_backlog)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fds = fd_count();
    cr_assert_eq(weft_listen((struct sockaddr *)&a, sizeof a, -1, 0), -EINVAL);
    cr_assert_eq(weft_listen((struct sockaddr *)&a, sizeof a, INT_MIN, 0), -EINVAL);
    cr_assert_eq(weft_tcp_listen((struct sockaddr *)&a, sizeof a, -5), -EINVAL);
    cr_assert_eq(fd_count(), fds, "a refused listener left an fd open");
    /* 0 is a backlog (the kernel's smallest queue), not misuse. */
    int fd = weft_tcp_listen((struct sockaddr *)&a, sizeof a, 0);
    cr_assert_geq(fd, 0);
    close(fd);
}

Test(bounds, unix_listen_refuses_a_negative_backlog_before_unlinking)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/weft-bounds-%d.sock", (int)getpid());
    int fd = weft_unix_listen(path, 1, WEFT_LISTEN_UNLINK);
    cr_assert_geq(fd, 0);
    close(fd);                  /* leaves a stale socket file */
    int fds = fd_count();
    cr_assert_eq(weft_unix_listen(path, -1, WEFT_LISTEN_UNLINK), -EINVAL);
    cr_assert_eq(weft_unix_listen(path, -1, 0), -EINVAL);
    cr_assert_eq(fd_count(), fds);
    struct stat st;
    cr_assert_eq(lstat(path, &st), 0, "the refused call unlinked the socket file");
    cr_assert(S_ISSOCK(st.st_mode));
    unlink(path);
}

/* ---- deadline scopes: a scope in memory above the frame ------------------------- */

/*
 * weft_scope_enter must refuse a scope outside the task's frame; it used to
 * check only that the scope was above the frame and less than 4 GiB from
 * it. Memory that is certainly outside a task's frame and a short way above
 * it: another task's frame (allocations never overlap). So NPROBE tasks of
 * one size, spawned together, publish their frames; each then tries to
 * enter a scope kept for it in every frame above its own. Each stays alive
 * until all have tried, so no frame is freed under a probe.
 */
#define NPROBE 8

struct prober {
    weft_frame f;
    weft_scope spare[NPROBE];   /* spare[i]: the scope task i tries */
    unsigned idx;
    weft_poll r;
    weft_scope last;            /* the frame's last member: accepted */
};

static _Atomic uintptr_t probe_frames[NPROBE];
static _Atomic unsigned probe_tried, probe_accepted, probe_bad;
static flag probe_ready, probe_done;

/* Task t tries the scope kept for it in the frame at `other`. */
static void probe_one(weft_cx *cx, struct prober *t, uintptr_t other)
{
    uintptr_t self = (uintptr_t)t;
    if (other <= self || other - self > UINT32_MAX)
        return;                 /* below, or beyond what the old check took */
    atomic_fetch_add(&probe_tried, 1);
    weft_scope *sc = &((struct prober *)other)->spare[t->idx];
    int rc = weft_scope_enter(cx, sc, WEFT_SCOPE_NEVER);
    if (rc == 0) {
        atomic_fetch_add(&probe_accepted, 1);
        weft_scope_exit(cx, sc);
    } else if (rc != -EINVAL) {
        atomic_fetch_add(&probe_bad, 1);
    }
}

static weft_poll prober_poll(weft_cx *cx, void *p)
{
    struct prober *t = p;
    WEFT_BEGIN(&t->f);
    atomic_store(&probe_frames[t->idx], (uintptr_t)t);
    flag_add(&probe_ready, 1);
    while (flag_get(&probe_ready) < NPROBE)
        WEFT_YIELD(&t->f, t->r);
    if (weft_scope_enter(cx, &t->last, WEFT_SCOPE_NEVER) != 0
        || weft_scope_exit(cx, &t->last) != 0)
        atomic_fetch_add(&probe_bad, 1);
    for (unsigned j = 0; j < NPROBE; j++)
        probe_one(cx, t, atomic_load(&probe_frames[j]));
    flag_add(&probe_done, 1);
    while (flag_get(&probe_done) < NPROBE)
        WEFT_YIELD(&t->f, t->r);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(bounds, scope_enter_refuses_a_scope_above_the_frame)
{
    weft_runtime *rt = rt_make(2, 100);
    weft_join h[NPROBE];
    for (unsigned i = 0; i < NPROBE; i++) {
        struct prober t = { .idx = i };
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(prober_poll, &t), &h[i]), 0);
    }
    for (unsigned i = 0; i < NPROBE; i++) {
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        cr_assert_eq(out.status, 0);
    }
    rt_done(rt);
    cr_assert_gt(atomic_load(&probe_tried), 0, "no frame lay within 4 GiB above another");
    cr_assert_eq(atomic_load(&probe_accepted), 0, "%u of %u scopes in another frame accepted",
                 atomic_load(&probe_accepted), atomic_load(&probe_tried));
    cr_assert_eq(atomic_load(&probe_bad), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/*
 * The frame's end is found through the task's allocation, whose start
 * depends on the optional parts before the task header (runtime/task.h):
 * a scope at either end of the frame must be accepted for every layout
 * (join waker, cancellation record, drop hook, name, token bindings, dump
 * times). Under ASan a wrong allocation start is also reported as such.
 */
struct ends {
    weft_frame f;
    weft_scope first;           /* right after the frame header */
    char middle[200];
    weft_scope last;
};

static flag ends_done;
static _Atomic unsigned ends_bad;

static bool enter_exit(weft_cx *cx, weft_scope *sc)
{
    return weft_scope_enter(cx, sc, WEFT_SCOPE_NEVER) == 0 && weft_scope_exit(cx, sc) == 0;
}

static weft_poll ends_poll(weft_cx *cx, void *p)
{
    struct ends *t = p;
    if (!enter_exit(cx, &t->first) || !enter_exit(cx, &t->last))
        atomic_fetch_add(&ends_bad, 1);
    flag_add(&ends_done, 1);
    return 0;
}

static void ends_drop(void *frame)
{
    (void)frame;
}

static void spawn_ends(weft_runtime *rt, unsigned shape, weft_token *tok)
{
    struct ends t = { 0 };
    weft_task_desc d = WEFT_TASK(ends_poll, &t);
    d.name = shape & 1 ? "ends" : NULL;
    d.drop = shape & 2 ? ends_drop : NULL;
    d.tokens = shape & 4 ? &tok : NULL;
    d.ntokens = shape & 4 ? 1 : 0;
    d.flags = shape & 8 ? WEFT_TASK_SHIELDED : 0;
    if (shape & 16) {
        cr_assert_eq(weft_spawn_detached(rt, &d), 0);
        return;
    }
    weft_join h;
    weft_outcome out;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    cr_assert_eq(weft_join_wait(&h, &out), 0);
}

Test(bounds, scope_enter_takes_both_ends_of_the_frame_in_every_layout)
{
    for (int times = 0; times < 2; times++) {
        weft_runtime *rt;
        weft_runtime_opts o = { .threads = 2, .shutdown_grace_ms = 100, .task_times = times };
        cr_assert_eq(weft_runtime_new(&rt, &o), 0);
        weft_token *tok;
        cr_assert_eq(weft_token_new(&tok), 0);
        flag_set(&ends_done, 0);
        for (unsigned shape = 0; shape < 32; shape++)
            spawn_ends(rt, shape, tok);
        flag_wait_ge(&ends_done, 32);
        weft_token_release(tok);
        rt_done(rt);
    }
    cr_assert_eq(atomic_load(&ends_bad), 0, "a scope inside the frame was refused");
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- streams: set up twice ------------------------------------------------------ */

/* A second init used to overwrite the stream: the buffer weft allocated
 * leaked (LeakSanitizer fails the test under ASan), and a stream given its
 * own buffer lost whatever it held. Now it is refused and r is unchanged. */
Test(bounds, stream_init_refuses_a_stream_already_set_up)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char mine[16];
    weft_reader r = WEFT_READER_INIT;
    cr_assert_eq(weft_reader_init(&r, sv[0], NULL, 64), 0);
    weft_reader before = r;
    cr_assert_eq(weft_reader_init(&r, sv[0], NULL, 64), -EINVAL);
    cr_assert_eq(weft_reader_init(&r, sv[1], mine, sizeof mine), -EINVAL);
    cr_assert_eq(memcmp(&r, &before, sizeof r), 0, "a refused init changed the reader");
    cr_assert_eq(weft_reader_destroy(&r), 0);
    cr_assert_eq(weft_reader_init(&r, sv[0], mine, sizeof mine), 0, "destroyed: usable again");
    cr_assert_eq(weft_reader_init(&r, sv[0], NULL, 64), -EINVAL);
    cr_assert_eq(weft_reader_destroy(&r), 0);

    weft_writer w = WEFT_WRITER_INIT;
    cr_assert_eq(weft_writer_init(&w, sv[0], NULL, 64), 0);
    weft_writer wbefore = w;
    cr_assert_eq(weft_writer_init(&w, sv[0], NULL, 64), -EINVAL);
    cr_assert_eq(weft_writer_init(&w, sv[1], mine, sizeof mine), -EINVAL);
    cr_assert_eq(memcmp(&w, &wbefore, sizeof w), 0, "a refused init changed the writer");
    cr_assert_eq(weft_writer_destroy(&w), 0);
    cr_assert_eq(weft_writer_init(&w, sv[0], mine, sizeof mine), 0);
    cr_assert_eq(weft_writer_init(&w, sv[0], NULL, 64), -EINVAL);
    cr_assert_eq(weft_writer_destroy(&w), 0);
    close(sv[0]);
    close(sv[1]);
    WEFT_ASSERT_NO_LEAKS();
}

/* A read in flight: init from another thread must not reset the operation
 * the kernel holds; the read then completes with the data as if nothing
 * had happened. */
struct reading {
    weft_frame f;
    weft_reader rd;
    int fd;
    char buf[8];
    weft_poll n;
};

static weft_reader *_Atomic live_reader;
static flag reader_published;

static weft_poll reading_poll(weft_cx *cx, void *p)
{
    struct reading *t = p;
    WEFT_BEGIN(&t->f);
    if (weft_reader_init(&t->rd, t->fd, NULL, 64) != 0)
        WEFT_RETURN(&t->f, -1);
    atomic_store(&live_reader, &t->rd);
    flag_add(&reader_published, 1);
    WEFT_AWAIT(&t->f, t->n, weft_read_some(cx, &t->rd, t->buf, sizeof t->buf));
    weft_reader_destroy(&t->rd);
    WEFT_RETURN(&t->f, t->n == 5 && memcmp(t->buf, "hello", 5) == 0 ? 0 : t->n + 1000);
    WEFT_END(&t->f);
}

Test(bounds, stream_init_leaves_a_read_in_flight_alone)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    weft_runtime *rt = rt_make(2, 100);
    struct reading t = { .fd = sv[0] };
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(reading_poll, &t), &h), 0);
    flag_wait_ge(&reader_published, 1);
    cr_assert(iot_wait_polls(IORING_OP_RECV, 1), "the read never reached the kernel");
    cr_assert_eq(weft_reader_init(atomic_load(&live_reader), sv[0], NULL, 64), -EINVAL);
    cr_assert_eq(write(sv[1], "hello", 5), 5);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 0, "the read yielded %lld", (long long)out.value - 1000);
    rt_done(rt);
    close(sv[0]);
    close(sv[1]);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- shields: nested past the depth counter ------------------------------------- */

/* weft_shield_enter used to abort() the process at depth 65535, on user
 * input (a loop that enters and never exits). Now the task stays shielded
 * for good there: a request is held through later exits. One depth less
 * still unwinds normally. Each task cancels its own token, which records
 * the request at once. */
struct deep {
    weft_frame f;
    unsigned enters, exits;
    weft_token *tok;
    bool held;                  /* expected: the request is held */
    weft_poll r;
};

static weft_poll deep_poll(weft_cx *cx, void *p)
{
    struct deep *t = p;
    WEFT_BEGIN(&t->f);
    for (unsigned i = 0; i < t->enters; i++)
        weft_shield_enter(cx);
    for (unsigned i = 0; i < t->exits; i++)
        weft_shield_exit(cx);
    weft_token_cancel(t->tok);
    if (!weft_cx_cancel_requested(cx) || weft_cx_cancel_due(cx) == t->held)
        WEFT_RETURN(&t->f, 1);
    WEFT_YIELD(&t->f, t->r);
    WEFT_RETURN(&t->f, t->r == (t->held ? 0 : -ECANCELED) ? 0 : 2);
    WEFT_END(&t->f);
}

static weft_poll run_deep(weft_runtime *rt, unsigned enters, unsigned exits, bool held,
                          unsigned flags)
{
    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    struct deep t = { .enters = enters, .exits = exits, .tok = tok, .held = held };
    weft_task_desc d = WEFT_TASK(deep_poll, &t);
    d.tokens = &tok;
    d.ntokens = 1;
    d.flags = flags;
    weft_join h;
    weft_outcome out;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    weft_token_release(tok);
    cr_assert_eq(out.status, 0);
    return out.value;
}

Test(bounds, shield_enter_past_the_deepest_nesting_stays_shielded)
{
    weft_runtime *rt = rt_make(2, 100);
    cr_assert_eq(run_deep(rt, 65534, 65534, false, 0), 0, "65534 matched regions did not unwind");
    cr_assert_eq(run_deep(rt, 70000, 70000, true, 0), 0, "the stuck shield let the request through");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* A task spawned WEFT_TASK_SHIELDED started at depth 1, so one exit more
 * than its enters (a cleanup path that exits twice, or an exit with no
 * enter) lifted the shield its spawner asked for, and the next await
 * delivered the request. */
Test(bounds, unmatched_exits_leave_a_task_spawned_shielded_shielded)
{
    weft_runtime *rt = rt_make(2, 100);
    cr_assert_eq(run_deep(rt, 0, 1, true, WEFT_TASK_SHIELDED), 0, "an exit lifted the shield");
    cr_assert_eq(run_deep(rt, 1, 3, true, WEFT_TASK_SHIELDED), 0, "exits lifted the shield");
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- harness helpers: NULL ------------------------------------------------------ */

/* The invariant helpers of weft/harness.h dereferenced NULL. */
Test(bounds, harness_counters_and_watches_take_null)
{
    weft_harness_acquire(NULL);
    weft_harness_release(NULL);
    weft_harness_counter_reset(NULL);
    cr_assert_eq(weft_harness_outstanding(NULL), -EINVAL);
    weft_harness_watch_reset(NULL);
    weft_harness_watch_close(NULL);
    weft_harness_watch_effect(NULL, NULL);
    weft_harness_counter c = { 0 };
    weft_harness_acquire(&c);
    cr_assert_eq(weft_harness_outstanding(&c), 1);
    weft_harness_release(&c);
    cr_assert_eq(weft_harness_outstanding(&c), 0);
}
