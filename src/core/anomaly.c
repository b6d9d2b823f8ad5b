/* anomaly.c - the detectors and the worker score over recorded windows (anomaly.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/anomaly.h"
#include "core/error.h"

const char *drv_anomaly_kind_name(drv_anomaly_kind k)
{
    static const char *const names[DRV_ANOM_KIND_COUNT] = {
        "slow_worker", "failure_rate", "queue_stalled", "heartbeat_jitter", "flapping"};
    return (unsigned)k < DRV_ANOM_KIND_COUNT ? names[k] : "?";
}

const char *drv_anomaly_severity_name(drv_anomaly_severity s)
{
    return s == DRV_ANOM_CRITICAL ? "critical" : "warning";
}

float drv_anomaly_run_ratio(double measured_s, double predicted_s)
{
    if (!(measured_s > 0) || !(predicted_s > 0))
        return 0;
    double m = measured_s > DRV_ANOM_MEASURABLE_S ? measured_s : DRV_ANOM_MEASURABLE_S;
    double p = predicted_s > DRV_ANOM_MEASURABLE_S ? predicted_s : DRV_ANOM_MEASURABLE_S;
    return (float)(m / p);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of v[0..n) (sorted in place; n > 0), nearest rank. */
static double quantile(double *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)floor(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* The median of sorted[0..n) without the element at position skip (n > 1). */
static double median_without(const double *sorted, size_t n, size_t skip)
{
    size_t m = n - 1, lo = (m - 1) / 2, hi = m / 2;
    double a = sorted[lo >= skip ? lo + 1 : lo], b = sorted[hi >= skip ? hi + 1 : hi];
    return (a + b) / 2;
}

/* The first run of w inside its window (the last DRV_ANOM_WINDOW_TESTS within
 * DRV_ANOM_WINDOW_S of now). */
static uint32_t window_first(const drv_worker_window *w, double now)
{
    uint32_t first = w->n_runs > DRV_ANOM_WINDOW_TESTS ? w->n_runs - DRV_ANOM_WINDOW_TESTS : 0;
    while (first < w->n_runs && w->runs[first].t < now - DRV_ANOM_WINDOW_S)
        first++;
    return first;
}

typedef struct by_class {
    uint32_t wclass;
    double ratio;
    size_t worker;
} by_class;

static int cmp_by_class(const void *a, const void *b)
{
    const by_class *x = a, *y = b;
    if (x->wclass != y->wclass)
        return x->wclass < y->wclass ? -1 : 1;
    return (x->ratio > y->ratio) - (x->ratio < y->ratio);
}

/* Heartbeat figures of w into a. */
static void assess_beats(const drv_worker_window *w, drv_worker_assessment *a)
{
    uint32_t n = w->n_beats > DRV_ANOM_WINDOW_TESTS ? DRV_ANOM_WINDOW_TESTS : w->n_beats;
    a->beats = n;
    if (n < DRV_ANOM_MIN_BEATS)
        return;
    double v[DRV_ANOM_WINDOW_TESTS];
    for (uint32_t i = 0; i < n; i++)
        v[i] = w->beats[w->n_beats - n + i];
    a->beat_median = quantile(v, n, 0.5);
    a->beat_p10 = v[(size_t)floor(0.1 * (n - 1) + 0.5)];
    a->beat_p90 = v[(size_t)floor(0.9 * (n - 1) + 0.5)];
    a->beat_max = v[n - 1];
    double spread = a->beat_p90 - a->beat_p10;
    a->jitter = (spread > 0.5 * a->beat_median && spread > 0.5) ||
                (a->beat_max > 3 * a->beat_median && a->beat_max - a->beat_median > 1.0);
}

void drv_anomaly_assess(const drv_worker_window *w, size_t n, double now, drv_worker_assessment *a)
{
    uint64_t all_tests = 0, all_failed = 0;
    by_class *bc = n ? drv_xmalloc(n * sizeof *bc) : NULL;
    size_t n_bc = 0;
    for (size_t i = 0; i < n; i++) {
        drv_worker_assessment *x = &a[i];
        memset(x, 0, sizeof *x);
        uint32_t first = window_first(&w[i], now);
        double r[DRV_ANOM_WINDOW_TESTS];
        size_t nr = 0;
        for (uint32_t k = first; k < w[i].n_runs; k++) {
            x->tests++;
            x->failed += w[i].runs[k].failed;
            if (w[i].runs[k].ratio > 0)
                r[nr++] = w[i].runs[k].ratio;
        }
        all_tests += x->tests;
        all_failed += x->failed;
        x->failure_rate = x->tests ? (double)x->failed / x->tests : 0;
        if (nr >= DRV_ANOM_MIN_TESTS) {
            x->ratio = quantile(r, nr, 0.5);
            bc[n_bc++] = (by_class){w[i].wclass, x->ratio, i};
        }
        for (uint32_t k = 0; k < w[i].n_losses; k++)
            x->losses += w[i].losses[k] >= now - DRV_ANOM_WINDOW_S;
        assess_beats(&w[i], x);
    }
    /* The rest of the fleet's failure rate, per worker. */
    for (size_t i = 0; i < n; i++) {
        uint64_t t = all_tests - a[i].tests, f = all_failed - a[i].failed;
        a[i].fleet_tests = (uint32_t)t;
        a[i].fleet_rate = t ? (double)f / (double)t : 0;
        a[i].class_ratio = 1;
        a[i].speed_ratio = 1;
    }
    /* The class's ratio without the worker itself: the median of the other workers'. */
    if (n_bc > 1)
        qsort(bc, n_bc, sizeof *bc, cmp_by_class);
    double *sorted = n_bc ? drv_xmalloc(n_bc * sizeof *sorted) : NULL;
    for (size_t s = 0; s < n_bc;) {
        size_t e = s;
        while (e < n_bc && bc[e].wclass == bc[s].wclass)
            e++;
        size_t k = e - s;
        for (size_t j = 0; j < k; j++)
            sorted[j] = bc[s + j].ratio;
        for (size_t j = 0; j < k; j++) {
            drv_worker_assessment *x = &a[bc[s + j].worker];
            x->class_ratio = k > 1 ? median_without(sorted, k, j) : 1;
            if (x->class_ratio > 0)
                x->speed_ratio = x->ratio / x->class_ratio;
        }
        s = e;
    }
    free(sorted);
    free(bc);
}

static void evidence(drv_finding *f, const char *name, double value)
{
    if (f->n_ev < DRV_ANOM_EVIDENCE_MAX)
        f->ev[f->n_ev++] = (drv_evidence){name, value};
}

size_t drv_anomaly_workers(const drv_worker_window *w, const drv_worker_assessment *a, size_t n,
                           drv_finding *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++) {
        const drv_worker_assessment *x = &a[i];
        if (x->ratio > 0 && x->speed_ratio >= DRV_ANOM_SLOW_RATIO && k < max) {
            drv_finding *f = &out[k++];
            *f = (drv_finding){.kind = DRV_ANOM_SLOW_WORKER,
                               .severity = x->speed_ratio >= DRV_ANOM_SLOW_CRITICAL
                                               ? DRV_ANOM_CRITICAL
                                               : DRV_ANOM_WARNING,
                               .worker = (uint32_t)i};
            evidence(f, "tests", x->tests);
            evidence(f, "ratio", x->ratio);
            evidence(f, "class_ratio", x->class_ratio);
            evidence(f, "slower", x->speed_ratio);
            evidence(f, "class", w[i].wclass);
            evidence(f, "window_s", DRV_ANOM_WINDOW_S);
            snprintf(f->summary, sizeof f->summary,
                     "%s runs its tests %.1fx slower than its class (measured/predicted %.2f, "
                     "class %.2f, %u tests)",
                     w[i].name, x->speed_ratio, x->ratio, x->class_ratio, x->tests);
        }
        if (x->tests >= DRV_ANOM_FAIL_MIN_TESTS && x->failure_rate >= 0.5 &&
            x->failure_rate >= 3 * x->fleet_rate && x->failure_rate - x->fleet_rate >= 0.3 &&
            k < max) {
            drv_finding *f = &out[k++];
            *f = (drv_finding){.kind = DRV_ANOM_FAILURE_RATE,
                               .severity =
                                   x->failure_rate >= 1 ? DRV_ANOM_CRITICAL : DRV_ANOM_WARNING,
                               .worker = (uint32_t)i};
            evidence(f, "tests", x->tests);
            evidence(f, "failed", x->failed);
            evidence(f, "rate", x->failure_rate);
            evidence(f, "fleet_rate", x->fleet_rate);
            evidence(f, "fleet_tests", x->fleet_tests);
            snprintf(f->summary, sizeof f->summary,
                     "%s failed %u of its last %u tests (%.0f %%) while the rest of the fleet "
                     "failed %.0f %% of %u",
                     w[i].name, x->failed, x->tests, 100 * x->failure_rate, 100 * x->fleet_rate,
                     x->fleet_tests);
        }
        if (x->jitter && k < max) {
            drv_finding *f = &out[k++];
            *f = (drv_finding){.kind = DRV_ANOM_HEARTBEAT_JITTER,
                               .severity = x->beat_max >= 5 * x->beat_median ? DRV_ANOM_CRITICAL
                                                                             : DRV_ANOM_WARNING,
                               .worker = (uint32_t)i};
            evidence(f, "beats", x->beats);
            evidence(f, "median_s", x->beat_median);
            evidence(f, "p10_s", x->beat_p10);
            evidence(f, "p90_s", x->beat_p90);
            evidence(f, "max_s", x->beat_max);
            snprintf(f->summary, sizeof f->summary,
                     "%s's heartbeats are irregular: median %.2f s, p10 %.2f s, p90 %.2f s, "
                     "longest gap %.2f s",
                     w[i].name, x->beat_median, x->beat_p10, x->beat_p90, x->beat_max);
        }
        if (x->losses >= DRV_ANOM_FLAP_LOSSES && k < max) {
            drv_finding *f = &out[k++];
            *f = (drv_finding){.kind = DRV_ANOM_FLAPPING,
                               .severity = x->losses >= DRV_ANOM_FLAP_CRITICAL ? DRV_ANOM_CRITICAL
                                                                               : DRV_ANOM_WARNING,
                               .worker = (uint32_t)i};
            evidence(f, "losses", x->losses);
            evidence(f, "window_s", DRV_ANOM_WINDOW_S);
            snprintf(f->summary, sizeof f->summary, "%s lost its connection %u times in %.0f min",
                     w[i].name, x->losses, DRV_ANOM_WINDOW_S / 60);
        }
    }
    return k;
}

