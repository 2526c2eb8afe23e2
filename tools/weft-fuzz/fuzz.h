/*
 * tools/weft-fuzz/fuzz.h - what weft-fuzz's files share: the world of one
 * seed, the record kept for every task, the actors that make calls, and the
 * checking vocabulary (fz_ret, fz_violation, outcome checks).
 *
 * Ownership, which keeps the fuzzer itself free of data races (it runs under
 * TSan too):
 *   1. A join handle, a oneshot end, an mpsc sender clone and an actor's own
 *      token belong to exactly one actor (a plain thread, or a task's frame).
 *      They move only at spawn, parent to child, as weft's "use one copy"
 *      rule asks; a spawn that fails moves nothing.
 *   2. An fz_rec is written by its task (returned, ret_value, saw_cancel),
 *      by the owner of its handle (aborted, joined) and by its drop hook
 *      (drops), always through atomics; its plan fields (role, flags,
 *      finite, ...) are written before the spawn and never after.
 *   3. The world's channel originals, tokens and groups belong to the main
 *      thread; actors only clone or reference them while it keeps them.
 *   4. A task that is not "finite" may wait for something that only a
 *      cancellation or the runtime's shutdown ends (a token, a channel,
 *      weft_pending); plain threads block without a limit (join_wait,
 *      recv_blocking) only on finite tasks, so a seed ends on its own.
 */
#ifndef WEFT_FUZZ_H
#define WEFT_FUZZ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <weft/weft.h>

#define FZ_MAX_RECS 384
#define FZ_SLOTS 4
#define FZ_MAX_CHANS 3
#define FZ_MAX_TOKENS 3
#define FZ_MAX_GROUPS 2
#define FZ_MAX_THREADS 8
#define FZ_MAX_DEPTH 3

/* ---- calls and their results -------------------------------------------- */

enum fz_call {
    FC_RT_NEW, FC_RT_SHUTDOWN, FC_RT_FREE, FC_SPAWN, FC_SPAWN_DETACHED, FC_BLOCK_ON,
    FC_ABORT, FC_DETACH, FC_IS_FINISHED, FC_JOIN_AWAIT, FC_JOIN_AWAIT_TIMEOUT,
    FC_JOIN_WAIT, FC_JOIN_WAIT_TIMEOUT, FC_YIELD, FC_SLEEP, FC_PENDING, FC_SELECT,
    FC_TOKEN_NEW, FC_TOKEN_CHILD, FC_TOKEN_CANCEL, FC_TOKEN_WAIT,
    FC_MPSC_NEW, FC_MPSC_CLONE, FC_MPSC_TX_DROP, FC_MPSC_TRY_SEND, FC_MPSC_SEND,
    FC_MPSC_SEND_BLOCKING, FC_MPSC_TRY_RESERVE, FC_MPSC_PERMIT, FC_MPSC_UNBOUNDED_SEND,
    FC_MPSC_RECV, FC_MPSC_TRY_RECV, FC_MPSC_RX_CLOSE, FC_MPSC_RX_DROP,
    FC_ONESHOT_NEW, FC_ONESHOT_SEND, FC_ONESHOT_TX_DROP, FC_ONESHOT_RECV,
    FC_ONESHOT_TRY_RECV, FC_ONESHOT_RECV_BLOCKING, FC_ONESHOT_RX_CLOSE, FC_ONESHOT_RX_DROP,
    FC_GROUP_NEW, FC_GROUP_SPAWN, FC_GROUP_JOIN_NEXT, FC_GROUP_JOIN_ALL, FC_GROUP_SHUTDOWN,
    FC_GROUP_CANCEL, FC_GROUP_LEN, FC_GROUP_FREE,
    FC_COUNT
};

/* Result buckets for the summary: 0, positive, and the errnos weft documents. */
enum fz_bucket {
    FB_ZERO, FB_POS, FB_EINVAL, FB_ESHUTDOWN, FB_EDEADLK, FB_ETIMEDOUT, FB_ECANCELED,
    FB_EPIPE, FB_EAGAIN, FB_EBUSY, FB_ENOMEM, FB_OTHER, FB_COUNT
};

