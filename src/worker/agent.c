/* agent.c - the worker's connection to the coordinator (see agent.h for the contract).
 *
 * One drv_agent is one lws client connection plus what the worker holds: the tests
 * waiting for a slot (queue, in arrival order, later attempts first), the tests whose process runs
 * (running), and the frames waiting to be written (outq). Frames are stored in a byte
 * queue, each record a header, LWS_PRE bytes of room for lws and the JSON text, so a
 * frame costs no allocation of its own. The `finished` frames written on the current
 * connection are copied to a second queue (sent) for DRV_AGENT_RESEND_WINDOW_S from
 * their first write, so that a connection lost right after a write does not lose a
 * result.
 *
 * Life of a connection: connect (lws) -> ESTABLISHED: hello is written -> welcome:
 * heartbeats start and the outbox is written, up to FRAMES_PER_WRITEABLE frames per
 * WRITEABLE callback while lws says the socket is not choked (on the lines
 * subprotocol each frame joins as many messages as fit in BATCH_BYTES) ->
 * CLOSED or CONNECTION_ERROR: the outbox keeps what is about attempts, the retry timer
 * waits the backoff and connects again.
 *
 * Freeing: drv_agent_free() detaches the connection, frees the runs (which kills them)
 * and closes the four timers; the memory goes in the last close callback, so code
 * still on the stack under an event callback can read the agent safely. */
#include <errno.h>
#include <libwebsockets.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/worker.h"
#include "worker/guardian.h"
#include "worker/agent.h"
#include "worker/probe.h"
#include "sys/proc_status.h"
#include "worker/runner.h"

/* The WebSocket subprotocols offered, best first: a coordinator that knows the lines
 * variant (several messages per frame) picks it. AGENT_PROTOCOL_NAME binds either to
 * the agent's callback. */
#define AGENT_PROTOCOL_NAME  DRV_PROTOCOL_SUBPROTOCOL
#define AGENT_PROTOCOLS      DRV_PROTOCOL_SUBPROTOCOL_LINES ", " DRV_PROTOCOL_SUBPROTOCOL
#define BATCH_BYTES          (64u * 1024) /* most bytes of messages joined into one frame */
#define AGENT_RX_BUFFER      16384
#define AGENT_TX_PACKET      (256u * 1024)
#define SENT_LOG_MAX_BYTES   (16u * 1024 * 1024)
#define RX_KEEP_BYTES        (1024u * 1024) /* a larger receive buffer is freed after use */
#define NOTE_CAP             "\n[drover: output cap of %llu bytes reached; the rest is not streamed]\n"
#define REFUSED_LIST_MAX     16 /* attempts named in a refused-assign error */
#define FRAMES_PER_WRITEABLE 64 /* most frames written in one WRITEABLE callback */

/* ---- the byte queue of frames -------------------------------------------------------- */

typedef struct frame_hdr {
    uint64_t task_id;
    double t; /* sent log: when it was written (monotonic seconds) */
    uint32_t len;
    uint32_t attempt;
    uint32_t type; /* drv_msg_type */
    uint32_t pad;
} frame_hdr;

typedef struct frame_queue {
    unsigned char *buf; /* owned */
    size_t cap, head, tail;
    size_t count;        /* records */
    size_t finished;     /* records of type finished */
    size_t output_bytes; /* bytes of output records */
    size_t bytes;        /* bytes of every record's text */
} frame_queue;

/* Bytes of one record of len bytes of text, a multiple of 8 so headers stay aligned. */
static size_t rec_size(uint32_t len)
{
    return (sizeof(frame_hdr) + LWS_PRE + (size_t)len + 7u) & ~(size_t)7u;
}

/* Appends a record (header h, text data of h->len bytes), growing the buffer. */
static void fq_push(frame_queue *q, const frame_hdr *h, const void *data)
{
    size_t need = rec_size(h->len);
    if (q->tail + need > q->cap && q->head > 0) {
        memmove(q->buf, q->buf + q->head, q->tail - q->head);
        q->tail -= q->head;
        q->head = 0;
    }
    if (q->tail + need > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        while (cap < q->tail + need)
            cap *= 2;
        q->buf = drv_xrealloc(q->buf, cap);
        q->cap = cap;
    }
    memcpy(q->buf + q->tail, h, sizeof *h);
    memcpy(q->buf + q->tail + sizeof *h + LWS_PRE, data, h->len);
    q->tail += need;
    q->count++;
    q->bytes += h->len;
    if (h->type == DRV_MSG_FINISHED)
        q->finished++;
    if (h->type == DRV_MSG_OUTPUT)
        q->output_bytes += h->len;
}

/* The record at offset off: copies its header into *h and returns its text (with
 * LWS_PRE writable bytes before it). */
static unsigned char *fq_at(const frame_queue *q, size_t off, frame_hdr *h)
{
    memcpy(h, q->buf + off, sizeof *h);
    return q->buf + off + sizeof *h + LWS_PRE;
}

/* Drops the oldest record; the queue must not be empty. */
static void fq_pop(frame_queue *q)
{
    frame_hdr h;
    fq_at(q, q->head, &h);
    q->head += rec_size(h.len);
    q->count--;
    q->bytes -= h.len;
    if (h.type == DRV_MSG_FINISHED)
        q->finished--;
    if (h.type == DRV_MSG_OUTPUT)
        q->output_bytes -= h.len;
    if (q->head == q->tail) {
        q->head = q->tail = 0;
        if (q->cap > RX_KEEP_BYTES) { /* a burst is over: give the memory back */
            free(q->buf);
            q->buf = NULL;
            q->cap = 0;
        }
    }
}

/* Frees the queue's buffer and empties it. */
static void fq_free(frame_queue *q)
{
    free(q->buf);
    memset(q, 0, sizeof *q);
}

/* ---- the agent ------------------------------------------------------------------------- */

typedef enum agent_mode {
    MODE_RUN = 0,      /* taking work */
    MODE_COORD_DRAIN,  /* the coordinator asked: finish everything held */
    MODE_WORKER_DRAIN, /* drv_agent_drain(): finish the running ones, then leave */
    MODE_ABORT,        /* drv_agent_abort(): runs cancelled, deliver what we can */
    MODE_REFUSED,      /* the hello was refused: runs cancelled, then done */
    MODE_DONE,
} agent_mode;

typedef struct agent_test agent_test;

typedef struct test_list {
    agent_test *head, *tail;
    uint32_t n;
} test_list;

struct agent_test {
    agent_test *prev, *next; /* in the agent's queue or running list */
    drv_agent *agent;
    drv_msg_test t;        /* owned (moved out of the assign) */
    drv_run *run;          /* owned while running (a real run) */
    uv_timer_t *sim_timer; /* owned while running (a simulated run; freed when closed) */
    double sim_s;          /* simulated: the drawn duration */
    double sim_start;      /* simulated: when it took its slot (monotonic seconds) */
    bool sim_killed;       /* simulated: cancelled; the timer reports it now */
    uint64_t seq;          /* next output chunk's seq */
    uint64_t cap;          /* output bytes that may be streamed */
    uint64_t streamed;
    bool cap_noted;
    bool stopped; /* killed because the worker stops (drain deadline, abort, refusal) */
    drv_stream pend_stream;
    char *pend; /* output not yet sent (owned) */
    size_t pend_len, pend_cap;
    /* The last DRV_STDERR_TAIL_MAX bytes of stderr alone (owned; NULL until any), sent in
     * finished beside the tail of both streams, so reports keep the two apart. */
    char *err_tail;
    size_t err_len;
};

struct drv_agent_hub {
    uv_loop_t *loop;
    struct lws_context *ctx; /* lws writes NULL here once the context is wholly freed */
    void *loops[1];
    drv_agent *connecting; /* the agent inside lws_client_connect_via_info() */
    uv_idle_t reaper;      /* finishes the context's destruction (drv_agent_hub_free) */
    bool quiet;            /* drv_agent_hub_quiet(): connections without validity pings */
};

struct drv_agent {
    drv_agent_hub *hub;
    drv_agent_config cfg; /* strings point to the owned copies below; caps to `caps` */
    char *url_text, *token, *name, *pressure_root;
    drv_msg_caps caps;
    uint64_t throttles;     /* CPU throttle events at the last heartbeat */
    bool has_throttles;     /* throttles was read */
    double gpu_checked;     /* loop time the last nvidia-smi query started; 0 = never */
    double gpu_temperature; /* the last answer, kept between queries (< 0 unknown) */
    /* ct3 (issue 13): the CPU seconds its tests had used, and when, at the last
     * heartbeat (tests_cpu_at 0: not measured yet). */
    double tests_cpu_s, tests_cpu_at;
    bool gpu_throttled;
    struct gpu_query *gpu_query; /* the query in flight, or NULL (at most one) */
    char *tags_text;             /* "cpu, cuda" */
    drv_agent_url url;
    char host_header[300];

    struct lws *wsi;
    bool connect_failed; /* CONNECTION_ERROR came inside lws_client_connect_via_info() */
    char conn_error[256];
    char close_reason[160];
    bool welcomed, writable_requested, want_close, hb_queued;
    bool lines;           /* the coordinator took DRV_PROTOCOL_SUBPROTOCOL_LINES */
    unsigned char *batch; /* LWS_PRE + BATCH_BYTES: messages joined for one frame (owned) */
    unsigned char *hello; /* LWS_PRE + hello_len bytes while the hello waits (owned) */
    size_t hello_len;
    double hb_interval_s;
    double backoff_s;
    unsigned failures;      /* connection attempts failed since the last welcome */
    char drain_reason[128]; /* sent again after a reconnect while draining */
    uint64_t rng;
    uint64_t sim_rng;  /* simulated durations (seeded by cfg.sim_seed) */
    char instance[17]; /* this process, in every hello: 64 random bits in hex (exec3) */

    agent_mode mode;
    bool deliver_phase; /* worker drain: the runs' deadline passed, delivery time left */
    bool freeing;
    int open_handles;
    uv_timer_t retry_timer, hb_timer, flush_timer, deadline_timer;

    test_list queue, running;
    /* Fencing (docs/protocol.md): the coordinator's epoch and clock (server_time minus
     * ours, at the welcome), the lease of its assigns, and when the heartbeat timer last
     * ran: a loop that did not run for a lease (the worker was frozen) takes nothing it
     * was sent before. */
    uint64_t epoch;
    double clock_offset;
    double lease_s;
    double last_tick;
    double hello_wall; /* our clock when the hello was written */
    bool fencing;      /* fenced: this connection is being dropped, it takes nothing more */
    frame_queue outq, sent;
    unsigned char *rx;
    size_t rx_len, rx_cap;
    bool rx_too_big;
    drv_agent_stats st;
};

