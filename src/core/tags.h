/* tags.h - tag interning and tag bitsets.
 *
 * Every capability a worker offers that is not a number (a hardware back-end such as
 * "cuda" or "webgpu", a browser such as "chromium", a free-form label such as
 * "zone-a") is a tag. Tags are interned once to small integers, so a worker's tags
 * and a test's required tags are fixed-size bitsets and "may this worker run this
 * test" is a few word operations.
 *
 * The table starts with the well-known back-ends and browsers already interned (their
 * ids are the DRV_TAG_* constants below) so that the analyzer and the probe can use
 * them without a table at hand. Names are lower-case [a-z0-9._:/-], 1..63 bytes. */
#ifndef DRV_CORE_TAGS_H
#define DRV_CORE_TAGS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"

#define DRV_TAGS_MAX     256
#define DRV_TAG_NAME_MAX 63

/* Well-known tags, interned in this order by drv_tag_table_new(). */
enum {
    DRV_TAG_CPU = 0,
    DRV_TAG_CUDA,
    DRV_TAG_ROCM,
    DRV_TAG_MPS,
    DRV_TAG_OPENVINO,
    DRV_TAG_WEBGPU,
    DRV_TAG_WEBNN,
    DRV_TAG_QNN,
    DRV_TAG_CHROMIUM,
    DRV_TAG_CHROME,
    DRV_TAG_FIREFOX,
    DRV_TAG_EDGE,
    DRV_TAG_WELL_KNOWN_COUNT
};
#define DRV_TAG_FIRST_BACKEND DRV_TAG_CPU
#define DRV_TAG_LAST_BACKEND  DRV_TAG_QNN
#define DRV_TAG_FIRST_BROWSER DRV_TAG_CHROMIUM
#define DRV_TAG_LAST_BROWSER  DRV_TAG_EDGE

typedef struct drv_tagset {
    uint64_t w[DRV_TAGS_MAX / 64];
} drv_tagset;

typedef struct drv_tag_table drv_tag_table;

/* Creates a table holding the well-known tags. The caller frees it. */
drv_tag_table *drv_tag_table_new(void);
void drv_tag_table_free(drv_tag_table *t);

/* Returns the id of name, interning it if new; -1 with err filled when the name is
 * not a valid tag name or the table already holds DRV_TAGS_MAX tags. */
int drv_tag_intern(drv_tag_table *t, const char *name, drv_error *err);
/* Returns the id of name, or -1 when it was never interned. */
int drv_tag_lookup(const drv_tag_table *t, const char *name);
/* Returns the name of id (owned by the table), or "?" for an unknown id. */
const char *drv_tag_name(const drv_tag_table *t, int id);
int drv_tag_count(const drv_tag_table *t);

/* Parses a comma-separated list of tag names into set, interning them. */
int drv_tagset_parse(drv_tag_table *t, const char *list, drv_tagset *set, drv_error *err);
/* Writes the names in set, comma-separated, into buf (always NUL-terminated). */
void drv_tagset_format(const drv_tag_table *t, const drv_tagset *set, char *buf, size_t len);

static inline void drv_tagset_clear(drv_tagset *s)
{
    memset(s, 0, sizeof *s);
}
static inline void drv_tagset_add(drv_tagset *s, int id)
{
    s->w[id >> 6] |= (uint64_t)1 << (id & 63);
}
static inline void drv_tagset_remove(drv_tagset *s, int id)
{
    s->w[id >> 6] &= ~((uint64_t)1 << (id & 63));
}
static inline bool drv_tagset_has(const drv_tagset *s, int id)
{
    return (s->w[id >> 6] >> (id & 63)) & 1;
}
/* True when every tag of a is in b. */
static inline bool drv_tagset_subset(const drv_tagset *a, const drv_tagset *b)
{
    uint64_t x = 0;
    for (int i = 0; i < DRV_TAGS_MAX / 64; i++)
        x |= a->w[i] & ~b->w[i];
    return x == 0;
}
static inline bool drv_tagset_intersects(const drv_tagset *a, const drv_tagset *b)
{
    uint64_t x = 0;
    for (int i = 0; i < DRV_TAGS_MAX / 64; i++)
        x |= a->w[i] & b->w[i];
    return x != 0;
}
static inline bool drv_tagset_empty(const drv_tagset *s)
{
    uint64_t x = 0;
    for (int i = 0; i < DRV_TAGS_MAX / 64; i++)
        x |= s->w[i];
    return x == 0;
}
static inline bool drv_tagset_equal(const drv_tagset *a, const drv_tagset *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}
static inline int drv_tagset_count(const drv_tagset *s)
{
    int n = 0;
    for (int i = 0; i < DRV_TAGS_MAX / 64; i++)
        n += __builtin_popcountll(s->w[i]);
    return n;
}
/* Returns the lowest id in a that is not in b, or -1. */
static inline int drv_tagset_first_missing(const drv_tagset *a, const drv_tagset *b)
{
    for (int i = 0; i < DRV_TAGS_MAX / 64; i++) {
        uint64_t m = a->w[i] & ~b->w[i];
        if (m)
            return i * 64 + __builtin_ctzll(m);
    }
    return -1;
}
/* Returns the lowest id in both a and b, or -1. */
static inline int drv_tagset_first_common(const drv_tagset *a, const drv_tagset *b)
{
    for (int i = 0; i < DRV_TAGS_MAX / 64; i++) {
        uint64_t m = a->w[i] & b->w[i];
        if (m)
            return i * 64 + __builtin_ctzll(m);
    }
    return -1;
}

#endif
