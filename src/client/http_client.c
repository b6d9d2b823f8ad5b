/* http_client.c - the REST API's client: one libcurl easy handle per drv_client, reused
 * for every request so the connection stays open between them, and the API calls the
 * commands make (submit, runs, tests).
 *
 * Each failure is turned into the sentence a user needs: which coordinator could not be
 * reached and why, a refused token, or the coordinator's own {"error", "field"} message
 * with its status. */
#include "client/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct drv_client {
    CURL *curl;
    char *url;                  /* base URL, no trailing slash; owned */
    bool has_token;             /* an Authorization header is sent */
    struct curl_slist *headers; /* owned */
    long status;                /* HTTP status of the last answer, 0: none */
    char *body;                 /* the last answer's body; owned, grown as needed */
    size_t body_len, body_cap;
    bool body_too_large;
    char errbuf[CURL_ERROR_SIZE];
};

/* libcurl's write callback: appends to the client's body buffer, refusing (which makes
 * curl fail with CURLE_WRITE_ERROR) past DRV_CLIENT_BODY_MAX. */
static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    drv_client *c = user;
    size_t add = size * n;
    if (add > DRV_CLIENT_BODY_MAX - c->body_len) {
        c->body_too_large = true;
        return 0;
    }
    if (c->body_len + add + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 16384;
        while (cap < c->body_len + add + 1)
            cap *= 2;
        c->body = drv_xrealloc(c->body, cap);
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, data, add);
    c->body_len += add;
    c->body[c->body_len] = '\0';
    return add;
}

/* Milliseconds of a timeout in seconds, dflt when s is not > 0. */
static long timeout_ms(double s, double dflt)
{
    if (!(s > 0))
        s = dflt;
    if (s > 1e6)
        s = 1e6;
    return (long)(s * 1000 + 0.5);
}

drv_client *drv_client_open(const drv_client_options *opt, drv_error *err)
{
    drv_client_options none = {0};
    if (!opt)
        opt = &none;
    const char *url = opt->url;
    if (!url || !*url)
        url = getenv("DROVER_URL");
    if (!url || !*url)
        url = DRV_CLIENT_DEFAULT_URL;
    /* ws:// and wss:// (a DROVER_URL shared with workers) name the same server. */
    const char *scheme = NULL, *rest = NULL;
    if (strncmp(url, "http://", 7) == 0 || strncmp(url, "ws://", 5) == 0)
        scheme = "http://", rest = strstr(url, "//") + 2;
    else if (strncmp(url, "https://", 8) == 0 || strncmp(url, "wss://", 6) == 0)
        scheme = "https://", rest = strstr(url, "//") + 2;
    if (!scheme || !*rest || *rest == '/' || *rest == ':') {
        drv_error_set(err,
                      "coordinator URL \"%.200s\": expected http://HOST:PORT or "
                      "https://HOST:PORT",
                      url);
        return NULL;
    }
    const char *token = opt->token;
    if (!token)
        token = getenv("DROVER_TOKEN");
    if (token && !*token)
        token = NULL;
    for (const char *p = token; p && *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            drv_error_set(err, "the token holds a control character (a line break?); "
                               "check --token or DROVER_TOKEN");
            return NULL;
        }
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        drv_error_set(err, "libcurl could not be initialised");
        return NULL;
    }
    CURL *curl = curl_easy_init();
    if (!curl) {
        curl_global_cleanup();
        drv_error_set(err, "libcurl could not create a connection handle");
        return NULL;
    }
    /* Owned by the caller (drv_client_close). */
    drv_client *c = drv_xcalloc(1, sizeof *c);
    c->curl = curl;
    size_t n = strlen(scheme) + strlen(rest) + 1;
    c->url = drv_xmalloc(n);
    snprintf(c->url, n, "%s%s", scheme, rest);
    n = strlen(c->url);
    while (n > 0 && c->url[n - 1] == '/')
        c->url[--n] = '\0';
    c->headers = curl_slist_append(c->headers, "Accept: application/json");
    c->headers = curl_slist_append(c->headers, "Content-Type: application/json");
    c->headers = curl_slist_append(c->headers, "Expect:"); /* no 100-continue round trip */
    if (token) {
        size_t len = strlen(token) + 32;
        char *h = drv_xmalloc(len);
        snprintf(h, len, "Authorization: Bearer %s", token);
        c->headers = curl_slist_append(c->headers, h);
        free(h);
        c->has_token = true;
    }
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "drover");
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     timeout_ms(opt->connect_timeout_s, DRV_CLIENT_CONNECT_TIMEOUT_S));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     timeout_ms(opt->request_timeout_s, DRV_CLIENT_REQUEST_TIMEOUT_S));
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    const char *ca = opt->ca_file ? opt->ca_file : getenv("DROVER_CA");
    if (ca && *ca)
        curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
    return c;
}

