/* report_json.c - a run as JSON for scripts: {"run": RUN, "tests": [...]}, RUN being the
 * API's run summary (counts, progress) and each test a list item of the API, or its full
 * record (with attempts and output) when it failed or had more than one attempt. A test
 * that had a speculative copy carries "speculation": {"winner_attempt", "winner_worker",
 * "copy_won"}. */
#include "client/client.h"

int drv_report_json(FILE *out, const json_t *run, const json_t *tests, drv_error *err)
{
    if (!json_is_object(run))
        return drv_error_set(err, "json report: the run must be an object");
    if (!json_is_array(tests))
        return drv_error_set(err, "json report: the tests must be an array");
    /* The report only borrows run and tests: json_pack's "O" takes new references; a
     * speculated test is a copy with one more field. */
    json_t *items = json_array();
    size_t i;
    const json_t *t;
    json_array_foreach(tests, i, t)
    {
        drv_speculation_info s = drv_test_speculation(t);
        if (!s.speculated) {
            json_array_append(items, (json_t *)t);
            continue;
        }
        json_t *c = json_copy((json_t *)t);
        json_object_set_new(c, "speculation",
                            json_pack("{s:I, s:s?, s:b}", "winner_attempt", (json_int_t)s.winner,
                                      "winner_worker", s.winner_worker, "copy_won", s.copy_won));
        json_array_append_new(items, c);
    }
    json_t *report = json_pack("{s:O, s:o}", "run", (json_t *)run, "tests", items);
    if (!report)
        return drv_error_set(err, "json report: could not be built");
    int rc = json_dumpf(report, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(report);
    if (rc != 0 || fputc('\n', out) == EOF || fflush(out) != 0 || ferror(out))
        return drv_error_set(err, "json report: writing failed");
    return 0;
}
