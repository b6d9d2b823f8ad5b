/* message_encode_fast.c - the hand-written encoders of "assign" and "finished" (and the
 * string arrays the store writes), beside message.c's jansson encoder. */
#include "protocol/message_fast.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fast path of "assign" and "finished" ----
 * The two frames sent per test, written straight into a buffer instead of through a
 * jansson tree: the same bytes json_dumps(JSON_COMPACT) gives for the tree the general
 * encoder builds (same members in the same order, strings escaped as jansson escapes
 * them, invalid UTF-8 replaced as drv_json_text does, reals formatted as jansson's
 * jsonp_dtostr does), at a fraction of the cost. test_protocol checks the identity. */

typedef struct jbuf {
    char *p; /* owned until handed to the caller */
    size_t len, cap;
} jbuf;

static void jb_reserve(jbuf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->p = drv_xrealloc(b->p, cap);
    b->cap = cap;
}

static void jb_raw(jbuf *b, const char *s, size_t n)
{
    jb_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

#define JB_LIT(b, lit) jb_raw((b), lit, sizeof lit - 1)

/* A JSON string of the n bytes at s: escaped as jansson's dump_string does, each byte
 * that starts no valid UTF-8 sequence replaced by U+FFFD as drv_json_text does; or,
 * when strict, false at the first such byte (as jansson's json_string refuses it). */
static bool jb_str_mode(jbuf *b, const char *s, size_t n, bool strict)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)s;
    jb_reserve(b, n + 2);
    b->p[b->len++] = '"';
    size_t run = 0; /* bytes at u[i - run .. i) to copy as they are */
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        const char *esc = NULL;
        char ubuf[7];
        size_t k = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\b')
            esc = "\\b";
        else if (c == '\f')
            esc = "\\f";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20) {
            memcpy(ubuf, "\\u00", 4);
            ubuf[4] = hex[c >> 4];
            ubuf[5] = hex[c & 15];
            ubuf[6] = '\0';
            esc = ubuf;
        } else if (c >= 0x80 && (k = drv_utf8_seq(u + i, n - i)) == 0) {
            if (strict)
                return false;
            esc = "\xEF\xBF\xBD";
            k = 1;
        }
        if (!esc) {
            i += k;
            run += k;
            continue;
        }
        jb_raw(b, (const char *)u + i - run, run);
        run = 0;
        jb_raw(b, esc, strlen(esc));
        i += k;
    }
    jb_raw(b, (const char *)u + n - run, run);
    JB_LIT(b, "\"");
    return true;
}

static void jb_str(jbuf *b, const char *s, size_t n)
{
    jb_str_mode(b, s, n, false);
}

static void jb_cstr(jbuf *b, const char *s)
{
    jb_str(b, s, strlen(s));
}

static void jb_int(jbuf *b, int64_t v)
{
    char t[32];
    int n = snprintf(t, sizeof t, "%" PRId64, v);
    jb_raw(b, t, (size_t)n);
}

/* A real as jansson writes it (jsonp_dtostr with precision 17): "%.17g", ".0" added
 * when neither a dot nor an exponent shows, the exponent without '+' or leading zeros;
 * null for NaN and infinities (jreal). */
static void jb_real(jbuf *b, double d)
{
    if (!isfinite(d)) {
        JB_LIT(b, "null");
        return;
    }
    char t[40];
    int n = snprintf(t, sizeof t, "%.17g", d);
    size_t len = (size_t)n;
    if (!strchr(t, '.') && !strchr(t, 'e')) {
        memcpy(t + len, ".0", 3);
        len += 2;
    }
    char *start = strchr(t, 'e');
    if (start) {
        start++;
        char *end = start + 1;
        if (*start == '-')
            start++;
        while (*end == '0')
            end++;
        if (end != start) {
            memmove(start, end, len - (size_t)(end - t) + 1);
            len -= (size_t)(end - start);
        }
    }
    jb_raw(b, t, len);
}

static void jb_bool(jbuf *b, bool v)
{
    if (v)
        JB_LIT(b, "true");
    else
        JB_LIT(b, "false");
}

/* Writes one test of an assign as enc_test builds it. Returns false for an env with a
 * repeated name (jansson keeps one member for it, in its first place, with the last
 * value): the general encoder takes such a message. */
