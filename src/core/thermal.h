/* thermal.h - the warm-up and cool-down state machine of one worker.
 *
 *   COLD ──first work──▶ WARMING ──ramp done──▶ WARM ──idle long──▶ COLD
 *                           │                    │
 *                           └──── trigger ──▶ COOLING ◀── trigger ┘
 *                                                │
 *                                 calm for cooldown_s ──▶ WARM
 *
 * A cold worker has empty caches, unloaded models, a browser not yet started: it is
 * given a growing share of its slots over a ramp (initial_share at the start, all of
 * them after ramp_s). A trigger is sustained overload (reported load >= overload_load
 * for overload_sustain_s), error_threshold consecutive infrastructure errors, a
 * temperature at or above temperature_limit_c, or a throttle signal; a cooling worker
 * admits cooling_share of its slots until it has been calm for cooldown_s. Every
 * transition records a reason that can be shown to a user.
 *
 * Pure: time is passed in, nothing is allocated. */
#ifndef DRV_CORE_THERMAL_H
#define DRV_CORE_THERMAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum drv_thermal_state {
    DRV_THERMAL_COLD = 0,
    DRV_THERMAL_WARMING,
    DRV_THERMAL_WARM,
    DRV_THERMAL_COOLING,
    DRV_THERMAL_STATE_COUNT
} drv_thermal_state;

typedef enum drv_thermal_reason {
    DRV_THERMAL_R_JOINED = 0,  /* registered, nothing run yet */
    DRV_THERMAL_R_FIRST_WORK,  /* cold -> warming */
    DRV_THERMAL_R_RAMP_DONE,   /* warming -> warm */
    DRV_THERMAL_R_IDLE,        /* warm -> cold after idle_cold_s without work */
    DRV_THERMAL_R_OVERLOAD,    /* -> cooling: load >= overload_load for overload_sustain_s */
    DRV_THERMAL_R_ERRORS,      /* -> cooling: error_threshold consecutive infra errors */
    DRV_THERMAL_R_TEMPERATURE, /* -> cooling: temperature >= temperature_limit_c */
    DRV_THERMAL_R_THROTTLED,   /* -> cooling: the worker reported throttling */
    DRV_THERMAL_R_RECOVERED,   /* cooling -> warm after cooldown_s calm */
    DRV_THERMAL_R_COUNT
} drv_thermal_reason;

typedef struct drv_thermal_config {
    double ramp_s;              /* warming duration (default 30) */
    double initial_share;       /* share of slots admitted when warming starts (0.25) */
    double overload_load;       /* reported load counted as overload (0.95) */
    double overload_sustain_s;  /* how long overload must last (10) */
    uint32_t error_threshold;   /* consecutive infra errors that trigger cooling (3) */
    double temperature_limit_c; /* (85) */
    double cooling_share;       /* share admitted while cooling (0.5) */
    double cooldown_s;          /* calm time before cooling ends (30) */
    double idle_cold_s;         /* idle time after which a warm worker is cold again (600) */
} drv_thermal_config;

typedef struct drv_thermal {
    drv_thermal_state state;
    drv_thermal_reason reason; /* of the last transition */
    double reason_value;       /* the figure behind it: load, error count, temperature */
    double since;              /* when the current state began */
    double overload_since;     /* start of the current overload, < 0 when none */
    double calm_since;         /* last trigger seen while cooling */
    double last_work;          /* last time it had work (running or assigned) */
    uint32_t error_run;        /* consecutive infrastructure errors */
} drv_thermal;

/* A heartbeat's worth of what the worker says about itself. */
typedef struct drv_thermal_signal {
    double load;          /* 0..1 (or more when oversubscribed); < 0 when unknown */
    double temperature_c; /* < 0 when unknown */
    bool throttled;
    bool busy; /* it runs or holds at least one test */
} drv_thermal_signal;

void drv_thermal_config_default(drv_thermal_config *cfg);
/* Starts COLD with reason JOINED at now. */
void drv_thermal_init(drv_thermal *th, double now);

/* The worker was given work at now: COLD -> WARMING. Returns true if the state changed. */
bool drv_thermal_on_work(drv_thermal *th, const drv_thermal_config *cfg, double now);
/* A heartbeat at now; applies triggers, ramp end, recovery and idling.
 * Returns true if the state changed. */
bool drv_thermal_observe(drv_thermal *th, const drv_thermal_config *cfg, double now,
                         const drv_thermal_signal *sig);
/* The outcome of a test on this worker: infra_error counts toward the error trigger,
 * anything else resets the run of errors. Returns true if the state changed. */
bool drv_thermal_on_result(drv_thermal *th, const drv_thermal_config *cfg, double now,
                           bool infra_error);
/* Advances time-driven transitions (ramp end, recovery, idling) without a signal. */
bool drv_thermal_tick(drv_thermal *th, const drv_thermal_config *cfg, double now);

/* How many of slots it admits at now: at least 1 of a non-zero slot count, never more
 * than slots. COLD admits like the start of the ramp. */
uint32_t drv_thermal_admitted(const drv_thermal *th, const drv_thermal_config *cfg, uint32_t slots,
                              double now);

/* The first time after now at which drv_thermal_admitted() may grow without any other
 * call: the next step of the warm-up ramp, or the end of a cool-down. INFINITY when it
 * cannot grow by itself (COLD waits for work, WARM admits every slot). Always > now. */
double drv_thermal_next_growth(const drv_thermal *th, const drv_thermal_config *cfg, uint32_t slots,
                               double now);

const char *drv_thermal_state_name(drv_thermal_state s);
const char *drv_thermal_reason_name(drv_thermal_reason r);
/* One sentence: "warming since 3.0 s (first work): admits 2 of 8 slots". */
void drv_thermal_describe(const drv_thermal *th, const drv_thermal_config *cfg, uint32_t slots,
                          double now, char *buf, size_t len);

#endif