void drv_client_close(drv_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    curl_global_cleanup();
    free(c->url);
    free(c->body);
    free(c);
}

const char *drv_client_url(const drv_client *c)
{
    return c->url;
}

long drv_client_status(const drv_client *c)
{
    return c->status;
}

/* Fills err for a request that got no HTTP answer (code from curl_easy_perform). */
static int transport_error(drv_client *c, CURLcode code, const char *method, const char *path,
                           drv_error *err)
{
    long os_errno = 0;
    curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
    const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(code);
    switch (code) {
    case CURLE_COULDNT_CONNECT:
        return drv_error_set(err,
                             "cannot reach the coordinator at %s: %s (is `drover coordinator` "
                             "running?)",
                             c->url, os_errno ? strerror((int)os_errno) : detail);
    case CURLE_COULDNT_RESOLVE_HOST:
        return drv_error_set(err, "cannot reach the coordinator at %s: unknown host (%s)", c->url,
                             detail);
    case CURLE_OPERATION_TIMEDOUT: {
        double connect_s = 0;
        curl_easy_getinfo(c->curl, CURLINFO_CONNECT_TIME, &connect_s);
        if (connect_s <= 0)
            return drv_error_set(err,
                                 "cannot reach the coordinator at %s: no answer to the "
                                 "connection (%s)",
                                 c->url, detail);
        return drv_error_set(err, "the coordinator at %s did not answer %s %s in time (%s)", c->url,
                             method, path, detail);
    }
    case CURLE_WRITE_ERROR:
        if (c->body_too_large)
            return drv_error_set(err, "the coordinator at %s answered %s %s with more than %u MiB",
                                 c->url, method, path, DRV_CLIENT_BODY_MAX >> 20);
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        return drv_error_set(err, "the coordinator at %s closed the connection during %s %s (%s)",
                             c->url, method, path, detail);
    default:
        break;
    }
    return drv_error_set(err, "request %s %s to the coordinator at %s failed: %s", method, path,
                         c->url, detail);
}

/* Fills err for a non-2xx answer: the coordinator's {"error", "field"} message, with
 * what a 401 means. */
static int status_error(drv_client *c, const char *method, const char *path, drv_error *err)
{
    json_t *j = c->body_len ? json_loadb(c->body, c->body_len, 0, NULL) : NULL;
    const char *msg = drv_api_string(j, "error");
    const char *field = drv_api_string(j, "field");
    char text[DRV_ERROR_MAX];
    if (msg && field && *field && !strstr(msg, field))
        snprintf(text, sizeof text, "%s: %s", field, msg);
    else if (msg)
        snprintf(text, sizeof text, "%s", msg);
    else if (c->body_len)
        snprintf(text, sizeof text, "%s %s: %.120s", method, path, c->body);
    else
        snprintf(text, sizeof text, "%s %s: no message", method, path);
    json_decref(j);
    /* A body that is not JSON may hold line breaks: keep the message on one line. */
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (c->status == 401) {
        if (c->has_token)
            return drv_error_set(err, "coordinator refused the token (401): %s", text);
        return drv_error_set(err,
                             "coordinator needs a token (401): %s; give --token or set "
                             "DROVER_TOKEN",
                             text);
    }
    return drv_error_set(err, "coordinator answered %ld: %s", c->status, text);
}

