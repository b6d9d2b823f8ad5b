/* sim.h - the discrete-event simulator: generators, scenarios, the engine, metrics and
 * the report.
 *
 * The simulator replays a drv_workload (sim/workload.h: the fleet's true speeds and the
 * tests' true durations) through the same balancer the coordinator uses, on a virtual
 * clock. It never looks at the wall clock except to measure how long the balancer took
 * (placements per second), which is reported apart and never changes a decision: the
 * same workload, config, options and seed give the same report.
 *
 *   generate.c  seeded fleets and suites, arrival patterns, and the named scenarios
 *   engine.c    the event loop over one balancer per policy, and two baselines that do
 *               not use the balancer (greedy list scheduling, pytest-split style shares)
 *   metrics.c   the lower bound, percentiles, per-run results
 *   report.c    the terminal table and the JSON array
 *   report_html.c  the self-contained HTML report (uPlot charts, inlined)
 *
 * Ownership: a drv_sim_report owns its results (drv_sim_report_free); everything else
 * is either caller-owned or borrowed for the duration of a call. */
#ifndef DRV_SIM_SIM_H
#define DRV_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "balancer/balancer.h"
#include "balancer/config.h"
#include "core/error.h"
#include "sim/workload.h"

/* ---- randomness --------------------------------------------------------------------- */

/* splitmix64: advances *state and returns the next 64 pseudo-random bits. */
uint64_t drv_sim_rand(uint64_t *state);
/* A uniform double in [0, 1) from the stream. */
double drv_sim_uniform(uint64_t *state);
/* A stateless uniform in [0, 1) for the tuple (a, b, c, d): the same tuple always gives
 * the same number, so draws do not depend on the order in which events happen (every
 * policy sees the same flaky outcomes and the same run-to-run durations). */
double drv_sim_hash01(uint64_t a, uint64_t b, uint64_t c, uint64_t d);

/* ---- generators (generate.c) -------------------------------------------------------- */

/* Appends n workers to w, drawn from a table of worker kinds (CPU boxes, CUDA and ROCm
 * GPU machines, browser machines with webgpu/webnn and chromium/firefox/edge), each with
 * a configured speed and a hidden per-family speed (GPU kinds run the families that
 * prefer their back-end faster; a small seeded jitter per kind and family makes them
 * something to learn). The first workers are one of each kind (while n allows), so every
 * kind is present. Deterministic for seed. n == 0 adds nothing. */
void drv_sim_generate_fleet(drv_workload *w, size_t n, uint64_t seed);

typedef struct drv_sim_suite_spec {
    size_t tests;
    uint64_t seed;
    double sigma;       /* lognormal shape of durations (1.0); 0 = every test at its median */
    double flaky_share; /* share of tests that are flaky (0) */
    double flaky_p;     /* their failure probability per run (0.2) */
    double unschedulable_share; /* share that requires a back-end no generated kind has (0.001) */
    uint32_t max_retries;       /* per test (2) */
} drv_sim_suite_spec;

void drv_sim_suite_spec_default(drv_sim_suite_spec *s);
/* Appends s->tests tests to w, all arriving at 0: model ids from several families (and
 * some without a model), test types (unit/integration/performance), priorities,
 * requirements (none, multi-core, any GPU, CUDA only, large-memory GPU, webgpu or webnn
 * browsers), and true durations from a lognormal around the family's estimate scaled by
 * the test type, cut at 10 minutes. Names are unique ("suite/bert/test_0000042"). */
void drv_sim_generate_suite(drv_workload *w, const drv_sim_suite_spec *s);

/* Total capacity of the fleet: the sum over workers of slots x speed (reference seconds
 * of work per second). 0 for an empty fleet. */
double drv_sim_capacity(const drv_workload *w);
/* Mean true duration of the tests at reference speed; 0 without tests. */
double drv_sim_mean_duration(const drv_workload *w);

/* Rewrites the arrival times of w's tests (in their order) as a Poisson process of
 * rate_per_s, multiplied by spike_factor between spike_at_s and spike_at_s + spike_len_s
 * (spike_factor 1 or spike_len_s 0: no spike). rate_per_s <= 0: every test at 0. */
void drv_sim_arrivals_poisson(drv_workload *w, double rate_per_s, double spike_factor,
                              double spike_at_s, double spike_len_s, uint64_t seed);

