/*
 * weft/net.h - what a server needs around weft/io.h's socket operations:
 * listeners (TCP or Unix-domain, optionally SO_REUSEPORT), a connect that
 * creates its socket and gives up after a timeout, and an accept that never
 * exceeds a connection limit.
 *
 * The listeners are synchronous (bind and listen never block); the rest are
 * leaves kept in the frame like any weft_io. Every fd they hand out is
 * blocking and close-on-exec; the caller closes it. They never leak an fd:
 * whatever ends a connect or an accept (error, deadline, withdrawal, a
 * task torn down), a socket nobody was given is closed.
 *
 * Cancellation contracts:
 *  - weft_connect_timeout / weft_unix_connect: withdrawn, the socket is
 *    closed and the await yields -ECANCELED (-ETIMEDOUT when the timeout
 *    withdrew it); a connection that completed first is yielded.
 *  - weft_accept_limited: withdrawn while waiting for a permit, it holds
 *    nothing and leaves the semaphore's line; withdrawn while accepting, it
 *    gives its permit back and accepted nothing; a connection accepted
 *    first is yielded with its permit (or, at a tear-down, closed and its
 *    permit given back).
 */
#ifndef WEFT_NET_H
#define WEFT_NET_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "weft/io.h"
#include "weft/sync/semaphore.h"
#include "weft/task.h"

#ifdef __cplusplus
extern "C" {
#endif

enum weft_listen_flags {
    /* SO_REUSEPORT: several sockets (one per process or thread) listen on
     * the same address and the kernel spreads the connections over them. */
    WEFT_LISTEN_REUSEPORT = 1u << 0,
    /* Unix-domain: remove a socket file left at the path by an earlier run
     * (only a socket, never another kind of file). */
    WEFT_LISTEN_UNLINK = 1u << 1,
};

/*
 * A listening SOCK_STREAM socket on addr (AF_INET, AF_INET6 with
 * SO_REUSEADDR; or AF_UNIX). Returns the fd or a negative errno (nothing
 * left open). -EINVAL for a NULL addr, a negative backlog or unknown flags.
 */
WEFT_EXTERN int weft_listen(const struct sockaddr *addr, socklen_t addrlen, int backlog,
                            unsigned flags);

/* Fill *addr and *addrlen for a Unix-domain path: a file path, or "@name"
 * for Linux's abstract namespace. -EINVAL for NULL or an empty path,
 * -ENAMETOOLONG when it does not fit sun_path. */
WEFT_EXTERN int weft_unix_addr(const char *path, struct sockaddr_un *addr, socklen_t *addrlen);

/* weft_listen on a Unix-domain path (as weft_unix_addr reads it). */
WEFT_EXTERN int weft_unix_listen(const char *path, int backlog, unsigned flags);

/* A connect in progress: the socket and a copy of the address. Start
 * zeroed (WEFT_CONNECTOR_INIT); all fields private. */
typedef struct weft_connector {
    weft_io weft_op;                /* first: it is the leaf the task suspends on */
    uint64_t weft_addr[16];         /* the address (128 bytes, as sockaddr_storage) */
    uint32_t weft_addrlen;
    int weft_fd1;                   /* the socket + 1 while connecting; 0: none */
} weft_connector;

#define WEFT_CONNECTOR_INIT { WEFT_IO_INIT, { 0 }, 0, 0 }

/*
 * Create a SOCK_STREAM socket of addr's family and connect it to addr,
 * giving up after timeout_ns (counted from the first poll; 0: no limit).
 * Yields the connected fd. addr is copied at the first poll (it may be a
 * local). -EINVAL for NULL or addrlen above 128; -ETIMEDOUT; connect's
 * errors (-ECONNREFUSED, -ENOENT for a Unix path nobody listens on, ...).
 * The socket is closed on every failure.
 */
WEFT_EXTERN weft_poll weft_connect_timeout(weft_cx *cx, weft_connector *c,
                                           const struct sockaddr *addr, socklen_t addrlen,
                                           uint64_t timeout_ns);

/* weft_connect_timeout to a Unix-domain path (as weft_unix_addr reads it). */
WEFT_EXTERN weft_poll weft_unix_connect(weft_cx *cx, weft_connector *c, const char *path,
                                        uint64_t timeout_ns);

/* An accept under a limit. Start zeroed (WEFT_ACCEPTOR_INIT); private. */
typedef struct weft_acceptor {
    weft_io weft_op;                /* first: it is the leaf the task suspends on */
    weft_semaphore_waiter weft_wait;
    weft_semaphore *weft_limit;     /* set while a permit is held for the accept */
} weft_acceptor;

#define WEFT_ACCEPTOR_INIT { WEFT_IO_INIT, WEFT_SEMAPHORE_WAITER_INIT, NULL }

/*
 * Take one permit of limit (waiting while none is free: connections then
 * wait in the listen backlog), then accept one connection on listen_fd.
 * Yields the fd, for which one permit stays held: give it back with
 * weft_semaphore_release(limit, 1) once the connection is closed. -EPIPE
 * once limit is closed (the way to stop an accept loop gracefully);
 * accept's errors (the permit is given back). -EINVAL for NULL.
 */
WEFT_EXTERN weft_poll weft_accept_limited(weft_cx *cx, weft_acceptor *a, int listen_fd,
                                          weft_semaphore *limit);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_NET_H */
