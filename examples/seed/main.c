/*
 * examples/seed/main.c - weft-seed: runs the seed scenario (seed.h) in its
 * three variants and explains what the wrong one did, with the provenance
 * weft records for every cancellation: who asked, and at which await it took
 * effect.
 *
 *     weft-seed [requests] [seed]
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "seed.h"

static const char *const names[] = {
    [SEED_COOPERATIVE] = "cooperative (default spawn)",
    [SEED_SHIELDED] = "cancel-safe, write+fsync+update shielded",
    [SEED_CANCEL_SAFE_BUG] = "cancel-safe, no shield (wrong)",
};

static void explain(const seed_report *r)
{
    printf("    what went wrong: handlers were torn down after their write had\n"
           "    happened and before they recorded it, so the next request wrote\n"
           "    the same number again. Some of them, with the provenance weft\n"
           "    recorded (who asked, and the await where the task was stopped):\n");
    uint64_t shown = r->nlost < 8 ? r->nlost : 8;
    for (uint64_t i = 0; i < shown; i++) {
        const seed_lost_update *l = &r->lost[i];
        printf("      request %llu wrote %llu; stopped by %s at %s:%d (%s)\n",
               (unsigned long long)l->request, (unsigned long long)l->value,
               weft_cancel_source_name(l->source), l->site ? l->site->file : "?",
               l->site ? l->site->line : 0, l->site ? l->site->func : "?");
    }
    printf("    fix: shield the steps that must happen together, or let the\n"
           "    task see -ECANCELED at the await (the default) and finish them.\n");
}

int main(int argc, char **argv)
{
    uint64_t requests = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 42;
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    weft_runtime_opts opts = { .threads = 2, .trace = seed_trace };
    weft_runtime *rt;
    int rc = weft_runtime_new(&rt, &opts);
    if (rc) {
        fprintf(stderr, "weft-seed: runtime: %s (%s)\n", weft_err_name(rc), weft_strerror(rc));
        return 1;
    }
    int failures = 0;
    for (int v = SEED_COOPERATIVE; v <= SEED_CANCEL_SAFE_BUG; v++) {
        seed_report r;
        rc = seed_run(rt, (enum seed_variant)v, requests, seed, dir, &r);
        if (rc) {
            fprintf(stderr, "weft-seed: %s (%s)\n", weft_err_name(rc), weft_strerror(rc));
            failures++;
            continue;
        }
        bool ok = seed_report_ok(&r);
        printf("%-42s %s: %llu requests, %llu numbers written, counter %llu,\n"
               "    %llu duplicates; %llu timeouts, %llu aborts, %llu token cancels\n",
               names[v], ok ? "ok" : "BROKEN", (unsigned long long)r.requests,
               (unsigned long long)r.written, (unsigned long long)r.counter,
               (unsigned long long)r.duplicates, (unsigned long long)r.timeouts,
               (unsigned long long)r.aborts, (unsigned long long)r.token_cancels);
        if (!ok)
            explain(&r);
        failures += !ok && v != SEED_CANCEL_SAFE_BUG;
    }
    weft_runtime_free(rt);
    return failures ? 1 : 0;
}
