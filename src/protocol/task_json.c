/* task_json.c - a test as JSON <-> drv_task: submissions (REST API, `drover submit
 * FILE`) and the store's records.
 *
 * All or nothing: a submission is parsed completely before anything leaves this file.
 * New tag names are not interned while parsing; they are staged in a scratch table and
 * given the ids they will get (the real table hands out ids in order), and interned
 * only once every test is valid. So a bad submission leaves the tag table as it was,
 * and a submission whose tags would not fit is refused as a whole.
 *
 * The common JSON line is read by a hand-written decoder first (task_decode_fast.c);
 * jansson here reads everything else and words every error. */
#include "protocol/protocol.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/analyzer.h"
#include "core/predictor.h"
#include "protocol/task_fast.h"

/* Reads the optional requirements object of a test into *r. */
static int read_requirements(const json_t *task, const char *where, drv_tag_stage *st,
                             drv_requirements *r, drv_error *err)
{
    const json_t *o = json_object_get(task, "requirements");
    if (!o || json_is_null(o))
        return 0;
    char path[DRV_JSON_PATH_MAX];
    drv_json_path_key(path, where, "requirements");
    return drv_requirements_read(o, path, 0, NULL, st, r, err);
}

/* ---- one test ------------------------------------------------------------------- */

/* Duplicates an optional string field into *out (owned by the task). */
static int dup_field(const json_t *o, const char *where, const char *key, size_t max_len,
                     char **out, drv_error *err)
{
    const char *s = NULL;
    int rc = drv_json_string(o, where, key, DRV_JSON_NONEMPTY, max_len, &s, err);
    if (rc > 0)
        *out = drv_xstrdup(s);
    return rc;
}

/* Reads the command: argv, or command with "shell": true, into t->argv. */
static int read_command(const json_t *o, const char *where, drv_task *t, drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX];
    bool shell = false;
    const char *command = NULL;
    if (drv_json_bool(o, where, "shell", 0, &shell, err) < 0 ||
        drv_json_string(o, where, "command", DRV_JSON_NONEMPTY, DRV_ARG_MAX_BYTES, &command, err) <
            0)
        return -1;
    bool has_argv = json_object_get(o, "argv") != NULL;
    if (command) {
        drv_json_path_key(sub, where, "command");
        if (has_argv)
            return drv_error_set(err, "%s: give argv or command, not both", sub);
        if (!shell)
            return drv_error_set(err,
                                 "%s: a command string runs through a shell, which a test must "
                                 "ask for with \"shell\": true (or give argv, an array of "
                                 "strings, run without a shell)",
                                 sub);
        /* Owned by the task. */
        char **argv = drv_xmalloc(4 * sizeof *argv);
        argv[0] = drv_xstrdup(DRV_SHELL_PATH);
        argv[1] = drv_xstrdup("-c");
        argv[2] = drv_xstrdup(command);
        argv[3] = NULL;
        t->argv = argv;
        return 0;
    }
    if (shell) {
        drv_json_path_key(sub, where, "shell");
        return drv_error_set(err,
                             "%s: true needs \"command\" (a string for " DRV_SHELL_PATH
                             " -c); argv is never run through a shell",
                             sub);
    }
    if (!has_argv) {
        drv_json_path_key(sub, where, "argv");
        return drv_error_set(err,
                             "%s: required (an array of strings such as [\"pytest\", "
                             "\"-x\"], or \"command\" with \"shell\": true)",
                             sub);
    }
    if (drv_json_strv(o, where, "argv", DRV_JSON_REQUIRED | DRV_JSON_NONEMPTY, DRV_ARGV_MAX,
                      DRV_ARG_MAX_BYTES, &t->argv, err) < 0)
        return -1;
    if (t->argv[0][0] == '\0') {
        drv_json_path_key(sub, where, "argv[0]");
        return drv_error_set(err, "%s: the program must not be empty", sub);
    }
    return 0;
}

/* Reads the model family by name. */
static int read_family(const json_t *o, const char *where, int *family, drv_error *err)
{
    const char *name = NULL;
    int rc = drv_json_string(o, where, "family", DRV_JSON_NONEMPTY, 64, &name, err);
    if (rc <= 0)
        return rc;
    int f = drv_family_lookup(name);
    if (f <= DRV_FAMILY_UNKNOWN) {
        char sub[DRV_JSON_PATH_MAX], known[320];
        size_t used = 0;
        known[0] = '\0';
        for (int i = 1; i < drv_family_count() && used < sizeof known; i++) {
            int w = snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "",
                             drv_family_get(i)->name);
            if (w < 0 || (size_t)w >= sizeof known - used)
                break;
            used += (size_t)w;
        }
        drv_json_path_key(sub, where, "family");
        return drv_error_set(err, "%s: unknown model family \"%.40s\" (known: %s)", sub, name,
                             known);
    }
    *family = f;
    return 1;
}

