/*
 * tests/core/test_queue.c - the local run queue (runtime/queue.h), single
 * threaded: order, length, overflow into the inject queue, steal, wrap-around.
 * The queue stores only pointers (and links overflow through queue_next), so
 * the "tasks" here are zeroed weft__task structs numbered through `value`.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "runtime/inject.h"
#include "runtime/queue.h"
#include "runtime/task.h"
#include "test_util.h"

#define NTASKS 1024

static weft__task *tasks;
static weft__local_queue *qa, *qb;
static weft__inject inj;

static void setup(void)
{
    tasks = calloc(NTASKS, sizeof *tasks);
    for (int i = 0; i < NTASKS; i++)
        tasks[i].value = i;
    /* The queue is cache-line aligned. */
    qa = aligned_alloc(64, sizeof *qa);
    qb = aligned_alloc(64, sizeof *qb);
    weft__local_init(qa);
    weft__local_init(qb);
    weft__inject_init(&inj);
}

static void teardown(void)
{
    free(qa);
    free(qb);
    free(tasks);
}

TestSuite(queue, .init = setup, .fini = teardown, .timeout = 30);

static weft__task *T(int i) { return &tasks[i]; }

static void push_ok(weft__local_queue *q, int i)
{
    cr_assert_eq(weft__local_push(q, T(i), &inj), WEFT__PUSH_LOCAL, "push %d", i);
}

static int pop_id(weft__local_queue *q)
{
    weft__task *t = weft__local_pop(q);
    return t ? (int)t->value : -1;
}

/* Overwrite the head word to fake a steal in progress (white box). */
static void set_head(weft__local_queue *q, uint32_t steal, uint32_t real)
{
    atomic_store(&q->head, ((uint64_t)steal << 32) | real);
}

