/* sampler.c - the coordinator's monitoring: a sample of the fleet and the queue every
 * second, kept in the store as time series at three resolutions (core/series.h), the
 * histograms of assign latency, queue wait and test duration (core/histogram.h), the
 * per-worker records the anomaly detectors and the performance score read
 * (core/anomaly.h), and the answers built from them: GET /api/v1/metrics,
 * /api/v1/metrics/history, /api/v1/anomalies, a worker's score, and the monitoring part
 * of /metrics. docs/api.md ("Monitoring") says what each series means.
 *
 * Costs: a sample writes one row per fleet series and one per connected worker (its
 * utilization) and per worker class, through the store's writer thread like every
 * write (the loop only records the values); rows older than their resolution's keep
 * time are deleted once a minute, series by series. The anomaly detectors run once a
 * second over at most DRV_ANOM_WINDOW_TESTS results per worker; an anomaly is written to
 * the store when found, when its severity changes and when it ends (mon3).
 *
 * Restarts (mon3): at start the series' unfinished 1 min / 10 min buckets are rebuilt
 * from their 1 s samples, and the anomalies open or ended within the hour are read back
 * (an open one stays open RESUME_GRACE_S unless found again). A forgotten worker's
 * utilization series is deleted with its samples.
 *
 * Ownership: the sampler (c->sampler) is the coordinator's; everything it holds is its
 * own. Runs on the loop thread only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "coordinator/coord.h"
#include "core/anomaly.h"
#include "core/histogram.h"
#include "core/series.h"

#define SAMPLE_EVERY_S   1.0
#define PRUNE_EVERY_S    60.0
#define QUEUE_OBS        128 /* seconds of queue samples the stall detector sees */
#define BEATS_KEPT       DRV_ANOM_WINDOW_TESTS
#define LOSSES_KEPT      8
#define ANOMALIES_MAX    1000
#define ENDED_KEEP_S     3600.0
#define RESUME_GRACE_S   60.0 /* an anomaly open at a restart stays open this long unseen */
#define FINDINGS_PER_RUN 4096

/* ---- the fleet-wide series ---- */

typedef enum metric_kind { K_GAUGE = 0, K_RATE, K_COUNTER } metric_kind;
typedef enum metric_per { PER_FLEET = 0, PER_WORKER, PER_CLASS } metric_per;

typedef struct metric_def {
    const char *name, *unit, *help;
    metric_kind kind;
    metric_per per;
} metric_def;

enum {
    M_WORKERS_CONNECTED,
    M_WORKERS_OK,
    M_WORKERS_OVERLOADED,
    M_WORKERS_DRAINING,
    M_WORKERS_QUARANTINED,
    M_WORKERS_LOST,
    M_WORKERS_COLD,
    M_WORKERS_WARMING,
    M_WORKERS_WARM,
    M_WORKERS_COOLING,
    M_QUEUED,
    M_QUEUED_HIGH,
    M_QUEUED_NORMAL,
    M_QUEUED_LOW,
    M_ASSIGNED,
    M_RUNNING,
    M_PASSED,
    M_FAILED,
    M_TIMED_OUT,
    M_CANCELLED,
    M_UNSCHEDULABLE,
    M_THROUGHPUT,
    M_ASSIGN_P50,
    M_ASSIGN_P90,
    M_ASSIGN_P99,
    M_WAIT_P50,
    M_WAIT_P90,
    M_WAIT_P99,
    M_DURATION_P50,
    M_DURATION_P90,
    M_DURATION_P99,
    M_UTILIZATION,
    M_PLACEMENTS,
    M_STEALS,
    M_MOVES,
    M_SPECULATIONS,
    M_RETRIES,
    M_CPU,
    M_RSS,
    M_SAMPLER_CPU,
    M_FEED_CPU,
    M_FLEET_COUNT,
    M_WORKER_UTILIZATION = M_FLEET_COUNT,
    M_CLASS_UTILIZATION,
    M_COUNT
};

static const metric_def metrics[M_COUNT] = {
    [M_WORKERS_CONNECTED] = {"workers_connected", "workers", "Connected workers.", K_GAUGE, 0},
    [M_WORKERS_OK] = {"workers_ok", "workers", "Known workers taking work.", K_GAUGE, 0},
    [M_WORKERS_OVERLOADED] = {"workers_overloaded", "workers", "Workers reporting overload.",
                              K_GAUGE, 0},
    [M_WORKERS_DRAINING] = {"workers_draining", "workers", "Workers draining.", K_GAUGE, 0},
    [M_WORKERS_QUARANTINED] = {"workers_quarantined", "workers", "Workers quarantined.", K_GAUGE,
                               0},
    [M_WORKERS_LOST] = {"workers_lost", "workers", "Workers lost.", K_GAUGE, 0},
    [M_WORKERS_COLD] = {"workers_cold", "workers", "Connected workers in thermal state cold.",
                        K_GAUGE, 0},
    [M_WORKERS_WARMING] = {"workers_warming", "workers",
                           "Connected workers in thermal state warming.", K_GAUGE, 0},
    [M_WORKERS_WARM] = {"workers_warm", "workers", "Connected workers in thermal state warm.",
                        K_GAUGE, 0},
    [M_WORKERS_COOLING] = {"workers_cooling", "workers",
                           "Connected workers in thermal state cooling.", K_GAUGE, 0},
    [M_QUEUED] = {"tests_queued", "tests", "Tests waiting in the queue.", K_GAUGE, 0},
    [M_QUEUED_HIGH] = {"tests_queued_high", "tests", "Queued tests of priority >= 500.", K_GAUGE,
                       0},
    [M_QUEUED_NORMAL] = {"tests_queued_normal", "tests", "Queued tests of priority 1..499.",
                         K_GAUGE, 0},
    [M_QUEUED_LOW] = {"tests_queued_low", "tests", "Queued tests of priority 0.", K_GAUGE, 0},
    [M_ASSIGNED] = {"tests_assigned", "tests", "Tests sent to a worker, not started.", K_GAUGE, 0},
    [M_RUNNING] = {"tests_running", "tests", "Tests running.", K_GAUGE, 0},
    [M_PASSED] = {"tests_passed", "tests/s", "Tests that passed, per second.", K_RATE, 0},
    [M_FAILED] = {"tests_failed", "tests/s", "Tests that failed, per second.", K_RATE, 0},
    [M_TIMED_OUT] = {"tests_timed_out", "tests/s", "Tests that timed out, per second.", K_RATE, 0},
    [M_CANCELLED] = {"tests_cancelled", "tests/s", "Tests cancelled, per second.", K_RATE, 0},
    [M_UNSCHEDULABLE] = {"tests_unschedulable", "tests/s", "Tests no worker can run, per second.",
                         K_RATE, 0},
    [M_THROUGHPUT] = {"throughput", "tests/s", "Tests finished (any outcome) per second.", K_RATE,
                      0},
    [M_ASSIGN_P50] = {"assign_latency_p50", "seconds",
                      "Median time from placement to the worker's start.", K_GAUGE, 0},
    [M_ASSIGN_P90] = {"assign_latency_p90", "seconds",
                      "90th percentile of placement to the worker's start.", K_GAUGE, 0},
    [M_ASSIGN_P99] = {"assign_latency_p99", "seconds",
                      "99th percentile of placement to the worker's start.", K_GAUGE, 0},
    [M_WAIT_P50] = {"queue_wait_p50", "seconds", "Median time queued before placement.", K_GAUGE,
                    0},
    [M_WAIT_P90] = {"queue_wait_p90", "seconds", "90th percentile of time queued.", K_GAUGE, 0},
    [M_WAIT_P99] = {"queue_wait_p99", "seconds", "99th percentile of time queued.", K_GAUGE, 0},
    [M_DURATION_P50] = {"test_duration_p50", "seconds", "Median run time of finished tests.",
                        K_GAUGE, 0},
    [M_DURATION_P90] = {"test_duration_p90", "seconds",
                        "90th percentile of run time of finished tests.", K_GAUGE, 0},
    [M_DURATION_P99] = {"test_duration_p99", "seconds",
                        "99th percentile of run time of finished tests.", K_GAUGE, 0},
    [M_UTILIZATION] = {"utilization", "ratio",
                       "Running tests over slots of connected workers (the fleet).", K_GAUGE, 0},
    [M_PLACEMENTS] = {"placements", "events/s", "Tests placed on a worker, per second.", K_RATE, 0},
    [M_STEALS] = {"steals", "events/s", "Tests stolen by an idle worker, per second.", K_RATE, 0},
    [M_MOVES] = {"moves", "events/s", "Tests moved between workers, per second.", K_RATE, 0},
    [M_SPECULATIONS] = {"speculations", "events/s",
                        "Speculative copies of stragglers started, per second.", K_RATE, 0},
    [M_RETRIES] = {"retries", "events/s", "Tests queued again to be retried, per second.", K_RATE,
                   0},
    [M_CPU] = {"coordinator_cpu", "ratio", "Coordinator CPU seconds per second (all threads).",
               K_GAUGE, 0},
    [M_RSS] = {"coordinator_rss_bytes", "bytes", "Coordinator resident memory.", K_GAUGE, 0},
    [M_SAMPLER_CPU] = {"sampler_cpu", "ratio",
                       "Loop CPU seconds per second spent sampling and detecting anomalies.",
                       K_GAUGE, 0},
    [M_FEED_CPU] = {"feed_cpu", "ratio",
                    "Loop CPU seconds per second spent building the dashboard's feed.", K_GAUGE, 0},
    [M_WORKER_UTILIZATION] = {"worker_utilization", "ratio",
                              "Running tests over slots, per worker.", K_GAUGE, PER_WORKER},
    [M_CLASS_UTILIZATION] = {"class_utilization", "ratio",
                             "Running tests over slots, per worker class.", K_GAUGE, PER_CLASS},
};

