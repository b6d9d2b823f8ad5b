/* test_speculation.c - which running tests get a speculative copy, and where: only
 * past their predicted p90 by the margin, never a test marked not idempotent or one
 * copied already, never on its own worker or a full one, the fastest free place first,
 * never where the copy would take longer than the test has run; nothing when off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "balancer_fixture.h"

/* A balancer whose predictor knows test "k": 2 s on a speed-1 worker, with one worker,
 * a (speed 1), that will hold it; the test adds b (speed 1) and others after start_k(). */
typedef struct rig {
    fx f;
    drv_wref a, b;
    uint64_t next_id;
} rig;

static void rig_open(rig *r, bool speculation)
{
    fx_open_pred(&r->f);
    r->f.cfg.settings.speculation = speculation;
    fx_start(&r->f);
    r->a = fx_cpu_worker(&r->f, "a", 1, 0);
    r->b = DRV_REF_NONE;
    r->next_id = 1;
    /* Learn "k" (2 s) on a. */
    fx_test t = {.id = r->next_id++, .name = "k"};
    drv_tref ref = fx_submit_spec(&r->f, &t, 0);
    assert_int_equal(fx_place_one(&r->f, 0), r->a);
    fx_run(&r->f, ref, 0, fx_exit(0, 2));
}

/* Submits "k" (not idempotent when asked) at `now`, places it on a and starts it, then
 * adds b; returns its reference. */
static drv_tref start_k(rig *r, double now, bool not_idempotent)
{
    drv_task t;
    drv_task_init(&t);
    t.id = r->next_id++;
    t.name = "k";
    t.not_idempotent = not_idempotent;
    drv_error err = {{0}};
    int64_t ref = drv_balancer_submit(r->f.b, &t, now, &err);
    assert_true(ref >= 0);
    drv_wref w = fx_place_one(&r->f, now);
    assert_int_equal(w, r->a);
    assert_int_equal(drv_balancer_started(r->f.b, (drv_tref)ref, now), 0);
    r->b = fx_cpu_worker(&r->f, "b", 1, now);
    return (drv_tref)ref;
}

/* A copy of orig started on b at now (start_k's test, running on a). */
static drv_tref copy_on_b(rig *r, drv_tref orig, double now)
{
    drv_error err = {{0}};
    int64_t copy = drv_balancer_copy(r->f.b, orig, r->b, now, &err);
    assert_true(copy >= 0);
    assert_int_equal(drv_balancer_started(r->f.b, (drv_tref)copy, now), 0);
    return (drv_tref)copy;
}

static size_t stragglers(rig *r, double now, drv_straggler *out)
{
    return drv_balancer_stragglers(r->f.b, now, out, 8);
}

static void test_only_past_p90_and_the_margin(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, true);
    drv_tref t = start_k(&r, 10, false);
    drv_straggler s[8];
    /* p90 of one 2 s sample is 2.64 s; from the test's own runs on this class the margin
     * is the floor alone, 2 s / 4: 3.14 s in all. */
    assert_int_equal(stragglers(&r, 10 + 2.5, s), 0);
    assert_int_equal(stragglers(&r, 10 + 3.1, s), 0);
    assert_int_equal(stragglers(&r, 10 + 3.2, s), 1);
    assert_int_equal(s[0].task, t);
    assert_int_equal(s[0].holder, r.a);
    assert_int_equal(s[0].target, r.b);
    assert_true(s[0].running_s > 3.1 && s[0].running_s < 3.3);
    assert_true(s[0].copy_s > 1.9 && s[0].copy_s < 2.1);
    /* Once copied, never again. */
    assert_int_equal(drv_balancer_speculated(r.f.b, t), 0);
    assert_int_equal(stragglers(&r, 10 + 60, s), 0);
    fx_close(&r.f);
}

static void test_not_idempotent_or_off_gets_no_copy(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, true);
    start_k(&r, 10, true);
    drv_straggler s[8];
    assert_int_equal(stragglers(&r, 100, s), 0);
    fx_close(&r.f);

    rig_open(&r, false);
    start_k(&r, 10, false);
    assert_int_equal(stragglers(&r, 100, s), 0);
    fx_close(&r.f);
}

