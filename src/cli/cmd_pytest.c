/* cmd_pytest.c - `drover pytest`: a pytest suite run as batches on the fleet, each test
 * keeping its own outcome.
 *
 *   drover pytest [--by test|file|auto] [--batch-size N] [--rerun-failures N] [--run NAME]
 *                 [--junit FILE] [-v] [options] [--] [PYTEST ARGS...]
 *
 * 1. Collects node ids with `python3 -m pytest --collect-only -q PYTEST ARGS` here.
 * 2. Submits batches (one drover test each, naming its node ids in "members"): several
 *    node ids in one interpreter, so the start of Python and pytest is paid once per
 *    batch, not per test. --by test: one id per batch; file: one file per batch; auto
 *    (default): with no durations known, FIRST_RUN_PER_SLOT batches per connected slot
 *    of equal test counts, whole files where they fit (without the slots: a file per
 *    batch, files of more than --batch-size tests split); once durations are known (the
 *    coordinator's, learned per member test: POST /api/v1/predictions; else the local
 *    .drover-pytest-durations.json written after each auto run, like pytest-split's),
 *    tests longest first dealt into BATCHES_PER_SLOT (--batches-per-slot) batches per
 *    slot of equal predicted run on that slot's worker speed (or, with --batch-seconds,
 *    batches of about that many seconds), each batch's priority growing with its length
 *    so the long ones start first.
 * 3. Each batch runs pytest in-process with a small plugin that prints one line per test
 *    as it starts and as it ends: "@@drover@@ start ID" and "@@drover@@ OUTCOME SECONDS
 *    ID<TAB>MESSAGE" (OUTCOME: passed failed error skipped xfailed xpassed). The
 *    coordinator reads them from the batch's output and stores one result per member
 *    test (docs/api.md, "Batches"): its history, flakiness and learned duration are its
 *    own. This command follows the run's rows as they come in (-v prints each test's
 *    line then). A batch that crashed leaves the test that was running an error
 *    (recorded by the coordinator), and the tests never started are submitted again, in
 *    the same run.
 * 4. --rerun-failures N submits each failed test again, alone, up to N times, in the same
 *    run: its result is one more attempt of the same test, so one that fails and then
 *    passes is flaky (counted, and a pass in the exit code).
 * Exit 0 when no test failed or errored, 1 otherwise, 2 on a wrong command line, 3 when
 * pytest or the coordinator cannot be used. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "client/client.h"
#include "protocol/protocol.h"

#define DEFAULT_PYTHON     "/usr/bin/python3"
#define ROUNDS_MAX         3            /* batches of unfinished tests after a crash */
#define BATCHES_PER_SLOT   1.0          /* auto, durations known: batches per slot */
#define BATCH_S_MIN        0.5          /* auto: the shortest batch target (s) */
#define FIRST_RUN_PER_SLOT 4.0          /* auto, nothing known: batches per slot, of equal counts */
#define UNKNOWN_S          0.05         /* auto: a test never measured, when none was (s) */
#define TAIL_BUDGET        (48u * 1024) /* of the 64 KiB output tail: the members' end lines */
#define LINE_BYTES         64u /* an end line besides its node id: outcome, seconds, message */

typedef struct pytest_args {
    const char *by, *run, *junit, *python, *durations;
    double batch_s, per_slot;
    uint64_t batch_size, rerun_failures;
    size_t n_batches; /* auto: this many batches, balanced (from the slots); 0: first fit */
    double *speed;    /* auto: each batch's worker slot speed (n_batches of them); NULL: 1 */
    bool verbose, quiet, dry_run;
    double wait_timeout;
} pytest_args;

