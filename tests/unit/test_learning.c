/* test_learning.c - what the balancer learned of its fleet outlives the process (class
 * speeds by a key of the class's tag names, a worker's pace by its name), and a worker
 * slower than its class is scored as itself. A "restart" is a second balancer and
 * predictor fed what the first exported, with workers joining in another order. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "balancer_fixture.h"

/* What one process exported: the predictor's tests and the balancer's facts. */
typedef struct saved {
    drv_learned_test tests[32];
    size_t n_tests;
    drv_learned_fact facts[64];
    size_t n_facts;
} saved;

static void keep_test(void *ctx, const drv_learned_test *t)
{
    saved *s = ctx;
    assert_true(s->n_tests < 32);
    s->tests[s->n_tests++] = *t;
}

static void keep_fact(void *ctx, const drv_learned_fact *f)
{
    saved *s = ctx;
    assert_true(s->n_facts < 64);
    s->facts[s->n_facts++] = *f;
}

static void save(fx *f, saved *s)
{
    memset(s, 0, sizeof *s);
    drv_predictor_export_tests(f->pred, false, keep_test, s);
    drv_balancer_export_learned(f->b, keep_fact, s);
}

/* A new process: a predictor and a balancer that know what s holds (or nothing). */
static void restart(fx *f, const saved *s)
{
    fx_close(f);
    fx_open_pred(f);
    fx_start(f);
    for (size_t i = 0; s && i < s->n_tests; i++)
        drv_predictor_import_test(f->pred, &s->tests[i]);
    for (size_t i = 0; s && i < s->n_facts; i++)
        assert_int_equal(drv_balancer_import_learned(f->b, &s->facts[i]), 0);
}

/* Places test `name` (requirements req, may be NULL), runs it for duration_s; returns
 * the worker it ran on. */
static drv_wref run_named(fx *f, const char *name, uint64_t id, const drv_requirements *req,
                          double *now, double duration_s)
{
    fx_test t = {.id = id, .name = name, .req = req};
    drv_tref ref = fx_submit_spec(f, &t, *now);
    drv_wref w = fx_place_one(f, *now);
    fx_run(f, ref, *now, fx_exit(0, duration_s));
    *now += duration_s;
    return w;
}

/* The slow kind of worker registers first in the new process (tags interned in another
 * order, classes numbered anew): a balancer that forgot the kinds' speeds sends the
 * long test there (ties go to the lower index); one that kept them does not. */
static void test_class_speeds_come_back_after_a_restart(void **state)
{
    (void)state;
    fx f;
    fx_open_pred(&f);
    fx_start(&f);
    drv_wref fast = fx_worker(&f, "fast", fx_cpu_caps(&f, 8, 32, "fastbox"), 1, 0, 0);
    drv_wref slow = fx_worker(&f, "slow", fx_cpu_caps(&f, 8, 32, "slowbox"), 1, 0, 0);
    drv_requirements on_fast = fx_req(&f, "fastbox", NULL, NULL);
    drv_requirements on_slow = fx_req(&f, "slowbox", NULL, NULL);
    double now = 0;
    /* "long" ran on both kinds: 2 s on the fast one, 8 s on the slow one. */
    assert_int_equal(run_named(&f, "long", 1, &on_fast, &now, 2), fast);
    assert_int_equal(run_named(&f, "long", 2, &on_slow, &now, 8), slow);
    drv_tref probe = fx_submit(&f, 3, now);
    drv_prediction on_slow_before = drv_balancer_predict(f.b, probe, slow);
    saved s;
    save(&f, &s);
    assert_true(s.n_facts >= 1);

    for (int keep = 0; keep < 2; keep++) {
        restart(&f, keep ? &s : NULL);
        slow = fx_worker(&f, "slow", fx_cpu_caps(&f, 8, 32, "slowbox"), 1, 0, 0);
        fast = fx_worker(&f, "fast", fx_cpu_caps(&f, 8, 32, "fastbox"), 1, 0, 0);
        fx_test t = {.id = 10, .name = "long"};
        drv_tref ref = fx_submit_spec(&f, &t, 0);
        drv_wref got = fx_place_one(&f, 0);
        if (!keep) {
            assert_int_equal(got, slow); /* what the restart forgot */
            continue;
        }
        assert_int_equal(got, fast);
        /* The kinds' speeds are back: the slow one is predicted 4x slower. */
        drv_prediction p_fast = drv_balancer_predict(f.b, ref, fast);
        drv_prediction p_slow = drv_balancer_predict(f.b, ref, slow);
        assert_true(fabs(p_fast.mean_s - 2) < 0.01);
        assert_true(fabs(p_slow.mean_s - 8) < 0.01);
        (void)on_slow_before;
    }
    /* For the worker detail (speed_by_family): each worker's class speed for the
     * family, 4x apart; no affinity slot held; out of range: nothing known. */
    double cs_fast, cs_slow, aff;
    drv_balancer_family_learned(f.b, fast, 0, &cs_fast, &aff);
    drv_balancer_family_learned(f.b, slow, 0, &cs_slow, &aff);
    assert_true(fabs(cs_fast / cs_slow - 4) < 0.05);
    assert_true(aff < 0);
    drv_balancer_family_learned(f.b, 999, 0, &cs_fast, &aff);
    assert_true(cs_fast == 1 && aff < 0);
    assert_int_equal(drv_balancer_task_family(f.b, probe), 0);
    /* A second export writes the same facts (nothing was forgotten on the way). */
    saved again;
    save(&f, &again);
    assert_int_equal(again.n_facts, s.n_facts);
    fx_close(&f);
}

