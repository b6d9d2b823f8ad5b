/* store.h - the coordinator's durable state: runs, tests, attempts, workers, events and
 * the metrics history in one SQLite file.
 *
 * Durability model. The store keeps one write transaction open at a time. It is begun
 * lazily by the first write (BEGIN IMMEDIATE) and ended by drv_store_commit(), which the
 * coordinator calls once per loop turn; only once that commit is durable (at once
 * without a writer thread, see below; when drv_store_durable() reaches it with one) does
 * the coordinator acknowledge that turn's submissions and send its dispatches.
 * Rule for callers: send nothing that names a task or an attempt (an acknowledgement, a
 * dispatch) before the commit that wrote it. Otherwise a kill -9 between the send and the
 * commit lets a restarted coordinator give the same id to another test.
 *
 * The file is in WAL mode with synchronous=NORMAL by default: a committed transaction
 * survives a kill -9 of the coordinator (the failure drover must survive), because the
 * WAL frames are already in the OS page cache; it may be lost on power loss or an OS
 * crash. drv_store_options.sync_full selects synchronous=FULL (an fsync per commit),
 * durable across power loss as well. Foreign keys are enforced.
 *
 * Schema (version DRV_STORE_SCHEMA_VERSION in PRAGMA user_version). A new file gets the
 * current schema; an older one is migrated in one transaction; a newer one is refused
 * with an error naming the file and both versions. Times are seconds (REAL) as the
 * caller passes them: the store has no clock.
 *   runs(id, name, created_at, submitted)   submitted counts the run's tasks
 *   tasks(id INTEGER PRIMARY KEY, run_id, name, argv, env, cwd, requirements, priority,
 *         timeout_s, max_retries, retry_on_failure, model_id, family, test_type,
 *         batch_size, labels, state, attempts, submitted_at, finished_at, worker,
 *         exit_code, signal, duration_s, reason, after_tests, run_anyway, lock_names,
 *         run_alone, skip_exit_code, disabled, not_idempotent)   six since version 6 (suite),
 *         not_idempotent since 7 (spec)
 *   attempts(task_id, attempt, worker, state, assigned_at, started_at, finished_at,
 *         exit_code, signal, timed_out, infra_failure, duration_s, peak_memory_kb,
 *         output_tail, stderr_tail (version 6), reason (version 6: why it was abandoned
 *         when the balancer moved the test), copy_of, superseded_by (version 7); PRIMARY
 *         KEY (task_id, attempt), WITHOUT ROWID)
 *   workers(name PRIMARY KEY, capabilities, slots, labels, health, health_reason,
 *         first_seen, last_seen)
 *   events(id, t, kind, task_id, worker, message)
 *   sample_series(id, name, key), samples(series, res, t, value)   the metrics history
 *   anomalies(id, kind, severity, worker, summary, evidence, start_t, end_t)   anomalies
 *         found by the monitor, open (end_t 0) and ended (version 9, mon3)
 *   learned(key INTEGER PRIMARY KEY, mean_s, var, n)   the predictor's per-test estimates
 *   learned_fleet(kind, key, family, value, n; PRIMARY KEY (kind, key, family), WITHOUT
 *         ROWID)   what the balancer learned of its fleet (drv_learned_fact)
 * Indexes: tasks(run_id), events(t). Version 1 (an index on
 * tasks(state), attempts with a rowid and a UNIQUE index, IN-list CHECKs) is migrated to
 * 2 by rebuilding tasks and attempts; store_sqlite.c says why version 2 looks as it does. Version 3
 * adds the learned table. Version 4 changes what a row of tasks means, not the tables: see
 * "A test's state" below; rows of version 3 that say 'assigned' or 'running' while their
 * attempt is open become 'queued' (an older drover must not open such a file: it would
 * take them for tests never placed). Version 5 keys tasks_run by run alone and counts a
 * run's tasks without a trigger (the store's inserts add to runs.submitted). Version 6
 * stores a test's reruns (a count) in tasks.retry_on_failure, migrated
 * from the flag as reruns = max_retries, and adds epochs(epoch, started_at), one row per
 * coordinator start (drv_store_epoch_begin), and learned_fleet (what the balancer learned
 * of its fleet besides test durations), and replaces the metrics table with the metrics history
 * (sample_series, samples). Version 7 adds tasks.not_idempotent, attempts.copy_of and
 * .superseded_by (a speculative copy, which does not abandon the attempt it copies; the loser is
 * superseded). Version 8 adds workers.instance. Version 9 (codec) adds the partial index
 * attempts_tails (attempts with an output or stderr tail, by finished_at) for the tails
 * retention, and (mon3, issue 12) anomalies.
 *
 * Retry budgets. What a test used of max_retries and reruns is not stored as a number:
 * drv_store_recover() derives it from the attempts (store_sqlite.h,
 * DRV_STORE_RETRIES_USED), so a restart neither resets nor charges twice. A superseded
 * attempt (a speculative copy that did not give the result) charges neither budget.
 *
 * A test's state. The row of a test is written when it is submitted, when it goes back
 * to the queue (requeued: its attempt abandoned, the reason kept) and when it is final,
 * not at each assignment or start (two writes of the wide row per test, a fifth of the
 * coordinator's CPU at tens of thousands of tests per second). While a test is placed
 * its row says 'queued' and its open attempt says where it is: every query (recovery,
 * listings, one task, counts, run summaries) shows such a test in its attempt's state
 * (assigned or running), with that attempt's number and worker and no reason, which is
 * what the row said when it was written at each step. A row written with any other
 * state is shown as written.
 *
 * JSON columns (written by the store, NULL where the C value is NULL):
 *   argv, env, labels: arrays of strings (env entries are "KEY=VALUE"); strings must be
 *     valid UTF-8, anything else is refused at insert.
 *   requirements: {"cpu":N,"memory_mb":N,"gpus":N,"gpu_memory_mb":N,"cuda_cc":"8.6",
 *     "driver_version":"535.104.5","all_of":[tag names],"any_of":[...],"none_of":[...]};
 *     a member that is 0 or empty is left out. Written and read by the one codec of
 *     requirements and capabilities (protocol/requirements_json.c), so the store holds
 *     what the API shows; files written before it hold cuda_cc and driver_version as
 *     integers (86, 535104005), still read. Tags are stored by name, not id, and
 *     re-interned into the caller's drv_tag_table when read, so ids may differ.
 *   workers.capabilities: {"cpu","memory_mb","gpus","gpu_memory_mb","cuda_cc",
 *     "driver_version","tags":[every tag name]}, the same codec (cpu, memory_mb, gpus,
 *     gpu_memory_mb and tags always; cuda_cc and driver_version when known);
 *     workers.labels: a JSON array of the tags that are not well-known back-ends or
 *     browsers (id >= DRV_TAG_WELL_KNOWN_COUNT), for display.
 *
 * Attempts and late results. Every result names its (task, attempt). An attempt row is
 * 'assigned', then 'running', then either 'finished' (it has a result) or 'abandoned'
 * (the coordinator gave it up: its worker was lost past the grace period, or the test
 * was cancelled). Beginning attempt N abandons every earlier attempt of the task that
 * is still open (a trigger), so at most one attempt of a task is open when attempts are
 * begun in increasing order (as the coordinator does; the shown state relies on it). A
 * result counts only when it finishes an open attempt: drv_store_attempt_finish()
 * returns 1 then, and 0 for a duplicate or a late result from an abandoned attempt,
 * which it does not record.
 *
 * Run counts. drv_store_run_summary_get() answers from memory for the runs this store
 * created (store_counts.c: kept through every write, mark, undo and rollback, 5 bytes
 * per task inserted since the store was opened) and by query for the others.
 * drv_store_count() answers from memory too: the file is counted once at open, the
 * tests found not final are registered by drv_store_recover(), and writes move the
 * counts from there (a write to a test that is neither, which the coordinator never
 * makes, sends it back to counting by query). Both include writes not yet committed.
 *
 * Ownership: the store owns its connection and statements. Strings passed in are
 * borrowed for the call. Rows handed to a callback are owned by the store and valid only
 * during the callback, except where a function says the caller may take (move) them.
 * Structs filled for the caller (drv_store_task_detail, drv_store_run_summary) are owned
 * by the caller and released with their *_clear() function.
 *
 * The writer thread (drv_store_writer_start). By default every write is executed at
 * once in the open transaction. The coordinator starts a writer instead: writes are
 * then recorded (their values copied) and drv_store_commit() hands the turn's writes to
 * a thread of the store's own, which executes and commits them on its own connection
 * while the caller goes on; drv_store_durable() tells how far that got, and the notify
 * callback (called on the writer thread) says when it moved. Queries then read on a
 * second connection and see what is committed, not the writes still queued. Ids are
 * given by the store either way (the next task and run ids are kept in memory), so a
 * write needs no answer from SQLite; the guarded writes (started, abandon, finish) are
 * then only queued and return 1, and the caller decides from what it knows (the
 * coordinator knows which attempt of each test is open). A failure of the writer (a
 * full disk, an I/O error) rolls its transaction back and stops it; every later commit
 * or durability query returns -1 with the error.
 *
 * Not thread-safe: one store per thread (the coordinator's loop thread); the writer
 * thread is the store's own. */
