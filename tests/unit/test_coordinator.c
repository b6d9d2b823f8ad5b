/* test_coordinator.c - the coordinator on a real loop (its own thread), a real SQLite
 * file and real sockets on 127.0.0.1. The test plays clients and workers with plain
 * blocking sockets: raw HTTP requests and raw WebSocket frames, so every byte the
 * coordinator sees is under the test's control. Covered: dispatch and results end to
 * end, duplicate and late results never counted twice, a silent worker lost and its test
 * finished elsewhere, a restart that adopts a test still running on its worker, refused
 * frames (before hello, bad token, unknown type, wrong field type, duplicate name) with
 * the coordinator serving on. Every socket read is bounded (SO_RCVTIMEO); alarm() bounds
 * each test. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "coordinator/coordinator.h"
#include "protocol/protocol.h"

/* ---- the coordinator in a thread ---- */

typedef struct server {
    char dir[64];
    char db[128];
    uv_loop_t loop;
    uv_async_t stop;
    drv_coordinator *c;
    pthread_t thread;
    int port;
} server;

static void on_stop(uv_async_t *a)
{
    server *s = a->data;
    drv_coordinator_stop(s->c, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void *server_main(void *arg)
{
    server *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* The quarantine probe's interval for the next server_start: never, unless a test
 * about probes sets it. */
static double probe_interval_s = -1;

/* Settings for the tests of the two-phase move (server_start). */
static bool steal_eagerly;

static void server_start(server *s, double heartbeat_timeout_s, double grace_s)
{
    drv_coordinator_options o;
    drv_coordinator_options_default(&o);
    o.listen = "127.0.0.1:0";
    o.db_path = s->db;
    o.client_token = "client-t";
    o.worker_token = "worker-t";
    o.heartbeat_timeout_s = heartbeat_timeout_s;
    o.recovery_grace_s = grace_s;
    o.probe_interval_s = probe_interval_s;
    o.quiet = getenv("DRV_TEST_VERBOSE") == NULL;
    o.max_body = 1 << 20;
    o.balancer.settings.unschedulable_grace_s = 0.2;
    o.balancer.settings.thermal.initial_share = 1; /* no warm-up ramp: not what is tested */
    if (steal_eagerly) { /* a holder takes every test, a free worker steals at once */
        o.balancer.settings.prefetch_max = 1024;
        o.balancer.settings.batch_target_s = 1e6;
        o.balancer.settings.migration_cost_s = 0;
    }
    uv_loop_init(&s->loop);
    drv_error err = {{0}};
    s->c = drv_coordinator_start(&s->loop, &o, &err);
    if (!s->c)
        fail_msg("coordinator: %s", err.msg);
    s->port = drv_coordinator_port(s->c);
    uv_async_init(&s->loop, &s->stop, on_stop);
    s->stop.data = s;
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
}

static void server_stop(server *s)
{
    uv_async_send(&s->stop);
    pthread_join(s->thread, NULL);
    drv_coordinator_free(s->c);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    s->c = NULL;
}

static int setup(void **state)
{
    server *s = drv_xcalloc(1, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/drv_coord_XXXXXX");
    if (!mkdtemp(s->dir)) {
        free(s);
        return -1;
    }
    snprintf(s->db, sizeof s->db, "%s/drover.db", s->dir);
    *state = s;
    alarm(60);
    probe_interval_s = -1;
    return 0;
}

static int teardown(void **state)
{
    server *s = *state;
    if (s->c)
        server_stop(s);
    DIR *d = opendir(s->dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            char p[512];
            snprintf(p, sizeof p, "%s/%s", s->dir, e->d_name);
            if (e->d_name[0] != '.')
                unlink(p);
        }
        closedir(d);
    }
    rmdir(s->dir);
    free(s);
    alarm(0);
    return 0;
}

/* ---- sockets ---- */

static void nap_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

/* One HTTP request; returns the status and stores the body (the caller frees it). */
static int http(const server *s, const char *method, const char *path, const char *token,
                const char *body, char **out)
{
    int fd = dial(s->port);
    char head[1024];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n%s%s%s\r\n",
                     method, path, blen, token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "");
    send_all(fd, head, (size_t)n);
    if (blen)
        send_all(fd, body, blen);
    size_t cap = 1 << 16, len = 0;
    char *buf = drv_xmalloc(cap);
    for (;;) {
        if (len + 1 == cap)
            buf = drv_xrealloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + len, cap - len - 1, 0);
        if (k <= 0)
            break;
        len += (size_t)k;
        buf[len] = '\0';
        /* Connection: close may not be honoured: stop at Content-Length. */
        char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strstr(buf, "content-length: ");
        if (end && cl && len - (size_t)(end + 4 - buf) >= (size_t)atol(cl + 16))
            break;
    }
    buf[len] = '\0';
    close(fd);
    int status = 0;
    sscanf(buf, "HTTP/1.1 %d", &status);
    char *b = strstr(buf, "\r\n\r\n");
    *out = drv_xstrdup(b ? b + 4 : "");
    free(buf);
    return status;
}

static json_t *get_json(const server *s, const char *path)
{
    char *body;
    int st = http(s, "GET", path, "client-t", NULL, &body);
    assert_int_equal(st, 200);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(j);
    return j;
}

static const char *test_state(const server *s, int id, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/api/v1/tests/%d", id);
    json_t *j = get_json(s, path);
    snprintf(buf, len, "%s", json_string_value(json_object_get(j, "state")));
    json_decref(j);
    return buf;
}

/* Polls until test id reaches state (5 s at most). */
static void wait_state(const server *s, int id, const char *state)
{
    char buf[32];
    for (int i = 0; i < 250; i++) {
        if (strcmp(test_state(s, id, buf, sizeof buf), state) == 0)
            return;
        nap_ms(20);
    }
    fail_msg("test %d: state %s, expected %s", id, buf, state);
}

/* ---- a raw WebSocket client ---- */

/* Opens a WebSocket at path with subprotocol protocol. */
static int ws_open_at(const server *s, const char *path, const char *protocol)
{
    int fd = dial(s->port);
    char req[512];
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n"
             "\r\n",
             path, protocol);
    send_all(fd, req, strlen(req));
    char buf[2048];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        ssize_t k = recv(fd, buf + len, 1, 0);
        assert_true(k == 1);
        len++;
        if (len >= 4 && memcmp(buf + len - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    buf[len] = '\0';
    assert_non_null(strstr(buf, " 101 "));
    return fd;
}

/* The worker channel. */
static int ws_open(const server *s)
{
    return ws_open_at(s, DRV_PROTOCOL_PATH, "drover-worker");
}

static void ws_send(int fd, const char *text)
{
    size_t len = strlen(text);
    unsigned char h[14];
    size_t hl = 0;
    h[hl++] = 0x81;
    if (len < 126) {
        h[hl++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        h[hl++] = 0x80 | 126;
        h[hl++] = (unsigned char)(len >> 8);
        h[hl++] = (unsigned char)len;
    } else {
        h[hl++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[hl++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(h + hl, mask, 4);
    hl += 4;
    unsigned char *frame = drv_xmalloc(hl + len);
    memcpy(frame, h, hl);
    for (size_t i = 0; i < len; i++)
        frame[hl + i] = (unsigned char)text[i] ^ mask[i % 4];
    send_all(fd, frame, hl + len);
    free(frame);
}

static bool recv_exact(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t k = recv(fd, p, len, 0);
        if (k <= 0)
            return false;
        p += k;
        len -= (size_t)k;
    }
    return true;
}

/* The next text frame (the caller frees it), or NULL when the connection closed. */
static char *ws_recv(int fd)
{
    for (;;) {
        unsigned char h[2];
        if (!recv_exact(fd, h, 2))
            return NULL;
        uint64_t len = h[1] & 0x7f;
        if (len == 126) {
            unsigned char e[2];
            assert_true(recv_exact(fd, e, 2));
            len = ((uint64_t)e[0] << 8) | e[1];
        } else if (len == 127) {
            unsigned char e[8];
            assert_true(recv_exact(fd, e, 8));
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | e[i];
        }
        char *p = drv_xmalloc(len + 1);
        assert_true(recv_exact(fd, p, len));
        p[len] = '\0';
        int op = h[0] & 0x0f;
        if (op == 0x8) {
            free(p);
            return NULL;
        }
        if (op == 0x1)
            return p;
        free(p); /* ping/pong */
    }
}

/* The next frame decoded; its type must be want. */
static void ws_expect(int fd, drv_msg_type want, drv_msg *m)
{
    char *text = ws_recv(fd);
    if (!text)
        fail_msg("connection closed, expected %s", drv_msg_type_name(want));
    drv_error err;
    if (drv_msg_decode(text, strlen(text), m, &err) < 0)
        fail_msg("bad frame %s: %s", text, err.msg);
    if (m->type != want)
        fail_msg("got %s, expected %s", text, drv_msg_type_name(want));
    free(text);
}

static void send_msg(int fd, const drv_msg *m)
{
    char *text = drv_msg_encode(m, NULL, NULL);
    assert_non_null(text);
    ws_send(fd, text);
    free(text);
}

/* Connects a worker process called instance (NULL: one that does not say) and reads its
 * welcome. running (may be NULL) is its hello list. */
static int worker_join_as(const server *s, const char *name, const char *instance, uint32_t slots,
                          drv_attempt_ref *running, size_t n_running)
{
    int fd = ws_open(s);
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_HELLO);
    m.hello.token = "worker-t";
    m.hello.name = (char *)name;
    m.hello.instance = (char *)instance;
    m.hello.caps.cpu_cores = 4;
    m.hello.caps.memory_mb = 8192;
    m.hello.slots = slots;
    m.hello.running = running;
    m.hello.running_count = n_running;
    send_msg(fd, &m);
    drv_msg w;
    ws_expect(fd, DRV_MSG_WELCOME, &w);
    drv_msg_free(&w);
    return fd;
}

/* worker_join_as one process that stays the same across reconnects. */
static int worker_join(const server *s, const char *name, uint32_t slots, drv_attempt_ref *running,
                       size_t n_running)
{
    return worker_join_as(s, name, "0123456789abcdef", slots, running, n_running);
}

static void heartbeat(int fd, drv_attempt_ref *running, size_t n)
{
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_HEARTBEAT);
    m.heartbeat.free_slots = 1;
    m.heartbeat.running = running;
    m.heartbeat.running_count = n;
    send_msg(fd, &m);
}

static void finish(int fd, uint64_t task, uint32_t attempt, int exit_code)
{
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_FINISHED);
    m.finished.ref = (drv_attempt_ref){task, attempt};
    m.finished.has_exit_code = true;
    m.finished.exit_code = exit_code;
    m.finished.duration_s = 0.25;
    m.finished.output_tail = "bye\n";
    m.finished.output_tail_len = 4;
    send_msg(fd, &m);
}

static void submit(const server *s, const char *body, int expect_count)
{
    char *out;
    int st = http(s, "POST", "/api/v1/tests?run=t", "client-t", body, &out);
    if (st != 201)
        fail_msg("submit: %d %s", st, out);
    json_t *j = json_loads(out, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "count")), expect_count);
    json_decref(j);
    free(out);
}

