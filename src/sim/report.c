/* report.c - a simulation report as a terminal table and as JSON.
 *
 * The table has one row per policy and run, the lower bound and the ratio to it, the
 * waits, the slowdown, the fleet's utilization, the counts of moves, retries and
 * unschedulable tests, and the balancer's placement speed; a second table gives the
 * utilization per worker kind. The JSON is an array with one object per row. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"

/* The row's label: the policy, with the run when the policy made several. */
static void row_label(const drv_sim_result *r, char *buf, size_t len)
{
    if (r->runs > 1)
        snprintf(buf, len, "%s #%u", r->policy, r->run);
    else
        snprintf(buf, len, "%s", r->policy);
}

/* A rate as "1.2M", "340k" or "12". */
static void format_rate(double v, char *buf, size_t len)
{
    if (v >= 1e6)
        snprintf(buf, len, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, len, "%.0fk", v / 1e3);
    else
        snprintf(buf, len, "%.0f", v);
}

void drv_sim_report_print(FILE *out, const drv_sim_report *rep, bool timing)
{
    fprintf(out, "scenario %s: %zu workers, %zu tests, seed %llu (%s)\n", rep->scenario,
            rep->workers, rep->tests, (unsigned long long)rep->seed, rep->source);
    fprintf(out, "%-22s %10s %10s %6s %8s %8s %8s %8s %5s %7s %7s %6s %9s\n", "policy", "makespan",
            "bound", "ratio", "wait p50", "p95", "p99", "slowdn", "util", "steals", "retries",
            "unsch", "place/s");
    for (size_t k = 0; k < rep->n_results; k++) {
        const drv_sim_result *r = &rep->results[k];
        char label[48], rate[16];
        row_label(r, label, sizeof label);
        if (r->baseline || !timing)
            snprintf(rate, sizeof rate, "-");
        else
            format_rate(r->placements_per_s, rate, sizeof rate);
        fprintf(out,
                "%-22s %9.1fs %9.1fs %6.3f %7.1fs %7.1fs %7.1fs %8.2f %4.0f%% %7llu %7llu %6llu "
                "%9s\n",
                label, r->makespan_s, r->lower_bound_s, r->ratio_to_bound, r->wait_p50_s,
                r->wait_p95_s, r->wait_p99_s, r->bounded_slowdown, 100 * r->utilization_all,
                (unsigned long long)r->steals, (unsigned long long)r->retries,
                (unsigned long long)r->unschedulable, rate);
        if (r->unfinished > 0)
            fprintf(out, "%-22s   ! %llu tests not finished (stuck or out of virtual time)\n", "",
                    (unsigned long long)r->unfinished);
    }

    /* utilization per worker kind: the kinds of the first result (all share the fleet) */
    if (rep->n_results > 0 && rep->results[0].n_kinds > 0) {
        const drv_sim_result *first = &rep->results[0];
        fprintf(out, "\nutilization by worker kind (busy slot-seconds / slots x makespan)\n");
        fprintf(out, "%-22s", "policy");
        for (unsigned c = 0; c < first->n_kinds; c++)
            fprintf(out, " %*.*s", 9, 9, first->kind[c]);
        fprintf(out, "\n");
        for (size_t k = 0; k < rep->n_results; k++) {
            const drv_sim_result *r = &rep->results[k];
            char label[48];
            row_label(r, label, sizeof label);
            fprintf(out, "%-22s", label);
            for (unsigned c = 0; c < r->n_kinds && c < first->n_kinds; c++)
                fprintf(out, " %8.0f%%", 100 * r->utilization[c]);
            fprintf(out, "\n");
        }
    }
    if (timing && rep->wall_s > 0)
        fprintf(out, "\nsimulated %llu events in %.2f s of wall time (%.0f events/s)\n",
                (unsigned long long)rep->events, rep->wall_s, (double)rep->events / rep->wall_s);
}

/* A real rounded to 6 decimals, so the text does not show binary noise; a value that is
 * not finite (which JSON cannot hold) is written as 0. */
static json_t *real(double v)
{
    return json_real(isfinite(v) ? round(v * 1e6) / 1e6 : 0);
}

char *drv_sim_report_json(const drv_sim_report *rep, bool timing)
{
    json_t *arr = json_array();
    for (size_t k = 0; k < rep->n_results; k++) {
        const drv_sim_result *r = &rep->results[k];
        json_t *o = json_object();
        json_object_set_new(o, "policy", json_string(r->policy));
        json_object_set_new(o, "run", json_integer(r->run));
        json_object_set_new(o, "scenario", json_string(rep->scenario));
        json_object_set_new(o, "makespan_s", real(r->makespan_s));
        json_object_set_new(o, "lower_bound_s", real(r->lower_bound_s));
        json_object_set_new(o, "ratio_to_bound", real(r->ratio_to_bound));
        json_object_set_new(o, "wait_p50_s", real(r->wait_p50_s));
        json_object_set_new(o, "wait_p95_s", real(r->wait_p95_s));
        json_object_set_new(o, "wait_p99_s", real(r->wait_p99_s));
        json_object_set_new(o, "bounded_slowdown", real(r->bounded_slowdown));
        json_t *u = json_object();
        for (unsigned c = 0; c < r->n_kinds; c++)
            json_object_set_new(u, r->kind[c], real(r->utilization[c]));
        json_object_set_new(o, "utilization", u);
        json_object_set_new(o, "utilization_all", real(r->utilization_all));
        json_object_set_new(o, "steals", json_integer((json_int_t)r->steals));
        json_object_set_new(o, "copies", json_integer((json_int_t)r->copies));
        json_object_set_new(o, "copies_yielded", json_integer((json_int_t)r->yields));
        json_object_set_new(o, "retries", json_integer((json_int_t)r->retries));
        json_object_set_new(o, "unschedulable", json_integer((json_int_t)r->unschedulable));
        json_object_set_new(o, "submitted", json_integer((json_int_t)r->submitted));
        json_object_set_new(o, "passed", json_integer((json_int_t)r->passed));
        json_object_set_new(o, "failed", json_integer((json_int_t)r->failed));
        json_object_set_new(o, "unfinished", json_integer((json_int_t)r->unfinished));
        json_object_set_new(o, "crashes", json_integer((json_int_t)r->crashes));
        json_object_set_new(o, "placements", json_integer((json_int_t)r->placements));
        json_object_set_new(o, "placements_per_s",
                            real(timing && !r->baseline ? r->placements_per_s : 0));
        json_object_set_new(o, "balancer_bytes", json_integer((json_int_t)r->balancer_bytes));
        json_object_set_new(o, "events", json_integer((json_int_t)r->events));
        json_array_append_new(arr, o);
    }
    char *text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(arr);
    if (!text) /* jansson fails only when out of memory */
        text = drv_xstrdup("[]");
    return text;
}
