/*
 * reactor/handoff.h - the node a leaf (weft_sleep, weft__io) carries so that
 * another thread can hand its withdrawal to the driver that owns it
 * (driver.h, rule 2): one stack per driver for every kind of leaf.
 */
#ifndef WEFT_REACTOR_HANDOFF_H
#define WEFT_REACTOR_HANDOFF_H

#include <stdint.h>

enum weft__handoff_kind { WEFT__HANDOFF_SLEEP = 1, WEFT__HANDOFF_IO = 2 };

typedef struct weft__handoff {
    struct weft__handoff *next;
    uint32_t kind;                  /* enum weft__handoff_kind: who settles it */
} weft__handoff;

#endif /* WEFT_REACTOR_HANDOFF_H */
