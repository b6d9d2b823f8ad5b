/* test_anomaly.c - the anomaly detectors and the worker score (core/anomaly.h) on
 * recorded series: a healthy fleet raises nothing; a worker 5x slower than its class, a
 * worker failing 19 of 19 while the rest pass, irregular heartbeats, a flapping
 * connection and a queue that stops draining with free slots are each flagged with
 * their evidence, and the score drops for the worker at fault only. The free slots the
 * queue detector sees are those of workers that could run what waits (a real balancer
 * decides: a queue of cuda tests with only CPU workers free is no stall).
 *
 * The healthy fleet is a recording: durations over predictions as a live coordinator
 * measured them (tests/e2e/monitoring.sh's suite of `sleep 1` on four local workers,
 * one slowed 5x) plus a deterministic jitter of a few percent, heartbeats 1 s apart
 * within +-40 ms. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "balancer_fixture.h"
#include "core/anomaly.h"
#include "core/worker.h"

#define WORKERS 8
#define RUNS    20
#define BEATS   20
#define NOW     10000.0

/* Measured/predicted of the recorded run's healthy workers (one `sleep 1` each), and
 * of the slowed one. */
static const float recorded_ok[] = {0.93f, 0.95f, 0.97f, 1.01f, 0.94f, 0.96f, 1.03f,
                                    0.92f, 0.99f, 0.95f, 0.98f, 1.00f, 0.94f};
static const float recorded_slow[] = {4.94f, 4.61f, 5.02f, 4.75f, 4.88f};

typedef struct fleet {
    drv_worker_window w[WORKERS];
    drv_run_obs runs[WORKERS][RUNS];
    float beats[WORKERS][BEATS];
    double losses[WORKERS][8];
    char names[WORKERS][16];
    drv_worker_assessment a[WORKERS];
    drv_finding f[64];
    size_t nf;
} fleet;

/* A healthy fleet: two classes of four workers, every worker with RUNS results (1 in 10
 * failing, as a flaky suite does everywhere), regular heartbeats, no losses. */
static fleet *healthy(void)
{
    fleet *fl = calloc(1, sizeof *fl);
    unsigned seed = 7;
    for (int i = 0; i < WORKERS; i++) {
        snprintf(fl->names[i], sizeof fl->names[i], "w%d", i);
        for (int k = 0; k < RUNS; k++) {
            seed = seed * 1103515245u + 12345u;
            float scale = i < 4 ? 1.0f : 2.0f; /* class 1 is slower for everyone alike */
            fl->runs[i][k] = (drv_run_obs){
                NOW - 300 + k * 10 + i, scale * recorded_ok[(seed >> 16) % 13], (k + i) % 10 == 0};
        }
        for (int k = 0; k < BEATS; k++) {
            seed = seed * 1103515245u + 12345u;
            fl->beats[i][k] = 1.0f + (float)((int)((seed >> 16) % 81) - 40) / 1000.0f;
        }
        fl->w[i] = (drv_worker_window){.name = fl->names[i],
                                       .wclass = i < 4 ? 0 : 1,
                                       .runs = fl->runs[i],
                                       .n_runs = RUNS,
                                       .beats = fl->beats[i],
                                       .n_beats = BEATS,
                                       .losses = fl->losses[i],
                                       .n_losses = 0};
    }
    return fl;
}

static void detect(fleet *fl)
{
    drv_anomaly_assess(fl->w, WORKERS, NOW, fl->a);
    fl->nf = drv_anomaly_workers(fl->w, fl->a, WORKERS, fl->f, 64);
}

/* The evidence named name of finding f (fails the test when it is missing). */
static double ev(const drv_finding *f, const char *name)
{
    for (uint32_t i = 0; i < f->n_ev; i++)
        if (strcmp(f->ev[i].name, name) == 0)
            return f->ev[i].value;
    fail_msg("finding %s has no evidence \"%s\"", drv_anomaly_kind_name(f->kind), name);
    return NAN;
}

