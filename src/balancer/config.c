/* config.c - parsing the balancer's JSON configuration (see config.h for the shape).
 *
 * The parser walks the whole document and records every problem it finds, each with
 * the full key path ("default_scheduler.algorithms[1].weight: ..."), instead of
 * stopping at the first one, so a user fixes a config in one round. It fills a local
 * copy and only hands it to the caller when there was no problem at all. */
#include "balancer/config.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/analyzer.h"
#include "json/json_fields.h"

_Static_assert(DRV_FAMILY_MAX <= 64, "drv_balancer_config.family_set holds 64 families");

/* Config names, indexed by drv_policy_kind. */
static const char *const policy_names[DRV_POLICY_KIND_COUNT] = {
    [DRV_POLICY_ROUND_ROBIN] = "round_robin",
    [DRV_POLICY_WEIGHTED_ROUND_ROBIN] = "weighted_round_robin",
    [DRV_POLICY_RESOURCE_AWARE] = "resource_aware",
    [DRV_POLICY_PRIORITY] = "priority",
    [DRV_POLICY_AFFINITY] = "affinity",
    [DRV_POLICY_PERFORMANCE] = "performance_based",
    [DRV_POLICY_COMPOSITE] = "composite",
};

#define KNOWN_POLICIES                                                                             \
    "round_robin, weighted_round_robin, resource_aware, priority, affinity, "                      \
    "performance_based, composite"

/* ---- problem list ---------------------------------------------------------------- */

/* Every problem found so far, joined by "; ". Room for a final "; ..." is always kept,
 * so a list that does not fit ends visibly truncated rather than cut mid-sentence. */
typedef struct problems {
    char msg[DRV_ERROR_MAX];
    size_t len;
    unsigned count;
    int full;
} problems;

#define ELLIPSIS_ROOM 5 /* strlen("; ...") */

/* Appends one formatted problem. Once the list is full, later problems are counted
 * but not shown; the list then ends in "...". */
