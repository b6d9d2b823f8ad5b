/* store_queries.c - reading the store: recovery at start, listings, one task with its
 * attempts, counts by state, run summaries, stored workers. Every task read back is
 * rebuilt into a drv_task with its tag names re-interned into the caller's table.
 *
 * A callback may read the store, except through the function that is calling it (each
 * query holds its cached statement until it returns); it should not change the rows
 * being walked. */
#include "coordinator/store_sqlite.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returns a copy of column i (owned by the caller), or NULL for SQL NULL. */
static char *col_dup(sqlite3_stmt *st, int i)
{
    const char *v = (const char *)sqlite3_column_text(st, i);
    return v ? drv_xstrdup(v) : NULL;
}

/* Returns column i as text without copying (valid until the next step), NULL for NULL. */
static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static bool col_null(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL;
}

/* Reads column i as a time; NULL is 0 (not happened). */
static double col_time(sqlite3_stmt *st, int i)
{
    return col_null(st, i) ? 0 : sqlite3_column_double(st, i);
}

/* Reads column i as an integer in 0..max; -1 with err filled otherwise. */
static int col_uint(sqlite3_stmt *st, int i, int64_t max, uint64_t *out, const char *what,
                    const char *col, drv_error *err)
{
    int64_t v = sqlite3_column_int64(st, i);
    if (sqlite3_column_type(st, i) != SQLITE_INTEGER || v < 0 || v > max)
        return drv_error_set(err, "%s: column %s is not an integer in 0..%" PRId64, what, col, max);
    *out = (uint64_t)v;
    return 0;
}

/* Rebuilds t (initialised by the caller; on failure it may hold part of the row, which
 * drv_task_clear frees) from a row of DRV_STORE_TASK_COLS. */
static int row_to_task(sqlite3_stmt *st, drv_tag_table *tags, drv_task *t, drv_error *err)
{
    char what[64], field[96];
    uint64_t id = 0, max_retries = 0, batch_size = 0, attempts = 0;
    snprintf(what, sizeof what, "task %lld", (long long)sqlite3_column_int64(st, TC_ID));
    if (col_uint(st, TC_ID, INT64_MAX, &id, what, "id", err) < 0 ||
        col_uint(st, TC_MAX_RETRIES, UINT32_MAX, &max_retries, what, "max_retries", err) < 0 ||
        col_uint(st, TC_BATCH_SIZE, UINT32_MAX, &batch_size, what, "batch_size", err) < 0 ||
        col_uint(st, TC_ATTEMPTS, UINT32_MAX, &attempts, what, "attempts", err) < 0)
        return -1;
    int state = drv_task_state_parse(col_text(st, TC_STATE));
    if (state < 0)
        return drv_error_set(err, "%s: unknown state \"%s\"", what,
                             col_text(st, TC_STATE) ? col_text(st, TC_STATE) : "");
    t->id = id;
    t->name = col_dup(st, TC_NAME);
    t->cwd = col_dup(st, TC_CWD);
    t->model_id = col_dup(st, TC_MODEL_ID);
    t->test_type = col_dup(st, TC_TEST_TYPE);
    t->priority = sqlite3_column_int(st, TC_PRIORITY);
    t->timeout_s = sqlite3_column_double(st, TC_TIMEOUT_S);
    t->max_retries = (uint32_t)max_retries;
    /* The column holds reruns since schema version 6 (migrated from the flag). */
    t->reruns = (uint32_t)sqlite3_column_int(st, TC_RETRY_ON_FAILURE);
    t->not_idempotent = sqlite3_column_int(st, TC_NOT_IDEMPOTENT) != 0;
    t->family = sqlite3_column_int(st, TC_FAMILY);
    t->batch_size = (uint32_t)batch_size;
    t->state = (drv_task_state)state;
    t->attempts = (uint32_t)attempts;
    snprintf(field, sizeof field, "%s: argv", what);
    if (drv_store_strv_decode(col_text(st, TC_ARGV), &t->argv, field, err) < 0)
        return -1;
    snprintf(field, sizeof field, "%s: env", what);
    if (drv_store_strv_decode(col_text(st, TC_ENV), &t->env, field, err) < 0)
        return -1;
    snprintf(field, sizeof field, "%s: labels", what);
    if (drv_store_strv_decode(col_text(st, TC_LABELS), &t->labels, field, err) < 0)
        return -1;
    snprintf(field, sizeof field, "%s: after", what);
    if (drv_store_strv_decode(col_text(st, TC_AFTER), &t->after, field, err) < 0)
        return -1;
    snprintf(field, sizeof field, "%s: locks", what);
    if (drv_store_strv_decode(col_text(st, TC_LOCKS), &t->locks, field, err) < 0)
        return -1;
    t->run_anyway = sqlite3_column_int(st, TC_RUN_ANYWAY) != 0;
    t->exclusive = sqlite3_column_int(st, TC_RUN_ALONE) != 0;
    int skip = sqlite3_column_int(st, TC_SKIP_EXIT_CODE);
    t->skip_exit_code = (uint8_t)(skip > 0 && skip < 256 ? skip : 0);
    t->disabled = sqlite3_column_int(st, TC_DISABLED) != 0;
    snprintf(field, sizeof field, "%s: members", what);
    if (drv_store_strv_decode(col_text(st, TC_MEMBERS), &t->members, field, err) < 0)
        return -1;
    t->batch_of = (uint64_t)sqlite3_column_int64(st, TC_BATCH_OF);
    snprintf(field, sizeof field, "%s: requirements", what);
    return drv_store_req_decode(col_text(st, TC_REQUIREMENTS), tags, &t->req, field, err);
}

