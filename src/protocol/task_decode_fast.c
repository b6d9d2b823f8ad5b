/* task_decode_fast.c - the hand-written decoder of the common JSON line of a submission
 * (`drover submit` sends tests as JSON lines): a test object with only name, argv and
 * scalar fields in plain strings. It accepts a line exactly when task_json.c's jansson
 * reader would and gives the same test; for anything else it says "not mine" and
 * task_json.c reads the line the general way, which stays the one judge of malformed
 * input and the source of every error message. test_protocol and fuzz_protocol compare
 * the two. */
#include "protocol/task_fast.h"

#include <string.h>

#include "core/analyzer.h"
#include "protocol/flat_json.h"

/* Reads one JSON line of a submission the fast way; see task_fast.h. */
bool drv_task_decode_fast(const char *buf, size_t len, drv_task *t)
{
    enum {
        K_NAME = 1,
        K_ARGV = 2,
        K_CWD = 4,
        K_PRIO = 8,
        K_TMO = 16,
        K_RETRIES = 32,
        K_ROF = 64,
        K_MODEL = 128,
        K_TYPE = 256,
        K_BATCH = 512,
        K_RERUNS = 1024
    };
    static const struct {
        const char *key;
        unsigned bit;
    } keys[] = {{"name", K_NAME},
                {"argv", K_ARGV},
                {"cwd", K_CWD},
                {"priority", K_PRIO},
                {"timeout_s", K_TMO},
                {"max_retries", K_RETRIES},
                {"retry_on_failure", K_ROF},
                {"model_id", K_MODEL},
                {"test_type", K_TYPE},
                {"batch_size", K_BATCH},
                {"reruns", K_RERUNS}};
    drv_task_init(t);
    t->max_retries = DRV_MAX_RETRIES_DEFAULT;
    drv_flat_cursor c = {buf, buf + len};
    unsigned seen = 0;
    if (!drv_flat_take(&c, '{'))
        return false;
    if (drv_flat_take(&c, '}'))
        goto fail; /* no name: the general path says so */
    do {
        const char *key;
        size_t kn;
        if (!drv_flat_string(&c, &key, &kn) || !drv_flat_take(&c, ':'))
            goto fail;
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0] && !bit; i++)
            if (strlen(keys[i].key) == kn && memcmp(keys[i].key, key, kn) == 0)
                bit = keys[i].bit;
        if (!bit || (seen & bit))
            goto fail; /* another member, or a repeated one */
        seen |= bit;
        if (bit == K_ARGV) {
            if (!drv_flat_strv(&c, DRV_ARGV_MAX, DRV_ARG_MAX_BYTES, &t->argv) || !t->argv[0] ||
                !t->argv[0][0])
                goto fail;
            continue;
        }
        drv_flat_member m = {0};
        if (!drv_flat_scalar(&c, &m))
            goto fail;
        if (m.kind == DRV_FLAT_NULL) { /* as if absent, except where required */
            if (bit == K_NAME)
                goto fail;
            continue;
        }
        bool str = m.kind == DRV_FLAT_STRING,
             num = m.kind == DRV_FLAT_INT || m.kind == DRV_FLAT_REAL;
        char **dst = NULL;
        size_t max = 0;
        switch (bit) {
        case K_NAME:
            dst = &t->name, max = DRV_STRING_MAX;
            break;
        case K_CWD:
            dst = &t->cwd, max = DRV_STRING_MAX;
            break;
        case K_MODEL:
            dst = &t->model_id, max = 256;
            break;
        case K_TYPE:
            dst = &t->test_type, max = 64;
            break;
        case K_PRIO:
            if (m.kind != DRV_FLAT_INT || m.i < DRV_PRIORITY_MIN || m.i > DRV_PRIORITY_MAX)
                goto fail;
            t->priority = (int32_t)m.i;
            continue;
        case K_TMO:
            if (!num || !(m.d >= 0 && m.d <= 1e9))
                goto fail;
            t->timeout_s = m.d;
            continue;
        case K_RETRIES:
            if (m.kind != DRV_FLAT_INT || m.i < 0 || m.i > 100)
                goto fail;
            t->max_retries = (uint32_t)m.i;
            continue;
        case K_RERUNS:
            if (m.kind != DRV_FLAT_INT || m.i < 0 || m.i > 100)
                goto fail;
            t->reruns = (uint32_t)m.i;
            continue;
        case K_ROF:
            if (m.kind != DRV_FLAT_TRUE && m.kind != DRV_FLAT_FALSE)
                goto fail;
            t->retry_on_failure = m.kind == DRV_FLAT_TRUE;
            continue;
        case K_BATCH:
            if (m.kind != DRV_FLAT_INT || m.i < 0 || m.i > 1000000)
                goto fail;
            t->batch_size = (uint32_t)m.i;
            continue;
        default:
            goto fail;
        }
        if (!str || m.str_len == 0 || m.str_len > max)
            goto fail;
        *dst = drv_xmalloc(m.str_len + 1); /* owned by the task */
        memcpy(*dst, m.str, m.str_len);
        (*dst)[m.str_len] = '\0';
    } while (drv_flat_take(&c, ','));
    if (!drv_flat_take(&c, '}') || !drv_flat_at_end(&c) || !t->name || !(seen & K_ARGV))
        goto fail;
    t->family = drv_analyzer_family(t->model_id);
    drv_task_apply_retry_alias(t);
    return true;
fail:
    drv_task_clear(t);
    return false;
}
