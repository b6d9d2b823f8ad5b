/* cmd_fleet.c - `drover fleet drain|clear NAME...`: operator actions on workers. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "client/client.h"

/* fleet has no options of its own: the table gives the connection options and the
 * errors naming an unknown one. */
static const drv_opt fleet_opts[1];

void drv_cmd_fleet_usage(FILE *out)
{
    fprintf(out, "usage: drover fleet drain NAME... [options]\n"
                 "       drover fleet clear NAME... [options]\n"
                 "\n"
                 "Operator actions on workers. drain: the worker takes nothing new and\n"
                 "finishes what it holds. clear: lifts a quarantine (or a drain) so the\n"
                 "worker takes work again; `drover status --workers` shows who is\n"
                 "quarantined and why.\n"
                 "\n");
    drv_opt_conn_usage(out);
    fprintf(out, "\n"
                 "Exits 0 when every worker named was changed, 1 when one is unknown or the\n"
                 "coordinator refused, 2 on a wrong command line.\n");
}

int drv_cmd_fleet(int argc, char **argv)
{
    const char *cmd = "fleet";
    drv_cli_conn conn = {0};
    const char *action = NULL;
    const char **words = drv_xcalloc((size_t)argc, sizeof *words); /* freed at the end */
    const char **names = words + 1;
    size_t n = 0;
    int code =
        drv_opt_parse_words(cmd, fleet_opts, 0, NULL, &conn, argc, argv, words, (size_t)argc, &n);
    if (code >= 0)
        goto out;
    code = DRV_EXIT_USAGE;
    if (n > 0) {
        action = words[0];
        n--;
    }
    if (!action || (strcmp(action, "drain") != 0 && strcmp(action, "clear") != 0)) {
        code = drv_cli_usage_error(cmd, "expected drain or clear", action);
        goto out;
    }
    if (n == 0) {
        code = drv_cli_usage_error(cmd, "expected at least one worker NAME", NULL);
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
            code = drv_cli_request_failed(cmd, &err);
            continue;
        }
        const char *health = drv_api_string(ans, "health");
        printf("worker %s: %s\n", names[k], health ? health : action);
        json_decref(ans);
    }
    drv_client_close(c);
out:
    free(words);
    return code;
}
