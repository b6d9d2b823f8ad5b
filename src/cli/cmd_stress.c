/* cmd_stress.c - `drover stress`: the whole path under load, with the real protocol. N
 * fake workers (src/worker/agent.h, simulated mode: each test holds a slot for a drawn
 * duration, no process) connect over WebSocket on 127.0.0.1 from this one process (one
 * hub, one libuv loop), M tests are submitted through the REST API per a scenario, and
 * the figures of the run are printed.
 *
 *   drover stress [--url URL | --start] --workers N --tests M
 *                 [--scenario steady|burst|spike|worker_churn] [--duration-mean S]
 *                 [--sigma X] [--rate T] [--seed N] [--time-limit S] [--slots K] [--json]
 *
 * Threads: the agents and every timer run on the main thread's loop. The HTTP client
 * (libcurl, blocking) runs on a second thread of its own, so a slow submission of
 * thousands of tests never stalls the workers' sockets: it submits per the scenario,
 * then polls the runs it made until every one is done or the time limit passes, and
 * wakes the loop (uv_async) when it is over. The two share one `stress` struct; what
 * both touch (send times, latencies, counters) is under its mutex.
 *
 * Figures:
 *   - tests/s: tests that passed / seconds from the first submission to the moment the
 *     client saw every run done (runs are polled every 100 ms, so a short run is
 *     under-rated by up to that much).
 *   - assign latency: for the first assign of each test, the time the agent received
 *     it minus the time the POST that carried the test was begun (one monotonic clock
 *     of this process). It includes the coordinator's commit of the whole submission,
 *     so a burst of 5,000 tests in one POST starts every test's clock at once.
 *   - coordinator memory: with --start, VmRSS and VmHWM of its /proc/PID/status,
 *     sampled every 200 ms (the peak of the samples and the kernel's VmHWM); attached
 *     to --url, a "memory" object of GET /api/v1/status when the coordinator gives one
 *     ({"rss_kb", "hwm_kb"}), else "unknown".
 *
 * Scenarios: burst submits every test at once (POSTs of up to 5,000 tests); steady at
 * --rate tests/s (default: M over 5 s); spike is steady with the middle 40% of the
 * tests at 10 times the rate; worker_churn is steady while, every 100 ms, one worker
 * either loses its connection (it reconnects and resends, as after a network cut) or,
 * one time in three, is killed (freed: the connection drops without a word and what it
 * held is lost, as with SIGKILL) and a new worker of the same name joins 300 ms later.
 *
 * Exit: 0 when every test passed within the time limit, 1 otherwise (or on a failure
 * to start), 2 a wrong command line. */
#include <errno.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cli/cli.h"
#include "client/client.h"
#include "sys/proc_status.h"
#include "worker/agent.h"

#define STRESS_BATCH_MAX      5000 /* tests per POST */
#define STRESS_SPIKE_FACTOR   10.0 /* spike: the middle of the run at 10 times the rate */
#define STRESS_POLL_S         0.1  /* run polling period */
#define STRESS_SAMPLE_MS      200  /* memory sampling period */
#define STRESS_CHURN_MS       100  /* worker_churn: one event per period */
#define STRESS_WORKERS_MAX    10000
#define STRESS_TESTS_MAX      10000000
#define STRESS_CONNECT_WAIT_S 15.0  /* the workers' first connection, plus: */
#define STRESS_CONNECT_PER_S  0.004 /* ... this much per worker */
#define STRESS_WAVE           200   /* workers started per wave (a storm of 6,000 connects */
#define STRESS_WAVE_MS        20    /* at once gets none through), one wave per period */
#define STRESS_GRID_MAX       8     /* sizes in each list of --benchmark */

typedef enum stress_scenario {
    SC_BURST = 0,
    SC_STEADY,
    SC_SPIKE,
    SC_CHURN,
} stress_scenario;

static const char *const scenario_names[] = {"burst", "steady", "spike", "worker_churn"};

typedef struct stress_opts {
    const char *url, *token, *worker_token;
    bool start, json, keep, benchmark;
    long workers, tests, slots;
    stress_scenario scenario;
    double mean, sigma, rate, time_limit, away;
    uint64_t seed;
    bool rate_given;
    const char *worker_prefix; /* workers are PREFIX-0, PREFIX-1, ... */
    long grid_workers[STRESS_GRID_MAX], grid_tests[STRESS_GRID_MAX];
    size_t n_grid_workers, n_grid_tests;
} stress_opts;

static int parse_whole(const char *cmd, const drv_opt *o, const char *v, void *at);
static int parse_scenario(const char *cmd, const drv_opt *o, const char *v, void *at);
static int parse_prefix(const char *cmd, const drv_opt *o, const char *v, void *at);
static int parse_grid(const char *cmd, const drv_opt *o, const char *v, void *at);

