/* trace_alibaba.c - the Alibaba GPU cluster trace v2023 ("OpenB") read into a workload.
 *
 * Both files are CSV (plain or gzip) with a header row; columns are found by name, so
 * their order does not matter and extra columns are ignored. Fields are not quoted.
 *
 * Nodes (sn,cpu_milli,memory_mib,gpu,model) -> one worker each: name = sn, kind = the
 * GPU model ("T4") or "cpu"; cores = slots = cpu_milli / 1000; memory = memory_mib;
 * gpu_count = gpu; tags "cpu", and for GPU nodes "cuda" and "gpu:<model>" lower-cased
 * ("gpu:v100m32"); speed 1. GPU memory and compute capability come from GPU_MODELS:
 * T4 16 GiB / 7.5, P100 16 GiB / 6.0, V100M16 16 GiB / 7.0, V100M32 32 GiB / 7.0,
 * A10 24 GiB / 8.6. G1, G2, G3 are Alibaba's undisclosed codes, and any model not in
 * the table: 24 GiB (a guess) and compute capability 0 (unknown).
 *
 * Pods (name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,
 * creation_time,deletion_time,scheduled_time) -> one test each, in file order: name =
 * the pod name; arrival = creation_time; duration = deletion_time - scheduled_time;
 * cpu = ceil(cpu_milli / 1000); memory = memory_mib; gpu_count = num_gpu; gpu_spec
 * ("V100M16|V100M32") -> any_of {gpu:v100m16, gpu:v100m32}; priority 100, family 0,
 * max_retries 2, id = its index in w->tests.
 * GPU sharing: a pod with num_gpu 1 and gpu_milli < 1000 shares one GPU with others in
 * the real cluster. drover reserves whole GPUs, so such a pod reserves one GPU: it
 * still goes only to GPU nodes (gpu_count 0 would send it to CPU-only nodes), at the
 * price of fewer pods per GPU node than the real packing. gpu_milli is not used.
 *
 * Bad lines (both files): a field count unlike the header's, a number that is not one
 * or is negative, an empty name; for pods also a missing creation, scheduled or
 * deletion time (897 pending pods in the real files have no scheduled_time) or a
 * deletion before the scheduling. A header without a needed column refuses the file.
 *
 * Reading takes two passes (check with a scratch tag table, then build), so a strict
 * read that meets a bad line, or a damaged file, leaves w unchanged. */
#include "sim/trace_lines.h"
#include "sim/workload.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALI_PRIORITY    100
#define ALI_RETRIES     2
#define ALI_MAX_COLS    64
#define ALI_UNKNOWN_GPU (24u * 1024u)
#define ALI_MAX_CORES   1000000.0
#define ALI_MAX_GPUS    1024.0

static const struct {
    const char *model;
    uint64_t memory_mb;
    uint32_t cuda_cc;
} GPU_MODELS[] = {
    {"T4", 16 * 1024, 75},      {"P100", 16 * 1024, 60}, {"V100M16", 16 * 1024, 70},
    {"V100M32", 32 * 1024, 70}, {"A10", 24 * 1024, 86},
};

enum { NODE_SN, NODE_CPU, NODE_MEM, NODE_GPU, NODE_MODEL, NODE_NCOLS };
static const char *const NODE_COLS[NODE_NCOLS] = {"sn", "cpu_milli", "memory_mib", "gpu", "model"};
enum {
    POD_NAME,
    POD_CPU,
    POD_MEM,
    POD_NGPU,
    POD_SPEC,
    POD_CREATED,
    POD_DELETED,
    POD_SCHEDULED,
    POD_NCOLS
};
static const char *const POD_COLS[POD_NCOLS] = {
    "name",     "cpu_milli",     "memory_mib",    "num_gpu",
    "gpu_spec", "creation_time", "deletion_time", "scheduled_time",
};

/* A CSV file being read: its lines and where each needed column is. */
typedef struct ali_csv {
    drv_lines l;
    const char *const *names; /* the needed columns */
    size_t n_names;
    size_t col[POD_NCOLS]; /* position of each needed column in a row */
    size_t n_header;       /* fields in the header row */
    char *f[ALI_MAX_COLS]; /* the current row's fields */
} ali_csv;

/* Reads the header row (the first line) and finds the needed columns. Returns 0, or -1
 * with err "NAME:1: ..." for an empty file or a missing column. */
