/* test_balancer.c - the balancer as its users see it: which worker gets which test and
 * why. Requirement routing, unschedulable tests and the grace, the explanations of a
 * waiting test, makespan ordering, backpressure and prefetch, batch sizing, retries and
 * quarantine, work stealing without oscillation, cancel, determinism, worker removal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "balancer_fixture.h"
#include "core/analyzer.h"
#include "core/tags.h"

/* ---- requirement routing ---- */

static void test_cuda_tests_only_go_to_the_cuda_worker(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_wref cpu = fx_cpu_worker(&f, "cpu", 8, 0);
    drv_wref gpu = fx_worker(&f, "gpu", fx_gpu_caps(&f, 8, 2, 16, NULL), 2, 1, 0);
    drv_requirements cuda = fx_req(&f, "cuda", NULL, NULL);
    drv_tref t[4];
    for (uint64_t id = 1; id <= 4; id++)
        t[id - 1] = fx_submit_prio(&f, id, 100, &cuda, 0);
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&f, 0, d), 2); /* the GPU box has two slots; cpu has eight */
    for (int k = 0; k < 2; k++) {
        assert_int_equal(d[k].worker, gpu);
        assert_int_equal(drv_balancer_started(f.b, d[k].task, 0), 0);
    }
    assert_int_equal(drv_balancer_task_state(f.b, t[2]), DRV_TASK_QUEUED);
    assert_int_equal(drv_balancer_task_state(f.b, t[3]), DRV_TASK_QUEUED);
    assert_int_equal(fx_held(&f, cpu), 0);
    char why[512];
    assert_int_equal(drv_balancer_explain(f.b, t[2], 5, why, sizeof why), 0);
    assert_string_equal(why, "1 eligible worker, none can take it now: 1 busy (every slot "
                             "taken). 0 tests are ahead of it; waiting 5 s.");
    assert_int_equal(drv_balancer_explain(f.b, t[3], 5, why, sizeof why), 0);
    fx_assert_contains(why, "1 test is ahead of it");
    /* Tests without the requirement still flow to the CPU box meanwhile. */
    fx_submit(&f, 5, 1);
    assert_int_equal(fx_place_one(&f, 1), cpu);
    /* A freed GPU slot takes the next CUDA test. */
    drv_result ok = fx_exit(0, 3);
    assert_int_equal(drv_balancer_finished(f.b, d[0].task, 3, &ok, NULL), 0);
    assert_int_equal(fx_place_one(&f, 3), gpu);
    fx_close(&f);
}

/* suite2: a test rerun after its own failure prefers another worker than the one it
 * failed on, also within one class (two identical workers); with one worker left it
 * still reruns there. */
static void test_rerun_prefers_another_worker(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        fx f;
        fx_open(&f);
        fx_start(&f);
        drv_wref a = fx_cpu_worker(&f, "a", 1, 0);
        drv_wref b = round == 0 ? fx_cpu_worker(&f, "b", 1, 0) : DRV_REF_NONE;
        fx_test s = {.id = 1, .max_retries = 3, .retry_on_failure = true};
        drv_tref t = fx_submit_spec(&f, &s, 0);
        drv_wref first = fx_place_one(&f, 0);
        assert_int_equal(drv_balancer_started(f.b, t, 0), 0);
        if (round == 0) { /* the other worker is used last: by itself it would come next */
            drv_tref t2 = fx_submit(&f, 2, 0);
            assert_int_equal(fx_place_one(&f, 0), first == a ? b : a);
            drv_result ok = fx_exit(0, 0.5);
            assert_int_equal(drv_balancer_finished(f.b, t2, 0.5, &ok, NULL), 0);
        }
        drv_result bad = fx_exit(1, 1);
        drv_decision d;
        assert_int_equal(drv_balancer_finished(f.b, t, 1, &bad, &d), 0);
        assert_int_equal(d.kind, DRV_D_REQUEUED);
        drv_wref second = fx_place_one(&f, 1);
        if (round == 0)
            assert_int_equal(second, first == a ? b : a);
        else
            assert_int_equal(second, a);
        fx_close(&f);
    }
}

static void test_tag_sets_route_tests(void **state)
{
    (void)state;
    /* edge: webgpu on Edge; chrome: webgpu on Chromium; ff: Firefox only; cpu: nothing
     * special. Each row: the test's tag sets and the only workers that may get it. */
    static const struct {
        const char *all_of, *any_of, *none_of;
        const char *allowed; /* names, "," separated */
    } rows[] = {
        {"webgpu", NULL, "edge", "chrome"},
        {"webgpu", NULL, NULL, "edge,chrome"},
        {NULL, "chromium,firefox", NULL, "chrome,ff"},
        {NULL, NULL, "webgpu", "ff,cpu"},
        {"webgpu", "firefox,edge", NULL, "edge"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        fx f;
        fx_open(&f);
        fx_start(&f);
        const char *names[] = {"edge", "chrome", "ff", "cpu"};
        fx_worker(&f, "edge", fx_cpu_caps(&f, 8, 32, "webgpu,edge"), 8, 1, 0);
        fx_worker(&f, "chrome", fx_cpu_caps(&f, 8, 32, "webgpu,chromium"), 8, 1, 0);
        fx_worker(&f, "ff", fx_cpu_caps(&f, 8, 32, "firefox"), 8, 1, 0);
        fx_worker(&f, "cpu", fx_cpu_caps(&f, 8, 32, NULL), 8, 1, 0);
        drv_requirements r = fx_req(&f, rows[i].all_of, rows[i].any_of, rows[i].none_of);
        for (uint64_t id = 1; id <= 12; id++)
            fx_submit_prio(&f, id, 100, &r, 0);
        drv_decision d[FX_MAX_DECISIONS];
        size_t n = fx_place(&f, 0, d);
        assert_true(n > 0);
        bool used[4] = {false};
        for (size_t k = 0; k < n; k++) {
            const char *w = fx_wname(&f, d[k].worker);
            char list[64];
            snprintf(list, sizeof list, ",%s,", rows[i].allowed);
            char me[80];
            snprintf(me, sizeof me, ",%s,", w);
            if (!strstr(list, me))
                fail_msg("row %zu: test went to %s, allowed only %s", i, w, rows[i].allowed);
            used[d[k].worker] = true;
        }
        /* The allowed workers are used (12 tests, 8 slots each: every one fills up). */
        for (int k = 0; k < 4; k++) {
            char list[64], me[24];
            snprintf(list, sizeof list, ",%s,", rows[i].allowed);
            snprintf(me, sizeof me, ",%s,", names[k]);
            if (strstr(list, me) && !used[k])
                fail_msg("row %zu: allowed worker %s got nothing", i, names[k]);
        }
        fx_close(&f);
    }
}

/* ---- unschedulable ---- */

static void test_unschedulable_names_the_unmet_requirement(void **state)
{
    (void)state;
    static const struct {
        uint32_t gpus;
        uint64_t gpu_gib;
        const char *all_of, *none_of;
        drv_unmet unmet;
        const char *tag; /* the unmet tag's name, or NULL for -1 */
        const char *describe;
    } rows[] = {
        {1, 24, "cuda", NULL, DRV_UNMET_GPU_MEMORY, NULL,
         "test 1 unschedulable (no_eligible_worker): no worker in the fleet has a GPU with at "
         "least 24 GiB of memory"},
        {4, 0, NULL, NULL, DRV_UNMET_GPU_COUNT, NULL,
         "test 1 unschedulable (no_eligible_worker): no worker in the fleet has at least 4 GPUs"},
        {0, 0, "tpu", NULL, DRV_UNMET_TAG_MISSING, "tpu",
         "test 1 unschedulable (no_eligible_worker): no worker in the fleet has the tag tpu"},
        {0, 0, NULL, "cpu", DRV_UNMET_TAG_FORBIDDEN, "cpu",
         "test 1 unschedulable (no_eligible_worker): every worker in the fleet that could run "
         "it has the tag cpu, which it must not run with"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        fx f;
        fx_open(&f);
        fx_start(&f);
        fx_worker(&f, "g16", fx_gpu_caps(&f, 8, 2, 16, NULL), 4, 1, 0);
        fx_worker(&f, "g8", fx_gpu_caps(&f, 8, 1, 8, NULL), 4, 1, 0);
        fx_cpu_worker(&f, "cpu", 4, 0);
        drv_requirements r = fx_req(&f, rows[i].all_of, NULL, rows[i].none_of);
        r.gpu_count = rows[i].gpus;
        r.gpu_memory_mb = rows[i].gpu_gib * FX_GIB;
        drv_tref t = fx_submit_prio(&f, 1, 100, &r, 0);
        fx_submit(&f, 2, 0); /* an ordinary test in the same round is placed */
        drv_decision d[FX_MAX_DECISIONS];
        assert_int_equal(fx_place(&f, 0, d), 2);
        const drv_decision *u = d[0].task_id == 1 ? &d[0] : &d[1];
        const drv_decision *p = d[0].task_id == 1 ? &d[1] : &d[0];
        assert_int_equal(p->kind, DRV_D_PLACED);
        assert_int_equal(u->kind, DRV_D_FINAL);
        assert_int_equal(u->state, DRV_TASK_UNSCHEDULABLE);
        assert_int_equal(u->reason, DRV_R_NO_ELIGIBLE_WORKER);
        assert_int_equal(u->task, t);
        assert_int_equal(u->worker, DRV_REF_NONE);
        if (u->unmet != (int)rows[i].unmet)
            fail_msg("row %zu: unmet %d, want %d", i, u->unmet, (int)rows[i].unmet);
        assert_int_equal(u->unmet_tag, rows[i].tag ? drv_tag_lookup(f.tags, rows[i].tag) : -1);
        char buf[512];
        drv_decision_describe(f.b, u, buf, sizeof buf);
        assert_string_equal(buf, rows[i].describe);
        /* Final: the reference is released. */
        assert_int_equal(drv_balancer_cancel(f.b, t, 1, NULL), -1);
        drv_balancer_stats st;
        drv_balancer_stats_get(f.b, &st);
        assert_int_equal(st.unschedulable, 1);
        assert_int_equal(st.queued, 0);
        fx_close(&f);
    }
}

static void test_unschedulable_waits_for_the_grace(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    f.cfg.settings.unschedulable_grace_s = 60;
    fx_start(&f);
    fx_worker(&f, "g16", fx_gpu_caps(&f, 8, 1, 16, NULL), 4, 1, 0);
    drv_requirements big = fx_req(&f, "cuda", NULL, NULL);
    big.gpu_count = 1;
    big.gpu_memory_mb = 24 * FX_GIB;
    drv_tref t = fx_submit_prio(&f, 1, 100, &big, 0);
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&f, 0, d), 0);
    assert_int_equal(drv_balancer_task_state(f.b, t), DRV_TASK_QUEUED);
    char why[512];
    assert_int_equal(drv_balancer_explain(f.b, t, 0, why, sizeof why), 0);
    assert_string_equal(why, "No worker in the fleet has a GPU with at least 24 GiB of memory; it "
                             "cannot run anywhere and will be reported unschedulable in 60 s.");
    assert_int_equal(fx_place(&f, 45, d), 0);
    assert_int_equal(drv_balancer_explain(f.b, t, 45, why, sizeof why), 0);
    fx_assert_contains(why, "cannot run anywhere and will be reported unschedulable in 15 s");
    assert_int_equal(fx_place(&f, 59.9, d), 0);
    assert_int_equal(fx_place(&f, 60, d), 1);
    assert_int_equal(d[0].kind, DRV_D_FINAL);
    assert_int_equal(d[0].state, DRV_TASK_UNSCHEDULABLE);
    assert_int_equal(d[0].unmet, DRV_UNMET_GPU_MEMORY);
    fx_close(&f);
}

