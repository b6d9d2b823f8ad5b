/* coord.h - the coordinator's state, shared by its files; not a public header (that is
 * coordinator.h). Who does what:
 *   coordinator.c  start, stop, the end-of-turn step (place, commit, send), the tick
 *                  (lost workers, recovery grace, rebalancing), logging
 *   server.c       libwebsockets: the HTTP protocol (requests in, responses out) and the
 *                  worker WebSocket protocol (frames in, queued frames out)
 *   api.c          the REST API: routes and handlers (docs/api.md)
 *   channel.c      worker messages: hello, heartbeat, started, output, finished, drain
 *   dispatch.c     the balancer's decisions turned into store writes and frames
 *   recovery.c     start-up recovery, adoption of running tests after a reconnect,
 *                  lost workers
 * Everything here runs on the loop thread; the store executes its writes on a thread of
 * its own (store_writer.c), which only signals the loop (the durable handle). */
#ifndef DRV_COORDINATOR_COORD_H
#define DRV_COORDINATOR_COORD_H

#include <jansson.h>
#include <stdarg.h>
#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "balancer/balancer.h"
#include "coordinator/chunked.h"
#include "coordinator/coordinator.h"
#include "coordinator/store.h"
#include "core/idmap.h"
#include "core/predictor.h"
#include "protocol/protocol.h"
#include "sys/log.h"

#define DRV_WORKER_PROTOCOL       DRV_PROTOCOL_SUBPROTOCOL
#define DRV_WORKER_PROTOCOL_LINES DRV_PROTOCOL_SUBPROTOCOL_LINES

/* An outgoing WebSocket frame: LWS_PRE bytes of headroom, then len bytes. Owned by the
 * session's queue; freed once written or when the session closes. */
typedef struct drv_frame {
    struct drv_frame *next;
    uint64_t seq; /* sent once the store's commit seq is durable (0: at once) */
    size_t len;
    unsigned char buf[]; /* LWS_PRE + len */
} drv_frame;

/* One worker WebSocket connection (libwebsockets per-session data, zeroed by lws). */
typedef struct drv_wsession {
    struct lws *wsi;
    drv_wref worker; /* DRV_REF_NONE + 1 == 0 means no hello yet: see has_worker */
    bool has_worker;
    bool closing;           /* an error frame was queued; close once it is out */
    uint16_t close_status;  /* with closing: the WebSocket close status (1008, 1003, 1009) */
    char close_reason[124]; /* with closing: the close frame's reason (at most 123 bytes) */
    bool lines;             /* DRV_PROTOCOL_SUBPROTOCOL_LINES: several messages per frame */
    char *rx;               /* the frame being received, across fragments (owned) */
    size_t rx_len, rx_cap;
    drv_frame *out_head, *out_tail; /* frames to send */
    bool blocked; /* on the coordinator's list of sessions whose next frame waits for
                     a commit to be durable */
    struct drv_wsession *blocked_next;
} drv_wsession;

/* A dashboard page's live feed (dashboard.c); opaque outside it but for its size, which
 * libwebsockets allocates (dashboard.c checks it is enough). */
typedef struct drv_dsession drv_dsession;
#define DRV_DSESSION_SIZE 64

typedef enum drv_http_method { DRV_HTTP_GET = 0, DRV_HTTP_POST, DRV_HTTP_OTHER } drv_http_method;

/* One HTTP request and its response (libwebsockets per-session data of the HTTP
 * protocol; reset for each request of a keep-alive connection). */