/* One series being written: its id in the store and its coarser accumulators. */
typedef struct series {
    int64_t id;     /* 0: not registered yet */
    uint32_t known; /* its index in the sampler's known series, once registered */
    drv_rollup roll[DRV_SERIES_RESOLUTIONS - 1];
} series;

/* A series known to the store (loaded at start or added since). */
typedef struct known_series {
    int64_t id;
    int metric;
    char *key;         /* owned; NULL: a removed series' free entry (metric -1) */
    double last_write; /* its newest sample (or when the store was opened) */
    /* mon3: the unfinished coarser buckets read back at start (drv_store_sample_partial),
     * handed to the series when it is first written again */
    drv_rollup seed[DRV_SERIES_RESOLUTIONS - 1];
} known_series;

/* A worker's measured speed on one model family: its runs against its class's
 * prediction (drv_anomaly_run_ratio), as the mean of log(ratio). */
typedef struct family_pace {
    int family;
    uint32_t tests;
    double log_sum;
} family_pace;

/* What the monitor keeps per worker (by wref). */
typedef struct mon_worker {
    family_pace *fam; /* families it ran, in the order it first ran them */
    uint32_t n_fam, cap_fam;
    series util;
    drv_run_obs runs[DRV_ANOM_WINDOW_TESTS]; /* ring */
    uint32_t n_runs, runs_head;
    float beats[BEATS_KEPT]; /* ring */
    uint32_t n_beats, beats_head;
    double last_beat;
    double losses[LOSSES_KEPT]; /* ring */
    uint32_t n_losses, losses_head;
    bool assessed;
    drv_worker_assessment a;
    drv_score score;
} mon_worker;

/* An anomaly found, active or ended. */
typedef struct anomaly_rec {
    uint64_t id;
    drv_anomaly_kind kind;
    drv_anomaly_severity severity;
    char worker[DRV_WORKER_NAME_MAX]; /* "" for the fleet */
    drv_evidence ev[DRV_ANOM_EVIDENCE_MAX];
    uint32_t n_ev;
    char summary[200];
    double start, end; /* end 0: active */
    bool seen;         /* found again by this run of the detectors */
    bool resumed;      /* read back from the store at start, not found again yet */
    char *ev_json;     /* owned: its evidence as stored, while ev is empty (resumed) */
} anomaly_rec;

struct drv_sampler {
    double retention_s;
    double last_sample, last_prune;
    double last_cpu;    /* process CPU seconds at the last sample */
    double loop_cpu[2]; /* sampler, feed: loop CPU seconds since the last sample */
    series fleet[M_FLEET_COUNT];
    series *classes; /* by wclass */
    size_t cap_classes;
    known_series *known;
    size_t n_known, cap_known;
    drv_idmap known_by_hash; /* series_hash() -> index into known */
    uint32_t *free_known;    /* entries of removed series, reused first */
    size_t n_free_known, cap_free_known;
    double started; /* when the sampler started (the coordinator's clock) */
    int64_t next_id;
    uint32_t last_known; /* the entry load_series() filled last */
    mon_worker *mw;      /* by wref */
    size_t cap_mw;
    /* counters since start, and their values at the last sample */
    uint64_t outcome[DRV_TASK_STATE_COUNT], steals, moves, speculations, retries, placements;
    uint64_t prev[DRV_TASK_STATE_COUNT + 5];
    int64_t band[3]; /* queued tests by priority band: high, normal, low */
    drv_hist assign, wait, duration;
    drv_queue_obs q[QUEUE_OBS]; /* ring */
    size_t n_q, q_head;
    anomaly_rec *anoms;
    size_t n_anoms, cap_anoms;
    uint64_t next_anomaly;
    double last_detect;
};

/* v to 4 significant digits (0.15129999 -> 0.1513), for figures people read: anomaly
 * evidence, speeds. Dumped with JSON_REAL_PRECISION(DRV_JSON_REAL_DIGITS) they print as
 * such; not finite or 0: as is. */
static double sig4(double v)
{
    if (!isfinite(v) || v == 0)
        return v;
    double scale = pow(10, 3 - floor(log10(fabs(v))));
    return round(v * scale) / scale;
}

static double process_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int metric_by_name(const char *name)
{
    for (int m = 0; m < M_COUNT; m++)
        if (strcmp(metrics[m].name, name) == 0)
            return m;
    return -1;
}

/* A 64-bit hash of (metric, key), below UINT64_MAX as the id map asks. */
static uint64_t series_hash(int metric, const char *key)
{
    char buf[DRV_WORKER_NAME_MAX + 80];
    snprintf(buf, sizeof buf, "%s\x1f%s", metrics[metric].name, key);
    uint64_t h = drv_test_key(buf);
    return h == UINT64_MAX ? 0 : h;
}

/* The index in s->known of series (metric, key), or -1. */
static int64_t find_known(const drv_sampler *s, int metric, const char *key)
{
    uint32_t i;
    if (!drv_idmap_get(&s->known_by_hash, series_hash(metric, key), &i))
        return -1;
    if (s->known[i].metric == metric && s->known[i].key && strcmp(s->known[i].key, key) == 0)
        return i;
    /* Another series with the same hash (the map holds the first): a scan finds it. */
    for (size_t k = 0; k < s->n_known; k++)
        if (s->known[k].metric == metric && s->known[k].key && strcmp(s->known[k].key, key) == 0)
            return (int64_t)k;
    return -1;
}

static int load_series(void *ctx, int64_t id, const char *name, const char *key, drv_error *err)
{
    (void)err;
    drv_sampler *s = ctx;
    if (id >= s->next_id)
        s->next_id = id + 1;
    int m = metric_by_name(name);
    if (m < 0)
        return 0; /* a series of another drover version: left alone */
    uint32_t k;
    if (s->n_free_known > 0) {
        k = s->free_known[--s->n_free_known];
    } else {
        if (s->n_known == s->cap_known) {
            s->cap_known = s->cap_known ? s->cap_known * 2 : 64;
            s->known = drv_xrealloc(s->known, s->cap_known * sizeof *s->known);
        }
        k = (uint32_t)s->n_known++;
    }
    uint32_t i;
    uint64_t h = series_hash(m, key);
    if (!drv_idmap_get(&s->known_by_hash, h, &i))
        drv_idmap_put(&s->known_by_hash, h, k);
    s->known[k] = (known_series){id, m, drv_xstrdup(key), drv_coord_now(), {{0}}};
    s->last_known = k;
    return 0;
}

/* mon3: reads back the unfinished 1 min and 10 min buckets of every series from its 1 s
 * samples (a restart would lose them): a bucket already over is written at once, the
 * current one waits in the series' seed for its next sample. */