#define SO(f) offsetof(stress_opts, f)
static const drv_opt stress_opts_table[] = {
    {"--start", NULL, DRV_OPT_FLAG, SO(start), 0, 0, NULL,
     "start a coordinator (this binary, a fresh temporary store, a free port on 127.0.0.1) "
     "and stop it at the end; its dashboard's address is printed first",
     NULL},
    {"--keep", NULL, DRV_OPT_FLAG, SO(keep), 0, 0, NULL,
     "with --start: after the run keep the coordinator and the workers up (to look at the "
     "dashboard) until Ctrl-C",
     NULL},
    {"--url", NULL, DRV_OPT_STRING, SO(url), 0, 0, "URL",
     "attach to this coordinator instead (default: $DROVER_URL)", NULL},
    {"--token", NULL, DRV_OPT_STRING, SO(token), 0, 0, "T", "client token (default: $DROVER_TOKEN)",
     NULL},
    {"--worker-token", NULL, DRV_OPT_STRING, SO(worker_token), 0, 0, "T",
     "worker token (default: $DROVER_WORKER_TOKEN)", NULL},
    {"--workers", NULL, DRV_OPT_PARSE, SO(workers), 1, STRESS_WORKERS_MAX, "N",
     "fake workers (default 20)", parse_whole},
    {"--tests", NULL, DRV_OPT_PARSE, SO(tests), 1, STRESS_TESTS_MAX, "M",
     "tests to submit (default 1000)", parse_whole},
    {"--scenario", NULL, DRV_OPT_PARSE, SO(scenario), 0, 0, "S",
     "burst (all at once; default), steady (at --rate), spike (steady, the middle 40% at "
     "10x), worker_churn (steady while workers disconnect, reconnect, are killed and rejoin)",
     parse_scenario},
    {"--away", NULL, DRV_OPT_DOUBLE, SO(away), 0, 3600, "S",
     "worker_churn: a killed worker stays away S seconds before it rejoins (default 0.3; "
     "past the coordinator's heartbeat timeout, 3 s by default, it is lost and the fleet "
     "shrinks)",
     NULL},
    {"--rate", NULL, DRV_OPT_DOUBLE, SO(rate), 0.001, 1e9, "T",
     "tests/s of steady, spike, worker_churn (default M / 5 s)", NULL},
    {"--duration-mean", NULL, DRV_OPT_DOUBLE, SO(mean), 0, 86400, "S",
     "mean simulated test duration (default 0.05; 0: at once)", NULL},
    {"--sigma", NULL, DRV_OPT_DOUBLE, SO(sigma), 0, 10, "X",
     "lognormal sigma of the durations (default 0.5; 0: fixed)", NULL},
    {"--seed", NULL, DRV_OPT_UINT, SO(seed), 0, 1e18, "N",
     "seeds the durations and the churn (default 1)", NULL},
    {"--slots", NULL, DRV_OPT_PARSE, SO(slots), 1, DRV_PROBE_SLOTS_MAX, "K",
     "slots per worker (default 4)", parse_whole},
    {"--worker-prefix", NULL, DRV_OPT_PARSE, SO(worker_prefix), 0, 0, "P",
     "the workers are named P-0, P-1, ... (default stress; two attached stress processes need "
     "different ones)",
     parse_prefix},
    {"--time-limit", NULL, DRV_OPT_DOUBLE, SO(time_limit), 0.1, 86400 * 7, "S",
     "give up after S seconds (default 120)", NULL},
    {"--json", NULL, DRV_OPT_FLAG, SO(json), 0, 0, NULL, "print the figures as one JSON object",
     NULL},
    {"--benchmark", NULL, DRV_OPT_FLAG, SO(benchmark), 0, 0, NULL,
     "run every pair of --grid-workers and --grid-tests, each on a coordinator of its own "
     "(--start), and print one table",
     NULL},
    {"--grid-workers", NULL, DRV_OPT_PARSE, SO(grid_workers), 1, STRESS_WORKERS_MAX, "L",
     "fleet sizes (default 10,100,1000)", parse_grid},
    {"--grid-tests", NULL, DRV_OPT_PARSE, SO(grid_tests), 1, STRESS_TESTS_MAX, "L",
     "test counts (default 1000,10000)", parse_grid},
};
#define N_STRESS_OPTS (sizeof stress_opts_table / sizeof stress_opts_table[0])

void drv_cmd_stress_usage(FILE *out)
{
    fprintf(out,
            "usage: drover stress [--url URL | --start] [--workers N] [--tests M]\n"
            "                     [--scenario steady|burst|spike|worker_churn]\n"
            "                     [--duration-mean S] [--sigma X] [--rate T] [--seed N]\n"
            "                     [--time-limit S] [--slots K] [--away S] [--keep] [--json]\n"
            "       drover stress --benchmark [--grid-workers N,N,...] [--grid-tests M,M,...]\n"
            "                     [other options as above]\n"
            "\n"
            "Load-tests a coordinator through the real path: N fake workers connect over\n"
            "WebSocket from this process (each test \"runs\" for a drawn duration, no\n"
            "process), M tests (argv [\"true\"]) are submitted through the REST API, and\n"
            "the run's throughput, assign latency and the coordinator's memory are printed.\n"
            "\n");
    drv_opt_usage(out, stress_opts_table, N_STRESS_OPTS);
    fprintf(out,
            "\n"
            "Exit status: 0 every test passed in time, 1 otherwise, 2 a wrong command line.\n");
}

/* One fake worker. */
typedef struct stress_worker {
    struct stress *s;
    drv_agent *agent; /* NULL while killed */
    char name[32];
    bool connected;
    double rejoin_at; /* killed: when it comes back (monotonic seconds) */
} stress_worker;

/* What the threads share; fields marked (mutex) are read or written under mu. */
typedef struct stress {
    stress_opts o;
    char prefix[64]; /* test names: PREFIX/SEQ */
    const char *worker_token;
    char ws_url[300];
    uv_loop_t loop;
    drv_agent_hub *hub;
    stress_worker *workers;
    drv_msg_caps caps;
    uv_timer_t sample_timer, churn_timer, start_timer;
    long started; /* workers started so far (in waves of STRESS_WAVE) */
    uv_async_t done_async;
    bool quiet; /* --benchmark: no report of each run */
    uint64_t churn_rng;
    uint64_t disconnects, kills;
    long connected; /* (mutex) workers connected now */

    uv_mutex_t mu;
    double *sent_at;  /* (mutex) per test: when its POST began; 0 before */
    double *latency;  /* (mutex) per test: first assign - sent_at; < 0 before */
    uint64_t assigns; /* (mutex) assigns received, every attempt */
    bool stop;        /* (mutex) the main thread asks the client thread to stop */

    /* Written by the client thread, read after it is joined. */
    drv_client *client;
    double t_first_send, t_done;
    uint64_t passed, final_count, submitted;
    bool all_done, timed_out;
    char error[DRV_ERROR_MAX];
    long status_rss_kb, status_hwm_kb; /* attached: from GET /api/v1/status; -1 unknown */

    /* Memory of a started coordinator (main thread). */
    pid_t coord_pid;
    long rss_kb, rss_peak_kb, hwm_kb; /* -1 unknown */
    double t0;
} stress;

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

