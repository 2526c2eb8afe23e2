/*
 * tools/weft-fuzz/tasks.c - the tasks weft-fuzz spawns. One poll function
 * interprets random operations for every task; a role narrows the choice:
 *   generic   yields, sleeps, joins (plain and with timeouts), waits on
 *             tokens and oneshots, sends, selects, weft_pending, spawns,
 *             and every call of actor.c; worker-only misuse (blocking calls
 *             that must answer -EDEADLK, awaits with NULL arguments);
 *   consumer  owns the receiver of one world channel: recv, select(recv,
 *             sleep), try_recv, close; its drop hook drops the receiver and
 *             counts what it discarded;
 *   keeper    the one waiter of one world group: join_next, join_all (plain
 *             and scoped), the group's shutdown; it also spawns into it.
 *
 * After every await the result is checked (check_await): an await yields
 * -ECANCELED for the task's own cancellation only in a cooperative,
 * unshielded task with a request; a shielded await never does; a sleep never
 * ends early; a join obeys fz_after_join. Whatever the task still owns when
 * it ends - returned, torn down or shut down - its drop hook gives back,
 * which is where "every drop hook runs exactly once" is counted.
 */
#include <string.h>

#include "ftask.h"

static const uint8_t weights[3][T_OP_COUNT] = {
    [ROLE_GENERIC] = { [T_SYNC] = 16, [T_YIELD] = 6, [T_SLEEP] = 4, [T_SHIELDED_SLEEP] = 1,
                       [T_JOIN] = 5, [T_JOIN_TIMEOUT] = 9, [T_TOKEN_WAIT] = 1, [T_OS_RECV] = 2,
                       [T_SEND] = 2, [T_SELECT] = 4, [T_PENDING] = 1, [T_WORKER_MISUSE] = 2,
                       [T_RETURN] = 1 },
    [ROLE_CONSUMER] = { [T_YIELD] = 2, [T_RECV] = 10, [T_TRY_RECV] = 3, [T_RX_CLOSE] = 1,
                        [T_SELECT] = 5, [T_WORKER_MISUSE] = 1 },
    [ROLE_KEEPER] = { [T_YIELD] = 2, [T_G_NEXT] = 8, [T_G_ALL] = 2, [T_G_ALL_SCOPED] = 2,
                      [T_G_SHUTDOWN] = 1, [T_G_SPAWN] = 4, [T_SYNC] = 2 },
};

static uint32_t pick(fz_task *t)
{
    const uint8_t *w = weights[t->role];
    unsigned total = 0;
    for (unsigned i = 0; i < T_OP_COUNT; i++)
        total += w[i];
    unsigned r = fz_below(&t->a.rng, total);
    for (unsigned i = 0; i < T_OP_COUNT; i++) {
        if (r < w[i])
            return i;
        r -= w[i];
    }
    return T_YIELD;
}

static weft_token *pick_token(fz_actor *a)
{
    fz_world *w = a->w;
    if (a->tok && fz_one_in(&a->rng, 2))
        return a->tok;
    return w->ntokens ? w->tokens[fz_below(&a->rng, w->ntokens)] : NULL;
}

/* ---- preparing an operation (rule 4 of weft/task.h: every random choice is
 * made here, into the frame, before the await that uses it) ---------------- */

static uint32_t prepare_join(fz_task *t, uint32_t op)
{
    fz_actor *a = &t->a;
    int s = fz_actor_pick_slot(a, 8);
    if (s < 0)
        return T_SYNC;
    t->si = (uint32_t)s;
    fz_rec *target = a->slot[s].rec;
    /* A finite task waits without a limit only for finite tasks. */
    if (op == T_JOIN && a->self->finite && target && !target->finite)
        op = T_JOIN_TIMEOUT;
    t->jt = (weft_join_timeout)WEFT_JOIN_TIMEOUT_INIT;
    t->ns = fz_duration(&a->rng);
    memset(&t->out, 0, sizeof t->out);
    return op;
}