static int seed_partials(drv_coordinator *c, double now, drv_error *err)
{
    drv_sampler *s = c->sampler;
    for (size_t k = 0; k < s->n_known; k++) {
        drv_rollup part[DRV_SERIES_RESOLUTIONS - 1];
        if (drv_store_sample_partial(c->store, s->known[k].id, part, err) < 0)
            return -1;
        for (int r = 1; r < DRV_SERIES_RESOLUTIONS; r++) {
            drv_rollup *p = &part[r - 1];
            if (p->n == 0)
                continue;
            if ((double)(p->bucket + drv_series_steps[r]) <= floor(now)) {
                if (drv_store_sample_append(c->store, s->known[k].id, drv_series_steps[r],
                                            p->bucket, p->sum / p->n, err) < 0)
                    return -1;
            } else {
                s->known[k].seed[r - 1] = *p;
            }
        }
    }
    return 0;
}

static int load_anomaly(void *ctx, const drv_store_anomaly *a, drv_error *err);

int drv_sampler_start(drv_coordinator *c, double retention_s, drv_error *err)
{
    drv_sampler *s = drv_xcalloc(1, sizeof *s);
    s->retention_s = retention_s;
    s->next_id = 1;
    drv_idmap_init(&s->known_by_hash);
    s->last_cpu = process_cpu();
    s->started = drv_coord_now();
    c->sampler = s;
    if (drv_store_series_list(c->store, load_series, s, err) < 0 ||
        seed_partials(c, s->started, err) < 0)
        return -1;
    /* The anomalies open, or ended within the hour, before the restart. */
    int64_t max_id = drv_store_anomaly_max_id(c->store, err);
    if (max_id < 0 || drv_store_anomaly_list(c->store, s->started - ENDED_KEEP_S, s->started,
                                             ANOMALIES_MAX, load_anomaly, s, err) < 0)
        return -1;
    s->next_anomaly = (uint64_t)max_id;
    /* Read newest first: oldest first in memory, as found. */
    for (size_t i = 0, j = s->n_anoms; i + 1 < j; i++, j--) {
        anomaly_rec t = s->anoms[i];
        s->anoms[i] = s->anoms[j - 1];
        s->anoms[j - 1] = t;
    }
    return 0;
}

void drv_sampler_free(drv_coordinator *c)
{
    drv_sampler *s = c->sampler;
    if (!s)
        return;
    for (size_t i = 0; i < s->n_known; i++)
        free(s->known[i].key);
    free(s->known);
    free(s->free_known);
    for (size_t i = 0; i < s->n_anoms; i++)
        free(s->anoms[i].ev_json);
    drv_idmap_clear(&s->known_by_hash);
    free(s->classes);
    for (size_t i = 0; i < s->cap_mw; i++)
        free(s->mw[i].fam);
    free(s->mw);
    free(s->anoms);
    free(s);
    c->sampler = NULL;
}

/* The index in s->known of series (metric, key), registering it in the store when new. */
static uint32_t series_index(drv_coordinator *c, int metric, const char *key)
{
    drv_sampler *s = c->sampler;
    int64_t k = find_known(s, metric, key);
    if (k >= 0)
        return (uint32_t)k;
    int64_t id = s->next_id++;
    drv_error err;
    if (drv_store_series_add(c->store, id, metrics[metric].name, key, &err) < 0)
        drv_coord_fatal(c, &err);
    load_series(s, id, metrics[metric].name, key, NULL);
    return s->last_known;
}

/* Writes sample (t, v) of series x (metric, key) and the coarser averages it completes. */
static void emit(drv_coordinator *c, series *x, int metric, const char *key, int64_t t, double v)
{
    if (!isfinite(v))
        return;
    drv_sampler *s = c->sampler;
    if (!x->id) {
        x->known = series_index(c, metric, key);
        x->id = s->known[x->known].id;
        /* what the last process had of its unfinished buckets */
        memcpy(x->roll, s->known[x->known].seed, sizeof x->roll);
        memset(s->known[x->known].seed, 0, sizeof s->known[x->known].seed);
    }
    s->known[x->known].last_write = (double)t;
    drv_error err;
    if (drv_store_sample_append(c->store, x->id, drv_series_steps[0], t, v, &err) < 0)
        drv_coord_fatal(c, &err);
    for (int r = 1; r < DRV_SERIES_RESOLUTIONS; r++) {
        int64_t bt;
        double bv;
        if (drv_rollup_add(&x->roll[r - 1], drv_series_steps[r], (double)t, v, &bt, &bv) &&
            drv_store_sample_append(c->store, x->id, drv_series_steps[r], bt, bv, &err) < 0)
            drv_coord_fatal(c, &err);
    }
}

static mon_worker *mon(drv_coordinator *c, drv_wref w)
{
    drv_sampler *s = c->sampler;
    if (w >= s->cap_mw) {
        size_t cap = s->cap_mw ? s->cap_mw : 64;
        while (cap <= w)
            cap *= 2;
        s->mw = drv_xrealloc(s->mw, cap * sizeof *s->mw);
        memset(s->mw + s->cap_mw, 0, (cap - s->cap_mw) * sizeof *s->mw);
        s->cap_mw = cap;
    }
    return &s->mw[w];
}

/* ---- what the coordinator reports as it happens ---- */

static int band_of(int32_t priority)
{
    return priority >= 500 ? 0 : priority > 0 ? 1 : 2;
}

void drv_sampler_queued(drv_coordinator *c, drv_ctask *ct, double now)
{
    ct->queued_at = now;
    c->sampler->band[band_of(ct->task.priority)]++;
}

void drv_sampler_decision(drv_coordinator *c, const drv_decision *d, drv_ctask *ct, double now)
{
    drv_sampler *s = c->sampler;
    int64_t *band = &s->band[band_of(ct->task.priority)];
    switch (d->kind) {
    case DRV_D_PLACED:
        if (ct->queued_at > 0)
            drv_hist_add(&s->wait, now - ct->queued_at);
        ct->placed_at = now;
        s->placements++;
        if (*band > 0)
            (*band)--;
        break;
    case DRV_D_MOVED:
        break; /* counted when done (drv_sampler_moved): a two-phase move may be dropped */
    case DRV_D_REQUEUED:
        ct->queued_at = now;
        (*band)++;
        s->retries += d->reason != DRV_R_HANDED_BACK;
        break;
    case DRV_D_FINAL:
        if (d->from_worker == DRV_REF_NONE && *band > 0)
            (*band)--; /* it left the queue without being placed */
        if ((unsigned)d->state < DRV_TASK_STATE_COUNT)
            s->outcome[d->state]++;
        break;
    }
}

void drv_sampler_queue_bands(drv_coordinator *c, uint64_t band[3])
{
    for (int b = 0; b < 3; b++)
        band[b] = c->sampler && c->sampler->band[b] > 0 ? (uint64_t)c->sampler->band[b] : 0;
}

void drv_sampler_speculation(drv_coordinator *c)
{
    c->sampler->speculations++;
}

void drv_sampler_moved(drv_coordinator *c, drv_ctask *ct, drv_reason reason, double now)
{
    ct->placed_at = now;
    c->sampler->moves++;
    c->sampler->steals += reason == DRV_R_STOLEN;
}

void drv_sampler_started(drv_coordinator *c, drv_ctask *ct, double now)
{
    if (ct->placed_at > 0)
        drv_hist_add(&c->sampler->assign, now - ct->placed_at);
}

static void family_pace_add(mon_worker *m, int family, double ratio)
{
    uint32_t i = 0;
    while (i < m->n_fam && m->fam[i].family != family)
        i++;
    if (i == m->n_fam) {
        if (m->n_fam == m->cap_fam) {
            m->cap_fam = m->cap_fam ? 2 * m->cap_fam : 4;
            m->fam = drv_xrealloc(m->fam, m->cap_fam * sizeof *m->fam);
        }
        m->fam[m->n_fam++] = (family_pace){family, 0, 0};
    }
    m->fam[i].tests++;
    m->fam[i].log_sum += log(ratio);
}

