/* test_idmap.c - the id -> value hash map against a plain array as the reference, over
 * a long random sequence of puts, replacements and deletions (backward-shift deletion
 * must keep every other key reachable), and its edge cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "core/idmap.h"

static void test_empty_and_edges(void **state)
{
    (void)state;
    drv_idmap m;
    drv_idmap_init(&m);
    uint32_t v = 7;
    assert_false(drv_idmap_get(&m, 0, &v));
    assert_false(drv_idmap_del(&m, 0));
    drv_idmap_put(&m, 0, 11);
    drv_idmap_put(&m, UINT64_MAX - 1, 12);
    assert_true(drv_idmap_get(&m, 0, &v));
    assert_int_equal(v, 11);
    assert_true(drv_idmap_get(&m, UINT64_MAX - 1, &v));
    assert_int_equal(v, 12);
    drv_idmap_put(&m, 0, 13); /* replaces */
    assert_int_equal(m.count, 2);
    assert_true(drv_idmap_get(&m, 0, &v));
    assert_int_equal(v, 13);
    assert_true(drv_idmap_del(&m, 0));
    assert_false(drv_idmap_get(&m, 0, &v));
    assert_int_equal(m.count, 1);
    drv_idmap_clear(&m);
    assert_int_equal(m.count, 0);
}

static void test_random_against_reference(void **state)
{
    (void)state;
    enum { N = 5000, OPS = 200000 };
    uint32_t *ref = calloc(N, sizeof *ref); /* value + 1; 0 = absent */
    drv_idmap m;
    drv_idmap_init(&m);
    uint64_t x = 88172645463325252ull;
    size_t live = 0;
    for (int i = 0; i < OPS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* Ids spread over a sparse range (stride 977) so probe runs wrap around. */
        uint64_t k = (x >> 8) % N, id = k * 977;
        if ((x & 3) != 0) {
            uint32_t v = (uint32_t)(x >> 32);
            live += ref[k] == 0;
            ref[k] = v + 1 > v ? v + 1 : 1;
            drv_idmap_put(&m, id, ref[k] - 1);
        } else {
            bool had = ref[k] != 0;
            assert_int_equal(drv_idmap_del(&m, id), had);
            live -= had;
            ref[k] = 0;
        }
        if (i % 1000 == 0) {
            for (uint64_t j = 0; j < N; j++) {
                uint32_t v;
                bool found = drv_idmap_get(&m, j * 977, &v);
                assert_int_equal(found, ref[j] != 0);
                if (found)
                    assert_int_equal(v, ref[j] - 1);
            }
        }
        assert_int_equal(m.count, live);
    }
    drv_idmap_clear(&m);
    free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_edges),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
