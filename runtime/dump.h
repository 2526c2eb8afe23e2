/*
 * runtime/dump.h - how the task dump (runtime/dump.c) reads tasks that other
 * threads may complete and free meanwhile, without a lock or a fence on the
 * spawn and completion paths.
 *
 * A task is freed on its last reference, which comes after the registry
 * dropped its own (registry.h): so by the time anyone frees a task, its
 * shard owner has overwritten the task's slot and then done a
 * read-modify-write on the task's state word, and the freer has done one
 * after it. The dump announces itself first (`weft__dump_readers`, a
 * seq_cst increment) and reads the slots after. So:
 *   1. A freer that reads `weft__dump_readers` == 0 after its own state
 *      RMW (and the fence below) frees at once: any dump that has not
 *      announced itself yet will find the slot overwritten, because the
 *      slot was stored before that RMW.
 *   2. A freer that sees a dump announced hands the task over instead
 *      (weft__dump_defer): under `dump_lock` it rechecks, and either queues
 *      it for the last dump to free when it leaves, or frees it itself when
 *      the dumps have all left meanwhile.
 * The fence: on x86 the state RMW that precedes every free is a locked
 * instruction, a full barrier, so only the compiler needs holding back; on
 * other targets a seq_cst fence. The check is process-wide (not per
 * runtime) because a task may be freed after its runtime, by a join handle
 * or a waker that outlived it.
 */
#ifndef WEFT_RUNTIME_DUMP_H
#define WEFT_RUNTIME_DUMP_H

#include <stdatomic.h>
#include <stdbool.h>

struct weft__task;

extern _Atomic unsigned weft__dump_readers;

/* Rule 2: keep t for the dump under way; false if it must be freed now. */
bool weft__dump_defer(struct weft__task *t);

/* True when a dump may be reading t: then it is freed by the dump. */
static inline bool weft__dump_keeps(struct weft__task *t)
{
#if defined(__x86_64__) || defined(__i386__)
    atomic_signal_fence(memory_order_seq_cst);
#else
    atomic_thread_fence(memory_order_seq_cst);
#endif
    /* Acquire: a dump that read t and has left (its decrement releases)
     * happens before the free (a plain load on x86 too). */
    if (atomic_load_explicit(&weft__dump_readers, memory_order_acquire) == 0)
        return false;
    return weft__dump_defer(t);
}

#endif /* WEFT_RUNTIME_DUMP_H */
