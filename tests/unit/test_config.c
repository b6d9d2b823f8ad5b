/* test_config.c - the balancer's JSON configuration: what parses, what a user is told
 * when it does not, and which policy a test ends up with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "balancer/config.h"
#include "core/analyzer.h"

/* Parses a NUL-terminated JSON text. */
static int parse(const char *json, drv_balancer_config *cfg, drv_error *err)
{
    memset(err, 0, sizeof *err);
    return drv_balancer_config_parse(json, strlen(json), cfg, err);
}

/* Asserts that haystack contains needle, printing both when it does not. */
static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle)) {
        print_error("expected \"%s\" in \"%s\"\n", needle, haystack);
        fail();
    }
}

/* ---- defaults -------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    drv_balancer_config cfg;
    drv_balancer_config_default(&cfg);
    const drv_policy_spec *d = &cfg.default_policy;
    assert_int_equal(d->kind, DRV_POLICY_COMPOSITE);
    assert_true(d->weights[DRV_POLICY_PERFORMANCE] == 0.6);
    assert_true(d->weights[DRV_POLICY_RESOURCE_AWARE] == 0.1);
    assert_true(d->weights[DRV_POLICY_AFFINITY] == 0.1);
    assert_true(d->weights[DRV_POLICY_PRIORITY] == 0.1);
    assert_true(d->weights[DRV_POLICY_ROUND_ROBIN] == 0.1);
    assert_true(d->weights[DRV_POLICY_WEIGHTED_ROUND_ROBIN] == 0);
    assert_int_equal(cfg.n_test_types, 0);
    for (int f = 0; f < 64; f++)
        assert_false(cfg.family_set[f]);

    const drv_balancer_settings *s = &cfg.settings;
    assert_true(s->aging_interval_s == 6);
    assert_int_equal(s->prefetch_max, 4);
    assert_true(s->batch_target_s == 2);
    assert_true(s->migration_cost_s == 1);
    assert_true(s->idle_move_cost_s == 0.05);
    assert_true(s->steal_holdoff_s == 30);
    assert_true(s->unschedulable_grace_s == 5);
    assert_int_equal(s->quarantine_after, 3);

    drv_thermal_config th;
    drv_thermal_config_default(&th);
    assert_memory_equal(&s->thermal, &th, sizeof th);
}

static void test_empty_object_gives_defaults(void **state)
{
    (void)state;
    drv_balancer_config cfg, def;
    drv_error err;
    drv_balancer_config_default(&def);
    memset(&cfg, 0x5a, sizeof cfg);
    assert_int_equal(parse("  {}\n", &cfg, &err), 0);
    assert_memory_equal(&cfg, &def, sizeof cfg);
}

/* The seeds' shape: the _based names and the modality groups, a specific family winning
 * over its group whichever comes first in the file. */
