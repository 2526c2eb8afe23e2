/*
 * examples/echo/conn.h - the tasks of weft-echo that serve connections (the
 * acceptor, and one conn task per connection) and the state they share.
 * echo.c is the program around them: options, signals, the runtime, the
 * summary. tests/examples/test_examples_sweep.c runs these same tasks under
 * the simulator's cancel-at-every-await sweep.
 *
 *   acceptor  accepts connections and spawns one conn task for each, until
 *             the stop token is cancelled (its accept yields -ECANCELED) or
 *             accept fails for good (it then cancels the token itself).
 *   conn      the echo loop of one connection: reads up to 4 KiB, writes it
 *             all back, until EOF, an error, the idle timeout, the
 *             connection deadline or the stop token. Its drop hook closes
 *             the socket and gives back the slot.
 *
 * Two limits bound a connection. The idle timeout is per operation: a recv
 * with no data, or a send the peer does not read, for that long. It cannot
 * stop a client that trickles a byte just before each timeout ends (a
 * "slowloris"); the connection deadline can: a deadline scope (weft/scope.h)
 * opened when the conn task starts bounds every await of its life.
 *
 * Both are bound to srv->stop when spawned, and are cooperative: a
 * cancellation arrives as -ECANCELED at an await and the task returns on its
 * own.
 */
#ifndef WEFT_EXAMPLES_ECHO_CONN_H
#define WEFT_EXAMPLES_ECHO_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <weft/weft.h>

#include "../common/server.h"

#define ECHO_BUF_SIZE 4096

/* What the tasks share. The counters are updated from any worker. */
struct echo_server {
    int listen_fd;
    unsigned max_conns;
    uint64_t idle_ns;
    uint64_t conn_ns;           /* a connection's whole life; 0: unbounded */
    weft_token *stop;           /* every task is bound to it */
    atomic_int signo;           /* the signal that stopped us, or 0 */
    atomic_uint open;           /* connections open right now */
    weft_waitgroup live;        /* one count per conn task, done in its drop */
    atomic_uint_fast64_t served;    /* connections that got a conn task */
    atomic_uint_fast64_t rejected;  /* closed at once: limit reached */
    atomic_uint_fast64_t idled;     /* closed by the idle timeout */
    atomic_uint_fast64_t cut;       /* closed by the connection deadline */
    atomic_uint_fast64_t messages;  /* reads echoed back */
    atomic_uint_fast64_t bytes;     /* bytes echoed back */
};

/* The frame of one conn task. */
struct echo_conn {
    weft_frame f;
    struct echo_server *srv;
    int fd;
    weft_io rx;                 /* the recv in flight */
    weft_xfer tx;               /* the send_all in flight */
    weft_scope life;            /* srv->conn_ns from the start */
    weft_poll n;                /* result of the last await */
    uint64_t messages, bytes;   /* added to the server's totals at the end */
    char buf[ECHO_BUF_SIZE];    /* in the frame: the kernel writes into it */
};

/* The frame of the acceptor. */
struct echo_acceptor {
    weft_frame f;
    struct echo_server *srv;
    weft_runtime *rt;           /* where admit spawns conn tasks */
    weft_accept_loop loop;      /* the multishot accept */
    weft_sleep backoff;
    weft_poll r;
    enum example_accept_next next;  /* after a failed accept */
};

/*
 * Admit an accepted socket: take a connection slot (false when all
 * srv->max_conns are taken; fd is left alone), and describe its conn task in
 * *frame and *desc (detached by the acceptor, bound to srv->stop; its drop
 * hook closes fd, adds its totals and gives the slot and the srv->live count
 * back). desc->frame points to frame, which only needs to live until the
 * spawn has copied it.
 */
bool echo_conn_admit(struct echo_server *srv, int fd, struct echo_conn *frame,
                     weft_task_desc *desc);

/* Undo echo_conn_admit for a task that was never spawned: closes fd. */
void echo_conn_unadmit(struct echo_server *srv, int fd);

/* Describe the acceptor for srv (bound to srv->stop, named "acceptor"). */
void echo_acceptor_task(struct echo_server *srv, struct echo_acceptor *frame,
                        weft_task_desc *desc);

#endif /* WEFT_EXAMPLES_ECHO_CONN_H */
