/* runner.c - the child-process runner (see runner.h for the contract).
 *
 * A run owns six libuv handles: the process, the stdout and stderr pipes, and three
 * timers (deadline: the timeout then the kill grace; sampler: peak memory; drain: the
 * wait for the pipes after the exit). It is over when the main process has exited and
 * both pipes are closed (EOF, or the drain timer gave up on them); then every handle is
 * closed and, when the last close callback runs, on_exit is called. Nothing touches the
 * run after on_exit returns, so on_exit may free it. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "worker/runner.h"

extern char **environ;

#define TREE_MAX 4096 /* processes visited per memory sample */

struct drv_run {
    uv_loop_t *loop;
    uv_process_t proc;
    uv_pipe_t out, err;
    uv_timer_t deadline, sampler, drain;
    int open_handles; /* handles not yet through their close callback */
    bool spawned, exited, out_done, err_done, term_sent, closing, delivered, free_requested;
    int pid;
    uint64_t start_ns;
    double kill_grace_s;
    unsigned sample_ms;
    drv_run_output_cb on_output;
    drv_run_exit_cb on_exit;
    void *data;
    /* The output tail: a ring of cap bytes holding len bytes from head. */
    char *ring;
    size_t cap, head, len;
    char *output; /* the final text given in the result (owned) */
    drv_run_result result;
};

/* ---- output ------------------------------------------------------------------------ */

/* Appends n bytes to the ring, keeping the last cap bytes. */
static void ring_append(drv_run *r, const char *p, size_t n)
{
    r->result.output_bytes += n;
    if (n >= r->cap) {
        memcpy(r->ring, p + (n - r->cap), r->cap);
        r->head = 0;
        r->len = r->cap;
        return;
    }
    size_t w = (r->head + r->len) % r->cap;
    size_t first = r->cap - w < n ? r->cap - w : n;
    memcpy(r->ring + w, p, first);
    memcpy(r->ring, p + first, n - first);
    if (r->len + n > r->cap) {
        r->head = (w + n) % r->cap;
        r->len = r->cap;
    } else {
        r->len += n;
    }
}

/* Builds r->output from the ring: the dropped-bytes line (when bytes were dropped)
 * followed by the kept bytes in order. */
static void build_output(drv_run *r)
{
    char marker[96] = "";
    r->result.output_dropped = r->result.output_bytes - r->len;
    if (r->result.output_dropped > 0)
        snprintf(marker, sizeof marker, "[drover: %llu bytes of output dropped]\n",
                 (unsigned long long)r->result.output_dropped);
    size_t m = strlen(marker);
    r->output = drv_xmalloc(m + r->len + 1);
    memcpy(r->output, marker, m);
    size_t first = r->cap - r->head < r->len ? r->cap - r->head : r->len;
    if (r->len > 0) {
        memcpy(r->output + m, r->ring + r->head, first);
        memcpy(r->output + m + first, r->ring, r->len - first);
    }
    r->output[m + r->len] = '\0';
    r->result.output = r->output;
    r->result.output_len = m + r->len;
}

/* ---- peak memory ------------------------------------------------------------------- */

/* Reads the "Key:   N kB" value of key from /proc/PID/status; 0 when absent. */
static void read_status(int pid, uint64_t *rss_kb, uint64_t *hwm_kb)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    *rss_kb = *hwm_kb = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        unsigned long long v;
        if (sscanf(line, "VmRSS: %llu", &v) == 1)
            *rss_kb = v;
        else if (sscanf(line, "VmHWM: %llu", &v) == 1)
            *hwm_kb = v;
    }
    fclose(f);
}

/* Adds the pids listed in /proc/PID/task/PID/children to the stack. */
static void push_children(int pid, int *stack, size_t *n)
{
    char path[80];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", pid, pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    int child;
    while (*n < TREE_MAX && fscanf(f, "%d", &child) == 1)
        stack[(*n)++] = child;
    fclose(f);
}