static void test_a_worker_joining_within_the_grace_takes_it(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    f.cfg.settings.unschedulable_grace_s = 60;
    fx_start(&f);
    fx_worker(&f, "g16", fx_gpu_caps(&f, 8, 1, 16, NULL), 4, 1, 0);
    drv_requirements big = fx_req(&f, "cuda", NULL, NULL);
    big.gpu_count = 1;
    big.gpu_memory_mb = 24 * FX_GIB;
    drv_tref t = fx_submit_prio(&f, 1, 100, &big, 0);
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&f, 0, d), 0);
    drv_wref g24 = fx_worker(&f, "g24", fx_gpu_caps(&f, 8, 1, 24, NULL), 4, 1, 30);
    assert_int_equal(fx_place(&f, 30, d), 1);
    assert_int_equal(d[0].kind, DRV_D_PLACED);
    assert_int_equal(d[0].worker, g24);
    assert_int_equal(drv_balancer_task_worker(f.b, t), g24);
    fx_close(&f);
}

static void test_losing_the_only_capable_worker_is_not_a_verdict(void **state)
{
    (void)state;
    /* Was a bug, fixed: when the only worker that can run a shape is lost (missed heartbeats, which
     * drv_balancer_worker_back() says may be undone "within the grace period"), the
     * shape's reachable count drops to 0 and the next drv_balancer_place() reports its
     * queued tests FINAL/UNSCHEDULABLE at once with the default grace of 0, naming as
     * unmet what the *remaining* classes lack ("no worker in the fleet has the tag cuda")
     * although a CUDA worker is known and may reconnect. placement.c
     * drv_balancer_place() / fleet.c shapes_reachable(): a LOST worker should keep its
     * classes' shapes schedulable (or the grace should run from the loss) until it is
     * removed. */
    /* With another test of the shape waiting (the shape is blocked) and without. */
    for (int waiting = 0; waiting < 2; waiting++) {
        fx f;
        fx_open(&f);
        fx_start(&f);
        fx_cpu_worker(&f, "cpu", 4, 0);
        drv_wref gpu = fx_worker(&f, "gpu", fx_gpu_caps(&f, 8, 1, 16, NULL), 1, 1, 0);
        drv_requirements cuda = fx_req(&f, "cuda", NULL, NULL);
        fx_test s = {.id = 1, .req = &cuda, .max_retries = 2};
        drv_tref t = fx_submit_spec(&f, &s, 0);
        drv_tref other = DRV_REF_NONE;
        if (waiting) {
            s.id = 2;
            other = fx_submit_spec(&f, &s, 0);
        }
        assert_int_equal(fx_place_one(&f, 0), gpu);
        assert_int_equal(drv_balancer_started(f.b, t, 0), 0);
        drv_decision d[FX_MAX_DECISIONS];
        assert_int_equal(drv_balancer_worker_lost(f.b, gpu, 5, d, FX_MAX_DECISIONS), 1);
        assert_int_equal(d[0].kind, DRV_D_REQUEUED);
        size_t n = fx_place(&f, 5, d);
        if (n != 0) {
            char buf[256];
            drv_decision_describe(f.b, &d[0], buf, sizeof buf);
            fail_msg("%s waiting: %s", waiting ? "one" : "none", buf);
        }
        assert_int_equal(drv_balancer_task_state(f.b, t), DRV_TASK_QUEUED);
        if (waiting)
            assert_int_equal(drv_balancer_task_state(f.b, other), DRV_TASK_QUEUED);
        drv_balancer_worker_back(f.b, gpu, 8);
        assert_int_equal(fx_place_one(&f, 8), gpu);
        fx_close(&f);
    }
}

static void test_removing_the_only_capable_worker_reports_waiting_tests(void **state)
{
    (void)state;
    /* The only CUDA worker is lost and then removed: nothing in the fleet can run the
     * CUDA tests any more, so they are reported unschedulable (grace 0), whether or not
     * other tests of the shape were waiting when it went.
     *
     * Was a bug, fixed: with a second CUDA test waiting, neither test is ever reported: they stay
     * QUEUED forever (explain even says "it cannot run anywhere"). placement.c
     * drv_balancer_place() blocks a shape when drv_engine_choose() finds no worker, without
     * setting shape_info.first_blocked; advance_time() only unblocks unreachable shapes
     * whose first_blocked >= 0, and fresh_match() only offers eligible workers, so a
     * shape blocked while it was reachable is never looked at again once its reachable
     * count drops to 0. Fix: when shapes_reachable() (fleet.c) takes a shape to 0, set
     * first_blocked = now (or unblock it) so that place() revisits it. Without a waiting
     * test (the shape not blocked) it is reported at once. */
    for (int waiting = 0; waiting < 2; waiting++) {
        fx f;
        fx_open(&f);
        fx_start(&f);
        fx_cpu_worker(&f, "cpu", 4, 0);
        drv_wref gpu = fx_worker(&f, "gpu", fx_gpu_caps(&f, 8, 1, 16, NULL), 1, 1, 0);
        drv_requirements cuda = fx_req(&f, "cuda", NULL, NULL);
        fx_test s = {.id = 1, .req = &cuda, .max_retries = 2};
        drv_tref t = fx_submit_spec(&f, &s, 0);
        if (waiting) {
            s.id = 2;
            fx_submit_spec(&f, &s, 0);
        }
        assert_int_equal(fx_place_one(&f, 0), gpu);
        assert_int_equal(drv_balancer_started(f.b, t, 0), 0);
        drv_decision d[FX_MAX_DECISIONS];
        assert_int_equal(drv_balancer_worker_lost(f.b, gpu, 5, d, FX_MAX_DECISIONS), 1);
        assert_int_equal(drv_balancer_worker_remove(f.b, gpu, NULL), 0);
        size_t n = fx_place(&f, 6, d);
        n += fx_place(&f, 100, d + n);
        if (n != 1u + (unsigned)waiting)
            fail_msg("%s waiting: %zu decisions, want %d unschedulable", waiting ? "one" : "none",
                     n, 1 + waiting);
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(d[k].state, DRV_TASK_UNSCHEDULABLE);
            assert_int_equal(d[k].unmet, DRV_UNMET_TAG_MISSING);
        }
        fx_close(&f);
    }
}

/* ---- explanations ---- */

static void test_explain_no_workers_yet(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_tref t = fx_submit(&f, 1, 0);
    char why[512];
    assert_int_equal(drv_balancer_explain(f.b, t, 3, why, sizeof why), 0);
    assert_string_equal(why, "No worker is connected yet; it will be placed when one that meets "
                             "its requirements registers.");
    fx_close(&f);
}

/* One worker of `slots` slots holding `hold` tests (started when `start`), and a queued
 * test t whose explanation is returned in why. */
static drv_tref explain_scene(fx *f, uint32_t slots, uint32_t hold, bool start, char *why,
                              size_t len, double now)
{
    fx_cpu_worker(f, "w0", slots, 0);
    for (uint32_t k = 0; k < hold; k++) {
        drv_tref h = fx_submit(f, 100 + k, 0);
        fx_place_one(f, 0);
        if (start)
            assert_int_equal(drv_balancer_started(f->b, h, 0), 0);
    }
    drv_tref t = fx_submit(f, 1, 0);
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(f, now, d), 0);
    assert_int_equal(drv_balancer_explain(f->b, t, now, why, len), 0);
    return t;
}

static void test_explain_busy_backpressure_warming_overload(void **state)
{
    (void)state;
    char why[512];
    fx f;

    /* Busy: its one slot runs a test. */
    fx_open(&f);
    fx_start(&f);
    explain_scene(&f, 1, 1, true, why, sizeof why, 7);
    assert_string_equal(why, "1 eligible worker, none can take it now: 1 busy (every slot "
                             "taken). 0 tests are ahead of it; waiting 7 s.");
    fx_close(&f);

    /* Backpressure: its slot holds a test it has not started. */
    fx_open(&f);
    fx_start(&f);
    explain_scene(&f, 1, 1, false, why, sizeof why, 0);
    fx_assert_contains(why, "1 held back by backpressure (tests assigned, not yet started)");
    fx_assert_lacks(why, "busy");
    fx_close(&f);

    /* Warming: with a ramp configured (initial share 0.25) a new 4-slot worker admits 1
     * slot at first. */
    fx_open(&f);
    drv_balancer_config_default(&f.cfg);
    f.cfg.settings.prefetch_max = 0;
    f.cfg.settings.thermal.initial_share = 0.25;
    fx_start(&f);
    explain_scene(&f, 4, 1, true, why, sizeof why, 0);
    fx_assert_contains(why, "1 warming up (admitting part of their slots)");
    fx_assert_lacks(why, "cooling");
    fx_close(&f);

    /* Cooling, told apart from warming, with the measured reason: memory pressure. */
    fx_open(&f);
    drv_balancer_config_default(&f.cfg);
    f.cfg.settings.prefetch_max = 0;
    fx_start(&f);
    {
        drv_wref cw = fx_cpu_worker(&f, "hot", 4, 0);
        drv_thermal_signal sig = DRV_THERMAL_SIGNAL_UNKNOWN;
        sig.load = 0;
        sig.memory_pressure = 0.4;
        drv_balancer_worker_signal(f.b, cw, 0, &sig, false);
        drv_balancer_worker_signal(f.b, cw, 10, &sig, false);
        drv_tref waiting = DRV_REF_NONE;
        for (uint64_t id = 1; id <= 3; id++)
            waiting = fx_submit(&f, id, 1);
        drv_decision dd[FX_MAX_DECISIONS];
        assert_int_equal(fx_place(&f, 10, dd), 2); /* cooling_share 0.5 of 4 */
        for (int i = 0; i < 2; i++)
            assert_int_equal(drv_balancer_started(f.b, dd[i].task, 10), 0);
        assert_int_equal(drv_balancer_explain(f.b, waiting, 10, why, sizeof why), 0);
        fx_assert_contains(why, "1 cooling down (hot is cooling for 0.0 s (memory pressure 0.40 "
                                ">= 0.20 for 10 s): admits 2 of 4 slots)");
        fx_assert_lacks(why, "warming");
    }
    fx_close(&f);

    /* Overload: reported through a heartbeat, the worker has free slots. */
    fx_open(&f);
    fx_start(&f);
    drv_wref w = fx_cpu_worker(&f, "w0", 4, 0);
    drv_balancer_worker_heartbeat(f.b, w, 1, 0.5, -1, false, true);
    drv_tref t = fx_submit(&f, 1, 1);
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&f, 1, d), 0);
    assert_int_equal(drv_balancer_explain(f.b, t, 1, why, sizeof why), 0);
    fx_assert_contains(why, "1 reported overload");
    /* Draining and quarantined say so too. */
    drv_balancer_worker_set_health(f.b, w, DRV_HEALTH_DRAINING, "upgrade", 2);
    assert_int_equal(drv_balancer_explain(f.b, t, 2, why, sizeof why), 0);
    fx_assert_contains(why, "1 draining");
    drv_balancer_worker_set_health(f.b, w, DRV_HEALTH_QUARANTINED, "bad disk", 3);
    assert_int_equal(drv_balancer_explain(f.b, t, 3, why, sizeof why), 0);
    fx_assert_contains(why, "1 quarantined");
    /* Cleared: it has room, and then it is assigned. */
    drv_balancer_worker_set_health(f.b, w, DRV_HEALTH_OK, NULL, 4);
    assert_int_equal(drv_balancer_explain(f.b, t, 4, why, sizeof why), 0);
    assert_string_equal(why, "1 eligible worker, 1 with room: it will be placed at the next "
                             "placement round.");
    assert_int_equal(fx_place_one(&f, 4), w);
    assert_int_equal(drv_balancer_explain(f.b, t, 4, why, sizeof why), 0);
    assert_string_equal(why, "Assigned to w0 (composite), waiting for it to start.");
    assert_int_equal(drv_balancer_started(f.b, t, 5), 0);
    assert_int_equal(drv_balancer_explain(f.b, t, 5, why, sizeof why), 0);
    assert_string_equal(why, "Running on w0; predicted 10.0 s.");
    drv_result ok = fx_exit(0, 9);
    assert_int_equal(drv_balancer_finished(f.b, t, 14, &ok, NULL), 0);
    assert_int_equal(drv_balancer_explain(f.b, t, 14, why, sizeof why), -1); /* final */
    fx_close(&f);
}

