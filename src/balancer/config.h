/* config.h - the balancer's configuration, in the seeds' JSON shape.
 *
 *   {
 *     "default_scheduler": {"type": "composite",
 *                           "algorithms": [{"type": "performance_based", "weight": 0.5},
 *                                          {"type": "resource_aware", "weight": 0.3},
 *                                          {"type": "affinity", "weight": 0.2}]},
 *     "test_type_schedulers": {"performance": {"type": "performance_based"},
 *                              "unit": {"type": "round_robin"}},
 *     "model_family_schedulers": {"bert": {"type": "affinity"}},
 *     "settings": {"aging_interval_s": 6, "prefetch_max": 4, ...}
 *   }
 *
 * A scheduler is {"type": NAME} or a bare string NAME; a composite takes
 * "algorithms": [{type, weight}, ...] of single types with weights > 0. Types:
 * round_robin, weighted_round_robin, resource_aware, priority, affinity,
 * performance_based (alias "performance"), composite. A test's policy is the one of
 * its model family if configured, else the one of its test type, else the default.
 *
 * Pure: parses text, reads no file. */
#ifndef DRV_BALANCER_CONFIG_H
#define DRV_BALANCER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/thermal.h"

typedef enum drv_policy_kind {
    DRV_POLICY_ROUND_ROBIN = 0,
    DRV_POLICY_WEIGHTED_ROUND_ROBIN,
    DRV_POLICY_RESOURCE_AWARE,
    DRV_POLICY_PRIORITY,
    DRV_POLICY_AFFINITY,
    DRV_POLICY_PERFORMANCE,
    DRV_POLICY_COMPOSITE,
    DRV_POLICY_KIND_COUNT
} drv_policy_kind;

#define DRV_POLICY_SINGLE_COUNT DRV_POLICY_COMPOSITE

/* One scheduler: a single policy, or a composite with a weight per single policy. */
typedef struct drv_policy_spec {
    drv_policy_kind kind;
    double weights[DRV_POLICY_SINGLE_COUNT]; /* composite only; 0 = not used */
} drv_policy_spec;

#define DRV_TEST_TYPE_NAME_MAX    32
#define DRV_CONFIG_TEST_TYPES_MAX 32

typedef struct drv_test_type_policy {
    char name[DRV_TEST_TYPE_NAME_MAX];
    drv_policy_spec spec;
} drv_test_type_policy;

typedef struct drv_balancer_settings {
    double aging_interval_s;      /* a waiting test gains one priority level per interval (6) */
    double length_aging;          /* a second of predicted run counts as this much waiting (4) */
    uint32_t prefetch_max;        /* most tests a worker may hold beyond its free slots (4) */
    double batch_target_s;        /* work to hand a worker at once, in predicted seconds (2) */
    double migration_cost_s;      /* predicted gain a steal must exceed (1) */
    double steal_holdoff_s;       /* a moved test is not moved again for this long (30) */
    double idle_move_cost_s;      /* the gain a steal must exceed once the queue is empty,
                                     when lower than migration_cost_s (0.05) */
    double unschedulable_grace_s; /* how long a test no worker can run waits first (0) */
    uint32_t quarantine_after;    /* consecutive infra failures that quarantine a worker (3) */
    /* Stragglers (drv_balancer_stragglers): a running test past its predicted p90 by
     * speculation_margin x p90 and at least speculation_min_s gets a copy elsewhere. */
    bool speculation;          /* on (true) */
    double speculation_margin; /* 0.5 */
    double speculation_min_s;  /* 2 */
    /* A class offering a family's preferred back-ends is expected faster at that family
     * before runs say (speed_prior.c; false). */
    bool backend_speed_prior;
    drv_thermal_config thermal;
} drv_balancer_settings;

typedef struct drv_balancer_config {
    drv_policy_spec default_policy;
    drv_test_type_policy test_types[DRV_CONFIG_TEST_TYPES_MAX];
    uint32_t n_test_types;
    bool family_set[64];               /* indexed by drv_family id */
    drv_policy_spec family_policy[64]; /* valid where family_set */
    drv_balancer_settings settings;
} drv_balancer_config;

/* The default: a composite of performance_based 0.6, resource_aware 0.1, affinity 0.1,
 * priority 0.1, round_robin 0.1 (earliest finish first, the others break near-ties:
 * on the demo suite's second run this is within 0-8% of the lower bound, where
 * 0.4/0.2/0.2/0.1/0.1 was up to 99% over), and the default settings. */
void drv_balancer_config_default(drv_balancer_config *cfg);

/* Parses JSON text into cfg (starting from the defaults; keys that are absent keep
 * them). On error returns -1, leaves cfg at the defaults, and err lists every problem
 * found, each naming its key ("default_scheduler.algorithms[1].weight: must be a number
 * > 0, got -2"), separated by "; ". Unknown keys are errors too. */
int drv_balancer_config_parse(const char *json, size_t len, drv_balancer_config *cfg,
                              drv_error *err);

/* Policy kind from its config name; -1 for an unknown name. */
int drv_policy_kind_parse(const char *name);
const char *drv_policy_kind_name(drv_policy_kind k);

/* The spec that applies to a test of this family (0 = unknown) and test type (may be
 * NULL). */
const drv_policy_spec *drv_balancer_config_policy_for(const drv_balancer_config *cfg, int family,
                                                      const char *test_type);

#endif