/* Affinity is the affinity policy's state, kept through its learned_export and
 * learned_import hooks: a worker that ran a family's test well holds a slot of the
 * family's row after a restart in which it joined second (its index changed); the worker
 * that never ran it holds none. A second export writes the same facts. */
static void test_affinity_comes_back_through_its_policy(void **state)
{
    (void)state;
    fx f;
    fx_open_pred(&f);
    fx_start(&f);
    drv_wref a = fx_worker(&f, "a", fx_cpu_caps(&f, 8, 32, NULL), 1, 0, 0);
    double now = 0;
    fx_test t = {.id = 1, .name = "vision", .model_id = "google/vit-base-patch16-224"};
    drv_tref ref = fx_submit_spec(&f, &t, now);
    int family = drv_balancer_task_family(f.b, ref);
    assert_true(family > 0);
    assert_int_equal(fx_place_one(&f, now), a);
    fx_run(&f, ref, now, fx_exit(0, 1));
    double cs, aff;
    drv_balancer_family_learned(f.b, a, family, &cs, &aff);
    assert_true(aff > 0);
    saved s;
    save(&f, &s);
    bool exported = false;
    for (size_t i = 0; i < s.n_facts; i++)
        exported |= s.facts[i].kind == DRV_LEARNED_WORKER_AFFINITY && s.facts[i].family == family;
    assert_true(exported);

    restart(&f, &s);
    drv_wref b = fx_worker(&f, "b", fx_cpu_caps(&f, 8, 32, NULL), 1, 0, 0);
    a = fx_worker(&f, "a", fx_cpu_caps(&f, 8, 32, NULL), 1, 0, 0);
    double aff_a, aff_b;
    drv_balancer_family_learned(f.b, a, family, &cs, &aff_a);
    drv_balancer_family_learned(f.b, b, family, &cs, &aff_b);
    assert_true(fabs(aff_a - aff) < 1e-6);
    assert_true(aff_b < 0);
    saved again;
    save(&f, &again);
    assert_int_equal(again.n_facts, s.n_facts);
    fx_close(&f);
}

/* Two workers of one class, one of them 4x slower: after a few runs each, the slower
 * one is predicted slower and a test both could take goes to the faster one, although
 * the slower one has the lower index. A restart keeps it (by the worker's name). */
static void test_a_worker_slower_than_its_class_is_scored_as_itself(void **state)
{
    (void)state;
    fx f;
    fx_open_pred(&f);
    fx_start(&f);
    drv_wref a = fx_cpu_worker(&f, "a", 1, 0);
    drv_wref b = fx_cpu_worker(&f, "b", 1, 0);
    assert_int_equal(drv_balancer_worker(f.b, a)->wclass, drv_balancer_worker(f.b, b)->wclass);
    double now = 0;
    uint64_t id = 1;
    for (int round = 0; round < 6; round++) {
        fx_test t1 = {.id = id++, .name = "k"}, t2 = {.id = id++, .name = "k"};
        drv_tref r1 = fx_submit_spec(&f, &t1, now), r2 = fx_submit_spec(&f, &t2, now);
        drv_decision d[FX_MAX_DECISIONS];
        assert_int_equal(fx_place(&f, now, d), 2);
        drv_tref on_a = d[0].worker == a ? d[0].task : d[1].task;
        drv_tref on_b = on_a == r1 ? r2 : r1;
        drv_result slow = fx_exit(0, 4), fast = fx_exit(0, 1);
        assert_int_equal(drv_balancer_started(f.b, on_a, now), 0);
        assert_int_equal(drv_balancer_started(f.b, on_b, now), 0);
        assert_int_equal(drv_balancer_finished(f.b, on_b, now + 1, &fast, NULL), 0);
        assert_int_equal(drv_balancer_finished(f.b, on_a, now + 4, &slow, NULL), 0);
        now += 4;
    }
    fx_test t = {.id = id++, .name = "k"};
    drv_tref ref = fx_submit_spec(&f, &t, now);
    double pa = drv_balancer_predict(f.b, ref, a).mean_s,
           pb = drv_balancer_predict(f.b, ref, b).mean_s;
    if (!(pa > 2.5 * pb))
        fail_msg("a is 4x slower than b, predicted %.2f s against %.2f s", pa, pb);
    assert_int_equal(fx_place_one(&f, now), b);

    saved s;
    save(&f, &s);
    restart(&f, &s);
    a = fx_cpu_worker(&f, "a", 1, 0);
    b = fx_cpu_worker(&f, "b", 1, 0);
    ref = fx_submit_spec(&f, &t, 0);
    pa = drv_balancer_predict(f.b, ref, a).mean_s;
    pb = drv_balancer_predict(f.b, ref, b).mean_s;
    if (!(pa > 2.5 * pb))
        fail_msg("after the restart: a predicted %.2f s against b's %.2f s", pa, pb);
    assert_int_equal(fx_place_one(&f, 0), b);
    fx_close(&f);
}