/* ---- tests ---- */

/* Streams 6,000 bytes of 'x' then 6,000 of 'y': the live output keeps the last 8,192. */
static void live_output_tail(const server *s, int fd, uint64_t task)
{
    char *buf = drv_xmalloc(6001);
    for (int i = 0; i < 2; i++) {
        memset(buf, i ? 'y' : 'x', 6000);
        buf[6000] = 0;
        drv_msg m;
        drv_msg_init(&m, DRV_MSG_OUTPUT);
        m.output.ref = (drv_attempt_ref){task, 1};
        m.output.data = buf;
        m.output.len = 6000;
        m.output.seq = (uint64_t)i;
        send_msg(fd, &m);
    }
    free(buf);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/tests/%llu", (unsigned long long)task);
    for (int i = 0; i < 250; i++) {
        json_t *t = get_json(s, path);
        const char *got = json_string_value(json_object_get(t, "live_output"));
        if (got && strlen(got) == 8192 && got[8191] == 'y') {
            assert_int_equal(strspn(got, "x"), 8192 - 6000);
            assert_int_equal(strspn(got + 2192, "y"), 6000);
            json_decref(t);
            return;
        }
        json_decref(t);
        nap_ms(20);
    }
    fail_msg("test %llu: live output is not the last 8,192 bytes", (unsigned long long)task);
}

/* Streams two output chunks of task's first attempt and waits until GET /tests/ID shows
 * them as its live output. */
static void live_output(const server *s, int fd, uint64_t task)
{
    static const char *const chunks[] = {"collecting 3 items\n", "test_a PASSED\n"};
    for (int i = 0; i < 2; i++) {
        drv_msg m;
        drv_msg_init(&m, DRV_MSG_OUTPUT);
        m.output.ref = (drv_attempt_ref){task, 1};
        m.output.data = (char *)chunks[i];
        m.output.len = strlen(chunks[i]);
        m.output.seq = (uint64_t)i;
        send_msg(fd, &m);
    }
    char path[64];
    snprintf(path, sizeof path, "/api/v1/tests/%llu", (unsigned long long)task);
    const char *want = "collecting 3 items\ntest_a PASSED\n";
    for (int i = 0; i < 250; i++) {
        json_t *t = get_json(s, path);
        const char *got = json_string_value(json_object_get(t, "live_output"));
        bool done = got && strcmp(got, want) == 0;
        json_decref(t);
        if (done)
            return;
        nap_ms(20);
    }
    fail_msg("test %llu: live output never became the streamed chunks", (unsigned long long)task);
}