extern _Atomic uint64_t fz_counts[FC_COUNT][FB_COUNT];
extern bool fz_verbose;

/* ---- records, actors, the world ------------------------------------------- */

enum fz_role { ROLE_GENERIC, ROLE_CONSUMER, ROLE_KEEPER };

typedef struct fz_rec {
    uint32_t id;
    uint8_t role;
    bool cancel_safe, shielded, finite, in_group, token_bound;
    _Atomic uint32_t spawned;       /* the spawn returned 0 */
    _Atomic uint32_t drops;
    _Atomic uint32_t returned;      /* the task returned by itself ... */
    _Atomic int64_t ret_value;      /* ... this value */
    _Atomic uint32_t saw_cancel;    /* an await yielded its own -ECANCELED */
    _Atomic uint32_t aborted;       /* a weft_abort answered 0 */
    _Atomic uint32_t joined;        /* outcomes handed over (at most 1) */
    _Atomic uint32_t last_op;       /* for the hang report */
} fz_rec;

typedef struct fz_slot {
    weft_join h;
    fz_rec *rec;
} fz_slot;

struct fz_world;

/* Whoever makes calls: a plain thread, or a task (whose frame holds this). */
typedef struct fz_actor {
    struct fz_world *w;
    fz_rec *self;                   /* NULL on a plain thread */
    uint64_t rng;
    uint32_t depth;
    uint32_t seq;                   /* message numbers */
    fz_slot slot[FZ_SLOTS];
    weft_mpsc_tx tx[FZ_MAX_CHANS];              /* bounded channels */
    weft_mpsc_unbounded_tx utx[FZ_MAX_CHANS];   /* unbounded channels */
    weft_oneshot_rx orx;            /* waits for a child's value ... */
    fz_rec *orx_peer;               /* ... from this child */
    weft_oneshot_tx otx;            /* the parent's oneshot, to answer */
    weft_token *tok;                /* a child token of our own */
} fz_actor;

typedef struct fz_chan {
    bool bounded;
    weft_mpsc_tx tx;                /* the main thread's originals */
    weft_mpsc_unbounded_tx utx;
    _Atomic uint64_t sent, received, discarded;
    _Atomic uint64_t maybe_sent;    /* sends whose task was torn down mid-await */
} fz_chan;

typedef struct fz_world {
    uint64_t seed;
    weft_runtime *rt;
    unsigned workers, nthreads;
    _Atomic bool shutdown_started;  /* set before any weft_runtime_shutdown */
    _Atomic bool shutdown_done;     /* a shutdown returned: spawns must fail */
    _Atomic uint64_t violations;
    _Atomic uint64_t calls;
    fz_rec recs[FZ_MAX_RECS];
    _Atomic uint32_t nrecs;
    weft_token *tokens[FZ_MAX_TOKENS];
    unsigned ntokens;
    fz_chan chans[FZ_MAX_CHANS];
    unsigned nchans;
    weft_group *groups[FZ_MAX_GROUPS];
    _Atomic bool group_closed[FZ_MAX_GROUPS];
    unsigned ngroups;
    fz_slot roots[FZ_MAX_CHANS + FZ_MAX_GROUPS];    /* consumers and keepers */
    unsigned nroots;
    _Atomic uint64_t os_sent, os_received, os_discarded;   /* oneshots */
    _Atomic uint64_t bad_drops;     /* drop hooks of spawns that had to fail */
    fz_actor threads[FZ_MAX_THREADS];
    _Atomic uint32_t thread_op[FZ_MAX_THREADS];
    _Alignas(8) _Atomic uint32_t threads_done;
} fz_world;

/* ---- randomness ----------------------------------------------------------- */

