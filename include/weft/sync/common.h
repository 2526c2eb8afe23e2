/*
 * weft/sync/common.h - what every primitive of weft/sync.h shares: value
 * helpers, the waiter node embedded in leaf structs, and these conventions.
 *
 * Conventions shared by every primitive:
 *
 *  - Values are uint64_t. A pointer travels as weft_value_from_ptr(p) and comes
 *    back with weft_value_to_ptr(v). A value is plain data: a channel that is
 *    dropped with values still queued reports how many it discarded, it does
 *    not free what they point to.
 *  - Handles (weft_oneshot_tx/rx, weft_mpsc_tx/rx, ...) are small caller-owned
 *    structs pointing at one shared object, allocated once at creation. Every
 *    handle must be given up with its *_drop function (or, for a oneshot
 *    sender, by sending); the last one frees the shared object. Copies of a
 *    handle are not tracked: use *_clone for another sender. A handle must
 *    not be dropped while an await started through it is in flight (the
 *    leaf and its withdrawal hook still use the channel).
 *  - Leaf structs (weft_mpsc_permit, weft_mpsc_send_op, weft_notify_waiter)
 *    live in the waiting task's frame and contain its waiter node, so waiting
 *    never allocates. They must start zeroed ({0}, designated initialisers, or
 *    the *_INIT macros) and are back in that idle state whenever no operation
 *    is in flight on them. Never copy or reuse one while an operation is in
 *    flight on it.
 *  - Waiters are served in FIFO order. Each shared object has one internal lock
 *    (a futex mutex that spins briefly before sleeping); waiter nodes are
 *    linked and unlinked only under it, and no waker is woken while it is held.
 *    The oneshot, which has at most one waiter, has no lock: one atomic state
 *    word orders its sender and receiver.
 *  - Only the functions returning weft_poll suspend a task; they are the
 *    cancellation points and each states its contract. The *_blocking calls
 *    block a plain thread (never a worker). Everything else (send, try_*,
 *    close, drop, notify) never waits and is callable from any thread.
 *  - Errors: -EINVAL for misuse (NULL, an empty handle, a leaf in the wrong
 *    state), -EPIPE when the other side has gone or closed, -EAGAIN when a try_
 *    call would have to wait, -ENOMEM, -EBUSY when a second receive would wait
 *    on the same receiver, -EDEADLK for a *_blocking call made on a worker
 *    thread. An await also yields -ECANCELED when its task is cancelled.
 *
 * Cancellation (docs/cancellation.md, "Sync primitives"). Any await below can be withdrawn
 * (abort, token, timeout, select loss, runtime shutdown). The common rule:
 *
 *  - A wait that is still queued when it is withdrawn leaves nothing behind: it
 *    is unlinked, nothing was consumed, the next waiter loses no wake-up, and
 *    the await yields -ECANCELED.
 *  - A wait whose outcome was already decided (a message is there, a permit or
 *    a delivery was handed to it, the channel closed) reports that outcome: its
 *    withdrawal hook answers WEFT_WITHDRAW_RACED and the await yields the real
 *    result, so nothing handed over is lost. Receives never hold a value in
 *    the leaf (it is taken only by the poll that returns it), so a task torn
 *    down instead of resumed leaves the message in the channel.
 *  - Two deliberate exceptions, written at the functions concerned: a notify
 *    wait chosen by weft_notify_one passes the notification on, and a permit
 *    granted to a task that is being torn down goes to the next waiter.
 */
#ifndef WEFT_SYNC_COMMON_H
#define WEFT_SYNC_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/task.h"

#ifdef __cplusplus
extern "C" {
#endif

static inline uint64_t weft_value_from_ptr(const void *p) { return (uint64_t)(uintptr_t)p; }
static inline void *weft_value_to_ptr(uint64_t v) { return (void *)(uintptr_t)v; }

/* ---- Waiter nodes (embedded in leaf structs; all fields private) ---------- */

typedef struct weft_wait_node {
    /* private: linked under the owning primitive's lock */
    struct weft_wait_node *weft_prev;
    struct weft_wait_node *weft_next;
    weft_waker weft_wake;
    uint32_t weft_state;        /* per-primitive; 0 = idle */
    uint32_t weft_reserved;
} weft_wait_node;

typedef struct weft_wait_list {
    /* private */
    weft_wait_node *weft_head;
    weft_wait_node *weft_tail;
} weft_wait_list;

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SYNC_COMMON_H */