/* One memory sample of the main process and its descendants (see runner.h). */
static void sample_memory(drv_run *r)
{
    if (r->exited || r->pid <= 0)
        return;
    int stack[TREE_MAX];
    size_t n = 0, visited = 0;
    uint64_t sum = 0, rss, hwm;
    stack[n++] = r->pid;
    while (n > 0 && visited < TREE_MAX) {
        int pid = stack[--n];
        visited++;
        read_status(pid, &rss, &hwm);
        sum += rss;
        if (pid == r->pid && hwm > r->result.peak_memory_kb)
            r->result.peak_memory_kb = hwm;
        push_children(pid, stack, &n);
    }
    if (sum > r->result.peak_memory_kb)
        r->result.peak_memory_kb = sum;
}

static void on_sample(uv_timer_t *t)
{
    sample_memory(t->data);
}

/* ---- ending ------------------------------------------------------------------------ */

/* Calls on_exit (unless the run was abandoned) or frees an abandoned run. */
static void deliver(drv_run *r)
{
    build_output(r);
    r->delivered = true;
    if (r->free_requested) {
        r->free_requested = false;
        drv_run_free(r);
        return;
    }
    if (r->on_exit)
        r->on_exit(r, &r->result, r->data); /* may free r: nothing after this */
}

static void on_closed(uv_handle_t *h)
{
    drv_run *r = h->data;
    if (--r->open_handles == 0)
        deliver(r);
}

/* Closes h unless it is already closing. */
static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_closed);
}

/* Once the main process is gone (or never started) and both pipes are done, closes
 * every remaining handle; the last close delivers the result. */
static void maybe_finish(drv_run *r)
{
    if (r->closing || !r->exited || !r->out_done || !r->err_done)
        return;
    r->closing = true;
    close_handle((uv_handle_t *)&r->deadline);
    close_handle((uv_handle_t *)&r->sampler);
    close_handle((uv_handle_t *)&r->drain);
    close_handle((uv_handle_t *)&r->proc);
}

/* Stops reading a pipe and closes it. */
static void pipe_done(drv_run *r, uv_pipe_t *p)
{
    bool *done = p == &r->out ? &r->out_done : &r->err_done;
    if (*done)
        return;
    *done = true;
    close_handle((uv_handle_t *)p);
    maybe_finish(r);
}

static void on_drain_timeout(uv_timer_t *t)
{
    drv_run *r = t->data;
    pipe_done(r, &r->out);
    pipe_done(r, &r->err);
}

/* Sends sig to the run's whole process group. */
static void signal_group(drv_run *r, int sig)
{
    if (r->pid > 0)
        kill(-r->pid, sig);
}

static void on_deadline(uv_timer_t *t)
{
    drv_run *r = t->data;
    if (r->exited)
        return;
    if (!r->term_sent) {
        r->result.timed_out = true;
        r->term_sent = true;
        signal_group(r, SIGTERM);
        uv_timer_start(&r->deadline, on_deadline, (uint64_t)(r->kill_grace_s * 1000.0), 0);
    } else {
        signal_group(r, SIGKILL);
    }
}

static void on_process_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    drv_run *r = p->data;
    r->exited = true;
    r->result.duration_s = (double)(uv_hrtime() - r->start_ns) / 1e9;
    r->result.term_signal = term_signal;
    r->result.exit_code = term_signal ? -1 : (int)exit_status;
    /* What is left of the group goes now: its pipes then close and the run can end. */
    signal_group(r, SIGKILL);
    uv_timer_stop(&r->deadline);
    uv_timer_stop(&r->sampler);
    uv_timer_start(&r->drain, on_drain_timeout, DRV_RUN_DRAIN_MS, 0);
    maybe_finish(r);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    /* Freed in on_read, whatever happens. */
    buf->base = drv_xmalloc(65536);
    buf->len = 65536;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    drv_run *r = s->data;
    if (nread > 0) {
        ring_append(r, buf->base, (size_t)nread);
        if (r->on_output)
            r->on_output(r, s == (uv_stream_t *)&r->out ? DRV_RUN_STDOUT : DRV_RUN_STDERR,
                         buf->base, (size_t)nread, r->data);
    }
    free(buf->base);
    if (nread < 0)
        pipe_done(r, (uv_pipe_t *)s);
}

