/* test_protocol.c - the worker channel messages and the test JSON of submissions: what
 * round-trips, and what a sender of a bad frame or a bad submission is told. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/analyzer.h"
#include "protocol/protocol.h"

/* Asserts that haystack contains needle, printing both when it does not. */
static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle)) {
        print_error("expected \"%s\" in \"%s\"\n", needle, haystack);
        fail();
    }
}

static char **strv(const char *a, const char *b, const char *c)
{
    const char *in[] = {a, b, c};
    char **v = calloc(4, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < 3; i++)
        if (in[i])
            v[n++] = drv_xstrdup(in[i]);
    return v;
}

/* Encodes m, decodes the text, encodes again: the two texts must be equal and the
 * decoded message of m's type. Returns the decoded message in *back. */
static void round_trip(const drv_msg *m, drv_msg *back)
{
    drv_error err = {{0}};
    size_t len = 0;
    char *text = drv_msg_encode(m, &len, &err);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    if (drv_msg_decode(text, len, back, &err) != 0) {
        print_error("decode of %s failed: %s\n", text, err.msg);
        fail();
    }
    assert_int_equal(back->type, m->type);
    char *again = drv_msg_encode(back, NULL, &err);
    assert_string_equal(text, again);
    free(text);
    free(again);
}

/* ---- messages: round trips --------------------------------------------------------- */

static void test_round_trip_hello(void **state)
{
    (void)state;
    drv_msg m, b;
    drv_msg_init(&m, DRV_MSG_HELLO);
    m.hello.token = drv_xstrdup("s3cret");
    m.hello.name = drv_xstrdup("gpu-box-1");
    m.hello.caps.cpu_cores = 16;
    m.hello.caps.memory_mb = 65536;
    m.hello.caps.gpu_count = 2;
    m.hello.caps.gpu_memory_mb = 24576;
    m.hello.caps.cuda_cc = drv_xstrdup("8.6");
    m.hello.caps.driver_version = drv_xstrdup("535.104.05");
    m.hello.caps.tags = strv("cuda", "chromium", "zone-a");
    m.hello.caps.os = drv_xstrdup("linux");
    m.hello.caps.arch = drv_xstrdup("x86_64");
    m.hello.slots = 4;
    m.hello.speed = 1.5;
    m.hello.running = calloc(2, sizeof *m.hello.running);
    m.hello.running[0] = (drv_attempt_ref){7, 1};
    m.hello.running[1] = (drv_attempt_ref){9, 3};
    m.hello.running_count = 2;
    m.hello.instance = drv_xstrdup("9f2c4e01b7a35d68");
    round_trip(&m, &b);
    assert_string_equal(b.hello.instance, "9f2c4e01b7a35d68");
    assert_string_equal(b.hello.token, "s3cret");
    assert_string_equal(b.hello.caps.driver_version, "535.104.05");
    assert_string_equal(b.hello.caps.tags[2], "zone-a");
    assert_int_equal(b.hello.caps.gpu_memory_mb, 24576);
    assert_int_equal(b.hello.running_count, 2);
    assert_int_equal(b.hello.running[1].task_id, 9);
    assert_int_equal(b.hello.running[1].attempt, 3);
    assert_true(b.hello.speed == 1.5);

    drv_tag_table *tags = drv_tag_table_new();
    drv_capabilities caps;
    drv_error err;
    assert_int_equal(drv_msg_caps_to_capabilities(&b.hello.caps, tags, &caps, &err), 0);
    assert_int_equal(caps.cuda_cc, 86);
    assert_int_equal(caps.driver_version, 535104005);
    assert_true(drv_tagset_has(&caps.tags, DRV_TAG_CUDA));
    assert_true(drv_tagset_has(&caps.tags, drv_tag_lookup(tags, "zone-a")));
    assert_int_equal(drv_tagset_count(&caps.tags), 3);
    drv_tag_table_free(tags);
    drv_msg_free(&m);
    drv_msg_free(&b);
    assert_int_equal(b.type, DRV_MSG_NONE);
}

/* A hello's capabilities are read by the one codec (requirements_json.c): the spellings
 * of a submission (cpu, gpus, memory_gb) are taken beside protocol v1's (cpu_cores,
 * gpu_count) and give the same worker, one name per number; the encoder keeps writing
 * v1's names, which every coordinator takes (docs/protocol.md, hello). */
static void test_hello_capabilities_spellings(void **state)
{
    (void)state;
#define HELLO_CAPS(C)                                                                              \
    "{\"type\":\"hello\",\"v\":1,\"token\":\"t\",\"name\":\"w\",\"capabilities\":{" C              \
    "},\"slots\":2}"
    static const char *const same[] = {
        HELLO_CAPS("\"cpu_cores\":8,\"memory_mb\":2048,\"gpu_count\":2,\"cuda_cc\":\"8.6\""),
        HELLO_CAPS("\"cpu\":8,\"memory_mb\":2048,\"gpus\":2,\"cuda_cc\":\"8.6\""),
        HELLO_CAPS("\"cpu\":8,\"memory_gb\":2,\"gpu_count\":2,\"cuda_cc\":\"8.6\""),
        HELLO_CAPS("\"cores\":8,\"memory_mb\":2048,\"gpus\":2,\"cuda_cc\":8.6"),
    };
    char *first = NULL;
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        drv_msg m;
        drv_error err = {{0}};
        if (drv_msg_decode(same[i], strlen(same[i]), &m, &err) != 0)
            fail_msg("%s: %s", same[i], err.msg);
        assert_int_equal(m.hello.caps.cpu_cores, 8);
        assert_int_equal(m.hello.caps.gpu_count, 2);
        assert_int_equal(m.hello.caps.memory_mb, 2048);
        assert_string_equal(m.hello.caps.cuda_cc, "8.6");
        char *text = drv_msg_encode(&m, NULL, &err);
        assert_non_null(text);
        assert_non_null(strstr(text, "\"cpu_cores\":8")); /* v1's names on the wire */
        assert_non_null(strstr(text, "\"gpu_count\":2"));
        assert_null(strstr(text, "\"cpu\":"));
        if (!first)
            first = text;
        else {
            assert_string_equal(text, first);
            free(text);
        }
        drv_msg_free(&m);
    }
    free(first);
    static const struct {
        const char *frame, *want;
    } refused[] = {
        {HELLO_CAPS("\"cpu\":8,\"cpu_cores\":8,\"memory_mb\":1"),
         "hello.capabilities.cpu_cores: give cpu or cpu_cores (the same number), not both"},
        {HELLO_CAPS("\"cpu_cores\":8,\"memory_mb\":1,\"gpus\":1,\"gpu_count\":1"),
         "hello.capabilities.gpu_count: give gpus or gpu_count (the same number), not both"},
        {HELLO_CAPS("\"memory_mb\":1"), "hello.capabilities.cpu_cores: required"},
        {HELLO_CAPS("\"cpu\":0,\"memory_mb\":1"), "hello.capabilities.cpu_cores: required"},
        {HELLO_CAPS("\"cpu\":1"), "hello.capabilities.memory_mb: required"},
        {HELLO_CAPS("\"cpu\":1,\"memory_mb\":1,\"any_of\":[]"),
         "hello.capabilities.any_of: unknown field"},
        {HELLO_CAPS("\"cpu\":1,\"memory_mb\":1,\"driver_version\":\"x\""),
         "hello.capabilities.driver_version: "},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        drv_msg m;
        drv_error err = {{0}};
        if (drv_msg_decode(refused[i].frame, strlen(refused[i].frame), &m, &err) == 0)
            fail_msg("%s: decoded", refused[i].frame);
        if (!strstr(err.msg, refused[i].want))
            fail_msg("%s: got \"%s\", want \"%s\"", refused[i].frame, err.msg, refused[i].want);
    }
#undef HELLO_CAPS
}