static void test_warming_worker_ramps_up(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    drv_balancer_config_default(&f.cfg);
    f.cfg.settings.thermal.initial_share = 0.25; /* ramp 30 s from a share of 0.25 */
    f.cfg.settings.prefetch_max = 0;
    fx_start(&f);
    drv_wref w = fx_cpu_worker(&f, "w0", 8, 0);
    for (uint64_t id = 1; id <= 20; id++)
        fx_submit(&f, id, 0);
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&f, 0, d), 2); /* 0.25 x 8 */
    uint32_t last = fx_held(&f, w);
    for (double now = 5; now <= 30; now += 5) {
        fx_place(&f, now, d);
        assert_true(fx_held(&f, w) >= last); /* never shrinks while ramping */
        last = fx_held(&f, w);
    }
    assert_int_equal(fx_held(&f, w), 8); /* all slots after the ramp */
    fx_close(&f);
}

/* ---- ordering for makespan ---- */

static void test_equal_priority_longest_predicted_first(void **state)
{
    (void)state;
    /* From the analyzer's estimates: unit (x0.25) < plain < performance (x3). Without
     * length_aging a priority level outweighs any length. */
    fx f;
    fx_open(&f);
    f.cfg.settings.length_aging = 0;
    fx_start(&f);
    fx_cpu_worker(&f, "w0", 8, 0);
    const char *types[] = {"unit", NULL, "performance", "unit", "performance"};
    for (uint64_t id = 1; id <= 5; id++) {
        fx_test s = {.id = id, .test_type = types[id - 1]};
        fx_submit_spec(&f, &s, 0);
    }
    fx_test urgent = {.id = 6, .test_type = "unit", .priority = 101};
    fx_submit_spec(&f, &urgent, 0);
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&f, 0, d), 6);
    const uint64_t want[] = {6, 3, 5, 2, 1, 4}; /* priority, then longest, then FIFO */
    for (int k = 0; k < 6; k++)
        if (d[k].task_id != want[k])
            fail_msg("placement %d: test %llu, want %llu", k, (unsigned long long)d[k].task_id,
                     (unsigned long long)want[k]);
    fx_close(&f);

    /* From learned durations. */
    fx_open_pred(&f);
    static const struct {
        const char *name;
        double seconds;
    } hist[] = {{"short", 5}, {"long", 50}, {"mid", 20}};
    for (int k = 0; k < 3; k++)
        drv_predictor_observe(f.pred, drv_test_key(hist[k].name), 0, DRV_TAG_CPU, 0,
                              hist[k].seconds);
    fx_start(&f);
    fx_cpu_worker(&f, "w0", 8, 0);
    for (int k = 0; k < 3; k++) {
        fx_test s = {.id = (uint64_t)k + 1, .name = hist[k].name};
        fx_submit_spec(&f, &s, 0);
    }
    assert_int_equal(fx_place(&f, 0, d), 3);
    assert_int_equal(d[0].task_id, 2); /* long */
    assert_int_equal(d[1].task_id, 3); /* mid */
    assert_int_equal(d[2].task_id, 1); /* short */
    fx_close(&f);
}

/* The analyzer's hardware preference is a soft preference: a vision test without
 * requirements goes to the free GPU worker before the CPU box (same speed, same slots),
 * and of six the GPU worker takes half (before: the first and 4 of 6 went to the CPU
 * box; round robin still spreads them); a test without a model id still leaves the
 * GPU worker alone; a faster CPU box still wins. Browser preference counts
 * for web tests: a vit WebGPU test goes to the chromium worker before the firefox one. */
static void test_analyzer_preference_is_soft(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_wref cpu = fx_cpu_worker(&f, "cpu", 4, 0);
    drv_wref gpu = fx_worker(&f, "gpu", fx_gpu_caps(&f, 8, 1, 16, NULL), 4, 1, 0);
    for (uint64_t id = 1; id <= 6; id++) {
        fx_test s = {.id = id, .model_id = "google/vit-base-patch16-224"};
        fx_submit_spec(&f, &s, 0);
    }
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&f, 0, d), 6);
    assert_int_equal(d[0].worker, gpu);
    int on_gpu = 0;
    for (int k = 0; k < 6; k++)
        on_gpu += d[k].worker == gpu;
    assert_int_equal(on_gpu, 3);
    fx_close(&f);

    /* No model id: family unknown, no preference: the plain worker first. */
    fx_open(&f);
    fx_start(&f);
    cpu = fx_cpu_worker(&f, "cpu", 4, 0);
    gpu = fx_worker(&f, "gpu", fx_gpu_caps(&f, 8, 1, 16, NULL), 4, 1, 0);
    fx_submit(&f, 1, 0);
    assert_int_equal(fx_place(&f, 0, d), 1);
    assert_int_equal(d[0].worker, cpu);
    fx_close(&f);

    /* A CPU box twice as fast still wins: the preference is a bonus, not a rule. */
    fx_open(&f);
    fx_start(&f);
    cpu = fx_worker(&f, "fast-cpu", fx_cpu_caps(&f, 8, 32, NULL), 4, 2.0f, 0);
    gpu = fx_worker(&f, "gpu", fx_gpu_caps(&f, 8, 1, 16, NULL), 4, 1, 0);
    fx_test v = {.id = 1, .model_id = "google/vit-base-patch16-224"};
    fx_submit_spec(&f, &v, 0);
    assert_int_equal(fx_place(&f, 0, d), 1);
    assert_int_equal(d[0].worker, cpu);
    fx_close(&f);

    /* Browser: vit prefers chromium for WebGPU. */
    fx_open(&f);
    fx_start(&f);
    drv_wref fox = fx_worker(&f, "fox", fx_cpu_caps(&f, 8, 32, "webgpu,firefox"), 4, 1, 0);
    drv_wref chr = fx_worker(&f, "chr", fx_cpu_caps(&f, 8, 32, "webgpu,chromium"), 4, 1, 0);
    drv_requirements web = fx_req(&f, "webgpu", NULL, NULL);
    fx_test wt = {.id = 1, .model_id = "google/vit-base-patch16-224", .req = &web};
    fx_submit_spec(&f, &wt, 0);
    fx_test wa = {.id = 2, .model_id = "openai/whisper-tiny", .req = &web}; /* firefox */
    fx_submit_spec(&f, &wa, 0);
    assert_int_equal(fx_place(&f, 0, d), 2);
    assert_int_equal(d[0].task_id == 1 ? d[0].worker : d[1].worker, chr);
    assert_int_equal(d[0].task_id == 2 ? d[0].worker : d[1].worker, fox);
    fx_close(&f);
}

/* Aging at 0.05 s on a real epoch clock: a test that waited 1 s (20 aging levels)
 * goes before a newer one 10 priority levels higher; one that waited 0.25 s (5
 * levels) does not. Before keys were counted from the queue's base, every test had the
 * same level at this interval and priority alone decided. */
static void test_aging_works_at_50_ms_with_an_epoch_clock(void **state)
{
    (void)state;
    const double t0 = 1796300000.0;
    fx f;
    fx_open(&f);
    f.cfg.settings.aging_interval_s = 0.05;
    f.cfg.settings.length_aging = 0;
    f.cfg.settings.prefetch_max = 0;
    fx_start(&f);
    fx_submit_prio(&f, 1, 100, NULL, t0);        /* old, low */
    fx_submit_prio(&f, 2, 100, NULL, t0 + 0.75); /* younger, low */
    fx_submit_prio(&f, 3, 110, NULL, t0 + 1.0);  /* new, 10 levels higher */
    fx_cpu_worker(&f, "w0", 1, t0 + 1.0);
    const uint64_t want[] = {1, 3, 2};
    double now = t0 + 1.0;
    for (int k = 0; k < 3; k++) {
        drv_decision d[FX_MAX_DECISIONS];
        assert_int_equal(fx_place(&f, now, d), 1);
        if (d[0].task_id != want[k])
            fail_msg("placement %d: test %llu, want %llu", k, (unsigned long long)d[0].task_id,
                     (unsigned long long)want[k]);
        assert_int_equal(drv_balancer_started(f.b, d[0].task, now), 0);
        drv_result ok = fx_exit(0, 1);
        now += 1;
        assert_int_equal(drv_balancer_finished(f.b, d[0].task, now, &ok, NULL), 0);
    }
    fx_close(&f);
}

