/* cli.h - what the files of the `drover` binary share.
 *
 * main.c holds the subcommand table and dispatch (git style: `drover <command> [args]`),
 * the `explain-config` command, and the few file helpers every command needs (reading
 * a file whole, loading a balancer config from a file). Each other command lives in
 * its own cmd_<name>.c and exposes a run function and a usage printer.
 *
 * Exit codes of every command: 0 success, 1 the command failed (bad input file, a run
 * that did not finish), 2 the command line was wrong (unknown command or option). */
#ifndef DRV_CLI_CLI_H
#define DRV_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "balancer/config.h"
#include "core/error.h"

#define DRV_EXIT_OK      0
#define DRV_EXIT_FAILURE 1
#define DRV_EXIT_USAGE   2
#define DRV_EXIT_INFRA   3 /* the coordinator or a tool it needs cannot be used */
#define DRV_EXIT_TIMEOUT 4 /* a wait ran out of time */

/* Largest file the cli reads whole (configs, fleets, suites). */
#define DRV_CLI_FILE_MAX (64u * 1024u * 1024u)

/* ---- commands: argv[0] is the command's name, argv[argc] is NULL ---- */

/* `drover demo`: the balancer demonstration (cmd_demo.c). */
int drv_cmd_demo(int argc, char **argv);
/* Prints the usage of `drover demo` to out. */
void drv_cmd_demo_usage(FILE *out);
/* `drover worker` (cmd_worker.c): a worker connected to a coordinator, or --probe; and
 * its usage. */
int drv_cmd_worker(int argc, char **argv);
void drv_cmd_worker_usage(FILE *out);

/* `drover sim` (cmd_sim.c): policies side by side on a simulated fleet; and its usage. */
int drv_cmd_sim(int argc, char **argv);
void drv_cmd_sim_usage(FILE *out);

/* ---- clients of a coordinator's REST API (docs/api.md) ---- */

/* `drover submit` and `drover run` (submit, then wait) (cmd_submit.c). */
int drv_cmd_submit(int argc, char **argv);
void drv_cmd_submit_usage(FILE *out);
int drv_cmd_run(int argc, char **argv);
void drv_cmd_run_usage(FILE *out);
/* `drover status` (cmd_status.c), `wait` (cmd_wait.c), `cancel` (cmd_cancel.c),
 * `explain` (cmd_explain.c). */
int drv_cmd_status(int argc, char **argv);
void drv_cmd_status_usage(FILE *out);
int drv_cmd_wait(int argc, char **argv);
void drv_cmd_wait_usage(FILE *out);
int drv_cmd_cancel(int argc, char **argv);
void drv_cmd_cancel_usage(FILE *out);
int drv_cmd_explain(int argc, char **argv);
void drv_cmd_explain_usage(FILE *out);
/* The views of `drover status` (status_views.c), each from the API's answer, written to
 * out; `drover top` redraws them. Each returns DRV_EXIT_OK. */
int drv_cli_show_overview(FILE *out, const json_t *status, const char *url);
int drv_cli_show_run(FILE *out, const json_t *run);
int drv_cli_show_workers(FILE *out, const json_t *workers_answer);
struct drv_run_counts; /* client/client.h */
/* Writes a run's counts as "37 passed, 2 failed, 1 timed out" (zero counts left out,
 * final states first; "no tests" when all are zero) into buf. */
void drv_cli_format_counts(const struct drv_run_counts *rc, char *buf, size_t len);
/* Prints each line of text (its last max_lines) indented as "      | LINE"; nothing for
 * NULL. */
void drv_cli_print_output(FILE *out, const char *text, size_t max_lines);
/* Writes seconds as "12.5 s", "3 min 20 s" or "2 h 5 min" into buf. */
void drv_cli_format_span(double s, char *buf, size_t len);
/* Writes a time since the Unix epoch as "2025-11-23 12:13:20 UTC" ("?" when unknown). */
void drv_cli_format_time(double t, char *buf, size_t len);

/* `drover top`: the terminal dashboard (cmd_top.c). */
int drv_cmd_top(int argc, char **argv);
void drv_cmd_top_usage(FILE *out);

/* `drover fleet drain|clear NAME...`: operator actions on workers (cmd_fleet.c). */
int drv_cmd_fleet(int argc, char **argv);
void drv_cmd_fleet_usage(FILE *out);
/* `drover report` (cmd_report.c): JUnit XML and JSON reports of a run. */
int drv_cmd_report(int argc, char **argv);
void drv_cmd_report_usage(FILE *out);

struct drv_client; /* client/client.h */

/* How a client command reaches the coordinator: --url, --token, --request-timeout. */
typedef struct drv_cli_conn {
    const char *url;          /* NULL: $DROVER_URL, else http://127.0.0.1:7070 */
    const char *token;        /* NULL: $DROVER_TOKEN, else none */
    double request_timeout_s; /* 0: the client's default */
    const char *ca_file;      /* NULL: $DROVER_CA, else the system's CAs */
} drv_cli_conn;