__attribute__((format(printf, 2, 3))) static void problem(problems *p, const char *fmt, ...)
{
    char one[DRV_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(one, sizeof one, fmt, ap);
    va_end(ap);

    p->count++;
    if (p->full)
        return;
    const char *sep = p->len ? "; " : "";
    size_t need = strlen(sep) + strlen(one);
    size_t cap = sizeof p->msg - 1; /* characters, without the terminator */
    if (p->len + need + ELLIPSIS_ROOM <= cap) {
        memcpy(p->msg + p->len, sep, strlen(sep));
        memcpy(p->msg + p->len + strlen(sep), one, strlen(one));
        p->len += need;
        p->msg[p->len] = '\0';
        return;
    }
    p->full = 1;
    if (p->len == 0) {
        /* A single problem longer than the whole buffer: cut it and mark the cut. */
        size_t keep = cap - 3;
        memcpy(p->msg, one, keep);
        memcpy(p->msg + keep, "...", 4);
        p->len = cap;
    } else {
        memcpy(p->msg + p->len, "; ...", ELLIPSIS_ROOM + 1);
        p->len += ELLIPSIS_ROOM;
    }
}

/* ---- schedulers ------------------------------------------------------------------ */

/* Reads the policy name of the string value v at path into *kind. Records a problem
 * and returns -1 when v is not a string or names no known policy. */
static int parse_kind(problems *p, const char *path, const json_t *v, drv_policy_kind *kind)
{
    if (!json_is_string(v)) {
        problem(p, "%s: must be a string, got %s", path, drv_json_kind(v));
        return -1;
    }
    int k = drv_policy_kind_parse(json_string_value(v));
    if (k < 0) {
        problem(p, "%s: unknown scheduler type \"%.40s\" (known: " KNOWN_POLICIES ")", path,
                json_string_value(v));
        return -1;
    }
    *kind = (drv_policy_kind)k;
    return 0;
}

/* Parses one entry of a composite's "algorithms" array, {"type": single, "weight": w},
 * at path, adding its weight to spec. Problems are recorded; nothing is returned. */
static void parse_algorithm(problems *p, const char *path, const json_t *v, drv_policy_spec *spec)
{
    char sub[DRV_JSON_PATH_MAX];
    if (!json_is_object(v)) {
        problem(p, "%s: must be an object {\"type\": ..., \"weight\": ...}, got %s", path,
                drv_json_kind(v));
        return;
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        if (strcmp(key, "type") != 0 && strcmp(key, "weight") != 0) {
            drv_json_path_key(sub, path, key);
            problem(p, "%s: unknown key", sub);
        }
    }

    drv_policy_kind kind = DRV_POLICY_COMPOSITE;
    int kind_ok = 0;
    const json_t *type = json_object_get(v, "type");
    drv_json_path_key(sub, path, "type");
    if (!type) {
        problem(p, "%s: required", sub);
    } else if (parse_kind(p, sub, type, &kind) == 0) {
        if (kind == DRV_POLICY_COMPOSITE)
            problem(p, "%s: composite cannot nest", sub);
        else if (spec->weights[kind] > 0)
            problem(p, "%s: %s listed twice", sub, drv_policy_kind_name(kind));
        else
            kind_ok = 1;
    }

    double weight = 0;
    drv_error err = {{0}};
    if (drv_json_number(v, path, "weight",
                        DRV_JSON_REQUIRED | DRV_JSON_NULL_WRONG | DRV_JSON_ABOVE_MIN, 0, INFINITY,
                        &weight, &err) < 0) {
        problem(p, "%s", err.msg);
        return;
    }
    if (kind_ok)
        spec->weights[kind] = weight;
}

/* Parses a scheduler at path: a bare policy name, or {"type": NAME} with "algorithms"
 * for a composite. On any problem *out is left as it was. */
static void parse_scheduler(problems *p, const char *path, const json_t *v, drv_policy_spec *out)
{
    char sub[DRV_JSON_PATH_MAX];
    drv_policy_spec spec;
    memset(&spec, 0, sizeof spec);
    unsigned before = p->count;

    if (json_is_string(v)) {
        if (parse_kind(p, path, v, &spec.kind) != 0)
            return;
        if (spec.kind == DRV_POLICY_COMPOSITE) {
            drv_json_path_key(sub, path, "algorithms");
            problem(p, "%s: required for type composite", sub);
            return;
        }
        *out = spec;
        return;
    }
    if (!json_is_object(v)) {
        problem(p, "%s: must be a scheduler name or an object, got %s", path, drv_json_kind(v));
        return;
    }

    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        if (strcmp(key, "type") != 0 && strcmp(key, "algorithms") != 0) {
            drv_json_path_key(sub, path, key);
            problem(p, "%s: unknown key", sub);
        }
    }

    const json_t *type = json_object_get(v, "type");
    const json_t *algorithms = json_object_get(v, "algorithms");
    drv_json_path_key(sub, path, "type");
    if (!type) {
        problem(p, "%s: required", sub);
        return;
    }
    if (parse_kind(p, sub, type, &spec.kind) != 0)
        return;

    drv_json_path_key(sub, path, "algorithms");
    if (spec.kind != DRV_POLICY_COMPOSITE) {
        if (algorithms)
            problem(p, "%s: only allowed for type composite, not %s", sub,
                    drv_policy_kind_name(spec.kind));
    } else if (!algorithms) {
        problem(p, "%s: required for type composite", sub);
    } else if (!json_is_array(algorithms)) {
        problem(p, "%s: must be an array, got %s", sub, drv_json_kind(algorithms));
    } else if (json_array_size(algorithms) == 0) {
        problem(p, "%s: must list at least one algorithm", sub);
    } else {
        char item[DRV_JSON_PATH_MAX];
        for (size_t i = 0; i < json_array_size(algorithms); i++) {
            drv_json_path_index(item, sub, i);
            parse_algorithm(p, item, json_array_get(algorithms, i), &spec);
        }
    }
    if (p->count == before)
        *out = spec;
}

/* ---- per test type and per model family ------------------------------------------- */

