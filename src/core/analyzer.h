/* analyzer.h - what a test's model id says about it before it has ever run.
 *
 * One table (analyzer_table.c) maps name patterns of model ids to a model family
 * ("bert", "vit", "whisper", "clip", ...), its modality, the hardware back-ends it
 * runs best on in order of preference, the browser it prefers for WebGPU/WebNN tests,
 * a suggested batch size and a first duration estimate. The table is data: adding a
 * family is adding a row, not an if.
 *
 * Matching is case-insensitive on the model id with any "org/" prefix removed
 * ("google/vit-base-patch16-224" -> "vit-base-patch16-224"); the longest matching
 * pattern wins, so "roberta-base" is roberta and not bert, "distilbert" is bert.
 * Family id 0 is "unknown". */
#ifndef DRV_CORE_ANALYZER_H
#define DRV_CORE_ANALYZER_H

#include <stddef.h>
#include <stdint.h>

typedef enum drv_modality {
    DRV_MODALITY_UNKNOWN = 0,
    DRV_MODALITY_TEXT,
    DRV_MODALITY_VISION,
    DRV_MODALITY_AUDIO,
    DRV_MODALITY_MULTIMODAL,
    DRV_MODALITY_COUNT
} drv_modality;

#define DRV_FAMILY_UNKNOWN      0
#define DRV_FAMILY_MAX          64 /* families fit in this many ids */
#define DRV_FAMILY_BACKENDS_MAX 4

typedef struct drv_family_info {
    const char *name; /* "bert" */
    drv_modality modality;
    int backends[DRV_FAMILY_BACKENDS_MAX]; /* DRV_TAG_* back-ends, best first; -1 ends */
    int browser;         /* DRV_TAG_* browser preferred for web back-ends, or -1 */
    uint32_t batch_size; /* suggested batch size on the reference hardware */
    double estimate_s;   /* first duration estimate of one test, reference speed */
} drv_family_info;

/* The family id of model_id (0 when NULL, empty or unmatched). */
int drv_analyzer_family(const char *model_id);
/* The family id with this exact name ("bert"), or -1. */
int drv_family_lookup(const char *name);
/* The row of id; id 0 and unknown ids give the "unknown" row. Never NULL. */
const drv_family_info *drv_family_get(int id);
int drv_family_count(void);
const char *drv_modality_name(drv_modality m);

/* Batch size for a test of family on a worker whose GPUs have gpu_memory_mb each
 * (0 = CPU only): the family's suggestion scaled to the memory, at least 1. */
uint32_t drv_analyzer_batch_size(int family, uint64_t gpu_memory_mb);

/* The batch size a test runs with on such a worker: its own batch_size when it set one,
 * else the analyzer's suggestion for its family (above); 0 when it set none and its
 * family is unknown (nothing to suggest). The coordinator hands it to the test as
 * DROVER_BATCH_SIZE (docs/protocol.md). */
uint32_t drv_analyzer_test_batch_size(uint32_t batch_size, int family, uint64_t gpu_memory_mb);
/* First duration estimate in seconds at reference speed, before any history. The
 * test type scales it ("unit" tests are shorter than "integration" or "performance"
 * ones); test_type may be NULL. */
double drv_analyzer_estimate_s(int family, const char *test_type);
/* The kind of a test type the estimate scales by: 0 unit, 2 performance or benchmark,
 * 1 anything else (NULL too). Tests of one family and kind are alike before they ran. */
#define DRV_TYPE_KINDS 3
int drv_analyzer_type_kind(const char *test_type);
/* 0-based rank of back-end tag `backend` in the family's preference list, or
 * DRV_FAMILY_BACKENDS_MAX when it is not listed. */
int drv_analyzer_backend_rank(int family, int backend);

#endif
