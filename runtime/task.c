/*
 * runtime/task.c - allocating, freeing and waking tasks.
 *
 * A task is one allocation: the optional parts its LAYOUT bits name and its
 * token bindings (task.h), the header, then frame_size bytes of frame, copied
 * in at spawn and never moved. Freeing happens on the last reference, from
 * whichever thread drops it.
 */
#include "runtime/task.h"

#include <string.h>
#include <time.h>

#include "runtime/alloc.h"
#include "runtime/dump.h"
#include "runtime/rt.h"
#include "runtime/token.h"
#include "runtime/trace.h"
#include "runtime/worker.h"

/* Frames larger than this are almost certainly a size mix-up. */
#define MAX_FRAME_SIZE ((size_t)1 << 30)

uint64_t weft__monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t weft__coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
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
    cx->yielded = false;
    cx->scope_stop = false;
}

/* Which optional parts a task spawned from desc needs (task.h). */
static uint64_t layout_for(const weft_task_desc *desc, bool joinable, bool task_times)
{
    uint64_t layout = 0;
    if (joinable)
        layout |= WEFT__HAS_JOIN;
    if (joinable || desc->ntokens || (desc->flags & WEFT_TASK_SHIELDED))
        layout |= WEFT__HAS_RECORD;
    if (desc->drop)
        layout |= WEFT__HAS_DROP;
    if (desc->name)
        layout |= WEFT__HAS_NAME;
    if (task_times)
        layout |= WEFT__HAS_TIMES;
    return layout;
}

/* The dump's times (task.h): spawned now, and the group the task joins, if
 * any (weft_group_spawn binds it to the group's token). */
static void init_times(weft__task *t, const weft_task_desc *desc)
{
    weft__task_times *tm = weft__task_times_of(t);
    tm->spawned_ns = weft__coarse_ns();
    atomic_init(&tm->polled_ns, 0);
    for (unsigned i = 0; i < desc->ntokens; i++)
        if (weft__token_source(desc->tokens[i]) == WEFT_CANCEL_GROUP)
            tm->group = (uintptr_t)desc->tokens[i];
}

/* Bytes before the header: the optional parts and nbindings bindings,
 * rounded so that the header, and the frame after it, stay max-aligned. */
static size_t prefix_size(uint64_t layout, unsigned nbindings)
{
    size_t parts = weft__task_part_offset(layout, WEFT__PARTS_END)
                 + nbindings * sizeof(weft__binding);
    return (parts + WEFT__FRAME_ALIGN - 1) & ~(size_t)(WEFT__FRAME_ALIGN - 1);
}

static bool desc_is_valid(const weft_task_desc *desc)
{
    if (!desc->poll || desc->frame_size < sizeof(weft_frame) || desc->frame_size > MAX_FRAME_SIZE
        || (desc->flags & ~(unsigned)(WEFT_TASK_CANCEL_SAFE | WEFT_TASK_SHIELDED))
        || desc->ntokens > WEFT_MAX_TASK_TOKENS || (desc->ntokens && !desc->tokens))
        return false;
    for (unsigned i = 0; i < desc->ntokens; i++)
        if (!desc->tokens[i])
            return false;
    return true;
}

static void set_part(weft__task *t, uint64_t layout, uint64_t part, const void *value,
                     size_t size)
{
    memcpy((char *)t - weft__task_part_offset(layout, part) - size, value, size);
}

