/*
 * tests/core/test_misuse_server.c - the server toolkit's calls misused:
 * weft/stream.h, weft/signal.h and weft/net.h with NULL arguments, bad
 * fds, out-of-range sizes and delimiters, zeroed (never initialised) or
 * closed objects, outside a task and inside one. Each must return the
 * documented error and change nothing; none may crash. Also -ENOMEM from a
 * stream's buffer, with weft usable afterwards. (The environment's misuse
 * is in test_env.c; the other headers' in test_misuse_*.c.)
 */
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "core_util.h"
#include "runtime/alloc.h"
#include "weft/signal.h"

TestSuite(misuse_server, .timeout = 60);

static int sock_pair[2];

Test(misuse_server, outside_a_task_and_synchronous_calls)
{
    weft_reader r = WEFT_READER_INIT;
    weft_writer w = WEFT_WRITER_INIT;
    char buf[8], *p = NULL;
    struct iovec iov = { buf, sizeof buf };
    /* setup */
    cr_assert_eq(weft_reader_init(NULL, 0, NULL, 8), -EINVAL);
    cr_assert_eq(weft_reader_init(&r, -1, NULL, 8), -EINVAL);
    cr_assert_eq(weft_reader_init(&r, 0, NULL, 0), -EINVAL);
    cr_assert_eq(weft_reader_init(&r, 0, NULL, WEFT_STREAM_MAX_BUFFER + 1), -EINVAL);
    cr_assert_eq(weft_reader_init(&r, 12345, NULL, 8), -EBADF);
    cr_assert_eq(weft_writer_init(NULL, 0, NULL, 8), -EINVAL);
    cr_assert_eq(weft_writer_init(&w, -1, buf, 8), -EINVAL);
    cr_assert_eq(weft_writer_init(&w, 12345, buf, 8), -EBADF);
    cr_assert_eq(weft_reader_destroy(NULL), -EINVAL);
    cr_assert_eq(weft_writer_destroy(NULL), -EINVAL);
    /* a zeroed stream: nothing buffered, every call refused */
    cr_assert_eq(weft_reader_buffered(&r, NULL), 0);
    cr_assert_eq(weft_reader_buffered(NULL, NULL), 0);
    cr_assert_eq(weft_reader_consume(&r, 1), -EINVAL);
    cr_assert_eq(weft_reader_consume(NULL, 0), -EINVAL);
    cr_assert_eq(weft_reader_timeout(NULL, 1), -EINVAL);
    cr_assert_eq(weft_reader_deadline(NULL, 1), -EINVAL);
    cr_assert_eq(weft_writer_buffered(NULL), 0);
    cr_assert_eq(weft_writer_error(NULL), -EINVAL);
    cr_assert_eq(weft_writer_error(&w), 0);
    cr_assert_eq(weft_writer_timeout(NULL, 1), -EINVAL);
    cr_assert_eq(weft_writer_deadline(NULL, 1), -EINVAL);
    /* leaves outside a task */
    cr_assert_eq(weft_read_until(NULL, &r, '\n', &p), -EINVAL);
    cr_assert_eq(weft_read_line(NULL, &r, &p, NULL), -EINVAL);
    cr_assert_eq(weft_read_exact(NULL, &r, buf, 1), -EINVAL);
    cr_assert_eq(weft_read_some(NULL, &r, buf, 1), -EINVAL);
    cr_assert_eq(weft_write_all(NULL, &w, buf, 1), -EINVAL);
    cr_assert_eq(weft_writev_all(NULL, &w, &iov, 1), -EINVAL);
    cr_assert_eq(weft_flush(NULL, &w), -EINVAL);
    weft_signal s = WEFT_SIGNAL_INIT;
    cr_assert_eq(weft_signal_wait(NULL, &s), -EINVAL);
    weft_connector c = WEFT_CONNECTOR_INIT;
    weft_acceptor a = WEFT_ACCEPTOR_INIT;
    weft_semaphore sem = WEFT_SEMAPHORE_INIT(1);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    cr_assert_eq(weft_connect_timeout(NULL, &c, (struct sockaddr *)&sa, sizeof sa, 0), -EINVAL);
    cr_assert_eq(weft_unix_connect(NULL, &c, "/x", 0), -EINVAL);
    cr_assert_eq(weft_accept_limited(NULL, &a, 0, &sem), -EINVAL);
    cr_assert_eq(weft_semaphore_available(&sem), 1);
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse_server, signals)
{
    sigset_t set, killset;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigemptyset(&killset);
    sigaddset(&killset, SIGKILL);
    weft_signal s = WEFT_SIGNAL_INIT;
    cr_assert_eq(weft_signal_block(NULL), -EINVAL);
    cr_assert_eq(weft_signal_block(&killset), -EINVAL);
    cr_assert_eq(weft_signal_open(NULL, &set), -EINVAL);
    cr_assert_eq(weft_signal_open(&s, NULL), -EINVAL);
    cr_assert_eq(weft_signal_open(&s, &set), -EINVAL);     /* not blocked here */
    cr_assert_eq(weft_signal_block(&set), 0);
    cr_assert_eq(weft_signal_open(&s, &killset), -EINVAL);
    sigset_t empty;
    sigemptyset(&empty);
    cr_assert_eq(weft_signal_open(&s, &empty), -EINVAL);
    cr_assert_eq(weft_signal_close(NULL), -EINVAL);
    cr_assert_eq(weft_signal_close(&s), -EINVAL);          /* never opened */
    cr_assert_eq(weft_signal_open(&s, &set), 0);
    cr_assert_eq(weft_signal_open(&s, &set), -EINVAL);     /* already open */
    cr_assert_eq(weft_signal_close(&s), 0);
}

