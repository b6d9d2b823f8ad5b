/* test_agent.c - the worker agent against a fake coordinator in this process: an lws
 * server on 127.0.0.1 (a port the kernel picks) on the same libuv loop as the agent,
 * speaking the protocol through drv_msg_decode/encode. Real child processes (sh and
 * coreutils only). Covers: the hello, results of real runs (exit codes, signal,
 * timeout, cancel, spawn failure), output streaming and coalescing, the output cap,
 * queueing beyond the slots, reconnecting with results kept, a refused hello, bad
 * frames, a large assign, ack-only mode, and both drains. */
#include <errno.h>
#include <libwebsockets.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <cmocka.h>

#include "protocol/protocol.h"
#include "worker/agent.h"

/* ---- the fake coordinator --------------------------------------------------------- */

typedef struct frame {
    unsigned char *buf; /* LWS_PRE + len */
    size_t len;
} frame;

typedef struct fake {
    uv_loop_t loop;
    uv_timer_t ticker; /* keeps UV_RUN_ONCE returning while a test waits */
    struct lws_context *ctx;
    int port;
    struct lws *wsi; /* the current connection */
    int connections; /* connections accepted so far */
    int closes;
    char path[256]; /* of the last connection */
    char subprotocol[64];
    const char *token;
    double hb_interval;
    bool reject;           /* refuse new TCP connections */
    bool drop;             /* close the connection at the next writable */
    bool drop_on_finished; /* close it as soon as a finished arrives (once) */
    frame *out;            /* frames to write on the current connection */
    size_t n_out, out_head, out_cap;
    bool close_after;
    unsigned char *rx;
    size_t rx_len, rx_cap;
    drv_msg *msgs; /* every frame the agent sent, decoded */
    int *msg_conn; /* on which connection (1, 2, ...) */
    size_t n_msgs, cap_msgs;
    int undecodable; /* frames from the agent that did not decode (a defect) */
    bool lines;      /* the connection took the lines subprotocol */
    int frames_in;   /* frames from the agent after its hello */
} fake;

/* The next fake serves only the plain subprotocol (as a coordinator that does not know
 * the lines one). */
static bool fake_plain_only;

/* Queues one frame of text for the agent. */
static void fake_send_raw(fake *f, const char *text, size_t len)
{
    if (f->n_out == f->out_cap) {
        f->out_cap = f->out_cap ? f->out_cap * 2 : 16;
        f->out = realloc(f->out, f->out_cap * sizeof *f->out);
    }
    frame *fr = &f->out[f->n_out++];
    fr->buf = malloc(LWS_PRE + len + 1);
    memcpy(fr->buf + LWS_PRE, text, len);
    fr->len = len;
    if (f->wsi)
        lws_callback_on_writable(f->wsi);
}

static void fake_send(fake *f, const drv_msg *m)
{
    size_t len = 0;
    char *text = drv_msg_encode(m, &len, NULL);
    assert_non_null(text);
    fake_send_raw(f, text, len);
    free(text);
}

static void fake_clear_out(fake *f)
{
    for (size_t i = f->out_head; i < f->n_out; i++)
        free(f->out[i].buf);
    f->n_out = f->out_head = 0;
}

static void fake_on_message(fake *f, const unsigned char *buf, size_t len)
{
    drv_msg m;
    drv_error err;
    if (drv_msg_decode((const char *)buf, len, &m, &err) < 0) {
        fprintf(stderr, "fake coordinator: undecodable frame: %s\n", err.msg);
        f->undecodable++;
        return;
    }
    if (f->n_msgs == f->cap_msgs) {
        f->cap_msgs = f->cap_msgs ? f->cap_msgs * 2 : 64;
        f->msgs = realloc(f->msgs, f->cap_msgs * sizeof *f->msgs);
        f->msg_conn = realloc(f->msg_conn, f->cap_msgs * sizeof *f->msg_conn);
    }
    f->msgs[f->n_msgs] = m;
    f->msg_conn[f->n_msgs++] = f->connections;
    if (m.type == DRV_MSG_FINISHED && f->drop_on_finished) {
        f->drop_on_finished = false;
        f->drop = true;
        lws_callback_on_writable(f->wsi);
    }
    if (m.type != DRV_MSG_HELLO)
        return;
    drv_msg r;
    if (strcmp(m.hello.token, f->token) != 0) {
        drv_msg_init(&r, DRV_MSG_ERROR);
        r.error.message = "bad worker token";
        r.error.field = "hello.token";
        fake_send(f, &r);
        f->close_after = true;
        return;
    }
    drv_msg_init(&r, DRV_MSG_WELCOME);
    r.welcome.worker_id = 42;
    r.welcome.heartbeat_interval_s = f->hb_interval;
    r.welcome.server_time = 1700000000.0;
    fake_send(f, &r);
}

/* One frame: one message, or on the lines subprotocol one per line. */
static void fake_on_frame(fake *f, const unsigned char *buf, size_t len)
{
    if (f->n_msgs > 0)
        f->frames_in++;
    const unsigned char *p = buf, *end = buf + len;
    while (p < end) {
        const unsigned char *nl = f->lines ? memchr(p, '\n', (size_t)(end - p)) : NULL;
        const unsigned char *e = nl ? nl : end;
        fake_on_message(f, p, (size_t)(e - p));
        p = nl ? nl + 1 : end;
    }
}

