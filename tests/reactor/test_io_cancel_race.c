/*
 * tests/reactor/test_io_cancel_race.c - withdrawing I/O operations (weft/io.h,
 * reactor/op.c) as they complete, looped: a recv aborted as data arrives
 * (either -ECANCELED and the bytes are still in the socket, or the real count
 * - never lost); an accept aborted as a client connects (the fd is either
 * returned, or still queued, or closed by weft - never leaked), cooperative
 * and cancel-safe; and the same withdrawals made from a task on the other
 * worker (the hand-off path of op.c).
 *
 * Each kind stopped every way is in test_io_cancel_every.c; the shared
 * machinery is in io_cancel_test.h.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "io_cancel_test.h"

/* ---- recv aborted as data arrives: never lost ------------------------------------- */

struct rtask {
    weft_frame f;
    weft_io io;
    int fd;
    flag *started;
    unsigned char want[8], buf[8];
    weft_poll rc;
};

static weft_poll rtask_poll(weft_cx *cx, void *p)
{
    struct rtask *t = p;
    WEFT_BEGIN(&t->f);
    flag_add(t->started, 1);
    WEFT_AWAIT(&t->f, t->rc, weft_recv(cx, &t->io, t->fd, t->buf, sizeof t->buf, 0));
    if (t->rc > 0 && memcmp(t->buf, t->want, (size_t)t->rc) != 0)
        WEFT_RETURN(&t->f, -EPROTO);
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

static const unsigned char marker[8] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

/* Send a marker and read up to it: returns what was still queued before it. */
static size_t leftover_before_marker(int srv, int cli, unsigned char *out, size_t room)
{
    cr_assert_eq(send(cli, marker, sizeof marker, 0), (ssize_t)sizeof marker);
    size_t n = 0;
    for (;;) {
        cr_assert_lt(n, room, "more bytes queued than were ever sent");
        ssize_t r = recv(srv, out + n, 1, 0);
        cr_assert_eq(r, 1);
        n++;
        if (n >= sizeof marker && memcmp(out + n - sizeof marker, marker, sizeof marker) == 0)
            return n - sizeof marker;
    }
}

/* Either -ECANCELED with the bytes still queued, or the real count with the
 * rest still queued; `abort_rc` 1 means the task had finished first. */
static void check_recv_rule(int srv, int cli, const unsigned char want[8], weft_poll v,
                            int abort_rc, int *cancelled, int *delivered)
{
    cr_assert(v == -ECANCELED || (v >= 1 && v <= 8), "recv yielded %lld (%s)", (long long)v,
              weft_strerror((int)v));
    if (abort_rc == 1)
        cr_assert_gt(v, 0);
    unsigned char rest[64];
    size_t got = v > 0 ? (size_t)v : 0;
    size_t left = leftover_before_marker(srv, cli, rest, sizeof rest);
    cr_assert_eq(left, 8 - got, "recv reported %lld but %zu bytes are still queued: %s",
                 (long long)v, left, left < 8 - got ? "data lost" : "data duplicated");
    cr_assert_eq(memcmp(rest, want + got, left), 0);
    if (v < 0)
        (*cancelled)++;
    else
        (*delivered)++;
}

Test(io_cancel, recv_aborted_as_data_arrives_loses_nothing)
{
    weft_runtime *rt = make(2);
    int srv = -1, cli = -1;
    cr_assert_eq(iot_tcp_pair(&srv, &cli), 0);
    int fds0 = iot_fd_count();
    int cancelled = 0, delivered = 0;
    static flag started;
    uint32_t seed = 12345;
    enum { ROUNDS = 1500 };
    for (int i = 0; i < ROUNDS; i++) {
        struct rtask t = { .fd = srv, .started = &started };
        for (int k = 0; k < 8; k++)
            t.want[k] = (unsigned char)((i * 8 + k) % 251);
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(rtask_poll, &t), &h), 0);
        flag_wait_ge(&started, (uint32_t)i + 1);
        seed = seed * 1103515245u + 12345u;
        iot_spin((seed >> 8) % 20000);
        int ab;
        if (i % 2) {
            cr_assert_eq(send(cli, t.want, 8, 0), 8);
            iot_spin((seed >> 4) % 3000);
            ab = weft_abort(&h);
        } else {
            ab = weft_abort(&h);
            iot_spin((seed >> 4) % 3000);
            cr_assert_eq(send(cli, t.want, 8, 0), 8);
        }
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        cr_assert_eq(out.status, 0);
        check_recv_rule(srv, cli, t.want, out.value, ab, &cancelled, &delivered);
    }
    cr_log_info("recv race: %d cancelled, %d delivered", cancelled, delivered);
    cr_assert_eq(iot_fd_count(), fds0);
    close(srv);
    close(cli);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- accept aborted as a client connects: the fd never leaks --------------------------- */