/* Opens the client for conn. NULL after printing "drover CMD: ..." (a bad URL).
 * (client_args.c, as the functions below up to drv_cli_print_json) */
struct drv_client *drv_cli_connect(const drv_cli_conn *conn, const char *cmd);
/* Parses a test or run id (a positive integer) into *out. -1 after printing
 * "drover CMD: WHAT \"x\": expected a positive integer". */
int drv_cli_parse_id(const char *cmd, const char *what, const char *s, uint64_t *out);
/* Prints "drover CMD: WHAT \"ARG\" (see drover CMD --help)" (ARG may be NULL) to stderr
 * and returns DRV_EXIT_USAGE. */
int drv_cli_usage_error(const char *cmd, const char *what, const char *arg);
/* Prints "drover CMD: " and err's message to stderr and returns DRV_EXIT_FAILURE. */
int drv_cli_request_failed(const char *cmd, const drv_error *err);
/* Prints an answer as indented JSON (keys in order) on stdout. */
void drv_cli_print_json(const json_t *j);
/* Waits until run run_id is done, polling the coordinator (and riding out a restart of
 * it for up to a minute). Progress goes to stderr: one line rewritten in place on a
 * terminal, a line now and then otherwise, nothing when quiet. Then the run's summary and
 * its tests that did not pass (with the end of their output) go to stdout. timeout_s 0
 * waits without limit. With json the result is the run's answer (GET /api/v1/runs/ID) on
 * stdout instead, with "timed_out" when the wait ran out. Returns DRV_EXIT_OK when every
 * test passed, DRV_EXIT_FAILURE when one did not, DRV_EXIT_TIMEOUT after timeout_s (after
 * saying so; the run goes on), DRV_EXIT_INFRA when the coordinator is gone. (cmd_wait.c) */
int drv_cli_wait_run(struct drv_client *c, const char *cmd, uint64_t run_id, double timeout_s,
                     bool quiet, bool json);

/* ---- the table-driven option parser (options.c) ---- */

typedef enum drv_opt_kind {
    DRV_OPT_FLAG,   /* bool */
    DRV_OPT_STRING, /* const char *, the last one given */
    DRV_OPT_LIST,   /* drv_opt_list: every one given, in order */
    DRV_OPT_UINT,   /* uint64_t within [min, max] */
    DRV_OPT_DOUBLE, /* double within [min, max] */
    DRV_OPT_PARSE,  /* the option's own parse function reads the value into its field */
} drv_opt_kind;

#define DRV_OPT_LIST_MAX 32
typedef struct drv_opt_list {
    const char *v[DRV_OPT_LIST_MAX];
    size_t n;
} drv_opt_list;

struct drv_opt;
/* A DRV_OPT_PARSE option's reader: stores value into the field at `at` (an option
 * without a value name is a switch: value is NULL). Returns 0, or -1
 * after printing "drover CMD: --name: expected ..., got \"value\"" to stderr. */
typedef int (*drv_opt_parse_fn)(const char *cmd, const struct drv_opt *o, const char *value,
                                void *at);

/* One option of a command: "--name VALUE", "--name=VALUE" or "ALIAS VALUE". */
typedef struct drv_opt {
    const char *name;  /* "--build-dir" */
    const char *alias; /* "-L", or NULL */
    drv_opt_kind kind;
    size_t offset;     /* of the field in the command's argument struct */
    double min, max;   /* numbers: the accepted range */
    const char *value; /* the value's name in the usage ("DIR"); NULL for a flag */
    const char *help;
    drv_opt_parse_fn parse; /* DRV_OPT_PARSE: reads the value; NULL for the other kinds */
} drv_opt;

/* Readers for DRV_OPT_PARSE options that several commands share (options.c): */
/* seconds > 0 (at most o->max when it is > 0) into a double */
int drv_opt_seconds(const char *cmd, const drv_opt *o, const char *value, void *at);
/* seconds > 0 into a double, or "never": -1 */
int drv_opt_seconds_or_never(const char *cmd, const drv_opt *o, const char *value, void *at);
/* "text" or "json" into a bool (true for json) */
int drv_opt_log_format(const char *cmd, const drv_opt *o, const char *value, void *at);

/* Reads options from argv[1..] into args by the table (and the connection options into
 * conn when not NULL) until "--" or the first word that is not an option; *rest is the
 * index of the first word left (after "--" when there was one; argc when none). Returns
 * -1 when the command line is right so far, else the exit code after printing what is
 * wrong ("drover CMD: --x: expected an integer 1..64, got \"y\""). */
int drv_opt_parse(const char *cmd, const drv_opt *opts, size_t n, void *args, drv_cli_conn *conn,
                  int argc, char **argv, int *rest);
/* As drv_opt_parse, with options and words in any order: the words (not options; every
 * word after "--") go to words[0..*n_words), at most max_words (one more is refused as
 * unexpected). Returns -1 when the command line is right, else the exit code. */