static void test_seed_shape_names_and_groups(void **state)
{
    (void)state;
    drv_balancer_config cfg;
    drv_error err;
    const char *json =
        "{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": ["
        "   {\"type\": \"performance_based\", \"weight\": 0.4},"
        "   {\"type\": \"priority_based\", \"weight\": 0.3},"
        "   {\"type\": \"affinity_based\", \"weight\": 0.3}]},"
        " \"model_family_schedulers\": {\"vit\": \"round_robin\","
        "   \"vision\": {\"type\": \"affinity_based\"}, \"text\": \"priority_based\","
        "   \"audio\": {\"type\": \"performance_based\"}, \"multimodal\": \"resource_aware\","
        "   \"whisper\": \"priority\"}}";
    if (parse(json, &cfg, &err) != 0)
        fail_msg("%s", err.msg);
    assert_true(cfg.default_policy.weights[DRV_POLICY_PRIORITY] == 0.3);
    assert_true(cfg.default_policy.weights[DRV_POLICY_AFFINITY] == 0.3);
    static const struct {
        const char *family;
        drv_policy_kind want;
    } rows[] = {
        {"vit", DRV_POLICY_ROUND_ROBIN},  /* named before its group */
        {"whisper", DRV_POLICY_PRIORITY}, /* named after its group */
        {"deit", DRV_POLICY_AFFINITY},    /* vision */
        {"stable-diffusion", DRV_POLICY_AFFINITY},
        {"bert", DRV_POLICY_PRIORITY}, /* text */
        {"qwen", DRV_POLICY_PRIORITY},
        {"bark", DRV_POLICY_PERFORMANCE},    /* audio */
        {"clip", DRV_POLICY_RESOURCE_AWARE}, /* multimodal */
        {"llava", DRV_POLICY_RESOURCE_AWARE},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int f = drv_family_lookup(rows[i].family);
        assert_true(f > 0);
        const drv_policy_spec *sp = drv_balancer_config_policy_for(&cfg, f, NULL);
        if (sp->kind != rows[i].want)
            fail_msg("%s: %s, want %s", rows[i].family, drv_policy_kind_name(sp->kind),
                     drv_policy_kind_name(rows[i].want));
    }
    /* The unknown family (no model id) is in no group: the default scheduler. */
    assert_int_equal(drv_balancer_config_policy_for(&cfg, 0, NULL)->kind, DRV_POLICY_COMPOSITE);

    /* Unknown names list the known ones. */
    assert_int_equal(parse("{\"model_family_schedulers\": {\"visual\": \"priority\"}}", &cfg, &err),
                     -1);
    assert_string_equal(err.msg, "model_family_schedulers.visual: unknown model family (groups: "
                                 "vision, text, audio, multimodal; like it: vit)");
    assert_int_equal(parse("{\"model_family_schedulers\": {\"zzz\": \"priority\"}}", &cfg, &err),
                     -1);
    assert_string_equal(err.msg, "model_family_schedulers.zzz: unknown model family (groups: "
                                 "vision, text, audio, multimodal)");
    assert_int_equal(parse("{\"default_scheduler\": \"fastest\"}", &cfg, &err), -1);
    assert_non_null(strstr(err.msg, "(known: round_robin, weighted_round_robin"));
}

/* A file changes only the keys it sets: one setting, one thermal key, one family. */
static void test_a_file_changes_only_its_keys(void **state)
{
    (void)state;
    drv_balancer_config cfg, want;
    drv_error err;
    assert_int_equal(parse("{\"settings\": {\"aging_interval_s\": 2, \"thermal\": "
                           "{\"cooldown_s\": 7}}}",
                           &cfg, &err),
                     0);
    drv_balancer_config_default(&want);
    want.settings.aging_interval_s = 2;
    want.settings.thermal.cooldown_s = 7;
    assert_memory_equal(&cfg, &want, sizeof cfg);
    assert_int_equal(cfg.settings.prefetch_max, 4);       /* not 1024 or 0 */
    assert_true(cfg.settings.unschedulable_grace_s == 5); /* not 0 */
}

/* ---- every scheduler type -------------------------------------------------------- */

static const struct {
    const char *name;
    drv_policy_kind kind;
} kind_rows[] = {
    {"round_robin", DRV_POLICY_ROUND_ROBIN},
    {"weighted_round_robin", DRV_POLICY_WEIGHTED_ROUND_ROBIN},
    {"resource_aware", DRV_POLICY_RESOURCE_AWARE},
    {"priority", DRV_POLICY_PRIORITY},
    {"affinity", DRV_POLICY_AFFINITY},
    {"performance_based", DRV_POLICY_PERFORMANCE},
    {"performance", DRV_POLICY_PERFORMANCE},
};

static void test_every_type_parses(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof kind_rows / sizeof kind_rows[0]; i++) {
        char json[256];
        drv_balancer_config cfg;
        drv_error err;

        /* Object form. */
        snprintf(json, sizeof json, "{\"default_scheduler\": {\"type\": \"%s\"}}",
                 kind_rows[i].name);
        if (parse(json, &cfg, &err) != 0) {
            print_error("%s: %s\n", json, err.msg);
            fail();
        }
        assert_int_equal(cfg.default_policy.kind, kind_rows[i].kind);
        for (int k = 0; k < DRV_POLICY_SINGLE_COUNT; k++)
            assert_true(cfg.default_policy.weights[k] == 0);

        /* Bare string form. */
        snprintf(json, sizeof json, "{\"default_scheduler\": \"%s\"}", kind_rows[i].name);
        assert_int_equal(parse(json, &cfg, &err), 0);
        assert_int_equal(cfg.default_policy.kind, kind_rows[i].kind);

        /* Names round-trip (the alias maps to the canonical name). */
        assert_int_equal(drv_policy_kind_parse(kind_rows[i].name), (int)kind_rows[i].kind);
        assert_int_equal(drv_policy_kind_parse(drv_policy_kind_name(kind_rows[i].kind)),
                         (int)kind_rows[i].kind);
    }
    assert_int_equal(drv_policy_kind_parse("composite"), DRV_POLICY_COMPOSITE);
    assert_string_equal(drv_policy_kind_name(DRV_POLICY_PERFORMANCE), "performance_based");
    assert_int_equal(drv_policy_kind_parse("fifo"), -1);
    assert_int_equal(drv_policy_kind_parse(""), -1);
    assert_int_equal(drv_policy_kind_parse(NULL), -1);
}

