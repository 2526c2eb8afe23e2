/*
 * runtime/error.c - weft_strerror and weft_err_name, generated from one table
 * of the errno values weft documents, with weft's own wording for each. Any
 * other errno (a kernel result such as -EMFILE or -EADDRINUSE reaches tasks
 * unchanged) gets the C library's name and description, so no result prints
 * as "unknown".
 */
#include <errno.h>
#include <string.h>

#include "weft/error.h"

#define WEFT_ERRNO_MAP(XX)                                                        \
    XX(EINVAL, "invalid argument or misuse of a handle")                          \
    XX(ENOMEM, "out of memory")                                                   \
    XX(ECANCELED, "operation cancelled")                                          \
    XX(ETIMEDOUT, "timed out")                                                    \
    XX(ESHUTDOWN, "runtime is shut down")                                         \
    XX(EDEADLK, "would block a worker thread (call it from a task or another thread)") \
    XX(EPERM, "operation not permitted")                                          \
    XX(EAGAIN, "resource temporarily unavailable")                                \
    XX(EBUSY, "resource busy")                                                    \
    XX(ENOSYS, "not supported by this kernel")                                    \
    XX(EBADF, "bad file descriptor")                                              \
    XX(EPIPE, "peer closed")                                                      \
    XX(ECONNRESET, "connection reset by peer")                                    \
    XX(ENOENT, "no such file or directory")

const char *weft_strerror(int err)
{
    if (err >= 0)
        return "success";
    switch (err) {      /* not -err: that overflows for INT_MIN */
#define XX(code, text) case -code: return text;
    WEFT_ERRNO_MAP(XX)
#undef XX
    }
    /* err > -4096: the kernel's errno range; -err cannot overflow there. */
    const char *libc = err > -4096 ? strerrordesc_np(-err) : NULL;
    return libc ? libc : "unknown error";
}

const char *weft_err_name(int err)
{
    if (err >= 0)
        return "OK";
    switch (err) {
#define XX(code, text) case -code: return #code;
    WEFT_ERRNO_MAP(XX)
#undef XX
    }
    const char *libc = err > -4096 ? strerrorname_np(-err) : NULL;
    return libc ? libc : "UNKNOWN";
}
