/*
 * tests/examples/sweep.h - the harness of the examples sweep
 * (test_examples_sweep.c): run a root task under weft_sim_sweep_cancel,
 * cancelled at its 1st, 2nd, ... await until a run completes, once by abort
 * and once by token, and after every run check what every example must
 * keep whatever the k:
 *
 *   - no fd leaked: /proc/self/fd counted before the run's fixtures were made
 *     and after the case's check closed them;
 *   - the root's drop hook ran exactly once (the harness wraps it, and keeps
 *     a copy of the final frame for the case's check: sweep_final_frame);
 *   - in ASan builds, LeakSanitizer finds nothing (asked after each run until
 *     the first leak, so the report names the k that leaked);
 *   - the case's own invariant: its check function.
 *
 * Everything runs on the calling thread (the simulator's workers are
 * simulated), so the harness keeps its state in globals.
 */
#ifndef WEFT_TESTS_EXAMPLES_SWEEP_H
#define WEFT_TESTS_EXAMPLES_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <weft/harness.h>
#include <weft/sim.h>
#include <weft/weft.h>

/* A case's check: 0 when its invariant holds after run k (cancelled is false
 * for the last run, which finished before its k-th await). rc is what
 * weft_sim_run returned; *out is meaningful only when rc == 0. It must close
 * what its reset opened. Report failures with sweep_fail. */
typedef int (*sweep_check_fn)(void *arg, unsigned k, bool cancelled, int rc,
                              const weft_outcome *out);

typedef struct sweep_case {
    const char *program;        /* "README: A first task", "examples/echo", ... */
    const char *task;           /* "parent", "conn handler", ... */
    weft_task_desc root;        /* before the first reset */
    /* Optional: make the run's fixtures before each run; may rewrite *root
     * (the harness then wraps its drop hook again). */
    void (*reset)(void *arg, weft_task_desc *root);
    sweep_check_fn check;       /* optional */
    void *arg;
    unsigned max_k;             /* 0: the simulator's default */
    /* The example's deliberately wrong variant: its checks may fail for k in
     * allow_fail_lo..allow_fail_hi, and must fail at must_fail_k (0: none),
     * for both kinds; the sweep passes when that is all that fails. */
    unsigned allow_fail_lo, allow_fail_hi, must_fail_k;
    /* A bug found in code outside the tests, reported and not yet fixed:
     * cancelled runs may fail (the row says so); the uncancelled one may not. */
    const char *known_bug;
} sweep_case;

/* Sweep the case by abort and by token; print one table row per kind; 0
 * when every check held (or failed exactly where expected). */
int sweep_case_run(const sweep_case *c);

/* Print a line of the table (to stderr and into sweep_report). */
void sweep_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The last sweep_case_run's table rows and failures (also on stderr), for
 * an assertion's message: Criterion's TAP output drops stderr. */
const char *sweep_report(void);

/* True when the last sweep_case_run's known_bug showed (its leaks, if any,
 * are then expected). */
bool sweep_known_bug_seen(void);

/* Print "  <program> / <task> (<kind>) k=<k>: <message>" and return 1. */
int sweep_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The root's frame as its drop hook last saw it (NULL before it ran). */
const void *sweep_final_frame(void);

/* True when fd is open in this process. */
bool sweep_fd_open(int fd);

/* The seed every sweep uses, and the simulator options. */
#define SWEEP_SEED 0x5eedull
#define SWEEP_WORKERS 2

/* A connected loopback TCP pair: *server is the accepted end. 0 or -errno. */
int sweep_tcp_pair(int *client, int *server);

/* A loopback TCP listener on a free port; fd or -errno. */
int sweep_tcp_listener(int backlog);

/* Connect a blocking client to listener's port; fd or -errno. */
int sweep_tcp_connect(int listener);

/* Write all of buf to fd (blocking); 0 or -errno. */
int sweep_write_all(int fd, const void *buf, size_t len);

/* Read from a blocking fd until EOF, a reset or an error (or, as a guard
 * against a hang, 10 s without data); the bytes in buf (at most cap are
 * kept); returns the count, or -errno on another error. *eof: it ended with
 * EOF or a reset. */
ssize_t sweep_drain(int fd, void *buf, size_t cap, bool *eof);

/*
 * A client of a connection handler whose whole request is in the socket
 * before the run (so every recv completes at once and the run replays), then
 * EOF if shut_wr. server is the handler's end.
 */
#define SWEEP_PEER_MAX 10000

struct sweep_peer {
    int client, server;
    size_t len;
    unsigned char sent[SWEEP_PEER_MAX], got[SWEEP_PEER_MAX];
};

void sweep_peer_open(struct sweep_peer *pe, size_t len, bool shut_wr);

/*
 * After the run: the handler closed its socket (the fd is gone, and the
 * client reads EOF after the echoes); the echoes are a prefix of what was
 * sent; *echoed says how much. Closes both ends whatever happened; 0 when
 * all held.
 */
int sweep_peer_close(struct sweep_peer *pe, const char *who, size_t *echoed);

#endif /* WEFT_TESTS_EXAMPLES_SWEEP_H */
