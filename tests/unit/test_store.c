/* test_store.c - the coordinator's SQLite store on real files: a task survives the round
 * trip exactly, grouped commits are invisible until committed and all-or-nothing across
 * a kill -9, late and duplicate results are never counted twice, recovery finds exactly
 * the unfinished tests, listings and counts, and clear errors for files it must refuse.
 * Each test works in its own mkdtemp directory, removed afterwards. */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "coordinator/store.h"
#include "coordinator/store_sqlite.h"
#include "store_fixture.h"

static int setup(void **state)
{
    return store_fx_setup(state, "drv_store");
}

static drv_store *open_ok(const char *path)
{
    drv_error err = {{0}};
    drv_store *s = drv_store_open(path, &err);
    if (!s)
        fail_msg("open %s: %s", path, err.msg);
    return s;
}

static void commit_ok(drv_store *s)
{
    drv_error err = {{0}};
    if (drv_store_commit(s, &err) != 0)
        fail_msg("commit: %s", err.msg);
}

/* Runs sql on the file directly (to tamper with it as a user or another program). */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("raw exec %s: %s", sql, msg);
    sqlite3_close(db);
}

/* A task with every field set, strings that need escaping, and custom tags. */
static void full_task(drv_task *t, drv_tag_table *tags)
{
    static char *const argv[] = {"python",         "-m", "pytest", "a b", "quo\"te", "back\\slash",
                                 "tab\tnew\nline", "",   NULL};
    static char *const env[] = {"CUDA_VISIBLE_DEVICES=0,1", "EMPTY=", "UNICODE=\xc3\xa9t\xc3\xa9",
                                NULL};
    static char *const labels[] = {"nightly", "fp16", NULL};
    drv_task_init(t);
    t->name = drv_xstrdup("tests/test_bert.py::test_fp16[\xe2\x9c\x93]");
    t->argv = drv_strv_dup(argv);
    t->env = drv_strv_dup(env);
    t->cwd = drv_xstrdup("/srv/models");
    t->req.cpu_cores = 8;
    t->req.memory_mb = 32768;
    t->req.gpu_count = 2;
    t->req.gpu_memory_mb = 24576;
    t->req.cuda_cc = 86;
    t->req.driver_version = 535104005;
    assert_int_equal(drv_tagset_parse(tags, "cuda,zone-a", &t->req.all_of, NULL), 0);
    assert_int_equal(drv_tagset_parse(tags, "chromium,edge", &t->req.any_of, NULL), 0);
    assert_int_equal(drv_tagset_parse(tags, "gpu-busy", &t->req.none_of, NULL), 0);
    t->priority = 750;
    t->timeout_s = 123.25;
    t->max_retries = 3;
    t->retry_on_failure = true;
    t->model_id = drv_xstrdup("bert-base-uncased");
    t->family = 4;
    t->test_type = drv_xstrdup("integration");
    t->batch_size = 16;
    t->labels = drv_strv_dup(labels);
    t->state = DRV_TASK_RUNNING;
    t->attempts = 2;
}

/* A task with only argv: NULL env, cwd and strings; an empty (not NULL) label vector. */
static void minimal_task(drv_task *t, const char *name)
{
    static char *const argv[] = {"true", NULL};
    static char *const none[] = {NULL};
    drv_task_init(t);
    t->name = name ? drv_xstrdup(name) : NULL;
    t->argv = drv_strv_dup(argv);
    t->labels = drv_strv_dup(none);
}

static void assert_strv_equal(char *const *a, char *const *b)
{
    assert_true((a == NULL) == (b == NULL));
    if (!a)
        return;
    assert_int_equal(drv_strv_len(a), drv_strv_len(b));
    for (size_t i = 0; a[i]; i++)
        assert_string_equal(a[i], b[i]);
}

static void assert_opt_string_equal(const char *a, const char *b)
{
    assert_true((a == NULL) == (b == NULL));
    if (a)
        assert_string_equal(a, b);
}

static void assert_tagset_names(const drv_tag_table *ta, const drv_tagset *a,
                                const drv_tag_table *tb, const drv_tagset *b)
{
    char x[256], y[256];
    drv_tagset_format(ta, a, x, sizeof x);
    drv_tagset_format(tb, b, y, sizeof y);
    assert_string_equal(x, y);
    assert_int_equal(drv_tagset_count(a), drv_tagset_count(b));
}

/* Every field of two tasks equal, tags compared by name (their tables may differ). */
static void assert_task_equal(const drv_task *a, const drv_tag_table *ta, const drv_task *b,
                              const drv_tag_table *tb)
{
    assert_int_equal(a->id, b->id);
    assert_opt_string_equal(a->name, b->name);
    assert_strv_equal(a->argv, b->argv);
    assert_strv_equal(a->env, b->env);
    assert_opt_string_equal(a->cwd, b->cwd);
    assert_int_equal(a->req.cpu_cores, b->req.cpu_cores);
    assert_int_equal(a->req.memory_mb, b->req.memory_mb);
    assert_int_equal(a->req.gpu_count, b->req.gpu_count);
    assert_int_equal(a->req.gpu_memory_mb, b->req.gpu_memory_mb);
    assert_int_equal(a->req.cuda_cc, b->req.cuda_cc);
    assert_int_equal(a->req.driver_version, b->req.driver_version);
    assert_tagset_names(ta, &a->req.all_of, tb, &b->req.all_of);
    assert_tagset_names(ta, &a->req.any_of, tb, &b->req.any_of);
    assert_tagset_names(ta, &a->req.none_of, tb, &b->req.none_of);
    assert_int_equal(a->priority, b->priority);
    assert_true(a->timeout_s == b->timeout_s);
    assert_int_equal(a->max_retries, b->max_retries);
    assert_int_equal(drv_task_reruns(a), drv_task_reruns(b)); /* the flag is stored as reruns */
    assert_opt_string_equal(a->model_id, b->model_id);
    assert_int_equal(a->family, b->family);
    assert_opt_string_equal(a->test_type, b->test_type);
    assert_int_equal(a->batch_size, b->batch_size);
    assert_strv_equal(a->labels, b->labels);
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->attempts, b->attempts);
}

/* Requirements and capabilities are stored in the one codec's form (cuda_cc "8.6",
 * driver_version "535.104.5", what the API shows), and rows written before it, with
 * the integers 86 and 535104005, still read to the same values. */
static void test_requirements_codec_old_rows(void **state)
{
    store_fixture *f = *state;
    drv_requirements r;
    drv_requirements_init(&r);
    r.cuda_cc = 86;
    r.driver_version = 535104005;
    r.gpu_memory_mb = 24576;
    drv_tagset_add(&r.all_of, drv_tag_intern(f->tags, "zone-a", NULL));
    char *text = NULL;
    drv_error err = {{0}};
    assert_int_equal(drv_store_req_encode(&r, f->tags, &text, "requirements", &err), 0);
    assert_string_equal(text, "{\"gpu_memory_mb\":24576,\"cuda_cc\":\"8.6\","
                              "\"driver_version\":\"535.104.5\",\"all_of\":[\"zone-a\"]}");
    static const char *const rows[] = {
        NULL, /* the text just written */
        "{\"gpu_memory_mb\":24576,\"cuda_cc\":86,\"driver_version\":535104005,"
        "\"all_of\":[\"zone-a\"]}",
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_requirements back;
        assert_int_equal(
            drv_store_req_decode(rows[i] ? rows[i] : text, f->tags, &back, "requirements", &err),
            0);
        assert_true(drv_requirements_equal(&r, &back));
    }
    free(text);
    /* Capabilities: an old row's integers, the same values as the new form's strings. */
    drv_capabilities old, now;
    assert_int_equal(drv_store_caps_decode("{\"cpu\":8,\"memory_mb\":1024,\"cuda_cc\":80,"
                                           "\"driver_version\":550000000,\"tags\":[\"cuda\"]}",
                                           f->tags, &old, "capabilities", &err),
                     0);
    assert_int_equal(drv_store_caps_decode("{\"cpu\":8,\"memory_mb\":1024,\"cuda_cc\":\"8.0\","
                                           "\"driver_version\":\"550\",\"tags\":[\"cuda\"]}",
                                           f->tags, &now, "capabilities", &err),
                     0);
    assert_int_equal(old.cuda_cc, 80);
    assert_int_equal(old.driver_version, 550000000);
    assert_true(drv_capabilities_equal(&old, &now));
    /* A bad stored value names its field and changes nothing. */
    int before = drv_tag_count(f->tags);
    assert_int_equal(drv_store_req_decode("{\"all_of\":[\"new-tag\"],\"cuda_cc\":\"eight\"}",
                                          f->tags, &r, "task 7 requirements", &err),
                     -1);
    assert_non_null(strstr(err.msg, "task 7 requirements.cuda_cc: "));
    assert_int_equal(drv_tag_count(f->tags), before);
}

static void test_task_round_trip(void **state)
{
    store_fixture *f = *state;
    drv_error err = {{0}};
    drv_task full, min;
    full_task(&full, f->tags);
    minimal_task(&min, NULL);

    drv_store *s = open_ok(f->path);
    int64_t run = drv_store_run_create(s, "nightly", 1000.5, &err);
    assert_true(run > 0);
    int64_t id1 = drv_store_task_insert(s, run, &full, f->tags, 1001.25, &err);
    int64_t id2 = drv_store_task_insert(s, 0, &min, f->tags, 1002, &err);
    assert_true(id1 > 0 && id2 > id1);
    min.id = 1000; /* an id chosen by the caller is kept; used twice it is refused */
    assert_int_equal(drv_store_task_insert(s, run, &min, f->tags, 1003, &err), 1000);
    assert_int_equal(drv_store_task_insert(s, run, &min, f->tags, 1003, &err), -1);
    assert_non_null(strstr(err.msg, "task 1000: the id is already used"));
    commit_ok(s);
    drv_store_close(s);
    full.id = (uint64_t)id1;
    min.id = (uint64_t)id2;

    /* A fresh table where a new tag comes first: custom tag ids differ, names match. */
    drv_tag_table *fresh = drv_tag_table_new();
    assert_true(drv_tag_intern(fresh, "zzz-first", NULL) >= 0);
    s = open_ok(f->path);
    assert_false(drv_store_pending(s));
    drv_store_task_detail d = {0};
    assert_int_equal(drv_store_task_get(s, (uint64_t)id1, fresh, &d, &err), 1);
    assert_task_equal(&full, f->tags, &d.task, fresh);
    assert_int_not_equal(drv_tag_lookup(fresh, "zone-a"), drv_tag_lookup(f->tags, "zone-a"));
    assert_int_equal(d.run_id, run);
    assert_true(d.submitted_at == 1001.25);
    assert_int_equal(d.n_attempts, 0);
    assert_false(d.has_exit);
    drv_store_task_detail_clear(&d);

    /* In the same table the requirements are identical, ids and all. */
    assert_int_equal(drv_store_task_get(s, (uint64_t)id1, f->tags, &d, &err), 1);
    assert_true(drv_requirements_equal(&full.req, &d.task.req));
    drv_store_task_detail_clear(&d);

    assert_int_equal(drv_store_task_get(s, (uint64_t)id2, fresh, &d, &err), 1);
    assert_task_equal(&min, f->tags, &d.task, fresh);
    assert_null(d.task.env);
    assert_non_null(d.task.labels); /* empty stays empty, not NULL */
    assert_int_equal(d.run_id, 0);
    drv_store_task_detail_clear(&d);
    assert_int_equal(drv_store_task_get(s, 424242, fresh, &d, &err), 0);
    drv_store_close(s);
    drv_tag_table_free(fresh);
    drv_task_clear(&full);
    drv_task_clear(&min);
}

/* py3 (issue 13): a batch keeps its member names, a member's result the batch that ran
 * it; a listing says which row is which; the flakiness query finds a name through the
 * index on tasks.name (no scan of every task). */
static void count_member(void *ctx, const char *name)
{
    assert_string_equal(name, "t.py::a");
    (*(int *)ctx)++;
}

typedef struct batch_rows {
    uint64_t batch_of[4];
    uint32_t members[4];
    int n;
} batch_rows;

