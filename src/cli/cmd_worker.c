/* cmd_worker.c - `drover worker`: runs this machine as a worker of a coordinator, or
 * (--probe) prints what it would offer as JSON (src/worker/probe.h says where each
 * figure comes from; src/worker/agent.h what the worker does on the wire).
 *
 *   drover worker [--url URL] [--token T] [--name N] [--label TAG]... [--slots N]
 *                 [--ack-only] [--output-cap BYTES] [--drain-timeout S] [--ca FILE]
 *   drover worker --probe [--label TAG]... [--slots N] [--compact]
 *
 * The URL comes from --url or DROVER_URL; the token from --token, DROVER_WORKER_TOKEN or
 * DROVER_TOKEN. The name defaults to the host name (cut to 63 bytes): one worker per
 * machine is the normal case; give --name to run several on one machine.
 *
 * Signals: the first SIGTERM or SIGINT drains (see agent.h: no new work, running tests
 * get up to --drain-timeout, every result is delivered, exit 0); a second one stops at
 * once (running tests are killed and reported if the connection allows).
 *
 * Exit codes: 0 drained or probed, 1 the coordinator refused the hello (bad token) or
 * results could not be delivered or the probe failed, 2 a wrong command line. */
#include <errno.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cli/cli.h"
#include "core/worker.h"
#include "sys/log.h"
#include "worker/agent.h"
#include "worker/guardian.h"
#include "worker/probe.h"
#include "worker/runner.h"

/* What `drover worker` was asked to do. */
typedef struct worker_opts {
    bool probe, compact, ack_only, no_detect;
    uint64_t slots; /* 0: one per core */
    const char *url, *token, *name, *ca, *pressure_root;
    bool token_from_client_env; /* the token is $DROVER_TOKEN: tests must not see it */
    bool log_json;              /* --log-format json */
    double output_cap, drain_timeout;
    drv_opt_list label; /* as given (each may hold several, comma-separated) */
    char **labels;      /* NULL-terminated, owned (split at commas) */
    size_t n_labels;
} worker_opts;

#define WO(f) offsetof(worker_opts, f)
static const drv_opt worker_opts_table[] = {
    {"--url", NULL, DRV_OPT_STRING, WO(url), 0, 0, "URL",
     "coordinator, ws://HOST:PORT (also wss://, http://, https://); default: $DROVER_URL", NULL},
    {"--token", NULL, DRV_OPT_STRING, WO(token), 0, 0, "T",
     "worker token; default: $DROVER_WORKER_TOKEN, else $DROVER_TOKEN", NULL},
    {"--name", NULL, DRV_OPT_STRING, WO(name), 0, 0, "N",
     "worker name (1..63 bytes); default: the host name", NULL},
    {"--ca", NULL, DRV_OPT_STRING, WO(ca), 0, 0, "FILE",
     "PEM certificate authority for a wss:// coordinator ($DROVER_CA; default: the system's)",
     NULL},
    {"--label", NULL, DRV_OPT_LIST, WO(label), 0, 0, "TAG",
     "add TAG (lower-case [a-z0-9._:/-]) to the worker's tags, e.g. cuda or webgpu to offer a "
     "back-end by hand; repeatable, or comma-separated",
     NULL},
    {"--slots", NULL, DRV_OPT_UINT, WO(slots), 1, DRV_PROBE_SLOTS_MAX, "N",
     "tests run at once (default: one per core)", NULL},
    {"--ack-only", NULL, DRV_OPT_FLAG, WO(ack_only), 0, 0, NULL,
     "run nothing: report every test passed at once (benchmarks)", NULL},
    {"--output-cap", NULL, DRV_OPT_DOUBLE, WO(output_cap), 1, 1e12, "BYTES",
     "output streamed and kept per test when the test does not say (default 1 MiB)", NULL},
    {"--drain-timeout", NULL, DRV_OPT_PARSE, WO(drain_timeout), 0, 86400, "S",
     "on SIGTERM, how long running tests may take before they are killed (default 30)",
     drv_opt_seconds},
    {"--no-detect", NULL, DRV_OPT_FLAG, WO(no_detect), 0, 0, NULL,
     "offer no GPU or browser found on this machine: only cores, memory and --label tags (to "
     "hide a device; tests)",
     NULL},
    {"--pressure-root", NULL, DRV_OPT_STRING, WO(pressure_root), 0, 0, "DIR",
     "read the pressure, temperature and clock sent with every heartbeat from DIR/proc and "
     "DIR/sys instead of /proc and /sys (tests; an empty directory measures nothing)",
     NULL},
    {"--log-format", NULL, DRV_OPT_PARSE, WO(log_json), 0, 0, "text|json",
     "log lines as text (default: RFC 3339 UTC time, level, source, message) or json (one "
     "object per line)",
     drv_opt_log_format},
    {"--probe", NULL, DRV_OPT_FLAG, WO(probe), 0, 0, NULL,
     "print what this machine offers (and the pressure it would report) as JSON and exit", NULL},
    {"--compact", NULL, DRV_OPT_FLAG, WO(compact), 0, 0, NULL,
     "with --probe: one line of JSON instead of indented", NULL},
};
#define N_WORKER_OPTS (sizeof worker_opts_table / sizeof worker_opts_table[0])