#ifndef DRV_COORDINATOR_STORE_H
#define DRV_COORDINATOR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balancer/balancer.h" /* drv_learned_fact */
#include "core/error.h"
#include "core/predictor.h"
#include "core/series.h"
#include "core/tags.h"
#include "core/task.h"
#include "core/worker.h"

#define DRV_STORE_SCHEMA_VERSION 9

typedef struct drv_store drv_store;

typedef struct drv_store_options {
    bool sync_full;      /* synchronous=FULL: durable across power loss; slower commits */
    int busy_timeout_ms; /* wait this long for a lock held by another connection; 0 = 5000 */
    int cache_kib;       /* page cache; 0 = 65536 (64 MiB) */
} drv_store_options;

/* Opens (creating if needed) the store at path with the default options (see
 * drv_store_open_with). Returns NULL with err filled, naming path, on failure. */
drv_store *drv_store_open(const char *path, drv_error *err);

/* Opens (creating if needed) the store at path: WAL, the chosen synchronous level,
 * foreign keys, busy timeout, schema created or migrated. opt NULL means defaults.
 * Returns NULL with err naming path when the file cannot be opened, is not an SQLite
 * database, is not a drover store, or has a newer schema version than this drover.
 * The caller owns the store and closes it with drv_store_close(). */
