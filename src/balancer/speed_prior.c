/* speed_prior.c - what a class is expected to be worth at a family before its runs say
 * (settings.backend_speed_prior, off by default).
 *
 * A class's speed for a family is learned from runs (core/predictor.c): from one test's
 * runs on two classes, or from the first runs of a family's tests on each class; until
 * then it is the class's configured speed, the same for every family. But the analyzer
 * knows which back-ends each family runs best on (analyzer_table.c, best first), and a
 * class offering one of them high in that list is likely faster at that family than one
 * offering none. Without that prior, two browser classes that never ran the same test tie
 * on every family, and a family's longest test may go to the one whose back-end the
 * family does not use (second_run, 100 workers, seeds 17, 33 and 58: a test run on
 * chromium in run 1 sent to the edge class in run 2, 1.20-1.33 x the bound).
 *
 * Off by default: on 100 seeds of second_run (100 workers, 10,000 tests) it takes
 * composite run 2 from a mean of 1.0555 x the bound to 1.0361 (52 -> 68 seeds within
 * 1.05; held-out seeds 11-100: 1.0600 -> 1.0370), but seed 6 goes from 1.049 to 1.135:
 * its browsers are the bottleneck, and browsers expected faster at the families that
 * prefer their back-ends take more of those families' work in a split between browser
 * kinds that only the fluid program's comparative advantage gets right (docs/balancer.md).
 *
 * The factors by rank are modest on purpose: the prior says which class is likely
 * faster, the runs say by how much. Classes only: a worker's own pace is learning.c's. */
#include "balancer/engine.h"
#include "core/analyzer.h"

static const double rank_factor[DRV_FAMILY_BACKENDS_MAX] = {1.5, 1.3, 1.15, 1.05};

void drv_speed_prior_class(drv_balancer *b, uint32_t c, float speed)
{
    if (!b->pred || !b->cfg.settings.backend_speed_prior)
        return;
    const drv_capabilities *caps = &b->classes[c].caps;
    for (int f = DRV_FAMILY_UNKNOWN + 1; f < drv_family_count() && f < 64; f++) {
        const drv_family_info *info = drv_family_get(f);
        for (int k = 0; k < DRV_FAMILY_BACKENDS_MAX && info->backends[k] >= 0; k++)
            if (info->backends[k] != DRV_TAG_CPU &&
                drv_tagset_has(&caps->tags, info->backends[k])) {
                drv_predictor_set_family_prior(b->pred, c, f, speed * rank_factor[k]);
                break;
            }
    }
}