int drv_client_request(drv_client *c, const char *method, const char *path, const char *body,
                       size_t len, json_t **out, drv_error *err)
{
    *out = NULL;
    c->status = 0;
    c->body_len = 0;
    c->body_too_large = false;
    c->errbuf[0] = '\0';
    if (c->body)
        c->body[0] = '\0';
    size_t ulen = strlen(c->url) + strlen(path) + 1;
    char *url = drv_xmalloc(ulen); /* freed below */
    snprintf(url, ulen, "%s%s", c->url, path);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, NULL);
    } else {
        curl_easy_setopt(c->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
        curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST,
                         strcmp(method, "POST") == 0 ? NULL : method);
    }
    CURLcode code = curl_easy_perform(c->curl);
    free(url);
    if (code != CURLE_OK)
        return transport_error(c, code, method, path, err);
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status);
    if (c->status < 200 || c->status > 299)
        return status_error(c, method, path, err);
    if (c->body_len == 0) {
        *out = json_object();
        return 0;
    }
    json_error_t jerr;
    /* Output tails may hold NUL bytes (protocol.md: they travel as \u0000). */
    json_t *j = json_loadb(c->body, c->body_len, JSON_ALLOW_NUL, &jerr);
    if (!j)
        return drv_error_set(err,
                             "the coordinator at %s answered %s %s with a body that is not "
                             "JSON (%s; is this a drover coordinator?)",
                             c->url, method, path, jerr.text);
    *out = j;
    return 0;
}

json_t *drv_client_get(drv_client *c, const char *path, drv_error *err)
{
    json_t *out = NULL;
    drv_client_request(c, "GET", path, NULL, 0, &out, err);
    return out;
}

json_t *drv_client_post(drv_client *c, const char *path, const json_t *body, drv_error *err)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL; /* freed below */
    json_t *out = NULL;
    drv_client_request(c, "POST", path, text, text ? strlen(text) : 0, &out, err);
    free(text);
    return out;
}

/* ---- the API's calls ---------------------------------------------------------------- */

int drv_client_submit(drv_client *c, const char *buf, size_t len, const char *source,
                      const char *run_name, drv_submit_result *out, drv_error *err)
{
    out->run_id = 0;
    out->count = 0;
    if (drv_submission_check(buf, len, err) < 0) {
        if (source)
            drv_error_prefix(err, "%s", source);
        char msg[DRV_ERROR_MAX];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        return drv_error_set(err, "%s; nothing was submitted", msg);
    }
    char *path = NULL; /* freed below */
    if (run_name && *run_name) {
        char *q = curl_easy_escape(c->curl, run_name, 0);
        if (!q)
            return drv_error_set(err, "run name \"%.80s\" could not be encoded", run_name);
        size_t n = strlen(q) + 32;
        path = drv_xmalloc(n);
        snprintf(path, n, "/api/v1/tests?run=%s", q);
        curl_free(q);
    } else {
        path = drv_xstrdup("/api/v1/tests");
    }
    json_t *ans = NULL;
    int rc = drv_client_request(c, "POST", path, buf, len, &ans, err);
    free(path);
    if (rc < 0)
        return -1;
    int64_t run = drv_api_int(ans, "run_id", -1), count = drv_api_int(ans, "count", -1);
    json_decref(ans);
    if (run < 0 || count < 0)
        return drv_error_set(err,
                             "the coordinator at %s accepted the tests but its answer lacks "
                             "run_id or count",
                             c->url);
    out->run_id = (uint64_t)run;
    out->count = (size_t)count;
    return 0;
}

json_t *drv_client_run(drv_client *c, uint64_t run_id, drv_error *err)
{
    char path[64];
    snprintf(path, sizeof path, "/api/v1/runs/%llu", (unsigned long long)run_id);
    return drv_client_get(c, path, err);
}

