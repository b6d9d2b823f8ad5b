/* test_guardian.c - the guardian with real process groups: at the worker's end (here
 * drv_guardian_stop, which closes the pipe as an exit would) it kills every group it was
 * told of and that has not ended, and none that ended - also when the ends were held
 * back (drv_guardian_forget) and went out with a later start or with the close, and when
 * more ends were held than one write carries. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "worker/guardian.h"

/* A `sleep 30` in a session (and so a process group) of its own; its pid is the group. */
static pid_t start_group(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setsid();
        execl("/bin/sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Whether pid was killed by SIGKILL within 5 s (reaped if so). */
static bool killed(pid_t pid)
{
    for (int i = 0; i < 500; i++) {
        int st;
        pid_t got = waitpid(pid, &st, WNOHANG);
        if (got == pid)
            return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Whether pid is still running (not exited, not waiting to be reaped). */
static bool running(pid_t pid)
{
    int st;
    return waitpid(pid, &st, WNOHANG) == 0;
}

static void end(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void test_kills_what_runs_not_what_ended(void **state)
{
    (void)state;
    drv_error err = {{0}};
    drv_guardian *g = drv_guardian_start(&err);
    assert_non_null(g);
    pid_t a = start_group(), b = start_group(), c = start_group();
    drv_guardian_watch(g, a);
    drv_guardian_watch(g, b);
    drv_guardian_forget(g, a); /* held back ... */
    drv_guardian_watch(g, c);  /* ... and told with this start */
    drv_guardian_forget(g, c); /* held back and told at the close */
    drv_guardian_stop(g);
    assert_true(killed(b));
    assert_true(running(a));
    assert_true(running(c));
    end(a);
    end(c);
}

static void test_many_held_ends(void **state)
{
    (void)state;
    enum { N = 40 }; /* more than one write of held ends carries */
    drv_error err = {{0}};
    drv_guardian *g = drv_guardian_start(&err);
    assert_non_null(g);
    pid_t ended[N];
    for (int i = 0; i < N; i++) {
        ended[i] = start_group();
        drv_guardian_watch(g, ended[i]);
    }
    for (int i = 0; i < N; i++)
        drv_guardian_forget(g, ended[i]);
    pid_t live = start_group();
    drv_guardian_watch(g, live);
    drv_guardian_flush(g);
    drv_guardian_stop(g);
    assert_true(killed(live));
    for (int i = 0; i < N; i++) {
        assert_true(running(ended[i]));
        end(ended[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kills_what_runs_not_what_ended),
        cmocka_unit_test(test_many_held_ends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
