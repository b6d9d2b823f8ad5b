/* cmd_demo.c - `drover demo`: the balancer at work on a sample fleet and suite.
 *
 * Reads a balancer config, a fleet and a suite (JSON), builds a tag table, a predictor
 * and a balancer, and runs the suite twice on a virtual clock: a discrete-event loop
 * in which every placement is "started" as soon as its worker has a free slot and
 * "finishes" after the test's true duration divided by the worker's speed (with a
 * small seeded jitter), with a heartbeat from every worker each virtual second and a
 * rebalancing pass every REBALANCE_EVERY_S. The first run starts from the analyzer's
 * estimates; midway through it the busiest worker that has a twin is lost, so its tests
 * are requeued. The second run reuses the same balancer and predictor (the lost worker
 * reconnects first), so its placements use the durations learned in the first run.
 *
 * Everything is deterministic for a seed: the only randomness is the jitter, drawn
 * from a splitmix64 stream; ties between events go to the earlier start.
 *
 * Ownership: the demo struct owns every worker, test, task and buffer it points to;
 * demo_free() releases them all. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json_words.h"
#include "balancer/balancer.h"
#include "cli/cli.h"
#include "core/analyzer.h"

#define REBALANCE_EVERY_S 5.0
#define RUN_LIMIT_S       3600.0 /* a run not finished after this much virtual time fails */
#define JITTER            0.10   /* true durations vary by +-10% from run to run */
#define PROBLEMS_SHOWN    30     /* input problems printed before "..." */
#define DECISIONS_MAX     64     /* decisions fetched per balancer call */
#define EXPLAIN_WAITING   2      /* queued tests explained after the first placement round */

/* ---- input problems -------------------------------------------------------------- */

/* Where input problems are reported: the file they are in and how many were found. */
typedef struct input_ctx {
    const char *file;
    unsigned problems;
} input_ctx;

/* Prints one problem as "FILE: MESSAGE" on stderr and counts it; after PROBLEMS_SHOWN
 * only the count grows. */
__attribute__((format(printf, 2, 3))) static void bad(input_ctx *in, const char *fmt, ...)
{
    in->problems++;
    if (in->problems > PROBLEMS_SHOWN)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", in->file, msg);
}

/* Reports every key of obj (at path) that is not in the NULL-terminated list allowed. */
static void check_keys(input_ctx *in, const char *path, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        size_t i = 0;
        while (allowed[i] && strcmp(allowed[i], key) != 0)
            i++;
        if (!allowed[i])
            bad(in, "%s.%s: unknown key", path, key);
    }
}

/* Reads integer field key of obj into *out when present and in min..max. Absent:
 * reported when required, else *out is left alone. Returns true when *out was set. */
static bool read_int(input_ctx *in, const char *path, json_t *obj, const char *key, bool required,
                     long long min, long long max, long long *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            bad(in, "%s.%s: required", path, key);
        return false;
    }
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    if (!json_is_number(v) || x != floor(x) || x < (double)min || x > (double)max) {
        if (json_is_number(v))
            bad(in, "%s.%s: must be an integer %lld..%lld, got %g", path, key, min, max, x);
        else
            bad(in, "%s.%s: must be an integer %lld..%lld, got %s", path, key, min, max,
                drv_json_kind_a(v));
        return false;
    }
    *out = (long long)x;
    return true;
}

/* Reads number field key of obj into *out when present and > min (min_open) or >= min,
 * and <= max. Absent: as read_int. Returns true when *out was set. */
static bool read_number(input_ctx *in, const char *path, json_t *obj, const char *key,
                        bool required, double min, bool min_open, double max, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            bad(in, "%s.%s: required", path, key);
        return false;
    }
    double x = json_is_number(v) ? json_number_value(v) : NAN;
    bool ok = json_is_number(v) && (min_open ? x > min : x >= min) && x <= max;
    if (!ok) {
        char got[64];
        if (json_is_number(v))
            snprintf(got, sizeof got, "%g", x);
        else
            snprintf(got, sizeof got, "%s", drv_json_kind_a(v));
        bad(in, "%s.%s: must be a number %s %g and <= %g, got %s", path, key,
            min_open ? ">" : ">=", min, max, got);
        return false;
    }
    *out = x;
    return true;
}

/* Reads string field key of obj (non-empty). The string belongs to the JSON document.
 * Returns NULL when absent (reported when required) or not a non-empty string. */
static const char *read_string(input_ctx *in, const char *path, json_t *obj, const char *key,
                               bool required)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            bad(in, "%s.%s: required", path, key);
        return NULL;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        bad(in, "%s.%s: must be a non-empty string, got %s", path, key,
            json_is_string(v) ? "an empty string" : drv_json_kind_a(v));
        return NULL;
    }
    return json_string_value(v);
}

/* Reads the optional boolean field key of obj into *out. */
static void read_bool(input_ctx *in, const char *path, json_t *obj, const char *key, bool *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return;
    if (!json_is_boolean(v)) {
        bad(in, "%s.%s: must be true or false, got %s", path, key, drv_json_kind_a(v));
        return;
    }
    *out = json_is_true(v);
}

/* Reads the optional list of tag names at key of obj into *set, interning them. */
static void read_tags(input_ctx *in, drv_tag_table *tags, const char *path, json_t *obj,
                      const char *key, drv_tagset *set)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return;
    if (!json_is_array(v)) {
        bad(in, "%s.%s: must be a list of tag names, got %s", path, key, drv_json_kind_a(v));
        return;
    }
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item)) {
            bad(in, "%s.%s[%zu]: must be a tag name (a string), got %s", path, key, i,
                drv_json_kind_a(item));
            continue;
        }
        drv_error err = {{0}};
        int id = drv_tag_intern(tags, json_string_value(item), &err);
        if (id < 0)
            bad(in, "%s.%s[%zu]: %s", path, key, i, err.msg);
        else
            drv_tagset_add(set, id);
    }
}

