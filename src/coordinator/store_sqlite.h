/* store_sqlite.h - private to the store's two files (store_sqlite.c: connection,
 * schema, transactions, JSON codecs, writes; store_queries.c: reads). Nothing outside
 * src/coordinator/store_*.c includes it; the public API is store.h. */
#ifndef DRV_COORDINATOR_STORE_SQLITE_H
#define DRV_COORDINATOR_STORE_SQLITE_H

#include <jansson.h>
#include <sqlite3.h>

#include "coordinator/store.h"

/* Pages one incremental vacuum step gives back (4 KiB each). */
#define DRV_STORE_VACUUM_PAGES_TEXT "1024"

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
    ST_RUN_BUMP,
    ST_TASK_INSERT,
    ST_TASK_UPDATE,
    ST_ATTEMPT_BEGIN,
    ST_ATTEMPT_STATE,
    ST_ATTEMPT_STARTED,
    ST_ATTEMPT_ABANDON,
    ST_ATTEMPT_ABANDON_WHY, /* bal; writes come before ST_LEARNED_SAVE (drv_store_stmt) */
    ST_ATTEMPT_FINISH,
    ST_WORKER_UPSERT,
    ST_WORKER_HEALTH,
    ST_EVENT,
    ST_SERIES_ADD,
    ST_SAMPLE,
    ST_SAMPLE_PRUNE,
    ST_ATTEMPT_BEGIN_COPY, /* spec: writes, before ST_LEARNED_SAVE, the last write */
    ST_ATTEMPT_SUPERSEDE,
    ST_LEARNED_FLEET_SAVE,
    ST_PRUNE_ATTEMPTS, /* srv: retention (store_retention.c), writes */
    ST_PRUNE_TASKS,
    ST_PRUNE_RUN,
    ST_PRUNE_EVENTS,
    ST_VACUUM_STEP,
    ST_WORKER_INSTANCE, /* exec3: writes */
    ST_PRUNE_TAILS,     /* codec: tails retention, writes */
    ST_SERIES_REMOVE,   /* mon3: writes */
    ST_SERIES_SAMPLES_REMOVE,
    ST_ANOMALY_SAVE,
    ST_ANOMALY_PRUNE,
    ST_TASK_BATCH_OF, /* py3: writes */
    ST_LEARNED_SAVE,
    ST_LEARNED_LOAD,
    ST_LEARNED_FLEET_LOAD,
    ST_RECOVER,
    ST_TASK_GET,
    ST_ATTEMPTS_OF,
    ST_COUNT_ALL,
    ST_RUN_GET,
    ST_RUN_COUNT,
    ST_SERIES_LIST,
    ST_SAMPLE_QUERY,
    ST_WORKER_LIST,
    ST_PRUNE_FIND_RUN, /* srv: retention, reads */
    ST_PRUNE_BATCH,
    ST_PRUNE_OLD_EVENTS,
    ST_PRUNE_OLD_TAILS, /* codec: tails retention, reads */
    ST_SAMPLE_PARTIAL,  /* mon3: reads */
    ST_ANOMALY_LIST,
    ST_ANOMALY_MAX,
    ST_LIST_FIRST,
    ST_COUNT = ST_LIST_FIRST + 64
} drv_store_stmt_id;

/* Listing filters; LIVE: the state filtered on is queued, assigned or running (shown
 * through the open attempt) rather than final (the row's own). */
