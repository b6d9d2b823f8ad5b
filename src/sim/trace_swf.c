/* trace_swf.c - Standard Workload Format job logs (and Alea's 21-field variant with its
 * .machines file) read into a workload.
 *
 * Each job line becomes one test:
 *   name "job-<field 1>"; arrival = field 2 minus the first job's field 2 (MetaCentrum
 *   logs hold absolute Unix times); duration = field 4 (0 stays 0: "under 0.5 s");
 *   priority 100, family 0, max_retries 2, no flakiness; id = its index in w->tests.
 * Standard SWF (18 fields): cpu = field 5 (allocated processors), else field 8, else 0
 *   (the slot only); memory = field 10 (KB per processor) x cpu; queue (15) and
 *   partition (16), when not -1, become required tags "queue:N" / "partition:N".
 * Alea SWF (21 fields): fields 15 and 16 are constant filler and ignored; field 20, the
 *   PBS queue name, becomes the required tag "queue:NAME"; field 10 is in bytes for the
 *   whole job and is spread over its nodes; field 21, the PBS request, gives the rest
 *   (see alea_request()). A drover test runs on one worker, so a multi-node job
 *   ("8:ppn=8") becomes one node's share of it (8 cores), not 64 cores.
 *
 * The machines file (cluster_id name nodes cpus_per_node speed ram_kb) gives one worker
 * per node, "zewura-1" .. "zewura-20" (1-based, like the hosts zewura1..zewura20 named in
 * the log): cores = slots = cpus_per_node, memory = ram_kb / 1024, speed = the speed
 * column, kind = the cluster name. Its tags are what the MetaCentrum jobs ask for, so
 * that every constraint in the log can be met by the nodes the job really ran on:
 *   "cpu", "cl_<cluster>", "nodecpus<cpus_per_node>", the site properties every node of
 *   the log's two CERIT-SC clusters offers (SWF_SITE_PROPERTIES: x86_64, brno, nfs4,
 *   linux, debian, infiniband), every queue and partition tag the log uses (any node
 *   serves any queue), and "host:<zewura12>" when a job names that host.
 *
 * Reading takes two passes over the file: the first only checks (tags interned into a
 * scratch table), so a strict read that meets a bad line, or any read that meets a
 * damaged file, returns before w is touched. */
#include "sim/trace_lines.h"
#include "sim/workload.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SWF_FIELDS        18
#define SWF_ALEA_FIELDS   21
#define SWF_MAX_FIELDS    32
#define SWF_PRIORITY      100
#define SWF_RETRIES       2
#define SWF_MAX_CORES     1000000.0       /* a processor count above this is not believable */
#define SWF_MAX_MEMORY_MB 1099511627776.0 /* 1 EiB a job: a larger request is not believable */

/* Properties every node of the MetaCentrum log (zewura, zegox) offers: the log's jobs
 * ask for these (1:ppn=12:x86_64:brno:nfs4, :nfs4:debian, :linux, 2:infiniband) and all
 * of them ran on those nodes (field 19). */
static const char *const SWF_SITE_PROPERTIES[] = {"x86_64", "brno",   "nfs4",
                                                  "linux",  "debian", "infiniband"};

/* One line of an Alea .machines file. */
typedef struct swf_cluster {
    char name[24];
    uint32_t nodes;
    uint32_t cpus;
    float speed;
    uint64_t ram_mb;
} swf_cluster;

typedef struct swf_reader {
    drv_lines lines;
    drv_trace_options *opt;
    swf_cluster *clusters; /* owned, from the machines file */
    size_t n_clusters;
    uint64_t max_node_mb; /* memory of the largest node; 0 without a machines file */
    /* per pass */
    size_t n_fields; /* 18 or 21, decided by the first job line */
    bool have_first;
    double first_submit;
    /* build pass only (w NULL in the check pass) */
    drv_workload *w;
    size_t first_worker;  /* index in w->workers of the first machines-file node */
    drv_tagset label_set; /* queue and partition tags seen, offered by every node */
} swf_reader;

/* A job as parsed from one line; tag ids belong to the table it was parsed with. */
typedef struct swf_job {
    char name[64];
    double arrival;
    double run;
    drv_requirements req;
} swf_job;