/* Parses "test_type_schedulers": {name: scheduler, ...} into cfg->test_types. */
static void parse_test_types(problems *p, const char *path, const json_t *v,
                             drv_balancer_config *cfg)
{
    char sub[DRV_JSON_PATH_MAX];
    if (!json_is_object(v)) {
        problem(p, "%s: must be an object, got %s", path, drv_json_kind(v));
        return;
    }
    if (json_object_size(v) > DRV_CONFIG_TEST_TYPES_MAX) {
        problem(p, "%s: at most %d test types, got %zu", path, DRV_CONFIG_TEST_TYPES_MAX,
                json_object_size(v));
        return;
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        drv_json_path_key(sub, path, key);
        if (key[0] == '\0') {
            problem(p, "%s: test type name must not be empty", path);
            continue;
        }
        if (strlen(key) >= DRV_TEST_TYPE_NAME_MAX) {
            problem(p, "%s: test type name longer than %d characters", sub,
                    DRV_TEST_TYPE_NAME_MAX - 1);
            continue;
        }
        drv_test_type_policy *tt = &cfg->test_types[cfg->n_test_types];
        unsigned before = p->count;
        parse_scheduler(p, sub, val, &tt->spec);
        if (p->count == before) {
            memcpy(tt->name, key, strlen(key) + 1);
            cfg->n_test_types++;
        }
    }
}

/* The modality named by a group key of model_family_schedulers ("vision", "text",
 * "audio", "multimodal"), or DRV_MODALITY_UNKNOWN. */
static drv_modality modality_group(const char *key)
{
    for (int m = DRV_MODALITY_UNKNOWN + 1; m < DRV_MODALITY_COUNT; m++)
        if (strcmp(key, drv_modality_name((drv_modality)m)) == 0)
            return (drv_modality)m;
    return DRV_MODALITY_UNKNOWN;
}

/* Records that key at path names no family or group, listing the groups and the
 * families spelled like it (the same first two letters; docs/balancer.md lists them
 * all): short enough to leave room for the other problems in one message. */
static void unknown_family(problems *p, const char *path, const char *key)
{
    char near[192];
    size_t off = 0;
    unsigned shown = 0;
    for (int id = DRV_FAMILY_UNKNOWN + 1; id < drv_family_count() && shown < 6; id++) {
        const char *name = drv_family_get(id)->name;
        if (strncasecmp(name, key, 2) != 0)
            continue;
        off += (size_t)snprintf(near + off, sizeof near - off, "%s%s", shown ? ", " : "", name);
        shown++;
    }
    if (shown)
        problem(p,
                "%s: unknown model family (groups: vision, text, audio, multimodal; like it: %s)",
                path, near);
    else
        problem(p, "%s: unknown model family (groups: vision, text, audio, multimodal)", path);
}

/* Parses "model_family_schedulers": {family or group: scheduler, ...} into
 * cfg->family_*. A group ("vision", ...) sets every family of that modality that the
 * object does not name itself: a specific family wins over its group, in any order. */
static void parse_families(problems *p, const char *path, const json_t *v, drv_balancer_config *cfg)
{
    char sub[DRV_JSON_PATH_MAX];
    if (!json_is_object(v)) {
        problem(p, "%s: must be an object, got %s", path, drv_json_kind(v));
        return;
    }
    bool named[DRV_FAMILY_MAX] = {false};
    drv_policy_spec group_policy[DRV_MODALITY_COUNT];
    bool group_set[DRV_MODALITY_COUNT] = {false};
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        drv_json_path_key(sub, path, key);
        drv_modality group = modality_group(key);
        if (group != DRV_MODALITY_UNKNOWN) {
            unsigned before = p->count;
            parse_scheduler(p, sub, val, &group_policy[group]);
            group_set[group] = p->count == before;
            continue;
        }
        int family = drv_family_lookup(key);
        if (family <= DRV_FAMILY_UNKNOWN ||
            (size_t)family >= sizeof cfg->family_set / sizeof cfg->family_set[0]) {
            unknown_family(p, sub, key);
            continue;
        }
        unsigned before = p->count;
        parse_scheduler(p, sub, val, &cfg->family_policy[family]);
        named[family] = true;
        if (p->count == before)
            cfg->family_set[family] = true;
    }
    for (int id = DRV_FAMILY_UNKNOWN + 1; id < drv_family_count() && id < DRV_FAMILY_MAX; id++) {
        drv_modality m = drv_family_get(id)->modality;
        if (!named[id] && group_set[m]) {
            cfg->family_policy[id] = group_policy[m];
            cfg->family_set[id] = true;
        }
    }
}

