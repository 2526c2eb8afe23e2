/*
 * tools/weft-fuzz/actor.c - the calls that plain threads and tasks both make
 * and that never wait: aborting, detaching, tokens, sends, oneshot ends,
 * groups, and misuse (NULLs, empty handles, bad task descriptions).
 *
 * Each call's result is checked against what the caller knows: whether its
 * handle was still full, whether shutdown had begun, whether its channel end
 * was still there. An empty slot stands for a stale handle: one already
 * joined, detached or given up by a timeout, which every verb must refuse
 * with -EINVAL and nothing else.
 */
#include <string.h>

#include "fuzz.h"

fz_rec *fz_rec_new(fz_world *w)
{
    uint32_t id = atomic_load_explicit(&w->nrecs, memory_order_relaxed);
    do {
        if (id >= FZ_MAX_RECS)
            return NULL;
    } while (!atomic_compare_exchange_weak_explicit(&w->nrecs, &id, id + 1,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed));
    fz_rec *r = &w->recs[id];
    r->id = id;
    return r;
}

int fz_actor_free_slot(fz_actor *a)
{
    for (int s = 0; s < FZ_SLOTS; s++)
        if (!a->slot[s].rec)
            return s;
    return -1;
}

int fz_actor_pick_slot(fz_actor *a, uint32_t stale)
{
    if (stale && fz_one_in(&a->rng, stale))
        return (int)fz_below(&a->rng, FZ_SLOTS);
    int start = (int)fz_below(&a->rng, FZ_SLOTS);
    for (int k = 0; k < FZ_SLOTS; k++) {
        int s = (start + k) % FZ_SLOTS;
        if (a->slot[s].rec)
            return s;
    }
    return -1;
}

/* ---- joins ------------------------------------------------------------------ */

bool fz_after_join(fz_actor *a, int s, int64_t rc, const weft_outcome *o, int call,
                   bool may_cancel)
{
    fz_world *w = a->w;
    fz_slot *sl = &a->slot[s];
    bool timed = call == FC_JOIN_AWAIT_TIMEOUT || call == FC_JOIN_WAIT_TIMEOUT;
    bool from_thread = call == FC_JOIN_WAIT || call == FC_JOIN_WAIT_TIMEOUT;
    if (!sl->rec) {
        /* A stale handle; an await may deliver a cancellation before it looks. */
        bool own = rc == -ECANCELED && may_cancel && !from_thread;
        FZ_EXPECT(w, call, rc, (rc == -EINVAL || own) && !sl->h.weft_task);
        return rc == -ECANCELED;
    }
    if (sl->h.weft_task) {
        /* Only the waiter's own cancellation stops a join and keeps the handle. */
        fz_ret(w, call, rc, rc == -ECANCELED && may_cancel && !from_thread,
               "a join that keeps its handle was cancelled itself");
        return rc == -ECANCELED;
    }
    fz_rec *r = sl->rec;
    sl->rec = NULL;
    if (rc == -ETIMEDOUT) {
        fz_ret(w, call, rc, timed, "-ETIMEDOUT only from a join with a timeout");
        return false;
    }
    int status = from_thread ? o->status : (int)rc;
    bool ok = from_thread ? rc == 0 : (rc == 0 || rc == -ECANCELED);
    if (fz_ret(w, call, rc, ok, "0 (or a status) with the handle consumed"))
        fz_check_outcome(w, r, status, o, fz_call_name(call));
    return false;
}

/* ---- handle verbs ------------------------------------------------------------ */

static void op_abort(fz_actor *a)
{
    int s = fz_actor_pick_slot(a, 6);
    if (s < 0)
        return;
    fz_slot *sl = &a->slot[s];
    int rc = weft_abort(&sl->h);
    if (!sl->rec) {
        FZ_EXPECT(a->w, FC_ABORT, rc, rc == -EINVAL);
        return;
    }
    if (!FZ_EXPECT(a->w, FC_ABORT, rc, rc == 0 || rc == 1))
        return;
    if (rc == 0)
        FZ_STORE(sl->rec->aborted, 1);
    bool done = weft_join_is_finished(&sl->h);
    /* 1 means it had finished, and finishing is forever. */
    fz_ret(a->w, FC_IS_FINISHED, done, rc == 0 || done, "finished after abort answered 1");
}

