/* cmd_pytest.c - `drover pytest`: a pytest suite run as batches on the fleet, each test
 * keeping its own outcome.
 *
 *   drover pytest [--by test|file|auto] [--batch-size N] [--rerun-failures N] [--run NAME]
 *                 [--junit FILE] [-v] [options] [--] [PYTEST ARGS...]
 *
 * 1. Collects node ids with `python3 -m pytest --collect-only -q PYTEST ARGS` here.
 * 2. Submits batches (one drover test each): several node ids in one interpreter, so the
 *    start of Python and pytest is paid once per batch, not per test. --by test: one id
 *    per batch; file: one file per batch; auto (default): with no durations known, a
 *    file per batch (files of more than --batch-size tests split); once the durations
 *    file (.drover-pytest-durations.json, written after each auto run like
 *    pytest-split's) knows them, tests longest first packed into batches of about
 *    --batch-seconds of predicted run, each batch's priority growing with its length
 *    so the long ones start first.
 * 3. Each batch runs pytest in-process with a small plugin that prints one line per test
 *    as it starts and as it ends: "@@drover@@ start ID" and "@@drover@@ OUTCOME SECONDS
 *    ID<TAB>MESSAGE" (OUTCOME: passed failed error skipped xfailed xpassed). The lines
 *    come back in the batch's output (the worker's output tail), and this command splits
 *    them into one result per test. A batch that crashed (its process died) leaves the
 *    test that was running without a result: that test is an error ("crashed the
 *    pytest process"), and the tests never started are submitted again in new batches.
 * 4. --rerun-failures N submits each failed test again, alone, up to N times: one that
 *    fails and then passes is flaky (counted, and a pass in the exit code).
 * Exit 0 when no test failed or errored, 1 otherwise, 2 on a wrong command line, 3 when
 * pytest or the coordinator cannot be used. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "client/client.h"

#define DEFAULT_PYTHON "/usr/bin/python3"
#define ROUNDS_MAX     3 /* batches of unfinished tests after a crash */

typedef struct pytest_args {
    const char *by, *run, *junit, *python, *durations;
    double batch_s;
    uint64_t batch_size, rerun_failures;
    bool verbose, quiet, dry_run;
    double wait_timeout;
} pytest_args;

#define P(f) offsetof(pytest_args, f)
static const drv_opt pytest_opts[] = {
    {"--by", NULL, DRV_OPT_STRING, P(by), 0, 0, "test|file|auto",
     "how tests are put in batches (default auto)", NULL},
    {"--batch-size", NULL, DRV_OPT_UINT, P(batch_size), 1, 100000, "N",
     "most tests in one batch (default 50)", NULL},
    {"--rerun-failures", NULL, DRV_OPT_UINT, P(rerun_failures), 0, 100, "N",
     "run a failed test again up to N times; failed then passed is flaky", NULL},
    {"--run", NULL, DRV_OPT_STRING, P(run), 0, 0, "NAME", "name the run", NULL},
    {"--junit", NULL, DRV_OPT_STRING, P(junit), 0, 0, "FILE", "write a JUnit XML report", NULL},
    {"--verbose", "-v", DRV_OPT_FLAG, P(verbose), 0, 0, NULL, "a line per test", NULL},
    {"--quiet", NULL, DRV_OPT_FLAG, P(quiet), 0, 0, NULL, "no progress lines", NULL},
    {"--wait-timeout", NULL, DRV_OPT_DOUBLE, P(wait_timeout), 0.001, 1e9, "S",
     "stop waiting after S seconds", NULL},
    {"--batch-seconds", NULL, DRV_OPT_DOUBLE, P(batch_s), 0.01, 3600, "S",
     "auto: fill a batch up to S seconds of predicted run (default 2)", NULL},
    {"--durations", NULL, DRV_OPT_STRING, P(durations), 0, 0, "FILE",
     "auto: the tests' measured durations, read and then updated (default "
     ".drover-pytest-durations.json here)",
     NULL},
    {"--python", NULL, DRV_OPT_STRING, P(python), 0, 0, "PATH",
     "the Python that runs pytest (default " DEFAULT_PYTHON ")", NULL},
    {"--dry-run", NULL, DRV_OPT_FLAG, P(dry_run), 0, 0, NULL,
     "print the batches as drover JSON and submit nothing", NULL},
};
#define N_PYTEST_OPTS (sizeof pytest_opts / sizeof pytest_opts[0])

