/* series.h - time series kept at three resolutions: the arithmetic of downsampling.
 *
 * A sample is taken every second (resolution 1). Each sample also goes into a 1 min and
 * a 10 min accumulator (drv_rollup); when a sample falls into a later bucket, the
 * finished bucket's average is written at the bucket's start. What is kept: 1 s samples
 * for DRV_SERIES_RAW_KEEP_S, 1 min averages for DRV_SERIES_MINUTE_KEEP_S, 10 min
 * averages for the retention setting. A history query reads the finest resolution that
 * still covers its whole range and whose step is not larger than the query's step.
 * Pure: no clock, no I/O (now is passed in). */
#ifndef DRV_CORE_SERIES_H
#define DRV_CORE_SERIES_H

#include <stdbool.h>
#include <stdint.h>

#define DRV_SERIES_RESOLUTIONS         3
#define DRV_SERIES_RAW_KEEP_S          3600.0
#define DRV_SERIES_MINUTE_KEEP_S       86400.0
#define DRV_SERIES_DEFAULT_RETENTION_S (14 * 86400.0)
#define DRV_SERIES_MAX_POINTS          10000

/* The resolutions' steps in seconds: 1, 60, 600. */
extern const int drv_series_steps[DRV_SERIES_RESOLUTIONS];

/* How long resolution r is kept, retention_s for the coarsest (0: for ever, returned as
 * a negative number). */
double drv_series_keep_s(int r, double retention_s);

/* An accumulator of one resolution: the bucket being filled. */
typedef struct drv_rollup {
    int64_t bucket; /* start of the bucket (seconds), 0: empty */
    double sum;
    uint32_t n;
} drv_rollup;

/* Adds sample (t, v) to r of bucket width step. When t falls into a later bucket than
 * the one r holds, that finished bucket's start and average go to *out_t and *out_v and
 * true is returned (the sample starts the new bucket). */
bool drv_rollup_add(drv_rollup *r, int step, double t, double v, int64_t *out_t, double *out_v);

/* The resolution (index into drv_series_steps) a query over [from, to] with a step of
 * step seconds reads, at time now: the finest whose step <= step and which is kept back
 * to from; when none is both, the finest kept back to from; else the coarsest. */
int drv_series_pick(double now, double from, double to, double step, double retention_s);

/* The step a query gets when it names none: the finest step (1, 60, 600 or a multiple of
 * 600) giving at most max_points points over [from, to] and readable there. */
double drv_series_default_step(double now, double from, double to, int max_points,
                               double retention_s);

#endif
