/*
 * tests/harness/programs.c - small user programs with the cancellation and
 * ordering bugs of issue 16, each in a buggy and a fixed variant, written
 * against the public API and weft/harness.h only (no internal header).
 *
 * Every program keeps its state in one static struct that setup resets, so
 * one run cannot leak into the next; a frame copies its variant from the
 * scenario's arg. Each await sits on a line of its own (weft/task.h rule 2).
 * The invariant of each program is what its check says, nothing more.
 */
#include "programs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "weft/sync.h"

#define MS 1000000ull

static const bool buggy = false, fixed = true, noisy = false;

/* State two tasks share is read and written atomically (relaxed): the
 * harness also runs these programs on real threads, and their bugs are
 * about order, not about data races. */
#define GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define SET(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define INC(x) __atomic_fetch_add(&(x), 1, __ATOMIC_RELAXED)
#define VARIANT(arg) (*(const bool *)(arg))

static int fail(char *why, size_t n, const char *msg)
{
    snprintf(why, n, "%s", msg);
    return 1;
}

/* ---- 1. a two-step update split by an await ------------------------------ */

static struct { int debit, credit; } ledger;

struct torn { weft_frame f; bool fixed; weft_poll rc; };

static weft_poll torn_poll(weft_cx *cx, void *p)
{
    struct torn *t = p;
    WEFT_BEGIN(&t->f);
    WEFT_YIELD(&t->f, t->rc);
    if (t->fixed)
        weft_shield_enter(cx);
    INC(ledger.debit);
    WEFT_YIELD(&t->f, t->rc);
    INC(ledger.credit);
    if (t->fixed)
        weft_shield_exit(cx);
    WEFT_YIELD(&t->f, t->rc);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static struct torn torn_frame;

static int torn_setup(void *arg, weft_task_desc *root)
{
    memset(&ledger, 0, sizeof ledger);
    torn_frame = (struct torn){ .fixed = VARIANT(arg) };
    *root = WEFT_TASK(torn_poll, &torn_frame);
    root->flags = WEFT_TASK_CANCEL_SAFE;
    root->name = "transfer";
    return 0;
}

static int torn_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    (void)run;
    return GET(ledger.debit) == GET(ledger.credit) ? 0 : fail(why, n, "debit without credit");
}

/* ---- 2. a send lost to a timeout ----------------------------------------- */

static struct { int taken, delivered; } mail;

struct sender { weft_frame f; bool fixed; weft_poll rc; weft_sleep s; };

static weft_poll sender_poll(weft_cx *cx, void *p)
{
    struct sender *s = p;
    WEFT_BEGIN(&s->f);
    INC(mail.taken);           /* off the queue: from here on it is ours to deliver */
    if (s->fixed)
        weft_shield_enter(cx);
    WEFT_AWAIT(&s->f, s->rc, weft_sleep_for(cx, &s->s, MS / 2));
    INC(mail.delivered);
    if (s->fixed)
        weft_shield_exit(cx);
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

struct waiter { weft_frame f; bool fixed; weft_poll rc; weft_join h; weft_join_timeout jt;
                weft_outcome out; };

static weft_poll send_root_poll(weft_cx *cx, void *p)
{
    struct waiter *w = p;
    WEFT_BEGIN(&w->f);
    struct sender s = { .fixed = w->fixed, .s = WEFT_SLEEP_INIT };
    weft_task_desc d = WEFT_TASK(sender_poll, &s);
    d.flags = WEFT_TASK_CANCEL_SAFE;
    d.name = "sender";
    if (weft_spawn(weft_cx_runtime(cx), &d, &w->h) < 0)
        WEFT_RETURN(&w->f, -1);
    WEFT_AWAIT(&w->f, w->rc, weft_join_await_timeout(cx, &w->jt, &w->h, &w->out, 10 * MS));
    if (w->rc < 0 && w->rc != -ETIMEDOUT)
        weft_detach(&w->h);     /* we were cancelled: the send goes on alone */
    WEFT_RETURN(&w->f, 0);
    WEFT_END(&w->f);
}

static struct waiter waiter_frame;

static int send_setup(void *arg, weft_task_desc *root)
{
    memset(&mail, 0, sizeof mail);
    waiter_frame = (struct waiter){ .fixed = VARIANT(arg), .h = WEFT_JOIN_INIT,
                                    .jt = WEFT_JOIN_TIMEOUT_INIT };
    *root = WEFT_TASK(send_root_poll, &waiter_frame);
    root->name = "caller";
    return 0;
}

static int send_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    (void)run;
    return GET(mail.taken) == GET(mail.delivered) ? 0 : fail(why, n, "a message was taken and lost");
}

