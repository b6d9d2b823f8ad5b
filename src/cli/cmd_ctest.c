/* cmd_ctest.c - `drover ctest`: a CTest suite submitted as one run, then waited for.
 *
 *   drover ctest --build-dir DIR [-L R] [-LE R] [-R R] [-E R] [--run NAME] [--junit FILE]
 *                [--dry-run] [options]
 *
 * Reads `ctest --show-only=json-v1` in DIR (the filters go to ctest, so it selects what
 * it would run) and turns each test into a drover test (docs/api.md):
 *   command, WORKING_DIRECTORY, ENVIRONMENT     argv, cwd, env
 *   TIMEOUT, LABELS, PROCESSORS                 timeout_s, labels, requirements.cpu
 *   RESOURCE_GROUPS                             requirements: gpus slots as gpus, cpu
 *                                               slots as cpu, any other type as a tag
 *   WILL_FAIL, PASS/FAIL_REGULAR_EXPRESSION,    judged on the worker by `drover judge`
 *   SKIP_REGULAR_EXPRESSION                     wrapped around the command (skip: 77)
 *   SKIP_RETURN_CODE alone                      skip_exit_code
 *   DISABLED                                    disabled (stored skipped, never run)
 *   DEPENDS                                     after, run_anyway (ordering only)
 *   FIXTURES_REQUIRED F                         after every FIXTURES_SETUP F test; a setup
 *                                               that does not pass skips it
 *   FIXTURES_CLEANUP F                          after the setups and requirers of F, and
 *                                               run anyway
 *   RESOURCE_LOCK, RUN_SERIAL                   locks, exclusive
 * A test that requires a fixture is not run anyway, so one of its DEPENDS failing skips
 * it too (drover has one run_anyway per test). The judge is this drover binary: the
 * workers must have it at the same path. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "client/client.h"

#define JUDGE_SKIP 77

typedef struct ctest_args {
    const char *build_dir;
    drv_opt_list label, label_exclude, regex, exclude;
    const char *run, *junit, *ctest;
    bool dry_run, quiet, verbose;
    double wait_timeout;
    uint64_t rerun_failures;
    uint64_t jobs; /* -j N: at most N of this invocation's tests at once; 0 no cap */
} ctest_args;

#define C(f) offsetof(ctest_args, f)
static const drv_opt ctest_opts[] = {
    {"--build-dir", NULL, DRV_OPT_STRING, C(build_dir), 0, 0, "DIR",
     "the CMake build directory (required)", NULL},
    {"--label-regex", "-L", DRV_OPT_LIST, C(label), 0, 0, "R", "tests with a label matching R",
     NULL},
    {"--label-exclude", "-LE", DRV_OPT_LIST, C(label_exclude), 0, 0, "R",
     "not tests with a label matching R", NULL},
    {"--tests-regex", "-R", DRV_OPT_LIST, C(regex), 0, 0, "R", "tests whose name matches R", NULL},
    {"--exclude-regex", "-E", DRV_OPT_LIST, C(exclude), 0, 0, "R", "not tests whose name matches R",
     NULL},
    {"--run", NULL, DRV_OPT_STRING, C(run), 0, 0, "NAME", "name the run", NULL},
    {"--junit", NULL, DRV_OPT_STRING, C(junit), 0, 0, "FILE",
     "write the run's JUnit XML report when it is done (- is stdout)", NULL},
    {"--wait-timeout", NULL, DRV_OPT_DOUBLE, C(wait_timeout), 0.001, 1e9, "S",
     "stop waiting after S seconds (the tests keep running)", NULL},
    {"--parallel", "-j", DRV_OPT_UINT, C(jobs), 1, 100000, "N",
     "at most N of these tests run at once (a counted lock, docs/protocol.md)", NULL},
    {"--rerun-failures", NULL, DRV_OPT_UINT, C(rerun_failures), 0, 100, "N",
     "a failed test runs again up to N times, on another worker where there is one", NULL},
    {"--quiet", NULL, DRV_OPT_FLAG, C(quiet), 0, 0, NULL, "no progress lines", NULL},
    {"--verbose", "-v", DRV_OPT_FLAG, C(verbose), 0, 0, NULL,
     "a line per test as it finishes, with its worker", NULL},
    {"--dry-run", NULL, DRV_OPT_FLAG, C(dry_run), 0, 0, NULL,
     "print the tests as drover JSON (an array) and submit nothing", NULL},
    {"--ctest", NULL, DRV_OPT_STRING, C(ctest), 0, 0, "PATH", "the ctest program (default ctest)",
     NULL},
};
#define N_CTEST_OPTS (sizeof ctest_opts / sizeof ctest_opts[0])