static uint32_t prepare_select(fz_task *t)
{
    fz_actor *a = &t->a;
    t->ns = fz_duration(&a->rng);
    t->tw = (weft_token_wait)WEFT_TOKEN_WAIT_INIT;
    memset(&t->out, 0, sizeof t->out);
    if (t->role == ROLE_CONSUMER) {
        t->sub = SEL_RECV;
        return T_SELECT;
    }
    t->sub = fz_below(&a->rng, 3);
    if (t->sub == SEL_TOKEN && !(t->wtok = pick_token(a)))
        t->sub = SEL_ONESHOT;
    if (t->sub == SEL_ONESHOT)
        t->had = a->orx.weft_chan != NULL;
    if (t->sub == SEL_JOIN) {
        int s = fz_actor_pick_slot(a, 8);
        if (s < 0)
            return T_YIELD;
        t->si = (uint32_t)s;
    }
    return T_SELECT;
}

static uint32_t prepare(fz_task *t, uint32_t op)
{
    fz_actor *a = &t->a;
    fz_world *w = a->w;
    bool finite = a->self->finite;
    t->ns = fz_duration(&a->rng);
    t->start = weft_now_ns();
    switch (op) {
    case T_JOIN:
    case T_JOIN_TIMEOUT:
        return prepare_join(t, op);
    case T_TOKEN_WAIT:
        t->tw = (weft_token_wait)WEFT_TOKEN_WAIT_INIT;
        return !finite && (t->wtok = pick_token(a)) ? op : T_YIELD;
    case T_OS_RECV:
        t->had = a->orx.weft_chan != NULL;
        if (!t->had)
            return fz_one_in(&a->rng, 4) ? op : T_YIELD;   /* stale: -EINVAL */
        return !finite || (a->orx_peer && a->orx_peer->finite) ? op : T_YIELD;
    case T_SEND:
        t->ci = w->nchans ? fz_below(&a->rng, w->nchans) : 0;
        if (finite || !w->nchans || !a->tx[t->ci].weft_chan)
            return T_SYNC;
        t->val = fz_msg(a, t->ci);
        t->sop = (weft_mpsc_send_op)WEFT_MPSC_SEND_OP_INIT;
        return op;
    case T_SELECT:
        return prepare_select(t);
    case T_PENDING:
        return finite ? T_YIELD : op;
    case T_G_SHUTDOWN:
        /* Before the call: a spawn that finds the group closed must see it. */
        atomic_store(&w->group_closed[t->group], true);
        return op;
    default:
        return op;
    }
}

/* ---- checking an await ------------------------------------------------------------ */

void fz_count_received(fz_task *t, int64_t rc, uint64_t v, bool chan)
{
    fz_world *w = t->a.w;
    if (rc != 0)
        return;
    if (!chan) {
        FZ_INC(w->os_received);
        return;
    }
    FZ_INC(w->chans[t->chan].received);
    if ((v >> 56) != t->chan + 1)
        fz_violation(w, "channel %u delivered a value of channel %llu", t->chan,
                     (unsigned long long)(v >> 56) - 1);
}

/* Returns true when rc is the task's own cancellation. */
static bool check_select(fz_task *t, bool may_cancel)
{
    fz_world *w = t->a.w;
    int64_t rc = t->rc;
    int win = weft_select_winner(&t->sel);
    if (win == 1) {
        FZ_EXPECT(w, FC_SELECT, rc, rc == 0);
        return false;
    }
    if (win < 0) {
        FZ_EXPECT(w, FC_SELECT, rc, rc == -ECANCELED && may_cancel);
        return rc == -ECANCELED;
    }
    switch (t->sub) {
    case SEL_TOKEN:
        FZ_EXPECT(w, FC_SELECT, rc, rc == 0 && weft_token_is_cancelled(t->wtok));
        break;
    case SEL_ONESHOT:
        FZ_EXPECT(w, FC_SELECT, rc, t->had ? rc == 0 || rc == -EPIPE : rc == -EINVAL);
        fz_count_received(t, rc, t->val, false);
        break;
    case SEL_JOIN:
        fz_after_join(&t->a, (int)t->si, rc, &t->out, FC_SELECT, false);
        break;
    default:
        FZ_EXPECT(w, FC_SELECT, rc, rc == 0 || rc == -EPIPE);
        fz_count_received(t, rc, t->val, true);
        break;
    }
    return false;
}