static void test_long_test_goes_ahead_of_short_slightly_urgent_ones(void **state)
{
    (void)state;
    /* Default length_aging: a test predicted to run d seconds is ordered as if it had
     * waited length_aging x d longer. A 50 s test counts 200 s, 33 priority levels at
     * 6 s per level: ahead of a 5 s test of priority 120 (5 s count 20 s, 3 levels),
     * behind one of priority 200. */
    fx f;
    fx_open_pred(&f);
    static const struct {
        const char *name;
        double seconds;
    } hist[] = {{"short", 5}, {"long", 50}, {"urgent", 5}};
    for (int k = 0; k < 3; k++)
        drv_predictor_observe(f.pred, drv_test_key(hist[k].name), 0, DRV_TAG_CPU, 0,
                              hist[k].seconds);
    fx_start(&f);
    fx_cpu_worker(&f, "w0", 8, 0);
    fx_test tests[] = {{.id = 1, .name = "short", .priority = 120},
                       {.id = 2, .name = "long", .priority = 100},
                       {.id = 3, .name = "urgent", .priority = 200}};
    for (int k = 0; k < 3; k++)
        fx_submit_spec(&f, &tests[k], 0);
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&f, 0, d), 3);
    assert_int_equal(d[0].task_id, 3); /* priority 200 */
    assert_int_equal(d[1].task_id, 2); /* long, priority 100 */
    assert_int_equal(d[2].task_id, 1); /* short, priority 120 */
    fx_close(&f);
}

/* ---- backpressure and prefetch ---- */

static void test_overloaded_worker_gets_nothing_until_cleared(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_wref w0 = fx_cpu_worker(&f, "w0", 2, 0);
    drv_wref w1 = fx_cpu_worker(&f, "w1", 2, 0);
    drv_tref held = fx_submit(&f, 1, 0);
    assert_int_equal(fx_place_one(&f, 0), w0);
    drv_balancer_worker_heartbeat(f.b, w0, 1, 0.5, -1, false, true);
    assert_int_equal(drv_balancer_worker(f.b, w0)->health, DRV_HEALTH_OVERLOADED);
    for (uint64_t id = 2; id <= 5; id++)
        fx_submit(&f, id, 1);
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&f, 1, d), 2);
    assert_int_equal(d[0].worker, w1);
    assert_int_equal(d[1].worker, w1);
    assert_int_equal(fx_place(&f, 2, d), 0);
    /* It keeps what it holds, and its results count. */
    assert_int_equal(drv_balancer_task_worker(f.b, held), w0);
    /* Another overloaded heartbeat keeps it out; a clear one brings it back. */
    drv_balancer_worker_heartbeat(f.b, w0, 3, 0.5, -1, false, true);
    assert_int_equal(fx_place(&f, 3, d), 0);
    drv_balancer_worker_heartbeat(f.b, w0, 4, 0.3, -1, false, false);
    assert_int_equal(drv_balancer_worker(f.b, w0)->health, DRV_HEALTH_OK);
    assert_int_equal(fx_place(&f, 4, d), 1); /* one free slot: it holds one already */
    assert_int_equal(d[0].worker, w0);
    fx_close(&f);
}

static void test_prefetch_window_bounds_assigned_tests(void **state)
{
    (void)state;
    /* A 2-slot worker and 10-second tests. It may hold up to prefetch_max more than its
     * slots, as many as cover batch_target_s of predicted work. */
    static const struct {
        uint32_t prefetch_max;
        double batch_target_s;
        uint32_t holds;
    } rows[] = {
        {0, 100, 2}, /* no prefetch */
        {2, 100, 4}, /* capped by prefetch_max */
        {4, 25, 4},  /* 25 s of work is 2 tests */
        {3, 2, 2},   /* less than one test of work: none */
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        fx f;
        fx_open(&f);
        f.cfg.settings.prefetch_max = rows[i].prefetch_max;
        f.cfg.settings.batch_target_s = rows[i].batch_target_s;
        fx_start(&f);
        drv_wref w = fx_cpu_worker(&f, "w0", 2, 0);
        for (uint64_t id = 1; id <= 10; id++)
            fx_submit(&f, id, 0);
        drv_decision d[FX_MAX_DECISIONS];
        size_t n = fx_place(&f, 0, d);
        if (n != rows[i].holds)
            fail_msg("row %zu: holds %zu, want %u", i, n, rows[i].holds);
        assert_int_equal(drv_balancer_worker(f.b, w)->assigned, rows[i].holds);
        /* Starting tests does not make room; finishing one does, for exactly one. */
        assert_int_equal(drv_balancer_started(f.b, d[0].task, 1), 0);
        assert_int_equal(drv_balancer_started(f.b, d[1].task, 1), 0);
        assert_int_equal(fx_place(&f, 1, d + 16), 0);
        drv_result ok = fx_exit(0, 10);
        assert_int_equal(drv_balancer_finished(f.b, d[0].task, 11, &ok, NULL), 0);
        assert_int_equal(fx_place(&f, 11, d + 16), 1);
        assert_int_equal(fx_held(&f, w), rows[i].holds);
        fx_close(&f);
    }
}

static void test_prefetch_by_measured_runs_needs_several(void **state)
{
    (void)state;
    /* A 1-slot worker that may prefetch 8, 2 s of work per batch, and tests of unknown
     * duration (estimate 10 s: no prefetch). Once it has finished a few tests of
     * milliseconds (3, DRV_PREFETCH_MIN_RUNS in balancer/engine.h) it takes 8 more
     * ahead; one `true` is no evidence of that. */
    static const struct {
        uint32_t fast_runs;
        uint32_t holds;
    } rows[] = {
        {0, 1},
        {1, 1},
        {2, 1},
        {3, 9},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        fx f;
        fx_open_pred(&f);
        f.cfg.settings.prefetch_max = 8;
        f.cfg.settings.batch_target_s = 2;
        fx_start(&f);
        drv_wref w = fx_cpu_worker(&f, "w0", 1, 0);
        uint64_t id = 1;
        double now = 0;
        for (uint32_t k = 0; k < rows[i].fast_runs; k++, now += 1) {
            drv_tref t = fx_submit(&f, id++, now);
            assert_int_equal(fx_place_one(&f, now), w);
            fx_run(&f, t, now, fx_exit(0, 0.001));
        }
        for (int k = 0; k < 20; k++)
            fx_submit(&f, id++, now);
        drv_decision d[FX_MAX_DECISIONS];
        size_t n = fx_place(&f, now, d);
        if (n != rows[i].holds)
            fail_msg("row %zu (%u fast runs): holds %zu, want %u", i, rows[i].fast_runs, n,
                     rows[i].holds);
        fx_close(&f);
    }
}

/* ---- retries ---- */

static void test_lost_worker_requeues_then_retries_run_out(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    for (int k = 0; k < 4; k++) {
        char name[8];
        snprintf(name, sizeof name, "w%d", k);
        fx_cpu_worker(&f, name, 1, 0);
    }
    fx_test s = {.id = 1, .max_retries = 2};
    drv_tref t = fx_submit_spec(&f, &s, 0);
    double now = 0;
    for (int loss = 1; loss <= 3; loss++, now += 10) {
        drv_wref w = fx_place_one(&f, now);
        assert_int_equal(drv_balancer_started(f.b, t, now), 0);
        drv_decision d[4];
        assert_int_equal(drv_balancer_worker_lost(f.b, w, now + 5, d, 4), 1);
        assert_int_equal(drv_balancer_worker(f.b, w)->health, DRV_HEALTH_LOST);
        assert_int_equal(d[0].from_worker, w);
        assert_int_equal(d[0].worker, DRV_REF_NONE);
        char buf[128], want[128];
        drv_decision_describe(f.b, &d[0], buf, sizeof buf);
        if (loss <= 2) {
            assert_int_equal(d[0].kind, DRV_D_REQUEUED);
            assert_int_equal(d[0].reason, DRV_R_WORKER_LOST);
            assert_int_equal(d[0].state, DRV_TASK_QUEUED);
            snprintf(want, sizeof want, "test 1 requeued from %s (worker_lost)", fx_wname(&f, w));
            assert_string_equal(buf, want);
            /* The lost worker's late report is refused: the test is not counted twice. */
            drv_result late = fx_exit(0, 4);
            assert_int_equal(drv_balancer_finished(f.b, t, now + 6, &late, NULL), -1);
        } else {
            assert_int_equal(d[0].kind, DRV_D_FINAL);
            assert_int_equal(d[0].reason, DRV_R_RETRIES_EXHAUSTED);
            assert_int_equal(d[0].state, DRV_TASK_FAILED);
            assert_string_equal(buf, "test 1 failed (retries_exhausted)");
        }
    }
    drv_balancer_stats st;
    drv_balancer_stats_get(f.b, &st);
    assert_int_equal(st.requeued, 2);
    assert_int_equal(st.queued + st.assigned + st.running, 0);
    fx_close(&f);
}

static void test_assigned_tests_of_a_lost_worker_keep_their_retries(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_wref w0 = fx_cpu_worker(&f, "w0", 3, 0);
    fx_test s = {.id = 1, .max_retries = 0};
    drv_tref t = fx_submit_spec(&f, &s, 0);
    assert_int_equal(fx_place_one(&f, 0), w0);
    drv_decision d[4];
    /* Not started: back to the queue although it has no retry to spend. */
    assert_int_equal(drv_balancer_worker_lost(f.b, w0, 1, d, 4), 1);
    assert_int_equal(d[0].kind, DRV_D_REQUEUED);
    assert_int_equal(d[0].reason, DRV_R_WORKER_LOST);
    assert_int_equal(drv_balancer_task_state(f.b, t), DRV_TASK_QUEUED);
    /* The worker comes back and gets it; now it runs and the worker is lost again: with
     * no retry that is final. */
    drv_balancer_worker_back(f.b, w0, 2);
    assert_int_equal(drv_balancer_worker(f.b, w0)->health, DRV_HEALTH_OK);
    assert_int_equal(fx_place_one(&f, 2), w0);
    assert_int_equal(drv_balancer_started(f.b, t, 2), 0);
    assert_int_equal(drv_balancer_worker_lost(f.b, w0, 3, d, 4), 1);
    assert_int_equal(d[0].kind, DRV_D_FINAL);
    assert_int_equal(d[0].reason, DRV_R_RETRIES_EXHAUSTED);
    fx_close(&f);
}

static void test_lost_worker_hands_back_everything_in_pieces(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_wref w0 = fx_cpu_worker(&f, "w0", 3, 0);
    drv_tref t[3];
    for (uint64_t id = 1; id <= 3; id++) {
        fx_test s = {.id = id, .max_retries = 1};
        t[id - 1] = fx_submit_spec(&f, &s, 0);
    }
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&f, 0, d), 3);
    assert_int_equal(drv_balancer_started(f.b, t[0], 0), 0);
    /* Room for two decisions: the worker is lost only once it holds nothing. */
    assert_int_equal(drv_balancer_worker_lost(f.b, w0, 1, d, 2), 2);
    assert_int_not_equal(drv_balancer_worker(f.b, w0)->health, DRV_HEALTH_LOST);
    assert_int_equal(drv_balancer_worker_lost(f.b, w0, 1, d + 2, 2), 1);
    assert_int_equal(drv_balancer_worker(f.b, w0)->health, DRV_HEALTH_LOST);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(d[k].kind, DRV_D_REQUEUED);
        assert_int_equal(drv_balancer_task_state(f.b, t[k]), DRV_TASK_QUEUED);
    }
    assert_int_equal(fx_place(&f, 1, d), 0); /* nowhere to go: stays queued */
    drv_wref w1 = fx_cpu_worker(&f, "w1", 3, 2);
    assert_int_equal(fx_place(&f, 2, d), 3);
    for (int k = 0; k < 3; k++)
        assert_int_equal(d[k].worker, w1);
    fx_close(&f);
}

