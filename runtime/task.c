/*
 * runtime/task.c - allocating, freeing and waking tasks.
 *
 * A task is one allocation of WEFT__FRAME_OFFSET + frame_size bytes; the frame
 * is copied in at spawn and never moves. Freeing happens on the last reference,
 * from whichever thread drops it.
 */
#include "runtime/task.h"

#include <string.h>
#include <time.h>

#include "runtime/alloc.h"
#include "runtime/rt.h"
#include "runtime/token.h"
#include "runtime/worker.h"

/* Frames larger than this are almost certainly a size mix-up. */
#define MAX_FRAME_SIZE ((size_t)1 << 30)

uint64_t weft__monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void weft__cx_init(struct weft_cx *cx, weft__task *t, weft_worker *w)
{
    cx->head.state = (const uint64_t *)&t->state;
    cx->head.leaf = &t->leaf;
    cx->head.site = &t->suspended_at;
    cx->task = t;
    cx->worker = w;
    cx->budget = WEFT__COOP_BUDGET;
    cx->teardown = false;
}

weft__task *weft__task_new(weft_runtime *rt, const weft_task_desc *desc, bool joinable, int *err)
{
    if (!desc->poll || desc->frame_size < sizeof(weft_frame) || desc->frame_size > MAX_FRAME_SIZE
        || (desc->flags & ~(unsigned)(WEFT_TASK_CANCEL_SAFE | WEFT_TASK_SHIELDED))
        || desc->ntokens > WEFT_MAX_TASK_TOKENS || (desc->ntokens && !desc->tokens)) {
        *err = -EINVAL;
        return NULL;
    }
    for (unsigned i = 0; i < desc->ntokens; i++) {
        if (!desc->tokens[i]) {
            *err = -EINVAL;
            return NULL;
        }
    }
    size_t frame_end = (WEFT__FRAME_OFFSET + desc->frame_size + 7) & ~(size_t)7;
    size_t size = frame_end + desc->ntokens * sizeof(weft__binding);
    weft__task *t = weft__alloc(size);
    if (!t) {
        *err = -ENOMEM;
        return NULL;
    }
    memset(t, 0, WEFT__FRAME_OFFSET);
    atomic_init(&t->state, weft__state_initial(joinable, desc->flags & WEFT_TASK_CANCEL_SAFE));
    atomic_init(&t->cancel_requested_ns, 0);
    t->poll = desc->poll;
    t->rt = rt;
    t->drop = desc->drop;
    t->name = desc->name;
    t->alloc_size = (uint32_t)size;
    t->nbindings = (uint8_t)desc->ntokens;
    if (desc->flags & WEFT_TASK_SHIELDED) {
        t->shield_depth = 1;    /* an outermost shield that never ends */
        t->shield_started_ns = weft__monotonic_ns();
    }
    void *frame = weft__task_frame(t);
    if (desc->frame)
        memcpy(frame, desc->frame, desc->frame_size);
    else
        memset(frame, 0, desc->frame_size);
    ((weft_frame *)frame)->weft_resume = 0;
    return t;
}

struct weft__binding *weft__task_bindings(weft__task *t)
{
    return (weft__binding *)((char *)t + t->alloc_size) - t->nbindings;
}

void weft__task_bind_tokens(weft__task *t, const weft_task_desc *desc)
{
    weft__binding *b = weft__task_bindings(t);
    for (unsigned i = 0; i < t->nbindings; i++)
        weft__token_bind(&b[i], t, desc->tokens[i]);
}

void weft__task_unbind_tokens(weft__task *t)
{
    weft__binding *b = weft__task_bindings(t);
    for (unsigned i = 0; i < t->nbindings; i++)
        weft__token_unbind(&b[i]);
    t->nbindings = 0;
}

void weft__task_free(weft__task *t)
{
    weft__free(t, t->alloc_size);
}

void weft__task_unref(weft__task *t)
{
    if (weft__state_ref_dec(&t->state))
        weft__task_free(t);
}

void weft__task_wake_by_ref(weft__task *t)
{
    if (weft__state_notify_by_ref(&t->state) == WEFT__NOTIFY_SUBMIT)
        weft__schedule(t, false);
}

void weft__task_wake_by_val(weft__task *t)
{
    switch (weft__state_notify_by_val(&t->state)) {
    case WEFT__NOTIFY_SUBMIT:
        weft__schedule(t, false);
        break;
    case WEFT__NOTIFY_DEALLOC:
        weft__task_free(t);
        break;
    case WEFT__NOTIFY_NOTHING:
        break;
    }
}
