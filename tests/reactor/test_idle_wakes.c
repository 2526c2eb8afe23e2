/*
 * tests/reactor/test_idle_wakes.c - CPU proportional to work: a runtime
 * whose only task is a periodic timer wakes one worker per tick, not every
 * worker (reactor/driver.h, rule 5: a worker that parks covers its own
 * sleeps; another is woken for them only when it goes on to poll).
 *
 * Counted, not timed: the voluntary context switches of every thread of the
 * process, read from /proc, before and after a number of ticks. Each tick
 * costs the worker that fires it one switch; the bound leaves room for the
 * start, the join and whatever a loaded machine adds, but not for a second
 * worker woken on every tick.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>

#include <weft/weft.h>

#include "test_util.h"

#define MS 1000000ull
#define TICKS 200

/* The voluntary context switches of all threads of this process. */
static long voluntary_switches(void)
{
    DIR *dir = opendir("/proc/self/task");
    cr_assert(dir);
    long total = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], line[128];
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;           /* the thread ended meanwhile */
        long n;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1)
                total += n;
        fclose(f);
    }
    closedir(dir);
    return total;
}

struct ticker {
    weft_frame f;
    weft_interval iv;
    int i;
    weft_poll rc;
};

static weft_poll ticker_poll(weft_cx *cx, void *p)
{
    struct ticker *t = p;
    WEFT_BEGIN(&t->f);
    if ((t->rc = weft_interval_init(&t->iv, 0, MS, WEFT_TICK_DELAY)) != 0)
        WEFT_RETURN(&t->f, t->rc);
    for (t->i = 0; t->i < TICKS; t->i++) {
        WEFT_AWAIT(&t->f, t->rc, weft_interval_tick(cx, &t->iv));
        if (t->rc < 0)
            WEFT_RETURN(&t->f, t->rc);
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

Test(idle_wakes, a_lone_interval_wakes_one_worker_per_tick)
{
    weft_runtime *rt;
    weft_runtime_opts o = { .threads = 2 };
    cr_assert_eq(weft_runtime_new(&rt, &o), 0);
    long before = voluntary_switches();
    struct ticker t = { 0 };
    weft_join j;
    weft_outcome out;
    cr_assert_eq(weft_spawn(rt, &WEFT_TASK(ticker_poll, &t), &j), 0);
    cr_assert_eq(weft_join_wait(&j, &out), 0);
    cr_assert_eq(out.value, 0);
    long woke = voluntary_switches() - before;
    /* One worker per tick is TICKS; both workers on every tick were 2 TICKS. */
    cr_assert_lt(woke, TICKS * 3 / 2, "%ld wake-ups for %d ticks", woke, TICKS);
    weft_runtime_free(rt);
    WEFT_ASSERT_NO_LEAKS();
}
