/*
 * tests/reactor/test_io_cancel_many.c - withdrawing I/O operations (weft/io.h,
 * reactor/op.c), beyond one operation per task: a task waiting on several
 * operations at once (a select over a recv, a pipe read, a sleep and an
 * accept) withdrawn as a whole, alone and racing data; a socket that
 * completes after its task was torn down (closed by weft); a send withdrawn
 * half-way (it reports the bytes it sent, never -ECANCELED); and a task
 * polled on another worker while its operation is in flight on the first,
 * which that first worker's reap still wakes.
 *
 * The shared machinery (the blocker task, the fixtures) is in io_cancel_test.h.
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

/* ---- one task, several operations in flight (a select over four leaves) ---------------- */

struct mres {
    bool did[4];
    int64_t got[4];
    weft_poll rc;
    bool ended;
};

struct multi {
    weft_frame f;
    weft_selector sel;
    weft_io io[3];
    weft_sleep sl;
    int rfd, pfd, lfd;          /* lfd < 0: no accept branch */
    unsigned char rbuf[8], pbuf[8];
    flag *started;              /* bumped just before the select */
    flag *armed;                /* bumped once it first waits */
    bool was_armed;
    struct mres *res;
    weft_poll rc;
};

static weft_poll multi_branch(weft_cx *cx, void *frame, unsigned i)
{
    struct multi *m = frame;
    if (i == 0)
        return weft_recv(cx, &m->io[0], m->rfd, m->rbuf, sizeof m->rbuf, 0);
    if (i == 1)
        return weft_read(cx, &m->io[1], m->pfd, m->pbuf, sizeof m->pbuf, -1);
    if (i == 2)
        return weft_sleep_for(cx, &m->sl, IOT_HOUR);
    return weft_accept(cx, &m->io[2], m->lfd, NULL, NULL, 0);
}

/* The select, saying once that it waits: it polled every branch, so each
 * operation has been submitted and the sleep armed. */
static weft_poll multi_select(weft_cx *cx, struct multi *m)
{
    weft_poll r = weft_select(cx, &m->sel, m->lfd >= 0 ? 4 : 3, multi_branch, m);
    if (r == WEFT_PENDING && !m->was_armed) {
        m->was_armed = true;
        flag_add(m->armed, 1);
    }
    return r;
}

static weft_poll multi_poll(weft_cx *cx, void *p)
{
    struct multi *m = p;
    WEFT_BEGIN(&m->f);
    flag_add(m->started, 1);
    WEFT_AWAIT(&m->f, m->rc, multi_select(cx, m));
    if (!m->was_armed)
        flag_add(m->armed, 1);  /* it never waited: do not leave the test waiting */
    for (unsigned i = 0; i < 4; i++)
        m->res->did[i] = weft_select_outcome(&m->sel, i, &m->res->got[i]);
    if (m->res->did[3] && m->res->got[3] >= 0)
        close((int)m->res->got[3]);
    m->res->rc = m->rc;
    m->res->ended = true;
    WEFT_RETURN(&m->f, m->rc);
    WEFT_END(&m->f);
}

/* What is still queued in a pipe, read without blocking. */
static long pipe_drain(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    unsigned char tmp[64];
    long n = 0;
    ssize_t r;
    while ((r = read(fd, tmp, sizeof tmp)) > 0)
        n += r;
    fcntl(fd, F_SETFL, fl);
    return n;
}

/* Abort, token or tear-down of a task waiting on a recv, a pipe read, a sleep
 * and (when nobody connects) an accept: every operation is withdrawn, nothing
 * is consumed that was not reported; with data racing the abort, a branch
 * that completed reports exactly what it took. */