/* Interns prefix+text (text lower-cased, n bytes) and returns its id, or -1 with why
 * "FILE:LINE: what \"text\": reason" (an invalid name or a full tag table). */
static int swf_tag(const drv_lines *l, drv_tag_table *tags, const char *what, const char *prefix,
                   const char *text, size_t n, drv_error *why)
{
    char name[DRV_TAG_NAME_MAX + 2];
    size_t p = strlen(prefix);
    if (p + n > DRV_TAG_NAME_MAX)
        return drv_lines_error(l, why, "%s \"%.*s\" is too long for a tag", what, (int)n, text);
    memcpy(name, prefix, p);
    for (size_t i = 0; i < n; i++)
        name[p + i] = (char)tolower((unsigned char)text[i]);
    name[p + n] = '\0';
    drv_error e;
    int id = drv_tag_intern(tags, name, &e);
    if (id < 0)
        return drv_lines_error(l, why, "%s \"%.*s\": %s", what, (int)n, text, e.msg);
    return id;
}

/* Gives the tag id to the machines-file worker of host short name `host` ("zewura12" is
 * worker "zewura-12"), when there is one; other hosts are not in the fleet. */
static void swf_tag_host_worker(swf_reader *r, const char *host, size_t n, int id)
{
    if (!r->w)
        return;
    size_t digits = n;
    while (digits > 0 && isdigit((unsigned char)host[digits - 1]))
        digits--;
    if (digits == 0 || digits == n)
        return;
    char want[64];
    snprintf(want, sizeof want, "%.*s-%.*s", (int)digits, host, (int)(n - digits), host + digits);
    for (size_t i = r->first_worker; i < r->w->n_workers; i++) {
        if (strcmp(r->w->workers[i].name, want) == 0)
            drv_tagset_add(&r->w->workers[i].caps.tags, id);
    }
}

/* The cluster of the machines file named `name` (n bytes), or NULL. */
static const swf_cluster *swf_find_cluster(const swf_reader *r, const char *name, size_t n)
{
    for (size_t i = 0; i < r->n_clusters; i++) {
        if (strlen(r->clusters[i].name) == n && strncasecmp(r->clusters[i].name, name, n) == 0)
            return &r->clusters[i];
    }
    return NULL;
}

/* True when s is one or more decimal digits. */
static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return false;
    }
    return true;
}

/* Reads field 21, a PBS resource request, into job->req (cpu_cores, tags) and returns
 * the number of nodes it asks for (>= 1), or -1 with why filled.
 *   "N:ppn=P:prop:prop#excl" or "nodes=N:...", several node groups joined by '+'.
 *   cpu = the largest ppn of the groups (one test runs on one node). When no group has
 *   a whole-number ppn ("1", "2:infiniband", "1:ppn=1.5"), cpu = procs / nodes rounded up
 *   (PBS's default is ppn=1; the log's field 5 is what was allocated).
 *   A property ("x86_64", "cl_zewura", "nodecpus80") is a required tag; "^prop" a
 *   forbidden one. A host ("zewura12.cerit-sc.cz", "host=zewura10", or a group that
 *   starts with a host name) is the tag "host:zewura12", required, or forbidden with '^'.
 *   Other key=value items ("mem=3gb") are ignored: field 10 holds the memory request.
 *   "#excl" (exclusive node): when the request names a cluster of the machines file
 *   ("cl_zewura"), cpu = that cluster's cores per node, so the test holds a whole node;
 *   without a known cluster the node size is unknown and "#excl" is ignored. */
