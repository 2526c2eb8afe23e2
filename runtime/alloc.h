/*
 * runtime/alloc.h - the one allocation shim every runtime object goes through.
 *
 * With jemalloc: mallocx/sdallocx, using the calling worker's explicit tcache
 * and arena when there are. In sanitizer builds (or without jemalloc): libc malloc, so
 * ASan sees every object. Memory from here is never handed to the user to free.
 * Fault injection: weft__alloc_fail_after(n) makes the n-th next allocation
 * fail, for tests of the -ENOMEM paths.
 */
#ifndef WEFT_RUNTIME_ALLOC_H
#define WEFT_RUNTIME_ALLOC_H

#include <stddef.h>

void *weft__alloc(size_t size);
void *weft__calloc(size_t size);
void weft__free(void *p, size_t size);
/* For objects whose size is not kept (tasks): the allocator looks it up. */
void weft__free_unsized(void *p);
/* Bytes usable at p, an allocation of ours: its size and the rounding. */
size_t weft__alloc_usable(void *p);

/* A worker's own cache and arena (runtime/alloc_arena.h): set up when the
 * worker of this index starts, the cache destroyed when it exits. */
void weft__alloc_thread_start(unsigned worker);
void weft__alloc_thread_stop(void);

/* Fail the n-th allocation from now (1 = the next one); 0 disarms. Process-wide. */
void weft__alloc_fail_after(long n);

/* Allocations still to go before the armed failure (0: it fired, or none armed):
 * a sweep over n knows it has passed the workload's last allocation when the
 * failure is still pending after the workload. */
long weft__alloc_fail_pending(void);

#endif /* WEFT_RUNTIME_ALLOC_H */
