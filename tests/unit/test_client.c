/* test_client.c - the client side of the REST API: the JUnit and JSON reports of a run,
 * the test built from `drover submit` flags, a bad submission refused before anything
 * is sent, and the HTTP client against a canned HTTP server on 127.0.0.1 (a thread of
 * this process answering with fixed responses and recording each request): a 201 read,
 * a 400's message surfaced, a 401 explained, a refused connection explained, the bearer
 * token and the query sent, one connection kept for several requests. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "client/client.h"

/* Asserts that haystack contains needle, printing both when it does not. */
static void assert_contains(const char *haystack, const char *needle)
{
    if (!haystack || !strstr(haystack, needle)) {
        print_error("expected \"%s\" in \"%s\"\n", needle, haystack ? haystack : "(null)");
        fail();
    }
}

static int setup_alarm(void **state)
{
    (void)state;
    alarm(20); /* a hung request fails the test instead of hanging CTest */
    return 0;
}

/* ---- a canned HTTP server ------------------------------------------------------------ */

#define EXCHANGES_MAX 8

/* A server thread on 127.0.0.1: the n-th request it reads gets responses[n] (500 when
 * there is none). Everything below lock is shared with the thread. */
typedef struct canned {
    pthread_t thread;
    int listen_fd, stop[2], port;
    pthread_mutex_t lock;
    char *responses[EXCHANGES_MAX]; /* whole HTTP responses; owned */
    size_t n_responses;
    char *requests[EXCHANGES_MAX]; /* head and body of each request read; owned */
    size_t n_requests;
    int connections; /* accepted */
} canned;

/* Queues the response to the next request: status, a JSON body, keep-alive. */
static void canned_add(canned *s, int status, const char *reason, const char *body)
{
    size_t n = strlen(body) + 256;
    char *r = malloc(n);
    snprintf(r, n,
             "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             status, reason, strlen(body), body);
    pthread_mutex_lock(&s->lock);
    assert_true(s->n_responses < EXCHANGES_MAX);
    s->responses[s->n_responses++] = r;
    pthread_mutex_unlock(&s->lock);
}

/* The length of the body announced in a request head (0 without Content-Length). */
static size_t content_length(const char *head)
{
    static const char name[] = "\r\ncontent-length:";
    for (const char *p = head; *p; p++) {
        size_t k = 0;
        while (name[k] && p[k] && tolower((unsigned char)p[k]) == name[k])
            k++;
        if (!name[k])
            return (size_t)strtoul(p + k, NULL, 10);
    }
    return 0;
}

/* Writes all n bytes of buf to fd. */
static void write_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, buf, n);
        if (k <= 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        buf += k, n -= (size_t)k;
    }
}

/* The server thread: one connection at a time (a new one replaces the old), requests
 * answered in order, until a byte arrives on the stop pipe. */
static void *canned_serve(void *arg)
{
    canned *s = arg;
    int conn = -1;
    size_t cap = 1 << 17, have = 0;
    char *buf = malloc(cap); /* freed at the end */
    for (;;) {
        struct pollfd p[3] = {
            {s->stop[0], POLLIN, 0}, {s->listen_fd, POLLIN, 0}, {conn, POLLIN, 0}};
        if (poll(p, conn >= 0 ? 3 : 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents)
            break;
        if (p[1].revents & POLLIN) {
            int fd = accept(s->listen_fd, NULL, NULL);
            if (fd >= 0) {
                if (conn >= 0)
                    close(conn);
                conn = fd;
                have = 0;
                pthread_mutex_lock(&s->lock);
                s->connections++;
                pthread_mutex_unlock(&s->lock);
            }
            continue;
        }
        if (conn < 0 || !p[2].revents)
            continue;
        ssize_t k = read(conn, buf + have, cap - 1 - have);
        if (k <= 0) {
            close(conn);
            conn = -1;
            have = 0;
            continue;
        }
        have += (size_t)k;
        buf[have] = '\0';
        for (;;) { /* every complete request in the buffer */
            char *end = strstr(buf, "\r\n\r\n");
            if (!end)
                break;
            size_t head = (size_t)(end + 4 - buf), total = head + content_length(buf);
            if (have < total)
                break;
            char *req = malloc(total + 1);
            memcpy(req, buf, total);
            req[total] = '\0';
            pthread_mutex_lock(&s->lock);
            const char *resp = s->n_requests < s->n_responses ? s->responses[s->n_requests] : NULL;
            if (s->n_requests < EXCHANGES_MAX)
                s->requests[s->n_requests++] = req;
            else
                free(req);
            pthread_mutex_unlock(&s->lock);
            const char *fallback = "HTTP/1.1 500 No canned response\r\nContent-Length: 0\r\n\r\n";
            write_all(conn, resp ? resp : fallback, strlen(resp ? resp : fallback));
            memmove(buf, buf + total, have - total + 1);
            have -= total;
        }
    }
    if (conn >= 0)
        close(conn);
    free(buf);
    return NULL;
}

/* Starts a server on 127.0.0.1 on a free port. */
static canned *canned_start(void)
{
    canned *s = calloc(1, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->listen_fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->listen_fd, 8), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pipe(s->stop), 0);
    assert_int_equal(pthread_create(&s->thread, NULL, canned_serve, s), 0);
    return s;
}

