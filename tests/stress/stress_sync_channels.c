/*
 * tests/stress/stress_sync_channels.c - the channels under many tasks and
 * threads, with cancellation thrown in at random, checking that nothing is
 * lost or duplicated. A plain executable (Criterion cannot start under TSan):
 * exit 0 = pass, 1 = fail, 77 = skip (no runtime on this machine).
 *
 *   usage: stress-sync-channels [scale] [seed]
 *
 * Phases (each checks count, a sum of hashed values and per-sender order):
 *   1. bounded mpsc, capacity 16: producer tasks (async send, or reserve then
 *      permit_send; some cooperative, some cancel-safe) and producer threads
 *      (send_blocking, try_send); a chaos thread aborts producers at random;
 *      the receiver is a chain of consumer tasks, each aborted after a random
 *      moment and replaced, so receives are withdrawn in every state.
 *   2. unbounded mpsc: the same with senders that never wait.
 *   3. request/reply: clients send a pointer to a request holding a oneshot
 *      sender through a bounded channel; a server replies; clients are
 *      aborted at random while sending or awaiting the reply. Every reply
 *      the server delivered is received or reported discarded.
 *   4. oneshot between threads: a sending thread sends or drops at a random
 *      moment while a receiving thread blocks, polls, closes or drops at
 *      another, so each end's last step races the other's (who frees the
 *      channel, who takes the waker). Every round checks that a delivered
 *      value was received or discarded exactly once and a refused or never
 *      sent one was neither.
 *   5. bounded mpsc between plain threads, capacities 1 and 3 (the lock-free
 *      paths: a send that claims a slot, a receive that takes one or waits):
 *      producer threads send_blocking or try_send while the receiving thread
 *      alternates recv_blocking and try_recv; in every other round it closes
 *      at a random moment and drains, so senders race the close. Every value
 *      a send reported sent is received, in each sender's order.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "weft/weft.h"

#define MAX_SENDERS 64

static _Atomic int failures;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            failures++;                                                       \
        }                                                                     \
    } while (0)

/* ---- shared bookkeeping ------------------------------------------------------ */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

struct ledger {
    _Atomic uint64_t count, hash_sum;
};

static void ledger_add(struct ledger *l, uint64_t v)
{
    atomic_fetch_add_explicit(&l->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->hash_sum, mix(v), memory_order_relaxed);
}

static struct ledger sent, received;
static int64_t last_seq[MAX_SENDERS];   /* per sender; consumers run one at a time */

static uint64_t make_value(uint64_t sender, uint64_t seq) { return sender << 32 | seq; }

static void ledgers_reset(void)
{
    atomic_store(&sent.count, 0);
    atomic_store(&sent.hash_sum, 0);
    atomic_store(&received.count, 0);
    atomic_store(&received.hash_sum, 0);
    for (int i = 0; i < MAX_SENDERS; i++)
        last_seq[i] = -1;
}

static void ledgers_check(const char *phase)
{
    uint64_t sc = atomic_load(&sent.count), rc = atomic_load(&received.count);
    CHECK(sc == rc, "%s: sent %lu values, received %lu", phase, (unsigned long)sc,
          (unsigned long)rc);
    CHECK(atomic_load(&sent.hash_sum) == atomic_load(&received.hash_sum),
          "%s: the values received are not the values sent", phase);
    printf("%s: %lu values conserved\n", phase, (unsigned long)rc);
}

static _Thread_local uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Wait a random moment of up to about max_us microseconds (spinning: a
 * sleep is too coarse to land in the middle of a send). */
static void pause_us(unsigned max_us)
{
    struct timespec start, now;
    uint64_t ns = rng() % ((uint64_t)max_us * 1000 + 1);
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((uint64_t)(now.tv_sec - start.tv_sec) * 1000000000u + (uint64_t)now.tv_nsec
             - (uint64_t)start.tv_nsec < ns);
}