/* Reads the optional CUDA compute capability at key ("8.6" or "86") into *out. */
static void read_cuda_cc(input_ctx *in, const char *path, json_t *obj, const char *key,
                         uint32_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return;
    if (!json_is_string(v)) {
        bad(in, "%s.%s: must be a string such as \"8.6\", got %s", path, key, drv_json_kind_a(v));
        return;
    }
    drv_error err = {{0}};
    if (drv_cuda_cc_parse(json_string_value(v), out, &err) != 0)
        bad(in, "%s.%s: %s", path, key, err.msg);
}

/* Gigabytes to megabytes (GiB to MiB), rounded. */
static uint64_t gb_to_mb(double gb)
{
    return (uint64_t)llround(gb * 1024.0);
}

/* Parses the file text at path as JSON; returns the document's member `member`, which
 * must be a non-empty array, with *root holding the document (the caller decrefs it).
 * Returns NULL with the problem reported. */
static json_t *load_list(input_ctx *in, const char *text, size_t len, const char *member,
                         json_t **root)
{
    json_error_t jerr;
    *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!*root) {
        bad(in, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(*root)) {
        bad(in, "must be an object {\"%s\": [...]}, got %s", member, drv_json_kind_a(*root));
        return NULL;
    }
    const char *key;
    json_t *val;
    json_object_foreach(*root, key, val)
    {
        if (strcmp(key, member) != 0)
            bad(in, "%s: unknown key (expected only \"%s\")", key, member);
    }
    json_t *list = json_object_get(*root, member);
    if (!list) {
        bad(in, "%s: required", member);
        return NULL;
    }
    if (!json_is_array(list) || json_array_size(list) == 0) {
        bad(in, "%s: must be a non-empty list, got %s", member,
            json_is_array(list) ? "an empty list" : drv_json_kind_a(list));
        return NULL;
    }
    return list;
}

/* ---- the demo's state ------------------------------------------------------------ */

typedef struct demo_worker {
    char *name; /* owned */
    drv_worker_spec spec;
    drv_wref ref;
    uint32_t slots; /* resolved by the balancer */
    bool lost;
    double lost_at;    /* relative to the run's start */
    uint32_t running;  /* tests it runs now */
    drv_tref *waiting; /* assigned, not started, in arrival order (owned) */
    size_t n_waiting, cap_waiting;
    double busy_s;  /* this run: summed run time */
    uint32_t tests; /* this run: tests that ran to an end on it */
} demo_worker;

typedef struct demo_test {
    drv_task task;     /* owned: drv_task_clear */
    double duration_s; /* true duration at reference speed */
    int exit_code;
    bool eligible;   /* some worker of the fleet meets its requirements */
    double actual_s; /* this run: true duration with jitter, reference speed */
    drv_task_state final;
} demo_test;

typedef struct running_test {
    drv_tref t;
    size_t test, worker;
    double start, end, predicted_s;
    uint64_t seq;
} running_test;

typedef struct run_result {
    double makespan, lower_bound;
    unsigned passed, failed, unschedulable, requeued, moved, lost;
    double pred_err_sum;
    unsigned pred_n;
} run_result;

typedef struct demo {
    bool quiet;
    uint64_t rng;
    drv_balancer_config cfg;
    drv_tag_table *tags;
    drv_predictor *pred;
    drv_balancer *b;
    demo_worker *workers;
    size_t n_workers;
    demo_test *tests;
    size_t n_tests;
    size_t *test_of; /* tref -> test index, SIZE_MAX when none (owned) */
    size_t cap_test_of;
    running_test *running; /* owned */
    size_t n_running, cap_running;
    uint64_t next_id, start_seq;
    double now, t0;
    size_t pending; /* tests of this run not final yet */
    run_result res[2];
    run_result *cur;
} demo;

/* ---- reading the fleet and the suite ------------------------------------------------ */

/* Parses the fleet file text into d->workers. Returns 0, or -1 after reporting every
 * problem on stderr. */