static int on_batch_row(void *ctx, const drv_store_task_row *row, drv_error *err)
{
    (void)err;
    batch_rows *b = ctx;
    b->batch_of[b->n] = row->batch_of;
    b->members[b->n++] = row->members;
    return 0;
}

static void test_batch_members_round_trip(void **state)
{
    store_fixture *f = *state;
    drv_error err = {{0}};
    char *const members[] = {"t.py::a", "t.py::b", NULL};
    drv_task batch, member;
    minimal_task(&batch, "t.py [batch 1, 2 tests]");
    batch.members = drv_strv_dup(members);
    minimal_task(&member, "t.py::a");
    drv_store *s = open_ok(f->path);
    int64_t run = drv_store_run_create(s, "py", 1000, &err);
    int64_t bid = drv_store_task_insert(s, run, &batch, f->tags, 1001, &err);
    assert_true(bid > 0);
    member.batch_of = (uint64_t)bid;
    member.state = DRV_TASK_PASSED;
    int64_t mid = drv_store_task_insert(s, run, &member, f->tags, 1002, &err);
    assert_true(mid > bid);
    commit_ok(s);

    drv_store_task_detail d = {0};
    assert_int_equal(drv_store_task_get(s, (uint64_t)bid, f->tags, &d, &err), 1);
    assert_strv_equal(members, d.task.members);
    assert_int_equal(d.task.batch_of, 0);
    drv_store_task_detail_clear(&d);
    assert_int_equal(drv_store_task_get(s, (uint64_t)mid, f->tags, &d, &err), 1);
    assert_null(d.task.members);
    assert_int_equal(d.task.batch_of, (uint64_t)bid);
    drv_store_task_detail_clear(&d);
    /* A rerun's batch takes over. */
    assert_int_equal(drv_store_task_batch_of(s, (uint64_t)mid, 4242, &err), 0);
    commit_ok(s);

    batch_rows rows = {0};
    drv_store_filter flt = {.state = -1, .run_id = run};
    assert_int_equal(drv_store_task_list(s, &flt, on_batch_row, &rows, &err), 2);
    assert_int_equal(rows.batch_of[0], 0);
    assert_int_equal(rows.members[0], 2);
    assert_int_equal(rows.batch_of[1], 4242);
    assert_int_equal(rows.members[1], 0);
    /* What a recovered batch reads back: the member results that name it. */
    int named = 0;
    assert_int_equal(drv_store_batch_members(s, run, 4242, count_member, &named, &err), 1);
    assert_int_equal(named, 1);
    assert_int_equal(drv_store_batch_members(s, run, (uint64_t)bid, count_member, &named, &err), 0);
    drv_store_close(s);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "EXPLAIN QUERY PLAN SELECT id FROM tasks WHERE name = 'x'"
                                        " ORDER BY id DESC LIMIT 200",
                                        -1, &st, NULL),
                     SQLITE_OK);
    bool by_index = false;
    while (sqlite3_step(st) == SQLITE_ROW)
        by_index |= strstr((const char *)sqlite3_column_text(st, 3), "INDEX tasks_name") != NULL;
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(by_index);
    drv_task_clear(&batch);
    drv_task_clear(&member);
}

/* What an insert refuses writes nothing and says which field of which task. */
static void test_insert_refusals(void **state)
{
    store_fixture *f = *state;
    static const struct {
        const char *case_name;
        int breaks; /* 0 bad UTF-8 in argv, 1 tag id unknown to the table, 2 no such run */
        const char *expect;
    } rows[] = {
        {"bad utf-8", 0, "task \"t\": argv[1]: not valid UTF-8"},
        {"unknown tag id", 1, "task \"t\": requirements.none_of: tag id 200 is not in the tag"},
        {"no such run", 2, "task \"t\": run 77: no such run"},
    };
    drv_store *s = open_ok(f->path);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_task t;
        minimal_task(&t, "t");
        int64_t run = 0;
        if (rows[i].breaks == 0) {
            drv_strv_free(t.argv);
            char *bad[] = {"echo", "caf\xe9", NULL};
            t.argv = drv_strv_dup(bad);
        } else if (rows[i].breaks == 1) {
            drv_tagset_add(&t.req.none_of, 200);
        } else {
            run = 77;
        }
        drv_error err = {{0}};
        assert_int_equal(drv_store_task_insert(s, run, &t, f->tags, 1, &err), -1);
        if (!strstr(err.msg, rows[i].expect))
            fail_msg("%s: got \"%s\"", rows[i].case_name, err.msg);
        drv_task_clear(&t);
    }
    commit_ok(s);
    drv_store_counts c;
    assert_int_equal(drv_store_count(s, &c, NULL), 0);
    assert_int_equal(c.total, 0);
    drv_store_close(s);
}

static void test_grouped_commit_visibility(void **state)
{
    store_fixture *f = *state;
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    assert_false(drv_store_pending(s));
    assert_int_equal(store_fx_int(f->path, "PRAGMA user_version"), DRV_STORE_SCHEMA_VERSION);
    assert_int_equal(store_fx_int(f->path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"),
                     1);
    for (int i = 0; i < 3; i++) {
        drv_task t;
        minimal_task(&t, "a");
        assert_true(drv_store_task_insert(s, 0, &t, f->tags, i, &err) > 0);
        drv_task_clear(&t);
    }
    assert_true(drv_store_pending(s));
    /* The store's own connection sees its writes; another one does not yet. */
    drv_store_counts c;
    assert_int_equal(drv_store_count(s, &c, &err), 0);
    assert_int_equal(c.total, 3);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM tasks"), 0);
    commit_ok(s);
    assert_false(drv_store_pending(s));
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM tasks"), 3);

    /* Rolled back: gone for everyone. */
    drv_task t;
    minimal_task(&t, "b");
    assert_true(drv_store_task_insert(s, 0, &t, f->tags, 9, &err) > 0);
    assert_int_equal(drv_store_rollback(s, &err), 0);
    assert_false(drv_store_pending(s));
    assert_int_equal(drv_store_count(s, &c, &err), 0);
    assert_int_equal(c.total, 3);

    /* Marks: one request undone, the rest of the turn kept. */
    assert_true(drv_store_task_insert(s, 0, &t, f->tags, 10, &err) > 0); /* kept */
    assert_int_equal(drv_store_mark(s, &err), 0);
    assert_true(drv_store_task_insert(s, 0, &t, f->tags, 11, &err) > 0); /* undone */
    assert_int_equal(drv_store_mark_undo(s, &err), 0);
    assert_int_equal(drv_store_mark(s, &err), 0);
    assert_true(drv_store_task_insert(s, 0, &t, f->tags, 12, &err) > 0); /* kept */
    assert_int_equal(drv_store_mark_release(s, &err), 0);
    assert_int_equal(drv_store_mark_release(s, &err), -1);
    assert_non_null(strstr(err.msg, "not set"));
    commit_ok(s);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM tasks"), 5);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM tasks WHERE submitted_at = 11"),
                     0);
    assert_int_equal(drv_store_commit(s, &err), 0); /* nothing open: nothing to do */
    drv_task_clear(&t);
    drv_store_close(s);
}

enum { CRASH_COMMITTED = 50, CRASH_UNCOMMITTED = 2000 };

/* The child of the crash test: commits CRASH_COMMITTED tasks (with an attempt each),
 * then writes much more without committing (enough that SQLite spills pages into the
 * WAL before any commit) and kills itself. Exits with a status only on a failure. */
static void crash_child(const char *path)
{
    drv_tag_table *tags = drv_tag_table_new();
    /* A small page cache, so the uncommitted transaction spills pages into the WAL. */
    drv_store_options o = {.cache_kib = 256};
    drv_store *s = drv_store_open_with(path, &o, NULL);
    if (!s)
        _exit(10);
    int64_t run = drv_store_run_create(s, "crash", 1, NULL);
    for (int i = 0; i < CRASH_COMMITTED; i++) {
        drv_task t;
        minimal_task(&t, "committed");
        int64_t id = drv_store_task_insert(s, run, &t, tags, 2, NULL);
        drv_task_clear(&t);
        if (id <= 0 || drv_store_attempt_begin(s, (uint64_t)id, 1, "w1", 3, NULL) < 0)
            _exit(11);
    }
    if (drv_store_commit(s, NULL) < 0)
        _exit(12);

    static char big[2048];
    memset(big, 'x', sizeof big - 1);
    char *labels[] = {big, NULL};
    for (int i = 0; i < CRASH_UNCOMMITTED; i++) {
        drv_task t;
        minimal_task(&t, "uncommitted");
        drv_strv_free(t.labels);
        t.labels = drv_strv_dup(labels);
        if (drv_store_task_insert(s, run, &t, tags, 4, NULL) <= 0)
            _exit(13);
        drv_task_clear(&t);
    }
    drv_store_result r = {.finished_at = 5, .exit_code = 0, .duration_s = 1};
    drv_store_task_update u = {.state = DRV_TASK_PASSED, .attempts = 1, .finished_at = 5};
    if (drv_store_attempt_finish(s, 1, 1, &r, NULL, NULL) != 1 ||
        drv_store_task_update_state(s, 1, &u, NULL) < 0 ||
        drv_store_event_append(s, 5, "uncommitted", 1, "w1", "lost", NULL) < 0 ||
        !drv_store_pending(s))
        _exit(14);
    kill(getpid(), SIGKILL);
    _exit(15);
}

