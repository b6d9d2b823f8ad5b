/* cmd_coordinator.c - `drover coordinator`: serves the REST API and the worker channel
 * until SIGINT or SIGTERM (see src/coordinator/coordinator.h). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "coordinator/coordinator.h"
#include "core/heap.h"

/* The heap grows in steps of this much (core/heap.h). */
#define HEAP_PAD (256u * 1024u * 1024u)

/* The command line: the coordinator's options plus what only the command uses. */
typedef struct coordinator_args {
    drv_coordinator_options o;
    const char *config, *port_file;
} coordinator_args;

static int parse_retention(const char *cmd, const drv_opt *opt, const char *v, void *at);
static int parse_days(const char *cmd, const drv_opt *opt, const char *v, void *at);
static int parse_max_body(const char *cmd, const drv_opt *opt, const char *v, void *at);
static int parse_program(const char *cmd, const drv_opt *opt, const char *v, void *at);

#define CA(f) offsetof(coordinator_args, f)
static const drv_opt coordinator_opts[] = {
    {"--listen", NULL, DRV_OPT_STRING, CA(o.listen), 0, 0, "HOST:PORT",
     "address to serve (default " DRV_COORDINATOR_DEFAULT_LISTEN "; port 0: any free port)", NULL},
    {"--db", NULL, DRV_OPT_STRING, CA(o.db_path), 0, 0, "FILE",
     "the store (default ./" DRV_COORDINATOR_DEFAULT_DB ")", NULL},
    {"--config", NULL, DRV_OPT_STRING, CA(config), 0, 0, "FILE",
     "balancer configuration (see drover explain-config)", NULL},
    {"--client-token", NULL, DRV_OPT_STRING, CA(o.client_token), 0, 0, "T",
     "token for submitting and cancelling (env DROVER_CLIENT_TOKEN)", NULL},
    {"--worker-token", NULL, DRV_OPT_STRING, CA(o.worker_token), 0, 0, "T",
     "token workers present (env DROVER_WORKER_TOKEN)", NULL},
    {"--open-read", NULL, DRV_OPT_FLAG, CA(o.open_read), 0, 0, NULL, "reading (GET) needs no token",
     NULL},
    {"--read-token", NULL, DRV_OPT_STRING, CA(o.read_token), 0, 0, "T",
     "token for reading only (GET, /metrics, the dashboard); env DROVER_READ_TOKEN", NULL},
    {"--metrics-retention", NULL, DRV_OPT_PARSE, CA(o.metrics_retention_s), 0, 0, "D",
     "keep the metrics history D (e.g. 7d, 12h, 3600; 0 or forever: no limit; default 14d, as "
     "--retention)",
     parse_retention},
    {"--tails-retention", NULL, DRV_OPT_PARSE, CA(o.tails_retention_s), 0, 0, "D",
     "remove the output of attempts older than D, also in runs still open (e.g. 3d, 12h; "
     "forever: keep; default: as --retention)",
     parse_retention},
    {"--tls-cert", NULL, DRV_OPT_STRING, CA(o.tls_cert), 0, 0, "FILE",
     "serve HTTPS and WSS with this PEM certificate (with --tls-key)", NULL},
    {"--tls-key", NULL, DRV_OPT_STRING, CA(o.tls_key), 0, 0, "FILE", "the PEM key of --tls-cert",
     NULL},
    {"--heartbeat-interval", NULL, DRV_OPT_PARSE, CA(o.heartbeat_interval_s), 0, 86400, "S",
     "heartbeat period told to workers (default 1)", drv_opt_seconds},
    {"--heartbeat-timeout", NULL, DRV_OPT_PARSE, CA(o.heartbeat_timeout_s), 0, 86400, "S",
     "a silent worker is lost after S seconds (default 3)", drv_opt_seconds},
    {"--recovery-grace", NULL, DRV_OPT_PARSE, CA(o.recovery_grace_s), 0, 86400, "S",
     "after a restart, wait S seconds for workers to report what they still run (default "
     "10)",
     drv_opt_seconds},
    {"--forget-workers-after", NULL, DRV_OPT_PARSE, CA(o.forget_workers_s), 0, 86400, "S|never",
     "forget a lost or left worker S seconds after it went (default 3600)",
     drv_opt_seconds_or_never},
    {"--probe-interval", NULL, DRV_OPT_PARSE, CA(o.probe_interval_s), 0, 86400, "S|never",
     "probe a quarantined worker every S seconds; a probe that passes clears the quarantine "
     "(default 30)",
     drv_opt_seconds_or_never},
    {"--probe-command", NULL, DRV_OPT_PARSE, CA(o.probe_command), 0, 0, "PROGRAM",
     "what the probe runs on the worker, without arguments; exit status 0 passes (default: "
     "true)",
     parse_program},
    {"--max-body", NULL, DRV_OPT_PARSE, CA(o.max_body), 0, 0, "BYTES",
     "largest request body (default 64 MiB; at least 1024)", parse_max_body},
    {"--retention", NULL, DRV_OPT_PARSE, CA(o.retention_days), 0, 0, "DAYS|forever",
     "remove finished runs (their tests, attempts and output), events and metrics samples "
     "older than DAYS (default 14; fractions allowed)",
     parse_days},
    {"--auth-timeout", NULL, DRV_OPT_PARSE, CA(o.auth_timeout_s), 0, 86400, "S",
     "close a worker or dashboard connection that has not authenticated after S seconds "
     "(default 10)",
     drv_opt_seconds},
    {"--sync-full", NULL, DRV_OPT_FLAG, CA(o.sync_full), 0, 0, NULL,
     "fsync every commit (survives power loss; slower)", NULL},
    {"--port-file", NULL, DRV_OPT_STRING, CA(port_file), 0, 0, "FILE",
     "write the port once listening (for scripts)", NULL},
    {"--quiet", NULL, DRV_OPT_FLAG, CA(o.quiet), 0, 0, NULL,
     "no info lines (warnings and errors still)", NULL},
    {"--log-format", NULL, DRV_OPT_PARSE, CA(o.log_json), 0, 0, "text|json",
     "log lines as text (default) or one JSON object each (time, level, source, msg)",
     drv_opt_log_format},
};
#define N_COORDINATOR_OPTS (sizeof coordinator_opts / sizeof coordinator_opts[0])

