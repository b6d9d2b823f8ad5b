/* balancer_fixture.h - small helpers for the balancer's unit tests: a tag table, a
 * configuration without thermal ramp or prefetch, and workers, requirements and tests
 * in one line each.
 *
 * Header-only: each test file includes it after <cmocka.h>; everything here is static
 * inline, so a file that does not use a helper does not warn. Ownership: fx_open()
 * creates the tag table (and fx_open_pred() a predictor); fx_start() creates the
 * balancer from f->cfg; fx_close() frees all three. Tests are submitted from a drv_task
 * on the stack whose strings are borrowed (the balancer copies what it needs and keeps
 * no pointer), so nothing is cleared after submission. */
#ifndef DRV_TESTS_UNIT_BALANCER_FIXTURE_H
#define DRV_TESTS_UNIT_BALANCER_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "balancer/balancer.h"
#include "balancer/config.h"
#include "core/analyzer.h"
#include "core/predictor.h"
#include "core/requirements.h"
#include "core/tags.h"
#include "core/task.h"

#define FX_GIB           1024ULL /* MiB per GiB */
#define FX_MAX_DECISIONS 256

typedef struct fx {
    drv_tag_table *tags;
    drv_predictor *pred; /* NULL unless fx_open_pred() */
    drv_balancer_config cfg;
    drv_balancer *b;
} fx;

/* The defaults, minus what gets in the way of counting: every worker admits all its
 * slots at once (no thermal ramp) and holds nothing beyond them (no prefetch). */
static inline void fx_config(drv_balancer_config *cfg)
{
    drv_balancer_config_default(cfg);
    cfg->settings.thermal.initial_share = 1.0;
    cfg->settings.prefetch_max = 0;
    cfg->settings.unschedulable_grace_s = 0; /* decided in the round it is seen */
}

/* A tag table and the counting-friendly config; the balancer is made by fx_start(). */
static inline void fx_open(fx *f)
{
    memset(f, 0, sizeof *f);
    f->tags = drv_tag_table_new();
    assert_non_null(f->tags);
    fx_config(&f->cfg);
}

/* As fx_open(), with a predictor (alpha 0.3) the balancer learns into. */
static inline void fx_open_pred(fx *f)
{
    fx_open(f);
    f->pred = drv_predictor_new(0.3);
    assert_non_null(f->pred);
}

/* Creates the balancer from f->cfg (fails the test on a config error). */
static inline void fx_start(fx *f)
{
    drv_error err = {{0}};
    f->b = drv_balancer_new(&f->cfg, f->tags, f->pred, &err);
    if (!f->b)
        fail_msg("drv_balancer_new: %s", err.msg);
}

/* fx_start() with a single (non-composite) policy as the default. */
static inline void fx_start_policy(fx *f, drv_policy_kind k)
{
    memset(&f->cfg.default_policy, 0, sizeof f->cfg.default_policy);
    f->cfg.default_policy.kind = k;
    fx_start(f);
}

static inline void fx_close(fx *f)
{
    drv_balancer_free(f->b);
    drv_predictor_free(f->pred);
    drv_tag_table_free(f->tags);
    memset(f, 0, sizeof *f);
}

/* A tag set from "a,b,c" (NULL or "" = empty), interning new names. */
static inline drv_tagset fx_tags(fx *f, const char *csv)
{
    drv_tagset s;
    drv_tagset_clear(&s);
    if (csv && csv[0]) {
        drv_error err = {{0}};
        if (drv_tagset_parse(f->tags, csv, &s, &err) != 0)
            fail_msg("tags \"%s\": %s", csv, err.msg);
    }
    return s;
}

/* A CPU machine: cores, memory in GiB, the tag cpu plus `labels` (may be NULL). */
static inline drv_capabilities fx_cpu_caps(fx *f, uint32_t cores, uint64_t mem_gib,
                                           const char *labels)
{
    drv_capabilities c;
    drv_capabilities_init(&c);
    c.cpu_cores = cores;
    c.memory_mb = mem_gib * FX_GIB;
    c.tags = fx_tags(f, labels);
    drv_tagset_add(&c.tags, DRV_TAG_CPU);
    return c;
}

/* A CUDA machine: fx_cpu_caps() plus gpus GPUs of gpu_mem_gib each, compute capability
 * 8.6 and the tag cuda. */
static inline drv_capabilities fx_gpu_caps(fx *f, uint32_t cores, uint32_t gpus,
                                           uint64_t gpu_mem_gib, const char *labels)
{
    drv_capabilities c = fx_cpu_caps(f, cores, 64, labels);
    c.gpu_count = gpus;
    c.gpu_memory_mb = gpu_mem_gib * FX_GIB;
    c.cuda_cc = 86;
    drv_tagset_add(&c.tags, DRV_TAG_CUDA);
    return c;
}

/* Adds a worker (slots 0 = its cores; speed 0 = 1) and returns its index. */
static inline drv_wref fx_worker(fx *f, const char *name, drv_capabilities caps, uint32_t slots,
                                 float speed, double now)
{
    drv_error err = {{0}};
    drv_worker_spec spec = {.name = name, .caps = caps, .slots = slots, .speed = speed};
    int64_t w = drv_balancer_worker_add(f->b, &spec, now, &err);
    if (w < 0)
        fail_msg("worker_add %s: %s", name, err.msg);
    return (drv_wref)w;
}

