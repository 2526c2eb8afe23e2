/*
 * reactor/dial.c - the leaves of weft/net.h: a connect that owns its socket
 * and its timeout (weft_connector), and an accept under a semaphore's limit
 * (weft_acceptor).
 *
 * Both are compound leaves whose first member is their weft_io: while the
 * operation is in flight they suspend under their own hook, at the io's
 * address, so that whatever withdraws them also settles what they hold.
 * Invariants:
 *   1. A connector holds its socket (fd1) from its first poll until it
 *      yields: then the caller gets it (connected), or it is closed (any
 *      failure, or a withdrawal that took effect).
 *   2. An acceptor holds a permit (limit != NULL) from the grant until it
 *      yields: the caller gets it with an accepted fd, or it is given back.
 *   3. A granted permit never outlives a cancellation due before the accept
 *      starts: the acceptor gives it back and yields -ECANCELED rather than
 *      start an operation after its wait was withdrawn.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "reactor/op.h"
#include "weft/net.h"

/* ---- connect with a timeout --------------------------------------------------------- */

static void drop_socket(weft_connector *c)
{
    if (c->weft_fd1) {
        close(c->weft_fd1 - 1);
        c->weft_fd1 = 0;
    }
}

static weft_withdraw connector_withdraw(weft_cx *cx, void *leaf)
{
    weft_connector *c = leaf;
    weft_withdraw w = weft__io_withdraw(cx, &c->weft_op);
    if (w == WEFT_WITHDRAWN)
        drop_socket(c);                 /* rule 1 */
    return w;
}

/* The first poll: copy the address, make the socket, arm the timeout. */
static int begin_connect(weft_connector *c, const struct sockaddr *addr, socklen_t addrlen,
                         uint64_t timeout_ns)
{
    if (!addr || addrlen < sizeof(sa_family_t) || addrlen > sizeof c->weft_addr)
        return -EINVAL;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    memcpy(c->weft_addr, addr, addrlen);
    c->weft_addrlen = addrlen;
    c->weft_fd1 = fd + 1;
    weft_io_timeout(&c->weft_op, timeout_ns);   /* idle io: cannot fail */
    return 0;
}

weft_poll weft_connect_timeout(weft_cx *cx, weft_connector *c, const struct sockaddr *addr,
                               socklen_t addrlen, uint64_t timeout_ns)
{
    if (!cx || !c)
        return -EINVAL;
    if (!c->weft_fd1) {
        int rc = begin_connect(c, addr, addrlen, timeout_ns);
        if (rc)
            return rc;
    }
    weft_poll r = weft_connect(cx, &c->weft_op, c->weft_fd1 - 1,
                               (const struct sockaddr *)c->weft_addr, c->weft_addrlen);
    if (r == WEFT_PENDING) {
        weft_cx_suspend(cx, c, connector_withdraw);     /* same address as the io */
        return WEFT_PENDING;
    }
    if (r < 0) {
        drop_socket(c);
        return r;
    }
    int fd = c->weft_fd1 - 1;
    c->weft_fd1 = 0;
    return fd;
}

weft_poll weft_unix_connect(weft_cx *cx, weft_connector *c, const char *path,
                            uint64_t timeout_ns)
{
    if (!cx || !c)
        return -EINVAL;
    struct sockaddr_un sun;
    socklen_t len = 0;
    if (!c->weft_fd1) {                 /* later polls use the copy */
        int rc = weft_unix_addr(path, &sun, &len);
        if (rc)
            return rc;
    }
    return weft_connect_timeout(cx, c, (const struct sockaddr *)&sun, len, timeout_ns);
}

/* ---- accept under a limit ---------------------------------------------------------------- */

static void give_back(weft_acceptor *a)
{
    if (a->weft_limit) {
        weft_semaphore_release(a->weft_limit, 1);
        a->weft_limit = NULL;
    }
}

static weft_withdraw acceptor_withdraw(weft_cx *cx, void *leaf)
{
    weft_acceptor *a = leaf;
    weft_withdraw w = weft__io_withdraw(cx, &a->weft_op);
    if (w == WEFT_WITHDRAWN)
        give_back(a);                   /* rule 2; a late fd was closed by the io */
    return w;
}

weft_poll weft_accept_limited(weft_cx *cx, weft_acceptor *a, int listen_fd,
                              weft_semaphore *limit)
{
    if (!cx || !a || !limit)
        return -EINVAL;
    if (!a->weft_limit) {
        weft_poll r = weft_semaphore_acquire(cx, limit, &a->weft_wait, 1);
        if (r != 0)
            return r;
        a->weft_limit = limit;
        if (weft_cx_cancel_due(cx)) {   /* rule 3 */
            give_back(a);
            return -ECANCELED;
        }
    }
    weft_poll r = weft_accept(cx, &a->weft_op, listen_fd, NULL, NULL, 0);
    if (r == WEFT_PENDING) {
        weft_cx_suspend(cx, a, acceptor_withdraw);      /* same address as the io */
        return WEFT_PENDING;
    }
    if (r < 0)
        give_back(a);
    else
        a->weft_limit = NULL;           /* the permit goes with the fd */
    return r;
}
