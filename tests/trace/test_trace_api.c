/*
 * tests/trace/test_trace_api.c - weft/trace.h's API: misuse refused with
 * -EINVAL, a second start with -EALREADY, a write without a trace with
 * -ENODATA, file errors passed on; a trace written while the runtime runs
 * and again after its shutdown; WEFT_TRACE writing the file when the
 * runtime is freed, and a malformed WEFT_TRACE_EVENTS or WEFT_TRACE_KEEP
 * refused; a full buffer keeps the first events, or with
 * WEFT_TRACE_KEEP_LAST the latest; a keep-last trace written while a thread
 * records loses none of its events. The file's structure is check_trace.py's
 * business (tests/trace/meson.build); here only which tasks it names.
 * Each test is its own process (Criterion forks), so setenv does not leak.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
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
    cr_assert_eq(weft_trace_start_flags(NULL, 0, WEFT_TRACE_KEEP_LAST), -EINVAL);
    cr_assert_eq(weft_trace_start_flags(rt, 0, 2), -EINVAL);
    cr_assert_eq(weft_trace_start_flags(rt, 0, WEFT_TRACE_KEEP_LAST | 4), -EINVAL);
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

Test(trace, malformed_keep_is_refused)
{
    static const char *const bad[] = { "middle", "LAST", "last ", "1" };
    setenv("WEFT_TRACE", "/tmp/weft-trace-never.json", 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("WEFT_TRACE_KEEP", bad[i], 1);
        weft_runtime *rt;
        cr_assert_eq(weft_runtime_new(&rt, NULL), -EINVAL, "WEFT_TRACE_KEEP=%s", bad[i]);
    }
    unsetenv("WEFT_TRACE");
    cr_assert_eq(access("/tmp/weft-trace-never.json", F_OK), -1);
}

/* ---- which events a full buffer keeps -------------------------------------- */

/* A whole file, NUL-terminated; the caller frees it. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s was not written", path);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    cr_assert_gt(n, 0);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    cr_assert_not_null(s);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

/* The number after "key": in the file's otherData. */
static long long other_data(const char *file, const char *key)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr(file, "\"otherData\"");
    cr_assert_not_null(at);
    at = strstr(at, pattern);
    cr_assert_not_null(at, "no %s in otherData", key);
    return strtoll(at + strlen(pattern), NULL, 10);
}

/* Runs `count` tasks named `name` one after another on rt. */
static void run_named(weft_runtime *rt, const char *name, int count)
{
    for (int i = 0; i < count; i++) {
        weft_outcome out;
        struct one o = { 0 };
        weft_task_desc d = WEFT_TASK(one_poll, &o);
        d.name = name;
        cr_assert_eq(weft_block_on(rt, &d, &out), 0);
    }
}

/* 100 tasks named "early", then 80 named "late", into buffers of 64
 * events: each task is a spawn in the outside buffer (block_on's thread)
 * and a poll and more in the worker's, so either kind alone overflows
 * both buffers. Returns the file. */
static char *trace_early_then_late(unsigned flags)
{
    char dir[64], path[96];
    temp_path(dir, sizeof dir, path, sizeof path);
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = 1 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    cr_assert_eq(weft_trace_start_flags(rt, 64, flags), 0);
    run_named(rt, "early", 100);
    run_named(rt, "late", 80);
    cr_assert_eq(weft_trace_write(rt, path), 0);
    cr_assert_eq(weft_runtime_free(rt), 0);
    char *file = slurp(path);
    unlink(path);
    rmdir(dir);
    return file;
}

Test(trace, a_full_buffer_keeps_the_first_events)
{
    char *file = trace_early_then_late(0);
    cr_assert_not_null(strstr(file, "\"early\""));
    cr_assert_null(strstr(file, "\"late\""), "a later event got into a full buffer");
    cr_assert_not_null(strstr(file, "\"keep\":\"first\""));
    cr_assert_gt(other_data(file, "dropped"), 0);
    cr_assert_eq(other_data(file, "overwritten"), 0);
    free(file);
    WEFT_ASSERT_NO_LEAKS();
}

Test(trace, keep_last_keeps_the_latest_events)
{
    char *file = trace_early_then_late(WEFT_TRACE_KEEP_LAST);
    cr_assert_not_null(strstr(file, "\"late\""), "the latest events were not kept");
    cr_assert_null(strstr(file, "\"early\""), "the oldest events were not overwritten");
    cr_assert_not_null(strstr(file, "\"keep\":\"last\""));
    cr_assert_gt(other_data(file, "overwritten"), 0);
    cr_assert_eq(other_data(file, "dropped"), 0);
    free(file);
    WEFT_ASSERT_NO_LEAKS();
}

