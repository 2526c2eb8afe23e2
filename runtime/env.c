/*
 * runtime/env.c - runtime options from the environment (weft/runtime.h):
 * the convention every weft program honours, so that an operator can size
 * any weft service the same way (WEFT_WORKERS=4 ./server).
 *
 * Invariants:
 *   1. All variables are parsed before any field is written: a bad value
 *      leaves the options untouched and names its variable.
 *   2. Parsing is strict (decimal digits only, in range; a fixed set of
 *      boolean words): a typo is an error, never silently a default.
 *   3. An unset or empty variable means "not given".
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/env.h"

#include "runtime/alloc_arena.h"

#define ENV_MAX_THREADS 4096u   /* runtime.c's MAX_WORKERS */

/* What the environment gives; `has_*` false when the variable is unset. */
struct env_opts {
    bool has_workers, has_pin, has_blocking, has_times, has_huge;
    unsigned workers, blocking;
    bool pin, times, huge;
};

/* Decimal in [min, max], digits only. */
static bool parse_count(const char *text, unsigned min, unsigned max, unsigned *out)
{
    if (text[0] < '0' || text[0] > '9' || strlen(text) > 10)
        return false;
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

static bool parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = { "1", "yes", "true", "on" };
    static const char *const no[] = { "0", "no", "false", "off" };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
            *out = strcasecmp(text, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

/* The value of name, or NULL when unset or empty (rule 3). */
static const char *given(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int refuse(const char **bad, const char *name)
{
    *bad = name;
    return -EINVAL;
}

/* Rule 1: parse everything first. On -EINVAL *bad names the variable. */
static int read_env(struct env_opts *e, const char **bad)
{
    const char *v;
    *e = (struct env_opts){ 0 };
    if ((v = given("WEFT_WORKERS"))) {
        e->has_workers = true;
        if (!parse_count(v, 0, ENV_MAX_THREADS, &e->workers))
            return refuse(bad, "WEFT_WORKERS");
    }
    if ((v = given("WEFT_PIN"))) {
        e->has_pin = true;
        if (!parse_bool(v, &e->pin))
            return refuse(bad, "WEFT_PIN");
    }
    if ((v = given("WEFT_BLOCKING_THREADS"))) {
        e->has_blocking = true;
        if (!parse_count(v, 1, ENV_MAX_THREADS, &e->blocking))
            return refuse(bad, "WEFT_BLOCKING_THREADS");
    }
    if ((v = given("WEFT_TASK_DUMP"))) {
        e->has_times = true;
        if (!parse_bool(v, &e->times))
            return refuse(bad, "WEFT_TASK_DUMP");
    }
    if ((v = given("WEFT_HUGEPAGES"))) {
        e->has_huge = true;
        if (!parse_bool(v, &e->huge))
            return refuse(bad, "WEFT_HUGEPAGES");
    }
    return 0;
}

int weft_runtime_opts_from_env(weft_runtime_opts *opts, const char **bad)
{
    const char *ignored;
    if (!bad)
        bad = &ignored;
    if (!opts)
        return -EINVAL;
    struct env_opts e;
    int rc = read_env(&e, bad);
    if (rc)
        return rc;
    if (e.has_workers)
        opts->threads = e.workers;
    if (e.has_pin)
        opts->pin_workers = e.pin;
    if (e.has_blocking)
        opts->blocking_threads = e.blocking;
    if (e.has_times)
        opts->task_times = e.times;
    return 0;
}

int weft__runtime_opts_env_defaults(const weft_runtime_opts *in, weft_runtime_opts *out)
{
    *out = in ? *in : (weft_runtime_opts){ 0 };
    struct env_opts e;
    const char *bad;
    int rc = read_env(&e, &bad);
    if (rc)
        return rc;
    if (e.has_workers && out->threads == 0)
        out->threads = e.workers;
    if (e.has_pin && !out->pin_workers)
        out->pin_workers = e.pin;
    if (e.has_blocking && out->blocking_threads == 0)
        out->blocking_threads = e.blocking;
    if (e.has_times && !out->task_times)
        out->task_times = e.times;
    if (e.has_huge)
        weft__arena_set_huge_pages(e.huge);     /* process-wide, not an option */
    return 0;
}
