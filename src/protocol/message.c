/* message.c - worker channel messages: JSON frames <-> drv_msg through jansson (the
 * field readers are json/json_fields.c; the fast paths of the two per-test frames are
 * message_decode_fast.c and message_encode_fast.c).
 *
 * Decoding fills a local drv_msg and hands it over only when the whole frame is valid;
 * a half-decoded message is freed here. Encoding builds a jansson tree and dumps it
 * compact; every string goes through drv_json_text() so that any bytes (a test's output
 * above all) become a valid JSON string. */
#include "protocol/protocol.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/worker.h"
#include "protocol/message_fast.h"

/* A JSON number for d; null for NaN and infinities, which JSON cannot carry. */
static json_t *jreal(double d)
{
    return isfinite(d) ? json_real(d) : json_null();
}

static json_t *jstr(const char *s)
{
    return drv_json_text(s, s ? strlen(s) : 0);
}

/* ---- names ----------------------------------------------------------------------- */

static const char *const type_names[DRV_MSG_TYPE_COUNT] = {
    [DRV_MSG_NONE] = "none",         [DRV_MSG_HELLO] = "hello",
    [DRV_MSG_WELCOME] = "welcome",   [DRV_MSG_HEARTBEAT] = "heartbeat",
    [DRV_MSG_ASSIGN] = "assign",     [DRV_MSG_STARTED] = "started",
    [DRV_MSG_OUTPUT] = "output",     [DRV_MSG_FINISHED] = "finished",
    [DRV_MSG_CANCEL] = "cancel",     [DRV_MSG_DRAIN] = "drain",
    [DRV_MSG_ERROR] = "error",       [DRV_MSG_RELEASE] = "release",
    [DRV_MSG_RELEASED] = "released",
};

static const unsigned senders[DRV_MSG_TYPE_COUNT] = {
    [DRV_MSG_HELLO] = DRV_MSG_FROM_WORKER,
    [DRV_MSG_WELCOME] = DRV_MSG_FROM_COORDINATOR,
    [DRV_MSG_HEARTBEAT] = DRV_MSG_FROM_WORKER,
    [DRV_MSG_ASSIGN] = DRV_MSG_FROM_COORDINATOR,
    [DRV_MSG_STARTED] = DRV_MSG_FROM_WORKER,
    [DRV_MSG_OUTPUT] = DRV_MSG_FROM_WORKER,
    [DRV_MSG_FINISHED] = DRV_MSG_FROM_WORKER,
    [DRV_MSG_CANCEL] = DRV_MSG_FROM_COORDINATOR,
    [DRV_MSG_DRAIN] = DRV_MSG_FROM_WORKER | DRV_MSG_FROM_COORDINATOR,
    [DRV_MSG_ERROR] = DRV_MSG_FROM_WORKER | DRV_MSG_FROM_COORDINATOR,
    [DRV_MSG_RELEASE] = DRV_MSG_FROM_COORDINATOR,
    [DRV_MSG_RELEASED] = DRV_MSG_FROM_WORKER,
};

/* Returns the wire name of t, or "?" out of range. */
const char *drv_msg_type_name(drv_msg_type t)
{
    if ((int)t < 0 || t >= DRV_MSG_TYPE_COUNT)
        return "?";
    return type_names[t];
}

/* Returns the type named name, or -1 for NULL, "none" or an unknown name. */
int drv_msg_type_parse(const char *name)
{
    if (!name)
        return -1;
    for (int i = DRV_MSG_NONE + 1; i < DRV_MSG_TYPE_COUNT; i++)
        if (strcmp(type_names[i], name) == 0)
            return i;
    return -1;
}

/* Returns who may send t (DRV_MSG_FROM_* bits); 0 for NONE and out of range. */
unsigned drv_msg_senders(drv_msg_type t)
{
    if ((int)t < 0 || t >= DRV_MSG_TYPE_COUNT)
        return 0;
    return senders[t];
}

/* Copies the attempt m is about into *ref; false for messages about no attempt. */
bool drv_msg_attempt(const drv_msg *m, drv_attempt_ref *ref)
{
    switch (m->type) {
    case DRV_MSG_STARTED:
        *ref = m->started.ref;
        return true;
    case DRV_MSG_OUTPUT:
        *ref = m->output.ref;
        return true;
    case DRV_MSG_FINISHED:
        *ref = m->finished.ref;
        return true;
    case DRV_MSG_CANCEL:
        *ref = m->cancel.ref;
        return true;
    case DRV_MSG_RELEASE:
    case DRV_MSG_RELEASED:
        *ref = m->release.ref;
        return true;
    default:
        return false;
    }
}

/* ---- lifetime ------------------------------------------------------------------- */

/* Makes m an empty message of type; see protocol.h. */
void drv_msg_init(drv_msg *m, drv_msg_type type)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    if (type == DRV_MSG_HELLO)
        m->hello.speed = 1;
    if (type == DRV_MSG_HEARTBEAT) {
        m->heartbeat.temperature_c = -1;
        m->heartbeat.cpu_pressure = -1;
        m->heartbeat.memory_pressure = -1;
        m->heartbeat.freq_ratio = -1;
        m->heartbeat.tests_cpu = -1;
    }
}

/* Frees what one test owns and zeroes it; NULL is a no-op. */
void drv_msg_test_clear(drv_msg_test *t)
{
    if (!t)
        return;
    free(t->name);
    drv_strv_free(t->argv);
    drv_strv_free(t->env);
    free(t->cwd);
    memset(t, 0, sizeof *t);
}

