/* thermal.c - the warm-up and cool-down state machine of one worker.
 *
 * Decisions the header leaves open:
 *   - A trigger moves every state to COOLING, COLD included: a worker that is already
 *     hot or throttled before its first test (another job on the machine, a heat
 *     wave) must not be handed its ramp as if it were healthy. From COOLING it
 *     recovers to WARM, as the diagram draws it.
 *   - While COOLING a new trigger restarts the calm period (calm_since = now) but does
 *     not change reason / reason_value: they stay those of the transition to COOLING.
 *   - Time-driven transitions are dated when they became due, not when they were
 *     noticed (a ramp that ends at since + ramp_s is WARM from that moment), so the
 *     result does not depend on how often the caller ticks; several can happen in
 *     one call (WARMING -> WARM -> COLD after a long silence).
 *   - Triggers are applied before the time-driven transitions, so a trigger seen at
 *     the very end of a cooldown extends it instead of being lost.
 *   - error_threshold 0 disables the error trigger; a measurement < 0 is unknown and
 *     triggers nothing (an older worker that sends none is never cooled by pressure).
 *     The load (running / slots) is kept for display and triggers nothing.
 *   - One overload clock runs while any pressure is over its limit (memory, cpu, or a
 *     slow clock while busy: an idle machine's governor lowers its clock on purpose);
 *     when it has run overload_sustain_s the reason is the first of memory, cpu, clock
 *     still over. When several triggers arrive in one heartbeat, the reason recorded is
 *     the first of temperature, throttled, pressure.
 *   - initial_share >= 1 means no ramp: first work moves COLD straight to WARM. */
#include "core/thermal.h"

#include <math.h>
#include <stdio.h>

#define SHARE_EPSILON 1e-9 /* so 0.1 * 30 slots is 3, not 4 */

void drv_thermal_config_default(drv_thermal_config *cfg)
{
    if (!cfg)
        return;
    cfg->ramp_s = 30;
    cfg->initial_share = 1;
    cfg->cpu_pressure_limit = 0.9;
    cfg->memory_pressure_limit = 0.2;
    cfg->freq_ratio_limit = 0.5;
    cfg->overload_sustain_s = 10;
    cfg->error_threshold = 3;
    cfg->temperature_limit_c = 85;
    cfg->cooling_share = 0.5;
    cfg->cooldown_s = 30;
    cfg->idle_cold_s = 600;
}

void drv_thermal_init(drv_thermal *th, double now)
{
    if (!th)
        return;
    th->state = DRV_THERMAL_COLD;
    th->reason = DRV_THERMAL_R_JOINED;
    th->reason_value = 0;
    th->since = now;
    th->overload_since = -1;
    th->calm_since = now;
    th->last_work = now;
    th->error_run = 0;
    th->last = DRV_THERMAL_SIGNAL_UNKNOWN;
}

/* Moves to state at `at` for reason (with its figure). */
static void enter(drv_thermal *th, drv_thermal_state state, drv_thermal_reason reason, double value,
                  double at)
{
    th->state = state;
    th->reason = reason;
    th->reason_value = value;
    th->since = at;
}

/* A trigger at now: any state goes COOLING; COOLING restarts its calm period.
 * Returns true if the state changed. */
static bool trigger(drv_thermal *th, drv_thermal_reason reason, double value, double now)
{
    th->calm_since = now;
    if (th->state == DRV_THERMAL_COOLING)
        return false;
    enter(th, DRV_THERMAL_COOLING, reason, value, now);
    return true;
}

bool drv_thermal_tick(drv_thermal *th, const drv_thermal_config *cfg, double now)
{
    if (!th || !cfg)
        return false;
    bool changed = false;
    for (;;) {
        double due;
        if (th->state == DRV_THERMAL_WARMING) {
            due = th->since + (cfg->ramp_s > 0 ? cfg->ramp_s : 0);
            if (now < due)
                break;
            enter(th, DRV_THERMAL_WARM, DRV_THERMAL_R_RAMP_DONE, 0, due);
        } else if (th->state == DRV_THERMAL_COOLING) {
            due = th->calm_since + (cfg->cooldown_s > 0 ? cfg->cooldown_s : 0);
            if (now < due)
                break;
            enter(th, DRV_THERMAL_WARM, DRV_THERMAL_R_RECOVERED, due - th->calm_since,
                  due > th->since ? due : th->since);
        } else if (th->state == DRV_THERMAL_WARM) {
            due = th->last_work + (cfg->idle_cold_s > 0 ? cfg->idle_cold_s : 0);
            if (now < due)
                break;
            enter(th, DRV_THERMAL_COLD, DRV_THERMAL_R_IDLE, due - th->last_work,
                  due > th->since ? due : th->since);
        } else {
            break;
        }
        changed = true;
    }
    return changed;
}

