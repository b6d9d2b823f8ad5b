/* cmd_cancel.c - `drover cancel TEST_ID... | --run RUN`: cancels tests that are not final
 * (a running test is stopped on its worker). Ids are parsed before anything is sent, so
 * a typo cancels nothing. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "client/client.h"

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
            code = drv_cli_usage_error(cmd, "unknown option", a);
            goto out;
        }
        if (drv_cli_parse_id(cmd, "test id", a, &ids[n_ids++]) < 0)
            goto out;
    }
    uint64_t run_id = 0;
    if (run_arg && drv_cli_parse_id(cmd, "run", run_arg, &run_id) < 0)
        goto out;
    if ((run_arg != NULL) == (n_ids > 0)) {
        code = drv_cli_usage_error(cmd,
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
            code = drv_cli_request_failed(cmd, &err);
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
