/* generate.c - seeded fleets, suites and arrival patterns, and the named scenarios.
 *
 * Everything here is a pure function of its seed: splitmix64 streams for sequences
 * (which kind the next worker is, the next test's duration), a stateless hash for draws
 * that must not depend on order. The tables below are data: a new worker kind or a new
 * model is a new row. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/analyzer.h"
#include "core/tags.h"
#include "core/task.h"
#include "sim/sim.h"

#define TWO_PI 6.283185307179586

/* ---- randomness --------------------------------------------------------------------- */

uint64_t drv_sim_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

double drv_sim_uniform(uint64_t *state)
{
    return (double)(drv_sim_rand(state) >> 11) / 9007199254740992.0;
}

double drv_sim_hash01(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    uint64_t s = a;
    s = drv_sim_rand(&s) ^ b;
    s = drv_sim_rand(&s) ^ c;
    s = drv_sim_rand(&s) ^ d;
    return drv_sim_uniform(&s);
}

/* A standard normal draw (Box-Muller; one of the pair is dropped for simplicity). */
static double normal(uint64_t *state)
{
    double u1 = drv_sim_uniform(state), u2 = drv_sim_uniform(state);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

/* An exponential draw of the given mean. */
static double exponential(uint64_t *state, double mean)
{
    return -mean * log(1.0 - drv_sim_uniform(state));
}

/* ---- the fleet ---------------------------------------------------------------------- */

typedef struct worker_kind {
    const char *name;
    double share; /* of a large fleet */
    uint32_t cores, gpus, slots;
    uint64_t mem_gb, gpu_mem_gb;
    uint32_t cuda_cc; /* x10 */
    const char *tags;
    float speed;
    int accel; /* back-end tag that speeds up the families that prefer it, or -1 */
} worker_kind;

static const worker_kind kinds[] = {
    {"cpu-small", 0.30, 8, 0, 4, 32, 0, 0, "cpu", 1.0f, -1},
    {"cpu-large", 0.15, 32, 0, 8, 128, 0, 0, "cpu,openvino", 1.5f, DRV_TAG_OPENVINO},
    {"cuda-t4", 0.15, 16, 1, 4, 64, 16, 75, "cpu,cuda", 1.2f, DRV_TAG_CUDA},
    {"cuda-a100", 0.06, 32, 4, 8, 256, 80, 80, "cpu,cuda", 2.0f, DRV_TAG_CUDA},
    {"rocm-mi210", 0.06, 32, 2, 4, 256, 64, 0, "cpu,rocm", 1.6f, DRV_TAG_ROCM},
    {"browser-chromium", 0.12, 8, 1, 2, 32, 8, 0, "cpu,webgpu,webnn,chromium", 0.9f,
     DRV_TAG_WEBGPU},
    {"browser-firefox", 0.09, 8, 1, 2, 32, 8, 0, "cpu,webgpu,firefox", 0.9f, DRV_TAG_WEBGPU},
    {"browser-edge", 0.07, 8, 1, 2, 32, 8, 0, "cpu,webnn,edge", 0.9f, DRV_TAG_WEBNN},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

/* The hidden speed of kind k for family f: families that list the kind's accelerating
 * back-end run faster the higher it is in their list; a jitter of +-15% per (kind,
 * family) makes it something the predictor has to learn. */
static float family_speed(size_t k, int f, uint64_t seed)
{
    double s = 1.0;
    if (kinds[k].accel >= 0 && f > 0) {
        static const double by_rank[DRV_FAMILY_BACKENDS_MAX] = {2.5, 1.8, 1.3, 1.1};
        int rank = drv_analyzer_backend_rank(f, kinds[k].accel);
        if (rank < DRV_FAMILY_BACKENDS_MAX)
            s = by_rank[rank];
    }
    s *= 0.85 + 0.3 * drv_sim_hash01(seed, 0xFA51, k, (uint64_t)f);
    return (float)s;
}

void drv_sim_generate_fleet(drv_workload *w, size_t n, uint64_t seed)
{
    uint64_t rng = seed ^ 0xF1EE7ULL;
    for (size_t i = 0; i < n; i++) {
        size_t k = i;
        if (i >= N_KINDS) {
            double x = drv_sim_uniform(&rng), acc = 0;
            for (k = 0; k + 1 < N_KINDS; k++) {
                acc += kinds[k].share;
                if (x < acc)
                    break;
            }
        }
        const worker_kind *wk = &kinds[k];
        drv_sim_worker sw;
        memset(&sw, 0, sizeof sw);
        snprintf(sw.name, sizeof sw.name, "%s-%zu", wk->name, i);
        snprintf(sw.kind, sizeof sw.kind, "%s", wk->name);
        drv_capabilities_init(&sw.caps);
        sw.caps.cpu_cores = wk->cores;
        sw.caps.gpu_count = wk->gpus;
        sw.caps.memory_mb = wk->mem_gb * 1024;
        sw.caps.gpu_memory_mb = wk->gpu_mem_gb * 1024;
        sw.caps.cuda_cc = wk->cuda_cc;
        drv_tagset_parse(w->tags, wk->tags, &sw.caps.tags, NULL);
        sw.slots = wk->slots;
        sw.speed = wk->speed;
        for (int f = 0; f < DRV_FAMILY_MAX; f++)
            sw.family_speed[f] = family_speed(k, f, seed);
        sw.join_at = 0;
        sw.leave_at = -1;
        drv_workload_add_worker(w, &sw);
    }
}

/* ---- the suite ---------------------------------------------------------------------- */

typedef struct model_row {
    const char *model_id; /* NULL: a test without a model (family unknown) */
    double weight;
    bool large; /* needs a large-memory GPU */
} model_row;

static const model_row models[] = {
    {NULL, 0.20, false},
    {"bert-base-uncased", 0.10, false},
    {"distilbert-base-uncased", 0.05, false},
    {"roberta-base", 0.05, false},
    {"t5-small", 0.05, false},
    {"gpt2", 0.05, false},
    {"meta-llama/Llama-2-7b-hf", 0.008, true},
    {"mistralai/Mistral-7B-v0.1", 0.006, true},
    {"google/vit-base-patch16-224", 0.08, false},
    {"microsoft/resnet-50", 0.07, false},
    {"facebook/detr-resnet-50", 0.04, false},
    {"facebook/sam-vit-base", 0.03, false},
    {"openai/whisper-tiny", 0.06, false},
    {"facebook/wav2vec2-base", 0.04, false},
    {"openai/clip-vit-base-patch32", 0.08, false},
    {"llava-hf/llava-1.5-7b-hf", 0.006, true},
};
#define N_MODELS (sizeof models / sizeof models[0])

typedef struct type_row {
    const char *name;
    double weight, scale; /* share of tests; duration multiplier */
} type_row;

static const type_row types[] = {
    {"unit", 0.6, 0.5},
    {"integration", 0.3, 1.5},
    {"performance", 0.1, 3.0},
};
#define N_TYPES (sizeof types / sizeof types[0])

#define DURATION_MAX_S 600.0 /* CI tests longer than 10 minutes are rare (and usually split) */

void drv_sim_suite_spec_default(drv_sim_suite_spec *s)
{
    memset(s, 0, sizeof *s);
    s->tests = 1000;
    s->seed = 1;
    s->sigma = 1.0;
    s->flaky_share = 0;
    s->flaky_p = 0.2;
    s->unschedulable_share = 0.001;
    s->max_retries = 2;
}

/* Draws an index in [0, n) with probability proportional to weights[i]. */
static size_t pick(uint64_t *rng, const double *weights, size_t n)
{
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += weights[i];
    double x = drv_sim_uniform(rng) * total, acc = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        acc += weights[i];
        if (x < acc)
            return i;
    }
    return n - 1;
}

/* The requirements of a test of model row m, drawn. */
static void draw_requirements(uint64_t *rng, const model_row *m, const drv_sim_suite_spec *s,
                              drv_requirements *req)
{
    drv_requirements_init(req);
    if (drv_sim_uniform(rng) < s->unschedulable_share) {
        drv_tagset_add(&req->all_of, DRV_TAG_QNN); /* no generated kind has it */
        return;
    }
    if (m->large) {
        req->gpu_count = 1;
        req->gpu_memory_mb = 40 * 1024;
        if (drv_sim_uniform(rng) < 0.5) {
            drv_tagset_add(&req->all_of, DRV_TAG_CUDA);
            req->cuda_cc = 80;
        } else {
            drv_tagset_add(&req->any_of, DRV_TAG_CUDA);
            drv_tagset_add(&req->any_of, DRV_TAG_ROCM);
        }
        return;
    }
    double x = drv_sim_uniform(rng);
    if (x < 0.62) {
        /* any worker */
    } else if (x < 0.74) {
        req->cpu_cores = 4;
        req->memory_mb = 8 * 1024;
    } else if (x < 0.83) {
        req->gpu_count = 1;
        drv_tagset_add(&req->any_of, DRV_TAG_CUDA);
        drv_tagset_add(&req->any_of, DRV_TAG_ROCM);
    } else if (x < 0.88) {
        req->gpu_count = 1;
        drv_tagset_add(&req->all_of, DRV_TAG_CUDA);
    } else if (x < 0.95) {
        drv_tagset_add(&req->all_of, DRV_TAG_WEBGPU);
        drv_tagset_add(&req->none_of, DRV_TAG_EDGE);
    } else {
        drv_tagset_add(&req->all_of, DRV_TAG_WEBNN);
        drv_tagset_add(&req->none_of, DRV_TAG_FIREFOX);
    }
}

void drv_sim_generate_suite(drv_workload *w, const drv_sim_suite_spec *s)
{
    double mw[N_MODELS], tw[N_TYPES];
    int fam[N_MODELS];
    for (size_t i = 0; i < N_MODELS; i++) {
        mw[i] = models[i].weight;
        fam[i] = drv_analyzer_family(models[i].model_id);
    }
    for (size_t i = 0; i < N_TYPES; i++)
        tw[i] = types[i].weight;
    uint64_t rng = s->seed ^ 0x5017EULL;
    size_t first = w->n_tests;
    for (size_t i = 0; i < s->tests; i++) {
        size_t m = pick(&rng, mw, N_MODELS);
        size_t ty = pick(&rng, tw, N_TYPES);
        int f = fam[m];
        char name[96];
        snprintf(name, sizeof name, "suite/%s/test_%07zu", drv_family_get(f)->name, first + i);
        drv_sim_test t;
        memset(&t, 0, sizeof t);
        t.id = (uint64_t)(first + i + 1);
        t.name = name;
        t.model_id = (char *)models[m].model_id; /* copied by drv_workload_add_test */
        t.test_type = (char *)types[ty].name;
        t.family = f;
        double r = drv_sim_uniform(&rng);
        t.priority = r < 0.9 ? DRV_PRIORITY_DEFAULT : 200;
        t.max_retries = s->max_retries;
        draw_requirements(&rng, &models[m], s, &t.req);
        double median = drv_family_get(f)->estimate_s * types[ty].scale;
        double d = median * exp(s->sigma * normal(&rng));
        t.duration_s = d < 0.05 ? 0.05 : d > DURATION_MAX_S ? DURATION_MAX_S : d;
        t.flaky_p = drv_sim_uniform(&rng) < s->flaky_share ? s->flaky_p : 0;
        t.arrival_s = 0;
        drv_workload_add_test(w, &t);
    }
}

double drv_sim_capacity(const drv_workload *w)
{
    double c = 0;
    for (size_t i = 0; i < w->n_workers; i++)
        c += (double)w->workers[i].slots * w->workers[i].speed;
    return c;
}

double drv_sim_mean_duration(const drv_workload *w)
{
    if (w->n_tests == 0)
        return 0;
    double sum = 0;
    for (size_t i = 0; i < w->n_tests; i++)
        sum += w->tests[i].duration_s;
    return sum / (double)w->n_tests;
}

void drv_sim_arrivals_poisson(drv_workload *w, double rate_per_s, double spike_factor,
                              double spike_at_s, double spike_len_s, uint64_t seed)
{
    uint64_t rng = seed ^ 0xA441ULL;
    double t = 0;
    for (size_t i = 0; i < w->n_tests; i++) {
        if (!(rate_per_s > 0)) {
            w->tests[i].arrival_s = 0;
            continue;
        }
        double rate = rate_per_s;
        if (spike_factor > 0 && spike_len_s > 0 && t >= spike_at_s && t < spike_at_s + spike_len_s)
            rate *= spike_factor;
        t += exponential(&rng, 1.0 / rate);
        w->tests[i].arrival_s = t;
    }
}

void drv_sim_churn(drv_workload *w, double late_share, double join_rate_per_h,
                   double leave_rate_per_h, double horizon_s, uint64_t seed)
{
    bool seen[N_KINDS + 1];
    memset(seen, 0, sizeof seen);
    uint64_t rng = seed ^ 0xC4124ULL;
    for (size_t i = 0; i < w->n_workers; i++) {
        drv_sim_worker *sw = &w->workers[i];
        /* The first worker of each kind stays from start to end. */
        size_t k = 0;
        while (k < N_KINDS && strcmp(kinds[k].name, sw->kind) != 0)
            k++;
        bool first = !seen[k];
        seen[k] = true;
        double u1 = drv_sim_uniform(&rng), u2 = drv_sim_uniform(&rng), u3 = drv_sim_uniform(&rng);
        if (first)
            continue;
        if (join_rate_per_h > 0 && u1 < late_share)
            sw->join_at = -3600.0 / join_rate_per_h * log(1.0 - u2);
        if (leave_rate_per_h > 0) {
            double at = sw->join_at - 3600.0 / leave_rate_per_h * log(1.0 - u3);
            sw->leave_at = at < horizon_s ? at : -1;
        }
    }
}

/* ---- scenarios ---------------------------------------------------------------------- */

void drv_sim_params_default(drv_sim_params *p)
{
    memset(p, 0, sizeof *p);
    p->workers = 100;
    p->tests = 10000;
    p->seed = 1;
    p->load = 0.8;
    p->spike_factor = 5;
    p->spike_at_s = -1;
    p->spike_len_s = -1;
    p->late_share = 0.2;
    p->join_rate_per_h = 6;
    p->leave_rate_per_h = 0;
    p->crash_rate_per_h = 0;
    p->crash_down_s = 60;
    p->flaky_share = 0;
    p->flaky_p = 0.2;
    p->spread = 0;
    p->sigma = 1.0;
}

/* The fleet and suite every scenario starts from, and the options from p. */
static void build_base(const drv_sim_params *p, drv_workload *w, drv_sim_options *o)
{
    drv_sim_generate_fleet(w, p->workers, p->seed);
    drv_sim_suite_spec s;
    drv_sim_suite_spec_default(&s);
    s.tests = p->tests;
    s.seed = p->seed;
    s.sigma = p->sigma;
    s.flaky_share = p->flaky_share;
    s.flaky_p = p->flaky_p;
    drv_sim_generate_suite(w, &s);
    drv_sim_options_default(o);
    o->seed = p->seed;
    o->spread = p->spread;
    o->crash_rate_per_h = p->crash_rate_per_h;
    o->crash_down_s = p->crash_down_s;
}

/* The arrival rate for a load factor: load x capacity / mean work per test. */
static double rate_for(const drv_workload *w, double load)
{
    double mean = drv_sim_mean_duration(w);
    return mean > 0 ? load * drv_sim_capacity(w) / mean : 0;
}

static void steady_defaults(drv_sim_params *p)
{
    (void)p;
}

static void steady_build(const drv_sim_params *p, drv_workload *w, drv_sim_options *o)
{
    build_base(p, w, o);
    drv_sim_arrivals_poisson(w, rate_for(w, p->load), 1, 0, 0, p->seed);
    snprintf(w->source, sizeof w->source, "generated: steady, load %g, seed %llu", p->load,
             (unsigned long long)p->seed);
}

static void burst_defaults(drv_sim_params *p)
{
    (void)p;
}

static void burst_build(const drv_sim_params *p, drv_workload *w, drv_sim_options *o)
{
    build_base(p, w, o);
    snprintf(w->source, sizeof w->source, "generated: burst, seed %llu",
             (unsigned long long)p->seed);
}

static void spike_defaults(drv_sim_params *p)
{
    p->load = 0.5;
}

static void spike_build(const drv_sim_params *p, drv_workload *w, drv_sim_options *o)
{
    build_base(p, w, o);
    double rate = rate_for(w, p->load);
    double span = rate > 0 ? (double)w->n_tests / rate : 0;
    double at = p->spike_at_s >= 0 ? p->spike_at_s : 0.3 * span;
    double len = p->spike_len_s >= 0 ? p->spike_len_s : 0.1 * span;
    drv_sim_arrivals_poisson(w, rate, p->spike_factor, at, len, p->seed);
    snprintf(w->source, sizeof w->source,
             "generated: spike x%g from %.0f s for %.0f s, load %g, seed %llu", p->spike_factor, at,
             len, p->load, (unsigned long long)p->seed);
}

static void churn_defaults(drv_sim_params *p)
{
    p->join_rate_per_h = 6;
    p->leave_rate_per_h = 2;
    p->crash_rate_per_h = 2;
}

static void churn_build(const drv_sim_params *p, drv_workload *w, drv_sim_options *o)
{
    build_base(p, w, o);
    /* Horizon: about how long the suite takes on the whole fleet. */
    double cap = drv_sim_capacity(w);
    double horizon = cap > 0 ? 2.0 * drv_sim_mean_duration(w) * (double)w->n_tests / cap : 0;
    drv_sim_churn(w, p->late_share, p->join_rate_per_h, p->leave_rate_per_h, horizon, p->seed);
    snprintf(w->source, sizeof w->source,
             "generated: burst with churn (join %g/h, leave %g/h, crash %g/h), seed %llu",
             p->join_rate_per_h, p->leave_rate_per_h, p->crash_rate_per_h,
             (unsigned long long)p->seed);
}

static void failures_defaults(drv_sim_params *p)
{
    p->crash_rate_per_h = 3;
    p->flaky_share = 0.05;
}

static void failures_build(const drv_sim_params *p, drv_workload *w, drv_sim_options *o)
{
    build_base(p, w, o);
    snprintf(w->source, sizeof w->source,
             "generated: burst with crashes (%g/h per worker) and %g%% flaky tests, seed %llu",
             p->crash_rate_per_h, 100 * p->flaky_share, (unsigned long long)p->seed);
}

static void second_run_defaults(drv_sim_params *p)
{
    p->spread = 0.15;
}

static void second_run_build(const drv_sim_params *p, drv_workload *w, drv_sim_options *o)
{
    build_base(p, w, o);
    o->runs = 2;
    snprintf(w->source, sizeof w->source,
             "generated: burst run twice (durations vary +-%g%% between runs), seed %llu",
             100 * p->spread, (unsigned long long)p->seed);
}

/* Stragglers (spec3): the suite twice, and in run 2 the first tests one worker starts
 * hang (bench/live.sh's stragglers scenario): what speculative copies recover. */
static void stragglers_defaults(drv_sim_params *p)
{
    p->hangs = 3;
    p->hang_s = 10;
}

static void stragglers_build(const drv_sim_params *p, drv_workload *w, drv_sim_options *o)
{
    build_base(p, w, o);
    o->runs = 2;
    o->hang_count = (uint32_t)p->hangs;
    o->hang_s = p->hang_s;
    snprintf(w->source, sizeof w->source,
             "generated: burst run twice, in run 2 the first %zu tests %s starts take %g s more, "
             "seed %llu",
             p->hangs, w->n_workers ? w->workers[0].name : "the first worker", p->hang_s,
             (unsigned long long)p->seed);
}

static const drv_sim_scenario scenarios[] = {
    {"steady", "Poisson arrivals at --load x the fleet's capacity", steady_defaults, steady_build},
    {"burst", "the whole suite submitted at t=0", burst_defaults, burst_build},
    {"spike", "Poisson arrivals, --spike-factor times faster for a window", spike_defaults,
     spike_build},
    {"worker_churn", "burst while workers join, leave and crash (--join/--leave/--crash-rate)",
     churn_defaults, churn_build},
    {"failures", "burst with workers crashing mid-test and flaky tests (--flaky-share)",
     failures_defaults, failures_build},
    {"second_run", "the suite twice through one balancer: run 1 learns, run 2 is measured",
     second_run_defaults, second_run_build},
    {"stragglers", "second_run where the first --hangs tests one worker starts in run 2 hang",
     stragglers_defaults, stragglers_build},
};

const drv_sim_scenario *drv_sim_scenarios(size_t *n)
{
    *n = sizeof scenarios / sizeof scenarios[0];
    return scenarios;
}

const drv_sim_scenario *drv_sim_scenario_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        if (strcmp(scenarios[i].name, name) == 0)
            return &scenarios[i];
    return NULL;
}