static void test_round_trip_coordinator_messages(void **state)
{
    (void)state;
    drv_msg m, b;

    drv_msg_init(&m, DRV_MSG_WELCOME);
    m.welcome.worker_id = 42;
    m.welcome.heartbeat_interval_s = 1;
    m.welcome.server_time = 1700000000.25;
    round_trip(&m, &b);
    assert_int_equal(b.welcome.worker_id, 42);
    assert_true(b.welcome.server_time == 1700000000.25);
    drv_msg_free(&b);

    drv_msg_init(&m, DRV_MSG_CANCEL);
    m.cancel.ref = (drv_attempt_ref){123456789012345ull, 2};
    round_trip(&m, &b);
    assert_true(b.cancel.ref.task_id == 123456789012345ull);
    assert_int_equal(b.cancel.ref.attempt, 2);
    drv_msg_free(&b);

    /* The two-phase move (exec2): release, and the worker's answer. */
    drv_msg_init(&m, DRV_MSG_RELEASE);
    m.release.ref = (drv_attempt_ref){77, 3};
    round_trip(&m, &b);
    assert_true(b.release.ref.task_id == 77);
    assert_int_equal(b.release.ref.attempt, 3);
    assert_true(drv_msg_senders(DRV_MSG_RELEASE) == DRV_MSG_FROM_COORDINATOR);
    drv_msg_free(&b);
    drv_msg_init(&m, DRV_MSG_RELEASED);
    m.release.ref = (drv_attempt_ref){77, 3};
    m.release.dropped = true;
    round_trip(&m, &b);
    assert_true(b.release.dropped);
    assert_true(drv_msg_senders(DRV_MSG_RELEASED) == DRV_MSG_FROM_WORKER);
    drv_msg_free(&b);
    m.release.dropped = false;
    round_trip(&m, &b);
    assert_false(b.release.dropped);
    drv_msg_free(&b);

    drv_msg_init(&m, DRV_MSG_DRAIN);
    m.drain.reason = drv_xstrdup("coordinator shutting down");
    round_trip(&m, &b);
    assert_string_equal(b.drain.reason, "coordinator shutting down");
    assert_false(b.drain.has_keeps);
    drv_msg_free(&b);
    drv_msg_free(&m);

    drv_msg_init(&m, DRV_MSG_DRAIN);
    m.drain.reason = drv_xstrdup("worker stopping");
    m.drain.has_keeps = true;
    m.drain.keeps = drv_xcalloc(2, sizeof *m.drain.keeps);
    m.drain.keeps[0] = (drv_attempt_ref){7, 1};
    m.drain.keeps[1] = (drv_attempt_ref){9, 3};
    m.drain.keeps_count = 2;
    round_trip(&m, &b);
    assert_true(b.drain.has_keeps);
    assert_int_equal(b.drain.keeps_count, 2);
    assert_true(b.drain.keeps[1].task_id == 9 && b.drain.keeps[1].attempt == 3);
    drv_msg_free(&b);
    drv_msg_free(&m);

    drv_msg_init(&m, DRV_MSG_DRAIN); /* keeps present but empty: it keeps nothing */
    m.drain.reason = drv_xstrdup("");
    m.drain.has_keeps = true;
    m.drain.keeps = drv_xcalloc(1, sizeof *m.drain.keeps);
    round_trip(&m, &b);
    assert_true(b.drain.has_keeps);
    assert_int_equal(b.drain.keeps_count, 0);
    drv_msg_free(&b);
    drv_msg_free(&m);

    drv_msg_init(&m, DRV_MSG_ERROR);
    m.error.message = drv_xstrdup("hello.token: not accepted");
    m.error.field = drv_xstrdup("hello.token");
    round_trip(&m, &b);
    assert_string_equal(b.error.field, "hello.token");
    drv_msg_free(&b);
    drv_msg_free(&m);

    drv_msg_init(&m, DRV_MSG_ASSIGN);
    m.assign.count = 2;
    m.assign.tests = calloc(2, sizeof *m.assign.tests);
    drv_msg_test *t = &m.assign.tests[0];
    t->task_id = 5;
    t->attempt = 1;
    t->name = drv_xstrdup("tests/test_a.py::test_x");
    t->argv = strv("pytest", "-x", "tests/test_a.py::test_x");
    t->env = strv("CUDA_VISIBLE_DEVICES=0", "EMPTY=", "EQ=a=b");
    t->cwd = drv_xstrdup("/src");
    t->timeout_s = 30;
    t->output_cap_bytes = 1 << 20;
    t = &m.assign.tests[1];
    t->task_id = 6;
    t->attempt = 4;
    t->name = drv_xstrdup("shell test");
    t->argv = strv("/bin/sh", "-c", "echo hi | wc -c");
    t->shell = true;
    round_trip(&m, &b);
    assert_int_equal(b.assign.count, 2);
    assert_string_equal(b.assign.tests[0].argv[2], "tests/test_a.py::test_x");
    assert_null(b.assign.tests[0].argv[3]);
    assert_string_equal(b.assign.tests[0].env[1], "EMPTY=");
    assert_string_equal(b.assign.tests[0].env[2], "EQ=a=b");
    assert_string_equal(b.assign.tests[0].cwd, "/src");
    assert_false(b.assign.tests[0].shell);
    assert_true(b.assign.tests[1].shell);
    assert_null(b.assign.tests[1].env);
    assert_int_equal(b.assign.tests[1].attempt, 4);
    drv_msg_free(&b);
    drv_msg_free(&m);
}

static void test_round_trip_worker_messages(void **state)
{
    (void)state;
    drv_msg m, b;

    drv_msg_init(&m, DRV_MSG_HEARTBEAT);
    m.heartbeat.load = 0.75;
    m.heartbeat.temperature_c = 71.5;
    m.heartbeat.throttled = true;
    m.heartbeat.free_slots = 3;
    m.heartbeat.running = calloc(1, sizeof *m.heartbeat.running);
    m.heartbeat.running[0] = (drv_attempt_ref){11, 1};
    m.heartbeat.running_count = 1;
    round_trip(&m, &b);
    assert_true(b.heartbeat.temperature_c == 71.5);
    assert_true(b.heartbeat.throttled);
    assert_false(b.heartbeat.overloaded);
    assert_int_equal(b.heartbeat.free_slots, 3);
    assert_int_equal(b.heartbeat.running[0].task_id, 11);
    drv_msg_free(&b);
    drv_msg_free(&m);

    /* Unknown temperature travels as null and comes back unknown; unknown measurements
     * are left out. */
    drv_msg_init(&m, DRV_MSG_HEARTBEAT);
    round_trip(&m, &b);
    assert_true(b.heartbeat.temperature_c < 0);
    assert_true(b.heartbeat.cpu_pressure < 0 && b.heartbeat.memory_pressure < 0);
    assert_true(b.heartbeat.freq_ratio < 0 && b.heartbeat.tests_cpu < 0);
    drv_msg_free(&b);

    /* Measured pressures, clock and the tests' share of the CPU travel. */
    drv_msg_init(&m, DRV_MSG_HEARTBEAT);
    m.heartbeat.cpu_pressure = 0.25;
    m.heartbeat.memory_pressure = 0;
    m.heartbeat.freq_ratio = 0.875;
    m.heartbeat.tests_cpu = 0.125;
    round_trip(&m, &b);
    assert_true(b.heartbeat.cpu_pressure == 0.25 && b.heartbeat.memory_pressure == 0);
    assert_true(b.heartbeat.freq_ratio == 0.875 && b.heartbeat.tests_cpu == 0.125);
    drv_msg_free(&b);

    /* An older worker's heartbeat (no measurements) is accepted: all unknown. A pressure
     * outside 0..1 is refused, naming the field. */
    {
        drv_error err;
        const char *old = "{\"type\":\"heartbeat\",\"v\":1,\"load\":1,\"free_slots\":0}";
        assert_int_equal(drv_msg_decode(old, strlen(old), &b, &err), 0);
        assert_true(b.heartbeat.cpu_pressure < 0 && b.heartbeat.memory_pressure < 0 &&
                    b.heartbeat.freq_ratio < 0);
        drv_msg_free(&b);
        const char *bad = "{\"type\":\"heartbeat\",\"v\":1,\"load\":1,\"free_slots\":0,"
                          "\"memory_pressure\":1.5}";
        assert_int_equal(drv_msg_decode(bad, strlen(bad), &b, &err), -1);
        assert_non_null(strstr(err.msg, "memory_pressure"));
    }

    drv_msg_init(&m, DRV_MSG_STARTED);
    m.started.ref = (drv_attempt_ref){5, 2};
    m.started.pid = 4242;
    m.started.t = 1700000001.5;
    round_trip(&m, &b);
    assert_int_equal(b.started.pid, 4242);
    drv_msg_free(&b);

    drv_msg_init(&m, DRV_MSG_OUTPUT);
    m.output.ref = (drv_attempt_ref){5, 2};
    m.output.stream = DRV_STREAM_STDERR;
    m.output.data = drv_xstrdup("x");
    m.output.data[0] = '\0'; /* a NUL byte is data too */
    m.output.len = 1;
    m.output.seq = 17;
    round_trip(&m, &b);
    assert_int_equal(b.output.stream, DRV_STREAM_STDERR);
    assert_int_equal(b.output.len, 1);
    assert_int_equal(b.output.data[0], 0);
    assert_int_equal(b.output.seq, 17);
    drv_msg_free(&b);
    drv_msg_free(&m);

    drv_msg_init(&m, DRV_MSG_FINISHED);
    m.finished.ref = (drv_attempt_ref){5, 2};
    m.finished.has_signal = true;
    m.finished.signal = 9;
    m.finished.timed_out = true;
    m.finished.duration_s = 30.01;
    m.finished.peak_memory_kb = 123456;
    m.finished.output_tail = drv_xstrdup("killed\n");
    m.finished.output_tail_len = 7;
    round_trip(&m, &b);
    assert_false(b.finished.has_exit_code);
    assert_true(b.finished.has_signal);
    assert_int_equal(b.finished.signal, 9);
    assert_true(b.finished.timed_out);
    assert_int_equal(b.finished.peak_memory_kb, 123456);
    assert_string_equal(b.finished.output_tail, "killed\n");
    drv_msg_free(&b);
    drv_msg_free(&m);

    drv_msg_init(&m, DRV_MSG_FINISHED);
    m.finished.ref = (drv_attempt_ref){8, 1};
    m.finished.infra_failure = true;
    m.finished.error = drv_xstrdup("spawn pytest: No such file or directory");
    round_trip(&m, &b);
    assert_true(b.finished.infra_failure);
    assert_false(b.finished.has_exit_code || b.finished.has_signal);
    assert_string_equal(b.finished.error, "spawn pytest: No such file or directory");
    drv_msg_free(&b);
    drv_msg_free(&m);
}

/* Output bytes that are not UTF-8 arrive with each bad byte replaced by U+FFFD. */
static void test_output_invalid_utf8_replaced(void **state)
{
    (void)state;
    static const char raw[] = "ok\xff\xc3(\xe2\x82\xac end";
    drv_msg m, b;
    drv_error err;
    drv_msg_init(&m, DRV_MSG_OUTPUT);
    m.output.ref = (drv_attempt_ref){1, 1};
    m.output.data = drv_xstrdup(raw);
    m.output.len = sizeof raw - 1;
    char *text = drv_msg_encode(&m, NULL, &err);
    assert_int_equal(drv_msg_decode(text, strlen(text), &b, &err), 0);
    assert_string_equal(b.output.data, "ok\xEF\xBF\xBD\xEF\xBF\xBD(\xe2\x82\xac end");
    free(text);
    drv_msg_free(&b);
    drv_msg_free(&m);
}

