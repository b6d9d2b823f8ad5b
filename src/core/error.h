/* error.h - the error record every fallible drover call fills.
 *
 * Convention (after Slurm and Redis): a function that can fail returns 0 (or a
 * non-negative result) on success and a negative value on failure, and, when given a
 * non-NULL drv_error, writes one sentence a user can act on: what failed and on what
 * input ("default_scheduler.algorithms[2].weight: must be a number > 0, got -1").
 * Nothing is allocated: the message lives in the struct. Out of memory aborts. */
#ifndef DRV_CORE_ERROR_H
#define DRV_CORE_ERROR_H

#include <stddef.h>

#define DRV_ERROR_MAX 512

typedef struct drv_error {
    char msg[DRV_ERROR_MAX];
} drv_error;

/* Formats the message into err (if err is not NULL) and returns -1, so that callers
 * can write `return drv_error_set(err, "...", ...);`. */
int drv_error_set(drv_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the existing message with "prefix: ". Returns -1. */
int drv_error_prefix(drv_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocation that never returns NULL: drover aborts on out-of-memory with a message. */
void *drv_xmalloc(size_t n);
void *drv_xcalloc(size_t count, size_t size);
void *drv_xrealloc(void *p, size_t n);
char *drv_xstrdup(const char *s);

#endif
