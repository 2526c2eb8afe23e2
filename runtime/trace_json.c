/*
 * runtime/trace_json.c - weft_trace_write: the recorded events as
 * Chrome/Perfetto trace-event JSON (weft/trace.h).
 *
 * Steps: copy what every buffer held when the write read its count
 * (trace.h, rule 3: with WEFT_TRACE_KEEP_LAST, only the slots no writer
 * reached since that read); sort it by time;
 * pair what the events only imply: a wake or spawn with the woken task's
 * next poll (a flow), a cancellation request with where it took effect (a
 * flow), an I/O submission with its completion (an async span); then print
 * one track per buffer, each sorted by time.
 *
 * Invariants of the file (tests/trace/check_trace.py checks them):
 *   1. Every span is closed: polls and parks are complete ("X") events, and
 *      an I/O async span is printed only when both its ends were recorded
 *      (an end without the other is an instant event).
 *   2. Within a track, timestamps never decrease.
 *   3. Every flow start has its end and every end its start, and both lie
 *      in a slice of their own track: an endpoint outside any poll or park
 *      (a wake by a completion, a thread, a tear-down) gets a slice of its
 *      own, 2 ns long, named after what happened.
 * Pairing by task address is safe although addresses are reused: a wake is
 * paired with the first poll of that task after it, and a later task at the
 * same address is spawned (a newer pending flow) before its first poll.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/trace.h"

#define NONE UINT32_MAX

typedef struct item {
    weft__trace_ev ev;
    uint32_t track, seq;
    uint32_t flow_out, flow_in;     /* flow ids, 0: none */
    uint32_t io;                    /* async span id, 0: none */
    uint16_t in_kind;               /* the kind of the flow's start */
} item;

/* One line of output before the final sort: what to print, where, when. */
enum { OUT_EVENT, OUT_SLICE, OUT_FLOW_START, OUT_FLOW_END };
typedef struct out {
    uint64_t ts;
    uint32_t track, seq, item;
    uint8_t what, prio;
} out;

/* ---- an open-addressed map (task or user_data, plus a tag) -> item ----------- */

typedef struct slot { uint64_t k1; uint32_t k2, val; } slot;
typedef struct map { slot *s; size_t mask; } map;

static int map_init(map *m, size_t n)
{
    size_t cap = 64;
    while (cap < 2 * n)
        cap *= 2;
    m->mask = cap - 1;
    m->s = calloc(cap, sizeof *m->s);
    return m->s ? 0 : -ENOMEM;
}

/* The slot of (k1, k2), or the empty one where it goes. k2 is never 0. */
static slot *map_find(map *m, uint64_t k1, uint32_t k2)
{
    size_t i = (size_t)((k1 * 0x9E3779B97F4A7C15ull) ^ k2) & m->mask;
    while (m->s[i].k2 && (m->s[i].k1 != k1 || m->s[i].k2 != k2))
        i = (i + 1) & m->mask;
    return &m->s[i];
}

static void map_put(map *m, uint64_t k1, uint32_t k2, uint32_t val)
{
    slot *s = map_find(m, k1, k2);
    *s = (slot){ k1, k2, val };
}

/* Take the value of (k1, k2) out; NONE when absent. */
static uint32_t map_take(map *m, uint64_t k1, uint32_t k2)
{
    slot *s = map_find(m, k1, k2);
    if (!s->k2)
        return NONE;
    uint32_t v = s->val;
    s->val = NONE;      /* the key stays: the probe chains stay intact */
    return v;
}

/* ---- snapshot and pairing ------------------------------------------------------ */

