/* test_retry_budget.c - the two retry budgets (issue 11): max_retries for losses of
 * infrastructure, reruns for a test's own failures, and what a test already used of
 * them (retries_used, reruns_used, as the coordinator derives them from the stored
 * attempts after a restart) carried into the balancer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>
#include <unistd.h>

#include "balancer_fixture.h"
#include "coordinator/store.h"

/* Submits test id with the given budgets and what it used of them. */
static drv_tref submit_budget(fx *f, uint64_t id, uint32_t max_retries, uint32_t retries_used,
                              uint32_t reruns, uint32_t reruns_used)
{
    drv_task t;
    drv_task_init(&t);
    t.id = id;
    t.name = "budget";
    t.priority = DRV_PRIORITY_DEFAULT;
    t.max_retries = max_retries;
    t.retries_used = retries_used;
    t.reruns = reruns;
    t.reruns_used = reruns_used;
    drv_error err = {{0}};
    int64_t r = drv_balancer_submit(f->b, &t, 0, &err);
    if (r < 0)
        fail_msg("submit: %s", err.msg);
    return (drv_tref)r;
}

/* Places t on w, starts it, loses w; returns the one decision; w comes back. */
static drv_decision lose_running(fx *f, drv_tref t, drv_wref w, double now)
{
    assert_int_equal(fx_place_one(f, now), w);
    assert_int_equal(drv_balancer_started(f->b, t, now), 0);
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(drv_balancer_worker_lost(f->b, w, now + 1, d, FX_MAX_DECISIONS), 1);
    drv_balancer_worker_back(f->b, w, now + 2);
    return d[0];
}

static void test_loss_uses_max_retries_and_ends_failed(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_wref w = fx_cpu_worker(&f, "w", 1, 0);
    drv_tref t = submit_budget(&f, 1, 1, 0, 0, 0);
    drv_decision d = lose_running(&f, t, w, 0);
    assert_int_equal(d.kind, DRV_D_REQUEUED);
    assert_int_equal(d.charged, DRV_CHARGE_RETRY);
    d = lose_running(&f, t, w, 10);
    assert_int_equal(d.kind, DRV_D_FINAL);
    assert_int_equal(d.state, DRV_TASK_FAILED);
    assert_int_equal(d.reason, DRV_R_RETRIES_EXHAUSTED);
    fx_close(&f);
}

static void test_used_retries_survive_a_restart(void **state)
{
    (void)state;
    /* max_retries 1, one already used before the restart: the next loss is the last. */
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_wref w = fx_cpu_worker(&f, "w", 1, 0);
    drv_tref t = submit_budget(&f, 1, 1, 1, 0, 0);
    drv_decision d = lose_running(&f, t, w, 0);
    assert_int_equal(d.kind, DRV_D_FINAL);
    assert_int_equal(d.reason, DRV_R_RETRIES_EXHAUSTED);
    fx_close(&f);
}

static void test_assigned_only_loss_charges_nothing(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_wref w = fx_cpu_worker(&f, "w", 1, 0);
    drv_tref t = submit_budget(&f, 1, 0, 0, 0, 0);
    assert_int_equal(fx_place_one(&f, 0), w);
    drv_decision d[FX_MAX_DECISIONS];
    assert_int_equal(drv_balancer_worker_lost(f.b, w, 1, d, FX_MAX_DECISIONS), 1);
    assert_int_equal(d[0].kind, DRV_D_REQUEUED);
    assert_int_equal(d[0].charged, DRV_CHARGE_NONE);
    assert_int_equal(drv_balancer_task_state(f.b, t), DRV_TASK_QUEUED);
    fx_close(&f);
}

static void test_reruns_are_the_tests_own_budget(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_wref w = fx_cpu_worker(&f, "w", 1, 0);
    /* max_retries 2 does not rerun a failing test; reruns 1 does, once. */
    drv_tref t = submit_budget(&f, 1, 2, 0, 1, 0);
    assert_int_equal(fx_place_one(&f, 0), w);
    drv_decision d = fx_run(&f, t, 0, fx_exit(1, 1));
    assert_int_equal(d.kind, DRV_D_REQUEUED);
    assert_int_equal(d.reason, DRV_R_EXIT_FAILURE_RETRY);
    assert_int_equal(d.charged, DRV_CHARGE_RERUN);
    /* A runner failure uses max_retries, not reruns. */
    assert_int_equal(fx_place_one(&f, 5), w);
    drv_result infra = {.exit_code = -1, .infra_failure = true};
    d = fx_run(&f, t, 5, infra);
    assert_int_equal(d.kind, DRV_D_REQUEUED);
    assert_int_equal(d.charged, DRV_CHARGE_RETRY);
    assert_int_equal(fx_place_one(&f, 10), w);
    d = fx_run(&f, t, 10, fx_exit(3, 1));
    assert_int_equal(d.kind, DRV_D_FINAL);
    assert_int_equal(d.state, DRV_TASK_FAILED);
    assert_int_equal(d.reason, DRV_R_EXIT_FAILURE);
    fx_close(&f);
}

static void test_used_reruns_survive_a_restart(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    fx_start(&f);
    drv_wref w = fx_cpu_worker(&f, "w", 1, 0);
    drv_tref t = submit_budget(&f, 1, 2, 0, 2, 2);
    assert_int_equal(fx_place_one(&f, 0), w);
    drv_result to = {.exit_code = -1, .signal = 15, .timed_out = true, .duration_s = 1};
    drv_decision d = fx_run(&f, t, 0, to);
    assert_int_equal(d.kind, DRV_D_FINAL);
    assert_int_equal(d.state, DRV_TASK_TIMED_OUT);
    fx_close(&f);
}