static int parse_fleet(demo *d, const char *path, const char *text, size_t len)
{
    static const char *const keys[] = {"name",    "cores", "memory_gb", "gpus",  "gpu_memory_gb",
                                       "cuda_cc", "tags",  "slots",     "speed", NULL};
    input_ctx in = {.file = path, .problems = 0};
    json_t *root = NULL;
    json_t *list = load_list(&in, text, len, "workers", &root);
    if (list) {
        d->workers = drv_xcalloc(json_array_size(list), sizeof *d->workers);
        size_t i;
        json_t *o;
        json_array_foreach(list, i, o)
        {
            char p[64];
            snprintf(p, sizeof p, "workers[%zu]", i);
            if (!json_is_object(o)) {
                bad(&in, "%s: must be an object, got %s", p, drv_json_kind_a(o));
                continue;
            }
            check_keys(&in, p, o, keys);
            demo_worker *w = &d->workers[d->n_workers++];
            drv_capabilities_init(&w->spec.caps);
            long long v = 0;
            double x = 0;
            const char *name = read_string(&in, p, o, "name", true);
            if (name) {
                for (size_t k = 0; k + 1 < d->n_workers; k++)
                    if (strcmp(d->workers[k].name, name) == 0)
                        bad(&in, "%s.name: \"%s\" is already the name of workers[%zu]", p, name, k);
                w->name = drv_xstrdup(name);
            } else {
                w->name = drv_xstrdup("?");
            }
            if (read_int(&in, p, o, "cores", true, 1, 1 << 20, &v))
                w->spec.caps.cpu_cores = (uint32_t)v;
            if (read_number(&in, p, o, "memory_gb", true, 0, true, 1 << 24, &x))
                w->spec.caps.memory_mb = gb_to_mb(x);
            if (read_int(&in, p, o, "gpus", false, 0, 1024, &v))
                w->spec.caps.gpu_count = (uint32_t)v;
            if (read_number(&in, p, o, "gpu_memory_gb", false, 0, false, 1 << 20, &x))
                w->spec.caps.gpu_memory_mb = gb_to_mb(x);
            read_cuda_cc(&in, p, o, "cuda_cc", &w->spec.caps.cuda_cc);
            read_tags(&in, d->tags, p, o, "tags", &w->spec.caps.tags);
            if (read_int(&in, p, o, "slots", false, 0, 1 << 16, &v))
                w->spec.slots = (uint32_t)v;
            w->spec.speed = 1.0f;
            if (read_number(&in, p, o, "speed", false, 0, true, 1000, &x))
                w->spec.speed = (float)x;
            w->spec.name = w->name;
        }
    }
    json_decref(root);
    if (in.problems > PROBLEMS_SHOWN)
        fprintf(stderr, "%s: ... and %u more problems\n", path, in.problems - PROBLEMS_SHOWN);
    return in.problems ? -1 : 0;
}

/* Parses the "requirements" object of a test at path into *req. */
static void parse_requirements(input_ctx *in, drv_tag_table *tags, const char *path, json_t *o,
                               drv_requirements *req)
{
    static const char *const keys[] = {
        "cpu", "memory_gb", "gpus", "gpu_memory_gb", "cuda_cc", "tags", "any_of", "none_of", NULL};
    if (!json_is_object(o)) {
        bad(in, "%s: must be an object, got %s", path, drv_json_kind_a(o));
        return;
    }
    check_keys(in, path, o, keys);
    long long v = 0;
    double x = 0;
    if (read_int(in, path, o, "cpu", false, 0, 1 << 20, &v))
        req->cpu_cores = (uint32_t)v;
    if (read_number(in, path, o, "memory_gb", false, 0, false, 1 << 24, &x))
        req->memory_mb = gb_to_mb(x);
    if (read_int(in, path, o, "gpus", false, 0, 1024, &v))
        req->gpu_count = (uint32_t)v;
    if (read_number(in, path, o, "gpu_memory_gb", false, 0, false, 1 << 20, &x))
        req->gpu_memory_mb = gb_to_mb(x);
    read_cuda_cc(in, path, o, "cuda_cc", &req->cuda_cc);
    read_tags(in, tags, path, o, "tags", &req->all_of);
    read_tags(in, tags, path, o, "any_of", &req->any_of);
    read_tags(in, tags, path, o, "none_of", &req->none_of);
}

/* Parses the suite file text into d->tests. Returns 0, or -1 after reporting every
 * problem on stderr. */
static int parse_suite(demo *d, const char *path, const char *text, size_t len)
{
    static const char *const keys[] = {
        "name",       "model_id",    "test_type", "priority",         "requirements",
        "duration_s", "max_retries", "exit_code", "retry_on_failure", NULL};
    input_ctx in = {.file = path, .problems = 0};
    json_t *root = NULL;
    json_t *list = load_list(&in, text, len, "tests", &root);
    if (list) {
        d->tests = drv_xcalloc(json_array_size(list), sizeof *d->tests);
        size_t i;
        json_t *o;
        json_array_foreach(list, i, o)
        {
            char p[64];
            snprintf(p, sizeof p, "tests[%zu]", i);
            if (!json_is_object(o)) {
                bad(&in, "%s: must be an object, got %s", p, drv_json_kind_a(o));
                continue;
            }
            check_keys(&in, p, o, keys);
            demo_test *t = &d->tests[d->n_tests++];
            drv_task_init(&t->task);
            t->task.priority = DRV_PRIORITY_DEFAULT;
            t->task.max_retries = 1;
            long long v = 0;
            const char *name = read_string(&in, p, o, "name", true);
            if (name) {
                for (size_t k = 0; k + 1 < d->n_tests; k++)
                    if (strcmp(d->tests[k].task.name, name) == 0)
                        bad(&in, "%s.name: \"%s\" is already the name of tests[%zu]", p, name, k);
            }
            t->task.name = drv_xstrdup(name ? name : "?");
            const char *s = read_string(&in, p, o, "model_id", false);
            if (s)
                t->task.model_id = drv_xstrdup(s);
            s = read_string(&in, p, o, "test_type", false);
            if (s)
                t->task.test_type = drv_xstrdup(s);
            if (read_int(&in, p, o, "priority", false, DRV_PRIORITY_MIN, DRV_PRIORITY_MAX, &v))
                t->task.priority = (int32_t)v;
            json_t *req = json_object_get(o, "requirements");
            if (req) {
                char rp[96];
                snprintf(rp, sizeof rp, "%s.requirements", p);
                parse_requirements(&in, d->tags, rp, req, &t->task.req);
            }
            read_number(&in, p, o, "duration_s", true, 0, true, RUN_LIMIT_S / 4, &t->duration_s);
            if (read_int(&in, p, o, "max_retries", false, 0, 255, &v))
                t->task.max_retries = (uint32_t)v;
            if (read_int(&in, p, o, "exit_code", false, 0, 255, &v))
                t->exit_code = (int)v;
            read_bool(&in, p, o, "retry_on_failure", &t->task.retry_on_failure);
        }
    }
    json_decref(root);
    if (in.problems > PROBLEMS_SHOWN)
        fprintf(stderr, "%s: ... and %u more problems\n", path, in.problems - PROBLEMS_SHOWN);
    return in.problems ? -1 : 0;
}