void drv_cmd_coordinator_usage(FILE *out)
{
    fprintf(out, "usage: drover coordinator [OPTIONS]\n"
                 "\n"
                 "Runs the coordinator: the queue, the balancer, the REST API (docs/api.md) and\n"
                 "the worker channel (docs/protocol.md), with every state change kept in an\n"
                 "SQLite file. Stops on SIGINT or SIGTERM; a restart on the same file recovers\n"
                 "every accepted test.\n"
                 "\n");
    drv_opt_usage(out, coordinator_opts, N_COORDINATOR_OPTS);
}

/* --retention: days > 0 (fractions allowed, at most 100 years), or "forever" (0). */
static int parse_days(const char *cmd, const drv_opt *opt, const char *v, void *at)
{
    char *end = NULL;
    double d = strtod(v, &end);
    if (strcmp(v, "forever") == 0) {
        d = 0;
    } else if (!*v || *end || !isfinite(d) || d <= 0 || d > 36500) {
        fprintf(stderr, "drover %s: %s: expected days > 0 or \"forever\", got \"%s\"\n", cmd,
                opt->name, v);
        return -1;
    }
    *(double *)at = d;
    return 0;
}

/* --max-body: bytes, at least 1024. */
static int parse_max_body(const char *cmd, const drv_opt *opt, const char *v, void *at)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || errno || v[0] == '-' || n < 1024) {
        fprintf(stderr, "drover %s: %s: expected bytes >= 1024, got \"%s\"\n", cmd, opt->name, v);
        return -1;
    }
    *(size_t *)at = (size_t)n;
    return 0;
}

/* --probe-command: a program, not empty. */
static int parse_program(const char *cmd, const drv_opt *opt, const char *v, void *at)
{
    if (!*v) {
        fprintf(stderr, "drover %s: %s: expected a program\n", cmd, opt->name);
        return -1;
    }
    *(const char **)at = v;
    return 0;
}