static void op_detach(fz_actor *a)
{
    int s = fz_actor_pick_slot(a, 6);
    if (s < 0)
        return;
    fz_slot *sl = &a->slot[s];
    int rc = weft_detach(&sl->h);
    FZ_EXPECT(a->w, FC_DETACH, rc, sl->rec ? rc == 0 && !sl->h.weft_task : rc == -EINVAL);
    sl->rec = NULL;
}

static void op_is_finished(fz_actor *a)
{
    int s = fz_actor_pick_slot(a, 4);
    if (s < 0)
        return;
    bool done = weft_join_is_finished(&a->slot[s].h);
    FZ_EXPECT(a->w, FC_IS_FINISHED, done, a->slot[s].rec || !done);
}

/* ---- tokens --------------------------------------------------------------------- */

static weft_token *pick_world_token(fz_actor *a)
{
    fz_world *w = a->w;
    return w->ntokens ? w->tokens[fz_below(&a->rng, w->ntokens)] : NULL;
}

static void op_token_child(fz_actor *a)
{
    weft_token *parent = a->tok && fz_one_in(&a->rng, 3) ? a->tok : pick_world_token(a);
    weft_token *c = NULL;
    int rc;
    if (!parent) {
        rc = weft_token_new(&c);
        FZ_EXPECT(a->w, FC_TOKEN_NEW, rc, rc == 0);
    } else {
        bool was = weft_token_is_cancelled(parent);
        rc = weft_token_child(parent, &c);
        /* A child made under a cancelled token starts cancelled. */
        FZ_EXPECT(a->w, FC_TOKEN_CHILD, rc, rc == 0 && (!was || weft_token_is_cancelled(c)));
    }
    if (rc != 0)
        return;
    weft_token_release(a->tok);     /* tasks bound to it keep it alive */
    a->tok = c;
}

static void op_token_cancel(fz_actor *a)
{
    weft_token *t = a->tok;
    if (!t || fz_one_in(&a->rng, 4)) {
        if (!fz_one_in(&a->rng, 4))
            return;     /* a world token cancels many tasks: keep it rare */
        t = pick_world_token(a);
    }
    if (!t)
        return;
    int rc = weft_token_cancel(t);
    FZ_EXPECT(a->w, FC_TOKEN_CANCEL, rc, (rc == 0 || rc == 1) && weft_token_is_cancelled(t));
}

/* ---- channels ----------------------------------------------------------------- */

uint64_t fz_msg(fz_actor *a, unsigned c)
{
    return ((uint64_t)(c + 1) << 56) | (a->seq++ & 0xffffffffffffull);
}

static void count_sent(fz_actor *a, unsigned c, int rc)
{
    if (rc == 0)
        FZ_INC(a->w->chans[c].sent);
}

static void send_bounded(fz_actor *a, unsigned c)
{
    fz_world *w = a->w;
    weft_mpsc_tx *tx = &a->tx[c];
    bool have = tx->weft_chan != NULL;
    if (fz_one_in(&a->rng, 2)) {
        int rc = weft_mpsc_try_send(tx, fz_msg(a, c));
        FZ_EXPECT(w, FC_MPSC_TRY_SEND, rc,
                  have ? rc == 0 || rc == -EAGAIN || rc == -EPIPE : rc == -EINVAL);
        count_sent(a, c, rc);
        return;
    }
    weft_mpsc_permit p = WEFT_MPSC_PERMIT_INIT;
    int rc = weft_mpsc_try_reserve(tx, &p);
    FZ_EXPECT(w, FC_MPSC_TRY_RESERVE, rc,
              have ? rc == 0 || rc == -EAGAIN || rc == -EPIPE : rc == -EINVAL);
    if (rc != 0)
        return;
    if (fz_one_in(&a->rng, 3)) {
        rc = weft_mpsc_permit_release(&p);
        FZ_EXPECT(w, FC_MPSC_PERMIT, rc, rc == 0);
        rc = weft_mpsc_permit_release(&p);      /* no longer held */
        FZ_EXPECT(w, FC_MPSC_PERMIT, rc, rc == -EINVAL);
        return;
    }
    rc = weft_mpsc_permit_send(&p, fz_msg(a, c));
    FZ_EXPECT(w, FC_MPSC_PERMIT, rc, rc == 0 || rc == -EPIPE);
    count_sent(a, c, rc);
}