drv_store *drv_store_open_with(const char *path, const drv_store_options *opt, drv_error *err);

/* Closes the store. An open (uncommitted) transaction is rolled back: its writes were
 * never acknowledged. Call drv_store_commit() first to keep them. NULL is a no-op. */
void drv_store_close(drv_store *s);

/* The path the store was opened with (owned by the store). */
const char *drv_store_path(const drv_store *s);

/* ---- transactions ---- */

/* Commits the open transaction, making every write since the last commit durable.
 * Nothing open: returns 0 and does nothing. On failure returns -1 with SQLite's message
 * in err; the transaction is rolled back, so none of its writes are in the store and
 * the caller must not acknowledge them. With the writer: hands the writes to it and
 * returns at once (durable later; see drv_store_durable), -1 only when the writer has
 * failed already. */
int drv_store_commit(drv_store *s, drv_error *err);

/* Discards every write since the last commit. Nothing open: a no-op. Returns 0, or -1
 * with err filled if SQLite refuses. */
int drv_store_rollback(drv_store *s, drv_error *err);

/* True while a write transaction is open (writes not yet committed). */
bool drv_store_pending(const drv_store *s);

/* A mark inside the open transaction, so that one request's writes can be undone
 * without losing the rest of the turn: drv_store_mark() (begins the transaction if
 * needed), then drv_store_mark_release() to keep the writes since the mark, or
 * drv_store_mark_undo() to drop them. Marks nest (last in, first out). Each returns 0,
 * or -1 with err filled. */
int drv_store_mark(drv_store *s, drv_error *err);
int drv_store_mark_release(drv_store *s, drv_error *err);
int drv_store_mark_undo(drv_store *s, drv_error *err);

/* ---- the writer thread (see above) ---- */

/* Called on the writer thread after each commit or failure of the writer, with the
 * store's mutex held: it must only signal (uv_async_send, a write to an eventfd). */
typedef void (*drv_store_notify_fn)(void *ctx);

/* Starts the writer: opens the connection for reads (an in-memory store cannot have
 * one) and the thread. Nothing may be pending (commit first). Returns 0 or -1 with err
 * filled. drv_store_close() stops it after it has written what it was handed. */
int drv_store_writer_start(drv_store *s, drv_store_notify_fn notify, void *ctx, drv_error *err);

/* No notify call after this returns (one in progress is waited for): for a caller that
 * is going away while the writer finishes. */
void drv_store_writer_quiet(drv_store *s);

/* The number of the newest commit made (without a writer) or handed to the writer: the
 * writes made before the last drv_store_commit() are durable once drv_store_durable()
 * reaches it. */
uint64_t drv_store_handed(const drv_store *s);

/* Sets *seq (may be NULL) to the number of the newest commit that is durable. Returns 0,
 * or -1 with err filled when the writer failed. */
int drv_store_durable(drv_store *s, uint64_t *seq, drv_error *err);

/* Commits and waits until everything is durable. Returns 0 or -1 with err filled. */
int drv_store_sync(drv_store *s, drv_error *err);

/* ---- writes (each joins the open transaction, beginning it if needed) ---- */

/* Creates a run named name (NULL stores NULL) at time created_at. Returns its id (> 0),
 * or -1 with err filled. */
int64_t drv_store_run_create(drv_store *s, const char *name, double created_at, drv_error *err);

/* Inserts task t as a test of run run_id (0: no run) submitted at submitted_at, with
 * state t->state and attempts t->attempts. t->id 0 gives it the next id (one more than
 * the largest ever committed or written since); any other value is used as the id (an
 * id already used fails; with the writer, any id below the next one is refused). Tag ids in t->req
 * are written by name using tags. Returns the task's id (> 0), or -1 with err filled when the run
 * does not exist, a string is not valid UTF-8, a tag id is not in tags, or SQLite fails; nothing is
 * written then. */