/* A uniform number in [0, 1) from a xorshift state. */
static double next_random(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return (double)(*x >> 11) / 9007199254740992.0;
}

/* Parses a number in [min, max] into *out; -1 on anything else. */
static int parse_double(const char *v, double min, double max, double *out)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= min) || !(d <= max))
        return -1;
    *out = d;
    return 0;
}

/* Parses "N,N,..." (at most STRESS_GRID_MAX whole numbers in min..max) into out[] and
 * *n. Returns 0, or -1 (out and *n unchanged). */
static int parse_list(const char *v, double min, double max, long *out, size_t *n)
{
    long got[STRESS_GRID_MAX];
    size_t k = 0;
    char buf[256];
    if (strlen(v) >= sizeof buf)
        return -1;
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        double d = 0;
        if (k == STRESS_GRID_MAX || parse_double(p, min, max, &d) < 0 || d != floor(d))
            return -1;
        got[k++] = (long)d;
    }
    if (k == 0)
        return -1;
    memcpy(out, got, k * sizeof got[0]);
    *n = k;
    return 0;
}

/* A whole number o->min..o->max into a long. */
static int parse_whole(const char *cmd, const drv_opt *o, const char *v, void *at)
{
    double d = 0;
    if (parse_double(v, o->min, o->max, &d) < 0 || d != floor(d)) {
        fprintf(stderr, "drover %s: %s: expected a whole number %.0f..%.0f, got \"%s\"\n", cmd,
                o->name, o->min, o->max, v);
        return -1;
    }
    *(long *)at = (long)d;
    return 0;
}

static int parse_scenario(const char *cmd, const drv_opt *o, const char *v, void *at)
{
    for (int k = 0; k < 4; k++)
        if (strcmp(v, scenario_names[k]) == 0) {
            *(stress_scenario *)at = (stress_scenario)k;
            return 0;
        }
    fprintf(stderr, "drover %s: %s: expected burst, steady, spike or worker_churn, got \"%s\"\n",
            cmd, o->name, v);
    return -1;
}

static int parse_prefix(const char *cmd, const drv_opt *o, const char *v, void *at)
{
    if (!*v || strlen(v) > 20 || strchr(v, '/')) {
        fprintf(stderr, "drover %s: %s: expected 1..20 characters, no /, got \"%s\"\n", cmd,
                o->name, v);
        return -1;
    }
    *(const char **)at = v;
    return 0;
}

/* --grid-workers / --grid-tests: the list into its array and its count. */
static int parse_grid(const char *cmd, const drv_opt *o, const char *v, void *at)
{
    bool w = strcmp(o->name, "--grid-workers") == 0;
    stress_opts *so = (stress_opts *)(void *)((char *)at - (w ? offsetof(stress_opts, grid_workers)
                                                              : offsetof(stress_opts, grid_tests)));
    if (parse_list(v, o->min, o->max, w ? so->grid_workers : so->grid_tests,
                   w ? &so->n_grid_workers : &so->n_grid_tests) < 0) {
        fprintf(stderr,
                "drover %s: %s: expected up to 8 whole numbers %.0f..%.0f, comma separated, got "
                "\"%s\"\n",
                cmd, o->name, o->min, o->max, v);
        return -1;
    }
    return 0;
}

/* Reads the command line into *o. Returns 0, or DRV_EXIT_USAGE after printing why. */
static int parse_args(int argc, char **argv, stress_opts *o)
{
    *o = (stress_opts){.workers = 20,
                       .tests = 1000,
                       .slots = 4,
                       .mean = 0.05,
                       .sigma = 0.5,
                       .time_limit = 120,
                       .away = 0.3,
                       .worker_prefix = "stress",
                       .grid_workers = {10, 100, 1000},
                       .n_grid_workers = 3,
                       .grid_tests = {1000, 10000},
                       .n_grid_tests = 2,
                       .seed = 1};
    int rest;
    int code =
        drv_opt_parse("stress", stress_opts_table, N_STRESS_OPTS, o, NULL, argc, argv, &rest);
    if (code >= 0)
        return code;
    if (rest < argc)
        return drv_cli_usage_error("stress", "unexpected argument", argv[rest]);
    o->rate_given = o->rate > 0;
    if (o->start && o->url) {
        fprintf(stderr, "drover stress: give --start or --url, not both\n");
        return DRV_EXIT_USAGE;
    }
    if (o->benchmark && (o->url || o->keep || o->json)) {
        fprintf(stderr, "drover stress: --benchmark starts coordinators of its own: no --url, "
                        "--keep or --json with it\n");
        return DRV_EXIT_USAGE;
    }
    if (o->keep && !o->start) {
        fprintf(stderr, "drover stress: --keep keeps the coordinator --start started: give "
                        "--start\n");
        return DRV_EXIT_USAGE;
    }
    o->start = o->start || o->benchmark;
    if (!o->start) {
        if (!o->url)
            o->url = getenv("DROVER_URL");
        if (!o->token)
            o->token = getenv("DROVER_TOKEN");
        if (!o->worker_token)
            o->worker_token = getenv("DROVER_WORKER_TOKEN");
        if (!o->url || !*o->url) {
            fprintf(stderr, "drover stress: no coordinator: give --start, --url or DROVER_URL\n");
            return DRV_EXIT_USAGE;
        }
        if (!o->worker_token || !*o->worker_token) {
            fprintf(stderr, "drover stress: no worker token: give --worker-token or set "
                            "DROVER_WORKER_TOKEN\n");
            return DRV_EXIT_USAGE;
        }
    }
    if (o->rate == 0)
        o->rate = (double)o->tests / 5.0;
    return 0;
}

/* ---- a coordinator of our own (--start) ------------------------------------------------ */

/* Fills buf (len >= 33) with 32 random hex digits (from /dev/urandom, else the clock). */
static void random_token(char *buf, uint64_t salt)
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof b) : -1;
    if (fd >= 0)
        close(fd);
    uint64_t x = uv_hrtime() ^ salt ^ ((uint64_t)getpid() << 20);
    for (size_t i = 0; i < sizeof b; i++) {
        if (n != (ssize_t)sizeof b)
            b[i] = (unsigned char)(next_random(&x) * 256);
        sprintf(buf + 2 * i, "%02x", b[i]);
    }
}