static void test_no_free_slot_no_copy(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, true);
    start_k(&r, 10, false);
    /* b busy with something else. */
    fx_test other = {.id = 99, .name = "other"};
    fx_submit_spec(&r.f, &other, 10);
    assert_int_equal(fx_place_one(&r.f, 10), r.b);
    drv_straggler s[8];
    assert_int_equal(stragglers(&r, 100, s), 0);
    fx_close(&r.f);
}

/* The copy goes where it runs shortest (a faster class before b), never to a class where
 * it would take longer than the test has run already. */
static void test_fastest_free_place_first_and_never_a_slower_one(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, true);
    drv_tref t = start_k(&r, 10, false);
    drv_wref quick = fx_worker(&r.f, "quick", fx_cpu_caps(&r.f, 8, 32, "quick"), 1, 4.0f, 10);
    drv_straggler s[8];
    assert_int_equal(stragglers(&r, 16, s), 1);
    assert_int_equal(s[0].task, t);
    assert_int_equal(s[0].target, quick);
    fx_close(&r.f);

    /* Only a 10x slower place is free: a copy there would run 20 s; after 6 s, none. */
    rig_open(&r, true);
    start_k(&r, 10, false);
    fx_test other = {.id = 99, .name = "other"};
    fx_submit_spec(&r.f, &other, 10);
    assert_int_equal(fx_place_one(&r.f, 10), r.b);
    drv_wref crawl = fx_worker(&r.f, "crawl", fx_cpu_caps(&r.f, 8, 32, "crawl"), 1, 0.1f, 10);
    assert_int_equal(stragglers(&r, 16, s), 0);
    /* ...after 30 s it is worth it even there. */
    assert_int_equal(stragglers(&r, 40, s), 1);
    assert_int_equal(s[0].target, crawl);
    fx_close(&r.f);
}

/* A copy holds a slot on its worker like a placement; the first to finish is the test,
 * the other is cancelled without using a retry; a full or own worker is refused. */
static void test_a_copy_holds_a_slot_and_uses_no_retry(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, true);
    drv_task t;
    drv_task_init(&t);
    t.id = 50;
    t.name = "k";
    t.max_retries = 2;
    drv_error err = {{0}};
    drv_tref orig = (drv_tref)drv_balancer_submit(r.f.b, &t, 10, &err);
    assert_int_equal(fx_place_one(&r.f, 10), r.a);
    assert_int_equal(drv_balancer_started(r.f.b, orig, 10), 0);
    r.b = fx_cpu_worker(&r.f, "b", 1, 10);
    assert_true(drv_balancer_copy(r.f.b, orig, r.a, 15, &err) < 0); /* its own worker */
    int64_t copy = drv_balancer_copy(r.f.b, orig, r.b, 15, &err);
    assert_true(copy >= 0);
    assert_int_equal(drv_balancer_task_id(r.f.b, (drv_tref)copy), 50);
    assert_int_equal(drv_balancer_task_worker(r.f.b, (drv_tref)copy), r.b);
    assert_int_equal(fx_held(&r.f, r.b), 1);
    assert_true(drv_balancer_copy(r.f.b, orig, r.b, 15, &err) < 0); /* copied already */
    drv_straggler s[8];
    assert_int_equal(stragglers(&r, 100, s), 0); /* copied: never again */
    /* The copy finishes first: it is the test; the original is cancelled. */
    drv_decision d;
    assert_int_equal(drv_balancer_started(r.f.b, (drv_tref)copy, 15), 0);
    drv_result ok = fx_exit(0, 2);
    assert_int_equal(drv_balancer_finished(r.f.b, (drv_tref)copy, 17, &ok, &d), 0);
    assert_int_equal(d.kind, DRV_D_FINAL);
    assert_int_equal(d.state, DRV_TASK_PASSED);
    assert_int_equal(d.task_id, 50);
    assert_int_equal(drv_balancer_drop_copy(r.f.b, orig, 17, &d), 0);
    assert_int_equal(fx_held(&r.f, r.a), 0);
    assert_int_equal(fx_held(&r.f, r.b), 0);
    drv_balancer_stats st;
    drv_balancer_stats_get(r.f.b, &st);
    assert_int_equal(st.requeued, 0);
    assert_int_equal(st.running + st.assigned + st.queued, 0);
    fx_close(&r.f);
}

