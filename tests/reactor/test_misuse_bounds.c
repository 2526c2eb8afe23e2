/*
 * tests/reactor/test_misuse_bounds.c - misuse that a range check must catch,
 * each once accepted (or crashed) although the headers promise an error:
 * a negative listen backlog.
 * Each call must return the documented error, leave nothing behind and
 * never crash. (The other misuse tests are tests/core/test_misuse_*.c.)
 */
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "core/core_util.h"
#include "weft/harness.h"

TestSuite(bounds, .timeout = 60);

/* ---- listeners: a negative backlog ---------------------------------------------- */

static int fd_count(void)
{
    int n = weft_harness_open_fds();
    cr_assert_geq(n, 0);
    return n;
}

Test(bounds, listen_refuses_a_negative_backlog)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fds = fd_count();
    cr_assert_eq(weft_listen((struct sockaddr *)&a, sizeof a, -1, 0), -EINVAL);
    cr_assert_eq(weft_listen((struct sockaddr *)&a, sizeof a, INT_MIN, 0), -EINVAL);
    cr_assert_eq(weft_tcp_listen((struct sockaddr *)&a, sizeof a, -5), -EINVAL);
    cr_assert_eq(fd_count(), fds, "a refused listener left an fd open");
    /* 0 is a backlog (the kernel's smallest queue), not misuse. */
    int fd = weft_tcp_listen((struct sockaddr *)&a, sizeof a, 0);
    cr_assert_geq(fd, 0);
    close(fd);
}

Test(bounds, unix_listen_refuses_a_negative_backlog_before_unlinking)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/weft-bounds-%d.sock", (int)getpid());
    int fd = weft_unix_listen(path, 1, WEFT_LISTEN_UNLINK);
    cr_assert_geq(fd, 0);
    close(fd);                  /* leaves a stale socket file */
    int fds = fd_count();
    cr_assert_eq(weft_unix_listen(path, -1, WEFT_LISTEN_UNLINK), -EINVAL);
    cr_assert_eq(weft_unix_listen(path, -1, 0), -EINVAL);
    cr_assert_eq(fd_count(), fds);
    struct stat st;
    cr_assert_eq(lstat(path, &st), 0, "the refused call unlinked the socket file");
    cr_assert(S_ISSOCK(st.st_mode));
    unlink(path);
}
