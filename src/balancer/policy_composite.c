/* policy_composite.c - a weighted sum of the single policies' scores, with the weights
 * of the test's scheduler (ctx->spec: "composite" with "algorithms" in the config).
 *
 * Inside a class its candidate is the one of its heaviest part's ordering (the first on
 * a tie), so a composite dominated by resource_aware packs and one dominated by
 * round_robin rotates. It keeps no state and has no hooks: its parts get every event
 * themselves (policy_table.c). */
#include "balancer/engine.h"

/* The bonus of a class the analyzer prefers for the test's family (drv_place_preferred)
 * under a composite (a single policy stays what its name says). It outweighs what the
 * resource-aware and priority parts hold against a GPU or browser machine for a test
 * that does not require one (about 0.04 at the default weights), so a vision test goes
 * to the free GPU worker before the CPU box; it is worth a finish about 9% later in the
 * performance part (0.6 x (1 - 1/1.09)), so a clearly faster place still wins. Only
 * for tests nothing was learned of: their predictions are guesses anyway. */
#define PREFERENCE_BONUS 0.05

static drv_ordering composite_ordering(const drv_policy_spec *s)
{
    int heaviest = DRV_POLICY_PERFORMANCE;
    double w = 0;
    for (int k = 0; k < DRV_POLICY_SINGLE_COUNT; k++)
        if (s->weights[k] > w) {
            w = s->weights[k];
            heaviest = k;
        }
    return drv_policy_get((drv_policy_kind)heaviest)->ordering;
}

static double composite_score(const drv_place_ctx *ctx, const drv_bworker *w, const drv_wclass *c)
{
    const drv_policy_spec *spec = ctx->spec;
    double s = 0, sum = 0;
    for (int k = 0; k < DRV_POLICY_SINGLE_COUNT; k++) {
        double wt = spec->weights[k];
        if (wt > 0) {
            s += wt * drv_policy_get((drv_policy_kind)k)->score(ctx, w, c);
            sum += wt;
        }
    }
    s = sum > 0 ? s / sum : 0;
    if (drv_place_preferred(ctx, c))
        s += PREFERENCE_BONUS;
    return s;
}

const drv_policy_ops drv_policy_composite = {
    .name = "composite",
    .kind = DRV_POLICY_COMPOSITE,
    .ordering = DRV_ORDER_LEAST_LOADED,
    .ordering_for = composite_ordering,
    .score = composite_score,
};
