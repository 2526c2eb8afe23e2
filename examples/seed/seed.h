/*
 * examples/seed/seed.h - the seed scenario: why cancellation at await points
 * needs a model.
 *
 * A request handler reads next = counter + 1, appends next to a file and
 * fsyncs it (both with io_uring), then sets counter = next. A server runs the
 * requests one after another, each under a short timeout, while the server
 * aborts some at random and a chaos task cancels the token of whichever is
 * running. The invariant: the file holds 1, 2, 3, ... with no duplicate and
 * counter equals the last number written.
 *
 * Three ways to write the handler:
 *   COOPERATIVE     default spawn: cancellation arrives as -ECANCELED at an
 *                   await; a handler whose write happened records it even if
 *                   the fsync was cancelled. Holds the invariant.
 *   SHIELDED        spawned cancel-safe (may be torn down at any await), with
 *                   write + fsync + update inside a shield. Holds it.
 *   CANCEL_SAFE_BUG spawned cancel-safe without the shield: a tear-down at the
 *                   fsync await loses the update after the write happened, and
 *                   the next request writes the same number again.
 */
#ifndef WEFT_EXAMPLES_SEED_H
#define WEFT_EXAMPLES_SEED_H

#include <stdbool.h>
#include <stdint.h>

#include <weft/weft.h>

enum seed_variant { SEED_COOPERATIVE, SEED_SHIELDED, SEED_CANCEL_SAFE_BUG };

/* A handler torn down after its write happened and before it recorded it. */
typedef struct seed_lost_update {
    uint64_t request;
    uint64_t value;             /* written to the file, never recorded */
    weft_cancel_source source;
    const weft_site *site;      /* the await it was torn down at */
} seed_lost_update;

typedef struct seed_report {
    uint64_t requests;
    uint64_t written;           /* numbers in the file */
    uint64_t counter;           /* final counter */
    uint64_t duplicates;        /* numbers that appear more than once */
    uint64_t out_of_order;      /* numbers not one above the previous */
    uint64_t timeouts, aborts, token_cancels;
    seed_lost_update lost[8];   /* the first few, for the explanation */
    uint64_t nlost;
} seed_report;

/* Run `requests` requests of the variant on rt, against a fresh file in dir.
 * Returns 0 and fills *report, or a negative errno. */
int seed_run(weft_runtime *rt, enum seed_variant variant, uint64_t requests, uint64_t rng_seed,
             const char *dir, seed_report *report);

/* The trace hook seed_run relies on to name where a handler was torn down:
 * pass it (arg NULL) in weft_runtime_opts.trace. */
void seed_trace(const weft_trace_event *ev, void *arg);

bool seed_report_ok(const seed_report *r);

/*
 * One request on its own, for tests that drive the handler themselves (the
 * cancel-at-every-await sweep of tests/examples): a fresh file and counter,
 * and the handler task exactly as the server spawns it for the variant -
 * cooperative or cancel-safe, with its drop hook - but bound to no token.
 * nap_ms > 0 makes it sleep first, as the server's slow requests do.
 */
typedef struct seed_request seed_request;

int seed_request_new(enum seed_variant variant, uint32_t nap_ms, const char *dir,
                     seed_request **out);

/* The handler's description; its initial frame lives in r. */
void seed_request_task(seed_request *r, weft_task_desc *desc);

/* Empty the file and zero the counter and the report, before a run. */
int seed_request_reset(seed_request *r);

/* What the file and the counter say after a run (requests = 1). */
int seed_request_report(seed_request *r, seed_report *report);

/* True while the handler's mutex is held (by a handler, or leaked). */
bool seed_request_locked(seed_request *r);

void seed_request_free(seed_request *r);

#endif /* WEFT_EXAMPLES_SEED_H */