static bool check_group_wait(fz_task *t, bool may_cancel, bool own_request)
{
    fz_world *w = t->a.w;
    int64_t rc = t->rc;
    switch (t->op) {
    case T_G_NEXT:
        FZ_EXPECT(w, FC_GROUP_JOIN_NEXT, rc, rc == 0 || rc == 1 ||
                  (rc == -ECANCELED && may_cancel));
        if (rc == 1)
            fz_check_group_outcome(w, &t->out);
        return rc == -ECANCELED;
    case T_G_ALL:
        FZ_EXPECT(w, FC_GROUP_JOIN_ALL, rc, rc == 0 || (rc == -ECANCELED && may_cancel));
        return rc == -ECANCELED;
    case T_G_ALL_SCOPED:
        /* -ECANCELED here is the scoped wait's report, not a delivery. */
        FZ_EXPECT(w, FC_GROUP_JOIN_ALL, rc, rc == 0 || (rc == -ECANCELED && own_request
                                                        && !t->a.self->shielded));
        return false;
    default:
        FZ_EXPECT(w, FC_GROUP_SHUTDOWN, rc, rc == 0);
        return false;
    }
}

/* Check the await just made; returns true when the task should stop. */
static bool check_await(weft_cx *cx, fz_task *t)
{
    fz_world *w = t->a.w;
    fz_rec *r = t->a.self;
    int64_t rc = t->rc;
    bool requested = weft_cx_cancel_requested(cx);
    bool may_cancel = requested && !r->cancel_safe && !r->shielded;
    bool mine = rc == -ECANCELED, slept = weft_now_ns() - t->start >= t->ns;
    t->awaiting = false;
    switch (t->op) {
    case T_YIELD:
        FZ_EXPECT(w, FC_YIELD, rc, rc == 0 || (mine && may_cancel));
        break;
    case T_SLEEP:
        FZ_EXPECT(w, FC_SLEEP, rc, (rc == 0 && slept) || (mine && may_cancel));
        break;
    case T_SHIELDED_SLEEP:
        mine = false;
        FZ_EXPECT(w, FC_SLEEP, rc, rc == 0 && slept);
        break;
    case T_JOIN:
        mine = fz_after_join(&t->a, (int)t->si, rc, &t->out, FC_JOIN_AWAIT, may_cancel);
        break;
    case T_JOIN_TIMEOUT:
        mine = fz_after_join(&t->a, (int)t->si, rc, &t->out, FC_JOIN_AWAIT_TIMEOUT, may_cancel);
        break;
    case T_TOKEN_WAIT:
        FZ_EXPECT(w, FC_TOKEN_WAIT, rc, (rc == 0 && weft_token_is_cancelled(t->wtok))
                                        || (mine && may_cancel));
        break;
    case T_OS_RECV:
        FZ_EXPECT(w, FC_ONESHOT_RECV, rc, (mine && may_cancel)
                                          || (t->had ? rc == 0 || rc == -EPIPE : rc == -EINVAL));
        fz_count_received(t, rc, t->val, false);
        break;
    case T_SEND:
        FZ_EXPECT(w, FC_MPSC_SEND, rc, rc == 0 || rc == -EPIPE || (mine && may_cancel));
        if (rc == 0)
            FZ_INC(w->chans[t->ci].sent);
        break;
    case T_RECV:
        FZ_EXPECT(w, FC_MPSC_RECV, rc, rc == 0 || rc == -EPIPE || (mine && may_cancel));
        fz_count_received(t, rc, t->val, true);
        break;
    case T_SELECT:
        mine = check_select(t, may_cancel);
        break;
    case T_PENDING:
        FZ_EXPECT(w, FC_PENDING, rc, mine && may_cancel);
        break;
    default:
        mine = check_group_wait(t, may_cancel, requested);
        if (t->op == T_G_ALL_SCOPED && rc == -ECANCELED)
            return !fz_one_in(&t->a.rng, 4);
        break;
    }
    if (!mine)
        return false;
    if (may_cancel)
        FZ_STORE(r->saw_cancel, 1);
    /* Level-triggered: a task that goes on sees -ECANCELED at every await. */
    return !fz_one_in(&t->a.rng, 4);
}

/* ---- operations that do not suspend ------------------------------------------------ */

