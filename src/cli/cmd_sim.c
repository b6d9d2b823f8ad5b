/* cmd_sim.c - `drover sim`: every scheduling policy side by side on a simulated fleet.
 *
 * Builds a workload from a named scenario (sim/generate.c), runs each requested policy
 * through its own balancer on a virtual clock (sim/engine.c) plus the baselines, and
 * prints the report as a table or as JSON, and with --html also writes it as a page. Options are
 * read in two passes: first
 * --scenario, whose defaults are applied, then every other option on top of them, so
 * `--scenario failures --crash-rate 0` is the failures scenario without crashes.
 *
 * Workload sources: a scenario's generators, or a real trace (--trace, --durations,
 * --gpu-trace) read by the trace readers (drv_sim_load_trace gives it a fleet when it
 * has none); the engine takes any drv_workload. With a trace, heartbeats and
 * rebalancing default to about 100,000 over the trace's span.
 *
 * Ownership: the workload, the report, the JSON text and the HTML file are owned here
 * and freed (closed) before returning. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "sim/sim.h"

#define POLICIES_MAX 32

/* Everything the command line sets. */
typedef struct sim_args {
    const char *scenario;
    const char *policies;
    const char *config;
    const char *html; /* --html FILE */
    bool json, no_timing;
    double ramp_s, heartbeat_s, rebalance_s, max_time_s, test_overhead_s, speculate_s;
    drv_sim_params p;
    /* real traces */
    const char *trace, *machines, *durations, *gpu_nodes, *gpu_pods, *fleet;
    bool strict;
    size_t max_tests, slots;
} sim_args;

static int parse_size(const char *cmd, const drv_opt *o, const char *v, void *at);

#define ARG(field) offsetof(sim_args, field)
#define PAR(field) (offsetof(sim_args, p) + offsetof(drv_sim_params, field))

