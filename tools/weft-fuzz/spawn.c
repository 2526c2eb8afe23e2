/*
 * tools/weft-fuzz/spawn.c - how fuzz tasks begin and end.
 *
 * Beginning: a child's record is planned before the spawn (flags, tokens,
 * finite or not), and what it will own - a handle moved from its parent, the
 * sender of a new oneshot, clones of its parent's channel senders - is put
 * into its frame; a spawn that is refused moves nothing, and what was
 * cloned for it is dropped again. The main thread's roots (a consumer per
 * channel, a keeper per group) are spawned here too.
 *
 * End: the drop hook - run exactly once per spawned task, which check.c and
 * world.c count - accounts for an await the task was torn down in
 * (await_in_flight), checks that blocking calls are refused there even in
 * the shutdown sweep (drop_hook_probes), and gives back whatever the frame
 * still owns.
 */
#include <string.h>

#include "ftask.h"


/*
 * The task was torn down inside an await, which never reported. What the
 * leaf did before that still counts:
 *  - a select (join_await_timeout is one) still settling its losers: branch 0
 *    may have happened - a join consumed the handle (its outcome is in
 *    t->out), a recv took a value (t->val); the selector says so;
 *  - a send the receiver completed before the tear-down (the "RACED" of
 *    weft_mpsc_send) was delivered, one still queued was not: the public
 *    API cannot tell which, so it counts as "maybe sent".
 * A plain recv leaves its value in the channel and a plain join its handle
 * full: nothing to do for those.
 */
static void await_in_flight(fz_task *t)
{
    fz_world *w = t->a.w;
    fz_slot *sl = &t->a.slot[t->si];
    int64_t res = 0;
    if (t->op == T_SEND) {
        FZ_INC(w->chans[t->ci].maybe_sent);
        return;
    }
    if (t->op == T_JOIN_TIMEOUT && sl->rec && !sl->h.weft_task) {
        fz_check_outcome(w, sl->rec, t->out.status, &t->out, "join seen by a drop hook");
        sl->rec = NULL;
        return;
    }
    if (t->op != T_SELECT || !weft_select_outcome(&t->sel, 0, &res))
        return;
    if (t->sub == SEL_JOIN && sl->rec && !sl->h.weft_task) {
        fz_check_outcome(w, sl->rec, (int)res, &t->out, "select join seen by a drop hook");
        sl->rec = NULL;
    } else if (t->sub == SEL_RECV || t->sub == SEL_ONESHOT) {
        fz_count_received(t, res, t->val, t->sub == SEL_RECV);
    }
}

/*
 * A drop hook runs on a worker, or - for a task the shutdown sweep tears
 * down - on the thread that called shutdown; either way a blocking call made
 * from it must be refused (-EDEADLK), not wait for a task that only that
 * thread could finish. Probe that with the handles the task still holds
 * (and a shutdown and a block_on), before giving everything back.
 */
static void drop_hook_probes(fz_task *t)
{
    fz_world *w = t->a.w;
    for (int s = 0; s < FZ_SLOTS; s++) {
        weft_join *h = &t->a.slot[s].h;
        if (!h->weft_task || !fz_one_in(&t->a.rng, 3))
            continue;
        struct weft__task *before = h->weft_task;
        weft_outcome out;
        int rc = fz_one_in(&t->a.rng, 2) ? weft_join_wait(h, &out)
                                         : weft_join_wait_timeout(h, &out, 3600000000000ull);
        FZ_EXPECT(w, FC_JOIN_WAIT, rc, rc == -EDEADLK && h->weft_task == before);
    }
    if (fz_one_in(&t->a.rng, 8)) {
        int rc = weft_runtime_shutdown(w->rt);
        FZ_EXPECT(w, FC_RT_SHUTDOWN, rc, rc == -EDEADLK);
        struct bad_frame bf;
        weft_task_desc d = fz_bad_desc(w, &bf);
        weft_outcome out;
        rc = weft_block_on(w->rt, &d, &out);
        FZ_EXPECT(w, FC_BLOCK_ON, rc, rc == -EDEADLK);
    }
}

