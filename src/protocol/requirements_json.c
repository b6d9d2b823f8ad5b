/* requirements_json.c - the one codec of requirements and capabilities as JSON: what a
 * submission, the REST API, the store and the demo's files write and read.
 *
 * One representation everywhere: numbers as integers ("cpu", "memory_mb", "gpus",
 * "gpu_memory_mb"), the CUDA compute capability and the driver version as the strings a
 * user writes ("8.6", "535.104.5"), tags as arrays of names ("all_of", "any_of",
 * "none_of"; a worker's "tags"). Readers also take the spellings a person writes
 * (memory_gb, tags for all_of, browser, backend; a fleet file's cores), and with
 * DRV_RES_STORED the integer forms (cuda_cc 86) that store files written before this
 * codec hold, so those files still load.
 *
 * New tag names are not interned while reading: they are staged (drv_tag_stage) and
 * interned only when the caller commits, so input that turns out bad leaves the tag
 * table as it was. */
#include "protocol/protocol.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- staged tags ----------------------------------------------------------------- */

/* Gives name the id it has, or will have once committed, in *id. Returns 0, or -1 with
 * err "path: ..." for an invalid name or one that would not fit in the table. */
int drv_tag_stage_id(drv_tag_stage *st, const char *name, const char *path, int *id, drv_error *err)
{
    int real = drv_tag_lookup(st->tags, name);
    if (real >= 0) {
        *id = real;
        return 0;
    }
    if (!st->fresh)
        st->fresh = drv_tag_table_new();
    int f = drv_tag_intern(st->fresh, name, err);
    if (f < 0)
        return drv_error_prefix(err, "%s", path);
    int provisional = drv_tag_count(st->tags) + (f - DRV_TAG_WELL_KNOWN_COUNT);
    if (f < DRV_TAG_WELL_KNOWN_COUNT || provisional >= DRV_TAGS_MAX)
        return drv_error_set(err,
                             "%s: tag \"%s\" does not fit: the tag table holds %d of %d tags "
                             "and this input adds %d more",
                             path, name, drv_tag_count(st->tags), DRV_TAGS_MAX,
                             drv_tag_count(st->fresh) - DRV_TAG_WELL_KNOWN_COUNT);
    *id = provisional;
    return 0;
}

/* Interns the staged names into the real table, in staging order so each gets its
 * provisional id. Returns 0, or -1 with err if the table changed under the stage. */
int drv_tag_stage_commit(drv_tag_stage *st, drv_error *err)
{
    if (!st->fresh)
        return 0;
    int base = drv_tag_count(st->tags);
    for (int f = DRV_TAG_WELL_KNOWN_COUNT; f < drv_tag_count(st->fresh); f++) {
        const char *name = drv_tag_name(st->fresh, f);
        int id = drv_tag_intern(st->tags, name, err);
        if (id != base + (f - DRV_TAG_WELL_KNOWN_COUNT))
            return drv_error_set(err, "tag \"%s\": the tag table changed while parsing", name);
    }
    return 0;
}

void drv_tag_stage_free(drv_tag_stage *st)
{
    drv_tag_table_free(st->fresh);
    st->fresh = NULL;
}

/* ---- requirements ------------------------------------------------------------------ */

/* Reads a version-like field (string, or a number written as one) at key into *out
 * with parse(). Returns 1, 0 when absent, -1 with err. */
static int read_dotted(const json_t *o, const char *path, const char *key, unsigned flags,
                       int (*parse)(const char *, uint32_t *, drv_error *), const char *example,
                       uint32_t *out, drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX];
    drv_json_path_key(sub, path, key);
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    char text[64];
    if (json_is_string(v)) {
        const char *s = NULL;
        if (drv_json_string(o, path, key, DRV_JSON_NONEMPTY, 32, &s, err) < 0)
            return -1;
        snprintf(text, sizeof text, "%s", s);
    } else if ((flags & DRV_RES_STORED) && json_is_integer(v)) {
        /* What store files written before the one codec hold: the parsed form itself. */
        json_int_t i = json_integer_value(v);
        if (i < 0 || i > (json_int_t)UINT32_MAX)
            return drv_error_set(err, "%s: %" JSON_INTEGER_FORMAT " is out of range", sub, i);
        *out = (uint32_t)i;
        return 1;
    } else if (json_is_number(v)) {
        snprintf(text, sizeof text, "%g", json_number_value(v));
    } else {
        char got[64];
        drv_json_describe(v, got, sizeof got);
        return drv_error_set(err, "%s: must be a string such as \"%s\", got %s", sub, example, got);
    }
    if (parse(text, out, err) < 0)
        return drv_error_prefix(err, "%s", sub);
    return 1;
}