/* ---- 3. a pool slot not returned ----------------------------------------- */

static weft_harness_counter slots;

struct borrower { weft_frame f; bool fixed, holding; weft_poll rc; weft_sleep s; };

static weft_poll borrower_poll(weft_cx *cx, void *p)
{
    struct borrower *b = p;
    WEFT_BEGIN(&b->f);
    weft_harness_acquire(&slots);
    b->holding = true;
    WEFT_AWAIT(&b->f, b->rc, weft_sleep_for(cx, &b->s, MS));
    weft_harness_release(&slots);
    b->holding = false;
    WEFT_RETURN(&b->f, 0);
    WEFT_END(&b->f);
}

/* The fix: the drop hook gives back what a torn-down borrower held. */
static void borrower_drop(void *p)
{
    struct borrower *b = p;
    if (b->fixed && b->holding)
        weft_harness_release(&slots);
}

static struct borrower borrower_frame;

static int slot_setup(void *arg, weft_task_desc *root)
{
    weft_harness_counter_reset(&slots);
    borrower_frame = (struct borrower){ .fixed = VARIANT(arg), .s = WEFT_SLEEP_INIT };
    *root = WEFT_TASK(borrower_poll, &borrower_frame);
    root->flags = WEFT_TASK_CANCEL_SAFE;
    root->drop = borrower_drop;
    root->name = "borrower";
    return 0;
}

static int slot_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    (void)run;
    return weft_harness_outstanding(&slots) == 0 ? 0 : fail(why, n, "a pool slot was not returned");
}

/* ---- 4. a lock held by a torn-down task ---------------------------------- */

static weft_mutex lock;

struct locker { weft_frame f; bool fixed; weft_poll rc; weft_mutex_waiter w; };

static weft_poll locker_poll(weft_cx *cx, void *p)
{
    struct locker *l = p;
    WEFT_BEGIN(&l->f);
    WEFT_AWAIT(&l->f, l->rc, weft_mutex_lock(cx, &lock, &l->w));
    if (l->rc < 0)
        WEFT_RETURN(&l->f, l->rc);
    if (l->fixed)
        weft_shield_enter(cx);
    WEFT_YIELD(&l->f, l->rc);
    weft_mutex_unlock(&lock);
    if (l->fixed)
        weft_shield_exit(cx);
    WEFT_RETURN(&l->f, 0);
    WEFT_END(&l->f);
}

struct two { weft_frame f; bool fixed; weft_poll rc; weft_join h[2]; weft_outcome out; int i;
             int noise; };

