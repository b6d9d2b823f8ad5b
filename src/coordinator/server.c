/* server.c - libwebsockets on the coordinator's loop: the HTTP protocol (a request in,
 * a JSON response out, possibly after the turn's commit) and the worker WebSocket
 * protocol (frames in, queued frames out). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "coordinator/chunked.h"
#include "coordinator/coord.h"
#include "sys/proc_status.h"

#define RESPONSE_CHUNK (64u * 1024u)
/* What lws reads from one worker connection per loop turn. Each finished frame read is
 * handled in that turn, about 100 bytes and 20 us each: 64 KiB made turns of 15-40 ms
 * under full load, and an HTTP request (two turns) waited 40-90 ms; 16 KiB keeps it at
 * 13-38 ms at the same throughput (bench/e2e.sh, acknowledge-only part). */
#define RX_BUFFER (16u * 1024u)

drv_coordinator *drv_server_coord(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

void drv_server_auth_deadline(drv_coordinator *c, struct lws *wsi)
{
    int secs = (int)(c->opt.auth_timeout_s > 0 ? c->opt.auth_timeout_s + 0.999 : 10);
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, secs);
}

void drv_server_want_write(struct lws *wsi)
{
    if (wsi)
        lws_callback_on_writable(wsi);
}

/* ---- HTTP ---------------------------------------------------------------------- */

static void http_reset(drv_hsession *h)
{
    free(h->body);
    free(h->resp);
    h->body = NULL;
    h->resp = NULL;
    h->body_len = h->body_cap = 0;
    h->resp_len = h->resp_off = 0;
    h->content_type = NULL;
    h->body_too_large = false;
    h->headers_sent = false;
    h->waiting_commit = false;
    h->wait_seq = 0;
    h->read_seq = 0;
    h->in_request = false;
    h->status = 0;
    h->chunked = false;
    h->chunk_over = false;
    h->body_error = NULL;
    h->close_after = false;
    h->parked = false;
    h->wait_until = 0;
    h->path[0] = h->query[0] = h->auth[0] = '\0';
}

void drv_server_unlink_pending(drv_coordinator *c, drv_hsession *h)
{
    if (!h->waiting_commit)
        return;
    if (h->pend_prev)
        h->pend_prev->pend_next = h->pend_next;
    else if (c->pending == h)
        c->pending = h->pend_next;
    if (h->pend_next)
        h->pend_next->pend_prev = h->pend_prev;
    h->pend_prev = h->pend_next = NULL;
    h->waiting_commit = false;
}

static void unlink_deferred(drv_coordinator *c, drv_hsession *h)
{
    if (!h->deferred)
        return;
    if (h->defer_prev)
        h->defer_prev->defer_next = h->defer_next;
    else
        c->deferred = h->defer_next;
    if (h->defer_next)
        h->defer_next->defer_prev = h->defer_prev;
    h->defer_prev = h->defer_next = NULL;
    h->deferred = false;
}

/* Puts h at the head of the deferred list (handled again by drv_server_run_deferred). */
static void push_deferred(drv_coordinator *c, drv_hsession *h)
{
    h->deferred = true;
    h->defer_prev = NULL;
    h->defer_next = c->deferred;
    if (c->deferred)
        c->deferred->defer_prev = h;
    c->deferred = h;
}

/* Handles the complete request in h, then answers now or after the commit. */
static void http_handle(drv_coordinator *c, drv_hsession *h)
{
    if (h->body_error) {
        drv_api_error(h, 400, h->body_error, NULL);
    } else if (h->body_too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body larger than the limit of %zu bytes",
                 c->opt.max_body);
        drv_api_error(h, 413, msg, NULL);
    } else {
        drv_api_handle(c, h);
    }
    if (h->parked) { /* handled again by drv_server_run_deferred */
        h->parked = false;
        h->read_seq = 0;
        push_deferred(c, h);
    } else if (h->waiting_commit) {
        h->pend_prev = NULL;
        h->pend_next = c->pending;
        if (c->pending)
            c->pending->pend_prev = h;
        c->pending = h;
    } else {
        lws_callback_on_writable(h->wsi);
    }
}

