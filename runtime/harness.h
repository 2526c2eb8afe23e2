/*
 * runtime/harness.h - running one task: poll it, complete it, or tear it down.
 */
#ifndef WEFT_RUNTIME_HARNESS_H
#define WEFT_RUNTIME_HARNESS_H

#include <stdint.h>

struct weft_worker;
struct weft__task;

/* Poll a task popped from a queue (it carries its notified reference). */
void weft__harness_poll(struct weft_worker *w, struct weft__task *t);

/* Shutdown sweep: t is RUNNING and the caller holds a reference for it. Tears
 * it down without resuming it and completes it with -ECANCELED. */
void weft__harness_shutdown(struct weft__task *t);

#endif /* WEFT_RUNTIME_HARNESS_H */
