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

void drv_cmd_coordinator_usage(FILE *out)
{
    fprintf(out,
            "usage: drover coordinator [OPTIONS]\n"
            "\n"
            "Runs the coordinator: the queue, the balancer, the REST API (docs/api.md) and\n"
            "the worker channel (docs/protocol.md), with every state change kept in an\n"
            "SQLite file. Stops on SIGINT or SIGTERM; a restart on the same file recovers\n"
            "every accepted test.\n"
            "\n"
            "  --listen HOST:PORT        address to serve (default %s; port 0: any free port)\n"
            "  --db FILE                 the store (default ./%s)\n"
            "  --config FILE             balancer configuration (see drover explain-config)\n"
            "  --client-token T          token for submitting and cancelling\n"
            "                            (env DROVER_CLIENT_TOKEN)\n"
            "  --worker-token T          token workers present (env DROVER_WORKER_TOKEN)\n"
            "  --open-read               reading (GET) needs no token\n"
            "  --read-token T            token for reading only (GET, /metrics, the\n"
            "                            dashboard); env DROVER_READ_TOKEN\n"
            "  --metrics-retention D     keep the metrics history D (e.g. 7d, 12h, 3600;\n"
            "                            0 or forever: no limit; default 30d)\n"
            "  --tls-cert FILE --tls-key FILE   serve HTTPS and WSS\n"
            "  --heartbeat-interval S    heartbeat period told to workers (default 1)\n"
            "  --heartbeat-timeout S     a silent worker is lost after S seconds (default 3)\n"
            "  --recovery-grace S        after a restart, wait S seconds for workers to\n"
            "                            report what they still run (default 10)\n"
            "  --forget-workers-after S|never   forget a lost or left worker S seconds\n"
            "                            after it went (default 3600)\n"
            "  --probe-interval S|never  probe a quarantined worker every S seconds; a probe\n"
            "                            that passes clears the quarantine (default 30)\n"
            "  --probe-command PROGRAM   what the probe runs on the worker, without\n"
            "                            arguments; exit status 0 passes (default: true)\n"
            "  --max-body BYTES          largest request body (default %u)\n"
            "  --retention DAYS|forever  remove finished runs (their tests, attempts and\n"
            "                            output), events and metrics samples older than\n"
            "                            DAYS (default 14; fractions allowed)\n"
            "  --tails-retention D       remove the output of attempts older than D, also\n"
            "                            in runs still open (e.g. 3d, 12h; forever: keep;\n"
            "                            default: as --retention)\n"
            "  --auth-timeout S          close a worker or dashboard connection that has not\n"
            "                            authenticated after S seconds (default 10)\n"
            "  --sync-full               fsync every commit (survives power loss; slower)\n"
            "  --port-file FILE          write the port once listening (for scripts)\n"
            "  --quiet                   no info lines (warnings and errors still)\n"
            "  --log-format text|json    log lines as text (default) or one JSON object\n"
            "                            each (time, level, source, msg)\n",
            DRV_COORDINATOR_DEFAULT_LISTEN, DRV_COORDINATOR_DEFAULT_DB, DRV_COORDINATOR_MAX_BODY);
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

static int parse_seconds(const char *opt, const char *v, double *out)
{
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || !isfinite(x) || x <= 0 || x > 86400) {
        fprintf(stderr, "drover coordinator: %s: expected seconds > 0, got \"%s\"\n", opt, v);
        return -1;
    }
    *out = x;
    return 0;
}

/* A retention: a number with an optional unit (s, m, h, d); 0 or "forever": no limit
 * (stored as -1). */