/* Every result names its attempt, so a late one can be told apart. */
static void test_attempt_of_results(void **state)
{
    (void)state;
    static const char *const frames[] = {
        "{\"type\":\"finished\",\"v\":1,\"task_id\":3,\"attempt\":2,\"exit_code\":0,"
        "\"duration_s\":1}",
        "{\"type\":\"started\",\"v\":1,\"task_id\":3,\"attempt\":2,\"pid\":10,\"t\":5}",
        "{\"type\":\"output\",\"v\":1,\"task_id\":3,\"attempt\":2,\"stream\":\"stdout\","
        "\"data\":\"hi\",\"seq\":0}",
    };
    for (size_t i = 0; i < sizeof frames / sizeof *frames; i++) {
        drv_msg m;
        drv_error err;
        drv_attempt_ref ref = {0, 0};
        assert_int_equal(drv_msg_decode(frames[i], strlen(frames[i]), &m, &err), 0);
        assert_true(drv_msg_attempt(&m, &ref));
        assert_int_equal(ref.task_id, 3);
        assert_int_equal(ref.attempt, 2);
        assert_true(drv_msg_senders(m.type) == DRV_MSG_FROM_WORKER);
        drv_msg_free(&m);
    }
    drv_msg hb;
    drv_msg_init(&hb, DRV_MSG_HEARTBEAT);
    drv_attempt_ref ref;
    assert_false(drv_msg_attempt(&hb, &ref));
    assert_true(drv_msg_senders(DRV_MSG_ASSIGN) == DRV_MSG_FROM_COORDINATOR);
}

/* ---- messages: bad frames ------------------------------------------------------------ */

typedef struct bad_frame {
    const char *json;
    const char *expect;
} bad_frame;

#define FIN     "{\"type\":\"finished\",\"v\":1,\"task_id\":1,\"attempt\":1,"
#define TEST_OK "{\"task_id\":1,\"attempt\":1,\"name\":\"a\",\"argv\":[\"true\"]}"

static const bad_frame bad_frames[] = {
    {"hello there", "message: not valid JSON"},
    {"", "message: not valid JSON"},
    {"[1,2]", "message: must be a JSON object, got array"},
    {"{\"v\":1}", "type: required"},
    {"{\"type\":7,\"v\":1}", "type: must be a string, got 7"},
    {"{\"type\":\"hellp\",\"v\":1}", "unknown message type \"hellp\""},
    {"{\"type\":\"none\",\"v\":1}", "unknown message type \"none\""},
    {"{\"type\":\"cancel\",\"task_id\":1,\"attempt\":1}", "v: required"},
    {"{\"type\":\"cancel\",\"v\":2,\"task_id\":1,\"attempt\":1}",
     "v: unsupported protocol version 2"},
    {"{\"type\":\"cancel\",\"v\":\"1\",\"task_id\":1,\"attempt\":1}", "v: must be an integer"},
    {"{\"type\":\"cancel\",\"v\":1,\"v\":1,\"task_id\":1,\"attempt\":1}", "duplicate object key"},
    {"{\"type\":\"cancel\",\"v\":1,\"task_id\":1.5,\"attempt\":1}",
     "cancel.task_id: must be an integer 0..9223372036854775807, got 1.5"},
    {"{\"type\":\"cancel\",\"v\":1,\"task_id\":\"7\",\"attempt\":1}",
     "cancel.task_id: must be an integer 0..9223372036854775807, got \"7\""},
    {"{\"type\":\"cancel\",\"v\":1,\"task_id\":-1,\"attempt\":1}", "cancel.task_id: must be"},
    {"{\"type\":\"cancel\",\"v\":1,\"task_id\":1,\"attempt\":0}",
     "cancel.attempt: must be an integer 1..4294967295, got 0"},
    {"{\"type\":\"cancel\",\"v\":1,\"task_id\":1}", "cancel.attempt: required"},
    {"{\"type\":\"released\",\"v\":1,\"task_id\":1,\"attempt\":1}",
     "released.dropped: required, true or false"},
    {"{\"type\":\"released\",\"v\":1,\"task_id\":1,\"attempt\":1,\"dropped\":1}",
     "released.dropped: required, true or false"},
    {"{\"type\":\"release\",\"v\":1,\"task_id\":1,\"attempt\":1,\"dropped\":true}",
     "release.dropped: unknown field (known: task_id, attempt)"},
    {"{\"type\":\"cancel\",\"v\":1,\"task_id\":1,\"attempt\":1,\"force\":true}",
     "cancel.force: unknown field (known: task_id, attempt)"},
    {"{\"type\":\"assign\",\"v\":1,\"tests\":[" TEST_OK "," TEST_OK
     ",{\"task_id\":3,\"attempt\":1,\"name\":\"c\",\"argv\":5}]}",
     "assign.tests[2].argv: must be an array of strings, got 5"},
    {"{\"type\":\"assign\",\"v\":1,\"tests\":[{\"task_id\":3,\"attempt\":1,\"name\":\"c\","
     "\"argv\":[\"ls\",3]}]}",
     "assign.tests[0].argv[1]: must be a string, got 3"},
    {"{\"type\":\"assign\",\"v\":1,\"tests\":[{\"task_id\":3,\"attempt\":1,\"name\":\"c\","
     "\"argv\":[]}]}",
     "assign.tests[0].argv: must not be empty"},
    {"{\"type\":\"assign\",\"v\":1,\"tests\":[{\"task_id\":3,\"attempt\":1,\"name\":\"c\","
     "\"argv\":[\"a\\u0000b\"]}]}",
     "assign.tests[0].argv[0]: must not contain NUL bytes"},
    {"{\"type\":\"assign\",\"v\":1,\"tests\":[{\"task_id\":3,\"attempt\":1,\"name\":\"c\","
     "\"argv\":[\"echo hi\"],\"shell\":true}]}",
     "assign.tests[0].shell: true needs argv [\"/bin/sh\", \"-c\", COMMAND]"},
    {"{\"type\":\"assign\",\"v\":1,\"tests\":[{\"task_id\":3,\"attempt\":1,\"name\":\"c\","
     "\"argv\":[\"x\"],\"env\":{\"A=B\":\"c\"}}]}",
     "assign.tests[0].env.A=B: variable name must be non-empty and without '='"},
    {"{\"type\":\"assign\",\"v\":1,\"tests\":[]}", "assign.tests: must not be empty"},
    {"{\"type\":\"assign\",\"v\":1}", "assign.tests: required"},
    {FIN "\"exit_code\":0,\"duration_s\":-1}",
     "finished.duration_s: must be a number 0..1e+09, got -1"},
    {FIN "\"exit_code\":0}", "finished.duration_s: required"},
    {FIN "\"exit_code\":0,\"signal\":9,\"duration_s\":1}",
     "exactly one of exit_code and signal (got both)"},
    {FIN "\"duration_s\":1}", "exactly one of exit_code and signal (got neither)"},
    {FIN "\"exit_code\":256,\"duration_s\":1}", "finished.exit_code: must be an integer 0..255"},
    {FIN "\"infra_failure\":true,\"duration_s\":0}",
     "finished.error: required when infra_failure is true"},
    {FIN "\"exit_code\":0,\"duration_s\":1,\"timed_out\":1}",
     "finished.timed_out: must be true or false, got 1"},
    {"{\"type\":\"output\",\"v\":1,\"task_id\":1,\"attempt\":1,\"stream\":\"stdin\","
     "\"data\":\"\",\"seq\":0}",
     "output.stream: must be \"stdout\" or \"stderr\", got \"stdin\""},
    {"{\"type\":\"hello\",\"v\":1,\"token\":\"\",\"name\":\"w\",\"capabilities\":{"
     "\"cpu_cores\":1,\"memory_mb\":1},\"slots\":1}",
     "hello.token: must not be empty"},
    {"{\"type\":\"hello\",\"v\":1,\"token\":\"t\",\"name\":\"w\",\"slots\":1}",
     "hello.capabilities: required"},
    {"{\"type\":\"hello\",\"v\":1,\"token\":\"t\",\"name\":\"w\",\"capabilities\":{"
     "\"cpu_cores\":1,\"memory_mb\":1,\"cuda_cc\":\"eight\"},\"slots\":1}",
     "hello.capabilities.cuda_cc: "},
    {"{\"type\":\"hello\",\"v\":1,\"token\":\"t\",\"name\":\"w\",\"capabilities\":{"
     "\"cpu_cores\":1,\"memory_mb\":1,\"tags\":[\"cuda\",\"Zone A\"]},\"slots\":1}",
     "hello.capabilities.tags[1]: tag \"Zone A\""},
    {"{\"type\":\"hello\",\"v\":1,\"token\":\"t\",\"name\":\"w\",\"capabilities\":{"
     "\"cpu_cores\":1,\"memory_mb\":1},\"slots\":1,\"running\":[{\"task_id\":1}]}",
     "hello.running[0].attempt: required"},
    {"{\"type\":\"hello\",\"v\":1,\"token\":\"t\",\"name\":\"w\",\"capabilities\":{"
     "\"cpu_cores\":1,\"memory_mb\":1},\"slots\":1,\"instance\":\"\"}",
     "hello.instance: must not be empty"},
    {"{\"type\":\"heartbeat\",\"v\":1,\"load\":-0.5,\"free_slots\":0}",
     "heartbeat.load: must be a number 0..1e+06, got -0.5"},
    {"{\"type\":\"drain\",\"v\":1}", "drain.reason: required"},
    {"{\"type\":\"drain\",\"v\":1,\"reason\":\"\",\"keeps\":[{\"task_id\":1,\"attempt\":0}]}",
     "drain.keeps[0].attempt"},
    {"{\"type\":\"error\",\"v\":1,\"message\":\"\"}", "error.message: must not be empty"},
};