/* Walks the non-final tasks, rebuilding each; see store.h. */
int drv_store_recover(drv_store *s, drv_tag_table *tags, drv_store_recover_fn fn, void *ctx,
                      drv_error *err)
{
    sqlite3_stmt *st = drv_store_stmt(s, ST_RECOVER, err);
    if (!st)
        return -1;
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        drv_task t;
        drv_task_init(&t);
        if (row_to_task(st, tags, &t, err) < 0) {
            drv_task_clear(&t);
            out = -1;
            break;
        }
        drv_store_live_recovered(s, (int64_t)t.id, t.state);
        t.retries_used = (uint32_t)sqlite3_column_int64(st, TC_RETRIES_USED);
        t.reruns_used = (uint32_t)sqlite3_column_int64(st, TC_RERUNS_USED);
        drv_store_recovered r = {
            .task = &t,
            .run_id = sqlite3_column_int64(st, TC_RUN_ID),
            .worker = col_text(st, TC_WORKER),
            .submitted_at = sqlite3_column_double(st, TC_SUBMITTED_AT),
        };
        int cb = fn(ctx, &r, err);
        drv_task_clear(&t);
        if (cb != 0) {
            out = cb < 0 ? -1 : 0;
            break;
        }
    }
    if (out == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = drv_store_fail(s, err, "cannot read the tasks to recover");
    drv_store_reset(st);
    return out;
}

/* Binds named parameter name if the statement has it. */
static void bind_named_int(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0)
        sqlite3_bind_int64(st, i, v);
}

