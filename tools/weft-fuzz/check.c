/*
 * tools/weft-fuzz/check.c - counting results and judging them.
 *
 * Every call the fuzzer makes goes through fz_ret: its result is counted in a
 * per-call table (printed at the end) and checked against what the headers
 * document for the situation the caller knows it is in. Join outcomes are
 * checked against the rules of weft/runtime.h and README "Tasks, abort and
 * detach":
 *   O1. The drop hook ran exactly once before the outcome was published.
 *   O2. Status 0 means the task returned by itself, and the value is the one
 *       it returned; -ECANCELED means it never returned. Nothing else.
 *   O3. -ECANCELED needs a request (source != NONE) and either a cancel-safe
 *       task or a shutdown (which tears down every task after its grace).
 *   O4. The source names someone who could have asked: ABORT only after an
 *       abort answered 0, TOKEN only for a task bound to a token, GROUP only
 *       for a group's child, SHUTDOWN only once shutdown began, TIMEOUT
 *       never (a timed-out wait gives its handle up, so no join follows).
 *   O5. An abort that answered 0, or a cooperative task that saw its own
 *       -ECANCELED, shows up as a source; the latter also as an await site.
 *   O6. An outcome is handed over at most once.
 */
#include <stdarg.h>
#include <stdio.h>

#include "fuzz.h"

_Atomic uint64_t fz_counts[FC_COUNT][FB_COUNT];

static const char *const call_names[FC_COUNT] = {
    [FC_RT_NEW] = "runtime_new", [FC_RT_SHUTDOWN] = "runtime_shutdown",
    [FC_RT_FREE] = "runtime_free", [FC_SPAWN] = "spawn",
    [FC_SPAWN_DETACHED] = "spawn_detached", [FC_BLOCK_ON] = "block_on",
    [FC_ABORT] = "abort", [FC_DETACH] = "detach", [FC_IS_FINISHED] = "join_is_finished",
    [FC_JOIN_AWAIT] = "join_await", [FC_JOIN_AWAIT_TIMEOUT] = "join_await_timeout",
    [FC_JOIN_WAIT] = "join_wait", [FC_JOIN_WAIT_TIMEOUT] = "join_wait_timeout",
    [FC_YIELD] = "yield", [FC_SLEEP] = "sleep", [FC_PENDING] = "pending",
    [FC_SELECT] = "select", [FC_TOKEN_NEW] = "token_new", [FC_TOKEN_CHILD] = "token_child",
    [FC_TOKEN_CANCEL] = "token_cancel", [FC_TOKEN_WAIT] = "token_cancelled",
    [FC_MPSC_NEW] = "mpsc_new", [FC_MPSC_CLONE] = "mpsc_tx_clone",
    [FC_MPSC_TX_DROP] = "mpsc_tx_drop", [FC_MPSC_TRY_SEND] = "mpsc_try_send",
    [FC_MPSC_SEND] = "mpsc_send", [FC_MPSC_SEND_BLOCKING] = "mpsc_send_blocking",
    [FC_MPSC_TRY_RESERVE] = "mpsc_try_reserve", [FC_MPSC_PERMIT] = "mpsc_permit_send/release",
    [FC_MPSC_UNBOUNDED_SEND] = "mpsc_unbounded_send", [FC_MPSC_RECV] = "mpsc_recv",
    [FC_MPSC_TRY_RECV] = "mpsc_try_recv", [FC_MPSC_RX_CLOSE] = "mpsc_rx_close",
    [FC_MPSC_RX_DROP] = "mpsc_rx_drop", [FC_ONESHOT_NEW] = "oneshot_new",
    [FC_ONESHOT_SEND] = "oneshot_send", [FC_ONESHOT_TX_DROP] = "oneshot_tx_drop",
    [FC_ONESHOT_RECV] = "oneshot_recv", [FC_ONESHOT_TRY_RECV] = "oneshot_try_recv",
    [FC_ONESHOT_RECV_BLOCKING] = "oneshot_recv_blocking",
    [FC_ONESHOT_RX_CLOSE] = "oneshot_rx_close", [FC_ONESHOT_RX_DROP] = "oneshot_rx_drop",
    [FC_GROUP_NEW] = "group_new", [FC_GROUP_SPAWN] = "group_spawn",
    [FC_GROUP_JOIN_NEXT] = "group_join_next", [FC_GROUP_JOIN_ALL] = "group_join_all",
    [FC_GROUP_SHUTDOWN] = "group_shutdown", [FC_GROUP_CANCEL] = "group_cancel",
    [FC_GROUP_LEN] = "group_len", [FC_GROUP_FREE] = "group_free",
};

static const char *const bucket_names[FB_COUNT] = {
    "0", ">0", "EINVAL", "ESHUTDOWN", "EDEADLK", "ETIMEDOUT", "ECANCELED", "EPIPE",
    "EAGAIN", "EBUSY", "ENOMEM", "other",
};

const char *fz_call_name(int call) { return call_names[call]; }
const char *fz_bucket_name(int bucket) { return bucket_names[bucket]; }

static int bucket_of(int64_t rc)
{
    if (rc == 0)
        return FB_ZERO;
    if (rc > 0)
        return FB_POS;
    switch (-rc) {
    case EINVAL: return FB_EINVAL;
    case ESHUTDOWN: return FB_ESHUTDOWN;
    case EDEADLK: return FB_EDEADLK;
    case ETIMEDOUT: return FB_ETIMEDOUT;
    case ECANCELED: return FB_ECANCELED;
    case EPIPE: return FB_EPIPE;
    case EAGAIN: return FB_EAGAIN;
    case EBUSY: return FB_EBUSY;
    case ENOMEM: return FB_ENOMEM;
    }
    return FB_OTHER;
}