static void test_exit_status_decides_the_outcome(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        drv_result r;
        uint32_t max_retries;
        bool retry_on_failure;
        drv_decision_kind kind;
        drv_reason reason;
        drv_task_state state;
    } rows[] = {
        {"pass",
         {.exit_code = 0, .duration_s = 2},
         3,
         false,
         DRV_D_FINAL,
         DRV_R_PASSED,
         DRV_TASK_PASSED},
        {"exit 1 with retries",
         {.exit_code = 1, .duration_s = 2},
         3,
         false,
         DRV_D_FINAL,
         DRV_R_EXIT_FAILURE,
         DRV_TASK_FAILED},
        {"killed",
         {.signal = 9, .duration_s = 2},
         3,
         false,
         DRV_D_FINAL,
         DRV_R_EXIT_FAILURE,
         DRV_TASK_FAILED},
        {"timed out",
         {.timed_out = true, .signal = 9, .duration_s = 60},
         3,
         false,
         DRV_D_FINAL,
         DRV_R_TIMED_OUT,
         DRV_TASK_TIMED_OUT},
        {"exit 1, retry_on_failure",
         {.exit_code = 1, .duration_s = 2},
         1,
         true,
         DRV_D_REQUEUED,
         DRV_R_EXIT_FAILURE_RETRY,
         DRV_TASK_QUEUED},
        {"exit 1, retry_on_failure, no retries",
         {.exit_code = 1, .duration_s = 2},
         0,
         true,
         DRV_D_FINAL,
         DRV_R_EXIT_FAILURE,
         DRV_TASK_FAILED},
        {"infra failure",
         {.infra_failure = true},
         1,
         false,
         DRV_D_REQUEUED,
         DRV_R_INFRA_FAILURE,
         DRV_TASK_QUEUED},
        {"infra failure, no retries",
         {.infra_failure = true},
         0,
         false,
         DRV_D_FINAL,
         DRV_R_RETRIES_EXHAUSTED,
         DRV_TASK_FAILED},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        fx f;
        fx_open(&f);
        fx_start(&f);
        drv_wref w = fx_cpu_worker(&f, "w0", 2, 0);
        fx_test s = {.id = 1,
                     .max_retries = rows[i].max_retries,
                     .retry_on_failure = rows[i].retry_on_failure};
        drv_tref t = fx_submit_spec(&f, &s, 0);
        assert_int_equal(fx_place_one(&f, 0), w);
        drv_decision d = fx_run(&f, t, 0, rows[i].r);
        if (d.kind != rows[i].kind || d.reason != rows[i].reason || d.state != rows[i].state)
            fail_msg("%s: got %d/%s/%s, want %d/%s/%s", rows[i].what, d.kind,
                     drv_reason_name(d.reason), drv_task_state_name(d.state), rows[i].kind,
                     drv_reason_name(rows[i].reason), drv_task_state_name(rows[i].state));
        assert_int_equal(d.from_worker, w);
        assert_int_equal(fx_held(&f, w), 0);
        if (d.kind == DRV_D_REQUEUED) {
            /* It runs again, and a second failure is final. */
            assert_int_equal(fx_place_one(&f, 5), w);
            drv_decision again = fx_run(&f, t, 5, rows[i].r);
            assert_int_equal(again.kind, DRV_D_FINAL);
            assert_int_equal(again.state, DRV_TASK_FAILED);
        }
        fx_close(&f);
    }
}

static void test_infra_failures_quarantine_a_worker(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f); /* quarantine_after 3 */
    drv_wref w = fx_cpu_worker(&f, "w0", 1, 0);
    drv_result infra = {.infra_failure = true};
    fx_test s = {.id = 1, .max_retries = 20};
    drv_tref t = fx_submit_spec(&f, &s, 0);
    double now = 0;
    /* Two in a row, then a pass of another test resets the run. */
    for (int k = 0; k < 2; k++, now += 1) {
        assert_int_equal(fx_place_one(&f, now), w);
        assert_int_equal(fx_run(&f, t, now, infra).reason, DRV_R_INFRA_FAILURE);
    }
    drv_tref other = fx_submit_prio(&f, 2, 900, NULL, now);
    assert_int_equal(fx_place_one(&f, now), w);
    assert_int_equal(fx_run(&f, other, now, fx_exit(0, 0.5)).state, DRV_TASK_PASSED);
    now += 1;
    for (int k = 0; k < 2; k++, now += 1) {
        assert_int_equal(fx_place_one(&f, now), w);
        fx_run(&f, t, now, infra);
    }
    assert_int_equal(drv_balancer_worker(f.b, w)->health, DRV_HEALTH_OK);
    /* The third in a row quarantines it. */
    assert_int_equal(fx_place_one(&f, now), w);
    fx_run(&f, t, now, infra);
    const drv_worker *x = drv_balancer_worker(f.b, w);
    assert_int_equal(x->health, DRV_HEALTH_QUARANTINED);
    fx_assert_contains(x->health_reason, "3 infrastructure failures in a row");
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&f, now + 1, d), 0);
    assert_int_equal(fx_place(&f, now + 1000, d), 0); /* held until an operator clears it */
    char why[512];
    assert_int_equal(drv_balancer_explain(f.b, t, now + 1000, why, sizeof why), 0);
    fx_assert_contains(why, "1 quarantined");
    drv_balancer_worker_set_health(f.b, w, DRV_HEALTH_OK, "disk replaced", now + 1001);
    assert_int_equal(fx_place_one(&f, now + 1001), w);
    fx_close(&f);
}

/* A worker restarted (a new process under its name) is not a failing machine: neither
 * the loss of what its old process ran nor what the new one no longer lists counts
 * towards quarantine_after; the same losses with the same process coming back do. */
static void test_restarts_do_not_quarantine(void **state)
{
    (void)state;
    for (int same_process = 0; same_process < 2; same_process++) {
        fx f;
        fx_open(&f);
        fx_start(&f); /* quarantine_after 3 */
        drv_wref w = fx_cpu_worker(&f, "w0", 1, 0);
        fx_test s = {.id = 1, .max_retries = 20};
        drv_tref t = fx_submit_spec(&f, &s, 0);
        drv_decision d[4];
        double now = 0;
        for (int k = 0; k < 3; k++, now += 1) {
            assert_int_equal(fx_place_one(&f, now), w);
            assert_int_equal(drv_balancer_started(f.b, t, now), 0);
            assert_int_equal(drv_balancer_worker_lost(f.b, w, now + 0.5, d, 4), 1);
            drv_balancer_worker_back(f.b, w, now + 0.7);
            drv_balancer_worker_hello(f.b, w, !same_process, now + 0.7);
        }
        const drv_worker *x = drv_balancer_worker(f.b, w);
        assert_int_equal(x->history.infra_failures, 3); /* counted, whatever the cause */
        if (same_process) {
            assert_int_equal(x->health, DRV_HEALTH_QUARANTINED);
            fx_assert_contains(x->health_reason, "lost while running tests");
        } else {
            assert_int_equal(x->health, DRV_HEALTH_OK);
            assert_int_equal(x->history.infra_failure_run, 0);
            /* What a new process did not list is charged to the test, not the machine. */
            drv_result gone = {.exit_code = -1, .infra_failure = true, .restart = true};
            for (int k = 0; k < 3; k++, now += 1) {
                assert_int_equal(fx_place_one(&f, now), w);
                assert_int_equal(fx_run(&f, t, now, gone).reason, DRV_R_INFRA_FAILURE);
            }
            assert_int_equal(x->health, DRV_HEALTH_OK);
            assert_int_equal(x->history.infra_failure_run, 0);
        }
        fx_close(&f);
    }
}

/* ---- work stealing ---- */

/* w0 (one slot, may prefetch 4) holds tests A..E (priorities 500..100, 10 s each) and
 * runs A; then the thief joins. */
typedef struct steal_scene {
    fx f;
    drv_wref w0, thief;
    drv_tref t[5]; /* A..E */
} steal_scene;

static void steal_setup_costs(steal_scene *s, double migration_cost, double idle_move_cost,
                              uint32_t thief_slots, float thief_speed)
{
    fx_open(&s->f);
    s->f.cfg.settings.prefetch_max = 4;
    s->f.cfg.settings.batch_target_s = 100;
    s->f.cfg.settings.migration_cost_s = migration_cost;
    s->f.cfg.settings.idle_move_cost_s = idle_move_cost;
    fx_start_policy(&s->f, DRV_POLICY_PERFORMANCE);
    s->w0 = fx_cpu_worker(&s->f, "w0", 1, 0);
    for (int k = 0; k < 5; k++)
        s->t[k] = fx_submit_prio(&s->f, (uint64_t)k + 1, 500 - 100 * k, NULL, 0);
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&s->f, 0, d), 5);
    for (int k = 0; k < 5; k++)
        assert_int_equal(d[k].worker, s->w0);
    assert_int_equal(drv_balancer_started(s->f.b, s->t[0], 0), 0);
    s->thief =
        fx_worker(&s->f, "thief", fx_cpu_caps(&s->f, 8, 32, "x"), thief_slots, thief_speed, 1);
}

/* The scene with one cost for every move (the queue is empty in it). */
static void steal_setup(steal_scene *s, double migration_cost, uint32_t thief_slots,
                        float thief_speed)
{
    steal_setup_costs(s, migration_cost, migration_cost, thief_slots, thief_speed);
}

static void test_idle_worker_steals_when_it_pays(void **state)
{
    (void)state;
    /* On w0 each waiting test finishes in 40 s of backlog + 10 s; on the idle thief in
     * 10 s: a gain of 40 s. */
    static const struct {
        double migration_cost;
        float thief_speed;
        bool steals;
    } rows[] = {
        {1, 1, true},
        {39.5, 1, true},
        {40.5, 1, false},
        {1, 0.2f, false}, /* 50 s on a slow thief: no gain */
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        steal_scene s;
        steal_setup(&s, rows[i].migration_cost, 1, rows[i].thief_speed);
        drv_decision d[8];
        size_t n = drv_balancer_steal(s.f.b, s.thief, 1, d, 8);
        if (n != (rows[i].steals ? 1u : 0u))
            fail_msg("row %zu: %zu steals", i, n);
        if (n) {
            assert_int_equal(d[0].kind, DRV_D_MOVED);
            assert_int_equal(d[0].reason, DRV_R_STOLEN);
            assert_int_equal(d[0].task, s.t[1]); /* B: the highest priority not started */
            assert_int_equal(d[0].from_worker, s.w0);
            assert_int_equal(d[0].worker, s.thief);
            assert_int_equal(d[0].state, DRV_TASK_ASSIGNED);
            assert_int_equal(drv_balancer_task_worker(s.f.b, s.t[1]), s.thief);
            assert_int_equal(fx_held(&s.f, s.w0), 4);
            char buf[128];
            drv_decision_describe(s.f.b, &d[0], buf, sizeof buf);
            assert_string_equal(buf, "test 2 moved from w0 to thief (stolen)");
        } else {
            assert_int_equal(fx_held(&s.f, s.w0), 5);
        }
        /* The running test never moves. */
        assert_int_equal(drv_balancer_task_worker(s.f.b, s.t[0]), s.w0);
        fx_close(&s.f);
    }
}

