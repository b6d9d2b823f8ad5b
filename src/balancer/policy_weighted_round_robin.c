/* policy_weighted_round_robin.c - round robin in proportion to capacity (slots x speed),
 * by stride scheduling: each assignment advances a worker's pass by 1e6 / weight and the
 * smallest pass goes next. A worker that joins starts at the current virtual time, so it
 * is not flooded to "catch up". Exact and O(log n) per pick, unlike smooth WRR's scan.
 *
 * State: per worker its pass (drv_bworker.wrr), and the virtual time (drv_balancer.wrr):
 * the largest pass an assignment started from. */
#include "balancer/engine.h"

static int wrr_compare(const drv_bworker *a, const drv_bworker *c)
{
    return drv_wrr_compare(&a->wrr, &c->wrr);
}

static double wrr_score(const drv_place_ctx *ctx, const drv_bworker *w, const drv_wclass *c)
{
    (void)c;
    /* Smaller pass is better; measured against the virtual time so scores stay in (0, 1]. */
    double behind = (double)w->wrr.pass - (double)ctx->b->wrr.vtime;
    if (behind < 0)
        behind = 0;
    return 1.0 / (1.0 + behind / 1e6);
}

static void wrr_worker_added(drv_balancer *b, drv_wref w)
{
    b->workers[w].wrr.pass = b->wrr.vtime;
}

static void wrr_task_assigned(drv_balancer *b, const drv_btask *t, drv_wref wi)
{
    (void)t;
    drv_bworker *w = &b->workers[wi];
    if (w->wrr.pass > b->wrr.vtime)
        b->wrr.vtime = w->wrr.pass;
    w->wrr.pass += (uint64_t)(1e6 / ((double)w->w.slots * w->w.speed));
}

const drv_policy_ops drv_policy_weighted_round_robin = {
    .name = "weighted_round_robin",
    .kind = DRV_POLICY_WEIGHTED_ROUND_ROBIN,
    .ordering = DRV_ORDER_STRIDE,
    .compare = wrr_compare,
    .score = wrr_score,
    .worker_added = wrr_worker_added,
    .task_assigned = wrr_task_assigned,
};
