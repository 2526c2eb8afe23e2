/*
 * examples/http/http.h - the tasks of weft-http that serve connections (the
 * acceptor, and one conn task per connection) and the state they share.
 * main.c is the program around them (options, signals, the drain on
 * shutdown, the summary); parse.h is the HTTP text. The sweep in
 * tests/examples/test_http_sweep.c runs these same tasks with a cancellation
 * at every await.
 *
 * Two tokens stop the server, in two steps:
 *   drain  stop accepting, and let each connection finish the request it is
 *          serving (answered with Connection: close); a connection waiting
 *          for its next request closes at once. The acceptor and the signal
 *          watcher are bound to it; conn tasks watch it between requests.
 *   stop   cancel everything still running: conn tasks are bound to it, and
 *          main cancels it when the grace period ends with requests still in
 *          flight.
 *
 * Deadlines are deadline scopes (weft/scope.h) that the conn task opens
 * itself (conn.c): the connection's (conn_ns) for its whole life and,
 * nested in it, one for the phase it is in (idle_ns, request_ns,
 * linger_ns). Every await inside yields -ETIMEDOUT once either has passed.
 *
 * Invariants: a conn task's drop hook is the only place its socket and an
 * open file are closed, its permit of srv->limit given back and its
 * srv->live count done - exactly once, however the task ended. A response
 * is either sent whole or the connection is closed after it: a request cut
 * by a deadline or a cancellation never leaves a keep-alive connection
 * behind with half a response on it.
 */
#ifndef WEFT_EXAMPLES_HTTP_HTTP_H
#define WEFT_EXAMPLES_HTTP_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <weft/weft.h>

#include "../common/server.h"
#include "parse.h"

/* The writer's buffer, and the file chunk read per await. The reader's
 * buffer is max_header bytes, so no one line can exceed the header limit. */
#define HTTP_WRITE_BUF 16384
#define HTTP_CHUNK 16384

/* Settings and state shared by every task of one server. */
struct http_server {
    int listen_fd;
    int root_fd;                /* O_PATH|O_DIRECTORY fd of the served root */
    size_t max_header;          /* request line and headers, bytes: else 414/431;
                                   also the reader's buffer */
    uint64_t idle_ns;           /* idle phase: until a request's first line is in */
    uint64_t request_ns;        /* request phase: its headers to the last byte
                                   of its response */
    uint64_t conn_ns;           /* whole connection; 0: no bound */
    uint64_t linger_ns;         /* linger phase: read and drop what follows a
                                   refusal */
    weft_token *drain, *stop;   /* see above */
    weft_semaphore limit;       /* one permit per open connection */
    weft_waitgroup live;        /* one count per conn task, done in its drop */
    atomic_int signo;           /* the signal that stopped us, or 0 */
    atomic_uint_fast64_t conns;         /* connections that got a conn task */
    atomic_uint_fast64_t requests;      /* responses made whole (handed to the
                                           writer; a later send may still fail) */
    atomic_uint_fast64_t errors;        /* of which 4xx/5xx */
    atomic_uint_fast64_t timeouts;      /* connections cut by a deadline */
    atomic_uint_fast64_t cut;           /* connections cancelled by stop */
};

/* The frame of one conn task. */
struct http_conn {
    weft_frame f;
    struct http_server *srv;
    int fd;
    int file;                   /* the file being sent, or -1 */
    weft_reader rd;
    weft_writer wr;
    weft_selector sel;          /* next request, or the drain */
    weft_token_wait drain_wait;
    weft_io io;                 /* file operations, shutdown */
    weft_scope life;            /* the connection's deadline (--conn-ms) */
    weft_scope phase;           /* nested in it: idle, request or linger */
    weft_poll n;
    int status;                 /* of the response being made; 0 before */
    bool in_headers;            /* reading the request's header lines */
    bool keep_alive;            /* after this response */
    char *line;
    size_t len;
    uint64_t size, sent;        /* of the file's body */
    uint64_t requests;          /* added to the server's total in the drop */
    struct http_request req;
    char head[HTTP_HEAD_MAX];
    char chunk[HTTP_CHUNK];
};

/* The frame of the acceptor. */
struct http_acceptor {
    weft_frame f;
    struct http_server *srv;
    weft_acceptor acc;
    weft_sleep backoff;
    weft_poll r;
    enum example_accept_next next;  /* after a failed accept */
};

/* Describe the conn task for an accepted socket fd, for which one permit of
 * srv->limit is held: *desc (bound to srv->stop, drop hook set) points to
 * *frame, which needs to live only until the spawn has copied it. Adds one
 * to srv->live. */
void http_conn_task(struct http_server *srv, int fd, struct http_conn *frame,
                    weft_task_desc *desc);

/* Undo http_conn_task for a task that was never spawned: closes fd, gives
 * the permit and the srv->live count back. */
void http_conn_unadmit(struct http_server *srv, int fd);

/* Describe the acceptor (bound to srv->drain). It returns 0 once drained,
 * or the accept error that made it give up (after cancelling srv->drain). */
void http_acceptor_task(struct http_server *srv, struct http_acceptor *frame,
                        weft_task_desc *desc);

#endif /* WEFT_EXAMPLES_HTTP_HTTP_H */
