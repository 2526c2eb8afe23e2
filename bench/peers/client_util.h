/*
 * bench/peers/client_util.h - what the benchmark load generators (echo-client,
 * rpc-client) share: reading a server's CPU time, and connecting to a server
 * that may still be starting.
 */
#ifndef WEFT_BENCH_CLIENT_UTIL_H
#define WEFT_BENCH_CLIENT_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* How long open_conn retries a refused connection (the server starting). */
#define CLIENT_CONNECT_RETRY_MS 5000

struct proc_cpu {
    double total;       /* user+sys, from the process CPU clock */
    double user, sys;   /* from /proc/PID/stat, in clock ticks */
};

static inline bool read_proc_cpu(pid_t pid, struct proc_cpu *out)
{
    clockid_t clock;
    struct timespec ts;
    if (clock_getcpuclockid(pid, &clock) != 0 || clock_gettime(clock, &ts) != 0)
        return false;
    out->total = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    /* Fields 14 and 15 (utime, stime) follow the ")" that ends field 2. */
    const char *p = ok ? strrchr(line, ')') : NULL;
    unsigned long long utime, stime;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                     &utime, &stime) != 2)
        return false;
    double tick = (double)sysconf(_SC_CLK_TCK);
    out->user = (double)utime / tick;
    out->sys = (double)stime / tick;
    return true;
}

/* Connects to 127.0.0.1:port, retrying every 10 ms while the server is not
 * up yet (refused), and returns a non-blocking socket with Nagle disabled,
 * or -1 with errno set. */
static inline int open_conn(unsigned port)
{
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int waited = 0;; waited += 10) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
            int one = 1;
            if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0
                || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
                close(fd);
                return -1;
            }
            return fd;
        }
        int err = errno;
        close(fd);
        if (err != ECONNREFUSED || waited >= CLIENT_CONNECT_RETRY_MS) {
            errno = err;
            return -1;
        }
        struct timespec ten_ms = { 0, 10000000 };
        nanosleep(&ten_ms, NULL);
    }
}

#endif /* WEFT_BENCH_CLIENT_UTIL_H */