/* "idempotent" (default true): false keeps a test from ever running as two copies at
 * once (speculative re-execution, docs/balancer.md). */
static int read_idempotent(const json_t *o, const char *where, drv_task *t, drv_error *err)
{
    bool idempotent = true;
    if (drv_json_bool(o, where, "idempotent", 0, &idempotent, err) < 0)
        return -1;
    t->not_idempotent = !idempotent;
    return 0;
}

/* An after or locks entry must name something: "" is refused. */
static int check_names(const json_t *o, const char *where, const char *key, char *const *v,
                       drv_error *err)
{
    (void)o;
    for (size_t i = 0; v && v[i]; i++)
        if (!v[i][0]) {
            char sub[DRV_JSON_PATH_MAX];
            drv_json_path_key(sub, where, key);
            return drv_error_set(err, "%s[%zu]: must not be empty", sub, i);
        }
    return 0;
}

/* Parses one test object into t (initialised here). On -1, t may hold part of the test:
 * the caller clears it. */
static int parse_task(const json_t *o, drv_task *t, drv_tag_stage *st, const char *where,
                      bool record, drv_error *err)
{
    /* What a submission may say; a stored record adds what only the store sets. */
#define SUBMISSION_KEYS                                                                            \
    "name", "argv", "command", "shell", "env", "cwd", "requirements", "priority", "timeout_s",     \
        "max_retries", "retry_on_failure", "model_id", "family", "test_type", "batch_size",        \
        "labels", "after", "run_anyway", "locks", "exclusive", "skip_exit_code", "disabled",       \
        "reruns", "idempotent", "members"
    static const char *const known[] = {SUBMISSION_KEYS, NULL};
    static const char *const known_record[] = {SUBMISSION_KEYS, "id", "state", "attempts", NULL};
#undef SUBMISSION_KEYS
    drv_task_init(t);
    if (!where)
        where = "";
    if (!json_is_object(o)) {
        char got[64];
        drv_json_describe(o, got, sizeof got);
        return drv_error_set(err, "%s: must be an object (one test), got %s",
                             *where ? where : "test", got);
    }
    int64_t prio = DRV_PRIORITY_DEFAULT;
    uint64_t u = DRV_MAX_RETRIES_DEFAULT, reruns = 0;
    const char *name = NULL;
    if (drv_json_check_keys(o, where, record ? known_record : known, err) < 0 ||
        drv_json_string(o, where, "name", DRV_JSON_REQUIRED | DRV_JSON_NONEMPTY, DRV_STRING_MAX,
                        &name, err) < 0)
        return -1;
    t->name = drv_xstrdup(name); /* owned by the task */
    if (read_command(o, where, t, err) < 0 || drv_json_env(o, where, "env", 0, &t->env, err) < 0 ||
        dup_field(o, where, "cwd", DRV_STRING_MAX, &t->cwd, err) < 0 ||
        read_requirements(o, where, st, &t->req, err) < 0 ||
        drv_json_int(o, where, "priority", 0, DRV_PRIORITY_MIN, DRV_PRIORITY_MAX, &prio, err) < 0 ||
        drv_json_number(o, where, "timeout_s", 0, 0, 1e9, &t->timeout_s, err) < 0 ||
        drv_json_uint(o, where, "max_retries", 0, 0, 100, &u, err) < 0 ||
        drv_json_uint(o, where, "reruns", 0, 0, 100, &reruns, err) < 0 ||
        drv_json_bool(o, where, "retry_on_failure", 0, &t->retry_on_failure, err) < 0 ||
        read_idempotent(o, where, t, err) < 0 ||
        dup_field(o, where, "model_id", 256, &t->model_id, err) < 0 ||
        read_family(o, where, &t->family, err) < 0 ||
        dup_field(o, where, "test_type", 64, &t->test_type, err) < 0 ||
        drv_json_strv(o, where, "labels", 0, DRV_LABELS_MAX, 256, &t->labels, err) < 0 ||
        drv_json_strv(o, where, "after", 0, DRV_AFTER_MAX, DRV_STRING_MAX, &t->after, err) < 0 ||
        drv_json_bool(o, where, "run_anyway", 0, &t->run_anyway, err) < 0 ||
        drv_json_strv(o, where, "locks", 0, DRV_LOCKS_MAX, 256, &t->locks, err) < 0 ||
        drv_json_bool(o, where, "exclusive", 0, &t->exclusive, err) < 0 ||
        drv_json_bool(o, where, "disabled", 0, &t->disabled, err) < 0 ||
        check_names(o, where, "after", t->after, err) < 0 ||
        check_names(o, where, "locks", t->locks, err) < 0 ||
        drv_json_strv(o, where, "members", 0, DRV_MEMBERS_MAX, DRV_STRING_MAX, &t->members, err) <
            0 ||
        check_names(o, where, "members", t->members, err) < 0)
        return -1;
    t->priority = (int32_t)prio;
    t->max_retries = (uint32_t)u;
    t->reruns = (uint32_t)reruns;
    drv_task_apply_retry_alias(t);
    u = 0;
    if (drv_json_uint(o, where, "batch_size", 0, 0, 1000000, &u, err) < 0)
        return -1;
    t->batch_size = (uint32_t)u;
    u = 0;
    if (drv_json_uint(o, where, "skip_exit_code", 0, 1, 255, &u, err) < 0)
        return -1;
    t->skip_exit_code = (uint8_t)u;
    if (t->family == DRV_FAMILY_UNKNOWN)
        t->family = drv_analyzer_family(t->model_id);
    if (record) {
        const char *state = NULL;
        u = 0;
        if (drv_json_uint(o, where, "id", 0, 0, INT64_MAX, &t->id, err) < 0 ||
            drv_json_uint(o, where, "attempts", 0, 0, UINT32_MAX, &u, err) < 0 ||
            drv_json_string(o, where, "state", 0, 32, &state, err) < 0)
            return -1;
        t->attempts = (uint32_t)u;
        if (state) {
            int s = drv_task_state_parse(state);
            if (s < 0) {
                char sub[DRV_JSON_PATH_MAX];
                drv_json_path_key(sub, where, "state");
                return drv_error_set(err, "%s: unknown task state \"%.40s\"", sub, state);
            }
            t->state = (drv_task_state)s;
        }
    }
    return 0;
}

