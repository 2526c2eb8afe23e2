/*
 * tools/weft-stress/scen_util.c - helpers shared by the scenarios (see
 * scen_util.h): allocation, fd counting, a root run with a hang limit, the
 * statistics of join outcomes, the chaos phase that aborts random handles at
 * random moments, and the per-task checks. Nothing here frees scenario state:
 * after a hang the caller leaks it on purpose, because tasks that never
 * finished may still write into it.
 */
#include <stdlib.h>

#include <weft/sim.h>

#include "scen_util.h"

void *scen_zalloc(size_t n)
{
    void *p = calloc(1, n);
    if (!p)
        abort();
    return p;
}

int scen_block_on(weft_runtime *rt, const weft_task_desc *d, weft_outcome *out,
                  const char *scenario, uint64_t seed)
{
    if (weft_sim_active(rt)) {
        /* Simulated: only block_on drives the workers; a root that can never
         * finish comes back as -EDEADLK (every task blocked, no timer). */
        int rc = weft_block_on(rt, d, out);
        if (rc < 0)
            stress_violation(scenario, seed, "simulated root: %s", weft_strerror(rc));
        return rc;
    }
    weft_join h = WEFT_JOIN_INIT;
    int rc = weft_spawn(rt, d, &h);
    if (rc < 0) {
        stress_violation(scenario, seed, "spawning the root: %s", weft_strerror(rc));
        return rc;
    }
    rc = weft_join_wait_timeout(&h, out, SCEN_HANG_NS);
    if (rc == -ETIMEDOUT)
        stress_violation(scenario, seed, "root still running after %llus: hang",
                         SCEN_HANG_NS / 1000000000ull);
    else if (rc < 0)
        stress_violation(scenario, seed, "joining the root: %s", weft_strerror(rc));
    return rc;
}

void scen_count_cancel(const weft_outcome *o)
{
    if (o->cancel.source <= WEFT_CANCEL_SHUTDOWN)
        stress_count(&stress_totals.by_source[o->cancel.source], 1);
    if (o->cancel.shield_held_ns > 0)
        stress_count(&stress_totals.shield_held, 1);
}

void scen_count_outcome(const weft_outcome *o)
{
    scen_count_cancel(o);
    if (o->status == -ECANCELED)
        stress_count(&stress_totals.torn_down, 1);
    else if (o->cancel.delivered_at)
        stress_count(&stress_totals.at_yield, 1);
}

weft_poll scen_chaos_poll(weft_cx *cx, struct scen_chaos *c)
{
    WEFT_BEGIN(&c->f);
    for (c->i = 0; c->i < c->rounds; c->i++) {
        if (c->n && stress_below(&c->rng, c->odds ? c->odds : 1) == 0)
            weft_abort(&c->h[stress_below(&c->rng, c->n)]);
        /* Drawn here, not in the await's operand: the operand is evaluated at
         * every poll while the nap lasts (weft/task.h, rule 4), so the number
         * of polls - a race - would change every later choice of the seed. */
        c->naps = stress_below(&c->rng, 4) == 0;
        c->nap_ns = c->naps ? stress_below(&c->rng, 1500000) : 0;
        if (c->naps)
            WEFT_AWAIT(&c->f, c->rc, weft_sleep_for(cx, &c->nap, c->nap_ns));
        else
            WEFT_YIELD(&c->f, c->rc);
        if (c->rc < 0)
            WEFT_RETURN(&c->f, c->rc);
    }
    WEFT_RETURN(&c->f, 0);
    WEFT_END(&c->f);
}

void scen_check_drops(const char *sc, uint64_t seed, _Atomic uint32_t *drops, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (atomic_load(&drops[i]) != 1)
            stress_violation(sc, seed, "task %u: drop hook ran %u times", i,
                             atomic_load(&drops[i]));
}

void scen_check_join(const char *sc, uint64_t seed, uint32_t id, bool cancel_safe, int status,
                     uint32_t drops)
{
    if (drops != 1)
        stress_violation(sc, seed, "task %u: drop hook ran %u times", id, drops);
    if (status != 0 && !(cancel_safe && status == -ECANCELED))
        stress_violation(sc, seed, "task %u (%s): join status %d", id,
                         cancel_safe ? "cancel-safe" : "cooperative", status);
}

void scen_run_parts(const stress_parts *p, const char *scenario, weft_runtime *rt,
                    uint64_t seed, unsigned threads)
{
    void *st = p->make(seed, threads);
    int rc = p->start ? p->start(st, rt) : 0;
    if (rc < 0) {
        stress_violation(scenario, seed, "start: %s", weft_strerror(rc));
        return;     /* some tasks may have started: st is theirs */
    }
    weft_task_desc d = p->root(st);
    weft_outcome out = { 0 };
    rc = scen_block_on(rt, &d, &out, scenario, seed);
    p->check(st, rc, &out, 0);
    if (rc >= 0)
        p->destroy(st);
}
