/*
 * tests/core/test_misuse_io.c - the calls of weft/io.h misused: called
 * outside a task, the synchronous helpers with bad arguments, and inside a
 * task NULL leaves, bad fds, and *_blocking calls (and join_wait, shutdown)
 * on a worker. Each must return the documented error (-EINVAL, -EPERM,
 * -ESHUTDOWN, -EDEADLK, ...) and never crash; a callback is never called.
 * One test per function or per small family, so a crash names its culprit.
 * The misuse tests are split over test_misuse_core.c, test_misuse_io.c and
 * test_misuse_sync.c; their shared helpers are in misuse_test.h.
 *
 * Not checked, because no API can detect them: using a runtime, group or
 * token after freeing or releasing it (the pointer is gone), and copies of a
 * handle (README: "copies of a handle are not tracked").
 */
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/stat.h>

#include "core_util.h"
#include "misuse_test.h"
#include "runtime/alloc.h"
#include "weft/sim.h"

TestSuite(misuse, .timeout = 60);

/* ---- io.h outside a task --------------------------------------------------------- */

Test(misuse, io_calls_outside_a_task)
{
    weft_io io = WEFT_IO_INIT;
    weft_xfer x = WEFT_XFER_INIT;
    char buf[4];
    struct iovec iov = { buf, sizeof buf };
    cr_assert_eq(weft_io_deadline(NULL, 1), -EINVAL);
    cr_assert_eq(weft_io_timeout(NULL, 1), -EINVAL);
    cr_assert_eq(weft_io_deadline(&io, 0), 0);
    cr_assert_eq(weft_socket(NULL, &io, AF_INET, SOCK_STREAM, 0), -EINVAL);
    cr_assert_eq(weft_accept(NULL, &io, 0, NULL, NULL, 0), -EINVAL);
    cr_assert_eq(weft_connect(NULL, &io, 0, NULL, 0), -EINVAL);
    cr_assert_eq(weft_recv(NULL, &io, 0, buf, 4, 0), -EINVAL);
    cr_assert_eq(weft_send(NULL, &io, 0, buf, 4, 0), -EINVAL);
    cr_assert_eq(weft_sendto(NULL, &io, 0, buf, 4, 0, NULL, 0), -EINVAL);
    cr_assert_eq(weft_recvfrom(NULL, &io, 0, buf, 4, 0, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_shutdown(NULL, &io, 0, SHUT_RDWR), -EINVAL);
    cr_assert_eq(weft_openat(NULL, &io, AT_FDCWD, "/", O_RDONLY, 0), -EINVAL);
    cr_assert_eq(weft_read(NULL, &io, 0, buf, 4, 0), -EINVAL);
    cr_assert_eq(weft_write(NULL, &io, 0, buf, 4, 0), -EINVAL);
    cr_assert_eq(weft_readv(NULL, &io, 0, &iov, 1, 0), -EINVAL);
    cr_assert_eq(weft_writev(NULL, &io, 0, &iov, 1, 0), -EINVAL);
    cr_assert_eq(weft_fsync(NULL, &io, 0, false), -EINVAL);
    cr_assert_eq(weft_statx(NULL, &io, AT_FDCWD, "/", 0, 0, NULL), -EINVAL);
    cr_assert_eq(WEFT_RELEASE_VALUE(weft_close(NULL, &io, 0)), -EINVAL);
    cr_assert_eq(weft_send_all(NULL, &x, 0, buf, 4), -EINVAL);
    cr_assert_eq(weft_recv_exact(NULL, &x, 0, buf, 4), -EINVAL);
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, io_sync_helpers_bad_args)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    cr_assert_eq(weft_tcp_listen(NULL, 0, 1), -EINVAL);
    cr_assert_lt(weft_tcp_listen((struct sockaddr *)&a, 1, 1), 0, "short address");
    cr_assert_lt(weft_local_port(-1), 0);
    cr_assert_lt(weft_local_port(INT_MAX), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- inside a task: NULL leaves, bad fds, blocking calls on a worker ------------ */

struct in_task {
    weft_frame f;
    unsigned i;
    uint32_t failed;            /* bit k: check k did not fail as it should */
    weft_io io;
    weft_xfer x;
    weft_poll rc;
    char buf[8];
    struct iovec iov;
    struct statx st;
    weft_group *g;
};

#define IN_TASK_NULL_CHECKS 24

/* Check k of the immediate ones: a NULL leaf or object, answered at once. */
static weft_poll null_leaf(weft_cx *cx, struct in_task *t, unsigned k)
{
    weft_outcome out;
    uint64_t v;
    static const weft_oneshot_rx empty_orx;
    static const weft_mpsc_rx empty_rx;
    static const weft_mpsc_tx empty_tx;
    weft_mpsc_permit permit = WEFT_MPSC_PERMIT_INIT;
    weft_mpsc_send_op op = WEFT_MPSC_SEND_OP_INIT;
    weft_oneshot_rx orx = empty_orx;
    weft_mpsc_rx rx = empty_rx;
    weft_mpsc_tx tx = empty_tx;
    weft_broadcast_rx brx = { 0 };
    weft_watch_rx wrx = { 0 };
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_notify n = WEFT_NOTIFY_INIT;
    if (k == 0) return weft_token_cancelled(cx, NULL, NULL);
    if (k == 1) return weft_sleep_until(cx, NULL, 0);
    if (k == 2) return weft_sleep_for(cx, NULL, 0);
    if (k == 3) return weft_select(cx, NULL, 1, no_branch, NULL);
    if (k == 4) return weft_select(cx, &(weft_selector)WEFT_SELECTOR_INIT, 0, no_branch, NULL);
    if (k == 5) return weft_select(cx, &(weft_selector)WEFT_SELECTOR_INIT, WEFT_SELECT_MAX + 1,
                                   no_branch, NULL);
    if (k == 6) return weft_group_join_next(cx, NULL, &out);
    if (k == 7) return weft_group_join_all(cx, NULL);
    if (k == 8) return (weft_group_shutdown)(cx, NULL);
    if (k == 9) return weft_socket(cx, NULL, AF_INET, SOCK_STREAM, 0);
    if (k == 10) return weft_recv(cx, NULL, 0, t->buf, 1, 0);
    if (k == 11) return weft_send_all(cx, NULL, 0, t->buf, 1);
    if (k == 12) return weft_oneshot_recv(cx, &orx, &v);
    if (k == 13) return weft_mpsc_reserve(cx, &tx, &permit);
    if (k == 14) return weft_mpsc_send(cx, &tx, &op, 1);
    if (k == 15) return weft_mpsc_recv(cx, &rx, &v);
    if (k == 16) return weft_notify_wait(cx, &n, NULL);
    if (k == 17) return weft_mutex_lock(cx, &m, NULL);
    if (k == 18) return weft_rwlock_read(cx, NULL, NULL);
    if (k == 19) return weft_rwlock_write(cx, NULL, NULL);
    if (k == 20) return weft_semaphore_acquire(cx, NULL, NULL, 1);
    if (k == 21) return weft_broadcast_recv(cx, &brx, &v);
    if (k == 22) return weft_watch_changed(cx, &wrx, &v);
    return weft_barrier_wait(cx, NULL, NULL);
}

/* Blocking calls on a worker thread refuse with -EDEADLK (or -EINVAL for an
 * empty handle, checked first by some). */
static int blocking_on_worker(unsigned k)
{
    weft_oneshot_tx otx;
    weft_oneshot_rx orx;
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    weft_waitgroup wg = WEFT_WAITGROUP_INIT;
    uint64_t v;
    int rc;
    if (k == 0) {
        if (weft_oneshot_new(&otx, &orx) < 0)
            return 0;
        rc = weft_oneshot_recv_blocking(&orx, &v);
        weft_oneshot_tx_drop(&otx);
        weft_oneshot_rx_drop(&orx);
        return rc;
    }
    if (k == 3) {
        weft_waitgroup_add(&wg, 1);
        return weft_waitgroup_wait_blocking(&wg);
    }
    if (weft_mpsc_new(&tx, &rx, 1) < 0 || weft_mpsc_try_send(&tx, 1) < 0)
        return 0;
    rc = k == 1 ? weft_mpsc_send_blocking(&tx, 2) : weft_mpsc_recv_blocking(&rx, &v);
    if (k == 2)     /* the queued value is there: drain it first */
        rc = weft_mpsc_recv_blocking(&rx, &v) == 0 ? weft_mpsc_recv_blocking(&rx, &v) : rc;
    weft_mpsc_tx_drop(&tx);
    weft_mpsc_rx_drop(&rx);
    return rc;
}

static weft_poll bad_fd_op(weft_cx *cx, struct in_task *t)
{
    unsigned k = t->i;
    t->iov = (struct iovec){ t->buf, sizeof t->buf };
    if (k == 0) return weft_recv(cx, &t->io, -1, t->buf, 1, 0);
    if (k == 1) return weft_send(cx, &t->io, -1, t->buf, 1, 0);
    if (k == 2) return weft_read(cx, &t->io, -1, t->buf, 1, 0);
    if (k == 3) return weft_write(cx, &t->io, -1, t->buf, 1, 0);
    if (k == 4) return weft_readv(cx, &t->io, -1, &t->iov, 1, 0);
    if (k == 5) return weft_writev(cx, &t->io, -1, &t->iov, 1, 0);
    if (k == 6) return weft_fsync(cx, &t->io, -1, true);
    if (k == 7) return weft_accept(cx, &t->io, -1, NULL, NULL, 0);
    if (k == 8) return weft_shutdown(cx, &t->io, -1, SHUT_RDWR);
    if (k == 9) return (weft_close)(cx, &t->io, -1);
    if (k == 10) return weft_statx(cx, &t->io, -1, "x", 0, 0, &t->st);
    if (k == 11) return weft_openat(cx, &t->io, AT_FDCWD, "/nonexistent/weft", O_RDONLY, 0);
    if (k == 12) return weft_sendto(cx, &t->io, -1, t->buf, 1, 0, NULL, 0);
    if (k == 13) return weft_recvfrom(cx, &t->io, -1, t->buf, 1, 0, NULL, NULL);
    return weft_recv_exact(cx, &t->x, -1, t->buf, 1);
}

#define BAD_FD_OPS 15

static weft_poll in_task_poll(weft_cx *cx, void *p)
{
    struct in_task *t = p;
    WEFT_BEGIN(&t->f);
    for (t->i = 0; t->i < IN_TASK_NULL_CHECKS; t->i++)
        if (null_leaf(cx, t, t->i) != -EINVAL)
            t->failed |= 1u << t->i;
    for (t->i = 0; t->i < 4; t->i++)
        if (blocking_on_worker(t->i) != -EDEADLK)
            t->failed |= 1u << (24 + t->i);
    {
        weft_join h = WEFT_JOIN_INIT;
        weft_outcome out;
        weft_frame fr = { 0 };
        weft_task_desc d = DESC(count_poll, &fr, NULL, 0);
        if (weft_spawn(weft_cx_runtime(cx), &d, &h) == 0) {
            t->failed |= (uint32_t)(weft_join_wait(&h, &out) != -EDEADLK) << 28;
            weft_detach(&h);
        }
        t->failed |= (uint32_t)(weft_runtime_shutdown(weft_cx_runtime(cx)) != -EDEADLK) << 29;
    }
    for (t->i = 0; t->i < BAD_FD_OPS; t->i++) {
        t->io = (weft_io)WEFT_IO_INIT;
        t->x = (weft_xfer)WEFT_XFER_INIT;
        WEFT_AWAIT(&t->f, t->rc, bad_fd_op(cx, t));
        if (t->rc >= 0)
            WEFT_RETURN(&t->f, 100 + t->i);
    }
    WEFT_RETURN(&t->f, t->failed);
    WEFT_END(&t->f);
}

Test(misuse, awaits_inside_a_task_reject_bad_args)
{
    weft_runtime *rt = rt_make(2, 0);
    struct in_task t = { 0 };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &DESC(in_task_poll, &t, NULL, 0), &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert(out.value < 100, "bad-fd operation %lld succeeded", (long long)out.value - 100);
    for (unsigned k = 0; k < 30; k++)
        cr_expect_eq(out.value >> k & 1, 0, "check %u accepted misuse (0-23: NULL leaf; 24-27: "
                     "*_blocking on a worker; 28: join_wait on a worker; 29: shutdown on a "
                     "worker)", k);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
