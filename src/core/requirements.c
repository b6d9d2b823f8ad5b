/* requirements.c - matching a test's requirements against a worker's capabilities,
 * describing what is unmet, and parsing version numbers. */
#include "core/requirements.h"

#include <stdio.h>

/* Makes r the requirement every worker meets: all minimums 0, all tag sets empty. */
void drv_requirements_init(drv_requirements *r)
{
    memset(r, 0, sizeof *r);
}

/* Makes c a worker with nothing: no cores, memory, GPUs or tags. */
void drv_capabilities_init(drv_capabilities *c)
{
    memset(c, 0, sizeof *c);
}

/* True when a and b ask for exactly the same things (field by field). */
bool drv_requirements_equal(const drv_requirements *a, const drv_requirements *b)
{
    return a->cpu_cores == b->cpu_cores && a->gpu_count == b->gpu_count &&
           a->memory_mb == b->memory_mb && a->gpu_memory_mb == b->gpu_memory_mb &&
           a->cuda_cc == b->cuda_cc && a->driver_version == b->driver_version &&
           drv_tagset_equal(&a->all_of, &b->all_of) && drv_tagset_equal(&a->any_of, &b->any_of) &&
           drv_tagset_equal(&a->none_of, &b->none_of);
}

/* True when a and b offer exactly the same things (field by field). */
bool drv_capabilities_equal(const drv_capabilities *a, const drv_capabilities *b)
{
    return a->cpu_cores == b->cpu_cores && a->gpu_count == b->gpu_count &&
           a->memory_mb == b->memory_mb && a->gpu_memory_mb == b->gpu_memory_mb &&
           a->cuda_cc == b->cuda_cc && a->driver_version == b->driver_version &&
           drv_tagset_equal(&a->tags, &b->tags);
}

