/* test_runner.c - the child-process runner with real processes (sh and coreutils only):
 * exit codes and signals, output capture and the cap, timeouts that kill the whole
 * process group, leftovers killed at exit, env and cwd, spawn failures, peak memory,
 * cancel, and freeing a run that is still running; and what posix_spawn plus the
 * runner's own SIGCHLD watching must keep: exits that happen before the loop runs,
 * many quick runs without zombies, PATH searched in the child's environment, the
 * child's session, stdin and signal state, and living beside uv_spawn and children
 * the runner does not own. */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "worker/runner.h"

extern char **environ;

/* What a test learns from one run. */
typedef struct outcome {
    int exits;            /* how many times on_exit was called */
    drv_run_result res;   /* copy of the result (output points into the run) */
    uint64_t streamed[3]; /* bytes seen by on_output per stream */
} outcome;

static void on_exit_cb(drv_run *run, const drv_run_result *res, void *data)
{
    (void)run;
    outcome *o = data;
    o->exits++;
    o->res = *res;
}

static void on_output_cb(drv_run *run, drv_run_stream stream, const char *chunk, size_t len,
                         void *data)
{
    (void)run;
    (void)chunk;
    outcome *o = data;
    o->streamed[stream] += len;
}

/* Counts the processes in /proc whose state, parent and process group match: pgid and
 * ppid 0 match any; skip_zombies leaves zombies out, only_zombies counts them alone. */
static unsigned count_procs(int pgid, int ppid, bool skip_zombies, bool only_zombies)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = '\0';
        char *rp = strrchr(buf, ')');
        char state;
        int parent, pgrp;
        if (!rp || sscanf(rp + 1, " %c %d %d", &state, &parent, &pgrp) != 3)
            continue;
        if ((pgid && pgrp != pgid) || (ppid && parent != ppid) || (skip_zombies && state == 'Z') ||
            (only_zombies && state != 'Z'))
            continue;
        n++;
    }
    closedir(d);
    return n;
}

/* Counts the processes of group pgid that are not zombies (a zombie is dead; whether it
 * is reaped depends on the container's init, not on the runner). */
static unsigned live_in_group(int pgid)
{
    return count_procs(pgid, 0, true, false);
}

/* Waits up to one second for group pgid to have no live process (one killed a moment
 * ago can still be on its way out); returns how many are left. */
static unsigned live_after_wait(int pgid)
{
    unsigned n = live_in_group(pgid);
    for (int i = 0; i < 100 && n > 0; i++) {
        nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 10000000}, NULL);
        n = live_in_group(pgid);
    }
    return n;
}

/* Counts the processes whose parent is this test process: all of them, or only the
 * zombies (dead, not reaped). */
static unsigned children_of_self(bool zombies_only)
{
    return count_procs(0, (int)getpid(), false, zombies_only);
}

static void sleep_ms(long ms)
{
    nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000}, NULL);
}

/* Runs spec to the end on a fresh loop; fills *o; returns the run (caller frees). */
static drv_run *run_to_end(drv_run_spec *spec, outcome *o)
{
    memset(o, 0, sizeof *o);
    spec->on_exit = on_exit_cb;
    spec->on_output = on_output_cb;
    spec->data = o;
    uv_loop_t *loop = drv_xmalloc(sizeof *loop);
    assert_int_equal(uv_loop_init(loop), 0);
    drv_run *run = NULL;
    drv_error err = {{0}};
    assert_int_equal(drv_runner_start(loop, spec, &run, &err), 0);
    assert_non_null(run);
    assert_int_equal(o->exits, 0); /* never called from inside start */
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0); /* every handle was closed */
    free(loop);
    assert_int_equal(o->exits, 1);
    return run;
}

static int setup_alarm(void **state)
{
    (void)state;
    alarm(20); /* a hung run fails the test instead of hanging CTest */
    return 0;
}

