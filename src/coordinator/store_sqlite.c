/* store_sqlite.c - the store on SQLite: opening, schema and migrations, the grouped
 * write transaction, the statement cache, and the JSON codecs of the task model.
 * Writes are here; queries are in store_queries.c. See store.h for the model. */
#include "coordinator/store_sqlite.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/protocol.h"

/* ---- schema ---- */

/* Version 2 tables and what hangs on them, by name (the v1 -> v2 migration builds them
 * under other names first). Why they look the way they do (each state change of a test
 * is on the hot path, at tens of thousands of tests per second):
 *   - CHECKs list the states with OR, not IN: SQLite builds an IN list of more than two
 *     constants as a temporary table, once per statement run, and that (a pager, a
 *     b-tree, eight inserts) cost more than the row write itself;
 *   - no index on tasks(state): every state change moved an entry in it; the
 *     whole-store count by state and start-up recovery scan the table once (version 5
 *     takes state out of the run index for the same reason);
 *   - attempts are a WITHOUT ROWID table keyed by (task_id, attempt): one b-tree per
 *     write instead of a table and its UNIQUE index. */
#define TASKS_TABLE(name, runs) TASKS_TABLE_OF(name, runs, TASKS_STATES_V2, "")
#define TASKS_STATES_V2                                                                            \
    "state = 'queued' OR state = 'assigned' OR state = 'running'"                                  \
    "    OR state = 'passed' OR state = 'failed' OR state = 'timed_out' OR state = 'cancelled'"    \
    "    OR state = 'unschedulable'"
/* suite (version 6): the state 'skipped', and what orders and excludes a test: the names
 * it runs after (JSON array), whether it runs when one of them did not pass, the names of
 * the locks it holds (JSON array), whether it runs alone (docs/api.md). */
#define TASKS_TABLE_V6(name, runs)                                                                 \
    TASKS_TABLE_OF(                                                                                \
        name, runs, TASKS_STATES_V2 " OR state = 'skipped'",                                       \
        ", after_tests TEXT, run_anyway INTEGER NOT NULL DEFAULT 0, lock_names TEXT,"              \
        " run_alone INTEGER NOT NULL DEFAULT 0, skip_exit_code INTEGER NOT NULL DEFAULT 0,"        \
        " disabled INTEGER NOT NULL DEFAULT 0")
#define TASKS_TABLE_OF(name, runs, states, extra)                                                  \
    "CREATE TABLE " name " ("                                                                      \
    "  id INTEGER PRIMARY KEY,"                                                                    \
    "  run_id INTEGER REFERENCES " runs "(id),"                                                    \
    "  name TEXT,"                                                                                 \
    "  argv TEXT,"                                                                                 \
    "  env TEXT,"                                                                                  \
    "  cwd TEXT,"                                                                                  \
    "  requirements TEXT NOT NULL,"                                                                \
    "  priority INTEGER NOT NULL,"                                                                 \
    "  timeout_s REAL NOT NULL,"                                                                   \
    "  max_retries INTEGER NOT NULL,"                                                              \
    "  retry_on_failure INTEGER NOT NULL,"                                                         \
    "  model_id TEXT,"                                                                             \
    "  family INTEGER NOT NULL,"                                                                   \
    "  test_type TEXT,"                                                                            \
    "  batch_size INTEGER NOT NULL,"                                                               \
    "  labels TEXT,"                                                                               \
    "  state TEXT NOT NULL CHECK (" states "),"                                                    \
    "  attempts INTEGER NOT NULL DEFAULT 0,"                                                       \
    "  submitted_at REAL NOT NULL,"                                                                \
    "  finished_at REAL,"                                                                          \
    "  worker TEXT,"                                                                               \
    "  exit_code INTEGER,"                                                                         \
    "  signal INTEGER,"                                                                            \
    "  duration_s REAL,"                                                                           \
    "  reason TEXT" extra ");"

#define ATTEMPTS_TABLE(name, tasks) ATTEMPTS_TABLE_OF(name, tasks, "")
/* suite (version 6): the tail of stderr alone, beside output_tail (both streams). */
#define ATTEMPTS_TABLE_V6(name, tasks) ATTEMPTS_TABLE_OF(name, tasks, "  stderr_tail TEXT,")
#define ATTEMPTS_TABLE_OF(name, tasks, extra)                                                      \
    "CREATE TABLE " name " ("                                                                      \
    "  task_id INTEGER NOT NULL REFERENCES " tasks "(id),"                                         \
    "  attempt INTEGER NOT NULL CHECK (attempt >= 1),"                                             \
    "  worker TEXT,"                                                                               \
    "  state TEXT NOT NULL CHECK (state = 'assigned' OR state = 'running' OR state = 'finished'"   \
    "    OR state = 'abandoned'),"                                                                 \
    "  assigned_at REAL NOT NULL,"                                                                 \
    "  started_at REAL,"                                                                           \
    "  finished_at REAL,"                                                                          \
    "  exit_code INTEGER,"                                                                         \
    "  signal INTEGER,"                                                                            \
    "  timed_out INTEGER,"                                                                         \
    "  infra_failure INTEGER,"                                                                     \
    "  duration_s REAL,"                                                                           \
    "  peak_memory_kb INTEGER,"                                                                    \
    "  output_tail TEXT," extra "  PRIMARY KEY (task_id, attempt)) WITHOUT ROWID;"

/* The indexes and triggers of tasks and attempts (created once both have their names).
 * Version 5 keys tasks_run by run alone (a state change moved an entry of the version 2
 * index on (run_id, state): a quarter of the final update's cost) and drops the trigger
 * that counted a run's tasks at each insert: the store bumps runs.submitted itself, once
 * per submission with the writer (store_sqlite.c, bump_run). The migration to 5 makes the
 * same change, so these are written to be run again. */
#define TASKS_ATTEMPTS_EXTRAS                                                                      \
    "DROP TRIGGER IF EXISTS tasks_count_in_run;"                                                   \
    "DROP INDEX IF EXISTS tasks_run;"                                                              \
    "CREATE INDEX tasks_run ON tasks(run_id);" /* At most one open attempt per task: a new one     \
                                                * supersedes the older open ones, so a late        \
                                                * result of those is recognised and not counted.   \
                                                * A first attempt has none. */                     \
    "CREATE TRIGGER IF NOT EXISTS attempts_supersede AFTER INSERT ON attempts"                     \
    " WHEN NEW.attempt > 1 BEGIN"                                                                  \
    " UPDATE attempts SET state = 'abandoned' WHERE task_id = NEW.task_id"                         \
    "  AND attempt < NEW.attempt AND (state = 'assigned' OR state = 'running'); END;"

/* Learned test durations (the predictor's per-test reference estimates), by test key
 * (drv_test_key of the name, as a signed 64-bit integer): a restart keeps them. */
#define LEARNED_TABLE                                                                              \
    "CREATE TABLE learned ("                                                                       \
    "  key INTEGER PRIMARY KEY,"                                                                   \
    "  mean_s REAL NOT NULL,"                                                                      \
    "  var REAL NOT NULL,"                                                                         \
    "  n INTEGER NOT NULL);"

/* exec (issue 11): one row per coordinator start; the newest is the epoch every
 * assignment of that start carries (docs/protocol.md, "Fencing"). */
#define EPOCHS_TABLE                                                                               \
    "CREATE TABLE epochs ("                                                                        \
    "  epoch INTEGER PRIMARY KEY,"                                                                 \
    "  started_at REAL NOT NULL);"

/* spec (issue 10, learning that lasts): what the balancer learned of its fleet besides
 * test durations (drv_learned_fact: class speeds per family, affinity, each worker's
 * pace), by kind, the class's or worker's key (as a signed 64-bit integer) and family
 * (-1: none). Schema version 6. */
#define LEARNED_FLEET_TABLE                                                                        \
    "CREATE TABLE learned_fleet ("                                                                 \
    "  kind INTEGER NOT NULL,"                                                                     \
    "  key INTEGER NOT NULL,"                                                                      \
    "  family INTEGER NOT NULL,"                                                                   \
    "  value REAL NOT NULL,"                                                                       \
    "  n INTEGER NOT NULL,"                                                                        \
    "  PRIMARY KEY (kind, key, family)) WITHOUT ROWID;"

/* The metrics history (part "mon": sampler.c, docs/api.md): one row per series (a
 * metric, and the worker or class it is about: key, '' for the fleet), one row per
 * sample at a resolution res (1, 60 or 600 s), t in whole seconds. */
#define SAMPLES_TABLES                                                                             \
    "CREATE TABLE sample_series ("                                                                 \
    "  id INTEGER PRIMARY KEY,"                                                                    \
    "  name TEXT NOT NULL,"                                                                        \
    "  key TEXT NOT NULL DEFAULT '',"                                                              \
    "  UNIQUE (name, key));"                                                                       \
    "CREATE TABLE samples ("                                                                       \
    "  series INTEGER NOT NULL,"                                                                   \
    "  res INTEGER NOT NULL,"                                                                      \
    "  t INTEGER NOT NULL,"                                                                        \
    "  value REAL NOT NULL,"                                                                       \
    "  PRIMARY KEY (series, res, t)) WITHOUT ROWID;"

/* bal (issue 10): why an attempt was abandoned, when that is more than "its worker is gone" (the
 * balancer moved the test: "stolen", "rebalanced"). Added by ALTER in the fresh schema
 * too: ATTEMPTS_TABLE also builds version 2's table, which a migration copies into. */
#define ATTEMPTS_REASON "ALTER TABLE attempts ADD COLUMN reason TEXT;"

/* exec3 (issue 11): the worker process of each worker's last hello, so that after a
 * coordinator restart a hello from another process is still told from a reconnect. */
#define WORKERS_INSTANCE "ALTER TABLE workers ADD COLUMN instance TEXT;"

/* mon3 (issue 12): the anomalies the monitor found (sampler.c), open (end_t 0) and
 * ended, kept like the metrics history (--metrics-retention); by start for the
 * history's ranges. */
#define ANOMALIES_TABLE                                                                            \
    "CREATE TABLE anomalies ("                                                                     \
    "  id INTEGER PRIMARY KEY,"                                                                    \
    "  kind TEXT NOT NULL,"                                                                        \
    "  severity TEXT NOT NULL,"                                                                    \
    "  worker TEXT NOT NULL DEFAULT '',"                                                           \
    "  summary TEXT NOT NULL,"                                                                     \
    "  evidence TEXT NOT NULL,"                                                                    \
    "  start_t REAL NOT NULL,"                                                                     \
    "  end_t REAL NOT NULL DEFAULT 0);"                                                            \
    "CREATE INDEX anomalies_start ON anomalies(start_t);"

/* spec (issue 10, stragglers): a speculative copy of a running test is an attempt of
 * its own, begun while the test's attempt still runs: copy_of names the attempt it
 * copies (NULL for any other), and such an insert does not abandon the open attempts
 * (the trigger of TASKS_ATTEMPTS_EXTRAS, made again). The copy that loses is abandoned
 * with superseded_by naming the attempt whose result counts (so is a copy dropped when its
 * worker is lost or its runner fails: it charges no budget). A test that must never run
 * twice at once ("idempotent": false) keeps it in tasks.not_idempotent. Schema version 7. */
