/* api.c - the REST API under /api/v1 (docs/api.md): routing, authentication, handlers.
 * Every handler answers with JSON; a request that fails changes nothing (store writes
 * of a refused submission are undone with a mark). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/coord.h"
#include "sys/proc_status.h"

#define API_PREFIX      "/api/v1"
#define LIST_LIMIT      1000u
#define LIST_LIMIT_MAX  100000u
#define RUNS_LIMIT_MAX  1000u
#define DRV_VERSION_STR "0.3.0"

/* ---- responses ---- */

void drv_api_respond_text(drv_hsession *h, int status, const char *content_type, const char *text,
                          size_t len)
{
    bool newline = len == 0 || text[len - 1] != '\n';
    free(h->resp);
    /* LWS_PRE bytes of headroom before the text: server.c writes from resp + LWS_PRE. */
    h->resp = drv_xmalloc(LWS_PRE + len + 1);
    if (len)
        memcpy(h->resp + LWS_PRE, text, len);
    if (newline)
        h->resp[LWS_PRE + len] = '\n';
    h->resp_len = len + newline;
    h->resp_off = 0;
    h->status = status;
    h->content_type = content_type;
}

/* Takes body (a JSON value, stolen) as the response with status. */
static void respond(drv_hsession *h, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    drv_api_respond_text(h, status, NULL, text, text ? strlen(text) : 0);
    free(text);
}

/* respond() with reals to DRV_JSON_REAL_DIGITS digits (figures rounded when built). */
static void respond_read(drv_hsession *h, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(DRV_JSON_REAL_DIGITS));
    json_decref(body);
    drv_api_respond_text(h, status, NULL, text, text ? strlen(text) : 0);
    free(text);
}

void drv_api_error(drv_hsession *h, int status, const char *message, const char *field)
{
    json_t *o = json_object();
    json_object_set_new(o, "error", drv_json_text(message, strlen(message)));
    json_object_set_new(o, "field", field ? json_string(field) : json_null());
    respond(h, status, o);
}

/* An error whose message starts with a field path ("tests[3].priority: ..."). */
static void error_with_path(drv_hsession *h, int status, const char *message)
{
    char field[DRV_JSON_PATH_MAX] = "";
    const char *colon = strstr(message, ": ");
    size_t n = colon ? (size_t)(colon - message) : 0;
    if (n > 0 && n < sizeof field && !memchr(message, ' ', n)) {
        memcpy(field, message, n);
        field[n] = '\0';
    }
    drv_api_error(h, status, message, field[0] ? field : NULL);
}

static json_t *num_or_null(bool has, double v)
{
    return has ? json_real(v) : json_null();
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* ---- request helpers ---- */

/* The value of query parameter name (NULL when absent), copied into buf. */
static const char *query_get(const drv_hsession *h, const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);
    for (const char *p = h->query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        if (plen > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            size_t v = plen - n - 1;
            if (v >= len)
                v = len - 1;
            memcpy(buf, p + n + 1, v);
            buf[v] = '\0';
            return buf;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

const char *drv_api_query(const drv_hsession *h, const char *name, char *buf, size_t len)
{
    return query_get(h, name, buf, len);
}

const char *drv_api_version(void)
{
    return DRV_VERSION_STR;
}

int drv_api_query_uint(drv_hsession *h, const char *name, uint64_t min, uint64_t max, uint64_t *out)
{
    char buf[64];
    const char *v = query_get(h, name, buf, sizeof buf);
    if (!v)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || !end || *end || end == v || v[0] == '-' || x < min || x > max) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: must be an integer %llu..%llu, got \"%.40s\"", name,
                 (unsigned long long)min, (unsigned long long)max, v);
        drv_api_error(h, 400, msg, name);
        return -1;
    }
    *out = x;
    return 1;
}

static int query_uint(drv_hsession *h, const char *name, uint64_t max, uint64_t *out)
{
    return drv_api_query_uint(h, name, 0, max, out);
}

/* Parses "123" (the whole segment) into *id. */
static bool parse_id(const char *s, size_t len, uint64_t *id)
{
    if (len == 0 || len > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *id = v;
    return true;
}

/* Whether the Authorization header carries the bearer token want. */
static bool token_ok(const char *auth, const char *want)
{
    const char *prefix = "Bearer ";
    return strncmp(auth, prefix, strlen(prefix)) == 0 &&
           drv_coord_token_equal(auth + strlen(prefix), want);
}

/* ---- tests ---- */

static json_t *row_json(const drv_store_task_row *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer((json_int_t)r->id));
    json_object_set_new(o, "run_id", r->run_id ? json_integer(r->run_id) : json_null());
    json_object_set_new(o, "name", drv_json_text(r->name, r->name ? strlen(r->name) : 0));
    json_object_set_new(o, "state", json_string(drv_task_state_name(r->state)));
    json_object_set_new(o, "attempts", json_integer(r->attempts));
    json_object_set_new(o, "priority", json_integer(r->priority));
    json_object_set_new(o, "worker", str_or_null(r->worker));
    json_object_set_new(o, "exit_code",
                        r->has_exit && !r->signal ? json_integer(r->exit_code) : json_null());
    json_object_set_new(o, "signal",
                        r->has_exit && r->signal ? json_integer(r->signal) : json_null());
    json_object_set_new(o, "duration_s", num_or_null(r->has_exit, r->duration_s));
    json_object_set_new(o, "reason", str_or_null(r->reason));
    json_object_set_new(o, "submitted_at", json_real(r->submitted_at));
    json_object_set_new(o, "finished_at", num_or_null(r->finished_at > 0, r->finished_at));
    if (r->batch_of) /* py3: a member test's result, and the batch that ran it */
        json_object_set_new(o, "batch", json_integer((json_int_t)r->batch_of));
    if (r->members) /* py3: a batch, and how many member tests it runs */
        json_object_set_new(o, "members", json_integer(r->members));
    return o;
}

