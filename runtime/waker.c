/*
 * runtime/waker.c - weft_waker: clone, wake, drop (kinds described in waker.h).
 */
#include "runtime/waker.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime/task.h"

static inline bool is_thread(uintptr_t bits) { return bits & 1u; }
static inline bool is_hook(uintptr_t bits) { return bits & 2u; }
static inline bool is_task(uintptr_t bits) { return bits && !(bits & 3u); }

static void hook_wake(uintptr_t bits)
{
    weft__wake_hook *hook = (weft__wake_hook *)(bits & ~(uintptr_t)3);
    hook->on_wake(hook);
}

static void thread_wake(weft__thread_waiter *tw)
{
    /* Release: whatever the waker published before waking is visible to the
     * waiter once it sees woken == 1. After this store the waiter may return
     * and its stack may be reused; the syscall below only names the address. */
    atomic_store_explicit(&tw->woken, 1, memory_order_release);
    syscall(SYS_futex, &tw->woken, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

bool weft__thread_waiter_wait(weft__thread_waiter *tw, uint64_t deadline_ns)
{
    while (atomic_load_explicit(&tw->woken, memory_order_acquire) == 0) {
        struct timespec rel, *timeout = NULL;
        if (deadline_ns) {
            uint64_t now = weft__monotonic_ns();
            if (now >= deadline_ns)
                return false;
            rel.tv_sec = (time_t)((deadline_ns - now) / 1000000000u);
            rel.tv_nsec = (long)((deadline_ns - now) % 1000000000u);
            timeout = &rel;
        }
        syscall(SYS_futex, &tw->woken, FUTEX_WAIT_PRIVATE, 0, timeout, NULL, 0);
    }
    return true;
}

weft_waker weft_cx_waker(weft_cx *cx)
{
    if (!cx)
        return (weft_waker){ 0 };
    weft__task *t = cx->task;
    weft__state_ref_inc(&t->state);
    return (weft_waker){ .weft_bits = (uintptr_t)t };
}

weft_waker weft_waker_clone(const weft_waker *w)
{
    if (!w)
        return (weft_waker){ 0 };
    if (is_task(w->weft_bits))
        weft__state_ref_inc(&((weft__task *)w->weft_bits)->state);
    return *w;
}

void weft_waker_wake(weft_waker *w)
{
    if (!w)
        return;
    uintptr_t bits = w->weft_bits;
    w->weft_bits = 0;
    if (!bits)
        return;
    if (is_thread(bits))
        thread_wake((weft__thread_waiter *)(bits & ~(uintptr_t)1));
    else if (is_hook(bits))
        hook_wake(bits);
    else
        weft__task_wake_by_val((weft__task *)bits);
}

void weft_waker_wake_by_ref(const weft_waker *w)
{
    if (!w)
        return;
    uintptr_t bits = w->weft_bits;
    if (!bits)
        return;
    if (is_thread(bits))
        thread_wake((weft__thread_waiter *)(bits & ~(uintptr_t)1));
    else if (is_hook(bits))
        hook_wake(bits);
    else
        weft__task_wake_by_ref((weft__task *)bits);
}

void weft_waker_drop(weft_waker *w)
{
    if (!w)
        return;
    uintptr_t bits = w->weft_bits;
    w->weft_bits = 0;
    if (is_task(bits))
        weft__task_unref((weft__task *)bits);
}

bool weft_waker_will_wake(const weft_waker *w, weft_cx *cx)
{
    return cx && w && w->weft_bits == (uintptr_t)cx->task;
}
