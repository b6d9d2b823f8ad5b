/* tags.c - the tag intern table and tag-set parsing and formatting.
 *
 * The table is an array of names indexed by id plus an open-addressing hash index
 * (linear probing, power-of-two size, at most half full) from name to id. Tags are
 * never removed, so the index needs no tombstones. */
#include "core/tags.h"

#include <stdio.h>
#include <stdlib.h>

#define TAG_INDEX_SIZE  (DRV_TAGS_MAX * 2) /* power of two, load factor <= 1/2 */
#define TAG_INDEX_EMPTY (-1)

struct drv_tag_table {
    int count;
    char names[DRV_TAGS_MAX][DRV_TAG_NAME_MAX + 1];
    int16_t index[TAG_INDEX_SIZE]; /* tag id, or TAG_INDEX_EMPTY */
};

/* The names of the DRV_TAG_* constants, in enum order. */
static const char *const well_known[DRV_TAG_WELL_KNOWN_COUNT] = {
    [DRV_TAG_CPU] = "cpu",       [DRV_TAG_CUDA] = "cuda",         [DRV_TAG_ROCM] = "rocm",
    [DRV_TAG_MPS] = "mps",       [DRV_TAG_OPENVINO] = "openvino", [DRV_TAG_WEBGPU] = "webgpu",
    [DRV_TAG_WEBNN] = "webnn",   [DRV_TAG_QNN] = "qnn",           [DRV_TAG_CHROMIUM] = "chromium",
    [DRV_TAG_CHROME] = "chrome", [DRV_TAG_FIREFOX] = "firefox",   [DRV_TAG_EDGE] = "edge",
};

/* FNV-1a over the first n bytes of s. */
static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static bool tag_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
           c == '/' || c == '-';
}

/* Checks the n bytes at name against the tag name rules. Returns 0, or -1 with err
 * naming the name and the first offending character. */
static int validate_name(const char *name, size_t n, drv_error *err)
{
    if (n == 0)
        return drv_error_set(err, "tag name is empty");
    if (n > DRV_TAG_NAME_MAX)
        return drv_error_set(err, "tag \"%.*s...\": longer than %d bytes (%zu)", 20, name,
                             DRV_TAG_NAME_MAX, n);
    for (size_t i = 0; i < n; i++) {
        if (!tag_char_ok(name[i])) {
            unsigned char c = (unsigned char)name[i];
            if (c >= 0x20 && c < 0x7f)
                return drv_error_set(err,
                                     "tag \"%.*s\": character '%c' at position %zu is not "
                                     "allowed (use lower-case a-z, 0-9 and . _ : / -)",
                                     (int)n, name, c, i + 1);
            return drv_error_set(err,
                                 "tag \"%.*s\": byte 0x%02x at position %zu is not allowed "
                                 "(use lower-case a-z, 0-9 and . _ : / -)",
                                 (int)n, name, c, i + 1);
        }
    }
    return 0;
}

/* Returns the index slot holding the n-byte name, or the empty slot where it belongs. */
static size_t find_slot(const drv_tag_table *t, const char *name, size_t n)
{
    size_t i = name_hash(name, n) & (TAG_INDEX_SIZE - 1);
    for (;;) {
        int id = t->index[i];
        if (id == TAG_INDEX_EMPTY)
            return i;
        if (strncmp(t->names[id], name, n) == 0 && t->names[id][n] == '\0')
            return i;
        i = (i + 1) & (TAG_INDEX_SIZE - 1);
    }
}

/* Interns the n bytes at name (already validated). Returns the id, or -1 with err
 * filled when the table is full. */
static int intern_n(drv_tag_table *t, const char *name, size_t n, drv_error *err)
{
    size_t slot = find_slot(t, name, n);
    if (t->index[slot] != TAG_INDEX_EMPTY)
        return t->index[slot];
    if (t->count >= DRV_TAGS_MAX)
        return drv_error_set(err, "tag \"%.*s\": the tag table is full (%d tags)", (int)n, name,
                             DRV_TAGS_MAX);
    int id = t->count++;
    memcpy(t->names[id], name, n);
    t->names[id][n] = '\0';
    t->index[slot] = (int16_t)id;
    return id;
}

/* Creates a table holding the well-known tags with ids equal to the DRV_TAG_*
 * constants. The caller owns the table and frees it with drv_tag_table_free(). */
