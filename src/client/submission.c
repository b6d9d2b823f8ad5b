/* submission.c - what `drover submit` sends: a submission checked locally before it is
 * sent (the coordinator's own parser, drv_tasks_parse, on a scratch tag table), and one
 * test built from command-line flags (`drover submit --require cuda -- pytest -x`).
 *
 * The builder writes the submission form of protocol.md ("Tests as JSON") and checks it
 * with the same parser, so a flag with a value out of range is refused here, naming the
 * field, before anything reaches the network. */
#include "client/client.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/tags.h"
#include "protocol/protocol.h"

long drv_submission_check(const char *buf, size_t len, drv_error *err)
{
    /* A scratch table: new tag names are only checked, never kept. */
    drv_tag_table *tags = drv_tag_table_new();
    drv_task *tasks = NULL;
    size_t n = 0;
    int rc = drv_tasks_parse(buf, len, tags, &tasks, &n, err);
    drv_tasks_free(tasks, n);
    drv_tag_table_free(tags);
    return rc < 0 ? -1 : (long)n;
}

/* ---- a test from flags ------------------------------------------------------------ */

typedef enum flag_kind {
    F_STRING,  /* a string field */
    F_INTEGER, /* an integer field */
    F_NUMBER,  /* a number field */
    F_TAGS,    /* a list of tags, comma-separated, repeatable */
    F_LIST,    /* a list of strings, repeatable */
    F_ENV,     /* K=V into the env object, repeatable */
    F_SWITCH,  /* true */
} flag_kind;

typedef struct flag_rule {
    drv_test_flag flag;
    flag_kind kind;
    const char *key;  /* the field it sets */
    bool requirement; /* the field is in "requirements" */
} flag_rule;

static const flag_rule rules[] = {
    {{"--name", "NAME", "the test's name (default: the command line)"}, F_STRING, "name", false},
    {{"--priority", "N", "0..1000, higher runs first (default 100)"}, F_INTEGER, "priority", false},
    {{"--cpu", "N", "cores reserved while it runs"}, F_INTEGER, "cpu", true},
    {{"--memory-mb", "MB", "memory reserved while it runs"}, F_INTEGER, "memory_mb", true},
    {{"--gpus", "N", "GPUs reserved while it runs"}, F_INTEGER, "gpus", true},
    {{"--gpu-memory-mb", "MB", "memory each GPU must have"}, F_INTEGER, "gpu_memory_mb", true},
    {{"--cuda-cc", "X.Y", "minimum CUDA compute capability (\"8.6\")"}, F_STRING, "cuda_cc", true},
    {{"--require", "TAG", "a tag the worker must have (repeatable; a,b for several)"},
     F_TAGS,
     "all_of",
     true},
    {{"--any-of", "TAG", "the worker must have one of these tags (repeatable)"},
     F_TAGS,
     "any_of",
     true},
    {{"--avoid", "TAG", "a tag the worker must not have (repeatable)"}, F_TAGS, "none_of", true},
    {{"--timeout", "S", "kill the test after S seconds (default: none)"},
     F_NUMBER,
     "timeout_s",
     false},
    {{"--env", "K=V", "set K in the test's environment (repeatable)"}, F_ENV, "env", false},
    {{"--cwd", "DIR", "working directory on the worker (default: the worker's)"},
     F_STRING,
     "cwd",
     false},
    {{"--model", "ID", "the model the test exercises (\"bert-base-uncased\")"},
     F_STRING,
     "model_id",
     false},
    {{"--type", "T", "the test type (\"unit\", \"integration\", ...)"},
     F_STRING,
     "test_type",
     false},
    {{"--label", "L", "a free label (repeatable)"}, F_LIST, "labels", false},
    {{"--retries", "N", "runs again after a lost worker or runner failure, 0..100 (default 2)"},
     F_INTEGER,
     "max_retries",
     false},
    {{"--reruns", "N", "runs again after its own failure, 0..100 (default 0)"},
     F_INTEGER,
     "reruns",
     false},
    {{"--retry-on-failure", NULL, "old spelling of --reruns as many as --retries"},
     F_SWITCH,
     "retry_on_failure",
     false},
    {{"--shell", NULL, "run the words, joined by spaces, with /bin/sh -c"},
     F_SWITCH,
     "shell",
     false},
};
#define N_RULES (sizeof rules / sizeof rules[0])

const drv_test_flag *drv_test_flag_at(size_t i)
{
    return i < N_RULES ? &rules[i].flag : NULL;
}