static int alea_request(swf_reader *r, drv_tag_table *tags, char *spec, double procs, swf_job *job,
                        drv_error *why)
{
    const drv_lines *l = &r->lines;
    bool excl = false;
    char *hash = strchr(spec, '#');
    if (hash) {
        *hash = '\0';
        for (char *f = hash + 1; f && *f;) {
            char *next = strchr(f, '#');
            if (next)
                *next++ = '\0';
            if (strcmp(f, "excl") == 0)
                excl = true;
            f = next;
        }
    }
    if (strncmp(spec, "nodes=", 6) == 0)
        spec += 6;
    const swf_cluster *cluster = NULL;
    uint64_t nodes = 0;
    uint32_t cpu = 0;
    for (char *group = spec; group;) {
        char *next_group = strchr(group, '+');
        if (next_group)
            *next_group++ = '\0';
        uint64_t count = 1;
        for (char *item = group, *next = NULL; item; item = next) {
            next = strchr(item, ':');
            if (next)
                *next++ = '\0';
            if (!*item)
                continue;
            if (item == group && all_digits(item)) {
                count = strtoull(item, NULL, 10);
                if (count == 0 || count > 1000000)
                    return drv_lines_error(l, why, "field 21: node count \"%s\" is out of range",
                                           item);
                continue;
            }
            if (strncmp(item, "ppn=", 4) == 0) {
                if (all_digits(item + 4)) {
                    unsigned long long p = strtoull(item + 4, NULL, 10);
                    if (p == 0 || p > SWF_MAX_CORES)
                        return drv_lines_error(l, why, "field 21: \"%s\" is out of range", item);
                    if (p > cpu)
                        cpu = (uint32_t)p;
                }
                continue;
            }
            bool negated = item[0] == '^';
            const char *name = negated ? item + 1 : item;
            bool host = false;
            if (strncmp(name, "host=", 5) == 0) {
                name += 5;
                host = true;
            } else if (strchr(name, '=')) {
                continue; /* mem=3gb and other resources */
            }
            if (strchr(name, '.'))
                host = true;
            drv_tagset *set = negated ? &job->req.none_of : &job->req.all_of;
            if (host) {
                size_t n = strcspn(name, ".");
                int id = swf_tag(l, tags, "field 21: host", "host:", name, n, why);
                if (id < 0)
                    return -1;
                drv_tagset_add(set, id);
                swf_tag_host_worker(r, name, n, id);
            } else {
                int id = swf_tag(l, tags, "field 21: property", "", name, strlen(name), why);
                if (id < 0)
                    return -1;
                drv_tagset_add(set, id);
                if (!negated && strncasecmp(name, "cl_", 3) == 0) {
                    const swf_cluster *c = swf_find_cluster(r, name + 3, strlen(name + 3));
                    if (c)
                        cluster = c;
                }
            }
        }
        nodes += count;
        group = next_group;
    }
    if (nodes == 0)
        nodes = 1;
    if (cpu == 0)
        cpu = procs > 0 ? (uint32_t)ceil(procs / (double)nodes) : 1;
    if (excl && cluster)
        cpu = cluster->cpus;
    job->req.cpu_cores = cpu;
    return nodes > 1000000 ? 1000000 : (int)nodes;
}

/* Field names for messages, 1-based. */
static const char *const SWF_FIELD_NAMES[SWF_FIELDS + 1] = {
    "",
    "job number",
    "submit time",
    "wait time",
    "run time",
    "allocated processors",
    "average CPU time",
    "used memory",
    "requested processors",
    "requested time",
    "requested memory",
    "status",
    "user id",
    "group id",
    "executable number",
    "queue number",
    "partition number",
    "preceding job",
    "think time",
};

/* Sets *out to a job's memory request of mb MB (field 10, written text); a request no
 * machine could have is an error, not a wrapped integer. */
static int memory_request(const drv_lines *l, const char *text, double mb, uint64_t *out,
                          drv_error *why)
{
    if (mb > SWF_MAX_MEMORY_MB)
        return drv_lines_error(l, why, "field 10 (%s) %s is out of range", SWF_FIELD_NAMES[10],
                               text);
    *out = (uint64_t)mb;
    return 0;
}

/* Parses the current line. Returns 1 for a job (in *job), 0 for a comment or blank
 * line, -1 for a bad line with why "FILE:LINE: reason". Tags are interned into tags;
 * in the build pass hosts named by the job are also tagged on their workers. */
