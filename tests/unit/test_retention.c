/* test_retention.c - store retention on real files (store.h, "retention"): a run whose
 * tests all finished before the cutoff goes with its tests and attempts, in batches; a
 * run with a test still queued, or one that finished after the cutoff, stays whole;
 * events before the cutoff go, later ones stay; the counts kept in
 * memory follow; a new file has incremental auto-vacuum. With and without the writer
 * thread. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "coordinator/store.h"
#include "store_fixture.h"

#define DAY    86400.0
#define NOW    (100 * DAY)
#define CUTOFF (NOW - 14 * DAY)

static int setup(void **state)
{
    return store_fx_setup(state, "drv_retention");
}

/* Adds n tests to run, each with one attempt; those with finished_at > 0 pass then. */
static void add_tests(drv_store *s, drv_tag_table *tags, int64_t run, int n, double at,
                      double finished_at)
{
    static char *const argv[] = {"true", NULL};
    for (int i = 0; i < n; i++) {
        drv_task t;
        drv_task_init(&t);
        t.name = drv_xstrdup("t");
        t.argv = drv_strv_dup(argv);
        drv_error err;
        int64_t id = drv_store_task_insert(s, run, &t, tags, at, &err);
        drv_task_clear(&t);
        assert_true(id > 0);
        assert_int_equal(drv_store_attempt_begin(s, (uint64_t)id, 1, "w1", at, &err), 0);
        if (finished_at <= 0)
            continue;
        drv_store_result r = {.finished_at = finished_at, .output_tail = "output"};
        assert_int_equal(drv_store_attempt_finish(s, (uint64_t)id, 1, &r, NULL, &err), 1);
        drv_store_task_update u = {
            .state = DRV_TASK_PASSED, .attempts = 1, .finished_at = finished_at};
        assert_int_equal(drv_store_task_update_state(s, (uint64_t)id, &u, &err), 0);
    }
}

static void noop_notify(void *ctx)
{
    (void)ctx;
}

static void run_retention(void **state, bool writer)
{
    store_fixture *f = *state;
    drv_error err;
    drv_store *s = drv_store_open(f->path, &err);
    assert_non_null(s);
    int64_t old_done = drv_store_run_create(s, "old, finished", NOW - 30 * DAY, &err);
    add_tests(s, f->tags, old_done, 5, NOW - 30 * DAY, NOW - 20 * DAY);
    int64_t old_open = drv_store_run_create(s, "old, one test queued", NOW - 30 * DAY, &err);
    add_tests(s, f->tags, old_open, 2, NOW - 30 * DAY, NOW - 20 * DAY);
    add_tests(s, f->tags, old_open, 1, NOW - 30 * DAY, 0);
    int64_t old_late = drv_store_run_create(s, "old, finished late", NOW - 30 * DAY, &err);
    add_tests(s, f->tags, old_late, 2, NOW - 30 * DAY, NOW - 1 * DAY);
    int64_t recent = drv_store_run_create(s, "recent", NOW - DAY, &err);
    add_tests(s, f->tags, recent, 3, NOW - DAY, NOW - DAY / 2);
    int64_t empty = drv_store_run_create(s, "old, empty", NOW - 30 * DAY, &err);
    for (int i = 0; i < 7; i++) {
        double t = i < 4 ? NOW - 20 * DAY + i : NOW - i;
        assert_true(drv_store_event_append(s, t, "kind", 0, NULL, "m", &err) >= 0);
    }
    assert_int_equal(drv_store_commit(s, &err), 0);
    if (writer) {
        assert_int_equal(drv_store_writer_start(s, noop_notify, NULL, &err), 0);
    }

    /* Steps of 2 until nothing is left to do; with the writer each step waits for the
     * previous one to be durable, as the coordinator does. */
    int64_t run = 0;
    uint64_t tasks = 0, events = 0, runs = 0;
    for (int i = 0; i < 50; i++) {
        drv_store_pruned p;
        int more = drv_store_prune_step(s, CUTOFF, 2, &run, &p, &err);
        assert_true(more >= 0);
        assert_true(p.tasks <= 2 && p.events <= 2);
        tasks += p.tasks;
        events += p.events;
        runs += p.run_gone;
        assert_int_equal(drv_store_vacuum_step(s, &err), 0);
        assert_int_equal(drv_store_sync(s, &err), 0);
        if (!more)
            break;
    }
    assert_int_equal(tasks, 5);
    assert_int_equal(runs, 2); /* old_done and the empty one */
    assert_int_equal(events, 4);

    drv_store_run_summary sum;
    assert_int_equal(drv_store_run_summary_get(s, old_done, &sum, &err), 0);
    assert_int_equal(drv_store_run_summary_get(s, empty, &sum, &err), 0);
    assert_int_equal(drv_store_run_summary_get(s, old_open, &sum, &err), 1);
    assert_int_equal(sum.counts.total, 3);
    drv_store_run_summary_clear(&sum);
    assert_int_equal(drv_store_run_summary_get(s, old_late, &sum, &err), 1);
    assert_int_equal(sum.counts.total, 2);
    drv_store_run_summary_clear(&sum);
    assert_int_equal(drv_store_run_summary_get(s, recent, &sum, &err), 1);
    assert_int_equal(sum.counts.total, 3);
    drv_store_run_summary_clear(&sum);
    drv_store_counts c;
    assert_int_equal(drv_store_count(s, &c, &err), 0);
    assert_int_equal(c.total, 8);
    assert_int_equal(c.by_state[DRV_TASK_PASSED], 7);
    drv_store_close(s);

    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM tasks"), 8);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM attempts"), 8);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM runs"), 3);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM events"), 3);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM events WHERE t < 86400 * 86"), 0);
    assert_int_equal(store_fx_int(f->path, "PRAGMA auto_vacuum"), 2); /* incremental */
}

