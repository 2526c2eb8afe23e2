/*
 * runtime/sim_harness_cli.c - the faces of weft/harness.h: run names
 * ("sweep:SEED:K"), the readable schedule and its file, weft_harness_replay,
 * weft_harness_main, and the invariant helpers.
 *
 * Invariants:
 *   1. weft__harness_name and weft__harness_parse are inverse: a name holds
 *      everything that makes a simulated run's schedule (sim_harness.c,
 *      invariant 1), the worker count aside, which the command line gives.
 *   2. A printed schedule shows each step as worker, task, the await it
 *      resumed from and the one it suspended at (or "done"), or as the
 *      simulated operation it completed and its result; a decision
 *      other than the default is starred, a cancellation and a jump of
 *      virtual time are named. Lines are never the only record: the saved
 *      file holds every decision.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sim_harness.h"

/* A schedule longer than this prints its starred lines and its end only. */
#define PRINT_ALL_MAX 80
#define PRINT_TAIL 12

/* ---- run names (invariant 1) --------------------------------------------- */

void weft__harness_name(const weft__hrun *r, char *buf, size_t size)
{
    const weft_harness_run_info *i = &r->info;
    switch (i->mode) {
    case WEFT_HARNESS_SWEEP:
        snprintf(buf, size, "sweep:%" PRIu64 ":%u", i->seed, i->k);
        break;
    case WEFT_HARNESS_UNIFORM:
        snprintf(buf, size, "uniform:%" PRIu64 ":%u", i->seed, r->cancel_one_in);
        break;
    case WEFT_HARNESS_PCT:
        snprintf(buf, size, "pct:%u:%" PRIu64 ":%" PRIu64, i->pct_depth, i->seed,
                 r->sim.pct_steps);
        break;
    default:
        snprintf(buf, size, "threads:%" PRIu64 " (not replayable)", i->seed);
        break;
    }
}

int weft__harness_parse(weft__harness *h, const char *name, weft__hrun *r)
{
    (void)h;
    memset(r, 0, sizeof *r);
    unsigned long long a = 0, b = 0, c = 0;
    char tail;
    if (sscanf(name, "sweep:%llu:%llu%c", &a, &b, &tail) == 2) {
        r->info.mode = WEFT_HARNESS_SWEEP;
        r->info.k = (unsigned)b;
        r->plan.cancel_at = (uint32_t)b;
        r->plan.cancel_any = true;
    } else if (sscanf(name, "uniform:%llu:%llu%c", &a, &b, &tail) == 2) {
        r->info.mode = WEFT_HARNESS_UNIFORM;
        r->cancel_one_in = (unsigned)b;
        r->plan.cancel_one_in = (uint32_t)b;
    } else if (sscanf(name, "pct:%llu:%llu:%llu%c", &c, &a, &b, &tail) == 3 && c >= 1
               && c <= WEFT_SIM_MAX_PCT_DEPTH && b > 0) {
        r->info.mode = WEFT_HARNESS_PCT;
        r->info.pct_depth = (unsigned)c;
        r->sim.pct_depth = (unsigned)c;
        r->sim.pct_steps = b;
    } else {
        return -EINVAL;
    }
    r->info.seed = a;
    return 0;
}

/* ---- the readable schedule (invariant 2) --------------------------------- */

static void print_event(FILE *f, const weft__sim_event *e, uint64_t start)
{
    double ms = (double)(e->now - start) / 1e6;
    if (!e->decision) {
        fprintf(f, "      -  time   %10.3f ms  (nothing could run: timers fire)\n", ms);
        return;
    }
    const char *star = e->d.choice ? "*" : " ";
    if (e->worker == UINT32_MAX) {
        fprintf(f, "%6" PRIu64 "%s clock  %10.3f ms  (PCT: a timer fires first)\n", e->step,
                star, ms);
        return;
    }
    if (e->worker == WEFT__SIM_IO_STEP) {
        fprintf(f, "%6" PRIu64 "%s io     %-20s%s\n", e->step, star, e->name,
                e->d.jump ? "  [time jumps first]" : "");
        return;
    }
    if (!e->polled) {
        fprintf(f, "%6" PRIu64 "%s w%-4u (found nothing)\n", e->step, star, e->worker);
        return;
    }
    char to[24];
    if (e->finished)
        snprintf(to, sizeof to, "done");
    else
        snprintf(to, sizeof to, "line %u", e->to_line);
    char from[24];
    if (e->from_line)
        snprintf(from, sizeof from, "line %u", e->from_line);
    else
        snprintf(from, sizeof from, "start");
    fprintf(f, "%6" PRIu64 "%s w%-4u %-20s %-10s -> %-10s%s%s\n", e->step, star, e->worker,
            e->name[0] ? e->name : "(unnamed)", from, to,
            e->d.jump ? "  [time jumps first]" : "", e->cancelled ? "  [CANCELLED here]" : "");
}