/* The rule of flag f (a pointer from drv_test_flag_at or drv_test_flag_find), or NULL. */
static const flag_rule *rule_of(const drv_test_flag *f)
{
    for (size_t i = 0; f && i < N_RULES; i++)
        if (f == &rules[i].flag)
            return &rules[i];
    return NULL;
}

const drv_test_flag *drv_test_flag_find(const char *name)
{
    for (size_t i = 0; name && i < N_RULES; i++)
        if (strcmp(rules[i].flag.name, name) == 0)
            return &rules[i].flag;
    return NULL;
}

void drv_test_builder_init(drv_test_builder *b)
{
    b->test = NULL; /* created by the first flag */
    b->shell = false;
}

void drv_test_builder_clear(drv_test_builder *b)
{
    json_decref(b->test);
    drv_test_builder_init(b);
}

/* The object that holds r's field: the test, or its "requirements" (created). */
static json_t *target(drv_test_builder *b, const flag_rule *r)
{
    if (!b->test)
        b->test = json_object();
    if (!r->requirement)
        return b->test;
    json_t *req = json_object_get(b->test, "requirements");
    if (!req) {
        req = json_object();
        json_object_set_new(b->test, "requirements", req);
    }
    return req;
}

/* The array at key in o, created when absent. */
static json_t *array_at(json_t *o, const char *key)
{
    json_t *a = json_object_get(o, key);
    if (!a) {
        a = json_array();
        json_object_set_new(o, key, a);
    }
    return a;
}

int drv_test_builder_set(drv_test_builder *b, const drv_test_flag *f, const char *value,
                         drv_error *err)
{
    const flag_rule *r = rule_of(f);
    if (!r)
        return drv_error_set(err, "%s: not a flag of a test", f ? f->name : "(null)");
    if (r->kind != F_SWITCH && !value)
        return drv_error_set(err, "%s needs a value (%s)", r->flag.name, r->flag.value);
    json_t *o = target(b, r);
    char *end = NULL;
    errno = 0;
    switch (r->kind) {
    case F_STRING:
        if (!*value)
            return drv_error_set(err, "%s: expected %s, got an empty string", r->flag.name,
                                 r->flag.value);
        json_object_set_new(o, r->key, drv_json_text(value, strlen(value)));
        return 0;
    case F_INTEGER: {
        long long v = strtoll(value, &end, 10);
        if (!*value || *end || errno)
            return drv_error_set(err, "%s: expected an integer, got \"%.40s\"", r->flag.name,
                                 value);
        json_object_set_new(o, r->key, json_integer(v));
        return 0;
    }
    case F_NUMBER: {
        double v = strtod(value, &end);
        if (!*value || *end || errno || !isfinite(v))
            return drv_error_set(err, "%s: expected a number, got \"%.40s\"", r->flag.name, value);
        json_object_set_new(o, r->key, json_real(v));
        return 0;
    }
    case F_TAGS: {
        json_t *a = array_at(o, r->key);
        for (const char *p = value;;) {
            size_t n = strcspn(p, ",");
            if (n == 0)
                return drv_error_set(err, "%s: expected a tag name, got \"%.40s\"", r->flag.name,
                                     value);
            json_array_append_new(a, drv_json_text(p, n));
            if (p[n] != ',')
                break;
            p += n + 1;
        }
        return 0;
    }
    case F_LIST:
        json_array_append_new(array_at(o, r->key), drv_json_text(value, strlen(value)));
        return 0;
    case F_ENV: {
        const char *eq = strchr(value, '=');
        if (!eq || eq == value)
            return drv_error_set(err, "--env: expected K=V (a name, '=', a value), got \"%.40s\"",
                                 value);
        json_t *env = json_object_get(o, r->key);
        if (!env) {
            env = json_object();
            json_object_set_new(o, r->key, env);
        }
        json_t *key = drv_json_text(value, (size_t)(eq - value));
        json_object_set_new(env, json_string_value(key), drv_json_text(eq + 1, strlen(eq + 1)));
        json_decref(key);
        return 0;
    }
    case F_SWITCH:
        if (value)
            return drv_error_set(err, "%s takes no value", r->flag.name);
        if (strcmp(r->key, "shell") == 0)
            b->shell = true;
        else
            json_object_set_new(o, r->key, json_true());
        return 0;
    }
    return drv_error_set(err, "%s: unknown kind of flag", r->flag.name);
}

