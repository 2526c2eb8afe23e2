/*
 * tools/weft-fuzz/world.c - one seed from start to end.
 *
 *   1. A runtime of 1-4 workers and a short grace; world tokens (a small
 *      tree), channels each with a consumer task, groups each with a keeper.
 *   2. 1..--threads plain threads run their calls (threads.c); in a third of
 *      the seeds the main thread also shuts the runtime down mid-flight.
 *   3. The threads are joined; the main thread drops its senders, perhaps
 *      cancels the tokens, and shuts down (twice: it is idempotent).
 *   4. Calls after shutdown: spawns must answer -ESHUTDOWN; every handle
 *      left behind is joined (0), aborted (1: finished), timed-joined or
 *      detached; groups are freed.
 *   5. The end-of-seed invariants: every spawned task's drop hook ran exactly
 *      once and no other's did; no task is left live; every channel's values
 *      are accounted for (sent = received + discarded, mpsc and oneshot).
 *   6. The runtime is freed and the world with it; main.c then asks
 *      LeakSanitizer whether anything weft allocated is still around.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fuzz.h"

static _Atomic(fz_world *) current;

static void make_tokens(fz_world *w, uint64_t *rng)
{
    w->ntokens = fz_below(rng, FZ_MAX_TOKENS + 1);
    for (unsigned i = 0; i < w->ntokens; i++) {
        int rc = i == 0 ? weft_token_new(&w->tokens[0])
                        : weft_token_child(w->tokens[fz_below(rng, i)], &w->tokens[i]);
        if (!FZ_EXPECT(w, i ? FC_TOKEN_CHILD : FC_TOKEN_NEW, rc, rc == 0)) {
            w->ntokens = i;
            return;
        }
    }
}

/* The world's channels and groups exist (and their counts are final) before
 * any consumer or keeper runs: tasks read those counts without a lock. */
static void make_channels(fz_world *w, uint64_t *rng, weft_mpsc_rx *rx)
{
    unsigned want = fz_below(rng, FZ_MAX_CHANS + 1);
    for (unsigned c = 0; c < want; c++) {
        fz_chan *ch = &w->chans[c];
        rx[c] = (weft_mpsc_rx){ NULL };
        ch->bounded = !fz_one_in(rng, 3);
        int rc = ch->bounded ? weft_mpsc_new(&ch->tx, &rx[c], 1 + fz_below(rng, 4))
                             : weft_mpsc_unbounded_new(&ch->utx, &rx[c]);
        if (!FZ_EXPECT(w, FC_MPSC_NEW, rc, rc == 0))
            return;
        w->nchans = c + 1;
    }
}

static void make_groups(fz_world *w, uint64_t *rng)
{
    unsigned want = fz_below(rng, FZ_MAX_GROUPS + 1);
    for (unsigned g = 0; g < want; g++) {
        weft_token *parent = w->ntokens && fz_one_in(rng, 2) ? w->tokens[w->ntokens - 1] : NULL;
        int rc = weft_group_new(w->rt, parent, &w->groups[g]);
        if (!FZ_EXPECT(w, FC_GROUP_NEW, rc, rc == 0))
            return;
        w->ngroups = g + 1;
    }
}

static void make_world(fz_world *w, uint64_t *rng)
{
    weft_mpsc_rx rx[FZ_MAX_CHANS];
    make_tokens(w, rng);
    make_channels(w, rng, rx);
    make_groups(w, rng);
    for (unsigned c = 0; c < w->nchans; c++)
        fz_spawn_consumer(w, c, &rx[c], fz_rng(rng));
    for (unsigned g = 0; g < w->ngroups; g++)
        fz_spawn_keeper(w, g, fz_rng(rng));
}

static void shut_down(fz_world *w)
{
    atomic_store(&w->shutdown_started, true);
    int rc = weft_runtime_shutdown(w->rt);
    FZ_EXPECT(w, FC_RT_SHUTDOWN, rc, rc == 0);
}

static void pause_ns(uint64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
    nanosleep(&ts, NULL);
}

