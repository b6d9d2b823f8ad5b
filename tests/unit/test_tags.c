/* test_tags.c - tag interning, name rules, tag-set parsing and formatting, set ops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "core/tags.h"

static void test_well_known_ids(void **state)
{
    (void)state;
    static const struct {
        int id;
        const char *name;
    } rows[] = {
        {DRV_TAG_CPU, "cpu"},       {DRV_TAG_CUDA, "cuda"},         {DRV_TAG_ROCM, "rocm"},
        {DRV_TAG_MPS, "mps"},       {DRV_TAG_OPENVINO, "openvino"}, {DRV_TAG_WEBGPU, "webgpu"},
        {DRV_TAG_WEBNN, "webnn"},   {DRV_TAG_QNN, "qnn"},           {DRV_TAG_CHROMIUM, "chromium"},
        {DRV_TAG_CHROME, "chrome"}, {DRV_TAG_FIREFOX, "firefox"},   {DRV_TAG_EDGE, "edge"},
    };
    drv_tag_table *t = drv_tag_table_new();
    assert_int_equal(drv_tag_count(t), DRV_TAG_WELL_KNOWN_COUNT);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_string_equal(drv_tag_name(t, rows[i].id), rows[i].name);
        assert_int_equal(drv_tag_lookup(t, rows[i].name), rows[i].id);
        assert_int_equal(drv_tag_intern(t, rows[i].name, NULL), rows[i].id);
    }
    assert_int_equal(drv_tag_count(t), DRV_TAG_WELL_KNOWN_COUNT);
    drv_tag_table_free(t);
}

static void test_intern_new_and_repeat(void **state)
{
    (void)state;
    drv_tag_table *t = drv_tag_table_new();
    drv_error err = {{0}};
    assert_int_equal(drv_tag_lookup(t, "zone-a"), -1);
    int a = drv_tag_intern(t, "zone-a", &err);
    assert_int_equal(a, DRV_TAG_WELL_KNOWN_COUNT);
    int b = drv_tag_intern(t, "gpu:a100/80g_v1.2", &err);
    assert_int_equal(b, a + 1);
    assert_int_equal(drv_tag_intern(t, "zone-a", &err), a);
    assert_int_equal(drv_tag_lookup(t, "zone-a"), a);
    assert_string_equal(drv_tag_name(t, b), "gpu:a100/80g_v1.2");
    assert_int_equal(drv_tag_count(t), DRV_TAG_WELL_KNOWN_COUNT + 2);
    assert_string_equal(drv_tag_name(t, -1), "?");
    assert_string_equal(drv_tag_name(t, b + 1), "?");
    assert_string_equal(drv_tag_name(t, DRV_TAGS_MAX + 5), "?");
    assert_int_equal(drv_tag_lookup(t, NULL), -1);
    assert_int_equal(drv_tag_lookup(t, ""), -1);
    drv_tag_table_free(t);
}

static void test_invalid_names(void **state)
{
    (void)state;
    char long_name[DRV_TAG_NAME_MAX + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    static const struct {
        const char *name;
        const char *msg_has;
    } rows[] = {
        {"", "empty"},  {"Cuda", "'C' at position 1"},         {"zone a", "' ' at position 5"},
        {"a,b", "','"}, {"caf\xc3\xa9", "0xc3 at position 4"}, {"x*", "'*'"},
    };
    drv_tag_table *t = drv_tag_table_new();
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_error err = {{0}};
        assert_int_equal(drv_tag_intern(t, rows[i].name, &err), -1);
        assert_non_null(strstr(err.msg, rows[i].msg_has));
    }
    drv_error err = {{0}};
    assert_int_equal(drv_tag_intern(t, long_name, &err), -1);
    assert_non_null(strstr(err.msg, "longer than 63"));
    assert_int_equal(drv_tag_intern(t, NULL, &err), -1);
    assert_int_equal(drv_tag_intern(t, "x*", NULL), -1); /* NULL err is allowed */
    /* 63 bytes is the limit and is accepted. */
    long_name[DRV_TAG_NAME_MAX] = '\0';
    assert_true(drv_tag_intern(t, long_name, &err) >= 0);
    assert_int_equal(drv_tag_count(t), DRV_TAG_WELL_KNOWN_COUNT + 1);
    drv_tag_table_free(t);
}

static void test_table_full(void **state)
{
    (void)state;
    drv_tag_table *t = drv_tag_table_new();
    drv_error err = {{0}};
    char name[32];
    for (int i = DRV_TAG_WELL_KNOWN_COUNT; i < DRV_TAGS_MAX; i++) {
        snprintf(name, sizeof name, "label-%d", i);
        assert_int_equal(drv_tag_intern(t, name, &err), i);
    }
    assert_int_equal(drv_tag_count(t), DRV_TAGS_MAX);
    assert_int_equal(drv_tag_intern(t, "one-too-many", &err), -1);
    assert_non_null(strstr(err.msg, "one-too-many"));
    assert_non_null(strstr(err.msg, "full"));
    /* Existing names still resolve, new and old alike. */
    assert_int_equal(drv_tag_intern(t, "label-100", &err), 100);
    assert_int_equal(drv_tag_lookup(t, "edge"), DRV_TAG_EDGE);
    assert_int_equal(drv_tag_lookup(t, "one-too-many"), -1);
    drv_tag_table_free(t);
}