static bool jb_test(jbuf *b, const drv_msg_test *t)
{
    JB_LIT(b, "{\"task_id\":");
    jb_int(b, (int64_t)t->task_id);
    JB_LIT(b, ",\"attempt\":");
    jb_int(b, t->attempt);
    JB_LIT(b, ",\"name\":");
    jb_cstr(b, t->name ? t->name : "");
    JB_LIT(b, ",\"argv\":[");
    for (size_t i = 0; t->argv && t->argv[i]; i++) {
        if (i)
            JB_LIT(b, ",");
        jb_cstr(b, t->argv[i]);
    }
    JB_LIT(b, "]");
    if (t->env) {
        JB_LIT(b, ",\"env\":{");
        for (size_t i = 0; t->env[i]; i++) {
            const char *eq = strchr(t->env[i], '=');
            size_t kn = eq ? (size_t)(eq - t->env[i]) : strlen(t->env[i]);
            for (size_t j = 0; j < i; j++) {
                const char *e2 = strchr(t->env[j], '=');
                size_t k2 = e2 ? (size_t)(e2 - t->env[j]) : strlen(t->env[j]);
                if (k2 == kn && memcmp(t->env[i], t->env[j], kn) == 0)
                    return false;
            }
            /* A name with bytes beyond ASCII may be invalid UTF-8, which the general
             * encoder repairs before it looks for repeats: leave it that work. */
            for (size_t j = 0; j < kn; j++)
                if ((unsigned char)t->env[i][j] >= 0x80)
                    return false;
            if (i)
                JB_LIT(b, ",");
            jb_str(b, t->env[i], kn);
            JB_LIT(b, ":");
            jb_cstr(b, eq ? eq + 1 : "");
        }
        JB_LIT(b, "}");
    }
    if (t->cwd) {
        JB_LIT(b, ",\"cwd\":");
        jb_cstr(b, t->cwd);
    }
    JB_LIT(b, ",\"timeout_s\":");
    jb_real(b, t->timeout_s);
    JB_LIT(b, ",\"output_cap_bytes\":");
    jb_int(b, (int64_t)t->output_cap_bytes);
    JB_LIT(b, ",\"shell\":");
    jb_bool(b, t->shell);
    JB_LIT(b, "}");
    return true;
}

/* See protocol.h. */
char *drv_json_strv_dump(char *const *v, size_t *bad)
{
    jbuf b = {0};
    JB_LIT(&b, "[");
    for (size_t i = 0; v && v[i]; i++) {
        if (i)
            JB_LIT(&b, ",");
        if (!jb_str_mode(&b, v[i], strlen(v[i]), true)) {
            if (bad)
                *bad = i;
            free(b.p);
            return NULL;
        }
    }
    JB_LIT(&b, "]");
    return b.p;
}

/* See message_fast.h. */
char *drv_msg_encode_fast(const drv_msg *m, size_t *len)
{
    jbuf b = {0};
    if (m->type == DRV_MSG_ASSIGN) {
        JB_LIT(&b, "{\"type\":\"assign\",\"v\":1,\"tests\":[");
        for (size_t i = 0; i < m->assign.count; i++) {
            if (i)
                JB_LIT(&b, ",");
            if (!jb_test(&b, &m->assign.tests[i])) {
                free(b.p);
                return NULL;
            }
        }
        JB_LIT(&b, "]");
        if (m->assign.epoch || m->assign.sent_at > 0 || m->assign.lease_s > 0) {
            char fence[128];
            int n =
                snprintf(fence, sizeof fence, ",\"epoch\":%llu,\"sent_at\":%.6f,\"lease_s\":%.3f",
                         (unsigned long long)m->assign.epoch, m->assign.sent_at, m->assign.lease_s);
            jb_raw(&b, fence, (size_t)n);
        }
        JB_LIT(&b, "}");
    } else if (m->type == DRV_MSG_FINISHED) {
        const drv_msg_finished *f = &m->finished;
        JB_LIT(&b, "{\"type\":\"finished\",\"v\":1,\"task_id\":");
        jb_int(&b, (int64_t)f->ref.task_id);
        JB_LIT(&b, ",\"attempt\":");
        jb_int(&b, f->ref.attempt);
        JB_LIT(&b, ",\"exit_code\":");
        if (f->has_exit_code)
            jb_int(&b, f->exit_code);
        else
            JB_LIT(&b, "null");
        JB_LIT(&b, ",\"signal\":");
        if (f->has_signal)
            jb_int(&b, f->signal);
        else
            JB_LIT(&b, "null");
        JB_LIT(&b, ",\"timed_out\":");
        jb_bool(&b, f->timed_out);
        JB_LIT(&b, ",\"infra_failure\":");
        jb_bool(&b, f->infra_failure);
        if (f->error) {
            JB_LIT(&b, ",\"error\":");
            jb_cstr(&b, f->error);
        }
        JB_LIT(&b, ",\"duration_s\":");
        jb_real(&b, f->duration_s);
        JB_LIT(&b, ",\"peak_memory_kb\":");
        jb_int(&b, (int64_t)f->peak_memory_kb);
        if (f->output_tail) {
            JB_LIT(&b, ",\"output_tail\":");
            jb_str(&b, f->output_tail, f->output_tail_len);
        }
        if (f->stderr_tail) {
            JB_LIT(&b, ",\"stderr_tail\":");
            jb_str(&b, f->stderr_tail, f->stderr_tail_len);
        }
        JB_LIT(&b, "}");
    } else {
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}
