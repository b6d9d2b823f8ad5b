/* trace_durations.c - test-duration files (pytest-split's .test_durations, knapsack's
 * knapsack_rspec_report.json) read into a workload.
 *
 * The file is one JSON object of test id -> seconds, plain or gzip. Each entry becomes a
 * test named by its key, in file order: arrival 0 (a batch: the makespan problem),
 * duration = the value, no cpu stated (as a live submission of one serial process), no other
 * requirement, priority 100, family 0, max_retries 2, id = its index in w->tests. The
 * fleet is not in the file.
 *
 * A value that is not a number, a negative or non-finite one, or an empty key is a bad
 * entry: skipped and counted, or in strict mode the whole file is refused. JSON does
 * not keep positions of values, so a bad entry's line is found by looking for its key
 * (in file order) in the text; a key written with escapes that cannot be found gives
 * the line where the object starts. Duplicate keys and malformed JSON refuse the file
 * whatever the mode, naming the line jansson reports. */
#include "core/json_words.h"
#include "sim/trace_lines.h"
#include "sim/workload.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DURATIONS_PRIORITY 100
#define DURATIONS_RETRIES  2

/* The text of the file and where in it the key search has got to. */
typedef struct durations_text {
    char *buf; /* owned: the whole file, NUL-terminated */
    size_t len;
    size_t pos;      /* search resumes here: keys come in file order */
    size_t pos_line; /* 1-based line of pos */
    size_t object_line;
} durations_text;

/* Reads every line of path (gzip or plain) into t->buf, lines joined by "\n".
 * Returns 0, or -1 with err (missing file, damaged gzip). */
static int durations_load(const char *path, durations_text *t, drv_error *err)
{
    drv_lines l;
    if (drv_lines_open(&l, path, err) < 0)
        return -1;
    size_t cap = 1 << 16;
    t->buf = drv_xmalloc(cap); /* owned by t, freed by the caller */
    t->len = 0;
    int rc;
    while ((rc = drv_lines_next(&l, err)) > 0) {
        while (t->len + l.len + 2 > cap) {
            cap *= 2;
            t->buf = drv_xrealloc(t->buf, cap);
        }
        memcpy(t->buf + t->len, l.buf, l.len);
        t->len += l.len;
        t->buf[t->len++] = '\n';
    }
    t->buf[t->len] = '\0';
    drv_lines_close(&l);
    return rc < 0 ? -1 : 0;
}

/* The 1-based line of byte offset `to`, counting on from byte `from` on line `line`. */
static size_t line_at(const char *buf, size_t from, size_t line, size_t to)
{
    for (size_t i = from; i < to; i++) {
        if (buf[i] == '\n')
            line++;
    }
    return line;
}

/* The line of key's literal ("key") at or after the search position, which moves past
 * it; when the literal is not found (escapes), the line where the object starts. */
static size_t key_line(durations_text *t, const char *key)
{
    size_t n = strlen(key);
    if (n + 3 <= 4096) {
        char lit[4096];
        lit[0] = '"';
        memcpy(lit + 1, key, n);
        lit[n + 1] = '"';
        lit[n + 2] = '\0';
        const char *hit = strstr(t->buf + t->pos, lit);
        if (hit) {
            size_t at = (size_t)(hit - t->buf);
            t->pos_line = line_at(t->buf, t->pos, t->pos_line, at);
            t->pos = at + n + 2;
            return t->pos_line;
        }
    }
    return t->object_line;
}

/* Checks one entry. Returns 0 with *seconds, or -1 with why "NAME:LINE: reason". */
static int durations_entry(durations_text *t, const char *name, const char *key,
                           const json_t *value, double *seconds, drv_error *why)
{
    size_t line = key_line(t, key);
    if (!*key)
        return drv_error_set(why, "%s:%zu: empty test id", name, line);
    if (!json_is_number(value))
        return drv_error_set(why, "%s:%zu: \"%.200s\": the value is %s, expected seconds", name,
                             line, key, drv_json_kind_a(value));
    double s = json_number_value(value);
    if (!isfinite(s) || s < 0)
        return drv_error_set(why, "%s:%zu: \"%.200s\": %g seconds is negative", name, line, key, s);
    *seconds = s;
    return 0;
}

/* One pass over the object: w NULL checks only; otherwise adds tests and counts bad
 * entries in opt. Returns 0, or -1 with err (a bad entry in strict mode). */
static int durations_pass(durations_text *t, const char *name, json_t *root, drv_workload *w,
                          drv_trace_options *opt, drv_error *err)
{
    const char *key;
    json_t *value;
    size_t added = 0;
    t->pos = 0;
    t->pos_line = 1;
    json_object_foreach(root, key, value)
    {
        if (opt->max_tests && added >= opt->max_tests)
            break;
        double seconds = 0;
        drv_error why;
        if (durations_entry(t, name, key, value, &seconds, &why) < 0) {
            if (drv_trace_bad_line(opt, w != NULL, &why, err) < 0)
                return -1;
            continue;
        }
        added++;
        if (!w)
            continue;
        drv_sim_test test;
        memset(&test, 0, sizeof test);
        drv_requirements_init(&test.req);
        test.id = w->n_tests;
        test.name = (char *)key; /* copied by drv_workload_add_test() */
        test.arrival_s = 0;
        test.duration_s = seconds;
        test.req.cpu_cores = 0; /* as a live submission that states none (bench/live.sh) */
        test.priority = DURATIONS_PRIORITY;
        test.family = 0;
        test.max_retries = DURATIONS_RETRIES;
        drv_workload_add_test(w, &test);
    }
    return 0;
}

int drv_trace_durations_read(const char *path, drv_workload *w, drv_trace_options *opt,
                             drv_error *err)
{
    drv_trace_options defaults;
    opt = drv_trace_options_begin(opt, &defaults);
    if (!w)
        return drv_error_set(err, "durations file %s: no workload to read into", path ? path : "");
    durations_text t;
    memset(&t, 0, sizeof t);
    if (durations_load(path, &t, err) < 0) {
        free(t.buf);
        return -1;
    }
    const char *name = drv_path_name(path);
    size_t start = strspn(t.buf, " \t\r\n");
    t.object_line = line_at(t.buf, 0, 1, start);
    if (t.buf[start] == '\0') {
        free(t.buf);
        return drv_error_set(err,
                             "%s:1: the file is empty, expected a JSON object of test id "
                             "-> seconds",
                             name);
    }
    json_error_t jerr;
    json_t *root = json_loadb(t.buf, t.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        free(t.buf);
        return drv_error_set(err, "%s:%d: %s", name, jerr.line > 0 ? jerr.line : 1, jerr.text);
    }
    int rc = 0;
    if (!json_is_object(root)) {
        rc = drv_error_set(err,
                           "%s:%zu: the top level is %s, expected an object of test id -> "
                           "seconds",
                           name, t.object_line, drv_json_kind_a(root));
    }
    if (rc == 0)
        rc = durations_pass(&t, name, root, NULL, opt, err);
    if (rc == 0) {
        size_t n_tests = w->n_tests;
        rc = durations_pass(&t, name, root, w, opt, err);
        if (rc < 0)
            drv_trace_rollback(w, n_tests, w->n_workers);
        else
            drv_trace_note_source(w, path);
    }
    json_decref(root);
    free(t.buf);
    return rc;
}