static int local_port_of(int fd)
{
    return weft_local_port(fd);
}

static int peer_port_of(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (getpeername(fd, (struct sockaddr *)&sa, &len) != 0)
        return -errno;
    return ntohs(sa.sin_port);
}

enum accepted { ACC_RETURNED, ACC_QUEUED, ACC_CLOSED_BY_WEFT };

/* Where did the client's connection end up? v: what the await yielded (an fd,
 * or < 0). Exactly one of: returned to the task, still queued on the
 * listener, or accepted and closed by weft (the client sees EOF). */
static enum accepted settle_client(int listener, int client, weft_poll v)
{
    if (v >= 0) {
        cr_assert_eq(peer_port_of((int)v), local_port_of(client), "accepted someone else");
        close((int)v);
        return ACC_RETURNED;
    }
    struct pollfd p[2] = { { .fd = listener, .events = POLLIN }, { .fd = client, .events = POLLIN } };
    int r;
    do {
        r = poll(p, 2, 5000);  /* a safety net only: one of the two is due at once */
    } while (r < 0 && errno == EINTR);
    cr_assert_gt(r, 0, "the connection is neither queued nor closed: an accepted fd leaked");
    if (p[0].revents & POLLIN) {
        int s = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        cr_assert_geq(s, 0);
        cr_assert_eq(peer_port_of(s), local_port_of(client));
        close(s);
        return ACC_QUEUED;
    }
    char c;
    ssize_t n = recv(client, &c, 1, 0);
    cr_assert(n == 0 || (n < 0 && errno == ECONNRESET), "client got %zd", n);
    return ACC_CLOSED_BY_WEFT;
}

static void accept_race(bool cancel_safe, int rounds)
{
    weft_runtime *rt = make(2);
    struct sockaddr_in sa;
    int l = iot_listen(64, &sa);
    cr_assert_geq(l, 0);
    int fds0 = iot_fd_count();
    static flag started;
    atomic_store(&started.v, 0);
    int seen[3] = { 0 };
    uint32_t seed = 777;
    for (int i = 0; i < rounds; i++) {
        struct bres res = { 0 };
        struct blocker b = { .kind = K_ACCEPT, .how = -1, .fd = l, .started = &started,
                             .res = &res };
        weft_task_desc d = { .poll = blocker_poll, .frame = &b, .frame_size = sizeof b,
                             .drop = iot_count_drop,
                             .flags = cancel_safe ? WEFT_TASK_CANCEL_SAFE : 0 };
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &d, &h), 0);
        flag_wait_ge(&started, (uint32_t)i + 1);
        seed = seed * 1103515245u + 12345u;
        iot_spin((seed >> 8) % 20000);
        int c, ab;
        if (i % 2) {
            c = iot_connect(&sa);
            iot_spin((seed >> 4) % 3000);
            ab = weft_abort(&h);
        } else {
            ab = weft_abort(&h);
            iot_spin((seed >> 4) % 3000);
            c = iot_connect(&sa);
        }
        cr_assert_geq(c, 0);
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        enum accepted where;
        if (out.status == -ECANCELED) {
            cr_assert(cancel_safe);
            where = settle_client(l, c, -1);
        } else {
            /* A cancel-safe task returns only if the abort found it finished
             * (ab == 1) or arrived during its last poll, the one that took
             * the accepted fd ("not resumed after its current poll"): either
             * way the accept won and a torn-down await never yields. */
            cr_assert(!cancel_safe || (out.value >= 0 && res.ended),
                      "cancel-safe task returned %lld (abort: %d)", (long long)out.value, ab);
            cr_assert(out.value >= 0 || out.value == -ECANCELED, "accept yielded %lld",
                      (long long)out.value);
            /* the task closed a returned fd itself; its client then sees EOF */
            where = settle_client(l, c, -1);
            if (out.value >= 0)
                cr_assert_eq(where, ACC_CLOSED_BY_WEFT, "the task's fd was also queued?");
            else
                cr_assert_eq(where, ACC_QUEUED, "-ECANCELED, yet the connection was taken");
            if (out.value >= 0)
                where = ACC_RETURNED;
        }
        seen[where]++;
        close(c);
    }
    cr_log_info("accept race (%s): returned %d, queued %d, closed by weft %d",
                cancel_safe ? "cancel-safe" : "cooperative", seen[0], seen[1], seen[2]);
    cr_assert_eq(atomic_load(&iot_drops), rounds);
    cr_assert_eq(iot_fd_count(), fds0, "fd count %d, was %d", iot_fd_count(), fds0);
    close(l);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(io_cancel, accept_aborted_as_client_connects_cooperative)
{
    accept_race(false, 600);
}