static int fake_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    fake *f = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return f->reject ? -1 : 0;
    case LWS_CALLBACK_ESTABLISHED:
        f->wsi = wsi;
        f->connections++;
        f->drop = f->close_after = false;
        f->rx_len = 0;
        fake_clear_out(f);
        lws_hdr_copy(wsi, f->path, sizeof f->path, WSI_TOKEN_GET_URI);
        lws_hdr_copy(wsi, f->subprotocol, sizeof f->subprotocol, WSI_TOKEN_PROTOCOL);
        f->lines = strcmp(lws_get_protocol(wsi)->name, DRV_PROTOCOL_SUBPROTOCOL_LINES) == 0;
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (f->rx_len + len > f->rx_cap) {
            f->rx_cap = (f->rx_len + len) * 2;
            f->rx = realloc(f->rx, f->rx_cap);
        }
        memcpy(f->rx + f->rx_len, in, len);
        f->rx_len += len;
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            fake_on_frame(f, f->rx, f->rx_len);
            f->rx_len = 0;
        }
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (wsi != f->wsi || f->drop)
            return -1;
        if (f->out_head < f->n_out) {
            frame *fr = &f->out[f->out_head++];
            int n = lws_write(wsi, fr->buf + LWS_PRE, fr->len, LWS_WRITE_TEXT);
            free(fr->buf);
            if (n < 0)
                return -1;
        }
        if (f->out_head < f->n_out)
            lws_callback_on_writable(wsi);
        else if (f->close_after)
            return -1;
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (wsi == f->wsi) {
            f->wsi = NULL;
            f->closes++;
            fake_clear_out(f);
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* The subprotocols a coordinator serves (plain_protocols: an older one). */
static const struct lws_protocols fake_protocols[] = {
    {"drover-worker", fake_cb, 0, 65536, 0, NULL, 0},
    {"drover-worker.lines", fake_cb, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};
static const struct lws_protocols plain_protocols[] = {
    {"drover-worker", fake_cb, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void fake_start(fake *f)
{
    memset(f, 0, sizeof *f);
    f->token = "s3cret";
    f->hb_interval = 0.05;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->ticker);
    uv_timer_start(&f->ticker, on_tick, 5, 5);
    void *loops[1] = {&f->loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = 0;
    info.iface = "127.0.0.1";
    info.protocols = fake_plain_only ? plain_protocols : fake_protocols;
    info.options = LWS_SERVER_OPTION_LIBUV;
    info.foreign_loops = loops;
    info.user = f;
    info.pcontext = &f->ctx; /* NULL once lws has wholly freed it */
    f->ctx = lws_create_context(&info);
    assert_non_null(f->ctx);
    f->port = lws_get_vhost_listen_port(lws_get_vhost_by_name(f->ctx, "default"));
    assert_true(f->port > 0);
}

/* Frees what the fake holds (the loop is closed by the caller). */
static void fake_free(fake *f)
{
    fake_clear_out(f);
    free(f->out);
    free(f->rx);
    for (size_t i = 0; i < f->n_msgs; i++)
        drv_msg_free(&f->msgs[i]);
    free(f->msgs);
    free(f->msg_conn);
}

/* Closes the current connection from the coordinator's side. */
static void fake_drop(fake *f)
{
    assert_non_null(f->wsi);
    f->drop = true;
    lws_callback_on_writable(f->wsi);
}

static size_t count_type(const fake *f, drv_msg_type type)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_msgs; i++)
        n += f->msgs[i].type == type;
    return n;
}

/* The index of the first message of type about task (any task when task is 0), or -1. */
static long find_msg(const fake *f, drv_msg_type type, uint64_t task)
{
    for (size_t i = 0; i < f->n_msgs; i++) {
        drv_attempt_ref ref;
        if (f->msgs[i].type != type)
            continue;
        if (task == 0 || (drv_msg_attempt(&f->msgs[i], &ref) && ref.task_id == task))
            return (long)i;
    }
    return -1;
}

static size_t count_about(const fake *f, drv_msg_type type, uint64_t task)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n_msgs; i++) {
        drv_attempt_ref ref;
        n += f->msgs[i].type == type && drv_msg_attempt(&f->msgs[i], &ref) && ref.task_id == task;
    }
    return n;
}

static const drv_msg_finished *finished_of(const fake *f, uint64_t task)
{
    long i = find_msg(f, DRV_MSG_FINISHED, task);
    assert_true(i >= 0);
    return &f->msgs[i].finished;
}

/* ---- building assigns -------------------------------------------------------------- */

typedef struct spec {
    uint64_t task;
    const char *argv[4];
    bool shell;
    double timeout_s;
    uint64_t cap;
} spec;

/* Sends one assign with n tests. */
static void send_assign(fake *f, const spec *s, size_t n)
{
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_ASSIGN);
    m.assign.count = n;
    m.assign.tests = calloc(n, sizeof *m.assign.tests);
    for (size_t i = 0; i < n; i++) {
        drv_msg_test *t = &m.assign.tests[i];
        t->task_id = s[i].task;
        t->attempt = 1;
        char name[32];
        snprintf(name, sizeof name, "test-%llu", (unsigned long long)s[i].task);
        t->name = strdup(name);
        size_t argc = 0;
        while (argc < 4 && s[i].argv[argc])
            argc++;
        t->argv = calloc(argc + 1, sizeof *t->argv);
        for (size_t k = 0; k < argc; k++)
            t->argv[k] = strdup(s[i].argv[k]);
        t->shell = s[i].shell;
        t->timeout_s = s[i].timeout_s;
        t->output_cap_bytes = s[i].cap;
    }
    fake_send(f, &m);
    drv_msg_free(&m);
}

static void send_cancel(fake *f, uint64_t task)
{
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_CANCEL);
    m.cancel.ref.task_id = task;
    m.cancel.ref.attempt = 1;
    fake_send(f, &m);
}

