/* analyzer.c - matching model ids against the family table and the suggestions
 * derived from a family (batch size, first duration estimate, back-end rank).
 *
 * Matching rules (the table is in analyzer_table.c):
 *   - the model id is cut after its last '/' ("org/" prefixes, also nested ones);
 *     only when that name matches nothing is the org part tried;
 *   - comparison is case-insensitive (patterns are lower-case);
 *   - a pattern matches where it occurs as a substring, except that a pattern of 3
 *     bytes or fewer ("vit", "t5", "opt", "sam", "git") only matches as a word: the
 *     characters right before and after it are not letters;
 *   - the longest matching pattern wins; on equal length the lower family id wins. */
#include "core/analyzer.h"

#include <stdbool.h>
#include <string.h>

#include "core/analyzer_table.h"

#define SHORT_PATTERN_MAX 3
#define REFERENCE_GPU_MB  16384u /* the table's batch sizes are for a 16 GiB GPU */
#define BATCH_SCALE_MAX   64u    /* a huge GPU multiplies the batch by at most this */

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_letter(char c)
{
    c = lower(c);
    return c >= 'a' && c <= 'z';
}

/* True when the lower-case pattern pat (plen bytes) occurs in s (n bytes) under the
 * rules above. */
static bool pattern_in(const char *s, size_t n, const char *pat, size_t plen)
{
    if (plen == 0 || plen > n)
        return false;
    bool word = plen <= SHORT_PATTERN_MAX;
    for (size_t i = 0; i + plen <= n; i++) {
        if (lower(s[i]) != pat[0])
            continue;
        size_t k = 1;
        while (k < plen && lower(s[i + k]) == pat[k])
            k++;
        if (k < plen)
            continue;
        if (word && ((i > 0 && is_letter(s[i - 1])) || (i + plen < n && is_letter(s[i + plen]))))
            continue;
        return true;
    }
    return false;
}

/* Returns the best family for the n bytes at s, or 0 when no pattern matches. */
static int best_family(const char *s, size_t n)
{
    int best = DRV_FAMILY_UNKNOWN;
    size_t best_len = 0;
    for (int id = 1; id < drv_family_table_count; id++) {
        const drv_family_row *row = &drv_family_table[id];
        for (int p = 0; p < DRV_FAMILY_PATTERNS_MAX && row->patterns[p]; p++) {
            size_t plen = strlen(row->patterns[p]);
            if (plen > best_len && pattern_in(s, n, row->patterns[p], plen)) {
                best = id;
                best_len = plen;
            }
        }
    }
    return best;
}

/* Returns the family of model_id by the rules above. When the name after the last
 * '/' matches nothing, the org part before it is tried, so that an org named after
 * its family still counts ("distil-whisper/distil-large-v3" is whisper). Returns 0
 * for NULL, "" or an id nothing matches. */
int drv_analyzer_family(const char *model_id)
{
    if (!model_id)
        return DRV_FAMILY_UNKNOWN;
    const char *slash = strrchr(model_id, '/');
    const char *name = slash ? slash + 1 : model_id;
    int id = best_family(name, strlen(name));
    if (id == DRV_FAMILY_UNKNOWN && slash)
        id = best_family(model_id, (size_t)(slash - model_id));
    return id;
}

/* Returns the id of the family named exactly name ("bert"; "unknown" gives 0), or -1
 * for NULL or a name not in the table. */
int drv_family_lookup(const char *name)
{
    if (!name)
        return -1;
    for (int id = 0; id < drv_family_table_count; id++)
        if (strcmp(drv_family_table[id].info.name, name) == 0)
            return id;
    return -1;
}

/* Returns the row of id; 0, negative and out-of-range ids give the "unknown" row. */
const drv_family_info *drv_family_get(int id)
{
    if (id < 0 || id >= drv_family_table_count)
        id = DRV_FAMILY_UNKNOWN;
    return &drv_family_table[id].info;
}

/* Returns the number of family ids, "unknown" (0) included. */
int drv_family_count(void)
{
    return drv_family_table_count;
}

/* Returns "text", "vision", "audio", "multimodal" or "unknown" (also for values out of
 * range). */
const char *drv_modality_name(drv_modality m)
{
    switch (m) {
    case DRV_MODALITY_TEXT:
        return "text";
    case DRV_MODALITY_VISION:
        return "vision";
    case DRV_MODALITY_AUDIO:
        return "audio";
    case DRV_MODALITY_MULTIMODAL:
        return "multimodal";
    case DRV_MODALITY_UNKNOWN:
    case DRV_MODALITY_COUNT:
        break;
    }
    return "unknown";
}

/* Scales the family's batch size (for a 16 GiB GPU) linearly with gpu_memory_mb,
 * rounding down: 8 GiB halves it, 32 GiB doubles it, at most BATCH_SCALE_MAX times.
 * A CPU-only worker (0) gets a quarter. Always at least 1; unknown families use the
 * "unknown" row. */
uint32_t drv_analyzer_batch_size(int family, uint64_t gpu_memory_mb)
{
    uint64_t base = drv_family_get(family)->batch_size;
    uint64_t b;
    if (gpu_memory_mb == 0) {
        b = base / 4;
    } else {
        if (gpu_memory_mb > (uint64_t)REFERENCE_GPU_MB * BATCH_SCALE_MAX)
            gpu_memory_mb = (uint64_t)REFERENCE_GPU_MB * BATCH_SCALE_MAX;
        b = base * gpu_memory_mb / REFERENCE_GPU_MB;
    }
    return b < 1 ? 1 : (uint32_t)b;
}

/* True when a equals the lower-case b, ignoring the case of a. */
static bool equal_nocase(const char *a, const char *b)
{
    while (*a && lower(*a) == *b) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

/* Returns the family's estimate scaled by test type (case-insensitive): "unit" x0.25,
 * "integration" x1, "performance" and "benchmark" x3; NULL or any other type x1.
 * Unknown families use the "unknown" row. */
double drv_analyzer_estimate_s(int family, const char *test_type)
{
    double est = drv_family_get(family)->estimate_s;
    if (!test_type)
        return est;
    if (equal_nocase(test_type, "unit"))
        return est * 0.25;
    if (equal_nocase(test_type, "performance") || equal_nocase(test_type, "benchmark"))
        return est * 3.0;
    return est;
}

int drv_analyzer_type_kind(const char *test_type)
{
    if (!test_type)
        return 1;
    if (equal_nocase(test_type, "unit"))
        return 0;
    if (equal_nocase(test_type, "performance") || equal_nocase(test_type, "benchmark"))
        return 2;
    return 1;
}

/* Returns the 0-based position of backend in the family's preference list, or
 * DRV_FAMILY_BACKENDS_MAX when it is not listed (also for the unknown family and for
 * backend -1). */
int drv_analyzer_backend_rank(int family, int backend)
{
    const drv_family_info *f = drv_family_get(family);
    if (backend < 0)
        return DRV_FAMILY_BACKENDS_MAX;
    for (int i = 0; i < DRV_FAMILY_BACKENDS_MAX && f->backends[i] >= 0; i++)
        if (f->backends[i] == backend)
            return i;
    return DRV_FAMILY_BACKENDS_MAX;
}

uint32_t drv_analyzer_test_batch_size(uint32_t batch_size, int family, uint64_t gpu_memory_mb)
{
    if (batch_size)
        return batch_size;
    if (family <= DRV_FAMILY_UNKNOWN || family >= drv_family_count())
        return 0;
    return drv_analyzer_batch_size(family, gpu_memory_mb);
}
