/* cmd_submit.c - `drover submit` and `drover run`: send tests to the coordinator.
 *
 *   drover submit [--run NAME] [--quiet] FILE|-
 *   drover submit [--run NAME] [--quiet] [TEST FLAGS] -- PROGRAM ARGS...
 *   drover run    (the same, then waits for the run like `drover wait`)
 *
 * A file (JSON array, one object, or JSON lines) is checked here with the coordinator's
 * own parser before anything is sent, so a bad line is reported with its number and
 * nothing is submitted. A command after `--` becomes one test, its fields from the test
 * flags (client.h, drv_test_flag_at). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "client/client.h"

/* What the command line of submit and run says. */
typedef struct submit_args {
    drv_cli_conn conn;
    const char *file;    /* FILE or "-"; NULL with a command */
    char **command;      /* the words after "--"; NULL with a file */
    const char *run;     /* --run NAME */
    bool quiet;          /* --quiet */
    bool json;           /* submit: --json */
    double wait_timeout; /* run: --wait-timeout S; 0 none */
    long rerun_failures; /* --rerun-failures N; -1 not given */
    const char *first_test_flag;
    drv_test_builder test; /* the test flags given */
} submit_args;

static int parse_reruns(const char *cmd, const drv_opt *o, const char *v, void *at);
static int parse_test_flag(const char *cmd, const drv_opt *o, const char *v, void *at);

#define SA(f) offsetof(submit_args, f)
/* The options of submit and run; run's own last. */
static const drv_opt own_opts[] = {
    {"--run", NULL, DRV_OPT_STRING, SA(run), 0, 0, "NAME", "name the run", NULL},
    {"--quiet", NULL, DRV_OPT_FLAG, SA(quiet), 0, 0, NULL, "print only the run id (for scripts)",
     NULL},
    {"--json", NULL, DRV_OPT_FLAG, SA(json), 0, 0, NULL, "print {\"run_id\": R, \"count\": N}",
     NULL},
    {"--rerun-failures", NULL, DRV_OPT_PARSE, SA(rerun_failures), 0, 100, "N",
     "a test that fails runs again up to N times, on another worker where there is one; "
     "failed then passed is flaky (a test's own \"reruns\" in FILE wins)",
     parse_reruns},
    {"--wait-timeout", NULL, DRV_OPT_PARSE, SA(wait_timeout), 0, 1e9, "S",
     "stop waiting after S seconds, exit 4 (the tests keep running)", drv_opt_seconds},
};
#define N_OWN_OPTS     (sizeof own_opts / sizeof own_opts[0])
#define TEST_FLAGS_MAX 48

/* The table of submit (is_run false: without --wait-timeout) or run: its options, then
 * the test flags (client.h, drv_test_flag_at) from *first_flag on. */
static const drv_opt *options(bool is_run, size_t *n, size_t *first_flag)
{
    static drv_opt table[N_OWN_OPTS + TEST_FLAGS_MAX];
    size_t k = 0;
    for (size_t i = 0; i < N_OWN_OPTS; i++)
        if (is_run || strcmp(own_opts[i].name, "--wait-timeout") != 0)
            table[k++] = own_opts[i];
    if (is_run) {
        table[1].help = "no progress lines, only the result";
        table[2].help = "the result as the run's JSON answer (as drover wait --json)";
    }
    *first_flag = k;
    for (size_t i = 0; drv_test_flag_at(i) && k < N_OWN_OPTS + TEST_FLAGS_MAX; i++) {
        const drv_test_flag *f = drv_test_flag_at(i);
        table[k++] = (drv_opt){f->name, NULL,     DRV_OPT_PARSE, SA(test),       0,
                               0,       f->value, f->help,       parse_test_flag};
    }
    *n = k;
    return table;
}