static bool notable(const weft__sim_event *e)
{
    return !e->decision || e->d.choice || e->d.jump || e->d.cancel || e->finished;
}

void weft__harness_print_schedule(FILE *f, const weft__sim_event *ev, size_t n, bool all)
{
    if (!ev || n == 0) {
        fprintf(f, "    (no schedule recorded)\n");
        return;
    }
    uint64_t start = ev[0].now;
    bool skipped = false;
    for (size_t i = 0; i < n; i++) {
        bool show = all || n <= PRINT_ALL_MAX || i + PRINT_TAIL >= n || notable(&ev[i]);
        if (!show) {
            skipped = true;
            continue;
        }
        if (skipped)
            fprintf(f, "    ...\n");
        skipped = false;
        fprintf(f, "  ");
        print_event(f, &ev[i], start);
    }
}

void weft__harness_save(weft__harness *h, const weft__hrun *r, const weft__sim_event *ev,
                        size_t n)
{
    if (!h->o.save_dir || !ev)
        return;
    char name[96], path[512];
    weft__harness_name(r, name, sizeof name);
    for (char *p = name; *p; p++)
        if (*p == ':' || *p == ' ')
            *p = '-';
    snprintf(path, sizeof path, "%s/%s-%s.schedule", h->o.save_dir,
             h->sc->name ? h->sc->name : "scenario", name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(h->log, "  (could not save the schedule to %s)\n", path);
        return;
    }
    weft__harness_name(r, name, sizeof name);
    fprintf(f, "weft-schedule %s\n# the minimised schedule of %s; replay it with\n"
               "#   %s --replay file:%s\n# decision: choice jump cancel | what happened\n",
            name, h->sc->name ? h->sc->name : "scenario", h->o.program, path);
    for (size_t i = 0; i < n; i++) {
        if (ev[i].decision)
            fprintf(f, "%u %d %d | ", ev[i].d.choice, ev[i].d.jump, ev[i].d.cancel);
        else
            fprintf(f, "- - - | ");
        print_event(f, &ev[i], ev[0].now);
    }
    fclose(f);
    fprintf(h->log, "  saved to %s\n", path);
}

/* ---- replay -------------------------------------------------------------- */

/* A saved schedule (weft__harness_save): its run's name, and its decisions
 * as a script, which then decides alone. */
static int load_schedule(weft__harness *h, const char *path, weft__hrun *r,
                         weft__sim_decision **script)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    char line[512], name[128];
    int rc = -EINVAL;
    size_t n = 0, cap = 0;
    weft__sim_decision *d = NULL;
    if (fgets(line, sizeof line, f) && sscanf(line, "weft-schedule %127s", name) == 1)
        rc = weft__harness_parse(h, name, r);
    while (rc == 0 && fgets(line, sizeof line, f)) {
        unsigned c;
        int j, k;
        if (sscanf(line, "%u %d %d |", &c, &j, &k) != 3)
            continue;           /* comments and lines of time passing */
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            weft__sim_decision *g = realloc(d, cap * sizeof *g);
            if (!g) {
                rc = -ENOMEM;
                break;
            }
            d = g;
        }
        d[n++] = (weft__sim_decision){ .choice = c, .jump = j != 0, .cancel = k != 0 };
    }
    fclose(f);
    if (rc) {
        free(d);
        return rc;
    }
    r->plan.cancel_at = 0;
    r->plan.cancel_one_in = 0;
    static const weft__sim_decision none;      /* all default: still a script */
    r->plan.script = d ? d : &none;
    r->plan.script_len = n;
    *script = d;
    return 0;
}

int weft_harness_replay(const weft_harness_scenario *sc, const weft_harness_opts *opts,
                        const char *run)
{
    if (!sc || !sc->setup || !sc->check || !run)
        return -EINVAL;
    weft_harness_report rep;
    memset(&rep, 0, sizeof rep);
    weft__harness h;
    weft__harness_defaults(&h, sc, opts, &rep);
    weft__hrun r;
    weft__sim_decision *script = NULL;
    int rc = strncmp(run, "file:", 5) == 0 ? load_schedule(&h, run + 5, &r, &script)
                                           : weft__harness_parse(&h, run, &r);
    if (rc)
        return rc;
    r.plan.record = true;
    rc = weft__harness_sim_one(&h, &r);
    free(script);
    if (rc) {
        free(r.trace);
        return rc;
    }
    fprintf(h.log, "replay %s: %s%s%s\n", run, r.failed ? "FAILS" : "holds",
            r.failed ? ": " : "", r.failed ? (r.why[0] ? r.why : "the check failed") : "");
    weft__harness_print_schedule(h.log, r.trace, r.ntrace, true);
    free(r.trace);
    return r.failed ? 1 : 0;
}

/* ---- main ---------------------------------------------------------------- */

