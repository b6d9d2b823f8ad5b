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
    ST_COUNT = ST_LIST_FIRST + 8
} drv_store_stmt_id;

enum { DRV_STORE_LIST_STATE = 1, DRV_STORE_LIST_RUN = 2, DRV_STORE_LIST_PREFIX = 4 };

/* The columns a full task is rebuilt from, in the order of enum drv_store_task_col. */
#define DRV_STORE_TASK_COLS                                                                        \
    "id, run_id, name, argv, env, cwd, requirements, priority, timeout_s, max_retries,"            \
    " retry_on_failure, model_id, family, test_type, batch_size, labels, state, attempts,"         \
    " submitted_at, finished_at, worker, exit_code, signal, duration_s, reason"

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