static void test_healthy_fleet_raises_nothing(void **state)
{
    (void)state;
    fleet *fl = healthy();
    detect(fl);
    assert_int_equal(fl->nf, 0);
    for (int i = 0; i < WORKERS; i++) {
        drv_score s;
        drv_anomaly_score(&fl->a[i], &s);
        assert_true(s.value >= 90);
        assert_true(fl->a[i].speed_ratio < 1.2 && fl->a[i].speed_ratio > 0.8);
    }
    free(fl);
}

static void test_slow_worker_flagged(void **state)
{
    (void)state;
    fleet *fl = healthy();
    /* w2 ran its last 5 tests 5x slower than its class predicts (the recording). */
    for (int k = 0; k < 5; k++)
        fl->runs[2][RUNS - 5 + k].ratio = recorded_slow[k];
    /* ...and the rest of its window as well: now a 5x worker all along. */
    for (int k = 0; k < RUNS - 5; k++)
        fl->runs[2][k].ratio = 5 * fl->runs[2][k].ratio;
    detect(fl);
    assert_int_equal(fl->nf, 1);
    const drv_finding *f = &fl->f[0];
    assert_int_equal(f->kind, DRV_ANOM_SLOW_WORKER);
    assert_int_equal(f->worker, 2);
    assert_int_equal(f->severity, DRV_ANOM_CRITICAL);
    assert_true(ev(f, "slower") > 4 && ev(f, "slower") < 6);
    assert_true(ev(f, "ratio") > 4);
    assert_true(fabs(ev(f, "class_ratio") - 0.96) < 0.05);
    assert_int_equal((int)ev(f, "tests"), RUNS);
    assert_non_null(strstr(f->summary, "w2 runs its tests"));
    drv_score s, other;
    drv_anomaly_score(&fl->a[2], &s);
    drv_anomaly_score(&fl->a[3], &other);
    assert_true(s.speed <= 25);
    assert_true(s.value < other.value - 30);
    /* The other class (twice as slow for every worker) stays clean. */
    for (int i = 4; i < WORKERS; i++)
        assert_true(fl->a[i].speed_ratio < 1.2);
    free(fl);
}

/* Only 2x slower: a warning; 1.5x: nothing. */
static void test_slow_thresholds(void **state)
{
    (void)state;
    fleet *fl = healthy();
    for (int k = 0; k < RUNS; k++)
        fl->runs[5][k].ratio *= 2.5f;
    for (int k = 0; k < RUNS; k++)
        fl->runs[1][k].ratio *= 1.5f;
    detect(fl);
    assert_int_equal(fl->nf, 1);
    assert_int_equal(fl->f[0].worker, 5);
    assert_int_equal(fl->f[0].severity, DRV_ANOM_WARNING);
    free(fl);
}

/* A slow run long ago (outside the window) no longer counts; with fewer than three
 * results in the window nothing is judged. */
static void test_slow_window(void **state)
{
    (void)state;
    fleet *fl = healthy();
    for (int k = 0; k < RUNS; k++) {
        fl->runs[0][k].ratio *= 5;
        fl->runs[0][k].t = NOW - 2000 + k; /* all older than the window */
    }
    fl->runs[0][RUNS - 1].t = NOW - 5; /* one recent: too few */
    detect(fl);
    assert_int_equal(fl->nf, 0);
    assert_int_equal(fl->a[0].tests, 1);
    free(fl);
}

/* Recorded `true` runs (a few ms each, as tests/e2e/dashboard.sh's suite measured them):
 * the class predicts 5 ms; w0 took 16.5 ms (3.3x), the others 4-6 ms. */
static const double recorded_true_s[] = {0.0049, 0.0052, 0.0047, 0.0061, 0.0044, 0.0055, 0.0050};

/* Runs too short to measure count as equal: w0's 3.3x on `true` is no slow_worker (it
 * was with the raw ratio); a run of 1 s against 50 ms predicted still is. */
