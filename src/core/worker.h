/* worker.h - a machine of the fleet as the balancer sees it.
 *
 * The balancer owns its workers (drv_balancer_worker_add() copies the capabilities).
 * Counts of running and assigned tests, reserved resources, thermal state and health
 * live here; the tests themselves are linked from the balancer's task records. */
#ifndef DRV_CORE_WORKER_H
#define DRV_CORE_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/requirements.h"
#include "core/thermal.h"

typedef enum drv_health {
    DRV_HEALTH_OK = 0,
    DRV_HEALTH_OVERLOADED,  /* reported overload: nothing new until it recovers */
    DRV_HEALTH_DRAINING,    /* finishing what it holds, takes nothing new */
    DRV_HEALTH_QUARANTINED, /* repeated infrastructure failures: held until cleared */
    DRV_HEALTH_LOST,        /* missed heartbeats or disconnected */
    DRV_HEALTH_LEFT,        /* drained itself (SIGTERM) and went: not a failure */
    DRV_HEALTH_COUNT
} drv_health;

const char *drv_health_name(drv_health h);

/* What the worker has done, for quarantine and the dashboard. */
typedef struct drv_worker_history {
    uint32_t finished; /* tests that ran to an exit status */
    uint32_t passed;
    uint32_t infra_failures;    /* runner crash, spawn failure, lost connection */
    uint32_t infra_failure_run; /* consecutive infrastructure failures */
    bool loss_pending;          /* lost while running tests; judged at its next hello */
    double busy_s;              /* summed run time of finished tests */
} drv_worker_history;

#define DRV_WORKER_NAME_MAX 64

typedef struct drv_worker {
    char name[DRV_WORKER_NAME_MAX]; /* unique, e.g. the host name plus an index */
    drv_capabilities caps;
    float speed;     /* relative speed, 1 = reference; learned or configured */
    uint32_t slots;  /* tests it runs at once */
    uint32_t wclass; /* capability class: workers with equal capabilities share one */

    /* what it holds */
    uint32_t running;  /* started tests */
    uint32_t assigned; /* assigned, not started (the backpressure window) */
    uint32_t used_cpu; /* reserved by running and assigned tests */
    uint32_t used_gpu;
    uint64_t used_memory_mb;
    double predicted_load_s; /* summed predicted run time of what it holds */

    drv_health health;
    char health_reason[96];
    float reported_load; /* 0..1 from its heartbeat */
    drv_thermal thermal;
    drv_worker_history history;
    double joined_at;
} drv_worker;

/* The slots w keeps busy and the slots it has, for utilization = busy / slots, the one
 * definition the sampler's series and the dashboard's feed share: running tests over
 * slots, each worker's running capped at its slots (a worker reporting none counts one),
 * so the ratio stays in [0, 1]; assigned tests wait in the window and are not busy. */
void drv_worker_busy_slots(const drv_worker *w, double *busy, double *slots);

#endif
