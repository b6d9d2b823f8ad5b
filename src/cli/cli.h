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

#include <stddef.h>
#include <stdio.h>

#include "balancer/config.h"
#include "core/error.h"

#define DRV_EXIT_OK      0
#define DRV_EXIT_FAILURE 1
#define DRV_EXIT_USAGE   2

/* Largest file the cli reads whole (configs, fleets, suites). */
#define DRV_CLI_FILE_MAX (64u * 1024u * 1024u)

/* ---- commands: argv[0] is the command's name, argv[argc] is NULL ---- */

/* `drover demo`: the balancer demonstration (cmd_demo.c). */
int drv_cmd_demo(int argc, char **argv);
/* Prints the usage of `drover demo` to out. */
void drv_cmd_demo_usage(FILE *out);
/* drover worker --probe (cmd_worker_probe.c); the worker itself comes with the coordinator. */
int drv_cmd_worker_probe(int argc, char **argv);
void drv_cmd_worker_probe_usage(FILE *out);

/* `drover sim` (cmd_sim.c): policies side by side on a simulated fleet; and its usage. */
int drv_cmd_sim(int argc, char **argv);
void drv_cmd_sim_usage(FILE *out);

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