/* Frees everything m owns and leaves it NONE; NULL is a no-op. */
void drv_msg_free(drv_msg *m)
{
    if (!m)
        return;
    switch (m->type) {
    case DRV_MSG_HELLO:
        free(m->hello.token);
        free(m->hello.name);
        free(m->hello.caps.cuda_cc);
        free(m->hello.caps.driver_version);
        drv_strv_free(m->hello.caps.tags);
        free(m->hello.caps.os);
        free(m->hello.caps.arch);
        free(m->hello.running);
        free(m->hello.instance);
        break;
    case DRV_MSG_HEARTBEAT:
        free(m->heartbeat.running);
        break;
    case DRV_MSG_ASSIGN:
        for (size_t i = 0; i < m->assign.count; i++)
            drv_msg_test_clear(&m->assign.tests[i]);
        free(m->assign.tests);
        break;
    case DRV_MSG_OUTPUT:
        free(m->output.data);
        break;
    case DRV_MSG_FINISHED:
        free(m->finished.error);
        free(m->finished.output_tail);
        free(m->finished.stderr_tail);
        break;
    case DRV_MSG_DRAIN:
        free(m->drain.reason);
        free(m->drain.keeps);
        break;
    case DRV_MSG_ERROR:
        free(m->error.message);
        free(m->error.field);
        break;
    default:
        break;
    }
    drv_msg_init(m, DRV_MSG_NONE);
}

/* True when argv is exactly {DRV_SHELL_PATH, "-c", command}. */
bool drv_argv_is_shell(char *const *argv)
{
    return argv && argv[0] && argv[1] && argv[2] && !argv[3] &&
           strcmp(argv[0], DRV_SHELL_PATH) == 0 && strcmp(argv[1], "-c") == 0;
}

/* Deep-copies what a worker needs to run attempt `attempt` of t into out. */
void drv_msg_test_from_task(drv_msg_test *out, const drv_task *t, uint32_t attempt,
                            uint64_t output_cap_bytes)
{
    memset(out, 0, sizeof *out);
    out->task_id = t->id;
    out->attempt = attempt;
    out->name = t->name ? drv_xstrdup(t->name) : NULL;
    out->argv = drv_strv_dup(t->argv);
    out->env = drv_strv_dup(t->env);
    out->cwd = t->cwd ? drv_xstrdup(t->cwd) : NULL;
    out->timeout_s = t->timeout_s;
    out->output_cap_bytes = output_cap_bytes;
    out->shell = drv_argv_is_shell(t->argv);
}

/* Interns the hello's tags and parses its versions into out; see protocol.h. */
int drv_msg_caps_to_capabilities(const drv_msg_caps *caps, drv_tag_table *tags,
                                 drv_capabilities *out, drv_error *err)
{
    drv_capabilities c;
    drv_capabilities_init(&c);
    c.cpu_cores = caps->cpu_cores;
    c.memory_mb = caps->memory_mb;
    c.gpu_count = caps->gpu_count;
    c.gpu_memory_mb = caps->gpu_memory_mb;
    if (caps->cuda_cc && drv_cuda_cc_parse(caps->cuda_cc, &c.cuda_cc, err) < 0)
        return drv_error_prefix(err, "hello.capabilities.cuda_cc");
    if (caps->driver_version && drv_version_parse(caps->driver_version, &c.driver_version, err) < 0)
        return drv_error_prefix(err, "hello.capabilities.driver_version");
    /* Staged as the codec stages a submission's: every name and the room they need are
     * checked before any is interned. */
    drv_tag_stage st = {tags, NULL};
    int rc = 0;
    for (size_t i = 0; caps->tags && caps->tags[i] && rc == 0; i++) {
        char path[DRV_JSON_PATH_MAX];
        int id = -1;
        drv_json_path_index(path, "hello.capabilities.tags", i);
        rc = drv_tag_stage_id(&st, caps->tags[i], path, &id, err);
        if (rc == 0)
            drv_tagset_add(&c.tags, id);
    }
    if (rc == 0)
        rc = drv_tag_stage_commit(&st, err);
    drv_tag_stage_free(&st);
    if (rc < 0)
        return -1;
    *out = c;
    return 0;
}

/* ---- decoding ------------------------------------------------------------------- */

#define ID_MAX ((uint64_t)INT64_MAX)

/* Reads an owned copy of an optional (or required) string field into *out. */
static int dup_string(const json_t *o, const char *path, const char *key, unsigned flags,
                      size_t max_len, char **out, drv_error *err)
{
    const char *s = NULL;
    int rc = drv_json_string(o, path, key, flags, max_len, &s, err);
    if (rc > 0)
        *out = drv_xstrdup(s); /* owned by the message */
    return rc;
}

/* Reads a string field that may hold any UTF-8 including NUL (output data) into an
 * owned, NUL-terminated copy with its length. */
static int dup_data(const json_t *o, const char *path, const char *key, unsigned flags,
                    size_t max_len, char **out, size_t *len, drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = drv_json_field(o, path, key, flags, sub, &rc, err);
    if (rc <= 0)
        return rc;
    if (!json_is_string(v))
        return drv_json_wrong(err, sub, "a string", v);
    size_t n = json_string_length(v);
    if (n > max_len)
        return drv_error_set(err, "%s: %zu bytes, longer than the limit of %zu", sub, n, max_len);
    char *d = drv_xmalloc(n + 1); /* owned by the message */
    memcpy(d, json_string_value(v), n);
    d[n] = '\0';
    *out = d;
    *len = n;
    return 1;
}

/* Reads the task_id and attempt fields of o into *ref. */
static int read_ref(const json_t *o, const char *path, drv_attempt_ref *ref, drv_error *err)
{
    uint64_t id = 0, attempt = 0;
    if (drv_json_uint(o, path, "task_id", DRV_JSON_REQUIRED, 0, ID_MAX, &id, err) < 0 ||
        drv_json_uint(o, path, "attempt", DRV_JSON_REQUIRED, 1, UINT32_MAX, &attempt, err) < 0)
        return -1;
    ref->task_id = id;
    ref->attempt = (uint32_t)attempt;
    return 0;
}

