/*
 * runtime/inject.c - the inject queue (see inject.h).
 *
 * `len` changes under the lock; its seq_cst updates pair with the seq_cst
 * accesses of the idle state so that a push followed by "is anyone searching?"
 * cannot miss a worker that is going to sleep (idle.c explains the protocol).
 */
#include "runtime/inject.h"

#include "runtime/task.h"

void weft__inject_init(weft__inject *q)
{
    q->head = q->tail = NULL;
    atomic_init(&q->len, 0);
    weft__spin_init(&q->lock);
}

void weft__inject_push_batch(weft__inject *q, weft__task *first, weft__task *last, size_t n)
{
    last->queue_next = NULL;
    weft__spin_lock(&q->lock);
    if (q->tail)
        q->tail->queue_next = first;
    else
        q->head = first;
    q->tail = last;
    atomic_fetch_add_explicit(&q->len, n, memory_order_seq_cst);
    weft__spin_unlock(&q->lock);
}

void weft__inject_push(weft__inject *q, weft__task *t)
{
    weft__inject_push_batch(q, t, t, 1);
}

weft__task *weft__inject_pop_batch(weft__inject *q, size_t max, size_t *n)
{
    *n = 0;
    if (max == 0 || weft__inject_len(q) == 0)
        return NULL;
    weft__spin_lock(&q->lock);
    weft__task *first = q->head, *last = NULL, *cur = first;
    size_t got = 0;
    while (cur && got < max) {
        last = cur;
        cur = cur->queue_next;
        got++;
    }
    q->head = cur;
    if (!cur)
        q->tail = NULL;
    if (got)
        atomic_fetch_sub_explicit(&q->len, got, memory_order_seq_cst);
    weft__spin_unlock(&q->lock);
    if (last)
        last->queue_next = NULL;
    *n = got;
    return got ? first : NULL;
}

weft__task *weft__inject_pop(weft__inject *q)
{
    size_t n;
    return weft__inject_pop_batch(q, 1, &n);
}
