/* message.c - worker channel messages: JSON frames <-> drv_msg, and the JSON field
 * readers every parser of the protocol uses to name the field that is wrong.
 *
 * Decoding fills a local drv_msg and hands it over only when the whole frame is valid;
 * a half-decoded message is freed here. Encoding builds a jansson tree and dumps it
 * compact; every string goes through drv_json_text() so that any bytes (a test's output
 * above all) become a valid JSON string. */
#include "protocol/protocol.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/worker.h"
#include "protocol/flat_json.h"

/* ---- JSON field readers ---------------------------------------------------------- */

/* Writes the value as shown in an error: an integer exactly, a real with %.17g, a
 * string quoted and cut after 40 bytes, anything else as its kind. */
void drv_json_describe(const json_t *v, char *buf, size_t len)
{
    if (json_is_integer(v)) {
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(buf, len, "%.17g", json_real_value(v));
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = strlen(s);
        snprintf(buf, len, "\"%.40s%s\"", s, n > 40 ? "..." : "");
    } else {
        snprintf(buf, len, "%s", drv_json_kind(v));
    }
}

/* Appends the n bytes at s to out (holding *len bytes), as far as they fit; returns false
 * when they did not all fit. */
static bool path_append(char out[DRV_JSON_PATH_MAX], size_t *len, const char *s, size_t n)
{
    size_t room = DRV_JSON_PATH_MAX - 1 - *len;
    bool fits = n <= room;
    if (!fits)
        n = room;
    memcpy(out + *len, s, n);
    *len += n;
    return fits;
}

/* Ends a path of len bytes; one that did not fit ends in "...". */
static void path_end(char out[DRV_JSON_PATH_MAX], size_t len, bool fits)
{
    out[len] = '\0';
    if (!fits)
        memcpy(out + DRV_JSON_PATH_MAX - 4, "...", 4);
}

/* Writes "base.key", or "key" when base is NULL or empty; too long a path ends in "...".
 * Built by hand, not with snprintf: every field of every message and test gets its path,
 * whether or not anything is wrong with it. */
void drv_json_path_key(char out[DRV_JSON_PATH_MAX], const char *base, const char *key)
{
    size_t len = 0;
    bool fits = true;
    if (base && *base)
        fits = path_append(out, &len, base, strlen(base)) && path_append(out, &len, ".", 1);
    if (fits)
        fits = path_append(out, &len, key, strlen(key));
    path_end(out, len, fits);
}

/* Writes "base[index]"; too long a path ends in "...". */
void drv_json_path_index(char out[DRV_JSON_PATH_MAX], const char *base, size_t index)
{
    char digits[24];
    size_t nd = 0;
    do {
        digits[sizeof digits - 1 - nd++] = (char)('0' + index % 10);
        index /= 10;
    } while (index > 0);
    size_t len = 0;
    bool fits = !base || path_append(out, &len, base, strlen(base));
    fits = fits && path_append(out, &len, "[", 1) &&
           path_append(out, &len, digits + sizeof digits - nd, nd) &&
           path_append(out, &len, "]", 1);
    path_end(out, len, fits);
}

/* Looks key up in obj and writes its path. Returns the value, or NULL when absent or
 * null; *missing_err is set to -1 (with err) when it was required. */
static const json_t *field(const json_t *obj, const char *path, const char *key, unsigned flags,
                           char sub[DRV_JSON_PATH_MAX], int *rc, drv_error *err)
{
    drv_json_path_key(sub, path, key);
    const json_t *v = json_object_get(obj, key);
    if (v && !json_is_null(v)) {
        *rc = 1;
        return v;
    }
    *rc = (flags & DRV_JSON_REQUIRED) ? drv_error_set(err, "%s: required", sub) : 0;
    return NULL;
}

/* Reports that v at path is not what was expected. Returns -1. */
static int wrong(drv_error *err, const char *path, const char *expected, const json_t *v)
{
    char got[64];
    drv_json_describe(v, got, sizeof got);
    return drv_error_set(err, "%s: must be %s, got %s", path, expected, got);
}

/* Checks one string value v at path: a string without NUL bytes, non-empty when asked,
 * at most max_len bytes. Returns 0 or -1 with err. */
static int check_string(const json_t *v, const char *path, unsigned flags, size_t max_len,
                        drv_error *err)
{
    if (!json_is_string(v))
        return wrong(err, path, "a string", v);
    size_t n = json_string_length(v);
    if (strlen(json_string_value(v)) != n)
        return drv_error_set(err, "%s: must not contain NUL bytes", path);
    if ((flags & DRV_JSON_NONEMPTY) && n == 0)
        return drv_error_set(err, "%s: must not be empty", path);
    if (n > max_len)
        return drv_error_set(err, "%s: %zu bytes, longer than the limit of %zu", path, n, max_len);
    return 0;
}

/* Reads a string field; see protocol.h. */
int drv_json_string(const json_t *obj, const char *path, const char *key, unsigned flags,
                    size_t max_len, const char **out, drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = field(obj, path, key, flags, sub, &rc, err);
    if (rc <= 0)
        return rc;
    if (check_string(v, sub, flags, max_len, err) < 0)
        return -1;
    *out = json_string_value(v);
    return 1;
}

/* Reads an integer field in min..max (JSON integers only, not 1.0). */
int drv_json_int(const json_t *obj, const char *path, const char *key, unsigned flags, int64_t min,
                 int64_t max, int64_t *out, drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = field(obj, path, key, flags, sub, &rc, err);
    if (rc <= 0)
        return rc;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        char expected[96];
        snprintf(expected, sizeof expected, "an integer %" PRId64 "..%" PRId64, min, max);
        return wrong(err, sub, expected, v);
    }
    *out = json_integer_value(v);
    return 1;
}

/* Reads a non-negative integer field in min..max (max is capped at INT64_MAX, the
 * largest integer JSON carries here). */
int drv_json_uint(const json_t *obj, const char *path, const char *key, unsigned flags,
                  uint64_t min, uint64_t max, uint64_t *out, drv_error *err)
{
    if (max > INT64_MAX)
        max = INT64_MAX;
    if (min > max)
        min = max;
    int64_t v = 0;
    int rc = drv_json_int(obj, path, key, flags, (int64_t)min, (int64_t)max, &v, err);
    if (rc > 0)
        *out = (uint64_t)v;
    return rc;
}

/* Reads a number field (integer or real) in min..max; max may be INFINITY. */
int drv_json_number(const json_t *obj, const char *path, const char *key, unsigned flags,
                    double min, double max, double *out, drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = field(obj, path, key, flags, sub, &rc, err);
    if (rc <= 0)
        return rc;
    double d = json_is_number(v) ? json_number_value(v) : NAN;
    if (!json_is_number(v) || !(d >= min && d <= max)) {
        char expected[96];
        if (isinf(max))
            snprintf(expected, sizeof expected, "a number >= %g", min);
        else
            snprintf(expected, sizeof expected, "a number %g..%g", min, max);
        return wrong(err, sub, expected, v);
    }
    *out = d;
    return 1;
}

/* Reads a boolean field (true or false only, not 0/1). */
int drv_json_bool(const json_t *obj, const char *path, const char *key, unsigned flags, bool *out,
                  drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = field(obj, path, key, flags, sub, &rc, err);
    if (rc <= 0)
        return rc;
    if (!json_is_boolean(v))
        return wrong(err, sub, "true or false", v);
    *out = json_is_true(v);
    return 1;
}

/* Reads an array of strings into a new NULL-terminated vector. */
int drv_json_strv(const json_t *obj, const char *path, const char *key, unsigned flags,
                  size_t max_items, size_t max_len, char ***out, drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX], item[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = field(obj, path, key, flags, sub, &rc, err);
    if (rc <= 0)
        return rc;
    if (!json_is_array(v))
        return wrong(err, sub, "an array of strings", v);
    size_t n = json_array_size(v);
    if (n == 0 && (flags & DRV_JSON_NONEMPTY))
        return drv_error_set(err, "%s: must not be empty", sub);
    if (n > max_items)
        return drv_error_set(err, "%s: %zu items, more than the limit of %zu", sub, n, max_items);
    for (size_t i = 0; i < n; i++) {
        drv_json_path_index(item, sub, i);
        if (check_string(json_array_get(v, i), item, 0, max_len, err) < 0)
            return -1;
    }
    /* Owned by the caller: every string and the vector (drv_strv_free). */
    char **vec = drv_xmalloc((n + 1) * sizeof *vec);
    for (size_t i = 0; i < n; i++)
        vec[i] = drv_xstrdup(json_string_value(json_array_get(v, i)));
    vec[n] = NULL;
    *out = vec;
    return 1;
}

/* Checks obj's keys against known; the error lists the known keys. */
int drv_json_check_keys(const json_t *obj, const char *path, const char *const *known,
                        drv_error *err)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        (void)val;
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(*k, key) == 0;
        if (ok)
            continue;
        char list[DRV_ERROR_MAX / 2];
        size_t used = 0;
        list[0] = '\0';
        for (const char *const *k = known; *k; k++) {
            if (strcmp(*k, "type") == 0 || strcmp(*k, "v") == 0)
                continue;
            int w = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *k);
            if (w < 0 || (size_t)w >= sizeof list - used)
                break;
            used += (size_t)w;
        }
        char sub[DRV_JSON_PATH_MAX];
        char shown[64];
        snprintf(shown, sizeof shown, "%.40s%s", key, strlen(key) > 40 ? "..." : "");
        drv_json_path_key(sub, path, shown);
        return drv_error_set(err, "%s: unknown field (known: %s)", sub, list);
    }
    return 0;
}

/* ---- UTF-8 --------------------------------------------------------------------- */

/* Returns the length of the valid UTF-8 sequence at s (n bytes left), or 0 when the
 * byte at s does not start one: overlong forms, surrogates and code points above
 * U+10FFFF are invalid, as jansson has them. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

/* Returns a JSON string of the n bytes at s with each invalid byte replaced by U+FFFD
 * (a new reference); NULL s gives JSON null. */