int64_t drv_store_task_insert(drv_store *s, int64_t run_id, const drv_task *t,
                              const drv_tag_table *tags, double submitted_at, drv_error *err);

/* A task's new state, as the coordinator decided it. Every field is written as given.
 * A placed test needs no update: its open attempt gives its state (see above). */
typedef struct drv_store_task_update {
    drv_task_state state;
    uint32_t attempts;  /* attempts started so far */
    const char *worker; /* worker of the current or last attempt; NULL: none */
    const char *reason; /* why it is in this state, for a user; NULL: none */
    double finished_at; /* when it reached a final state; 0: not finished (stored NULL) */
    bool has_exit;      /* the fields below hold the final attempt's outcome */
    int exit_code;
    int signal; /* 0: not killed by a signal */
    double duration_s;
} drv_store_task_update;

/* Writes u into task id. Returns 0, or -1 with err filled when there is no such task or
 * SQLite fails. */
int drv_store_task_update_state(drv_store *s, uint64_t id, const drv_store_task_update *u,
                                drv_error *err);
/* py3 (issue 13): member test id's latest result came from batch (its rerun's): the
 * batch's row is then reported through it. Returns 0, or -1 with err filled. */
int drv_store_task_batch_of(drv_store *s, uint64_t id, uint64_t batch, drv_error *err);

typedef enum drv_store_attempt_state {
    DRV_ATTEMPT_ASSIGNED = 0, /* sent to its worker, not started */
    DRV_ATTEMPT_RUNNING,      /* its worker started the process */
    DRV_ATTEMPT_FINISHED,     /* a result was recorded */
    DRV_ATTEMPT_ABANDONED,    /* given up by the coordinator; its result will not count */
    DRV_ATTEMPT_STATE_COUNT
} drv_store_attempt_state;

/* "assigned", "running", "finished", "abandoned"; "?" out of range. */
const char *drv_store_attempt_state_name(drv_store_attempt_state st);

/* Records that attempt number attempt (1 for the first) of task_id was assigned to
 * worker at assigned_at. Every earlier attempt of the task still open becomes
 * abandoned. Returns 0, or -1 with err filled when the task does not exist, that
 * attempt was already begun, or SQLite fails. */
int drv_store_attempt_begin(drv_store *s, uint64_t task_id, uint32_t attempt, const char *worker,
                            double assigned_at, drv_error *err);

/* Records attempt number attempt of task_id as a speculative copy of its open attempt
 * copy_of (< attempt), assigned to worker at assigned_at: unlike
 * drv_store_attempt_begin() it leaves the open attempts open. Returns 0, or -1 with
 * err filled. */
int drv_store_attempt_begin_copy(drv_store *s, uint64_t task_id, uint32_t attempt, uint32_t copy_of,
                                 const char *worker, double assigned_at, drv_error *err);
/* The other copy's result counts: marks attempt `attempt` of task_id superseded by
 * attempt `by` (abandoned if it was open; a result it has does not count). Returns 1,
 * 0 when it was superseded already or does not exist (synchronous mode), -1 with err
 * filled. */
int drv_store_attempt_supersede(drv_store *s, uint64_t task_id, uint32_t attempt, uint32_t by,
                                drv_error *err);
/* spec5: drv_store_attempt_supersede() with why, kept as the attempt's reason ("yielded":
 * a copy killed for waiting work; "replaced": a stuck worker's test killed when its copy
 * started); NULL keeps the reason it has. */
int drv_store_attempt_supersede_why(drv_store *s, uint64_t task_id, uint32_t attempt, uint32_t by,
                                    const char *reason, drv_error *err);

/* Records that the attempt's process started at started_at. Returns 1 when recorded, 0
 * when the attempt is no longer 'assigned' (already running, finished or abandoned:
 * nothing changes), -1 with err filled when there is no such attempt or SQLite fails. */
int drv_store_attempt_started(drv_store *s, uint64_t task_id, uint32_t attempt, double started_at,
                              drv_error *err);

/* Gives up an open attempt (its worker is lost for good, or the test was cancelled).
 * Returns 1 when abandoned now, 0 when it was already finished or abandoned, -1 with
 * err filled when there is no such attempt or SQLite fails. */
int drv_store_attempt_abandon(drv_store *s, uint64_t task_id, uint32_t attempt, drv_error *err);
/* drv_store_attempt_abandon() with the reason it was given up, kept on the attempt (bal:
 * "stolen" or "rebalanced" when the balancer moved the test to another worker). */
int drv_store_attempt_abandon_why(drv_store *s, uint64_t task_id, uint32_t attempt,
                                  const char *reason, drv_error *err);