#define ATTEMPT_COPIES                                                                             \
    "ALTER TABLE tasks ADD COLUMN not_idempotent INTEGER NOT NULL DEFAULT 0;"                      \
    "ALTER TABLE attempts ADD COLUMN copy_of INTEGER;"                                             \
    "ALTER TABLE attempts ADD COLUMN superseded_by INTEGER;"                                       \
    "DROP TRIGGER IF EXISTS attempts_supersede;"                                                   \
    "CREATE TRIGGER attempts_supersede AFTER INSERT ON attempts"                                   \
    " WHEN NEW.attempt > 1 AND NEW.copy_of IS NULL BEGIN"                                          \
    " UPDATE attempts SET state = 'abandoned' WHERE task_id = NEW.task_id"                         \
    "  AND attempt < NEW.attempt AND (state = 'assigned' OR state = 'running'); END;"

/* codec (issue 11): output tails are removed by age even while their run is open
 * (store_retention.c); this partial index finds the attempts that still have one by when
 * they finished, without reading the others. Schema version 9. */
#define DRV_STORE_HAS_TAIL "(output_tail IS NOT NULL OR stderr_tail IS NOT NULL)"
#define ATTEMPTS_TAILS_INDEX                                                                       \
    "CREATE INDEX attempts_tails ON attempts(finished_at) WHERE " DRV_STORE_HAS_TAIL ";"
/* py3 (issue 13): batches and their members' results (docs/api.md, "Batches"): a batch's
 * member names (JSON array), and on each member's result the batch that ran it; the
 * index on name serves a test's history and flakiness (newest first by name) without
 * scanning every task. Schema version 9. */
#define TASK_MEMBERS                                                                               \
    "ALTER TABLE tasks ADD COLUMN members TEXT;"                                                   \
    "ALTER TABLE tasks ADD COLUMN batch_of INTEGER;"                                               \
    "CREATE INDEX IF NOT EXISTS tasks_name ON tasks(name);"

/* The current schema, for a new file. */
static const char schema[] =
    "CREATE TABLE runs ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT,"
    "  created_at REAL NOT NULL,"
    "  submitted INTEGER NOT NULL DEFAULT 0);" TASKS_TABLE_V6("tasks", "runs")
        ATTEMPTS_TABLE_V6("attempts", "tasks") TASKS_ATTEMPTS_EXTRAS
    "CREATE TABLE workers ("
    "  name TEXT PRIMARY KEY,"
    "  capabilities TEXT NOT NULL,"
    "  slots INTEGER NOT NULL,"
    "  labels TEXT,"
    "  health TEXT NOT NULL,"
    "  health_reason TEXT,"
    "  first_seen REAL NOT NULL,"
    "  last_seen REAL NOT NULL);"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  t REAL NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  task_id INTEGER,"
    "  worker TEXT,"
    "  message TEXT);"
    "CREATE INDEX events_t ON events(t);" LEARNED_TABLE EPOCHS_TABLE LEARNED_FLEET_TABLE
        SAMPLES_TABLES ATTEMPTS_REASON ATTEMPT_COPIES WORKERS_INSTANCE ATTEMPTS_TAILS_INDEX
            ANOMALIES_TABLE TASK_MEMBERS;

/* migrations[v - 1] takes a store from schema version v to v + 1, in the transaction
 * that opens it. A new file gets `schema` at once instead. */
static const char *const migrations[DRV_STORE_SCHEMA_VERSION - 1] = {
    /* 1 -> 2: the tables of tasks and attempts rebuilt (a CHECK and a key cannot be
     * changed in place), same columns and rows. The new attempts table references the
     * new tasks table, so dropping the old tasks (with foreign keys enforced) meets no
     * child rows; renaming tasks_v2 rewrites that reference to "tasks". */
    TASKS_TABLE("tasks_v2", "runs") ATTEMPTS_TABLE(
        "attempts_v2",
        "tasks_v2") "INSERT INTO tasks_v2 SELECT * FROM tasks;"
                    "INSERT INTO attempts_v2 SELECT task_id, attempt, worker, state, assigned_at, "
                    "started_at,"
                    "  finished_at, exit_code, signal, timed_out, infra_failure, duration_s, "
                    "peak_memory_kb,"
                    "  output_tail FROM attempts;"
                    "DROP TABLE attempts;"
                    "DROP TABLE tasks;"
                    "ALTER TABLE tasks_v2 RENAME TO tasks;"
                    "ALTER TABLE attempts_v2 RENAME TO attempts;" TASKS_ATTEMPTS_EXTRAS,
    /* 2 -> 3: learned test durations. */
    LEARNED_TABLE,
    /* 3 -> 4: a placed test's row stays 'queued', its open attempt says where it is
     * (store_sqlite.h, DRV_STORE_TASKS_JOIN); rows written at an assignment or a start
     * take that form. The version also keeps an older drover off the file: it would take
     * such a row for a test never placed and begin an attempt number already used. */
    "UPDATE tasks SET state = 'queued' WHERE (state = 'assigned' OR state = 'running')"
    " AND EXISTS (SELECT 1 FROM attempts a WHERE a.task_id = tasks.id"
    " AND (a.state = 'assigned' OR a.state = 'running'));",
    /* 4 -> 5: tasks_run on run_id alone, no counting trigger (TASKS_ATTEMPTS_EXTRAS). */
    TASKS_ATTEMPTS_EXTRAS,
    /* 5 -> 6. (exec, issue 11): tasks.retry_on_failure holds the test's reruns (a count;
     * the old flag meant "rerun as often as max_retries"). (suite, issue 13): tasks gain
     * the state 'skipped' and the ordering columns (TASKS_TABLE_V6), attempts the tail of
     * stderr (ATTEMPTS_TABLE_V6); a CHECK cannot change
     * in place, so tasks and attempts are rebuilt as 1 -> 2 does. (exec): the
     * coordinator's epochs. (spec, issue 10): what the balancer learned of its fleet.
     * (mon, issue 12): the metrics history at three resolutions replaces the metrics
     * table (7 series every 5 s that nothing read). (bal, issue 10): attempts.reason,
     * why an attempt was abandoned (a move's reason). */
    "UPDATE tasks SET retry_on_failure = max_retries WHERE retry_on_failure <> 0;" TASKS_TABLE_V6(
        "tasks_v6", "runs")
        ATTEMPTS_TABLE_V6(
            "attempts_v6",
            "tasks_v6") "INSERT INTO tasks_v6 SELECT *, NULL, 0, NULL, 0, 0, 0 FROM tasks;"
                        "INSERT INTO attempts_v6 SELECT *, NULL FROM attempts;"
                        "DROP TABLE attempts;"
                        "DROP TABLE tasks;"
                        "ALTER TABLE tasks_v6 RENAME TO tasks;"
                        "ALTER TABLE attempts_v6 RENAME TO attempts;" TASKS_ATTEMPTS_EXTRAS
                            EPOCHS_TABLE LEARNED_FLEET_TABLE
                        "DROP INDEX IF EXISTS metrics_name_t; DROP TABLE IF EXISTS "
                        "metrics;" SAMPLES_TABLES ATTEMPTS_REASON,
    /* 6 -> 7 (spec, issue 10): speculative copies (copy_of, superseded_by, the trigger
     * that leaves a copied attempt open) and tasks.not_idempotent. */
    ATTEMPT_COPIES,
    /* 7 -> 8 (exec3, issue 11): workers.instance. */
    WORKERS_INSTANCE,
    /* 8 -> 9 (codec, issue 11): the partial index of attempts that have output tails;
     * (mon3, issue 12): the anomalies the monitor found; (py3, issue 13):
     * tasks.members, tasks.batch_of, the index on tasks.name. */
    ATTEMPTS_TAILS_INDEX ANOMALIES_TABLE TASK_MEMBERS,
};

/* ---- the statement cache ---- */

