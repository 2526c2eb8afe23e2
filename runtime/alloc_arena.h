/*
 * runtime/alloc_arena.h - the jemalloc arenas worker threads allocate from:
 * jemalloc's defaults, except that their metadata sits in transparent huge
 * pages (runtime/alloc_arena.c says why). Without jemalloc there are none
 * and every call here reports so.
 */
#ifndef WEFT_RUNTIME_ALLOC_ARENA_H
#define WEFT_RUNTIME_ALLOC_ARENA_H

#include <stdbool.h>
#include <stddef.h>

/* The arena for the worker of this index, made on first use and shared with
 * the workers of the same group in every runtime; -1 when jemalloc could not
 * make one (the worker then allocates from jemalloc's own arenas). */
int weft__arena_for_worker(unsigned worker);

/* For tests: whether jemalloc arena `arena` is one of these, and what the
 * hooks have done so far, process-wide. */
bool weft__arena_is_weft(unsigned arena);

typedef struct weft__arena_counters {
    size_t metadata_blocks;         /* mapped (and advised as huge pages when on) */
    size_t huge_extents;            /* task-memory extents advised as huge pages */
    size_t purged_bytes;            /* handed back to the kernel */
    void *last_metadata_block;
    void *last_huge_extent;
} weft__arena_counters;

/* WEFT_HUGEPAGES (runtime/env.c): advise the extents mapped from now on as
 * huge pages (the default) or not. */
void weft__arena_set_huge_pages(bool on);

void weft__arena_counters_read(weft__arena_counters *out);

#endif /* WEFT_RUNTIME_ALLOC_ARENA_H */
