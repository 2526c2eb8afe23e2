/*
 * bench/wake.c - weft-wake: the wake-latency workloads of docs/benchmarks.md.
 *
 *     weft-wake [--threads N] [--seconds D] [--warmup W] [--calibrate C]
 *               [--rate R] [--load F] [--consumers K] WORKLOAD ...
 *
 * WORKLOAD is wake_1 (one consumer task, woken through an unbounded mpsc
 * channel) or wake_8 (eight consumer tasks, all woken by one send on a
 * broadcast channel; --consumers changes the eight). Each prints the usual
 * line, "<workload> <seconds> <samples> <samples_per_second>", and on stderr
 * the figures bench/report.py reads:
 *
 *     p50_us p99_us p999_us max_us   wake latency (bench/latency.h ranks)
 *     load_busy F     worker CPU / (threads x wall) under the load alone
 *     late_p99_us, late_max_us       how late the producer sent (schedule)
 *     missed N        broadcast values a consumer lost to lagging (0)
 *
 * The workload, identical in tokio-wake and go-wake (bench/peers):
 *
 *  - Background load: 4 tasks per worker thread. Task i first wakes at
 *    t0 + i * P / n (P = 10 ms, n tasks: evenly staggered); each time it wakes
 *    it runs C chunks, each a 50 us busy-wait on the monotonic clock followed
 *    by a yield, then sleeps until its next deadline (deadline += P; deadlines
 *    already past are skipped). C = round(F * 50) = 30 for --load 0.6, so the
 *    tasks ask for 4 x 30 x 50 us = 6 ms of CPU per worker every 10 ms: 60%.
 *  - Calibration: the load runs alone for --calibrate seconds (after 0.2 s
 *    to settle) and load_busy is measured from the process CPU clock; the
 *    probe starts after that.
 *  - Consumers: wake_1, one task receiving on an unbounded mpsc channel;
 *    wake_8, eight tasks, each with its own receiver of one broadcast
 *    channel (capacity 4096), so one send wakes all eight and none can miss
 *    a value.
 *  - Probe: the producer is a plain thread outside the runtime (here main).
 *    Its schedule is fixed in advance (open loop: it never waits for a
 *    consumer): send k+1 is due gap_k after send k, gap_k = M/2 + (x_k mod M)
 *    ns with M = 1e9 / R and x_k the k-th output of splitmix64 seeded with
 *    0x5745465457414b45, so the gaps are uniform in [M/2, 3M/2) (mean 1/R,
 *    never phase-locked to the 10 ms load) and the same in every runtime. At
 *    each due time it sleeps until then (clock_nanosleep, absolute), reads
 *    the clock and sends that reading. A consumer subtracts it from the clock
 *    when its receive returns: the wake latency, send to running consumer.
 *    Sends due in the first W seconds are warmup (the first measured send's
 *    stamp is the dividing line); the D seconds after that are measured;
 *    then the sender is dropped and the consumers drain. Defaults: 2 worker
 *    threads, R = 2000/s, D = 5 s, W = 1 s, --calibrate 1 s.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <weft/sync.h>

#include "bench.h"
#include "latency.h"

#define PERIOD_NS 10000000ull       /* background period P */
#define CHUNK_NS 50000ull           /* one busy-wait between yields */
#define TASKS_PER_THREAD 4
#define SEED 0x5745465457414b45ull  /* "WEFTWAKE" */
#define BROADCAST_CAPACITY 4096

struct options {
    unsigned threads;
    double seconds, warmup, calibrate, rate, load;
    unsigned consumers;             /* wake_8's count */
};