/* Stops the thread and frees everything. */
static void canned_stop(canned *s)
{
    write_all(s->stop[1], "x", 1);
    pthread_join(s->thread, NULL);
    close(s->stop[0]);
    close(s->stop[1]);
    close(s->listen_fd);
    for (size_t i = 0; i < s->n_responses; i++)
        free(s->responses[i]);
    for (size_t i = 0; i < s->n_requests; i++)
        free(s->requests[i]);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* A copy of the i-th request read (NULL when there is none); the caller frees it. */
static char *canned_request(canned *s, size_t i)
{
    pthread_mutex_lock(&s->lock);
    char *r = i < s->n_requests ? strdup(s->requests[i]) : NULL;
    pthread_mutex_unlock(&s->lock);
    return r;
}

static size_t canned_count(canned *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->n_requests;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static int setup_server(void **state)
{
    setup_alarm(state);
    *state = canned_start();
    return 0;
}

static int teardown_server(void **state)
{
    canned_stop(*state);
    return 0;
}

/* A client for the canned server, with token (NULL: none; DROVER_TOKEN is cleared). */
static drv_client *client_for(const canned *s, const char *token)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", s->port);
    unsetenv("DROVER_TOKEN");
    drv_client_options opt = {.url = url, .token = token, .request_timeout_s = 5};
    drv_error err = {{0}};
    drv_client *c = drv_client_open(&opt, &err);
    if (!c) {
        print_error("drv_client_open: %s\n", err.msg);
        fail();
    }
    return c;
}

/* ---- HTTP client ------------------------------------------------------------------- */

static void test_submit_201_parsed_with_token_and_run_name(void **state)
{
    canned *s = *state;
    canned_add(s, 201, "Created", "{\"run_id\": 4, \"count\": 2, \"ids\": [101, 102]}");
    drv_client *c = client_for(s, "s3cret");
    const char *body = "{\"name\": \"a\", \"argv\": [\"true\"]}\n"
                       "{\"name\": \"b\", \"argv\": [\"false\"]}\n";
    drv_submit_result r;
    drv_error err = {{0}};
    assert_int_equal(drv_client_submit(c, body, strlen(body), "suite.jsonl", "night ly", &r, &err),
                     0);
    assert_int_equal(r.run_id, 4);
    assert_int_equal(r.count, 2);
    assert_int_equal(drv_client_status(c), 201);
    char *req = canned_request(s, 0);
    assert_non_null(req);
    assert_contains(req, "POST /api/v1/tests?run=night%20ly HTTP/1.1\r\n");
    assert_contains(req, "\r\nAuthorization: Bearer s3cret\r\n");
    assert_contains(req, "\r\nContent-Type: application/json\r\n");
    assert_contains(req, body); /* sent as given */
    free(req);
    drv_client_close(c);
}

static void test_400_message_surfaced(void **state)
{
    canned *s = *state;
    canned_add(s, 400, "Bad Request",
               "{\"error\": \"tests[0].priority: must be an integer 0..1000, got 5000\", "
               "\"field\": \"tests[0].priority\"}");
    drv_client *c = client_for(s, NULL);
    drv_error err = {{0}};
    json_t *body = json_pack("{s:s}", "name", "x");
    json_t *ans = drv_client_post(c, "/api/v1/tests", body, &err);
    json_decref(body);
    assert_null(ans);
    assert_int_equal(drv_client_status(c), 400);
    assert_string_equal(err.msg, "coordinator answered 400: tests[0].priority: must be an integer "
                                 "0..1000, got 5000");
    /* Without a token no Authorization header is sent. */
    char *req = canned_request(s, 0);
    assert_null(strstr(req, "Authorization"));
    free(req);
    drv_client_close(c);
}

static void test_401_explained(void **state)
{
    canned *s = *state;
    canned_add(s, 401, "Unauthorized", "{\"error\": \"missing or wrong client token\"}");
    canned_add(s, 401, "Unauthorized", "{\"error\": \"missing or wrong client token\"}");
    drv_client *c = client_for(s, "wrong");
    drv_error err = {{0}};
    assert_null(drv_client_get(c, "/api/v1/status", &err));
    assert_string_equal(err.msg, "coordinator refused the token (401): missing or wrong client "
                                 "token");
    drv_client_close(c);
    c = client_for(s, NULL);
    assert_null(drv_client_get(c, "/api/v1/status", &err));
    assert_contains(err.msg, "coordinator needs a token (401): missing or wrong client token");
    assert_contains(err.msg, "--token or set DROVER_TOKEN");
    drv_client_close(c);
}

static void test_refused_connection_explained(void **state)
{
    (void)state;
    /* A port nobody listens on: bound, then closed. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    char url[64], want[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(a.sin_port));
    snprintf(want, sizeof want,
             "cannot reach the coordinator at http://127.0.0.1:%d: Connection refused (is "
             "`drover coordinator` running?)",
             ntohs(a.sin_port));
    drv_client_options opt = {.url = url};
    drv_error err = {{0}};
    drv_client *c = drv_client_open(&opt, &err);
    assert_non_null(c);
    uint64_t run = 0;
    assert_int_equal(drv_client_latest_run(c, &run, &err), -1);
    assert_string_equal(err.msg, want);
    assert_int_equal(drv_client_status(c), 0);
    drv_client_close(c);
}

static void test_bad_url_and_token_refused(void **state)
{
    (void)state;
    drv_error err = {{0}};
    drv_client_options opt = {.url = "127.0.0.1:7070"};
    assert_null(drv_client_open(&opt, &err));
    assert_contains(err.msg, "expected http://HOST:PORT");
    drv_client_options empty_host = {.url = "http://"};
    assert_null(drv_client_open(&empty_host, &err));
    assert_contains(err.msg, "expected http://HOST:PORT");
    /* A worker's ws:// URL names the same coordinator. */
    drv_client_options ws = {.url = "ws://127.0.0.1:7070/"};
    drv_client *c = drv_client_open(&ws, &err);
    assert_non_null(c);
    assert_string_equal(drv_client_url(c), "http://127.0.0.1:7070");
    drv_client_close(c);
    drv_client_options opt2 = {.url = "http://127.0.0.1:1", .token = "a\r\nX-Evil: 1"};
    assert_null(drv_client_open(&opt2, &err));
    assert_contains(err.msg, "control character");
}

static void test_one_connection_for_many_requests(void **state)
{
    canned *s = *state;
    canned_add(s, 200, "OK", "{\"runs\": [{\"id\": 9}]}");
    canned_add(s, 200, "OK", "{\"tests\": [{\"id\": 1, \"state\": \"failed\"}, {\"id\": 2}]}");
    canned_add(s, 200, "OK", "not json");
    drv_client *c = client_for(s, NULL);
    drv_error err = {{0}};
    uint64_t run = 0;
    assert_int_equal(drv_client_latest_run(c, &run, &err), 0);
    assert_int_equal(run, 9);
    json_t *tests = drv_client_run_tests(c, 9, "failed", 2, &err);
    assert_non_null(tests);
    assert_int_equal(json_array_size(tests), 2);
    json_decref(tests);
    assert_null(drv_client_get(c, "/api/v1/status", &err));
    assert_contains(err.msg, "with a body that is not JSON");
    char *r0 = canned_request(s, 0), *r1 = canned_request(s, 1);
    assert_contains(r0, "GET /api/v1/runs?limit=1 HTTP/1.1\r\n");
    assert_contains(r1, "GET /api/v1/tests?run=9&state=failed&limit=2&offset=0 HTTP/1.1\r\n");
    free(r0);
    free(r1);
    pthread_mutex_lock(&s->lock);
    int connections = s->connections;
    pthread_mutex_unlock(&s->lock);
    assert_int_equal(connections, 1); /* keep-alive: the handle reused its connection */
    drv_client_close(c);
}

static void test_bad_submission_names_line_and_sends_nothing(void **state)
{
    canned *s = *state;
    canned_add(s, 201, "Created", "{\"run_id\": 1, \"count\": 2}");
    drv_client *c = client_for(s, NULL);
    const char *body = "{\"name\": \"a\", \"argv\": [\"true\"]}\n"
                       "{\"name\": \"b\", \"argv\": [\"true\"], \"priority\": \"high\"}\n";
    drv_submit_result r;
    drv_error err = {{0}};
    assert_int_equal(drv_client_submit(c, body, strlen(body), "suite.jsonl", NULL, &r, &err), -1);
    assert_contains(err.msg, "suite.jsonl: line 2: priority: must be an integer");
    assert_contains(err.msg, "nothing was submitted");
    assert_int_equal(canned_count(s), 0);
    assert_int_equal(r.run_id, 0);
    /* And a file that is not JSON at all. */
    assert_int_equal(drv_client_submit(c, "[{", 2, "bad.json", NULL, &r, &err), -1);
    assert_contains(err.msg, "bad.json: tests: not valid JSON");
    assert_int_equal(canned_count(s), 0);
    drv_client_close(c);
}

/* ---- a test from flags -------------------------------------------------------------- */

/* Applies "--flag value" pairs (value NULL for a switch) to b; asserts each is taken. */
static void set_flags(drv_test_builder *b, const char *const *pairs, size_t n)
{
    for (size_t i = 0; i < n; i += 2) {
        const drv_test_flag *f = drv_test_flag_find(pairs[i]);
        assert_non_null(f);
        drv_error err = {{0}};
        if (drv_test_builder_set(b, f, pairs[i + 1], &err) != 0) {
            print_error("%s: %s\n", pairs[i], err.msg);
            fail();
        }
    }
}

/* Asserts that the JSON value got equals the JSON text want. */
static void assert_json(const json_t *got, const char *want)
{
    json_t *w = json_loads(want, 0, NULL);
    assert_non_null(w);
    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        print_error("expected %s\n     got %s\n", want, g);
        free(g);
        fail();
    }
    json_decref(w);
}