static void op_send(fz_actor *a)
{
    fz_world *w = a->w;
    if (!w->nchans)
        return;
    unsigned c = fz_below(&a->rng, w->nchans);
    if (w->chans[c].bounded) {
        if (a->tx[c].weft_chan || fz_one_in(&a->rng, 4))
            send_bounded(a, c);
        return;
    }
    weft_mpsc_unbounded_tx *tx = &a->utx[c];
    if (!tx->weft_chan && !fz_one_in(&a->rng, 4))
        return;
    bool have = tx->weft_chan != NULL;
    int rc = weft_mpsc_unbounded_send(tx, fz_msg(a, c));
    FZ_EXPECT(w, FC_MPSC_UNBOUNDED_SEND, rc, have ? rc == 0 || rc == -EPIPE : rc == -EINVAL);
    count_sent(a, c, rc);
}

static void op_tx_drop(fz_actor *a)
{
    fz_world *w = a->w;
    if (!w->nchans)
        return;
    unsigned c = fz_below(&a->rng, w->nchans);
    bool have = a->tx[c].weft_chan || a->utx[c].weft_chan;
    int rc = w->chans[c].bounded ? weft_mpsc_tx_drop(&a->tx[c])
                                 : weft_mpsc_unbounded_tx_drop(&a->utx[c]);
    FZ_EXPECT(w, FC_MPSC_TX_DROP, rc, have ? rc == 0 : rc == -EINVAL);
}

static void op_oneshot(fz_actor *a)
{
    fz_world *w = a->w;
    bool have = a->orx.weft_chan != NULL;
    uint64_t v = 0;
    int rc;
    switch (fz_below(&a->rng, 4)) {
    case 0:
    case 1:
        rc = weft_oneshot_try_recv(&a->orx, &v);
        FZ_EXPECT(w, FC_ONESHOT_TRY_RECV, rc,
                  have ? rc == 0 || rc == -EAGAIN || rc == -EPIPE : rc == -EINVAL);
        if (rc == 0)
            FZ_INC(w->os_received);
        break;
    case 2:
        rc = weft_oneshot_rx_close(&a->orx);
        FZ_EXPECT(w, FC_ONESHOT_RX_CLOSE, rc, have ? rc == 0 : rc == -EINVAL);
        break;
    default:
        rc = weft_oneshot_rx_drop(&a->orx);
        FZ_EXPECT(w, FC_ONESHOT_RX_DROP, rc, have ? rc == 0 || rc == 1 : rc == -EINVAL);
        if (rc > 0)
            FZ_ADD(w->os_discarded, (uint64_t)rc);
        a->orx_peer = NULL;
        break;
    }
}

static void op_oneshot_send(fz_actor *a)
{
    bool have = a->otx.weft_chan != NULL;
    if (!have && !fz_one_in(&a->rng, 4))
        return;
    int rc = weft_oneshot_send(&a->otx, 0x05e7d00dull + a->seq++);
    FZ_EXPECT(a->w, FC_ONESHOT_SEND, rc,
              (have ? rc == 0 || rc == -EPIPE : rc == -EINVAL) && !a->otx.weft_chan);
    if (rc == 0)
        FZ_INC(a->w->os_sent);
}

/* ---- groups --------------------------------------------------------------------- */

static void op_group(fz_actor *a)
{
    fz_world *w = a->w;
    if (!w->ngroups)
        return;
    weft_group *g = w->groups[fz_below(&a->rng, w->ngroups)];
    if (fz_one_in(&a->rng, 3)) {
        int rc = weft_group_cancel(g);
        FZ_EXPECT(w, FC_GROUP_CANCEL, rc, rc == 0 || rc == 1);
        return;
    }
    size_t n = weft_group_len(g);
    fz_ret(w, FC_GROUP_LEN, (int64_t)n, true, "any length");
}

/* ---- misuse ----------------------------------------------------------------------- */

static weft_poll bad_poll(weft_cx *cx, void *p)
{
    (void)cx;
    (void)p;
    return 0;
}

static void bad_drop(void *p)
{
    struct bad_frame *b = p;
    FZ_INC(b->w->bad_drops);    /* a spawn that failed must not run this */
}

weft_task_desc fz_bad_desc(fz_world *w, struct bad_frame *frame)
{
    frame->w = w;
    return (weft_task_desc){ .poll = bad_poll, .frame = frame, .frame_size = sizeof *frame,
                             .drop = bad_drop };
}