/* True when word reads the same to a shell without quotes. */
static bool shell_plain(const char *word)
{
    if (!*word)
        return false;
    for (const char *p = word; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=@%+,-", *p))
            return false;
    return true;
}

/* Longest default name, in bytes (a longer command line is cut, with "..."). */
#define NAME_MAX_BYTES 1024

/* Appends s (n bytes) to the growing string *buf of *len bytes. */
static void append(char **buf, size_t *len, const char *s, size_t n)
{
    *buf = drv_xrealloc(*buf, *len + n + 1);
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* The command line as one string (a new string the caller frees): the words joined by
 * spaces, each quoted for a shell when quote is true and it needs it. */
static char *join_words(char *const *words, bool quote)
{
    char *s = drv_xstrdup("");
    size_t len = 0;
    for (size_t i = 0; words[i]; i++) {
        if (i)
            append(&s, &len, " ", 1);
        if (!quote || shell_plain(words[i])) {
            append(&s, &len, words[i], strlen(words[i]));
            continue;
        }
        append(&s, &len, "'", 1);
        for (const char *p = words[i]; *p; p++) {
            if (*p == '\'')
                append(&s, &len, "'\\''", 4);
            else
                append(&s, &len, p, 1);
        }
        append(&s, &len, "'", 1);
    }
    return s;
}

char *drv_command_line(char *const *words)
{
    return join_words(words ? words : (char *const[]){NULL}, true);
}

/* Cuts s to at most max bytes on a UTF-8 character boundary, ending it with "...". */
static void cut_name(char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return;
    n = max - 3;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    memcpy(s + n, "...", 4);
}

json_t *drv_test_builder_finish(const drv_test_builder *b, char *const *command, drv_error *err)
{
    if (!command || !command[0] || !command[0][0]) {
        drv_error_set(err, "no command given (expected -- PROGRAM ARGS...)");
        return NULL;
    }
    /* Returned to the caller, or released below. */
    json_t *t = b->test ? json_deep_copy(b->test) : json_object();
    if (!json_object_get(t, "name")) {
        char *name = b->shell ? join_words(command, false) : drv_command_line(command);
        cut_name(name, NAME_MAX_BYTES);
        json_object_set_new(t, "name", drv_json_text(name, strlen(name)));
        free(name);
    }
    if (b->shell) {
        char *line = join_words(command, false);
        json_object_set_new(t, "command", drv_json_text(line, strlen(line)));
        json_object_set_new(t, "shell", json_true());
        free(line);
    } else {
        json_t *argv = json_array();
        for (size_t i = 0; command[i]; i++)
            json_array_append_new(argv, drv_json_text(command[i], strlen(command[i])));
        json_object_set_new(t, "argv", argv);
    }
    char *text = json_dumps(t, JSON_COMPACT);
    long n = drv_submission_check(text, text ? strlen(text) : 0, err);
    free(text);
    if (n < 0) {
        json_decref(t);
        drv_error_prefix(err, "the test given on the command line");
        return NULL;
    }
    return t;
}

/* Sets "reruns" to reruns on test (an object) unless it has its own. */
static void default_reruns(json_t *test, uint32_t reruns)
{
    if (json_is_object(test) && !json_object_get(test, "reruns"))
        json_object_set_new(test, "reruns", json_integer(reruns));
}

char *drv_submission_with_reruns(const char *buf, size_t len, uint32_t reruns, size_t *out_len,
                                 drv_error *err)
{
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je);
    char *out = NULL;
    if (root) { /* one test, or an array of them */
        if (json_is_array(root)) {
            size_t i;
            json_t *t;
            json_array_foreach(root, i, t) default_reruns(t, reruns);
        } else {
            default_reruns(root, reruns);
        }
        out = json_dumps(root, JSON_COMPACT);
        json_decref(root);
    } else { /* JSON lines: one test per line */
        size_t cap = len * 2 + 64, off = 0;
        out = drv_xmalloc(cap);
        for (const char *p = buf, *end = buf + len; p < end;) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            json_t *t = n ? json_loadb(p, n, 0, &je) : NULL;
            if (n && !t) {
                free(out);
                drv_error_set(err, "a test is not JSON: %s", je.text);
                return NULL;
            }
            if (t) {
                default_reruns(t, reruns);
                char *line = json_dumps(t, JSON_COMPACT);
                json_decref(t);
                size_t ln = strlen(line);
                if (off + ln + 2 > cap) {
                    cap = (off + ln + 2) * 2;
                    out = drv_xrealloc(out, cap);
                }
                memcpy(out + off, line, ln);
                off += ln;
                out[off++] = '\n';
                free(line);
            }
            p += n + 1;
        }
        out[off] = '\0';
    }
    if (!out) {
        drv_error_set(err, "cannot write the submission");
        return NULL;
    }
    *out_len = strlen(out);
    return out;
}