json_t *drv_json_text(const char *s, size_t n)
{
    if (!s)
        return json_null();
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq(u + i, n - i);
        if (!k)
            break;
        i += k;
    }
    if (i == n)
        return json_stringn_nocheck(s, n);
    /* Owned here, freed below: the repaired copy, at most 3 bytes per input byte. */
    char *fixed = drv_xmalloc(n * 3 + 1);
    size_t o = 0;
    for (i = 0; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        if (k) {
            memcpy(fixed + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(fixed + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    json_t *j = json_stringn_nocheck(fixed, o);
    free(fixed);
    return j;
}

/* A JSON number for d; null for NaN and infinities, which JSON cannot carry. */
static json_t *jreal(double d)
{
    return isfinite(d) ? json_real(d) : json_null();
}

static json_t *jstr(const char *s)
{
    return drv_json_text(s, s ? strlen(s) : 0);
}

/* ---- names ----------------------------------------------------------------------- */

static const char *const type_names[DRV_MSG_TYPE_COUNT] = {
    [DRV_MSG_NONE] = "none",         [DRV_MSG_HELLO] = "hello",
    [DRV_MSG_WELCOME] = "welcome",   [DRV_MSG_HEARTBEAT] = "heartbeat",
    [DRV_MSG_ASSIGN] = "assign",     [DRV_MSG_STARTED] = "started",
    [DRV_MSG_OUTPUT] = "output",     [DRV_MSG_FINISHED] = "finished",
    [DRV_MSG_CANCEL] = "cancel",     [DRV_MSG_DRAIN] = "drain",
    [DRV_MSG_ERROR] = "error",       [DRV_MSG_RELEASE] = "release",
    [DRV_MSG_RELEASED] = "released",
};

static const unsigned senders[DRV_MSG_TYPE_COUNT] = {
    [DRV_MSG_HELLO] = DRV_MSG_FROM_WORKER,
    [DRV_MSG_WELCOME] = DRV_MSG_FROM_COORDINATOR,
    [DRV_MSG_HEARTBEAT] = DRV_MSG_FROM_WORKER,
    [DRV_MSG_ASSIGN] = DRV_MSG_FROM_COORDINATOR,
    [DRV_MSG_STARTED] = DRV_MSG_FROM_WORKER,
    [DRV_MSG_OUTPUT] = DRV_MSG_FROM_WORKER,
    [DRV_MSG_FINISHED] = DRV_MSG_FROM_WORKER,
    [DRV_MSG_CANCEL] = DRV_MSG_FROM_COORDINATOR,
    [DRV_MSG_DRAIN] = DRV_MSG_FROM_WORKER | DRV_MSG_FROM_COORDINATOR,
    [DRV_MSG_ERROR] = DRV_MSG_FROM_WORKER | DRV_MSG_FROM_COORDINATOR,
    [DRV_MSG_RELEASE] = DRV_MSG_FROM_COORDINATOR,
    [DRV_MSG_RELEASED] = DRV_MSG_FROM_WORKER,
};

/* Returns the wire name of t, or "?" out of range. */
const char *drv_msg_type_name(drv_msg_type t)
{
    if ((int)t < 0 || t >= DRV_MSG_TYPE_COUNT)
        return "?";
    return type_names[t];
}

/* Returns the type named name, or -1 for NULL, "none" or an unknown name. */
int drv_msg_type_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = DRV_MSG_NONE + 1; i < DRV_MSG_TYPE_COUNT; i++)
        if (strcmp(type_names[i], name) == 0)
            return i;
    return -1;
}

/* Returns who may send t (DRV_MSG_FROM_* bits); 0 for NONE and out of range. */
unsigned drv_msg_senders(drv_msg_type t)
{
    if ((int)t < 0 || t >= DRV_MSG_TYPE_COUNT)
        return 0;
    return senders[t];
}

/* Copies the attempt m is about into *ref; false for messages about no attempt. */
bool drv_msg_attempt(const drv_msg *m, drv_attempt_ref *ref)
{
    switch (m->type) {
    case DRV_MSG_STARTED:
        *ref = m->started.ref;
        return true;
    case DRV_MSG_OUTPUT:
        *ref = m->output.ref;
        return true;
    case DRV_MSG_FINISHED:
        *ref = m->finished.ref;
        return true;
    case DRV_MSG_CANCEL:
        *ref = m->cancel.ref;
        return true;
    case DRV_MSG_RELEASE:
    case DRV_MSG_RELEASED:
        *ref = m->release.ref;
        return true;
    default:
        return false;
    }
}

/* ---- lifetime ------------------------------------------------------------------- */

/* Makes m an empty message of type; see protocol.h. */
void drv_msg_init(drv_msg *m, drv_msg_type type)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    if (type == DRV_MSG_HELLO)
        m->hello.speed = 1;
    if (type == DRV_MSG_HEARTBEAT) {
        m->heartbeat.temperature_c = -1;
        m->heartbeat.cpu_pressure = -1;
        m->heartbeat.memory_pressure = -1;
        m->heartbeat.freq_ratio = -1;
        m->heartbeat.tests_cpu = -1;
    }
}

/* Frees what one test owns and zeroes it; NULL is a no-op. */
void drv_msg_test_clear(drv_msg_test *t)
{
    if (!t)
        return;
    free(t->name);
    drv_strv_free(t->argv);
    drv_strv_free(t->env);
    free(t->cwd);
    memset(t, 0, sizeof *t);
}

/* Frees everything m owns and leaves it NONE; NULL is a no-op. */
void drv_msg_free(drv_msg *m)
{
    if (!m)
        return;
    switch (m->type) {
    case DRV_MSG_HELLO:
        free(m->hello.token);
        free(m->hello.name);
        free(m->hello.caps.cuda_cc);
        free(m->hello.caps.driver_version);
        drv_strv_free(m->hello.caps.tags);
        free(m->hello.caps.os);
        free(m->hello.caps.arch);
        free(m->hello.running);
        free(m->hello.instance);
        break;
    case DRV_MSG_HEARTBEAT:
        free(m->heartbeat.running);
        break;
    case DRV_MSG_ASSIGN:
        for (size_t i = 0; i < m->assign.count; i++)
            drv_msg_test_clear(&m->assign.tests[i]);
        free(m->assign.tests);
        break;
    case DRV_MSG_OUTPUT:
        free(m->output.data);
        break;
    case DRV_MSG_FINISHED:
        free(m->finished.error);
        free(m->finished.output_tail);
        free(m->finished.stderr_tail);
        break;
    case DRV_MSG_DRAIN:
        free(m->drain.reason);
        free(m->drain.keeps);
        break;
    case DRV_MSG_ERROR:
        free(m->error.message);
        free(m->error.field);
        break;
    default:
        break;
    }
    drv_msg_init(m, DRV_MSG_NONE);
}

/* True when argv is exactly {DRV_SHELL_PATH, "-c", command}. */
bool drv_argv_is_shell(char *const *argv)
{
    return argv && argv[0] && argv[1] && argv[2] && !argv[3] &&
           strcmp(argv[0], DRV_SHELL_PATH) == 0 && strcmp(argv[1], "-c") == 0;
}

/* Deep-copies what a worker needs to run attempt `attempt` of t into out. */
void drv_msg_test_from_task(drv_msg_test *out, const drv_task *t, uint32_t attempt,
                            uint64_t output_cap_bytes)
{
    memset(out, 0, sizeof *out);
    out->task_id = t->id;
    out->attempt = attempt;
    out->name = t->name ? drv_xstrdup(t->name) : NULL;
    out->argv = drv_strv_dup(t->argv);
    out->env = drv_strv_dup(t->env);
    out->cwd = t->cwd ? drv_xstrdup(t->cwd) : NULL;
    out->timeout_s = t->timeout_s;
    out->output_cap_bytes = output_cap_bytes;
    out->shell = drv_argv_is_shell(t->argv);
}

/* Interns the hello's tags and parses its versions into out; see protocol.h. */
int drv_msg_caps_to_capabilities(const drv_msg_caps *caps, drv_tag_table *tags,
                                 drv_capabilities *out, drv_error *err)
{
    drv_capabilities c;
    drv_capabilities_init(&c);
    c.cpu_cores = caps->cpu_cores;
    c.memory_mb = caps->memory_mb;
    c.gpu_count = caps->gpu_count;
    c.gpu_memory_mb = caps->gpu_memory_mb;
    if (caps->cuda_cc && drv_cuda_cc_parse(caps->cuda_cc, &c.cuda_cc, err) < 0)
        return drv_error_prefix(err, "hello.capabilities.cuda_cc");
    if (caps->driver_version && drv_version_parse(caps->driver_version, &c.driver_version, err) < 0)
        return drv_error_prefix(err, "hello.capabilities.driver_version");
    /* Check every name and the room they need before interning any. */
    size_t fresh = 0;
    size_t n = drv_strv_len(caps->tags);
    drv_tag_table *probe = NULL; /* new names, counted once each; freed below */
    for (size_t i = 0; i < n; i++) {
        if (drv_tag_lookup(tags, caps->tags[i]) >= 0)
            continue;
        if (!probe)
            probe = drv_tag_table_new();
        int before = drv_tag_count(probe);
        if (drv_tag_intern(probe, caps->tags[i], err) < 0) {
            drv_tag_table_free(probe);
            return drv_error_prefix(err, "hello.capabilities.tags[%zu]", i);
        }
        fresh += drv_tag_count(probe) > before;
    }
    drv_tag_table_free(probe);
    if ((size_t)drv_tag_count(tags) + fresh > DRV_TAGS_MAX)
        return drv_error_set(err,
                             "hello.capabilities.tags: %zu new tags do not fit in the tag table "
                             "(%d of %d used)",
                             fresh, drv_tag_count(tags), DRV_TAGS_MAX);
    for (size_t i = 0; i < n; i++) {
        int id = drv_tag_intern(tags, caps->tags[i], err);
        if (id < 0)
            return drv_error_prefix(err, "hello.capabilities.tags[%zu]", i);
        drv_tagset_add(&c.tags, id);
    }
    *out = c;
    return 0;
}