static void test_parse_and_format(void **state)
{
    (void)state;
    static const struct {
        const char *list;
        const char *formatted; /* in id order */
    } rows[] = {
        {"cuda", "cuda"},
        {"a,b, c", "a,b,c"},
        {"  webgpu ,\tchromium  ", "webgpu,chromium"},
        {"edge,cpu,edge", "cpu,edge"},
        {"", ""},
        {"   ", ""},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_tag_table *t = drv_tag_table_new();
        drv_tagset s;
        drv_error err = {{0}};
        memset(&s, 0xff, sizeof s); /* parse must clear it */
        assert_int_equal(drv_tagset_parse(t, rows[i].list, &s, &err), 0);
        char buf[128];
        drv_tagset_format(t, &s, buf, sizeof buf);
        assert_string_equal(buf, rows[i].formatted);
        /* The formatted list parses back to the same set. */
        drv_tagset back;
        assert_int_equal(drv_tagset_parse(t, buf, &back, &err), 0);
        assert_true(drv_tagset_equal(&s, &back));
        drv_tag_table_free(t);
    }
    drv_tag_table *t = drv_tag_table_new();
    drv_tagset s;
    assert_int_equal(drv_tagset_parse(t, NULL, &s, NULL), 0);
    assert_true(drv_tagset_empty(&s));
    drv_tag_table_free(t);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *list;
        const char *msg_has;
    } rows[] = {
        {"a,,b", "item 2 (at byte 3) is empty"},
        {"a,", "item 2"},
        {",a", "item 1 (at byte 1) is empty"},
        {"a, ,b", "item 2"},
        {"cuda,Rocm", "item 2"},
        {"cuda,ro cm", "' ' at position 3"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_tag_table *t = drv_tag_table_new();
        drv_tagset s;
        drv_tagset_clear(&s);
        drv_tagset_add(&s, DRV_TAG_QNN);
        drv_tagset before = s;
        drv_error err = {{0}};
        assert_int_equal(drv_tagset_parse(t, rows[i].list, &s, &err), -1);
        assert_non_null(strstr(err.msg, rows[i].msg_has));
        assert_non_null(strstr(err.msg, rows[i].list));               /* names the input */
        assert_true(drv_tagset_equal(&s, &before));                   /* set unchanged */
        assert_int_equal(drv_tag_count(t), DRV_TAG_WELL_KNOWN_COUNT); /* nothing interned */
        drv_tag_table_free(t);
    }
}

static void test_format_truncates(void **state)
{
    (void)state;
    drv_tag_table *t = drv_tag_table_new();
    drv_tagset s;
    assert_int_equal(drv_tagset_parse(t, "cuda,webgpu,firefox", &s, NULL), 0);
    char buf[8];
    memset(buf, 'x', sizeof buf);
    drv_tagset_format(t, &s, buf, sizeof buf);
    assert_int_equal(strlen(buf), sizeof buf - 1);
    assert_memory_equal(buf, "cuda,we", 7);
    char one[1] = {'x'};
    drv_tagset_format(t, &s, one, sizeof one);
    assert_int_equal(one[0], '\0');
    drv_tag_table_free(t);
}

static void test_set_operations(void **state)
{
    (void)state;
    drv_tagset a, b;
    drv_tagset_clear(&a);
    drv_tagset_clear(&b);
    assert_true(drv_tagset_empty(&a));
    assert_true(drv_tagset_subset(&a, &b)); /* empty is a subset of anything */
    assert_false(drv_tagset_intersects(&a, &b));
    assert_int_equal(drv_tagset_first_missing(&a, &b), -1);

    /* ids in different words, including the last one */
    drv_tagset_add(&a, DRV_TAG_CUDA);
    drv_tagset_add(&a, 70);
    drv_tagset_add(&a, DRV_TAGS_MAX - 1);
    assert_int_equal(drv_tagset_count(&a), 3);
    assert_true(drv_tagset_has(&a, 70));
    assert_false(drv_tagset_has(&a, 69));

    drv_tagset_add(&b, DRV_TAG_CUDA);
    drv_tagset_add(&b, DRV_TAG_CPU);
    assert_false(drv_tagset_subset(&a, &b));
    assert_true(drv_tagset_intersects(&a, &b));
    assert_int_equal(drv_tagset_first_missing(&a, &b), 70);
    assert_int_equal(drv_tagset_first_common(&a, &b), DRV_TAG_CUDA);

    drv_tagset_add(&b, 70);
    assert_int_equal(drv_tagset_first_missing(&a, &b), DRV_TAGS_MAX - 1);
    drv_tagset_add(&b, DRV_TAGS_MAX - 1);
    assert_true(drv_tagset_subset(&a, &b));
    assert_false(drv_tagset_subset(&b, &a));
    assert_int_equal(drv_tagset_first_missing(&b, &a), DRV_TAG_CPU);

    drv_tagset_remove(&a, DRV_TAG_CUDA);
    drv_tagset_remove(&b, 70);
    assert_int_equal(drv_tagset_first_common(&a, &b), DRV_TAGS_MAX - 1);
    drv_tagset_remove(&b, DRV_TAGS_MAX - 1);
    assert_false(drv_tagset_intersects(&a, &b));
    assert_int_equal(drv_tagset_first_common(&a, &b), -1);
    assert_false(drv_tagset_equal(&a, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_known_ids),   cmocka_unit_test(test_intern_new_and_repeat),
        cmocka_unit_test(test_invalid_names),    cmocka_unit_test(test_table_full),
        cmocka_unit_test(test_parse_and_format), cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_format_truncates), cmocka_unit_test(test_set_operations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