struct shared {
    atomic_bool stop;               /* background tasks: return at next wake */
    atomic_llong missed;            /* broadcast values lost to lagging */
    unsigned chunks;                /* C */
    _Atomic uint64_t measure_from;  /* stamps before this are warmup; set by
                                       the producer just before it sends the
                                       first measured value */
};

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void spin_ns(uint64_t ns)
{
    uint64_t start = weft_now_ns();
    while (weft_now_ns() - start < ns)
        ;
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_until_ns(uint64_t t)
{
    struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ull),
                           .tv_nsec = (long)(t % 1000000000ull) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* ---- the background load --------------------------------------------------- */

struct bg_task {
    weft_frame f;
    struct shared *sh;
    weft_sleep sleep;
    uint64_t deadline;
    unsigned chunk;
    weft_poll rc;
};

static weft_poll bg_poll(weft_cx *cx, void *p)
{
    struct bg_task *t = p;
    WEFT_BEGIN(&t->f);
    for (;;) {
        WEFT_AWAIT(&t->f, t->rc, weft_sleep_until(cx, &t->sleep, t->deadline));
        if (t->rc < 0 || atomic_load_explicit(&t->sh->stop, memory_order_relaxed))
            break;
        for (t->chunk = 0; t->chunk < t->sh->chunks; t->chunk++) {
            spin_ns(CHUNK_NS);
            WEFT_YIELD(&t->f, t->rc);
        }
        t->deadline += PERIOD_NS;
        uint64_t now = weft_now_ns();
        if (t->deadline <= now)     /* skip the deadlines already past */
            t->deadline += ((now - t->deadline) / PERIOD_NS + 1) * PERIOD_NS;
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

/* ---- the consumers ----------------------------------------------------------- */

struct consumer {
    weft_frame f;
    struct shared *sh;
    bool broadcast;
    weft_mpsc_rx rx;                /* wake_1 */
    weft_broadcast_rx brx;          /* wake_8 */
    uint64_t value;
    uint64_t *samples;              /* [cap], owned by main */
    size_t n, cap;
    weft_poll rc;
};

static weft_poll consumer_poll(weft_cx *cx, void *p)
{
    struct consumer *c = p;
    WEFT_BEGIN(&c->f);
    for (;;) {
        if (c->broadcast)
            WEFT_AWAIT(&c->f, c->rc, weft_broadcast_recv(cx, &c->brx, &c->value));
        else
            WEFT_AWAIT(&c->f, c->rc, weft_mpsc_recv(cx, &c->rx, &c->value));
        uint64_t now = weft_now_ns();
        if (c->rc == -EPIPE)
            break;                  /* the producer is done and all is drained */
        if (c->rc == -EOVERFLOW) {
            atomic_fetch_add(&c->sh->missed, (long long)c->value);
            continue;
        }
        if (c->rc < 0)
            WEFT_RETURN(&c->f, c->rc);
        if (c->value >= atomic_load_explicit(&c->sh->measure_from, memory_order_relaxed) &&
            c->n < c->cap)
            c->samples[c->n++] = now - c->value;
    }
    WEFT_RETURN(&c->f, (int64_t)c->n);
    WEFT_END(&c->f);
}

static void consumer_drop(void *p)
{
    struct consumer *c = p;
    if (c->broadcast)
        weft_broadcast_rx_drop(&c->brx);
    else
        weft_mpsc_rx_drop(&c->rx);
}

/* ---- one run ------------------------------------------------------------------- */

static int fail(const char *what, int rc)
{
    fprintf(stderr, "weft-wake: %s: %s\n", what, weft_strerror(rc));
    return 1;
}

static int run(const char *name, unsigned nconsumers, const struct options *o)
{
    bool broadcast = strcmp(name, "wake_1") != 0;
    weft_runtime *rt;
    weft_runtime_opts ropts = { .threads = o->threads };
    int rc = weft_runtime_new(&rt, &ropts);
    if (rc < 0)
        return fail("runtime", rc);

    struct shared sh = { .chunks = (unsigned)(o->load * 50 + 0.5), .measure_from = UINT64_MAX };
    size_t nbg = (size_t)TASKS_PER_THREAD * o->threads;
    weft_join *bg = calloc(nbg, sizeof *bg);
    weft_join *cons = calloc(nconsumers, sizeof *cons);
    if (!bg || !cons)
        return fail("calloc", -ENOMEM);
    uint64_t t0 = weft_now_ns() + 1000000;
    for (size_t i = 0; i < nbg; i++) {
        struct bg_task t = { .sh = &sh, .sleep = WEFT_SLEEP_INIT,
                             .deadline = t0 + i * PERIOD_NS / nbg };
        weft_task_desc d = WEFT_TASK(bg_poll, &t);
        d.name = "wake-load";
        if ((rc = weft_spawn(rt, &d, &bg[i])) < 0)
            return fail("spawn", rc);
    }

    /* The load alone: how busy it keeps the workers. */
    sleep_until_ns(weft_now_ns() + 200000000ull);
    uint64_t c0 = cpu_ns(), w0 = weft_now_ns();
    sleep_until_ns(w0 + (uint64_t)(o->calibrate * 1e9));
    double load_busy = (double)(cpu_ns() - c0) / ((double)(weft_now_ns() - w0) * o->threads);

    /* The schedule, fixed in advance. */
    uint64_t mean = (uint64_t)(1e9 / o->rate), state = SEED;
    uint64_t warm_ns = (uint64_t)(o->warmup * 1e9), meas_ns = (uint64_t)(o->seconds * 1e9);
    size_t nsends = 0, cap = 1024;
    uint64_t *due = malloc(cap * sizeof *due);
    for (uint64_t at = 0; due && at < warm_ns + meas_ns; at += mean / 2 + splitmix64(&state) % mean) {
        if (nsends == cap && !(due = realloc(due, (cap *= 2) * sizeof *due)))
            break;
        due[nsends++] = at;
    }
    size_t first_measured = 0;
    while (first_measured < nsends && due[first_measured] < warm_ns)
        first_measured++;
    size_t nmeasured = nsends - first_measured;
    uint64_t *samples = malloc((nmeasured * nconsumers + 1) * sizeof *samples);
    uint64_t *late = malloc((nmeasured + 1) * sizeof *late);
    if (!due || !samples || !late)
        return fail("malloc", -ENOMEM);

    weft_mpsc_unbounded_tx tx = { 0 };
    weft_broadcast_tx btx = { 0 };
    weft_mpsc_rx rx = { 0 };
    weft_broadcast_rx brx = { 0 };
    rc = broadcast ? weft_broadcast_new(&btx, &brx, BROADCAST_CAPACITY)
                   : weft_mpsc_unbounded_new(&tx, &rx);
    if (rc < 0)
        return fail("channel", rc);
    for (unsigned i = 0; i < nconsumers; i++) {
        struct consumer c = { .sh = &sh, .broadcast = broadcast, .rx = rx,
                              .samples = samples + (size_t)i * nmeasured, .cap = nmeasured };
        if (broadcast) {
            if (i == 0)
                c.brx = brx;
            else if ((rc = weft_broadcast_subscribe(&btx, &c.brx)) < 0)
                return fail("subscribe", rc);
        }
        weft_task_desc d = WEFT_TASK(consumer_poll, &c);
        d.drop = consumer_drop;
        d.name = "wake-consumer";
        if ((rc = weft_spawn(rt, &d, &cons[i])) < 0)
            return fail("spawn", rc);
    }

    /* The producer: this thread, on the schedule whatever the consumers do. */
    uint64_t start = weft_now_ns() + 5000000;
    for (size_t k = 0; k < nsends; k++) {
        sleep_until_ns(start + due[k]);
        uint64_t stamp = weft_now_ns();
        /* The first measured send's stamp splits warmup from measured (a
         * late warmup send still has a smaller one); the send orders this
         * store before any consumer's read of it. */
        if (k == first_measured)
            atomic_store_explicit(&sh.measure_from, stamp, memory_order_relaxed);
        if (k >= first_measured)
            late[k - first_measured] = stamp - (start + due[k]);
        rc = broadcast ? (int)weft_broadcast_send(&btx, stamp)
                       : weft_mpsc_unbounded_send(&tx, stamp);
        if (rc < 0)
            return fail("send", rc);
    }
    if (broadcast)
        weft_broadcast_tx_drop(&btx);
    else
        weft_mpsc_unbounded_tx_drop(&tx);

    /* Gather: every consumer's samples, packed behind the first one's. */
    size_t total = 0;
    for (unsigned i = 0; i < nconsumers; i++) {
        weft_outcome out;
        if ((rc = weft_join_wait(&cons[i], &out)) < 0 || out.status < 0 || out.value < 0)
            return fail("consumer", rc < 0 ? rc : out.status < 0 ? out.status : (int)out.value);
        memmove(samples + total, samples + (size_t)i * nmeasured,
                (size_t)out.value * sizeof *samples);
        total += (size_t)out.value;
    }
    atomic_store(&sh.stop, true);
    for (size_t i = 0; i < nbg; i++) {
        weft_outcome out;
        if ((rc = weft_join_wait(&bg[i], &out)) < 0)
            return fail("load task", rc);
    }
    weft_runtime_free(rt);
    long long missed = atomic_load(&sh.missed);

    if (total != nmeasured * nconsumers)
        fprintf(stderr, "weft-wake: %s: %zu samples, expected %zu\n", name, total,
                nmeasured * nconsumers);
    printf("%s %.6f %zu %.0f\n", name, o->seconds, total, (double)total / o->seconds);
    fflush(stdout);
    lat_print(stderr, "", samples, total);
    fprintf(stderr, "load_busy %.3f\n", load_busy);
    lat_sort(late, nmeasured);
    fprintf(stderr, "late_p99_us %.1f\nlate_max_us %.1f\nmissed %lld\n",
            (double)lat_rank(late, nmeasured, 990) / 1e3,
            (double)lat_rank(late, nmeasured, 1000) / 1e3, missed);
    free(due);
    free(samples);
    free(late);
    free(bg);
    free(cons);
    return total == nmeasured * nconsumers && missed == 0 ? 0 : 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: weft-wake [--threads N] [--seconds D] [--warmup W] [--calibrate C]\n"
                    "                 [--rate R] [--load F] [--consumers K] WORKLOAD ...\n"
                    "workloads: wake_1 wake_8\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct options o = { .threads = 2, .seconds = 5, .warmup = 1, .calibrate = 1,
                         .rate = 2000, .load = 0.6, .consumers = 8 };
    const char *chosen[16];
    size_t nchosen = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double *d = NULL;
        if (strcmp(argv[i], "--seconds") == 0)
            d = &o.seconds;
        else if (strcmp(argv[i], "--warmup") == 0)
            d = &o.warmup;
        else if (strcmp(argv[i], "--calibrate") == 0)
            d = &o.calibrate;
        else if (strcmp(argv[i], "--rate") == 0)
            d = &o.rate;
        else if (strcmp(argv[i], "--load") == 0)
            d = &o.load;
        if (d && v) {
            *d = strtod(v, NULL);
            i++;
        } else if (strcmp(argv[i], "--threads") == 0 && v) {
            o.threads = (unsigned)strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(argv[i], "--consumers") == 0 && v) {
            o.consumers = (unsigned)strtoul(v, NULL, 10);
            i++;
        } else if ((strcmp(argv[i], "wake_1") == 0 || strcmp(argv[i], "wake_8") == 0) &&
                   nchosen < 16) {
            chosen[nchosen++] = argv[i];
        } else {
            return usage();
        }
    }
    if (nchosen == 0 || o.threads == 0 || o.consumers == 0 || !(o.seconds > 0) ||
        !(o.warmup >= 0) || !(o.calibrate > 0) || !(o.rate > 0) || !(o.load >= 0))
        return usage();
    int failed = 0;
    for (size_t i = 0; i < nchosen; i++)
        failed |= run(chosen[i], strcmp(chosen[i], "wake_1") == 0 ? 1 : o.consumers, &o);
    return failed;
}