/* The assign and finished frames are written without jansson (message.c says why):
 * their text must be exactly what json_dumps(JSON_COMPACT) writes for the same JSON,
 * strings with every kind of escape and invalid UTF-8 included; a finished decodes back. */
static void test_fast_encoding_is_jansson_text(void **state)
{
    (void)state;
    char *argv1[] = {"py\"test\\",
                     "tab\there\nnl\r\b\f\x01\x1f\x7f",
                     "caf\xc3\xa9 \xe2\x82\xac",
                     "bad \xff\xc3 utf8 \xed\xa0\x80",
                     "",
                     NULL};
    char *env1[] = {"A=1", "PATH=/usr/bin:/bin", "EMPTY=", "NOEQ", "Q=\"x\"", NULL};
    char *argv2[] = {"true", NULL};
    drv_msg_test tests[3] = {
        {.task_id = 1,
         .attempt = 1,
         .name = "t/\"1\"",
         .argv = argv1,
         .env = env1,
         .cwd = "/tmp/d\\x",
         .timeout_s = 1e-6,
         .output_cap_bytes = 65536,
         .shell = false},
        {.task_id = INT64_MAX,
         .attempt = UINT32_MAX,
         .name = "t2",
         .argv = argv2,
         .timeout_s = 30.25},
        {.task_id = 3, .attempt = 2, .name = NULL, .argv = argv2, .timeout_s = 1e300},
    };
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_ASSIGN);
    m.assign.tests = tests;
    m.assign.count = 3;
    drv_msg fin[3];
    for (int i = 0; i < 3; i++)
        drv_msg_init(&fin[i], DRV_MSG_FINISHED);
    fin[0].finished = (drv_msg_finished){.ref = {7, 3}, .has_exit_code = true, .duration_s = 1e-6};
    fin[1].finished = (drv_msg_finished){.ref = {8, 1},
                                         .has_signal = true,
                                         .signal = 9,
                                         .timed_out = true,
                                         .duration_s = 12345678.5,
                                         .peak_memory_kb = 42,
                                         .output_tail = "out\n\x00zero \xff",
                                         .output_tail_len = 11};
    fin[2].finished = (drv_msg_finished){.ref = {9, 1},
                                         .infra_failure = true,
                                         .error = "spawn \"x\": no such file",
                                         .duration_s = 0};
    const drv_msg *all[] = {&m, &fin[0], &fin[1], &fin[2]};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        size_t len = 0;
        drv_error err = {{0}};
        char *text = drv_msg_encode(all[i], &len, &err);
        assert_non_null(text);
        assert_int_equal(len, strlen(text));
        json_error_t jerr;
        json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        if (!j)
            fail_msg("not JSON (%s): %s", jerr.text, text);
        char *again = json_dumps(j, JSON_COMPACT);
        assert_string_equal(text, again);
        drv_msg back; /* the assign holds values a worker refuses (empty name, argv "") */
        if (all[i]->type == DRV_MSG_FINISHED) {
            if (drv_msg_decode(text, len, &back, &err) != 0)
                fail_msg("%s: %s", text, err.msg);
            assert_int_equal(back.type, DRV_MSG_FINISHED);
            drv_msg_free(&back);
        }
        free(again);
        json_decref(j);
        free(text);
    }
    /* The store's JSON arrays of strings: jansson's text, and invalid UTF-8 refused. */
    char *vecs[][4] = {
        {NULL}, {"true", NULL}, {"a\"b\\", "\x01\n\x7f", "\xc3\xa9\xe2\x82\xac", NULL}};
    for (size_t i = 0; i < 3; i++) {
        json_t *a = json_array();
        for (size_t k = 0; vecs[i][k]; k++)
            json_array_append_new(a, json_string(vecs[i][k]));
        char *want = json_dumps(a, JSON_COMPACT), *got = drv_json_strv_dump(vecs[i], NULL);
        assert_non_null(got);
        assert_string_equal(got, want);
        free(want);
        free(got);
        json_decref(a);
    }
    char *invalid[] = {"ok", "\xed\xa0\x80", NULL};
    size_t bad = 99;
    assert_null(drv_json_strv_dump(invalid, &bad));
    assert_int_equal(bad, 1);
    /* One spot check of the exact text, reals and escapes included. */
    char *text = drv_msg_encode(&fin[0], NULL, NULL);
    assert_string_equal(text, "{\"type\":\"finished\",\"v\":1,\"task_id\":7,\"attempt\":3,"
                              "\"exit_code\":0,\"signal\":null,\"timed_out\":false,"
                              "\"infra_failure\":false,\"duration_s\":9.9999999999999995e-7,"
                              "\"peak_memory_kb\":0}");
    free(text);
}

/* Compares two decoded tests field by field. */
static void assert_same_test(const drv_msg_test *x, const drv_msg_test *y)
{
    assert_true(x->task_id == y->task_id && x->attempt == y->attempt);
    assert_string_equal(x->name, y->name);
    for (size_t k = 0; x->argv[k] || y->argv[k]; k++) {
        assert_non_null(x->argv[k]);
        assert_non_null(y->argv[k]);
        assert_string_equal(x->argv[k], y->argv[k]);
    }
    assert_true((x->env == NULL) == (y->env == NULL));
    for (size_t k = 0; x->env && (x->env[k] || y->env[k]); k++) {
        assert_non_null(x->env[k]);
        assert_non_null(y->env[k]);
        assert_string_equal(x->env[k], y->env[k]);
    }
    assert_true((x->cwd == NULL) == (y->cwd == NULL));
    if (x->cwd)
        assert_string_equal(x->cwd, y->cwd);
    assert_true(x->timeout_s == y->timeout_s);
    assert_true(x->output_cap_bytes == y->output_cap_bytes);
    assert_int_equal(x->shell, y->shell);
}

/* A worker decodes the coordinator's assign frames on a fast path (message.c); the
 * same frame with its "type" key escaped goes through jansson. Both must give the same
 * tests, and frames the fast path does not take must still decode or fail the general
 * way, with its words. */
static void test_assign_fast_path_agrees(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"task_id\":1,\"attempt\":1,\"name\":\"r2-t1\",\"argv\":[\"true\"],\"timeout_s\":0,"
        "\"output_cap_bytes\":0,\"shell\":false}]}",
        "{\"task_id\":9223372036854775807,\"attempt\":4294967295,\"name\":\"a b\","
        "\"argv\":[\"/bin/sh\",\"-c\",\"echo hi\"],\"env\":{\"A\":\"1\",\"EMPTY\":\"\"},"
        "\"cwd\":\"/tmp\",\"timeout_s\":2.5,\"output_cap_bytes\":65536,\"shell\":true},"
        " { \"name\" : \"x\" , \"attempt\" : 2 , \"task_id\" : 3 , \"argv\" : [ \"p\" , \"\" ] ,"
        " \"env\" : null , \"cwd\" : null , \"timeout_s\" : null , \"shell\" : null } ] }\n",
        "{\"task_id\":5,\"attempt\":1,\"name\":\"n\",\"argv\":[\"p\"],\"env\":{},"
        "\"timeout_s\":1e3}]}",
        /* Not plain: an escape and non-ASCII, taken by jansson alike. */
        "{\"task_id\":6,\"attempt\":1,\"name\":\"caf\xc3\xa9\",\"argv\":[\"a\\tb\"]}]}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char fast[1024], slow[1024];
        snprintf(fast, sizeof fast, "{\"type\":\"assign\",\"v\":1,\"tests\":[%s", bodies[i]);
        snprintf(slow, sizeof slow, "{\"typ\\u0065\":\"assign\",\"v\":1,\"tests\":[%s", bodies[i]);
        drv_msg a, b;
        drv_error err = {{0}};
        if (drv_msg_decode(fast, strlen(fast), &a, &err) != 0)
            fail_msg("%s: %s", fast, err.msg);
        if (drv_msg_decode(slow, strlen(slow), &b, &err) != 0)
            fail_msg("%s: %s", slow, err.msg);
        assert_int_equal(a.type, DRV_MSG_ASSIGN);
        assert_int_equal(a.assign.count, b.assign.count);
        for (size_t k = 0; k < a.assign.count; k++)
            assert_same_test(&a.assign.tests[k], &b.assign.tests[k]);
        drv_msg_free(&a);
        drv_msg_free(&b);
    }
    static const struct {
        const char *tests, *want;
    } bad[] = {
        {"{\"task_id\":1,\"task_id\":2,\"attempt\":1,\"name\":\"n\",\"argv\":[\"p\"]}",
         "duplicate object key"},
        {"{\"task_id\":1,\"attempt\":1,\"name\":\"n\",\"argv\":[\"p\"],\"extra\":1}", "extra"},
        {"{\"task_id\":1,\"attempt\":1,\"name\":\"n\",\"argv\":[]}",
         "assign.tests[0].argv: must not be empty"},
        {"{\"task_id\":1,\"attempt\":1,\"name\":\"n\",\"argv\":[\"\"]}",
         "assign.tests[0].argv[0]: the program must not be empty"},
        {"{\"task_id\":1,\"attempt\":1,\"name\":\"\",\"argv\":[\"p\"]}",
         "assign.tests[0].name: must not be empty"},
        {"{\"task_id\":1,\"attempt\":0,\"name\":\"n\",\"argv\":[\"p\"]}",
         "assign.tests[0].attempt: must be an integer 1..4294967295, got 0"},
        {"{\"task_id\":1,\"attempt\":1,\"name\":\"n\",\"argv\":[\"p\"],\"shell\":true}",
         "assign.tests[0].shell: true needs argv"},
        {"{\"task_id\":1,\"attempt\":1,\"name\":\"n\",\"argv\":[\"/bin/sh\",\"-c\",\"x\"]}",
         "argv runs a shell command, so shell must be true"},
        {"{\"task_id\":1,\"attempt\":1,\"name\":\"n\",\"argv\":[\"p\"],\"env\":{\"A=B\":\"1\"}}",
         "variable name must be non-empty and without '='"},
        {"{\"task_id\":1,\"attempt\":1,\"name\":\"n\",\"argv\":[\"p\"],"
         "\"env\":{\"A\":\"1\",\"A\":\"2\"}}",
         "duplicate object key"},
        {"{\"task_id\":1,\"attempt\":1,\"name\":\"n\",\"argv\":[\"p\"],\"timeout_s\":-1}",
         "assign.tests[0].timeout_s: must be a number 0..1e+09, got -1"},
        {"{\"task_id\":1,\"attempt\":1,\"name\":\"n\",\"argv\":[\"p\"]},", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char frame[512];
        snprintf(frame, sizeof frame, "{\"type\":\"assign\",\"v\":1,\"tests\":[%s]}", bad[i].tests);
        drv_msg m;
        drv_error err = {{0}};
        if (drv_msg_decode(frame, strlen(frame), &m, &err) == 0)
            fail_msg("accepted: %s", frame);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("%s: got \"%s\", want \"%s\"", frame, err.msg, bad[i].want);
        assert_int_equal(m.type, DRV_MSG_NONE);
    }
}