/* Reads an optional array of {task_id, attempt} at key into a new array. */
static int read_refs(const json_t *o, const char *path, const char *key, drv_attempt_ref **out,
                     size_t *count, drv_error *err)
{
    static const char *const known[] = {"task_id", "attempt", NULL};
    char sub[DRV_JSON_PATH_MAX], item[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = drv_json_field(o, path, key, 0, sub, &rc, err);
    if (rc <= 0)
        return rc;
    if (!json_is_array(v))
        return drv_json_wrong(err, sub, "an array of {task_id, attempt}", v);
    size_t n = json_array_size(v);
    if (n > DRV_RUNNING_MAX)
        return drv_error_set(err, "%s: %zu items, more than the limit of %d", sub, n,
                             DRV_RUNNING_MAX);
    drv_attempt_ref *refs = drv_xcalloc(n ? n : 1, sizeof *refs);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        drv_json_path_index(item, sub, i);
        if (!json_is_object(e)) {
            free(refs);
            return drv_json_wrong(err, item, "an object {task_id, attempt}", e);
        }
        if (drv_json_check_keys(e, item, known, err) < 0 || read_ref(e, item, &refs[i], err) < 0) {
            free(refs);
            return -1;
        }
    }
    *out = refs; /* owned by the message */
    *count = n;
    return 1;
}

/* A version the codec read (parsed) into *out as the worker wrote it: its string, or the
 * codec's words for a number. Nothing when absent. */
static void hello_version(const json_t *c, const char *key, uint32_t parsed,
                          void (*format)(uint32_t, char *, size_t), char **out)
{
    const json_t *v = json_object_get(c, key);
    char buf[32];
    if (json_is_string(v)) {
        *out = drv_xstrdup(json_string_value(v));
    } else if (parsed) {
        format(parsed, buf, sizeof buf);
        *out = drv_xstrdup(buf);
    }
}

/* Reads a hello's capabilities through the one codec (requirements_json.c, with the
 * hello's v1 spellings cpu_cores and gpu_count beside cpu and gpus) into k: the numbers,
 * cuda_cc and driver_version as written (checked by the codec), the tags as names. The
 * codec stages the tags on a table of their own, which checks every name; the
 * coordinator interns them later (drv_msg_caps_to_capabilities). */
static int dec_hello_caps(const json_t *c, drv_msg_caps *k, drv_error *err)
{
    static const char *const also_known[] = {"os", "arch", NULL};
    const char *cp = "hello.capabilities";
    drv_tag_table *own = drv_tag_table_new();
    drv_tag_stage st = {own, NULL};
    drv_capabilities caps;
    drv_capabilities_init(&caps);
    int rc = drv_capabilities_read(c, cp, DRV_RES_HELLO, also_known, &st, &caps, err);
    if (rc == 0 && caps.cpu_cores == 0)
        rc = drv_error_set(err, "%s.cpu_cores: required, at least 1 (or cpu)", cp);
    const json_t *mb = json_object_get(c, "memory_mb"), *gb = json_object_get(c, "memory_gb");
    if (rc == 0 && (!mb || json_is_null(mb)) && (!gb || json_is_null(gb)))
        rc = drv_error_set(err, "%s.memory_mb: required (or memory_gb)", cp);
    if (rc == 0 && (dup_string(c, cp, "os", 0, 64, &k->os, err) < 0 ||
                    dup_string(c, cp, "arch", 0, 64, &k->arch, err) < 0))
        rc = -1;
    if (rc == 0) {
        k->cpu_cores = caps.cpu_cores;
        k->memory_mb = caps.memory_mb;
        k->gpu_count = caps.gpu_count;
        k->gpu_memory_mb = caps.gpu_memory_mb;
        hello_version(c, "cuda_cc", caps.cuda_cc, drv_cuda_cc_format, &k->cuda_cc);
        hello_version(c, "driver_version", caps.driver_version, drv_version_format,
                      &k->driver_version);
        /* The names as given (the codec checked each): the coordinator interns them. */
        rc = drv_json_strv(c, cp, "tags", 0, DRV_TAGS_MAX, DRV_STRING_MAX, &k->tags, err) < 0 ? -1
                                                                                              : 0;
    }
    drv_tag_stage_free(&st);
    drv_tag_table_free(own);
    return rc;
}

static int dec_hello(const json_t *o, drv_msg_hello *h, drv_error *err)
{
    static const char *const known[] = {"type",  "v",     "token",   "name",     "capabilities",
                                        "slots", "speed", "running", "instance", NULL};
    if (drv_json_check_keys(o, "hello", known, err) < 0 ||
        dup_string(o, "hello", "token", DRV_JSON_REQUIRED | DRV_JSON_NONEMPTY, DRV_STRING_MAX,
                   &h->token, err) < 0 ||
        dup_string(o, "hello", "name", DRV_JSON_REQUIRED | DRV_JSON_NONEMPTY,
                   DRV_WORKER_NAME_MAX - 1, &h->name, err) < 0 ||
        dup_string(o, "hello", "instance", DRV_JSON_NONEMPTY, DRV_INSTANCE_MAX - 1, &h->instance,
                   err) < 0)
        return -1;
    const json_t *c = json_object_get(o, "capabilities");
    if (!c || json_is_null(c))
        return drv_error_set(err, "hello.capabilities: required");
    if (dec_hello_caps(c, &h->caps, err) < 0)
        return -1;
    uint64_t u = 0;
    if (drv_json_uint(o, "hello", "slots", DRV_JSON_REQUIRED, 1, 1u << 16, &u, err) < 0)
        return -1;
    h->slots = (uint32_t)u;
    if (drv_json_number(o, "hello", "speed", 0, 1e-3, 1e3, &h->speed, err) < 0)
        return -1;
    return read_refs(o, "hello", "running", &h->running, &h->running_count, err) < 0 ? -1 : 0;
}