/* spec4: a copy uses only capacity that would otherwise idle. Started while nothing
 * waits, it stays while nothing waits; once a test is submitted that has nowhere to start
 * but the copy's slot (held behind a full slot, or queued), the copy yields (the caller
 * kills it: its original goes on). A copy whose original is gone is the test: never. */
static void test_a_copy_yields_to_waiting_work(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, true);
    drv_tref orig = start_k(&r, 10, false);
    drv_tref copy = copy_on_b(&r, orig, 15);
    drv_tref y[4];
    assert_int_equal(drv_balancer_yielding(r.f.b, 15, y, 4), 0); /* nothing waits */
    fx_test t = {.id = 90, .name = "other"};
    drv_tref other = fx_submit_spec(&r.f, &t, 16);
    drv_decision pd[FX_MAX_DECISIONS];
    (void)fx_place(&r.f, 16, pd); /* a and b full: queued, or held behind a full slot */
    assert_true(drv_balancer_task_state(r.f.b, other) != DRV_TASK_RUNNING);
    assert_int_equal(drv_balancer_yielding(r.f.b, 16, y, 4), 1);
    assert_int_equal(y[0], copy);
    /* The original finishes first: the copy is cancelled as a loser, nothing yields. */
    drv_decision d;
    drv_result ok = fx_exit(0, 7);
    assert_int_equal(drv_balancer_finished(r.f.b, orig, 17, &ok, &d), 0);
    assert_int_equal(drv_balancer_yielding(r.f.b, 17, y, 4), 0);
    assert_int_equal(drv_balancer_drop_copy(r.f.b, copy, 17, &d), 0);
    fx_close(&r.f);
}

/* While tests are queued every slot is kept busy: a copy still goes ahead of the queue,
 * to a full worker (one beyond what placement fills it to), when its worker is suspect:
 * here the straggler is overdue against its own runs on that class. A test predicted
 * from another class only (its p90 may be a wrong class speed) waits until the other
 * slots would finish the rest of the work before its predicted finish. */
static void test_a_copy_while_tests_are_queued(void **state)
{
    (void)state;
    rig r;
    rig_open(&r, true);
    drv_tref t = start_k(&r, 10, false);
    /* Four more "k" (2 s each): b takes what placement gives it, the rest waits. */
    for (int i = 0; i < 4; i++) {
        fx_test k = {.id = 100 + (uint64_t)i, .name = "k"};
        fx_submit_spec(&r.f, &k, 10);
    }
    drv_decision d[FX_MAX_DECISIONS];
    assert_true(fx_place(&r.f, 10, d) >= 1);
    drv_balancer_stats st;
    drv_balancer_stats_get(r.f.b, &st);
    assert_true(st.queued > 0);
    drv_straggler s[8];
    /* Past its p90 and floor at 3.14 s. b starts a copy (a later attempt) before the
     * first attempts it holds (spec5, worker/agent.c queue_test): it waits only for b's
     * running test, overdue already, not for what placement gave b behind it. */
    assert_int_equal(stragglers(&r, 10 + 3.1, s), 0);
    assert_int_equal(stragglers(&r, 10 + 3.2, s), 1);
    assert_int_equal(s[0].task, t);
    assert_int_equal(s[0].target, r.b);
    assert_true(s[0].suspect);
    assert_false(s[0].replace); /* one test running on a: not a stuck worker */
    drv_error err = {{0}};
    assert_true(drv_balancer_copy(r.f.b, t, r.b, 10 + 3.2, &err) >= 0);
    fx_close(&r.f);
}

/* A worker whose test was superseded (its copy finished first, so it was killed running)
 * is suspect for a while (hangs come in runs on one machine): its next test gets a copy
 * once past its p90 (2 s: two runs of exactly 2 s), not its p90 and floor (2.5 s); a test
 * of the same kind elsewhere does not. */