/* Reads a memory amount given as key_mb (integer) or key_gb (number, GiB) into *out. */
static int read_memory(const json_t *o, const char *path, const char *mb_key, const char *gb_key,
                       uint64_t *out, drv_error *err)
{
    uint64_t mb = 0;
    double gb = 0;
    int has_mb = drv_json_uint(o, path, mb_key, 0, 0, (uint64_t)1 << 40, &mb, err);
    if (has_mb < 0)
        return -1;
    int has_gb = drv_json_number(o, path, gb_key, 0, 0, 1 << 30, &gb, err);
    if (has_gb < 0)
        return -1;
    if (has_mb && has_gb) {
        char sub[DRV_JSON_PATH_MAX];
        drv_json_path_key(sub, path, gb_key);
        return drv_error_set(err, "%s: give %s or %s, not both", sub, mb_key, gb_key);
    }
    if (has_mb)
        *out = mb;
    else if (has_gb)
        *out = (uint64_t)llround(gb * 1024);
    return 0;
}

/* Reads an array of tag names at key, staging each, into *set (added to it). */
static int read_tag_list(const json_t *o, const char *path, const char *key, drv_tag_stage *st,
                         drv_tagset *set, drv_error *err)
{
    char **names = NULL;
    int rc = drv_json_strv(o, path, key, 0, DRV_TAGS_MAX, DRV_STRING_MAX, &names, err);
    if (rc <= 0)
        return rc;
    char sub[DRV_JSON_PATH_MAX], item[DRV_JSON_PATH_MAX];
    drv_json_path_key(sub, path, key);
    for (size_t i = 0; names[i]; i++) {
        int id = -1;
        drv_json_path_index(item, sub, i);
        if (drv_tag_stage_id(st, names[i], item, &id, err) < 0) {
            drv_strv_free(names);
            return -1;
        }
        drv_tagset_add(set, id);
    }
    drv_strv_free(names);
    return 1;
}

/* Reads a single well-known tag (a browser or a back-end) at key into all_of. */
static int read_known_tag(const json_t *o, const char *path, const char *key, int first, int last,
                          const drv_tag_table *tags, drv_tagset *all_of, drv_error *err)
{
    const char *name = NULL;
    int rc = drv_json_string(o, path, key, 0, 64, &name, err);
    if (rc <= 0)
        return rc;
    int id = drv_tag_lookup(tags, name);
    if (id < first || id > last) {
        char sub[DRV_JSON_PATH_MAX], known[256];
        size_t used = 0;
        for (int k = first; k <= last; k++)
            used += (size_t)snprintf(known + used, sizeof known - used, "%s%s",
                                     k > first ? ", " : "", drv_tag_name(tags, k));
        drv_json_path_key(sub, path, key);
        return drv_error_set(err, "%s: unknown %s \"%.40s\" (known: %s)", sub, key, name, known);
    }
    drv_tagset_add(all_of, id);
    return 1;
}

/* Checks o's keys against own (NULL-terminated), the spellings its flags add (may be
 * NULL) and the caller's also_known (may be NULL). */
static int check_keys(const json_t *o, const char *path, const char *const *own,
                      const char *const *spellings, const char *const *also_known, drv_error *err)
{
    const char *known[48];
    size_t n = 0;
    for (size_t i = 0; own[i] && n < 47; i++)
        known[n++] = own[i];
    for (size_t i = 0; spellings && spellings[i] && n < 47; i++)
        known[n++] = spellings[i];
    for (size_t i = 0; also_known && also_known[i] && n < 47; i++)
        known[n++] = also_known[i];
    known[n] = NULL;
    return drv_json_check_keys(o, path, known, err);
}

/* Reads a count written under one of several names (NULL-terminated; the first is the
 * one the codec writes) into *out: not two of them. Returns 1, 0 when none is given, -1
 * with err. */
static int read_spelled_count(const json_t *o, const char *path, const char *const *names,
                              uint64_t max, uint32_t *out, drv_error *err)
{
    const char *given = NULL;
    for (size_t i = 0; names[i]; i++) {
        const json_t *v = json_object_get(o, names[i]);
        if (!v || json_is_null(v))
            continue;
        if (given) {
            char sub[DRV_JSON_PATH_MAX];
            drv_json_path_key(sub, path, names[i]);
            return drv_error_set(err, "%s: give %s or %s (the same number), not both", sub, given,
                                 names[i]);
        }
        given = names[i];
    }
    uint64_t u = 0;
    if (!given || drv_json_uint(o, path, given, 0, 0, max, &u, err) < 0)
        return given ? -1 : 0;
    *out = (uint32_t)u;
    return 1;
}