static const drv_opt sim_opts[] = {
    {"--scenario", NULL, DRV_OPT_STRING, ARG(scenario), 0, 0, "NAME",
     "one of the above (default burst)", NULL},
    {"--workers", NULL, DRV_OPT_PARSE, PAR(workers), 1, 1e6, "N", "fleet size", parse_size},
    {"--tests", NULL, DRV_OPT_PARSE, PAR(tests), 0, 1e8, "N", "suite size", parse_size},
    {"--seed", NULL, DRV_OPT_UINT, PAR(seed), 0, 1.9e19, "S",
     "seed of everything random; same seed, same report", NULL},
    {"--policies", NULL, DRV_OPT_STRING, ARG(policies), 0, 0, "LIST",
     "all, or a comma-separated list (default all)", NULL},
    {"--config", NULL, DRV_OPT_STRING, ARG(config), 0, 0, "FILE",
     "balancer config (default: the built-in defaults)", NULL},
    {"--json", NULL, DRV_OPT_FLAG, ARG(json), 0, 0, NULL,
     "print a JSON array, one object per policy and run", NULL},
    {"--html", NULL, DRV_OPT_STRING, ARG(html), 0, 0, "FILE",
     "also write a self-contained HTML report (charts inlined: comparison, utilization and "
     "queue length over time)",
     NULL},
    {"--no-timing", NULL, DRV_OPT_FLAG, ARG(no_timing), 0, 0, NULL,
     "leave wall-clock figures out (placements/s, events/s)", NULL},
    {"--load", NULL, DRV_OPT_DOUBLE, PAR(load), 1e-6, 100, "F",
     "steady, spike: arrival rate as a share of capacity: reference seconds of work per "
     "second over sum(slots x speed); hidden family speed-ups leave the slots less busy than "
     "that",
     NULL},
    {"--spike-factor", NULL, DRV_OPT_DOUBLE, PAR(spike_factor), 1, 1e4, "F",
     "spike: rate multiplier in the window", NULL},
    {"--spike-at", NULL, DRV_OPT_DOUBLE, PAR(spike_at_s), 0, 1e9, "S",
     "spike: window start, s (default 30% of the arrival span)", NULL},
    {"--spike-len", NULL, DRV_OPT_DOUBLE, PAR(spike_len_s), 0, 1e9, "S",
     "spike: window length, s (default 10% of the span)", NULL},
    {"--late-share", NULL, DRV_OPT_DOUBLE, PAR(late_share), 0, 1, "F",
     "worker_churn: share of workers joining late", NULL},
    {"--join-rate", NULL, DRV_OPT_DOUBLE, PAR(join_rate_per_h), 0, 1e6, "R",
     "late workers join at R per hour each", NULL},
    {"--leave-rate", NULL, DRV_OPT_DOUBLE, PAR(leave_rate_per_h), 0, 1e6, "R",
     "workers leave at R per hour each (worker_churn 2)", NULL},
    {"--crash-rate", NULL, DRV_OPT_DOUBLE, PAR(crash_rate_per_h), 0, 1e6, "R",
     "workers crash at R per hour each (worker_churn 2, failures 3)", NULL},
    {"--crash-down", NULL, DRV_OPT_DOUBLE, PAR(crash_down_s), -1, 1e9, "S",
     "a crashed worker is back after S s; -1 never", NULL},
    {"--flaky-share", NULL, DRV_OPT_DOUBLE, PAR(flaky_share), 0, 1, "F",
     "share of flaky tests (failures 0.05)", NULL},
    {"--flaky-p", NULL, DRV_OPT_DOUBLE, PAR(flaky_p), 0, 1, "F",
     "failure probability of a flaky test per run", NULL},
    {"--spread", NULL, DRV_OPT_DOUBLE, PAR(spread), 0, 0.95, "F",
     "run-to-run variation of true durations (second_run 0.15)", NULL},
    {"--sigma", NULL, DRV_OPT_DOUBLE, PAR(sigma), 0, 5, "F", "lognormal shape of test durations",
     NULL},
    {"--hangs", NULL, DRV_OPT_PARSE, PAR(hangs), 0, 1e6, "N",
     "stragglers: in the last run the first N tests the first worker starts hang "
     "(stragglers 3)",
     parse_size},
    {"--hang-s", NULL, DRV_OPT_DOUBLE, PAR(hang_s), 0, 1e9, "S",
     "stragglers: each takes S s more (stragglers 10)", NULL},
    {"--speculate", NULL, DRV_OPT_DOUBLE, ARG(speculate_s), 0, 1e6, "S",
     "speculation period, s (0.5, as the coordinator; none on --trace and "
     "--gpu-trace logs); 0 never",
     NULL},
    {"--ramp", NULL, DRV_OPT_DOUBLE, ARG(ramp_s), 0, 1e6, "S",
     "thermal warm-up ramp of cold workers, s (config's ramp_s; used when "
     "thermal.initial_share < 1; default 1: no ramp)",
     NULL},
    {"--heartbeat", NULL, DRV_OPT_DOUBLE, ARG(heartbeat_s), 0, 1e6, "S",
     "worker heartbeat period, s (1); 0 none", NULL},
    {"--rebalance", NULL, DRV_OPT_DOUBLE, ARG(rebalance_s), 0, 1e6, "S",
     "rebalancing period, s (1, as the coordinator); 0 never", NULL},
    {"--max-time", NULL, DRV_OPT_DOUBLE, ARG(max_time_s), 1, 1e12, "S",
     "virtual time limit per run (1e7 s)", NULL},
    {"--test-overhead", NULL, DRV_OPT_DOUBLE, ARG(test_overhead_s), 0, 1e6, "S",
     "seconds added to every test's run: a live worker's cost of starting a process and "
     "reporting its end (0)",
     NULL},
    /* real traces (N_TRACE_OPTS, last) */
    {"--trace", NULL, DRV_OPT_STRING, ARG(trace), 0, 0, "FILE[.gz]",
     "Standard Workload Format log (--machines FILE: an Alea .machines fleet; else --workers "
     "identical nodes as large as the largest job, 1 by default)",
     NULL},
    {"--machines", NULL, DRV_OPT_STRING, ARG(machines), 0, 0, "FILE",
     "the Alea .machines fleet of --trace", NULL},
    {"--durations", NULL, DRV_OPT_STRING, ARG(durations), 0, 0, "FILE",
     "test id -> seconds (pytest-split, knapsack) on --workers identical workers (8) of "
     "--slots slots (1)",
     NULL},
    {"--fleet", NULL, DRV_OPT_STRING, ARG(fleet), 0, 0, "GROUPS",
     "with --durations, this fleet instead: COUNTxSLOTS@SPEED[+JOIN] groups, comma-separated "
     "(\"2x2@1,2x2@0.333\"); each group a class of its own; workers announce speed 1 "
     "(bench/live.sh)",
     NULL},
    {"--gpu-trace", NULL, DRV_OPT_STRING, ARG(gpu_nodes), 0, 0, "NODES.csv PODS.csv",
     "the Alibaba GPU cluster trace (two files)", NULL},
    {"--strict", NULL, DRV_OPT_FLAG, ARG(strict), 0, 0, NULL,
     "refuse a file with a bad line (else skip and count them)", NULL},
    {"--max-tests", NULL, DRV_OPT_PARSE, ARG(max_tests), 0, 1e9, "N", "read at most N tests",
     parse_size},
    {"--slots", NULL, DRV_OPT_PARSE, ARG(slots), 1, 4096, "N",
     "slots of each --durations worker (1)", parse_size},
};
#define N_SIM_OPTS   (sizeof sim_opts / sizeof sim_opts[0])
#define N_TRACE_OPTS 8