static void test_composite_weights_stored_as_given(void **state)
{
    (void)state;
    drv_balancer_config cfg;
    drv_error err;
    const char *json = "{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": ["
                       "{\"type\": \"performance_based\", \"weight\": 5},"
                       "{\"type\": \"resource_aware\", \"weight\": 0.3},"
                       "{\"weight\": 2.5, \"type\": \"weighted_round_robin\"}]}}";
    assert_int_equal(parse(json, &cfg, &err), 0);
    const drv_policy_spec *d = &cfg.default_policy;
    assert_int_equal(d->kind, DRV_POLICY_COMPOSITE);
    assert_true(d->weights[DRV_POLICY_PERFORMANCE] == 5);
    assert_true(d->weights[DRV_POLICY_RESOURCE_AWARE] == 0.3);
    assert_true(d->weights[DRV_POLICY_WEIGHTED_ROUND_ROBIN] == 2.5);
    assert_true(d->weights[DRV_POLICY_AFFINITY] == 0);
    assert_true(d->weights[DRV_POLICY_PRIORITY] == 0);
    assert_true(d->weights[DRV_POLICY_ROUND_ROBIN] == 0);
}

/* ---- per test type, per family, precedence --------------------------------------- */

static void test_policy_for_precedence(void **state)
{
    (void)state;
    int bert = drv_family_lookup("bert");
    int vit = drv_family_lookup("vit");
    assert_true(bert > 0);
    assert_true(vit > 0);

    drv_balancer_config cfg;
    drv_error err;
    const char *json = "{\"default_scheduler\": \"priority\","
                       " \"test_type_schedulers\": {\"performance\": {\"type\": \"performance\"},"
                       "                            \"unit\": \"round_robin\"},"
                       " \"model_family_schedulers\": {\"bert\": {\"type\": \"affinity\"}}}";
    if (parse(json, &cfg, &err) != 0) {
        print_error("%s\n", err.msg);
        fail();
    }
    assert_int_equal(cfg.n_test_types, 2);
    assert_true(cfg.family_set[bert]);
    assert_false(cfg.family_set[vit]);

    static const struct {
        const char *family; /* NULL = unknown family (0) */
        const char *test_type;
        drv_policy_kind want;
    } rows[] = {
        {"bert", "unit", DRV_POLICY_AFFINITY},         /* family beats test type */
        {"bert", NULL, DRV_POLICY_AFFINITY},           /* family beats default */
        {"vit", "unit", DRV_POLICY_ROUND_ROBIN},       /* unconfigured family: test type */
        {NULL, "performance", DRV_POLICY_PERFORMANCE}, /* unknown family: test type */
        {"vit", "integration", DRV_POLICY_PRIORITY},   /* nothing configured: default */
        {NULL, NULL, DRV_POLICY_PRIORITY},
        {NULL, "Unit", DRV_POLICY_PRIORITY}, /* test types match exactly */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int fam = rows[i].family ? drv_family_lookup(rows[i].family) : 0;
        const drv_policy_spec *s = drv_balancer_config_policy_for(&cfg, fam, rows[i].test_type);
        assert_non_null(s);
        if (s->kind != rows[i].want) {
            print_error("row %zu: got %s, want %s\n", i, drv_policy_kind_name(s->kind),
                        drv_policy_kind_name(rows[i].want));
            fail();
        }
    }
    /* Out-of-range family ids fall through to test type and default. */
    assert_int_equal(drv_balancer_config_policy_for(&cfg, -1, "unit")->kind,
                     DRV_POLICY_ROUND_ROBIN);
    assert_int_equal(drv_balancer_config_policy_for(&cfg, 1000, NULL)->kind, DRV_POLICY_PRIORITY);
    assert_null(drv_balancer_config_policy_for(NULL, bert, "unit"));
}

static void test_composite_per_test_type_and_family(void **state)
{
    (void)state;
    drv_balancer_config cfg;
    drv_error err;
    const char *json = "{\"test_type_schedulers\": {\"browser\": {\"type\": \"composite\","
                       "   \"algorithms\": [{\"type\": \"affinity\", \"weight\": 0.7},"
                       "                    {\"type\": \"round_robin\", \"weight\": 0.3}]}},"
                       " \"model_family_schedulers\": {\"vit\": {\"type\": \"composite\","
                       "   \"algorithms\": [{\"type\": \"priority\", \"weight\": 1}]}}}";
    assert_int_equal(parse(json, &cfg, &err), 0);
    const drv_policy_spec *s = drv_balancer_config_policy_for(&cfg, 0, "browser");
    assert_int_equal(s->kind, DRV_POLICY_COMPOSITE);
    assert_true(s->weights[DRV_POLICY_AFFINITY] == 0.7);
    assert_true(s->weights[DRV_POLICY_ROUND_ROBIN] == 0.3);
    s = drv_balancer_config_policy_for(&cfg, drv_family_lookup("vit"), "browser");
    assert_int_equal(s->kind, DRV_POLICY_COMPOSITE);
    assert_true(s->weights[DRV_POLICY_PRIORITY] == 1);
    assert_true(s->weights[DRV_POLICY_AFFINITY] == 0);
    /* The default is untouched. */
    assert_true(cfg.default_policy.weights[DRV_POLICY_PERFORMANCE] == 0.6);
}

static void test_test_type_limits_accepted(void **state)
{
    (void)state;
    /* Exactly DRV_CONFIG_TEST_TYPES_MAX types, one with the longest allowed name. */
    char json[4096];
    size_t n = (size_t)snprintf(json, sizeof json, "{\"test_type_schedulers\": {");
    char longest[DRV_TEST_TYPE_NAME_MAX];
    memset(longest, 'x', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    for (int i = 0; i < DRV_CONFIG_TEST_TYPES_MAX; i++) {
        if (i == 0)
            n += (size_t)snprintf(json + n, sizeof json - n, "\"%s\": \"affinity\"", longest);
        else
            n += (size_t)snprintf(json + n, sizeof json - n, ", \"t%d\": \"priority\"", i);
    }
    snprintf(json + n, sizeof json - n, "}}");
    drv_balancer_config cfg;
    drv_error err;
    if (parse(json, &cfg, &err) != 0) {
        print_error("%s\n", err.msg);
        fail();
    }
    assert_int_equal(cfg.n_test_types, DRV_CONFIG_TEST_TYPES_MAX);
    assert_int_equal(drv_balancer_config_policy_for(&cfg, 0, longest)->kind, DRV_POLICY_AFFINITY);
    assert_int_equal(drv_balancer_config_policy_for(&cfg, 0, "t31")->kind, DRV_POLICY_PRIORITY);
}

/* ---- settings -------------------------------------------------------------------- */

static void test_settings_every_key(void **state)
{
    (void)state;
    drv_balancer_config cfg;
    drv_error err;
    const char *json = "{\"settings\": {\"aging_interval_s\": 1.5, \"prefetch_max\": 1024,"
                       " \"batch_target_s\": 7, \"migration_cost_s\": 0,"
                       " \"steal_holdoff_s\": 11, \"unschedulable_grace_s\": 12.5,"
                       " \"quarantine_after\": 9,"
                       " \"thermal\": {\"ramp_s\": 60, \"initial_share\": 0.5,"
                       "   \"cpu_pressure_limit\": 0.8, \"overload_sustain_s\": 4,"
                       "   \"error_threshold\": 7, \"temperature_limit_c\": 90,"
                       "   \"cooling_share\": 0.25, \"cooldown_s\": 15, \"idle_cold_s\": 100}}}";
    if (parse(json, &cfg, &err) != 0) {
        print_error("%s\n", err.msg);
        fail();
    }
    const drv_balancer_settings *s = &cfg.settings;
    assert_true(s->aging_interval_s == 1.5);
    assert_int_equal(s->prefetch_max, 1024);
    assert_true(s->batch_target_s == 7);
    assert_true(s->migration_cost_s == 0);
    assert_true(s->steal_holdoff_s == 11);
    assert_true(s->unschedulable_grace_s == 12.5);
    assert_int_equal(s->quarantine_after, 9);
    assert_true(s->thermal.ramp_s == 60);
    assert_true(s->thermal.initial_share == 0.5);
    assert_true(s->thermal.cpu_pressure_limit == 0.8);
    assert_true(s->thermal.overload_sustain_s == 4);
    assert_int_equal(s->thermal.error_threshold, 7);
    assert_true(s->thermal.temperature_limit_c == 90);
    assert_true(s->thermal.cooling_share == 0.25);
    assert_true(s->thermal.cooldown_s == 15);
    assert_true(s->thermal.idle_cold_s == 100);
}

static void test_settings_partial_keeps_defaults(void **state)
{
    (void)state;
    drv_balancer_config cfg, def;
    drv_error err;
    drv_balancer_config_default(&def);
    assert_int_equal(
        parse("{\"settings\": {\"prefetch_max\": 0, \"thermal\": {\"ramp_s\": 5}}}", &cfg, &err),
        0);
    assert_int_equal(cfg.settings.prefetch_max, 0);
    assert_true(cfg.settings.thermal.ramp_s == 5);
    assert_true(cfg.settings.aging_interval_s == def.settings.aging_interval_s);
    assert_int_equal(cfg.settings.quarantine_after, def.settings.quarantine_after);
    assert_true(cfg.settings.thermal.cooldown_s == def.settings.thermal.cooldown_s);
    assert_int_equal(cfg.settings.thermal.error_threshold, def.settings.thermal.error_threshold);
}

/* ---- one row per input: accepted, or the error a user sees ----------------------- */

typedef struct row {
    const char *json;
    int ok;             /* 1: parses */
    const char *expect; /* error: a substring of the message */
} row;

static const row rows[] = {
    /* Accepted shapes. */
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": "
     "[{\"type\": \"affinity\", \"weight\": 1}]}}",
     1, NULL},
    {"{\"settings\": {\"prefetch_max\": 4.0}}", 1, NULL},
    {"{\"settings\": {\"thermal\": {}}}", 1, NULL},
    {"{\"test_type_schedulers\": {}, \"model_family_schedulers\": {}}", 1, NULL},

    /* Scheduler type. */
    {"{\"default_scheduler\": {\"type\": \"fifo\"}}", 0,
     "default_scheduler.type: unknown scheduler type \"fifo\" (known: round_robin, "},
    {"{\"default_scheduler\": \"fifo\"}", 0, "default_scheduler: unknown scheduler type \"fifo\""},
    {"{\"default_scheduler\": {\"type\": 3}}", 0,
     "default_scheduler.type: must be a string, got number"},
    {"{\"default_scheduler\": {}}", 0, "default_scheduler.type: required"},
    {"{\"default_scheduler\": [\"round_robin\"]}", 0,
     "default_scheduler: must be a scheduler name or an object, got array"},
    {"{\"default_scheduler\": {\"type\": \"priority\", \"algorithms\": []}}", 0,
     "default_scheduler.algorithms: only allowed for type composite"},
    {"{\"default_scheduler\": {\"type\": \"priority\", \"weight\": 1}}", 0,
     "default_scheduler.weight: unknown key"},

    /* Composite. */
    {"{\"default_scheduler\": {\"type\": \"composite\"}}", 0,
     "default_scheduler.algorithms: required for type composite"},
    {"{\"default_scheduler\": \"composite\"}", 0,
     "default_scheduler.algorithms: required for type composite"},
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": []}}", 0,
     "default_scheduler.algorithms: must list at least one algorithm"},
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": {}}}", 0,
     "default_scheduler.algorithms: must be an array, got object"},
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": "
     "[{\"type\": \"affinity\", \"weight\": 1}, {\"type\": \"priority\", \"weight\": -2}]}}",
     0, "default_scheduler.algorithms[1].weight: must be a number > 0, got -2"},
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": "
     "[{\"type\": \"affinity\", \"weight\": 0}]}}",
     0, "default_scheduler.algorithms[0].weight: must be a number > 0, got 0"},
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": "
     "[{\"type\": \"affinity\", \"weight\": \"x\"}]}}",
     0, "default_scheduler.algorithms[0].weight: must be a number > 0, got \"x\""},
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": "
     "[{\"type\": \"affinity\", \"weight\": true}]}}",
     0, "default_scheduler.algorithms[0].weight: must be a number > 0, got boolean"},
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": "
     "[{\"type\": \"affinity\"}]}}",
     0, "default_scheduler.algorithms[0].weight: required"},
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": [{\"weight\": 1}]}}", 0,
     "default_scheduler.algorithms[0].type: required"},
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": "
     "[{\"type\": \"composite\", \"weight\": 1}]}}",
     0, "default_scheduler.algorithms[0].type: composite cannot nest"},
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": "
     "[{\"type\": \"fifo\", \"weight\": 1}]}}",
     0, "default_scheduler.algorithms[0].type: unknown scheduler type \"fifo\""},
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": "
     "[{\"type\": \"affinity\", \"weight\": 1}, {\"type\": \"affinity\", \"weight\": 2}]}}",
     0, "default_scheduler.algorithms[1].type: affinity listed twice"},
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": "
     "[{\"type\": \"performance_based\", \"weight\": 1}, {\"type\": \"performance\", "
     "\"weight\": 2}]}}",
     0, "default_scheduler.algorithms[1].type: performance_based listed twice"},
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": [\"affinity\"]}}", 0,
     "default_scheduler.algorithms[0]: must be an object"},
    {"{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": "
     "[{\"type\": \"affinity\", \"weight\": 1, \"bias\": 2}]}}",
     0, "default_scheduler.algorithms[0].bias: unknown key"},

    /* Test types. */
    {"{\"test_type_schedulers\": []}", 0, "test_type_schedulers: must be an object, got array"},
    {"{\"test_type_schedulers\": {\"unit\": {\"type\": \"lifo\"}}}", 0,
     "test_type_schedulers.unit.type: unknown scheduler type \"lifo\""},
    {"{\"test_type_schedulers\": {\"unit\": 5}}", 0,
     "test_type_schedulers.unit: must be a scheduler name or an object, got number"},
    {"{\"test_type_schedulers\": {\"\": \"priority\"}}", 0,
     "test_type_schedulers: test type name must not be empty"},
    {"{\"test_type_schedulers\": {\"abcdefghijabcdefghijabcdefghij12\": \"priority\"}}", 0,
     "test_type_schedulers.abcdefghijabcdefghijabcdefghij12: test type name longer than 31 "
     "characters"},

    /* Model families. */
    {"{\"model_family_schedulers\": {\"foo\": \"affinity\"}}", 0,
     "model_family_schedulers.foo: unknown model family"},
    {"{\"model_family_schedulers\": {\"unknown\": \"affinity\"}}", 0,
     "model_family_schedulers.unknown: unknown model family"},
    {"{\"model_family_schedulers\": \"bert\"}", 0,
     "model_family_schedulers: must be an object, got string"},
    {"{\"model_family_schedulers\": {\"bert\": {\"type\": \"composite\"}}}", 0,
     "model_family_schedulers.bert.algorithms: required for type composite"},

    /* Settings. */
    {"{\"settings\": {\"prefetch_max\": 2000}}", 0,
     "settings.prefetch_max: must be an integer 0..1024, got 2000"},
    {"{\"settings\": {\"prefetch_max\": -1}}", 0,
     "settings.prefetch_max: must be an integer 0..1024"},
    {"{\"settings\": {\"prefetch_max\": 2.5}}", 0,
     "settings.prefetch_max: must be an integer 0..1024, got 2.5"},
    {"{\"settings\": {\"prefetch_max\": \"4\"}}", 0,
     "settings.prefetch_max: must be an integer 0..1024, got \"4\""},
    {"{\"settings\": {\"quarantine_after\": 0}}", 0,
     "settings.quarantine_after: must be an integer 1.."},
    {"{\"settings\": {\"aging_interval_s\": 0}}", 0,
     "settings.aging_interval_s: must be a number > 0, got 0"},
    {"{\"settings\": {\"migration_cost_s\": -0.5}}", 0,
     "settings.migration_cost_s: must be a number >= 0, got -0.5"},
    {"{\"settings\": {\"steal_holdoff_s\": null}}", 0,
     "settings.steal_holdoff_s: must be a number >= 0, got null"},
    {"{\"settings\": {\"foo\": 1}}", 0, "settings.foo: unknown key"},
    {"{\"settings\": 3}", 0, "settings: must be an object, got number"},
    {"{\"settings\": {\"thermal\": []}}", 0, "settings.thermal: must be an object, got array"},
    {"{\"settings\": {\"thermal\": {\"initial_share\": 1.5}}}", 0,
     "settings.thermal.initial_share: must be a number > 0 and <= 1, got 1.5"},
    {"{\"settings\": {\"thermal\": {\"error_threshold\": 0}}}", 0,
     "settings.thermal.error_threshold: must be an integer 1.."},
    {"{\"settings\": {\"thermal\": {\"ramp\": 3}}}", 0, "settings.thermal.ramp: unknown key"},

    /* Unknown top-level keys and the document itself. */
    {"{\"schedulers\": {}}", 0, "schedulers: unknown key"},
    {"", 0, "config: empty input"},
    {" \n\t ", 0, "config: empty input"},
    {"[]", 0, "config: must be an object, got array"},
    {"42", 0, "config: must be an object, got number"},
    {"\"round_robin\"", 0, "config: must be an object, got string"},
    {"{\"settings\": {}} x", 0, "config: invalid JSON at line 1, column"},
    {"{\"settings\": {}}{}", 0, "config: invalid JSON at line 1"},
    {"{\"settings\": {\"prefetch_max\": 1,\n  \"prefetch_max\": 2}}", 0,
     "config: invalid JSON at line 2, column"},
    {"{\"settings\": {\"prefetch_max\": 1,\n  \"prefetch_max\": 2}}", 0, "duplicate"},
    {"{\"default_scheduler\": \n{\"type\": }}", 0, "config: invalid JSON at line 2, column 10"},
    {"{\"settings\": {", 0, "config: invalid JSON at line 1"},
};