/* Reads and parses one input file with parse (fleet or suite). Returns 0 or -1 (the
 * problems are on stderr). */
static int load_input(demo *d, const char *path,
                      int (*parse)(demo *, const char *, const char *, size_t))
{
    drv_error err = {{0}};
    size_t len = 0;
    char *text = drv_cli_read_file(path, &len, &err);
    if (!text) {
        fprintf(stderr, "drover demo: %s\n", err.msg);
        return -1;
    }
    int rc = parse(d, path, text, len);
    free(text);
    return rc;
}

/* ---- finding the default files ---------------------------------------------------- */

/* Finds examples/NAME relative to the current directory, else relative to the
 * executable's directory's parent (the source tree of a build directory). Writes the
 * path into buf; returns -1 with err naming every place looked at when neither exists. */
static int find_example(const char *name, const char *option, char *buf, size_t len, drv_error *err)
{
    snprintf(buf, len, "examples/%s", name);
    if (access(buf, R_OK) == 0)
        return 0;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/'); /* cut the executable's name */
        if (slash)
            *slash = '\0';
        slash = strrchr(exe, '/'); /* and its directory: the parent is the tree */
        if (slash)
            *slash = '\0';
        int k = snprintf(buf, len, "%s/examples/%s", exe, name);
        if (k < 0 || (size_t)k >= len)
            return drv_error_set(err,
                                 "examples/%s not found in the current directory, and the "
                                 "executable's path is too long to look beside it; pass %s FILE",
                                 name, option);
        if (access(buf, R_OK) == 0)
            return 0;
        return drv_error_set(err,
                             "examples/%s not found: not in the current directory, not at %s; "
                             "run from the source tree or pass %s FILE",
                             name, buf, option);
    }
    return drv_error_set(err,
                         "examples/%s not found in the current directory (and /proc/self/exe "
                         "is unreadable); run from the source tree or pass %s FILE",
                         name, option);
}

/* ---- the virtual clock ------------------------------------------------------------- */

/* splitmix64: the next pseudo-random 64 bits of the stream. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A uniform number in [0, 1). */
static double uniform(uint64_t *state)
{
    return (double)(next_random(state) >> 11) / 9007199254740992.0;
}

/* Prints "t=  3.0s  MESSAGE" (time relative to the run's start) unless quiet. */
__attribute__((format(printf, 2, 3))) static void say(const demo *d, const char *fmt, ...)
{
    if (d->quiet)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("t=%5.1fs  %s\n", d->now - d->t0, msg);
}

static size_t worker_index(const demo *d, drv_wref ref)
{
    for (size_t i = 0; i < d->n_workers; i++)
        if (d->workers[i].ref == ref)
            return i;
    return SIZE_MAX;
}

static const char *worker_name(const demo *d, drv_wref ref)
{
    size_t i = worker_index(d, ref);
    return i == SIZE_MAX ? "?" : d->workers[i].name;
}

static const char *test_name(const demo *d, drv_tref t)
{
    return t < d->cap_test_of && d->test_of[t] != SIZE_MAX ? d->tests[d->test_of[t]].task.name
                                                           : "?";
}

/* Remembers that tref t is suite test i. */
static void map_tref(demo *d, drv_tref t, size_t i)
{
    if (t >= d->cap_test_of) {
        size_t cap = d->cap_test_of ? d->cap_test_of : 64;
        while (cap <= t)
            cap *= 2;
        d->test_of = drv_xrealloc(d->test_of, cap * sizeof *d->test_of);
        for (size_t k = d->cap_test_of; k < cap; k++)
            d->test_of[k] = SIZE_MAX;
        d->cap_test_of = cap;
    }
    d->test_of[t] = i;
}

static void waiting_push(demo_worker *w, drv_tref t)
{
    if (w->n_waiting == w->cap_waiting) {
        w->cap_waiting = w->cap_waiting ? w->cap_waiting * 2 : 16;
        w->waiting = drv_xrealloc(w->waiting, w->cap_waiting * sizeof *w->waiting);
    }
    w->waiting[w->n_waiting++] = t;
}

/* Removes t from w's waiting list, keeping the order of the others. */
static void waiting_remove(demo_worker *w, drv_tref t)
{
    for (size_t i = 0; i < w->n_waiting; i++) {
        if (w->waiting[i] == t) {
            memmove(&w->waiting[i], &w->waiting[i + 1], (w->n_waiting - i - 1) * sizeof(drv_tref));
            w->n_waiting--;
            return;
        }
    }
}

/* The scheduler name a test gets from the config, as the placement lines show it. */
static const char *policy_of(const demo *d, drv_tref t)
{
    const drv_task *task = &d->tests[d->test_of[t]].task;
    const drv_policy_spec *spec = drv_balancer_config_policy_for(
        &d->cfg, drv_analyzer_family(task->model_id), task->test_type);
    return drv_policy_kind_name(spec->kind);
}

/* Applies one balancer decision to the simulated fleet and prints it. ran, when not
 * NULL, is the run that just ended (for a FINAL or REQUEUED after a finish). */
