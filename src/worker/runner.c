/* runner.c - the child-process runner (see runner.h for the contract).
 *
 * Starting: posix_spawn(), which glibc implements with a vfork-style clone: the child
 * shares the worker's memory until it execs, so nothing is copied and the worker's
 * pages do not become copy-on-write (fork(), which uv_spawn uses, copies the page
 * tables of the whole worker for every test, and the worker then faults on its own
 * memory). The child gets its own session (setsid), stdin from /dev/null, stdout and
 * stderr on two pipes, the default disposition for every signal and an empty signal
 * mask, and the working directory, all applied by posix_spawn before the exec.
 *
 * Exit: libuv reaps only the children it spawned itself, so the runner watches SIGCHLD
 * on its own. The runs of one loop share one "reaper": a uv_signal_t on SIGCHLD whose
 * data is the list of that loop's runs not yet reaped. It is found through the loop's
 * own handle list (uv_walk: a SIGCHLD handle whose callback is on_sigchld), created by
 * the first run and closed when its last run is reaped, so there is no global and
 * nothing is hung on the caller's loop->data. On every SIGCHLD it calls waitpid(pid,
 * WNOHANG) for each of its runs' pids and never waitpid(-1): other children of the
 * process (uv_spawn's, anybody's) are left to their owners, and libuv's own SIGCHLD
 * watcher keeps working beside it (libuv delivers a signal to every handle watching
 * it). The reaper is started before posix_spawn, so a child that exits at once still
 * finds a watcher; SIGCHLDs that merge into one are harmless because every pid is
 * checked on each.
 *
 * A run owns five libuv handles: the stdout and stderr pipes, and three timers
 * (deadline: the timeout then the kill grace; sampler: peak memory; drain: the wait for
 * the pipes after the exit). It is over when the main process has been reaped and both
 * pipes are closed (EOF, or the drain timer gave up on them); then every handle is
 * closed and, when the last close callback runs, on_exit is called. Nothing touches the
 * run after on_exit returns, so on_exit may free it. */
#define _GNU_SOURCE  /* pipe2, POSIX_SPAWN_SETSID, posix_spawn_file_actions_add{chdir,closefrom}_np \
                      */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sys/proc_status.h"
#include "worker/runner.h"

extern char **environ;

#define TREE_MAX     4096            /* processes visited per memory sample */
#define DEFAULT_PATH "/bin:/usr/bin" /* what execvp searches when PATH is unset */

/* The SIGCHLD watcher shared by the runs of one loop (see the top of this file). Owned
 * by itself: freed by its close callback, once its last run is reaped. */
typedef struct reaper {
    uv_signal_t sig; /* sig.data is the reaper */
    drv_run *runs;   /* runs not yet reaped, linked by reap_next/reap_prev */
} reaper;