Test(io_cancel, accept_torn_down_as_client_connects_closes_late_fd)
{
    accept_race(true, 600);
}

/* ---- withdrawals made on the other worker (op.c: hand_to_owner) ------------------------ */

struct hshared {
    flag started;
    _Atomic int owner;          /* the worker whose ring holds the op */
    _Atomic int polls;
    _Atomic int poll_worker[4];
    _Atomic int claimed;        /* an aborter has acted */
    weft_join *target;
    weft_token *tok;
};

struct htarget {
    weft_frame f;
    weft_io io;
    bool accept, noted;
    int fd;
    unsigned char buf[8];
    weft_poll rc;
    struct hshared *sh;
};

/* The operation, noting the owner once it has been started. */
static weft_poll htarget_op(weft_cx *cx, struct htarget *t)
{
    weft_poll r = t->accept ? weft_accept(cx, &t->io, t->fd, NULL, NULL, 0)
                            : weft_recv(cx, &t->io, t->fd, t->buf, sizeof t->buf, 0);
    if (r == WEFT_PENDING && !t->noted) {
        t->noted = true;
        atomic_store(&t->sh->owner, (int)weft__io_of(&t->io)->owner);
        flag_add(&t->sh->started, 1);
    }
    return r;
}

static weft_poll htarget_poll(weft_cx *cx, void *p)
{
    struct htarget *t = p;
    int n = atomic_fetch_add(&t->sh->polls, 1);
    if (n < 4)
        atomic_store(&t->sh->poll_worker[n], iot_worker(cx));
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->rc, htarget_op(cx, t));
    if (t->rc >= 0 && t->accept)
        close((int)t->rc);
    WEFT_RETURN(&t->f, t->rc);
    WEFT_END(&t->f);
}

struct aborter {
    weft_frame f;
    struct hshared *sh;
};

/* On a worker other than the op's owner: abort the target (or cancel its
 * token). On the owner: keep it busy until another aborter has acted, so
 * that one runs elsewhere. Yields 1 if this one acted. */
static weft_poll aborter_poll(weft_cx *cx, void *p)
{
    struct aborter *a = p;
    struct hshared *sh = a->sh;
    uint64_t give_up = weft_now_ns() + 2000 * IOT_MS;
    while (!atomic_load(&sh->claimed)) {
        if (iot_worker(cx) != atomic_load(&sh->owner)) {
            if (atomic_exchange(&sh->claimed, 1))
                return 0;
            if (sh->tok)
                weft_token_cancel(sh->tok);
            else
                weft_abort(sh->target);
            return 1;
        }
        if (weft_now_ns() > give_up)
            return 0;           /* the main thread acts instead */
        iot_spin(1000);
    }
    return 0;
}