/* Parses one test with its own tag stage and commits the tags on success. */
static int from_json(const json_t *obj, drv_task *out, drv_tag_table *tags, const char *where,
                     bool record, drv_error *err)
{
    drv_tag_stage st = {tags, NULL};
    int rc = parse_task(obj, out, &st, where, record, err);
    if (rc == 0)
        rc = drv_tag_stage_commit(&st, err);
    drv_tag_stage_free(&st);
    if (rc < 0)
        drv_task_clear(out);
    return rc;
}

/* Reads one submitted test; see protocol.h. */
int drv_task_from_json(const json_t *obj, drv_task *out, drv_tag_table *tags, const char *where,
                       drv_error *err)
{
    return from_json(obj, out, tags, where, false, err);
}

/* Reads one stored test (with id, state, attempts); see protocol.h. */
int drv_task_from_json_record(const json_t *obj, drv_task *out, drv_tag_table *tags,
                              const char *where, drv_error *err)
{
    return from_json(obj, out, tags, where, true, err);
}

/* ---- to JSON ---------------------------------------------------------------------- */

static void set(json_t *o, const char *key, json_t *v)
{
    json_object_set_new_nocheck(o, key, v);
}

static json_t *text(const char *s)
{
    return drv_json_text(s, strlen(s));
}

