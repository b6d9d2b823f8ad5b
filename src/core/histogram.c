/* histogram.c - cumulative and per-interval latency histograms (histogram.h). */
#include <math.h>
#include <string.h>

#include "core/histogram.h"

const double drv_hist_bounds[DRV_HIST_BOUNDS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10,
                                                 30,     60,    300,    900,   3600};

#define FINE_PER_DECADE 20
#define FINE_MIN_LOG10  (-6)

/* The fine bucket of v: 0 below 1e-6 s, the last above 1e5 s. */
static int fine_index(double v)
{
    if (!(v >= 1e-6))
        return 0;
    int i = 1 + (int)floor((log10(v) - FINE_MIN_LOG10) * FINE_PER_DECADE);
    return i >= DRV_HIST_FINE - 1 ? DRV_HIST_FINE - 1 : i;
}

/* The lower edge of fine bucket i (i >= 1). */
static double fine_low(int i)
{
    return pow(10.0, FINE_MIN_LOG10 + (double)(i - 1) / FINE_PER_DECADE);
}

void drv_hist_add(drv_hist *h, double v)
{
    if (!(v >= 0)) /* negative or NaN */
        v = 0;
    int b = 0;
    while (b < DRV_HIST_BOUNDS && v > drv_hist_bounds[b])
        b++;
    h->le[b]++;
    h->count++;
    h->sum += v;
    h->fine[fine_index(v)]++;
    h->fine_count++;
}

double drv_hist_quantile(const drv_hist *h, double q)
{
    if (h->fine_count == 0)
        return -1;
    double rank = q * (double)h->fine_count;
    uint64_t seen = 0;
    for (int i = 0; i < DRV_HIST_FINE; i++) {
        if (!h->fine[i])
            continue;
        if ((double)(seen + h->fine[i]) >= rank) {
            if (i == 0)
                return 0;
            if (i == DRV_HIST_FINE - 1)
                return fine_low(i);
            /* Geometric interpolation inside the bucket. */
            double f = (rank - (double)seen) / h->fine[i];
            double lo = fine_low(i), hi = fine_low(i + 1);
            return lo * pow(hi / lo, f < 0 ? 0 : f > 1 ? 1 : f);
        }
        seen += h->fine[i];
    }
    return fine_low(DRV_HIST_FINE - 1);
}

void drv_hist_take(drv_hist *h)
{
    memset(h->fine, 0, sizeof h->fine);
    h->fine_count = 0;
}
