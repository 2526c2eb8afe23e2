/*
 * tests/harness/io_programs.c - user programs whose bugs live in their I/O,
 * over simulated descriptors (weft/sim.h), each in a buggy and a fixed
 * variant, against the public API only: an accepted connection leaked on
 * an error path, a message torn by a timeout between two completions of
 * one send, and a short read taken for a whole message.
 *
 * As in programs.c: state in one static struct that setup resets, one
 * await a line, and a check that says only what the invariant is. Every
 * descriptor is simulated, so the checks count weft_sim_open_fds; the
 * harness closes what a run left after its check.
 */
#include "programs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "weft/sim.h"

#define MS 1000000ull
#define MSG "ABCDEFGH"
#define MSG_LEN 8

static const bool buggy = false, fixed = true;

#define VARIANT(arg) (*(const bool *)(arg))

static int fail(char *why, size_t n, const char *msg)
{
    snprintf(why, n, "%s", msg);
    return 1;
}

/* ---- 1. an accepted connection leaked on the error path ------------------ */

static struct { int lfd, cfd; } net;

struct handler { weft_frame f; bool fixed; int fd; weft_io io; weft_poll rc; char buf[8]; };

static weft_poll handler_poll(weft_cx *cx, void *p)
{
    struct handler *h = p;
    WEFT_BEGIN(&h->f);
    WEFT_AWAIT(&h->f, h->rc, weft_accept(cx, &h->io, net.lfd, NULL, NULL, 0));
    weft_sim_close(net.lfd);       /* one connection: stop listening */
    net.lfd = -1;
    if (h->rc < 0)
        WEFT_RETURN(&h->f, h->rc);
    h->fd = (int)h->rc;
    WEFT_AWAIT(&h->f, h->rc, weft_recv(cx, &h->io, h->fd, h->buf, sizeof h->buf, 0));
    if (h->rc > 0)
        WEFT_AWAIT(&h->f, h->rc, weft_send(cx, &h->io, h->fd, h->buf, (size_t)h->rc, 0));
    if (h->rc < 0 && !h->fixed)
        WEFT_RETURN(&h->f, h->rc);     /* the bug: this path forgets the fd */
    WEFT_AWAIT(&h->f, h->rc, weft_close(cx, &h->io, h->fd));
    h->fd = -1;
    WEFT_RETURN(&h->f, 0);
    WEFT_END(&h->f);
}

struct client { weft_frame f; weft_io io; weft_poll rc; char buf[8]; };

static weft_poll client_poll(weft_cx *cx, void *p)
{
    struct client *c = p;
    WEFT_BEGIN(&c->f);
    WEFT_AWAIT(&c->f, c->rc, weft_send(cx, &c->io, net.cfd, "ping", 4, 0));
    while (c->rc > 0)
        WEFT_AWAIT(&c->f, c->rc, weft_recv(cx, &c->io, net.cfd, c->buf, sizeof c->buf, 0));
    WEFT_AWAIT(&c->f, c->rc, weft_close(cx, &c->io, net.cfd));
    net.cfd = -1;
    WEFT_RETURN(&c->f, 0);
    WEFT_END(&c->f);
}

struct server { weft_frame f; bool fixed; weft_poll rc; };

static weft_poll server_poll(weft_cx *cx, void *p)
{
    struct server *s = p;
    WEFT_BEGIN(&s->f);
    struct client c = { .io = WEFT_IO_INIT };
    weft_task_desc dc = WEFT_TASK(client_poll, &c);
    dc.name = "client";
    if (weft_spawn_detached(weft_cx_runtime(cx), &dc) < 0)
        WEFT_RETURN(&s->f, -1);
    struct handler h = { .fixed = s->fixed, .fd = -1, .io = WEFT_IO_INIT };
    weft_task_desc dh = WEFT_TASK(handler_poll, &h);
    dh.name = "handler";
    if (weft_spawn_detached(weft_cx_runtime(cx), &dh) < 0)
        WEFT_RETURN(&s->f, -1);
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

static struct server server_frame;

static int accept_setup(void *arg, weft_task_desc *root)
{
    int rc = weft_sim_listen(&net.lfd);
    if (rc == 0)
        rc = weft_sim_connect(net.lfd, &net.cfd, 0);
    if (rc)
        return rc;
    server_frame = (struct server){ .fixed = VARIANT(arg) };
    *root = WEFT_TASK(server_poll, &server_frame);
    root->name = "server";
    return 0;
}

static int accept_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    (void)run;
    int open = weft_sim_open_fds();
    if (open == 0)
        return 0;
    snprintf(why, n, "%d descriptors left open", open);
    return 1;
}

