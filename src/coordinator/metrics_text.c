/* metrics_text.c - GET /metrics: what the coordinator knows, in Prometheus' text
 * exposition format (version 0.0.4), for a scraper next to the dashboard.
 *
 * Gauges: tests by state (the store's counts, every run), the balancer's queue, workers
 * by health and connection, per worker its load, slots, running and assigned tests, the
 * balancer's memory, the process's resident memory. Counters (since this coordinator
 * started): placements, moves, requeues, results, unschedulable tests, late results,
 * per worker its finished tests and infrastructure failures; the build info; and the
 * monitor's families (sampler.c: latency histograms, thermal states, scores, anomalies).
 * Worker names are label values, escaped as the format asks (backslash, double quote,
 * newline). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/coord.h"

void drv_metrics_label(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', out), fputc(*s, out);
        else if (*s == '\n')
            fputs("\\n", out);
        else
            fputc(*s, out);
    }
}

static void head(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One per-worker family: for every known worker, value(w). */
static void per_worker(FILE *out, drv_coordinator *c, const char *name, const char *type,
                       const char *help, double (*value)(drv_coordinator *, drv_wref))
{
    head(out, name, type, help);
    uint32_t n = drv_balancer_worker_refs(c->bal);
    for (drv_wref w = 0; w < n && w < c->cap_workers; w++) {
        if (!c->workers[w].known)
            continue;
        fprintf(out, "%s{worker=\"", name);
        drv_metrics_label(out, drv_balancer_worker(c->bal, w)->name);
        fprintf(out, "\"} %.17g\n", value(c, w));
    }
}

static double w_load(drv_coordinator *c, drv_wref w)
{
    return c->workers[w].session ? c->workers[w].load : 0;
}
static double w_slots(drv_coordinator *c, drv_wref w)
{
    return drv_balancer_worker(c->bal, w)->slots;
}
static double w_running(drv_coordinator *c, drv_wref w)
{
    return drv_balancer_worker(c->bal, w)->running;
}
static double w_assigned(drv_coordinator *c, drv_wref w)
{
    return drv_balancer_worker(c->bal, w)->assigned;
}
static double w_finished(drv_coordinator *c, drv_wref w)
{
    return (double)drv_balancer_worker(c->bal, w)->history.finished;
}
static double w_infra(drv_coordinator *c, drv_wref w)
{
    return (double)drv_balancer_worker(c->bal, w)->history.infra_failures;
}
static double w_up(drv_coordinator *c, drv_wref w)
{
    return c->workers[w].session != NULL;
}

