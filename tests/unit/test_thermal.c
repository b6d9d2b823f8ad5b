/* test_thermal.c - the warm-up / cool-down state machine: every arrow of the diagram
 * with its reason, admitted slots along the ramp, sustained measured pressure (never
 * slot occupancy), error runs, extended cooling and the sentence shown to users. The
 * ramp tests use initial_share 0.25 (ramp_config); the defaults have no ramp. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/thermal.h"

typedef enum step_kind { END = 0, WORK, TICK, SIG, OK_RESULT, INFRA_ERROR } step_kind;

typedef struct step {
    step_kind kind;
    double t;
    double load;
    double temp;
    bool throttled;
    bool busy;
    double cpu;  /* cpu pressure, < 0 unknown */
    double mem;  /* memory pressure, < 0 unknown */
    double freq; /* clock ratio, < 0 unknown */
} step;

typedef struct transition_row {
    const char *name;
    drv_thermal_state from;
    step steps[8];
    drv_thermal_state want;
    drv_thermal_reason want_reason;
    double want_value; /* NAN: not checked */
    double want_since; /* NAN: not checked */
    bool want_changed; /* return value of the last step */
} transition_row;

/* A heartbeat: occupancy l, temperature c, throttled, busy, cpu and memory pressure and
 * clock ratio (< 0 unknown). */
#define BEATX(at, l, c, thr, b, p_cpu, p_mem, f)                                                   \
    {                                                                                              \
        .kind = SIG, .t = (at), .load = (l), .temp = (c), .throttled = (thr), .busy = (b),         \
        .cpu = (p_cpu), .mem = (p_mem), .freq = (f)                                                \
    }
#define BEAT(at, l, c, thr, b) BEATX(at, l, c, thr, b, -1, -1, -1)
/* A heartbeat with nothing unusual in it. */
#define CALM(at)         BEAT(at, 0.3, 60, false, true)
#define LOAD(at, l)      BEAT(at, l, 60, false, true)
#define CPU(at, p)       BEATX(at, 0.5, 60, false, true, p, -1, -1)
#define MEM(at, p)       BEATX(at, 0.5, 60, false, true, -1, p, -1)
#define CLOCK(at, f, b)  BEATX(at, 0.5, 60, false, b, -1, -1, f)
#define HOT(at, c)       BEAT(at, 0.3, c, false, true)
#define THROTTLE(at)     BEAT(at, 0.3, 60, true, true)
#define IDLE_BEAT(at)    BEAT(at, 0.0, 40, false, false)
#define UNKNOWN_BEAT(at) BEAT(at, -1, -1, false, true)
#define DO(k, at)                                                                                  \
    {                                                                                              \
        .kind = (k), .t = (at)                                                                     \
    }

/* The defaults with a warm-up ramp: a quarter of the slots at first, all after 30 s. */
static void ramp_config(drv_thermal_config *cfg)
{
    drv_thermal_config_default(cfg);
    cfg->initial_share = 0.25;
}

/* Brings th into state `from` with the default config:
 * COLD since 0; WARMING since 0; WARM since 30 (last work 0); COOLING since 40 (throttled). */
static void reach(drv_thermal *th, const drv_thermal_config *cfg, drv_thermal_state from)
{
    drv_thermal_init(th, 0);
    if (from == DRV_THERMAL_COLD)
        return;
    assert_true(drv_thermal_on_work(th, cfg, 0));
    if (from == DRV_THERMAL_WARMING)
        return;
    assert_true(drv_thermal_tick(th, cfg, 30));
    if (from == DRV_THERMAL_WARM)
        return;
    drv_thermal_signal sig = DRV_THERMAL_SIGNAL_UNKNOWN;
    sig.load = 0.3;
    sig.temperature_c = 60;
    sig.throttled = sig.busy = true;
    assert_true(drv_thermal_observe(th, cfg, 40, &sig));
    assert_int_equal(th->state, DRV_THERMAL_COOLING);
}

