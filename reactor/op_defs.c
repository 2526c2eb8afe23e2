/*
 * reactor/op_defs.c - the table every operation kind must have an entry in:
 * its io_uring opcode, whether its result is an fd that must not leak, whether
 * a withdrawal may cancel it, and what the owner does at its final CQE.
 *
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

const weft__op_def weft__op_defs[] = {
    [WEFT__OP_SOCKET]   = { "socket",   IORING_OP_SOCKET,   true,  true,  NULL },
    [WEFT__OP_ACCEPT]   = { "accept",   IORING_OP_ACCEPT,   true,  true,  NULL },
    [WEFT__OP_CONNECT]  = { "connect",  IORING_OP_CONNECT,  false, true,  NULL },
    [WEFT__OP_RECV]     = { "recv",     IORING_OP_RECV,     false, true,  NULL },
    [WEFT__OP_SEND]     = { "send",     IORING_OP_SEND,     false, true,  NULL },
    [WEFT__OP_SENDMSG]  = { "sendmsg",  IORING_OP_SENDMSG,  false, true,  NULL },
    [WEFT__OP_RECVMSG]  = { "recvmsg",  IORING_OP_RECVMSG,  false, true,  recvmsg_complete },
    [WEFT__OP_SHUTDOWN] = { "shutdown", IORING_OP_SHUTDOWN, false, true,  NULL },
    [WEFT__OP_OPENAT]   = { "openat",   IORING_OP_OPENAT,   true,  true,  NULL },
    [WEFT__OP_READ]     = { "read",     IORING_OP_READ,     false, true,  NULL },
    [WEFT__OP_WRITE]    = { "write",    IORING_OP_WRITE,    false, true,  NULL },
    [WEFT__OP_READV]    = { "readv",    IORING_OP_READV,    false, true,  NULL },
    [WEFT__OP_WRITEV]   = { "writev",   IORING_OP_WRITEV,   false, true,  NULL },
    [WEFT__OP_FSYNC]    = { "fsync",    IORING_OP_FSYNC,    false, true,  NULL },
    [WEFT__OP_STATX]    = { "statx",    IORING_OP_STATX,    false, true,  NULL },
    [WEFT__OP_CLOSE]    = { "close",    IORING_OP_CLOSE,    false, false, NULL },
};

_Static_assert(sizeof weft__op_defs / sizeof weft__op_defs[0] == WEFT__OP_COUNT,
               "every operation kind needs an entry in weft__op_defs");
