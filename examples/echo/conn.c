/*
 * examples/echo/conn.c - weft-echo's acceptor and per-connection tasks (see
 * conn.h).
 *
 * Build against an installed weft, with echo.c:
 *     cc echo.c conn.c ../common/server.c $(pkg-config --cflags --libs weft) -o weft-echo
 */
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BACKOFF_NS (100 * 1000000ull)   /* pause after running out of fds */

/* ---- one connection ------------------------------------------------------ */

/* Count a connection that ended in -ETIMEDOUT: the deadline scope's exit
 * says whether it was the connection deadline, else it was the idle timeout. */
static void count_timeout(struct echo_conn *c, int life_expired)
{
    if (c->n == -ETIMEDOUT)
        atomic_fetch_add_explicit(life_expired == 1 ? &c->srv->cut : &c->srv->idled, 1,
                                  memory_order_relaxed);
}

/*
 * Echo until EOF (recv yields 0), an error, the idle timeout or the
 * connection deadline (-ETIMEDOUT) or the stop token (-ECANCELED). Every way
 * out ends at WEFT_RETURN; closing the socket is left to conn_drop, which
 * runs exactly once however the task ends.
 */
static weft_poll conn_poll(weft_cx *cx, void *frame)
{
    struct echo_conn *c = frame;
    WEFT_BEGIN(&c->f);
    /* Set once: every await below yields -ETIMEDOUT once the deadline passed. */
    if (c->srv->conn_ns && weft_scope_enter_for(cx, &c->life, c->srv->conn_ns) < 0)
        WEFT_RETURN(&c->f, -EINVAL);
    for (;;) {
        /* A timeout covers one operation, so it is set again before each recv;
         * it fails only on misuse (an operation in flight), never here. */
        c->n = weft_io_timeout(&c->rx, c->srv->idle_ns);
        if (c->n < 0)
            break;
        WEFT_AWAIT(&c->f, c->n, weft_recv(cx, &c->rx, c->fd, c->buf, sizeof c->buf, 0));
        if (c->n <= 0)
            break;
        /* A peer that stops reading is idle too: bound the whole write back. */
        if (weft_io_timeout(&c->tx.io, c->srv->idle_ns) < 0)
            break;
        WEFT_AWAIT(&c->f, c->n, weft_send_all(cx, &c->tx, c->fd, c->buf, (size_t)c->n));
        if (c->n < 0)
            break;
        c->messages++;
        c->bytes += (uint64_t)c->n;
    }
    count_timeout(c, c->srv->conn_ns ? weft_scope_exit(cx, &c->life) : 0);
    /* EOF, a peer reset, a timeout or a stop are all normal endings here. */
    WEFT_RETURN(&c->f, c->n < 0 ? c->n : 0);
    WEFT_END(&c->f);
}

/* Runs once per conn task, after it returned or was torn down (at the end of
 * a runtime shutdown), and only once the kernel has finished with its frame. */
static void conn_drop(void *frame)
{
    struct echo_conn *c = frame;
    struct echo_server *srv = c->srv;
    close(c->fd);
    atomic_fetch_add_explicit(&srv->messages, c->messages, memory_order_relaxed);
    atomic_fetch_add_explicit(&srv->bytes, c->bytes, memory_order_relaxed);
    atomic_fetch_sub_explicit(&srv->open, 1, memory_order_relaxed);
    weft_waitgroup_done(&srv->live);    /* last: main may return after it */
}

bool echo_conn_admit(struct echo_server *srv, int fd, struct echo_conn *frame,
                     weft_task_desc *desc)
{
    /* Take a slot first, give it back if there was none: no lock needed. */
    if (atomic_fetch_add_explicit(&srv->open, 1, memory_order_relaxed) >= srv->max_conns) {
        atomic_fetch_sub_explicit(&srv->open, 1, memory_order_relaxed);
        return false;
    }
    /* Small echoes must leave at once, not wait for Nagle's algorithm. */
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        fprintf(stderr, "weft-echo: TCP_NODELAY: %s\n", strerror(errno));

    *frame = (struct echo_conn){ .srv = srv, .fd = fd, .rx = WEFT_IO_INIT,
                                 .tx = WEFT_XFER_INIT, .life = WEFT_SCOPE_INIT };
    *desc = WEFT_TASK(conn_poll, frame);
    desc->drop = conn_drop;
    desc->name = "echo-conn";
    desc->tokens = &srv->stop;
    desc->ntokens = 1;
    weft_waitgroup_add(&srv->live, 1);
    return true;
}