/* ---- consumers: a chain of receiving tasks, each aborted at random ----------- */

struct consumer {
    weft_frame f;
    weft_mpsc_rx *rx;
    uint64_t v;
    int64_t rc;
};

static weft_poll consumer_poll(weft_cx *cx, void *p)
{
    struct consumer *c = p;
    WEFT_BEGIN(&c->f);
    for (;;) {
        WEFT_AWAIT(&c->f, c->rc, weft_mpsc_recv(cx, c->rx, &c->v));
        if (c->rc < 0)
            break;
        uint64_t sender = c->v >> 32, seq = c->v & 0xffffffffu;
        if (sender >= MAX_SENDERS || (int64_t)seq <= last_seq[sender]) {
            fprintf(stderr, "FAIL: value %lx out of order\n", (unsigned long)c->v);
            failures++;
        } else {
            last_seq[sender] = (int64_t)seq;
        }
        ledger_add(&received, c->v);
    }
    WEFT_RETURN(&c->f, c->rc);
    WEFT_END(&c->f);
}

/* Receive until the channel ends, aborting and replacing the consumer task at
 * random moments. Returns how many consumers were aborted. */
static unsigned consume_with_aborts(weft_runtime *rt, weft_mpsc_rx *rx)
{
    unsigned aborted = 0;
    for (;;) {
        struct consumer fr = { .rx = rx };
        weft_task_desc d = WEFT_TASK(consumer_poll, &fr);
        weft_join h = WEFT_JOIN_INIT;
        if (weft_spawn(rt, &d, &h) != 0) {
            CHECK(0, "spawn consumer");
            return aborted;
        }
        pause_us(200);
        weft_abort(&h);
        weft_outcome o;
        weft_join_wait(&h, &o);
        if (o.value == -EPIPE)
            return aborted;
        CHECK(o.value == -ECANCELED, "consumer ended with %ld", (long)o.value);
        aborted++;
    }
}

/* ---- phase 1: bounded ---------------------------------------------------------- */

struct producer {
    weft_frame f;
    weft_mpsc_tx tx;            /* this producer's clone (bounded phase) */
    weft_mpsc_unbounded_tx utx; /* or this one (unbounded phase) */
    uint64_t id, i, count;
    bool unbounded, use_permit;
    weft_mpsc_permit permit;
    weft_mpsc_send_op op;
    int64_t rc;
};

static weft_poll producer_poll(weft_cx *cx, void *p)
{
    struct producer *t = p;
    WEFT_BEGIN(&t->f);
    for (t->i = 0; t->i < t->count; t->i++) {
        if (t->unbounded) {
            t->rc = weft_mpsc_unbounded_send(&t->utx, make_value(t->id, t->i));
            CHECK(t->rc == 0, "unbounded send: %ld", (long)t->rc);
        } else if (t->use_permit) {
            WEFT_AWAIT(&t->f, t->rc, weft_mpsc_reserve(cx, &t->tx, &t->permit));
            if (t->rc < 0)
                break;
            t->rc = weft_mpsc_permit_send(&t->permit, make_value(t->id, t->i));
            CHECK(t->rc == 0, "permit_send: %ld", (long)t->rc);
        } else {
            WEFT_AWAIT(&t->f, t->rc, weft_mpsc_send(cx, &t->tx, &t->op, make_value(t->id, t->i)));
            if (t->rc < 0)
                break;
        }
        ledger_add(&sent, make_value(t->id, t->i));
        if (t->i % 16 == 0) {
            WEFT_YIELD(&t->f, t->rc);
            if (t->rc < 0)
                break;
        }
    }
    CHECK(t->rc == 0 || t->rc == -ECANCELED, "producer ended with %ld", (long)t->rc);
    weft_mpsc_tx_drop(&t->tx);
    weft_mpsc_unbounded_tx_drop(&t->utx);
    WEFT_RETURN(&t->f, (int64_t)t->i);
    WEFT_END(&t->f);
}