static int dec_welcome(const json_t *o, drv_msg_welcome *w, drv_error *err)
{
    static const char *const known[] = {"type",        "v",     "worker_id", "heartbeat_interval_s",
                                        "server_time", "epoch", NULL};
    if (drv_json_check_keys(o, "welcome", known, err) < 0 ||
        drv_json_uint(o, "welcome", "worker_id", DRV_JSON_REQUIRED, 0, ID_MAX, &w->worker_id, err) <
            0 ||
        drv_json_number(o, "welcome", "heartbeat_interval_s", DRV_JSON_REQUIRED, 0.001, 3600,
                        &w->heartbeat_interval_s, err) < 0 ||
        drv_json_number(o, "welcome", "server_time", DRV_JSON_REQUIRED, 0, 1e11, &w->server_time,
                        err) < 0 ||
        drv_json_uint(o, "welcome", "epoch", 0, 0, ID_MAX, &w->epoch, err) < 0)
        return -1;
    return 0;
}

static int dec_heartbeat(const json_t *o, drv_msg_heartbeat *hb, drv_error *err)
{
    static const char *const known[] = {
        "type",       "v",         "load",       "temperature_c", "throttled",
        "overloaded", "running",   "free_slots", "cpu_pressure",  "memory_pressure",
        "freq_ratio", "tests_cpu", NULL};
    uint64_t u = 0;
    if (drv_json_check_keys(o, "heartbeat", known, err) < 0 ||
        drv_json_number(o, "heartbeat", "load", DRV_JSON_REQUIRED, 0, 1e6, &hb->load, err) < 0 ||
        drv_json_number(o, "heartbeat", "temperature_c", 0, -273.15, 1000, &hb->temperature_c,
                        err) < 0 ||
        drv_json_bool(o, "heartbeat", "throttled", 0, &hb->throttled, err) < 0 ||
        drv_json_bool(o, "heartbeat", "overloaded", 0, &hb->overloaded, err) < 0 ||
        drv_json_number(o, "heartbeat", "cpu_pressure", 0, 0, 1, &hb->cpu_pressure, err) < 0 ||
        drv_json_number(o, "heartbeat", "memory_pressure", 0, 0, 1, &hb->memory_pressure, err) <
            0 ||
        drv_json_number(o, "heartbeat", "freq_ratio", 0, 0, 1, &hb->freq_ratio, err) < 0 ||
        drv_json_number(o, "heartbeat", "tests_cpu", 0, 0, 1, &hb->tests_cpu, err) < 0 ||
        drv_json_uint(o, "heartbeat", "free_slots", DRV_JSON_REQUIRED, 0, 1u << 16, &u, err) < 0)
        return -1;
    hb->free_slots = (uint32_t)u;
    /* A probe that reads below zero Celsius is as good as unknown for the thermal model. */
    if (hb->temperature_c < 0)
        hb->temperature_c = -1;
    return read_refs(o, "heartbeat", "running", &hb->running, &hb->running_count, err) < 0 ? -1 : 0;
}

/* Reads an object of strings at key into a NULL-terminated "KEY=VALUE" vector. */
int drv_json_env(const json_t *o, const char *path, const char *key, unsigned flags, char ***out,
                 drv_error *err)
{
    char sub[DRV_JSON_PATH_MAX], item[DRV_JSON_PATH_MAX];
    int rc;
    const json_t *v = drv_json_field(o, path, key, flags, sub, &rc, err);
    if (rc <= 0)
        return rc;
    if (!json_is_object(v))
        return drv_json_wrong(err, sub, "an object of strings", v);
    size_t n = json_object_size(v);
    if (n > DRV_ENV_MAX)
        return drv_error_set(err, "%s: %zu entries, more than the limit of %d", sub, n,
                             DRV_ENV_MAX);
    const char *name;
    json_t *val;
    json_object_foreach((json_t *)v, name, val)
    {
        char shown[64];
        snprintf(shown, sizeof shown, "%.40s", name);
        drv_json_path_key(item, sub, shown);
        if (!*name || strchr(name, '='))
            return drv_error_set(err, "%s: variable name must be non-empty and without '='", item);
        if (strlen(name) > DRV_STRING_MAX)
            return drv_error_set(err, "%s: variable name longer than %d bytes", item,
                                 DRV_STRING_MAX);
        if (drv_json_check_string(val, item, 0, DRV_ARG_MAX_BYTES, err) < 0)
            return -1;
    }
    /* Owned by the caller: the vector and each "KEY=VALUE" (drv_strv_free). */
    char **vec = drv_xmalloc((n + 1) * sizeof *vec);
    size_t i = 0;
    json_object_foreach((json_t *)v, name, val)
    {
        size_t kn = strlen(name), vn = json_string_length(val);
        char *e = drv_xmalloc(kn + vn + 2);
        memcpy(e, name, kn);
        e[kn] = '=';
        memcpy(e + kn + 1, json_string_value(val), vn + 1);
        vec[i++] = e;
    }
    vec[i] = NULL;
    *out = vec;
    return 1;
}