static int list_row(void *ctx, const drv_store_task_row *row, drv_error *err)
{
    (void)err;
    json_array_append_new(ctx, row_json(row));
    return 0;
}

/* Writes s as one CSV field (RFC 4180: quoted when it holds a comma, a quote or a line
 * break; NULL: empty). */
static void csv_field(FILE *out, const char *s)
{
    if (!s)
        return;
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static int csv_row(void *ctx, const drv_store_task_row *r, drv_error *err)
{
    (void)err;
    FILE *out = ctx;
    fprintf(out, "%llu,", (unsigned long long)r->id);
    if (r->run_id)
        fprintf(out, "%lld", (long long)r->run_id);
    fputc(',', out);
    csv_field(out, r->name);
    fprintf(out, ",%s,%u,%d,", drv_task_state_name(r->state), r->attempts, r->priority);
    csv_field(out, r->worker);
    fputc(',', out);
    if (r->has_exit && !r->signal)
        fprintf(out, "%d", r->exit_code);
    fputc(',', out);
    if (r->has_exit && r->signal)
        fprintf(out, "%d", r->signal);
    fputc(',', out);
    if (r->has_exit)
        fprintf(out, "%.6f", r->duration_s);
    fputc(',', out);
    csv_field(out, r->reason);
    fprintf(out, ",%.6f,", r->submitted_at);
    if (r->finished_at > 0)
        fprintf(out, "%.6f", r->finished_at);
    fputc('\n', out);
    return 0;
}

/* GET /api/v1/tests?format=csv: the listing as CSV (docs/api.md). */
static void tests_csv(drv_coordinator *c, drv_hsession *h, const drv_store_filter *f)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        drv_api_error(h, 503, "cannot build the CSV", NULL);
        return;
    }
    fputs("id,run_id,name,state,attempts,priority,worker,exit_code,signal,duration_s,reason,"
          "submitted_at,finished_at\n",
          out);
    drv_error err;
    int64_t n = drv_store_task_list(c->store, f, csv_row, out, &err);
    fclose(out);
    if (n < 0)
        drv_api_error(h, 503, err.msg, NULL);
    else
        drv_api_respond_text(h, 200, "text/csv; charset=utf-8", text, len);
    free(text);
}

static void tests_list(drv_coordinator *c, drv_hsession *h)
{
    drv_store_filter f = {.state = -1, .limit = LIST_LIMIT};
    char sbuf[32], nbuf[512];
    const char *state = query_get(h, "state", sbuf, sizeof sbuf);
    if (state) {
        f.state = drv_task_state_parse(state);
        if (f.state < 0) {
            char msg[128];
            snprintf(msg, sizeof msg,
                     "state: unknown state \"%s\" (known: queued, assigned, running, passed,"
                     " failed, timed_out, cancelled, unschedulable, skipped)",
                     state);
            drv_api_error(h, 400, msg, "state");
            return;
        }
    }
    uint64_t v;
    int r;
    if ((r = query_uint(h, "run", INT64_MAX, &v)) < 0)
        return;
    if (r)
        f.run_id = (int64_t)v;
    if ((r = query_uint(h, "limit", LIST_LIMIT_MAX, &v)) < 0)
        return;
    if (r)
        f.limit = v ? (uint32_t)v : LIST_LIMIT;
    if ((r = query_uint(h, "offset", UINT32_MAX, &v)) < 0)
        return;
    if (r)
        f.offset = (uint32_t)v;
    f.name_prefix = query_get(h, "name", nbuf, sizeof nbuf);
    char wbuf[DRV_WORKER_NAME_MAX + 1], obuf[16]; /* dash: one worker's tests, newest first */
    f.worker = query_get(h, "worker", wbuf, sizeof wbuf);
    const char *order = query_get(h, "order", obuf, sizeof obuf);
    if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
        drv_api_error(h, 400, "order: must be asc or desc", "order");
        return;
    }
    f.newest_first = order && strcmp(order, "desc") == 0;
    char fbuf[16];
    const char *format = query_get(h, "format", fbuf, sizeof fbuf);
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
        drv_api_error(h, 400, "format: must be csv or json", "format");
        return;
    }
    if (format && strcmp(format, "csv") == 0) {
        tests_csv(c, h, &f);
        return;
    }
    json_t *arr = json_array();
    drv_error err;
    if (drv_store_task_list(c->store, &f, list_row, arr, &err) < 0) {
        json_decref(arr);
        drv_api_error(h, 503, err.msg, NULL);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "count", json_integer((json_int_t)json_array_size(arr)));
    json_object_set_new(o, "tests", arr);
    respond(h, 200, o);
}