/* Once the queue is empty a move need only beat idle_move_cost_s (an unstarted test's
 * move is a round trip, no cold start); while tests wait in the queue, migration_cost_s
 * holds. The gain here is 40 s (test_idle_worker_steals_when_it_pays). */
static void test_idle_move_cost_applies_when_queue_is_empty(void **state)
{
    (void)state;
    for (int queued = 0; queued <= 1; queued++) {
        steal_scene s;
        steal_setup_costs(&s, 40.5, 0.05, 1, 1);
        if (queued) /* a test submitted and not placed yet */
            fx_submit_prio(&s.f, 99, 0, NULL, 0);
        drv_decision d[8];
        size_t n = drv_balancer_steal(s.f.b, s.thief, 1, d, 8);
        if (n != (queued ? 0u : 1u))
            fail_msg("queued %d: %zu steals", queued, n);
        fx_close(&s.f);
    }
}

/* A move dropped by the two-phase move (exec2): the test is the holder's again, counted
 * there and not on the thief, it is not stolen again within the hold-off, and the thief
 * takes the next one instead. */
static void test_unmove_gives_the_test_back(void **state)
{
    (void)state;
    steal_scene s;
    steal_setup(&s, 1, 1, 1);
    fx *f = &s.f;
    drv_decision d[8];
    assert_int_equal(drv_balancer_steal(f->b, s.thief, 1, d, 8), 1);
    assert_int_equal(d[0].task, s.t[1]);
    assert_int_equal(fx_held(f, s.thief), 1); /* its slot is reserved while the move waits */
    assert_int_equal(drv_balancer_steal(f->b, s.thief, 1, d, 8), 0);
    drv_balancer_stats st;
    drv_balancer_stats_get(f->b, &st);
    assert_int_equal(st.moved, 1);
    assert_int_equal(drv_balancer_unmove(f->b, s.t[1], s.w0, 1.5), 0);
    assert_int_equal(drv_balancer_task_worker(f->b, s.t[1]), s.w0);
    assert_int_equal(fx_held(f, s.w0), 5);
    assert_int_equal(fx_held(f, s.thief), 0);
    drv_balancer_stats_get(f->b, &st);
    assert_int_equal(st.moved, 0); /* a dropped move is not a move */
    assert_int_equal(st.assigned, 4);
    /* B is not taken again within the hold-off: C is. */
    assert_int_equal(drv_balancer_steal(f->b, s.thief, 2, d, 8), 1);
    assert_int_equal(d[0].task, s.t[2]);
    /* Bad input changes nothing: a running test, a task already on that worker. */
    assert_int_equal(drv_balancer_unmove(f->b, s.t[0], s.thief, 2), -1);
    assert_int_equal(drv_balancer_task_worker(f->b, s.t[0]), s.w0);
    assert_int_equal(drv_balancer_unmove(f->b, s.t[3], s.w0, 2), 0);
    assert_int_equal(fx_held(f, s.w0), 4);
    fx_close(f);
}

static void test_steals_highest_priority_first(void **state)
{
    (void)state;
    steal_scene s;
    steal_setup(&s, 1, 3, 1);
    drv_decision d[8];
    assert_int_equal(drv_balancer_steal(s.f.b, s.thief, 1, d, 8), 3); /* fills its 3 slots */
    assert_int_equal(d[0].task, s.t[1]);
    assert_int_equal(d[1].task, s.t[2]);
    assert_int_equal(d[2].task, s.t[3]);
    assert_int_equal(drv_balancer_task_worker(s.f.b, s.t[4]), s.w0);
    /* max bounds the moves. */
    fx_close(&s.f);
    steal_setup(&s, 1, 3, 1);
    assert_int_equal(drv_balancer_steal(s.f.b, s.thief, 1, d, 1), 1);
    assert_int_equal(d[0].task, s.t[1]);
    fx_close(&s.f);
}

static void test_rebalance_moves_to_idle_workers(void **state)
{
    (void)state;
    steal_scene s;
    steal_setup(&s, 1, 1, 1);
    drv_decision d[8];
    assert_int_equal(drv_balancer_rebalance(s.f.b, 1, d, 8), 1);
    assert_int_equal(d[0].kind, DRV_D_MOVED);
    assert_int_equal(d[0].reason, DRV_R_REBALANCED);
    assert_int_equal(d[0].task, s.t[1]);
    assert_int_equal(d[0].worker, s.thief);
    assert_int_equal(drv_balancer_rebalance(s.f.b, 2, d, 8), 0); /* nothing more pays */
    fx_close(&s.f);
}

/* After placing, an idle worker takes what others hold unstarted at once when the queue
 * is empty (reason stolen); while tests are queued that is placement's job. */
static void test_steal_idle_acts_when_the_queue_is_empty(void **state)
{
    (void)state;
    steal_scene s;
    steal_setup(&s, 1, 1, 1);
    drv_decision d[8];
    drv_requirements req = fx_req(&s.f, "nobody-has-this", NULL, NULL);
    drv_tref q = fx_submit_prio(&s.f, 99, 100, &req, 1);
    assert_int_equal(drv_balancer_steal_idle(s.f.b, 1, d, 8), 0);
    assert_int_equal(drv_balancer_cancel(s.f.b, q, 1, d), 0);
    assert_int_equal(drv_balancer_steal_idle(s.f.b, 1, d, 8), 1);
    assert_int_equal(d[0].kind, DRV_D_MOVED);
    assert_int_equal(d[0].reason, DRV_R_STOLEN);
    assert_int_equal(d[0].task, s.t[1]);
    assert_int_equal(d[0].worker, s.thief);
    drv_balancer_stats st;
    drv_balancer_stats_get(s.f.b, &st);
    assert_int_equal(st.moved, 1);
    fx_close(&s.f);
}

/* The steal rule uses what the predictor knows now, not the prediction of the moment a
 * test was assigned: bert tests placed as "0.01 s" (their family's only run) sit behind
 * a running one; once they are known to take 20 s, an idle worker takes one. */
static void test_steal_uses_current_predictions(void **state)
{
    (void)state;
    for (int learned = 0; learned < 2; learned++) {
        fx f;
        fx_open_pred(&f);
        f.cfg.settings.prefetch_max = 4;
        f.cfg.settings.batch_target_s = 100;
        fx_start_policy(&f, DRV_POLICY_PERFORMANCE);
        drv_wref w0 = fx_cpu_worker(&f, "w0", 1, 0);
        uint32_t c0 = drv_balancer_worker(f.b, w0)->wclass;
        int bert = drv_analyzer_family("bert-base-uncased");
        drv_predictor_observe(f.pred, drv_test_key("bert/warm"), bert, DRV_TAG_CPU, c0, 0.01);
        drv_tref t[3];
        for (int k = 0; k < 3; k++) {
            fx_test spec = {.id = (uint64_t)k + 1, .model_id = "bert-base-uncased"};
            t[k] = fx_submit_spec(&f, &spec, 0);
        }
        drv_decision d[FX_MAX_DECISIONS];
        assert_int_equal(fx_place(&f, 0, d), 3);
        assert_int_equal(fx_held(&f, w0), 3);
        assert_int_equal(drv_balancer_started(f.b, t[0], 0), 0);
        if (learned)
            for (int k = 1; k < 3; k++) {
                char name[32];
                snprintf(name, sizeof name, "test-%d", k + 1);
                drv_predictor_observe(f.pred, drv_test_key(name), bert, DRV_TAG_CPU, c0, 20);
            }
        drv_wref thief = fx_cpu_worker(&f, "thief", 1, 1);
        size_t n = drv_balancer_steal(f.b, thief, 1, d, 8);
        if (n != (learned ? 1u : 0u))
            fail_msg("learned %d: %zu steals", learned, n);
        if (n)
            assert_int_equal(d[0].from_worker, w0);
        fx_close(&f);
    }
}

static void test_a_moved_test_is_not_moved_back_within_the_holdoff(void **state)
{
    (void)state;
    steal_scene s;
    steal_setup(&s, 1, 1, 1); /* steal_holdoff_s 30 */
    fx *f = &s.f;
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(drv_balancer_steal(f->b, s.thief, 1, d, 8), 1);
    assert_int_equal(d[0].task, s.t[1]); /* B moved to the thief at t=1 */
    /* The thief gets busy: two tests only it can run, one started. */
    drv_requirements x = fx_req(f, "x", NULL, NULL);
    drv_tref x1 = fx_submit_prio(f, 11, 50, &x, 1);
    fx_submit_prio(f, 12, 50, &x, 1);
    assert_int_equal(fx_place(f, 1, d), 2);
    assert_int_equal(d[0].worker, s.thief);
    assert_int_equal(d[1].worker, s.thief);
    assert_int_equal(drv_balancer_started(f->b, x1, 1), 0);
    /* w0 becomes idle: its waiting tests are cancelled and A ends. */
    for (int k = 2; k < 5; k++)
        assert_int_equal(drv_balancer_cancel(f->b, s.t[k], 2, NULL), 0);
    drv_result ok = fx_exit(0, 2);
    assert_int_equal(drv_balancer_finished(f->b, s.t[0], 2, &ok, NULL), 0);
    assert_int_equal(fx_held(f, s.w0), 0);
    /* B would now finish earlier on w0, but it moved 9 s ago: it stays. */
    assert_int_equal(drv_balancer_steal(f->b, s.w0, 10, d, 8), 0);
    assert_int_equal(drv_balancer_rebalance(f->b, 30.9, d, 8), 0);
    assert_int_equal(drv_balancer_task_worker(f->b, s.t[1]), s.thief);
    /* After the hold-off it may move again. */
    assert_int_equal(drv_balancer_steal(f->b, s.w0, 31, d, 8), 1);
    assert_int_equal(d[0].task, s.t[1]);
    assert_int_equal(d[0].from_worker, s.thief);
    assert_int_equal(d[0].worker, s.w0);
    fx_close(f);
}

static void test_busy_worker_steals_nothing(void **state)
{
    (void)state;
    steal_scene s;
    steal_setup(&s, 1, 1, 1);
    /* The thief runs a test of its own: no free slot, no stealing. */
    drv_requirements x = fx_req(&s.f, "x", NULL, NULL);
    drv_tref own = fx_submit_prio(&s.f, 20, 100, &x, 1);
    assert_int_equal(fx_place_one(&s.f, 1), s.thief);
    assert_int_equal(drv_balancer_started(s.f.b, own, 1), 0);
    drv_decision d[8];
    assert_int_equal(drv_balancer_steal(s.f.b, s.thief, 2, d, 8), 0);
    /* Nor does an overloaded one. */
    drv_balancer_finished(s.f.b, own, 3, &(drv_result){.exit_code = 0, .duration_s = 2}, NULL);
    drv_balancer_worker_heartbeat(s.f.b, s.thief, 3, 0.5, -1, false, true);
    assert_int_equal(drv_balancer_steal(s.f.b, s.thief, 3, d, 8), 0);
    fx_close(&s.f);
}