/* ---- starting ---------------------------------------------------------------------- */

/* Marks the run as failed before it ran, with the message fmt. */
__attribute__((format(printf, 2, 3))) static void infra_failure(drv_run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->result.error, sizeof r->result.error, fmt, ap);
    va_end(ap);
    r->result.infra_failure = true;
    r->result.exit_code = -1;
}

/* The worker's environment with additions applied (same KEY replaced, others appended).
 * Returns a new NULL-terminated vector whose strings belong to environ or additions: the
 * caller frees only the vector. */
static char **merge_env(char *const *additions)
{
    size_t ne = 0, na = 0;
    while (environ && environ[ne])
        ne++;
    while (additions && additions[na])
        na++;
    char **env = drv_xcalloc(ne + na + 1, sizeof *env);
    size_t n = 0;
    for (size_t i = 0; i < ne; i++) {
        size_t klen = strcspn(environ[i], "=");
        bool replaced = false;
        for (size_t j = 0; j < na && !replaced; j++)
            replaced = strncmp(additions[j], environ[i], klen + 1) == 0;
        if (!replaced)
            env[n++] = environ[i];
    }
    for (size_t j = 0; j < na; j++)
        env[n++] = additions[j];
    env[n] = NULL;
    return env;
}

/* Checks what drv_runner_start() rejects outright. */
static int check_spec(const drv_run_spec *spec, drv_error *err)
{
    if (!spec || !spec->argv || !spec->argv[0])
        return drv_error_set(err, "run: no command (argv is empty)");
    if (!spec->argv[0][0])
        return drv_error_set(err, "run: the program name (argv[0]) is empty");
    for (size_t i = 0; spec->env && spec->env[i]; i++) {
        const char *eq = strchr(spec->env[i], '=');
        if (!eq || eq == spec->env[i])
            return drv_error_set(err, "run: environment entry \"%s\": expected KEY=VALUE",
                                 spec->env[i]);
    }
    if (!(spec->timeout_s >= 0) || !(spec->kill_grace_s >= 0))
        return drv_error_set(err, "run: timeout %g s and kill grace %g s must be >= 0",
                             spec->timeout_s, spec->kill_grace_s);
    return 0;
}