static void tests_submit(drv_coordinator *c, drv_hsession *h)
{
    if (!h->body || h->body_len == 0) {
        drv_api_error(h, 400,
                      "empty body: expected a test object, a JSON array of tests, or JSON lines",
                      NULL);
        return;
    }
    drv_task *tasks = NULL;
    size_t n = 0;
    drv_error err;
    if (drv_tasks_parse(h->body, h->body_len, c->tags, &tasks, &n, &err) < 0) {
        error_with_path(h, 400, err.msg);
        return;
    }
    char name[256];
    const char *run_name = query_get(h, "run", name, sizeof name);
    /* py3 (issue 13): run_id=N adds the tests to run N (a client's later rounds: the
     * tests a crashed batch did not start, reruns), so one invocation is one run. */
    uint64_t into = 0;
    int has_into = query_uint(h, "run_id", INT64_MAX, &into);
    if (has_into < 0) {
        drv_tasks_free(tasks, n);
        return;
    }
    if (has_into) {
        drv_store_run_summary sum;
        int found = drv_store_run_summary_get(c->store, (int64_t)into, &sum, &err);
        drv_store_run_summary_clear(&sum);
        if (found <= 0) {
            drv_tasks_free(tasks, n);
            char msg[96];
            snprintf(msg, sizeof msg, "run_id: no run %llu", (unsigned long long)into);
            if (found < 0)
                drv_api_error(h, 503, err.msg, NULL);
            else
                drv_api_error(h, 404, msg, "run_id");
            return;
        }
    }
    double now = drv_coord_now();
    int64_t run_id = -1;
    if (drv_store_mark(c->store, &err) < 0)
        goto store_failed;
    run_id = has_into ? (int64_t)into : drv_store_run_create(c->store, run_name, now, &err);
    for (size_t i = 0; run_id > 0 && i < n; i++) {
        tasks[i].id = 0;
        tasks[i].state = tasks[i].disabled ? DRV_TASK_SKIPPED : DRV_TASK_QUEUED;
        tasks[i].attempts = 0;
        int64_t id = drv_store_task_insert(c->store, run_id, &tasks[i], c->tags, now, &err);
        if (id < 0) {
            drv_error_prefix(&err, "tests[%zu]", i);
            run_id = -1;
            break;
        }
        tasks[i].id = (uint64_t)id;
    }
    if (run_id < 0) {
        drv_error undo;
        if (drv_store_mark_undo(c->store, &undo) < 0)
            drv_coord_fatal(c, &undo);
        drv_tasks_free(tasks, n);
        error_with_path(h, strstr(err.msg, "UTF-8") ? 400 : 503, err.msg);
        return;
    }
    if (drv_store_mark_release(c->store, &err) < 0)
        drv_coord_fatal(c, &err);
    /* Handed to the store's writer now rather than at the end of the turn: it inserts
     * while this turn queues and places the tests (the answer still waits for the end of
     * the turn, and for this commit). */
    if (drv_store_commit(c->store, &err) < 0)
        drv_coord_fatal(c, &err);

    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ids, json_integer((json_int_t)tasks[i].id));
    drv_after_submit(c, tasks, n, run_id, now); /* moves the tasks to the coordinator */
    free(tasks);
    c->place_needed = true;
    json_t *o = json_object();
    json_object_set_new(o, "run_id", json_integer(run_id));
    json_object_set_new(o, "count", json_integer((json_int_t)n));
    json_object_set_new(o, "ids", ids);
    respond(h, 201, o);
    h->waiting_commit = true;
    return;

store_failed:
    drv_tasks_free(tasks, n);
    drv_api_error(h, 503, err.msg, NULL);
}

static json_t *attempt_json(const drv_store_attempt *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "attempt", json_integer(a->attempt));
    json_object_set_new(o, "worker", str_or_null(a->worker));
    /* A speculative copy that lost is "superseded" (stored abandoned, with the winner). */
    json_object_set_new(
        o, "state",
        json_string(a->superseded_by ? "superseded" : drv_store_attempt_state_name(a->state)));
    if (a->superseded_by)
        json_object_set_new(o, "superseded_by", json_integer(a->superseded_by));
    if (a->copy_of)
        json_object_set_new(o, "copy_of", json_integer(a->copy_of));
    json_object_set_new(o, "assigned_at", json_real(a->assigned_at));
    json_object_set_new(o, "started_at", num_or_null(a->started_at > 0, a->started_at));
    json_object_set_new(o, "finished_at", num_or_null(a->finished_at > 0, a->finished_at));
    bool r = a->has_result;
    json_object_set_new(o, "exit_code", r && !a->signal ? json_integer(a->exit_code) : json_null());
    json_object_set_new(o, "signal", r && a->signal ? json_integer(a->signal) : json_null());
    json_object_set_new(o, "timed_out", r ? json_boolean(a->timed_out) : json_null());
    json_object_set_new(o, "infra_failure", r ? json_boolean(a->infra_failure) : json_null());
    json_object_set_new(o, "duration_s", num_or_null(r, a->duration_s));
    json_object_set_new(o, "peak_memory_kb",
                        r ? json_integer((json_int_t)a->peak_memory_kb) : json_null());
    json_object_set_new(o, "output_tail",
                        a->output_tail ? drv_json_text(a->output_tail, strlen(a->output_tail))
                                       : json_null());
    json_object_set_new(o, "reason", str_or_null(a->reason));
    json_object_set_new(o, "stderr_tail",
                        a->stderr_tail ? drv_json_text(a->stderr_tail, strlen(a->stderr_tail))
                                       : json_null());
    return o;
}

/* Writes the explanation of live test t into buf. */
static void explain(drv_coordinator *c, uint64_t id, char *buf, size_t len)
{
    drv_tref t;
    drv_ctask *ct = drv_coord_task_by_id(c, id, &t);
    if (ct && drv_balancer_explain(c->bal, t, drv_coord_now(), buf, len) == 0) {
        /* exec (issue 11): which budget its re-runs used, and what is left. */
        size_t off = strlen(buf);
        const drv_task *k = &ct->task;
        if (off < len)
            snprintf(buf + off, len - off,
                     " Used %u of max_retries %u (lost worker, runner failure) and %u of"
                     " reruns %u (its own failures).",
                     k->retries_used, k->max_retries, k->reruns_used, drv_task_reruns(k));
        return;
    }
    for (size_t i = 0; i < c->n_orphans; i++)
        if (!c->orphans[i].done && c->orphans[i].task.id == id) {
            snprintf(buf, len,
                     "it was running on %s when the coordinator restarted; waiting for that"
                     " worker to come back",
                     c->orphans[i].worker);
            return;
        }
    snprintf(buf, len, "it is not waiting for anything");
}

/* suite2 (issue 13): "flaky" (it passed after failing by itself: a rerun passed) and
 * "flakiness", what the tests of its name did over their last FLAKY_WINDOW final runs. */
