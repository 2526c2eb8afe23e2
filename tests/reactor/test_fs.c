/*
 * tests/reactor/test_fs.c - the file operations of weft/io.h: openat (O_CREAT,
 * O_EXCL, relative to a directory fd, O_CLOEXEC added), read and write at an
 * offset and at the file position (offset -1, which advances it), readv and
 * writev, fsync and fdatasync, statx (by path and by fd), close, and the
 * kernel's errors reported as they are. Files live in a mkdtemp directory
 * under /tmp. Pipes and FIFOs: a read of a pipe and a FIFO openat that waits
 * for a writer; a pipe read aborted as data arrives loses nothing; a FIFO
 * openat stopped (torn down or aborted) as a writer arrives never leaks the
 * fd it opened.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "io_test.h"
#include "test_util.h"

static weft_runtime *make(unsigned threads)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = threads, .shutdown_grace_ms = 100 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    atomic_store(&iot_drops, 0);
    return rt;
}

#define TCHECK(f, cond)                                                        \
    do {                                                                       \
        if (!(cond))                                                           \
            WEFT_RETURN(f, -(weft_poll)__LINE__ - 1000);                       \
    } while (0)

static void run_ok(weft_runtime *rt, weft_poll_fn poll, void *frame, size_t size)
{
    weft_task_desc d = { .poll = poll, .frame = frame, .frame_size = size,
                         .drop = iot_count_drop };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.value, 0, "task failed at line %lld (or yielded %lld)",
                 (long long)(-out.value - 1000), (long long)out.value);
}

struct tmpdir {
    char path[64];
    int fd;
};

static void tmpdir_make(struct tmpdir *d)
{
    strcpy(d->path, "/tmp/weft-fs-XXXXXX");
    cr_assert_not_null(mkdtemp(d->path));
    d->fd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(d->fd, 0);
}

static void tmpdir_remove(struct tmpdir *d, const char *const *names)
{
    for (; *names; names++)
        unlinkat(d->fd, *names, 0);
    close(d->fd);
    cr_assert_eq(rmdir(d->path), 0, "files left behind in %s", d->path);
}

/* ---- read and write, at offsets and at the file position -------------------------- */

struct rw {
    weft_frame f;
    weft_io io;
    int dir, fd;
    char buf[256];
    struct iovec iov[3];
    weft_poll r;
};