Test(queue, empty_pop_and_len)
{
    cr_assert_eq(weft__local_len(qa), 0);
    cr_assert_null(weft__local_pop(qa));
    cr_assert_null(weft__local_pop(qa));
    cr_assert(weft__local_has_steal_room(qa));
    cr_assert_eq(weft__inject_len(&inj), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(queue, push_pop_fifo)
{
    for (int i = 0; i < 10; i++) {
        push_ok(qa, i);
        cr_assert_eq(weft__local_len(qa), (uint32_t)i + 1);
    }
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(pop_id(qa), i);
        cr_assert_eq(weft__local_len(qa), 9u - (uint32_t)i);
    }
    cr_assert_eq(pop_id(qa), -1);
    /* Interleaved. */
    push_ok(qa, 100);
    push_ok(qa, 101);
    cr_assert_eq(pop_id(qa), 100);
    push_ok(qa, 102);
    cr_assert_eq(pop_id(qa), 101);
    cr_assert_eq(pop_id(qa), 102);
    cr_assert_eq(pop_id(qa), -1);
    WEFT_ASSERT_NO_LEAKS();
}

Test(queue, fill_to_capacity_then_overflow_half_plus_one)
{
    for (int i = 0; i < 256; i++)
        push_ok(qa, i);
    cr_assert_eq(weft__local_len(qa), 256);
    cr_assert_eq(weft__inject_len(&inj), 0);

    cr_assert_eq(weft__local_push(qa, T(256), &inj), WEFT__PUSH_OVERFLOWED);
    cr_assert_eq(weft__local_len(qa), 128);
    cr_assert_eq(weft__inject_len(&inj), 129);

    /* The oldest half went to inject in order, then the pushed task. */
    for (int i = 0; i < 128; i++) {
        weft__task *t = weft__inject_pop(&inj);
        cr_assert_not_null(t);
        cr_assert_eq(t->value, i);
    }
    weft__task *t = weft__inject_pop(&inj);
    cr_assert_not_null(t);
    cr_assert_eq(t->value, 256);
    cr_assert_null(weft__inject_pop(&inj));
    cr_assert_eq(weft__inject_len(&inj), 0);

    /* The newer half stayed local, in order. */
    for (int i = 128; i < 256; i++)
        cr_assert_eq(pop_id(qa), i);
    cr_assert_eq(pop_id(qa), -1);
    WEFT_ASSERT_NO_LEAKS();
}

Test(queue, repeated_overflow_loses_nothing)
{
    static unsigned seen[NTASKS];
    memset(seen, 0, sizeof seen);
    int overflows = 0;
    for (int i = 0; i < NTASKS; i++) {
        weft__push_outcome o = weft__local_push(qa, T(i), &inj);
        cr_assert(o == WEFT__PUSH_LOCAL || o == WEFT__PUSH_OVERFLOWED);
        overflows += o == WEFT__PUSH_OVERFLOWED;
        cr_assert_leq(weft__local_len(qa), 256);
    }
    /* 1024 pushes: overflow at 257 (leaves 128), then every 129 pushes. */
    cr_assert_eq(overflows, 6);
    cr_assert_eq(weft__local_len(qa) + weft__inject_len(&inj), NTASKS);
    weft__task *t;
    while ((t = weft__local_pop(qa)) != NULL)
        seen[t->value]++;
    while ((t = weft__inject_pop(&inj)) != NULL)
        seen[t->value]++;
    for (int i = 0; i < NTASKS; i++)
        cr_assert_eq(seen[i], 1, "task %d seen %u times", i, seen[i]);
    WEFT_ASSERT_NO_LEAKS();
}

Test(queue, push_while_steal_in_progress_goes_to_inject)
{
    for (int i = 0; i < 256; i++)
        push_ok(qa, i);
    /* A thief claimed [0, 128) and is still copying. */
    set_head(qa, 0, 128);
    cr_assert_eq(weft__local_push(qa, T(300), &inj), WEFT__PUSH_INJECTED);
    cr_assert_eq(weft__inject_len(&inj), 1);
    cr_assert_eq(weft__inject_pop(&inj), T(300));
    /* The owner can still pop past the thief's range. */
    cr_assert_eq(pop_id(qa), 128);
    /* A second thief is refused while the first copies. */
    cr_assert_null(weft__local_steal(qa, qb));
    cr_assert_eq(weft__local_len(qb), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(queue, steal_takes_half_and_returns_one)
{
    for (int i = 0; i < 10; i++)
        push_ok(qa, i);
    weft__task *t = weft__local_steal(qa, qb);
    /* Half (rounded up) = 5: the oldest five; the last of them is returned,
     * the other four land in the thief's queue. */
    cr_assert_not_null(t);
    cr_assert_eq(t->value, 4);
    cr_assert_eq(weft__local_len(qa), 5);
    cr_assert_eq(weft__local_len(qb), 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pop_id(qb), i);
    cr_assert_eq(pop_id(qb), -1);
    for (int i = 5; i < 10; i++)
        cr_assert_eq(pop_id(qa), i);
    /* The steal finished: the owner can fill the whole ring again. */
    for (int i = 0; i < 256; i++)
        push_ok(qa, i);
    cr_assert_eq(weft__local_len(qa), 256);
    WEFT_ASSERT_NO_LEAKS();
}

Test(queue, steal_sizes)
{
    /* len -> (returned, left in src, moved to dst) */
    static const struct { int len, ret, left, moved; } cases[] = {
        { 1, 0, 0, 0 }, { 2, 0, 1, 0 }, { 3, 1, 1, 1 }, { 256, 127, 128, 127 },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        weft__local_init(qa);
        weft__local_init(qb);
        for (int i = 0; i < cases[c].len; i++)
            push_ok(qa, i);
        weft__task *t = weft__local_steal(qa, qb);
        cr_assert_not_null(t, "len %d", cases[c].len);
        cr_assert_eq(t->value, cases[c].ret, "len %d", cases[c].len);
        cr_assert_eq(weft__local_len(qa), (uint32_t)cases[c].left, "len %d", cases[c].len);
        cr_assert_eq(weft__local_len(qb), (uint32_t)cases[c].moved, "len %d", cases[c].len);
    }
    WEFT_ASSERT_NO_LEAKS();
}

Test(queue, steal_from_empty)
{
    cr_assert_null(weft__local_steal(qa, qb));
    cr_assert_eq(weft__local_len(qa), 0);
    cr_assert_eq(weft__local_len(qb), 0);
    /* Emptied again after use. */
    push_ok(qa, 1);
    cr_assert_eq(pop_id(qa), 1);
    cr_assert_null(weft__local_steal(qa, qb));
    WEFT_ASSERT_NO_LEAKS();
}

Test(queue, steal_refused_when_thief_over_half_full)
{
    for (int i = 0; i < 10; i++)
        push_ok(qa, i);
    for (int i = 0; i < 129; i++)
        push_ok(qb, 100 + i);
    cr_assert_not(weft__local_has_steal_room(qb));
    cr_assert_null(weft__local_steal(qa, qb));
    cr_assert_eq(weft__local_len(qa), 10);
    cr_assert_eq(weft__local_len(qb), 129);

    /* Exactly half full is still allowed, and the thief never overflows. */
    cr_assert_eq(pop_id(qb), 100);
    cr_assert(weft__local_has_steal_room(qb));
    weft__task *t = weft__local_steal(qa, qb);
    cr_assert_not_null(t);
    cr_assert_eq(t->value, 4);
    cr_assert_eq(weft__local_len(qb), 132);
    cr_assert_eq(weft__inject_len(&inj), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(queue, steal_into_full_half_ring)
{
    /* The thief holds 128 (allowed) and takes 128 (a full victim): it ends
     * with 255 queued + 1 returned, never more than the ring holds. */
    for (int i = 0; i < 256; i++)
        push_ok(qa, i);
    for (int i = 0; i < 128; i++)
        push_ok(qb, 300 + i);
    weft__task *t = weft__local_steal(qa, qb);
    cr_assert_not_null(t);
    cr_assert_eq(t->value, 127);
    cr_assert_eq(weft__local_len(qb), 255);
    for (int i = 0; i < 128; i++)
        cr_assert_eq(pop_id(qb), 300 + i);
    for (int i = 0; i < 127; i++)
        cr_assert_eq(pop_id(qb), i);
    cr_assert_eq(pop_id(qb), -1);
    for (int i = 128; i < 256; i++)
        cr_assert_eq(pop_id(qa), i);
    WEFT_ASSERT_NO_LEAKS();
}

Test(queue, indices_wrap_around_many_times)
{
    /* 40000 cycles of 1..200 pushes move the indices through the ring
     * thousands of times; every task comes back once, in order. */
    uint32_t next_push = 0, next_pop = 0, seed = 12345;
    for (int cycle = 0; cycle < 40000; cycle++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t n = 1 + (seed >> 16) % 200;
        for (uint32_t i = 0; i < n; i++) {
            push_ok(qa, (int)(next_push % NTASKS));
            next_push++;
        }
        if (cycle % 7 == 3) {
            /* A steal now and then, drained at once. */
            weft__task *t = weft__local_steal(qa, qb);
            cr_assert_not_null(t);
            uint32_t moved = weft__local_len(qb);
            cr_assert_eq(moved, (n + 1) / 2 - 1);
            for (uint32_t i = 0; i < moved; i++) {
                cr_assert_eq((uint32_t)pop_id(qb), next_pop % NTASKS);
                next_pop++;
            }
            cr_assert_eq((uint32_t)t->value, next_pop % NTASKS);
            next_pop++;
        }
        while (weft__local_len(qa) > 0) {
            cr_assert_eq((uint32_t)pop_id(qa), next_pop % NTASKS);
            next_pop++;
        }
    }
    cr_assert_eq(next_pop, next_push);
    cr_assert_gt(next_push, 3u * 1000 * 1000);
    cr_assert_eq(weft__inject_len(&inj), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(queue, indices_wrap_past_uint32)
{
    /* Start the indices just below 2^32 so push, pop, overflow and steal all
     * cross the 32-bit wrap. */
    const uint32_t start = UINT32_MAX - 100;
    atomic_store(&qa->head, ((uint64_t)start << 32) | start);
    atomic_store(&qa->tail, start);
    atomic_store(&qb->head, ((uint64_t)start << 32) | start);
    atomic_store(&qb->tail, start);
    for (int i = 0; i < 256; i++)
        push_ok(qa, i);
    cr_assert_eq(weft__local_len(qa), 256);
    cr_assert_eq(weft__local_push(qa, T(256), &inj), WEFT__PUSH_OVERFLOWED);
    cr_assert_eq(weft__local_len(qa), 128);
    cr_assert_eq(weft__inject_len(&inj), 129);
    weft__task *t = weft__local_steal(qa, qb);
    cr_assert_not_null(t);
    cr_assert_eq(t->value, 128 + 63);
    for (int i = 128; i < 128 + 63; i++)
        cr_assert_eq(pop_id(qb), i);
    for (int i = 128 + 64; i < 256; i++)
        cr_assert_eq(pop_id(qa), i);
    cr_assert_eq(pop_id(qa), -1);
    for (int i = 0; i < 128; i++)
        cr_assert_eq(weft__inject_pop(&inj)->value, i);
    cr_assert_eq(weft__inject_pop(&inj)->value, 256);
    WEFT_ASSERT_NO_LEAKS();
}

Test(queue, inject_batch_pop)
{
    for (int i = 0; i < 10; i++)
        weft__inject_push(&inj, T(i));
    cr_assert_eq(weft__inject_len(&inj), 10);
    size_t n;
    weft__task *first = weft__inject_pop_batch(&inj, 4, &n);
    cr_assert_eq(n, 4);
    int k = 0;
    for (weft__task *t = first; t; t = t->queue_next)
        cr_assert_eq(t->value, k++);
    cr_assert_eq(k, 4);
    cr_assert_eq(weft__inject_len(&inj), 6);
    first = weft__inject_pop_batch(&inj, 100, &n);
    cr_assert_eq(n, 6);
    cr_assert_eq(first->value, 4);
    cr_assert_null(weft__inject_pop_batch(&inj, 100, &n));
    cr_assert_eq(n, 0);
    cr_assert_null(weft__inject_pop_batch(&inj, 0, &n));
    WEFT_ASSERT_NO_LEAKS();
}