#define FLAKY_WINDOW 200
static void test_flakiness(drv_coordinator *c, const drv_store_task_detail *d, json_t *o)
{
    bool flaky = false;
    for (size_t i = 0; d->task.state == DRV_TASK_PASSED && i < d->n_attempts; i++) {
        const drv_store_attempt *a = &d->attempts[i];
        flaky |= a->has_result && !a->infra_failure &&
                 (a->exit_code != 0 || a->signal != 0 || a->timed_out);
    }
    json_object_set_new(o, "flaky", json_boolean(flaky));
    drv_store_flakiness_t f;
    drv_error err;
    if (!d->task.name || drv_store_flakiness(c->store, d->task.name, FLAKY_WINDOW, &f, &err) < 0)
        return;
    json_t *k = json_object();
    json_object_set_new(k, "runs", json_integer((json_int_t)f.runs));
    json_object_set_new(k, "flaky", json_integer((json_int_t)f.flaky));
    json_object_set_new(k, "rate", json_real(f.runs ? (double)f.flaky / (double)f.runs : 0));
    json_object_set_new(o, "flakiness", k);
}

static void test_get(drv_coordinator *c, drv_hsession *h, uint64_t id, bool only_explain)
{
    drv_store_task_detail d;
    memset(&d, 0, sizeof d);
    drv_error err;
    int found = drv_store_task_get(c->store, id, c->tags, &d, &err);
    if (found < 0) {
        drv_api_error(h, 503, err.msg, NULL);
        return;
    }
    if (found == 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "no test %llu", (unsigned long long)id);
        drv_api_error(h, 404, msg, NULL);
        return;
    }
    char why[1024] = "";
    bool waiting = !drv_task_state_final(d.task.state);
    if (waiting)
        explain(c, id, why, sizeof why);
    json_t *o;
    if (only_explain) {
        o = json_object();
        json_object_set_new(o, "id", json_integer((json_int_t)id));
        json_object_set_new(o, "state", json_string(drv_task_state_name(d.task.state)));
        if (!waiting)
            snprintf(why, sizeof why, "it is %s: %s", drv_task_state_name(d.task.state),
                     d.reason ? d.reason : "final");
        json_object_set_new(o, "explain", json_string(why));
    } else {
        drv_store_task_row row = {.id = id,
                                  .run_id = d.run_id,
                                  .name = d.task.name,
                                  .state = d.task.state,
                                  .attempts = d.task.attempts,
                                  .priority = d.task.priority,
                                  .worker = d.worker,
                                  .reason = d.reason,
                                  .submitted_at = d.submitted_at,
                                  .finished_at = d.finished_at,
                                  .has_exit = d.has_exit,
                                  .exit_code = d.exit_code,
                                  .signal = d.signal,
                                  .duration_s = d.duration_s};
        o = row_json(&row);
        json_object_set_new(o, "test", drv_task_to_json(&d.task, c->tags));
        json_t *atts = json_array();
        for (size_t i = 0; i < d.n_attempts; i++)
            json_array_append_new(atts, attempt_json(&d.attempts[i]));
        json_object_set_new(o, "attempt_count", json_integer(d.task.attempts));
        json_object_set_new(o, "attempts", atts);
        test_flakiness(c, &d, o);
        json_object_set_new(o, "explain", waiting ? json_string(why) : json_null());
        drv_tref t;
        const drv_ctask *ct = waiting ? drv_coord_task_by_id(c, id, &t) : NULL;
        json_object_set_new(o, "live_output",
                            ct && ct->live_out ? drv_json_text(ct->live_out, ct->live_len)
                                               : json_null());
    }
    drv_store_task_detail_clear(&d);
    respond(h, 200, o);
}

/* Cancels one test. Returns 1 when cancelled now, 0 when already final (or unknown:
 * *known false), -1 on a store failure (err filled). */
static int cancel_one(drv_coordinator *c, uint64_t id, bool *known, drv_error *err)
{
    drv_tref t;
    *known = true;
    double now = drv_coord_now();
    if (drv_coord_task_by_id(c, id, &t)) {
        drv_decision d;
        if (drv_balancer_cancel(c->bal, t, now, &d) == 0) {
            drv_dispatch_decision(c, &d, NULL);
            return 1;
        }
    }
    for (size_t i = 0; i < c->n_orphans; i++) {
        drv_orphan *o = &c->orphans[i];
        if (o->done || o->task.id != id)
            continue;
        o->done = true;
        c->orphans_left--;
        if (drv_store_attempt_abandon(c->store, id, o->task.attempts, err) < 0)
            return -1;
        drv_store_task_update u = {.state = DRV_TASK_CANCELLED,
                                   .attempts = o->task.attempts,
                                   .reason = "cancelled",
                                   .finished_at = now};
        return drv_store_task_update_state(c->store, id, &u, err) < 0 ? -1 : 1;
    }
    drv_store_task_detail d;
    memset(&d, 0, sizeof d);
    int found = drv_store_task_get(c->store, id, c->tags, &d, err);
    drv_store_task_detail_clear(&d);
    if (found < 0)
        return -1;
    *known = found == 1;
    return 0;
}

static void test_cancel(drv_coordinator *c, drv_hsession *h, uint64_t id)
{
    bool known;
    drv_error err;
    int r = cancel_one(c, id, &known, &err);
    if (r < 0) {
        drv_coord_fatal(c, &err);
    }
    char msg[96];
    if (r == 0) {
        snprintf(msg, sizeof msg, known ? "test %llu is already final" : "no test %llu",
                 (unsigned long long)id);
        drv_api_error(h, known ? 409 : 404, msg, NULL);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer((json_int_t)id));
    json_object_set_new(o, "state", json_string("cancelled"));
    respond(h, 200, o);
    h->waiting_commit = true;
}

/* ---- runs ---- */

static json_t *counts_json(const drv_store_counts *k)
{
    json_t *o = json_object();
    for (int s = 0; s < DRV_TASK_STATE_COUNT; s++)
        json_object_set_new(o, drv_task_state_name((drv_task_state)s),
                            json_integer((json_int_t)k->by_state[s]));
    return o;
}

/* The longest GET /api/v1/runs/ID?wait=S may hold its answer back. */
#define RUN_WAIT_MAX_S 60

static bool run_done(const drv_store_run_summary *r)
{
    uint64_t final = 0;
    for (int s = DRV_TASK_PASSED; s < DRV_TASK_STATE_COUNT; s++)
        final += r->counts.by_state[s];
    return final >= r->submitted;
}