static void test_kill9_keeps_exactly_the_committed(void **state)
{
    store_fixture *f = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        crash_child(f->path);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        fail_msg("the child did not die of SIGKILL (exit status %d)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    /* The uncommitted transaction reached the WAL file (spilled pages) and must still
     * not count: SQLite replays only frames up to the last commit. */
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    assert_true(st.st_size > 1024 * 1024);

    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    drv_store_counts c;
    assert_int_equal(drv_store_count(s, &c, &err), 0);
    assert_int_equal(c.total, CRASH_COMMITTED);
    /* Each committed test has its committed first attempt open, nothing more. */
    assert_int_equal(c.by_state[DRV_TASK_ASSIGNED], CRASH_COMMITTED);
    drv_store_run_summary r = {0};
    assert_int_equal(drv_store_run_summary_get(s, 1, &r, &err), 1);
    assert_int_equal(r.submitted, CRASH_COMMITTED);
    drv_store_run_summary_clear(&r);
    drv_store_task_detail d = {0};
    assert_int_equal(drv_store_task_get(s, 1, f->tags, &d, &err), 1);
    assert_int_equal(d.task.state, DRV_TASK_ASSIGNED);
    assert_int_equal(d.task.attempts, 1);
    assert_string_equal(d.worker, "w1");
    assert_int_equal(d.n_attempts, 1);
    assert_int_equal(d.attempts[0].state, DRV_ATTEMPT_ASSIGNED);
    drv_store_task_detail_clear(&d);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM events"), 0);
    assert_int_equal(
        store_fx_int(f->path, "SELECT integrity_check = 'ok' FROM pragma_integrity_check"), 1);
    /* The result that was never committed can be reported again and counts once. */
    drv_store_result res = {.finished_at = 6, .exit_code = 0};
    assert_int_equal(drv_store_attempt_finish(s, 1, 1, &res, NULL, &err), 1);
    commit_ok(s);
    drv_store_close(s);
}

enum op { BEGIN, STARTED, FINISH, ABANDON };

static void test_attempts_count_once(void **state)
{
    store_fixture *f = *state;
    static const struct {
        enum op op;
        uint32_t attempt;
        int exit_code; /* FINISH: the reported exit code */
        int expect;
        int prior; /* FINISH: the state before, or -1 not checked */
        const char *error;
    } rows[] = {
        {BEGIN, 1, 0, 0, -1, NULL},
        {STARTED, 1, 0, 1, -1, NULL},
        {STARTED, 1, 0, 0, -1, NULL}, /* repeated start message: no change */
        {FINISH, 1, 0, 1, DRV_ATTEMPT_RUNNING, NULL},
        {FINISH, 1, 7, 0, DRV_ATTEMPT_FINISHED, NULL}, /* duplicate: not recorded */
        {ABANDON, 1, 0, 0, -1, NULL},                  /* finished stays finished */
        {BEGIN, 1, 0, -1, -1, "task 1 attempt 1: already begun"},
        {BEGIN, 2, 0, 0, -1, NULL},
        {BEGIN, 3, 0, 0, -1, NULL},                     /* supersedes open attempt 2 */
        {FINISH, 2, 1, 0, DRV_ATTEMPT_ABANDONED, NULL}, /* late result of attempt 2 */
        {STARTED, 2, 0, 0, -1, NULL},
        {FINISH, 3, 3, 1, DRV_ATTEMPT_ASSIGNED, NULL}, /* result without a start message */
        {BEGIN, 4, 0, 0, -1, NULL},
        {ABANDON, 4, 0, 1, -1, NULL}, /* worker lost past the grace period */
        {FINISH, 4, 0, 0, DRV_ATTEMPT_ABANDONED, NULL},
        {FINISH, 9, 0, -1, -1, "task 1 attempt 9: no such attempt"},
        {STARTED, 9, 0, -1, -1, "task 1 attempt 9: no such attempt"},
        {BEGIN, 0, 0, -1, -1, "attempt numbers start at 1"},
    };
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    drv_task t;
    minimal_task(&t, "flaky");
    assert_int_equal(drv_store_task_insert(s, 0, &t, f->tags, 1, &err), 1);
    drv_task_clear(&t);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_store_attempt_state prior = DRV_ATTEMPT_STATE_COUNT;
        drv_store_result r = {.finished_at = 10 + i,
                              .exit_code = rows[i].exit_code,
                              .timed_out = rows[i].attempt == 3,
                              .infra_failure = false,
                              .duration_s = 2.5,
                              .peak_memory_kb = 1u << 20,
                              .output_tail = "last line\n"};
        int rc = -2;
        err.msg[0] = 0;
        switch (rows[i].op) {
        case BEGIN:
            rc = drv_store_attempt_begin(s, 1, rows[i].attempt, "w1", 5, &err);
            break;
        case STARTED:
            rc = drv_store_attempt_started(s, 1, rows[i].attempt, 6, &err);
            break;
        case FINISH:
            rc = drv_store_attempt_finish(s, 1, rows[i].attempt, &r, &prior, &err);
            break;
        case ABANDON:
            rc = drv_store_attempt_abandon(s, 1, rows[i].attempt, &err);
            break;
        }
        if (rc != rows[i].expect)
            fail_msg("row %zu: returned %d, expected %d (%s)", i, rc, rows[i].expect, err.msg);
        if (rows[i].prior >= 0 && (int)prior != rows[i].prior)
            fail_msg("row %zu: prior state %s", i, drv_store_attempt_state_name(prior));
        if (rows[i].error && !strstr(err.msg, rows[i].error))
            fail_msg("row %zu: error \"%s\"", i, err.msg);
    }
    assert_int_equal(drv_store_attempt_begin(s, 999, 1, "w1", 5, &err), -1);
    assert_non_null(strstr(err.msg, "task 999 attempt 1: no such task"));
    commit_ok(s);
    drv_store_close(s);

    /* After a restart the decisions hold: results are where they were first recorded. */
    s = open_ok(f->path);
    drv_store_result again = {.finished_at = 99, .exit_code = 42};
    assert_int_equal(drv_store_attempt_finish(s, 1, 1, &again, NULL, &err), 0);
    assert_int_equal(drv_store_attempt_finish(s, 1, 2, &again, NULL, &err), 0);
    drv_store_task_detail d = {0};
    assert_int_equal(drv_store_task_get(s, 1, f->tags, &d, &err), 1);
    static const drv_store_attempt_state want[] = {DRV_ATTEMPT_FINISHED, DRV_ATTEMPT_ABANDONED,
                                                   DRV_ATTEMPT_FINISHED, DRV_ATTEMPT_ABANDONED};
    assert_int_equal(d.n_attempts, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(d.attempts[i].attempt, i + 1);
        assert_int_equal(d.attempts[i].state, want[i]);
        assert_int_equal(d.attempts[i].has_result, want[i] == DRV_ATTEMPT_FINISHED);
    }
    assert_int_equal(d.attempts[0].exit_code, 0); /* not the duplicate's 7 */
    assert_true(d.attempts[0].started_at == 6);
    assert_int_equal(d.attempts[2].exit_code, 3);
    assert_true(d.attempts[2].timed_out);
    assert_false(d.attempts[2].infra_failure);
    assert_true(d.attempts[2].duration_s == 2.5);
    assert_int_equal(d.attempts[2].peak_memory_kb, 1u << 20);
    assert_string_equal(d.attempts[2].output_tail, "last line\n");
    assert_string_equal(d.attempts[2].worker, "w1");
    assert_true(d.attempts[2].started_at == 0);
    assert_null(d.attempts[1].output_tail);
    drv_store_task_detail_clear(&d);
    drv_store_close(s);
}

typedef struct seen {
    uint64_t ids[16];
    drv_task_state states[16];
    uint32_t attempts[16];
    char workers[16][16];
    int n;
    int stop_after; /* 0: never */
    drv_task kept;  /* the first task, moved out of the callback */
} seen;

/* spec: a speculative copy is an attempt of its own that leaves the running one open;
 * the loser is superseded (abandoned, naming the winner); a test's "idempotent": false
 * is kept; what the balancer learned of its fleet survives a reopen. */
static void keep_fact(void *ctx, const drv_learned_fact *fact)
{
    drv_learned_fact *out = ctx;
    out[fact->kind == DRV_LEARNED_CLASS_SPEED ? 0 : 1] = *fact;
}

static void test_speculative_copies_and_learning_kept(void **state)
{
    store_fixture *f = *state;
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    drv_task t;
    minimal_task(&t, "straggler");
    t.not_idempotent = true;
    assert_int_equal(drv_store_task_insert(s, 0, &t, f->tags, 1, &err), 1);
    drv_task_clear(&t);
    assert_int_equal(drv_store_attempt_begin(s, 1, 1, "slow", 2, &err), 0);
    assert_int_equal(drv_store_attempt_started(s, 1, 1, 2, &err), 1);
    assert_int_equal(drv_store_attempt_begin_copy(s, 1, 2, 1, "fast", 5, &err), 0);
    assert_int_equal(drv_store_attempt_begin_copy(s, 1, 2, 2, "fast", 5, &err), -1);
    drv_store_result r = {.finished_at = 6, .exit_code = 0, .duration_s = 1};
    drv_store_attempt_state prior = DRV_ATTEMPT_STATE_COUNT;
    assert_int_equal(drv_store_attempt_finish(s, 1, 2, &r, &prior, &err), 1);
    assert_int_equal(drv_store_attempt_supersede(s, 1, 1, 2, &err), 1);
    assert_int_equal(drv_store_attempt_supersede(s, 1, 1, 2, &err), 0); /* superseded already */
    drv_learned_fact facts[2] = {
        {.kind = DRV_LEARNED_CLASS_SPEED,
         .key = UINT64_MAX - 3,
         .family = 5,
         .value = 0.25,
         .n = 4},
        {.kind = DRV_LEARNED_WORKER_PACE, .key = 77, .family = -1, .value = -0.5, .n = 9},
    };
    for (int i = 0; i < 2; i++)
        assert_int_equal(drv_store_learned_fact_save(s, &facts[i], &err), 0);
    commit_ok(s);
    drv_store_close(s);

    s = open_ok(f->path);
    drv_store_task_detail d;
    memset(&d, 0, sizeof d);
    assert_int_equal(drv_store_task_get(s, 1, f->tags, &d, &err), 1);
    assert_true(d.task.not_idempotent);
    assert_int_equal(d.n_attempts, 2);
    assert_int_equal(d.attempts[0].state, DRV_ATTEMPT_ABANDONED); /* the copy did not close it */
    assert_int_equal(d.attempts[0].superseded_by, 2);
    assert_int_equal(d.attempts[0].copy_of, 0);
    assert_int_equal(d.attempts[1].state, DRV_ATTEMPT_FINISHED);
    assert_int_equal(d.attempts[1].copy_of, 1);
    drv_store_task_detail_clear(&d);
    drv_learned_fact back[2] = {{0}};
    assert_int_equal(drv_store_learned_fact_load(s, keep_fact, back, &err), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(back[i].kind, facts[i].kind);
        assert_true(back[i].key == facts[i].key);
        assert_int_equal(back[i].family, facts[i].family);
        assert_true(back[i].value == facts[i].value);
        assert_int_equal(back[i].n, facts[i].n);
    }
    /* A plain new attempt still gives up the open ones (the copy's trigger exception is
     * for copies only). */
    assert_int_equal(drv_store_attempt_begin(s, 1, 3, "w", 7, &err), 0);
    assert_int_equal(drv_store_attempt_begin(s, 1, 4, "w", 8, &err), 0);
    commit_ok(s);
    memset(&d, 0, sizeof d);
    assert_int_equal(drv_store_task_get(s, 1, f->tags, &d, &err), 1);
    assert_int_equal(d.attempts[2].state, DRV_ATTEMPT_ABANDONED);
    assert_int_equal(d.attempts[2].superseded_by, 0);
    drv_store_task_detail_clear(&d);
    drv_store_close(s);
}

static int on_recovered(void *ctx, drv_store_recovered *r, drv_error *err)
{
    (void)err;
    seen *v = ctx;
    if (v->n == 0) {
        v->kept = *r->task; /* take ownership: the store frees nothing of it now */
        drv_task_init(r->task);
    }
    v->ids[v->n] = v->n == 0 ? v->kept.id : r->task->id;
    v->states[v->n] = v->n == 0 ? v->kept.state : r->task->state;
    v->attempts[v->n] = v->n == 0 ? v->kept.attempts : r->task->attempts;
    snprintf(v->workers[v->n], sizeof v->workers[0], "%s", r->worker ? r->worker : "-");
    v->n++;
    return v->stop_after && v->n == v->stop_after ? 1 : 0;
}

/* spec: what recovery sees of a test with a speculative copy running. */
typedef struct copy_seen {
    int n;
    uint32_t attempt, retries_used;
    char worker[16];
} copy_seen;

static int on_copy_recovered(void *ctx, drv_store_recovered *r, drv_error *err)
{
    (void)err;
    copy_seen *v = ctx;
    v->n++;
    v->attempt = r->task->attempts;
    v->retries_used = r->task->retries_used;
    snprintf(v->worker, sizeof v->worker, "%s", r->worker ? r->worker : "-");
    return 0;
}

/* While a copy runs the test has two open attempts: recovery (and listings) see one row,
 * the latest attempt's; the original, superseded after it started, uses no retry. */
static void test_recovery_sees_one_row_per_copied_test(void **state)
{
    store_fixture *f = *state;
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    drv_task t;
    minimal_task(&t, "copied");
    t.max_retries = 2;
    assert_int_equal(drv_store_task_insert(s, 0, &t, f->tags, 1, &err), 1);
    drv_task_clear(&t);
    assert_int_equal(drv_store_attempt_begin(s, 1, 1, "slow", 2, &err), 0);
    assert_int_equal(drv_store_attempt_started(s, 1, 1, 2, &err), 1);
    assert_int_equal(drv_store_attempt_begin_copy(s, 1, 2, 1, "fast", 5, &err), 0);
    assert_int_equal(drv_store_attempt_started(s, 1, 2, 5, &err), 1);
    commit_ok(s);
    copy_seen v = {0};
    assert_int_equal(drv_store_recover(s, f->tags, on_copy_recovered, &v, &err), 0);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.attempt, 2);
    assert_string_equal(v.worker, "fast");
    /* The original loses (its worker lost): superseded, it charges no retry. */
    assert_int_equal(drv_store_attempt_supersede(s, 1, 1, 2, &err), 1);
    commit_ok(s);
    memset(&v, 0, sizeof v);
    assert_int_equal(drv_store_recover(s, f->tags, on_copy_recovered, &v, &err), 0);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.attempt, 2);
    assert_int_equal(v.retries_used, 0);
    drv_store_close(s);
}

static int fail_recover(void *ctx, drv_store_recovered *r, drv_error *err)
{
    (void)ctx;
    (void)r;
    return drv_error_set(err, "callback refused");
}