void drv_cmd_sim_usage(FILE *out)
{
    size_t n_sc = 0, n_pol = 0;
    const drv_sim_scenario *sc = drv_sim_scenarios(&n_sc);
    const char *const *pol = drv_sim_policy_names(&n_pol);
    drv_sim_params d;
    drv_sim_params_default(&d);
    fprintf(out, "usage: drover sim [--scenario NAME] [--workers N] [--tests N] [--seed S]\n"
                 "                  [--policies all|a,b,c] [--json] [--html FILE] [options]\n"
                 "\n"
                 "Simulates a fleet and a suite on a virtual clock and runs every policy through\n"
                 "the real balancer (a fresh one per policy), next to two baselines that do not\n"
                 "use it, and reports makespan against the lower bound, waits, slowdown,\n"
                 "utilization, moves, retries and the balancer's placement speed.\n"
                 "\n"
                 "scenarios:\n");
    for (size_t i = 0; i < n_sc; i++)
        fprintf(out, "  %-14s %s\n", sc[i].name, sc[i].summary);
    fprintf(out, "\npolicies (--policies all runs these):\n ");
    for (size_t i = 0; i < n_pol; i++)
        fprintf(out, " %s", pol[i]);
    fprintf(out,
            "\n  and \"config\": the --config file's schedulers as they are. greedy: each test to\n"
            "  the eligible slot free first, true durations, no balancer. static_split:\n"
            "  pytest-split style shares packed on recorded durations (meant for identical\n"
            "  workers; it shows what a static split loses on a heterogeneous fleet).\n"
            "\n"
            "options (NAME VALUE or NAME=VALUE):\n");
    drv_opt_usage(out, sim_opts, N_SIM_OPTS - N_TRACE_OPTS);
    fprintf(out,
            "defaults: --workers %zu --tests %zu --seed %llu --load %g --spike-factor %g\n"
            "  --late-share %g --join-rate %g --crash-down %g --flaky-p %g --sigma %g\n"
            "  (a scenario changes some of them)\n"
            "\n"
            "Real traces (arrivals as recorded; --scenario burst or second_run):\n",
            d.workers, d.tests, (unsigned long long)d.seed, d.load, d.spike_factor, d.late_share,
            d.join_rate_per_h, d.crash_down_s, d.flaky_p, d.sigma);
    drv_opt_usage(out, sim_opts + N_SIM_OPTS - N_TRACE_OPTS, N_TRACE_OPTS);
    fprintf(out, "Exits 0 when every run finished, 1 when one did not or failed, 2 on a wrong\n"
                 "command line.\n");
}

/* A whole number o->min..o->max into a size_t. */
static int parse_size(const char *cmd, const drv_opt *o, const char *v, void *at)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || v[0] == '-' || errno != 0 || (double)n < o->min || (double)n > o->max) {
        fprintf(stderr, "drover %s: %s: expected an integer %.0f..%.0f, got \"%s\"\n", cmd, o->name,
                o->min, o->max, v);
        return -1;
    }
    *(size_t *)at = (size_t)n;
    return 0;
}

/* Reads the command line into a: the --gpu-trace's second file is the one word it may
 * have. Returns -1 when it is right, else the exit code after printing the problem. */
static int parse_all(int argc, char **argv, sim_args *a)
{
    const char *words[1];
    size_t n_words;
    int code =
        drv_opt_parse_words("sim", sim_opts, N_SIM_OPTS, a, NULL, argc, argv, words, 1, &n_words);
    if (code >= 0)
        return code;
    if (n_words && !a->gpu_nodes)
        return drv_cli_usage_error("sim", "unexpected argument", words[0]);
    if (a->gpu_nodes && !n_words) {
        fprintf(stderr, "drover sim: --gpu-trace needs two files: NODES.csv PODS.csv\n");
        return DRV_EXIT_USAGE;
    }
    if (n_words)
        a->gpu_pods = words[0];
    return -1;
}

/* Splits the --policies list into names (pointers into buf). Returns the count, or -1
 * after printing the unknown name. */