/* ---- settings -------------------------------------------------------------------- */

typedef enum field_kind { FIELD_DOUBLE, FIELD_U32, FIELD_BOOL } field_kind;

/* One numeric setting: its key (the struct field's name), where it lives, and the
 * accepted range. min_open means "> min" rather than ">= min"; max < 0 means no upper
 * bound. */
typedef struct field_rule {
    const char *key;
    size_t offset;
    field_kind kind;
    double min;
    double max;
    int min_open;
} field_rule;

#define SETTING(field, kind, min, max, open)                                                       \
    {                                                                                              \
#field, offsetof(drv_balancer_settings, field), kind, min, max, open                       \
    }
#define THERMAL(field, kind, min, max, open)                                                       \
    {                                                                                              \
#field, offsetof(drv_thermal_config, field), kind, min, max, open                          \
    }

static const field_rule settings_rules[] = {
    SETTING(aging_interval_s, FIELD_DOUBLE, 0, -1, 1),
    SETTING(length_aging, FIELD_DOUBLE, 0, -1, 0),
    SETTING(prefetch_max, FIELD_U32, 0, 1024, 0),
    SETTING(batch_target_s, FIELD_DOUBLE, 0, -1, 1),
    SETTING(migration_cost_s, FIELD_DOUBLE, 0, -1, 0),
    SETTING(steal_holdoff_s, FIELD_DOUBLE, 0, -1, 0),
    SETTING(idle_move_cost_s, FIELD_DOUBLE, 0, -1, 0),
    SETTING(unschedulable_grace_s, FIELD_DOUBLE, 0, -1, 0),
    SETTING(quarantine_after, FIELD_U32, 1, 1000000, 0),
    SETTING(speculation, FIELD_BOOL, 0, 1, 0),
    SETTING(speculation_margin, FIELD_DOUBLE, 0, -1, 0),
    SETTING(speculation_min_s, FIELD_DOUBLE, 0, -1, 0),
    SETTING(backend_speed_prior, FIELD_BOOL, 0, 1, 0),
};

static const field_rule thermal_rules[] = {
    THERMAL(ramp_s, FIELD_DOUBLE, 0, -1, 0),
    THERMAL(initial_share, FIELD_DOUBLE, 0, 1, 1),
    THERMAL(cpu_pressure_limit, FIELD_DOUBLE, 0, -1, 1),
    THERMAL(memory_pressure_limit, FIELD_DOUBLE, 0, -1, 1),
    THERMAL(freq_ratio_limit, FIELD_DOUBLE, 0, 1, 0),
    THERMAL(overload_sustain_s, FIELD_DOUBLE, 0, -1, 0),
    THERMAL(error_threshold, FIELD_U32, 1, 1000000, 0),
    THERMAL(temperature_limit_c, FIELD_DOUBLE, 0, -1, 1),
    THERMAL(cooling_share, FIELD_DOUBLE, 0, 1, 1),
    THERMAL(cooldown_s, FIELD_DOUBLE, 0, -1, 0),
    THERMAL(idle_cold_s, FIELD_DOUBLE, 0, -1, 0),
};

/* Reads member key of obj (at path) by rule r into base + r->offset; records a problem
 * and stores nothing when it is not a value in range (null included; an integer field
 * also takes a whole real such as 4.0). */
