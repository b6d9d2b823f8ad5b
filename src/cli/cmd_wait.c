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

/* suite2: prints the tests of run run_id that passed only when rerun after failing by
 * themselves (flaky), each with the workers of its attempts. Returns how many. */
static size_t print_flaky(drv_client *c, uint64_t run_id)
{
    drv_error err = {{0}};
    json_t *passed = drv_client_run_tests(c, run_id, "passed", 0, &err);
    json_t *rerun = json_array(); /* those that took more than one attempt */
    size_t i, n = 0;
    json_t *t;
    json_array_foreach(passed, i, t) if (drv_api_int(t, "attempts", 0) > 1)
        json_array_append(rerun, t);
    json_decref(passed);
    if (json_array_size(rerun) && drv_client_add_details(c, rerun, &err) == 0) {
        json_array_foreach(rerun, i, t)
        {
            if (!drv_api_true(t, "flaky"))
                continue;
            if (n++ == 0)
                printf("flaky (failed, then passed when rerun):\n");
            printf("  %s (test %lld):", drv_api_string(t, "name"),
                   (long long)drv_api_int(t, "id", 0));
            size_t k;
            const json_t *a;
            json_array_foreach(json_object_get(t, "attempts"), k, a)
            {
                const char *w = drv_api_string(a, "worker");
                bool ok = drv_api_int(a, "exit_code", -1) == 0 && !drv_api_true(a, "timed_out");
                printf(" %s on %s", ok ? "passed" : "failed", w ? w : "?");
                if (k + 1 < json_array_size(json_object_get(t, "attempts")))
                    printf(",");
            }
            printf("\n");
        }
    }
    json_decref(rerun);
    return n;
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
    print_flaky(c, id);
    if (print_not_passed(c, cmd, id, &rc) < 0)
        return DRV_EXIT_FAILURE;
    return drv_run_counts_all_passed(&rc) ? DRV_EXIT_OK : DRV_EXIT_FAILURE;
}

int drv_cli_wait_run(drv_client *c, const char *cmd, uint64_t run_id, double timeout_s, bool quiet,
                     bool json)
{
    bool tty = !quiet && isatty(STDERR_FILENO);
    double start = now_s(), last_print = -1e9, unreachable_since = -1, delay = 0.05;
    uint64_t last_final = UINT64_MAX;
    json_t *run = NULL; /* the latest answer; released at the end */
    char line[256] = "";
    bool held = false; /* an answer came: ask the coordinator to hold the next ones */
    for (;;) {
        drv_error err = {{0}};
        /* The first look answers at once; then the coordinator holds each answer until
         * the run is done or a second has passed, so the end is seen when it happens
         * (no polling interval added to every run). */
        double asked = now_s();
        json_t *r = held && (timeout_s <= 0 || timeout_s - (asked - start) >= 1)
                        ? drv_client_run_wait(c, run_id, 1, &err)
                        : drv_client_run(c, run_id, &err);
        double t = now_s() - start;
        bool answered_at_once = now_s() - asked < 0.5;
        if (!r) {
            /* An answer (404, 401) is final; no answer may be a restart: ride it out. */
            if (drv_client_status(c) != 0 ||
                (unreachable_since >= 0 && t - unreachable_since > UNREACHABLE_LIMIT_S)) {
                if (tty && line[0])
                    fputc('\n', stderr);
                fprintf(stderr, "drover %s: %s\n", cmd, err.msg);
                json_decref(run);
                return drv_cli_request_failure_code(c);
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
            fprintf(stderr, "drover %s: gave up waiting after %g s (the run goes on)%s%s\n", cmd,
                    timeout_s, line[0] ? "; " : "", line);
            if (json && run) {
                json_object_set_new(run, "timed_out", json_true());
                drv_cli_print_json(run);
            }
            json_decref(run);
            return DRV_EXIT_TIMEOUT;
        }
        if (r && held && !answered_at_once) { /* the coordinator waited for us */
            delay = 0.05;
            continue;
        }
        held = r != NULL;
        double left = timeout_s > 0 ? timeout_s - t : delay;
        sleep_s(delay < left ? delay : left);
        delay = delay * 2 < 1.0 ? delay * 2 : 1.0;
    }
    if (tty)
        fputc('\n', stderr);
    int code;
    if (json) {
        drv_run_counts rc;
        drv_run_counts_read(run, &rc);
        drv_cli_print_json(run);
        code = drv_run_counts_all_passed(&rc) ? DRV_EXIT_OK : DRV_EXIT_FAILURE;
    } else {
        code = print_run_result(c, cmd, run);
    }
    json_decref(run);
    return code;
}

typedef struct wait_args {
    double timeout;
    bool quiet, json;
} wait_args;

#define W(f) offsetof(wait_args, f)
static const drv_opt wait_opts[] = {
    {"--timeout", NULL, DRV_OPT_DOUBLE, W(timeout), 0, 1e9, "S",
     "give up after S seconds, exit 4 (default 0: as long as it takes)", NULL},
    {"--quiet", NULL, DRV_OPT_FLAG, W(quiet), 0, 0, NULL, "no progress lines, only the result",
     NULL},
    {"--json", NULL, DRV_OPT_FLAG, W(json), 0, 0, NULL,
     "the result as the run's JSON answer (GET /api/v1/runs/ID)", NULL},
};
#define N_WAIT_OPTS (sizeof wait_opts / sizeof wait_opts[0])

void drv_cmd_wait_usage(FILE *out)
{
    fprintf(out, "usage: drover wait [RUN] [--timeout S] [--quiet] [--json] [options]\n"
                 "\n"
                 "Waits until every test of run RUN (default: the most recent run) is final,\n"
                 "showing its progress on stderr (done/total, failures so far, ETA from the\n"
                 "coordinator's predictions; one line rewritten in place on a terminal), then\n"
                 "prints the run's counts and the tests that did not pass, with the end of\n"
                 "their output.\n"
                 "\n");
    drv_opt_usage(out, wait_opts, N_WAIT_OPTS);
    fputc('\n', out);
    drv_opt_conn_usage(out);
    fprintf(out, "\n"
                 "Exits 0 only if every test of the run passed; 1 when one did not; 2 on a\n"
                 "wrong command line; 3 when the coordinator cannot be reached; 4 on timeout.\n");
}

int drv_cmd_wait(int argc, char **argv)
{
    const char *cmd = "wait";
    drv_cli_conn conn = {0};
    wait_args a = {0};
    const char *words[1];
    size_t n_words;
    int code =
        drv_opt_parse_words(cmd, wait_opts, N_WAIT_OPTS, &a, &conn, argc, argv, words, 1, &n_words);
    if (code >= 0)
        return code;
    uint64_t run_id = 0;
    if (n_words && drv_cli_parse_id(cmd, "run", words[0], &run_id) < 0)
        return DRV_EXIT_USAGE;
    drv_client *c = drv_cli_connect(&conn, cmd);
    if (!c)
        return DRV_EXIT_USAGE;
    drv_error err = {{0}};
    if (!n_words && drv_client_latest_run(c, &run_id, &err) < 0) {
        drv_cli_request_failed(cmd, &err);
        code = drv_cli_request_failure_code(c);
    } else {
        code = drv_cli_wait_run(c, cmd, run_id, a.timeout, a.quiet, a.json);
    }
    drv_client_close(c);
    return code;
}
