/* store_writer.c - the store's writes as data, and the thread that executes them.
 *
 * Every write function (store_sqlite.c) builds its statement's values into a log
 * (drv_store_rec_*) instead of binding them. Without a writer the write is executed at
 * once, in the open transaction, and the log is emptied again: the store behaves as a
 * plain SQLite connection. With a writer (drv_store_writer_start), the log grows through
 * the loop turn and drv_store_commit() hands it to the writer thread, which executes the
 * logs handed since its last commit in one transaction on its own connection and
 * commits; the loop learns of it through the notify callback and drv_store_durable().
 * The loop thread keeps reading on a second connection, which sees what is committed.
 *
 * Why: executing the statements was about 55% of the coordinator's loop thread at tens
 * of thousands of tests per second (bench/e2e.sh); on its own thread it runs beside the
 * loop's parsing, placing and framing, on the machine's other core.
 *
 * A failure on the writer thread (a full disk, an I/O error) rolls its transaction back
 * and stops the writer: every later call that asks for durability reports it, and the
 * coordinator exits (nothing of that transaction was acknowledged). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/store_sqlite.h"

/* A handed log and its commit sequence number. */
typedef struct handed_log {
    struct handed_log *next;
    uint64_t seq;
    drv_store_log log;
} handed_log;

struct drv_store_writer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work;    /* logs handed, or stop */
    pthread_cond_t settled; /* durable advanced, or failed */
    handed_log *head, *tail;
    uint64_t handed;  /* loop thread only */
    uint64_t durable; /* under mu */
    bool stop;        /* under mu */
    bool failed;      /* under mu; err says why */
    drv_error err;
    drv_store_notify_fn notify;
    void *ctx;
};

/* ---- building a write ---- */

static void reserve_vals(drv_store_log *l, size_t more)
{
    if (l->n_vals + more <= l->cap_vals)
        return;
    size_t cap = l->cap_vals ? l->cap_vals * 2 : 64;
    while (cap < l->n_vals + more)
        cap *= 2;
    l->vals = drv_xrealloc(l->vals, cap * sizeof *l->vals);
    l->types = drv_xrealloc(l->types, cap);
    l->cap_vals = cap;
}

void drv_store_rec_begin(drv_store *s, drv_store_stmt_id id, const char *what)
{
    drv_store_log *l = &s->log;
    if (l->n_ops == l->cap_ops) {
        l->cap_ops = l->cap_ops ? l->cap_ops * 2 : 16;
        l->ops = drv_xrealloc(l->ops, l->cap_ops * sizeof *l->ops);
    }
    l->ops[l->n_ops] =
        (drv_store_op){.stmt = (uint32_t)id, .n = 0, .first = l->n_vals, .what = what};
    s->op_start = l->n_ops;
}

static drv_store_val *push(drv_store *s, int type)
{
    drv_store_log *l = &s->log;
    reserve_vals(l, 1);
    l->types[l->n_vals] = (unsigned char)type;
    l->ops[s->op_start].n++;
    return &l->vals[l->n_vals++];
}

void drv_store_rec_int(drv_store *s, int64_t v)
{
    push(s, SQLITE_INTEGER)->i = v;
}

void drv_store_rec_double(drv_store *s, double v)
{
    push(s, SQLITE_FLOAT)->d = v;
}

void drv_store_rec_null(drv_store *s)
{
    push(s, SQLITE_NULL)->i = 0;
}

void drv_store_rec_text(drv_store *s, const char *v)
{
    if (!v) {
        drv_store_rec_null(s);
        return;
    }
    drv_store_log *l = &s->log;
    size_t len = strlen(v);
    if (l->n_text + len > l->cap_text) {
        size_t cap = l->cap_text ? l->cap_text * 2 : 4096;
        while (cap < l->n_text + len)
            cap *= 2;
        l->text = drv_xrealloc(l->text, cap);
        l->cap_text = cap;
    }
    memcpy(l->text + l->n_text, v, len);
    drv_store_val *x = push(s, SQLITE_TEXT);
    x->t.off = l->n_text;
    x->t.len = len;
    l->n_text += len;
}

