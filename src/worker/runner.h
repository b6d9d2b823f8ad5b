/* runner.h - runs one test as a child process on a libuv loop.
 *
 * The child gets its argv (executed directly, never through a shell unless spec->shell),
 * the worker's environment plus the spec's additions, a working directory, stdin from
 * /dev/null, no blocked signal and every signal at its default disposition (glibc's
 * posix_spawn leaves its two internal signals, 32 and 33, ignored), and its own session
 * and process group (posix_spawn with POSIX_SPAWN_SETSID, so the group id is the
 * child's pid). Everything the test starts stays in that group unless it calls
 * setsid()/setpgid() itself.
 *
 * Ending: at the timeout, or on drv_run_cancel(), the whole group gets SIGTERM, and
 * SIGKILL kill_grace_s later if the main process is still alive. When the main process
 * exits (by itself or killed), whatever is left of its group is killed with SIGKILL: a
 * test cannot leave processes behind on the worker. The run then waits for the output
 * pipes to close (at most DRV_RUN_DRAIN_MS, for a process that left the group and kept
 * them open) and calls on_exit once.
 *
 * Output: stdout and stderr are read as they come; every chunk goes to on_output (if
 * set) as it arrives, and the last output_cap_bytes of the two streams combined (in the
 * order the chunks were read) are kept for the result. When more was written, the
 * kept text starts with the line "[drover: N bytes of output dropped]".
 * The cap is allocated when the run starts, so keep it to what a report needs.
 *
 * Peak memory (Linux; 0 elsewhere): every sample_interval_ms the runner reads VmHWM of
 * the main process and VmRSS of the main process and its descendants (walking
 * /proc/PID/task/PID/children), and keeps the largest of the main process's VmHWM and
 * the descendants' summed VmRSS. Limits: the main process is reaped before on_exit, so
 * there is no final reading, and a process that lives less than one interval may not be
 * seen at all; a descendant's peak between two samples is missed; a descendant whose
 * parent died (re-parented) is no longer counted; pages shared between processes are
 * counted once per process.
 *
 * Ownership: drv_runner_start() allocates the drv_run; the caller frees it with
 * drv_run_free() once on_exit has been called (inside on_exit is fine). The result
 * passed to on_exit, and its output, belong to the run and live until drv_run_free().
 * The spec and the strings it points to are only read during drv_runner_start(). */
#ifndef DRV_WORKER_RUNNER_H
#define DRV_WORKER_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/error.h"

#define DRV_RUN_OUTPUT_CAP_DEFAULT (1024u * 1024u)
#define DRV_RUN_KILL_GRACE_DEFAULT 2.0 /* seconds between SIGTERM and SIGKILL */
#define DRV_RUN_SAMPLE_MS_DEFAULT  50
#define DRV_RUN_DRAIN_MS           500

typedef struct drv_run drv_run;

typedef enum drv_run_stream {
    DRV_RUN_STDOUT = 1,
    DRV_RUN_STDERR = 2,
} drv_run_stream;

typedef struct drv_run_result {
    bool infra_failure;        /* the test could not be started; error says why */
    bool test_fault;           /* ...because of the test itself: its program is missing or
                                  cannot be executed, its working directory is wrong */
    char error[DRV_ERROR_MAX]; /* "spawn /nonexistent: no such file or directory" */
    int pid;                   /* the main process, also the process group id; 0 if none */
    int exit_code;             /* -1 when killed by a signal or not started */
    int term_signal;           /* the signal that killed the main process, 0 if none */
    bool timed_out;            /* the group was killed at the timeout */
    bool cancelled;            /* the group was killed by drv_run_cancel() */
    double duration_s;         /* spawn to exit, monotonic clock */
    uint64_t peak_memory_kb;   /* see the top of this file; 0 when not measured */
    const char *output;        /* NUL-terminated tail of stdout+stderr (see above) */
    size_t output_len;
    uint64_t output_bytes;   /* every byte the test wrote */
    uint64_t output_dropped; /* bytes not kept in output */
} drv_run_result;

/* Called for every chunk read from the child (not NUL-terminated). */
typedef void (*drv_run_output_cb)(drv_run *run, drv_run_stream stream, const char *chunk,
                                  size_t len, void *data);
/* Called once, when the run is over and every handle it used is closed. */
typedef void (*drv_run_exit_cb)(drv_run *run, const drv_run_result *result, void *data);

typedef struct drv_run_spec {
    char *const *argv; /* NULL-terminated; argv[0] the program (searched on the PATH
                          of the child's environment if it has no '/'); with shell,
                          argv[0] is a command line for /bin/sh -c and argv[1..] become
                          $0, $1, ... */
    bool shell;
    char *const *env;            /* NULL-terminated "KEY=VALUE" added to (or replacing in) the
                                    worker's environment; may be NULL */
    const char *cwd;             /* NULL: the worker's directory */
    double timeout_s;            /* 0: none */
    double kill_grace_s;         /* 0: DRV_RUN_KILL_GRACE_DEFAULT */
    size_t output_cap_bytes;     /* 0: DRV_RUN_OUTPUT_CAP_DEFAULT */
    unsigned sample_interval_ms; /* 0: DRV_RUN_SAMPLE_MS_DEFAULT */
    drv_run_output_cb on_output; /* may be NULL */
    drv_run_exit_cb on_exit;     /* may be NULL (then nobody learns the result) */
    void *data;                  /* passed to both callbacks */
} drv_run_spec;

/* Starts spec on loop and stores the new run in *out. Returns -1 with err filled, and
 * allocates nothing, when the spec itself is wrong (no argv, empty program, an env entry
 * without '=', a negative timeout). Every other failure (program not found, not
 * executable, working directory missing) is a started run whose on_exit reports
 * infra_failure with the reason; on_exit is never called from inside this function. */
int drv_runner_start(uv_loop_t *loop, const drv_run_spec *spec, drv_run **out, drv_error *err);

/* Kills the run's process group: SIGTERM now, SIGKILL after the grace; the result says
 * cancelled. Does nothing when run is NULL or its main process has already exited. */
void drv_run_cancel(drv_run *run);

/* The main process's pid, which is also its process group id; 0 when it did not start
 * (or run is NULL). */
int drv_run_pid(const drv_run *run);

/* Frees a run whose on_exit has been called. Called earlier, it cancels the run instead
 * and frees it once its handles are closed, without calling on_exit (the loop must keep
 * running until then). NULL is ignored. */
void drv_run_free(drv_run *run);

#endif
