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
 * small preferences (a long test on the slow class is what makes a run end late).
 * Both the finish and its score are placement's (drv_place_finish_score): priority
 * scores with them too. Inside a class its candidate is the engine's least-loaded
 * ordering; it keeps no state of its own. */
#include "balancer/engine.h"

static double performance_score(const drv_place_ctx *ctx, const drv_bworker *w, const drv_wclass *c)
{
    (void)c;
    return drv_place_finish_score(ctx, w);
}

const drv_policy_ops drv_policy_performance = {
    .name = "performance_based",
    .kind = DRV_POLICY_PERFORMANCE,
    .ordering = DRV_ORDER_LEAST_LOADED,
    .score = performance_score,
};