/* Runs once per producer: after it returns (tx already dropped: -EINVAL) or
 * when a cancel-safe one is torn down (tx still held). A permit is never held
 * across an await here, so releasing one must fail. */
static void producer_drop(void *p)
{
    struct producer *t = p;
    weft_mpsc_tx_drop(&t->tx);
    weft_mpsc_unbounded_tx_drop(&t->utx);
    CHECK(weft_mpsc_permit_release(&t->permit) == -EINVAL, "a permit was left held");
}

struct thread_producer {
    weft_mpsc_tx tx;
    weft_mpsc_unbounded_tx utx;
    bool unbounded;
    uint64_t id, count;
    pthread_t th;
};

static void *thread_produce(void *arg)
{
    struct thread_producer *tp = arg;
    rng_state = mix(tp->id + 1);
    for (uint64_t i = 0; i < tp->count; i++) {
        uint64_t v = make_value(tp->id, i);
        int rc;
        if (tp->unbounded) {
            rc = weft_mpsc_unbounded_send(&tp->utx, v);
        } else if (i % 2) {
            rc = weft_mpsc_send_blocking(&tp->tx, v);
        } else {
            while ((rc = weft_mpsc_try_send(&tp->tx, v)) == -EAGAIN)
                sched_yield();
        }
        CHECK(rc == 0, "thread send: %d", rc);
        if (rc == 0)
            ledger_add(&sent, v);
    }
    if (tp->unbounded)
        weft_mpsc_unbounded_tx_drop(&tp->utx);
    else
        weft_mpsc_tx_drop(&tp->tx);
    return NULL;
}

struct chaos {
    weft_join *handles;
    unsigned n;
    uint64_t seed;
    _Atomic unsigned aborted;
};

/* Abort about a third of the tasks, at random moments while they run. */
static void *chaos_main(void *arg)
{
    struct chaos *c = arg;
    rng_state = mix(c->seed) | 1;
    unsigned target = c->n / 3, finished;
    do {
        pause_us(50);
        unsigned i = (unsigned)(rng() % c->n);
        if (rng() % 4 == 0 && weft_abort(&c->handles[i]) == 0)
            atomic_fetch_add(&c->aborted, 1);
        finished = 0;
        for (unsigned j = 0; j < c->n; j++)
            finished += weft_join_is_finished(&c->handles[j]);
    } while (finished < c->n && atomic_load(&c->aborted) < target);
    return NULL;
}

/* Spawn the task producers and thread producers on a fresh channel, run the
 * chaos thread and the consumer chain, and check conservation. */
