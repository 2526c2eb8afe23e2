/*
 * tests/core/test_alloc_arena.c - the jemalloc arenas workers allocate from
 * (runtime/alloc_arena.h): workers use them and other threads do not, a
 * runtime made after another reuses its arenas, their metadata and their
 * task-memory extents of 2 MiB or more are advised as huge pages unless
 * WEFT_HUGEPAGES=0, and memory freed into them goes back to the kernel
 * through their purge hooks. Builds without jemalloc (the sanitizer builds) have no
 * such arenas: the tests skip there.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core_util.h"
#include "runtime/alloc.h"
#include "runtime/alloc_arena.h"
#include "weft_config.h"

#if WEFT_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

TestSuite(alloc_arena, .timeout = 60);

#define SKIP_WITHOUT_JEMALLOC()                                                \
    do {                                                                       \
        if (!WEFT_HAVE_JEMALLOC)                                               \
            cr_skip_test("no jemalloc in this build: weft uses libc malloc");  \
    } while (0)

/* The jemalloc arena `p` came from. */
static unsigned arena_of(void *p)
{
    unsigned arena = UINT32_MAX;
#if WEFT_HAVE_JEMALLOC
    size_t len = sizeof arena;
    cr_assert_eq(mallctl("arenas.lookup", &arena, &len, &p, sizeof p), 0);
#else
    (void)p;
#endif
    return arena;
}

static unsigned arena_count(void)
{
    unsigned n = 0;
#if WEFT_HAVE_JEMALLOC
    size_t len = sizeof n;
    cr_assert_eq(mallctl("arenas.narenas", &n, &len, NULL, 0), 0);
#endif
    return n;
}

/* ---- a root task that allocates on its worker ----------------------------- */

/* Past the tcache: arena extents; 4 MiB in all, more than the arena's first
 * extent, so the arena grows by at least one extent of 2 MiB or more. */
enum { BIG_BLOCKS = 64, BIG_BLOCK = 64 << 10 };

struct alloc_probe {
    weft_frame f;
    unsigned arena;             /* where a small allocation came from */
    bool purge;                 /* also free big blocks and purge the arena */
};

static void allocate_and_purge(struct alloc_probe *t)
{
    void *blocks[BIG_BLOCKS];
    for (int i = 0; i < BIG_BLOCKS; i++) {
        blocks[i] = weft__alloc(BIG_BLOCK);
        cr_assert_not_null(blocks[i]);
        memset(blocks[i], 1, BIG_BLOCK);       /* make it resident */
    }
    for (int i = 0; i < BIG_BLOCKS; i++)
        weft__free(blocks[i], BIG_BLOCK);
#if WEFT_HAVE_JEMALLOC
    char name[64];
    snprintf(name, sizeof name, "arena.%u.purge", t->arena);
    cr_assert_eq(mallctl(name, NULL, NULL, NULL, 0), 0);
#else
    (void)t;
#endif
}

static weft_poll alloc_probe_poll(weft_cx *cx, void *p)
{
    struct alloc_probe *t = p;
    WEFT_BEGIN(&t->f);
    void *small = weft__alloc(200);
    cr_assert_not_null(small);
    t->arena = arena_of(small);
    weft__free(small, 200);
    if (t->purge)
        allocate_and_purge(t);
    WEFT_RETURN(&t->f, t->arena);
    WEFT_END(&t->f);
}

static unsigned probe(weft_runtime *rt, bool purge)
{
    struct alloc_probe fr = { .purge = purge };
    weft_task_desc d = { .poll = alloc_probe_poll, .frame = &fr, .frame_size = sizeof fr };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    cr_assert_eq(out.status, 0);
    return (unsigned)out.value;     /* block_on copies the frame: the value carries it */
}

Test(alloc_arena, a_worker_allocates_from_a_weft_arena_and_other_threads_do_not)
{
    SKIP_WITHOUT_JEMALLOC();
    weft_runtime *rt = rt_make(2, 0);
    unsigned worker_arena = probe(rt, false);
    cr_assert(weft__arena_is_weft(worker_arena), "a worker allocated from arena %u",
              worker_arena);

    void *outside = weft__alloc(200);
    cr_assert_not_null(outside);
    cr_assert_not(weft__arena_is_weft(arena_of(outside)),
                  "a plain thread allocated from weft's arena");
    weft__free(outside, 200);
    rt_done(rt);
}

Test(alloc_arena, a_later_runtime_reuses_the_arenas_of_an_earlier_one)
{
    SKIP_WITHOUT_JEMALLOC();
    weft_runtime *rt = rt_make(2, 0);
    unsigned first = probe(rt, false);
    rt_done(rt);
    unsigned arenas = arena_count();

    for (int i = 0; i < 3; i++) {
        rt = rt_make(2, 0);
        cr_assert_eq(probe(rt, false), first);
        rt_done(rt);
    }
    cr_assert_eq(arena_count(), arenas, "each runtime made a new arena");
}