/* Prints the lines of the test flags for a usage text. */
static void test_flags_usage(FILE *out, bool is_run)
{
    size_t n, first;
    const drv_opt *t = options(is_run, &n, &first);
    fprintf(out, "test flags (with -- PROGRAM ARGS...):\n");
    drv_opt_usage(out, t + first, n - first);
}

/* The usage lines of submit's or run's own options. */
static void own_usage(FILE *out, bool is_run)
{
    size_t n, first;
    const drv_opt *t = options(is_run, &n, &first);
    drv_opt_usage(out, t, first);
}

void drv_cmd_submit_usage(FILE *out)
{
    fprintf(out, "usage: drover submit [--run NAME] [--quiet] [options] FILE|-\n"
                 "       drover submit [--run NAME] [--quiet] [test flags] [options]\n"
                 "                     -- PROGRAM ARGS...\n"
                 "\n"
                 "Submits tests to the coordinator as one run: the tests of FILE (a JSON array of\n"
                 "tests, one test object, or JSON lines; - reads stdin; see docs/protocol.md,\n"
                 "\"Tests as JSON\"), or one test running PROGRAM ARGS (without a shell unless\n"
                 "--shell). A file is checked first: a bad test is reported with its index or\n"
                 "line and the field, and nothing is submitted.\n"
                 "Prints \"submitted N tests as run R\".\n"
                 "\n");
    own_usage(out, false);
    fprintf(out, "\n");
    test_flags_usage(out, false);
    fputc('\n', out);
    drv_opt_conn_usage(out);
    fprintf(out, "\n"
                 "Exits 0 when the coordinator accepted the tests; 2 on a wrong command line, a\n"
                 "bad file or tests the coordinator refuses; 3 when the coordinator cannot be\n"
                 "reached.\n");
}

void drv_cmd_run_usage(FILE *out)
{
    fprintf(out, "usage: drover run [--run NAME] [--quiet] [--wait-timeout S] [options] FILE|-\n"
                 "       drover run [--run NAME] [--quiet] [--wait-timeout S] [test flags]\n"
                 "                  [options] -- PROGRAM ARGS...\n"
                 "\n"
                 "Submits tests like `drover submit`, then waits for the run like `drover wait`:\n"
                 "its progress on stderr (\"run 4: 37/40 done, 1 running, 1 assigned, 1 queued,\n"
                 "1 failed, 12.3 s, ETA 8 s\", one line rewritten in place on a terminal), then\n"
                 "its counts and the tests that did not pass, with the end of their output.\n"
                 "\n");
    own_usage(out, true);
    fprintf(out, "\n"
                 "Ctrl-C cancels the run (its tests stop); a second Ctrl-C detaches and leaves\n"
                 "it running.\n"
                 "\n");
    test_flags_usage(out, true);
    fputc('\n', out);
    drv_opt_conn_usage(out);
    fprintf(out, "\n"
                 "Exits 0 only if every test passed (or skipped itself); 1 when one did not; 2\n"
                 "on a wrong command line or a bad file; 3 when the coordinator cannot be\n"
                 "reached; 4 when --wait-timeout ran out.\n");
}

/* --rerun-failures N: 0..100 into a long (-1: not given). */
static int parse_reruns(const char *cmd, const drv_opt *o, const char *v, void *at)
{
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < 0 || n > 100) {
        fprintf(stderr, "drover %s: %s: expected an integer 0..100, got \"%s\"\n", cmd, o->name, v);
        return -1;
    }
    *(long *)at = n;
    return 0;
}

/* A test flag (client.h, drv_test_flag_find) into the test builder at `at`, the first
 * one given remembered (a file's tests cannot take them). */
