/*
 * examples/hello.c - the smallest useful weft program: a root task spawns ten
 * children, awaits them in order, and one of them is aborted on the way.
 *
 * Build against an installed weft:
 *     cc hello.c $(pkg-config --cflags --libs weft) -o hello
 */
#include <stdio.h>

#include <weft/weft.h>

struct child {
    weft_frame f;
    int64_t id;
    int64_t spins;
    weft_poll rc;
};

/* Yields a few times, then returns id * id. If it is cancelled, the yield
 * returns -ECANCELED and the child returns -1 instead: its own choice. */
static weft_poll child_poll(weft_cx *cx, void *frame)
{
    struct child *c = frame;
    WEFT_BEGIN(&c->f);
    for (c->spins = 0; c->spins < 100; c->spins++) {
        WEFT_YIELD(&c->f, c->rc);
        if (c->rc == -ECANCELED)
            WEFT_RETURN(&c->f, -1);
    }
    WEFT_RETURN(&c->f, c->id * c->id);
    WEFT_END(&c->f);
}

struct parent {
    weft_frame f;
    weft_join kids[10];
    weft_outcome out;
    int64_t i, sum;
    int abort_rc;
    weft_poll rc;
};

/* A parent that stops early must not strand its children: a handle nobody
 * joins keeps its task's memory, and only its holder can abort it. */
static void give_up_children(struct parent *p, int64_t from, int64_t to)
{
    for (int64_t i = from; i < to; i++) {
        weft_abort(&p->kids[i]);
        weft_detach(&p->kids[i]);
    }
}

static weft_poll parent_poll(weft_cx *cx, void *frame)
{
    struct parent *p = frame;
    WEFT_BEGIN(&p->f);
    for (p->i = 0; p->i < 10; p->i++) {
        struct child c = { .id = p->i };
        int rc = weft_spawn(weft_cx_runtime(cx), &WEFT_TASK(child_poll, &c), &p->kids[p->i]);
        if (rc < 0) {
            give_up_children(p, 0, p->i);
            WEFT_RETURN(&p->f, rc);
        }
    }
    /* Delivered at child 3's next await: 0. On a loaded machine child 3 may
     * already have finished its 100 yields: then the abort answers 1 and its
     * real result stands. */
    p->abort_rc = weft_abort(&p->kids[3]);
    for (p->i = 0; p->i < 10; p->i++) {
        WEFT_AWAIT(&p->f, p->rc, weft_join_await(cx, &p->kids[p->i], &p->out));
        if (p->rc == -ECANCELED) {          /* we were cancelled, not the child */
            give_up_children(p, p->i, 10);
            WEFT_RETURN(&p->f, -ECANCELED);
        }
        printf("child %lld -> %lld (cancel: %s)\n", (long long)p->i, (long long)p->out.value,
               weft_cancel_source_name(p->out.cancel.source));
        if (p->out.value > 0)
            p->sum += p->out.value;
    }
    WEFT_RETURN(&p->f, p->sum);
    WEFT_END(&p->f);
}

int main(void)
{
    weft_runtime *rt;
    int rc = weft_runtime_new(&rt, NULL);
    if (rc < 0) {
        fprintf(stderr, "weft_runtime_new: %s (%s)\n", weft_err_name(rc), weft_strerror(rc));
        return 1;
    }
    struct parent p = { 0 };
    weft_outcome out;
    rc = weft_block_on(rt, &WEFT_TASK(parent_poll, &p), &out);
    weft_runtime_free(rt);
    if (rc < 0) {
        fprintf(stderr, "weft_block_on: %s (%s)\n", weft_err_name(rc), weft_strerror(rc));
        return 1;
    }
    if (p.abort_rc == 1) {
        printf("child 3 finished before the abort; sum of squares: %lld\n",
               (long long)out.value);
        return out.value == 285 ? 0 : 1;
    }
    printf("sum of squares except 3: %lld\n", (long long)out.value);
    return p.abort_rc == 0 && out.value == 285 - 9 ? 0 : 1;
}
