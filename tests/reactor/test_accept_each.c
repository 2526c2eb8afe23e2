/*
 * tests/reactor/test_accept_each.c - weft_accept_each (weft/io.h): one
 * multishot accept in the kernel hands every connection to the callback;
 * withdrawal before the first poll, while connections are racing in (no
 * connection lost: handed to the callback or still in the backlog), by a
 * deadline and by runtime shutdown with the accept armed; an accept error
 * ending the loop; misuse. Each callback closes nothing itself: the test
 * collects the fds and closes them, counting them against the connects.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>

#include "io_test.h"
#include "test_util.h"

#define MAXFD 4096

struct sink {
    _Atomic int n;
    int fds[MAXFD];
    flag got;
};

static void take(void *arg, int fd)
{
    struct sink *k = arg;
    int i = atomic_fetch_add(&k->n, 1);
    if (i < MAXFD)
        k->fds[i] = fd;
    else
        close(fd);
    flag_add(&k->got, 1);
}

static int sink_close_all(struct sink *k)
{
    int n = atomic_load(&k->n);
    for (int i = 0; i < n && i < MAXFD; i++)
        close(k->fds[i]);
    return n;
}

struct loop_task {
    weft_frame f;
    weft_accept_loop l;
    int fd;
    struct sink *k;
    uint64_t timeout_ns;
    weft_token *cancel_first;
    uint64_t *accepted;
    weft_poll r;
};

static weft_poll loop_poll(weft_cx *cx, void *p)
{
    struct loop_task *t = p;
    WEFT_BEGIN(&t->f);
    if (t->timeout_ns)
        weft_io_timeout(&t->l.io, t->timeout_ns);
    if (t->cancel_first)
        weft_token_cancel(t->cancel_first);
    WEFT_AWAIT(&t->f, t->r, weft_accept_each(cx, &t->l, t->fd, take, t->k));
    if (t->accepted)
        *t->accepted = t->l.accepted;
    WEFT_RETURN(&t->f, t->r);
    WEFT_END(&t->f);
}

static weft_runtime *make(unsigned threads)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = threads, .shutdown_grace_ms = 100 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    return rt;
}

/* Connections left in the listen backlog (accepted here and closed). */
static int drain_backlog(int l)
{
    int n = 0, fd;
    while (iot_readable(l, 0) && (fd = accept4(l, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
        close(fd);
        n++;
    }
    return n;
}

static int connect_n(const struct sockaddr_in *sa, int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        fds[i] = iot_connect(sa);
        if (fds[i] < 0)
            return i;
    }
    return n;
}

static void close_n(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

Test(accept_each, one_armed_accept_takes_every_connection)
{
    int fds0 = iot_fd_count();
    weft_runtime *rt = make(2);
    struct sockaddr_in sa;
    int l = iot_listen(128, &sa);
    cr_assert_geq(l, 0);
    static struct sink k;
    memset(&k, 0, sizeof k);
    uint64_t accepted = 0;
    struct loop_task t = { .l = WEFT_ACCEPT_LOOP_INIT, .fd = l, .k = &k, .accepted = &accepted };
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(loop_poll, &t), &h), 0);
    cr_assert(iot_wait_polls(IORING_OP_ACCEPT, 1), "the accept never reached the kernel");
    static int cli[50];
    cr_assert_eq(connect_n(&sa, cli, 50), 50);
    flag_wait_ge(&k.got, 50);
    int rings = 0;
    cr_assert_eq(iot_ring_polls(IORING_OP_ACCEPT, &rings), 1, "more than one accept armed");
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(accepted, 50);
    cr_assert_eq(sink_close_all(&k), 50);
    close_n(cli, 50);
    close(l);
    cr_assert_eq(weft_runtime_free(rt), 0);
    cr_assert_eq(iot_fd_count(), fds0, "an fd leaked");
    WEFT_ASSERT_NO_LEAKS();
}