static void run_channel_phase(weft_runtime *rt, bool bounded, unsigned scale)
{
    enum { TASKS = 24, THREADS = 4 };
    weft_mpsc_tx tx = { 0 };
    weft_mpsc_unbounded_tx utx = { 0 };
    weft_mpsc_rx rx;
    static weft_join handles[TASKS];
    static struct thread_producer tps[THREADS];
    ledgers_reset();
    int rc = bounded ? weft_mpsc_new(&tx, &rx, 16) : weft_mpsc_unbounded_new(&utx, &rx);
    CHECK(rc == 0, "channel: %d", rc);
    if (rc)
        return;

    for (unsigned i = 0; i < TASKS; i++) {
        struct producer fr = { .id = i, .count = 2000u * scale, .use_permit = i % 2,
                               .unbounded = !bounded };
        if (bounded)
            weft_mpsc_tx_clone(&fr.tx, &tx);
        else
            weft_mpsc_unbounded_tx_clone(&fr.utx, &utx);
        weft_task_desc d = WEFT_TASK(producer_poll, &fr);
        d.drop = producer_drop;
        /* Cancel-safe producers use permits only: a torn-down reserve passes
         * its permit on, so every value is counted exactly when sent. The
         * unbounded ones never wait, so tearing them down is just as exact. */
        d.flags = (i % 4 == 1) ? WEFT_TASK_CANCEL_SAFE : 0;
        handles[i] = (weft_join)WEFT_JOIN_INIT;
        CHECK(weft_spawn(rt, &d, &handles[i]) == 0, "spawn producer");
    }
    for (unsigned i = 0; i < THREADS; i++) {
        struct thread_producer *tp = &tps[i];
        *tp = (struct thread_producer){ .id = TASKS + i, .count = 5000u * scale,
                                        .unbounded = !bounded };
        if (bounded)
            weft_mpsc_tx_clone(&tp->tx, &tx);
        else
            weft_mpsc_unbounded_tx_clone(&tp->utx, &utx);
        pthread_create(&tp->th, NULL, thread_produce, tp);
    }
    if (bounded)
        weft_mpsc_tx_drop(&tx);
    else
        weft_mpsc_unbounded_tx_drop(&utx);

    struct chaos chaos = { .handles = handles, .n = TASKS, .seed = rng() };
    pthread_t chaos_th;
    pthread_create(&chaos_th, NULL, chaos_main, &chaos);
    unsigned consumers_aborted = consume_with_aborts(rt, &rx);
    pthread_join(chaos_th, NULL);
    for (unsigned i = 0; i < TASKS; i++) {
        weft_outcome o;
        weft_join_wait(&handles[i], &o);
    }
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(tps[i].th, NULL);
    CHECK(weft_mpsc_rx_drop(&rx) == 0, "values left behind after the end");
    printf("%s: %u producers aborted, %u consumers aborted\n", bounded ? "bounded" : "unbounded",
           atomic_load(&chaos.aborted), consumers_aborted);
    ledgers_check(bounded ? "bounded" : "unbounded");
}

/* ---- phase 3: request/reply ------------------------------------------------------ */

struct request {
    uint64_t arg;
    weft_oneshot_tx reply;
};

static _Atomic uint64_t requests_sent, requests_served, replies_delivered, replies_refused,
    replies_received, replies_discarded;

struct server {
    weft_frame f;
    weft_mpsc_rx *rx;
    uint64_t v;
    int64_t rc;
};

static weft_poll server_poll(weft_cx *cx, void *p)
{
    struct server *s = p;
    WEFT_BEGIN(&s->f);
    for (;;) {
        WEFT_AWAIT(&s->f, s->rc, weft_mpsc_recv(cx, s->rx, &s->v));
        if (s->rc < 0)
            break;
        struct request *req = weft_value_to_ptr(s->v);
        atomic_fetch_add(&requests_served, 1);
        int rc = weft_oneshot_send(&req->reply, req->arg + 1);
        atomic_fetch_add(rc == 0 ? &replies_delivered : &replies_refused, 1);
        CHECK(rc == 0 || rc == -EPIPE, "reply: %d", rc);
        free(req);
    }
    WEFT_RETURN(&s->f, s->rc);
    WEFT_END(&s->f);
}

struct client {
    weft_frame f;
    weft_mpsc_tx tx;
    uint64_t rounds, i, v;
    struct request *req;
    weft_oneshot_rx reply;
    weft_mpsc_send_op op;
    int64_t rc;
};