static int ali_header(ali_csv *c, drv_error *err)
{
    int rc = drv_lines_next(&c->l, err);
    if (rc < 0)
        return -1;
    if (rc == 0 || c->l.len == 0) {
        c->l.line_no = 1;
        return drv_lines_error(&c->l, err, "no header row, expected the columns %s,%s,...",
                               c->names[0], c->names[1]);
    }
    size_t n = drv_split_char(c->l.buf, ',', c->f, ALI_MAX_COLS);
    if (n > ALI_MAX_COLS)
        return drv_lines_error(&c->l, err, "the header has %zu columns, more than %d", n,
                               ALI_MAX_COLS);
    c->n_header = n;
    for (size_t k = 0; k < c->n_names; k++) {
        size_t i = 0;
        while (i < n && strcmp(c->f[i], c->names[k]) != 0)
            i++;
        if (i == n)
            return drv_lines_error(&c->l, err, "the header has no column \"%s\"", c->names[k]);
        c->col[k] = i;
    }
    return 0;
}

/* Opens path and reads its header. Returns 0, or -1 with err (nothing to close then). */
static int ali_open(ali_csv *c, const char *path, const char *const *names, size_t n_names,
                    drv_error *err)
{
    memset(c, 0, sizeof *c);
    c->names = names;
    c->n_names = n_names;
    if (drv_lines_open(&c->l, path, err) < 0)
        return -1;
    if (ali_header(c, err) < 0) {
        drv_lines_close(&c->l);
        return -1;
    }
    return 0;
}

/* Starts over at the first data row. Returns 0, or -1 with err. */
static int ali_rewind(ali_csv *c, drv_error *err)
{
    if (drv_lines_rewind(&c->l, err) < 0)
        return -1;
    return ali_header(c, err);
}

/* Reads the next non-blank row and splits it. Returns 1 with the fields in c->f and
 * *nf their count, 0 at the end, -1 with err on a damaged file. */
static int ali_row(ali_csv *c, size_t *nf, drv_error *err)
{
    int rc;
    while ((rc = drv_lines_next(&c->l, err)) > 0) {
        if (c->l.len == 0)
            continue;
        *nf = drv_split_char(c->l.buf, ',', c->f, ALI_MAX_COLS);
        return 1;
    }
    return rc;
}

/* The field of needed column k in the current row. */
static const char *ali_field(const ali_csv *c, int k)
{
    return c->f[c->col[k]];
}

/* Parses needed column k as a number >= 0 and <= max. Returns 0, or -1 with why. */
static int ali_number(const ali_csv *c, int k, double max, double *out, drv_error *why)
{
    const char *s = ali_field(c, k);
    if (!*s)
        return drv_lines_error(&c->l, why, "no %s", c->names[k]);
    if (drv_parse_number(s, out) < 0)
        return drv_lines_error(&c->l, why, "%s \"%s\" is not a number", c->names[k], s);
    if (*out < 0)
        return drv_lines_error(&c->l, why, "%s %s is negative", c->names[k], s);
    if (*out > max)
        return drv_lines_error(&c->l, why, "%s %s is out of range", c->names[k], s);
    return 0;
}

/* Interns "gpu:<model>" (model lower-cased, n bytes). Returns the id, or -1 with why. */
static int ali_gpu_tag(const ali_csv *c, drv_tag_table *tags, const char *model, size_t n,
                       drv_error *why)
{
    char name[DRV_TAG_NAME_MAX + 2];
    if (n + 4 > DRV_TAG_NAME_MAX)
        return drv_lines_error(&c->l, why, "GPU model \"%.*s\" is too long", (int)n, model);
    memcpy(name, "gpu:", 4);
    for (size_t i = 0; i < n; i++)
        name[4 + i] = (char)tolower((unsigned char)model[i]);
    name[4 + n] = '\0';
    drv_error e;
    int id = drv_tag_intern(tags, name, &e);
    if (id < 0)
        return drv_lines_error(&c->l, why, "GPU model \"%.*s\": %s", (int)n, model, e.msg);
    return id;
}