static void test_slow_ignores_runs_too_short(void **state)
{
    (void)state;
    fleet *fl = healthy();
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < RUNS; k++) {
            double measured = i == 0 ? 0.0165 : recorded_true_s[(k + i) % 7];
            fl->runs[i][k].ratio = (float)(measured / 0.005); /* raw, as before */
        }
    detect(fl);
    assert_int_equal(fl->nf, 1); /* the false flag the floor removes */
    assert_int_equal(fl->f[0].kind, DRV_ANOM_SLOW_WORKER);
    assert_int_equal(fl->f[0].worker, 0);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < RUNS; k++) {
            double measured = i == 0 ? 0.0165 : recorded_true_s[(k + i) % 7];
            fl->runs[i][k].ratio = drv_anomaly_run_ratio(measured, 0.005);
        }
    detect(fl);
    assert_int_equal(fl->nf, 0);
    assert_true(fl->a[0].ratio == 1.0 && fl->a[0].speed_ratio == 1.0);

    /* Above the floor the ratio is the measured one: 1 s for 50 ms predicted is 5x. */
    assert_true(fabs(drv_anomaly_run_ratio(1.0, 0.05) - 5.0f) < 1e-5);
    assert_true(fabs(drv_anomaly_run_ratio(0.15, 0.6) - 0.2 / 0.6) < 1e-5); /* floored */
    assert_true(drv_anomaly_run_ratio(0.19, 0.01) == 1.0f);
    assert_true(drv_anomaly_run_ratio(0, 1) == 0 && drv_anomaly_run_ratio(1, 0) == 0);
    for (int k = 0; k < RUNS; k++)
        fl->runs[0][k].ratio = drv_anomaly_run_ratio(1.0, 0.05);
    detect(fl);
    assert_int_equal(fl->nf, 1);
    assert_int_equal(fl->f[0].worker, 0);
    assert_int_equal(fl->f[0].severity, DRV_ANOM_CRITICAL);
    free(fl);
}

static void test_failing_worker_flagged(void **state)
{
    (void)state;
    fleet *fl = healthy();
    /* Everyone passes; w6 failed 19 of 19. */
    for (int i = 0; i < WORKERS; i++)
        for (int k = 0; k < RUNS; k++)
            fl->runs[i][k].failed = false;
    fl->w[6].n_runs = 19;
    for (int k = 0; k < 19; k++)
        fl->runs[6][k].failed = true;
    detect(fl);
    assert_int_equal(fl->nf, 1);
    const drv_finding *f = &fl->f[0];
    assert_int_equal(f->kind, DRV_ANOM_FAILURE_RATE);
    assert_int_equal(f->worker, 6);
    assert_int_equal(f->severity, DRV_ANOM_CRITICAL);
    assert_int_equal((int)ev(f, "failed"), 19);
    assert_int_equal((int)ev(f, "tests"), 19);
    assert_true(ev(f, "rate") == 1.0);
    assert_true(ev(f, "fleet_rate") == 0.0);
    assert_non_null(strstr(f->summary, "failed 19 of its last 19"));
    drv_score s;
    drv_anomaly_score(&fl->a[6], &s);
    assert_int_equal(s.reliability, 0);
    assert_true(s.value <= 70);
    free(fl);
}

/* A suite that fails everywhere is not one worker's fault. */
static void test_fleet_wide_failures_not_flagged(void **state)
{
    (void)state;
    fleet *fl = healthy();
    for (int i = 0; i < WORKERS; i++)
        for (int k = 0; k < RUNS; k++)
            fl->runs[i][k].failed = k % 3 != 0;
    detect(fl);
    assert_int_equal(fl->nf, 0);
    free(fl);
}