static weft_poll client_poll(weft_cx *cx, void *p)
{
    struct client *c = p;
    WEFT_BEGIN(&c->f);
    for (c->i = 0; c->i < c->rounds; c->i++) {
        c->req = malloc(sizeof *c->req);
        c->req->arg = c->i;
        CHECK(weft_oneshot_new(&c->req->reply, &c->reply) == 0, "oneshot_new");
        WEFT_AWAIT(&c->f, c->rc, weft_mpsc_send(cx, &c->tx, &c->op, weft_value_from_ptr(c->req)));
        if (c->rc < 0) {
            /* Not sent: the request is still ours. */
            weft_oneshot_tx_drop(&c->req->reply);
            free(c->req);
            weft_oneshot_rx_drop(&c->reply);
            break;
        }
        atomic_fetch_add(&requests_sent, 1);
        WEFT_AWAIT(&c->f, c->rc, weft_oneshot_recv(cx, &c->reply, &c->v));
        if (c->rc == 0) {
            CHECK(c->v == c->i + 1, "reply %lu to request %lu", (unsigned long)c->v,
                  (unsigned long)c->i);
            atomic_fetch_add(&replies_received, 1);
        }
        if (weft_oneshot_rx_drop(&c->reply) == 1)
            atomic_fetch_add(&replies_discarded, 1);
        if (c->rc < 0)
            break;
    }
    weft_mpsc_tx_drop(&c->tx);
    WEFT_RETURN(&c->f, c->rc);
    WEFT_END(&c->f);
}

static void run_request_reply_phase(weft_runtime *rt, unsigned scale)
{
    enum { CLIENTS = 32 };
    static weft_join handles[CLIENTS];
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    CHECK(weft_mpsc_new(&tx, &rx, 8) == 0, "channel");
    struct server sf = { .rx = &rx };
    weft_task_desc sd = WEFT_TASK(server_poll, &sf);
    weft_join server = WEFT_JOIN_INIT;
    CHECK(weft_spawn(rt, &sd, &server) == 0, "spawn server");
    for (unsigned i = 0; i < CLIENTS; i++) {
        struct client cf = { .rounds = 300u * scale };
        weft_mpsc_tx_clone(&cf.tx, &tx);
        weft_task_desc d = WEFT_TASK(client_poll, &cf);
        handles[i] = (weft_join)WEFT_JOIN_INIT;
        CHECK(weft_spawn(rt, &d, &handles[i]) == 0, "spawn client");
    }
    weft_mpsc_tx_drop(&tx);
    struct chaos chaos = { .handles = handles, .n = CLIENTS, .seed = rng() };
    pthread_t chaos_th;
    pthread_create(&chaos_th, NULL, chaos_main, &chaos);
    pthread_join(chaos_th, NULL);
    for (unsigned i = 0; i < CLIENTS; i++) {
        weft_outcome o;
        weft_join_wait(&handles[i], &o);
    }
    weft_outcome so;
    weft_join_wait(&server, &so);
    CHECK(so.value == -EPIPE, "server ended with %ld", (long)so.value);
    CHECK(weft_mpsc_rx_drop(&rx) == 0, "requests left behind");
    uint64_t sent_n = atomic_load(&requests_sent), served = atomic_load(&requests_served);
    uint64_t delivered = atomic_load(&replies_delivered), refused = atomic_load(&replies_refused);
    uint64_t got = atomic_load(&replies_received), discarded = atomic_load(&replies_discarded);
    CHECK(sent_n == served, "sent %lu requests, served %lu", (unsigned long)sent_n,
          (unsigned long)served);
    CHECK(served == delivered + refused, "served %lu, replied %lu + refused %lu",
          (unsigned long)served, (unsigned long)delivered, (unsigned long)refused);
    CHECK(delivered == got + discarded, "delivered %lu replies, received %lu + discarded %lu",
          (unsigned long)delivered, (unsigned long)got, (unsigned long)discarded);
    printf("request/reply: %lu requests, %lu replies received, %lu discarded, %lu refused, "
           "%u clients aborted\n", (unsigned long)sent_n, (unsigned long)got,
           (unsigned long)discarded, (unsigned long)refused, atomic_load(&chaos.aborted));
}

/* ---- phase 4: oneshot between threads --------------------------------------------- */

enum rx_move { RX_BLOCK, RX_POLL, RX_CLOSE, RX_DROP, RX_MOVES };

