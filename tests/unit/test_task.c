/* test_task.c - task state names, task lifetime (init, clear, deep copy) and the
 * owned string vectors. Run under ASan, so a leak or a shared pointer fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "core/task.h"

static void test_state_names(void **state)
{
    (void)state;
    static const struct {
        drv_task_state s;
        const char *name;
        bool final;
    } rows[] = {
        {DRV_TASK_QUEUED, "queued", false},      {DRV_TASK_ASSIGNED, "assigned", false},
        {DRV_TASK_RUNNING, "running", false},    {DRV_TASK_PASSED, "passed", true},
        {DRV_TASK_FAILED, "failed", true},       {DRV_TASK_TIMED_OUT, "timed_out", true},
        {DRV_TASK_CANCELLED, "cancelled", true}, {DRV_TASK_UNSCHEDULABLE, "unschedulable", true},
        {DRV_TASK_SKIPPED, "skipped", true},
    };
    _Static_assert(sizeof rows / sizeof rows[0] == DRV_TASK_STATE_COUNT, "one row per state");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_string_equal(drv_task_state_name(rows[i].s), rows[i].name);
        assert_int_equal(drv_task_state_parse(rows[i].name), rows[i].s);
        assert_int_equal(drv_task_state_final(rows[i].s), rows[i].final);
    }
    assert_string_equal(drv_task_state_name(DRV_TASK_STATE_COUNT), "?");
    assert_string_equal(drv_task_state_name((drv_task_state)-1), "?");
    static const char *const bad[] = {"", "Queued", "timed-out", "done", "queued "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(drv_task_state_parse(bad[i]), -1);
    assert_int_equal(drv_task_state_parse(NULL), -1);
}

static void test_init_defaults(void **state)
{
    (void)state;
    drv_task t;
    memset(&t, 0xab, sizeof t);
    drv_task_init(&t);
    assert_null(t.name);
    assert_null(t.argv);
    assert_null(t.env);
    assert_null(t.cwd);
    assert_null(t.model_id);
    assert_null(t.test_type);
    assert_null(t.labels);
    assert_int_equal(t.priority, DRV_PRIORITY_DEFAULT);
    assert_int_equal(t.state, DRV_TASK_QUEUED);
    assert_int_equal(t.family, 0);
    assert_int_equal(t.batch_size, 0);
    assert_int_equal(t.attempts, 0);
    drv_requirements empty;
    drv_requirements_init(&empty);
    assert_true(drv_requirements_equal(&t.req, &empty));
    drv_task_clear(&t); /* clearing an empty task is fine */
    assert_int_equal(t.priority, DRV_PRIORITY_DEFAULT);
}

static void fill(drv_task *t)
{
    char *argv[] = {"python", "-m", "pytest", "tests/test_bert.py::test_fp16", NULL};
    char *env[] = {"CUDA_VISIBLE_DEVICES=0", NULL};
    char *labels[] = {"nightly", "gpu", NULL};
    drv_task_init(t);
    t->id = 42;
    t->name = drv_xstrdup("tests/test_bert.py::test_fp16");
    t->argv = drv_strv_dup(argv);
    t->env = drv_strv_dup(env);
    t->cwd = drv_xstrdup("/srv/repo");
    t->model_id = drv_xstrdup("bert-base-uncased");
    t->test_type = drv_xstrdup("unit");
    t->labels = drv_strv_dup(labels);
    t->priority = 700;
    t->timeout_s = 90;
    t->max_retries = 2;
    t->retry_on_failure = true;
    t->family = 1;
    t->req.cpu_cores = 4;
    drv_tagset_add(&t->req.all_of, DRV_TAG_CUDA);
    t->state = DRV_TASK_RUNNING;
    t->attempts = 1;
}

static void test_copy_is_deep(void **state)
{
    (void)state;
    drv_task src, dst;
    fill(&src);
    drv_task_init(&dst);
    dst.name = drv_xstrdup("old contents are freed");
    drv_task_copy(&dst, &src);

    assert_int_equal(dst.id, 42);
    assert_string_equal(dst.name, src.name);
    assert_ptr_not_equal(dst.name, src.name);
    assert_int_equal(drv_strv_len(dst.argv), 4);
    assert_ptr_not_equal(dst.argv, src.argv);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(dst.argv[i], src.argv[i]);
        assert_ptr_not_equal(dst.argv[i], src.argv[i]);
    }
    assert_null(dst.argv[4]);
    assert_string_equal(dst.env[0], "CUDA_VISIBLE_DEVICES=0");
    assert_ptr_not_equal(dst.cwd, src.cwd);
    assert_string_equal(dst.model_id, "bert-base-uncased");
    assert_string_equal(dst.test_type, "unit");
    assert_string_equal(dst.labels[1], "gpu");
    assert_int_equal(dst.priority, 700);
    assert_true(dst.retry_on_failure);
    assert_int_equal(dst.state, DRV_TASK_RUNNING);
    assert_true(drv_requirements_equal(&dst.req, &src.req));

    /* Freeing the source leaves the copy intact (ASan would catch a shared pointer). */
    drv_task_clear(&src);
    assert_null(src.name);
    assert_string_equal(dst.argv[3], "tests/test_bert.py::test_fp16");

    /* Copying over a full task, and from a task with NULL fields. */
    fill(&src);
    drv_task_copy(&dst, &src);
    drv_task_clear(&src);
    drv_task_copy(&dst, &src);
    assert_null(dst.name);
    assert_null(dst.argv);
    assert_null(dst.labels);
    drv_task_copy(&dst, &dst); /* self-copy is a no-op */
    drv_task_clear(&dst);
}

static void test_strv(void **state)
{
    (void)state;
    assert_null(drv_strv_dup(NULL));
    assert_int_equal(drv_strv_len(NULL), 0);
    drv_strv_free(NULL);

    char *empty[] = {NULL};
    char **e = drv_strv_dup(empty);
    assert_non_null(e);
    assert_null(e[0]);
    assert_int_equal(drv_strv_len(e), 0);
    drv_strv_free(e);

    char *v[] = {"a", "", "c d", NULL};
    char **d = drv_strv_dup(v);
    assert_int_equal(drv_strv_len(d), 3);
    assert_string_equal(d[1], "");
    assert_string_equal(d[2], "c d");
    assert_ptr_not_equal(d[0], v[0]);
    drv_strv_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_init_defaults),
        cmocka_unit_test(test_copy_is_deep),
        cmocka_unit_test(test_strv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
