/*
 * reactor/op_defs.c - the table every operation kind must have an entry in:
 * its io_uring opcode, whether its result is an fd that must not leak, whether
 * a withdrawal may cancel it, and what the owner does at its final CQE.
 *
 * Fields are named, as in the kernel's own op table: a flag left out is false
 * (a release such as close is the one kind that is not withdrawable).
 * The array is indexed by enum weft__op_kind; the static assertion catches a
 * kind added at the end without an entry, and tests/reactor/test_net.c checks
 * that no entry in the middle was left empty.
 */
#include "reactor/op.h"

static void recvmsg_complete(weft__op *op, int32_t *res)
{
    if (*res >= 0 && op->u.msg.addrlen)
        *op->u.msg.addrlen = op->u.msg.msg.msg_namelen;
}

/* A multishot accept hands every connection to the loop's callback, also
 * one carried by its final CQE (the kernel ends a multishot that way when
 * it cannot post another CQE); the await then sees 0 and re-arms. */
static void accept_each_more(weft__op *op, int32_t res)
{
    if (res < 0)
        return;
    (*op->u.each.accepted)++;
    op->u.each.fn(op->u.each.arg, res);
}

static void accept_each_complete(weft__op *op, int32_t *res)
{
    if (*res >= 0) {
        accept_each_more(op, *res);
        *res = 0;
    }
}

const weft__op_def weft__op_defs[] = {
    [WEFT__OP_SOCKET] = {
        .name = "socket",
        .opcode = IORING_OP_SOCKET,
        .yields_fd = true,
        .withdrawable = true,
    },
    [WEFT__OP_ACCEPT] = {
        .name = "accept",
        .opcode = IORING_OP_ACCEPT,
        .yields_fd = true,
        .withdrawable = true,
    },
    [WEFT__OP_CONNECT] = {
        .name = "connect",
        .opcode = IORING_OP_CONNECT,
        .withdrawable = true,
    },
    [WEFT__OP_RECV] = {
        .name = "recv",
        .opcode = IORING_OP_RECV,
        .withdrawable = true,
    },
    [WEFT__OP_SEND] = {
        .name = "send",
        .opcode = IORING_OP_SEND,
        .withdrawable = true,
    },
    [WEFT__OP_SENDMSG] = {
        .name = "sendmsg",
        .opcode = IORING_OP_SENDMSG,
        .withdrawable = true,
    },
    [WEFT__OP_RECVMSG] = {
        .name = "recvmsg",
        .opcode = IORING_OP_RECVMSG,
        .withdrawable = true,
        .complete = recvmsg_complete,
    },
    [WEFT__OP_SHUTDOWN] = {
        .name = "shutdown",
        .opcode = IORING_OP_SHUTDOWN,
        .withdrawable = true,
    },
    [WEFT__OP_OPENAT] = {
        .name = "openat",
        .opcode = IORING_OP_OPENAT,
        .yields_fd = true,
        .withdrawable = true,
    },
    [WEFT__OP_READ] = {
        .name = "read",
        .opcode = IORING_OP_READ,
        .withdrawable = true,
    },
    [WEFT__OP_WRITE] = {
        .name = "write",
        .opcode = IORING_OP_WRITE,
        .withdrawable = true,
    },
    [WEFT__OP_READV] = {
        .name = "readv",
        .opcode = IORING_OP_READV,
        .withdrawable = true,
    },
    [WEFT__OP_WRITEV] = {
        .name = "writev",
        .opcode = IORING_OP_WRITEV,
        .withdrawable = true,
    },
    [WEFT__OP_FSYNC] = {
        .name = "fsync",
        .opcode = IORING_OP_FSYNC,
        .withdrawable = true,
    },
    [WEFT__OP_STATX] = {
        .name = "statx",
        .opcode = IORING_OP_STATX,
        .withdrawable = true,
    },
    [WEFT__OP_CLOSE] = {
        .name = "close",
        .opcode = IORING_OP_CLOSE,
    },
    [WEFT__OP_SPLICE] = {
        .name = "splice",
        .opcode = IORING_OP_SPLICE,
        .withdrawable = true,
    },
    [WEFT__OP_ACCEPT_MULTI] = {
        .name = "accept_each",
        .opcode = IORING_OP_ACCEPT,
        .withdrawable = true,
        .complete = accept_each_complete,
        .more = accept_each_more,
    },
};

_Static_assert(sizeof weft__op_defs / sizeof weft__op_defs[0] == WEFT__OP_COUNT,
               "every operation kind needs an entry in weft__op_defs");
