/* trace_lines.c - the trace readers' shared parts: lines from plain or gzip files,
 * field splitting, number parsing, bad-line bookkeeping and roll-back. */
#include "sim/trace_lines.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Bigger than zlib's default 8 KiB: fewer reads of the file, faster inflate. */
#define LINES_GZ_BUFFER  (128u * 1024u)
#define LINES_FIRST_SIZE 4096u

const char *drv_path_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Opens path: reads its first two bytes to tell gzip from plain text, then hands it to
 * zlib, which inflates gzip and passes anything else through. Returns 0, or -1 with err
 * "PATH: reason" (nothing to close then). */
int drv_lines_open(drv_lines *l, const char *path, drv_error *err)
{
    memset(l, 0, sizeof *l);
    if (!path)
        return drv_error_set(err, "trace file: no path given (NULL)");
    FILE *f = fopen(path, "rb");
    if (!f)
        return drv_error_set(err, "%s: %s", path, strerror(errno));
    unsigned char magic[2] = {0, 0};
    size_t got = fread(magic, 1, 2, f);
    if (got < 2 && ferror(f)) {
        int e = errno;
        fclose(f);
        return drv_error_set(err, "%s: %s", path, strerror(e));
    }
    fclose(f);
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return drv_error_set(err, "%s: %s", path,
                             errno ? strerror(errno) : "zlib could not open it");
    gzbuffer(gz, LINES_GZ_BUFFER);
    l->gz = gz;
    l->gzip = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    l->path = path;
    l->name = drv_path_name(path);
    l->cap = LINES_FIRST_SIZE;
    l->buf = drv_xmalloc(l->cap); /* owned by l, freed by drv_lines_close() */
    l->buf[0] = '\0';
    return 0;
}

/* Reads one line of any length: gzgets() fills the buffer up to its end or a newline;
 * a full buffer without a newline doubles and reading continues where it stopped.
 * After gzgets() returns NULL, gzerror() tells the end of the file from a damaged one. */
int drv_lines_next(drv_lines *l, drv_error *err)
{
    if (!l->gz)
        return 0;
    gzFile gz = l->gz;
    bool got = false;
    l->len = 0;
    l->buf[0] = '\0';
    for (;;) {
        if (l->cap - l->len < 2) {
            l->cap *= 2;
            l->buf = drv_xrealloc(l->buf, l->cap);
        }
        size_t room = l->cap - l->len;
        if (room > INT_MAX)
            room = INT_MAX;
        if (!gzgets(gz, l->buf + l->len, (int)room)) {
            int code = Z_OK;
            const char *why = gzerror(gz, &code);
            if (code != Z_OK && code != Z_STREAM_END) {
                /* zlib's message starts with the path, which ours already names. */
                size_t plen = strlen(l->path);
                if (why && strncmp(why, l->path, plen) == 0 && strncmp(why + plen, ": ", 2) == 0)
                    why += plen + 2;
                l->line_no++;
                return drv_lines_error(l, err, "%s (zlib: %s)",
                                       l->gzip ? "the compressed data is truncated or corrupt"
                                               : "read error",
                                       why && *why ? why : "unknown error");
            }
            break;
        }
        got = true;
        l->len += strlen(l->buf + l->len);
        if (l->len > 0 && l->buf[l->len - 1] == '\n')
            break;
    }
    if (!got)
        return 0;
    while (l->len > 0 && (l->buf[l->len - 1] == '\n' || l->buf[l->len - 1] == '\r'))
        l->buf[--l->len] = '\0';
    l->line_no++;
    return 1;
}

int drv_lines_rewind(drv_lines *l, drv_error *err)
{
    if (!l->gz || gzrewind((gzFile)l->gz) != 0)
        return drv_error_set(err, "%s: cannot read it again from the start", l->path);
    l->line_no = 0;
    l->len = 0;
    return 0;
}

void drv_lines_close(drv_lines *l)
{
    if (l->gz)
        gzclose((gzFile)l->gz);
    free(l->buf);
    memset(l, 0, sizeof *l);
}

int drv_lines_error(const drv_lines *l, drv_error *err, const char *fmt, ...)
{
    if (err) {
        char why[DRV_ERROR_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        /* The reason may be cut short to fit; the place always comes first. */
        snprintf(err->msg, sizeof err->msg, "%s:%zu: %.*s", l->name, l->line_no, DRV_ERROR_MAX - 80,
                 why);
    }
    return -1;
}

size_t drv_split_ws(char *s, char **fields, size_t max)
{
    size_t n = 0;
    char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            return n;
        if (n < max)
            fields[n] = p;
        n++;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (!*p)
            return n;
        *p++ = '\0';
    }
}

size_t drv_split_char(char *s, char sep, char **fields, size_t max)
{
    size_t n = 0;
    char *p = s;
    for (;;) {
        if (n < max)
            fields[n] = p;
        n++;
        char *q = strchr(p, sep);
        if (!q)
            return n;
        *q = '\0';
        p = q + 1;
    }
}

int drv_parse_number(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v))
        return -1;
    /* strtod also takes "0x1p3" and leading blanks; a trace number is plain decimal. */
    for (const char *p = s; p < end; p++) {
        if (!((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == '.' || *p == 'e' ||
              *p == 'E'))
            return -1;
    }
    *out = v;
    return 0;
}

int drv_trace_bad_line(drv_trace_options *opt, bool count, const drv_error *why, drv_error *err)
{
    if (opt->strict) {
        if (err && err != why)
            memcpy(err->msg, why->msg, sizeof err->msg);
        return -1;
    }
    if (count) {
        if (opt->skipped == 0)
            memcpy(opt->first_skip, why->msg, sizeof opt->first_skip);
        opt->skipped++;
    }
    return 0;
}

void drv_trace_rollback(drv_workload *w, size_t n_tests, size_t n_workers)
{
    for (size_t i = n_tests; i < w->n_tests; i++) {
        free(w->tests[i].name);
        free(w->tests[i].model_id);
        free(w->tests[i].test_type);
    }
    if (w->n_tests > n_tests)
        w->n_tests = n_tests;
    if (w->n_workers > n_workers)
        w->n_workers = n_workers;
}

void drv_trace_note_source(drv_workload *w, const char *path)
{
    size_t used = strnlen(w->source, sizeof w->source);
    const char *name = drv_path_name(path);
    if (used == 0)
        snprintf(w->source, sizeof w->source, "trace: %s", name);
    else if (used + 4 < sizeof w->source)
        snprintf(w->source + used, sizeof w->source - used, " + %s", name);
}

drv_trace_options *drv_trace_options_begin(drv_trace_options *opt, drv_trace_options *defaults)
{
    if (!opt) {
        memset(defaults, 0, sizeof *defaults);
        opt = defaults;
    }
    opt->skipped = 0;
    opt->first_skip[0] = '\0';
    return opt;
}