/* Churn: a share of the workers (never the first of each kind, so every kind stays
 * reachable) join late, at exponential times of mean 1/join_rate hours; every worker
 * except those firsts leaves at an exponential time of mean 1/leave_rate hours if that
 * is before horizon_s. A rate <= 0 means none. */
void drv_sim_churn(drv_workload *w, double late_share, double join_rate_per_h,
                   double leave_rate_per_h, double horizon_s, uint64_t seed);

/* ---- the engine (engine.c) ---------------------------------------------------------- */

typedef struct drv_sim_options {
    uint64_t seed;      /* of crashes, flaky outcomes and run-to-run variation */
    unsigned runs;      /* passes of the suite through one balancer+predictor (1) */
    double spread;      /* a test's true duration varies by a factor in [1-s, 1+s] per run (0) */
    double heartbeat_s; /* heartbeat of every worker (1); <= 0: none */
    double rebalance_s; /* drv_balancer_rebalance period (1, as live); <= 0: never */
    uint32_t rebalance_max;  /* moves per rebalancing pass (256) */
    double crash_rate_per_h; /* crashes per worker per hour (0) */
    double crash_down_s;     /* a crashed worker comes back after this long (60); < 0: never */
    bool retry_failures;     /* tests ask to be retried after a non-zero exit (true) */
    double max_time_s; /* virtual time limit per run (1e7); what is not final then is unfinished */
    bool timing;       /* measure wall time inside drv_balancer_place (true) */
    double test_overhead_s; /* added to every run: what starting a process and reporting
                             * its end costs a live worker (0; bench/live.sh measures it) */
    const struct drv_sim_observer *observer; /* told what happens (drover demo); NULL: none */
    unsigned baseline_run; /* greedy, static_split: the run (1..runs) whose durations they
                            * take; 0: the last. drv_sim_run_all() runs them once per run */
    /* Stragglers (spec3): speculative copies as the coordinator starts them, right after a
     * placement round every speculate_s (0.5, as live; <= 0: never). A copy is a record of
     * its own; the first to finish is the result, the other is killed and its slot freed.
     * Hangs as bench/live.sh makes them: in the last run, the first hang_count tests that
     * worker hang_worker (a workload index, 0) starts take hang_s seconds more (0: none). */
    double speculate_s;
    uint32_t hang_count;
    double hang_s;
    uint32_t hang_worker;
} drv_sim_options;

void drv_sim_options_default(drv_sim_options *o);

/* ---- watching a run (engine.c) --------------------------------------------------------
 *
 * An observer is told, as they happen on the virtual clock, what the balancer decided and
 * what the fleet did: `drover demo` narrates a run with it. It only looks: it must not
 * call anything that changes the balancer. Every hook may be NULL. */

struct drv_sim_result; /* below */

typedef struct drv_sim_view {
    const drv_balancer *b; /* the run's balancer: predictions, explanations, workers */
    double now;            /* its clock */
    const drv_workload *w;
    unsigned run; /* 0-based */
    double t;     /* virtual seconds from the run's start */
    const void *sim;
} drv_sim_view;

/* The balancer's reference of test i (workload index) in this run; DRV_REF_NONE before
 * it arrived or once it is final. */
drv_tref drv_sim_view_test(const drv_sim_view *v, uint32_t i);
/* The balancer's reference of worker j; DRV_REF_NONE before it joined. */
drv_wref drv_sim_view_worker(const drv_sim_view *v, uint32_t j);

#define DRV_SIM_NONE UINT32_MAX

/* A balancer decision about test `test` (workload index), as applied. */
typedef struct drv_sim_decision {
    const drv_decision *d;
    uint32_t test;
    uint32_t worker; /* PLACED, MOVED: where it went; else DRV_SIM_NONE */
    uint32_t from;   /* MOVED, REQUEUED: the worker it left; a verdict on a run: the worker
                      * that ran it; else DRV_SIM_NONE */
    double ran_s;    /* the verdict on a run that ended now: its run time; else -1 */
} drv_sim_decision;

typedef enum drv_sim_fleet_event {
    DRV_SIM_LOST, /* crashed: what it ran and held goes back through the balancer */
    DRV_SIM_BACK, /* a lost worker reconnected */
} drv_sim_fleet_event;

