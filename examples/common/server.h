/*
 * examples/common/server.h - what weft's example servers (weft-echo,
 * weft-http) do alike around their tasks: read numeric options, size the
 * open-file limit, count open fds, stop on SIGINT or SIGTERM, start the
 * runtime, join a task from main, and sort accept(2) errors. Each example's
 * own files keep what differs (its tasks, its options, its summary).
 *
 * Every function that can fail says why on stderr, prefixed with the
 * program's name (prog, such as "weft-echo"), and returns a negative errno.
 *
 * Signals: example_open_signals is the one list of the signals the servers
 * handle (SIGINT and SIGTERM stop them, SIGUSR1 prints the task dump and the
 * runtime's metrics to stderr), and the signal-watch task below the one
 * place that waits for them. A new signal is added to both.
 */
#ifndef WEFT_EXAMPLES_COMMON_SERVER_H
#define WEFT_EXAMPLES_COMMON_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>

#include <weft/signal.h>
#include <weft/weft.h>

/* ---- options and the fd budget ------------------------------------------------ */

/* Parse a decimal in [min, max] into *out; false if text is not one. */
bool example_parse_unsigned(const char *text, unsigned min, unsigned max, unsigned *out);

/* Raise the soft open-file limit to fds_per_conn per connection, plus room
 * for the listener, the rings and stdio, if it is lower. Not fatal: an
 * acceptor backs off when accept runs out of fds. */
void example_fit_fd_limit(const char *prog, unsigned max_conns, unsigned fds_per_conn);

/* Open fds of this process (-1 without /proc). Compared at the start and
 * the end of main, it shows that every socket, file, ring and helper fd the
 * server opened was closed again. */
int example_count_open_fds(void);

/* ---- signals ------------------------------------------------------------------ */

/* Block SIGINT, SIGTERM and SIGUSR1 in the calling thread and open *sig for them.
 * Call it before the runtime starts, so that every worker inherits the mask
 * and the signals arrive only through weft_signal_wait. */
int example_open_signals(weft_signal *sig);

/* The frame of the signal-watch task: fill the first four fields. */
struct example_signal_watch {
    weft_frame f;
    const char *prog;
    weft_signal *sig;           /* open until the task is joined */
    weft_token *token;          /* cancelled by a signal; the task is bound to it */
    atomic_int *signo;          /* set to the signal that came */
    weft_poll r;
};

/* Describe the signal-watch task for *w, bound to w->token and named
 * "signal-watch": on SIGUSR1 it prints the task dump and the metrics and
 * waits on; on SIGINT or SIGTERM it stores the signal in *w->signo and
 * cancels w->token. When the token is cancelled first it
 * returns -ECANCELED; a failed wait is said and cancels the token too. */
void example_signal_watch_task(struct example_signal_watch *w, weft_task_desc *desc);

/* ---- the runtime and tasks ---------------------------------------------------- */

/* Start a runtime with the WEFT_* environment's options (weft_runtime_opts_
 * from_env); threads, when not 0, wins over WEFT_WORKERS. */
int example_runtime_new(const char *prog, unsigned threads, weft_runtime **rt);

/* Wait from main's thread for the task behind h (what names it in a
 * message). Returns its result, 0 for -ECANCELED (a stopped task ended as
 * asked), or the error that ended it. */
int example_join(const char *prog, weft_join *h, const char *what);

/* ---- accept errors ------------------------------------------------------------ */

enum example_accept_next {
    EXAMPLE_ACCEPT_RETRY,       /* it concerned one connection: accept the next */
    EXAMPLE_ACCEPT_PAUSE,       /* out of fds or memory: wait, let some close */
    EXAMPLE_ACCEPT_GIVE_UP,     /* the listener is unusable: stop the server */
};

/* What an acceptor does after accept(2) failed with err (not -ECANCELED);
 * a pause and a give-up are said on stderr. */
enum example_accept_next example_accept_failed(const char *prog, weft_poll err);

#endif /* WEFT_EXAMPLES_COMMON_SERVER_H */
