/* json_fields.c - the JSON field readers every parser uses (the wire protocol, the REST
 * submission, the balancer's config, the demo's fleet file): each reads one member of an
 * object and names it by its path in the error ("tests[3].requirements.gpu_memory_gb:
 * must be a number >= 0, got -1"); and the UTF-8 rules jansson applies, for writing
 * arbitrary bytes (a test's output) as a valid JSON string. */
#include "json/json_fields.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/task.h"
#include "core/worker.h"

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
const json_t *drv_json_field(const json_t *obj, const char *path, const char *key, unsigned flags,
                             char sub[DRV_JSON_PATH_MAX], int *rc, drv_error *err)
{
    drv_json_path_key(sub, path, key);
    const json_t *v = json_object_get(obj, key);
    if (v && (!json_is_null(v) || (flags & DRV_JSON_NULL_WRONG))) {
        *rc = 1;
        return v;
    }
    *rc = (flags & DRV_JSON_REQUIRED) ? drv_error_set(err, "%s: required", sub) : 0;
    return NULL;
}

/* Reports that v at path is not what was expected. Returns -1. */
int drv_json_wrong(drv_error *err, const char *path, const char *expected, const json_t *v)
{
    char got[64];
    drv_json_describe(v, got, sizeof got);
    return drv_error_set(err, "%s: must be %s, got %s", path, expected, got);
}

/* Checks one string value v at path: a string without NUL bytes, non-empty when asked,
 * at most max_len bytes. Returns 0 or -1 with err. */
int drv_json_check_string(const json_t *v, const char *path, unsigned flags, size_t max_len,
                          drv_error *err)
{
    if (!json_is_string(v))
        return drv_json_wrong(err, path, "a string", v);
    size_t n = json_string_length(v);
    if (strlen(json_string_value(v)) != n)
        return drv_error_set(err, "%s: must not contain NUL bytes", path);
    if ((flags & DRV_JSON_NONEMPTY) && n == 0)
        return drv_error_set(err, "%s: must not be empty", path);
    if (n > max_len)
        return drv_error_set(err, "%s: %zu bytes, longer than the limit of %zu", path, n, max_len);
    return 0;
}

/* Reads a string field; see json_fields.h. */
int drv_json_string(const json_t *obj, const char *path, const char *key, unsigned flags,
                    size_t max_len, const char **out, drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = drv_json_field(obj, path, key, flags, sub, &rc, err);
    if (rc <= 0)
        return rc;
    if (drv_json_check_string(v, sub, flags, max_len, err) < 0)
        return -1;
    *out = json_string_value(v);
    return 1;
}

/* Reads an integer field in min..max (JSON integers only, not 1.0, unless
 * DRV_JSON_WHOLE_REAL). */
int drv_json_int(const json_t *obj, const char *path, const char *key, unsigned flags, int64_t min,
                 int64_t max, int64_t *out, drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = drv_json_field(obj, path, key, flags, sub, &rc, err);
    if (rc <= 0)
        return rc;
    int64_t i = 0;
    bool ok = json_is_integer(v);
    if (ok) {
        i = json_integer_value(v);
    } else if ((flags & DRV_JSON_WHOLE_REAL) && json_is_real(v)) {
        double d = json_real_value(v);
        /* Whole and inside int64_t's range (2^63 is the first double outside it). */
        ok = d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0;
        i = ok ? (int64_t)d : 0;
    }
    if (!ok || i < min || i > max) {
        char expected[96];
        snprintf(expected, sizeof expected, "an integer %" PRId64 "..%" PRId64, min, max);
        return drv_json_wrong(err, sub, expected, v);
    }
    *out = i;
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

/* Reads a number field (integer or real) in min..max (above min with
 * DRV_JSON_ABOVE_MIN); max may be INFINITY. */
int drv_json_number(const json_t *obj, const char *path, const char *key, unsigned flags,
                    double min, double max, double *out, drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = drv_json_field(obj, path, key, flags, sub, &rc, err);
    if (rc <= 0)
        return rc;
    double d = json_is_number(v) ? json_number_value(v) : NAN;
    bool above = flags & DRV_JSON_ABOVE_MIN;
    if (!json_is_number(v) || !(above ? d > min : d >= min) || !(d <= max)) {
        char expected[96];
        if (isinf(max))
            snprintf(expected, sizeof expected, "a number %s %g", above ? ">" : ">=", min);
        else if (above)
            snprintf(expected, sizeof expected, "a number > %g and <= %g", min, max);
        else
            snprintf(expected, sizeof expected, "a number %g..%g", min, max);
        return drv_json_wrong(err, sub, expected, v);
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
    const json_t *v = drv_json_field(obj, path, key, flags, sub, &rc, err);
    if (rc <= 0)
        return rc;
    if (!json_is_boolean(v))
        return drv_json_wrong(err, sub, "true or false", v);
    *out = json_is_true(v);
    return 1;
}

/* Reads an array of strings into a new NULL-terminated vector. */
int drv_json_strv(const json_t *obj, const char *path, const char *key, unsigned flags,
                  size_t max_items, size_t max_len, char ***out, drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX], item[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = drv_json_field(obj, path, key, flags, sub, &rc, err);
    if (rc <= 0)
        return rc;
    if (!json_is_array(v))
        return drv_json_wrong(err, sub, "an array of strings", v);
    size_t n = json_array_size(v);
    if (n == 0 && (flags & DRV_JSON_NONEMPTY))
        return drv_error_set(err, "%s: must not be empty", sub);
    if (n > max_items)
        return drv_error_set(err, "%s: %zu items, more than the limit of %zu", sub, n, max_items);
    for (size_t i = 0; i < n; i++) {
        drv_json_path_index(item, sub, i);
        if (drv_json_check_string(json_array_get(v, i), item, 0, max_len, err) < 0)
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
size_t drv_utf8_seq(const unsigned char *s, size_t n)
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
        size_t k = drv_utf8_seq(u + i, n - i);
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
        size_t k = drv_utf8_seq(u + i, n - i);
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
