/* test_worker.c - worker health names as users see them in status and the dashboard. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/worker.h"

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
