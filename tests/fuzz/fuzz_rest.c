/* fuzz_rest - libFuzzer target: a REST request body as the coordinator takes it.
 *
 * The submission endpoint (POST /api/v1/tests) is the only one with a body; it arrives
 * with a Content-Length or chunked. The input is used both ways:
 *   - as a plain body: drv_tasks_parse must parse it or give an error, and leave the tag
 *     table untouched on error (fuzz_protocol compares the parser's two paths);
 *   - as a chunked body (coordinator/chunked.h), its first byte choosing the size of the
 *     pieces it is fed in: decoding in pieces must give the same data and verdict as in
 *     one piece, never more data than the input, and a complete body is parsed as a
 *     submission again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/chunked.h"
#include "protocol/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BODY_MAX 65536

typedef struct body {
    char buf[BODY_MAX];
    size_t len;
} body;

static int collect(void *ctx, const char *data, size_t len)
{
    body *b = ctx;
    if (b->len + len > sizeof b->buf)
        return 1; /* too large: the coordinator answers 413 */
    memcpy(b->buf + b->len, data, len);
    b->len += len;
    return 0;
}

static void parse_submission(const char *buf, size_t len)
{
    drv_tag_table *tags = drv_tag_table_new();
    int before = drv_tag_count(tags);
    drv_task *v = NULL;
    size_t n = 0;
    drv_error err = {{0}};
    if (drv_tasks_parse(buf, len, tags, &v, &n, &err) < 0) {
        if (!err.msg[0] || strnlen(err.msg, sizeof err.msg) >= sizeof err.msg || v || n ||
            drv_tag_count(tags) != before)
            abort();
    } else {
        drv_tasks_free(v, n);
    }
    drv_tag_table_free(tags);
}

/* Decodes in as chunked in pieces of step bytes (0: one piece) into b. */
static int decode(const char *in, size_t len, size_t step, drv_chunked *d, body *b)
{
    drv_chunked_init(d, BODY_MAX);
    b->len = 0;
    if (step == 0)
        return drv_chunked_feed(d, in, len, collect, b);
    int over = 0;
    for (size_t i = 0; i < len && !over; i += step)
        over = drv_chunked_feed(d, in + i, len - i < step ? len - i : step, collect, b);
    return over;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_submission((const char *)data, size);
    if (size == 0)
        return 0;
    size_t step = (size_t)data[0] % 17 + 1;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    static body whole, pieces;
    drv_chunked a, b;
    int over_a = decode(in, len, 0, &a, &whole);
    int over_b = decode(in, len, step, &b, &pieces);
    if (over_a != over_b || a.error != b.error || a.too_large != b.too_large ||
        whole.len != pieces.len || memcmp(whole.buf, pieces.buf, whole.len) != 0)
        abort(); /* the pieces changed the outcome */
    if (whole.len > len)
        abort();
    if (over_a && !a.error && !a.too_large)
        parse_submission(whole.buf, whole.len);
    return 0;
}