static void apply(demo *d, const drv_decision *dec, const running_test *ran)
{
    char desc[512];
    switch (dec->kind) {
    case DRV_D_PLACED: {
        size_t wi = worker_index(d, dec->worker);
        waiting_push(&d->workers[wi], dec->task);
        say(d, "placed %s -> %s (%s)", test_name(d, dec->task), d->workers[wi].name,
            policy_of(d, dec->task));
        break;
    }
    case DRV_D_MOVED: {
        waiting_remove(&d->workers[worker_index(d, dec->from_worker)], dec->task);
        waiting_push(&d->workers[worker_index(d, dec->worker)], dec->task);
        d->cur->moved++;
        say(d, "moved %s %s -> %s (%s: it would have waited there)", test_name(d, dec->task),
            worker_name(d, dec->from_worker), worker_name(d, dec->worker),
            drv_reason_name(dec->reason));
        break;
    }
    case DRV_D_REQUEUED:
        d->cur->requeued++;
        say(d, "requeued %s from %s (%s)", test_name(d, dec->task),
            worker_name(d, dec->from_worker), drv_reason_name(dec->reason));
        break;
    case DRV_D_FINAL: {
        size_t i = d->test_of[dec->task];
        demo_test *t = &d->tests[i];
        t->final = dec->state;
        d->pending--;
        d->cur->makespan = d->now - d->t0;
        if (dec->state == DRV_TASK_PASSED)
            d->cur->passed++;
        else if (dec->state == DRV_TASK_UNSCHEDULABLE)
            d->cur->unschedulable++;
        else
            d->cur->failed++;
        if (dec->state == DRV_TASK_UNSCHEDULABLE) {
            drv_decision_describe(d->b, dec, desc, sizeof desc);
            say(d, "unschedulable %s: %s", t->task.name, desc);
        } else if (ran) {
            char why[32] = "";
            if (dec->state != DRV_TASK_PASSED)
                snprintf(why, sizeof why, ", exit code %d", t->exit_code);
            say(d, "%s %s on %s in %.1f s (predicted %.1f s)%s",
                dec->state == DRV_TASK_PASSED ? "passed" : "FAILED", t->task.name,
                d->workers[ran->worker].name, ran->end - ran->start, ran->predicted_s, why);
        } else {
            drv_decision_describe(d->b, dec, desc, sizeof desc);
            say(d, "%s %s: %s", drv_task_state_name(dec->state), t->task.name, desc);
        }
        d->test_of[dec->task] = SIZE_MAX;
        break;
    }
    }
}

/* Places everything the balancer will place now. */
static void place_all(demo *d)
{
    drv_decision out[DECISIONS_MAX];
    size_t n;
    do {
        n = drv_balancer_place(d->b, d->now, out, DECISIONS_MAX);
        for (size_t i = 0; i < n; i++)
            apply(d, &out[i], NULL);
    } while (n == DECISIONS_MAX);
    /* As the coordinator does after placing: idle workers take what others hold. */
    do {
        n = drv_balancer_steal_idle(d->b, d->now, out, DECISIONS_MAX);
        for (size_t i = 0; i < n; i++)
            apply(d, &out[i], NULL);
    } while (n == DECISIONS_MAX);
}

/* Every worker starts what it holds while it has a free slot. */
static void start_ready(demo *d)
{
    for (size_t wi = 0; wi < d->n_workers; wi++) {
        demo_worker *w = &d->workers[wi];
        while (!w->lost && w->running < w->slots && w->n_waiting > 0) {
            drv_tref t = w->waiting[0];
            waiting_remove(w, t);
            drv_prediction p = drv_balancer_predict(d->b, t, w->ref);
            if (drv_balancer_started(d->b, t, d->now) != 0) {
                fprintf(stderr, "drover demo: the balancer refused to start %s on %s\n",
                        test_name(d, t), w->name);
                continue;
            }
            if (d->n_running == d->cap_running) {
                d->cap_running = d->cap_running ? d->cap_running * 2 : 64;
                d->running = drv_xrealloc(d->running, d->cap_running * sizeof *d->running);
            }
            size_t ti = d->test_of[t];
            double run = d->tests[ti].actual_s / w->spec.speed;
            d->running[d->n_running++] = (running_test){.t = t,
                                                        .test = ti,
                                                        .worker = wi,
                                                        .start = d->now,
                                                        .end = d->now + run,
                                                        .predicted_s = p.mean_s,
                                                        .seq = ++d->start_seq};
            w->running++;
        }
    }
}

/* Index of the run that ends first (ties: started first), or SIZE_MAX when none. */
static size_t next_finish(const demo *d)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < d->n_running; i++) {
        const running_test *r = &d->running[i];
        if (best == SIZE_MAX || r->end < d->running[best].end ||
            (r->end == d->running[best].end && r->seq < d->running[best].seq))
            best = i;
    }
    return best;
}

/* The run at index i ended now: report it to the balancer. */
static void finish(demo *d, size_t i)
{
    running_test r = d->running[i];
    d->running[i] = d->running[--d->n_running];
    demo_worker *w = &d->workers[r.worker];
    double took = r.end - r.start;
    w->running--;
    w->busy_s += took;
    w->tests++;
    d->cur->pred_err_sum += fabs(r.predicted_s - took) / took;
    d->cur->pred_n++;
    drv_result res = {.exit_code = d->tests[r.test].exit_code, .duration_s = took};
    drv_decision dec;
    if (drv_balancer_finished(d->b, r.t, d->now, &res, &dec) == 0)
        apply(d, &dec, &r);
}

/* One virtual second: a heartbeat from every connected worker (its load is the share
 * of its slots in use, scaled so that a full simulated machine stays under the
 * overload threshold: this demo is about placement, not about cooling) and, every
 * REBALANCE_EVERY_S, a rebalancing pass. */
