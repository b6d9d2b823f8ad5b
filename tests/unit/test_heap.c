/* test_heap.c - drv_heap_tune/drv_heap_advise on this process: after tuning, the heap
 * (as /proc/self/smaps shows it) is advised for huge pages ("hg" in VmFlags), grows with
 * the advice as it grows, and memory from it works. Skipped where the heap is not
 * glibc's (a sanitizer's allocator) or /proc is missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/heap.h"

#if defined(__SANITIZE_ADDRESS__)
#define NOT_GLIBC_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NOT_GLIBC_HEAP 1
#endif
#endif

#ifndef NOT_GLIBC_HEAP
/* Bytes of [heap] mappings with and without the huge-page advice, from smaps. Returns
 * false when /proc/self/smaps cannot be read. */
static bool heap_advice(size_t *advised, size_t *plain)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return false;
    char line[512];
    bool heap = false;
    size_t size = 0;
    *advised = *plain = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
            heap = strstr(line, "[heap]") != NULL;
            size = hi - lo;
        } else if (heap && strncmp(line, "VmFlags:", 8) == 0) {
            if (strstr(line, " hg"))
                *advised += size;
            else
                *plain += size;
        }
    }
    fclose(f);
    return true;
}
#endif

static void test_heap_is_advised(void **state)
{
    (void)state;
#ifdef NOT_GLIBC_HEAP
    skip();
#else
    size_t advised, plain;
    if (!heap_advice(&advised, &plain))
        skip();
    assert_int_equal(advised, 0);
    drv_heap_tune(8u * 1024u * 1024u);
    assert_true(heap_advice(&advised, &plain));
    assert_true(advised >= 6u * 1024u * 1024u); /* the pad, less the 2 MiB alignment */
    /* It grows: 48 MiB in small blocks (below the mmap threshold), then advised too. */
    enum { N = 48 * 16 };
    char *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(64 * 1024);
        assert_non_null(blocks[i]);
        memset(blocks[i], i & 0xff, 64 * 1024);
    }
    drv_heap_advise();
    size_t advised2;
    assert_true(heap_advice(&advised2, &plain));
    /* All but what lies below the first and above the last 2 MiB boundary. */
    assert_true(advised2 >= 44u * 1024u * 1024u);
    assert_true(advised2 > advised);
    assert_true(plain < 4u * 1024u * 1024u);
    for (int i = 0; i < N; i++) {
        assert_int_equal((unsigned char)blocks[i][64 * 1024 - 1], i & 0xff);
        free(blocks[i]);
    }
    drv_heap_tune(8u * 1024u * 1024u); /* again: only advises */
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_is_advised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