static void test_dispatch_and_results(void **state)
{
    server *s = *state;
    server_start(s, 3.0, 10.0);
    submit(s,
           "[{\"name\":\"ok\",\"argv\":[\"true\"]},{\"name\":\"bad\",\"argv\":[\"false\"]},"
           "{\"name\":\"gpu\",\"argv\":[\"nvidia-smi\"],\"requirements\":{\"gpus\":1}}]",
           3);
    int w = worker_join(s, "w1", 4, NULL, 0);
    /* Two assigns in all (a new worker warms up: they may come one by one); the GPU
     * test fits no worker. */
    drv_msg a;
    for (int got = 0; got < 2;) {
        ws_expect(w, DRV_MSG_ASSIGN, &a);
        for (size_t i = 0; i < a.assign.count; i++, got++) {
            assert_int_equal(a.assign.tests[i].attempt, 1);
            bool ok = strcmp(a.assign.tests[i].name, "ok") == 0;
            assert_string_equal(a.assign.tests[i].argv[0], ok ? "true" : "false");
            if (ok)
                live_output(s, w, a.assign.tests[i].task_id);
            else
                live_output_tail(s, w, a.assign.tests[i].task_id);
            finish(w, a.assign.tests[i].task_id, 1, ok ? 0 : 1);
        }
        drv_msg_free(&a);
    }
    wait_state(s, 1, "passed");
    wait_state(s, 2, "failed");
    wait_state(s, 3, "unschedulable");
    /* The same result again is a duplicate: acknowledged, not counted. */
    finish(w, 1, 1, 1);
    heartbeat(w, NULL, 0);
    json_t *st = get_json(s, "/api/v1/status");
    for (int i = 0; i < 100 && json_integer_value(json_object_get(st, "late_results")) < 1; i++) {
        json_decref(st);
        nap_ms(20);
        st = get_json(s, "/api/v1/status");
    }
    assert_int_equal(json_integer_value(json_object_get(st, "late_results")), 1);
    json_t *counts = json_object_get(st, "counts");
    assert_int_equal(json_integer_value(json_object_get(counts, "passed")), 1);
    assert_int_equal(json_integer_value(json_object_get(counts, "failed")), 1);
    json_decref(st);
    json_t *t = get_json(s, "/api/v1/tests/1");
    assert_int_equal(json_integer_value(json_object_get(t, "exit_code")), 0);
    json_t *att = json_array_get(json_object_get(t, "attempts"), 0);
    assert_string_equal(json_string_value(json_object_get(att, "output_tail")), "bye\n");
    assert_true(json_is_null(json_object_get(t, "live_output"))); /* final: the tail counts */
    json_decref(t);
    t = get_json(s, "/api/v1/tests/3/explain");
    assert_non_null(strstr(json_string_value(json_object_get(t, "explain")), "GPU"));
    json_decref(t);

    /* The same figures for Prometheus: reads need the token here. */
    char *out;
    assert_int_equal(http(s, "GET", "/metrics", NULL, NULL, &out), 401);
    free(out);
    assert_int_equal(http(s, "GET", "/metrics", "client-t", NULL, &out), 200);
    assert_non_null(strstr(out, "# TYPE drover_tests gauge\n"));
    assert_non_null(strstr(out, "\ndrover_tests{state=\"passed\"} 1\n"));
    assert_non_null(strstr(out, "\ndrover_tests{state=\"unschedulable\"} 1\n"));
    assert_non_null(strstr(out, "\ndrover_results_total 2\n"));
    assert_non_null(strstr(out, "\ndrover_late_results_total 1\n"));
    assert_non_null(strstr(out, "\ndrover_worker_finished_total{worker=\"w1\"} 2\n"));
    assert_non_null(strstr(out, "\ndrover_worker_up{worker=\"w1\"} 1\n"));
    free(out);
    close(w);
}

/* The text of a finished message for (task, attempt 1), exit code 0 (malloc'd). */
static char *finished_text(uint64_t task)
{
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_FINISHED);
    m.finished.ref = (drv_attempt_ref){task, 1};
    m.finished.has_exit_code = true;
    m.finished.duration_s = 0.01;
    char *text = drv_msg_encode(&m, NULL, NULL);
    assert_non_null(text);
    return text;
}

/* On the lines subprotocol a frame carries several messages, one per line: each is
 * handled (a bad one gets its error frame, the others count); on the plain one such a
 * frame is one message, and refused. */
static void test_lines_subprotocol(void **state)
{
    server *s = *state;
    server_start(s, 3.0, 10.0);
    submit(s,
           "[{\"name\":\"a\",\"argv\":[\"true\"]},{\"name\":\"b\",\"argv\":[\"true\"]},"
           "{\"name\":\"c\",\"argv\":[\"true\"]}]",
           3);
    int fd = ws_open_at(s, DRV_PROTOCOL_PATH, DRV_PROTOCOL_SUBPROTOCOL_LINES);
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_HELLO);
    m.hello.token = "worker-t";
    m.hello.name = "lines";
    m.hello.caps.cpu_cores = 4;
    m.hello.caps.memory_mb = 8192;
    m.hello.slots = 4;
    send_msg(fd, &m);
    drv_msg w;
    ws_expect(fd, DRV_MSG_WELCOME, &w);
    drv_msg_free(&w);
    for (int got = 0; got < 3;) {
        ws_expect(fd, DRV_MSG_ASSIGN, &w);
        got += (int)w.assign.count;
        drv_msg_free(&w);
    }
    char *f1 = finished_text(1), *f2 = finished_text(2), *f3 = finished_text(3);
    char frame[2048];
    snprintf(frame, sizeof frame, "%s\n{\"type\":\"nope\",\"v\":1}\n\n%s\n%s", f1, f2, f3);
    ws_send(fd, frame);
    ws_expect(fd, DRV_MSG_ERROR, &w);
    assert_non_null(strstr(w.error.message, "unknown message type"));
    drv_msg_free(&w);
    wait_state(s, 1, "passed");
    wait_state(s, 2, "passed");
    wait_state(s, 3, "passed");
    close(fd);

    /* The plain subprotocol: the same two messages in one frame are one bad message. */
    submit(s, "{\"name\":\"d\",\"argv\":[\"true\"]}", 1);
    fd = worker_join(s, "plain", 4, NULL, 0);
    ws_expect(fd, DRV_MSG_ASSIGN, &w);
    assert_int_equal(w.assign.tests[0].task_id, 4);
    drv_msg_free(&w);
    char *f4 = finished_text(4);
    snprintf(frame, sizeof frame, "%s\n%s", f4, f4);
    ws_send(fd, frame);
    ws_expect(fd, DRV_MSG_ERROR, &w);
    drv_msg_free(&w);
    assert_string_equal(test_state(s, 4, frame, sizeof frame), "assigned");
    free(f1);
    free(f2);
    free(f3);
    free(f4);
    close(fd);
}

static void test_refused_frames(void **state)
{
    server *s = *state;
    server_start(s, 3.0, 10.0);
    /* A frame before hello: an error, then the connection closes. */
    int fd = ws_open(s);
    ws_send(fd, "{\"type\":\"heartbeat\",\"v\":1,\"load\":0,\"free_slots\":1}");
    drv_msg m;
    ws_expect(fd, DRV_MSG_ERROR, &m);
    assert_non_null(strstr(m.error.message, "first frame must be hello"));
    drv_msg_free(&m);
    assert_null(ws_recv(fd));
    close(fd);
    /* A bad token. */
    fd = ws_open(s);
    ws_send(fd, "{\"type\":\"hello\",\"v\":1,\"token\":\"nope\",\"name\":\"x\",\"slots\":1,"
                "\"capabilities\":{\"cpu_cores\":1,\"memory_mb\":1}}");
    ws_expect(fd, DRV_MSG_ERROR, &m);
    assert_non_null(strstr(m.error.message, "bad worker token"));
    drv_msg_free(&m);
    assert_null(ws_recv(fd));
    close(fd);
    /* After a good hello: an unknown type and a wrong field type are refused, and the
     * connection stays. */
    int w = worker_join(s, "w1", 1, NULL, 0);
    ws_send(w, "{\"type\":\"hellp\",\"v\":1}");
    ws_expect(w, DRV_MSG_ERROR, &m);
    assert_non_null(strstr(m.error.message, "unknown message type \"hellp\""));
    drv_msg_free(&m);
    ws_send(w, "{\"type\":\"heartbeat\",\"v\":1,\"load\":\"high\",\"free_slots\":1}");
    ws_expect(w, DRV_MSG_ERROR, &m);
    assert_non_null(strstr(m.error.message, "heartbeat.load"));
    drv_msg_free(&m);
    ws_send(w, "not json");
    ws_expect(w, DRV_MSG_ERROR, &m);
    assert_non_null(strstr(m.error.message, "not valid JSON"));
    drv_msg_free(&m);
    /* A second worker with the same name is refused. */
    fd = ws_open(s);
    ws_send(fd, "{\"type\":\"hello\",\"v\":1,\"token\":\"worker-t\",\"name\":\"w1\",\"slots\":1,"
                "\"capabilities\":{\"cpu_cores\":1,\"memory_mb\":1}}");
    ws_expect(fd, DRV_MSG_ERROR, &m);
    assert_non_null(strstr(m.error.message, "already connected"));
    drv_msg_free(&m);
    close(fd);
    /* Still serving: w1 gets work. */
    submit(s, "{\"name\":\"after\",\"argv\":[\"true\"]}", 1);
    ws_expect(w, DRV_MSG_ASSIGN, &m);
    assert_string_equal(m.assign.tests[0].name, "after");
    drv_msg_free(&m);
    close(w);
}