void drv_cmd_ctest_usage(FILE *out)
{
    fprintf(out,
            "usage: drover ctest --build-dir DIR [options]\n"
            "\n"
            "Submits the tests CTest would run in DIR (ctest --show-only=json-v1 with the\n"
            "filters below) as one run, with their properties (TIMEOUT, LABELS, PROCESSORS,\n"
            "RESOURCE_GROUPS, WILL_FAIL, PASS/FAIL/SKIP_REGULAR_EXPRESSION, SKIP_RETURN_CODE,\n"
            "DISABLED, DEPENDS, FIXTURES_*, RESOURCE_LOCK, RUN_SERIAL), then waits for it\n"
            "like drover run.\n"
            "\n");
    drv_opt_usage(out, ctest_opts, N_CTEST_OPTS);
    fputc('\n', out);
    drv_opt_conn_usage(out);
    fprintf(out, "\n"
                 "Exits 0 when every test passed or was skipped, 1 when one did not, 2 on a wrong\n"
                 "command line or a build directory without tests, 3 when ctest or the\n"
                 "coordinator cannot be used.\n");
}

/* The value of property name of a ctest test, or NULL. */
static const json_t *prop(const json_t *test, const char *name)
{
    const json_t *props = json_object_get(test, "properties");
    for (size_t i = 0; i < json_array_size(props); i++) {
        const json_t *p = json_array_get(props, i);
        const char *n = json_string_value(json_object_get(p, "name"));
        if (n && strcmp(n, name) == 0)
            return json_object_get(p, "value");
    }
    return NULL;
}

static bool prop_true(const json_t *test, const char *name)
{
    const json_t *v = prop(test, name);
    if (json_is_boolean(v))
        return json_is_true(v);
    const char *s = json_string_value(v);
    return s && (strcasecmp(s, "ON") == 0 || strcasecmp(s, "TRUE") == 0 || strcmp(s, "1") == 0 ||
                 strcasecmp(s, "YES") == 0);
}

/* A string list property as a JSON array (new reference; empty when absent). */
static json_t *prop_list(const json_t *test, const char *name)
{
    const json_t *v = prop(test, name);
    if (json_is_array(v))
        return json_deep_copy(v);
    json_t *a = json_array();
    if (json_is_string(v))
        json_array_append(a, (json_t *)v);
    return a;
}

static bool list_has(const json_t *a, const char *s)
{
    for (size_t i = 0; i < json_array_size(a); i++)
        if (strcmp(json_string_value(json_array_get(a, i)), s) == 0)
            return true;
    return false;
}

static void add_unique(json_t *a, const char *s)
{
    if (!list_has(a, s))
        json_array_append_new(a, json_string(s));
}

/* Appends "--flag value" for each item of a list property. */
static void judge_list(json_t *argv, const json_t *test, const char *name, const char *flag)
{
    const json_t *v = prop(test, name);
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_array_append_new(argv, json_string(flag));
        json_array_append(argv, json_array_get(v, i));
    }
}

/* requirements from PROCESSORS and RESOURCE_GROUPS (NULL when none). */
static json_t *requirements_of(const json_t *test)
{
    json_int_t cpu = json_integer_value(prop(test, "PROCESSORS")), gpus = 0;
    json_t *tags = json_array();
    const json_t *groups = prop(test, "RESOURCE_GROUPS");
    for (size_t g = 0; g < json_array_size(groups); g++) {
        const json_t *reqs = json_object_get(json_array_get(groups, g), "requirements");
        for (size_t k = 0; k < json_array_size(reqs); k++) {
            const json_t *r = json_array_get(reqs, k);
            const char *type = json_string_value(json_object_get(r, ".type"));
            json_int_t slots = json_integer_value(json_object_get(r, "slots"));
            if (!type)
                continue;
            if (strcmp(type, "gpus") == 0 || strcmp(type, "gpu") == 0)
                gpus += slots > 0 ? slots : 1;
            else if (strcmp(type, "cpus") == 0 || strcmp(type, "cpu") == 0)
                cpu += slots > 0 ? slots : 1;
            else
                add_unique(tags, type);
        }
    }
    if (cpu <= 0 && gpus == 0 && json_array_size(tags) == 0) {
        json_decref(tags);
        return NULL;
    }
    json_t *o = json_object();
    if (cpu > 0)
        json_object_set_new(o, "cpu", json_integer(cpu));
    if (gpus > 0)
        json_object_set_new(o, "gpus", json_integer(gpus));
    if (json_array_size(tags))
        json_object_set_new(o, "tags", tags);
    else
        json_decref(tags);
    return o;
}

