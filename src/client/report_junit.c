/* report_junit.c - a run as JUnit XML, the report CI systems read (Jenkins, GitLab,
 * GitHub Actions' test reporters).
 *
 *   <testsuites name="drover" tests= failures= errors= time=>
 *     <testsuite name="RUN" tests= failures= errors= skipped= time= timestamp=>
 *       <properties><property name="drover.run_id" value="4"/></properties>
 *       <testcase name="test_x" classname="tests.test_a" time="0.120"/>
 *       <testcase ...><failure message="exit 3: assert 1 == 2" type="failed">OUTPUT TAIL
 *         </failure><system-out>drover: ran on worker w1</system-out></testcase>
 *
 * The shape is Jenkins' junit-10 schema (what GitLab and GitHub's reporters read too):
 * no skipped count on testsuites, and a testcase holds skipped, error, failure,
 * system-out, system-err in that order and nothing else (a test that failed and was run
 * again adds Maven Surefire's flakyFailure or rerunFailure after them: the readers of
 * junit-10 files take those too), so the worker that ran a test is
 * the first line of its system-out; system-err is the end of its stderr alone (the
 * failure's text is the end of both streams, as they came). Names are split as the tools write
 * them: a pytest node id "tests/test_a.py::TestX::test_y[1]" as classname "tests.test_a.TestX",
 * name "test_y[1]" (CI history carries over from pytest --junitxml); any other name as CTest does,
 * classname and name both the test's name. A failure's message is the outcome and the first line of
 * the output that says why (a `drover judge` verdict, a pytest "E   " line, an assertion). failed
 * and timed_out tests are failures, infrastructure failures (the runner, not the test, failed; or
 * the worker was lost) errors, cancelled, unschedulable and unfinished tests skipped. Suite time is
 * the run's wall-clock time (first submission to last result) when known, else the sum of the
 * tests' times. */
#define _GNU_SOURCE /* memmem */
#include "client/client.h"
#include "core/markup.h"

#include <string.h>
#include <time.h>

typedef enum case_kind { CASE_PASSED, CASE_FAILURE, CASE_ERROR, CASE_SKIPPED } case_kind;

/* Writes ` key="value"` with value escaped. */
static void xml_attr(FILE *out, const char *key, const char *value)
{
    fprintf(out, " %s=\"", key);
    drv_markup_escape(out, value, true);
    fputc('"', out);
}

/* The last attempt of a full record, or NULL. */
static const json_t *last_attempt(const json_t *t)
{
    const json_t *a = json_object_get(t, "attempts");
    size_t n = json_array_size(a);
    return n ? json_array_get(a, n - 1) : NULL;
}

/* suite2: a flakyFailure / rerunFailure element (elem) for each attempt of t but the last
 * that failed by itself (a rerun by the coordinator's reruns budget), with its exit. */
static void own_failures(FILE *out, const json_t *t, const char *elem)
{
    const json_t *atts = json_object_get(t, "attempts");
    for (size_t k = 0; k + 1 < json_array_size(atts); k++) {
        const json_t *a = json_array_get(atts, k);
        const char *st = drv_api_string(a, "state");
        if (!st || strcmp(st, "finished") != 0 || drv_api_true(a, "infra_failure"))
            continue;
        int64_t code = drv_api_int(a, "exit_code", 0), sig = drv_api_int(a, "signal", 0);
        bool to = drv_api_true(a, "timed_out");
        if (!code && !sig && !to)
            continue;
        char msg[160];
        const char *w = drv_api_string(a, "worker");
        if (to)
            snprintf(msg, sizeof msg, "timed out on %s", w ? w : "?");
        else if (sig)
            snprintf(msg, sizeof msg, "signal %lld on %s", (long long)sig, w ? w : "?");
        else
            snprintf(msg, sizeof msg, "exit %lld on %s", (long long)code, w ? w : "?");
        fprintf(out, "      <%s", elem);
        xml_attr(out, "message", msg);
        fputs(" type=\"failed\">", out);
        size_t tl = json_string_length(json_object_get(a, "output_tail"));
        if (tl)
            drv_markup_escape_n(out, drv_api_string(a, "output_tail"), tl, false);
        fprintf(out, "</%s>\n", elem);
    }
}

