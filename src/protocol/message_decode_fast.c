/* message_decode_fast.c - the hand-written decoders of the two frames sent per test,
 * "finished" (a flat object: flat_json.h says why) and "assign" of the common shape.
 * Each accepts a frame exactly when message.c's jansson decoder would and gives the same
 * message; for anything else it says "not mine" and message.c decodes the general way,
 * which stays the one judge of malformed input and the source of every error message.
 * test_protocol and fuzz_protocol compare the two. */
#include "protocol/message_fast.h"

#include <stdlib.h>
#include <string.h>

#include "core/worker.h"
#include "protocol/flat_json.h"

/* ---- the fast path of "finished" (flat_json.h says why) ---- */

/* Reads integer member key of o in min..max: 1 present, 0 absent or null, -1 anything
 * else (the general decoder then finds and words the error). */
static int flat_int(const drv_flat_object *o, const char *key, int64_t min, int64_t max,
                    int64_t *out)
{
    const drv_flat_member *m = drv_flat_get(o, key);
    if (!m || m->kind == DRV_FLAT_NULL)
        return 0;
    if (m->kind != DRV_FLAT_INT || m->i < min || m->i > max)
        return -1;
    *out = m->i;
    return 1;
}

static int flat_bool(const drv_flat_object *o, const char *key, bool *out)
{
    const drv_flat_member *m = drv_flat_get(o, key);
    if (!m || m->kind == DRV_FLAT_NULL)
        return 0;
    if (m->kind != DRV_FLAT_TRUE && m->kind != DRV_FLAT_FALSE)
        return -1;
    *out = m->kind == DRV_FLAT_TRUE;
    return 1;
}

static int flat_string(const drv_flat_object *o, const char *key, size_t max_len,
                       const drv_flat_member **out)
{
    const drv_flat_member *m = drv_flat_get(o, key);
    if (!m || m->kind == DRV_FLAT_NULL)
        return 0;
    if (m->kind != DRV_FLAT_STRING || m->str_len > max_len)
        return -1;
    *out = m;
    return 1;
}

static char *flat_dup(const drv_flat_member *m)
{
    char *d = drv_xmalloc(m->str_len + 1); /* owned by the message */
    memcpy(d, m->str, m->str_len);
    d[m->str_len] = '\0';
    return d;
}

/* Decodes a flat "finished" frame exactly as dec_finished would accept it. Returns 1
 * with *out filled (owned by the caller), or 0 when the frame is anything else or is
 * wrong in any way: the caller then decodes it the general way, which gives the same
 * result for a good frame and the error for a bad one. */