static int dec_test(const json_t *o, const char *path, drv_msg_test *t, drv_error *err)
{
    static const char *const known[] = {"task_id", "attempt", "name",      "argv",
                                        "env",     "cwd",     "timeout_s", "output_cap_bytes",
                                        "shell",   NULL};
    drv_attempt_ref ref;
    if (!json_is_object(o))
        return drv_json_wrong(err, path, "an object", o);
    if (drv_json_check_keys(o, path, known, err) < 0 || read_ref(o, path, &ref, err) < 0 ||
        dup_string(o, path, "name", DRV_JSON_REQUIRED | DRV_JSON_NONEMPTY, DRV_STRING_MAX, &t->name,
                   err) < 0 ||
        drv_json_strv(o, path, "argv", DRV_JSON_REQUIRED | DRV_JSON_NONEMPTY, DRV_ARGV_MAX,
                      DRV_ARG_MAX_BYTES, &t->argv, err) < 0 ||
        drv_json_env(o, path, "env", 0, &t->env, err) < 0 ||
        dup_string(o, path, "cwd", DRV_JSON_NONEMPTY, DRV_STRING_MAX, &t->cwd, err) < 0 ||
        drv_json_number(o, path, "timeout_s", 0, 0, 1e9, &t->timeout_s, err) < 0 ||
        drv_json_uint(o, path, "output_cap_bytes", 0, 0, ID_MAX, &t->output_cap_bytes, err) < 0 ||
        drv_json_bool(o, path, "shell", 0, &t->shell, err) < 0)
        return -1;
    t->task_id = ref.task_id;
    t->attempt = ref.attempt;
    char sub[DRV_JSON_PATH_MAX];
    if (t->argv[0][0] == '\0') {
        drv_json_path_key(sub, path, "argv[0]");
        return drv_error_set(err, "%s: the program must not be empty", sub);
    }
    if (t->shell != drv_argv_is_shell(t->argv)) {
        drv_json_path_key(sub, path, "shell");
        return drv_error_set(err,
                             t->shell ? "%s: true needs argv [\"" DRV_SHELL_PATH
                                        "\", \"-c\", COMMAND]"
                                      : "%s: argv runs a shell command, so shell must be true",
                             sub);
    }
    return 0;
}

static int dec_assign(const json_t *o, drv_msg_assign *a, drv_error *err)
{
    static const char *const known[] = {"type", "v", "tests", "epoch", "sent_at", "lease_s", NULL};
    if (drv_json_check_keys(o, "assign", known, err) < 0 ||
        drv_json_uint(o, "assign", "epoch", 0, 0, ID_MAX, &a->epoch, err) < 0 ||
        drv_json_number(o, "assign", "sent_at", 0, 0, 1e11, &a->sent_at, err) < 0 ||
        drv_json_number(o, "assign", "lease_s", 0, 0, 1e6, &a->lease_s, err) < 0)
        return -1;
    const json_t *tests = json_object_get(o, "tests");
    if (!tests || json_is_null(tests))
        return drv_error_set(err, "assign.tests: required");
    if (!json_is_array(tests))
        return drv_json_wrong(err, "assign.tests", "an array of tests", tests);
    size_t n = json_array_size(tests);
    if (n == 0)
        return drv_error_set(err, "assign.tests: must not be empty");
    if (n > DRV_ASSIGN_MAX_TESTS)
        return drv_error_set(err, "assign.tests: %zu tests, more than the limit of %d per assign",
                             n, DRV_ASSIGN_MAX_TESTS);
    a->tests = drv_xcalloc(n, sizeof *a->tests); /* owned by the message */
    a->count = n;
    for (size_t i = 0; i < n; i++) {
        char path[DRV_JSON_PATH_MAX];
        drv_json_path_index(path, "assign.tests", i);
        if (dec_test(json_array_get(tests, i), path, &a->tests[i], err) < 0)
            return -1;
    }
    return 0;
}

static int dec_started(const json_t *o, drv_msg_started *s, drv_error *err)
{
    static const char *const known[] = {"type", "v", "task_id", "attempt", "pid", "t", NULL};
    if (drv_json_check_keys(o, "started", known, err) < 0 ||
        read_ref(o, "started", &s->ref, err) < 0 ||
        drv_json_int(o, "started", "pid", DRV_JSON_REQUIRED, 1, INT32_MAX, &s->pid, err) < 0 ||
        drv_json_number(o, "started", "t", DRV_JSON_REQUIRED, 0, 1e11, &s->t, err) < 0)
        return -1;
    return 0;
}

static int dec_output(const json_t *o, drv_msg_output *out, drv_error *err)
{
    static const char *const known[] = {"type",   "v",    "task_id", "attempt",
                                        "stream", "data", "seq",     NULL};
    const char *stream = NULL;
    if (drv_json_check_keys(o, "output", known, err) < 0 ||
        read_ref(o, "output", &out->ref, err) < 0 ||
        drv_json_string(o, "output", "stream", DRV_JSON_REQUIRED, 16, &stream, err) < 0 ||
        dup_data(o, "output", "data", DRV_JSON_REQUIRED, DRV_OUTPUT_CHUNK_MAX, &out->data,
                 &out->len, err) < 0 ||
        drv_json_uint(o, "output", "seq", DRV_JSON_REQUIRED, 0, ID_MAX, &out->seq, err) < 0)
        return -1;
    if (strcmp(stream, "stdout") == 0)
        out->stream = DRV_STREAM_STDOUT;
    else if (strcmp(stream, "stderr") == 0)
        out->stream = DRV_STREAM_STDERR;
    else
        return drv_json_wrong(err, "output.stream", "\"stdout\" or \"stderr\"",
                              json_object_get(o, "stream"));
    return 0;
}