Test(accept_each, withdrawn_before_it_starts_accepts_nothing)
{
    weft_runtime *rt = make(1);
    struct sockaddr_in sa;
    int l = iot_listen(16, &sa);
    static struct sink k;
    memset(&k, 0, sizeof k);
    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    uint64_t accepted = 99;
    struct loop_task t = { .l = WEFT_ACCEPT_LOOP_INIT, .fd = l, .k = &k, .cancel_first = tok,
                           .accepted = &accepted };
    weft_task_desc d = WEFT_TASK(loop_poll, &t);
    d.tokens = &tok;
    d.ntokens = 1;
    weft_outcome o;
    cr_assert_eq(weft_block_on(rt, &d, &o), 0);
    cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(accepted, 0);
    int c = iot_connect(&sa);
    cr_assert_geq(c, 0);
    cr_assert_eq(drain_backlog(l), 1, "the connection should wait in the backlog");
    cr_assert_eq(atomic_load(&k.n), 0);
    close(c);
    weft_token_release(tok);
    close(l);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* A client that connects `n` times as fast as it can. */
struct storm {
    struct sockaddr_in sa;
    int n, made;
    int fds[1000];
    flag started;
};

static void *storm_run(void *arg)
{
    struct storm *s = arg;
    flag_set(&s->started, 1);
    s->made = connect_n(&s->sa, s->fds, s->n);
    return NULL;
}

Test(accept_each, a_withdrawal_among_racing_connections_loses_none)
{
    for (int round = 0; round < 5; round++) {
        weft_runtime *rt = make(2);
        static struct storm s;
        memset(&s, 0, sizeof s);
        int l = iot_listen(1024, &s.sa);
        s.n = 400;
        static struct sink k;
        memset(&k, 0, sizeof k);
        uint64_t accepted = 0;
        struct loop_task t = { .l = WEFT_ACCEPT_LOOP_INIT, .fd = l, .k = &k,
                               .accepted = &accepted };
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(loop_poll, &t), &h), 0);
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, storm_run, &s), 0);
        flag_wait_ge(&k.got, 20 * (uint32_t)round + 1);    /* withdraw mid-storm */
        cr_assert_eq(weft_abort(&h), 0);
        weft_outcome o;
        cr_assert_eq(weft_join_wait(&h, &o), 0);
        cr_assert_eq(o.value, -ECANCELED);
        pthread_join(th, NULL);
        cr_assert_eq(s.made, s.n);
        int handed = atomic_load(&k.n);
        cr_assert_eq((int)accepted, handed, "accepted disagrees with the callback");
        int left = drain_backlog(l);
        cr_assert_eq(handed + left, s.n, "lost connections: %d handed + %d in the backlog of %d",
                     handed, left, s.n);
        sink_close_all(&k);
        close_n(s.fds, s.made);
        close(l);
        cr_assert_eq(weft_runtime_free(rt), 0);
    }
    WEFT_ASSERT_NO_LEAKS();
}

Test(accept_each, a_deadline_bounds_the_whole_loop)
{
    weft_runtime *rt = make(1);
    struct sockaddr_in sa;
    int l = iot_listen(16, &sa);
    static struct sink k;
    memset(&k, 0, sizeof k);
    uint64_t accepted = 0;
    struct loop_task t = { .l = WEFT_ACCEPT_LOOP_INIT, .fd = l, .k = &k, .timeout_ns = 40 * IOT_MS,
                           .accepted = &accepted };
    weft_join h;
    uint64_t t0 = weft_now_ns();
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(loop_poll, &t), &h), 0);
    int c = iot_connect(&sa);
    flag_wait_ge(&k.got, 1);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert_eq(o.value, -ETIMEDOUT);
    cr_assert_geq(weft_now_ns() - t0, 40 * IOT_MS, "the deadline fired early");
    cr_assert_eq(accepted, 1);
    cr_assert_eq(sink_close_all(&k), 1);
    close(c);
    close(l);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(accept_each, an_accept_error_ends_the_loop)
{
    weft_runtime *rt = make(1);
    struct sockaddr_in sa;
    int l = iot_listen(16, &sa);
    static struct sink k;
    memset(&k, 0, sizeof k);
    struct loop_task t = { .l = WEFT_ACCEPT_LOOP_INIT, .fd = l, .k = &k };
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(loop_poll, &t), &h), 0);
    cr_assert(iot_wait_polls(IORING_OP_ACCEPT, 1), "the accept never reached the kernel");
    shutdown(l, SHUT_RDWR);         /* the listener stops listening */
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert_lt(o.value, 0);
    cr_assert_neq(o.value, -ECANCELED);
    cr_assert_eq(atomic_load(&k.n), 0);
    close(l);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(accept_each, shutdown_with_the_accept_armed_leaks_nothing)
{
    int fds0 = iot_fd_count();
    weft_runtime *rt = make(2);
    struct sockaddr_in sa;
    int l = iot_listen(16, &sa);
    static struct sink k;
    memset(&k, 0, sizeof k);
    struct loop_task t = { .l = WEFT_ACCEPT_LOOP_INIT, .fd = l, .k = &k };
    weft_task_desc d = WEFT_TASK(loop_poll, &t);
    d.flags = WEFT_TASK_CANCEL_SAFE;
    cr_assert_eq(weft_spawn_detached(rt, &d), 0);
    int cli[3];
    cr_assert_eq(connect_n(&sa, cli, 3), 3);
    flag_wait_ge(&k.got, 3);
    cr_assert_eq(weft_runtime_free(rt), 0);
    cr_assert_eq(sink_close_all(&k), 3);
    close_n(cli, 3);
    close(l);
    cr_assert_eq(iot_fd_count(), fds0, "an fd leaked");
    WEFT_ASSERT_NO_LEAKS();
}

Test(accept_each, rejects_misuse)
{
    weft_accept_loop l = WEFT_ACCEPT_LOOP_INIT;
    cr_assert_eq(weft_accept_each(NULL, &l, 3, take, NULL), -EINVAL);
    weft_runtime *rt = make(1);
    struct loop_task t = { .l = WEFT_ACCEPT_LOOP_INIT, .fd = -1 };
    weft_outcome o;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(loop_poll, &t), &o), 0);
    cr_assert_eq(o.value, -EINVAL);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}
