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
    uint32_t max_retries;  /* re-placements after a lost worker */
    bool retry_on_failure; /* also retry a non-zero exit */
    bool not_idempotent;   /* "idempotent": false: never run two copies at once (no
                              speculative copy of a straggler) */
    char *model_id;        /* e.g. "bert-base-uncased"; may be NULL */
    int family;            /* drv_family id from the analyzer; 0 = unknown */
    char *test_type;       /* e.g. "unit", "integration", "performance"; may be NULL */
    uint32_t batch_size;   /* 0 = let the analyzer suggest */
    char **labels;         /* NULL-terminated free-form labels; may be NULL */
    drv_task_state state;
    uint32_t attempts; /* attempts started so far */
} drv_task;

void drv_task_init(drv_task *t);
void drv_task_clear(drv_task *t);
/* Deep copy; dst must be initialised (its old contents are cleared). */
void drv_task_copy(drv_task *dst, const drv_task *src);

/* NULL-terminated string vectors, owned. */
char **drv_strv_dup(char *const *v);
void drv_strv_free(char **v);
size_t drv_strv_len(char *const *v);

#endif
