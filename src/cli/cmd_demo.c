/* cmd_demo.c - `drover demo`: the balancer at work on a sample fleet and suite.
 *
 * Reads a balancer config, a fleet and a suite (JSON) into a simulator workload
 * (sim/workload.h) and runs it twice through the simulator's engine (sim/engine.c) on a
 * virtual clock, as `drover sim` does: the same event loop, heartbeats, stealing,
 * rebalancing, lower bound and results. What the demo adds is the narration, through
 * the engine's observer: every placement, move, requeue and verdict as it happens, why
 * the first queued tests wait, and a per-worker table after each run. The first run
 * starts from the analyzer's estimates; halfway through its lower bound the strongest
 * worker that has a twin crashes (a planned crash of the engine, crash_at), so what it
 * ran and held is requeued. The second run reuses the same balancer and predictor (the
 * lost worker reconnects first), so its placements use the durations learned in the
 * first run.
 *
 * Everything is deterministic for a seed: it seeds the run-to-run jitter of the
 * durations (the engine's spread).
 *
 * Ownership: the demo struct owns the workload and every array it points to;
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
#include "protocol/protocol.h"
#include "sim/sim.h"

#define RUN_LIMIT_S     3600.0 /* a run not finished after this much virtual time fails */
#define JITTER          0.10   /* true durations vary by +-10% from run to run */
#define PROBLEMS_SHOWN  30     /* input problems printed before "..." */
#define EXPLAIN_WAITING 2      /* queued tests explained after the first placement round */

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

/* Reports err when a reader (json/json_fields.h, the requirements codec) failed (rc < 0).
 * Returns whether it read a value (rc > 0). */
