/* test_chunked.c - the chunked request body decoder (coordinator/chunked.h), table
 * driven: every body is decoded in one piece and byte by byte, with the same data and
 * verdict. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "coordinator/chunked.h"

typedef struct sink_buf {
    char data[256];
    size_t len;
} sink_buf;

static int collect(void *ctx, const char *data, size_t len)
{
    sink_buf *b = ctx;
    assert_true(b->len + len < sizeof b->data);
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

typedef struct row {
    const char *body;
    uint64_t max;
    int over;          /* 1: the body is over (end, error or too large) */
    const char *data;  /* what the sink got */
    const char *error; /* substring of the error; NULL: none */
    int too_large;
} row;

static const row rows[] = {
    {"5\r\nhello\r\n0\r\n\r\n", 0, 1, "hello", NULL, 0},
    {"3;name=value\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n", 0, 1, "abcde", NULL, 0},
    {"A\r\n0123456789\r\n0\r\n\r\n", 0, 1, "0123456789", NULL, 0},
    {"5\nhello\n0\n\n", 0, 1, "hello", NULL, 0}, /* bare LF is accepted */
    {"5\r\nhel", 0, 0, "hel", NULL, 0},          /* more to come */
    {"5\r\nhello\r\n0\r\n", 0, 0, "hello", NULL, 0},
    {"zz\r\nhello\r\n0\r\n\r\n", 0, 1, "", "expected a chunk size", 0},
    {"\r\n", 0, 1, "", "expected a chunk size", 0},
    {"5\r\nhelloX\r\n", 0, 1, "hello", "expected CRLF after a chunk", 0},
    {"100\r\n", 16, 1, "", NULL, 1},
    {"ffffffffffffffffff\r\n", 0, 1, "", NULL, 1}, /* would overflow */
};

static void decode(const row *r, bool bytewise)
{
    drv_chunked d;
    sink_buf b = {.len = 0};
    drv_chunked_init(&d, r->max);
    size_t n = strlen(r->body);
    int over = 0;
    if (bytewise) {
        for (size_t i = 0; i < n && !over; i++)
            over = drv_chunked_feed(&d, r->body + i, 1, collect, &b);
    } else {
        over = drv_chunked_feed(&d, r->body, n, collect, &b);
    }
    assert_int_equal(over, r->over);
    assert_int_equal(b.len, strlen(r->data));
    assert_memory_equal(b.data, r->data, b.len);
    if (r->error) {
        assert_non_null(d.error);
        assert_non_null(strstr(d.error, r->error));
    } else {
        assert_null(d.error);
    }
    assert_int_equal(d.too_large, r->too_large);
}

static void test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        decode(&rows[i], false);
        decode(&rows[i], true);
    }
}

/* Bytes after the end are not looked at: a second call changes nothing. */
static void test_after_the_end(void **state)
{
    (void)state;
    drv_chunked d;
    sink_buf b = {.len = 0};
    drv_chunked_init(&d, 0);
    static const char body[] = "1\r\na\r\n0\r\n\r\nGARBAGE";
    assert_int_equal(drv_chunked_feed(&d, body, sizeof body - 1, collect, &b), 1);
    assert_int_equal(drv_chunked_feed(&d, "zz", 2, collect, &b), 1);
    assert_null(d.error);
    assert_int_equal(b.len, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_after_the_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