/* The request is complete. A read is handled once every write made before it arrived
 * is durable: the store's reads see what is committed, and a client that saw a change
 * (an answer, another endpoint) must not read the state before it. The writes of this
 * turn, not handed yet, become the next commit. */
static void http_dispatch(drv_coordinator *c, drv_hsession *h)
{
    uint64_t need = drv_store_handed(c->store) + (drv_store_pending(c->store) ? 1 : 0);
    if (h->method != DRV_HTTP_GET || h->body_too_large || need <= c->durable_seq) {
        http_handle(c, h);
        return;
    }
    h->read_seq = need;
    push_deferred(c, h);
}

void drv_server_run_deferred(drv_coordinator *c)
{
    drv_hsession *h = c->deferred;
    while (h) {
        drv_hsession *next = h->defer_next;
        if (h->read_seq <= c->durable_seq) {
            unlink_deferred(c, h);
            http_handle(c, h);
        }
        h = next;
    }
}

/* A client that sent "Expect: 100-continue" (curl does for bodies over 1 MiB) holds the
 * body back until it hears "100 Continue", or for a second (curl) when it never does. */
static void http_continue(struct lws *wsi)
{
    char expect[32];
    if (lws_hdr_copy(wsi, expect, sizeof expect, WSI_TOKEN_HTTP_EXPECT) <= 0 ||
        strcasecmp(expect, "100-continue") != 0)
        return;
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    unsigned char buf[LWS_PRE + sizeof line];
    memcpy(buf + LWS_PRE, line, sizeof line - 1);
    lws_write(wsi, buf + LWS_PRE, sizeof line - 1, LWS_WRITE_HTTP);
}

/* Whether te (a Transfer-Encoding value) ends with "chunked", as a body that uses it
 * must. */
static bool strcasestr_chunked(const char *te)
{
    size_t n = strlen(te);
    while (n > 0 && (te[n - 1] == ' ' || te[n - 1] == '\t'))
        n--;
    return n >= 7 && strncasecmp(te + n - 7, "chunked", 7) == 0;
}

