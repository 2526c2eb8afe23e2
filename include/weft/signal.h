/*
 * weft/signal.h - POSIX signals as awaitables, over signalfd(2). Not part
 * of weft/weft.h (sigset_t is POSIX, not C11): include it by name.
 *
 * The rule: a signal is read from a signalfd only while it is blocked in
 * every thread of the process; a thread that has it unblocked takes it the
 * old way (handler, or the default action: often the end of the process).
 * Threads inherit the mask of the thread that creates them, so block the
 * signals first, in main, before weft_runtime_new starts the workers (and
 * before any other thread is created):
 *
 *     sigset_t set;
 *     sigemptyset(&set);
 *     sigaddset(&set, SIGINT);
 *     sigaddset(&set, SIGTERM);
 *     weft_signal_block(&set);            // 1. before the runtime
 *     weft_runtime_new(&rt, &opts);       // 2. workers inherit the mask
 *     weft_signal_open(&sig, &set);       // 3. anywhere, before waiting
 *     ... in a task:
 *     WEFT_AWAIT(&t->f, t->signo, weft_signal_wait(cx, &t->sig));
 *
 * weft_signal_open checks the calling thread's mask and refuses (-EINVAL)
 * a signal that is not blocked there, which catches the usual mistake
 * (blocking after the workers started) when it is called from a task.
 *
 * Cancellation contract: a withdrawn wait consumes no signal. If the signal
 * was read just before the withdrawal, the wait yields it (the cancellation
 * is delivered at the task's next await); if a cancel-safe task is torn down
 * just as a signal was read, weft raises it again for the process, so it is
 * pending for the next wait rather than lost. Standard signals that arrive
 * while one of the same kind is pending are merged into one, as always.
 */
#ifndef WEFT_SIGNAL_H
#define WEFT_SIGNAL_H

#include <signal.h>
#include <stdint.h>

#include "weft/io.h"
#include "weft/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A signalfd and the record being read from it. Start zeroed
 * (WEFT_SIGNAL_INIT: closed); all fields private. */
typedef struct weft_signal {
    weft_io weft_op;                /* first: it is the leaf the task suspends on */
    uint64_t weft_info[16];         /* a struct signalfd_siginfo (128 bytes) */
    int weft_fd1;                   /* the signalfd + 1; 0: closed */
    uint32_t weft_reserved;
} weft_signal;

#define WEFT_SIGNAL_INIT { WEFT_IO_INIT, { 0 }, 0, 0 }

/* Block the signals of set in the calling thread (added to its mask). Call
 * it before weft_runtime_new. -EINVAL for NULL, or a set with SIGKILL or
 * SIGSTOP (which cannot be blocked). */
WEFT_EXTERN int weft_signal_block(const sigset_t *set);

/* Open s for the signals of set, which must be blocked in the calling thread
 * (-EINVAL otherwise, and for NULL, an empty set, SIGKILL or SIGSTOP, or an s
 * already open). -EMFILE, -ENOMEM... as signalfd(2). Synchronous; any thread. */
WEFT_EXTERN int weft_signal_open(weft_signal *s, const sigset_t *set);

/* Await the next of s's signals: yields its number (> 0). -EINVAL for NULL
 * or a closed s. Cancellation: see above. */
WEFT_EXTERN weft_poll weft_signal_wait(weft_cx *cx, weft_signal *s);

/* Close s's signalfd (the signals stay blocked). -EINVAL for NULL or a
 * closed s, -EBUSY while a wait is in flight. Synchronous. */
WEFT_EXTERN int weft_signal_close(weft_signal *s);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SIGNAL_H */