/* The batch program: pytest in-process with a plugin that reports each test. */
static const char plugin_code[] =
    "import sys, pytest\n"
    "def out(s):\n"
    "    sys.__stdout__.write('\\n@@drover@@ ' + s + '\\n'); sys.__stdout__.flush()\n"
    "class DroverReport:\n"
    "    def __init__(self): self.res = {}\n"
    "    def pytest_runtest_logstart(self, nodeid, location): out('start ' + nodeid)\n"
    "    def pytest_runtest_logreport(self, report):\n"
    "        xf = hasattr(report, 'wasxfail')\n"
    "        o = None\n"
    "        if report.when == 'call':\n"
    "            o = 'xpassed' if report.passed and xf else 'passed' if report.passed else\\\n"
    "                'xfailed' if report.skipped and xf else 'skipped' if report.skipped else "
    "'failed'\n"
    "        elif report.failed: o = 'error'\n"
    "        elif report.skipped and report.when == 'setup': o = 'xfailed' if xf else 'skipped'\n"
    "        if o is None: return\n"
    "        msg = ''\n"
    "        c = getattr(report.longrepr, 'reprcrash', None)\n"
    "        if c is not None: msg = c.message\n"
    "        elif isinstance(report.longrepr, tuple): msg = str(report.longrepr[2])\n"
    "        elif report.longrepr: msg = str(report.longrepr).strip().splitlines()[-1]\n"
    "        if xf and (o == 'xfailed' or not msg): msg = str(report.wasxfail)\n"
    "        msg = ' '.join(msg.split())[:300]\n"
    "        d = self.res.get(report.nodeid)\n"
    "        if d and d[0] in ('failed', 'error'): return\n"
    "        self.res[report.nodeid] = (o, report.duration)\n"
    "        out('%s %.6f %s\\t%s' % (o, report.duration, report.nodeid, msg))\n"
    "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '--tb=short', '-rN'] + sys.argv[1:],"
    " plugins=[DroverReport()]))\n";

void drv_cmd_pytest_usage(FILE *out)
{
    fprintf(out,
            "usage: drover pytest [options] [--] [PYTEST ARGS...]\n"
            "\n"
            "Collects the tests pytest would run with PYTEST ARGS (here, with --python), runs\n"
            "them in batches on the fleet (several tests per interpreter), and reports each\n"
            "test's outcome: passed, failed, error, skipped, xfailed, xpassed (and flaky).\n"
            "The batches run in this directory's path on the workers.\n"
            "\n");
    drv_opt_usage(out, pytest_opts, N_PYTEST_OPTS);
    fputc('\n', out);
    drv_opt_conn_usage(out);
    fprintf(out, "\n"
                 "Exits 0 when no test failed or errored, 1 when one did, 2 on a wrong command\n"
                 "line, 3 when pytest cannot collect or the coordinator cannot be used.\n");
}

/* One test's result. */
typedef struct pyresult {
    char *id;
    char outcome[16]; /* "" while unknown */
    double duration;
    double predicted; /* from the durations file; < 0 unknown */
    char *message;
    char *worker;
    bool started;
    uint32_t fails; /* failed runs before the last (flaky when it then passed) */
    char *fail_msg; /* the message of the last of those (owned; NULL when none) */
} pyresult;

typedef struct suite {
    pyresult *t;
    size_t n;
} suite;

static void suite_free(suite *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->t[i].id);
        free(s->t[i].message);
        free(s->t[i].worker);
        free(s->t[i].fail_msg);
    }
    free(s->t);
}

/* Index of the test with id, or -1. Linear: suites are thousands, batches few. */
static long find_test(const suite *s, const char *id, size_t len)
{
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->t[i].id) == len && memcmp(s->t[i].id, id, len) == 0)
            return (long)i;
    return -1;
}