enum {
    DRV_STORE_LIST_STATE = 1,
    DRV_STORE_LIST_RUN = 2,
    DRV_STORE_LIST_PREFIX = 4,
    DRV_STORE_LIST_LIVE = 8,
    DRV_STORE_LIST_WORKER = 16, /* dash: the tests a worker ran (or runs) */
    DRV_STORE_LIST_DESC = 32    /* dash: newest first */
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
    " AND (oa.state = 'assigned' OR oa.state = 'running')" DRV_STORE_LATEST_OPEN
/* spec: while a speculative copy runs, a test has two open attempts; the latest is the
 * one a listing and recovery see (one row per test). */
#define DRV_STORE_LATEST_OPEN                                                                      \
    " AND NOT EXISTS (SELECT 1 FROM attempts AS nx WHERE nx.task_id = tasks.id"                    \
    " AND nx.attempt > oa.attempt AND (nx.state = 'assigned' OR nx.state = 'running'))"
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
    ", tasks.exit_code, tasks.signal, tasks.duration_s, " DRV_STORE_LIVE_REASON                    \
    ", tasks.after_tests, tasks.run_anyway, tasks.lock_names, tasks.run_alone,"                    \
    " tasks.skip_exit_code, tasks.disabled, tasks.not_idempotent, tasks.members, tasks.batch_of"

/* exec (issue 11): the budgets a test used, derived from its attempts (store.h, "Retry
 * budgets"): an attempt whose runner failed, or that was given up after it started
 * (its worker lost), used one of max_retries; one that failed by itself one of reruns.
 * An attempt given up before it started (handed back, moved) used nothing. Read by
 * ST_RECOVER after DRV_STORE_TASK_COLS (TC_RETRIES_USED, TC_RERUNS_USED). */
#define DRV_STORE_RETRIES_USED                                                                     \
    "(SELECT count(*) FROM attempts a WHERE a.task_id = tasks.id AND ((a.state = 'finished'"       \
    " AND coalesce(a.infra_failure, 0) <> 0) OR (a.state = 'abandoned'"                            \
    " AND a.started_at IS NOT NULL)) AND a.superseded_by IS NULL)"
#define DRV_STORE_RERUNS_USED                                                                      \
    "(SELECT count(*) FROM attempts a WHERE a.task_id = tasks.id AND a.state = 'finished'"         \
    " AND coalesce(a.infra_failure, 0) = 0 AND (coalesce(a.timed_out, 0) <> 0"                     \
    " OR coalesce(a.exit_code, 0) <> 0 OR coalesce(a.signal, 0) <> 0) AND a.superseded_by IS "     \
    "NULL)"

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
    TC_REASON,
    TC_AFTER, /* suite: ordering and exclusion (version 6) */
    TC_RUN_ANYWAY,
    TC_LOCKS,
    TC_RUN_ALONE,
    TC_SKIP_EXIT_CODE,
    TC_DISABLED,
    TC_NOT_IDEMPOTENT, /* spec: schema 7 */
    TC_MEMBERS,        /* py3: schema 9 */
    TC_BATCH_OF,
    TC_RETRIES_USED, /* ST_RECOVER only */
    TC_RERUNS_USED,  /* ST_RECOVER only */
};

typedef struct drv_store_live drv_store_live;

/* One SQLite connection and its statement cache. */
typedef struct drv_store_conn {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
} drv_store_conn;

/* Writes as data (store_writer.c): each is a cached write statement and its bound
 * values, kept until they are executed. A turn's writes are one log; in the writer's
 * mode the log is handed to the writer thread at drv_store_commit(), otherwise each
 * write is executed as soon as it is complete. Texts are copied into the log (by
 * offset, so the buffers may grow). */
typedef struct drv_store_op {
    uint32_t stmt;    /* drv_store_stmt_id */
    uint32_t n;       /* values */
    size_t first;     /* index of the first value */
    const char *what; /* static: "cannot ...", for an error */
} drv_store_op;

typedef union drv_store_val {
    int64_t i;
    double d;
    struct {
        size_t off, len;
    } t;
} drv_store_val;

typedef struct drv_store_log {
    drv_store_op *ops;
    size_t n_ops, cap_ops;
    drv_store_val *vals;
    unsigned char *types; /* SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT or SQLITE_NULL */
    size_t n_vals, cap_vals;
    char *text;
    size_t n_text, cap_text;
} drv_store_log;

/* The ids the store gives out next, kept at each commit and mark to be restored when
 * the writes since are dropped (SQLite gives the ids of rolled-back rows out again; so
 * does the store). */
typedef struct drv_store_ids {
    int64_t task, run;
} drv_store_ids;

/* A mark: where the log and the ids stood (store_writer.c also keeps them in the
 * synchronous mode, where SQLite's savepoint undoes the rows). */
typedef struct drv_store_mark_at {
    size_t n_ops, n_vals, n_text;
    drv_store_ids ids;
} drv_store_mark_at;

typedef struct drv_store_writer drv_store_writer;

struct drv_store {
    drv_store_conn wr;  /* writes; on the writer thread once it runs */
    drv_store_conn *rd; /* reads: &wr, or &rconn while the writer runs */
    drv_store_conn rconn;
    char *path;  /* owned */
    bool in_txn; /* this store began the open transaction (to notice SQLite ending it) */
    drv_store_mark_at *marks; /* open marks, innermost last */
    size_t n_marks, cap_marks;
    drv_store_ids ids, ids_committed;
    int64_t runs_at_open; /* the first run id of this process: runs below are older */
    uint64_t commits;     /* commits made (synchronous) or handed to the writer */
    drv_store_log log;    /* the writes being built (synchronous: the one being built) */
    size_t op_start;      /* where the write being built starts in log */
    size_t bump_op;       /* with the writer: the ST_RUN_BUMP op of log that the next
                             insert into bump_run adds to; SIZE_MAX: none */
    int64_t bump_run;
    drv_store_writer *writer; /* NULL: writes are executed at once (synchronous) */
    drv_store_live *live;     /* owned; store_counts.c; NULL until the first write */
};

