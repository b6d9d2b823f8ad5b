/* dashboard.c - the dashboard's live feed: a WebSocket at DRV_DASHBOARD_PATH (protocol
 * DRV_DASHBOARD_PROTOCOL) on which the coordinator pushes, once a second, one snapshot:
 *
 *   {"type": "snapshot", "t": 1763900000.5, "status": {...}, "fleet": {...},
 *    "workers": {"total": N, "matched": M, "offset": 0, "limit": 50, "sort": "name",
 *                "dir": "asc", "filter": "", "workers": [...one page...]},
 *    "runs": {...}}
 *
 * status and runs are what the REST API answers; fleet is the whole fleet summed up
 * (workers by health and thermal state, slots, running, utilization, the queue by
 * priority band); workers is ONE PAGE of the workers table, sorted and filtered as the
 * page asked: a page sends {"view": {"sort": KEY, "dir": "asc"|"desc", "filter": TEXT,
 * "offset": N, "limit": N}} whenever its view changes (and may put it beside the token
 * in its first message), and gets a snapshot at once. So a page's bytes per second do
 * not grow with the fleet (docs/operations.md has the figures). The parts every page
 * shares are built once per second, the page per session, and only when a page watches.
 *
 * When reads need the client token (a client token and no --open-read), the page's
 * first message must be {"token": "..."}; nothing is sent before it, and a wrong token
 * closes the connection (status 1008, "wrong token"). A page that reads slower than once
 * a second gets the latest snapshot, never a backlog: each session holds at most one
 * unsent snapshot.
 *
 * Ownership: each session's pending text and view are its own (freed when written,
 * replaced or closed); the list of sessions is the coordinator's (c->dashboards). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/coord.h"

#define PUSH_EVERY_S      1.0
#define RUNS_IN_SHOT      10
#define AUTH_FRAME_MAX    4096
#define PAGE_DEFAULT      50
#define PAGE_MAX          500
#define FILTER_MAX        120
#define CURRENT_SHOWN     3 /* test names listed per worker row */
#define ANOMALIES_IN_SHOT 50

/* What one page shows of the workers table. */
typedef struct drv_dview {
    char sort[32]; /* a worker field: name, health, thermal, load, running, ... */
    bool desc;
    char filter[FILTER_MAX + 1]; /* words each found in the name, health, thermal or a tag */
    uint32_t offset, limit;
} drv_dview;

struct drv_dsession {
    struct lws *wsi;
    bool authed;
    bool refused;  /* close once the close reason is set */
    char *pending; /* a snapshot to write, LWS_PRE bytes before the text; owned */
    size_t pending_len;
    drv_dview *view; /* owned; NULL until the first message (then defaults) */
    drv_dsession *prev, *next;
};

_Static_assert(sizeof(drv_dsession) <= DRV_DSESSION_SIZE, "DRV_DSESSION_SIZE is too small");

static bool reads_need_token(const drv_coordinator *c)
{
    return c->client_token && !c->opt.open_read;
}

static const drv_dview default_view = {.sort = "name", .limit = PAGE_DEFAULT};

/* ---- the fleet summed up ---- */

json_t *drv_dashboard_queue_bands(drv_coordinator *c)
{
    /* The sampler keeps these counts as tests enter and leave the queue (a live test's
     * task.state stays what it was at submission, so a scan counted placed ones too). */
    uint64_t band[3];
    drv_sampler_queue_bands(c, band);
    json_t *q = json_object();
    json_object_set_new(q, "high", json_integer((json_int_t)band[0]));
    json_object_set_new(q, "normal", json_integer((json_int_t)band[1]));
    json_object_set_new(q, "low", json_integer((json_int_t)band[2]));
    return q;
}