/* A description spawn must refuse with -EINVAL (or -ESHUTDOWN once shut). */
static void spawn_bad_desc(fz_actor *a)
{
    fz_world *w = a->w;
    struct bad_frame bf;
    weft_task_desc d = fz_bad_desc(w, &bf);
    weft_token *none[1] = { NULL };
    switch (fz_below(&a->rng, 6)) {
    case 0: d.poll = NULL; break;
    case 1: d.frame_size = 1; break;
    case 2: d.flags = 1u << 7; break;
    case 3: d.ntokens = WEFT_MAX_TASK_TOKENS + 1; d.tokens = none; break;
    case 4: d.ntokens = 1; d.tokens = NULL; break;
    default: d.ntokens = 1; d.tokens = none; break;
    }
    weft_join h = WEFT_JOIN_INIT;
    /* Shutdown raises the flag before it begins: read it after the call. */
    int rc = weft_spawn(w->rt, &d, &h);
    FZ_EXPECT(w, FC_SPAWN, rc, (rc == -EINVAL || (fz_shutting(w) && rc == -ESHUTDOWN))
                               && !h.weft_task);
    rc = weft_spawn_detached(w->rt, &d);
    FZ_EXPECT(w, FC_SPAWN_DETACHED, rc, rc == -EINVAL || (fz_shutting(w) && rc == -ESHUTDOWN));
}

static void null_args(fz_actor *a)
{
    fz_world *w = a->w;
    struct bad_frame bf;
    weft_task_desc d = fz_bad_desc(w, &bf);
    weft_join h = WEFT_JOIN_INIT;
    weft_token *tok = NULL;
    weft_mpsc_tx empty_tx = { NULL };
    weft_oneshot_tx empty_otx = { NULL };
    weft_mpsc_permit idle = WEFT_MPSC_PERMIT_INIT;
    uint64_t v;
    int rc;
    switch (fz_below(&a->rng, 12)) {
    case 0: rc = weft_abort(NULL); FZ_EXPECT(w, FC_ABORT, rc, rc == -EINVAL); break;
    case 1: rc = weft_detach(NULL); FZ_EXPECT(w, FC_DETACH, rc, rc == -EINVAL); break;
    case 2: rc = weft_spawn(NULL, &d, &h); FZ_EXPECT(w, FC_SPAWN, rc, rc == -EINVAL); break;
    case 3: rc = weft_spawn(w->rt, NULL, &h); FZ_EXPECT(w, FC_SPAWN, rc, rc == -EINVAL); break;
    case 4: rc = weft_spawn(w->rt, &d, NULL); FZ_EXPECT(w, FC_SPAWN, rc, rc == -EINVAL); break;
    case 5: rc = weft_spawn_detached(NULL, &d);
            FZ_EXPECT(w, FC_SPAWN_DETACHED, rc, rc == -EINVAL); break;
    case 6: rc = weft_token_cancel(NULL); FZ_EXPECT(w, FC_TOKEN_CANCEL, rc, rc == -EINVAL);
            rc = weft_token_child(NULL, &tok);
            FZ_EXPECT(w, FC_TOKEN_CHILD, rc, rc == -EINVAL && !tok); break;
    case 7: rc = weft_group_spawn(NULL, &d); FZ_EXPECT(w, FC_GROUP_SPAWN, rc, rc == -EINVAL);
            rc = weft_group_cancel(NULL); FZ_EXPECT(w, FC_GROUP_CANCEL, rc, rc == -EINVAL); break;
    case 8: rc = weft_mpsc_try_send(&empty_tx, 1);
            FZ_EXPECT(w, FC_MPSC_TRY_SEND, rc, rc == -EINVAL);
            rc = weft_mpsc_tx_clone(&empty_tx, &empty_tx);
            FZ_EXPECT(w, FC_MPSC_CLONE, rc, rc == -EINVAL); break;
    case 9: rc = weft_oneshot_send(&empty_otx, 1);
            FZ_EXPECT(w, FC_ONESHOT_SEND, rc, rc == -EINVAL);
            rc = weft_mpsc_permit_send(&idle, 1);
            FZ_EXPECT(w, FC_MPSC_PERMIT, rc, rc == -EINVAL); break;
    case 10: rc = weft_runtime_shutdown(NULL);
             FZ_EXPECT(w, FC_RT_SHUTDOWN, rc, rc == -EINVAL);
             rc = weft_runtime_free(NULL); FZ_EXPECT(w, FC_RT_FREE, rc, rc == -EINVAL); break;
    default: rc = weft_mpsc_new(&empty_tx, NULL, 1);
             FZ_EXPECT(w, FC_MPSC_NEW, rc, rc == -EINVAL);
             rc = weft_oneshot_try_recv(NULL, &v);
             FZ_EXPECT(w, FC_ONESHOT_TRY_RECV, rc, rc == -EINVAL); break;
    }
}