#define MAX_REPORTED 12

void fz_violation(fz_world *w, const char *fmt, ...)
{
    uint64_t n = FZ_INC(w->violations);
    if (n >= MAX_REPORTED) {
        if (n == MAX_REPORTED)
            fprintf(stderr, "weft-fuzz: more violations in this seed; counting only\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "weft-fuzz: VIOLATION (seed 0x%016llx): ", (unsigned long long)w->seed);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool fz_ret(fz_world *w, int call, int64_t rc, bool ok, const char *what)
{
    FZ_INC(fz_counts[call][bucket_of(rc)]);
    FZ_INC(w->calls);
    if (!ok) {
        fz_violation(w, "%s returned %lld (%s): expected %s", call_names[call], (long long)rc,
                     rc < 0 ? weft_err_name((int)rc) : "ok", what);
    }
    return ok;
}

/* O4, for a source that someone may have recorded. */
static bool source_possible(fz_world *w, fz_rec *r, weft_cancel_source s, bool via_group)
{
    switch (s) {
    case WEFT_CANCEL_NONE: return true;
    case WEFT_CANCEL_ABORT: return !via_group && FZ_LOAD(r->aborted);
    case WEFT_CANCEL_TOKEN: return r->token_bound;
    case WEFT_CANCEL_GROUP: return r->in_group;
    case WEFT_CANCEL_SHUTDOWN: return fz_shutting(w);
    case WEFT_CANCEL_TIMEOUT: return false;
    }
    return false;
}

static void judge(fz_world *w, fz_rec *r, int status, const weft_outcome *o, const char *how,
                  bool via_group)
{
    const char *src = weft_cancel_source_name(o->cancel.source);
    if (FZ_INC(r->joined) != 0)
        fz_violation(w, "%s: task %u's outcome handed over twice (O6)", how, r->id);
    if (FZ_LOAD(r->drops) != 1)
        fz_violation(w, "%s: task %u's outcome published with %u drops (O1)", how, r->id,
                     FZ_LOAD(r->drops));
    if (status != o->status)
        fz_violation(w, "%s: task %u: result %d but outcome status %d", how, r->id, status,
                     o->status);
    if (o->status == 0) {
        if (!FZ_LOAD(r->returned) || o->value != FZ_LOAD(r->ret_value))
            fz_violation(w, "%s: task %u status 0 value %lld but it returned %s %lld (O2)",
                         how, r->id, (long long)o->value,
                         FZ_LOAD(r->returned) ? "" : "nothing, not even",
                         (long long)FZ_LOAD(r->ret_value));
    } else if (o->status == -ECANCELED) {
        if (FZ_LOAD(r->returned))
            fz_violation(w, "%s: task %u returned yet its status is -ECANCELED (O2)", how,
                         r->id);
        if (o->cancel.source == WEFT_CANCEL_NONE || (!r->cancel_safe && !fz_shutting(w)))
            fz_violation(w, "%s: %s task %u torn down, source %s, shutdown %d (O3)", how,
                         r->cancel_safe ? "cancel-safe" : "cooperative", r->id, src,
                         fz_shutting(w));
    } else {
        fz_violation(w, "%s: task %u: status %d (O2)", how, r->id, o->status);
    }
    if (!source_possible(w, r, o->cancel.source, via_group))
        fz_violation(w, "%s: task %u: source %s (aborted %u, bound %d, group %d) (O4)", how,
                     r->id, src, FZ_LOAD(r->aborted), r->token_bound, r->in_group);
    if (FZ_LOAD(r->aborted) && o->cancel.source == WEFT_CANCEL_NONE)
        fz_violation(w, "%s: task %u: an abort answered 0 but no source (O5)", how, r->id);
    if (FZ_LOAD(r->saw_cancel) && (o->cancel.source == WEFT_CANCEL_NONE
                                   || (o->status == 0 && !o->cancel.delivered_at)))
        fz_violation(w, "%s: task %u saw -ECANCELED; source %s, site %p (O5)", how, r->id, src,
                     (const void *)o->cancel.delivered_at);
}

void fz_check_outcome(fz_world *w, fz_rec *r, int status, const weft_outcome *o, const char *how)
{
    judge(w, r, status, o, how, false);
}

void fz_check_group_outcome(fz_world *w, const weft_outcome *o)
{
    if (o->status == 0) {
        uint64_t id = (uint64_t)o->value >> 8;
        fz_rec *r = id < FZ_LOAD(w->nrecs) ? &w->recs[id] : NULL;
        if (!r || !r->in_group) {
            fz_violation(w, "group_join_next: value %lld names no group child",
                         (long long)o->value);
            return;
        }
        judge(w, r, 0, o, "group_join_next", true);
        return;
    }
    /* A torn-down child left no value to find it by: only O3/O4 in general. */
    weft_cancel_source s = o->cancel.source;
    if (o->status != -ECANCELED || !(s == WEFT_CANCEL_GROUP || s == WEFT_CANCEL_TOKEN
                                     || (s == WEFT_CANCEL_SHUTDOWN && fz_shutting(w))))
        fz_violation(w, "group_join_next: status %d source %s", o->status,
                     weft_cancel_source_name(s));
}
