/* test_requirements.c - matching requirements against capabilities, the order of the
 * checks, the user-facing descriptions of what is unmet, and version parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "core/requirements.h"

/* A requirement asking for something of every kind, and a worker that has exactly
 * that; each case below breaks one predicate on the worker side. */
static void full_pair(drv_tag_table *t, drv_requirements *r, drv_capabilities *c)
{
    drv_requirements_init(r);
    r->cpu_cores = 8;
    r->memory_mb = 32768;
    r->gpu_count = 2;
    r->gpu_memory_mb = 24576;
    r->cuda_cc = 80;
    r->driver_version = 535104005;
    assert_int_equal(drv_tagset_parse(t, "cuda,zone-a", &r->all_of, NULL), 0);
    assert_int_equal(drv_tagset_parse(t, "chromium,edge", &r->any_of, NULL), 0);
    assert_int_equal(drv_tagset_parse(t, "gpu-busy", &r->none_of, NULL), 0);

    drv_capabilities_init(c);
    c->cpu_cores = 8;
    c->memory_mb = 32768;
    c->gpu_count = 2;
    c->gpu_memory_mb = 24576;
    c->cuda_cc = 80;
    c->driver_version = 535104005;
    assert_int_equal(drv_tagset_parse(t, "cpu,cuda,zone-a,edge", &c->tags, NULL), 0);
}

static void test_each_predicate_alone(void **state)
{
    (void)state;
    enum { CPU, MEM, GPUS, GPUMEM, CC, DRIVER, MISSING, NONE_OF, FORBIDDEN, CASES };
    static const struct {
        int breaks;
        drv_unmet expect;
        const char *tag; /* offending tag, or NULL for -1 */
        const char *describe;
    } rows[] = {
        {CPU, DRV_UNMET_CPU, NULL, "at least 8 cores"},
        {MEM, DRV_UNMET_MEMORY, NULL, "at least 32 GiB of memory"},
        {GPUS, DRV_UNMET_GPU_COUNT, NULL, "at least 2 GPUs"},
        {GPUMEM, DRV_UNMET_GPU_MEMORY, NULL, "a GPU with at least 24 GiB of memory"},
        {CC, DRV_UNMET_CUDA_CC, NULL, "CUDA compute capability 8.0 or newer"},
        {DRIVER, DRV_UNMET_DRIVER, NULL, "driver version 535.104.5 or newer"},
        {MISSING, DRV_UNMET_TAG_MISSING, "zone-a", "the tag zone-a"},
        {NONE_OF, DRV_UNMET_TAG_NONE_OF, NULL, "one of the tags chromium, edge"},
        {FORBIDDEN, DRV_UNMET_TAG_FORBIDDEN, "gpu-busy", "the tag gpu-busy"},
    };
    _Static_assert(sizeof rows / sizeof rows[0] == CASES, "one row per predicate");
    for (size_t i = 0; i < CASES; i++) {
        drv_tag_table *t = drv_tag_table_new();
        drv_requirements r;
        drv_capabilities c;
        full_pair(t, &r, &c);
        int tag = 12345;
        assert_int_equal(drv_requirements_check(&r, &c, &tag), DRV_UNMET_NONE);
        assert_int_equal(tag, -1);
        assert_true(drv_requirements_met(&r, &c));
        switch (rows[i].breaks) {
        case CPU:
            c.cpu_cores = 7;
            break;
        case MEM:
            c.memory_mb = 32767;
            break;
        case GPUS:
            c.gpu_count = 1;
            break;
        case GPUMEM:
            c.gpu_memory_mb = 16384;
            break;
        case CC:
            c.cuda_cc = 75;
            break;
        case DRIVER:
            c.driver_version = 535104004;
            break;
        case MISSING:
            drv_tagset_remove(&c.tags, drv_tag_lookup(t, "zone-a"));
            break;
        case NONE_OF:
            drv_tagset_remove(&c.tags, DRV_TAG_EDGE);
            break;
        case FORBIDDEN:
            drv_tagset_add(&c.tags, drv_tag_intern(t, "gpu-busy", NULL));
            break;
        }
        assert_int_equal(drv_requirements_check(&r, &c, &tag), rows[i].expect);
        assert_int_equal(tag, rows[i].tag ? drv_tag_lookup(t, rows[i].tag) : -1);
        assert_false(drv_requirements_met(&r, &c));
        assert_int_equal(drv_requirements_check(&r, &c, NULL), rows[i].expect);
        char buf[256];
        drv_unmet_describe(rows[i].expect, &r, tag, t, buf, sizeof buf);
        assert_string_equal(buf, rows[i].describe);
        drv_tag_table_free(t);
    }
}

