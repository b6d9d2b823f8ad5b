/* flat_json.h - a scanner for the common, simple shape of the hottest frames: one flat
 * JSON object whose values are numbers, true, false, null or plain strings. Internal to
 * the protocol module (message.c); not part of protocol.h.
 *
 * Why: a worker reports every test with one "finished" frame, and building a jansson
 * tree for it (a hash table, a node per value) cost the coordinator more than recording
 * the result. The scanner accepts only a strict subset of JSON (ASCII strings without
 * escapes, no nesting, no duplicate keys) and says "not flat" for everything else, so
 * the caller falls back to jansson, which stays the one judge of malformed input and
 * the source of every error message. Nothing is allocated: tokens point into the
 * caller's buffer. */
#ifndef DRV_PROTOCOL_FLAT_JSON_H
#define DRV_PROTOCOL_FLAT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DRV_FLAT_MAX_MEMBERS 16

typedef enum drv_flat_kind {
    DRV_FLAT_INT,    /* -?(0|[1-9][0-9]*) that fits int64_t (jansson's integer) */
    DRV_FLAT_REAL,   /* a number with a fraction or an exponent, finite as a double */
    DRV_FLAT_STRING, /* printable ASCII without '"' or '\\': the bytes are the value */
    DRV_FLAT_TRUE,
    DRV_FLAT_FALSE,
    DRV_FLAT_NULL,
} drv_flat_kind;

typedef struct drv_flat_member {
    const char *key; /* not NUL-terminated; key_len bytes */
    size_t key_len;
    drv_flat_kind kind;
    const char *str; /* DRV_FLAT_STRING: the value's bytes (str_len), in the buffer */
    size_t str_len;
    int64_t i; /* DRV_FLAT_INT */
    double d;  /* DRV_FLAT_INT and DRV_FLAT_REAL: the value as a double */
} drv_flat_member;

typedef struct drv_flat_object {
    drv_flat_member m[DRV_FLAT_MAX_MEMBERS];
    size_t n;
} drv_flat_object;

/* Scans buf[0..len) as one flat object (surrounding whitespace allowed). Returns true
 * with out filled when it is one, false when it is anything else (valid JSON of another
 * shape, or invalid JSON): the caller then parses it the general way. */
bool drv_flat_parse(const char *buf, size_t len, drv_flat_object *out);

/* The member named key, or NULL. */
const drv_flat_member *drv_flat_get(const drv_flat_object *o, const char *key);

/* A cursor over a buffer, for a caller that scans one known nested shape itself (the
 * assign frame: an array of tests, each with an argv array and an env object) with
 * the same subset of JSON. Each call skips whitespace first; false means "not in the
 * subset here" and leaves the cursor anywhere (the caller gives up the fast path). */
typedef struct drv_flat_cursor {
    const char *p, *end;
} drv_flat_cursor;

/* Consumes ch if it is the next character. */
bool drv_flat_take(drv_flat_cursor *c, char ch);
/* A plain string (see DRV_FLAT_STRING): its bytes, in the buffer. */
bool drv_flat_string(drv_flat_cursor *c, const char **str, size_t *len);
/* A scalar: number, plain string, true, false or null (m's key is left alone). */
bool drv_flat_scalar(drv_flat_cursor *c, drv_flat_member *m);
/* Only whitespace is left. */
bool drv_flat_at_end(drv_flat_cursor *c);
/* An array of at most max_items plain strings of at most max_len bytes each, into a new
 * NULL-terminated vector *out (also on false: the caller frees it with drv_strv_free). */
bool drv_flat_strv(drv_flat_cursor *c, size_t max_items, size_t max_len, char ***out);

#endif
