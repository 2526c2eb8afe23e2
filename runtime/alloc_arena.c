/*
 * runtime/alloc_arena.c - the jemalloc arenas weft's workers allocate from,
 * and the extent hooks behind them (see alloc_arena.h).
 *
 * Why weft keeps its own arenas: a worker that spawns fast makes jemalloc
 * carve new slabs fast, and each new slab takes a 128-byte extent record
 * from the arena's metadata memory, which jemalloc hands out by bumping
 * through fresh pages. Its first access to a record is a read-modify-write
 * of one field, so on a fresh page the kernel first maps the shared zero
 * page for the read and then faults again on the write to replace it; that
 * second fault flushes the old entry from the TLB of every CPU running the
 * process: an inter-processor interrupt to each busy worker, about once per
 * 32 new slabs, each costing tens of microseconds on a virtual machine.
 * These arenas ask for their metadata in transparent huge pages, as
 * jemalloc's own `metadata_thp` option would for the whole process: one
 * fault then maps 2 MiB of metadata.
 *
 * They ask the same for task memory, in every extent of 2 MiB or more
 * (jemalloc grows an arena by 2, 2.5, 3, ... MiB at a time; each such
 * extent is mapped 2 MiB-aligned so that the kernel can back it with huge
 * pages). Every task is fresh memory the first time a runtime spawns that
 * many, and a base page costs a fault per 4 KiB of it: on a 2-vCPU AMD EPYC
 * VM whose faults are dear (a paravirtualised guest), faults were a third
 * of abort_churn's CPU time, and with huge pages abort_churn, spawn_join,
 * token_cancel, timers and idle_tasks ran twice as fast. The price: memory
 * grows in 2 MiB steps (a small program's peak RSS 7.0 -> 8.7 MiB), and
 * where the kernel's THP `defrag` setting lets a fault compact memory, a
 * fault on a fragmented machine can stall. WEFT_HUGEPAGES=0 in the
 * environment turns both kinds of advice off (runtime/env.c); it is read
 * by weft_runtime_new and applies to the extents mapped from then on.
 *
 * Otherwise the hooks do what jemalloc's defaults do on Linux: fresh private
 * anonymous mappings, kept (retained) rather than unmapped when jemalloc
 * lets go of them, purged with MADV_FREE or MADV_DONTNEED; any two adjacent
 * extents may be split or merged, since they are plain anonymous memory.
 *
 * Invariants:
 *   1. An arena, once made, lives as long as the process: jemalloc cannot
 *      destroy an arena while some thread's cache may still hold its memory,
 *      and later runtimes reuse it.
 *   2. Workers share an arena in groups of WORKERS_PER_ARENA by index, so a
 *      runtime of n workers adds at most ceil(n / 4) arenas, each with one
 *      2 MiB huge page of metadata from the start.
 *   3. Metadata is told apart by the alignment jemalloc asks for: jemalloc
 *      5.3 asks 2 MiB for metadata blocks and a page for slab memory, and
 *      weft never asks for memory aligned to 2 MiB. Were a jemalloc to ask
 *      differently, the advice would only miss its target: nothing here
 *      depends on it for correctness.
 *   4. Advice is best effort: a kernel without THP refuses it, and the
 *      memory then faults in base pages as it would have anyway.
 */
#include "runtime/alloc_arena.h"

#include "weft_config.h"

#if WEFT_HAVE_JEMALLOC

#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Rule 2: a trade between lock traffic and memory. A worker's cache takes
 * an arena's bin lock about once per hundred allocations (a refill or a
 * flush of half its bin), so four workers spawning flat out hold it a small
 * part of the time, while each arena costs its 2 MiB of metadata: 32 MiB for
 * 64 workers. (jemalloc's default is four arenas per CPU, for threads it
 * knows nothing about; workers are at most one per CPU, each with a cache.) */
#define WORKERS_PER_ARENA 4u
#define MAX_ARENAS 64u
#define METADATA_ALIGN ((size_t)2 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

static _Atomic size_t metadata_blocks, huge_extents, purged_bytes;
static void *_Atomic last_metadata_block, *_Atomic last_huge_extent;
static _Atomic bool huge_pages = true;     /* WEFT_HUGEPAGES */

void weft__arena_set_huge_pages(bool on)
{
    atomic_store_explicit(&huge_pages, on, memory_order_relaxed);
}

/* A fresh mapping of `size` bytes at `alignment`: over-map, then trim. */
static void *map_aligned(size_t size, size_t alignment)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t span = size + (alignment > page ? alignment - page : 0);
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *start = (char *)(((uintptr_t)p + alignment - 1) & ~((uintptr_t)alignment - 1));
    if (start > p)
        munmap(p, (size_t)(start - p));
    if (start + size < p + span)
        munmap(start + size, (size_t)(p + span - (start + size)));
    return start;
}