/* Parses the current node row into *wk. Returns 0, or -1 with why. */
static int ali_node(const ali_csv *c, size_t nf, drv_tag_table *tags, drv_sim_worker *wk,
                    drv_error *why)
{
    if (nf != c->n_header)
        return drv_lines_error(&c->l, why, "%zu fields, expected %zu like the header", nf,
                               c->n_header);
    const char *sn = ali_field(c, NODE_SN);
    if (!*sn)
        return drv_lines_error(&c->l, why, "empty sn (node name)");
    if (strlen(sn) >= sizeof wk->name)
        return drv_lines_error(&c->l, why, "sn \"%.40s...\" is too long", sn);
    double cpu, mem, gpu;
    if (ali_number(c, NODE_CPU, ALI_MAX_CORES * 1000, &cpu, why) < 0 ||
        ali_number(c, NODE_MEM, 1e15, &mem, why) < 0 ||
        ali_number(c, NODE_GPU, ALI_MAX_GPUS, &gpu, why) < 0)
        return -1;
    const char *model = ali_field(c, NODE_MODEL);
    memset(wk, 0, sizeof *wk);
    drv_capabilities_init(&wk->caps);
    snprintf(wk->name, sizeof wk->name, "%s", sn);
    wk->caps.cpu_cores = (uint32_t)(cpu / 1000.0);
    wk->caps.memory_mb = (uint64_t)mem;
    wk->caps.gpu_count = (uint32_t)gpu;
    drv_tagset_add(&wk->caps.tags, DRV_TAG_CPU);
    if (wk->caps.gpu_count > 0) {
        drv_tagset_add(&wk->caps.tags, DRV_TAG_CUDA);
        wk->caps.gpu_memory_mb = ALI_UNKNOWN_GPU;
        for (size_t i = 0; i < sizeof GPU_MODELS / sizeof GPU_MODELS[0]; i++) {
            if (strcmp(GPU_MODELS[i].model, model) == 0) {
                wk->caps.gpu_memory_mb = GPU_MODELS[i].memory_mb;
                wk->caps.cuda_cc = GPU_MODELS[i].cuda_cc;
            }
        }
        if (*model) {
            int id = ali_gpu_tag(c, tags, model, strlen(model), why);
            if (id < 0)
                return -1;
            drv_tagset_add(&wk->caps.tags, id);
        }
    }
    snprintf(wk->kind, sizeof wk->kind, "%s", *model ? model : wk->caps.gpu_count ? "gpu" : "cpu");
    wk->slots = wk->caps.cpu_cores;
    wk->speed = 1.0f;
    for (int f = 0; f < DRV_FAMILY_MAX; f++)
        wk->family_speed[f] = 1.0f;
    wk->join_at = 0;
    wk->leave_at = -1;
    return 0;
}

/* Parses the current pod row into *t (t->name points into the row). Returns 0, or -1
 * with why. */
static int ali_pod(const ali_csv *c, size_t nf, drv_tag_table *tags, drv_sim_test *t,
                   drv_error *why)
{
    if (nf != c->n_header)
        return drv_lines_error(&c->l, why, "%zu fields, expected %zu like the header", nf,
                               c->n_header);
    const char *name = ali_field(c, POD_NAME);
    if (!*name)
        return drv_lines_error(&c->l, why, "empty pod name");
    double cpu, mem, ngpu, created, deleted, scheduled;
    if (ali_number(c, POD_CPU, ALI_MAX_CORES * 1000, &cpu, why) < 0 ||
        ali_number(c, POD_MEM, 1e15, &mem, why) < 0 ||
        ali_number(c, POD_NGPU, ALI_MAX_GPUS, &ngpu, why) < 0 ||
        ali_number(c, POD_CREATED, 1e12, &created, why) < 0)
        return -1;
    if (!*ali_field(c, POD_SCHEDULED))
        return drv_lines_error(&c->l, why, "no scheduled_time: the pod never ran");
    if (!*ali_field(c, POD_DELETED))
        return drv_lines_error(&c->l, why, "no deletion_time: the pod's end is unknown");
    if (ali_number(c, POD_SCHEDULED, 1e12, &scheduled, why) < 0 ||
        ali_number(c, POD_DELETED, 1e12, &deleted, why) < 0)
        return -1;
    if (deleted < scheduled)
        return drv_lines_error(&c->l, why, "deletion_time %s is before scheduled_time %s",
                               ali_field(c, POD_DELETED), ali_field(c, POD_SCHEDULED));
    if (ngpu != floor(ngpu))
        return drv_lines_error(&c->l, why, "num_gpu %s is not a whole number",
                               ali_field(c, POD_NGPU));
    memset(t, 0, sizeof *t);
    drv_requirements_init(&t->req);
    for (const char *m = ali_field(c, POD_SPEC); *m;) {
        size_t n = strcspn(m, "|");
        if (n > 0) {
            int id = ali_gpu_tag(c, tags, m, n, why);
            if (id < 0)
                return -1;
            drv_tagset_add(&t->req.any_of, id);
        }
        m += n;
        if (*m == '|')
            m++;
    }
    t->name = (char *)name; /* copied by drv_workload_add_test() */
    t->arrival_s = created;
    t->duration_s = deleted - scheduled;
    t->req.cpu_cores = (uint32_t)ceil(cpu / 1000.0);
    t->req.memory_mb = (uint64_t)ceil(mem);
    t->req.gpu_count = (uint32_t)ngpu;
    t->priority = ALI_PRIORITY;
    t->family = 0;
    t->max_retries = ALI_RETRIES;
    return 0;
}

