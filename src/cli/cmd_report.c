/* cmd_report.c - `drover report [RUN] --junit FILE --json FILE`: a run's report for CI
 * (JUnit XML) and for scripts (JSON), written by client/report_*.c from the API's
 * answers: the run summary, every test of the run, and the full record (attempts,
 * output) of each test that failed.
 *
 * A file is written under a temporary name and renamed into place, so a CI job never
 * reads half a report. "-" writes to stdout. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "client/client.h"

typedef struct report_args {
    const char *junit, *json;
} report_args;

#define RA(f) offsetof(report_args, f)
static const drv_opt report_opts[] = {
    {"--junit", NULL, DRV_OPT_STRING, RA(junit), 0, 0, "FILE",
     "JUnit XML: a <testsuite> for the run, a <testcase> per test; failed and timed out "
     "tests carry a <failure> with the end of their output, infrastructure failures an "
     "<error>, cancelled, unschedulable and unfinished tests <skipped>",
     NULL},
    {"--json", NULL, DRV_OPT_STRING, RA(json), 0, 0, "FILE",
     "JSON: {\"run\": the run's summary, \"tests\": every test, those that failed with "
     "their attempts and output}",
     NULL},
};
#define N_REPORT_OPTS (sizeof report_opts / sizeof report_opts[0])

void drv_cmd_report_usage(FILE *out)
{
    fprintf(out, "usage: drover report [RUN] [--junit FILE] [--json FILE] [options]\n"
                 "\n"
                 "Writes the report of run RUN (default: the most recent run); at least one of:\n");
    drv_opt_usage(out, report_opts, N_REPORT_OPTS);
    fprintf(out, "FILE - is stdout (for one of the two). Both may be given at once.\n"
                 "\n");
    drv_opt_conn_usage(out);
    fprintf(out, "\n"
                 "Exits 0 when the reports were written, whatever the tests' outcome (drover wait\n"
                 "tells that); 1 when the coordinator cannot be reached or a file cannot be\n"
                 "written; 2 on a wrong command line.\n");
}

typedef int (*report_writer)(FILE *out, const json_t *run, const json_t *tests, drv_error *err);

/* Writes one report to path ("-": stdout) through a temporary file renamed into place.
 * Returns 0, or -1 with err. */
static int write_report(const char *path, report_writer write, const json_t *run,
                        const json_t *tests, drv_error *err)
{
    if (strcmp(path, "-") == 0)
        return write(stdout, run, tests, err);
    size_t n = strlen(path) + 16;
    char *tmp = drv_xmalloc(n); /* freed below */
    snprintf(tmp, n, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        drv_error_set(err, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    int rc = write(f, run, tests, err);
    if (fclose(f) != 0 && rc == 0)
        rc = drv_error_set(err, "%s: cannot write: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = drv_error_set(err, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    if (rc != 0) {
        remove(tmp);
        drv_error_prefix(err, "%s", path);
    }
    free(tmp);
    return rc;
}

int drv_cmd_report(int argc, char **argv)
{
    const char *cmd = "report";
    drv_cli_conn conn = {0};
    report_args o = {0};
    const char *words[1];
    size_t n_words;
    int parsed = drv_opt_parse_words(cmd, report_opts, N_REPORT_OPTS, &o, &conn, argc, argv, words,
                                     1, &n_words);
    if (parsed >= 0)
        return parsed;
    const char *junit = o.junit, *json_path = o.json, *run_arg = n_words ? words[0] : NULL;
    if (!junit && !json_path) {
        fprintf(stderr,
                "drover %s: expected --junit FILE, --json FILE or both (see drover %s "
                "--help)\n",
                cmd, cmd);
        return DRV_EXIT_USAGE;
    }
    if (junit && json_path && strcmp(junit, json_path) == 0) {
        fprintf(stderr, "drover %s: --junit and --json both name \"%s\"\n", cmd, junit);
        return DRV_EXIT_USAGE;
    }
    uint64_t run_id = 0;
    if (run_arg && drv_cli_parse_id(cmd, "run", run_arg, &run_id) < 0)
        return DRV_EXIT_USAGE;

    drv_client *c = drv_cli_connect(&conn, cmd);
    if (!c)
        return DRV_EXIT_USAGE;
    int code = DRV_EXIT_FAILURE;
    drv_error err = {{0}};
    if (!run_arg && drv_client_latest_run(c, &run_id, &err) < 0) {
        fprintf(stderr, "drover %s: %s\n", cmd, err.msg);
        code = drv_cli_request_failure_code(c);
    } else {
        if (!run_arg) /* on a shared coordinator that may be another job's run: say so */
            fprintf(stderr,
                    "drover %s: no RUN given: reporting run %llu, the most recent on %s (give "
                    "the run id drover run/submit printed to be sure)\n",
                    cmd, (unsigned long long)run_id, drv_client_url(c));
        if (drv_cli_write_reports(c, cmd, run_id, junit, json_path) == 0)
            code = DRV_EXIT_OK;
        else
            code = drv_client_status(c) == 0 ? DRV_EXIT_INFRA : DRV_EXIT_FAILURE;
    }
    drv_client_close(c);
    return code;
}

/* py3 (issue 13): a batch whose member tests have results of their own (docs/api.md,
 * "Batches") is reported through them: its row leaves tests. A batch without any (its
 * process never ran a test) stays, so its failure is still reported. */
static void members_for_batches(json_t *tests)
{
    size_t n = json_array_size(tests), kept = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(tests, i);
        int64_t id = drv_api_int(t, "id", 0);
        bool covered = false;
        for (size_t j = 0; drv_api_int(t, "members", 0) > 0 && j < n && !covered; j++)
            covered = drv_api_int(json_array_get(tests, j), "batch", 0) == id;
        if (!covered)
            json_array_set(tests, kept++, t);
    }
    while (json_array_size(tests) > kept)
        json_array_remove(tests, json_array_size(tests) - 1);
}

int drv_cli_write_reports(drv_client *c, const char *cmd, uint64_t run_id, const char *junit,
                          const char *json_path)
{
    drv_error err = {{0}};
    json_t *run = NULL, *tests = NULL; /* released at the end */
    int code = -1;
    if (!(run = drv_client_run(c, run_id, &err)) ||
        !(tests = drv_client_run_tests(c, run_id, NULL, 0, &err)) ||
        (members_for_batches(tests), drv_client_add_details(c, tests, &err) < 0) ||
        (junit && write_report(junit, drv_report_junit, run, tests, &err) < 0) ||
        (json_path && write_report(json_path, drv_report_json, run, tests, &err) < 0)) {
        fprintf(stderr, "drover %s: %s\n", cmd, err.msg);
    } else {
        drv_run_counts rc;
        drv_run_counts_read(run, &rc);
        fprintf(stderr, "run %llu: %zu test%s%s reported%s%s%s%s\n", (unsigned long long)run_id,
                json_array_size(tests), json_array_size(tests) == 1 ? "" : "s",
                rc.done ? "" : " (not finished yet)", junit ? " in " : "", junit ? junit : "",
                json_path ? (junit ? " and " : " in ") : "", json_path ? json_path : "");
        code = 0;
    }
    json_decref(run);
    json_decref(tests);
    return code;
}