/* What a test is in the report, with the message its element carries in msg. */
static case_kind classify(const json_t *t, char *msg, size_t len)
{
    const char *state = drv_api_string(t, "state");
    int s = state ? drv_task_state_parse(state) : -1;
    drv_test_outcome_format(t, msg, len);
    if (s < 0) {
        snprintf(msg, len, "unknown state \"%.40s\"", state ? state : "(none)");
        return CASE_ERROR;
    }
    const json_t *last = last_attempt(t);
    const char *last_state = drv_api_string(last, "state");
    switch ((drv_task_state)s) {
    case DRV_TASK_PASSED:
        return CASE_PASSED;
    case DRV_TASK_FAILED:
    case DRV_TASK_TIMED_OUT:
        if (drv_api_true(last, "infra_failure"))
            return CASE_ERROR;
        if (last_state && strcmp(last_state, "abandoned") == 0) {
            const char *reason = drv_api_string(t, "reason");
            snprintf(msg, len, "worker lost%s%s", reason ? ": " : "", reason ? reason : "");
            return CASE_ERROR;
        }
        return CASE_FAILURE;
    case DRV_TASK_CANCELLED:
    case DRV_TASK_UNSCHEDULABLE:
    case DRV_TASK_SKIPPED:
        return CASE_SKIPPED;
    case DRV_TASK_QUEUED:
    case DRV_TASK_ASSIGNED:
    case DRV_TASK_RUNNING:
        snprintf(msg, len, "not finished when the report was made (%s)", state);
        return CASE_SKIPPED;
    case DRV_TASK_STATE_COUNT:
        break;
    }
    return CASE_ERROR;
}

/* Splits name into classname (written to cls) and the case's own name (returned, a
 * pointer into name): a pytest node id as pytest --junitxml writes it, anything else as
 * CTest does (both the whole name). */
static const char *split_name(const char *name, char *cls, size_t len)
{
    const char *cut = NULL;
    /* the last "::" outside the parameters "[...]" of the test */
    const char *bracket = strchr(name, '[');
    for (const char *p = strstr(name, "::"); p && (!bracket || p < bracket);
         p = strstr(p + 2, "::"))
        cut = p;
    if (!cut || cut == name || !cut[2]) {
        snprintf(cls, len, "%s", name);
        return name;
    }
    size_t off = 0;
    for (const char *p = name; p < cut && off + 1 < len; p++) {
        if (p[0] == '.' && p[1] == 'p' && p[2] == 'y' && (p + 3 == cut || p[3] == ':')) {
            p += 2; /* the file's ".py" */
            continue;
        }
        if (p[0] == ':' && p[1] == ':') {
            cls[off++] = '.';
            p++;
            continue;
        }
        cls[off++] = *p == '/' ? '.' : *p;
    }
    cls[off] = '\0';
    return cut + 2;
}

/* The first line of text (len bytes) that says why a test failed, in *line (n bytes);
 * false when none does. */
static bool reason_line(const char *text, size_t len, const char **line, size_t *n)
{
    static const char *const marks[] = {"drover judge: ", "E   ",    "AssertionError", "Assertion ",
                                        "assert ",        "Error: ", "FAILED"};
    for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++) {
        size_t ml = strlen(marks[m]);
        for (const char *p = text; p && p < text + len;) {
            const char *end = memchr(p, '\n', (size_t)(text + len - p));
            size_t l = end ? (size_t)(end - p) : (size_t)(text + len - p);
            const char *hit = l >= ml ? memmem(p, l, marks[m], ml) : NULL;
            if (hit) {
                if (m == 0) /* the verdict itself */
                    hit += ml;
                else if (m == 1)
                    hit += 1;
                while (hit < p + l && (*hit == ' ' || *hit == '\t'))
                    hit++;
                *line = hit;
                *n = (size_t)(p + l - hit);
                if (*n > 300)
                    *n = 300;
                return *n > 0;
            }
            p = end ? end + 1 : NULL;
        }
    }
    return false;
}