struct drv_run {
    uv_loop_t *loop;
    uv_pipe_t out, err;
    uv_timer_t deadline, sampler, drain;
    int open_handles; /* handles not yet through their close callback */
    bool spawned, exited, out_done, err_done, term_sent, closing, delivered, free_requested;
    int pid;
    reaper *reaper; /* while the main process is not reaped; NULL otherwise */
    drv_run *reap_prev, *reap_next;
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

/* VmRSS and VmHWM of pid in KiB (proc_status.h); 0 where they cannot be read. */
static void read_status(int pid, uint64_t *rss_kb, uint64_t *hwm_kb)
{
    long long rss, hwm;
    drv_proc_memory_kb(pid, &rss, &hwm);
    *rss_kb = rss > 0 ? (uint64_t)rss : 0;
    *hwm_kb = hwm > 0 ? (uint64_t)hwm : 0;
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

/* Sends sig to the run's whole process group. Callers stop once the main process is
 * reaped (process_exited sends the last SIGKILL right then): the group id stays reserved
 * only while some member of the group lives. */
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

/* ---- reaping ----------------------------------------------------------------------- */

static void on_sigchld(uv_signal_t *h, int signum);

/* uv_walk callback: stores in *arg the reaper of the loop, if it has a live one. */
static void find_reaper(uv_handle_t *h, void *arg)
{
    reaper **found = arg;
    if (*found || h->type != UV_SIGNAL || uv_is_closing(h))
        return;
    uv_signal_t *s = (uv_signal_t *)h;
    if (s->signum == SIGCHLD && s->signal_cb == on_sigchld)
        *found = h->data;
}

static void on_reaper_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Puts r on the list of its loop's reaper, creating and starting the reaper if the loop
 * has none. Returns 0, or a libuv error code when SIGCHLD cannot be watched (r is then
 * on no list). */
static int reaper_add(drv_run *r)
{
    reaper *rp = NULL;
    uv_walk(r->loop, find_reaper, &rp);
    if (!rp) {
        rp = drv_xcalloc(1, sizeof *rp); /* freed by on_reaper_closed */
        int rc = uv_signal_init(r->loop, &rp->sig);
        if (rc != 0) {
            free(rp);
            return rc;
        }
        rp->sig.data = rp;
        rc = uv_signal_start(&rp->sig, on_sigchld, SIGCHLD);
        if (rc != 0) {
            uv_close((uv_handle_t *)&rp->sig, on_reaper_closed);
            return rc;
        }
    }
    r->reaper = rp;
    r->reap_prev = NULL;
    r->reap_next = rp->runs;
    if (rp->runs)
        rp->runs->reap_prev = r;
    rp->runs = r;
    return 0;
}

/* Takes r off its reaper's list (nothing if it is on none); the reaper closes when that
 * was its last run. */
static void reaper_remove(drv_run *r)
{
    reaper *rp = r->reaper;
    if (!rp)
        return;
    if (r->reap_prev)
        r->reap_prev->reap_next = r->reap_next;
    else
        rp->runs = r->reap_next;
    if (r->reap_next)
        r->reap_next->reap_prev = r->reap_prev;
    r->reaper = NULL;
    r->reap_prev = r->reap_next = NULL;
    if (!rp->runs)
        uv_close((uv_handle_t *)&rp->sig, on_reaper_closed);
}

/* The main process has been reaped: records how it ended, kills what is left of its
 * group (its pipes then close and the run can end) and starts the drain timer. */
static void process_exited(drv_run *r, int exit_code, int term_signal)
{
    reaper_remove(r);
    r->exited = true;
    r->result.duration_s = (double)(uv_hrtime() - r->start_ns) / 1e9;
    r->result.term_signal = term_signal;
    r->result.exit_code = exit_code;
    signal_group(r, SIGKILL);
    uv_timer_stop(&r->deadline);
    uv_timer_stop(&r->sampler);
    uv_timer_start(&r->drain, on_drain_timeout, DRV_RUN_DRAIN_MS, 0);
    maybe_finish(r);
}

/* Reaps r's main process if it has ended (waitpid on its pid only, WNOHANG). */
static void try_reap(drv_run *r)
{
    if (r->pid <= 0)
        return; /* waitpid(0) would wait for any child of our own group */
    int status = 0;
    pid_t got;
    do
        got = waitpid(r->pid, &status, WNOHANG);
    while (got < 0 && errno == EINTR);
    if (got == 0)
        return; /* still running (or only stopped: stops are not reported) */
    if (got < 0) {
        /* ECHILD: somebody else in the process reaped it (waitpid(-1)); its status is
         * lost, but the run must still end. */
        process_exited(r, -1, 0);
        return;
    }
    if (WIFEXITED(status))
        process_exited(r, WEXITSTATUS(status), 0);
    else if (WIFSIGNALED(status))
        process_exited(r, -1, WTERMSIG(status));
}

/* SIGCHLD: checks every run of this loop's reaper (one signal may stand for several
 * exits). try_reap only ever takes its own run off the list, and the reaper is freed
 * only by its close callback, so walking on with the saved next is safe. */
static void on_sigchld(uv_signal_t *h, int signum)
{
    (void)signum;
    reaper *rp = h->data;
    for (drv_run *r = rp->runs, *next; r; r = next) {
        next = r->reap_next;
        try_reap(r);
    }
}

/* ---- output pipes ------------------------------------------------------------------ */

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

/* Hands the read end fd to p and starts reading it; on failure (fd is then closed) marks
 * the pipe done, and the run ends when the process does. */
static void open_pipe(drv_run *r, uv_pipe_t *p, int fd)
{
    if (uv_pipe_open(p, fd) != 0) {
        close(fd);
        pipe_done(r, p);
    } else if (uv_read_start((uv_stream_t *)p, on_alloc, on_read) != 0) {
        pipe_done(r, p); /* closing p closes fd */
    }
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

/* Finds prog (a name without '/') on the PATH of env, the child's environment, the way
 * execvp in the child did under uv_spawn: entries in order, an empty entry meaning the
 * current directory, PATH unset meaning DEFAULT_PATH; a relative entry is relative to
 * cwd (the child's directory) when cwd is set. Returns the path of the first executable
 * regular file (new string, the caller frees it), or NULL with *errn set to EACCES when
 * only files that cannot be executed were found, ENOENT when nothing was. */
static char *search_path(const char *prog, char *const *env, const char *cwd, int *errn)
{
    const char *path = DEFAULT_PATH;
    for (size_t i = 0; env[i]; i++)
        if (strncmp(env[i], "PATH=", 5) == 0)
            path = env[i] + 5;
    size_t cap = strlen(path) + (cwd ? strlen(cwd) : 0) + strlen(prog) + 4;
    char *cand = drv_xmalloc(cap); /* returned, or freed below */
    bool denied = false;
    for (const char *p = path;; p++) {
        size_t n = strcspn(p, ":");
        const char *dir = n ? p : ".";
        int dlen = n ? (int)n : 1;
        if (dir[0] != '/' && cwd)
            snprintf(cand, cap, "%s/%.*s/%s", cwd, dlen, dir, prog);
        else
            snprintf(cand, cap, "%.*s/%s", dlen, dir, prog);
        struct stat st;
        if (stat(cand, &st) == 0) {
            if (S_ISREG(st.st_mode) && access(cand, X_OK) == 0)
                return cand;
            denied = true;
        } else if (errno == EACCES) {
            denied = true;
        }
        p += n;
        if (!*p)
            break;
    }
    free(cand);
    *errn = denied ? EACCES : ENOENT;
    return NULL;
}

/* Moves *fd to a descriptor above 2 (close-on-exec) if it is 0, 1 or 2, which only
 * happens when the worker runs with a standard stream closed: the child's file actions
 * would otherwise overwrite it before copying it. Returns 0, or an errno value. */
static int above_stdio(int *fd)
{
    if (*fd > 2)
        return 0;
    int moved = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (moved < 0)
        return errno;
    close(*fd);
    *fd = moved;
    return 0;
}

/* posix_spawn of file with args and env as the contract wants it: stdin /dev/null,
 * stdout and stderr the write ends out_w and err_w, cwd (if set), a new session, an
 * empty signal mask and every signal at its default. A file the kernel cannot execute
 * (ENOEXEC: a script without "#!") is run by /bin/sh, as execvp does. Returns 0 with
 * *pid set, or an errno value. */
static int spawn_child(const char *file, char *const *args, char *const *env, const char *cwd,
                       int out_w, int err_w, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t empty, all;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0)
        return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    sigemptyset(&empty);
    sigemptyset(&all);
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaddset(&all, s); /* glibc refuses its own internal signals: fine */
    if (!rc)
        rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, out_w, 1);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(&fa, err_w, 2);
    /* Nothing of the worker's reaches the test: no socket to the coordinator, no pipe of
     * libwebsockets or libuv, whatever flags they were opened with. */
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (!rc && cwd)
        rc = posix_spawn_file_actions_addchdir_np(&fa, cwd);
    if (!rc)
        rc = posix_spawnattr_setsigmask(&attr, &empty);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (!rc)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                                 POSIX_SPAWN_SETSIGDEF);
    if (!rc)
        rc = posix_spawn(pid, file, &fa, &attr, args, env);
    if (rc == ENOEXEC) {
        size_t argc = 0;
        while (args[argc])
            argc++;
        char **sh = drv_xcalloc(argc + 2, sizeof *sh); /* freed below */
        sh[0] = "/bin/sh";
        sh[1] = (char *)file;
        for (size_t i = 1; i < argc; i++)
            sh[i + 1] = args[i];
        rc = posix_spawn(pid, "/bin/sh", &fa, &attr, sh, env);
        free(sh);
    }
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

/* Whether a spawn that failed with errno e failed because of what the test asked for
 * (its program, its arguments, its directory) rather than the machine. */
static bool test_fault(int e)
{
    return e == ENOENT || e == EACCES || e == ENOTDIR || e == ENOEXEC || e == ELOOP ||
           e == ENAMETOOLONG || e == E2BIG || e == EISDIR || e == EPERM;
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

/* Starts the child of r (args, env, cwd as drv_runner_start prepared them): the output
 * pipes, the reaper, posix_spawn. Returns 0 with r->pid set and both read ends handed
 * to r->out and r->err, or an errno value with nothing left open and r on no reaper. */
static int start_child(drv_run *r, char *const *args, char *const *env, const char *cwd)
{
    int out[2] = {-1, -1}, err[2] = {-1, -1};
    int rc = 0;
    char *found = NULL; /* the program found on PATH; freed below */
    const char *file = args[0];
    if (!strchr(file, '/')) {
        found = search_path(file, env, cwd, &rc);
        if (!found)
            return rc;
        file = found;
    }
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
        rc = errno;
    if (!rc)
        rc = above_stdio(&out[1]);
    if (!rc)
        rc = above_stdio(&err[1]);
    /* The reaper watches SIGCHLD before the child exists: its exit cannot be missed. */
    if (!rc && reaper_add(r) != 0)
        rc = EAGAIN;
    pid_t pid = 0;
    if (!rc) {
        r->start_ns = uv_hrtime();
        rc = spawn_child(file, args, env, cwd, out[1], err[1], &pid);
        if (rc != 0)
            reaper_remove(r);
    }
    free(found);
    /* The write ends belong to the child now (or to nobody); the read ends are handed
     * to the loop, or closed when nothing runs. */
    for (int i = 1; i >= 0; i--) {
        if (out[i] >= 0 && (i == 1 || rc != 0))
            close(out[i]);
        if (err[i] >= 0 && (i == 1 || rc != 0))
            close(err[i]);
    }
    if (rc != 0)
        return rc;
    r->pid = pid;
    r->result.pid = pid;
    open_pipe(r, &r->out, out[0]);
    open_pipe(r, &r->err, err[0]);
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
    r->open_handles = 5;

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

    struct stat st;
    int rc = -1;
    if (spec->cwd && stat(spec->cwd, &st) != 0) {
        infra_failure(r, "working directory %s: %s", spec->cwd, strerror(errno));
        r->result.test_fault = true;
    } else if (spec->cwd && !S_ISDIR(st.st_mode)) {
        infra_failure(r, "working directory %s: not a directory", spec->cwd);
        r->result.test_fault = true;
    } else {
        rc = start_child(r, args, env, spec->cwd);
        if (rc != 0) {
            infra_failure(r, "spawn %s: %s", args[0], uv_strerror(uv_translate_sys_error(rc)));
            r->result.test_fault = test_fault(rc);
        }
    }
    free(args);
    free(env);
    *out = r;

    if (rc != 0) {
        /* Nothing runs: close everything; the last close callback delivers the result. */
        r->exited = r->out_done = r->err_done = r->closing = true;
        for (size_t i = 0; i < sizeof handles / sizeof handles[0]; i++)
            uv_close(handles[i], on_closed);
        return 0;
    }
    r->spawned = true;
    uv_timer_start(&r->sampler, on_sample, 0, r->sample_ms);
    /* The loop's cached time may be old (a slow spawn, a caller that blocked): the
     * timeout counts from now. */
    uv_update_time(loop);
    if (spec->timeout_s > 0)
        uv_timer_start(&r->deadline, on_deadline, (uint64_t)(spec->timeout_s * 1000.0 + 0.5), 0);
    /* A child that is already gone is reaped now rather than at the next loop turn (its
     * SIGCHLD then finds nothing to do); on_exit still comes from the loop. */
    try_reap(r);
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
