/*
 * bench/workloads_sync.c - the workloads of docs/benchmarks.md that move
 * messages through weft's channels: ping_pong (request over a bounded mpsc,
 * reply over a oneshot) and mpsc (4 producers into one bounded channel).
 */
#include <errno.h>

#include <weft/sync.h>

#include "bench.h"

/* ---- ping_pong ------------------------------------------------------------- */

struct request {
    uint64_t value;
    weft_oneshot_tx reply;
};

struct server {
    weft_frame f;
    weft_mpsc_rx rx;
    uint64_t msg;
    weft_poll rc;
};

static weft_poll server_poll(weft_cx *cx, void *p)
{
    struct server *s = p;
    WEFT_BEGIN(&s->f);
    for (;;) {
        WEFT_AWAIT(&s->f, s->rc, weft_mpsc_recv(cx, &s->rx, &s->msg));
        if (s->rc < 0)
            break;      /* -EPIPE: the client is done */
        struct request *req = weft_value_to_ptr(s->msg);
        weft_oneshot_send(&req->reply, req->value + 1);
    }
    weft_mpsc_rx_drop(&s->rx);
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

struct client {
    weft_frame f;
    weft_mpsc_tx tx;
    weft_mpsc_send_op send;
    weft_oneshot_rx reply;
    struct request req;
    int64_t trips, i;
    uint64_t answer;
    weft_poll rc;
};

static weft_poll client_poll(weft_cx *cx, void *p)
{
    struct client *c = p;
    WEFT_BEGIN(&c->f);
    for (c->i = 0; c->i < c->trips; c->i++) {
        if (weft_oneshot_new(&c->req.reply, &c->reply) < 0)
            WEFT_RETURN(&c->f, -ENOMEM);
        c->req.value = (uint64_t)c->i;
        WEFT_AWAIT(&c->f, c->rc, weft_mpsc_send(cx, &c->tx, &c->send,
                                                weft_value_from_ptr(&c->req)));
        if (c->rc < 0)
            WEFT_RETURN(&c->f, c->rc);
        WEFT_AWAIT(&c->f, c->rc, weft_oneshot_recv(cx, &c->reply, &c->answer));
        weft_oneshot_rx_drop(&c->reply);
        if (c->rc < 0 || c->answer != (uint64_t)c->i + 1)
            WEFT_RETURN(&c->f, -EPROTO);
    }
    weft_mpsc_tx_drop(&c->tx);
    WEFT_RETURN(&c->f, c->trips);
    WEFT_END(&c->f);
}

struct pairs_root {
    weft_frame f;
    weft_join *handles;         /* clients, then servers */
    int64_t pairs, trips, i;
    struct bench_join_all join;
    weft_poll rc;
};

static int spawn_pair(weft_runtime *rt, struct pairs_root *s, int64_t i)
{
    struct client c = { .send = WEFT_MPSC_SEND_OP_INIT, .trips = s->trips };
    struct server sv = { 0 };
    int rc = weft_mpsc_new(&c.tx, &sv.rx, 1);
    if (rc < 0)
        return rc;
    rc = weft_spawn(rt, &WEFT_TASK(server_poll, &sv), &s->handles[s->pairs + i]);
    if (rc < 0) {
        weft_mpsc_tx_drop(&c.tx);
        weft_mpsc_rx_drop(&sv.rx);
        return rc;
    }
    return weft_spawn(rt, &WEFT_TASK(client_poll, &c), &s->handles[i]);
}

static weft_poll ping_pong_poll(weft_cx *cx, void *p)
{
    struct pairs_root *s = p;
    WEFT_BEGIN(&s->f);
    for (s->i = 0; s->i < s->pairs; s->i++) {
        int rc = spawn_pair(weft_cx_runtime(cx), s, s->i);
        if (rc < 0)
            WEFT_RETURN(&s->f, rc);
    }
    s->join = (struct bench_join_all){ .handles = s->handles, .n = 2 * s->pairs };
    WEFT_AWAIT(&s->f, s->rc, bench_join_all(cx, &s->join));
    WEFT_RETURN(&s->f, s->rc);     /* servers return 0: the sum is the trips */
    WEFT_END(&s->f);
}

int64_t bench_ping_pong(weft_runtime *rt, double scale)
{
    struct pairs_root s = { .pairs = 1000, .trips = bench_scaled(1000, scale) };
    s.handles = calloc((size_t)(2 * s.pairs), sizeof *s.handles);
    if (!s.handles)
        return -ENOMEM;
    int64_t n = bench_block_on(rt, ping_pong_poll, &s, sizeof s);
    free(s.handles);
    if (n < 0)
        return n;
    BENCH_CHECK(n == s.pairs * s.trips, "ping_pong did %lld round trips", (long long)n);
    return n;
}

/* ---- mpsc ------------------------------------------------------------------ */

struct producer {
    weft_frame f;
    weft_mpsc_tx tx;
    weft_mpsc_send_op send;
    uint64_t next, end;
    weft_poll rc;
};

static weft_poll producer_poll(weft_cx *cx, void *p)
{
    struct producer *pr = p;
    WEFT_BEGIN(&pr->f);
    for (; pr->next < pr->end; pr->next++) {
        WEFT_AWAIT(&pr->f, pr->rc, weft_mpsc_send(cx, &pr->tx, &pr->send, pr->next));
        if (pr->rc < 0)
            break;
    }
    weft_mpsc_tx_drop(&pr->tx);
    WEFT_RETURN(&pr->f, pr->rc < 0 ? pr->rc : 0);
    WEFT_END(&pr->f);
}

#define PRODUCERS 4

struct mpsc_root {
    weft_frame f;
    weft_mpsc_rx rx;
    weft_join producers[PRODUCERS];
    uint64_t per_producer, value, count, sum;
    struct bench_join_all join;
    weft_poll rc;
};

static weft_poll mpsc_poll(weft_cx *cx, void *p)
{
    struct mpsc_root *s = p;
    WEFT_BEGIN(&s->f);
    {
        weft_mpsc_tx tx;
        if (weft_mpsc_new(&tx, &s->rx, 1024) < 0)
            WEFT_RETURN(&s->f, -ENOMEM);
        for (int i = 0; i < PRODUCERS; i++) {
            struct producer pr = { .send = WEFT_MPSC_SEND_OP_INIT,
                                   .next = (uint64_t)i * s->per_producer,
                                   .end = (uint64_t)(i + 1) * s->per_producer };
            weft_mpsc_tx_clone(&pr.tx, &tx);
            if (weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(producer_poll, &pr),
                           &s->producers[i]) < 0)
                weft_mpsc_tx_drop(&pr.tx);
        }
        weft_mpsc_tx_drop(&tx);
    }
    for (;;) {
        WEFT_AWAIT(&s->f, s->rc, weft_mpsc_recv(cx, &s->rx, &s->value));
        if (s->rc < 0)
            break;      /* every producer dropped its sender */
        s->count++;
        s->sum += s->value;
    }
    s->join = (struct bench_join_all){ .handles = s->producers, .n = PRODUCERS };
    WEFT_AWAIT(&s->f, s->rc, bench_join_all(cx, &s->join));
    if (s->rc != 0)
        WEFT_RETURN(&s->f, -EPROTO);
    weft_mpsc_rx_drop(&s->rx);
    {
        uint64_t n = PRODUCERS * s->per_producer;
        if (s->count != n || s->sum != n * (n - 1) / 2)
            WEFT_RETURN(&s->f, -EPROTO);
    }
    WEFT_RETURN(&s->f, (int64_t)s->count);
    WEFT_END(&s->f);
}

int64_t bench_mpsc(weft_runtime *rt, double scale)
{
    struct mpsc_root s = { .per_producer = (uint64_t)bench_scaled(250000, scale) };
    int64_t n = bench_block_on(rt, mpsc_poll, &s, sizeof s);
    if (n == -EPROTO)
        fprintf(stderr, "weft-bench: mpsc: count or sum of received values is wrong\n");
    return n;
}
