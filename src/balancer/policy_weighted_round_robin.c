/* policy_weighted_round_robin.c - round robin in proportion to capacity (slots x speed),
 * by stride scheduling: each assignment advances a worker's pass by 1e6 / weight and the
 * smallest pass goes next. A worker that joins starts at the current virtual time, so it
 * is not flooded to "catch up". Exact and O(log n) per pick, unlike smooth WRR's scan. */
#include "balancer/engine.h"

static double wrr_score(const drv_place_ctx *ctx, const drv_bworker *w, const drv_wclass *c)
{
    (void)c;
    /* Smaller pass is better; measured against the virtual time so scores stay in (0, 1]. */
    double behind = (double)w->w.stride_pass - (double)ctx->b->stride_vtime;
    if (behind < 0)
        behind = 0;
    return 1.0 / (1.0 + behind / 1e6);
}

const drv_policy_ops drv_policy_weighted_round_robin = {
    .name = "weighted_round_robin",
    .kind = DRV_POLICY_WEIGHTED_ROUND_ROBIN,
    .ordering = DRV_ORDER_STRIDE,
    .score = wrr_score,
};