/* ---- small helpers --------------------------------------------------------------------- */

static double mono_now(void)
{
    return (double)uv_hrtime() / 1e9;
}

/* Seconds since the Unix epoch (started.t). */
static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A uniform number in [0, 1) from the agent's xorshift generator. */
static double agent_random(drv_agent *a)
{
    a->rng ^= a->rng << 13;
    a->rng ^= a->rng >> 7;
    a->rng ^= a->rng << 17;
    return (double)(a->rng >> 11) / 9007199254740992.0;
}

/* Appends t to the end of l. */
static void list_append(test_list *l, agent_test *t)
{
    t->next = NULL;
    t->prev = l->tail;
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
    l->n++;
}

/* spec5: the worker's start order of what it holds, in this one function. Queues t to
 * wait for a slot: a first attempt at the end; a later one (a speculative copy racing a
 * hung test elsewhere, a retry, a moved test) ahead of the first attempts, after the
 * later ones already waiting: a copy is there because its test is overdue elsewhere,
 * and behind this worker's prefetched tests it would wait for all of them. The
 * simulator starts what it holds the same way (sim/engine.c, hold). */
static void queue_test(test_list *l, agent_test *t)
{
    agent_test *at = l->head;
    if (t->t.attempt > 1)
        while (at && at->t.attempt > 1)
            at = at->next;
    else
        at = NULL;
    if (!at) {
        list_append(l, t);
        return;
    }
    t->next = at;
    t->prev = at->prev;
    if (at->prev)
        at->prev->next = t;
    else
        l->head = t;
    at->prev = t;
    l->n++;
}

/* Unlinks t from l, which must hold it. */
static void list_remove(test_list *l, agent_test *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        l->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        l->tail = t->prev;
    t->prev = t->next = NULL;
    l->n--;
}

/* The test of list l about ref, or NULL. */
static agent_test *list_find(const test_list *l, drv_attempt_ref ref)
{
    for (agent_test *t = l->head; t; t = t->next)
        if (t->t.task_id == ref.task_id && t->t.attempt == ref.attempt)
            return t;
    return NULL;
}

/* Frees a test that has no live run. */
static void test_free(agent_test *t)
{
    drv_msg_test_clear(&t->t);
    free(t->pend);
    free(t->err_tail);
    free(t);
}

/* Calls the agent's event callback (none once drv_agent_free() began). */
static void emit(drv_agent *a, drv_agent_event_kind kind, const char *msg, double retry, int status)
{
    if (!a->cfg.on_event || a->freeing)
        return;
    drv_agent_event ev = {.kind = kind, .message = msg, .retry_in_s = retry, .status = status};
    a->cfg.on_event(a, &ev, a->cfg.data);
}

/* A deep copy of caps into out. */
static void caps_copy(drv_msg_caps *out, const drv_msg_caps *caps)
{
    *out = *caps;
    out->cuda_cc = caps->cuda_cc ? drv_xstrdup(caps->cuda_cc) : NULL;
    out->driver_version = caps->driver_version ? drv_xstrdup(caps->driver_version) : NULL;
    out->tags = caps->tags ? drv_strv_dup(caps->tags) : NULL;
    out->os = caps->os ? drv_xstrdup(caps->os) : NULL;
    out->arch = caps->arch ? drv_xstrdup(caps->arch) : NULL;
}

/* ---- the outgoing queue ------------------------------------------------------------- */

static void want_write(drv_agent *a)
{
    if (a->wsi && a->welcomed && !a->writable_requested) {
        a->writable_requested = true;
        lws_callback_on_writable(a->wsi);
    }
}

/* Encodes m and queues it; ref names its attempt (zero when it has none). */
static void enqueue(drv_agent *a, const drv_msg *m, drv_attempt_ref ref)
{
    size_t len = 0;
    drv_error err;
    char *text = drv_msg_encode(m, &len, &err); /* freed below */
    if (!text) {
        /* Only an out-of-range type fails: a bug here, not bad input. */
        fprintf(stderr, "drover worker: internal error: %s\n", err.msg);
        abort();
    }
    frame_hdr h = {.task_id = ref.task_id,
                   .attempt = ref.attempt,
                   .len = (uint32_t)len,
                   .type = (uint32_t)m->type};
    fq_push(&a->outq, &h, text);
    free(text);
    want_write(a);
}

static const drv_attempt_ref NO_REF = {0, 0};

/* Queues an error frame; field may be NULL. */
static void send_error(drv_agent *a, const char *message, const char *field)
{
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_ERROR);
    m.error.message = (char *)message;
    m.error.field = (char *)field;
    enqueue(a, &m, NO_REF);
}

/* Queues a drain frame with reason. */
static drv_attempt_ref *held_refs(const drv_agent *a, bool outbox, size_t *count);

/* Queues a drain. When the worker itself drains (its queue already dropped), it lists
 * what it keeps: the running attempts and the results not yet delivered; the coordinator
 * gives back every other test it assigned here. Without the whole list (over
 * DRV_RUNNING_MAX) it says nothing, and the coordinator waits for the worker to leave. */
static void send_drain(drv_agent *a, const char *reason)
{
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_DRAIN);
    m.drain.reason = (char *)reason;
    if (a->mode == MODE_WORKER_DRAIN && a->queue.n == 0 &&
        a->running.n + a->outq.finished <= DRV_RUNNING_MAX) {
        m.drain.has_keeps = true;
        m.drain.keeps = held_refs(a, true, &m.drain.keeps_count);
    }
    enqueue(a, &m, NO_REF);
    free(m.drain.keeps);
}

/* ---- finishing ------------------------------------------------------------------------ */

static void check_done(drv_agent *a);
static void pump(drv_agent *a);
static void sim_release(agent_test *t);
static void sim_cancel(agent_test *t);

/* Stops for good: status and message go to the DONE event. Runs still alive are killed
 * without a report; the connection is dropped. Nothing touches a after the event. */
static void finish(drv_agent *a, int status, const char *message)
{
    if (a->mode == MODE_DONE)
        return;
    a->mode = MODE_DONE;
    uv_timer_stop(&a->retry_timer);
    uv_timer_stop(&a->hb_timer);
    uv_timer_stop(&a->flush_timer);
    uv_timer_stop(&a->deadline_timer);
    while (a->running.head) {
        agent_test *t = a->running.head;
        list_remove(&a->running, t);
        drv_run_free(t->run); /* kills it; no on_exit */
        sim_release(t);
        test_free(t);
    }
    while (a->queue.head) {
        agent_test *t = a->queue.head;
        list_remove(&a->queue, t);
        test_free(t);
    }
    if (a->wsi) {
        lws_set_wsi_user(a->wsi, NULL);
        lws_set_timeout(a->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
        a->wsi = NULL;
    }
    emit(a, DRV_AGENT_EV_DONE, message, 0, status);
}

/* Cancels every run (their results come through on_run_exit) and drops the queue. */
static void cancel_all(drv_agent *a, bool runs)
{
    while (a->queue.head) {
        agent_test *t = a->queue.head;
        list_remove(&a->queue, t);
        test_free(t);
        a->st.dropped++;
    }
    if (runs)
        for (agent_test *t = a->running.head; t; t = t->next) {
            t->stopped = true;
            if (t->sim_timer)
                sim_cancel(t);
            else
                drv_run_cancel(t->run);
        }
}

/* In a stopping mode, finishes the agent once what it holds is over and delivered. */
static void check_done(drv_agent *a)
{
    char msg[DRV_ERROR_MAX];
    switch (a->mode) {
    case MODE_RUN:
    case MODE_DONE:
        return;
    case MODE_REFUSED:
        if (a->running.n == 0)
            finish(a, 1, a->conn_error);
        return;
    case MODE_COORD_DRAIN:
        if (a->running.n || a->queue.n)
            return;
        break;
    case MODE_WORKER_DRAIN:
    case MODE_ABORT:
        if (a->running.n)
            return;
        break;
    }
    if (a->wsi && a->welcomed) {
        if (a->outq.count == 0 && !a->want_close) {
            a->want_close = true; /* written out: close, then DONE in connection_lost */
            a->writable_requested = true;
            lws_callback_on_writable(a->wsi);
        }
        return;
    }
    if (a->outq.finished > 0)
        return; /* wait for a connection (bounded by the deadline timer) */
    snprintf(msg, sizeof msg, "%s; %s",
             a->mode == MODE_COORD_DRAIN ? "drained by the coordinator" : "stopped",
             a->st.finished ? "every result delivered" : "it ran no test");
    finish(a, 0, msg);
}

/* ---- running tests ------------------------------------------------------------------- */

/* The number of bytes at the end of p[0..n) that begin a UTF-8 sequence not complete
 * yet (0..3): held back so one character is not cut in two chunks. */
static size_t utf8_cut(const char *p, size_t n)
{
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)p[n - back];
        if ((c & 0xC0) == 0x80)
            continue; /* a continuation byte: look further back */
        size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return want > back ? back : 0;
    }
    return 0;
}

/* Sends the test's pending output as one chunk (all of it when final, else without a
 * cut UTF-8 sequence at its end). */
static void flush_output(agent_test *t, bool final)
{
    drv_agent *a = t->agent;
    size_t n = t->pend_len;
    if (!final)
        n -= utf8_cut(t->pend, t->pend_len);
    if (n == 0)
        return;
    if (!a->welcomed && a->outq.output_bytes >= DRV_AGENT_OUTBOX_OUTPUT_MAX) {
        a->st.output_dropped += n; /* the outbox is full of output: keep room for results */
    } else {
        drv_msg m;
        drv_msg_init(&m, DRV_MSG_OUTPUT);
        m.output.ref.task_id = t->t.task_id;
        m.output.ref.attempt = t->t.attempt;
        m.output.stream = t->pend_stream;
        m.output.data = t->pend;
        m.output.len = n;
        m.output.seq = t->seq++;
        enqueue(a, &m, m.output.ref);
    }
    memmove(t->pend, t->pend + n, t->pend_len - n);
    t->pend_len -= n;
}

/* Sends the pending output of every running test: at most one chunk per test per
 * output_flush_ms (the timer is started by the first byte that waits). */
static void on_flush_timer(uv_timer_t *timer)
{
    drv_agent *a = timer->data;
    for (agent_test *t = a->running.head; t; t = t->next)
        if (t->pend_len > 0)
            flush_output(t, false);
}