void echo_conn_unadmit(struct echo_server *srv, int fd)
{
    /* A failed spawn never calls the drop hook: undo its work here. */
    close(fd);
    atomic_fetch_sub_explicit(&srv->open, 1, memory_order_relaxed);
    weft_waitgroup_done(&srv->live);
}

/* Hand an accepted socket to a new conn task, or close it if we are full.
 * Called by weft_accept_each between tasks, for every connection the kernel
 * accepted, also while the acceptor is being stopped: none is lost. */
static void admit(void *arg, int fd)
{
    struct echo_acceptor *a = arg;
    struct echo_server *srv = a->srv;
    struct echo_conn init;
    weft_task_desc desc;
    if (!echo_conn_admit(srv, fd, &init, &desc)) {
        atomic_fetch_add_explicit(&srv->rejected, 1, memory_order_relaxed);
        close(fd);
        return;
    }
    /* Detached: nobody needs a connection's result; main waits for all of
     * them through srv->live instead. */
    int rc = weft_spawn_detached(a->rt, &desc);
    if (rc < 0) {
        if (rc != -ESHUTDOWN)
            fprintf(stderr, "weft-echo: spawn: %s (%s)\n", weft_err_name(rc), weft_strerror(rc));
        echo_conn_unadmit(srv, fd);
        return;
    }
    atomic_fetch_add_explicit(&srv->served, 1, memory_order_relaxed);
}

/* ---- the accept loop ----------------------------------------------------- */

/* Returns 0 once stopped, or the error that made it give up (after cancelling
 * the stop token, so that the rest of the server stops too). weft-http's
 * acceptor has the same shape and another connection limit (it waits under
 * a semaphore instead of closing); see examples/http/accept.c for why the
 * two loops are not shared. */
static weft_poll acceptor_poll(weft_cx *cx, void *frame)
{
    struct echo_acceptor *a = frame;
    WEFT_BEGIN(&a->f);
    for (;;) {
        /* One multishot accept for every connection; it yields only the
         * error that ended it. */
        a->rt = weft_cx_runtime(cx);
        a->loop = (weft_accept_loop)WEFT_ACCEPT_LOOP_INIT;
        WEFT_AWAIT(&a->f, a->r, weft_accept_each(cx, &a->loop, a->srv->listen_fd, admit, a));
        if (a->r == -ECANCELED)
            break;
        a->next = example_accept_failed("weft-echo", a->r);
        if (a->next == EXAMPLE_ACCEPT_PAUSE) {
            WEFT_AWAIT(&a->f, a->r, weft_sleep_for(cx, &a->backoff, BACKOFF_NS));
            if (a->r == -ECANCELED)
                break;
        } else if (a->next == EXAMPLE_ACCEPT_GIVE_UP) {
            weft_token_cancel(a->srv->stop);
            WEFT_RETURN(&a->f, a->r);
        }
    }
    WEFT_RETURN(&a->f, 0);
    WEFT_END(&a->f);
}

void echo_acceptor_task(struct echo_server *srv, struct echo_acceptor *frame,
                        weft_task_desc *desc)
{
    *frame = (struct echo_acceptor){ .srv = srv, .loop = WEFT_ACCEPT_LOOP_INIT,
                                     .backoff = WEFT_SLEEP_INIT };
    *desc = WEFT_TASK(acceptor_poll, frame);
    desc->name = "acceptor";
    desc->tokens = &srv->stop;
    desc->ntokens = 1;
}