static void test_exit_status_and_signal(void **state)
{
    (void)state;
    static const struct {
        const char *argv[4];
        int exit_code, term_signal;
    } rows[] = {
        {{"true", NULL}, 0, 0},
        {{"false", NULL}, 1, 0},
        {{"sh", "-c", "exit 3", NULL}, 3, 0},
        {{"sh", "-c", "kill -TERM $$", NULL}, -1, SIGTERM},
        {{"sh", "-c", "kill -KILL $$", NULL}, -1, SIGKILL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_run_spec spec = {.argv = (char *const *)rows[i].argv};
        outcome o;
        drv_run *run = run_to_end(&spec, &o);
        assert_false(o.res.infra_failure);
        assert_int_equal(o.res.exit_code, rows[i].exit_code);
        assert_int_equal(o.res.term_signal, rows[i].term_signal);
        assert_false(o.res.timed_out);
        assert_true(o.res.pid > 0);
        assert_true(o.res.duration_s > 0 && o.res.duration_s < 2);
        drv_run_free(run);
    }
}

static void test_output_capped_with_marker(void **state)
{
    (void)state;
    char *argv[] = {"sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a", NULL};
    drv_run_spec spec = {.argv = argv, .output_cap_bytes = 1000};
    outcome o;
    drv_run *run = run_to_end(&spec, &o);
    assert_int_equal(o.res.exit_code, 0);
    assert_int_equal(o.res.output_bytes, 100000);
    assert_int_equal(o.res.output_dropped, 99000);
    assert_int_equal(o.streamed[DRV_RUN_STDOUT], 100000); /* streaming sees everything */
    const char *marker = "[drover: 99000 bytes of output dropped]\n";
    size_t m = strlen(marker);
    assert_int_equal(o.res.output_len, m + 1000);
    assert_memory_equal(o.res.output, marker, m);
    for (size_t i = m; i < o.res.output_len; i++)
        assert_int_equal(o.res.output[i], 'a');
    assert_int_equal(o.res.output[o.res.output_len], '\0');
    drv_run_free(run);
}

static void test_output_both_streams_uncapped(void **state)
{
    (void)state;
    char *argv[] = {"sh", "-c", "echo to-out; echo to-err >&2", NULL};
    drv_run_spec spec = {.argv = argv};
    outcome o;
    drv_run *run = run_to_end(&spec, &o);
    assert_non_null(strstr(o.res.output, "to-out\n"));
    assert_non_null(strstr(o.res.output, "to-err\n"));
    assert_null(strstr(o.res.output, "dropped"));
    assert_int_equal(o.res.output_dropped, 0);
    assert_int_equal(o.streamed[DRV_RUN_STDOUT], 7);
    assert_int_equal(o.streamed[DRV_RUN_STDERR], 7);
    drv_run_free(run);
}

static void test_timeout_kills_whole_group(void **state)
{
    (void)state;
    char *argv[] = {"sh", "-c", "sleep 30 & sleep 30 & wait", NULL};
    drv_run_spec spec = {.argv = argv, .timeout_s = 0.3};
    outcome o;
    memset(&o, 0, sizeof o);
    spec.on_exit = on_exit_cb;
    spec.data = &o;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    drv_run *run = NULL;
    assert_int_equal(drv_runner_start(&loop, &spec, &run, NULL), 0);
    int pgid = drv_run_pid(run);
    assert_true(pgid > 0);
    nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 150000000}, NULL);
    unsigned before = live_in_group(pgid);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(o.exits, 1);
    assert_int_equal(o.res.pid, pgid);
    assert_int_equal(before, 3); /* sh and both sleeps were running */
    assert_true(o.res.timed_out);
    assert_false(o.res.cancelled);
    assert_int_equal(o.res.term_signal, SIGTERM);
    assert_true(o.res.duration_s >= 0.29 && o.res.duration_s < 2.0);
    assert_int_equal(live_after_wait(pgid), 0);
    drv_run_free(run);
}

static void test_timeout_escalates_to_sigkill(void **state)
{
    (void)state;
    /* Ignored SIGTERM is inherited by sleep, so only SIGKILL ends the group. */
    char *argv[] = {"sh", "-c", "trap '' TERM; sleep 30", NULL};
    drv_run_spec spec = {.argv = argv, .timeout_s = 0.1, .kill_grace_s = 0.2};
    outcome o;
    drv_run *run = run_to_end(&spec, &o);
    assert_true(o.res.timed_out);
    assert_int_equal(o.res.term_signal, SIGKILL);
    assert_true(o.res.duration_s >= 0.29 && o.res.duration_s < 2.0);
    assert_int_equal(live_after_wait(o.res.pid), 0);
    drv_run_free(run);
}