static void several_in_flight(int how, bool race, int rounds)
{
    weft_runtime *rt = make(2);
    int srv, cli, p[2];
    cr_assert_eq(iot_tcp_pair(&srv, &cli), 0);
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    struct sockaddr_in sa;
    int l = iot_listen(4, &sa);
    cr_assert_geq(l, 0);
    int fds0 = iot_fd_count();
    static flag started, armed;
    flag_set(&started, 0);
    flag_set(&armed, 0);
    uint32_t seed = 99;
    bool safe = how == H_SAFE_ABORT || how == H_SAFE_TOKEN;
    bool by_token = how == H_TOKEN || how == H_SAFE_TOKEN;
    for (int i = 0; i < rounds; i++) {
        struct mres res = { 0 };
        struct multi m = { .sel = WEFT_SELECTOR_INIT, .sl = WEFT_SLEEP_INIT, .rfd = srv,
                           .pfd = p[0], .lfd = race ? -1 : l, .started = &started,
                           .armed = &armed, .res = &res };
        weft_token *tok = NULL;
        cr_assert_eq(weft_token_new(&tok), 0);
        weft_task_desc d = { .poll = multi_poll, .frame = &m, .frame_size = sizeof m,
                             .drop = iot_count_drop, .flags = safe ? WEFT_TASK_CANCEL_SAFE : 0,
                             .tokens = &tok, .ntokens = by_token ? 1 : 0 };
        int drops0 = atomic_load(&iot_drops);
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &d, &h), 0);
        flag_wait_ge(&started, (uint32_t)i + 1);
        seed = seed * 1103515245u + 12345u;
        if (race) {
            iot_spin((seed >> 8) % 20000);
            cr_assert_eq(send(cli, "12345678", 8, 0), 8);
            cr_assert_eq(write(p[1], "abcdefgh", 8), 8);
            iot_spin((seed >> 4) % 3000);
        } else {
            /* withdraw a select whose operations all wait in the kernel */
            flag_wait_ge(&armed, (uint32_t)i + 1);
            wait_in_kernel((const int[K_COUNT]){ [K_RECV] = 1, [K_READ] = 1,
                                                     [K_ACCEPT] = 1 }, how_name[how]);
        }
        if (by_token)
            weft_token_cancel(tok);
        else
            weft_abort(&h);
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        cr_assert_eq(atomic_load(&iot_drops), drops0 + 1);
        if (safe)
            cr_assert(out.status == -ECANCELED || res.ended, "status %d", out.status);
        else
            cr_assert(res.ended && out.status == 0);
        if (!race && res.ended)
            cr_assert_eq(res.rc, -ECANCELED, "round %d: select yielded %lld", i,
                         (long long)res.rc);
        cr_assert_not(res.did[2], "the hour-long sleep completed");
        /* nothing consumed that was not reported, and nothing reported twice;
         * a torn-down task reports nothing, and what its operations took
         * before the tear-down is dropped with it (that is what cancel-safe
         * declares), so only the cooperative runs can be counted */
        long sent = race ? 8 : 0;
        if (!res.ended) {
            iot_drain(srv);
            pipe_drain(p[0]);
            weft_token_release(tok);
            continue;
        }
        long took_r = res.did[0] && res.got[0] > 0 ? res.got[0] : 0;
        long took_p = res.did[1] && res.got[1] > 0 ? res.got[1] : 0;
        cr_assert_eq(iot_drain(srv) + took_r, sent, "%s round %d: recv lost or duplicated (did %d got %lld rc %lld)", how_name[how], i,
                     res.did[0], (long long)res.got[0], (long long)res.rc);
        cr_assert_eq(pipe_drain(p[0]) + took_p, sent, "round %d: read lost or duplicated", i);
        weft_token_release(tok);
    }
    cr_assert_eq(iot_fd_count(), fds0, "fd count %d, was %d", iot_fd_count(), fds0);
    check_resource(&(struct fixture){ .a = l }, K_ACCEPT, true, 0, NULL, "listener");
    close(l);
    close(srv);
    close(cli);
    close(p[0]);
    close(p[1]);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(io_cancel, abort_withdraws_every_op_of_a_select)
{
    several_in_flight(H_ABORT, false, 20);
    several_in_flight(H_TOKEN, false, 20);
    several_in_flight(H_SAFE_ABORT, false, 20);
}

