/* cmd_status.c - the commands that look at a coordinator and act on what it holds:
 *
 *   drover status [RUN | --workers | --test ID] [--json]   the coordinator, a run, the
 *                                                          workers, or one test
 *   drover wait [RUN] [--timeout S]                         exit 0 only if all passed
 *   drover cancel TEST_ID... | --run RUN
 *   drover explain TEST_ID                                  why a test is not running
 *
 * and what every client command shares (cli.h): the connection options, opening the
 * client, ids on the command line, and waiting for a run with its progress and summary.
 *
 * Ownership: every JSON answer is released before the command returns; the client is
 * opened and closed by each command. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "client/client.h"

/* How long a waiting command keeps retrying while the coordinator cannot be reached. */
#define UNREACHABLE_LIMIT_S 60.0
/* Tests listed with their outcome under a run's summary (the report has them all). */
#define SUMMARY_TESTS_MAX 20
/* Lines of output shown under each of them. */
#define SUMMARY_OUTPUT_LINES 10

/* ---- shared by the client commands (cli.h) ------------------------------------------ */

int drv_cli_option(const char *cmd, const char *name, int argc, char **argv, int *i,
                   const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "drover %s: %s needs a value (see drover %s --help)\n", cmd, name, cmd);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

/* Parses a number of seconds > 0 for option name; -1 after printing why. */
static int parse_seconds(const char *cmd, const char *name, const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v <= 0 || v > 1e9) {
        fprintf(stderr, "drover %s: %s: expected a number of seconds > 0, got \"%s\"\n", cmd, name,
                s);
        return -1;
    }
    *out = v;
    return 0;
}

int drv_cli_conn_option(drv_cli_conn *conn, const char *cmd, int argc, char **argv, int *i)
{
    const char *v = NULL;
    int rc;
    if ((rc = drv_cli_option(cmd, "--url", argc, argv, i, &v)) != 0) {
        if (rc > 0)
            conn->url = v;
        return rc;
    }
    if ((rc = drv_cli_option(cmd, "--token", argc, argv, i, &v)) != 0) {
        if (rc > 0)
            conn->token = v;
        return rc;
    }
    if ((rc = drv_cli_option(cmd, "--ca", argc, argv, i, &v)) != 0) {
        if (rc > 0)
            conn->ca_file = v;
        return rc;
    }
    if ((rc = drv_cli_option(cmd, "--request-timeout", argc, argv, i, &v)) != 0) {
        if (rc > 0 && parse_seconds(cmd, "--request-timeout", v, &conn->request_timeout_s) < 0)
            return -1;
        return rc;
    }
    return 0;
}

drv_client *drv_cli_connect(const drv_cli_conn *conn, const char *cmd)
{
    drv_client_options opt = {.url = conn->url,
                              .token = conn->token,
                              .request_timeout_s = conn->request_timeout_s,
                              .ca_file = conn->ca_file};
    drv_error err = {{0}};
    drv_client *c = drv_client_open(&opt, &err);
    if (!c)
        fprintf(stderr, "drover %s: %s\n", cmd, err.msg);
    return c;
}