static int parse_modes(const char *v, unsigned *modes)
{
    static const char *const names[] = { NULL, "sweep", "uniform", "pct", "threads" };
    *modes = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        unsigned m = 1;
        while (m <= WEFT_HARNESS_THREADS && strcmp(t, names[m]) != 0)
            m++;
        if (m > WEFT_HARNESS_THREADS)
            return -EINVAL;
        *modes |= 1u << m;
    }
    return *modes ? 0 : -EINVAL;
}

static int usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--seeds N] [--pct D] [--pct-seeds N] [--threads N] [--workers N]\n"
            "       [--seed S] [--modes sweep,uniform,pct,threads] [--keep-going] [--quiet]\n"
            "       [--save DIR] [--replay RUN]\n",
            prog);
    return 2;
}

static bool text_option(weft_harness_opts *o, const char *a, const char *v, const char **replay)
{
    if (strcmp(a, "--save") == 0)
        o->save_dir = v;
    else if (strcmp(a, "--replay") == 0)
        *replay = v;
    else
        return parse_modes(v, &o->modes) == 0;
    return true;
}

/* One "--flag value" pair into o; false for an unknown flag or a bad value. */
static bool option(weft_harness_opts *o, const char *a, const char *v, const char **replay)
{
    if (strcmp(a, "--save") == 0 || strcmp(a, "--replay") == 0 || strcmp(a, "--modes") == 0)
        return text_option(o, a, v, replay);
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 0);
    if (end == v || *end != '\0' || errno || v[0] == '-')
        return false;       /* the numeric flags take a plain number */
    if (n > UINT32_MAX && strcmp(a, "--seed") != 0)
        return false;       /* counts are unsigned; only a seed is 64-bit */
    if (strcmp(a, "--seeds") == 0)
        o->seeds = (unsigned)n;
    else if (strcmp(a, "--pct") == 0)
        o->pct_depth = (unsigned)n;
    else if (strcmp(a, "--pct-seeds") == 0)
        o->pct_seeds = (unsigned)n;
    else if (strcmp(a, "--threads") == 0)
        o->threaded_runs = (unsigned)n;
    else if (strcmp(a, "--workers") == 0)
        o->workers = (unsigned)n;
    else if (strcmp(a, "--seed") == 0)
        o->first_seed = n;
    else
        return false;
    return true;
}

int weft_harness_main(const weft_harness_scenario *sc, int argc, char **argv)
{
    weft_harness_opts o = { .program = argc > 0 ? argv[0] : NULL };
    const char *replay = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--keep-going") == 0)
            o.keep_going = true;
        else if (strcmp(argv[i], "--quiet") == 0)
            o.quiet = true;
        else if (i + 1 >= argc || !option(&o, argv[i], argv[i + 1], &replay))
            return usage(o.program ? o.program : "harness");
        else
            i++;
    }
    if (replay) {
        int rc = weft_harness_replay(sc, &o, replay);
        return rc < 0 ? 2 : rc;
    }
    weft_harness_report rep;
    int rc = weft_harness_run(sc, &o, &rep);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", o.program ? o.program : "harness", strerror(-rc));
        return 2;
    }
    return rep.failures ? 1 : 0;
}

/* ---- invariant helpers --------------------------------------------------- */

int weft_harness_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -errno;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1 + weft_sim_open_fds();     /* less the directory's own */
}

/* A NULL counter or watch is misuse that these void calls cannot report:
 * they do nothing, and weft_harness_outstanding returns -EINVAL, never the
 * 0 that a check asserts. */
void weft_harness_acquire(weft_harness_counter *c)
{
    if (c)
        __atomic_fetch_add(&c->acquired, 1, __ATOMIC_RELAXED);
}

void weft_harness_release(weft_harness_counter *c)
{
    if (c)
        __atomic_fetch_add(&c->released, 1, __ATOMIC_RELAXED);
}

void weft_harness_counter_reset(weft_harness_counter *c)
{
    if (!c)
        return;
    __atomic_store_n(&c->acquired, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&c->released, 0, __ATOMIC_RELAXED);
}

long weft_harness_outstanding(const weft_harness_counter *c)
{
    if (!c)
        return -EINVAL;
    return __atomic_load_n(&c->acquired, __ATOMIC_RELAXED)
         - __atomic_load_n(&c->released, __ATOMIC_RELAXED);
}

void weft_harness_watch_reset(weft_harness_watch *w)
{
    if (!w)
        return;
    __atomic_store_n(&w->effects, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&w->late, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&w->closed, false, __ATOMIC_RELAXED);
}

void weft_harness_watch_close(weft_harness_watch *w)
{
    if (w)
        __atomic_store_n(&w->closed, true, __ATOMIC_RELEASE);
}

void weft_harness_watch_effect(weft_cx *cx, weft_harness_watch *w)
{
    if (!w)
        return;
    __atomic_fetch_add(&w->effects, 1, __ATOMIC_RELAXED);
    if (__atomic_load_n(&w->closed, __ATOMIC_ACQUIRE) || (cx && weft_cx_cancel_requested(cx)))
        __atomic_fetch_add(&w->late, 1, __ATOMIC_RELAXED);
}
