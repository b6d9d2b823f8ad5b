/* cmd_explain.c - `drover explain TEST_ID`: why a queued test is not running. */
#include <string.h>

#include "cli/cli.h"
#include "client/client.h"

typedef struct explain_args {
    bool json;
} explain_args;

static const drv_opt explain_opts[] = {
    {"--json", NULL, DRV_OPT_FLAG, offsetof(explain_args, json), 0, 0, NULL,
     "the API's answer (GET /api/v1/tests/ID/explain), as JSON", NULL},
};
#define N_EXPLAIN_OPTS (sizeof explain_opts / sizeof explain_opts[0])

void drv_cmd_explain_usage(FILE *out)
{
    fprintf(out, "usage: drover explain TEST_ID [--json] [options]\n"
                 "\n"
                 "Says why a queued test is not running: which requirement no worker meets,\n"
                 "or that the workers that could run it are busy, draining or quarantined.\n"
                 "\n");
    drv_opt_usage(out, explain_opts, N_EXPLAIN_OPTS);
    fputc('\n', out);
    drv_opt_conn_usage(out);
    fprintf(out, "\n"
                 "Exits 0 when explained, 2 when the test is unknown or on a wrong command\n"
                 "line, 3 when the coordinator cannot be reached.\n");
}

int drv_cmd_explain(int argc, char **argv)
{
    const char *cmd = "explain";
    drv_cli_conn conn = {0};
    explain_args a = {0};
    const char *words[1];
    size_t n_words;
    int code = drv_opt_parse_words(cmd, explain_opts, N_EXPLAIN_OPTS, &a, &conn, argc, argv, words,
                                   1, &n_words);
    if (code >= 0)
        return code;
    uint64_t id = 0;
    if (!n_words)
        return drv_cli_usage_error(cmd, "expected a TEST_ID", NULL);
    if (drv_cli_parse_id(cmd, "test id", words[0], &id) < 0)
        return DRV_EXIT_USAGE;
    drv_client *c = drv_cli_connect(&conn, cmd);
    if (!c)
        return DRV_EXIT_USAGE;
    char path[96];
    snprintf(path, sizeof path, "/api/v1/tests/%llu/explain", (unsigned long long)id);
    drv_error err = {{0}};
    json_t *ans = drv_client_get(c, path, &err);
    code = DRV_EXIT_OK;
    if (!ans) {
        drv_cli_request_failed(cmd, &err);
        code = drv_cli_request_failure_code(c);
    } else if (a.json) {
        drv_cli_print_json(ans);
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
