/* test_ordering.c - tests that run after others (after, run_anyway) and tests that
 * exclude each other (locks, exclusive) in the balancer: a dependent is not placed
 * before what it runs after is final, is skipped when that did not pass (unless it runs
 * anyway), chains skip through; no two holders of a lock are held at once; an exclusive
 * test waits for an empty fleet and runs alone; cancelling a waiting or parked test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "balancer_fixture.h"

typedef struct ord {
    char *locks[4];
    bool exclusive;
    bool run_anyway;
} ord;

/* Submits test id after the given references, with these locks. */
static drv_tref submit_ordered(fx *f, uint64_t id, const drv_tref *after, size_t n_after,
                               uint32_t not_passed, const ord *o, double now)
{
    char name[32];
    snprintf(name, sizeof name, "test-%llu", (unsigned long long)id);
    drv_task t;
    drv_task_init(&t);
    t.id = id;
    t.name = name;
    if (o) {
        t.locks = o->locks[0] ? (char **)o->locks : NULL;
        t.exclusive = o->exclusive;
        t.run_anyway = o->run_anyway;
    }
    drv_error err = {{0}};
    int64_t r = drv_balancer_submit_after(f->b, &t, after, n_after, not_passed, now, &err);
    if (r < 0)
        fail_msg("submit %s: %s", name, err.msg);
    return (drv_tref)r;
}

/* Places and returns how many PLACED decisions there were; final ones go to finals. */
static size_t place(fx *f, double now, drv_decision *placed, drv_decision *finals, size_t *n_final)
{
    drv_decision d[FX_MAX_DECISIONS];
    size_t n = fx_place(f, now, d), np = 0;
    *n_final = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i].kind == DRV_D_PLACED)
            placed[np++] = d[i];
        else if (d[i].kind == DRV_D_FINAL)
            finals[(*n_final)++] = d[i];
    }
    return np;
}

static void test_a_chain_runs_in_order(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    fx_cpu_worker(&f, "w", 8, 0);
    drv_tref a = fx_submit(&f, 1, 0);
    drv_tref b = submit_ordered(&f, 2, &a, 1, 0, NULL, 0);
    drv_tref c = submit_ordered(&f, 3, &b, 1, 0, NULL, 0);
    drv_decision p[FX_MAX_DECISIONS], fin[FX_MAX_DECISIONS];
    size_t nf;
    assert_int_equal(place(&f, 0, p, fin, &nf), 1); /* eight free slots, one test ready */
    assert_int_equal(p[0].task_id, 1);
    assert_int_equal(drv_balancer_task_state(f.b, b), DRV_TASK_QUEUED);
    char why[256];
    assert_int_equal(drv_balancer_explain(f.b, c, 0, why, sizeof why), 0);
    fx_assert_contains(why, "runs after other tests: 1 of them is not finished");
    drv_decision d = fx_run(&f, a, 1, fx_exit(0, 1));
    assert_int_equal(d.state, DRV_TASK_PASSED);
    assert_int_equal(place(&f, 2, p, fin, &nf), 1);
    assert_int_equal(p[0].task_id, 2);
    fx_run(&f, b, 3, fx_exit(0, 1));
    assert_int_equal(place(&f, 4, p, fin, &nf), 1);
    assert_int_equal(p[0].task_id, 3);
    fx_close(&f);
}

static void test_a_failed_dependency_skips_the_chain_unless_run_anyway(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    fx_cpu_worker(&f, "w", 8, 0);
    drv_tref setup = fx_submit(&f, 1, 0);
    drv_tref uses = submit_ordered(&f, 2, &setup, 1, 0, NULL, 0);
    drv_tref uses2 = submit_ordered(&f, 3, &uses, 1, 0, NULL, 0);
    ord anyway = {.run_anyway = true};
    drv_tref after_both[] = {setup, uses};
    drv_tref cleanup = submit_ordered(&f, 4, after_both, 2, 0, &anyway, 0);
    drv_decision p[FX_MAX_DECISIONS], fin[FX_MAX_DECISIONS];
    size_t nf;
    assert_int_equal(place(&f, 0, p, fin, &nf), 1);
    fx_run(&f, setup, 1, fx_exit(1, 1));
    /* 2 is skipped, then 3 (it runs after 2), and cleanup runs anyway. */
    assert_int_equal(place(&f, 2, p, fin, &nf), 1);
    assert_int_equal(p[0].task, cleanup);
    assert_int_equal(nf, 2);
    assert_int_equal(fin[0].task_id, 2);
    assert_int_equal(fin[0].state, DRV_TASK_SKIPPED);
    assert_int_equal(fin[0].reason, DRV_R_AFTER_NOT_PASSED);
    assert_int_equal(fin[1].task_id, 3);
    assert_int_equal(fin[1].state, DRV_TASK_SKIPPED);
    (void)uses2;
    drv_balancer_stats st;
    drv_balancer_stats_get(f.b, &st);
    assert_int_equal(st.skipped, 2);
    assert_int_equal(st.queued, 0);
    fx_close(&f);
}