static void test_retention_without_writer(void **state)
{
    run_retention(state, false);
}

static void test_retention_with_writer(void **state)
{
    run_retention(state, true);
}

/* Nothing older than the cutoff: a step records nothing and says there is no more. */
static void test_nothing_to_remove(void **state)
{
    store_fixture *f = *state;
    drv_error err;
    drv_store *s = drv_store_open(f->path, &err);
    assert_non_null(s);
    int64_t recent = drv_store_run_create(s, "recent", NOW - DAY, &err);
    add_tests(s, f->tags, recent, 2, NOW - DAY, NOW - DAY / 2);
    assert_int_equal(drv_store_commit(s, &err), 0);
    int64_t run = 0;
    drv_store_pruned p;
    assert_int_equal(drv_store_prune_step(s, CUTOFF, 100, &run, &p, &err), 0);
    assert_int_equal(p.tasks + p.events + p.run_gone, 0);
    assert_false(drv_store_pending(s));
    drv_store_close(s);
}

/* Output tails go by age even while their run is open (a run that never ends must not
 * keep every tail it ever wrote): the old attempts of an open run lose their output,
 * their rows stay, and newer output is kept. */
static void test_tails_of_open_runs(void **state)
{
    store_fixture *f = *state;
    drv_error err;
    drv_store *s = drv_store_open(f->path, &err);
    assert_non_null(s);
    int64_t open = drv_store_run_create(s, "open for ever", NOW - 30 * DAY, &err);
    add_tests(s, f->tags, open, 3, NOW - 30 * DAY, NOW - 20 * DAY); /* old output */
    add_tests(s, f->tags, open, 2, NOW - 2 * DAY, NOW - DAY);       /* recent output */
    add_tests(s, f->tags, open, 1, NOW - 30 * DAY, 0);              /* still queued */
    assert_int_equal(drv_store_commit(s, &err), 0);
    uint64_t n = 0, total = 0;
    int more = 1;
    for (int i = 0; i < 10 && more; i++) {
        more = drv_store_prune_tails_step(s, CUTOFF, 2, &n, &err);
        assert_true(more >= 0);
        assert_true(n <= 2);
        total += n;
        assert_int_equal(drv_store_commit(s, &err), 0);
    }
    assert_int_equal(more, 0);
    assert_int_equal(total, 3);
    /* Nothing left to do: a step records nothing. */
    assert_int_equal(drv_store_prune_tails_step(s, CUTOFF, 2, &n, &err), 0);
    assert_int_equal(n, 0);
    int64_t run = 0;
    drv_store_pruned p;
    assert_int_equal(drv_store_prune_step(s, CUTOFF, 100, &run, &p, &err), 0);
    assert_int_equal(p.tasks + p.run_gone, 0); /* the run is open: its tests stay */
    drv_store_close(s);
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM attempts"), 6);
    assert_int_equal(
        store_fx_int(f->path, "SELECT count(*) FROM attempts WHERE output_tail IS NOT NULL"), 2);
    assert_int_equal(store_fx_int(f->path,
                                  "SELECT count(*) FROM attempts WHERE output_tail IS NOT NULL"
                                  " AND finished_at < 86400 * 86"),
                     0);
    /* The step's query uses the partial index, not a scan of every attempt. */
    assert_int_equal(store_fx_int(f->path, "SELECT count(*) FROM pragma_index_list('attempts')"
                                           " WHERE name = 'attempts_tails' AND partial = 1"),
                     1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retention_without_writer, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_retention_with_writer, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_nothing_to_remove, setup, store_fx_teardown),
        cmocka_unit_test_setup_teardown(test_tails_of_open_runs, setup, store_fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