static json_t *run_json(const drv_store_run_summary *r)
{
    uint64_t final = 0;
    for (int s = DRV_TASK_PASSED; s < DRV_TASK_STATE_COUNT; s++)
        final += r->counts.by_state[s];
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(r->id));
    json_object_set_new(o, "name", str_or_null(r->name));
    json_object_set_new(o, "created_at", json_real(r->created_at));
    json_object_set_new(o, "submitted", json_integer((json_int_t)r->submitted));
    json_object_set_new(o, "counts", counts_json(&r->counts));
    json_object_set_new(o, "done", json_boolean(final >= r->submitted));
    json_object_set_new(o, "progress",
                        json_real(r->submitted ? (double) final / (double)r->submitted : 1.0));
    return o;
}

/* suite2 (issue 13): the ETA of run id from the balancer's predictions of its tests
 * not final: left_s is the predicted seconds of work left (a held test's prediction less
 * the time since it was placed), eta_s that work spread over the connected workers'
 * slots, and never less than the longest test left. One pass over the live tests. */
static void run_prediction(const drv_coordinator *c, int64_t id, double now, double *left_s,
                           double *eta_s)
{
    double work = 0, longest = 0;
    for (size_t t = 0; t < c->cap_tasks; t++) {
        const drv_ctask *ct = &c->tasks[t];
        if (!ct->live || ct->run_id != id ||
            drv_task_state_final(drv_balancer_task_state(c->bal, (drv_tref)t)))
            continue;
        double p = drv_balancer_predicted_run(c->bal, (drv_tref)t);
        drv_task_state st = drv_balancer_task_state(c->bal, (drv_tref)t);
        if ((st == DRV_TASK_ASSIGNED || st == DRV_TASK_RUNNING) && ct->placed_at > 0)
            p -= now - ct->placed_at;
        p = p > 0 ? p : 0;
        work += p;
        longest = p > longest ? p : longest;
    }
    uint64_t slots = 0;
    uint32_t n = drv_balancer_worker_refs(c->bal);
    for (drv_wref w = 0; w < n && w < c->cap_workers; w++)
        if (c->workers[w].known && c->workers[w].session && !c->workers[w].lost)
            slots += drv_balancer_worker(c->bal, w)->slots;
    *left_s = work;
    *eta_s = slots ? work / (double)slots : work;
    *eta_s = *eta_s > longest ? *eta_s : longest;
}

static void run_get(drv_coordinator *c, drv_hsession *h, uint64_t id)
{
    uint64_t wait_s = 0; /* ct3 (issue 13): answer when the run is done, or after wait_s */
    if (drv_api_query_uint(h, "wait", 0, RUN_WAIT_MAX_S, &wait_s) < 0)
        return;
    drv_store_run_summary r;
    drv_error err;
    int found = drv_store_run_summary_get(c->store, (int64_t)id, &r, &err);
    if (found <= 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "no run %llu", (unsigned long long)id);
        drv_api_error(h, found < 0 ? 503 : 404, found < 0 ? err.msg : msg, NULL);
        return;
    }
    if (wait_s && !run_done(&r)) {
        double now = drv_coord_now();
        if (h->wait_until == 0)
            h->wait_until = now + (double)wait_s;
        if (now < h->wait_until) {
            h->parked = true;
            drv_store_run_summary_clear(&r);
            return;
        }
    }
    json_t *o = run_json(&r);
    drv_store_run_summary_clear(&r);
    double left_s, eta_s;
    run_prediction(c, (int64_t)id, drv_coord_now(), &left_s, &eta_s);
    json_object_set_new(o, "predicted_left_s", json_real(left_s));
    json_object_set_new(o, "eta_s", json_real(eta_s));
    respond(h, 200, o);
    /* A run's counts are kept in memory as the writes are made: they are told once those
     * writes are durable (a run shown done stays done after a crash). */
    h->waiting_commit = true;
}

static void runs_list(drv_coordinator *c, drv_hsession *h)
{
    uint64_t limit = 20;
    if (query_uint(h, "limit", RUNS_LIMIT_MAX, &limit) < 0)
        return;
    if (limit == 0)
        limit = 20;
    drv_error err;
    json_t *o = drv_api_runs_json(c, (uint32_t)limit, &err);
    if (!o) {
        drv_api_error(h, 503, err.msg, NULL);
        return;
    }
    respond(h, 200, o);
    h->waiting_commit = true; /* as run_get */
}

json_t *drv_api_runs_json(drv_coordinator *c, uint32_t limit, drv_error *err)
{
    int64_t ids[RUNS_LIMIT_MAX];
    if (limit > RUNS_LIMIT_MAX)
        limit = RUNS_LIMIT_MAX;
    int64_t n = drv_store_run_ids(c->store, limit, ids, err);
    if (n < 0)
        return NULL;
    json_t *arr = json_array();
    for (int64_t i = 0; i < n; i++) {
        drv_store_run_summary r;
        if (drv_store_run_summary_get(c->store, ids[i], &r, err) == 1) {
            json_array_append_new(arr, run_json(&r));
            drv_store_run_summary_clear(&r);
        }
    }
    json_t *o = json_object();
    json_object_set_new(o, "runs", arr);
    return o;
}

typedef struct id_list {
    uint64_t *ids;
    size_t n, cap;
} id_list;

static int collect_id(void *ctx, const drv_store_task_row *row, drv_error *err)
{
    (void)err;
    id_list *l = ctx;
    if (drv_task_state_final(row->state))
        return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->ids = drv_xrealloc(l->ids, l->cap * sizeof *l->ids);
    }
    l->ids[l->n++] = row->id;
    return 0;
}