/* exec (issue 11): a coordinator start. Stores epoch = the last one + 1 (1 for a new
 * file) in the open write transaction (committed by the next drv_store_commit()) and
 * writes it to *epoch. Call before the writer thread starts. Returns 0, or -1 with err
 * filled. */
int drv_store_epoch_begin(drv_store *s, double now, uint64_t *epoch, drv_error *err);

/* What a worker reported for one attempt. */
typedef struct drv_store_result {
    double finished_at;
    int exit_code;
    int signal; /* 0: none */
    bool timed_out;
    bool infra_failure; /* the runner, not the test, failed (spawn error, runner crash) */
    double duration_s;
    uint64_t peak_memory_kb;
    const char *output_tail; /* may be NULL; borrowed */
    const char *stderr_tail; /* stderr alone; may be NULL; borrowed */
} drv_store_result;

/* Records result r for (task_id, attempt) if that attempt is open (assigned or
 * running). Returns 1 when recorded now; 0 when the attempt already has a result or was
 * abandoned (a duplicate or late result: nothing changes, the caller must not count it);
 * -1 with err filled when there is no such attempt or SQLite fails. prior (may be NULL)
 * receives the attempt's state before the call when the return is 0 or 1. */
int drv_store_attempt_finish(drv_store *s, uint64_t task_id, uint32_t attempt,
                             const drv_store_result *r, drv_store_attempt_state *prior,
                             drv_error *err);

/* Inserts or updates worker w (by name): capabilities (tag names from tags), slots,
 * health and reason; first_seen is set on insert only, last_seen to now. Returns 0, or
 * -1 with err filled (empty name, a tag id not in tags, SQLite failure). */
int drv_store_worker_upsert(drv_store *s, const drv_worker *w, const drv_tag_table *tags,
                            double now, drv_error *err);

/* Sets the health of worker name (reason NULL stores NULL) and last_seen to now.
 * Returns 0, or -1 with err filled when there is no such worker or SQLite fails. */
int drv_store_worker_health(drv_store *s, const char *name, drv_health health, const char *reason,
                            double now, drv_error *err);

/* exec3 (issue 11): keeps instance (NULL stores NULL), the process of worker name's last
 * hello. Returns 0, or -1 with err filled. */
int drv_store_worker_instance(drv_store *s, const char *name, const char *instance, drv_error *err);

/* Reads the stored instance of worker name into buf (len bytes, "" when none or no such
 * worker). Returns 0, or -1 with err filled (SQLite failure). */
int drv_store_worker_instance_get(drv_store *s, const char *name, char *buf, size_t len,
                                  drv_error *err);

/* Reads the stored health of worker name into *health and its reason into reason
 * (len bytes, "" when none). Returns 1, 0 when there is no such worker, or -1 with err
 * filled (SQLite failure, an unknown health name). */
int drv_store_worker_health_get(drv_store *s, const char *name, drv_health *health, char *reason,
                                size_t len, drv_error *err);

/* Keeps test t's learned duration (replacing what was kept for its key), in the open
 * transaction. Returns 0, or -1 with err filled. */
int drv_store_learned_save(drv_store *s, const drv_learned_test *t, drv_error *err);
/* Calls fn for every kept learned duration. Returns 0, or -1 with err filled. */
int drv_store_learned_load(drv_store *s, drv_learned_fn fn, void *ctx, drv_error *err);
/* Keeps one fact the balancer learned of its fleet (replacing what was kept for its kind,
 * key and family), in the open transaction. Returns 0, or -1 with err filled. */
int drv_store_learned_fact_save(drv_store *s, const drv_learned_fact *f, drv_error *err);
/* Calls fn for every kept fact of the fleet. Returns 0, or -1 with err filled. */
int drv_store_learned_fact_load(drv_store *s, drv_learned_fact_fn fn, void *ctx, drv_error *err);

/* Appends an event at time t: kind (required, e.g. "worker_lost"), task_id (0: none),
 * worker (NULL: none), message (NULL: none). Returns the event id (> 0), or -1 with err
 * filled. */
int64_t drv_store_event_append(drv_store *s, double t, const char *kind, uint64_t task_id,
                               const char *worker, const char *message, drv_error *err);

/* ---- the metrics history (sampler.c; docs/api.md) ----
 * A series is a metric name and a key (a worker's name or a class number for per-worker
 * and per-class metrics, "" for the fleet) under an id the caller gives (ids are kept in
 * memory by the sampler, so that a write needs no answer). A sample is (series,
 * resolution in seconds, t in whole seconds, value); a second sample of the same series,
 * resolution and t replaces the first. */

/* Records series id as (name, key); an id already recorded is left as it is. Returns 0,
 * or -1 with err filled. */
int drv_store_series_add(drv_store *s, int64_t id, const char *name, const char *key,
                         drv_error *err);
