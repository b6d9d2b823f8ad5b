/* cmd_wait.c - `drover wait [RUN] [--timeout S] [--quiet]`: waits for a run, with its
 * progress, then prints its summary and the tests that did not pass; exit 0 only if all
 * passed. drv_cli_wait_run is also how `drover run` waits (cli.h).
 *
 * Ownership: every JSON answer is released before the command returns. */
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
            drv_cli_print_output(stdout, drv_test_output_tail(t, NULL), SUMMARY_OUTPUT_LINES);
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
    drv_cli_format_counts(&rc, counts, sizeof counts);
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
            rc = drv_cli_parse_seconds(cmd, "--timeout", v, &timeout_s) < 0 ? -1 : 1;
        if (rc < 0)
            return DRV_EXIT_USAGE;
        if (rc > 0)
            continue;
        if (strcmp(a, "--quiet") == 0)
            quiet = true;
        else if (a[0] == '-')
            return drv_cli_usage_error(cmd, "unknown option", a);
        else if (run_arg)
            return drv_cli_usage_error(cmd, "one RUN at most, got another", a);
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
        code = drv_cli_request_failed(cmd, &err);
    else
        code = drv_cli_wait_run(c, cmd, run_id, timeout_s, quiet);
    drv_client_close(c);
    return code;
}