static void test_recovery_lists_unfinished(void **state)
{
    store_fixture *f = *state;
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    /* One task in each state, in enum order; ids 1..8. */
    for (int st = 0; st < DRV_TASK_STATE_COUNT; st++) {
        drv_task t;
        full_task(&t, f->tags);
        t.state = DRV_TASK_QUEUED;
        t.attempts = 0;
        assert_int_equal(drv_store_task_insert(s, 0, &t, f->tags, st, &err), st + 1);
        drv_task_clear(&t);
        drv_store_task_update u = {
            .state = (drv_task_state)st,
            .attempts = st >= DRV_TASK_ASSIGNED ? 1 : 0,
            .worker = st == DRV_TASK_ASSIGNED  ? "w-assigned"
                      : st == DRV_TASK_RUNNING ? "w-run"
                                               : NULL,
            .finished_at = drv_task_state_final((drv_task_state)st) ? 50 : 0,
        };
        assert_int_equal(drv_store_task_update_state(s, (uint64_t)st + 1, &u, &err), 0);
    }
    drv_store_task_update u = {.state = DRV_TASK_PASSED};
    assert_int_equal(drv_store_task_update_state(s, 77, &u, &err), -1);
    assert_non_null(strstr(err.msg, "task 77: no such task"));
    commit_ok(s);
    drv_store_close(s);

    s = open_ok(f->path);
    drv_tag_table *fresh = drv_tag_table_new();
    seen v = {.n = 0};
    assert_int_equal(drv_store_recover(s, fresh, on_recovered, &v, &err), 0);
    assert_int_equal(v.n, 3);
    static const drv_task_state want[] = {DRV_TASK_QUEUED, DRV_TASK_ASSIGNED, DRV_TASK_RUNNING};
    static const char *const want_worker[] = {"-", "w-assigned", "w-run"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(v.ids[i], i + 1);
        assert_int_equal(v.states[i], want[i]);
        assert_int_equal(v.attempts[i], i == 0 ? 0 : 1);
        assert_string_equal(v.workers[i], want_worker[i]);
    }
    /* The moved-out task is complete and ours to free. */
    drv_task ref;
    full_task(&ref, f->tags);
    ref.id = 1;
    ref.state = DRV_TASK_QUEUED;
    ref.attempts = 0;
    assert_task_equal(&ref, f->tags, &v.kept, fresh);
    drv_task_clear(&ref);
    drv_task_clear(&v.kept);

    seen once = {.stop_after = 1};
    assert_int_equal(drv_store_recover(s, fresh, on_recovered, &once, &err), 0);
    assert_int_equal(once.n, 1);
    drv_task_clear(&once.kept);
    assert_int_equal(drv_store_recover(s, fresh, fail_recover, NULL, &err), -1);
    assert_string_equal(err.msg, "callback refused");
    drv_tag_table_free(fresh);
    drv_store_close(s);
}

typedef struct listed {
    uint64_t ids[32];
    int n;
} listed;

static int on_row(void *ctx, const drv_store_task_row *row, drv_error *err)
{
    (void)err;
    listed *l = ctx;
    l->ids[l->n++] = row->id;
    return 0;
}

static void test_list_filters_and_counts(void **state)
{
    store_fixture *f = *state;
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    int64_t ra = drv_store_run_create(s, "A", 10, &err);
    int64_t rb = drv_store_run_create(s, NULL, 11, &err);
    static const struct {
        const char *name;
        int run; /* 0: A, 1: B */
        drv_task_state state;
    } tasks[] = {
        {"a_1", 0, DRV_TASK_QUEUED},  {"ab1", 0, DRV_TASK_PASSED},  {"a_2", 0, DRV_TASK_PASSED},
        {"b/1", 0, DRV_TASK_FAILED},  {"b/2", 0, DRV_TASK_RUNNING}, {"a_3", 1, DRV_TASK_PASSED},
        {"c", 1, DRV_TASK_TIMED_OUT}, {"b/3", 1, DRV_TASK_QUEUED},
    };
    for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++) {
        drv_task t;
        minimal_task(&t, tasks[i].name);
        t.state = tasks[i].state;
        assert_int_equal(
            drv_store_task_insert(s, tasks[i].run ? rb : ra, &t, f->tags, (double)i, &err),
            (int64_t)i + 1);
        drv_task_clear(&t);
    }
    drv_store_task_update u = {.state = DRV_TASK_FAILED,
                               .attempts = 1,
                               .worker = "w9",
                               .reason = "exit 2",
                               .finished_at = 40,
                               .has_exit = true,
                               .exit_code = 2,
                               .duration_s = 1.5};
    assert_int_equal(drv_store_task_update_state(s, 4, &u, &err), 0);
    commit_ok(s);

    static const struct {
        int state;
        int run; /* 0: any, 1: A, 2: B */
        const char *prefix;
        uint32_t limit, offset;
        const char *worker; /* NULL: any */
        bool newest_first;
        const char *want; /* ids, comma-separated */
    } rows[] = {
        {-1, 0, NULL, 0, 0, NULL, false, "1,2,3,4,5,6,7,8"},
        {DRV_TASK_PASSED, 0, NULL, 0, 0, NULL, false, "2,3,6"},
        {DRV_TASK_PASSED, 1, NULL, 0, 0, NULL, false, "2,3"},
        {-1, 2, NULL, 0, 0, NULL, false, "6,7,8"},
        {-1, 0, "a_", 0, 0, NULL, false, "1,3,6"}, /* '_' is not a wildcard */
        {-1, 0, "b/", 0, 0, NULL, false, "4,5,8"},
        {DRV_TASK_QUEUED, 2, "b/", 0, 0, NULL, false, "8"},
        {-1, 0, "", 3, 2, NULL, false, "3,4,5"},
        {-1, 1, NULL, 10, 4, NULL, false, "5"},
        {DRV_TASK_CANCELLED, 0, NULL, 0, 0, NULL, false, ""},
        {-1, 0, "zzz", 0, 0, NULL, false, ""},
        {-1, 0, NULL, 0, 0, "w9", false, "4"},
        {-1, 0, NULL, 0, 0, "w9", true, "4"},
        {-1, 0, NULL, 0, 0, "nobody", false, ""},
        {-1, 0, NULL, 3, 0, NULL, true, "8,7,6"},
        {-1, 1, NULL, 2, 1, NULL, true, "4,3"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_store_filter flt = {
            rows[i].state,       rows[i].run == 1 ? ra : rows[i].run == 2 ? rb : 0,
            rows[i].prefix,      rows[i].limit,
            rows[i].offset,      rows[i].worker,
            rows[i].newest_first};
        listed l = {.n = 0};
        int64_t n = drv_store_task_list(s, &flt, on_row, &l, &err);
        char got[128] = "";
        for (int k = 0; k < l.n; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", k ? "," : "",
                     (unsigned long long)l.ids[k]);
        if (n != l.n || strcmp(got, rows[i].want) != 0)
            fail_msg("filter row %zu: got \"%s\" (returned %lld), want \"%s\"", i, got,
                     (long long)n, rows[i].want);
    }
    drv_store_filter bad = {.state = 99};
    assert_int_equal(drv_store_task_list(s, &bad, on_row, NULL, &err), -1);

    drv_store_run_summary r = {0};
    assert_int_equal(drv_store_run_summary_get(s, ra, &r, &err), 1);
    assert_string_equal(r.name, "A");
    assert_int_equal(r.submitted, 5);
    assert_int_equal(r.counts.total, 5);
    assert_int_equal(r.counts.by_state[DRV_TASK_PASSED], 2);
    assert_int_equal(r.counts.by_state[DRV_TASK_FAILED], 1);
    assert_int_equal(r.counts.by_state[DRV_TASK_RUNNING], 1);
    assert_int_equal(r.counts.by_state[DRV_TASK_QUEUED], 1);
    drv_store_run_summary_clear(&r);
    assert_int_equal(drv_store_run_summary_get(s, rb, &r, &err), 1);
    assert_null(r.name);
    assert_int_equal(r.counts.by_state[DRV_TASK_TIMED_OUT], 1);
    assert_int_equal(r.counts.total, 3);
    drv_store_run_summary_clear(&r);
    assert_int_equal(drv_store_run_summary_get(s, 99, &r, &err), 0);

    drv_store_counts c;
    assert_int_equal(drv_store_count(s, &c, &err), 0);
    static const uint64_t want[DRV_TASK_STATE_COUNT] = {[DRV_TASK_QUEUED] = 2,
                                                        [DRV_TASK_RUNNING] = 1,
                                                        [DRV_TASK_PASSED] = 3,
                                                        [DRV_TASK_FAILED] = 1,
                                                        [DRV_TASK_TIMED_OUT] = 1};
    assert_memory_equal(c.by_state, want, sizeof want);
    assert_int_equal(c.total, 8);

    drv_store_task_detail d = {0};
    assert_int_equal(drv_store_task_get(s, 4, f->tags, &d, &err), 1);
    assert_string_equal(d.worker, "w9");
    assert_string_equal(d.reason, "exit 2");
    assert_true(d.has_exit && d.exit_code == 2 && d.duration_s == 1.5 && d.finished_at == 40);
    drv_store_task_detail_clear(&d);
    drv_store_close(s);
}

/* Collects a listing's ids, states, attempts and workers into a seen. */
static int on_live_row(void *ctx, const drv_store_task_row *row, drv_error *err)
{
    (void)err;
    seen *v = ctx;
    v->ids[v->n] = row->id;
    v->states[v->n] = row->state;
    v->attempts[v->n] = row->attempts;
    snprintf(v->workers[v->n], sizeof v->workers[0], "%s%s", row->worker ? row->worker : "-",
             row->reason ? "+reason" : "");
    v->n++;
    return 0;
}

/* Checks the run's counts and the whole store's: queued, assigned, running, passed. */
static void assert_live_counts(drv_store *s, uint64_t q, uint64_t a, uint64_t r, uint64_t p)
{
    drv_error err = {{0}};
    drv_store_run_summary sum = {0};
    drv_store_counts c;
    assert_int_equal(drv_store_run_summary_get(s, 1, &sum, &err), 1);
    assert_int_equal(drv_store_count(s, &c, &err), 0);
    const drv_store_counts *both[] = {&sum.counts, &c};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(both[i]->by_state[DRV_TASK_QUEUED], q);
        assert_int_equal(both[i]->by_state[DRV_TASK_ASSIGNED], a);
        assert_int_equal(both[i]->by_state[DRV_TASK_RUNNING], r);
        assert_int_equal(both[i]->by_state[DRV_TASK_PASSED], p);
        assert_int_equal(both[i]->total, q + a + r + p);
    }
    drv_store_run_summary_clear(&sum);
}

/* A test the balancer moved keeps why on the abandoned attempt ("stolen"), readable
 * with the test; an attempt abandoned for no given reason has none. */
static void test_moved_attempt_keeps_its_reason(void **state)
{
    store_fixture *f = *state;
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    assert_int_equal(drv_store_run_create(s, "moves", 1, &err), 1);
    drv_task t;
    minimal_task(&t, "t");
    assert_int_equal(drv_store_task_insert(s, 1, &t, f->tags, 1, &err), 1);
    drv_task_clear(&t);
    assert_int_equal(drv_store_attempt_begin(s, 1, 1, "w1", 2, &err), 0);
    assert_int_equal(drv_store_attempt_abandon_why(s, 1, 1, "stolen", &err), 1);
    assert_int_equal(drv_store_attempt_begin(s, 1, 2, "w2", 3, &err), 0);
    assert_int_equal(drv_store_attempt_abandon(s, 1, 2, &err), 1);
    /* An attempt that is no longer open keeps what it had. */
    assert_int_equal(drv_store_attempt_abandon_why(s, 1, 1, "rebalanced", &err), 0);
    commit_ok(s);
    drv_store_task_detail d;
    assert_int_equal(drv_store_task_get(s, 1, f->tags, &d, &err), 1);
    assert_int_equal(d.n_attempts, 2);
    assert_int_equal(d.attempts[0].state, DRV_ATTEMPT_ABANDONED);
    assert_string_equal(d.attempts[0].reason, "stolen");
    assert_int_equal(d.attempts[1].state, DRV_ATTEMPT_ABANDONED);
    assert_null(d.attempts[1].reason);
    drv_store_task_detail_clear(&d);
    drv_store_close(s);
}