/* Lists tasks matching f through fn; see store.h. */
int64_t drv_store_task_list(drv_store *s, const drv_store_filter *f, drv_store_row_fn fn, void *ctx,
                            drv_error *err)
{
    if (f->state < -1 || f->state >= DRV_TASK_STATE_COUNT)
        return drv_error_set(err, "task list: unknown state %d", f->state);
    int mask =
        (f->state >= 0 ? DRV_STORE_LIST_STATE : 0) | (f->run_id ? DRV_STORE_LIST_RUN : 0) |
        (f->name_prefix && *f->name_prefix ? DRV_STORE_LIST_PREFIX : 0) |
        (f->state >= 0 && !drv_task_state_final((drv_task_state)f->state) ? DRV_STORE_LIST_LIVE
                                                                          : 0) |
        (f->worker && *f->worker ? DRV_STORE_LIST_WORKER : 0) |
        (f->newest_first ? DRV_STORE_LIST_DESC : 0);
    sqlite3_stmt *st = drv_store_stmt(s, (drv_store_stmt_id)(ST_LIST_FIRST + mask), err);
    if (!st)
        return -1;
    if (mask & DRV_STORE_LIST_STATE)
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":state"),
                          drv_task_state_name((drv_task_state)f->state), -1, SQLITE_STATIC);
    if (mask & DRV_STORE_LIST_RUN)
        bind_named_int(st, ":run", f->run_id);
    if (mask & DRV_STORE_LIST_PREFIX)
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":prefix"), f->name_prefix, -1,
                          SQLITE_STATIC);
    if (mask & DRV_STORE_LIST_WORKER)
        sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, ":worker"), f->worker, -1,
                          SQLITE_STATIC);
    bind_named_int(st, ":limit", f->limit ? (int64_t)f->limit : -1);
    bind_named_int(st, ":offset", f->offset);

    int64_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int state = drv_task_state_parse(col_text(st, 3));
        if (state < 0) {
            n = drv_error_set(err, "task %lld: unknown state",
                              (long long)sqlite3_column_int64(st, 0));
            break;
        }
        drv_store_task_row row = {
            .id = (uint64_t)sqlite3_column_int64(st, 0),
            .run_id = sqlite3_column_int64(st, 1),
            .name = col_text(st, 2),
            .state = (drv_task_state)state,
            .attempts = (uint32_t)sqlite3_column_int64(st, 4),
            .priority = sqlite3_column_int(st, 5),
            .worker = col_text(st, 6),
            .reason = col_text(st, 7),
            .submitted_at = sqlite3_column_double(st, 8),
            .finished_at = col_time(st, 9),
            .has_exit = !col_null(st, 10),
            .exit_code = sqlite3_column_int(st, 10),
            .signal = sqlite3_column_int(st, 11),
            .duration_s = sqlite3_column_double(st, 12),
            .batch_of = (uint64_t)sqlite3_column_int64(st, 13),
            .members = (uint32_t)sqlite3_column_int64(st, 14),
        };
        int cb = fn(ctx, &row, err);
        if (cb < 0) {
            n = -1;
            break;
        }
        n++;
        if (cb > 0)
            break;
    }
    if (n >= 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        n = drv_store_fail(s, err, "cannot list tasks");
    drv_store_reset(st);
    return n;
}

/* Frees what d owns; leaves it zeroed with an empty task. */
void drv_store_task_detail_clear(drv_store_task_detail *d)
{
    if (!d)
        return;
    drv_task_clear(&d->task);
    free(d->worker);
    free(d->reason);
    for (size_t i = 0; i < d->n_attempts; i++) {
        free(d->attempts[i].worker);
        free(d->attempts[i].output_tail);
        free(d->attempts[i].reason);
        free(d->attempts[i].stderr_tail);
    }
    free(d->attempts);
    memset(d, 0, sizeof *d);
    drv_task_init(&d->task);
}

/* Reads the attempts of task id into d. */
static int read_attempts(drv_store *s, uint64_t id, drv_store_task_detail *d, drv_error *err)
{
    sqlite3_stmt *st = drv_store_stmt(s, ST_ATTEMPTS_OF, err);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, (int64_t)id);
    size_t cap = 0;
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int state = drv_store_attempt_state_parse(col_text(st, 2));
        if (state < 0) {
            out = drv_error_set(err, "task %" PRIu64 " attempt %lld: unknown state", id,
                                (long long)sqlite3_column_int64(st, 0));
            break;
        }
        if (d->n_attempts == cap) {
            cap = cap ? cap * 2 : 4;
            d->attempts = drv_xrealloc(d->attempts, cap * sizeof *d->attempts);
        }
        drv_store_attempt *a = &d->attempts[d->n_attempts++];
        *a = (drv_store_attempt){
            .attempt = (uint32_t)sqlite3_column_int64(st, 0),
            .worker = col_dup(st, 1),
            .state = (drv_store_attempt_state)state,
            .assigned_at = sqlite3_column_double(st, 3),
            .started_at = col_time(st, 4),
            .finished_at = col_time(st, 5),
            .has_result = state == DRV_ATTEMPT_FINISHED,
            .exit_code = sqlite3_column_int(st, 6),
            .signal = sqlite3_column_int(st, 7),
            .timed_out = sqlite3_column_int(st, 8) != 0,
            .infra_failure = sqlite3_column_int(st, 9) != 0,
            .duration_s = sqlite3_column_double(st, 10),
            .peak_memory_kb = (uint64_t)sqlite3_column_int64(st, 11),
            .output_tail = col_dup(st, 12),
            .stderr_tail = col_dup(st, 13),
            .reason = col_dup(st, 14),
            .copy_of = (uint32_t)sqlite3_column_int64(st, 15),
            .superseded_by = (uint32_t)sqlite3_column_int64(st, 16),
        };
    }
    if (out == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = drv_store_fail(s, err, "cannot read a task's attempts");
    drv_store_reset(st);
    return out;
}