/* ---- decoding ------------------------------------------------------------------- */

#define ID_MAX ((uint64_t)INT64_MAX)

/* Reads an owned copy of an optional (or required) string field into *out. */
static int dup_string(const json_t *o, const char *path, const char *key, unsigned flags,
                      size_t max_len, char **out, drv_error *err)
{
    const char *s = NULL;
    int rc = drv_json_string(o, path, key, flags, max_len, &s, err);
    if (rc > 0)
        *out = drv_xstrdup(s); /* owned by the message */
    return rc;
}

/* Reads a string field that may hold any UTF-8 including NUL (output data) into an
 * owned, NUL-terminated copy with its length. */
static int dup_data(const json_t *o, const char *path, const char *key, unsigned flags,
                    size_t max_len, char **out, size_t *len, drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = field(o, path, key, flags, sub, &rc, err);
    if (rc <= 0)
        return rc;
    if (!json_is_string(v))
        return wrong(err, sub, "a string", v);
    size_t n = json_string_length(v);
    if (n > max_len)
        return drv_error_set(err, "%s: %zu bytes, longer than the limit of %zu", sub, n, max_len);
    char *d = drv_xmalloc(n + 1); /* owned by the message */
    memcpy(d, json_string_value(v), n);
    d[n] = '\0';
    *out = d;
    *len = n;
    return 1;
}

/* Reads the task_id and attempt fields of o into *ref. */
static int read_ref(const json_t *o, const char *path, drv_attempt_ref *ref, drv_error *err)
{
    uint64_t id = 0, attempt = 0;
    if (drv_json_uint(o, path, "task_id", DRV_JSON_REQUIRED, 0, ID_MAX, &id, err) < 0 ||
        drv_json_uint(o, path, "attempt", DRV_JSON_REQUIRED, 1, UINT32_MAX, &attempt, err) < 0)
        return -1;
    ref->task_id = id;
    ref->attempt = (uint32_t)attempt;
    return 0;
}

/* Reads an optional array of {task_id, attempt} at key into a new array. */
static int read_refs(const json_t *o, const char *path, const char *key, drv_attempt_ref **out,
                     size_t *count, drv_error *err)
{
    static const char *const known[] = {"task_id", "attempt", NULL};
    char sub[DRV_JSON_PATH_MAX], item[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = field(o, path, key, 0, sub, &rc, err);
    if (rc <= 0)
        return rc;
    if (!json_is_array(v))
        return wrong(err, sub, "an array of {task_id, attempt}", v);
    size_t n = json_array_size(v);
    if (n > DRV_RUNNING_MAX)
        return drv_error_set(err, "%s: %zu items, more than the limit of %d", sub, n,
                             DRV_RUNNING_MAX);
    drv_attempt_ref *refs = drv_xcalloc(n ? n : 1, sizeof *refs);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        drv_json_path_index(item, sub, i);
        if (!json_is_object(e)) {
            free(refs);
            return wrong(err, item, "an object {task_id, attempt}", e);
        }
        if (drv_json_check_keys(e, item, known, err) < 0 || read_ref(e, item, &refs[i], err) < 0) {
            free(refs);
            return -1;
        }
    }
    *out = refs; /* owned by the message */
    *count = n;
    return 1;
}

/* Checks that every name of a tag vector is a valid tag name. */
static int check_tag_names(char **v, const char *path, drv_error *err)
{
    if (!v)
        return 0;
    drv_tag_table *probe = drv_tag_table_new();
    int rc = 0;
    for (size_t i = 0; v[i] && rc == 0; i++) {
        if (drv_tag_intern(probe, v[i], err) < 0) {
            char item[DRV_JSON_PATH_MAX];
            drv_json_path_index(item, path, i);
            rc = drv_error_prefix(err, "%s", item);
        }
    }
    drv_tag_table_free(probe);
    return rc;
}

static int dec_hello(const json_t *o, drv_msg_hello *h, drv_error *err)
{
    static const char *const known[] = {"type",  "v",     "token",   "name",     "capabilities",
                                        "slots", "speed", "running", "instance", NULL};
    static const char *const caps_known[] = {
        "cpu_cores",      "memory_mb", "gpu_count", "gpu_memory_mb", "cuda_cc",
        "driver_version", "tags",      "os",        "arch",          NULL};
    if (drv_json_check_keys(o, "hello", known, err) < 0 ||
        dup_string(o, "hello", "token", DRV_JSON_REQUIRED | DRV_JSON_NONEMPTY, DRV_STRING_MAX,
                   &h->token, err) < 0 ||
        dup_string(o, "hello", "name", DRV_JSON_REQUIRED | DRV_JSON_NONEMPTY,
                   DRV_WORKER_NAME_MAX - 1, &h->name, err) < 0 ||
        dup_string(o, "hello", "instance", DRV_JSON_NONEMPTY, DRV_INSTANCE_MAX - 1, &h->instance,
                   err) < 0)
        return -1;
    const json_t *c = json_object_get(o, "capabilities");
    if (!c || json_is_null(c))
        return drv_error_set(err, "hello.capabilities: required");
    if (!json_is_object(c))
        return wrong(err, "hello.capabilities", "an object", c);
    const char *cp = "hello.capabilities";
    uint64_t u = 0;
    drv_msg_caps *k = &h->caps;
    if (drv_json_check_keys(c, cp, caps_known, err) < 0)
        return -1;
    if (drv_json_uint(c, cp, "cpu_cores", DRV_JSON_REQUIRED, 1, 1u << 20, &u, err) < 0)
        return -1;
    k->cpu_cores = (uint32_t)u;
    u = 0;
    if (drv_json_uint(c, cp, "memory_mb", DRV_JSON_REQUIRED, 0, (uint64_t)1 << 40, &u, err) < 0)
        return -1;
    k->memory_mb = u;
    u = 0;
    if (drv_json_uint(c, cp, "gpu_count", 0, 0, 4096, &u, err) < 0)
        return -1;
    k->gpu_count = (uint32_t)u;
    u = 0;
    if (drv_json_uint(c, cp, "gpu_memory_mb", 0, 0, (uint64_t)1 << 40, &u, err) < 0)
        return -1;
    k->gpu_memory_mb = u;
    if (dup_string(c, cp, "cuda_cc", DRV_JSON_NONEMPTY, 16, &k->cuda_cc, err) < 0 ||
        dup_string(c, cp, "driver_version", DRV_JSON_NONEMPTY, 64, &k->driver_version, err) < 0 ||
        drv_json_strv(c, cp, "tags", 0, DRV_TAGS_MAX, DRV_STRING_MAX, &k->tags, err) < 0 ||
        dup_string(c, cp, "os", 0, 64, &k->os, err) < 0 ||
        dup_string(c, cp, "arch", 0, 64, &k->arch, err) < 0)
        return -1;
    uint32_t parsed;
    if (k->cuda_cc && drv_cuda_cc_parse(k->cuda_cc, &parsed, err) < 0)
        return drv_error_prefix(err, "hello.capabilities.cuda_cc");
    if (k->driver_version && drv_version_parse(k->driver_version, &parsed, err) < 0)
        return drv_error_prefix(err, "hello.capabilities.driver_version");
    if (check_tag_names(k->tags, "hello.capabilities.tags", err) < 0)
        return -1;
    u = 0;
    if (drv_json_uint(o, "hello", "slots", DRV_JSON_REQUIRED, 1, 1u << 16, &u, err) < 0)
        return -1;
    h->slots = (uint32_t)u;
    if (drv_json_number(o, "hello", "speed", 0, 1e-3, 1e3, &h->speed, err) < 0)
        return -1;
    return read_refs(o, "hello", "running", &h->running, &h->running_count, err) < 0 ? -1 : 0;
}

static int dec_welcome(const json_t *o, drv_msg_welcome *w, drv_error *err)
{
    static const char *const known[] = {"type",        "v",     "worker_id", "heartbeat_interval_s",
                                        "server_time", "epoch", NULL};
    if (drv_json_check_keys(o, "welcome", known, err) < 0 ||
        drv_json_uint(o, "welcome", "worker_id", DRV_JSON_REQUIRED, 0, ID_MAX, &w->worker_id, err) <
            0 ||
        drv_json_number(o, "welcome", "heartbeat_interval_s", DRV_JSON_REQUIRED, 0.001, 3600,
                        &w->heartbeat_interval_s, err) < 0 ||
        drv_json_number(o, "welcome", "server_time", DRV_JSON_REQUIRED, 0, 1e11, &w->server_time,
                        err) < 0 ||
        drv_json_uint(o, "welcome", "epoch", 0, 0, ID_MAX, &w->epoch, err) < 0)
        return -1;
    return 0;
}

static int dec_heartbeat(const json_t *o, drv_msg_heartbeat *hb, drv_error *err)
{
    static const char *const known[] = {
        "type",       "v",         "load",       "temperature_c", "throttled",
        "overloaded", "running",   "free_slots", "cpu_pressure",  "memory_pressure",
        "freq_ratio", "tests_cpu", NULL};
    uint64_t u = 0;
    if (drv_json_check_keys(o, "heartbeat", known, err) < 0 ||
        drv_json_number(o, "heartbeat", "load", DRV_JSON_REQUIRED, 0, 1e6, &hb->load, err) < 0 ||
        drv_json_number(o, "heartbeat", "temperature_c", 0, -273.15, 1000, &hb->temperature_c,
                        err) < 0 ||
        drv_json_bool(o, "heartbeat", "throttled", 0, &hb->throttled, err) < 0 ||
        drv_json_bool(o, "heartbeat", "overloaded", 0, &hb->overloaded, err) < 0 ||
        drv_json_number(o, "heartbeat", "cpu_pressure", 0, 0, 1, &hb->cpu_pressure, err) < 0 ||
        drv_json_number(o, "heartbeat", "memory_pressure", 0, 0, 1, &hb->memory_pressure, err) <
            0 ||
        drv_json_number(o, "heartbeat", "freq_ratio", 0, 0, 1, &hb->freq_ratio, err) < 0 ||
        drv_json_number(o, "heartbeat", "tests_cpu", 0, 0, 1, &hb->tests_cpu, err) < 0 ||
        drv_json_uint(o, "heartbeat", "free_slots", DRV_JSON_REQUIRED, 0, 1u << 16, &u, err) < 0)
        return -1;
    hb->free_slots = (uint32_t)u;
    /* A probe that reads below zero Celsius is as good as unknown for the thermal model. */
    if (hb->temperature_c < 0)
        hb->temperature_c = -1;
    return read_refs(o, "heartbeat", "running", &hb->running, &hb->running_count, err) < 0 ? -1 : 0;
}

