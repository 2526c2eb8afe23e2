/*
 * tests/cxx/test_cxx.cpp - weft from C++: every public header compiles, a
 * task written with the WEFT_* macros runs, WEFT_TASK works both as
 * `&WEFT_TASK(...)` and copied into a weft_task_desc, and a release
 * operation awaited by a cancelled task still happens.
 *
 * A plain executable (exit 0 pass, 1 fail) so it also builds where Criterion
 * is not available.
 */
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>

#include <weft/sim.h>
#include <weft/weft.h>

namespace {

std::atomic<int> drops{0};

struct child {
    weft_frame f;
    int64_t id;
    int64_t i;
    weft_poll rc;
};

weft_poll child_poll(weft_cx *cx, void *p)
{
    child *c = static_cast<child *>(p);
    WEFT_BEGIN(&c->f);
    for (c->i = 0; c->i < 3; c->i++) {
        WEFT_YIELD(&c->f, c->rc);
        if (c->rc < 0)
            WEFT_RETURN(&c->f, c->rc);
    }
    WEFT_RETURN(&c->f, c->id * 10);
    WEFT_END(&c->f);
}

struct closer {
    weft_frame f;
    weft_io io;
    int fd;
    weft_poll close_rc, next_rc;
};

weft_poll closer_poll(weft_cx *cx, void *p)
{
    closer *c = static_cast<closer *>(p);
    WEFT_BEGIN(&c->f);
    WEFT_AWAIT(&c->f, c->close_rc, weft_close(cx, &c->io, c->fd));
    WEFT_YIELD(&c->f, c->next_rc);
    WEFT_RETURN(&c->f, c->close_rc == 0 && c->next_rc == -ECANCELED ? 0 : 1);
    WEFT_END(&c->f);
}

void count_drop(void *) { drops++; }

int check(bool ok, const char *what)
{
    if (!ok)
        std::fprintf(stderr, "test_cxx: %s\n", what);
    return ok ? 0 : 1;
}

}  // namespace

int main()
{
    weft_runtime *rt = nullptr;
    if (weft_runtime_new(&rt, nullptr) < 0)
        return 1;
    int failed = 0;

    child a = {}, b = {};
    a.id = 1;
    b.id = 2;
    weft_join ha = WEFT_JOIN_INIT, hb = WEFT_JOIN_INIT;
    failed += check(weft_spawn(rt, &WEFT_TASK(child_poll, &a), &ha) == 0, "spawn &WEFT_TASK");
    weft_task_desc d = WEFT_TASK(child_poll, &b);
    d.drop = count_drop;
    d.name = "b";
    failed += check(weft_spawn(rt, &d, &hb) == 0, "spawn a copied desc");
    weft_outcome out;
    failed += check(weft_join_wait(&ha, &out) == 0 && out.value == 10, "join a");
    failed += check(weft_join_wait(&hb, &out) == 0 && out.value == 20, "join b");
    failed += check(drops == 1, "drop hook ran once");

    /* A task that is cancelled before its first poll still closes its fd. */
    int p[2];
    if (pipe(p) != 0)
        return 1;
    close(p[1]);
    closer c = {};
    c.fd = p[0];
    weft_task_desc cd = WEFT_TASK(closer_poll, &c);
    weft_token *tok = nullptr;
    failed += check(weft_token_new(&tok) == 0 && weft_token_cancel(tok) >= 0, "token");
    cd.tokens = &tok;
    cd.ntokens = 1;
    weft_join hc = WEFT_JOIN_INIT;
    failed += check(weft_spawn(rt, &cd, &hc) == 0, "spawn closer");
    failed += check(weft_join_wait(&hc, &out) == 0 && out.value == 0,
                    "close happened and the next await was cancelled");
    failed += check(fcntl(p[0], F_GETFD) == -1 && errno == EBADF, "fd closed");
    weft_token_release(tok);

    failed += check(weft_runtime_free(rt) == 0, "runtime free");
    std::printf("test_cxx: %s\n", failed ? "FAIL" : "ok");
    return failed ? 1 : 0;
}