static void test_check_order(void **state)
{
    (void)state;
    /* A worker that fails everything reports the predicates in declared order as each
     * earlier one is fixed. */
    drv_tag_table *t = drv_tag_table_new();
    drv_requirements r;
    drv_capabilities c, full;
    full_pair(t, &r, &full);
    drv_capabilities_init(&c);
    drv_tagset_add(&c.tags, drv_tag_intern(t, "gpu-busy", NULL));
    static const drv_unmet order[] = {
        DRV_UNMET_CPU,         DRV_UNMET_MEMORY,      DRV_UNMET_GPU_COUNT,
        DRV_UNMET_GPU_MEMORY,  DRV_UNMET_CUDA_CC,     DRV_UNMET_DRIVER,
        DRV_UNMET_TAG_MISSING, DRV_UNMET_TAG_NONE_OF, DRV_UNMET_TAG_FORBIDDEN,
    };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        assert_int_equal(drv_requirements_check(&r, &c, NULL), order[i]);
        switch (order[i]) {
        case DRV_UNMET_CPU:
            c.cpu_cores = full.cpu_cores;
            break;
        case DRV_UNMET_MEMORY:
            c.memory_mb = full.memory_mb;
            break;
        case DRV_UNMET_GPU_COUNT:
            c.gpu_count = full.gpu_count;
            break;
        case DRV_UNMET_GPU_MEMORY:
            c.gpu_memory_mb = full.gpu_memory_mb;
            break;
        case DRV_UNMET_CUDA_CC:
            c.cuda_cc = full.cuda_cc;
            break;
        case DRV_UNMET_DRIVER:
            c.driver_version = full.driver_version;
            break;
        case DRV_UNMET_TAG_MISSING:
            drv_tagset_add(&c.tags, DRV_TAG_CUDA);
            drv_tagset_add(&c.tags, drv_tag_lookup(t, "zone-a"));
            break;
        case DRV_UNMET_TAG_NONE_OF:
            drv_tagset_add(&c.tags, DRV_TAG_CHROMIUM);
            break;
        default:
            drv_tagset_remove(&c.tags, drv_tag_lookup(t, "gpu-busy"));
            break;
        }
    }
    assert_int_equal(drv_requirements_check(&r, &c, NULL), DRV_UNMET_NONE);
    /* Having more than asked is fine. */
    c.cpu_cores = 64;
    c.memory_mb *= 4;
    drv_tagset_add(&c.tags, DRV_TAG_WEBGPU);
    assert_true(drv_requirements_met(&r, &c));
    drv_tag_table_free(t);
}

static void test_empty_requirement_met_by_anyone(void **state)
{
    (void)state;
    drv_requirements r;
    drv_capabilities c;
    drv_requirements_init(&r);
    drv_capabilities_init(&c);
    assert_true(drv_requirements_met(&r, &c));
    /* An empty any_of does not demand anything. */
    drv_tagset_add(&c.tags, DRV_TAG_CPU);
    assert_true(drv_requirements_met(&r, &c));
}