static void test_retry_on_failure_is_an_alias(void **state)
{
    (void)state;
    drv_task t;
    drv_task_init(&t);
    t.max_retries = 3;
    t.retry_on_failure = true;
    assert_int_equal(drv_task_reruns(&t), 3);
    t.reruns = 1; /* reruns said explicitly wins */
    assert_int_equal(drv_task_reruns(&t), 1);
    t.reruns = 0;
    drv_task_apply_retry_alias(&t);
    assert_int_equal(t.reruns, 3);
    assert_false(t.retry_on_failure);
}

/* Recovery finds what each not-final test used, from its attempts alone. */
static int take_used(void *ctx, drv_store_recovered *r, drv_error *err)
{
    (void)err;
    uint32_t *used = ctx;
    used[0] = r->task->retries_used;
    used[1] = r->task->reruns_used;
    return 0;
}

static void test_store_derives_what_was_used(void **state)
{
    (void)state;
    char dir[] = "/tmp/drv-budget-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/s.db", dir);
    drv_error err = {{0}};
    drv_tag_table *tags = drv_tag_table_new();
    drv_store *s = drv_store_open(path, &err);
    assert_non_null(s);
    drv_task t;
    drv_task_init(&t);
    t.name = "t";
    char *argv[] = {"true", NULL};
    t.argv = argv;
    t.max_retries = 5;
    t.reruns = 5;
    int64_t id = drv_store_task_insert(s, 0, &t, tags, 1, &err);
    assert_true(id > 0);
    drv_store_result fail = {.finished_at = 3, .exit_code = 1};
    drv_store_result infra = {.finished_at = 5, .exit_code = -1, .infra_failure = true};
    drv_store_result killed = {.finished_at = 6, .exit_code = -1, .signal = 9, .timed_out = true};
    /* 1: started, then its worker was lost (a retry); 2: failed by itself (a rerun);
     * 3: the runner failed (a retry); 4: moved before it started (nothing); 5: timed out
     * (a rerun); 6: open, running (nothing yet: recovery decides). */
    assert_int_equal(drv_store_attempt_begin(s, (uint64_t)id, 1, "w", 1, &err), 0);
    assert_int_equal(drv_store_attempt_started(s, (uint64_t)id, 1, 1.5, &err), 1);
    assert_int_equal(drv_store_attempt_abandon(s, (uint64_t)id, 1, &err), 1);
    assert_int_equal(drv_store_attempt_begin(s, (uint64_t)id, 2, "w", 2, &err), 0);
    assert_int_equal(drv_store_attempt_finish(s, (uint64_t)id, 2, &fail, NULL, &err), 1);
    assert_int_equal(drv_store_attempt_begin(s, (uint64_t)id, 3, "w", 4, &err), 0);
    assert_int_equal(drv_store_attempt_finish(s, (uint64_t)id, 3, &infra, NULL, &err), 1);
    assert_int_equal(drv_store_attempt_begin(s, (uint64_t)id, 4, "w", 5, &err), 0);
    assert_int_equal(drv_store_attempt_abandon(s, (uint64_t)id, 4, &err), 1);
    assert_int_equal(drv_store_attempt_begin(s, (uint64_t)id, 5, "w", 5.5, &err), 0);
    assert_int_equal(drv_store_attempt_started(s, (uint64_t)id, 5, 5.6, &err), 1);
    assert_int_equal(drv_store_attempt_finish(s, (uint64_t)id, 5, &killed, NULL, &err), 1);
    assert_int_equal(drv_store_attempt_begin(s, (uint64_t)id, 6, "w", 7, &err), 0);
    assert_int_equal(drv_store_attempt_started(s, (uint64_t)id, 6, 7.5, &err), 1);
    assert_int_equal(drv_store_commit(s, &err), 0);
    drv_store_close(s);

    s = drv_store_open(path, &err); /* as after a restart */
    assert_non_null(s);
    uint32_t used[2] = {99, 99};
    assert_int_equal(drv_store_recover(s, tags, take_used, used, &err), 0);
    assert_int_equal(used[0], 2);
    assert_int_equal(used[1], 2);
    /* Each start is a new epoch. */
    uint64_t e1 = 0, e2 = 0;
    assert_int_equal(drv_store_epoch_begin(s, 10, &e1, &err), 0);
    assert_int_equal(drv_store_epoch_begin(s, 11, &e2, &err), 0);
    assert_int_equal(e2, e1 + 1);
    assert_int_equal(drv_store_commit(s, &err), 0);
    drv_store_close(s);
    drv_tag_table_free(tags);
    char side[80];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(side, sizeof side, "%s%s", path, sfx[i]);
        unlink(side);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_uses_max_retries_and_ends_failed),
        cmocka_unit_test(test_used_retries_survive_a_restart),
        cmocka_unit_test(test_assigned_only_loss_charges_nothing),
        cmocka_unit_test(test_reruns_are_the_tests_own_budget),
        cmocka_unit_test(test_used_reruns_survive_a_restart),
        cmocka_unit_test(test_retry_on_failure_is_an_alias),
        cmocka_unit_test(test_store_derives_what_was_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