typedef struct drv_sim_observer {
    void *ctx;
    void (*run_start)(void *ctx, const drv_sim_view *v);
    /* After the run's first placement round. */
    void (*first_round)(void *ctx, const drv_sim_view *v);
    void (*decision)(void *ctx, const drv_sim_view *v, const drv_sim_decision *d);
    /* Test i starts on worker j (before the balancer is told). */
    void (*started)(void *ctx, const drv_sim_view *v, uint32_t i, uint32_t j);
    /* Worker j was lost (running and holding: what it had then) or came back. */
    void (*fleet)(void *ctx, const drv_sim_view *v, uint32_t j, drv_sim_fleet_event e,
                  uint32_t running, uint32_t holding);
    void (*run_end)(void *ctx, const drv_sim_view *v, const struct drv_sim_result *r);
} drv_sim_observer;

#define DRV_SIM_KINDS_MAX  24 /* worker kinds reported apart; the rest are "other" */
#define DRV_SIM_NAME_MAX   32
#define DRV_SIM_SERIES_MAX 2000       /* samples of utilization and queue per run */
#define DRV_SIM_SERIES_DT0 (1.0 / 64) /* the first sampling interval, s */

/* One policy's figures for one run. Times are seconds from the run's start. */
typedef struct drv_sim_result {
    char policy[DRV_SIM_NAME_MAX];
    unsigned run;  /* 1-based */
    unsigned runs; /* how many runs the policy made */
    bool baseline; /* greedy or static_split: no balancer */
    double makespan_s;
    double lower_bound_s;
    double ratio_to_bound; /* makespan / lower bound; 0 when the bound is 0 */
    double wait_p50_s, wait_p95_s, wait_p99_s;
    double bounded_slowdown; /* mean of max(1, response / max(run, 10 s)) */
    unsigned n_kinds;
    char kind[DRV_SIM_KINDS_MAX][DRV_SIM_NAME_MAX];
    double utilization[DRV_SIM_KINDS_MAX]; /* busy slot-seconds / (slots x makespan) */
    double utilization_all;                /* the same over the whole fleet */
    uint64_t submitted, passed, failed, unschedulable, unfinished;
    uint64_t steals;  /* MOVED decisions (stealing and rebalancing) */
    uint64_t retries; /* REQUEUED decisions */
    uint64_t crashes; /* workers lost */
    uint64_t copies;  /* speculative copies started */
    uint64_t yields;  /* spec4: copies killed to give their slot to waiting work */
    uint64_t placements;
    double place_wall_s;     /* wall time inside drv_balancer_place */
    double placements_per_s; /* placements / place_wall_s; 0 without timing */
    size_t balancer_bytes;   /* the most drv_balancer_stats reported during the run */
    uint64_t events;         /* simulated events (arrivals, finishes, fleet events, ticks) */
    double wall_s;           /* wall time of the whole run */
    /* Over virtual time: sample k is the state at k x series_dt_s from the run's start
     * (after every event up to then), k < n_series; the last sample is at the run's end
     * or just after. The engine starts at DRV_SIM_SERIES_DT0 and doubles the interval
     * (keeping every other sample) whenever DRV_SIM_SERIES_MAX are taken. */
    uint32_t n_series;
    double series_dt_s;
    float series_util[DRV_SIM_SERIES_MAX];  /* running tests / slots of the whole fleet */
    float series_queue[DRV_SIM_SERIES_MAX]; /* tests arrived, not running, not final */
} drv_sim_result;

/* Runs w through a fresh balancer (and predictor) whose default scheduler is `policy`:
 * a policy name of config.h (composite takes base's weights when base's default is a
 * composite, the default composite's otherwise), with base's per-family and per-test-type
 * schedulers cleared so the row is that policy alone; or "config" for base unchanged.
 * Writes opt->runs results to out. Returns 0, or -1 with err filled (unknown policy, a
 * config the balancer refuses, a worker or test it refuses). */
int drv_sim_run_policy(const drv_workload *w, const drv_balancer_config *base, const char *policy,
                       const drv_sim_options *opt, drv_sim_result *out, drv_error *err);

