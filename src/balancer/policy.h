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
 * A composite (policy_composite.c) takes its candidates from the ordering of its
 * heaviest policy. Scores are pure functions of the balancer's state; ties go to the
 * lower worker index, so placement is deterministic. Besides, a policy that keeps
 * state (round robin's recency, weighted round robin's passes, affinity's memory) owns
 * it and keeps it current through its hooks; the engine tells every single policy of
 * each event through policy_table.c. */
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
    const drv_policy_spec *spec; /* the test's policy (the composite reads its weights) */
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

/* Per-policy state, as HAProxy keeps each algorithm's state in the backend: no heap
 * pointer per policy. Each part is owned by the policy file named beside it: only its
 * hooks write it; the engine's orderings may read it (see fleet.c). */
typedef struct drv_rr_worker { /* policy_round_robin.c */
    uint64_t last_assign_seq;  /* order of its last assignment, 0 never */
} drv_rr_worker;
typedef struct drv_rr_state { /* policy_round_robin.c */
    uint64_t assign_seq;      /* assignments so far */
} drv_rr_state;
typedef struct drv_wrr_worker { /* policy_weighted_round_robin.c */
    uint64_t pass;              /* stride scheduling: its virtual time */
} drv_wrr_worker;
typedef struct drv_wrr_state { /* policy_weighted_round_robin.c */
    uint64_t vtime;            /* the largest pass an assignment started from */
} drv_wrr_state;

/* The orders of round robin and weighted round robin on their state (< 0: a first, 0: a
 * tie). Inline, as the engine's heaps compare workers on every change of load
 * (fleet.c); their ops' compare hooks are these. */
static inline int drv_rr_compare(const drv_rr_worker *a, const drv_rr_worker *c)
{
    return a->last_assign_seq < c->last_assign_seq ? -1 : a->last_assign_seq > c->last_assign_seq;
}
static inline int drv_wrr_compare(const drv_wrr_worker *a, const drv_wrr_worker *c)
{
    return a->pass < c->pass ? -1 : a->pass > c->pass;
}

/* A policy. Every hook but score is optional (NULL: the policy does not care). The
 * engine calls the hooks of every single policy, whichever are configured, so a policy's
 * state is current when a config names it for some tests only; the composite has no
 * hooks of its own (its parts' run anyway). The per-placement score is the hot path:
 * placement.c calls it directly (drv_policy_get(kind)->score, or the composite's sum). */
typedef struct drv_policy_ops {
    const char *name; /* the config name */
    drv_policy_kind kind;
    drv_ordering ordering; /* its candidate inside a class */
    /* Optional: the ordering for spec s when it depends on the spec (the composite takes
     * its heaviest part's); .ordering otherwise. */
    drv_ordering (*ordering_for)(const drv_policy_spec *s);
    /* Optional, for a policy whose ordering is its own (not one of the engine's loads):
     * compares a and c on its key, < 0 when a comes first, 0 on a tie (the engine then
     * breaks ties by recency, then worker index). */
    int (*compare)(const struct drv_bworker *a, const struct drv_bworker *c);
    /* Required: score of placing ctx->t on w (of class c), in [0, 1] (a composite may add
     * a small preference bonus above 1). */
    double (*score)(const drv_place_ctx *ctx, const struct drv_bworker *w,
                    const struct drv_wclass *c);
    /* Optional: workers to consider for ctx->t besides each class's top, at most max
     * into out (the engine checks that they are eligible, fit and are available). Used
     * when the policy is the test's or a part of its composite with a weight > 0. */
    size_t (*candidates)(const drv_place_ctx *ctx, drv_wref *out, size_t max);
    /* Optional: the balancer was just made (its state is zeroed). */
    void (*init)(drv_balancer *b);
    /* Optional: w was just added, before it enters the orderings. */
    void (*worker_added)(drv_balancer *b, drv_wref w);
    /* Optional: w is being forgotten. */
    void (*worker_removed)(drv_balancer *b, drv_wref w);
    /* Optional: t was just assigned to w (w's held counts include it). */
    void (*task_assigned)(drv_balancer *b, const struct drv_btask *t, drv_wref w);
    /* Optional: a test ran to an exit status on w (learning policies). */
    void (*task_finished)(drv_balancer *b, const struct drv_btask *t, drv_wref w,
                          const drv_result *r);
    /* Optional: what the policy learned, kept in the store across restarts (learning.c
     * asks, the policy owns its state). learned_export calls fn for each fact of its own
     * (of the live classes and workers) and returns how many; learned_import is offered
     * each stored fact of class c or worker w (DRV_REF_NONE for the other) that just
     * joined and returns whether the fact is one of its own (taken). */
    size_t (*learned_export)(const drv_balancer *b, drv_learned_fact_fn fn, void *ctx);
    bool (*learned_import)(drv_balancer *b, const drv_learned_fact *f, uint32_t c, drv_wref w);
} drv_policy_ops;

extern const drv_policy_ops drv_policy_round_robin;
extern const drv_policy_ops drv_policy_weighted_round_robin;
extern const drv_policy_ops drv_policy_resource_aware;
extern const drv_policy_ops drv_policy_priority;
extern const drv_policy_ops drv_policy_affinity;
extern const drv_policy_ops drv_policy_performance;
extern const drv_policy_ops drv_policy_composite;

/* The policies by kind (policy_table.c). */
extern const drv_policy_ops *const drv_policies[DRV_POLICY_KIND_COUNT];

/* The policy of kind k (the composite too), or NULL for an unknown kind. */
static inline const drv_policy_ops *drv_policy_get(drv_policy_kind k)
{
    return (unsigned)k < DRV_POLICY_KIND_COUNT ? drv_policies[k] : NULL;
}

/* Hook dispatch over every single policy (policy_table.c): the engine's only way into
 * the policy files besides the per-placement score. */
void drv_policies_init(drv_balancer *b);
void drv_policies_worker_added(drv_balancer *b, drv_wref w);
void drv_policies_worker_removed(drv_balancer *b, drv_wref w);
void drv_policies_task_assigned(drv_balancer *b, const struct drv_btask *t, drv_wref w);
void drv_policies_task_finished(drv_balancer *b, const struct drv_btask *t, drv_wref w,
                                const drv_result *r);
/* The kinds (bit k) whose candidates hook spec s uses: its own, or its composite's
 * parts with a weight > 0. */
uint32_t drv_policy_extra_candidates(const drv_policy_spec *s);
#define DRV_POLICY_EXTRA_MAX 16 /* most extra candidates one policy offers */
/* The ordering that gives spec s's candidate inside a class. */
drv_ordering drv_policy_ordering(const drv_policy_spec *s);

#endif