static weft_poll two_lockers_poll(weft_cx *cx, void *p)
{
    struct two *t = p;
    WEFT_BEGIN(&t->f);
    for (t->i = 0; t->i < 2; t->i++) {
        struct locker l = { .fixed = t->fixed, .w = WEFT_MUTEX_WAITER_INIT };
        weft_task_desc d = WEFT_TASK(locker_poll, &l);
        d.flags = WEFT_TASK_CANCEL_SAFE;
        d.name = t->i ? "locker-b" : "locker-a";
        if (weft_spawn(weft_cx_runtime(cx), &d, &t->h[t->i]) < 0)
            WEFT_RETURN(&t->f, -1);
    }
    for (t->i = 0; t->i < 2; t->i++) {
        WEFT_AWAIT(&t->f, t->rc, weft_join_await(cx, &t->h[t->i], &t->out));
        if (t->rc < 0) {
            weft_detach(&t->h[0]);
            weft_detach(&t->h[1]);
            WEFT_RETURN(&t->f, t->rc);
        }
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static struct two two_frame;

static int lock_setup(void *arg, weft_task_desc *root)
{
    weft_mutex_init(&lock);
    two_frame = (struct two){ .fixed = VARIANT(arg), .h = { WEFT_JOIN_INIT, WEFT_JOIN_INIT } };
    *root = WEFT_TASK(two_lockers_poll, &two_frame);
    root->name = "lock-root";
    return 0;
}

static int lock_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    (void)run;
    return weft_mutex_is_locked(&lock) ? fail(why, n, "the mutex is held by nobody alive") : 0;
}

/* ---- 5. an fd leaked on the last await ----------------------------------- */

static int fds_before;

struct piper { weft_frame f; bool fixed; int fd[2]; weft_poll rc; };

static weft_poll piper_poll(weft_cx *cx, void *p)
{
    struct piper *q = p;
    WEFT_BEGIN(&q->f);
    fds_before = weft_harness_open_fds();   /* the runtime's own are open by now */
    if (pipe(q->fd) != 0)
        WEFT_RETURN(&q->f, -errno);
    WEFT_YIELD(&q->f, q->rc);
    close(q->fd[0]);
    close(q->fd[1]);
    q->fd[0] = q->fd[1] = -1;
    WEFT_RETURN(&q->f, 0);
    WEFT_END(&q->f);
}

static void piper_drop(void *p)
{
    struct piper *q = p;
    for (int i = 0; q->fixed && i < 2; i++)
        if (q->fd[i] >= 0)
            close(q->fd[i]);
}

static struct piper piper_frame;

static int fd_setup(void *arg, weft_task_desc *root)
{
    fds_before = -1;
    piper_frame = (struct piper){ .fixed = VARIANT(arg), .fd = { -1, -1 } };
    *root = WEFT_TASK(piper_poll, &piper_frame);
    root->flags = WEFT_TASK_CANCEL_SAFE;
    root->drop = piper_drop;
    root->name = "piper";
    return 0;
}

static int fd_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    (void)run;
    if (fds_before < 0 || weft_harness_open_fds() == fds_before)
        return 0;
    return fail(why, n, "a pipe was left open");
}

/* ---- 6. a swallowed -ECANCELED ------------------------------------------- */

static weft_harness_watch loop_watch;

struct looper { weft_frame f; bool fixed; int i; weft_poll rc; };

static weft_poll looper_poll(weft_cx *cx, void *p)
{
    struct looper *l = p;
    WEFT_BEGIN(&l->f);
    for (l->i = 0; l->i < 4; l->i++) {
        WEFT_YIELD(&l->f, l->rc);
        if (l->fixed && l->rc < 0)
            WEFT_RETURN(&l->f, l->rc);
        weft_harness_watch_effect(cx, &loop_watch);
    }
    WEFT_RETURN(&l->f, 0);
    WEFT_END(&l->f);
}

static struct looper looper_frame;

static int swallow_setup(void *arg, weft_task_desc *root)
{
    weft_harness_watch_reset(&loop_watch);
    looper_frame = (struct looper){ .fixed = VARIANT(arg) };
    *root = WEFT_TASK(looper_poll, &looper_frame);
    root->name = "looper";
    return 0;
}

static int watch_check(const weft_harness_watch *w, char *why, size_t n)
{
    if (w->late == 0)
        return 0;
    snprintf(why, n, "%u of %u effects after the task was cancelled or given up", w->late,
             w->effects);
    return 1;
}