/* Reads one task and its attempts; see store.h. */
int drv_store_task_get(drv_store *s, uint64_t id, drv_tag_table *tags, drv_store_task_detail *out,
                       drv_error *err)
{
    memset(out, 0, sizeof *out);
    drv_task_init(&out->task);
    sqlite3_stmt *st = drv_store_stmt(s, ST_TASK_GET, err);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, (int64_t)id);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        found = 1;
        if (row_to_task(st, tags, &out->task, err) < 0) {
            found = -1;
        } else {
            out->run_id = sqlite3_column_int64(st, TC_RUN_ID);
            out->submitted_at = sqlite3_column_double(st, TC_SUBMITTED_AT);
            out->finished_at = col_time(st, TC_FINISHED_AT);
            out->worker = col_dup(st, TC_WORKER);
            out->reason = col_dup(st, TC_REASON);
            out->has_exit = !col_null(st, TC_EXIT_CODE);
            out->exit_code = sqlite3_column_int(st, TC_EXIT_CODE);
            out->signal = sqlite3_column_int(st, TC_SIGNAL);
            out->duration_s = sqlite3_column_double(st, TC_DURATION_S);
        }
    } else if (rc != SQLITE_DONE) {
        found = drv_store_fail(s, err, "cannot read a task");
    }
    drv_store_reset(st);
    if (found == 1 && read_attempts(s, id, out, err) < 0)
        found = -1;
    if (found <= 0)
        drv_store_task_detail_clear(out);
    return found;
}

/* Adds the (state, count) rows of st into c. */
static int read_counts(drv_store *s, sqlite3_stmt *st, drv_store_counts *c, drv_error *err)
{
    memset(c, 0, sizeof *c);
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int state = drv_task_state_parse(col_text(st, 0));
        if (state < 0) {
            out = drv_error_set(err, "%s: a task has the unknown state \"%s\"", s->path,
                                col_text(st, 0) ? col_text(st, 0) : "");
            break;
        }
        c->by_state[state] += (uint64_t)sqlite3_column_int64(st, 1);
        c->total += (uint64_t)sqlite3_column_int64(st, 1);
    }
    if (out == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = drv_store_fail(s, err, "cannot count tasks");
    drv_store_reset(st);
    return out;
}

/* Counts every task by state: from memory when the counts kept there are known
 * (store_counts.c), else by a scan. */
int drv_store_count(drv_store *s, drv_store_counts *out, drv_error *err)
{
    if (drv_store_live_totals(s, out))
        return 0;
    sqlite3_stmt *st = drv_store_stmt(s, ST_COUNT_ALL, err);
    return st ? read_counts(s, st, out, err) : -1;
}

/* Frees what r owns and zeroes it. */
void drv_store_run_summary_clear(drv_store_run_summary *r)
{
    if (!r)
        return;
    free(r->name);
    memset(r, 0, sizeof *r);
}