static void test_leftovers_killed_at_exit(void **state)
{
    (void)state;
    /* The background sleep holds the output pipe: the run must not wait 30 s for it. */
    char *argv[] = {"sh", "-c", "sleep 30 & echo started", NULL};
    drv_run_spec spec = {.argv = argv};
    outcome o;
    drv_run *run = run_to_end(&spec, &o);
    assert_int_equal(o.res.exit_code, 0);
    assert_false(o.res.timed_out);
    assert_string_equal(o.res.output, "started\n");
    assert_true(o.res.duration_s < 2.0);
    assert_int_equal(live_after_wait(o.res.pid), 0);
    drv_run_free(run);
}

static void test_env_and_cwd(void **state)
{
    (void)state;
    char dir[] = "/tmp/drv_runner_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *argv[] = {"sh", "-c", "echo \"$FOO\"; echo \"$HOME\"; pwd", NULL};
    char *env[] = {"FOO=bar baz", "HOME=/nowhere", NULL};
    drv_run_spec spec = {.argv = argv, .env = env, .cwd = dir};
    outcome o;
    drv_run *run = run_to_end(&spec, &o);
    char want[128];
    snprintf(want, sizeof want, "bar baz\n/nowhere\n%s\n", dir);
    assert_string_equal(o.res.output, want);
    drv_run_free(run);
    rmdir(dir);
}

static void test_shell_only_when_asked(void **state)
{
    (void)state;
    /* Without shell, the metacharacters reach echo as they are. */
    char *plain[] = {"echo", "$HOME", ";", "true", NULL};
    drv_run_spec spec = {.argv = plain};
    outcome o;
    drv_run *run = run_to_end(&spec, &o);
    assert_string_equal(o.res.output, "$HOME ; true\n");
    drv_run_free(run);

    char *shell[] = {"echo \"$0-$1\"", "a", "b", NULL};
    drv_run_spec s2 = {.argv = shell, .shell = true};
    run = run_to_end(&s2, &o);
    assert_string_equal(o.res.output, "a-b\n");
    drv_run_free(run);
}

static void test_spawn_failures_are_infra(void **state)
{
    (void)state;
    /* A plain file: not executable, not a directory. */
    char file[] = "/tmp/drv_runner_file_XXXXXX";
    int fd = mkstemp(file);
    assert_true(fd >= 0);
    close(fd);
    char denied[128], notdir[128];
    snprintf(denied, sizeof denied, "spawn %s: permission denied", file);
    snprintf(notdir, sizeof notdir, "working directory %s: not a directory", file);
    const struct {
        const char *prog, *cwd, *msg;
    } rows[] = {
        {"/nonexistent/prog", NULL, "spawn /nonexistent/prog: no such file or directory"},
        {"no-such-program-drv", NULL, "spawn no-such-program-drv: no such file or directory"},
        {file, NULL, denied},
        {"true", "/nonexistent/dir", "working directory /nonexistent/dir: No such file"},
        {"true", file, notdir},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *argv[] = {(char *)rows[i].prog, NULL};
        drv_run_spec spec = {.argv = argv, .cwd = rows[i].cwd};
        outcome o;
        drv_run *run = run_to_end(&spec, &o);
        if (!o.res.infra_failure)
            fail_msg("row %zu (%s): not an infra failure", i, rows[i].prog);
        if (!o.res.test_fault) /* each is the test's fault, not the machine's */
            fail_msg("row %zu (%s): not the test's fault", i, rows[i].prog);
        assert_int_equal(o.res.exit_code, -1);
        assert_int_equal(o.res.pid, 0);
        if (!strstr(o.res.error, rows[i].msg))
            fail_msg("row %zu: \"%s\" does not contain \"%s\"", i, o.res.error, rows[i].msg);
        drv_run_free(run);
    }
    unlink(file);
}