void drv_cmd_worker_usage(FILE *out)
{
    fprintf(out, "usage: drover worker [--url URL] [--token T] [--name N] [--label TAG]...\n"
                 "                     [--slots N] [--ack-only] [--output-cap BYTES]\n"
                 "                     [--drain-timeout S] [--ca FILE] [--no-detect]\n"
                 "                     [--pressure-root DIR] [--log-format text|json]\n"
                 "       drover worker --probe [--label TAG]... [--slots N] [--no-detect]\n"
                 "                     [--compact]\n"
                 "\n"
                 "Connects to a coordinator, registers this machine's capabilities, and runs the\n"
                 "tests it is given, each as a child process in its own process group. Keeps\n"
                 "running what it holds when the coordinator goes away and reconnects with\n"
                 "backoff. SIGTERM or SIGINT drains (no new tests, running ones finish, results\n"
                 "delivered, exit 0); a second signal stops at once.\n"
                 "\n");
    drv_opt_usage(out, worker_opts_table, N_WORKER_OPTS);
    fprintf(out, "\n"
                 "Exit status: 0 drained (or probed), 1 refused by the coordinator, results not\n"
                 "delivered, or the probe failed, 2 a wrong command line.\n");
}

/* Reads the command line into *o. Returns 0, or DRV_EXIT_USAGE after printing why. */
static int parse_args(int argc, char **argv, worker_opts *o)
{
    int rest;
    int code =
        drv_opt_parse("worker", worker_opts_table, N_WORKER_OPTS, o, NULL, argc, argv, &rest);
    if (code >= 0)
        return code;
    if (rest < argc)
        return drv_cli_usage_error("worker", "unexpected argument", argv[rest]);
    /* "a,b" is two labels; an empty item is passed on so the probe names it. */
    for (size_t i = 0; i < o->label.n; i++) {
        for (const char *p = o->label.v[i];;) {
            size_t len = strcspn(p, ",");
            o->labels = drv_xrealloc(o->labels, (o->n_labels + 2) * sizeof *o->labels);
            o->labels[o->n_labels] = drv_xmalloc(len + 1);
            memcpy(o->labels[o->n_labels], p, len);
            o->labels[o->n_labels][len] = '\0';
            o->labels[++o->n_labels] = NULL;
            if (p[len] != ',')
                break;
            p += len + 1;
        }
    }
    return 0;
}

/* What a heartbeat would carry now (worker/probe.h, drv_pressure_read): each figure
 * null when unknown. */
