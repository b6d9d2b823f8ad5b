/* cmd_judge.c - `drover judge`: runs a command and says whether it passed, failed or
 * skipped itself, from its exit code and its output, as CTest judges a test.
 *
 *   drover judge [--will-fail] [--pass-regex R]... [--fail-regex R]... [--skip-code N]
 *                [--skip-regex R]... [--exit-skip N] -- PROGRAM ARGS...
 *
 * `drover ctest` wraps the tests whose CTest properties judge the output or the exit code
 * with it, so the judging happens on the worker, next to the whole output, and the test's
 * own stdout and stderr still go to the worker as they come. Order (CTest's):
 * SKIP_RETURN_CODE, then SKIP_REGULAR_EXPRESSION (skipped); PASS_REGULAR_EXPRESSION
 * replaces the exit code (passed when any matches); a FAIL_REGULAR_EXPRESSION match
 * fails; WILL_FAIL inverts what exited (a test killed by a signal fails either way). The
 * expressions are POSIX extended, ^ and $ at line ends. Exits 0 passed, 1 failed,
 * --exit-skip (77) skipped; the verdict, when a property decided it, is one line on
 * stderr ("drover judge: failed: no output matched PASS_REGULAR_EXPRESSION \"^ok\""). */
#include <errno.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"

#define CAPTURE_MAX (64u << 20) /* output kept for the expressions */

typedef struct judge_args {
    bool will_fail;
    drv_opt_list pass, fail, skip_regex;
    uint64_t skip_code; /* 0: none (a skip code of 0 would skip every passing test) */
    uint64_t exit_skip;
} judge_args;

#define J(f) offsetof(judge_args, f)
static const drv_opt judge_opts[] = {
    {"--will-fail", NULL, DRV_OPT_FLAG, J(will_fail), 0, 0, NULL, "WILL_FAIL: invert the result",
     NULL},
    {"--pass-regex", NULL, DRV_OPT_LIST, J(pass), 0, 0, "R",
     "PASS_REGULAR_EXPRESSION: passed when the output matches one", NULL},
    {"--fail-regex", NULL, DRV_OPT_LIST, J(fail), 0, 0, "R",
     "FAIL_REGULAR_EXPRESSION: failed when the output matches one", NULL},
    {"--skip-code", NULL, DRV_OPT_UINT, J(skip_code), 1, 255, "N",
     "SKIP_RETURN_CODE: exit code N means skipped", NULL},
    {"--skip-regex", NULL, DRV_OPT_LIST, J(skip_regex), 0, 0, "R",
     "SKIP_REGULAR_EXPRESSION: skipped when the output matches one", NULL},
    {"--exit-skip", NULL, DRV_OPT_UINT, J(exit_skip), 2, 255, "N",
     "the exit code that says skipped (default 77)", NULL},
};
#define N_JUDGE_OPTS (sizeof judge_opts / sizeof judge_opts[0])

void drv_cmd_judge_usage(FILE *out)
{
    fprintf(out, "usage: drover judge [options] -- PROGRAM ARGS...\n"
                 "\n"
                 "Runs PROGRAM, passing its stdout and stderr through, and judges it as CTest\n"
                 "would with these test properties (drover ctest uses it):\n"
                 "\n");
    drv_opt_usage(out, judge_opts, N_JUDGE_OPTS);
    fprintf(out, "\nExits 0 passed, 1 failed, the --exit-skip code skipped; 2 on a wrong command\n"
                 "line or an expression that does not compile.\n");
}

/* Appends n bytes to the capture (NUL bytes become spaces: regexec stops at NUL). */
static void capture(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n > CAPTURE_MAX)
        n = CAPTURE_MAX - *len;
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap)
            *cap = *cap ? *cap * 2 : 65536;
        *buf = drv_xrealloc(*buf, *cap);
    }
    for (size_t i = 0; i < n; i++)
        (*buf)[*len + i] = data[i] ? data[i] : ' ';
    *len += n;
    (*buf)[*len] = '\0';
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Index of the first expression of l matching text, or -1; -2 after printing a bad one. */
static int first_match(const drv_opt_list *l, const char *what, const char *text)
{
    for (size_t i = 0; i < l->n; i++) {
        regex_t re;
        int rc = regcomp(&re, l->v[i], REG_EXTENDED | REG_NEWLINE | REG_NOSUB);
        if (rc != 0) {
            char msg[256];
            regerror(rc, &re, msg, sizeof msg);
            fprintf(stderr, "drover judge: %s \"%s\": %s\n", what, l->v[i], msg);
            return -2;
        }
        bool m = regexec(&re, text, 0, NULL, 0) == 0;
        regfree(&re);
        if (m)
            return (int)i;
    }
    return -1;
}