/* Step 2: the threads, and maybe a shutdown while they run. */
static void run_threads(fz_world *w, uint64_t *rng, const fz_opts *o)
{
    pthread_t th[FZ_MAX_THREADS];
    w->nthreads = 1 + fz_below(rng, o->max_threads);
    unsigned started = 0;
    for (unsigned i = 0; i < w->nthreads; i++) {
        fz_actor *a = &w->threads[i];
        a->w = w;
        a->rng = fz_rng(rng);
        if (pthread_create(&th[i], NULL, fz_thread_main, a) != 0)
            break;
        started++;
    }
    if (fz_one_in(rng, 3)) {
        pause_ns(fz_below(rng, 3000000));   /* a random moment, not a handshake */
        shut_down(w);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    w->nthreads = started;
}

/* Step 4, for one handle left behind: every verb on a finished task. */
static void settle_handle(fz_world *w, fz_actor *a, int s, uint64_t *rng)
{
    weft_outcome out = { 0 };
    int rc;
    switch (fz_below(rng, 4)) {
    case 0:
        rc = weft_abort(&a->slot[s].h);
        FZ_EXPECT(w, FC_ABORT, rc, rc == 1);     /* shutdown finished everything */
        __attribute__((fallthrough));           /* the handle stays valid: join it */
    case 1:
        rc = weft_join_wait(&a->slot[s].h, &out);
        fz_after_join(a, s, rc, &out, FC_JOIN_WAIT, false);
        break;
    case 2:
        rc = weft_join_wait_timeout(&a->slot[s].h, &out, 0);
        if (rc != 0)    /* finished: no timeout */
            fz_violation(w, "join_wait_timeout on a finished task: %d", rc);
        fz_after_join(a, s, rc, &out, FC_JOIN_WAIT_TIMEOUT, false);
        break;
    default:
        rc = weft_detach(&a->slot[s].h);
        FZ_EXPECT(w, FC_DETACH, rc, rc == 0);
        a->slot[s].rec = NULL;
        break;
    }
}

static void after_shutdown(fz_world *w, uint64_t *rng)
{
    fz_actor m = { .w = w, .rng = fz_rng(rng) };
    fz_spawn_child(&m, SPAWN_HANDLE, 0, true);      /* each must be -ESHUTDOWN */
    fz_spawn_child(&m, SPAWN_DETACHED, -1, true);
    fz_spawn_child(&m, SPAWN_BLOCK_ON, -1, true);
    fz_spawn_child(&m, SPAWN_GROUP, -1, true);
    fz_actor_release(&m, true);     /* the oneshot a refused spawn left us */
    for (unsigned i = 0; i < w->nthreads; i++)
        for (int s = 0; s < FZ_SLOTS; s++)
            if (w->threads[i].slot[s].rec)
                settle_handle(w, &w->threads[i], s, rng);
    fz_actor roots = { .w = w };
    for (unsigned i = 0; i < w->nroots; i++) {
        weft_outcome out = { 0 };
        roots.slot[0] = w->roots[i];
        int rc = weft_join_wait(&roots.slot[0].h, &out);
        fz_after_join(&roots, 0, rc, &out, FC_JOIN_WAIT, false);
    }
    for (unsigned g = 0; g < w->ngroups; g++) {
        int rc = weft_group_free(w->groups[g]);
        FZ_EXPECT(w, FC_GROUP_FREE, rc, rc == 0);
    }
}

/* Step 5. */
static void check_end(fz_world *w)
{
    size_t live = weft_runtime_live_tasks(w->rt);
    if (live != 0)
        fz_violation(w, "%zu tasks live after shutdown", live);
    uint32_t n = FZ_LOAD(w->nrecs);
    for (uint32_t i = 0; i < n && i < FZ_MAX_RECS; i++) {
        fz_rec *r = &w->recs[i];
        uint32_t want = FZ_LOAD(r->spawned), drops = FZ_LOAD(r->drops);
        if (drops != want)
            fz_violation(w, "task %u (role %u, %s%s%s): drop hook ran %u times, expected %u", i,
                         r->role, r->cancel_safe ? "cancel-safe" : "cooperative",
                         r->shielded ? ", shielded" : "", r->in_group ? ", in a group" : "",
                         drops, want);
    }
    if (FZ_LOAD(w->bad_drops))
        fz_violation(w, "a spawn refused with an error ran its drop hook");
    for (unsigned c = 0; c < w->nchans; c++) {
        fz_chan *ch = &w->chans[c];
        uint64_t s = FZ_LOAD(ch->sent), r = FZ_LOAD(ch->received), d = FZ_LOAD(ch->discarded);
        uint64_t maybe = FZ_LOAD(ch->maybe_sent);
        if (r + d < s || r + d > s + maybe)
            fz_violation(w, "channel %u: sent %llu (and maybe %llu), received %llu + discarded "
                         "%llu", c, (unsigned long long)s, (unsigned long long)maybe,
                         (unsigned long long)r, (unsigned long long)d);
    }
    uint64_t s = FZ_LOAD(w->os_sent), r = FZ_LOAD(w->os_received), d = FZ_LOAD(w->os_discarded);
    if (s != r + d)
        fz_violation(w, "oneshots: sent %llu, received %llu + discarded %llu",
                     (unsigned long long)s, (unsigned long long)r, (unsigned long long)d);
}

/* Runtimes that live and die with nothing in them, and arguments new refuses. */
static void spare_runtime(fz_world *w, uint64_t *rng)
{
    weft_runtime *rt = NULL;
    weft_runtime_opts o = { .threads = 5000 };
    int rc = weft_runtime_new(&rt, &o);
    FZ_EXPECT(w, FC_RT_NEW, rc, rc == -EINVAL && !rt);
    if (!fz_one_in(rng, 8))
        return;
    o.threads = 1 + fz_below(rng, 2);
    rc = weft_runtime_new(&rt, &o);
    if (!FZ_EXPECT(w, FC_RT_NEW, rc, rc == 0))
        return;
    if (fz_one_in(rng, 2)) {
        rc = weft_runtime_shutdown(rt);
        FZ_EXPECT(w, FC_RT_SHUTDOWN, rc, rc == 0);
    }
    rc = weft_runtime_free(rt);
    FZ_EXPECT(w, FC_RT_FREE, rc, rc == 0);
}

uint64_t fz_run_seed(uint64_t seed, const fz_opts *o, uint64_t *calls)
{
    fz_world *w = calloc(1, sizeof *w);
    if (!w)
        abort();
    uint64_t rng = seed;
    w->seed = seed;
    spare_runtime(w, &rng);
    w->workers = 1 + fz_below(&rng, 4);
    static const unsigned graces[] = { 1, 3, 10 };
    weft_runtime_opts ro = { .threads = w->workers, .shutdown_grace_ms = graces[fz_below(&rng, 3)] };
    int rc = weft_runtime_new(&w->rt, &ro);
    if (!FZ_EXPECT(w, FC_RT_NEW, rc, rc == 0)) {
        uint64_t v = FZ_LOAD(w->violations);
        free(w);
        return v;
    }
    atomic_store(&current, w);
    make_world(w, &rng);
    run_threads(w, &rng, o);

    for (unsigned c = 0; c < w->nchans; c++) {
        fz_chan *ch = &w->chans[c];
        rc = ch->bounded ? weft_mpsc_tx_drop(&ch->tx) : weft_mpsc_unbounded_tx_drop(&ch->utx);
        FZ_EXPECT(w, FC_MPSC_TX_DROP, rc, rc == 0);
    }
    for (unsigned i = 0; i < w->ntokens && fz_one_in(&rng, 2); i++) {
        rc = weft_token_cancel(w->tokens[i]);
        FZ_EXPECT(w, FC_TOKEN_CANCEL, rc, rc == 0 || rc == 1);
    }
    shut_down(w);
    shut_down(w);
    atomic_store(&w->shutdown_done, true);   /* every spawn from here must fail */
    after_shutdown(w, &rng);
    check_end(w);
    for (unsigned i = 0; i < w->ntokens; i++)
        weft_token_release(w->tokens[i]);
    rc = weft_runtime_free(w->rt);
    FZ_EXPECT(w, FC_RT_FREE, rc, rc == 0);
    atomic_store(&current, NULL);

    if (fz_verbose)
        fprintf(stderr, "seed 0x%016llx: %u workers, %u threads, %u tasks, %llu calls, "
                        "%llu violations\n", (unsigned long long)seed, w->workers, w->nthreads,
                FZ_LOAD(w->nrecs), (unsigned long long)FZ_LOAD(w->calls),
                (unsigned long long)FZ_LOAD(w->violations));
    *calls = FZ_LOAD(w->calls);
    uint64_t v = FZ_LOAD(w->violations);
    free(w);
    return v;
}

/* From the watchdog, with the seed stuck: what was everyone doing? Reads only
 * atomics; the world may be in any state. */
void fz_dump_world(void)
{
    fz_world *w = atomic_load(&current);
    if (!w)
        return;
    fprintf(stderr, "  %u workers, shutdown started %d\n", w->workers, fz_shutting(w));
    for (unsigned i = 0; i < w->nthreads; i++)
        fprintf(stderr, "  thread %u: last op %u\n", i, FZ_LOAD(w->thread_op[i]));
    uint32_t n = FZ_LOAD(w->nrecs);
    for (uint32_t i = 0; i < n && i < FZ_MAX_RECS; i++) {
        fz_rec *r = &w->recs[i];
        if (FZ_LOAD(r->spawned) && !FZ_LOAD(r->drops))
            fprintf(stderr, "  task %u: still live, last op %u\n", i, FZ_LOAD(r->last_op));
    }
}
