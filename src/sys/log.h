/* log.h - drover's log lines on stderr, ours and libwebsockets' in one format, for the
 * coordinator and the worker alike:
 *   2026-12-03T13:22:21.123Z INFO coordinator: listening on http://127.0.0.1:7070
 * or, once drv_log_configure(true, ...) was called, one JSON object per line:
 *   {"time":"2026-12-03T13:22:21.123Z","level":"info","source":"worker","msg":"..."}
 * Times are RFC 3339 in UTC with milliseconds. The settings are process-wide (stderr is).
 * Errors a command prints before it runs (usage, bad options) keep their plain
 * "drover NAME: ..." form. */
#ifndef DRV_SYS_LOG_H
#define DRV_SYS_LOG_H

#include <stdarg.h>
#include <stdbool.h>

typedef enum drv_log_level { DRV_LOG_ERROR = 0, DRV_LOG_WARN, DRV_LOG_INFO } drv_log_level;
/* Process-wide: one JSON object per line instead of text; quiet drops info lines. */
void drv_log_configure(bool json, bool quiet);
/* One line on stderr: RFC 3339 UTC time with milliseconds, level, source, message. */
void drv_log(drv_log_level level, const char *source, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void drv_logv(drv_log_level level, const char *source, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* libwebsockets' emit function (lws_set_log_level): its lines in the same format. */
void drv_log_lws(int level, const char *line);
/* The first error line libwebsockets logged ("" when none since the last forget). */
const char *drv_log_last_lws_error(void);
void drv_log_forget_lws_error(void);

#endif
