/*
 * reactor/listen.c - the synchronous listeners of weft/net.h (and
 * weft_tcp_listen of weft/io.h, the flagless TCP case): socket, options,
 * bind, listen, with every failure closing what it opened.
 *
 * Invariants:
 *   1. A listener is blocking and close-on-exec, like every weft fd.
 *   2. WEFT_LISTEN_UNLINK removes a path only if it is a socket: a typo must
 *      not delete a user's file.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weft/net.h"

#define KNOWN_FLAGS (WEFT_LISTEN_REUSEPORT | WEFT_LISTEN_UNLINK)

static int set_flag(int fd, int option)
{
    int one = 1;
    return setsockopt(fd, SOL_SOCKET, option, &one, sizeof one);
}

/* listen(2) takes a negative backlog as "the most there is" (somaxconn), so
 * a sign slip would pass silently: refused here, as net.h says. */
static bool bad_args(int backlog, unsigned flags)
{
    return backlog < 0 || (flags & ~KNOWN_FLAGS);
}

int weft_listen(const struct sockaddr *addr, socklen_t addrlen, int backlog, unsigned flags)
{
    if (!addr || bad_args(backlog, flags))
        return -EINVAL;
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    bool inet = addr->sa_family == AF_INET || addr->sa_family == AF_INET6;
    /* SO_REUSEADDR: a restarted server binds while old connections linger. */
    if ((inet && set_flag(fd, SO_REUSEADDR) != 0)
        || ((flags & WEFT_LISTEN_REUSEPORT) && set_flag(fd, SO_REUSEPORT) != 0)
        || bind(fd, addr, addrlen) != 0 || listen(fd, backlog) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int weft_tcp_listen(const struct sockaddr *addr, socklen_t addrlen, int backlog)
{
    return weft_listen(addr, addrlen, backlog, 0);
}

int weft_unix_addr(const char *path, struct sockaddr_un *addr, socklen_t *addrlen)
{
    if (!path || !*path || !addr || !addrlen)
        return -EINVAL;
    size_t n = strlen(path);
    if (n >= sizeof addr->sun_path)
        return -ENAMETOOLONG;
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    memcpy(addr->sun_path, path, n);
    if (path[0] == '@') {
        addr->sun_path[0] = '\0';       /* abstract: the name is not NUL-terminated */
        *addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

/* Rule 2: a stale socket file goes; anything else stays and bind fails. */
static void unlink_stale(const char *path)
{
    struct stat st;
    if (path[0] != '@' && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
}

int weft_unix_listen(const char *path, int backlog, unsigned flags)
{
    struct sockaddr_un sun;
    socklen_t len;
    if (bad_args(backlog, flags))
        return -EINVAL;     /* before anything at path is unlinked */
    int rc = weft_unix_addr(path, &sun, &len);
    if (rc)
        return rc;
    if (flags & WEFT_LISTEN_UNLINK)
        unlink_stale(path);
    return weft_listen((const struct sockaddr *)&sun, len, backlog, flags);
}
