/*
 * sync/waitq.c - the out-of-line helpers of waitq.h.
 */
#include "sync/waitq.h"

#include <stdio.h>
#include <stdlib.h>

void weft__defer_overflow(void)
{
    /* A bug in sync/, not a runtime condition: an operation collected more
     * wakers than it can cause. */
    fputs("weft: sync: deferred waker list overflow\n", stderr);
    abort();
}