static json_t *fleet_json(drv_coordinator *c)
{
    uint32_t by_health[5] = {0}, by_thermal[DRV_THERMAL_STATE_COUNT] = {0};
    uint64_t slots = 0, running = 0, assigned = 0, known = 0, connected = 0;
    double load = 0, busy = 0, busy_of = 0;
    uint32_t n = drv_balancer_worker_refs(c->bal);
    for (drv_wref w = 0; w < n && w < c->cap_workers; w++) {
        if (!c->workers[w].known)
            continue;
        const drv_worker *k = drv_balancer_worker(c->bal, w);
        known++;
        by_health[c->workers[w].lost ? 4 : (unsigned)k->health < 4 ? (unsigned)k->health : 0]++;
        if ((unsigned)k->thermal.state < DRV_THERMAL_STATE_COUNT)
            by_thermal[k->thermal.state]++;
        if (!c->workers[w].session)
            continue;
        connected++;
        slots += k->slots;
        running += k->running;
        assigned += k->assigned;
        double b, sl;
        drv_worker_busy_slots(k, &b, &sl);
        busy += b;
        busy_of += sl;
        load += c->workers[w].load;
    }
    json_t *o = json_object(), *h = json_object(), *th = json_object();
    for (unsigned i = 0; i < 4; i++)
        json_object_set_new(h, drv_health_name((drv_health)i), json_integer(by_health[i]));
    json_object_set_new(h, "lost", json_integer(by_health[4]));
    for (unsigned i = 0; i < DRV_THERMAL_STATE_COUNT; i++)
        json_object_set_new(th, drv_thermal_state_name((drv_thermal_state)i),
                            json_integer(by_thermal[i]));
    json_object_set_new(o, "known", json_integer((json_int_t)known));
    json_object_set_new(o, "connected", json_integer((json_int_t)connected));
    json_object_set_new(o, "by_health", h);
    json_object_set_new(o, "by_thermal", th);
    json_object_set_new(o, "slots", json_integer((json_int_t)slots));
    json_object_set_new(o, "running", json_integer((json_int_t)running));
    json_object_set_new(o, "assigned", json_integer((json_int_t)assigned));
    json_object_set_new(o, "utilization", json_real(busy_of > 0 ? busy / busy_of : 0));
    json_object_set_new(o, "load_mean", json_real(connected ? load / (double)connected : 0));
    json_object_set_new(o, "queued_by_priority", drv_dashboard_queue_bands(c));
    return o;
}

/* ---- one page of the workers table ---- */

/* Whether needle (lower case) is in hay, ignoring case. */
static bool has_word(const char *hay, const char *needle, size_t n)
{
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == needle[i])
            i++;
        if (i == n)
            return true;
    }
    return false;
}

/* Whether worker w matches every word of filter (lower case, space separated): each
 * found in its name, health, thermal state or one of its tags. */
static bool worker_matches(drv_coordinator *c, drv_wref w, const char *filter)
{
    const drv_worker *k = drv_balancer_worker(c->bal, w);
    const char *health = c->workers[w].lost ? "lost" : drv_health_name(k->health);
    int ntags = drv_tag_count(c->tags);
    for (const char *p = filter; *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (!n)
            break;
        bool found = has_word(k->name, p, n) || has_word(health, p, n) ||
                     has_word(drv_thermal_state_name(k->thermal.state), p, n);
        for (int t = 0; !found && t < ntags; t++)
            found = drv_tagset_has(&k->caps.tags, t) && has_word(drv_tag_name(c->tags, t), p, n);
        if (!found)
            return false;
        p += n;
    }
    return true;
}

/* A row to sort: its worker and the key (a number, or text when key_text). */
typedef struct drv_drow {
    drv_wref w;
    double key;
    const char *key_text; /* borrowed: the worker's name, or a string of obj */
    json_t *obj;          /* its row, when sorting by a JSON field; owned */
} drv_drow;

static int row_cmp(const void *a, const void *b)
{
    const drv_drow *x = a, *y = b;
    int r = 0;
    if (x->key_text || y->key_text)
        r = strcmp(x->key_text ? x->key_text : "", y->key_text ? y->key_text : "");
    else
        r = (x->key > y->key) - (x->key < y->key);
    return r ? r : (x->w > y->w) - (x->w < y->w);
}

static int row_cmp_desc(const void *a, const void *b)
{
    return row_cmp(b, a);
}

/* Sets row r's key for sort (a field of GET /api/v1/workers); false when sort is not one
 * this file knows (the caller then sorts by the worker's JSON). */
