/* policy.h - the interface every scheduling policy fills (one file per policy).
 *
 * As in HAProxy's lb_* files, a policy is one static const struct of function pointers
 * with designated initialisers; hooks it does not need stay NULL. The engine asks a
 * policy two things:
 *   - ordering: which per-class ordering of available workers gives the policy's
 *     candidate inside a worker class (workers of a class have equal capabilities, so
 *     within a class only their load, recency and history differ);
 *   - score: how good it is to place this test on this candidate, in [0, 1], higher
 *     better. Across classes the engine takes the best score; the composite policy
 *     takes a weighted sum of the single policies' scores.
 * A composite takes its candidates from the ordering of its heaviest policy.
 * Scores are pure functions of the balancer's state; ties go to the lower worker
 * index, so placement is deterministic. */
#ifndef DRV_BALANCER_POLICY_H
#define DRV_BALANCER_POLICY_H

#include "balancer/balancer.h"

struct drv_btask;
struct drv_bworker;
struct drv_wclass;

/* Per-class orderings of available workers the engine maintains (lower key first). */
typedef enum drv_ordering {
    DRV_ORDER_LEAST_LOADED = 0, /* predicted backlog per slot, then least recently used */
    DRV_ORDER_MOST_LOADED,      /* fullest first (best fit), then least recently used */
    DRV_ORDER_LRU,              /* least recently assigned (round robin) */
    DRV_ORDER_STRIDE,           /* smallest stride pass (weighted round robin) */
    DRV_ORDER_COUNT
} drv_ordering;

typedef struct drv_place_ctx {
    const drv_balancer *b;
    const struct drv_btask *t;
    const drv_requirements *req;
    double now;
    /* The learned speed for t's family of the fastest class that can run it (0: use the
     * fastest class of the fleet). Scores finishing times against the best possible. */
    double best_speed;
    /* The test asks for a web back-end (webgpu or webnn): the family's preferred browser
     * counts (drv_place_preferred). */
    bool web;
} drv_place_ctx;

typedef struct drv_policy_ops {
    const char *name; /* the config name */
    drv_policy_kind kind;
    drv_ordering ordering;
    /* Required: score of placing ctx->t on w (of class c), in [0, 1]. */
    double (*score)(const drv_place_ctx *ctx, const struct drv_bworker *w,
                    const struct drv_wclass *c);
    /* Optional: a test ran to an exit status on w (learning policies). */
    void (*task_finished)(drv_balancer *b, const struct drv_btask *t, drv_wref w,
                          const drv_result *r);
    /* Optional: w is being forgotten. */
    void (*worker_removed)(drv_balancer *b, drv_wref w);
} drv_policy_ops;

extern const drv_policy_ops drv_policy_round_robin;
extern const drv_policy_ops drv_policy_weighted_round_robin;
extern const drv_policy_ops drv_policy_resource_aware;
extern const drv_policy_ops drv_policy_priority;
extern const drv_policy_ops drv_policy_affinity;
extern const drv_policy_ops drv_policy_performance;

/* The single policies indexed by drv_policy_kind (NULL for COMPOSITE). */
const drv_policy_ops *drv_policy_get(drv_policy_kind k);

#endif