json_t *drv_client_run_wait(drv_client *c, uint64_t run_id, unsigned wait_s, drv_error *err)
{
    char path[80];
    snprintf(path, sizeof path, "/api/v1/runs/%llu?wait=%u", (unsigned long long)run_id, wait_s);
    return drv_client_get(c, path, err);
}

int drv_client_latest_run(drv_client *c, uint64_t *run_id, drv_error *err)
{
    json_t *ans = drv_client_get(c, "/api/v1/runs?limit=1", err);
    if (!ans)
        return -1;
    json_t *first = json_array_get(json_object_get(ans, "runs"), 0);
    int64_t id = drv_api_int(first, "id", -1);
    json_decref(ans);
    if (id < 0)
        return drv_error_set(err, "no runs on the coordinator at %s yet", c->url);
    *run_id = (uint64_t)id;
    return 0;
}

json_t *drv_client_test(drv_client *c, uint64_t test_id, drv_error *err)
{
    char path[64];
    snprintf(path, sizeof path, "/api/v1/tests/%llu", (unsigned long long)test_id);
    return drv_client_get(c, path, err);
}

int drv_client_test_by_name(drv_client *c, const char *name, uint64_t *test_id, drv_error *err)
{
    char *q = curl_easy_escape(c->curl, name, 0);
    if (!q)
        return drv_error_set(err, "test name \"%.80s\" could not be encoded", name);
    size_t n = strlen(q) + 64;
    char *path = drv_xmalloc(n);
    snprintf(path, n, "/api/v1/tests?name=%s&order=desc&limit=1000", q);
    curl_free(q);
    json_t *ans = drv_client_get(c, path, err);
    free(path);
    if (!ans)
        return -1;
    size_t i;
    json_t *t;
    int found = -1; /* the name is a prefix filter: the newest test of exactly this name */
    json_array_foreach(json_object_get(ans, "tests"), i, t)
    {
        const char *got = drv_api_string(t, "name");
        if (got && strcmp(got, name) == 0) {
            *test_id = (uint64_t)drv_api_int(t, "id", 0);
            found = 0;
            break;
        }
    }
    json_decref(ans);
    if (found < 0)
        drv_error_set(err, "no test named \"%.200s\" on the coordinator at %s", name, c->url);
    return found;
}

json_t *drv_client_run_tests(drv_client *c, uint64_t run_id, const char *state, size_t max,
                             drv_error *err)
{
    json_t *all = json_array(); /* returned to the caller, or released on error */
    for (size_t offset = 0;;) {
        size_t want = DRV_CLIENT_TESTS_PAGE;
        if (max && max - json_array_size(all) < want)
            want = max - json_array_size(all);
        char path[160];
        snprintf(path, sizeof path, "/api/v1/tests?run=%llu%s%s&limit=%zu&offset=%zu",
                 (unsigned long long)run_id, state ? "&state=" : "", state ? state : "", want,
                 offset);
        json_t *ans = drv_client_get(c, path, err);
        if (!ans) {
            json_decref(all);
            return NULL;
        }
        json_t *page = json_object_get(ans, "tests");
        if (!json_is_array(page)) {
            json_decref(ans);
            json_decref(all);
            drv_error_set(err, "the coordinator at %s answered GET %s without a \"tests\" array",
                          c->url, path);
            return NULL;
        }
        size_t got = json_array_size(page);
        json_array_extend(all, page);
        json_decref(ans);
        offset += got;
        if (got < want || (max && json_array_size(all) >= max))
            break;
    }
    return all;
}

int drv_client_add_details(drv_client *c, json_t *tests, drv_error *err)
{
    size_t i;
    json_t *t;
    json_array_foreach(tests, i, t)
    {
        if (!drv_report_needs_detail(t))
            continue;
        int64_t id = drv_api_int(t, "id", -1);
        if (id < 0)
            continue;
        json_t *full = drv_client_test(c, (uint64_t)id, err);
        if (!full)
            return -1;
        json_array_set_new(tests, i, full);
    }
    return 0;
}