/* ---- 2. a message torn by a timeout between two completions -------------- */

static struct { int sv[2]; int got; } wire;

struct sender { weft_frame f; bool fixed; weft_xfer x; weft_io io; weft_poll rc; };

static weft_poll sender_poll(weft_cx *cx, void *p)
{
    struct sender *s = p;
    WEFT_BEGIN(&s->f);
    if (s->fixed)       /* a message once started is finished */
        WEFT_AWAIT_SHIELDED(&s->f, s->rc, weft_send_all(cx, &s->x, wire.sv[0], MSG, MSG_LEN));
    else
        WEFT_AWAIT(&s->f, s->rc, weft_send_all(cx, &s->x, wire.sv[0], MSG, MSG_LEN));
    WEFT_AWAIT(&s->f, s->rc, weft_close(cx, &s->io, wire.sv[0]));
    wire.sv[0] = -1;
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

/* A sender torn down at an await still ends its stream. */
static void sender_drop(void *p)
{
    (void)p;
    if (wire.sv[0] >= 0)
        weft_sim_close(wire.sv[0]);
    wire.sv[0] = -1;
}

/* The receiving end is slow to start (the socket holds half a message, so
 * the send waits for it), then reads to the end of the stream whatever
 * happens. Its first read and the caller's timeout fall due together. */
struct receiver { weft_frame f; weft_io io; weft_sleep s; weft_poll rc; char buf[4]; };

static weft_poll receiver_poll(weft_cx *cx, void *p)
{
    struct receiver *r = p;
    WEFT_BEGIN(&r->f);
    weft_shield_enter(cx);
    WEFT_AWAIT(&r->f, r->rc, weft_sleep_for(cx, &r->s, MS));
    do {
        WEFT_AWAIT(&r->f, r->rc, weft_recv(cx, &r->io, wire.sv[1], r->buf, sizeof r->buf, 0));
        wire.got += r->rc > 0 ? (int)r->rc : 0;
    } while (r->rc > 0);
    WEFT_AWAIT(&r->f, r->rc, weft_close(cx, &r->io, wire.sv[1]));
    weft_shield_exit(cx);
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

struct caller { weft_frame f; bool fixed; weft_poll rc; weft_join h; weft_join_timeout jt;
                weft_outcome out; };

static weft_poll caller_poll(weft_cx *cx, void *p)
{
    struct caller *c = p;
    WEFT_BEGIN(&c->f);
    struct receiver r = { .io = WEFT_IO_INIT, .s = WEFT_SLEEP_INIT };
    weft_task_desc dr = WEFT_TASK(receiver_poll, &r);
    dr.name = "receiver";
    if (weft_spawn_detached(weft_cx_runtime(cx), &dr) < 0)
        WEFT_RETURN(&c->f, -1);
    struct sender s = { .fixed = c->fixed, .x = WEFT_XFER_INIT, .io = WEFT_IO_INIT };
    weft_task_desc ds = WEFT_TASK(sender_poll, &s);
    ds.name = "sender";
    ds.drop = sender_drop;
    /* The bug: a sender marked cancel-safe is aborted when the caller's
     * timeout gives it up, even between two sends of one message. */
    ds.flags = c->fixed ? 0 : WEFT_TASK_CANCEL_SAFE;
    if (weft_spawn(weft_cx_runtime(cx), &ds, &c->h) < 0)
        WEFT_RETURN(&c->f, -1);
    WEFT_AWAIT(&c->f, c->rc, weft_join_await_timeout(cx, &c->jt, &c->h, &c->out, MS));
    if (c->rc < 0 && c->rc != -ETIMEDOUT)
        weft_detach(&c->h);     /* we were cancelled: the send goes on alone */
    WEFT_RETURN(&c->f, 0);
    WEFT_END(&c->f);
}

static struct caller caller_frame;

static int torn_send_setup(void *arg, weft_task_desc *root)
{
    memset(&wire, 0, sizeof wire);
    int rc = weft_sim_socketpair(wire.sv, MSG_LEN / 2);
    if (rc)
        return rc;
    caller_frame = (struct caller){ .fixed = VARIANT(arg), .h = WEFT_JOIN_INIT,
                                    .jt = WEFT_JOIN_TIMEOUT_INIT };
    *root = WEFT_TASK(caller_poll, &caller_frame);
    root->name = "caller";
    return 0;
}

static int torn_send_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    (void)run;
    if (wire.got % MSG_LEN == 0)
        return 0;
    snprintf(why, n, "a torn message: %d bytes arrived", wire.got);
    return 1;
}

/* ---- 3. a short read taken for a whole message --------------------------- */

static struct { int sv[2]; bool parsed, garbled; } rd;

struct writer { weft_frame f; weft_xfer x; weft_io io; weft_poll rc; };

static weft_poll writer_poll(weft_cx *cx, void *p)
{
    struct writer *w = p;
    WEFT_BEGIN(&w->f);
    WEFT_AWAIT(&w->f, w->rc, weft_send_all(cx, &w->x, rd.sv[0], MSG, MSG_LEN));
    WEFT_AWAIT(&w->f, w->rc, weft_close(cx, &w->io, rd.sv[0]));
    WEFT_RETURN(&w->f, 0);
    WEFT_END(&w->f);
}

struct parser { weft_frame f; bool fixed; weft_xfer x; weft_io io; weft_poll rc;
                char buf[MSG_LEN]; };

static weft_poll parser_poll(weft_cx *cx, void *p)
{
    struct parser *q = p;
    WEFT_BEGIN(&q->f);
    struct writer w = { .x = WEFT_XFER_INIT, .io = WEFT_IO_INIT };
    weft_task_desc d = WEFT_TASK(writer_poll, &w);
    d.name = "writer";
    if (weft_spawn_detached(weft_cx_runtime(cx), &d) < 0)
        WEFT_RETURN(&q->f, -1);
    if (q->fixed)
        WEFT_AWAIT(&q->f, q->rc, weft_recv_exact(cx, &q->x, rd.sv[1], q->buf, MSG_LEN));
    else    /* the bug: one recv is not one message */
        WEFT_AWAIT(&q->f, q->rc, weft_recv(cx, &q->io, rd.sv[1], q->buf, MSG_LEN, 0));
    if (q->rc >= 0) {
        rd.parsed = true;
        rd.garbled = memcmp(q->buf, MSG, MSG_LEN) != 0;
    }
    WEFT_AWAIT(&q->f, q->rc, weft_close(cx, &q->io, rd.sv[1]));
    WEFT_RETURN(&q->f, 0);
    WEFT_END(&q->f);
}

static struct parser parser_frame;

static int short_setup(void *arg, weft_task_desc *root)
{
    memset(&rd, 0, sizeof rd);
    int rc = weft_sim_socketpair(rd.sv, 0);
    if (rc)
        return rc;
    parser_frame = (struct parser){ .fixed = VARIANT(arg), .x = WEFT_XFER_INIT,
                                    .io = WEFT_IO_INIT };
    *root = WEFT_TASK(parser_poll, &parser_frame);
    root->name = "parser";
    return 0;
}

static int short_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    (void)run;
    return rd.parsed && rd.garbled ? fail(why, n, "parsed a message it had not read whole") : 0;
}

/* ---- the table ----------------------------------------------------------- */

#define IO_PROGRAM(pat, stem)                                                               \
    { pat,                                                                                  \
      { #stem "-buggy", stem##_setup, stem##_check, NULL, (void *)&buggy },                 \
      { #stem "-fixed", stem##_setup, stem##_check, NULL, (void *)&fixed } }

const program io_programs[] = {
    IO_PROGRAM("fd leaked on the last await (accept)", accept),
    IO_PROGRAM("send torn by a timeout (socket)", torn_send),
    IO_PROGRAM("short read taken for a message", short),
};
const size_t nio_programs = sizeof io_programs / sizeof io_programs[0];