static int parse_policies(const char *list, char *buf, size_t len, const char **names)
{
    size_t n_all = 0;
    const char *const *all = drv_sim_policy_names(&n_all);
    if (!list || strcmp(list, "all") == 0) {
        for (size_t i = 0; i < n_all; i++)
            names[i] = all[i];
        return (int)n_all;
    }
    snprintf(buf, len, "%s", list);
    int n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        bool known = strcmp(tok, "config") == 0;
        for (size_t i = 0; i < n_all && !known; i++)
            known = strcmp(tok, all[i]) == 0;
        if (!known && drv_policy_kind_parse(tok) >= 0)
            known = true; /* an alias such as "performance" */
        if (!known) {
            fprintf(stderr, "drover sim: --policies: unknown policy \"%s\" (known: all, config",
                    tok);
            for (size_t i = 0; i < n_all; i++)
                fprintf(stderr, ", %s", all[i]);
            fprintf(stderr, ")\n");
            return -1;
        }
        if (n == POLICIES_MAX) {
            fprintf(stderr, "drover sim: --policies: more than %d names\n", POLICIES_MAX);
            return -1;
        }
        names[n++] = tok;
    }
    if (n == 0) {
        fprintf(stderr, "drover sim: --policies: empty list\n");
        return -1;
    }
    return n;
}

/* Writes the HTML report of rep to path (replacing the file). Returns 0, or -1 after
 * printing what failed. */
static int write_html(const char *path, const drv_sim_report *rep, bool timing)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "drover sim: --html: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    drv_error err = {{0}};
    int rc = drv_sim_report_html(f, rep, timing, &err);
    if (fclose(f) != 0 && rc == 0)
        rc = drv_error_set(&err, "HTML report: write failed");
    if (rc != 0)
        fprintf(stderr, "drover sim: --html %s: %s\n", path, err.msg);
    return rc;
}