/* One pass over both files (either may be closed: not given). w NULL checks only, with
 * a scratch tag table; otherwise adds workers and tests and counts bad lines. Returns
 * 0, or -1 with err (a bad line in strict mode, a damaged file, a full tag table). */
static int ali_pass(ali_csv *nodes, ali_csv *pods, drv_workload *w, drv_trace_options *opt,
                    drv_error *err)
{
    drv_tag_table *tags = w ? w->tags : drv_tag_table_new();
    size_t nf = 0;
    int rc = 0;
    drv_error why;
    while (nodes->l.gz && (rc = ali_row(nodes, &nf, err)) > 0) {
        drv_sim_worker wk;
        if (ali_node(nodes, nf, tags, &wk, &why) < 0) {
            rc = drv_trace_bad_line(opt, w != NULL, &why, err);
            if (rc < 0)
                break;
            continue;
        }
        if (w)
            drv_workload_add_worker(w, &wk);
    }
    size_t added = 0;
    while (rc >= 0 && pods->l.gz && (opt->max_tests == 0 || added < opt->max_tests) &&
           (rc = ali_row(pods, &nf, err)) > 0) {
        drv_sim_test t;
        if (ali_pod(pods, nf, tags, &t, &why) < 0) {
            rc = drv_trace_bad_line(opt, w != NULL, &why, err);
            if (rc < 0)
                break;
            continue;
        }
        added++;
        if (w) {
            t.id = w->n_tests;
            drv_workload_add_test(w, &t);
        }
    }
    if (!w)
        drv_tag_table_free(tags);
    return rc < 0 ? -1 : 0;
}

int drv_trace_alibaba_read(const char *nodes_csv, const char *pods_csv, drv_workload *w,
                           drv_trace_options *opt, drv_error *err)
{
    drv_trace_options defaults;
    opt = drv_trace_options_begin(opt, &defaults);
    if (!w)
        return drv_error_set(err, "Alibaba trace: no workload to read into");
    if (!nodes_csv && !pods_csv)
        return drv_error_set(err, "Alibaba trace: neither a nodes nor a pods file given");
    ali_csv nodes, pods;
    memset(&nodes, 0, sizeof nodes);
    memset(&pods, 0, sizeof pods);
    int rc = 0;
    if (nodes_csv)
        rc = ali_open(&nodes, nodes_csv, NODE_COLS, NODE_NCOLS, err);
    if (rc == 0 && pods_csv)
        rc = ali_open(&pods, pods_csv, POD_COLS, POD_NCOLS, err);
    if (rc == 0)
        rc = ali_pass(&nodes, &pods, NULL, opt, err);
    if (rc == 0 && nodes_csv)
        rc = ali_rewind(&nodes, err);
    if (rc == 0 && pods_csv)
        rc = ali_rewind(&pods, err);
    if (rc == 0) {
        size_t n_tests = w->n_tests, n_workers = w->n_workers;
        rc = ali_pass(&nodes, &pods, w, opt, err);
        if (rc < 0) {
            drv_trace_rollback(w, n_tests, n_workers);
            if (!opt->strict) {
                opt->skipped = 0;
                opt->first_skip[0] = '\0';
            }
        } else {
            if (pods_csv)
                drv_trace_note_source(w, pods_csv);
            if (nodes_csv)
                drv_trace_note_source(w, nodes_csv);
        }
    }
    drv_lines_close(&nodes.l);
    drv_lines_close(&pods.l);
    return rc;
}
