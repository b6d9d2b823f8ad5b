/* requirements.h - what a test needs and what a worker offers.
 *
 * A requirement is a predicate over a worker's capabilities: numeric minimums (cores,
 * memory, GPU count, GPU memory per GPU, CUDA compute capability, driver/runtime
 * version) and three tag sets: tags the worker must all have, tags of which it must
 * have at least one, and tags it must not have. Hardware back-ends (cpu, cuda, rocm,
 * mps, openvino, webgpu, webnn, qnn) and browsers (chromium, chrome, firefox, edge) are
 * tags like any label.
 *
 * Cores, memory and GPUs are also reserved while the test runs: a worker with 8 cores
 * running a 6-core test has 2 cores left for others. A requirement of 0 reserves
 * nothing but the test's slot. */
#ifndef DRV_CORE_REQUIREMENTS_H
#define DRV_CORE_REQUIREMENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/tags.h"

typedef struct drv_requirements {
    uint32_t cpu_cores;      /* minimum cores, reserved while running */
    uint32_t gpu_count;      /* minimum GPUs, reserved while running */
    uint64_t memory_mb;      /* minimum memory, reserved while running */
    uint64_t gpu_memory_mb;  /* minimum memory of each GPU */
    uint32_t cuda_cc;        /* minimum CUDA compute capability x10 (86 = 8.6); 0 = any */
    uint32_t driver_version; /* minimum driver/runtime version, drv_version_parse() form */
    drv_tagset all_of;       /* the worker must have every one of these */
    drv_tagset any_of;       /* when not empty, the worker must have at least one */
    drv_tagset none_of;      /* the worker must have none of these */
} drv_requirements;

typedef struct drv_capabilities {
    uint32_t cpu_cores;
    uint32_t gpu_count;
    uint64_t memory_mb;
    uint64_t gpu_memory_mb; /* memory of each GPU (the smallest, when they differ) */
    uint32_t cuda_cc;       /* x10; 0 when no CUDA device */
    uint32_t driver_version;
    drv_tagset tags; /* back-ends, browsers, labels */
} drv_capabilities;

/* Which part of a requirement a worker fails, in the order they are checked. */
typedef enum drv_unmet {
    DRV_UNMET_NONE = 0,
    DRV_UNMET_CPU,
    DRV_UNMET_MEMORY,
    DRV_UNMET_GPU_COUNT,
    DRV_UNMET_GPU_MEMORY,
    DRV_UNMET_CUDA_CC,
    DRV_UNMET_DRIVER,
    DRV_UNMET_TAG_MISSING,   /* a tag of all_of is missing */
    DRV_UNMET_TAG_NONE_OF,   /* none of any_of is present */
    DRV_UNMET_TAG_FORBIDDEN, /* a tag of none_of is present */
    DRV_UNMET_COUNT
} drv_unmet;

void drv_requirements_init(drv_requirements *r);
void drv_capabilities_init(drv_capabilities *c);

bool drv_requirements_equal(const drv_requirements *a, const drv_requirements *b);
uint64_t drv_requirements_hash(const drv_requirements *r);
bool drv_capabilities_equal(const drv_capabilities *a, const drv_capabilities *b);
uint64_t drv_capabilities_hash(const drv_capabilities *c);

/* Returns DRV_UNMET_NONE when caps satisfy every predicate of req, otherwise the first
 * predicate that fails; *tag (if not NULL) receives the offending tag id for the tag
 * predicates, -1 otherwise. */
drv_unmet drv_requirements_check(const drv_requirements *req, const drv_capabilities *caps,
                                 int *tag);
static inline bool drv_requirements_met(const drv_requirements *req, const drv_capabilities *caps)
{
    return drv_requirements_check(req, caps, NULL) == DRV_UNMET_NONE;
}

/* Describes the predicate `what` of req as a user reads it, completing the phrase
 * "no worker in the fleet has ...": "a GPU with at least 24 GiB of memory", "the tag webgpu",
 * "one of the tags cuda, rocm"; for a forbidden tag just "the tag edge". tag is the id
 * drv_requirements_check() returned. */
void drv_unmet_describe(drv_unmet what, const drv_requirements *req, int tag,
                        const drv_tag_table *tags, char *buf, size_t len);

/* The whole clause for a predicate no worker meets: "no worker in the fleet has a GPU
 * with at least 24 GiB of memory"; for a forbidden tag "every worker in the fleet that
 * could run it has the tag edge, which it must not run with". */
void drv_unmet_sentence(drv_unmet what, const drv_requirements *req, int tag,
                        const drv_tag_table *tags, char *buf, size_t len);

/* Parses "535", "535.104" or "535.104.05" (also "12.2") into major*1000000 +
 * minor*1000 + patch. Returns -1 with err filled on anything else. */
int drv_version_parse(const char *s, uint32_t *out, drv_error *err);
/* Parses a compute capability "8.6" or "86" into 86. */
int drv_cuda_cc_parse(const char *s, uint32_t *out, drv_error *err);
/* Write what the parsers read: 86 as "8.6"; 535104005 as "535.104.5", 535104000 as
 * "535.104", 535000000 as "535". */
void drv_cuda_cc_format(uint32_t cc, char *buf, size_t len);
void drv_version_format(uint32_t v, char *buf, size_t len);

#endif