/* ---- the agent under test ----------------------------------------------------------- */

typedef struct agent_log {
    drv_agent **free_on_done; /* when set, the agent is freed inside its DONE event */
    int connected, disconnected, remote_errors, local_errors, drains, done;
    int done_status;
    char done_msg[512];
    char last_local[512];
} agent_log;

static void on_event(drv_agent *a, const drv_agent_event *ev, void *data)
{
    agent_log *l = data;
    switch (ev->kind) {
    case DRV_AGENT_EV_CONNECTED:
        l->connected++;
        break;
    case DRV_AGENT_EV_DISCONNECTED:
        l->disconnected++;
        break;
    case DRV_AGENT_EV_REMOTE_ERROR:
        l->remote_errors++;
        break;
    case DRV_AGENT_EV_LOCAL_ERROR:
        l->local_errors++;
        snprintf(l->last_local, sizeof l->last_local, "%s", ev->message);
        break;
    case DRV_AGENT_EV_DRAIN:
        l->drains++;
        break;
    case DRV_AGENT_EV_DONE:
        l->done++;
        l->done_status = ev->status;
        snprintf(l->done_msg, sizeof l->done_msg, "%s", ev->message ? ev->message : "");
        if (l->free_on_done) {
            drv_agent_free(a);
            *l->free_on_done = NULL;
        }
        break;
    }
}

typedef struct env {
    fake f;
    drv_agent_hub *hub;
    drv_agent *a;
    agent_log log;
    char url[64];
} env;

static char *caps_tags[] = {"cpu", "cuda", NULL};

/* Starts the fake and an agent with cfg (url, token, name, caps, events filled here
 * unless set) and waits for the welcome unless the token is expected to fail. */
static void env_start(env *e, drv_agent_config cfg, bool wait_connected)
{
    memset(e, 0, sizeof *e);
    fake_start(&e->f);
    snprintf(e->url, sizeof e->url, "ws://127.0.0.1:%d", e->f.port);
    static drv_msg_caps caps = {
        .cpu_cores = 2, .memory_mb = 1024, .tags = caps_tags, .os = "linux", .arch = "x86_64"};
    cfg.url = e->url;
    if (!cfg.token)
        cfg.token = "s3cret";
    if (!cfg.name)
        cfg.name = "agent-1";
    cfg.caps = &caps;
    if (!cfg.slots)
        cfg.slots = 2;
    if (!cfg.kill_grace_s)
        cfg.kill_grace_s = 0.2;
    if (!cfg.backoff_min_s)
        cfg.backoff_min_s = 0.02;
    if (!cfg.backoff_max_s)
        cfg.backoff_max_s = 0.1;
    cfg.on_event = on_event;
    cfg.data = &e->log;
    drv_error err = {{0}};
    e->hub = drv_agent_hub_new(&e->f.loop, NULL, &err);
    assert_non_null(e->hub);
    assert_int_equal(drv_agent_start(e->hub, &cfg, &e->a, &err), 0);
    if (wait_connected) {
        double end = (double)uv_hrtime() / 1e9 + 5;
        while (e->log.connected == 0 && (double)uv_hrtime() / 1e9 < end)
            uv_run(&e->f.loop, UV_RUN_ONCE);
        assert_int_equal(e->log.connected, 1);
    }
}

static void env_stop(env *e)
{
    drv_agent_free(e->a);
    drv_agent_hub_free(e->hub);
    lws_context_destroy(e->f.ctx);
    uv_close((uv_handle_t *)&e->f.ticker, NULL);
    uv_run(&e->f.loop, UV_RUN_DEFAULT);
    /* lws 4.1 with a foreign loop frees the context on a second call, once its handles
     * are closed. */
    lws_context_destroy(e->f.ctx);
    assert_null(e->f.ctx);
    assert_int_equal(uv_loop_close(&e->f.loop), 0); /* nothing left open */
    fake_free(&e->f);
}

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

/* Runs the loop until cond holds (fails the test after 8 s). */
#define WAIT_FOR(e, cond)                                                                          \
    do {                                                                                           \
        double end_ = now_s() + 8.0;                                                               \
        while (!(cond) && now_s() < end_)                                                          \
            uv_run(&(e)->f.loop, UV_RUN_ONCE);                                                     \
        assert_true(cond);                                                                         \
    } while (0)

/* Runs the loop for secs seconds. */
static void run_for(env *e, double secs)
{
    double end = now_s() + secs;
    while (now_s() < end)
        uv_run(&e->f.loop, UV_RUN_ONCE);
}

/* True when the hello at index i lists task (attempt 1) as running. */
static bool hello_lists(const fake *f, long i, uint64_t task)
{
    const drv_msg_hello *h = &f->msgs[i].hello;
    for (size_t k = 0; k < h->running_count; k++)
        if (h->running[k].task_id == task && h->running[k].attempt == 1)
            return true;
    return false;
}

/* The index of the n-th (from 0) message of type, or -1. */
static long nth_msg(const fake *f, drv_msg_type type, size_t n)
{
    for (size_t i = 0; i < f->n_msgs; i++)
        if (f->msgs[i].type == type && n-- == 0)
            return (long)i;
    return -1;
}

/* The output data of task concatenated in seq order (checked), into buf. */
static size_t output_of(const fake *f, uint64_t task, char *buf, size_t len, size_t *frames)
{
    size_t off = 0;
    uint64_t seq = 0;
    *frames = 0;
    for (size_t i = 0; i < f->n_msgs; i++) {
        const drv_msg *m = &f->msgs[i];
        if (m->type != DRV_MSG_OUTPUT || m->output.ref.task_id != task)
            continue;
        assert_int_equal(m->output.seq, seq++);
        size_t n = m->output.len < len - 1 - off ? m->output.len : len - 1 - off;
        memcpy(buf + off, m->output.data, n);
        off += n;
        (*frames)++;
    }
    buf[off] = '\0';
    return off;
}