/* Reads an object of strings at key into a NULL-terminated "KEY=VALUE" vector. */
int drv_json_env(const json_t *o, const char *path, const char *key, unsigned flags, char ***out,
                 drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX], item[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = field(o, path, key, flags, sub, &rc, err);
    if (rc <= 0)
        return rc;
    if (!json_is_object(v))
        return wrong(err, sub, "an object of strings", v);
    size_t n = json_object_size(v);
    if (n > DRV_ENV_MAX)
        return drv_error_set(err, "%s: %zu entries, more than the limit of %d", sub, n,
                             DRV_ENV_MAX);
    const char *name;
    json_t *val;
    json_object_foreach((json_t *)v, name, val)
    {
        char shown[64];
        snprintf(shown, sizeof shown, "%.40s", name);
        drv_json_path_key(item, sub, shown);
        if (!*name || strchr(name, '='))
            return drv_error_set(err, "%s: variable name must be non-empty and without '='", item);
        if (strlen(name) > DRV_STRING_MAX)
            return drv_error_set(err, "%s: variable name longer than %d bytes", item,
                                 DRV_STRING_MAX);
        if (check_string(val, item, 0, DRV_ARG_MAX_BYTES, err) < 0)
            return -1;
    }
    /* Owned by the caller: the vector and each "KEY=VALUE" (drv_strv_free). */
    char **vec = drv_xmalloc((n + 1) * sizeof *vec);
    size_t i = 0;
    json_object_foreach((json_t *)v, name, val)
    {
        size_t kn = strlen(name), vn = json_string_length(val);
        char *e = drv_xmalloc(kn + vn + 2);
        memcpy(e, name, kn);
        e[kn] = '=';
        memcpy(e + kn + 1, json_string_value(val), vn + 1);
        vec[i++] = e;
    }
    vec[i] = NULL;
    *out = vec;
    return 1;
}

static int dec_test(const json_t *o, const char *path, drv_msg_test *t, drv_error *err)
{
    static const char *const known[] = {"task_id", "attempt", "name",      "argv",
                                        "env",     "cwd",     "timeout_s", "output_cap_bytes",
                                        "shell",   NULL};
    drv_attempt_ref ref;
    if (!json_is_object(o))
        return wrong(err, path, "an object", o);
    if (drv_json_check_keys(o, path, known, err) < 0 || read_ref(o, path, &ref, err) < 0 ||
        dup_string(o, path, "name", DRV_JSON_REQUIRED | DRV_JSON_NONEMPTY, DRV_STRING_MAX, &t->name,
                   err) < 0 ||
        drv_json_strv(o, path, "argv", DRV_JSON_REQUIRED | DRV_JSON_NONEMPTY, DRV_ARGV_MAX,
                      DRV_ARG_MAX_BYTES, &t->argv, err) < 0 ||
        drv_json_env(o, path, "env", 0, &t->env, err) < 0 ||
        dup_string(o, path, "cwd", DRV_JSON_NONEMPTY, DRV_STRING_MAX, &t->cwd, err) < 0 ||
        drv_json_number(o, path, "timeout_s", 0, 0, 1e9, &t->timeout_s, err) < 0 ||
        drv_json_uint(o, path, "output_cap_bytes", 0, 0, ID_MAX, &t->output_cap_bytes, err) < 0 ||
        drv_json_bool(o, path, "shell", 0, &t->shell, err) < 0)
        return -1;
    t->task_id = ref.task_id;
    t->attempt = ref.attempt;
    char sub[DRV_JSON_PATH_MAX];
    if (t->argv[0][0] == '\0') {
        drv_json_path_key(sub, path, "argv[0]");
        return drv_error_set(err, "%s: the program must not be empty", sub);
    }
    if (t->shell != drv_argv_is_shell(t->argv)) {
        drv_json_path_key(sub, path, "shell");
        return drv_error_set(err,
                             t->shell ? "%s: true needs argv [\"" DRV_SHELL_PATH
                                        "\", \"-c\", COMMAND]"
                                      : "%s: argv runs a shell command, so shell must be true",
                             sub);
    }
    return 0;
}

static int dec_assign(const json_t *o, drv_msg_assign *a, drv_error *err)
{
    static const char *const known[] = {"type", "v", "tests", "epoch", "sent_at", "lease_s", NULL};
    if (drv_json_check_keys(o, "assign", known, err) < 0 ||
        drv_json_uint(o, "assign", "epoch", 0, 0, ID_MAX, &a->epoch, err) < 0 ||
        drv_json_number(o, "assign", "sent_at", 0, 0, 1e11, &a->sent_at, err) < 0 ||
        drv_json_number(o, "assign", "lease_s", 0, 0, 1e6, &a->lease_s, err) < 0)
        return -1;
    const json_t *tests = json_object_get(o, "tests");
    if (!tests || json_is_null(tests))
        return drv_error_set(err, "assign.tests: required");
    if (!json_is_array(tests))
        return wrong(err, "assign.tests", "an array of tests", tests);
    size_t n = json_array_size(tests);
    if (n == 0)
        return drv_error_set(err, "assign.tests: must not be empty");
    if (n > DRV_ASSIGN_MAX_TESTS)
        return drv_error_set(err, "assign.tests: %zu tests, more than the limit of %d per assign",
                             n, DRV_ASSIGN_MAX_TESTS);
    a->tests = drv_xcalloc(n, sizeof *a->tests); /* owned by the message */
    a->count = n;
    for (size_t i = 0; i < n; i++) {
        char path[DRV_JSON_PATH_MAX];
        drv_json_path_index(path, "assign.tests", i);
        if (dec_test(json_array_get(tests, i), path, &a->tests[i], err) < 0)
            return -1;
    }
    return 0;
}

static int dec_started(const json_t *o, drv_msg_started *s, drv_error *err)
{
    static const char *const known[] = {"type", "v", "task_id", "attempt", "pid", "t", NULL};
    if (drv_json_check_keys(o, "started", known, err) < 0 ||
        read_ref(o, "started", &s->ref, err) < 0 ||
        drv_json_int(o, "started", "pid", DRV_JSON_REQUIRED, 1, INT32_MAX, &s->pid, err) < 0 ||
        drv_json_number(o, "started", "t", DRV_JSON_REQUIRED, 0, 1e11, &s->t, err) < 0)
        return -1;
    return 0;
}

static int dec_output(const json_t *o, drv_msg_output *out, drv_error *err)
{
    static const char *const known[] = {"type",   "v",    "task_id", "attempt",
                                        "stream", "data", "seq",     NULL};
    const char *stream = NULL;
    if (drv_json_check_keys(o, "output", known, err) < 0 ||
        read_ref(o, "output", &out->ref, err) < 0 ||
        drv_json_string(o, "output", "stream", DRV_JSON_REQUIRED, 16, &stream, err) < 0 ||
        dup_data(o, "output", "data", DRV_JSON_REQUIRED, DRV_OUTPUT_CHUNK_MAX, &out->data,
                 &out->len, err) < 0 ||
        drv_json_uint(o, "output", "seq", DRV_JSON_REQUIRED, 0, ID_MAX, &out->seq, err) < 0)
        return -1;
    if (strcmp(stream, "stdout") == 0)
        out->stream = DRV_STREAM_STDOUT;
    else if (strcmp(stream, "stderr") == 0)
        out->stream = DRV_STREAM_STDERR;
    else
        return wrong(err, "output.stream", "\"stdout\" or \"stderr\"",
                     json_object_get(o, "stream"));
    return 0;
}

static int dec_finished(const json_t *o, drv_msg_finished *f, drv_error *err)
{
    static const char *const known[] = {
        "type",           "v",           "task_id",       "attempt", "exit_code",
        "signal",         "timed_out",   "infra_failure", "error",   "duration_s",
        "peak_memory_kb", "output_tail", "stderr_tail",   NULL};
    int64_t code = 0, sig = 0;
    int has_code, has_sig;
    if (drv_json_check_keys(o, "finished", known, err) < 0 ||
        read_ref(o, "finished", &f->ref, err) < 0 ||
        (has_code = drv_json_int(o, "finished", "exit_code", 0, 0, 255, &code, err)) < 0 ||
        (has_sig = drv_json_int(o, "finished", "signal", 0, 1, 127, &sig, err)) < 0 ||
        drv_json_bool(o, "finished", "timed_out", 0, &f->timed_out, err) < 0 ||
        drv_json_bool(o, "finished", "infra_failure", 0, &f->infra_failure, err) < 0 ||
        dup_string(o, "finished", "error", 0, DRV_STRING_MAX, &f->error, err) < 0 ||
        drv_json_number(o, "finished", "duration_s", DRV_JSON_REQUIRED, 0, 1e9, &f->duration_s,
                        err) < 0 ||
        drv_json_uint(o, "finished", "peak_memory_kb", 0, 0, ID_MAX, &f->peak_memory_kb, err) < 0 ||
        dup_data(o, "finished", "output_tail", 0, DRV_OUTPUT_TAIL_MAX, &f->output_tail,
                 &f->output_tail_len, err) < 0 ||
        dup_data(o, "finished", "stderr_tail", 0, DRV_STDERR_TAIL_MAX, &f->stderr_tail,
                 &f->stderr_tail_len, err) < 0)
        return -1;
    f->has_exit_code = has_code > 0;
    f->exit_code = (int)code;
    f->has_signal = has_sig > 0;
    f->signal = (int)sig;
    if (f->infra_failure) {
        if (!f->error || !*f->error)
            return drv_error_set(err, "finished.error: required when infra_failure is true "
                                      "(say why the test could not run)");
    } else if (f->has_exit_code == f->has_signal) {
        return drv_error_set(err,
                             "finished: give exactly one of exit_code and signal (got %s), "
                             "or infra_failure with an error",
                             f->has_exit_code ? "both" : "neither");
    }
    return 0;
}

