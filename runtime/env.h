/*
 * runtime/env.h - the environment convention of weft/runtime.h
 * (WEFT_WORKERS, WEFT_PIN, WEFT_BLOCKING_THREADS), as weft_runtime_new
 * applies it: only to the fields its caller left at their default.
 */
#ifndef WEFT_RUNTIME_ENV_H
#define WEFT_RUNTIME_ENV_H

#include "weft/runtime.h"

/* *out = *in (or the defaults for NULL), then the environment's values for
 * the fields still at their default. 0, or -EINVAL for an invalid value. */
int weft__runtime_opts_env_defaults(const weft_runtime_opts *in, weft_runtime_opts *out);

#endif /* WEFT_RUNTIME_ENV_H */