static int by_time(const void *pa, const void *pb)
{
    const item *a = pa, *b = pb;
    if (a->ev.ts != b->ev.ts)
        return a->ev.ts < b->ev.ts ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* A park that began before the trace: only what came after its start. */
static void clip(weft__trace_ev *e, uint64_t t0)
{
    if (e->kind == WEFT__TR_PARK)
        e->a = e->ts + e->a > t0 ? e->ts + e->a - t0 : 0;
    e->ts = t0;
}

/* Buffer i's events (trace.h, rule 3) onto it[n..]: of the `written`
 * recorded in it when the snapshot read its count, the first ones it
 * holds, or with WEFT_TRACE_KEEP_LAST the latest, and of those only the
 * ones still in their slots after the copy. Returns how many; adds to
 * *lost the events older than those, overwritten before or during the copy
 * (with WEFT_TRACE_KEEP_LAST, kept + lost == written). */
static size_t copy_buf(weft__tracer *tr, uint32_t i, item *it, size_t n, uint64_t written,
                       uint64_t *lost)
{
    weft__trace_buf *b = &tr->bufs[i];
    uint64_t count = written < b->cap ? written : b->cap;
    uint64_t from = tr->keep_last ? written - count : 0;
    for (uint64_t k = from; k < from + count; k++)
        weft__trace_slot_load(&b->ev[k % b->cap], &it[n + (k - from)].ev);
    /* Acquire: pairs with the writer's release fence after `begun`. */
    atomic_thread_fence(memory_order_acquire);
    uint64_t begun = atomic_load_explicit(&b->begun, memory_order_relaxed);
    uint64_t intact = begun > b->cap ? begun - b->cap : 0;
    uint64_t skip = intact > from ? intact - from : 0;
    if (skip > count)
        skip = count;   /* the writer lapped the whole window */
    size_t kept = 0;
    for (uint64_t k = skip; k < count; k++, kept++) {
        item *x = &it[n + kept];
        x->ev = it[n + k].ev;
        x->track = i;
        x->seq = (uint32_t)(n + kept);
        if (x->ev.ts < tr->t0)
            clip(&x->ev, tr->t0);
    }
    *lost += from + skip;
    return kept;
}

/* Every buffer's events, sorted by time; SIZE_MAX for no memory. */
static size_t snapshot(weft__tracer *tr, item **out_items, uint64_t *dropped,
                       uint64_t *overwritten)
{
    /* Each buffer's count, read once (trace.h, rule 3): the same value
     * sizes its room here and ends its window in copy_buf: a second read
     * there may be higher, and would move the window past intact older
     * events and count them overwritten. Events recorded after the one
     * read are left out. */
    uint64_t *written = calloc(tr->nbufs, sizeof *written);
    if (!written)
        return SIZE_MAX;
    size_t total = 0;
    for (uint32_t i = 0; i < tr->nbufs; i++) {
        weft__trace_buf *b = &tr->bufs[i];
        written[i] = atomic_load_explicit(&b->written, memory_order_acquire);
        *dropped += atomic_load_explicit(&b->dropped, memory_order_relaxed);
        total += written[i] < b->cap ? written[i] : b->cap;
    }
    item *it = calloc(total ? total : 1, sizeof *it);
    size_t n = 0;
    for (uint32_t i = 0; it && i < tr->nbufs; i++)
        n += copy_buf(tr, i, it, n, written[i], overwritten);
    free(written);
    if (!it)
        return SIZE_MAX;
    qsort(it, n, sizeof *it, by_time);
    *out_items = it;
    return n;
}

/* k2 tags: the kind of pairing, and for I/O the track (user_data is per ring). */
enum { TAG_FLOW = 1, TAG_CANCEL = 2, TAG_IO = 3 };

static void pair_flow(item *it, uint32_t from, uint32_t to, uint32_t *nflows)
{
    it[from].flow_out = it[to].flow_in = ++*nflows;
    it[to].in_kind = it[from].ev.kind;
}

static void pair(item *it, size_t n, map *m)
{
    uint32_t nflows = 0, nio = 0;
    for (uint32_t i = 0; i < n; i++) {
        weft__trace_ev *e = &it[i].ev;
        uint32_t j;
        switch (e->kind) {
        case WEFT__TR_WAKE:
        case WEFT__TR_SPAWN:
            map_put(m, e->task, TAG_FLOW, i);   /* the latest wake wins */
            break;
        case WEFT__TR_POLL:
            if ((j = map_take(m, e->task, TAG_FLOW)) != NONE)
                pair_flow(it, j, i, &nflows);
            break;
        case WEFT__TR_CANCEL_REQ:
            map_put(m, e->task, TAG_CANCEL, i);
            break;
        case WEFT__TR_CANCEL:
            if ((j = map_take(m, e->task, TAG_CANCEL)) != NONE)
                pair_flow(it, j, i, &nflows);
            break;
        case WEFT__TR_IO_SUBMIT:
            map_put(m, e->a, TAG_IO + (it[i].track << 2), i);
            break;
        case WEFT__TR_IO_DONE:
            if ((j = map_take(m, e->a, TAG_IO + (it[i].track << 2))) != NONE)
                it[i].io = it[j].io = ++nio;
            break;
        }
    }
}

/* ---- the output lines ------------------------------------------------------------ */

static void add(out *o, size_t *n, uint64_t ts, const item *it, uint32_t idx, uint8_t what,
                uint8_t prio)
{
    o[*n] = (out){ .ts = ts, .track = it->track, .seq = (uint32_t)*n, .item = idx,
                   .what = what, .prio = prio };
    ++*n;
}

static bool printed_alone(uint16_t kind)
{
    return kind != WEFT__TR_WAKE && kind != WEFT__TR_SPAWN;
}

/* Invariant 3: flows start and end inside a slice of their track. `end[t]`
 * is where the last poll or park of track t ended. */
static size_t plan(const item *it, size_t n, uint64_t *end, out *o)
{
    size_t no = 0;
    for (uint32_t i = 0; i < n; i++) {
        const item *x = &it[i];
        uint64_t ts = x->ev.ts;
        bool span = x->ev.kind == WEFT__TR_POLL || x->ev.kind == WEFT__TR_PARK;
        bool inside = ts < end[x->track];
        if (span) {
            end[x->track] = ts + x->ev.a;
            add(o, &no, ts, x, i, OUT_EVENT, 0);
            if (x->flow_in)     /* just inside: the slice must hold it */
                add(o, &no, ts + (x->ev.a >= 2), x, i, OUT_FLOW_END, 2);
            continue;
        }
        if ((x->flow_out || x->flow_in) && !inside) {
            add(o, &no, ts, x, i, OUT_SLICE, 0);
            ts++;
        }
        if (printed_alone(x->ev.kind))
            add(o, &no, ts, x, i, OUT_EVENT, 1);
        if (x->flow_out)
            add(o, &no, ts, x, i, OUT_FLOW_START, 2);
        if (x->flow_in)
            add(o, &no, ts, x, i, OUT_FLOW_END, 2);
    }
    return no;
}

static int by_track_time(const void *pa, const void *pb)
{
    const out *a = pa, *b = pb;
    if (a->track != b->track)
        return a->track < b->track ? -1 : 1;
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (a->prio != b->prio)
        return a->prio < b->prio ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* ---- printing --------------------------------------------------------------------- */

typedef struct printer {
    FILE *f;
    uint64_t t0;
    bool first;
} printer;

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* A time relative to the trace's start, in microseconds with ns precision. */
static void json_us(FILE *f, uint64_t ns)
{
    fprintf(f, "%" PRIu64 ".%03u", ns / 1000, (unsigned)(ns % 1000));
}

/* The common head of an event: ph, name, cat, pid, tid, ts. */
static void head(printer *p, char ph, const char *name, const char *cat, uint32_t track,
                 uint64_t ts)
{
    fputs(p->first ? "\n" : ",\n", p->f);
    p->first = false;
    fprintf(p->f, "{\"ph\":\"%c\",\"name\":", ph);
    json_str(p->f, name);
    fprintf(p->f, ",\"cat\":\"%s\",\"pid\":1,\"tid\":%" PRIu32 ",\"ts\":", cat, track + 1);
    json_us(p->f, ts - p->t0);
}

static const char *task_label(const weft__trace_ev *e)
{
    return e->name[0] ? e->name : "task";
}

static const char *flow_cat(uint16_t kind)
{
    return kind == WEFT__TR_SPAWN ? "spawn" : kind == WEFT__TR_CANCEL_REQ ? "cancel" : "wake";
}

static const char *slice_name(uint16_t kind, uint16_t d)
{
    switch (kind) {
    case WEFT__TR_WAKE: return "wake";
    case WEFT__TR_SPAWN: return "spawn";
    case WEFT__TR_CANCEL_REQ: return "cancel request";
    default: return d == WEFT_TRACE_TORN_DOWN ? "torn down" : "cancel delivered";
    }
}

static void print_cancel(printer *p, const item *x, uint64_t ts)
{
    const weft__trace_ev *e = &x->ev;
    const weft_site *site = e->p;
    head(p, 'i', slice_name(e->kind, e->d), "cancel", x->track, ts);
    fprintf(p->f, ",\"s\":\"t\",\"args\":{\"task\":\"0x%" PRIx64 "\",\"name\":", e->task);
    json_str(p->f, task_label(e));
    fputs(",\"source\":", p->f);
    json_str(p->f, weft_cancel_source_name((weft_cancel_source)e->c));
    if (site) {
        fputs(",\"site\":", p->f);
        json_str(p->f, site->file);
        fprintf(p->f, ",\"line\":%d,\"function\":", site->line);
        json_str(p->f, site->func);
    }
    if (e->a && e->ts >= e->a)
        fprintf(p->f, ",\"since_request_ns\":%" PRIu64, e->ts - e->a);
    fprintf(p->f, ",\"shield_held_ns\":%" PRIu64 "}}", e->b);
}

static void print_io(printer *p, const item *x, uint64_t ts)
{
    const weft__trace_ev *e = &x->ev;
    bool submit = e->kind == WEFT__TR_IO_SUBMIT;
    char name[48];
    if (x->io)
        snprintf(name, sizeof name, "%s", (const char *)e->p);
    else
        snprintf(name, sizeof name, "%s %s", (const char *)e->p, submit ? "submitted" : "completed");
    head(p, x->io ? (submit ? 'b' : 'e') : 'i', name, "io", x->track, ts);
    if (x->io)
        fprintf(p->f, ",\"id\":\"io%" PRIu32 "\"", x->io);
    else
        fputs(",\"s\":\"t\"", p->f);
    if (submit)
        fprintf(p->f, ",\"args\":{\"task\":\"0x%" PRIx64 "\"}}", e->b);
    else
        fprintf(p->f, ",\"args\":{\"result\":%" PRId32 "}}", e->c);
}

static void print_event(printer *p, const item *x, uint64_t ts)
{
    const weft__trace_ev *e = &x->ev;
    switch (e->kind) {
    case WEFT__TR_POLL:
        head(p, 'X', task_label(e), "poll", x->track, ts);
        fputs(",\"dur\":", p->f);
        json_us(p->f, e->a);
        fprintf(p->f, ",\"args\":{\"task\":\"0x%" PRIx64 "\",\"returned\":%s}}", e->task,
                e->c ? "true" : "false");
        break;
    case WEFT__TR_PARK:
        head(p, 'X', "park", "park", x->track, ts);
        fputs(",\"dur\":", p->f);
        json_us(p->f, e->a);
        fputc('}', p->f);
        break;
    case WEFT__TR_STEAL:
        head(p, 'i', "steal", "steal", x->track, ts);
        fprintf(p->f, ",\"s\":\"t\",\"args\":{\"task\":\"0x%" PRIx64 "\",\"victim\":%" PRId32
                      "}}", e->task, e->c);
        break;
    case WEFT__TR_TIMER:
        head(p, 'i', "timer", "timer", x->track, ts);
        fputs(",\"s\":\"t\",\"args\":{\"what\":", p->f);
        json_str(p->f, e->p);
        fputs("}}", p->f);
        break;
    case WEFT__TR_CANCEL_REQ:
        head(p, 'i', "cancel request", "cancel", x->track, ts);
        fprintf(p->f, ",\"s\":\"t\",\"args\":{\"task\":\"0x%" PRIx64 "\",\"source\":", e->task);
        json_str(p->f, weft_cancel_source_name((weft_cancel_source)e->c));
        fputs("}}", p->f);
        break;
    case WEFT__TR_CANCEL:
        print_cancel(p, x, ts);
        break;
    default:
        print_io(p, x, ts);
        break;
    }
}

static void print_line(printer *p, const out *o, const item *it)
{
    const item *x = &it[o->item];
    switch (o->what) {
    case OUT_EVENT:
        print_event(p, x, o->ts);
        return;
    case OUT_SLICE:
        head(p, 'X', slice_name(x->ev.kind, x->ev.d),
             x->ev.kind == WEFT__TR_CANCEL ? "cancel" : flow_cat(x->ev.kind), x->track, o->ts);
        fputs(",\"dur\":0.002}", p->f);
        return;
    case OUT_FLOW_START:
        head(p, 's', flow_cat(x->ev.kind), flow_cat(x->ev.kind), x->track, o->ts);
        fprintf(p->f, ",\"id\":%" PRIu32 ",\"bp\":\"e\",\"args\":{\"to\":\"0x%" PRIx64 "\","
                      "\"from\":\"0x%" PRIx64 "\"}}", x->flow_out, x->ev.task, x->ev.b);
        return;
    case OUT_FLOW_END:
        head(p, 'f', flow_cat(x->in_kind), flow_cat(x->in_kind), x->track, o->ts);
        fprintf(p->f, ",\"id\":%" PRIu32 ",\"bp\":\"e\"}", x->flow_in);
        return;
    }
}

static void print_meta(printer *p, uint32_t nbufs)
{
    fputs("\n{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":1,\"args\":{\"name\":\"weft\"}}",
          p->f);
    for (uint32_t i = 0; i < nbufs; i++) {
        char name[32];
        if (i + 1 == nbufs)
            snprintf(name, sizeof name, "outside workers");
        else
            snprintf(name, sizeof name, "worker %" PRIu32, i);
        fprintf(p->f, ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":%" PRIu32
                      ",\"args\":{\"name\":\"%s\"}}", i + 1, name);
        fprintf(p->f, ",\n{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":1,\"tid\":%"
                      PRIu32 ",\"args\":{\"sort_index\":%" PRIu32 "}}", i + 1, i);
    }
    p->first = false;
}

static int print_all(FILE *f, weft__tracer *tr, const item *it, const out *o, size_t no,
                     size_t nev, uint64_t dropped, uint64_t overwritten)
{
    printer p = { .f = f, .t0 = tr->t0, .first = true };
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", f);
    print_meta(&p, tr->nbufs);
    for (size_t i = 0; i < no; i++)
        print_line(&p, &o[i], it);
    fprintf(f, "\n],\"otherData\":{\"producer\":\"weft\",\"events\":%zu,\"dropped\":%" PRIu64
               ",\"keep\":\"%s\",\"overwritten\":%" PRIu64 "}}\n",
            nev, dropped, tr->keep_last ? "last" : "first", overwritten);
    return ferror(f) ? -EIO : 0;
}

static int write_file(const char *path, weft__tracer *tr, const item *it, const out *o,
                      size_t no, size_t nev, const uint64_t lost[2])
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    int rc = print_all(f, tr, it, o, no, nev, lost[0], lost[1]);
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

int weft_trace_write(weft_runtime *rt, const char *path)
{
    if (!rt || !path)
        return -EINVAL;
    weft__tracer *tr = atomic_load_explicit(&rt->tracer, memory_order_acquire);
    if (!tr)
        return -ENODATA;
    uint64_t lost[2] = { 0, 0 };    /* dropped, overwritten */
    item *it;
    size_t n = snapshot(tr, &it, &lost[0], &lost[1]);
    if (n == SIZE_MAX)
        return -ENOMEM;
    map m = { 0 };
    out *o = malloc((4 * n + 1) * sizeof *o);   /* at most 4 lines per event */
    uint64_t *end = calloc(tr->nbufs, sizeof *end);
    int rc = o && end && map_init(&m, n) == 0 ? 0 : -ENOMEM;
    if (rc == 0) {
        pair(it, n, &m);
        size_t no = plan(it, n, end, o);
        qsort(o, no, sizeof *o, by_track_time);
        rc = write_file(path, tr, it, o, no, n, lost);
    }
    free(m.s);
    free(end);
    free(o);
    free(it);
    return rc;
}
