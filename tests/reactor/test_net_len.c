/*
 * tests/reactor/test_net_len.c - weft_send / weft_recv with a length of 4 GiB
 * or more. The SQE length is 32 bits: such a length must be shortened (to the
 * kernel's one-transfer limit, 0x7ffff000) and never cut to its low bits,
 * which made recv yield a false 0 ("peer closed"), send move nothing, and
 * send_all spin on zero-length sends for ever.
 *
 * The buffers are address space, not memory: a length of 4 GiB must be
 * backed by a mapping that long (the kernel checks the range), but the
 * kernel only touches the bytes it transfers.
 *   - Receives use a PROT_NONE mapping with only its first page writable,
 *     and at most a few bytes queued: a receive that wrote past what it
 *     reports would fault (-EFAULT) instead of corrupting anything.
 *   - Sends use a PROT_READ anonymous mapping: every page reads as the
 *     shared zero page, so only the bytes that fit the socket buffer are
 *     read and nothing is allocated.
 * Both are MAP_NORESERVE, so nothing is charged against memory.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sys/mman.h>

#include "io_test.h"

#define FOUR_GIB ((size_t)1 << 32)
#define ONE_XFER 0x7ffff000u    /* the kernel's limit for one transfer */

TestSuite(net_len, .timeout = 120);

static weft_runtime *make(void)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = 2, .shutdown_grace_ms = 100 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    return rt;
}

static void run(weft_runtime *rt, weft_poll_fn poll, void *frame, size_t size)
{
    weft_task_desc d = { .poll = poll, .frame = frame, .frame_size = size };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 0, "task yielded %lld", (long long)out.value);
}

/* len bytes of address space whose first page alone is writable. */
static char *guarded(size_t len)
{
    char *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    cr_assert_neq(p, MAP_FAILED, "mmap: %d", errno);
    cr_assert_eq(mprotect(p, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE), 0);
    return p;
}

/* len readable bytes, all zero, costing no memory. */
static char *zeros(size_t len)
{
    char *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    cr_assert_neq(p, MAP_FAILED, "mmap: %d", errno);
    return p;
}

static void pair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* ---- recv: a long length gets the queued bytes, never a false 0 ------------------ */

struct rx {
    weft_frame f;
    weft_io io;
    int fd;
    char *buf;
    size_t len;
    weft_poll r;
};

static weft_poll rx_poll(weft_cx *cx, void *p)
{
    struct rx *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->r, weft_recv(cx, &t->io, t->fd, t->buf, t->len, 0));
    WEFT_RETURN(&t->f, t->r == 5 && memcmp(t->buf, "hello", 5) == 0 ? 0 : t->r + 1000);
    WEFT_END(&t->f);
}

Test(net_len, recv_of_4gib_or_more_yields_the_queued_bytes)
{
    static const size_t lens[] = { FOUR_GIB, FOUR_GIB + 2, FOUR_GIB + ONE_XFER + 1 };
    weft_runtime *rt = make();
    int sv[2];
    pair(sv);
    size_t span = FOUR_GIB + ONE_XFER + 1;
    char *buf = guarded(span);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        cr_assert_eq(write(sv[0], "hello", 5), 5);
        memset(buf, 0, 5);
        struct rx t = { .fd = sv[1], .buf = buf, .len = lens[i] };
        run(rt, rx_poll, &t, sizeof t);
    }
    munmap(buf, span);
    close(sv[0]);
    close(sv[1]);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- send: a long length moves what fits, never nothing ------------------------ */

struct tx {
    weft_frame f;
    weft_io io;
    int fd;
    const char *buf;
    size_t len;
    weft_poll r;
};

static weft_poll tx_poll(weft_cx *cx, void *p)
{
    struct tx *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->r, weft_send(cx, &t->io, t->fd, t->buf, t->len, 0));
    WEFT_RETURN(&t->f, t->r > 0 && t->r <= (weft_poll)ONE_XFER ? 0 : t->r + 1000);
    WEFT_END(&t->f);
}