/* ---- tests ------------------------------------------------------------------------------ */

static int setup_alarm(void **state)
{
    (void)state;
    alarm(30); /* a hung agent fails the test instead of hanging CTest */
    return 0;
}

static void test_parse_url(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        int ok;
        bool tls;
        const char *host;
        int port;
        const char *path;
    } rows[] = {
        {"ws://127.0.0.1:8080", 1, false, "127.0.0.1", 8080, "/ws/worker/v1"},
        {"ws://coord", 1, false, "coord", 80, "/ws/worker/v1"},
        {"wss://coord.example.com", 1, true, "coord.example.com", 443, "/ws/worker/v1"},
        {"http://h:9/", 1, false, "h", 9, "/ws/worker/v1"},
        {"https://h:8443/drover/", 1, true, "h", 8443, "/drover/ws/worker/v1"},
        {"ws://[::1]:7000", 1, false, "::1", 7000, "/ws/worker/v1"},
        {"", 0, false, NULL, 0, NULL},
        {"ftp://h:1", 0, false, NULL, 0, NULL},
        {"127.0.0.1:8080", 0, false, NULL, 0, NULL},
        {"ws://", 0, false, NULL, 0, NULL},
        {"ws://h:0", 0, false, NULL, 0, NULL},
        {"ws://h:65536", 0, false, NULL, 0, NULL},
        {"ws://h:80x", 0, false, NULL, 0, NULL},
        {"ws://h:", 0, false, NULL, 0, NULL},
        {"ws://h/x?y=1", 0, false, NULL, 0, NULL},
        {"ws://[::1", 0, false, NULL, 0, NULL},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_agent_url u;
        drv_error err = {{0}};
        int rc = drv_agent_parse_url(rows[i].url, &u, &err);
        if (!rows[i].ok) {
            if (rc != -1)
                fail_msg("\"%s\" should be refused", rows[i].url);
            assert_non_null(strstr(err.msg, "coordinator URL"));
            continue;
        }
        if (rc != 0)
            fail_msg("\"%s\": %s", rows[i].url, err.msg);
        assert_int_equal(u.tls, rows[i].tls);
        assert_string_equal(u.host, rows[i].host);
        assert_int_equal(u.port, rows[i].port);
        assert_string_equal(u.path, rows[i].path);
    }
}

static void test_hello_and_results(void **state)
{
    (void)state;
    env e;
    env_start(&e, (drv_agent_config){.slots = 2}, true);
    fake *f = &e.f;
    assert_string_equal(f->path, DRV_PROTOCOL_PATH);
    /* Offered best first; the coordinator here knows the lines variant. */
    assert_string_equal(f->subprotocol, "drover-worker.lines, drover-worker");
    assert_true(f->lines);
    assert_int_equal(f->msgs[0].type, DRV_MSG_HELLO);
    const drv_msg_hello *h = &f->msgs[0].hello;
    assert_string_equal(h->token, "s3cret");
    assert_string_equal(h->name, "agent-1");
    assert_int_equal(h->slots, 2);
    assert_int_equal(h->caps.cpu_cores, 2);
    assert_string_equal(h->caps.tags[1], "cuda"); /* a label offered as a tag */
    assert_int_equal(h->running_count, 0);

    spec s[] = {
        {.task = 1, .argv = {"true"}},
        {.task = 2, .argv = {DRV_SHELL_PATH, "-c", "exit 3"}, .shell = true},
        {.task = 3, .argv = {"sh", "-c", "printf hello-out; printf hello-err >&2"}},
        {.task = 4, .argv = {"/nonexistent/drover-test-program"}},
    };
    send_assign(f, s, 4);
    WAIT_FOR(&e, count_type(f, DRV_MSG_FINISHED) == 4);
    assert_true(finished_of(f, 1)->has_exit_code);
    assert_int_equal(finished_of(f, 1)->exit_code, 0);
    assert_int_equal(finished_of(f, 2)->exit_code, 3);
    assert_false(finished_of(f, 2)->infra_failure);
    assert_int_equal(finished_of(f, 3)->exit_code, 0);
    assert_non_null(strstr(finished_of(f, 3)->output_tail, "hello-out"));
    /* Whose fault: a missing program is the test's failure (127), not the machine's. */
    assert_false(finished_of(f, 4)->infra_failure);
    assert_int_equal(finished_of(f, 4)->exit_code, 127);
    assert_non_null(strstr(finished_of(f, 4)->output_tail, DRV_SPAWN_FAILED_PREFIX));
    assert_non_null(strstr(finished_of(f, 4)->output_tail, "drover-test-program"));
    for (uint64_t t = 1; t <= 3; t++) {
        long i = find_msg(f, DRV_MSG_STARTED, t);
        assert_true(i >= 0 && i < find_msg(f, DRV_MSG_FINISHED, t));
        assert_true(f->msgs[i].started.pid > 0);
    }
    assert_int_equal(count_about(f, DRV_MSG_STARTED, 4), 0); /* never spawned */

    /* Output of both streams reached the coordinator. */
    char out[256];
    size_t frames;
    output_of(f, 3, out, sizeof out, &frames);
    assert_non_null(strstr(out, "hello-out"));
    assert_non_null(strstr(out, "hello-err"));

    /* Heartbeats come at the welcome's interval. */
    WAIT_FOR(&e, count_type(f, DRV_MSG_HEARTBEAT) >= 2);
    const drv_msg_heartbeat *hb = &f->msgs[nth_msg(f, DRV_MSG_HEARTBEAT, 1)].heartbeat;
    assert_true(hb->free_slots <= 2);
    assert_int_equal(f->undecodable, 0);
    env_stop(&e);
}