/* Appends n bytes to the pending output. */
static void pend_append(agent_test *t, const char *p, size_t n)
{
    if (t->pend_len + n > t->pend_cap) {
        size_t cap = t->pend_cap ? t->pend_cap : 4096;
        while (cap < t->pend_len + n)
            cap *= 2;
        t->pend = drv_xrealloc(t->pend, cap);
        t->pend_cap = cap;
    }
    memcpy(t->pend + t->pend_len, p, n);
    t->pend_len += n;
}

/* Keeps the last DRV_STDERR_TAIL_MAX bytes of a test's stderr. */
static void keep_stderr(agent_test *t, const char *p, size_t n)
{
    if (!t->err_tail)
        t->err_tail = drv_xmalloc(DRV_STDERR_TAIL_MAX);
    if (n >= DRV_STDERR_TAIL_MAX) {
        memcpy(t->err_tail, p + n - DRV_STDERR_TAIL_MAX, DRV_STDERR_TAIL_MAX);
        t->err_len = DRV_STDERR_TAIL_MAX;
        return;
    }
    if (t->err_len + n > DRV_STDERR_TAIL_MAX) {
        size_t drop = t->err_len + n - DRV_STDERR_TAIL_MAX;
        memmove(t->err_tail, t->err_tail + drop, t->err_len - drop);
        t->err_len -= drop;
    }
    memcpy(t->err_tail + t->err_len, p, n);
    t->err_len += n;
}

/* Output of a running test: coalesced per attempt and stream, capped at the test's
 * output cap (one note says so), sent at 64 KiB or by the flush timer. */
static void on_run_output(drv_run *run, drv_run_stream stream, const char *chunk, size_t len,
                          void *data)
{
    (void)run;
    agent_test *t = data;
    drv_agent *a = t->agent;
    drv_stream s = stream == DRV_RUN_STDERR ? DRV_STREAM_STDERR : DRV_STREAM_STDOUT;
    if (s == DRV_STREAM_STDERR)
        keep_stderr(t, chunk, len);
    if (t->pend_len > 0 && t->pend_stream != s)
        flush_output(t, true);
    t->pend_stream = s;
    uint64_t room = t->cap > t->streamed ? t->cap - t->streamed : 0; /* sent or pending */
    size_t n = len < room ? len : (size_t)room;
    if (n > 0)
        pend_append(t, chunk, n);
    t->streamed += n;
    if (n < len) {
        a->st.output_dropped += len - n;
        if (!t->cap_noted) {
            char note[128];
            int k = snprintf(note, sizeof note, NOTE_CAP, (unsigned long long)t->cap);
            pend_append(t, note, (size_t)k);
            t->cap_noted = true;
        }
    }
    if (t->pend_len >= DRV_AGENT_FLUSH_BYTES)
        flush_output(t, false);
    if (t->pend_len > 0 && !uv_is_active((uv_handle_t *)&a->flush_timer))
        uv_timer_start(&a->flush_timer, on_flush_timer, a->cfg.output_flush_ms, 0);
}

/* Queues the finished message of test t from a run result (res NULL: infra failure with
 * error), with the tail of its stderr alone (err_tail, may be NULL). A run killed because the
 * worker stops is an infra failure too: the test did not fail, so the coordinator may place it
 * again. */
static void send_finished(drv_agent *a, const drv_msg_test *t, const drv_run_result *res,
                          const char *error, const char *err_tail, size_t err_len)
{
    char why[DRV_ERROR_MAX];
    bool infra = !res || res->infra_failure;
    if (res && res->infra_failure && res->test_fault) {
        /* Whose fault: the test's, not this machine's. It fails like a shell's "command
         * not found" (127) or "cannot execute" (126), saying why; no quarantine. */
        snprintf(why, sizeof why, "%s%.400s", DRV_SPAWN_FAILED_PREFIX, res->error);
        drv_msg m;
        drv_msg_init(&m, DRV_MSG_FINISHED);
        m.finished.ref.task_id = t->task_id;
        m.finished.ref.attempt = t->attempt;
        m.finished.has_exit_code = true;
        m.finished.exit_code = strstr(res->error, "no such file") ? 127 : 126;
        m.finished.output_tail = why;
        m.finished.output_tail_len = strlen(why);
        a->st.finished++;
        enqueue(a, &m, m.finished.ref);
        return;
    }
    if (res && res->infra_failure) {
        error = res->error;
    } else if (res && error && res->term_signal > 0) {
        snprintf(why, sizeof why, "%s (signal %d after %.1f s)", error, res->term_signal,
                 res->duration_s);
        error = why;
        infra = true;
    }
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_FINISHED);
    drv_msg_finished *f = &m.finished;
    f->ref.task_id = t->task_id;
    f->ref.attempt = t->attempt;
    if (infra) {
        f->infra_failure = true;
        f->error = (char *)(error && *error ? error : "the test could not be run");
    } else if (res->term_signal > 0 && res->term_signal <= 127) {
        f->has_signal = true;
        f->signal = res->term_signal;
    } else {
        f->has_exit_code = true;
        f->exit_code = res->exit_code >= 0 && res->exit_code <= 255 ? res->exit_code : 255;
    }
    if (res) {
        f->timed_out = res->timed_out;
        f->duration_s = res->duration_s > 0 ? res->duration_s : 0;
        f->peak_memory_kb = res->peak_memory_kb;
        if (err_tail && err_len) {
            f->stderr_tail = (char *)err_tail;
            f->stderr_tail_len = err_len;
        }
        if (res->output && res->output_len > 0) {
            size_t n = res->output_len;
            size_t skip = n > DRV_OUTPUT_TAIL_MAX ? n - DRV_OUTPUT_TAIL_MAX : 0;
            f->output_tail = (char *)res->output + skip;
            f->output_tail_len = n - skip;
        }
    }
    a->st.finished++;
    enqueue(a, &m, f->ref);
}

/* Reports the run of t that is over (its last output, its finished) and frees both. */
static void report_run(drv_agent *a, agent_test *t, drv_run *run, const drv_run_result *res)
{
    flush_output(t, true);
    char why[160];
    snprintf(why, sizeof why, "killed: the worker %s",
             a->mode == MODE_WORKER_DRAIN ? "was draining and its drain timeout passed"
                                          : "was stopping");
    send_finished(a, &t->t, res, t->stopped ? why : NULL, t->err_tail, t->err_len);
    drv_run_free(run);
    test_free(t);
}

/* A run is over: the next held test starts first (its slot idles no longer than the
 * start takes), then the run is reported. The guardian hears of the ended group together
 * with the next start (one write), or at the flush when nothing started. */
static void on_run_exit(drv_run *run, const drv_run_result *res, void *data)
{
    agent_test *t = data;
    drv_agent *a = t->agent;
    list_remove(&a->running, t);
    drv_guardian_forget(a->cfg.guardian, drv_run_pid(run));
    report_run(a, t, run, res);
    pump(a);
    drv_guardian_flush(a->cfg.guardian);
    check_done(a);
}

/* ---- simulated runs ---------------------------------------------------------------- */

/* A uniform number in (0, 1) from the simulation's xorshift generator. */
static double sim_random(drv_agent *a)
{
    a->sim_rng ^= a->sim_rng << 13;
    a->sim_rng ^= a->sim_rng >> 7;
    a->sim_rng ^= a->sim_rng << 17;
    return ((double)(a->sim_rng >> 11) + 0.5) / 9007199254740992.0;
}

/* The duration of a simulated test: the caller's function, unless it returns a negative
 * number (or has none), else lognormal with the
 * configured mean and sigma (Box-Muller), else the mean itself. Never negative. */
static double sim_draw(drv_agent *a, const drv_msg_test *t)
{
    double d = a->cfg.sim_duration ? a->cfg.sim_duration(t, a->cfg.sim_data) : -1;
    if (d >= 0) {
        /* the caller's */
    } else if (a->cfg.sim_mean_s > 0 && a->cfg.sim_sigma > 0) {
        double s = a->cfg.sim_sigma;
        double mu = log(a->cfg.sim_mean_s) - s * s / 2; /* so that the mean is sim_mean_s */
        double u1 = sim_random(a), u2 = sim_random(a);
        double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
        d = exp(mu + s * z);
    } else {
        d = a->cfg.sim_mean_s;
    }
    return d > 0 && isfinite(d) ? d : 0;
}

/* Close callback of a simulated run's timer: the timer is the only thing freed. */
static void on_sim_timer_closed(uv_handle_t *h)
{
    free(h);
}

/* Stops and releases t's simulation timer (no report); nothing for a real run. */
static void sim_release(agent_test *t)
{
    if (!t->sim_timer)
        return;
    t->sim_timer->data = NULL;
    uv_close((uv_handle_t *)t->sim_timer, on_sim_timer_closed);
    t->sim_timer = NULL;
}

/* The simulated run of t is over (its time passed, or it was cancelled): its finished
 * (exit 0, or signal 15 when cancelled), then the next queued test. */
static void on_sim_timer(uv_timer_t *timer)
{
    agent_test *t = timer->data;
    if (!t)
        return;
    drv_agent *a = t->agent;
    drv_run_result res;
    memset(&res, 0, sizeof res);
    if (t->sim_killed) {
        res.term_signal = 15;
        res.duration_s = mono_now() - t->sim_start;
    } else {
        res.duration_s = t->sim_s;
    }
    char why[160];
    snprintf(why, sizeof why, "killed: the worker %s",
             a->mode == MODE_WORKER_DRAIN ? "was draining and its drain timeout passed"
                                          : "was stopping");
    send_finished(a, &t->t, &res, t->stopped ? why : NULL, NULL, 0);
    list_remove(&a->running, t);
    sim_release(t);
    test_free(t);
    pump(a);
    check_done(a);
}

/* Cancels a simulated run: reported (as a killed process would be) on the next turn. */
static void sim_cancel(agent_test *t)
{
    t->sim_killed = true;
    uv_timer_start(t->sim_timer, on_sim_timer, 0, 0);
}

/* Starts simulated test t (already off the queue): a timer of its drawn duration. */
static void sim_start(drv_agent *a, agent_test *t)
{
    t->sim_timer = drv_xmalloc(sizeof *t->sim_timer); /* freed by on_sim_timer_closed */
    uv_timer_init(a->hub->loop, t->sim_timer);
    t->sim_timer->data = t;
    t->sim_start = mono_now();
    list_append(&a->running, t);
    a->st.started++;
    uv_timer_start(t->sim_timer, on_sim_timer, (uint64_t)(t->sim_s * 1000.0 + 0.5), 0);
    if (a->cfg.sim_started) {
        drv_msg m;
        drv_msg_init(&m, DRV_MSG_STARTED);
        m.started.ref.task_id = t->t.task_id;
        m.started.ref.attempt = t->t.attempt;
        m.started.pid = getpid();
        m.started.t = wall_now();
        enqueue(a, &m, m.started.ref);
    }
}