static void test_dependencies_already_final_count(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    fx_cpu_worker(&f, "w", 8, 0);
    /* After a restart: what it ran after is final, one did not pass. */
    submit_ordered(&f, 1, NULL, 0, 1, NULL, 0);
    ord anyway = {.run_anyway = true};
    submit_ordered(&f, 2, NULL, 0, 1, &anyway, 0);
    drv_decision p[FX_MAX_DECISIONS], fin[FX_MAX_DECISIONS];
    size_t nf;
    assert_int_equal(place(&f, 0, p, fin, &nf), 1);
    assert_int_equal(p[0].task_id, 2);
    assert_int_equal(nf, 1);
    assert_int_equal(fin[0].task_id, 1);
    assert_int_equal(fin[0].state, DRV_TASK_SKIPPED);
    /* A reference that is not live is refused, and nothing is queued. */
    drv_task t;
    drv_task_init(&t);
    t.id = 9;
    t.name = "x";
    drv_tref gone = 12345;
    drv_error err = {{0}};
    assert_true(drv_balancer_submit_after(f.b, &t, &gone, 1, 0, 0, &err) < 0);
    fx_assert_contains(err.msg, "after[0]");
    drv_balancer_stats st;
    drv_balancer_stats_get(f.b, &st);
    assert_int_equal(st.queued, 0);
    fx_close(&f);
}

static void test_tests_sharing_a_lock_never_run_together(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    fx_cpu_worker(&f, "w1", 4, 0);
    fx_cpu_worker(&f, "w2", 4, 0);
    ord db = {.locks = {"db"}};
    ord db_gpu = {.locks = {"gpu", "db"}};
    drv_tref t1 = submit_ordered(&f, 1, NULL, 0, 0, &db, 0);
    drv_tref t2 = submit_ordered(&f, 2, NULL, 0, 0, &db_gpu, 0);
    drv_tref t3 = submit_ordered(&f, 3, NULL, 0, 0, &db, 0);
    fx_submit(&f, 4, 0);
    fx_submit(&f, 5, 0);
    drv_decision p[FX_MAX_DECISIONS], fin[FX_MAX_DECISIONS];
    size_t nf;
    /* One of the db tests and both free ones. */
    assert_int_equal(place(&f, 0, p, fin, &nf), 3);
    drv_tref held = DRV_REF_NONE;
    int db_placed = 0;
    for (int i = 0; i < 3; i++)
        if (p[i].task == t1 || p[i].task == t2 || p[i].task == t3) {
            held = p[i].task;
            db_placed++;
        }
    assert_int_equal(db_placed, 1);
    char why[256];
    drv_tref waiting = held == t1 ? t2 : t1;
    assert_int_equal(drv_balancer_explain(f.b, waiting, 0, why, sizeof why), 0);
    fx_assert_contains(why, "lock \"db\"");
    /* Nothing more while it is held. */
    assert_int_equal(place(&f, 1, p, fin, &nf), 0);
    fx_run(&f, held, 1, fx_exit(0, 1));
    assert_int_equal(place(&f, 2, p, fin, &nf), 1);
    drv_tref second = p[0].task;
    assert_true(second != held && (second == t1 || second == t2 || second == t3));
    /* Lost with its worker: the lock is given back and the third runs. */
    drv_decision lost[16];
    drv_wref w = p[0].worker;
    assert_int_equal(drv_balancer_worker_lost(f.b, w, 3, lost, 16) >= 1, 1);
    size_t np = place(&f, 4, p, fin, &nf); /* the free tests it held come back too */
    int third = 0;
    for (size_t i = 0; i < np; i++)
        third += p[i].task == t1 || p[i].task == t2 || p[i].task == t3;
    assert_int_equal(third, 1);
    fx_close(&f);
}

/* suite2: a counted lock "cap#2" lets two of its tests run at once (drover ctest -j 2):
 * of five, two are placed on a fleet with eight free slots; each that finishes lets the
 * next one in; "cap" without a count shares the lock's name and its two slots. */