/* Whether the request's body is sent with Transfer-Encoding: chunked. */
static bool is_chunked(struct lws *wsi)
{
    char te[64];
    return lws_hdr_copy(wsi, te, sizeof te, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 &&
           strcasestr_chunked(te);
}

/* Whether the n bytes at s are valid UTF-8 (jansson's check). */
static bool utf8_ok(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    json_decref(j);
    return j != NULL;
}

static void http_begin(drv_coordinator *c, drv_hsession *h, struct lws *wsi, const char *uri)
{
    http_reset(h);
    h->wsi = wsi;
    h->in_request = true;
    snprintf(h->path, sizeof h->path, "%s", uri ? uri : "/");
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
        h->method = DRV_HTTP_GET;
    else if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
        h->method = DRV_HTTP_POST;
    else
        h->method = DRV_HTTP_OTHER;
    /* Query arguments, joined back with '&' (each already URL-decoded by lws). */
    size_t q = 0;
    char frag[512];
    const char *bad_arg = NULL;
    char bad_name[64];
    int flen;
    for (int i = 0;
         (flen = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i)) > 0;
         i++) {
        if (!bad_arg && !utf8_ok(frag, (size_t)flen)) {
            size_t nl = strcspn(frag, "=");
            snprintf(bad_name, sizeof bad_name, "%.*s", (int)(nl < 60 ? nl : 60), frag);
            bad_arg = utf8_ok(bad_name, strlen(bad_name)) ? bad_name : "?";
        }
        int n = snprintf(h->query + q, sizeof h->query - q, "%s%s", q ? "&" : "", frag);
        if (n < 0 || (size_t)n >= sizeof h->query - q)
            break;
        q += (size_t)n;
    }
    if (lws_hdr_copy(wsi, h->auth, sizeof h->auth, WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
        h->auth[0] = '\0';
    if (bad_arg) {
        /* Answered before any body: the connection closes after it (see http_write). */
        char msg[160];
        snprintf(msg, sizeof msg, "query parameter \"%s\": not valid UTF-8 once decoded", bad_arg);
        drv_api_error(h, 400, msg, bad_arg);
        h->close_after = h->method == DRV_HTTP_POST;
        lws_callback_on_writable(wsi);
        return;
    }
    if (h->method != DRV_HTTP_POST) {
        http_dispatch(c, h);
        return;
    }
    char cl[32] = "";
    long long length = -1;
    if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
        length = atoll(cl);
    if (length < 0 && is_chunked(wsi)) {
        /* lws 4.1 passes the chunks on undecoded (LWS_CALLBACK_HTTP_BODY) and never
         * sees their end: http_body() decodes them and dispatches at the last one. */
        h->chunked = true;
        drv_chunked_init(&h->chunk, c->opt.max_body);
        http_continue(wsi);
        return;
    }
    if (length > 0 && (unsigned long long)length > c->opt.max_body) {
        h->body_too_large = true;
        http_dispatch(c, h); /* a final answer instead of 100 Continue: nothing is sent */
    } else if (length <= 0) {
        http_dispatch(c, h);
    } else {
        http_continue(wsi);
    }
}

static void body_append(drv_coordinator *c, drv_hsession *h, const char *in, size_t len);

/* The chunked decoder's sink: the data goes to the body; too large stops it. */
static int chunk_data(void *ctx, const char *data, size_t len)
{
    drv_hsession *h = ctx;
    body_append(drv_server_coord(h->wsi), h, data, len);
    return h->body_too_large;
}

static void http_body(drv_coordinator *c, drv_hsession *h, const char *in, size_t len)
{
    if (h->chunked) {
        if (!h->in_request || h->status || h->chunk_over)
            return;
        if (drv_chunked_feed(&h->chunk, in, len, chunk_data, h)) {
            h->chunk_over = true;
            h->body_error = h->chunk.error;
            h->body_too_large |= h->chunk.too_large != 0;
            http_dispatch(c, h);
        }
        return;
    }
    body_append(c, h, in, len);
}

static void body_append(drv_coordinator *c, drv_hsession *h, const char *in, size_t len)
{
    if (h->body_too_large || h->status)
        return;
    if (h->body_len + len > c->opt.max_body) {
        h->body_too_large = true;
        return;
    }
    if (h->body_len + len + 1 > h->body_cap) {
        size_t cap = h->body_cap ? h->body_cap : 4096;
        while (cap < h->body_len + len + 1)
            cap *= 2;
        h->body = drv_xrealloc(h->body, cap);
        h->body_cap = cap;
    }
    memcpy(h->body + h->body_len, in, len);
    h->body_len += len;
    h->body[h->body_len] = '\0';
}

/* Writes the headers, then the body a chunk per call. Returns -1 to close. */
static int http_write(drv_hsession *h, struct lws *wsi)
{
    if (!h->in_request || h->waiting_commit || !h->status)
        return 0;
    if (!h->headers_sent) {
        unsigned char hb[LWS_PRE + 1024];
        unsigned char *start = hb + LWS_PRE, *p = start, *end = hb + sizeof hb - 1;
        if (lws_add_http_common_headers(wsi, (unsigned)h->status,
                                        h->content_type ? h->content_type : "application/json",
                                        h->resp_len, &p, end))
            return -1;
        if (h->status == 401 &&
            lws_add_http_header_by_name(wsi, (const unsigned char *)"www-authenticate:",
                                        (const unsigned char *)"Bearer", 6, &p, end))
            return -1;
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-store", 8, &p, end))
            return -1;
        if (lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        h->headers_sent = true;
        if (h->resp_len > 0) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    if (h->resp_off < h->resp_len) {
        size_t n = h->resp_len - h->resp_off;
        if (n > RESPONSE_CHUNK)
            n = RESPONSE_CHUNK;
        bool last = h->resp_off + n == h->resp_len;
        /* resp was allocated with LWS_PRE bytes before the text (see drv_api_*). */
        if (lws_write(wsi, (unsigned char *)h->resp + LWS_PRE + h->resp_off, n,
                      last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
            return -1;
        h->resp_off += n;
        if (!last) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    /* A body left unread or chunked: lws cannot find the next request. */
    bool close = h->status == 413 || h->chunked || h->close_after;
    http_reset(h);
    if (close)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int cb_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    drv_hsession *h = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        http_begin(drv_server_coord(wsi), h, wsi, in);
        return 0;
    case LWS_CALLBACK_HTTP_BODY:
        http_body(drv_server_coord(wsi), h, in, len);
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (h->in_request && !h->status && !h->chunked)
            http_dispatch(drv_server_coord(wsi), h);
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return http_write(h, wsi);
    case LWS_CALLBACK_CLOSED_HTTP:
        if (h) {
            drv_server_unlink_pending(drv_server_coord(wsi), h);
            unlink_deferred(drv_server_coord(wsi), h);
            http_reset(h);
            h->wsi = NULL;
        }
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* ---- worker WebSocket ------------------------------------------------------------ */

void drv_server_queue(drv_wsession *s, const char *text, size_t len)
{
    drv_frame *f = drv_xmalloc(sizeof *f + LWS_PRE + len);
    f->next = NULL;
    f->seq = drv_server_coord(s->wsi)->frame_seq;
    f->len = len;
    memcpy(f->buf + LWS_PRE, text, len);
    if (s->out_tail)
        s->out_tail->next = f;
    else
        s->out_head = f;
    s->out_tail = f;
    lws_callback_on_writable(s->wsi);
}

void drv_server_send_error(drv_wsession *s, const char *message, const char *field)
{
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_ERROR);
    m.error.message = (char *)message;
    m.error.field = (char *)field;
    size_t len = 0;
    char *text = drv_msg_encode(&m, &len, NULL);
    if (text)
        drv_server_queue(s, text, len);
    free(text);
}

/* Refuses with close status status: the error frame, then the close frame. */
static void refuse_with(drv_wsession *s, uint16_t status, const char *message, const char *field)
{
    drv_server_send_error(s, message, field);
    if (s->closing)
        return; /* the first refusal's status and reason stand */
    s->closing = true;
    s->close_status = status;
    /* The reason of a close frame is at most 123 bytes: the message, cut on a UTF-8
     * boundary (messages name fields and values, which may be any text). */
    size_t n = strlen(message);
    if (n > sizeof s->close_reason - 1) {
        n = sizeof s->close_reason - 1;
        while (n > 0 && ((unsigned char)message[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(s->close_reason, message, n);
    s->close_reason[n] = '\0';
}

void drv_server_refuse(drv_wsession *s, const char *message, const char *field)
{
    refuse_with(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, message, field);
}

/* Ends a refused session from its receive callback, where lws 4.1 sends the close frame
 * (from the writeable callback it drops it and only ends the TCP connection): writes
 * the frames queued (the error frame last), sets the close status and reason, and
 * returns -1 for the callback to return. A frame that waits for a commit is written
 * too: a refused peer gets nothing more, so nothing it could act on is early. */
static int close_refused(drv_wsession *s, struct lws *wsi)
{
    while (s->out_head) {
        drv_frame *f = s->out_head;
        if (lws_write(wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT) < (int)f->len)
            break;
        s->out_head = f->next;
        free(f);
    }
    if (!s->out_head)
        s->out_tail = NULL;
    lws_close_reason(wsi, (enum lws_close_status)s->close_status, (unsigned char *)s->close_reason,
                     strlen(s->close_reason));
    return -1;
}

static void free_frames(drv_wsession *s)
{
    while (s->out_head) {
        drv_frame *f = s->out_head;
        s->out_head = f->next;
        free(f);
    }
    s->out_tail = NULL;
    free(s->rx);
    s->rx = NULL;
    s->rx_len = s->rx_cap = 0;
}

static int ws_receive(drv_coordinator *c, drv_wsession *s, struct lws *wsi, const char *in,
                      size_t len)
{
    if (lws_frame_is_binary(wsi)) {
        refuse_with(s, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                    "binary frames are refused: send JSON text frames", NULL);
        return 0;
    }
    if (s->rx_len + len > DRV_MSG_MAX_BYTES) {
        char msg[128];
        snprintf(msg, sizeof msg, "frame larger than the limit of %u bytes", DRV_MSG_MAX_BYTES);
        refuse_with(s, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, msg, NULL);
        return 0;
    }
    bool whole = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    if (whole && s->rx_len == 0) {
        drv_channel_frame(c, s, in, len); /* the common case: no copy */
        return 0;
    }
    if (s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : RX_BUFFER;
        while (cap < s->rx_len + len)
            cap *= 2;
        s->rx = drv_xrealloc(s->rx, cap);
        s->rx_cap = cap;
    }
    memcpy(s->rx + s->rx_len, in, len);
    s->rx_len += len;
    if (whole) {
        size_t n = s->rx_len;
        s->rx_len = 0;
        drv_channel_frame(c, s, s->rx, n);
    }
    return 0;
}

/* Puts s on the list of sessions woken when a commit is durable. */
static void block(drv_coordinator *c, drv_wsession *s)
{
    if (s->blocked)
        return;
    s->blocked = true;
    s->blocked_next = c->blocked;
    c->blocked = s;
}

static void unblock(drv_coordinator *c, drv_wsession *s)
{
    if (!s->blocked)
        return;
    for (drv_wsession **p = &c->blocked; *p; p = &(*p)->blocked_next)
        if (*p == s) {
            *p = s->blocked_next;
            break;
        }
    s->blocked = false;
    s->blocked_next = NULL;
}

void drv_server_wake(drv_coordinator *c)
{
    while (c->blocked) {
        drv_wsession *s = c->blocked;
        c->blocked = s->blocked_next;
        s->blocked = false;
        s->blocked_next = NULL;
        lws_callback_on_writable(s->wsi);
    }
}

/* Writes the next frame of s, unless it waits for a commit that is not durable yet. */
static int ws_write(drv_coordinator *c, drv_wsession *s, struct lws *wsi)
{
    drv_frame *f = s->out_head;
    if (!f)
        return 0;
    if (f->seq > c->durable_seq) {
        block(c, s);
        return 0;
    }
    if (lws_write(wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_TEXT) < (int)f->len)
        return -1;
    s->out_head = f->next;
    if (!s->out_head)
        s->out_tail = NULL;
    free(f);
    if (s->out_head) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (s->closing) /* refused outside a receive callback: lws 4.1 sends no close frame */
        return close_refused(s, wsi);
    return 0;
}

static int cb_worker(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    drv_wsession *s = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char uri[256];
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0 ||
            strcmp(uri, DRV_PROTOCOL_PATH) != 0)
            return 1; /* the worker channel lives at one path only */
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof *s);
        s->wsi = wsi;
        s->lines = strcmp(lws_get_protocol(wsi)->name, DRV_WORKER_PROTOCOL_LINES) == 0;
        drv_server_auth_deadline(drv_server_coord(wsi), wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE: {
        if (s->closing)
            return 0;
        bool had = s->has_worker;
        int rc = ws_receive(drv_server_coord(wsi), s, wsi, in, len);
        if (!had && s->has_worker)
            lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0); /* hello accepted */
        if (s->closing) /* refused: the error frame and a close frame with its reason */
            return close_refused(s, wsi);
        return rc;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return ws_write(drv_server_coord(wsi), s, wsi);
    case LWS_CALLBACK_CLOSED:
        drv_channel_closed(drv_server_coord(wsi), s);
        unblock(drv_server_coord(wsi), s);
        free_frames(s);
        s->wsi = NULL;
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"http", cb_http, sizeof(drv_hsession), 0, 0, NULL, 0},
    {DRV_WORKER_PROTOCOL, cb_worker, sizeof(drv_wsession), RX_BUFFER, 0, NULL, 0},
    {DRV_WORKER_PROTOCOL_LINES, cb_worker, sizeof(drv_wsession), RX_BUFFER, 0, NULL, 0},
    {DRV_DASHBOARD_PROTOCOL, drv_dashboard_callback, DRV_DSESSION_SIZE, 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Says whether path can be read (err names the option and the reason): opened and its
 * first byte read, so a directory (which opens) is "cannot read: Is a directory". */
static int check_readable(const char *option, const char *path, drv_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return drv_error_set(err, "%s %s: cannot read: %s", option, path, strerror(errno));
    errno = 0;
    int rc = 0;
    if (fgetc(f) == EOF && ferror(f))
        rc = drv_error_set(err, "%s %s: cannot read: %s", option, path, strerror(errno));
    fclose(f);
    return rc;
}

/* Loads the certificate chain and key as lws will, so that a file that is not PEM or a
 * key that does not match is an error here, with OpenSSL's reason (lws would log it and
 * leave a context without a server). */
static int check_tls_files(const char *cert, const char *key, drv_error *err)
{
    if (check_readable("--tls-cert", cert, err) < 0 || check_readable("--tls-key", key, err) < 0)
        return -1;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return drv_error_set(err, "TLS: cannot create an OpenSSL context");
    int rc = 0;
    const char *what = NULL, *file = NULL;
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        what = "not a PEM certificate", file = cert;
    else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        what = "not a PEM private key", file = key;
    else if (SSL_CTX_check_private_key(ctx) != 1)
        what = "the key does not match the certificate", file = key;
    if (what) {
        char reason[256];
        ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
        rc = drv_error_set(err, "TLS file %s: %s (%s)", file, what, reason);
    }
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return rc;
}

int drv_server_start(drv_coordinator *c, drv_error *err)
{
    drv_log_configure(c->opt.log_json, c->opt.quiet);
    lws_set_log_level(LLL_ERR | LLL_WARN, drv_log_lws);
    drv_log_forget_lws_error();
    if (c->tls_cert && check_tls_files(c->tls_cert, c->tls_key, err) < 0)
        return -1;
    /* Before the listening socket and lws: lws sizes its tables by the limit. */
    long long before = 0;
    c->listener.fd_limit = drv_listener_raise_nofile(&before);
    if (drv_listener_open(c, err) < 0)
        return -1;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    c->foreign_loops[0] = c->loop;
    info.foreign_loops = c->foreign_loops;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* listener.c accepts and hands over */
    info.protocols = protocols;
    info.user = c;
    info.pt_serv_buf_size = 64 * 1024;
    info.alpn = "http/1.1";
    if (c->tls_cert) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = c->tls_cert;
        info.ssl_private_key_filepath = c->tls_key;
    }
    c->lws = lws_create_context(&info);
    c->vhost = c->lws ? lws_get_vhost_by_name(c->lws, "default") : NULL;
    if (!c->vhost) {
        const char *why = drv_log_last_lws_error();
        drv_error_set(err, "cannot serve on %s:%d%s: libwebsockets refused to start%s%s",
                      c->listen_host, c->port,
                      c->tls_cert ? " (are --tls-cert and --tls-key a PEM certificate and its key?)"
                                  : "",
                      *why ? ": " : "", why);
        drv_listener_close(c);
        /* lws 4.1 cannot destroy a context whose default vhost failed on a foreign
         * loop (its event library is unloaded under its own handles): it is left, the
         * process is about to exit. check_tls_files() keeps this path for the rare. */
        c->lws = NULL;
        return -1;
    }
    drv_listener_start(c);
    drv_coord_log(c, "listening on %s://%s:%d (store %s)", c->tls_cert ? "https" : "http",
                  c->listen_host, c->port, c->db_path);
    if (c->listener.fd_limit > 0) {
        char raised[48] = "";
        if (before > 0 && before != c->listener.fd_limit)
            snprintf(raised, sizeof raised, " (raised from %lld)", before);
        c->listener.fd_used = drv_proc_open_fds();
        drv_coord_log(c, "file descriptors: limit %lld%s, %d in use: room for about %lld workers",
                      c->listener.fd_limit, raised, c->listener.fd_used, drv_listener_room(c));
    }
    return 0;
}