/* Binds op's values from log to st. */
static void bind_op(sqlite3_stmt *st, const drv_store_log *log, const drv_store_op *op)
{
    for (uint32_t i = 0; i < op->n; i++) {
        const drv_store_val *v = &log->vals[op->first + i];
        int k = (int)i + 1;
        switch (log->types[op->first + i]) {
        case SQLITE_INTEGER:
            sqlite3_bind_int64(st, k, v->i);
            break;
        case SQLITE_FLOAT:
            sqlite3_bind_double(st, k, v->d);
            break;
        case SQLITE_TEXT:
            sqlite3_bind_text(st, k, log->text + v->t.off, (int)v->t.len, SQLITE_STATIC);
            break;
        default:
            sqlite3_bind_null(st, k);
            break;
        }
    }
}

/* Executes one operation. Returns SQLite's result code (SQLITE_DONE: done); err is
 * filled otherwise. The statement is reset; sqlite3_changes() still tells its count. */
static int exec_op(drv_store *s, const drv_store_log *log, const drv_store_op *op, drv_error *err)
{
    sqlite3_stmt *st = drv_store_stmt(s, (drv_store_stmt_id)op->stmt, err);
    if (!st)
        return SQLITE_ERROR;
    bind_op(st, log, op);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE)
        drv_store_write_fail(s, err, op->what);
    /* Every operation binds all of its statement's parameters: no clearing needed, and
     * the texts bound are the log's, which outlives the statement's next use. */
    sqlite3_reset(st);
    return rc;
}

int drv_store_rec_end(drv_store *s, drv_error *err)
{
    drv_store_log *l = &s->log;
    l->n_ops = s->op_start + 1;
    if (s->writer)
        return SQLITE_DONE;
    int rc = drv_store_begin_write(s, err) < 0 ? SQLITE_ERROR : exec_op(s, l, &l->ops[0], err);
    l->n_ops = l->n_vals = l->n_text = 0;
    return rc;
}

/* Executes log's operations on the write connection, in its transaction. Returns 0 or
 * -1 with err filled. */
static int log_apply(drv_store *s, const drv_store_log *log, drv_error *err)
{
    for (size_t i = 0; i < log->n_ops; i++)
        if (exec_op(s, log, &log->ops[i], err) != SQLITE_DONE)
            return -1;
    return 0;
}

void drv_store_log_free(drv_store_log *log)
{
    free(log->ops);
    free(log->vals);
    free(log->types);
    free(log->text);
    memset(log, 0, sizeof *log);
}

/* ---- the writer thread ---- */

/* Executes the handed logs in list in one transaction and commits. */
static int write_logs(drv_store *s, handed_log *list, drv_error *err)
{
    if (drv_store_begin_write(s, err) < 0)
        return -1;
    for (handed_log *h = list; h; h = h->next)
        if (log_apply(s, &h->log, err) < 0)
            goto fail;
    if (drv_store_exec_cached(s, ST_COMMIT, "cannot commit", err) < 0)
        goto fail;
    return 0;
fail:
    if (!sqlite3_get_autocommit(s->wr.db))
        sqlite3_exec(s->wr.db, "ROLLBACK", NULL, NULL, NULL);
    return drv_error_prefix(err, "nothing of this transaction was stored");
}