static int parse_retention(const char *opt, const char *v, double *out)
{
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
                "drover coordinator: %s: expected a duration such as 7d, 12h, 90m or 3600 (or "
                "forever), got \"%s\"\n",
                opt, v);
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
    const char *config = NULL, *port_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool flag = strcmp(a, "--open-read") == 0 || strcmp(a, "--sync-full") == 0 ||
                    strcmp(a, "--quiet") == 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            drv_cmd_coordinator_usage(stdout);
            return DRV_EXIT_OK;
        }
        if (flag) {
            if (strcmp(a, "--open-read") == 0)
                o.open_read = true;
            else if (strcmp(a, "--sync-full") == 0)
                o.sync_full = true;
            else
                o.quiet = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || i + 1 >= argc) {
            fprintf(stderr, "drover coordinator: %s \"%s\" (see drover coordinator --help)\n",
                    strncmp(a, "--", 2) == 0 ? "missing value for" : "unexpected argument", a);
            return DRV_EXIT_USAGE;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--listen") == 0)
            o.listen = v;
        else if (strcmp(a, "--db") == 0)
            o.db_path = v;
        else if (strcmp(a, "--config") == 0)
            config = v;
        else if (strcmp(a, "--client-token") == 0)
            o.client_token = v;
        else if (strcmp(a, "--worker-token") == 0)
            o.worker_token = v;
        else if (strcmp(a, "--read-token") == 0)
            o.read_token = v;
        else if (strcmp(a, "--tails-retention") == 0) {
            if (parse_retention(a, v, &o.tails_retention_s) < 0)
                return DRV_EXIT_USAGE;
        } else if (strcmp(a, "--metrics-retention") == 0) {
            if (parse_retention(a, v, &o.metrics_retention_s) < 0)
                return DRV_EXIT_USAGE;
        } else if (strcmp(a, "--tls-cert") == 0)
            o.tls_cert = v;
        else if (strcmp(a, "--tls-key") == 0)
            o.tls_key = v;
        else if (strcmp(a, "--port-file") == 0)
            port_file = v;
        else if (strcmp(a, "--log-format") == 0) {
            if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0) {
                fprintf(stderr,
                        "drover coordinator: --log-format: expected text or json, got"
                        " \"%s\"\n",
                        v);
                return DRV_EXIT_USAGE;
            }
            o.log_json = strcmp(v, "json") == 0;
        } else if (strcmp(a, "--heartbeat-interval") == 0) {
            if (parse_seconds(a, v, &o.heartbeat_interval_s) < 0)
                return DRV_EXIT_USAGE;
        } else if (strcmp(a, "--heartbeat-timeout") == 0) {
            if (parse_seconds(a, v, &o.heartbeat_timeout_s) < 0)
                return DRV_EXIT_USAGE;
        } else if (strcmp(a, "--probe-interval") == 0) {
            if (strcmp(v, "never") == 0)
                o.probe_interval_s = -1;
            else if (parse_seconds(a, v, &o.probe_interval_s) < 0)
                return DRV_EXIT_USAGE;
        } else if (strcmp(a, "--probe-command") == 0) {
            if (!*v) {
                fprintf(stderr, "drover coordinator: --probe-command: expected a program\n");
                return DRV_EXIT_USAGE;
            }
            o.probe_command = v;
        } else if (strcmp(a, "--retention") == 0) {
            char *end = NULL;
            double d = strtod(v, &end);
            if (strcmp(v, "forever") == 0) {
                o.retention_days = 0;
            } else if (!*v || *end || !isfinite(d) || d <= 0 || d > 36500) {
                fprintf(stderr,
                        "drover coordinator: --retention: expected days > 0 or \"forever\", got"
                        " \"%s\"\n",
                        v);
                return DRV_EXIT_USAGE;
            } else {
                o.retention_days = d;
            }
        } else if (strcmp(a, "--auth-timeout") == 0) {
            if (parse_seconds(a, v, &o.auth_timeout_s) < 0)
                return DRV_EXIT_USAGE;
        } else if (strcmp(a, "--forget-workers-after") == 0) {
            if (strcmp(v, "never") == 0)
                o.forget_workers_s = -1;
            else if (parse_seconds(a, v, &o.forget_workers_s) < 0)
                return DRV_EXIT_USAGE;
        } else if (strcmp(a, "--recovery-grace") == 0) {
            if (parse_seconds(a, v, &o.recovery_grace_s) < 0)
                return DRV_EXIT_USAGE;
        } else if (strcmp(a, "--max-body") == 0) {
            char *end = NULL;
            unsigned long long n = strtoull(v, &end, 10);
            if (!*v || *end || v[0] == '-' || n < 1024) {
                fprintf(stderr,
                        "drover coordinator: --max-body: expected bytes >= 1024, got"
                        " \"%s\"\n",
                        v);
                return DRV_EXIT_USAGE;
            }
            o.max_body = (size_t)n;
        } else {
            fprintf(stderr,
                    "drover coordinator: unknown option \"%s\" (see drover coordinator"
                    " --help)\n",
                    a);
            return DRV_EXIT_USAGE;
        }
    }
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