static int parse_test_flag(const char *cmd, const drv_opt *o, const char *v, void *at)
{
    submit_args *a = (submit_args *)(void *)((char *)at - offsetof(submit_args, test));
    const drv_test_flag *f = drv_test_flag_find(o->name);
    drv_error err = {{0}};
    if (!f || drv_test_builder_set(&a->test, f, v, &err) < 0) {
        fprintf(stderr, "drover %s: %s: %s\n", cmd, o->name, f ? err.msg : "not a test flag");
        return -1;
    }
    /* Ranges are checked when the test is made: made now (the builder is left as it is),
     * so a value out of range is told with the option that gave it. */
    char *probe[] = {"true", NULL};
    json_t *t = drv_test_builder_finish(&a->test, probe, &err);
    if (!t) {
        fprintf(stderr, "drover %s: %s: %s\n", cmd, o->name, err.msg);
        return -1;
    }
    json_decref(t);
    if (!a->first_test_flag)
        a->first_test_flag = f->name;
    return 0;
}

/* Reads the command line of submit (is_run false) or run into a. Returns -1 when it is
 * right, else the exit code after printing the problem. */
static int parse_args(const char *cmd, bool is_run, int argc, char **argv, submit_args *a)
{
    size_t n, first, n_words;
    const drv_opt *t = options(is_run, &n, &first);
    const char *words[1];
    int command;
    int code =
        drv_opt_parse_command(cmd, t, n, a, &a->conn, argc, argv, words, 1, &n_words, &command);
    if (code >= 0)
        return code;
    a->file = n_words ? words[0] : NULL;
    if (command < argc || (command == argc && strcmp(argv[argc - 1], "--") == 0))
        a->command = argv + command;
    if (a->command && !a->command[0]) {
        fprintf(stderr, "drover %s: expected a PROGRAM after -- (see drover %s --help)\n", cmd,
                cmd);
        return DRV_EXIT_USAGE;
    }
    if (a->command && a->file) {
        fprintf(stderr, "drover %s: give a FILE or a command after --, not both\n", cmd);
        return DRV_EXIT_USAGE;
    }
    if (!a->command && !a->file) {
        fprintf(stderr,
                "drover %s: expected FILE, - (stdin) or -- PROGRAM ARGS... (see drover %s "
                "--help)\n",
                cmd, cmd);
        return DRV_EXIT_USAGE;
    }
    if (a->file && a->first_test_flag) {
        fprintf(stderr,
                "drover %s: %s applies to a command given after --; the tests of a file "
                "carry their own fields\n",
                cmd, a->first_test_flag);
        return DRV_EXIT_USAGE;
    }
    return -1;
}

/* Submits what a names. Returns 0 with *out filled, or the exit code after printing why. */
static int submit(const char *cmd, submit_args *a, drv_client *c, drv_submit_result *out)
{
    drv_error err = {{0}};
    char *body = NULL; /* freed below */
    size_t len = 0;
    const char *source = NULL;
    if (a->command) {
        json_t *test = drv_test_builder_finish(&a->test, a->command, &err);
        if (!test) {
            fprintf(stderr, "drover %s: %s\n", cmd, err.msg);
            return DRV_EXIT_USAGE;
        }
        body = json_dumps(test, JSON_COMPACT);
        json_decref(test);
        len = body ? strlen(body) : 0;
    } else {
        bool in = strcmp(a->file, "-") == 0;
        source = in ? "stdin" : a->file;
        body = drv_cli_read_file(in ? "/dev/stdin" : a->file, &len, &err);
        if (!body) {
            fprintf(stderr, "drover %s: %s\n", cmd, err.msg);
            return DRV_EXIT_USAGE;
        }
        if (drv_submission_check(body, len, &err) < 0) { /* bad input, not the coordinator */
            fprintf(stderr, "drover %s: %s: %s; nothing was submitted\n", cmd, source, err.msg);
            free(body);
            return DRV_EXIT_USAGE;
        }
    }
    if (a->rerun_failures >= 0) { /* each test without reruns of its own gets N */
        size_t n = 0;
        char *with = drv_submission_with_reruns(body, len, (uint32_t)a->rerun_failures, &n, &err);
        free(body);
        if (!with) {
            fprintf(stderr, "drover %s: %s\n", cmd, err.msg);
            return DRV_EXIT_USAGE;
        }
        body = with;
        len = n;
    }
    int rc = drv_client_submit(c, body, len, source, a->run, out, &err);
    free(body);
    if (rc < 0) {
        fprintf(stderr, "drover %s: %s\n", cmd, err.msg);
        return drv_cli_request_failure_code(c);
    }
    return 0;
}

