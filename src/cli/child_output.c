/* child_output.c - runs a program and keeps what it prints on stdout (for the commands
 * that ask a tool for a list: `ctest --show-only=json-v1`, `pytest --collect-only`). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"

int drv_cli_capture(char *const argv[], const char *dir, char **out, size_t *len, int *status,
                    drv_error *err)
{
    *out = NULL;
    *len = 0;
    int fd[2];
    if (pipe(fd) < 0)
        return drv_error_set(err, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return drv_error_set(err, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        if (dir && chdir(dir) < 0) {
            fprintf(stderr, "%s: cannot enter: %s\n", dir, strerror(errno));
            _exit(126);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    size_t cap = 65536, n = 0;
    char *buf = drv_xmalloc(cap); /* the caller's on success */
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= DRV_CLI_FILE_MAX)
                break;
            cap *= 2;
            buf = drv_xrealloc(buf, cap);
        }
        ssize_t k = read(fd[0], buf + n, cap - 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    buf[n] = '\0';
    *out = buf;
    *len = n;
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return 0;
}