static const char *const stmt_sql[ST_LIST_FIRST] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT drv_mark",
    [ST_RELEASE] = "RELEASE drv_mark",
    [ST_ROLLBACK_TO] = "ROLLBACK TO drv_mark",
    [ST_RUN_INSERT] = "INSERT INTO runs (id, name, created_at) VALUES (?1, ?2, ?3)",
    [ST_RUN_BUMP] = "UPDATE runs SET submitted = submitted + ?2 WHERE id = ?1",
    [ST_TASK_INSERT] =
        "INSERT INTO tasks (id, run_id, name, argv, env, cwd, requirements, priority, timeout_s,"
        " max_retries, retry_on_failure, model_id, family, test_type, batch_size, labels, state,"
        " attempts, submitted_at, after_tests, run_anyway, lock_names, run_alone, skip_exit_code,"
        " disabled, not_idempotent, members, batch_of) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
        " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26,"
        " ?27, ?28)",
    [ST_TASK_UPDATE] = "UPDATE tasks SET state = ?1, attempts = ?2, worker = ?3, reason = ?4,"
                       " finished_at = ?5, exit_code = ?6, signal = ?7, duration_s = ?8"
                       " WHERE id = ?9",
    [ST_ATTEMPT_BEGIN] = "INSERT INTO attempts (task_id, attempt, worker, state, assigned_at)"
                         " VALUES (?1, ?2, ?3, 'assigned', ?4)",
    [ST_ATTEMPT_STATE] = "SELECT state FROM attempts WHERE task_id = ?1 AND attempt = ?2",
    [ST_ATTEMPT_STARTED] = "UPDATE attempts SET state = 'running', started_at = ?3"
                           " WHERE task_id = ?1 AND attempt = ?2 AND state = 'assigned'",
    [ST_ATTEMPT_ABANDON] = "UPDATE attempts SET state = 'abandoned'"
                           " WHERE task_id = ?1 AND attempt = ?2"
                           " AND (state = 'assigned' OR state = 'running')",
    [ST_ATTEMPT_ABANDON_WHY] = "UPDATE attempts SET state = 'abandoned', reason = ?3"
                               " WHERE task_id = ?1 AND attempt = ?2"
                               " AND (state = 'assigned' OR state = 'running')",
    [ST_ATTEMPT_FINISH] =
        "UPDATE attempts SET state = 'finished', finished_at = ?3, exit_code = ?4, signal = ?5,"
        " timed_out = ?6, infra_failure = ?7, duration_s = ?8, peak_memory_kb = ?9,"
        " output_tail = ?10, stderr_tail = ?11 WHERE task_id = ?1 AND attempt = ?2"
        " AND (state = 'assigned' OR state = 'running')",
    [ST_WORKER_UPSERT] =
        "INSERT INTO workers (name, capabilities, slots, labels, health, health_reason,"
        " first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)"
        " ON CONFLICT (name) DO UPDATE SET capabilities = excluded.capabilities,"
        " slots = excluded.slots, labels = excluded.labels, health = excluded.health,"
        " health_reason = excluded.health_reason, last_seen = excluded.last_seen",
    [ST_WORKER_HEALTH] = "UPDATE workers SET health = ?2, health_reason = ?3, last_seen = ?4"
                         " WHERE name = ?1",
    [ST_EVENT] = "INSERT INTO events (t, kind, task_id, worker, message)"
                 " VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_SERIES_ADD] = "INSERT OR IGNORE INTO sample_series (id, name, key) VALUES (?1, ?2, ?3)",
    [ST_SAMPLE] = "INSERT OR REPLACE INTO samples (series, res, t, value) VALUES (?1, ?2, ?3, ?4)",
    [ST_SAMPLE_PRUNE] = "DELETE FROM samples WHERE series = ?1 AND res = ?2 AND t < ?3",
    [ST_ATTEMPT_BEGIN_COPY] =
        "INSERT INTO attempts (task_id, attempt, worker, state, assigned_at, copy_of)"
        " VALUES (?1, ?2, ?3, 'assigned', ?4, ?5)",
    [ST_ATTEMPT_SUPERSEDE] =
        "UPDATE attempts SET superseded_by = ?3, reason = COALESCE(?4, reason),"
        " state = CASE WHEN state = 'assigned' OR state = 'running' THEN 'abandoned' ELSE state END"
        " WHERE task_id = ?1 AND attempt = ?2 AND superseded_by IS NULL",
    [ST_LEARNED_FLEET_SAVE] = "INSERT OR REPLACE INTO learned_fleet (kind, key, family, value, n)"
                              " VALUES (?1, ?2, ?3, ?4, ?5)",
    /* mon3: a forgotten worker's series; the anomalies (sampler.c). */
    [ST_SERIES_REMOVE] = "DELETE FROM sample_series WHERE id = ?1",
    [ST_SERIES_SAMPLES_REMOVE] = "DELETE FROM samples WHERE series = ?1",
    [ST_ANOMALY_SAVE] = "INSERT OR REPLACE INTO anomalies"
                        " (id, kind, severity, worker, summary, evidence, start_t, end_t)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_ANOMALY_PRUNE] = "DELETE FROM anomalies WHERE end_t > 0 AND end_t < ?1",
    /* srv: retention (store_retention.c). A finished run goes in batches of its tests
     * (ids up to ?2), attempts first (they refer to their test), then the run. Events by
     * time (the metrics history has its own retention: sampler.c). */
    [ST_PRUNE_ATTEMPTS] = "DELETE FROM attempts WHERE task_id IN"
                          " (SELECT id FROM tasks WHERE run_id = ?1 AND id <= ?2)",
    [ST_PRUNE_TASKS] = "DELETE FROM tasks WHERE run_id = ?1 AND id <= ?2",
    [ST_PRUNE_RUN] = "DELETE FROM runs WHERE id = ?1"
                     " AND NOT EXISTS (SELECT 1 FROM tasks WHERE run_id = ?1)",
    [ST_PRUNE_EVENTS] = "DELETE FROM events WHERE id IN"
                        " (SELECT id FROM events WHERE t < ?1 ORDER BY t LIMIT ?2)",
    [ST_VACUUM_STEP] = "PRAGMA incremental_vacuum(" DRV_STORE_VACUUM_PAGES_TEXT ")",
    [ST_WORKER_INSTANCE] = "UPDATE workers SET instance = ?2 WHERE name = ?1",
    /* codec (issue 11): output tails of attempts finished before ?1, in runs open or
     * not, oldest first, ?2 at a time (the partial index attempts_tails finds them). */
    [ST_PRUNE_TAILS] = "UPDATE attempts SET output_tail = NULL, stderr_tail = NULL"
                       " WHERE (task_id, attempt) IN (SELECT task_id, attempt FROM attempts"
                       " WHERE " DRV_STORE_HAS_TAIL " AND finished_at < ?1"
                       " ORDER BY finished_at LIMIT ?2)",
    [ST_TASK_BATCH_OF] = "UPDATE tasks SET batch_of = ?2 WHERE id = ?1",
    [ST_LEARNED_SAVE] = "INSERT OR REPLACE INTO learned (key, mean_s, var, n)"
                        " VALUES (?1, ?2, ?3, ?4)",
    [ST_LEARNED_LOAD] = "SELECT key, mean_s, var, n FROM learned",
    [ST_LEARNED_FLEET_LOAD] = "SELECT kind, key, family, value, n FROM learned_fleet",
    [ST_RECOVER] =
        "SELECT " DRV_STORE_TASK_COLS ", " DRV_STORE_RETRIES_USED ", " DRV_STORE_RERUNS_USED
        " FROM" DRV_STORE_TASKS_JOIN " WHERE tasks.state = 'queued' OR tasks.state = 'assigned'"
        " OR tasks.state = 'running' ORDER BY tasks.id",
    [ST_TASK_GET] =
        "SELECT " DRV_STORE_TASK_COLS " FROM" DRV_STORE_TASKS_JOIN " WHERE tasks.id = ?1",
    [ST_ATTEMPTS_OF] = "SELECT attempt, worker, state, assigned_at, started_at, finished_at,"
                       " exit_code, signal, timed_out, infra_failure, duration_s,"
                       " peak_memory_kb, output_tail, stderr_tail, reason, copy_of, superseded_by"
                       " FROM attempts"
                       " WHERE task_id = ?1"
                       " ORDER BY attempt",
    [ST_COUNT_ALL] = "SELECT " DRV_STORE_COUNTED_STATE ", count(*) FROM tasks GROUP BY 1",
    [ST_RUN_GET] = "SELECT name, created_at, submitted FROM runs WHERE id = ?1",
    [ST_RUN_COUNT] = "SELECT " DRV_STORE_COUNTED_STATE ", count(*) FROM tasks"
                     " WHERE tasks.run_id = ?1 GROUP BY 1",
    [ST_SERIES_LIST] = "SELECT id, name, key FROM sample_series ORDER BY id",
    [ST_SAMPLE_QUERY] = "SELECT (t / ?5) * ?5 AS b, avg(value) FROM samples"
                        " WHERE series = ?1 AND res = ?2 AND t >= ?3 AND t <= ?4"
                        " GROUP BY b ORDER BY b",
    [ST_WORKER_LIST] = "SELECT name, capabilities, slots, health, health_reason, first_seen,"
                       " last_seen FROM workers ORDER BY name",
    /* srv: retention. The oldest run from ?2 on, created before ?1, whose every test
     * is final (its row not 'queued') and finished before ?1. */
    [ST_PRUNE_FIND_RUN] = "SELECT r.id FROM runs r WHERE r.id >= ?2 AND r.created_at < ?1"
                          " AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.run_id = r.id"
                          " AND (t.state = 'queued' OR t.finished_at IS NULL"
                          " OR t.finished_at >= ?1)) ORDER BY r.id LIMIT 1",
    [ST_PRUNE_BATCH] = "SELECT state, count(*), max(id) FROM (SELECT id, state FROM tasks"
                       " WHERE run_id = ?1 ORDER BY id LIMIT ?2) GROUP BY state",
    [ST_PRUNE_OLD_EVENTS] =
        "SELECT count(*) FROM (SELECT 1 FROM events WHERE t < ?1 ORDER BY t LIMIT ?2)",
    [ST_PRUNE_OLD_TAILS] = "SELECT count(*) FROM (SELECT 1 FROM attempts WHERE " DRV_STORE_HAS_TAIL
                           " AND finished_at < ?1 ORDER BY finished_at LIMIT ?2)",
    /* mon3: the 1 s samples of series ?1 from the start of the ?3-second bucket (the
     * coarsest) holding its newest one, summed over it and over the ?2-second bucket
     * holding the newest. */
    [ST_SAMPLE_PARTIAL] =
        "SELECT (m / ?3) * ?3, sum(value), count(*), (m / ?2) * ?2,"
        " sum(value) FILTER (WHERE t >= (m / ?2) * ?2), count(*) FILTER (WHERE t >= (m / ?2) * ?2)"
        " FROM samples, (SELECT max(t) AS m FROM samples WHERE series = ?1 AND res = 1)"
        " WHERE series = ?1 AND res = 1 AND t >= (m / ?3) * ?3",
    [ST_ANOMALY_LIST] = "SELECT id, kind, severity, worker, summary, evidence, start_t, end_t"
                        " FROM anomalies WHERE start_t <= ?2 AND (end_t = 0 OR end_t >= ?1)"
                        " ORDER BY end_t = 0 DESC, start_t DESC, id DESC LIMIT ?3",
    [ST_ANOMALY_MAX] = "SELECT coalesce(max(id), 0) FROM anomalies",
};

/* Builds the listing query for the filter combination mask (DRV_STORE_LIST_* bits). */
static void list_sql(int mask, char *buf, size_t len)
{
    /* A final state is the row's own (and the index on run_id gives a run's rows in id
     * order). A live one is shown for a 'queued' row, or (a caller that writes it) a
     * row of its own name: the first test narrows to those rows. */
    snprintf(buf, len,
             "SELECT tasks.id, tasks.run_id, tasks.name, " DRV_STORE_LIVE_STATE
             ", " DRV_STORE_LIVE_ATTEMPTS ", tasks.priority, " DRV_STORE_LIVE_WORKER
             ", " DRV_STORE_LIVE_REASON ", tasks.submitted_at, tasks.finished_at,"
             " tasks.exit_code, tasks.signal, tasks.duration_s, tasks.batch_of,"
             " json_array_length(tasks.members) FROM" DRV_STORE_TASKS_JOIN
             " WHERE 1%s%s%s%s ORDER BY tasks.id%s LIMIT :limit OFFSET :offset",
             !(mask & DRV_STORE_LIST_STATE) ? ""
             : (mask & DRV_STORE_LIST_LIVE)
                 ? " AND (tasks.state = :state OR tasks.state = 'queued') AND " DRV_STORE_LIVE_STATE
                   " = :state"
                 : " AND tasks.state = :state",
             (mask & DRV_STORE_LIST_RUN) ? " AND tasks.run_id = :run" : "",
             (mask & DRV_STORE_LIST_PREFIX)
                 ? " AND substr(tasks.name, 1, length(:prefix)) = :prefix"
                 : "",
             (mask & DRV_STORE_LIST_WORKER) ? " AND " DRV_STORE_LIVE_WORKER " = :worker" : "",
             (mask & DRV_STORE_LIST_DESC) ? " DESC" : "");
}

/* Returns the cached statement id, preparing it on first use; NULL with err filled if
 * SQLite cannot prepare it. The statement stays owned by the store. */
sqlite3_stmt *drv_store_stmt(drv_store *s, drv_store_stmt_id id, drv_error *err)
{
    /* Writes (and the state lookup the synchronous writes make) on the write connection,
     * the rest on the read connection (the same one without a writer). */
    drv_store_conn *k = id <= ST_LEARNED_SAVE ? &s->wr : s->rd;
    if (k->stmts[id])
        return k->stmts[id];
    char buf[1024];
    const char *sql = stmt_sql[id < ST_LIST_FIRST ? id : 0];
    if (id >= ST_LIST_FIRST) {
        list_sql((int)(id - ST_LIST_FIRST), buf, sizeof buf);
        sql = buf;
    }
    if (sqlite3_prepare_v3(k->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &k->stmts[id], NULL) !=
        SQLITE_OK) {
        k->stmts[id] = NULL;
        drv_error_set(err, "%s: cannot prepare a store query: %s", s->path, sqlite3_errmsg(k->db));
        return NULL;
    }
    return k->stmts[id];
}

