/* test_predictor.c - learned durations: convergence, spread, fallback order, class
 * speeds, bad input, determinism and memory accounting. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/predictor.h"
#include "core/tags.h"

#define FAM       3
#define OTHER_FAM 5
#define FAST      1u /* worker classes */
#define SLOW      2u
#define THIRD     7u

/* A deterministic pseudo-random generator (xorshift64*), uniform in [0, 1). */
static double uniform(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

/* Approximately normal (sum of 4 uniforms), mean 0, standard deviation 1. */
static double normalish(uint64_t *s)
{
    double x = uniform(s) + uniform(s) + uniform(s) + uniform(s) - 2.0;
    return x * sqrt(3.0);
}

static void test_key_is_fnv1a(void **state)
{
    (void)state;
    /* Published FNV-1a 64 test vectors. */
    assert_true(drv_test_key("") == 0xcbf29ce484222325ULL);
    assert_true(drv_test_key("a") == 0xaf63dc4c8601ec8cULL);
    assert_true(drv_test_key("foobar") == 0x85944171f73967e8ULL);
    assert_true(drv_test_key(NULL) == drv_test_key(""));
    assert_true(drv_test_key("tests/test_bert.py::test_a") !=
                drv_test_key("tests/test_bert.py::test_b"));
}

static void test_new_rejects_bad_alpha(void **state)
{
    (void)state;
    const double bad[] = {0, -0.1, 1.01, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(drv_predictor_new(bad[i]));
    drv_predictor *p = drv_predictor_new(1.0);
    assert_non_null(p);
    drv_predictor_free(p);
    drv_predictor_free(NULL);
}

static void test_converges_on_noisy_durations(void **state)
{
    (void)state;
    static const double noise[] = {0.01, 0.03, 0.05};
    for (size_t r = 0; r < sizeof noise / sizeof noise[0]; r++) {
        drv_predictor *p = drv_predictor_new(0.3);
        uint64_t key = drv_test_key("test_vit.py::test_forward");
        uint64_t rng = 0x1234567 + r;
        drv_prediction pr;
        for (int i = 0; i < 40; i++) {
            drv_predictor_observe(p, key, FAM, DRV_TAG_CUDA, FAST,
                                  10.0 * (1 + noise[r] * normalish(&rng)));
        }
        pr = drv_predictor_predict(p, key, FAM, DRV_TAG_CUDA, FAST, 99);
        assert_int_equal(pr.source, DRV_PRED_TEST_CLASS);
        assert_int_equal(pr.samples, 40);
        assert_true(fabs(pr.mean_s - 10.0) < 0.5);
        /* The p90 sits above the mean by about 1.28 sigma. */
        double sigma = 10.0 * noise[r];
        assert_true(pr.high_s > pr.mean_s);
        assert_true(pr.high_s - pr.mean_s > 0.4 * 1.2816 * sigma);
        assert_true(pr.high_s - pr.mean_s < 2.5 * 1.2816 * sigma);
        drv_predictor_free(p);
    }
}

static void test_tracks_a_change(void **state)
{
    (void)state;
    drv_predictor *p = drv_predictor_new(0.3);
    uint64_t key = drv_test_key("t");
    for (int i = 0; i < 20; i++)
        drv_predictor_observe(p, key, FAM, DRV_TAG_CPU, FAST, 10);
    for (int i = 0; i < 20; i++)
        drv_predictor_observe(p, key, FAM, DRV_TAG_CPU, FAST, 20);
    drv_prediction pr = drv_predictor_predict(p, key, FAM, DRV_TAG_CPU, FAST, 1);
    assert_true(fabs(pr.mean_s - 20) < 0.1);
    drv_predictor_free(p);
}

static void test_high_quantile_tracks_spread(void **state)
{
    (void)state;
    drv_predictor *p = drv_predictor_new(0.3);
    uint64_t steady = drv_test_key("steady"), noisy = drv_test_key("noisy");
    uint64_t rng = 42;
    for (int i = 0; i < 60; i++) {
        drv_predictor_observe(p, steady, FAM, DRV_TAG_CPU, FAST, 10);
        drv_predictor_observe(p, noisy, FAM, DRV_TAG_CPU, FAST, 10 * (1 + 0.3 * normalish(&rng)));
    }
    drv_prediction s = drv_predictor_predict(p, steady, FAM, DRV_TAG_CPU, FAST, 1);
    drv_prediction n = drv_predictor_predict(p, noisy, FAM, DRV_TAG_CPU, FAST, 1);
    /* Constant durations: no spread, p90 = mean (never below it). */
    assert_true(s.high_s >= s.mean_s);
    assert_true(s.high_s - s.mean_s < 1e-9);
    assert_true(n.high_s - n.mean_s > 1.0);

    /* One sample: a spread of 25% of the mean. */
    uint64_t once = drv_test_key("once");
    drv_predictor_observe(p, once, FAM, DRV_TAG_CPU, FAST, 8);
    drv_prediction o = drv_predictor_predict(p, once, FAM, DRV_TAG_CPU, FAST, 1);
    assert_int_equal(o.samples, 1);
    assert_true(fabs(o.mean_s - 8) < 1e-9);
    assert_true(fabs(o.high_s - 8 * (1 + 1.2816 * 0.25)) < 1e-9);
    drv_predictor_free(p);
}

typedef struct fallback_row {
    const char *name;
    uint64_t key;
    int family;
    int backend;
    uint32_t wclass;
    drv_prediction_source want;
    double want_mean;
} fallback_row;

static void test_fallback_order(void **state)
{
    (void)state;
    drv_predictor *p = drv_predictor_new(1.0); /* alpha 1: the last sample is the mean */
    uint64_t known = drv_test_key("known"), other = drv_test_key("other"),
             unseen = drv_test_key("unseen");
    /* FAST is the reference class of FAM; SLOW runs FAM at half speed. */
    drv_predictor_observe(p, other, FAM, DRV_TAG_CUDA, FAST, 4);
    drv_predictor_observe(p, other, FAM, DRV_TAG_CUDA, SLOW, 8);
    drv_predictor_observe(p, known, FAM, DRV_TAG_CUDA, FAST, 6);

    const fallback_row rows[] = {
        {"same test, same class", known, FAM, DRV_TAG_CUDA, FAST, DRV_PRED_TEST_CLASS, 6},
        {"same test, other class, scaled", known, FAM, DRV_TAG_CUDA, SLOW, DRV_PRED_TEST, 12},
        {"same test, class of unknown speed", known, FAM, DRV_TAG_CUDA, THIRD, DRV_PRED_TEST, 6},
        {"unseen test, family on its back-end", unseen, FAM, DRV_TAG_CUDA, THIRD, DRV_PRED_FAMILY,
         6},
        {"unseen test, back-end never seen", unseen, FAM, DRV_TAG_ROCM, FAST, DRV_PRED_ESTIMATE,
         2.5},
        {"unseen test, family never seen", unseen, OTHER_FAM, DRV_TAG_CUDA, FAST, DRV_PRED_ESTIMATE,
         2.5},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_prediction pr = drv_predictor_predict(p, rows[i].key, rows[i].family, rows[i].backend,
                                                  rows[i].wclass, 2.5);
        print_message("%s: source %d mean %.3f\n", rows[i].name, (int)pr.source, pr.mean_s);
        assert_int_equal(pr.source, rows[i].want);
        assert_true(fabs(pr.mean_s - rows[i].want_mean) < 1e-9);
        assert_true(pr.high_s >= pr.mean_s);
        if (pr.source == DRV_PRED_ESTIMATE)
            assert_int_equal(pr.samples, 0);
        else
            assert_true(pr.samples > 0);
    }

    /* Reference predictions: the test, then the family's reference mean, then the
     * estimate. */
    drv_prediction r = drv_predictor_predict_reference(p, known, FAM, 2.5);
    assert_int_equal(r.source, DRV_PRED_TEST);
    assert_true(fabs(r.mean_s - 6) < 1e-9);
    r = drv_predictor_predict_reference(p, unseen, FAM, 2.5);
    assert_int_equal(r.source, DRV_PRED_FAMILY);
    r = drv_predictor_predict_reference(p, unseen, OTHER_FAM, 2.5);
    assert_int_equal(r.source, DRV_PRED_ESTIMATE);
    assert_true(r.mean_s == 2.5 && r.high_s > 2.5);

    /* A bad estimate gives 0, not a negative or NaN prediction. */
    r = drv_predictor_predict(p, unseen, OTHER_FAM, 0, FAST, NAN);
    assert_true(r.mean_s == 0 && r.high_s == 0);
    r = drv_predictor_predict(NULL, unseen, FAM, 0, FAST, 3);
    assert_int_equal(r.source, DRV_PRED_ESTIMATE);
    assert_true(r.mean_s == 3);
    drv_predictor_free(p);
}

/* A test with no history of its own and no informative family is predicted by the
 * caller's estimate: every test without a model id shares the "unknown" family (0), so
 * one earlier `true` must not make every new unknown test "about 0 s"; nor may a family
 * whose runs spread wider than their mean. */
static void test_uninformative_family_gives_estimate(void **state)
{
    (void)state;
    drv_predictor *p = drv_predictor_new(0.3);
    uint64_t unseen = drv_test_key("unknown/new");
    drv_predictor_observe(p, drv_test_key("unknown/true"), 0, DRV_TAG_CPU, FAST, 0.001);
    drv_prediction r = drv_predictor_predict(p, unseen, 0, DRV_TAG_CPU, FAST, 10);
    assert_int_equal(r.source, DRV_PRED_ESTIMATE);
    assert_true(r.mean_s == 10);
    r = drv_predictor_predict_reference(p, unseen, 0, 10);
    assert_int_equal(r.source, DRV_PRED_ESTIMATE);
    assert_true(r.mean_s == 10);

    /* A named family with a tight history does predict its new tests... */
    for (int i = 0; i < 4; i++)
        drv_predictor_observe(p, drv_test_key("fam/a") + (uint64_t)i, FAM, DRV_TAG_CPU, FAST, 2);
    r = drv_predictor_predict_reference(p, unseen, FAM, 10);
    assert_int_equal(r.source, DRV_PRED_FAMILY);
    assert_true(fabs(r.mean_s - 2) < 1e-9);
    /* ...one whose runs go from 1 ms to a minute does not. */
    drv_predictor_observe(p, drv_test_key("wide/a"), OTHER_FAM, DRV_TAG_CPU, FAST, 0.001);
    drv_predictor_observe(p, drv_test_key("wide/b"), OTHER_FAM, DRV_TAG_CPU, FAST, 60);
    drv_predictor_observe(p, drv_test_key("wide/c"), OTHER_FAM, DRV_TAG_CPU, FAST, 0.001);
    r = drv_predictor_predict(p, unseen, OTHER_FAM, DRV_TAG_CPU, FAST, 10);
    assert_int_equal(r.source, DRV_PRED_ESTIMATE);
    r = drv_predictor_predict_reference(p, unseen, OTHER_FAM, 10);
    assert_int_equal(r.source, DRV_PRED_ESTIMATE);
    drv_predictor_free(p);
}

/* Each of a family's tests runs on FAST and SLOW (SLOW factor times slower), with
 * noise; returns the predictor. `slow_first` starts every test on the slow class, so
 * the slow class is the family's reference. */
static drv_predictor *learn_two_classes(double factor, bool slow_first)
{
    drv_predictor *p = drv_predictor_new(0.3);
    uint64_t rng = 7;
    char name[32];
    for (int round = 0; round < 10; round++) {
        for (int t = 0; t < 20; t++) {
            snprintf(name, sizeof name, "t%d", t);
            double base = 2.0 + t; /* tests of different lengths */
            double d_fast = base * (1 + 0.02 * normalish(&rng));
            double d_slow = factor * base * (1 + 0.02 * normalish(&rng));
            uint64_t key = drv_test_key(name);
            if (slow_first) {
                drv_predictor_observe(p, key, FAM, DRV_TAG_CUDA, SLOW, d_slow);
                drv_predictor_observe(p, key, FAM, DRV_TAG_CUDA, FAST, d_fast);
            } else {
                drv_predictor_observe(p, key, FAM, DRV_TAG_CUDA, FAST, d_fast);
                drv_predictor_observe(p, key, FAM, DRV_TAG_CUDA, SLOW, d_slow);
            }
        }
    }
    return p;
}

static void test_class_speed_transfers(void **state)
{
    (void)state;
    for (int slow_first = 0; slow_first <= 1; slow_first++) {
        drv_predictor *p = learn_two_classes(2.0, slow_first);
        double ratio = drv_predictor_speed(p, FAM, FAST) / drv_predictor_speed(p, FAM, SLOW);
        print_message("slow_first %d: speed fast %.3f slow %.3f\n", slow_first,
                      drv_predictor_speed(p, FAM, FAST), drv_predictor_speed(p, FAM, SLOW));
        assert_true(fabs(ratio - 2.0) < 0.1);

        /* A new test seen only on the fast class is predicted ~2x on the slow one. */
        uint64_t key = drv_test_key("fast only");
        for (int i = 0; i < 5; i++)
            drv_predictor_observe(p, key, FAM, DRV_TAG_CUDA, FAST, 10);
        drv_prediction fast = drv_predictor_predict(p, key, FAM, DRV_TAG_CUDA, FAST, 1);
        drv_prediction slow = drv_predictor_predict(p, key, FAM, DRV_TAG_CUDA, SLOW, 1);
        assert_int_equal(fast.source, DRV_PRED_TEST_CLASS);
        assert_int_equal(slow.source, DRV_PRED_TEST);
        assert_true(fabs(slow.mean_s / fast.mean_s - 2.0) < 0.1);
        assert_true(slow.high_s >= slow.mean_s);

        /* And the other way round: seen only on the slow class, ~half on the fast. */
        uint64_t key2 = drv_test_key("slow only");
        for (int i = 0; i < 5; i++)
            drv_predictor_observe(p, key2, FAM, DRV_TAG_CUDA, SLOW, 30);
        fast = drv_predictor_predict(p, key2, FAM, DRV_TAG_CUDA, FAST, 1);
        assert_int_equal(fast.source, DRV_PRED_TEST);
        assert_true(fabs(fast.mean_s - 15) < 0.75);

        /* Speeds are per family: another family knows nothing yet. */
        assert_true(drv_predictor_speed(p, OTHER_FAM, SLOW) == 1.0);
        assert_true(drv_predictor_speed(p, FAM, 4000) == 1.0);
        assert_true(drv_predictor_speed(p, FAM, DRV_PREDICTOR_CLASSES_MAX + 5) == 1.0);
        /* Out-of-range families share family 0, they do not crash. */
        assert_true(drv_predictor_speed(p, -1, SLOW) == drv_predictor_speed(p, 0, SLOW));
        assert_true(drv_predictor_speed(p, 1000, SLOW) == drv_predictor_speed(p, 0, SLOW));
        drv_predictor_free(p);
    }
}

/* Paired evidence (pred, issue 10): a class's speed comes from tests that ran on two
 * classes, averaged over many. Constructed where the old estimator (a moving average of
 * reference / duration, weight 0.3) went wrong: the slow class is truly 3x slower; 20
 * tests ran on both classes, then one test hung on the slow class (30x its run on the
 * fast one) and the last five paired tests happened to be 30 % slower than 3x there
 * (the long tests finish last). The old average ended ~0.25 (4x slower: the hang alone
 * took it to 0.24, the last five kept it there); the average over the window stays
 * within 8 % of 1/3. A rerun on the class a test ran on last is no pair: it changes no
 * speed. */
static void test_speed_from_pairs_ignores_hang_and_recent(void **state)
{
    (void)state;
    drv_predictor *p = drv_predictor_new(0.3);
    char name[32];
    for (int i = 0; i < 26; i++) {
        snprintf(name, sizeof name, "paired %d", i);
        uint64_t key = drv_test_key(name);
        double d = 1.0 + 0.1 * (i % 7);
        drv_predictor_observe(p, key, FAM, DRV_TAG_CUDA, FAST, d);
        double slow = i == 20 ? 30 * d : i > 20 ? 3.9 * d : 3 * d;
        drv_predictor_observe(p, key, FAM, DRV_TAG_CUDA, SLOW, slow);
    }
    double sp = drv_predictor_speed(p, FAM, SLOW);
    print_message("slow class speed from 26 pairs (one hung, five slower): %.3f\n", sp);
    assert_true(fabs(sp * 3 - 1) < 0.08);

    /* Reruns on the slow class alone, however long, are not pairs. */
    uint64_t key = drv_test_key("slow only twice");
    drv_predictor_observe(p, key, FAM, DRV_TAG_CUDA, SLOW, 3);
    drv_predictor_observe(p, key, FAM, DRV_TAG_CUDA, SLOW, 30);
    assert_true(drv_predictor_speed(p, FAM, SLOW) == sp);
    /* Back on the fast class and again on the slow one: a pair against its last run. */
    drv_predictor_observe(p, key, FAM, DRV_TAG_CUDA, FAST, 1);
    drv_predictor_observe(p, key, FAM, DRV_TAG_CUDA, SLOW, 3);
    assert_true(drv_predictor_speed(p, FAM, SLOW) != sp);
    assert_true(fabs(drv_predictor_speed(p, FAM, SLOW) * 3 - 1) < 0.08);
    drv_predictor_free(p);
}

/* First runs only (no test runs twice): the anchor class (the first to report) gets
 * mostly short unit tests, the other class mostly long performance tests at half the
 * anchor's durations. Compared kind by kind, the other class is twice as fast; pooled
 * it would look slower. Too few samples leave the prior alone; more are shrunk toward the
 * prior (equal configured speeds) as if it were 28 pairs: many pairs decide. */
static void test_speed_from_first_runs_compares_kinds_apart(void **state)
{
    (void)state;
    drv_predictor *p = drv_predictor_new(0.3);
    drv_predictor_set_class_speed(p, FAST, 1.0);
    drv_predictor_set_class_speed(p, SLOW, 1.0);
    /* Pairs of durations with geometric means 4 s (unit, kind 0) and 120 s
     * (performance, kind 2) on the anchor; each class gets n pairs of one kind and 2
     * pairs of the other. */
    static const double unit_s[] = {2, 8}, perf_s[] = {60, 240};
    for (int i = 0; i < 26; i++) { /* SLOW reports first: it is the anchor */
        if (i < 22)
            drv_predictor_observe_first(p, FAM, 0, SLOW, unit_s[i % 2]);
        else
            drv_predictor_observe_first(p, FAM, 2, SLOW, perf_s[i % 2]);
    }
    assert_true(drv_predictor_speed(p, FAM, FAST) == 1.0);
    for (int i = 0; i < 26; i++) {
        bool all;
        if (i < 22)
            all = drv_predictor_observe_first(p, FAM, 2, FAST, perf_s[i % 2] / 2);
        else
            all = drv_predictor_observe_first(p, FAM, 0, FAST, unit_s[i % 2] / 2);
        assert_false(all); /* not the anchor: only FAST's speed moves */
        if (i == 5)
            assert_true(drv_predictor_speed(p, FAM, FAST) == 1.0); /* 4 pairs: too few */
    }
    print_message("speed fast %.3f slow %.3f\n", drv_predictor_speed(p, FAM, FAST),
                  drv_predictor_speed(p, FAM, SLOW));
    /* 8 pairs (4 of each kind) against the prior's 28: 8/36 of the way, in logs. */
    assert_true(fabs(drv_predictor_speed(p, FAM, FAST) - pow(2.0, 8.0 / 36)) < 1e-9);
    assert_true(drv_predictor_speed(p, FAM, SLOW) == 1.0); /* the anchor keeps its prior */
    /* 800 more pairs of unit tests on both: the data decide (2x within 4 %). */
    for (int i = 0; i < 800; i++) {
        drv_predictor_observe_first(p, FAM, 0, SLOW, unit_s[i % 2]);
        drv_predictor_observe_first(p, FAM, 0, FAST, unit_s[i % 2] / 2);
    }
    print_message("after 804 pairs: speed fast %.3f\n", drv_predictor_speed(p, FAM, FAST));
    assert_true(drv_predictor_speed(p, FAM, FAST) > 1.92 &&
                drv_predictor_speed(p, FAM, FAST) < 2.0);
    assert_true(drv_predictor_speed(p, OTHER_FAM, FAST) == 1.0);
    /* A sample on the anchor moves every class's estimate. */
    assert_true(drv_predictor_observe_first(p, FAM, 0, SLOW, 4));
    /* Bad input is ignored. */
    assert_false(drv_predictor_observe_first(p, FAM, 3, FAST, 1));
    assert_false(drv_predictor_observe_first(p, FAM, 0, FAST, -1));
    assert_false(drv_predictor_observe_first(NULL, FAM, 0, FAST, 1));
    drv_predictor_free(p);
}

static void test_class_of_unknown_speed_does_not_poison(void **state)
{
    (void)state;
    /* A third class, 4x slower, first sees tests that never ran elsewhere: their
     * references are not calibrated, so they must not teach it a speed of 1. */
    drv_predictor *p = learn_two_classes(2.0, false);
    char name[32];
    for (int t = 0; t < 10; t++) {
        snprintf(name, sizeof name, "third-only-%d", t);
        drv_predictor_observe(p, drv_test_key(name), FAM, DRV_TAG_CUDA, THIRD, 40);
        drv_predictor_observe(p, drv_test_key(name), FAM, DRV_TAG_CUDA, THIRD, 40);
    }
    assert_true(drv_predictor_speed(p, FAM, THIRD) == 1.0);
    /* Shared tests then teach it its real speed (0.25 of the reference). */
    for (int round = 0; round < 5; round++) {
        for (int t = 0; t < 20; t++) {
            snprintf(name, sizeof name, "t%d", t);
            drv_predictor_observe(p, drv_test_key(name), FAM, DRV_TAG_CUDA, THIRD, 4.0 * (2.0 + t));
        }
    }
    double s = drv_predictor_speed(p, FAM, THIRD) / drv_predictor_speed(p, FAM, FAST);
    assert_true(fabs(s - 0.25) < 0.02);
    /* Once a third-only test runs on the fast class its reference is recalibrated. */
    uint64_t key = drv_test_key("third-only-0");
    drv_predictor_observe(p, key, FAM, DRV_TAG_CUDA, FAST, 10);
    drv_prediction r = drv_predictor_predict_reference(p, key, FAM, 1);
    assert_true(fabs(r.mean_s - 10 * drv_predictor_speed(p, FAM, FAST)) < 1e-9);
    drv_predictor_free(p);
}

static void collect(void *ctx, const drv_learned_test *t)
{
    drv_learned_test *out = ctx;
    for (int i = 0; i < 4; i++)
        if (out[i].n == 0) {
            out[i] = *t;
            return;
        }
    fail_msg("more exported tests than expected");
}

/* What a coordinator keeps across a restart: per-test reference estimates, exported
 * (all, then only what changed) and imported into a new predictor, where they predict
 * until the test runs again on a class of known speed, which restarts them. */
static void test_export_import(void **state)
{
    (void)state;
    drv_predictor *p = drv_predictor_new(1.0);
    uint64_t a = drv_test_key("a"), b = drv_test_key("b");
    drv_predictor_observe(p, a, FAM, DRV_TAG_CUDA, FAST, 40);
    drv_predictor_observe(p, b, FAM, DRV_TAG_CUDA, FAST, 2);
    drv_learned_test got[4] = {{0}};
    assert_int_equal(drv_predictor_export_tests(p, true, collect, got), 2);
    memset(got, 0, sizeof got);
    assert_int_equal(drv_predictor_export_tests(p, true, collect, got), 0); /* nothing new */
    drv_predictor_observe(p, b, FAM, DRV_TAG_CUDA, FAST, 3);
    assert_int_equal(drv_predictor_export_tests(p, true, collect, got), 1);
    assert_true(got[0].key == b && fabs(got[0].mean_s - 3) < 1e-9 && got[0].n == 2);
    memset(got, 0, sizeof got);
    assert_int_equal(drv_predictor_export_tests(p, false, collect, got), 2);

    drv_predictor *q = drv_predictor_new(1.0);
    for (int i = 0; i < 2; i++)
        drv_predictor_import_test(q, &got[i]);
    drv_learned_test bad = {.key = drv_test_key("c"), .mean_s = -1, .n = 1};
    drv_predictor_import_test(q, &bad); /* not a duration: ignored */
    assert_int_equal(drv_predictor_tests(q), 2);
    drv_prediction pa = drv_predictor_predict(q, a, FAM, DRV_TAG_CUDA, FAST, 1);
    assert_int_equal(pa.source, DRV_PRED_TEST);
    assert_true(fabs(pa.mean_s - 40) < 1e-9);
    assert_true(drv_predictor_predict_reference(q, b, FAM, 1).mean_s > 2.9);
    /* An import never overrides what this predictor learned. */
    drv_predictor_observe(q, a, FAM, DRV_TAG_CUDA, FAST, 10);
    drv_learned_test old = {.key = a, .mean_s = 99, .var = 0, .n = 5};
    drv_predictor_import_test(q, &old);
    assert_true(fabs(drv_predictor_predict_reference(q, a, FAM, 1).mean_s - 10) < 1e-9);
    /* Imported ones are not changed, so not exported again until they are. */
    memset(got, 0, sizeof got);
    assert_int_equal(drv_predictor_export_tests(q, true, collect, got), 1);
    assert_true(got[0].key == a);
    drv_predictor_free(p);
    drv_predictor_free(q);
}

static void test_bad_durations_ignored(void **state)
{
    (void)state;
    drv_predictor *p = drv_predictor_new(0.3);
    uint64_t key = drv_test_key("t");
    const double bad[] = {0, -1, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        drv_predictor_observe(p, key, FAM, DRV_TAG_CPU, FAST, bad[i]);
    drv_predictor_observe(p, key, FAM, DRV_TAG_CPU, DRV_PREDICTOR_CLASSES_MAX, 5);
    assert_int_equal(drv_predictor_tests(p), 0);
    drv_prediction pr = drv_predictor_predict(p, key, FAM, DRV_TAG_CPU, FAST, 3);
    assert_int_equal(pr.source, DRV_PRED_ESTIMATE);

    drv_predictor_observe(p, key, FAM, DRV_TAG_CPU, FAST, 5);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        drv_predictor_observe(p, key, FAM, DRV_TAG_CPU, FAST, bad[i]);
    pr = drv_predictor_predict(p, key, FAM, DRV_TAG_CPU, FAST, 3);
    assert_int_equal(pr.source, DRV_PRED_TEST_CLASS);
    assert_int_equal(pr.samples, 1);
    assert_true(pr.mean_s == 5);
    drv_predictor_observe(NULL, key, FAM, DRV_TAG_CPU, FAST, 5); /* no crash */
    drv_predictor_free(p);
}

static void test_deterministic(void **state)
{
    (void)state;
    drv_predictor *a = learn_two_classes(3.0, false);
    drv_predictor *b = learn_two_classes(3.0, false);
    char name[32];
    for (int t = 0; t < 20; t++) {
        snprintf(name, sizeof name, "t%d", t);
        uint64_t key = drv_test_key(name);
        drv_prediction x = drv_predictor_predict(a, key, FAM, DRV_TAG_CUDA, SLOW, 1);
        drv_prediction y = drv_predictor_predict(b, key, FAM, DRV_TAG_CUDA, SLOW, 1);
        assert_memory_equal(&x.mean_s, &y.mean_s, sizeof x.mean_s);
        assert_memory_equal(&x.high_s, &y.high_s, sizeof x.high_s);
        assert_int_equal(x.samples, y.samples);
        assert_int_equal(x.source, y.source);
    }
    assert_true(drv_predictor_speed(a, FAM, SLOW) == drv_predictor_speed(b, FAM, SLOW));
    assert_int_equal(drv_predictor_bytes(a), drv_predictor_bytes(b));
    drv_predictor_free(a);
    drv_predictor_free(b);
}

static void test_many_tests_and_memory(void **state)
{
    (void)state;
    drv_predictor *p = drv_predictor_new(0.3);
    size_t empty = drv_predictor_bytes(p);
    assert_true(empty > 0);
    assert_int_equal(drv_predictor_tests(p), 0);
    char name[32];
    for (int t = 0; t < 20000; t++) {
        snprintf(name, sizeof name, "test-%d", t);
        drv_predictor_observe(p, drv_test_key(name), t % 8, DRV_TAG_CPU, (uint32_t)(t % 3),
                              1.0 + t % 17);
    }
    assert_int_equal(drv_predictor_tests(p), 20000);
    size_t bytes = drv_predictor_bytes(p);
    /* Grows with the tests, within a small multiple of ~80 bytes per (test, class). */
    assert_true(bytes > empty + 20000 * 40);
    assert_true(bytes < empty + 20000 * 400);
    /* Every test is still found with its own duration. */
    for (int t = 0; t < 20000; t += 997) {
        snprintf(name, sizeof name, "test-%d", t);
        drv_prediction pr =
            drv_predictor_predict(p, drv_test_key(name), t % 8, DRV_TAG_CPU, (uint32_t)(t % 3), 0);
        assert_int_equal(pr.source, DRV_PRED_TEST_CLASS);
        assert_true(pr.mean_s == 1.0 + t % 17);
    }
    /* A high class number grows the speed rows, and bytes accounts for them. */
    size_t before = drv_predictor_bytes(p);
    drv_predictor_observe(p, drv_test_key("test-1"), 1, DRV_TAG_CPU, DRV_PREDICTOR_CLASSES_MAX - 1,
                          2);
    assert_true(drv_predictor_bytes(p) > before);
    assert_int_equal(drv_predictor_bytes(NULL), 0);
    assert_int_equal(drv_predictor_tests(NULL), 0);
    drv_predictor_free(p);
}

/* A family's prior replaces the class speed for that family only, is no learned speed,
 * and gives way to the first paired sample. */
static void test_family_prior(void **state)
{
    (void)state;
    drv_predictor *p = drv_predictor_new(0.3);
    drv_predictor_set_class_speed(p, 1, 2.0);
    drv_predictor_set_family_prior(p, 1, 3, 3.0);
    assert_true(drv_predictor_speed(p, 3, 1) == 3.0);
    assert_true(drv_predictor_speed(p, 4, 1) == 2.0);
    double sp;
    uint32_t n;
    assert_false(drv_predictor_speed_learned(p, 3, 1, &sp, &n));
    drv_predictor_set_family_prior(p, 1, 3, 1000); /* outside [0.01, 100]: ignored */
    assert_true(drv_predictor_speed(p, 3, 1) == 3.0);
    /* "t" runs 4 s on class 0 (the family's anchor, speed 1), then 1 s on class 1: a
     * paired sample of speed 4 replaces the prior of 3. */
    drv_predictor_observe(p, drv_test_key("t"), 3, DRV_TAG_CPU, 0, 4);
    drv_predictor_observe(p, drv_test_key("t"), 3, DRV_TAG_CPU, 1, 1);
    assert_true(fabs(drv_predictor_speed(p, 3, 1) - 4.0) < 1e-9);
    assert_true(drv_predictor_speed_learned(p, 3, 1, &sp, &n) && n == 1);
    drv_predictor_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_is_fnv1a),
        cmocka_unit_test(test_new_rejects_bad_alpha),
        cmocka_unit_test(test_converges_on_noisy_durations),
        cmocka_unit_test(test_tracks_a_change),
        cmocka_unit_test(test_high_quantile_tracks_spread),
        cmocka_unit_test(test_fallback_order),
        cmocka_unit_test(test_uninformative_family_gives_estimate),
        cmocka_unit_test(test_class_speed_transfers),
        cmocka_unit_test(test_speed_from_first_runs_compares_kinds_apart),
        cmocka_unit_test(test_class_of_unknown_speed_does_not_poison),
        cmocka_unit_test(test_export_import),
        cmocka_unit_test(test_bad_durations_ignored),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_speed_from_pairs_ignores_hang_and_recent),
        cmocka_unit_test(test_many_tests_and_memory),
        cmocka_unit_test(test_family_prior),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