/* A plain "finished" frame takes the coordinator's fast path (flat_json.h); the same
 * frame with its "type" key written with an escape takes jansson's. Both must decode
 * to the same message, and whatever the fast path does not accept must still decode
 * (or fail) the general way. */
static void test_finished_fast_path_agrees(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "\"task_id\":1,\"attempt\":1,\"exit_code\":0,\"duration_s\":1e-06}",
        " \"task_id\" : 9223372036854775807 , \"attempt\" : 4294967295 , \"exit_code\" : 255 ,"
        " \"signal\" : null, \"timed_out\" : false, \"duration_s\" : 0 }\n",
        "\"task_id\":7,\"attempt\":2,\"signal\":9,\"timed_out\":true,\"duration_s\":30.25,"
        "\"peak_memory_kb\":123456,\"output_tail\":\"killed at the timeout\"}",
        "\"task_id\":8,\"attempt\":1,\"infra_failure\":true,\"error\":\"spawn: no such file\","
        "\"duration_s\":-0.0,\"exit_code\":null}",
        "\"task_id\":3,\"attempt\":1,\"exit_code\":1,\"duration_s\":1000000000,"
        "\"output_tail\":\"\",\"error\":\"x\"}",
        /* Not flat-plain: escapes, non-ASCII; still fine through jansson. */
        "\"task_id\":4,\"attempt\":1,\"exit_code\":1,\"duration_s\":2.5E1,"
        "\"output_tail\":\"line\\nnext \\u00e9 \xc3\xa9\"}",
        /* stderr kept apart (optional: older workers send no stderr_tail) */
        "\"task_id\":5,\"attempt\":1,\"exit_code\":1,\"duration_s\":1,"
        "\"output_tail\":\"out\\nerr\\n\",\"stderr_tail\":\"err\\n\"}",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char fast[512], slow[512];
        snprintf(fast, sizeof fast, "{\"type\":\"finished\",\"v\":1,%s", bodies[i]);
        snprintf(slow, sizeof slow, "{\"typ\\u0065\":\"finished\",\"v\":1,%s", bodies[i]);
        drv_msg a, b;
        drv_error err = {{0}};
        if (drv_msg_decode(fast, strlen(fast), &a, &err) != 0)
            fail_msg("%s: %s", fast, err.msg);
        if (drv_msg_decode(slow, strlen(slow), &b, &err) != 0)
            fail_msg("%s: %s", slow, err.msg);
        assert_int_equal(a.type, DRV_MSG_FINISHED);
        assert_int_equal(b.type, DRV_MSG_FINISHED);
        const drv_msg_finished *x = &a.finished, *y = &b.finished;
        assert_true(x->ref.task_id == y->ref.task_id && x->ref.attempt == y->ref.attempt);
        assert_int_equal(x->has_exit_code, y->has_exit_code);
        assert_int_equal(x->exit_code, y->exit_code);
        assert_int_equal(x->has_signal, y->has_signal);
        assert_int_equal(x->signal, y->signal);
        assert_int_equal(x->timed_out, y->timed_out);
        assert_int_equal(x->infra_failure, y->infra_failure);
        assert_true(x->duration_s == y->duration_s);
        assert_true(x->peak_memory_kb == y->peak_memory_kb);
        assert_true((x->error == NULL) == (y->error == NULL));
        if (x->error)
            assert_string_equal(x->error, y->error);
        assert_true((x->output_tail == NULL) == (y->output_tail == NULL));
        assert_int_equal(x->output_tail_len, y->output_tail_len);
        if (x->output_tail)
            assert_memory_equal(x->output_tail, y->output_tail, x->output_tail_len);
        assert_int_equal(x->stderr_tail_len, y->stderr_tail_len);
        if (x->ref.task_id == 5) {
            assert_int_equal(x->stderr_tail_len, 4);
            assert_memory_equal(x->stderr_tail, "err\n", 4);
            size_t len = 0;
            char *text = drv_msg_encode(&a, &len, &err); /* and back, by the fast encoder */
            assert_non_null(strstr(text, "\"stderr_tail\":\"err\\n\""));
            free(text);
        }
        drv_msg_free(&a);
        drv_msg_free(&b);
    }
    /* Shapes the fast path must leave to jansson, which refuses them with its words. */
    static const struct {
        const char *frame, *want;
    } bad[] = {
        {"{\"type\":\"finished\",\"v\":1,\"task_id\":1,\"task_id\":2,\"attempt\":1,"
         "\"exit_code\":0,\"duration_s\":1}",
         "duplicate object key"},
        {"{\"type\":\"finished\",\"v\":1.0,\"task_id\":1,\"attempt\":1,\"exit_code\":0,"
         "\"duration_s\":1}",
         "v: must be an integer protocol version"},
        {"{\"type\":\"finished\",\"v\":1,\"task_id\":01,\"attempt\":1,\"exit_code\":0,"
         "\"duration_s\":1}",
         "not valid JSON"},
        {"{\"type\":\"finished\",\"v\":1,\"task_id\":1,\"attempt\":1,\"exit_code\":0,"
         "\"duration_s\":1} x",
         "not valid JSON"},
        {"{\"type\":\"finished\",\"v\":1,\"task_id\":1,\"attempt\":1,\"exit_code\":0,"
         "\"duration_s\":1e999}",
         "not valid JSON"},
        {"{\"type\":\"finished\",\"v\":1,\"task_id\":99999999999999999999,\"attempt\":1,"
         "\"exit_code\":0,\"duration_s\":1}",
         "not valid JSON"},
        {"{\"type\":\"finished\",\"v\":1,\"task_id\":1,\"attempt\":0,\"exit_code\":0,"
         "\"duration_s\":1}",
         "finished.attempt: must be an integer 1..4294967295, got 0"},
        {"{\"type\":\"finished\",\"v\":1,\"task_id\":1,\"attempt\":1,\"exit_code\":0,"
         "\"signal\":9,\"duration_s\":1}",
         "give exactly one of exit_code and signal (got both)"},
        {"{\"type\":\"finished\",\"v\":1,\"task_id\":1,\"attempt\":1,\"exit_code\":0,"
         "\"duration_s\":1,\"extra\":1}",
         "extra"},
        {"{\"type\":\"finished\",\"v\":1,\"task_id\":1,\"attempt\":1,\"exit_code\":0,"
         "\"duration_s\":+1}",
         "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        drv_msg m;
        drv_error err = {{0}};
        if (drv_msg_decode(bad[i].frame, strlen(bad[i].frame), &m, &err) == 0)
            fail_msg("accepted: %s", bad[i].frame);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].frame, err.msg, bad[i].want);
        assert_int_equal(m.type, DRV_MSG_NONE);
    }
}

static void test_bad_frames(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_frames / sizeof *bad_frames; i++) {
        drv_msg m;
        drv_error err = {{0}};
        const char *json = bad_frames[i].json;
        if (drv_msg_decode(json, strlen(json), &m, &err) != -1) {
            print_error("accepted: %s\n", json);
            fail();
        }
        assert_int_equal(m.type, DRV_MSG_NONE);
        assert_contains(err.msg, bad_frames[i].expect);
    }
}

static void test_frame_over_limit(void **state)
{
    (void)state;
    size_t len = DRV_MSG_MAX_BYTES + 1;
    char *buf = malloc(len);
    memset(buf, ' ', len);
    memcpy(buf, "{\"type\":\"drain\",\"v\":1,\"reason\":\"x\"}", 35);
    drv_msg m;
    drv_error err;
    assert_int_equal(drv_msg_decode(buf, len, &m, &err), -1);
    assert_contains(err.msg, "longer than the limit of 8388608 bytes");
    /* The same frame within the limit is fine: only the size was wrong. */
    assert_int_equal(drv_msg_decode(buf, len - 1, &m, &err), 0);
    assert_string_equal(m.drain.reason, "x");
    drv_msg_free(&m);
    free(buf);
}

static void test_assign_over_limit(void **state)
{
    (void)state;
    size_t n = DRV_ASSIGN_MAX_TESTS + 1, cap = 64 + n * (sizeof TEST_OK + 1);
    char *buf = malloc(cap);
    size_t len = (size_t)snprintf(buf, cap, "{\"type\":\"assign\",\"v\":1,\"tests\":[");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s" TEST_OK, i ? "," : "");
    len += (size_t)snprintf(buf + len, cap - len, "]}");
    drv_msg m;
    drv_error err;
    assert_int_equal(drv_msg_decode(buf, len, &m, &err), -1);
    assert_contains(err.msg, "assign.tests: 1025 tests, more than the limit of 1024");
    free(buf);
}

