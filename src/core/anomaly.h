/* anomaly.h - anomaly detectors and the worker performance score, as pure functions
 * over what the coordinator recorded (per worker: its recent results, heartbeat
 * intervals and connection losses; for the queue: its recent samples).
 *
 * Detectors (docs/api.md, "GET /api/v1/anomalies", says the same for users):
 *   slow_worker       the worker's median measured/predicted duration (each run's ratio
 *                     from drv_anomaly_run_ratio, floored) over its window is
 *                     >= DRV_ANOM_SLOW_RATIO x its class's (the other workers of the
 *                     class; 1 when it is alone); critical from DRV_ANOM_SLOW_CRITICAL.
 *   failure_rate      >= DRV_ANOM_FAIL_MIN_TESTS results, rate >= 0.5, >= 3x the rest of
 *                     the fleet's and 0.3 above it; critical at 100 %.
 *   queue_stalled     tests queued, free slots that could run them, nothing placed for
 *                     DRV_ANOM_STALL_S.
 *   heartbeat_jitter  over the last heartbeats: spread p90-p10 > half the median (and
 *                     > 0.5 s), or a gap > 3x the median (and > 1 s more than it).
 *   flapping          >= DRV_ANOM_FLAP_LOSSES connection losses in the window.
 * A worker's window is its last DRV_ANOM_WINDOW_TESTS results within DRV_ANOM_WINDOW_S.
 *
 * No clock, no I/O, no allocation but scratch memory freed before returning. */
#ifndef DRV_CORE_ANOMALY_H
#define DRV_CORE_ANOMALY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DRV_ANOM_WINDOW_S       600.0
#define DRV_ANOM_WINDOW_TESTS   20
#define DRV_ANOM_MIN_TESTS      3
#define DRV_ANOM_SLOW_RATIO     2.0
#define DRV_ANOM_SLOW_CRITICAL  4.0
#define DRV_ANOM_FAIL_MIN_TESTS 5
#define DRV_ANOM_STALL_S        10.0
#define DRV_ANOM_STALL_CRITICAL 60.0
#define DRV_ANOM_MIN_BEATS      8
#define DRV_ANOM_FLAP_LOSSES    3
#define DRV_ANOM_FLAP_CRITICAL  6

typedef enum drv_anomaly_kind {
    DRV_ANOM_SLOW_WORKER = 0,
    DRV_ANOM_FAILURE_RATE,
    DRV_ANOM_QUEUE_STALLED,
    DRV_ANOM_HEARTBEAT_JITTER,
    DRV_ANOM_FLAPPING,
    DRV_ANOM_KIND_COUNT
} drv_anomaly_kind;

typedef enum drv_anomaly_severity { DRV_ANOM_WARNING = 0, DRV_ANOM_CRITICAL } drv_anomaly_severity;

/* "slow_worker", ...; "warning", "critical". */
const char *drv_anomaly_kind_name(drv_anomaly_kind k);
const char *drv_anomaly_severity_name(drv_anomaly_severity s);

/* One result of a worker: when, measured over predicted duration (<= 0: unknown, e.g.
 * an infrastructure failure), and whether it failed (exit status, signal, timeout or
 * infrastructure failure). */
typedef struct drv_run_obs {
    double t;
    float ratio;
    bool failed;
} drv_run_obs;

/* Runs shorter than this (measured or predicted, seconds) are too short to measure:
 * start-up noise of a few milliseconds would read as several times slower. */
#define DRV_ANOM_MEASURABLE_S 0.2

/* The ratio of a drv_run_obs: measured over predicted duration with both raised to
 * DRV_ANOM_MEASURABLE_S, so two runs both below it count as equal (1) and a run is only
 * slower by what it took beyond that floor; 0 (unknown) when either is not > 0. */
float drv_anomaly_run_ratio(double measured_s, double predicted_s);

/* What was recorded of one worker; arrays oldest first, borrowed. */
typedef struct drv_worker_window {
    const char *name;
    uint32_t wclass;
    const drv_run_obs *runs;
    uint32_t n_runs;
    const float *beats; /* intervals between heartbeats, seconds */
    uint32_t n_beats;
    const double *losses; /* times its connection was lost */
    uint32_t n_losses;
} drv_worker_window;

/* The figures the detectors and the score share, per worker. */
typedef struct drv_worker_assessment {
    uint32_t tests, failed; /* results in the window */
    double ratio;           /* its median measured/predicted; 0: fewer than MIN_TESTS */
    double class_ratio;     /* the other workers of its class (1 when none has enough) */
    double speed_ratio;     /* ratio / class_ratio; 1 when unknown */
    double failure_rate;    /* failed / tests; 0 without tests */
    double fleet_rate;      /* the rest of the fleet's failure rate in the same windows */
    uint32_t fleet_tests;
    uint32_t beats; /* heartbeat intervals looked at */
    double beat_median, beat_p10, beat_p90, beat_max;
    bool jitter;
    uint32_t losses; /* in the window */
} drv_worker_assessment;

/* Fills a[i] for each of the n windows w[i] at time now. */
void drv_anomaly_assess(const drv_worker_window *w, size_t n, double now, drv_worker_assessment *a);

#define DRV_ANOM_EVIDENCE_MAX 6

typedef struct drv_evidence {
    const char *name; /* static */
    double value;
} drv_evidence;

/* One anomaly found now. */
typedef struct drv_finding {
    drv_anomaly_kind kind;
    drv_anomaly_severity severity;
    uint32_t worker; /* index into the windows; UINT32_MAX: about the fleet */
    drv_evidence ev[DRV_ANOM_EVIDENCE_MAX];
    uint32_t n_ev;
    char summary[200];
} drv_finding;

/* Writes the per-worker findings (slow_worker, failure_rate, heartbeat_jitter,
 * flapping) of the assessed windows into out (at most max). Returns how many. */
size_t drv_anomaly_workers(const drv_worker_window *w, const drv_worker_assessment *a, size_t n,
                           drv_finding *out, size_t max);

/* One sample of the queue: tests queued, free slots of connected workers taking work
 * that could run a queued test (the caller judges eligibility: the coordinator asks the
 * balancer, drv_balancer_worker_runs_queued), tests placed so far (a counter). */
typedef struct drv_queue_obs {
    double t;
    uint64_t queued;
    uint64_t free_slots;
    uint64_t placed;
} drv_queue_obs;

/* Looks at the n samples q (oldest first): true, with *out filled, when the queue has
 * not drained for DRV_ANOM_STALL_S while workers had free slots. */
bool drv_anomaly_queue(const drv_queue_obs *q, size_t n, drv_finding *out);

/* A worker's performance score, 0-100, and its parts (each 0-100):
 * value = 0.5 speed + 0.3 reliability + 0.2 stability; speed = 100 / max(1,
 * speed_ratio); reliability = 100 (1 - failure rate); stability = 100 - 25 per loss -
 * 25 when its heartbeats jitter, at least 0. Fewer than DRV_ANOM_MIN_TESTS results:
 * speed and reliability are 100. */
typedef struct drv_score {
    int value, speed, reliability, stability;
} drv_score;

void drv_anomaly_score(const drv_worker_assessment *a, drv_score *out);

#endif