static int swf_parse(swf_reader *r, drv_tag_table *tags, swf_job *job, drv_error *why)
{
    const drv_lines *l = &r->lines;
    char *line = l->buf;
    while (*line == ' ' || *line == '\t')
        line++;
    if (*line == '\0' || *line == ';')
        return 0;
    char *f[SWF_MAX_FIELDS];
    size_t n = drv_split_ws(line, f, SWF_MAX_FIELDS);
    if (r->n_fields == 0 && (n == SWF_FIELDS || n == SWF_ALEA_FIELDS))
        r->n_fields = n;
    if (n != r->n_fields) {
        if (r->n_fields == 0)
            return drv_lines_error(l, why, "%zu fields, expected %d (SWF) or %d (Alea SWF)", n,
                                   SWF_FIELDS, SWF_ALEA_FIELDS);
        return drv_lines_error(l, why, "%zu fields, expected %zu like the first job line", n,
                               r->n_fields);
    }
    double v[SWF_FIELDS];
    for (int i = 0; i < SWF_FIELDS; i++) {
        if (drv_parse_number(f[i], &v[i]) < 0)
            return drv_lines_error(l, why, "field %d (%s) \"%s\" is not a number", i + 1,
                                   SWF_FIELD_NAMES[i + 1], f[i]);
    }
    memset(job, 0, sizeof *job);
    drv_requirements_init(&job->req);
    if (v[1] < 0)
        return drv_lines_error(l, why, "submit time %s is unknown", f[1]);
    if (v[3] < 0)
        return drv_lines_error(l, why, "run time %s is negative", f[3]);
    snprintf(job->name, sizeof job->name, "job-%s", f[0]);
    job->run = v[3];
    double procs = v[4] > 0 ? v[4] : v[7] > 0 ? v[7] : 0;
    if (procs > SWF_MAX_CORES)
        return drv_lines_error(l, why, "processor count %s is out of range",
                               v[4] > 0 ? f[4] : f[7]);
    if (n == SWF_FIELDS) {
        job->req.cpu_cores = (uint32_t)ceil(procs);
        if (v[9] > 0) {
            if (memory_request(l, f[9], ceil(v[9] * (procs > 0 ? procs : 1) / 1024.0),
                               &job->req.memory_mb, why) < 0)
                return -1;
        }
        static const struct {
            int field;
            const char *prefix;
        } labels[] = {{14, "queue:"}, {15, "partition:"}};
        for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
            if (v[labels[i].field] < 0)
                continue;
            const char *text = f[labels[i].field];
            int id = swf_tag(l, tags, SWF_FIELD_NAMES[labels[i].field + 1], labels[i].prefix, text,
                             strlen(text), why);
            if (id < 0)
                return -1;
            drv_tagset_add(&job->req.all_of, id);
            drv_tagset_add(&r->label_set, id);
        }
    } else {
        int nodes = alea_request(r, tags, f[20], procs, job, why);
        if (nodes < 0)
            return -1;
        if (v[9] > 0) {
            if (memory_request(l, f[9], ceil(v[9] / (1024.0 * 1024.0) / nodes), &job->req.memory_mb,
                               why) < 0)
                return -1;
            /* The log's biggest request (job 8687: 512 GiB) ran on a zewura node the
             * machines file gives 505 GiB; the file reads low, so cap at the largest. */
            if (r->max_node_mb && job->req.memory_mb > r->max_node_mb)
                job->req.memory_mb = r->max_node_mb;
        }
        if (strcmp(f[19], "-1") != 0) {
            int id = swf_tag(l, tags, "field 20: queue", "queue:", f[19], strlen(f[19]), why);
            if (id < 0)
                return -1;
            drv_tagset_add(&job->req.all_of, id);
            drv_tagset_add(&r->label_set, id);
        }
    }
    if (!r->have_first) {
        r->have_first = true;
        r->first_submit = v[1];
    }
    job->arrival = v[1] - r->first_submit;
    if (job->arrival < 0)
        return drv_lines_error(l, why, "submit time %s is before the first job's (%.17g)", f[1],
                               r->first_submit);
    return 1;
}

/* Reads the Alea machines file into r->clusters. Blank lines and lines starting with
 * ';' or '#' are skipped; any other line that is not "id name nodes cpus speed ram_kb"
 * with positive numbers fails the read (a fleet with a cluster missing would mislead). */
