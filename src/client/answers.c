/* answers.c - reading the REST API's answers (docs/api.md): typed field readers that
 * tolerate a missing or null field, a run's counts and its progress line, and a test's
 * outcome and output in words. Shared by the commands and the reports. */
#include "client/client.h"

#include <math.h>
#include <string.h>

const char *drv_api_string(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

double drv_api_number(const json_t *o, const char *key, double dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

int64_t drv_api_int(const json_t *o, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

bool drv_api_true(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

void drv_run_counts_read(const json_t *run, drv_run_counts *out)
{
    memset(out, 0, sizeof *out);
    const json_t *counts = json_object_get(run, "counts");
    for (int s = 0; s < DRV_TASK_STATE_COUNT; s++) {
        int64_t n = drv_api_int(counts, drv_task_state_name((drv_task_state)s), 0);
        out->by_state[s] = n > 0 ? (uint64_t)n : 0;
        if (drv_task_state_final((drv_task_state)s))
            out->final += out->by_state[s];
    }
    int64_t submitted = drv_api_int(run, "submitted", -1);
    if (submitted < 0) {
        submitted = 0;
        for (int s = 0; s < DRV_TASK_STATE_COUNT; s++)
            submitted += (int64_t)out->by_state[s];
    }
    out->submitted = (uint64_t)submitted;
    out->done = drv_api_true(run, "done");
    out->eta_s = drv_api_number(run, "eta_s", -1);
}

bool drv_run_counts_all_passed(const drv_run_counts *rc)
{
    /* A test that skipped itself (or was disabled) is not a failure, as in CTest and
     * pytest; one skipped because a test it runs after failed comes with that failure. */
    return rc->submitted > 0 &&
           rc->by_state[DRV_TASK_PASSED] + rc->by_state[DRV_TASK_SKIPPED] == rc->submitted;
}

/* Appends ", N WORD" to buf at *off when n > 0. */
static void add_count(char *buf, size_t len, size_t *off, uint64_t n, const char *word)
{
    if (n == 0 || *off >= len)
        return;
    int w = snprintf(buf + *off, len - *off, ", %llu %s", (unsigned long long)n, word);
    if (w > 0)
        *off += (size_t)w;
}

void drv_run_progress_format(uint64_t run_id, const drv_run_counts *rc, double elapsed_s, char *buf,
                             size_t len)
{
    if (len == 0)
        return;
    const uint64_t *s = rc->by_state;
    int w = snprintf(buf, len, "run %llu: %llu/%llu done", (unsigned long long)run_id,
                     (unsigned long long)rc->final, (unsigned long long)rc->submitted);
    size_t off = w > 0 ? (size_t)w : 0;
    /* running: started on a worker; assigned: given to one, not started yet */
    add_count(buf, len, &off, s[DRV_TASK_RUNNING], "running");
    add_count(buf, len, &off, s[DRV_TASK_ASSIGNED], "assigned");
    add_count(buf, len, &off, s[DRV_TASK_QUEUED], "queued");
    add_count(buf, len, &off, s[DRV_TASK_FAILED] + s[DRV_TASK_TIMED_OUT], "failed");
    add_count(buf, len, &off, s[DRV_TASK_UNSCHEDULABLE], "unschedulable");
    add_count(buf, len, &off, s[DRV_TASK_CANCELLED], "cancelled");
    add_count(buf, len, &off, s[DRV_TASK_SKIPPED], "skipped");
    if (elapsed_s >= 0 && off < len) {
        int e = snprintf(buf + off, len - off, ", %.1f s", elapsed_s);
        off += e > 0 ? (size_t)e : 0;
    }
    if (!rc->done && rc->eta_s >= 0 && off < len)
        snprintf(buf + off, len - off, ", ETA %.0f s", ceil(rc->eta_s));
}

/* The last element of test's "attempts" array, or NULL. */
static const json_t *last_attempt(const json_t *test)
{
    const json_t *a = json_object_get(test, "attempts");
    size_t n = json_array_size(a);
    return n ? json_array_get(a, n - 1) : NULL;
}

const char *drv_test_output_tail(const json_t *test, size_t *len)
{
    const json_t *a = json_object_get(test, "attempts");
    for (size_t i = json_array_size(a); i > 0; i--) {
        const json_t *tail = json_object_get(json_array_get(a, i - 1), "output_tail");
        if (json_is_string(tail) && json_string_length(tail) > 0) {
            if (len)
                *len = json_string_length(tail);
            return json_string_value(tail);
        }
    }
    if (len)
        *len = 0;
    return NULL;
}

void drv_test_outcome_format(const json_t *test, char *buf, size_t len)
{
    if (len == 0)
        return;
    const char *state = drv_api_string(test, "state");
    const char *reason = drv_api_string(test, "reason");
    const json_t *last = last_attempt(test);
    /* A full record's last attempt knows more than the list item's summary fields. */
    const json_t *src = last ? last : test;
    int64_t code = drv_api_int(src, "exit_code", -1), sig = drv_api_int(src, "signal", -1);
    if (code < 0 && sig < 0) {
        code = drv_api_int(test, "exit_code", -1);
        sig = drv_api_int(test, "signal", -1);
    }
    if (!state)
        state = "unknown";
    if (reason && strcmp(reason, state) == 0)
        reason = NULL; /* "passed" because passed says nothing */
    if (drv_api_true(last, "infra_failure")) {
        snprintf(buf, len, "infrastructure failure%s%s", reason ? ": " : "", reason ? reason : "");
    } else if (strcmp(state, "timed_out") == 0 || drv_api_true(last, "timed_out")) {
        const json_t *spec = json_object_get(test, "test");
        double limit = drv_api_number(spec, "timeout_s", 0);
        if (limit > 0)
            snprintf(buf, len, "timed out after %g s", limit);
        else
            snprintf(buf, len, "timed out");
    } else if (strcmp(state, "passed") == 0 || strcmp(state, "failed") == 0) {
        if (sig > 0)
            snprintf(buf, len, "signal %lld", (long long)sig);
        else if (code >= 0)
            snprintf(buf, len, "exit %lld", (long long)code);
        else
            snprintf(buf, len, "%s%s%s", state, reason ? ": " : "", reason ? reason : "");
    } else {
        snprintf(buf, len, "%s%s%s", state, reason ? ": " : "", reason ? reason : "");
    }
}

const char *drv_text_last_lines(const char *s, size_t n)
{
    if (!s)
        return NULL;
    size_t len = strlen(s);
    if (n == 0)
        return s + len;
    if (len > 0 && s[len - 1] == '\n')
        len--; /* a final newline ends the last line; it does not start another */
    size_t seen = 0;
    for (size_t i = len; i > 0; i--) {
        if (s[i - 1] == '\n' && ++seen == n)
            return s + i;
    }
    return s;
}

bool drv_report_needs_detail(const json_t *test)
{
    const char *state = drv_api_string(test, "state");
    if (!state || json_is_array(json_object_get(test, "attempts")))
        return false; /* a listing's "attempts" is a count; the detail's is the array */
    return strcmp(state, "failed") == 0 || strcmp(state, "timed_out") == 0 ||
           drv_api_int(test, "attempts", 0) > 1;
}

drv_speculation_info drv_test_speculation(const json_t *test)
{
    drv_speculation_info s = {0};
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(test, "attempts"), i, a)
    {
        const char *state = drv_api_string(a, "state");
        if (json_object_get(a, "copy_of") || (state && strcmp(state, "superseded") == 0))
            s.speculated = true;
        if (state && strcmp(state, "finished") == 0) {
            s.winner = (uint32_t)drv_api_int(a, "attempt", 0);
            s.winner_worker = drv_api_string(a, "worker");
            s.copy_won = json_object_get(a, "copy_of") != NULL;
        }
    }
    if (!s.speculated)
        s = (drv_speculation_info){0};
    return s;
}