/* Starts test t (already off the queue): a run, or an infra-failure finished. */
static void start_test(drv_agent *a, agent_test *t)
{
    if (a->cfg.simulate) {
        sim_start(a, t);
        return;
    }
    uint64_t cap = t->t.output_cap_bytes ? t->t.output_cap_bytes : a->cfg.output_cap_bytes;
    t->cap = cap;
    /* The runner keeps the tail for finished: no more than the protocol's tail limit,
     * minus room for its "[drover: N bytes of output dropped]" line. */
    size_t keep = DRV_OUTPUT_TAIL_MAX - 64;
    /* The test's own additions, then who it is: DROVER_TEST_ID and DROVER_ATTEMPT (a
     * test may log them; the chaos suite checks executions with them). */
    size_t ne = drv_strv_len(t->t.env);
    char **env = drv_xcalloc(ne + 3, sizeof *env); /* freed below; strings borrowed */
    for (size_t i = 0; i < ne; i++)
        env[i] = t->t.env[i];
    char id_var[48], attempt_var[32];
    snprintf(id_var, sizeof id_var, "DROVER_TEST_ID=%llu", (unsigned long long)t->t.task_id);
    snprintf(attempt_var, sizeof attempt_var, "DROVER_ATTEMPT=%u", t->t.attempt);
    env[ne] = id_var;
    env[ne + 1] = attempt_var;
    drv_run_spec spec = {
        .argv = t->t.shell ? t->t.argv + 2 : t->t.argv, /* {"/bin/sh", "-c", COMMAND} */
        .shell = t->t.shell,
        .env = env,
        .cwd = t->t.cwd,
        .timeout_s = t->t.timeout_s,
        .kill_grace_s = a->cfg.kill_grace_s,
        .output_cap_bytes = cap > 0 && cap < keep ? (size_t)cap : keep,
        .on_output = on_run_output,
        .on_exit = on_run_exit,
        .data = t,
    };
    drv_error err = {{0}};
    int started = drv_runner_start(a->hub->loop, &spec, &t->run, &err);
    free(env);
    if (started < 0) {
        send_finished(a, &t->t, NULL, err.msg, NULL, 0);
        test_free(t);
        return;
    }
    list_append(&a->running, t);
    int pid = drv_run_pid(t->run);
    if (pid > 0) {
        drv_guardian_watch(a->cfg.guardian, pid); /* the group dies with this worker */
        a->st.started++;
        if (a->cfg.start_stall_s > 0) { /* tests only: the start and its `started` apart */
            double whole = floor(a->cfg.start_stall_s);
            struct timespec ts = {.tv_sec = (time_t)whole,
                                  .tv_nsec = (long)((a->cfg.start_stall_s - whole) * 1e9)};
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR) /* the test's SIGCHLD */
                ;
        }
        drv_msg m;
        drv_msg_init(&m, DRV_MSG_STARTED);
        m.started.ref.task_id = t->t.task_id;
        m.started.ref.attempt = t->t.attempt;
        m.started.pid = pid;
        m.started.t = wall_now();
        enqueue(a, &m, m.started.ref);
    }
}

/* Drops every queued test (not started; the coordinator sends again those that are still
 * this worker's after the next hello). Returns how many. */
static uint32_t drop_queue(drv_agent *a)
{
    uint32_t n = 0;
    while (a->queue.head) {
        agent_test *t = a->queue.head;
        list_remove(&a->queue, t);
        test_free(t);
        a->st.dropped++;
        a->st.fenced++;
        n++;
    }
    return n;
}

/* Whether the heartbeat timer stood still so long (the process was stopped, or its loop
 * blocked) that the coordinator may have missed heartbeats for its lease (its heartbeat
 * timeout), taken this worker for lost and placed its tests elsewhere: then nothing
 * received before may start. The timer runs every heartbeat interval, so a gap of the
 * lease minus one interval is already too long (never less than 1.5 intervals: timer
 * jitter is not a stall). */
static bool stalled(const drv_agent *a)
{
    double limit = a->lease_s - a->hb_interval_s;
    if (limit < 1.5 * a->hb_interval_s)
        limit = 1.5 * a->hb_interval_s;
    return a->lease_s > 0 && a->last_tick > 0 && mono_now() - a->last_tick > limit;
}

/* The worker was away (stalled, or an assign came after its lease): drop what it was
 * sent and start over on a new connection, whose hello says what it still runs. */
static void fence(drv_agent *a, const char *why)
{
    uint32_t n = drop_queue(a);
    a->last_tick = mono_now(); /* once */
    a->fencing = true;
    char msg[512];
    snprintf(msg, sizeof msg, "fenced: %s; dropped %u queued test%s unstarted, reconnecting", why,
             n, n == 1 ? "" : "s");
    emit(a, DRV_AGENT_EV_LOCAL_ERROR, msg, 0, 0);
    drv_agent_disconnect(a);
}

/* Starts queued tests while slots are free and the mode allows it. */
static void pump(drv_agent *a)
{
    if (a->mode != MODE_RUN && a->mode != MODE_COORD_DRAIN)
        return;
    if (a->queue.head && stalled(a)) {
        char why[128];
        snprintf(why, sizeof why, "this worker did not run for %.1f s (lease %.1f s)",
                 mono_now() - a->last_tick, a->lease_s);
        fence(a, why);
        return;
    }
    while (a->queue.head && a->running.n < a->cfg.slots) {
        agent_test *t = a->queue.head;
        list_remove(&a->queue, t);
        start_test(a, t);
    }
}

/* ---- messages from the coordinator ---------------------------------------------------- */

/* Collects the attempts the worker holds into a new array (the caller frees it):
 * running, then queued, then (with outbox) finished but not delivered; at most
 * DRV_RUNNING_MAX. */
static drv_attempt_ref *held_refs(const drv_agent *a, bool outbox, size_t *count)
{
    size_t n = a->running.n + a->queue.n + (outbox ? a->outq.finished : 0);
    if (n > DRV_RUNNING_MAX)
        n = DRV_RUNNING_MAX;
    drv_attempt_ref *refs = drv_xcalloc(n ? n : 1, sizeof *refs);
    size_t k = 0;
    const test_list *lists[2] = {&a->running, &a->queue};
    for (int l = 0; l < 2; l++)
        for (const agent_test *t = lists[l]->head; t && k < n; t = t->next)
            refs[k++] = (drv_attempt_ref){t->t.task_id, t->t.attempt};
    if (outbox) {
        frame_hdr h;
        for (size_t off = a->outq.head; off < a->outq.tail && k < n; off += rec_size(h.len)) {
            fq_at(&a->outq, off, &h);
            if (h.type == DRV_MSG_FINISHED)
                refs[k++] = (drv_attempt_ref){h.task_id, h.attempt};
        }
    }
    *count = k;
    return refs;
}

/* ---- the GPU query, off the event loop ----------------------------------------------
 *
 * nvidia-smi may take seconds to answer (up to DRV_PROBE_TOOL_TIMEOUT_S before it is
 * killed); run synchronously it would stop the loop, and with it heartbeats, output and
 * results. So it runs as a child process watched by the loop (uv_spawn, its stdout a
 * pipe, a timer for the timeout), at most one at a time, and heartbeats carry its last
 * answer. The query owns itself: the agent may be freed while it runs (the child is
 * then killed and the answer dropped), and it frees itself when its three handles are
 * closed. */
typedef struct gpu_query {
    drv_agent *agent; /* NULL once the agent is gone */
    uv_process_t proc;
    uv_pipe_t out;
    uv_timer_t timer;
    char buf[4096]; /* what it wrote; more is not read (one line per GPU) */
    size_t n;
    bool exited, eof, killed, finished;
    int64_t status;
    int term_signal;
    int open_handles;
} gpu_query;

static void gpu_query_handle_closed(uv_handle_t *h)
{
    gpu_query *q = h->data;
    if (--q->open_handles == 0)
        free(q);
}

/* Applies the answer (when the agent is still there) and closes the handles. Called
 * once the child exited and its output was read (or it was killed: what a child of
 * it still holds open is not waited for). */
static void gpu_query_finish(gpu_query *q)
{
    if (q->finished)
        return;
    q->finished = true;
    drv_agent *a = q->agent;
    if (a) {
        a->gpu_query = NULL;
        drv_pressure gpu = {.temperature_c = -1};
        drv_error err = {{0}};
        q->buf[q->n] = '\0';
        bool ok = !q->killed && q->term_signal == 0 && q->status == 0 &&
                  drv_pressure_parse_nvidia(q->buf, &gpu, &err) == 0;
        a->gpu_temperature = ok ? gpu.temperature_c : -1;
        a->gpu_throttled = ok && gpu.gpu_throttled;
    }
    uv_handle_t *hs[] = {(uv_handle_t *)&q->proc, (uv_handle_t *)&q->out, (uv_handle_t *)&q->timer};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], gpu_query_handle_closed);
}

/* Gives up on q (timeout, or the agent is going): kills the child, whose exit then
 * finishes q; when it already exited (a child of it holds its output open), at once. */
static void gpu_query_abort(gpu_query *q)
{
    if (q->finished || q->killed)
        return;
    q->killed = true;
    if (q->exited)
        gpu_query_finish(q);
    else
        uv_process_kill(&q->proc, SIGKILL);
}

static void gpu_query_on_exit(uv_process_t *p, int64_t status, int term_signal)
{
    gpu_query *q = p->data;
    q->exited = true;
    q->status = status;
    q->term_signal = term_signal;
    if (q->eof || q->killed)
        gpu_query_finish(q);
}

static void gpu_query_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    gpu_query *q = h->data;
    size_t room = sizeof q->buf - 1 - q->n;
    *buf = uv_buf_init(q->buf + q->n, (unsigned)room);
}

static void gpu_query_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    gpu_query *q = s->data;
    if (nread > 0)
        q->n += (size_t)nread;
    if (nread < 0 || q->n + 1 >= sizeof q->buf) {
        q->eof = true;
        uv_read_stop(s);
        if (q->exited)
            gpu_query_finish(q);
    }
}

static void gpu_query_on_timeout(uv_timer_t *t)
{
    gpu_query *q = t->data;
    gpu_query_abort(q);
}

