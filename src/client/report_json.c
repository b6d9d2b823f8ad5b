/* report_json.c - a run as JSON for scripts: {"run": RUN, "tests": [...]}, RUN being the
 * API's run summary (counts, progress) and each test a list item of the API, or its full
 * record (with attempts and output) when it failed. */
#include "client/client.h"

int drv_report_json(FILE *out, const json_t *run, const json_t *tests, drv_error *err)
{
    if (!json_is_object(run))
        return drv_error_set(err, "json report: the run must be an object");
    if (!json_is_array(tests))
        return drv_error_set(err, "json report: the tests must be an array");
    /* The report only borrows run and tests: json_pack's "O" takes new references. */
    json_t *report = json_pack("{s:O, s:O}", "run", (json_t *)run, "tests", (json_t *)tests);
    if (!report)
        return drv_error_set(err, "json report: could not be built");
    int rc = json_dumpf(report, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(report);
    if (rc != 0 || fputc('\n', out) == EOF || fflush(out) != 0 || ferror(out))
        return drv_error_set(err, "json report: writing failed");
    return 0;
}
