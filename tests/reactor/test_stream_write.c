/*
 * tests/reactor/test_stream_write.c - the writer of weft/stream.h: bytes
 * buffered until a flush (nothing on the wire before), vectors, room made
 * by sending what is buffered, a direct send larger than the buffer that
 * keeps the buffered prefix first (4 MiB, intact and in order), a file and
 * a pipe; a peer that has gone (-EPIPE, sticky), a timeout (not sticky).
 * Cancellation: a write_all aborted part-way through a direct send yields
 * exactly the bytes the peer then finds; one aborted while making room
 * takes none of its data and leaves the buffer as it was. Every stop waits
 * until the send is seen blocked in the kernel; no sleeps.
 */
#include <criterion/criterion.h>
#include <sys/stat.h>

#include "io_test.h"
#include "test_util.h"

TestSuite(stream_write, .timeout = 120);

#define TCHECK(f, cond)                                                        \
    do {                                                                       \
        if (!(cond))                                                           \
            WEFT_RETURN(f, -(weft_poll)__LINE__ - 1000);                       \
    } while (0)

static weft_runtime *make(unsigned threads)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = threads, .shutdown_grace_ms = 100 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    return rt;
}

static void ok(weft_outcome o)
{
    cr_assert_eq(o.status, 0);
    cr_assert_eq(o.value, 0, "task failed at line %lld (or yielded %lld)",
                 (long long)(-o.value - 1000), (long long)o.value);
}

static void pair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* The writer is shared with the test thread, which looks at it after the
 * task has ended (a frame is a copy, gone once the task is). */
static weft_writer wr;

/* ---- buffering, vectors, room ---------------------------------------------------------- */

struct basic {
    weft_frame f;
    int peer;
    char got[64];
    struct iovec iov[3];
    weft_poll n;
};

static weft_poll basic_poll(weft_cx *cx, void *p)
{
    struct basic *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->n, weft_write_all(cx, &wr, "abc", 3));
    TCHECK(&t->f, t->n == 3 && weft_writer_buffered(&wr) == 3);
    TCHECK(&t->f, recv(t->peer, t->got, sizeof t->got, MSG_DONTWAIT) < 0);  /* nothing sent */
    t->iov[0] = (struct iovec){ "de", 2 };
    t->iov[1] = (struct iovec){ NULL, 0 };
    t->iov[2] = (struct iovec){ "fgh", 3 };
    WEFT_AWAIT(&t->f, t->n, weft_writev_all(cx, &wr, t->iov, 3));
    TCHECK(&t->f, t->n == 5 && weft_writer_buffered(&wr) == 8);
    /* 10 more do not fit the 16-byte buffer's free 8: it sends, then takes them */
    WEFT_AWAIT(&t->f, t->n, weft_write_all(cx, &wr, "0123456789", 10));
    TCHECK(&t->f, t->n == 10 && weft_writer_buffered(&wr) == 10);
    WEFT_AWAIT(&t->f, t->n, weft_flush(cx, &wr));
    TCHECK(&t->f, t->n == 0 && weft_writer_buffered(&wr) == 0);
    WEFT_AWAIT(&t->f, t->n, weft_flush(cx, &wr));       /* nothing to do */
    TCHECK(&t->f, t->n == 0);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(stream_write, buffered_until_flushed_in_order)
{
    weft_runtime *rt = make(2);
    int sv[2];
    pair(sv);
    cr_assert_eq(weft_writer_init(&wr, sv[0], NULL, 16), 0);
    struct basic t = { .peer = sv[1] };
    weft_outcome o;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(basic_poll, &t), &o), 0);
    ok(o);
    char got[32] = { 0 };
    cr_assert_eq(recv(sv[1], got, sizeof got, MSG_DONTWAIT), 18);
    cr_assert_str_eq(got, "abcdefgh0123456789");
    cr_assert_eq(weft_writer_destroy(&wr), 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    close(sv[0]);
    close(sv[1]);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a direct send larger than the buffer ---------------------------------------------- */

#define BIG (4u << 20)
static unsigned char big_src[BIG], big_dst[BIG + 8];

struct big_tx {
    weft_frame f;
    weft_poll n;
};

static weft_poll big_tx_poll(weft_cx *cx, void *p)
{
    struct big_tx *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->n, weft_write_all(cx, &wr, "HDR:", 4));
    TCHECK(&t->f, t->n == 4);
    WEFT_AWAIT(&t->f, t->n, weft_write_all(cx, &wr, big_src, BIG));
    TCHECK(&t->f, t->n == BIG && weft_writer_buffered(&wr) == 0);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

struct big_rx {
    weft_frame f;
    weft_xfer x;
    int fd;
    weft_poll n;
};

static weft_poll big_rx_poll(weft_cx *cx, void *p)
{
    struct big_rx *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->n, weft_recv_exact(cx, &t->x, t->fd, big_dst, BIG + 4));
    TCHECK(&t->f, t->n == BIG + 4);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(stream_write, a_direct_send_keeps_the_buffered_prefix_first)
{
    weft_runtime *rt = make(2);
    int s = -1, c = -1;
    cr_assert_eq(iot_tcp_pair_bufs(&s, &c, 16384), 0);     /* many partial sends */
    for (size_t i = 0; i < BIG; i++)
        big_src[i] = (unsigned char)(i * 2654435761u >> 11);
    cr_assert_eq(weft_writer_init(&wr, c, NULL, 4096), 0);
    struct big_tx tx = { 0 };
    struct big_rx rx = { .x = WEFT_XFER_INIT, .fd = s };
    weft_join ht, hr;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(big_rx_poll, &rx), &hr), 0);
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(big_tx_poll, &tx), &ht), 0);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&ht, &o), 0);
    ok(o);
    cr_assert_eq(weft_join_wait(&hr, &o), 0);
    ok(o);
    cr_assert_eq(memcmp(big_dst, "HDR:", 4), 0);
    cr_assert_eq(memcmp(big_dst + 4, big_src, BIG), 0, "bytes changed or out of order");
    cr_assert_eq(weft_writer_destroy(&wr), 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    close(s);
    close(c);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation ------------------------------------------------------------------------ */

struct one_write {
    weft_frame f;
    const void *data;
    size_t len;
    weft_poll n;
};

static weft_poll one_write_poll(weft_cx *cx, void *p)
{
    struct one_write *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->n, weft_write_all(cx, &wr, t->data, t->len));
    WEFT_RETURN(&t->f, t->n);
    WEFT_END(&t->f);
}