/* ---- cancel ---- */

static void test_cancel_queued_and_assigned(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_tref q = fx_submit(&f, 1, 0);
    drv_tref keep = fx_submit(&f, 2, 0);
    drv_decision d;
    assert_int_equal(drv_balancer_cancel(f.b, q, 1, &d), 0);
    assert_int_equal(d.kind, DRV_D_FINAL);
    assert_int_equal(d.reason, DRV_R_CANCELLED);
    assert_int_equal(d.state, DRV_TASK_CANCELLED);
    assert_int_equal(d.task_id, 1);
    assert_int_equal(d.from_worker, DRV_REF_NONE);
    assert_int_equal(drv_balancer_cancel(f.b, q, 1, &d), -1); /* already final */
    char why[256];
    assert_int_equal(drv_balancer_explain(f.b, q, 1, why, sizeof why), -1);
    drv_balancer_stats st;
    drv_balancer_stats_get(f.b, &st);
    assert_int_equal(st.queued, 1);

    drv_wref w = fx_cpu_worker(&f, "w0", 1, 2);
    drv_decision out[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&f, 2, out), 1); /* the cancelled one is never placed */
    assert_int_equal(out[0].task, keep);
    /* Cancel an assigned test: the worker's slot is free for the next. */
    drv_tref next = fx_submit(&f, 3, 3);
    assert_int_equal(fx_place(&f, 3, out), 0);
    assert_int_equal(drv_balancer_cancel(f.b, keep, 4, &d), 0);
    assert_int_equal(d.kind, DRV_D_FINAL);
    assert_int_equal(d.state, DRV_TASK_CANCELLED);
    assert_int_equal(d.from_worker, w);
    char buf[128];
    drv_decision_describe(f.b, &d, buf, sizeof buf);
    assert_string_equal(buf, "test 2 cancelled (cancelled)");
    assert_int_equal(fx_held(&f, w), 0);
    drv_result ok = fx_exit(0, 1);
    assert_int_equal(drv_balancer_finished(f.b, keep, 5, &ok, NULL), -1); /* late report */
    assert_int_equal(fx_place_one(&f, 4), w);
    /* Cancel a running test. */
    assert_int_equal(drv_balancer_started(f.b, next, 4), 0);
    assert_int_equal(drv_balancer_cancel(f.b, next, 5, &d), 0);
    assert_int_equal(d.from_worker, w);
    assert_int_equal(fx_held(&f, w), 0);
    drv_balancer_stats_get(f.b, &st);
    assert_int_equal(st.queued + st.assigned + st.running, 0);
    assert_int_equal(drv_balancer_cancel(f.b, 9999, 5, &d), -1);
    fx_close(&f);
}

/* ---- determinism ---- */

typedef struct trace {
    drv_decision d[4096];
    size_t n;
} trace;

static uint32_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

static void record(trace *tr, const drv_decision *d, size_t n)
{
    for (size_t i = 0; i < n && tr->n < 4096; i++)
        tr->d[tr->n++] = d[i];
}

/* A mixed fleet and suite driven through every call with a fixed random sequence. */
static void run_script(trace *tr, bool with_pred)
{
    fx f;
    if (with_pred)
        fx_open_pred(&f);
    else
        fx_open(&f);
    drv_balancer_config_default(&f.cfg); /* thermal ramp and prefetch on */
    fx_start(&f);
    fx_worker(&f, "cpu-a", fx_cpu_caps(&f, 8, 32, NULL), 4, 1, 0);
    fx_worker(&f, "cpu-b", fx_cpu_caps(&f, 16, 64, NULL), 8, 1.5f, 0);
    fx_worker(&f, "gpu", fx_gpu_caps(&f, 8, 2, 16, NULL), 4, 2, 0);
    fx_worker(&f, "web", fx_cpu_caps(&f, 8, 32, "webgpu,chromium"), 4, 1, 0);
    drv_requirements reqs[4] = {fx_req(&f, NULL, NULL, NULL), fx_req(&f, "cuda", NULL, NULL),
                                fx_req(&f, "webgpu", NULL, NULL), fx_req(&f, NULL, NULL, NULL)};
    reqs[3].cpu_cores = 4;
    const char *models[] = {NULL, "bert-base-uncased", "google/vit-base-patch16-224",
                            "whisper-tiny"};
    const char *types[] = {NULL, "unit", "performance"};
    uint64_t seed = 7;
    drv_tref live[512];
    size_t n_live = 0;
    drv_decision d[FX_MAX_DECISIONS];
    for (int step = 0; step < 300; step++) {
        double now = step * 0.5;
        uint32_t r = rnd(&seed) % 10;
        if (r < 4 && n_live < 512) {
            fx_test s = {.id = (uint64_t)step + 1,
                         .priority = (int32_t)(rnd(&seed) % 5) * 50,
                         .prio_set = true,
                         .test_type = types[rnd(&seed) % 3],
                         .model_id = models[rnd(&seed) % 4],
                         .req = &reqs[rnd(&seed) % 4],
                         .max_retries = 1};
            live[n_live++] = fx_submit_spec(&f, &s, now);
        }
        size_t n = fx_place(&f, now, d);
        record(tr, d, n);
        /* Start, finish or cancel some of what is held. */
        for (size_t i = 0; i < n_live; i++) {
            drv_tref t = live[i];
            drv_task_state st = drv_balancer_task_state(f.b, t);
            uint32_t roll = rnd(&seed) % 10;
            drv_decision one;
            if (st == DRV_TASK_ASSIGNED && roll < 6) {
                drv_balancer_started(f.b, t, now);
            } else if (st == DRV_TASK_RUNNING && roll < 4) {
                drv_result res = {.exit_code = roll == 0,
                                  .duration_s = 1 + roll,
                                  .infra_failure = roll == 3 && step % 7 == 0};
                if (drv_balancer_finished(f.b, t, now, &res, &one) == 0)
                    record(tr, &one, 1);
            } else if (st == DRV_TASK_QUEUED && roll == 9 && step % 5 == 0) {
                if (drv_balancer_cancel(f.b, t, now, &one) == 0)
                    record(tr, &one, 1);
            }
            if (drv_task_state_final(drv_balancer_task_state(f.b, t)) ||
                drv_balancer_task_state(f.b, t) == DRV_TASK_STATE_COUNT)
                live[i--] = live[--n_live];
        }
        if (step % 20 == 10)
            record(tr, d, drv_balancer_rebalance(f.b, now, d, FX_MAX_DECISIONS));
        if (step == 100)
            record(tr, d, drv_balancer_worker_lost(f.b, 1, now, d, FX_MAX_DECISIONS));
        if (step == 150)
            drv_balancer_worker_back(f.b, 1, now);
        if (step % 13 == 0)
            drv_balancer_worker_heartbeat(f.b, 2, now, 0.4, 60, false, step % 26 == 0);
    }
    fx_close(&f);
}

static void test_same_calls_same_decisions(void **state)
{
    (void)state;
    static trace a, b;
    for (int pred = 0; pred < 2; pred++) {
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
        run_script(&a, pred);
        run_script(&b, pred);
        assert_true(a.n > 100); /* the script does exercise the balancer */
        assert_int_equal(a.n, b.n);
        for (size_t i = 0; i < a.n; i++) {
            const drv_decision *x = &a.d[i], *y = &b.d[i];
            if (x->kind != y->kind || x->reason != y->reason || x->state != y->state ||
                x->task != y->task || x->task_id != y->task_id || x->worker != y->worker ||
                x->from_worker != y->from_worker || x->unmet != y->unmet)
                fail_msg("decision %zu differs (pred %d): test %llu on %u vs test %llu on %u", i,
                         pred, (unsigned long long)x->task_id, x->worker,
                         (unsigned long long)y->task_id, y->worker);
        }
    }
}

/* ---- the fleet ---- */

static void test_worker_remove_refuses_a_worker_holding_tests(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_wref w = fx_cpu_worker(&f, "w0", 2, 0);
    drv_tref t = fx_submit(&f, 1, 0);
    assert_int_equal(fx_place_one(&f, 0), w);
    drv_error err = {{0}};
    assert_int_equal(drv_balancer_worker_remove(f.b, w, &err), -1);
    assert_string_equal(err.msg, "worker \"w0\": still holds 1 tests");
    assert_int_equal(drv_balancer_worker_count(f.b), 1);
    assert_int_equal(drv_balancer_task_worker(f.b, t), w); /* nothing changed */
    /* Draining: it finishes what it holds and takes nothing new; then it can go. */
    drv_balancer_worker_set_health(f.b, w, DRV_HEALTH_DRAINING, "shutdown", 1);
    fx_submit(&f, 2, 1);
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&f, 1, d), 0);
    fx_run(&f, t, 1, fx_exit(0, 1));
    assert_int_equal(drv_balancer_worker_remove(f.b, w, &err), 0);
    assert_int_equal(drv_balancer_worker_count(f.b), 0);
    /* Its reference stays below the bound loops over workers use (the coordinator's
     * ticks missed a worker joined after a forgotten one when they used the count). */
    assert_int_equal(drv_balancer_worker_refs(f.b), 1);
    assert_int_equal(drv_balancer_worker_find(f.b, "w0"), -1);
    assert_int_equal(drv_balancer_worker_remove(f.b, w, &err), -1); /* not twice */
    /* The name is free again: a new worker, a new index, and it gets the waiting test. */
    drv_wref again = fx_cpu_worker(&f, "w0", 2, 3);
    assert_int_not_equal(again, w);
    assert_int_equal(drv_balancer_worker_find(f.b, "w0"), again);
    assert_int_equal(fx_place_one(&f, 3), again);
    assert_int_equal(drv_balancer_worker_count(f.b), 1);
    assert_int_equal(drv_balancer_worker_refs(f.b), 2);
    assert_true(again < drv_balancer_worker_refs(f.b));
    fx_close(&f);
}

