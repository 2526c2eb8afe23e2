/*
 * tools/weft-fuzz/threads.c - the plain threads of a seed: each makes a
 * random run of calls from outside the runtime, concurrently with the others
 * and with the tasks: everything actor.c does, plus what only a plain thread
 * may do - block in join_wait, join_wait_timeout, block_on,
 * oneshot_recv_blocking and mpsc_send_blocking, and shut the runtime down in
 * the middle of it all.
 *
 * A thread blocks without a limit only on what ends by itself (fuzz.h, rule
 * 4): a join_wait on a finite task, a oneshot whose sender is a finite task,
 * a send to a channel whose consumer receives until it stops and then drops
 * the receiver. So a thread that does not come back is a hang in weft, and
 * the watchdog reports it.
 */
#include <pthread.h>
#include <sched.h>

#include "fuzz.h"

enum h_op {
    H_SYNC, H_JOIN_WAIT, H_JOIN_WAIT_TIMEOUT, H_BLOCK_ON, H_OS_RECV_BLOCKING,
    H_SEND_BLOCKING, H_MISUSE, H_SHUTDOWN, H_YIELD, H_COUNT
};

static const uint8_t weights[H_COUNT] = {
    [H_SYNC] = 20, [H_JOIN_WAIT] = 5, [H_JOIN_WAIT_TIMEOUT] = 9, [H_BLOCK_ON] = 2,
    [H_OS_RECV_BLOCKING] = 2, [H_SEND_BLOCKING] = 1, [H_MISUSE] = 2, [H_SHUTDOWN] = 1,
    [H_YIELD] = 3,
};

static unsigned pick(fz_actor *a, bool may_shut_down)
{
    unsigned total = 0;
    for (unsigned i = 0; i < H_COUNT; i++)
        total += weights[i];
    unsigned r = fz_below(&a->rng, total);
    for (unsigned i = 0; i < H_COUNT; i++) {
        if (r < weights[i])
            return i == H_SHUTDOWN && !(may_shut_down && fz_one_in(&a->rng, 8)) ? H_YIELD : i;
        r -= weights[i];
    }
    return H_YIELD;
}

static void join_wait(fz_actor *a, bool timed)
{
    int s = fz_actor_pick_slot(a, 6);
    if (s < 0)
        return;
    fz_rec *r = a->slot[s].rec;
    if (r && !r->finite)
        timed = true;       /* it may wait for something only shutdown ends */
    weft_outcome out = { 0 };
    int rc;
    if (timed) {
        uint64_t ns = fz_duration(&a->rng);
        rc = weft_join_wait_timeout(&a->slot[s].h, &out, ns);
    } else {
        rc = weft_join_wait(&a->slot[s].h, &out);
    }
    fz_after_join(a, s, rc, &out, timed ? FC_JOIN_WAIT_TIMEOUT : FC_JOIN_WAIT, false);
}

static void oneshot_recv_blocking(fz_actor *a)
{
    fz_world *w = a->w;
    bool have = a->orx.weft_chan != NULL;
    if (have && !(a->orx_peer && a->orx_peer->finite))
        return;
    uint64_t v;
    int rc = weft_oneshot_recv_blocking(&a->orx, &v);
    FZ_EXPECT(w, FC_ONESHOT_RECV_BLOCKING, rc, have ? rc == 0 || rc == -EPIPE : rc == -EINVAL);
    if (rc == 0)
        FZ_INC(w->os_received);
}

static void send_blocking(fz_actor *a)
{
    fz_world *w = a->w;
    if (!w->nchans)
        return;
    unsigned c = fz_below(&a->rng, w->nchans);
    if (!w->chans[c].bounded)
        return;
    bool have = a->tx[c].weft_chan != NULL;
    int rc = weft_mpsc_send_blocking(&a->tx[c], fz_msg(a, c));
    FZ_EXPECT(w, FC_MPSC_SEND_BLOCKING, rc, have ? rc == 0 || rc == -EPIPE : rc == -EINVAL);
    if (rc == 0)
        FZ_INC(w->chans[c].sent);
}

/* Arguments a plain thread's calls must refuse without doing anything. */
static void thread_misuse(fz_actor *a)
{
    fz_world *w = a->w;
    int s = (int)fz_below(&a->rng, FZ_SLOTS);
    weft_join *h = &a->slot[s].h;
    struct weft__task *before = h->weft_task;
    weft_outcome out;
    int rc;
    switch (fz_below(&a->rng, 4)) {
    case 0:
        rc = weft_join_wait(h, NULL);
        FZ_EXPECT(w, FC_JOIN_WAIT, rc, rc == -EINVAL && h->weft_task == before);
        break;
    case 1:
        rc = weft_join_wait_timeout(NULL, &out, 1);
        FZ_EXPECT(w, FC_JOIN_WAIT_TIMEOUT, rc, rc == -EINVAL);
        break;
    case 2:
        rc = weft_block_on(w->rt, NULL, &out);
        FZ_EXPECT(w, FC_BLOCK_ON, rc, rc == -EINVAL);
        break;
    default:
        rc = weft_runtime_new(NULL, NULL);
        FZ_EXPECT(w, FC_RT_NEW, rc, rc == -EINVAL);
        break;
    }
}

static void shut_down(fz_actor *a)
{
    fz_world *w = a->w;
    atomic_store(&w->shutdown_started, true);
    int rc = weft_runtime_shutdown(w->rt);
    FZ_EXPECT(w, FC_RT_SHUTDOWN, rc, rc == 0);
}

static void take_senders(fz_actor *a)
{
    fz_world *w = a->w;
    for (unsigned c = 0; c < w->nchans; c++) {
        int rc = w->chans[c].bounded ? weft_mpsc_tx_clone(&a->tx[c], &w->chans[c].tx)
                                     : weft_mpsc_unbounded_tx_clone(&a->utx[c], &w->chans[c].utx);
        FZ_EXPECT(w, FC_MPSC_CLONE, rc, rc == 0);
    }
}

void *fz_thread_main(void *arg)
{
    fz_actor *a = arg;
    fz_world *w = a->w;
    unsigned index = (unsigned)(a - w->threads);
    bool may_shut_down = fz_one_in(&a->rng, 3);
    take_senders(a);    /* the originals stay the main thread's (fuzz.h, rule 3) */
    for (unsigned n = 8 + fz_below(&a->rng, 40); n > 0; n--) {
        unsigned op = pick(a, may_shut_down);
        FZ_STORE(w->thread_op[index], op);
        switch (op) {
        case H_JOIN_WAIT: join_wait(a, false); break;
        case H_JOIN_WAIT_TIMEOUT: join_wait(a, true); break;
        case H_BLOCK_ON: fz_spawn_child(a, SPAWN_BLOCK_ON, -1, true); break;
        case H_OS_RECV_BLOCKING: oneshot_recv_blocking(a); break;
        case H_SEND_BLOCKING: send_blocking(a); break;
        case H_MISUSE: thread_misuse(a); break;
        case H_SHUTDOWN: shut_down(a); break;
        case H_YIELD: sched_yield(); break;
        default: fz_actor_sync_op(a); break;
        }
    }
    FZ_STORE(w->thread_op[index], H_COUNT);
    /* Handles stay for the main thread to use after shutdown; the rest goes. */
    fz_actor_release(a, false);
    return NULL;
}
