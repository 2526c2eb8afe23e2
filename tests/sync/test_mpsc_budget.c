/*
 * tests/sync/test_mpsc_budget.c - the cooperative budget an async send on a
 * bounded mpsc channel spends: one unit per send, including a send whose
 * lock-free claim loses its race and goes on under the lock (sync/mpsc.c).
 *
 * That race is a window of a few instructions between a send's look at the
 * state word and its claim. To stand in it every time, this file compiles
 * sync/mpsc.c into itself with WEFT__CLAIM_WINDOW_HOOK defined (the
 * library's copy has nothing there; the linker takes this copy and never
 * pulls the library's), and the hook makes another sender's claim at that
 * point. The rest is handshakes: the test holds the channel's lock, sees the
 * losing send wait for it, and frees a permit before letting it in.
 */
#include "runtime/task.h"
#include "sync_test.h"

TestSuite(mpsc_budget, .timeout = 120);

/* The window: armed by the task for one send, it makes another sender take
 * the channel's last permit there, as a thread on another CPU could. */
static struct {
    weft_mpsc_tx *tx;
    _Atomic int armed, ran;
    int other_rc;
} window;

#define OTHER_VALUE 99

static void claim_window(void)
{
    if (!atomic_exchange(&window.armed, 0))
        return;     /* not armed, or the other sender's own pass */
    window.other_rc = weft_mpsc_try_send(window.tx, OTHER_VALUE);
    atomic_store(&window.ran, 1);
}

#define WEFT__CLAIM_WINDOW_HOOK(c) ((void)(c), claim_window())
#include "sync/mpsc.c"

/* Two sends in one poll, each expected to complete there: the first on the
 * fast path, the second through the window. spent[i]: the units send i took. */
struct budget_sender {
    weft_frame f;
    weft_mpsc_tx *tx;
    uint32_t *spent;
    weft_mpsc_send_op op;
};

static weft_poll budget_sender_poll(weft_cx *cx, void *p)
{
    struct budget_sender *s = p;
    for (unsigned i = 0; i < 2; i++) {
        uint32_t before = cx->budget;
        atomic_store(&window.armed, i == 1);
        weft_poll r = weft_mpsc_send(cx, s->tx, &s->op, i + 1);
        if (r != 0)
            return r == WEFT_PENDING ? -EAGAIN : r;     /* not completed in the poll */
        s->spent[i] = before - cx->budget;
    }
    return 0;
}

/* Capacity 2: the first send leaves one permit, which the other sender takes
 * in the second send's window; the second's claim fails, its retry finds no
 * permit, and it goes to the lock, held here. The receiver frees a permit
 * while it waits, so under the lock it sends: one unit for it, not two. */
Test(mpsc_budget, a_send_that_loses_its_claim_spends_one_unit)
{
    weft_runtime *rt = rt_make(1);
    weft_mpsc_tx tx;
    weft_mpsc_rx rx;
    cr_assert_eq(weft_mpsc_new(&tx, &rx, 2), 0);
    weft__chan *c = rx.weft_chan;
    window.tx = &tx;
    uint32_t spent[2] = { 0, 0 };
    struct budget_sender s = { .tx = &tx, .spent = spent, .op = WEFT_MPSC_SEND_OP_INIT };
    weft__lock(&c->lock);
    weft_join h = spawn_task(rt, DESC(budget_sender_poll, &s, NULL, 0));
    WAIT_FOR(atomic_load(&window.ran));
    cr_assert_eq(window.other_rc, 0, "the other sender: %d", window.other_rc);
    /* 2: a contender sleeps on the lock, and the sender is the only one. */
    WAIT_FOR(__atomic_load_n(&c->lock, __ATOMIC_RELAXED) == 2);
    expect_mpsc_recv(&rx, 1);
    weft__unlock(&c->lock);
    cr_assert_eq(join_value(&h), 0);
    cr_assert_eq(spent[0], 1, "the fast path spent %u units", spent[0]);
    cr_assert_eq(spent[1], 1, "the send that lost its claim spent %u units", spent[1]);
    expect_mpsc_recv(&rx, OTHER_VALUE);
    expect_mpsc_recv(&rx, 2);
    cr_assert_eq(weft_mpsc_tx_drop(&tx), 0);
    cr_assert_eq(weft_mpsc_rx_drop(&rx), 0);
    rt_done(rt);
    WEFT_ASSERT_NO_LEAKS();
}