static json_t *task_json(const drv_task *t, const drv_tag_table *tags, bool record)
{
    json_t *o = json_object();
    set(o, "name", text(t->name ? t->name : ""));
    if (drv_argv_is_shell(t->argv)) {
        set(o, "command", text(t->argv[2]));
        set(o, "shell", json_true());
    } else {
        set(o, "argv", drv_json_strv_value(t->argv));
    }
    if (t->env)
        set(o, "env", drv_json_env_value(t->env));
    if (t->cwd)
        set(o, "cwd", text(t->cwd));
    json_t *req = drv_requirements_json(&t->req, tags, "requirements", NULL);
    if (req && json_object_size(req))
        set(o, "requirements", req);
    else
        json_decref(req);
    set(o, "priority", json_integer(t->priority));
    if (t->timeout_s > 0 && isfinite(t->timeout_s))
        set(o, "timeout_s", json_real(t->timeout_s));
    set(o, "max_retries", json_integer(t->max_retries)); /* 0 is not the default */
    if (t->reruns)
        set(o, "reruns", json_integer(t->reruns));
    if (t->not_idempotent)
        set(o, "idempotent", json_false());
    if (t->model_id)
        set(o, "model_id", text(t->model_id));
    if (t->family != DRV_FAMILY_UNKNOWN)
        set(o, "family", json_string(drv_family_get(t->family)->name));
    if (t->test_type)
        set(o, "test_type", text(t->test_type));
    if (t->batch_size)
        set(o, "batch_size", json_integer(t->batch_size));
    if (t->labels)
        set(o, "labels", drv_json_strv_value(t->labels));
    if (t->after)
        set(o, "after", drv_json_strv_value(t->after));
    if (t->run_anyway)
        set(o, "run_anyway", json_true());
    if (t->locks)
        set(o, "locks", drv_json_strv_value(t->locks));
    if (t->exclusive)
        set(o, "exclusive", json_true());
    if (t->skip_exit_code)
        set(o, "skip_exit_code", json_integer(t->skip_exit_code));
    if (t->disabled)
        set(o, "disabled", json_true());
    if (t->members)
        set(o, "members", drv_json_strv_value(t->members));
    if (record) {
        set(o, "id", json_integer((json_int_t)t->id));
        set(o, "state", json_string(drv_task_state_name(t->state)));
        set(o, "attempts", json_integer(t->attempts));
    }
    return o;
}

/* The submission form of t; see protocol.h. */
json_t *drv_task_to_json(const drv_task *t, const drv_tag_table *tags)
{
    return task_json(t, tags, false);
}

/* The store's form of t; see protocol.h. */
json_t *drv_task_to_json_record(const drv_task *t, const drv_tag_table *tags)
{
    return task_json(t, tags, true);
}

/* ---- submissions ------------------------------------------------------------------ */

/* A growing array of parsed tasks, owned here until handed over. */
typedef struct task_list {
    drv_task *v;
    size_t n, cap;
} task_list;

static drv_task *list_push(task_list *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = drv_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    drv_task *t = &l->v[l->n++];
    drv_task_init(t);
    return t;
}

/* Clears and frees n tasks; NULL is a no-op. */
void drv_tasks_free(drv_task *tasks, size_t n)
{
    if (!tasks)
        return;
    for (size_t i = 0; i < n; i++)
        drv_task_clear(&tasks[i]);
    free(tasks);
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Parses the array form. */
static int parse_array(const char *buf, size_t len, drv_tag_stage *st, task_list *l, drv_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return drv_error_set(err, "tests: not valid JSON: %s (line %d, column %d)", jerr.text,
                             jerr.line, jerr.column);
    int rc = 0;
    size_t n = json_array_size(root);
    if (n == 0)
        rc = drv_error_set(err, "tests: the array is empty; no tests given");
    else if (n > DRV_SUBMIT_MAX_TESTS)
        rc = drv_error_set(err, "tests: %zu tests, more than the limit of %d per submission", n,
                           DRV_SUBMIT_MAX_TESTS);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char where[DRV_JSON_PATH_MAX];
        drv_json_path_index(where, "tests", i);
        rc = parse_task(json_array_get(root, i), list_push(l), st, where, false, err);
    }
    json_decref(root);
    return rc;
}

/* Parses JSON lines: one test object per line, blank lines ignored. */
static int parse_lines(const char *buf, size_t len, drv_tag_stage *st, task_list *l, drv_error *err)
{
    size_t line = 0;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *start = p;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        line++;
        const char *a = p;
        while (a < e && blank(*a))
            a++;
        p = nl ? nl + 1 : end;
        if (a == e)
            continue;
        if (l->n >= DRV_SUBMIT_MAX_TESTS)
            return drv_error_set(err, "line %zu: more than the limit of %d tests per submission",
                                 line, DRV_SUBMIT_MAX_TESTS);
        drv_task *t = list_push(l);
        if (drv_protocol_fast_paths && drv_task_decode_fast(a, (size_t)(e - a), t))
            continue;
        json_error_t jerr;
        json_t *obj = json_loadb(a, (size_t)(e - a), JSON_REJECT_DUPLICATES, &jerr);
        if (!obj)
            return drv_error_set(err, "line %zu: not valid JSON: %s (column %d)", line, jerr.text,
                                 jerr.column + (int)(a - start));
        int rc = parse_task(obj, t, st, "", false, err);
        json_decref(obj);
        if (rc < 0)
            return drv_error_prefix(err, "line %zu", line);
    }
    if (l->n == 0)
        return drv_error_set(err, "tests: no test given (only blank lines)");
    return 0;
}