static void test_bad_spec_rejected(void **state)
{
    (void)state;
    char *none[] = {NULL};
    char *empty[] = {"", NULL};
    char *ok[] = {"true", NULL};
    char *bad_env[] = {"NOEQUALS", NULL};
    static const char *msgs[] = {"argv is empty", "argv is empty", "argv[0]) is empty",
                                 "\"NOEQUALS\": expected KEY=VALUE", "must be >= 0"};
    drv_run_spec specs[] = {
        {.argv = NULL},
        {.argv = none},
        {.argv = empty},
        {.argv = ok, .env = bad_env},
        {.argv = ok, .timeout_s = -1},
    };
    uv_loop_t loop;
    uv_loop_init(&loop);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        drv_run *run = (drv_run *)&loop; /* must stay untouched */
        drv_error err = {{0}};
        assert_int_equal(drv_runner_start(&loop, &specs[i], &run, &err), -1);
        assert_ptr_equal(run, (drv_run *)&loop);
        if (!strstr(err.msg, msgs[i]))
            fail_msg("row %zu: \"%s\" does not contain \"%s\"", i, err.msg, msgs[i]);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_peak_memory(void **state)
{
    (void)state;
    /* The shell itself holds 4 MB of command-substitution output, then sleeps. */
    char *big[] = {"sh", "-c", "x=$(head -c 4000000 /dev/zero | tr '\\0' a); sleep 0.1", NULL};
    char *small[] = {"sh", "-c", "sleep 0.1", NULL};
    drv_run_spec spec = {.argv = big};
    outcome o;
    drv_run *run = run_to_end(&spec, &o);
    uint64_t big_kb = o.res.peak_memory_kb;
    drv_run_free(run);
    drv_run_spec s2 = {.argv = small};
    run = run_to_end(&s2, &o);
    uint64_t small_kb = o.res.peak_memory_kb;
    drv_run_free(run);
    assert_true(small_kb > 0);
    assert_true(big_kb >= 3900);
    assert_true(big_kb > small_kb + 3000);
}

/* Cancels the run given as the timer's data. */
static void cancel_now(uv_timer_t *t)
{
    drv_run_cancel(t->data);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel(void **state)
{
    (void)state;
    char *argv[] = {"sleep", "30", NULL};
    outcome o;
    memset(&o, 0, sizeof o);
    drv_run_spec spec = {.argv = argv, .on_exit = on_exit_cb, .data = &o};
    uv_loop_t loop;
    uv_loop_init(&loop);
    drv_run *run = NULL;
    assert_int_equal(drv_runner_start(&loop, &spec, &run, NULL), 0);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = run;
    uv_timer_start(&t, cancel_now, 100, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(o.exits, 1);
    assert_true(o.res.cancelled);
    assert_false(o.res.timed_out);
    assert_int_equal(o.res.term_signal, SIGTERM);
    assert_true(o.res.duration_s < 2.0);
    drv_run_cancel(run); /* after the end: nothing happens */
    drv_run_free(run);
    drv_run_cancel(NULL);
    drv_run_free(NULL);
}

static void test_free_while_running(void **state)
{
    (void)state;
    char *argv[] = {"sleep", "30", NULL};
    outcome o;
    memset(&o, 0, sizeof o);
    drv_run_spec spec = {.argv = argv, .on_exit = on_exit_cb, .data = &o};
    uv_loop_t loop;
    uv_loop_init(&loop);
    drv_run *run = NULL;
    assert_int_equal(drv_runner_start(&loop, &spec, &run, NULL), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    drv_run_free(run); /* cancels; freed when closed (ASan reports a leak otherwise) */
    uint64_t t0 = uv_hrtime();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(uv_hrtime() - t0 < 2000000000u);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(o.exits, 0);
}

/* Children that are all gone before the loop ever runs (their SIGCHLDs merged into one,
 * delivered while nothing was dispatching) are still seen, each with its status. */
static void test_exit_before_loop_runs(void **state)
{
    (void)state;
    enum { N = 20 };
    char *argv_true[] = {"true", NULL};
    char *argv_exit[] = {"sh", "-c", "exit 4", NULL};
    outcome o[N];
    drv_run *runs[N];
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    for (int i = 0; i < N; i++) {
        memset(&o[i], 0, sizeof o[i]);
        drv_run_spec spec = {
            .argv = i % 2 ? argv_exit : argv_true, .on_exit = on_exit_cb, .data = &o[i]};
        assert_int_equal(drv_runner_start(&loop, &spec, &runs[i], NULL), 0);
        assert_true(drv_run_pid(runs[i]) > 0);
    }
    sleep_ms(300); /* every child has exited by now; nobody has looked */
    uint64_t t0 = uv_hrtime();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(uv_hrtime() - t0 < 1000000000u); /* not the drain timer, not a hang */
    assert_int_equal(uv_loop_close(&loop), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].exits, 1);
        assert_false(o[i].res.infra_failure);
        assert_int_equal(o[i].res.exit_code, i % 2 ? 4 : 0);
        assert_int_equal(o[i].res.term_signal, 0);
        drv_run_free(runs[i]);
    }
    assert_int_equal(children_of_self(false), 0);
}

/* The driver of test_many_quick_runs: keeps up to `parallel` runs of `true` going until
 * `total` have started, starting the next from on_exit. */
typedef struct many {
    uv_loop_t loop;
    int total, parallel, started, running, ok, bad, max_running;
} many;

static void many_start_one(many *m);

static void many_on_exit(drv_run *run, const drv_run_result *res, void *data)
{
    many *m = data;
    m->running--;
    if (!res->infra_failure && res->exit_code == 0 && res->term_signal == 0 && res->pid > 0)
        m->ok++;
    else
        m->bad++;
    drv_run_free(run); /* inside on_exit is allowed */
    while (m->started < m->total && m->running < m->parallel)
        many_start_one(m);
}

static void many_start_one(many *m)
{
    static char *argv[] = {"true", NULL};
    drv_run_spec spec = {.argv = argv, .on_exit = many_on_exit, .data = m};
    drv_run *run = NULL;
    assert_int_equal(drv_runner_start(&m->loop, &spec, &run, NULL), 0);
    m->started++;
    if (++m->running > m->max_running)
        m->max_running = m->running;
}

static void test_many_quick_runs(void **state)
{
    (void)state;
    many m = {.total = 200, .parallel = 8};
    assert_int_equal(uv_loop_init(&m.loop), 0);
    while (m.started < m.parallel)
        many_start_one(&m);
    uv_run(&m.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&m.loop), 0);
    assert_int_equal(m.started, 200);
    assert_int_equal(m.ok, 200);
    assert_int_equal(m.bad, 0);
    assert_int_equal(m.max_running, 8);
    assert_int_equal(children_of_self(true), 0); /* every one was reaped */
    assert_int_equal(children_of_self(false), 0);
}

/* Writes an executable (mode) file dir/name holding text. */
static void write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
    char path[256];
    int w = snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_true(w > 0 && (size_t)w < sizeof path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

/* argv[0] without '/' is searched on the PATH of the child's environment (the spec's
 * PATH, not the worker's), relative entries from the child's directory; a script
 * without "#!" runs with /bin/sh; not executable or not found are infra failures. */
static void test_path_search_in_child_env(void **state)
{
    (void)state;
    char top[] = "/tmp/drv_runner_path_XXXXXX";
    assert_non_null(mkdtemp(top));
    char bin[300];
    snprintf(bin, sizeof bin, "%s/bin", top);
    assert_int_equal(mkdir(bin, 0755), 0);
    write_file(bin, "drv-probe", "#!/bin/sh\necho \"probe $1\"\n", 0755);
    write_file(bin, "drv-noshebang", "echo \"plain $1\"\n", 0755);
    write_file(bin, "drv-noexec", "#!/bin/sh\necho no\n", 0644);
    char abs_path[400], rel_path[] = "PATH=bin:/usr/bin:/bin";
    snprintf(abs_path, sizeof abs_path, "PATH=%s:/usr/bin:/bin", bin);
    char *nowhere = "PATH=/nonexistent";
    const struct {
        const char *prog, *path_env, *cwd, *out, *err;
    } rows[] = {
        {"drv-probe", abs_path, NULL, "probe x\n", NULL},
        {"drv-probe", rel_path, top, "probe x\n", NULL},
        {"drv-noshebang", abs_path, NULL, "plain x\n", NULL},
        {"drv-noexec", abs_path, NULL, NULL, "spawn drv-noexec: permission denied"},
        {"drv-missing", abs_path, NULL, NULL, "spawn drv-missing: no such file or directory"},
        /* The worker's own PATH has true; the child's has not. */
        {"true", nowhere, NULL, NULL, "spawn true: no such file or directory"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char *argv[] = {(char *)rows[i].prog, "x", NULL};
        char *env[] = {(char *)rows[i].path_env, NULL};
        drv_run_spec spec = {.argv = argv, .env = env, .cwd = rows[i].cwd};
        outcome o;
        drv_run *run = run_to_end(&spec, &o);
        if (rows[i].out) {
            if (o.res.infra_failure)
                fail_msg("row %zu (%s): infra failure: %s", i, rows[i].prog, o.res.error);
            assert_int_equal(o.res.exit_code, 0);
            assert_string_equal(o.res.output, rows[i].out);
        } else {
            assert_true(o.res.infra_failure);
            assert_int_equal(o.res.pid, 0);
            assert_int_equal(o.res.exit_code, -1);
            if (!strstr(o.res.error, rows[i].err))
                fail_msg("row %zu: \"%s\" does not contain \"%s\"", i, o.res.error, rows[i].err);
        }
        drv_run_free(run);
    }
    const char *names[] = {"drv-probe", "drv-noshebang", "drv-noexec"};
    for (size_t i = 0; i < 3; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s", bin, names[i]);
        unlink(path);
    }
    rmdir(bin);
    rmdir(top);
}

/* The child leads its own session and group, reads /dev/null, writes to pipes, and
 * starts with no signal blocked or ignored whatever the worker has blocked or ignored,
 * and with no descriptor of the worker's but the three it is given. */
static void test_child_session_stdin_signals(void **state)
{
    (void)state;
    char *ids[] = {"cut", "-d", " ", "-f", "1,5,6", "/proc/self/stat", NULL};
    drv_run_spec spec = {.argv = ids};
    outcome o;
    drv_run *run = run_to_end(&spec, &o);
    char want[64];
    snprintf(want, sizeof want, "%d %d %d\n", o.res.pid, o.res.pid, o.res.pid);
    assert_string_equal(o.res.output, want); /* pid, process group, session */
    drv_run_free(run);

    char *fds[] = {"readlink", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2", NULL};
    drv_run_spec s2 = {.argv = fds};
    run = run_to_end(&s2, &o);
    assert_true(strncmp(o.res.output, "/dev/null\npipe:[", 16) == 0);
    assert_non_null(strstr(o.res.output + 16, "\npipe:["));
    drv_run_free(run);

    /* A descriptor the worker holds without close-on-exec (as a library may open its
     * sockets and pipes) does not reach the test: ls sees 0, 1, 2 and its own directory. */
    int leak[2];
    assert_int_equal(pipe(leak), 0);
    char *ls[] = {"ls", "/proc/self/fd", NULL};
    drv_run_spec s4 = {.argv = ls};
    run = run_to_end(&s4, &o);
    close(leak[0]);
    close(leak[1]);
    assert_string_equal(o.res.output, "0\n1\n2\n3\n");
    drv_run_free(run);

    /* The worker blocks SIGUSR1 and ignores SIGINT and SIGHUP. */
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old_mask), 0);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_hup;
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGHUP, &ign, &old_hup);
    char *sig[] = {"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status", NULL};
    drv_run_spec s3 = {.argv = sig};
    run = run_to_end(&s3, &o);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    unsigned long long blocked = ~0ull, ignored = ~0ull;
    assert_int_equal(sscanf(o.res.output, "SigBlk: %llx SigIgn: %llx", &blocked, &ignored), 2);
    assert_int_equal(blocked, 0);
    /* glibc's posix_spawn leaves its two internal signals (32 and 33, below SIGRTMIN and
     * unusable by programs that use glibc) ignored; every other signal is at its
     * default. */
    assert_int_equal(ignored & ~(3ull << 31), 0);
    drv_run_free(run);
}

static void on_uv_child_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    (void)term_signal;
    *(int64_t *)p->data = exit_status;
    uv_close((uv_handle_t *)p, NULL);
}