/* Resets st for its next use and drops its bindings (some point into the caller's
 * strings). NULL is a no-op. */
void drv_store_reset(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

/* The open transaction ended without the store's commit (a rollback, asked for or
 * made by SQLite after an error): what the store remembered of it goes too. */
static void txn_lost(drv_store *s)
{
    s->bump_op = SIZE_MAX;
    s->in_txn = false;
    s->n_marks = 0;
    s->ids = s->ids_committed;
    s->log.n_ops = s->log.n_vals = s->log.n_text = 0;
    drv_store_live_rollback(s);
}

/* Fills err with "path: what: SQLite's message" (of the read connection) and returns
 * -1. */
int drv_store_fail(drv_store *s, drv_error *err, const char *what)
{
    if (s->rd == &s->wr)
        return drv_store_write_fail(s, err, what);
    return drv_error_set(err, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->rd->db));
}

/* Fills err with "path: what: SQLite's message" (of the write connection) and returns
 * -1. When the failure ended the open transaction of the synchronous mode (SQLite rolls
 * back on I/O errors, a full disk, out of memory), the message says that the
 * uncommitted writes are gone. On the writer thread it only fills err. */
int drv_store_write_fail(drv_store *s, drv_error *err, const char *what)
{
    const char *lost = "";
    if (!s->writer && s->in_txn && sqlite3_get_autocommit(s->wr.db)) {
        txn_lost(s);
        lost = " (the open transaction was rolled back: its uncommitted writes are lost)";
    }
    return drv_error_set(err, "%s: %s: %s%s", s->path, what, sqlite3_errmsg(s->wr.db), lost);
}

/* Runs a statement that returns no rows (or whose rows are ignored) to completion and
 * resets it. Returns 0, or -1 with err filled naming what. */
static int run_stmt(drv_store *s, sqlite3_stmt *st, const char *what, drv_error *err)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE) {
        drv_store_write_fail(s, err, what);
        drv_store_reset(st);
        return -1;
    }
    drv_store_reset(st);
    return 0;
}

/* Runs the cached statement id to completion. Returns 0 or -1 with err filled. */
int drv_store_exec_cached(drv_store *s, drv_store_stmt_id id, const char *what, drv_error *err)
{
    sqlite3_stmt *st = drv_store_stmt(s, id, err);
    return st ? run_stmt(s, st, what, err) : -1;
}

/* Begins the write transaction unless one is open. Returns 0 or -1 with err filled (for
 * example "database is locked" when another connection writes past the busy timeout).
 * On the writer thread it only begins. */
int drv_store_begin_write(drv_store *s, drv_error *err)
{
    if (!sqlite3_get_autocommit(s->wr.db))
        return 0;
    if (s->writer)
        return drv_store_exec_cached(s, ST_BEGIN, "cannot begin a write transaction", err);
    if (s->in_txn)
        txn_lost(s); /* a transaction that ended without our commit was undone */
    if (drv_store_exec_cached(s, ST_BEGIN, "cannot begin a write transaction", err) < 0)
        return -1;
    s->in_txn = true;
    return 0;
}

/* ---- opening and closing ---- */

/* Runs a one-shot SQL script (no cached statement). Returns 0 or -1 with err filled. */
static int exec_script(drv_store *s, const char *sql, const char *what, drv_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->wr.db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        drv_error_set(err, "%s: %s: %s", s->path, what, msg ? msg : sqlite3_errmsg(s->wr.db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Reads one integer from a single-row query (a PRAGMA or a count). Returns 0 or -1. */
static int query_int(drv_store *s, const char *sql, int64_t *out, const char *what, drv_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->wr.db, sql, -1, &st, NULL) != SQLITE_OK) {
        drv_error_set(err, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->wr.db));
        sqlite3_finalize(st);
        return -1;
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        drv_error_set(err, "%s: %s: %s", s->path, what,
                      rc == SQLITE_DONE ? "no result" : sqlite3_errmsg(s->wr.db));
        sqlite3_finalize(st);
        return -1;
    }
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return 0;
}

/* Records a coordinator start; see store.h. */
int drv_store_epoch_begin(drv_store *s, double now, uint64_t *epoch, drv_error *err)
{
    int64_t last = 0;
    if (drv_store_begin_write(s, err) < 0 ||
        query_int(s, "SELECT coalesce(max(epoch), 0) FROM epochs", &last,
                  "cannot read the coordinator's epoch", err) < 0)
        return -1;
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO epochs (epoch, started_at) VALUES (%lld, %.6f)",
             (long long)last + 1, now);
    if (exec_script(s, sql, "cannot record the coordinator's epoch", err) < 0)
        return -1;
    *epoch = (uint64_t)last + 1;
    return 0;
}

/* Sets the connection up: WAL, synchronous level, foreign keys, busy timeout. The first
 * statement that reads the file is here, so "file is not a database" is reported here. */
static int configure(drv_store *s, const drv_store_options *opt, drv_error *err)
{
    sqlite3_busy_timeout(s->wr.db, opt->busy_timeout_ms > 0 ? opt->busy_timeout_ms : 5000);
    /* srv: a new file frees the pages retention empties (store_retention.c); it must be
     * said before WAL mode writes the first page. On an existing file it changes nothing
     * (that needs a VACUUM: docs/operations.md), and its error, if any, is the next
     * statement's to report. */
    sqlite3_exec(s->wr.db, "PRAGMA auto_vacuum = INCREMENTAL", NULL, NULL, NULL);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->wr.db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        drv_error_set(err, "%s: cannot open the store: %s", s->path, sqlite3_errmsg(s->wr.db));
        sqlite3_finalize(st);
        return -1;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)) {
        drv_error_set(err, "%s: cannot switch the store to WAL mode (journal mode stays %s)",
                      s->path, mode ? mode : "unknown");
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    /* A page cache of 64 MiB by default (SQLite's is 2 MiB): a large submission's
     * transaction then stays in memory until its commit instead of spilling pages to the
     * WAL one by one, and the hot index pages stay cached between turns. */
    char script[256];
    snprintf(script, sizeof script,
             "PRAGMA synchronous = %s; PRAGMA foreign_keys = ON; PRAGMA cache_size = -%d;"
             " PRAGMA temp_store = MEMORY;",
             opt->sync_full ? "FULL" : "NORMAL", opt->cache_kib > 0 ? opt->cache_kib : 65536);
    return exec_script(s, script, "cannot configure the store", err);
}

/* Creates or migrates the schema to DRV_STORE_SCHEMA_VERSION in one transaction, or
 * refuses a file that is newer or is some other program's database. */
static int migrate(drv_store *s, drv_error *err)
{
    if (exec_script(s, "BEGIN IMMEDIATE", "cannot read the schema", err) < 0)
        return -1;
    int64_t version, tables;
    if (query_int(s, "PRAGMA user_version", &version, "cannot read the schema version", err) < 0 ||
        query_int(s, "SELECT count(*) FROM sqlite_master", &tables, "cannot read the schema", err) <
            0)
        goto err;
    if (version > DRV_STORE_SCHEMA_VERSION) {
        drv_error_set(err,
                      "%s: the store has schema version %" PRId64
                      ", newer than this drover understands (%d); use a newer drover or "
                      "another store file",
                      s->path, version, DRV_STORE_SCHEMA_VERSION);
        goto err;
    }
    if (version < 0 || (version == 0 && tables > 0)) {
        drv_error_set(err,
                      "%s: not a drover store (an SQLite database with other tables and "
                      "schema version %" PRId64 ")",
                      s->path, version);
        goto err;
    }
    if (version == 0 && exec_script(s, schema, "cannot create the schema", err) < 0)
        goto err;
    for (int64_t v = version ? version : DRV_STORE_SCHEMA_VERSION; v < DRV_STORE_SCHEMA_VERSION;
         v++) {
        char what[96];
        snprintf(what, sizeof what,
                 "cannot migrate the schema from version %" PRId64 " to %" PRId64, v, v + 1);
        if (exec_script(s, migrations[v - 1], what, err) < 0)
            goto err;
    }
    if (version < DRV_STORE_SCHEMA_VERSION) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", DRV_STORE_SCHEMA_VERSION);
        if (exec_script(s, sql, "cannot write the schema version", err) < 0)
            goto err;
    }
    return exec_script(s, "COMMIT", "cannot write the schema", err);