bool drv_anomaly_queue(const drv_queue_obs *q, size_t n, drv_finding *out)
{
    if (n == 0)
        return false;
    const drv_queue_obs *last = &q[n - 1];
    size_t i = n;
    while (i > 0 && q[i - 1].queued > 0 && q[i - 1].free_slots > 0 &&
           q[i - 1].placed == last->placed)
        i--;
    if (i == n)
        return false;
    double stalled = last->t - q[i].t;
    if (stalled < DRV_ANOM_STALL_S)
        return false;
    *out = (drv_finding){.kind = DRV_ANOM_QUEUE_STALLED,
                         .severity = stalled >= DRV_ANOM_STALL_CRITICAL ? DRV_ANOM_CRITICAL
                                                                        : DRV_ANOM_WARNING,
                         .worker = UINT32_MAX};
    evidence(out, "queued", (double)last->queued);
    evidence(out, "free_slots", (double)last->free_slots);
    evidence(out, "stalled_s", stalled);
    snprintf(out->summary, sizeof out->summary,
             "%llu tests queued and %llu slots free, but nothing placed for %.0f s",
             (unsigned long long)last->queued, (unsigned long long)last->free_slots, stalled);
    return true;
}

void drv_anomaly_score(const drv_worker_assessment *a, drv_score *out)
{
    bool known = a->tests >= DRV_ANOM_MIN_TESTS;
    double sr = a->ratio > 0 && a->speed_ratio > 1 ? a->speed_ratio : 1;
    out->speed = known ? (int)lround(100 / sr) : 100;
    out->reliability = known ? (int)lround(100 * (1 - a->failure_rate)) : 100;
    int st = 100 - 25 * (int)(a->losses > 4 ? 4 : a->losses) - (a->jitter ? 25 : 0);
    out->stability = st < 0 ? 0 : st;
    out->value = (int)lround(0.5 * out->speed + 0.3 * out->reliability + 0.2 * out->stability);
}