static int swf_read_machines(swf_reader *r, const char *path, drv_error *err)
{
    drv_lines l;
    if (drv_lines_open(&l, path, err) < 0)
        return -1;
    size_t cap = 0;
    int rc;
    drv_tag_table *scratch = drv_tag_table_new();
    while ((rc = drv_lines_next(&l, err)) > 0) {
        char *f[8];
        size_t n = drv_split_ws(l.buf, f, 8);
        if (n == 0 || f[0][0] == ';' || f[0][0] == '#')
            continue;
        if (n != 6) {
            rc = drv_lines_error(&l, err,
                                 "%zu fields, expected 6 (id name nodes cpus_per_node "
                                 "speed ram_kb)",
                                 n);
            break;
        }
        double num[6];
        int bad = 0;
        for (int i = 2; i < 6 && !bad; i++) {
            if (drv_parse_number(f[i], &num[i]) < 0 || num[i] <= 0 ||
                (i != 4 && num[i] != floor(num[i])) || num[i] > 1e15)
                bad = i + 1;
        }
        if (bad) {
            rc = drv_lines_error(&l, err, "field %d \"%s\" is not a positive number", bad,
                                 f[bad - 1]);
            break;
        }
        char tag[DRV_TAG_NAME_MAX + 1];
        drv_error e;
        snprintf(tag, sizeof tag, "cl_%s", f[1]);
        if (strlen(f[1]) >= sizeof r->clusters[0].name - 1 ||
            drv_tag_intern(scratch, tag, &e) < 0) {
            rc = drv_lines_error(&l, err, "cluster name \"%s\" must be a short lower-case name",
                                 f[1]);
            break;
        }
        if (num[2] > 100000 || num[3] > SWF_MAX_CORES) {
            rc = drv_lines_error(&l, err, "cluster \"%s\": %s nodes of %s cpus is out of range",
                                 f[1], f[2], f[3]);
            break;
        }
        if (r->n_clusters == cap) {
            cap = cap ? cap * 2 : 4;
            r->clusters = drv_xrealloc(r->clusters, cap * sizeof *r->clusters);
        }
        swf_cluster *c = &r->clusters[r->n_clusters++];
        memset(c, 0, sizeof *c);
        snprintf(c->name, sizeof c->name, "%s", f[1]);
        c->nodes = (uint32_t)num[2];
        c->cpus = (uint32_t)num[3];
        c->speed = (float)num[4];
        c->ram_mb = (uint64_t)(num[5] / 1024.0);
        if (c->ram_mb > r->max_node_mb)
            r->max_node_mb = c->ram_mb;
    }
    drv_tag_table_free(scratch);
    drv_lines_close(&l);
    return rc < 0 ? -1 : 0;
}

/* Interns name into w's table and adds it to caps; -1 with err when the table is full. */
static int swf_offer(drv_workload *w, drv_capabilities *caps, const char *name, drv_error *err)
{
    int id = drv_tag_intern(w->tags, name, err);
    if (id < 0)
        return -1;
    drv_tagset_add(&caps->tags, id);
    return 0;
}

/* Adds one worker per node of the machines file (see the file comment for the tags). */
static int swf_add_workers(swf_reader *r, drv_workload *w, drv_error *err)
{
    r->first_worker = w->n_workers;
    for (size_t c = 0; c < r->n_clusters; c++) {
        const swf_cluster *cl = &r->clusters[c];
        drv_sim_worker wk;
        memset(&wk, 0, sizeof wk);
        drv_capabilities_init(&wk.caps);
        char tag[DRV_TAG_NAME_MAX + 1];
        drv_tagset_add(&wk.caps.tags, DRV_TAG_CPU);
        snprintf(tag, sizeof tag, "cl_%s", cl->name);
        if (swf_offer(w, &wk.caps, tag, err) < 0)
            return -1;
        snprintf(tag, sizeof tag, "nodecpus%u", cl->cpus);
        if (swf_offer(w, &wk.caps, tag, err) < 0)
            return -1;
        for (size_t i = 0; i < sizeof SWF_SITE_PROPERTIES / sizeof SWF_SITE_PROPERTIES[0]; i++) {
            if (swf_offer(w, &wk.caps, SWF_SITE_PROPERTIES[i], err) < 0)
                return -1;
        }
        wk.caps.cpu_cores = cl->cpus;
        wk.caps.memory_mb = cl->ram_mb;
        wk.slots = cl->cpus;
        wk.speed = cl->speed;
        for (int f = 0; f < DRV_FAMILY_MAX; f++)
            wk.family_speed[f] = 1.0f;
        wk.join_at = 0;
        wk.leave_at = -1;
        snprintf(wk.kind, sizeof wk.kind, "%s", cl->name);
        for (uint32_t i = 1; i <= cl->nodes; i++) {
            snprintf(wk.name, sizeof wk.name, "%s-%u", cl->name, i);
            drv_workload_add_worker(w, &wk);
        }
    }
    return 0;
}