/* ---- task JSON ----------------------------------------------------------------------- */

static const char full_task[] =
    "{\"name\":\"tests/test_bert.py::test_fp16\",\"argv\":[\"pytest\",\"-x\",\"t.py\"],"
    "\"env\":{\"HF_HOME\":\"/cache\",\"SEED\":\"1\"},\"cwd\":\"/src\","
    "\"requirements\":{\"cpu\":4,\"memory_gb\":1.5,\"gpus\":1,\"gpu_memory_gb\":24,"
    "\"cuda_cc\":\"8.6\",\"driver_version\":\"535.104.05\",\"tags\":[\"zone-a\"],"
    "\"any_of\":[\"cuda\",\"rocm\"],\"none_of\":[\"flaky-host\"],\"browser\":\"chromium\","
    "\"backend\":\"webgpu\"},"
    "\"priority\":700,\"timeout_s\":120.5,\"max_retries\":2,\"retry_on_failure\":true,"
    "\"model_id\":\"google/vit-base-patch16-224\",\"test_type\":\"integration\","
    "\"batch_size\":8,\"labels\":[\"nightly\",\"gpu\"]}";

static void assert_tasks_equal(const drv_task *a, const drv_task *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(drv_strv_len(a->argv), drv_strv_len(b->argv));
    for (size_t i = 0; a->argv[i]; i++)
        assert_string_equal(a->argv[i], b->argv[i]);
    assert_int_equal(drv_strv_len(a->env), drv_strv_len(b->env));
    for (size_t i = 0; a->env && a->env[i]; i++)
        assert_string_equal(a->env[i], b->env[i]);
    assert_int_equal(drv_strv_len(a->labels), drv_strv_len(b->labels));
    for (size_t i = 0; a->labels && a->labels[i]; i++)
        assert_string_equal(a->labels[i], b->labels[i]);
    if (a->cwd || b->cwd)
        assert_string_equal(a->cwd, b->cwd);
    if (a->model_id || b->model_id)
        assert_string_equal(a->model_id, b->model_id);
    if (a->test_type || b->test_type)
        assert_string_equal(a->test_type, b->test_type);
    assert_true(drv_requirements_equal(&a->req, &b->req));
    assert_int_equal(a->priority, b->priority);
    assert_true(a->timeout_s == b->timeout_s);
    assert_int_equal(a->max_retries, b->max_retries);
    assert_int_equal(a->reruns, b->reruns);
    assert_int_equal(a->family, b->family);
    assert_int_equal(a->batch_size, b->batch_size);
}

static int parse_one(const char *json, drv_task *t, drv_tag_table *tags, drv_error *err)
{
    json_t *o = json_loads(json, 0, NULL);
    assert_non_null(o);
    int rc = drv_task_from_json(o, t, tags, "", err);
    json_decref(o);
    return rc;
}

/* "idempotent" defaults to true; false survives the round trip; anything but a boolean
 * is refused, naming the field. */
static void test_task_idempotent(void **state)
{
    (void)state;
    drv_tag_table *tags = drv_tag_table_new();
    drv_task t, back;
    drv_error err = {{0}};
    assert_int_equal(parse_one("{\"name\":\"a\",\"argv\":[\"x\"]}", &t, tags, &err), 0);
    assert_false(t.not_idempotent);
    drv_task_clear(&t);
    assert_int_equal(
        parse_one("{\"name\":\"a\",\"argv\":[\"x\"],\"idempotent\":false}", &t, tags, &err), 0);
    assert_true(t.not_idempotent);
    json_t *j = drv_task_to_json(&t, tags);
    assert_true(json_is_false(json_object_get(j, "idempotent")));
    assert_int_equal(drv_task_from_json(j, &back, tags, "", &err), 0);
    assert_true(back.not_idempotent);
    json_decref(j);
    drv_task_clear(&back);
    drv_task_clear(&t);
    assert_int_equal(
        parse_one("{\"name\":\"a\",\"argv\":[\"x\"],\"idempotent\":\"no\"}", &t, tags, &err), -1);
    if (!strstr(err.msg, "idempotent"))
        fail_msg("the error does not name the field: %s", err.msg);
    drv_task_clear(&t);
    drv_tag_table_free(tags);
}

static void test_task_full_round_trip(void **state)
{
    (void)state;
    drv_tag_table *tags = drv_tag_table_new();
    drv_task t, back;
    drv_error err = {{0}};
    if (parse_one(full_task, &t, tags, &err) != 0) {
        print_error("%s\n", err.msg);
        fail();
    }
    assert_string_equal(t.argv[1], "-x");
    assert_string_equal(t.env[0], "HF_HOME=/cache");
    assert_int_equal(t.req.cpu_cores, 4);
    assert_int_equal(t.req.memory_mb, 1536);
    assert_int_equal(t.req.gpu_memory_mb, 24576);
    assert_int_equal(t.req.cuda_cc, 86);
    assert_int_equal(t.req.driver_version, 535104005);
    assert_true(drv_tagset_has(&t.req.all_of, drv_tag_lookup(tags, "zone-a")));
    assert_true(drv_tagset_has(&t.req.all_of, DRV_TAG_CHROMIUM));
    assert_true(drv_tagset_has(&t.req.all_of, DRV_TAG_WEBGPU));
    assert_true(drv_tagset_has(&t.req.any_of, DRV_TAG_ROCM));
    assert_true(drv_tagset_has(&t.req.none_of, drv_tag_lookup(tags, "flaky-host")));
    assert_int_equal(t.priority, 700);
    assert_int_equal(t.family, drv_family_lookup("vit")); /* from the model id */
    /* The old flag is an alias: reruns as many as max_retries. */
    assert_false(t.retry_on_failure);
    assert_int_equal(t.reruns, 2);

    json_t *j = drv_task_to_json(&t, tags);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    assert_int_equal(parse_one(text, &back, tags, &err), 0);
    assert_tasks_equal(&t, &back);
    drv_task_clear(&back);
    free(text);

    /* The store's form keeps id, state and attempts too. */
    t.id = 99;
    t.state = DRV_TASK_RUNNING;
    t.attempts = 2;
    j = drv_task_to_json_record(&t, tags);
    drv_task rec;
    assert_int_equal(drv_task_from_json_record(j, &rec, tags, "", &err), 0);
    assert_tasks_equal(&t, &rec);
    assert_int_equal(rec.id, 99);
    assert_int_equal(rec.state, DRV_TASK_RUNNING);
    assert_int_equal(rec.attempts, 2);
    /* A submission cannot set them. */
    assert_int_equal(drv_task_from_json(j, &back, tags, "tests[0]", &err), -1);
    assert_contains(err.msg, "tests[0].");
    assert_contains(err.msg, ": unknown field");
    json_decref(j);

    drv_task_clear(&rec);
    drv_task_clear(&t);
    drv_tag_table_free(tags);
}

/* A shell runs only when asked, and what was asked survives the round trip. */
static void test_task_shell_explicit(void **state)
{
    (void)state;
    drv_tag_table *tags = drv_tag_table_new();
    drv_task t;
    drv_error err;
    assert_int_equal(
        parse_one("{\"name\":\"a\",\"command\":\"make test | tee log\"}", &t, tags, &err), -1);
    assert_contains(err.msg, "command: a command string runs through a shell");
    assert_contains(err.msg, "\"shell\": true");
    assert_int_equal(parse_one("{\"name\":\"a\",\"argv\":[\"ls\"],\"shell\":true}", &t, tags, &err),
                     -1);
    assert_contains(err.msg, "shell: true needs \"command\"");
    assert_int_equal(
        parse_one("{\"name\":\"a\",\"argv\":[\"ls\"],\"command\":\"ls\",\"shell\":true}", &t, tags,
                  &err),
        -1);
    assert_contains(err.msg, "command: give argv or command, not both");

    assert_int_equal(
        parse_one("{\"name\":\"a\",\"command\":\"make test | tee log\",\"shell\":true}", &t, tags,
                  &err),
        0);
    assert_string_equal(t.argv[0], "/bin/sh");
    assert_string_equal(t.argv[1], "-c");
    assert_string_equal(t.argv[2], "make test | tee log");
    json_t *j = drv_task_to_json(&t, tags);
    assert_string_equal(json_string_value(json_object_get(j, "command")), "make test | tee log");
    assert_true(json_is_true(json_object_get(j, "shell")));
    assert_null(json_object_get(j, "argv"));
    json_decref(j);

    drv_msg_test mt;
    t.id = 3;
    drv_msg_test_from_task(&mt, &t, 1, 0);
    assert_true(mt.shell);
    drv_msg_test_clear(&mt);
    drv_task_clear(&t);

    /* An argv that mentions a shell word is still not run through a shell. */
    assert_int_equal(parse_one("{\"name\":\"a\",\"argv\":[\"echo\",\"a;b\"]}", &t, tags, &err), 0);
    drv_msg_test_from_task(&mt, &t, 1, 0);
    assert_false(mt.shell);
    assert_int_equal(drv_strv_len(mt.argv), 2);
    drv_msg_test_clear(&mt);
    drv_task_clear(&t);
    drv_tag_table_free(tags);
}