int drv_opt_parse_words(const char *cmd, const drv_opt *opts, size_t n, void *args,
                        drv_cli_conn *conn, int argc, char **argv, const char **words,
                        size_t max_words, size_t *n_words);
/* As drv_opt_parse_words, but "--" ends drover's words: *command is the index of the word
 * after it (argc when there is no "--"). */
int drv_opt_parse_command(const char *cmd, const drv_opt *opts, size_t n, void *args,
                          drv_cli_conn *conn, int argc, char **argv, const char **words,
                          size_t max_words, size_t *n_words, int *command);
/* The usage lines of a table: "  -L, --label REGEX        help". */
void drv_opt_usage(FILE *out, const drv_opt *opts, size_t n);
/* "connection:" and the usage lines of the connection options (every client command's
 * --help). */
void drv_opt_conn_usage(FILE *out);

/* The exit code of a request to the coordinator that failed: DRV_EXIT_INFRA when it did
 * not answer, failed itself or refused the token, DRV_EXIT_USAGE when it refused the
 * request as wrong. (exit_codes.c) */
int drv_cli_request_failure_code(const struct drv_client *c);
/* Polls run run_id until it is done and prints a line per test as it becomes final
 * ("passed    name (1.20 s, on w1)"). Returns DRV_EXIT_OK once done, DRV_EXIT_TIMEOUT
 * after timeout_s (> 0), or the request's failure code after printing why.
 * (run_follow.c) */
int drv_cli_follow_run(struct drv_client *c, const char *cmd, uint64_t run_id, double timeout_s);
/* Runs argv (looked up in PATH) in directory dir (NULL: here) with stdout captured,
 * stderr passed through. Returns 0 with *out (NUL-terminated, the caller frees), *len and
 * the exit *status (128 + signal when killed), or -1 with err when it cannot start at
 * all. (child_output.c) */
int drv_cli_capture(char *const argv[], const char *dir, char **out, size_t *len, int *status,
                    drv_error *err);
/* Writes run run_id's JUnit report to junit and its JSON report to json_path (either may
 * be NULL; "-" is stdout), as `drover report` does. Returns 0, or -1 after printing
 * "drover CMD: ...". (cmd_report.c) */
int drv_cli_write_reports(struct drv_client *c, const char *cmd, uint64_t run_id, const char *junit,
                          const char *json_path);

/* `drover judge` (cmd_judge.c): runs a command and decides pass, fail or skip from its
 * exit code and output the way CTest does (the wrapper of `drover ctest`). */
int drv_cmd_judge(int argc, char **argv);
void drv_cmd_judge_usage(FILE *out);
/* `drover runs` (cmd_runs.c): the coordinator's runs, most recent first. */
int drv_cmd_runs(int argc, char **argv);
void drv_cmd_runs_usage(FILE *out);
/* `drover pytest` (cmd_pytest.c): a pytest suite run in batches, a result per test. */
int drv_cmd_pytest(int argc, char **argv);
void drv_cmd_pytest_usage(FILE *out);
/* `drover ctest` (cmd_ctest.c): a CTest suite submitted as one run, and waited for. */
int drv_cmd_ctest(int argc, char **argv);
void drv_cmd_ctest_usage(FILE *out);

/* `drover stress` (cmd_stress.c): fake workers over the real protocol against a
 * coordinator (started or attached), with throughput, latency and memory; its usage. */
int drv_cmd_stress(int argc, char **argv);
void drv_cmd_stress_usage(FILE *out);

/* `drover coordinator` (cmd_coordinator.c): serve until SIGINT/SIGTERM; and its usage. */
int drv_cmd_coordinator(int argc, char **argv);
void drv_cmd_coordinator_usage(FILE *out);

/* ---- helpers (main.c) ---- */

/* Reads the whole file at path into a new NUL-terminated buffer (the caller frees it)
 * and stores its length (without the NUL) in *len. Returns NULL with err filled
 * ("examples/fleet.json: cannot open: No such file or directory") when the file cannot
 * be opened or read, is a directory, or is larger than DRV_CLI_FILE_MAX. */
char *drv_cli_read_file(const char *path, size_t *len, drv_error *err);

/* Reads and parses the balancer config file at path into cfg. On error returns -1,
 * leaves cfg at the defaults, and err holds the file name followed by every problem
 * the parser found ("b.json: settings.prefetch_max: must be ..."). */
int drv_cli_load_config(const char *path, drv_balancer_config *cfg, drv_error *err);

/* Writes a scheduler as a user reads it: "round_robin", or for a composite
 * "composite (performance_based 0.5, resource_aware 0.3, affinity 0.2)", the weights
 * in the order of drv_policy_kind. Always NUL-terminates buf (len > 0). */
void drv_cli_describe_policy(const drv_policy_spec *spec, char *buf, size_t len);

#endif