/* Where a started coordinator lives. */
typedef struct own_coord {
    char dir[256], db[300], port_file[300];
    char client_token[40], worker_token[40];
    char url[64];
    pid_t pid;
} own_coord;

/* Stops the coordinator (SIGTERM, SIGKILL after 5 s) and removes its files. */
static void coord_stop(own_coord *c)
{
    if (c->pid > 0) {
        kill(c->pid, SIGTERM);
        int st = 0;
        double end = now_s() + 5.0;
        while (waitpid(c->pid, &st, WNOHANG) == 0) {
            if (now_s() > end) {
                kill(c->pid, SIGKILL);
                waitpid(c->pid, &st, 0);
                break;
            }
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        c->pid = 0;
    }
    if (c->dir[0]) {
        static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
        char p[320];
        for (size_t i = 0; i < 4; i++) {
            snprintf(p, sizeof p, "%s%s", c->db, suffix[i]);
            unlink(p);
        }
        unlink(c->port_file);
        snprintf(p, sizeof p, "%s/coordinator.log", c->dir);
        unlink(p);
        rmdir(c->dir);
        c->dir[0] = '\0';
    }
}

/* Starts `drover coordinator` (this binary) on 127.0.0.1 port 0 with a fresh store in a
 * temporary directory and waits (10 s) for its port. Returns 0, or -1 after printing
 * why (and stopping what it started). Its log is the file coordinator.log there, shown
 * on failure. */
static int coord_start(own_coord *c)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(c->dir, sizeof c->dir, "%s/drover-stress.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(c->dir)) {
        fprintf(stderr, "drover stress: cannot make a temporary directory %s: %s\n", c->dir,
                strerror(errno));
        c->dir[0] = '\0';
        return -1;
    }
    snprintf(c->db, sizeof c->db, "%s/stress.db", c->dir);
    snprintf(c->port_file, sizeof c->port_file, "%s/port", c->dir);
    random_token(c->client_token, 1);
    random_token(c->worker_token, 2);
    char log[320];
    snprintf(log, sizeof log, "%s/coordinator.log", c->dir);
    fflush(NULL);
    c->pid = fork();
    if (c->pid < 0) {
        fprintf(stderr, "drover stress: cannot start a coordinator: fork: %s\n", strerror(errno));
        coord_stop(c);
        return -1;
    }
    if (c->pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        char *args[] = {"drover",         "coordinator",
                        "--listen",       "127.0.0.1:0",
                        "--db",           c->db,
                        "--port-file",    c->port_file,
                        "--client-token", c->client_token,
                        "--worker-token", c->worker_token,
                        "--quiet",        NULL};
        execv("/proc/self/exe", args);
        _exit(127);
    }
    double end = now_s() + 10.0;
    while (now_s() < end) {
        FILE *f = fopen(c->port_file, "r");
        int port = 0;
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (port > 0) {
            snprintf(c->url, sizeof c->url, "http://127.0.0.1:%d", port);
            return 0;
        }
        int st;
        if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
            c->pid = 0;
            break;
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "drover stress: the coordinator did not start (log below)\n");
    FILE *f = fopen(log, "r");
    char line[512];
    while (f && fgets(line, sizeof line, f))
        fputs(line, stderr);
    if (f)
        fclose(f);
    coord_stop(c);
    return -1;
}

/* Reads VmRSS and VmHWM (kB) of pid into *rss and *hwm (-1 when unreadable). */
static void read_proc_memory(pid_t pid, long *rss, long *hwm)
{
    long long r, h;
    drv_proc_memory_kb((int)pid, &r, &h);
    *rss = (long)r;
    *hwm = (long)h;
}

/* ---- the client thread ------------------------------------------------------------------ */

/* The sequence number of one of our tests from its name ("PREFIX/SEQ"), or -1. */
static long test_seq(const stress *s, const char *name)
{
    size_t n = strlen(s->prefix);
    if (!name || strncmp(name, s->prefix, n) != 0 || name[n] != '/')
        return -1;
    char *end = NULL;
    long v = strtol(name + n + 1, &end, 10);
    return end && !*end && v >= 0 && v < s->o.tests ? v : -1;
}

/* The time (seconds after the start of submitting) test seq is due. */
static double due_at(const stress *s, long seq)
{
    double r = s->o.rate;
    switch (s->o.scenario) {
    case SC_BURST:
        return 0;
    case SC_STEADY:
    case SC_CHURN:
        return (double)seq / r;
    case SC_SPIKE: {
        long a = s->o.tests * 3 / 10, b = s->o.tests * 7 / 10;
        if (seq < a)
            return (double)seq / r;
        if (seq < b)
            return (double)a / r + (double)(seq - a) / (r * STRESS_SPIKE_FACTOR);
        return (double)a / r + (double)(b - a) / (r * STRESS_SPIKE_FACTOR) + (double)(seq - b) / r;
    }
    }
    return 0;
}

/* True when the main thread asked to stop. */
static bool should_stop(stress *s)
{
    uv_mutex_lock(&s->mu);
    bool stop = s->stop;
    uv_mutex_unlock(&s->mu);
    return stop;
}

