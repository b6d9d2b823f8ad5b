/* policy_resource_aware.c - best fit on slots, cores, memory and GPUs: the worker left
 * with the least unused capacity after taking the test wins, so big workers stay free
 * for big tests, and a CPU-only test does not sit on a GPU machine or a browser machine
 * (idle GPUs and unused special back-ends count as waste). Inside a class the fullest
 * available worker is the candidate. */
#include "balancer/engine.h"

static double left_after(double total, double used, double need)
{
    if (total <= 0)
        return -1; /* the worker has none: not a dimension */
    double left = (total - used - need) / total;
    return left < 0 ? 0 : left;
}

static double resource_score(const drv_place_ctx *ctx, const drv_bworker *w, const drv_wclass *c)
{
    const drv_requirements *r = ctx->req;
    const drv_worker *x = &w->w;
    double dims[4] = {
        left_after(w->cap_limit, x->running + x->assigned, 1),
        left_after(x->caps.cpu_cores, x->used_cpu, r->cpu_cores),
        left_after((double)x->caps.memory_mb, (double)x->used_memory_mb, (double)r->memory_mb),
        /* a test that uses no GPU is not scored on GPUs: only their waste counts */
        r->gpu_count ? left_after(x->caps.gpu_count, x->used_gpu, r->gpu_count) : -1,
    };
    double sum = 0;
    int n = 0;
    for (int i = 0; i < 4; i++)
        if (dims[i] >= 0) {
            sum += dims[i];
            n++;
        }
    double fit = n ? 1.0 - sum / n : 0.5;
    /* Waste is not one more dimension to average (it would be diluted by the others):
     * a test that uses none of a worker's GPUs wastes all of them, one that needs none of
     * its special back-ends or browsers (cuda, webgpu, chromium, ...) wastes those, and
     * either divides the fit. */
    if (x->caps.gpu_count > 0 && r->gpu_count == 0)
        fit *= 0.25;
    if (c->special && !drv_tagset_intersects(&c->special_tags, &r->all_of) &&
        !drv_tagset_intersects(&c->special_tags, &r->any_of))
        fit *= 0.5;
    return fit;
}

const drv_policy_ops drv_policy_resource_aware = {
    .name = "resource_aware",
    .kind = DRV_POLICY_RESOURCE_AWARE,
    .ordering = DRV_ORDER_MOST_LOADED,
    .score = resource_score,
};
