/*
 * tests/harness/test_sim_io.c - simulated descriptors (weft/sim.h): bytes,
 * short transfers, end of stream and -EPIPE; a timer firing between two
 * completions and an I/O deadline landing there; the withdrawal contract
 * ("a cancelled operation did not happen; one that happened is reported");
 * descriptor accounting; and the I/O programs of io_programs.c found by
 * the harness, replayed bit for bit (the same schedule hash and the same
 * outcome, 50 times), their fixed variants clean.
 *
 * Seeds are fixed, so every count asserted here is the same on every run.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "programs.h"
#include "test_util.h"
#include "weft/sim.h"

TestSuite(sim_io, .timeout = 240);

#define MS 1000000ull

static uint64_t run_sim(uint64_t seed, weft_task_desc d, weft_outcome *out)
{
    weft_sim_opts o = { .seed = seed };
    uint64_t hash = 0;
    int rc = weft_sim_run(&o, &d, out, &hash);
    cr_assert_eq(rc, 0, "seed %llu: %d", (unsigned long long)seed, rc);
    return hash;
}

/* ---- bytes, short reads, end of stream ------------------------------------ */

static struct { int fds[2]; char got[32]; size_t len; int reads; weft_poll end; } pipe_st;

struct pump { weft_frame f; weft_io io; weft_xfer x; weft_poll rc; };

static weft_poll pump_poll(weft_cx *cx, void *p)
{
    struct pump *u = p;
    WEFT_BEGIN(&u->f);
    WEFT_AWAIT(&u->f, u->rc, weft_send_all(cx, &u->x, pipe_st.fds[1], "hello, world", 12));
    WEFT_AWAIT(&u->f, u->rc, weft_close(cx, &u->io, pipe_st.fds[1]));
    do {
        WEFT_AWAIT(&u->f, u->rc, weft_read(cx, &u->io, pipe_st.fds[0], pipe_st.got + pipe_st.len, 32 - pipe_st.len, (uint64_t)-1));
        pipe_st.reads++;
        pipe_st.len += u->rc > 0 ? (size_t)u->rc : 0;
    } while (u->rc > 0);
    pipe_st.end = u->rc;
    WEFT_AWAIT(&u->f, u->rc, weft_close(cx, &u->io, pipe_st.fds[0]));
    WEFT_RETURN(&u->f, 0);
    WEFT_END(&u->f);
}

Test(sim_io, a_pipe_carries_bytes_then_ends)
{
    unsigned short_reads = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        memset(&pipe_st, 0, sizeof pipe_st);
        cr_assert_eq(weft_sim_pipe(pipe_st.fds, 0), 0);
        cr_assert_eq(weft_sim_open_fds(), 2);
        struct pump u = { .io = WEFT_IO_INIT, .x = WEFT_XFER_INIT };
        weft_outcome out;
        run_sim(seed, WEFT_TASK(pump_poll, &u), &out);
        cr_assert_eq(out.value, 0);
        cr_assert_eq(pipe_st.end, 0, "the stream ends with 0, not %lld", (long long)pipe_st.end);
        cr_assert_eq(pipe_st.len, 12);
        cr_assert_arr_eq(pipe_st.got, "hello, world", 12);
        cr_assert_eq(weft_sim_open_fds(), 0, "both ends closed by weft_close");
        short_reads += pipe_st.reads > 2;
    }
    /* One transfer in four is cut short: some seeds need more reads. */
    cr_assert_gt(short_reads, 0);
    cr_assert_lt(short_reads, 40);
    WEFT_ASSERT_NO_LEAKS();
}

static struct { int sv[2]; weft_poll send, recv; } peer;

struct lone { weft_frame f; weft_io io; weft_poll rc; char c; };

static weft_poll lone_poll(weft_cx *cx, void *p)
{
    struct lone *l = p;
    WEFT_BEGIN(&l->f);
    WEFT_AWAIT(&l->f, l->rc, weft_close(cx, &l->io, peer.sv[1]));
    WEFT_AWAIT(&l->f, peer.send, weft_send(cx, &l->io, peer.sv[0], "x", 1, 0));
    WEFT_AWAIT(&l->f, peer.recv, weft_recv(cx, &l->io, peer.sv[0], &l->c, 1, 0));
    WEFT_AWAIT(&l->f, l->rc, weft_close(cx, &l->io, peer.sv[0]));
    WEFT_RETURN(&l->f, l->rc);
    WEFT_END(&l->f);
}