static void test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_balancer_config cfg;
        drv_error err;
        int rc = parse(rows[i].json, &cfg, &err);
        if (rows[i].ok) {
            if (rc != 0) {
                print_error("row %zu: %s\n  unexpected error: %s\n", i, rows[i].json, err.msg);
                fail();
            }
            continue;
        }
        if (rc != -1) {
            print_error("row %zu: %s\n  parsed, expected error containing: %s\n", i, rows[i].json,
                        rows[i].expect);
            fail();
        }
        if (!strstr(err.msg, rows[i].expect)) {
            print_error("row %zu: %s\n  got:      %s\n  expected: ...%s...\n", i, rows[i].json,
                        err.msg, rows[i].expect);
            fail();
        }
    }
}

/* ---- several problems at once, truncation, cfg untouched on error ---------------- */

static void test_several_errors_reported_together(void **state)
{
    (void)state;
    drv_balancer_config cfg;
    drv_error err;
    const char *json = "{\"default_scheduler\": {\"type\": \"composite\", \"algorithms\": ["
                       "  {\"type\": \"affinity\", \"weight\": 1},"
                       "  {\"type\": \"priority\", \"weight\": -2},"
                       "  {\"type\": \"composite\", \"weight\": 1}]},"
                       " \"test_type_schedulers\": {\"unit\": \"fifo\"},"
                       " \"model_family_schedulers\": {\"foo\": \"affinity\"},"
                       " \"settings\": {\"prefetch_max\": 5000, \"foo\": 1},"
                       " \"extra\": true}";
    assert_int_equal(parse(json, &cfg, &err), -1);
    static const char *const want[] = {
        "default_scheduler.algorithms[1].weight: must be a number > 0, got -2",
        "default_scheduler.algorithms[2].type: composite cannot nest",
        "test_type_schedulers.unit: unknown scheduler type \"fifo\"",
        "model_family_schedulers.foo: unknown model family",
        "settings.prefetch_max: must be an integer 0..1024, got 5000",
        "settings.foo: unknown key",
        "extra: unknown key",
    };
    const char *prev = err.msg;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_contains(err.msg, want[i]);
        /* In document order, separated by "; ". */
        const char *at = strstr(err.msg, want[i]);
        assert_true(at >= prev);
        if (i > 0)
            assert_memory_equal(at - 2, "; ", 2);
        prev = at;
    }
    assert_null(strstr(err.msg, "..."));
}

