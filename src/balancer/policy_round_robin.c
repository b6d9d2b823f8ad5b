/* policy_round_robin.c - each test to the worker that has waited longest since its last
 * assignment. Inside a class that is the LRU ordering's top; across classes the score
 * prefers the older last assignment, so the whole eligible fleet is visited in turn and
 * full workers are skipped. */
#include "balancer/engine.h"

static double rr_score(const drv_place_ctx *ctx, const drv_bworker *w, const drv_wclass *c)
{
    (void)c;
    /* 1 for a worker never assigned, falling toward 0 for the most recent one. */
    return 1.0 - (double)w->w.last_assign_seq / ((double)ctx->b->assign_seq + 1.0);
}

const drv_policy_ops drv_policy_round_robin = {
    .name = "round_robin",
    .kind = DRV_POLICY_ROUND_ROBIN,
    .ordering = DRV_ORDER_LRU,
    .score = rr_score,
};