static json_t *pressure_json(const worker_opts *o, const drv_probe_result *r)
{
    drv_pressure p;
    drv_pressure_read(o->pressure_root, r->caps.cpu_cores, &p);
    json_t *j = json_object();
    json_object_set_new(j, "cpu", p.cpu >= 0 ? json_real(p.cpu) : json_null());
    json_object_set_new(j, "cpu_source", p.cpu_source ? json_string(p.cpu_source) : json_null());
    json_object_set_new(j, "memory", p.memory >= 0 ? json_real(p.memory) : json_null());
    json_object_set_new(j, "temperature_c",
                        p.temperature_c >= 0 ? json_real(p.temperature_c) : json_null());
    json_object_set_new(j, "freq_ratio", p.freq_ratio >= 0 ? json_real(p.freq_ratio) : json_null());
    json_object_set_new(j, "throttle_events",
                        p.has_throttles ? json_integer((json_int_t)p.throttles) : json_null());
    return j;
}

/* Probes the machine with the options' labels and slots. Returns 0, or the exit code
 * after printing why. */
static int probe(const worker_opts *o, drv_probe_result *r, drv_tag_table *tags)
{
    drv_probe_options opt = {
        .labels = o->labels, .slots = (uint32_t)o->slots, .no_detect = o->no_detect};
    drv_error err = {{0}};
    if (drv_probe_run(r, &opt, tags, &err) == 0)
        return 0;
    fprintf(stderr, "drover worker: %s\n", err.msg);
    /* A bad label or slot count is the command line's fault; the rest the machine's. */
    return strncmp(err.msg, "label ", 6) == 0 || strncmp(err.msg, "slots", 5) == 0
               ? DRV_EXIT_USAGE
               : DRV_EXIT_FAILURE;
}

/* ---- running ---------------------------------------------------------------------- */

/* The state the loop's callbacks share. */
typedef struct worker_run {
    uv_loop_t *loop;
    drv_agent *agent;
    uv_signal_t sigterm, sigint;
    int signals; /* received so far */
    int status;  /* exit status once DONE */
    bool done;
    double drain_timeout;
} worker_run;

/* Prints the agent's events: progress on stdout, problems on stderr; DONE ends the loop. */
static void on_agent_event(drv_agent *agent, const drv_agent_event *ev, void *data)
{
    (void)agent;
    worker_run *w = data;
    switch (ev->kind) {
    case DRV_AGENT_EV_CONNECTED:
    case DRV_AGENT_EV_DRAIN:
        drv_log(DRV_LOG_INFO, "worker", "%s", ev->message);
        break;
    case DRV_AGENT_EV_DISCONNECTED:
        drv_log(DRV_LOG_WARN, "worker", "%s", ev->message);
        break;
    case DRV_AGENT_EV_REMOTE_ERROR:
    case DRV_AGENT_EV_LOCAL_ERROR:
        drv_log(DRV_LOG_ERROR, "worker", "%s", ev->message);
        break;
    case DRV_AGENT_EV_DONE:
        drv_log(ev->status != 0 ? DRV_LOG_ERROR : DRV_LOG_INFO, "worker", "%s", ev->message);
        w->status = ev->status == 0 ? DRV_EXIT_OK : DRV_EXIT_FAILURE;
        w->done = true;
        uv_stop(w->loop); /* the hub is destroyed outside of its own callbacks */
        break;
    }
}

/* SIGTERM/SIGINT: the first drains, the second stops now. */
static void on_signal(uv_signal_t *h, int signum)
{
    worker_run *w = h->data;
    if (++w->signals == 1) {
        drv_log(DRV_LOG_INFO, "worker",
                "%s: draining (running tests get up to %g s; send it again to stop now)",
                signum == SIGTERM ? "SIGTERM" : "SIGINT", w->drain_timeout);
        drv_agent_drain(w->agent, signum == SIGTERM ? "worker stopping (SIGTERM)"
                                                    : "worker stopping (SIGINT)");
    } else {
        drv_log(DRV_LOG_WARN, "worker", "second signal: stopping now");
        drv_agent_abort(w->agent);
    }
}

