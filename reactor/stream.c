/*
 * reactor/stream.c - the parts of the buffered streams (weft/stream.h) the
 * reader and the writer share: setting one up, and deadlines. The reader is
 * in reader.c, the writer in writer.c; reactor/stream.h has the invariants.
 */
#include <errno.h>
#include <sys/stat.h>

#include "reactor/stream.h"
#include "runtime/alloc.h"
#include "weft/time.h"

int weft__stream_setup(int fd, void *buf, size_t cap, uint32_t *flags, char **out_buf)
{
    if (fd < 0 || cap == 0 || cap > WEFT_STREAM_MAX_BUFFER)
        return -EINVAL;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    /* Sockets need recv/sendmsg for MSG_NOSIGNAL; the rest take read/write. */
    *flags = S_ISSOCK(st.st_mode) ? WEFT__STREAM_SOCKET : 0;
    if (!buf) {
        buf = weft__alloc(cap);
        if (!buf)
            return -ENOMEM;
        *flags |= WEFT__STREAM_OWNED;
    }
    *out_buf = buf;
    return 0;
}

void weft__stream_release(char *buf, size_t cap, uint32_t flags)
{
    if (buf && (flags & WEFT__STREAM_OWNED))
        weft__free(buf, cap);
}

uint64_t weft__stream_call_deadline(uint64_t timeout_ns, uint64_t deadline_ns)
{
    uint64_t at = 0;
    if (timeout_ns) {
        uint64_t now = weft_now_ns();
        at = timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
    }
    if (deadline_ns && (!at || deadline_ns < at))
        at = deadline_ns;
    return at;
}