static void parse_field(problems *p, const char *path, const field_rule *r, const json_t *obj,
                        const char *key, void *base)
{
    drv_error err = {{0}};
    unsigned flags = DRV_JSON_NULL_WRONG | (r->min_open ? DRV_JSON_ABOVE_MIN : 0);
    char *at = (char *)base + r->offset;
    int rc;
    if (r->kind == FIELD_BOOL) {
        bool on = false;
        if ((rc = drv_json_bool(obj, path, key, flags, &on, &err)) > 0)
            memcpy(at, &on, sizeof on);
    } else if (r->kind == FIELD_U32) {
        uint64_t u = 0;
        if ((rc = drv_json_uint(obj, path, key, flags | DRV_JSON_WHOLE_REAL, (uint64_t)r->min,
                                (uint64_t)r->max, &u, &err)) > 0) {
            uint32_t v = (uint32_t)u;
            memcpy(at, &v, sizeof v);
        }
    } else {
        double x = 0;
        if ((rc = drv_json_number(obj, path, key, flags, r->min, r->max < 0 ? INFINITY : r->max, &x,
                                  &err)) > 0)
            memcpy(at, &x, sizeof x);
    }
    if (rc < 0)
        problem(p, "%s", err.msg);
}

/* Parses an object of numeric fields described by rules[0..n) into base. "extra",
 * when not NULL, names one more key that the caller handles (returned in *extra_v). */
static void parse_fields(problems *p, const char *path, const json_t *v, const field_rule *rules,
                         size_t n, void *base, const char *extra, const json_t **extra_v)
{
    char sub[DRV_JSON_PATH_MAX];
    if (!json_is_object(v)) {
        problem(p, "%s: must be an object, got %s", path, drv_json_kind(v));
        return;
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val)
    {
        drv_json_path_key(sub, path, key);
        if (extra && strcmp(key, extra) == 0) {
            *extra_v = val;
            continue;
        }
        size_t i = 0;
        while (i < n && strcmp(rules[i].key, key) != 0)
            i++;
        if (i == n)
            problem(p, "%s: unknown key", sub);
        else
            parse_field(p, path, &rules[i], v, key, base);
    }
}

/* Parses "settings": {field: value, ..., "thermal": {field: value, ...}}. */
static void parse_settings(problems *p, const char *path, const json_t *v, drv_balancer_settings *s)
{
    const json_t *thermal = NULL;
    parse_fields(p, path, v, settings_rules, sizeof settings_rules / sizeof settings_rules[0], s,
                 "thermal", &thermal);
    if (thermal) {
        char sub[DRV_JSON_PATH_MAX];
        drv_json_path_key(sub, path, "thermal");
        parse_fields(p, sub, thermal, thermal_rules, sizeof thermal_rules / sizeof thermal_rules[0],
                     &s->thermal, NULL, NULL);
    }
}

/* ---- public ---------------------------------------------------------------------- */

void drv_balancer_config_default(drv_balancer_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->default_policy.kind = DRV_POLICY_COMPOSITE;
    cfg->default_policy.weights[DRV_POLICY_PERFORMANCE] = 0.6;
    cfg->default_policy.weights[DRV_POLICY_RESOURCE_AWARE] = 0.1;
    cfg->default_policy.weights[DRV_POLICY_AFFINITY] = 0.1;
    cfg->default_policy.weights[DRV_POLICY_PRIORITY] = 0.1;
    cfg->default_policy.weights[DRV_POLICY_ROUND_ROBIN] = 0.1;

    drv_balancer_settings *s = &cfg->settings;
    s->aging_interval_s = 6;
    s->length_aging = 4;
    /* A worker holds about batch_target_s of predicted work beyond its free slots, at
     * most this many: more is hoarding (tests a faster worker could have run). A
     * benchmark of millisecond tests sets more (bench/e2e-balancer.json: 1024). */
    s->prefetch_max = 4;
    s->batch_target_s = 2;
    s->migration_cost_s = 1;
    s->steal_holdoff_s = 30;
    /* With the queue empty a free slot is idle until the run ends: an unstarted test's
     * move costs a release/released round trip and an assign, measured at 0.6-16 ms from
     * decision to start on the thief (bench/ctest.sh on loopback); 50 ms leaves room for
     * a LAN's round trips. */
    s->idle_move_cost_s = 0.05;
    /* Workers join over time: a test nobody can run yet waits a little before it is
     * called unschedulable. */
    s->unschedulable_grace_s = 5;
    s->quarantine_after = 3;
    s->speculation = true;
    s->speculation_margin = 0.5;
    s->speculation_min_s = 2;
    s->backend_speed_prior = false; /* speed_prior.c: it costs second_run seed 6 its bar */
    drv_thermal_config_default(&s->thermal);
}

