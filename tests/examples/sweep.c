/*
 * tests/examples/sweep.c - the sweep harness (see sweep.h) and the socket
 * fixtures the cases share.
 */
#include "sweep.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#if defined(WEFT_TEST_LSAN) && WEFT_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* ---- the run in progress ------------------------------------------------------ */

static const sweep_case *cur;
static weft_task_desc run_root;     /* what the simulator spawns */
static const char *cur_kind;
static unsigned cur_k;
static int fds_before;
static atomic_uint root_drops;
static weft_drop_fn orig_drop;
static void *final_frame;
static size_t final_size, final_cap;
static bool have_final;
static bool leak_seen;
static unsigned fails_allowed, fails_unexpected, first_unexpected_k;
static bool must_fail_seen;
static unsigned fails_known, first_known_k;
static bool known_seen;

/* What sweep_report returns: Criterion's TAP output drops a test's stderr,
 * so the rows and the failures also go into the assertion's message. */
static char report[16384];
static size_t report_len;

#define say sweep_note

void sweep_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fputs(line, stderr);
    size_t n = strlen(line);
    if (report_len + n < sizeof report) {
        memcpy(report + report_len, line, n + 1);
        report_len += n;
    }
}

const char *sweep_report(void)
{
    return report;
}

int sweep_fail(const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    say("  %s / %s (%s, %s) k=%u: %s\n", cur ? cur->program : "?", cur ? cur->task : "?",
        cur && (run_root.flags & WEFT_TASK_CANCEL_SAFE) ? "cancel-safe" : "cooperative",
        cur_kind ? cur_kind : "?", cur_k, msg);
    return 1;
}

bool sweep_known_bug_seen(void)
{
    return known_seen;
}

const void *sweep_final_frame(void)
{
    return have_final ? final_frame : NULL;
}

/* Wraps the root's own drop hook: counts it and keeps the final frame. */
static void harness_drop(void *frame)
{
    atomic_fetch_add(&root_drops, 1);
    if (final_frame) {
        memcpy(final_frame, frame, final_size);
        have_final = true;
    }
    if (orig_drop)
        orig_drop(frame);
}

static void harness_reset(void *arg)
{
    (void)arg;
    cur_k++;
    atomic_store(&root_drops, 0);
    have_final = false;
    fds_before = weft_harness_open_fds();
    if (cur->reset)
        cur->reset(cur->arg, &run_root);
    if (run_root.drop != harness_drop) {
        orig_drop = run_root.drop;
        run_root.drop = harness_drop;
    }
    if (run_root.frame_size > final_cap) {
        free(final_frame);
        final_cap = run_root.frame_size;
        final_frame = calloc(1, final_cap);     /* checked by harness_drop */
    }
    final_size = run_root.frame_size;
}

static int harness_check(void *arg, unsigned k, bool cancelled, int rc, const weft_outcome *out)
{
    (void)arg;
    cur_k = k;
    int bad = 0;
    if (cur->check)
        bad |= cur->check(cur->arg, k, cancelled, rc, out);
    unsigned drops = atomic_load(&root_drops);
    if (drops != 1)
        bad |= sweep_fail("the root's drop hook ran %u times", drops);
    int fds = weft_harness_open_fds();
    if (fds != fds_before)
        bad |= sweep_fail("%d fds leaked", fds - fds_before);
#if defined(WEFT_TEST_LSAN) && WEFT_TEST_LSAN
    if (!leak_seen && __lsan_do_recoverable_leak_check() != 0) {
        leak_seen = true;
        bad |= sweep_fail("LeakSanitizer found leaks after this run (report above)");
    }
#endif
    if (bad && k == cur->must_fail_k)
        must_fail_seen = true;
    if (!bad)
        return 0;
    if (k >= cur->allow_fail_lo && k <= cur->allow_fail_hi) {
        fails_allowed++;
    } else if (cur->known_bug && cancelled) {
        if (fails_known++ == 0)
            first_known_k = k;
    } else if (fails_unexpected++ == 0) {
        first_unexpected_k = k;
    }
    return bad;
}