static void test_output_coalesced_and_capped(void **state)
{
    (void)state;
    env e;
    env_start(&e, (drv_agent_config){.slots = 2}, true);
    fake *f = &e.f;
    spec s[] = {
        /* 40 lines, one every 10 ms: 40 reads, few frames. */
        {.task = 1,
         .argv = {"sh", "-c",
                  "i=0; while [ $i -lt 40 ]; do echo line$i; i=$((i+1)); sleep 0.01; done"}},
        /* 5000 bytes with a cap of 100. */
        {.task = 2,
         .argv = {"sh", "-c",
                  "i=0; while [ $i -lt 50 ]; do printf '%099d\\n' $i; i=$((i+1)); done"},
         .cap = 100},
    };
    send_assign(f, s, 2);
    WAIT_FOR(&e, count_type(f, DRV_MSG_FINISHED) == 2);
    static char out[16384];
    size_t frames = 0;
    output_of(f, 1, out, sizeof out, &frames);
    assert_non_null(strstr(out, "line0\nline1\n"));
    assert_non_null(strstr(out, "line38\nline39\n"));
    assert_true(frames >= 1);
    if (frames > 15)
        fail_msg("40 writes over about 0.4 s came in %zu frames: not coalesced", frames);

    size_t n = output_of(f, 2, out, sizeof out, &frames);
    assert_non_null(strstr(out, "output cap of 100 bytes reached"));
    assert_true(n < 300);
    const drv_msg_finished *fin = finished_of(f, 2);
    assert_int_equal(fin->exit_code, 0);
    assert_true(fin->output_tail_len <= 100 + 64);
    assert_non_null(strstr(fin->output_tail, "bytes of output dropped"));
    env_stop(&e);
}

static void test_timeout_and_cancel(void **state)
{
    (void)state;
    env e;
    env_start(&e, (drv_agent_config){.slots = 2}, true);
    fake *f = &e.f;
    spec s[] = {
        {.task = 1, .argv = {"sleep", "30"}, .timeout_s = 0.3},
        {.task = 2, .argv = {"sleep", "30"}},
    };
    double t0 = now_s();
    send_assign(f, s, 2);
    WAIT_FOR(&e, find_msg(f, DRV_MSG_STARTED, 2) >= 0);
    send_cancel(f, 2);
    WAIT_FOR(&e, count_type(f, DRV_MSG_FINISHED) == 2);
    assert_true(now_s() - t0 < 5);
    const drv_msg_finished *t1 = finished_of(f, 1), *t2 = finished_of(f, 2);
    assert_true(t1->timed_out);
    assert_true(t1->has_signal);
    assert_false(t2->timed_out);
    assert_true(t2->has_signal);
    assert_int_equal(t2->signal, SIGTERM);
    /* Both processes are gone. */
    for (uint64_t t = 1; t <= 2; t++) {
        int pid = (int)f->msgs[find_msg(f, DRV_MSG_STARTED, t)].started.pid;
        errno = 0;
        assert_int_equal(kill(pid, 0), -1);
        assert_int_equal(errno, ESRCH);
    }
    env_stop(&e);
}

static void test_queue_beyond_slots(void **state)
{
    (void)state;
    env e;
    env_start(&e, (drv_agent_config){.slots = 2}, true);
    fake *f = &e.f;
    spec s[6];
    for (int i = 0; i < 6; i++)
        s[i] = (spec){.task = (uint64_t)i + 1, .argv = {"sleep", "0.15"}};
    send_assign(f, s, 6);
    send_cancel(f, 6); /* still queued: dropped, never reported */
    WAIT_FOR(&e, count_type(f, DRV_MSG_FINISHED) == 5);
    run_for(&e, 0.3);
    assert_int_equal(count_about(f, DRV_MSG_STARTED, 6), 0);
    assert_int_equal(count_about(f, DRV_MSG_FINISHED, 6), 0);
    /* Never more than two at once; started in arrival order. */
    int live = 0, max_live = 0;
    uint64_t next = 1;
    for (size_t i = 0; i < f->n_msgs; i++) {
        if (f->msgs[i].type == DRV_MSG_STARTED) {
            assert_int_equal(f->msgs[i].started.ref.task_id, next++);
            live++;
        } else if (f->msgs[i].type == DRV_MSG_FINISHED) {
            live--;
        }
        max_live = live > max_live ? live : max_live;
    }
    assert_int_equal(max_live, 2);
    drv_agent_stats st;
    drv_agent_get_stats(e.a, &st);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.started, 5);
    env_stop(&e);
}

