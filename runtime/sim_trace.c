/*
 * runtime/sim_trace.c - the simulator's decision list: what each step chose,
 * recorded so that a failing run can be printed and saved, and read back as
 * a script that forces the same (or a shrunken) schedule.
 *
 * Invariants:
 *   1. With `record` on, every step and every jump of virtual time appends
 *      one event, in order; `steps` of the run equals the number of events.
 *      When the list cannot grow, recording stops and sim.trace_lost says
 *      so: the run itself goes on unchanged.
 *   2. A script is read by step number: the decision of step i is script[i]
 *      while i < script_len and the all-default decision (candidate 0, no
 *      jump, no cancel) after it. Under a script nothing else decides
 *      whether to jump or cancel, so a script names a whole schedule.
 */
#include <errno.h>
#include <stdlib.h>

#include "runtime/sim.h"

void weft__sim_trace_add(weft__sim *s, const weft__sim_event *e)
{
    if (!s->record || s->error)
        return;
    if (s->ntrace == s->trace_cap) {
        size_t cap = s->trace_cap ? s->trace_cap * 2 : 256;
        weft__sim_event *t = realloc(s->trace, cap * sizeof *t);
        if (!t) {
            s->record = false;
            s->trace_lost = true;
            return;
        }
        s->trace = t;
        s->trace_cap = cap;
    }
    s->trace[s->ntrace++] = *e;
}

bool weft__sim_scripted(const weft__sim *s, weft__sim_decision *d)
{
    if (!s->script)
        return false;
    if (s->steps < s->script_len)
        *d = s->script[s->steps];
    else
        *d = (weft__sim_decision){ 0 };
    return true;
}

void weft__sim_trace_free(weft__sim *s)
{
    free(s->trace);
    s->trace = NULL;
    s->ntrace = s->trace_cap = 0;
}