err:
    sqlite3_exec(s->wr.db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* Opens with the default options: synchronous=NORMAL, 5 s busy timeout. */
drv_store *drv_store_open(const char *path, drv_error *err)
{
    return drv_store_open_with(path, NULL, err);
}

/* Opens path (see store.h). On failure everything opened so far is closed. */
drv_store *drv_store_open_with(const char *path, const drv_store_options *opt, drv_error *err)
{
    static const drv_store_options defaults = {0};
    if (!path || !*path) {
        drv_error_set(err, "store: no path given");
        return NULL;
    }
    if (!opt)
        opt = &defaults;
    /* No memory statistics: they take a global mutex on every allocation and drover
     * reads none of them. Only possible before SQLite initialises (the first open); a
     * later call is refused and changes nothing. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    drv_store *s = drv_xcalloc(1, sizeof *s);
    s->path = drv_xstrdup(path);
    int rc = sqlite3_open_v2(path, &s->wr.db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                 SQLITE_OPEN_EXRESCODE,
                             NULL);
    if (rc != SQLITE_OK) {
        drv_error_set(err, "%s: cannot open the store: %s", path,
                      s->wr.db ? sqlite3_errmsg(s->wr.db) : sqlite3_errstr(rc));
        goto err;
    }
    s->rd = &s->wr;
    s->bump_op = SIZE_MAX;
    if (configure(s, opt, err) < 0 || migrate(s, err) < 0 ||
        query_int(s, "SELECT coalesce(max(id), 0) + 1 FROM tasks", &s->ids.task,
                  "cannot read the tasks", err) < 0 ||
        query_int(s, "SELECT coalesce(max(id), 0) + 1 FROM runs", &s->ids.run,
                  "cannot read the runs", err) < 0)
        goto err;
    s->ids_committed = s->ids;
    s->runs_at_open = s->ids.run;
    drv_store_counts c; /* the one count of every row; writes keep it from here */
    if (drv_store_count(s, &c, err) < 0)
        goto err;
    drv_store_live_totals_init(s, &c);
    return s;
err:
    drv_store_close(s);
    return NULL;
}

static void conn_close(drv_store_conn *k)
{
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(k->stmts[i]);
    sqlite3_close(k->db);
}

/* Lets the writer finish what it was handed, rolls back what is uncommitted, finalizes
 * the statements, closes the file. */
void drv_store_close(drv_store *s)
{
    if (!s)
        return;
    drv_store_writer_stop(s);
    if (s->wr.db && !sqlite3_get_autocommit(s->wr.db))
        sqlite3_exec(s->wr.db, "ROLLBACK", NULL, NULL, NULL);
    conn_close(&s->rconn);
    conn_close(&s->wr);
    drv_store_log_free(&s->log);
    drv_store_live_free(s);
    free(s->marks);
    free(s->path);
    free(s);
}

/* The path given to drv_store_open. */
const char *drv_store_path(const drv_store *s)
{
    return s->path;
}

/* ---- transactions ---- */

/* Commits the open transaction, or hands the turn's writes to the writer; on failure
 * rolls it back so the store is never left half-way (see store.h). */
int drv_store_commit(drv_store *s, drv_error *err)
{
    if (s->writer)
        return drv_store_writer_commit(s, err);
    if (sqlite3_get_autocommit(s->wr.db)) {
        s->in_txn = false;
        return 0;
    }
    if (drv_store_exec_cached(s, ST_COMMIT, "cannot commit", err) < 0) {
        if (!sqlite3_get_autocommit(s->wr.db))
            sqlite3_exec(s->wr.db, "ROLLBACK", NULL, NULL, NULL);
        txn_lost(s);
        return drv_error_prefix(err, "nothing of this transaction was stored");
    }
    s->in_txn = false;
    s->n_marks = 0;
    s->ids_committed = s->ids;
    s->commits++;
    drv_store_live_commit(s);
    return 0;
}

/* Rolls back the open transaction (or drops the writes not yet handed to the writer). */
int drv_store_rollback(drv_store *s, drv_error *err)
{
    if (s->writer) {
        txn_lost(s);
        return 0;
    }
    if (sqlite3_get_autocommit(s->wr.db)) {
        s->in_txn = false;
        return 0;
    }
    int rc = drv_store_exec_cached(s, ST_ROLLBACK, "cannot roll back", err);
    if (sqlite3_get_autocommit(s->wr.db))
        txn_lost(s);
    return rc;
}

/* True while uncommitted writes exist (with the writer: writes not yet handed to it). */
bool drv_store_pending(const drv_store *s)
{
    if (s->writer)
        return s->log.n_ops > 0;
    return !sqlite3_get_autocommit(s->wr.db);
}

/* Sets a mark: where the log and the ids stand, and (synchronous) a savepoint inside
 * the (possibly new) write transaction. */
int drv_store_mark(drv_store *s, drv_error *err)
{
    if (!s->writer && (drv_store_begin_write(s, err) < 0 ||
                       drv_store_exec_cached(s, ST_SAVEPOINT, "cannot set a mark", err) < 0))
        return -1;
    if (s->n_marks == s->cap_marks) {
        s->cap_marks = s->cap_marks ? s->cap_marks * 2 : 4;
        s->marks = drv_xrealloc(s->marks, s->cap_marks * sizeof *s->marks);
    }
    s->bump_op = SIZE_MAX; /* inserts after the mark count in a statement of their own */
    s->marks[s->n_marks++] = (drv_store_mark_at){
        .n_ops = s->log.n_ops, .n_vals = s->log.n_vals, .n_text = s->log.n_text, .ids = s->ids};
    drv_store_live_mark(s);
    return 0;
}

/* Whether a mark is set (and, synchronous, its transaction still open). */
static bool mark_set(const drv_store *s)
{
    return s->n_marks > 0 && (s->writer || !sqlite3_get_autocommit(s->wr.db));
}

/* Keeps the writes since the last mark and forgets the mark; no mark: error. */
int drv_store_mark_release(drv_store *s, drv_error *err)
{
    if (!mark_set(s))
        return drv_error_set(err, "%s: release of a mark that was not set", s->path);
    if (!s->writer && drv_store_exec_cached(s, ST_RELEASE, "cannot release a mark", err) < 0)
        return -1;
    s->n_marks--;
    drv_store_live_mark_release(s);
    return 0;
}

/* Drops the writes since the last mark and forgets the mark; no mark: error. */
int drv_store_mark_undo(drv_store *s, drv_error *err)
{
    if (!mark_set(s))
        return drv_error_set(err, "%s: undo to a mark that was not set", s->path);
    if (!s->writer && (drv_store_exec_cached(s, ST_ROLLBACK_TO, "cannot undo to a mark", err) < 0 ||
                       drv_store_exec_cached(s, ST_RELEASE, "cannot undo to a mark", err) < 0))
        return -1;
    const drv_store_mark_at *m = &s->marks[--s->n_marks];
    s->bump_op = SIZE_MAX;
    if (s->writer) {
        s->log.n_ops = m->n_ops;
        s->log.n_vals = m->n_vals;
        s->log.n_text = m->n_text;
    }
    s->ids = m->ids;
    drv_store_live_mark_undo(s);
    return 0;
}

/* ---- JSON codecs ---- */

/* Encodes the NULL-terminated vector v as a JSON array into *out (free()'d by the
 * caller); v NULL gives *out NULL. what names the field in errors ("task \"x\": argv").
 * Returns 0, or -1 when a string is not valid UTF-8. */
int drv_store_strv_encode(char *const *v, char **out, const char *what, drv_error *err)
{
    *out = NULL;
    if (!v)
        return 0;
    size_t bad = 0;
    *out = drv_json_strv_dump(v, &bad); /* jansson's text, without a jansson tree */
    if (!*out)
        return drv_error_set(err, "%s[%zu]: not valid UTF-8", what, bad);
    return 0;
}

/* Decodes a JSON array of strings into a new NULL-terminated vector (*out, owned by the
 * caller: drv_strv_free); text NULL gives *out NULL. Returns 0, or -1 when text is not
 * such an array. */
int drv_store_strv_decode(const char *text, char ***out, const char *what, drv_error *err)
{
    *out = NULL;
    if (!text)
        return 0;
    json_error_t je;
    json_t *a = json_loads(text, 0, &je);
    if (!a || !json_is_array(a)) {
        json_decref(a);
        return drv_error_set(err, "%s: not a JSON array of strings", what);
    }
    size_t n = json_array_size(a);
    char **v = drv_xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        const char *str = json_string_value(json_array_get(a, i));
        if (!str) {
            drv_strv_free(v);
            json_decref(a);
            return drv_error_set(err, "%s[%zu]: not a string", what, i);
        }
        v[i] = drv_xstrdup(str);
    }
    json_decref(a);
    *out = v;
    return 0;
}

/* Requirements and capabilities are written and read by the one codec
 * (protocol/requirements_json.c); DRV_RES_STORED also takes the integer cuda_cc and
 * driver_version of files written before it. */

/* Dumps o into *out (caller frees) and drops o; o NULL (the codec failed and said why
 * in err) is -1. */
static int dump(json_t *o, char **out, const char *what, drv_error *err)
{
    if (!o)
        return -1;
    *out = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return *out ? 0 : drv_error_set(err, "%s: cannot encode as JSON", what);
}

/* Encodes requirements r (the shape in store.h) into *out, owned by the caller. */
int drv_store_req_encode(const drv_requirements *r, const drv_tag_table *tags, char **out,
                         const char *what, drv_error *err)
{
    *out = NULL;
    if (!r->cpu_cores && !r->gpu_count && !r->cuda_cc && !r->driver_version && !r->memory_mb &&
        !r->gpu_memory_mb && drv_tagset_empty(&r->all_of) && drv_tagset_empty(&r->any_of) &&
        drv_tagset_empty(&r->none_of)) {
        *out = drv_xstrdup("{}"); /* most tests ask for nothing: what dump() would write */
        return 0;
    }
    return dump(drv_requirements_json(r, tags, what, err), out, what, err);
}

/* Parses text (may be NULL) as a JSON object. Returns it (the caller decrefs), or NULL
 * with err naming what when it is not one. */
static json_t *load_object(const char *text, const char *what, drv_error *err)
{
    json_error_t je;
    json_t *o = text ? json_loads(text, 0, &je) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        drv_error_set(err, "%s: not a JSON object", what);
        return NULL;
    }
    return o;
}

/* Decodes text into *r, interning tag names into tags. */
int drv_store_req_decode(const char *text, drv_tag_table *tags, drv_requirements *r,
                         const char *what, drv_error *err)
{
    drv_requirements_init(r);
    json_t *o = load_object(text, what, err);
    if (!o)
        return -1;
    drv_tag_stage st = {tags, NULL};
    int rc = drv_requirements_read(o, what, DRV_RES_STORED, NULL, &st, r, err);
    if (rc == 0)
        rc = drv_tag_stage_commit(&st, err);
    drv_tag_stage_free(&st);
    json_decref(o);
    if (rc < 0)
        drv_requirements_init(r);
    return rc;
}

/* Encodes capabilities c into *caps_out and the non-well-known tags into *labels_out
 * (both owned by the caller). */
static int caps_encode(const drv_capabilities *c, const drv_tag_table *tags, char **caps_out,
                       char **labels_out, const char *what, drv_error *err)
{
    *caps_out = *labels_out = NULL;
    drv_capabilities labels;
    drv_capabilities_init(&labels);
    labels.tags = c->tags;
    for (int id = 0; id < DRV_TAG_WELL_KNOWN_COUNT; id++)
        drv_tagset_remove(&labels.tags, id);
    json_t *l = drv_capabilities_json(&labels, tags, what, err);
    if (!l || dump(drv_capabilities_json(c, tags, what, err), caps_out, what, err) < 0) {
        json_decref(l);
        return -1;
    }
    int rc = dump(json_incref(json_object_get(l, "tags")), labels_out, what, err);
    json_decref(l);
    if (rc < 0) {
        free(*caps_out);
        *caps_out = NULL;
    }
    return rc;
}

/* Decodes capabilities text into *c, interning tags. */
int drv_store_caps_decode(const char *text, drv_tag_table *tags, drv_capabilities *c,
                          const char *what, drv_error *err)
{
    drv_capabilities_init(c);
    json_t *o = load_object(text, what, err);
    if (!o)
        return -1;
    drv_tag_stage st = {tags, NULL};
    int rc = drv_capabilities_read(o, what, DRV_RES_STORED, NULL, &st, c, err);
    if (rc == 0)
        rc = drv_tag_stage_commit(&st, err);
    drv_tag_stage_free(&st);
    json_decref(o);
    if (rc < 0)
        drv_capabilities_init(c);
    return rc;
}

/* ---- writes ---- */

/* Binds text, or NULL for a NULL pointer. The string must outlive the step. */
/* Records a non-zero id, or NULL for 0. */
static void rec_id(drv_store *s, int64_t v)
{
    if (v)
        drv_store_rec_int(s, v);
    else
        drv_store_rec_null(s);
}

/* Records a time, or NULL for 0 (not happened). */
static void rec_time(drv_store *s, double t)
{
    if (t != 0)
        drv_store_rec_double(s, t);
    else
        drv_store_rec_null(s);
}

/* Creates a run, with the next id. */
int64_t drv_store_run_create(drv_store *s, const char *name, double created_at, drv_error *err)
{
    int64_t id = s->ids.run;
    drv_store_rec_begin(s, ST_RUN_INSERT, "cannot create a run");
    drv_store_rec_int(s, id);
    drv_store_rec_text(s, name);
    drv_store_rec_double(s, created_at);
    if (drv_store_rec_end(s, err) != SQLITE_DONE)
        return -1;
    s->ids.run = id + 1;
    drv_store_live_run_created(s, id);
    return id;
}