typedef struct drv_hsession {
    struct lws *wsi;
    drv_http_method method;
    char path[512];
    char query[2048]; /* "a=1&b=2", URL-decoded per argument by lws */
    char auth[512];   /* the Authorization header */
    char *body;       /* owned */
    size_t body_len, body_cap;
    bool body_too_large;
    bool in_request;          /* between the request line and the response */
    int status;               /* the response, once decided */
    char *resp;               /* owned JSON text */
    const char *content_type; /* static; NULL: application/json */
    size_t resp_len, resp_off;
    bool headers_sent;
    bool waiting_commit; /* respond after the turn's commit */
    uint64_t wait_seq;   /* that commit's number, once handed to the store (0: not yet) */
    struct drv_hsession *pend_prev, *pend_next; /* the coordinator's waiting list */
    /* A read waits until the writes made before it arrived are durable (they are what
     * reads see), in the coordinator's deferred list. */
    uint64_t read_seq;
    struct drv_hsession *defer_prev, *defer_next;
    bool deferred;
    /* srv: a body sent with Transfer-Encoding: chunked, decoded by server.c (lws 4.1
     * hands the raw chunks on); the connection closes after the answer. */
    bool chunked;
    drv_chunked chunk;      /* its decoder (chunked.h) */
    bool chunk_over;        /* the decoder finished (the end, an error or too large) */
    const char *body_error; /* static: the body is malformed (400 with this) */
    bool close_after;       /* answered before its body: close after the answer */
    /* ct3 (issue 13): GET /api/v1/runs/ID?wait=S, a run not done yet: the request is
     * parked (in the deferred list, read_seq 0) and handled again as writes become
     * durable and on each tick, until the run is done or wait_until has passed. */
    bool parked;
    double wait_until; /* 0: not waiting yet */
} drv_hsession;

/* A test the coordinator holds (by balancer reference). */
typedef struct drv_batch_live drv_batch_live;

typedef struct drv_ctask {
    drv_task task; /* everything a worker needs; task.attempts = current attempt */
    int64_t run_id;
    bool live;
    bool unconfirmed; /* held by a worker that reconnected and did not list it */
    /* The current attempt is open (assigned or running, no result, not abandoned). The
     * store's guarded writes only queue with its writer running: this decides. */
    bool attempt_open;
    /* Its assign went out to the worker (exec, issue 11): the test may have started
     * there even before the worker's `started` arrives, so losing that worker charges
     * one of max_retries (recovery.c). */
    bool sent;
    /* The last DRV_LIVE_OUTPUT_MAX bytes the current attempt streamed (output frames),
     * shown by GET /api/v1/tests/ID while it runs; owned, NULL when none. Not stored:
     * the finished frame's tail is. */
    char *live_out;
    uint32_t live_len;
    double queued_at; /* when it last entered the queue (sampler.c); 0: unknown */
    double placed_at; /* when its current attempt was placed (sampler.c) */
    /* A speculative copy runs (speculate.c): this record and twin's are the two copies
     * of one test, each with its own attempt; the first result counts. */
    bool paired;
    drv_tref twin;
    /* py3 (members.c): a batch's member lines read so far; owned, NULL until any. */
    struct drv_batch_live *batch_live;
    uint32_t attempts_used; /* the highest attempt number begun (a copy's too) */
    /* A move waits for its old holder's answer (exec2, two-phase move, dispatch.c): the
     * balancer holds the test on the thief already; its open attempt is still the one
     * sent to move_from, which was asked to release it. */
    bool move_pending;
    drv_wref move_from;
    uint8_t move_reason; /* drv_reason of the move (stolen, rebalanced) */
} drv_ctask;

/* The number of the last attempt begun for ct's test (a speculative copy's included). */
static inline uint32_t drv_ctask_attempts(const drv_ctask *ct)
{
    return ct->attempts_used > ct->task.attempts ? ct->attempts_used : ct->task.attempts;
}

#define DRV_LIVE_OUTPUT_MAX 8192

