/*
 * reactor/op.h - I/O operations in flight: the leaf in the task's frame
 * (weft__io, the private face of weft_io), the record the worker's ring keeps
 * for it (weft__op), and the table of operation kinds.
 *
 * An operation is submitted on the ring of the worker that first polls it (its
 * owner). The record lives in the owner's slab and is named by the SQE's
 * user_data: kind tag, generation and slot. A CQE whose generation does not
 * match its slot is stale and ignored, so a late or extra CQE can never wake
 * the wrong task (tokio#8112). The record is freed only at its final CQE.
 *
 * Leaf states (weft__io.state, atomic):
 *
 *   IDLE ──first poll──▶ INFLIGHT ──owner reaps the CQE──▶ DONE ──poll──▶ IDLE
 *                           │                               ▲
 *                           └─withdrawn off the owner──▶ HANDOFF
 *                                   (owner takes it up, cancels, then reaps)
 *
 * Who touches what:
 *   1. Only the owner touches a record, its ring, its overflow queues and its
 *      deadline timer; once workers have stopped, the shutdown thread does.
 *   2. INFLIGHT -> DONE (owner) and INFLIGHT -> HANDOFF (another thread's
 *      withdrawal) are CASes: exactly one wins. HANDOFF -> DONE is the owner's,
 *      and happens only after it has taken the hand-off off its stack, so the
 *      leaf's `next` link is free before the task can reuse the leaf.
 *   3. The owner writes `result` before publishing DONE (release); the task
 *      reads it after seeing DONE (acquire).
 *   4. The waker taken at submission is consumed once, by the owner at DONE,
 *      or dropped when a withdrawal on the owner unqueues an op that never
 *      reached the kernel.
 *   5. A task whose leaf is INFLIGHT or HANDOFF is never freed: withdrawal
 *      answers WEFT_WITHDRAW_PENDING until the kernel has finished with every
 *      pointer the operation holds into the frame.
 *   6. A release (an op whose definition is not `withdrawable`: close) is
 *      never withdrawn, not even off the overflow queue, and a deadline never
 *      applies to it: once started it happens, and its own CQE ends it.
 *   7. A multishot (a definition with a `more` hook: accept_each) keeps its
 *      record and its leaf INFLIGHT across every CQE flagged F_MORE; the
 *      owner runs the hook for each, and only the CQE without F_MORE
 *      completes it. So rules 2-5 hold unchanged for the final CQE, and the
 *      frame the hook writes to is pinned until then.
 */
#ifndef WEFT_REACTOR_OP_H
#define WEFT_REACTOR_OP_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "reactor/handoff.h"
#include "reactor/wheel.h"
#include "weft/io.h"

struct weft__driver;

enum weft__io_state { WEFT__IO_IDLE, WEFT__IO_INFLIGHT, WEFT__IO_HANDOFF, WEFT__IO_DONE };

typedef struct weft__io {
    _Atomic uint32_t state;
    uint32_t owner;             /* worker whose ring holds the record */
    uint64_t ud;                /* the record's user_data */
    int64_t result;
    uint64_t deadline_ns;       /* 0: none */
    weft__handoff handoff;      /* to the owner's driver (rule 2) */
    weft_waker waker;
    uint8_t kind;               /* enum weft__op_kind of the last operation */
    bool deadline_relative;     /* deadline_ns counts from the first poll */
} weft__io;

_Static_assert(sizeof(weft__io) <= sizeof(weft_io), "weft_io must hold a weft__io");
_Static_assert(_Alignof(weft__io) <= _Alignof(weft_io), "weft_io alignment");

static inline weft__io *weft__io_of(weft_io *io) { return (weft__io *)(void *)io; }

/* ---- Operation kinds ---------------------------------------------------------- */