static void test_builder_command_with_flags(void **state)
{
    (void)state;
    drv_test_builder b;
    drv_test_builder_init(&b);
    const char *flags[] = {"--require", "cuda", "--priority", "5"};
    set_flags(&b, flags, 4);
    char *cmd[] = {"sh", "-c", "x", NULL};
    drv_error err = {{0}};
    json_t *t = drv_test_builder_finish(&b, cmd, &err);
    assert_non_null(t);
    assert_json(t, "{\"name\": \"sh -c x\", \"argv\": [\"sh\", \"-c\", \"x\"],"
                   " \"requirements\": {\"all_of\": [\"cuda\"]}, \"priority\": 5}");
    json_decref(t);

    /* A word a shell would split is quoted in the default name. */
    char *cmd2[] = {"sh", "-c", "echo 'hi' there", NULL};
    t = drv_test_builder_finish(&b, cmd2, &err);
    assert_string_equal(drv_api_string(t, "name"), "sh -c 'echo '\\''hi'\\'' there'");
    json_decref(t);
    drv_test_builder_clear(&b);
}

static void test_builder_every_flag_and_shell(void **state)
{
    (void)state;
    drv_test_builder b;
    drv_test_builder_init(&b);
    const char *flags[] = {
        "--name",    "gpu/bert", "--cpu",           "4",         "--memory-mb", "2048",
        "--gpus",    "1",        "--gpu-memory-mb", "16000",     "--any-of",    "cuda,rocm",
        "--avoid",   "flaky",    "--timeout",       "2.5",       "--env",       "A=1=2",
        "--cwd",     "/src",     "--model",         "bert-base", "--type",      "unit",
        "--label",   "nightly",  "--retries",       "2",         "--shell",     NULL,
        "--require", "zone-a",   "--require",       "linux"};
    set_flags(&b, flags, sizeof flags / sizeof flags[0]);
    char *cmd[] = {"make", "-j4", "test", NULL};
    drv_error err = {{0}};
    json_t *t = drv_test_builder_finish(&b, cmd, &err);
    if (!t) {
        print_error("%s\n", err.msg);
        fail();
    }
    assert_json(t, "{\"name\": \"gpu/bert\", \"command\": \"make -j4 test\", \"shell\": true,"
                   " \"requirements\": {\"cpu\": 4, \"memory_mb\": 2048, \"gpus\": 1,"
                   " \"gpu_memory_mb\": 16000, \"any_of\": [\"cuda\", \"rocm\"],"
                   " \"none_of\": [\"flaky\"], \"all_of\": [\"zone-a\", \"linux\"]},"
                   " \"timeout_s\": 2.5, \"env\": {\"A\": \"1=2\"}, \"cwd\": \"/src\","
                   " \"model_id\": \"bert-base\", \"test_type\": \"unit\","
                   " \"labels\": [\"nightly\"], \"max_retries\": 2}");
    json_decref(t);
    drv_test_builder_clear(&b);
}

