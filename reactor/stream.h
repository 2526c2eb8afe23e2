/*
 * reactor/stream.h - what the reader (reader.c) and the writer (writer.c) of
 * weft/stream.h share: flag bits, the buffer, the fd's kind, deadlines.
 *
 * Invariants both keep:
 *   1. The buffer is only moved (compacted) or resized while no operation
 *      is in flight: the kernel may be writing into it or reading from it.
 *   2. RUNNING is set only just before a call starts an operation, and the
 *      call then suspends on the stream itself, under the stream's own hook
 *      (its weft_io is its first member, so the leaf address is the same).
 *      So every way a running call can end - a result, an error, or a
 *      withdrawal the task's await delivers without polling the call -
 *      passes through code that clears RUNNING: no state of a call ever
 *      leaks into the next one.
 *   3. A call that completes from the buffer alone spends budget
 *      (weft_cx_coop) before it consumes anything.
 */
#ifndef WEFT_REACTOR_STREAM_H
#define WEFT_REACTOR_STREAM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reactor/op.h"
#include "weft/stream.h"

enum {
    WEFT__STREAM_SOCKET = 1u << 0,  /* recv / sendmsg, else read / writev */
    WEFT__STREAM_OWNED = 1u << 1,   /* weft allocated the buffer */
    WEFT__STREAM_EOF = 1u << 2,     /* reader: a read yielded 0 */
    WEFT__STREAM_RUNNING = 1u << 3, /* a call has started an operation */
    WEFT__STREAM_STOPPED = 1u << 4, /* writer: withdrawn after taking bytes */
    WEFT__STREAM_MODE_SHIFT = 8,    /* writer: what the running call does */
};

/* The setup both init calls share: validates, finds the fd's kind and gets
 * the buffer. Returns 0 with *flags and *out_buf set, or a negative errno. */
int weft__stream_setup(int fd, void *buf, size_t cap, uint32_t *flags, char **out_buf);

/* Frees the buffer if weft allocated it. */
void weft__stream_release(char *buf, size_t cap, uint32_t flags);

/* A destroy's check: the stream's operation is still with the kernel or
 * being handed to its owner, so its buffer must not go yet. */
static inline bool weft__stream_in_kernel(weft_io *op)
{
    uint32_t state = atomic_load_explicit(&weft__io_of(op)->state, memory_order_acquire);
    return state == WEFT__IO_INFLIGHT || state == WEFT__IO_HANDOFF;
}

/* The instant bounding a call starting now: the sooner of now + timeout and
 * the deadline; 0 when neither is set. */
uint64_t weft__stream_call_deadline(uint64_t timeout_ns, uint64_t deadline_ns);

/* An operation is in flight (or done and not yet polled) on io. */
static inline bool weft__stream_busy(weft_io *io)
{
    return atomic_load_explicit(&weft__io_of(io)->state, memory_order_acquire)
        != WEFT__IO_IDLE;
}

#endif /* WEFT_REACTOR_STREAM_H */