static bool run_step(drv_thermal *th, const drv_thermal_config *cfg, const step *s)
{
    drv_thermal_signal sig = {.load = s->load,
                              .cpu_pressure = s->cpu,
                              .memory_pressure = s->mem,
                              .freq_ratio = s->freq,
                              .temperature_c = s->temp,
                              .throttled = s->throttled,
                              .busy = s->busy};
    switch (s->kind) {
    case WORK:
        return drv_thermal_on_work(th, cfg, s->t);
    case TICK:
        return drv_thermal_tick(th, cfg, s->t);
    case SIG:
        return drv_thermal_observe(th, cfg, s->t, &sig);
    case OK_RESULT:
        return drv_thermal_on_result(th, cfg, s->t, false);
    case INFRA_ERROR:
        return drv_thermal_on_result(th, cfg, s->t, true);
    case END:
    default:
        return false;
    }
}

static const transition_row transitions[] = {
    /* cold -> warming */
    {"cold: first work starts the ramp",
     DRV_THERMAL_COLD,
     {DO(WORK, 5)},
     DRV_THERMAL_WARMING,
     DRV_THERMAL_R_FIRST_WORK,
     NAN,
     5,
     true},
    {"cold: heartbeats alone do not warm it",
     DRV_THERMAL_COLD,
     {CALM(5), DO(TICK, 5000)},
     DRV_THERMAL_COLD,
     DRV_THERMAL_R_JOINED,
     NAN,
     0,
     false},
    /* warming -> warm */
    {"warming: not done before ramp_s",
     DRV_THERMAL_WARMING,
     {DO(TICK, 29.9)},
     DRV_THERMAL_WARMING,
     DRV_THERMAL_R_FIRST_WORK,
     NAN,
     0,
     false},
    {"warming: done at ramp_s",
     DRV_THERMAL_WARMING,
     {CALM(10), DO(TICK, 30)},
     DRV_THERMAL_WARM,
     DRV_THERMAL_R_RAMP_DONE,
     NAN,
     30,
     true},
    {"warming: a late tick dates the end at ramp_s",
     DRV_THERMAL_WARMING,
     {DO(TICK, 45)},
     DRV_THERMAL_WARM,
     DRV_THERMAL_R_RAMP_DONE,
     NAN,
     30,
     true},
    /* warm -> cold */
    {"warm: not idle long enough",
     DRV_THERMAL_WARM,
     {IDLE_BEAT(100), DO(TICK, 599.9)},
     DRV_THERMAL_WARM,
     DRV_THERMAL_R_RAMP_DONE,
     NAN,
     30,
     false},
    {"warm: idle_cold_s without work",
     DRV_THERMAL_WARM,
     {IDLE_BEAT(100), IDLE_BEAT(600)},
     DRV_THERMAL_COLD,
     DRV_THERMAL_R_IDLE,
     600,
     600,
     true},
    {"warm: busy heartbeats keep it warm",
     DRV_THERMAL_WARM,
     {CALM(300), CALM(600), DO(TICK, 899)},
     DRV_THERMAL_WARM,
     DRV_THERMAL_R_RAMP_DONE,
     NAN,
     30,
     false},
    {"warm: work after a long idle warms up again",
     DRV_THERMAL_WARM,
     {DO(WORK, 1000)},
     DRV_THERMAL_WARMING,
     DRV_THERMAL_R_FIRST_WORK,
     NAN,
     1000,
     true},
    /* triggers from warming */
    {"warming: temperature",
     DRV_THERMAL_WARMING,
     {HOT(5, 91)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_TEMPERATURE,
     91,
     5,
     true},
    {"warming: throttled",
     DRV_THERMAL_WARMING,
     {THROTTLE(5)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_THROTTLED,
     NAN,
     5,
     true},
    {"warming: sustained cpu pressure",
     DRV_THERMAL_WARMING,
     {CPU(2, 0.97), CPU(12, 0.98)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_CPU_PRESSURE,
     0.98,
     12,
     true},
    {"warming: infra errors",
     DRV_THERMAL_WARMING,
     {DO(INFRA_ERROR, 1), DO(INFRA_ERROR, 2), DO(INFRA_ERROR, 3)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_ERRORS,
     3,
     3,
     true},
    /* triggers from warm */
    {"warm: temperature at the limit",
     DRV_THERMAL_WARM,
     {HOT(50, 85)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_TEMPERATURE,
     85,
     50,
     true},
    {"warm: throttled",
     DRV_THERMAL_WARM,
     {THROTTLE(50)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_THROTTLED,
     NAN,
     50,
     true},
    {"warm: sustained memory pressure",
     DRV_THERMAL_WARM,
     {MEM(50, 0.25), MEM(55, 0.5), MEM(60, 0.3)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_MEMORY_PRESSURE,
     0.3,
     60,
     true},
    {"warm: memory and cpu over: memory is the reason",
     DRV_THERMAL_WARM,
     {CPU(50, 0.95), BEATX(60, 0.5, 60, false, true, 0.95, 0.4, -1)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_MEMORY_PRESSURE,
     0.4,
     60,
     true},
    {"warm: a slow clock while busy",
     DRV_THERMAL_WARM,
     {CLOCK(50, 0.3, true), CLOCK(60, 0.4, true)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_SLOW_CLOCK,
     0.4,
     60,
     true},
    {"warm: infra errors",
     DRV_THERMAL_WARM,
     {DO(INFRA_ERROR, 50), DO(INFRA_ERROR, 51), DO(INFRA_ERROR, 52)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_ERRORS,
     3,
     52,
     true},
    /* triggers from cold (our choice: cold goes cooling too) */
    {"cold: throttled",
     DRV_THERMAL_COLD,
     {THROTTLE(5)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_THROTTLED,
     NAN,
     5,
     true},
    {"cold: temperature",
     DRV_THERMAL_COLD,
     {HOT(5, 90)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_TEMPERATURE,
     90,
     5,
     true},
    /* cooling -> warm */
    {"cooling: not calm long enough",
     DRV_THERMAL_COOLING,
     {CALM(50), DO(TICK, 69.9)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_THROTTLED,
     NAN,
     40,
     false},
    {"cooling: calm for cooldown_s",
     DRV_THERMAL_COOLING,
     {CALM(50), CALM(70)},
     DRV_THERMAL_WARM,
     DRV_THERMAL_R_RECOVERED,
     30,
     70,
     true},
    {"cooling: work does not end it",
     DRV_THERMAL_COOLING,
     {DO(WORK, 50)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_THROTTLED,
     NAN,
     40,
     false},
    /* what does not trigger */
    {"unknown load and temperature trigger nothing",
     DRV_THERMAL_WARM,
     {UNKNOWN_BEAT(50), UNKNOWN_BEAT(70), UNKNOWN_BEAT(90)},
     DRV_THERMAL_WARM,
     DRV_THERMAL_R_RAMP_DONE,
     NAN,
     30,
     false},
    {"just below the temperature limit",
     DRV_THERMAL_WARM,
     {HOT(50, 84.9)},
     DRV_THERMAL_WARM,
     DRV_THERMAL_R_RAMP_DONE,
     NAN,
     30,
     false},
    {"every slot busy for a long time is not overload",
     DRV_THERMAL_WARM,
     {LOAD(50, 1.0), LOAD(60, 1.0), LOAD(70, 1.0), LOAD(80, 1.5), LOAD(90, 1.0)},
     DRV_THERMAL_WARM,
     DRV_THERMAL_R_RAMP_DONE,
     NAN,
     30,
     false},
    {"a slow clock while idle is the governor's choice",
     DRV_THERMAL_WARM,
     {CLOCK(50, 0.2, false), CLOCK(60, 0.2, false), CLOCK(70, 0.2, false)},
     DRV_THERMAL_WARM,
     DRV_THERMAL_R_RAMP_DONE,
     NAN,
     30,
     false},
    {"a short spike of pressure is not overload",
     DRV_THERMAL_WARM,
     {CPU(50, 0.99), CPU(58, 0.99), CALM(59), CPU(60, 0.99), CPU(69, 0.99)},
     DRV_THERMAL_WARM,
     DRV_THERMAL_R_RAMP_DONE,
     NAN,
     30,
     false},
    {"pressures and clock just inside their limits",
     DRV_THERMAL_WARM,
     {BEATX(50, 1, 60, false, true, 0.89, 0.19, 0.5),
      BEATX(80, 1, 60, false, true, 0.89, 0.19, 0.5)},
     DRV_THERMAL_WARM,
     DRV_THERMAL_R_RAMP_DONE,
     NAN,
     30,
     false},
    {"a success resets the run of errors",
     DRV_THERMAL_WARM,
     {DO(INFRA_ERROR, 50), DO(INFRA_ERROR, 51), DO(OK_RESULT, 52), DO(INFRA_ERROR, 53),
      DO(INFRA_ERROR, 54)},
     DRV_THERMAL_WARM,
     DRV_THERMAL_R_RAMP_DONE,
     NAN,
     30,
     false},
    {"errors after a reset still trigger",
     DRV_THERMAL_WARM,
     {DO(INFRA_ERROR, 50), DO(OK_RESULT, 52), DO(INFRA_ERROR, 53), DO(INFRA_ERROR, 54),
      DO(INFRA_ERROR, 55)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_ERRORS,
     3,
     55,
     true},
    /* cooling extended by a new trigger */
    {"cooling: a new trigger restarts the calm period",
     DRV_THERMAL_COOLING,
     {HOT(60, 95), DO(TICK, 70), DO(TICK, 89.9)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_THROTTLED,
     NAN,
     40,
     false},
    {"cooling: ends cooldown_s after the last trigger",
     DRV_THERMAL_COOLING,
     {HOT(60, 95), DO(TICK, 89.9), DO(TICK, 90)},
     DRV_THERMAL_WARM,
     DRV_THERMAL_R_RECOVERED,
     30,
     90,
     true},
    {"cooling: overload that persists keeps it cooling",
     DRV_THERMAL_COOLING,
     {CPU(45, 0.99), CPU(55, 0.99), CPU(65, 0.99), CPU(75, 0.99), CPU(84, 0.99)},
     DRV_THERMAL_COOLING,
     DRV_THERMAL_R_THROTTLED,
     NAN,
     40,
     false},
};

static void test_transitions(void **state)
{
    (void)state;
    drv_thermal_config cfg;
    ramp_config(&cfg);
    for (size_t i = 0; i < sizeof transitions / sizeof transitions[0]; i++) {
        const transition_row *row = &transitions[i];
        drv_thermal th;
        reach(&th, &cfg, row->from);
        bool changed = false;
        for (size_t s = 0; s < 8 && row->steps[s].kind != END; s++)
            changed = run_step(&th, &cfg, &row->steps[s]);
        print_message("%s\n", row->name);
        assert_int_equal(th.state, row->want);
        assert_int_equal(th.reason, row->want_reason);
        if (!isnan(row->want_value))
            assert_true(fabs(th.reason_value - row->want_value) < 1e-9);
        if (!isnan(row->want_since))
            assert_true(fabs(th.since - row->want_since) < 1e-9);
        assert_int_equal(changed, row->want_changed);
    }
}

typedef struct admit_row {
    drv_thermal_state state;
    double at;
    uint32_t slots;
    uint32_t want;
} admit_row;

static void test_admitted(void **state)
{
    (void)state;
    drv_thermal_config cfg;
    ramp_config(&cfg);
    /* WARMING since 0, WARM since 30, COOLING since 40, COLD since 0. */
    static const admit_row rows[] = {
        {DRV_THERMAL_COLD, 0, 8, 2},       {DRV_THERMAL_COLD, 1000, 8, 2},
        {DRV_THERMAL_WARMING, 0, 8, 2},    {DRV_THERMAL_WARMING, 7.5, 8, 4},
        {DRV_THERMAL_WARMING, 15, 8, 5},   {DRV_THERMAL_WARMING, 29.9, 8, 8},
        {DRV_THERMAL_WARMING, 30, 8, 8},   {DRV_THERMAL_WARMING, 99, 8, 8},
        {DRV_THERMAL_WARM, 31, 8, 8},      {DRV_THERMAL_COOLING, 41, 8, 4},
        {DRV_THERMAL_COOLING, 41, 7, 4},   {DRV_THERMAL_WARMING, 0, 1, 1},
        {DRV_THERMAL_COLD, 0, 3, 1},       {DRV_THERMAL_COOLING, 41, 1, 1},
        {DRV_THERMAL_WARMING, 0, 0, 0},    {DRV_THERMAL_WARM, 31, 0, 0},
        {DRV_THERMAL_WARMING, 0, 100, 25}, {DRV_THERMAL_WARMING, 0, 4, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_thermal th;
        reach(&th, &cfg, rows[i].state);
        uint32_t got = drv_thermal_admitted(&th, &cfg, rows[i].slots, rows[i].at);
        print_message("row %zu: %s at %.1f, %u slots -> %u\n", i,
                      drv_thermal_state_name(rows[i].state), rows[i].at, rows[i].slots, got);
        assert_int_equal(got, rows[i].want);
    }

    /* Shares that are not exact in binary still give the intended count. */
    cfg.cooling_share = 0.1;
    drv_thermal th;
    reach(&th, &cfg, DRV_THERMAL_COOLING);
    assert_int_equal(drv_thermal_admitted(&th, &cfg, 30, 41), 3);
    /* A ramp of 0 admits everything at once. */
    ramp_config(&cfg);
    cfg.ramp_s = 0;
    drv_thermal_init(&th, 0);
    drv_thermal_on_work(&th, &cfg, 0);
    assert_int_equal(drv_thermal_admitted(&th, &cfg, 8, 0), 8);
}

static void test_admitted_never_decreases_along_the_ramp(void **state)
{
    (void)state;
    drv_thermal_config cfg;
    ramp_config(&cfg);
    drv_thermal th;
    reach(&th, &cfg, DRV_THERMAL_WARMING);
    uint32_t prev = 0;
    for (double t = 0; t <= 31; t += 0.25) {
        uint32_t n = drv_thermal_admitted(&th, &cfg, 16, t);
        assert_true(n >= prev);
        assert_true(n >= 4 && n <= 16);
        prev = n;
    }
    assert_int_equal(prev, 16);
}

/* next_growth names the first instant admission grows: just before it the count is
 * still the old one, just after it is larger; cold and warm workers never grow alone;
 * a cooling one grows when its calm period ends. */
static void test_next_growth(void **state)
{
    (void)state;
    drv_thermal_config cfg;
    ramp_config(&cfg);
    drv_thermal th;
    drv_thermal_init(&th, 0);
    assert_true(isinf(drv_thermal_next_growth(&th, &cfg, 16, 0))); /* cold */
    reach(&th, &cfg, DRV_THERMAL_WARMING);
    double t = th.since;
    int steps = 0;
    while (!isinf(t)) {
        uint32_t before = drv_thermal_admitted(&th, &cfg, 16, t);
        double next = drv_thermal_next_growth(&th, &cfg, 16, t);
        assert_true(next > t);
        if (isinf(next))
            break;
        assert_int_equal(drv_thermal_admitted(&th, &cfg, 16, (t + next) / 2), before);
        double after = next + 1e-6;
        if (drv_thermal_admitted(&th, &cfg, 16, after) > before)
            steps++;
        t = after;
    }
    assert_int_equal(steps, 12); /* 4 -> 16, one slot at a time */
    assert_int_equal(drv_thermal_admitted(&th, &cfg, 16, t), 16);
    drv_thermal_tick(&th, &cfg, th.since + cfg.ramp_s);
    assert_true(isinf(drv_thermal_next_growth(&th, &cfg, 16, th.since + cfg.ramp_s))); /* warm */
    reach(&th, &cfg, DRV_THERMAL_COOLING);
    double due = drv_thermal_next_growth(&th, &cfg, 16, th.since);
    assert_true(fabs(due - (th.calm_since + cfg.cooldown_s)) < 1e-9);
    assert_true(isinf(drv_thermal_next_growth(NULL, &cfg, 16, 0)));
}

static void test_describe(void **state)
{
    (void)state;
    drv_thermal_config cfg;
    ramp_config(&cfg);
    drv_thermal th;
    char buf[160];

    drv_thermal_init(&th, 0);
    drv_thermal_describe(&th, &cfg, 8, 1, buf, sizeof buf);
    assert_string_equal(buf, "cold for 1.0 s (joined): admits 2 of 8 slots");

    drv_thermal_on_work(&th, &cfg, 3);
    drv_thermal_describe(&th, &cfg, 8, 3, buf, sizeof buf);
    assert_string_equal(buf, "warming for 0.0 s (first work): admits 2 of 8 slots");

    drv_thermal_signal hot = DRV_THERMAL_SIGNAL_UNKNOWN;
    hot.temperature_c = 91;
    hot.busy = true;
    drv_thermal_observe(&th, &cfg, 12, &hot);
    drv_thermal_describe(&th, &cfg, 8, 14, buf, sizeof buf);
    assert_string_equal(buf, "cooling for 2.0 s (temperature 91 C >= 85 C): admits 4 of 8 slots");

    drv_thermal_tick(&th, &cfg, 50);
    drv_thermal_describe(&th, &cfg, 8, 50, buf, sizeof buf);
    assert_string_equal(buf, "warm for 8.0 s (recovered after 30 s calm): admits 8 of 8 slots");

    drv_thermal_init(&th, 0);
    drv_thermal_on_work(&th, &cfg, 0);
    for (int i = 0; i < 3; i++)
        drv_thermal_on_result(&th, &cfg, 5, true);
    drv_thermal_describe(&th, &cfg, 8, 5, buf, sizeof buf);
    assert_string_equal(
        buf, "cooling for 0.0 s (3 consecutive infrastructure errors): admits 4 of 8 slots");

    /* Each measured trigger names its figure and its limit. */
    static const struct {
        double cpu, mem, freq;
        bool throttled;
        const char *want;
    } rows[] = {
        {0.97, -1, -1, false,
         "cooling for 0.0 s (cpu pressure 0.97 >= 0.90 for 10 s): admits 4 of 8 slots"},
        {-1, 0.35, -1, false,
         "cooling for 0.0 s (memory pressure 0.35 >= 0.20 for 10 s): admits 4 of 8 slots"},
        {-1, -1, 0.42, false,
         "cooling for 0.0 s (cpu clock at 42% of its maximum < 50% for 10 s): admits 4 of 8 "
         "slots"},
        {-1, -1, -1, true,
         "cooling for 0.0 s (throttled, as the worker measured): admits 4 of 8 slots"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_thermal_init(&th, 0);
        drv_thermal_on_work(&th, &cfg, 0);
        drv_thermal_signal sig = DRV_THERMAL_SIGNAL_UNKNOWN;
        sig.cpu_pressure = rows[i].cpu;
        sig.memory_pressure = rows[i].mem;
        sig.freq_ratio = rows[i].freq;
        sig.throttled = rows[i].throttled;
        sig.busy = true;
        drv_thermal_observe(&th, &cfg, 1, &sig);
        drv_thermal_observe(&th, &cfg, 11, &sig);
        drv_thermal_describe(&th, &cfg, 8, th.since, buf, sizeof buf);
        assert_string_equal(buf, rows[i].want);
        assert_true(th.last.cpu_pressure == rows[i].cpu); /* the last measurement is kept */
    }

    /* A short buffer is truncated and terminated, never overrun. */
    char small[8];
    memset(small, 'x', sizeof small);
    drv_thermal_describe(&th, &cfg, 8, 11, small, sizeof small);
    assert_string_equal(small, "cooling");
    drv_thermal_describe(&th, &cfg, 8, 11, NULL, 0); /* no crash */
}

/* The defaults: a fresh worker admits every slot at its first work, and a worker whose
 * slots are all busy for minutes (load 1, no pressure) stays warm at every slot. An
 * older worker that measures nothing is never cooled by pressure. */
static void test_default_no_ramp_busy_is_not_overload(void **state)
{
    (void)state;
    drv_thermal_config cfg;
    drv_thermal_config_default(&cfg);
    drv_thermal th;
    drv_thermal_init(&th, 0);
    assert_int_equal(drv_thermal_admitted(&th, &cfg, 8, 0), 8);
    assert_true(drv_thermal_on_work(&th, &cfg, 1));
    assert_int_equal(th.state, DRV_THERMAL_WARM);
    assert_int_equal(th.reason, DRV_THERMAL_R_FIRST_WORK);
    assert_int_equal(drv_thermal_admitted(&th, &cfg, 8, 1), 8);
    assert_true(isinf(drv_thermal_next_growth(&th, &cfg, 8, 1)));
    for (int t = 2; t < 300; t++) {
        drv_thermal_signal full = DRV_THERMAL_SIGNAL_UNKNOWN;
        full.load = 1.0;
        full.busy = true;
        if (t % 2) { /* half of them from a worker that measures: calm */
            full.cpu_pressure = 0.3;
            full.memory_pressure = 0;
            full.freq_ratio = 1;
            full.temperature_c = 60;
        }
        assert_false(drv_thermal_observe(&th, &cfg, t, &full));
        assert_int_equal(drv_thermal_admitted(&th, &cfg, 8, t), 8);
    }
    assert_int_equal(th.state, DRV_THERMAL_WARM);

    /* Measured pressure before any work still cools it: it is not handed every slot. */
    drv_thermal_init(&th, 0);
    drv_thermal_signal mem = DRV_THERMAL_SIGNAL_UNKNOWN;
    mem.memory_pressure = 0.5;
    drv_thermal_observe(&th, &cfg, 0, &mem);
    assert_true(drv_thermal_observe(&th, &cfg, 10, &mem));
    assert_int_equal(th.state, DRV_THERMAL_COOLING);
    assert_int_equal(drv_thermal_admitted(&th, &cfg, 8, 10), 4);
}

/* ct3 (issue 13): CPU pressure cools a worker only when its own tests use at least half
 * of the machine's CPU: a machine loaded by others is not relieved by fewer slots. */
static void test_cpu_pressure_of_others(void **state)
{
    (void)state;
    drv_thermal_config cfg;
    drv_thermal_config_default(&cfg);
    const struct {
        double tests_cpu;
        bool known, cools;
    } rows[] = {{0.02, true, false},
                {0.49, true, false},
                {0.5, true, true},
                {0.9, true, true},
                {0, false, true}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_thermal th;
        drv_thermal_init(&th, 0);
        drv_thermal_on_work(&th, &cfg, 0);
        drv_thermal_signal sig = DRV_THERMAL_SIGNAL_UNKNOWN;
        sig.busy = true;
        sig.load = 1;
        sig.cpu_pressure = 0.97;
        sig.tests_cpu = rows[i].tests_cpu;
        sig.tests_cpu_known = rows[i].known;
        for (int t = 1; t <= 20; t++)
            drv_thermal_observe(&th, &cfg, t, &sig);
        assert_int_equal(th.state, rows[i].cools ? DRV_THERMAL_COOLING : DRV_THERMAL_WARM);
        assert_int_equal(drv_thermal_admitted(&th, &cfg, 8, 20), rows[i].cools ? 4 : 8);
    }
}

static void test_names(void **state)
{
    (void)state;
    for (int s = 0; s < DRV_THERMAL_STATE_COUNT; s++) {
        assert_string_not_equal(drv_thermal_state_name((drv_thermal_state)s), "unknown");
        for (int o = 0; o < s; o++)
            assert_string_not_equal(drv_thermal_state_name((drv_thermal_state)s),
                                    drv_thermal_state_name((drv_thermal_state)o));
    }
    for (int r = 0; r < DRV_THERMAL_R_COUNT; r++) {
        assert_string_not_equal(drv_thermal_reason_name((drv_thermal_reason)r), "unknown");
        for (int o = 0; o < r; o++)
            assert_string_not_equal(drv_thermal_reason_name((drv_thermal_reason)r),
                                    drv_thermal_reason_name((drv_thermal_reason)o));
    }
    assert_string_equal(drv_thermal_state_name(DRV_THERMAL_STATE_COUNT), "unknown");
    assert_string_equal(drv_thermal_reason_name(DRV_THERMAL_R_COUNT), "unknown");
}

static void test_defaults(void **state)
{
    (void)state;
    drv_thermal_config cfg;
    drv_thermal_config_default(&cfg);
    assert_true(cfg.ramp_s == 30 && cfg.initial_share == 1 && cfg.cpu_pressure_limit == 0.9);
    assert_true(cfg.memory_pressure_limit == 0.2 && cfg.freq_ratio_limit == 0.5);
    assert_true(cfg.overload_sustain_s == 10 && cfg.error_threshold == 3);
    assert_true(cfg.temperature_limit_c == 85 && cfg.cooling_share == 0.5);
    assert_true(cfg.cooldown_s == 30 && cfg.idle_cold_s == 600);

    drv_thermal th;
    drv_thermal_init(&th, 7);
    assert_int_equal(th.state, DRV_THERMAL_COLD);
    assert_int_equal(th.reason, DRV_THERMAL_R_JOINED);
    assert_true(th.since == 7 && th.overload_since < 0 && th.error_run == 0);
}

static void test_error_threshold_zero_disables(void **state)
{
    (void)state;
    drv_thermal_config cfg;
    ramp_config(&cfg);
    cfg.error_threshold = 0;
    drv_thermal th;
    reach(&th, &cfg, DRV_THERMAL_WARM);
    for (int i = 0; i < 10; i++)
        assert_false(drv_thermal_on_result(&th, &cfg, 50 + i, true));
    assert_int_equal(th.state, DRV_THERMAL_WARM);
    assert_int_equal(th.error_run, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transitions),
        cmocka_unit_test(test_admitted),
        cmocka_unit_test(test_admitted_never_decreases_along_the_ramp),
        cmocka_unit_test(test_next_growth),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_default_no_ramp_busy_is_not_overload),
        cmocka_unit_test(test_cpu_pressure_of_others),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_error_threshold_zero_disables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