Test(net_len, send_of_4gib_moves_a_short_count)
{
    weft_runtime *rt = make();
    int sv[2];
    pair(sv);
    char *buf = zeros(FOUR_GIB);
    /* An empty socket: the send takes what fits its buffer and returns. */
    struct tx t = { .fd = sv[0], .buf = buf, .len = FOUR_GIB };
    run(rt, tx_poll, &t, sizeof t);
    munmap(buf, FOUR_GIB);
    close(sv[0]);
    close(sv[1]);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- whole transfers of more than 4 GiB make progress ----------------------------- */

/* The frame is copied at spawn: results come back through `out`. */
struct whole_out {
    weft_poll r;
    size_t done;
};

struct whole {
    weft_frame f;
    weft_xfer x;
    int fd;
    char *buf;
    size_t len;
    bool send;
    struct whole_out *out;
};

static weft_poll whole_poll(weft_cx *cx, void *p)
{
    struct whole *t = p;
    WEFT_BEGIN(&t->f);
    /* A hang guard only: before the fix, send_all spun on zero-length sends. */
    weft_io_timeout(&t->x.io, 60000 * IOT_MS);
    if (t->send)
        WEFT_AWAIT(&t->f, t->out->r, weft_send_all(cx, &t->x, t->fd, t->buf, t->len));
    else
        WEFT_AWAIT(&t->f, t->out->r, weft_recv_exact(cx, &t->x, t->fd, t->buf, t->len));
    t->out->done = t->x.done;
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

/* The peer: reads `want` bytes, then closes its end, so the sender's next
 * send fails (-EPIPE) once it has moved at least that much. */
struct drain {
    int fd;
    size_t want, got;
};

static void *drain_main(void *p)
{
    struct drain *d = p;
    static char sink[65536];
    while (d->got < d->want) {
        ssize_t n = read(d->fd, sink, sizeof sink);
        if (n <= 0)
            break;
        d->got += (size_t)n;
    }
    close(d->fd);
    return NULL;
}

Test(net_len, send_all_of_more_than_4gib_makes_progress)
{
    weft_runtime *rt = make();
    int sv[2];
    pair(sv);
    size_t len = FOUR_GIB + 5;
    char *buf = zeros(len);
    struct drain d = { .fd = sv[1], .want = 8u << 20 };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, drain_main, &d), 0);
    struct whole_out out = { 0 };
    struct whole t = { .x = WEFT_XFER_INIT, .fd = sv[0], .buf = buf, .len = len, .send = true,
                       .out = &out };
    run(rt, whole_poll, &t, sizeof t);
    close(sv[0]);               /* ends the peer's read if nothing came */
    pthread_join(th, NULL);     /* the peer closed sv[1] */
    cr_assert(out.r == -EPIPE || out.r == -ECONNRESET, "send_all yielded %lld after %zu bytes",
              (long long)out.r, out.done);
    cr_assert_geq(out.done, d.want);
    cr_assert_lt(out.done, len);
    munmap(buf, len);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(net_len, recv_exact_of_4gib_takes_the_bytes_before_the_end)
{
    weft_runtime *rt = make();
    int sv[2];
    pair(sv);
    char *buf = guarded(FOUR_GIB);
    cr_assert_eq(write(sv[0], "hello", 5), 5);
    cr_assert_eq(shutdown(sv[0], SHUT_WR), 0);
    struct whole_out out = { 0 };
    struct whole t = { .x = WEFT_XFER_INIT, .fd = sv[1], .buf = buf, .len = FOUR_GIB,
                       .out = &out };
    run(rt, whole_poll, &t, sizeof t);
    /* -EPIPE with the 5 bytes counted, not a false end before reading any. */
    cr_assert_eq(out.r, -EPIPE);
    cr_assert_eq(out.done, 5);
    cr_assert_eq(memcmp(buf, "hello", 5), 0);
    munmap(buf, FOUR_GIB);
    close(sv[0]);
    close(sv[1]);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}