static void test_too_many_errors_truncated(void **state)
{
    (void)state;
    char json[8192];
    size_t n = (size_t)snprintf(json, sizeof json, "{\"settings\": {");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s\"unknown_setting_%03d\": 1",
                              i ? ", " : "", i);
    snprintf(json + n, sizeof json - n, "}}");
    drv_balancer_config cfg;
    drv_error err;
    assert_int_equal(parse(json, &cfg, &err), -1);
    size_t len = strlen(err.msg);
    assert_true(len < DRV_ERROR_MAX);
    assert_true(len > DRV_ERROR_MAX / 2); /* it filled the space it had */
    assert_contains(err.msg, "settings.unknown_setting_000: unknown key; ");
    /* Ends with a visible cut after whole problems, not in the middle of one. */
    assert_string_equal(err.msg + len - 5, "; ...");
    assert_memory_equal(err.msg + len - 16, "unknown key", 11);
    assert_null(strstr(err.msg, "unknown_setting_099"));
}

static void test_long_key_truncated(void **state)
{
    (void)state;
    /* An unknown key far longer than the whole message space. */
    char json[4096];
    char key[1500];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    snprintf(json, sizeof json, "{\"%s\": 1, \"settings\": {\"%s\": 2}}", key, key);
    drv_balancer_config cfg;
    drv_error err;
    assert_int_equal(parse(json, &cfg, &err), -1);
    assert_true(strlen(err.msg) < DRV_ERROR_MAX);
    assert_contains(err.msg, "kkk...: unknown key; settings.kkk");
}

