/*
 * weft/weft.h - the public API of weft, a work-stealing runtime for
 * stackless asynchronous tasks over io_uring with explicit cancellation:
 * every header but three, which are included by name: weft/sim.h (the
 * simulator), weft/harness.h (race-finding for your own tasks) and
 * weft/signal.h, whose sigset_t needs POSIX (a strict -std=c11 build of
 * weft.h must still work).
 */
#ifndef WEFT_WEFT_H
#define WEFT_WEFT_H

#include "weft/version.h"
#include "weft/error.h"
#include "weft/task.h"
#include "weft/runtime.h"
#include "weft/time.h"
#include "weft/scope.h"
#include "weft/blocking.h"
#include "weft/io.h"
#include "weft/stream.h"
#include "weft/net.h"
#include "weft/select.h"
#include "weft/group.h"
#include "weft/observe.h"
#include "weft/token.h"
#include "weft/trace.h"
#include "weft/sync.h"

#endif /* WEFT_WEFT_H */
