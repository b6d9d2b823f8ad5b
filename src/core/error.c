/* error.c - error records and allocation that aborts on out-of-memory. */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int drv_error_set(drv_error *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int drv_error_prefix(drv_error *err, const char *fmt, ...)
{
    if (err) {
        char prefix[DRV_ERROR_MAX];
        char old[DRV_ERROR_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, err->msg, sizeof old);
        size_t np = strnlen(prefix, sizeof err->msg - 1);
        memcpy(err->msg, prefix, np);
        size_t off = np;
        if (off + 2 < sizeof err->msg) {
            memcpy(err->msg + off, ": ", 2);
            off += 2;
        }
        size_t no = strnlen(old, sizeof old);
        if (no > sizeof err->msg - 1 - off)
            no = sizeof err->msg - 1 - off;
        memcpy(err->msg + off, old, no);
        err->msg[off + no] = 0;
    }
    return -1;
}

static void out_of_memory(size_t n)
{
    fprintf(stderr, "drover: out of memory allocating %zu bytes\n", n);
    abort();
}

void *drv_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *drv_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *drv_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

char *drv_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = drv_xmalloc(n);
    memcpy(p, s, n);
    return p;
}