int drv_cli_parse_id(const char *cmd, const char *what, const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || s[0] == '+' || v == 0 || v > INT64_MAX) {
        fprintf(stderr, "drover %s: %s \"%s\": expected a positive integer\n", cmd, what, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Seconds on a monotonic clock. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sleeps s seconds (a signal may cut it short). */
static void sleep_s(double s)
{
    if (!(s > 0))
        return;
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Writes a run's counts as "37 passed, 2 failed, 1 timed out" (zero counts left out,
 * final states first) into buf. */
static void format_counts(const drv_run_counts *rc, char *buf, size_t len)
{
    static const drv_task_state order[] = {
        DRV_TASK_PASSED,    DRV_TASK_FAILED, DRV_TASK_TIMED_OUT, DRV_TASK_UNSCHEDULABLE,
        DRV_TASK_CANCELLED, DRV_TASK_QUEUED, DRV_TASK_ASSIGNED,  DRV_TASK_RUNNING};
    size_t off = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < sizeof order / sizeof order[0] && off < len; k++) {
        uint64_t n = rc->by_state[order[k]];
        if (!n)
            continue;
        char word[32];
        snprintf(word, sizeof word, "%s", drv_task_state_name(order[k]));
        for (char *p = word; *p; p++)
            if (*p == '_')
                *p = ' ';
        int w = snprintf(buf + off, len - off, "%s%llu %s", off ? ", " : "", (unsigned long long)n,
                         word);
        if (w > 0)
            off += (size_t)w;
    }
    if (!off)
        snprintf(buf, len, "no tests");
}

/* Prints each line of text (its last max_lines) indented as "      | LINE". */
static void print_output(FILE *out, const char *text, size_t max_lines)
{
    const char *p = drv_text_last_lines(text, max_lines);
    while (p && *p) {
        size_t n = strcspn(p, "\n");
        fprintf(out, "      | %.*s\n", (int)n, p);
        p += n;
        if (*p == '\n')
            p++;
    }
}

/* Prints the tests of run run_id that did not pass (at most SUMMARY_TESTS_MAX), each
 * with its outcome and the end of its output. Returns 0, or -1 after printing why the
 * list could not be fetched. */
static int print_not_passed(drv_client *c, const char *cmd, uint64_t run_id,
                            const drv_run_counts *rc)
{
    static const drv_task_state shown[] = {DRV_TASK_FAILED, DRV_TASK_TIMED_OUT,
                                           DRV_TASK_UNSCHEDULABLE, DRV_TASK_CANCELLED};
    size_t printed = 0, total = 0;
    for (size_t k = 0; k < sizeof shown / sizeof shown[0]; k++)
        total += rc->by_state[shown[k]];
    if (total == 0)
        return 0;
    printf("not passed:\n");
    for (size_t k = 0; k < sizeof shown / sizeof shown[0] && printed < SUMMARY_TESTS_MAX; k++) {
        if (!rc->by_state[shown[k]])
            continue;
        drv_error err = {{0}};
        json_t *tests = drv_client_run_tests(c, run_id, drv_task_state_name(shown[k]),
                                             SUMMARY_TESTS_MAX - printed, &err);
        if (!tests || drv_client_add_details(c, tests, &err) < 0) {
            json_decref(tests);
            fprintf(stderr, "drover %s: %s\n", cmd, err.msg);
            return -1;
        }
        size_t i;
        json_t *t;
        json_array_foreach(tests, i, t)
        {
            char outcome[DRV_ERROR_MAX];
            drv_test_outcome_format(t, outcome, sizeof outcome);
            const char *worker = drv_api_string(t, "worker");
            printf("  %s (test %lld): %s%s%s\n", drv_api_string(t, "name"),
                   (long long)drv_api_int(t, "id", 0), outcome, worker ? " on " : "",
                   worker ? worker : "");
            print_output(stdout, drv_test_output_tail(t, NULL), SUMMARY_OUTPUT_LINES);
            printed++;
        }
        json_decref(tests);
    }
    if (total > printed)
        printf("  ... and %zu more (drover report --junit FILE lists them all)\n", total - printed);
    return 0;
}

/* Prints a run's summary line and, when not every test passed, those tests. Returns
 * DRV_EXIT_OK when every test passed, DRV_EXIT_FAILURE otherwise. */
static int print_run_result(drv_client *c, const char *cmd, const json_t *run)
{
    drv_run_counts rc;
    drv_run_counts_read(run, &rc);
    uint64_t id = (uint64_t)drv_api_int(run, "id", 0);
    const char *name = drv_api_string(run, "name");
    char counts[512];
    format_counts(&rc, counts, sizeof counts);
    printf("run %llu%s%s%s: %llu test%s: %s\n", (unsigned long long)id, name ? " (" : "",
           name ? name : "", name ? ")" : "", (unsigned long long)rc.submitted,
           rc.submitted == 1 ? "" : "s", counts);
    if (print_not_passed(c, cmd, id, &rc) < 0)
        return DRV_EXIT_FAILURE;
    return drv_run_counts_all_passed(&rc) ? DRV_EXIT_OK : DRV_EXIT_FAILURE;
}

int drv_cli_wait_run(drv_client *c, const char *cmd, uint64_t run_id, double timeout_s, bool quiet)
{
    bool tty = !quiet && isatty(STDERR_FILENO);
    double start = now_s(), last_print = -1e9, unreachable_since = -1, delay = 0.05;
    uint64_t last_final = UINT64_MAX;
    json_t *run = NULL; /* the latest answer; released at the end */
    char line[256] = "";
    for (;;) {
        drv_error err = {{0}};
        json_t *r = drv_client_run(c, run_id, &err);
        double t = now_s() - start;
        if (!r) {
            /* An answer (404, 401) is final; no answer may be a restart: ride it out. */
            if (drv_client_status(c) != 0 ||
                (unreachable_since >= 0 && t - unreachable_since > UNREACHABLE_LIMIT_S)) {
                if (tty && line[0])
                    fputc('\n', stderr);
                fprintf(stderr, "drover %s: %s\n", cmd, err.msg);
                json_decref(run);
                return DRV_EXIT_FAILURE;
            }
            if (unreachable_since < 0) {
                if (tty && line[0])
                    fputc('\n', stderr);
                fprintf(stderr, "drover %s: %s; retrying for up to %.0f s\n", cmd, err.msg,
                        UNREACHABLE_LIMIT_S);
                unreachable_since = t;
            }
        } else {
            unreachable_since = -1;
            json_decref(run);
            run = r;
            drv_run_counts rc;
            drv_run_counts_read(run, &rc);
            drv_run_progress_format(run_id, &rc, t, line, sizeof line);
            if (tty) {
                fprintf(stderr, "\r%s\033[K", line);
            } else if (!quiet && (rc.done || t - last_print >= 30 ||
                                  (rc.final != last_final && t - last_print >= 5))) {
                fprintf(stderr, "%s\n", line);
                last_print = t;
                last_final = rc.final;
            }
            fflush(stderr);
            if (rc.done)
                break;
        }
        if (timeout_s > 0 && t >= timeout_s) {
            if (tty)
                fputc('\n', stderr);
            fprintf(stderr, "drover %s: gave up waiting after %g s%s%s\n", cmd, timeout_s,
                    line[0] ? "; " : "", line);
            json_decref(run);
            return DRV_EXIT_FAILURE;
        }
        double left = timeout_s > 0 ? timeout_s - t : delay;
        sleep_s(delay < left ? delay : left);
        delay = delay * 2 < 1.0 ? delay * 2 : 1.0;
    }
    if (tty)
        fputc('\n', stderr);
    int code = print_run_result(c, cmd, run);
    json_decref(run);
    return code;
}

/* ---- argument handling shared by the commands of this file -------------------------- */

/* Prints "drover CMD: MESSAGE (see drover CMD --help)" and returns the usage exit code. */
static int usage_error(const char *cmd, const char *what, const char *arg)
{
    fprintf(stderr, "drover %s: %s%s%s%s (see drover %s --help)\n", cmd, what, arg ? " \"" : "",
            arg ? arg : "", arg ? "\"" : "", cmd);
    return DRV_EXIT_USAGE;
}

/* Prints a failed request's message and returns DRV_EXIT_FAILURE. */
static int request_failed(const char *cmd, const drv_error *err)
{
    fprintf(stderr, "drover %s: %s\n", cmd, err->msg);
    return DRV_EXIT_FAILURE;
}

/* Prints an answer as indented JSON on stdout. */
static void print_json(const json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
}

/* Writes seconds as "12.5 s", "3 min 20 s" or "2 h 5 min". */
static void format_span(double s, char *buf, size_t len)
{
    if (s < 60)
        snprintf(buf, len, "%.1f s", s);
    else if (s < 3600)
        snprintf(buf, len, "%d min %d s", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, len, "%lld h %d min", (long long)(s / 3600), (int)fmod(s / 60, 60));
}

/* Writes a time since the Unix epoch as "2025-11-23 12:13:20 UTC" ("?" when unknown). */
static void format_time(double t, char *buf, size_t len)
{
    time_t secs = (time_t)t;
    struct tm tm;
    if (!(t > 0) || !gmtime_r(&secs, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
        snprintf(buf, len, "?");
}

/* ---- drover status ------------------------------------------------------------------ */

void drv_cmd_status_usage(FILE *out)
{
    fprintf(out, "usage: drover status [--json] [options]           the coordinator\n"
                 "       drover status RUN [--json] [options]       one run\n"
                 "       drover status --workers [--json] [options] the workers\n"
                 "       drover status --test ID [--json] [options] one test and its attempts\n"
                 "\n"
                 "Shows what the coordinator holds: tests by state and workers connected, lost\n"
                 "and quarantined; a run's counts and progress; a table of the workers (name,\n"
                 "health, thermal state, slots, tests running, load, tags); or one test with\n"
                 "each attempt (worker, outcome, duration, the end of its output; while it\n"
                 "runs, its output so far).\n"
                 "\n"
                 "  --workers       the workers\n"
                 "  --test ID       one test\n"
                 "  --json          print the API's answer as JSON instead\n"
                 "\n" DRV_CLI_CONN_USAGE "\n"
                 "Exits 0 when shown, 1 when the coordinator cannot be reached or refuses,\n"
                 "2 on a wrong command line.\n");
}

/* `drover status`: the coordinator's overview. */
int drv_cli_show_overview(FILE *out, const json_t *s, const char *url)
{
    char span[64], counts[512];
    format_span(drv_api_number(s, "uptime_s", 0), span, sizeof span);
    const char *version = drv_api_string(s, "version");
    const char *store = drv_api_string(s, "store");
    fprintf(out, "coordinator %s: drover %s, up %s%s%s\n", url, version ? version : "?", span,
            store ? ", store " : "", store ? store : "");
    const char *policy = drv_api_string(s, "policy");
    if (policy)
        fprintf(out, "policy: %s\n", policy);
    drv_run_counts rc;
    drv_run_counts_read(s, &rc);
    int64_t total = drv_api_int(s, "total", (int64_t)rc.submitted);
    format_counts(&rc, counts, sizeof counts);
    fprintf(out, "tests: %lld%s%s%s\n", (long long)total, total ? " (" : "", total ? counts : "",
            total ? ")" : "");
    const json_t *w = json_object_get(s, "workers");
    fprintf(out, "workers: connected %lld, lost %lld, quarantined %lld\n",
            (long long)drv_api_int(w, "connected", 0), (long long)drv_api_int(w, "lost", 0),
            (long long)drv_api_int(w, "quarantined", 0));
    return DRV_EXIT_OK;
}

/* `drover status RUN`. */
int drv_cli_show_run(FILE *out, const json_t *run)
{
    drv_run_counts rc;
    drv_run_counts_read(run, &rc);
    char counts[512], created[64];
    format_counts(&rc, counts, sizeof counts);
    format_time(drv_api_number(run, "created_at", 0), created, sizeof created);
    const char *name = drv_api_string(run, "name");
    fprintf(out, "run %lld%s%s%s, submitted %s: %llu test%s: %s\n",
            (long long)drv_api_int(run, "id", 0), name ? " (" : "", name ? name : "",
            name ? ")" : "", created, (unsigned long long)rc.submitted,
            rc.submitted == 1 ? "" : "s", counts);
    double progress =
        drv_api_number(run, "progress", rc.submitted ? (double)rc.final / (double)rc.submitted : 0);
    fprintf(out, "%s: %.0f%% of the tests are final%s\n", rc.done ? "done" : "not done",
            progress * 100,
            rc.done ? (drv_run_counts_all_passed(&rc) ? ", all passed" : ", not all passed") : "");
    return DRV_EXIT_OK;
}

/* Writes a worker's tags comma-separated into buf. */
static void format_tags(const json_t *w, char *buf, size_t len)
{
    const json_t *tags = json_object_get(json_object_get(w, "capabilities"), "tags");
    size_t off = 0, i;
    const json_t *tag;
    buf[0] = '\0';
    json_array_foreach(tags, i, tag)
    {
        if (off >= len)
            break;
        int n = snprintf(buf + off, len - off, "%s%s", i ? "," : "", json_string_value(tag));
        if (n > 0)
            off += (size_t)n;
    }
}

/* `drover status --workers`: a table, then why each unhealthy worker is so. */
int drv_cli_show_workers(FILE *out, const json_t *ans)
{
    const json_t *workers = json_object_get(ans, "workers");
    size_t n = json_array_size(workers), i;
    const json_t *w;
    if (n == 0) {
        fprintf(out, "no workers have registered\n");
        return DRV_EXIT_OK;
    }
    int width = 4;
    json_array_foreach(workers, i, w)
    {
        const char *name = drv_api_string(w, "name");
        if (name && (int)strlen(name) > width)
            width = (int)strlen(name);
    }
    fprintf(out, "%-*s  %-11s  %-8s  %5s  %7s  %5s  %s\n", width, "NAME", "HEALTH", "THERMAL",
            "SLOTS", "RUNNING", "LOAD", "TAGS");
    json_array_foreach(workers, i, w)
    {
        char tags[1024];
        format_tags(w, tags, sizeof tags);
        const char *health = drv_api_string(w, "health");
        const char *thermal = drv_api_string(w, "thermal");
        fprintf(out, "%-*s  %-11s  %-8s  %5lld  %7lld  %5.2f  %s\n", width,
                drv_api_string(w, "name"), health ? health : "?", thermal ? thermal : "?",
                (long long)drv_api_int(w, "slots", 0),
                (long long)(drv_api_int(w, "running", 0) + drv_api_int(w, "assigned", 0)),
                drv_api_number(w, "load", 0), tags);
    }
    json_array_foreach(workers, i, w)
    {
        const char *reason = drv_api_string(w, "health_reason");
        if (reason)
            fprintf(out, "%s: %s: %s\n", drv_api_string(w, "name"), drv_api_string(w, "health"),
                    reason);
        const char *thermal = drv_api_string(w, "thermal_reason");
        if (thermal)
            fprintf(out, "%s: thermal: %s\n", drv_api_string(w, "name"), thermal);
    }
    return DRV_EXIT_OK;
}

/* Prints a test's command (its submission form) on one line, as a shell would read it. */
static void print_command(const json_t *spec)
{
    const char *command = drv_api_string(spec, "command");
    if (command) {
        printf("command (through /bin/sh -c): %s\n", command);
        return;
    }
    const json_t *argv = json_object_get(spec, "argv");
    size_t n = json_array_size(argv), i;
    const json_t *word;
    char **words = drv_xcalloc(n + 1, sizeof *words); /* borrowed strings; freed below */
    json_array_foreach(argv, i, word)
    {
        words[i] = (char *)json_string_value(word);
    }
    words[n] = NULL; /* a word that is not a string (NULL) ends the line early */
    char *line = drv_command_line(words);
    printf("command: %s\n", line);
    free(line);
    free(words);
}

/* `drover status --test ID`. */
static int show_test(const json_t *t)
{
    char outcome[DRV_ERROR_MAX];
    const char *state = drv_api_string(t, "state");
    drv_test_outcome_format(t, outcome, sizeof outcome);
    printf("test %lld \"%s\" (run %lld): %s", (long long)drv_api_int(t, "id", 0),
           drv_api_string(t, "name"), (long long)drv_api_int(t, "run_id", 0), state ? state : "?");
    if (state && drv_task_state_parse(state) >= 0 &&
        drv_task_state_final((drv_task_state)drv_task_state_parse(state)) &&
        strcmp(outcome, state) != 0)
        printf(", %s", outcome);
    printf("\n");
    const json_t *spec = json_object_get(t, "test");
    if (spec) {
        print_command(spec);
        const json_t *req = json_object_get(spec, "requirements");
        if (req) {
            char *text = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
            printf("requirements: %s\n", text ? text : "?");
            free(text);
        }
    }
    const json_t *attempts = json_object_get(t, "attempts");
    size_t i;
    const json_t *a;
    json_array_foreach(attempts, i, a)
    {
        const char *worker = drv_api_string(a, "worker");
        const char *ast = drv_api_string(a, "state");
        printf("attempt %lld on %s: %s", (long long)drv_api_int(a, "attempt", 0),
               worker ? worker : "?", ast ? ast : "?");
        if (drv_api_true(a, "infra_failure"))
            printf(", infrastructure failure");
        else if (drv_api_true(a, "timed_out"))
            printf(", timed out");
        if (drv_api_int(a, "signal", 0) > 0)
            printf(", signal %lld", (long long)drv_api_int(a, "signal", 0));
        else if (drv_api_int(a, "exit_code", -1) >= 0)
            printf(", exit %lld", (long long)drv_api_int(a, "exit_code", 0));
        if (drv_api_number(a, "duration_s", -1) >= 0)
            printf(", %.3f s", drv_api_number(a, "duration_s", 0));
        if (drv_api_int(a, "peak_memory_kb", 0) > 0)
            printf(", peak %lld KiB", (long long)drv_api_int(a, "peak_memory_kb", 0));
        printf("\n");
        print_output(stdout, drv_api_string(a, "output_tail"), SUMMARY_OUTPUT_LINES);
    }
    const char *live = drv_api_string(t, "live_output");
    if (live) {
        printf("output so far:\n");
        print_output(stdout, live, SUMMARY_OUTPUT_LINES);
    }
    const char *explain = drv_api_string(t, "explain");
    if (explain)
        printf("why not running: %s\n", explain);
    return DRV_EXIT_OK;
}

int drv_cmd_status(int argc, char **argv)
{
    const char *cmd = "status";
    drv_cli_conn conn = {0};
    bool workers = false, json = false;
    const char *test_arg = NULL, *run_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = drv_cli_conn_option(&conn, cmd, argc, argv, &i);
        if (rc < 0)
            return DRV_EXIT_USAGE;
        if (rc > 0)
            continue;
        if ((rc = drv_cli_option(cmd, "--test", argc, argv, &i, &test_arg)) != 0) {
            if (rc < 0)
                return DRV_EXIT_USAGE;
        } else if (strcmp(a, "--workers") == 0) {
            workers = true;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (a[0] == '-') {
            return usage_error(cmd, "unknown option", a);
        } else if (run_arg) {
            return usage_error(cmd, "one RUN at most, got another", a);
        } else {
            run_arg = a;
        }
    }
    if ((run_arg != NULL) + (test_arg != NULL) + workers > 1)
        return usage_error(cmd, "give one of RUN, --workers and --test", NULL);
    uint64_t id = 0;
    if ((run_arg && drv_cli_parse_id(cmd, "run", run_arg, &id) < 0) ||
        (test_arg && drv_cli_parse_id(cmd, "test id", test_arg, &id) < 0))
        return DRV_EXIT_USAGE;

    drv_client *c = drv_cli_connect(&conn, cmd);
    if (!c)
        return DRV_EXIT_USAGE;
    drv_error err = {{0}};
    json_t *ans = run_arg    ? drv_client_run(c, id, &err)
                  : test_arg ? drv_client_test(c, id, &err)
                  : workers  ? drv_client_get(c, "/api/v1/workers", &err)
                             : drv_client_get(c, "/api/v1/status", &err);
    int code;
    if (!ans)
        code = request_failed(cmd, &err);
    else if (json)
        print_json(ans), code = DRV_EXIT_OK;
    else if (run_arg)
        code = drv_cli_show_run(stdout, ans);
    else if (test_arg)
        code = show_test(ans);
    else if (workers)
        code = drv_cli_show_workers(stdout, ans);
    else
        code = drv_cli_show_overview(stdout, ans, drv_client_url(c));
    json_decref(ans);
    drv_client_close(c);
    return code;
}

/* ---- drover wait ---------------------------------------------------------------------- */

void drv_cmd_wait_usage(FILE *out)
{
    fprintf(out, "usage: drover wait [RUN] [--timeout S] [--quiet] [options]\n"
                 "\n"
                 "Waits until every test of run RUN (default: the most recent run) is final,\n"
                 "showing its progress on stderr (one line rewritten in place on a terminal),\n"
                 "then prints the run's counts and the tests that did not pass, with the end\n"
                 "of their output.\n"
                 "\n"
                 "  --timeout S     give up after S seconds (default: wait as long as it takes)\n"
                 "  --quiet         no progress lines, only the result\n"
                 "\n" DRV_CLI_CONN_USAGE "\n"
                 "Exits 0 only if every test of the run passed; 1 when one did not, on timeout,\n"
                 "or when the coordinator cannot be reached; 2 on a wrong command line.\n");
}

int drv_cmd_wait(int argc, char **argv)
{
    const char *cmd = "wait";
    drv_cli_conn conn = {0};
    double timeout_s = 0;
    bool quiet = false;
    const char *run_arg = NULL, *v = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = drv_cli_conn_option(&conn, cmd, argc, argv, &i);
        if (rc == 0 && (rc = drv_cli_option(cmd, "--timeout", argc, argv, &i, &v)) > 0)
            rc = parse_seconds(cmd, "--timeout", v, &timeout_s) < 0 ? -1 : 1;
        if (rc < 0)
            return DRV_EXIT_USAGE;
        if (rc > 0)
            continue;
        if (strcmp(a, "--quiet") == 0)
            quiet = true;
        else if (a[0] == '-')
            return usage_error(cmd, "unknown option", a);
        else if (run_arg)
            return usage_error(cmd, "one RUN at most, got another", a);
        else
            run_arg = a;
    }
    uint64_t run_id = 0;
    if (run_arg && drv_cli_parse_id(cmd, "run", run_arg, &run_id) < 0)
        return DRV_EXIT_USAGE;
    drv_client *c = drv_cli_connect(&conn, cmd);
    if (!c)
        return DRV_EXIT_USAGE;
    drv_error err = {{0}};
    int code;
    if (!run_arg && drv_client_latest_run(c, &run_id, &err) < 0)
        code = request_failed(cmd, &err);
    else
        code = drv_cli_wait_run(c, cmd, run_id, timeout_s, quiet);
    drv_client_close(c);
    return code;
}

/* ---- drover cancel -------------------------------------------------------------------- */

void drv_cmd_cancel_usage(FILE *out)
{
    fprintf(out, "usage: drover cancel TEST_ID... [options]\n"
                 "       drover cancel --run RUN [options]\n"
                 "\n"
                 "Cancels tests that are not final yet; a running test is stopped on its\n"
                 "worker. With --run, every test of run RUN that is not final.\n"
                 "\n" DRV_CLI_CONN_USAGE "\n"
                 "Exits 0 when everything named was cancelled, 1 when a test could not be\n"
                 "(already final, unknown) or the coordinator refused, 2 on a wrong command\n"
                 "line.\n");
}

int drv_cmd_cancel(int argc, char **argv)
{
    const char *cmd = "cancel";
    drv_cli_conn conn = {0};
    const char *run_arg = NULL;
    /* The test ids, parsed up front so a typo cancels nothing; freed at the end. */
    uint64_t *ids = drv_xcalloc((size_t)argc, sizeof *ids);
    size_t n_ids = 0;
    int code = DRV_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = drv_cli_conn_option(&conn, cmd, argc, argv, &i);
        if (rc == 0)
            rc = drv_cli_option(cmd, "--run", argc, argv, &i, &run_arg);
        if (rc < 0)
            goto out;
        if (rc > 0)
            continue;
        if (a[0] == '-') {
            code = usage_error(cmd, "unknown option", a);
            goto out;
        }
        if (drv_cli_parse_id(cmd, "test id", a, &ids[n_ids++]) < 0)
            goto out;
    }
    uint64_t run_id = 0;
    if (run_arg && drv_cli_parse_id(cmd, "run", run_arg, &run_id) < 0)
        goto out;
    if ((run_arg != NULL) == (n_ids > 0)) {
        code = usage_error(cmd,
                           run_arg ? "give --run RUN or test ids, not both"
                                   : "expected TEST_ID... or --run RUN",
                           NULL);
        goto out;
    }
    drv_client *c = drv_cli_connect(&conn, cmd);
    if (!c)
        goto out;
    code = DRV_EXIT_OK;
    char path[96];
    drv_error err = {{0}};
    if (run_arg) {
        snprintf(path, sizeof path, "/api/v1/runs/%llu/cancel", (unsigned long long)run_id);
        json_t *ans = drv_client_post(c, path, NULL, &err);
        if (!ans) {
            code = request_failed(cmd, &err);
        } else {
            int64_t k = drv_api_int(ans, "cancelled", 0);
            printf("run %llu: %lld test%s cancelled\n", (unsigned long long)run_id, (long long)k,
                   k == 1 ? "" : "s");
        }
        json_decref(ans);
    }
    for (size_t k = 0; k < n_ids; k++) {
        snprintf(path, sizeof path, "/api/v1/tests/%llu/cancel", (unsigned long long)ids[k]);
        json_t *ans = drv_client_post(c, path, NULL, &err);
        if (ans) {
            const char *state = drv_api_string(ans, "state");
            printf("test %llu: %s\n", (unsigned long long)ids[k], state ? state : "cancelled");
            json_decref(ans);
            continue;
        }
        fprintf(stderr, "drover %s: test %llu: %s\n", cmd, (unsigned long long)ids[k], err.msg);
        code = DRV_EXIT_FAILURE;
        if (drv_client_status(c) == 0 || drv_client_status(c) == 401)
            break; /* no coordinator, or no right: the other ids would fail the same way */
    }
    drv_client_close(c);
out:
    free(ids);
    return code;
}

/* ---- drover explain ------------------------------------------------------------------- */

void drv_cmd_explain_usage(FILE *out)
{
    fprintf(out, "usage: drover explain TEST_ID [options]\n"
                 "\n"
                 "Says why a queued test is not running: which requirement no worker meets,\n"
                 "or that the workers that could run it are busy, draining or quarantined.\n"
                 "\n" DRV_CLI_CONN_USAGE "\n"
                 "Exits 0 when explained, 1 when the test is unknown or the coordinator\n"
                 "cannot be reached, 2 on a wrong command line.\n");
}

int drv_cmd_explain(int argc, char **argv)
{
    const char *cmd = "explain";
    drv_cli_conn conn = {0};
    const char *test_arg = NULL;
    for (int i = 1; i < argc; i++) {
        int rc = drv_cli_conn_option(&conn, cmd, argc, argv, &i);
        if (rc < 0)
            return DRV_EXIT_USAGE;
        if (rc > 0)
            continue;
        if (argv[i][0] == '-')
            return usage_error(cmd, "unknown option", argv[i]);
        if (test_arg)
            return usage_error(cmd, "one TEST_ID at most, got another", argv[i]);
        test_arg = argv[i];
    }
    uint64_t id = 0;
    if (!test_arg)
        return usage_error(cmd, "expected a TEST_ID", NULL);
    if (drv_cli_parse_id(cmd, "test id", test_arg, &id) < 0)
        return DRV_EXIT_USAGE;
    drv_client *c = drv_cli_connect(&conn, cmd);
    if (!c)
        return DRV_EXIT_USAGE;
    char path[96];
    snprintf(path, sizeof path, "/api/v1/tests/%llu/explain", (unsigned long long)id);
    drv_error err = {{0}};
    json_t *ans = drv_client_get(c, path, &err);
    int code = DRV_EXIT_OK;
    if (!ans) {
        code = request_failed(cmd, &err);
    } else {
        const char *state = drv_api_string(ans, "state");
        const char *explain = drv_api_string(ans, "explain");
        if (explain)
            printf("test %llu (%s): %s\n", (unsigned long long)id, state ? state : "?", explain);
        else
            printf("test %llu is %s: it is not waiting for a worker\n", (unsigned long long)id,
                   state ? state : "not queued");
    }
    json_decref(ans);
    drv_client_close(c);
    return code;
}

/* ---- fleet: operator actions on workers ---- */

void drv_cmd_fleet_usage(FILE *out)
{
    fprintf(out, "usage: drover fleet drain NAME... [options]\n"
                 "       drover fleet clear NAME... [options]\n"
                 "\n"
                 "Operator actions on workers. drain: the worker takes nothing new and\n"
                 "finishes what it holds. clear: lifts a quarantine (or a drain) so the\n"
                 "worker takes work again; `drover status --workers` shows who is\n"
                 "quarantined and why.\n"
                 "\n" DRV_CLI_CONN_USAGE "\n"
                 "Exits 0 when every worker named was changed, 1 when one is unknown or the\n"
                 "coordinator refused, 2 on a wrong command line.\n");
}

int drv_cmd_fleet(int argc, char **argv)
{
    const char *cmd = "fleet";
    drv_cli_conn conn = {0};
    const char *action = NULL;
    const char **names = drv_xcalloc((size_t)argc, sizeof *names); /* freed at the end */
    size_t n = 0;
    int code = DRV_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        int rc = drv_cli_conn_option(&conn, cmd, argc, argv, &i);
        if (rc < 0)
            goto out;
        if (rc > 0)
            continue;
        if (argv[i][0] == '-') {
            code = usage_error(cmd, "unknown option", argv[i]);
            goto out;
        }
        if (!action)
            action = argv[i];
        else
            names[n++] = argv[i];
    }
    if (!action || (strcmp(action, "drain") != 0 && strcmp(action, "clear") != 0)) {
        code = usage_error(cmd, "expected drain or clear", action);
        goto out;
    }
    if (n == 0) {
        code = usage_error(cmd, "expected at least one worker NAME", NULL);
        goto out;
    }
    drv_client *c = drv_cli_connect(&conn, cmd);
    if (!c)
        goto out;
    code = DRV_EXIT_OK;
    for (size_t k = 0; k < n; k++) {
        char path[256];
        drv_error err = {{0}};
        snprintf(path, sizeof path, "/api/v1/workers/%.100s/%s", names[k], action);
        json_t *ans = drv_client_post(c, path, NULL, &err);
        if (!ans) {
            code = request_failed(cmd, &err);
            continue;
        }
        const char *health = drv_api_string(ans, "health");
        printf("worker %s: %s\n", names[k], health ? health : action);
        json_decref(ans);
    }
    drv_client_close(c);
out:
    free(names);
    return code;
}