void fz_task_drop(void *p)
{
    fz_task *t = p;
    fz_world *w = t->a.w;
    if (t->awaiting)
        await_in_flight(t);
    drop_hook_probes(t);
    fz_actor_release(&t->a, true);
    if (t->rx.weft_chan) {
        int64_t n = weft_mpsc_rx_drop(&t->rx);
        if (FZ_EXPECT(w, FC_MPSC_RX_DROP, n, n >= 0))
            FZ_ADD(w->chans[t->chan].discarded, (uint64_t)n);
    }
    FZ_INC(t->a.self->drops);
}

/* ---- spawning ------------------------------------------------------------------------ */

static void init_task(fz_task *t, fz_world *w, fz_rec *r, uint64_t rng, uint32_t depth)
{
    memset(t, 0, sizeof *t);
    t->a.w = w;
    t->a.self = r;
    t->a.rng = rng;
    t->a.depth = depth;
    t->sleep = (weft_sleep)WEFT_SLEEP_INIT;
    t->sel = (weft_selector)WEFT_SELECTOR_INIT;
}

static void plan_flags(fz_rec *r, uint64_t *rng)
{
    r->cancel_safe = fz_one_in(rng, 3);
    r->shielded = fz_one_in(rng, 6);
}

static unsigned flags_of(const fz_rec *r)
{
    return (r->cancel_safe ? WEFT_TASK_CANCEL_SAFE : 0u) | (r->shielded ? WEFT_TASK_SHIELDED : 0u);
}

/* Bind to up to two of the world's tokens and the parent's own. */
static unsigned plan_tokens(fz_actor *a, fz_rec *r, weft_token **toks)
{
    fz_world *w = a->w;
    unsigned n = 0;
    if (w->ntokens && fz_one_in(&a->rng, 3))
        toks[n++] = w->tokens[fz_below(&a->rng, w->ntokens)];
    if (a->tok && fz_one_in(&a->rng, 3))
        toks[n++] = a->tok;
    r->token_bound = n > 0;
    return n;
}

/* Move (or clone) into the child's frame what it will own; undone on failure. */
static int give_child(fz_actor *a, fz_task *t, fz_rec *r, enum fz_spawn_mode mode)
{
    fz_world *w = a->w;
    int moved = -1;
    if (mode != SPAWN_BLOCK_ON && fz_one_in(&a->rng, 4)
        && (moved = fz_actor_pick_slot(a, 0)) >= 0)
        t->a.slot[0] = a->slot[moved];
    if (mode != SPAWN_BLOCK_ON && !a->orx.weft_chan && fz_one_in(&a->rng, 4)) {
        int rc = weft_oneshot_new(&t->a.otx, &a->orx);
        if (FZ_EXPECT(w, FC_ONESHOT_NEW, rc, rc == 0))
            a->orx_peer = r;
    }
    for (unsigned c = 0; c < w->nchans; c++) {
        int rc;
        if (a->tx[c].weft_chan)
            rc = weft_mpsc_tx_clone(&t->a.tx[c], &a->tx[c]);
        else if (a->utx[c].weft_chan)
            rc = weft_mpsc_unbounded_tx_clone(&t->a.utx[c], &a->utx[c]);
        else
            continue;
        FZ_EXPECT(w, FC_MPSC_CLONE, rc, rc == 0);
    }
    return moved;
}

static void undo_give(fz_task *t)
{
    t->a.slot[0] = (fz_slot){ WEFT_JOIN_INIT, NULL };   /* still the parent's */
    fz_actor_release(&t->a, false);
}

static int do_spawn(fz_actor *a, fz_task *t, fz_rec *r, const weft_task_desc *d,
                    enum fz_spawn_mode mode, int si)
{
    fz_world *w = a->w;
    bool shut = fz_shutting(w), done = atomic_load(&w->shutdown_done);
    weft_outcome out;
    int rc, call;
    switch (mode) {
    case SPAWN_HANDLE:
        call = FC_SPAWN;
        rc = weft_spawn(w->rt, d, &a->slot[si].h);
        break;
    case SPAWN_DETACHED:
        call = FC_SPAWN_DETACHED;
        rc = weft_spawn_detached(w->rt, d);
        break;
    case SPAWN_GROUP:
        call = FC_GROUP_SPAWN;
        t->group = fz_below(&a->rng, w->ngroups);
        rc = weft_group_spawn(w->groups[t->group], d);
        /* The keeper raises the flag before closing the group. */
        shut = shut || atomic_load(&w->group_closed[t->group]);
        break;
    default:
        call = FC_BLOCK_ON;
        rc = weft_block_on(w->rt, d, &out);
        break;
    }
    shut = shut || fz_shutting(w);
    FZ_EXPECT(w, call, rc, done ? rc == -ESHUTDOWN : rc == 0 || (shut && rc == -ESHUTDOWN));
    if (rc == 0)
        FZ_STORE(r->spawned, 1);
    if (rc == 0 && mode == SPAWN_BLOCK_ON)
        fz_check_outcome(w, r, out.status, &out, "block_on");
    return rc;
}