/* Reads cpu (or, where a person writes it, cores; in a hello, cpu_cores) at path. */
static int read_cpu(const json_t *o, const char *path, unsigned flags, uint32_t *out,
                    drv_error *err)
{
    const char *names[4] = {"cpu", NULL, NULL, NULL};
    size_t n = 1;
    if (!(flags & DRV_RES_STORED))
        names[n++] = "cores";
    if (flags & DRV_RES_HELLO)
        names[n++] = "cpu_cores";
    return read_spelled_count(o, path, names, 1u << 20, out, err) < 0 ? -1 : 0;
}

/* Reads gpus (in a hello also gpu_count) at path. */
static int read_gpus(const json_t *o, const char *path, unsigned flags, uint32_t *out,
                     drv_error *err)
{
    const char *names[3] = {"gpus", (flags & DRV_RES_HELLO) ? "gpu_count" : NULL, NULL};
    return read_spelled_count(o, path, names, 4096, out, err) < 0 ? -1 : 0;
}

/* Reads the members requirements and capabilities share. */
static int read_shared(const json_t *o, const char *path, unsigned flags, uint32_t *cpu,
                       uint32_t *gpus, uint64_t *memory_mb, uint64_t *gpu_memory_mb,
                       uint32_t *cuda_cc, uint32_t *driver_version, drv_error *err)
{
    if (read_cpu(o, path, flags, cpu, err) < 0 || read_gpus(o, path, flags, gpus, err) < 0 ||
        read_memory(o, path, "memory_mb", "memory_gb", memory_mb, err) < 0 ||
        read_memory(o, path, "gpu_memory_mb", "gpu_memory_gb", gpu_memory_mb, err) < 0 ||
        read_dotted(o, path, "cuda_cc", flags, drv_cuda_cc_parse, "8.6", cuda_cc, err) < 0 ||
        read_dotted(o, path, "driver_version", flags, drv_version_parse, "535.104.05",
                    driver_version, err) < 0)
        return -1;
    return 0;
}

/* Checks that o is an object. */
static int need_object(const json_t *o, const char *path, drv_error *err)
{
    if (json_is_object(o))
        return 0;
    char got[64];
    drv_json_describe(o, got, sizeof got);
    return drv_error_set(err, "%s: must be an object, got %s", path, got);
}

/* See protocol.h. */
int drv_requirements_read(const json_t *o, const char *path, unsigned flags,
                          const char *const *also_known, drv_tag_stage *st, drv_requirements *r,
                          drv_error *err)
{
    static const char *const known[] = {
        "cpu",           "cores",   "memory_mb",      "memory_gb", "gpus",   "gpu_memory_mb",
        "gpu_memory_gb", "cuda_cc", "driver_version", "tags",      "all_of", "any_of",
        "none_of",       "browser", "backend",        NULL};
    if (need_object(o, path, err) < 0 || check_keys(o, path, known, NULL, also_known, err) < 0 ||
        read_shared(o, path, flags, &r->cpu_cores, &r->gpu_count, &r->memory_mb, &r->gpu_memory_mb,
                    &r->cuda_cc, &r->driver_version, err) < 0)
        return -1;
    if (json_object_get(o, "tags") && json_object_get(o, "all_of")) {
        char sub[DRV_JSON_PATH_MAX];
        drv_json_path_key(sub, path, "all_of");
        return drv_error_set(err, "%s: give tags or all_of (the same list), not both", sub);
    }
    if (read_tag_list(o, path, "tags", st, &r->all_of, err) < 0 ||
        read_tag_list(o, path, "all_of", st, &r->all_of, err) < 0 ||
        read_tag_list(o, path, "any_of", st, &r->any_of, err) < 0 ||
        read_tag_list(o, path, "none_of", st, &r->none_of, err) < 0 ||
        read_known_tag(o, path, "browser", DRV_TAG_FIRST_BROWSER, DRV_TAG_LAST_BROWSER, st->tags,
                       &r->all_of, err) < 0 ||
        read_known_tag(o, path, "backend", DRV_TAG_FIRST_BACKEND, DRV_TAG_LAST_BACKEND, st->tags,
                       &r->all_of, err) < 0)
        return -1;
    int clash = drv_tagset_first_common(&r->all_of, &r->none_of);
    if (clash >= 0) {
        char sub[DRV_JSON_PATH_MAX];
        drv_json_path_key(sub, path, "none_of");
        return drv_error_set(err, "%s: a tag both required and forbidden can never be met", sub);
    }
    return 0;
}

