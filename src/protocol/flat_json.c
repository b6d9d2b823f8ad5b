/* flat_json.c - the flat-object scanner (see flat_json.h). Everything it does not
 * recognise makes it answer "not flat"; it never reports an error of its own. */
#include "protocol/flat_json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef drv_flat_cursor scan;

static void skip_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* A plain string at s->p (on its opening quote): printable ASCII up to the closing
 * quote, no escapes. */
static bool plain_string(scan *s, const char **str, size_t *len)
{
    if (s->p >= s->end || *s->p != '"')
        return false;
    const char *b = ++s->p;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            *str = b;
            *len = (size_t)(s->p - b);
            s->p++;
            return true;
        }
        if (c < 0x20 || c >= 0x7f || c == '\\')
            return false;
        s->p++;
    }
    return false;
}

static bool digits(scan *s)
{
    const char *b = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > b;
}

/* A JSON number at s->p, checked against the grammar first (strtod alone would take
 * "0x1", "inf", "1." or a leading '+'), then converted as jansson does. */
static bool number(scan *s, drv_flat_member *m)
{
    const char *b = s->p;
    bool real = false;
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!(s->p < s->end && *s->p >= '1' && *s->p <= '9') || !digits(s))
        return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        real = true;
        if (!digits(s))
            return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        real = true;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!digits(s))
            return false;
    }
    char tmp[64];
    size_t n = (size_t)(s->p - b);
    if (n >= sizeof tmp)
        return false; /* unusual: let jansson have it */
    memcpy(tmp, b, n);
    tmp[n] = '\0';
    errno = 0;
    if (real) {
        m->kind = DRV_FLAT_REAL;
        m->d = strtod(tmp, NULL);
        return errno == 0 && isfinite(m->d);
    }
    m->kind = DRV_FLAT_INT;
    long long v = strtoll(tmp, NULL, 10);
    if (errno != 0)
        return false; /* out of int64_t: jansson says "too big integer" */
    m->i = v;
    m->d = (double)v;
    return true;
}

static bool word(scan *s, const char *w, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool value(scan *s, drv_flat_member *m)
{
    if (s->p >= s->end)
        return false;
    switch (*s->p) {
    case '"':
        m->kind = DRV_FLAT_STRING;
        return plain_string(s, &m->str, &m->str_len);
    case 't':
        m->kind = DRV_FLAT_TRUE;
        return word(s, "true", 4);
    case 'f':
        m->kind = DRV_FLAT_FALSE;
        return word(s, "false", 5);
    case 'n':
        m->kind = DRV_FLAT_NULL;
        return word(s, "null", 4);
    default:
        return number(s, m);
    }
}

bool drv_flat_parse(const char *buf, size_t len, drv_flat_object *out)
{
    scan s = {buf, buf + len};
    out->n = 0;
    skip_ws(&s);
    if (s.p >= s.end || *s.p++ != '{')
        return false;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
    } else {
        for (;;) {
            if (out->n == DRV_FLAT_MAX_MEMBERS)
                return false;
            drv_flat_member *m = &out->m[out->n];
            memset(m, 0, sizeof *m);
            if (!plain_string(&s, &m->key, &m->key_len))
                return false;
            for (size_t i = 0; i < out->n; i++)
                if (out->m[i].key_len == m->key_len &&
                    memcmp(out->m[i].key, m->key, m->key_len) == 0)
                    return false; /* a duplicate: jansson refuses it and says so */
            skip_ws(&s);
            if (s.p >= s.end || *s.p++ != ':')
                return false;
            skip_ws(&s);
            if (!value(&s, m))
                return false;
            out->n++;
            skip_ws(&s);
            if (s.p < s.end && *s.p == ',') {
                s.p++;
                skip_ws(&s);
                continue;
            }
            if (s.p < s.end && *s.p == '}') {
                s.p++;
                break;
            }
            return false;
        }
    }
    skip_ws(&s);
    return s.p == s.end;
}

const drv_flat_member *drv_flat_get(const drv_flat_object *o, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < o->n; i++)
        if (o->m[i].key_len == n && memcmp(o->m[i].key, key, n) == 0)
            return &o->m[i];
    return NULL;
}

bool drv_flat_take(drv_flat_cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

bool drv_flat_string(drv_flat_cursor *c, const char **str, size_t *len)
{
    skip_ws(c);
    return plain_string(c, str, len);
}

bool drv_flat_scalar(drv_flat_cursor *c, drv_flat_member *m)
{
    skip_ws(c);
    return value(c, m);
}

bool drv_flat_at_end(drv_flat_cursor *c)
{
    skip_ws(c);
    return c->p == c->end;
}

bool drv_flat_strv(drv_flat_cursor *c, size_t max_items, size_t max_len, char ***out)
{
    size_t n = 0, cap = 4;
    char **v = drv_xmalloc(cap * sizeof *v);
    v[0] = NULL;
    *out = v;
    if (!drv_flat_take(c, '['))
        return false;
    if (drv_flat_take(c, ']'))
        return true;
    do {
        const char *str;
        size_t len;
        if (n == max_items || !drv_flat_string(c, &str, &len) || len > max_len)
            return false;
        if (n + 2 > cap) {
            cap *= 2;
            v = *out = drv_xrealloc(v, cap * sizeof *v);
        }
        v[n] = drv_xmalloc(len + 1);
        memcpy(v[n], str, len);
        v[n][len] = '\0';
        v[++n] = NULL;
    } while (drv_flat_take(c, ','));
    return drv_flat_take(c, ']');
}
