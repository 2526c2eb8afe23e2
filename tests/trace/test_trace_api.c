/*
 * tests/trace/test_trace_api.c - weft/trace.h's API: misuse refused with
 * -EINVAL, a second start with -EALREADY, a write without a trace with
 * -ENODATA, file errors passed on; a trace written while the runtime runs
 * and again after its shutdown; WEFT_TRACE writing the file when the
 * runtime is freed, and a malformed WEFT_TRACE_EVENTS refused. The file's
 * contents are check_trace.py's business (tests/trace/meson.build). Each
 * test is its own process (Criterion forks), so setenv does not leak.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"
#include "weft/weft.h"

TestSuite(trace, .timeout = 60);

struct one { weft_frame f; };

static weft_poll one_poll(weft_cx *cx, void *p)
{
    (void)cx;
    (void)p;
    return 7;
}

static weft_runtime *new_runtime(void)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = 2 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    return rt;
}

/* A path in a fresh temporary directory; the caller removes both. */
static void temp_path(char *dir, size_t n, char *path, size_t m)
{
    snprintf(dir, n, "/tmp/weft-trace-test.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, m, "%s/trace.json", dir);
}

/* The file starts as trace-event JSON does. */
static void assert_trace_file(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s was not written", path);
    char head[64] = { 0 };
    size_t n = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    cr_assert_gt(n, 0);
    cr_assert_not_null(strstr(head, "\"traceEvents\""), "not a trace: %s", head);
}

Test(trace, misuse_is_refused)
{
    weft_runtime *rt = new_runtime();
    cr_assert_eq(weft_trace_start(NULL, 0), -EINVAL);
    cr_assert_eq(weft_trace_start(rt, (size_t)WEFT_TRACE_MAX_EVENTS + 1), -EINVAL);
    cr_assert_eq(weft_trace_write(NULL, "/tmp/x"), -EINVAL);
    cr_assert_eq(weft_trace_write(rt, NULL), -EINVAL);
    cr_assert_eq(weft_trace_write(rt, "/tmp/never-written.json"), -ENODATA);
    cr_assert_eq(access("/tmp/never-written.json", F_OK), -1);
    cr_assert_eq(weft_trace_start(rt, 16), 0);
    cr_assert_eq(weft_trace_start(rt, 16), -EALREADY);
    cr_assert_eq(weft_trace_start(rt, 0), -EALREADY);
    cr_assert_eq(weft_trace_write(rt, NULL), -EINVAL);
    cr_assert_eq(weft_trace_write(rt, "/nonexistent-dir/trace.json"), -ENOENT);
    cr_assert_eq(weft_runtime_free(rt), 0);
    WEFT_ASSERT_NO_LEAKS();
}

Test(trace, written_while_running_and_after_shutdown)
{
    char dir[64], path[96];
    temp_path(dir, sizeof dir, path, sizeof path);
    weft_runtime *rt = new_runtime();
    cr_assert_eq(weft_trace_start(rt, 4), 0);     /* tiny: most events are dropped */
    for (int i = 0; i < 10; i++) {
        weft_outcome out;
        struct one o = { 0 };
        cr_assert_eq(weft_block_on(rt, &WEFT_TASK(one_poll, &o), &out), 0);
        cr_assert_eq(out.value, 7);
    }
    cr_assert_eq(weft_trace_write(rt, path), 0);
    assert_trace_file(path);
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(weft_trace_write(rt, path), 0);
    assert_trace_file(path);
    cr_assert_eq(weft_runtime_free(rt), 0);
    unlink(path);
    rmdir(dir);
    WEFT_ASSERT_NO_LEAKS();
}

Test(trace, environment_writes_at_free)
{
    char dir[64], path[96];
    temp_path(dir, sizeof dir, path, sizeof path);
    setenv("WEFT_TRACE", path, 1);
    setenv("WEFT_TRACE_EVENTS", "1000", 1);
    weft_runtime *rt = new_runtime();
    cr_assert_eq(weft_trace_start(rt, 0), -EALREADY, "WEFT_TRACE started one");
    weft_outcome out;
    struct one o = { 0 };
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(one_poll, &o), &out), 0);
    cr_assert_eq(access(path, F_OK), -1, "written before the runtime is freed");
    cr_assert_eq(weft_runtime_free(rt), 0);
    assert_trace_file(path);
    unlink(path);
    rmdir(dir);
    WEFT_ASSERT_NO_LEAKS();
}

Test(trace, malformed_event_count_is_refused)
{
    static const char *const bad[] = { "0", "-1", "12x", "16777217", " 5" };
    setenv("WEFT_TRACE", "/tmp/weft-trace-never.json", 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("WEFT_TRACE_EVENTS", bad[i], 1);
        weft_runtime *rt;
        cr_assert_eq(weft_runtime_new(&rt, NULL), -EINVAL, "WEFT_TRACE_EVENTS=%s", bad[i]);
    }
    unsetenv("WEFT_TRACE");
    weft_runtime *rt;
    cr_assert_eq(weft_runtime_new(&rt, NULL), 0, "WEFT_TRACE_EVENTS alone changes nothing");
    cr_assert_eq(weft_runtime_free(rt), 0);
    cr_assert_eq(access("/tmp/weft-trace-never.json", F_OK), -1);
}