static int sweep_kind(const sweep_case *c, weft_sim_cancel how)
{
    cur_kind = how == WEFT_SIM_CANCEL_ABORT ? "abort" : "token";
    cur_k = 0;
    fails_allowed = fails_unexpected = first_unexpected_k = fails_known = first_known_k = 0;
    must_fail_seen = false;
    run_root = c->root;
    orig_drop = run_root.drop;
    run_root.drop = harness_drop;
    weft_sim_sweep sw = {
        .sim = { .seed = SWEEP_SEED, .workers = SWEEP_WORKERS },
        .how = how,
        .check = harness_check,
        .reset = harness_reset,
        .max_k = c->max_k,
    };
    weft_sim_sweep_result res;
    int rc = weft_sim_sweep_cancel(&sw, &run_root, &res);
    if (rc != 0)
        return sweep_fail("weft_sim_sweep_cancel: %s", weft_strerror(rc));
    bool ok = fails_unexpected == 0 && (!c->must_fail_k || must_fail_seen);
    char expected[96] = "";
    if (c->must_fail_k)
        snprintf(expected, sizeof expected, " (wrong variant: %u runs in k=%u..%u broke it, "
                 "k=%u %s)", fails_allowed, c->allow_fail_lo, c->allow_fail_hi, c->must_fail_k,
                 must_fail_seen ? "did as it must" : "DID NOT");
    /* One row of the table the test prints. */
    say("| %-28s | %-23s | %-11s | %-5s | k=1..%-3u | %3u runs, %3u awaits | %s%s\n",
        c->program, c->task, run_root.flags & WEFT_TASK_CANCEL_SAFE ? "cancel-safe" : "cooperative",
        cur_kind, res.runs, res.runs, res.awaits, ok ? "ok" : "FAILED", expected);
    if (fails_unexpected)
        say("|   %u runs failed, the first at k=%u\n", fails_unexpected, first_unexpected_k);
    if (fails_known) {
        known_seen = true;
        say("|   KNOWN BUG, not yet fixed (%s): %u cancelled runs failed, the first at k=%u\n",
            c->known_bug, fails_known, first_known_k);
    }
    return ok ? 0 : 1;
}

int sweep_case_run(const sweep_case *c)
{
    final_size = final_cap = c->root.frame_size ? c->root.frame_size : 1;
    final_frame = calloc(1, final_cap);
    if (!final_frame)
        return 1;
    cur = c;
    leak_seen = false;
    known_seen = false;
    report[0] = '\0';
    report_len = 0;
    int bad = sweep_kind(c, WEFT_SIM_CANCEL_ABORT);
    bad |= sweep_kind(c, WEFT_SIM_CANCEL_TOKEN);
    cur = NULL;
    free(final_frame);
    final_frame = NULL;
    return bad;
}

/* ---- fds and sockets ------------------------------------------------------------ */

bool sweep_fd_open(int fd)
{
    return fd >= 0 && fcntl(fd, F_GETFD) != -1;
}

int sweep_tcp_listener(int backlog)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    return weft_tcp_listen((const struct sockaddr *)&a, sizeof a, backlog);
}

int sweep_tcp_connect(int listener)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if (getsockname(listener, (struct sockaddr *)&a, &len) != 0)
        return -errno;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&a, len) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int sweep_tcp_pair(int *client, int *server)
{
    int l = sweep_tcp_listener(1);
    if (l < 0)
        return l;
    int c = sweep_tcp_connect(l);
    if (c < 0) {
        close(l);
        return c;
    }
    int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    int err = s < 0 ? -errno : 0;
    close(l);
    if (err) {
        close(c);
        return err;
    }
    *client = c;
    *server = s;
    return 0;
}

int sweep_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t sweep_drain(int fd, void *buf, size_t cap, bool *eof)
{
    /* Not a synchronisation: EOF is due already or never comes (a leak). */
    struct timeval guard = { .tv_sec = 10 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof guard);
    size_t have = 0;
    char scratch[4096];
    *eof = false;
    for (;;) {
        char *to = have < cap ? (char *)buf + have : scratch;
        size_t room = have < cap ? cap - have : sizeof scratch;
        ssize_t n = recv(fd, to, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE))) {
            *eof = true;
            return (ssize_t)have;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return (ssize_t)have;
        if (n < 0)
            return -errno;
        have += (size_t)n;
    }
}

void sweep_peer_open(struct sweep_peer *pe, size_t len, bool shut_wr)
{
    pe->len = len;
    if (sweep_tcp_pair(&pe->client, &pe->server) != 0) {
        sweep_fail("peer: no loopback TCP pair: %s", strerror(errno));
        pe->client = pe->server = -1;
        return;
    }
    for (size_t i = 0; i < len; i++)
        pe->sent[i] = (unsigned char)(i * 7 + i / 251);
    if (sweep_write_all(pe->client, pe->sent, len) != 0)
        sweep_fail("peer: write: %s", strerror(errno));
    if (shut_wr)
        shutdown(pe->client, SHUT_WR);
}

int sweep_peer_close(struct sweep_peer *pe, const char *who, size_t *echoed)
{
    int bad = 0;
    *echoed = 0;
    if (pe->client < 0)
        return sweep_fail("peer: no socket pair");
    /* Nothing opened an fd since the run ended, so the number is still the
     * handler's socket if it is open. */
    if (sweep_fd_open(pe->server)) {
        bad |= sweep_fail("%s left its socket (fd %d) open", who, pe->server);
        close(pe->server);
    }
    bool eof;
    ssize_t n = sweep_drain(pe->client, pe->got, sizeof pe->got, &eof);
    if (n < 0) {
        bad |= sweep_fail("peer: recv: %s", strerror((int)-n));
        n = 0;
    }
    if (!eof)
        bad |= sweep_fail("the client of %s saw no EOF", who);
    if ((size_t)n > pe->len || memcmp(pe->got, pe->sent, (size_t)n) != 0)
        bad |= sweep_fail("%s echoed %zd bytes that are not a prefix of the %zu sent", who, n,
                          pe->len);
    close(pe->client);
    pe->client = pe->server = -1;
    *echoed = (size_t)n;
    return bad;
}