/* The coordinator writes a test's row only when it is requeued or final: while placed,
 * every read (listing by state, one task, counts in memory and by query, recovery)
 * shows the state, attempt number and worker of its open attempt, as the row showed
 * them when it was written at each assignment and start. */
static void test_live_state_from_attempts(void **state)
{
    store_fixture *f = *state;
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    assert_int_equal(drv_store_run_create(s, "live", 1, &err), 1);
    for (int i = 1; i <= 5; i++) {
        drv_task t;
        minimal_task(&t, "t");
        assert_int_equal(drv_store_task_insert(s, 1, &t, f->tags, 1, &err), i);
        drv_task_clear(&t);
    }
    drv_store_result res = {.finished_at = 4, .duration_s = 1};
    drv_store_task_update lost = {
        .state = DRV_TASK_QUEUED, .attempts = 1, .worker = "w1", .reason = "worker lost"};
    drv_store_task_update passed = {.state = DRV_TASK_PASSED,
                                    .attempts = 1,
                                    .worker = "w1",
                                    .reason = "exited 0",
                                    .finished_at = 4,
                                    .has_exit = true};
    /* 1 assigned; 2 running; 3 lost, requeued, placed again on w2; 4 passed; 5 queued. */
    for (uint64_t id = 1; id <= 4; id++)
        assert_int_equal(drv_store_attempt_begin(s, id, 1, "w1", 2, &err), 0);
    assert_int_equal(drv_store_attempt_started(s, 2, 1, 3, &err), 1);
    assert_int_equal(drv_store_attempt_abandon(s, 3, 1, &err), 1);
    assert_int_equal(drv_store_task_update_state(s, 3, &lost, &err), 0);
    assert_live_counts(s, 2, 2, 1, 0);
    assert_int_equal(drv_store_attempt_begin(s, 3, 2, "w2", 3, &err), 0);
    assert_int_equal(drv_store_attempt_finish(s, 4, 1, &res, NULL, &err), 1);
    assert_int_equal(drv_store_task_update_state(s, 4, &passed, &err), 0);
    assert_live_counts(s, 1, 2, 1, 1);
    /* An undone placement is undone in the counts too. */
    assert_int_equal(drv_store_mark(s, &err), 0);
    assert_int_equal(drv_store_attempt_begin(s, 5, 1, "w1", 4, &err), 0);
    assert_live_counts(s, 0, 3, 1, 1);
    assert_int_equal(drv_store_mark_undo(s, &err), 0);
    assert_live_counts(s, 1, 2, 1, 1);
    commit_ok(s);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM tasks WHERE state = 'queued'"), 4);

    static const struct {
        drv_task_state state;
        uint32_t attempts;
        const char *worker;
    } want[] = {{DRV_TASK_ASSIGNED, 1, "w1"},
                {DRV_TASK_RUNNING, 1, "w1"},
                {DRV_TASK_ASSIGNED, 2, "w2"},
                {DRV_TASK_PASSED, 1, "w1+reason"},
                {DRV_TASK_QUEUED, 0, "-"}};
    /* Twice: counted in memory, then (a run of an earlier process) by query. */
    for (int pass = 0; pass < 2; pass++) {
        for (int st = DRV_TASK_QUEUED; st <= DRV_TASK_PASSED; st++) {
            drv_store_filter fl = {.state = st, .run_id = pass ? 1 : 0};
            seen v = {.n = 0};
            int64_t n = drv_store_task_list(s, &fl, on_live_row, &v, &err);
            for (int64_t i = 0; i < n; i++) {
                int k = (int)v.ids[i] - 1;
                assert_int_equal(v.states[i], st);
                assert_int_equal(want[k].state, st);
                assert_int_equal(v.attempts[i], want[k].attempts);
                assert_string_equal(v.workers[i], want[k].worker);
            }
            assert_int_equal(n, st == DRV_TASK_ASSIGNED ? 2 : 1);
        }
        for (uint64_t id = 1; id <= 5; id++) {
            drv_store_task_detail d = {0};
            assert_int_equal(drv_store_task_get(s, id, f->tags, &d, &err), 1);
            assert_int_equal(d.task.state, want[id - 1].state);
            assert_int_equal(d.task.attempts, want[id - 1].attempts);
            char w[24];
            snprintf(w, sizeof w, "%s%s", d.worker ? d.worker : "-", d.reason ? "+reason" : "");
            assert_string_equal(w, want[id - 1].worker);
            drv_store_task_detail_clear(&d);
        }
        assert_live_counts(s, 1, 2, 1, 1);
        drv_store_close(s);
        s = open_ok(f->path);
    }
    seen v = {.n = 0};
    assert_int_equal(drv_store_recover(s, f->tags, on_recovered, &v, &err), 0);
    assert_int_equal(v.n, 4);
    static const uint64_t ids[] = {1, 2, 3, 5};
    for (int i = 0; i < 4; i++) {
        const char *w = want[ids[i] - 1].worker;
        assert_int_equal(v.ids[i], ids[i]);
        assert_int_equal(v.states[i], want[ids[i] - 1].state);
        assert_int_equal(v.attempts[i], want[ids[i] - 1].attempts);
        assert_string_equal(v.workers[i], w);
    }
    drv_task_clear(&v.kept);
    drv_store_close(s);
}

static int on_worker(void *ctx, const drv_worker *w, double last_seen, drv_error *err)
{
    (void)err;
    drv_worker *out = ctx;
    *out = *w;
    out->reported_load = (float)last_seen; /* smuggle it out for the test */
    return 0;
}

static int collect_point(void *ctx, int64_t t, double value)
{
    double *out = ctx;
    size_t n = (size_t)out[0];
    out[1 + 2 * n] = (double)t;
    out[2 + 2 * n] = value;
    out[0] = (double)(n + 1);
    return 0;
}

static int collect_series(void *ctx, int64_t id, const char *name, const char *key, drv_error *err)
{
    (void)err;
    char *out = ctx;
    size_t len = strlen(out);
    snprintf(out + len, 256 - len, "%lld:%s:%s;", (long long)id, name, key);
    return 0;
}

/* The metrics history: series by id, samples averaged into buckets of the asked step, one
 * resolution at a time, a repeated sample replacing the first, old samples pruned. */
static void test_metrics_history(void **state)
{
    store_fixture *f = *state;
    drv_store *s = open_ok(f->path);
    drv_error err;
    assert_int_equal(drv_store_series_add(s, 1, "tests_queued", "", &err), 0);
    assert_int_equal(drv_store_series_add(s, 2, "worker_utilization", "w1", &err), 0);
    assert_int_equal(drv_store_series_add(s, 2, "ignored", "x", &err), 0); /* id kept */
    assert_int_equal(drv_store_series_add(s, 0, "bad", "", &err), -1);
    for (int t = 100; t < 106; t++)
        assert_int_equal(drv_store_sample_append(s, 1, 1, t, t - 100, &err), 0);
    assert_int_equal(drv_store_sample_append(s, 1, 1, 105, 50, &err), 0); /* replaces 5 */
    assert_int_equal(drv_store_sample_append(s, 1, 60, 60, 7, &err), 0);
    assert_int_equal(drv_store_sample_append(s, 2, 1, 100, 0.5, &err), 0);
    commit_ok(s);
    char names[256] = "";
    assert_int_equal(drv_store_series_list(s, collect_series, names, &err), 0);
    assert_string_equal(names, "1:tests_queued:;2:worker_utilization:w1;");
    double pts[1 + 2 * 16] = {0};
    assert_int_equal(drv_store_sample_query(s, 1, 1, 100, 105, 2, collect_point, pts, &err), 3);
    /* buckets 100: (0+1)/2, 102: (2+3)/2, 104: (4+50)/2 */
    assert_true(pts[1] == 100 && pts[2] == 0.5 && pts[3] == 102 && pts[4] == 2.5 && pts[5] == 104 &&
                pts[6] == 27);
    memset(pts, 0, sizeof pts);
    assert_int_equal(drv_store_sample_query(s, 1, 60, 0, 1000, 60, collect_point, pts, &err), 1);
    assert_true(pts[1] == 60 && pts[2] == 7);
    assert_int_equal(drv_store_sample_query(s, 1, 1, 0, 1000, 0, collect_point, pts, &err), -1);
    assert_int_equal(drv_store_sample_prune(s, 1, 1, 104, &err), 0);
    commit_ok(s);
    assert_int_equal(
        store_fx_int(f->path, "SELECT count(*) FROM samples WHERE series = 1 AND res = 1"), 2);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM samples"), 4);
    drv_store_close(s);
}

/* mon3: the unfinished 1 min and 10 min buckets read back from the 1 s samples (a
 * restart continues them), a series removed with its samples. */
static void test_metrics_partial_buckets(void **state)
{
    store_fixture *f = *state;
    drv_store *s = open_ok(f->path);
    drv_error err;
    drv_rollup part[DRV_SERIES_RESOLUTIONS - 1];
    assert_int_equal(drv_store_series_add(s, 1, "tests_queued", "", &err), 0);
    assert_int_equal(drv_store_series_add(s, 2, "worker_utilization", "w1", &err), 0);
    commit_ok(s);
    assert_int_equal(drv_store_sample_partial(s, 1, part, &err), 0);
    assert_true(part[0].n == 0 && part[1].n == 0); /* no sample yet */
    /* 1 s samples at 1190..1205 (value t - 1000): the newest is in the minute from 1200
     * and the ten minutes from 1200; 1190..1199 belong to earlier buckets. A 60 s row
     * is not a 1 s sample. */
    for (int t = 1190; t <= 1205; t++)
        assert_int_equal(drv_store_sample_append(s, 1, 1, t, t - 1000, &err), 0);
    assert_int_equal(drv_store_sample_append(s, 1, 60, 1200, 999, &err), 0);
    assert_int_equal(drv_store_sample_append(s, 2, 1, 1250, 0.5, &err), 0);
    commit_ok(s);
    assert_int_equal(drv_store_sample_partial(s, 1, part, &err), 0);
    assert_true(part[0].bucket == 1200 && part[0].n == 6 &&
                part[0].sum == 200 + 201 + 202 + 203 + 204 + 205);
    assert_true(part[1].bucket == 1200 && part[1].n == 6 && part[1].sum == part[0].sum);
    /* a sample at 1261: a new minute begins, the ten minutes from 1200 go on */
    assert_int_equal(drv_store_sample_append(s, 1, 1, 1261, 10, &err), 0);
    commit_ok(s);
    assert_int_equal(drv_store_sample_partial(s, 1, part, &err), 0);
    assert_true(part[0].bucket == 1260 && part[0].n == 1 && part[0].sum == 10);
    assert_true(part[1].bucket == 1200 && part[1].n == 7 && part[1].sum == 1215 + 10);
    assert_int_equal(drv_store_sample_partial(s, 2, part, &err), 0);
    assert_true(part[0].bucket == 1200 && part[0].n == 1 && part[0].sum == 0.5);

    assert_int_equal(drv_store_series_remove(s, 2, &err), 0);
    commit_ok(s);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM samples WHERE series = 2"), 0);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM sample_series"), 1);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM samples WHERE series = 1"), 18);
    drv_store_close(s);
}

static int collect_anomaly(void *ctx, const drv_store_anomaly *a, drv_error *err)
{
    (void)err;
    char *out = ctx;
    size_t len = strlen(out);
    snprintf(out + len, 512 - len, "%lld:%s:%s:%s:%s:%g:%g;", (long long)a->id, a->kind,
             a->severity, a->worker, a->evidence, a->start, a->end);
    return 0;
}

/* mon3: anomalies kept, rewritten by id, listed by the range they were open in (open
 * ones first, then newest first), the ended ones pruned by their end. */
