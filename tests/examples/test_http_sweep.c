/*
 * tests/examples/test_http_sweep.c - examples/http's connection task and
 * examples/copy's copy task under the cancel-at-every-await sweep (sweep.h):
 * the examples' own code (compiled in), cancelled after its 1st, 2nd, ...
 * await, by abort and by token, until a run completes.
 *
 * The connection's invariant, beside the harness's (no fd left: the socket
 * and any file it opened; the drop hook once; LeakSanitizer: the streams'
 * buffers freed): the permit and the wait-group count given back once; what
 * the client received is a sequence of whole responses, each the right one
 * for its request in order, possibly followed by one cut short - and then
 * the connection was closed (the client saw EOF), never left open with half
 * a response on it. An uncancelled run answers every request it got whole,
 * and ends the way its client asked for: EOF, or -ETIMEDOUT from the
 * deadline scope the client outwaited (the idle phase's, the request
 * phase's or the connection's: the final frame says which expired).
 *
 * The copy's: the destination is absent or a byte-for-byte copy of the
 * source, never partial, and no temporary file is left; uncancelled, it is
 * the copy.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../examples/copy/copy.h"
#include "../../examples/http/http.h"
#include "sweep.h"
#include "test_util.h"

#define EXPECT_CLEAN(expr) cr_expect_eq((expr), 0, "%s", sweep_report())

/* ---- the served directory ----------------------------------------------------------- */

#define SMALL 100
#define BIG 40000               /* three chunks of the conn's file reads */

static char dir[64];
static unsigned char small[SMALL], big[BIG];

static void write_file(const char *name, const void *data, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert(f && fwrite(data, 1, len, f) == len && fclose(f) == 0, "write %s", path);
}

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "%s/weft-http-sweep-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    cr_assert(mkdtemp(dir), "mkdtemp");
    for (size_t i = 0; i < SMALL; i++)
        small[i] = (unsigned char)('a' + i % 26);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (unsigned char)(i * 7 + i / 251);
    write_file("a.txt", small, SMALL);
    write_file("big.bin", big, BIG);
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

/* ---- examples/http: one connection ------------------------------------------------ */

/* The pipelined requests, all in the socket before the run, and what each
 * must be answered with. */