static void test_tasks_array_and_lines(void **state)
{
    (void)state;
    static const char array[] = "  [{\"name\":\"a\",\"argv\":[\"true\"]},\n"
                                "   {\"name\":\"b\",\"argv\":[\"false\"],\"priority\":5}]\n";
    static const char lines[] = "{\"name\":\"a\",\"argv\":[\"true\"]}\n"
                                "\n"
                                "   \r\n"
                                "{\"name\":\"b\",\"argv\":[\"false\"],\"priority\":5}\r\n";
    static const char pretty_one[] = "{\n  \"name\": \"a\",\n  \"argv\": [\"true\"]\n}\n";
    const char *inputs[] = {array, lines};
    for (size_t k = 0; k < 2; k++) {
        drv_tag_table *tags = drv_tag_table_new();
        drv_task *v;
        size_t n;
        drv_error err = {{0}};
        if (drv_tasks_parse(inputs[k], strlen(inputs[k]), tags, &v, &n, &err) != 0) {
            print_error("%s\n", err.msg);
            fail();
        }
        assert_int_equal(n, 2);
        assert_string_equal(v[0].name, "a");
        assert_int_equal(v[0].priority, DRV_PRIORITY_DEFAULT);
        assert_string_equal(v[1].argv[0], "false");
        assert_int_equal(v[1].priority, 5);
        drv_tasks_free(v, n);
        drv_tag_table_free(tags);
    }
    drv_task *v;
    size_t n;
    drv_error err;
    drv_tag_table *tags = drv_tag_table_new();
    assert_int_equal(drv_tasks_parse(pretty_one, strlen(pretty_one), tags, &v, &n, &err), 0);
    assert_int_equal(n, 1);
    drv_tasks_free(v, n);
    drv_tag_table_free(tags);
}

typedef struct bad_submission {
    const char *input;
    const char *expect;
} bad_submission;

static const bad_submission bad_submissions[] = {
    {"[{\"name\":\"a\",\"argv\":[\"x\"]},{\"name\":\"b\",\"argv\":[\"x\"]},"
     "{\"name\":\"c\",\"argv\":[\"x\"]},{\"name\":\"d\",\"argv\":[\"x\"],\"priority\":5000}]",
     "tests[3].priority: must be an integer 0..1000, got 5000"},
    {"{\"name\":\"a\",\"argv\":[\"x\"]}\n\n{\"name\":\"b\",\"argv\":[\"x\"]}\n"
     "{\"name\":\"c\",\"argv\":[\"x\"],\"requirements\":{\"cuda_cc\":\"eight\"}}\n",
     "line 4: requirements.cuda_cc: "},
    {"{\"name\":\"a\",\"argv\":[\"x\"]}\n{\"name\":\"b\",\"argv\":[\"x\"],\n",
     "line 2: not valid JSON"},
    {"[{\"name\":\"a\",\"argv\":[\"x\"],\"retries\":2}]",
     "tests[0].retries: unknown field (known: name, argv, command"},
    {"[{\"argv\":[\"x\"]}]", "tests[0].name: required"},
    {"[{\"name\":\"a\"}]", "tests[0].argv: required"},
    {"[{\"name\":\"a\",\"argv\":\"ls -l\"}]", "tests[0].argv: must be an array of strings"},
    {"[{\"name\":\"a\",\"argv\":[\"\"]}]", "tests[0].argv[0]: the program must not be empty"},
    {"[{\"name\":\"a\",\"argv\":[\"x\"],\"env\":{\"A\":1}}]", "tests[0].env.A: must be a string"},
    {"[{\"name\":\"a\",\"argv\":[\"x\"],\"requirements\":{\"memory_mb\":1,\"memory_gb\":1}}]",
     "tests[0].requirements.memory_gb: give memory_mb or memory_gb, not both"},
    {"[{\"name\":\"a\",\"argv\":[\"x\"],\"requirements\":{\"browser\":\"netscape\"}}]",
     "tests[0].requirements.browser: unknown browser \"netscape\" (known: chromium, chrome"},
    {"[{\"name\":\"a\",\"argv\":[\"x\"],\"requirements\":{\"tags\":[\"GPU\"]}}]",
     "tests[0].requirements.tags[0]: tag \"GPU\""},
    {"[{\"name\":\"a\",\"argv\":[\"x\"],\"requirements\":{\"all_of\":[\"a\"],"
     "\"none_of\":[\"a\"]}}]",
     "tests[0].requirements.none_of: a tag both required and forbidden"},
    {"[{\"name\":\"a\",\"argv\":[\"x\"],\"family\":\"bertt\"}]",
     "tests[0].family: unknown model family \"bertt\" (known: "},
    {"[{\"name\":\"a\",\"argv\":[\"x\"],\"timeout_s\":-3}]", "tests[0].timeout_s: must be"},
    {"[{\"name\":\"a\",\"argv\":[\"x\"],\"priority\":1.5}]", "tests[0].priority: must be"},
    {"[{\"name\":\"a\",\"argv\":[\"x\"],\"name\":\"b\"}]", "duplicate object key"},
    {"[1]", "tests[0]: must be an object (one test), got 1"},
    {"[]", "tests: the array is empty"},
    {"", "tests: the input is empty"},
    {"\n  \n", "tests: the input is empty"},
    {"[{\"name\":\"a\",\"argv\":[\"x\"]}", "tests: not valid JSON"},
    /* A submission as a whole: unique names, after inside it, no cycle. */
    {"[{\"name\":\"a\",\"argv\":[\"x\"]},{\"name\":\"b\",\"argv\":[\"x\"]},"
     "{\"name\":\"a\",\"argv\":[\"y\"]},{\"name\":\"b\",\"argv\":[\"y\"]}]",
     "2 duplicates: \"a\" (tests[0] and tests[2]), \"b\" (tests[1] and tests[3])"},
    {"{\"name\":\"a\",\"argv\":[\"x\"]}\n{\"name\":\"b\",\"argv\":[\"x\"],\"after\":[\"a\",\"zz\"]}"
     "\n",
     "tests[1].after[1]: \"zz\" is not a test of this submission"},
    {"[{\"name\":\"a\",\"argv\":[\"x\"],\"after\":[\"c\"]},{\"name\":\"b\",\"argv\":[\"x\"],"
     "\"after\":[\"a\"]},{\"name\":\"c\",\"argv\":[\"x\"],\"after\":[\"b\"]},"
     "{\"name\":\"d\",\"argv\":[\"x\"],\"after\":[\"a\"]}]",
     "after forms a cycle (4 tests can never start): \"c\", \"b\", \"a\", \"c\""},
    {"{\"name\":\"a\",\"argv\":[\"x\"],\"after\":[\"a\"]}", "a test cannot run after itself"},
    {"{\"name\":\"a\",\"argv\":[\"x\"],\"locks\":[\"\"]}", "locks[0]: must not be empty"},
    {"{\"name\":\"a\",\"argv\":[\"x\"],\"exclusive\":1}", "exclusive"},
};

/* JSON lines of the common shape are read on a fast path (task_decode_fast.c); the same
 * tests as a JSON array go through jansson. Both must give the same tasks, and lines
 * the fast path does not take must still parse or fail the general way. */
static void test_task_lines_fast_path_agrees(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"name\":\"r2-t1\",\"argv\":[\"true\"]}",
        (" { \"argv\" : [ \"pytest\" , \"-x\" , \"\" ] , \"name\" : \"a/b::c\" , \"priority\" : "
         "1000 ,"
         " \"timeout_s\" : 2.5e1 , \"max_retries\" : 100 , \"retry_on_failure\" : true ,"
         " \"model_id\" : \"bert-base-uncased\" , \"test_type\" : \"unit\" , \"batch_size\" : 8 ,"
         " \"cwd\" : \"/tmp\" } "),
        ("{\"name\":\"n\",\"argv\":[\"p\"],\"cwd\":null,\"priority\":null,\"timeout_s\":0,"
         "\"model_id\":null,\"retry_on_failure\":false,\"batch_size\":0,\"max_retries\":0}"),
        /* Not on the fast path (env, requirements, an escape): the same either way. */
        "{\"name\":\"e\",\"argv\":[\"p\"],\"env\":{\"A\":\"1\"},\"requirements\":{\"cpu\":2}}",
        "{\"name\":\"t\\u0041b\",\"argv\":[\"p\"],\"family\":\"bert\"}",
    };
    size_t n = sizeof lines / sizeof lines[0];
    char jsonl[2048] = "", array[2048] = "[";
    for (size_t i = 0; i < n; i++) {
        strcat(jsonl, lines[i]);
        strcat(jsonl, "\n");
        strcat(array, lines[i]);
        strcat(array, i + 1 < n ? "," : "]");
    }
    drv_tag_table *tags = drv_tag_table_new();
    drv_task *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    drv_error err = {{0}};
    if (drv_tasks_parse(jsonl, strlen(jsonl), tags, &a, &na, &err) != 0)
        fail_msg("lines: %s", err.msg);
    if (drv_tasks_parse(array, strlen(array), tags, &b, &nb, &err) != 0)
        fail_msg("array: %s", err.msg);
    assert_int_equal(na, n);
    assert_int_equal(nb, n);
    for (size_t i = 0; i < n; i++) {
        json_t *x = drv_task_to_json(&a[i], tags), *y = drv_task_to_json(&b[i], tags);
        char *xs = json_dumps(x, JSON_COMPACT | JSON_SORT_KEYS);
        char *ys = json_dumps(y, JSON_COMPACT | JSON_SORT_KEYS);
        assert_string_equal(xs, ys);
        assert_int_equal(a[i].family, b[i].family);
        assert_int_equal(a[i].state, b[i].state);
        free(xs);
        free(ys);
        json_decref(x);
        json_decref(y);
    }
    drv_tasks_free(a, na);
    drv_tasks_free(b, nb);
    static const struct {
        const char *line, *want;
    } bad[] = {
        {"{\"name\":\"n\",\"name\":\"m\",\"argv\":[\"p\"]}", "line 2: not valid JSON: duplicate"},
        {"{\"name\":\"n\",\"argv\":[]}", "line 2: argv: must not be empty"},
        {"{\"name\":\"n\",\"argv\":[\"\"]}", "line 2: argv[0]: the program must not be empty"},
        {"{\"name\":\"\",\"argv\":[\"p\"]}", "line 2: name: must not be empty"},
        {"{\"name\":null,\"argv\":[\"p\"]}", "line 2: name: required"},
        {"{\"name\":\"n\"}", "line 2: argv: required"},
        {"{\"name\":\"n\",\"argv\":[\"p\"],\"priority\":1001}", "line 2: priority: must be"},
        {"{\"name\":\"n\",\"argv\":[\"p\"],\"priority\":1.0}", "line 2: priority: must be"},
        {"{\"name\":\"n\",\"argv\":[\"p\"],\"max_retries\":101}", "line 2: max_retries: must be"},
        {"{\"name\":\"n\",\"argv\":[\"p\"],\"cwd\":\"\"}", "line 2: cwd: must not be empty"},
        {"{\"name\":\"n\",\"argv\":[\"p\"],\"bogus\":1}", "line 2: "},
        {"{\"name\":\"n\",\"argv\":[\"p\"]} x", "line 2: not valid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char input[512];
        snprintf(input, sizeof input, "%s\n%s\n", lines[0], bad[i].line);
        drv_task *t = NULL;
        size_t nt = 0;
        if (drv_tasks_parse(input, strlen(input), tags, &t, &nt, &err) == 0)
            fail_msg("accepted: %s", bad[i].line);
        if (!strstr(err.msg, bad[i].want))
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].line, err.msg, bad[i].want);
        assert_null(t);
    }
    drv_tag_table_free(tags);
}