static void test_lost_worker(void **state)
{
    server *s = *state;
    server_start(s, 0.5, 10.0);
    submit(s, "{\"name\":\"t\",\"argv\":[\"sleep\",\"1\"],\"max_retries\":2}", 1);
    int a = worker_join(s, "a", 1, NULL, 0);
    drv_msg m;
    ws_expect(a, DRV_MSG_ASSIGN, &m);
    assert_int_equal(m.assign.tests[0].attempt, 1);
    drv_msg_free(&m);
    drv_msg st;
    drv_msg_init(&st, DRV_MSG_STARTED);
    st.started.ref = (drv_attempt_ref){1, 1};
    st.started.pid = 99;
    st.started.t = 1;
    send_msg(a, &st);
    wait_state(s, 1, "running");
    /* b joins; a goes silent and is lost: the test moves to b as attempt 2. */
    int b = worker_join(s, "b", 1, NULL, 0);
    for (int i = 0; i < 10; i++) {
        heartbeat(b, NULL, 0);
        nap_ms(100);
    }
    ws_expect(b, DRV_MSG_ASSIGN, &m);
    assert_int_equal(m.assign.tests[0].task_id, 1);
    assert_int_equal(m.assign.tests[0].attempt, 2);
    drv_msg_free(&m);
    /* a's late result for attempt 1 does not count (a was lost). */
    finish(a, 1, 1, 1);
    finish(b, 1, 2, 0);
    wait_state(s, 1, "passed");
    json_t *t = get_json(s, "/api/v1/tests/1");
    json_t *atts = json_object_get(t, "attempts");
    assert_int_equal(json_array_size(atts), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(atts, 0), "state")),
                        "abandoned");
    assert_string_equal(json_string_value(json_object_get(json_array_get(atts, 1), "state")),
                        "finished");
    json_decref(t);
    t = get_json(s, "/api/v1/workers/a");
    assert_string_equal(json_string_value(json_object_get(t, "health")), "lost");
    json_decref(t);
    close(a);
    close(b);
}

static void test_restart_adopts_running(void **state)
{
    server *s = *state;
    server_start(s, 3.0, 5.0);
    submit(
        s,
        "[{\"name\":\"long\",\"argv\":[\"sleep\",\"9\"]},{\"name\":\"next\",\"argv\":[\"true\"]}]",
        2);
    int w = worker_join(s, "w", 1, NULL, 0);
    drv_msg m;
    ws_expect(w, DRV_MSG_ASSIGN, &m);
    uint64_t first = m.assign.tests[0].task_id;
    drv_msg_free(&m);
    drv_msg st;
    drv_msg_init(&st, DRV_MSG_STARTED);
    st.started.ref = (drv_attempt_ref){first, 1};
    st.started.pid = 42;
    st.started.t = 1;
    send_msg(w, &st);
    wait_state(s, (int)first, "running");
    close(w);
    server_stop(s);

    /* A new coordinator on the same file: the running test waits for its worker, which
     * comes back still running it; its result then counts once. */
    server_start(s, 3.0, 5.0);
    char buf[32];
    assert_string_equal(test_state(s, (int)first, buf, sizeof buf), "running");
    drv_attempt_ref held = {first, 1};
    w = worker_join(s, "w", 2, &held, 1);
    heartbeat(w, &held, 1);
    finish(w, first, 1, 0);
    wait_state(s, (int)first, "passed");
    json_t *t = get_json(s, "/api/v1/tests/1");
    assert_int_equal(json_integer_value(json_object_get(t, "attempt_count")), 1);
    json_decref(t);
    /* The other test was queued (or assigned and never started) and runs now. */
    uint64_t other = first == 1 ? 2 : 1;
    for (;;) {
        ws_expect(w, DRV_MSG_ASSIGN, &m);
        bool found = m.assign.tests[0].task_id == other;
        uint32_t att = m.assign.tests[0].attempt;
        drv_msg_free(&m);
        if (found) {
            finish(w, other, att, 0);
            break;
        }
    }
    wait_state(s, (int)other, "passed");
    close(w);
}

/* A worker that reconnects within the heartbeat timeout and no longer holds what it was
 * given: an assigned test it never got is sent again (same attempt); a running test it
 * lost comes back as a new attempt (an infrastructure failure of the old one). */
static void test_reconnect_reconciles(void **state)
{
    server *s = *state;
    server_start(s, 3.0, 10.0);
    submit(s,
           "[{\"name\":\"a\",\"argv\":[\"true\"],\"max_retries\":2},"
           "{\"name\":\"b\",\"argv\":[\"true\"],\"max_retries\":2}]",
           2);
    int w = worker_join(s, "w", 2, NULL, 0);
    uint64_t started_id = 0, other = 0;
    for (int got = 0; got < 2;) {
        drv_msg m;
        ws_expect(w, DRV_MSG_ASSIGN, &m);
        for (size_t i = 0; i < m.assign.count; i++, got++) {
            if (!started_id)
                started_id = m.assign.tests[i].task_id;
            else
                other = m.assign.tests[i].task_id;
        }
        drv_msg_free(&m);
    }
    drv_msg st;
    drv_msg_init(&st, DRV_MSG_STARTED);
    st.started.ref = (drv_attempt_ref){started_id, 1};
    st.started.pid = 7;
    st.started.t = 1;
    send_msg(w, &st);
    wait_state(s, (int)started_id, "running");
    close(w);
    /* Back at once, holding nothing. */
    w = worker_join(s, "w", 2, NULL, 0);
    heartbeat(w, NULL, 0);
    bool resent = false, replaced = false;
    while (!resent || !replaced) {
        drv_msg m;
        ws_expect(w, DRV_MSG_ASSIGN, &m);
        for (size_t i = 0; i < m.assign.count; i++) {
            const drv_msg_test *t = &m.assign.tests[i];
            if (t->task_id == other) {
                assert_int_equal(t->attempt, 1); /* never reached it: the same attempt */
                resent = true;
            } else {
                assert_int_equal(t->task_id, started_id);
                assert_int_equal(t->attempt, 2); /* lost while running: a new attempt */
                replaced = true;
            }
            finish(w, t->task_id, t->attempt, 0);
        }
        drv_msg_free(&m);
    }
    wait_state(s, (int)started_id, "passed");
    wait_state(s, (int)other, "passed");
    char path[64];
    snprintf(path, sizeof path, "/api/v1/tests/%llu", (unsigned long long)started_id);
    json_t *t = get_json(s, path);
    json_t *first = json_array_get(json_object_get(t, "attempts"), 0);
    assert_true(json_is_true(json_object_get(first, "infra_failure")));
    json_decref(t);
    close(w);
}