/* Appends one sample. Returns 0, or -1 with err filled. */
int drv_store_sample_append(drv_store *s, int64_t series, int res, int64_t t, double value,
                            drv_error *err);
/* Deletes the samples of series at resolution res older than before. Returns 0 or -1. */
int drv_store_sample_prune(drv_store *s, int64_t series, int res, int64_t before, drv_error *err);

/* Calls fn for every recorded series, in id order (committed ones, with the writer).
 * fn returns 0 to go on, 1 to stop, -1 to fail. Returns 0, or -1 with err filled. */
typedef int (*drv_store_series_fn)(void *ctx, int64_t id, const char *name, const char *key,
                                   drv_error *err);
int drv_store_series_list(drv_store *s, drv_store_series_fn fn, void *ctx, drv_error *err);

/* Calls fn(ctx, bucket start, average) for the samples of series at resolution res with
 * from <= t <= to, averaged into buckets of step seconds (>= 1), oldest first; fn returns
 * non-zero to stop. Returns the number of points passed, or -1 with err filled. */
typedef int (*drv_store_point_fn)(void *ctx, int64_t t, double value);
int64_t drv_store_sample_query(drv_store *s, int64_t series, int res, int64_t from, int64_t to,
                               int64_t step, drv_store_point_fn fn, void *ctx, drv_error *err);

/* mon3 (issue 12): the unfinished coarser buckets of series, which a restart would
 * otherwise lose: out[r - 1] for each resolution r >= 1 (drv_series_steps) holds the
 * bucket of that resolution holding the series' newest 1 s sample, with the sum and
 * count of the 1 s samples in it (n 0: no 1 s sample). Returns 0, or -1 with err. */
int drv_store_sample_partial(drv_store *s, int64_t series,
                             drv_rollup out[DRV_SERIES_RESOLUTIONS - 1], drv_error *err);
/* mon3: forgets series id, its samples and its row (a forgotten worker's series).
 * Returns 0, or -1 with err filled. */
int drv_store_series_remove(drv_store *s, int64_t id, drv_error *err);

/* ---- anomalies (mon3, issue 12; sampler.c) ----
 * One row per anomaly the monitor found, under the id the monitor gives: written when
 * found, when its severity changes and when it ends (end_t 0 while open). Kind and
 * severity are their names (drv_anomaly_kind_name), worker "" for the fleet, evidence
 * a JSON object as GET /api/v1/anomalies shows it. */
typedef struct drv_store_anomaly {
    int64_t id;
    const char *kind, *severity, *worker, *summary, *evidence;
    double start, end; /* end 0: open */
} drv_store_anomaly;
/* Writes (or rewrites) anomaly a. Returns 0, or -1 with err filled. */
int drv_store_anomaly_save(drv_store *s, const drv_store_anomaly *a, drv_error *err);
/* Deletes the anomalies that ended before `before`. Returns 0, or -1 with err filled. */
int drv_store_anomaly_prune(drv_store *s, double before, drv_error *err);
/* Calls fn for the anomalies open at some time in [from, to] (started by to, open or
 * ended from from on), open ones first, then newest start first, at most limit; the
 * strings are the store's for the call only. fn returns 0 to go on, 1 to stop, -1 to
 * fail. Returns how many were passed, or -1 with err filled. */
typedef int (*drv_store_anomaly_fn)(void *ctx, const drv_store_anomaly *a, drv_error *err);
int64_t drv_store_anomaly_list(drv_store *s, double from, double to, int64_t limit,
                               drv_store_anomaly_fn fn, void *ctx, drv_error *err);
/* The highest anomaly id stored (0: none), or -1 with err filled. */
int64_t drv_store_anomaly_max_id(drv_store *s, drv_error *err);

/* ---- queries (see the open transaction's writes too; with the writer, what is
 * committed) ---- */

/* One non-final task found at start. task is owned by the store for the duration of
 * the callback; the callback may take it with `*mine = *r->task; drv_task_init(r->task);`
 * (the store then frees nothing of it) or copy it with drv_task_copy(). */
typedef struct drv_store_recovered {
    drv_task *task;     /* rebuilt from the row: id, state, attempts and all fields */
    int64_t run_id;     /* 0: none */
    const char *worker; /* worker of the current attempt; NULL: none */
    double submitted_at;
} drv_store_recovered;

/* Callbacks return 0 to go on, 1 to stop (the query then returns 0), or -1 to fail (the
 * query returns -1 with whatever the callback wrote into err). */
typedef int (*drv_store_recover_fn)(void *ctx, drv_store_recovered *r, drv_error *err);