int drv_cmd_judge(int argc, char **argv)
{
    judge_args a = {.exit_skip = 77};
    int rest;
    int code = drv_opt_parse("judge", judge_opts, N_JUDGE_OPTS, &a, NULL, argc, argv, &rest);
    if (code >= 0)
        return code;
    if (rest >= argc) {
        fprintf(stderr, "drover judge: expected -- PROGRAM ARGS... (see drover judge --help)\n");
        return DRV_EXIT_USAGE;
    }
    int out_pipe[2], err_pipe[2];
    if (pipe(out_pipe) < 0 || pipe(err_pipe) < 0) {
        fprintf(stderr, "drover judge: pipe: %s\n", strerror(errno));
        return DRV_EXIT_FAILURE;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "drover judge: fork: %s\n", strerror(errno));
        return DRV_EXIT_FAILURE;
    }
    if (pid == 0) {
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        close(out_pipe[0]);
        close(out_pipe[1]);
        close(err_pipe[0]);
        close(err_pipe[1]);
        execvp(argv[rest], argv + rest);
        fprintf(stderr, "drover judge: cannot run %s: %s\n", argv[rest], strerror(errno));
        _exit(127);
    }
    close(out_pipe[1]);
    close(err_pipe[1]);
    signal(SIGPIPE, SIG_IGN);
    char *text = NULL;
    size_t len = 0, cap = 0;
    capture(&text, &len, &cap, "", 0);
    struct pollfd p[2] = {{.fd = out_pipe[0], .events = POLLIN},
                          {.fd = err_pipe[0], .events = POLLIN}};
    int open_fds = 2;
    char buf[65536];
    while (open_fds > 0) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int k = 0; k < 2; k++) {
            if (p[k].fd < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(p[k].fd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                close(p[k].fd);
                p[k].fd = -1;
                open_fds--;
                continue;
            }
            write_all(k == 0 ? 1 : 2, buf, (size_t)n);
            capture(&text, &len, &cap, buf, (size_t)n);
        }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    bool exited = WIFEXITED(status);
    int exit_code = exited ? WEXITSTATUS(status) : -1;
    int m;
    code = DRV_EXIT_FAILURE;
    if (a.skip_code && exited && (uint64_t)exit_code == a.skip_code) {
        fprintf(stderr, "drover judge: skipped: exit code %d is SKIP_RETURN_CODE\n", exit_code);
        code = (int)a.exit_skip;
        goto out;
    }
    if ((m = first_match(&a.skip_regex, "SKIP_REGULAR_EXPRESSION", text)) != -1) {
        if (m == -2)
            goto bad;
        fprintf(stderr,
                "drover judge: skipped: the output matched SKIP_REGULAR_EXPRESSION \"%s\"\n",
                a.skip_regex.v[m]);
        code = (int)a.exit_skip;
        goto out;
    }
    if (!exited) {
        fprintf(stderr, "drover judge: failed: killed by signal %d\n", WTERMSIG(status));
        goto out;
    }
    bool passed = exit_code == 0;
    char why[600] = "";
    if (a.pass.n) {
        if ((m = first_match(&a.pass, "PASS_REGULAR_EXPRESSION", text)) == -2)
            goto bad;
        passed = m >= 0;
        if (passed)
            snprintf(why, sizeof why, "the output matched PASS_REGULAR_EXPRESSION \"%.200s\"",
                     a.pass.v[m]);
        else
            snprintf(why, sizeof why, "no output matched PASS_REGULAR_EXPRESSION \"%.200s\"%s",
                     a.pass.v[0], a.pass.n > 1 ? " (nor the others)" : "");
    }
    if ((m = first_match(&a.fail, "FAIL_REGULAR_EXPRESSION", text)) == -2)
        goto bad;
    if (m >= 0) {
        passed = false;
        snprintf(why, sizeof why, "the output matched FAIL_REGULAR_EXPRESSION \"%.200s\"",
                 a.fail.v[m]);
    }
    if (a.will_fail) {
        passed = !passed;
        char inner[600];
        snprintf(inner, sizeof inner, "%s", why[0] ? why : "");
        snprintf(why, sizeof why, "WILL_FAIL is set and %s%.400s", inner[0] ? "" : "it exited ",
                 inner[0] ? inner : (exit_code == 0 ? "0" : "non-zero"));
    }
    if (why[0])
        fprintf(stderr, "drover judge: %s: %s\n", passed ? "passed" : "failed", why);
    code = passed ? DRV_EXIT_OK : DRV_EXIT_FAILURE;
    goto out;
bad:
    code = DRV_EXIT_USAGE;
out:
    free(text);
    return code;
}