Test(misuse_server, listeners)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct sockaddr_un sun;
    socklen_t len;
    cr_assert_eq(weft_listen(NULL, 0, 1, 0), -EINVAL);
    cr_assert_eq(weft_listen((struct sockaddr *)&sa, sizeof sa, 1, 1u << 7), -EINVAL);
    cr_assert_eq(weft_tcp_listen(NULL, 0, 1), -EINVAL);
    cr_assert_eq(weft_unix_addr(NULL, &sun, &len), -EINVAL);
    cr_assert_eq(weft_unix_addr("", &sun, &len), -EINVAL);
    cr_assert_eq(weft_unix_addr("/x", NULL, &len), -EINVAL);
    cr_assert_eq(weft_unix_addr("/x", &sun, NULL), -EINVAL);
    char longpath[200];
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    cr_assert_eq(weft_unix_addr(longpath, &sun, &len), -ENAMETOOLONG);
    cr_assert_eq(weft_unix_listen(longpath, 1, 0), -ENAMETOOLONG);
    cr_assert_eq(weft_unix_listen(NULL, 1, 0), -EINVAL);
    cr_assert_eq(weft_unix_listen("/tmp/x", 1, 1u << 9), -EINVAL);
    cr_assert_eq(weft_unix_listen("/nonexistent-dir/sock", 1, 0), -ENOENT);
}

/* Inside a task: the argument checks that need a real cx. */
struct inside {
    weft_frame f;
    weft_reader r;
    weft_writer w;
    weft_connector c;
    weft_acceptor a;
    weft_semaphore sem;
    char buf[8];
    char *p;
    struct iovec iov[2];
};

