/* exit_codes.c - which exit code a failed request to the coordinator means (cli.h):
 * no answer, a server error or a refused token is the infrastructure (3); a request the
 * coordinator refused as wrong (400, 404, 409, 413) is bad input (2). */
#include "cli/cli.h"
#include "client/client.h"

int drv_cli_request_failure_code(const drv_client *c)
{
    long status = drv_client_status(c);
    if (status == 0 || status >= 500 || status == 401 || status == 403)
        return DRV_EXIT_INFRA;
    return DRV_EXIT_USAGE;
}
