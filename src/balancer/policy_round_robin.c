/* policy_round_robin.c - each test to the worker that has waited longest since its last
 * assignment. Inside a class that is the LRU ordering's top; across classes the score
 * prefers the older last assignment, so the whole eligible fleet is visited in turn and
 * full workers are skipped.
 *
 * State: per worker the order of its last assignment (drv_bworker.rr), and the count of
 * assignments (drv_balancer.rr). The engine's other orderings break their ties on this
 * recency too (fleet.c), so it is kept whichever policy is configured. */
#include "balancer/engine.h"

static int rr_compare(const drv_bworker *a, const drv_bworker *c)
{
    return drv_rr_compare(&a->rr, &c->rr);
}

static double rr_score(const drv_place_ctx *ctx, const drv_bworker *w, const drv_wclass *c)
{
    (void)c;
    /* 1 for a worker never assigned, falling toward 0 for the most recent one. */
    return 1.0 - (double)w->rr.last_assign_seq / ((double)ctx->b->rr.assign_seq + 1.0);
}

static void rr_task_assigned(drv_balancer *b, const drv_btask *t, drv_wref w)
{
    (void)t;
    b->workers[w].rr.last_assign_seq = ++b->rr.assign_seq;
}

const drv_policy_ops drv_policy_round_robin = {
    .name = "round_robin",
    .kind = DRV_POLICY_ROUND_ROBIN,
    .ordering = DRV_ORDER_LRU,
    .compare = rr_compare,
    .score = rr_score,
    .task_assigned = rr_task_assigned,
};