/* Calls fn for every task not in a final state (queued, assigned, running: as shown,
 * with the open attempt's number and worker), in id order, with tag names re-interned
 * into tags. Returns 0, or -1 with err filled (a row
 * that cannot be rebuilt names its task id). The callback may read the store but should
 * not change tasks (SQLite does not define which rows a running query sees after they
 * change): collect what to place again and write it after this returns. */
int drv_store_recover(drv_store *s, drv_tag_table *tags, drv_store_recover_fn fn, void *ctx,
                      drv_error *err);

/* Which tasks drv_store_task_list() returns. Zero-initialised (plus state = -1) matches
 * every task. */
typedef struct drv_store_filter {
    int state;               /* a drv_task_state, or -1 for any */
    int64_t run_id;          /* 0: any run */
    const char *name_prefix; /* NULL or "": any name */
    uint32_t limit;          /* 0: no limit */
    uint32_t offset;         /* rows skipped first (by id order) */
    const char *worker;      /* NULL or "": any; else the tests on that worker (the last
                                attempt's, or the one running) */
    bool newest_first;       /* by id descending */
} drv_store_filter;

/* One task as a listing shows it; strings owned by the store, valid during the
 * callback only. */
typedef struct drv_store_task_row {
    uint64_t id;
    int64_t run_id; /* 0: none */
    const char *name;
    drv_task_state state;
    uint32_t attempts;
    int32_t priority;
    const char *worker; /* NULL: none */
    const char *reason; /* NULL: none */
    double submitted_at;
    double finished_at; /* 0: not finished */
    bool has_exit;
    int exit_code;
    int signal;
    double duration_s;
    uint64_t batch_of; /* py3: the batch that ran this member test; 0: none */
    uint32_t members;  /* py3: how many member tests this batch runs; 0: not a batch */
} drv_store_task_row;

typedef int (*drv_store_row_fn)(void *ctx, const drv_store_task_row *row, drv_error *err);

/* Calls fn for each task matching f, in id order. Returns the number of rows passed to
 * fn (>= 0), or -1 with err filled (an unknown state in f, SQLite failure, or the
 * callback's -1). */
int64_t drv_store_task_list(drv_store *s, const drv_store_filter *f, drv_store_row_fn fn, void *ctx,
                            drv_error *err);

/* One attempt of a task, owned by its drv_store_task_detail. */
typedef struct drv_store_attempt {
    uint32_t attempt;
    char *worker; /* NULL: none */
    drv_store_attempt_state state;
    double assigned_at;
    double started_at;  /* 0: not started */
    double finished_at; /* 0: no result */
    bool has_result;    /* state is FINISHED: the fields below are the result */
    int exit_code;
    int signal;
    bool timed_out;
    bool infra_failure;
    double duration_s;
    uint64_t peak_memory_kb;
    char *output_tail;      /* NULL: none */
    char *stderr_tail;      /* NULL: none (older workers, or nothing on stderr) */
    char *reason;           /* why it was abandoned when that was kept ("stolen"); NULL: none */
    uint32_t copy_of;       /* a speculative copy of this attempt; 0: not a copy */
    uint32_t superseded_by; /* lost to this attempt (state abandoned); 0: not superseded */
} drv_store_attempt;

/* A task with everything the store knows of it. Owned by the caller: release with
 * drv_store_task_detail_clear(). */
typedef struct drv_store_task_detail {
    drv_task task;
    int64_t run_id;
    double submitted_at;
    double finished_at;
    char *worker;
    char *reason;
    bool has_exit;
    int exit_code;
    int signal;
    double duration_s;
    drv_store_attempt *attempts; /* by attempt number */
    size_t n_attempts;
} drv_store_task_detail;

/* Frees what d owns and zeroes it (its task is re-initialised). NULL is a no-op. */
void drv_store_task_detail_clear(drv_store_task_detail *d);

/* Fills out (which the caller must have zeroed or cleared; its old contents are not
 * freed) with task id and its attempts, tags re-interned into tags. Returns 1 when
 * found, 0 when there is no such task (out left empty), -1 with err filled. */
int drv_store_task_get(drv_store *s, uint64_t id, drv_tag_table *tags, drv_store_task_detail *out,
                       drv_error *err);

typedef struct drv_store_counts {
    uint64_t by_state[DRV_TASK_STATE_COUNT];
    uint64_t total;
} drv_store_counts;

/* Counts the tasks of the whole store by state. Returns 0, or -1 with err filled. */
int drv_store_count(drv_store *s, drv_store_counts *out, drv_error *err);

typedef struct drv_store_run_summary {
    int64_t id;
    char *name; /* owned; NULL when the run has no name */
    double created_at;
    uint64_t submitted;
    drv_store_counts counts;
} drv_store_run_summary;

/* Frees what r owns and zeroes it. NULL is a no-op. */
void drv_store_run_summary_clear(drv_store_run_summary *r);

