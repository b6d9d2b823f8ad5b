/* trace_load.c - a simulation's workload from a real trace, with a fleet when the trace
 * brings none.
 *
 * A test-duration file has no fleet: it gets `workers` identical CPU workers of `slots`
 * slots each (the setting of pytest-split and knapsack: N identical CI nodes). A Standard
 * Workload Format log without a .machines file describes one machine: it gets `workers`
 * identical nodes, each with as many cores as the largest job asks for (so every job
 * fits), slots = cores (a job reserves its cores), and every queue and partition tag the
 * log uses (the reader turns them into requirements). An Alea log with its .machines
 * file and the Alibaba trace bring their own fleet. */
#include <stdio.h>
#include <string.h>

#include "sim/sim.h"

/* Adds n identical workers named "node-<i>" with the given cores, slots and tags. */
static void add_identical(drv_workload *w, size_t n, uint32_t cores, uint32_t slots,
                          const drv_tagset *tags)
{
    for (size_t i = 0; i < n; i++) {
        drv_sim_worker sw;
        memset(&sw, 0, sizeof sw);
        snprintf(sw.name, sizeof sw.name, "node-%zu", i + 1);
        snprintf(sw.kind, sizeof sw.kind, "identical");
        drv_capabilities_init(&sw.caps);
        sw.caps.cpu_cores = cores;
        sw.caps.memory_mb = 1ULL << 40; /* memory is not what these traces are about */
        sw.caps.tags = *tags;
        drv_tagset_add(&sw.caps.tags, DRV_TAG_CPU);
        sw.slots = slots;
        sw.speed = 1;
        for (int f = 0; f < DRV_FAMILY_MAX; f++)
            sw.family_speed[f] = 1;
        sw.leave_at = -1;
        drv_workload_add_worker(w, &sw);
    }
}

int drv_sim_load_trace(const drv_sim_trace_spec *spec, drv_workload *w, drv_trace_options *opt,
                       drv_error *err)
{
    int given = (spec->swf != NULL) + (spec->durations != NULL) + (spec->gpu_nodes != NULL);
    if (given != 1)
        return drv_error_set(err, "give exactly one of --trace, --durations, --gpu-trace");
    if (spec->machines && !spec->swf)
        return drv_error_set(err, "--machines goes with --trace");
    size_t workers = spec->workers ? spec->workers : 0;
    if (spec->durations) {
        if (drv_trace_durations_read(spec->durations, w, opt, err) != 0)
            return -1;
        drv_tagset none;
        drv_tagset_clear(&none);
        uint32_t slots = spec->slots ? spec->slots : 1;
        add_identical(w, workers ? workers : 8, slots, slots, &none);
        return 0;
    }
    if (spec->gpu_nodes)
        return drv_trace_alibaba_read(spec->gpu_nodes, spec->gpu_pods, w, opt, err);
    if (drv_trace_swf_read(spec->swf, spec->machines, w, opt, err) != 0)
        return -1;
    if (w->n_workers > 0)
        return 0;
    /* One machine described by the log: nodes as large as its largest job. */
    uint32_t cores = 1;
    drv_tagset tags;
    drv_tagset_clear(&tags);
    for (size_t i = 0; i < w->n_tests; i++) {
        const drv_sim_test *t = &w->tests[i];
        if (t->req.cpu_cores > cores)
            cores = t->req.cpu_cores;
        for (int k = 0; k < DRV_TAGS_MAX; k++)
            if (drv_tagset_has(&t->req.all_of, k))
                drv_tagset_add(&tags, k);
    }
    add_identical(w, workers ? workers : 1, cores, cores, &tags);
    return 0;
}