static int inside_checks(weft_cx *cx, struct inside *t)
{
    weft_reader zr = WEFT_READER_INIT;
    weft_writer zw = WEFT_WRITER_INIT;
    struct sockaddr_in sa = { .sin_family = AF_INET };
    int bad = 0;
#define EXPECT(call, want) bad += (call) != (want)
    EXPECT(weft_read_until(cx, &zr, '\n', &t->p), -EINVAL);     /* never initialised */
    EXPECT(weft_read_until(cx, NULL, '\n', &t->p), -EINVAL);
    EXPECT(weft_read_until(cx, &t->r, 256, &t->p), -EINVAL);
    EXPECT(weft_read_until(cx, &t->r, -1, &t->p), -EINVAL);
    EXPECT(weft_read_until(cx, &t->r, '\n', NULL), -EINVAL);
    EXPECT(weft_read_line(cx, &t->r, NULL, NULL), -EINVAL);
    EXPECT(weft_read_exact(cx, &t->r, NULL, 1), -EINVAL);
    EXPECT(weft_read_exact(cx, &t->r, t->buf, 9), -EMSGSIZE);  /* capacity 8 */
    EXPECT(weft_read_exact(cx, &t->r, NULL, 0), 0);
    EXPECT(weft_read_some(cx, &t->r, NULL, 1), -EINVAL);
    EXPECT(weft_read_some(cx, &t->r, t->buf, 0), 0);
    EXPECT(weft_write_all(cx, &zw, t->buf, 1), -EINVAL);
    EXPECT(weft_write_all(cx, &t->w, NULL, 1), -EINVAL);
    EXPECT(weft_write_all(cx, &t->w, NULL, 0), 0);
    EXPECT(weft_writev_all(cx, &t->w, NULL, 1), -EINVAL);
    EXPECT(weft_writev_all(cx, &t->w, t->iov, -1), -EINVAL);
    EXPECT(weft_writev_all(cx, &t->w, t->iov, IOV_MAX + 1), -EINVAL);
    t->iov[0] = (struct iovec){ NULL, 3 };
    EXPECT(weft_writev_all(cx, &t->w, t->iov, 1), -EINVAL);
    t->iov[0] = (struct iovec){ t->buf, SIZE_MAX / 2 + 1 };
    t->iov[1] = (struct iovec){ t->buf, SIZE_MAX / 2 + 1 };
    EXPECT(weft_writev_all(cx, &t->w, t->iov, 2), -EINVAL);     /* total overflows */
    EXPECT(weft_writer_buffered(&t->w), 0);                     /* nothing taken */
    EXPECT(weft_flush(cx, &zw), -EINVAL);
    EXPECT(weft_flush(cx, NULL), -EINVAL);
    EXPECT(weft_signal_wait(cx, NULL), -EINVAL);
    weft_signal closed = WEFT_SIGNAL_INIT;
    EXPECT(weft_signal_wait(cx, &closed), -EINVAL);
    EXPECT(weft_connect_timeout(cx, NULL, (struct sockaddr *)&sa, sizeof sa, 0), -EINVAL);
    EXPECT(weft_connect_timeout(cx, &t->c, NULL, sizeof sa, 0), -EINVAL);
    EXPECT(weft_connect_timeout(cx, &t->c, (struct sockaddr *)&sa, 1, 0), -EINVAL);
    EXPECT(weft_connect_timeout(cx, &t->c, (struct sockaddr *)&sa, 129, 0), -EINVAL);
    EXPECT(weft_unix_connect(cx, &t->c, NULL, 0), -EINVAL);
    EXPECT(weft_unix_connect(cx, &t->c, "", 0), -EINVAL);
    EXPECT(weft_accept_limited(cx, NULL, 0, &t->sem), -EINVAL);
    EXPECT(weft_accept_limited(cx, &t->a, 0, NULL), -EINVAL);
#undef EXPECT
    return bad;
}

static weft_poll inside_poll(weft_cx *cx, void *p)
{
    return inside_checks(cx, p);
}

Test(misuse_server, inside_a_task)
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock_pair), 0);
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = 1 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    static struct inside t;
    cr_assert_eq(weft_reader_init(&t.r, sock_pair[0], NULL, 8), 0);
    cr_assert_eq(weft_writer_init(&t.w, sock_pair[1], NULL, 8), 0);
    t.c = (weft_connector)WEFT_CONNECTOR_INIT;
    t.a = (weft_acceptor)WEFT_ACCEPTOR_INIT;
    cr_assert_eq(weft_semaphore_init(&t.sem, 1), 0);
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(inside_poll, &t), &out), 0);
    cr_assert_eq(out.value, 0, "%lld checks failed", (long long)out.value);
    cr_assert_eq(weft_reader_destroy(&t.r), 0);
    cr_assert_eq(weft_writer_destroy(&t.w), 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    close(sock_pair[0]);
    close(sock_pair[1]);
    WEFT_ASSERT_NO_LEAKS();
}

Test(misuse_server, out_of_memory_for_a_stream_buffer)
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock_pair), 0);
    weft_reader r = WEFT_READER_INIT;
    weft_writer w = WEFT_WRITER_INIT;
    weft__alloc_fail_after(1);
    cr_assert_eq(weft_reader_init(&r, sock_pair[0], NULL, 4096), -ENOMEM);
    weft__alloc_fail_after(1);
    cr_assert_eq(weft_writer_init(&w, sock_pair[1], NULL, 4096), -ENOMEM);
    weft__alloc_fail_after(0);
    cr_assert_eq(weft_reader_buffered(&r, NULL), 0);
    cr_assert_eq(weft_reader_init(&r, sock_pair[0], NULL, 4096), 0);
    cr_assert_eq(weft_writer_init(&w, sock_pair[1], NULL, 4096), 0);
    cr_assert_eq(weft_reader_destroy(&r), 0);
    cr_assert_eq(weft_writer_destroy(&w), 0);
    close(sock_pair[0]);
    close(sock_pair[1]);
    WEFT_ASSERT_NO_LEAKS();
}
