/*
 * reactor/fs.c - the file operations of weft/io.h. Buffered reads and writes
 * go through io_uring too: the kernel completes them asynchronously where the
 * filesystem supports it (ext4, XFS, btrfs since 5.9 for reads) and punts them
 * to its own workers otherwise, so a worker never blocks in read(2).
 *
 * An offset of -1 means "at the file position": the kernel reads it at issue
 * and advances it, like read(2).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "reactor/op.h"

weft_poll weft_openat(weft_cx *cx, weft_io *io, int dirfd, const char *path, int flags,
                      mode_t mode)
{
    if (!path)
        return -EINVAL;
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_OPENAT, &op);
    if (r != WEFT__IO_START)
        return r;
    io_uring_prep_openat(&op->sqe, dirfd, path, flags | O_CLOEXEC, mode);
    return weft__io_start(cx, io, op);
}

static inline uint64_t file_offset(int64_t offset)
{
    return offset < 0 ? (uint64_t)-1 : (uint64_t)offset;
}

/* The SQE length is 32 bits and the kernel caps one transfer near 2 GiB;
 * larger requests are shortened and come back short, as read(2) may. */
static inline unsigned clamp_len(size_t len)
{
    return len > 0x7ffff000u ? 0x7ffff000u : (unsigned)len;
}

weft_poll weft_read(weft_cx *cx, weft_io *io, int fd, void *buf, size_t len, int64_t offset)
{
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_READ, &op);
    if (r != WEFT__IO_START)
        return r;
    io_uring_prep_read(&op->sqe, fd, buf, clamp_len(len), file_offset(offset));
    return weft__io_start(cx, io, op);
}

weft_poll weft_write(weft_cx *cx, weft_io *io, int fd, const void *buf, size_t len,
                     int64_t offset)
{
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_WRITE, &op);
    if (r != WEFT__IO_START)
        return r;
    io_uring_prep_write(&op->sqe, fd, buf, clamp_len(len), file_offset(offset));
    return weft__io_start(cx, io, op);
}

weft_poll weft_readv(weft_cx *cx, weft_io *io, int fd, const struct iovec *iov, int iovcnt,
                     int64_t offset)
{
    if (!iov || iovcnt <= 0)
        return -EINVAL;
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_READV, &op);
    if (r != WEFT__IO_START)
        return r;
    io_uring_prep_readv(&op->sqe, fd, iov, (unsigned)iovcnt, file_offset(offset));
    return weft__io_start(cx, io, op);
}

weft_poll weft_writev(weft_cx *cx, weft_io *io, int fd, const struct iovec *iov, int iovcnt,
                      int64_t offset)
{
    if (!iov || iovcnt <= 0)
        return -EINVAL;
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_WRITEV, &op);
    if (r != WEFT__IO_START)
        return r;
    io_uring_prep_writev(&op->sqe, fd, iov, (unsigned)iovcnt, file_offset(offset));
    return weft__io_start(cx, io, op);
}

weft_poll weft_fsync(weft_cx *cx, weft_io *io, int fd, bool datasync)
{
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_FSYNC, &op);
    if (r != WEFT__IO_START)
        return r;
    io_uring_prep_fsync(&op->sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
    return weft__io_start(cx, io, op);
}

weft_poll weft_statx(weft_cx *cx, weft_io *io, int dirfd, const char *path, int flags,
                     unsigned mask, struct statx *out)
{
    if (!path || !out)
        return -EINVAL;
    weft__op *op;
    weft_poll r = weft__io_begin(cx, io, WEFT__OP_STATX, &op);
    if (r != WEFT__IO_START)
        return r;
    io_uring_prep_statx(&op->sqe, dirfd, path, flags, mask, out);
    return weft__io_start(cx, io, op);
}