/* Adds one to run_id's count of tasks. With the writer, consecutive inserts into one run
 * share one statement: the value of the last one queued grows (not across a mark, which
 * may be undone, nor a commit, which handed it over). Returns 0 or -1 with err filled. */
static int bump_run(drv_store *s, int64_t run_id, drv_error *err)
{
    if (s->writer && s->bump_op != SIZE_MAX && s->bump_run == run_id) {
        s->log.vals[s->log.ops[s->bump_op].first + 1].i++;
        return 0;
    }
    drv_store_rec_begin(s, ST_RUN_BUMP, "cannot count a run's tasks");
    drv_store_rec_int(s, run_id);
    drv_store_rec_int(s, 1);
    if (drv_store_rec_end(s, err) != SQLITE_DONE)
        return -1;
    if (s->writer) {
        s->bump_op = s->log.n_ops - 1;
        s->bump_run = run_id;
    }
    return 0;
}

/* How an error names task t: by id when it has one, else by name. Written only when
 * something failed (inserting 100,000 tests must not print 500,000 strings). */
static void task_what(const drv_task *t, char *what, size_t len)
{
    if (t->id)
        snprintf(what, len, "task %" PRIu64, t->id);
    else
        snprintf(what, len, "task \"%.120s\"", t->name ? t->name : "(unnamed)");
}

/* Inserts a task (see store.h): encodes its vectors and requirements, then one INSERT
 * (the run's counter follows through a trigger, so it is all or nothing). */
int64_t drv_store_task_insert(drv_store *s, int64_t run_id, const drv_task *t,
                              const drv_tag_table *tags, double submitted_at, drv_error *err)
{
    char what[160];
    if (t->id > INT64_MAX || (int)t->state < 0 || t->state >= DRV_TASK_STATE_COUNT) {
        task_what(t, what, sizeof what);
        if (t->id > INT64_MAX)
            return drv_error_set(err, "%s: id too large for the store", what);
        return drv_error_set(err, "%s: unknown state %d", what, (int)t->state);
    }
    if (s->writer && run_id >= s->ids.run) {
        task_what(t, what, sizeof what);
        return drv_error_set(err, "%s: run %" PRId64 ": no such run", what, run_id);
    }
    if (s->writer && t->id && (int64_t)t->id < s->ids.task) {
        /* Ids below the next one may be taken: only SQLite could tell, later. */
        task_what(t, what, sizeof what);
        return drv_error_set(err, "%s: the id may be used by another task", what);
    }

    char *argv = NULL, *env = NULL, *labels = NULL, *req = NULL, *after = NULL, *locks = NULL,
         *members = NULL;
    int64_t id = -1;
    if (drv_store_strv_encode(t->argv, &argv, "argv", err) < 0 ||
        drv_store_strv_encode(t->env, &env, "env", err) < 0 ||
        drv_store_strv_encode(t->labels, &labels, "labels", err) < 0 ||
        drv_store_strv_encode(t->after, &after, "after", err) < 0 ||
        drv_store_strv_encode(t->locks, &locks, "locks", err) < 0 ||
        drv_store_strv_encode(t->members, &members, "members", err) < 0 ||
        drv_store_req_encode(&t->req, tags, &req, "requirements", err) < 0) {
        task_what(t, what, sizeof what);
        drv_error_prefix(err, "%s", what);
        goto out;
    }
    int64_t give = t->id ? (int64_t)t->id : s->ids.task;
    drv_store_rec_begin(s, ST_TASK_INSERT, "cannot insert a task");
    drv_store_rec_int(s, give);
    rec_id(s, run_id);
    drv_store_rec_text(s, t->name);
    drv_store_rec_text(s, argv);
    drv_store_rec_text(s, env);
    drv_store_rec_text(s, t->cwd);
    drv_store_rec_text(s, req);
    drv_store_rec_int(s, t->priority);
    drv_store_rec_double(s, t->timeout_s);
    drv_store_rec_int(s, t->max_retries);
    drv_store_rec_int(s, drv_task_reruns(t)); /* the column holds reruns since version 6 */
    drv_store_rec_text(s, t->model_id);
    drv_store_rec_int(s, t->family);
    drv_store_rec_text(s, t->test_type);
    drv_store_rec_int(s, t->batch_size);
    drv_store_rec_text(s, labels);
    drv_store_rec_text(s, drv_task_state_name(t->state));
    drv_store_rec_int(s, t->attempts);
    drv_store_rec_double(s, submitted_at);
    drv_store_rec_text(s, after);
    drv_store_rec_int(s, t->run_anyway);
    drv_store_rec_text(s, locks);
    drv_store_rec_int(s, t->exclusive);
    drv_store_rec_int(s, t->skip_exit_code);
    drv_store_rec_int(s, t->disabled);
    drv_store_rec_int(s, t->not_idempotent);
    drv_store_rec_text(s, members);
    rec_id(s, (int64_t)t->batch_of);
    int rc = drv_store_rec_end(s, err);
    if (rc == SQLITE_DONE && run_id && bump_run(s, run_id, err) < 0) {
        /* Synchronous only (with the writer it is queued): the insert is in SQLite's
         * transaction, the run's count is not; that transaction is not to be committed. */
        task_what(t, what, sizeof what);
        drv_error_prefix(err, "%s", what);
        goto out;
    }
    if (rc == SQLITE_DONE) {
        id = give;
        if (id >= s->ids.task)
            s->ids.task = id + 1;
        drv_store_live_insert(s, id, run_id, t->state);
    } else {
        task_what(t, what, sizeof what);
        int ext = sqlite3_extended_errcode(s->wr.db);
        if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
            drv_error_set(err, "%s: run %" PRId64 ": no such run", what, run_id);
        else if (ext == SQLITE_CONSTRAINT_PRIMARYKEY)
            drv_error_set(err, "%s: the id is already used by another task", what);
        else
            drv_error_prefix(err, "%s", what);
    }
out:
    free(argv);
    free(env);
    free(labels);
    free(req);
    free(after);
    free(locks);
    free(members);
    return id;
}

/* Writes the coordinator's view of one task. */
int drv_store_task_update_state(drv_store *s, uint64_t id, const drv_store_task_update *u,
                                drv_error *err)
{
    if ((int)u->state < 0 || u->state >= DRV_TASK_STATE_COUNT)
        return drv_error_set(err, "task %" PRIu64 ": unknown state %d", id, (int)u->state);
    drv_store_rec_begin(s, ST_TASK_UPDATE, "cannot update a task");
    drv_store_rec_text(s, drv_task_state_name(u->state));
    drv_store_rec_int(s, u->attempts);
    drv_store_rec_text(s, u->worker);
    drv_store_rec_text(s, u->reason);
    rec_time(s, u->finished_at);
    if (u->has_exit) {
        drv_store_rec_int(s, u->exit_code);
        drv_store_rec_int(s, u->signal);
        drv_store_rec_double(s, u->duration_s);
    } else {
        drv_store_rec_null(s);
        drv_store_rec_null(s);
        drv_store_rec_null(s);
    }
    drv_store_rec_int(s, (int64_t)id);
    if (drv_store_rec_end(s, err) != SQLITE_DONE)
        return drv_error_prefix(err, "task %" PRIu64, id);
    if (!s->writer && sqlite3_changes(s->wr.db) == 0)
        return drv_error_set(err, "task %" PRIu64 ": no such task", id);
    drv_store_live_update(s, (int64_t)id, u->state);
    return 0;
}

static const char *const attempt_state_names[DRV_ATTEMPT_STATE_COUNT] = {
    [DRV_ATTEMPT_ASSIGNED] = "assigned",
    [DRV_ATTEMPT_RUNNING] = "running",
    [DRV_ATTEMPT_FINISHED] = "finished",
    [DRV_ATTEMPT_ABANDONED] = "abandoned",
};

/* Names an attempt state; "?" for a value out of range. */
const char *drv_store_attempt_state_name(drv_store_attempt_state st)
{
    if ((int)st < 0 || st >= DRV_ATTEMPT_STATE_COUNT)
        return "?";
    return attempt_state_names[st];
}

/* Parses an attempt state name; -1 for NULL or an unknown name. */
int drv_store_attempt_state_parse(const char *name)
{
    for (int i = 0; name && i < DRV_ATTEMPT_STATE_COUNT; i++)
        if (strcmp(attempt_state_names[i], name) == 0)
            return i;
    return -1;
}

/* Begins an attempt; the supersede trigger abandons older open attempts. */
int drv_store_attempt_begin(drv_store *s, uint64_t task_id, uint32_t attempt, const char *worker,
                            double assigned_at, drv_error *err)
{
    if (attempt == 0)
        return drv_error_set(err, "task %" PRIu64 ": attempt numbers start at 1", task_id);
    drv_store_rec_begin(s, ST_ATTEMPT_BEGIN, "cannot begin an attempt");
    drv_store_rec_int(s, (int64_t)task_id);
    drv_store_rec_int(s, attempt);
    drv_store_rec_text(s, worker);
    drv_store_rec_double(s, assigned_at);
    int rc = drv_store_rec_end(s, err);
    if (rc == SQLITE_DONE) {
        drv_store_live_attempt(s, (int64_t)task_id, DRV_STORE_OPEN_ASSIGNED, DRV_STORE_OPEN_ANY);
        return 0;
    }
    int ext = sqlite3_extended_errcode(s->wr.db);
    if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
        return drv_error_set(err, "task %" PRIu64 " attempt %" PRIu32 ": no such task", task_id,
                             attempt);
    if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE)
        return drv_error_set(err, "task %" PRIu64 " attempt %" PRIu32 ": already begun", task_id,
                             attempt);
    return -1;
}

/* Reads the state of (task_id, attempt) (synchronous mode). Returns 1 with *state set,
 * 0 when there is no such attempt, -1 with err filled. */
static int attempt_state(drv_store *s, uint64_t task_id, uint32_t attempt,
                         drv_store_attempt_state *state, drv_error *err)
{
    sqlite3_stmt *st = drv_store_stmt(s, ST_ATTEMPT_STATE, err);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, (int64_t)task_id);
    sqlite3_bind_int64(st, 2, attempt);
    int rc = sqlite3_step(st), out;
    if (rc == SQLITE_ROW) {
        int v = drv_store_attempt_state_parse((const char *)sqlite3_column_text(st, 0));
        out = v < 0 ? drv_error_set(err, "task %" PRIu64 " attempt %" PRIu32 ": unknown state",
                                    task_id, attempt)
                    : 1;
        if (v >= 0)
            *state = (drv_store_attempt_state)v;
    } else if (rc == SQLITE_DONE) {
        out = 0;
    } else {
        out = drv_store_write_fail(s, err, "cannot read an attempt");
    }
    drv_store_reset(st);
    return out;
}

/* The common part of started/abandon/finish in the synchronous mode: looks the
 * attempt up, decides whether the transition applies (allowed is a bit mask of
 * drv_store_attempt_state), and returns 1 (apply), 0 (do not) or -1 (no such attempt,
 * or error). */
