/* test_traces.c - the trace readers on the real shared traces (counts, the values a
 * simulation depends on, placement constraints that can be met) and on small bad files
 * written to a temporary directory (every error names FILE:LINE, strict mode leaves the
 * workload unchanged, lenient mode skips and counts). The shared traces come from
 * $DRV_SHARED_DIR/traces (CTest sets it); tests that need them are skipped without. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "sim/trace_lines.h"
#include "sim/workload.h"

#define MAX_FILES 64

/* The temporary directory the bad files are written to; removed by the teardown. */
typedef struct fixture {
    char dir[256];
    char files[MAX_FILES][320];
    int n_files;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof fx->dir, "%s/drv-traces-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(fx->dir)) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    for (int i = 0; i < fx->n_files; i++)
        unlink(fx->files[i]);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* Writes text (n bytes) to dir/name, gzip-compressed when gz; returns the path (owned
 * by the fixture). */
static const char *write_file(fixture *fx, const char *name, const char *text, size_t n, bool gz)
{
    assert_true(fx->n_files < MAX_FILES);
    char *path = fx->files[fx->n_files++];
    char built[sizeof fx->files[0]];
    snprintf(built, sizeof built, "%s/%s", fx->dir, name);
    memcpy(path, built, sizeof built);
    if (gz) {
        gzFile g = gzopen(path, "wb9");
        assert_non_null(g);
        assert_int_equal(gzwrite(g, text, (unsigned)n), (int)n);
        assert_int_equal(gzclose(g), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(text, 1, n, f), n);
        assert_int_equal(fclose(f), 0);
    }
    return path;
}

static const char *write_text(fixture *fx, const char *name, const char *text)
{
    return write_file(fx, name, text, strlen(text), false);
}

/* Fills path with $DRV_SHARED_DIR/traces/name; false (and the test skipped by the
 * caller) when the variable is not set or the file is not there. */
static bool shared_trace(const char *name, char *path, size_t len)
{
    const char *dir = getenv("DRV_SHARED_DIR");
    if (!dir || !*dir)
        return false;
    snprintf(path, len, "%s/traces/%s", dir, name);
    return access(path, R_OK) == 0;
}

#define NEED_TRACE(name, path)                                                                     \
    do {                                                                                           \
        if (!shared_trace(name, path, sizeof path)) {                                              \
            print_message("skipped: shared trace %s not found (set DRV_SHARED_DIR)\n", name);      \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static double total_duration(const drv_workload *w)
{
    double s = 0;
    for (size_t i = 0; i < w->n_tests; i++)
        s += w->tests[i].duration_s;
    return s;
}

static const drv_sim_test *find_test(const drv_workload *w, const char *name)
{
    for (size_t i = 0; i < w->n_tests; i++) {
        if (strcmp(w->tests[i].name, name) == 0)
            return &w->tests[i];
    }
    fail_msg("no test named %s", name);
    return NULL;
}

static const drv_sim_worker *find_worker(const drv_workload *w, const char *name)
{
    for (size_t i = 0; i < w->n_workers; i++) {
        if (strcmp(w->workers[i].name, name) == 0)
            return &w->workers[i];
    }
    fail_msg("no worker named %s", name);
    return NULL;
}

static bool has_tag(const drv_workload *w, const drv_tagset *s, const char *tag)
{
    int id = drv_tag_lookup(w->tags, tag);
    return id >= 0 && drv_tagset_has(s, id);
}

/* How many tests no worker of the fleet can ever run. */
static size_t count_unrunnable(const drv_workload *w)
{
    size_t n = 0;
    for (size_t i = 0; i < w->n_tests; i++) {
        bool ok = false;
        for (size_t k = 0; k < w->n_workers && !ok; k++)
            ok = drv_requirements_met(&w->tests[i].req, &w->workers[k].caps);
        n += !ok;
    }
    return n;
}

/* ---- the real traces ---- */

static void test_nasa_swf(void **state)
{
    (void)state;
    char path[512];
    NEED_TRACE("NASA-iPSC-1993-3.1-cln.swf.gz", path);
    drv_workload w;
    drv_workload_init(&w);
    drv_trace_options opt = {0};
    drv_error err = {{0}};
    assert_int_equal(drv_trace_swf_read(path, NULL, &w, &opt, &err), 0);
    assert_int_equal(w.n_tests, 18239);
    assert_int_equal(opt.skipped, 0);
    assert_int_equal(w.n_workers, 0);
    double mean = total_duration(&w) / (double)w.n_tests;
    assert_true(mean > 764 && mean < 766); /* SOURCES.md: mean 765 s */
    assert_string_equal(w.source, "trace: NASA-iPSC-1993-3.1-cln.swf.gz");
    /* First line: "1 0 -1 1451 128 ..." */
    const drv_sim_test *t = &w.tests[0];
    assert_string_equal(t->name, "job-1");
    assert_int_equal(t->id, 0);
    assert_true(t->arrival_s == 0 && t->duration_s == 1451);
    assert_int_equal(t->req.cpu_cores, 128);
    assert_int_equal(t->priority, 100);
    assert_int_equal(t->max_retries, 2);
    assert_true(drv_tagset_empty(&t->req.all_of)); /* queue and partition are -1 */
    assert_true(find_test(&w, "job-59")->arrival_s == 26613);
    double max_run = 0, last_arrival = 0;
    for (size_t i = 0; i < w.n_tests; i++) {
        assert_true(w.tests[i].arrival_s >= last_arrival); /* the log is sorted */
        last_arrival = w.tests[i].arrival_s;
        max_run = fmax(max_run, w.tests[i].duration_s);
    }
    assert_true(max_run == 62643);
    drv_workload_free(&w);

    /* max_tests stops early. */
    drv_workload_init(&w);
    opt.max_tests = 100;
    assert_int_equal(drv_trace_swf_read(path, NULL, &w, &opt, &err), 0);
    assert_int_equal(w.n_tests, 100);
    drv_workload_free(&w);
}

static void test_metacentrum_swf(void **state)
{
    (void)state;
    char path[512], machines[512];
    NEED_TRACE("metacentrum-wagap-2013.swf.gz", path);
    NEED_TRACE("metacentrum-wagap-2013.swf.machines", machines);
    drv_workload w;
    drv_workload_init(&w);
    drv_trace_options opt = {0};
    drv_error err = {{0}};
    assert_int_equal(drv_trace_swf_read(path, machines, &w, &opt, &err), 0);
    /* 17,900 lines, jobs 4185 and 4199 (lines 4186 and 4200) have negative run times. */
    assert_int_equal(w.n_tests, 17898);
    assert_int_equal(opt.skipped, 2);
    assert_string_equal(opt.first_skip,
                        "metacentrum-wagap-2013.swf.gz:4186: run time -1359980917 is negative");
    assert_true(fabs(total_duration(&w) / (double)w.n_tests - 50132) < 1);

    /* The fleet: 20 zewura nodes of 80 cores, 48 zegox nodes of 12. */
    assert_int_equal(w.n_workers, 68);
    const drv_sim_worker *zw = find_worker(&w, "zewura-1");
    const drv_sim_worker *zg = find_worker(&w, "zegox-48");
    assert_string_equal(zw->kind, "zewura");
    assert_int_equal(zw->caps.cpu_cores, 80);
    assert_int_equal(zw->slots, 80);
    assert_int_equal(zw->caps.memory_mb, 529426432 / 1024);
    assert_true(zw->speed == 1.0f && zw->leave_at < 0);
    assert_int_equal(zg->caps.cpu_cores, 12);
    assert_true(has_tag(&w, &zw->caps.tags, "cl_zewura"));
    assert_false(has_tag(&w, &zw->caps.tags, "cl_zegox"));
    assert_true(has_tag(&w, &zg->caps.tags, "x86_64"));
    assert_true(has_tag(&w, &zg->caps.tags, "queue:q_1d"));
    assert_string_equal(w.workers[20].name, "zegox-1");

    /* Job 0: "1:ppn=64:x86_64:cl_zewura#excl" in q_1d, absolute submit time -> 0;
     * exclusive on a zewura node holds all 80 cores. */
    const drv_sim_test *t = find_test(&w, "job-0");
    assert_true(t->arrival_s == 0 && t->duration_s == 56011);
    assert_int_equal(t->req.cpu_cores, 80);
    assert_int_equal(t->req.memory_mb, 65536);
    assert_true(has_tag(&w, &t->req.all_of, "queue:q_1d"));
    assert_true(has_tag(&w, &t->req.all_of, "cl_zewura"));
    assert_true(drv_requirements_met(&t->req, &zw->caps));
    assert_false(drv_requirements_met(&t->req, &zg->caps));
    /* Job 1: "1:ppn=12" submitted 548 s after job 0. */
    t = find_test(&w, "job-1");
    assert_true(t->arrival_s == 548);
    assert_int_equal(t->req.cpu_cores, 12);

    /* "^zewura12.cerit-sc.cz": never on zewura-12, fine on zewura-11. */
    int host = drv_tag_lookup(w.tags, "host:zewura12");
    assert_true(host >= 0);
    size_t avoiding = 0;
    for (size_t i = 0; i < w.n_tests; i++) {
        if (!drv_tagset_has(&w.tests[i].req.none_of, host))
            continue;
        avoiding++;
        assert_false(drv_requirements_met(&w.tests[i].req, &find_worker(&w, "zewura-12")->caps));
    }
    assert_int_equal(avoiding,
                     79); /* 78 lines with ^zewura12.cerit-sc.cz, 1 with it and ^zewura17 */

    /* Every job ran on these nodes in reality, so every test fits some worker. */
    assert_int_equal(count_unrunnable(&w), 0);
    drv_workload_free(&w);
}

static void test_metacentrum_strict_refuses(void **state)
{
    (void)state;
    char path[512], machines[512];
    NEED_TRACE("metacentrum-wagap-2013.swf.gz", path);
    NEED_TRACE("metacentrum-wagap-2013.swf.machines", machines);
    drv_workload w;
    drv_workload_init(&w);
    drv_sim_test before = {.name = "already-there", .duration_s = 1};
    drv_workload_add_test(&w, &before);
    int tags = drv_tag_count(w.tags);
    drv_trace_options opt = {.strict = true};
    drv_error err = {{0}};
    assert_int_equal(drv_trace_swf_read(path, machines, &w, &opt, &err), -1);
    assert_string_equal(err.msg,
                        "metacentrum-wagap-2013.swf.gz:4186: run time -1359980917 is negative");
    assert_int_equal(w.n_tests, 1);
    assert_int_equal(w.n_workers, 0);
    assert_int_equal(drv_tag_count(w.tags), tags);
    assert_string_equal(w.source, "");
    /* The first 4,000 jobs are all good: a strict read of them succeeds. */
    opt.max_tests = 4000;
    assert_int_equal(drv_trace_swf_read(path, machines, &w, &opt, &err), 0);
    assert_int_equal(w.n_tests, 4001);
    drv_workload_free(&w);
}

static void test_knapsack_durations(void **state)
{
    (void)state;
    char path[512];
    NEED_TRACE("18F-identity-idp-knapsack_rspec_report.json", path);
    drv_workload w;
    drv_workload_init(&w);
    drv_trace_options opt = {0};
    drv_error err = {{0}};
    assert_int_equal(drv_trace_durations_read(path, &w, &opt, &err), 0);
    assert_int_equal(w.n_tests, 1122);
    assert_int_equal(opt.skipped, 0);
    assert_true(fabs(total_duration(&w) - 6919) < 1);
    /* In file order, all arriving at 0; the largest is the in-person IdV spec, 338 s. */
    assert_string_equal(w.tests[0].name, "spec/bin/aamva-test-cert_spec.rb");
    const drv_sim_test *big = find_test(&w, "spec/features/idv/in_person_spec.rb");
    for (size_t i = 0; i < w.n_tests; i++) {
        assert_true(w.tests[i].arrival_s == 0);
        assert_true(w.tests[i].duration_s <= big->duration_s);
        assert_int_equal(w.tests[i].id, i);
    }
    assert_true(big->duration_s > 337 && big->duration_s < 339);
    assert_int_equal(big->req.cpu_cores, 0); /* states none, as a live submission */
    drv_workload_free(&w);
}

static void test_alibaba(void **state)
{
    (void)state;
    char nodes[512], pods[512], spec[512];
    NEED_TRACE("alibaba-openb-2023-node_list_all_node.csv", nodes);
    NEED_TRACE("alibaba-openb-2023-pod_list_default.csv", pods);
    NEED_TRACE("alibaba-openb-2023-pod_list_gpuspec33.csv", spec);
    drv_workload w;
    drv_workload_init(&w);
    drv_trace_options opt = {0};
    drv_error err = {{0}};
    assert_int_equal(drv_trace_alibaba_read(nodes, pods, &w, &opt, &err), 0);
    assert_int_equal(w.n_workers, 1523);
    /* 8,152 pods, of which 897 pending ones have no scheduled_time. */
    assert_int_equal(opt.skipped, 897);
    assert_int_equal(w.n_tests, 8152 - 897);
    assert_string_equal(opt.first_skip, "alibaba-openb-2023-pod_list_default.csv:63: no "
                                        "scheduled_time: the pod never ran");
    const drv_sim_worker *cpu = find_worker(&w, "openb-node-0000"); /* 32000,262144,0, */
    assert_string_equal(cpu->kind, "cpu");
    assert_int_equal(cpu->caps.cpu_cores, 32);
    assert_int_equal(cpu->slots, 32);
    assert_int_equal(cpu->caps.memory_mb, 262144);
    assert_int_equal(cpu->caps.gpu_count, 0);
    assert_false(drv_tagset_has(&cpu->caps.tags, DRV_TAG_CUDA));
    size_t t4 = 0, gpus = 0;
    for (size_t i = 0; i < w.n_workers; i++) {
        const drv_sim_worker *wk = &w.workers[i];
        gpus += wk->caps.gpu_count > 0;
        if (strcmp(wk->kind, "T4") == 0) {
            t4++;
            assert_true(has_tag(&w, &wk->caps.tags, "gpu:t4"));
            assert_true(drv_tagset_has(&wk->caps.tags, DRV_TAG_CUDA));
            assert_int_equal(wk->caps.gpu_memory_mb, 16 * 1024);
        }
    }
    assert_int_equal(t4, 404);
    assert_int_equal(gpus, 1523 - 310);
    /* openb-pod-0001,6000,12288,1,460,,LS,Running,427061,12902960,427061: a GPU share
     * reserves one GPU. */
    const drv_sim_test *t = find_test(&w, "openb-pod-0001");
    assert_true(t->arrival_s == 427061 && t->duration_s == 12902960 - 427061);
    assert_int_equal(t->req.cpu_cores, 6);
    assert_int_equal(t->req.memory_mb, 12288);
    assert_int_equal(t->req.gpu_count, 1);
    assert_false(drv_requirements_met(&t->req, &cpu->caps));
    for (size_t i = 0; i < w.n_tests; i++)
        assert_true(drv_tagset_empty(&w.tests[i].req.any_of));
    drv_workload_free(&w);

    /* The same pods with GPU-model constraints: 2,388 lines carry a gpu_spec, 296 of
     * them on pending pods that are skipped. */
    drv_workload_init(&w);
    assert_int_equal(drv_trace_alibaba_read(nodes, spec, &w, &opt, &err), 0);
    assert_int_equal(w.n_tests, 8152 - 897);
    size_t constrained = 0;
    for (size_t i = 0; i < w.n_tests; i++)
        constrained += !drv_tagset_empty(&w.tests[i].req.any_of);
    assert_int_equal(constrained, 2388 - 296);
    const drv_sim_test *pinned = NULL;
    for (size_t i = 0; i < w.n_tests && !pinned; i++) {
        if (drv_tagset_count(&w.tests[i].req.any_of) == 2 &&
            has_tag(&w, &w.tests[i].req.any_of, "gpu:v100m16") &&
            has_tag(&w, &w.tests[i].req.any_of, "gpu:v100m32"))
            pinned = &w.tests[i];
    }
    assert_non_null(pinned); /* "V100M16|V100M32" */
    for (size_t i = 0; i < w.n_workers; i++) {
        const drv_sim_worker *wk = &w.workers[i];
        bool v100 = strncmp(wk->kind, "V100", 4) == 0;
        if (!v100)
            assert_false(drv_requirements_met(&pinned->req, &wk->caps));
    }
    /* One pod asks for 120 cores on G2 nodes, which have 96: the synthesized
     * constraint makes it unrunnable; every other pod fits somewhere. */
    assert_int_equal(count_unrunnable(&w), 1);
    drv_workload_free(&w);
}

/* ---- the line reader ---- */

static void test_lines_long_crlf_and_gzip(void **state)
{
    fixture *fx = *state;
    /* Line 2 is 20,000 bytes, lines end in CRLF, the last one has no newline. */
    size_t big = 20000;
    char *text = malloc(big + 64);
    assert_non_null(text);
    size_t n = (size_t)sprintf(text, "first\r\n");
    memset(text + n, 'x', big);
    n += big;
    n += (size_t)sprintf(text + n, "\r\n\r\nlast");
    const char *paths[2] = {write_file(fx, "long.txt", text, n, false),
                            write_file(fx, "long.txt.gz", text, n, true)};
    free(text);
    for (int k = 0; k < 2; k++) {
        drv_lines l;
        drv_error err = {{0}};
        assert_int_equal(drv_lines_open(&l, paths[k], &err), 0);
        assert_int_equal(l.gzip, k == 1);
        for (int pass = 0; pass < 2; pass++) {
            assert_int_equal(drv_lines_next(&l, &err), 1);
            assert_string_equal(l.buf, "first");
            assert_int_equal(drv_lines_next(&l, &err), 1);
            assert_int_equal(l.len, big);
            assert_int_equal(strspn(l.buf, "x"), big);
            assert_int_equal(drv_lines_next(&l, &err), 1);
            assert_int_equal(l.len, 0);
            assert_int_equal(drv_lines_next(&l, &err), 1);
            assert_string_equal(l.buf, "last");
            assert_int_equal(l.line_no, 4);
            assert_int_equal(drv_lines_next(&l, &err), 0);
            assert_int_equal(drv_lines_rewind(&l, &err), 0);
        }
        drv_lines_close(&l);
    }
}

static void test_split_and_numbers(void **state)
{
    (void)state;
    char ws[] = "  1\t 2.5   -1  ";
    char *f[4];
    assert_int_equal(drv_split_ws(ws, f, 4), 3);
    assert_string_equal(f[1], "2.5");
    assert_string_equal(f[2], "-1");
    char csv[] = "a,,b,";
    assert_int_equal(drv_split_char(csv, ',', f, 4), 4);
    assert_string_equal(f[1], "");
    assert_string_equal(f[3], "");
    static const struct {
        const char *s;
        int rc;
        double v;
    } rows[] = {
        {"12", 0, 12},  {"-1", 0, -1},  {"3.5e2", 0, 350}, {"", -1, 0},   {"1o", -1, 0},
        {"nan", -1, 0}, {"inf", -1, 0}, {"0x10", -1, 0},   {" 1", -1, 0}, {"1e999", -1, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        double v = 99;
        assert_int_equal(drv_parse_number(rows[i].s, &v), rows[i].rc);
        assert_true(v == (rows[i].rc == 0 ? rows[i].v : 99));
    }
}

/* ---- small hand-made files ---- */

/* An 18-field SWF line: job number, submit, run time and processors vary. */
#define SWF_LINE(num, submit, run, procs)                                                          \
    num " " submit " -1 " run " " procs " -1 -1 -1 -1 -1 -1 1 1 -1 -1 -1 -1 -1\n"

static void test_alea_requests(void **state)
{
    fixture *fx = *state;
    const char *machines = write_text(fx, "t.machines",
                                      "0\tbig\t2\t16\t1\t33554432\n"
                                      "1\tsmall\t3\t4\t2\t8388608\n");
    /* 21 fields: field 2 absolute, field 10 bytes per job, 20 queue, 21 request. */
    const char *swf = write_text(
        fx, "t.swf",
        "7 1000 0 60 4 1 1024 4 100 2147483648 1 1 1 1 -1 1 1 1 {1} q_a "
        "1:ppn=4:x86_64:cl_big#excl\n"
        "8 1010 0 70 7 1 1024 7 100 -1 1 1 1 1 -1 1 1 1 {1} q_b 2:ppn=3+1:ppn=5\n"
        "9 1020 0 80 2 1 1024 2 100 -1 1 1 1 1 -1 1 1 1 {1} q_a 1:ppn=2:^big2.example.org\n"
        "10 1030 0 90 2 1 1024 2 100 4294967296 1 1 1 1 -1 1 1 1 {1} q_a 2:infiniband\n"
        "11 1040 0 90 1 1 1024 1 100 -1 1 1 1 1 -1 1 1 1 {1} q_a host=small3:ppn=1\n");
    drv_workload w;
    drv_workload_init(&w);
    drv_trace_options opt = {0};
    drv_error err = {{0}};
    assert_int_equal(drv_trace_swf_read(swf, machines, &w, &opt, &err), 0);
    assert_int_equal(w.n_workers, 5);
    assert_int_equal(w.n_tests, 5);
    const drv_sim_worker *big1 = find_worker(&w, "big-1"), *big2 = find_worker(&w, "big-2");
    const drv_sim_worker *small1 = find_worker(&w, "small-1"), *small3 = find_worker(&w, "small-3");
    assert_true(small1->speed == 2.0f);
    assert_int_equal(small1->caps.memory_mb, 8192);
    assert_true(has_tag(&w, &small1->caps.tags, "nodecpus4"));
    assert_true(has_tag(&w, &small1->caps.tags, "queue:q_b")); /* every node serves every queue */

    const drv_sim_test *t = find_test(&w, "job-7");
    assert_true(t->arrival_s == 0);
    assert_int_equal(t->req.cpu_cores, 16); /* #excl on cl_big: the whole node */
    assert_int_equal(t->req.memory_mb, 2048);
    assert_true(drv_requirements_met(&t->req, &big1->caps));
    assert_false(drv_requirements_met(&t->req, &small1->caps));
    t = find_test(&w, "job-8");
    assert_true(t->arrival_s == 10);
    assert_int_equal(t->req.cpu_cores, 5); /* the largest group's ppn */
    t = find_test(&w, "job-9");
    assert_int_equal(t->req.cpu_cores, 2);
    assert_true(drv_requirements_met(&t->req, &big1->caps));
    assert_false(drv_requirements_met(&t->req, &big2->caps)); /* ^big2 */
    t = find_test(&w, "job-10");
    assert_int_equal(t->req.cpu_cores, 1);    /* PBS default ppn=1 per node */
    assert_int_equal(t->req.memory_mb, 2048); /* 4 GiB over 2 nodes */
    assert_true(has_tag(&w, &t->req.all_of, "infiniband"));
    t = find_test(&w, "job-11");
    assert_true(drv_requirements_met(&t->req, &small3->caps));
    assert_false(drv_requirements_met(&t->req, &small1->caps));
    assert_int_equal(count_unrunnable(&w), 0);
    drv_workload_free(&w);
}

typedef enum reader { R_SWF, R_MACHINES, R_DURATIONS, R_NODES, R_PODS } reader;

typedef struct bad_case {
    const char *file;
    reader kind;
    const char *text;
    bool gz;
    bool per_line;    /* a bad line (skipped when lenient) rather than a bad file */
    const char *want; /* the error, from its start */
} bad_case;

static const bad_case BAD[] = {
    {"fields.swf", R_SWF, "; header\n" SWF_LINE("1", "0", "10", "1") "2 5 -1 10 1\n", false, true,
     "fields.swf:3: 5 fields, expected 18 like the first job line"},
    {"first.swf", R_SWF, "1 2 3\n" SWF_LINE("2", "0", "10", "1"), false, true,
     "first.swf:1: 3 fields, expected 18 (SWF) or 21 (Alea SWF)"},
    {"garbage.swf", R_SWF, SWF_LINE("1", "0", "10", "1") SWF_LINE("2", "5", "1o", "1"), false, true,
     "garbage.swf:2: field 4 (run time) \"1o\" is not a number"},
    {"negative.swf.gz", R_SWF, SWF_LINE("1", "0", "10", "1") SWF_LINE("2", "5", "-5", "1"), true,
     true, "negative.swf.gz:2: run time -5 is negative"},
    {"early.swf", R_SWF, SWF_LINE("1", "100", "10", "1") SWF_LINE("2", "50", "5", "1"), false, true,
     "early.swf:2: submit time 50 is before the first job's (100)"},
    {"bad.machines", R_MACHINES, "0 zewura 20 eighty 1 5\n", false, false,
     "bad.machines:1: field 4 \"eighty\" is not a positive number"},
    {"short.machines", R_MACHINES, "\n0 zewura 20 80 1\n", false, false,
     "short.machines:2: 5 fields, expected 6"},
    {"empty.json", R_DURATIONS, "\n  \n", false, false,
     "empty.json:1: the file is empty, expected a JSON object"},
    {"array.json", R_DURATIONS, "\n[1, 2]\n", false, false,
     "array.json:2: the top level is an array, expected an object"},
    {"string.json", R_DURATIONS, "{\n  \"a_spec.rb\": 1.5,\n  \"b_spec.rb\": \"2\"\n}\n", false,
     true, "string.json:3: \"b_spec.rb\": the value is a string, expected seconds"},
    {"negative.json.gz", R_DURATIONS, "{\"a\": 1,\n\"b\": -2}", true, true,
     "negative.json.gz:2: \"b\": -2 seconds is negative"},
    {"syntax.json", R_DURATIONS, "{\n\"a\": 1,\n\"b\": }\n", false, false, "syntax.json:3: "},
    {"dup.json", R_DURATIONS, "{\"a\": 1,\n\"a\": 2}\n", false, false, "dup.json:2: duplicate"},
    {"nomodel.csv", R_NODES, "sn,cpu_milli,memory_mib,gpu\nn1,1000,1024,0\n", false, false,
     "nomodel.csv:1: the header has no column \"model\""},
    {"empty.csv", R_PODS, "", false, false, "empty.csv:1: no header row"},
    {"nodefields.csv", R_NODES, "sn,cpu_milli,memory_mib,gpu,model\nn1,1000,1024,0\n", false, true,
     "nodefields.csv:2: 4 fields, expected 5 like the header"},
    {"podnum.csv", R_PODS,
     "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
     "creation_time,deletion_time,scheduled_time\n"
     "p1,12x,1024,0,0,,LS,Running,0,10,0\n",
     false, true, "podnum.csv:2: cpu_milli \"12x\" is not a number"},
    {"pending.csv", R_PODS,
     "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
     "creation_time,deletion_time,scheduled_time\n"
     "p1,1000,1024,0,0,,LS,Running,0,10,0\n"
     "p2,1000,1024,0,0,T4,BE,Pending,5,9,\n",
     false, true, "pending.csv:3: no scheduled_time: the pod never ran"},
    {"backwards.csv", R_PODS,
     "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,"
     "pod_phase,creation_time,deletion_time,scheduled_time\n"
     "p1,1000,1024,0,0,,LS,Running,0,10,20\n",
     false, true, "backwards.csv:2: deletion_time 10 is before scheduled_time 20"},
    {"badspec.csv", R_PODS,
     "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,"
     "pod_phase,creation_time,deletion_time,scheduled_time\n"
     "p1,1000,1024,1,1000,T4|A 100,LS,Running,0,10,0\n",
     false, true, "badspec.csv:2: GPU model \"A 100\": tag \"gpu:a 100\""},
};

/* Runs the reader of c->kind on path (the good companion file is made up). */
static int run_reader(fixture *fx, reader kind, const char *path, drv_workload *w,
                      drv_trace_options *opt, drv_error *err)
{
    switch (kind) {
    case R_SWF:
        return drv_trace_swf_read(path, NULL, w, opt, err);
    case R_MACHINES: {
        const char *swf = write_text(fx, "ok.swf", SWF_LINE("1", "0", "10", "1"));
        return drv_trace_swf_read(swf, path, w, opt, err);
    }
    case R_DURATIONS:
        return drv_trace_durations_read(path, w, opt, err);
    case R_NODES:
        return drv_trace_alibaba_read(path, NULL, w, opt, err);
    case R_PODS:
        return drv_trace_alibaba_read(NULL, path, w, opt, err);
    }
    return 0;
}

static void test_bad_files(void **state)
{
    fixture *fx = *state;
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        const bad_case *c = &BAD[i];
        const char *path = write_file(fx, c->file, c->text, strlen(c->text), c->gz);
        /* Strict: refused, w unchanged (it already holds one test). */
        drv_workload w;
        drv_workload_init(&w);
        drv_sim_test before = {.name = "already-there", .duration_s = 1};
        drv_workload_add_test(&w, &before);
        int tags = drv_tag_count(w.tags);
        drv_trace_options opt = {.strict = true};
        drv_error err = {{0}};
        int rc = run_reader(fx, c->kind, path, &w, &opt, &err);
        if (rc != -1 || strncmp(err.msg, c->want, strlen(c->want)) != 0)
            fail_msg("%s: rc %d, error \"%s\", wanted \"%s...\"", c->file, rc, err.msg, c->want);
        assert_int_equal(w.n_tests, 1);
        assert_int_equal(w.n_workers, 0);
        assert_int_equal(drv_tag_count(w.tags), tags);
        assert_string_equal(w.source, "");
        drv_workload_free(&w);

        /* Lenient: a bad line is skipped and counted with the same words; a bad file is
         * still refused. */
        drv_workload_init(&w);
        opt.strict = false;
        rc = run_reader(fx, c->kind, path, &w, &opt, &err);
        if (c->per_line) {
            if (rc != 0 || opt.skipped != 1 ||
                strncmp(opt.first_skip, c->want, strlen(c->want)) != 0)
                fail_msg("%s lenient: rc %d, %zu skipped, first \"%s\"", c->file, rc, opt.skipped,
                         opt.first_skip);
        } else {
            assert_int_equal(rc, -1);
            assert_int_equal(w.n_tests, 0);
        }
        drv_workload_free(&w);
    }
}

static void test_damaged_gzip(void **state)
{
    fixture *fx = *state;
    /* 400 jobs compress to about 2 KB; cut at 60 %, or flip bytes in the middle. */
    size_t cap = 400 * 80, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int i = 1; i <= 400; i++)
        n += (size_t)snprintf(text + n, cap - n,
                              "%d %d -1 %d 4 -1 -1 -1 -1 -1 -1 %d 1 -1 -1 -1 -1 -1\n", i, i * 37,
                              (i * 7919) % 5000, i % 13);
    const char *full = write_file(fx, "full.swf.gz", text, n, true);
    free(text);
    FILE *f = fopen(full, "rb");
    assert_non_null(f);
    unsigned char gz[65536];
    size_t len = fread(gz, 1, sizeof gz, f);
    fclose(f);
    assert_true(len > 200 && len < sizeof gz);
    const char *cut = write_file(fx, "cut.swf.gz", (const char *)gz, len * 6 / 10, false);
    for (size_t i = len / 2; i < len / 2 + 16; i++)
        gz[i] ^= 0x5a;
    const char *flipped = write_file(fx, "flipped.swf.gz", (const char *)gz, len, false);
    const char *paths[] = {cut, flipped};
    for (int k = 0; k < 2; k++) {
        for (int strict = 0; strict < 2; strict++) {
            drv_workload w;
            drv_workload_init(&w);
            drv_trace_options opt = {.strict = strict};
            drv_error err = {{0}};
            assert_int_equal(drv_trace_swf_read(paths[k], NULL, &w, &opt, &err), -1);
            const char *name = k == 0 ? "cut.swf.gz:" : "flipped.swf.gz:";
            if (strncmp(err.msg, name, strlen(name)) != 0 ||
                !strstr(err.msg, "truncated or corrupt"))
                fail_msg("damaged gzip: \"%s\"", err.msg);
            assert_int_equal(w.n_tests, 0);
            drv_workload_free(&w);
        }
    }
    /* The intact file reads. */
    drv_workload w;
    drv_workload_init(&w);
    drv_error err = {{0}};
    assert_int_equal(drv_trace_swf_read(full, NULL, &w, NULL, &err), 0);
    assert_int_equal(w.n_tests, 400);
    drv_workload_free(&w);
}

static void test_missing_file(void **state)
{
    fixture *fx = *state;
    char path[400];
    snprintf(path, sizeof path, "%s/no-such-trace.swf", fx->dir);
    drv_workload w;
    drv_workload_init(&w);
    drv_error err = {{0}};
    char want[512];
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    assert_int_equal(drv_trace_swf_read(path, NULL, &w, NULL, &err), -1);
    assert_string_equal(err.msg, want);
    assert_int_equal(drv_trace_durations_read(path, &w, NULL, &err), -1);
    assert_string_equal(err.msg, want);
    assert_int_equal(drv_trace_alibaba_read(path, NULL, &w, NULL, &err), -1);
    assert_string_equal(err.msg, want);
    assert_int_equal(w.n_tests + w.n_workers, 0);
    drv_workload_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nasa_swf),
        cmocka_unit_test(test_metacentrum_swf),
        cmocka_unit_test(test_metacentrum_strict_refuses),
        cmocka_unit_test(test_knapsack_durations),
        cmocka_unit_test(test_alibaba),
        cmocka_unit_test(test_lines_long_crlf_and_gzip),
        cmocka_unit_test(test_split_and_numbers),
        cmocka_unit_test(test_alea_requests),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_damaged_gzip),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
