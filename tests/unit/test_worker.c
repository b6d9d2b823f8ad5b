/* test_worker.c - worker health names as users see them in status and the dashboard. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/worker.h"

/* Utilization is running over slots: assigned tests (the window) are not busy, running is
 * capped at the slots, a worker of 0 slots counts one: the ratio never leaves [0, 1]. */
static void test_busy_slots(void **state)
{
    (void)state;
    static const struct {
        uint32_t slots, running, assigned;
        double busy, of;
    } rows[] = {
        {4, 0, 0, 0, 4}, {4, 3, 26, 3, 4}, {4, 4, 26, 4, 4}, {4, 7, 0, 4, 4}, {0, 2, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_worker w = {
            .slots = rows[i].slots, .running = rows[i].running, .assigned = rows[i].assigned};
        double busy = -1, of = -1;
        drv_worker_busy_slots(&w, &busy, &of);
        assert_true(busy == rows[i].busy);
        assert_true(of == rows[i].of);
    }
}

static void test_health_names(void **state)
{
    (void)state;
    static const struct {
        drv_health h;
        const char *name;
    } rows[] = {
        {DRV_HEALTH_OK, "ok"},
        {DRV_HEALTH_OVERLOADED, "overloaded"},
        {DRV_HEALTH_DRAINING, "draining"},
        {DRV_HEALTH_QUARANTINED, "quarantined"},
        {DRV_HEALTH_LOST, "lost"},
        {DRV_HEALTH_LEFT, "left"},
    };
    _Static_assert(sizeof rows / sizeof rows[0] == DRV_HEALTH_COUNT, "one row per state");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_string_equal(drv_health_name(rows[i].h), rows[i].name);
    assert_string_equal(drv_health_name(DRV_HEALTH_COUNT), "?");
    assert_string_equal(drv_health_name((drv_health)-1), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_names),
        cmocka_unit_test(test_busy_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
