/*
 * weft/error.h - error reporting. Every weft function that can fail returns a
 * negative errno value (-EINVAL, -ENOMEM, -ECANCELED, ...); 0 or a positive
 * count means success. A function that takes a callback and returns an error
 * never calls that callback.
 */
#ifndef WEFT_ERROR_H
#define WEFT_ERROR_H

#include "weft/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A short English description of a weft result; never NULL. Results weft
 * documents get its own wording, any other errno the C library's. */
WEFT_EXTERN const char *weft_strerror(int err);

/* The symbolic name of a weft result ("ECANCELED", "EMFILE"); never NULL;
 * "UNKNOWN" for a value that is no errno. */
WEFT_EXTERN const char *weft_err_name(int err);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_ERROR_H */
