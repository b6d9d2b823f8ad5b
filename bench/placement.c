/* bench/placement - how fast the balancer places tests, and how much memory it needs.
 *
 * Builds a fleet of mixed capabilities (CPU boxes, CUDA and ROCm GPU machines, Apple
 * MPS, browser machines with WebGPU/WebNN, in three zones) and a queue of mixed tests
 * (CPU-only, multi-core, GPU with memory minimums, any-of GPU back-ends, browser tests),
 * submits them all, then places them as fast as the fleet takes them: whenever nothing
 * more fits, the oldest running tests finish and free their slots. Placement time is the
 * time spent inside drv_balancer_place(); the submit and finish calls are timed apart.
 *
 *   placement [--workers N] [--tests N] [--policy NAME|all] [--json] [--seed S]
 *
 * Prints placements per second per policy and balancer bytes per queued test, then the
 * composite policy at several fleet sizes to show that a placement does not cost more
 * as the fleet grows. Figures only: nothing is asserted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "balancer/balancer.h"
#include "core/analyzer.h"

static double clock_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
    /* splitmix64: deterministic for a seed */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double rnd01(void)
{
    return (rnd() >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct worker_kind {
    const char *name;
    double share;
    uint32_t cores, gpus;
    uint64_t mem_gb, gpu_mem_gb;
    uint32_t cc;
    const char *tags;
    float speed;
} worker_kind;

static const worker_kind kinds[] = {
    {"cpu-small", 0.30, 8, 0, 16, 0, 0, "cpu", 1.0f},
    {"cpu-large", 0.15, 32, 0, 64, 0, 0, "cpu,openvino", 1.5f},
    {"cuda-t4", 0.15, 16, 1, 64, 16, 75, "cpu,cuda", 1.2f},
    {"cuda-a100", 0.05, 32, 8, 256, 80, 80, "cpu,cuda", 2.0f},
    {"rocm-mi100", 0.05, 32, 4, 128, 32, 0, "cpu,rocm", 1.6f},
    {"mps-m2", 0.05, 10, 1, 32, 24, 0, "cpu,mps", 1.1f},
    {"browser-chromium", 0.12, 8, 1, 16, 8, 0, "cpu,webgpu,webnn,chromium", 0.9f},
    {"browser-firefox", 0.08, 8, 1, 16, 8, 0, "cpu,webgpu,firefox", 0.9f},
    {"browser-edge", 0.05, 8, 1, 16, 8, 0, "cpu,webnn,edge", 0.9f},
};
#define N_KINDS (sizeof kinds / sizeof *kinds)
static const char *zones[] = {"zone-a", "zone-b", "zone-c"};

static const char *models[] = {"bert-base-uncased",
                               "roberta-large",
                               "t5-small",
                               "gpt2",
                               "meta-llama/Llama-2-7b-hf",
                               "google/vit-base-patch16-224",
                               "microsoft/resnet-50",
                               "facebook/detr-resnet-50",
                               "openai/whisper-tiny",
                               "facebook/wav2vec2-base",
                               "openai/clip-vit-base-patch32",
                               "llava-hf/llava-1.5-7b-hf",
                               NULL};
#define N_MODELS 13

static void add_fleet(drv_balancer *b, drv_tag_table *tags, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        double x = rnd01(), acc = 0;
        size_t k = 0;
        for (; k < N_KINDS - 1; k++) {
            acc += kinds[k].share;
            if (x < acc)
                break;
        }
        const worker_kind *wk = &kinds[k];
        drv_worker_spec ws = {0};
        char name[64];
        snprintf(name, sizeof name, "%s-%u", wk->name, i);
        ws.name = name;
        drv_capabilities_init(&ws.caps);
        ws.caps.cpu_cores = wk->cores;
        ws.caps.gpu_count = wk->gpus;
        ws.caps.memory_mb = wk->mem_gb * 1024;
        ws.caps.gpu_memory_mb = wk->gpu_mem_gb * 1024;
        ws.caps.cuda_cc = wk->cc;
        drv_tagset_parse(tags, wk->tags, &ws.caps.tags, NULL);
        drv_tagset_add(&ws.caps.tags, drv_tag_intern(tags, zones[i % 3], NULL));
        ws.slots = wk->cores / 2 ? wk->cores / 2 : 1;
        ws.speed = wk->speed;
        drv_error err;
        if (drv_balancer_worker_add(b, &ws, 0, &err) < 0) {
            fprintf(stderr, "placement: %s\n", err.msg);
            exit(1);
        }
    }
}

/* One test of a drawn kind. */
static void make_task(drv_task *t, drv_tag_table *tags, uint64_t id, char *name, size_t nlen)
{
    snprintf(name, nlen, "suite/test_%07llu", (unsigned long long)id);
    t->id = id;
    t->name = name;
    t->model_id = (char *)models[rnd() % (N_MODELS - 1)];
    t->family = 0;
    t->priority = (int32_t)(rnd() % 4 == 0 ? 200 + rnd() % 100 : 100);
    t->max_retries = 2;
    drv_requirements_init(&t->req);
    double x = rnd01();
    if (x < 0.55) {
        /* plain CPU test */
    } else if (x < 0.65) {
        t->req.cpu_cores = 4;
        t->req.memory_mb = 8192;
    } else if (x < 0.78) {
        t->req.gpu_count = 1;
        drv_tagset_add(&t->req.all_of, DRV_TAG_CUDA);
    } else if (x < 0.82) {
        t->req.gpu_count = 1;
        t->req.gpu_memory_mb = 40 * 1024;
        t->req.cuda_cc = 80;
        drv_tagset_add(&t->req.all_of, DRV_TAG_CUDA);
    } else if (x < 0.86) {
        t->req.gpu_count = 1;
        drv_tagset_add(&t->req.any_of, DRV_TAG_CUDA);
        drv_tagset_add(&t->req.any_of, DRV_TAG_ROCM);
    } else if (x < 0.93) {
        drv_tagset_add(&t->req.all_of, DRV_TAG_WEBGPU);
        drv_tagset_add(&t->req.none_of, DRV_TAG_EDGE);
    } else if (x < 0.97) {
        drv_tagset_add(&t->req.all_of, DRV_TAG_WEBNN);
    } else {
        drv_tagset_add(&t->req.all_of, drv_tag_intern(tags, zones[rnd() % 3], NULL));
    }
}

typedef struct result {
    const char *policy;
    uint32_t workers;
    uint64_t queued;
    double placements_per_s;
    double bytes_per_queued_test;
    double bytes_per_worker;
    double submit_per_s;
    double finish_per_s;
    uint64_t placed;
} result;

static result run(drv_policy_kind kind, uint32_t n_workers, uint64_t n_tests, uint64_t seed)
{
    rng_state = seed;
    drv_balancer_config cfg;
    drv_balancer_config_default(&cfg);
    if (kind != DRV_POLICY_COMPOSITE)
        cfg.default_policy.kind = kind;
    cfg.settings.thermal.initial_share = 1.0; /* measure placement, not the warm-up ramp */
    drv_tag_table *tags = drv_tag_table_new();
    drv_predictor *pred = drv_predictor_new(0.3);
    drv_error err;
    drv_balancer *b = drv_balancer_new(&cfg, tags, pred, &err);
    if (!b) {
        fprintf(stderr, "placement: %s\n", err.msg);
        exit(1);
    }
    add_fleet(b, tags, n_workers);

    double t0 = clock_s();
    char name[64];
    for (uint64_t i = 0; i < n_tests; i++) {
        drv_task t;
        drv_task_init(&t);
        make_task(&t, tags, i + 1, name, sizeof name);
        if (drv_balancer_submit(b, &t, 0, &err) < 0) {
            fprintf(stderr, "placement: %s\n", err.msg);
            exit(1);
        }
    }
    double submit_s = clock_s() - t0;
    drv_balancer_stats st;
    drv_balancer_stats_get(b, &st);
    result res = {.policy = kind == DRV_POLICY_COMPOSITE ? "composite" : drv_policy_kind_name(kind),
                  .workers = n_workers,
                  .queued = st.queued,
                  .bytes_per_queued_test = (double)st.bytes / (double)st.queued,
                  .bytes_per_worker = (double)st.bytes_per_worker,
                  .submit_per_s = n_tests / submit_s};

    /* Running tests in placement order; the oldest finish first. */
    drv_tref *running = malloc(sizeof(drv_tref) * (n_tests + 1));
    uint64_t head = 0, tail = 0, done = 0;
    drv_decision dec[4096];
    double place_s = 0, finish_s = 0, now = 1;
    while (done < n_tests) {
        double a = clock_s();
        size_t n = drv_balancer_place(b, now, dec, 4096);
        place_s += clock_s() - a;
        for (size_t i = 0; i < n; i++) {
            if (dec[i].kind == DRV_D_PLACED) {
                drv_balancer_started(b, dec[i].task, now);
                running[tail++] = dec[i].task;
                res.placed++;
            } else if (dec[i].kind == DRV_D_FINAL) {
                done++;
            }
        }
        if (n < 4096) {
            /* the fleet is full: the oldest tenth of what runs finishes */
            uint64_t k = (tail - head) / 10 + 1;
            a = clock_s();
            for (uint64_t i = 0; i < k && head < tail; i++) {
                drv_tref t = running[head++];
                drv_result r = {.exit_code = 0, .duration_s = 1.0 + (t % 7)};
                drv_decision d;
                drv_balancer_finished(b, t, now, &r, &d);
                done++;
            }
            finish_s += clock_s() - a;
            now += 1;
            if (head == tail && n == 0 && st.queued && done < n_tests) {
                drv_balancer_stats_get(b, &st);
                if (st.queued == 0 && st.running == 0 && st.assigned == 0)
                    break;
            }
        }
    }
    res.placements_per_s = res.placed / place_s;
    res.finish_per_s = res.placed / finish_s;
    free(running);
    drv_balancer_free(b);
    drv_predictor_free(pred);
    drv_tag_table_free(tags);
    return res;
}

static void print(const result *r, bool json)
{
    if (json)
        printf("{\"policy\":\"%s\",\"placements_per_s\":%.0f,\"bytes_per_queued_test\":%.1f,"
               "\"bytes_per_worker\":%.0f,\"workers\":%u,\"queued\":%llu,\"submits_per_s\":%.0f,"
               "\"finishes_per_s\":%.0f}\n",
               r->policy, r->placements_per_s, r->bytes_per_queued_test, r->bytes_per_worker,
               r->workers, (unsigned long long)r->queued, r->submit_per_s, r->finish_per_s);
    else
        printf("%-22s %8u %9llu %14.0f %10.1f %10.0f %12.0f %12.0f\n", r->policy, r->workers,
               (unsigned long long)r->queued, r->placements_per_s, r->bytes_per_queued_test,
               r->bytes_per_worker, r->submit_per_s, r->finish_per_s);
}

int main(int argc, char **argv)
{
    uint32_t workers = 10000;
    uint64_t tests = 1000000, seed = 42;
    const char *policy = "all";
    bool json = false, scaling = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--workers") && i + 1 < argc)
            workers = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--tests") && i + 1 < argc)
            tests = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--policy") && i + 1 < argc)
            policy = argv[++i];
        else if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--no-scaling"))
            scaling = false;
        else {
            fprintf(stderr,
                    "usage: placement [--workers N] [--tests N] [--policy NAME|all] [--json] "
                    "[--seed S] [--no-scaling]\n");
            return 2;
        }
    }
    if (!json)
        printf("%-22s %8s %9s %14s %10s %10s %12s %12s\n", "policy", "workers", "queued",
               "placements/s", "B/queued", "B/worker", "submits/s", "finishes/s");
    for (int k = DRV_POLICY_COMPOSITE; k >= 0; k--) {
        drv_policy_kind kind = (drv_policy_kind)k;
        const char *name = kind == DRV_POLICY_COMPOSITE ? "composite" : drv_policy_kind_name(kind);
        if (strcmp(policy, "all") && strcmp(policy, name))
            continue;
        result r = run(kind, workers, tests, seed);
        print(&r, json);
        fflush(stdout);
    }
    if (scaling && !strcmp(policy, "all")) {
        if (!json)
            printf("\ncomposite as the fleet grows (tests = 100 x workers, at most %llu):\n",
                   (unsigned long long)tests);
        uint32_t sizes[] = {100, 1000, 10000, 50000};
        for (size_t i = 0; i < 4; i++) {
            uint64_t nt = (uint64_t)sizes[i] * 100 < tests ? (uint64_t)sizes[i] * 100 : tests;
            result r = run(DRV_POLICY_COMPOSITE, sizes[i], nt, seed);
            print(&r, json);
            fflush(stdout);
        }
    }
    return 0;
}