static void handoff_round(weft_runtime *rt, bool accept, bool safe, bool by_token, bool race,
                          int fd, int peer, const struct sockaddr_in *sa, int *handoffs)
{
    static struct hshared sh;
    memset(&sh, 0, sizeof sh);
    atomic_store(&sh.owner, -1);
    weft_token *tok = NULL;
    if (by_token)
        cr_assert_eq(weft_token_new(&tok), 0);
    struct htarget t = { .accept = accept, .fd = fd, .sh = &sh };
    weft_task_desc d = { .poll = htarget_poll, .frame = &t, .frame_size = sizeof t,
                         .drop = iot_count_drop, .flags = safe ? WEFT_TASK_CANCEL_SAFE : 0,
                         .tokens = &tok, .ntokens = by_token ? 1 : 0 };
    weft_join h, ah[2];
    sh.target = &h;
    sh.tok = tok;
    int drops0 = atomic_load(&iot_drops);
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&sh.started, 1);
    /* the withdrawal under test is of an operation in the kernel */
    cr_assert(iot_wait_polls(accept ? IORING_OP_ACCEPT : IORING_OP_RECV, 1),
              "the %s never waited in the kernel", accept ? "accept" : "recv");
    struct aborter a = { .sh = &sh };
    for (int i = 0; i < 2; i++)
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(aborter_poll, &a), &ah[i]), 0);
    unsigned char want[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    int c = -1;
    if (race && accept)
        c = iot_connect(sa);    /* completes as the hand-off travels */
    else if (race)
        cr_assert_eq(send(peer, want, 8, 0), 8);
    int acted = 0;
    for (int i = 0; i < 2; i++) {
        weft_outcome o;
        cr_assert_eq(weft_join_wait(&ah[i], &o), 0);
        acted += (int)o.value;
    }
    if (!acted) {               /* both aborters were stuck on the owner */
        if (by_token)
            weft_token_cancel(tok);
        else
            weft_abort(&h);
    }
    weft_outcome out;
    cr_assert_eq(weft_join_wait(&h, &out), 0);
    cr_assert_eq(atomic_load(&iot_drops), drops0 + 1);
    bool finished_first = out.status == 0 && out.value >= 0 && race;
    if (!finished_first)
        cr_assert_eq(out.cancel.source, by_token ? WEFT_CANCEL_TOKEN : WEFT_CANCEL_ABORT);
    if (safe) {
        cr_assert(out.status == -ECANCELED || finished_first, "status %d", out.status);
    } else {
        cr_assert_eq(out.status, 0);
        if (!race)
            cr_assert_eq(out.value, -ECANCELED, "yielded %lld", (long long)out.value);
        /* the poll after the request ran the withdrawal: on which worker? */
        if (atomic_load(&sh.polls) >= 2 && acted
            && atomic_load(&sh.poll_worker[1]) != atomic_load(&sh.owner))
            (*handoffs)++;
    }
    if (accept && race) {
        enum accepted where = settle_client(fd, c, -1);
        if (!safe && out.value == -ECANCELED)
            cr_assert_eq(where, ACC_QUEUED, "-ECANCELED, yet the connection was taken");
        close(c);
    } else if (accept) {
        /* nothing connected: nothing to lose */
    } else if (race && !safe) {
        int x = 0, y = 0;
        check_recv_rule(fd, peer, want, out.value, 0, &x, &y);
    } else if (race) {
        unsigned char rest[64];
        leftover_before_marker(fd, peer, rest, sizeof rest);
    }
    if (tok)
        weft_token_release(tok);
}

static void handoff_loop(bool accept)
{
    weft_runtime *rt = make(2);
    int srv = -1, cli = -1, l = -1;
    struct sockaddr_in sa;
    if (accept) {
        l = iot_listen(64, &sa);
        cr_assert_geq(l, 0);
    } else {
        cr_assert_eq(iot_tcp_pair(&srv, &cli), 0);
    }
    int fds0 = iot_fd_count();
    int handoffs = 0, rounds = 0;
    for (int i = 0; i < 400; i++, rounds++) {
        bool safe = i % 4 == 3, by_token = i % 3 == 1, race = i % 2 == 1;
        handoff_round(rt, accept, safe, by_token, race, accept ? l : srv, cli, &sa, &handoffs);
    }
    cr_log_info("%s: %d cooperative withdrawals ran off the owner", accept ? "accept" : "recv",
                handoffs);
    /* The aborter design puts the woken task on the aborting worker's LIFO
     * slot, so the hand-off path must have been taken. */
    cr_assert_gt(handoffs, 0, "the hand-off path was never exercised");
    cr_assert_eq(iot_fd_count(), fds0, "fd count %d, was %d", iot_fd_count(), fds0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    int fds[] = { srv, cli, l };
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    WEFT_ASSERT_NO_LEAKS();
}

Test(io_cancel, recv_withdrawn_from_the_other_worker)
{
    handoff_loop(false);
}

Test(io_cancel, accept_withdrawn_from_the_other_worker_never_leaks)
{
    handoff_loop(true);
}