bool drv_thermal_on_work(drv_thermal *th, const drv_thermal_config *cfg, double now)
{
    if (!th || !cfg)
        return false;
    /* Idling is settled first: a warm worker that had nothing for idle_cold_s is cold
     * again and warms up anew. */
    bool changed = drv_thermal_tick(th, cfg, now);
    th->last_work = now;
    if (th->state == DRV_THERMAL_COLD) {
        bool ramp = cfg->initial_share < 1 && cfg->ramp_s > 0;
        enter(th, ramp ? DRV_THERMAL_WARMING : DRV_THERMAL_WARM, DRV_THERMAL_R_FIRST_WORK, 0, now);
        changed = true;
    }
    return changed;
}

/* The first pressure of sig over its limit (memory, cpu, then a slow clock while busy),
 * or DRV_THERMAL_R_COUNT when none is. */
static drv_thermal_reason pressure_over(const drv_thermal_config *cfg,
                                        const drv_thermal_signal *sig)
{
    if (sig->memory_pressure >= 0 && sig->memory_pressure >= cfg->memory_pressure_limit)
        return DRV_THERMAL_R_MEMORY_PRESSURE;
    if (sig->cpu_pressure >= 0 && sig->cpu_pressure >= cfg->cpu_pressure_limit &&
        !(sig->tests_cpu_known && sig->tests_cpu < DRV_THERMAL_TESTS_CPU_MIN))
        return DRV_THERMAL_R_CPU_PRESSURE;
    if (sig->busy && sig->freq_ratio >= 0 && sig->freq_ratio < cfg->freq_ratio_limit)
        return DRV_THERMAL_R_SLOW_CLOCK;
    return DRV_THERMAL_R_COUNT;
}

static double pressure_value(const drv_thermal_signal *sig, drv_thermal_reason r)
{
    return r == DRV_THERMAL_R_MEMORY_PRESSURE ? sig->memory_pressure
           : r == DRV_THERMAL_R_CPU_PRESSURE  ? sig->cpu_pressure
                                              : sig->freq_ratio;
}

bool drv_thermal_observe(drv_thermal *th, const drv_thermal_config *cfg, double now,
                         const drv_thermal_signal *sig)
{
    if (!th || !cfg)
        return false;
    if (!sig)
        return drv_thermal_tick(th, cfg, now);
    bool changed = false;
    th->last = *sig;
    if (sig->busy)
        th->last_work = now;
    drv_thermal_reason over = pressure_over(cfg, sig);
    if (over != DRV_THERMAL_R_COUNT) {
        if (th->overload_since < 0)
            th->overload_since = now;
    } else {
        th->overload_since = -1;
    }
    if (sig->temperature_c >= 0 && sig->temperature_c >= cfg->temperature_limit_c)
        changed = trigger(th, DRV_THERMAL_R_TEMPERATURE, sig->temperature_c, now);
    else if (sig->throttled)
        changed = trigger(th, DRV_THERMAL_R_THROTTLED, 0, now);
    else if (th->overload_since >= 0 && now - th->overload_since >= cfg->overload_sustain_s)
        changed = trigger(th, over, pressure_value(sig, over), now);
    return drv_thermal_tick(th, cfg, now) || changed;
}

bool drv_thermal_on_result(drv_thermal *th, const drv_thermal_config *cfg, double now,
                           bool infra_error)
{
    if (!th || !cfg)
        return false;
    bool changed = false;
    th->last_work = now;
    if (!infra_error) {
        th->error_run = 0;
    } else {
        if (th->error_run < UINT32_MAX)
            th->error_run++;
        if (cfg->error_threshold > 0 && th->error_run >= cfg->error_threshold)
            changed = trigger(th, DRV_THERMAL_R_ERRORS, th->error_run, now);
    }
    return drv_thermal_tick(th, cfg, now) || changed;
}

/* The share of slots admitted at now, in [0, 1]. */
static double share_at(const drv_thermal *th, const drv_thermal_config *cfg, double now)
{
    double initial = cfg->initial_share;
    if (!(initial >= 0))
        initial = 0;
    if (initial > 1)
        initial = 1;
    switch (th->state) {
    case DRV_THERMAL_COLD:
        return initial;
    case DRV_THERMAL_WARMING: {
        double f = cfg->ramp_s > 0 ? (now - th->since) / cfg->ramp_s : 1;
        if (!(f >= 0))
            f = 0;
        if (f > 1)
            f = 1;
        return initial + (1 - initial) * f;
    }
    case DRV_THERMAL_COOLING: {
        double c = cfg->cooling_share;
        return !(c >= 0) ? 0 : c > 1 ? 1 : c;
    }
    case DRV_THERMAL_WARM:
    default:
        return 1;
    }
}

uint32_t drv_thermal_admitted(const drv_thermal *th, const drv_thermal_config *cfg, uint32_t slots,
                              double now)
{
    if (slots == 0)
        return 0;
    if (!th || !cfg)
        return slots;
    double n = ceil(share_at(th, cfg, now) * slots - SHARE_EPSILON);
    if (n < 1)
        return 1;
    if (n > slots)
        return slots;
    return (uint32_t)n;
}