static void test_heartbeat_jitter(void **state)
{
    (void)state;
    fleet *fl = healthy();
    fl->beats[3][BEATS - 4] = 4.5f;    /* one long gap */
    for (int k = 0; k < BEATS; k += 2) /* and a spread */
        fl->beats[7][k] = 2.2f;
    detect(fl);
    assert_int_equal(fl->nf, 2);
    assert_int_equal(fl->f[0].kind, DRV_ANOM_HEARTBEAT_JITTER);
    assert_int_equal(fl->f[0].worker, 3);
    assert_true(ev(&fl->f[0], "max_s") == 4.5);
    assert_true(fabs(ev(&fl->f[0], "median_s") - 1.0) < 0.05);
    assert_int_equal(fl->f[1].worker, 7);
    assert_true(fl->a[7].jitter);
    drv_score s;
    drv_anomaly_score(&fl->a[3], &s);
    assert_int_equal(s.stability, 75);
    free(fl);
}

static void test_flapping(void **state)
{
    (void)state;
    fleet *fl = healthy();
    double l4[] = {NOW - 500, NOW - 300, NOW - 100};
    memcpy(fl->losses[4], l4, sizeof l4);
    fl->w[4].n_losses = 3;
    double l5[] = {NOW - 5000, NOW - 4000, NOW - 30}; /* two outside the window */
    memcpy(fl->losses[5], l5, sizeof l5);
    fl->w[5].n_losses = 3;
    detect(fl);
    assert_int_equal(fl->nf, 1);
    assert_int_equal(fl->f[0].kind, DRV_ANOM_FLAPPING);
    assert_int_equal(fl->f[0].worker, 4);
    assert_int_equal((int)ev(&fl->f[0], "losses"), 3);
    drv_score s;
    drv_anomaly_score(&fl->a[4], &s);
    assert_int_equal(s.stability, 25);
    drv_anomaly_score(&fl->a[5], &s);
    assert_int_equal(s.stability, 75);
    free(fl);
}

/* The queue: draining (placements move) is fine, as is a queue with no free slot; a
 * queue with free slots and no placement for 10 s is stalled. */
static void test_queue_stalled(void **state)
{
    (void)state;
    drv_queue_obs q[40];
    for (int i = 0; i < 40; i++)
        q[i] = (drv_queue_obs){1000 + i, (uint64_t)(500 - 10 * i), 4, (uint64_t)(10 * i)};
    drv_finding f;
    assert_false(drv_anomaly_queue(q, 40, &f));
    for (int i = 0; i < 40; i++)
        q[i] = (drv_queue_obs){1000 + i, 300, 0, 50};
    assert_false(drv_anomaly_queue(q, 40, &f)); /* busy fleet, not a stall */
    for (int i = 25; i < 40; i++)
        q[i].free_slots = 6;
    assert_true(drv_anomaly_queue(q, 40, &f));
    assert_int_equal(f.kind, DRV_ANOM_QUEUE_STALLED);
    assert_int_equal(f.worker, UINT32_MAX);
    assert_int_equal(f.severity, DRV_ANOM_WARNING);
    assert_true(ev(&f, "stalled_s") == 14);
    assert_true(ev(&f, "queued") == 300 && ev(&f, "free_slots") == 6);
    for (int i = 0; i < 40; i++)
        q[i] = (drv_queue_obs){1000 + i, 0, 6, 50}; /* empty queue */
    assert_false(drv_anomaly_queue(q, 40, &f));
    assert_false(drv_anomaly_queue(q, 0, &f));
}

/* The queue's free slots as the sampler counts them (coordinator/sampler.c): slots
 * neither running nor promised of workers taking work whose class meets the
 * requirements of a queued test (drv_balancer_worker_runs_queued); with any_worker,
 * of every worker taking work (the definition before: any free slot). */
