/* chunked.h - a decoder for HTTP/1.1 request bodies sent with Transfer-Encoding: chunked
 * (RFC 9112 7.1): chunk sizes in hex, optional extensions after ';', CRLF after each
 * chunk's data, a last chunk of size 0, then trailer lines (ignored) and an empty line.
 * libwebsockets 4.1 hands such a body on as it arrives, framing and all (server.c).
 * Pure: no I/O, no allocation. */
#ifndef DRV_COORDINATOR_CHUNKED_H
#define DRV_COORDINATOR_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

typedef struct drv_chunked {
    uint8_t state;
    uint64_t left;     /* data bytes of the current chunk still to come, or its size so far */
    uint64_t max;      /* a chunk size above this is refused (too_large); 0: UINT64_MAX/16 */
    const char *error; /* static: why the body is malformed; NULL: it is not */
    int too_large;     /* a chunk size above max was announced */
} drv_chunked;

/* Called with each run of data bytes; returns 0 to go on, nonzero to stop decoding. */
typedef int (*drv_chunked_sink)(void *ctx, const char *data, size_t len);

/* Starts a body whose chunks may announce at most max bytes each (0: no limit but
 * overflow). */
void drv_chunked_init(drv_chunked *d, uint64_t max);

/* Decodes the len bytes at in, handing data to sink. Returns 1 when the body is over:
 * the empty line after the last chunk was read (error NULL, too_large 0), the body is
 * malformed (error set), a chunk is larger than max (too_large set) or sink asked to
 * stop; 0 when more bytes are needed. Bytes after the end are not looked at. Feeding
 * the body in pieces of any sizes gives the same data and verdict as in one piece. */
int drv_chunked_feed(drv_chunked *d, const char *in, size_t len, drv_chunked_sink sink, void *ctx);

#endif
