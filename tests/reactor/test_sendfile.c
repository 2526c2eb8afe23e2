/*
 * tests/reactor/test_sendfile.c - weft_sendfile (weft/io.h): a file reaches
 * the socket intact from an offset, through many partial splices; a file
 * shorter than count, an offset past its end and a count of 0; misuse; a
 * peer that has gone (-EPIPE, and the process survives the SIGPIPE splice
 * would raise); and withdrawal before, during and after the transfer, by
 * abort, deadline and cancel-safe tear-down, each with `done` exact (the
 * peer receives exactly those bytes, and they are the file's) and no fd
 * left open (the transfer's pipe is closed on every ending).
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "io_test.h"
#include "test_util.h"

#define FLEN (1u << 20)
static unsigned char fdata[FLEN], got[FLEN];

/* Where an io-wq worker splicing into a full TCP socket sleeps. */
static const char *const full_socket_wchan[] = { "sk_stream_wait_memory", "wait_woken", NULL };

static int make_file(void)
{
    char path[] = "/tmp/weft-sendfile-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    for (size_t i = 0; i < FLEN; i++)
        fdata[i] = (unsigned char)(i * 2654435761u >> 11);
    cr_assert_eq(write(fd, fdata, FLEN), (ssize_t)FLEN);
    return fd;
}

static weft_runtime *make(unsigned threads)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = threads, .shutdown_grace_ms = 100 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    return rt;
}

struct sf {
    weft_frame f;
    weft_sendfile_op s;
    int sock, file;
    uint64_t off;
    size_t count;
    uint64_t timeout_ns;
    weft_token *cancel_first;   /* cancelled just before the first poll */
    weft_poll r;
    uint64_t *done;             /* the frame is a copy: done is reported here */
};

static weft_poll sf_poll(weft_cx *cx, void *p)
{
    struct sf *t = p;
    WEFT_BEGIN(&t->f);
    if (t->timeout_ns)
        weft_io_timeout(&t->s.io, t->timeout_ns);
    if (t->cancel_first)
        weft_token_cancel(t->cancel_first);
    WEFT_AWAIT(&t->f, t->r, weft_sendfile(cx, &t->s, t->sock, t->file, t->off, t->count));
    if (t->done)
        *t->done = t->s.done;
    WEFT_RETURN(&t->f, t->r);
    WEFT_END(&t->f);
}

/* Read from fd until EOF or `want` bytes; returns how many. */
static size_t read_all(int fd, unsigned char *buf, size_t want)
{
    size_t n = 0;
    while (n < want) {
        ssize_t k = recv(fd, buf + n, want - n, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    return n;
}

static void check_bytes(const unsigned char *buf, uint64_t off, size_t n)
{
    cr_assert_eq(memcmp(buf, fdata + off, n), 0, "bytes at the peer are not the file's");
}

Test(sendfile, moves_a_file_intact_from_an_offset)
{
    int fds = iot_fd_count();
    weft_runtime *rt = make(2);
    int file = make_file(), s = -1, c = -1;
    cr_assert_eq(iot_tcp_pair_bufs(&s, &c, 16384), 0);  /* many partial splices */
    const uint64_t off = 12345;
    const size_t count = FLEN - off - 999;
    struct sf t = { .s = WEFT_SENDFILE_OP_INIT, .sock = s, .file = file, .off = off,
                    .count = count };
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(sf_poll, &t), &h), 0);
    cr_assert_eq(read_all(c, got, count), count);
    check_bytes(got, off, count);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert_eq(o.status, 0);
    cr_assert_eq(o.value, (int64_t)count);
    cr_assert_eq(lseek(file, 0, SEEK_CUR), (off_t)FLEN, "the file position moved");
    close(s);
    close(c);
    close(file);
    cr_assert_eq(weft_runtime_free(rt), 0);
    cr_assert_eq(iot_fd_count(), fds, "an fd leaked");
    WEFT_ASSERT_NO_LEAKS();
}

static weft_poll run_one(weft_runtime *rt, struct sf *t)
{
    weft_outcome o;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(sf_poll, t), &o), 0);
    cr_assert_eq(o.status, 0);
    return o.value;
}