weft__task *weft__task_new(weft_runtime *rt, const weft_task_desc *desc, bool joinable, int *err)
{
    if (!desc_is_valid(desc)) {
        *err = -EINVAL;
        return NULL;
    }
    uint64_t layout = layout_for(desc, joinable, rt->task_times);
    size_t prefix = prefix_size(layout, desc->ntokens);
    char *base = weft__alloc(prefix + WEFT__FRAME_OFFSET + desc->frame_size);
    if (!base) {
        *err = -ENOMEM;
        return NULL;
    }
    weft__task *t = (weft__task *)(base + prefix);
    memset(base, 0, prefix + WEFT__FRAME_OFFSET);
    atomic_init(&t->state,
                weft__state_initial(joinable, desc->flags & WEFT_TASK_CANCEL_SAFE, layout));
    t->poll = desc->poll;
    t->rt = rt;
    t->nbindings = (uint8_t)desc->ntokens;
    weft__cancel_record *rec = weft__task_record(t);
    if (rec)
        atomic_init(&rec->requested_ns, 0);
    if (desc->drop)
        set_part(t, layout, WEFT__HAS_DROP, &desc->drop, sizeof desc->drop);
    if (desc->name)
        set_part(t, layout, WEFT__HAS_NAME, &desc->name, sizeof desc->name);
    if (layout & WEFT__HAS_TIMES)
        init_times(t, desc);
    if (desc->flags & WEFT_TASK_SHIELDED)
        t->shield_depth = WEFT__SHIELD_STUCK;   /* a shield no exit ends */
    void *frame = weft__task_frame(t);
    if (desc->frame)
        memcpy(frame, desc->frame, desc->frame_size);
    else
        memset(frame, 0, desc->frame_size);
    ((weft_frame *)frame)->weft_resume = 0;
    ((weft_frame *)frame)->weft_reserved = 0;   /* no deadline scope open (reactor/scope.c) */
    return t;
}

struct weft__binding *weft__task_bindings(weft__task *t)
{
    uint64_t layout = weft__task_layout(t);
    return (weft__binding *)((char *)t - weft__task_part_offset(layout, WEFT__PARTS_END))
         - t->nbindings;
}

void weft__task_bind_tokens(weft__task *t, const weft_task_desc *desc)
{
    if (t->nbindings == 0)
        return;     /* most tasks: skip finding where bindings would start */
    weft__binding *b = weft__task_bindings(t);
    for (unsigned i = 0; i < t->nbindings; i++)
        weft__token_bind(&b[i], t, desc->tokens[i]);
}

void weft__task_unbind_tokens(weft__task *t)
{
    if (t->nbindings == 0)
        return;
    weft__binding *b = weft__task_bindings(t);
    for (unsigned i = 0; i < t->nbindings; i++)
        weft__token_unbind(&b[i]);
}

void weft__task_free(weft__task *t)
{
    if (__builtin_expect(weft__dump_keeps(t), 0))
        return;     /* a task dump may be reading it: freed when it ends */
    weft__task_free_now(t);
}

size_t weft__task_frame_room(weft__task *t)
{
    size_t prefix = prefix_size(weft__task_layout(t), t->nbindings);
    return weft__alloc_usable((char *)t - prefix) - prefix - WEFT__FRAME_OFFSET;
}

void weft__task_free_now(weft__task *t)
{
    /* nbindings is still the spawn's count: unbinding leaves it alone. */
    size_t prefix = prefix_size(weft__task_layout(t), t->nbindings);
    weft__free_unsized((char *)t - prefix);
}

void weft__task_unref(weft__task *t)
{
    if (weft__state_ref_dec(&t->state))
        weft__task_free(t);
}

/* A wake is traced only when it queues the task: a complete task's runtime
 * may be gone (rt.h), and one that is running or queued already has its
 * next poll coming anyway. */
void weft__task_wake_by_ref(weft__task *t)
{
    if (weft__state_notify_by_ref(&t->state) == WEFT__NOTIFY_SUBMIT) {
        weft__trace_task(t, WEFT__TR_WAKE, 0);
        weft__schedule(t, false);
    }
}

void weft__task_wake_by_val(weft__task *t)
{
    switch (weft__state_notify_by_val(&t->state)) {
    case WEFT__NOTIFY_SUBMIT:
        weft__trace_task(t, WEFT__TR_WAKE, 0);
        weft__schedule(t, false);
        break;
    case WEFT__NOTIFY_DEALLOC:
        weft__task_free(t);
        break;
    case WEFT__NOTIFY_NOTHING:
        break;
    }
}