static int dec_finished(const json_t *o, drv_msg_finished *f, drv_error *err)
{
    static const char *const known[] = {
        "type",           "v",           "task_id",       "attempt", "exit_code",
        "signal",         "timed_out",   "infra_failure", "error",   "duration_s",
        "peak_memory_kb", "output_tail", "stderr_tail",   NULL};
    int64_t code = 0, sig = 0;
    int has_code, has_sig;
    if (drv_json_check_keys(o, "finished", known, err) < 0 ||
        read_ref(o, "finished", &f->ref, err) < 0 ||
        (has_code = drv_json_int(o, "finished", "exit_code", 0, 0, 255, &code, err)) < 0 ||
        (has_sig = drv_json_int(o, "finished", "signal", 0, 1, 127, &sig, err)) < 0 ||
        drv_json_bool(o, "finished", "timed_out", 0, &f->timed_out, err) < 0 ||
        drv_json_bool(o, "finished", "infra_failure", 0, &f->infra_failure, err) < 0 ||
        dup_string(o, "finished", "error", 0, DRV_STRING_MAX, &f->error, err) < 0 ||
        drv_json_number(o, "finished", "duration_s", DRV_JSON_REQUIRED, 0, 1e9, &f->duration_s,
                        err) < 0 ||
        drv_json_uint(o, "finished", "peak_memory_kb", 0, 0, ID_MAX, &f->peak_memory_kb, err) < 0 ||
        dup_data(o, "finished", "output_tail", 0, DRV_OUTPUT_TAIL_MAX, &f->output_tail,
                 &f->output_tail_len, err) < 0 ||
        dup_data(o, "finished", "stderr_tail", 0, DRV_STDERR_TAIL_MAX, &f->stderr_tail,
                 &f->stderr_tail_len, err) < 0)
        return -1;
    f->has_exit_code = has_code > 0;
    f->exit_code = (int)code;
    f->has_signal = has_sig > 0;
    f->signal = (int)sig;
    if (f->infra_failure) {
        if (!f->error || !*f->error)
            return drv_error_set(err, "finished.error: required when infra_failure is true "
                                      "(say why the test could not run)");
    } else if (f->has_exit_code == f->has_signal) {
        return drv_error_set(err,
                             "finished: give exactly one of exit_code and signal (got %s), "
                             "or infra_failure with an error",
                             f->has_exit_code ? "both" : "neither");
    }
    return 0;
}

static int dec_cancel(const json_t *o, drv_msg_cancel *c, drv_error *err)
{
    static const char *const known[] = {"type", "v", "task_id", "attempt", NULL};
    if (drv_json_check_keys(o, "cancel", known, err) < 0 || read_ref(o, "cancel", &c->ref, err) < 0)
        return -1;
    return 0;
}

/* release and released (exec2): an attempt, and for released whether it was dropped. */
static int dec_release(const json_t *o, bool answer, drv_msg_release *r, drv_error *err)
{
    static const char *const known[] = {"type", "v", "task_id", "attempt", NULL};
    static const char *const known_answer[] = {"type", "v", "task_id", "attempt", "dropped", NULL};
    const char *name = answer ? "released" : "release";
    if (drv_json_check_keys(o, name, answer ? known_answer : known, err) < 0 ||
        read_ref(o, name, &r->ref, err) < 0)
        return -1;
    if (!answer)
        return 0;
    const json_t *d = json_object_get(o, "dropped");
    if (!d || !json_is_boolean(d))
        return drv_error_set(err, "released.dropped: required, true or false");
    r->dropped = json_is_true(d);
    return 0;
}

static int dec_drain(const json_t *o, drv_msg_drain *d, drv_error *err)
{
    static const char *const known[] = {"type", "v", "reason", "keeps", NULL};
    if (drv_json_check_keys(o, "drain", known, err) < 0 ||
        dup_string(o, "drain", "reason", DRV_JSON_REQUIRED, DRV_STRING_MAX, &d->reason, err) < 0)
        return -1;
    int rc = read_refs(o, "drain", "keeps", &d->keeps, &d->keeps_count, err);
    if (rc < 0)
        return -1;
    d->has_keeps = rc > 0;
    return 0;
}

static int dec_error(const json_t *o, drv_msg_error *e, drv_error *err)
{
    static const char *const known[] = {"type", "v", "message", "field", NULL};
    if (drv_json_check_keys(o, "error", known, err) < 0 ||
        dup_string(o, "error", "message", DRV_JSON_REQUIRED | DRV_JSON_NONEMPTY, DRV_STRING_MAX,
                   &e->message, err) < 0 ||
        dup_string(o, "error", "field", 0, DRV_JSON_PATH_MAX, &e->field, err) < 0)
        return -1;
    return 0;
}

/* Reads the type and version of the frame object o. Returns the type or -1. */
static int dec_header(const json_t *o, drv_error *err)
{
    const json_t *t = json_object_get(o, "type");
    if (!t || json_is_null(t))
        return drv_error_set(err, "type: required (the message type, e.g. \"hello\")");
    if (!json_is_string(t))
        return drv_json_wrong(err, "type", "a string", t);
    int type = drv_msg_type_parse(json_string_value(t));
    if (type < 0) {
        char shown[64];
        drv_json_describe(t, shown, sizeof shown);
        return drv_error_set(err,
                             "unknown message type %s (known: hello, welcome, heartbeat, assign, "
                             "started, output, finished, cancel, drain, error, "
                             "release, released)",
                             shown);
    }
    const json_t *v = json_object_get(o, "v");
    if (!v || json_is_null(v))
        return drv_error_set(err, "v: required (the protocol version, %d)", DRV_PROTOCOL_VERSION);
    if (!json_is_integer(v))
        return drv_json_wrong(err, "v", "an integer protocol version", v);
    if (json_integer_value(v) != DRV_PROTOCOL_VERSION)
        return drv_error_set(
            err, "v: unsupported protocol version %" JSON_INTEGER_FORMAT " (this side speaks %d)",
            json_integer_value(v), DRV_PROTOCOL_VERSION);
    return type;
}