/* Starts the query unless nvidia-smi is gone from $PATH (then the answer is unknown). */
static void gpu_query_start(drv_agent *a)
{
    char exe[DRV_PROBE_PATH_MAX];
    if (!drv_probe_which(NULL, "nvidia-smi", exe, sizeof exe)) {
        a->gpu_temperature = -1;
        a->gpu_throttled = false;
        return;
    }
    uv_loop_t *loop = a->hub->loop;
    gpu_query *q = drv_xcalloc(1, sizeof *q); /* frees itself (gpu_query_handle_closed) */
    q->agent = a;
    q->proc.data = q->out.data = q->timer.data = q;
    uv_pipe_init(loop, &q->out, 0);
    uv_timer_init(loop, &q->timer);
    q->open_handles = 2;
    char *argv[] = {exe, DRV_PRESSURE_NVIDIA_ARGS, NULL};
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&q->out},
        {.flags = UV_IGNORE},
    };
    uv_process_options_t opt = {
        .exit_cb = gpu_query_on_exit, .file = exe, .args = argv, .stdio = stdio, .stdio_count = 3};
    if (uv_spawn(loop, &q->proc, &opt) != 0) {
        /* The handle is initialised even when spawning fails: it is closed too. */
        q->open_handles++;
        q->exited = true;
        q->status = 127;
        gpu_query_finish(q);
        return;
    }
    q->open_handles++;
    a->gpu_query = q;
    uv_read_start((uv_stream_t *)&q->out, gpu_query_alloc, gpu_query_on_read);
    uv_timer_start(&q->timer, gpu_query_on_timeout, DRV_PROBE_TOOL_TIMEOUT_S * 1000, 0);
}

/* The agent is going: the query in flight (if any) is killed and its answer dropped. */
static void gpu_query_detach(drv_agent *a)
{
    gpu_query *q = a->gpu_query;
    if (!q)
        return;
    a->gpu_query = NULL;
    q->agent = NULL;
    gpu_query_abort(q);
}

/* The CPU seconds this worker's tests used so far: those reaped (RUSAGE_CHILDREN) and
 * those running (their main process and the children it reaped). */
static double tests_cpu_s(const drv_agent *a)
{
    double s = drv_proc_children_cpu_s();
    for (const agent_test *t = a->running.head; t; t = t->next) {
        int pid = t->run ? drv_run_pid(t->run) : 0;
        double c = pid > 0 ? drv_proc_cpu_s(pid) : -1;
        s += c > 0 ? c : 0;
    }
    return s;
}

/* Fills hb->tests_cpu: the share of the machine's CPU the tests used since the last
 * heartbeat (unknown at the first, and when the clock did not move). */
static void measure_tests_cpu(drv_agent *a, drv_msg_heartbeat *hb)
{
    double now = mono_now(), used = tests_cpu_s(a);
    double span = now - a->tests_cpu_at, cores = a->cfg.caps->cpu_cores;
    if (a->tests_cpu_at > 0 && span > 0.05 && cores >= 1) {
        double share = (used - a->tests_cpu_s) / (span * cores);
        hb->tests_cpu = share < 0 ? 0 : share > 1 ? 1 : share;
    }
    a->tests_cpu_s = used;
    a->tests_cpu_at = now;
}

/* Fills hb's measurements (docs/protocol.md): pressures, clock, the hottest sensor, and
 * throttled when the CPU throttle counters rose since the last heartbeat or a GPU
 * slows down for heat or power. A simulated agent measures nothing (it has no machine
 * of its own). */
static void measure(drv_agent *a, drv_msg_heartbeat *hb)
{
    if (a->cfg.simulate)
        return;
    drv_pressure p;
    drv_pressure_read(a->cfg.pressure_root, a->cfg.caps->cpu_cores, &p);
    if (a->cfg.measure_gpus) {
        double now = (double)uv_now(a->hub->loop) / 1000.0;
        if (!a->gpu_query &&
            (a->gpu_checked == 0 || now - a->gpu_checked >= DRV_AGENT_GPU_QUERY_S)) {
            a->gpu_checked = now;
            gpu_query_start(a); /* answers later: this heartbeat has the last answer */
        }
        if (a->gpu_temperature > p.temperature_c)
            p.temperature_c = a->gpu_temperature;
    }
    hb->cpu_pressure = p.cpu;
    measure_tests_cpu(a, hb);
    hb->memory_pressure = p.memory;
    hb->freq_ratio = p.freq_ratio;
    hb->temperature_c = p.temperature_c;
    hb->throttled =
        a->gpu_throttled || (p.has_throttles && a->has_throttles && p.throttles > a->throttles);
    a->throttles = p.throttles;
    a->has_throttles = p.has_throttles;
}

/* Queues a heartbeat (load, free slots, the attempts held, what it measured) unless one
 * still waits. */
static void on_hb_timer(uv_timer_t *timer)
{
    drv_agent *a = timer->data;
    /* After a stop the timer may run before the socket and the children are read. */
    if (a->welcomed && !a->fencing && stalled(a)) {
        char why[128];
        snprintf(why, sizeof why, "this worker did not run for %.1f s (lease %.1f s)",
                 mono_now() - a->last_tick, a->lease_s);
        fence(a, why);
        return;
    }
    a->last_tick = mono_now();
    if (!a->welcomed || a->hb_queued)
        return; /* one heartbeat waiting is enough */
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_HEARTBEAT);
    uint32_t busy = a->running.n + a->queue.n;
    m.heartbeat.load = (double)a->running.n / (double)a->cfg.slots;
    m.heartbeat.free_slots = a->mode == MODE_RUN && busy < a->cfg.slots ? a->cfg.slots - busy : 0;
    m.heartbeat.running = held_refs(a, false, &m.heartbeat.running_count);
    measure(a, &m.heartbeat);
    enqueue(a, &m, NO_REF);
    free(m.heartbeat.running);
    a->hb_queued = true;
}

/* Joins up to REFUSED_LIST_MAX "task/attempt" names of tests into buf. */
static void describe_refs(const drv_msg_assign *as, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < as->count && off < len; i++) {
        int k = i < REFUSED_LIST_MAX
                    ? snprintf(buf + off, len - off, "%s%llu/%u", i ? ", " : "",
                               (unsigned long long)as->tests[i].task_id, as->tests[i].attempt)
                    : snprintf(buf + off, len - off, ", ...");
        if (k < 0)
            return;
        off += (size_t)k;
        if (i >= REFUSED_LIST_MAX)
            return;
    }
}

/* Takes an assign: refused whole while stopping; answered at once in ack-only mode;
 * else its tests are queued (moved out of the message) and started while slots allow. */
static void on_assign(drv_agent *a, drv_msg_assign *as)
{
    if (a->mode != MODE_RUN) {
        char list[512], msg[DRV_ERROR_MAX + 64];
        describe_refs(as, list, sizeof list);
        snprintf(msg, sizeof msg, "assign: refused %zu test%s because this worker is %s: %s",
                 as->count, as->count == 1 ? "" : "s",
                 a->mode == MODE_COORD_DRAIN || a->mode == MODE_WORKER_DRAIN ? "draining"
                                                                             : "stopping",
                 list);
        a->st.refused += as->count;
        send_error(a, msg, "assign");
        return;
    }
    /* Fencing: an assign of another start of the coordinator, or one that arrives after
     * its lease (sent before this worker was frozen or cut off), is not taken. */
    char why[192] = "";
    double late = as->sent_at > 0 && as->lease_s > 0
                      ? wall_now() + a->clock_offset - (as->sent_at + as->lease_s)
                      : 0;
    if (a->fencing)
        snprintf(why, sizeof why, "an assign on a connection being dropped");
    else if (as->epoch && a->epoch && as->epoch != a->epoch)
        snprintf(why, sizeof why,
                 "an assign of coordinator epoch %llu on a connection of epoch %llu",
                 (unsigned long long)as->epoch, (unsigned long long)a->epoch);
    else if (late > 0)
        snprintf(why, sizeof why,
                 "an assign of %zu test%s arrived %.1f s after its lease of %.1f s", as->count,
                 as->count == 1 ? "" : "s", late, as->lease_s);
    else if (stalled(a))
        snprintf(why, sizeof why, "this worker did not run for %.1f s (lease %.1f s)",
                 mono_now() - a->last_tick, a->lease_s);
    if (as->lease_s > 0)
        a->lease_s = as->lease_s;
    if (why[0]) {
        a->st.fenced += as->count;
        if (!a->fencing)
            fence(a, why);
        return;
    }
    a->st.assigned += as->count;
    if (a->cfg.ack_only) {
        drv_msg m;
        drv_msg_init(&m, DRV_MSG_FINISHED);
        m.finished.has_exit_code = true;
        /* An acknowledgement takes about a microsecond. Saying so (a duration of 0 is not
         * learned) lets the balancer see these tests are short and keep a deep window. */
        m.finished.duration_s = 1e-6;
        for (size_t i = 0; i < as->count; i++) {
            m.finished.ref.task_id = as->tests[i].task_id;
            m.finished.ref.attempt = as->tests[i].attempt;
            a->st.finished++;
            enqueue(a, &m, m.finished.ref);
        }
        return;
    }
    for (size_t i = 0; i < as->count; i++) {
        agent_test *t = drv_xcalloc(1, sizeof *t); /* owned by the agent's lists */
        t->agent = a;
        t->t = as->tests[i];
        memset(&as->tests[i], 0, sizeof as->tests[i]); /* moved: the message frees nothing */
        if (a->cfg.simulate)
            t->sim_s = sim_draw(a, &t->t);
        queue_test(&a->queue, t);
    }
    pump(a);
}

/* Kills a running attempt (its finished follows) or drops a queued one (nothing is
 * reported); an unknown attempt is ignored. */
static void on_cancel(drv_agent *a, drv_attempt_ref ref)
{
    agent_test *t = list_find(&a->running, ref);
    if (t) {
        if (t->sim_timer)
            sim_cancel(t); /* its finished comes from on_sim_timer */
        else
            drv_run_cancel(t->run); /* its finished comes from on_run_exit */
        return;
    }
    t = list_find(&a->queue, ref);
    if (t) {
        list_remove(&a->queue, t);
        test_free(t);
        a->st.dropped++;
        check_done(a);
    }
}

/* The first phase of a move (exec2, docs/protocol.md "release"): a queued attempt is
 * dropped and given back, a started one runs on; either way the coordinator learns which,
 * after any started or finished of it (frames leave in order). */
static void on_release(drv_agent *a, drv_attempt_ref ref)
{
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_RELEASED);
    m.release.ref = ref;
    m.release.dropped = list_find(&a->running, ref) == NULL;
    agent_test *t = list_find(&a->queue, ref);
    if (t) {
        list_remove(&a->queue, t);
        test_free(t);
        a->st.dropped++;
    }
    enqueue(a, &m, ref);
    if (t)
        check_done(a);
}

/* The hello was accepted: heartbeats start, a drain is repeated first when draining,
 * and the outbox goes out. A second welcome only changes the heartbeat interval. */