static void test_reconnect_keeps_results(void **state)
{
    (void)state;
    env e;
    env_start(&e, (drv_agent_config){.slots = 1}, true);
    fake *f = &e.f;
    spec s[] = {{.task = 1, .argv = {"sh", "-c", "sleep 1; exit 7"}}};
    send_assign(f, s, 1);
    WAIT_FOR(&e, find_msg(f, DRV_MSG_STARTED, 1) >= 0);

    /* Dropped while the test runs: the new hello lists it. */
    fake_drop(f);
    WAIT_FOR(&e, f->connections == 2 && e.log.connected == 2);
    long h2 = nth_msg(f, DRV_MSG_HELLO, 1);
    assert_true(h2 >= 0);
    assert_true(hello_lists(f, h2, 1));

    /* Dropped and refused until the test is over: the result waits in the outbox. */
    f->reject = true;
    fake_drop(f);
    drv_agent_stats st;
    WAIT_FOR(&e, (drv_agent_get_stats(e.a, &st), st.outbox_finished == 1));
    assert_int_equal(count_type(f, DRV_MSG_FINISHED), 0);
    f->reject = false;
    WAIT_FOR(&e, count_type(f, DRV_MSG_FINISHED) == 1);
    long h3 = nth_msg(f, DRV_MSG_HELLO, 2);
    assert_true(h3 >= 0);
    assert_true(hello_lists(f, h3, 1)); /* finished but not delivered is still held */
    long fi = find_msg(f, DRV_MSG_FINISHED, 1);
    assert_int_equal(f->msg_conn[fi], f->connections);
    assert_int_equal(f->msgs[fi].finished.exit_code, 7);
    assert_true(e.log.disconnected >= 2);
    run_for(&e, 0.2);
    assert_int_equal(count_type(f, DRV_MSG_FINISHED), 1);
    env_stop(&e);
}

/* A finished written just before the connection broke may not have arrived: it is sent
 * again after the reconnect (the coordinator ignores a second one). */
static void test_result_resent_after_break(void **state)
{
    (void)state;
    env e;
    env_start(&e, (drv_agent_config){.slots = 1}, true);
    fake *f = &e.f;
    f->drop_on_finished = true;
    spec s[] = {{.task = 1, .argv = {"sh", "-c", "exit 5"}}};
    send_assign(f, s, 1);
    WAIT_FOR(&e, f->connections == 2 && count_type(f, DRV_MSG_FINISHED) == 2);
    long second = nth_msg(f, DRV_MSG_FINISHED, 1);
    assert_int_equal(f->msg_conn[second], 2);
    assert_int_equal(f->msgs[second].finished.exit_code, 5);
    assert_true(hello_lists(f, nth_msg(f, DRV_MSG_HELLO, 1), 1));
    drv_agent_stats st;
    drv_agent_get_stats(e.a, &st);
    assert_int_equal(st.resent, 1);
    env_stop(&e);
}

static void test_bad_token_stops(void **state)
{
    (void)state;
    env e;
    env_start(&e, (drv_agent_config){.token = "wrong"}, false);
    fake *f = &e.f;
    WAIT_FOR(&e, e.log.done == 1);
    assert_int_equal(e.log.done_status, 1);
    assert_non_null(strstr(e.log.done_msg, "coordinator refused hello: bad worker token"));
    assert_true(drv_agent_is_done(e.a));
    run_for(&e, 0.3);
    assert_int_equal(f->connections, 1); /* no retry with a refused token */
    assert_int_equal(e.log.connected, 0);
    env_stop(&e);
}

static void test_bad_frames_answered(void **state)
{
    (void)state;
    env e;
    env_start(&e, (drv_agent_config){.slots = 4}, true);
    fake *f = &e.f;
    static const char *bad[] = {
        "not json",
        "{\"type\": \"hellp\", \"v\": 1}",
        "{\"type\": \"started\", \"v\": 1, \"task_id\": 1, \"attempt\": 1, \"pid\": 5, \"t\": 1}",
    };
    for (size_t i = 0; i < 3; i++)
        fake_send_raw(f, bad[i], strlen(bad[i]));
    WAIT_FOR(&e, count_type(f, DRV_MSG_ERROR) == 3);
    assert_non_null(strstr(f->msgs[nth_msg(f, DRV_MSG_ERROR, 1)].error.message, "hellp"));
    assert_non_null(strstr(f->msgs[nth_msg(f, DRV_MSG_ERROR, 2)].error.message, "started"));
    assert_int_equal(e.log.local_errors, 3);

    /* Still serving, and a large assign (about 4 MiB) is taken whole. */
    static char big[100 * 1024 + 1];
    memset(big, 'x', sizeof big - 1);
    spec s[40];
    for (int i = 0; i < 40; i++)
        s[i] = (spec){.task = (uint64_t)i + 1, .argv = {"true", big}};
    send_assign(f, s, 40);
    WAIT_FOR(&e, count_type(f, DRV_MSG_FINISHED) == 40);
    for (uint64_t t = 1; t <= 40; t++)
        assert_int_equal(finished_of(f, t)->exit_code, 0);
    assert_int_equal(f->connections, 1);
    env_stop(&e);
}

static void test_ack_only(void **state)
{
    (void)state;
    env e;
    env_start(&e, (drv_agent_config){.slots = 1, .ack_only = true}, true);
    fake *f = &e.f;
    enum { N = 3000 };
    static spec s[N];
    for (int i = 0; i < N; i++)
        s[i] = (spec){.task = (uint64_t)i + 1, .argv = {"false"}}; /* would fail if run */
    double t0 = now_s();
    for (int k = 0; k < N; k += 1000)
        send_assign(f, s + k, 1000);
    WAIT_FOR(&e, count_type(f, DRV_MSG_FINISHED) == N);
    double dt = now_s() - t0;
    print_message(
        "ack-only: %d finished in %.0f ms (%.0f/s, one process, debug build may be slow)\n", N,
        dt * 1e3, N / dt);
    assert_int_equal(count_type(f, DRV_MSG_STARTED), 0);
    for (size_t i = 0; i < f->n_msgs; i++) {
        if (f->msgs[i].type != DRV_MSG_FINISHED)
            continue;
        assert_true(f->msgs[i].finished.has_exit_code);
        assert_int_equal(f->msgs[i].finished.exit_code, 0);
        /* About a microsecond: short, but learnable (a duration of 0 is not learned). */
        assert_true(f->msgs[i].finished.duration_s > 0 && f->msgs[i].finished.duration_s < 1e-3);
    }
    assert_int_equal(finished_of(f, N)->ref.task_id, N);
    /* Many results per frame on the lines subprotocol (one each on the plain one). */
    print_message("ack-only: %zu messages in %d frames\n", f->n_msgs - 1, f->frames_in);
    if (f->lines)
        assert_true((size_t)f->frames_in * 10 < f->n_msgs);
    else
        assert_int_equal((size_t)f->frames_in, f->n_msgs - 1);
    env_stop(&e);
}