static void test_too_many_test_types(void **state)
{
    (void)state;
    char json[4096];
    size_t n = (size_t)snprintf(json, sizeof json, "{\"test_type_schedulers\": {");
    for (int i = 0; i <= DRV_CONFIG_TEST_TYPES_MAX; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s\"t%d\": \"priority\"", i ? ", " : "",
                              i);
    snprintf(json + n, sizeof json - n, "}}");
    drv_balancer_config cfg;
    drv_error err;
    assert_int_equal(parse(json, &cfg, &err), -1);
    char want[128];
    snprintf(want, sizeof want, "test_type_schedulers: at most %d test types, got %d",
             DRV_CONFIG_TEST_TYPES_MAX, DRV_CONFIG_TEST_TYPES_MAX + 1);
    assert_contains(err.msg, want);
}

static void test_cfg_at_defaults_on_error(void **state)
{
    (void)state;
    drv_balancer_config def;
    drv_balancer_config_default(&def);
    /* Mostly valid input that would change every part of cfg, with one bad value last. */
    static const char *const bad[] = {
        "{\"default_scheduler\": \"round_robin\","
        " \"test_type_schedulers\": {\"unit\": \"affinity\"},"
        " \"model_family_schedulers\": {\"bert\": \"priority\"},"
        " \"settings\": {\"prefetch_max\": 9, \"thermal\": {\"ramp_s\": 1}, \"oops\": 1}}",
        "{\"default_scheduler\": \"round_robin\", \"settings\": {\"prefetch_max\": 9}} trailing",
        "{\"test_type_schedulers\": {\"unit\": \"affinity\"}, \"default_scheduler\": \"fifo\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        drv_balancer_config cfg;
        drv_error err;
        /* Start from a configuration a previous parse produced. */
        assert_int_equal(parse("{\"default_scheduler\": \"affinity\","
                               " \"settings\": {\"prefetch_max\": 100}}",
                               &cfg, &err),
                         0);
        assert_int_equal(cfg.default_policy.kind, DRV_POLICY_AFFINITY);
        assert_int_equal(parse(bad[i], &cfg, &err), -1);
        assert_memory_equal(&cfg, &def, sizeof cfg);
    }
}