/* Collects the node ids. Returns 0, or -1 after printing why. */
static int collect(const pytest_args *a, int argc, char **argv, int rest, suite *s)
{
    size_t n = 0;
    const char **cmd = drv_xcalloc((size_t)(argc - rest) + 8, sizeof *cmd);
    cmd[n++] = a->python ? a->python : DEFAULT_PYTHON;
    cmd[n++] = "-m";
    cmd[n++] = "pytest";
    cmd[n++] = "--collect-only";
    cmd[n++] = "-q";
    cmd[n++] = "-p";
    cmd[n++] = "no:cacheprovider";
    for (int i = rest; i < argc; i++)
        cmd[n++] = argv[i];
    cmd[n] = NULL;
    char *out = NULL;
    size_t len = 0;
    int status = 0;
    drv_error err = {{0}};
    int rc = drv_cli_capture((char *const *)cmd, NULL, &out, &len, &status, &err);
    free(cmd);
    if (rc < 0) {
        fprintf(stderr, "drover pytest: %s\n", err.msg);
        return -1;
    }
    if (status != 0 && status != 5) { /* 5: nothing collected */
        fprintf(stderr, "drover pytest: pytest --collect-only exited %d:\n%s", status, out);
        free(out);
        return -1;
    }
    size_t cap = 0;
    for (char *line = out; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (line[0] == '\0')
            break; /* the summary follows */
        if (strstr(line, "::")) {
            if (s->n == cap) {
                cap = cap ? cap * 2 : 256;
                s->t = drv_xrealloc(s->t, cap * sizeof *s->t);
            }
            memset(&s->t[s->n], 0, sizeof s->t[s->n]);
            s->t[s->n++].id = drv_xstrdup(line);
        }
        line = nl ? nl + 1 : NULL;
    }
    free(out);
    return 0;
}

/* The file part of a node id (up to the first "::"), length. */
static size_t file_len(const char *id)
{
    const char *c = strstr(id, "::");
    return c ? (size_t)(c - id) : strlen(id);
}

/* Appends a batch of the tests idx[0..n) to arr. */
static void add_batch(json_t *arr, const pytest_args *a, const suite *s, const size_t *idx,
                      size_t n, const char *cwd, int round)
{
    json_t *argv = json_array();
    json_array_append_new(argv, json_string(a->python ? a->python : DEFAULT_PYTHON));
    json_array_append_new(argv, json_string("-c"));
    json_array_append_new(argv, json_string(plugin_code));
    for (size_t i = 0; i < n; i++)
        json_array_append_new(argv, json_string(s->t[idx[i]].id));
    char name[512];
    const char *first = s->t[idx[0]].id;
    if (n == 1)
        snprintf(name, sizeof name, "%s", first);
    else
        snprintf(name, sizeof name, "%.*s [batch %zu, %zu tests]", (int)file_len(first), first,
                 json_array_size(arr) + 1, n);
    if (round > 0) {
        size_t l = strlen(name);
        snprintf(name + l, sizeof name - l, " (again %d)", round);
    }
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "argv", argv);
    json_object_set_new(o, "cwd", json_string(cwd));
    json_object_set_new(o, "test_type", json_string("unit"));
    json_object_set_new(o, "env", json_pack("{s:s}", "PYTHONDONTWRITEBYTECODE", "1"));
    json_array_append_new(arr, o);
}

typedef struct by_pred {
    size_t i;
    double p;
    const char *id; /* its file is id[0 .. file) */
    size_t file;
} by_pred;

