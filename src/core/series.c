/* series.c - downsampling arithmetic of the metrics history (series.h). */
#include <math.h>

#include "core/series.h"

const int drv_series_steps[DRV_SERIES_RESOLUTIONS] = {1, 60, 600};

double drv_series_keep_s(int r, double retention_s)
{
    if (r == 0)
        return DRV_SERIES_RAW_KEEP_S;
    if (r == 1)
        return DRV_SERIES_MINUTE_KEEP_S;
    return retention_s > 0 ? retention_s : -1;
}

bool drv_rollup_add(drv_rollup *r, int step, double t, double v, int64_t *out_t, double *out_v)
{
    int64_t b = (int64_t)floor(t / step) * step;
    bool flushed = false;
    if (r->n > 0 && b != r->bucket) {
        *out_t = r->bucket;
        *out_v = r->sum / r->n;
        flushed = true;
        r->n = 0;
        r->sum = 0;
    }
    if (r->n == 0)
        r->bucket = b;
    r->sum += v;
    r->n++;
    return flushed;
}

int drv_series_pick(double now, double from, double to, double step, double retention_s)
{
    (void)to;
    for (int r = 0; r < DRV_SERIES_RESOLUTIONS; r++) {
        double keep = drv_series_keep_s(r, retention_s);
        if (drv_series_steps[r] <= step && (keep < 0 || from >= now - keep))
            return r;
    }
    /* None is both fine enough and kept that far back: the finest kept that far back
     * (its points are further apart than the step asked), else the coarsest. */
    for (int r = 0; r < DRV_SERIES_RESOLUTIONS; r++) {
        double keep = drv_series_keep_s(r, retention_s);
        if (keep < 0 || from >= now - keep)
            return r;
    }
    return DRV_SERIES_RESOLUTIONS - 1;
}

double drv_series_default_step(double now, double from, double to, int max_points,
                               double retention_s)
{
    double span = to > from ? to - from : 1;
    double step = 1;
    for (int r = 0; r < DRV_SERIES_RESOLUTIONS; r++) {
        step = drv_series_steps[r];
        double keep = drv_series_keep_s(r, retention_s);
        if (span / step <= max_points && (keep < 0 || from >= now - keep))
            return step;
    }
    /* Coarser than 10 min: a multiple of it. */
    double k = ceil(span / max_points / step);
    return step * (k < 1 ? 1 : k);
}
