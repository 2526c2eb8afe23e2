/*
 * sync/mpsc_unbounded.c - the sending side of the unbounded mpsc channel. It
 * shares the channel object and the receiver with the bounded kind (chan.c);
 * here sends never wait, and a full buffer is doubled instead.
 *
 * Growing allocates outside the lock: a sender that finds the buffer full
 * notes its capacity, unlocks, allocates twice that, relocks and installs the
 * new buffer only if nobody grew it meanwhile, then retries. The buffer that
 * lost (old or unused new) is freed after unlocking. Values keep their order:
 * the ring is copied oldest first to the start of the new buffer.
 */
#include <errno.h>
#include <string.h>

#include "runtime/alloc.h"
#include "sync/chan.h"
#include "sync/lock.h"

#define INITIAL_CAPACITY 64

int weft_mpsc_unbounded_new(weft_mpsc_unbounded_tx *tx, weft_mpsc_rx *rx)
{
    if (!tx || !rx)
        return -EINVAL;
    int err;
    weft__chan *c = weft__chan_new(false, INITIAL_CAPACITY, &err);
    if (!c)
        return err;
    tx->weft_chan = c;
    rx->weft_chan = c;
    return 0;
}

int weft_mpsc_unbounded_tx_clone(weft_mpsc_unbounded_tx *dst, const weft_mpsc_unbounded_tx *src)
{
    if (!dst || !src || !src->weft_chan || src->weft_chan->bounded)
        return -EINVAL;
    return weft__chan_tx_clone(&dst->weft_chan, src->weft_chan);
}

int weft_mpsc_unbounded_tx_drop(weft_mpsc_unbounded_tx *tx)
{
    return tx ? weft__chan_tx_drop(&tx->weft_chan) : -EINVAL;
}

/* Copy the ring, oldest first, into `to`. Lock held. */
static void unwrap_into(const weft__chan *c, uint64_t *to)
{
    size_t first = c->cap - c->head;
    if (first > c->len)
        first = c->len;
    memcpy(to, c->buf + c->head, first * sizeof(uint64_t));
    memcpy(to + first, c->buf, (c->len - first) * sizeof(uint64_t));
}

/* Make the buffer bigger than old_cap. 0, or -ENOMEM (nothing changed). */
static int grow(weft__chan *c, size_t old_cap)
{
    if (old_cap > SIZE_MAX / 2 / sizeof(uint64_t))
        return -ENOMEM;
    size_t new_cap = old_cap * 2;
    uint64_t *spare = weft__alloc(new_cap * sizeof(uint64_t));
    if (!spare)
        return -ENOMEM;
    size_t spare_cap = new_cap;
    weft__lock(&c->lock);
    if (c->cap == old_cap) {
        unwrap_into(c, spare);
        uint64_t *old = c->buf;
        c->buf = spare;
        c->cap = new_cap;
        c->head = 0;
        spare = old;
        spare_cap = old_cap;
    }
    weft__unlock(&c->lock);
    weft__free(spare, spare_cap * sizeof(uint64_t));
    return 0;
}

int weft_mpsc_unbounded_send(weft_mpsc_unbounded_tx *tx, uint64_t value)
{
    if (!tx || !tx->weft_chan)
        return -EINVAL;
    weft__chan *c = tx->weft_chan;
    for (;;) {
        weft__chan_after a = WEFT__CHAN_AFTER_INIT;
        int r = 0;
        size_t full_cap = 0;
        weft__lock(&c->lock);
        if (c->rx_closed)
            r = -EPIPE;
        else if (c->len < c->cap)
            weft__chan_push_locked(c, value, &a);
        else
            full_cap = c->cap;
        weft__chan_unlock(c, &a);
        if (!full_cap)
            return r;
        if ((r = grow(c, full_cap)) < 0)
            return r;
    }
}
