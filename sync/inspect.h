/*
 * sync/inspect.h - read-only views into sync primitives, for tests that must
 * wait until a task is really queued before acting. Each takes the
 * primitive's lock; the answer may change as soon as it returns.
 */
#ifndef WEFT_SYNC_INSPECT_H
#define WEFT_SYNC_INSPECT_H

#include <stdbool.h>
#include <stddef.h>

#include "weft/sync.h"

size_t weft__notify_waiters(weft_notify *n);
size_t weft__mpsc_send_waiters(const weft_mpsc_tx *tx);
bool weft__mpsc_rx_waiting(const weft_mpsc_rx *rx);
bool weft__oneshot_rx_waiting(const weft_oneshot_rx *rx);

#endif /* WEFT_SYNC_INSPECT_H */