static int attempt_check(drv_store *s, uint64_t task_id, uint32_t attempt, unsigned allowed,
                         drv_store_attempt_state *prior, drv_error *err)
{
    if (drv_store_begin_write(s, err) < 0)
        return -1;
    drv_store_attempt_state cur = DRV_ATTEMPT_ASSIGNED;
    int found = attempt_state(s, task_id, attempt, &cur, err);
    if (found < 0)
        return -1;
    if (found == 0)
        return drv_error_set(err, "task %" PRIu64 " attempt %" PRIu32 ": no such attempt", task_id,
                             attempt);
    if (prior)
        *prior = cur;
    return (allowed >> cur) & 1u;
}

#define OPEN_ATTEMPT ((1u << DRV_ATTEMPT_ASSIGNED) | (1u << DRV_ATTEMPT_RUNNING))

/* After a guarded UPDATE of (task_id, attempt) that may have changed nothing: 1 when
 * it changed the row, else (synchronous mode) 0 for an attempt in another state or -1
 * when there is none. With the writer the write is only queued: 1. */
static int guarded_outcome(drv_store *s, uint64_t task_id, uint32_t attempt, unsigned allowed,
                           drv_error *err)
{
    if (s->writer || sqlite3_changes(s->wr.db) == 1)
        return 1;
    int rc = attempt_check(s, task_id, attempt, allowed, NULL, err);
    if (rc > 0) /* in a state the guard admits, yet the UPDATE did not change it */
        return drv_error_set(err, "task %" PRIu64 " attempt %" PRIu32 ": not written", task_id,
                             attempt);
    return rc;
}

/* Marks an assigned attempt as running: one guarded UPDATE. */
int drv_store_attempt_started(drv_store *s, uint64_t task_id, uint32_t attempt, double started_at,
                              drv_error *err)
{
    drv_store_rec_begin(s, ST_ATTEMPT_STARTED, "cannot record an attempt's start");
    drv_store_rec_int(s, (int64_t)task_id);
    drv_store_rec_int(s, attempt);
    drv_store_rec_double(s, started_at);
    if (drv_store_rec_end(s, err) != SQLITE_DONE)
        return -1;
    int rc = guarded_outcome(s, task_id, attempt, 1u << DRV_ATTEMPT_ASSIGNED, err);
    if (rc == 1)
        drv_store_live_attempt(s, (int64_t)task_id, DRV_STORE_OPEN_RUNNING,
                               DRV_STORE_OPEN_ASSIGNED);
    return rc;
}

/* Gives up an open attempt: one guarded UPDATE (keeping the reason when given). */
int drv_store_attempt_abandon_why(drv_store *s, uint64_t task_id, uint32_t attempt,
                                  const char *reason, drv_error *err)
{
    drv_store_rec_begin(s, reason ? ST_ATTEMPT_ABANDON_WHY : ST_ATTEMPT_ABANDON,
                        "cannot abandon an attempt");
    drv_store_rec_int(s, (int64_t)task_id);
    drv_store_rec_int(s, attempt);
    if (reason)
        drv_store_rec_text(s, reason);
    if (drv_store_rec_end(s, err) != SQLITE_DONE)
        return -1;
    int rc = guarded_outcome(s, task_id, attempt, OPEN_ATTEMPT, err);
    if (rc == 1)
        drv_store_live_attempt(s, (int64_t)task_id, DRV_STORE_OPEN_NONE, DRV_STORE_OPEN_ANY);
    return rc;
}

int drv_store_attempt_abandon(drv_store *s, uint64_t task_id, uint32_t attempt, drv_error *err)
{
    return drv_store_attempt_abandon_why(s, task_id, attempt, NULL, err);
}

/* Records a result if the attempt is open; see store.h for 1/0/-1. One result per test
 * is the common case: the guarded UPDATE alone decides (it changes the row only while
 * the attempt is open), and the state is read only when it changed nothing, to tell a
 * late or duplicate result from a missing attempt. */
int drv_store_attempt_finish(drv_store *s, uint64_t task_id, uint32_t attempt,
                             const drv_store_result *r, drv_store_attempt_state *prior,
                             drv_error *err)
{
    if (prior) {
        if (s->writer)
            return drv_error_set(err,
                                 "task %" PRIu64 " attempt %" PRIu32
                                 ": the prior state is not known while the writer runs",
                                 task_id, attempt);
        int rc = attempt_check(s, task_id, attempt, OPEN_ATTEMPT, prior, err);
        if (rc <= 0)
            return rc;
    }
    drv_store_rec_begin(s, ST_ATTEMPT_FINISH, "cannot record a result");
    drv_store_rec_int(s, (int64_t)task_id);
    drv_store_rec_int(s, attempt);
    drv_store_rec_double(s, r->finished_at);
    drv_store_rec_int(s, r->exit_code);
    drv_store_rec_int(s, r->signal);
    drv_store_rec_int(s, r->timed_out);
    drv_store_rec_int(s, r->infra_failure);
    drv_store_rec_double(s, r->duration_s);
    drv_store_rec_int(s, r->peak_memory_kb > INT64_MAX ? INT64_MAX : (int64_t)r->peak_memory_kb);
    drv_store_rec_text(s, r->output_tail);
    drv_store_rec_text(s, r->stderr_tail);
    if (drv_store_rec_end(s, err) != SQLITE_DONE)
        return -1;
    int rc = guarded_outcome(s, task_id, attempt, OPEN_ATTEMPT, err);
    if (rc == 1)
        drv_store_live_attempt(s, (int64_t)task_id, DRV_STORE_OPEN_NONE, DRV_STORE_OPEN_ANY);
    return rc;
}

/* Inserts or updates a worker. */
int drv_store_worker_upsert(drv_store *s, const drv_worker *w, const drv_tag_table *tags,
                            double now, drv_error *err)
{
    if (!w->name[0])
        return drv_error_set(err, "store: a worker without a name");
    if ((int)w->health < 0 || w->health >= DRV_HEALTH_COUNT)
        return drv_error_set(err, "worker %s: unknown health %d", w->name, (int)w->health);
    char what[96], *caps = NULL, *labels = NULL;
    snprintf(what, sizeof what, "worker %s: capabilities", w->name);
    if (caps_encode(&w->caps, tags, &caps, &labels, what, err) < 0)
        return -1;
    drv_store_rec_begin(s, ST_WORKER_UPSERT, "cannot store a worker");
    drv_store_rec_text(s, w->name);
    drv_store_rec_text(s, caps);
    drv_store_rec_int(s, w->slots);
    drv_store_rec_text(s, labels);
    drv_store_rec_text(s, drv_health_name(w->health));
    drv_store_rec_text(s, w->health_reason[0] ? w->health_reason : NULL);
    drv_store_rec_double(s, now);
    int rc =
        drv_store_rec_end(s, err) == SQLITE_DONE ? 0 : drv_error_prefix(err, "worker %s", w->name);
    free(caps);
    free(labels);
    return rc;
}

/* Sets a worker's health. */
int drv_store_worker_health(drv_store *s, const char *name, drv_health health, const char *reason,
                            double now, drv_error *err)
{
    if (!name || (int)health < 0 || health >= DRV_HEALTH_COUNT)
        return drv_error_set(err, "worker %s: bad health update", name ? name : "(null)");
    drv_store_rec_begin(s, ST_WORKER_HEALTH, "cannot update a worker's health");
    drv_store_rec_text(s, name);
    drv_store_rec_text(s, drv_health_name(health));
    drv_store_rec_text(s, reason);
    drv_store_rec_double(s, now);
    if (drv_store_rec_end(s, err) != SQLITE_DONE)
        return -1;
    if (!s->writer && sqlite3_changes(s->wr.db) == 0)
        return drv_error_set(err, "worker %s: no such worker", name);
    return 0;
}

/* Keeps a worker's process instance (exec3). */
int drv_store_worker_instance(drv_store *s, const char *name, const char *instance, drv_error *err)
{
    if (!name)
        return drv_error_set(err, "worker instance: no worker name");
    drv_store_rec_begin(s, ST_WORKER_INSTANCE, "cannot keep a worker's instance");
    drv_store_rec_text(s, name);
    drv_store_rec_text(s, instance);
    return drv_store_rec_end(s, err) != SQLITE_DONE ? -1 : 0;
}

/* py3: member test id's latest result came from batch (a rerun's). */
int drv_store_task_batch_of(drv_store *s, uint64_t id, uint64_t batch, drv_error *err)
{
    drv_store_rec_begin(s, ST_TASK_BATCH_OF, "cannot record a member test's batch");
    drv_store_rec_int(s, (int64_t)id);
    drv_store_rec_int(s, (int64_t)batch);
    return drv_store_rec_end(s, err) != SQLITE_DONE ? -1 : 0;
}

/* Appends an event. */
int64_t drv_store_event_append(drv_store *s, double t, const char *kind, uint64_t task_id,
                               const char *worker, const char *message, drv_error *err)
{
    if (!kind || !*kind)
        return drv_error_set(err, "store: an event without a kind");
    drv_store_rec_begin(s, ST_EVENT, "cannot append an event");
    drv_store_rec_double(s, t);
    drv_store_rec_text(s, kind);
    rec_id(s, (int64_t)task_id);
    drv_store_rec_text(s, worker);
    drv_store_rec_text(s, message);
    if (drv_store_rec_end(s, err) != SQLITE_DONE)
        return -1;
    return s->writer ? 0 : sqlite3_last_insert_rowid(s->wr.db);
}

/* ---- the metrics history; see store.h ---- */

int drv_store_series_add(drv_store *s, int64_t id, const char *name, const char *key,
                         drv_error *err)
{
    if (id <= 0 || !name || !*name)
        return drv_error_set(err, "store: a series needs an id > 0 and a name");
    drv_store_rec_begin(s, ST_SERIES_ADD, "cannot add a metrics series");
    drv_store_rec_int(s, id);
    drv_store_rec_text(s, name);
    drv_store_rec_text(s, key ? key : "");
    return drv_store_rec_end(s, err) == SQLITE_DONE ? 0 : -1;
}

int drv_store_sample_append(drv_store *s, int64_t series, int res, int64_t t, double value,
                            drv_error *err)
{
    drv_store_rec_begin(s, ST_SAMPLE, "cannot append a metrics sample");
    drv_store_rec_int(s, series);
    drv_store_rec_int(s, res);
    drv_store_rec_int(s, t);
    drv_store_rec_double(s, value);
    return drv_store_rec_end(s, err) == SQLITE_DONE ? 0 : -1;
}

int drv_store_sample_prune(drv_store *s, int64_t series, int res, int64_t before, drv_error *err)
{
    drv_store_rec_begin(s, ST_SAMPLE_PRUNE, "cannot delete old metrics samples");
    drv_store_rec_int(s, series);
    drv_store_rec_int(s, res);
    drv_store_rec_int(s, before);
    return drv_store_rec_end(s, err) == SQLITE_DONE ? 0 : -1;
}

