/*
 * reactor/net.c - the socket operations of weft/io.h. Each one fills its
 * record's SQE on the first poll; op.c does the rest (submission, completion,
 * withdrawal). Everything the kernel reads or writes later lives in the
 * caller's frame or in the record, never on this function's stack.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#include "reactor/op.h"

/* The SQE length is 32 bits, so a size_t length would be cut to its low
 * bits: 4 GiB would become 0, a false "peer closed" from recv and a send
 * that moves nothing, forever, under send_all. The kernel caps one transfer
 * near 2 GiB anyway; a longer one is shortened and comes back short, which
 * send and recv may do (as fs.c's clamp_len does for read and write). */
static inline unsigned clamp_len(size_t len)
{
    return len > 0x7ffff000u ? 0x7ffff000u : (unsigned)len;
}

weft_poll weft_socket(weft_cx *cx, weft_io *io, int domain, int type, int protocol)
{
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_SOCKET, &op);
    if (r != WEFT__IO_START)
        return r;
    io_uring_prep_socket(&op->sqe, domain, type | SOCK_CLOEXEC, protocol, 0);
    return weft__io_start(cx, io, op);
}

weft_poll weft_accept(weft_cx *cx, weft_io *io, int fd, struct sockaddr *addr,
                      socklen_t *addrlen, int flags)
{
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_ACCEPT, &op);
    if (r != WEFT__IO_START)
        return r;
    io_uring_prep_accept(&op->sqe, fd, addr, addr ? addrlen : NULL, flags | SOCK_CLOEXEC);
    return weft__io_start(cx, io, op);
}

weft_poll weft_connect(weft_cx *cx, weft_io *io, int fd, const struct sockaddr *addr,
                       socklen_t addrlen)
{
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_CONNECT, &op);
    if (r != WEFT__IO_START)
        return r;
    io_uring_prep_connect(&op->sqe, fd, addr, addrlen);
    return weft__io_start(cx, io, op);
}

weft_poll weft_recv(weft_cx *cx, weft_io *io, int fd, void *buf, size_t len, int flags)
{
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_RECV, &op);
    if (r != WEFT__IO_START)
        return r;
    io_uring_prep_recv(&op->sqe, fd, buf, clamp_len(len), flags);
    return weft__io_start(cx, io, op);
}

weft_poll weft_send(weft_cx *cx, weft_io *io, int fd, const void *buf, size_t len, int flags)
{
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_SEND, &op);
    if (r != WEFT__IO_START)
        return r;
    io_uring_prep_send(&op->sqe, fd, buf, clamp_len(len), flags | MSG_NOSIGNAL);
    return weft__io_start(cx, io, op);
}

/* The msghdr and iovec live in the record: the kernel reads them at submission
 * (and recvmsg writes the name length back), after this poll has returned. */
static void fill_msg(weft__op *op, void *buf, size_t len, void *addr, socklen_t addrlen)
{
    memset(&op->u.msg, 0, sizeof op->u.msg);
    op->u.msg.iov.iov_base = buf;
    op->u.msg.iov.iov_len = len;
    op->u.msg.msg.msg_iov = &op->u.msg.iov;
    op->u.msg.msg.msg_iovlen = 1;
    op->u.msg.msg.msg_name = addr;
    op->u.msg.msg.msg_namelen = addr ? addrlen : 0;
}

weft_poll weft_sendto(weft_cx *cx, weft_io *io, int fd, const void *buf, size_t len, int flags,
                      const struct sockaddr *addr, socklen_t addrlen)
{
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_SENDMSG, &op);
    if (r != WEFT__IO_START)
        return r;
    fill_msg(op, (void *)buf, len, (void *)addr, addrlen);
    io_uring_prep_sendmsg(&op->sqe, fd, &op->u.msg.msg, (unsigned)(flags | MSG_NOSIGNAL));
    return weft__io_start(cx, io, op);
}

weft_poll weft_recvfrom(weft_cx *cx, weft_io *io, int fd, void *buf, size_t len, int flags,
                        struct sockaddr *addr, socklen_t *addrlen)
{
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_RECVMSG, &op);
    if (r != WEFT__IO_START)
        return r;
    if (addr && !addrlen)
        addr = NULL;
    fill_msg(op, buf, len, addr, addr ? *addrlen : 0);
    op->u.msg.addrlen = addr ? addrlen : NULL;
    io_uring_prep_recvmsg(&op->sqe, fd, &op->u.msg.msg, (unsigned)flags);
    return weft__io_start(cx, io, op);
}

weft_poll weft_shutdown(weft_cx *cx, weft_io *io, int fd, int how)
{
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_SHUTDOWN, &op);
    if (r != WEFT__IO_START)
        return r;
    io_uring_prep_shutdown(&op->sqe, fd, how);
    return weft__io_start(cx, io, op);
}

weft_poll (weft_close)(weft_cx *cx, weft_io *io, int fd)
{
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_CLOSE, &op);
    if (r != WEFT__IO_START)
        return r;
    io_uring_prep_close(&op->sqe, fd);
    return weft__io_start(cx, io, op);
}

/* ---- synchronous helpers (listeners: listen.c) -------------------------------------- */

int weft_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -EAFNOSUPPORT;
}