/* Parses a submission; see protocol.h. */
int drv_tasks_parse(const char *buf, size_t len, drv_tag_table *tags, drv_task **out, size_t *count,
                    drv_error *err)
{
    *out = NULL;
    *count = 0;
    if (!buf)
        return drv_error_set(err, "tests: missing (NULL buffer)");
    size_t bom = len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* UTF-8 BOM */
    size_t skip = bom;
    while (skip < len && blank(buf[skip]))
        skip++;
    if (skip == len)
        return drv_error_set(err, "tests: the input is empty; no tests given");
    drv_tag_stage st = {tags, NULL};
    task_list l = {NULL, 0, 0};
    int rc;
    if (buf[skip] == '[') {
        rc = parse_array(buf + skip, len - skip, &st, &l, err);
    } else {
        /* One object, possibly over several lines, or JSON lines. */
        json_t *one = json_loadb(buf + skip, len - skip, JSON_REJECT_DUPLICATES, NULL);
        if (one) {
            rc = parse_task(one, list_push(&l), &st, "", false, err);
            json_decref(one);
        } else {
            rc = parse_lines(buf + bom, len - bom, &st, &l, err);
        }
    }
    if (rc == 0)
        rc = drv_tasks_check(l.v, l.n, NULL, err);
    if (rc == 0)
        rc = drv_tag_stage_commit(&st, err);
    drv_tag_stage_free(&st);
    if (rc < 0) {
        drv_tasks_free(l.v, l.n);
        return -1;
    }
    *out = l.v; /* the caller owns the array and every task (drv_tasks_free) */
    *count = l.n;
    return 0;
}

/* ---- a submission as a whole: names and after --------------------------------------- */

/* An index of the tests' names: open addressing, index + 1 per slot. */
typedef struct name_index {
    uint32_t *slot;
    size_t cap;
} name_index;

/* Index i of tasks by name, or the index of the test that has its name already. */
static size_t name_put(name_index *x, const drv_task *tasks, size_t i)
{
    size_t h = (size_t)drv_test_key(tasks[i].name) & (x->cap - 1);
    while (x->slot[h]) {
        size_t j = x->slot[h] - 1;
        if (strcmp(tasks[j].name, tasks[i].name) == 0)
            return j;
        h = (h + 1) & (x->cap - 1);
    }
    x->slot[h] = (uint32_t)i + 1;
    return i;
}

static bool name_find(const name_index *x, const drv_task *tasks, const char *name, size_t *at)
{
    size_t h = (size_t)drv_test_key(name) & (x->cap - 1);
    while (x->slot[h]) {
        size_t j = x->slot[h] - 1;
        if (strcmp(tasks[j].name, name) == 0) {
            *at = j;
            return true;
        }
        h = (h + 1) & (x->cap - 1);
    }
    return false;
}

/* Appends to buf at *off without overflowing; "..." once it is full. */
static void list_add(char *buf, size_t len, size_t *off, const char *what)
{
    if (*off + 1 >= len)
        return;
    int k = snprintf(buf + *off, len - *off, "%s%s", *off ? ", " : "", what);
    if (k < 0 || (size_t)k >= len - *off) {
        if (len > 4)
            memcpy(buf + len - 4, "...", 4);
        *off = len;
        return;
    }
    *off += (size_t)k;
}

void drv_tasks_plan_free(drv_tasks_plan *plan)
{
    if (!plan)
        return;
    free(plan->order);
    free(plan->after_start);
    free(plan->after_of);
    memset(plan, 0, sizeof *plan);
}

/* Names a cycle among the tests left with unmet after (indeg > 0) into msg. */
static void name_cycle(const drv_task *tasks, size_t n, const uint32_t *start, const uint32_t *of,
                       const uint32_t *indeg, char *msg, size_t len)
{
    /* Walk back along after edges from a test left over; a walk of n steps repeats. */
    size_t at = 0;
    while (at < n && indeg[at] == 0)
        at++;
    for (size_t k = 0; k < n; k++) {
        size_t next = at;
        for (uint32_t e = start[at]; e < start[at + 1]; e++)
            if (indeg[of[e]] > 0) {
                next = of[e];
                break;
            }
        at = next;
    }
    size_t off = 0, first = at;
    msg[0] = '\0';
    for (size_t k = 0; k <= n; k++) {
        char item[300];
        snprintf(item, sizeof item, "\"%.250s\"", tasks[at].name);
        list_add(msg, len, &off, item);
        if (k > 0 && at == first)
            break;
        for (uint32_t e = start[at]; e < start[at + 1]; e++)
            if (indeg[of[e]] > 0) {
                at = of[e];
                break;
            }
    }
}

