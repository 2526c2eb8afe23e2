/*
 * tests/reactor/test_io_faults.c - the submission paths a healthy kernel
 * rarely takes, forced by fault injection (reactor/op.h): an SQ that is full
 * (ops and cancels wait on the userspace overflow queues) and an enter that
 * fails with -EBUSY (reap, then retry). Nothing may be lost, reordered or
 * leaked, and withdrawals must still work; a worker holding queued SQEs
 * must not sleep on them (they would never go out).
 *
 * Then the transfer faults (weft__io_inject_transfer_faults): short recvs,
 * sends, reads and writes, which send_all / recv_exact must complete, and
 * -ECONNRESET on a socket transfer, which must surface as the error with
 * `done` exact, so that resuming from `done` loses and duplicates nothing.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.h>

#include "io_test.h"
#include "reactor/op.h"
#include "test_util.h"

#define RECORDS 2000
#define PAIRS 8

struct writer {
    weft_frame f;
    weft_xfer x;
    int fd;
    uint64_t i, rec;
    weft_poll rc;
};

static weft_poll writer_poll(weft_cx *cx, void *p)
{
    struct writer *w = p;
    WEFT_BEGIN(&w->f);
    for (w->i = 0; w->i < RECORDS; w->i++) {
        w->rec = w->i;
        WEFT_AWAIT(&w->f, w->rc, weft_send_all(cx, &w->x, w->fd, &w->rec, sizeof w->rec));
        if (w->rc != (weft_poll)sizeof w->rec)
            WEFT_RETURN(&w->f, -1000 + w->rc);
    }
    WEFT_RETURN(&w->f, 0);
    WEFT_END(&w->f);
}

struct reader {
    weft_frame f;
    weft_xfer x;
    int fd;
    uint64_t i, rec;
    weft_poll rc;
};

static weft_poll reader_poll(weft_cx *cx, void *p)
{
    struct reader *r = p;
    WEFT_BEGIN(&r->f);
    for (r->i = 0; r->i < RECORDS; r->i++) {
        WEFT_AWAIT(&r->f, r->rc, weft_recv_exact(cx, &r->x, r->fd, &r->rec, sizeof r->rec));
        if (r->rc != (weft_poll)sizeof r->rec)
            WEFT_RETURN(&r->f, -1000 + r->rc);
        if (r->rec != r->i)
            WEFT_RETURN(&r->f, -2);     /* lost, duplicated or reordered */
    }
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

