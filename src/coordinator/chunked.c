/* chunked.c - the chunked request body decoder (chunked.h). */
#include "coordinator/chunked.h"

#include <stdbool.h>

enum {
    CH_SIZE = 0,  /* the first hex digit of a chunk size */
    CH_SIZE_MORE, /* more hex digits, or what ends the size */
    CH_EXT,       /* extensions and CR, up to the LF that ends the size line */
    CH_DATA,      /* left bytes of data */
    CH_DATA_CR,   /* the CRLF after the data */
    CH_DATA_LF,
    CH_TRAILER, /* after the last chunk: a trailer line or the empty line that ends */
    CH_TRAILER_LINE,
    CH_DONE
};

void drv_chunked_init(drv_chunked *d, uint64_t max)
{
    d->state = CH_SIZE;
    d->left = 0;
    d->max = max && max < UINT64_MAX / 16 ? max : UINT64_MAX / 16;
    d->error = NULL;
    d->too_large = 0;
}

static int hex(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

static int fail(drv_chunked *d, const char *why)
{
    d->error = why;
    d->state = CH_DONE;
    return 1;
}

int drv_chunked_feed(drv_chunked *d, const char *in, size_t len, drv_chunked_sink sink, void *ctx)
{
    size_t i = 0;
    while (d->state != CH_DONE && i < len) {
        char ch = in[i];
        switch (d->state) {
        case CH_SIZE:
        case CH_SIZE_MORE: {
            int v = hex(ch);
            i++;
            if (v >= 0) {
                d->left = d->left * 16 + (uint64_t)v;
                d->state = CH_SIZE_MORE;
                if (d->left > d->max) {
                    d->too_large = 1;
                    d->state = CH_DONE;
                }
            } else if (d->state == CH_SIZE_MORE &&
                       (ch == ';' || ch == ' ' || ch == '\t' || ch == '\r')) {
                d->state = CH_EXT;
            } else if (d->state == CH_SIZE_MORE && ch == '\n') {
                d->state = d->left ? CH_DATA : CH_TRAILER;
            } else {
                return fail(d, "malformed chunked body: expected a chunk size in hex");
            }
            break;
        }
        case CH_EXT:
            i++;
            if (ch == '\n')
                d->state = d->left ? CH_DATA : CH_TRAILER;
            break;
        case CH_DATA: {
            size_t n = len - i;
            if (n > d->left)
                n = (size_t)d->left;
            d->left -= n;
            if (d->left == 0)
                d->state = CH_DATA_CR;
            if (sink && sink(ctx, in + i, n) != 0) {
                d->state = CH_DONE;
                return 1;
            }
            i += n;
            break;
        }
        case CH_DATA_CR:
        case CH_DATA_LF:
            i++;
            if (ch == '\r' && d->state == CH_DATA_CR)
                d->state = CH_DATA_LF;
            else if (ch == '\n')
                d->state = CH_SIZE;
            else
                return fail(d, "malformed chunked body: expected CRLF after a chunk");
            break;
        case CH_TRAILER:
            i++;
            if (ch == '\n')
                d->state = CH_DONE;
            else if (ch != '\r')
                d->state = CH_TRAILER_LINE;
            break;
        case CH_TRAILER_LINE:
            i++;
            if (ch == '\n')
                d->state = CH_TRAILER;
            break;
        }
    }
    return d->state == CH_DONE;
}