Test(sim_io, a_closed_peer_gives_epipe_and_end_of_stream)
{
    cr_assert_eq(weft_sim_socketpair(peer.sv, 0), 0);
    struct lone l = { .io = WEFT_IO_INIT };
    weft_outcome out;
    run_sim(3, WEFT_TASK(lone_poll, &l), &out);
    cr_assert_eq(peer.send, -EPIPE);
    cr_assert_eq(peer.recv, 0);
    cr_assert_eq(out.value, 0);
    cr_assert_eq(weft_sim_open_fds(), 0);
}

/* ---- between two completions ---------------------------------------------- */

/* The writer fills the socket before anything runs; the reader then reads
 * two bytes with two recvs, the second under a 1 ms deadline, while a
 * sleeper's 1 ms timer is armed. Nothing has to wait, yet a seed may fire
 * the timers between the two completions: the sleeper then wakes between
 * them, and the deadline withdraws the second recv, which either did not
 * happen (-ETIMEDOUT, the byte still there for a third recv) or happened. */
static struct { int sv[2]; bool slept, before, slept_between; weft_poll second, third; char b[3];
                uint64_t t1, t2; } gap;

struct sleeper { weft_frame f; weft_sleep s; weft_poll rc; };

static weft_poll sleeper_poll(weft_cx *cx, void *p)
{
    struct sleeper *s = p;
    WEFT_BEGIN(&s->f);
    WEFT_AWAIT(&s->f, s->rc, weft_sleep_for(cx, &s->s, MS));
    gap.slept = true;
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

struct gapper { weft_frame f; weft_io io; weft_xfer x; weft_poll rc; };

static weft_poll gapper_poll(weft_cx *cx, void *p)
{
    struct gapper *g = p;
    WEFT_BEGIN(&g->f);
    struct sleeper s = { .s = WEFT_SLEEP_INIT };
    if (weft_spawn_detached(weft_cx_runtime(cx), &WEFT_TASK(sleeper_poll, &s)) < 0)
        WEFT_RETURN(&g->f, -1);
    WEFT_AWAIT(&g->f, g->rc, weft_send_all(cx, &g->x, gap.sv[0], "ab", 2));
    if (g->rc != 2)
        WEFT_RETURN(&g->f, -2);
    weft_sim_close(gap.sv[0]);     /* the rest of the stream is "ab", then its end */
    WEFT_AWAIT(&g->f, g->rc, weft_recv(cx, &g->io, gap.sv[1], &gap.b[0], 1, 0));
    gap.t1 = weft_now_ns();
    gap.before = gap.slept;
    weft_io_timeout(&g->io, MS);
    WEFT_AWAIT(&g->f, gap.second, weft_recv(cx, &g->io, gap.sv[1], &gap.b[1], 1, 0));
    gap.t2 = weft_now_ns();
    gap.slept_between = !gap.before && gap.slept;
    WEFT_AWAIT(&g->f, gap.third, weft_recv(cx, &g->io, gap.sv[1], &gap.b[2], 1, 0));
    weft_sim_close(gap.sv[1]);
    WEFT_RETURN(&g->f, 0);
    WEFT_END(&g->f);
}

Test(sim_io, timers_land_between_two_completions)
{
    unsigned between = 0, timed_out = 0, happened = 0;
    for (uint64_t seed = 1; seed <= 400; seed++) {
        memset(&gap, 0, sizeof gap);
        cr_assert_eq(weft_sim_socketpair(gap.sv, 0), 0);
        struct gapper g = { .io = WEFT_IO_INIT, .x = WEFT_XFER_INIT };
        weft_outcome out;
        run_sim(seed, WEFT_TASK(gapper_poll, &g), &out);
        cr_assert_eq(out.value, 0, "seed %llu: %lld %d", (unsigned long long)seed, (long long)out.value, out.status);
        cr_assert_eq(gap.b[0], 'a');
        between += gap.slept_between;
        if (gap.second == -ETIMEDOUT) {
            /* It did not happen: the byte is still there, the third gets it. */
            timed_out++;
            cr_assert_eq(gap.third, 1);
            cr_assert_eq(gap.b[2], 'b');
            cr_assert_geq(gap.t2, gap.t1 + MS);
        } else {
            cr_assert_eq(gap.second, 1, "seed %llu: %lld", (unsigned long long)seed,
                         (long long)gap.second);
            cr_assert_eq(gap.b[1], 'b');
            cr_assert_eq(gap.third, 0, "after \"ab\" the stream ends");
            happened++;
        }
        cr_assert_eq(weft_sim_open_fds(), 0);
    }
    fprintf(stderr, "between two completions: timer %u, deadline -ETIMEDOUT %u of 400\n",
            between, timed_out);
    cr_assert_gt(between, 0, "a timer never fired between the two recvs");
    cr_assert_gt(timed_out, 0, "the deadline never withdrew the second recv");
    cr_assert_gt(happened, 0);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- the I/O programs: replayed bit for bit -------------------------------- */

/* What one run of a scenario gave, as its check saw it. */
typedef struct seen {
    uint64_t hash;
    int rc, failed;
    weft_outcome root;
    char why[128];
} seen;

static struct { const weft_harness_scenario *inner; seen last; } rec;

static int rec_setup(void *arg, weft_task_desc *root)
{
    (void)arg;
    return rec.inner->setup(rec.inner->arg, root);
}

static int rec_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    memset(&rec.last, 0, sizeof rec.last);
    rec.last.failed = rec.inner->check(rec.inner->arg, run, rec.last.why, sizeof rec.last.why);
    rec.last.hash = weft_sim_schedule(run->rt);
    rec.last.rc = run->rc;
    rec.last.root = run->root;
    snprintf(why, n, "%s", rec.last.why);
    return rec.last.failed;
}

static const weft_harness_scenario recorder = { "recorder", rec_setup, rec_check, NULL, NULL };

static FILE *quiet_log(void)
{
    FILE *f = fopen("/dev/null", "w");
    cr_assert_not_null(f);
    return f;
}

/* The first failure any mode finds, replayed 50 times by its name: the
 * same schedule hash, rc, root outcome and reason each time. */
static void replays_bit_for_bit(const program *p)
{
    FILE *log = quiet_log();
    rec.inner = &p->buggy;
    weft_harness_opts o = { .log = log, .quiet = true };
    weft_harness_report r;
    cr_assert_eq(weft_harness_run(&recorder, &o, &r), 0);
    cr_assert_gt(r.failures, 0, "%s: not found", p->pattern);
    seen first = { 0 };
    for (int i = 0; i < 50; i++) {
        cr_assert_eq(weft_harness_replay(&recorder, &o, r.first_name), 1, "%s: %s replay %d",
                     p->pattern, r.first_name, i);
        if (i == 0)
            first = rec.last;
        cr_assert_eq(rec.last.hash, first.hash, "%s: replay %d", r.first_name, i);
        cr_assert_eq(rec.last.rc, first.rc);
        cr_assert_eq(rec.last.root.status, first.root.status);
        cr_assert_eq(rec.last.root.value, first.root.value);
        cr_assert_str_eq(rec.last.why, first.why);
    }
    fprintf(stderr, "REPLAY | %-36s | %s | 50 replays, hash %016llx | %s\n", p->pattern,
            r.first_name, (unsigned long long)first.hash, first.why);
    fclose(log);
    cr_assert_eq(weft_sim_open_fds(), 0, "the harness closes what a run left");
    WEFT_ASSERT_NO_LEAKS();
}

Test(sim_io, accept_leak_replays_bit_for_bit) { replays_bit_for_bit(&io_programs[0]); }
Test(sim_io, torn_send_replays_bit_for_bit) { replays_bit_for_bit(&io_programs[1]); }
Test(sim_io, short_read_replays_bit_for_bit) { replays_bit_for_bit(&io_programs[2]); }

/* Uniform seeds find the I/O bugs too, and PCT those that need no
 * cancellation (PCT injects none: the leak is on a cancelled path); their
 * runs replay. */
Test(sim_io, every_simulated_mode_replays_io_failures)
{
    FILE *log = quiet_log();
    for (size_t i = 0; i < nio_programs; i++) {
        rec.inner = &io_programs[i].buggy;
        for (unsigned m = WEFT_HARNESS_UNIFORM; m <= WEFT_HARNESS_PCT; m++) {
            weft_harness_opts o = { .log = log, .quiet = true, .modes = 1u << m };
            weft_harness_report r;
            cr_assert_eq(weft_harness_run(&recorder, &o, &r), 0);
            if (i == 0 && m == WEFT_HARNESS_PCT) {
                cr_assert_eq(r.failures, 0, "no cancellation, no leak");
                continue;
            }
            cr_assert_gt(r.failures, 0, "%s: mode %u found nothing", io_programs[i].pattern, m);
            cr_assert_eq(weft_harness_replay(&recorder, &o, r.first_name), 1);
            seen a = rec.last;
            cr_assert_eq(weft_harness_replay(&recorder, &o, r.first_name), 1);
            cr_assert_eq(rec.last.hash, a.hash, "%s", r.first_name);
            cr_assert_str_eq(rec.last.why, a.why);
        }
    }
    fclose(log);
    WEFT_ASSERT_NO_LEAKS();
}

/* ---- accounting, misuse, and a runtime that is not simulated --------------- */

Test(sim_io, descriptors_are_counted_with_the_real_ones)
{
    int before = weft_harness_open_fds(), sv[2], lfd, cfd;
    cr_assert_geq(before, 0);
    cr_assert_eq(weft_sim_socketpair(sv, 0), 0);
    cr_assert_geq(sv[0], WEFT_SIM_FD_BASE);
    cr_assert_eq(weft_harness_open_fds(), before + 2);
    cr_assert_eq(weft_sim_listen(&lfd), 0);
    cr_assert_eq(weft_sim_connect(lfd, &cfd, 0), 0);
    cr_assert_eq(weft_sim_open_fds(), 4);
    cr_assert_eq(weft_sim_connect(sv[0], &cfd, 0), -ENOTSOCK);
    cr_assert_eq(weft_sim_close(lfd), 0);
    cr_assert_eq(weft_sim_close(lfd), -EBADF);
    cr_assert_eq(weft_sim_connect(lfd, &cfd, 0), -EBADF);
    for (int fd = WEFT_SIM_FD_BASE; fd < WEFT_SIM_FD_BASE + 8; fd++)
        (void)weft_sim_close(fd);
    cr_assert_eq(weft_harness_open_fds(), before);
    cr_assert_eq(weft_sim_open_fds(), 0);
}

Test(sim_io, many_descriptors_and_their_numbers_come_back)
{
    int sv[2], first = -1;
    for (int i = 0; i < 150; i++) {
        cr_assert_eq(weft_sim_socketpair(sv, 1), 0);
        first = i == 0 ? sv[0] : first;
    }
    cr_assert_eq(weft_sim_open_fds(), 300);
    cr_assert_eq(sv[1], first + 299, "numbered from the lowest free up");
    for (int fd = first; fd < first + 300; fd++)
        cr_assert_eq(weft_sim_close(fd), 0);
    cr_assert_eq(weft_sim_open_fds(), 0);
    cr_assert_eq(weft_sim_pipe(sv, 0), 0);
    cr_assert_eq(sv[0], first, "a closed number is used again");
    cr_assert_eq(weft_sim_close(sv[0]), 0);
    cr_assert_eq(weft_sim_close(sv[1]), 0);
}

Test(sim_io, misuse)
{
    int fd;
    cr_assert_eq(weft_sim_socketpair(NULL, 0), -EINVAL);
    cr_assert_eq(weft_sim_pipe(NULL, 0), -EINVAL);
    cr_assert_eq(weft_sim_listen(NULL), -EINVAL);
    cr_assert_eq(weft_sim_connect(WEFT_SIM_FD_BASE, NULL, 0), -EINVAL);
    cr_assert_eq(weft_sim_connect(3, &fd, 0), -EBADF);
    cr_assert_eq(weft_sim_close(-1), -EBADF);
    cr_assert_eq(weft_sim_close(WEFT_SIM_FD_BASE + 12345), -EBADF);
}

static struct { int sv[2]; weft_poll rc; } real;

struct probe { weft_frame f; weft_io io; char c; };

static weft_poll probe_poll(weft_cx *cx, void *p)
{
    struct probe *q = p;
    WEFT_BEGIN(&q->f);
    WEFT_AWAIT(&q->f, real.rc, weft_recv(cx, &q->io, real.sv[0], &q->c, 1, 0));
    WEFT_RETURN(&q->f, 0);
    WEFT_END(&q->f);
}

Test(sim_io, a_real_runtime_does_not_know_them)
{
    cr_assert_eq(weft_sim_socketpair(real.sv, 0), 0);
    weft_runtime *rt;
    cr_assert_eq(weft_runtime_new(&rt, &(weft_runtime_opts){ .threads = 1 }), 0);
    struct probe q = { .io = WEFT_IO_INIT };
    weft_outcome out;
    cr_assert_eq(weft_block_on(rt, &WEFT_TASK(probe_poll, &q), &out), 0);
    weft_runtime_free(rt);
    cr_assert_eq(real.rc, -EBADF);
    cr_assert_eq(weft_sim_close(real.sv[0]), 0);
    cr_assert_eq(weft_sim_close(real.sv[1]), 0);
}
