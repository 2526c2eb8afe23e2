/*
 * tests/reactor/test_signal.c - weft/signal.h: signals blocked before the
 * runtime starts are delivered to a task through weft_signal_wait (sent
 * with kill(2) to the process itself); a withdrawn wait consumes no
 * signal (an aborted waiter, then a second wait gets it), nor does a
 * cancel-safe one torn down as the signal arrives; a signal pending
 * before the wait is not lost; opening refuses signals that are not blocked
 * in the calling thread (the rule's usual mistake, caught on a worker).
 * Each test is its own process (Criterion forks), so masks do not leak
 * between tests. Handshakes, not sleeps: the abort comes once the read is
 * seen waiting in the kernel.
 */
#include <criterion/criterion.h>

#include "io_test.h"
#include "weft/signal.h"
#include "test_util.h"

TestSuite(signal, .timeout = 60);

static weft_signal sig;     /* shared: one task is aborted, another reads on */

static sigset_t usr_set(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    return set;
}

static weft_runtime *start(void)
{
    sigset_t set = usr_set();
    cr_assert_eq(weft_signal_block(&set), 0);       /* before the workers exist */
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = 2, .shutdown_grace_ms = 100 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    cr_assert_eq(weft_signal_open(&sig, &set), 0);
    return rt;
}

static void stop(weft_runtime *rt)
{
    cr_assert_eq(weft_signal_close(&sig), 0);
    cr_assert_eq(weft_signal_close(&sig), -EINVAL);
    cr_assert_eq(weft_runtime_free(rt), 0);
}

struct waiter {
    weft_frame f;
    weft_poll r;
};

static weft_poll waiter_poll(weft_cx *cx, void *p)
{
    struct waiter *w = p;
    WEFT_BEGIN(&w->f);
    WEFT_AWAIT(&w->f, w->r, weft_signal_wait(cx, &sig));
    WEFT_RETURN(&w->f, w->r);
    WEFT_END(&w->f);
}

static weft_poll wait_one(weft_runtime *rt)
{
    struct waiter w = { 0 };
    weft_outcome o;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(waiter_poll, &w), &o), 0);
    cr_assert_eq(o.status, 0);
    return o.value;
}

Test(signal, kill_to_self_wakes_the_waiting_task)
{
    weft_runtime *rt = start();
    struct waiter w = { 0 };
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(waiter_poll, &w), &h), 0);
    cr_assert(iot_wait_polls(IORING_OP_READ, 1), "the wait never reached the kernel");
    cr_assert_eq(kill(getpid(), SIGUSR1), 0);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert_eq(o.value, SIGUSR1);
    /* one pending before the wait starts is there for it */
    cr_assert_eq(kill(getpid(), SIGUSR2), 0);
    cr_assert_eq(wait_one(rt), SIGUSR2);
    stop(rt);
    WEFT_ASSERT_NO_LEAKS();
}

Test(signal, an_aborted_wait_consumes_no_signal)
{
    weft_runtime *rt = start();
    for (int round = 0; round < 10; round++) {
        struct waiter w = { 0 };
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(waiter_poll, &w), &h), 0);
        cr_assert(iot_wait_polls(IORING_OP_READ, 1), "the wait never reached the kernel");
        if (round % 2)
            cr_assert_eq(kill(getpid(), SIGUSR1), 0);  /* races with the abort */
        int ab = weft_abort(&h);
        cr_assert(ab == 0 || (ab == 1 && round % 2), "abort: %d", ab);   /* 1: it finished */
        weft_outcome o;
        cr_assert_eq(weft_join_wait(&h, &o), 0);
        if (round % 2 == 0) {
            cr_assert_eq(o.value, -ECANCELED);
            cr_assert_eq(kill(getpid(), SIGUSR1), 0);
        } else if (o.value == SIGUSR1) {
            continue;                   /* it was read first: reported, not lost */
        }
        cr_assert_eq(o.value, -ECANCELED);
        cr_assert_eq(wait_one(rt), SIGUSR1, "round %d: the signal was lost", round);
    }
    stop(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* A cancel-safe waiter torn down as its signal arrives: either it returned
 * the signal, or the signal is pending again for the next wait (weft raised
 * it again); never lost. */
Test(signal, a_torn_down_wait_loses_no_signal)
{
    weft_runtime *rt = start();
    int torn = 0;
    for (int round = 0; round < 20; round++) {
        struct waiter w = { 0 };
        weft_task_desc d = WEFT_TASK(waiter_poll, &w);
        d.flags = WEFT_TASK_CANCEL_SAFE;
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &d, &h), 0);
        cr_assert(iot_wait_polls(IORING_OP_READ, 1), "the wait never reached the kernel");
        cr_assert_eq(kill(getpid(), SIGUSR2), 0);
        int ab = weft_abort(&h);
        cr_assert(ab == 0 || ab == 1);
        weft_outcome o;
        cr_assert_eq(weft_join_wait(&h, &o), 0);
        if (o.status == 0 && o.value == SIGUSR2)
            continue;                           /* it returned the signal */
        cr_assert_eq(o.status, -ECANCELED);
        torn++;
        cr_assert_eq(wait_one(rt), SIGUSR2, "round %d: the signal was lost", round);
    }
    cr_log_info("%d of 20 waiters torn down", torn);
    stop(rt);
    WEFT_ASSERT_NO_LEAKS();
}

/* A task opening a signal the workers never blocked: refused. */
struct opener {
    weft_frame f;
};

static weft_poll opener_poll(weft_cx *cx, void *p)
{
    (void)cx;
    (void)p;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    weft_signal s = WEFT_SIGNAL_INIT;
    return weft_signal_open(&s, &set);
}

Test(signal, opening_a_signal_the_workers_do_not_block_is_refused)
{
    weft_runtime *rt = start();
    struct opener op = { { 0 } };
    weft_outcome o;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(opener_poll, &op), &o), 0);
    cr_assert_eq(o.value, -EINVAL);
    /* and an open one cannot be opened again */
    sigset_t set = usr_set();
    cr_assert_eq(weft_signal_open(&sig, &set), -EINVAL);
    stop(rt);
    WEFT_ASSERT_NO_LEAKS();
}
