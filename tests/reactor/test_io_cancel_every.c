/*
 * tests/reactor/test_io_cancel_every.c - withdrawing I/O operations (weft/io.h,
 * reactor/op.c), one kind at a time. For every blocking operation - accept,
 * recv, send on a full (Unix stream) socket, connect to a full backlog, read
 * of an empty pipe, openat of a FIFO with no writer, sleep, recv_exact and
 * send_all - every way to stop it: abort and token (cooperative: the await
 * yields -ECANCELED), a relative and an absolute deadline (-ETIMEDOUT, never
 * early), and tear-down of a WEFT_TASK_CANCEL_SAFE task by abort or token.
 * Each time the join outcome, the drop hook (exactly once), the resource
 * (nothing consumed or sent by a cancelled operation) and the fd count are
 * checked. Then runtime shutdown with many operations of every kind in
 * flight, and with completions racing the shutdown.
 *
 * The races on a single operation are in test_io_cancel_race.c, several
 * operations per task and the other cases in test_io_cancel_many.c; the
 * shared machinery (the blocker task, the fixtures) is in io_cancel_test.h.
 *
 * "In flight" is seen, not guessed: an operation is stopped once the kernel
 * shows it waiting (io_test.h, "what the kernel holds"), never after a sleep.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "io_cancel_test.h"

/* ---- one blocked operation, stopped one way ----------------------------------------- */

static void stop_one(weft_runtime *rt, int kind, int how)
{
    char what[64];
    snprintf(what, sizeof what, "%s/%s", kind_name[kind], how_name[how]);
    struct fixture fx;
    fixture_up(&fx, kind);
    int fds0 = iot_fd_count();
    static flag started, armed;
    flag_set(&started, 0);
    flag_set(&armed, 0);
    struct bres res = { 0 };
    struct blocker b = { .kind = kind, .how = how, .fd = fx.a, .path = fx.fifo,
                         .started = &started, .armed = &armed, .res = &res,
                         .x = WEFT_XFER_INIT, .sl = WEFT_SLEEP_INIT };
    if (kind == K_CONNECT) {
        socklen_t l = sizeof b.sa;
        cr_assert_eq(getsockname(fx.listener, (struct sockaddr *)&b.sa, &l), 0);
    }
    weft_token *tok = NULL;
    cr_assert_eq(weft_token_new(&tok), 0);
    bool safe = how == H_SAFE_ABORT || how == H_SAFE_TOKEN;
    bool by_token = how == H_TOKEN || how == H_SAFE_TOKEN;
    bool by_time = how == H_TIMEOUT || how == H_DEADLINE;
    weft_task_desc d = { .poll = blocker_poll, .frame = &b, .frame_size = sizeof b,
                         .drop = iot_count_drop, .flags = safe ? WEFT_TASK_CANCEL_SAFE : 0,
                         .tokens = &tok, .ntokens = by_token ? 1 : 0 };
    int drops0 = atomic_load(&iot_drops);
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&started, 1);
    if (!by_time) {
        /* Stop it only once it waits in the kernel: what is under test is
         * the withdrawal of an operation in flight. (A deadline needs no
         * help; it may even withdraw the operation before it starts, if the
         * task was descheduled for TMO right here.) */
        flag_wait_ge(&armed, 1);
        int one[K_COUNT] = { 0 };
        one[kind] = 1;
        wait_in_kernel(one, what);
    }
    if (how == H_ABORT || how == H_SAFE_ABORT)
        cr_assert_eq(weft_abort(&h), 0, "%s", what);
    else if (by_token)
        cr_assert_eq(weft_token_cancel(tok), 0, "%s", what);
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0, "%s", what);
    cr_assert_eq(atomic_load(&iot_drops), drops0 + 1, "%s: drop hook ran %d times", what,
                 atomic_load(&iot_drops) - drops0);
    weft_cancel_source src = by_token ? WEFT_CANCEL_TOKEN
                           : by_time ? WEFT_CANCEL_NONE : WEFT_CANCEL_ABORT;
    cr_assert_eq(out.cancel.source, src, "%s: source %d", what, out.cancel.source);
    if (safe) {
        cr_assert_eq(out.status, -ECANCELED, "%s: status %d", what, out.status);
        cr_assert_not(res.ended, "%s: a torn-down task was resumed", what);
    } else {
        cr_assert_eq(out.status, 0, "%s", what);
        cr_assert(res.ended);
        weft_poll want = by_time ? -ETIMEDOUT : -ECANCELED;
        /* expect, not assert: a wrong result must not hide the other checks */
        cr_expect_eq(out.value, want, "%s: the await yielded %lld (%s), not %lld", what,
                     (long long)out.value, weft_strerror((int)out.value), (long long)want);
        if (by_time)
            cr_assert_geq(res.elapsed, TMO, "%s: deadline fired early (%llu ns)", what,
                          (unsigned long long)res.elapsed);
        else
            cr_assert_not_null(out.cancel.delivered_at, "%s", what);
    }
    check_resource(&fx, kind, !safe, out.value, &res, what);
    /* check_resource closed the task's end of a send / send_all pair */
    int closed = (kind == K_SEND || kind == K_SEND_ALL) ? 1 : 0;
    cr_assert_eq(iot_fd_count(), fds0 - closed, "%s: fd count %d, was %d", what,
                 iot_fd_count(), fds0);
    weft_token_release(tok);
    fixture_down(&fx);
}