/* Close callback of the signal handles (they live on the stack of run_worker). */
static void on_closed_noop(uv_handle_t *h)
{
    (void)h;
}

/* Fills o->url and o->token from the environment when not given and checks them and
 * the name before anything is probed. Returns 0, or DRV_EXIT_USAGE after printing why. */
static int resolve_target(worker_opts *o)
{
    if (!o->url)
        o->url = getenv("DROVER_URL");
    if (!o->token || !*o->token)
        o->token = getenv("DROVER_WORKER_TOKEN");
    if (!o->token || !*o->token) {
        o->token = getenv("DROVER_TOKEN");
        o->token_from_client_env = o->token && *o->token;
    }
    if (!o->ca || !*o->ca)
        o->ca = getenv("DROVER_CA");
    drv_agent_url url;
    drv_error err = {{0}};
    if (!o->url || !*o->url) {
        fprintf(stderr, "drover worker: no coordinator address: give --url or set DROVER_URL\n");
        return DRV_EXIT_USAGE;
    }
    if (drv_agent_parse_url(o->url, &url, &err) < 0) {
        fprintf(stderr, "drover worker: %s\n", err.msg);
        return DRV_EXIT_USAGE;
    }
    if (!o->token || !*o->token) {
        fprintf(stderr, "drover worker: no worker token: give --token or set "
                        "DROVER_WORKER_TOKEN (or DROVER_TOKEN)\n");
        return DRV_EXIT_USAGE;
    }
    if (o->ca && access(o->ca, R_OK) != 0) {
        fprintf(stderr, "drover worker: --ca %s: cannot read it: %s\n", o->ca, strerror(errno));
        return DRV_EXIT_USAGE;
    }
    if (o->name && (!*o->name || strlen(o->name) >= DRV_WORKER_NAME_MAX)) {
        fprintf(stderr, "drover worker: --name \"%s\": must be 1..%d bytes\n", o->name,
                DRV_WORKER_NAME_MAX - 1);
        return DRV_EXIT_USAGE;
    }
    return 0;
}