/* Calls a task must not make, or makes with bad arguments: refused at once. */
static void worker_misuse(weft_cx *cx, fz_task *t);

static void sync_op(weft_cx *cx, fz_task *t)
{
    fz_world *w = t->a.w;
    uint64_t v = 0;
    int rc;
    switch (t->op) {
    case T_TRY_RECV:
        rc = weft_mpsc_try_recv(&t->rx, &v);
        FZ_EXPECT(w, FC_MPSC_TRY_RECV, rc, rc == 0 || rc == -EAGAIN || rc == -EPIPE);
        fz_count_received(t, rc, v, true);
        break;
    case T_RX_CLOSE:
        rc = weft_mpsc_rx_close(&t->rx);
        FZ_EXPECT(w, FC_MPSC_RX_CLOSE, rc, rc == 0);
        break;
    case T_G_SPAWN:
        fz_spawn_child(&t->a, SPAWN_GROUP, -1, fz_one_in(&t->a.rng, 2));
        break;
    case T_WORKER_MISUSE:
        worker_misuse(cx, t);
        break;
    default:
        fz_actor_sync_op(&t->a);
        break;
    }
}

static weft_poll fz_branch(weft_cx *cx, void *frame, unsigned i)
{
    fz_task *t = frame;
    if (i == 1)
        return weft_sleep_for(cx, &t->sleep, t->ns);
    switch (t->sub) {
    case SEL_TOKEN: return weft_token_cancelled(cx, t->wtok, &t->tw);
    case SEL_ONESHOT: return weft_oneshot_recv(cx, &t->a.orx, &t->val);
    case SEL_JOIN: return weft_join_await(cx, &t->a.slot[t->si].h, &t->out);
    default: return weft_mpsc_recv(cx, &t->rx, &t->val);
    }
}

static void worker_misuse(weft_cx *cx, fz_task *t)
{
    fz_actor *a = &t->a;
    fz_world *w = a->w;
    int s = (int)fz_below(&a->rng, FZ_SLOTS);
    weft_join *h = &a->slot[s].h;
    struct weft__task *before = h->weft_task;
    weft_outcome out;
    uint64_t v;
    int64_t rc;
    switch (fz_below(&a->rng, 8)) {
    case 0:
        rc = weft_join_wait(h, &out);
        FZ_EXPECT(w, FC_JOIN_WAIT, rc, (before ? rc == -EDEADLK : rc == -EINVAL)
                                       && h->weft_task == before);
        break;
    case 1:
        rc = weft_join_wait_timeout(h, &out, 1000);
        FZ_EXPECT(w, FC_JOIN_WAIT_TIMEOUT, rc, (before ? rc == -EDEADLK : rc == -EINVAL)
                                               && h->weft_task == before);
        break;
    case 2:
        rc = weft_runtime_shutdown(w->rt);
        FZ_EXPECT(w, FC_RT_SHUTDOWN, rc, rc == -EDEADLK);
        break;
    case 3: {
        struct bad_frame bf;
        weft_task_desc d = fz_bad_desc(w, &bf);
        rc = weft_block_on(w->rt, &d, &out);
        FZ_EXPECT(w, FC_BLOCK_ON, rc, rc == -EDEADLK);
        break;
    }
    case 4:
        rc = weft_oneshot_recv_blocking(&a->orx, &v);
        FZ_EXPECT(w, FC_ONESHOT_RECV_BLOCKING, rc, rc == (a->orx.weft_chan ? -EDEADLK : -EINVAL));
        break;
    case 5:
        rc = weft_join_await(cx, h, NULL);
        FZ_EXPECT(w, FC_JOIN_AWAIT, rc, rc == -EINVAL && h->weft_task == before);
        rc = weft_join_await(cx, NULL, &out);
        FZ_EXPECT(w, FC_JOIN_AWAIT, rc, rc == -EINVAL);
        break;
    case 6:
        rc = weft_join_await_timeout(cx, NULL, h, &out, 1);
        FZ_EXPECT(w, FC_JOIN_AWAIT_TIMEOUT, rc, rc == -EINVAL && h->weft_task == before);
        rc = weft_select(cx, &t->sel, fz_one_in(&a->rng, 2) ? 0 : WEFT_SELECT_MAX + 1, fz_branch,
                         t);
        FZ_EXPECT(w, FC_SELECT, rc, rc == -EINVAL);
        break;
    default:
        rc = weft_sleep_for(cx, NULL, 1);
        FZ_EXPECT(w, FC_SLEEP, rc, rc == -EINVAL);
        rc = weft_token_cancelled(cx, NULL, &t->tw);
        FZ_EXPECT(w, FC_TOKEN_WAIT, rc, rc == -EINVAL);
        rc = weft_group_join_next(cx, NULL, &out);
        FZ_EXPECT(w, FC_GROUP_JOIN_NEXT, rc, rc == -EINVAL);
        break;
    }
}

