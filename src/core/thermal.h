/* thermal.h - the warm-up and cool-down state machine of one worker.
 *
 *   COLD ──first work──▶ WARMING ──ramp done──▶ WARM ──idle long──▶ COLD
 *                           │                    │
 *                           └──── trigger ──▶ COOLING ◀── trigger ┘
 *                                                │
 *                                 calm for cooldown_s ──▶ WARM
 *
 * A fresh worker admits every slot at once (initial_share 1, the default: COLD goes
 * straight to WARM on its first work). With initial_share < 1 a cold worker is given a
 * growing share of its slots over a ramp (initial_share at the start, all of them after
 * ramp_s), for machines whose first tests are known to be slow.
 *
 * Triggers come only from what the worker measured, never from how many of its slots
 * are busy (a worker whose slots are all taken is doing its job): CPU pressure >=
 * cpu_pressure_limit, memory pressure >= memory_pressure_limit, or (while it has work)
 * a CPU clock below freq_ratio_limit of its maximum, each sustained for
 * overload_sustain_s; a temperature at or above temperature_limit_c; a throttle signal
 * (thermal throttle counters or GPU throttle reasons); error_threshold consecutive
 * infrastructure errors. A cooling worker admits cooling_share of its slots until it
 * has been calm for cooldown_s. Every transition records a reason that can be shown to
 * a user (drv_thermal_describe).
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
    DRV_THERMAL_R_JOINED = 0,      /* registered, nothing run yet */
    DRV_THERMAL_R_FIRST_WORK,      /* cold -> warming */
    DRV_THERMAL_R_RAMP_DONE,       /* warming -> warm */
    DRV_THERMAL_R_IDLE,            /* warm -> cold after idle_cold_s without work */
    DRV_THERMAL_R_CPU_PRESSURE,    /* -> cooling: cpu pressure >= limit for overload_sustain_s */
    DRV_THERMAL_R_ERRORS,          /* -> cooling: error_threshold consecutive infra errors */
    DRV_THERMAL_R_TEMPERATURE,     /* -> cooling: temperature >= temperature_limit_c */
    DRV_THERMAL_R_THROTTLED,       /* -> cooling: the worker reported throttling */
    DRV_THERMAL_R_RECOVERED,       /* cooling -> warm after cooldown_s calm */
    DRV_THERMAL_R_MEMORY_PRESSURE, /* -> cooling: memory pressure >= limit, sustained */
    DRV_THERMAL_R_SLOW_CLOCK,      /* -> cooling: busy with the clock < freq_ratio_limit */
    DRV_THERMAL_R_COUNT
} drv_thermal_reason;

typedef struct drv_thermal_config {
    double ramp_s;                /* warming duration when initial_share < 1 (default 30) */
    double initial_share;         /* share of slots admitted when warming starts (1) */
    double cpu_pressure_limit;    /* cpu pressure counted as overload (0.9) */
    double memory_pressure_limit; /* memory pressure counted as overload (0.2) */
    double freq_ratio_limit;      /* clock / max clock below this is slow (0.5; 0 = off) */
    double overload_sustain_s;    /* how long a pressure must last (10) */
    uint32_t error_threshold;     /* consecutive infra errors that trigger cooling (3) */
    double temperature_limit_c;   /* (85) */
    double cooling_share;         /* share admitted while cooling (0.5) */
    double cooldown_s;            /* calm time before cooling ends (30) */
    double idle_cold_s;           /* idle time after which a warm worker is cold again (600) */
} drv_thermal_config;

/* A heartbeat's worth of what the worker says about itself (docs/protocol.md). */
typedef struct drv_thermal_signal {
    double load;            /* running / slots: shown, never a trigger; < 0 when unknown */
    double cpu_pressure;    /* 0..1 share of time tasks waited for a CPU; < 0 unknown */
    double memory_pressure; /* 0..1 share of time tasks waited for memory; < 0 unknown */
    double freq_ratio;      /* CPU clock / maximum clock, 0..1; < 0 unknown */
    double temperature_c;   /* hottest sensor (CPU zones, GPUs); < 0 when unknown */
    bool throttled;         /* throttle counters rose, or a GPU throttles for heat/power */
    bool busy;              /* it runs or holds at least one test */
    /* ct3 (issue 13): the share 0..1 of the machine's CPU its own tests used, when the
     * worker measured it (tests_cpu_known). CPU pressure is an overload only while they
     * use at least DRV_THERMAL_TESTS_CPU_MIN of it: fewer slots cannot relieve a machine
     * loaded by other processes, and would only slow the worker's tests. */
    double tests_cpu;
    bool tests_cpu_known;
} drv_thermal_signal;

/* The least share of the machine's CPU a worker's tests use for CPU pressure to count. */
#define DRV_THERMAL_TESTS_CPU_MIN 0.5

/* A signal that says nothing: every measurement unknown, not throttled, not busy. */
#define DRV_THERMAL_SIGNAL_UNKNOWN                                                                 \
    ((drv_thermal_signal){.load = -1,                                                              \
                          .cpu_pressure = -1,                                                      \
                          .memory_pressure = -1,                                                   \
                          .freq_ratio = -1,                                                        \
                          .temperature_c = -1})

typedef struct drv_thermal {
    drv_thermal_state state;
    drv_thermal_reason reason; /* of the last transition */
    double reason_value;       /* the figure behind it: pressure, error count, temperature */
    double since;              /* when the current state began */
    double overload_since;     /* start of the current overload, < 0 when none */
    double calm_since;         /* last trigger seen while cooling */
    double last_work;          /* last time it had work (running or assigned) */
    uint32_t error_run;        /* consecutive infrastructure errors */
    drv_thermal_signal last;   /* the last heartbeat's measurements (all unknown at first) */
} drv_thermal;

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
/* One sentence: "cooling for 12.0 s (memory pressure 0.35 >= 0.20 for 10 s): admits 4 of
 * 8 slots"; the time is how long the state has lasted at now. */
void drv_thermal_describe(const drv_thermal *th, const drv_thermal_config *cfg, uint32_t slots,
                          double now, char *buf, size_t len);

#endif