static uint64_t free_slots(const drv_balancer *b, bool any_worker)
{
    uint64_t n = 0;
    for (drv_wref w = 0; w < drv_balancer_worker_refs(b); w++) {
        const drv_worker *k = drv_balancer_worker(b, w);
        double run, sl, held = k->running + k->assigned;
        drv_worker_busy_slots(k, &run, &sl);
        if (k->health == DRV_HEALTH_OK && held < sl &&
            (any_worker || drv_balancer_worker_runs_queued(b, w)))
            n += (uint64_t)(sl - held);
    }
    return n;
}

/* Records 40 s of the queue a second at a time, as the sampler does (nothing is placed
 * meanwhile), with the free slots counted one way or the other. */
static void record_queue(const drv_balancer *b, double t0, bool any_worker, drv_queue_obs *q)
{
    drv_balancer_stats st;
    drv_balancer_stats_get(b, &st);
    for (int i = 0; i < 40; i++)
        q[i] = (drv_queue_obs){t0 + i, st.queued, free_slots(b, any_worker), st.placed};
}

/* A queue of cuda tests behind the one busy cuda worker, with two idle CPU workers: not
 * a stall (they cannot run what waits), though any free slot would have raised one. A
 * second cuda worker, idle while nothing is placed for 40 s: a stall. */
static void test_queue_stalled_only_where_it_could_run(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    double now = 1000;
    fx_cpu_worker(&f, "cpu-1", 4, now);
    fx_cpu_worker(&f, "cpu-2", 4, now);
    fx_worker(&f, "gpu-1", fx_gpu_caps(&f, 8, 1, 16, NULL), 1, 1, now);
    drv_requirements cuda = fx_req(&f, "cuda", NULL, NULL);
    for (uint64_t id = 1; id <= 20; id++)
        fx_submit_spec(&f, &(fx_test){.id = id, .req = &cuda}, now);
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&f, now, d), 1); /* on gpu-1; 19 wait */
    assert_int_equal(d[0].worker, (drv_wref)drv_balancer_worker_find(f.b, "gpu-1"));

    drv_queue_obs q[40];
    drv_finding fd;
    record_queue(f.b, now + 1, false, q);
    assert_true(q[39].queued == 19 && q[39].free_slots == 0);
    assert_false(drv_anomaly_queue(q, 40, &fd));
    record_queue(f.b, now + 1, true, q); /* any free slot: the false alarm */
    assert_true(q[39].free_slots == 8);
    assert_true(drv_anomaly_queue(q, 40, &fd));

    fx_worker(&f, "gpu-2", fx_gpu_caps(&f, 8, 1, 16, NULL), 1, 1, now + 41);
    record_queue(f.b, now + 41, false, q);
    assert_true(q[39].free_slots == 1);
    assert_true(drv_anomaly_queue(q, 40, &fd));
    assert_int_equal(fd.kind, DRV_ANOM_QUEUE_STALLED);
    assert_true(ev(&fd, "queued") == 19 && ev(&fd, "free_slots") == 1);
    fx_close(&f);
}

/* A worker alone in its class has nothing to be compared with. */
static void test_alone_in_class(void **state)
{
    (void)state;
    fleet *fl = healthy();
    fl->w[0].wclass = 9;
    for (int k = 0; k < RUNS; k++)
        fl->runs[0][k].ratio = 1.0f;
    detect(fl);
    assert_int_equal(fl->nf, 0);
    assert_true(fl->a[0].class_ratio == 1.0);
    free(fl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthy_fleet_raises_nothing),
        cmocka_unit_test(test_slow_worker_flagged),
        cmocka_unit_test(test_slow_thresholds),
        cmocka_unit_test(test_slow_window),
        cmocka_unit_test(test_slow_ignores_runs_too_short),
        cmocka_unit_test(test_failing_worker_flagged),
        cmocka_unit_test(test_fleet_wide_failures_not_flagged),
        cmocka_unit_test(test_heartbeat_jitter),
        cmocka_unit_test(test_flapping),
        cmocka_unit_test(test_queue_stalled),
        cmocka_unit_test(test_queue_stalled_only_where_it_could_run),
        cmocka_unit_test(test_alone_in_class),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