/* Reads one run and counts its tasks by state. */
int drv_store_run_summary_get(drv_store *s, int64_t run_id, drv_store_run_summary *out,
                              drv_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = drv_store_stmt(s, ST_RUN_GET, err);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, run_id);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        found = 1;
        out->id = run_id;
        out->name = col_dup(st, 0);
        out->created_at = sqlite3_column_double(st, 1);
        out->submitted = (uint64_t)sqlite3_column_int64(st, 2);
    } else if (rc != SQLITE_DONE) {
        found = drv_store_fail(s, err, "cannot read a run");
    }
    drv_store_reset(st);
    if (found == 1 && !drv_store_live_counts(s, run_id, &out->counts)) {
        st = drv_store_stmt(s, ST_RUN_COUNT, err);
        if (!st)
            found = -1;
        else {
            sqlite3_bind_int64(st, 1, run_id);
            if (read_counts(s, st, &out->counts, err) < 0)
                found = -1;
        }
    }
    if (found <= 0)
        drv_store_run_summary_clear(out);
    return found;
}

/* The health named name, or DRV_HEALTH_COUNT. */
static drv_health health_by_name(const char *name)
{
    for (int h = 0; h < DRV_HEALTH_COUNT && name; h++)
        if (strcmp(drv_health_name((drv_health)h), name) == 0)
            return (drv_health)h;
    return DRV_HEALTH_COUNT;
}

/* Rebuilds every stored worker; see store.h. */
int drv_store_worker_list(drv_store *s, drv_tag_table *tags, drv_store_worker_fn fn, void *ctx,
                          drv_error *err)
{
    sqlite3_stmt *st = drv_store_stmt(s, ST_WORKER_LIST, err);
    if (!st)
        return -1;
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        drv_worker w;
        memset(&w, 0, sizeof w);
        const char *name = col_text(st, 0), *health = col_text(st, 3);
        char what[96];
        snprintf(what, sizeof what, "worker %.64s: capabilities", name ? name : "");
        if (!name || strlen(name) >= sizeof w.name) {
            out = drv_error_set(err, "%s: a stored worker name is empty or too long", s->path);
            break;
        }
        memcpy(w.name, name, strlen(name) + 1);
        if (drv_store_caps_decode(col_text(st, 1), tags, &w.caps, what, err) < 0) {
            out = -1;
            break;
        }
        w.slots = (uint32_t)sqlite3_column_int64(st, 2);
        w.health = health_by_name(health);
        if (w.health == DRV_HEALTH_COUNT) {
            out = drv_error_set(err, "worker %s: unknown health \"%s\"", w.name,
                                health ? health : "");
            break;
        }
        if (col_text(st, 4))
            snprintf(w.health_reason, sizeof w.health_reason, "%s", col_text(st, 4));
        w.joined_at = sqlite3_column_double(st, 5);
        int cb = fn(ctx, &w, sqlite3_column_double(st, 6), err);
        if (cb != 0) {
            out = cb < 0 ? -1 : 0;
            break;
        }
    }
    if (out == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = drv_store_fail(s, err, "cannot read the workers");
    drv_store_reset(st);
    return out;
}

/* One worker's stored health; see store.h. Prepared per call: it runs once per hello. */
int drv_store_worker_health_get(drv_store *s, const char *name, drv_health *health, char *reason,
                                size_t len, drv_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->rd->db, "SELECT health, health_reason FROM workers WHERE name = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return drv_store_fail(s, err, "cannot read a worker's health");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), out = 0;
    if (rc == SQLITE_ROW) {
        const char *h = col_text(st, 0), *why = col_text(st, 1);
        *health = health_by_name(h);
        snprintf(reason, len, "%s", why ? why : "");
        out = *health == DRV_HEALTH_COUNT
                  ? drv_error_set(err, "worker %s: unknown health \"%s\"", name, h ? h : "")
                  : 1;
    } else if (rc != SQLITE_DONE) {
        out = drv_store_fail(s, err, "cannot read a worker's health");
    }
    sqlite3_finalize(st);
    return out;
}

/* One worker's stored instance (exec3); see store.h. Prepared per call: it runs at a
 * worker's first hello since the coordinator started. */
