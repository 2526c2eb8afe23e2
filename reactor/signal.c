/*
 * reactor/signal.c - weft_signal (weft/signal.h): waiting for a signal is
 * one read of a signalfd record into the weft_signal, a weft_read.
 *
 * Invariants:
 *   1. The signalfd is blocking, like every fd weft reads: io_uring waits for
 *      a record itself, and a read never returns half of one.
 *   2. A read that completed consumed its signal; so the cancel hook, at a
 *      tear-down (the result will never be looked at), raises that signal
 *      again for the process instead of dropping it.
 */
#include <errno.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "reactor/op.h"
#include "weft/signal.h"

_Static_assert(sizeof(struct signalfd_siginfo) == sizeof(((weft_signal *)0)->weft_info),
               "weft_signal holds one signalfd record");

/* SIGKILL and SIGSTOP can be neither blocked nor read from a signalfd. */
static bool blockable(const sigset_t *set)
{
    return sigismember(set, SIGKILL) != 1 && sigismember(set, SIGSTOP) != 1;
}

int weft_signal_block(const sigset_t *set)
{
    if (!set || !blockable(set))
        return -EINVAL;
    return -pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* Every signal of set is blocked in the calling thread, and there is one. */
static bool blocked_here(const sigset_t *set)
{
    sigset_t cur;
    if (pthread_sigmask(SIG_BLOCK, NULL, &cur) != 0)
        return false;
    bool any = false;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sigismember(set, sig) != 1)
            continue;
        if (sigismember(&cur, sig) != 1)
            return false;
        any = true;
    }
    return any;
}

int weft_signal_open(weft_signal *s, const sigset_t *set)
{
    if (!s || !set || s->weft_fd1 || !blockable(set) || !blocked_here(set))
        return -EINVAL;
    int fd = signalfd(-1, set, SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    *s = (weft_signal)WEFT_SIGNAL_INIT;
    s->weft_fd1 = fd + 1;
    return 0;
}

static weft_withdraw signal_withdraw(weft_cx *cx, void *leaf)
{
    weft_signal *s = leaf;
    weft__io *io = weft__io_of(&s->weft_op);
    bool done = atomic_load_explicit(&io->state, memory_order_acquire) == WEFT__IO_DONE;
    if (done && weft_cx_is_teardown(cx) && io->result == (int64_t)sizeof s->weft_info) {
        struct signalfd_siginfo info;
        memcpy(&info, s->weft_info, sizeof info);
        kill(getpid(), (int)info.ssi_signo);    /* rule 2 */
    }
    return weft__io_withdraw(cx, &s->weft_op);
}

weft_poll weft_signal_wait(weft_cx *cx, weft_signal *s)
{
    if (!cx || !s || !s->weft_fd1)
        return -EINVAL;
    weft_poll r = weft_read(cx, &s->weft_op, s->weft_fd1 - 1, s->weft_info,
                            sizeof s->weft_info, -1);
    if (r == WEFT_PENDING) {
        weft_cx_suspend(cx, s, signal_withdraw);    /* same address as the io */
        return WEFT_PENDING;
    }
    if (r < 0)
        return r;
    if (r != (weft_poll)sizeof s->weft_info)
        return -EIO;                /* rule 1: never happens */
    struct signalfd_siginfo info;
    memcpy(&info, s->weft_info, sizeof info);
    return (weft_poll)info.ssi_signo;
}

int weft_signal_close(weft_signal *s)
{
    if (!s || !s->weft_fd1)
        return -EINVAL;
    uint32_t state = atomic_load_explicit(&weft__io_of(&s->weft_op)->state,
                                          memory_order_acquire);
    if (state == WEFT__IO_INFLIGHT || state == WEFT__IO_HANDOFF)
        return -EBUSY;
    close(s->weft_fd1 - 1);
    *s = (weft_signal)WEFT_SIGNAL_INIT;
    return 0;
}