static void test_anomalies_kept(void **state)
{
    store_fixture *f = *state;
    drv_store *s = open_ok(f->path);
    drv_error err;
    char got[512] = "";
    assert_int_equal(drv_store_anomaly_max_id(s, &err), 0);
    drv_store_anomaly a = {1, "slow_worker", "warning", "w1", "w1 is slow", "{\"slower\":5}", 100,
                           0};
    assert_int_equal(drv_store_anomaly_save(s, &a, &err), 0);
    a.severity = "critical"; /* the same anomaly, its severity changed */
    assert_int_equal(drv_store_anomaly_save(s, &a, &err), 0);
    drv_store_anomaly b = {2, "queue_stalled", "warning", "", "stalled", "{}", 150, 160};
    drv_store_anomaly c = {3, "flapping", "warning", "w2", "flaps", "{}", 200, 210};
    assert_int_equal(drv_store_anomaly_save(s, &b, &err), 0);
    assert_int_equal(drv_store_anomaly_save(s, &c, &err), 0);
    commit_ok(s);
    assert_int_equal(drv_store_anomaly_max_id(s, &err), 3);
    assert_int_equal(drv_store_anomaly_list(s, 0, 1000, 10, collect_anomaly, got, &err), 3);
    assert_string_equal(got,
                        "1:slow_worker:critical:w1:{\"slower\":5}:100:0;"
                        "3:flapping:warning:w2:{}:200:210;2:queue_stalled:warning::{}:150:160;");
    got[0] = '\0';
    /* [170, 190]: only the open one; [155, 170]: the open one and the stall */
    assert_int_equal(drv_store_anomaly_list(s, 170, 190, 10, collect_anomaly, got, &err), 1);
    got[0] = '\0';
    assert_int_equal(drv_store_anomaly_list(s, 155, 170, 10, collect_anomaly, got, &err), 2);
    got[0] = '\0';
    assert_int_equal(drv_store_anomaly_list(s, 0, 50, 10, collect_anomaly, got, &err), 0);
    assert_int_equal(drv_store_anomaly_list(s, 0, 1000, 1, collect_anomaly, got, &err), 1);
    /* ended before 205: the stall goes; the open one and the flapping stay */
    assert_int_equal(drv_store_anomaly_prune(s, 205, &err), 0);
    commit_ok(s);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM anomalies"), 2);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM anomalies WHERE id = 2"), 0);
    drv_store_close(s);
}

static void test_workers_events_metrics(void **state)
{
    store_fixture *f = *state;
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    drv_worker w;
    memset(&w, 0, sizeof w);
    snprintf(w.name, sizeof w.name, "gpu-01");
    w.caps.cpu_cores = 32;
    w.caps.memory_mb = 131072;
    w.caps.gpu_count = 4;
    w.caps.gpu_memory_mb = 81920;
    w.caps.cuda_cc = 90;
    w.caps.driver_version = 550054014;
    assert_int_equal(drv_tagset_parse(f->tags, "cpu,cuda,zone-b", &w.caps.tags, NULL), 0);
    w.slots = 4;
    assert_int_equal(drv_store_worker_upsert(s, &w, f->tags, 100, &err), 0);
    w.slots = 6;
    assert_int_equal(drv_store_worker_upsert(s, &w, f->tags, 200, &err), 0);
    assert_int_equal(drv_store_worker_health(s, "gpu-01", DRV_HEALTH_QUARANTINED,
                                             "3 infrastructure failures in a row", 300, &err),
                     0);
    assert_int_equal(drv_store_worker_health(s, "nobody", DRV_HEALTH_OK, NULL, 300, &err), -1);
    assert_non_null(strstr(err.msg, "worker nobody: no such worker"));
    int64_t e1 = drv_store_event_append(s, 1, "worker_joined", 0, "gpu-01", NULL, &err);
    int64_t e2 = drv_store_event_append(s, 2, "task_retried", 7, NULL, "lost worker", &err);
    assert_true(e1 > 0 && e2 > e1);
    assert_int_equal(drv_store_event_append(s, 3, "", 0, NULL, NULL, &err), -1);
    assert_int_equal(drv_store_series_add(s, 1, "queue_depth", "", &err), 0);
    assert_int_equal(drv_store_sample_append(s, 1, 1, 1, 12, &err), 0);
    assert_int_equal(drv_store_sample_append(s, 1, 1, 2, 9, &err), 0);
    commit_ok(s);
    assert_string_equal(
        (store_fx_int(f->path, "SELECT labels = '[\"zone-b\"]' FROM workers") ? "ok" : "bad"),
        "ok");
    assert_int_equal(store_fx_int(f->path, "SELECT sum(value) FROM samples"), 21);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM events WHERE task_id IS NULL"), 1);

    drv_tag_table *fresh = drv_tag_table_new();
    drv_worker got;
    memset(&got, 0, sizeof got);
    assert_int_equal(drv_store_worker_list(s, fresh, on_worker, &got, &err), 0);
    assert_string_equal(got.name, "gpu-01");
    assert_int_equal(got.slots, 6);
    assert_int_equal(got.caps.memory_mb, 131072);
    assert_int_equal(got.caps.cuda_cc, 90);
    assert_int_equal(got.caps.driver_version, 550054014);
    assert_tagset_names(f->tags, &w.caps.tags, fresh, &got.caps.tags);
    assert_int_equal(got.health, DRV_HEALTH_QUARANTINED);
    assert_string_equal(got.health_reason, "3 infrastructure failures in a row");
    assert_true(got.joined_at == 100); /* first_seen kept by the second upsert */
    assert_true(got.reported_load == 300);
    drv_tag_table_free(fresh);
    drv_store_close(s);
}

/* The version 1 schema exactly as drover 0.3 wrote it, to check the migration. */
static const char schema_v1[] =
    "CREATE TABLE runs ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT,"
    "  created_at REAL NOT NULL,"
    "  submitted INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE tasks ("
    "  id INTEGER PRIMARY KEY,"
    "  run_id INTEGER REFERENCES runs(id),"
    "  name TEXT,"
    "  argv TEXT,"
    "  env TEXT,"
    "  cwd TEXT,"
    "  requirements TEXT NOT NULL,"
    "  priority INTEGER NOT NULL,"
    "  timeout_s REAL NOT NULL,"
    "  max_retries INTEGER NOT NULL,"
    "  retry_on_failure INTEGER NOT NULL,"
    "  model_id TEXT,"
    "  family INTEGER NOT NULL,"
    "  test_type TEXT,"
    "  batch_size INTEGER NOT NULL,"
    "  labels TEXT,"
    "  state TEXT NOT NULL CHECK (state IN ('queued', 'assigned', 'running', 'passed',"
    "    'failed', 'timed_out', 'cancelled', 'unschedulable')),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  submitted_at REAL NOT NULL,"
    "  finished_at REAL,"
    "  worker TEXT,"
    "  exit_code INTEGER,"
    "  signal INTEGER,"
    "  duration_s REAL,"
    "  reason TEXT);"
    "CREATE INDEX tasks_state ON tasks(state);"
    "CREATE INDEX tasks_run ON tasks(run_id, state);"
    "CREATE TRIGGER tasks_count_in_run AFTER INSERT ON tasks WHEN NEW.run_id IS NOT NULL"
    " BEGIN UPDATE runs SET submitted = submitted + 1 WHERE id = NEW.run_id; END;"
    "CREATE TABLE attempts ("
    "  task_id INTEGER NOT NULL REFERENCES tasks(id),"
    "  attempt INTEGER NOT NULL CHECK (attempt >= 1),"
    "  worker TEXT,"
    "  state TEXT NOT NULL CHECK (state IN ('assigned', 'running', 'finished', 'abandoned')),"
    "  assigned_at REAL NOT NULL,"
    "  started_at REAL,"
    "  finished_at REAL,"
    "  exit_code INTEGER,"
    "  signal INTEGER,"
    "  timed_out INTEGER,"
    "  infra_failure INTEGER,"
    "  duration_s REAL,"
    "  peak_memory_kb INTEGER,"
    "  output_tail TEXT,"
    "  UNIQUE (task_id, attempt));"
    "CREATE TRIGGER attempts_supersede AFTER INSERT ON attempts BEGIN"
    " UPDATE attempts SET state = 'abandoned' WHERE task_id = NEW.task_id"
    "  AND attempt < NEW.attempt AND state IN ('assigned', 'running'); END;"
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
    "CREATE INDEX events_t ON events(t);"
    "CREATE TABLE metrics ("
    "  t REAL NOT NULL,"
    "  name TEXT NOT NULL,"
    "  value REAL NOT NULL);"
    "CREATE INDEX metrics_name_t ON metrics(name, t);";

/* A version 1 file (with a run, a finished test, a test with an abandoned and an open
 * attempt, and a queued test) is migrated to the current version on open, with every
 * row kept, and behaves like a new one afterwards. */
static void test_migrates_version_1(void **state)
{
    store_fixture *f = *state;
    raw_exec(f->path, schema_v1);
    raw_exec(f->path,
             "PRAGMA user_version = 1;"
             "INSERT INTO runs (name, created_at) VALUES ('old', 1);"
             "INSERT INTO tasks (id, run_id, name, argv, requirements, priority, timeout_s,"
             " max_retries, retry_on_failure, family, batch_size, state, attempts, submitted_at,"
             " finished_at, worker, exit_code, signal, duration_s, reason) VALUES"
             " (1, 1, 'done', '[\"true\"]', '{}', 100, 0, 0, 0, 0, 0, 'passed', 1, 2, 3, 'w1', 0,"
             "  0, 0.5, 'passed'),"
             " (2, 1, 'moved', '[\"true\"]', '{}', 100, 0, 1, 0, 0, 0, 'running', 2, 2, NULL,"
             "  'w2', NULL, NULL, NULL, NULL),"
             " (3, 1, 'waiting', '[\"true\"]', '{}', 100, 0, 0, 0, 0, 0, 'queued', 0, 2, NULL,"
             "  NULL, NULL, NULL, NULL, NULL);"
             "INSERT INTO attempts (task_id, attempt, worker, state, assigned_at, finished_at,"
             " exit_code) VALUES (1, 1, 'w1', 'finished', 2, 3, 0);"
             "INSERT INTO attempts (task_id, attempt, worker, state, assigned_at) VALUES"
             " (2, 1, 'w1', 'assigned', 2), (2, 2, 'w2', 'running', 3);");
    assert_int_equal(store_fx_int(f->path,
                                  "SELECT state = 'abandoned' FROM attempts WHERE task_id = 2"
                                  " AND attempt = 1"),
                     1);
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    assert_int_equal(store_fx_int(f->path, "PRAGMA user_version"), DRV_STORE_SCHEMA_VERSION);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name IN"
                                           " ('tasks_v2', 'attempts_v2', 'tasks_state')"),
                     0);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    /* Version 5: a run's tasks are counted by the store, the run index is on run_id. */
    assert_int_equal(
        store_fx_int(f->path,
                     "SELECT count(*) FROM sqlite_master WHERE name = 'tasks_count_in_run'"),
        0);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM pragma_index_info('tasks_run')"),
                     1);

    drv_store_run_summary r = {0};
    assert_int_equal(drv_store_run_summary_get(s, 1, &r, &err), 1);
    assert_int_equal(r.submitted, 3);
    assert_int_equal(r.counts.by_state[DRV_TASK_PASSED], 1);
    assert_int_equal(r.counts.by_state[DRV_TASK_RUNNING], 1);
    assert_int_equal(r.counts.by_state[DRV_TASK_QUEUED], 1);
    drv_store_run_summary_clear(&r);

    drv_store_task_detail d = {0};
    assert_int_equal(drv_store_task_get(s, 2, f->tags, &d, &err), 1);
    assert_int_equal(d.n_attempts, 2);
    assert_int_equal(d.attempts[0].state, DRV_ATTEMPT_ABANDONED);
    assert_int_equal(d.attempts[1].state, DRV_ATTEMPT_RUNNING);
    assert_string_equal(d.attempts[1].worker, "w2");
    /* Version 4: the row says 'queued'; the test shows running on w2 by its attempt. */
    assert_int_equal(d.task.state, DRV_TASK_RUNNING);
    assert_int_equal(d.task.attempts, 2);
    assert_string_equal(d.worker, "w2");
    assert_int_equal(store_fx_int(f->path, "SELECT state = 'queued' FROM tasks WHERE id = 2"), 1);
    drv_store_task_detail_clear(&d);

    /* The open attempt still takes its result once; the abandoned one's is not counted;
     * the run's counter and the attempt key work as before. */
    drv_store_result res = {.finished_at = 5, .duration_s = 1};
    assert_int_equal(drv_store_attempt_finish(s, 2, 1, &res, NULL, &err), 0);
    assert_int_equal(drv_store_attempt_finish(s, 2, 2, &res, NULL, &err), 1);
    assert_int_equal(drv_store_attempt_finish(s, 2, 2, &res, NULL, &err), 0);
    assert_int_equal(drv_store_attempt_begin(s, 3, 1, "w1", 6, &err), 0);
    assert_int_equal(drv_store_attempt_begin(s, 3, 1, "w1", 6, &err), -1);
    assert_non_null(strstr(err.msg, "task 3 attempt 1: already begun"));
    drv_task t;
    minimal_task(&t, "new");
    assert_int_equal(drv_store_task_insert(s, 1, &t, f->tags, 7, &err), 4);
    drv_task_clear(&t);
    commit_ok(s);
    assert_int_equal(store_fx_int(f->path, "SELECT submitted FROM runs WHERE id = 1"), 4);
    drv_store_close(s);
}