/* Baseline "greedy": list scheduling on the true fleet, no balancer. Tests in arrival
 * order, each to the eligible worker where it can start first (ties: the faster worker for
 * its family, then the lower index), with true durations, holding what the balancer holds
 * for it: a slot, and its cores, GPUs and memory. A worker starts its tests in the order
 * greedy gives them (no test starts before one given earlier), so a test that needs a
 * whole machine is not passed over for ever by smaller ones. Before, greedy held only a
 * slot (a GPU test a GPU lane): on the MetaCentrum trace it started an 80-core job on a
 * node whose cores were taken and "waited 0 s" where the balancer, reserving cores, could
 * not. Crashes, leaves and retries are not simulated (workers are usable from join_at); a
 * flaky test fails once and is not rerun. The run-to-run spread applies as in the engine
 * (the run is opt->baseline_run, else the last). */
void drv_sim_run_greedy(const drv_workload *w, const drv_sim_options *opt, drv_sim_result *out);

/* Baseline "static_split" (pytest-split's least-duration groups): every slot of the
 * fleet is a share; tests sorted by their known duration (the workload's, i.e. recorded
 * in an earlier run) longest first, each to the eligible share with the least known work;
 * then each share runs its tests one after the other in arrival order at its worker's
 * true speed. Shares are lanes: tests that need GPUs only go to GPU lanes. Known durations
 * ignore worker speeds and the spread: it is meant for identical workers and tests without
 * requirements, and shows what a static split loses on a heterogeneous fleet. Same simplifications
 * as greedy. */
void drv_sim_run_static_split(const drv_workload *w, const drv_sim_options *opt,
                              drv_sim_result *out);

/* True duration of test i of w in run `run` (0-based) at reference speed: its duration
 * times a factor drawn uniformly in [1 - spread, 1 + spread] (at least 0.05). */
double drv_sim_true_duration(const drv_workload *w, size_t i, unsigned run, double spread,
                             uint64_t seed);

/* ---- metrics (metrics.c) ------------------------------------------------------------ */

/* The makespan no schedule can beat, in seconds from t = 0 (arrivals are relative to
 * it), for the tests of w with the true durations dur[i] (reference speed; NULL: the
 * workload's). Tests no worker of w can run are left out. The largest of:
 *   - every test: its arrival + its duration on the fastest eligible worker for its
 *     family (speed x family_speed);
 *   - slot time: the sum over tests of that fastest run / the fleet's slots;
 *   - work: with work_i = d_i / (the best family_speed of an eligible worker) measured
 *     at reference speed, and capacity = sum over workers of slots x speed, the work of
 *     the tests arriving at or after any arrival a, over capacity, plus a;
 *   - per eligibility set: for the set E of worker classes that can run some test, the
 *     work of every test that only E can run over E's capacity, for each resource
 *     (slots, cores, GPUs, memory: a test that reserves 1 of a worker's 2 GPUs uses half
 *     of that worker's GPU capacity while it runs).
 *   - the fluid program (drv_sim_fluid_makespan): each test's work split over its eligible
 *     classes at each class's own family speed, the least T every class's share fits in.
 * Each is a valid bound: a worker of speed s running a test of family f needs
 * d / (s x family_speed_f) of one slot, so in time T it does at most slots x s x T
 * reference seconds of work divided by family_speed_f. The fleet is taken as present
 * from 0 to the end (joins, leaves and crashes only make the best schedule slower).
 * Returns 0 for a workload without schedulable tests. */
double drv_sim_lower_bound(const drv_workload *w, const double *dur);

/* The fractional relaxation of the makespan (fluid_bound.c): n_groups groups of work
 * (work[g] reference seconds each) over n_classes worker classes of capacity cap[c]
 * (sum of slots x speed), class c doing group g's work at rate[g * n_classes + c] (its
 * family speed; 0 = cannot run it). Returns the least T such that each group's work can
 * be split over its classes with every class's share, at its rates, fitting cap[c] x T:
 * a lower bound on any schedule's makespan (tests cut into fractions, every class busy
 * from 0 to T). Solved exactly by a dense simplex. 0 when there is no work, or some
 * group's work has no class. drv_sim_lower_bound takes it over (eligibility set, family)
 * groups and slots. */
double drv_sim_fluid_makespan(size_t n_groups, size_t n_classes, const double *work,
                              const double *rate, const double *cap);

/* The fleet's classes and the suite's shapes: workers with equal capabilities, speed and
 * family speeds form a class; tests with equal requirements a shape. Built in
 * O(workers + tests) expected time (hash tables); owned by the caller, freed with
 * drv_sim_index_free. Empty workloads give empty indexes. */