bool drv_protocol_fast_paths = true;

/* Decodes one frame; see protocol.h. */
int drv_msg_decode(const char *buf, size_t len, drv_msg *out, drv_error *err)
{
    drv_msg_init(out, DRV_MSG_NONE);
    if (!buf)
        return drv_error_set(err, "message: missing (NULL buffer)");
    if (len > DRV_MSG_MAX_BYTES)
        return drv_error_set(err, "message: %zu bytes, longer than the limit of %u bytes", len,
                             DRV_MSG_MAX_BYTES);
    if (drv_protocol_fast_paths && drv_msg_decode_fast(buf, len, out))
        return 0;
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!root)
        return drv_error_set(err, "message: not valid JSON: %s (line %d, column %d)", jerr.text,
                             jerr.line, jerr.column);
    if (!json_is_object(root)) {
        int rc = drv_json_wrong(err, "message", "a JSON object", root);
        json_decref(root);
        return rc;
    }
    int type = dec_header(root, err);
    if (type < 0) {
        json_decref(root);
        return -1;
    }
    drv_msg m;
    drv_msg_init(&m, (drv_msg_type)type);
    int rc = -1;
    switch ((drv_msg_type)type) {
    case DRV_MSG_HELLO:
        rc = dec_hello(root, &m.hello, err);
        break;
    case DRV_MSG_WELCOME:
        rc = dec_welcome(root, &m.welcome, err);
        break;
    case DRV_MSG_HEARTBEAT:
        rc = dec_heartbeat(root, &m.heartbeat, err);
        break;
    case DRV_MSG_ASSIGN:
        rc = dec_assign(root, &m.assign, err);
        break;
    case DRV_MSG_STARTED:
        rc = dec_started(root, &m.started, err);
        break;
    case DRV_MSG_OUTPUT:
        rc = dec_output(root, &m.output, err);
        break;
    case DRV_MSG_FINISHED:
        rc = dec_finished(root, &m.finished, err);
        break;
    case DRV_MSG_CANCEL:
        rc = dec_cancel(root, &m.cancel, err);
        break;
    case DRV_MSG_DRAIN:
        rc = dec_drain(root, &m.drain, err);
        break;
    case DRV_MSG_ERROR:
        rc = dec_error(root, &m.error, err);
        break;
    case DRV_MSG_RELEASE:
    case DRV_MSG_RELEASED:
        rc = dec_release(root, type == DRV_MSG_RELEASED, &m.release, err);
        break;
    default:
        break;
    }
    json_decref(root);
    if (rc < 0) {
        drv_msg_free(&m);
        return -1;
    }
    *out = m; /* the caller owns it now */
    return 0;
}

/* ---- encoding ------------------------------------------------------------------- */

static void set(json_t *o, const char *key, json_t *v)
{
    json_object_set_new_nocheck(o, key, v);
}

/* Sets key to the string s, or leaves it out when s is NULL. */
static void set_opt_str(json_t *o, const char *key, const char *s)
{
    if (s)
        set(o, key, jstr(s));
}

static void set_ref(json_t *o, const drv_attempt_ref *r)
{
    set(o, "task_id", json_integer((json_int_t)r->task_id));
    set(o, "attempt", json_integer(r->attempt));
}

static json_t *enc_refs(const drv_attempt_ref *refs, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object();
        set_ref(e, &refs[i]);
        json_array_append_new(a, e);
    }
    return a;
}

/* See protocol.h. */
json_t *drv_json_strv_value(char *const *v)
{
    json_t *a = json_array();
    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, jstr(v[i]));
    return a;
}

/* See protocol.h. */
json_t *drv_json_env_value(char *const *env)
{
    json_t *o = json_object();
    for (size_t i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        size_t kn = eq ? (size_t)(eq - env[i]) : strlen(env[i]);
        json_t *key = drv_json_text(env[i], kn);
        json_object_set_new(o, json_string_value(key), jstr(eq ? eq + 1 : ""));
        json_decref(key);
    }
    return o;
}

static void enc_hello(json_t *o, const drv_msg_hello *h)
{
    set(o, "token", jstr(h->token ? h->token : ""));
    set(o, "name", jstr(h->name ? h->name : ""));
    json_t *c = json_object();
    set(c, "cpu_cores", json_integer(h->caps.cpu_cores));
    set(c, "memory_mb", json_integer((json_int_t)h->caps.memory_mb));
    set(c, "gpu_count", json_integer(h->caps.gpu_count));
    set(c, "gpu_memory_mb", json_integer((json_int_t)h->caps.gpu_memory_mb));
    set_opt_str(c, "cuda_cc", h->caps.cuda_cc);
    set_opt_str(c, "driver_version", h->caps.driver_version);
    set(c, "tags", drv_json_strv_value(h->caps.tags));
    set_opt_str(c, "os", h->caps.os);
    set_opt_str(c, "arch", h->caps.arch);
    set(o, "capabilities", c);
    set(o, "slots", json_integer(h->slots));
    set(o, "speed", jreal(h->speed));
    set(o, "running", enc_refs(h->running, h->running_count));
    set_opt_str(o, "instance", h->instance);
}

static void enc_test(json_t *a, const drv_msg_test *t)
{
    json_t *o = json_object();
    set(o, "task_id", json_integer((json_int_t)t->task_id));
    set(o, "attempt", json_integer(t->attempt));
    set(o, "name", jstr(t->name ? t->name : ""));
    set(o, "argv", drv_json_strv_value(t->argv));
    if (t->env)
        set(o, "env", drv_json_env_value(t->env));
    set_opt_str(o, "cwd", t->cwd);
    set(o, "timeout_s", jreal(t->timeout_s));
    set(o, "output_cap_bytes", json_integer((json_int_t)t->output_cap_bytes));
    set(o, "shell", json_boolean(t->shell));
    json_array_append_new(a, o);
}

