/* histogram.h - a latency histogram: cumulative counts over Prometheus-style bucket
 * bounds (for /metrics) and, for the interval since the last drv_hist_take(), a fine
 * logarithmic histogram that gives percentiles within about 6 % (for the time series).
 *
 * Values are seconds >= 0 (negative values count as 0). Pure: no clock, no I/O. */
#ifndef DRV_CORE_HISTOGRAM_H
#define DRV_CORE_HISTOGRAM_H

#include <stdint.h>

/* The cumulative buckets' upper bounds in seconds (le="..."), +Inf not included. */
#define DRV_HIST_BOUNDS 19
extern const double drv_hist_bounds[DRV_HIST_BOUNDS];

/* Fine buckets: 20 per decade from 1e-6 s to 1e5 s, plus under and over. */
#define DRV_HIST_FINE (11 * 20 + 2)

typedef struct drv_hist {
    uint64_t le[DRV_HIST_BOUNDS + 1]; /* per bucket (not cumulative); last: above every bound */
    uint64_t count;
    double sum;
    uint32_t fine[DRV_HIST_FINE]; /* this interval */
    uint64_t fine_count;
} drv_hist;

/* Counts one value. */
void drv_hist_add(drv_hist *h, double seconds);

/* The q-quantile (0 < q < 1) of the values counted this interval, or -1 when none. */
double drv_hist_quantile(const drv_hist *h, double q);

/* Ends the interval: the fine histogram is emptied (the cumulative one stays). */
void drv_hist_take(drv_hist *h);

#endif