/* store_writer.c: building a write (rec_*), and executing it. */
void drv_store_rec_begin(drv_store *s, drv_store_stmt_id id, const char *what);
void drv_store_rec_int(drv_store *s, int64_t v);
void drv_store_rec_double(drv_store *s, double v);
void drv_store_rec_text(drv_store *s, const char *v); /* NULL: NULL */
void drv_store_rec_null(drv_store *s);
/* Ends the write begun by drv_store_rec_begin(). Synchronous: executes it in the open
 * transaction (beginning one) and returns SQLite's result code (SQLITE_DONE when it
 * succeeded; sqlite3_changes() and the error are the write connection's); err is filled
 * on failure. With the writer: queues it and returns SQLITE_DONE. */
int drv_store_rec_end(drv_store *s, drv_error *err);
void drv_store_log_free(drv_store_log *log);
/* Commit, marks and close of the writer's mode (store_sqlite.c calls them when
 * s->writer is set). */
int drv_store_writer_commit(drv_store *s, drv_error *err);
void drv_store_writer_stop(drv_store *s);
/* Runs the cached write statement id (one that returns no rows) to completion. Returns
 * 0, or -1 with err filled naming what. */
int drv_store_exec_cached(drv_store *s, drv_store_stmt_id id, const char *what, drv_error *err);
/* Begins the write transaction on the write connection unless one is open. */
int drv_store_begin_write(drv_store *s, drv_error *err);

/* store_counts.c: in-memory counts by state of the runs this store created, told of
 * every successful write and of every commit, rollback and mark. */
void drv_store_live_run_created(drv_store *s, int64_t run_id);
void drv_store_live_insert(drv_store *s, int64_t id, int64_t run_id, drv_task_state st);
void drv_store_live_update(drv_store *s, int64_t id, drv_task_state st);
/* The task's open attempt changed to open (DRV_STORE_OPEN_NONE, _ASSIGNED or _RUNNING),
 * if it was only_if (DRV_STORE_OPEN_ANY: whatever it was): the guard of the write. */
enum {
    DRV_STORE_OPEN_NONE = 0,
    DRV_STORE_OPEN_ASSIGNED = 1,
    DRV_STORE_OPEN_RUNNING = 2,
    DRV_STORE_OPEN_ANY = 3
};
void drv_store_live_attempt(drv_store *s, int64_t id, int open, int only_if);
void drv_store_live_commit(drv_store *s);
void drv_store_live_rollback(drv_store *s);
void drv_store_live_mark(drv_store *s);
void drv_store_live_mark_release(drv_store *s);
void drv_store_live_mark_undo(drv_store *s);
/* The whole store's counts: set from a count at open; a task found not final at start
 * (drv_store_recover) with the state it is shown in; filled into out when known (false:
 * count by query). */
void drv_store_live_totals_init(drv_store *s, const drv_store_counts *c);
void drv_store_live_recovered(drv_store *s, int64_t id, drv_task_state shown_state);
bool drv_store_live_totals(drv_store *s, drv_store_counts *out);
/* Fills out and returns true when run_id is counted here; false: count by query. */
bool drv_store_live_counts(drv_store *s, int64_t run_id, drv_store_counts *out);
void drv_store_live_free(drv_store *s);
/* Takes tests deleted by retention out of the counts: by_state[i] tests in state i of
 * run_id (0: none), whose counts are then asked of SQLite (srv). */
void drv_store_live_pruned(drv_store *s, int64_t run_id, const uint64_t *by_state);

/* The cached statement id on its connection: a read on s->rd, a write on s->wr. */
sqlite3_stmt *drv_store_stmt(drv_store *s, drv_store_stmt_id id, drv_error *err);
void drv_store_reset(sqlite3_stmt *st);
/* A read failed: fills err from the read connection and returns -1. */
int drv_store_fail(drv_store *s, drv_error *err, const char *what);
/* A write failed: fills err from the write connection and returns -1; when SQLite ended
 * the transaction, drops what the store remembered of it (synchronous mode). */
int drv_store_write_fail(drv_store *s, drv_error *err, const char *what);

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