static void *hook_alloc(extent_hooks_t *hooks, void *new_addr, size_t size, size_t alignment,
                        bool *zero, bool *commit, unsigned arena)
{
    (void)hooks;
    (void)arena;
    /* Growing an extent in place is only an optimisation; declining it is
     * allowed, and jemalloc does not ask while it retains memory. */
    if (new_addr)
        return NULL;
    bool huge = atomic_load_explicit(&huge_pages, memory_order_relaxed);
    bool metadata = alignment >= METADATA_ALIGN;    /* rule 3 */
    bool huge_data = huge && !metadata && size >= HUGE_PAGE;
    void *p = map_aligned(size, huge_data ? HUGE_PAGE : alignment);
    if (!p)
        return NULL;
    if (huge && (metadata || huge_data))
        madvise(p, size, MADV_HUGEPAGE);    /* rule 4 */
    if (metadata) {
        atomic_fetch_add_explicit(&metadata_blocks, 1, memory_order_relaxed);
        atomic_store_explicit(&last_metadata_block, p, memory_order_relaxed);
    } else if (huge_data) {
        atomic_fetch_add_explicit(&huge_extents, 1, memory_order_relaxed);
        atomic_store_explicit(&last_huge_extent, p, memory_order_relaxed);
    }
    *zero = true;   /* a fresh anonymous mapping reads as zeros */
    *commit = true;
    return p;
}

static bool hook_dalloc(extent_hooks_t *hooks, void *addr, size_t size, bool committed,
                        unsigned arena)
{
    (void)hooks, (void)addr, (void)size, (void)committed, (void)arena;
    return true;    /* opt out: jemalloc keeps the range for reuse (retain) */
}

static void hook_destroy(extent_hooks_t *hooks, void *addr, size_t size, bool committed,
                         unsigned arena)
{
    (void)hooks, (void)committed, (void)arena;
    munmap(addr, size);
}

static bool purge(void *addr, size_t offset, size_t length, int advice)
{
    if (madvise((char *)addr + offset, length, advice) != 0)
        return true;    /* jemalloc's convention: true means it did not happen */
    atomic_fetch_add_explicit(&purged_bytes, length, memory_order_relaxed);
    return false;
}

static bool hook_purge_lazy(extent_hooks_t *hooks, void *addr, size_t size, size_t offset,
                            size_t length, unsigned arena)
{
    (void)hooks, (void)size, (void)arena;
    return purge(addr, offset, length, MADV_FREE);
}

static bool hook_purge_forced(extent_hooks_t *hooks, void *addr, size_t size, size_t offset,
                              size_t length, unsigned arena)
{
    (void)hooks, (void)size, (void)arena;
    return purge(addr, offset, length, MADV_DONTNEED);
}

static bool hook_split(extent_hooks_t *hooks, void *addr, size_t size, size_t size_a,
                       size_t size_b, bool committed, unsigned arena)
{
    (void)hooks, (void)addr, (void)size, (void)size_a, (void)size_b, (void)committed,
        (void)arena;
    return false;
}

static bool hook_merge(extent_hooks_t *hooks, void *addr_a, size_t size_a, void *addr_b,
                       size_t size_b, bool committed, unsigned arena)
{
    (void)hooks, (void)addr_a, (void)size_a, (void)addr_b, (void)size_b, (void)committed,
        (void)arena;
    return false;
}

/* No commit or decommit hook: on Linux memory is committed when touched,
 * and jemalloc's own defaults decline both there too. */
static extent_hooks_t weft_hooks = {
    .alloc = hook_alloc,
    .dalloc = hook_dalloc,
    .destroy = hook_destroy,
    .purge_lazy = hook_purge_lazy,
    .purge_forced = hook_purge_forced,
    .split = hook_split,
    .merge = hook_merge,
};

static pthread_mutex_t arenas_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned arenas[MAX_ARENAS];
static bool arena_made[MAX_ARENAS];

int weft__arena_for_worker(unsigned worker)
{
    unsigned group = (worker / WORKERS_PER_ARENA) % MAX_ARENAS;
    int arena = -1;
    pthread_mutex_lock(&arenas_lock);
    if (!arena_made[group]) {
        extent_hooks_t *hooks = &weft_hooks;
        size_t len = sizeof arenas[group];
        /* A failure is not remembered: the next worker of the group tries again. */
        arena_made[group] = mallctl("arenas.create", &arenas[group], &len, &hooks,
                                    sizeof hooks) == 0;
    }
    if (arena_made[group])
        arena = (int)arenas[group];
    pthread_mutex_unlock(&arenas_lock);
    return arena;
}

bool weft__arena_is_weft(unsigned arena)
{
    char name[64];
    extent_hooks_t *hooks = NULL;
    size_t len = sizeof hooks;
    snprintf(name, sizeof name, "arena.%u.extent_hooks", arena);
    return mallctl(name, &hooks, &len, NULL, 0) == 0 && hooks == &weft_hooks;
}

void weft__arena_counters_read(weft__arena_counters *out)
{
    out->metadata_blocks = atomic_load_explicit(&metadata_blocks, memory_order_relaxed);
    out->huge_extents = atomic_load_explicit(&huge_extents, memory_order_relaxed);
    out->last_huge_extent = atomic_load_explicit(&last_huge_extent, memory_order_relaxed);
    out->purged_bytes = atomic_load_explicit(&purged_bytes, memory_order_relaxed);
    out->last_metadata_block = atomic_load_explicit(&last_metadata_block, memory_order_relaxed);
}

#else

void weft__arena_set_huge_pages(bool on)
{
    (void)on;
}

int weft__arena_for_worker(unsigned worker)
{
    (void)worker;
    return -1;
}

bool weft__arena_is_weft(unsigned arena)
{
    (void)arena;
    return false;
}

void weft__arena_counters_read(weft__arena_counters *out)
{
    *out = (weft__arena_counters){ 0 };
}

#endif
