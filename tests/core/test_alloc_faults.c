/*
 * tests/core/test_alloc_faults.c - allocation failure at every allocation of
 * a representative workload (runtime/alloc.h fault injection).
 *
 * The workload: create a runtime, then in a root task a token, a child bound
 * to it joined through a select against a timer, a task group with two
 * children, an unbounded channel grown past its first buffer, a bounded
 * channel send and receive, a oneshot, I/O (a socket, and a write and a
 * read on a pipe) and a job on the blocking pool. Every step that fails stops
 * the workload, which cleans up and reports the error.
 *
 * For n = 1, 2, ... the n-th allocation from the start fails. Each time:
 *   - the workload reports -ENOMEM (or succeeds, when the failed allocation
 *     was one a worker absorbs, which is counted and logged), never anything
 *     else, and never crashes;
 *   - every task that was spawned ran its drop hook exactly once, and the
 *     fd count is what it was (nothing lost, nothing leaked);
 *   - the same workload, run at once without a fault, succeeds (weft is still
 *     usable).
 * The sweep ends when the failure is still pending after the workload: n has
 * passed the workload's last allocation. In ASan builds LeakSanitizer checks
 * that no failure path leaked.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>

#include "core_util.h"
#include "runtime/alloc.h"

TestSuite(alloc_faults, .timeout = 240);

static _Atomic int spawned, dropped;

static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

/* ---- the children ---------------------------------------------------------- */

struct kid {
    weft_frame f;
    weft_poll rc;
};

static void kid_drop(void *p)
{
    (void)p;
    atomic_fetch_add(&dropped, 1);
}

static weft_poll kid_poll(weft_cx *cx, void *p)
{
    struct kid *k = p;
    WEFT_BEGIN(&k->f);
    WEFT_YIELD(&k->f, k->rc);
    WEFT_RETURN(&k->f, 3);
    WEFT_END(&k->f);
}

static weft_task_desc kid_desc(struct kid *k, weft_token **tok)
{
    *k = (struct kid){ 0 };
    return (weft_task_desc){ .poll = kid_poll, .frame = k, .frame_size = sizeof *k,
                             .drop = kid_drop, .tokens = tok, .ntokens = tok ? 1 : 0 };
}

/* ---- the root -------------------------------------------------------------- */

struct root {
    weft_frame f;
    int64_t err;                /* the first failure, reported at the end */
    weft_token *tok;
    weft_join child;
    weft_outcome out;
    weft_selector sel;
    weft_sleep nap;
    weft_group *g;
    weft_mpsc_unbounded_tx utx;
    weft_mpsc_tx tx;
    weft_mpsc_rx urx, rx;
    weft_mpsc_send_op op;
    weft_oneshot_tx otx;
    weft_oneshot_rx orx;
    uint64_t v, i;
    int pfd[2], sock;
    weft_io io;
    weft_blocking job;
    char buf[8];
    weft_poll rc;
};

/* Release whatever the root still holds; runs once, as its drop hook. */
static void root_drop(void *p)
{
    struct root *r = p;
    if (r->child.weft_task)
        weft_detach(&r->child);
    if (r->g)
        weft_group_free(r->g);      /* every child was joined: nothing to wait for */
    weft_mpsc_unbounded_tx_drop(&r->utx);
    weft_mpsc_tx_drop(&r->tx);
    weft_mpsc_rx_drop(&r->urx);
    weft_mpsc_rx_drop(&r->rx);
    weft_oneshot_tx_drop(&r->otx);
    weft_oneshot_rx_drop(&r->orx);
    for (int i = 0; i < 2; i++)
        if (r->pfd[i] >= 0)
            close(r->pfd[i]);
    if (r->sock >= 0)
        close(r->sock);
    weft_token_release(r->tok);
}

static weft_poll join_or_nap(weft_cx *cx, void *frame, unsigned i)
{
    struct root *r = frame;
    if (i == 0)
        return weft_join_await(cx, &r->child, &r->out);
    return weft_sleep_for(cx, &r->nap, 10ull * 1000000000ull);
}

