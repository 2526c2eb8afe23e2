/*
 * tests/core/test_misuse_sync.c - the calls of weft/sync.h, weft/blocking.h
 * and weft/sim.h misused: awaits called outside a task, NULL arguments,
 * empty handles, double drops and use after drop (send after drop). Each
 * must return the documented error (-EINVAL, -EPERM, -ESHUTDOWN, -EDEADLK,
 * ...) and never crash; a callback is never called.
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

/* ---- sync.h awaits outside a task ----------------------------------------------- */

/* Every weft_poll call with no task context answers -EINVAL at once. */
Test(misuse, sync_awaits_outside_a_task)
{
    uint64_t v;
    weft_oneshot_tx otx;
    weft_oneshot_rx orx;
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    weft_mpsc_permit permit = WEFT_MPSC_PERMIT_INIT;
    weft_mpsc_send_op op = WEFT_MPSC_SEND_OP_INIT;
    weft_notify n = WEFT_NOTIFY_INIT;
    weft_notify_waiter nw = WEFT_NOTIFY_WAITER_INIT;
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_mutex_waiter mw = WEFT_MUTEX_WAITER_INIT;
    weft_rwlock rw = WEFT_RWLOCK_INIT;
    weft_rwlock_waiter rww = WEFT_RWLOCK_WAITER_INIT;
    weft_semaphore s = WEFT_SEMAPHORE_INIT(1);
    weft_semaphore_waiter sw = WEFT_SEMAPHORE_WAITER_INIT;
    weft_barrier b = WEFT_BARRIER_INIT(2);
    weft_barrier_waiter bw = WEFT_BARRIER_WAITER_INIT;
    weft_waitgroup wg = WEFT_WAITGROUP_INIT;
    weft_waitgroup_waiter ww = WEFT_WAITGROUP_WAITER_INIT;
    weft_broadcast_tx btx;
    weft_broadcast_rx brx;
    weft_watch_tx wtx;
    weft_watch_rx wrx;
    cr_assert_eq(weft_oneshot_new(&otx, &orx), 0);
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    cr_assert_eq(weft_broadcast_new(&btx, &brx, 1), 0);
    cr_assert_eq(weft_watch_new(&wtx, &wrx, 0), 0);
    cr_assert_eq(weft_oneshot_recv(NULL, &orx, &v), -EINVAL);
    cr_assert_eq(weft_mpsc_reserve(NULL, &tx, &permit), -EINVAL);
    cr_assert_eq(weft_mpsc_send(NULL, &tx, &op, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_recv(NULL, &rx, &v), -EINVAL);
    cr_assert_eq(weft_notify_wait(NULL, &n, &nw), -EINVAL);
    cr_assert_eq(weft_mutex_lock(NULL, &m, &mw), -EINVAL);
    cr_assert_eq(weft_rwlock_read(NULL, &rw, &rww), -EINVAL);
    cr_assert_eq(weft_rwlock_write(NULL, &rw, &rww), -EINVAL);
    cr_assert_eq(weft_semaphore_acquire(NULL, &s, &sw, 1), -EINVAL);
    cr_assert_eq(weft_barrier_wait(NULL, &b, &bw), -EINVAL);
    cr_assert_eq(weft_waitgroup_wait(NULL, &wg, &ww), -EINVAL);
    cr_assert_eq(weft_broadcast_recv(NULL, &brx, &v), -EINVAL);
    cr_assert_eq(weft_watch_changed(NULL, &wrx, &v), -EINVAL);
    /* Nothing was consumed or left queued by the refused calls. */
    cr_assert_eq(weft_mutex_destroy(&m), 0);
    cr_assert_eq(weft_barrier_destroy(&b), 0);
    cr_assert_eq(weft_notify_destroy(&n), 0);
    cr_assert_eq(weft_oneshot_tx_drop(&otx), 0);
    cr_assert_eq(weft_oneshot_rx_drop(&orx), 0);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    cr_assert_eq(weft_broadcast_tx_drop(&btx), 0);
    cr_assert_eq(weft_broadcast_rx_drop(&brx), 0);
    cr_assert_eq(weft_watch_tx_drop(&wtx), 0);
    cr_assert_eq(weft_watch_rx_drop(&wrx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- sync.h: NULL, empty handles, double drops, use after drop ---------------- */

Test(misuse, oneshot_handles)
{
    weft_oneshot_tx tx, empty_tx = { 0 };
    weft_oneshot_rx rx, empty_rx = { 0 };
    uint64_t v;
    cr_assert_eq(weft_oneshot_new(NULL, &rx), -EINVAL);
    cr_assert_eq(weft_oneshot_new(&tx, NULL), -EINVAL);
    cr_assert_eq(weft_oneshot_send(NULL, 1), -EINVAL);
    cr_assert_eq(weft_oneshot_send(&empty_tx, 1), -EINVAL);
    cr_assert_eq(weft_oneshot_tx_drop(NULL), -EINVAL);
    cr_assert(weft_oneshot_tx_is_closed(NULL));
    cr_assert(weft_oneshot_tx_is_closed(&empty_tx));
    cr_assert_eq(weft_oneshot_try_recv(NULL, &v), -EINVAL);
    cr_assert_eq(weft_oneshot_try_recv(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_oneshot_recv_blocking(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_oneshot_rx_close(NULL), -EINVAL);
    cr_assert_eq(weft_oneshot_rx_drop(&empty_rx), -EINVAL);

    cr_assert_eq(weft_oneshot_new(&tx, &rx), 0);
    cr_assert_eq(weft_oneshot_try_recv(&rx, NULL), -EINVAL);
    cr_assert_eq(weft_oneshot_send(&tx, 1), 0);
    cr_assert_eq(weft_oneshot_send(&tx, 2), -EINVAL, "send after the sender was used");
    cr_assert_eq(weft_oneshot_tx_drop(&tx), -EINVAL, "drop after send");
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), 0);
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), -EPIPE, "received twice");
    cr_assert_eq(weft_oneshot_rx_drop(&rx), 0);
    cr_assert_eq(weft_oneshot_rx_drop(&rx), -EINVAL, "double drop");
    cr_assert_eq(weft_oneshot_try_recv(&rx, &v), -EINVAL, "recv after drop");
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, mpsc_handles)
{
    weft_mpsc_tx tx, tx2, empty = { 0 };
    weft_mpsc_rx rx, empty_rx = { 0 };
    weft_mpsc_permit p = WEFT_MPSC_PERMIT_INIT;
    uint64_t v;
    cr_assert_eq(weft_mpsc_new(NULL, &rx, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_new(&tx, NULL, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 0), -EINVAL);
    int big = weft_mpsc_new(&tx, &rx, SIZE_MAX);
    cr_assert(big == -EINVAL || big == -ENOMEM, "capacity SIZE_MAX: %d", big);
    cr_assert_eq(weft_mpsc_tx_clone(&tx2, &empty), -EINVAL);
    cr_assert_eq(weft_mpsc_tx_clone(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_tx_drop(NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_tx_drop(&empty), -EINVAL);
    cr_assert(weft_mpsc_tx_is_closed(&empty));
    cr_assert_eq(weft_mpsc_try_reserve(&empty, &p), -EINVAL);
    cr_assert_eq(weft_mpsc_try_reserve(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_permit_send(&p, 1), -EINVAL, "no permit held");
    cr_assert_eq(weft_mpsc_permit_send(NULL, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_permit_release(&p), -EINVAL);
    cr_assert_eq(weft_mpsc_permit_release(NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_try_send(&empty, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_send_blocking(&empty, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_try_recv(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_mpsc_recv_blocking(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_mpsc_rx_close(&empty_rx), -EINVAL);
    cr_assert_eq(weft_mpsc_rx_drop(&empty_rx), -EINVAL);
    cr_assert_eq(weft_mpsc_rx_drop(NULL), -EINVAL);

    cr_assert_eq(weft_mpsc_new(&tx, &rx, 1), 0);
    cr_assert_eq(weft_mpsc_try_reserve(&tx, &p), 0);
    cr_assert_eq(weft_mpsc_try_reserve(&tx, &p), -EINVAL, "a second reserve into a held permit");
    cr_assert_eq(weft_mpsc_permit_send(&p, 1), 0);
    cr_assert_eq(weft_mpsc_permit_send(&p, 2), -EINVAL, "permit used twice");
    cr_assert_eq(weft_mpsc_try_recv(&rx, NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), -EINVAL, "double drop");
    cr_assert_eq(weft_mpsc_try_send(&tx, 3), -EINVAL, "send after drop");
    cr_assert_eq(weft_mpsc_try_recv(&rx, &v), 0);
    cr_assert_eq(v, 1);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), -EINVAL, "double drop");
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, mpsc_unbounded_handles)
{
    weft_mpsc_unbounded_tx tx, tx2, empty = { 0 };
    weft_mpsc_rx rx;
    cr_assert_eq(weft_mpsc_unbounded_new(NULL, &rx), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_new(&tx, NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_tx_clone(&tx2, &empty), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_tx_clone(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(NULL), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&empty), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_send(NULL, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_send(&empty, 1), -EINVAL);
    cr_assert_eq(weft_mpsc_unbounded_new(&tx, &rx), 0);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_unbounded_tx_drop(&tx), -EINVAL, "double drop");
    cr_assert_eq(weft_mpsc_unbounded_send(&tx, 1), -EINVAL, "send after drop");
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, notify_mutex_rwlock)
{
    weft_notify n;
    weft_mutex m;
    weft_rwlock rw;
    cr_assert_eq(weft_notify_init(NULL), -EINVAL);
    cr_assert_eq(weft_notify_destroy(NULL), -EINVAL);
    cr_assert_lt(weft_notify_one(NULL), 0);
    cr_assert_lt(weft_notify_all(NULL), 0);
    cr_assert_eq(weft_notify_init(&n), 0);
    cr_assert_eq(weft_notify_destroy(&n), 0);

    cr_assert_eq(weft_mutex_init(NULL), -EINVAL);
    cr_assert_eq(weft_mutex_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_mutex_try_lock(NULL), -EINVAL);
    cr_assert_eq(weft_mutex_unlock(NULL), -EINVAL);
    cr_assert_not(weft_mutex_is_locked(NULL));
    cr_assert_eq(weft_mutex_init(&m), 0);
    cr_assert_eq(weft_mutex_unlock(&m), -EPERM, "unlock when not held");
    cr_assert_eq(weft_mutex_try_lock(&m), 0);
    cr_assert_eq(weft_mutex_try_lock(&m), -EAGAIN, "not recursive");
    cr_assert_eq(weft_mutex_destroy(&m), -EBUSY);
    cr_assert_eq(weft_mutex_unlock(&m), 0);
    cr_assert_eq(weft_mutex_unlock(&m), -EPERM, "double unlock");
    cr_assert_eq(weft_mutex_destroy(&m), 0);

    cr_assert_eq(weft_rwlock_init(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_try_read(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_try_write(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_read_unlock(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_write_unlock(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_downgrade(NULL), -EINVAL);
    cr_assert_eq(weft_rwlock_init(&rw), 0);
    cr_assert_eq(weft_rwlock_read_unlock(&rw), -EPERM);
    cr_assert_eq(weft_rwlock_write_unlock(&rw), -EPERM);
    cr_assert_eq(weft_rwlock_downgrade(&rw), -EPERM);
    cr_assert_eq(weft_rwlock_try_read(&rw), 0);
    cr_assert_eq(weft_rwlock_write_unlock(&rw), -EPERM, "write unlock of a read hold");
    cr_assert_eq(weft_rwlock_downgrade(&rw), -EPERM);
    cr_assert_eq(weft_rwlock_destroy(&rw), -EBUSY);
    cr_assert_eq(weft_rwlock_read_unlock(&rw), 0);
    cr_assert_eq(weft_rwlock_read_unlock(&rw), -EPERM, "double read unlock");
    cr_assert_eq(weft_rwlock_destroy(&rw), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, semaphore_barrier_waitgroup)
{
    weft_semaphore s;
    weft_barrier b;
    weft_waitgroup wg;
    cr_assert_eq(weft_semaphore_init(NULL, 1), -EINVAL);
    cr_assert_eq(weft_semaphore_init(&s, WEFT_SEMAPHORE_MAX_PERMITS + 1), -EINVAL);
    cr_assert_eq(weft_semaphore_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_semaphore_try_acquire(NULL, 1), -EINVAL);
    cr_assert_eq(weft_semaphore_release(NULL, 1), -EINVAL);
    cr_assert_eq(weft_semaphore_close(NULL), -EINVAL);
    cr_assert_eq(weft_semaphore_available(NULL), -EINVAL);
    cr_assert(weft_semaphore_is_closed(NULL));
    cr_assert_eq(weft_semaphore_init(&s, 1), 0);
    cr_assert_eq(weft_semaphore_try_acquire(&s, 0), -EINVAL);
    cr_assert_eq(weft_semaphore_try_acquire(&s, WEFT_SEMAPHORE_MAX_PERMITS + 1), -EINVAL);
    cr_assert_eq(weft_semaphore_release(&s, WEFT_SEMAPHORE_MAX_PERMITS), -EOVERFLOW);
    cr_assert_eq(weft_semaphore_available(&s), 1, "a refused release added nothing");
    cr_assert_eq(weft_semaphore_close(&s), 0);
    cr_assert_eq(weft_semaphore_close(&s), 0, "idempotent");
    cr_assert_eq(weft_semaphore_try_acquire(&s, 1), -EPIPE);
    cr_assert_eq(weft_semaphore_destroy(&s), 0);

    cr_assert_eq(weft_barrier_init(NULL, 1), -EINVAL);
    cr_assert_eq(weft_barrier_init(&b, 0), -EINVAL);
    cr_assert_eq(weft_barrier_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_barrier_init(&b, 1), 0);
    cr_assert_eq(weft_barrier_destroy(&b), 0);

    cr_assert_eq(weft_waitgroup_init(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_add(NULL, 1), -EINVAL);
    cr_assert_eq(weft_waitgroup_done(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_count(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_wait_blocking(NULL), -EINVAL);
    cr_assert_eq(weft_waitgroup_init(&wg), 0);
    cr_assert_eq(weft_waitgroup_done(&wg), -EPERM, "done below zero");
    cr_assert_eq(weft_waitgroup_add(&wg, UINT64_MAX), -EOVERFLOW);
    cr_assert_eq(weft_waitgroup_count(&wg), 0);
    cr_assert_eq(weft_waitgroup_wait_blocking(&wg), 0, "count 0: returns at once");
    cr_assert_eq(weft_waitgroup_destroy(&wg), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, broadcast_handles)
{
    weft_broadcast_tx tx, tx2, empty = { 0 };
    weft_broadcast_rx rx, rx2, empty_rx = { 0 };
    uint64_t v;
    cr_assert_eq(weft_broadcast_new(NULL, &rx, 1), -EINVAL);
    cr_assert_eq(weft_broadcast_new(&tx, NULL, 1), -EINVAL);
    cr_assert_eq(weft_broadcast_new(&tx, &rx, 0), -EINVAL);
    int big = weft_broadcast_new(&tx, &rx, SIZE_MAX);
    cr_assert(big == -EINVAL || big == -ENOMEM, "capacity SIZE_MAX: %d", big);
    cr_assert_eq(weft_broadcast_tx_clone(&tx2, &empty), -EINVAL);
    cr_assert_eq(weft_broadcast_tx_clone(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_broadcast_tx_drop(&empty), -EINVAL);
    cr_assert_eq(weft_broadcast_tx_drop(NULL), -EINVAL);
    cr_assert_eq(weft_broadcast_subscribe(&empty, &rx2), -EINVAL);
    cr_assert_eq(weft_broadcast_subscribe(NULL, NULL), -EINVAL);
    cr_assert_lt(weft_broadcast_send(&empty, 1), 0);
    cr_assert_lt(weft_broadcast_send(NULL, 1), 0);
    cr_assert_eq(weft_broadcast_try_recv(&empty_rx, &v), -EINVAL);
    cr_assert_eq(weft_broadcast_try_recv(NULL, &v), -EINVAL);
    cr_assert_eq(weft_broadcast_rx_drop(&empty_rx), -EINVAL);
    cr_assert_eq(weft_broadcast_rx_drop(NULL), -EINVAL);
    cr_assert_eq(weft_broadcast_new(&tx, &rx, 2), 0);
    cr_assert_eq(weft_broadcast_try_recv(&rx, NULL), -EINVAL);
    cr_assert_eq(weft_broadcast_tx_drop(&tx), 0);
    cr_assert_eq(weft_broadcast_tx_drop(&tx), -EINVAL, "double drop");
    cr_assert_lt(weft_broadcast_send(&tx, 1), 0, "send after drop");
    cr_assert_eq(weft_broadcast_rx_drop(&rx), 0);
    cr_assert_eq(weft_broadcast_rx_drop(&rx), -EINVAL, "double drop");
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse, watch_handles)
{
    weft_watch_tx tx, tx2, empty = { 0 };
    weft_watch_rx rx, rx2, empty_rx = { 0 };
    uint64_t v, ver;
    cr_assert_eq(weft_watch_new(NULL, &rx, 0), -EINVAL);
    cr_assert_eq(weft_watch_new(&tx, NULL, 0), -EINVAL);
    cr_assert_eq(weft_watch_tx_clone(&tx2, &empty), -EINVAL);
    cr_assert_eq(weft_watch_tx_clone(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_watch_tx_drop(&empty), -EINVAL);
    cr_assert_eq(weft_watch_tx_drop(NULL), -EINVAL);
    cr_assert_lt(weft_watch_send(&empty, 1), 0);
    cr_assert_lt(weft_watch_send(NULL, 1), 0);
    cr_assert_eq(weft_watch_subscribe(&empty, &rx2), -EINVAL);
    cr_assert_eq(weft_watch_subscribe(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_watch_rx_clone(&rx2, &empty_rx), -EINVAL);
    cr_assert_eq(weft_watch_rx_clone(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_watch_read(&empty_rx, &v, &ver), -EINVAL);
    cr_assert_eq(weft_watch_read(NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_watch_read_update(&empty_rx, &v, &ver), -EINVAL);
    cr_assert_eq(weft_watch_read_update(NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(weft_watch_has_changed(&empty_rx), -EINVAL);
    cr_assert_eq(weft_watch_has_changed(NULL), -EINVAL);
    cr_assert_eq(weft_watch_rx_drop(&empty_rx), -EINVAL);
    cr_assert_eq(weft_watch_rx_drop(NULL), -EINVAL);
    cr_assert_eq(weft_watch_new(&tx, &rx, 7), 0);
    cr_assert_eq(weft_watch_read(&rx, NULL, NULL), 0, "both outputs may be NULL");
    cr_assert_eq(weft_watch_tx_drop(&tx), 0);
    cr_assert_eq(weft_watch_tx_drop(&tx), -EINVAL, "double drop");
    cr_assert_lt(weft_watch_send(&tx, 1), 0, "send after drop");
    cr_assert_eq(weft_watch_rx_drop(&rx), 0);
    cr_assert_eq(weft_watch_rx_drop(&rx), -EINVAL, "double drop");
    cr_assert_eq(weft_watch_read(&rx, &v, &ver), -EINVAL, "read after drop");
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- blocking.h, sim.h -------------------------------------------------------- */

static int nop_job(void *arg)
{
    (void)arg;
    return 0;
}

Test(misuse, blocking_calls_bad_args)
{
    weft_blocking job = WEFT_BLOCKING_INIT;
    weft_join h = WEFT_JOIN_INIT;
    struct addrinfo *res = NULL;
    cr_assert_eq(weft_blocking_run(NULL, &job, nop_job, NULL), -EINVAL, "outside a task");
    cr_assert_not(weft_blocking_should_stop(), "false outside a pool thread");
    cr_assert_eq(weft_getaddrinfo(NULL, &job, "localhost", NULL, NULL, &res), -EINVAL);
    cr_assert_null(res);
    cr_assert_eq(weft_spawn_blocking(NULL, nop_job, NULL, &h), -EINVAL);
    weft_runtime *rt = rt_make(1, 0);
    cr_assert_eq(weft_spawn_blocking(rt, NULL, NULL, &h), -EINVAL);
    cr_assert_eq(weft_spawn_blocking(rt, nop_job, NULL, NULL), -EINVAL);
    cr_assert_null(h.weft_task);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(weft_spawn_blocking(rt, nop_job, NULL, &h), -ESHUTDOWN);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}

static int sim_check(void *arg, unsigned k, bool cancelled, int rc, const weft_outcome *out)
{
    (void)arg;
    (void)k;
    (void)cancelled;
    (void)rc;
    (void)out;
    return 0;
}

Test(misuse, sim_calls_bad_args)
{
    weft_runtime *rt = (weft_runtime *)0x1;
    weft_frame fr = { 0 };
    weft_task_desc d = DESC(count_poll, &fr, NULL, 0);
    weft_outcome out;
    weft_sim_sweep sw = { .check = NULL };
    weft_sim_sweep_result res;
    cr_assert_eq(weft_sim_runtime_new(NULL, NULL), -EINVAL);
    cr_assert_not(weft_sim_active(NULL));
    cr_assert_eq(weft_sim_schedule(NULL), 0);
    cr_assert_eq(weft_sim_steps(NULL), 0);
    cr_assert_eq(weft_sim_now(NULL), 0);
    cr_assert_eq(weft_sim_run(NULL, NULL, &out, NULL), -EINVAL);
    cr_assert_eq(weft_sim_sweep_cancel(NULL, &d, &res), -EINVAL);
    cr_assert_eq(weft_sim_sweep_cancel(&sw, &d, &res), -EINVAL, "no check function");
    sw.check = sim_check;
    cr_assert_eq(weft_sim_sweep_cancel(&sw, NULL, &res), -EINVAL);
    weft_sim_opts o = { .pct_depth = WEFT_SIM_MAX_PCT_DEPTH + 1 };
    cr_assert_lt(weft_sim_runtime_new(&rt, &o), 0, "pct depth above the maximum");
    cr_assert_eq(rt, (weft_runtime *)0x1, "out untouched on failure");
    cr_assert_eq(atomic_load(&polled), 0);
    WEFT_ASSERT_NO_LEAKS();
}