typedef struct run_state {
    uv_loop_t *loop;
    drv_coordinator *c;
    uv_signal_t sigint, sigterm;
    bool stopped;
} run_state;

static void on_stopped(void *data)
{
    run_state *r = data;
    r->stopped = true;
}

static void on_signal(uv_signal_t *h, int signum)
{
    run_state *r = h->data;
    drv_coordinator_log(r->c, false, "%s: stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    drv_coordinator_stop(r->c, on_stopped, r);
}

/* A retention: a number with an optional unit (s, m, h, d); 0 or "forever": no limit
 * (stored as -1). */
static int parse_retention(const char *cmd, const drv_opt *opt, const char *v, void *at)
{
    double *out = at;
    if (strcmp(v, "forever") == 0) {
        *out = -1;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    double unit = !*end                   ? 1
                  : strcmp(end, "s") == 0 ? 1
                  : strcmp(end, "m") == 0 ? 60
                  : strcmp(end, "h") == 0 ? 3600
                  : strcmp(end, "d") == 0 ? 86400
                                          : 0;
    if (!*v || end == v || errno || unit == 0 || !isfinite(x) || x < 0) {
        fprintf(stderr,
                "drover %s: %s: expected a duration such as 7d, 12h, 90m or 3600 (or "
                "forever), got \"%s\"\n",
                cmd, opt->name, v);
        return -1;
    }
    *out = x == 0 ? -1 : x * unit;
    return 0;
}

int drv_cmd_coordinator(int argc, char **argv)
{
    drv_heap_tune(HEAP_PAD); /* a long-running process: see core/heap.h */
    drv_coordinator_options o;
    drv_coordinator_options_default(&o);
    o.client_token = getenv("DROVER_CLIENT_TOKEN");
    o.worker_token = getenv("DROVER_WORKER_TOKEN");
    o.read_token = getenv("DROVER_READ_TOKEN");
    coordinator_args a = {.o = o};
    int rest;
    int code = drv_opt_parse("coordinator", coordinator_opts, N_COORDINATOR_OPTS, &a, NULL, argc,
                             argv, &rest);
    if (code >= 0)
        return code;
    if (rest < argc)
        return drv_cli_usage_error("coordinator", "unexpected argument", argv[rest]);
    o = a.o;
    const char *config = a.config, *port_file = a.port_file;
    drv_error err = {{0}};
    if (config && drv_cli_load_config(config, &o.balancer, &err) < 0) {
        fprintf(stderr, "drover coordinator: %s\n", err.msg);
        return DRV_EXIT_FAILURE;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    run_state r = {.loop = &loop};
    r.c = drv_coordinator_start(&loop, &o, &err);
    if (!r.c) {
        fprintf(stderr, "drover coordinator: %s\n", err.msg);
        uv_run(&loop, UV_RUN_NOWAIT);
        uv_loop_close(&loop);
        return DRV_EXIT_FAILURE;
    }
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (!f || fprintf(f, "%d\n", drv_coordinator_port(r.c)) < 0 || fclose(f) != 0) {
            fprintf(stderr, "drover coordinator: --port-file %s: cannot write: %s\n", port_file,
                    strerror(errno));
            drv_coordinator_stop(r.c, NULL, NULL);
            uv_run(&loop, UV_RUN_DEFAULT);
            drv_coordinator_free(r.c);
            uv_loop_close(&loop);
            return DRV_EXIT_FAILURE;
        }
    }
    uv_signal_init(&loop, &r.sigint);
    uv_signal_init(&loop, &r.sigterm);
    r.sigint.data = r.sigterm.data = &r;
    uv_signal_start(&r.sigint, on_signal, SIGINT);
    uv_signal_start(&r.sigterm, on_signal, SIGTERM);
    uv_run(&loop, UV_RUN_DEFAULT);
    drv_coordinator_free(r.c);
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    if (rc != 0)
        fprintf(stderr, "drover coordinator: loop not empty at exit: %s\n", uv_strerror(rc));
    return DRV_EXIT_OK;
}