static void test_builder_refuses_bad_values(void **state)
{
    (void)state;
    static const struct {
        const char *flag, *value, *message;
    } rows[] = {
        {"--priority", "high", "--priority: expected an integer, got \"high\""},
        {"--timeout", "soon", "--timeout: expected a number, got \"soon\""},
        {"--env", "NOVALUE", "--env: expected K=V"},
        {"--env", "=x", "--env: expected K=V"},
        {"--require", "a,,b", "--require: expected a tag name"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        drv_test_builder b;
        drv_test_builder_init(&b);
        drv_error err = {{0}};
        assert_int_equal(
            drv_test_builder_set(&b, drv_test_flag_find(rows[i].flag), rows[i].value, &err), -1);
        assert_contains(err.msg, rows[i].message);
        drv_test_builder_clear(&b);
    }
    /* Values that parse but are out of range are refused by the submission's rules. */
    static const struct {
        const char *flag, *value, *message;
    } late[] = {
        {"--priority", "5000",
         "the test given on the command line: priority: must be an integer "
         "0..1000, got 5000"},
        {"--require", "Not A Tag", "requirements.all_of[0]"},
        {"--retries", "1000", "max_retries"},
    };
    for (size_t i = 0; i < sizeof late / sizeof late[0]; i++) {
        drv_test_builder b;
        drv_test_builder_init(&b);
        drv_error err = {{0}};
        assert_int_equal(
            drv_test_builder_set(&b, drv_test_flag_find(late[i].flag), late[i].value, &err), 0);
        char *cmd[] = {"true", NULL};
        assert_null(drv_test_builder_finish(&b, cmd, &err));
        assert_contains(err.msg, late[i].message);
        drv_test_builder_clear(&b);
    }
    drv_test_builder b;
    drv_test_builder_init(&b);
    drv_error err = {{0}};
    char *none[] = {NULL};
    assert_null(drv_test_builder_finish(&b, none, &err));
    assert_contains(err.msg, "no command given");
    assert_null(drv_test_flag_find("--url")); /* connection options are not test flags */
    drv_test_builder_clear(&b);
}

/* ---- reports --------------------------------------------------------------------------- */

static const char *fixture_run =
    "{\"id\": 4, \"name\": \"nightly <&>\", \"created_at\": 1763900000.0, \"submitted\": 6,"
    " \"counts\": {\"queued\": 0, \"assigned\": 0, \"running\": 0, \"passed\": 1, \"failed\": 2,"
    " \"timed_out\": 1, \"cancelled\": 1, \"unschedulable\": 1}, \"done\": true, \"progress\": "
    "1.0}";

static const char *fixture_tests =
    "[{\"id\": 101, \"name\": \"tests/test_a.py::test_ok\", \"state\": \"passed\","
    "  \"duration_s\": 0.12, \"finished_at\": 1763900001.0, \"exit_code\": 0},"
    " {\"id\": 102, \"name\": \"unit/b<&>\\\"'\\u0001\", \"state\": \"failed\", \"duration_s\": "
    "1.5,"
    "  \"finished_at\": 1763900010.5, \"exit_code\": 3, \"worker\": \"w1\","
    "  \"attempts\": [{\"attempt\": 1, \"state\": \"finished\", \"exit_code\": 3, \"signal\": null,"
    "   \"timed_out\": false, \"infra_failure\": false,"
    "   \"output_tail\": \"line1\\nassert 1 < 2 & \\\"x\\\" 'y'\\u001b[31m red\\u0000!\\n\","
    "   \"stderr_tail\": \"warning: <x>\\n\"}]},"
    " {\"id\": 103, \"name\": \"slow\", \"state\": \"timed_out\", \"duration_s\": 30.0,"
    "  \"test\": {\"name\": \"slow\", \"argv\": [\"sleep\", \"100\"], \"timeout_s\": 30},"
    "  \"attempts\": [{\"attempt\": 1, \"state\": \"finished\", \"signal\": 9, \"timed_out\": true,"
    "   \"infra_failure\": false, \"output_tail\": \"waiting\\n\"}]},"
    " {\"id\": 104, \"name\": \"gpu/needs_cuda\", \"state\": \"unschedulable\","
    "  \"reason\": \"no worker has tag cuda\"},"
    " {\"id\": 105, \"name\": \"cancelled_one\", \"state\": \"cancelled\"},"
    " {\"id\": 106, \"name\": \"spawn_fail\", \"state\": \"failed\","
    "  \"reason\": \"spawn nope: No such file or directory\","
    "  \"attempts\": [{\"attempt\": 1, \"state\": \"finished\", \"infra_failure\": true,"
    "   \"exit_code\": null, \"signal\": null}]}]";

/* Loads the fixture (tests through JSON_ALLOW_NUL, as the client reads answers). */
static void load_fixture(json_t **run, json_t **tests)
{
    *run = json_loads(fixture_run, 0, NULL);
    *tests = json_loads(fixture_tests, JSON_ALLOW_NUL, NULL);
    assert_non_null(*run);
    assert_non_null(*tests);
}

/* Runs a report writer into memory; returns the text (the caller frees it). */
static char *report_text(int (*write)(FILE *, const json_t *, const json_t *, drv_error *),
                         const json_t *run, const json_t *tests, int *rc, drv_error *err)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    *rc = write(f, run, tests, err);
    fclose(f);
    return text;
}