Test(sendfile, stops_at_the_end_of_the_file)
{
    weft_runtime *rt = make(1);
    int file = make_file(), s = -1, c = -1;
    cr_assert_eq(iot_tcp_pair(&s, &c), 0);
    uint64_t done = 0;
    struct sf t = { .s = WEFT_SENDFILE_OP_INIT, .sock = s, .file = file, .off = FLEN - 100,
                    .count = 5000, .done = &done };
    cr_assert_eq(run_one(rt, &t), 100);
    cr_assert_eq(done, 100);
    cr_assert_eq(read_all(c, got, 100), 100);
    check_bytes(got, FLEN - 100, 100);
    struct sf past = { .s = WEFT_SENDFILE_OP_INIT, .sock = s, .file = file, .off = FLEN + 7,
                       .count = 10 };
    cr_assert_eq(run_one(rt, &past), 0);
    struct sf none = { .s = WEFT_SENDFILE_OP_INIT, .sock = s, .file = file, .count = 0 };
    cr_assert_eq(run_one(rt, &none), 0);
    close(s);
    close(c);
    close(file);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(sendfile, rejects_misuse)
{
    weft_runtime *rt = make(1);
    int file = make_file(), s = -1, c = -1;
    cr_assert_eq(iot_tcp_pair(&s, &c), 0);
    weft_sendfile_op op = WEFT_SENDFILE_OP_INIT;
    cr_assert_eq(weft_sendfile(NULL, &op, s, file, 0, 1), -EINVAL);
    struct sf bad_fd = { .s = WEFT_SENDFILE_OP_INIT, .sock = -1, .file = file, .count = 10 };
    cr_assert_eq(run_one(rt, &bad_fd), -EINVAL);
    /* a socket is not seekable: a splice at an offset from it is refused */
    struct sf not_file = { .s = WEFT_SENDFILE_OP_INIT, .sock = s, .file = c, .count = 10 };
    weft_poll r = run_one(rt, &not_file);
    cr_assert(r == -ESPIPE || r == -EINVAL, "yielded %lld", (long long)r);
    close(s);
    close(c);
    close(file);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(sendfile, a_gone_peer_yields_epipe_and_the_process_lives)
{
    weft_runtime *rt = make(1);
    int file = make_file(), s = -1, c = -1;
    cr_assert_eq(iot_tcp_pair_bufs(&s, &c, 16384), 0);
    close(c);
    uint64_t done = 0;
    struct sf t = { .s = WEFT_SENDFILE_OP_INIT, .sock = s, .file = file, .count = FLEN,
                    .done = &done };
    weft_poll r = run_one(rt, &t);
    cr_assert(r == -EPIPE || r == -ECONNRESET, "yielded %lld", (long long)r);
    cr_assert_lt(done, FLEN);
    close(s);
    close(file);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- withdrawal ------------------------------------------------------------------ */

/* A transfer into a peer that does not read: it fills the socket and blocks
 * in a splice in the kernel. */
struct stuck {
    weft_runtime *rt;
    int file, s, c, fds;
    uint64_t done;
    struct sf t;
    weft_join h;
};

static void stuck_begin(struct stuck *k, unsigned flags, uint64_t timeout_ns)
{
    k->fds = iot_fd_count();
    k->rt = make(2);
    k->file = make_file();
    cr_assert_eq(iot_tcp_pair_bufs(&k->s, &k->c, 16384), 0);
    k->t = (struct sf){ .s = WEFT_SENDFILE_OP_INIT, .sock = k->s, .file = k->file,
                        .off = 3, .count = FLEN - 3, .timeout_ns = timeout_ns,
                        .done = &k->done };
    weft_task_desc d = WEFT_TASK(sf_poll, &k->t);
    d.flags = flags;
    cr_assert_eq(weft_spawn(k->rt, &d, &k->h), 0);
}

/* What the peer finally receives is exactly `done` bytes of the file. */
static void stuck_end(struct stuck *k, uint64_t done)
{
    shutdown(k->s, SHUT_WR);
    size_t n = read_all(k->c, got, FLEN);
    cr_assert_eq(n, done, "the peer got %zu bytes, done says %llu", n,
                 (unsigned long long)done);
    check_bytes(got, 3, n);
    close(k->s);
    close(k->c);
    close(k->file);
    cr_assert_eq(weft_runtime_free(k->rt), 0);
    cr_assert_eq(iot_fd_count(), k->fds, "an fd (the pipe?) leaked");
    WEFT_ASSERT_NO_LEAKS();
}

Test(sendfile, abort_during_a_blocked_splice_reports_exact_progress)
{
    struct stuck k;
    stuck_begin(&k, 0, 0);
    cr_assert(iot_wait_threads_in(full_socket_wchan, 1), "the splice never blocked");
    cr_assert_eq(weft_abort(&k.h), 0);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&k.h, &o), 0);
    cr_assert_eq(o.status, 0);
    cr_assert_eq(o.value, -ECANCELED);
    cr_assert_gt(k.done, 0);
    cr_assert_lt(k.done, FLEN - 3);
    stuck_end(&k, k.done);
}

Test(sendfile, a_deadline_covers_the_whole_transfer)
{
    struct stuck k;
    stuck_begin(&k, 0, 50 * IOT_MS);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&k.h, &o), 0);
    cr_assert_eq(o.value, -ETIMEDOUT);
    stuck_end(&k, k.done);
}