drv_tag_table *drv_tag_table_new(void)
{
    drv_tag_table *t = drv_xcalloc(1, sizeof *t);
    for (size_t i = 0; i < TAG_INDEX_SIZE; i++)
        t->index[i] = TAG_INDEX_EMPTY;
    for (int i = 0; i < DRV_TAG_WELL_KNOWN_COUNT; i++)
        intern_n(t, well_known[i], strlen(well_known[i]), NULL);
    return t;
}

/* Frees the table and every name in it; NULL is a no-op. */
void drv_tag_table_free(drv_tag_table *t)
{
    free(t);
}

/* Returns the id of name, interning it when new. A NULL or invalid name, or a new
 * name when the table is full, gives -1 with err filled; the table is unchanged. */
int drv_tag_intern(drv_tag_table *t, const char *name, drv_error *err)
{
    if (!name)
        return drv_error_set(err, "tag name is missing (NULL)");
    size_t n = strlen(name);
    if (validate_name(name, n, err) < 0)
        return -1;
    return intern_n(t, name, n, err);
}

/* Returns the id of name, or -1 when it was never interned (or is NULL). */
int drv_tag_lookup(const drv_tag_table *t, const char *name)
{
    if (!name)
        return -1;
    size_t n = strlen(name);
    if (n == 0 || n > DRV_TAG_NAME_MAX)
        return -1;
    return t->index[find_slot(t, name, n)];
}

/* Returns the name of id, owned by the table; "?" for an id never handed out. */
const char *drv_tag_name(const drv_tag_table *t, int id)
{
    if (id < 0 || id >= t->count)
        return "?";
    return t->names[id];
}

/* Returns how many tags the table holds, the well-known ones included. */
int drv_tag_count(const drv_tag_table *t)
{
    return t->count;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parses "a,b, c" into set (cleared first), interning every name. Blanks around
 * names are ignored. NULL or an all-blank list gives the empty set. An empty item
 * ("a,,b", "a,"), an invalid name or a full table gives -1 with err naming the item
 * and its position; set is then left unchanged (names interned before the failing
 * one stay in the table, which is harmless). */
int drv_tagset_parse(drv_tag_table *t, const char *list, drv_tagset *set, drv_error *err)
{
    drv_tagset out;
    drv_tagset_clear(&out);
    if (!list) {
        *set = out;
        return 0;
    }
    const char *p = list;
    while (is_blank(*p))
        p++;
    if (*p == '\0') {
        *set = out;
        return 0;
    }
    /* Validate every item before interning any, so a bad list interns nothing. */
    for (int pass = 0; pass < 2; pass++) {
        int item = 1;
        const char *start = list;
        for (;;) {
            const char *end = strchr(start, ',');
            if (!end)
                end = start + strlen(start);
            const char *a = start, *b = end;
            while (a < b && is_blank(*a))
                a++;
            while (b > a && is_blank(b[-1]))
                b--;
            size_t n = (size_t)(b - a);
            if (pass == 0) {
                if (n == 0)
                    return drv_error_set(err, "tag list \"%s\": item %d (at byte %zu) is empty",
                                         list, item, (size_t)(start - list) + 1);
                if (validate_name(a, n, err) < 0)
                    return drv_error_prefix(err, "tag list \"%s\", item %d", list, item);
            } else {
                int id = intern_n(t, a, n, err);
                if (id < 0)
                    return drv_error_prefix(err, "tag list \"%s\", item %d", list, item);
                drv_tagset_add(&out, id);
            }
            if (*end == '\0')
                break;
            start = end + 1;
            item++;
        }
    }
    *set = out;
    return 0;
}

/* Writes the names of set in id order, separated by ",", into buf. An empty set
 * gives "". The output is cut when buf is too small and is always NUL-terminated
 * when len > 0; len 0 writes nothing. Ids the table does not know are written "?". */
void drv_tagset_format(const drv_tag_table *t, const drv_tagset *set, char *buf, size_t len)
{
    if (len == 0)
        return;
    buf[0] = '\0';
    size_t used = 0;
    bool first = true;
    for (int id = 0; id < DRV_TAGS_MAX; id++) {
        if (!drv_tagset_has(set, id))
            continue;
        int w = snprintf(buf + used, len - used, "%s%s", first ? "" : ",", drv_tag_name(t, id));
        first = false;
        if (w < 0 || (size_t)w >= len - used)
            return; /* cut: snprintf has terminated it */
        used += (size_t)w;
    }
}