/* Waits until every commit handed to s's writer is in the file. */
static void settle(drv_store *s)
{
    drv_error err = {{0}};
    uint64_t durable = 0;
    for (int i = 0; i < 10000; i++) {
        if (drv_store_durable(s, &durable, &err) < 0)
            fail_msg("writer: %s", err.msg);
        if (durable == drv_store_handed(s))
            return;
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    fail_msg("the writer did not write commit %llu in 10 s",
             (unsigned long long)drv_store_handed(s));
}

static void notified(void *ctx)
{
    __atomic_add_fetch((int *)ctx, 1, __ATOMIC_SEQ_CST);
}

static void writer_ok(drv_store *s, int *notes)
{
    drv_error err = {{0}};
    if (drv_store_writer_start(s, notes ? notified : NULL, notes, &err) < 0)
        fail_msg("writer: %s", err.msg);
}

/* A run's counts by state are kept in memory for the runs this store created
 * (store_counts.c), so they must follow every write, mark, undo, rollback and commit
 * exactly: after each commit they are compared with a count of the file's rows through
 * a second connection. A run with a task inserted under an explicit id far ahead of the
 * others falls back to the count by query, and must be right too. with_writer: the same
 * through the writer thread (a commit is checked once the writer has written it). */
static void run_counts_follow_writes(store_fixture *f, bool with_writer)
{
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    if (with_writer)
        writer_ok(s, NULL);
    int64_t runs[16];
    int n_runs = 0;
    uint64_t ids[4096];
    size_t n_ids = 0;
    uint32_t seed = 12345;
#define RND(n) ((seed = seed * 1103515245u + 12345u) >> 8) % (n)
    for (int step = 0; step < 600; step++) {
        unsigned op = RND(100);
        if (n_runs == 0 || (op < 4 && n_runs < 16)) {
            int64_t r = drv_store_run_create(s, "r", step, &err);
            assert_true(r > 0);
            runs[n_runs++] = r;
        } else if (op < 45 && n_ids < 4000) {
            drv_task t;
            minimal_task(&t, "t");
            t.state = (drv_task_state)RND(DRV_TASK_STATE_COUNT);
            if (RND(200) == 0)
                t.id = 5000000 + (uint64_t)step; /* far ahead: that run is counted by query */
            int64_t id = drv_store_task_insert(s, runs[RND(n_runs)], &t, f->tags, step, &err);
            if (id < 0)
                fail_msg("insert: %s", err.msg);
            ids[n_ids++] = (uint64_t)id;
            drv_task_clear(&t);
        } else if (op < 75 && n_ids > 0) {
            drv_store_task_update u = {.state = (drv_task_state)RND(DRV_TASK_STATE_COUNT)};
            /* An id rolled back since is "no such task": fine, nothing changes. */
            drv_store_task_update_state(s, ids[RND(n_ids)], &u, &err);
        } else if (op < 85) {
            assert_int_equal(drv_store_mark(s, &err), 0);
            drv_task t;
            minimal_task(&t, "marked");
            int64_t id = drv_store_task_insert(s, runs[RND(n_runs)], &t, f->tags, step, &err);
            drv_task_clear(&t);
            drv_store_task_update u = {.state = DRV_TASK_RUNNING};
            if (n_ids > 0)
                drv_store_task_update_state(s, ids[RND(n_ids)], &u, &err);
            if (RND(2)) {
                assert_int_equal(drv_store_mark_undo(s, &err), 0);
            } else {
                assert_int_equal(drv_store_mark_release(s, &err), 0);
                ids[n_ids++] = (uint64_t)id;
            }
        } else if (op < 90) {
            if (with_writer)
                settle(s); /* what was handed is written: only the rest is rolled back */
            assert_int_equal(drv_store_rollback(s, &err), 0);
            /* The runs and ids of the rolled-back writes may be reused: forget what is
             * not in the file (a later update of such an id fails harmlessly). */
            while (n_runs > 0) {
                char sql[96];
                snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE id = %lld",
                         (long long)runs[n_runs - 1]);
                if (store_fx_int(f->path, sql))
                    break;
                n_runs--;
            }
        } else {
            commit_ok(s);
            if (with_writer)
                settle(s);
            for (int r = 0; r < n_runs; r++) {
                drv_store_run_summary sum = {0};
                assert_int_equal(drv_store_run_summary_get(s, runs[r], &sum, &err), 1);
                for (int k = 0; k < DRV_TASK_STATE_COUNT; k++) {
                    char sql[160];
                    snprintf(sql, sizeof sql,
                             "SELECT count(*) FROM tasks WHERE run_id = %lld AND state = '%s'",
                             (long long)runs[r], drv_task_state_name((drv_task_state)k));
                    if ((int64_t)sum.counts.by_state[k] != store_fx_int(f->path, sql))
                        fail_msg("step %d run %lld %s: counted %llu, the file has %lld", step,
                                 (long long)runs[r], drv_task_state_name((drv_task_state)k),
                                 (unsigned long long)sum.counts.by_state[k],
                                 (long long)store_fx_int(f->path, sql));
                }
                assert_int_equal(sum.counts.total, sum.submitted);
                drv_store_run_summary_clear(&sum);
            }
            /* The whole store's counts (kept in memory until a task inserted far ahead
             * makes them unknown, then counted by query). */
            drv_store_counts all;
            assert_int_equal(drv_store_count(s, &all, &err), 0);
            for (int k = 0; k < DRV_TASK_STATE_COUNT; k++) {
                char sql[128];
                snprintf(sql, sizeof sql, "SELECT count(*) FROM tasks WHERE state = '%s'",
                         drv_task_state_name((drv_task_state)k));
                if ((int64_t)all.by_state[k] != store_fx_int(f->path, sql))
                    fail_msg("step %d: %s: counted %llu in all, the file has %lld", step,
                             drv_task_state_name((drv_task_state)k),
                             (unsigned long long)all.by_state[k],
                             (long long)store_fx_int(f->path, sql));
            }
        }
    }
#undef RND
    drv_store_close(s);
}

static void test_run_counts_follow_writes(void **state)
{
    run_counts_follow_writes(*state, false);
}

static void test_run_counts_follow_writes_with_writer(void **state)
{
    run_counts_follow_writes(*state, true);
}

/* The writer thread: writes are invisible to reads until handed and written, ids are
 * given without asking SQLite, guarded writes queue, the notify callback fires, and what
 * was handed before a close is in the file after it. */
static void test_writer_thread(void **state)
{
    store_fixture *f = *state;
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    /* Something committed before the writer: its ids go on from there. */
    int64_t run0 = drv_store_run_create(s, "before", 1, &err);
    drv_task t;
    minimal_task(&t, "before");
    int64_t id0 = drv_store_task_insert(s, run0, &t, f->tags, 1, &err);
    drv_task_clear(&t);
    assert_true(id0 > 0);
    assert_int_equal(drv_store_writer_start(s, NULL, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "commit before starting the writer"));
    commit_ok(s);
    int notes = 0;
    writer_ok(s, &notes);
    assert_int_equal(drv_store_writer_start(s, NULL, NULL, &err), -1);

    uint64_t handed = drv_store_handed(s);
    int64_t run = drv_store_run_create(s, "r", 2, &err);
    assert_int_equal(run, run0 + 1);
    int64_t ids[3];
    for (int i = 0; i < 3; i++) {
        minimal_task(&t, "w");
        ids[i] = drv_store_task_insert(s, run, &t, f->tags, 2, &err);
        drv_task_clear(&t);
        assert_int_equal(ids[i], id0 + 1 + i);
    }
    /* Refused at once, with the writer: a run not created, an id that may be taken. */
    minimal_task(&t, "bad");
    assert_int_equal(drv_store_task_insert(s, run + 5, &t, f->tags, 2, &err), -1);
    assert_non_null(strstr(err.msg, "no such run"));
    t.id = (uint64_t)id0;
    assert_int_equal(drv_store_task_insert(s, run, &t, f->tags, 2, &err), -1);
    assert_non_null(strstr(err.msg, "may be used by another task"));
    drv_task_clear(&t);
    assert_int_equal(drv_store_attempt_begin(s, (uint64_t)ids[0], 1, "w1", 3, &err), 0);
    assert_int_equal(drv_store_attempt_started(s, (uint64_t)ids[0], 1, 4, &err), 1);
    drv_store_result r = {.finished_at = 5, .exit_code = 0, .duration_s = 1, .output_tail = "ok"};
    assert_int_equal(drv_store_attempt_finish(s, (uint64_t)ids[0], 1, &r, NULL, &err), 1);
    drv_store_attempt_state prior;
    assert_int_equal(drv_store_attempt_finish(s, (uint64_t)ids[0], 1, &r, &prior, &err), -1);
    /* A duplicate result is queued too; the guard in the file keeps the first. */
    drv_store_result dup = {.finished_at = 6, .exit_code = 9};
    assert_int_equal(drv_store_attempt_finish(s, (uint64_t)ids[0], 1, &dup, NULL, &err), 1);
    drv_store_task_update u = {
        .state = DRV_TASK_PASSED, .attempts = 1, .finished_at = 5, .has_exit = true};
    assert_int_equal(drv_store_task_update_state(s, (uint64_t)ids[0], &u, &err), 0);
    assert_true(drv_store_pending(s));

    /* Nothing of it is visible to reads before the commit is written, but the counts
     * kept in memory follow the writes as they are made. */
    drv_store_task_detail d = {0};
    assert_int_equal(drv_store_task_get(s, (uint64_t)ids[1], f->tags, &d, &err), 0);
    drv_store_counts c;
    assert_int_equal(drv_store_count(s, &c, &err), 0);
    assert_int_equal(c.total, 4);
    assert_int_equal(drv_store_handed(s), handed);
    commit_ok(s);
    assert_false(drv_store_pending(s));
    assert_int_equal(drv_store_handed(s), handed + 1);
    assert_int_equal(drv_store_sync(s, &err), 0);
    uint64_t durable = 0;
    assert_int_equal(drv_store_durable(s, &durable, &err), 0);
    assert_int_equal(durable, handed + 1);
    assert_true(__atomic_load_n(&notes, __ATOMIC_SEQ_CST) >= 1);
    assert_int_equal(drv_store_task_get(s, (uint64_t)ids[1], f->tags, &d, &err), 1);
    drv_store_task_detail_clear(&d);
    assert_int_equal(drv_store_count(s, &c, &err), 0);
    assert_int_equal(c.total, 4);
    assert_int_equal(c.by_state[DRV_TASK_PASSED], 1);
    assert_int_equal(store_fx_int(f->path, "SELECT exit_code FROM attempts WHERE attempt = 1"), 0);
    assert_int_equal(store_fx_int(f->path, "SELECT submitted FROM runs WHERE name = 'r'"), 3);
    drv_store_run_summary sum = {0};
    assert_int_equal(drv_store_run_summary_get(s, run, &sum, &err), 1);
    assert_int_equal(sum.counts.by_state[DRV_TASK_PASSED], 1);
    assert_int_equal(sum.counts.by_state[DRV_TASK_QUEUED], 2);
    drv_store_run_summary_clear(&sum);

    /* A mark undone drops its writes and gives its ids out again. */
    assert_int_equal(drv_store_mark(s, &err), 0);
    minimal_task(&t, "undone");
    int64_t gone = drv_store_task_insert(s, run, &t, f->tags, 7, &err);
    assert_int_equal(drv_store_mark_undo(s, &err), 0);
    int64_t again = drv_store_task_insert(s, run, &t, f->tags, 7, &err);
    drv_task_clear(&t);
    assert_int_equal(gone, again);
    /* Handed, not waited for: the close writes it. */
    commit_ok(s);
    drv_store_close(s);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM tasks WHERE name = 'undone'"), 1);
    assert_int_equal(store_fx_int(f->path, "SELECT submitted FROM runs WHERE name = 'r'"), 4);

    /* Reopened, the ids go on after what the file holds. */
    s = open_ok(f->path);
    writer_ok(s, NULL);
    minimal_task(&t, "after");
    assert_int_equal(drv_store_task_insert(s, 0, &t, f->tags, 8, &err), again + 1);
    drv_task_clear(&t);
    drv_store_close(s); /* never handed: not in the file */
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM tasks WHERE name = 'after'"), 0);
}

