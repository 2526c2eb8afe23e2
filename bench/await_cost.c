/*
 * bench/await_cost.c - weft-await-cost: what the cancellation check at every
 * await costs on the path where nothing is cancelled.
 *
 * One task runs the same loop three times over a leaf that is always ready:
 * calling the leaf directly; through AWAIT_WITHOUT_CHECK, which is WEFT_AWAIT
 * with the cancellation check taken out (resume point, leaf-slot clearing);
 * and through WEFT_AWAIT itself. The last difference is the price of the
 * check - one relaxed load of the task's state word and a branch - on the
 * path where nothing is cancelled. Median of several rounds; prints
 *
 *     await_cost <ns plain call> <ns await without check> <ns await> <ns check>
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/weft.h>

#define ITERATIONS 50000000u
#define ROUNDS 7

/* Opaque to the optimiser, so neither loop can be folded away. */
static weft_poll __attribute__((noinline)) ready_leaf(weft_cx *cx, uint64_t i)
{
    __asm__ volatile("" : : "r"(cx), "r"(i) : "memory");
    return (weft_poll)(i & 1);
}

/* WEFT_AWAIT minus the cancellation check: the comparison point. */
#define AWAIT_WITHOUT_CHECK(f, out, expr)                                     \
    do {                                                                      \
        static const weft_site site_ = { __FILE__, __func__, __LINE__ };      \
        (f)->weft_resume = __LINE__;                                          \
        __attribute__((fallthrough));                                         \
    case __LINE__: {                                                          \
        weft_poll r_ = (expr);                                                \
        if (r_ == WEFT_PENDING) {                                             \
            weft__suspended_at(cx, &site_);                                   \
            return WEFT_PENDING;                                              \
        }                                                                     \
        weft__await_done(cx);                                                 \
        (out) = r_;                                                           \
    }                                                                         \
    } while (0)

struct timing {
    uint64_t plain_ns, nocheck_ns, await_ns;
};

struct loop {
    weft_frame f;
    struct timing *out;     /* the frame is a copy: results go through here */
    uint64_t i, t0;
    weft_poll rc;
    /* Apart from `i`: adjacent, gcc fuses both updates into one vector add,
     * in one loop and not the other, which measures the vectoriser. */
    uint64_t sum;
};

static weft_poll loop_poll(weft_cx *cx, void *p)
{
    struct loop *l = p;
    WEFT_BEGIN(&l->f);
    l->t0 = weft_now_ns();
    for (l->i = 0; l->i < ITERATIONS; l->i++)
        l->sum += (uint64_t)ready_leaf(cx, l->i);
    l->out->plain_ns = weft_now_ns() - l->t0;
    l->t0 = weft_now_ns();
    for (l->i = 0; l->i < ITERATIONS; l->i++) {
        AWAIT_WITHOUT_CHECK(&l->f, l->rc, ready_leaf(cx, l->i));
        l->sum += (uint64_t)l->rc;
    }
    l->out->nocheck_ns = weft_now_ns() - l->t0;
    l->t0 = weft_now_ns();
    for (l->i = 0; l->i < ITERATIONS; l->i++) {
        WEFT_AWAIT(&l->f, l->rc, ready_leaf(cx, l->i));
        l->sum += (uint64_t)l->rc;
    }
    l->out->await_ns = weft_now_ns() - l->t0;
    WEFT_RETURN(&l->f, (weft_poll)(l->sum & 1));
    WEFT_END(&l->f);
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    weft_runtime_opts opts = { .threads = 1 };
    weft_runtime *rt;
    if (weft_runtime_new(&rt, &opts) != 0)
        return 1;
    double plain[ROUNDS], nocheck[ROUNDS], awaited[ROUNDS], check[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        struct timing t = { 0 };
        struct loop l = { .out = &t };
        weft_outcome out;
        if (weft_block_on(rt, &WEFT_TASK(loop_poll, &l), &out) != 0)
            return 1;
        plain[r] = (double)t.plain_ns / ITERATIONS;
        nocheck[r] = (double)t.nocheck_ns / ITERATIONS;
        awaited[r] = (double)t.await_ns / ITERATIONS;
        check[r] = awaited[r] - nocheck[r];
    }
    qsort(plain, ROUNDS, sizeof *plain, by_value);
    qsort(nocheck, ROUNDS, sizeof *nocheck, by_value);
    qsort(awaited, ROUNDS, sizeof *awaited, by_value);
    qsort(check, ROUNDS, sizeof *check, by_value);
    printf("await_cost %.3f %.3f %.3f %.3f\n", plain[ROUNDS / 2], nocheck[ROUNDS / 2],
           awaited[ROUNDS / 2], check[ROUNDS / 2]);
    weft_runtime_free(rt);
    return 0;
}
