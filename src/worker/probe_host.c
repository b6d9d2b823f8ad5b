/* probe_host.c - the host part of the probe (cores, memory, OS, architecture, host
 * name), labels and slots, drv_probe_run() which calls the GPU and browser probes, and
 * the JSON `drover worker --probe` prints. See probe.h for where each figure comes from. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "worker/probe.h"

#define TEXT_MAX (1u << 20) /* /proc and /sys files read by the probe are far smaller */

char *drv_probe_read_text(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    /* Owned by the caller on success. /proc files report size 0, so read until EOF. */
    size_t cap = 4096, n = 0;
    char *buf = drv_xmalloc(cap);
    while (n < max) {
        if (n + 1 >= cap) {
            cap *= 2;
            buf = drv_xrealloc(buf, cap);
        }
        size_t want = cap - 1 - n;
        if (want > max - n)
            want = max - n;
        size_t k = fread(buf + n, 1, want, f);
        n += k;
        if (k == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        fclose(f);
        errno = e ? e : EIO;
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    return buf;
}

void drv_probe_warn(drv_probe_result *r, const char *fmt, ...)
{
    if (r->n_warnings >= DRV_PROBE_WARNINGS_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->warnings[r->n_warnings], sizeof r->warnings[0], fmt, ap);
    va_end(ap);
    r->n_warnings++;
}

bool drv_probe_which(const char *search_path, const char *name, char *buf, size_t len)
{
    if (len > 0)
        buf[0] = '\0';
    if (!name || !*name || len == 0)
        return false;
    if (!search_path)
        search_path = getenv("PATH");
    if (!search_path)
        search_path = "/usr/bin:/bin";
    const char *p = search_path;
    while (*p) {
        const char *end = strchr(p, ':');
        size_t dlen = end ? (size_t)(end - p) : strlen(p);
        if (dlen > 0) {
            int w = snprintf(buf, len, "%.*s/%s", (int)dlen, p, name);
            struct stat st;
            if (w > 0 && (size_t)w < len && stat(buf, &st) == 0 && S_ISREG(st.st_mode) &&
                access(buf, X_OK) == 0)
                return true;
        }
        if (!end)
            break;
        p = end + 1;
    }
    buf[0] = '\0';
    return false;
}

int drv_probe_parse_meminfo(const char *text, uint64_t *mb, drv_error *err)
{
    if (!text)
        return drv_error_set(err, "meminfo: no text");
    for (const char *line = text; line && *line;) {
        if (strncmp(line, "MemTotal:", 9) == 0) {
            char *end = NULL;
            errno = 0;
            unsigned long long kb = strtoull(line + 9, &end, 10);
            while (end && *end == ' ')
                end++;
            if (errno != 0 || end == line + 9 || kb == 0 || strncmp(end, "kB", 2) != 0)
                return drv_error_set(err, "meminfo: MemTotal line \"%.*s\" is not \"N kB\"",
                                     (int)strcspn(line, "\n"), line);
            *mb = kb / 1024;
            return 0;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return drv_error_set(err, "meminfo: no MemTotal line");
}

/* The directory of this process's cgroup (v2) under sys_root, from PROC/self/cgroup's
 * "0::/path" line, into buf. Returns false when there is no v2 entry. */
static bool cgroup_dir(const char *proc_root, const char *sys_root, char *buf, size_t len)
{
    char path[DRV_PROBE_PATH_MAX];
    snprintf(path, sizeof path, "%s/self/cgroup", proc_root);
    char *text = drv_probe_read_text(path, TEXT_MAX);
    if (!text)
        return false;
    bool found = false;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        int n = nl ? (int)(nl - line) : (int)strlen(line);
        if (strncmp(line, "0::", 3) == 0) {
            int w = snprintf(buf, len, "%s/fs/cgroup%.*s", sys_root, n - 3, line + 3);
            found = w > 0 && (size_t)w < len;
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    return found;
}

/* Reads one number from a cgroup file; false for "max", a missing file or junk. */
static bool cgroup_number(const char *dir, const char *file, uint64_t *a, uint64_t *b)
{
    char path[DRV_PROBE_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    char *text = drv_probe_read_text(path, 4096);
    if (!text)
        return false;
    unsigned long long x = 0, y = 0;
    int n = sscanf(text, "%llu %llu", &x, &y);
    free(text);
    if (n < 1 || x == 0)
        return false;
    *a = x;
    if (b)
        *b = n == 2 ? y : 0;
    return true;
}

/* Counts the CPUs this process may run on, capped by a cgroup quota. Never below 1. */
static uint32_t probe_cores(const char *cg)
{
    long n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = CPU_COUNT(&set);
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n <= 0)
        n = 1;
    uint64_t quota = 0, period = 0;
    if (cg && cgroup_number(cg, "cpu.max", &quota, &period) && period > 0) {
        long q = (long)((quota + period - 1) / period);
        if (q >= 1 && q < n)
            n = q;
    }
    return (uint32_t)n;
}

/* Copies the labels into tags and r->caps.tags. Returns -1 with err on a bad label. */
static int add_labels(drv_probe_result *r, char *const *labels, drv_tag_table *tags, drv_error *err)
{
    for (size_t i = 0; labels && labels[i]; i++) {
        int id = drv_tag_intern(tags, labels[i], err);
        if (id < 0)
            return drv_error_prefix(err, "label \"%s\"", labels[i]);
        drv_tagset_add(&r->caps.tags, id);
        drv_tagset_add(&r->labels, id);
    }
    return 0;
}

int drv_probe_run(drv_probe_result *out, const drv_probe_options *opt, drv_tag_table *tags,
                  drv_error *err)
{
    static const drv_probe_options defaults;
    if (!opt)
        opt = &defaults;
    memset(out, 0, sizeof *out);
    drv_capabilities_init(&out->caps);
    if (!tags)
        return drv_error_set(err, "probe: no tag table given");
    if (opt->slots > DRV_PROBE_SLOTS_MAX)
        return drv_error_set(err, "slots: must be 1..%d, got %" PRIu32, DRV_PROBE_SLOTS_MAX,
                             opt->slots);
    const char *proc = opt->proc_root ? opt->proc_root : "/proc";
    const char *sys = opt->sys_root ? opt->sys_root : "/sys";

    /* Labels first: a bad command line is reported before any slow probing. */
    if (add_labels(out, opt->labels, tags, err) < 0)
        return -1;

    char cg[DRV_PROBE_PATH_MAX];
    bool have_cg = cgroup_dir(proc, sys, cg, sizeof cg);
    out->caps.cpu_cores = probe_cores(have_cg ? cg : NULL);

    char path[DRV_PROBE_PATH_MAX];
    snprintf(path, sizeof path, "%s/meminfo", proc);
    char *meminfo = drv_probe_read_text(path, TEXT_MAX);
    if (!meminfo)
        return drv_error_set(err, "memory: cannot read %s: %s", path, strerror(errno));
    int rc = drv_probe_parse_meminfo(meminfo, &out->caps.memory_mb, err);
    free(meminfo);
    if (rc < 0)
        return drv_error_prefix(err, "%s", path);
    uint64_t limit = 0;
    if (have_cg && cgroup_number(cg, "memory.max", &limit, NULL) &&
        limit / (1024 * 1024) < out->caps.memory_mb)
        out->caps.memory_mb = limit / (1024 * 1024);

    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(out->os, sizeof out->os, "%.*s", (int)sizeof out->os - 1, u.sysname);
        snprintf(out->os_release, sizeof out->os_release, "%.*s", (int)sizeof out->os_release - 1,
                 u.release);
        snprintf(out->arch, sizeof out->arch, "%.*s", (int)sizeof out->arch - 1, u.machine);
    }
    if (gethostname(out->hostname, sizeof out->hostname - 1) != 0)
        out->hostname[0] = '\0';

    out->slots = opt->slots ? opt->slots : out->caps.cpu_cores;
    drv_tagset_add(&out->caps.tags, DRV_TAG_CPU);
    if (!opt->no_detect) {
        drv_probe_gpus(out, opt);
        drv_probe_browsers(out, opt);
    }
    return 0;
}

/* A JSON array of the names of the tags in set, in id order. */
static json_t *tags_json(const drv_tagset *set, const drv_tag_table *tags)
{
    json_t *a = json_array();
    for (int id = 0; id < DRV_TAGS_MAX; id++)
        if (drv_tagset_has(set, id))
            json_array_append_new(a, json_string(drv_tag_name(tags, id)));
    return a;
}

json_t *drv_probe_to_json(const drv_probe_result *r, const drv_tag_table *tags)
{
    const drv_capabilities *c = &r->caps;
    json_t *gpus = json_array();
    for (unsigned i = 0; i < r->n_gpus; i++) {
        const drv_gpu_info *g = &r->gpus[i];
        /* cuda_cc as the requirements codec writes it everywhere ("8.6"; null: none). */
        char cc[16];
        drv_cuda_cc_format(g->cuda_cc, cc, sizeof cc);
        json_array_append_new(gpus,
                              json_pack("{s:s, s:s, s:I, s:o, s:s, s:s}", "vendor",
                                        g->vendor == DRV_GPU_NVIDIA ? "nvidia" : "amd", "name",
                                        g->name, "memory_mb", (json_int_t)g->memory_mb, "cuda_cc",
                                        g->cuda_cc ? json_string(cc) : json_null(), "driver",
                                        g->driver, "source", g->source ? g->source : ""));
    }
    json_t *browsers = json_array();
    for (unsigned i = 0; i < r->n_browsers; i++)
        json_array_append_new(browsers, json_pack("{s:s, s:s}", "name",
                                                  drv_tag_name(tags, r->browsers[i].tag), "path",
                                                  r->browsers[i].path));
    json_t *warnings = json_array();
    for (unsigned i = 0; i < r->n_warnings; i++)
        json_array_append_new(warnings, json_string(r->warnings[i]));
    char cc[16], version[32];
    drv_cuda_cc_format(c->cuda_cc, cc, sizeof cc);
    drv_version_format(c->driver_version, version, sizeof version);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, "
                     "s:o, s:o}",
                     "hostname", r->hostname, "os", r->os, "os_release", r->os_release, "arch",
                     r->arch, "cpu_cores", (json_int_t)c->cpu_cores, "memory_mb",
                     (json_int_t)c->memory_mb, "slots", (json_int_t)r->slots, "gpu_count",
                     (json_int_t)c->gpu_count, "gpu_memory_mb", (json_int_t)c->gpu_memory_mb,
                     "cuda_cc", c->cuda_cc ? json_string(cc) : json_null(), "driver_version",
                     c->driver_version ? json_string(version) : json_null(), "tags",
                     tags_json(&c->tags, tags), "labels", tags_json(&r->labels, tags), "gpus", gpus,
                     "browsers", browsers, "warnings", warnings);
}