/* The names of the tests of list that have name in property prop_name. */
static void tests_with(const json_t *list, const char *prop_name, const char *fixture, json_t *out,
                       const char *except)
{
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *t = json_array_get(list, i);
        const char *name = json_string_value(json_object_get(t, "name"));
        json_t *v = prop_list(t, prop_name);
        if (name && (!except || strcmp(name, except) != 0) && list_has(v, fixture))
            add_unique(out, name);
        json_decref(v);
    }
}

/* One ctest test as a drover test (new reference). */
static json_t *convert(const json_t *t, const json_t *all, const char *self_exe)
{
    const char *name = json_string_value(json_object_get(t, "name"));
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    const json_t *cmd = json_object_get(t, "command");
    bool judged = prop(t, "WILL_FAIL") || prop(t, "PASS_REGULAR_EXPRESSION") ||
                  prop(t, "FAIL_REGULAR_EXPRESSION") || prop(t, "SKIP_REGULAR_EXPRESSION");
    json_int_t skip_code = json_integer_value(prop(t, "SKIP_RETURN_CODE"));
    if (skip_code < 1 || skip_code > 255)
        skip_code = 0;
    if (!json_is_array(cmd) || json_array_size(cmd) == 0) {
        json_object_set_new(
            o, "command",
            json_string("echo 'drover ctest: CTest gives this test no command "
                        "(its executable was not found: is it built?)' >&2; exit 1"));
        json_object_set_new(o, "shell", json_true());
    } else if (judged) {
        json_t *argv = json_array();
        json_array_append_new(argv, json_string(self_exe));
        json_array_append_new(argv, json_string("judge"));
        if (prop_true(t, "WILL_FAIL"))
            json_array_append_new(argv, json_string("--will-fail"));
        judge_list(argv, t, "PASS_REGULAR_EXPRESSION", "--pass-regex");
        judge_list(argv, t, "FAIL_REGULAR_EXPRESSION", "--fail-regex");
        judge_list(argv, t, "SKIP_REGULAR_EXPRESSION", "--skip-regex");
        if (skip_code) {
            char v[16];
            snprintf(v, sizeof v, "%d", (int)skip_code);
            json_array_append_new(argv, json_string("--skip-code"));
            json_array_append_new(argv, json_string(v));
        }
        json_array_append_new(argv, json_string("--"));
        json_array_extend(argv, (json_t *)cmd);
        json_object_set_new(o, "argv", argv);
        json_object_set_new(o, "skip_exit_code", json_integer(JUDGE_SKIP));
    } else {
        json_object_set(o, "argv", (json_t *)cmd);
        if (skip_code)
            json_object_set_new(o, "skip_exit_code", json_integer(skip_code));
    }
    const char *wd = json_string_value(prop(t, "WORKING_DIRECTORY"));
    if (wd)
        json_object_set_new(o, "cwd", json_string(wd));
    json_t *env = prop_list(t, "ENVIRONMENT");
    if (json_array_size(env)) {
        json_t *e = json_object();
        for (size_t i = 0; i < json_array_size(env); i++) {
            const char *kv = json_string_value(json_array_get(env, i));
            const char *eq = kv ? strchr(kv, '=') : NULL;
            if (!eq || eq == kv)
                continue;
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
            json_object_set_new(e, key, json_string(eq + 1));
        }
        json_object_set_new(o, "env", e);
    }
    json_decref(env);
    double timeout = json_number_value(prop(t, "TIMEOUT"));
    if (timeout > 0)
        json_object_set_new(o, "timeout_s", json_real(timeout));
    json_t *labels = prop_list(t, "LABELS");
    if (json_array_size(labels))
        json_object_set(o, "labels", labels);
    json_decref(labels);
    json_t *req = requirements_of(t);
    if (req)
        json_object_set_new(o, "requirements", req);
    if (prop_true(t, "DISABLED"))
        json_object_set_new(o, "disabled", json_true());

    /* Ordering: DEPENDS (present in this set), fixtures. */
    json_t *after = json_array();
    bool anyway = true;
    json_t *deps = prop_list(t, "DEPENDS");
    for (size_t i = 0; i < json_array_size(deps); i++) {
        const char *d = json_string_value(json_array_get(deps, i));
        for (size_t k = 0; d && k < json_array_size(all); k++) {
            const char *n = json_string_value(json_object_get(json_array_get(all, k), "name"));
            if (n && strcmp(n, d) == 0 && strcmp(n, name) != 0)
                add_unique(after, d);
        }
    }
    json_decref(deps);
    json_t *required = prop_list(t, "FIXTURES_REQUIRED");
    json_t *mine_setup = prop_list(t, "FIXTURES_SETUP");
    json_t *mine_cleanup = prop_list(t, "FIXTURES_CLEANUP");
    for (size_t i = 0; i < json_array_size(required); i++) {
        const char *f = json_string_value(json_array_get(required, i));
        if (list_has(mine_setup, f) || list_has(mine_cleanup, f))
            continue;
        json_t *setups = json_array(); /* ctest may list them in DEPENDS too */
        tests_with(all, "FIXTURES_SETUP", f, setups, name);
        for (size_t k = 0; k < json_array_size(setups); k++)
            add_unique(after, json_string_value(json_array_get(setups, k)));
        if (json_array_size(setups))
            anyway = false;
        json_decref(setups);
    }
    for (size_t i = 0; i < json_array_size(mine_cleanup); i++) {
        const char *f = json_string_value(json_array_get(mine_cleanup, i));
        tests_with(all, "FIXTURES_SETUP", f, after, name);
        /* every requirer of f that is neither its setup nor its cleanup */
        for (size_t k = 0; k < json_array_size(all); k++) {
            const json_t *u = json_array_get(all, k);
            const char *n = json_string_value(json_object_get(u, "name"));
            json_t *r = prop_list(u, "FIXTURES_REQUIRED");
            json_t *s = prop_list(u, "FIXTURES_SETUP");
            json_t *c = prop_list(u, "FIXTURES_CLEANUP");
            if (n && strcmp(n, name) != 0 && list_has(r, f) && !list_has(s, f) && !list_has(c, f))
                add_unique(after, n);
            json_decref(r);
            json_decref(s);
            json_decref(c);
        }
    }
    json_decref(required);
    json_decref(mine_setup);
    json_decref(mine_cleanup);
    if (json_array_size(after)) {
        json_object_set(o, "after", after);
        if (anyway)
            json_object_set_new(o, "run_anyway", json_true());
    }
    json_decref(after);
    json_t *locks = prop_list(t, "RESOURCE_LOCK");
    if (json_array_size(locks))
        json_object_set(o, "locks", locks);
    json_decref(locks);
    if (prop_true(t, "RUN_SERIAL"))
        json_object_set_new(o, "exclusive", json_true());
    return o;
}