typedef struct drv_sim_index {
    size_t n_classes;
    uint32_t *class_of;    /* per worker: its class */
    uint32_t *class_first; /* per class: its first worker (the representative) */
    size_t n_shapes;
    uint32_t *shape_of;    /* per test: its shape */
    uint32_t *shape_first; /* per shape: its first test */
    size_t words;          /* uint64 words per eligibility bitset */
    uint64_t *elig;        /* shape s: the classes that can run it, at elig + s * words */
    uint32_t *elig_list;   /* shape s: the same as a list, [elig_start[s], elig_start[s+1]) */
    uint32_t *elig_start;
} drv_sim_index;

void drv_sim_index_build(drv_sim_index *x, const drv_workload *w);
void drv_sim_index_free(drv_sim_index *x);

/* Writes the test indexes of w into order (w->n_tests entries) sorted by arrival, ties
 * by index: the order in which tests are submitted. */
void drv_sim_arrival_order(const drv_workload *w, uint32_t *order);

/* Whether some worker of w meets the requirements of each test: eligible[i] set for
 * every test (array of w->n_tests). Returns how many are eligible. */
size_t drv_sim_eligible(const drv_workload *w, bool *eligible);

/* The q-quantile (0..1) of v[0..n) by nearest rank; reorders v. 0 when n == 0. */
double drv_sim_quantile(double *v, size_t n, double q);

/* Per-test outcome of one run, as the engine and the baselines record it. */
typedef struct drv_sim_outcome {
    double arrival_s;  /* from the run's start */
    double end_s;      /* when it became final (from the run's start); < 0 never */
    double last_run_s; /* run time of its last attempt; 0 when it never ran */
    uint8_t state;     /* drv_task_state when final, DRV_TASK_STATE_COUNT when not */
} drv_sim_outcome;

/* Fills the figures of r that come from the outcomes (makespan, waits, slowdown, the
 * state counts) and the utilization from busy slot-seconds per worker of w (busy_s[j]
 * for worker j, NULL: none) over the makespan. Wait = end - arrival - last run, so time
 * lost in attempts on crashed workers counts as waiting. lower_bound is stored with the
 * ratio. */
void drv_sim_result_fill(drv_sim_result *r, const drv_workload *w, const drv_sim_outcome *o,
                         const double *busy_s, double lower_bound);

/* ---- scenarios (generate.c) --------------------------------------------------------- */

typedef struct drv_sim_params {
    size_t workers, tests;
    uint64_t seed;
    double load;            /* steady, spike: arrival rate as a share of capacity (0.8) */
    double spike_factor;    /* spike: arrival rate multiplier in the window (5) */
    double spike_at_s;      /* spike: window start; < 0 = 30% of the expected span */
    double spike_len_s;     /* spike: window length; < 0 = 10% of the expected span */
    double late_share;      /* worker_churn: share of workers joining late (0.2) */
    double join_rate_per_h; /* worker_churn (6) */
    double leave_rate_per_h;
    double crash_rate_per_h;
    double crash_down_s;
    double flaky_share, flaky_p;
    double spread;
    double sigma;
    size_t hangs;  /* stragglers: tests of the first worker that hang in the last run (3) */
    double hang_s; /* stragglers: how much longer each takes (10) */
} drv_sim_params;

typedef struct drv_sim_scenario {
    const char *name;
    const char *summary; /* one line for --help */
    /* Sets the scenario's defaults into p (on top of drv_sim_params_default). */
    void (*defaults)(drv_sim_params *p);
    /* Builds the workload (fleet and suite) and the engine options from p. */
    void (*build)(const drv_sim_params *p, drv_workload *w, drv_sim_options *o);
} drv_sim_scenario;

void drv_sim_params_default(drv_sim_params *p);
/* The scenario called name, or NULL. */
const drv_sim_scenario *drv_sim_scenario_find(const char *name);
/* The scenarios in order (steady, burst, spike, worker_churn, failures, second_run,
 * stragglers);
 * *n receives their count. */
const drv_sim_scenario *drv_sim_scenarios(size_t *n);

/* ---- running and reporting (engine.c, report.c) ------------------------------------- */