/* Fills out (zeroed or cleared by the caller) with run id and its tasks counted by
 * state. Returns 1 when found, 0 when there is no such run, -1 with err filled. */
int drv_store_run_summary_get(drv_store *s, int64_t run_id, drv_store_run_summary *out,
                              drv_error *err);

/* suite2 (issue 13): how flaky the tests named name were over their last limit final
 * runs (passed, failed, timed out): runs counted, and of them those that passed after
 * an own failure (a failed attempt that was not the infrastructure's). Tasks have no
 * index on name: the newest are scanned first and the scan stops at limit matches. */
typedef struct drv_store_flakiness_t {
    uint64_t runs, flaky;
} drv_store_flakiness_t;
/* py3: calls fn with the name of each member result of batch in run_id (tests with
 * batch_of = batch) committed so far. Returns how many, or -1 with err filled. */
int drv_store_batch_members(drv_store *s, int64_t run_id, uint64_t batch,
                            void (*fn)(void *ctx, const char *name), void *ctx, drv_error *err);
int drv_store_flakiness(drv_store *s, const char *name, uint32_t limit, drv_store_flakiness_t *out,
                        drv_error *err);
/* The member test called name that failed in run_id, when that run was created before
 * this store was opened (an earlier coordinator process): its id and attempts. A run of
 * this process is not looked up (the coordinator keeps its member failures in memory:
 * members.c), so the lookup costs nothing in the common case. Returns 1 found, 0 none,
 * -1 with err filled. */
int drv_store_member_failed(drv_store *s, int64_t run_id, const char *name, uint64_t *id,
                            uint32_t *attempts, drv_error *err);

/* Writes the ids of the most recent runs (at most limit, newest first) into out, which
 * holds limit ids. Returns how many, or -1 with err filled. */
int64_t drv_store_run_ids(drv_store *s, uint32_t limit, int64_t *out, drv_error *err);

/* One stored worker, rebuilt: name, caps (tags re-interned), slots, health,
 * health_reason, joined_at = first_seen; every other field zero. Owned by the store,
 * valid during the callback; copy the struct to keep it (it owns no pointers). */
typedef int (*drv_store_worker_fn)(void *ctx, const drv_worker *w, double last_seen,
                                   drv_error *err);

/* Calls fn for every stored worker, in name order. Returns 0, or -1 with err filled. */
int drv_store_worker_list(drv_store *s, drv_tag_table *tags, drv_store_worker_fn fn, void *ctx,
                          drv_error *err);

/* ---- retention (srv; store_retention.c) ----
 * What is older than a cutoff goes, in batches recorded as writes like any other (with
 * the writer they are executed on its thread, in the turn's commit):
 *   a run whose every test is final and finished before the cutoff (created before it
 *     too), with its tests and their attempts (and so their output tails);
 *   events with t before the cutoff (the metrics history has its own retention:
 *     sampler.c, --metrics-retention).
 * Runs still open keep everything, however old. A new store file has
 * auto_vacuum=INCREMENTAL and drv_store_vacuum_step() gives freed pages back to the
 * file system; on an older file (auto_vacuum none) freed pages are reused instead and
 * the step does nothing (docs/operations.md: a VACUUM converts it). */

/* What one retention step removed (or recorded for removal). */
typedef struct drv_store_pruned {
    int64_t run_id;  /* the run whose tests went (0: none) */
    uint64_t tasks;  /* tests of it removed in this step */
    bool run_gone;   /* the run itself was removed (it had no tests left) */
    uint64_t events; /* events removed */
} drv_store_pruned;

/* One step: unless *run names the run being removed already, finds the oldest run
 * prunable at cutoff (*run, 0: none; start with 0); removes up to limit of its tests
 * and, once it has none left, the run (*run back to 0); and up to limit events older
 * than cutoff (the metrics history has its own retention: sampler.c). A run once found is not
 * checked again: a finished run does not change. Reads see committed data only, so a caller with
 * the writer takes the next step only once the previous one is durable. Returns 1 when there may be
 * more to do, 0 when not, -1 with err filled. */
int drv_store_prune_step(drv_store *s, double cutoff, uint32_t limit, int64_t *run,
                         drv_store_pruned *out, drv_error *err);

/* One step of the tails retention: removes the output and stderr tails of up to limit
 * attempts that finished before cutoff, oldest first, whether their run is finished or
 * not (the attempt rows stay: only their output goes). *count says how many. Returns 1
 * when there may be more, 0 when not, -1 with err filled. */
int drv_store_prune_tails_step(drv_store *s, double cutoff, uint32_t limit, uint64_t *count,
                               drv_error *err);

/* Records an incremental vacuum step (pages freed by earlier deletions go back to the
 * file system). Returns 0 or -1 with err filled. */
int drv_store_vacuum_step(drv_store *s, drv_error *err);

#endif