/* Reads assigns on fd until one carries a test; returns its attempt (task id in *task). */
static uint32_t next_assigned(int fd, uint64_t *task)
{
    for (;;) {
        drv_msg m;
        ws_expect(fd, DRV_MSG_ASSIGN, &m);
        if (m.assign.count > 0) {
            *task = m.assign.tests[0].task_id;
            uint32_t att = m.assign.tests[0].attempt;
            drv_msg_free(&m);
            return att;
        }
        drv_msg_free(&m);
    }
}

/* A worker restarted under the same name within the heartbeat timeout (exec3): an assign
 * sent to the old process that the new one does not list may have started there, so it
 * is never sent again: it costs one of max_retries and comes back as a new attempt. The
 * same process reconnecting gets the same attempt again, charged nothing. */
static void test_restarted_worker_never_reruns_an_attempt(void **state)
{
    server *s = *state;
    server_start(s, 3.0, 10.0);
    submit(s, "[{\"name\":\"a\",\"argv\":[\"true\"],\"max_retries\":2}]", 1);
    int w = worker_join_as(s, "w", "aaaa", 1, NULL, 0);
    uint64_t id;
    assert_int_equal(next_assigned(w, &id), 1);
    close(w);

    /* The same process again, not listing it: the same attempt is sent again. */
    w = worker_join_as(s, "w", "aaaa", 1, NULL, 0);
    heartbeat(w, NULL, 0);
    uint64_t again;
    assert_int_equal(next_assigned(w, &again), 1);
    assert_int_equal(again, id);
    close(w);

    /* Another process under the same name, not listing it: attempt 2, one retry used. */
    w = worker_join_as(s, "w", "bbbb", 1, NULL, 0);
    heartbeat(w, NULL, 0);
    assert_int_equal(next_assigned(w, &again), 2);
    assert_int_equal(again, id);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/tests/%llu", (unsigned long long)id);
    json_t *t = get_json(s, path);
    const char *why = json_string_value(json_object_get(t, "explain"));
    assert_non_null(why);
    if (!strstr(why, "Used 1 of max_retries 2"))
        fail_msg("explain: %s", why);
    json_t *first = json_array_get(json_object_get(t, "attempts"), 0);
    assert_true(json_is_true(json_object_get(first, "infra_failure")));
    json_decref(t);
    close(w);

    /* A worker that does not say which process it is counts as another one. */
    w = worker_join_as(s, "w", NULL, 1, NULL, 0);
    heartbeat(w, NULL, 0);
    assert_int_equal(next_assigned(w, &again), 3);
    finish(w, id, 3, 0);
    wait_state(s, (int)id, "passed");
    close(w);
}

/* Submits three tests and connects a 1-slot worker "flaky" that fails each for an
 * infrastructure reason (spawn failure): three in a row, a quarantine. Returns its
 * connection. */
static int join_flaky_worker(const server *s)
{
    submit(s,
           "[{\"name\":\"a\",\"argv\":[\"x\"],\"max_retries\":5},"
           "{\"name\":\"b\",\"argv\":[\"x\"],\"max_retries\":5},"
           "{\"name\":\"c\",\"argv\":[\"x\"],\"max_retries\":5}]",
           3);
    int w = worker_join(s, "flaky", 1, NULL, 0);
    for (int k = 0; k < 3; k++) {
        drv_msg m;
        ws_expect(w, DRV_MSG_ASSIGN, &m);
        drv_msg f;
        drv_msg_init(&f, DRV_MSG_FINISHED);
        f.finished.ref = (drv_attempt_ref){m.assign.tests[0].task_id, m.assign.tests[0].attempt};
        f.finished.infra_failure = true;
        f.finished.error = "spawn x: No such file or directory";
        send_msg(w, &f);
        drv_msg_free(&m);
        heartbeat(w, NULL, 0);
    }
    return w;
}

/* A worker whose tests keep failing for infrastructure reasons is quarantined (no more
 * work, the reason visible in the API) until an operator clears it. */
static void test_quarantine_and_clear(void **state)
{
    server *s = *state;
    server_start(s, 3.0, 10.0);
    int w = join_flaky_worker(s);
    json_t *k = NULL;
    for (int i = 0; i < 100; i++) {
        json_decref(k);
        k = get_json(s, "/api/v1/workers/flaky");
        if (strcmp(json_string_value(json_object_get(k, "health")), "quarantined") == 0)
            break;
        nap_ms(20);
    }
    assert_string_equal(json_string_value(json_object_get(k, "health")), "quarantined");
    assert_non_null(strstr(json_string_value(json_object_get(k, "health_reason")),
                           "3 infrastructure failures in a row"));
    json_decref(k);
    /* Nothing more for it while quarantined: the tests wait. */
    char buf[32];
    for (int id = 1; id <= 3; id++)
        assert_string_equal(test_state(s, id, buf, sizeof buf), "queued");
    char *out;
    assert_int_equal(http(s, "POST", "/api/v1/workers/flaky/clear", NULL, NULL, &out), 401);
    free(out);
    assert_int_equal(http(s, "POST", "/api/v1/workers/flaky/clear", "client-t", NULL, &out), 200);
    free(out);
    drv_msg m;
    ws_expect(w, DRV_MSG_ASSIGN, &m); /* work again */
    assert_true(m.assign.tests[0].task_id >= 1 && m.assign.tests[0].task_id <= 3);
    drv_msg_free(&m);
    close(w);
}

/* Polls worker name's health until it is want (5 s at most); returns its reason (the
 * caller frees). */
static char *wait_health(const server *s, const char *name, const char *want)
{
    char path[128], *reason = NULL;
    snprintf(path, sizeof path, "/api/v1/workers/%s", name);
    const char *got = "";
    for (int i = 0; i < 250; i++) {
        json_t *k = get_json(s, path);
        got = json_string_value(json_object_get(k, "health"));
        if (got && strcmp(got, want) == 0) {
            const char *r = json_string_value(json_object_get(k, "health_reason"));
            reason = drv_xstrdup(r ? r : "");
            json_decref(k);
            return reason;
        }
        json_decref(k);
        nap_ms(20);
    }
    fail_msg("worker %s: health never became %s", name, want);
    return NULL;
}

/* The next assign, which must be a health probe (task id 0); returns its number. */
static uint32_t expect_probe(int fd)
{
    drv_msg m;
    ws_expect(fd, DRV_MSG_ASSIGN, &m);
    assert_int_equal(m.assign.count, 1);
    assert_int_equal(m.assign.tests[0].task_id, 0);
    assert_string_equal(m.assign.tests[0].argv[0], "true");
    uint32_t n = m.assign.tests[0].attempt;
    drv_msg_free(&m);
    return n;
}

/* A quarantine is about the machine: it outlives the worker's connection, its loss and
 * a coordinator restart. A failing probe keeps it (and says so); a passing one lifts
 * it, and the worker gets work again. */