static bool row_key(drv_coordinator *c, drv_drow *r, const char *sort)
{
    const drv_worker *k = drv_balancer_worker(c->bal, r->w);
    const drv_cworker *cw = &c->workers[r->w];
    r->key_text = NULL;
    r->key = 0;
    if (strcmp(sort, "name") == 0)
        r->key_text = k->name;
    else if (strcmp(sort, "health") == 0)
        r->key_text = cw->lost ? "lost" : drv_health_name(k->health);
    else if (strcmp(sort, "thermal") == 0)
        r->key = k->thermal.state;
    else if (strcmp(sort, "slots") == 0)
        r->key = k->slots;
    else if (strcmp(sort, "running") == 0)
        r->key = k->running + k->assigned;
    else if (strcmp(sort, "load") == 0)
        r->key = cw->load;
    else if (strcmp(sort, "finished") == 0)
        r->key = (double)k->history.finished;
    else if (strcmp(sort, "infra_failures") == 0)
        r->key = (double)k->history.infra_failures;
    else if (strcmp(sort, "last_seen") == 0)
        r->key = cw->last_seen;
    else if (strcmp(sort, "score") == 0) { /* the score's value alone; -1: not scored */
        json_t *s = drv_sampler_score_json(c, r->w);
        r->key = json_is_object(s) ? json_number_value(json_object_get(s, "value")) : -1;
        json_decref(s);
    } else
        return false;
    return true;
}

/* The key for sort from a worker's JSON: numbers as numbers, text as text, an object's
 * "value" (a score), anything else (missing, null) below every number. */
static void row_key_json(drv_drow *r, const json_t *o, const char *sort)
{
    const json_t *v = json_object_get(o, sort);
    if (json_is_object(v)) /* {"value": 62, ...} as the score is */
        v = json_object_get(v, "value");
    r->key_text = json_is_string(v) ? json_string_value(v) : NULL;
    r->key = json_is_number(v) ? json_number_value(v) : -1e300;
}

/* One worker's row: its GET /api/v1/workers form (thermal_reason included) and what it
 * holds now (current_count and the names of the first CURRENT_SHOWN). */
static json_t *row_json(drv_coordinator *c, drv_wref w)
{
    json_t *o = drv_api_worker_json(c, w);
    json_t *cur = json_array();
    uint32_t count = 0;
    for (drv_tref t = drv_balancer_held_first(c->bal, w); t != DRV_REF_NONE;
         t = drv_balancer_held_next(c->bal, t)) {
        if (count++ < CURRENT_SHOWN && t < c->cap_tasks && c->tasks[t].live) {
            json_t *e = json_object();
            json_object_set_new(e, "id", json_integer((json_int_t)c->tasks[t].task.id));
            json_object_set_new(e, "name", json_string(c->tasks[t].task.name));
            json_array_append_new(cur, e);
        }
    }
    json_object_set_new(o, "current", cur);
    json_object_set_new(o, "current_count", json_integer(count));
    return o;
}

/* The page of the workers table view v asks for. */
static json_t *workers_page(drv_coordinator *c, const drv_dview *v)
{
    uint32_t n = drv_balancer_worker_refs(c->bal), known = 0, matched = 0;
    drv_drow *rows = drv_xcalloc(n ? n : 1, sizeof *rows);
    for (drv_wref w = 0; w < n && w < c->cap_workers; w++) {
        if (!c->workers[w].known)
            continue;
        known++;
        if (v->filter[0] && !worker_matches(c, w, v->filter))
            continue;
        drv_drow *r = &rows[matched++];
        r->w = w;
        if (!row_key(c, r, v->sort)) { /* a field this file does not know: from the JSON */
            r->obj = row_json(c, w);
            row_key_json(r, r->obj, v->sort);
        }
    }
    qsort(rows, matched, sizeof *rows, v->desc ? row_cmp_desc : row_cmp);
    json_t *list = json_array();
    for (uint32_t i = v->offset; i < matched && i - v->offset < v->limit; i++)
        json_array_append_new(list,
                              rows[i].obj ? json_incref(rows[i].obj) : row_json(c, rows[i].w));
    for (uint32_t i = 0; i < matched; i++)
        json_decref(rows[i].obj);
    free(rows);
    json_t *o = json_object();
    json_object_set_new(o, "total", json_integer(known));
    json_object_set_new(o, "matched", json_integer(matched));
    json_object_set_new(o, "offset", json_integer(v->offset));
    json_object_set_new(o, "limit", json_integer(v->limit));
    json_object_set_new(o, "sort", json_string(v->sort));
    json_object_set_new(o, "dir", json_string(v->desc ? "desc" : "asc"));
    json_object_set_new(o, "filter", json_string(v->filter));
    json_object_set_new(o, "workers", list);
    return o;
}