/* Folds v into the running hash h (splitmix64 finaliser over h ^ v). */
static uint64_t hash_mix(uint64_t h, uint64_t v)
{
    uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t hash_tagset(uint64_t h, const drv_tagset *s)
{
    for (int i = 0; i < DRV_TAGS_MAX / 64; i++)
        h = hash_mix(h, s->w[i]);
    return h;
}

/* A hash of every field; equal requirements hash equal. */
uint64_t drv_requirements_hash(const drv_requirements *r)
{
    uint64_t h = 0x52455155ull; /* "REQU" */
    h = hash_mix(h, r->cpu_cores);
    h = hash_mix(h, r->gpu_count);
    h = hash_mix(h, r->memory_mb);
    h = hash_mix(h, r->gpu_memory_mb);
    h = hash_mix(h, r->cuda_cc);
    h = hash_mix(h, r->driver_version);
    h = hash_tagset(h, &r->all_of);
    h = hash_tagset(h, &r->any_of);
    return hash_tagset(h, &r->none_of);
}

/* A hash of every field; equal capabilities hash equal. */
uint64_t drv_capabilities_hash(const drv_capabilities *c)
{
    uint64_t h = 0x43415053ull; /* "CAPS" */
    h = hash_mix(h, c->cpu_cores);
    h = hash_mix(h, c->gpu_count);
    h = hash_mix(h, c->memory_mb);
    h = hash_mix(h, c->gpu_memory_mb);
    h = hash_mix(h, c->cuda_cc);
    h = hash_mix(h, c->driver_version);
    return hash_tagset(h, &c->tags);
}

/* Checks the predicates in the order of drv_unmet and returns the first that fails.
 * *tag gets the offending tag for TAG_MISSING (the lowest missing id of all_of) and
 * TAG_FORBIDDEN (the lowest present id of none_of); -1 otherwise, including for
 * TAG_NONE_OF, where no single tag is to blame. A minimum of 0 always holds. */
drv_unmet drv_requirements_check(const drv_requirements *req, const drv_capabilities *caps,
                                 int *tag)
{
    int dummy;
    if (!tag)
        tag = &dummy;
    *tag = -1;
    if (caps->cpu_cores < req->cpu_cores)
        return DRV_UNMET_CPU;
    if (caps->memory_mb < req->memory_mb)
        return DRV_UNMET_MEMORY;
    if (caps->gpu_count < req->gpu_count)
        return DRV_UNMET_GPU_COUNT;
    if (caps->gpu_memory_mb < req->gpu_memory_mb)
        return DRV_UNMET_GPU_MEMORY;
    if (caps->cuda_cc < req->cuda_cc)
        return DRV_UNMET_CUDA_CC;
    if (caps->driver_version < req->driver_version)
        return DRV_UNMET_DRIVER;
    int missing = drv_tagset_first_missing(&req->all_of, &caps->tags);
    if (missing >= 0) {
        *tag = missing;
        return DRV_UNMET_TAG_MISSING;
    }
    if (!drv_tagset_empty(&req->any_of) && !drv_tagset_intersects(&req->any_of, &caps->tags))
        return DRV_UNMET_TAG_NONE_OF;
    int forbidden = drv_tagset_first_common(&req->none_of, &caps->tags);
    if (forbidden >= 0) {
        *tag = forbidden;
        return DRV_UNMET_TAG_FORBIDDEN;
    }
    return DRV_UNMET_NONE;
}

/* Writes "16 GiB" when mb is a whole number of GiB, else "1500 MiB". */
static void format_mb(uint64_t mb, char *buf, size_t len)
{
    if (mb > 0 && mb % 1024 == 0)
        snprintf(buf, len, "%llu GiB", (unsigned long long)(mb / 1024));
    else
        snprintf(buf, len, "%llu MiB", (unsigned long long)mb);
}

/* Writes "the tag a" or "the tags a, b" for set into buf. */
static void format_tags(const drv_tag_table *tags, const drv_tagset *set, char *buf, size_t len)
{
    size_t used =
        (size_t)snprintf(buf, len, "%s", drv_tagset_count(set) == 1 ? "the tag" : "the tags");
    bool first = true;
    for (int id = 0; id < DRV_TAGS_MAX && used < len; id++) {
        if (!drv_tagset_has(set, id))
            continue;
        int w = snprintf(buf + used, len - used, "%s%s", first ? " " : ", ",
                         tags ? drv_tag_name(tags, id) : "?");
        first = false;
        if (w < 0)
            return;
        used += (size_t)w;
    }
}

/* Completes "no worker in the fleet has ..." for predicate `what` of req:
 *   CPU          "at least 16 cores"
 *   MEMORY       "at least 64 GiB of memory"
 *   GPU_COUNT    "at least 2 GPUs"
 *   GPU_MEMORY   "a GPU with at least 24 GiB of memory"
 *   CUDA_CC      "CUDA compute capability 8.0 or newer"
 *   DRIVER       "driver version 535.104.5 or newer"
 *   TAG_MISSING  "the tag webgpu" (tag; all of all_of when tag is -1)
 *   TAG_NONE_OF  "one of the tags cuda, rocm" ("the tag cuda" when there is one)
 *   TAG_FORBIDDEN "the tag edge" (tag; all of none_of when tag is -1): the tag the
 *                test must not meet; drv_unmet_sentence() words it the other way round.
 * Memory is shown in GiB when a whole number of GiB, else in MiB. DRV_UNMET_NONE
 * gives "everything it needs"; an out-of-range value gives "an unknown requirement".
 * tags may be NULL (names print as "?"). buf is always NUL-terminated when len > 0. */
void drv_unmet_describe(drv_unmet what, const drv_requirements *req, int tag,
                        const drv_tag_table *tags, char *buf, size_t len)
{
    char part[32]; /* a size or a version: "18446744073709551615 MiB" fits */
    if (len == 0)
        return;
    switch (what) {
    case DRV_UNMET_NONE:
        snprintf(buf, len, "everything it needs");
        return;
    case DRV_UNMET_CPU:
        snprintf(buf, len, "at least %u %s", (unsigned)req->cpu_cores,
                 req->cpu_cores == 1 ? "core" : "cores");
        return;
    case DRV_UNMET_MEMORY:
        format_mb(req->memory_mb, part, sizeof part);
        snprintf(buf, len, "at least %s of memory", part);
        return;
    case DRV_UNMET_GPU_COUNT:
        snprintf(buf, len, "at least %u %s", (unsigned)req->gpu_count,
                 req->gpu_count == 1 ? "GPU" : "GPUs");
        return;
    case DRV_UNMET_GPU_MEMORY:
        format_mb(req->gpu_memory_mb, part, sizeof part);
        snprintf(buf, len, "a GPU with at least %s of memory", part);
        return;
    case DRV_UNMET_CUDA_CC:
        snprintf(buf, len, "CUDA compute capability %u.%u or newer", (unsigned)req->cuda_cc / 10,
                 (unsigned)req->cuda_cc % 10);
        return;
    case DRV_UNMET_DRIVER:
        drv_version_format(req->driver_version, part, sizeof part);
        snprintf(buf, len, "driver version %s or newer", part);
        return;
    case DRV_UNMET_TAG_MISSING:
    case DRV_UNMET_TAG_FORBIDDEN: {
        const drv_tagset *all = what == DRV_UNMET_TAG_MISSING ? &req->all_of : &req->none_of;
        drv_tagset one;
        if (tag >= 0 && tag < DRV_TAGS_MAX) {
            drv_tagset_clear(&one);
            drv_tagset_add(&one, tag);
            all = &one;
        }
        format_tags(tags, all, buf, len);
        return;
    }
    case DRV_UNMET_TAG_NONE_OF: {
        int w = snprintf(buf, len, "%s", drv_tagset_count(&req->any_of) > 1 ? "one of " : "");
        if (w >= 0 && (size_t)w < len)
            format_tags(tags, &req->any_of, buf + w, len - (size_t)w);
        return;
    }
    case DRV_UNMET_COUNT:
        break;
    }
    snprintf(buf, len, "an unknown requirement (%d)", (int)what);
}

/* Parses up to max_parts dot-separated decimal components of s into parts, each at
 * most limit[i]. Returns the number of parts, or -1 with err naming `what` and s. */
static int parse_dotted(const char *what, const char *s, uint32_t *parts, int max_parts,
                        const uint32_t *limit, drv_error *err)
{
    if (!s)
        return drv_error_set(err, "%s: missing (NULL)", what);
    if (*s == '\0')
        return drv_error_set(err, "%s: empty", what);
    const char *p = s;
    int n = 0;
    for (;;) {
        if (n == max_parts)
            return drv_error_set(err, "%s \"%s\": more than %d dot-separated numbers", what, s,
                                 max_parts);
        if (*p < '0' || *p > '9')
            return drv_error_set(err, "%s \"%s\": expected a digit at position %zu", what, s,
                                 (size_t)(p - s) + 1);
        uint64_t v = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (uint64_t)(*p - '0');
            if (v > limit[n])
                return drv_error_set(err, "%s \"%s\": number %d is larger than %u", what, s, n + 1,
                                     (unsigned)limit[n]);
            p++;
        }
        parts[n++] = (uint32_t)v;
        if (*p == '\0')
            return n;
        if (*p != '.')
            return drv_error_set(err, "%s \"%s\": unexpected '%c' at position %zu", what, s, *p,
                                 (size_t)(p - s) + 1);
        p++;
    }
}