typedef struct drv_sim_report {
    char scenario[DRV_SIM_NAME_MAX];
    char source[256]; /* the workload's source */
    size_t workers, tests;
    uint64_t seed;
    drv_sim_result *results; /* owned */
    size_t n_results, cap_results;
    uint64_t events;
    double wall_s;
} drv_sim_report;

/* The policy names `--policies all` runs: the seven balancer policies, then greedy and
 * static_split. *n receives the count. */
const char *const *drv_sim_policy_names(size_t *n);

/* Runs every policy in names (balancer policies, "config", "greedy", "static_split") on
 * w and appends their results to rep (initialised by the caller, zeroed). Returns 0, or
 * -1 with err filled at the first policy that fails (results so far are kept). */
int drv_sim_run_all(const drv_workload *w, const drv_balancer_config *base,
                    const char *const *names, size_t n_names, const drv_sim_options *opt,
                    drv_sim_report *rep, drv_error *err);
void drv_sim_report_free(drv_sim_report *rep);

/* The terminal table: one row per policy and run, then utilization per worker kind,
 * then a footer with simulated events per second (when timing). */
void drv_sim_report_print(FILE *out, const drv_sim_report *rep, bool timing);
/* The JSON array, one object per policy and run (policy, run, makespan_s, lower_bound_s,
 * ratio_to_bound, wait_p50_s, wait_p95_s, wait_p99_s, bounded_slowdown, utilization
 * {kind: fraction}, steals, retries, unschedulable, placements_per_s, balancer_bytes,
 * and the counts). Without timing, placements_per_s is 0, so the text depends only on
 * the inputs. Returns a new string the caller frees. */
char *drv_sim_report_json(const drv_sim_report *rep, bool timing);

/* Writes rep as one self-contained HTML page to out (report_html.c): the terminal
 * tables, the policy comparison (makespan against the bound, wait percentiles) and, per
 * policy and run, utilization and queue length over time, drawn by uPlot (inlined from
 * drv_sim_uplot_js/css: the page needs no network). The figures go in as a JSON blob.
 * Every string from the input is escaped. Returns 0, or -1 with err filled when
 * writing fails. */
int drv_sim_report_html(FILE *out, const drv_sim_report *rep, bool timing, drv_error *err);

/* uPlot's uPlot.iife.min.js and uPlot.min.css (npm package uplot), embedded at build time
 * (cmake/embed_files.cmake): NUL-terminated, _len without the NUL. */
extern const unsigned char drv_sim_uplot_js[];
extern const size_t drv_sim_uplot_js_len;
extern const unsigned char drv_sim_uplot_css[];
extern const size_t drv_sim_uplot_css_len;

/* ---- real traces (trace_load.c) ---- */

/* Where a simulation's workload comes from when it is a real trace: exactly one of swf
 * (with machines optional), durations, gpu_nodes (with gpu_pods). */
typedef struct drv_sim_trace_spec {
    const char *swf, *machines, *durations, *gpu_nodes, *gpu_pods;
    size_t workers;    /* identical workers for a trace without a fleet (0: 8 for durations,
                        * 1 node for a log) */
    uint32_t slots;    /* slots of each of those for durations (0: 1) */
    const char *fleet; /* durations: the fleet as groups instead (drv_sim_fleet_parse); NULL */
} drv_sim_trace_spec;

/* Appends the fleet described by spec to w (bal; what bench/live.sh runs live):
 * comma-separated groups COUNTxSLOTS@SPEED[+JOIN], e.g. "2x2@1,2x2@0.333,1x2@1+3": COUNT
 * workers of SLOTS slots, true speed SPEED (a test of reference duration d takes
 * d / SPEED), joining JOIN seconds after the start (0). Each group is its own class, as
 * live workers started with their own --label are: its workers carry the tag "group-K"
 * (K from 1) and are named "gK-I". They announce speed 1, as `drover worker` does: the
 * balancer learns how fast each group is. Returns 0, or -1 with err naming the group
 * that is wrong, w unchanged. */
int drv_sim_fleet_parse(const char *spec, drv_workload *w, drv_error *err);

/* Reads the trace into w and gives it a fleet when the trace has none (see trace_load.c).
 * Returns 0, or -1 with err naming the file and line. */
int drv_sim_load_trace(const drv_sim_trace_spec *spec, drv_workload *w, drv_trace_options *opt,
                       drv_error *err);

#endif