/* ---- GET /api/v1/workers?sort=&dir=&filter=&offset=&limit= ---- */

#define API_PAGE_MAX 10000

/* Reads parameter name as a whole number min..max into *out (kept when absent). Returns
 * -1 after answering 400 naming it. */
static int query_count(drv_hsession *h, const char *name, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t n;
    int r = drv_api_query_uint(h, name, min, max, &n);
    if (r > 0)
        *out = (uint32_t)n;
    return r < 0 ? -1 : 0;
}

bool drv_dashboard_workers_api(drv_coordinator *c, drv_hsession *h)
{
    static const char *const params[] = {"sort", "dir", "filter", "offset", "limit"};
    char buf[FILTER_MAX + 2];
    bool any = false;
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        any = any || drv_api_query(h, params[i], buf, sizeof buf) != NULL;
    if (!any)
        return false;
    drv_dview v = default_view;
    const char *s = drv_api_query(h, "sort", buf, sizeof buf);
    if (s) {
        if (!*s || strlen(s) >= sizeof v.sort ||
            strspn(s, "abcdefghijklmnopqrstuvwxyz_") != strlen(s)) {
            drv_api_error(h, 400,
                          "sort: expected a worker field (name, health, thermal, load, "
                          "running, slots, score, finished, ...)",
                          "sort");
            return true;
        }
        snprintf(v.sort, sizeof v.sort, "%s", s);
    }
    s = drv_api_query(h, "dir", buf, sizeof buf);
    if (s) {
        if (strcmp(s, "asc") != 0 && strcmp(s, "desc") != 0) {
            drv_api_error(h, 400, "dir: expected asc or desc", "dir");
            return true;
        }
        v.desc = strcmp(s, "desc") == 0;
    }
    s = drv_api_query(h, "filter", buf, sizeof buf);
    if (s) {
        if (strlen(s) > FILTER_MAX) {
            drv_api_error(h, 400, "filter: longer than 120 characters", "filter");
            return true;
        }
        size_t i = 0;
        for (; s[i]; i++)
            v.filter[i] = (char)tolower((unsigned char)s[i]);
        v.filter[i] = '\0';
    }
    if (query_count(h, "offset", 0, UINT32_MAX - 1, &v.offset) < 0 ||
        query_count(h, "limit", 1, API_PAGE_MAX, &v.limit) < 0)
        return true;
    json_t *o = workers_page(c, &v);
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(DRV_JSON_REAL_DIGITS));
    json_decref(o);
    drv_api_respond_text(h, 200, NULL, text ? text : "{}", text ? strlen(text) : 2);
    free(text);
    return true;
}

/* ---- the snapshot ---- */

/* GET /api/v1/anomalies' answer cut to its first ANOMALIES_IN_SHOT (active ones come
 * first), with "count" (all of them) and "active" beside: a large fleet can have
 * thousands, which would make every snapshot as large as the fleet. */
static json_t *anomalies_part(drv_coordinator *c)
{
    json_t *o = drv_sampler_anomalies_json(c);
    json_t *list = json_object_get(o, "anomalies");
    size_t n = json_array_size(list), active = 0, i;
    json_t *a;
    json_array_foreach(list, i, a)
    {
        active += json_is_true(json_object_get(a, "active"));
    }
    while (json_array_size(list) > ANOMALIES_IN_SHOT)
        json_array_remove(list, json_array_size(list) - 1);
    json_object_set_new(o, "count", json_integer((json_int_t)n));
    json_object_set_new(o, "active", json_integer((json_int_t)active));
    return o;
}

/* The parts every page shares (status, fleet, runs), or NULL when the store cannot be
 * read now (the next second tries again). */
static json_t *shared_part(drv_coordinator *c)
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
    json_object_set_new(o, "fleet", fleet_json(c));
    json_object_set_new(o, "runs", runs);
    json_object_set_new(o, "anomalies", anomalies_part(c));
    return o;
}

/* Session d's snapshot as text with LWS_PRE bytes of headroom: shared plus its page. */
static char *snapshot(drv_coordinator *c, const drv_dsession *d, json_t *shared, size_t *len)
{
    json_t *o = json_object();
    json_object_update(o, shared); /* shares the members (references), copies nothing */
    json_object_set_new(o, "workers", workers_page(c, d->view ? d->view : &default_view));
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(DRV_JSON_REAL_DIGITS));
    json_decref(o);
    if (!text)
        return NULL;
    *len = strlen(text);
    char *buf = drv_xmalloc(LWS_PRE + *len);
    memcpy(buf + LWS_PRE, text, *len);
    free(text);
    return buf;
}