static int swallow_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    (void)run;
    return watch_check(&loop_watch, why, n);
}

/* ---- 7. a task writing after its caller timed out ------------------------ */

static weft_harness_watch late_watch;

struct slowpoke { weft_frame f; int i; weft_poll rc; };

static weft_poll slowpoke_poll(weft_cx *cx, void *p)
{
    struct slowpoke *s = p;
    WEFT_BEGIN(&s->f);
    for (s->i = 0; s->i < 3; s->i++)
        WEFT_YIELD(&s->f, s->rc);       /* work; the buggy one ignores -ECANCELED */
    weft_harness_watch_effect(cx, &late_watch);
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

static weft_poll late_root_poll(weft_cx *cx, void *p)
{
    struct waiter *w = p;
    WEFT_BEGIN(&w->f);
    struct slowpoke s = { 0 };
    weft_task_desc d = WEFT_TASK(slowpoke_poll, &s);
    d.name = "slowpoke";
    /* The fix: a cancel-safe worker is aborted when its caller gives up. */
    d.flags = w->fixed ? WEFT_TASK_CANCEL_SAFE : 0;
    if (weft_spawn(weft_cx_runtime(cx), &d, &w->h) < 0)
        WEFT_RETURN(&w->f, -1);
    WEFT_AWAIT(&w->f, w->rc, weft_join_await_timeout(cx, &w->jt, &w->h, &w->out, MS));
    if (w->rc < 0) {
        weft_harness_watch_close(&late_watch);      /* the caller has given up */
        if (w->rc != -ETIMEDOUT)
            weft_abort(&w->h);
        weft_detach(&w->h);
    }
    WEFT_RETURN(&w->f, 0);
    WEFT_END(&w->f);
}

static int late_setup(void *arg, weft_task_desc *root)
{
    weft_harness_watch_reset(&late_watch);
    waiter_frame = (struct waiter){ .fixed = VARIANT(arg), .h = WEFT_JOIN_INIT,
                                    .jt = WEFT_JOIN_TIMEOUT_INIT };
    *root = WEFT_TASK(late_root_poll, &waiter_frame);
    root->name = "caller";
    return 0;
}

static int late_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    (void)run;
    return watch_check(&late_watch, why, n);
}

/* ---- 8. a two-task ordering bug ------------------------------------------ */

static struct { int x; bool saw_half; } order;

struct writer { weft_frame f; bool fixed; weft_poll rc; };

static weft_poll writer_poll(weft_cx *cx, void *p)
{
    struct writer *w = p;
    WEFT_BEGIN(&w->f);
    SET(order.x, 1);
    if (!w->fixed)
        WEFT_YIELD(&w->f, w->rc);   /* the half-written state is visible here */
    SET(order.x, 2);
    WEFT_RETURN(&w->f, 0);
    WEFT_END(&w->f);
}

struct reader { weft_frame f; weft_poll rc; };

/* Tasks that only yield: they make a schedule long, which minimisation
 * then shortens (test_harness.c). */
struct noise { weft_frame f; int i; weft_poll rc; };

static weft_poll noise_poll(weft_cx *cx, void *p)
{
    struct noise *n = p;
    WEFT_BEGIN(&n->f);
    for (n->i = 0; n->i < 5; n->i++)
        WEFT_YIELD(&n->f, n->rc);
    WEFT_RETURN(&n->f, 0);
    WEFT_END(&n->f);
}