/* The drover tests of the CTest suite in a.build_dir (new reference), or NULL after
 * printing why. */
static json_t *read_suite(const ctest_args *a)
{
    const char *argv[8 + 4 * 2 * DRV_OPT_LIST_MAX];
    size_t n = 0;
    argv[n++] = a->ctest ? a->ctest : "ctest";
    argv[n++] = "--show-only=json-v1";
    const struct {
        const drv_opt_list *l;
        const char *flag;
    } filters[] = {
        {&a->label, "-L"}, {&a->label_exclude, "-LE"}, {&a->regex, "-R"}, {&a->exclude, "-E"}};
    for (size_t f = 0; f < 4; f++)
        for (size_t i = 0; i < filters[f].l->n; i++) {
            argv[n++] = filters[f].flag;
            argv[n++] = filters[f].l->v[i];
        }
    argv[n] = NULL;
    char *out = NULL;
    size_t len = 0;
    int status = 0;
    drv_error err = {{0}};
    if (drv_cli_capture((char *const *)argv, a->build_dir, &out, &len, &status, &err) < 0) {
        fprintf(stderr, "drover ctest: %s\n", err.msg);
        return NULL;
    }
    json_error_t je;
    json_t *root = status == 0 ? json_loadb(out, len, 0, &je) : NULL;
    if (!root) {
        if (status != 0)
            fprintf(stderr, "drover ctest: %s --show-only=json-v1 in %s exited %d\n", argv[0],
                    a->build_dir, status);
        else
            fprintf(stderr, "drover ctest: %s --show-only=json-v1 in %s: not JSON: %s (line %d)\n",
                    argv[0], a->build_dir, je.text, je.line);
        free(out);
        return NULL;
    }
    free(out);
    const json_t *tests = json_object_get(root, "tests");
    if (!json_is_array(tests)) {
        fprintf(stderr, "drover ctest: ctest's answer has no \"tests\" array\n");
        json_decref(root);
        return NULL;
    }
    char self[4096];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) {
        fprintf(stderr, "drover ctest: cannot find this program's path: %s\n", strerror(errno));
        json_decref(root);
        return NULL;
    }
    self[k] = '\0';
    json_t *suite = json_array();
    for (size_t i = 0; i < json_array_size(tests); i++)
        json_array_append_new(suite, convert(json_array_get(tests, i), tests, self));
    json_decref(root);
    return suite;
}

