/* cmd_explain.c - `drover explain TEST_ID`: why a queued test is not running. */
#include <string.h>

#include "cli/cli.h"
#include "client/client.h"

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
            return drv_cli_usage_error(cmd, "unknown option", argv[i]);
        if (test_arg)
            return drv_cli_usage_error(cmd, "one TEST_ID at most, got another", argv[i]);
        test_arg = argv[i];
    }
    uint64_t id = 0;
    if (!test_arg)
        return drv_cli_usage_error(cmd, "expected a TEST_ID", NULL);
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
        code = drv_cli_request_failed(cmd, &err);
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