/* Each bad submission names where it is wrong, returns nothing and interns no tag even
 * when earlier tests brought new tags. */
static void test_tasks_errors_all_or_nothing(void **state)
{
    (void)state;
    drv_tag_table *tags = drv_tag_table_new();
    int before = drv_tag_count(tags);
    for (size_t i = 0; i < sizeof bad_submissions / sizeof *bad_submissions; i++) {
        drv_task *v = (drv_task *)1;
        size_t n = 7;
        drv_error err = {{0}};
        const char *in = bad_submissions[i].input;
        if (drv_tasks_parse(in, strlen(in), tags, &v, &n, &err) != -1) {
            print_error("accepted: %s\n", in);
            fail();
        }
        assert_null(v);
        assert_int_equal(n, 0);
        assert_contains(err.msg, bad_submissions[i].expect);
    }
    static const char late_error[] =
        "[{\"name\":\"a\",\"argv\":[\"x\"],\"requirements\":{\"tags\":[\"zone-new\"]}},"
        "{\"name\":\"b\",\"argv\":[\"x\"],\"requirements\":{\"any_of\":[\"other-new\"]}},"
        "{\"name\":\"c\",\"argv\":[\"x\"],\"cwd\":\"\"}]";
    drv_task *v;
    size_t n;
    drv_error err;
    assert_int_equal(drv_tasks_parse(late_error, strlen(late_error), tags, &v, &n, &err), -1);
    assert_contains(err.msg, "tests[2].cwd: must not be empty");
    assert_int_equal(drv_tag_count(tags), before);
    assert_int_equal(drv_tag_lookup(tags, "zone-new"), -1);
    drv_tag_table_free(tags);
}

/* after and locks round-trip, and the plan orders every test after those it runs after. */
static void test_tasks_after_plan(void **state)
{
    (void)state;
    drv_tag_table *tags = drv_tag_table_new();
    static const char in[] =
        "[{\"name\":\"cleanup\",\"argv\":[\"x\"],\"after\":[\"setup\",\"use\"],"
        "\"run_anyway\":true},"
        "{\"name\":\"use\",\"argv\":[\"x\"],\"after\":[\"setup\"],\"locks\":[\"db\"]},"
        "{\"name\":\"setup\",\"argv\":[\"x\"],\"exclusive\":true}]";
    drv_task *v;
    size_t n;
    drv_error err = {{0}};
    if (drv_tasks_parse(in, strlen(in), tags, &v, &n, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(n, 3);
    assert_true(v[0].run_anyway);
    assert_string_equal(v[1].locks[0], "db");
    assert_true(v[2].exclusive);
    drv_tasks_plan plan;
    assert_int_equal(drv_tasks_check(v, n, &plan, &err), 0);
    assert_int_equal(plan.order[0], 2);
    assert_int_equal(plan.order[1], 1);
    assert_int_equal(plan.order[2], 0);
    assert_int_equal(plan.after_start[1] - plan.after_start[0], 2);
    assert_int_equal(plan.after_of[plan.after_start[1]], 2);
    drv_tasks_plan_free(&plan);
    json_t *o = drv_task_to_json(&v[0], tags);
    drv_task back;
    assert_int_equal(drv_task_from_json(o, &back, tags, "", &err), 0);
    assert_string_equal(back.after[1], "use");
    assert_true(back.run_anyway);
    drv_task_clear(&back);
    json_decref(o);
    /* Without after, no plan is needed. */
    drv_tasks_plan none;
    v[0].after = (drv_strv_free(v[0].after), NULL);
    v[1].after = (drv_strv_free(v[1].after), NULL);
    assert_int_equal(drv_tasks_check(v, n, &none, &err), 0);
    assert_null(none.order);
    drv_tasks_free(v, n);
    drv_tag_table_free(tags);
}

/* New tags get their ids only once the whole submission is good, and the ids match. */
static void test_tasks_tags_committed(void **state)
{
    (void)state;
    static const char in[] =
        "{\"name\":\"a\",\"argv\":[\"x\"],\"requirements\":{\"tags\":[\"zone-b\",\"cuda\"]}}\n"
        "{\"name\":\"b\",\"argv\":[\"x\"],\"requirements\":{\"none_of\":[\"zone-c\",\"zone-b\"]}}"
        "\n";
    drv_tag_table *tags = drv_tag_table_new();
    drv_task *v;
    size_t n;
    drv_error err = {{0}};
    assert_int_equal(drv_tasks_parse(in, strlen(in), tags, &v, &n, &err), 0);
    int b = drv_tag_lookup(tags, "zone-b"), c = drv_tag_lookup(tags, "zone-c");
    assert_int_equal(b, DRV_TAG_WELL_KNOWN_COUNT);
    assert_int_equal(c, DRV_TAG_WELL_KNOWN_COUNT + 1);
    assert_true(drv_tagset_has(&v[0].req.all_of, b));
    assert_true(drv_tagset_has(&v[0].req.all_of, DRV_TAG_CUDA));
    assert_int_equal(drv_tagset_count(&v[0].req.all_of), 2);
    assert_true(drv_tagset_has(&v[1].req.none_of, b));
    assert_true(drv_tagset_has(&v[1].req.none_of, c));
    drv_tasks_free(v, n);
    drv_tag_table_free(tags);
}

/* Field paths as errors show them: joined, indexed, and cut with "..." when too long. */
static void test_json_paths(void **state)
{
    (void)state;
    char out[DRV_JSON_PATH_MAX];
    drv_json_path_key(out, NULL, "priority");
    assert_string_equal(out, "priority");
    drv_json_path_key(out, "", "priority");
    assert_string_equal(out, "priority");
    drv_json_path_key(out, "tests[3]", "priority");
    assert_string_equal(out, "tests[3].priority");
    drv_json_path_index(out, "tests", 0);
    assert_string_equal(out, "tests[0]");
    drv_json_path_index(out, "assign.tests", 18446744073709551615ull);
    assert_string_equal(out, "assign.tests[18446744073709551615]");
    char base[300];
    memset(base, 'a', sizeof base - 1);
    base[sizeof base - 1] = '\0';
    drv_json_path_key(out, base, "k");
    assert_int_equal(strlen(out), DRV_JSON_PATH_MAX - 1);
    assert_string_equal(out + DRV_JSON_PATH_MAX - 4, "...");
    base[DRV_JSON_PATH_MAX - 3] = '\0'; /* the key's dot no longer fits */
    drv_json_path_key(out, base, "key");
    assert_int_equal(strlen(out), DRV_JSON_PATH_MAX - 1);
    assert_string_equal(out + DRV_JSON_PATH_MAX - 4, "...");
    base[DRV_JSON_PATH_MAX - 6] = '\0'; /* "[7]" fits exactly */
    drv_json_path_index(out, base, 7);
    assert_int_equal(strlen(out), DRV_JSON_PATH_MAX - 3);
    assert_string_equal(out + DRV_JSON_PATH_MAX - 7, "a[7]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_hello),
        cmocka_unit_test(test_hello_capabilities_spellings),
        cmocka_unit_test(test_round_trip_coordinator_messages),
        cmocka_unit_test(test_round_trip_worker_messages),
        cmocka_unit_test(test_output_invalid_utf8_replaced),
        cmocka_unit_test(test_attempt_of_results),
        cmocka_unit_test(test_bad_frames),
        cmocka_unit_test(test_finished_fast_path_agrees),
        cmocka_unit_test(test_assign_fast_path_agrees),
        cmocka_unit_test(test_fast_encoding_is_jansson_text),
        cmocka_unit_test(test_frame_over_limit),
        cmocka_unit_test(test_assign_over_limit),
        cmocka_unit_test(test_task_full_round_trip),
        cmocka_unit_test(test_task_idempotent),
        cmocka_unit_test(test_task_shell_explicit),
        cmocka_unit_test(test_tasks_array_and_lines),
        cmocka_unit_test(test_tasks_errors_all_or_nothing),
        cmocka_unit_test(test_task_lines_fast_path_agrees),
        cmocka_unit_test(test_tasks_tags_committed),
        cmocka_unit_test(test_json_paths),
        cmocka_unit_test(test_tasks_after_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