static void tick(demo *d, double *next_rebalance)
{
    for (size_t wi = 0; wi < d->n_workers; wi++) {
        demo_worker *w = &d->workers[wi];
        if (!w->lost)
            drv_balancer_worker_heartbeat(d->b, w->ref, d->now, 0.9 * w->running / w->slots, -1,
                                          false, false);
    }
    if (d->now + 1e-9 >= *next_rebalance) {
        *next_rebalance += REBALANCE_EVERY_S;
        drv_decision out[DECISIONS_MAX];
        size_t n = drv_balancer_rebalance(d->b, d->now, out, DECISIONS_MAX);
        for (size_t i = 0; i < n; i++)
            apply(d, &out[i], NULL);
    }
}

/* The busiest connected worker that has a twin (another connected worker of its
 * capability class), so that losing it strands no test; SIZE_MAX when none runs
 * anything. */
static size_t pick_victim(const demo *d)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < d->n_workers; i++) {
        const demo_worker *w = &d->workers[i];
        if (w->lost || w->running == 0)
            continue;
        uint32_t cls = drv_balancer_worker(d->b, w->ref)->wclass;
        bool twin = false;
        for (size_t k = 0; k < d->n_workers && !twin; k++)
            twin = k != i && !d->workers[k].lost &&
                   drv_balancer_worker(d->b, d->workers[k].ref)->wclass == cls;
        if (twin && (best == SIZE_MAX || w->running > d->workers[best].running))
            best = i;
    }
    return best;
}

/* Worker wi stops answering: what it ran and held goes back through the balancer. */
static void lose_worker(demo *d, size_t wi)
{
    demo_worker *w = &d->workers[wi];
    say(d, "worker %s lost (missed heartbeats) while running %u and holding %zu more", w->name,
        w->running, w->n_waiting);
    for (size_t i = 0; i < d->n_running;) {
        if (d->running[i].worker == wi) {
            w->busy_s += d->now - d->running[i].start; /* wasted, but it was busy */
            d->running[i] = d->running[--d->n_running];
        } else {
            i++;
        }
    }
    w->running = 0;
    w->n_waiting = 0;
    w->lost = true;
    w->lost_at = d->now - d->t0;
    d->cur->lost++;
    drv_decision out[DECISIONS_MAX];
    size_t n;
    do {
        n = drv_balancer_worker_lost(d->b, w->ref, d->now, out, DECISIONS_MAX);
        for (size_t i = 0; i < n; i++)
            apply(d, &out[i], NULL);
    } while (n == DECISIONS_MAX);
}

/* Prints drv_balancer_explain for a few tests still queued after the first placement
 * round: the first EXPLAIN_WAITING with different requirements, and every one that no
 * worker can run. */
static void explain_waiting(const demo *d)
{
    if (d->quiet)
        return;
    const drv_requirements *seen[EXPLAIN_WAITING];
    size_t n_seen = 0;
    bool header = false;
    for (size_t ti = 0; ti < d->n_tests; ti++) {
        const demo_test *t = &d->tests[ti];
        drv_tref ref = DRV_REF_NONE;
        for (drv_tref r = 0; r < d->cap_test_of; r++)
            if (d->test_of[r] == ti)
                ref = r;
        if (ref == DRV_REF_NONE || drv_balancer_task_state(d->b, ref) != DRV_TASK_QUEUED)
            continue;
        if (t->eligible) {
            bool dup = n_seen == EXPLAIN_WAITING;
            for (size_t k = 0; k < n_seen && !dup; k++)
                dup = drv_requirements_equal(seen[k], &t->task.req);
            if (dup)
                continue;
            seen[n_seen++] = &t->task.req;
        }
        char why[512];
        if (drv_balancer_explain(d->b, ref, d->now, why, sizeof why) != 0)
            continue;
        if (!header) {
            printf("why are these tests still queued? (drv_balancer_explain)\n");
            header = true;
        }
        printf("    %s: %s\n", t->task.name, why);
    }
}

/* The makespan no placement can beat for this run's durations: the larger of the total
 * work over the fleet's capacity (slots x speed) and the longest test on the fastest
 * worker that can run it. Tests no worker can run are left out. */
static double lower_bound(const demo *d)
{
    double capacity = 0, work = 0, longest = 0;
    for (size_t wi = 0; wi < d->n_workers; wi++)
        capacity += d->workers[wi].slots * (double)d->workers[wi].spec.speed;
    for (size_t ti = 0; ti < d->n_tests; ti++) {
        const demo_test *t = &d->tests[ti];
        if (!t->eligible)
            continue;
        work += t->actual_s;
        double fastest = 0;
        for (size_t wi = 0; wi < d->n_workers; wi++)
            if (drv_requirements_met(&t->task.req, &d->workers[wi].spec.caps) &&
                d->workers[wi].spec.speed > fastest)
                fastest = d->workers[wi].spec.speed;
        if (t->actual_s / fastest > longest)
            longest = t->actual_s / fastest;
    }
    double spread = capacity > 0 ? work / capacity : 0;
    return spread > longest ? spread : longest;
}

/* Prints the per-worker table of the run that just ended. */
static void print_utilization(const demo *d)
{
    double span = d->cur->makespan > 0 ? d->cur->makespan : 1;
    printf("    %-18s %5s %6s %6s %8s %6s\n", "worker", "slots", "speed", "tests", "busy s",
           "util");
    for (size_t wi = 0; wi < d->n_workers; wi++) {
        const demo_worker *w = &d->workers[wi];
        printf("    %-18s %5u %6.2f %6u %8.1f %5.0f%%", w->name, w->slots, (double)w->spec.speed,
               w->tests, w->busy_s, 100.0 * w->busy_s / (w->slots * span));
        if (w->lost)
            printf("  lost at %.1f s", w->lost_at);
        printf("\n");
    }
}