static void test_quarantine_outlives_and_probe_clears(void **state)
{
    server *s = *state;
    probe_interval_s = 0.3;
    server_start(s, 1.0, 10.0);
    int w = join_flaky_worker(s);
    free(wait_health(s, "flaky", "quarantined"));

    /* Lost (silent past the timeout), then back: still quarantined. */
    close(w);
    free(wait_health(s, "flaky", "lost"));
    w = worker_join(s, "flaky", 1, NULL, 0);
    char *why = wait_health(s, "flaky", "quarantined");
    assert_non_null(strstr(why, "3 infrastructure failures in a row"));
    free(why);
    close(w);

    /* A restarted coordinator knows it from the store. */
    server_stop(s);
    server_start(s, 1.0, 10.0);
    w = worker_join(s, "flaky", 1, NULL, 0);
    free(wait_health(s, "flaky", "quarantined"));

    /* The first probe fails: still quarantined, and the reason says why. */
    uint32_t p = expect_probe(w);
    drv_msg f;
    drv_msg_init(&f, DRV_MSG_FINISHED);
    f.finished.ref = (drv_attempt_ref){0, p};
    f.finished.has_exit_code = true;
    f.finished.exit_code = 1;
    send_msg(w, &f);
    heartbeat(w, NULL, 0);
    for (int i = 0; i < 100; i++) {
        why = wait_health(s, "flaky", "quarantined");
        if (strstr(why, "failed: exit status 1"))
            break;
        free(why);
        why = NULL;
        nap_ms(20);
    }
    assert_non_null(why);
    assert_non_null(strstr(why, "3 infrastructure failures in a row"));
    free(why);
    char buf[32];
    for (int id = 1; id <= 3; id++)
        assert_string_equal(test_state(s, id, buf, sizeof buf), "queued");

    /* The next one passes: the worker is cleared and gets the tests. */
    uint32_t p2 = expect_probe(w);
    assert_true(p2 > p);
    f.finished.ref = (drv_attempt_ref){0, p2};
    f.finished.exit_code = 0;
    send_msg(w, &f);
    heartbeat(w, NULL, 0);
    drv_msg m;
    ws_expect(w, DRV_MSG_ASSIGN, &m);
    assert_true(m.assign.tests[0].task_id >= 1 && m.assign.tests[0].task_id <= 3);
    drv_msg_free(&m);
    free(wait_health(s, "flaky", "ok"));
    close(w);
}

/* A worker that drains lists what it keeps; every other test it was assigned goes back
 * to the queue at once, without using a retry, and another worker runs it. */
static void test_drain_hands_back(void **state)
{
    server *s = *state;
    server_start(s, 30.0, 10.0); /* no loss within the test: only the drain gives back */
    submit(s,
           "[{\"name\":\"a\",\"argv\":[\"x\"],\"max_retries\":0},"
           "{\"name\":\"b\",\"argv\":[\"x\"],\"max_retries\":0},"
           "{\"name\":\"c\",\"argv\":[\"x\"],\"max_retries\":0}]",
           3);
    int w = worker_join(s, "leaving", 3, NULL, 0);
    /* It holds all three; one has started when it drains (the others it drops). */
    drv_attempt_ref got[3];
    size_t n = 0;
    while (n < 3) {
        drv_msg m;
        ws_expect(w, DRV_MSG_ASSIGN, &m);
        for (size_t i = 0; i < m.assign.count && n < 3; i++)
            got[n++] = (drv_attempt_ref){m.assign.tests[i].task_id, m.assign.tests[i].attempt};
        drv_msg_free(&m);
    }
    drv_msg st;
    drv_msg_init(&st, DRV_MSG_STARTED);
    st.started.ref = got[0];
    st.started.pid = 4242;
    st.started.t = 1;
    send_msg(w, &st);
    wait_state(s, (int)got[0].task_id, "running");

    drv_msg d;
    drv_msg_init(&d, DRV_MSG_DRAIN);
    d.drain.reason = "worker stopping (SIGTERM)";
    d.drain.has_keeps = true;
    d.drain.keeps = &got[0];
    d.drain.keeps_count = 1;
    send_msg(w, &d);
    for (int k = 1; k < 3; k++)
        wait_state(s, (int)got[k].task_id, "queued");
    char buf[32];
    assert_string_equal(test_state(s, (int)got[0].task_id, buf, sizeof buf), "running");

    /* Another worker takes them: their second attempt, the first was never run. */
    int w2 = worker_join(s, "other", 2, NULL, 0);
    for (size_t k = 0; k < 2;) {
        drv_msg m;
        ws_expect(w2, DRV_MSG_ASSIGN, &m);
        for (size_t i = 0; i < m.assign.count; i++, k++) {
            assert_true(m.assign.tests[i].task_id != got[0].task_id);
            finish(w2, m.assign.tests[i].task_id, m.assign.tests[i].attempt, 0);
        }
        drv_msg_free(&m);
    }
    for (int k = 1; k < 3; k++)
        wait_state(s, (int)got[k].task_id, "passed"); /* max_retries 0: no retry was used */
    finish(w, got[0].task_id, got[0].attempt, 0);
    wait_state(s, (int)got[0].task_id, "passed");
    close(w2);
    close(w);
}

/* The text of GET /metrics (freed by the caller). */
static char *metrics_text(const server *s)
{
    char *body;
    assert_int_equal(http(s, "GET", "/metrics", "client-t", NULL, &body), 200);
    return body;
}

/* The two-phase move (exec2): a test whose assign reached its holder moves only once the
 * holder released it. The thief gets nothing while the release is awaited; a released
 * {dropped: true} gives it the next attempt; a holder that started the test keeps it
 * (the move is dropped, no second attempt, the test passes once). */
static void test_move_waits_for_release(void **state)
{
    server *s = *state;
    steal_eagerly = true;
    server_start(s, 30.0, 10.0);
    steal_eagerly = false;
    submit(s,
           "[{\"name\":\"a\",\"argv\":[\"x\"],\"max_retries\":0},"
           "{\"name\":\"b\",\"argv\":[\"x\"],\"max_retries\":0},"
           "{\"name\":\"c\",\"argv\":[\"x\"],\"max_retries\":0}]",
           3);
    int h = worker_join(s, "holder", 1, NULL, 0);
    drv_attempt_ref got[3];
    size_t n = 0;
    while (n < 3) {
        drv_msg m;
        ws_expect(h, DRV_MSG_ASSIGN, &m);
        for (size_t i = 0; i < m.assign.count && n < 3; i++)
            got[n++] = (drv_attempt_ref){m.assign.tests[i].task_id, m.assign.tests[i].attempt};
        drv_msg_free(&m);
    }
    int th = worker_join(s, "thief", 1, NULL, 0);

    /* 1: the holder is asked, not told: a release, and the move waits for its answer. */
    drv_msg r;
    ws_expect(h, DRV_MSG_RELEASE, &r);
    drv_attempt_ref moved = r.release.ref;
    assert_int_equal(moved.attempt, 1);
    assert_true(moved.task_id == got[0].task_id || moved.task_id == got[1].task_id ||
                moved.task_id == got[2].task_id);
    char *text = metrics_text(s);
    assert_non_null(strstr(text, "\ndrover_moves_pending 1\n"));
    free(text);
    char buf[32];
    assert_string_equal(test_state(s, (int)moved.task_id, buf, sizeof buf), "assigned");
    drv_msg a;
    drv_msg_init(&a, DRV_MSG_RELEASED);
    a.release.ref = moved;
    a.release.dropped = true;
    send_msg(h, &a);
    drv_msg m;
    ws_expect(th, DRV_MSG_ASSIGN, &m); /* only now */
    assert_int_equal(m.assign.count, 1);
    assert_int_equal(m.assign.tests[0].task_id, moved.task_id);
    assert_int_equal(m.assign.tests[0].attempt, 2);
    drv_msg_free(&m);
    finish(th, moved.task_id, 2, 0);
    wait_state(s, (int)moved.task_id, "passed");

    /* 2: the thief is free again and the next move finds the test started there: the
     * holder says so (started, then released{dropped: false}) and keeps it. */
    ws_expect(h, DRV_MSG_RELEASE, &r);
    drv_attempt_ref kept = r.release.ref;
    assert_true(kept.task_id != moved.task_id);
    drv_msg st;
    drv_msg_init(&st, DRV_MSG_STARTED);
    st.started.ref = kept;
    st.started.pid = 4242;
    st.started.t = 1;
    send_msg(h, &st);
    a.release.ref = kept;
    a.release.dropped = false;
    send_msg(h, &a);
    wait_state(s, (int)kept.task_id, "running");
    /* The third test is stolen in turn (it was not started), never the running one. */
    ws_expect(h, DRV_MSG_RELEASE, &r);
    assert_true(r.release.ref.task_id != kept.task_id && r.release.ref.task_id != moved.task_id);
    a.release.ref = r.release.ref;
    a.release.dropped = true;
    send_msg(h, &a);
    ws_expect(th, DRV_MSG_ASSIGN, &m);
    assert_int_equal(m.assign.tests[0].task_id, r.release.ref.task_id);
    finish(th, m.assign.tests[0].task_id, m.assign.tests[0].attempt, 0);
    drv_msg_free(&m);
    finish(h, kept.task_id, kept.attempt, 0);
    wait_state(s, (int)kept.task_id, "passed");
    char path[64];
    snprintf(path, sizeof path, "/api/v1/tests/%llu", (unsigned long long)kept.task_id);
    json_t *j = get_json(s, path);
    assert_int_equal(json_array_size(json_object_get(j, "attempts")), 1); /* ran once */
    json_decref(j);
    text = metrics_text(s);
    assert_non_null(strstr(text, "\ndrover_moves_dropped_total 1\n"));
    assert_non_null(strstr(text, "\ndrover_moves_pending 0\n"));
    free(text);
    close(th);
    close(h);
}