static void stream_under_faults(unsigned sq_full_every, unsigned busy_every)
{
    weft_runtime_opts o = { .threads = 2 };
    weft_runtime *rt;
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    int fds[PAIRS][2];
    weft_join hw[PAIRS], hr[PAIRS];
    weft__io_inject_faults(sq_full_every, busy_every);
    for (int i = 0; i < PAIRS; i++) {
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds[i]), 0);
        struct writer w = { .fd = fds[i][0] };
        struct reader r = { .fd = fds[i][1] };
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(writer_poll, &w), &hw[i]), 0);
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(reader_poll, &r), &hr[i]), 0);
    }
    for (int i = 0; i < PAIRS; i++) {
        weft_outcome ow, orr;
        cr_assert_eq(weft_join_wait(&hw[i], &ow), 0);
        cr_assert_eq(weft_join_wait(&hr[i], &orr), 0);
        cr_expect_eq(ow.value, 0, "writer %d: %lld", i, (long long)ow.value);
        cr_expect_eq(orr.value, 0, "reader %d: %lld", i, (long long)orr.value);
        close(fds[i][0]);
        close(fds[i][1]);
    }
    weft__io_inject_faults(0, 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(io_faults, sq_full_sends_ops_to_the_overflow_queue_in_order)
{
    stream_under_faults(2, 0);
}

Test(io_faults, busy_enter_is_reaped_and_retried)
{
    stream_under_faults(0, 3);
}

Test(io_faults, both_at_once)
{
    stream_under_faults(3, 2);
}

/* A recv withdrawn while the SQ is "full" either never reached the kernel
 * (unqueued: -ECANCELED) or was cancelled through the cancel overflow queue;
 * either way the bytes sent afterwards are all still there to read. */
struct waiter {
    weft_frame f;
    weft_io io;
    int fd;
    char buf[8];
    weft_poll rc;
};

static weft_poll waiter_poll(weft_cx *cx, void *p)
{
    struct waiter *w = p;
    WEFT_BEGIN(&w->f);
    WEFT_AWAIT(&w->f, w->rc, weft_recv(cx, &w->io, w->fd, w->buf, sizeof w->buf, 0));
    WEFT_RETURN(&w->f, w->rc);
    WEFT_END(&w->f);
}

Test(io_faults, withdrawal_under_a_full_sq_loses_nothing)
{
    weft_runtime_opts o = { .threads = 2 };
    weft_runtime *rt;
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    weft__io_inject_faults(2, 5);
    for (int round = 0; round < 300; round++) {
        int sv[2];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        struct waiter w = { .fd = sv[1] };
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(waiter_poll, &w), &h), 0);
        if (round % 3 == 0)
            cr_assert_eq(write(sv[0], "abcdefgh", 8), 8);   /* race the abort */
        weft_abort(&h);
        weft_outcome out;
        cr_assert_eq(weft_join_wait(&h, &out), 0);
        cr_assert(out.value == -ECANCELED || out.value > 0, "recv yielded %lld",
                  (long long)out.value);
        if (round % 3 == 0 && out.value == -ECANCELED) {
            char buf[8];    /* the withdrawn recv consumed nothing */
            cr_assert_eq(read(sv[1], buf, sizeof buf), 8);
        }
        close(sv[0]);
        close(sv[1]);
    }
    weft__io_inject_faults(0, 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- transfer faults: short transfers and resets ----------------------------------- */

#define CHUNK 1500u
#define CHUNKS 400u

static unsigned char pattern_at(uint64_t pos)
{
    return (unsigned char)((pos * 2654435761u) >> 13);
}

/* Sends CHUNKS chunks with send_all, resuming after -ECONNRESET from where
 * `done` says the failed call stopped. Yields the resets it saw, or < 0. */
struct rwriter {
    weft_frame f;
    weft_xfer x;
    int fd;
    uint64_t i, off;
    unsigned char buf[CHUNK];
    weft_poll rc, resets;
};

static weft_poll rwriter_poll(weft_cx *cx, void *p)
{
    struct rwriter *w = p;
    WEFT_BEGIN(&w->f);
    for (w->i = 0; w->i < CHUNKS; w->i++) {
        for (unsigned k = 0; k < CHUNK; k++)
            w->buf[k] = pattern_at(w->i * CHUNK + k);
        for (w->off = 0; w->off < CHUNK;) {
            WEFT_AWAIT(&w->f, w->rc, weft_send_all(cx, &w->x, w->fd, w->buf + w->off,
                                                   CHUNK - w->off));
            w->off += w->x.done;
            if (w->rc == -ECONNRESET)
                w->resets++;
            else if (w->rc < 0 || w->off != CHUNK)
                WEFT_RETURN(&w->f, -1000 + w->rc);
        }
    }
    WEFT_RETURN(&w->f, w->resets);
    WEFT_END(&w->f);
}

/* The mirror image with recv_exact, checking every byte. */
struct rreader {
    weft_frame f;
    weft_xfer x;
    int fd;
    uint64_t i, off;
    unsigned char buf[CHUNK];
    weft_poll rc, resets;
};

static weft_poll rreader_poll(weft_cx *cx, void *p)
{
    struct rreader *r = p;
    WEFT_BEGIN(&r->f);
    for (r->i = 0; r->i < CHUNKS; r->i++) {
        for (r->off = 0; r->off < CHUNK;) {
            WEFT_AWAIT(&r->f, r->rc, weft_recv_exact(cx, &r->x, r->fd, r->buf + r->off,
                                                     CHUNK - r->off));
            r->off += r->x.done;
            if (r->rc == -ECONNRESET)
                r->resets++;
            else if (r->rc < 0 || r->off != CHUNK)
                WEFT_RETURN(&r->f, -1000 + r->rc);
        }
        for (unsigned k = 0; k < CHUNK; k++)
            if (r->buf[k] != pattern_at(r->i * CHUNK + k))
                WEFT_RETURN(&r->f, -2);     /* lost, duplicated or reordered */
    }
    WEFT_RETURN(&r->f, r->resets);
    WEFT_END(&r->f);
}

/* Returns the resets seen by the writers and by the readers. */
static void stream_with_transfer_faults(unsigned short_every, unsigned reset_every,
                                        long *wresets, long *rresets)
{
    weft_runtime_opts o = { .threads = 2 };
    weft_runtime *rt;
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    static struct rwriter w[PAIRS];
    static struct rreader r[PAIRS];
    int fds[PAIRS][2];
    weft_join hw[PAIRS], hr[PAIRS];
    weft__io_inject_transfer_faults(short_every, reset_every);
    for (int i = 0; i < PAIRS; i++) {
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds[i]), 0);
        memset(&w[i], 0, sizeof w[i]);
        memset(&r[i], 0, sizeof r[i]);
        w[i].fd = fds[i][0];
        r[i].fd = fds[i][1];
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(rwriter_poll, &w[i]), &hw[i]), 0);
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(rreader_poll, &r[i]), &hr[i]), 0);
    }
    *wresets = *rresets = 0;
    for (int i = 0; i < PAIRS; i++) {
        weft_outcome ow, orr;
        cr_assert_eq(weft_join_wait(&hw[i], &ow), 0);
        cr_assert_eq(weft_join_wait(&hr[i], &orr), 0);
        cr_expect_geq(ow.value, 0, "writer %d: %lld", i, (long long)ow.value);
        cr_expect_geq(orr.value, 0, "reader %d: %lld", i, (long long)orr.value);
        *wresets += ow.value;
        *rresets += orr.value;
        cr_expect_eq(iot_drain(fds[i][1]), 0, "reader %d: bytes left over", i);
        close(fds[i][0]);
        close(fds[i][1]);
    }
    weft__io_inject_transfer_faults(0, 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(io_faults, short_transfers_are_completed_by_send_all_and_recv_exact)
{
    long wr, rr;
    stream_with_transfer_faults(2, 0, &wr, &rr);
    cr_assert_eq(wr + rr, 0);
}

Test(io_faults, connection_reset_surfaces_with_exact_progress_and_loses_nothing)
{
    long wr, rr;
    stream_with_transfer_faults(3, 4, &wr, &rr);
    cr_assert_gt(wr, 0, "no send saw -ECONNRESET");
    cr_assert_gt(rr, 0, "no recv saw -ECONNRESET");
}

/* A plain read or write that comes back short reports what it moved; the
 * rest of the file is untouched and still there to read. */
struct shortio {
    weft_frame f;
    weft_io io;
    int fd;
    char out[4096], in[4096];
    weft_poll rc;
};

static weft_poll shortio_poll(weft_cx *cx, void *p)
{
    struct shortio *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->rc, weft_write(cx, &t->io, t->fd, t->out, sizeof t->out, 0));
    if (t->rc != sizeof t->out / 2)
        WEFT_RETURN(&t->f, -1000 + t->rc);
    WEFT_AWAIT(&t->f, t->rc, weft_read(cx, &t->io, t->fd, t->in, sizeof t->in, 0));
    if (t->rc != sizeof t->in / 2 || memcmp(t->in, t->out, sizeof t->in / 2) != 0)
        WEFT_RETURN(&t->f, -2000 + t->rc);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(io_faults, short_file_read_and_write_report_what_moved)
{
    weft_runtime_opts o = { .threads = 1 };
    weft_runtime *rt;
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    char path[] = "/tmp/weft-short-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    static struct shortio t;
    memset(&t, 0, sizeof t);
    t.fd = fd;
    for (size_t i = 0; i < sizeof t.out; i++)
        t.out[i] = (char)pattern_at(i);
    weft__io_inject_transfer_faults(1, 0);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(shortio_poll, &t), &out), 0);
    weft__io_inject_transfer_faults(0, 0);
    cr_assert_eq(out.value, 0, "yielded %lld", (long long)out.value);
    cr_assert_eq(lseek(fd, 0, SEEK_END), (off_t)sizeof t.out / 2, "the file grew past the write");
    close(fd);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}
