/*
 * tests/examples/toolkit_tasks.c - the server toolkit's connection handler
 * proposed for README.md's "Server toolkit" section (marked "README"), and
 * its sweep case (sweep.h): a line echo over a buffered reader and writer,
 * which sets its streams up in the task and gives everything back in its
 * drop hook. The sweep cancels it at each await, by abort and by token.
 *
 * The case's invariant, beside the harness's (no fd left, drop hook once,
 * LeakSanitizer: the streams' buffers freed): the client's echo is a prefix
 * of what it sent, byte for byte - a withdrawn read lost nothing before it
 * and a withdrawn write took nothing it did not report - and all of it when
 * the run was not cancelled.
 */
#include <errno.h>
#include <unistd.h>

#include "cases.h"
#include "sweep.h"

/* README */
struct line_conn {
    weft_frame f;
    int fd;
    weft_reader rd;
    weft_writer wr;
    char *line;
    weft_poll n;
};

static weft_poll line_conn_poll(weft_cx *cx, void *p)
{
    struct line_conn *c = p;
    WEFT_BEGIN(&c->f);
    if (weft_reader_init(&c->rd, c->fd, NULL, 8192) < 0      /* longest line: 8 KiB */
        || weft_writer_init(&c->wr, c->fd, NULL, 8192) < 0)
        WEFT_RETURN(&c->f, -ENOMEM);
    weft_reader_timeout(&c->rd, 30 * 1000000000ull);          /* idle limit, every read */
    for (;;) {
        WEFT_AWAIT(&c->f, c->n, weft_read_until(cx, &c->rd, '\n', &c->line));
        if (c->n <= 0)
            break;          /* end of stream, -EMSGSIZE, -ETIMEDOUT, -ECANCELED... */
        WEFT_AWAIT(&c->f, c->n, weft_write_all(cx, &c->wr, c->line, (size_t)c->n));
        if (c->n < 0)
            break;
        if (weft_reader_buffered(&c->rd, NULL) == 0) {       /* no more lines waiting */
            WEFT_AWAIT(&c->f, c->n, weft_flush(cx, &c->wr));
            if (c->n < 0)
                break;
        }
    }
    WEFT_AWAIT(&c->f, c->n, weft_flush(cx, &c->wr));
    WEFT_RETURN(&c->f, 0);
    WEFT_END(&c->f);
}

static void line_conn_drop(void *p)        /* once, however the task ended */
{
    struct line_conn *c = p;
    weft_reader_destroy(&c->rd);
    weft_writer_destroy(&c->wr);
    close(c->fd);
}
/* end README */

#define LINE_BYTES SWEEP_PEER_MAX   /* a '\n' about every 256 bytes, then EOF */

static struct sweep_peer line_peer;
static struct line_conn line0;

static void line_conn_reset(void *arg, weft_task_desc *root)
{
    (void)arg;
    (void)root;
    sweep_peer_open(&line_peer, LINE_BYTES, true);
    line0 = (struct line_conn){ .fd = line_peer.server };
}

static int line_conn_check(void *arg, unsigned k, bool cancelled, int rc,
                           const weft_outcome *out)
{
    (void)arg;
    (void)k;
    size_t echoed;
    int bad = sweep_peer_close(&line_peer, "the line handler", &echoed);
    if (rc != 0)
        return bad | sweep_fail("weft_sim_run: %s", weft_strerror(rc));
    if (out->status != 0)
        bad |= sweep_fail("outcome status %d", out->status);
    if (!cancelled && echoed != LINE_BYTES)
        bad |= sweep_fail("uncancelled, it echoed %zu of %d bytes", echoed, LINE_BYTES);
    return bad;
}

int sweep_toolkit_line_conn(void)
{
    weft_task_desc root = WEFT_TASK(line_conn_poll, &line0);
    root.drop = line_conn_drop;
    sweep_case c = { .program = "README (proposed): Server toolkit", .task = "line handler",
                     .root = root, .reset = line_conn_reset, .check = line_conn_check };
    return sweep_case_run(&c);
}