enum weft__op_kind {
    WEFT__OP_SOCKET,
    WEFT__OP_ACCEPT,
    WEFT__OP_CONNECT,
    WEFT__OP_RECV,
    WEFT__OP_SEND,
    WEFT__OP_SENDMSG,
    WEFT__OP_RECVMSG,
    WEFT__OP_SHUTDOWN,
    WEFT__OP_OPENAT,
    WEFT__OP_READ,
    WEFT__OP_WRITE,
    WEFT__OP_READV,
    WEFT__OP_WRITEV,
    WEFT__OP_FSYNC,
    WEFT__OP_STATX,
    WEFT__OP_CLOSE,
    WEFT__OP_SPLICE,
    WEFT__OP_ACCEPT_MULTI,
    WEFT__OP_COUNT
};

struct weft__op;

typedef struct weft__op_def {
    const char *name;
    uint8_t opcode;             /* IORING_OP_* */
    bool yields_fd;             /* a result >= 0 is an fd to close if unwanted */
    bool withdrawable;          /* false: run to completion (close) */
    /* Owner, at the final CQE, before the result is published. */
    void (*complete)(struct weft__op *op, int32_t *res);
    /* Owner, at each CQE that says more will follow (a multishot). */
    void (*more)(struct weft__op *op, int32_t res);
} weft__op_def;

extern const weft__op_def weft__op_defs[];  /* WEFT__OP_COUNT entries */

/* ---- Records ---------------------------------------------------------------------- */

/* SIM: the simulator holds it instead of the ring (runtime/sim_io.c): it
 * completes it itself, and a withdrawal only sets cancel_sent. */
enum weft__op_where { WEFT__OP_FREE, WEFT__OP_QUEUED, WEFT__OP_IN_RING, WEFT__OP_SIM };

typedef struct weft__op {
    weft__io *leaf;
    struct weft__op *next, *prev;   /* free list, or the overflow queue */
    struct weft__op *cancel_next;   /* the cancel overflow queue */
    uint32_t slot;
    uint32_t gen;
    uint8_t kind;
    uint8_t where;                  /* enum weft__op_where */
    bool cancel_sent;               /* ASYNC_CANCEL pushed or queued */
    bool timed_out;                 /* its deadline withdrew it */
    bool handoff_taken;             /* the owner has taken up a HANDOFF */
    bool completed;                 /* final CQE seen while a HANDOFF waited */
    weft__timer deadline;
    union {
        struct {
            struct msghdr msg;
            struct iovec iov;
            socklen_t *addrlen;     /* recvfrom: where the name length goes */
        } msg;
        struct {
            void (*fn)(void *arg, int fd);
            void *arg;
            uint64_t *accepted;     /* in the frame, alive while the record is */
        } each;
    } u;
    struct io_uring_sqe sqe;        /* prepared here, copied into the SQ */
} weft__op;

/* user_data: kind tag in the top byte, then 24 bits of generation, then slot. */
enum { WEFT__UD_WAKE = 1, WEFT__UD_CANCEL = 2, WEFT__UD_OP = 3 };
#define WEFT__UD_TAG_SHIFT 56
#define WEFT__UD_GEN_MASK 0xffffffu

static inline uint64_t weft__ud_make(unsigned tag, uint32_t gen, uint32_t slot)
{
    return ((uint64_t)tag << WEFT__UD_TAG_SHIFT)
         | ((uint64_t)(gen & WEFT__UD_GEN_MASK) << 32) | slot;
}

static inline unsigned weft__ud_tag(uint64_t ud) { return (unsigned)(ud >> WEFT__UD_TAG_SHIFT); }
static inline uint32_t weft__ud_gen(uint64_t ud) { return (uint32_t)(ud >> 32) & WEFT__UD_GEN_MASK; }
static inline uint32_t weft__ud_slot(uint64_t ud) { return (uint32_t)ud; }

/* ---- The per-worker table (op_table.c) ---------------------------------------- */

typedef struct weft__op_table {
    weft__op **chunks;
    uint32_t nchunks;
    weft__op *free;
    uint32_t live;                      /* records in use */
    weft__op *queued_head, *queued_tail;    /* waiting for room in the SQ */
    weft__op *cancel_head, *cancel_tail;    /* cancels waiting for room */
    uint64_t stale_cqes;                /* CQEs that matched no live record */
} weft__op_table;