/* A coordinator that serves only the plain subprotocol gets one message per frame. */
static void test_ack_only_plain_subprotocol(void **state)
{
    fake_plain_only = true;
    test_ack_only(state);
    fake_plain_only = false;
}

static void test_coordinator_drain(void **state)
{
    (void)state;
    env e;
    env_start(&e, (drv_agent_config){.slots = 1}, true);
    e.log.free_on_done = &e.a; /* the CLI's pattern for many agents: free in the event */
    fake *f = &e.f;
    spec s[] = {{.task = 1, .argv = {"sleep", "0.2"}}, {.task = 2, .argv = {"sleep", "0.2"}}};
    send_assign(f, s, 2);
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_DRAIN);
    m.drain.reason = "maintenance";
    fake_send(f, &m);
    spec late[] = {{.task = 3, .argv = {"true"}}};
    send_assign(f, late, 1);
    WAIT_FOR(&e, e.log.done == 1);
    assert_null(e.a);
    assert_int_equal(e.log.done_status, 0);
    assert_int_equal(e.log.drains, 1);
    assert_int_equal(finished_of(f, 1)->exit_code, 0);
    assert_int_equal(finished_of(f, 2)->exit_code, 0); /* the queued one ran too */
    assert_int_equal(count_about(f, DRV_MSG_STARTED, 3), 0);
    long err = find_msg(f, DRV_MSG_ERROR, 0);
    assert_true(err >= 0);
    assert_string_equal(f->msgs[err].error.field, "assign");
    assert_non_null(strstr(f->msgs[err].error.message, "3/1"));
    WAIT_FOR(&e, f->wsi == NULL); /* the agent closed the connection */
    env_stop(&e);
}

static void test_worker_drain(void **state)
{
    (void)state;
    env e;
    env_start(&e, (drv_agent_config){.slots = 1, .drain_timeout_s = 0.4}, true);
    fake *f = &e.f;
    spec s[] = {{.task = 1, .argv = {"sleep", "30"}}, {.task = 2, .argv = {"true"}}};
    send_assign(f, s, 2);
    WAIT_FOR(&e, find_msg(f, DRV_MSG_STARTED, 1) >= 0);
    double t0 = now_s();
    drv_agent_drain(e.a, "unit test");
    spec late[] = {{.task = 3, .argv = {"true"}}};
    send_assign(f, late, 1);
    WAIT_FOR(&e, e.log.done == 1);
    assert_true(now_s() - t0 < 3);
    assert_int_equal(e.log.done_status, 0);
    long d = find_msg(f, DRV_MSG_DRAIN, 0);
    assert_true(d >= 0);
    assert_string_equal(f->msgs[d].drain.reason, "unit test");
    /* It keeps the running test 1 and nothing else: 2 (queued, dropped) goes back. */
    assert_true(f->msgs[d].drain.has_keeps);
    assert_int_equal(f->msgs[d].drain.keeps_count, 1);
    assert_true(f->msgs[d].drain.keeps[0].task_id == 1);
    assert_int_equal(f->msgs[d].drain.keeps[0].attempt, 1);
    /* Killed at the drain timeout: not the test's failure, an infra one. */
    assert_true(finished_of(f, 1)->infra_failure);
    assert_false(finished_of(f, 1)->has_signal);
    assert_non_null(strstr(finished_of(f, 1)->error, "drain timeout"));
    assert_int_equal(count_about(f, DRV_MSG_STARTED, 2), 0); /* queued: dropped */
    assert_int_equal(count_about(f, DRV_MSG_FINISHED, 2), 0);
    assert_int_equal(count_about(f, DRV_MSG_STARTED, 3), 0); /* refused */
    assert_true(find_msg(f, DRV_MSG_ERROR, 0) >= 0);
    env_stop(&e);
}

/* A second signal: the drain turns into a stop now. */
static void test_abort_stops_now(void **state)
{
    (void)state;
    env e;
    env_start(&e, (drv_agent_config){.slots = 1}, true);
    fake *f = &e.f;
    spec s[] = {{.task = 1, .argv = {"sleep", "30"}}};
    send_assign(f, s, 1);
    WAIT_FOR(&e, find_msg(f, DRV_MSG_STARTED, 1) >= 0);
    double t0 = now_s();
    drv_agent_drain(e.a, NULL); /* default timeout: 30 s */
    run_for(&e, 0.1);
    assert_int_equal(e.log.done, 0);
    drv_agent_abort(e.a);
    WAIT_FOR(&e, e.log.done == 1);
    assert_true(now_s() - t0 < 2);
    assert_int_equal(e.log.done_status, 0);
    assert_true(finished_of(f, 1)->infra_failure);
    assert_non_null(strstr(finished_of(f, 1)->error, "killed"));
    env_stop(&e);
}