static int dec_finished_flat(const char *buf, size_t len, drv_msg *out)
{
    static const char *const known[] = {
        "type",           "v",           "task_id",       "attempt", "exit_code",
        "signal",         "timed_out",   "infra_failure", "error",   "duration_s",
        "peak_memory_kb", "output_tail", "stderr_tail",   NULL};
    drv_flat_object o;
    if (!drv_flat_parse(buf, len, &o))
        return 0;
    for (size_t i = 0; i < o.n; i++) {
        size_t k = 0;
        while (known[k] && !(strlen(known[k]) == o.m[i].key_len &&
                             memcmp(known[k], o.m[i].key, o.m[i].key_len) == 0))
            k++;
        if (!known[k])
            return 0;
    }
    const drv_flat_member *type = drv_flat_get(&o, "type"), *dur = drv_flat_get(&o, "duration_s");
    int64_t v = 0, id = 0, attempt = 0, code = 0, sig = 0, peak = 0;
    drv_msg_finished f = {0};
    const drv_flat_member *error = NULL, *tail = NULL, *etail = NULL;
    if (!type || type->kind != DRV_FLAT_STRING || type->str_len != 8 ||
        memcmp(type->str, "finished", 8) != 0 || flat_int(&o, "v", INT64_MIN, INT64_MAX, &v) <= 0 ||
        v != DRV_PROTOCOL_VERSION || flat_int(&o, "task_id", 0, INT64_MAX, &id) <= 0 ||
        flat_int(&o, "attempt", 1, UINT32_MAX, &attempt) <= 0)
        return 0;
    int has_code = flat_int(&o, "exit_code", 0, 255, &code);
    int has_sig = flat_int(&o, "signal", 1, 127, &sig);
    if (has_code < 0 || has_sig < 0 || flat_bool(&o, "timed_out", &f.timed_out) < 0 ||
        flat_bool(&o, "infra_failure", &f.infra_failure) < 0 ||
        flat_string(&o, "error", DRV_STRING_MAX, &error) < 0 ||
        flat_int(&o, "peak_memory_kb", 0, INT64_MAX, &peak) < 0 ||
        flat_string(&o, "output_tail", DRV_OUTPUT_TAIL_MAX, &tail) < 0 ||
        flat_string(&o, "stderr_tail", DRV_STDERR_TAIL_MAX, &etail) < 0)
        return 0;
    if (!dur || (dur->kind != DRV_FLAT_INT && dur->kind != DRV_FLAT_REAL) ||
        !(dur->d >= 0 && dur->d <= 1e9))
        return 0;
    if (f.infra_failure ? !error || error->str_len == 0 : (has_code > 0) == (has_sig > 0))
        return 0;
    f.ref.task_id = (uint64_t)id;
    f.ref.attempt = (uint32_t)attempt;
    f.has_exit_code = has_code > 0;
    f.exit_code = (int)code;
    f.has_signal = has_sig > 0;
    f.signal = (int)sig;
    f.duration_s = dur->d;
    f.peak_memory_kb = (uint64_t)peak;
    if (error)
        f.error = flat_dup(error);
    if (tail) {
        f.output_tail = flat_dup(tail);
        f.output_tail_len = tail->str_len;
    }
    if (etail) {
        f.stderr_tail = flat_dup(etail);
        f.stderr_tail_len = etail->str_len;
    }
    drv_msg_init(out, DRV_MSG_FINISHED);
    out->finished = f;
    return 1;
}

/* ---- the fast path of "assign" (flat_json.h says why; a worker decodes one per up to
 * DRV_ASSIGN_MAX_TESTS tests) ---- */

/* Whether the n bytes at key are the NUL-terminated name. */
static bool key_is(const char *key, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(key, name, n) == 0;
}

/* Marks member bit in *seen; false when it was seen already (a duplicate key). */
static bool first_time(unsigned *seen, unsigned bit)
{
    if (*seen & bit)
        return false;
    *seen |= bit;
    return true;
}

/* argv: a non-empty array of plain strings, each at most DRV_ARG_MAX_BYTES, the first
 * not empty; into a new vector (owned by t). */
static bool fast_argv(drv_flat_cursor *c, drv_msg_test *t)
{
    return drv_flat_strv(c, DRV_ARGV_MAX, DRV_ARG_MAX_BYTES, &t->argv) && t->argv[0] &&
           t->argv[0][0];
}

/* env: an object of plain strings, names non-empty, without '=', at most
 * DRV_STRING_MAX, not repeated; into "NAME=VALUE" entries (owned by t). */
static bool fast_env(drv_flat_cursor *c, drv_msg_test *t)
{
    if (!drv_flat_take(c, '{'))
        return false;
    size_t n = 0, cap = 4;
    char **v = drv_xmalloc(cap * sizeof *v);
    v[0] = NULL;
    t->env = v;
    if (drv_flat_take(c, '}'))
        return true;
    do {
        const char *name, *val;
        size_t nl, vl;
        if (n == DRV_ENV_MAX || !drv_flat_string(c, &name, &nl) || nl == 0 || nl > DRV_STRING_MAX ||
            memchr(name, '=', nl) || !drv_flat_take(c, ':') || !drv_flat_string(c, &val, &vl) ||
            vl > DRV_ARG_MAX_BYTES)
            return false;
        for (size_t i = 0; i < n; i++)
            if (strncmp(v[i], name, nl) == 0 && v[i][nl] == '=')
                return false;
        if (n + 2 > cap) {
            cap *= 2;
            v = t->env = drv_xrealloc(v, cap * sizeof *v);
        }
        v[n] = drv_xmalloc(nl + vl + 2);
        memcpy(v[n], name, nl);
        v[n][nl] = '=';
        memcpy(v[n] + nl + 1, val, vl);
        v[n][nl + 1 + vl] = '\0';
        v[++n] = NULL;
    } while (drv_flat_take(c, ','));
    return drv_flat_take(c, '}');
}

