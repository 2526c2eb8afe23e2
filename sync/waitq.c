/*
 * sync/waitq.c - the out-of-line helpers of waitq.h and batch.h.
 */
#include "sync/waitq.h"

#include <stdio.h>
#include <stdlib.h>

#include "sync/batch.h"
#include "sync/lock.h"

void weft__defer_overflow(void)
{
    /* A bug in sync/, not a runtime condition: an operation collected more
     * wakers than it can cause. */
    fputs("weft: sync: deferred waker list overflow\n", stderr);
    abort();
}

void weft__wake_front(uint32_t *lock, weft_wait_list *list,
                      bool (*ready)(weft_wait_node *node, void *arg), void *arg)
{
    for (;;) {
        weft__batch b = { .n = 0 };
        unsigned moved = 0;
        weft_wait_node *head;
        while (moved < WEFT__BATCH_MAX && (head = list->weft_head) != NULL && ready(head, arg)) {
            weft__waitq_remove(list, head);
            head->weft_state = WEFT__WAIT_IDLE;
            weft__batch_add(&b, weft__wait_take_waker(head));
            moved++;
        }
        if (moved == 0)
            return;
        weft__unlock(lock);
        weft__batch_run(&b);
        weft__lock(lock);
    }
}

void weft__grant_front_unlock(uint32_t *lock, weft_wait_list *list,
                              bool (*grant)(weft_wait_node *node, void *arg), void *arg,
                              unsigned granted_state, weft__deferred *d)
{
    for (;;) {
        weft__batch b = { .n = 0 };
        weft_wait_node *head;
        while (!weft__batch_full(&b) && (head = list->weft_head) != NULL && grant(head, arg)) {
            weft__waitq_remove(list, head);
            head->weft_state = granted_state;
            weft__batch_add(&b, weft__wait_take_waker(head));
        }
        bool more = weft__batch_full(&b);
        weft__unlock(lock);
        weft__batch_run(&b);
        if (d) {
            weft__deferred_run(d);
            d = NULL;
        }
        if (!more)
            return;
        weft__lock(lock);
    }
}
