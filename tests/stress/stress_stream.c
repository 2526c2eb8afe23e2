/*
 * tests/stress/stress_stream.c - the buffered streams' cancellation contracts
 * under aborts at random moments, across workers (weft/stream.h). Not
 * Criterion: it must run under TSan.
 *
 * Each round runs two lanes over Unix stream socketpairs, on one runtime:
 *   - reader lane: a plain thread writes numbered lines in random-sized
 *     pieces; reader tasks, one after another on the same weft_reader, read
 *     lines and log their numbers, each aborted by the main thread after a
 *     random spin. Check: the log is every number once, in order ("a
 *     withdrawn read loses no byte", and yields none twice).
 *   - writer lane: writer tasks, one after another on the same weft_writer
 *     (a small buffer, so some writes are direct sends), write random-sized
 *     pieces of a pattern and advance by what each write_all yields (all,
 *     a short count, or nothing), each aborted at random; a last task
 *     flushes. A plain thread reads everything. Check: it received exactly
 *     the pattern's first `taken` bytes ("a withdrawn write reports how much
 *     it took").
 * The spins only vary where the aborts land; no check depends on time.
 *
 * Usage: stress-stream [--rounds N] [--threads N]
 */
#include <pthread.h>
#include <stdlib.h>

#include "reactor/io_test.h"
#include "stress_util.h"

enum { LINES = 2000, PATTERN = 1 << 20, WRITER_BUF = 512 };

static weft_reader rd;
static weft_writer wr;
static int line_log[LINES + 1];
static int logged;
static unsigned char pattern[PATTERN], received[PATTERN];
static size_t taken;                /* pattern bytes the writer took */
static long reader_tasks, writer_tasks, short_writes;   /* for the summary */

/* ---- reader lane ---------------------------------------------------------------- */

static void *line_writer(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static char text[LINES * 12 + 1];     /* sprintf's last NUL */
    size_t len = 0;
    for (int i = 0; i < LINES; i++)
        len += (size_t)sprintf(text + len, "line %06d\n", i);
    uint32_t seed = 7;
    for (size_t off = 0; off < len;) {
        size_t piece = 1 + rnd(&seed) % 40;
        if (piece > len - off)
            piece = len - off;
        ssize_t n = write(fd, text + off, piece);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(fd);
    return NULL;
}

struct lines {
    weft_frame f;
    char *line;
    weft_poll n;
};

/* Logs line numbers until EOF (returns 1) or a stop (returns 0). */
static weft_poll lines_poll(weft_cx *cx, void *p)
{
    struct lines *t = p;
    WEFT_BEGIN(&t->f);
    for (;;) {
        WEFT_AWAIT(&t->f, t->n, weft_read_line(cx, &rd, &t->line, NULL));
        if (t->n <= 0)
            break;
        if (logged <= LINES)
            line_log[logged++] = atoi(t->line + 5);
    }
    WEFT_RETURN(&t->f, t->n == 0);
    WEFT_END(&t->f);
}

static void reader_lane(weft_runtime *rt, uint32_t *seed)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    CHECK(weft_reader_init(&rd, sv[0], NULL, 64) == 0, "reader init");
    pthread_t th;
    pthread_create(&th, NULL, line_writer, (void *)(intptr_t)sv[1]);
    logged = 0;
    for (int done = 0; !done;) {
        struct lines t = { { 0 } };
        reader_tasks++;
        weft_join h;
        CHECK(weft_spawn(rt, &WEFT_TASK(lines_poll, &t), &h) == 0, "spawn");
        iot_spin(rnd(seed) % 200000);
        weft_abort(&h);
        weft_outcome o;
        CHECK(weft_join_wait(&h, &o) == 0 && o.status == 0, "join");
        done = o.value == 1;
    }
    pthread_join(th, NULL);
    CHECK(logged == LINES, "%d lines read, %d sent", logged, LINES);
    for (int i = 0; i < logged && i < LINES; i++)
        CHECK(line_log[i] == i, "line %d read as %d: lost or repeated", i, line_log[i]);
    CHECK(weft_reader_destroy(&rd) == 0, "reader destroy");
    close(sv[0]);
}

/* ---- writer lane ---------------------------------------------------------------- */

