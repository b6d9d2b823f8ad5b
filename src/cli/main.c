/* main.c - the `drover` binary: git-style subcommand dispatch, `explain-config`, and the
 * file helpers the commands share (see cli.h).
 *
 *   drover --help | drover help [COMMAND]   the list of commands, or one command's usage
 *   drover COMMAND --help                   that command's usage
 *   drover COMMAND [ARGS]                   runs it; an unknown command exits 2 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/analyzer.h"

#ifndef DRV_GIT_REV
#define DRV_GIT_REV "unknown"
#endif
#define DRV_VERSION_TEXT "0.4.0-dev"

/* ---- file helpers ---------------------------------------------------------------- */

char *drv_cli_read_file(const char *path, size_t *len, drv_error *err)
{
    if (!path || !*path) {
        drv_error_set(err, "no file name given");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        drv_error_set(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        drv_error_set(err, "%s: is a directory, expected a file", path);
        return NULL;
    }
    /* Owned by the caller on success (freed here on every error path). */
    size_t cap = 4096, n = 0;
    char *buf = drv_xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= DRV_CLI_FILE_MAX) {
                free(buf);
                fclose(f);
                drv_error_set(err, "%s: larger than %u MiB", path, DRV_CLI_FILE_MAX >> 20);
                return NULL;
            }
            cap *= 2;
            buf = drv_xrealloc(buf, cap);
        }
        size_t k = fread(buf + n, 1, cap - 1 - n, f);
        n += k;
        if (k == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        fclose(f);
        drv_error_set(err, "%s: cannot read: %s", path, strerror(e));
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

int drv_cli_load_config(const char *path, drv_balancer_config *cfg, drv_error *err)
{
    drv_balancer_config_default(cfg);
    size_t len = 0;
    char *text = drv_cli_read_file(path, &len, err);
    if (!text)
        return -1;
    int rc = drv_balancer_config_parse(text, len, cfg, err);
    free(text);
    if (rc != 0)
        return drv_error_prefix(err, "%s", path);
    return 0;
}

void drv_cli_describe_policy(const drv_policy_spec *spec, char *buf, size_t len)
{
    if (len == 0)
        return;
    int off = snprintf(buf, len, "%s", drv_policy_kind_name(spec->kind));
    if (spec->kind != DRV_POLICY_COMPOSITE)
        return;
    const char *sep = " (";
    for (int k = 0; k < DRV_POLICY_SINGLE_COUNT; k++) {
        if (!(spec->weights[k] > 0))
            continue;
        if (off < 0 || (size_t)off >= len)
            return;
        off += snprintf(buf + off, len - (size_t)off, "%s%s %g", sep,
                        drv_policy_kind_name((drv_policy_kind)k), spec->weights[k]);
        sep = ", ";
    }
    if (off >= 0 && (size_t)off < len)
        snprintf(buf + off, len - (size_t)off, ")");
}

/* ---- explain-config -------------------------------------------------------------- */

/* Prints the usage of `drover explain-config` to out. */
static void explain_config_usage(FILE *out)
{
    fprintf(out, "usage: drover explain-config FILE\n"
                 "\n"
                 "Parses the balancer configuration FILE (JSON: default_scheduler,\n"
                 "test_type_schedulers, model_family_schedulers, settings; see docs/balancer.md).\n"
                 "Prints \"ok\" and the resolved schedulers and settings, or every problem found,\n"
                 "one per line, each naming its key. Exits 0 when the file is valid, 1 when it\n"
                 "is not, 2 on a wrong command line.\n");
}

/* Prints every setting of cfg, defaults included, so a user sees what is in force. */
static void print_settings(const drv_balancer_settings *s)
{
    const drv_thermal_config *t = &s->thermal;
    printf("settings:\n"
           "  aging_interval_s %g, length_aging %g, prefetch_max %u, batch_target_s %g,\n"
           "  migration_cost_s %g, steal_holdoff_s %g, unschedulable_grace_s %g, quarantine_after "
           "%u\n",
           s->aging_interval_s, s->length_aging, s->prefetch_max, s->batch_target_s,
           s->migration_cost_s, s->steal_holdoff_s, s->unschedulable_grace_s, s->quarantine_after);
    printf("  idle_move_cost_s %g\n", s->idle_move_cost_s);
    printf("  speculation %s, speculation_margin %g, speculation_min_s %g\n",
           s->speculation ? "true" : "false", s->speculation_margin, s->speculation_min_s);
    printf("  backend_speed_prior %s\n", s->backend_speed_prior ? "true" : "false");
    printf("  thermal: ramp_s %g, initial_share %g, cpu_pressure_limit %g,\n"
           "  memory_pressure_limit %g, freq_ratio_limit %g, overload_sustain_s %g,\n"
           "  error_threshold %u, temperature_limit_c %g, cooling_share %g, cooldown_s %g,\n"
           "  idle_cold_s %g\n",
           t->ramp_s, t->initial_share, t->cpu_pressure_limit, t->memory_pressure_limit,
           t->freq_ratio_limit, t->overload_sustain_s, t->error_threshold, t->temperature_limit_c,
           t->cooling_share, t->cooldown_s, t->idle_cold_s);
}

/* `drover explain-config FILE`: exit 0 and the resolved config, or exit 1 and the
 * problems (one per line on stderr), or 2 without exactly one FILE argument. */
static int cmd_explain_config(int argc, char **argv)
{
    static const drv_opt no_options[1]; /* none: the parser names an unknown one */
    const char *words[1];
    size_t n_words;
    int code = drv_opt_parse_words("explain-config", no_options, 0, NULL, NULL, argc, argv, words,
                                   1, &n_words);
    if (code >= 0)
        return code;
    if (n_words != 1) {
        fprintf(stderr, "drover explain-config: expected exactly one FILE argument\n");
        explain_config_usage(stderr);
        return DRV_EXIT_USAGE;
    }
    const char *path = words[0];
    drv_balancer_config cfg;
    drv_error err = {{0}};
    size_t len = 0;
    char *text = drv_cli_read_file(path, &len, &err);
    if (!text) {
        fprintf(stderr, "drover explain-config: %s\n", err.msg);
        return DRV_EXIT_FAILURE;
    }
    int rc = drv_balancer_config_parse(text, len, &cfg, &err);
    free(text);
    if (rc != 0) {
        /* The parser joins its problems with "; ": one per line reads better. */
        unsigned count = 1;
        for (const char *p = strstr(err.msg, "; "); p; p = strstr(p + 2, "; "))
            count++;
        fprintf(stderr, "%s: %u problem%s:\n", path, count, count == 1 ? "" : "s");
        const char *p = err.msg;
        for (;;) {
            const char *end = strstr(p, "; ");
            int n = end ? (int)(end - p) : (int)strlen(p);
            fprintf(stderr, "  %.*s\n", n, p);
            if (!end)
                break;
            p = end + 2;
        }
        return DRV_EXIT_FAILURE;
    }

    char buf[256];
    printf("%s: ok\n", path);
    drv_cli_describe_policy(&cfg.default_policy, buf, sizeof buf);
    printf("default scheduler: %s\n", buf);
    for (uint32_t i = 0; i < cfg.n_test_types; i++) {
        drv_cli_describe_policy(&cfg.test_types[i].spec, buf, sizeof buf);
        printf("test type \"%s\": %s\n", cfg.test_types[i].name, buf);
    }
    for (int f = 1; f < DRV_FAMILY_MAX; f++) {
        if (!cfg.family_set[f])
            continue;
        drv_cli_describe_policy(&cfg.family_policy[f], buf, sizeof buf);
        printf("model family \"%s\": %s\n", drv_family_get(f)->name, buf);
    }
    printf("a test uses its model family's scheduler if listed, else its test type's, else "
           "the default\n");
    print_settings(&cfg.settings);
    return DRV_EXIT_OK;
}

/* ---- dispatch -------------------------------------------------------------------- */

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
    void (*usage)(FILE *out);
} cli_command;