void drv_sampler_result(drv_coordinator *c, drv_wref w, drv_tref t, const drv_result *r, double now)
{
    bool failed = r->infra_failure || r->timed_out || r->signal != 0 || r->exit_code != 0;
    float ratio = 0;
    if (!r->infra_failure) {
        drv_hist_add(&c->sampler->duration, r->duration_s);
        /* Against its class's prediction: without the worker's own learned pace, which
         * would make a slow worker's runs look as predicted once it is learned. */
        drv_prediction p = drv_balancer_predict(c->bal, t, w);
        double class_s = p.mean_s / drv_balancer_worker_pace(c->bal, w);
        ratio = drv_anomaly_run_ratio(r->duration_s, class_s);
    }
    mon_worker *m = mon(c, w);
    if (ratio > 0)
        family_pace_add(m, drv_balancer_task_family(c->bal, t), ratio);
    m->runs[m->runs_head] = (drv_run_obs){now, ratio, failed};
    m->runs_head = (m->runs_head + 1) % DRV_ANOM_WINDOW_TESTS;
    if (m->n_runs < DRV_ANOM_WINDOW_TESTS)
        m->n_runs++;
}

void drv_sampler_heartbeat(drv_coordinator *c, drv_wref w, double now)
{
    mon_worker *m = mon(c, w);
    if (m->last_beat > 0) {
        m->beats[m->beats_head] = (float)(now - m->last_beat);
        m->beats_head = (m->beats_head + 1) % BEATS_KEPT;
        if (m->n_beats < BEATS_KEPT)
            m->n_beats++;
    }
    m->last_beat = now;
}

void drv_sampler_loss(drv_coordinator *c, drv_wref w, double now)
{
    mon_worker *m = mon(c, w);
    m->losses[m->losses_head] = now;
    m->losses_head = (m->losses_head + 1) % LOSSES_KEPT;
    if (m->n_losses < LOSSES_KEPT)
        m->n_losses++;
    m->last_beat = 0; /* the gap across a reconnection is not jitter */
}

void drv_sampler_forget_worker(drv_coordinator *c, drv_wref w, const char *name)
{
    drv_sampler *s = c->sampler;
    if (!s)
        return;
    if (w < s->cap_mw) {
        free(s->mw[w].fam);
        memset(&s->mw[w], 0, sizeof s->mw[w]);
    }
    int64_t k = find_known(s, M_WORKER_UTILIZATION, name);
    if (k < 0)
        return;
    drv_error err;
    if (drv_store_series_remove(c->store, s->known[k].id, &err) < 0)
        drv_coord_fatal(c, &err);
    uint32_t i;
    uint64_t h = series_hash(M_WORKER_UTILIZATION, name);
    if (drv_idmap_get(&s->known_by_hash, h, &i) && i == (uint32_t)k)
        drv_idmap_del(&s->known_by_hash, h);
    free(s->known[k].key);
    s->known[k] = (known_series){.metric = -1};
    if (s->n_free_known == s->cap_free_known) {
        s->cap_free_known = s->cap_free_known ? 2 * s->cap_free_known : 16;
        s->free_known = drv_xrealloc(s->free_known, s->cap_free_known * sizeof *s->free_known);
    }
    s->free_known[s->n_free_known++] = (uint32_t)k;
}

void drv_sampler_loop_cpu(drv_coordinator *c, int which, double seconds)
{
    if (c->sampler && (which == 0 || which == 1))
        c->sampler->loop_cpu[which] += seconds;
}

/* ---- anomalies ---- */

/* Copies ring r (n entries, next write at head, capacity cap) oldest first into out. */
#define UNRING(out, r, n, head, cap)                                                               \
    do {                                                                                           \
        for (uint32_t i_ = 0; i_ < (n); i_++)                                                      \
            (out)[i_] = (r)[((head) + (cap) - (n) + i_) % (cap)];                                  \
    } while (0)

/* a's evidence as a JSON object: whole numbers as integers, the rest to 4 significant
 * digits; a resumed record's as stored. */
static json_t *evidence_json(const anomaly_rec *a)
{
    if (a->n_ev == 0 && a->ev_json) {
        json_t *o = json_loads(a->ev_json, 0, NULL);
        if (json_is_object(o))
            return o;
        json_decref(o);
    }
    json_t *ev = json_object();
    for (uint32_t i = 0; i < a->n_ev; i++) {
        double v = a->ev[i].value;
        json_object_set_new(ev, a->ev[i].name,
                            v == floor(v) && fabs(v) < 1e15 ? json_integer((json_int_t)v)
                                                            : json_real(sig4(v)));
    }
    return ev;
}

/* mon3: writes a to the store (when found, when its severity changes, when it ends). */
static void save_anomaly(drv_coordinator *c, const anomaly_rec *a)
{
    json_t *ev = evidence_json(a);
    char *text = json_dumps(ev, JSON_COMPACT | JSON_REAL_PRECISION(DRV_JSON_REAL_DIGITS));
    json_decref(ev);
    drv_store_anomaly r = {.id = (int64_t)a->id,
                           .kind = drv_anomaly_kind_name(a->kind),
                           .severity = drv_anomaly_severity_name(a->severity),
                           .worker = a->worker,
                           .summary = a->summary,
                           .evidence = text ? text : "{}",
                           .start = a->start,
                           .end = a->end};
    drv_error err;
    if (drv_store_anomaly_save(c->store, &r, &err) < 0)
        drv_coord_fatal(c, &err);
    free(text);
}

/* An anomaly of the store, read back at start (drv_sampler_start). */
static int load_anomaly(void *ctx, const drv_store_anomaly *a, drv_error *err)
{
    (void)err;
    drv_sampler *s = ctx;
    int kind = -1;
    for (int k = 0; k < DRV_ANOM_KIND_COUNT; k++)
        if (strcmp(a->kind, drv_anomaly_kind_name((drv_anomaly_kind)k)) == 0)
            kind = k;
    if (kind < 0)
        return 0; /* a kind of another drover version */
    if (s->n_anoms == s->cap_anoms) {
        s->cap_anoms = s->cap_anoms ? s->cap_anoms * 2 : 16;
        s->anoms = drv_xrealloc(s->anoms, s->cap_anoms * sizeof *s->anoms);
    }
    anomaly_rec *r = &s->anoms[s->n_anoms++];
    memset(r, 0, sizeof *r);
    r->id = (uint64_t)a->id;
    r->kind = (drv_anomaly_kind)kind;
    r->severity = strcmp(a->severity, drv_anomaly_severity_name(DRV_ANOM_CRITICAL)) == 0
                      ? DRV_ANOM_CRITICAL
                      : DRV_ANOM_WARNING;
    snprintf(r->worker, sizeof r->worker, "%s", a->worker);
    snprintf(r->summary, sizeof r->summary, "%s", a->summary);
    r->ev_json = drv_xstrdup(a->evidence);
    r->start = a->start;
    r->end = a->end;
    r->resumed = a->end == 0;
    return 0;
}

/* Records f (about worker, "" for the fleet) as found at now: the active record of the
 * same kind and worker takes its figures, else a new record begins (written to the
 * store, as is a change of severity). */
static void record_finding(drv_coordinator *c, const drv_finding *f, const char *worker, double now)
{
    drv_sampler *s = c->sampler;
    for (size_t i = 0; i < s->n_anoms; i++) {
        anomaly_rec *a = &s->anoms[i];
        if (a->end == 0 && a->kind == f->kind && strcmp(a->worker, worker) == 0) {
            bool changed = a->severity != f->severity || a->resumed;
            a->seen = true;
            a->resumed = false;
            a->severity = f->severity;
            memcpy(a->ev, f->ev, sizeof a->ev);
            a->n_ev = f->n_ev;
            memcpy(a->summary, f->summary, sizeof a->summary);
            free(a->ev_json);
            a->ev_json = NULL;
            if (changed)
                save_anomaly(c, a);
            return;
        }
    }
    if (s->n_anoms == ANOMALIES_MAX) {
        /* Forget the oldest ended one (or else the oldest). */
        size_t drop = 0;
        for (size_t i = 0; i < s->n_anoms; i++)
            if (s->anoms[i].end > 0) {
                drop = i;
                break;
            }
        free(s->anoms[drop].ev_json);
        memmove(&s->anoms[drop], &s->anoms[drop + 1], (s->n_anoms - drop - 1) * sizeof *s->anoms);
        s->n_anoms--;
    }
    if (s->n_anoms == s->cap_anoms) {
        s->cap_anoms = s->cap_anoms ? s->cap_anoms * 2 : 16;
        s->anoms = drv_xrealloc(s->anoms, s->cap_anoms * sizeof *s->anoms);
    }
    anomaly_rec *a = &s->anoms[s->n_anoms++];
    memset(a, 0, sizeof *a);
    a->id = ++s->next_anomaly;
    a->kind = f->kind;
    a->severity = f->severity;
    snprintf(a->worker, sizeof a->worker, "%s", worker);
    memcpy(a->ev, f->ev, sizeof a->ev);
    a->n_ev = f->n_ev;
    memcpy(a->summary, f->summary, sizeof a->summary);
    a->start = now;
    a->seen = true;
    save_anomaly(c, a);
}