/* A worker the balancer knows (by balancer index). */
typedef struct drv_cworker {
    drv_wsession *session; /* NULL: not connected */
    double last_seen;
    double load;
    uint32_t free_slots;
    bool known;
    bool lost;
    bool left;             /* lost after it drained itself: it left (not a failure) */
    double gone_at;        /* when it was lost or left */
    char gone_reason[192]; /* why, for people ("no heartbeat for 3.1 s") */
    bool parked;           /* we set it DRAINING because its connection dropped */
    bool reconciling;      /* said hello; unconfirmed tests are settled at its next heartbeat */
    bool welcome;          /* a welcome waits for the commit */
    bool dirty;            /* on the coordinator's send list */
    drv_msg_test *batch;   /* tests placed this turn (borrowed strings), sent after commit */
    size_t n_batch, cap_batch;
    drv_attempt_ref *cancels; /* attempts to cancel, sent after commit */
    size_t n_cancels, cap_cancels;
    /* the quarantine probe (health.c) */
    uint32_t probe_seq;   /* the last probe's number (its attempt; task id 0) */
    bool probe_pending;   /* sent, no result yet */
    double probe_sent_at; /* when the pending probe was sent */
    double probe_next;    /* when the next probe is due; 0: not scheduled */
    /* The worker process of its last hello (exec3; also in the store); "" unknown. */
    char instance[DRV_INSTANCE_MAX];
    bool restarted; /* its last hello came from another process, or did not say */
} drv_cworker;

/* The monitor's state (sampler.c); opaque. */
typedef struct drv_sampler drv_sampler;

/* A test found assigned or running at start, waiting for its worker to come back. */
typedef struct drv_orphan {
    drv_task task;
    int64_t run_id;
    char *worker;
    bool done; /* adopted or queued again */
} drv_orphan;

/* The listening socket (listener.c). */
typedef struct drv_listener {
    int fd; /* -1: none */
    uv_poll_t poll;
    uv_timer_t pause; /* accepting resumes when it fires */
    bool started;     /* poll and pause are initialised (closed by drv_listener_close) */
    bool paused;
    long long fd_limit; /* RLIMIT_NOFILE after raising it */
    int fd_used;        /* descriptors open once serving began (-1: unknown) */
    double last_report; /* out of descriptors last logged (0: never) */
    uint64_t refused;   /* accept failures since then */
} drv_listener;

/* Store retention's progress (retention.c). */
typedef struct drv_retention {
    uint64_t tails;    /* attempts whose output tails were removed since the last log line */
    int64_t run;       /* the run being removed (0: none found yet) */
    uint64_t wait_seq; /* the commit holding the last step's deletions */
    double next;       /* when the next step is due */
    uint64_t runs, tasks, events; /* removed since the last log line */
} drv_retention;

struct drv_coordinator {
    uv_loop_t *loop;
    drv_coordinator_options opt; /* strings point into the copies below */
    char *listen_host, *db_path, *client_token, *worker_token, *tls_cert, *tls_key;
    char *probe_command;
    char *dashboard; /* the composed page (web.c); owned */
    size_t dashboard_len;
    int listen_port;
    void *foreign_loops[1]; /* read by lws_create_context */
    struct lws_context *lws;
    struct lws_vhost *vhost;
    int port;

    drv_store *store;
    int lock_fd;
    char *lock_path;
    drv_tag_table *tags;
    drv_predictor *pred;
    drv_balancer *bal;

    drv_ctask *tasks; /* by drv_tref */
    size_t cap_tasks;
    drv_idmap by_id;      /* task id -> tref of live tasks */
    drv_cworker *workers; /* by drv_wref */
    size_t cap_workers;
    uint32_t *send_list; /* wrefs with something to send after the commit */
    size_t n_send, cap_send;
    drv_orphan *orphans;
    size_t n_orphans, orphans_left;
    /* py3 (members.c): members that failed in a run, so a rerun adds an attempt. */
    struct drv_member_fail *member_fails;
    size_t n_member_fails, cap_member_fails;
    double recovery_deadline;
    /* suite: tests found queued at start whose after names a test not in the balancer
     * yet (an orphan, or another of these): submitted once those are (recovery.c). */
    drv_orphan *after_waiting;
    size_t n_after_waiting;

