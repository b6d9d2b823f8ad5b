/* store_retention.c - the store forgets what is older than the retention (store.h,
 * "retention"): finished runs with their tests, attempts and output tails, events, and
 * (drv_store_prune_tails_step) the output tails of old attempts of runs still open
 * (the metrics history has its own retention: sampler.c). Each step reads what it will remove on
 * the read connection (what is committed), then records the deletions as writes, which the writer
 * thread executes in the turn's commit: the loop thread only reads a few index pages per step. */
#include <string.h>

#include "coordinator/store_sqlite.h"

/* Runs one single-integer query st (bound by the caller); 0 when it has no row. */
static int step_int(drv_store *s, sqlite3_stmt *st, int64_t *out, const char *what, drv_error *err)
{
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    int res = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : drv_store_fail(s, err, what);
    drv_store_reset(st);
    return res;
}

/* The oldest prunable run, or 0. A read over every test of the old runs that are not
 * prunable and of the one found: done once per run, not per batch (the caller keeps the
 * run until it is gone). */
static int find_run(drv_store *s, double cutoff, int64_t *run, drv_error *err)
{
    sqlite3_stmt *st = drv_store_stmt(s, ST_PRUNE_FIND_RUN, err);
    if (!st)
        return -1;
    sqlite3_bind_double(st, 1, cutoff);
    sqlite3_bind_int64(st, 2, 0);
    return step_int(s, st, run, "cannot look for runs past the retention", err);
}

/* Removes up to limit tests of run (their attempts first), or the run when it has none.
 * The tests' states leave the counts kept in memory. */
static int prune_run(drv_store *s, int64_t run, uint32_t limit, drv_store_pruned *out,
                     drv_error *err)
{
    sqlite3_stmt *st = drv_store_stmt(s, ST_PRUNE_BATCH, err);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, limit);
    uint64_t by_state[DRV_TASK_STATE_COUNT] = {0};
    int64_t last = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int state = drv_task_state_parse(name ? name : "");
        if (state >= 0)
            by_state[state] += (uint64_t)sqlite3_column_int64(st, 1);
        out->tasks += (uint64_t)sqlite3_column_int64(st, 1);
        if (sqlite3_column_int64(st, 2) > last)
            last = sqlite3_column_int64(st, 2);
    }
    drv_store_reset(st);
    if (rc != SQLITE_DONE)
        return drv_store_fail(s, err, "cannot read the tests of a run past the retention");
    out->run_id = run;
    if (out->tasks == 0) {
        drv_store_rec_begin(s, ST_PRUNE_RUN, "cannot remove a run past the retention");
        drv_store_rec_int(s, run);
        if (drv_store_rec_end(s, err) != SQLITE_DONE)
            return -1;
        out->run_gone = true;
        drv_store_live_pruned(s, run, by_state);
        return 0;
    }
    static const drv_store_stmt_id ops[] = {ST_PRUNE_ATTEMPTS, ST_PRUNE_TASKS};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        drv_store_rec_begin(s, ops[i], "cannot remove tests past the retention");
        drv_store_rec_int(s, run);
        drv_store_rec_int(s, last);
        if (drv_store_rec_end(s, err) != SQLITE_DONE)
            return -1;
    }
    drv_store_live_pruned(s, run, by_state);
    return 0;
}

/* Counts (up to limit) the rows query finds older than cutoff, and records the delete
 * op for them when there are any. */
static int prune_rows(drv_store *s, drv_store_stmt_id query, drv_store_stmt_id op, double cutoff,
                      uint32_t limit, uint64_t *count, drv_error *err)
{
    sqlite3_stmt *st = drv_store_stmt(s, query, err);
    if (!st)
        return -1;
    sqlite3_bind_double(st, 1, cutoff);
    sqlite3_bind_int64(st, 2, limit);
    int64_t n = 0;
    if (step_int(s, st, &n, "cannot count rows past the retention", err) < 0)
        return -1;
    *count = (uint64_t)n;
    if (n == 0)
        return 0;
    drv_store_rec_begin(s, op, "cannot remove rows past the retention");
    drv_store_rec_double(s, cutoff);
    drv_store_rec_int(s, limit);
    return drv_store_rec_end(s, err) == SQLITE_DONE ? 0 : -1;
}

int drv_store_prune_step(drv_store *s, double cutoff, uint32_t limit, int64_t *run,
                         drv_store_pruned *out, drv_error *err)
{
    memset(out, 0, sizeof *out);
    if (limit == 0)
        limit = 1;
    if (*run == 0 && find_run(s, cutoff, run, err) < 0)
        return -1;
    if (*run && prune_run(s, *run, limit, out, err) < 0)
        return -1;
    if (out->run_gone)
        *run = 0;
    if (prune_rows(s, ST_PRUNE_OLD_EVENTS, ST_PRUNE_EVENTS, cutoff, limit, &out->events, err) < 0)
        return -1;
    /* A run found may have tests left, or be left itself, or be followed by another. */
    return out->run_id != 0 || out->events == limit;
}

int drv_store_prune_tails_step(drv_store *s, double cutoff, uint32_t limit, uint64_t *count,
                               drv_error *err)
{
    if (limit == 0)
        limit = 1;
    if (prune_rows(s, ST_PRUNE_OLD_TAILS, ST_PRUNE_TAILS, cutoff, limit, count, err) < 0)
        return -1;
    return *count == limit;
}

int drv_store_vacuum_step(drv_store *s, drv_error *err)
{
    drv_store_rec_begin(s, ST_VACUUM_STEP, "cannot give freed pages back");
    return drv_store_rec_end(s, err) == SQLITE_DONE ? 0 : -1;
}