double drv_thermal_next_growth(const drv_thermal *th, const drv_thermal_config *cfg, uint32_t slots,
                               double now)
{
    if (!th || !cfg || slots == 0)
        return INFINITY;
    double due = INFINITY;
    if (th->state == DRV_THERMAL_COOLING) {
        due = th->calm_since + (cfg->cooldown_s > 0 ? cfg->cooldown_s : 0);
    } else if (th->state == DRV_THERMAL_WARMING) {
        uint32_t n = drv_thermal_admitted(th, cfg, slots, now);
        double initial = cfg->initial_share;
        if (!(initial >= 0))
            initial = 0;
        if (n >= slots || !(cfg->ramp_s > 0) || initial >= 1)
            return INFINITY;
        /* admitted = ceil(share x slots - eps) passes n once share > (n + eps) / slots */
        double f = ((n + SHARE_EPSILON) / slots - initial) / (1 - initial);
        due = th->since + cfg->ramp_s * (f < 1 ? f : 1);
    }
    /* Rounding may put the step at or before now: look again just after it. */
    return due > now ? due : nextafter(now, INFINITY);
}

const char *drv_thermal_state_name(drv_thermal_state s)
{
    static const char *const names[DRV_THERMAL_STATE_COUNT] = {
        [DRV_THERMAL_COLD] = "cold",
        [DRV_THERMAL_WARMING] = "warming",
        [DRV_THERMAL_WARM] = "warm",
        [DRV_THERMAL_COOLING] = "cooling",
    };
    return (unsigned)s < DRV_THERMAL_STATE_COUNT ? names[s] : "unknown";
}

const char *drv_thermal_reason_name(drv_thermal_reason r)
{
    static const char *const names[DRV_THERMAL_R_COUNT] = {
        [DRV_THERMAL_R_JOINED] = "joined",
        [DRV_THERMAL_R_FIRST_WORK] = "first work",
        [DRV_THERMAL_R_RAMP_DONE] = "ramp done",
        [DRV_THERMAL_R_IDLE] = "idle",
        [DRV_THERMAL_R_CPU_PRESSURE] = "cpu pressure",
        [DRV_THERMAL_R_ERRORS] = "errors",
        [DRV_THERMAL_R_TEMPERATURE] = "temperature",
        [DRV_THERMAL_R_THROTTLED] = "throttled",
        [DRV_THERMAL_R_RECOVERED] = "recovered",
        [DRV_THERMAL_R_MEMORY_PRESSURE] = "memory pressure",
        [DRV_THERMAL_R_SLOW_CLOCK] = "slow clock",
    };
    return (unsigned)r < DRV_THERMAL_R_COUNT ? names[r] : "unknown";
}

void drv_thermal_describe(const drv_thermal *th, const drv_thermal_config *cfg, uint32_t slots,
                          double now, char *buf, size_t len)
{
    if (!buf || len == 0)
        return;
    if (!th || !cfg) {
        snprintf(buf, len, "no thermal state");
        return;
    }
    char why[128];
    switch (th->reason) {
    case DRV_THERMAL_R_IDLE:
        snprintf(why, sizeof why, "idle for %.0f s", th->reason_value);
        break;
    case DRV_THERMAL_R_CPU_PRESSURE:
        snprintf(why, sizeof why, "cpu pressure %.2f >= %.2f for %.0f s", th->reason_value,
                 cfg->cpu_pressure_limit, cfg->overload_sustain_s);
        break;
    case DRV_THERMAL_R_MEMORY_PRESSURE:
        snprintf(why, sizeof why, "memory pressure %.2f >= %.2f for %.0f s", th->reason_value,
                 cfg->memory_pressure_limit, cfg->overload_sustain_s);
        break;
    case DRV_THERMAL_R_SLOW_CLOCK:
        snprintf(why, sizeof why, "cpu clock at %.0f%% of its maximum < %.0f%% for %.0f s",
                 th->reason_value * 100, cfg->freq_ratio_limit * 100, cfg->overload_sustain_s);
        break;
    case DRV_THERMAL_R_THROTTLED:
        snprintf(why, sizeof why, "throttled, as the worker measured");
        break;
    case DRV_THERMAL_R_ERRORS:
        snprintf(why, sizeof why, "%.0f consecutive infrastructure errors", th->reason_value);
        break;
    case DRV_THERMAL_R_TEMPERATURE:
        snprintf(why, sizeof why, "temperature %.0f C >= %.0f C", th->reason_value,
                 cfg->temperature_limit_c);
        break;
    case DRV_THERMAL_R_RECOVERED:
        snprintf(why, sizeof why, "recovered after %.0f s calm", th->reason_value);
        break;
    default:
        snprintf(why, sizeof why, "%s", drv_thermal_reason_name(th->reason));
        break;
    }
    double lasted = now - th->since;
    snprintf(buf, len, "%s for %.1f s (%s): admits %u of %u slots",
             drv_thermal_state_name(th->state), lasted > 0 ? lasted : 0, why,
             drv_thermal_admitted(th, cfg, slots, now), slots);
}
