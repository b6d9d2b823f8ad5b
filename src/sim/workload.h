/* workload.h - what the simulator replays: a fleet and a stream of tests.
 *
 * A workload comes from a generator (sim_generate.c) or from a real trace
 * (trace_swf.c, trace_durations.c, trace_alibaba.c). It holds the *truth* the balancer
 * never sees: each worker's real speed (per model family), each test's real duration.
 * The balancer only sees requirements, priorities, model ids and its own predictions.
 *
 * Ownership: a drv_workload owns its arrays, its strings and its tag table;
 * drv_workload_free() releases everything. */
#ifndef DRV_SIM_WORKLOAD_H
#define DRV_SIM_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/analyzer.h"
#include "core/error.h"
#include "core/requirements.h"

typedef struct drv_sim_worker {
    char name[64];
    char kind[32]; /* worker class as a person names it: "cpu-small", "cuda-a100" */
    drv_capabilities caps;
    uint32_t slots;
    float speed; /* true relative speed: a test of duration d takes d / speed */
    float family_speed[DRV_FAMILY_MAX]; /* multiplies speed per model family (1 = same) */
    double join_at;                     /* seconds; 0 = from the start */
    double leave_at;                    /* seconds; < 0 = never */
    float announced_speed; /* the speed the balancer is told; 0 = the true speed (a live
                            * `drover worker` announces 1: the balancer learns the rest) */
    double crash_at;       /* > 0: it crashes (is lost, running tests too) this many seconds
                            * into the first run; 0 = no planned crash (drover demo) */
} drv_sim_worker;

typedef struct drv_sim_test {
    uint64_t id;
    char *name;        /* owned */
    char *model_id;    /* owned, may be NULL */
    char *test_type;   /* owned, may be NULL */
    double arrival_s;  /* submission time */
    double duration_s; /* true duration at reference speed 1 */
    drv_requirements req;
    int32_t priority;
    int family;
    uint32_t max_retries;
    double flaky_p;        /* probability that a run fails (exit 1) */
    int exit_code;         /* what a failing run exits with; 0 = 1 */
    bool retry_on_failure; /* retried after a failing run even when the options say no */
} drv_sim_test;

typedef struct drv_workload {
    drv_tag_table *tags; /* owned */
    drv_sim_worker *workers;
    size_t n_workers, cap_workers;
    drv_sim_test *tests;
    size_t n_tests, cap_tests;
    char source[256]; /* "generated: seed 42", "trace: NASA-iPSC-1993-3.1-cln.swf.gz" */
} drv_workload;

void drv_workload_init(drv_workload *w);
void drv_workload_free(drv_workload *w);
/* Appends a copy (strings duplicated); returns a pointer valid until the next add. */
drv_sim_worker *drv_workload_add_worker(drv_workload *w, const drv_sim_worker *src);
drv_sim_test *drv_workload_add_test(drv_workload *w, const drv_sim_test *src);

/* ---- real traces ---- */

/* How readers treat a line they cannot use. */
typedef struct drv_trace_options {
    bool strict;                    /* refuse the whole file at the first bad line (else skip it) */
    size_t max_tests;               /* 0 = all */
    size_t skipped;                 /* out: lines skipped */
    char first_skip[DRV_ERROR_MAX]; /* out: "FILE:LINE: why" of the first skipped line */
} drv_trace_options;

/* Standard Workload Format (Parallel Workloads Archive): 18 whitespace-separated fields,
 * ';' header lines; plain or gzip-compressed (by content, not by name). Each job becomes
 * a test: arrival = field 2 (made relative to the first job), duration = field 4,
 * processors (field 5, else 8) = cpu requirement, queue (15) and partition (16) as tags
 * "queue:N" / "partition:N". The Alea variant (21 fields: 19 node list, 20 queue name,
 * 21 PBS resource request with properties such as cl_zewura) is recognised; its
 * properties become required tags. machines_path (may be NULL) is an Alea .machines file
 * (cluster_id name nodes cpus_per_node speed ram_kb) whose nodes become the fleet.
 * Jobs with a negative run time are bad lines. Errors and skips name FILE:LINE. */
int drv_trace_swf_read(const char *path, const char *machines_path, drv_workload *w,
                       drv_trace_options *opt, drv_error *err);

/* A test-duration file (pytest-split's .test_durations, knapsack's report): one JSON
 * object of test id -> seconds. Every test arrives at 0. The fleet is not in the file. */
int drv_trace_durations_read(const char *path, drv_workload *w, drv_trace_options *opt,
                             drv_error *err);

/* The Alibaba GPU cluster trace (cluster-trace-gpu-v2023 "OpenB"): nodes CSV
 * (sn,cpu_milli,memory_mib,gpu,model) become workers, pods CSV (name,cpu_milli,
 * memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,
 * scheduled_time) become tests: arrival = creation_time, duration = deletion_time -
 * scheduled_time, GPU model constraints (gpu_spec "V100M16|V100M32") as any_of tags
 * "gpu:MODEL". Pods without a scheduled or deletion time are bad lines. */
int drv_trace_alibaba_read(const char *nodes_csv, const char *pods_csv, drv_workload *w,
                           drv_trace_options *opt, drv_error *err);

#endif