/* Makes buf (len bytes after LWS_PRE of headroom; taken over) the session's next frame,
 * in place of one not written yet. */
static void queue(drv_dsession *d, char *buf, size_t len)
{
    free(d->pending);
    d->pending = buf;
    d->pending_len = len;
    lws_callback_on_writable(d->wsi);
}

/* Sends one session a snapshot now (a page that just connected, authenticated or
 * changed its view). */
static void push_one(drv_coordinator *c, drv_dsession *d)
{
    json_t *shared = shared_part(c);
    size_t len = 0;
    char *buf = shared ? snapshot(c, d, shared, &len) : NULL;
    if (buf)
        queue(d, buf, len);
    json_decref(shared);
}

void drv_dashboard_tick(drv_coordinator *c, double now)
{
    if (!c->dashboards || now - c->last_push < PUSH_EVERY_S)
        return;
    c->last_push = now;
    json_t *shared = NULL;
    for (drv_dsession *d = c->dashboards; d; d = d->next) {
        if (!d->authed || d->refused)
            continue;
        if (!shared && !(shared = shared_part(c)))
            return;
        size_t len = 0;
        char *buf = snapshot(c, d, shared, &len);
        if (buf)
            queue(d, buf, len);
    }
    json_decref(shared);
}

/* Reads a view from the page's {"view": {...}} into d's (members left out keep their
 * values; wrong ones are ignored: the page sees what it gets in the snapshot). */
static void read_view(drv_dsession *d, const json_t *v)
{
    if (!json_is_object(v))
        return;
    if (!d->view) {
        d->view = drv_xmalloc(sizeof *d->view);
        *d->view = default_view;
    }
    drv_dview *w = d->view;
    const char *s = json_string_value(json_object_get(v, "sort"));
    if (s && strlen(s) < sizeof w->sort)
        snprintf(w->sort, sizeof w->sort, "%s", s);
    s = json_string_value(json_object_get(v, "dir"));
    if (s)
        w->desc = strcmp(s, "desc") == 0;
    s = json_string_value(json_object_get(v, "filter"));
    if (s) {
        size_t i = 0;
        for (; s[i] && i < FILTER_MAX; i++)
            w->filter[i] = (char)tolower((unsigned char)s[i]);
        w->filter[i] = '\0';
    }
    const json_t *n = json_object_get(v, "offset");
    if (json_is_integer(n) && json_integer_value(n) >= 0 && json_integer_value(n) < UINT32_MAX)
        w->offset = (uint32_t)json_integer_value(n);
    n = json_object_get(v, "limit");
    if (json_is_integer(n) && json_integer_value(n) >= 1)
        w->limit = json_integer_value(n) > PAGE_MAX ? PAGE_MAX : (uint32_t)json_integer_value(n);
}

/* A message from the page: {"token": "..."} first when reads need it, {"view": {...}}
 * at any time (beside the token too). Anything else is ignored. */
static void receive(drv_coordinator *c, drv_dsession *d, const char *in, size_t len)
{
    if (d->refused)
        return;
    json_error_t jerr;
    json_t *o = len <= AUTH_FRAME_MAX ? json_loadb(in, len, 0, &jerr) : NULL;
    if (!d->authed) {
        const char *token = json_string_value(json_object_get(o, "token"));
        d->authed = token && (drv_coord_token_equal(token, c->client_token) ||
                              (c->read_token && drv_coord_token_equal(token, c->read_token)));
        if (!d->authed) {
            json_decref(o);
            d->refused = true;
            return;
        }
        lws_set_timeout(d->wsi, NO_PENDING_TIMEOUT, 0);
    }
    read_view(d, json_object_get(o, "view"));
    json_decref(o);
    push_one(c, d);
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
        receive(c, d, in, len);
        if (d->refused) {
            /* Closed from here: lws 4.1 sends the close frame (1008) when a receive
             * callback returns -1 after lws_close_reason(), not a writeable one. */
            static const char why[] = "wrong token";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)why,
                             sizeof why - 1);
            return -1;
        }
        return 0;
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
        free(d->view);
        memset(d, 0, sizeof *d);
        return 0;
    default:
        return 0;
    }
}
