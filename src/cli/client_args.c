/* client_args.c - what every client command of the `drover` binary shares (cli.h):
 * opening the client for the connection options (options.c reads them), ids on the
 * command line, and the messages for a wrong command line and a failed request. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "client/client.h"

drv_client *drv_cli_connect(const drv_cli_conn *conn, const char *cmd)
{
    drv_client_options opt = {.url = conn->url,
                              .token = conn->token,
                              .request_timeout_s = conn->request_timeout_s,
                              .ca_file = conn->ca_file};
    drv_error err = {{0}};
    drv_client *c = drv_client_open(&opt, &err);
    if (!c)
        fprintf(stderr, "drover %s: %s\n", cmd, err.msg);
    return c;
}

int drv_cli_parse_id(const char *cmd, const char *what, const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || s[0] == '+' || v == 0 || v > INT64_MAX) {
        fprintf(stderr, "drover %s: %s \"%s\": expected a positive integer\n", cmd, what, s);
        return -1;
    }
    *out = v;
    return 0;
}

int drv_cli_usage_error(const char *cmd, const char *what, const char *arg)
{
    fprintf(stderr, "drover %s: %s%s%s%s (see drover %s --help)\n", cmd, what, arg ? " \"" : "",
            arg ? arg : "", arg ? "\"" : "", cmd);
    return DRV_EXIT_USAGE;
}

int drv_cli_request_failed(const char *cmd, const drv_error *err)
{
    fprintf(stderr, "drover %s: %s\n", cmd, err->msg);
    return DRV_EXIT_FAILURE;
}

void drv_cli_print_json(const json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
}