static void op_misuse(fz_actor *a)
{
    if (fz_one_in(&a->rng, 3))
        spawn_bad_desc(a);
    else
        null_args(a);
}

/* ---- the dispatcher ------------------------------------------------------------ */

enum sync_op {
    S_SPAWN, S_SPAWN_DETACHED, S_SPAWN_GROUP, S_ABORT, S_DETACH, S_IS_FINISHED,
    S_TOKEN_CHILD, S_TOKEN_CANCEL, S_SEND, S_TX_DROP, S_ONESHOT, S_ONESHOT_SEND, S_GROUP,
    S_MISUSE, S_COUNT
};

static const uint8_t sync_weights[S_COUNT] = {
    [S_SPAWN] = 12, [S_SPAWN_DETACHED] = 3, [S_SPAWN_GROUP] = 2, [S_ABORT] = 7,
    [S_DETACH] = 3, [S_IS_FINISHED] = 2, [S_TOKEN_CHILD] = 2, [S_TOKEN_CANCEL] = 2,
    [S_SEND] = 8, [S_TX_DROP] = 1, [S_ONESHOT] = 3, [S_ONESHOT_SEND] = 3, [S_GROUP] = 1,
    [S_MISUSE] = 4,
};

static unsigned pick_sync(fz_actor *a)
{
    unsigned total = 0;
    for (unsigned i = 0; i < S_COUNT; i++)
        total += sync_weights[i];
    unsigned r = fz_below(&a->rng, total);
    for (unsigned i = 0; i < S_COUNT; i++) {
        if (r < sync_weights[i])
            return i;
        r -= sync_weights[i];
    }
    return S_SPAWN;
}

void fz_actor_sync_op(fz_actor *a)
{
    int s;
    switch (pick_sync(a)) {
    case S_SPAWN:
        if ((s = fz_actor_free_slot(a)) >= 0)
            fz_spawn_child(a, SPAWN_HANDLE, s, fz_one_in(&a->rng, 2));
        break;
    case S_SPAWN_DETACHED: fz_spawn_child(a, SPAWN_DETACHED, -1, fz_one_in(&a->rng, 2)); break;
    case S_SPAWN_GROUP: fz_spawn_child(a, SPAWN_GROUP, -1, fz_one_in(&a->rng, 2)); break;
    case S_ABORT: op_abort(a); break;
    case S_DETACH: op_detach(a); break;
    case S_IS_FINISHED: op_is_finished(a); break;
    case S_TOKEN_CHILD: op_token_child(a); break;
    case S_TOKEN_CANCEL: op_token_cancel(a); break;
    case S_SEND: op_send(a); break;
    case S_TX_DROP: op_tx_drop(a); break;
    case S_ONESHOT: op_oneshot(a); break;
    case S_ONESHOT_SEND: op_oneshot_send(a); break;
    case S_GROUP: op_group(a); break;
    default: op_misuse(a); break;
    }
}

/* ---- giving everything back ------------------------------------------------------ */

void fz_actor_release(fz_actor *a, bool handles)
{
    fz_world *w = a->w;
    for (int s = 0; handles && s < FZ_SLOTS; s++) {
        if (!a->slot[s].rec)
            continue;
        int rc = weft_detach(&a->slot[s].h);
        FZ_EXPECT(w, FC_DETACH, rc, rc == 0);
        a->slot[s].rec = NULL;
    }
    for (unsigned c = 0; c < w->nchans; c++) {
        int rc = 0;
        if (a->tx[c].weft_chan)
            rc = weft_mpsc_tx_drop(&a->tx[c]);
        else if (a->utx[c].weft_chan)
            rc = weft_mpsc_unbounded_tx_drop(&a->utx[c]);
        else
            continue;
        FZ_EXPECT(w, FC_MPSC_TX_DROP, rc, rc == 0);
    }
    if (a->otx.weft_chan) {
        int rc = weft_oneshot_tx_drop(&a->otx);
        FZ_EXPECT(w, FC_ONESHOT_TX_DROP, rc, rc == 0);
    }
    if (a->orx.weft_chan) {
        int rc = weft_oneshot_rx_drop(&a->orx);
        FZ_EXPECT(w, FC_ONESHOT_RX_DROP, rc, rc == 0 || rc == 1);
        if (rc > 0)
            FZ_ADD(w->os_discarded, (uint64_t)rc);
    }
    weft_token_release(a->tok);
    a->tok = NULL;
}