/* A holder that goes silent while a move of its test waits: the move is dropped and the
 * loss rule applies as to any test whose assign went out (it may have started there):
 * one of max_retries is used and the next attempt goes to the other worker. */
static void test_move_holder_lost(void **state)
{
    server *s = *state;
    steal_eagerly = true;
    server_start(s, 0.5, 10.0);
    steal_eagerly = false;
    submit(s,
           "[{\"name\":\"a\",\"argv\":[\"x\"],\"max_retries\":1},"
           "{\"name\":\"b\",\"argv\":[\"x\"],\"max_retries\":1}]",
           2);
    int h = worker_join(s, "holder", 1, NULL, 0);
    for (size_t n = 0; n < 2;) {
        drv_msg m;
        ws_expect(h, DRV_MSG_ASSIGN, &m);
        n += m.assign.count;
        drv_msg_free(&m);
    }
    int th = worker_join(s, "thief", 2, NULL, 0);
    drv_msg r;
    ws_expect(h, DRV_MSG_RELEASE, &r);
    uint64_t id = r.release.ref.task_id;
    /* No answer: the holder goes silent and is lost; the thief stays. */
    for (int i = 0; i < 12; i++) {
        heartbeat(th, NULL, 0);
        nap_ms(100);
    }
    char *text = metrics_text(s);
    assert_non_null(strstr(text, "\ndrover_moves_pending 0\n"));
    assert_non_null(strstr(text, "\ndrover_moves_dropped_total 1\n"));
    free(text);
    for (size_t n = 0; n < 2;) { /* both tests, each as its attempt 2 */
        drv_msg m;
        ws_expect(th, DRV_MSG_ASSIGN, &m);
        for (size_t i = 0; i < m.assign.count; i++, n++) {
            assert_int_equal(m.assign.tests[i].attempt, 2);
            finish(th, m.assign.tests[i].task_id, 2, 0);
        }
        drv_msg_free(&m);
    }
    wait_state(s, (int)id, "passed");
    char path[64];
    snprintf(path, sizeof path, "/api/v1/tests/%llu", (unsigned long long)id);
    json_t *j = get_json(s, path);
    json_t *first = json_array_get(json_object_get(j, "attempts"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "worker")), "holder");
    assert_non_null(first);
    json_decref(j);
    close(th);
    close(h);
}

/* Whether fd has a frame to read within ms milliseconds. */
static bool readable_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) > 0;
}

/* A worker restarted under its name while its tests' assigns were out (chaos_short, seed
 * 7): the new process holds none of them, but the old one may have started them. No
 * release may be asked of the new process before its hello is reconciled (its "dropped"
 * would say nothing of the old one); at its heartbeat each attempt is charged as a loss
 * (infra failure), never abandoned as "stolen" and run again for free. */
static void test_move_waits_for_a_restarted_holder(void **state)
{
    server *s = *state;
    steal_eagerly = true;
    server_start(s, 30.0, 10.0);
    steal_eagerly = false;
    submit(s,
           "[{\"name\":\"a\",\"argv\":[\"x\"],\"max_retries\":1},"
           "{\"name\":\"b\",\"argv\":[\"x\"],\"max_retries\":1}]",
           2);
    int h = worker_join_as(s, "holder", "aaaa", 1, NULL, 0);
    uint64_t ids[2];
    for (size_t n = 0; n < 2;) {
        drv_msg m;
        ws_expect(h, DRV_MSG_ASSIGN, &m);
        for (size_t i = 0; i < m.assign.count && n < 2; i++)
            ids[n++] = m.assign.tests[i].task_id;
        drv_msg_free(&m);
    }
    close(h); /* killed: it may have started either */
    nap_ms(100);
    h = worker_join_as(s, "holder", "bbbb", 1, NULL, 0); /* a new process, no heartbeat yet */
    int th = worker_join(s, "thief", 2, NULL, 0);
    /* Before the fix a release came here at once; answered as the new process truly
     * would ("not here"), the attempt moved uncharged. */
    unsigned releases = 0;
    while (readable_within(h, 500)) {
        drv_msg m;
        char *text = ws_recv(h);
        assert_non_null(text);
        drv_error err;
        assert_int_equal(drv_msg_decode(text, strlen(text), &m, &err), 0);
        free(text);
        if (m.type == DRV_MSG_RELEASE) {
            releases++;
            drv_msg a;
            drv_msg_init(&a, DRV_MSG_RELEASED);
            a.release.ref = m.release.ref;
            a.release.dropped = true;
            send_msg(h, &a);
        }
        drv_msg_free(&m);
    }
    assert_int_equal(releases, 0);
    heartbeat(h, NULL, 0); /* reconciled: neither is listed */
    for (size_t k = 0; k < 2; k++) {
        char path[64];
        snprintf(path, sizeof path, "/api/v1/tests/%llu", (unsigned long long)ids[k]);
        json_t *first = NULL, *j = NULL;
        for (int i = 0; i < 250; i++) {
            json_decref(j);
            j = get_json(s, path);
            first = json_array_get(json_object_get(j, "attempts"), 0);
            const char *st = json_string_value(json_object_get(first, "state"));
            if (st && strcmp(st, "assigned") != 0 && strcmp(st, "running") != 0)
                break;
            nap_ms(20);
        }
        assert_string_equal(json_string_value(json_object_get(first, "state")), "finished");
        assert_true(json_is_true(json_object_get(first, "infra_failure")));
        json_decref(j);
    }
    close(th);
    close(h);
}