int drv_store_worker_instance_get(drv_store *s, const char *name, char *buf, size_t len,
                                  drv_error *err)
{
    sqlite3_stmt *st = NULL;
    buf[0] = 0;
    if (sqlite3_prepare_v2(s->rd->db, "SELECT instance FROM workers WHERE name = ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return drv_store_fail(s, err, "cannot read a worker's instance");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), out = 0;
    if (rc == SQLITE_ROW) {
        const char *v = col_text(st, 0);
        snprintf(buf, len, "%s", v ? v : "");
    } else if (rc != SQLITE_DONE) {
        out = drv_store_fail(s, err, "cannot read a worker's instance");
    }
    sqlite3_finalize(st);
    return out;
}

/* Lists run ids, most recent first; see store.h. */
int64_t drv_store_run_ids(drv_store *s, uint32_t limit, int64_t *out, drv_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->rd->db, "SELECT id FROM runs ORDER BY id DESC LIMIT ?1", -1, &st,
                           NULL) != SQLITE_OK)
        return drv_store_fail(s, err, "cannot list runs");
    sqlite3_bind_int64(st, 1, limit);
    int64_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && (uint32_t)n < limit)
        out[n++] = sqlite3_column_int64(st, 0);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        n = drv_store_fail(s, err, "cannot list runs");
    sqlite3_finalize(st);
    return n;
}

int drv_store_batch_members(drv_store *s, int64_t run_id, uint64_t batch,
                            void (*fn)(void *ctx, const char *name), void *ctx, drv_error *err)
{
    static const char sql[] = "SELECT name FROM tasks WHERE run_id = ?1 AND batch_of = ?2";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->rd->db, sql, -1, &st, NULL) != SQLITE_OK)
        return drv_store_fail(s, err, "cannot read a batch's member results");
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_int64(st, 2, (int64_t)batch);
    int rc, n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (name) {
            fn(ctx, name);
            n++;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : drv_store_fail(s, err, "cannot read a batch's member results");
}

int drv_store_member_failed(drv_store *s, int64_t run_id, const char *name, uint64_t *id,
                            uint32_t *attempts, drv_error *err)
{
    if (run_id >= s->runs_at_open)
        return 0;
    /* tasks_name finds the name's few rows; the rest is a filter on them */
    static const char sql[] = "SELECT id, attempts FROM tasks WHERE name = ?2 AND run_id = ?1"
                              " AND batch_of IS NOT NULL AND state = 'failed'"
                              " ORDER BY id DESC LIMIT 1";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->rd->db, sql, -1, &st, NULL) != SQLITE_OK)
        return drv_store_fail(s, err, "cannot look up a failed member test");
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), out = 0;
    if (rc == SQLITE_ROW) {
        *id = (uint64_t)sqlite3_column_int64(st, 0);
        *attempts = (uint32_t)sqlite3_column_int64(st, 1);
        out = 1;
    } else if (rc != SQLITE_DONE) {
        out = drv_store_fail(s, err, "cannot look up a failed member test");
    }
    sqlite3_finalize(st);
    return out;
}

int drv_store_flakiness(drv_store *s, const char *name, uint32_t limit, drv_store_flakiness_t *out,
                        drv_error *err)
{
    /* An own failure: a result that is not the infrastructure's and not a pass. */
    static const char sql[] =
        "SELECT COUNT(*), COALESCE(SUM(t.state = 'passed' AND EXISTS (SELECT 1 FROM attempts a"
        " WHERE a.task_id = t.id AND a.state = 'finished' AND COALESCE(a.infra_failure, 0) = 0"
        " AND (COALESCE(a.exit_code, 0) != 0 OR COALESCE(a.signal, 0) != 0"
        " OR COALESCE(a.timed_out, 0) != 0))), 0)"
        " FROM (SELECT id, state FROM tasks WHERE name = ?1"
        " AND state IN ('passed', 'failed', 'timed_out') ORDER BY id DESC LIMIT ?2) AS t";
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->rd->db, sql, -1, &st, NULL) != SQLITE_OK)
        return drv_store_fail(s, err, "cannot count flaky runs");
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->runs = (uint64_t)sqlite3_column_int64(st, 0);
        out->flaky = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : drv_store_fail(s, err, "cannot count flaky runs");
}
