/* steal.c - work stealing, rebalancing and batch sizing.
 *
 * A test assigned to a busy worker waits there until a slot frees. When another worker
 * has room, moving the test pays if its predicted finish there is earlier by more than
 * the migration cost (the round trip and the cold start of a new place):
 *     finish_here = wait on the holder + run on the holder's class
 *     finish_there = wait on the thief  + run on the thief's class
 *     move when finish_here - finish_there > migration_cost_s.
 * Once the queue is empty the thief's free slot stays idle until the run ends, and a
 * test not started costs only a release round trip and an assign to move (measured
 * 0.6-16 ms from decision to start on loopback), no cold start: the gain need only
 * exceed idle_move_cost_s (0.05 s), so the workers of a run's tail finish together
 * rather than one idling while another works through ~1 s of short tests.
 * Runs and backlogs are the predictor's current ones, not those of the moment the tests
 * were assigned (a test assigned as "unknown" may have a history by now).
 * The highest-priority candidate moves first. A moved test is not moved again within
 * steal_holdoff_s, so two workers can never hand one test back and forth.
 *
 * Cost: a steal looks at the tests not started of the victims only (workers holding
 * tests they have not started behind full slots, kept as a bitset, visited in index
 * order); rebalance runs it for each worker with a free slot while there are victims.
 * Neither scans every worker for every thief. */
#include <math.h>

#include "balancer/engine.h"

/* t's predicted run on class c by what the predictor knows now (bal): a test's
 * reference prediction is taken at submission and may be stale (its family's first runs,
 * an estimate before anything ran); the steal rule compares finishes with the current
 * one and keeps it on the record. pred_held_s, what the holder's backlog counts, is left
 * as it is (release subtracts it). */
static double current_run(drv_balancer *b, drv_btask *t, uint32_t c)
{
    if (b->pred) {
        drv_prediction p =
            drv_predictor_predict_reference(b->pred, t->test_key, t->family, t->pred_ref_s);
        t->pred_ref_s = (float)p.mean_s;
        t->pred_high_s = (float)p.high_s;
    }
    return drv_engine_predict_on(b, t, c);
}

/* The predicted work worker v holds (running and assigned), by current predictions. */
static double holder_backlog(drv_balancer *b, const drv_bworker *v)
{
    double sum = 0;
    for (drv_tref t = v->held; t != DRV_REF_NONE; t = b->tasks[t].next)
        sum += current_run(b, &b->tasks[t], v->w.wclass);
    return sum;
}

/* Predicted wait before a test of predicted run `run` starts on its holder v: the rest of
 * the backlog per slot, or 0 when the holder has a free slot for it. */
static double wait_on_holder(const drv_bworker *v, double backlog, double run)
{
    if (v->w.running + v->w.assigned <= v->w.slots)
        return 0;
    double ahead = backlog - run;
    return ahead > 0 ? ahead / v->w.slots : 0;
}

size_t drv_balancer_steal(drv_balancer *b, drv_wref thief, double now, drv_decision *out,
                          size_t max)
{
    size_t n = 0;
    if (thief >= b->n_workers)
        return 0;
    drv_bworker *tw = &b->workers[thief];
    double cost = b->cfg.settings.migration_cost_s;
    if (b->n_queued == 0 && b->cfg.settings.idle_move_cost_s < cost)
        cost = b->cfg.settings.idle_move_cost_s;
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
                double backlog = holder_backlog(b, v);
                for (drv_tref t = v->held; t != DRV_REF_NONE; t = b->tasks[t].next) {
                    const drv_btask *r = &b->tasks[t];
                    if (r->state != DRV_TASK_ASSIGNED ||
                        now - r->moved_at < b->cfg.settings.steal_holdoff_s)
                        continue;
                    if (!drv_bit_get(b->shapes[r->shape].elig, tw->w.wclass) ||
                        !drv_fleet_fits(b, tw, drv_queue_shape_req(b->queue, r->shape)))
                        continue;
                    drv_place_ctx ctx = {.b = b, .t = r, .req = NULL, .now = now};
                    double run = drv_engine_predict_on(b, r, v->w.wclass);
                    double here = wait_on_holder(v, backlog, run) + run;
                    double there = drv_place_predicted_finish(&ctx, tw);
                    double gain = here - there;
                    if (gain <= cost)
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

/* Runs stealing for every available worker with a free slot, each move with reason. */
static size_t steal_for_free(drv_balancer *b, double now, drv_decision *out, size_t max,
                             drv_reason reason)
{
    size_t n = 0;
    for (uint32_t wi = 0; wi < b->n_workers && n < max && b->n_victims > 0; wi++) {
        drv_bworker *w = &b->workers[wi];
        if (!drv_fleet_worker_available(w) || w->w.running + w->w.assigned >= w->w.slots)
            continue;
        size_t k = drv_balancer_steal(b, wi, now, out + n, max - n);
        for (size_t i = n; i < n + k; i++)
            out[i].reason = reason;
        n += k;
    }
    return n;
}

size_t drv_balancer_steal_idle(drv_balancer *b, double now, drv_decision *out, size_t max)
{
    if (b->n_queued > 0)
        return 0;
    return steal_for_free(b, now, out, max, DRV_R_STOLEN);
}

size_t drv_balancer_rebalance(drv_balancer *b, double now, drv_decision *out, size_t max)
{
    return steal_for_free(b, now, out, max, DRV_R_REBALANCED);
}

int drv_balancer_unmove(drv_balancer *b, drv_tref t, drv_wref from, double now)
{
    if (t >= b->n_tasks || b->tasks[t].state != DRV_TASK_ASSIGNED || from >= b->n_workers ||
        !b->workers[from].live)
        return -1;
    if (b->tasks[t].worker == from)
        return 0;
    drv_engine_release(b, t, now);
    drv_engine_assign(b, t, from, now);
    if (b->moved > 0)
        b->moved--;
    return 0;
}