int drv_cmd_ctest(int argc, char **argv)
{
    ctest_args a = {0};
    drv_cli_conn conn = {0};
    int rest;
    int code = drv_opt_parse("ctest", ctest_opts, N_CTEST_OPTS, &a, &conn, argc, argv, &rest);
    if (code >= 0)
        return code;
    if (rest < argc) {
        fprintf(stderr, "drover ctest: unexpected argument \"%s\" (see drover ctest --help)\n",
                argv[rest]);
        return DRV_EXIT_USAGE;
    }
    if (!a.build_dir) {
        fprintf(stderr, "drover ctest: --build-dir DIR is required\n");
        return DRV_EXIT_USAGE;
    }
    json_t *suite = read_suite(&a);
    if (!suite)
        return DRV_EXIT_INFRA;
    if (json_array_size(suite) == 0) {
        fprintf(stderr, "drover ctest: no tests in %s (with these filters)\n", a.build_dir);
        json_decref(suite);
        return DRV_EXIT_USAGE;
    }
    for (size_t i = 0; a.rerun_failures && i < json_array_size(suite); i++)
        json_object_set_new(json_array_get(suite, i), "reruns",
                            json_integer((json_int_t)a.rerun_failures));
    if (a.jobs) { /* one counted lock of N slots, named for this invocation alone */
        char host[64] = "", lock[160];
        gethostname(host, sizeof host - 1);
        snprintf(lock, sizeof lock, "drover-ctest-j:%s:%ld:%lld#%llu", host, (long)getpid(),
                 (long long)time(NULL), (unsigned long long)a.jobs);
        for (size_t i = 0; i < json_array_size(suite); i++) {
            json_t *t = json_array_get(suite, i);
            json_t *locks = json_object_get(t, "locks");
            if (!json_is_array(locks)) {
                locks = json_array();
                json_object_set_new(t, "locks", locks);
            }
            json_array_append_new(locks, json_string(lock));
        }
    }
    char *body = json_dumps(suite, JSON_COMPACT);
    json_decref(suite);
    if (a.dry_run) {
        printf("%s\n", body);
        free(body);
        return DRV_EXIT_OK;
    }
    drv_client *c = drv_cli_connect(&conn, "ctest");
    if (!c) {
        free(body);
        return DRV_EXIT_USAGE;
    }
    drv_submit_result r;
    drv_error err = {{0}};
    if (drv_client_submit(c, body, strlen(body), a.build_dir, a.run, &r, &err) < 0) {
        fprintf(stderr, "drover ctest: %s\n", err.msg);
        code = drv_cli_request_failure_code(c);
    } else {
        printf("submitted %zu test%s as run %llu%s%s%s\n", r.count, r.count == 1 ? "" : "s",
               (unsigned long long)r.run_id, a.run ? " (" : "", a.run ? a.run : "",
               a.run ? ")" : "");
        fflush(stdout);
        code = a.verbose ? drv_cli_follow_run(c, "ctest", r.run_id, a.wait_timeout) : DRV_EXIT_OK;
        if (code == DRV_EXIT_OK) /* the summary (at once when followed to the end) */
            code =
                drv_cli_wait_run(c, "ctest", r.run_id, a.wait_timeout, a.quiet || a.verbose, false);
        if (a.junit && drv_cli_write_reports(c, "ctest", r.run_id, a.junit, NULL) < 0 &&
            code == DRV_EXIT_OK)
            code = DRV_EXIT_FAILURE;
    }
    free(body);
    drv_client_close(c);
    return code;
}