static bool took(input_ctx *in, int rc, const drv_error *err)
{
    if (rc < 0)
        bad(in, "%s", err->msg);
    return rc > 0;
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

/* What the narration counts per worker in the current run. */
typedef struct demo_worker {
    double busy_s;  /* summed run time of the tests that ran to an end on it */
    uint32_t tests; /* those tests */
    double lost_at; /* from the run's start; < 0: not lost */
} demo_worker;

typedef struct demo {
    bool quiet;
    drv_balancer_config cfg;
    drv_workload w;
    demo_worker *workers; /* per worker of w (owned) */
    double *predicted_s;  /* per test: its prediction when it last started (owned) */
    uint8_t *final;       /* per test: its final state this run (owned) */
    bool *eligible;       /* per test: some worker meets its requirements (owned) */
    double pred_err_sum;  /* this run: |predicted - took| / took over finished runs */
    unsigned pred_n;
    drv_sim_result res[2];
} demo;

/* ---- reading the fleet and the suite ------------------------------------------------ */

/* Parses the fleet file text into d->w's workers (their true speed is announced, as a
 * configured worker's is). Returns 0, or -1 after reporting every problem on stderr. */
static int parse_fleet(demo *d, const char *path, const char *text, size_t len)
{
    /* The capabilities are the codec's (cores, memory_gb, gpus, gpu_memory_gb, cuda_cc,
     * tags, ...); these are the fleet file's own. */
    static const char *const own[] = {"name", "slots", "speed", NULL};
    input_ctx in = {.file = path, .problems = 0};
    json_t *root = NULL;
    json_t *list = load_list(&in, text, len, "workers", &root);
    if (list) {
        size_t i;
        json_t *o;
        json_array_foreach(list, i, o)
        {
            char p[DRV_JSON_PATH_MAX];
            drv_json_path_index(p, "workers", i);
            if (!json_is_object(o)) {
                bad(&in, "%s: must be an object, got %s", p, drv_json_kind_a(o));
                continue;
            }
            drv_sim_worker sw;
            memset(&sw, 0, sizeof sw);
            drv_capabilities_init(&sw.caps);
            sw.leave_at = -1;
            drv_error err = {{0}};
            const char *name = NULL;
            if (took(&in,
                     drv_json_string(o, p, "name", DRV_JSON_REQUIRED | DRV_JSON_NONEMPTY,
                                     sizeof sw.name - 1, &name, &err),
                     &err)) {
                for (size_t k = 0; k < d->w.n_workers; k++)
                    if (strcmp(d->w.workers[k].name, name) == 0)
                        bad(&in, "%s.name: \"%s\" is already the name of workers[%zu]", p, name, k);
            }
            snprintf(sw.name, sizeof sw.name, "%s", name ? name : "?");
            snprintf(sw.kind, sizeof sw.kind, "%.*s", (int)sizeof sw.kind - 1, sw.name);
            drv_tag_stage st = {d->w.tags, NULL};
            int rc = drv_capabilities_read(o, p, 0, own, &st, &sw.caps, &err);
            if (rc == 0)
                rc = drv_tag_stage_commit(&st, &err);
            drv_tag_stage_free(&st);
            if (!took(&in, rc, &err)) {
                if (rc == 0 && sw.caps.cpu_cores == 0)
                    bad(&in, "%s.cores: required, at least 1", p);
                if (rc == 0 && sw.caps.memory_mb == 0)
                    bad(&in, "%s.memory_gb: required, more than 0", p);
            }
            uint64_t u = 0;
            if (took(&in,
                     drv_json_uint(o, p, "slots", DRV_JSON_NULL_WRONG | DRV_JSON_WHOLE_REAL, 0,
                                   1 << 16, &u, &err),
                     &err))
                sw.slots = (uint32_t)u;
            double x = 1.0;
            took(&in,
                 drv_json_number(o, p, "speed", DRV_JSON_NULL_WRONG | DRV_JSON_ABOVE_MIN, 0, 1000,
                                 &x, &err),
                 &err);
            sw.speed = (float)x;
            drv_workload_add_worker(&d->w, &sw);
        }
    }
    json_decref(root);
    if (in.problems > PROBLEMS_SHOWN)
        fprintf(stderr, "%s: ... and %u more problems\n", path, in.problems - PROBLEMS_SHOWN);
    return in.problems ? -1 : 0;
}

/* Parses the suite file text into d->w's tests, all arriving at 0. A test with a
 * non-zero exit_code fails every run with it. Returns 0, or -1 after reporting every
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
        size_t i;
        json_t *o;
        json_array_foreach(list, i, o)
        {
            char p[DRV_JSON_PATH_MAX];
            drv_json_path_index(p, "tests", i);
            if (!json_is_object(o)) {
                bad(&in, "%s: must be an object, got %s", p, drv_json_kind_a(o));
                continue;
            }
            drv_error err = {{0}};
            took(&in, drv_json_check_keys(o, p, keys, &err), &err);
            drv_sim_test t;
            memset(&t, 0, sizeof t);
            drv_requirements_init(&t.req);
            t.id = d->w.n_tests + 1;
            t.priority = DRV_PRIORITY_DEFAULT;
            t.max_retries = 1;
            const unsigned num = DRV_JSON_NULL_WRONG | DRV_JSON_WHOLE_REAL;
            int64_t v = 0;
            const char *name = NULL, *model_id = NULL, *test_type = NULL;
            if (took(&in,
                     drv_json_string(o, p, "name", DRV_JSON_REQUIRED | DRV_JSON_NONEMPTY,
                                     DRV_STRING_MAX, &name, &err),
                     &err)) {
                for (size_t k = 0; k < d->w.n_tests; k++)
                    if (strcmp(d->w.tests[k].name, name) == 0)
                        bad(&in, "%s.name: \"%s\" is already the name of tests[%zu]", p, name, k);
            }
            t.name = (char *)(name ? name : "?"); /* copied by drv_workload_add_test */
            took(&in,
                 drv_json_string(o, p, "model_id", DRV_JSON_NONEMPTY, DRV_STRING_MAX, &model_id,
                                 &err),
                 &err);
            took(&in,
                 drv_json_string(o, p, "test_type", DRV_JSON_NONEMPTY, DRV_STRING_MAX, &test_type,
                                 &err),
                 &err);
            t.model_id = (char *)model_id;
            t.test_type = (char *)test_type;
            t.family = drv_analyzer_family(t.model_id);
            if (took(&in,
                     drv_json_int(o, p, "priority", num, DRV_PRIORITY_MIN, DRV_PRIORITY_MAX, &v,
                                  &err),
                     &err))
                t.priority = (int32_t)v;
            json_t *req = json_object_get(o, "requirements");
            if (req) {
                char rp[DRV_JSON_PATH_MAX];
                drv_json_path_key(rp, p, "requirements");
                drv_tag_stage st = {d->w.tags, NULL};
                int rc = drv_requirements_read(req, rp, 0, NULL, &st, &t.req, &err);
                if (rc == 0)
                    rc = drv_tag_stage_commit(&st, &err);
                drv_tag_stage_free(&st);
                took(&in, rc, &err);
            }
            took(&in,
                 drv_json_number(o, p, "duration_s",
                                 DRV_JSON_REQUIRED | DRV_JSON_NULL_WRONG | DRV_JSON_ABOVE_MIN, 0,
                                 RUN_LIMIT_S / 4, &t.duration_s, &err),
                 &err);
            if (took(&in, drv_json_int(o, p, "max_retries", num, 0, 255, &v, &err), &err))
                t.max_retries = (uint32_t)v;
            if (took(&in, drv_json_int(o, p, "exit_code", num, 0, 255, &v, &err), &err)) {
                t.exit_code = (int)v;
                t.flaky_p = v != 0 ? 1 : 0;
            }
            took(&in,
                 drv_json_bool(o, p, "retry_on_failure", DRV_JSON_NULL_WRONG, &t.retry_on_failure,
                               &err),
                 &err);
            drv_workload_add_test(&d->w, &t);
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

/* ---- the narration (the engine's observer) ---------------------------------------- */

/* Prints "t=  3.0s  MESSAGE" (time relative to the run's start) unless quiet. */
__attribute__((format(printf, 3, 4))) static void say(const demo *d, const drv_sim_view *v,
                                                      const char *fmt, ...)
{
    if (d->quiet)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    printf("t=%5.1fs  %s\n", v->t, msg);
}

static const char *wname(const demo *d, uint32_t j)
{
    return j < d->w.n_workers ? d->w.workers[j].name : "?";
}

/* The scheduler name a test gets from the config, as the placement lines show it. */
static const char *policy_of(const demo *d, uint32_t i)
{
    const drv_sim_test *t = &d->w.tests[i];
    const drv_policy_spec *spec =
        drv_balancer_config_policy_for(&d->cfg, drv_analyzer_family(t->model_id), t->test_type);
    return drv_policy_kind_name(spec->kind);
}

static void on_run_start(void *ctx, const drv_sim_view *v)
{
    demo *d = ctx;
    printf("\n== %s ==\n", v->run == 0 ? "first run: durations unknown, predictions are the "
                                         "analyzer's estimates"
                                       : "second run: durations learned in the first run");
    for (size_t j = 0; j < d->w.n_workers; j++)
        d->workers[j] = (demo_worker){.lost_at = -1};
    memset(d->final, DRV_TASK_STATE_COUNT, d->w.n_tests);
    d->pred_err_sum = 0;
    d->pred_n = 0;
}

static void on_started(void *ctx, const drv_sim_view *v, uint32_t i, uint32_t j)
{
    demo *d = ctx;
    drv_prediction p =
        drv_balancer_predict(v->b, drv_sim_view_test(v, i), drv_sim_view_worker(v, j));
    d->predicted_s[i] = p.mean_s;
}

static void on_decision(void *ctx, const drv_sim_view *v, const drv_sim_decision *sd)
{
    demo *d = ctx;
    const drv_decision *dec = sd->d;
    const drv_sim_test *t = &d->w.tests[sd->test];
    if (sd->ran_s > 0) { /* the verdict on a run that ended now */
        demo_worker *w = &d->workers[sd->from];
        w->busy_s += sd->ran_s;
        w->tests++;
        d->pred_err_sum += fabs(d->predicted_s[sd->test] - sd->ran_s) / sd->ran_s;
        d->pred_n++;
    }
    char desc[512];
    switch (dec->kind) {
    case DRV_D_PLACED:
        say(d, v, "placed %s -> %s (%s)", t->name, wname(d, sd->worker), policy_of(d, sd->test));
        break;
    case DRV_D_MOVED:
        say(d, v, "moved %s %s -> %s (%s: it would have waited there)", t->name, wname(d, sd->from),
            wname(d, sd->worker), drv_reason_name(dec->reason));
        break;
    case DRV_D_REQUEUED:
        say(d, v, "requeued %s from %s (%s)", t->name, wname(d, sd->from),
            drv_reason_name(dec->reason));
        break;
    case DRV_D_FINAL:
        d->final[sd->test] = (uint8_t)dec->state;
        if (dec->state != DRV_TASK_UNSCHEDULABLE && sd->ran_s > 0) {
            char why[32] = "";
            if (dec->state != DRV_TASK_PASSED)
                snprintf(why, sizeof why, ", exit code %d", t->exit_code ? t->exit_code : 1);
            say(d, v, "%s %s on %s in %.1f s (predicted %.1f s)%s",
                dec->state == DRV_TASK_PASSED ? "passed" : "FAILED", t->name, wname(d, sd->from),
                sd->ran_s, d->predicted_s[sd->test], why);
        } else {
            drv_decision_describe(v->b, dec, desc, sizeof desc);
            say(d, v, "%s %s: %s",
                dec->state == DRV_TASK_UNSCHEDULABLE ? "unschedulable"
                                                     : drv_task_state_name(dec->state),
                t->name, desc);
        }
        break;
    }
}

static void on_fleet(void *ctx, const drv_sim_view *v, uint32_t j, drv_sim_fleet_event e,
                     uint32_t running, uint32_t holding)
{
    demo *d = ctx;
    if (e == DRV_SIM_LOST) {
        say(d, v, "worker %s lost (missed heartbeats) while running %u and holding %u more",
            wname(d, j), running, holding);
        d->workers[j].lost_at = v->t;
    } else {
        say(d, v, "worker %s reconnected", wname(d, j));
    }
}

/* Prints drv_balancer_explain for a few tests still queued after the first placement
 * round: the first EXPLAIN_WAITING with different requirements, and every one that no
 * worker can run. */
static void on_first_round(void *ctx, const drv_sim_view *v)
{
    demo *d = ctx;
    if (d->quiet)
        return;
    const drv_requirements *seen[EXPLAIN_WAITING];
    size_t n_seen = 0;
    bool header = false;
    for (uint32_t i = 0; i < d->w.n_tests; i++) {
        const drv_sim_test *t = &d->w.tests[i];
        drv_tref ref = drv_sim_view_test(v, i);
        if (ref == DRV_REF_NONE || drv_balancer_task_state(v->b, ref) != DRV_TASK_QUEUED)
            continue;
        if (d->eligible[i]) {
            bool dup = n_seen == EXPLAIN_WAITING;
            for (size_t k = 0; k < n_seen && !dup; k++)
                dup = drv_requirements_equal(seen[k], &t->req);
            if (dup)
                continue;
            seen[n_seen++] = &t->req;
        }
        char why[512];
        if (drv_balancer_explain(v->b, ref, v->now, why, sizeof why) != 0)
            continue;
        if (!header) {
            printf("why are these tests still queued? (drv_balancer_explain)\n");
            header = true;
        }
        printf("    %s: %s\n", t->name, why);
    }
}

/* The run's figures, then the per-worker table and the tests no worker can run. */
static void on_run_end(void *ctx, const drv_sim_view *v, const drv_sim_result *r)
{
    demo *d = ctx;
    printf("%s run: makespan %.1f s, lower bound %.1f s (+%.0f%%); %llu passed, %llu failed, "
           "%llu unschedulable; %llu requeued, %llu moved; predictions off by %.0f%% on "
           "average\n",
           v->run == 0 ? "first" : "second", r->makespan_s, r->lower_bound_s,
           r->lower_bound_s > 0 ? 100.0 * (r->makespan_s / r->lower_bound_s - 1) : 0,
           (unsigned long long)r->passed, (unsigned long long)r->failed,
           (unsigned long long)r->unschedulable, (unsigned long long)r->retries,
           (unsigned long long)r->steals, d->pred_n ? 100.0 * d->pred_err_sum / d->pred_n : 0);
    double span = r->makespan_s > 0 ? r->makespan_s : 1;
    printf("    %-18s %5s %6s %6s %8s %6s\n", "worker", "slots", "speed", "tests", "busy s",
           "util");
    for (uint32_t j = 0; j < d->w.n_workers; j++) {
        const demo_worker *w = &d->workers[j];
        const drv_worker *bw = drv_balancer_worker(v->b, drv_sim_view_worker(v, j));
        uint32_t slots = bw ? bw->slots : d->w.workers[j].slots;
        printf("    %-18s %5u %6.2f %6u %8.1f %5.0f%%", wname(d, j), slots,
               (double)d->w.workers[j].speed, w->tests, w->busy_s,
               slots ? 100.0 * w->busy_s / (slots * span) : 0);
        if (w->lost_at >= 0)
            printf("  lost at %.1f s", w->lost_at);
        printf("\n");
    }
    for (size_t i = 0; i < d->w.n_tests; i++)
        if (d->final[i] == DRV_TASK_UNSCHEDULABLE)
            printf("    unschedulable: %s (no worker meets its requirements)\n",
                   d->w.tests[i].name);
}

/* Plans the first run's crash: the worker with the most capacity (slots x speed) among
 * those that have a twin (a worker of equal capabilities, slots and speed), so losing it
 * strands no test, halfway through the run's lower bound. Nothing when none has a twin. */
static void plan_crash(demo *d)
{
    drv_workload *w = &d->w;
    size_t best = SIZE_MAX;
    double best_cap = 0;
    for (size_t j = 0; j < w->n_workers; j++) {
        const drv_sim_worker *a = &w->workers[j];
        bool twin = false;
        for (size_t k = 0; k < w->n_workers && !twin; k++) {
            const drv_sim_worker *b = &w->workers[k];
            twin = k != j && a->slots == b->slots && a->speed == b->speed &&
                   drv_capabilities_equal(&a->caps, &b->caps);
        }
        double cap = (a->slots ? a->slots : a->caps.cpu_cores) * (double)a->speed;
        if (twin && (best == SIZE_MAX || cap > best_cap)) {
            best = j;
            best_cap = cap;
        }
    }
    double at = drv_sim_lower_bound(w, NULL) / 2;
    if (best != SIZE_MAX && at > 0)
        w->workers[best].crash_at = at;
}

static void demo_free(demo *d)
{
    drv_workload_free(&d->w);
    free(d->workers);
    free(d->predicted_s);
    free(d->final);
    free(d->eligible);
}

/* The command line: the three files (config, fleet, suite) in that order. */
typedef struct demo_args {
    const char *paths[3];
    uint64_t seed;
    bool quiet;
} demo_args;

#define DA(f) offsetof(demo_args, f)
static const drv_opt demo_opts[] = {
    {"--config", NULL, DRV_OPT_STRING, DA(paths[0]), 0, 0, "FILE",
     "balancer config (default examples/balancer.json)", NULL},
    {"--fleet", NULL, DRV_OPT_STRING, DA(paths[1]), 0, 0, "FILE",
     "{\"workers\": [{name, cores, memory_gb, gpus, gpu_memory_gb, cuda_cc, tags, slots, "
     "speed}, ...]} (default examples/fleet.json)",
     NULL},
    {"--suite", NULL, DRV_OPT_STRING, DA(paths[2]), 0, 0, "FILE",
     "{\"tests\": [{name, model_id, test_type, priority, requirements: {cpu, memory_gb, gpus, "
     "gpu_memory_gb, cuda_cc, tags, any_of, none_of}, duration_s, max_retries, exit_code, "
     "retry_on_failure}, ...]} (default examples/suite.json); duration_s is the true duration "
     "at speed 1, exit_code what the test exits with (0)",
     NULL},
    {"--seed", NULL, DRV_OPT_UINT, DA(seed), 0, 1.9e19, "N",
     "seed of the duration jitter (default 1); same seed, same output", NULL},
    {"--quiet", NULL, DRV_OPT_FLAG, DA(quiet), 0, 0, NULL,
     "print only the run results and the summary", NULL},
};
#define N_DEMO_OPTS (sizeof demo_opts / sizeof demo_opts[0])

void drv_cmd_demo_usage(FILE *out)
{
    fprintf(out, "usage: drover demo [--config FILE] [--fleet FILE] [--suite FILE] [--seed N] "
                 "[--quiet]\n"
                 "\n"
                 "Runs the simulator's engine (as drover sim does) on a sample fleet and suite\n"
                 "on a virtual clock, twice: the first run from the analyzer's duration\n"
                 "estimates (one worker crashes midway), the second with the durations learned\n"
                 "in the first. Prints the placements as they happen, why the first queued tests\n"
                 "wait, each run's makespan against its lower bound (the simulator's) with a\n"
                 "per-worker utilization table, and a summary.\n"
                 "\n");
    drv_opt_usage(out, demo_opts, N_DEMO_OPTS);
    fprintf(out, "\n"
                 "Default files are looked for under examples/ in the current directory, then\n"
                 "next to the executable's parent directory. Exits 0 when both runs finish, 1 on\n"
                 "a bad input file, 2 on a wrong command line.\n");
}

int drv_cmd_demo(int argc, char **argv)
{
    static const char *const options[3] = {"--config", "--fleet", "--suite"};
    static const char *const files[3] = {"balancer.json", "fleet.json", "suite.json"};
    demo_args o = {.seed = 1};
    int rest;
    int code = drv_opt_parse("demo", demo_opts, N_DEMO_OPTS, &o, NULL, argc, argv, &rest);
    if (code >= 0)
        return code;
    if (rest < argc)
        return drv_cli_usage_error("demo", "unexpected argument", argv[rest]);
    const char **paths = o.paths;
    uint64_t seed = o.seed;
    bool quiet = o.quiet;
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
    drv_workload_init(&d.w);
    int rc = DRV_EXIT_FAILURE;
    drv_error err = {{0}};
    if (drv_cli_load_config(paths[0], &d.cfg, &err) != 0) {
        fprintf(stderr, "drover demo: %s\n", err.msg);
        goto out;
    }
    if (load_input(&d, paths[1], parse_fleet) != 0 || load_input(&d, paths[2], parse_suite) != 0)
        goto out;
    snprintf(d.w.source, sizeof d.w.source, "demo: %s, %s", paths[1], paths[2]);
    d.workers = drv_xcalloc(d.w.n_workers + 1, sizeof *d.workers);
    d.predicted_s = drv_xcalloc(d.w.n_tests + 1, sizeof *d.predicted_s);
    d.final = drv_xcalloc(d.w.n_tests + 1, sizeof *d.final);
    d.eligible = drv_xcalloc(d.w.n_tests + 1, sizeof *d.eligible);
    drv_sim_eligible(&d.w, d.eligible);
    plan_crash(&d);

    char policy[256];
    drv_cli_describe_policy(&d.cfg.default_policy, policy, sizeof policy);
    printf("drover demo: %zu workers (%s), %zu tests (%s), seed %llu\n", d.w.n_workers, paths[1],
           d.w.n_tests, paths[2], (unsigned long long)seed);
    printf("balancer config %s: default scheduler %s\n", paths[0], policy);

    drv_sim_observer obs = {.ctx = &d,
                            .run_start = on_run_start,
                            .first_round = on_first_round,
                            .decision = on_decision,
                            .started = on_started,
                            .fleet = on_fleet,
                            .run_end = on_run_end};
    drv_sim_options opt;
    drv_sim_options_default(&opt);
    opt.seed = seed;
    opt.runs = 2;
    opt.spread = JITTER;
    opt.crash_down_s = -1;      /* the planned crash: back for the second run */
    opt.retry_failures = false; /* as each test says */
    opt.max_time_s = RUN_LIMIT_S;
    opt.timing = false;
    opt.observer = &obs;
    if (drv_sim_run_policy(&d.w, &d.cfg, "config", &opt, d.res, &err) != 0) {
        fprintf(stderr, "drover demo: %s: %s\n", paths[0], err.msg);
        goto out;
    }
    for (int r = 0; r < 2; r++) {
        if (d.res[r].unfinished > 0) {
            fprintf(stderr,
                    "drover demo: the %s run did not finish within %.0f s of virtual time "
                    "(%llu tests not final)\n",
                    r == 0 ? "first" : "second", RUN_LIMIT_S,
                    (unsigned long long)d.res[r].unfinished);
            goto out;
        }
    }

    const drv_sim_result *a = &d.res[0], *b = &d.res[1];
    printf("\nsummary: first run %llu passed, %llu failed, %llu unschedulable, makespan %.1f s; "
           "second run %llu passed, %llu failed, %llu unschedulable, makespan %.1f s "
           "(lower bound %.1f s)\n",
           (unsigned long long)a->passed, (unsigned long long)a->failed,
           (unsigned long long)a->unschedulable, a->makespan_s, (unsigned long long)b->passed,
           (unsigned long long)b->failed, (unsigned long long)b->unschedulable, b->makespan_s,
           b->lower_bound_s);
    rc = DRV_EXIT_OK;
out:
    demo_free(&d);
    return rc;
}