/* A plain 8-core, 32 GiB CPU worker with `slots` slots, speed 1. */
static inline drv_wref fx_cpu_worker(fx *f, const char *name, uint32_t slots, double now)
{
    return fx_worker(f, name, fx_cpu_caps(f, 8, 32, NULL), slots, 1.0f, now);
}

/* Requirements: tags every worker must have, one of which it must have, none of which
 * it may have (each "a,b" or NULL). */
static inline drv_requirements fx_req(fx *f, const char *all_of, const char *any_of,
                                      const char *none_of)
{
    drv_requirements r;
    drv_requirements_init(&r);
    r.all_of = fx_tags(f, all_of);
    r.any_of = fx_tags(f, any_of);
    r.none_of = fx_tags(f, none_of);
    return r;
}

/* What a test is, for fx_submit_spec(); zero fields mean "default". */
typedef struct fx_test {
    uint64_t id;
    int32_t priority;            /* 0 means DRV_PRIORITY_DEFAULT unless prio_set */
    bool prio_set;               /* priority 0 is meant literally */
    const char *test_type;       /* may be NULL */
    const char *model_id;        /* may be NULL */
    const drv_requirements *req; /* may be NULL: none */
    uint32_t max_retries;
    bool retry_on_failure;
    const char *name; /* NULL: "test-<id>" */
} fx_test;

/* Submits a test and returns its reference (fails the test on an error). */
static inline drv_tref fx_submit_spec(fx *f, const fx_test *s, double now)
{
    char name[64];
    if (s->name)
        snprintf(name, sizeof name, "%s", s->name);
    else
        snprintf(name, sizeof name, "test-%llu", (unsigned long long)s->id);
    drv_task t;
    drv_task_init(&t);
    t.id = s->id;
    t.name = name;
    t.priority = s->prio_set || s->priority ? s->priority : DRV_PRIORITY_DEFAULT;
    t.test_type = (char *)s->test_type;
    t.model_id = (char *)s->model_id;
    if (s->req)
        t.req = *s->req;
    t.max_retries = s->max_retries;
    t.retry_on_failure = s->retry_on_failure;
    drv_error err = {{0}};
    int64_t r = drv_balancer_submit(f->b, &t, now, &err);
    if (r < 0)
        fail_msg("submit %s: %s", name, err.msg);
    return (drv_tref)r;
}

/* Submits a plain test (default priority, no requirements, estimate 10 s). */
static inline drv_tref fx_submit(fx *f, uint64_t id, double now)
{
    fx_test s = {.id = id};
    return fx_submit_spec(f, &s, now);
}

/* Submits a test with this priority and requirements (req may be NULL). */
static inline drv_tref fx_submit_prio(fx *f, uint64_t id, int32_t priority,
                                      const drv_requirements *req, double now)
{
    fx_test s = {.id = id, .priority = priority, .prio_set = true, .req = req};
    return fx_submit_spec(f, &s, now);
}

/* Runs a placement round into out (at most FX_MAX_DECISIONS) and returns the count. */
static inline size_t fx_place(fx *f, double now, drv_decision *out)
{
    return drv_balancer_place(f->b, now, out, FX_MAX_DECISIONS);
}

/* Places exactly one test and returns the worker it went to (fails the test if the
 * round placed anything other than one test). */
static inline drv_wref fx_place_one(fx *f, double now)
{
    drv_decision d[FX_MAX_DECISIONS];
    size_t n = fx_place(f, now, d);
    assert_int_equal(n, 1);
    assert_int_equal(d[0].kind, DRV_D_PLACED);
    assert_int_equal(d[0].reason, DRV_R_POLICY);
    assert_int_equal(d[0].state, DRV_TASK_ASSIGNED);
    return d[0].worker;
}

/* Submits s, places it alone (on worker expect, or the test fails) and starts it there;
 * returns its reference. */
static inline drv_tref fx_start_on(fx *f, const fx_test *s, double now, drv_wref expect)
{
    drv_tref t = fx_submit_spec(f, s, now);
    assert_int_equal(fx_place_one(f, now), expect);
    assert_int_equal(drv_balancer_started(f->b, t, now), 0);
    return t;
}

/* The worker's name, for readable failures. */
static inline const char *fx_wname(const fx *f, drv_wref w)
{
    const drv_worker *x = drv_balancer_worker(f->b, w);
    return x ? x->name : "(none)";
}

/* A result that exited with this code after duration_s. */
static inline drv_result fx_exit(int code, double duration_s)
{
    drv_result r = {.exit_code = code, .duration_s = duration_s};
    return r;
}

/* Starts t (must be assigned) and finishes it with result r; returns the decision. */
static inline drv_decision fx_run(fx *f, drv_tref t, double now, drv_result r)
{
    drv_decision d;
    memset(&d, 0, sizeof d);
    assert_int_equal(drv_balancer_started(f->b, t, now), 0);
    assert_int_equal(
        drv_balancer_finished(f->b, t, now + (r.duration_s > 0 ? r.duration_s : 0), &r, &d), 0);
    return d;
}

/* Tests held (assigned + running) by w. */
static inline uint32_t fx_held(const fx *f, drv_wref w)
{
    const drv_worker *x = drv_balancer_worker(f->b, w);
    return x->running + x->assigned;
}

/* True when needle occurs in hay; prints both on failure through the caller. */
static inline void fx_assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, hay);
}

static inline void fx_assert_lacks(const char *hay, const char *needle)
{
    if (strstr(hay, needle))
        fail_msg("did not expect \"%s\" in \"%s\"", needle, hay);
}

#endif