static const struct {
    const char *request;
    int status;
    const void *body;
    size_t len;
} reqs[] = {
    { "GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n", 200, small, SMALL },
    { "HEAD /a.txt HTTP/1.1\r\nHost: t\r\n\r\n", 200, NULL, 0 },
    { "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n", 404, "404 Not Found\n", 14 },
    { "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n", 200, big, BIG },
    { "GET /../a.txt HTTP/1.1\r\nHost: t\r\n\r\n", 403, "403 Forbidden\n", 14 },
    { "GET /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 200, small, SMALL },
};
#define NREQS (sizeof reqs / sizeof reqs[0])

/*
 * How the client behaves after its requests: closes (EOF), goes quiet (the
 * idle phase's scope ends the connection), goes quiet after sending only
 * the last request's first line (the request phase's scope ends it), goes
 * quiet with a connection deadline shorter than the idle one (the
 * connection's scope ends it, from inside the idle phase's), or finds the
 * server drained.
 */
enum conn_mode { CONN_EOF, CONN_QUIET, CONN_SLOW, CONN_LIFE, CONN_DRAINED };

#define SECONDS 1000000000ull   /* virtual: the simulator's clock */

static struct http_server srv;
static struct http_conn conn_init;
static int client = -1, server_fd = -1, root_fd = -1;
static unsigned char got[BIG + 4096];

static void conn_reset(void *arg, weft_task_desc *root)
{
    enum conn_mode mode = *(enum conn_mode *)arg;
    srv = (struct http_server){ .listen_fd = -1, .root_fd = root_fd, .max_header = 8192,
                                .idle_ns = 30 * SECONDS, .request_ns = 20 * SECONDS,
                                .conn_ns = (mode == CONN_LIFE ? 10 : 300) * SECONDS,
                                .linger_ns = SECONDS, .live = WEFT_WAITGROUP_INIT };
    if (weft_semaphore_init(&srv.limit, 0) != 0 || weft_token_new(&srv.drain) != 0
        || weft_token_new(&srv.stop) != 0)
        sweep_fail("server state");
    if (mode == CONN_DRAINED)
        weft_token_cancel(srv.drain);
    if (sweep_tcp_pair(&client, &server_fd) != 0)
        sweep_fail("no loopback pair: %s", strerror(errno));
    size_t n = mode == CONN_EOF || mode == CONN_DRAINED ? NREQS : NREQS - 1;
    for (size_t i = 0; i < n; i++)
        if (sweep_write_all(client, reqs[i].request, strlen(reqs[i].request)) != 0)
            sweep_fail("client write: %s", strerror(errno));
    if (mode == CONN_SLOW && sweep_write_all(client, reqs[n].request,
                                             strchr(reqs[n].request, '\n') + 1 - reqs[n].request) != 0)
        sweep_fail("client write: %s", strerror(errno));
    if (mode == CONN_EOF)
        shutdown(client, SHUT_WR);
    http_conn_task(&srv, server_fd, &conn_init, root);
}

/* One response at p (have bytes): its length when whole and right for
 * request i; 0 when cut short; -1 when wrong. */
static ssize_t check_response(const unsigned char *p, size_t have, size_t i)
{
    const unsigned char *end = memmem(p, have, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - p) + 4;
    int status = 0;
    unsigned long long clen = 0;
    const char *cl = memmem(p, head, "Content-Length: ", 16);
    if (sscanf((const char *)p, "HTTP/1.1 %d ", &status) != 1 || !cl
        || sscanf(cl + 16, "%llu", &clen) != 1)
        return sweep_fail("response %zu: malformed head", i), -1;
    if (status != reqs[i].status)
        return sweep_fail("response %zu: status %d, expected %d", i, status, reqs[i].status), -1;
    size_t body = reqs[i].body ? reqs[i].len : 0;
    if (reqs[i].body && clen != reqs[i].len)
        return sweep_fail("response %zu: Content-Length %llu", i, clen), -1;
    if (have < head + body)
        return 0;
    if (body && memcmp(p + head, reqs[i].body, body) != 0)
        return sweep_fail("response %zu: wrong body", i), -1;
    return (ssize_t)(head + body);
}

/* The responses the client got: how many were whole; -1 on a wrong one or
 * an unexplained tail. *cut: a response was cut short. */
static int client_responses(size_t have, bool *cut)
{
    size_t off = 0;
    int whole = 0;
    *cut = false;
    for (size_t i = 0; i < NREQS && off < have; i++) {
        ssize_t n = check_response(got + off, have - off, i);
        if (n < 0)
            return -1;
        if (n == 0) {
            *cut = true;
            return whole;
        }
        off += (size_t)n;
        whole++;
    }
    if (off != have)
        return sweep_fail("%zu bytes after the last response", have - off), -1;
    return whole;
}

/* An uncancelled run: every whole request answered; a client that went
 * quiet cut by the scope it outwaited, and only by that one. */
static int conn_check_uncancelled(enum conn_mode mode, int whole, bool cut,
                                  const weft_outcome *out)
{
    bool timed_out = mode == CONN_QUIET || mode == CONN_SLOW || mode == CONN_LIFE;
    int want = mode == CONN_DRAINED ? 1 : timed_out ? (int)NREQS - 1 : (int)NREQS;
    int64_t ending = timed_out ? -ETIMEDOUT : 0;
    if (whole != want || cut || out->status != 0 || out->value != ending)
        return sweep_fail("uncancelled: %d whole responses of %d%s, value %lld", whole, want,
                          cut ? " and one cut" : "", (long long)out->value);
    const struct http_conn *c = sweep_final_frame();
    bool life = weft_scope_expired(&c->life), phase = weft_scope_expired(&c->phase);
    if (atomic_load(&srv.timeouts) != timed_out || life != (mode == CONN_LIFE)
        || phase != (mode == CONN_QUIET || mode == CONN_SLOW))
        return sweep_fail("uncancelled: %llu timeouts counted; the connection's scope %s,"
                          " the phase's %s", (unsigned long long)atomic_load(&srv.timeouts),
                          life ? "expired" : "did not expire",
                          phase ? "expired" : "did not expire");
    return 0;
}

static int conn_check(void *arg, unsigned k, bool cancelled, int rc, const weft_outcome *out)
{
    (void)k;
    enum conn_mode mode = *(enum conn_mode *)arg;
    int bad = 0;
    if (sweep_fd_open(server_fd)) {
        bad |= sweep_fail("the conn task left its socket open");
        close(server_fd);
    }
    bool eof, cut;
    ssize_t have = sweep_drain(client, got, sizeof got, &eof);
    close(client);
    if (have < 0)
        return bad | sweep_fail("client recv: %s", strerror((int)-have));
    if (!eof)
        bad |= sweep_fail("the client saw no EOF: the connection was left open");
    int whole = client_responses((size_t)have, &cut);
    bad |= whole < 0;
    if (weft_semaphore_available(&srv.limit) != 1 || weft_waitgroup_count(&srv.live) != 0)
        bad |= sweep_fail("permits %lld, wait group %lld: not given back once",
                          (long long)weft_semaphore_available(&srv.limit),
                          (long long)weft_waitgroup_count(&srv.live));
    weft_semaphore_destroy(&srv.limit);
    weft_token_release(srv.drain);
    weft_token_release(srv.stop);
    if (rc != 0)
        return bad | sweep_fail("weft_sim_run: %s", weft_strerror(rc));
    if (!cancelled)
        bad |= conn_check_uncancelled(mode, whole, cut, out);
    return bad;
}

static int sweep_conn(enum conn_mode mode, const char *task)
{
    /* The reset describes the root (http_conn_task), as weft-http's
     * acceptor does for each connection. */
    sweep_case c = { .program = "examples/http", .task = task, .reset = conn_reset,
                     .check = conn_check, .arg = &mode };
    return sweep_case_run(&c);
}

Test(http_sweep, conn)
{
    make_dir();
    root_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(root_fd, 0);
    EXPECT_CLEAN(sweep_conn(CONN_EOF, "conn, pipelined, EOF"));
    EXPECT_CLEAN(sweep_conn(CONN_QUIET, "conn, pipelined, idle"));
    EXPECT_CLEAN(sweep_conn(CONN_SLOW, "conn, pipelined, headers never end"));
    EXPECT_CLEAN(sweep_conn(CONN_LIFE, "conn, pipelined, connection deadline"));
    EXPECT_CLEAN(sweep_conn(CONN_DRAINED, "conn, drained"));
    close(root_fd);
    remove_dir();
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- examples/copy: the copy task ------------------------------------------------- */

#define COPY_SIZE (2 * COPY_BUF + 1000)     /* three reads, three writes */

static char src_path[96], dst_path[96], partial_path[112];
static unsigned char copy_data[COPY_SIZE];
static struct copy_job copy_init;

static void copy_reset(void *arg, weft_task_desc *root)
{
    (void)arg;
    unlink(dst_path);
    unlink(partial_path);
    copy_task(src_path, dst_path, &copy_init, root);
}

/* dst is absent or the whole copy; no partial file is left. */
static int copy_check(void *arg, unsigned k, bool cancelled, int rc, const weft_outcome *out)
{
    (void)arg;
    (void)k;
    int bad = 0;
    if (access(partial_path, F_OK) == 0)
        bad |= sweep_fail("the partial file was left behind");
    static unsigned char back[COPY_SIZE + 1];
    FILE *f = fopen(dst_path, "rb");
    size_t n = 0;
    if (f) {
        n = fread(back, 1, sizeof back, f);
        fclose(f);
        if (n != COPY_SIZE || memcmp(back, copy_data, COPY_SIZE) != 0)
            bad |= sweep_fail("the destination holds %zu bytes, not the copy", n);
    }
    if (rc != 0)
        return bad | sweep_fail("weft_sim_run: %s", weft_strerror(rc));
    if (out->status != 0 || (out->value != COPY_SIZE && out->value != -ECANCELED))
        bad |= sweep_fail("outcome %d/%lld", out->status, (long long)out->value);
    if ((out->value == COPY_SIZE) != (f != NULL))
        bad |= sweep_fail("yielded %lld but the destination %s", (long long)out->value,
                          f ? "exists" : "is absent");
    if (!cancelled && out->value != COPY_SIZE)
        bad |= sweep_fail("uncancelled, it yielded %lld", (long long)out->value);
    return bad;
}

Test(http_sweep, copy)
{
    make_dir();
    snprintf(src_path, sizeof src_path, "%s/src", dir);
    snprintf(dst_path, sizeof dst_path, "%s/dst", dir);
    snprintf(partial_path, sizeof partial_path, "%s.partial", dst_path);
    for (size_t i = 0; i < COPY_SIZE; i++)
        copy_data[i] = (unsigned char)(i * 13 + i / 4093);
    write_file("src", copy_data, COPY_SIZE);
    sweep_case c = { .program = "examples/copy", .task = "copy", .reset = copy_reset,
                     .check = copy_check };
    EXPECT_CLEAN(sweep_case_run(&c));
    remove_dir();
    WEFT_ASSERT_NO_LEAKS();
}
