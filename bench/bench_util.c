/*
 * bench/bench_util.c - helpers every workload file shares: running a root
 * task, joining a batch of tasks from inside one, reading the RSS.
 */
#include <errno.h>
#include <string.h>

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

int64_t bench_rss_bytes(void)
{
    /* VmRSS, as the tokio and Go peers read it: the same source, same units. */
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0 && sscanf(line + 6, "%lld", &kib) == 1)
            break;
    fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}
