/* policy_priority.c - urgent tests get the best workers, routine ones the plainest.
 *
 * The queue already orders tests by priority with aging. Where they go depends on it
 * too: with u = priority / (2 x default priority), clamped to [0, 1], the score is
 *   u x (earliest-finish score) + (1 - u) x (1 - richness of the worker's class),
 * so a high-priority test goes where it finishes first while a low-priority one leaves
 * GPU machines and browser machines to those who need them. */
#include "balancer/engine.h"

static double priority_score(const drv_place_ctx *ctx, const drv_bworker *w, const drv_wclass *c)
{
    double u = ctx->t->priority / (2.0 * DRV_PRIORITY_DEFAULT);
    if (u > 1)
        u = 1;
    double fast = drv_place_finish_score(ctx, w);
    return u * fast + (1 - u) * (1 - c->richness);
}

const drv_policy_ops drv_policy_priority = {
    .name = "priority",
    .kind = DRV_POLICY_PRIORITY,
    .ordering = DRV_ORDER_LEAST_LOADED,
    .score = priority_score,
};