static void enc_finished(json_t *o, const drv_msg_finished *f)
{
    set_ref(o, &f->ref);
    set(o, "exit_code", f->has_exit_code ? json_integer(f->exit_code) : json_null());
    set(o, "signal", f->has_signal ? json_integer(f->signal) : json_null());
    set(o, "timed_out", json_boolean(f->timed_out));
    set(o, "infra_failure", json_boolean(f->infra_failure));
    set_opt_str(o, "error", f->error);
    set(o, "duration_s", jreal(f->duration_s));
    set(o, "peak_memory_kb", json_integer((json_int_t)f->peak_memory_kb));
    if (f->output_tail)
        set(o, "output_tail", drv_json_text(f->output_tail, f->output_tail_len));
    if (f->stderr_tail)
        set(o, "stderr_tail", drv_json_text(f->stderr_tail, f->stderr_tail_len));
}

/* Encodes m; see protocol.h. */
char *drv_msg_encode(const drv_msg *m, size_t *len, drv_error *err)
{
    char *fast = drv_protocol_fast_paths ? drv_msg_encode_fast(m, len) : NULL;
    if (fast)
        return fast;
    if ((int)m->type <= DRV_MSG_NONE || m->type >= DRV_MSG_TYPE_COUNT)
        return drv_error_set(err, "message: cannot encode message type %d", (int)m->type), NULL;
    json_t *o = json_object();
    set(o, "type", json_string(type_names[m->type]));
    set(o, "v", json_integer(DRV_PROTOCOL_VERSION));
    switch (m->type) {
    case DRV_MSG_HELLO:
        enc_hello(o, &m->hello);
        break;
    case DRV_MSG_WELCOME:
        set(o, "worker_id", json_integer((json_int_t)m->welcome.worker_id));
        set(o, "heartbeat_interval_s", jreal(m->welcome.heartbeat_interval_s));
        set(o, "server_time", jreal(m->welcome.server_time));
        if (m->welcome.epoch)
            set(o, "epoch", json_integer((json_int_t)m->welcome.epoch));
        break;
    case DRV_MSG_HEARTBEAT:
        set(o, "load", jreal(m->heartbeat.load));
        set(o, "temperature_c",
            m->heartbeat.temperature_c < 0 ? json_null() : jreal(m->heartbeat.temperature_c));
        set(o, "throttled", json_boolean(m->heartbeat.throttled));
        set(o, "overloaded", json_boolean(m->heartbeat.overloaded));
        /* Measurements: sent only when known, so older coordinators see nothing new. */
        if (m->heartbeat.cpu_pressure >= 0)
            set(o, "cpu_pressure", jreal(m->heartbeat.cpu_pressure));
        if (m->heartbeat.memory_pressure >= 0)
            set(o, "memory_pressure", jreal(m->heartbeat.memory_pressure));
        if (m->heartbeat.freq_ratio >= 0)
            set(o, "freq_ratio", jreal(m->heartbeat.freq_ratio));
        if (m->heartbeat.tests_cpu >= 0)
            set(o, "tests_cpu", jreal(m->heartbeat.tests_cpu));
        set(o, "running", enc_refs(m->heartbeat.running, m->heartbeat.running_count));
        set(o, "free_slots", json_integer(m->heartbeat.free_slots));
        break;
    case DRV_MSG_ASSIGN: {
        json_t *a = json_array();
        for (size_t i = 0; i < m->assign.count; i++)
            enc_test(a, &m->assign.tests[i]);
        set(o, "tests", a);
        if (m->assign.epoch || m->assign.sent_at > 0 || m->assign.lease_s > 0) {
            set(o, "epoch", json_integer((json_int_t)m->assign.epoch));
            set(o, "sent_at", jreal(m->assign.sent_at));
            set(o, "lease_s", jreal(m->assign.lease_s));
        }
        break;
    }
    case DRV_MSG_STARTED:
        set_ref(o, &m->started.ref);
        set(o, "pid", json_integer(m->started.pid));
        set(o, "t", jreal(m->started.t));
        break;
    case DRV_MSG_OUTPUT:
        set_ref(o, &m->output.ref);
        set(o, "stream", json_string(m->output.stream == DRV_STREAM_STDERR ? "stderr" : "stdout"));
        set(o, "data",
            m->output.data ? drv_json_text(m->output.data, m->output.len) : json_string(""));
        set(o, "seq", json_integer((json_int_t)m->output.seq));
        break;
    case DRV_MSG_FINISHED:
        enc_finished(o, &m->finished);
        break;
    case DRV_MSG_CANCEL:
        set_ref(o, &m->cancel.ref);
        break;
    case DRV_MSG_RELEASE:
        set_ref(o, &m->release.ref);
        break;
    case DRV_MSG_RELEASED:
        set_ref(o, &m->release.ref);
        set(o, "dropped", json_boolean(m->release.dropped));
        break;
    case DRV_MSG_DRAIN:
        set(o, "reason", jstr(m->drain.reason ? m->drain.reason : ""));
        if (m->drain.has_keeps)
            set(o, "keeps", enc_refs(m->drain.keeps, m->drain.keeps_count));
        break;
    case DRV_MSG_ERROR:
        set(o, "message", jstr(m->error.message ? m->error.message : "error"));
        set_opt_str(o, "field", m->error.field);
        break;
    default:
        break;
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s) {
        fprintf(stderr, "drover: out of memory encoding a %s message\n", type_names[m->type]);
        abort();
    }
    if (len)
        *len = strlen(s);
    return s;
}