static const cli_command commands[] = {
    {"cancel", "cancel tests, or every unfinished test of a run", drv_cmd_cancel,
     drv_cmd_cancel_usage},
    {"coordinator", "run the coordinator: queue, balancer, REST API, worker channel, store",
     drv_cmd_coordinator, drv_cmd_coordinator_usage},
    {"ctest", "submit a CTest suite (a build directory) as one run and wait for it", drv_cmd_ctest,
     drv_cmd_ctest_usage},
    {"demo", "run the balancer on a sample fleet and suite, twice, on a virtual clock",
     drv_cmd_demo, drv_cmd_demo_usage},
    {"explain", "say why a queued test is not running", drv_cmd_explain, drv_cmd_explain_usage},
    {"explain-config", "check a balancer config file and show what it resolves to",
     cmd_explain_config, explain_config_usage},
    {"fleet", "operator actions on workers: drain, clear a quarantine", drv_cmd_fleet,
     drv_cmd_fleet_usage},
    {"judge", "run a command and judge it as CTest would (what drover ctest runs)", drv_cmd_judge,
     drv_cmd_judge_usage},
    {"pytest", "run a pytest suite in batches on the fleet, a result per test", drv_cmd_pytest,
     drv_cmd_pytest_usage},
    {"report", "write a run's report: JUnit XML (--junit FILE), JSON (--json FILE)", drv_cmd_report,
     drv_cmd_report_usage},
    {"run", "submit tests and wait for them, with a progress line", drv_cmd_run, drv_cmd_run_usage},
    {"runs", "list the coordinator's runs, most recent first", drv_cmd_runs, drv_cmd_runs_usage},
    {"sim", "compare scheduling policies on a simulated fleet and suite", drv_cmd_sim,
     drv_cmd_sim_usage},
    {"status", "the coordinator, a run (RUN), the workers (--workers) or a test (--test ID)",
     drv_cmd_status, drv_cmd_status_usage},
    {"stress", "load-test a coordinator with fake workers over the real protocol", drv_cmd_stress,
     drv_cmd_stress_usage},
    {"submit", "submit tests: a JSON/JSONL file, or -- a command with requirement flags",
     drv_cmd_submit, drv_cmd_submit_usage},
    {"top", "the terminal dashboard: the coordinator, runs and workers, live", drv_cmd_top,
     drv_cmd_top_usage},
    {"wait", "wait for a run; exit 0 only if every test passed", drv_cmd_wait, drv_cmd_wait_usage},
    {"worker", "run a worker; --probe prints what this machine offers, as JSON", drv_cmd_worker,
     drv_cmd_worker_usage},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* The command called name, or NULL. */
static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Prints the list of commands with their one-line summaries. */
static void main_usage(FILE *out)
{
    fprintf(out, "usage: drover COMMAND [ARGS]\n"
                 "\n"
                 "drover runs a test suite across a fleet of heterogeneous machines.\n"
                 "\n"
                 "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-16s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n"
                 "`drover COMMAND --help` or `drover help COMMAND` shows a command's usage;\n"
                 "`drover --version` the version. Exit codes of the client commands: 0 passed,\n"
                 "1 tests failed, 2 usage or bad input, 3 coordinator unreachable or another\n"
                 "infrastructure failure, 4 timed out.\n");
}

static int is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* Reports an unknown command on stderr; returns the usage exit code. */
static int unknown_command(const char *name)
{
    fprintf(stderr, "drover: unknown command \"%s\"; known commands:", name);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(stderr, " %s", commands[i].name);
    fprintf(stderr, " (see drover --help)\n");
    return DRV_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        main_usage(stderr);
        return DRV_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("drover %s (git %s)\n", DRV_VERSION_TEXT, DRV_GIT_REV);
        return DRV_EXIT_OK;
    }
    if (is_help(name) || strcmp(name, "help") == 0) {
        if (strcmp(name, "help") == 0 && argc >= 3) {
            const cli_command *c = find_command(argv[2]);
            if (!c)
                return unknown_command(argv[2]);
            c->usage(stdout);
            return DRV_EXIT_OK;
        }
        main_usage(stdout);
        return DRV_EXIT_OK;
    }
    const cli_command *c = find_command(name);
    if (!c)
        return unknown_command(name);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break; /* what follows is a test's command line, not drover's */
        if (is_help(argv[i])) {
            c->usage(stdout);
            return DRV_EXIT_OK;
        }
    }
    return c->run(argc - 1, argv + 1);
}
