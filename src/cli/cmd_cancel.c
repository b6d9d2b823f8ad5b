/* cmd_cancel.c - `drover cancel TEST_ID... | --run RUN`: cancels tests that are not final
 * (a running test is stopped on its worker). Ids are parsed before anything is sent, so
 * a typo cancels nothing. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "client/client.h"

typedef struct cancel_args {
    const char *run;
    bool json;
} cancel_args;

#define C(f) offsetof(cancel_args, f)
static const drv_opt cancel_opts[] = {
    {"--run", NULL, DRV_OPT_STRING, C(run), 0, 0, "RUN", "every test of run RUN not final", NULL},
    {"--json", NULL, DRV_OPT_FLAG, C(json), 0, 0, NULL,
     "print {\"run\": {..}, \"tests\": [{\"id\": N, \"state\": S} | {\"id\": N, \"error\": E}]}",
     NULL},
};
#define N_CANCEL_OPTS (sizeof cancel_opts / sizeof cancel_opts[0])

void drv_cmd_cancel_usage(FILE *out)
{
    fprintf(out, "usage: drover cancel TEST_ID... [--json] [options]\n"
                 "       drover cancel --run RUN [--json] [options]\n"
                 "\n"
                 "Cancels tests that are not final yet; a running test is stopped on its\n"
                 "worker. With --run, every test of run RUN that is not final.\n"
                 "\n");
    drv_opt_usage(out, cancel_opts, N_CANCEL_OPTS);
    fputc('\n', out);
    drv_opt_conn_usage(out);
    fprintf(out, "\n"
                 "Exits 0 when everything named was cancelled, 1 when a test could not be\n"
                 "(already final, unknown) or the coordinator refused, 2 on a wrong command\n"
                 "line.\n");
}

int drv_cmd_cancel(int argc, char **argv)
{
    const char *cmd = "cancel";
    drv_cli_conn conn = {0};
    cancel_args a = {0};
    /* The test ids, parsed up front so a typo cancels nothing; freed at the end. */
    const char **words = drv_xcalloc((size_t)argc, sizeof *words);
    uint64_t *ids = drv_xcalloc((size_t)argc, sizeof *ids);
    size_t n_ids = 0;
    json_t *out = json_object(), *tests = json_array(); /* --json's answer */
    int code = drv_opt_parse_words(cmd, cancel_opts, N_CANCEL_OPTS, &a, &conn, argc, argv, words,
                                   (size_t)argc, &n_ids);
    if (code >= 0)
        goto out;
    code = DRV_EXIT_USAGE;
    for (size_t k = 0; k < n_ids; k++)
        if (drv_cli_parse_id(cmd, "test id", words[k], &ids[k]) < 0)
            goto out;
    uint64_t run_id = 0;
    if (a.run && drv_cli_parse_id(cmd, "run", a.run, &run_id) < 0)
        goto out;
    if ((a.run != NULL) == (n_ids > 0)) {
        code = drv_cli_usage_error(cmd,
                                   a.run ? "give --run RUN or test ids, not both"
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
    if (a.run) {
        snprintf(path, sizeof path, "/api/v1/runs/%llu/cancel", (unsigned long long)run_id);
        json_t *ans = drv_client_post(c, path, NULL, &err);
        if (!ans) {
            drv_cli_request_failed(cmd, &err);
            code = drv_cli_request_failure_code(c);
        } else if (a.json) {
            json_object_set(out, "run", ans);
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
        json_t *row = json_object();
        json_object_set_new(row, "id", json_integer((json_int_t)ids[k]));
        json_array_append_new(tests, row);
        if (ans) {
            const char *state = drv_api_string(ans, "state");
            json_object_set_new(row, "state", json_string(state ? state : "cancelled"));
            if (!a.json)
                printf("test %llu: %s\n", (unsigned long long)ids[k], state ? state : "cancelled");
            json_decref(ans);
            continue;
        }
        json_object_set_new(row, "error", json_string(err.msg));
        fprintf(stderr, "drover %s: test %llu: %s\n", cmd, (unsigned long long)ids[k], err.msg);
        code = DRV_EXIT_FAILURE;
        if (drv_client_status(c) == 0 || drv_client_status(c) == 401) {
            code = DRV_EXIT_INFRA;
            break; /* no coordinator, or no right: the other ids would fail the same way */
        }
    }
    if (a.json && (n_ids || json_object_get(out, "run"))) {
        json_object_set(out, "tests", tests);
        drv_cli_print_json(out);
    }
    drv_client_close(c);
out:
    json_decref(out);
    json_decref(tests);
    free(words);
    free(ids);
    return code;
}
