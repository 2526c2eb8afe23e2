/*
 * examples/http/accept.c - weft-http's acceptor (see http.h): accepts under
 * the connection limit (weft_accept_limited: beyond it, clients wait in the
 * listen backlog) and spawns one detached conn task per connection, until
 * the drain token is cancelled. Every accepted fd ends up owned by a conn
 * task or closed here, with its permit given back.
 *
 * weft-echo's acceptor (examples/echo/conn.c) has the same shape but is
 * kept apart on purpose: each shows one way to cap connections (here,
 * waiting in the backlog under a semaphore; there, a multishot accept that
 * closes what is over the limit at once), and a shared loop would hide the
 * choice behind flags. What is the same in both, sorting accept errors,
 * is shared (../common/server.h).
 */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define BACKOFF_NS (100 * 1000000ull)   /* pause after running out of fds */

/* Hand an accepted socket (and its permit) to a new conn task. */
static void admit(weft_cx *cx, struct http_server *srv, int fd)
{
    weft_task_desc desc;
    /* The frame is large (it holds a file chunk): built on the heap, copied
     * by the spawn. */
    struct http_conn *init = malloc(sizeof *init);
    if (!init) {
        close(fd);
        weft_semaphore_release(&srv->limit, 1);
        return;
    }
    http_conn_task(srv, fd, init, &desc);
    /* Detached: main waits for every connection through srv->live. */
    int rc = weft_spawn_detached(weft_cx_runtime(cx), &desc);
    free(init);
    if (rc < 0) {
        if (rc != -ESHUTDOWN)
            fprintf(stderr, "weft-http: spawn: %s (%s)\n", weft_err_name(rc), weft_strerror(rc));
        http_conn_unadmit(srv, fd);
        return;
    }
    atomic_fetch_add_explicit(&srv->conns, 1, memory_order_relaxed);
}

static weft_poll acceptor_poll(weft_cx *cx, void *frame)
{
    struct http_acceptor *a = frame;
    WEFT_BEGIN(&a->f);
    for (;;) {
        WEFT_AWAIT(&a->f, a->r, weft_accept_limited(cx, &a->acc, a->srv->listen_fd, &a->srv->limit));
        if (a->r >= 0) {
            admit(cx, a->srv, (int)a->r);
            continue;
        }
        if (a->r == -ECANCELED || a->r == -EPIPE)
            break;              /* drained, or the limit was closed */
        a->next = example_accept_failed("weft-http", a->r);
        if (a->next == EXAMPLE_ACCEPT_PAUSE) {
            WEFT_AWAIT(&a->f, a->r, weft_sleep_for(cx, &a->backoff, BACKOFF_NS));
            if (a->r == -ECANCELED)
                break;
        } else if (a->next == EXAMPLE_ACCEPT_GIVE_UP) {
            weft_token_cancel(a->srv->drain);
            WEFT_RETURN(&a->f, a->r);
        }
    }
    WEFT_RETURN(&a->f, 0);
    WEFT_END(&a->f);
}

void http_acceptor_task(struct http_server *srv, struct http_acceptor *frame,
                        weft_task_desc *desc)
{
    *frame = (struct http_acceptor){ .srv = srv, .acc = WEFT_ACCEPTOR_INIT,
                                     .backoff = WEFT_SLEEP_INIT };
    *desc = WEFT_TASK(acceptor_poll, frame);
    desc->name = "acceptor";
    desc->tokens = &srv->drain;
    desc->ntokens = 1;
}