/* Ctrl-C during `drover run`: the first cancels the run (a `drover cancel --run R`
 * started from the handler: fork and exec are async-signal-safe), the second detaches. */
static volatile sig_atomic_t interrupts;
static char *cancel_argv[12];

static void on_interrupt(int sig)
{
    (void)sig;
    if (interrupts++ == 0) {
        static const char msg[] = "\ndrover run: Ctrl-C: cancelling the run (press Ctrl-C again "
                                  "to detach and leave it running)\n";
        (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
        pid_t p = fork();
        if (p == 0) {
            execv(cancel_argv[0], cancel_argv);
            _exit(127);
        }
        return;
    }
    static const char msg[] = "\ndrover run: detached; the run goes on (drover wait RUN "
                              "follows it)\n";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    _exit(130);
}

/* Makes Ctrl-C cancel run run_id (see on_interrupt). */
static void cancel_on_interrupt(const submit_args *a, uint64_t run_id)
{
    static char self[4096], id[32];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0)
        return; /* Ctrl-C then just stops waiting */
    self[k] = '\0';
    snprintf(id, sizeof id, "%llu", (unsigned long long)run_id);
    size_t n = 0;
    cancel_argv[n++] = self;
    cancel_argv[n++] = "cancel";
    cancel_argv[n++] = "--run";
    cancel_argv[n++] = id;
    if (a->conn.url) {
        cancel_argv[n++] = "--url";
        cancel_argv[n++] = (char *)a->conn.url;
    }
    if (a->conn.token) {
        cancel_argv[n++] = "--token";
        cancel_argv[n++] = (char *)a->conn.token;
    }
    if (a->conn.ca_file) {
        cancel_argv[n++] = "--ca";
        cancel_argv[n++] = (char *)a->conn.ca_file;
    }
    cancel_argv[n] = NULL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
}

/* submit (is_run false) and run. */
static int submit_command(const char *cmd, bool is_run, int argc, char **argv)
{
    submit_args a = {.rerun_failures = -1};
    drv_test_builder_init(&a.test);
    int code = parse_args(cmd, is_run, argc, argv, &a);
    if (code >= 0)
        goto out;
    drv_client *c = drv_cli_connect(&a.conn, cmd);
    if (!c) {
        code = DRV_EXIT_USAGE;
        goto out;
    }
    drv_submit_result r;
    code = submit(cmd, &a, c, &r);
    if (code == 0) {
        if (a.json && is_run)
            ; /* the run's answer comes when it is done */
        else if (a.json)
            printf("{\"run_id\": %llu, \"count\": %zu}\n", (unsigned long long)r.run_id, r.count);
        else if (a.quiet && !is_run)
            printf("%llu\n", (unsigned long long)r.run_id);
        else if (!a.quiet)
            printf("submitted %zu test%s as run %llu%s%s%s\n", r.count, r.count == 1 ? "" : "s",
                   (unsigned long long)r.run_id, a.run ? " (" : "", a.run ? a.run : "",
                   a.run ? ")" : "");
        fflush(stdout);
        if (is_run) {
            cancel_on_interrupt(&a, r.run_id);
            code = drv_cli_wait_run(c, cmd, r.run_id, a.wait_timeout, a.quiet, a.json);
        }
    }
    drv_client_close(c);
out:
    drv_test_builder_clear(&a.test);
    return code;
}

int drv_cmd_submit(int argc, char **argv)
{
    return submit_command("submit", false, argc, argv);
}

int drv_cmd_run(int argc, char **argv)
{
    return submit_command("run", true, argc, argv);
}