/* On one loop: a uv_spawn child, a child the test spawns itself, and runs. Each owner
 * learns its own child's status: the runner reaps only its own pids. */
static void test_beside_uv_spawn_and_foreign_children(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    /* The foreign child exits while the runs are still being watched. */
    pid_t foreign;
    char *fargv[] = {"sh", "-c", "sleep 0.1; exit 5", NULL};
    assert_int_equal(posix_spawnp(&foreign, "sh", NULL, NULL, fargv, environ), 0);

    int64_t uv_status = -1;
    uv_process_t proc;
    proc.data = &uv_status;
    char *uargv[] = {"sh", "-c", "sleep 0.1; exit 7", NULL};
    uv_process_options_t opts = {.exit_cb = on_uv_child_exit, .file = "sh", .args = uargv};
    assert_int_equal(uv_spawn(&loop, &proc, &opts), 0);

    enum { N = 4 };
    outcome o[N];
    drv_run *runs[N];
    char *rargv[] = {"sh", "-c", "sleep 0.3; exit 3", NULL};
    char *quick[] = {"sh", "-c", "exit 2", NULL};
    for (int i = 0; i < N; i++) {
        memset(&o[i], 0, sizeof o[i]);
        drv_run_spec spec = {.argv = i ? rargv : quick, .on_exit = on_exit_cb, .data = &o[i]};
        assert_int_equal(drv_runner_start(&loop, &spec, &runs[i], NULL), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(uv_status, 7);
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].exits, 1);
        assert_int_equal(o[i].res.exit_code, i ? 3 : 2);
        drv_run_free(runs[i]);
    }
    int st = 0;
    assert_int_equal(waitpid(foreign, &st, 0), foreign); /* still there for its owner */
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 5);
}