static void *byte_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    size_t got = 0;
    uint32_t seed = 99;
    /* small reads and pauses, so that the writer's sends block now and then */
    for (ssize_t n; got < PATTERN; got += (size_t)n) {
        size_t want = 1 + rnd(&seed) % 1024;
        n = read(fd, received + got, want < PATTERN - got ? want : PATTERN - got);
        if (n <= 0)
            break;
        iot_spin(rnd(&seed) % 20000);
    }
    return (void *)(intptr_t)got;
}

struct pieces {
    weft_frame f;
    uint32_t seed;
    size_t len;
    weft_poll n;
};

/* Writes random pieces from `taken` on, advancing by what each write took. */
static weft_poll pieces_poll(weft_cx *cx, void *p)
{
    struct pieces *t = p;
    WEFT_BEGIN(&t->f);
    while (taken < PATTERN) {
        t->len = rnd(&t->seed) % 3 ? 1 + rnd(&t->seed) % 200 : 1 + rnd(&t->seed) % 16000;
        if (t->len > PATTERN - taken)
            t->len = PATTERN - taken;
        WEFT_AWAIT(&t->f, t->n, weft_write_all(cx, &wr, pattern + taken, t->len));
        if (t->n > 0)
            taken += (size_t)t->n;
        if (t->n > 0 && t->n < (weft_poll)t->len)
            short_writes++;
        if (t->n < (weft_poll)t->len)
            break;              /* stopped: all that was taken is counted */
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static weft_poll flush_poll(weft_cx *cx, void *p)
{
    struct pieces *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->n, weft_flush(cx, &wr));
    WEFT_RETURN(&t->f, t->n);
    WEFT_END(&t->f);
}

static void writer_lane(weft_runtime *rt, uint32_t *seed)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    CHECK(weft_writer_init(&wr, sv[0], NULL, WRITER_BUF) == 0, "writer init");
    pthread_t th;
    pthread_create(&th, NULL, byte_reader, (void *)(intptr_t)sv[1]);
    taken = 0;
    for (int i = 0; taken < PATTERN && i < 100000; i++) {
        struct pieces t = { .seed = rnd(seed) };
        writer_tasks++;
        weft_join h;
        CHECK(weft_spawn(rt, &WEFT_TASK(pieces_poll, &t), &h) == 0, "spawn");
        iot_spin(rnd(seed) % 100000);
        weft_abort(&h);
        weft_outcome o;
        CHECK(weft_join_wait(&h, &o) == 0 && o.status == 0, "join");
    }
    struct pieces fl = { 0 };
    weft_outcome o;
    CHECK(weft_block_on(rt, &WEFT_TASK(flush_poll, &fl), &o) == 0 && o.value == 0,
          "final flush: %lld", (long long)o.value);
    close(sv[0]);
    void *got;
    pthread_join(th, &got);
    CHECK((size_t)(intptr_t)got == taken, "peer got %zu bytes, writes took %zu",
          (size_t)(intptr_t)got, taken);
    CHECK(memcmp(received, pattern, taken) == 0, "bytes changed, lost or repeated");
    CHECK(weft_writer_destroy(&wr) == 0, "writer destroy");
    close(sv[1]);
}

int main(int argc, char **argv)
{
    long rounds = arg_long(argc, argv, "--rounds", 20);
    unsigned threads = (unsigned)arg_long(argc, argv, "--threads", 3);
    watchdog(600);
    for (size_t i = 0; i < PATTERN; i++)
        pattern[i] = (unsigned char)(i * 2654435761u >> 13);
    weft_runtime *rt;
    weft_runtime_opts opts = { .threads = threads, .shutdown_grace_ms = 100 };
    if (weft_runtime_new(&rt, &opts) != 0)
        return 77;
    uint32_t seed = 12345;
    for (long r = 0; r < rounds && atomic_load(&stress_failures) == 0; r++) {
        reader_lane(rt, &seed);
        writer_lane(rt, &seed);
    }
    weft_runtime_free(rt);
    long fails = atomic_load(&stress_failures);
    printf("stress-stream: %ld rounds: %ld reader tasks, %ld writer tasks (%ld short writes);"
           " %ld failures\n", rounds, reader_tasks, writer_tasks, short_writes, fails);
    return fails ? 1 : 0;
}
