/* log.c - drover's log lines on stderr (sys/log.h says the format): the coordinator's,
 * the worker's and libwebsockets' in each of them. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "sys/log.h"

static bool log_json;
static bool log_quiet;
static char last_lws_error[512]; /* as large as a line drv_log_lws keeps */

void drv_log_configure(bool json, bool quiet)
{
    log_json = json;
    log_quiet = quiet;
}

static const char *level_name(drv_log_level level)
{
    switch (level) {
    case DRV_LOG_ERROR:
        return "error";
    case DRV_LOG_WARN:
        return "warn";
    case DRV_LOG_INFO:
        break;
    }
    return "info";
}

/* Writes "2026-12-03T13:22:21.123Z" (now, UTC) into buf (at least 32 bytes). */
static void stamp_now(char *buf, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void emit(drv_log_level level, const char *source, const char *msg)
{
    if (log_quiet && level == DRV_LOG_INFO)
        return;
    char stamp[40];
    stamp_now(stamp, sizeof stamp);
    if (!log_json) {
        char upper[8];
        const char *name = level_name(level);
        size_t i = 0;
        for (; name[i] && i < sizeof upper - 1; i++)
            upper[i] = (char)(name[i] - 'a' + 'A');
        upper[i] = '\0';
        fprintf(stderr, "%s %s %s: %s\n", stamp, upper, source, msg);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "time", json_string(stamp));
    json_object_set_new(o, "level", json_string(level_name(level)));
    json_object_set_new(o, "source", json_string(source));
    /* Invalid UTF-8 (a peer's bytes in a message) would make json_string NULL. */
    json_t *m = json_string(msg);
    json_object_set_new(o, "msg", m ? m : json_stringn(msg, 0));
    char *text = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
    if (text)
        fprintf(stderr, "%s\n", text);
    free(text);
    json_decref(o);
}

void drv_logv(drv_log_level level, const char *source, const char *fmt, va_list ap)
{
    if (log_quiet && level == DRV_LOG_INFO)
        return;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    emit(level, source, line);
}

void drv_log(drv_log_level level, const char *source, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    drv_logv(level, source, fmt, ap);
    va_end(ap);
}

void drv_log_lws(int level, const char *line)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", line ? line : "");
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    drv_log_level l = (level & LLL_ERR)    ? DRV_LOG_ERROR
                      : (level & LLL_WARN) ? DRV_LOG_WARN
                                           : DRV_LOG_INFO;
    if (l == DRV_LOG_ERROR && !last_lws_error[0]) {
        /* The first says most; cut to fit (a long line's start says what failed). */
        size_t k = n < sizeof last_lws_error - 1 ? n : sizeof last_lws_error - 1;
        memcpy(last_lws_error, msg, k);
        last_lws_error[k] = '\0';
    }
    emit(l, "libwebsockets", msg);
}

const char *drv_log_last_lws_error(void)
{
    return last_lws_error;
}

void drv_log_forget_lws_error(void)
{
    last_lws_error[0] = '\0';
}
