/* policy_table.c - the policies by kind, and the dispatch of their hooks: the engine
 * tells every single policy of each event through these, whichever policies the config
 * names (the composite has no hooks: its parts get the events themselves). */
#include "balancer/engine.h"

const drv_policy_ops *const drv_policies[DRV_POLICY_KIND_COUNT] = {
    [DRV_POLICY_ROUND_ROBIN] = &drv_policy_round_robin,
    [DRV_POLICY_WEIGHTED_ROUND_ROBIN] = &drv_policy_weighted_round_robin,
    [DRV_POLICY_RESOURCE_AWARE] = &drv_policy_resource_aware,
    [DRV_POLICY_PRIORITY] = &drv_policy_priority,
    [DRV_POLICY_AFFINITY] = &drv_policy_affinity,
    [DRV_POLICY_PERFORMANCE] = &drv_policy_performance,
    [DRV_POLICY_COMPOSITE] = &drv_policy_composite,
};

drv_ordering drv_policy_ordering(const drv_policy_spec *s)
{
    const drv_policy_ops *ops = drv_policy_get(s->kind);
    return ops->ordering_for ? ops->ordering_for(s) : ops->ordering;
}

uint32_t drv_policy_extra_candidates(const drv_policy_spec *s)
{
    uint32_t m = 0;
    for (int k = 0; k < DRV_POLICY_SINGLE_COUNT; k++) {
        bool used = s->kind == DRV_POLICY_COMPOSITE ? s->weights[k] > 0 : (int)s->kind == k;
        if (used && drv_policies[k]->candidates)
            m |= 1u << k;
    }
    return m;
}

void drv_policies_init(drv_balancer *b)
{
    for (int k = 0; k < DRV_POLICY_SINGLE_COUNT; k++)
        if (drv_policies[k]->init)
            drv_policies[k]->init(b);
}

void drv_policies_worker_added(drv_balancer *b, drv_wref w)
{
    for (int k = 0; k < DRV_POLICY_SINGLE_COUNT; k++)
        if (drv_policies[k]->worker_added)
            drv_policies[k]->worker_added(b, w);
}

void drv_policies_worker_removed(drv_balancer *b, drv_wref w)
{
    for (int k = 0; k < DRV_POLICY_SINGLE_COUNT; k++)
        if (drv_policies[k]->worker_removed)
            drv_policies[k]->worker_removed(b, w);
}

void drv_policies_task_assigned(drv_balancer *b, const drv_btask *t, drv_wref w)
{
    for (int k = 0; k < DRV_POLICY_SINGLE_COUNT; k++)
        if (drv_policies[k]->task_assigned)
            drv_policies[k]->task_assigned(b, t, w);
}

void drv_policies_task_finished(drv_balancer *b, const drv_btask *t, drv_wref w,
                                const drv_result *r)
{
    for (int k = 0; k < DRV_POLICY_SINGLE_COUNT; k++)
        if (drv_policies[k]->task_finished)
            drv_policies[k]->task_finished(b, t, w, r);
}
