/* store_sqlite.h - private to the store's two files (store_sqlite.c: connection,
 * schema, transactions, JSON codecs, writes; store_queries.c: reads). Nothing outside
 * src/coordinator/store_*.c includes it; the public API is store.h. */
#ifndef DRV_COORDINATOR_STORE_SQLITE_H
#define DRV_COORDINATOR_STORE_SQLITE_H

#include <jansson.h>
#include <sqlite3.h>

#include "coordinator/store.h"

/* Cached statements. ST_LIST_FIRST + mask is the listing query for a filter
 * combination (mask of DRV_STORE_LIST_*). */
typedef enum drv_store_stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_RUN_INSERT,
    ST_TASK_INSERT,
    ST_TASK_UPDATE,
    ST_ATTEMPT_BEGIN,
    ST_ATTEMPT_STATE,
    ST_ATTEMPT_STARTED,
    ST_ATTEMPT_ABANDON,
    ST_ATTEMPT_FINISH,
    ST_WORKER_UPSERT,
    ST_WORKER_HEALTH,
    ST_EVENT,
    ST_METRIC,
    ST_LEARNED_SAVE,
    ST_LEARNED_LOAD,
    ST_RECOVER,
    ST_TASK_GET,
    ST_ATTEMPTS_OF,
    ST_COUNT_ALL,
    ST_RUN_GET,
    ST_RUN_COUNT,
    ST_WORKER_LIST,
    ST_LIST_FIRST,
    ST_COUNT = ST_LIST_FIRST + 16
} drv_store_stmt_id;

/* Listing filters; LIVE: the state filtered on is queued, assigned or running (shown
 * through the open attempt) rather than final (the row's own). */
enum {
    DRV_STORE_LIST_STATE = 1,
    DRV_STORE_LIST_RUN = 2,
    DRV_STORE_LIST_PREFIX = 4,
    DRV_STORE_LIST_LIVE = 8
};

/* A task's live state is not written into its row (schema 4): while a test is placed
 * its row stays 'queued' and its open attempt (assigned or running; at most one, as
 * attempts are begun in increasing order and a new one supersedes the older open ones)
 * says where it is. Every query that shows a task reads it through this join, which
 * finds the open attempt of a 'queued' row only, and the
 * DRV_STORE_LIVE_* expressions below: state, attempts, worker and reason as the row would
 * hold them had it been written at each assignment and start (reason NULL then). */
#define DRV_STORE_TASKS_JOIN                                                                       \
    " tasks LEFT JOIN attempts AS oa ON tasks.state = 'queued' AND oa.task_id = tasks.id"          \
    " AND (oa.state = 'assigned' OR oa.state = 'running')"
#define DRV_STORE_LIVE_STATE "coalesce(oa.state, tasks.state)"
/* The same state without the join, for counts over many rows: the lookup is made for
 * 'queued' rows only (SQLite makes the join's for every row: 4 times the plain count's
 * time over final tests, this twice). */
#define DRV_STORE_COUNTED_STATE                                                                    \
    "CASE WHEN tasks.state = 'queued' THEN coalesce((SELECT a.state FROM attempts a"               \
    " WHERE a.task_id = tasks.id AND (a.state = 'assigned' OR a.state = 'running')), 'queued')"    \
    " ELSE tasks.state END"
#define DRV_STORE_LIVE_ATTEMPTS "coalesce(oa.attempt, tasks.attempts)"
#define DRV_STORE_LIVE_WORKER   "CASE WHEN oa.state IS NULL THEN tasks.worker ELSE oa.worker END"
#define DRV_STORE_LIVE_REASON   "CASE WHEN oa.state IS NULL THEN tasks.reason END"

/* The columns a full task is rebuilt from (FROM DRV_STORE_TASKS_JOIN), in the order of
 * enum drv_store_task_col. */
