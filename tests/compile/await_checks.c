/*
 * tests/compile/await_checks.c - what the await macros must refuse at compile
 * time. tests/meson.build compiles it once with each WEFT_BAD_* case (each
 * must fail) and once with none (must succeed, so the failures mean
 * something).
 */
#include <stdint.h>
#include <weft/weft.h>

#if defined(WEFT_BAD_OUT_UNSIGNED)
typedef uint64_t out_t;             /* -ECANCELED would read as a huge count */
#elif defined(WEFT_BAD_OUT_NARROW)
typedef int16_t out_t;              /* a result would be truncated */
#else
typedef int64_t out_t;
#endif

#if defined(WEFT_BAD_FRAME_ALIGN)
#define FRAME_ALIGN _Alignas(64)    /* more than the runtime provides */
#else
#define FRAME_ALIGN
#endif

struct frame {
    weft_frame f;
    weft_io io;
    FRAME_ALIGN int fd;
    out_t rc;
};

static weft_poll body(weft_cx *cx, void *p)
{
    struct frame *t = p;
    WEFT_BEGIN(&t->f);
#if defined(WEFT_BAD_FRAME_ARG)
    WEFT_AWAIT(t, t->rc, weft_close(cx, &t->io, t->fd));   /* not a weft_frame * */
#else
    WEFT_AWAIT(&t->f, t->rc, weft_close(cx, &t->io, t->fd));
#endif
    WEFT_END(&t->f);
}

int spawn_it(weft_runtime *rt, weft_join *h);
int spawn_it(weft_runtime *rt, weft_join *h)
{
    struct frame fr = { .fd = -1 };
    return weft_spawn(rt, &WEFT_TASK(body, &fr), h);
}