/* Runs the detectors over what was recorded, updates the anomalies and the scores. */
static void detect(drv_coordinator *c, double now)
{
    drv_sampler *s = c->sampler;
    uint32_t nw = drv_balancer_worker_refs(c->bal);
    size_t n = 0;
    drv_worker_window *win = drv_xmalloc((nw ? nw : 1) * sizeof *win);
    drv_wref *ref = drv_xmalloc((nw ? nw : 1) * sizeof *ref);
    size_t per = DRV_ANOM_WINDOW_TESTS * sizeof(drv_run_obs) + BEATS_KEPT * sizeof(float) +
                 LOSSES_KEPT * sizeof(double);
    char *buf = drv_xmalloc((nw ? nw : 1) * per);
    for (drv_wref w = 0; w < nw && w < c->cap_workers; w++) {
        if (!c->workers[w].known)
            continue;
        mon_worker *m = mon(c, w);
        char *p = buf + n * per;
        drv_run_obs *runs = (drv_run_obs *)p;
        double *losses = (double *)(p + DRV_ANOM_WINDOW_TESTS * sizeof(drv_run_obs));
        float *beats = (float *)((char *)losses + LOSSES_KEPT * sizeof(double));
        UNRING(runs, m->runs, m->n_runs, m->runs_head, DRV_ANOM_WINDOW_TESTS);
        UNRING(beats, m->beats, m->n_beats, m->beats_head, BEATS_KEPT);
        UNRING(losses, m->losses, m->n_losses, m->losses_head, LOSSES_KEPT);
        const drv_worker *k = drv_balancer_worker(c->bal, w);
        win[n] = (drv_worker_window){.name = k->name,
                                     .wclass = k->wclass,
                                     .runs = runs,
                                     .n_runs = m->n_runs,
                                     /* a worker away has no heartbeats to judge */
                                     .beats = beats,
                                     .n_beats = c->workers[w].session ? m->n_beats : 0,
                                     .losses = losses,
                                     .n_losses = m->n_losses};
        ref[n++] = w;
    }
    drv_worker_assessment *a = drv_xmalloc((n ? n : 1) * sizeof *a);
    drv_anomaly_assess(win, n, now, a);
    for (size_t i = 0; i < n; i++) {
        mon_worker *m = mon(c, ref[i]);
        m->a = a[i];
        m->assessed = true;
        drv_anomaly_score(&a[i], &m->score);
    }
    drv_finding *f = drv_xmalloc(FINDINGS_PER_RUN * sizeof *f);
    size_t nf = drv_anomaly_workers(win, a, n, f, FINDINGS_PER_RUN - 1);
    drv_queue_obs q[QUEUE_OBS];
    UNRING(q, s->q, (uint32_t)s->n_q, s->q_head, QUEUE_OBS);
    if (drv_anomaly_queue(q, s->n_q, &f[nf]))
        nf++;
    for (size_t i = 0; i < s->n_anoms; i++)
        s->anoms[i].seen = false;
    for (size_t i = 0; i < nf; i++)
        record_finding(c, &f[i], f[i].worker == UINT32_MAX ? "" : win[f[i].worker].name, now);
    size_t keep = 0;
    for (size_t i = 0; i < s->n_anoms; i++) {
        anomaly_rec *x = &s->anoms[i];
        /* One open before a restart gets RESUME_GRACE_S for the detectors to see it
         * again (their windows start empty). */
        if (x->end == 0 && !x->seen && !(x->resumed && now < s->started + RESUME_GRACE_S)) {
            x->end = now;
            save_anomaly(c, x);
        }
        if (x->end > 0 && x->end < now - ENDED_KEEP_S) {
            free(x->ev_json);
            continue;
        }
        s->anoms[keep++] = *x;
    }
    s->n_anoms = keep;
    free(f);
    free(a);
    free(buf);
    free(ref);
    free(win);
}

/* ---- the sample ---- */

static void prune(drv_coordinator *c, double now)
{
    drv_sampler *s = c->sampler;
    drv_error err;
    /* mon3: the anomalies kept like the coarsest resolution */
    double keep_anoms = drv_series_keep_s(DRV_SERIES_RESOLUTIONS - 1, s->retention_s);
    if (keep_anoms > 0 && drv_store_anomaly_prune(c->store, now - keep_anoms, &err) < 0)
        drv_coord_fatal(c, &err);
    for (size_t i = 0; i < s->n_known; i++)
        for (int r = 0; r < DRV_SERIES_RESOLUTIONS && s->known[i].key; r++) {
            /* A series not written for longer than the keep time (and two prunes) has no
             * rows left there: a fleet that came and went costs nothing after that. */
            double keep = drv_series_keep_s(r, s->retention_s);
            if (keep > 0 && s->known[i].last_write >= now - keep - 2 * PRUNE_EVERY_S &&
                drv_store_sample_prune(c->store, s->known[i].id, drv_series_steps[r],
                                       (int64_t)(now - keep), &err) < 0)
                drv_coord_fatal(c, &err);
        }
}

static series *class_series(drv_sampler *s, uint32_t wclass)
{
    if (wclass >= s->cap_classes) {
        size_t cap = s->cap_classes ? s->cap_classes : 16;
        while (cap <= wclass)
            cap *= 2;
        s->classes = drv_xrealloc(s->classes, cap * sizeof *s->classes);
        memset(s->classes + s->cap_classes, 0, (cap - s->cap_classes) * sizeof *s->classes);
        s->cap_classes = cap;
    }
    return &s->classes[wclass];
}

