/*
 * runtime/alloc.c - jemalloc (or libc) behind weft__alloc/weft__free.
 *
 * Each worker thread creates an explicit jemalloc tcache at start and destroys
 * it at exit; "each explicit cache can be used by only one thread at a time",
 * which holds because only that worker reads tcache_flags. A worker also
 * allocates from weft's arena for its group (runtime/alloc_arena.h); other
 * threads allocate from jemalloc's own arenas. Frees from any thread are fine
 * for jemalloc: they go through the freeing thread's cache back to the
 * arena the memory came from.
 *
 * Fault injection (weft__alloc_fail_after) is compiled into every build: when
 * disarmed it costs one relaxed load and a predictable branch per allocation;
 * armed, it counts allocations process-wide and fails exactly one of them.
 */
#include "runtime/alloc.h"

#include "runtime/alloc_arena.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "weft_config.h"

#if WEFT_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#else
#include <malloc.h>
#endif

static _Atomic long fail_countdown;

static inline int injected_failure(void)
{
    /* Relaxed: a test arms it before starting the work it wants to fail. The
     * disarmed case is one load and a predictable branch. */
    long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (__builtin_expect(n == 0, 1))
        return 0;
    /* A CAS, not a blind decrement: threads racing past the armed count must
     * not drive it below zero, which would leave it armed forever. */
    while (n > 0 && !atomic_compare_exchange_weak_explicit(&fail_countdown, &n, n - 1,
                                                            memory_order_relaxed,
                                                            memory_order_relaxed))
        ;
    return n == 1;
}

void weft__alloc_fail_after(long n)
{
    atomic_store_explicit(&fail_countdown, n < 0 ? 0 : n, memory_order_relaxed);
}

long weft__alloc_fail_pending(void)
{
    return atomic_load_explicit(&fail_countdown, memory_order_relaxed);
}

#if WEFT_HAVE_JEMALLOC

static __thread int tcache_flags;   /* 0: the thread's implicit tcache */
static __thread int alloc_flags;    /* tcache_flags, plus the worker's arena */

void weft__alloc_thread_start(unsigned worker)
{
    unsigned id;
    size_t len = sizeof id;
    if (mallctl("tcache.create", &id, &len, NULL, 0) == 0)
        tcache_flags = MALLOCX_TCACHE(id);
    int arena = weft__arena_for_worker(worker);
    alloc_flags = tcache_flags | (arena >= 0 ? (int)MALLOCX_ARENA((unsigned)arena) : 0);
}

void weft__alloc_thread_stop(void)
{
    alloc_flags = 0;
    if (tcache_flags == 0)
        return;
    unsigned id = (unsigned)((tcache_flags >> 8) - 2);
    mallctl("tcache.destroy", NULL, NULL, &id, sizeof id);
    tcache_flags = 0;
}

void *weft__alloc(size_t size)
{
    if (injected_failure())
        return NULL;
    return mallocx(size, alloc_flags);
}

void *weft__calloc(size_t size)
{
    if (injected_failure())
        return NULL;
    return mallocx(size, alloc_flags | MALLOCX_ZERO);
}

void weft__free(void *p, size_t size)
{
    if (p)
        sdallocx(p, size, tcache_flags);
}

void weft__free_unsized(void *p)
{
    if (p)
        dallocx(p, tcache_flags);
}

size_t weft__alloc_usable(void *p)
{
    return sallocx(p, 0);
}

#else

void weft__alloc_thread_start(unsigned worker)
{
    (void)worker;
}
void weft__alloc_thread_stop(void) {}

void *weft__alloc(size_t size)
{
    return injected_failure() ? NULL : malloc(size);
}

void *weft__calloc(size_t size)
{
    return injected_failure() ? NULL : calloc(1, size);
}

void weft__free(void *p, size_t size)
{
    (void)size;
    free(p);
}

void weft__free_unsized(void *p)
{
    free(p);
}

size_t weft__alloc_usable(void *p)
{
    return malloc_usable_size(p);
}

#endif