#define P(f) offsetof(pytest_args, f)
static const drv_opt pytest_opts[] = {
    {"--by", NULL, DRV_OPT_STRING, P(by), 0, 0, "test|file|auto",
     "how tests are put in batches (default auto)", NULL},
    {"--batch-size", NULL, DRV_OPT_UINT, P(batch_size), 1, 100000, "N",
     "most tests in one batch (default: batches sized by the slots and predictions; "
     "without the slots, 50)",
     NULL},
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
    {"--batches-per-slot", NULL, DRV_OPT_DOUBLE, P(per_slot), 0.1, 100, "X",
     "auto, durations known: X batches per connected slot, balanced (default 1)", NULL},
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
    "        msg = ' '.join(msg.split())[:300].encode('utf-8', 'backslashreplace').decode()\n"
    "        d = self.res.get(report.nodeid)\n"
    "        if d and d[0] in ('failed', 'error'): return\n"
    "        line = '%s %.6f %s\\t%s' % (o, report.duration, report.nodeid, msg)\n"
    "        self.res[report.nodeid] = (o, line)\n"
    "        out(line)\n"
    "    def pytest_unconfigure(self, config):\n"
    "        sys.__stdout__.write(''.join('\\n@@drover@@ ' + v[1] for v in self.res.values()) +"
    " '\\n'); sys.__stdout__.flush()\n"
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
    uint64_t task_id; /* its result in the coordinator (a member test); 0: none yet */
    bool shown;       /* its line was printed (-v) */
    uint32_t want;    /* the attempt whose result is awaited (a rerun: the next one) */
    uint32_t in_file; /* how many collected tests its file has */
    uint32_t fails;   /* failed runs before the last (flaky when it then passed) */
    char *fail_msg;   /* the message of the last of those (owned; NULL when none) */
} pyresult;