/* ---- the task ---------------------------------------------------------------------- */

weft_poll fz_task_poll(weft_cx *cx, void *p)
{
    fz_task *t = p;
    WEFT_BEGIN(&t->f);
    while (t->ops_left > 0) {
        t->ops_left--;
        t->op = prepare(t, pick(t));
        FZ_STORE(t->a.self->last_op, t->op);
        if (t->op == T_RETURN)
            break;
        t->awaiting = true;     /* cleared by check_await, or by the else below */
        if (t->op == T_YIELD) {
            WEFT_YIELD(&t->f, t->rc);
        } else if (t->op == T_SLEEP) {
            WEFT_AWAIT(&t->f, t->rc, weft_sleep_for(cx, &t->sleep, t->ns));
        } else if (t->op == T_SHIELDED_SLEEP) {
            WEFT_AWAIT_SHIELDED(&t->f, t->rc, weft_sleep_for(cx, &t->sleep, t->ns));
        } else if (t->op == T_JOIN) {
            WEFT_AWAIT(&t->f, t->rc, weft_join_await(cx, &t->a.slot[t->si].h, &t->out));
        } else if (t->op == T_JOIN_TIMEOUT) {
            WEFT_AWAIT(&t->f, t->rc, weft_join_await_timeout(cx, &t->jt, &t->a.slot[t->si].h,
                                                             &t->out, t->ns));
        } else if (t->op == T_TOKEN_WAIT) {
            WEFT_AWAIT(&t->f, t->rc, weft_token_cancelled(cx, t->wtok, &t->tw));
        } else if (t->op == T_OS_RECV) {
            WEFT_AWAIT(&t->f, t->rc, weft_oneshot_recv(cx, &t->a.orx, &t->val));
        } else if (t->op == T_SEND) {
            WEFT_AWAIT(&t->f, t->rc, weft_mpsc_send(cx, &t->a.tx[t->ci], &t->sop, t->val));
        } else if (t->op == T_RECV) {
            WEFT_AWAIT(&t->f, t->rc, weft_mpsc_recv(cx, &t->rx, &t->val));
        } else if (t->op == T_SELECT) {
            WEFT_SELECT_AWAIT(&t->f, t->rc, &t->sel, 2, fz_branch, t);
        } else if (t->op == T_PENDING) {
            WEFT_AWAIT(&t->f, t->rc, weft_pending(cx));
        } else if (t->op == T_G_NEXT) {
            WEFT_AWAIT(&t->f, t->rc, weft_group_join_next(cx, t->a.w->groups[t->group], &t->out));
        } else if (t->op == T_G_ALL) {
            WEFT_AWAIT(&t->f, t->rc, weft_group_join_all(cx, t->a.w->groups[t->group]));
        } else if (t->op == T_G_ALL_SCOPED) {
            WEFT_GROUP_AWAIT_ALL(&t->f, t->rc, t->a.w->groups[t->group]);
        } else if (t->op == T_G_SHUTDOWN) {
            WEFT_GROUP_AWAIT_SHUTDOWN(&t->f, t->rc, t->a.w->groups[t->group]);
        } else {
            t->awaiting = false;
            sync_op(cx, t);
            continue;
        }
        if (check_await(cx, t))
            break;
    }
    t->ret = ((int64_t)t->a.self->id << 8) | (t->ops_left & 0xff);
    FZ_STORE(t->a.self->ret_value, t->ret);
    FZ_STORE(t->a.self->returned, 1);
    WEFT_RETURN(&t->f, t->ret);
    WEFT_END(&t->f);
}