/* One write_all in a task of its own; what it yielded. */
static weft_poll write_now(weft_runtime *rt, const void *data, size_t len)
{
    struct one_write t = { .data = data, .len = len };
    weft_outcome o;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(one_write_poll, &t), &o), 0);
    cr_assert_eq(o.status, 0);
    return o.value;
}

/* Start one write_all, wait until its send blocks in the kernel, abort it;
 * returns what the await yielded. */
static weft_poll abort_blocked_write(weft_runtime *rt, const void *data, size_t len)
{
    struct one_write t = { .data = data, .len = len };
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(one_write_poll, &t), &h), 0);
    cr_assert(iot_wait_polls(IORING_OP_SENDMSG, 1), "the send never blocked");
    cr_assert_eq(weft_abort(&h), 0);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert_eq(o.status, 0);
    return o.value;
}

Test(stream_write, an_aborted_direct_write_yields_what_went_out)
{
    weft_runtime *rt = make(2);
    for (size_t i = 0; i < BIG; i++)
        big_src[i] = (unsigned char)(i * 40503u >> 7);
    for (int round = 0; round < 5; round++) {
        int sv[2];
        pair(sv);
        cr_assert_eq(weft_writer_init(&wr, sv[0], NULL, 1024), 0);
        weft_poll n = abort_blocked_write(rt, big_src, BIG);
        /* the first send filled the socket, the second was withdrawn */
        cr_assert(n > 0 && n < (weft_poll)BIG, "yielded %lld", (long long)n);
        cr_assert_eq(weft_writer_buffered(&wr), 0);
        cr_assert_eq(weft_writer_error(&wr), 0);
        long got = 0;
        for (ssize_t k; (k = recv(sv[1], big_dst + got, BIG - (size_t)got, MSG_DONTWAIT)) > 0;)
            got += k;
        cr_assert_eq(got, n, "the peer found %ld bytes, the write said %lld", got, (long long)n);
        cr_assert_eq(memcmp(big_dst, big_src, (size_t)got), 0);
        cr_assert_eq(weft_writer_destroy(&wr), 0);
        close(sv[0]);
        close(sv[1]);
    }
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(stream_write, a_write_aborted_while_making_room_takes_nothing)
{
    weft_runtime *rt = make(2);
    int sv[2];
    pair(sv);
    cr_assert_gt(iot_fill(sv[0]), 0);       /* a Unix stream stays full */
    cr_assert_eq(weft_writer_init(&wr, sv[0], NULL, 16), 0);
    cr_assert_eq(write_now(rt, "0123456789", 10), 10);     /* buffered, no I/O */
    weft_poll n = abort_blocked_write(rt, "abcdefghij", 10);
    cr_assert_eq(n, -ECANCELED);
    cr_assert_eq(weft_writer_buffered(&wr), 10, "the buffered prefix changed");
    cr_assert_eq(weft_writer_error(&wr), 0);
    cr_assert_eq(weft_writer_destroy(&wr), 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    close(sv[0]);
    close(sv[1]);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- errors and deadlines ------------------------------------------------------------------ */

struct failing {
    weft_frame f;
    weft_poll n;
};

static weft_poll failing_poll(weft_cx *cx, void *p)
{
    struct failing *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->n, weft_write_all(cx, &wr, "lost", 4));
    TCHECK(&t->f, t->n == 4);                   /* buffered: no I/O yet */
    WEFT_AWAIT(&t->f, t->n, weft_flush(cx, &wr));
    TCHECK(&t->f, t->n == -EPIPE && weft_writer_error(&wr) == -EPIPE);
    WEFT_AWAIT(&t->f, t->n, weft_write_all(cx, &wr, "x", 1));
    TCHECK(&t->f, t->n == -EPIPE);              /* sticky */
    WEFT_AWAIT(&t->f, t->n, weft_flush(cx, &wr));
    TCHECK(&t->f, t->n == -EPIPE);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(stream_write, a_peer_gone_is_epipe_and_sticky_without_sigpipe)
{
    weft_runtime *rt = make(1);
    int sv[2];
    pair(sv);
    close(sv[1]);
    cr_assert_eq(weft_writer_init(&wr, sv[0], NULL, 64), 0);
    struct failing t = { 0 };
    weft_outcome o;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(failing_poll, &t), &o), 0);
    ok(o);
    cr_assert_eq(weft_writer_destroy(&wr), 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    close(sv[0]);
    WEFT_ASSERT_NO_LEAKS();
}

struct timed_flush {
    weft_frame f;
    weft_poll n;
};

static weft_poll timed_flush_poll(weft_cx *cx, void *p)
{
    struct timed_flush *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->n, weft_write_all(cx, &wr, "waiting", 7));
    TCHECK(&t->f, t->n == 7);
    TCHECK(&t->f, weft_writer_timeout(&wr, 20 * IOT_MS) == 0);
    WEFT_AWAIT(&t->f, t->n, weft_flush(cx, &wr));
    TCHECK(&t->f, t->n == -ETIMEDOUT);
    TCHECK(&t->f, weft_writer_buffered(&wr) == 7 && weft_writer_error(&wr) == 0);
    TCHECK(&t->f, weft_writer_timeout(&wr, 0) == 0);
    TCHECK(&t->f, weft_writer_deadline(&wr, 1) == 0);   /* long past */
    WEFT_AWAIT(&t->f, t->n, weft_flush(cx, &wr));
    TCHECK(&t->f, t->n == -ETIMEDOUT && weft_writer_buffered(&wr) == 7);
    TCHECK(&t->f, weft_writer_deadline(&wr, 0) == 0);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(stream_write, a_timed_out_flush_keeps_the_bytes_and_the_stream)
{
    weft_runtime *rt = make(1);
    int sv[2];
    pair(sv);
    cr_assert_gt(iot_fill(sv[0]), 0);
    cr_assert_eq(weft_writer_init(&wr, sv[0], NULL, 64), 0);
    struct timed_flush t = { 0 };
    weft_outcome o;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(timed_flush_poll, &t), &o), 0);
    ok(o);
    cr_assert_eq(weft_writer_destroy(&wr), 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    close(sv[0]);
    close(sv[1]);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- files and pipes ------------------------------------------------------------------------- */

struct to_fd {
    weft_frame f;
    struct iovec iov[2];
    weft_poll n;
};

static weft_poll to_fd_poll(weft_cx *cx, void *p)
{
    struct to_fd *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->n, weft_write_all(cx, &wr, "line one\n", 9));
    TCHECK(&t->f, t->n == 9);
    t->iov[0] = (struct iovec){ "line ", 5 };
    t->iov[1] = (struct iovec){ "two, longer than the buffer\n", 28 };
    WEFT_AWAIT(&t->f, t->n, weft_writev_all(cx, &wr, t->iov, 2));
    TCHECK(&t->f, t->n == 33);
    WEFT_AWAIT(&t->f, t->n, weft_write_all(cx, &wr, "end\n", 4));
    TCHECK(&t->f, t->n == 4);
    WEFT_AWAIT(&t->f, t->n, weft_flush(cx, &wr));
    TCHECK(&t->f, t->n == 0);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static const char to_fd_text[] = "line one\nline two, longer than the buffer\nend\n";

static void write_to(int wfd, int rfd)
{
    weft_runtime *rt = make(1);
    cr_assert_eq(weft_writer_init(&wr, wfd, NULL, 16), 0);
    struct to_fd t = { 0 };
    weft_outcome o;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(to_fd_poll, &t), &o), 0);
    ok(o);
    char got[128] = { 0 };
    cr_assert_eq(read(rfd, got, sizeof got - 1), (ssize_t)strlen(to_fd_text));
    cr_assert_str_eq(got, to_fd_text);
    cr_assert_eq(weft_writer_destroy(&wr), 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    close(wfd);
    close(rfd);
}

Test(stream_write, to_a_pipe_and_to_a_file)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    write_to(p[1], p[0]);
    char path[] = "/tmp/weft-stream-XXXXXX";
    int wfd = mkstemp(path);
    cr_assert_geq(wfd, 0);
    int rfd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(rfd, 0);
    unlink(path);
    write_to(wfd, rfd);
    WEFT_ASSERT_NO_LEAKS();
}
