/* task.h - a test as the user submitted it.
 *
 * Ownership: a drv_task owns every string and array it points to. drv_task_init()
 * makes an empty task; drv_task_clear() frees what it owns and re-initialises it.
 * The balancer copies what it needs from a task at submission and never keeps a
 * pointer to it. */
#ifndef DRV_CORE_TASK_H
#define DRV_CORE_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/requirements.h"

typedef enum drv_task_state {
    DRV_TASK_QUEUED = 0,    /* waiting for a worker */
    DRV_TASK_ASSIGNED,      /* given to a worker that has not started it yet */
    DRV_TASK_RUNNING,       /* its process runs on a worker */
    DRV_TASK_PASSED,        /* exited 0 */
    DRV_TASK_FAILED,        /* exited non-zero, was killed, or ran out of retries */
    DRV_TASK_TIMED_OUT,     /* killed at its timeout */
    DRV_TASK_CANCELLED,     /* cancelled by a user */
    DRV_TASK_UNSCHEDULABLE, /* no worker in the fleet can run it */
    DRV_TASK_SKIPPED,       /* not run: a test it runs after did not pass, or it said skipped */
    DRV_TASK_STATE_COUNT
} drv_task_state;

const char *drv_task_state_name(drv_task_state s);
/* Returns -1 for an unknown name. */
int drv_task_state_parse(const char *name);
static inline bool drv_task_state_final(drv_task_state s)
{
    return s >= DRV_TASK_PASSED;
}

#define DRV_PRIORITY_MIN     0
#define DRV_PRIORITY_MAX     1000
#define DRV_PRIORITY_DEFAULT 100 /* higher runs first */

typedef struct drv_task {
    uint64_t id;
    char *name;  /* unique name of the test, e.g. "tests/test_bert.py::test_fp16" */
    char **argv; /* NULL-terminated; argv[0] is the program */
    char **env;  /* NULL-terminated "KEY=VALUE" added to the worker's env; may be NULL */
    char *cwd;   /* may be NULL: the worker's directory */
    drv_requirements req;
    int32_t priority;      /* DRV_PRIORITY_MIN..MAX, higher first */
    double timeout_s;      /* 0 = none */
    uint32_t max_retries;  /* re-runs after a loss of infrastructure (worker lost, runner crash) */
    uint32_t reruns;       /* re-runs after the test's own failure (non-zero exit, timeout) */
    bool retry_on_failure; /* old spelling: when reruns is 0, reruns = max_retries */
    bool not_idempotent;   /* "idempotent": false: never run two copies at once (no
                              speculative copy of a straggler) */
    char *model_id;        /* e.g. "bert-base-uncased"; may be NULL */
    int family;            /* drv_family id from the analyzer; 0 = unknown */
    char *test_type;       /* e.g. "unit", "integration", "performance"; may be NULL */
    uint32_t batch_size;   /* 0 = let the analyzer suggest */
    char **labels;         /* NULL-terminated free-form labels; may be NULL */
    /* Ordering and exclusion (docs/api.md, "after" and "locks"). */
    char **after;           /* names of tests of the same submission it waits for; may be NULL */
    bool run_anyway;        /* run even when one of those did not pass (else it is skipped) */
    char **locks;           /* names of locks it holds while assigned or running; may be NULL */
    bool exclusive;         /* runs alone: nothing else is placed while it is held (RUN_SERIAL) */
    uint8_t skip_exit_code; /* 1..255: this exit code means "skipped" (automake's 77); 0 none */
    bool disabled;          /* not run: final skipped at submission (CTest's DISABLED) */
    /* py3 (issue 13, docs/api.md "Batches"): a batch names the tests it runs inside its
     * one process; each gets a result of its own, recorded from the batch's output. A
     * member's result is a task of its own with batch_of the batch's id (set by the
     * coordinator, never submitted). */
    char **members;    /* names of the tests this batch runs; may be NULL */
    uint64_t batch_of; /* 0, or the batch that ran this member test */
    drv_task_state state;
    uint32_t attempts; /* attempts started so far */
    /* Charged so far (from the stored attempts at a restart): an attempt lost while it
     * ran or whose runner failed uses one of max_retries; a failing one of reruns. */
    uint32_t retries_used;
    uint32_t reruns_used;
} drv_task;

/* max_retries of a submitted test that does not say (the API's default). */
#define DRV_MAX_RETRIES_DEFAULT 2

void drv_task_init(drv_task *t);
/* The compatibility alias: a test with retry_on_failure and no reruns gets reruns =
 * max_retries; retry_on_failure is cleared (reruns says it from here on). */
void drv_task_apply_retry_alias(drv_task *t);
/* t's reruns with the alias applied (t is not changed). */
uint32_t drv_task_reruns(const drv_task *t);
void drv_task_clear(drv_task *t);
/* Deep copy; dst must be initialised (its old contents are cleared). */
void drv_task_copy(drv_task *dst, const drv_task *src);

/* NULL-terminated string vectors, owned. */
char **drv_strv_dup(char *const *v);
void drv_strv_free(char **v);
size_t drv_strv_len(char *const *v);

#endif