/* ---- the fast path of "finished" (flat_json.h says why) ---- */

/* Reads integer member key of o in min..max: 1 present, 0 absent or null, -1 anything
 * else (the general decoder then finds and words the error). */
static int flat_int(const drv_flat_object *o, const char *key, int64_t min, int64_t max,
                    int64_t *out)
{
    const drv_flat_member *m = drv_flat_get(o, key);
    if (!m || m->kind == DRV_FLAT_NULL)
        return 0;
    if (m->kind != DRV_FLAT_INT || m->i < min || m->i > max)
        return -1;
    *out = m->i;
    return 1;
}

static int flat_bool(const drv_flat_object *o, const char *key, bool *out)
{
    const drv_flat_member *m = drv_flat_get(o, key);
    if (!m || m->kind == DRV_FLAT_NULL)
        return 0;
    if (m->kind != DRV_FLAT_TRUE && m->kind != DRV_FLAT_FALSE)
        return -1;
    *out = m->kind == DRV_FLAT_TRUE;
    return 1;
}

static int flat_string(const drv_flat_object *o, const char *key, size_t max_len,
                       const drv_flat_member **out)
{
    const drv_flat_member *m = drv_flat_get(o, key);
    if (!m || m->kind == DRV_FLAT_NULL)
        return 0;
    if (m->kind != DRV_FLAT_STRING || m->str_len > max_len)
        return -1;
    *out = m;
    return 1;
}

static char *flat_dup(const drv_flat_member *m)
{
    char *d = drv_xmalloc(m->str_len + 1); /* owned by the message */
    memcpy(d, m->str, m->str_len);
    d[m->str_len] = '\0';
    return d;
}

/* Decodes a flat "finished" frame exactly as dec_finished would accept it. Returns 1
 * with *out filled (owned by the caller), or 0 when the frame is anything else or is
 * wrong in any way: the caller then decodes it the general way, which gives the same
 * result for a good frame and the error for a bad one. */
static int dec_finished_flat(const char *buf, size_t len, drv_msg *out)
{
    static const char *const known[] = {
        "type",           "v",           "task_id",       "attempt", "exit_code",
        "signal",         "timed_out",   "infra_failure", "error",   "duration_s",
        "peak_memory_kb", "output_tail", "stderr_tail",   NULL};
    drv_flat_object o;
    if (!drv_flat_parse(buf, len, &o))
        return 0;
    for (size_t i = 0; i < o.n; i++) {
        size_t k = 0;
        while (known[k] && !(strlen(known[k]) == o.m[i].key_len &&
                             memcmp(known[k], o.m[i].key, o.m[i].key_len) == 0))
            k++;
        if (!known[k])
            return 0;
    }
    const drv_flat_member *type = drv_flat_get(&o, "type"), *dur = drv_flat_get(&o, "duration_s");
    int64_t v = 0, id = 0, attempt = 0, code = 0, sig = 0, peak = 0;
    drv_msg_finished f = {0};
    const drv_flat_member *error = NULL, *tail = NULL, *etail = NULL;
    if (!type || type->kind != DRV_FLAT_STRING || type->str_len != 8 ||
        memcmp(type->str, "finished", 8) != 0 || flat_int(&o, "v", INT64_MIN, INT64_MAX, &v) <= 0 ||
        v != DRV_PROTOCOL_VERSION || flat_int(&o, "task_id", 0, INT64_MAX, &id) <= 0 ||
        flat_int(&o, "attempt", 1, UINT32_MAX, &attempt) <= 0)
        return 0;
    int has_code = flat_int(&o, "exit_code", 0, 255, &code);
    int has_sig = flat_int(&o, "signal", 1, 127, &sig);
    if (has_code < 0 || has_sig < 0 || flat_bool(&o, "timed_out", &f.timed_out) < 0 ||
        flat_bool(&o, "infra_failure", &f.infra_failure) < 0 ||
        flat_string(&o, "error", DRV_STRING_MAX, &error) < 0 ||
        flat_int(&o, "peak_memory_kb", 0, INT64_MAX, &peak) < 0 ||
        flat_string(&o, "output_tail", DRV_OUTPUT_TAIL_MAX, &tail) < 0 ||
        flat_string(&o, "stderr_tail", DRV_STDERR_TAIL_MAX, &etail) < 0)
        return 0;
    if (!dur || (dur->kind != DRV_FLAT_INT && dur->kind != DRV_FLAT_REAL) ||
        !(dur->d >= 0 && dur->d <= 1e9))
        return 0;
    if (f.infra_failure ? !error || error->str_len == 0 : (has_code > 0) == (has_sig > 0))
        return 0;
    f.ref.task_id = (uint64_t)id;
    f.ref.attempt = (uint32_t)attempt;
    f.has_exit_code = has_code > 0;
    f.exit_code = (int)code;
    f.has_signal = has_sig > 0;
    f.signal = (int)sig;
    f.duration_s = dur->d;
    f.peak_memory_kb = (uint64_t)peak;
    if (error)
        f.error = flat_dup(error);
    if (tail) {
        f.output_tail = flat_dup(tail);
        f.output_tail_len = tail->str_len;
    }
    if (etail) {
        f.stderr_tail = flat_dup(etail);
        f.stderr_tail_len = etail->str_len;
    }
    drv_msg_init(out, DRV_MSG_FINISHED);
    out->finished = f;
    return 1;
}

/* ---- the fast path of "assign" (flat_json.h says why; a worker decodes one per up to
 * DRV_ASSIGN_MAX_TESTS tests) ---- */

/* Whether the n bytes at key are the NUL-terminated name. */
static bool key_is(const char *key, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(key, name, n) == 0;
}

/* Marks member bit in *seen; false when it was seen already (a duplicate key). */
static bool first_time(unsigned *seen, unsigned bit)
{
    if (*seen & bit)
        return false;
    *seen |= bit;
    return true;
}

/* argv: a non-empty array of plain strings, each at most DRV_ARG_MAX_BYTES, the first
 * not empty; into a new vector (owned by t). */
static bool fast_argv(drv_flat_cursor *c, drv_msg_test *t)
{
    return drv_flat_strv(c, DRV_ARGV_MAX, DRV_ARG_MAX_BYTES, &t->argv) && t->argv[0] &&
           t->argv[0][0];
}

/* env: an object of plain strings, names non-empty, without '=', at most
 * DRV_STRING_MAX, not repeated; into "NAME=VALUE" entries (owned by t). */
static bool fast_env(drv_flat_cursor *c, drv_msg_test *t)
{
    if (!drv_flat_take(c, '{'))
        return false;
    size_t n = 0, cap = 4;
    char **v = drv_xmalloc(cap * sizeof *v);
    v[0] = NULL;
    t->env = v;
    if (drv_flat_take(c, '}'))
        return true;
    do {
        const char *name, *val;
        size_t nl, vl;
        if (n == DRV_ENV_MAX || !drv_flat_string(c, &name, &nl) || nl == 0 || nl > DRV_STRING_MAX ||
            memchr(name, '=', nl) || !drv_flat_take(c, ':') || !drv_flat_string(c, &val, &vl) ||
            vl > DRV_ARG_MAX_BYTES)
            return false;
        for (size_t i = 0; i < n; i++)
            if (strncmp(v[i], name, nl) == 0 && v[i][nl] == '=')
                return false;
        if (n + 2 > cap) {
            cap *= 2;
            v = t->env = drv_xrealloc(v, cap * sizeof *v);
        }
        v[n] = drv_xmalloc(nl + vl + 2);
        memcpy(v[n], name, nl);
        v[n][nl] = '=';
        memcpy(v[n] + nl + 1, val, vl);
        v[n][nl + 1 + vl] = '\0';
        v[++n] = NULL;
    } while (drv_flat_take(c, ','));
    return drv_flat_take(c, '}');
}

