/* cmd_runs.c - `drover runs`: the runs of a coordinator, most recent first.
 *
 *   drover runs [--limit N] [--json] [options]
 *
 * One line per run: its id, name, when it was made, how many tests, how many are done,
 * passed and not, so a CI job (or a person sharing a coordinator) finds the run it
 * wants for `drover report RUN` or `drover wait RUN`. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "client/client.h"

typedef struct runs_args {
    uint64_t limit;
    bool json;
} runs_args;

#define R(f) offsetof(runs_args, f)
static const drv_opt runs_opts[] = {
    {"--limit", NULL, DRV_OPT_UINT, R(limit), 1, 100000, "N", "the N most recent (default 20)",
     NULL},
    {"--json", NULL, DRV_OPT_FLAG, R(json), 0, 0, NULL, "the API's answer, as JSON", NULL},
};
#define N_RUNS_OPTS (sizeof runs_opts / sizeof runs_opts[0])

void drv_cmd_runs_usage(FILE *out)
{
    fprintf(out, "usage: drover runs [--limit N] [--json] [options]\n"
                 "\n"
                 "Lists the runs of the coordinator, most recent first: id, name, created (UTC),\n"
                 "tests, done, passed, not passed.\n"
                 "\n");
    drv_opt_usage(out, runs_opts, N_RUNS_OPTS);
    fputc('\n', out);
    drv_opt_conn_usage(out);
    fprintf(out, "\n"
                 "Exits 0 when listed, 2 on a wrong command line, 3 when the coordinator cannot\n"
                 "be reached.\n");
}

int drv_cmd_runs(int argc, char **argv)
{
    runs_args a = {.limit = 20};
    drv_cli_conn conn = {0};
    int rest;
    int code = drv_opt_parse("runs", runs_opts, N_RUNS_OPTS, &a, &conn, argc, argv, &rest);
    if (code >= 0)
        return code;
    if (rest < argc) {
        fprintf(stderr, "drover runs: unexpected argument \"%s\"\n", argv[rest]);
        return DRV_EXIT_USAGE;
    }
    drv_client *c = drv_cli_connect(&conn, "runs");
    if (!c)
        return DRV_EXIT_USAGE;
    char path[64];
    snprintf(path, sizeof path, "/api/v1/runs?limit=%llu", (unsigned long long)a.limit);
    drv_error err = {{0}};
    json_t *answer = drv_client_get(c, path, &err);
    int failed = answer ? 0 : drv_cli_request_failure_code(c);
    drv_client_close(c);
    if (!answer) {
        fprintf(stderr, "drover runs: %s\n", err.msg);
        return failed;
    }
    if (a.json) {
        char *text = json_dumps(answer, JSON_INDENT(2));
        printf("%s\n", text);
        free(text);
        json_decref(answer);
        return DRV_EXIT_OK;
    }
    const json_t *runs = json_object_get(answer, "runs");
    printf("%-6s %-24s %-19s %7s %7s %7s %10s\n", "RUN", "NAME", "CREATED (UTC)", "TESTS", "DONE",
           "PASSED", "NOT PASSED");
    size_t i;
    const json_t *r;
    json_array_foreach(runs, i, r)
    {
        drv_run_counts rc;
        drv_run_counts_read(r, &rc);
        char when[32] = "-";
        time_t t = (time_t)drv_api_number(r, "created_at", 0);
        struct tm tm;
        if (t > 0 && gmtime_r(&t, &tm))
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        const char *name = drv_api_string(r, "name");
        uint64_t ok = rc.by_state[DRV_TASK_PASSED] + rc.by_state[DRV_TASK_SKIPPED];
        printf("%-6lld %-24.24s %-19s %7llu %7llu %7llu %10llu\n",
               (long long)drv_api_int(r, "id", 0), name && *name ? name : "-", when,
               (unsigned long long)rc.submitted, (unsigned long long)rc.final,
               (unsigned long long)rc.by_state[DRV_TASK_PASSED],
               (unsigned long long)(rc.final - ok));
    }
    if (json_array_size(runs) == 0)
        printf("(no runs yet)\n");
    json_decref(answer);
    return DRV_EXIT_OK;
}