/* One test object, accepted exactly when dec_test would accept it. */
static bool fast_test(drv_flat_cursor *c, drv_msg_test *t)
{
    enum {
        K_ID = 1,
        K_ATT = 2,
        K_NAME = 4,
        K_ARGV = 8,
        K_ENV = 16,
        K_CWD = 32,
        K_TMO = 64,
        K_CAP = 128,
        K_SHELL = 256
    };
    unsigned seen = 0, present = 0;
    int64_t id = 0, attempt = 0;
    if (!drv_flat_take(c, '{'))
        return false;
    if (!drv_flat_take(c, '}')) {
        do {
            const char *key;
            size_t kn;
            if (!drv_flat_string(c, &key, &kn) || !drv_flat_take(c, ':'))
                return false;
            drv_flat_member m = {0};
            if (key_is(key, kn, "argv")) {
                if (!first_time(&seen, K_ARGV) || !fast_argv(c, t))
                    return false;
                present |= K_ARGV;
                continue;
            }
            if (key_is(key, kn, "env")) {
                if (!first_time(&seen, K_ENV))
                    return false;
                if (drv_flat_take(c, 'n')) { /* null: as if absent */
                    if (c->end - c->p < 3 || memcmp(c->p, "ull", 3) != 0)
                        return false;
                    c->p += 3;
                    continue;
                }
                if (!fast_env(c, t))
                    return false;
                continue;
            }
            if (!drv_flat_scalar(c, &m))
                return false;
            bool null = m.kind == DRV_FLAT_NULL, str = m.kind == DRV_FLAT_STRING,
                 num = m.kind == DRV_FLAT_INT || m.kind == DRV_FLAT_REAL;
            if (key_is(key, kn, "task_id")) {
                if (!first_time(&seen, K_ID) || m.kind != DRV_FLAT_INT || m.i < 0)
                    return false;
                id = m.i;
                present |= K_ID;
            } else if (key_is(key, kn, "attempt")) {
                if (!first_time(&seen, K_ATT) || m.kind != DRV_FLAT_INT || m.i < 1 ||
                    m.i > UINT32_MAX)
                    return false;
                attempt = m.i;
                present |= K_ATT;
            } else if (key_is(key, kn, "name")) {
                if (!first_time(&seen, K_NAME) || !str || m.str_len == 0 ||
                    m.str_len > DRV_STRING_MAX)
                    return false;
                t->name = flat_dup(&m);
                present |= K_NAME;
            } else if (key_is(key, kn, "cwd")) {
                if (!first_time(&seen, K_CWD) ||
                    !(null || (str && m.str_len > 0 && m.str_len <= DRV_STRING_MAX)))
                    return false;
                if (str)
                    t->cwd = flat_dup(&m);
            } else if (key_is(key, kn, "timeout_s")) {
                if (!first_time(&seen, K_TMO) || !(null || (num && m.d >= 0 && m.d <= 1e9)))
                    return false;
                if (num)
                    t->timeout_s = m.d;
            } else if (key_is(key, kn, "output_cap_bytes")) {
                if (!first_time(&seen, K_CAP) || !(null || (m.kind == DRV_FLAT_INT && m.i >= 0)))
                    return false;
                if (!null)
                    t->output_cap_bytes = (uint64_t)m.i;
            } else if (key_is(key, kn, "shell")) {
                if (!first_time(&seen, K_SHELL) ||
                    !(null || m.kind == DRV_FLAT_TRUE || m.kind == DRV_FLAT_FALSE))
                    return false;
                t->shell = m.kind == DRV_FLAT_TRUE;
            } else {
                return false; /* an unknown member */
            }
        } while (drv_flat_take(c, ','));
        if (!drv_flat_take(c, '}'))
            return false;
    }
    if ((present & (K_ID | K_ATT | K_NAME | K_ARGV)) != (K_ID | K_ATT | K_NAME | K_ARGV) ||
        t->shell != drv_argv_is_shell(t->argv))
        return false;
    t->task_id = (uint64_t)id;
    t->attempt = (uint32_t)attempt;
    return true;
}