static void test_a_counted_lock_caps_how_many_run_at_once(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    fx_cpu_worker(&f, "w1", 4, 0);
    fx_cpu_worker(&f, "w2", 4, 0);
    ord cap = {.locks = {"cap#2"}};
    drv_tref t[5];
    for (int i = 0; i < 5; i++)
        t[i] = submit_ordered(&f, (uint64_t)i + 1, NULL, 0, 0, &cap, 0);
    drv_decision p[FX_MAX_DECISIONS], fin[FX_MAX_DECISIONS];
    size_t nf;
    assert_int_equal(place(&f, 0, p, fin, &nf), 2);
    drv_tref first = p[0].task;
    drv_tref held[5] = {p[0].task, p[1].task};
    size_t n_held = 2;
    char why[256];
    for (int i = 0; i < 5; i++)
        if (t[i] != p[0].task && t[i] != p[1].task) {
            assert_int_equal(drv_balancer_explain(f.b, t[i], 0, why, sizeof why), 0);
            fx_assert_contains(why, "lock \"cap\", whose 2 slots other tests hold");
            break;
        }
    assert_int_equal(place(&f, 1, p, fin, &nf), 0);
    for (int k = 0; k < 3; k++) { /* one leaves, one more comes in */
        fx_run(&f, held[k], 1 + k, fx_exit(0, 1));
        assert_int_equal(place(&f, 2 + k, p, fin, &nf), 1);
        held[n_held++] = p[0].task;
        assert_true(p[0].task != first);
    }
    fx_close(&f);
}

static void test_an_exclusive_test_runs_alone(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    fx_cpu_worker(&f, "w", 8, 0);
    drv_tref a = fx_submit(&f, 1, 0);
    drv_decision p[FX_MAX_DECISIONS], fin[FX_MAX_DECISIONS];
    size_t nf;
    assert_int_equal(place(&f, 0, p, fin, &nf), 1);
    ord alone = {.exclusive = true};
    drv_tref x = submit_ordered(&f, 2, NULL, 0, 0, &alone, 1);
    drv_tref b = fx_submit(&f, 3, 1);
    drv_tref c = fx_submit(&f, 4, 1);
    /* The exclusive test waits for a to finish, and closes the gate behind it. */
    assert_int_equal(place(&f, 1, p, fin, &nf), 0);
    char why[256];
    assert_int_equal(drv_balancer_explain(f.b, x, 1, why, sizeof why), 0);
    fx_assert_contains(why, "runs alone");
    assert_int_equal(drv_balancer_explain(f.b, b, 1, why, sizeof why), 0);
    fx_assert_contains(why, "exclusive");
    fx_run(&f, a, 2, fx_exit(0, 1));
    assert_int_equal(place(&f, 3, p, fin, &nf), 1);
    assert_int_equal(p[0].task, x);
    assert_int_equal(place(&f, 3, p, fin, &nf), 0); /* alone */
    fx_run(&f, x, 4, fx_exit(0, 1));
    assert_int_equal(place(&f, 5, p, fin, &nf), 2);
    assert_true((p[0].task == b && p[1].task == c) || (p[0].task == c && p[1].task == b));
    fx_close(&f);
}

static void test_cancelling_waiting_and_parked_tests(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    fx_cpu_worker(&f, "w", 8, 0);
    ord l = {.locks = {"L"}};
    drv_tref a = submit_ordered(&f, 1, NULL, 0, 0, &l, 0);
    drv_tref b = submit_ordered(&f, 2, NULL, 0, 0, &l, 0);
    drv_tref c = submit_ordered(&f, 3, &a, 1, 0, NULL, 0);
    drv_decision p[FX_MAX_DECISIONS], fin[FX_MAX_DECISIONS];
    size_t nf;
    assert_int_equal(place(&f, 0, p, fin, &nf), 1);
    assert_int_equal(p[0].task, a);
    drv_decision d;
    assert_int_equal(drv_balancer_cancel(f.b, b, 1, &d), 0); /* parked on L */
    assert_int_equal(d.state, DRV_TASK_CANCELLED);
    assert_int_equal(drv_balancer_cancel(f.b, c, 1, &d), 0); /* waiting for a */
    drv_balancer_stats st;
    drv_balancer_stats_get(f.b, &st);
    assert_int_equal(st.queued, 0);
    /* Their records are reused by new tests; the old links do not touch them. */
    drv_tref e = fx_submit(&f, 5, 2);
    drv_tref g = fx_submit(&f, 6, 2);
    assert_int_equal(place(&f, 2, p, fin, &nf), 2);
    fx_run(&f, a, 3, fx_exit(0, 1));
    assert_int_equal(place(&f, 4, p, fin, &nf), 0);
    assert_int_equal(drv_balancer_task_state(f.b, e), DRV_TASK_ASSIGNED);
    assert_int_equal(drv_balancer_task_state(f.b, g), DRV_TASK_ASSIGNED);
    fx_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_chain_runs_in_order),
        cmocka_unit_test(test_a_counted_lock_caps_how_many_run_at_once),
        cmocka_unit_test(test_a_failed_dependency_skips_the_chain_unless_run_anyway),
        cmocka_unit_test(test_dependencies_already_final_count),
        cmocka_unit_test(test_tests_sharing_a_lock_never_run_together),
        cmocka_unit_test(test_an_exclusive_test_runs_alone),
        cmocka_unit_test(test_cancelling_waiting_and_parked_tests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