/* Whether the len bytes at text are all JSON whitespace (true for len 0). */
static int only_whitespace(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\n' && text[i] != '\r')
            return 0;
    return 1;
}

int drv_balancer_config_parse(const char *json, size_t len, drv_balancer_config *cfg,
                              drv_error *err)
{
    if (!cfg)
        return drv_error_set(err, "config: no output structure given");
    drv_balancer_config_default(cfg);
    if (!json || only_whitespace(json, len))
        return drv_error_set(err, "config: empty input (expected a JSON object)");

    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root)
        return drv_error_set(err, "config: invalid JSON at line %d, column %d: %s", jerr.line,
                             jerr.column, jerr.text);
    if (!json_is_object(root)) {
        int rc = drv_error_set(err, "config: must be an object, got %s", drv_json_kind(root));
        json_decref(root);
        return rc;
    }

    /* The parse goes into a copy so that cfg stays at the defaults on any problem. */
    drv_balancer_config next;
    drv_balancer_config_default(&next);
    problems p;
    memset(&p, 0, sizeof p);

    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "default_scheduler") == 0) {
            parse_scheduler(&p, key, val, &next.default_policy);
        } else if (strcmp(key, "test_type_schedulers") == 0) {
            parse_test_types(&p, key, val, &next);
        } else if (strcmp(key, "model_family_schedulers") == 0) {
            parse_families(&p, key, val, &next);
        } else if (strcmp(key, "settings") == 0) {
            parse_settings(&p, key, val, &next.settings);
        } else {
            char sub[DRV_JSON_PATH_MAX];
            drv_json_path_key(sub, "", key);
            problem(&p, "%s: unknown key", sub);
        }
    }
    json_decref(root);

    if (p.count > 0)
        return drv_error_set(err, "%s", p.msg);
    *cfg = next;
    return 0;
}

int drv_policy_kind_parse(const char *name)
{
    if (!name)
        return -1;
    /* Other names of the same policies, as the seeds' configs spell them. */
    static const struct {
        const char *name;
        drv_policy_kind kind;
    } aliases[] = {
        {"performance", DRV_POLICY_PERFORMANCE},
        {"priority_based", DRV_POLICY_PRIORITY},
        {"affinity_based", DRV_POLICY_AFFINITY},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(name, aliases[i].name) == 0)
            return aliases[i].kind;
    for (int k = 0; k < DRV_POLICY_KIND_COUNT; k++)
        if (strcmp(name, policy_names[k]) == 0)
            return k;
    return -1;
}

const char *drv_policy_kind_name(drv_policy_kind k)
{
    if ((unsigned)k >= DRV_POLICY_KIND_COUNT)
        return "unknown";
    return policy_names[k];
}

const drv_policy_spec *drv_balancer_config_policy_for(const drv_balancer_config *cfg, int family,
                                                      const char *test_type)
{
    if (!cfg)
        return NULL;
    if (family > DRV_FAMILY_UNKNOWN &&
        (size_t)family < sizeof cfg->family_set / sizeof cfg->family_set[0] &&
        cfg->family_set[family])
        return &cfg->family_policy[family];
    if (test_type) {
        for (uint32_t i = 0; i < cfg->n_test_types && i < DRV_CONFIG_TEST_TYPES_MAX; i++)
            if (strcmp(cfg->test_types[i].name, test_type) == 0)
                return &cfg->test_types[i].spec;
    }
    return &cfg->default_policy;
}