static void sample(drv_coordinator *c, double now, double dt)
{
    drv_sampler *s = c->sampler;
    int64_t t = (int64_t)floor(now);
    double v[M_FLEET_COUNT];
    for (int i = 0; i < M_FLEET_COUNT; i++)
        v[i] = NAN;
    drv_balancer_stats st;
    drv_balancer_stats_get(c->bal, &st);

    double by_health[DRV_HEALTH_COUNT] = {0}, by_thermal[DRV_THERMAL_STATE_COUNT] = {0};
    double connected = 0, busy = 0, slots = 0;
    uint64_t free_slots = 0;
    uint32_t nw = drv_balancer_worker_refs(c->bal);
    size_t n_cls = 0;
    double *cls_busy = NULL, *cls_slots = NULL;
    uint8_t *cls_runs = NULL;
    for (drv_wref w = 0; w < nw && w < c->cap_workers; w++) {
        const drv_cworker *cw = &c->workers[w];
        if (!cw->known)
            continue;
        const drv_worker *k = drv_balancer_worker(c->bal, w);
        drv_health hl = cw->lost ? DRV_HEALTH_LOST : k->health;
        by_health[hl < DRV_HEALTH_COUNT ? hl : DRV_HEALTH_LOST]++;
        if (!cw->session)
            continue;
        connected++;
        if ((unsigned)k->thermal.state < DRV_THERMAL_STATE_COUNT)
            by_thermal[k->thermal.state]++;
        /* Busy: running tests (assigned ones wait in the worker's window and may exceed
         * its slots); free: slots neither running nor promised. */
        double held = k->running + k->assigned, sl, run;
        drv_worker_busy_slots(k, &run, &sl);
        busy += run;
        slots += sl;
        emit(c, &mon(c, w)->util, M_WORKER_UTILIZATION, k->name, t, run / sl);
        if (k->wclass >= n_cls) {
            size_t cap = n_cls ? n_cls : 16;
            while (cap <= k->wclass)
                cap *= 2;
            cls_busy = drv_xrealloc(cls_busy, cap * sizeof *cls_busy);
            cls_slots = drv_xrealloc(cls_slots, cap * sizeof *cls_slots);
            cls_runs = drv_xrealloc(cls_runs, cap);
            for (size_t j = n_cls; j < cap; j++) {
                cls_busy[j] = cls_slots[j] = 0;
                cls_runs[j] = 0;
            }
            n_cls = cap;
        }
        cls_busy[k->wclass] += run;
        cls_slots[k->wclass] += sl;
        /* Free slots count for the stall detector only where what waits could run
         * (a queue of cuda tests is not stalled by idle CPU workers): asked once per
         * class (cls_runs: 0 not asked, 1 no, 2 yes). */
        if (k->health == DRV_HEALTH_OK && held < sl) {
            if (!cls_runs[k->wclass])
                cls_runs[k->wclass] = drv_balancer_worker_runs_queued(c->bal, w) ? 2 : 1;
            if (cls_runs[k->wclass] == 2)
                free_slots += (uint64_t)(sl - held);
        }
    }
    for (size_t j = 0; j < n_cls; j++)
        if (cls_slots[j] > 0) {
            char key[24];
            snprintf(key, sizeof key, "%zu", j);
            emit(c, class_series(s, (uint32_t)j), M_CLASS_UTILIZATION, key, t,
                 cls_busy[j] / cls_slots[j]);
        }
    free(cls_busy);
    free(cls_slots);
    free(cls_runs);

    v[M_WORKERS_CONNECTED] = connected;
    for (int h = 0; h < DRV_HEALTH_COUNT; h++)
        v[M_WORKERS_OK + h] = by_health[h];
    for (int th = 0; th < DRV_THERMAL_STATE_COUNT; th++)
        v[M_WORKERS_COLD + th] = by_thermal[th];
    v[M_QUEUED] = (double)st.queued;
    for (int b = 0; b < 3; b++)
        v[M_QUEUED_HIGH + b] = (double)s->band[b];
    v[M_ASSIGNED] = (double)st.assigned;
    v[M_RUNNING] = (double)st.running;

    static const int outcome_metric[][2] = {{DRV_TASK_PASSED, M_PASSED},
                                            {DRV_TASK_FAILED, M_FAILED},
                                            {DRV_TASK_TIMED_OUT, M_TIMED_OUT},
                                            {DRV_TASK_CANCELLED, M_CANCELLED},
                                            {DRV_TASK_UNSCHEDULABLE, M_UNSCHEDULABLE}};
    double finished = 0;
    for (size_t i = 0; i < sizeof outcome_metric / sizeof outcome_metric[0]; i++) {
        int o = outcome_metric[i][0];
        double d = (double)(s->outcome[o] - s->prev[o]);
        v[outcome_metric[i][1]] = d / dt;
        finished += d;
    }
    v[M_THROUGHPUT] = finished / dt;
    const uint64_t cur[5] = {s->placements, s->steals, s->moves, s->speculations, s->retries};
    for (int i = 0; i < 5; i++)
        v[M_PLACEMENTS + i] = (double)(cur[i] - s->prev[DRV_TASK_STATE_COUNT + i]) / dt;
    memcpy(s->prev, s->outcome, sizeof s->outcome);
    memcpy(s->prev + DRV_TASK_STATE_COUNT, cur, sizeof cur);

    static const double qs[3] = {0.5, 0.9, 0.99};
    drv_hist *hs[3] = {&s->assign, &s->wait, &s->duration};
    for (int h = 0; h < 3; h++) {
        for (int k = 0; k < 3; k++) {
            double x = drv_hist_quantile(hs[h], qs[k]);
            if (x >= 0)
                v[M_ASSIGN_P50 + 3 * h + k] = x;
        }
        drv_hist_take(hs[h]);
    }
    v[M_UTILIZATION] = slots > 0 ? busy / slots : 0;
    double cpu = process_cpu();
    v[M_CPU] = (cpu - s->last_cpu) / dt;
    s->last_cpu = cpu;
    long long rss_kb, hwm_kb;
    drv_api_memory_kb(&rss_kb, &hwm_kb);
    if (rss_kb >= 0)
        v[M_RSS] = (double)rss_kb * 1024;
    v[M_SAMPLER_CPU] = s->loop_cpu[0] / dt;
    v[M_FEED_CPU] = s->loop_cpu[1] / dt;
    s->loop_cpu[0] = s->loop_cpu[1] = 0;
    for (int m = 0; m < M_FLEET_COUNT; m++)
        emit(c, &s->fleet[m], m, "", t, v[m]);

    s->q[s->q_head] = (drv_queue_obs){now, st.queued, free_slots, st.placed};
    s->q_head = (s->q_head + 1) % QUEUE_OBS;
    if (s->n_q < QUEUE_OBS)
        s->n_q++;
}

void drv_sampler_tick(drv_coordinator *c, double now)
{
    drv_sampler *s = c->sampler;
    if (!s || now - s->last_sample < SAMPLE_EVERY_S)
        return;
    double t0 = drv_coord_thread_cpu();
    double dt = s->last_sample > 0 ? now - s->last_sample : SAMPLE_EVERY_S;
    s->last_sample = now;
    sample(c, now, dt > 0 ? dt : SAMPLE_EVERY_S);
    detect(c, now);
    if (now - s->last_prune >= PRUNE_EVERY_S) {
        s->last_prune = now;
        prune(c, now);
    }
    s->loop_cpu[0] += drv_coord_thread_cpu() - t0;
}

/* ---- answers ---- */

json_t *drv_sampler_metrics_json(drv_coordinator *c)
{
    static const char *const kinds[] = {"gauge", "rate", "counter"};
    static const char *const pers[] = {NULL, "worker", "class"};
    json_t *arr = json_array();
    for (int m = 0; m < M_COUNT; m++) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(metrics[m].name));
        json_object_set_new(o, "unit", json_string(metrics[m].unit));
        json_object_set_new(o, "kind", json_string(kinds[metrics[m].kind]));
        json_object_set_new(o, "per",
                            pers[metrics[m].per] ? json_string(pers[metrics[m].per]) : json_null());
        json_object_set_new(o, "help", json_string(metrics[m].help));
        json_array_append_new(arr, o);
    }
    json_t *res = json_array();
    for (int r = 0; r < DRV_SERIES_RESOLUTIONS; r++) {
        double keep = drv_series_keep_s(r, c->sampler ? c->sampler->retention_s : 0);
        json_t *o = json_object();
        json_object_set_new(o, "step", json_integer(drv_series_steps[r]));
        json_object_set_new(o, "keep_s", keep < 0 ? json_null() : json_real(keep));
        json_array_append_new(res, o);
    }
    json_t *o = json_object();
    json_object_set_new(o, "metrics", arr);
    json_object_set_new(o, "resolutions", res);
    return o;
}

/* Parses a time parameter: Unix seconds, or <= 0 counting back from now. 0 when
 * absent (*t untouched), -1 with a 400 when bad. */
static int time_param(drv_hsession *h, const char *name, double now, double *t)
{
    char buf[64];
    const char *v = drv_api_query(h, name, buf, sizeof buf);
    if (!v)
        return 0;
    char *end = NULL;
    double x = strtod(v, &end);
    if (!end || end == v || *end || !isfinite(x)) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "%s: must be Unix seconds, or <= 0 for seconds before now, got \"%s\"", name, v);
        drv_api_error(h, 400, msg, name);
        return -1;
    }
    *t = x <= 0 ? now + x : x;
    return 1;
}

typedef struct points {
    json_t *arr; /* JSON */
    FILE *csv;   /* or CSV */
} points;

static int add_point(void *ctx, int64_t t, double value)
{
    points *p = ctx;
    if (p->csv) {
        fprintf(p->csv, "%lld,%.17g\n", (long long)t, value);
        return 0;
    }
    json_t *pt = json_array();
    json_array_append_new(pt, json_integer((json_int_t)t));
    json_array_append_new(pt, json_real(value));
    json_array_append_new(p->arr, pt);
    return 0;
}