/* One pass over the job lines. In the check pass (r->w NULL) tags go to a scratch table
 * and nothing is counted; in the build pass tests are added to r->w and bad lines are
 * counted in opt. Returns 0, or -1 with err (strict bad line, damaged file, full tags). */
static int swf_pass(swf_reader *r, drv_error *err)
{
    drv_workload *w = r->w;
    drv_tag_table *tags = w ? w->tags : drv_tag_table_new();
    size_t added = 0;
    int rc = 0;
    r->n_fields = 0;
    r->have_first = false;
    drv_tagset_clear(&r->label_set);
    while (r->opt->max_tests == 0 || added < r->opt->max_tests) {
        rc = drv_lines_next(&r->lines, err);
        if (rc <= 0)
            break;
        swf_job job;
        drv_error why;
        int got = swf_parse(r, tags, &job, &why);
        if (got < 0) {
            rc = drv_trace_bad_line(r->opt, w != NULL, &why, err);
            if (rc < 0)
                break;
            continue;
        }
        if (got == 0)
            continue;
        added++;
        if (!w)
            continue;
        drv_sim_test t;
        memset(&t, 0, sizeof t);
        t.id = w->n_tests;
        t.name = job.name;
        t.arrival_s = job.arrival;
        t.duration_s = job.run;
        t.req = job.req;
        t.priority = SWF_PRIORITY;
        t.family = 0;
        t.max_retries = SWF_RETRIES;
        drv_workload_add_test(w, &t);
    }
    if (!w)
        drv_tag_table_free(tags);
    return rc < 0 ? -1 : 0;
}

int drv_trace_swf_read(const char *path, const char *machines_path, drv_workload *w,
                       drv_trace_options *opt, drv_error *err)
{
    drv_trace_options defaults;
    opt = drv_trace_options_begin(opt, &defaults);
    if (!w)
        return drv_error_set(err, "SWF trace %s: no workload to read into", path ? path : "");
    swf_reader r;
    memset(&r, 0, sizeof r);
    r.opt = opt;
    if (machines_path && swf_read_machines(&r, machines_path, err) < 0) {
        free(r.clusters);
        return -1;
    }
    if (drv_lines_open(&r.lines, path, err) < 0) {
        free(r.clusters);
        return -1;
    }
    size_t n_tests = w->n_tests, n_workers = w->n_workers;
    int rc = swf_pass(&r, err);
    if (rc == 0)
        rc = drv_lines_rewind(&r.lines, err);
    if (rc == 0) {
        r.w = w;
        rc = swf_add_workers(&r, w, err);
    }
    if (rc == 0)
        rc = swf_pass(&r, err);
    if (rc == 0) {
        for (size_t i = r.first_worker; i < w->n_workers; i++) {
            for (int k = 0; k < DRV_TAGS_MAX / 64; k++)
                w->workers[i].caps.tags.w[k] |= r.label_set.w[k];
        }
        drv_trace_note_source(w, path);
        if (machines_path)
            drv_trace_note_source(w, machines_path);
    } else {
        drv_trace_rollback(w, n_tests, n_workers);
        if (!opt->strict) {
            opt->skipped = 0;
            opt->first_skip[0] = '\0';
        }
    }
    drv_lines_close(&r.lines);
    free(r.clusters);
    return rc;
}
