/*
 * reactor/op_table.c - the per-worker slab of operation records.
 *
 * Records come in chunks of OPS_PER_CHUNK that never move, so a record's
 * address is stable while the kernel holds its user_data. A slot is found
 * from user_data in O(1) (chunk = slot / OPS_PER_CHUNK). Freeing bumps the
 * generation, which makes every user_data naming the old use stale. Only the
 * owner (op.h, rule 1) calls these.
 */
#include <errno.h>
#include <string.h>

#include "reactor/op.h"
#include "runtime/alloc.h"

#define OPS_PER_CHUNK 256u
#define MAX_CHUNKS (1u << 16)   /* 16M records a worker: far beyond any SQ */

static int grow(weft__op_table *t)
{
    if (t->nchunks == MAX_CHUNKS)
        return -ENOMEM;
    size_t old = t->nchunks * sizeof *t->chunks;
    weft__op **chunks = weft__alloc(old + sizeof *t->chunks);
    if (!chunks)
        return -ENOMEM;
    weft__op *chunk = weft__calloc(OPS_PER_CHUNK * sizeof *chunk);
    if (!chunk) {
        weft__free(chunks, old + sizeof *t->chunks);
        return -ENOMEM;
    }
    if (old)
        memcpy(chunks, t->chunks, old);
    weft__free(t->chunks, old);
    t->chunks = chunks;
    uint32_t base = t->nchunks * OPS_PER_CHUNK;
    chunks[t->nchunks++] = chunk;
    for (uint32_t i = OPS_PER_CHUNK; i-- > 0;) {
        chunk[i].slot = base + i;
        chunk[i].next = t->free;
        t->free = &chunk[i];
    }
    return 0;
}

weft__op *weft__op_alloc(weft__op_table *t, weft__io *leaf, unsigned kind)
{
    if (!t->free && grow(t) != 0)
        return NULL;
    weft__op *op = t->free;
    t->free = op->next;
    op->next = op->prev = op->cancel_next = NULL;
    op->leaf = leaf;
    op->kind = (uint8_t)kind;
    op->where = WEFT__OP_QUEUED;
    op->cancel_sent = op->timed_out = op->handoff_taken = op->completed = false;
    weft__timer_init(&op->deadline, WEFT__TIMER_OP_DEADLINE);
    memset(&op->sqe, 0, sizeof op->sqe);
    t->live++;
    return op;
}

void weft__op_free(weft__op_table *t, weft__op *op)
{
    op->leaf = NULL;
    op->where = WEFT__OP_FREE;
    op->gen = (op->gen + 1) & WEFT__UD_GEN_MASK;
    op->next = t->free;
    t->free = op;
    t->live--;
}

weft__op *weft__op_lookup(weft__op_table *t, uint64_t ud)
{
    uint32_t slot = weft__ud_slot(ud), chunk = slot / OPS_PER_CHUNK;
    if (chunk >= t->nchunks)
        return NULL;
    weft__op *op = &t->chunks[chunk][slot % OPS_PER_CHUNK];
    if (op->where == WEFT__OP_FREE || op->gen != weft__ud_gen(ud))
        return NULL;
    return op;
}

void weft__op_for_each_live(weft__op_table *t, void (*fn)(weft__op *op, void *arg), void *arg)
{
    for (uint32_t c = 0; c < t->nchunks; c++)
        for (uint32_t i = 0; i < OPS_PER_CHUNK; i++)
            if (t->chunks[c][i].where != WEFT__OP_FREE)
                fn(&t->chunks[c][i], arg);
}

void weft__op_table_destroy(weft__op_table *t)
{
    for (uint32_t c = 0; c < t->nchunks; c++)
        weft__free(t->chunks[c], OPS_PER_CHUNK * sizeof *t->chunks[c]);
    weft__free(t->chunks, t->nchunks * sizeof *t->chunks);
    memset(t, 0, sizeof *t);
}