static void run_cancel(drv_coordinator *c, drv_hsession *h, uint64_t id)
{
    drv_store_run_summary r;
    drv_error err;
    int found = drv_store_run_summary_get(c->store, (int64_t)id, &r, &err);
    drv_store_run_summary_clear(&r);
    if (found <= 0) {
        char msg[64];
        snprintf(msg, sizeof msg, "no run %llu", (unsigned long long)id);
        drv_api_error(h, found < 0 ? 503 : 404, found < 0 ? err.msg : msg, NULL);
        return;
    }
    id_list l = {0};
    drv_store_filter f = {.state = -1, .run_id = (int64_t)id};
    if (drv_store_task_list(c->store, &f, collect_id, &l, &err) < 0) {
        free(l.ids);
        drv_api_error(h, 503, err.msg, NULL);
        return;
    }
    uint64_t cancelled = 0;
    for (size_t i = 0; i < l.n; i++) {
        bool known;
        int k = cancel_one(c, l.ids[i], &known, &err);
        if (k < 0)
            drv_coord_fatal(c, &err);
        cancelled += (uint64_t)k;
    }
    free(l.ids);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer((json_int_t)id));
    json_object_set_new(o, "cancelled", json_integer((json_int_t)cancelled));
    respond(h, 200, o);
    h->waiting_commit = true;
}

/* ---- workers ---- */

static json_t *caps_json(drv_coordinator *c, const drv_capabilities *k)
{
    json_t *o = drv_capabilities_json(k, c->tags, "capabilities", NULL);
    return o ? o : json_object(); /* a tag id outside the table: never, the table grows only */
}

/* The thermal state's last transition and what it admits, as drv_thermal_describe
 * says it: "cooling for 12.0 s (memory pressure 0.35 >= 0.20 for 10 s): admits 4 of 8
 * slots". */
static json_t *thermal_reason_json(const drv_coordinator *c, const drv_worker *k)
{
    char why[256];
    drv_thermal_describe(&k->thermal, &c->opt.balancer.settings.thermal, k->slots, drv_coord_now(),
                         why, sizeof why);
    return json_string(why);
}

/* What the worker last measured (docs/protocol.md, heartbeat): null when unknown. */
static json_t *pressure_json(const drv_thermal_signal *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "cpu", m->cpu_pressure >= 0 ? json_real(m->cpu_pressure) : json_null());
    json_object_set_new(o, "memory",
                        m->memory_pressure >= 0 ? json_real(m->memory_pressure) : json_null());
    json_object_set_new(o, "freq_ratio",
                        m->freq_ratio >= 0 ? json_real(m->freq_ratio) : json_null());
    json_object_set_new(o, "temperature_c",
                        m->temperature_c >= 0 ? json_real(m->temperature_c) : json_null());
    json_object_set_new(o, "throttled", json_boolean(m->throttled));
    return o;
}

static json_t *worker_json(drv_coordinator *c, drv_wref w)
{
    const drv_worker *k = drv_balancer_worker(c->bal, w);
    const drv_cworker *cw = &c->workers[w];
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(k->name));
    json_object_set_new(o, "connected", json_boolean(cw->session != NULL));
    const char *health = cw->left ? "left" : cw->lost ? "lost" : drv_health_name(k->health);
    json_object_set_new(o, "health", json_string(health));
    json_object_set_new(o, "health_reason",
                        cw->lost ? json_string(cw->gone_reason)
                        : k->health_reason[0] && k->health != DRV_HEALTH_OK
                            ? json_string(k->health_reason)
                            : json_null());
    json_object_set_new(o, "thermal", json_string(drv_thermal_state_name(k->thermal.state)));
    json_object_set_new(o, "thermal_reason", thermal_reason_json(c, k));
    json_object_set_new(o, "pressure", pressure_json(&k->thermal.last));
    json_object_set_new(o, "slots", json_integer(k->slots));
    json_object_set_new(o, "assigned", json_integer(k->assigned));
    json_object_set_new(o, "running", json_integer(k->running));
    json_object_set_new(o, "load", json_real(cw->load));
    json_object_set_new(o, "finished", json_integer(k->history.finished));
    json_object_set_new(o, "infra_failures", json_integer(k->history.infra_failures));
    json_object_set_new(o, "capabilities", caps_json(c, &k->caps));
    json_object_set_new(o, "last_seen", json_real(cw->last_seen));
    json_object_set_new(o, "score", drv_sampler_score_json(c, w));
    return o;
}

static int64_t find_worker(drv_coordinator *c, drv_hsession *h, const char *name)
{
    int64_t w = drv_balancer_worker_find(c->bal, name);
    if (w < 0 || (size_t)w >= c->cap_workers || !c->workers[w].known) {
        char msg[160];
        snprintf(msg, sizeof msg, "no worker \"%.100s\"", name);
        drv_api_error(h, 404, msg, NULL);
        return -1;
    }
    return w;
}

json_t *drv_api_workers_json(drv_coordinator *c)
{
    json_t *arr = json_array();
    uint32_t n = drv_balancer_worker_refs(c->bal);
    for (drv_wref w = 0; w < n && w < c->cap_workers; w++)
        if (c->workers[w].known)
            json_array_append_new(arr, worker_json(c, w));
    json_t *o = json_object();
    json_object_set_new(o, "workers", arr);
    return o;
}

json_t *drv_api_worker_json(drv_coordinator *c, drv_wref w)
{
    return worker_json(c, w);
}

static void workers_list(drv_coordinator *c, drv_hsession *h)
{
    if (drv_dashboard_workers_api(c, h)) /* a page: sort, dir, filter, offset, limit */
        return;
    respond(h, 200, drv_api_workers_json(c));
}