static void on_welcome(drv_agent *a, const drv_msg_welcome *w)
{
    bool again = a->welcomed;
    a->welcomed = true;
    a->hb_interval_s = w->heartbeat_interval_s;
    a->epoch = w->epoch;
    a->fencing = false;
    /* The coordinator's clock from when our hello left, not from when the welcome was
     * read: a welcome read late (this process was stopped) must not make its assigns
     * look fresh. The estimate runs ahead by the hello's trip: leases look shorter. */
    a->clock_offset = w->server_time > 0 && a->hello_wall > 0 ? w->server_time - a->hello_wall : 0;
    a->last_tick = mono_now();
    uint64_t ms = (uint64_t)(w->heartbeat_interval_s * 1000.0 + 0.5);
    uv_timer_start(&a->hb_timer, on_hb_timer, ms ? ms : 1, ms ? ms : 1);
    if (again)
        return;
    a->backoff_s = a->cfg.backoff_min_s;
    a->failures = 0;
    a->st.connects++;
    if (a->mode == MODE_WORKER_DRAIN || a->mode == MODE_ABORT) {
        /* Tell the coordinator first, before the outbox. */
        frame_queue rest = a->outq;
        memset(&a->outq, 0, sizeof a->outq);
        send_drain(a, a->drain_reason);
        frame_hdr h;
        for (size_t off = rest.head; off < rest.tail; off += rec_size(h.len)) {
            unsigned char *p = fq_at(&rest, off, &h);
            fq_push(&a->outq, &h, p);
        }
        fq_free(&rest);
    }
    char msg[1024];
    snprintf(msg, sizeof msg, "worker %s %s %s, %u slot%s, tags: %s%s", a->name,
             a->st.connects > 1 ? "reconnected to" : "connected to", a->url_text, a->cfg.slots,
             a->cfg.slots == 1 ? "" : "s", a->tags_text,
             a->cfg.ack_only   ? " (ack-only)"
             : a->cfg.simulate ? " (simulated)"
                               : "");
    emit(a, DRV_AGENT_EV_CONNECTED, msg, 0, 0);
    want_write(a);
    check_done(a);
}

/* The field path at the start of a decode error ("assign.tests[2].argv: ..."), into
 * buf; "" when the message does not start with one. */
static void error_field(const char *msg, char *buf, size_t len)
{
    size_t n = strcspn(msg, ": ");
    buf[0] = '\0';
    if (n == 0 || n >= len || strncmp(msg + n, ": ", 2) != 0)
        return;
    memcpy(buf, msg, n);
    buf[n] = '\0';
}

/* One complete frame from the coordinator. */
static void on_frame(drv_agent *a, const char *buf, size_t len)
{
    a->st.frames_in++;
    drv_msg m;
    drv_error err = {{0}};
    char field[DRV_JSON_PATH_MAX];
    if (drv_msg_decode(buf, len, &m, &err) < 0) {
        a->st.bad_frames++;
        error_field(err.msg, field, sizeof field);
        send_error(a, err.msg, field[0] ? field : NULL);
        emit(a, DRV_AGENT_EV_LOCAL_ERROR, err.msg, 0, 0);
        return;
    }
    if (!(drv_msg_senders(m.type) & DRV_MSG_FROM_COORDINATOR)) {
        a->st.bad_frames++;
        snprintf(err.msg, sizeof err.msg, "%s: a coordinator does not send this message",
                 drv_msg_type_name(m.type));
        send_error(a, err.msg, "type");
        emit(a, DRV_AGENT_EV_LOCAL_ERROR, err.msg, 0, 0);
        drv_msg_free(&m);
        return;
    }
    switch (m.type) {
    case DRV_MSG_WELCOME:
        on_welcome(a, &m.welcome);
        break;
    case DRV_MSG_ASSIGN:
        on_assign(a, &m.assign);
        break;
    case DRV_MSG_CANCEL:
        if (!a->cfg.ack_only)
            on_cancel(a, m.cancel.ref);
        break;
    case DRV_MSG_RELEASE:
        on_release(a, m.release.ref);
        break;
    case DRV_MSG_DRAIN:
        if (a->mode == MODE_RUN) {
            a->mode = MODE_COORD_DRAIN;
            snprintf(err.msg, sizeof err.msg, "the coordinator asked to drain%s%s",
                     m.drain.reason[0] ? ": " : "", m.drain.reason);
            emit(a, DRV_AGENT_EV_DRAIN, err.msg, 0, 0);
            check_done(a);
        }
        break;
    case DRV_MSG_ERROR:
        if (!a->welcomed && a->mode != MODE_DONE) {
            /* The answer to our hello: give up, do not retry with the same token. */
            snprintf(a->conn_error, sizeof a->conn_error, "coordinator refused hello: %s",
                     m.error.message);
            a->mode = MODE_REFUSED;
            cancel_all(a, true);
            check_done(a);
        } else {
            snprintf(err.msg, sizeof err.msg, "coordinator refused a frame: %s%s%s",
                     m.error.message, m.error.field ? " (field " : "",
                     m.error.field ? m.error.field : "");
            if (m.error.field)
                strncat(err.msg, ")", sizeof err.msg - strlen(err.msg) - 1);
            emit(a, DRV_AGENT_EV_REMOTE_ERROR, err.msg, 0, 0);
        }
        break;
    default:
        break;
    }
    drv_msg_free(&m);
}

/* ---- the connection --------------------------------------------------------------------- */

static void on_retry_timer(uv_timer_t *timer);

/* Builds the hello (held in a->hello until written). */
static void make_hello(drv_agent *a)
{
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_HELLO);
    m.hello.token = a->token;
    m.hello.name = a->name;
    m.hello.caps = a->caps; /* borrowed: m is not freed */
    m.hello.slots = a->cfg.slots;
    m.hello.speed = a->cfg.speed;
    m.hello.instance = a->instance;
    m.hello.running = held_refs(a, true, &m.hello.running_count);
    size_t len = 0;
    drv_error err;
    char *text = drv_msg_encode(&m, &len, &err); /* freed below */
    free(m.hello.running);
    if (!text) {
        fprintf(stderr, "drover worker: internal error: %s\n", err.msg);
        abort();
    }
    free(a->hello);
    a->hello = drv_xmalloc(LWS_PRE + len); /* owned until written or the connection ends */
    memcpy(a->hello + LWS_PRE, text, len);
    a->hello_len = len;
    free(text);
}

/* The connection is gone (or never came): keep what matters, then retry or finish. */
static void connection_lost(drv_agent *a, const char *why)
{
    bool was_welcomed = a->welcomed, closing = a->want_close;
    a->wsi = NULL;
    a->welcomed = false;
    a->writable_requested = a->want_close = a->hb_queued = false;
    free(a->hello);
    a->hello = NULL;
    a->rx_len = 0;
    a->rx_too_big = false;
    uv_timer_stop(&a->hb_timer);
    if (a->mode == MODE_DONE)
        return;
    /* Fencing: nothing received on a lost connection starts; the coordinator sends again
     * what is still this worker's once the next hello lists what runs. */
    drop_queue(a);

    /* The outbox keeps what is about attempts; finished frames written recently may
     * not have arrived and go first, unless we closed the connection ourselves after
     * everything was written (then the coordinator read them before our close). */
    frame_queue keep = {0};
    frame_hdr h;
    double cutoff = mono_now() - DRV_AGENT_RESEND_WINDOW_S;
    size_t again = 0;
    for (size_t off = a->sent.head; !closing && off < a->sent.tail; off += rec_size(h.len)) {
        unsigned char *p = fq_at(&a->sent, off, &h);
        if (h.t >= cutoff) {
            fq_push(&keep, &h, p);
            again++;
        }
    }
    a->st.resent += again;
    for (size_t off = a->outq.head; off < a->outq.tail; off += rec_size(h.len)) {
        unsigned char *p = fq_at(&a->outq, off, &h);
        if (h.type == DRV_MSG_STARTED || h.type == DRV_MSG_OUTPUT || h.type == DRV_MSG_FINISHED)
            fq_push(&keep, &h, p);
    }
    fq_free(&a->outq);
    fq_free(&a->sent);
    a->outq = keep;
    a->st.disconnects++;

    /* Our own close after a drain, or the close after a refused hello, may end it. */
    check_done(a);
    if (a->mode == MODE_DONE || a->mode == MODE_REFUSED)
        return;

    double d = a->backoff_s;
    double wait = d / 2 + agent_random(a) * d / 2;
    a->backoff_s = d * 2 < a->cfg.backoff_max_s ? d * 2 : a->cfg.backoff_max_s;
    uv_timer_start(&a->retry_timer, on_retry_timer, (uint64_t)(wait * 1000.0 + 0.5), 0);

    char msg[1024];
    if (was_welcomed)
        snprintf(msg, sizeof msg,
                 "lost the connection to %s (%s); %u running, %u queued, %zu result%s to "
                 "deliver (%zu sent in the last %.0f s, sent again in case they were lost); "
                 "reconnecting in %.1f s",
                 a->url_text, why, a->running.n, a->queue.n, a->outq.finished,
                 a->outq.finished == 1 ? "" : "s", again, DRV_AGENT_RESEND_WINDOW_S, wait);
    else
        snprintf(msg, sizeof msg, "cannot connect to %s: %s; attempt %u, retrying in %.1f s",
                 a->url_text, why, ++a->failures, wait);
    emit(a, DRV_AGENT_EV_DISCONNECTED, msg, wait, 0);
}

/* Starts a connection attempt; a failure inside lws goes to connection_lost(). */
static void agent_connect(drv_agent *a)
{
    if (a->mode == MODE_DONE || a->freeing)
        return;
    static const lws_retry_bo_t idle_policy = {
        .secs_since_valid_ping = 3,
        .secs_since_valid_hangup = 10,
    };
    /* A hub of many agents (drover stress): no pings on silence (drv_agent_hub_quiet). */
    static const lws_retry_bo_t quiet_policy = {0};
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = a->hub->ctx;
    i.address = a->url.host;
    i.port = a->url.port;
    i.ssl_connection = a->url.tls ? LCCSCF_USE_SSL : 0;
    i.path = a->url.path;
    i.host = a->host_header;
    i.origin = a->host_header;
    i.protocol = AGENT_PROTOCOLS; /* Sec-WebSocket-Protocol */
    i.local_protocol_name = AGENT_PROTOCOL_NAME;
    i.userdata = a;
    i.retry_and_idle_policy = a->hub->quiet ? &quiet_policy : &idle_policy;
    a->connect_failed = false;
    a->conn_error[0] = '\0';
    a->close_reason[0] = '\0';
    a->hub->connecting = a;
    struct lws *wsi = lws_client_connect_via_info(&i);
    a->hub->connecting = NULL;
    if (!wsi || a->connect_failed) {
        connection_lost(a, a->conn_error[0] ? a->conn_error : "the connection could not start");
        return;
    }
    a->wsi = wsi;
}

