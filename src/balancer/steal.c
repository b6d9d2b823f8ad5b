/* steal.c - work stealing, rebalancing and batch sizing.
 *
 * A test assigned to a busy worker waits there until a slot frees. When another worker
 * has room, moving the test pays if its predicted finish there is earlier by more than
 * the migration cost (the round trip and the cold start of a new place):
 *     finish_here = wait on the holder + run on the holder's class
 *     finish_there = wait on the thief  + run on the thief's class
 *     move when finish_here - finish_there > migration_cost_s.
 * The highest-priority candidate moves first. A moved test is not moved again within
 * steal_holdoff_s, so two workers can never hand one test back and forth.
 *
 * Cost: a steal looks at the tests not started of the victims only (workers holding
 * tests they have not started behind full slots, kept as a bitset, visited in index
 * order); rebalance runs it for each worker with a free slot while there are victims.
 * Neither scans every worker for every thief. */
#include <math.h>

#include "balancer/engine.h"

/* Predicted wait before t starts on its holder w: the backlog ahead of it per slot,
 * or 0 when the holder has a free slot for it. */
static double wait_on_holder(const drv_btask *t, const drv_bworker *w)
{
    if (w->w.running + w->w.assigned <= w->w.slots)
        return 0;
    double ahead = w->w.predicted_load_s - t->pred_held_s;
    return ahead > 0 ? ahead / w->w.slots : 0;
}

size_t drv_balancer_steal(drv_balancer *b, drv_wref thief, double now, drv_decision *out,
                          size_t max)
{
    size_t n = 0;
    if (thief >= b->n_workers)
        return 0;
    drv_bworker *tw = &b->workers[thief];
    while (n < max && drv_fleet_worker_available(tw) &&
           tw->w.running + tw->w.assigned < tw->w.slots) {
        drv_tref best = DRV_REF_NONE;
        double best_gain = 0;
        for (uint32_t word = 0; word < b->victim_words; word++)
            for (uint64_t m = b->victims[word]; m; m &= m - 1) {
                uint32_t vi = word * 64 + (uint32_t)__builtin_ctzll(m);
                const drv_bworker *v = &b->workers[vi];
                if (vi == thief)
                    continue;
                for (drv_tref t = v->held; t != DRV_REF_NONE; t = b->tasks[t].next) {
                    const drv_btask *r = &b->tasks[t];
                    if (r->state != DRV_TASK_ASSIGNED ||
                        now - r->moved_at < b->cfg.settings.steal_holdoff_s)
                        continue;
                    if (!drv_bit_get(b->shapes[r->shape].elig, tw->w.wclass) ||
                        !drv_fleet_fits(b, tw, drv_queue_shape_req(b->queue, r->shape)))
                        continue;
                    drv_place_ctx ctx = {.b = b, .t = r, .req = NULL, .now = now};
                    double here = wait_on_holder(r, v) + r->pred_held_s;
                    double there = drv_policy_predicted_finish(&ctx, tw);
                    double gain = here - there;
                    if (gain <= b->cfg.settings.migration_cost_s)
                        continue;
                    if (best == DRV_REF_NONE || r->key < b->tasks[best].key ||
                        (r->key == b->tasks[best].key && gain > best_gain)) {
                        best = t;
                        best_gain = gain;
                    }
                }
            }
        if (best == DRV_REF_NONE)
            break;
        drv_wref from = b->tasks[best].worker;
        drv_engine_release(b, best, now);
        drv_engine_assign(b, best, thief, now);
        b->tasks[best].moved_at = now;
        b->moved++;
        drv_engine_decision(b, &out[n++], DRV_D_MOVED, DRV_R_STOLEN, best, thief, from);
    }
    return n;
}

size_t drv_balancer_rebalance(drv_balancer *b, double now, drv_decision *out, size_t max)
{
    size_t n = 0;
    for (uint32_t wi = 0; wi < b->n_workers && n < max && b->n_victims > 0; wi++) {
        drv_bworker *w = &b->workers[wi];
        if (!drv_fleet_worker_available(w) || w->w.running + w->w.assigned >= w->w.slots)
            continue;
        size_t k = drv_balancer_steal(b, wi, now, out + n, max - n);
        for (size_t i = n; i < n + k; i++)
            out[i].reason = DRV_R_REBALANCED;
        n += k;
    }
    return n;
}
