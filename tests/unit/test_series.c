/* test_series.c - the metrics history's arithmetic: downsampling into 1 min and 10 min
 * averages (core/series.h), which resolution a query reads, the default step, and the
 * latency histograms' percentiles and Prometheus buckets (core/histogram.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/histogram.h"
#include "core/series.h"

/* Samples every second from t=1000 for 3 min: the minute buckets flush at each minute
 * boundary with the average of what fell in them, the 10 min one not yet. */
static void test_rollup(void **state)
{
    (void)state;
    drv_rollup m = {0}, ten = {0};
    int64_t bt[8];
    double bv[8];
    int n = 0, n_ten = 0;
    for (int t = 1000; t < 1180; t++) {
        int64_t ot;
        double ov;
        if (drv_rollup_add(&m, 60, t, t % 60, &ot, &ov)) {
            bt[n] = ot;
            bv[n++] = ov;
        }
        n_ten += drv_rollup_add(&ten, 600, t, 1, &ot, &ov);
    }
    /* 1000..1019 in [960, 1020): values 40..59; then full minutes 1020 and 1080. */
    assert_int_equal(n, 3);
    assert_int_equal(bt[2], 1080);
    assert_true(fabs(bv[2] - 29.5) < 1e-9);
    assert_int_equal(bt[0], 960);
    assert_true(fabs(bv[0] - 49.5) < 1e-9);
    assert_int_equal(bt[1], 1020);
    assert_true(fabs(bv[1] - 29.5) < 1e-9);
    assert_int_equal(n_ten, 0);
    assert_int_equal(m.bucket, 1140);
    assert_int_equal(m.n, 40);
    /* A gap: the next sample far later flushes the open bucket at once. */
    int64_t ot;
    double ov;
    assert_true(drv_rollup_add(&m, 60, 5000, 7, &ot, &ov));
    assert_int_equal(ot, 1140);
    assert_true(drv_rollup_add(&ten, 600, 5000, 7, &ot, &ov));
    assert_int_equal(ot, 600);
    assert_true(ov == 1);
}

/* Rows: now, from, to, step, retention -> resolution read. */
static void test_pick(void **state)
{
    (void)state;
    static const struct {
        double from, to, step, retention;
        int want;
    } rows[] = {
        {-300, 0, 1, 0, 0},         /* last 5 min by the second: raw */
        {-300, 0, 10, 0, 0},        /* coarser buckets of raw samples */
        {-3000, 0, 60, 0, 0},       /* within the hour raw is read (its last minute too) */
        {-7200, 0, 1, 0, 1},        /* raw is gone before an hour: minutes */
        {-7200, 0, 600, 0, 1},      /* minutes, averaged by ten */
        {-2 * 86400, 0, 60, 0, 2},  /* minutes are gone after a day */
        {-40 * 86400, 0, 600, 0, 2} /* beyond retention: the coarsest anyway */
    };
    double now = 1e9;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int got = drv_series_pick(now, now + rows[i].from, now + rows[i].to, rows[i].step,
                                  rows[i].retention);
        if (got != rows[i].want)
            fail_msg("row %zu: resolution %d, want %d", i, got, rows[i].want);
    }
    assert_true(drv_series_keep_s(2, 0) < 0); /* 0: for ever */
    assert_true(drv_series_keep_s(2, 7 * 86400) == 7 * 86400);
}

static void test_default_step(void **state)
{
    (void)state;
    double now = 1e9;
    assert_true(drv_series_default_step(now, now - 300, now, 600, 0) == 1);
    assert_true(drv_series_default_step(now, now - 3600, now, 600, 0) == 60);
    assert_true(drv_series_default_step(now, now - 86400, now, 600, 0) == 600);
    /* a week: 1008 ten-minute points, so 20 min steps */
    assert_true(drv_series_default_step(now, now - 7 * 86400, now, 600, 0) == 1200);
}

static void test_histogram(void **state)
{
    (void)state;
    drv_hist h;
    memset(&h, 0, sizeof h);
    assert_true(drv_hist_quantile(&h, 0.5) < 0); /* nothing this interval */
    /* 1..100 ms */
    for (int i = 1; i <= 100; i++)
        drv_hist_add(&h, i / 1000.0);
    double p50 = drv_hist_quantile(&h, 0.5), p90 = drv_hist_quantile(&h, 0.9),
           p99 = drv_hist_quantile(&h, 0.99);
    assert_true(fabs(p50 - 0.050) / 0.050 < 0.08);
    assert_true(fabs(p90 - 0.090) / 0.090 < 0.08);
    assert_true(fabs(p99 - 0.099) / 0.099 < 0.08);
    assert_int_equal(h.count, 100);
    assert_true(fabs(h.sum - 5.05) < 1e-9);
    /* Prometheus buckets: le=0.01 holds 1..10 ms, le=0.1 all of them (cumulative). */
    uint64_t cum = 0, at_10ms = 0, at_100ms = 0;
    for (int b = 0; b < DRV_HIST_BOUNDS; b++) {
        cum += h.le[b];
        if (drv_hist_bounds[b] == 0.01)
            at_10ms = cum;
        if (drv_hist_bounds[b] == 0.1)
            at_100ms = cum;
    }
    assert_int_equal(at_10ms, 10);
    assert_int_equal(at_100ms, 100);
    /* A new interval: the percentiles start over, the cumulative counts do not. */
    drv_hist_take(&h);
    assert_true(drv_hist_quantile(&h, 0.5) < 0);
    drv_hist_add(&h, 7200); /* above every bound */
    drv_hist_add(&h, -1);   /* counted as 0 */
    assert_int_equal(h.count, 102);
    assert_int_equal(h.le[DRV_HIST_BOUNDS], 1);
    assert_true(drv_hist_quantile(&h, 0.99) > 3600);
    assert_true(drv_hist_quantile(&h, 0.01) == 0);
    for (int b = 1; b < DRV_HIST_BOUNDS; b++)
        assert_true(drv_hist_bounds[b] > drv_hist_bounds[b - 1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rollup),
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_default_step),
        cmocka_unit_test(test_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