/* The backoff is over: connect again. */
static void on_retry_timer(uv_timer_t *timer)
{
    agent_connect(timer->data);
}

/* Worker drain: the runs' deadline, then the delivery deadline. Abort: the grace. */
static void on_deadline_timer(uv_timer_t *timer)
{
    drv_agent *a = timer->data;
    char msg[DRV_ERROR_MAX];
    if (a->mode == MODE_WORKER_DRAIN && !a->deliver_phase) {
        a->deliver_phase = true;
        cancel_all(a, true);
        uint64_t ms = (uint64_t)(a->cfg.drain_timeout_s * 1000.0 + 0.5);
        uv_timer_start(&a->deadline_timer, on_deadline_timer, ms, 0);
        return;
    }
    if (a->mode != MODE_WORKER_DRAIN && a->mode != MODE_ABORT)
        return;
    size_t lost = a->outq.finished + a->running.n;
    if (lost == 0) {
        finish(a, 0, "stopped; every result delivered");
        return;
    }
    snprintf(msg, sizeof msg, "stopped; %zu result%s could not be delivered to %s", lost,
             lost == 1 ? "" : "s", a->url_text);
    finish(a, 1, msg);
}

/* Appends a frame's bytes to the receive buffer; the frame is handled when complete. */
static void on_receive(drv_agent *a, struct lws *wsi, const void *in, size_t len)
{
    if (!a->rx_too_big) {
        if (a->rx_len + len > DRV_MSG_MAX_BYTES) {
            a->rx_too_big = true;
        } else {
            if (a->rx_len + len > a->rx_cap) {
                size_t cap = a->rx_cap ? a->rx_cap : 4096;
                while (cap < a->rx_len + len)
                    cap *= 2;
                a->rx = drv_xrealloc(a->rx, cap);
                a->rx_cap = cap;
            }
            memcpy(a->rx + a->rx_len, in, len);
            a->rx_len += len;
        }
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
        return;
    char msg[160];
    if (a->rx_too_big || lws_frame_is_binary(wsi)) {
        a->st.bad_frames++;
        snprintf(msg, sizeof msg, "message: %s",
                 a->rx_too_big ? "frame larger than the limit of 8 MiB"
                               : "binary frames are refused (send JSON text)");
        send_error(a, msg, NULL);
        emit(a, DRV_AGENT_EV_LOCAL_ERROR, msg, 0, 0);
    } else {
        on_frame(a, (const char *)a->rx, a->rx_len);
    }
    a->rx_len = 0;
    a->rx_too_big = false;
    if (a->rx_cap > RX_KEEP_BYTES) {
        free(a->rx);
        a->rx = NULL;
        a->rx_cap = 0;
    }
}

/* The outbox's first frame, leaving it: a finished frame is copied to the sent log
 * first (a write masks the text in place; the copy is sent again after a reconnect).
 * Returns its text; *h gets its header. Call outbox_pop() once it is written. */
static unsigned char *outbox_take(drv_agent *a, frame_hdr *h)
{
    unsigned char *p = fq_at(&a->outq, a->outq.head, h);
    if (h->type == DRV_MSG_FINISHED) {
        double now = mono_now();
        /* When it was first written: a frame sent again after a reconnect keeps that time,
         * so it is sent again only within the window of its first write (resetting it at
         * every write kept results going round for as long as reconnects came faster
         * than the window: more resends than executions in the chaos suite). */
        if (h->t == 0)
            h->t = now;
        fq_push(&a->sent, h, p);
        frame_hdr old;
        while (a->sent.count > 0) {
            fq_at(&a->sent, a->sent.head, &old);
            if (old.t >= now - DRV_AGENT_RESEND_WINDOW_S && a->sent.bytes <= SENT_LOG_MAX_BYTES)
                break;
            fq_pop(&a->sent);
        }
    }
    return p;
}

/* Gone from the outbox either way: the text is masked now. A failed write loses the
 * connection; a finished frame is sent again from the sent log. */
static void outbox_pop(drv_agent *a, const frame_hdr *h)
{
    fq_pop(&a->outq);
    if (h->type == DRV_MSG_HEARTBEAT)
        a->hb_queued = false;
}

/* Lines subprotocol: the outbox's first messages joined, one per line, into one frame
 * of up to BATCH_BYTES (a larger message goes alone). One frame instead of one per
 * message: an acknowledge-only worker spent most of its time in three system calls per
 * frame (the send, the mask's random bytes, a poll). Returns lws_write's result. */
static int write_batch(drv_agent *a, struct lws *wsi)
{
    if (!a->batch)
        a->batch = drv_xmalloc(LWS_PRE + BATCH_BYTES);
    unsigned char *out = a->batch + LWS_PRE;
    size_t len = 0;
    frame_hdr h;
    while (a->outq.count > 0) {
        fq_at(&a->outq, a->outq.head, &h);
        if (len + (len > 0) + h.len > BATCH_BYTES)
            break;
        unsigned char *p = outbox_take(a, &h);
        if (len > 0)
            out[len++] = '\n';
        memcpy(out + len, p, h.len);
        len += h.len;
        outbox_pop(a, &h);
    }
    if (len > 0)
        return lws_write(wsi, out, len, LWS_WRITE_TEXT);
    unsigned char *p = outbox_take(a, &h);
    int n = lws_write(wsi, p, h.len, LWS_WRITE_TEXT);
    outbox_pop(a, &h);
    return n;
}

/* The hello, then (after the welcome) frames of the outbox, several per callback.
 * Returns -1 to close the connection. */
static int on_writeable(drv_agent *a, struct lws *wsi)
{
    a->writable_requested = false;
    if (a->hello) {
        a->hello_wall = wall_now(); /* the welcome's server_time comes after this */
        int n = lws_write(wsi, a->hello + LWS_PRE, a->hello_len, LWS_WRITE_TEXT);
        free(a->hello);
        a->hello = NULL;
        a->st.frames_out++;
        return n < 0 ? -1 : 0;
    }
    if (!a->welcomed)
        return 0;
    /* Several frames per callback while the socket takes them: one frame per callback
     * cost a poll round (an epoll_ctl to ask for POLLOUT, an epoll_wait) per frame,
     * which was most of an acknowledge-only worker's time. */
    for (int k = 0;
         a->outq.count > 0 && k < FRAMES_PER_WRITEABLE && (k == 0 || !lws_send_pipe_choked(wsi));
         k++) {
        int n;
        if (a->lines) {
            n = write_batch(a, wsi);
        } else {
            frame_hdr h;
            unsigned char *p = outbox_take(a, &h);
            n = lws_write(wsi, p, h.len, LWS_WRITE_TEXT);
            outbox_pop(a, &h);
        }
        if (n < 0)
            return -1;
        a->st.frames_out++;
    }
    if (a->outq.count > 0) {
        want_write(a);
    } else if (a->want_close) {
        static const char reason[] = "worker done";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)reason, sizeof reason - 1);
        return -1;
    } else {
        check_done(a);
    }
    return 0;
}

