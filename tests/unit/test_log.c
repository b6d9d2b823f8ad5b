/* test_log.c - one log format for drover's lines and libwebsockets' (sys/log.h, issue
 * 11): each line starts with an RFC 3339 UTC time with milliseconds and a level, then the
 * source; with --log-format json each is one JSON object with time, level, source and
 * msg. libwebsockets' own lines (lwsl_err and lwsl_warn through the emit function the
 * coordinator and the worker install) come out in the same form, without lws's own
 * timestamp, and the first error is kept for the message a failed start prints. stderr
 * is sent to a file for the test and read back. */
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "sys/log.h"

#define STAMP "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

/* Runs emit() with stderr in a temporary file; returns what it wrote (owned by the
 * caller), one line per log line. */
static char *captured(void (*emit)(void))
{
    char path[] = "/tmp/drv_log_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    emit();
    fflush(stderr);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)n + 1);
    assert_int_equal(pread(fd, text, (size_t)n, 0), n);
    close(fd);
    unlink(path);
    return text;
}

/* Fails unless line i (from 0) of text matches the extended regular expression re. */
static void line_matches(const char *text, int i, const char *re)
{
    const char *p = text;
    for (int k = 0; k < i && p; k++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p || !*p)
        fail_msg("no line %d in:\n%s", i, text);
    size_t len = strcspn(p, "\n");
    char *line = strndup(p, len);
    regex_t rx;
    assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&rx, line, 0, NULL, 0);
    regfree(&rx);
    if (rc != 0)
        fail_msg("line %d \"%s\" does not match /%s/", i, line, re);
    free(line);
}

static void emit_all(void)
{
    drv_log(DRV_LOG_INFO, "coordinator", "listening on %s", "http://127.0.0.1:7070");
    drv_log(DRV_LOG_WARN, "worker", "cannot connect: %d", 111);
    lws_set_log_level(LLL_ERR | LLL_WARN, drv_log_lws);
    lwsl_err("lws: a real error line %d\n", 42);
    lwsl_warn("lws: a warning\n");
    lwsl_notice("lws: not wanted\n"); /* below the level the coordinator asks for */
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
}

static void test_text_lines(void **state)
{
    (void)state;
    drv_log_configure(false, false);
    drv_log_forget_lws_error();
    char *text = captured(emit_all);
    line_matches(text, 0, "^" STAMP " INFO coordinator: listening on http://127\\.0\\.0\\.1:7070$");
    line_matches(text, 1, "^" STAMP " WARN worker: cannot connect: 111$");
    line_matches(text, 2, "^" STAMP " ERROR libwebsockets: lws: a real error line 42$");
    line_matches(text, 3, "^" STAMP " WARN libwebsockets: lws: a warning$");
    assert_null(strstr(text, "not wanted"));
    assert_string_equal(drv_log_last_lws_error(), "lws: a real error line 42");
    free(text);
}

static void test_json_lines(void **state)
{
    (void)state;
    drv_log_configure(true, false);
    char *text = captured(emit_all);
    drv_log_configure(false, false);
    static const char *const want[][3] = {
        {"info", "coordinator", "listening on http://127.0.0.1:7070"},
        {"warn", "worker", "cannot connect: 111"},
        {"error", "libwebsockets", "lws: a real error line 42"},
        {"warn", "libwebsockets", "lws: a warning"},
    };
    const char *p = text;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        line_matches(text, (int)i, "^\\{\"time\":\"" STAMP "\",\"level\":\"[a-z]+\",\"source\":");
        json_error_t jerr;
        json_t *o = json_loadb(p, strcspn(p, "\n"), 0, &jerr);
        if (!o)
            fail_msg("line %zu is not JSON: %s", i, jerr.text);
        assert_string_equal(json_string_value(json_object_get(o, "level")), want[i][0]);
        assert_string_equal(json_string_value(json_object_get(o, "source")), want[i][1]);
        assert_string_equal(json_string_value(json_object_get(o, "msg")), want[i][2]);
        json_decref(o);
        p = strchr(p, '\n') + 1;
    }
    assert_string_equal(p, "");
    free(text);
}

static void emit_info(void)
{
    drv_log(DRV_LOG_INFO, "worker", "dropped when quiet");
    drv_log(DRV_LOG_ERROR, "worker", "kept when quiet");
}

static void test_quiet_keeps_errors(void **state)
{
    (void)state;
    drv_log_configure(false, true);
    char *text = captured(emit_info);
    drv_log_configure(false, false);
    assert_null(strstr(text, "dropped when quiet"));
    line_matches(text, 0, "^" STAMP " ERROR worker: kept when quiet$");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_lines),
        cmocka_unit_test(test_json_lines),
        cmocka_unit_test(test_quiet_keeps_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