int drv_report_junit(FILE *out, const json_t *run, const json_t *tests, drv_error *err)
{
    if (!json_is_object(run))
        return drv_error_set(err, "junit report: the run must be an object");
    if (!json_is_array(tests))
        return drv_error_set(err, "junit report: the tests must be an array");
    size_t i;
    const json_t *t;
    json_array_foreach(tests, i, t)
    {
        if (!json_is_object(t) || !drv_api_string(t, "name"))
            return drv_error_set(err, "junit report: tests[%zu] is not a test with a name", i);
    }

    /* Counts and times first: they are attributes of the suite. */
    size_t counts[4] = {0};
    double sum_s = 0, last_end = 0;
    char msg[DRV_ERROR_MAX];
    json_array_foreach(tests, i, t)
    {
        counts[classify(t, msg, sizeof msg)]++;
        sum_s += drv_api_number(t, "duration_s", 0);
        double end = drv_api_number(t, "finished_at", 0);
        if (end > last_end)
            last_end = end;
    }
    double created = drv_api_number(run, "created_at", 0);
    double wall_s = created > 0 && last_end >= created ? last_end - created : sum_s;
    int64_t run_id = drv_api_int(run, "id", 0);
    char suite[256], id_text[32];
    const char *run_name = drv_api_string(run, "name");
    if (run_name && *run_name)
        snprintf(suite, sizeof suite, "%s", run_name);
    else
        snprintf(suite, sizeof suite, "run %lld", (long long)run_id);
    snprintf(id_text, sizeof id_text, "%lld", (long long)run_id);

    size_t n = json_array_size(tests);
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", out);
    fprintf(out,
            "<testsuites name=\"drover\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" "
            "time=\"%.3f\">\n",
            n, counts[CASE_FAILURE], counts[CASE_ERROR], wall_s);
    fputs("  <testsuite", out);
    xml_attr(out, "name", suite);
    fprintf(out, " tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\" time=\"%.3f\"", n,
            counts[CASE_FAILURE], counts[CASE_ERROR], counts[CASE_SKIPPED], wall_s);
    if (created > 0) {
        time_t secs = (time_t)created;
        struct tm tm;
        char stamp[32];
        if (gmtime_r(&secs, &tm) && strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm))
            xml_attr(out, "timestamp", stamp);
    }
    fputs(">\n    <properties>\n      <property name=\"drover.run_id\"", out);
    xml_attr(out, "value", id_text);
    fputs("/>\n    </properties>\n", out);

    json_array_foreach(tests, i, t)
    {
        case_kind kind = classify(t, msg, sizeof msg);
        char cls[512];
        const char *name = split_name(drv_api_string(t, "name"), cls, sizeof cls);
        const char *worker = drv_api_string(t, "worker");
        fputs("    <testcase", out);
        xml_attr(out, "name", name);
        xml_attr(out, "classname", cls);
        fprintf(out, " time=\"%.3f\"", drv_api_number(t, "duration_s", 0));
        drv_speculation_info spec = drv_test_speculation(t);
        if (kind == CASE_PASSED && !worker && !spec.speculated &&
            !json_array_size(json_object_get(t, "rerun_failures"))) {
            fputs("/>\n", out);
            continue;
        }
        fputs(">\n", out);
        size_t tail_len = 0;
        const char *tail = drv_test_output_tail(t, &tail_len);
        const char *why = NULL;
        size_t why_len = 0;
        if ((kind == CASE_FAILURE || kind == CASE_ERROR) && tail &&
            reason_line(tail, tail_len, &why, &why_len)) {
            size_t used = strlen(msg);
            if (used + 3 + why_len < sizeof msg) {
                memcpy(msg + used, ": ", 2);
                for (size_t k = 0; k < why_len; k++) /* a NUL would end the message */
                    msg[used + 2 + k] = why[k] ? why[k] : ' ';
                msg[used + 2 + why_len] = '\0';
            }
        }
        if (kind == CASE_PASSED) {
            /* nothing but the worker below */
        } else if (kind == CASE_SKIPPED) {
            fputs("      <skipped", out);
            xml_attr(out, "message", msg);
            fputs("/>\n", out);
        } else {
            const char *elem = kind == CASE_FAILURE ? "failure" : "error";
            fprintf(out, "      <%s", elem);
            xml_attr(out, "message", msg);
            xml_attr(out, "type",
                     kind == CASE_FAILURE ? drv_api_string(t, "state") : "infrastructure");
            fputs(">", out);
            drv_markup_escape_n(out, tail, tail_len, false);
            fprintf(out, "</%s>\n", elem);
        }
        /* Runs that failed before this one (Maven Surefire's shape): flaky when it then
         * passed, reruns that failed too when it did not. */
        const json_t *prior = json_object_get(t, "rerun_failures");
        for (size_t k = 0; k < json_array_size(prior); k++) {
            const char *pm = json_string_value(json_array_get(prior, k));
            fprintf(out, "      <%s", kind == CASE_PASSED ? "flakyFailure" : "rerunFailure");
            xml_attr(out, "message", pm ? pm : "failed");
            fputs(" type=\"failed\"/>\n", out);
        }
        if (!prior) /* suite2: reruns by the coordinator, from the attempts */
            own_failures(out, t, kind == CASE_PASSED ? "flakyFailure" : "rerunFailure");
        if (worker || spec.speculated) {
            /* Where it ran, and which copy's result this is (the JUnit XSD has no testcase
             * properties). */
            fputs("      <system-out>", out);
            if (worker) {
                fputs("drover: ran on worker ", out);
                drv_markup_escape(out, worker, false);
                int64_t attempt = drv_api_int(t, "attempt_count", drv_api_int(t, "attempts", 1));
                fprintf(out, " (attempt %lld)\n", (long long)attempt);
            }
            if (spec.speculated) {
                fprintf(out, "drover: speculation: %s won: attempt %u on ",
                        spec.copy_won ? "the speculative copy" : "the first attempt", spec.winner);
                drv_markup_escape(out, spec.winner_worker ? spec.winner_worker : "?", false);
                fputs("\n", out);
            }
            fputs("</system-out>\n", out);
        }
        const json_t *err_tail = json_object_get(last_attempt(t), "stderr_tail");
        if (json_string_length(err_tail) > 0) { /* kept apart by the worker */
            fputs("      <system-err>", out);
            drv_markup_escape_n(out, json_string_value(err_tail), json_string_length(err_tail),
                                false);
            fputs("</system-err>\n", out);
        }
        fputs("    </testcase>\n", out);
    }
    fputs("  </testsuite>\n</testsuites>\n", out);
    if (fflush(out) != 0 || ferror(out))
        return drv_error_set(err, "junit report: writing failed");
    return 0;
}