/* By file, then longest first, then collection order. */
static int file_then_longest(const void *x, const void *y)
{
    const by_pred *a = x, *b = y;
    size_t l = a->file < b->file ? a->file : b->file;
    int c = memcmp(a->id, b->id, l);
    if (c != 0 || a->file != b->file)
        return c != 0 ? c : (a->file < b->file ? -1 : 1);
    if (a->p != b->p)
        return a->p > b->p ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

typedef struct chunk {
    size_t first, count; /* in the sorted order */
    double sum;
} chunk;

static int chunk_longest_first(const void *x, const void *y)
{
    const chunk *a = x, *b = y;
    if (a->sum != b->sum)
        return a->sum > b->sum ? -1 : 1;
    return a->first < b->first ? -1 : a->first > b->first;
}

/* --by auto with predictions: the tests of each file, longest first, packed first fit
 * into pieces of at most --batch-seconds of predicted run (a longer test alone) and
 * --batch-size tests, then those pieces packed first fit into batches the same way: a
 * batch holds a few files' tests (pytest collects the whole file of every node id it is
 * given, so a batch spread over every file would collect them all). The batches go
 * longest first, each with a priority that
 * grows with its predicted run, so the long ones start first. Tests never measured count
 * as the mean of those that were. */
static json_t *pack_batches(const pytest_args *a, const suite *s, size_t *idx, size_t n,
                            const char *cwd, int round)
{
    double known = 0, mean = 0.05;
    size_t n_known = 0;
    for (size_t i = 0; i < n; i++)
        if (s->t[idx[i]].predicted >= 0) {
            known += s->t[idx[i]].predicted;
            n_known++;
        }
    if (n_known)
        mean = known / (double)n_known;
    by_pred *order = drv_xmalloc(n * sizeof *order);
    for (size_t i = 0; i < n; i++) {
        const pyresult *r = &s->t[idx[i]];
        order[i] =
            (by_pred){idx[i], r->predicted >= 0 ? r->predicted : mean, r->id, file_len(r->id)};
    }
    qsort(order, n, sizeof *order, file_then_longest);
    double target = a->batch_s > 0 ? a->batch_s : 2.0;
    /* First fit within each file's range; the chosen tests are moved to the front of
     * what is left of the range, so a batch is a contiguous run of order[]. */
    chunk *chunks = drv_xmalloc(n * sizeof *chunks);
    size_t n_chunks = 0;
    for (size_t f = 0; f < n;) {
        size_t fe = f + 1;
        while (fe < n && order[fe].file == order[f].file &&
               memcmp(order[fe].id, order[f].id, order[f].file) == 0)
            fe++;
        for (size_t i = f; i < fe;) {
            size_t m = 1;
            double sum = order[i].p;
            for (size_t j = i + 1; j < fe && m < a->batch_size; j++)
                if (sum + order[j].p <= target) {
                    by_pred tmp = order[j];
                    memmove(&order[i + m + 1], &order[i + m], (j - i - m) * sizeof *order);
                    order[i + m] = tmp;
                    sum += tmp.p;
                    m++;
                }
            chunks[n_chunks++] = (chunk){i, m, sum};
            i += m;
        }
        f = fe;
    }
    qsort(chunks, n_chunks, sizeof *chunks, chunk_longest_first);
    /* Short files' chunks share a batch (first fit again): a few files per interpreter,
     * each collected once, instead of an interpreter per small file. */
    json_t *arr = json_array();
    size_t *batch = drv_xmalloc(n * sizeof *batch);
    bool *used = drv_xcalloc(n_chunks ? n_chunks : 1, sizeof *used);
    for (size_t c = 0; c < n_chunks; c++) {
        if (used[c])
            continue;
        size_t m = 0;
        double sum = 0;
        for (size_t d = c; d < n_chunks; d++) {
            if (used[d] ||
                (m > 0 && (sum + chunks[d].sum > target || m + chunks[d].count > a->batch_size)))
                continue;
            used[d] = true;
            for (size_t k = 0; k < chunks[d].count; k++)
                batch[m++] = order[chunks[d].first + k].i;
            sum += chunks[d].sum;
        }
        add_batch(arr, a, s, batch, m, cwd, round);
        json_t *o = json_array_get(arr, json_array_size(arr) - 1);
        int prio = 100 + (int)(sum * 10 < 900 ? sum * 10 : 900);
        json_object_set_new(o, "priority", json_integer(prio));
    }
    free(used);
    free(batch);
    free(chunks);
    free(order);
    return arr;
}

/* The batches of tests idx[0..n) (new JSON array). */
static json_t *make_batches(const pytest_args *a, const suite *s, size_t *idx, size_t n,
                            const char *cwd, int round)
{
    const char *by = a->by ? a->by : "auto";
    if (strcmp(by, "auto") == 0) {
        bool any = false;
        for (size_t i = 0; i < n && !any; i++)
            any = s->t[idx[i]].predicted >= 0;
        if (any)
            return pack_batches(a, s, idx, n, cwd, round);
    }
    json_t *arr = json_array();
    size_t max = strcmp(by, "test") == 0 ? 1 : strcmp(by, "file") == 0 ? SIZE_MAX : a->batch_size;
    size_t start = 0;
    while (start < n) {
        size_t end = start + 1;
        const char *f = s->t[idx[start]].id;
        size_t fl = file_len(f);
        while (end < n && end - start < max && file_len(s->t[idx[end]].id) == fl &&
               memcmp(s->t[idx[end]].id, f, fl) == 0)
            end++;
        add_batch(arr, a, s, idx + start, end - start, cwd, round);
        start = end;
    }
    return arr;
}

/* Reads the report lines of one batch's output into the suite. */
static void read_lines(suite *s, const char *text, const char *worker)
{
    static const char mark[] = "@@drover@@ ";
    for (const char *p = text ? strstr(text, mark) : NULL; p; p = strstr(p, mark)) {
        p += sizeof mark - 1;
        const char *eol = strchr(p, '\n');
        size_t l = eol ? (size_t)(eol - p) : strlen(p);
        if (l > 6 && strncmp(p, "start ", 6) == 0) {
            long i = find_test(s, p + 6, l - 6);
            if (i >= 0)
                s->t[i].started = true;
        } else {
            char outcome[16];
            double dur = 0;
            int used = 0;
            if (sscanf(p, "%15s %lf %n", outcome, &dur, &used) == 2 && used > 0 &&
                (size_t)used < l) {
                const char *id = p + used;
                const char *tab = memchr(id, '\t', l - (size_t)used);
                size_t idl = tab ? (size_t)(tab - id) : l - (size_t)used;
                long i = find_test(s, id, idl);
                if (i >= 0) {
                    pyresult *r = &s->t[i];
                    if (strcmp(r->outcome, "failed") == 0 || strcmp(r->outcome, "error") == 0) {
                        r->fails++; /* this is a rerun of a failed test */
                        free(r->fail_msg);
                        r->fail_msg = r->message;
                        r->message = NULL;
                    }
                    snprintf(r->outcome, sizeof r->outcome, "%s", outcome);
                    r->duration = dur;
                    free(r->message);
                    r->message = NULL;
                    if (tab) {
                        size_t ml = (size_t)(p + l - tab - 1);
                        r->message = drv_xmalloc(ml + 1);
                        memcpy(r->message, tab + 1, ml);
                        r->message[ml] = '\0';
                    }
                    free(r->worker);
                    r->worker = worker ? drv_xstrdup(worker) : NULL;
                }
            }
        }
        p += l;
    }
}

/* Waits until run run_id is done, with a progress line on stderr unless --quiet.
 * Returns DRV_EXIT_OK, DRV_EXIT_TIMEOUT or DRV_EXIT_INFRA after saying why. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int wait_done(drv_client *c, uint64_t run_id, const pytest_args *a)
{
    double start = now_s(), last = -1e9;
    for (;;) {
        drv_error err = {{0}};
        json_t *run = drv_client_run(c, run_id, &err);
        if (!run) {
            fprintf(stderr, "drover pytest: %s\n", err.msg);
            return DRV_EXIT_INFRA;
        }
        drv_run_counts rc;
        drv_run_counts_read(run, &rc);
        json_decref(run);
        double t = now_s() - start;
        if (!a->quiet && (rc.done || t - last >= 2)) {
            char line[256];
            drv_run_progress_format(run_id, &rc, t, line, sizeof line);
            fprintf(stderr, "%s\n", line);
            last = t;
        }
        if (rc.done)
            return DRV_EXIT_OK;
        if (a->wait_timeout > 0 && t >= a->wait_timeout) {
            fprintf(stderr, "drover pytest: run %llu not done after %.0f s\n",
                    (unsigned long long)run_id, a->wait_timeout);
            return DRV_EXIT_TIMEOUT;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Submits batches, waits, reads every batch's lines. Returns the exit code of the wait
 * part (DRV_EXIT_OK even when tests failed), or DRV_EXIT_INFRA after printing why. */
static int run_batches(drv_client *c, const pytest_args *a, json_t *batches, suite *s,
                       uint64_t *run_id)
{
    char *body = json_dumps(batches, JSON_COMPACT);
    drv_submit_result r;
    drv_error err = {{0}};
    int rc = drv_client_submit(c, body, strlen(body), "pytest batches", a->run, &r, &err);
    free(body);
    if (rc < 0) {
        fprintf(stderr, "drover pytest: %s\n", err.msg);
        return drv_cli_request_failure_code(c);
    }
    *run_id = r.run_id;
    fprintf(stderr, "submitted %zu batch%s as run %llu\n", r.count, r.count == 1 ? "" : "es",
            (unsigned long long)r.run_id);
    int code = wait_done(c, r.run_id, a);
    if (code != DRV_EXIT_OK)
        return code;
    json_t *tests = drv_client_run_tests(c, r.run_id, NULL, 0, &err);
    if (!tests) {
        fprintf(stderr, "drover pytest: %s\n", err.msg);
        return DRV_EXIT_INFRA;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tests, i, t)
    {
        json_t *full = drv_client_test(c, (uint64_t)drv_api_int(t, "id", 0), &err);
        if (!full) {
            fprintf(stderr, "drover pytest: %s\n", err.msg);
            json_decref(tests);
            return DRV_EXIT_INFRA;
        }
        read_lines(s, drv_test_output_tail(full, NULL), drv_api_string(full, "worker"));
        json_decref(full);
    }
    json_decref(tests);
    return DRV_EXIT_OK;
}

/* The durations file: {"NODE ID": seconds, ...}. */
static const char *durations_path(const pytest_args *a)
{
    return a->durations ? a->durations : ".drover-pytest-durations.json";
}

/* Sets each test's prediction from the durations file (none when it is missing). */
static void load_durations(const pytest_args *a, suite *s)
{
    for (size_t i = 0; i < s->n; i++)
        s->t[i].predicted = -1;
    json_error_t je;
    json_t *d = json_load_file(durations_path(a), 0, &je);
    if (!json_is_object(d)) {
        json_decref(d);
        return;
    }
    for (size_t i = 0; i < s->n; i++) {
        const json_t *v = json_object_get(d, s->t[i].id);
        if (json_is_number(v) && json_number_value(v) >= 0)
            s->t[i].predicted = json_number_value(v);
    }
    json_decref(d);
}

/* Writes what this run measured into the durations file (keeping other tests' entries),
 * through a temporary file renamed into place. Says so on failure; it is not an error. */
static void save_durations(const pytest_args *a, const suite *s)
{
    const char *path = durations_path(a);
    json_error_t je;
    json_t *d = json_load_file(path, 0, &je);
    if (!json_is_object(d)) {
        json_decref(d);
        d = json_object();
    }
    for (size_t i = 0; i < s->n; i++) {
        const pyresult *r = &s->t[i];
        if (r->outcome[0] && strcmp(r->outcome, "skipped") != 0 && r->duration >= 0)
            json_object_set_new(d, r->id, json_real(r->duration));
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (json_dump_file(d, tmp, JSON_COMPACT | JSON_SORT_KEYS) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr,
                "drover pytest: cannot write %s: %s (batches will not be sized by "
                "duration next time)\n",
                path, strerror(errno));
        remove(tmp);
    }
    json_decref(d);
}

/* A test as the JUnit writer reads it from the API. */
static json_t *test_json(const pyresult *r)
{
    const char *o = r->outcome;
    bool err = strcmp(o, "error") == 0;
    const char *state = strcmp(o, "passed") == 0 || strcmp(o, "xpassed") == 0 ? "passed"
                        : strcmp(o, "failed") == 0 || err                     ? "failed"
                                                                              : "skipped";
    json_t *t =
        json_pack("{s:s,s:s,s:f}", "name", r->id, "state", state, "duration_s", r->duration);
    if (r->worker)
        json_object_set_new(t, "worker", json_string(r->worker));
    json_object_set_new(t, "reason", json_string(r->message && *r->message ? r->message : o));
    json_t *at =
        json_pack("{s:i,s:s,s:b}", "attempt", 1, "state", "finished", "infra_failure", err);
    json_object_set_new(at, "output_tail", json_string(r->message ? r->message : ""));
    json_object_set_new(t, "attempts", json_pack("[o]", at));
    if (r->fails) { /* JUnit's flakyFailure / rerunFailure, one per failed run before */
        json_t *prior = json_array();
        for (uint32_t k = 0; k < r->fails; k++)
            json_array_append_new(prior, json_string(r->fail_msg ? r->fail_msg : "failed"));
        json_object_set_new(t, "rerun_failures", prior);
    }
    return t;
}

static int write_junit(const char *path, const suite *s, uint64_t run_id, const char *run_name)
{
    json_t *tests = json_array();
    for (size_t i = 0; i < s->n; i++)
        json_array_append_new(tests, test_json(&s->t[i]));
    json_t *run = json_pack("{s:I}", "id", (json_int_t)run_id);
    if (run_name)
        json_object_set_new(run, "name", json_string(run_name));
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    drv_error err = {{0}};
    int rc = f ? drv_report_junit(f, run, tests, &err) : -1;
    if (!f)
        fprintf(stderr, "drover pytest: %s: cannot create: %s\n", path, strerror(errno));
    else if (rc < 0)
        fprintf(stderr, "drover pytest: %s: %s\n", path, err.msg);
    if (f && f != stdout)
        fclose(f);
    json_decref(run);
    json_decref(tests);
    return rc;
}

int drv_cmd_pytest(int argc, char **argv)
{
    pytest_args a = {.batch_size = 50};
    drv_cli_conn conn = {0};
    int rest;
    int code = drv_opt_parse("pytest", pytest_opts, N_PYTEST_OPTS, &a, &conn, argc, argv, &rest);
    if (code >= 0)
        return code;
    if (a.by && strcmp(a.by, "test") != 0 && strcmp(a.by, "file") != 0 &&
        strcmp(a.by, "auto") != 0) {
        fprintf(stderr, "drover pytest: --by: expected test, file or auto, got \"%s\"\n", a.by);
        return DRV_EXIT_USAGE;
    }
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) {
        fprintf(stderr, "drover pytest: cannot tell the current directory: %s\n", strerror(errno));
        return DRV_EXIT_INFRA;
    }
    setenv("PYTHONDONTWRITEBYTECODE", "1", 1); /* collecting leaves no __pycache__ */
    suite s = {0};
    if (collect(&a, argc, argv, rest, &s) < 0) {
        suite_free(&s);
        return DRV_EXIT_INFRA;
    }
    if (s.n == 0) {
        fprintf(stderr, "drover pytest: pytest collected no tests\n");
        suite_free(&s);
        return DRV_EXIT_FAILURE;
    }
    load_durations(&a, &s);
    size_t *idx = drv_xmalloc(s.n * sizeof *idx);
    for (size_t i = 0; i < s.n; i++)
        idx[i] = i;
    json_t *batches = make_batches(&a, &s, idx, s.n, cwd, 0);
    if (a.dry_run) {
        char *text = json_dumps(batches, JSON_COMPACT);
        printf("%s\n", text);
        free(text);
        json_decref(batches);
        free(idx);
        suite_free(&s);
        return DRV_EXIT_OK;
    }
    drv_client *c = drv_cli_connect(&conn, "pytest");
    if (!c) {
        json_decref(batches);
        free(idx);
        suite_free(&s);
        return DRV_EXIT_USAGE;
    }
    fprintf(stderr, "collected %zu tests\n", s.n);
    uint64_t run_id = 0;
    code = run_batches(c, &a, batches, &s, &run_id);
    json_decref(batches);
    /* Crashed batches: the test that was running is an error; the rest runs again. */
    for (int round = 1; code == DRV_EXIT_OK && round <= ROUNDS_MAX; round++) {
        size_t n = 0;
        for (size_t i = 0; i < s.n; i++) {
            pyresult *r = &s.t[i];
            if (r->outcome[0])
                continue;
            if (r->started) {
                snprintf(r->outcome, sizeof r->outcome, "error");
                r->message = drv_xstrdup("crashed the pytest process (no result came back)");
            } else {
                idx[n++] = i;
            }
        }
        if (n == 0)
            break;
        fprintf(stderr, "%zu tests did not run (a batch crashed): submitting them again\n", n);
        batches = make_batches(&a, &s, idx, n, cwd, round);
        code = run_batches(c, &a, batches, &s, &run_id);
        json_decref(batches);
    }
    /* Failed tests run again, alone, up to --rerun-failures times. */
    for (uint64_t k = 1; code == DRV_EXIT_OK && k <= a.rerun_failures; k++) {
        size_t n = 0;
        for (size_t i = 0; i < s.n; i++)
            if (strcmp(s.t[i].outcome, "failed") == 0 || strcmp(s.t[i].outcome, "error") == 0)
                idx[n++] = i;
        if (n == 0)
            break;
        fprintf(stderr, "running %zu failed test%s again (%llu of %llu)\n", n, n == 1 ? "" : "s",
                (unsigned long long)k, (unsigned long long)a.rerun_failures);
        pytest_args one = a;
        one.by = "test";
        batches = make_batches(&one, &s, idx, n, cwd, (int)k);
        code = run_batches(c, &a, batches, &s, &run_id);
        json_decref(batches);
    }
    free(idx);
    drv_client_close(c);
    if (code == DRV_EXIT_OK && (!a.by || strcmp(a.by, "auto") == 0))
        save_durations(&a, &s);
    if (code != DRV_EXIT_OK) {
        suite_free(&s);
        return code;
    }
    static const char *const kinds[] = {"passed",  "failed",  "error", "skipped",
                                        "xfailed", "xpassed", NULL};
    size_t count[7] = {0}, flaky = 0, unknown = 0;
    for (size_t i = 0; i < s.n; i++) {
        pyresult *r = &s.t[i];
        size_t k = 0;
        while (kinds[k] && strcmp(kinds[k], r->outcome) != 0)
            k++;
        if (!kinds[k]) {
            unknown++;
            snprintf(r->outcome, sizeof r->outcome, "error");
            free(r->message);
            r->message = drv_xstrdup("no result came back from its batch");
            k = 2;
        }
        count[k]++;
        bool is_flaky = k == 0 && r->fails > 0;
        flaky += is_flaky;
        if (a.verbose || k == 1 || k == 2)
            printf("%-8s %s (%.3f s%s%s)%s%s%s\n", is_flaky ? "FLAKY" : r->outcome, r->id,
                   r->duration, r->worker ? ", on " : "", r->worker ? r->worker : "",
                   r->message && *r->message ? ": " : "", r->message ? r->message : "",
                   is_flaky ? " (failed first)" : "");
    }
    printf("%zu tests: %zu passed, %zu failed, %zu errors, %zu skipped, %zu xfailed, %zu xpassed"
           "%s",
           s.n, count[0], count[1], count[2], count[3], count[4], count[5], flaky ? ", " : "");
    if (flaky)
        printf("%zu flaky", flaky);
    printf("\n");
    (void)unknown;
    if (a.junit && write_junit(a.junit, &s, run_id, a.run) < 0) {
        suite_free(&s);
        return DRV_EXIT_FAILURE;
    }
    suite_free(&s);
    return count[1] + count[2] ? DRV_EXIT_FAILURE : DRV_EXIT_OK;
}