Test(trace, environment_keeps_the_last_events)
{
    char dir[64], path[96];
    temp_path(dir, sizeof dir, path, sizeof path);
    setenv("WEFT_TRACE", path, 1);
    setenv("WEFT_TRACE_EVENTS", "16", 1);
    setenv("WEFT_TRACE_KEEP", "last", 1);
    weft_runtime *rt = new_runtime();
    run_named(rt, "task", 50);
    cr_assert_eq(weft_runtime_free(rt), 0);
    char *file = slurp(path);
    cr_assert_not_null(strstr(file, "\"keep\":\"last\""));
    cr_assert_gt(other_data(file, "overwritten"), 0);
    free(file);
    unlink(path);
    rmdir(dir);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- a flight recorder written while it records ------------------------------ */

/* A keep-last trace written while a thread records, in buffers that never
 * wrap: no file may count an event as overwritten, and every file holds
 * every event recorded before its write began. The writer reads each
 * buffer's count once (trace.h, rule 3); when it read it a second time at
 * the copy, a buffer that had grown in between lost its oldest events, and
 * counted them overwritten. The outside buffer, where the recorder's spawns
 * go, is copied last, after the workers' buffers that the filler's polls
 * make long to copy, so the recorder has all that time to record. With
 * the second read, the first write failed on every run, on two CPUs or one. */
#define LIVE_EVENTS (1u << 17)  /* per buffer: more than the test records */
#define LIVE_KNOWN 64           /* polls named "known", before any write */
#define LIVE_FILLER 20000       /* polls of the filler, before any write */
#define LIVE_ROUNDS 8           /* writes while the recorder records */
#define LIVE_SPAWNS 500         /* the recorder's spawns per write, at most */

struct live {
    weft_runtime *rt;
    flag ready;         /* recorder: waiting to record during write r */
    flag writing;       /* main: write r starts */
    flag written;       /* main: write r is over */
    flag rested;        /* recorder: done recording for write r */
};

static weft_poll recorded_poll(weft_cx *cx, void *p)
{
    (void)cx;
    (void)p;
    return 0;
}

/* Outside every worker: each spawn is an event in the outside buffer.
 * Each round records while its write runs, LIVE_SPAWNS at most (so the
 * buffers never wrap however slow the write); it waits for the write
 * spinning, not sleeping, so that it starts as the write does. */
static void *live_recorder(void *arg)
{
    struct live *l = arg;
    for (uint32_t r = 1; r <= LIVE_ROUNDS; r++) {
        flag_set(&l->ready, r);
        while (flag_get(&l->writing) < r)
            sched_yield();
        for (int i = 0; i < LIVE_SPAWNS && flag_get(&l->written) < r; i++) {
            struct one o = { 0 };
            weft_task_desc d = WEFT_TASK(recorded_poll, &o);
            d.name = "recorded";
            weft_spawn_detached(l->rt, &d);
        }
        flag_set(&l->rested, r);
    }
    return NULL;
}

struct filler { weft_frame f; int i; weft_poll rc; };

static weft_poll filler_poll(weft_cx *cx, void *p)
{
    struct filler *fl = p;
    WEFT_BEGIN(&fl->f);
    for (fl->i = 1; fl->i < LIVE_FILLER; fl->i++)
        WEFT_YIELD(&fl->f, fl->rc);
    WEFT_RETURN(&fl->f, 0);
    WEFT_END(&fl->f);
}

/* How many times `needle` occurs in `s`. */
static long occurrences(const char *s, const char *needle)
{
    long n = 0;
    for (const char *at = s; (at = strstr(at, needle)); at += strlen(needle))
        n++;
    return n;
}

Test(trace, keep_last_written_while_recording_loses_nothing)
{
    char dir[64], path[96];
    temp_path(dir, sizeof dir, path, sizeof path);
    weft_runtime *rt = new_runtime();
    cr_assert_eq(weft_trace_start_flags(rt, LIVE_EVENTS, WEFT_TRACE_KEEP_LAST), 0);
    run_named(rt, "known", LIVE_KNOWN);
    struct filler fl = { 0 };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(filler_poll, &fl), &out), 0);
    struct live l = { .rt = rt };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, live_recorder, &l), 0);
    for (uint32_t r = 1; r <= LIVE_ROUNDS; r++) {
        flag_wait_ge(&l.ready, r);
        flag_set(&l.writing, r);
        int rc = weft_trace_write(rt, path);
        flag_set(&l.written, r);
        flag_wait_ge(&l.rested, r);
        cr_assert_eq(rc, 0);
        char *file = slurp(path);
        cr_assert_eq(other_data(file, "overwritten"), 0,
                     "write %u: events counted as overwritten in buffers that never wrapped", r);
        cr_assert_eq(occurrences(file, "\"name\":\"known\",\"cat\":\"poll\""), LIVE_KNOWN,
                     "write %u: not every poll recorded before the write is in the file", r);
        cr_assert_geq(other_data(file, "events"), LIVE_KNOWN + LIVE_FILLER, "write %u", r);
        free(file);
    }
    pthread_join(th, NULL);
    /* The premise: once nothing records, the file holds every event ever
     * recorded, fewer than one buffer holds, so none could have wrapped. */
    cr_assert_eq(weft_runtime_shutdown(rt), 0);
    cr_assert_eq(weft_trace_write(rt, path), 0);
    char *file = slurp(path);
    cr_assert_eq(other_data(file, "overwritten"), 0);
    cr_assert_lt(other_data(file, "events"), LIVE_EVENTS, "a buffer may have wrapped");
    free(file);
    cr_assert_eq(weft_runtime_free(rt), 0);
    unlink(path);
    rmdir(dir);
    WEFT_ASSERT_NO_LEAKS();
}