/* Reads the fencing members that may follow an assign's tests, in the order the encoder
 * writes them (,"epoch":N,"sent_at":T,"lease_s":L), into a. False for anything else. */
static bool fast_fence(drv_flat_cursor *c, drv_msg_assign *a)
{
    static const char *const keys[] = {"epoch", "sent_at", "lease_s"};
    for (size_t i = 0; i < 3; i++) {
        const char *key;
        size_t kn;
        drv_flat_member m = {0};
        if (!drv_flat_take(c, ','))
            return i == 0;
        if (!drv_flat_string(c, &key, &kn) || kn != strlen(keys[i]) ||
            memcmp(key, keys[i], kn) != 0 || !drv_flat_take(c, ':') || !drv_flat_scalar(c, &m))
            return false;
        if (i == 0 && (m.kind != DRV_FLAT_INT || m.i < 0))
            return false;
        if (i > 0 && ((m.kind != DRV_FLAT_INT && m.kind != DRV_FLAT_REAL) || !(m.d >= 0) ||
                      m.d > (i == 1 ? 1e11 : 1e6)))
            return false;
        if (i == 0)
            a->epoch = (uint64_t)m.i;
        else if (i == 1)
            a->sent_at = m.d;
        else
            a->lease_s = m.d;
    }
    return true;
}

/* Decodes an assign frame of the common shape ({"type":"assign","v":1,"tests":[...]}
 * in that order, plain strings) exactly as dec_assign would. Returns 1 with *out
 * filled (owned by the caller), or 0 for anything else: the caller then decodes the
 * general way, which gives the same message for a good frame and the error for a bad
 * one. */
static int dec_assign_fast(const char *buf, size_t len, drv_msg *out)
{
    static const char head[] = "{\"type\":\"assign\",\"v\":1,\"tests\":[";
    if (len < sizeof head - 1 || memcmp(buf, head, sizeof head - 1) != 0)
        return 0;
    drv_flat_cursor c = {buf + sizeof head - 1, buf + len};
    drv_msg_assign a = {0};
    size_t cap = 0;
    bool ok = false;
    do {
        if (a.count == DRV_ASSIGN_MAX_TESTS)
            break;
        if (a.count == cap) {
            cap = cap ? cap * 2 : 64;
            a.tests = drv_xrealloc(a.tests, cap * sizeof *a.tests);
        }
        memset(&a.tests[a.count], 0, sizeof a.tests[a.count]);
        a.count++; /* counted before it is filled, so a failure frees what it holds */
        if (!fast_test(&c, &a.tests[a.count - 1]))
            break;
        if (!drv_flat_take(&c, ',')) {
            ok = drv_flat_take(&c, ']') && fast_fence(&c, &a) && drv_flat_take(&c, '}') &&
                 drv_flat_at_end(&c);
            break;
        }
    } while (true);
    if (!ok) {
        for (size_t i = 0; i < a.count; i++)
            drv_msg_test_clear(&a.tests[i]);
        free(a.tests);
        return 0;
    }
    drv_msg_init(out, DRV_MSG_ASSIGN);
    out->assign = a;
    return 1;
}

/* See message_fast.h. */
int drv_msg_decode_fast(const char *buf, size_t len, drv_msg *out)
{
    return dec_finished_flat(buf, len, out) || dec_assign_fast(buf, len, out);
}
