/* policy_performance.c - earliest predicted finish: the wait until the worker has a free
 * slot plus the test's predicted run on that worker's class (learned per family and
 * class). Inside a class, the least loaded worker (by predicted backlog) is the one that
 * finishes first.
 *
 * The score is the best finish there could be (the test's run on the fastest class
 * that can run it, started now) over the finish on this worker: 1 for the best place,
 * 0.8 for one where it ends 25% later. Measured against the best rather than against
 * the run itself, the score spreads over the whole range where it matters, so in a
 * composite a slower class loses to a faster one by more than the other policies'
 * small preferences (a long test on the slow class is what makes a run end late). */
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
    return wait + drv_engine_predict_worker(b, ctx->t, (drv_wref)(w - b->workers));
}

double drv_policy_finish_score(const drv_place_ctx *ctx, const drv_bworker *w)
{
    const drv_balancer *b = ctx->b;
    double ref = ctx->t->pred_ref_s > 1e-3 ? ctx->t->pred_ref_s : 1e-3;
    double fastest = ctx->best_speed > 0 ? ctx->best_speed : b->fastest[ctx->t->family];
    double best = ref / (fastest > 0 ? fastest : 1);
    double finish = drv_policy_predicted_finish(ctx, w);
    return finish > best ? best / finish : 1;
}

static double performance_score(const drv_place_ctx *ctx, const drv_bworker *w, const drv_wclass *c)
{
    (void)c;
    return drv_policy_finish_score(ctx, w);
}

const drv_policy_ops drv_policy_performance = {
    .name = "performance_based",
    .kind = DRV_POLICY_PERFORMANCE,
    .ordering = DRV_ORDER_LEAST_LOADED,
    .score = performance_score,
};