#define DRV_STORE_TASK_COLS                                                                        \
    "tasks.id, tasks.run_id, tasks.name, tasks.argv, tasks.env, tasks.cwd, tasks.requirements,"    \
    " tasks.priority, tasks.timeout_s, tasks.max_retries, tasks.retry_on_failure,"                 \
    " tasks.model_id, tasks.family, tasks.test_type, tasks.batch_size, "                           \
    "tasks.labels, " DRV_STORE_LIVE_STATE ", " DRV_STORE_LIVE_ATTEMPTS                             \
    ", tasks.submitted_at, tasks.finished_at, " DRV_STORE_LIVE_WORKER                              \
    ", tasks.exit_code, tasks.signal, tasks.duration_s, " DRV_STORE_LIVE_REASON

enum drv_store_task_col {
    TC_ID,
    TC_RUN_ID,
    TC_NAME,
    TC_ARGV,
    TC_ENV,
    TC_CWD,
    TC_REQUIREMENTS,
    TC_PRIORITY,
    TC_TIMEOUT_S,
    TC_MAX_RETRIES,
    TC_RETRY_ON_FAILURE,
    TC_MODEL_ID,
    TC_FAMILY,
    TC_TEST_TYPE,
    TC_BATCH_SIZE,
    TC_LABELS,
    TC_STATE,
    TC_ATTEMPTS,
    TC_SUBMITTED_AT,
    TC_FINISHED_AT,
    TC_WORKER,
    TC_EXIT_CODE,
    TC_SIGNAL,
    TC_DURATION_S,
    TC_REASON
};

typedef struct drv_store_live drv_store_live;

struct drv_store {
    sqlite3 *db;
    char *path;  /* owned */
    bool in_txn; /* this store began the open transaction (to notice SQLite ending it) */
    int marks;   /* savepoints set inside it */
    sqlite3_stmt *stmts[ST_COUNT];
    drv_store_live *live; /* owned; store_counts.c; NULL until the first write */
};

/* store_counts.c: in-memory counts by state of the runs this store created, told of
 * every successful write and of every commit, rollback and mark. */
void drv_store_live_run_created(drv_store *s, int64_t run_id);
void drv_store_live_insert(drv_store *s, int64_t id, int64_t run_id, drv_task_state st);
void drv_store_live_update(drv_store *s, int64_t id, drv_task_state st);
/* The task's open attempt changed: DRV_STORE_OPEN_NONE, _ASSIGNED or _RUNNING. */
enum { DRV_STORE_OPEN_NONE = 0, DRV_STORE_OPEN_ASSIGNED = 1, DRV_STORE_OPEN_RUNNING = 2 };
void drv_store_live_attempt(drv_store *s, int64_t id, int open);
void drv_store_live_commit(drv_store *s);
void drv_store_live_rollback(drv_store *s);
void drv_store_live_mark(drv_store *s);
void drv_store_live_mark_release(drv_store *s);
void drv_store_live_mark_undo(drv_store *s);
/* Fills out and returns true when run_id is counted here; false: count by query. */
bool drv_store_live_counts(drv_store *s, int64_t run_id, drv_store_counts *out);
void drv_store_live_free(drv_store *s);

sqlite3_stmt *drv_store_stmt(drv_store *s, drv_store_stmt_id id, drv_error *err);
void drv_store_reset(sqlite3_stmt *st);
int drv_store_fail(drv_store *s, drv_error *err, const char *what);

int drv_store_strv_encode(char *const *v, char **out, const char *what, drv_error *err);
int drv_store_strv_decode(const char *text, char ***out, const char *what, drv_error *err);
int drv_store_req_encode(const drv_requirements *r, const drv_tag_table *tags, char **out,
                         const char *what, drv_error *err);
int drv_store_req_decode(const char *text, drv_tag_table *tags, drv_requirements *r,
                         const char *what, drv_error *err);
int drv_store_caps_decode(const char *text, drv_tag_table *tags, drv_capabilities *c,
                          const char *what, drv_error *err);
int drv_store_attempt_state_parse(const char *name);

#endif
