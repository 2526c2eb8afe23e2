/*
 * tools/weft-fuzz/ftask.h - the frame every fuzz task runs in, shared by the
 * interpreter (tasks.c) and the code that spawns tasks and ends them
 * (spawn.c).
 *
 * Rule 4 of weft/task.h holds throughout: every random choice an await
 * depends on is made into the frame before the await (prepare, in tasks.c),
 * never inside the awaited expression, which is evaluated at every poll.
 */
#ifndef WEFT_FUZZ_FTASK_H
#define WEFT_FUZZ_FTASK_H

#include "fuzz.h"

enum t_op {
    T_SYNC, T_YIELD, T_SLEEP, T_SHIELDED_SLEEP, T_JOIN, T_JOIN_TIMEOUT, T_TOKEN_WAIT,
    T_OS_RECV, T_SEND, T_RECV, T_TRY_RECV, T_RX_CLOSE, T_SELECT, T_PENDING, T_G_NEXT,
    T_G_ALL, T_G_ALL_SCOPED, T_G_SHUTDOWN, T_G_SPAWN, T_WORKER_MISUSE, T_RETURN, T_OP_COUNT
};

/* What branch 0 of a select waits for; branch 1 is always a sleep. */
enum { SEL_TOKEN, SEL_ONESHOT, SEL_JOIN, SEL_RECV };

typedef struct fz_task {
    weft_frame f;
    fz_actor a;
    uint8_t role;
    bool had;                       /* the handle or rx was full at the call */
    bool awaiting;                  /* an await of op is in flight */
    uint32_t ops_left, op, sub, si, ci, group, chan;
    weft_poll rc;
    int64_t ret;
    uint64_t ns, start, val;
    weft_sleep sleep;
    weft_token *wtok;
    weft_token_wait tw;
    weft_join_timeout jt;
    weft_selector sel;
    weft_outcome out;
    weft_mpsc_send_op sop;
    weft_mpsc_rx rx;                /* consumer */
} fz_task;

/* The poll function and drop hook of every fuzz task. */
weft_poll fz_task_poll(weft_cx *cx, void *p);
void fz_task_drop(void *p);
/* Count a value a recv (chan) or oneshot recv (!chan) took, when rc is 0. */
void fz_count_received(fz_task *t, int64_t rc, uint64_t v, bool chan);

#endif /* WEFT_FUZZ_FTASK_H */