void drv_sampler_history(drv_coordinator *c, drv_hsession *h)
{
    drv_sampler *s = c->sampler;
    char name[64], wbuf[DRV_WORKER_NAME_MAX + 1], cbuf[16], fbuf[16], sbuf[64];
    const char *metric = drv_api_query(h, "metric", name, sizeof name);
    if (!metric || !*metric) {
        drv_api_error(h, 400, "metric: required (GET /api/v1/metrics lists the names)", "metric");
        return;
    }
    int m = metric_by_name(metric);
    if (m < 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "metric: no metric \"%s\" (GET /api/v1/metrics lists them)",
                 metric);
        drv_api_error(h, 400, msg, "metric");
        return;
    }
    const char *worker = drv_api_query(h, "worker", wbuf, sizeof wbuf);
    const char *cls = drv_api_query(h, "class", cbuf, sizeof cbuf);
    const char *key = "";
    if (metrics[m].per == PER_WORKER) {
        if (!worker || !*worker) {
            char msg[160];
            snprintf(msg, sizeof msg, "worker: required for %s (a per-worker series)", metric);
            drv_api_error(h, 400, msg, "worker");
            return;
        }
        key = worker;
    } else if (metrics[m].per == PER_CLASS) {
        if (!cls || !*cls || strspn(cls, "0123456789") != strlen(cls)) {
            char msg[160];
            snprintf(msg, sizeof msg, "class: required for %s, a class number, got \"%s\"", metric,
                     cls ? cls : "");
            drv_api_error(h, 400, msg, "class");
            return;
        }
        key = cls;
    } else if (worker || cls) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: %s is a fleet-wide series", worker ? "worker" : "class",
                 metric);
        drv_api_error(h, 400, msg, worker ? "worker" : "class");
        return;
    }
    const char *format = drv_api_query(h, "format", fbuf, sizeof fbuf);
    if (format && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
        drv_api_error(h, 400, "format: must be csv or json", "format");
        return;
    }
    double now = drv_coord_now(), to = now, from = now - 300;
    if (time_param(h, "from", now, &from) < 0 || time_param(h, "to", now, &to) < 0)
        return;
    if (from > to) {
        drv_api_error(h, 400, "from: must not be after to", "from");
        return;
    }
    double retention = s ? s->retention_s : 0;
    double step;
    const char *sv = drv_api_query(h, "step", sbuf, sizeof sbuf);
    if (sv) {
        char *end = NULL;
        step = strtod(sv, &end);
        if (!end || end == sv || *end || !(step >= 1) || step > 1e9) {
            char msg[160];
            snprintf(msg, sizeof msg, "step: must be a number of seconds >= 1, got \"%s\"", sv);
            drv_api_error(h, 400, msg, "step");
            return;
        }
        if ((to - from) / step > DRV_SERIES_MAX_POINTS) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "step: %g s gives more than %d points over %.0f s; use a step >= %.0f", step,
                     DRV_SERIES_MAX_POINTS, to - from, ceil((to - from) / DRV_SERIES_MAX_POINTS));
            drv_api_error(h, 400, msg, "step");
            return;
        }
    } else {
        step = drv_series_default_step(now, from, to, 600, retention);
    }
    int64_t istep = (int64_t)floor(step);
    int r = drv_series_pick(now, from, to, (double)istep, retention);
    int64_t k = s ? find_known(s, m, key) : -1;
    int64_t id = k >= 0 ? s->known[k].id : 0;
    if (metrics[m].per == PER_WORKER && !id && drv_balancer_worker_find(c->bal, key) < 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "worker: no worker \"%.100s\"", key);
        drv_api_error(h, 404, msg, "worker");
        return;
    }
    /* Whole buckets of istep seconds, aligned as the store aligns them. */
    int64_t f = (int64_t)floor(from / (double)istep) * istep, e = (int64_t)floor(to);
    points p = {0};
    char *text = NULL;
    size_t len = 0;
    drv_error err;
    if (format && strcmp(format, "csv") == 0) {
        p.csv = open_memstream(&text, &len);
        if (!p.csv) {
            drv_api_error(h, 503, "cannot build the CSV", NULL);
            return;
        }
        fputs("t,value\n", p.csv);
        int64_t n = id ? drv_store_sample_query(c->store, id, drv_series_steps[r], f, e, istep,
                                                add_point, &p, &err)
                       : 0;
        fclose(p.csv);
        if (n < 0)
            drv_api_error(h, 503, err.msg, NULL);
        else
            drv_api_respond_text(h, 200, "text/csv; charset=utf-8", text, len);
        free(text);
        return;
    }
    p.arr = json_array();
    if (id && drv_store_sample_query(c->store, id, drv_series_steps[r], f, e, istep, add_point, &p,
                                     &err) < 0) {
        json_decref(p.arr);
        drv_api_error(h, 503, err.msg, NULL);
        return;
    }
    static const char *const kinds[] = {"gauge", "rate", "counter"};
    json_t *o = json_object();
    json_object_set_new(o, "metric", json_string(metrics[m].name));
    json_object_set_new(o, "unit", json_string(metrics[m].unit));
    json_object_set_new(o, "kind", json_string(kinds[metrics[m].kind]));
    json_object_set_new(o, "worker", metrics[m].per == PER_WORKER ? json_string(key) : json_null());
    json_object_set_new(o, "class",
                        metrics[m].per == PER_CLASS ? json_integer(atoll(key)) : json_null());
    json_object_set_new(o, "from", json_integer((json_int_t)f));
    json_object_set_new(o, "to", json_integer((json_int_t)e));
    json_object_set_new(o, "step", json_integer((json_int_t)istep));
    json_object_set_new(o, "resolution", json_integer(drv_series_steps[r]));
    json_object_set_new(o, "points", p.arr);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    drv_api_respond_text(h, 200, NULL, body ? body : "{}", body ? strlen(body) : 2);
    free(body);
}

static json_t *anomaly_json(const anomaly_rec *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer((json_int_t)a->id));
    json_object_set_new(o, "kind", json_string(drv_anomaly_kind_name(a->kind)));
    json_object_set_new(o, "worker", a->worker[0] ? json_string(a->worker) : json_null());
    json_object_set_new(o, "severity", json_string(drv_anomaly_severity_name(a->severity)));
    json_object_set_new(o, "summary", json_string(a->summary));
    json_object_set_new(o, "evidence", evidence_json(a));
    json_object_set_new(o, "start", json_real(a->start));
    json_object_set_new(o, "end", a->end > 0 ? json_real(a->end) : json_null());
    json_object_set_new(o, "active", json_boolean(a->end == 0));
    return o;
}

typedef struct anomaly_page {
    drv_sampler *s;
    json_t *arr;
} anomaly_page;

/* One anomaly of the store for GET /api/v1/anomalies?from=&to=: the record in memory
 * when it is there (an open one's evidence is newer than the stored one). */
static int anomaly_row(void *ctx, const drv_store_anomaly *a, drv_error *err)
{
    (void)err;
    anomaly_page *p = ctx;
    for (size_t i = 0; p->s && i < p->s->n_anoms; i++)
        if (p->s->anoms[i].id == (uint64_t)a->id) {
            json_array_append_new(p->arr, anomaly_json(&p->s->anoms[i]));
            return 0;
        }
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer((json_int_t)a->id));
    json_object_set_new(o, "kind", json_string(a->kind));
    json_object_set_new(o, "worker", a->worker[0] ? json_string(a->worker) : json_null());
    json_object_set_new(o, "severity", json_string(a->severity));
    json_object_set_new(o, "summary", json_string(a->summary));
    json_t *ev = json_loads(a->evidence, 0, NULL);
    json_object_set_new(o, "evidence", json_is_object(ev) ? ev : json_object());
    if (ev && !json_is_object(ev))
        json_decref(ev);
    json_object_set_new(o, "start", json_real(a->start));
    json_object_set_new(o, "end", a->end > 0 ? json_real(a->end) : json_null());
    json_object_set_new(o, "active", json_boolean(a->end == 0));
    json_array_append_new(p->arr, o);
    return 0;
}