/* One test object, accepted exactly when dec_test would accept it. */
static bool fast_test(drv_flat_cursor *c, drv_msg_test *t)
{
    enum {
        K_ID = 1,
        K_ATT = 2,
        K_NAME = 4,
        K_ARGV = 8,
        K_ENV = 16,
        K_CWD = 32,
        K_TMO = 64,
        K_CAP = 128,
        K_SHELL = 256
    };
    unsigned seen = 0, present = 0;
    int64_t id = 0, attempt = 0;
    if (!drv_flat_take(c, '{'))
        return false;
    if (!drv_flat_take(c, '}')) {
        do {
            const char *key;
            size_t kn;
            if (!drv_flat_string(c, &key, &kn) || !drv_flat_take(c, ':'))
                return false;
            drv_flat_member m = {0};
            if (key_is(key, kn, "argv")) {
                if (!first_time(&seen, K_ARGV) || !fast_argv(c, t))
                    return false;
                present |= K_ARGV;
                continue;
            }
            if (key_is(key, kn, "env")) {
                if (!first_time(&seen, K_ENV))
                    return false;
                if (drv_flat_take(c, 'n')) { /* null: as if absent */
                    if (c->end - c->p < 3 || memcmp(c->p, "ull", 3) != 0)
                        return false;
                    c->p += 3;
                    continue;
                }
                if (!fast_env(c, t))
                    return false;
                continue;
            }
            if (!drv_flat_scalar(c, &m))
                return false;
            bool null = m.kind == DRV_FLAT_NULL, str = m.kind == DRV_FLAT_STRING,
                 num = m.kind == DRV_FLAT_INT || m.kind == DRV_FLAT_REAL;
            if (key_is(key, kn, "task_id")) {
                if (!first_time(&seen, K_ID) || m.kind != DRV_FLAT_INT || m.i < 0)
                    return false;
                id = m.i;
                present |= K_ID;
            } else if (key_is(key, kn, "attempt")) {
                if (!first_time(&seen, K_ATT) || m.kind != DRV_FLAT_INT || m.i < 1 ||
                    m.i > UINT32_MAX)
                    return false;
                attempt = m.i;
                present |= K_ATT;
            } else if (key_is(key, kn, "name")) {
                if (!first_time(&seen, K_NAME) || !str || m.str_len == 0 ||
                    m.str_len > DRV_STRING_MAX)
                    return false;
                t->name = flat_dup(&m);
                present |= K_NAME;
            } else if (key_is(key, kn, "cwd")) {
                if (!first_time(&seen, K_CWD) ||
                    !(null || (str && m.str_len > 0 && m.str_len <= DRV_STRING_MAX)))
                    return false;
                if (str)
                    t->cwd = flat_dup(&m);
            } else if (key_is(key, kn, "timeout_s")) {
                if (!first_time(&seen, K_TMO) || !(null || (num && m.d >= 0 && m.d <= 1e9)))
                    return false;
                if (num)
                    t->timeout_s = m.d;
            } else if (key_is(key, kn, "output_cap_bytes")) {
                if (!first_time(&seen, K_CAP) || !(null || (m.kind == DRV_FLAT_INT && m.i >= 0)))
                    return false;
                if (!null)
                    t->output_cap_bytes = (uint64_t)m.i;
            } else if (key_is(key, kn, "shell")) {
                if (!first_time(&seen, K_SHELL) ||
                    !(null || m.kind == DRV_FLAT_TRUE || m.kind == DRV_FLAT_FALSE))
                    return false;
                t->shell = m.kind == DRV_FLAT_TRUE;
            } else {
                return false; /* an unknown member */
            }
        } while (drv_flat_take(c, ','));
        if (!drv_flat_take(c, '}'))
            return false;
    }
    if ((present & (K_ID | K_ATT | K_NAME | K_ARGV)) != (K_ID | K_ATT | K_NAME | K_ARGV) ||
        t->shell != drv_argv_is_shell(t->argv))
        return false;
    t->task_id = (uint64_t)id;
    t->attempt = (uint32_t)attempt;
    return true;
}

/* Reads the fencing members that may follow an assign's tests, in the order the encoder
 * writes them (,"epoch":N,"sent_at":T,"lease_s":L), into a. False for anything else. */
static bool fast_fence(drv_flat_cursor *c, drv_msg_assign *a)
{
    static const char *const keys[] = {"epoch", "sent_at", "lease_s"};
    for (size_t i = 0; i < 3; i++) {
        const char *key;
        size_t kn;
        drv_flat_member m = {0};
        if (!drv_flat_take(c, ','))
            return i == 0;
        if (!drv_flat_string(c, &key, &kn) || kn != strlen(keys[i]) ||
            memcmp(key, keys[i], kn) != 0 || !drv_flat_take(c, ':') || !drv_flat_scalar(c, &m))
            return false;
        if (i == 0 && (m.kind != DRV_FLAT_INT || m.i < 0))
            return false;
        if (i > 0 && ((m.kind != DRV_FLAT_INT && m.kind != DRV_FLAT_REAL) || !(m.d >= 0) ||
                      m.d > (i == 1 ? 1e11 : 1e6)))
            return false;
        if (i == 0)
            a->epoch = (uint64_t)m.i;
        else if (i == 1)
            a->sent_at = m.d;
        else
            a->lease_s = m.d;
    }
    return true;
}

/* Decodes an assign frame of the common shape ({"type":"assign","v":1,"tests":[...]}
 * in that order, plain strings) exactly as dec_assign would. Returns 1 with *out
 * filled (owned by the caller), or 0 for anything else: the caller then decodes the
 * general way, which gives the same message for a good frame and the error for a bad
 * one. */
static int dec_assign_fast(const char *buf, size_t len, drv_msg *out)
{
    static const char head[] = "{\"type\":\"assign\",\"v\":1,\"tests\":[";
    if (len < sizeof head - 1 || memcmp(buf, head, sizeof head - 1) != 0)
        return 0;
    drv_flat_cursor c = {buf + sizeof head - 1, buf + len};
    drv_msg_assign a = {0};
    size_t cap = 0;
    bool ok = false;
    do {
        if (a.count == DRV_ASSIGN_MAX_TESTS)
            break;
        if (a.count == cap) {
            cap = cap ? cap * 2 : 64;
            a.tests = drv_xrealloc(a.tests, cap * sizeof *a.tests);
        }
        memset(&a.tests[a.count], 0, sizeof a.tests[a.count]);
        a.count++; /* counted before it is filled, so a failure frees what it holds */
        if (!fast_test(&c, &a.tests[a.count - 1]))
            break;
        if (!drv_flat_take(&c, ',')) {
            ok = drv_flat_take(&c, ']') && fast_fence(&c, &a) && drv_flat_take(&c, '}') &&
                 drv_flat_at_end(&c);
            break;
        }
    } while (true);
    if (!ok) {
        for (size_t i = 0; i < a.count; i++)
            drv_msg_test_clear(&a.tests[i]);
        free(a.tests);
        return 0;
    }
    drv_msg_init(out, DRV_MSG_ASSIGN);
    out->assign = a;
    return 1;
}

static int dec_cancel(const json_t *o, drv_msg_cancel *c, drv_error *err)
{
    static const char *const known[] = {"type", "v", "task_id", "attempt", NULL};
    if (drv_json_check_keys(o, "cancel", known, err) < 0 || read_ref(o, "cancel", &c->ref, err) < 0)
        return -1;
    return 0;
}

/* release and released (exec2): an attempt, and for released whether it was dropped. */
static int dec_release(const json_t *o, bool answer, drv_msg_release *r, drv_error *err)
{
    static const char *const known[] = {"type", "v", "task_id", "attempt", NULL};
    static const char *const known_answer[] = {"type", "v", "task_id", "attempt", "dropped", NULL};
    const char *name = answer ? "released" : "release";
    if (drv_json_check_keys(o, name, answer ? known_answer : known, err) < 0 ||
        read_ref(o, name, &r->ref, err) < 0)
        return -1;
    if (!answer)
        return 0;
    const json_t *d = json_object_get(o, "dropped");
    if (!d || !json_is_boolean(d))
        return drv_error_set(err, "released.dropped: required, true or false");
    r->dropped = json_is_true(d);
    return 0;
}

static int dec_drain(const json_t *o, drv_msg_drain *d, drv_error *err)
{
    static const char *const known[] = {"type", "v", "reason", "keeps", NULL};
    if (drv_json_check_keys(o, "drain", known, err) < 0 ||
        dup_string(o, "drain", "reason", DRV_JSON_REQUIRED, DRV_STRING_MAX, &d->reason, err) < 0)
        return -1;
    int rc = read_refs(o, "drain", "keeps", &d->keeps, &d->keeps_count, err);
    if (rc < 0)
        return -1;
    d->has_keeps = rc > 0;
    return 0;
}

static int dec_error(const json_t *o, drv_msg_error *e, drv_error *err)
{
    static const char *const known[] = {"type", "v", "message", "field", NULL};
    if (drv_json_check_keys(o, "error", known, err) < 0 ||
        dup_string(o, "error", "message", DRV_JSON_REQUIRED | DRV_JSON_NONEMPTY, DRV_STRING_MAX,
                   &e->message, err) < 0 ||
        dup_string(o, "error", "field", 0, DRV_JSON_PATH_MAX, &e->field, err) < 0)
        return -1;
    return 0;
}

/* Reads the type and version of the frame object o. Returns the type or -1. */
static int dec_header(const json_t *o, drv_error *err)
{
    const json_t *t = json_object_get(o, "type");
    if (!t || json_is_null(t))
        return drv_error_set(err, "type: required (the message type, e.g. \"hello\")");
    if (!json_is_string(t))
        return wrong(err, "type", "a string", t);
    int type = drv_msg_type_parse(json_string_value(t));
    if (type < 0) {
        char shown[64];
        drv_json_describe(t, shown, sizeof shown);
        return drv_error_set(err,
                             "unknown message type %s (known: hello, welcome, heartbeat, assign, "
                             "started, output, finished, cancel, drain, error, "
                             "release, released)",
                             shown);
    }
    const json_t *v = json_object_get(o, "v");
    if (!v || json_is_null(v))
        return drv_error_set(err, "v: required (the protocol version, %d)", DRV_PROTOCOL_VERSION);
    if (!json_is_integer(v))
        return wrong(err, "v", "an integer protocol version", v);
    if (json_integer_value(v) != DRV_PROTOCOL_VERSION)
        return drv_error_set(
            err, "v: unsupported protocol version %" JSON_INTEGER_FORMAT " (this side speaks %d)",
            json_integer_value(v), DRV_PROTOCOL_VERSION);
    return type;
}

bool drv_protocol_fast_paths = true;