static void test_start_refuses_bad_config(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    drv_error err = {{0}};
    drv_agent_hub *hub = drv_agent_hub_new(&loop, NULL, &err);
    assert_non_null(hub);
    drv_msg_caps caps = {.cpu_cores = 1, .memory_mb = 1};
    drv_agent *a = NULL;
    drv_agent_config ok = {
        .url = "ws://127.0.0.1:1", .token = "t", .name = "n", .caps = &caps, .slots = 1};
    drv_agent_config c = ok;
    c.url = "ftp://x";
    assert_int_equal(drv_agent_start(hub, &c, &a, &err), -1);
    assert_non_null(strstr(err.msg, "ftp://x"));
    c = ok;
    c.token = "";
    assert_int_equal(drv_agent_start(hub, &c, &a, &err), -1);
    assert_non_null(strstr(err.msg, "token"));
    c = ok;
    c.name = "";
    assert_int_equal(drv_agent_start(hub, &c, &a, &err), -1);
    assert_non_null(strstr(err.msg, "name"));
    c = ok;
    c.slots = 0;
    assert_int_equal(drv_agent_start(hub, &c, &a, &err), -1);
    assert_non_null(strstr(err.msg, "slots"));
    assert_null(a);
    drv_agent_hub_free(hub);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- the GPU query runs off the loop ---------------------------------------------- */

typedef struct fake_smi {
    char dir[64];
    char *old_path;
} fake_smi;

/* Puts a fake nvidia-smi first on $PATH: it sleeps `delay` seconds, then answers one GPU
 * at 199 C with a thermal slowdown (0x40). */
static void fake_smi_install(fake_smi *s, const char *delay)
{
    snprintf(s->dir, sizeof s->dir, "/tmp/drover-test-smi-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    char path[128];
    snprintf(path, sizeof path, "%s/nvidia-smi", s->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\nsleep %s\necho '199, 0x0000000000000040'\n", delay);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
    const char *old = getenv("PATH");
    s->old_path = strdup(old ? old : "/usr/bin:/bin");
    char *path_var = malloc(strlen(s->dir) + strlen(s->old_path) + 2);
    sprintf(path_var, "%s:%s", s->dir, s->old_path);
    setenv("PATH", path_var, 1);
    free(path_var);
}

static void fake_smi_remove(fake_smi *s)
{
    setenv("PATH", s->old_path, 1);
    free(s->old_path);
    char path[128];
    snprintf(path, sizeof path, "%s/nvidia-smi", s->dir);
    unlink(path);
    rmdir(s->dir);
}

static bool hb_has_gpu_answer(const fake *f)
{
    for (size_t i = 0; i < f->n_msgs; i++)
        if (f->msgs[i].type == DRV_MSG_HEARTBEAT && f->msgs[i].heartbeat.temperature_c == 199 &&
            f->msgs[i].heartbeat.throttled)
            return true;
    return false;
}

/* An nvidia-smi that takes 1.5 s to answer does not stop the loop: heartbeats keep
 * coming at the welcome's interval (0.05 s) while it runs, each with the last answer
 * (none yet), and once it answers the next heartbeats carry its temperature and
 * throttling. Run synchronously, the first heartbeat would have held the loop for
 * 1.5 s. */
static void test_gpu_query_does_not_block(void **state)
{
    (void)state;
    fake_smi smi;
    fake_smi_install(&smi, "1.5");
    env e;
    env_start(&e, (drv_agent_config){.measure_gpus = true}, true);
    run_for(&e, 1.0);
    assert_true(count_type(&e.f, DRV_MSG_HEARTBEAT) >= 5);
    assert_false(hb_has_gpu_answer(&e.f));
    WAIT_FOR(&e, hb_has_gpu_answer(&e.f));
    env_stop(&e);
    fake_smi_remove(&smi);
}

/* An agent freed while its query runs kills the query and closes everything
 * (env_stop asserts the loop has nothing left open). */
static void test_gpu_query_dropped_at_free(void **state)
{
    (void)state;
    fake_smi smi;
    fake_smi_install(&smi, "20");
    env e;
    env_start(&e, (drv_agent_config){.measure_gpus = true}, true);
    WAIT_FOR(&e, count_type(&e.f, DRV_MSG_HEARTBEAT) >= 2);
    double t0 = now_s();
    env_stop(&e);
    /* Not its 10 s timeout: the query was killed, not waited for. */
    assert_true(now_s() - t0 < 8.0);
    fake_smi_remove(&smi);
}

int main(void)
{
    lws_set_log_level(0, NULL);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_url),
        cmocka_unit_test_setup(test_start_refuses_bad_config, setup_alarm),
        cmocka_unit_test_setup(test_hello_and_results, setup_alarm),
        cmocka_unit_test_setup(test_output_coalesced_and_capped, setup_alarm),
        cmocka_unit_test_setup(test_timeout_and_cancel, setup_alarm),
        cmocka_unit_test_setup(test_queue_beyond_slots, setup_alarm),
        cmocka_unit_test_setup(test_reconnect_keeps_results, setup_alarm),
        cmocka_unit_test_setup(test_result_resent_after_break, setup_alarm),
        cmocka_unit_test_setup(test_bad_token_stops, setup_alarm),
        cmocka_unit_test_setup(test_bad_frames_answered, setup_alarm),
        cmocka_unit_test_setup(test_ack_only, setup_alarm),
        cmocka_unit_test_setup(test_ack_only_plain_subprotocol, setup_alarm),
        cmocka_unit_test_setup(test_coordinator_drain, setup_alarm),
        cmocka_unit_test_setup(test_worker_drain, setup_alarm),
        cmocka_unit_test_setup(test_abort_stops_now, setup_alarm),
        cmocka_unit_test_setup(test_gpu_query_does_not_block, setup_alarm),
        cmocka_unit_test_setup(test_gpu_query_dropped_at_free, setup_alarm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