static int spawn_kid(weft_runtime *rt, weft_join *h, weft_token **tok)
{
    struct kid k;
    weft_task_desc d = kid_desc(&k, tok);
    int rc = weft_spawn(rt, &d, h);
    if (rc == 0)
        atomic_fetch_add(&spawned, 1);
    return rc;
}

static int spawn_group_kids(struct root *r)
{
    for (int i = 0; i < 2; i++) {
        struct kid k;
        weft_task_desc d = kid_desc(&k, NULL);
        int rc = weft_group_spawn(r->g, &d);
        if (rc < 0)
            return rc;
        atomic_fetch_add(&spawned, 1);
    }
    return 0;
}

/* Stop at the first failure: remember it and return it from the task. */
#define STEP(r, expr)                                                         \
    do {                                                                      \
        int64_t step_rc_ = (expr);                                            \
        if (step_rc_ < 0 && !(r)->err)                                        \
            (r)->err = step_rc_;                                              \
    } while (0)
#define FAILED(r) ((r)->err != 0)

static weft_poll io_step(weft_cx *cx, struct root *r, bool writing)
{
    if (writing)
        return weft_write(cx, &r->io, r->pfd[1], "abcd", 4, -1);
    return weft_read(cx, &r->io, r->pfd[0], r->buf, 4, -1);
}

static int job_fn(void *arg)
{
    (void)arg;
    return 9;
}

static weft_poll root_poll(weft_cx *cx, void *p)
{
    struct root *r = p;
    weft_runtime *rt = weft_cx_runtime(cx);
    WEFT_BEGIN(&r->f);
    STEP(r, weft_token_new(&r->tok));
    if (!FAILED(r))
        STEP(r, spawn_kid(rt, &r->child, &r->tok));
    if (FAILED(r))
        WEFT_RETURN(&r->f, r->err);
    WEFT_AWAIT(&r->f, r->rc, weft_select(cx, &r->sel, 2, join_or_nap, r));
    if (r->rc != 0 || weft_select_winner(&r->sel) != 0 || r->out.value != 3)
        WEFT_RETURN(&r->f, -1000);

    STEP(r, weft_group_new(rt, r->tok, &r->g));
    if (!FAILED(r))
        STEP(r, spawn_group_kids(r));
    if (r->g) {
        do
            WEFT_AWAIT(&r->f, r->rc, weft_group_join_next(cx, r->g, &r->out));
        while (r->rc == 1);
        if (r->rc != 0)
            WEFT_RETURN(&r->f, -1001);
    }
    if (FAILED(r))
        WEFT_RETURN(&r->f, r->err);

    STEP(r, weft_mpsc_unbounded_new(&r->utx, &r->urx));
    for (r->i = 0; r->i < 100 && !FAILED(r); r->i++)
        STEP(r, weft_mpsc_unbounded_send(&r->utx, r->i));
    if (FAILED(r))
        WEFT_RETURN(&r->f, r->err);
    for (r->i = 0; r->i < 100; r->i++) {
        WEFT_AWAIT(&r->f, r->rc, weft_mpsc_recv(cx, &r->urx, &r->v));
        if (r->rc != 0 || r->v != r->i)
            WEFT_RETURN(&r->f, -1002);
    }

    STEP(r, weft_mpsc_new(&r->tx, &r->rx, 2));
    if (FAILED(r))
        WEFT_RETURN(&r->f, r->err);
    WEFT_AWAIT(&r->f, r->rc, weft_mpsc_send(cx, &r->tx, &r->op, 77));
    if (r->rc == 0)
        WEFT_AWAIT(&r->f, r->rc, weft_mpsc_recv(cx, &r->rx, &r->v));
    if (r->rc != 0 || r->v != 77)
        WEFT_RETURN(&r->f, -1003);

    STEP(r, weft_oneshot_new(&r->otx, &r->orx));
    if (!FAILED(r))
        STEP(r, weft_oneshot_send(&r->otx, 5));
    if (FAILED(r))
        WEFT_RETURN(&r->f, r->err);
    WEFT_AWAIT(&r->f, r->rc, weft_oneshot_recv(cx, &r->orx, &r->v));
    if (r->rc != 0 || r->v != 5)
        WEFT_RETURN(&r->f, -1004);

    WEFT_AWAIT(&r->f, r->rc, weft_socket(cx, &r->io, AF_UNIX, SOCK_STREAM, 0));
    if (r->rc < 0)
        WEFT_RETURN(&r->f, r->rc);
    r->sock = (int)r->rc;
    if (pipe2(r->pfd, O_CLOEXEC) < 0)
        WEFT_RETURN(&r->f, -1005);
    WEFT_AWAIT(&r->f, r->rc, io_step(cx, r, true));
    if (r->rc == 4)
        WEFT_AWAIT(&r->f, r->rc, io_step(cx, r, false));
    if (r->rc < 0)
        WEFT_RETURN(&r->f, r->rc);
    if (r->rc != 4 || memcmp(r->buf, "abcd", 4) != 0)
        WEFT_RETURN(&r->f, -1006);

    WEFT_AWAIT(&r->f, r->rc, weft_blocking_run(cx, &r->job, job_fn, NULL));
    WEFT_RETURN(&r->f, r->rc == 9 ? 0 : r->rc);
    WEFT_END(&r->f);
}