static void suspect_after(bool by_user)
{
    rig r;
    rig_open(&r, true);
    drv_tref orig = start_k(&r, 10, false);
    drv_tref copy = copy_on_b(&r, orig, 15);
    drv_decision d;
    drv_result ok = fx_exit(0, 2);
    assert_int_equal(drv_balancer_finished(r.f.b, copy, 17, &ok, &d), 0);
    /* the loser dropped as a copy; or a user cancels the run's original instead */
    if (by_user)
        assert_int_equal(drv_balancer_cancel(r.f.b, orig, 17, &d), 0);
    else
        assert_int_equal(drv_balancer_drop_copy(r.f.b, orig, 17, &d), 0);
    /* Two more "k", one on a and one on b, and a free worker c for copies. */
    drv_tref k[2];
    for (int i = 0; i < 2; i++) {
        fx_test kt = {.id = 200 + (uint64_t)i, .name = "k"};
        k[i] = fx_submit_spec(&r.f, &kt, 17);
    }
    drv_decision placed[FX_MAX_DECISIONS];
    assert_int_equal(fx_place(&r.f, 17, placed), 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(drv_balancer_started(r.f.b, k[i], 17), 0);
    drv_tref on_a = drv_balancer_task_worker(r.f.b, k[0]) == r.a ? k[0] : k[1];
    assert_int_equal(drv_balancer_task_worker(r.f.b, on_a), r.a);
    drv_wref c = fx_cpu_worker(&r.f, "c", 1, 17);
    drv_straggler s[8];
    assert_int_equal(stragglers(&r, 17 + 1.9, s), 0);
    if (by_user) { /* a user's cancel is no evidence against a: p90 and floor as usual */
        assert_int_equal(stragglers(&r, 17 + 2.1, s), 0);
    } else {
        assert_int_equal(stragglers(&r, 17 + 2.1, s), 1);
        assert_int_equal(s[0].task, on_a);
        assert_int_equal(s[0].target, c);
        assert_true(s[0].suspect);
    }
    fx_close(&r.f);
}

static void test_a_suspect_worker_gets_copies_sooner(void **state)
{
    (void)state;
    suspect_after(false);
}

/* A user's cancel of an original whose copy had finished is not a superseded test: its
 * worker is not suspect. */
static void test_a_users_cancel_makes_no_suspect(void **state)
{
    (void)state;
    suspect_after(true);
}

/* Stop 17, misplaced tests (LATE): "long" ran 40 s on fast; placed on slow while fast was
 * busy (slow's speed was still its configured 1: 40 s predicted), it then turns out slow
 * runs the family at a quarter (four tests paired with their runs on fast). Once fast is
 * free it gets a copy there (40 s against the 120 s it has left on slow), marked
 * misplaced, not overdue; not while fast is busy, and not before four paired runs back
 * slow's speed. */
static void test_a_misplaced_test_gets_a_copy_where_it_ends_first(void **state)
{
    (void)state;
    fx f;
    fx_open_pred(&f);
    fx_start(&f);
    drv_wref fast = fx_worker(&f, "fast", fx_cpu_caps(&f, 8, 32, "fast"), 1, 1.0f, 0);
    double now = 0;
    const char *pairs[] = {"p1", "p2", "p3", "p4", "p5"};
    fx_test lt = {.id = 1, .name = "long"};
    drv_tref first = fx_submit_spec(&f, &lt, now);
    assert_int_equal(fx_place_one(&f, now), fast);
    fx_run(&f, first, now, fx_exit(0, 40));
    now += 40;
    for (int i = 0; i < 5; i++) {
        fx_test p = {.id = 10 + (uint64_t)i, .name = pairs[i]};
        drv_tref t = fx_submit_spec(&f, &p, now);
        assert_int_equal(fx_place_one(&f, now), fast);
        fx_run(&f, t, now, fx_exit(0, 2));
        now += 2;
    }
    drv_wref slow = fx_worker(&f, "slow", fx_cpu_caps(&f, 8, 32, "slow"), 2, 1.0f, now);
    /* fast busy with a blocker; "long" goes to slow, predicted 40 s there */
    drv_requirements on_fast = fx_req(&f, "fast", NULL, NULL);
    fx_test bt = {.id = 20, .name = "blocker", .req = &on_fast};
    drv_tref blocker = fx_start_on(&f, &bt, now, fast);
    lt.id = 2;
    drv_tref t = fx_start_on(&f, &lt, now, slow);
    double started = now;
    /* slow's speed from paired runs: 8 s against 2 s on fast */
    drv_requirements on_slow = fx_req(&f, "slow", NULL, NULL);
    drv_straggler s[8];
    for (int i = 0; i < 5; i++) {
        fx_test p = {.id = 30 + (uint64_t)i, .name = pairs[i], .req = &on_slow};
        drv_tref q = fx_submit_spec(&f, &p, now);
        assert_int_equal(fx_place_one(&f, now), slow);
        fx_run(&f, q, now, fx_exit(0, 8));
        now += 8;
        if (i == 2) /* three pairs: not enough to call the placement wrong */
            assert_int_equal(drv_balancer_stragglers(f.b, now, s, 8), 0);
    }
    assert_true(drv_balancer_predict(f.b, t, slow).mean_s > 150);
    /* fast still busy: no place that ends first */
    assert_int_equal(drv_balancer_stragglers(f.b, now, s, 8), 0);
    drv_decision d;
    drv_result r = fx_exit(0, now - started);
    assert_int_equal(drv_balancer_finished(f.b, blocker, now, &r, &d), 0);
    assert_int_equal(drv_balancer_stragglers(f.b, now, s, 8), 1);
    assert_int_equal(s[0].task, t);
    assert_int_equal(s[0].holder, slow);
    assert_int_equal(s[0].target, fast);
    assert_true(s[0].misplaced);
    assert_false(s[0].replace);
    assert_true(s[0].copy_s < 0.75 * (s[0].high_s - s[0].running_s));
    fx_close(&f);
}

/* Close calls: test "long" ran 40 s on class a; its next run went to class b (a busy),
 * where it is predicted from that run at a speed for b that is a guess (b's first runs
 * of the family, none paired). Once a is free, it is the last test to end and a copy on
 * a, predicted to end about as soon, races it; with `pairs` tests run on a and then on b,
 * b's speed is measured, the choice was no guess, and no copy starts. Returns how many
 * stragglers the balancer proposes then (the first in *out). */
static size_t close_call(int pairs, drv_straggler *out, drv_tref *t_out, drv_wref *a_out,
                         drv_wref *b_out)
{
    fx f;
    fx_open_pred(&f);
    fx_start(&f);
    drv_wref a = fx_worker(&f, "a", fx_cpu_caps(&f, 8, 32, "a"), 1, 1.0f, 0);
    drv_wref b = fx_worker(&f, "b", fx_cpu_caps(&f, 8, 32, "b"), 1, 1.0f, 0);
    double now = 0;
    fx_test lt = {.id = 1, .name = "long"};
    drv_requirements on_a = fx_req(&f, "a", NULL, NULL), on_b = fx_req(&f, "b", NULL, NULL);
    drv_tref first = fx_submit_spec(&f, &lt, now);
    assert_int_equal(fx_place_one(&f, now), a);
    fx_run(&f, first, now, fx_exit(0, 40));
    now += 40;
    const char *names[] = {"p1", "p2", "p3", "p4"};
    for (int i = 0; i < pairs; i++)
        for (int k = 0; k < 2; k++) {
            fx_test p = {.id = 10 + 2 * (uint64_t)i + (uint64_t)k,
                         .name = names[i],
                         .req = k == 0 ? &on_a : &on_b};
            drv_tref q = fx_submit_spec(&f, &p, now);
            assert_int_equal(fx_place_one(&f, now), k == 0 ? a : b);
            fx_run(&f, q, now, fx_exit(0, 2));
            now += 2;
        }
    /* a busy with a blocker: "long" goes to b */
    fx_test bt = {.id = 20, .name = "blocker", .req = &on_a};
    drv_tref blocker = fx_start_on(&f, &bt, now, a);
    lt.id = 2;
    drv_tref t = fx_start_on(&f, &lt, now, b);
    now += 1;
    /* a still busy: no place for a copy */
    assert_int_equal(drv_balancer_stragglers(f.b, now, out, 8), 0);
    drv_decision d;
    drv_result r = fx_exit(0, 1);
    assert_int_equal(drv_balancer_finished(f.b, blocker, now, &r, &d), 0);
    size_t n = drv_balancer_stragglers(f.b, now, out, 8);
    *t_out = t;
    *a_out = a;
    *b_out = b;
    fx_close(&f);
    return n;
}

static void test_a_close_call_gets_a_copy_on_the_other_class(void **state)
{
    (void)state;
    drv_straggler s[8];
    drv_tref t;
    drv_wref a, b;
    assert_int_equal(close_call(0, s, &t, &a, &b), 1);
    assert_int_equal(s[0].task, t);
    assert_int_equal(s[0].holder, b);
    assert_int_equal(s[0].target, a);
    assert_true(s[0].hedge);
    assert_false(s[0].misplaced);
    assert_false(s[0].replace);
    assert_true(s[0].copy_s <= 1.25 * (s[0].high_s - s[0].running_s));
    /* speeds measured from four paired runs: no guess to hedge */
    assert_int_equal(close_call(4, s, &t, &a, &b), 0);
}

/* spec5: a worker all of whose running tests (two or more) are overdue against their
 * own runs on its class looks stuck: the copies of its tests replace them (the caller
 * kills them at once). One overdue test beside one on time is no such proof. */
static void test_a_stuck_worker_s_copies_replace_its_tests(void **state)
{
    (void)state;
    fx f;
    fx_open_pred(&f);
    fx_start(&f);
    drv_wref a = fx_cpu_worker(&f, "a", 2, 0);
    /* Learn "k" (2 s) and "j" (1 s) on a's class. */
    const char *names[2] = {"k", "j"};
    for (int i = 0; i < 2; i++) {
        fx_test t = {.id = 1 + (uint64_t)i, .name = names[i]};
        drv_tref ref = fx_submit_spec(&f, &t, 0);
        assert_int_equal(fx_place_one(&f, 0), a);
        fx_run(&f, ref, 0, fx_exit(0, i == 0 ? 2 : 1));
    }
    drv_tref run[2];
    for (int i = 0; i < 2; i++) {
        fx_test t = {.id = 10 + (uint64_t)i, .name = names[i]};
        run[i] = fx_submit_spec(&f, &t, 10);
        assert_int_equal(fx_place_one(&f, 10), a);
        assert_int_equal(drv_balancer_started(f.b, run[i], 10), 0);
    }
    drv_wref b = fx_cpu_worker(&f, "b", 2, 10);
    drv_straggler s[8];
    /* "j" is past its p90 (1.32 s) and floor (0.5 s); "k" (p90 2.64 s) is not. */
    assert_int_equal(drv_balancer_stragglers(f.b, 10 + 2.0, s, 8), 1);
    assert_int_equal(s[0].task, run[1]);
    assert_int_equal(s[0].target, b);
    assert_false(s[0].replace);
    /* Both overdue: a looks stuck; each copy replaces its test. */
    assert_int_equal(drv_balancer_stragglers(f.b, 10 + 3.2, s, 8), 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(s[i].holder, a);
        assert_int_equal(s[i].target, b);
        assert_true(s[i].replace);
    }
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_only_past_p90_and_the_margin),
        cmocka_unit_test(test_not_idempotent_or_off_gets_no_copy),
        cmocka_unit_test(test_no_free_slot_no_copy),
        cmocka_unit_test(test_fastest_free_place_first_and_never_a_slower_one),
        cmocka_unit_test(test_a_copy_holds_a_slot_and_uses_no_retry),
        cmocka_unit_test(test_a_copy_yields_to_waiting_work),
        cmocka_unit_test(test_a_copy_while_tests_are_queued),
        cmocka_unit_test(test_a_suspect_worker_gets_copies_sooner),
        cmocka_unit_test(test_a_users_cancel_makes_no_suspect),
        cmocka_unit_test(test_a_stuck_worker_s_copies_replace_its_tests),
        cmocka_unit_test(test_a_misplaced_test_gets_a_copy_where_it_ends_first),
        cmocka_unit_test(test_a_close_call_gets_a_copy_on_the_other_class),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