static void test_describe_wording(void **state)
{
    (void)state;
    drv_tag_table *t = drv_tag_table_new();
    drv_requirements r;
    drv_requirements_init(&r);
    r.cpu_cores = 1;
    r.gpu_count = 1;
    r.memory_mb = 1500;
    r.gpu_memory_mb = 1024;
    r.cuda_cc = 86;
    drv_tagset_add(&r.any_of, DRV_TAG_CUDA);
    drv_tagset_add(&r.all_of, DRV_TAG_WEBGPU);
    drv_tagset_add(&r.all_of, DRV_TAG_CHROMIUM);
    drv_tagset_add(&r.none_of, DRV_TAG_EDGE);
    drv_tagset_add(&r.none_of, DRV_TAG_FIREFOX);
    static const struct {
        drv_unmet what;
        uint32_t driver;
        int tag;
        const char *expect;
    } rows[] = {
        {DRV_UNMET_CPU, 0, -1, "at least 1 core"},
        {DRV_UNMET_GPU_COUNT, 0, -1, "at least 1 GPU"},
        {DRV_UNMET_MEMORY, 0, -1, "at least 1500 MiB of memory"},
        {DRV_UNMET_GPU_MEMORY, 0, -1, "a GPU with at least 1 GiB of memory"},
        {DRV_UNMET_CUDA_CC, 0, -1, "CUDA compute capability 8.6 or newer"},
        {DRV_UNMET_DRIVER, 12002000, -1, "driver version 12.2 or newer"},
        {DRV_UNMET_DRIVER, 535000000, -1, "driver version 535 or newer"},
        {DRV_UNMET_DRIVER, 12000001, -1, "driver version 12.0.1 or newer"},
        {DRV_UNMET_TAG_MISSING, 0, DRV_TAG_WEBGPU, "the tag webgpu"},
        {DRV_UNMET_TAG_MISSING, 0, -1, "the tags webgpu, chromium"},
        {DRV_UNMET_TAG_NONE_OF, 0, -1, "the tag cuda"},
        {DRV_UNMET_TAG_FORBIDDEN, 0, DRV_TAG_EDGE, "the tag edge"},
        {DRV_UNMET_TAG_FORBIDDEN, 0, -1, "the tags firefox, edge"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char buf[128];
        r.driver_version = rows[i].driver;
        drv_unmet_describe(rows[i].what, &r, rows[i].tag, t, buf, sizeof buf);
        assert_string_equal(buf, rows[i].expect);
    }
    /* A small buffer is cut, not overrun. */
    char small[10];
    drv_unmet_describe(DRV_UNMET_GPU_MEMORY, &r, -1, t, small, sizeof small);
    assert_string_equal(small, "a GPU wit");
    drv_tag_table_free(t);
}

static void test_equal_and_hash(void **state)
{
    (void)state;
    drv_tag_table *t = drv_tag_table_new();
    drv_requirements a, b;
    drv_capabilities ca, cb;
    full_pair(t, &a, &ca);
    full_pair(t, &b, &cb);
    assert_true(drv_requirements_equal(&a, &b));
    assert_true(drv_capabilities_equal(&ca, &cb));
    assert_true(drv_requirements_hash(&a) == drv_requirements_hash(&b));
    assert_true(drv_capabilities_hash(&ca) == drv_capabilities_hash(&cb));

    /* Each field alone makes them differ, and changes the hash. */
    for (int field = 0; field < 9; field++) {
        b = a;
        switch (field) {
        case 0:
            b.cpu_cores++;
            break;
        case 1:
            b.gpu_count++;
            break;
        case 2:
            b.memory_mb++;
            break;
        case 3:
            b.gpu_memory_mb++;
            break;
        case 4:
            b.cuda_cc++;
            break;
        case 5:
            b.driver_version++;
            break;
        case 6:
            drv_tagset_add(&b.all_of, DRV_TAG_MPS);
            break;
        case 7:
            drv_tagset_add(&b.any_of, DRV_TAG_MPS);
            break;
        default:
            drv_tagset_add(&b.none_of, DRV_TAG_MPS);
            break;
        }
        assert_false(drv_requirements_equal(&a, &b));
        assert_true(drv_requirements_hash(&a) != drv_requirements_hash(&b));
    }
    /* The same tag in a different set is a different requirement. */
    drv_requirements x, y;
    drv_requirements_init(&x);
    drv_requirements_init(&y);
    drv_tagset_add(&x.all_of, DRV_TAG_CUDA);
    drv_tagset_add(&y.any_of, DRV_TAG_CUDA);
    assert_false(drv_requirements_equal(&x, &y));
    assert_true(drv_requirements_hash(&x) != drv_requirements_hash(&y));

    cb.cpu_cores = 9;
    assert_false(drv_capabilities_equal(&ca, &cb));
    assert_true(drv_capabilities_hash(&ca) != drv_capabilities_hash(&cb));
    cb = ca;
    drv_tagset_add(&cb.tags, DRV_TAG_QNN);
    assert_false(drv_capabilities_equal(&ca, &cb));
    assert_true(drv_capabilities_hash(&ca) != drv_capabilities_hash(&cb));
    drv_tag_table_free(t);
}

static void test_version_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint32_t v;
    } good[] = {
        {"535", 535000000},
        {"535.104", 535104000},
        {"535.104.05", 535104005},
        {"12.2", 12002000},
        {"0", 0},
        {"4293.999.999", 4293999999u},
        {"1.0.0", 1000000},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint32_t v = 7;
        drv_error err = {{0}};
        assert_int_equal(drv_version_parse(good[i].s, &v, &err), 0);
        assert_int_equal(v, good[i].v);
    }
    /* Versions order as numbers, not strings. */
    uint32_t a, b;
    assert_int_equal(drv_version_parse("535.99", &a, NULL), 0);
    assert_int_equal(drv_version_parse("535.104", &b, NULL), 0);
    assert_true(a < b);

    static const struct {
        const char *s;
        const char *msg_has;
    } bad[] = {
        {"", "empty"},
        {"535.", "position 5"},
        {".5", "position 1"},
        {"535..1", "position 5"},
        {"1.2.3.4", "more than 3"},
        {"v535", "position 1"},
        {"535.104a", "'a' at position 8"},
        {" 535", "position 1"},
        {"-1", "position 1"},
        {"535.1000", "number 2 is larger than 999"},
        {"4294.0", "number 1 is larger than 4293"},
        {"99999999999999999999", "larger than"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t v = 7;
        drv_error err = {{0}};
        assert_int_equal(drv_version_parse(bad[i].s, &v, &err), -1);
        assert_int_equal(v, 7);
        assert_non_null(strstr(err.msg, "driver version"));
        assert_non_null(strstr(err.msg, bad[i].msg_has));
    }
    drv_error err = {{0}};
    uint32_t v;
    assert_int_equal(drv_version_parse(NULL, &v, &err), -1);
    assert_non_null(strstr(err.msg, "missing"));
}

static void test_cuda_cc_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint32_t v;
    } good[] = {
        {"8.6", 86},   {"86", 86},   {"9.0", 90}, {"10.0", 100},
        {"12.1", 121}, {"120", 120}, {"3.5", 35},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint32_t v = 7;
        assert_int_equal(drv_cuda_cc_parse(good[i].s, &v, NULL), 0);
        assert_int_equal(v, good[i].v);
    }
    static const char *const bad[] = {"",   "8",   "8.10",  "8.06", "0.5",
                                      "8.", "x86", "8.6.1", "1000", "sm_86"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t v = 7;
        drv_error err = {{0}};
        assert_int_equal(drv_cuda_cc_parse(bad[i], &v, &err), -1);
        assert_int_equal(v, 7);
        assert_non_null(strstr(err.msg, "CUDA compute capability"));
        if (bad[i][0])
            assert_non_null(strstr(err.msg, bad[i]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_predicate_alone),
        cmocka_unit_test(test_check_order),
        cmocka_unit_test(test_empty_requirement_met_by_anyone),
        cmocka_unit_test(test_describe_wording),
        cmocka_unit_test(test_equal_and_hash),
        cmocka_unit_test(test_version_parse),
        cmocka_unit_test(test_cuda_cc_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