static int spawn_noise(weft_runtime *rt, int count)
{
    for (int i = 0; i < count; i++) {
        struct noise n = { 0 };
        weft_task_desc d = WEFT_TASK(noise_poll, &n);
        d.name = "noise";
        int rc = weft_spawn_detached(rt, &d);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static weft_poll reader_poll(weft_cx *cx, void *p)
{
    struct reader *r = p;
    WEFT_BEGIN(&r->f);
    WEFT_YIELD(&r->f, r->rc);
    if (GET(order.x) == 1)
        SET(order.saw_half, true);
    WEFT_RETURN(&r->f, 0);
    WEFT_END(&r->f);
}

static weft_poll order_root_poll(weft_cx *cx, void *p)
{
    struct two *t = p;
    WEFT_BEGIN(&t->f);
    struct writer w = { .fixed = t->fixed };
    struct reader r = { 0 };
    weft_task_desc dw = WEFT_TASK(writer_poll, &w), dr = WEFT_TASK(reader_poll, &r);
    dw.name = "writer";
    dr.name = "reader";
    if (spawn_noise(weft_cx_runtime(cx), t->noise) < 0)
        WEFT_RETURN(&t->f, -1);
    if (weft_spawn(weft_cx_runtime(cx), &dr, &t->h[0]) < 0)
        WEFT_RETURN(&t->f, -1);
    if (weft_spawn(weft_cx_runtime(cx), &dw, &t->h[1]) < 0)
        WEFT_RETURN(&t->f, -1);
    for (t->i = 0; t->i < 2; t->i++) {
        WEFT_AWAIT(&t->f, t->rc, weft_join_await(cx, &t->h[t->i], &t->out));
        if (t->rc < 0) {
            weft_detach(&t->h[0]);
            weft_detach(&t->h[1]);
            WEFT_RETURN(&t->f, t->rc);
        }
    }
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static int order_setup(void *arg, weft_task_desc *root)
{
    memset(&order, 0, sizeof order);
    two_frame = (struct two){ .fixed = VARIANT(arg), .h = { WEFT_JOIN_INIT, WEFT_JOIN_INIT },
                              .noise = arg == &noisy ? 6 : 0 };
    *root = WEFT_TASK(order_root_poll, &two_frame);
    root->name = "order-root";
    return 0;
}

static int order_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    (void)run;
    return GET(order.saw_half) ? fail(why, n, "the reader saw a half-written value") : 0;
}

/* ---- 9. a timer that must fire between two specific polls ---------------- */

static struct { int state; bool saw_busy; } machine;

struct stepper { weft_frame f; bool fixed; weft_poll rc; };

static weft_poll stepper_poll(weft_cx *cx, void *p)
{
    struct stepper *s = p;
    WEFT_BEGIN(&s->f);
    SET(machine.state, 1);      /* busy */
    if (!s->fixed)
        WEFT_YIELD(&s->f, s->rc);
    SET(machine.state, 2);      /* idle again */
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

struct ticker { weft_frame f; bool fixed; weft_poll rc; weft_join h; weft_sleep s;
                weft_outcome out; };

static weft_poll ticker_poll(weft_cx *cx, void *p)
{
    struct ticker *t = p;
    WEFT_BEGIN(&t->f);
    struct stepper s = { .fixed = t->fixed };
    weft_task_desc d = WEFT_TASK(stepper_poll, &s);
    d.name = "stepper";
    if (weft_spawn(weft_cx_runtime(cx), &d, &t->h) < 0)
        WEFT_RETURN(&t->f, -1);
    WEFT_AWAIT(&t->f, t->rc, weft_sleep_for(cx, &t->s, MS));
    if (GET(machine.state) == 1)
        SET(machine.saw_busy, true);    /* the tick found the machine mid-step */
    WEFT_AWAIT(&t->f, t->rc, weft_join_await(cx, &t->h, &t->out));
    if (t->rc < 0)
        weft_detach(&t->h);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static struct ticker ticker_frame;

static int timer_setup(void *arg, weft_task_desc *root)
{
    memset(&machine, 0, sizeof machine);
    ticker_frame = (struct ticker){ .fixed = VARIANT(arg), .h = WEFT_JOIN_INIT,
                                    .s = WEFT_SLEEP_INIT };
    *root = WEFT_TASK(ticker_poll, &ticker_frame);
    root->name = "ticker";
    return 0;
}

static int timer_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    (void)run;
    return GET(machine.saw_busy) ? fail(why, n, "the timer fired mid-step") : 0;
}

/* ---- 10. a request dequeued, then cancelled ------------------------------ */

static struct { weft_mpsc_tx tx; weft_mpsc_rx rx; int sent, answered; } rq;

struct server { weft_frame f; bool fixed; uint64_t req; weft_poll rc; };

static weft_poll server_poll(weft_cx *cx, void *p)
{
    struct server *s = p;
    WEFT_BEGIN(&s->f);
    for (;;) {
        WEFT_AWAIT(&s->f, s->rc, weft_mpsc_recv(cx, &rq.rx, &s->req));
        if (s->rc < 0)
            WEFT_RETURN(&s->f, 0);      /* closed and drained */
        if (s->fixed)
            weft_shield_enter(cx);      /* dequeued: answer it whatever happens */
        WEFT_YIELD(&s->f, s->rc);
        INC(rq.answered);
        if (s->fixed)
            weft_shield_exit(cx);
    }
    WEFT_END(&s->f);
}

static struct server server_frame;

static int request_setup(void *arg, weft_task_desc *root)
{
    rq.sent = rq.answered = 0;
    int rc = weft_mpsc_new(&rq.tx, &rq.rx, 4);
    for (int i = 0; rc == 0 && i < 2; i++)
        if ((rc = weft_mpsc_try_send(&rq.tx, (uint64_t)i)) == 0)
            rq.sent++;
    weft_mpsc_tx_drop(&rq.tx);
    if (rc)
        return rc;
    server_frame = (struct server){ .fixed = VARIANT(arg) };
    *root = WEFT_TASK(server_poll, &server_frame);
    root->flags = WEFT_TASK_CANCEL_SAFE;
    root->name = "server";
    return 0;
}

static int request_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    (void)run;
    uint64_t v;
    int queued = 0;
    while (weft_mpsc_try_recv(&rq.rx, &v) == 0)
        queued++;       /* still waiting: not lost */
    if (rq.sent == GET(rq.answered) + queued)
        return 0;
    snprintf(why, n, "%d requests sent, %d answered, %d still queued", rq.sent, rq.answered,
             queued);
    return 1;
}

static void request_teardown(void *arg)
{
    (void)arg;
    weft_mpsc_rx_drop(&rq.rx);
}

/* ---- 11. "aborted means it did not run" ---------------------------------- */

static struct { int ran; bool claimed_not_run; } ab;

struct job { weft_frame f; weft_poll rc; weft_sleep s; };

static weft_poll job_poll(weft_cx *cx, void *p)
{
    struct job *j = p;
    WEFT_BEGIN(&j->f);
    INC(ab.ran);
    WEFT_AWAIT(&j->f, j->rc, weft_sleep_for(cx, &j->s, MS));
    WEFT_RETURN(&j->f, 0);
    WEFT_END(&j->f);
}

static weft_poll aborter_poll(weft_cx *cx, void *p)
{
    struct ticker *t = p;
    WEFT_BEGIN(&t->f);
    struct job j = { .s = WEFT_SLEEP_INIT };
    weft_task_desc d = WEFT_TASK(job_poll, &j);
    d.flags = WEFT_TASK_CANCEL_SAFE;
    d.name = "job";
    if (weft_spawn(weft_cx_runtime(cx), &d, &t->h) < 0)
        WEFT_RETURN(&t->f, -1);
    WEFT_YIELD(&t->f, t->rc);
    if (weft_abort(&t->h) == 0)
        /* The bug: an abort that found the job unfinished proves nothing
         * about whether it started. The fix asks the job's own record. */
        SET(ab.claimed_not_run, t->fixed ? GET(ab.ran) == 0 : true);
    WEFT_AWAIT(&t->f, t->rc, weft_join_await(cx, &t->h, &t->out));
    if (t->rc < 0)
        weft_detach(&t->h);
    WEFT_RETURN(&t->f, 0);
    WEFT_END(&t->f);
}

static int abort_setup(void *arg, weft_task_desc *root)
{
    memset(&ab, 0, sizeof ab);
    ticker_frame = (struct ticker){ .fixed = VARIANT(arg), .h = WEFT_JOIN_INIT,
                                    .s = WEFT_SLEEP_INIT };
    *root = WEFT_TASK(aborter_poll, &ticker_frame);
    root->name = "aborter";
    return 0;
}

static int abort_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    (void)run;
    return GET(ab.claimed_not_run) && GET(ab.ran) ? fail(why, n, "said it never ran, but it had") : 0;
}

/* ---- 12. a detached task outliving the root (correct: quiescence) -------- */

static struct { bool logged; } logbook;

struct logger { weft_frame f; weft_poll rc; weft_sleep s; };

static weft_poll logger_poll(weft_cx *cx, void *p)
{
    struct logger *l = p;
    WEFT_BEGIN(&l->f);
    WEFT_AWAIT_SHIELDED(&l->f, l->rc, weft_sleep_for(cx, &l->s, MS));
    SET(logbook.logged, true);
    WEFT_RETURN(&l->f, 0);
    WEFT_END(&l->f);
}

struct spawner { weft_frame f; };

static weft_poll spawner_poll(weft_cx *cx, void *p)
{
    struct spawner *s = p;
    WEFT_BEGIN(&s->f);
    struct logger l = { .s = WEFT_SLEEP_INIT };
    weft_task_desc d = WEFT_TASK(logger_poll, &l);
    d.name = "logger";
    if (weft_spawn_detached(weft_cx_runtime(cx), &d) < 0)
        WEFT_RETURN(&s->f, -1);
    WEFT_RETURN(&s->f, 0);
    WEFT_END(&s->f);
}

static struct spawner spawner_frame;

static int detached_setup(void *arg, weft_task_desc *root)
{
    (void)arg;
    logbook.logged = false;
    spawner_frame = (struct spawner){ 0 };
    *root = WEFT_TASK(spawner_poll, &spawner_frame);
    root->name = "spawner";
    return 0;
}

static int detached_check(void *arg, const weft_harness_run_info *run, char *why, size_t n)
{
    (void)arg;
    if (run->rc == 0 && run->root.value == 0 && !GET(logbook.logged))
        return fail(why, n, "the detached logger never wrote");
    return 0;
}

/* ---- the table ----------------------------------------------------------- */

#define PROGRAM_T(pat, stem, td)                                                            \
    { pat,                                                                                  \
      { #stem "-buggy", stem##_setup, stem##_check, td, (void *)&buggy },                   \
      { #stem "-fixed", stem##_setup, stem##_check, td, (void *)&fixed } }
#define PROGRAM(pat, stem) PROGRAM_T(pat, stem, NULL)

const program programs[] = {
    PROGRAM("two-step update split by an await", torn),
    PROGRAM("send lost to a timeout", send),
    PROGRAM("pool slot not returned", slot),
    PROGRAM("lock held by a torn-down task", lock),
    PROGRAM("fd leaked on the last await", fd),
    PROGRAM("swallowed -ECANCELED", swallow),
    PROGRAM("write after the caller timed out", late),
    PROGRAM("two-task ordering bug", order),
    PROGRAM("timer between two specific polls", timer),
    PROGRAM_T("request dequeued, then cancelled", request, request_teardown),
    PROGRAM("\"aborted means it did not run\"", abort),
};
const size_t nprograms = sizeof programs / sizeof programs[0];

const weft_harness_scenario noisy_order = {
    "noisy-order", order_setup, order_check, NULL, (void *)&noisy
};

const weft_harness_scenario detached_logger = {
    "detached-logger", detached_setup, detached_check, NULL, (void *)&fixed
};