static void test_junit_report(void **state)
{
    (void)state;
    json_t *run, *tests;
    load_fixture(&run, &tests);
    drv_error err = {{0}};
    int rc = 0;
    char *xml = report_text(drv_report_junit, run, tests, &rc, &err);
    assert_int_equal(rc, 0);
    assert_contains(xml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    assert_contains(xml, "<testsuite name=\"nightly &lt;&amp;&gt;\" tests=\"6\" failures=\"2\" "
                         "errors=\"1\" skipped=\"2\" time=\"10.500\" "
                         "timestamp=\"2025-11-23T12:13:20\">");
    assert_contains(xml, "<property name=\"drover.run_id\" value=\"4\"/>");
    /* junit-10: no skipped count on testsuites. */
    assert_contains(xml, "<testsuites name=\"drover\" tests=\"6\" failures=\"2\" errors=\"1\" "
                         "time=\"10.500\">\n");
    /* A pytest node id as pytest --junitxml names it. */
    assert_contains(xml, "<testcase name=\"test_ok\" classname=\"tests.test_a\" "
                         "time=\"0.120\"/>\n");
    /* Escaped; control characters (U+0001, ESC, NUL) shown, not dropped or cut; the
     * message says why (the assertion line); the worker is in system-out. Other names
     * as CTest writes them. */
    assert_contains(xml, "<testcase name=\"unit/b&lt;&amp;&gt;&quot;&apos;\\x01\" "
                         "classname=\"unit/b&lt;&amp;&gt;&quot;&apos;\\x01\" time=\"1.500\">\n"
                         "      <failure message=\"exit 3: assert 1 &lt; 2 &amp; &quot;x&quot; "
                         "&apos;y&apos;\\x1B[31m red !\" type=\"failed\">line1\n"
                         "assert 1 &lt; 2 &amp; &quot;x&quot; &apos;y&apos;\\x1B[31m red\\x00!\n"
                         "</failure>\n"
                         "      <system-out>drover: ran on worker w1 (attempt 1)\n</system-out>\n"
                         "      <system-err>warning: &lt;x&gt;\n</system-err>\n");
    assert_contains(xml, "<testcase name=\"slow\" classname=\"slow\" "
                         "time=\"30.000\">\n"
                         "      <failure message=\"timed out after 30 s\" type=\"timed_out\">"
                         "waiting\n</failure>");
    assert_contains(xml, "<skipped message=\"unschedulable: no worker has tag cuda\"/>");
    assert_contains(xml, "<testcase name=\"cancelled_one\" classname=\"cancelled_one\" "
                         "time=\"0.000\">\n      <skipped message=\"cancelled\"/>");
    assert_contains(xml, "<error message=\"infrastructure failure: spawn nope: No such file or "
                         "directory\" type=\"infrastructure\"></error>");
    assert_contains(xml, "</testsuite>\n</testsuites>\n");
    /* Nothing XML 1.0 forbids: no control byte but the line feed. */
    for (const char *p = xml; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\n') {
            print_error("control byte 0x%02x at offset %td\n", *p, p - xml);
            fail();
        }
    free(xml);

    /* Line breaks in an attribute survive as character references. */
    json_t *one = json_loads("[{\"name\": \"t\", \"state\": \"unschedulable\","
                             " \"reason\": \"a\\nb\\tc\\r\"}]",
                             0, NULL);
    xml = report_text(drv_report_junit, run, one, &rc, &err);
    assert_contains(xml, "<skipped message=\"unschedulable: a&#10;b&#9;c&#13;\"/>");
    free(xml);
    json_decref(one);

    /* Not what the API returns: refused. */
    json_t *bad = json_loads("[{\"id\": 1}]", 0, NULL);
    xml = report_text(drv_report_junit, run, bad, &rc, &err);
    assert_int_equal(rc, -1);
    assert_contains(err.msg, "tests[0] is not a test with a name");
    free(xml);
    json_decref(bad);
    json_decref(run);
    json_decref(tests);
}

static void test_json_report(void **state)
{
    (void)state;
    json_t *run, *tests;
    load_fixture(&run, &tests);
    drv_error err = {{0}};
    int rc = 0;
    char *text = report_text(drv_report_json, run, tests, &rc, &err);
    assert_int_equal(rc, 0);
    assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
    json_t *back = json_loads(text, JSON_ALLOW_NUL, NULL);
    assert_non_null(back);
    assert_true(json_equal(json_object_get(back, "run"), run));
    assert_true(json_equal(json_object_get(back, "tests"), tests));
    assert_int_equal(json_array_size(json_object_get(back, "tests")), 6);
    json_decref(back);
    free(text);
    text = report_text(drv_report_json, tests, tests, &rc, &err);
    assert_int_equal(rc, -1);
    assert_contains(err.msg, "the run must be an object");
    free(text);
    json_decref(run);
    json_decref(tests);
}

/* suite2: --rerun-failures N gives reruns N to every test of a submission (one object, an
 * array, JSON lines) that has none of its own; a test's own reruns stays. */
static void test_submission_with_reruns(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"name\":\"a\",\"argv\":[\"true\"]}",
         "{\"name\":\"a\",\"argv\":[\"true\"],\"reruns\":2}"},
        {"[{\"name\":\"a\"},{\"name\":\"b\",\"reruns\":0}]",
         "[{\"name\":\"a\",\"reruns\":2},{\"name\":\"b\",\"reruns\":0}]"},
        {"{\"name\":\"a\"}\n\n{\"name\":\"b\"}\n",
         "{\"name\":\"a\",\"reruns\":2}\n{\"name\":\"b\",\"reruns\":2}\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        drv_error err = {{0}};
        size_t len = 0;
        char *out = drv_submission_with_reruns(cases[i].in, strlen(cases[i].in), 2, &len, &err);
        assert_non_null(out);
        assert_string_equal(out, cases[i].out);
        assert_int_equal(len, strlen(cases[i].out));
        free(out);
    }
    drv_error err = {{0}};
    size_t len = 0;
    const char *bad = "{\"name\":\"a\"}\n{oops\n";
    assert_null(drv_submission_with_reruns(bad, strlen(bad), 2, &len, &err));
    assert_non_null(strstr(err.msg, "not JSON"));
}