/* Parses "535", "535.104", "535.104.05" or "12.2" into major*1000000 + minor*1000 +
 * patch (major <= 4293, minor and patch <= 999). Anything else (NULL, empty, blanks,
 * signs, letters, empty or extra components, numbers too large) gives -1 with err
 * naming the input and the problem; *out is then unchanged. */
int drv_version_parse(const char *s, uint32_t *out, drv_error *err)
{
    static const uint32_t limit[3] = {4293, 999, 999};
    uint32_t parts[3] = {0, 0, 0};
    if (parse_dotted("driver version", s, parts, 3, limit, err) < 0)
        return -1;
    *out = parts[0] * 1000000u + parts[1] * 1000u + parts[2];
    return 0;
}

/* Parses a CUDA compute capability "8.6" (major 1..99, one minor digit) or its x10
 * form "86" (10..999) into 86. Anything else (NULL, empty, "8", "8.10", "0.5",
 * letters) gives -1 with err naming the input; *out is then unchanged. */
int drv_cuda_cc_parse(const char *s, uint32_t *out, drv_error *err)
{
    static const uint32_t limit[2] = {999, 999};
    uint32_t parts[2] = {0, 0};
    int n = parse_dotted("CUDA compute capability", s, parts, 2, limit, err);
    if (n < 0)
        return -1;
    if (n == 2) {
        if (parts[0] < 1 || parts[0] > 99 || strchr(s, '.')[2] != '\0')
            return drv_error_set(err,
                                 "CUDA compute capability \"%s\": expected MAJOR.MINOR with "
                                 "MAJOR 1..99 and one MINOR digit, e.g. 8.6",
                                 s);
        *out = parts[0] * 10 + parts[1];
        return 0;
    }
    if (parts[0] < 10)
        return drv_error_set(err,
                             "CUDA compute capability \"%s\": ambiguous; write it as MAJOR.MINOR "
                             "(8.6) or as MAJOR*10+MINOR (86)",
                             s);
    *out = parts[0];
    return 0;
}

/* See requirements.h. */
void drv_cuda_cc_format(uint32_t cc, char *buf, size_t len)
{
    snprintf(buf, len, "%u.%u", (unsigned)(cc / 10), (unsigned)(cc % 10));
}

/* See requirements.h: trailing zero components are left out. */
void drv_version_format(uint32_t v, char *buf, size_t len)
{
    unsigned major = v / 1000000, minor = v / 1000 % 1000, patch = v % 1000;
    if (patch)
        snprintf(buf, len, "%u.%u.%u", major, minor, patch);
    else if (minor)
        snprintf(buf, len, "%u.%u", major, minor);
    else
        snprintf(buf, len, "%u", major);
}

/* A whole clause for an unmet predicate that no worker of the fleet meets:
 * "no worker in the fleet has a GPU with at least 24 GiB of memory", or for a forbidden
 * tag "every worker in the fleet that could run it has the tag edge, which it must not
 * run with". */
void drv_unmet_sentence(drv_unmet what, const drv_requirements *req, int tag,
                        const drv_tag_table *tags, char *buf, size_t len)
{
    char part[DRV_ERROR_MAX];
    if (len == 0)
        return;
    drv_unmet_describe(what, req, tag, tags, part, sizeof part);
    if (what == DRV_UNMET_TAG_FORBIDDEN)
        snprintf(buf, len,
                 "every worker in the fleet that could run it has %s, which it must not run with",
                 part);
    else
        snprintf(buf, len, "no worker in the fleet has %s", part);
}