typedef struct suite {
    pyresult *t;
    size_t n;
    /* No PYTEST ARGS: a file's collected tests are all its tests, so a batch holding all
     * of them names the file (pytest resolves each node id given, ~0.7 ms apiece). */
    bool whole_files;
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

static int by_file(const void *x, const void *y)
{
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;
    size_t la = file_len(a), lb = file_len(b);
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

/* Sets each test's in_file, and whether whole files may be named (no PYTEST ARGS). */
static void count_files(suite *s, bool no_args)
{
    s->whole_files = no_args;
    const char **ids = drv_xmalloc((s->n ? s->n : 1) * sizeof *ids);
    for (size_t i = 0; i < s->n; i++)
        ids[i] = s->t[i].id;
    qsort(ids, s->n, sizeof *ids, by_file);
    for (size_t i = 0; i < s->n;) {
        size_t j = i + 1;
        while (j < s->n && by_file(&ids[i], &ids[j]) == 0)
            j++;
        for (size_t k = 0; k < s->n; k++) /* its count on each of its tests: tests x files */
            if (file_len(s->t[k].id) == file_len(ids[i]) &&
                memcmp(s->t[k].id, ids[i], file_len(ids[i])) == 0)
                s->t[k].in_file = (uint32_t)(j - i);
        i = j;
    }
    free(ids);
}

/* Appends a batch of the tests idx[0..n) to arr. */
static void add_batch(json_t *arr, const pytest_args *a, const suite *s, const size_t *idx,
                      size_t n, const char *cwd, int round)
{
    json_t *argv = json_array();
    json_array_append_new(argv, json_string(a->python ? a->python : DEFAULT_PYTHON));
    json_array_append_new(argv, json_string("-c"));
    json_array_append_new(argv, json_string(plugin_code));
    bool *whole = drv_xcalloc(n, sizeof *whole);
    for (size_t i = 0; i < n; i++) {
        const char *id = s->t[idx[i]].id;
        size_t fl = file_len(id);
        size_t j = 0; /* the first test of its file in this batch */
        while (j < i && !(file_len(s->t[idx[j]].id) == fl && memcmp(s->t[idx[j]].id, id, fl) == 0))
            j++;
        if (j < i) {
            if (!whole[j])
                json_array_append_new(argv, json_string(id));
            continue;
        }
        uint32_t same = 0;
        for (size_t k = i; k < n && s->whole_files; k++)
            same += file_len(s->t[idx[k]].id) == fl && memcmp(s->t[idx[k]].id, id, fl) == 0;
        whole[i] = s->whole_files && same == s->t[idx[i]].in_file;
        json_array_append_new(argv, whole[i] ? json_stringn(id, fl) : json_string(id));
    }
    free(whole);
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
    json_t *members = json_array(); /* each gets its own result in the coordinator */
    for (size_t i = 0; i < n; i++)
        json_array_append_new(members, json_string(s->t[idx[i]].id));
    json_object_set_new(o, "members", members);
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

/* Gives batch o the priority of its predicted run: longer ones first. */
static void set_length_priority(json_t *arr, double sum)
{
    json_t *o = json_array_get(arr, json_array_size(arr) - 1);
    int prio = 100 + (int)(sum * 10 < 900 ? sum * 10 : 900);
    json_object_set_new(o, "priority", json_integer(prio));
}

/* The pieces (chunks of order[], longest first) dealt into a->n_batches batches, each
 * to the batch with the least predicted run so far (longest processing time first):
 * batches of equal predicted runs, one round of interpreters per slot. */
static json_t *lpt_batches(const pytest_args *a, const suite *s, const by_pred *order,
                           const chunk *chunks, size_t n_chunks, size_t n, const char *cwd,
                           int round)
{
    size_t nb = a->n_batches < n_chunks ? a->n_batches : n_chunks;
    double *sum = drv_xcalloc(nb ? nb : 1, sizeof *sum);
    size_t *bin = drv_xmalloc((n_chunks ? n_chunks : 1) * sizeof *bin);
    /* Each piece to the batch that would end first with it, on its slot's speed: a
     * faster worker's slots get longer batches (the balancer places the longest first,
     * on the fastest). */
    for (size_t c = 0; c < n_chunks; c++) {
        size_t best = 0;
        double best_end = 0;
        for (size_t b = 0; b < nb; b++) {
            double v = a->speed && a->speed[b] > 0 ? a->speed[b] : 1;
            double end = (sum[b] + chunks[c].sum) / v;
            if (b == 0 || end < best_end) {
                best = b;
                best_end = end;
            }
        }
        bin[c] = best;
        sum[best] += chunks[c].sum;
    }
    json_t *arr = json_array();
    size_t *batch = drv_xmalloc(n * sizeof *batch);
    for (size_t b = 0; b < nb; b++) {
        size_t m = 0;
        for (size_t c = 0; c < n_chunks; c++)
            for (size_t k = 0; bin[c] == b && k < chunks[c].count; k++)
                batch[m++] = order[chunks[c].first + k].i;
        if (m == 0)
            continue;
        add_batch(arr, a, s, batch, m, cwd, round);
        set_length_priority(arr, sum[b]);
    }
    free(batch);
    free(bin);
    free(sum);
    return arr;
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
    double known = 0, mean = UNKNOWN_S;
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
    if (a->n_batches > 0) {
        json_t *arr = lpt_batches(a, s, order, chunks, n_chunks, n, cwd, round);
        free(chunks);
        free(order);
        return arr;
    }
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
        set_length_priority(arr, sum);
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
        if (any || a->n_batches)
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

/* The outcome words a member's result carries (its reason: "OUTCOME" or "OUTCOME: why";
 * docs/api.md, "Batches"). */
static const char *const kinds[] = {"passed",  "failed",  "error", "skipped",
                                    "xfailed", "xpassed", NULL};

/* Index of the test named name in the suite, or -1 (a hash of the ids, built once). */
typedef struct name_index {
    uint32_t *slot; /* test index + 1; 0: empty */
    size_t n_slots;
} name_index;

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void index_build(name_index *x, const suite *s)
{
    x->n_slots = 2 * s->n + 1;
    x->slot = drv_xcalloc(x->n_slots, sizeof *x->slot);
    for (size_t i = 0; i < s->n; i++) {
        size_t k = (size_t)(name_hash(s->t[i].id) % x->n_slots);
        while (x->slot[k])
            k = (k + 1) % x->n_slots;
        x->slot[k] = (uint32_t)i + 1;
    }
}

static long index_find(const name_index *x, const suite *s, const char *name)
{
    for (size_t k = (size_t)(name_hash(name) % x->n_slots); x->slot[k]; k = (k + 1) % x->n_slots)
        if (strcmp(s->t[x->slot[k] - 1].id, name) == 0)
            return (long)x->slot[k] - 1;
    return -1;
}

/* Prints test r's line: "passed   ID (0.012 s, on w1)" and its message. */
static void print_result(const pyresult *r)
{
    bool is_flaky = strcmp(r->outcome, "passed") == 0 && r->fails > 0;
    printf("%-8s %s (%.3f s%s%s)%s%s%s\n", is_flaky ? "FLAKY" : r->outcome, r->id, r->duration,
           r->worker ? ", on " : "", r->worker ? r->worker : "",
           r->message && *r->message ? ": " : "", r->message ? r->message : "",
           is_flaky ? " (failed first)" : "");
    fflush(stdout);
}

/* Takes one row of the run's tests: a member test's result (it has "batch") updates its
 * test; batches themselves are skipped. */
static void take_row(suite *s, const name_index *x, const json_t *row, bool verbose)
{
    const char *name = drv_api_string(row, "name");
    if (drv_api_int(row, "batch", 0) <= 0 || !name)
        return;
    long i = index_find(x, s, name);
    if (i < 0)
        return;
    pyresult *r = &s->t[i];
    const char *reason = drv_api_string(row, "reason");
    reason = reason ? reason : "";
    size_t k = 0;
    while (kinds[k] && !(strncmp(reason, kinds[k], strlen(kinds[k])) == 0 &&
                         (reason[strlen(kinds[k])] == '\0' || reason[strlen(kinds[k])] == ':')))
        k++;
    if (!kinds[k])
        return; /* not final yet */
    uint32_t attempts = (uint32_t)drv_api_int(row, "attempts", 1);
    if (attempts < r->want)
        return; /* the result before its rerun */
    snprintf(r->outcome, sizeof r->outcome, "%s", kinds[k]);
    r->fails = attempts > 1 ? attempts - 1 : 0;
    r->task_id = (uint64_t)drv_api_int(row, "id", 0);
    r->duration = drv_api_number(row, "duration_s", 0);
    free(r->message);
    const char *msg = reason + strlen(kinds[k]);
    r->message = drv_xstrdup(*msg == ':' ? msg + 2 - (msg[1] != ' ') : "");
    free(r->worker);
    const char *w = drv_api_string(row, "worker");
    r->worker = w ? drv_xstrdup(w) : NULL;
    if (verbose && !r->shown) {
        print_result(r);
        r->shown = true;
    }
}

/* Reads the run's rows from *seen on (in id order: a member's result is a new row, added
 * as its batch ends) and takes them; *seen grows. Returns 0, or -1 with err. */
static int take_new_rows(drv_client *c, uint64_t run_id, size_t *seen, suite *s,
                         const name_index *x, bool verbose, drv_error *err)
{
    for (;;) {
        char path[128];
        snprintf(path, sizeof path, "/api/v1/tests?run=%llu&offset=%zu&limit=1000",
                 (unsigned long long)run_id, *seen);
        json_t *ans = drv_client_get(c, path, err);
        if (!ans)
            return -1;
        json_t *rows = json_object_get(ans, "tests");
        size_t n = json_array_size(rows), i;
        json_t *row;
        json_array_foreach(rows, i, row)
        {
            const char *state = drv_api_string(row, "state");
            bool final = state && strcmp(state, "queued") != 0 && strcmp(state, "assigned") != 0 &&
                         strcmp(state, "running") != 0;
            if (drv_api_int(row, "batch", 0) > 0 && !final)
                break; /* written, not yet final: read again next time */
            take_row(s, x, row, verbose);
            (*seen)++;
        }
        json_decref(ans);
        if (n < 1000 || i < n)
            return 0;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Waits until run run_id is done, with a progress line on stderr unless --quiet (or -v,
 * which prints each test's line as its result comes in instead). Returns DRV_EXIT_OK,
 * DRV_EXIT_TIMEOUT or DRV_EXIT_INFRA after saying why. */
static int wait_done(drv_client *c, uint64_t run_id, const pytest_args *a, suite *s,
                     const name_index *x, bool reread)
{
    size_t seen = 0;
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
        if (reread) /* a rerun adds an attempt to its test's row: read them all again */
            seen = 0;
        double t = now_s() - start;
        bool progress = !a->quiet && !a->verbose && (rc.done || t - last >= 2);
        /* Without -v the rows are read for a progress line and at the end: fewer
         * requests to the coordinator's loop. */
        if ((a->verbose || progress || rc.done) &&
            take_new_rows(c, run_id, &seen, s, x, a->verbose, &err) < 0) {
            fprintf(stderr, "drover pytest: %s\n", err.msg);
            return DRV_EXIT_INFRA;
        }
        if (progress) { /* the tests' own counts: the run's also count the batches */
            size_t done = 0, bad = 0;
            for (size_t i = 0; i < s->n; i++) {
                done += s->t[i].outcome[0] != '\0';
                bad +=
                    strcmp(s->t[i].outcome, "failed") == 0 || strcmp(s->t[i].outcome, "error") == 0;
            }
            char span[32];
            drv_cli_format_span(t, span, sizeof span);
            fprintf(stderr, "run %llu: %zu/%zu tests done, %zu failed, %llu batch%s running, %s\n",
                    (unsigned long long)run_id, done, s->n, bad,
                    (unsigned long long)rc.by_state[DRV_TASK_RUNNING],
                    rc.by_state[DRV_TASK_RUNNING] == 1 ? "" : "es", span);
            last = t;
        }
        if (rc.done)
            return DRV_EXIT_OK;
        if (a->wait_timeout > 0 && t >= a->wait_timeout) {
            fprintf(stderr, "drover pytest: run %llu not done after %.0f s\n",
                    (unsigned long long)run_id, a->wait_timeout);
            return DRV_EXIT_TIMEOUT;
        }
        struct timespec ts = {0, (a->verbose ? 100 : 50) * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Submits batches (the first round makes the run, *run_id 0; later rounds join it),
 * waits, and takes every member test's result from the coordinator. Returns the exit
 * code of the wait part (DRV_EXIT_OK even when tests failed), or another after printing
 * why. */
static int run_batches(drv_client *c, const pytest_args *a, json_t *batches, suite *s,
                       const name_index *x, uint64_t *run_id, bool reread)
{
    char *body = json_dumps(batches, JSON_COMPACT);
    drv_error err = {{0}};
    int rc;
    size_t count = json_array_size(batches);
    if (*run_id == 0) {
        drv_submit_result r;
        rc = drv_client_submit(c, body, strlen(body), "pytest batches", a->run, &r, &err);
        *run_id = r.run_id;
    } else {
        char path[96];
        json_t *ans = NULL;
        snprintf(path, sizeof path, "/api/v1/tests?run_id=%llu", (unsigned long long)*run_id);
        rc = drv_client_request(c, "POST", path, body, strlen(body), &ans, &err);
        json_decref(ans);
    }
    free(body);
    if (rc < 0) {
        fprintf(stderr, "drover pytest: %s\n", err.msg);
        return drv_cli_request_failure_code(c);
    }
    fprintf(stderr, "submitted %zu batch%s as run %llu\n", count, count == 1 ? "" : "es",
            (unsigned long long)*run_id);
    return wait_done(c, *run_id, a, s, x, reread);
}

/* Asks the coordinator what it learned of the tests (POST /api/v1/predictions): sets
 * each test's prediction it knows. Returns the slots of the connected workers (0 when
 * unknown), and in *speeds (owned by the caller) each slot's worker speed, per_slot
 * times each. A coordinator that cannot answer leaves the predictions as they were. */
static uint64_t coordinator_predictions(drv_client *c, suite *s, double per_slot, double **speeds,
                                        size_t *n_speeds)
{
    json_t *names = json_array();
    for (size_t i = 0; i < s->n; i++)
        json_array_append_new(names, json_string(s->t[i].id));
    json_t *body = json_pack("{s:o}", "names", names);
    drv_error err = {{0}};
    json_t *ans = drv_client_post(c, "/api/v1/predictions", body, &err);
    json_decref(body);
    if (!ans)
        return 0;
    json_t *pred = json_object_get(ans, "predicted_s");
    for (size_t i = 0; i < s->n && i < json_array_size(pred); i++) {
        const json_t *v = json_array_get(pred, i);
        if (json_is_number(v) && json_number_value(v) >= 0)
            s->t[i].predicted = json_number_value(v);
    }
    uint64_t slots = (uint64_t)drv_api_int(ans, "slots", 0);
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(ans, "workers"), i, w)
    {
        double v = drv_api_number(w, "speed", 1);
        size_t k = (size_t)((double)drv_api_int(w, "slots", 0) * per_slot + 0.5);
        *speeds = drv_xrealloc(*speeds, (*n_speeds + k + 1) * sizeof **speeds);
        for (size_t j = 0; j < k; j++)
            (*speeds)[(*n_speeds)++] = v > 0 ? v : 1;
    }
    json_decref(ans);
    return slots;
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

/* A flaky test's failed attempts' messages, for JUnit's flakyFailure: the first
 * attempt's reason from the coordinator (one request per flaky test). */
static void fetch_fail_messages(drv_client *c, suite *s)
{
    for (size_t i = 0; i < s->n; i++) {
        pyresult *r = &s->t[i];
        if (!r->fails || !r->task_id)
            continue;
        drv_error err = {{0}};
        json_t *full = drv_client_test(c, r->task_id, &err);
        json_t *first = json_array_get(json_object_get(full, "attempts"), 0);
        const char *tail = drv_api_string(first, "output_tail");
        free(r->fail_msg);
        r->fail_msg = tail ? drv_xstrdup(tail) : NULL;
        json_decref(full);
    }
}

int drv_cmd_pytest(int argc, char **argv)
{
    pytest_args a = {0};
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
    count_files(&s, rest == argc);
    if (s.n == 0) {
        fprintf(stderr, "drover pytest: pytest collected no tests\n");
        suite_free(&s);
        return DRV_EXIT_FAILURE;
    }
    load_durations(&a, &s);
    size_t *idx = drv_xmalloc(s.n * sizeof *idx);
    for (size_t i = 0; i < s.n; i++)
        idx[i] = i;
    drv_client *c = NULL;
    if (!a.dry_run) {
        c = drv_cli_connect(&conn, "pytest");
        if (!c) {
            free(idx);
            suite_free(&s);
            return DRV_EXIT_USAGE;
        }
        /* What the coordinator learned of each test wins over the local file; with the
         * fleet's slots known, a batch is about a BATCHES_PER_SLOT-th of a slot's share
         * (few interpreters, still balanced), unless --batch-seconds says. */
        double per = a.per_slot > 0 ? a.per_slot : BATCHES_PER_SLOT;
        size_t n_speeds = 0;
        uint64_t slots = coordinator_predictions(c, &s, per, &a.speed, &n_speeds);
        double total = 0;
        bool all = true, none = true;
        for (size_t i = 0; i < s.n; i++) {
            total += s.t[i].predicted > 0 ? s.t[i].predicted : 0;
            all &= s.t[i].predicted >= 0;
            none &= s.t[i].predicted < 0;
        }
        bool by_auto = !a.by || strcmp(a.by, "auto") == 0;
        if (by_auto && a.batch_s <= 0 && a.batch_size == 0 && slots > 0 && (all || none)) {
            /* Nothing known yet: FIRST_RUN_PER_SLOT batches per slot of equal test counts
             * (whole files where they fit), for balance against unknown long tests. */
            if (none)
                total = (double)s.n * UNKNOWN_S;
            a.n_batches = (size_t)((double)slots * (none ? FIRST_RUN_PER_SLOT : per) + 0.5);
            a.n_batches = a.n_batches ? a.n_batches : 1;
            /* The coordinator reads the members' lines from the batch's output tail
             * (64 KiB; the plugin repeats the end lines last): keep them within it. */
            size_t name_bytes = 0;
            for (size_t i = 0; i < s.n; i++)
                name_bytes += strlen(s.t[i].id);
            size_t most = TAIL_BUDGET / (name_bytes / s.n + LINE_BYTES);
            if (s.n / a.n_batches > most)
                a.n_batches = (s.n + most - 1) / most;
            a.batch_s = total / (double)a.n_batches;
            a.batch_size = DRV_MEMBERS_MAX;
        }
        if (n_speeds != a.n_batches) { /* batches not one per slot: sized alike */
            free(a.speed);
            a.speed = NULL;
        }
        if (a.batch_s > 0 && a.batch_s < BATCH_S_MIN)
            a.batch_s = BATCH_S_MIN;
    }
    if (a.batch_size == 0) {
        bool known = false;
        for (size_t i = 0; i < s.n && !known; i++)
            known = s.t[i].predicted >= 0;
        a.batch_size = known ? DRV_MEMBERS_MAX : 50;
    }
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
    fprintf(stderr, "collected %zu tests\n", s.n);
    name_index x;
    index_build(&x, &s);
    uint64_t run_id = 0;
    code = run_batches(c, &a, batches, &s, &x, &run_id, false);
    json_decref(batches);
    /* Tests of a crashed batch that never started run again (the one that was running
     * is an error, recorded by the coordinator). */
    for (int round = 1; code == DRV_EXIT_OK && round <= ROUNDS_MAX; round++) {
        size_t n = 0;
        for (size_t i = 0; i < s.n; i++)
            if (!s.t[i].outcome[0])
                idx[n++] = i;
        if (n == 0)
            break;
        fprintf(stderr, "%zu tests did not run (a batch crashed): submitting them again\n", n);
        batches = make_batches(&a, &s, idx, n, cwd, round);
        code = run_batches(c, &a, batches, &s, &x, &run_id, false);
        json_decref(batches);
    }
    /* Failed tests run again, alone, up to --rerun-failures times (in the same run: the
     * coordinator adds an attempt to the test, so failed-then-passed is flaky there). */
    for (uint64_t k = 1; code == DRV_EXIT_OK && k <= a.rerun_failures; k++) {
        size_t n = 0;
        for (size_t i = 0; i < s.n; i++)
            if (strcmp(s.t[i].outcome, "failed") == 0 || strcmp(s.t[i].outcome, "error") == 0) {
                idx[n++] = i;
                s.t[i].shown = false; /* its new result is shown again */
                s.t[i].want = s.t[i].fails + 2;
            }
        if (n == 0)
            break;
        fprintf(stderr, "running %zu failed test%s again (%llu of %llu)\n", n, n == 1 ? "" : "s",
                (unsigned long long)k, (unsigned long long)a.rerun_failures);
        pytest_args one = a;
        one.by = "test";
        batches = make_batches(&one, &s, idx, n, cwd, (int)k);
        code = run_batches(c, &a, batches, &s, &x, &run_id, true);
        json_decref(batches);
    }
    free(idx);
    free(x.slot);
    free(a.speed);
    if (code == DRV_EXIT_OK)
        fetch_fail_messages(c, &s);
    drv_client_close(c);
    if (code == DRV_EXIT_OK && (!a.by || strcmp(a.by, "auto") == 0))
        save_durations(&a, &s);
    if (code != DRV_EXIT_OK) {
        suite_free(&s);
        return code;
    }
    size_t count[7] = {0}, flaky = 0, failures = 0;
    for (size_t i = 0; i < s.n; i++) {
        pyresult *r = &s.t[i];
        size_t k = 0;
        while (kinds[k] && strcmp(kinds[k], r->outcome) != 0)
            k++;
        if (!kinds[k]) {
            snprintf(r->outcome, sizeof r->outcome, "error");
            free(r->message);
            r->message = drv_xstrdup("no result came back from its batch");
            k = 2;
        }
        count[k]++;
        flaky += k == 0 && r->fails > 0;
        failures += k == 1 || k == 2;
        if (a.verbose && !r->shown)
            print_result(r);
    }
    if (failures) { /* the failures again, together, with the worker that ran each */
        if (a.verbose)
            printf("failures:\n");
        for (size_t i = 0; i < s.n; i++)
            if (strcmp(s.t[i].outcome, "failed") == 0 || strcmp(s.t[i].outcome, "error") == 0)
                print_result(&s.t[i]);
    }
    printf("%zu tests: %zu passed, %zu failed, %zu errors, %zu skipped, %zu xfailed, %zu xpassed"
           "%s",
           s.n, count[0], count[1], count[2], count[3], count[4], count[5], flaky ? ", " : "");
    if (flaky)
        printf("%zu flaky", flaky);
    printf(" (run %llu)\n", (unsigned long long)run_id);
    if (a.junit && write_junit(a.junit, &s, run_id, a.run) < 0) {
        suite_free(&s);
        return DRV_EXIT_FAILURE;
    }
    suite_free(&s);
    return count[1] + count[2] ? DRV_EXIT_FAILURE : DRV_EXIT_OK;
}
