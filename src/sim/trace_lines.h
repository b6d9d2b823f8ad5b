/* trace_lines.h - what the trace readers share: a line reader over plain or gzip files,
 * in-place field splitting, strict number parsing and bad-line bookkeeping.
 *
 * The reader hands out one line at a time in a buffer it owns and grows (lines of any
 * length), without its "\n" or "\r\n", numbered from 1. Whether the file is gzip is
 * decided by its first two bytes (1f 8b), not by its name; zlib reads both kinds.
 * Messages about a line read "NAME:LINE: why", NAME being the last component of the
 * path. */
#ifndef DRV_SIM_TRACE_LINES_H
#define DRV_SIM_TRACE_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "sim/workload.h"

typedef struct drv_lines {
    void *gz;         /* zlib's gzFile; NULL when closed */
    char *buf;        /* owned: the current line, NUL-terminated, without its newline */
    size_t cap;       /* bytes allocated at buf */
    size_t len;       /* bytes in the current line */
    size_t line_no;   /* 1-based number of the current line; 0 before the first */
    bool gzip;        /* the file starts with the gzip magic bytes */
    const char *path; /* the caller's string, which must outlive the reader */
    const char *name; /* last component of path (points into it), for messages */
} drv_lines;

/* Opens path for reading line by line. Returns 0, or -1 with err naming the path and
 * the system's reason (missing file, permission, a directory). On failure l holds
 * nothing to close. */
int drv_lines_open(drv_lines *l, const char *path, drv_error *err);
/* Reads the next line into l->buf / l->len and advances l->line_no. Returns 1 for a
 * line, 0 at the end of the file (a last line without "\n" is still a line), -1 with
 * err "NAME:LINE: ..." when the data cannot be read (truncated or corrupt gzip). */
int drv_lines_next(drv_lines *l, drv_error *err);
/* Starts over at the first line. Returns 0, or -1 with err naming the file. */
int drv_lines_rewind(drv_lines *l, drv_error *err);
/* Closes the file and frees the buffer; a closed or zeroed reader is a no-op. */
void drv_lines_close(drv_lines *l);

/* Formats "NAME:LINE: why" about the current line into err and returns -1. */
int drv_lines_error(const drv_lines *l, drv_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Splits s in place at runs of spaces and tabs (leading and trailing ones ignored).
 * Stores up to max field pointers and returns how many fields there are in all (which
 * may exceed max). An empty or blank s has 0 fields. */
size_t drv_split_ws(char *s, char **fields, size_t max);
/* Splits s in place at every sep ("a,,b" has 3 fields, "" has 1 empty field). Stores up
 * to max pointers and returns the total count. No quoting is understood. */
size_t drv_split_char(char *s, char sep, char **fields, size_t max);

/* Parses all of s as a finite decimal number ("12", "-1", "3.5e2"). Returns 0, or -1 on
 * an empty string, trailing garbage, inf/nan or overflow; *out is untouched then. */
int drv_parse_number(const char *s, double *out);

/* Bookkeeping of a bad line whose reason is in why->msg ("FILE:LINE: why"). In strict
 * mode copies it into err and returns -1. Otherwise returns 0 and, when count is true,
 * adds one to opt->skipped and keeps the first reason in opt->first_skip. */
int drv_trace_bad_line(drv_trace_options *opt, bool count, const drv_error *why, drv_error *err);

/* The options a reader works with: opt, or *defaults (lenient, no limit) when opt is
 * NULL; its out fields are reset for this call. */
drv_trace_options *drv_trace_options_begin(drv_trace_options *opt, drv_trace_options *defaults);

/* Removes the tests and workers added after the first n_tests / n_workers (their strings
 * freed), so that a reader that fails leaves w as it found it. */
void drv_trace_rollback(drv_workload *w, size_t n_tests, size_t n_workers);

/* Records in w->source that the file at path was read: "trace: NAME" when source is
 * empty, else appends " + NAME" (truncated to fit). */
void drv_trace_note_source(drv_workload *w, const char *path);

/* The last component of path ("a/b.swf" -> "b.swf"); path itself when it has no '/'. */
const char *drv_path_name(const char *path);

#endif
