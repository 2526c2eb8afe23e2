/*
 * weft/trace.h - a trace of what the runtime did, in the Chrome/Perfetto
 * trace-event JSON format: open the file in https://ui.perfetto.dev or
 * chrome://tracing.
 *
 * What a trace shows, one track per worker (and one, "outside", for every
 * other thread):
 *   - each poll of a task as a span named after the task (weft_task_desc.name,
 *     or "task"), and each park of the worker as a span "park";
 *   - wake-ups and spawns as flow arrows from the task (or thread) that woke
 *     or spawned a task to the task's next poll;
 *   - steals (which worker, which task), timer fires, and each I/O operation
 *     as an async span from its submission to its completion (with its
 *     result);
 *   - cancellations with their provenance: the request (source) with an
 *     arrow to where it took effect, the await site (file, function, line),
 *     the time since the request and how long shields held it.
 *
 * Each worker records into a buffer of its own, other threads into a shared
 * one under a lock. Buffers are bounded: by default, once one is full its
 * later events are counted as dropped (the file says how many), and the
 * trace keeps the beginning of the run. With WEFT_TRACE_KEEP_LAST a buffer
 * keeps its latest events instead, overwriting the oldest (a flight
 * recorder): leave it on in a server and write the trace when something
 * looks wrong, a slow request say, to see the moments before it. Each
 * buffer then covers its own stretch of time (a busy worker's is shorter),
 * and a wake or I/O whose other end was overwritten shows without its
 * arrow. Tracing off costs one predictable branch per poll, wake, I/O
 * operation and timer.
 *
 * The environment, for any weft program:
 *   WEFT_TRACE=FILE          weft_runtime_new starts a trace; weft_runtime_free
 *                            writes it to FILE (a runtime freed later
 *                            overwrites a trace written earlier)
 *   WEFT_TRACE_EVENTS=N      events per buffer (1..16777216; default 65536)
 *   WEFT_TRACE_KEEP=last     keep each buffer's latest events (default:
 *                            first)
 * The last two are read only when WEFT_TRACE is set and not empty; then a
 * malformed value (not decimal digits in range; not "first" or "last")
 * fails weft_runtime_new with -EINVAL. Unset or empty means the default.
 */
#ifndef WEFT_TRACE_H
#define WEFT_TRACE_H

#include <stddef.h>

#include "weft/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_TRACE_DEFAULT_EVENTS 65536u
#define WEFT_TRACE_MAX_EVENTS 16777216u

/* weft_trace_start_flags: keep each buffer's latest events, not its first. */
#define WEFT_TRACE_KEEP_LAST 1u

/* Start recording rt's events, events_per_buffer (0: the default) in each
 * buffer. 0; -EINVAL for a NULL rt or too many events; -EALREADY when rt is
 * already tracing; -ENOMEM. Any thread, at any time. */
WEFT_EXTERN int weft_trace_start(weft_runtime *rt, size_t events_per_buffer);

/* weft_trace_start with flags: 0 or WEFT_TRACE_KEEP_LAST. The same results,
 * and -EINVAL for an unknown flag. */
WEFT_EXTERN int weft_trace_start_flags(weft_runtime *rt, size_t events_per_buffer,
                                       unsigned flags);

/* Write what rt recorded so far to path as trace-event JSON; recording goes
 * on. 0; -EINVAL for a NULL argument; -ENODATA when rt is not tracing;
 * -ENOMEM; or the errno of opening or writing the file. Any thread, while
 * rt runs or after its shutdown (a task calling it stalls its worker for
 * the file I/O). */
WEFT_EXTERN int weft_trace_write(weft_runtime *rt, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_TRACE_H */