int drv_store_series_list(drv_store *s, drv_store_series_fn fn, void *ctx, drv_error *err)
{
    sqlite3_stmt *st = drv_store_stmt(s, ST_SERIES_LIST, err);
    if (!st)
        return -1;
    int rc, out = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *key = (const char *)sqlite3_column_text(st, 2);
        int r = fn(ctx, sqlite3_column_int64(st, 0), name ? name : "", key ? key : "", err);
        if (r != 0) {
            out = r < 0 ? -1 : 0;
            break;
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        out = drv_store_fail(s, err, "cannot read the metrics series");
    drv_store_reset(st);
    return out;
}

int64_t drv_store_sample_query(drv_store *s, int64_t series, int res, int64_t from, int64_t to,
                               int64_t step, drv_store_point_fn fn, void *ctx, drv_error *err)
{
    if (step < 1)
        return drv_error_set(err, "store: a history step must be at least 1 s");
    sqlite3_stmt *st = drv_store_stmt(s, ST_SAMPLE_QUERY, err);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, series);
    sqlite3_bind_int(st, 2, res);
    sqlite3_bind_int64(st, 3, from);
    sqlite3_bind_int64(st, 4, to);
    sqlite3_bind_int64(st, 5, step);
    int rc;
    int64_t n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (fn(ctx, sqlite3_column_int64(st, 0), sqlite3_column_double(st, 1)) != 0)
            break;
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        n = drv_store_fail(s, err, "cannot read the metrics history");
    drv_store_reset(st);
    return n;
}

/* ---- mon3 (issue 12): partial buckets, removed series, anomalies ---- */

int drv_store_sample_partial(drv_store *s, int64_t series,
                             drv_rollup out[DRV_SERIES_RESOLUTIONS - 1], drv_error *err)
{
    memset(out, 0, (DRV_SERIES_RESOLUTIONS - 1) * sizeof *out);
    sqlite3_stmt *st = drv_store_stmt(s, ST_SAMPLE_PARTIAL, err);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, series);
    sqlite3_bind_int(st, 2, drv_series_steps[1]);
    sqlite3_bind_int(st, 3, drv_series_steps[2]);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        for (int r = 0; r < 2; r++) {
            /* columns: coarsest bucket, sum, count, then the finer one's */
            int col = r == 0 ? 3 : 0;
            out[r] = (drv_rollup){.bucket = sqlite3_column_int64(st, col),
                                  .sum = sqlite3_column_double(st, col + 1),
                                  .n = (uint32_t)sqlite3_column_int64(st, col + 2)};
        }
    int out_rc = rc == SQLITE_ROW || rc == SQLITE_DONE
                     ? 0
                     : drv_store_fail(s, err, "cannot read the newest metrics samples");
    drv_store_reset(st);
    return out_rc;
}

int drv_store_series_remove(drv_store *s, int64_t id, drv_error *err)
{
    drv_store_rec_begin(s, ST_SERIES_SAMPLES_REMOVE, "cannot delete a series' samples");
    drv_store_rec_int(s, id);
    if (drv_store_rec_end(s, err) != SQLITE_DONE)
        return -1;
    drv_store_rec_begin(s, ST_SERIES_REMOVE, "cannot delete a metrics series");
    drv_store_rec_int(s, id);
    return drv_store_rec_end(s, err) == SQLITE_DONE ? 0 : -1;
}

int drv_store_anomaly_save(drv_store *s, const drv_store_anomaly *a, drv_error *err)
{
    drv_store_rec_begin(s, ST_ANOMALY_SAVE, "cannot keep an anomaly");
    drv_store_rec_int(s, a->id);
    drv_store_rec_text(s, a->kind);
    drv_store_rec_text(s, a->severity);
    drv_store_rec_text(s, a->worker ? a->worker : "");
    drv_store_rec_text(s, a->summary ? a->summary : "");
    drv_store_rec_text(s, a->evidence ? a->evidence : "{}");
    drv_store_rec_double(s, a->start);
    drv_store_rec_double(s, a->end);
    return drv_store_rec_end(s, err) == SQLITE_DONE ? 0 : -1;
}

int drv_store_anomaly_prune(drv_store *s, double before, drv_error *err)
{
    drv_store_rec_begin(s, ST_ANOMALY_PRUNE, "cannot delete old anomalies");
    drv_store_rec_double(s, before);
    return drv_store_rec_end(s, err) == SQLITE_DONE ? 0 : -1;
}

int64_t drv_store_anomaly_list(drv_store *s, double from, double to, int64_t limit,
                               drv_store_anomaly_fn fn, void *ctx, drv_error *err)
{
    sqlite3_stmt *st = drv_store_stmt(s, ST_ANOMALY_LIST, err);
    if (!st)
        return -1;
    sqlite3_bind_double(st, 1, from);
    sqlite3_bind_double(st, 2, to);
    sqlite3_bind_int64(st, 3, limit);
    int rc;
    int64_t n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *col[5];
        for (int i = 0; i < 5; i++) {
            col[i] = (const char *)sqlite3_column_text(st, 1 + i);
            if (!col[i])
                col[i] = "";
        }
        drv_store_anomaly a = {.id = sqlite3_column_int64(st, 0),
                               .kind = col[0],
                               .severity = col[1],
                               .worker = col[2],
                               .summary = col[3],
                               .evidence = col[4],
                               .start = sqlite3_column_double(st, 6),
                               .end = sqlite3_column_double(st, 7)};
        int r = fn(ctx, &a, err);
        if (r < 0)
            n = -1;
        if (r != 0)
            break;
        n++;
    }
    if (n >= 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        n = drv_store_fail(s, err, "cannot read the anomalies");
    drv_store_reset(st);
    return n;
}

int64_t drv_store_anomaly_max_id(drv_store *s, drv_error *err)
{
    sqlite3_stmt *st = drv_store_stmt(s, ST_ANOMALY_MAX, err);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0)
                                  : drv_store_fail(s, err, "cannot read the anomalies");
    drv_store_reset(st);
    return id;
}

/* Keeps one learned duration; see store.h. */
int drv_store_learned_save(drv_store *s, const drv_learned_test *t, drv_error *err)
{
    drv_store_rec_begin(s, ST_LEARNED_SAVE, "cannot keep a learned duration");
    drv_store_rec_int(s, (int64_t)t->key);
    drv_store_rec_double(s, t->mean_s);
    drv_store_rec_double(s, t->var);
    drv_store_rec_int(s, t->n);
    if (drv_store_rec_end(s, err) != SQLITE_DONE)
        return -1;
    return 0;
}

/* Reads every learned duration; see store.h. */
int drv_store_learned_load(drv_store *s, drv_learned_fn fn, void *ctx, drv_error *err)
{
    sqlite3_stmt *st = drv_store_stmt(s, ST_LEARNED_LOAD, err);
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 n = sqlite3_column_int64(st, 3);
        drv_learned_test t = {.key = (uint64_t)sqlite3_column_int64(st, 0),
                              .mean_s = sqlite3_column_double(st, 1),
                              .var = sqlite3_column_double(st, 2),
                              .n = n < 0            ? 0
                                   : n > UINT32_MAX ? UINT32_MAX
                                                    : (uint32_t)n};
        fn(ctx, &t);
    }
    int out = rc == SQLITE_DONE ? 0 : drv_store_fail(s, err, "cannot read the learned durations");
    drv_store_reset(st);
    return out;
}

/* Keeps one fact the balancer learned of its fleet; see store.h. */
int drv_store_learned_fact_save(drv_store *s, const drv_learned_fact *f, drv_error *err)
{
    drv_store_rec_begin(s, ST_LEARNED_FLEET_SAVE, "cannot keep what was learned of the fleet");
    drv_store_rec_int(s, f->kind);
    drv_store_rec_int(s, (int64_t)f->key);
    drv_store_rec_int(s, f->family);
    drv_store_rec_double(s, f->value);
    drv_store_rec_int(s, f->n);
    if (drv_store_rec_end(s, err) != SQLITE_DONE)
        return -1;
    return 0;
}

/* Reads every kept fact of the fleet; see store.h. */
int drv_store_learned_fact_load(drv_store *s, drv_learned_fact_fn fn, void *ctx, drv_error *err)
{
    sqlite3_stmt *st = drv_store_stmt(s, ST_LEARNED_FLEET_LOAD, err);
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 kind = sqlite3_column_int64(st, 0), family = sqlite3_column_int64(st, 2),
                      n = sqlite3_column_int64(st, 4);
        drv_learned_fact f = {.kind = kind < 0 || kind > UINT32_MAX ? 0 : (uint32_t)kind,
                              .key = (uint64_t)sqlite3_column_int64(st, 1),
                              .family = family < INT32_MIN || family > INT32_MAX ? INT32_MIN
                                                                                 : (int32_t)family,
                              .value = sqlite3_column_double(st, 3),
                              .n = n < 0            ? 0
                                   : n > UINT32_MAX ? UINT32_MAX
                                                    : (uint32_t)n};
        fn(ctx, &f);
    }
    int out =
        rc == SQLITE_DONE ? 0 : drv_store_fail(s, err, "cannot read what was learned of the fleet");
    drv_store_reset(st);
    return out;
}

/* Begins a speculative copy of attempt copy_of; see store.h. */
int drv_store_attempt_begin_copy(drv_store *s, uint64_t task_id, uint32_t attempt, uint32_t copy_of,
                                 const char *worker, double assigned_at, drv_error *err)
{
    if (copy_of == 0 || attempt <= copy_of)
        return drv_error_set(err,
                             "task %" PRIu64 ": a copy of attempt %" PRIu32
                             " must have a later number, got %" PRIu32,
                             task_id, copy_of, attempt);
    drv_store_rec_begin(s, ST_ATTEMPT_BEGIN_COPY, "cannot begin a speculative copy");
    drv_store_rec_int(s, (int64_t)task_id);
    drv_store_rec_int(s, attempt);
    drv_store_rec_text(s, worker);
    drv_store_rec_double(s, assigned_at);
    drv_store_rec_int(s, copy_of);
    if (drv_store_rec_end(s, err) != SQLITE_DONE)
        return -1;
    return 0;
}

/* Gives up the copy that lost; see store.h. */
int drv_store_attempt_supersede(drv_store *s, uint64_t task_id, uint32_t attempt, uint32_t by,
                                drv_error *err)
{
    return drv_store_attempt_supersede_why(s, task_id, attempt, by, NULL, err);
}

int drv_store_attempt_supersede_why(drv_store *s, uint64_t task_id, uint32_t attempt, uint32_t by,
                                    const char *reason, drv_error *err)
{
    drv_store_rec_begin(s, ST_ATTEMPT_SUPERSEDE, "cannot supersede an attempt");
    drv_store_rec_int(s, (int64_t)task_id);
    drv_store_rec_int(s, attempt);
    drv_store_rec_int(s, by);
    if (reason)
        drv_store_rec_text(s, reason);
    else
        drv_store_rec_null(s);
    if (drv_store_rec_end(s, err) != SQLITE_DONE)
        return -1;
    return s->writer || sqlite3_changes(s->wr.db) == 1 ? 1 : 0;
}