/* Connects and runs until the agent is done; returns the exit code. */
static int run_worker(const worker_opts *o, const drv_probe_result *r, drv_tag_table *tags)
{
    /* The host name, cut to what a worker name may hold. */
    char name[DRV_WORKER_NAME_MAX];
    const char *src = o->name ? o->name : r->hostname[0] ? r->hostname : "worker";
    size_t nlen = strnlen(src, sizeof name - 1);
    memcpy(name, src, nlen);
    name[nlen] = '\0';

    drv_msg_caps caps;
    drv_agent_caps_from_probe(r, tags, &caps);
    drv_agent_config cfg = {
        .url = o->url,
        .token = o->token,
        .name = name,
        .caps = &caps,
        .slots = r->slots,
        .ack_only = o->ack_only,
        .output_cap_bytes = (uint64_t)o->output_cap,
        .drain_timeout_s = o->drain_timeout,
        .on_event = on_agent_event,
        .pressure_root = o->pressure_root,
    };
    const char *stall = getenv("DROVER_TEST_START_STALL_S"); /* tests only (agent.h) */
    if (stall && *stall) {
        char *end;
        double v = strtod(stall, &end);
        if (*end || !(v >= 0 && v <= 10)) {
            fprintf(stderr,
                    "drover worker: DROVER_TEST_START_STALL_S=\"%s\": want seconds, 0..10\n",
                    stall);
            return DRV_EXIT_USAGE;
        }
        cfg.start_stall_s = v;
    }
    for (unsigned g = 0; g < r->n_gpus; g++)
        cfg.measure_gpus |= !o->pressure_root && strcmp(r->gpus[g].source, "nvidia-smi") == 0;
    worker_run w = {.status = DRV_EXIT_FAILURE,
                    .drain_timeout =
                        o->drain_timeout > 0 ? o->drain_timeout : DRV_AGENT_DRAIN_TIMEOUT_S};
    cfg.data = &w;

    /* No orphans: the guardian kills the tests' process groups when this process ends,
     * however it ends (guardian.h). Started before the loop opens anything. */
    drv_error gerr = {{0}};
    drv_guardian *guardian = o->ack_only ? NULL : drv_guardian_start(&gerr);
    if (!guardian && !o->ack_only)
        drv_log(DRV_LOG_WARN, "worker", "%s; a test may outlive a killed worker", gerr.msg);
    cfg.guardian = guardian;

    /* Our lines and libwebsockets' in one format (sys/log.h); of lws only its errors: the
     * agent's events say what a reconnect or a refusal means. */
    drv_log_configure(o->log_json, false);
    lws_set_log_level(LLL_ERR, drv_log_lws);
    uv_loop_t loop;
    uv_loop_init(&loop);
    w.loop = &loop;
    int rc = DRV_EXIT_FAILURE;
    drv_error err = {{0}};
    drv_agent_hub *hub = drv_agent_hub_new(&loop, o->ca, &err);
    if (!hub) {
        drv_log(DRV_LOG_ERROR, "worker", "%s", err.msg);
        goto out;
    }
    if (drv_agent_start(hub, &cfg, &w.agent, &err) < 0) {
        drv_log(DRV_LOG_ERROR, "worker", "%s", err.msg);
        rc = DRV_EXIT_USAGE; /* the url, token or name given */
        goto out;
    }
    /* Secrets stay with the worker: the agent has its copy of the token, and tests get
     * the worker's environment (runner.h), so the variables that may hold it go. */
    unsetenv("DROVER_WORKER_TOKEN");
    if (o->token_from_client_env)
        unsetenv("DROVER_TOKEN");
    uv_signal_init(&loop, &w.sigterm);
    uv_signal_init(&loop, &w.sigint);
    w.sigterm.data = w.sigint.data = &w;
    uv_signal_start(&w.sigterm, on_signal, SIGTERM);
    uv_signal_start(&w.sigint, on_signal, SIGINT);
    while (!w.done)
        uv_run(&loop, UV_RUN_DEFAULT);
    rc = w.status;
    uv_close((uv_handle_t *)&w.sigterm, on_closed_noop);
    uv_close((uv_handle_t *)&w.sigint, on_closed_noop);
out:
    drv_agent_free(w.agent);
    drv_agent_hub_free(hub);
    uv_run(&loop, UV_RUN_DEFAULT); /* let every handle close */
    if (uv_loop_close(&loop) != 0)
        drv_log(DRV_LOG_WARN, "worker", "the event loop still had open handles");
    drv_guardian_stop(guardian);
    drv_agent_caps_clear(&caps);
    return rc;
}

int drv_cmd_worker(int argc, char **argv)
{
    worker_opts o = {0};
    o.labels = drv_xcalloc(1, sizeof *o.labels); /* freed at the end with its strings */
    int rc = parse_args(argc, argv, &o);
    if (rc == 0 && !o.probe)
        rc = resolve_target(&o);
    if (rc == 0) {
        drv_tag_table *tags = drv_tag_table_new();
        drv_probe_result r;
        rc = probe(&o, &r, tags);
        if (rc == 0 && o.probe) {
            json_t *j = drv_probe_to_json(&r, tags);
            json_object_set_new(j, "pressure", pressure_json(&o, &r));
            char *text = json_dumps(j, o.compact ? JSON_COMPACT : JSON_INDENT(2));
            json_decref(j);
            printf("%s\n", text ? text : "{}");
            free(text);
        } else if (rc == 0) {
            rc = run_worker(&o, &r, tags);
        }
        drv_tag_table_free(tags);
    }
    for (size_t i = 0; i < o.n_labels; i++)
        free(o.labels[i]);
    free(o.labels);
    return rc;
}