struct oneshot_round {
    pthread_barrier_t start, end;
    weft_oneshot_tx tx;
    weft_oneshot_rx rx;
    unsigned rounds;
    uint64_t seed;
    int send_rc;                /* 0 delivered, -EPIPE refused, 1 dropped unsent */
    bool received, discarded;
};

static void *oneshot_sender(void *arg)
{
    struct oneshot_round *r = arg;
    rng_state = mix(r->seed) | 1;
    for (unsigned i = 0; i < r->rounds; i++) {
        pthread_barrier_wait(&r->start);
        pause_us(20);
        if (rng() % 4) {
            r->send_rc = weft_oneshot_send(&r->tx, i);
            CHECK(r->send_rc == 0 || r->send_rc == -EPIPE, "send: %d", r->send_rc);
        } else {
            CHECK(weft_oneshot_tx_drop(&r->tx) == 0, "tx_drop");
            r->send_rc = 1;
        }
        pthread_barrier_wait(&r->end);
    }
    return NULL;
}

/* The receiver's move for round i; leaves r->rx dropped. */
static void oneshot_receive(struct oneshot_round *r, unsigned i)
{
    uint64_t v = UINT64_MAX;
    int rc = 1;
    pause_us(20);
    switch (rng() % RX_MOVES) {
    case RX_BLOCK:
        rc = weft_oneshot_recv_blocking(&r->rx, &v);
        break;
    case RX_POLL:
        while ((rc = weft_oneshot_try_recv(&r->rx, &v)) == -EAGAIN)
            sched_yield();
        break;
    case RX_CLOSE:
        CHECK(weft_oneshot_rx_close(&r->rx) == 0, "rx_close");
        rc = weft_oneshot_try_recv(&r->rx, &v);
        break;
    default:
        break;                  /* RX_DROP: give up at once */
    }
    CHECK(rc == 1 || rc == 0 || rc == -EPIPE || rc == -EAGAIN, "receive: %d", rc);
    if (rc == 0)
        CHECK(v == i, "round %u received %lu", i, (unsigned long)v);
    r->received = rc == 0;
    r->discarded = weft_oneshot_rx_drop(&r->rx) == 1;
}

static void run_oneshot_thread_phase(unsigned scale)
{
    struct oneshot_round r = { .rounds = 3000u * scale, .seed = rng() };
    pthread_barrier_init(&r.start, NULL, 2);
    pthread_barrier_init(&r.end, NULL, 2);
    pthread_t th;
    pthread_create(&th, NULL, oneshot_sender, &r);
    unsigned delivered = 0, refused = 0, dropped = 0;
    for (unsigned i = 0; i < r.rounds; i++) {
        CHECK(weft_oneshot_new(&r.tx, &r.rx) == 0, "oneshot_new");
        pthread_barrier_wait(&r.start);
        oneshot_receive(&r, i);
        pthread_barrier_wait(&r.end);
        if (r.send_rc == 0) {
            delivered++;
            CHECK(r.received != r.discarded, "round %u: a delivered value was %s", i,
                  r.received ? "received and discarded" : "lost");
        } else {
            refused += r.send_rc < 0;
            dropped += r.send_rc == 1;
            CHECK(!r.received && !r.discarded, "round %u: an undelivered value surfaced", i);
        }
    }
    pthread_join(th, NULL);
    pthread_barrier_destroy(&r.start);
    pthread_barrier_destroy(&r.end);
    printf("oneshot threads: %u rounds, %u delivered, %u refused, %u dropped unsent\n",
           r.rounds, delivered, refused, dropped);
}

/* ---- phase 5: the bounded channel between threads ---------------------------- */

struct ring_producer {
    weft_mpsc_tx tx;
    uint64_t id, count;
    pthread_t th;
};