/* Runs the whole suite once, from d->now. Returns 0, or -1 when the balancer refused a
 * test or the run did not finish within RUN_LIMIT_S of virtual time. */
static int run_suite(demo *d, int run)
{
    d->cur = &d->res[run];
    memset(d->cur, 0, sizeof *d->cur);
    d->t0 = d->now;
    printf("\n== %s ==\n", run == 0 ? "first run: durations unknown, predictions are the "
                                      "analyzer's estimates"
                                    : "second run: durations learned in the first run");
    for (size_t wi = 0; wi < d->n_workers; wi++) {
        demo_worker *w = &d->workers[wi];
        w->busy_s = 0;
        w->tests = 0;
        if (w->lost) {
            drv_balancer_worker_back(d->b, w->ref, d->now);
            w->lost = false;
            say(d, "worker %s reconnected", w->name);
        }
    }
    for (size_t ti = 0; ti < d->n_tests; ti++) {
        demo_test *t = &d->tests[ti];
        t->actual_s = t->duration_s * (1.0 + JITTER * (2.0 * uniform(&d->rng) - 1.0));
        t->task.id = ++d->next_id;
        drv_error err = {{0}};
        int64_t ref = drv_balancer_submit(d->b, &t->task, d->now, &err);
        if (ref < 0) {
            fprintf(stderr, "drover demo: submitting %s: %s\n", t->task.name, err.msg);
            return -1;
        }
        map_tref(d, (drv_tref)ref, ti);
    }
    d->pending = d->n_tests;
    d->cur->lower_bound = lower_bound(d);

    size_t schedulable = 0;
    for (size_t ti = 0; ti < d->n_tests; ti++)
        schedulable += d->tests[ti].eligible;
    bool lose_one = run == 0;
    double next_tick = d->now + 1, next_rebalance = d->now + REBALANCE_EVERY_S;
    bool first = true;
    for (;;) {
        place_all(d);
        start_ready(d);
        if (first) {
            explain_waiting(d);
            first = false;
        }
        if (d->pending == 0)
            break;
        if (d->now - d->t0 > RUN_LIMIT_S) {
            fprintf(stderr,
                    "drover demo: the %s run did not finish within %.0f s of virtual time "
                    "(%zu tests not final)\n",
                    run == 0 ? "first" : "second", RUN_LIMIT_S, d->pending);
            return -1;
        }
        size_t f = next_finish(d);
        if (f != SIZE_MAX && d->running[f].end <= next_tick) {
            d->now = d->running[f].end;
            finish(d, f);
        } else {
            d->now = next_tick;
            next_tick += 1;
            tick(d, &next_rebalance);
        }
        if (lose_one && 2 * (d->cur->passed + d->cur->failed) >= schedulable) {
            size_t victim = pick_victim(d);
            if (victim != SIZE_MAX) {
                lose_worker(d, victim);
                lose_one = false;
            }
        }
    }
    run_result *r = d->cur;
    printf("%s run: makespan %.1f s, lower bound %.1f s (+%.0f%%); %u passed, %u failed, "
           "%u unschedulable; %u requeued, %u moved; predictions off by %.0f%% on average\n",
           run == 0 ? "first" : "second", r->makespan, r->lower_bound,
           r->lower_bound > 0 ? 100.0 * (r->makespan / r->lower_bound - 1) : 0, r->passed,
           r->failed, r->unschedulable, r->requeued, r->moved,
           r->pred_n ? 100.0 * r->pred_err_sum / r->pred_n : 0);
    print_utilization(d);
    for (size_t ti = 0; ti < d->n_tests; ti++)
        if (d->tests[ti].final == DRV_TASK_UNSCHEDULABLE)
            printf("    unschedulable: %s (no worker meets its requirements)\n",
                   d->tests[ti].task.name);
    /* The next run starts on the next whole second, so heartbeats stay aligned. */
    d->now = floor(d->now) + 1;
    return 0;
}

/* ---- setup and teardown ------------------------------------------------------------ */

static void demo_free(demo *d)
{
    drv_balancer_free(d->b);
    drv_predictor_free(d->pred);
    drv_tag_table_free(d->tags);
    for (size_t i = 0; i < d->n_workers; i++) {
        free(d->workers[i].name);
        free(d->workers[i].waiting);
    }
    free(d->workers);
    for (size_t i = 0; i < d->n_tests; i++)
        drv_task_clear(&d->tests[i].task);
    free(d->tests);
    free(d->test_of);
    free(d->running);
}

/* Adds the fleet to the balancer (at d->now) and marks the tests some worker can run. */
static int add_fleet(demo *d)
{
    for (size_t wi = 0; wi < d->n_workers; wi++) {
        demo_worker *w = &d->workers[wi];
        drv_error err = {{0}};
        int64_t ref = drv_balancer_worker_add(d->b, &w->spec, d->now, &err);
        if (ref < 0) {
            fprintf(stderr, "drover demo: adding worker %s: %s\n", w->name, err.msg);
            return -1;
        }
        w->ref = (drv_wref)ref;
        w->slots = drv_balancer_worker(d->b, w->ref)->slots;
    }
    for (size_t ti = 0; ti < d->n_tests; ti++)
        for (size_t wi = 0; wi < d->n_workers && !d->tests[ti].eligible; wi++)
            d->tests[ti].eligible =
                drv_requirements_met(&d->tests[ti].task.req, &d->workers[wi].spec.caps);
    return 0;
}