static void stop_every_way(int kind)
{
    int fds0 = iot_fd_count();
    weft_runtime *rt = make(2);
    for (int how = 0; how < H_COUNT; how++) {
        if (kind == K_SLEEP && (how == H_TIMEOUT || how == H_DEADLINE))
            continue;           /* a sleep has no I/O deadline */
        stop_one(rt, kind, how);
    }
    cr_assert_eq(weft_runtime_free(rt), 0);
    cr_assert_eq(iot_fd_count(), fds0, "fd count %d, was %d", iot_fd_count(), fds0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(io_cancel, accept_every_way) { stop_every_way(K_ACCEPT); }
Test(io_cancel, recv_every_way) { stop_every_way(K_RECV); }
Test(io_cancel, send_on_full_socket_every_way) { stop_every_way(K_SEND); }
Test(io_cancel, connect_to_full_backlog_every_way) { stop_every_way(K_CONNECT); }
Test(io_cancel, read_of_empty_pipe_every_way) { stop_every_way(K_READ); }
Test(io_cancel, openat_of_fifo_every_way) { stop_every_way(K_OPENAT); }
Test(io_cancel, sleep_every_way) { stop_every_way(K_SLEEP); }
Test(io_cancel, recv_exact_every_way_reports_progress) { stop_every_way(K_RECV_EXACT); }
Test(io_cancel, send_all_every_way_reports_progress) { stop_every_way(K_SEND_ALL); }

/* ---- runtime shutdown with operations in flight ---------------------------------------- */

Test(io_cancel, shutdown_with_every_kind_in_flight_leaks_nothing)
{
    int fds0 = iot_fd_count();
    weft_runtime *rt = make(2);
    enum { PER = 5 };           /* flag sets: cooperative, safe, detached x2, shielded */
    struct fixture fx[K_COUNT];
    for (int k = 0; k < K_COUNT; k++)
        fixture_up(&fx[k], k);
    int extra[K_COUNT * PER];   /* connect: one socket per task */
    int nextra = 0;
    static flag started, armed;
    flag_set(&started, 0);
    flag_set(&armed, 0);
    static struct bres res[K_COUNT * PER];
    memset(res, 0, sizeof res);
    weft_join h[K_COUNT * PER];
    bool joinable[K_COUNT * PER];
    int n = 0;
    for (int k = 0; k < K_COUNT; k++) {
        for (int j = 0; j < PER; j++, n++) {
            struct blocker b = { .kind = k, .how = -1, .fd = fx[k].a, .path = fx[k].fifo,
                                 .started = &started, .armed = &armed, .res = &res[n],
                                 .x = WEFT_XFER_INIT, .sl = WEFT_SLEEP_INIT };
            if (k == K_CONNECT) {
                socklen_t l = sizeof b.sa;
                cr_assert_eq(getsockname(fx[k].listener, (struct sockaddr *)&b.sa, &l), 0);
                b.fd = extra[nextra++] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            }
            static const unsigned flags[PER] = { 0, WEFT_TASK_CANCEL_SAFE, 0,
                                                 WEFT_TASK_CANCEL_SAFE, WEFT_TASK_SHIELDED };
            weft_task_desc d = { .poll = blocker_poll, .frame = &b, .frame_size = sizeof b,
                                 .drop = iot_count_drop, .flags = flags[j] };
            joinable[n] = j != 2 && j != 3;
            if (joinable[n])
                cr_assert_eq(weft_spawn(rt, &d, &h[n]), 0);
            else
                cr_assert_eq(weft_spawn_detached(rt, &d), 0);
        }
    }
    /* shut down with every operation waiting in the kernel */
    flag_wait_ge(&armed, (uint32_t)n);
    int per_kind[K_COUNT];
    for (int k = 0; k < K_COUNT; k++)
        per_kind[k] = PER;
    wait_in_kernel(per_kind, "before the shutdown");
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(atomic_load(&iot_drops), n, "drop hooks: %d of %d", atomic_load(&iot_drops), n);
    for (int i = 0; i < n; i++) {
        if (!joinable[i])
            continue;
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        int kind = i / PER;
        cr_assert_eq(out.cancel.source, WEFT_CANCEL_SHUTDOWN, "%s", kind_name[kind]);
        /* a cooperative await yields -ECANCELED; openat's wrong errno is the
         * subject of openat_of_fifo_every_way, not of this test */
        cr_assert(out.status == -ECANCELED || out.value == -ECANCELED
                  || (kind == K_OPENAT && out.value < 0),
                  "%s: status %d value %lld", kind_name[kind], out.status,
                  (long long)out.value);
    }
    cr_assert_eq(weft_runtime_free(rt), 0);
    for (int k = 0; k < K_COUNT; k++)
        fixture_down(&fx[k]);
    for (int i = 0; i < nextra; i++)
        close(extra[i]);
    cr_assert_eq(iot_fd_count(), fds0, "fd count %d, was %d", iot_fd_count(), fds0);
    WEFT_ASSERT_NO_LEAKS();
}

struct racer {
    struct sockaddr_in sa;
    int peer;                   /* send on this while shutdown runs */
    int clients[32];
    int nclients;
    flag go;
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    flag_wait_ge(&r->go, 1);
    for (int i = 0; i < 32; i++) {
        int c = iot_connect(&r->sa);
        if (c >= 0)
            r->clients[r->nclients++] = c;
        send(r->peer, "x", 1, MSG_NOSIGNAL);
    }
    return NULL;
}

/* Accepts and recvs complete while the runtime shuts down: each accepted fd
 * is closed by its task or by weft, so the fd count returns to baseline. */
Test(io_cancel, shutdown_racing_completions_leaks_no_fd)
{
    int fds0 = iot_fd_count();
    int completed = 0;
    for (int round = 0; round < 12; round++) {
        weft_runtime *rt = make(2);
        struct racer r = { 0 };
        int l = iot_listen(64, &r.sa);
        cr_assert_geq(l, 0);
        int srv = -1;
        cr_assert_eq(iot_tcp_pair(&srv, &r.peer), 0);
        static flag started;
        atomic_store(&started.v, 0);
        static struct bres res[48];
        weft_join h[48];
        for (int i = 0; i < 48; i++) {
            bool acc = i % 3 != 0;
            struct blocker b = { .kind = acc ? K_ACCEPT : K_RECV, .how = -1,
                                 .fd = acc ? l : srv, .started = &started, .res = &res[i] };
            weft_task_desc d = { .poll = blocker_poll, .frame = &b, .frame_size = sizeof b,
                                 .drop = iot_count_drop,
                                 .flags = i % 2 ? WEFT_TASK_CANCEL_SAFE : 0 };
            if (i % 5 == 4)
                cr_assert_eq(weft_spawn_detached(rt, &d), 0);
            else
                cr_assert_eq(weft_spawn(rt, &d, &h[i]), 0);
        }
        memset(res, 0, sizeof res);
        flag_wait_ge(&started, 48);
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, racer_main, &r), 0);
        flag_add(&r.go, 1);
        iot_spin((unsigned)round * 30000);
        cr_assert_eq(weft_runtime_shutdown(rt), 0);
        pthread_join(th, NULL);
        for (int i = 0; i < 48; i++) {
            if (i % 5 == 4)
                continue;
            weft_outcome out;
            cr_assert_eq(weft_join_wait(&h[i], &out), 0);
        }
        cr_assert_eq(atomic_load(&iot_drops), 48);
        for (int i = 0; i < 48; i++)
            completed += res[i].ended && res[i].rc >= 0;
        cr_assert_eq(weft_runtime_free(rt), 0);
        for (int i = 0; i < r.nclients; i++)
            close(r.clients[i]);
        close(l);
        close(srv);
        close(r.peer);
        cr_assert_eq(iot_fd_count(), fds0, "round %d: fd count %d, was %d", round,
                     iot_fd_count(), fds0);
    }
    cr_log_info("%d operations completed with a result during shutdown", completed);
    WEFT_ASSERT_NO_LEAKS();
}
