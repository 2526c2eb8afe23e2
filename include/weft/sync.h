/*
 * weft/sync.h - synchronisation between tasks and plain threads: the oneshot
 * channel, the bounded and unbounded mpsc channels, notify, the mutex, rwlock
 * and semaphore, the broadcast and watch channels, barrier and wait group.
 *
 * Each primitive has its own header under weft/sync/, all included here.
 * weft/sync/common.h states the conventions every primitive follows
 * (values, handles, leaf structs, FIFO order, errors) and the cancellation
 * rule they share; each header states its own contract.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include "weft/sync/common.h"
#include "weft/sync/oneshot.h"
#include "weft/sync/mpsc.h"
#include "weft/sync/notify.h"
#include "weft/sync/mutex.h"
#include "weft/sync/rwlock.h"
#include "weft/sync/semaphore.h"
#include "weft/sync/broadcast.h"
#include "weft/sync/watch.h"
#include "weft/sync/barrier.h"
#include "weft/sync/waitgroup.h"

#endif /* WEFT_SYNC_H */
