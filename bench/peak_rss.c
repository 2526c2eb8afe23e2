/*
 * bench/peak_rss.c - weft-peak-rss CMD [ARG...]: run CMD, pass its output
 * through, and print "peak_rss_kib N" on stderr when it exits.
 *
 * The peak RSS of a process carries over exec from the process that forked
 * it, so a small launcher is needed to measure a benchmark started from a big
 * interpreter. Exits with CMD's exit status.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: weft-peak-rss CMD [ARG...]\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("weft-peak-rss: fork");
        return 1;
    }
    if (pid == 0) {
        execvp(argv[1], argv + 1);
        perror("weft-peak-rss: exec");
        _exit(127);
    }
    int status;
    struct rusage usage;
    if (wait4(pid, &status, 0, &usage) < 0) {
        perror("weft-peak-rss: wait4");
        return 1;
    }
    fprintf(stderr, "peak_rss_kib %ld\n", usage.ru_maxrss);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