void drv_metrics_text(drv_coordinator *c, drv_hsession *h)
{
    drv_store_counts k;
    drv_error err;
    if (drv_store_count(c->store, &k, &err) < 0) {
        drv_api_error(h, 503, err.msg, NULL);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) {
        drv_api_error(h, 503, "cannot build the metrics text", NULL);
        return;
    }
    head(out, "drover_tests", "gauge", "Tests in the store by state (every run).");
    for (int s = 0; s < DRV_TASK_STATE_COUNT; s++)
        fprintf(out, "drover_tests{state=\"%s\"} %llu\n", drv_task_state_name((drv_task_state)s),
                (unsigned long long)k.by_state[s]);

    drv_balancer_stats b;
    drv_balancer_stats_get(c->bal, &b);
    /* Moves done, as the history counts them: the balancer's count also holds the
     * two-phase moves still waiting for the old holder's answer. */
    b.moved = c->moves_done;
    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"drover_placements_total", "Tests placed on a worker.",
         offsetof(drv_balancer_stats, placed)},
        {"drover_moves_total", "Tests moved between workers (stealing, rebalancing).",
         offsetof(drv_balancer_stats, moved)},
        {"drover_requeues_total", "Tests put back in the queue (lost worker, retry, handed back).",
         offsetof(drv_balancer_stats, requeued)},
        {"drover_results_total", "Results counted.", offsetof(drv_balancer_stats, finished)},
        {"drover_unschedulable_total", "Tests no worker in the fleet can run.",
         offsetof(drv_balancer_stats, unschedulable)},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        head(out, counters[i].name, "counter", counters[i].help);
        fprintf(out, "%s %llu\n", counters[i].name,
                (unsigned long long)*(const uint64_t *)((const char *)&b + counters[i].off));
    }
    head(out, "drover_late_results_total", "counter",
         "Results of attempts already given up: acknowledged, not counted.");
    fprintf(out, "drover_late_results_total %llu\n", (unsigned long long)c->late_results);
    /* exec2: the two-phase move (docs/balancer.md). */
    head(out, "drover_moves_dropped_total", "counter",
         "Moves dropped because the old holder had started the test (or could not answer).");
    fprintf(out, "drover_moves_dropped_total %llu\n", (unsigned long long)c->moves_dropped);
    head(out, "drover_moves_pending", "gauge",
         "Moves waiting for the old holder to release the test.");
    fprintf(out, "drover_moves_pending %zu\n", c->n_moves);
    head(out, "drover_balancer_tests", "gauge", "Tests the balancer holds, by state.");
    fprintf(out,
            "drover_balancer_tests{state=\"queued\"} %llu\n"
            "drover_balancer_tests{state=\"assigned\"} %llu\n"
            "drover_balancer_tests{state=\"running\"} %llu\n",
            (unsigned long long)b.queued, (unsigned long long)b.assigned,
            (unsigned long long)b.running);
    head(out, "drover_balancer_bytes", "gauge", "Memory of the balancer's state.");
    fprintf(out, "drover_balancer_bytes %zu\n", b.bytes);

    unsigned by_health[DRV_HEALTH_COUNT] = {0}, connected = 0;
    uint32_t n = drv_balancer_worker_refs(c->bal);
    for (drv_wref w = 0; w < n && w < c->cap_workers; w++) {
        if (!c->workers[w].known)
            continue;
        drv_health hl = c->workers[w].left   ? DRV_HEALTH_LEFT
                        : c->workers[w].lost ? DRV_HEALTH_LOST
                                             : drv_balancer_worker(c->bal, w)->health;
        by_health[hl < DRV_HEALTH_COUNT ? hl : DRV_HEALTH_LOST]++;
        connected += c->workers[w].session != NULL;
    }
    head(out, "drover_workers", "gauge", "Known workers by health.");
    for (int hl = 0; hl < DRV_HEALTH_COUNT; hl++)
        fprintf(out, "drover_workers{health=\"%s\"} %u\n", drv_health_name((drv_health)hl),
                by_health[hl]);
    head(out, "drover_workers_connected", "gauge", "Workers connected now.");
    fprintf(out, "drover_workers_connected %u\n", connected);
    per_worker(out, c, "drover_worker_up", "gauge", "1 when the worker is connected.", w_up);
    per_worker(out, c, "drover_worker_load", "gauge", "The worker's reported load (1: busy).",
               w_load);
    per_worker(out, c, "drover_worker_slots", "gauge", "Tests the worker runs at once.", w_slots);
    per_worker(out, c, "drover_worker_running", "gauge", "Tests running on the worker.", w_running);
    per_worker(out, c, "drover_worker_assigned", "gauge", "Tests sent to the worker, not started.",
               w_assigned);
    per_worker(out, c, "drover_worker_finished_total", "counter", "Tests the worker finished.",
               w_finished);
    per_worker(out, c, "drover_worker_infra_failures_total", "counter",
               "Tests the worker could not run (spawn failures, crashes, lost tests).", w_infra);

    head(out, "drover_uptime_seconds", "gauge", "Seconds since the coordinator started.");
    fprintf(out, "drover_uptime_seconds %.3f\n", drv_coord_now() - c->started_at);
    long long rss_kb, hwm_kb;
    drv_api_memory_kb(&rss_kb, &hwm_kb);
    if (rss_kb >= 0) {
        head(out, "drover_resident_bytes", "gauge", "Resident memory of the coordinator.");
        fprintf(out, "drover_resident_bytes %lld\n", rss_kb * 1024);
    }
    head(out, "drover_build_info", "gauge", "The coordinator's version (always 1).");
    fputs("drover_build_info{version=\"", out);
    drv_metrics_label(out, drv_api_version());
    fputs("\"} 1\n", out);
    drv_sampler_prometheus(c, out);
    fclose(out);
    drv_api_respond_text(h, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
}
