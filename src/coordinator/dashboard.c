/* dashboard.c - the dashboard's live feed: a WebSocket at DRV_DASHBOARD_PATH (protocol
 * DRV_DASHBOARD_PROTOCOL) on which the coordinator pushes, once a second, one snapshot
 * of what the REST API's status, workers and runs answers say:
 *
 *   {"type": "snapshot", "t": 1763900000.5, "status": {...}, "workers": {...},
 *    "runs": {...}}
 *
 * The snapshot is built once per second for every page watching (not once per page and
 * request, as polling costs), and only when a page watches. When reads need the client
 * token (a client token and no --open-read), the page's first message must be
 * {"token": "..."}; nothing is sent before it, and a wrong token closes the connection
 * (status 1008, "wrong token"). A page that reads slower than once a second gets the
 * latest snapshot, never a backlog: each session holds at most one unsent snapshot.
 *
 * Ownership: each session's pending text is its own (freed when written, replaced or
 * closed); the list of sessions is the coordinator's (c->dashboards). */
#include <stdlib.h>
#include <string.h>

#include "coordinator/coord.h"

#define PUSH_EVERY_S   1.0
#define RUNS_IN_SHOT   10
#define AUTH_FRAME_MAX 4096

struct drv_dsession {
    struct lws *wsi;
    bool authed;
    bool refused;  /* close once the close reason is set */
    char *pending; /* a snapshot to write, LWS_PRE bytes before the text; owned */
    size_t pending_len;
    drv_dsession *prev, *next;
};

_Static_assert(sizeof(drv_dsession) <= DRV_DSESSION_SIZE, "DRV_DSESSION_SIZE is too small");

static bool reads_need_token(const drv_coordinator *c)
{
    return c->client_token && !c->opt.open_read;
}

/* The snapshot as text with LWS_PRE bytes of headroom, or NULL when the store cannot be
 * read now (the next second tries again). */
static char *snapshot(drv_coordinator *c, size_t *len)
{
    drv_error err;
    json_t *status = drv_api_status_json(c, &err);
    json_t *runs = status ? drv_api_runs_json(c, RUNS_IN_SHOT, &err) : NULL;
    if (!runs) {
        json_decref(status);
        return NULL;
    }
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string("snapshot"));
    json_object_set_new(o, "t", json_real(drv_coord_now()));
    json_object_set_new(o, "status", status);
    json_object_set_new(o, "workers", drv_api_workers_json(c));
    json_object_set_new(o, "runs", runs);
    json_object_set_new(o, "anomalies", drv_sampler_anomalies_json(c));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        return NULL;
    *len = strlen(text);
    char *buf = drv_xmalloc(LWS_PRE + *len);
    memcpy(buf + LWS_PRE, text, *len);
    free(text);
    return buf;
}

/* Makes text (len bytes, headroom included; copied) the session's next frame. */
static void queue(drv_dsession *d, const char *buf, size_t len)
{
    free(d->pending);
    d->pending = drv_xmalloc(LWS_PRE + len);
    memcpy(d->pending + LWS_PRE, buf + LWS_PRE, len);
    d->pending_len = len;
    lws_callback_on_writable(d->wsi);
}

/* Sends one session a snapshot now (a page that just connected or authenticated). */
static void push_one(drv_coordinator *c, drv_dsession *d)
{
    size_t len = 0;
    char *buf = snapshot(c, &len);
    if (buf)
        queue(d, buf, len);
    free(buf);
}

void drv_dashboard_tick(drv_coordinator *c, double now)
{
    if (!c->dashboards || now - c->last_push < PUSH_EVERY_S)
        return;
    c->last_push = now;
    size_t len = 0;
    char *buf = NULL;
    for (drv_dsession *d = c->dashboards; d; d = d->next) {
        if (!d->authed || d->refused)
            continue;
        if (!buf && !(buf = snapshot(c, &len)))
            return;
        queue(d, buf, len);
    }
    free(buf);
}

/* The page's first message: {"token": "..."}. */
static void authenticate(drv_coordinator *c, drv_dsession *d, const char *in, size_t len)
{
    json_error_t jerr;
    json_t *o = len <= AUTH_FRAME_MAX ? json_loadb(in, len, 0, &jerr) : NULL;
    const char *token = json_string_value(json_object_get(o, "token"));
    d->authed = token && (drv_coord_token_equal(token, c->client_token) ||
                          (c->read_token && drv_coord_token_equal(token, c->read_token)));
    json_decref(o);
    if (d->authed) {
        lws_set_timeout(d->wsi, NO_PENDING_TIMEOUT, 0);
        push_one(c, d);
        return;
    }
    d->refused = true;
    lws_callback_on_writable(d->wsi);
}

int drv_dashboard_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    drv_dsession *d = user;
    drv_coordinator *c;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char uri[256];
        if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0 ||
            strcmp(uri, DRV_DASHBOARD_PATH) != 0)
            return 1;
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED:
        c = drv_server_coord(wsi);
        memset(d, 0, sizeof *d);
        d->wsi = wsi;
        d->authed = !reads_need_token(c);
        d->next = c->dashboards;
        if (c->dashboards)
            c->dashboards->prev = d;
        c->dashboards = d;
        if (d->authed)
            push_one(c, d);
        else
            drv_server_auth_deadline(c, wsi); /* its token, or it is closed */
        return 0;
    case LWS_CALLBACK_RECEIVE:
        c = drv_server_coord(wsi);
        if (!d->authed && !d->refused)
            authenticate(c, d, in, len);
        if (d->refused) {
            /* Closed from here: lws 4.1 sends the close frame (1008) when a receive
             * callback returns -1 after lws_close_reason(), not a writeable one. */
            static const char why[] = "wrong token";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)why,
                             sizeof why - 1);
            return -1;
        }
        return 0; /* after that, what a page says is ignored */
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (d->refused) {
            static const char why[] = "wrong token";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)why,
                             sizeof why - 1);
            return -1;
        }
        if (!d->pending)
            return 0;
        if (lws_write(wsi, (unsigned char *)d->pending + LWS_PRE, d->pending_len, LWS_WRITE_TEXT) <
            (int)d->pending_len)
            return -1;
        free(d->pending);
        d->pending = NULL;
        return 0;
    case LWS_CALLBACK_CLOSED:
        c = drv_server_coord(wsi);
        if (d->prev)
            d->prev->next = d->next;
        else if (c->dashboards == d)
            c->dashboards = d->next;
        if (d->next)
            d->next->prev = d->prev;
        free(d->pending);
        memset(d, 0, sizeof *d);
        return 0;
    default:
        return 0;
    }
}
