/* policy_performance.c - earliest predicted finish: the wait until the worker has a free
 * slot plus the test's predicted run on that worker's class (learned per family and
 * class). Inside a class, the least loaded worker (by predicted backlog) is the one that
 * finishes first. */
#include "balancer/engine.h"

double drv_policy_predicted_finish(const drv_place_ctx *ctx, const drv_bworker *w)
{
    const drv_balancer *b = ctx->b;
    uint32_t admitted = w->cap_limit > 0 ? w->cap_limit : 1;
    if (admitted > w->w.slots)
        admitted = w->w.slots;
    double wait = 0;
    if (w->w.running + w->w.assigned >= admitted)
        wait = w->w.predicted_load_s / (admitted ? admitted : 1);
    return wait + drv_engine_predict_on(b, ctx->t, w->w.wclass);
}

static double performance_score(const drv_place_ctx *ctx, const drv_bworker *w, const drv_wclass *c)
{
    (void)c;
    double ref = ctx->t->pred_ref_s > 1e-3 ? ctx->t->pred_ref_s : 1e-3;
    double finish = drv_policy_predicted_finish(ctx, w);
    /* 1/(1 + finish/ref): 0.5 when it finishes in its reference time, more when faster. */
    return ref / (ref + finish);
}

const drv_policy_ops drv_policy_performance = {
    .name = "performance_based",
    .kind = DRV_POLICY_PERFORMANCE,
    .ordering = DRV_ORDER_LEAST_LOADED,
    .score = performance_score,
};
