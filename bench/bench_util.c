/*
 * bench/bench_util.c - helpers every workload file shares: running a root
 * task, and joining a batch of tasks from inside one.
 */
#include <errno.h>

#include "bench.h"

int64_t bench_block_on(weft_runtime *rt, weft_poll_fn poll, void *frame, size_t size)
{
    weft_task_desc d = { .poll = poll, .frame = frame, .frame_size = size, .name = "bench-root" };
    weft_outcome out;
    int rc = weft_block_on(rt, &d, &out);
    if (rc < 0)
        return rc;
    return out.status < 0 ? out.status : out.value;
}

weft_poll bench_join_all(weft_cx *cx, struct bench_join_all *j)
{
    WEFT_BEGIN(&j->f);
    for (j->i = 0; j->i < j->n; j->i++) {
        WEFT_AWAIT(&j->f, j->rc, weft_join_await(cx, &j->handles[j->i], &j->out));
        if (j->rc < 0 || j->out.value < 0)
            WEFT_RETURN(&j->f, -EPROTO);
        j->sum += j->out.value;
    }
    WEFT_RETURN(&j->f, j->sum);
    WEFT_END(&j->f);
}