/* Send until done or refused (-EPIPE: the receiver closed). */
static void *ring_produce(void *arg)
{
    struct ring_producer *p = arg;
    rng_state = mix(p->id + 7) | 1;
    for (uint64_t i = 0; i < p->count; i++) {
        uint64_t v = make_value(p->id, i);
        int rc;
        if (rng() % 2) {
            rc = weft_mpsc_send_blocking(&p->tx, v);
        } else {
            while ((rc = weft_mpsc_try_send(&p->tx, v)) == -EAGAIN)
                sched_yield();
        }
        if (rc == -EPIPE)
            break;
        CHECK(rc == 0, "ring send: %d", rc);
        ledger_add(&sent, v);
    }
    weft_mpsc_tx_drop(&p->tx);
    return NULL;
}

static void ring_received(uint64_t v)
{
    uint64_t id = v >> 32;
    int64_t seq = (int64_t)(v & 0xffffffffu);
    CHECK(id < MAX_SENDERS && seq > last_seq[id], "ring: value %lx out of order",
          (unsigned long)v);
    if (id < MAX_SENDERS)
        last_seq[id] = seq;
    ledger_add(&received, v);
}

static void run_ring_round(size_t cap, bool close_early, unsigned per_sender)
{
    enum { SENDERS = 4 };
    struct ring_producer p[SENDERS];
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    for (int i = 0; i < MAX_SENDERS; i++)
        last_seq[i] = -1;       /* each round's senders count from 0 */
    CHECK(weft_mpsc_new(&tx, &rx, cap) == 0, "mpsc_new");
    for (uint64_t i = 0; i < SENDERS; i++) {
        p[i] = (struct ring_producer){ .id = i, .count = per_sender };
        weft_mpsc_tx_clone(&p[i].tx, &tx);
        pthread_create(&p[i].th, NULL, ring_produce, &p[i]);
    }
    weft_mpsc_tx_drop(&tx);
    uint64_t close_at = close_early ? rng() % (SENDERS * per_sender) : UINT64_MAX;
    int rc = 0;
    for (uint64_t n = 0; rc != -EPIPE; n++) {
        uint64_t v;
        if (n == close_at)
            weft_mpsc_rx_close(&rx);
        if (n % 2) {
            rc = weft_mpsc_recv_blocking(&rx, &v);
        } else {
            while ((rc = weft_mpsc_try_recv(&rx, &v)) == -EAGAIN)
                sched_yield();
        }
        CHECK(rc == 0 || rc == -EPIPE, "ring receive: %d", rc);
        if (rc == 0)
            ring_received(v);
    }
    for (int i = 0; i < SENDERS; i++)
        pthread_join(p[i].th, NULL);
    CHECK(weft_mpsc_rx_drop(&rx) == 0, "ring: values left behind after the end");
}

static void run_ring_thread_phase(unsigned scale)
{
    ledgers_reset();
    for (unsigned round = 0; round < 8 * scale; round++)
        run_ring_round(round % 4 < 2 ? 1 : 3, round % 2, 500);
    ledgers_check("bounded mpsc threads");
}

int main(int argc, char **argv)
{
    unsigned scale = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 1;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : (uint64_t)time(NULL);
    if (scale == 0)
        scale = 1;
    rng_state = mix(seed) | 1;
    printf("stress-sync-channels: scale %u seed %lu\n", scale, (unsigned long)seed);

    weft_runtime *rt;
    weft_runtime_opts opts = { .threads = 4 };
    int rc = weft_runtime_new(&rt, &opts);
    if (rc) {
        fprintf(stderr, "SKIP: no runtime: %s\n", weft_strerror(rc));
        return 77;
    }
    run_channel_phase(rt, true, scale);
    run_channel_phase(rt, false, scale);
    run_request_reply_phase(rt, scale);
    weft_runtime_free(rt);
    run_oneshot_thread_phase(scale);
    run_ring_thread_phase(scale);
    if (failures) {
        fprintf(stderr, "stress-sync-channels: %d failures (seed %lu)\n", failures,
                (unsigned long)seed);
        return 1;
    }
    puts("stress-sync-channels: pass");
    return 0;
}