static void *writer_main(void *arg)
{
    drv_store *s = arg;
    drv_store_writer *w = s->writer;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->work, &w->mu);
        if (!w->head || w->failed)
            break;
        handed_log *list = w->head;
        w->head = w->tail = NULL;
        pthread_mutex_unlock(&w->mu);

        drv_error err = {0};
        int rc = write_logs(s, list, &err);
        uint64_t last = 0;
        while (list) {
            handed_log *h = list;
            list = h->next;
            last = h->seq;
            drv_store_log_free(&h->log);
            free(h);
        }

        pthread_mutex_lock(&w->mu);
        if (rc < 0) {
            w->failed = true;
            w->err = err;
        } else {
            w->durable = last;
        }
        pthread_cond_broadcast(&w->settled);
        if (w->notify) /* under the mutex: drv_store_writer_quiet() waits for it */
            w->notify(w->ctx);
        if (w->failed)
            break;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int drv_store_writer_start(drv_store *s, drv_store_notify_fn notify, void *ctx, drv_error *err)
{
    if (s->writer)
        return drv_error_set(err, "%s: the writer is already running", s->path);
    if (drv_store_pending(s))
        return drv_error_set(err, "%s: commit before starting the writer", s->path);
    const char *file = sqlite3_db_filename(s->wr.db, "main");
    if (!file || !*file)
        return drv_error_set(err, "%s: an in-memory store has no second connection for reads",
                             s->path);
    int rc =
        sqlite3_open_v2(file, &s->rconn.db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
    if (rc != SQLITE_OK) {
        drv_error_set(err, "%s: cannot open a connection for reads: %s", s->path,
                      s->rconn.db ? sqlite3_errmsg(s->rconn.db) : sqlite3_errstr(rc));
        sqlite3_close(s->rconn.db);
        s->rconn.db = NULL;
        return -1;
    }
    sqlite3_busy_timeout(s->rconn.db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(s->rconn.db, "PRAGMA query_only = ON; PRAGMA cache_size = -16384;", NULL, NULL,
                     &msg) != SQLITE_OK) {
        drv_error_set(err, "%s: cannot set up the connection for reads: %s", s->path,
                      msg ? msg : sqlite3_errmsg(s->rconn.db));
        sqlite3_free(msg);
        sqlite3_close(s->rconn.db);
        s->rconn.db = NULL;
        return -1;
    }
    drv_store_writer *w = drv_xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->work, NULL);
    pthread_cond_init(&w->settled, NULL);
    w->notify = notify;
    w->ctx = ctx;
    w->handed = w->durable = s->commits;
    s->writer = w;
    s->rd = &s->rconn;
    if (pthread_create(&w->thread, NULL, writer_main, s) != 0) {
        s->writer = NULL;
        s->rd = &s->wr;
        sqlite3_close(s->rconn.db);
        s->rconn.db = NULL;
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->work);
        pthread_cond_destroy(&w->settled);
        free(w);
        return drv_error_set(err, "%s: cannot start the writer thread", s->path);
    }
    return 0;
}

/* Hands the log built so far to the writer. */
int drv_store_writer_commit(drv_store *s, drv_error *err)
{
    drv_store_writer *w = s->writer;
    if (s->n_marks)
        return drv_error_set(err, "%s: commit with a mark still set", s->path);
    if (s->log.n_ops == 0)
        return drv_store_durable(s, NULL, err);
    handed_log *h = drv_xmalloc(sizeof *h);
    h->next = NULL;
    h->seq = ++w->handed;
    h->log = s->log;
    memset(&s->log, 0, sizeof s->log);
    s->bump_op = SIZE_MAX;
    s->commits = h->seq;
    s->ids_committed = s->ids;
    drv_store_live_commit(s);
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = h;
    else
        w->head = h;
    w->tail = h;
    bool failed = w->failed;
    if (failed)
        *err = w->err;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    return failed ? -1 : 0;
}

uint64_t drv_store_handed(const drv_store *s)
{
    return s->commits;
}

int drv_store_durable(drv_store *s, uint64_t *seq, drv_error *err)
{
    drv_store_writer *w = s->writer;
    if (!w) {
        if (seq)
            *seq = s->commits;
        return 0;
    }
    pthread_mutex_lock(&w->mu);
    bool failed = w->failed;
    if (seq)
        *seq = w->durable;
    if (failed)
        *err = w->err;
    pthread_mutex_unlock(&w->mu);
    return failed ? -1 : 0;
}

int drv_store_sync(drv_store *s, drv_error *err)
{
    if (drv_store_commit(s, err) < 0)
        return -1;
    drv_store_writer *w = s->writer;
    if (!w)
        return 0;
    pthread_mutex_lock(&w->mu);
    while (!w->failed && w->durable < w->handed)
        pthread_cond_wait(&w->settled, &w->mu);
    bool failed = w->failed;
    if (failed)
        *err = w->err;
    pthread_mutex_unlock(&w->mu);
    return failed ? -1 : 0;
}

void drv_store_writer_quiet(drv_store *s)
{
    drv_store_writer *w = s->writer;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->notify = NULL;
    pthread_mutex_unlock(&w->mu);
}

/* Lets the writer finish what it was handed, then joins it. */
void drv_store_writer_stop(drv_store *s)
{
    drv_store_writer *w = s->writer;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    while (w->head) {
        handed_log *h = w->head;
        w->head = h->next;
        drv_store_log_free(&h->log);
        free(h);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->settled);
    free(w);
    s->writer = NULL;
    s->rd = &s->wr;
}