static void test_null_arguments(void **state)
{
    (void)state;
    drv_balancer_config cfg, def;
    drv_error err;
    drv_balancer_config_default(&def);
    assert_int_equal(drv_balancer_config_parse(NULL, 10, &cfg, &err), -1);
    assert_contains(err.msg, "config: empty input");
    assert_memory_equal(&cfg, &def, sizeof cfg);
    assert_int_equal(drv_balancer_config_parse("{}", 2, NULL, &err), -1);
    /* A NULL error record is allowed. */
    assert_int_equal(drv_balancer_config_parse("[", 1, &cfg, NULL), -1);
    assert_int_equal(drv_balancer_config_parse("{}", 2, &cfg, NULL), 0);
    /* len bounds the input: the text after it is not read. */
    assert_int_equal(drv_balancer_config_parse("{} garbage", 2, &cfg, &err), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_empty_object_gives_defaults),
        cmocka_unit_test(test_a_file_changes_only_its_keys),
        cmocka_unit_test(test_seed_shape_names_and_groups),
        cmocka_unit_test(test_every_type_parses),
        cmocka_unit_test(test_composite_weights_stored_as_given),
        cmocka_unit_test(test_policy_for_precedence),
        cmocka_unit_test(test_composite_per_test_type_and_family),
        cmocka_unit_test(test_test_type_limits_accepted),
        cmocka_unit_test(test_settings_every_key),
        cmocka_unit_test(test_settings_partial_keeps_defaults),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_several_errors_reported_together),
        cmocka_unit_test(test_too_many_errors_truncated),
        cmocka_unit_test(test_long_key_truncated),
        cmocka_unit_test(test_too_many_test_types),
        cmocka_unit_test(test_cfg_at_defaults_on_error),
        cmocka_unit_test(test_null_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