static void worker_action(drv_coordinator *c, drv_hsession *h, const char *name, const char *action)
{
    int64_t w = find_worker(c, h, name);
    if (w < 0)
        return;
    double now = drv_coord_now();
    drv_health health;
    const char *reason;
    if (strcmp(action, "clear") == 0) {
        health = DRV_HEALTH_OK;
        reason = NULL;
    } else {
        health = DRV_HEALTH_DRAINING;
        reason = DRV_HEALTH_OPERATOR_DRAIN;
    }
    drv_balancer_worker_set_health(c->bal, (drv_wref)w, health, reason, now);
    drv_error err;
    if (drv_store_worker_health(c->store, name, health, reason, now, &err) < 0 ||
        drv_store_event_append(c->store, now,
                               health == DRV_HEALTH_OK ? "worker_cleared" : "worker_drained", 0,
                               name, reason, &err) < 0)
        drv_coord_fatal(c, &err);
    drv_coord_log(c, "worker %s: %s by an operator", name,
                  health == DRV_HEALTH_OK ? "cleared" : "drained");
    c->place_needed = true;
    respond(h, 200, worker_json(c, (drv_wref)w));
    h->waiting_commit = true;
}

/* ---- status ---- */

void drv_api_memory_kb(long long *rss_kb, long long *hwm_kb)
{
    drv_proc_memory_kb(0, rss_kb, hwm_kb);
}

/* The coordinator's resident memory now and at its peak, in KiB; null members where it
 * cannot be read. */
static json_t *memory_json(void)
{
    long long rss, hwm;
    drv_api_memory_kb(&rss, &hwm);
    json_t *o = json_object();
    json_object_set_new(o, "rss_kb", rss >= 0 ? json_integer(rss) : json_null());
    json_object_set_new(o, "hwm_kb", hwm >= 0 ? json_integer(hwm) : json_null());
    return o;
}

/* POST /api/v1/predictions (py3, issue 13; docs/api.md): what the coordinator learned
 * of the named tests (members of batches included), for a client that packs tests into
 * batches: each one's predicted run at reference speed (null when never seen), and the
 * slots of the connected workers with each one's speed. */
static void predictions(drv_coordinator *c, drv_hsession *h)
{
    json_error_t je;
    json_t *body = h->body ? json_loadb(h->body, h->body_len, 0, &je) : NULL;
    json_t *names = json_object_get(body, "names");
    if (!json_is_array(names)) {
        json_decref(body);
        drv_api_error(h, 400, "expected {\"names\": [test names]}", "names");
        return;
    }
    json_t *pred = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v)
    {
        const char *name = json_string_value(v);
        drv_prediction p = {0};
        if (name)
            p = drv_predictor_predict_reference(c->pred, drv_test_key(name), 0, 0);
        json_array_append_new(pred, name && p.source == DRV_PRED_TEST ? json_real(p.mean_s)
                                                                      : json_null());
    }
    json_decref(body);
    json_t *workers = json_array();
    uint32_t slots = 0, n = drv_balancer_worker_refs(c->bal);
    for (drv_wref w = 0; w < n && w < c->cap_workers; w++) {
        const drv_worker *k = drv_balancer_worker(c->bal, w);
        if (!c->workers[w].known || !c->workers[w].session || k->health != DRV_HEALTH_OK)
            continue;
        slots += k->slots;
        json_array_append_new(workers,
                              json_pack("{s:s,s:i,s:f}", "name", k->name, "slots", (int)k->slots,
                                        "speed", drv_predictor_speed(c->pred, 0, k->wclass)));
    }
    json_t *o = json_object();
    json_object_set_new(o, "predicted_s", pred);
    json_object_set_new(o, "slots", json_integer(slots));
    json_object_set_new(o, "workers", workers);
    respond(h, 200, o);
}

static void status(drv_coordinator *c, drv_hsession *h)
{
    drv_error err;
    json_t *o = drv_api_status_json(c, &err);
    if (!o) {
        drv_api_error(h, 503, err.msg, NULL);
        return;
    }
    respond(h, 200, o);
}

json_t *drv_api_status_json(drv_coordinator *c, drv_error *err)
{
    drv_store_counts k;
    if (drv_store_count(c->store, &k, err) < 0)
        return NULL;
    uint32_t connected = 0, lost = 0, left = 0, quarantined = 0;
    uint32_t n = drv_balancer_worker_refs(c->bal);
    for (drv_wref w = 0; w < n && w < c->cap_workers; w++) {
        if (!c->workers[w].known)
            continue;
        connected += c->workers[w].session != NULL;
        lost += c->workers[w].lost && !c->workers[w].left;
        left += c->workers[w].left;
        quarantined += drv_balancer_worker(c->bal, w)->health == DRV_HEALTH_QUARANTINED;
    }
    json_t *o = json_object();
    json_object_set_new(o, "version", json_string(DRV_VERSION_STR));
    json_object_set_new(o, "uptime_s", json_real(drv_coord_now() - c->started_at));
    json_object_set_new(o, "store", json_string(c->db_path));
    json_object_set_new(o, "counts", counts_json(&k));
    json_object_set_new(o, "total", json_integer((json_int_t)k.total));
    json_t *wk = json_object();
    json_object_set_new(wk, "connected", json_integer(connected));
    json_object_set_new(wk, "lost", json_integer(lost));
    json_object_set_new(wk, "left", json_integer(left));
    json_object_set_new(wk, "quarantined", json_integer(quarantined));
    json_object_set_new(o, "workers", wk);
    json_object_set_new(o, "late_results", json_integer((json_int_t)c->late_results));
    json_object_set_new(o, "queued_by_priority", drv_dashboard_queue_bands(c)); /* dash */
    json_object_set_new(o, "memory", memory_json());
    return o;
}

/* ---- routing ---- */

/* Splits path (after the prefix) into up to 3 segments. Returns the count, or -1 when
 * there are more. */
static int split(const char *path, const char *seg[3], size_t len[3])
{
    int n = 0;
    const char *p = path;
    while (*p == '/') {
        p++;
        if (!*p)
            break;
        if (n == 3)
            return -1;
        const char *e = strchr(p, '/');
        seg[n] = p;
        len[n] = e ? (size_t)(e - p) : strlen(p);
        n++;
        p += len[n - 1];
    }
    return n;
}

static bool seg_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && strncmp(s, word, len) == 0;
}

static void not_found(drv_hsession *h)
{
    char msg[600];
    snprintf(msg, sizeof msg, "no such endpoint: %s (see docs/api.md)", h->path);
    drv_api_error(h, 404, msg, NULL);
}

