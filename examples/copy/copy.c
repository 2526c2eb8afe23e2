/*
 * examples/copy/copy.c - weft-copy's copy task (see copy.h): open the
 * source, create "<dst>.partial", copy chunk by chunk, fsync, rename into
 * place. The drop hook is the only place that closes the files and removes
 * an unfinished partial file, so every ending of the task goes through it.
 */
#include "copy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Between the awaits: the source is open (c->n); keep its mode, name the
 * partial file. 0 or a negative errno. */
static int copy_opened_source(struct copy_job *c)
{
    c->in = (int)c->n;
    struct stat st;
    if (fstat(c->in, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;         /* a pipe or a device has no end to copy to */
    c->mode = st.st_mode & 07777;
    int len = snprintf(c->partial, sizeof c->partial, "%s.partial", c->dst);
    return len < 0 || (size_t)len >= sizeof c->partial ? -ENAMETOOLONG : 0;
}

/* The copy is whole and synced: close both files, rename it over dst. */
static int copy_finish(struct copy_job *c)
{
    close(c->in);
    c->in = -1;
    int rc = close(c->out) == 0 ? 0 : -errno;
    c->out = -1;
    if (rc == 0 && rename(c->partial, c->dst) != 0)
        rc = -errno;
    c->renamed = rc == 0;
    return rc;
}

static weft_poll copy_poll(weft_cx *cx, void *frame)
{
    struct copy_job *c = frame;
    WEFT_BEGIN(&c->f);
    c->buf = malloc(COPY_BUF);
    if (!c->buf)
        WEFT_RETURN(&c->f, -ENOMEM);
    WEFT_AWAIT(&c->f, c->n, weft_openat(cx, &c->io, AT_FDCWD, c->src, O_RDONLY, 0));
    if (c->n < 0 || (c->n = copy_opened_source(c)) < 0)
        WEFT_RETURN(&c->f, c->n);
    /* A task torn down while this open is in flight never sees its result,
     * and the file may exist by then: the drop hook must remove it. */
    c->created = true;
    WEFT_AWAIT(&c->f, c->n, weft_openat(cx, &c->io, AT_FDCWD, c->partial, O_WRONLY | O_CREAT | O_EXCL, c->mode));
    c->created = c->n >= 0;     /* -EEXIST: another copy's file, not ours */
    if (c->n < 0)
        WEFT_RETURN(&c->f, c->n);
    c->out = (int)c->n;
    for (;;) {
        WEFT_AWAIT(&c->f, c->n, weft_read(cx, &c->io, c->in, c->buf, COPY_BUF, (int64_t)c->done));
        if (c->n <= 0)
            break;
        c->have = (size_t)c->n;
        for (c->off = 0; c->off < c->have; c->off += (size_t)c->n) {
            WEFT_AWAIT(&c->f, c->n, weft_write(cx, &c->io, c->out, c->buf + c->off, c->have - c->off, (int64_t)(c->done + c->off)));
            if (c->n <= 0)
                WEFT_RETURN(&c->f, c->n < 0 ? c->n : -EIO);
        }
        c->done += c->have;
    }
    if (c->n < 0)
        WEFT_RETURN(&c->f, c->n);
    WEFT_AWAIT(&c->f, c->n, weft_fsync(cx, &c->io, c->out, false));
    if (c->n < 0 || (c->n = copy_finish(c)) < 0)
        WEFT_RETURN(&c->f, c->n);
    WEFT_RETURN(&c->f, (weft_poll)c->done);
    WEFT_END(&c->f);
}

/* Once, however the task ended, after the kernel is done with the frame. */
static void copy_drop(void *frame)
{
    struct copy_job *c = frame;
    free(c->buf);
    if (c->in >= 0)
        close(c->in);
    if (c->out >= 0)
        close(c->out);
    if (c->created && !c->renamed)
        unlink(c->partial);     /* dst stays as it was */
}

void copy_task(const char *src, const char *dst, struct copy_job *frame, weft_task_desc *desc)
{
    *frame = (struct copy_job){ .src = src, .dst = dst, .in = -1, .out = -1,
                                .io = WEFT_IO_INIT };
    *desc = WEFT_TASK(copy_poll, frame);
    desc->drop = copy_drop;
    desc->name = "copy";
}