int drv_cmd_sim(int argc, char **argv)
{
    sim_args a;
    memset(&a, 0, sizeof a);
    a.scenario = "burst";
    a.ramp_s = -1;
    a.heartbeat_s = -1;
    a.rebalance_s = -1;
    a.speculate_s = -1;
    a.max_time_s = -1;
    drv_sim_params_default(&a.p);
    /* First the scenario alone (a scratch copy takes the rest), then every option on top
     * of its defaults. */
    sim_args first = a;
    first.p.workers = 0; /* --workers takes 1 or more: still 0 when it was not given */
    int code = parse_all(argc, argv, &first);
    if (code >= 0)
        return code;
    a.scenario = first.scenario;
    bool workers_given = first.p.workers != 0; /* a trace's fleet defaults differently */
    const drv_sim_scenario *sc = drv_sim_scenario_find(a.scenario);
    if (!sc) {
        size_t n = 0;
        const drv_sim_scenario *all = drv_sim_scenarios(&n);
        fprintf(stderr, "drover sim: --scenario: unknown scenario \"%s\" (known:", a.scenario);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %s", all[i].name);
        fprintf(stderr, ")\n");
        return DRV_EXIT_USAGE;
    }
    sc->defaults(&a.p);
    if ((code = parse_all(argc, argv, &a)) >= 0)
        return code;
    char polbuf[1024];
    const char *names[POLICIES_MAX];
    int n_names = parse_policies(a.policies, polbuf, sizeof polbuf, names);
    if (n_names < 0)
        return DRV_EXIT_USAGE;

    drv_balancer_config cfg;
    drv_error err = {{0}};
    if (a.config) {
        if (drv_cli_load_config(a.config, &cfg, &err) != 0) {
            fprintf(stderr, "drover sim: %s\n", err.msg);
            return DRV_EXIT_FAILURE;
        }
    } else {
        drv_balancer_config_default(&cfg);
    }
    if (a.ramp_s >= 0)
        cfg.settings.thermal.ramp_s = a.ramp_s;

    drv_workload w;
    drv_workload_init(&w);
    drv_sim_options opt;
    if (a.trace || a.durations || a.gpu_nodes) {
        /* A real trace brings its own arrivals: burst means "as recorded", second_run
         * replays it twice; the other scenarios generate arrivals and do not apply. */
        if (strcmp(sc->name, "burst") != 0 && strcmp(sc->name, "second_run") != 0 &&
            strcmp(sc->name, "stragglers") != 0) {
            fprintf(stderr,
                    "drover sim: --scenario %s generates its own arrivals; with a trace use "
                    "burst (as recorded), second_run or stragglers\n",
                    sc->name);
            drv_workload_free(&w);
            return DRV_EXIT_USAGE;
        }
        drv_sim_trace_spec ts = {.swf = a.trace,
                                 .machines = a.machines,
                                 .durations = a.durations,
                                 .gpu_nodes = a.gpu_nodes,
                                 .gpu_pods = a.gpu_pods,
                                 .workers = workers_given ? a.p.workers : 0,
                                 .slots = (uint32_t)a.slots,
                                 .fleet = a.fleet};
        drv_trace_options topt = {.strict = a.strict, .max_tests = a.max_tests};
        if (drv_sim_load_trace(&ts, &w, &topt, &err) != 0) {
            fprintf(stderr, "drover sim: %s\n", err.msg);
            drv_workload_free(&w);
            return DRV_EXIT_FAILURE;
        }
        if (topt.skipped)
            fprintf(stderr,
                    "drover sim: skipped %zu bad line%s (first: %s); --strict refuses them\n",
                    topt.skipped, topt.skipped == 1 ? "" : "s", topt.first_skip);
        drv_sim_options_default(&opt);
        opt.seed = a.p.seed;
        opt.spread = a.p.spread;
        opt.runs = strcmp(sc->name, "burst") == 0 ? 1 : 2;
        /* A log spans months: heartbeats and rebalancing every virtual second would be
         * billions of events. Unless set, they come about 100,000 times over the span. */
        double span = 0;
        for (size_t i = 0; i < w.n_tests; i++)
            if (w.tests[i].arrival_s + w.tests[i].duration_s > span)
                span = w.tests[i].arrival_s + w.tests[i].duration_s;
        if (span / 1e5 > opt.heartbeat_s)
            opt.heartbeat_s = span / 1e5;
        if (span / 1e5 > opt.rebalance_s)
            opt.rebalance_s = span / 1e5;
        if (span / 1e5 > opt.speculate_s)
            opt.speculate_s = span / 1e5;
        /* A cluster log's jobs are batch jobs run once each: none has runs of its own, so
         * a job past its family's p90 is long by nature, not stuck, and its copy runs as
         * long as it and loses. On the full MetaCentrum log every one of composite's 61
         * copies lost, holding 142 M core-seconds that the 80-core jobs waited for (wait
         * p95 82,871 -> 184,469 s, greedy 119,203 s). No copies there unless --speculate. */
        if (a.trace || a.gpu_nodes)
            opt.speculate_s = 0;
        if (opt.max_time_s > 0 && opt.max_time_s < 4 * span)
            opt.max_time_s = 4 * span; /* room for the recorded span and the queueing */
    } else {
        sc->build(&a.p, &w, &opt);
    }
    if (a.heartbeat_s >= 0)
        opt.heartbeat_s = a.heartbeat_s;
    if (a.rebalance_s >= 0)
        opt.rebalance_s = a.rebalance_s;
    if (a.speculate_s >= 0)
        opt.speculate_s = a.speculate_s;
    opt.hang_count = (uint32_t)a.p.hangs; /* the scenario's default, or --hangs */
    opt.hang_s = a.p.hang_s;
    if (a.max_time_s > 0)
        opt.max_time_s = a.max_time_s;
    opt.timing = !a.no_timing;
    opt.test_overhead_s = a.test_overhead_s;

    drv_sim_report rep;
    memset(&rep, 0, sizeof rep);
    snprintf(rep.scenario, sizeof rep.scenario, "%s", sc->name);
    int rc = DRV_EXIT_OK;
    if (drv_sim_run_all(&w, &cfg, names, (size_t)n_names, &opt, &rep, &err) != 0) {
        fprintf(stderr, "drover sim: %s\n", err.msg);
        rc = DRV_EXIT_FAILURE;
    } else {
        if (a.json) {
            char *text = drv_sim_report_json(&rep, opt.timing);
            printf("%s\n", text);
            free(text);
            if (opt.timing && rep.wall_s > 0)
                fprintf(stderr, "drover sim: simulated %llu events in %.2f s (%.0f events/s)\n",
                        (unsigned long long)rep.events, rep.wall_s,
                        (double)rep.events / rep.wall_s);
        } else {
            drv_sim_report_print(stdout, &rep, opt.timing);
        }
        if (a.html && write_html(a.html, &rep, opt.timing) != 0)
            rc = DRV_EXIT_FAILURE;
        for (size_t k = 0; k < rep.n_results; k++) {
            if (rep.results[k].unfinished > 0) {
                fprintf(stderr, "drover sim: %s run %u left %llu tests unfinished\n",
                        rep.results[k].policy, rep.results[k].run,
                        (unsigned long long)rep.results[k].unfinished);
                rc = DRV_EXIT_FAILURE;
            }
        }
    }
    drv_sim_report_free(&rep);
    drv_workload_free(&w);
    return rc;
}