Test(io_cancel, abort_of_a_select_racing_data_loses_nothing)
{
    several_in_flight(H_ABORT, true, 300);
    several_in_flight(H_SAFE_TOKEN, true, 300);
}

/* ---- a socket made as its task is torn down ----------------------------------------------- */

struct sockt {
    weft_frame f;
    weft_io io;
    flag *started;
    weft_poll rc;
};

static weft_poll sockt_poll(weft_cx *cx, void *p)
{
    struct sockt *t = p;
    WEFT_BEGIN(&t->f);
    flag_add(t->started, 1);
    WEFT_AWAIT(&t->f, t->rc, weft_socket(cx, &t->io, AF_INET, SOCK_STREAM, 0));
    if (t->rc >= 0)
        close((int)t->rc);
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

Test(io_cancel, socket_that_completes_after_a_tear_down_is_closed)
{
    weft_runtime *rt = make(2);
    int fds0 = iot_fd_count();
    static flag started;
    atomic_store(&started.v, 0);
    uint32_t seed = 4242;
    int torn = 0;
    for (int i = 0; i < 600; i++) {
        struct sockt t = { .started = &started };
        weft_task_desc d = { .poll = sockt_poll, .frame = &t, .frame_size = sizeof t,
                             .drop = iot_count_drop,
                             .flags = i % 3 ? WEFT_TASK_CANCEL_SAFE : 0 };
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &d, &h), 0);
        seed = seed * 1103515245u + 12345u;
        if (i % 2)
            flag_wait_ge(&started, 1);
        iot_spin((seed >> 8) % 5000);
        weft_abort(&h);
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        torn += out.status == -ECANCELED;
        cr_assert(out.status == -ECANCELED || out.value >= 0 || out.value == -ECANCELED,
                  "status %d value %lld", out.status, (long long)out.value);
    }
    cr_log_info("socket: %d of 600 torn down", torn);
    cr_assert_eq(iot_fd_count(), fds0, "fd count %d, was %d", iot_fd_count(), fds0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a send withdrawn half-way reports the bytes it sent ---------------------------------- */

struct psend {
    weft_frame f;
    weft_io io;
    int fd;
    bool timed;
    flag *started;
    weft_poll rc;
};

static weft_poll psend_poll(weft_cx *cx, void *p)
{
    struct psend *t = p;
    WEFT_BEGIN(&t->f);
    if (t->timed)
        weft_io_timeout(&t->io, TMO);
    flag_add(t->started, 1);
    /* MSG_WAITALL: the kernel keeps going after a partial send, so the
     * withdrawal finds one half-done */
    WEFT_AWAIT(&t->f, t->rc, weft_send(cx, &t->io, t->fd, big, BIG, MSG_WAITALL));
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

Test(io_cancel, send_withdrawn_half_way_reports_the_bytes_sent)
{
    weft_runtime *rt = make(2);
    for (int i = 0; i < 4; i++) {
        int peer, fd;
        cr_assert_eq(iot_tcp_pair_bufs(&peer, &fd, 8192), 0);
        static flag started;
        atomic_store(&started.v, 0);
        struct psend t = { .fd = fd, .timed = i % 2, .started = &started };
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(psend_poll, &t), &h), 0);
        flag_wait_ge(&started, 1);
        if (!t.timed) {
            /* abort half-way: once bytes have reached the peer and the rest
             * of the send waits in the kernel for room */
            cr_assert(iot_readable(peer, -1));
            cr_assert(iot_wait_polls(IORING_OP_SEND, 1), "the send never waited in the kernel");
            weft_abort(&h);
        }
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        cr_assert(out.value > 0 && out.value < BIG,
                  "a half-done send yielded %lld (%s), not the bytes it sent",
                  (long long)out.value, weft_strerror((int)out.value));
        close(fd);
        cr_assert_eq(read_to_eof(peer), out.value, "the peer got other than reported");
        close(peer);
    }
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a task polled on another worker is still woken by its op's owner --------------------- */

struct wshared {
    flag started, repolled;
    _Atomic int owner;
    _Atomic int moved;          /* polled off the owner while the op was in flight */
    _Atomic int claimed;
    weft_waker waker;
};

struct wtarget {
    weft_frame f;
    weft_io io;
    int fd;
    bool noted;
    unsigned char buf[8];
    struct wshared *sh;
    weft_poll rc;
};

static weft_poll wtarget_recv(weft_cx *cx, struct wtarget *t)
{
    weft_poll r = weft_recv(cx, &t->io, t->fd, t->buf, sizeof t->buf, 0);
    if (r != WEFT_PENDING)
        return r;
    if (!t->noted) {
        t->noted = true;
        atomic_store(&t->sh->owner, (int)weft__io_of(&t->io)->owner);
        t->sh->waker = weft_cx_waker(cx);
        flag_add(&t->sh->started, 1);
    } else {
        if (iot_worker(cx) != atomic_load(&t->sh->owner))
            atomic_store(&t->sh->moved, 1);
        flag_add(&t->sh->repolled, 1);
    }
    return r;
}

static weft_poll wtarget_poll(weft_cx *cx, void *p)
{
    struct wtarget *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->rc, wtarget_recv(cx, t));
    if (t->rc == 8 && memcmp(t->buf, "stolen!!", 8) != 0)
        WEFT_RETURN(&t->f, -EPROTO);
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

/* On a worker other than the op's owner, wake the target spuriously: it is
 * polled there (the wake goes to this worker's LIFO slot). */
struct kicker {
    weft_frame f;
    struct wshared *sh;
};

static weft_poll kicker_poll(weft_cx *cx, void *p)
{
    struct wshared *sh = ((struct kicker *)p)->sh;
    uint64_t give_up = weft_now_ns() + 2000 * IOT_MS;
    while (!atomic_load(&sh->claimed) && weft_now_ns() < give_up) {
        if (iot_worker(cx) != atomic_load(&sh->owner)) {
            if (atomic_exchange(&sh->claimed, 1))
                return 0;
            weft_waker_wake(&sh->waker);
            return 1;
        }
        iot_spin(1000);
    }
    return 0;
}

Test(io_cancel, task_moved_to_another_worker_is_woken_when_the_owner_reaps)
{
    weft_runtime *rt = make(2);
    int srv, cli;
    cr_assert_eq(iot_tcp_pair(&srv, &cli), 0);
    int moved = 0;
    for (int i = 0; i < 60; i++) {
        static struct wshared sh;
        memset(&sh, 0, sizeof sh);
        atomic_store(&sh.owner, -1);
        struct wtarget t = { .fd = srv, .sh = &sh };
        weft_join h, kh[2];
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(wtarget_poll, &t), &h), 0);
        flag_wait_ge(&sh.started, 1);
        struct kicker k = { .sh = &sh };
        for (int j = 0; j < 2; j++)
            cr_assert_eq(weft_spawn(rt, &WEFT_TASK(kicker_poll, &k), &kh[j]), 0);
        int acted = 0;
        for (int j = 0; j < 2; j++) {
            weft_outcome o;
            cr_assert_eq(weft_join_wait(&kh[j], &o), 0);
            acted += (int)o.value;
        }
        if (!acted && !atomic_exchange(&sh.claimed, 1))
            weft_waker_wake(&sh.waker);         /* from outside: any worker */
        flag_wait_ge(&sh.repolled, 1);
        moved += atomic_load(&sh.moved);
        cr_assert_eq(send(cli, "stolen!!", 8, 0), 8);
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        cr_assert_eq(out.value, 8, "round %d: recv yielded %lld", i, (long long)out.value);
    }
    cr_log_info("%d of 60 tasks were polled off their op's owner", moved);
    cr_assert_gt(moved, 0, "no task ever moved: the case was not exercised");
    close(srv);
    close(cli);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}