/* The same worker process reconnecting, its queue dropped at the loss (fencing): what
 * it does not list is sent again at its heartbeat, and a move of such a test must not ask
 * for a release before that assign has left. A release sent first overtakes it: "not
 * here", the attempt is given up, and the assign that follows starts it anyway. So every
 * release on the new connection comes after the assign of its attempt, or none at all. */
static void test_release_never_overtakes_a_resent_assign(void **state)
{
    server *s = *state;
    steal_eagerly = true;
    server_start(s, 30.0, 10.0);
    steal_eagerly = false;
    submit(s,
           "[{\"name\":\"a\",\"argv\":[\"x\"],\"max_retries\":1},"
           "{\"name\":\"b\",\"argv\":[\"x\"],\"max_retries\":1},"
           "{\"name\":\"c\",\"argv\":[\"x\"],\"max_retries\":1}]",
           3);
    int h = worker_join_as(s, "holder", "aaaa", 1, NULL, 0);
    for (size_t n = 0; n < 3;) {
        drv_msg m;
        ws_expect(h, DRV_MSG_ASSIGN, &m);
        n += m.assign.count;
        drv_msg_free(&m);
    }
    close(h); /* the connection only: the process drops its queue and comes back */
    nap_ms(100);
    h = worker_join_as(s, "holder", "aaaa", 1, NULL, 0);
    int th = worker_join(s, "thief", 3, NULL, 0);
    heartbeat(h, NULL, 0); /* none listed: sent again, and the thief steals */
    drv_attempt_ref seen[16];
    size_t n_seen = 0;
    unsigned releases = 0;
    while (readable_within(h, 700)) {
        drv_msg m;
        char *text = ws_recv(h);
        assert_non_null(text);
        drv_error err;
        assert_int_equal(drv_msg_decode(text, strlen(text), &m, &err), 0);
        free(text);
        if (m.type == DRV_MSG_ASSIGN) {
            for (size_t i = 0; i < m.assign.count && n_seen < 16; i++)
                seen[n_seen++] =
                    (drv_attempt_ref){m.assign.tests[i].task_id, m.assign.tests[i].attempt};
        } else if (m.type == DRV_MSG_RELEASE) {
            releases++;
            bool assigned = false;
            for (size_t i = 0; i < n_seen; i++)
                assigned |= seen[i].task_id == m.release.ref.task_id &&
                            seen[i].attempt == m.release.ref.attempt;
            if (!assigned)
                fail_msg("release of test %llu attempt %u before its assign was sent again",
                         (unsigned long long)m.release.ref.task_id, m.release.ref.attempt);
            drv_msg a;
            drv_msg_init(&a, DRV_MSG_RELEASED);
            a.release.ref = m.release.ref;
            a.release.dropped = true;
            send_msg(h, &a);
        }
        drv_msg_free(&m);
    }
    /* The thief got work: the steal happened (this is not a test of nothing). */
    drv_msg m;
    ws_expect(th, DRV_MSG_ASSIGN, &m);
    assert_true(m.assign.count > 0);
    drv_msg_free(&m);
    (void)releases;
    close(th);
    close(h);
}

/* Durations learned before a restart are kept in the store: after it, the test known
 * to be long is placed before the short one submitted ahead of it. */
static void test_restart_keeps_learned_durations(void **state)
{
    server *s = *state;
    server_start(s, 30.0, 10.0);
    submit(s, "[{\"name\":\"short\",\"argv\":[\"x\"]},{\"name\":\"long\",\"argv\":[\"x\"]}]", 2);
    int w = worker_join(s, "w", 2, NULL, 0);
    for (size_t k = 0; k < 2;) {
        drv_msg m;
        ws_expect(w, DRV_MSG_ASSIGN, &m);
        for (size_t i = 0; i < m.assign.count; i++, k++) {
            drv_msg f;
            drv_msg_init(&f, DRV_MSG_FINISHED);
            f.finished.ref =
                (drv_attempt_ref){m.assign.tests[i].task_id, m.assign.tests[i].attempt};
            f.finished.has_exit_code = true;
            f.finished.duration_s = strcmp(m.assign.tests[i].name, "long") == 0 ? 120 : 0.5;
            send_msg(w, &f);
        }
        drv_msg_free(&m);
    }
    wait_state(s, 1, "passed");
    wait_state(s, 2, "passed");
    close(w);
    server_stop(s);

    server_start(s, 30.0, 10.0);
    submit(s, "[{\"name\":\"short\",\"argv\":[\"x\"]},{\"name\":\"long\",\"argv\":[\"x\"]}]", 2);
    w = worker_join(s, "w", 1, NULL, 0);
    drv_msg m;
    ws_expect(w, DRV_MSG_ASSIGN, &m);
    assert_string_equal(m.assign.tests[0].name, "long");
    drv_msg_free(&m);
    close(w);
}

/* The dashboard's live feed: nothing before the token, a wrong one closes it, the right
 * one gets a snapshot of status, workers and runs, and another each second. */
static void test_dashboard_feed(void **state)
{
    server *s = *state;
    server_start(s, 30.0, 10.0);
    submit(s, "[{\"name\":\"a\",\"argv\":[\"x\"]}]", 1);
    int w = worker_join(s, "feeder", 1, NULL, 0);

    int bad = ws_open_at(s, DRV_DASHBOARD_PATH, DRV_DASHBOARD_PROTOCOL);
    ws_send(bad, "{\"token\":\"nope\"}");
    char *text = ws_recv(bad); /* closed, or a close frame: no snapshot */
    assert_true(text == NULL || strstr(text, "snapshot") == NULL);
    free(text);
    close(bad);

    int d = ws_open_at(s, DRV_DASHBOARD_PATH, DRV_DASHBOARD_PROTOCOL);
    ws_send(d, "{\"token\":\"client-t\"}");
    for (int shot = 0; shot < 2; shot++) {
        text = ws_recv(d);
        assert_non_null(text);
        json_error_t jerr;
        json_t *m = json_loads(text, 0, &jerr);
        assert_non_null(m);
        assert_string_equal(json_string_value(json_object_get(m, "type")), "snapshot");
        json_t *status = json_object_get(m, "status");
        assert_int_equal(json_integer_value(json_object_get(status, "total")), 1);
        json_t *workers = json_object_get(json_object_get(m, "workers"), "workers");
        assert_string_equal(json_string_value(json_object_get(json_array_get(workers, 0), "name")),
                            "feeder");
        json_t *runs = json_object_get(json_object_get(m, "runs"), "runs");
        assert_int_equal(json_integer_value(json_object_get(json_array_get(runs, 0), "submitted")),
                         1);
        json_decref(m);
        free(text);
    }
    close(d);
    close(w);
}

/* The coordinator runs with the balancer's defaults, unchanged: a config file that sets
 * one key then changes only that key (no second set of defaults in coordinator.c). */
static void test_coordinator_uses_the_balancer_defaults(void **state)
{
    (void)state;
    drv_coordinator_options o;
    drv_coordinator_options_default(&o);
    drv_balancer_config want;
    drv_balancer_config_default(&want);
    assert_memory_equal(&o.balancer, &want, sizeof want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coordinator_uses_the_balancer_defaults),
        cmocka_unit_test_setup_teardown(test_dispatch_and_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lines_subprotocol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_adopts_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_reconciles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restarted_worker_never_reruns_an_attempt, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_quarantine_and_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quarantine_outlives_and_probe_clears, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_hands_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_waits_for_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_holder_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_waits_for_a_restarted_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_never_overtakes_a_resent_assign, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_restart_keeps_learned_durations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dashboard_feed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