    drv_hsession *pending;  /* responses that wait for the commit */
    drv_hsession *deferred; /* reads that wait for earlier writes to be durable */
    uint64_t frame_seq;     /* frames queued now wait for this commit (on_turn) */
    uint64_t durable_seq;   /* the newest commit known durable */
    drv_wsession *blocked;  /* sessions whose next frame waits for a commit */
    uv_check_t turn;
    uv_timer_t tick;
    uv_async_t durable; /* the store's writer made a commit durable (or failed) */
    int closed_handles; /* of turn, tick and durable, after stop */
    bool place_needed;
    bool stopping;
    double started_at;
    uint64_t epoch; /* this start's number (store epochs): every welcome and assign says it */
    double last_rebalance;
    drv_sampler *sampler;     /* the monitor (sampler.c) */
    char *read_token;         /* reads only (--read-token); NULL: none */
    double last_learned;      /* learned durations last written */
    drv_dsession *dashboards; /* pages watching the live feed (dashboard.c) */
    double last_push;         /* the last snapshot pushed to them */
    void (*stop_done)(void *);
    void *stop_data;
    uint64_t late_results;
    drv_listener listener;   /* srv: our own listening socket */
    drv_retention retention; /* srv: store retention */
    bool speculate_due;      /* look for stragglers after the next placement */
    double last_speculate;   /* when speculate_due was last set */
    /* exec2: tests whose move waits for the old holder's release (ctask.move_pending);
     * few at a time. moves_done / moves_dropped count the outcomes. */
    drv_tref *moves;
    size_t n_moves, cap_moves;
    uint64_t moves_done, moves_dropped;
};

/* ---- speculate.c ---- */
/* The live record of test id for attempt `attempt`: as drv_coord_task_by_id(), but of a
 * pair the copy that runs that attempt (the other when neither does). */
drv_ctask *drv_speculate_task(drv_coordinator *c, uint64_t id, uint32_t attempt, drv_tref *t);
/* Starts speculative copies of stragglers (drv_balancer_stragglers) where slots idle. */
void drv_speculate_tick(drv_coordinator *c, double now);
/* Test t, one of a pair, has its result (its attempt is recorded): true when the result
 * does not count (an infrastructure failure: t is dropped and the other copy goes on),
 * false when it does (the other copy is superseded and killed; t is the test). */
bool drv_speculate_finished(drv_coordinator *c, drv_tref t, bool infra_failure);
/* A decision about t, one of a pair, other than its result: true when handled here (the
 * copy is dropped, the test goes on with the other), false to go on as usual. */
bool drv_speculate_decision(drv_coordinator *c, const drv_decision *d);

/* ---- log lines: sys/log.h ---- */