void fz_spawn_child(fz_actor *a, enum fz_spawn_mode mode, int si, bool finite)
{
    fz_world *w = a->w;
    if ((a->depth >= FZ_MAX_DEPTH && mode != SPAWN_BLOCK_ON) || (mode == SPAWN_GROUP && !w->ngroups))
        return;
    fz_rec *r = fz_rec_new(w);
    if (!r)
        return;
    r->role = ROLE_GENERIC;
    r->finite = finite || mode == SPAWN_BLOCK_ON;
    r->in_group = mode == SPAWN_GROUP;
    plan_flags(r, &a->rng);
    fz_task t;
    init_task(&t, w, r, fz_rng(&a->rng), a->depth + 1);
    t.ops_left = 1 + fz_below(&a->rng, mode == SPAWN_BLOCK_ON ? 4 : 10);
    weft_token *toks[2];
    unsigned ntoks = plan_tokens(a, r, toks);
    int moved = give_child(a, &t, r, mode);
    weft_task_desc d = { .poll = fz_task_poll, .frame = &t, .frame_size = sizeof t,
                         .drop = fz_task_drop, .name = "fuzz", .flags = flags_of(r),
                         .tokens = toks, .ntokens = ntoks };
    if (do_spawn(a, &t, r, &d, mode, si) != 0) {
        undo_give(&t);
        r->finite = true;   /* it never ran: a oneshot to it is already closed */
        return;
    }
    if (mode == SPAWN_HANDLE)
        a->slot[si].rec = r;
    if (moved >= 0)
        a->slot[moved] = (fz_slot){ WEFT_JOIN_INIT, NULL };
}

/* A root task of the main thread, its handle kept in w->roots. */
static void spawn_root(fz_world *w, fz_task *t, fz_rec *r)
{
    weft_token *tok = w->ntokens && fz_one_in(&t->a.rng, 3) ? w->tokens[0] : NULL;
    r->token_bound = tok != NULL;
    weft_task_desc d = { .poll = fz_task_poll, .frame = t, .frame_size = sizeof *t,
                         .drop = fz_task_drop, .name = "fuzz-root", .flags = flags_of(r),
                         .tokens = tok ? &tok : NULL, .ntokens = tok ? 1 : 0 };
    fz_slot *sl = &w->roots[w->nroots];
    int rc = weft_spawn(w->rt, &d, &sl->h);
    if (FZ_EXPECT(w, FC_SPAWN, rc, rc == 0)) {
        FZ_STORE(r->spawned, 1);
        sl->rec = r;
        w->nroots++;
    }
}

void fz_spawn_consumer(fz_world *w, unsigned c, weft_mpsc_rx *rx, uint64_t rng)
{
    fz_rec *r = fz_rec_new(w);
    fz_task t;
    init_task(&t, w, r, rng, FZ_MAX_DEPTH);
    r->role = t.role = ROLE_CONSUMER;
    plan_flags(r, &t.a.rng);
    t.ops_left = 4 + fz_below(&t.a.rng, 30);
    t.chan = c;
    t.rx = *rx;
    spawn_root(w, &t, r);
    if (FZ_LOAD(r->spawned)) {
        rx->weft_chan = NULL;       /* moved into the consumer */
    } else {
        int64_t n = weft_mpsc_rx_drop(rx);
        FZ_EXPECT(w, FC_MPSC_RX_DROP, n, n == 0);
    }
}

void fz_spawn_keeper(fz_world *w, unsigned g, uint64_t rng)
{
    fz_rec *r = fz_rec_new(w);
    fz_task t;
    init_task(&t, w, r, rng, FZ_MAX_DEPTH - 1);
    r->role = t.role = ROLE_KEEPER;
    plan_flags(r, &t.a.rng);
    t.ops_left = 3 + fz_below(&t.a.rng, 12);
    t.group = g;
    spawn_root(w, &t, r);
}