/* Sleeps for sec seconds (up to 1 s at a time). */
static void sleep_s(double sec)
{
    if (sec <= 0)
        return;
    struct timespec ts = {(time_t)sec, (long)((sec - floor(sec)) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Submits tests [from, to) in one POST; appends the run id. Returns 0, or -1 with
 * s->error filled. */
static int submit_batch(stress *s, long from, long to, uint64_t **runs, size_t *nruns)
{
    json_t *arr = json_array();
    char name[128];
    for (long i = from; i < to; i++) {
        snprintf(name, sizeof name, "%s/%ld", s->prefix, i);
        json_array_append_new(arr, json_pack("{s:s, s:[s]}", "name", name, "argv", "true"));
    }
    double t = now_s();
    uv_mutex_lock(&s->mu);
    for (long i = from; i < to; i++)
        s->sent_at[i] = t;
    uv_mutex_unlock(&s->mu);
    if (s->t_first_send == 0)
        s->t_first_send = t;
    drv_error err = {{0}};
    json_t *res = drv_client_post(s->client, "/api/v1/tests", arr, &err);
    json_decref(arr);
    if (!res) {
        snprintf(s->error, sizeof s->error, "submitting tests %ld..%ld: %.400s", from, to - 1,
                 err.msg);
        return -1;
    }
    int64_t id = drv_api_int(res, "run_id", -1);
    json_decref(res);
    if (id <= 0) {
        snprintf(s->error, sizeof s->error, "submitting tests: the answer has no run_id");
        return -1;
    }
    *runs = drv_xrealloc(*runs, (*nruns + 1) * sizeof **runs);
    (*runs)[(*nruns)++] = (uint64_t)id;
    s->submitted += (uint64_t)(to - from);
    return 0;
}

/* Polls the runs not known done yet; moves done ones out, adding their counts. Returns
 * 0, or -1 with s->error filled. */
static int poll_runs(stress *s, uint64_t *runs, size_t *nruns)
{
    for (size_t i = 0; i < *nruns;) {
        drv_error err = {{0}};
        json_t *run = drv_client_run(s->client, runs[i], &err);
        if (!run) {
            snprintf(s->error, sizeof s->error, "reading run %llu: %.400s",
                     (unsigned long long)runs[i], err.msg);
            return -1;
        }
        drv_run_counts rc;
        drv_run_counts_read(run, &rc);
        json_decref(run);
        if (rc.done) {
            s->passed += rc.by_state[DRV_TASK_PASSED];
            s->final_count += rc.final;
            runs[i] = runs[--*nruns];
        } else {
            i++;
        }
    }
    return 0;
}

/* Attached: the coordinator's memory from GET /api/v1/status, when it says. */
static void poll_status_memory(stress *s)
{
    drv_error err = {{0}};
    json_t *st = drv_client_get(s->client, "/api/v1/status", &err);
    const json_t *m = st ? json_object_get(st, "memory") : NULL;
    if (m) {
        long rss = (long)drv_api_int(m, "rss_kb", -1);
        long hwm = (long)drv_api_int(m, "hwm_kb", -1);
        if (rss > s->status_rss_kb)
            s->status_rss_kb = rss;
        if (hwm > s->status_hwm_kb)
            s->status_hwm_kb = hwm;
    }
    json_decref(st);
}

/* The client thread: waits for the workers, submits per the scenario, polls the runs
 * until all are done or the time limit, then wakes the loop. */
static void client_thread(void *arg)
{
    stress *s = arg;
    uint64_t *runs = NULL;
    size_t nruns = 0;
    double deadline = s->t0 + s->o.time_limit;

    /* Every worker connected first, so a burst is not all placed on the first one. */
    double wait_end = now_s() + STRESS_CONNECT_WAIT_S + STRESS_CONNECT_PER_S * (double)s->o.workers;
    for (;;) {
        uv_mutex_lock(&s->mu);
        long c = s->connected;
        uv_mutex_unlock(&s->mu);
        if (c >= s->o.workers || should_stop(s))
            break;
        if (now_s() > wait_end || now_s() > deadline) {
            snprintf(s->error, sizeof s->error, "only %ld of %ld workers connected in %.0f s", c,
                     s->o.workers,
                     STRESS_CONNECT_WAIT_S + STRESS_CONNECT_PER_S * (double)s->o.workers);
            goto out;
        }
        sleep_s(0.01);
    }

    double start = now_s(), last_poll = 0;
    long next = 0;
    while (!should_stop(s)) {
        double t = now_s();
        if (t > deadline) {
            s->timed_out = true;
            break;
        }
        long upto = next;
        while (upto < s->o.tests && upto - next < STRESS_BATCH_MAX && due_at(s, upto) <= t - start)
            upto++;
        if (upto > next) {
            if (submit_batch(s, next, upto, &runs, &nruns) < 0)
                goto out;
            next = upto;
            continue; /* more may be due already */
        }
        if (t - last_poll >= STRESS_POLL_S) {
            last_poll = t;
            if (poll_runs(s, runs, &nruns) < 0)
                goto out;
            if (s->coord_pid <= 0)
                poll_status_memory(s);
            if (next == s->o.tests && nruns == 0) {
                s->all_done = true;
                s->t_done = now_s();
                break;
            }
        }
        double wait = next < s->o.tests ? due_at(s, next) - (now_s() - start) : STRESS_POLL_S;
        if (wait > 0.01)
            wait = 0.01;
        sleep_s(wait);
    }
out:
    free(runs);
    uv_async_send(&s->done_async);
}

/* ---- the loop side ------------------------------------------------------------------------ */

/* Simulated duration of one test; records the assign latency of its first attempt. */
static double on_assigned(const drv_msg_test *t, void *data)
{
    stress *s = data;
    double now = now_s();
    long seq = test_seq(s, t->name);
    uv_mutex_lock(&s->mu);
    s->assigns++;
    if (seq >= 0 && s->latency[seq] < 0 && s->sent_at[seq] > 0)
        s->latency[seq] = now - s->sent_at[seq];
    uv_mutex_unlock(&s->mu);
    return -1; /* draw from the agent's mean and sigma */
}

/* Counts connections; a DONE agent (refused) is reported. */
static void on_agent_event(drv_agent *agent, const drv_agent_event *ev, void *data)
{
    (void)agent;
    stress_worker *w = data;
    stress *s = w->s;
    if (ev->kind == DRV_AGENT_EV_CONNECTED && !w->connected) {
        w->connected = true;
        uv_mutex_lock(&s->mu);
        s->connected++;
        uv_mutex_unlock(&s->mu);
    } else if ((ev->kind == DRV_AGENT_EV_DISCONNECTED || ev->kind == DRV_AGENT_EV_DONE) &&
               w->connected) {
        w->connected = false;
        uv_mutex_lock(&s->mu);
        s->connected--;
        uv_mutex_unlock(&s->mu);
    }
    if (ev->kind == DRV_AGENT_EV_DONE && ev->status != 0)
        fprintf(stderr, "drover stress: worker %s: %s\n", w->name, ev->message);
}

/* Starts (or restarts) worker w. Returns 0, or -1 after printing why. */
static int worker_start(stress *s, stress_worker *w)
{
    drv_agent_config cfg = {
        .url = s->ws_url,
        .token = s->worker_token,
        .name = w->name,
        .caps = &s->caps,
        .slots = (uint32_t)s->o.slots,
        .simulate = true,
        .sim_duration = on_assigned,
        .sim_data = s,
        .sim_mean_s = s->o.mean,
        .sim_sigma = s->o.sigma,
        .sim_seed = s->o.seed * 1000003u + (uint64_t)(w - s->workers),
        .backoff_min_s = 0.05,
        .backoff_max_s = 1.0,
        .on_event = on_agent_event,
        .data = w,
    };
    drv_error err = {{0}};
    if (drv_agent_start(s->hub, &cfg, &w->agent, &err) < 0) {
        fprintf(stderr, "drover stress: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Samples the started coordinator's memory. */
static void on_sample_timer(uv_timer_t *t)
{
    stress *s = t->data;
    long rss, hwm;
    read_proc_memory(s->coord_pid, &rss, &hwm);
    if (rss >= 0) {
        s->rss_kb = rss;
        if (rss > s->rss_peak_kb)
            s->rss_peak_kb = rss;
    }
    if (hwm >= 0)
        s->hwm_kb = hwm;
}

/* worker_churn: one worker cut off or killed per period; killed ones rejoin. */
static void on_churn_timer(uv_timer_t *t)
{
    stress *s = t->data;
    double now = now_s();
    for (long i = 0; i < s->started; i++) {
        stress_worker *w = &s->workers[i];
        if (!w->agent && now >= w->rejoin_at)
            worker_start(s, w);
    }
    stress_worker *w = &s->workers[(long)(next_random(&s->churn_rng) * (double)s->o.workers)];
    if (w - s->workers >= s->started)
        return;
    if (!w->agent || !w->connected)
        return;
    if (next_random(&s->churn_rng) < 1.0 / 3.0) {
        drv_agent_free(w->agent); /* no DONE event: count it here */
        w->agent = NULL;
        if (w->connected) {
            w->connected = false;
            uv_mutex_lock(&s->mu);
            s->connected--;
            uv_mutex_unlock(&s->mu);
        }
        w->rejoin_at = now + s->o.away;
        s->kills++;
    } else {
        drv_agent_disconnect(w->agent);
        s->disconnects++;
    }
}

/* Starts the next wave of workers; stops itself once every worker is started. */
static void on_start_timer(uv_timer_t *t)
{
    stress *s = t->data;
    for (long k = 0; k < STRESS_WAVE && s->started < s->o.workers; k++, s->started++) {
        stress_worker *w = &s->workers[s->started];
        if (worker_start(s, w) < 0) {
            uv_mutex_lock(&s->mu);
            snprintf(s->error, sizeof s->error, "worker %s could not start", w->name);
            s->stop = true;
            uv_mutex_unlock(&s->mu);
            s->started = s->o.workers;
        }
    }
    if (s->started >= s->o.workers)
        uv_timer_stop(t);
}

/* The client thread is over: stop the loop. */
static void on_done_async(uv_async_t *h)
{
    uv_stop(h->loop);
}

static void on_closed_noop(uv_handle_t *h)
{
    (void)h;
}

/* Compares doubles for qsort. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of sorted v[0..n) (nearest rank); NAN for none. */
static double quantile(const double *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    size_t k = (size_t)ceil(q * (double)n);
    return v[k ? k - 1 : 0];
}

/* The run's figures: seconds from the first submission to the end, tests/s that passed,
 * assign latency p50, p99 and max in ms (NAN when none) and how many had one (max and
 * count may be NULL). */
static void figures(const stress *s, double *wall, double *tps, double *p50, double *p99,
                    double *max, size_t *count)
{
    size_t n = 0;
    double *lat = drv_xcalloc((size_t)s->o.tests, sizeof *lat); /* freed below */
    for (long i = 0; i < s->o.tests; i++)
        if (s->latency[i] >= 0)
            lat[n++] = s->latency[i];
    qsort(lat, n, sizeof *lat, cmp_double);
    *p50 = quantile(lat, n, 0.5) * 1000;
    *p99 = quantile(lat, n, 0.99) * 1000;
    if (max)
        *max = n ? lat[n - 1] * 1000 : NAN;
    if (count)
        *count = n;
    free(lat);
    double end = s->all_done ? s->t_done : now_s();
    *wall = s->t_first_send > 0 ? end - s->t_first_send : 0;
    *tps = *wall > 0 ? (double)s->passed / *wall : 0;
}

/* Prints the figures (text or JSON). */
static void report(stress *s)
{
    size_t n = 0;
    double wall, tps, p50, p99, max;
    figures(s, &wall, &tps, &p50, &p99, &max, &n);
    long rss = s->coord_pid > 0 ? s->rss_kb : s->status_rss_kb;
    long peak = s->coord_pid > 0 ? s->rss_peak_kb : s->status_rss_kb;
    long hwm = s->coord_pid > 0 ? s->hwm_kb : s->status_hwm_kb;
    if (s->o.json) {
        json_t *o = json_pack(
            "{s:s, s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:b, s:f, s:f, s:I, s:I, s:I}",
            "scenario", scenario_names[s->o.scenario], "workers", (json_int_t)s->o.workers, "slots",
            (json_int_t)s->o.slots, "tests", (json_int_t)s->o.tests, "duration_mean_s", s->o.mean,
            "sigma", s->o.sigma, "submitted", (json_int_t)s->submitted, "passed",
            (json_int_t)s->passed, "final", (json_int_t)s->final_count, "all_passed",
            s->all_done && s->passed == (uint64_t)s->o.tests, "seconds", wall, "tests_per_s", tps,
            "assigns", (json_int_t)s->assigns, "disconnects", (json_int_t)s->disconnects, "kills",
            (json_int_t)s->kills);
        json_object_set_new(o, "assign_latency_ms",
                            n ? json_pack("{s:f, s:f, s:f, s:I}", "p50", p50, "p99", p99, "max",
                                          max, "count", (json_int_t)n)
                              : json_null());
        json_t *mem = json_object();
        json_object_set_new(mem, "source", json_string(s->coord_pid > 0 ? "proc" : "status"));
        json_object_set_new(mem, "rss_kb", rss >= 0 ? json_integer(rss) : json_null());
        json_object_set_new(mem, "rss_peak_sampled_kb",
                            peak >= 0 ? json_integer(peak) : json_null());
        json_object_set_new(mem, "hwm_kb", hwm >= 0 ? json_integer(hwm) : json_null());
        json_object_set_new(o, "coordinator_memory", mem);
        if (s->error[0])
            json_object_set_new(o, "error", json_string(s->error));
        char *text = json_dumps(o, JSON_COMPACT);
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(o);
        return;
    }
    printf("stress: %s, %ld workers x %ld slots, %ld tests, durations %s mean %.3f s sigma %.2f, "
           "seed %llu\n",
           scenario_names[s->o.scenario], s->o.workers, s->o.slots, s->o.tests,
           s->o.sigma > 0 ? "lognormal" : "fixed", s->o.mean, s->o.sigma,
           (unsigned long long)s->o.seed);
    printf("passed: %llu/%ld (%llu final, %llu submitted) in %.2f s: %.1f tests/s%s\n",
           (unsigned long long)s->passed, s->o.tests, (unsigned long long)s->final_count,
           (unsigned long long)s->submitted, wall, tps,
           s->timed_out ? " (time limit reached)" : "");
    if (n)
        printf("assign latency: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%zu tests; %llu assigns "
               "in all)\n",
               p50, p99, max, n, (unsigned long long)s->assigns);
    else
        printf("assign latency: unknown (no assign received)\n");
    if (rss >= 0)
        printf("coordinator memory: VmRSS %ld kB at the end, %ld kB peak sampled, VmHWM %s%ld%s\n",
               rss, peak, hwm >= 0 ? "" : "unknown (", hwm >= 0 ? hwm : 0, hwm >= 0 ? " kB" : ")");
    else
        printf("coordinator memory: unknown (GET /api/v1/status has no memory figures)\n");
    if (s->o.scenario == SC_CHURN)
        printf("churn: %llu disconnects, %llu workers killed and rejoined\n",
               (unsigned long long)s->disconnects, (unsigned long long)s->kills);
    if (s->error[0])
        printf("error: %s\n", s->error);
}

static void on_keep_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    uv_stop(h->loop);
}

/* --keep: the workers stay connected (their heartbeats run on the loop) until SIGINT or
 * SIGTERM. */
static void keep_up(stress *s)
{
    uv_signal_t sig_int, sig_term;
    uv_signal_init(&s->loop, &sig_int);
    uv_signal_init(&s->loop, &sig_term);
    uv_signal_start(&sig_int, on_keep_signal, SIGINT);
    uv_signal_start(&sig_term, on_keep_signal, SIGTERM);
    fprintf(stderr,
            "drover stress: keeping the coordinator and %ld workers up; Ctrl-C stops them\n",
            s->o.workers);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&sig_int, on_closed_noop);
    uv_close((uv_handle_t *)&sig_term, on_closed_noop);
    uv_run(&s->loop, UV_RUN_NOWAIT);
}

/* Runs the stress against url; returns the exit code. */
static int run_stress(stress *s, const char *url, const char *token)
{
    drv_error err = {{0}};
    drv_client_options co = {.url = url, .token = token, .request_timeout_s = 60};
    s->client = drv_client_open(&co, &err);
    if (!s->client) {
        fprintf(stderr, "drover stress: %s\n", err.msg);
        return DRV_EXIT_USAGE;
    }
    snprintf(s->ws_url, sizeof s->ws_url, "%s", drv_client_url(s->client));
    lws_set_log_level(0, NULL);
    uv_loop_init(&s->loop);
    uv_mutex_init(&s->mu);
    int rc = DRV_EXIT_FAILURE;
    s->hub = drv_agent_hub_new(&s->loop, NULL, &err);
    if (!s->hub) {
        fprintf(stderr, "drover stress: %s\n", err.msg);
        goto out;
    }
    drv_agent_hub_quiet(s->hub); /* thousands of agents: see drv_agent_hub_quiet() */
    drv_agent_caps_make((uint32_t)s->o.slots, 16384, 0, NULL, &s->caps);
    s->workers = drv_xcalloc((size_t)s->o.workers, sizeof *s->workers); /* freed below */
    s->sent_at = drv_xcalloc((size_t)s->o.tests, sizeof *s->sent_at);   /* freed by caller */
    s->latency = drv_xcalloc((size_t)s->o.tests, sizeof *s->latency);   /* freed by caller */
    for (long i = 0; i < s->o.tests; i++)
        s->latency[i] = -1;
    s->churn_rng = s->o.seed * 0x9E3779B97F4A7C15ull + 1;
    s->rss_kb = s->rss_peak_kb = s->hwm_kb = s->status_rss_kb = s->status_hwm_kb = -1;
    s->t0 = now_s();
    for (long i = 0; i < s->o.workers; i++) {
        stress_worker *w = &s->workers[i];
        w->s = s;
        snprintf(w->name, sizeof w->name, "%s-%ld", s->o.worker_prefix, i);
    }
    uv_timer_init(&s->loop, &s->sample_timer);
    uv_timer_init(&s->loop, &s->churn_timer);
    uv_timer_init(&s->loop, &s->start_timer);
    s->sample_timer.data = s->churn_timer.data = s->start_timer.data = s;
    uv_timer_start(&s->start_timer, on_start_timer, 0, STRESS_WAVE_MS);
    if (s->coord_pid > 0) {
        on_sample_timer(&s->sample_timer);
        uv_timer_start(&s->sample_timer, on_sample_timer, STRESS_SAMPLE_MS, STRESS_SAMPLE_MS);
    }
    if (s->o.scenario == SC_CHURN)
        uv_timer_start(&s->churn_timer, on_churn_timer, 1000, STRESS_CHURN_MS);
    uv_async_init(&s->loop, &s->done_async, on_done_async);
    uv_thread_t th;
    if (uv_thread_create(&th, client_thread, s) != 0) {
        fprintf(stderr, "drover stress: cannot start the client thread\n");
        uv_close((uv_handle_t *)&s->done_async, on_closed_noop);
        goto timers;
    }
    uv_run(&s->loop, UV_RUN_DEFAULT); /* until the client thread is over */
    uv_mutex_lock(&s->mu);
    s->stop = true;
    uv_mutex_unlock(&s->mu);
    uv_thread_join(&th);
    if (s->coord_pid > 0)
        on_sample_timer(&s->sample_timer);
    if (!s->quiet)
        report(s);
    fflush(stdout);
    if (s->o.keep)
        keep_up(s);
    rc = s->all_done && s->passed == (uint64_t)s->o.tests ? DRV_EXIT_OK : DRV_EXIT_FAILURE;
    if (rc != DRV_EXIT_OK && !s->o.json && s->error[0])
        fprintf(stderr, "drover stress: %s\n", s->error);
    uv_close((uv_handle_t *)&s->done_async, on_closed_noop);
timers:
    uv_close((uv_handle_t *)&s->sample_timer, on_closed_noop);
    uv_close((uv_handle_t *)&s->churn_timer, on_closed_noop);
    uv_close((uv_handle_t *)&s->start_timer, on_closed_noop);
out:
    for (long i = 0; s->workers && i < s->o.workers; i++)
        drv_agent_free(s->workers[i].agent);
    drv_agent_hub_free(s->hub);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&s->loop) != 0)
        fprintf(stderr, "drover stress: warning: the event loop still had open handles\n");
    uv_mutex_destroy(&s->mu);
    free(s->workers);
    drv_agent_caps_clear(&s->caps);
    drv_client_close(s->client);
    return rc;
}

/* The figures --benchmark tabulates, of one finished run. */
typedef struct stress_row {
    long workers, tests;
    uint64_t passed;
    double seconds, tps, p50_ms, p99_ms;
    long rss_peak_kb;
    char error[80];
} stress_row;

static int run_one(const stress_opts *o, stress_row *row);

/* --benchmark: every pair of the grid on a coordinator of its own, then one table. */
static int benchmark(const stress_opts *o)
{
    size_t n = o->n_grid_workers * o->n_grid_tests, k = 0;
    stress_row *rows = drv_xcalloc(n, sizeof *rows);
    int rc = DRV_EXIT_OK;
    for (size_t i = 0; i < o->n_grid_workers; i++)
        for (size_t j = 0; j < o->n_grid_tests; j++, k++) {
            stress_opts one = *o;
            one.workers = o->grid_workers[i];
            one.tests = o->grid_tests[j];
            if (!o->rate_given)
                one.rate = (double)one.tests / 5.0;
            fprintf(stderr, "drover stress: benchmark %zu/%zu: %ld workers, %ld tests\n", k + 1, n,
                    one.workers, one.tests);
            if (run_one(&one, &rows[k]) != DRV_EXIT_OK)
                rc = DRV_EXIT_FAILURE;
        }
    printf("stress benchmark: %s, %ld slots per worker, durations mean %.3f s sigma %.2f, seed "
           "%llu\n",
           scenario_names[o->scenario], o->slots, o->mean, o->sigma, (unsigned long long)o->seed);
    printf("%8s %9s %9s %9s %10s %12s %12s %14s  %s\n", "workers", "tests", "passed", "seconds",
           "tests/s", "assign p50", "assign p99", "coord peak", "");
    for (k = 0; k < n; k++) {
        const stress_row *r = &rows[k];
        printf("%8ld %9ld %9llu %9.2f %10.1f %9.1f ms %9.1f ms %11ld kB  %s\n", r->workers,
               r->tests, (unsigned long long)r->passed, r->seconds, r->tps, r->p50_ms, r->p99_ms,
               r->rss_peak_kb, r->error);
    }
    free(rows);
    return rc;
}

/* One run per o (starting a coordinator when o->start), its figures into row when not
 * NULL (then no report is printed). Returns the exit code. */
static int run_one(const stress_opts *o, stress_row *row)
{
    stress *s = drv_xcalloc(1, sizeof *s); /* freed below */
    s->o = *o;
    s->quiet = row != NULL;
    int rc;
    snprintf(s->prefix, sizeof s->prefix, "stress-%ld-%llx", (long)getpid(),
             (unsigned long long)(uv_hrtime() & 0xffffffffu));
    own_coord c;
    memset(&c, 0, sizeof c);
    const char *url = s->o.url, *token = s->o.token;
    s->worker_token = s->o.worker_token;
    if (s->o.start) {
        if (coord_start(&c) < 0) {
            free(s);
            return DRV_EXIT_FAILURE;
        }
        url = c.url;
        token = c.client_token;
        s->worker_token = c.worker_token;
        s->coord_pid = c.pid;
        if (!row)
            fprintf(s->o.json ? stderr : stdout, "dashboard: %s/#token=%s\n", c.url,
                    c.client_token);
        fflush(stdout);
    }
    rc = run_stress(s, url, token);
    if (row) {
        *row = (stress_row){.workers = o->workers, .tests = o->tests, .passed = s->passed};
        figures(s, &row->seconds, &row->tps, &row->p50_ms, &row->p99_ms, NULL, NULL);
        row->rss_peak_kb = s->rss_peak_kb;
        snprintf(row->error, sizeof row->error, "%.79s", s->error);
    }
    coord_stop(&c);
    free(s->sent_at);
    free(s->latency);
    free(s);
    return rc;
}

int drv_cmd_stress(int argc, char **argv)
{
    stress_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    return o.benchmark ? benchmark(&o) : run_one(&o, NULL);
}