void drv_cmd_demo_usage(FILE *out)
{
    fprintf(out,
            "usage: drover demo [--config FILE] [--fleet FILE] [--suite FILE] [--seed N] "
            "[--quiet]\n"
            "\n"
            "Runs the balancer on a sample fleet and suite on a virtual clock, twice: the\n"
            "first run from the analyzer's duration estimates (one worker is lost midway),\n"
            "the second with the durations learned in the first. Prints the placements as\n"
            "they happen, why the first queued tests wait, each run's makespan against its\n"
            "lower bound with a per-worker utilization table, and a summary.\n"
            "\n"
            "  --config FILE  balancer config (default examples/balancer.json)\n"
            "  --fleet FILE   {\"workers\": [{name, cores, memory_gb, gpus, gpu_memory_gb,\n"
            "                 cuda_cc, tags, slots, speed}, ...]} (default examples/fleet.json)\n"
            "  --suite FILE   {\"tests\": [{name, model_id, test_type, priority, requirements:\n"
            "                 {cpu, memory_gb, gpus, gpu_memory_gb, cuda_cc, tags, any_of,\n"
            "                 none_of}, duration_s, max_retries, exit_code, retry_on_failure},\n"
            "                 ...]} (default examples/suite.json); duration_s is the true\n"
            "                 duration at speed 1, exit_code what the test exits with (0)\n"
            "  --seed N       seed of the duration jitter (default 1); same seed, same output\n"
            "  --quiet        print only the run results and the summary\n"
            "\n"
            "Default files are looked for under examples/ in the current directory, then\n"
            "next to the executable's parent directory. Exits 0 when both runs finish, 1 on\n"
            "a bad input file, 2 on a wrong command line.\n");
}

/* Matches option name at argv[*i] as "NAME VALUE" or "NAME=VALUE". Returns 1 and sets
 * *value on a match, 0 when argv[*i] is another option, -1 when the value is missing. */
static int option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}

int drv_cmd_demo(int argc, char **argv)
{
    const char *paths[3] = {NULL, NULL, NULL}; /* config, fleet, suite */
    static const char *const options[3] = {"--config", "--fleet", "--suite"};
    static const char *const files[3] = {"balancer.json", "fleet.json", "suite.json"};
    const char *seed_arg = NULL;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        int m = 0;
        for (int k = 0; k < 3 && m == 0; k++)
            m = option_value(argc, argv, &i, options[k], &paths[k]);
        if (m == 0)
            m = option_value(argc, argv, &i, "--seed", &seed_arg);
        if (m == 0 && strcmp(argv[i], "--quiet") == 0) {
            quiet = true;
            m = 1;
        }
        if (m < 0) {
            fprintf(stderr, "drover demo: %s needs a value\n", argv[i]);
            return DRV_EXIT_USAGE;
        }
        if (m == 0) {
            fprintf(stderr, "drover demo: unknown argument \"%s\" (see drover demo --help)\n",
                    argv[i]);
            return DRV_EXIT_USAGE;
        }
    }
    uint64_t seed = 1;
    if (seed_arg) {
        char *end = NULL;
        unsigned long long v = strtoull(seed_arg, &end, 10);
        if (!*seed_arg || *end || seed_arg[0] == '-') {
            fprintf(stderr, "drover demo: --seed: expected a non-negative integer, got \"%s\"\n",
                    seed_arg);
            return DRV_EXIT_USAGE;
        }
        seed = v;
    }
    char found[3][4096];
    for (int k = 0; k < 3; k++) {
        if (paths[k])
            continue;
        drv_error err = {{0}};
        if (find_example(files[k], options[k], found[k], sizeof found[k], &err) != 0) {
            fprintf(stderr, "drover demo: %s\n", err.msg);
            return DRV_EXIT_FAILURE;
        }
        paths[k] = found[k];
    }

    demo d;
    memset(&d, 0, sizeof d);
    d.quiet = quiet;
    d.rng = seed;
    int rc = DRV_EXIT_FAILURE;
    drv_error err = {{0}};
    if (drv_cli_load_config(paths[0], &d.cfg, &err) != 0) {
        fprintf(stderr, "drover demo: %s\n", err.msg);
        return DRV_EXIT_FAILURE;
    }
    d.tags = drv_tag_table_new();
    d.pred = drv_predictor_new(0.3);
    if (load_input(&d, paths[1], parse_fleet) != 0 || load_input(&d, paths[2], parse_suite) != 0)
        goto out;
    d.b = drv_balancer_new(&d.cfg, d.tags, d.pred, &err);
    if (!d.b) {
        fprintf(stderr, "drover demo: %s: %s\n", paths[0], err.msg);
        goto out;
    }
    if (add_fleet(&d) != 0)
        goto out;

    char policy[256];
    drv_cli_describe_policy(&d.cfg.default_policy, policy, sizeof policy);
    printf("drover demo: %zu workers (%s), %zu tests (%s), seed %llu\n", d.n_workers, paths[1],
           d.n_tests, paths[2], (unsigned long long)seed);
    printf("balancer config %s: default scheduler %s\n", paths[0], policy);
    if (run_suite(&d, 0) != 0 || run_suite(&d, 1) != 0)
        goto out;

    const run_result *a = &d.res[0], *b = &d.res[1];
    printf("\nsummary: first run %u passed, %u failed, %u unschedulable, makespan %.1f s; "
           "second run %u passed, %u failed, %u unschedulable, makespan %.1f s "
           "(lower bound %.1f s)\n",
           a->passed, a->failed, a->unschedulable, a->makespan, b->passed, b->failed,
           b->unschedulable, b->makespan, b->lower_bound);
    rc = DRV_EXIT_OK;
out:
    demo_free(&d);
    return rc;
}
