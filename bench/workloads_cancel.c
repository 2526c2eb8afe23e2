/*
 * bench/workloads_cancel.c - token_cancel from docs/benchmarks.md: 500,000
 * tasks each await the cancellation of their own child token of one parent;
 * the parent is cancelled and every task must observe it and exit.
 */
#include <errno.h>

#include "bench.h"

struct token_waiter {
    weft_frame f;
    weft_token *token;          /* owned: released on exit */
    weft_token_wait wait;
    weft_poll rc;
};

static weft_poll token_waiter_poll(weft_cx *cx, void *p)
{
    struct token_waiter *w = p;
    WEFT_BEGIN(&w->f);
    WEFT_AWAIT(&w->f, w->rc, weft_token_cancelled(cx, w->token, &w->wait));
    WEFT_RETURN(&w->f, w->rc == 0 && weft_token_is_cancelled(w->token) ? 1 : -EPROTO);
    WEFT_END(&w->f);
}

static void token_waiter_drop(void *p)
{
    weft_token_release(((struct token_waiter *)p)->token);
}

struct token_root {
    weft_frame f;
    weft_token *parent;
    weft_join *handles;
    int64_t n, i;
    struct bench_join_all join;
    weft_poll rc;
};

static weft_poll token_root_poll(weft_cx *cx, void *p)
{
    struct token_root *r = p;
    WEFT_BEGIN(&r->f);
    for (r->i = 0; r->i < r->n; r->i++) {
        struct token_waiter w = { .wait = WEFT_TOKEN_WAIT_INIT };
        int rc = weft_token_child(r->parent, &w.token);
        if (rc < 0)
            WEFT_RETURN(&r->f, rc);
        weft_task_desc d = { .poll = token_waiter_poll, .frame = &w, .frame_size = sizeof w,
                             .drop = token_waiter_drop };
        rc = weft_spawn(weft_cx_runtime(cx), &d, &r->handles[r->i]);
        if (rc < 0) {
            weft_token_release(w.token);
            WEFT_RETURN(&r->f, rc);
        }
    }
    weft_token_cancel(r->parent);
    r->join = (struct bench_join_all){ .handles = r->handles, .n = r->n };
    WEFT_AWAIT(&r->f, r->rc, bench_join_all(cx, &r->join));
    WEFT_RETURN(&r->f, r->rc == r->n ? r->n : -EPROTO);  /* each task returns 1 */
    WEFT_END(&r->f);
}

int64_t bench_token_cancel(weft_runtime *rt, double scale)
{
    struct token_root r = { .n = bench_scaled(500000, scale) };
    r.handles = calloc((size_t)r.n, sizeof *r.handles);
    if (!r.handles || weft_token_new(&r.parent) < 0) {
        free(r.handles);
        return -ENOMEM;
    }
    int64_t n = bench_block_on(rt, token_root_poll, &r, sizeof r);
    weft_token_release(r.parent);
    free(r.handles);
    if (n == -EPROTO)
        fprintf(stderr, "weft-bench: token_cancel: a task did not observe the cancellation\n");
    return n;
}