/* See protocol.h. */
int drv_capabilities_read(const json_t *o, const char *path, unsigned flags,
                          const char *const *also_known, drv_tag_stage *st, drv_capabilities *c,
                          drv_error *err)
{
    static const char *const known[] = {
        "cpu",           "cores",   "memory_mb",      "memory_gb", "gpus", "gpu_memory_mb",
        "gpu_memory_gb", "cuda_cc", "driver_version", "tags",      NULL};
    static const char *const hello_known[] = {"cpu_cores", "gpu_count", NULL};
    if (need_object(o, path, err) < 0 ||
        check_keys(o, path, known, (flags & DRV_RES_HELLO) ? hello_known : NULL, also_known, err) <
            0 ||
        read_shared(o, path, flags, &c->cpu_cores, &c->gpu_count, &c->memory_mb, &c->gpu_memory_mb,
                    &c->cuda_cc, &c->driver_version, err) < 0 ||
        read_tag_list(o, path, "tags", st, &c->tags, err) < 0)
        return -1;
    return 0;
}

/* ---- writing ---------------------------------------------------------------------- */

/* Adds set as an array of tag names under key (nothing when empty). Returns 0, or -1
 * when a tag id is not in tags. */
static int set_tags(json_t *o, const char *path, const char *key, const drv_tagset *set,
                    const drv_tag_table *tags, drv_error *err)
{
    if (drv_tagset_empty(set))
        return 0;
    json_t *a = json_array();
    int count = drv_tag_count(tags);
    for (int id = 0; id < DRV_TAGS_MAX; id++) {
        if (!drv_tagset_has(set, id))
            continue;
        if (id >= count) {
            json_decref(a);
            char sub[DRV_JSON_PATH_MAX];
            drv_json_path_key(sub, path, key);
            return drv_error_set(err, "%s: tag id %d is not in the tag table", sub, id);
        }
        const char *name = drv_tag_name(tags, id);
        json_array_append_new(a, drv_json_text(name, strlen(name)));
    }
    json_object_set_new_nocheck(o, key, a);
    return 0;
}

/* Adds the members requirements and capabilities share to o: the non-zero ones, or with
 * all_numbers cpu, memory_mb, gpus and gpu_memory_mb even when 0 (what a worker has). */
static int set_shared(json_t *o, const char *path, bool all_numbers, uint32_t cpu, uint32_t gpus,
                      uint64_t memory_mb, uint64_t gpu_memory_mb, uint32_t cuda_cc,
                      uint32_t driver_version, drv_error *err)
{
    if (memory_mb > INT64_MAX || gpu_memory_mb > INT64_MAX)
        return drv_error_set(err, "%s: a memory size is too large", path);
    char buf[32];
    if (cpu || all_numbers)
        json_object_set_new_nocheck(o, "cpu", json_integer(cpu));
    if (memory_mb || all_numbers)
        json_object_set_new_nocheck(o, "memory_mb", json_integer((json_int_t)memory_mb));
    if (gpus || all_numbers)
        json_object_set_new_nocheck(o, "gpus", json_integer(gpus));
    if (gpu_memory_mb || all_numbers)
        json_object_set_new_nocheck(o, "gpu_memory_mb", json_integer((json_int_t)gpu_memory_mb));
    if (cuda_cc) {
        drv_cuda_cc_format(cuda_cc, buf, sizeof buf);
        json_object_set_new_nocheck(o, "cuda_cc", json_string(buf));
    }
    if (driver_version) {
        drv_version_format(driver_version, buf, sizeof buf);
        json_object_set_new_nocheck(o, "driver_version", json_string(buf));
    }
    return 0;
}

/* See protocol.h. */
json_t *drv_requirements_json(const drv_requirements *r, const drv_tag_table *tags,
                              const char *path, drv_error *err)
{
    json_t *o = json_object();
    if (set_shared(o, path, false, r->cpu_cores, r->gpu_count, r->memory_mb, r->gpu_memory_mb,
                   r->cuda_cc, r->driver_version, err) < 0 ||
        set_tags(o, path, "all_of", &r->all_of, tags, err) < 0 ||
        set_tags(o, path, "any_of", &r->any_of, tags, err) < 0 ||
        set_tags(o, path, "none_of", &r->none_of, tags, err) < 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* See protocol.h. */
json_t *drv_capabilities_json(const drv_capabilities *c, const drv_tag_table *tags,
                              const char *path, drv_error *err)
{
    json_t *o = json_object();
    if (set_shared(o, path, true, c->cpu_cores, c->gpu_count, c->memory_mb, c->gpu_memory_mb,
                   c->cuda_cc, c->driver_version, err) < 0 ||
        set_tags(o, path, "tags", &c->tags, tags, err) < 0) {
        json_decref(o);
        return NULL;
    }
    if (!json_object_get(o, "tags"))
        json_object_set_new_nocheck(o, "tags", json_array());
    return o;
}