static weft_poll rw_poll(weft_cx *cx, void *p)
{
    struct rw *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->r, weft_openat(cx, &t->io, t->dir, "data", O_RDWR | O_CREAT | O_EXCL,
                                        0640));
    TCHECK(&t->f, t->r >= 0);
    t->fd = (int)t->r;
    TCHECK(&t->f, fcntl(t->fd, F_GETFD) & FD_CLOEXEC);
    /* at offsets: the file position does not move */
    WEFT_AWAIT(&t->f, t->r, weft_write(cx, &t->io, t->fd, "hello", 5, 0));
    TCHECK(&t->f, t->r == 5);
    WEFT_AWAIT(&t->f, t->r, weft_write(cx, &t->io, t->fd, "world", 5, 100));
    TCHECK(&t->f, t->r == 5);
    TCHECK(&t->f, lseek(t->fd, 0, SEEK_CUR) == 0);
    WEFT_AWAIT(&t->f, t->r, weft_read(cx, &t->io, t->fd, t->buf, 5, 100));
    TCHECK(&t->f, t->r == 5 && memcmp(t->buf, "world", 5) == 0);
    memset(t->buf, 'x', sizeof t->buf);
    WEFT_AWAIT(&t->f, t->r, weft_read(cx, &t->io, t->fd, t->buf, 10, 50));
    TCHECK(&t->f, t->r == 10 && t->buf[0] == 0 && t->buf[9] == 0);   /* the hole */
    WEFT_AWAIT(&t->f, t->r, weft_read(cx, &t->io, t->fd, t->buf, sizeof t->buf, 103));
    TCHECK(&t->f, t->r == 2 && memcmp(t->buf, "ld", 2) == 0);          /* short at EOF */
    WEFT_AWAIT(&t->f, t->r, weft_read(cx, &t->io, t->fd, t->buf, sizeof t->buf, 500));
    TCHECK(&t->f, t->r == 0);
    TCHECK(&t->f, lseek(t->fd, 0, SEEK_CUR) == 0);
    /* at the file position (-1): it is used and advanced */
    WEFT_AWAIT(&t->f, t->r, weft_write(cx, &t->io, t->fd, "HE", 2, -1));
    TCHECK(&t->f, t->r == 2 && lseek(t->fd, 0, SEEK_CUR) == 2);
    WEFT_AWAIT(&t->f, t->r, weft_write(cx, &t->io, t->fd, "LL", 2, -1));
    TCHECK(&t->f, t->r == 2 && lseek(t->fd, 0, SEEK_CUR) == 4);
    WEFT_AWAIT(&t->f, t->r, weft_read(cx, &t->io, t->fd, t->buf, 3, -1));
    TCHECK(&t->f, t->r == 3 && memcmp(t->buf, "o\0\0", 3) == 0);
    TCHECK(&t->f, lseek(t->fd, 0, SEEK_CUR) == 7);
    TCHECK(&t->f, lseek(t->fd, 98, SEEK_SET) == 98);
    WEFT_AWAIT(&t->f, t->r, weft_read(cx, &t->io, t->fd, t->buf, 4, -1));
    TCHECK(&t->f, t->r == 4 && memcmp(t->buf, "\0\0wo", 4) == 0);
    TCHECK(&t->f, lseek(t->fd, 0, SEEK_CUR) == 102);
    /* writev at an offset, readv at the file position */
    t->iov[0] = (struct iovec){ "abc", 3 };
    t->iov[1] = (struct iovec){ "", 0 };
    t->iov[2] = (struct iovec){ "defgh", 5 };
    WEFT_AWAIT(&t->f, t->r, weft_writev(cx, &t->io, t->fd, t->iov, 3, 200));
    TCHECK(&t->f, t->r == 8 && lseek(t->fd, 0, SEEK_CUR) == 102);
    TCHECK(&t->f, lseek(t->fd, 200, SEEK_SET) == 200);
    memset(t->buf, 0, sizeof t->buf);
    t->iov[0] = (struct iovec){ t->buf, 2 };
    t->iov[1] = (struct iovec){ t->buf + 10, 6 };
    WEFT_AWAIT(&t->f, t->r, weft_readv(cx, &t->io, t->fd, t->iov, 2, -1));
    TCHECK(&t->f, t->r == 8 && memcmp(t->buf, "ab", 2) == 0);
    TCHECK(&t->f, memcmp(t->buf + 10, "cdefgh", 6) == 0);
    TCHECK(&t->f, lseek(t->fd, 0, SEEK_CUR) == 208);
    /* writev at the file position, readv at an offset */
    t->iov[0] = (struct iovec){ "XY", 2 };
    t->iov[1] = (struct iovec){ "Z", 1 };
    WEFT_AWAIT(&t->f, t->r, weft_writev(cx, &t->io, t->fd, t->iov, 2, -1));
    TCHECK(&t->f, t->r == 3 && lseek(t->fd, 0, SEEK_CUR) == 211);
    t->iov[0] = (struct iovec){ t->buf, 4 };
    WEFT_AWAIT(&t->f, t->r, weft_readv(cx, &t->io, t->fd, t->iov, 1, 206));
    TCHECK(&t->f, t->r == 4 && memcmp(t->buf, "ghXY", 4) == 0);
    WEFT_AWAIT(&t->f, t->r, weft_close(cx, &t->io, t->fd));
    TCHECK(&t->f, t->r == 0 && !iot_fd_open(t->fd));
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(fs, read_write_readv_writev_at_offsets_and_at_the_file_position)
{
    int fds0 = iot_fd_count();
    weft_runtime *rt = make(2);
    struct tmpdir d;
    tmpdir_make(&d);
    struct rw t = { .dir = d.fd };
    run_ok(rt, rw_poll, &t, sizeof t);
    /* what the kernel wrote, seen by plain syscalls */
    int fd = openat(d.fd, "data", O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    char buf[256];
    cr_assert_eq(pread(fd, buf, sizeof buf, 0), 211);
    cr_assert_eq(memcmp(buf, "HELLo", 5), 0);
    cr_assert_eq(memcmp(buf + 100, "world", 5), 0);
    cr_assert_eq(memcmp(buf + 200, "abcdefghXYZ", 11), 0);
    close(fd);
    tmpdir_remove(&d, (const char *const[]){ "data", NULL });
    cr_assert_eq(weft_runtime_free(rt), 0);
    cr_assert_eq(iot_fd_count(), fds0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- fsync, statx, close, errors -------------------------------------------------------- */

struct meta {
    weft_frame f;
    weft_io io;
    int dir, fd;
    struct statx stx;
    char buf[4096];
    weft_poll r;
};

static weft_poll meta_poll(weft_cx *cx, void *p)
{
    struct meta *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->r, weft_openat(cx, &t->io, t->dir, "meta", O_WRONLY | O_CREAT, 0600));
    TCHECK(&t->f, t->r >= 0);
    t->fd = (int)t->r;
    memset(t->buf, 'm', sizeof t->buf);
    WEFT_AWAIT(&t->f, t->r, weft_write(cx, &t->io, t->fd, t->buf, sizeof t->buf, 0));
    TCHECK(&t->f, t->r == (weft_poll)sizeof t->buf);
    WEFT_AWAIT(&t->f, t->r, weft_fsync(cx, &t->io, t->fd, false));
    TCHECK(&t->f, t->r == 0);
    WEFT_AWAIT(&t->f, t->r, weft_write(cx, &t->io, t->fd, "tail", 4, (int64_t)sizeof t->buf));
    TCHECK(&t->f, t->r == 4);
    WEFT_AWAIT(&t->f, t->r, weft_fsync(cx, &t->io, t->fd, true));
    TCHECK(&t->f, t->r == 0);
    /* by path, relative to the directory */
    memset(&t->stx, 0, sizeof t->stx);
    WEFT_AWAIT(&t->f, t->r, weft_statx(cx, &t->io, t->dir, "meta", 0,
                                       STATX_SIZE | STATX_MODE | STATX_TYPE, &t->stx));
    TCHECK(&t->f, t->r == 0);
    TCHECK(&t->f, (t->stx.stx_mask & STATX_SIZE) && t->stx.stx_size == sizeof t->buf + 4);
    TCHECK(&t->f, S_ISREG(t->stx.stx_mode) && (t->stx.stx_mode & 0777) == 0600);
    /* by fd */
    memset(&t->stx, 0, sizeof t->stx);
    WEFT_AWAIT(&t->f, t->r, weft_statx(cx, &t->io, t->fd, "", AT_EMPTY_PATH, STATX_SIZE,
                                       &t->stx));
    TCHECK(&t->f, t->r == 0 && t->stx.stx_size == sizeof t->buf + 4);
    /* the directory itself */
    WEFT_AWAIT(&t->f, t->r, weft_statx(cx, &t->io, t->dir, ".", 0, STATX_TYPE, &t->stx));
    TCHECK(&t->f, t->r == 0 && S_ISDIR(t->stx.stx_mode));
    /* errors come back as they are */
    WEFT_AWAIT(&t->f, t->r, weft_statx(cx, &t->io, t->dir, "missing", 0, STATX_SIZE, &t->stx));
    TCHECK(&t->f, t->r == -ENOENT);
    WEFT_AWAIT(&t->f, t->r, weft_openat(cx, &t->io, t->dir, "missing", O_RDONLY, 0));
    TCHECK(&t->f, t->r == -ENOENT);
    WEFT_AWAIT(&t->f, t->r, weft_openat(cx, &t->io, t->dir, "meta", O_RDWR | O_CREAT | O_EXCL,
                                        0600));
    TCHECK(&t->f, t->r == -EEXIST);
    WEFT_AWAIT(&t->f, t->r, weft_read(cx, &t->io, t->fd, t->buf, 4, 0));   /* write-only */
    TCHECK(&t->f, t->r == -EBADF);
    WEFT_AWAIT(&t->f, t->r, weft_read(cx, &t->io, t->dir, t->buf, 4, 0));  /* a directory */
    TCHECK(&t->f, t->r == -EISDIR);
    WEFT_AWAIT(&t->f, t->r, weft_close(cx, &t->io, t->fd));
    TCHECK(&t->f, t->r == 0 && !iot_fd_open(t->fd));
    WEFT_AWAIT(&t->f, t->r, weft_fsync(cx, &t->io, -1, false));
    TCHECK(&t->f, t->r == -EBADF);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(fs, fsync_datasync_statx_close_and_errors)
{
    int fds0 = iot_fd_count();
    weft_runtime *rt = make(2);
    struct tmpdir d;
    tmpdir_make(&d);
    struct meta t = { .dir = d.fd };
    run_ok(rt, meta_poll, &t, sizeof t);
    tmpdir_remove(&d, (const char *const[]){ "meta", NULL });
    cr_assert_eq(weft_runtime_free(rt), 0);
    cr_assert_eq(iot_fd_count(), fds0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- pipes and FIFOs ------------------------------------------------------------------------ */

struct piper {
    weft_frame f;
    weft_io io;
    int rd, wr;
    flag *emptied;              /* +1 once the pipe is empty again, +100 at
                                   the drop (a failed check ends it early) */
    char buf[64];
    weft_poll r;
};

static weft_poll piper_poll(weft_cx *cx, void *p)
{
    struct piper *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_AWAIT(&t->f, t->r, weft_write(cx, &t->io, t->wr, "through the pipe", 16, -1));
    TCHECK(&t->f, t->r == 16);
    WEFT_AWAIT(&t->f, t->r, weft_read(cx, &t->io, t->rd, t->buf, 7, -1));
    TCHECK(&t->f, t->r == 7 && memcmp(t->buf, "through", 7) == 0);
    WEFT_AWAIT(&t->f, t->r, weft_read(cx, &t->io, t->rd, t->buf, sizeof t->buf, -1));
    TCHECK(&t->f, t->r == 9 && memcmp(t->buf, " the pipe", 9) == 0);
    /* an empty pipe: the read waits for the main thread's write, which comes
     * only after this (were it earlier, the read above would take it too) */
    flag_add(t->emptied, 1);
    WEFT_AWAIT(&t->f, t->r, weft_read(cx, &t->io, t->rd, t->buf, sizeof t->buf, -1));
    TCHECK(&t->f, t->r == 5 && memcmp(t->buf, "later", 5) == 0);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static flag emptied;

static void piper_drop(void *frame)
{
    (void)frame;
    flag_add(&emptied, 100);
}

Test(fs, pipe_read_and_write)
{
    weft_runtime *rt = make(2);
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    struct piper t = { .rd = p[0], .wr = p[1], .emptied = &emptied };
    weft_task_desc d = WEFT_TASK(piper_poll, &t);
    d.drop = piper_drop;
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &d, &h), 0);
    flag_wait_ge(&emptied, 1);
    /* write once the last read waits in the kernel for data (unless a failed
     * check ended the task: the join below reports it) */
    bool waits = iot_wait_polls(IORING_OP_READ, 1);
    cr_assert(waits || flag_get(&emptied) >= 100, "the read never reached the kernel");
    cr_assert_eq(write(p[1], "later", 5), 5);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert_eq(o.value, 0, "line %lld", (long long)(-o.value - 1000));
    close(p[0]);
    close(p[1]);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

struct fifo_open {
    weft_frame f;
    weft_io io;
    const char *path;
    flag *started;
    char buf[16];
    int fd;
    weft_poll r;
};

/* Opens the FIFO for reading (waiting for a writer) and reads from it; with
 * `started` set, only opens, and yields the fd (closed here) or the error. */
static weft_poll fifo_open_poll(weft_cx *cx, void *p)
{
    struct fifo_open *t = p;
    WEFT_BEGIN(&t->f);
    if (t->started)
        flag_add(t->started, 1);
    /* O_CREAT: io_uring's non-blocking first attempt would open a FIFO at
     * once; this way the open waits for a writer in io-wq like open(2). */
    WEFT_AWAIT(&t->f, t->r, weft_openat(cx, &t->io, AT_FDCWD, t->path, O_RDONLY | O_CREAT, 0600));
    if (t->started) {
        if (t->r >= 0)
            close((int)t->r);
        WEFT_RETURN(&t->f, t->r >= 0 ? 1 : t->r);
    }
    TCHECK(&t->f, t->r >= 0);
    t->fd = (int)t->r;
    WEFT_AWAIT(&t->f, t->r, weft_read(cx, &t->io, t->fd, t->buf, sizeof t->buf, -1));
    TCHECK(&t->f, t->r == 4 && memcmp(t->buf, "fifo", 4) == 0);
    WEFT_AWAIT(&t->f, t->r, weft_close(cx, &t->io, t->fd));
    TCHECK(&t->f, t->r == 0);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static void fifo_make(struct tmpdir *d, char *path, size_t room)
{
    tmpdir_make(d);
    snprintf(path, room, "%s/fifo", d->path);
    cr_assert_eq(mkfifo(path, 0600), 0);
}

Test(fs, fifo_openat_waits_for_a_writer)
{
    int fds0 = iot_fd_count();
    weft_runtime *rt = make(2);
    struct tmpdir d;
    static char path[128];
    fifo_make(&d, path, sizeof path);
    struct fifo_open t = { .path = path };
    weft_join h;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(fifo_open_poll, &t), &h), 0);
    int w = open(path, O_WRONLY | O_CLOEXEC);   /* blocks until the task's open */
    cr_assert_geq(w, 0);
    cr_assert_eq(write(w, "fifo", 4), 4);
    weft_outcome o;
    cr_assert_eq(weft_join_wait(&h, &o), 0);
    cr_assert_eq(o.value, 0, "line %lld (%lld)", (long long)(-o.value - 1000),
                 (long long)o.value);
    close(w);
    tmpdir_remove(&d, (const char *const[]){ "fifo", NULL });
    cr_assert_eq(weft_runtime_free(rt), 0);
    cr_assert_eq(iot_fd_count(), fds0);
    WEFT_ASSERT_NO_LEAKS();
}

/* The writer arrives as the open is stopped. A torn-down task never sees the
 * fd: weft closes it. A cooperative one gets it (and closes it) or not; an
 * fd is never left open either way. */
static void fifo_race(bool cancel_safe, int rounds)
{
    weft_runtime *rt = make(2);
    struct tmpdir d;
    static char path[128];
    fifo_make(&d, path, sizeof path);
    int fds0 = iot_fd_count();
    static flag started;
    atomic_store(&started.v, 0);
    int opened = 0, stopped = 0;
    uint32_t seed = 4242;
    for (int i = 0; i < rounds; i++) {
        struct fifo_open t = { .path = path, .started = &started };
        weft_task_desc desc = { .poll = fifo_open_poll, .frame = &t, .frame_size = sizeof t,
                                .drop = iot_count_drop,
                                .flags = cancel_safe ? WEFT_TASK_CANCEL_SAFE : 0 };
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &desc, &h), 0);
        flag_wait_ge(&started, (uint32_t)i + 1);
        seed = seed * 1103515245u + 12345u;
        iot_spin((seed >> 8) % 40000);
        /* a non-blocking writer: succeeds while the task's open waits */
        int w = -1;
        if (i % 2) {
            w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
            iot_spin((seed >> 4) % 3000);
            weft_abort(&h);
        } else {
            weft_abort(&h);
            iot_spin((seed >> 4) % 3000);
            w = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        }
        weft_outcome o;
        cr_assert_eq(weft_join_wait(&h, &o), 0);
        /* (what a stopped open yields is checked in test_io_cancel_every.c) */
        if (o.status == 0 && o.value == 1)
            opened++;
        else
            stopped++;
        if (w >= 0)
            close(w);
        /* whoever had the FIFO open for reading has let go */
        int probe = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        cr_assert(probe < 0 && errno == ENXIO, "round %d: a reader still holds the FIFO", i);
    }
    cr_log_info("fifo race (%s): %d opened, %d stopped", cancel_safe ? "cancel-safe" : "cooperative",
                opened, stopped);
    cr_assert_eq(atomic_load(&iot_drops), rounds);
    cr_assert_eq(iot_fd_count(), fds0, "fd count %d, was %d", iot_fd_count(), fds0);
    tmpdir_remove(&d, (const char *const[]){ "fifo", NULL });
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(fs, fifo_openat_torn_down_as_a_writer_arrives_never_leaks_the_fd)
{
    fifo_race(true, 400);
}

Test(fs, fifo_openat_aborted_as_a_writer_arrives_never_leaks_the_fd)
{
    fifo_race(false, 400);
}

/* ---- a pipe read aborted as data arrives ---------------------------------------------------- */

struct preader {
    weft_frame f;
    weft_io io;
    int fd;
    flag *started;
    unsigned char buf[8];
    weft_poll r;
};

static weft_poll preader_poll(weft_cx *cx, void *p)
{
    struct preader *t = p;
    WEFT_BEGIN(&t->f);
    flag_add(t->started, 1);
    WEFT_AWAIT(&t->f, t->r, weft_read(cx, &t->io, t->fd, t->buf, sizeof t->buf, -1));
    WEFT_RETURN(&t->f, t->r);
    WEFT_END(&t->f);
}

Test(fs, pipe_read_aborted_as_data_arrives_loses_nothing)
{
    weft_runtime *rt = make(2);
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    static flag started;
    int cancelled = 0, delivered = 0;
    uint32_t seed = 99;
    for (int i = 0; i < 1500; i++) {
        struct preader t = { .fd = p[0], .started = &started };
        weft_join h;
        cr_assert_eq(weft_spawn(rt, &WEFT_TASK(preader_poll, &t), &h), 0);
        flag_wait_ge(&started, (uint32_t)i + 1);
        unsigned char want[8];
        for (int k = 0; k < 8; k++)
            want[k] = (unsigned char)(i + k * 31);
        seed = seed * 1103515245u + 12345u;
        iot_spin((seed >> 8) % 20000);
        int ab;
        if (i % 2) {
            cr_assert_eq(write(p[1], want, 8), 8);
            ab = weft_abort(&h);
        } else {
            ab = weft_abort(&h);
            iot_spin((seed >> 4) % 3000);
            cr_assert_eq(write(p[1], want, 8), 8);
        }
        weft_outcome o;
        cr_assert_eq(weft_join_wait(&h, &o), 0);
        weft_poll v = o.value;
        cr_assert(v == -ECANCELED || (v >= 1 && v <= 8), "read yielded %lld", (long long)v);
        if (ab == 1)
            cr_assert_gt(v, 0);
        /* a pipe write is atomic: what the read did not report is all there */
        size_t got = v > 0 ? (size_t)v : 0;
        unsigned char rest[8];
        if (got < 8)
            cr_assert_eq(read(p[0], rest, 8 - got), (ssize_t)(8 - got));
        cr_assert_eq(memcmp(rest, want + got, 8 - got), 0);
        int avail = iot_readable(p[0], 0);
        cr_assert_not(avail, "more bytes than were written: duplicated");
        if (v < 0)
            cancelled++;
        else
            delivered++;
    }
    cr_log_info("pipe race: %d cancelled, %d delivered", cancelled, delivered);
    close(p[0]);
    close(p[1]);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}