Test(alloc_arena, workers_share_an_arena_in_groups_of_four)
{
    SKIP_WITHOUT_JEMALLOC();
    int first = weft__arena_for_worker(0);
    cr_assert_geq(first, 0);
    cr_assert_eq(weft__arena_for_worker(3), first);
    int second = weft__arena_for_worker(4);
    cr_assert_geq(second, 0);
    cr_assert_neq(second, first);
    cr_assert_eq(weft__arena_for_worker(7), second);
    cr_assert(weft__arena_is_weft((unsigned)second));
}

/* The VmFlags line of the mapping in /proc/self/smaps that holds `addr`. */
static bool mapping_flags(void *addr, char *flags, size_t size)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    cr_assert_not_null(f);
    char line[512];
    bool inside = false, found = false;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
        else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(flags, size, "%s", line + 8);
            found = true;
        }
    }
    fclose(f);
    return found;
}

static bool kernel_has_thp(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f)
        return false;
    char mode[128] = "";
    bool usable = fgets(mode, sizeof mode, f) && !strstr(mode, "[never]");
    fclose(f);
    return usable;
}

Test(alloc_arena, arena_metadata_is_advised_as_huge_pages)
{
    SKIP_WITHOUT_JEMALLOC();
    weft_runtime *rt = rt_make(2, 0);
    probe(rt, false);
    weft__arena_counters c;
    weft__arena_counters_read(&c);
    cr_assert_geq(c.metadata_blocks, 1, "no metadata block went through the hooks");
    cr_assert_not_null(c.last_metadata_block);
    cr_assert_eq((uintptr_t)c.last_metadata_block % (2u << 20), 0,
                 "a metadata block is not 2 MiB-aligned");
    if (kernel_has_thp()) {
        char flags[512];
        cr_assert(mapping_flags(c.last_metadata_block, flags, sizeof flags),
                  "the metadata block is not mapped");
        cr_assert(strstr(flags, " hg") != NULL, "no MADV_HUGEPAGE on it: VmFlags%s", flags);
    }
    rt_done(rt);
}

Test(alloc_arena, freed_memory_goes_back_to_the_kernel_through_the_purge_hooks)
{
    SKIP_WITHOUT_JEMALLOC();
    weft_runtime *rt = rt_make(1, 0);
    weft__arena_counters before, after;
    weft__arena_counters_read(&before);
    probe(rt, true);
    weft__arena_counters_read(&after);
    cr_assert_geq(after.purged_bytes - before.purged_bytes, (size_t)BIG_BLOCKS * BIG_BLOCK,
                  "purged %zu bytes of %d freed",
                  after.purged_bytes - before.purged_bytes, BIG_BLOCKS * BIG_BLOCK);
    rt_done(rt);
}

/* The mapping holding addr is advised as huge pages (VmFlags "hg"), where the
 * kernel has THP at all. */
static bool advised_huge(void *addr)
{
    char flags[512];
    cr_assert(mapping_flags(addr, flags, sizeof flags), "%p is not mapped", addr);
    return strstr(flags, " hg") != NULL;
}

Test(alloc_arena, task_memory_extents_are_advised_as_huge_pages)
{
    SKIP_WITHOUT_JEMALLOC();
    unsetenv("WEFT_HUGEPAGES");
    weft_runtime *rt = rt_make(1, 0);
    probe(rt, true);
    weft__arena_counters c;
    weft__arena_counters_read(&c);
    cr_assert_geq(c.huge_extents, 1, "no extent of 2 MiB or more was advised");
    cr_assert_eq((uintptr_t)c.last_huge_extent % (2u << 20), 0,
                 "a huge-page extent is not 2 MiB-aligned");
    if (kernel_has_thp())
        cr_assert(advised_huge(c.last_huge_extent), "no MADV_HUGEPAGE on the extent");
    rt_done(rt);
}

Test(alloc_arena, weft_hugepages_0_maps_everything_in_base_pages)
{
    SKIP_WITHOUT_JEMALLOC();
    setenv("WEFT_HUGEPAGES", "0", 1);   /* this test's own process (Criterion forks) */
    weft_runtime *rt = rt_make(1, 0);
    probe(rt, true);
    weft__arena_counters c;
    weft__arena_counters_read(&c);
    cr_assert_eq(c.huge_extents, 0, "%zu extents advised with WEFT_HUGEPAGES=0",
                 c.huge_extents);
    cr_assert_geq(c.metadata_blocks, 1);
    if (kernel_has_thp())
        cr_assert_not(advised_huge(c.last_metadata_block),
                      "metadata advised as huge pages with WEFT_HUGEPAGES=0");
    rt_done(rt);
}
