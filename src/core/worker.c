/* worker.c - names of worker health states. */
#include "core/worker.h"

static const char *const health_names[DRV_HEALTH_COUNT] = {
    [DRV_HEALTH_OK] = "ok",
    [DRV_HEALTH_OVERLOADED] = "overloaded",
    [DRV_HEALTH_DRAINING] = "draining",
    [DRV_HEALTH_QUARANTINED] = "quarantined",
    [DRV_HEALTH_LOST] = "lost",
    [DRV_HEALTH_LEFT] = "left",
};

/* Returns the lower-case name of h ("draining"), or "?" for a value out of range. */
const char *drv_health_name(drv_health h)
{
    if ((int)h < 0 || h >= DRV_HEALTH_COUNT)
        return "?";
    return health_names[h];
}

void drv_worker_busy_slots(const drv_worker *w, double *busy, double *slots)
{
    double sl = w->slots ? (double)w->slots : 1;
    *slots = sl;
    *busy = (double)w->running < sl ? (double)w->running : sl;
}