/* A run freed while its group is alive: the group (main process and its children) is
 * killed, the main process reaped, and the loop empties without on_exit. */
static void test_free_before_exit_leaves_no_process(void **state)
{
    (void)state;
    char *argv[] = {"sh", "-c", "sleep 30 & sleep 30 & wait", NULL};
    outcome o;
    memset(&o, 0, sizeof o);
    drv_run_spec spec = {.argv = argv, .on_exit = on_exit_cb, .data = &o};
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    drv_run *run = NULL;
    assert_int_equal(drv_runner_start(&loop, &spec, &run, NULL), 0);
    int pgid = drv_run_pid(run);
    sleep_ms(100);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(live_in_group(pgid), 3);
    drv_run_free(run);
    uint64_t t0 = uv_hrtime();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(uv_hrtime() - t0 < 2000000000u);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(o.exits, 0);
    assert_int_equal(live_after_wait(pgid), 0);
    assert_int_equal(children_of_self(false), 0); /* reaped, not a zombie */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_exit_status_and_signal, setup_alarm),
        cmocka_unit_test_setup(test_output_capped_with_marker, setup_alarm),
        cmocka_unit_test_setup(test_output_both_streams_uncapped, setup_alarm),
        cmocka_unit_test_setup(test_timeout_kills_whole_group, setup_alarm),
        cmocka_unit_test_setup(test_timeout_escalates_to_sigkill, setup_alarm),
        cmocka_unit_test_setup(test_leftovers_killed_at_exit, setup_alarm),
        cmocka_unit_test_setup(test_env_and_cwd, setup_alarm),
        cmocka_unit_test_setup(test_shell_only_when_asked, setup_alarm),
        cmocka_unit_test_setup(test_spawn_failures_are_infra, setup_alarm),
        cmocka_unit_test_setup(test_bad_spec_rejected, setup_alarm),
        cmocka_unit_test_setup(test_peak_memory, setup_alarm),
        cmocka_unit_test_setup(test_cancel, setup_alarm),
        cmocka_unit_test_setup(test_free_while_running, setup_alarm),
        cmocka_unit_test_setup(test_exit_before_loop_runs, setup_alarm),
        cmocka_unit_test_setup(test_many_quick_runs, setup_alarm),
        cmocka_unit_test_setup(test_path_search_in_child_env, setup_alarm),
        cmocka_unit_test_setup(test_child_session_stdin_signals, setup_alarm),
        cmocka_unit_test_setup(test_beside_uv_spawn_and_foreign_children, setup_alarm),
        cmocka_unit_test_setup(test_free_before_exit_leaves_no_process, setup_alarm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
