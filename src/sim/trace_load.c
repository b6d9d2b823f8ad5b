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

#define FLEET_GROUPS_MAX 32

typedef struct fleet_group {
    unsigned long count, slots;
    double speed, join_s;
} fleet_group;

/* Parses one group "COUNTxSLOTS@SPEED[+JOIN]" of text[0..len). */
static int group_parse(const char *text, size_t len, fleet_group *g, drv_error *err)
{
    char buf[96];
    if (len == 0 || len >= sizeof buf)
        return drv_error_set(err, "--fleet: group \"%.*s\": expected COUNTxSLOTS@SPEED[+JOIN]",
                             (int)(len < 64 ? len : 64), text);
    memcpy(buf, text, len);
    buf[len] = '\0';
    int used = 0;
    g->join_s = 0;
    int k = sscanf(buf, "%lux%lu@%lf%n+%lf%n", &g->count, &g->slots, &g->speed, &used, &g->join_s,
                   &used);
    if (k < 3 || (size_t)used != len || g->count < 1 || g->count > 10000 || g->slots < 1 ||
        g->slots > 4096 || !(g->speed >= 0.01 && g->speed <= 100) ||
        !(g->join_s >= 0 && g->join_s <= 1e9))
        return drv_error_set(err,
                             "--fleet: group \"%s\": expected COUNTxSLOTS@SPEED[+JOIN] with COUNT "
                             "1..10000, SLOTS 1..4096, SPEED 0.01..100, JOIN >= 0 seconds",
                             buf);
    return 0;
}

int drv_sim_fleet_parse(const char *spec, drv_workload *w, drv_error *err)
{
    fleet_group g[FLEET_GROUPS_MAX];
    size_t n = 0;
    for (const char *p = spec;;) {
        size_t len = strcspn(p, ",");
        if (n == FLEET_GROUPS_MAX)
            return drv_error_set(err, "--fleet: at most %d groups", FLEET_GROUPS_MAX);
        if (group_parse(p, len, &g[n++], err) != 0)
            return -1;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    for (size_t k = 0; k < n; k++) {
        char tag[32];
        snprintf(tag, sizeof tag, "group-%zu", k + 1);
        int id = drv_tag_intern(w->tags, tag, err);
        if (id < 0)
            return -1;
        for (unsigned long i = 0; i < g[k].count; i++) {
            drv_sim_worker sw;
            memset(&sw, 0, sizeof sw);
            snprintf(sw.name, sizeof sw.name, "g%zu-%lu", k + 1, i + 1);
            snprintf(sw.kind, sizeof sw.kind, "%s", tag);
            drv_capabilities_init(&sw.caps);
            sw.caps.cpu_cores = (uint32_t)g[k].slots;
            sw.caps.memory_mb = 1ULL << 40;
            drv_tagset_add(&sw.caps.tags, DRV_TAG_CPU);
            drv_tagset_add(&sw.caps.tags, id);
            sw.slots = (uint32_t)g[k].slots;
            sw.speed = (float)g[k].speed;
            sw.announced_speed = 1;
            for (int f = 0; f < DRV_FAMILY_MAX; f++)
                sw.family_speed[f] = 1;
            sw.join_at = g[k].join_s;
            sw.leave_at = -1;
            drv_workload_add_worker(w, &sw);
        }
    }
    return 0;
}

int drv_sim_load_trace(const drv_sim_trace_spec *spec, drv_workload *w, drv_trace_options *opt,
                       drv_error *err)
{
    int given = (spec->swf != NULL) + (spec->durations != NULL) + (spec->gpu_nodes != NULL);
    if (given != 1)
        return drv_error_set(err, "give exactly one of --trace, --durations, --gpu-trace");
    if (spec->machines && !spec->swf)
        return drv_error_set(err, "--machines goes with --trace");
    if (spec->fleet && !spec->durations)
        return drv_error_set(err, "--fleet goes with --durations");
    size_t workers = spec->workers ? spec->workers : 0;
    if (spec->durations) {
        if (drv_trace_durations_read(spec->durations, w, opt, err) != 0)
            return -1;
        if (spec->fleet)
            return drv_sim_fleet_parse(spec->fleet, w, err);
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
