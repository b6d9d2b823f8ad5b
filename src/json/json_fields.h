/* json_fields.h - reading JSON members with their path in every error, and writing bytes
 * as valid JSON text. One family of readers for every parser of drover's JSON: the wire
 * protocol, the REST submission, the balancer's config and the demo's fleet file.
 * Pure (no I/O); links jansson and the core's error type. */
#ifndef DRV_JSON_JSON_FIELDS_H
#define DRV_JSON_JSON_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/json_words.h"

/* Field flags. */
#define DRV_JSON_REQUIRED   1u  /* absent (or null) is an error */
#define DRV_JSON_NONEMPTY   2u  /* strings: not ""; arrays: at least one item */
#define DRV_JSON_NULL_WRONG 4u  /* null is a wrong value ("got null"), not an absent one */
#define DRV_JSON_ABOVE_MIN  8u  /* numbers: more than min, not equal ("a number > 0") */
#define DRV_JSON_WHOLE_REAL 16u /* integers: a real without fraction (4.0) is taken too */

#define DRV_JSON_PATH_MAX 160

/* The value as shown in an error: the number, a quoted string (cut after 40 bytes), or
 * its kind. */
void drv_json_describe(const json_t *v, char *buf, size_t len);
/* "base.key" ("key" when base is NULL or empty), cut with "..." when too long. */
void drv_json_path_key(char out[DRV_JSON_PATH_MAX], const char *base, const char *key);
/* "base[index]". */
void drv_json_path_index(char out[DRV_JSON_PATH_MAX], const char *base, size_t index);

/* Each reader looks up key in obj (an object) and returns 1 with *out set when it is
 * present and valid, 0 when absent or null and not DRV_JSON_REQUIRED (*out untouched),
 * -1 with err "path.key: must be ..., got ..." otherwise. Strings must not hold NUL
 * bytes; *out points into obj. */
int drv_json_string(const json_t *obj, const char *path, const char *key, unsigned flags,
                    size_t max_len, const char **out, drv_error *err);
int drv_json_uint(const json_t *obj, const char *path, const char *key, unsigned flags,
                  uint64_t min, uint64_t max, uint64_t *out, drv_error *err);
int drv_json_int(const json_t *obj, const char *path, const char *key, unsigned flags, int64_t min,
                 int64_t max, int64_t *out, drv_error *err);
int drv_json_number(const json_t *obj, const char *path, const char *key, unsigned flags,
                    double min, double max, double *out, drv_error *err);
int drv_json_bool(const json_t *obj, const char *path, const char *key, unsigned flags, bool *out,
                  drv_error *err);
/* An array of at most max_items strings of at most max_len bytes; *out is a new
 * NULL-terminated vector (free with drv_strv_free). */
int drv_json_strv(const json_t *obj, const char *path, const char *key, unsigned flags,
                  size_t max_items, size_t max_len, char ***out, drv_error *err);
/* A JSON string of the n bytes at s (a new reference), each byte that is not part of
 * valid UTF-8 replaced by U+FFFD; NULL gives JSON null. Never fails. */
json_t *drv_json_text(const char *s, size_t n);
/* Checks that obj holds only keys of the NULL-terminated list known. -1 with err
 * "path.key: unknown field (known: a, b)" otherwise. */
int drv_json_check_keys(const json_t *obj, const char *path, const char *const *known,
                        drv_error *err);

/* The lower-level steps the readers are made of, for readers of other shapes (an object
 * of refs, an enumeration): drv_json_field looks key up in obj and writes its path to
 * sub; it returns the value, or NULL when absent or null with *rc 0, or -1 (with err
 * "path.key: required") when flags has DRV_JSON_REQUIRED; *rc is 1 when found.
 * drv_json_wrong reports "path: must be EXPECTED, got VALUE" and returns -1. */
const json_t *drv_json_field(const json_t *obj, const char *path, const char *key, unsigned flags,
                             char sub[DRV_JSON_PATH_MAX], int *rc, drv_error *err);
int drv_json_wrong(drv_error *err, const char *path, const char *expected, const json_t *v);
/* Checks one string value v at path (an array item, an object's value): a string without
 * NUL bytes, non-empty when flags has DRV_JSON_NONEMPTY, at most max_len bytes. Returns 0
 * or -1 with err. */
int drv_json_check_string(const json_t *v, const char *path, unsigned flags, size_t max_len,
                          drv_error *err);

/* The length of the valid UTF-8 sequence at s (n > 0 bytes left), or 0 when the byte at
 * s does not start one: overlong forms, surrogates and code points above U+10FFFF are
 * invalid, as jansson has them. */
size_t drv_utf8_seq(const unsigned char *s, size_t n);

#endif