/* The lws callback of every agent connection; user is the agent (NULL once freed). */
static int agent_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    drv_agent *a = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        drv_agent_hub *hub = lws_context_user(lws_get_context(wsi));
        if (!a && hub)
            a = hub->connecting;
        if (!a)
            return 0;
        const char *why = in && *(const char *)in ? (const char *)in : "connection failed";
        /* lws's words for a refused or reset TCP connection, said for a person. */
        if (strcmp(why, "closed before established") == 0)
            why = "connection refused or closed before the WebSocket handshake";
        else if (strncmp(why, "connect SSL err", 15) == 0)
            why = "TLS handshake failed (is the coordinator's certificate trusted? a private "
                  "CA is given with --ca FILE)";
        if (hub && hub->connecting == a) {
            a->connect_failed = true;
            snprintf(a->conn_error, sizeof a->conn_error, "%s", why);
        } else if (a->wsi == wsi) {
            connection_lost(a, why);
        }
        return 0;
    }
    case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH:
        if (a && a->wsi == wsi) {
            char chosen[64];
            a->lines = lws_hdr_copy(wsi, chosen, sizeof chosen, WSI_TOKEN_PROTOCOL) > 0 &&
                       strcmp(chosen, DRV_PROTOCOL_SUBPROTOCOL_LINES) == 0;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (a && a->wsi == wsi) {
            make_hello(a);
            lws_callback_on_writable(wsi);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (a && a->wsi == wsi)
            on_receive(a, wsi, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (a && a->wsi == wsi)
            return on_writeable(a, wsi);
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (a && a->wsi == wsi && len > 2)
            snprintf(a->close_reason, sizeof a->close_reason, "closed by the coordinator: %.*s",
                     (int)(len - 2 > 120 ? 120 : len - 2), (const char *)in + 2);
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        if (a && a->wsi == wsi)
            connection_lost(a, a->close_reason[0] ? a->close_reason
                                                  : "connection closed by the coordinator");
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols agent_protocols[] = {
    {AGENT_PROTOCOL_NAME, agent_lws_cb, 0, AGENT_RX_BUFFER, 0, NULL, AGENT_TX_PACKET},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- hub ------------------------------------------------------------------------------ */

drv_agent_hub *drv_agent_hub_new(uv_loop_t *loop, const char *ca_file, drv_error *err)
{
    if (!loop) {
        drv_error_set(err, "worker connection: no event loop given");
        return NULL;
    }
    if (ca_file && access(ca_file, R_OK) != 0) {
        drv_error_set(err, "CA file %s: cannot read it", ca_file);
        return NULL;
    }
    drv_agent_hub *hub = drv_xcalloc(1, sizeof *hub); /* freed by drv_agent_hub_free */
    hub->loop = loop;
    hub->loops[0] = loop;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = agent_protocols;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.foreign_loops = hub->loops;
    info.client_ssl_ca_filepath = ca_file;
    info.user = hub;
    info.pcontext = &hub->ctx;
    info.timeout_secs = 10;
    info.connect_timeout_secs = 10;
    hub->ctx = lws_create_context(&info);
    if (!hub->ctx) {
        free(hub);
        drv_error_set(err, "worker connection: libwebsockets could not create its client "
                           "context");
        return NULL;
    }
    return hub;
}

void drv_agent_hub_quiet(drv_agent_hub *hub)
{
    hub->quiet = true;
}

/* Sets *busy when h is being closed. */
static void note_closing(uv_handle_t *h, void *busy)
{
    if (uv_is_closing(h))
        *(bool *)busy = true;
}

/* The hub's last handle is closed: free the hub. */
static void on_reaper_closed(uv_handle_t *h)
{
    free(h->data);
}

/* With a foreign loop, lws 4.1's first lws_context_destroy() only starts closing its
 * libuv handles; a second call, once they are closed, frees the context (else about
 * 300 KiB leak per context). An idle callback (the loop does not block while it waits,
 * a few turns) checks every turn whether a handle of the loop is still closing; once
 * none is, it makes that second call and frees the hub. */
static void on_reap(uv_idle_t *c)
{
    drv_agent_hub *hub = c->data;
    bool busy = false;
    uv_walk(hub->loop, note_closing, &busy);
    if (busy)
        return;
    if (hub->ctx)
        lws_context_destroy(hub->ctx);
    uv_close((uv_handle_t *)c, on_reaper_closed);
}

void drv_agent_hub_free(drv_agent_hub *hub)
{
    if (!hub)
        return;
    lws_context_destroy(hub->ctx);
    uv_idle_init(hub->loop, &hub->reaper);
    hub->reaper.data = hub;
    uv_idle_start(&hub->reaper, on_reap);
}

/* ---- agent life ------------------------------------------------------------------------ */

/* Frees what the agent owns once its last timer is closed. */
static void release(drv_agent *a)
{
    while (a->queue.head) {
        agent_test *t = a->queue.head;
        list_remove(&a->queue, t);
        test_free(t);
    }
    fq_free(&a->outq);
    fq_free(&a->sent);
    free(a->rx);
    free(a->hello);
    free(a->batch);
    free(a->url_text);
    free(a->token);
    free(a->name);
    free(a->pressure_root);
    free(a->tags_text);
    drv_agent_caps_clear(&a->caps);
    free(a);
}

/* One of the agent's timers is closed; the last one releases the agent. */
static void on_timer_closed(uv_handle_t *h)
{
    drv_agent *a = h->data;
    if (--a->open_handles == 0)
        release(a);
}

int drv_agent_start(drv_agent_hub *hub, const drv_agent_config *cfg, drv_agent **out,
                    drv_error *err)
{
    drv_agent_url url;
    if (!hub || !cfg || !out)
        return drv_error_set(err, "worker: no hub, config or result pointer given");
    if (drv_agent_parse_url(cfg->url, &url, err) < 0)
        return -1;
    if (!cfg->token || !*cfg->token || strlen(cfg->token) > DRV_STRING_MAX)
        return drv_error_set(err, "worker token: must be 1..%d bytes", DRV_STRING_MAX);
    size_t nlen = cfg->name ? strlen(cfg->name) : 0;
    if (nlen == 0 || nlen >= DRV_WORKER_NAME_MAX)
        return drv_error_set(err, "worker name \"%s\": must be 1..%d bytes",
                             cfg->name ? cfg->name : "", DRV_WORKER_NAME_MAX - 1);
    if (!cfg->caps || cfg->caps->cpu_cores < 1)
        return drv_error_set(err, "worker capabilities: missing, or cpu_cores is 0");
    if (cfg->slots < 1 || cfg->slots > DRV_PROBE_SLOTS_MAX)
        return drv_error_set(err, "worker slots: %u, expected 1..%d", cfg->slots,
                             DRV_PROBE_SLOTS_MAX);
    if (!(cfg->speed >= 0) || !(cfg->drain_timeout_s >= 0) || !(cfg->kill_grace_s >= 0) ||
        !(cfg->backoff_min_s >= 0) || !(cfg->backoff_max_s >= 0) || !(cfg->sim_mean_s >= 0) ||
        !(cfg->sim_sigma >= 0))
        return drv_error_set(err, "worker: speed, timeouts, backoff and simulated durations "
                                  "must be >= 0");

    drv_agent *a = drv_xcalloc(1, sizeof *a); /* freed by drv_agent_free (release) */
    a->hub = hub;
    a->cfg = *cfg;
    a->url = url;
    a->url_text = drv_xstrdup(cfg->url);
    a->token = drv_xstrdup(cfg->token);
    a->name = drv_xstrdup(cfg->name);
    caps_copy(&a->caps, cfg->caps);
    a->cfg.url = a->url_text;
    a->cfg.token = a->token;
    a->cfg.name = a->name;
    a->cfg.caps = &a->caps;
    a->pressure_root = cfg->pressure_root ? drv_xstrdup(cfg->pressure_root) : NULL;
    a->cfg.pressure_root = a->pressure_root;
    a->gpu_temperature = -1;
    if (a->cfg.speed == 0)
        a->cfg.speed = 1;
    if (a->cfg.output_cap_bytes == 0)
        a->cfg.output_cap_bytes = DRV_RUN_OUTPUT_CAP_DEFAULT;
    if (a->cfg.drain_timeout_s == 0)
        a->cfg.drain_timeout_s = DRV_AGENT_DRAIN_TIMEOUT_S;
    if (a->cfg.backoff_min_s == 0)
        a->cfg.backoff_min_s = DRV_AGENT_BACKOFF_MIN_S;
    if (a->cfg.backoff_max_s == 0)
        a->cfg.backoff_max_s = DRV_AGENT_BACKOFF_MAX_S;
    if (a->cfg.backoff_max_s < a->cfg.backoff_min_s)
        a->cfg.backoff_max_s = a->cfg.backoff_min_s;
    if (a->cfg.output_flush_ms == 0)
        a->cfg.output_flush_ms = DRV_AGENT_FLUSH_MS;
    a->backoff_s = a->cfg.backoff_min_s;
    a->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)a;
    if (a->rng == 0)
        a->rng = 0x9E3779B97F4A7C15ull;
    /* Another process under this name says another instance: the coordinator then
     * counts what it had sent here as possibly started (docs/protocol.md, hello). */
    uint64_t inst;
    if (getrandom(&inst, sizeof inst, GRND_NONBLOCK) != (ssize_t)sizeof inst)
        inst = a->rng * 0x2545F4914F6CDD1Dull;
    snprintf(a->instance, sizeof a->instance, "%016llx", (unsigned long long)inst);
    /* splitmix64 of the seed: nearby seeds give unrelated sequences. */
    uint64_t z = cfg->sim_seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    a->sim_rng = (z ^ (z >> 31)) ? (z ^ (z >> 31)) : 1;

    size_t tl = 1;
    for (size_t i = 0; a->caps.tags && a->caps.tags[i]; i++)
        tl += strlen(a->caps.tags[i]) + 2;
    a->tags_text = drv_xcalloc(tl + 8, 1);
    for (size_t i = 0; a->caps.tags && a->caps.tags[i]; i++) {
        if (i)
            strcat(a->tags_text, ", ");
        strcat(a->tags_text, a->caps.tags[i]);
    }
    if (!a->tags_text[0])
        strcpy(a->tags_text, "none");
    if (strchr(url.host, ':'))
        snprintf(a->host_header, sizeof a->host_header, "[%s]:%d", url.host, url.port);
    else
        snprintf(a->host_header, sizeof a->host_header, "%s:%d", url.host, url.port);

    uv_timer_t *timers[] = {&a->retry_timer, &a->hb_timer, &a->flush_timer, &a->deadline_timer};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(hub->loop, timers[i]);
        timers[i]->data = a;
    }
    a->open_handles = (int)(sizeof timers / sizeof timers[0]);
    /* The first attempt on the next loop turn: no event from inside this call. */
    uv_timer_start(&a->retry_timer, on_retry_timer, 0, 0);
    *out = a;
    return 0;
}

void drv_agent_drain(drv_agent *a, const char *reason)
{
    if (!a || a->freeing || (a->mode != MODE_RUN && a->mode != MODE_COORD_DRAIN))
        return;
    a->mode = MODE_WORKER_DRAIN;
    snprintf(a->drain_reason, sizeof a->drain_reason, "%s", reason ? reason : "worker stopping");
    cancel_all(a, false);
    if (a->welcomed)
        send_drain(a, a->drain_reason);
    uint64_t ms = (uint64_t)(a->cfg.drain_timeout_s * 1000.0 + 0.5);
    uv_timer_start(&a->deadline_timer, on_deadline_timer, ms, 0);
    check_done(a);
}

void drv_agent_abort(drv_agent *a)
{
    if (!a || a->freeing || a->mode == MODE_DONE || a->mode == MODE_ABORT)
        return;
    if (a->mode == MODE_REFUSED) {
        finish(a, 1, a->conn_error);
        return;
    }
    if (a->mode != MODE_WORKER_DRAIN)
        snprintf(a->drain_reason, sizeof a->drain_reason, "worker stopping now");
    a->mode = MODE_ABORT;
    cancel_all(a, true);
    uv_timer_start(&a->deadline_timer, on_deadline_timer,
                   (uint64_t)(DRV_AGENT_ABORT_GRACE_S * 1000.0), 0);
    check_done(a);
}

void drv_agent_disconnect(drv_agent *a)
{
    if (!a || a->freeing || a->mode == MODE_DONE || !a->wsi)
        return;
    /* lws closes it without a close frame; its CLOSED callback runs connection_lost(). */
    lws_set_timeout(a->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

void drv_agent_get_stats(const drv_agent *a, drv_agent_stats *out)
{
    *out = a->st;
    out->running = a->running.n;
    out->queued = a->queue.n;
    out->outbox = a->outq.count;
    out->outbox_finished = a->outq.finished;
}

bool drv_agent_is_done(const drv_agent *a)
{
    return a && a->mode == MODE_DONE;
}

void drv_agent_free(drv_agent *a)
{
    if (!a || a->freeing)
        return;
    a->freeing = true; /* no more events */
    gpu_query_detach(a);
    finish(a, 0, NULL);
    uv_timer_t *timers[] = {&a->retry_timer, &a->hb_timer, &a->flush_timer, &a->deadline_timer};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++)
        uv_close((uv_handle_t *)timers[i], on_timer_closed);
}

void drv_agent_caps_make(uint32_t cores, uint64_t memory_mb, uint32_t gpus, const char *const *tags,
                         drv_msg_caps *out)
{
    memset(out, 0, sizeof *out);
    out->cpu_cores = cores ? cores : 1;
    out->memory_mb = memory_mb;
    out->gpu_count = gpus;
    if (tags) {
        size_t n = 0;
        while (tags[n])
            n++;
        out->tags = drv_xcalloc(n + 1, sizeof *out->tags); /* owned by out */
        for (size_t i = 0; i < n; i++)
            out->tags[i] = drv_xstrdup(tags[i]);
    }
    out->os = drv_xstrdup("linux");
    out->arch = drv_xstrdup("x86_64");
}