static void test_worker_add_and_submit_reject_bad_input(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    fx_cpu_worker(&f, "w0", 1, 0);
    drv_error err = {{0}};
    drv_worker_spec dup = {.name = "w0", .caps = fx_cpu_caps(&f, 4, 8, NULL)};
    assert_int_equal(drv_balancer_worker_add(f.b, &dup, 0, &err), -1);
    fx_assert_contains(err.msg, "w0");
    drv_worker_spec empty = {.name = "", .caps = fx_cpu_caps(&f, 4, 8, NULL)};
    assert_int_equal(drv_balancer_worker_add(f.b, &empty, 0, &err), -1);
    assert_int_equal(drv_balancer_worker_count(f.b), 1);
    drv_task t;
    drv_task_init(&t);
    t.id = 5;
    t.name = "too-urgent";
    t.priority = DRV_PRIORITY_MAX + 1;
    assert_int_equal(drv_balancer_submit(f.b, &t, 0, &err), -1);
    fx_assert_contains(err.msg, "too-urgent");
    fx_assert_contains(err.msg, "priority");
    t.priority = 100;
    t.name = NULL;
    assert_int_equal(drv_balancer_submit(f.b, &t, 0, &err), -1);
    drv_balancer_stats st;
    drv_balancer_stats_get(f.b, &st);
    assert_int_equal(st.queued, 0);
    fx_close(&f);
}

/* A class of n workers of `cores` cores (2 x cores slots, 32 GiB), each running `tests`
 * one-core unit tests placed at 0 (the workers into busy[] unless NULL), then one more
 * worker of the class, `last`, given one long one-core test at 1: the most loaded, last
 * in the class's least-loaded ordering. Returns it; *id is the next test id. */
static drv_wref busy_class_and_last(fx *f, int n, uint32_t cores, int tests, drv_wref *busy,
                                    const char *last_name, uint64_t *id)
{
    char name[32];
    for (int k = 0; k < n; k++) {
        snprintf(name, sizeof name, "busy-%03d", k);
        drv_wref w = fx_worker(f, name, fx_cpu_caps(f, cores, 32, NULL), 2 * cores, 1.0f, 0);
        if (busy)
            busy[k] = w;
    }
    drv_requirements one = fx_req(f, NULL, NULL, NULL);
    one.cpu_cores = 1;
    drv_decision d[FX_MAX_DECISIONS];
    for (int k = 0; k < n * tests; k++) {
        fx_test t = {.id = (*id)++, .req = &one, .test_type = "unit"};
        fx_submit_spec(f, &t, 0);
    }
    size_t placed = 0;
    for (size_t m; (m = fx_place(f, 0, d)) > 0;)
        placed += m;
    assert_int_equal(placed, (size_t)(n * tests));
    drv_wref last = fx_worker(f, last_name, fx_cpu_caps(f, cores, 32, NULL), 2 * cores, 1.0f, 1);
    fx_test longest = {.id = (*id)++,
                       .req = &one,
                       .test_type = "performance",
                       .model_id = "meta-llama/Llama-2-7b-hf"};
    fx_submit_spec(f, &longest, 1);
    assert_int_equal(fx_place_one(f, 1), last);
    return last;
}

/* A test that fits only one worker of a large class finds it even when that worker sits
 * deep in the class's ordering and nothing about it changed since it last took work: 39
 * workers have every core busy with short tests, the 40th holds one long test (the most
 * loaded, last in the least-loaded ordering) and has 7 cores free. A candidate search
 * that stopped 15 places into the heap left such tests waiting while the cores were free
 * (the MetaCentrum trace's jobs waited hours for one). */
static void test_wide_test_finds_the_one_worker_that_fits(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    uint64_t id = 1;
    drv_wref last = busy_class_and_last(&f, 39, 8, 8, NULL, "last", &id);
    drv_requirements one = fx_req(&f, NULL, NULL, NULL);
    one.cpu_cores = 1;
    drv_requirements seven = one;
    seven.cpu_cores = 7;
    fx_test wide = {.id = id++, .req = &seven, .test_type = "unit"};
    fx_submit_spec(&f, &wide, 2);
    drv_wref w = fx_place_one(&f, 2);
    if (w != last)
        fail_msg("the 7-core test went to %s, not to \"last\"", fx_wname(&f, w));
    fx_close(&f);
}

/* meta: a look past the top of a class's ordering that found nothing is remembered, so
 * the next test asking as much or more does not look again; a worker that comes into the
 * places looked at without growing (others leaving the ordering) voids it. 127 workers
 * with one core free each and one ("deep") with three free, last in the least-loaded
 * ordering of 128 (a leaf, 64 places or more down): a 2-core test finds nothing; once 64
 * of the others drain, deep is within the places looked at, and a 2-core test asking a
 * little memory too goes there. Remembering the miss until a worker can take more sent
 * it nowhere. */
static void test_a_remembered_miss_ends_when_a_fit_comes_into_view(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_wref busy[127];
    uint64_t id = 1;
    drv_wref deep = busy_class_and_last(&f, 127, 4, 3, busy, "deep", &id);
    drv_requirements one = fx_req(&f, NULL, NULL, NULL);
    one.cpu_cores = 1;
    drv_decision d[FX_MAX_DECISIONS];
    drv_requirements two = one;
    two.cpu_cores = 2;
    fx_test first = {.id = id++, .req = &two, .test_type = "unit"};
    fx_submit_spec(&f, &first, 2);
    assert_int_equal(fx_place(&f, 2, d), 0); /* deep is out of sight: remembered */
    for (int k = 0; k < 64; k++)
        drv_balancer_worker_set_health(f.b, busy[k], DRV_HEALTH_DRAINING, "leaving", 3);
    drv_requirements two_mem = two;
    two_mem.memory_mb = 1;
    fx_test second = {.id = id++, .req = &two_mem, .test_type = "unit"};
    fx_submit_spec(&f, &second, 3);
    drv_wref w = fx_place_one(&f, 3);
    if (w != deep)
        fail_msg("the 2-core test went to %s, not to \"deep\"", fx_wname(&f, w));
    fx_close(&f);
}

/* A test that needs a whole worker is not passed over for ever by one-core tests that keep
 * taking each core it frees: once tests submitted 30 s after it are placed before it while
 * the worker has free slots, the worker is kept for it (takes no more tests that need
 * cores) and it runs when the cores it holds drain. Without the reservation it waited as
 * long as one-core tests came. */
static void test_whole_worker_test_is_not_starved(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_wref w = fx_worker(&f, "box", fx_cpu_caps(&f, 8, 32, NULL), 16, 1.0f, 0);
    drv_requirements one = fx_req(&f, NULL, NULL, NULL);
    one.cpu_cores = 1;
    drv_requirements all = one;
    all.cpu_cores = 8;
    drv_decision d[FX_MAX_DECISIONS];
    drv_tref running[64];
    size_t n_running = 0, first = 0;
    uint64_t id = 1;
    for (int k = 0; k < 8; k++) {
        fx_test t = {.id = id++, .req = &one, .test_type = "unit"};
        running[n_running++] = fx_submit_spec(&f, &t, 0);
    }
    fx_test wide_spec = {.id = id++, .req = &all, .test_type = "unit"};
    drv_tref wide = fx_submit_spec(&f, &wide_spec, 0);
    assert_int_equal(fx_place(&f, 0, d), 8);
    for (size_t k = 0; k < n_running; k++)
        assert_int_equal(drv_balancer_started(f.b, running[k], 0), 0);
    /* every 10 s the oldest one-core test ends and a new one comes */
    double placed_at = -1;
    for (int step = 1; step <= 40 && placed_at < 0; step++) {
        double now = step * 10.0;
        if (first < n_running) {
            drv_result res = fx_exit(0, 10);
            drv_decision fin;
            assert_int_equal(drv_balancer_finished(f.b, running[first++], now, &res, &fin), 0);
        }
        fx_test t = {.id = id++, .req = &one, .test_type = "unit"};
        fx_submit_spec(&f, &t, now);
        size_t n = fx_place(&f, now, d);
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(d[k].kind, DRV_D_PLACED);
            assert_int_equal(d[k].worker, w);
            if (d[k].task == wide)
                placed_at = now;
            else if (n_running < 64) {
                assert_int_equal(drv_balancer_started(f.b, d[k].task, now), 0);
                running[n_running++] = d[k].task;
            }
        }
    }
    print_message("the 8-core test was placed at %.0f s\n", placed_at);
    if (!(placed_at > 0 && placed_at <= 120))
        fail_msg("the 8-core test was placed at %g s (never: -1)", placed_at);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cuda_tests_only_go_to_the_cuda_worker),
        cmocka_unit_test(test_tag_sets_route_tests),
        cmocka_unit_test(test_rerun_prefers_another_worker),
        cmocka_unit_test(test_unschedulable_names_the_unmet_requirement),
        cmocka_unit_test(test_unschedulable_waits_for_the_grace),
        cmocka_unit_test(test_a_worker_joining_within_the_grace_takes_it),
        cmocka_unit_test(test_losing_the_only_capable_worker_is_not_a_verdict),
        cmocka_unit_test(test_removing_the_only_capable_worker_reports_waiting_tests),
        cmocka_unit_test(test_explain_no_workers_yet),
        cmocka_unit_test(test_explain_busy_backpressure_warming_overload),
        cmocka_unit_test(test_warming_worker_ramps_up),
        cmocka_unit_test(test_aging_works_at_50_ms_with_an_epoch_clock),
        cmocka_unit_test(test_analyzer_preference_is_soft),
        cmocka_unit_test(test_equal_priority_longest_predicted_first),
        cmocka_unit_test(test_long_test_goes_ahead_of_short_slightly_urgent_ones),
        cmocka_unit_test(test_overloaded_worker_gets_nothing_until_cleared),
        cmocka_unit_test(test_prefetch_window_bounds_assigned_tests),
        cmocka_unit_test(test_prefetch_by_measured_runs_needs_several),
        cmocka_unit_test(test_lost_worker_requeues_then_retries_run_out),
        cmocka_unit_test(test_assigned_tests_of_a_lost_worker_keep_their_retries),
        cmocka_unit_test(test_lost_worker_hands_back_everything_in_pieces),
        cmocka_unit_test(test_exit_status_decides_the_outcome),
        cmocka_unit_test(test_infra_failures_quarantine_a_worker),
        cmocka_unit_test(test_restarts_do_not_quarantine),
        cmocka_unit_test(test_idle_worker_steals_when_it_pays),
        cmocka_unit_test(test_idle_move_cost_applies_when_queue_is_empty),
        cmocka_unit_test(test_steals_highest_priority_first),
        cmocka_unit_test(test_unmove_gives_the_test_back),
        cmocka_unit_test(test_rebalance_moves_to_idle_workers),
        cmocka_unit_test(test_steal_idle_acts_when_the_queue_is_empty),
        cmocka_unit_test(test_steal_uses_current_predictions),
        cmocka_unit_test(test_a_moved_test_is_not_moved_back_within_the_holdoff),
        cmocka_unit_test(test_busy_worker_steals_nothing),
        cmocka_unit_test(test_cancel_queued_and_assigned),
        cmocka_unit_test(test_same_calls_same_decisions),
        cmocka_unit_test(test_worker_remove_refuses_a_worker_holding_tests),
        cmocka_unit_test(test_worker_add_and_submit_reject_bad_input),
        cmocka_unit_test(test_wide_test_finds_the_one_worker_that_fits),
        cmocka_unit_test(test_whole_worker_test_is_not_starved),
        cmocka_unit_test(test_a_remembered_miss_ends_when_a_fit_comes_into_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