static bool method_is(drv_hsession *h, drv_http_method m)
{
    if (h->method == m)
        return true;
    char msg[600];
    snprintf(msg, sizeof msg, "%s %s: use %s", h->method == DRV_HTTP_GET ? "GET" : "this method",
             h->path, m == DRV_HTTP_GET ? "GET" : "POST");
    drv_api_error(h, 405, msg, NULL);
    return false;
}

/* GET /healthz: alive and serving, for load balancers and supervisors; no token, and
 * nothing in it that needs one. Like every read it waits for earlier writes to be
 * durable: a store writer that is stuck makes it slow, not "ok". */
static void healthz(drv_coordinator *c, drv_hsession *h)
{
    if (!method_is(h, DRV_HTTP_GET))
        return;
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(c->stopping ? "stopping" : "ok"));
    json_object_set_new(o, "uptime_s", json_real(drv_coord_now() - c->started_at));
    respond(h, c->stopping ? 503 : 200, o);
}

bool drv_api_authorized(const drv_coordinator *c, const char *auth, bool write)
{
    if (!c->client_token || (!write && c->opt.open_read))
        return true;
    return token_ok(auth, c->client_token) ||
           (!write && c->read_token && token_ok(auth, c->read_token));
}

void drv_api_handle(drv_coordinator *c, drv_hsession *h)
{
    if (drv_web_handle(c, h))
        return;
    if (strcmp(h->path, "/healthz") == 0) {
        healthz(c, h);
        return;
    }
    bool metrics = strcmp(h->path, "/metrics") == 0;
    if (!metrics && (strncmp(h->path, API_PREFIX, strlen(API_PREFIX)) != 0 ||
                     (h->path[strlen(API_PREFIX)] != '/' && h->path[strlen(API_PREFIX)] != '\0'))) {
        not_found(h);
        return;
    }
    bool write = h->method != DRV_HTTP_GET;
    if (!drv_api_authorized(c, h->auth, write)) {
        drv_api_error(
            h, 401, h->auth[0] ? "wrong token" : "missing token: send Authorization: Bearer TOKEN",
            NULL);
        return;
    }
    if (metrics) {
        if (method_is(h, DRV_HTTP_GET))
            drv_metrics_text(c, h);
        return;
    }
    const char *seg[3];
    size_t len[3];
    int n = split(h->path + strlen(API_PREFIX), seg, len);
    if (n <= 0) {
        not_found(h);
        return;
    }
    uint64_t id = 0;
    if (seg_is(seg[0], len[0], "status") && n == 1) {
        if (method_is(h, DRV_HTTP_GET))
            status(c, h);
    } else if (seg_is(seg[0], len[0], "tests")) {
        if (n == 1) {
            if (h->method == DRV_HTTP_POST)
                tests_submit(c, h);
            else if (method_is(h, DRV_HTTP_GET))
                tests_list(c, h);
        } else if (!parse_id(seg[1], len[1], &id)) {
            not_found(h);
        } else if (n == 2) {
            if (method_is(h, DRV_HTTP_GET))
                test_get(c, h, id, false);
        } else if (seg_is(seg[2], len[2], "explain")) {
            if (method_is(h, DRV_HTTP_GET))
                test_get(c, h, id, true);
        } else if (seg_is(seg[2], len[2], "cancel")) {
            if (method_is(h, DRV_HTTP_POST))
                test_cancel(c, h, id);
        } else {
            not_found(h);
        }
    } else if (seg_is(seg[0], len[0], "runs")) {
        if (n == 1) {
            if (method_is(h, DRV_HTTP_GET))
                runs_list(c, h);
        } else if (!parse_id(seg[1], len[1], &id)) {
            not_found(h);
        } else if (n == 2) {
            if (method_is(h, DRV_HTTP_GET))
                run_get(c, h, id);
        } else if (seg_is(seg[2], len[2], "cancel")) {
            if (method_is(h, DRV_HTTP_POST))
                run_cancel(c, h, id);
        } else {
            not_found(h);
        }
    } else if (seg_is(seg[0], len[0], "metrics") &&
               (n == 1 || (n == 2 && seg_is(seg[1], len[1], "history")))) {
        if (method_is(h, DRV_HTTP_GET)) {
            if (n == 1)
                respond(h, 200, drv_sampler_metrics_json(c));
            else
                drv_sampler_history(c, h);
        }
    } else if (seg_is(seg[0], len[0], "predictions") && n == 1) {
        if (method_is(h, DRV_HTTP_POST))
            predictions(c, h);
    } else if (seg_is(seg[0], len[0], "anomalies") && n == 1) {
        if (method_is(h, DRV_HTTP_GET))
            drv_sampler_anomalies(c, h);
    } else if (seg_is(seg[0], len[0], "workers")) {
        char name[DRV_WORKER_NAME_MAX + 1] = "";
        if (n >= 2) {
            if (len[1] > DRV_WORKER_NAME_MAX) {
                not_found(h);
                return;
            }
            memcpy(name, seg[1], len[1]);
            name[len[1]] = '\0';
        }
        if (n == 1) {
            if (method_is(h, DRV_HTTP_GET))
                workers_list(c, h);
        } else if (n == 2) {
            int64_t w;
            if (method_is(h, DRV_HTTP_GET) && (w = find_worker(c, h, name)) >= 0) {
                json_t *o = worker_json(c, (drv_wref)w);
                json_object_set_new(o, "speed_by_family",
                                    drv_sampler_speed_by_family_json(c, (drv_wref)w));
                respond_read(h, 200, o);
            }
        } else if (seg_is(seg[2], len[2], "clear") || seg_is(seg[2], len[2], "drain")) {
            if (method_is(h, DRV_HTTP_POST))
                worker_action(c, h, name, seg_is(seg[2], len[2], "clear") ? "clear" : "drain");
        } else {
            not_found(h);
        }
    } else {
        not_found(h);
    }
}