Test(sendfile, tear_down_of_a_cancel_safe_task_closes_the_pipe)
{
    struct stuck k;
    stuck_begin(&k, WEFT_TASK_CANCEL_SAFE, 0);
    cr_assert(iot_wait_threads_in(full_socket_wchan, 1), "the splice never blocked");
    cr_assert_eq(weft_abort(&k.h), 0);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&k.h, &o), 0);
    cr_assert_eq(o.status, -ECANCELED);
    /* done is not reported at a tear-down; the peer still gets whole bytes
     * of the file, a prefix of it */
    shutdown(k.s, SHUT_WR);
    size_t n = read_all(k.c, got, FLEN);
    check_bytes(got, 3, n);
    close(k.s);
    close(k.c);
    close(k.file);
    cr_assert_eq(weft_runtime_free(k.rt), 0);
    cr_assert_eq(iot_fd_count(), k.fds, "an fd (the pipe?) leaked");
    WEFT_ASSERT_NO_LEAKS();
}

Test(sendfile, shutdown_with_a_transfer_in_flight_leaks_nothing)
{
    struct stuck k;
    stuck_begin(&k, WEFT_TASK_CANCEL_SAFE, 0);
    cr_assert(iot_wait_threads_in(full_socket_wchan, 1), "the splice never blocked");
    cr_assert_eq(weft_detach(&k.h), 0);
    close(k.c);             /* nobody reads: the runtime alone must end it */
    close(k.s);
    close(k.file);
    cr_assert_eq(weft_runtime_free(k.rt), 0);
    cr_assert_eq(iot_fd_count(), k.fds, "an fd (the pipe?) leaked");
    WEFT_ASSERT_NO_LEAKS();
}

Test(sendfile, withdrawn_before_it_starts_sends_nothing)
{
    int fds = iot_fd_count();
    weft_runtime *rt = make(1);
    int file = make_file(), s = -1, c = -1;
    cr_assert_eq(iot_tcp_pair(&s, &c), 0);
    weft_token *tok;
    cr_assert_eq(weft_token_new(&tok), 0);
    uint64_t done = 99;
    struct sf t = { .s = WEFT_SENDFILE_OP_INIT, .sock = s, .file = file, .count = FLEN,
                    .cancel_first = tok, .done = &done };
    weft_task_desc d = WEFT_TASK(sf_poll, &t);
    d.tokens = &tok;
    d.ntokens = 1;
    weft_outcome o;
    cr_assert_eq(weft_block_on(rt, &d, &o), 0);
    cr_assert_eq(o.value, -ECANCELED);
    cr_assert_eq(done, 0);
    shutdown(s, SHUT_WR);
    cr_assert_eq(read_all(c, got, FLEN), 0, "bytes went out after the withdrawal");
    weft_token_release(tok);
    close(s);
    close(c);
    close(file);
    cr_assert_eq(weft_runtime_free(rt), 0);
    cr_assert_eq(iot_fd_count(), fds);
    WEFT_ASSERT_NO_LEAKS();
}

Test(sendfile, abort_after_completion_keeps_the_result)
{
    weft_runtime *rt = make(1);
    int file = make_file(), s = -1, c = -1;
    cr_assert_eq(iot_tcp_pair(&s, &c), 0);
    struct sf t = { .s = WEFT_SENDFILE_OP_INIT, .sock = s, .file = file, .count = 4000 };
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(sf_poll, &t), &h), 0);
    cr_assert_eq(read_all(c, got, 4000), 4000);
    while (!weft_join_is_finished(&h))
        iot_pause();
    cr_assert_eq(weft_abort(&h), 1, "the task had finished");
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert_eq(o.value, 4000);
    check_bytes(got, 0, 4000);
    close(s);
    close(c);
    close(file);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}