/* ---- the sweep --------------------------------------------------------------- */

/* Run the workload once: 0, or the first error it met. */
static int workload(void)
{
    weft_runtime *rt = NULL;
    weft_runtime_opts o = { .threads = 2, .shutdown_grace_ms = 50 };
    int rc = weft_runtime_new(&rt, &o);
    if (rc < 0)
        return rc;
    struct root r = { .pfd = { -1, -1 }, .sock = -1, .sel = WEFT_SELECTOR_INIT };
    weft_task_desc d = { .poll = root_poll, .frame = &r, .frame_size = sizeof r,
                         .drop = root_drop, .name = "alloc-root" };
    weft_outcome out = { 0 };
    rc = weft_block_on(rt, &d, &out);
    cr_assert_eq(weft_runtime_free(rt), 0);
    if (rc < 0)
        return rc;
    cr_assert_eq(out.status, 0, "root status %d", out.status);
    return (int)out.value;
}

Test(alloc_faults, baseline_workload_succeeds)
{
    int fds = fd_count();
    cr_assert_eq(workload(), 0);
    cr_assert_eq(atomic_load(&spawned), atomic_load(&dropped));
    cr_assert_eq(fd_count(), fds);
    WEFT_ASSERT_NO_LEAKS();
}

Test(alloc_faults, every_allocation_fails_cleanly)
{
    int fds = fd_count(), failed = 0, absorbed = 0;
    long n;
    for (n = 1; n < 2000; n++) {
        weft__alloc_fail_after(n);
        int rc = workload();
        long pending = weft__alloc_fail_pending();
        weft__alloc_fail_after(0);
        cr_assert(rc == 0 || rc == -ENOMEM, "allocation %ld: workload returned %d (%s)", n, rc,
                  weft_strerror(rc));
        cr_assert_eq(atomic_load(&spawned), atomic_load(&dropped),
                     "allocation %ld: %d tasks spawned, %d drop hooks", n,
                     atomic_load(&spawned), atomic_load(&dropped));
        cr_assert_eq(fd_count(), fds, "allocation %ld: fd leaked", n);
        if (pending > 0)
            break;      /* past the workload's last allocation */
        failed += rc == -ENOMEM;
        absorbed += rc == 0;
        cr_assert_eq(workload(), 0, "allocation %ld: weft unusable after the failure", n);
    }
    cr_assert_lt(n, 2000, "the sweep never got past the workload");
    cr_assert_gt(failed, 10, "only %d allocations failed the workload", failed);
    cr_log_info("%ld allocations: %d failed the workload with -ENOMEM, %d absorbed", n - 1,
                failed, absorbed);
    WEFT_ASSERT_NO_LEAKS();
}