/* ---- coordinator.c ---- */
double drv_coord_now(void);        /* seconds since the Unix epoch */
double drv_coord_thread_cpu(void); /* CPU seconds of the calling thread */
/* An info line (nothing with --quiet); drv_coord_warn a warning (printed even then). */
void drv_coord_log(drv_coordinator *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void drv_coord_warn(drv_coordinator *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A store write failed where it cannot be undone: logs and exits with status 3. */
_Noreturn void drv_coord_fatal(drv_coordinator *c, const drv_error *err);
/* Makes sure c->tasks / c->workers can be indexed by ref. */
void drv_coord_reserve_task(drv_coordinator *c, drv_tref t);
void drv_coord_reserve_worker(drv_coordinator *c, drv_wref w);
/* The live test with this id, or NULL. */
drv_ctask *drv_coord_task_by_id(drv_coordinator *c, uint64_t id, drv_tref *tref);
/* Puts w on the list of workers to send to after the commit. */
void drv_coord_mark_send(drv_coordinator *c, drv_wref w);

/* ---- listener.c ---- */
/* Raises the soft RLIMIT_NOFILE to the hard one (at most 2^20); returns the limit now
 * (-1: unknown) and sets *before to what it was. */
long long drv_listener_raise_nofile(long long *before);
/* Resolves c->listen_host, binds and listens on c->listen_port; sets c->port. On failure
 * err says why (in use, not local, does not resolve) and nothing is open. */
int drv_listener_open(drv_coordinator *c, drv_error *err);
/* About how many workers the descriptor limit leaves room for (one each). */
long long drv_listener_room(const drv_coordinator *c);
/* Starts accepting on the loop (connections go to c->vhost). */
void drv_listener_start(drv_coordinator *c);
/* Stops accepting and closes the socket (the handles close on the loop). */
void drv_listener_close(drv_coordinator *c);

/* ---- retention.c ---- */
/* One retention step when due (opt.retention_days > 0). */
void drv_retention_tick(drv_coordinator *c, double now);
/* The time before which finished runs and events are removed (0: none are):
 * for other tables that keep history (metrics history, srv/mon). */
double drv_retention_cutoff(const drv_coordinator *c, double now);

/* ---- server.c ---- */
int drv_server_start(drv_coordinator *c, drv_error *err);
/* The coordinator a libwebsockets connection belongs to (the context's user data). */
drv_coordinator *drv_server_coord(struct lws *wsi);
/* Queues text (len bytes) as one frame on s, to be sent when writable. */
void drv_server_queue(drv_wsession *s, const char *text, size_t len);
/* Closes wsi (an upgraded connection) unless it authenticates within the coordinator's
 * auth_timeout_s: lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0) once it has. */
void drv_server_auth_deadline(drv_coordinator *c, struct lws *wsi);
/* Asks lws to call back when s (or h) can be written. */
void drv_server_want_write(struct lws *wsi);
/* Asks lws to call back every session whose next frame waited for a commit. */
void drv_server_wake(drv_coordinator *c);
/* Takes h off the list of responses waiting for a commit (no-op when it is not). */
void drv_server_unlink_pending(drv_coordinator *c, drv_hsession *h);
/* Handles the deferred reads whose writes are now durable (c->durable_seq). */
void drv_server_run_deferred(drv_coordinator *c);
/* Queues an error frame about a refused message; the connection stays open. */
void drv_server_send_error(drv_wsession *s, const char *message, const char *field);
/* Queues an error frame and closes the connection once it is out. */
void drv_server_refuse(drv_wsession *s, const char *message, const char *field);

/* ---- api.c ---- */
/* Handles the complete request in h: sets h->status and h->resp, and waiting_commit
 * when the answer must wait for the turn's commit. */
void drv_api_handle(drv_coordinator *c, drv_hsession *h);
/* The answers of GET /api/v1/status, /workers and /runs?limit= as JSON (new references),
 * for the dashboard's push (dashboard.c) as for the API. status and runs return NULL
 * with err filled when the store cannot be read. */
json_t *drv_api_status_json(drv_coordinator *c, drv_error *err);
json_t *drv_api_workers_json(drv_coordinator *c);
json_t *drv_api_runs_json(drv_coordinator *c, uint32_t limit, drv_error *err);
/* One worker as GET /api/v1/workers lists it (a new reference); w must be known. */
json_t *drv_api_worker_json(drv_coordinator *c, drv_wref w);
/* Sets the response: status, content_type (static; NULL: application/json) and the len
 * bytes of text (copied; a final newline added when it has none). */
void drv_api_respond_text(drv_hsession *h, int status, const char *content_type, const char *text,
                          size_t len);
/* The coordinator's resident memory now and at its peak, in KiB, from /proc/self/status
 * (Linux); -1 where it cannot be read. */
void drv_api_memory_kb(long long *rss_kb, long long *hwm_kb);
/* Sets a JSON error response {"error": message, "field": field}. */
void drv_api_error(drv_hsession *h, int status, const char *message, const char *field);

/* ---- channel.c ---- */
/* Compares a presented token with the expected one in time that does not depend on
 * where they differ (only on the expected one's length). */
bool drv_coord_token_equal(const char *got, const char *want);
/* One complete text frame from a worker connection (one message, or one per line on
 * the lines subprotocol). */
void drv_channel_frame(drv_coordinator *c, drv_wsession *s, const char *text, size_t len);
/* The connection closed (either side). */
void drv_channel_closed(drv_coordinator *c, drv_wsession *s);

/* ---- dispatch.c ---- */
/* Applies one balancer decision: store writes and frames to send after the commit.
 * res (may be NULL) is the result that led to it, for a final test's exit status. */
void drv_dispatch_decision(drv_coordinator *c, const drv_decision *d, const drv_store_result *res);
/* Places what can be placed now. */
void drv_dispatch_place(drv_coordinator *c, double now);
/* After the commit: sends welcomes, assigns and cancels of every worker on the list. */
void drv_dispatch_flush(drv_coordinator *c);
/* Queues t (its current attempt, already begun in the store) for worker w's next
 * assign. */
void drv_dispatch_queue_assign(drv_coordinator *c, drv_wref w, drv_tref t);
/* Queues a cancel of (task, attempt) for worker w. */
void drv_dispatch_queue_cancel(drv_coordinator *c, drv_wref w, uint64_t task_id, uint32_t attempt);
/* Encodes m and queues it on s (sent when s is writable). */
void drv_dispatch_send(drv_wsession *s, const drv_msg *m);
/* Appends output of t's current attempt to its live tail (keeping the last
 * DRV_LIVE_OUTPUT_MAX bytes); drops the tail when data is NULL. */
void drv_dispatch_live_output(drv_ctask *ct, const char *data, size_t len);
/* Releases the coordinator's record of a final test. */
void drv_dispatch_forget(drv_coordinator *c, drv_tref t);
/* The two-phase move (exec2, docs/balancer.md). Worker w answered a release. */
void drv_dispatch_released(drv_coordinator *c, drv_wref w, const drv_msg_release *m, double now);
/* Worker w reports a start or result of ref: a move of it away from w that waits is
 * dropped first (it runs on w). */
void drv_dispatch_move_kept(drv_coordinator *c, drv_wref w, const drv_attempt_ref *ref, double now);
/* Every move that waits with w at either end is dropped, for `why` (w closed its
 * connection, was lost, drains, or does not know release): its test stays with its old holder,
 * where the usual rules apply. */
void drv_dispatch_moves_drop_for(drv_coordinator *c, drv_wref w, const char *why, double now);

/* The coordinator's version ("0.3.0"). */
const char *drv_api_version(void);
/* The value of query parameter name (NULL when absent), copied into buf (len bytes). */
const char *drv_api_query(const drv_hsession *h, const char *name, char *buf, size_t len);
/* Reads query parameter name as a whole number min..max into *out. Returns 1 when read,
 * 0 when absent (*out untouched), -1 after answering 400 naming the parameter. */
int drv_api_query_uint(drv_hsession *h, const char *name, uint64_t min, uint64_t max,
                       uint64_t *out);
/* Whether the Authorization header auth lets a request through: the client token, or
 * for a read (write false) the read token or --open-read. */
bool drv_api_authorized(const drv_coordinator *c, const char *auth, bool write);

/* ---- sampler.c (monitoring: docs/api.md, "Monitoring") ---- */
/* Creates c->sampler, reading the series the store has. Returns 0 or -1 with err. */
int drv_sampler_start(drv_coordinator *c, double retention_s, drv_error *err);
void drv_sampler_free(drv_coordinator *c);

/* members.c (py3, issue 13): a batch's result came in (res, from worker w): records each
 * member test's result not recorded yet as a test of its own and learns its duration.
 * Returns true when every member reported its end. */
bool drv_members_finished(drv_coordinator *c, drv_ctask *batch, drv_wref w,
                          const drv_store_result *res, double now);
/* A batch's output as it streams in from worker w: a member's end line records its
 * result at once (drover pytest -v prints it then). */
void drv_members_output(drv_coordinator *c, drv_ctask *ct, drv_wref w, const char *data, size_t len,
                        double now);
/* Frees what ct kept of its members' lines. */
void drv_members_live_free(drv_ctask *ct);
/* ct, a batch taken back from the store at start: its members whose results were stored
 * before the restart keep them (their lines, seen again, are not recorded twice). */
void drv_members_recovered(drv_coordinator *c, drv_ctask *ct);
void drv_members_free(drv_coordinator *c);
/* Samples every second (called by the tick), runs the anomaly detectors and, once a
 * minute, deletes samples past their resolution's keep time. */
void drv_sampler_tick(drv_coordinator *c, double now);
/* What happens, as it happens: a test entered the queue (submitted or recovered); a
 * balancer decision about ct (before the dispatch acts on it); an attempt started; a
 * result of worker w about test t (before the balancer counts it: t is still held); a
 * heartbeat; a connection lost; a speculative copy started. */
void drv_sampler_queued(drv_coordinator *c, drv_ctask *ct, double now);
void drv_sampler_decision(drv_coordinator *c, const drv_decision *d, drv_ctask *ct, double now);
void drv_sampler_started(drv_coordinator *c, drv_ctask *ct, double now);
void drv_sampler_result(drv_coordinator *c, drv_wref w, drv_tref t, const drv_result *r,
                        double now);
void drv_sampler_heartbeat(drv_coordinator *c, drv_wref w, double now);
void drv_sampler_loss(drv_coordinator *c, drv_wref w, double now);
void drv_sampler_speculation(drv_coordinator *c);
/* A move of ct is done (its next attempt begins on the new worker): counted in the moves
 * (and the steals when reason is DRV_R_STOLEN) only now, so a two-phase move that was
 * dropped is not counted. */
void drv_sampler_moved(drv_coordinator *c, drv_ctask *ct, drv_reason reason, double now);
/* Tests queued now by priority band: [0] high (>= 500), [1] normal (1..499), [2] low (0). */
void drv_sampler_queue_bands(drv_coordinator *c, uint64_t band[3]);
/* mon3: worker w (named name) is forgotten (--forget-workers-after): its monitoring
 * record goes, and its utilization series with its samples, so that the store does not
 * grow with the fleet's churn. */
void drv_sampler_forget_worker(drv_coordinator *c, drv_wref w, const char *name);
/* Adds loop CPU seconds spent on the sampler (which 0) or the dashboard feed (1). */
void drv_sampler_loop_cpu(drv_coordinator *c, int which, double seconds);
/* GET /api/v1/metrics, GET /api/v1/anomalies (new references), a worker's score (JSON
 * null before its first assessment). */
json_t *drv_sampler_metrics_json(drv_coordinator *c);
json_t *drv_sampler_anomalies_json(drv_coordinator *c);
json_t *drv_sampler_score_json(drv_coordinator *c, drv_wref w);
/* Worker w's measured speed per model family against its class, with what the balancer
 * learned of the family (docs/api.md, GET /api/v1/workers/NAME, speed_by_family). */
json_t *drv_sampler_speed_by_family_json(drv_coordinator *c, drv_wref w);
/* Digits of the reals in JSON people read (anomalies, the worker detail, the dashboard
 * feed): figures rounded when built print as such (0.1513, not 0.15129999999999999);
 * times keep 10 us. */
#define DRV_JSON_REAL_DIGITS 15
/* GET /api/v1/anomalies: without from/to, drv_sampler_anomalies_json(); with them
 * (mon3), the stored anomalies open at some time in [from, to] (from the store: they
 * survive a restart and are kept like the metrics history). Sets the response. */
void drv_sampler_anomalies(drv_coordinator *c, drv_hsession *h);
/* GET /api/v1/metrics/history: parses h's query and sets the response. */
void drv_sampler_history(drv_coordinator *c, drv_hsession *h);
/* The monitoring families of /metrics: histograms, thermal states, scores, anomalies. */
void drv_sampler_prometheus(drv_coordinator *c, FILE *out);

/* ---- metrics_text.c ---- */
/* Writes s as a Prometheus label value (without the quotes). */
void drv_metrics_label(FILE *out, const char *s);
/* GET /metrics: the coordinator's figures in Prometheus' text format. */
void drv_metrics_text(drv_coordinator *c, drv_hsession *h);

/* ---- dashboard.c ---- */
/* libwebsockets' callback of DRV_DASHBOARD_PROTOCOL. */
int drv_dashboard_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len);
/* Pushes a snapshot to every watching page, at most once a second. */
void drv_dashboard_tick(drv_coordinator *c, double now);
/* The queued tests by priority band, {"high": N, "normal": N, "low": N} (high >= 500,
 * normal 1..499, low 0, as the sampled series cut them); a new reference. Counts the
 * live tests in memory (no store read). */
json_t *drv_dashboard_queue_bands(drv_coordinator *c);
/* GET /api/v1/workers with any of sort, dir, filter, offset, limit: answers one page of
 * the workers table, the same view as the feed's (docs/api.md), or 400 naming a wrong
 * parameter. Returns false (answering nothing) when none of them is given. */
bool drv_dashboard_workers_api(drv_coordinator *c, drv_hsession *h);

/* ---- web.c ---- */
/* Serves the dashboard page for GET / and /dashboard; returns false for other paths. */
bool drv_web_handle(drv_coordinator *c, drv_hsession *h);
/* web/ and uPlot's files, embedded at build time (cmake/embed_files.cmake):
 * NUL-terminated, _len without the NUL. */
extern const unsigned char drv_web_dashboard_html[], drv_web_dashboard_js[],
    drv_web_dashboard_css[], drv_web_uplot_js[], drv_web_uplot_css[];
extern const size_t drv_web_dashboard_html_len, drv_web_dashboard_js_len, drv_web_dashboard_css_len,
    drv_web_uplot_js_len, drv_web_uplot_css_len;

/* ---- health.c ---- */
/* The reason an operator's drain is stored with (api.c). */
#define DRV_HEALTH_OPERATOR_DRAIN "drained by an operator"
/* Whether health h (with its reason) is about the machine and outlives a connection:
 * a quarantine, an operator's drain. */
bool drv_health_persists(drv_health h, const char *reason);
/* Worker w said hello: a quarantine or operator's drain stored for it is applied again
 * (before its record is written back). */
void drv_health_hello(drv_coordinator *c, drv_wref w, double now);
/* Worker w's health went from before to what the balancer says now after a result: a
 * new quarantine is stored and logged. */
void drv_health_changed(drv_coordinator *c, drv_wref w, drv_health before, double now);
/* Sends due probes to quarantined workers and gives up on unanswered ones. */
void drv_health_tick(drv_coordinator *c, double now);
/* A finished frame about task id 0: a probe's outcome. */
void drv_health_probe_finished(drv_coordinator *c, drv_wsession *s, const drv_msg_finished *m);

/* ---- after.c ---- */
/* Hands the n tests of one submission (stored, with ids) to the balancer, each after the
 * tests it runs after, and makes them live tests of the coordinator (the tasks are moved
 * out: the caller frees only the array). A test the balancer refuses is stored failed. */
void drv_after_submit(drv_coordinator *c, drv_task *tasks, size_t n, int64_t run_id, double now);
/* Why t was skipped, in words: "a test it runs after did not pass (after: a, b)". */
void drv_after_reason(const drv_task *t, char *buf, size_t len);
/* Resolves t's after names within run run_id (after a restart): live tests into *after
 * (n_after; owned by the caller), final ones that did not pass counted in *not_passed.
 * Returns 0; 1 when pending(ctx, run, name) says one is not in the balancer yet (try
 * again later; *after is NULL); -1 with err when the store cannot tell. */
int drv_after_resolve(drv_coordinator *c, const drv_task *t, int64_t run_id,
                      bool (*pending)(void *ctx, int64_t run_id, const char *name), void *ctx,
                      drv_tref **after, size_t *n_after, uint32_t *not_passed, drv_error *err);

/* ---- recovery.c ---- */
/* Takes back every test not final from the store (at start). */
int drv_recovery_load(drv_coordinator *c, double now, drv_error *err);
/* Worker w said hello listing running[]: adopts its orphans and reconciles what the
 * balancer thinks it holds. */
void drv_recovery_hello(drv_coordinator *c, drv_wref w, const drv_attempt_ref *running,
                        size_t n_running, double now);
/* Worker w sent a heartbeat after a reconnect: tests still unconfirmed are lost. */
void drv_recovery_settle(drv_coordinator *c, drv_wref w, double now);
/* Orphans whose grace is over are queued again. */
void drv_recovery_expire(drv_coordinator *c, double now);
/* w is lost (silent too long): its tests go back through the retry rule. */
/* Forgets lost and left workers that hold nothing, forget_workers_s after they went
 * (exec, issue 11). */
void drv_recovery_forget_workers(drv_coordinator *c, double now);
void drv_recovery_worker_lost(drv_coordinator *c, drv_wref w, double now, const char *why);

#endif