static inline uint64_t fz_rng(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint32_t fz_below(uint64_t *s, uint32_t n)
{
    return n ? (uint32_t)(fz_rng(s) % n) : 0;
}

static inline bool fz_one_in(uint64_t *s, uint32_t n)
{
    return fz_below(s, n) == 0;
}

/* A wait: none, under a wheel tick, a few ticks, or many (up to 5 ms). */
static inline uint64_t fz_duration(uint64_t *s)
{
    static const uint32_t ceiling[4] = { 1, 100000, 1000000, 5000000 };
    return fz_below(s, ceiling[fz_below(s, 4)]);
}

#define FZ_LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
#define FZ_STORE(x, v) atomic_store_explicit(&(x), (v), memory_order_relaxed)
#define FZ_INC(x) atomic_fetch_add_explicit(&(x), 1, memory_order_relaxed)
#define FZ_ADD(x, n) atomic_fetch_add_explicit(&(x), (n), memory_order_relaxed)

/* ---- check.c: results, violations, outcomes -------------------------------- */

/* Count rc for call; when !ok report a violation naming `what`. Returns ok. */
bool fz_ret(fz_world *w, int call, int64_t rc, bool ok, const char *what);
#define FZ_EXPECT(w, call, rc, cond) fz_ret((w), (call), (rc), (cond), #cond)

void fz_violation(fz_world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline bool fz_shutting(fz_world *w)
{
    return atomic_load_explicit(&w->shutdown_started, memory_order_seq_cst);
}

/* The outcome of rec's task, handed to us by a join (status as returned). */
void fz_check_outcome(fz_world *w, fz_rec *r, int status, const weft_outcome *o,
                      const char *how);
/* An outcome from weft_group_join_next (the child is found by its value). */
void fz_check_group_outcome(fz_world *w, const weft_outcome *o);
const char *fz_call_name(int call);
const char *fz_bucket_name(int bucket);

/* ---- actor.c: what threads and tasks both do ----------------------------- */

fz_rec *fz_rec_new(fz_world *w);
/* One call that never waits (spawn, abort, detach, tokens, sends, misuse). */
void fz_actor_sync_op(fz_actor *a);
/* Give back what the actor owns: channel ends and its token, and with
 * `handles` its join handles too (detached). */
void fz_actor_release(fz_actor *a, bool handles);
/* A free slot, or -1. */
int fz_actor_free_slot(fz_actor *a);
/* A slot holding a handle (or, one time in `stale`, any slot), or -1. */
int fz_actor_pick_slot(fz_actor *a, uint32_t stale);
/* Check the answer of a join on slot s (which may have been empty: stale),
 * then forget the slot's task if the join consumed or gave up the handle.
 * Returns true when rc is the waiting task's own -ECANCELED. */
bool fz_after_join(fz_actor *a, int s, int64_t rc, const weft_outcome *o, int call,
                   bool may_cancel);
/* A value for channel c, tagged with it. */
uint64_t fz_msg(fz_actor *a, unsigned c);

/* A valid task whose drop hook counts w->bad_drops: for calls that must
 * refuse it. */
struct bad_frame {
    weft_frame f;
    fz_world *w;
};
weft_task_desc fz_bad_desc(fz_world *w, struct bad_frame *frame);

/* ---- spawn.c: starting tasks (their poll function is in tasks.c) ----------- */

enum fz_spawn_mode { SPAWN_HANDLE, SPAWN_DETACHED, SPAWN_GROUP, SPAWN_BLOCK_ON };
/* Spawn a generic child from actor a (into slot si for SPAWN_HANDLE); it may
 * take one of a's handles and the sender of a new oneshot with it. */
void fz_spawn_child(fz_actor *a, enum fz_spawn_mode mode, int si, bool finite);
/* The world's consumer of channel c (taking rx) and keeper of group g. */
void fz_spawn_consumer(fz_world *w, unsigned c, weft_mpsc_rx *rx, uint64_t rng);
void fz_spawn_keeper(fz_world *w, unsigned g, uint64_t rng);

/* ---- threads.c ---------------------------------------------------------------- */

void *fz_thread_main(void *arg);

/* ---- world.c ------------------------------------------------------------------ */

typedef struct fz_opts {
    unsigned max_threads;
} fz_opts;

/* Run one seed; returns the violations it found. */
uint64_t fz_run_seed(uint64_t seed, const fz_opts *o, uint64_t *calls);
/* For the watchdog: describe what the running seed's actors were doing. */
void fz_dump_world(void);

#endif /* WEFT_FUZZ_H */
