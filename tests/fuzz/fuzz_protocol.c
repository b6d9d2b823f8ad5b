/* fuzz_protocol - libFuzzer target: the worker channel decoder and the submission
 * parser on arbitrary bytes.
 *
 * Any input must either decode or give an error message, never crash, leak or read out
 * of bounds. What decodes must encode to a frame that decodes again to the same
 * encoding; a failed submission must leave the tag table untouched; what parses as a
 * submission must survive its own JSON form; and any bytes sent as output must arrive
 * as a valid frame. The hand-written fast paths (drv_protocol_fast_paths) must agree with
 * jansson's: the same verdict, the same error, the same encoding, the same tests. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts unless err holds a non-empty, terminated message. */
static void check_error(const drv_error *err)
{
    if (err->msg[0] == 0 || strnlen(err->msg, sizeof err->msg) >= sizeof err->msg)
        abort();
}

/* Decodes and re-encodes the input with the fast paths on or off: "E:" and the error,
 * or the encoding. Returns a new string. */
static char *verdict(const char *buf, size_t size, bool fast)
{
    drv_protocol_fast_paths = fast;
    drv_msg m;
    drv_error err = {{0}};
    char *out;
    if (drv_msg_decode(buf, size, &m, &err) < 0) {
        out = malloc(strlen(err.msg) + 3);
        strcpy(out, "E:");
        strcat(out, err.msg);
    } else {
        out = drv_msg_encode(&m, NULL, &err);
        if (!out)
            abort();
        drv_msg_free(&m);
    }
    drv_protocol_fast_paths = true;
    return out;
}

/* Decodes the input as a frame; a frame that decodes must round-trip. */
static void fuzz_message(const char *buf, size_t size)
{
    char *fast = verdict(buf, size, true), *slow = verdict(buf, size, false);
    if (strcmp(fast, slow) != 0)
        abort(); /* the fast paths disagree with jansson's */
    free(fast);
    free(slow);

    drv_msg m, back;
    drv_error err = {{0}};
    if (drv_msg_decode(buf, size, &m, &err) < 0) {
        check_error(&err);
        if (m.type != DRV_MSG_NONE)
            abort();
        return;
    }
    size_t len = 0;
    char *text = drv_msg_encode(&m, &len, &err);
    if (!text || drv_msg_decode(text, len, &back, &err) < 0)
        abort();
    char *again = drv_msg_encode(&back, NULL, &err);
    if (!again || strcmp(text, again) != 0)
        abort();
    free(again);
    free(text);
    drv_msg_free(&back);
    drv_msg_free(&m);
}

/* The input parsed as a submission, every test in its JSON form, or "E:" and the error,
 * with the fast paths on or off. Returns a new string. */
static char *tasks_verdict(const char *buf, size_t size, bool fast)
{
    drv_protocol_fast_paths = fast;
    drv_tag_table *tags = drv_tag_table_new();
    drv_task *v = NULL;
    size_t n = 0;
    drv_error err = {{0}};
    char *out;
    if (drv_tasks_parse(buf, size, tags, &v, &n, &err) < 0) {
        out = malloc(strlen(err.msg) + 3);
        strcpy(out, "E:");
        strcat(out, err.msg);
    } else {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, drv_task_to_json(&v[i], tags));
        out = json_dumps(arr, JSON_SORT_KEYS | JSON_COMPACT);
        json_decref(arr);
        drv_tasks_free(v, n);
    }
    drv_tag_table_free(tags);
    drv_protocol_fast_paths = true;
    return out;
}

/* Parses the input as a submission. */
static void fuzz_tasks(const char *buf, size_t size)
{
    char *fast = tasks_verdict(buf, size, true), *slow = tasks_verdict(buf, size, false);
    if (!fast || !slow || strcmp(fast, slow) != 0)
        abort(); /* the fast path disagrees with jansson's */
    free(fast);
    free(slow);

    drv_tag_table *tags = drv_tag_table_new();
    int before = drv_tag_count(tags);
    drv_task *v = NULL;
    size_t n = 0;
    drv_error err = {{0}};
    if (drv_tasks_parse(buf, size, tags, &v, &n, &err) < 0) {
        check_error(&err);
        if (v || n || drv_tag_count(tags) != before)
            abort();
        drv_tag_table_free(tags);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *j = drv_task_to_json(&v[i], tags);
        drv_task back;
        if (drv_task_from_json(j, &back, tags, "", &err) < 0)
            abort();
        if (strcmp(back.name, v[i].name) != 0 || back.priority != v[i].priority ||
            !drv_requirements_equal(&back.req, &v[i].req))
            abort();
        drv_task_clear(&back);
        json_decref(j);
    }
    drv_tasks_free(v, n);
    drv_tag_table_free(tags);
}

/* Sends the input as a test's output: it must arrive as a valid frame. */
static void fuzz_output(const char *buf, size_t size)
{
    drv_msg m, back;
    drv_error err;
    drv_msg_init(&m, DRV_MSG_OUTPUT);
    m.output.ref = (drv_attempt_ref){1, 1};
    m.output.data = (char *)buf;
    m.output.len = size;
    char *text = drv_msg_encode(&m, NULL, &err);
    if (!text || drv_msg_decode(text, strlen(text), &back, &err) < 0)
        abort();
    free(text);
    drv_msg_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes, so reading past the input is caught. */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    fuzz_message(buf, size);
    fuzz_tasks(buf, size);
    if (size <= DRV_OUTPUT_CHUNK_MAX / 3)
        fuzz_output(buf, size);
    free(buf);
    return 0;
}