int drv_tasks_check(const drv_task *tasks, size_t n, drv_tasks_plan *plan, drv_error *err)
{
    if (plan)
        memset(plan, 0, sizeof *plan);
    name_index x = {NULL, 16};
    while (x.cap < 2 * n)
        x.cap *= 2;
    x.slot = drv_xcalloc(x.cap, sizeof *x.slot);
    char dups[480];
    size_t off = 0, n_dups = 0, n_after = 0;
    dups[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t j = name_put(&x, tasks, i);
        if (j != i) {
            char item[320];
            snprintf(item, sizeof item, "\"%.200s\" (tests[%zu] and tests[%zu])", tasks[i].name, j,
                     i);
            list_add(dups, sizeof dups, &off, item);
            n_dups++;
        }
        n_after += drv_strv_len(tasks[i].after);
    }
    if (n_dups) {
        free(x.slot);
        return drv_error_set(err,
                             "tests: names must be unique in a submission; %zu duplicate%s: %s",
                             n_dups, n_dups == 1 ? "" : "s", dups);
    }
    if (n_after == 0) {
        free(x.slot);
        return 0;
    }
    uint32_t *start = drv_xmalloc((n + 1) * sizeof *start);
    uint32_t *of = drv_xmalloc(n_after * sizeof *of);
    uint32_t *indeg = drv_xcalloc(n ? n : 1, sizeof *indeg);
    size_t e = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        start[i] = (uint32_t)e;
        for (size_t k = 0; tasks[i].after && tasks[i].after[k]; k++) {
            size_t j;
            if (!name_find(&x, tasks, tasks[i].after[k], &j)) {
                rc = drv_error_set(err,
                                   "tests[%zu].after[%zu]: \"%.200s\" is not a test of this "
                                   "submission (after names tests submitted with it)",
                                   i, k, tasks[i].after[k]);
                break;
            }
            if (j == i) {
                rc = drv_error_set(err, "tests[%zu].after[%zu]: a test cannot run after itself", i,
                                   k);
                break;
            }
            of[e++] = (uint32_t)j;
            indeg[i]++;
        }
    }
    start[n] = (uint32_t)e;
    free(x.slot);
    size_t *order = NULL;
    if (rc == 0) {
        /* Kahn: tests with nothing left to wait for, in submission order where possible. */
        uint32_t *rstart = drv_xcalloc(n + 1, sizeof *rstart);
        uint32_t *rof = drv_xmalloc((e ? e : 1) * sizeof *rof);
        for (size_t k = 0; k < e; k++)
            rstart[of[k] + 1]++;
        for (size_t i = 0; i < n; i++)
            rstart[i + 1] += rstart[i];
        uint32_t *fill = drv_xmalloc((n + 1) * sizeof *fill);
        memcpy(fill, rstart, (n + 1) * sizeof *fill);
        for (size_t i = 0; i < n; i++)
            for (uint32_t k = start[i]; k < start[i + 1]; k++)
                rof[fill[of[k]]++] = (uint32_t)i;
        free(fill);
        order = drv_xmalloc(n * sizeof *order);
        size_t head = 0, tail = 0;
        for (size_t i = 0; i < n; i++)
            if (indeg[i] == 0)
                order[tail++] = i;
        while (head < tail) {
            size_t i = order[head++];
            for (uint32_t k = rstart[i]; k < rstart[i + 1]; k++)
                if (--indeg[rof[k]] == 0)
                    order[tail++] = rof[k];
        }
        free(rstart);
        free(rof);
        if (tail < n) {
            char cyc[480];
            name_cycle(tasks, n, start, of, indeg, cyc, sizeof cyc);
            rc = drv_error_set(err, "tests: after forms a cycle (%zu tests can never start): %s",
                               n - tail, cyc);
        }
    }
    free(indeg);
    if (rc == 0 && plan) {
        plan->order = order;
        plan->after_start = start;
        plan->after_of = of;
        return 0;
    }
    free(order);
    free(start);
    free(of);
    return rc;
}