/* Decodes one frame; see protocol.h. */
int drv_msg_decode(const char *buf, size_t len, drv_msg *out, drv_error *err)
{
    drv_msg_init(out, DRV_MSG_NONE);
    if (!buf)
        return drv_error_set(err, "message: missing (NULL buffer)");
    if (len > DRV_MSG_MAX_BYTES)
        return drv_error_set(err, "message: %zu bytes, longer than the limit of %u bytes", len,
                             DRV_MSG_MAX_BYTES);
    if (drv_protocol_fast_paths &&
        (dec_finished_flat(buf, len, out) || dec_assign_fast(buf, len, out)))
        return 0;
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root)
        return drv_error_set(err, "message: not valid JSON: %s (line %d, column %d)", jerr.text,
                             jerr.line, jerr.column);
    if (!json_is_object(root)) {
        int rc = wrong(err, "message", "a JSON object", root);
        json_decref(root);
        return rc;
    }
    int type = dec_header(root, err);
    if (type < 0) {
        json_decref(root);
        return -1;
    }
    drv_msg m;
    drv_msg_init(&m, (drv_msg_type)type);
    int rc = -1;
    switch ((drv_msg_type)type) {
    case DRV_MSG_HELLO:
        rc = dec_hello(root, &m.hello, err);
        break;
    case DRV_MSG_WELCOME:
        rc = dec_welcome(root, &m.welcome, err);
        break;
    case DRV_MSG_HEARTBEAT:
        rc = dec_heartbeat(root, &m.heartbeat, err);
        break;
    case DRV_MSG_ASSIGN:
        rc = dec_assign(root, &m.assign, err);
        break;
    case DRV_MSG_STARTED:
        rc = dec_started(root, &m.started, err);
        break;
    case DRV_MSG_OUTPUT:
        rc = dec_output(root, &m.output, err);
        break;
    case DRV_MSG_FINISHED:
        rc = dec_finished(root, &m.finished, err);
        break;
    case DRV_MSG_CANCEL:
        rc = dec_cancel(root, &m.cancel, err);
        break;
    case DRV_MSG_DRAIN:
        rc = dec_drain(root, &m.drain, err);
        break;
    case DRV_MSG_ERROR:
        rc = dec_error(root, &m.error, err);
        break;
    case DRV_MSG_RELEASE:
    case DRV_MSG_RELEASED:
        rc = dec_release(root, type == DRV_MSG_RELEASED, &m.release, err);
        break;
    default:
        break;
    }
    json_decref(root);
    if (rc < 0) {
        drv_msg_free(&m);
        return -1;
    }
    *out = m; /* the caller owns it now */
    return 0;
}

/* ---- encoding ------------------------------------------------------------------- */

static void set(json_t *o, const char *key, json_t *v)
{
    json_object_set_new_nocheck(o, key, v);
}

/* Sets key to the string s, or leaves it out when s is NULL. */
static void set_opt_str(json_t *o, const char *key, const char *s)
{
    if (s)
        set(o, key, jstr(s));
}

static void set_ref(json_t *o, const drv_attempt_ref *r)
{
    set(o, "task_id", json_integer((json_int_t)r->task_id));
    set(o, "attempt", json_integer(r->attempt));
}

static json_t *enc_refs(const drv_attempt_ref *refs, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object();
        set_ref(e, &refs[i]);
        json_array_append_new(a, e);
    }
    return a;
}

static json_t *enc_strv(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, jstr(v[i]));
    return a;
}

static void enc_hello(json_t *o, const drv_msg_hello *h)
{
    set(o, "token", jstr(h->token ? h->token : ""));
    set(o, "name", jstr(h->name ? h->name : ""));
    json_t *c = json_object();
    set(c, "cpu_cores", json_integer(h->caps.cpu_cores));
    set(c, "memory_mb", json_integer((json_int_t)h->caps.memory_mb));
    set(c, "gpu_count", json_integer(h->caps.gpu_count));
    set(c, "gpu_memory_mb", json_integer((json_int_t)h->caps.gpu_memory_mb));
    set_opt_str(c, "cuda_cc", h->caps.cuda_cc);
    set_opt_str(c, "driver_version", h->caps.driver_version);
    set(c, "tags", enc_strv(h->caps.tags));
    set_opt_str(c, "os", h->caps.os);
    set_opt_str(c, "arch", h->caps.arch);
    set(o, "capabilities", c);
    set(o, "slots", json_integer(h->slots));
    set(o, "speed", jreal(h->speed));
    set(o, "running", enc_refs(h->running, h->running_count));
    set_opt_str(o, "instance", h->instance);
}

static void enc_test(json_t *a, const drv_msg_test *t)
{
    json_t *o = json_object();
    set(o, "task_id", json_integer((json_int_t)t->task_id));
    set(o, "attempt", json_integer(t->attempt));
    set(o, "name", jstr(t->name ? t->name : ""));
    set(o, "argv", enc_strv(t->argv));
    if (t->env) {
        json_t *env = json_object();
        for (size_t i = 0; t->env[i]; i++) {
            const char *eq = strchr(t->env[i], '=');
            size_t kn = eq ? (size_t)(eq - t->env[i]) : strlen(t->env[i]);
            json_t *key = drv_json_text(t->env[i], kn);
            json_object_set_new(env, json_string_value(key), jstr(eq ? eq + 1 : ""));
            json_decref(key);
        }
        set(o, "env", env);
    }
    set_opt_str(o, "cwd", t->cwd);
    set(o, "timeout_s", jreal(t->timeout_s));
    set(o, "output_cap_bytes", json_integer((json_int_t)t->output_cap_bytes));
    set(o, "shell", json_boolean(t->shell));
    json_array_append_new(a, o);
}

static void enc_finished(json_t *o, const drv_msg_finished *f)
{
    set_ref(o, &f->ref);
    set(o, "exit_code", f->has_exit_code ? json_integer(f->exit_code) : json_null());
    set(o, "signal", f->has_signal ? json_integer(f->signal) : json_null());
    set(o, "timed_out", json_boolean(f->timed_out));
    set(o, "infra_failure", json_boolean(f->infra_failure));
    set_opt_str(o, "error", f->error);
    set(o, "duration_s", jreal(f->duration_s));
    set(o, "peak_memory_kb", json_integer((json_int_t)f->peak_memory_kb));
    if (f->output_tail)
        set(o, "output_tail", drv_json_text(f->output_tail, f->output_tail_len));
    if (f->stderr_tail)
        set(o, "stderr_tail", drv_json_text(f->stderr_tail, f->stderr_tail_len));
}

/* ---- the fast path of "assign" and "finished" ----
 * The two frames sent per test, written straight into a buffer instead of through a
 * jansson tree: the same bytes json_dumps(JSON_COMPACT) gives for the tree the general
 * encoder builds (same members in the same order, strings escaped as jansson escapes
 * them, invalid UTF-8 replaced as drv_json_text does, reals formatted as jansson's
 * jsonp_dtostr does), at a fraction of the cost. test_protocol checks the identity. */

typedef struct jbuf {
    char *p; /* owned until handed to the caller */
    size_t len, cap;
} jbuf;

static void jb_reserve(jbuf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->p = drv_xrealloc(b->p, cap);
    b->cap = cap;
}

static void jb_raw(jbuf *b, const char *s, size_t n)
{
    jb_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

#define JB_LIT(b, lit) jb_raw((b), lit, sizeof lit - 1)

/* A JSON string of the n bytes at s: escaped as jansson's dump_string does, each byte
 * that starts no valid UTF-8 sequence replaced by U+FFFD as drv_json_text does; or,
 * when strict, false at the first such byte (as jansson's json_string refuses it). */
static bool jb_str_mode(jbuf *b, const char *s, size_t n, bool strict)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)s;
    jb_reserve(b, n + 2);
    b->p[b->len++] = '"';
    size_t run = 0; /* bytes at u[i - run .. i) to copy as they are */
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        const char *esc = NULL;
        char ubuf[7];
        size_t k = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\b')
            esc = "\\b";
        else if (c == '\f')
            esc = "\\f";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20) {
            memcpy(ubuf, "\\u00", 4);
            ubuf[4] = hex[c >> 4];
            ubuf[5] = hex[c & 15];
            ubuf[6] = '\0';
            esc = ubuf;
        } else if (c >= 0x80 && (k = utf8_seq(u + i, n - i)) == 0) {
            if (strict)
                return false;
            esc = "\xEF\xBF\xBD";
            k = 1;
        }
        if (!esc) {
            i += k;
            run += k;
            continue;
        }
        jb_raw(b, (const char *)u + i - run, run);
        run = 0;
        jb_raw(b, esc, strlen(esc));
        i += k;
    }
    jb_raw(b, (const char *)u + n - run, run);
    JB_LIT(b, "\"");
    return true;
}

static void jb_str(jbuf *b, const char *s, size_t n)
{
    jb_str_mode(b, s, n, false);
}

static void jb_cstr(jbuf *b, const char *s)
{
    jb_str(b, s, strlen(s));
}

static void jb_int(jbuf *b, int64_t v)
{
    char t[32];
    int n = snprintf(t, sizeof t, "%" PRId64, v);
    jb_raw(b, t, (size_t)n);
}

/* A real as jansson writes it (jsonp_dtostr with precision 17): "%.17g", ".0" added
 * when neither a dot nor an exponent shows, the exponent without '+' or leading zeros;
 * null for NaN and infinities (jreal). */
static void jb_real(jbuf *b, double d)
{
    if (!isfinite(d)) {
        JB_LIT(b, "null");
        return;
    }
    char t[40];
    int n = snprintf(t, sizeof t, "%.17g", d);
    size_t len = (size_t)n;
    if (!strchr(t, '.') && !strchr(t, 'e')) {
        memcpy(t + len, ".0", 3);
        len += 2;
    }
    char *start = strchr(t, 'e');
    if (start) {
        start++;
        char *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len - (size_t)(end - t) + 1);
            len -= (size_t)(end - start);
        }
    }
    jb_raw(b, t, len);
}

static void jb_bool(jbuf *b, bool v)
{
    if (v)
        JB_LIT(b, "true");
    else
        JB_LIT(b, "false");
}

/* Writes one test of an assign as enc_test builds it. Returns false for an env with a
 * repeated name (jansson keeps one member for it, in its first place, with the last
 * value): the general encoder takes such a message. */