int drv_runner_start(uv_loop_t *loop, const drv_run_spec *spec, drv_run **out, drv_error *err)
{
    if (!loop || !out)
        return drv_error_set(err, "run: no loop or no place for the run");
    if (check_spec(spec, err) < 0)
        return -1;

    /* Owned by the caller from here (drv_run_free). */
    drv_run *r = drv_xcalloc(1, sizeof *r);
    r->loop = loop;
    r->on_output = spec->on_output;
    r->on_exit = spec->on_exit;
    r->data = spec->data;
    r->kill_grace_s = spec->kill_grace_s > 0 ? spec->kill_grace_s : DRV_RUN_KILL_GRACE_DEFAULT;
    r->sample_ms = spec->sample_interval_ms ? spec->sample_interval_ms : DRV_RUN_SAMPLE_MS_DEFAULT;
    r->cap = spec->output_cap_bytes ? spec->output_cap_bytes : DRV_RUN_OUTPUT_CAP_DEFAULT;
    r->ring = drv_xmalloc(r->cap);
    r->result.exit_code = -1;

    uv_handle_t *handles[] = {(uv_handle_t *)&r->out, (uv_handle_t *)&r->err,
                              (uv_handle_t *)&r->deadline, (uv_handle_t *)&r->sampler,
                              (uv_handle_t *)&r->drain};
    uv_pipe_init(loop, &r->out, 0);
    uv_pipe_init(loop, &r->err, 0);
    uv_timer_init(loop, &r->deadline);
    uv_timer_init(loop, &r->sampler);
    uv_timer_init(loop, &r->drain);
    for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++)
        handles[i]->data = r;
    r->proc.data = r;
    r->open_handles = 6;

    /* argv as executed: the spec's, or /bin/sh -c COMMAND [ARGS...]. Freed below. */
    size_t argc = 0;
    while (spec->argv[argc])
        argc++;
    char **args = drv_xcalloc(argc + 3, sizeof *args);
    size_t k = 0;
    if (spec->shell) {
        args[k++] = "/bin/sh";
        args[k++] = "-c";
    }
    for (size_t i = 0; i < argc; i++)
        args[k++] = spec->argv[i];
    args[k] = NULL;
    char **env = merge_env(spec->env);

    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&r->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&r->err;
    uv_process_options_t opts;
    memset(&opts, 0, sizeof opts);
    opts.exit_cb = on_process_exit;
    opts.file = args[0];
    opts.args = args;
    opts.env = env;
    opts.cwd = spec->cwd;
    opts.flags = UV_PROCESS_DETACHED;
    opts.stdio_count = 3;
    opts.stdio = stdio;

    struct stat st;
    int rc = 0;
    bool proc_init = false;
    if (spec->cwd && stat(spec->cwd, &st) != 0) {
        infra_failure(r, "working directory %s: %s", spec->cwd, strerror(errno));
        rc = -1;
    } else if (spec->cwd && !S_ISDIR(st.st_mode)) {
        infra_failure(r, "working directory %s: not a directory", spec->cwd);
        rc = -1;
    } else {
        r->start_ns = uv_hrtime();
        rc = uv_spawn(loop, &r->proc, &opts);
        proc_init = true; /* even a failed uv_spawn leaves a handle to close */
        if (rc != 0)
            infra_failure(r, "spawn %s: %s", args[0], uv_strerror(rc));
    }
    free(args);
    free(env);
    *out = r;

    if (rc != 0) {
        /* Nothing runs: close everything; the last close callback delivers the result. */
        r->exited = r->out_done = r->err_done = r->closing = true;
        r->open_handles = proc_init ? 6 : 5;
        for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++)
            uv_close(handles[i], on_closed);
        if (proc_init)
            uv_close((uv_handle_t *)&r->proc, on_closed);
        return 0;
    }
    r->spawned = true;
    r->pid = r->proc.pid;
    r->result.pid = r->proc.pid;
    uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
    uv_read_start((uv_stream_t *)&r->err, on_alloc, on_read);
    uv_timer_start(&r->sampler, on_sample, 0, r->sample_ms);
    /* The loop's cached time may be old (a slow spawn, a caller that blocked): the
     * timeout counts from now. */
    uv_update_time(loop);
    if (spec->timeout_s > 0)
        uv_timer_start(&r->deadline, on_deadline, (uint64_t)(spec->timeout_s * 1000.0 + 0.5), 0);
    return 0;
}

void drv_run_cancel(drv_run *r)
{
    if (!r || !r->spawned || r->exited || r->term_sent)
        return;
    r->result.cancelled = true;
    r->term_sent = true;
    signal_group(r, SIGTERM);
    uv_timer_start(&r->deadline, on_deadline, (uint64_t)(r->kill_grace_s * 1000.0), 0);
}

int drv_run_pid(const drv_run *r)
{
    return r ? r->pid : 0;
}

void drv_run_free(drv_run *r)
{
    if (!r)
        return;
    if (!r->delivered) {
        r->free_requested = true;
        drv_run_cancel(r);
        return;
    }
    free(r->ring);
    free(r->output);
    free(r);
}
