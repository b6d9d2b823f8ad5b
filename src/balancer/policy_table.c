/* policy_table.c - the single policies by kind. The composite is not a policy of its own:
 * the engine sums the single policies' scores with the configured weights. */
#include "balancer/engine.h"

static const drv_policy_ops *const policies[DRV_POLICY_SINGLE_COUNT] = {
    [DRV_POLICY_ROUND_ROBIN] = &drv_policy_round_robin,
    [DRV_POLICY_WEIGHTED_ROUND_ROBIN] = &drv_policy_weighted_round_robin,
    [DRV_POLICY_RESOURCE_AWARE] = &drv_policy_resource_aware,
    [DRV_POLICY_PRIORITY] = &drv_policy_priority,
    [DRV_POLICY_AFFINITY] = &drv_policy_affinity,
    [DRV_POLICY_PERFORMANCE] = &drv_policy_performance,
};

const drv_policy_ops *drv_policy_get(drv_policy_kind k)
{
    return (unsigned)k < DRV_POLICY_SINGLE_COUNT ? policies[k] : NULL;
}