/* Facts that cannot be right are refused and change nothing. */
static void test_bad_facts_are_refused(void **state)
{
    (void)state;
    fx f;
    fx_open_pred(&f);
    fx_start(&f);
    static const drv_learned_fact bad[] = {
        {.kind = 0, .key = 1, .family = 0, .value = 1},
        {.kind = 99, .key = 1, .family = 0, .value = 1},
        {.kind = DRV_LEARNED_CLASS_SPEED, .key = 1, .family = 64, .value = 1},
        {.kind = DRV_LEARNED_CLASS_SPEED, .key = 1, .family = 0, .value = 0},
        {.kind = DRV_LEARNED_CLASS_SPEED, .key = 1, .family = 0, .value = NAN},
        {.kind = DRV_LEARNED_CLASS_AFFINITY, .key = 1, .family = 3, .value = 1.5},
        {.kind = DRV_LEARNED_WORKER_AFFINITY, .key = 1, .family = 0, .value = 0.5},
        {.kind = DRV_LEARNED_WORKER_PACE, .key = 1, .family = 2, .value = 0},
        {.kind = DRV_LEARNED_WORKER_PACE, .key = 1, .family = -1, .value = 50},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(drv_balancer_import_learned(f.b, &bad[i]), -1);
    saved s;
    save(&f, &s);
    assert_int_equal(s.n_facts, 0);
    fx_close(&f);
}

/* settings.backend_speed_prior: before anything ran, a bert test (cuda first in its
 * family's back-ends) is predicted 1.5 x faster on a CUDA machine than on a CPU machine
 * of the same configured speed, and a test of no family the same on both; with the
 * setting off (the default) the two machines tie. */
static void test_backend_speed_prior(void **state)
{
    (void)state;
    for (int on = 0; on < 2; on++) {
        fx f;
        fx_open_pred(&f);
        assert_false(f.cfg.settings.backend_speed_prior);
        f.cfg.settings.backend_speed_prior = on;
        fx_start(&f);
        drv_wref cpu = fx_worker(&f, "cpu", fx_cpu_caps(&f, 8, 32, NULL), 1, 0, 0);
        drv_wref gpu = fx_worker(&f, "gpu", fx_gpu_caps(&f, 8, 1, 16, NULL), 1, 0, 0);
        fx_test bert = {.id = 1, .model_id = "bert-base-uncased"};
        fx_test plain = {.id = 2, .name = "plain"};
        drv_tref tb = fx_submit_spec(&f, &bert, 0), tp = fx_submit_spec(&f, &plain, 0);
        double ratio =
            drv_balancer_predict(f.b, tb, cpu).mean_s / drv_balancer_predict(f.b, tb, gpu).mean_s;
        if (fabs(ratio - (on ? 1.5 : 1.0)) > 1e-6)
            fail_msg("prior %s: bert on cpu / on cuda %g", on ? "on" : "off", ratio);
        assert_true(fabs(drv_balancer_predict(f.b, tp, cpu).mean_s -
                         drv_balancer_predict(f.b, tp, gpu).mean_s) < 1e-9);
        fx_close(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_class_speeds_come_back_after_a_restart),
        cmocka_unit_test(test_a_worker_slower_than_its_class_is_scored_as_itself),
        cmocka_unit_test(test_bad_facts_are_refused),
        cmocka_unit_test(test_affinity_comes_back_through_its_policy),
        cmocka_unit_test(test_backend_speed_prior),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
