/*
 * examples/copy/copy.h - the copy task of weft-copy: copies one file to
 * another with weft's file I/O, so that a cancellation at any await leaves
 * the destination as it was.
 *
 * The copy is written to "<dst>.partial" (created exclusively: a second copy
 * to the same destination fails with -EEXIST instead of sharing it), synced,
 * and renamed over dst only when complete. Whatever ends the task before
 * that - an error, a cancellation at any await, a tear-down - its drop hook
 * closes both files, removes the partial file and frees the buffer: dst is
 * either untouched or the whole copy, never a prefix.
 *
 * One operation is in flight at a time, through one buffer of COPY_BUF
 * bytes: a read of the next chunk, or the write of what was read (at the
 * file offsets, so a short write is simply continued).
 * tests/examples/test_http_sweep.c runs this task under the cancel-at-every-
 * await sweep.
 */
#ifndef WEFT_EXAMPLES_COPY_COPY_H
#define WEFT_EXAMPLES_COPY_COPY_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include <weft/weft.h>

#define COPY_BUF (128 * 1024)

struct copy_job {
    weft_frame f;
    const char *src, *dst;      /* must outlive the task */
    char partial[PATH_MAX];
    char *buf;                  /* COPY_BUF bytes, allocated by the task */
    int in, out;                /* -1 when closed */
    bool created, renamed;      /* the partial file exists / became dst */
    weft_io io;
    weft_poll n;
    unsigned mode;              /* the source's permission bits */
    uint64_t done;              /* bytes copied (read and written) */
    size_t have, off;           /* the chunk in buf, and how much is written */
};

/* Describe the copy of src to dst: *desc points to *frame, which needs to
 * live only until the spawn has copied it; its drop hook is set. The task
 * yields the bytes copied, or a negative errno (-ENAMETOOLONG when
 * "<dst>.partial" does not fit PATH_MAX, -EEXIST when it already exists,
 * open, read, write and fsync errors, -ECANCELED). */
void copy_task(const char *src, const char *dst, struct copy_job *frame, weft_task_desc *desc);

#endif /* WEFT_EXAMPLES_COPY_COPY_H */