/* The file's count of tasks shown in each state (a 'queued' row with an open attempt
 * shows the attempt's state) equals drv_store_count's. */
static void check_counts(drv_store *s, const char *path)
{
    drv_error err = {{0}};
    assert_false(drv_store_pending(s)); /* what is compared is in the file */
    drv_store_counts c;
    assert_int_equal(drv_store_count(s, &c, &err), 0);
    for (int k = 0; k < DRV_TASK_STATE_COUNT; k++) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM tasks WHERE (CASE WHEN state = 'queued' THEN"
                 " coalesce((SELECT a.state FROM attempts a WHERE a.task_id = tasks.id AND"
                 " (a.state = 'assigned' OR a.state = 'running')), 'queued') ELSE state END)"
                 " = '%s'",
                 drv_task_state_name((drv_task_state)k));
        int64_t want = store_fx_int(path, sql);
        if ((int64_t)c.by_state[k] != want)
            fail_msg("%s: counted %llu, the file has %lld", drv_task_state_name((drv_task_state)k),
                     (unsigned long long)c.by_state[k], (long long)want);
    }
}

static int count_recovered(void *ctx, drv_store_recovered *r, drv_error *err)
{
    (void)r;
    (void)err;
    (*(int *)ctx)++;
    return 0;
}

/* The whole store's counts after a restart: counted once at open, then followed through
 * the writes to tests found not final (recovered, with open attempts) and to new ones;
 * always equal to a count of the file. */
static void test_counts_follow_recovered_tests(void **state)
{
    store_fixture *f = *state;
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    int64_t run = drv_store_run_create(s, "r", 1, &err);
    for (int i = 0; i < 6; i++) {
        drv_task t;
        minimal_task(&t, "t");
        assert_int_equal(drv_store_task_insert(s, run, &t, f->tags, 1, &err), i + 1);
        drv_task_clear(&t);
    }
    /* 1 passed, 2 running, 3 assigned, 4-6 queued. */
    drv_store_task_update done = {.state = DRV_TASK_PASSED, .attempts = 1, .finished_at = 2};
    assert_int_equal(drv_store_attempt_begin(s, 1, 1, "w", 1, &err), 0);
    drv_store_result ok = {.finished_at = 2};
    assert_int_equal(drv_store_attempt_finish(s, 1, 1, &ok, NULL, &err), 1);
    assert_int_equal(drv_store_task_update_state(s, 1, &done, &err), 0);
    assert_int_equal(drv_store_attempt_begin(s, 2, 1, "w", 1, &err), 0);
    assert_int_equal(drv_store_attempt_started(s, 2, 1, 2, &err), 1);
    assert_int_equal(drv_store_attempt_begin(s, 3, 1, "w", 1, &err), 0);
    commit_ok(s);
    drv_store_close(s);

    /* Sync, then with the writer: recovery registers the tests not final, which then
     * change; a final one is changed too (the counts go by query from there). */
    for (int with_writer = 0; with_writer < 2; with_writer++) {
        s = open_ok(f->path);
        check_counts(s, f->path);
        int found = 0;
        assert_int_equal(drv_store_recover(s, f->tags, count_recovered, &found, &err), 0);
        assert_int_equal(found, with_writer ? 4 : 5);
        if (with_writer)
            writer_ok(s, NULL);
        if (!with_writer) {
            /* 2 finishes, 3 goes back to the queue, 4 is cancelled, a new one comes. */
            assert_int_equal(drv_store_attempt_finish(s, 2, 1, &ok, NULL, &err), 1);
            drv_store_task_update failed = {.state = DRV_TASK_FAILED, .attempts = 1};
            assert_int_equal(drv_store_task_update_state(s, 2, &failed, &err), 0);
            assert_int_equal(drv_store_attempt_abandon(s, 3, 1, &err), 1);
            drv_store_task_update back = {.state = DRV_TASK_QUEUED, .attempts = 1};
            assert_int_equal(drv_store_task_update_state(s, 3, &back, &err), 0);
            drv_store_task_update gone = {.state = DRV_TASK_CANCELLED};
            assert_int_equal(drv_store_task_update_state(s, 4, &gone, &err), 0);
            drv_task t;
            minimal_task(&t, "new");
            assert_int_equal(drv_store_task_insert(s, run, &t, f->tags, 3, &err), 7);
            drv_task_clear(&t);
            commit_ok(s);
            check_counts(s, f->path);
        } else {
            assert_int_equal(drv_store_attempt_begin(s, 5, 1, "w", 4, &err), 0);
            assert_int_equal(drv_store_attempt_started(s, 5, 1, 4, &err), 1);
            assert_int_equal(drv_store_attempt_begin(s, 3, 2, "w", 4, &err), 0);
            /* Not yet in the file: only the counts kept in memory can know. */
            drv_store_counts c;
            assert_int_equal(drv_store_count(s, &c, &err), 0);
            assert_int_equal(c.by_state[DRV_TASK_RUNNING], 1);
            assert_int_equal(c.by_state[DRV_TASK_ASSIGNED], 1);
            assert_int_equal(c.by_state[DRV_TASK_QUEUED], 2);
            commit_ok(s);
            assert_int_equal(drv_store_sync(s, &err), 0);
            check_counts(s, f->path);
            /* A final test written again: not followed, counted by query, still right. */
            assert_int_equal(drv_store_task_update_state(s, 1, &done, &err), 0);
            assert_int_equal(drv_store_sync(s, &err), 0);
            check_counts(s, f->path);
        }
        drv_store_close(s);
    }
}

/* A write that fails on the writer thread (here: a result for a test that does not
 * exist, which the foreign key refuses) rolls its whole commit back and stops the
 * writer; every later commit and durability query says why. */
static void test_writer_failure_is_reported(void **state)
{
    store_fixture *f = *state;
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    writer_ok(s, NULL);
    drv_task t;
    minimal_task(&t, "lost");
    assert_true(drv_store_task_insert(s, 0, &t, f->tags, 1, &err) > 0);
    drv_task_clear(&t);
    assert_int_equal(drv_store_attempt_begin(s, 999, 1, "w", 1, &err), 0);
    commit_ok(s);
    assert_int_equal(drv_store_sync(s, &err), -1);
    assert_non_null(strstr(err.msg, "cannot begin an attempt"));
    assert_non_null(strstr(err.msg, "nothing of this transaction was stored"));
    uint64_t durable = 7;
    assert_int_equal(drv_store_durable(s, &durable, &err), -1);
    minimal_task(&t, "later");
    assert_true(drv_store_task_insert(s, 0, &t, f->tags, 1, &err) > 0);
    drv_task_clear(&t);
    assert_int_equal(drv_store_commit(s, &err), -1);
    drv_store_close(s);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM tasks"), 0);
}

static void test_refuses_newer_schema(void **state)
{
    store_fixture *f = *state;
    drv_store_close(open_ok(f->path));
    raw_exec(f->path, "PRAGMA user_version = 999");
    drv_error err = {{0}};
    assert_null(drv_store_open(f->path, &err));
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "schema version 999, newer than this drover understands"));

    /* Another program's database is not taken over either. */
    char other[160];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    raw_exec(other, "CREATE TABLE foo (x)");
    assert_null(drv_store_open(other, &err));
    assert_non_null(strstr(err.msg, other));
    assert_non_null(strstr(err.msg, "not a drover store"));
}

static void test_refuses_corrupt_file(void **state)
{
    store_fixture *f = *state;
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 400; i++)
        fputs("this is a text file, not a database\n", fp);
    fclose(fp);
    drv_error err = {{0}};
    assert_null(drv_store_open(f->path, &err));
    assert_non_null(strstr(err.msg, f->path));
    assert_non_null(strstr(err.msg, "not a database"));

    char missing[160];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.db", f->dir);
    assert_null(drv_store_open(missing, &err));
    assert_non_null(strstr(err.msg, missing));
    assert_non_null(strstr(err.msg, "unable to open"));
}

/* Another writer holding the lock past the busy timeout: the write fails with SQLite's
 * reason and leaves no transaction open. */
static void test_locked_store_reports(void **state)
{
    store_fixture *f = *state;
    drv_error err = {{0}};
    drv_store_options opt = {.busy_timeout_ms = 20};
    drv_store *s = drv_store_open_with(f->path, &opt, &err);
    assert_non_null(s);
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(f->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    drv_task t;
    minimal_task(&t, "x");
    assert_int_equal(drv_store_task_insert(s, 0, &t, f->tags, 1, &err), -1);
    assert_non_null(strstr(err.msg, "cannot begin a write transaction: database is locked"));
    assert_false(drv_store_pending(s));
    assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    assert_int_equal(drv_store_task_insert(s, 0, &t, f->tags, 1, &err), 1);
    commit_ok(s);
    drv_task_clear(&t);
    drv_store_close(s);
}

/* Not a check: prints how many full tasks one grouped commit stores per second. */
static void test_insert_rate(void **state)
{
    store_fixture *f = *state;
    enum { N = 10000 };
    drv_error err = {{0}};
    drv_store *s = open_ok(f->path);
    int64_t run = drv_store_run_create(s, "bench", 0, &err);
    commit_ok(s);
    drv_task t;
    full_task(&t, f->tags);
    t.state = DRV_TASK_QUEUED;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < N; i++)
        if (drv_store_task_insert(s, run, &t, f->tags, i, &err) < 0)
            fail_msg("insert %d: %s", i, err.msg);
    commit_ok(s);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double dt = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
    printf("# store: %d full tasks in one grouped commit: %.3f s, %.0f inserts/s\n", N, dt, N / dt);
    drv_store_counts c;
    assert_int_equal(drv_store_count(s, &c, &err), 0);
    assert_int_equal(c.total, N);
    drv_task_clear(&t);
    drv_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_task_round_trip, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_requirements_codec_old_rows, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_insert_refusals, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_batch_members_round_trip, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_grouped_commit_visibility, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_kill9_keeps_exactly_the_committed, setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_attempts_count_once, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_speculative_copies_and_learning_kept, setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_recovery_sees_one_row_per_copied_test, setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_recovery_lists_unfinished, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_list_filters_and_counts, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_live_state_from_attempts, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_moved_attempt_keeps_its_reason, setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_workers_events_metrics, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_history, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_refuses_newer_schema, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_migrates_version_1, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_run_counts_follow_writes, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_run_counts_follow_writes_with_writer, setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_writer_thread, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_writer_failure_is_reported, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_counts_follow_recovered_tests, setup,
                                        store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_refuses_corrupt_file, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_locked_store_reports, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_insert_rate, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_metrics_partial_buckets, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_anomalies_kept, setup, store_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