static bool jb_test(jbuf *b, const drv_msg_test *t)
{
    JB_LIT(b, "{\"task_id\":");
    jb_int(b, (int64_t)t->task_id);
    JB_LIT(b, ",\"attempt\":");
    jb_int(b, t->attempt);
    JB_LIT(b, ",\"name\":");
    jb_cstr(b, t->name ? t->name : "");
    JB_LIT(b, ",\"argv\":[");
    for (size_t i = 0; t->argv && t->argv[i]; i++) {
        if (i)
            JB_LIT(b, ",");
        jb_cstr(b, t->argv[i]);
    }
    JB_LIT(b, "]");
    if (t->env) {
        JB_LIT(b, ",\"env\":{");
        for (size_t i = 0; t->env[i]; i++) {
            const char *eq = strchr(t->env[i], '=');
            size_t kn = eq ? (size_t)(eq - t->env[i]) : strlen(t->env[i]);
            for (size_t j = 0; j < i; j++) {
                const char *e2 = strchr(t->env[j], '=');
                size_t k2 = e2 ? (size_t)(e2 - t->env[j]) : strlen(t->env[j]);
                if (k2 == kn && memcmp(t->env[i], t->env[j], kn) == 0)
                    return false;
            }
            /* A name with bytes beyond ASCII may be invalid UTF-8, which the general
             * encoder repairs before it looks for repeats: leave it that work. */
            for (size_t j = 0; j < kn; j++)
                if ((unsigned char)t->env[i][j] >= 0x80)
                    return false;
            if (i)
                JB_LIT(b, ",");
            jb_str(b, t->env[i], kn);
            JB_LIT(b, ":");
            jb_cstr(b, eq ? eq + 1 : "");
        }
        JB_LIT(b, "}");
    }
    if (t->cwd) {
        JB_LIT(b, ",\"cwd\":");
        jb_cstr(b, t->cwd);
    }
    JB_LIT(b, ",\"timeout_s\":");
    jb_real(b, t->timeout_s);
    JB_LIT(b, ",\"output_cap_bytes\":");
    jb_int(b, (int64_t)t->output_cap_bytes);
    JB_LIT(b, ",\"shell\":");
    jb_bool(b, t->shell);
    JB_LIT(b, "}");
    return true;
}

/* See protocol.h. */
char *drv_json_strv_dump(char *const *v, size_t *bad)
{
    jbuf b = {0};
    JB_LIT(&b, "[");
    for (size_t i = 0; v && v[i]; i++) {
        if (i)
            JB_LIT(&b, ",");
        if (!jb_str_mode(&b, v[i], strlen(v[i]), true)) {
            if (bad)
                *bad = i;
            free(b.p);
            return NULL;
        }
    }
    JB_LIT(&b, "]");
    return b.p;
}

/* Encodes an assign or a finished the fast way. Returns the text (owned by the caller)
 * or NULL when m is another type or needs the general encoder. */
static char *encode_fast(const drv_msg *m, size_t *len)
{
    jbuf b = {0};
    if (m->type == DRV_MSG_ASSIGN) {
        JB_LIT(&b, "{\"type\":\"assign\",\"v\":1,\"tests\":[");
        for (size_t i = 0; i < m->assign.count; i++) {
            if (i)
                JB_LIT(&b, ",");
            if (!jb_test(&b, &m->assign.tests[i])) {
                free(b.p);
                return NULL;
            }
        }
        JB_LIT(&b, "]");
        if (m->assign.epoch || m->assign.sent_at > 0 || m->assign.lease_s > 0) {
            char fence[128];
            int n =
                snprintf(fence, sizeof fence, ",\"epoch\":%llu,\"sent_at\":%.6f,\"lease_s\":%.3f",
                         (unsigned long long)m->assign.epoch, m->assign.sent_at, m->assign.lease_s);
            jb_raw(&b, fence, (size_t)n);
        }
        JB_LIT(&b, "}");
    } else if (m->type == DRV_MSG_FINISHED) {
        const drv_msg_finished *f = &m->finished;
        JB_LIT(&b, "{\"type\":\"finished\",\"v\":1,\"task_id\":");
        jb_int(&b, (int64_t)f->ref.task_id);
        JB_LIT(&b, ",\"attempt\":");
        jb_int(&b, f->ref.attempt);
        JB_LIT(&b, ",\"exit_code\":");
        if (f->has_exit_code)
            jb_int(&b, f->exit_code);
        else
            JB_LIT(&b, "null");
        JB_LIT(&b, ",\"signal\":");
        if (f->has_signal)
            jb_int(&b, f->signal);
        else
            JB_LIT(&b, "null");
        JB_LIT(&b, ",\"timed_out\":");
        jb_bool(&b, f->timed_out);
        JB_LIT(&b, ",\"infra_failure\":");
        jb_bool(&b, f->infra_failure);
        if (f->error) {
            JB_LIT(&b, ",\"error\":");
            jb_cstr(&b, f->error);
        }
        JB_LIT(&b, ",\"duration_s\":");
        jb_real(&b, f->duration_s);
        JB_LIT(&b, ",\"peak_memory_kb\":");
        jb_int(&b, (int64_t)f->peak_memory_kb);
        if (f->output_tail) {
            JB_LIT(&b, ",\"output_tail\":");
            jb_str(&b, f->output_tail, f->output_tail_len);
        }
        if (f->stderr_tail) {
            JB_LIT(&b, ",\"stderr_tail\":");
            jb_str(&b, f->stderr_tail, f->stderr_tail_len);
        }
        JB_LIT(&b, "}");
    } else {
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}

/* Encodes m; see protocol.h. */
char *drv_msg_encode(const drv_msg *m, size_t *len, drv_error *err)
{
    char *fast = drv_protocol_fast_paths ? encode_fast(m, len) : NULL;
    if (fast)
        return fast;
    if ((int)m->type <= DRV_MSG_NONE || m->type >= DRV_MSG_TYPE_COUNT)
        return drv_error_set(err, "message: cannot encode message type %d", (int)m->type), NULL;
    json_t *o = json_object();
    set(o, "type", json_string(type_names[m->type]));
    set(o, "v", json_integer(DRV_PROTOCOL_VERSION));
    switch (m->type) {
    case DRV_MSG_HELLO:
        enc_hello(o, &m->hello);
        break;
    case DRV_MSG_WELCOME:
        set(o, "worker_id", json_integer((json_int_t)m->welcome.worker_id));
        set(o, "heartbeat_interval_s", jreal(m->welcome.heartbeat_interval_s));
        set(o, "server_time", jreal(m->welcome.server_time));
        if (m->welcome.epoch)
            set(o, "epoch", json_integer((json_int_t)m->welcome.epoch));
        break;
    case DRV_MSG_HEARTBEAT:
        set(o, "load", jreal(m->heartbeat.load));
        set(o, "temperature_c",
            m->heartbeat.temperature_c < 0 ? json_null() : jreal(m->heartbeat.temperature_c));
        set(o, "throttled", json_boolean(m->heartbeat.throttled));
        set(o, "overloaded", json_boolean(m->heartbeat.overloaded));
        /* Measurements: sent only when known, so older coordinators see nothing new. */
        if (m->heartbeat.cpu_pressure >= 0)
            set(o, "cpu_pressure", jreal(m->heartbeat.cpu_pressure));
        if (m->heartbeat.memory_pressure >= 0)
            set(o, "memory_pressure", jreal(m->heartbeat.memory_pressure));
        if (m->heartbeat.freq_ratio >= 0)
            set(o, "freq_ratio", jreal(m->heartbeat.freq_ratio));
        if (m->heartbeat.tests_cpu >= 0)
            set(o, "tests_cpu", jreal(m->heartbeat.tests_cpu));
        set(o, "running", enc_refs(m->heartbeat.running, m->heartbeat.running_count));
        set(o, "free_slots", json_integer(m->heartbeat.free_slots));
        break;
    case DRV_MSG_ASSIGN: {
        json_t *a = json_array();
        for (size_t i = 0; i < m->assign.count; i++)
            enc_test(a, &m->assign.tests[i]);
        set(o, "tests", a);
        if (m->assign.epoch || m->assign.sent_at > 0 || m->assign.lease_s > 0) {
            set(o, "epoch", json_integer((json_int_t)m->assign.epoch));
            set(o, "sent_at", jreal(m->assign.sent_at));
            set(o, "lease_s", jreal(m->assign.lease_s));
        }
        break;
    }
    case DRV_MSG_STARTED:
        set_ref(o, &m->started.ref);
        set(o, "pid", json_integer(m->started.pid));
        set(o, "t", jreal(m->started.t));
        break;
    case DRV_MSG_OUTPUT:
        set_ref(o, &m->output.ref);
        set(o, "stream", json_string(m->output.stream == DRV_STREAM_STDERR ? "stderr" : "stdout"));
        set(o, "data",
            m->output.data ? drv_json_text(m->output.data, m->output.len) : json_string(""));
        set(o, "seq", json_integer((json_int_t)m->output.seq));
        break;
    case DRV_MSG_FINISHED:
        enc_finished(o, &m->finished);
        break;
    case DRV_MSG_CANCEL:
        set_ref(o, &m->cancel.ref);
        break;
    case DRV_MSG_RELEASE:
        set_ref(o, &m->release.ref);
        break;
    case DRV_MSG_RELEASED:
        set_ref(o, &m->release.ref);
        set(o, "dropped", json_boolean(m->release.dropped));
        break;
    case DRV_MSG_DRAIN:
        set(o, "reason", jstr(m->drain.reason ? m->drain.reason : ""));
        if (m->drain.has_keeps)
            set(o, "keeps", enc_refs(m->drain.keeps, m->drain.keeps_count));
        break;
    case DRV_MSG_ERROR:
        set(o, "message", jstr(m->error.message ? m->error.message : "error"));
        set_opt_str(o, "field", m->error.field);
        break;
    default:
        break;
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s) {
        fprintf(stderr, "drover: out of memory encoding a %s message\n", type_names[m->type]);
        abort();
    }
    if (len)
        *len = strlen(s);
    return s;
}