void drv_sampler_anomalies(drv_coordinator *c, drv_hsession *h)
{
    double now = drv_coord_now(), from = now - ENDED_KEEP_S, to = now;
    int hf = time_param(h, "from", now, &from);
    if (hf < 0)
        return;
    int ht = time_param(h, "to", now, &to);
    if (ht < 0)
        return;
    if (hf == 0 && ht == 0) { /* what the feed shows: the record in memory */
        json_t *o = drv_sampler_anomalies_json(c);
        char *body = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(DRV_JSON_REAL_DIGITS));
        json_decref(o);
        drv_api_respond_text(h, 200, NULL, body ? body : "{}", body ? strlen(body) : 2);
        free(body);
        return;
    }
    if (from > to) {
        drv_api_error(h, 400, "from: must not be after to", "from");
        return;
    }
    anomaly_page p = {c->sampler, json_array()};
    drv_error err;
    if (drv_store_anomaly_list(c->store, from, to, ANOMALIES_MAX, anomaly_row, &p, &err) < 0) {
        json_decref(p.arr);
        drv_api_error(h, 503, err.msg, NULL);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "anomalies", p.arr);
    json_object_set_new(o, "from", json_real(from));
    json_object_set_new(o, "to", json_real(to));
    json_object_set_new(o, "t", json_real(now));
    char *body = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(DRV_JSON_REAL_DIGITS));
    json_decref(o);
    drv_api_respond_text(h, 200, NULL, body ? body : "{}", body ? strlen(body) : 2);
    free(body);
}

json_t *drv_sampler_anomalies_json(drv_coordinator *c)
{
    json_t *arr = json_array();
    drv_sampler *s = c->sampler;
    for (int pass = 0; s && pass < 2; pass++) /* active first, newest first */
        for (size_t i = s->n_anoms; i-- > 0;)
            if ((s->anoms[i].end == 0) == (pass == 0))
                json_array_append_new(arr, anomaly_json(&s->anoms[i]));
    json_t *o = json_object();
    json_object_set_new(o, "anomalies", arr);
    json_object_set_new(o, "t", json_real(drv_coord_now()));
    return o;
}

json_t *drv_sampler_score_json(drv_coordinator *c, drv_wref w)
{
    drv_sampler *s = c->sampler;
    if (!s || w >= s->cap_mw || !s->mw[w].assessed)
        return json_null();
    const mon_worker *m = &s->mw[w];
    json_t *o = json_object();
    json_object_set_new(o, "value", json_integer(m->score.value));
    json_object_set_new(o, "speed", json_integer(m->score.speed));
    json_object_set_new(o, "reliability", json_integer(m->score.reliability));
    json_object_set_new(o, "stability", json_integer(m->score.stability));
    json_object_set_new(o, "speed_ratio", json_real(m->a.speed_ratio));
    json_object_set_new(o, "tests", json_integer(m->a.tests));
    json_object_set_new(o, "failure_rate", json_real(m->a.failure_rate));
    json_object_set_new(o, "losses", json_integer(m->a.losses));
    json_object_set_new(o, "jitter", json_boolean(m->a.jitter));
    return o;
}

static int cmp_family_tests(const void *pa, const void *pb)
{
    const family_pace *a = pa, *b = pb;
    if (a->tests != b->tests)
        return a->tests > b->tests ? -1 : 1;
    return (a->family > b->family) - (a->family < b->family);
}

json_t *drv_sampler_speed_by_family_json(drv_coordinator *c, drv_wref w)
{
    drv_sampler *s = c->sampler;
    json_t *arr = json_array();
    if (!s || w >= s->cap_mw || !s->mw[w].n_fam)
        return arr;
    const mon_worker *m = &s->mw[w];
    family_pace *f = drv_xmalloc(m->n_fam * sizeof *f);
    memcpy(f, m->fam, m->n_fam * sizeof *f);
    qsort(f, m->n_fam, sizeof *f, cmp_family_tests);
    uint32_t wclass = drv_balancer_worker(c->bal, w)->wclass;
    for (uint32_t i = 0; i < m->n_fam; i++) {
        /* Its class: the mean over the class's other workers that ran the family of their
         * mean log(measured/predicted); without any, the prediction itself (0). */
        double class_log = 0;
        uint32_t others = 0;
        for (drv_wref v = 0; v < s->cap_mw && v < drv_balancer_worker_refs(c->bal); v++) {
            if (v == w || !s->mw[v].n_fam || drv_balancer_worker(c->bal, v)->wclass != wclass)
                continue;
            for (uint32_t j = 0; j < s->mw[v].n_fam; j++)
                if (s->mw[v].fam[j].family == f[i].family) {
                    class_log += s->mw[v].fam[j].log_sum / s->mw[v].fam[j].tests;
                    others++;
                }
        }
        if (others)
            class_log /= others;
        double class_speed, affinity;
        drv_balancer_family_learned(c->bal, w, f[i].family, &class_speed, &affinity);
        json_t *o = json_object();
        json_object_set_new(o, "family", json_string(drv_family_get(f[i].family)->name));
        json_object_set_new(o, "tests", json_integer(f[i].tests));
        /* Its speed against its class: 1 = as its class, 0.2 = 5x slower. */
        json_object_set_new(o, "speed",
                            json_real(sig4(exp(class_log - f[i].log_sum / f[i].tests))));
        json_object_set_new(o, "class_workers", json_integer(others));
        json_object_set_new(o, "class_speed", json_real(sig4(class_speed)));
        json_object_set_new(o, "affinity", affinity >= 0 ? json_real(sig4(affinity)) : json_null());
        json_array_append_new(arr, o);
    }
    free(f);
    return arr;
}

/* ---- /metrics ---- */

static void histogram(FILE *out, const char *name, const char *help, const drv_hist *h)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int b = 0; b < DRV_HIST_BOUNDS; b++) {
        cum += h->le[b];
        fprintf(out, "%s_bucket{le=\"%g\"} %llu\n", name, drv_hist_bounds[b],
                (unsigned long long)cum);
    }
    fprintf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    fprintf(out, "%s_sum %.17g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}

void drv_sampler_prometheus(drv_coordinator *c, FILE *out)
{
    drv_sampler *s = c->sampler;
    if (!s)
        return;
    histogram(out, "drover_assign_latency_seconds",
              "Time from placing a test on a worker to the worker's start of it.", &s->assign);
    histogram(out, "drover_queue_wait_seconds",
              "Time a test waited in the queue (since submission or requeue) before placement.",
              &s->wait);
    histogram(out, "drover_test_duration_seconds", "Run time of finished tests.", &s->duration);
    const char *counters[][2] = {
        {"drover_steals_total", "Tests stolen by an idle worker."},
        {"drover_speculations_total", "Speculative copies of stragglers started."},
        {"drover_retries_total", "Tests queued again to be retried."}};
    const uint64_t vals[3] = {s->steals, s->speculations, s->retries};
    for (int i = 0; i < 3; i++)
        fprintf(out, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counters[i][0], counters[i][1],
                counters[i][0], counters[i][0], (unsigned long long)vals[i]);

    fputs("# HELP drover_worker_thermal_state The worker's thermal state (1 for the state it is "
          "in).\n# TYPE drover_worker_thermal_state gauge\n",
          out);
    uint32_t nw = drv_balancer_worker_refs(c->bal);
    for (drv_wref w = 0; w < nw && w < c->cap_workers; w++) {
        if (!c->workers[w].known)
            continue;
        const drv_worker *k = drv_balancer_worker(c->bal, w);
        for (int th = 0; th < DRV_THERMAL_STATE_COUNT; th++) {
            fputs("drover_worker_thermal_state{worker=\"", out);
            drv_metrics_label(out, k->name);
            fprintf(out, "\",state=\"%s\"} %d\n", drv_thermal_state_name((drv_thermal_state)th),
                    k->thermal.state == (drv_thermal_state)th);
        }
    }
    fputs("# HELP drover_worker_score The worker's performance score (0-100).\n"
          "# TYPE drover_worker_score gauge\n",
          out);
    for (drv_wref w = 0; w < nw && w < c->cap_workers && w < s->cap_mw; w++) {
        if (!c->workers[w].known || !s->mw[w].assessed)
            continue;
        fputs("drover_worker_score{worker=\"", out);
        drv_metrics_label(out, drv_balancer_worker(c->bal, w)->name);
        fprintf(out, "\"} %d\n", s->mw[w].score.value);
    }
    unsigned active[DRV_ANOM_KIND_COUNT] = {0};
    for (size_t i = 0; i < s->n_anoms; i++)
        if (s->anoms[i].end == 0)
            active[s->anoms[i].kind]++;
    fputs("# HELP drover_anomalies Anomalies active now, by kind.\n"
          "# TYPE drover_anomalies gauge\n",
          out);
    for (int k = 0; k < DRV_ANOM_KIND_COUNT; k++)
        fprintf(out, "drover_anomalies{kind=\"%s\"} %u\n",
                drv_anomaly_kind_name((drv_anomaly_kind)k), active[k]);
}
