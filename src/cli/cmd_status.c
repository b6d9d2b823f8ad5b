/* cmd_status.c - `drover status [RUN | --workers | --test ID] [--json]`: the
 * coordinator, a run, the workers, or one test with its attempts (the views it shares
 * with `drover top` are in status_views.c).
 *
 * Ownership: every JSON answer is released before the command returns; the client is
 * opened and closed by the command. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "client/client.h"

/* Lines of output shown under each attempt. */
#define ATTEMPT_OUTPUT_LINES 10

typedef struct status_args {
    const char *test;
    bool workers, json;
} status_args;

#define S(f) offsetof(status_args, f)
static const drv_opt status_opts[] = {
    {"--workers", NULL, DRV_OPT_FLAG, S(workers), 0, 0, NULL, "the workers", NULL},
    {"--test", NULL, DRV_OPT_STRING, S(test), 0, 0, "ID|NAME",
     "one test (by name: the newest of that name)", NULL},
    {"--json", NULL, DRV_OPT_FLAG, S(json), 0, 0, NULL, "print the API's answer as JSON instead",
     NULL},
};
#define N_STATUS_OPTS (sizeof status_opts / sizeof status_opts[0])

void drv_cmd_status_usage(FILE *out)
{
    fprintf(out,
            "usage: drover status [--json] [options]           the coordinator\n"
            "       drover status RUN [--json] [options]       one run\n"
            "       drover status --workers [--json] [options] the workers\n"
            "       drover status --test ID|NAME [--json] [options] one test and its attempts\n"
            "\n"
            "Shows what the coordinator holds: tests by state and workers connected, lost\n"
            "and quarantined; a run's counts and progress; a table of the workers (name,\n"
            "health, thermal state, slots, tests running, load, tags); or one test with\n"
            "each attempt (worker, outcome, duration, the end of its output; while it\n"
            "runs, its output so far).\n"
            "\n");
    drv_opt_usage(out, status_opts, N_STATUS_OPTS);
    fputc('\n', out);
    drv_opt_conn_usage(out);
    fprintf(out, "\n"
                 "Exits 0 when shown, 1 when the coordinator cannot be reached or refuses,\n"
                 "2 on a wrong command line.\n");
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
    if (drv_api_true(t, "flaky"))
        printf(", flaky (failed, then passed when rerun)");
    printf("\n");
    const json_t *fl = json_object_get(t, "flakiness");
    if (drv_api_int(fl, "runs", 0) > 0) /* suite2: across runs, by the test's name */
        printf("flakiness: %.0f%% (%lld flaky of its last %lld runs by this name)\n",
               100 * drv_api_number(fl, "rate", 0), (long long)drv_api_int(fl, "flaky", 0),
               (long long)drv_api_int(fl, "runs", 0));
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
        drv_cli_print_output(stdout, drv_api_string(a, "output_tail"), ATTEMPT_OUTPUT_LINES);
    }
    const char *live = drv_api_string(t, "live_output");
    if (live) {
        printf("output so far:\n");
        drv_cli_print_output(stdout, live, ATTEMPT_OUTPUT_LINES);
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
    status_args o = {0};
    const char *words[1];
    size_t n_words;
    int code = drv_opt_parse_words(cmd, status_opts, N_STATUS_OPTS, &o, &conn, argc, argv, words, 1,
                                   &n_words);
    if (code >= 0)
        return code;
    bool workers = o.workers, json = o.json;
    const char *test_arg = o.test, *run_arg = n_words ? words[0] : NULL;
    if ((run_arg != NULL) + (test_arg != NULL) + workers > 1)
        return drv_cli_usage_error(cmd, "give one of RUN, --workers and --test", NULL);
    uint64_t id = 0;
    /* py3: --test takes a test's id or its name (the newest test of that name). */
    bool by_name = test_arg && strspn(test_arg, "0123456789") != strlen(test_arg);
    if ((run_arg && drv_cli_parse_id(cmd, "run", run_arg, &id) < 0) ||
        (test_arg && !by_name && drv_cli_parse_id(cmd, "test id", test_arg, &id) < 0))
        return DRV_EXIT_USAGE;

    drv_client *c = drv_cli_connect(&conn, cmd);
    if (!c)
        return DRV_EXIT_USAGE;
    drv_error err = {{0}};
    if (by_name && drv_client_test_by_name(c, test_arg, &id, &err) < 0) {
        code = drv_cli_request_failed(cmd, &err);
        drv_client_close(c);
        return code;
    }
    json_t *ans = run_arg    ? drv_client_run(c, id, &err)
                  : test_arg ? drv_client_test(c, id, &err)
                  : workers  ? drv_client_get(c, "/api/v1/workers", &err)
                             : drv_client_get(c, "/api/v1/status", &err);
    if (!ans)
        code = drv_cli_request_failed(cmd, &err);
    else if (json)
        drv_cli_print_json(ans), code = DRV_EXIT_OK;
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