static void test_outcomes_and_progress(void **state)
{
    (void)state;
    json_t *run, *tests;
    load_fixture(&run, &tests);
    static const char *const want[] = {
        "exit 0",
        "exit 3",
        "timed out after 30 s",
        "unschedulable: no worker has tag cuda",
        "cancelled",
        "infrastructure failure: spawn nope: No such file or directory",
    };
    for (size_t i = 0; i < 6; i++) {
        char buf[256];
        drv_test_outcome_format(json_array_get(tests, i), buf, sizeof buf);
        assert_string_equal(buf, want[i]);
    }
    size_t len = 0;
    const char *tail = drv_test_output_tail(json_array_get(tests, 1), &len);
    assert_non_null(tail);
    assert_int_equal(len, strlen("line1\nassert 1 < 2 & \"x\" 'y'\x1b[31m red") + 3);
    assert_string_equal(drv_text_last_lines("a\nb\nc\n", 2), "b\nc\n");
    assert_string_equal(drv_text_last_lines("a\nb", 5), "a\nb");
    assert_string_equal(drv_text_last_lines("a\nb", 0), "");

    drv_run_counts rc;
    drv_run_counts_read(run, &rc);
    assert_true(rc.done);
    assert_int_equal(rc.submitted, 6);
    assert_int_equal(rc.final, 6);
    assert_false(drv_run_counts_all_passed(&rc));

    json_t *live = json_loads("{\"id\": 4, \"submitted\": 40, \"counts\": {\"queued\": 1,"
                              " \"assigned\": 1, \"running\": 1, \"passed\": 36, \"failed\": 1},"
                              " \"done\": false}",
                              0, NULL);
    drv_run_counts_read(live, &rc);
    char line[256];
    drv_run_progress_format(4, &rc, 12.34, line, sizeof line);
    /* "running" counts only started tests; one given to a worker is "assigned". */
    assert_string_equal(line,
                        "run 4: 37/40 done, 1 running, 1 assigned, 1 queued, 1 failed, 12.3 s");
    /* The coordinator's ETA (rounded up) follows while the run is not done. */
    json_object_set_new(live, "eta_s", json_real(7.2));
    drv_run_counts_read(live, &rc);
    drv_run_progress_format(4, &rc, 12.34, line, sizeof line);
    assert_string_equal(
        line, "run 4: 37/40 done, 1 running, 1 assigned, 1 queued, 1 failed, 12.3 s, ETA 8 s");
    json_decref(live);
    json_decref(run);
    json_decref(tests);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submit_201_parsed_with_token_and_run_name,
                                        setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_400_message_surfaced, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_401_explained, setup_server, teardown_server),
        cmocka_unit_test_setup(test_refused_connection_explained, setup_alarm),
        cmocka_unit_test_setup(test_bad_url_and_token_refused, setup_alarm),
        cmocka_unit_test_setup_teardown(test_one_connection_for_many_requests, setup_server,
                                        teardown_server),
        cmocka_unit_test_setup_teardown(test_bad_submission_names_line_and_sends_nothing,
                                        setup_server, teardown_server),
        cmocka_unit_test(test_builder_command_with_flags),
        cmocka_unit_test(test_builder_every_flag_and_shell),
        cmocka_unit_test(test_builder_refuses_bad_values),
        cmocka_unit_test(test_junit_report),
        cmocka_unit_test(test_submission_with_reruns),
        cmocka_unit_test(test_json_report),
        cmocka_unit_test(test_outcomes_and_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