/* NULL when memory is short. */
weft__op *weft__op_alloc(weft__op_table *t, weft__io *leaf, unsigned kind);
void weft__op_free(weft__op_table *t, weft__op *op);
/* The live record ud names, or NULL if it is stale. */
weft__op *weft__op_lookup(weft__op_table *t, uint64_t ud);
static inline uint64_t weft__op_ud(const weft__op *op)
{
    return weft__ud_make(WEFT__UD_OP, op->gen, op->slot);
}
/* Visit every live record (drain). */
void weft__op_for_each_live(weft__op_table *t, void (*fn)(weft__op *op, void *arg), void *arg);
void weft__op_table_destroy(weft__op_table *t);

/* ---- Submission and completion (submit.c), owner only ------------------------- */

/* Put the record's SQE in the SQ, or queue it while the SQ is full. */
void weft__submit_op(struct weft__driver *d, weft__op *op);
/* Ask the kernel to cancel a record that is in the SQ or beyond. */
void weft__submit_cancel(struct weft__driver *d, weft__op *op);
/* Take a queued record off the overflow queue (it never reached the kernel). */
void weft__unqueue_op(struct weft__driver *d, weft__op *op);
/* Take a completed record off the cancel queue, if it is there. */
void weft__forget_cancel(struct weft__driver *d, weft__op *op);
/* Move queued SQEs into the SQ and enter the kernel; EBUSY/EAGAIN: reap, retry. */
void weft__submit_flush(struct weft__driver *d);
/* Move queued SQEs into the SQ only (the caller's next enter submits them). */
void weft__submit_fill(struct weft__driver *d);
/* Records or cancels waiting on the overflow queues for room in the SQ? */
bool weft__submit_backlog(struct weft__driver *d);
/* Anything waiting to go out (SQ entries or overflow)? */
bool weft__submit_pending(struct weft__driver *d);
/* Process the completions that are ready, entering the kernel for deferred
 * task work when the ring asks for it. Returns how many were handled. */
unsigned weft__reap(struct weft__driver *d);
/* Cheap per-tick check: completions (or deferred work) waiting? */
bool weft__reap_wanted(struct weft__driver *d);
/* Tests: on each worker, every n-th SQE request finds the SQ full even after
 * an enter (the record is queued), every n-th enter fails with -EBUSY or
 * -EAGAIN in turn (0 turns either off; n >= 2). The periods are
 * process-wide. */
void weft__io_inject_faults(unsigned sq_full_every, unsigned busy_every);
/* Tests: on each worker, every n-th recv, send, read or write asks for half
 * its length (a real short transfer), every n-th recv or send fails with
 * -ECONNRESET before reaching the kernel (0 turns either off). */
void weft__io_inject_transfer_faults(unsigned short_every, unsigned reset_every);

/* ---- The leaf side (op.c) ------------------------------------------------------ */

/* Owner: the final CQE of a record. */
void weft__op_complete(struct weft__driver *d, weft__op *op, int32_t res);
/* Owner: a record's deadline fired (called from the timer driver). */
void weft__op_deadline_fired(struct weft__driver *d, weft__timer *t);

/* The start of every operation: returns WEFT__IO_START with *op set when the
 * leaf is idle and a record was allocated (fill op->sqe, then call
 * weft__io_start); otherwise the value the operation's poll must return. */
#define WEFT__IO_START (INT64_MIN + 1)
weft_poll weft__io_begin(weft_cx *cx, weft_io *io, unsigned kind, weft__op **op);
weft_poll weft__io_start(weft_cx *cx, weft_io *io, weft__op *op);
/* The cancel hook of every operation. A compound leaf whose first member is
 * its weft_io (reader.c, writer.c, signal.c, dial.c) suspends under its own
 * hook at the same leaf address and calls this one from it. */
weft_withdraw weft__io_withdraw(weft_cx *cx, void *leaf);
/* The deadline set on an idle leaf as an instant (0: none), for a transfer
 * that applies it to each of its operations (xfer.c, sendfile.c). */
uint64_t weft__io_deadline_instant(const weft__io *s);

#endif /* WEFT_REACTOR_OP_H */
