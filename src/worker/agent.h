/* agent.h - the worker's side of the worker channel: one connection to a coordinator
 * that registers, heartbeats, runs what it is assigned, reports, reconnects and drains.
 *
 * Sharing: a drv_agent_hub is one libwebsockets client context on the caller's libuv
 * loop. Every drv_agent (one WebSocket connection, one worker as the coordinator sees
 * it) belongs to a hub, and any number of agents can share one hub and one loop:
 * `drover worker` makes one hub and one agent; `drover stress` makes one hub and
 * hundreds of agents. The hub owns no agent: free every agent before the hub, then run
 * the loop until it is empty (lws and the agents close their handles asynchronously).
 *
 * What an agent does (docs/protocol.md, "Worker channel"):
 *   - Connects to URL + DRV_PROTOCOL_PATH offering the WebSocket subprotocols
 *     "drover-worker.lines" then "drover-worker" (Sec-WebSocket-Protocol; on the first,
 *     which a coordinator that knows it picks, its frames join several messages), sends
 *     hello (token, name, capabilities, slots, running), waits for welcome, then sends a
 *     heartbeat every heartbeat_interval_s the welcome gave (load = running / slots;
 *     free_slots = slots - running - queued, 0 while draining; running = the attempts
 *     it holds, running then queued, so an assignment waiting for a slot is not taken
 *     for one that never arrived).
 *   - assign: every test is queued in arrival order and up to `slots` run at once
 *     (src/worker/runner.h: own process group, timeout, cwd, env; shell tests through
 *     the runner's shell mode). A test sends `started` (with its pid) when spawned,
 *     its output as coalesced `output` chunks (at most one frame per attempt per
 *     output_flush_ms, or sooner when 64 KiB are waiting; seq per attempt from 0; a
 *     UTF-8 sequence cut by a read is held back for the next chunk), and `finished`
 *     (exit code or signal, timed_out, duration, peak memory, the last
 *     DRV_OUTPUT_TAIL_MAX bytes of output). The output cap (the test's
 *     output_cap_bytes, else the agent's) limits both the bytes streamed as `output`
 *     (one note says when the rest is not streamed) and the tail kept for `finished`.
 *     A test that cannot be spawned is `finished` with infra_failure and error.
 *   - ack_only: no process at all; every assigned test is answered at once with a
 *     `finished` of exit code 0 and duration 0 (no `started`, no `output`).
 *   - simulate (benchmarks: `drover stress`): no process either, but each test is
 *     queued and holds a slot as a real one does, for a duration given by the
 *     caller's sim_duration or drawn (lognormal with mean sim_mean_s and sigma
 *     sim_sigma, from a generator seeded with sim_seed: the same seed gives the same
 *     durations in the same order); a uv timer ends it with a `finished` of exit code
 *     0 and that duration (`started` first when sim_started). cancel, drain and abort
 *     treat a simulated test as a running process (a cancelled one is reported as
 *     signal 15 after the time it had run).
 *   - cancel: a running attempt's process group is killed (drv_run_cancel) and its
 *     `finished` (signal) is reported as usual; a queued attempt is dropped and nothing
 *     is reported for it (the coordinator gave it up). An unknown attempt is ignored.
 *   - drain from the coordinator: the agent takes nothing new and finishes what it
 *     holds, queued tests included. An assign that arrives afterwards is refused whole
 *     with one `error` frame (field "assign") naming the attempts refused; they are not
 *     run and never reported, so the coordinator places them again. Once everything
 *     held is finished and delivered, the agent closes the connection and is done
 *     (status 0).
 *   - drv_agent_drain() (the worker's SIGTERM): sends `drain`, drops the tests it has
 *     not started (never reported: its heartbeats stop listing them, and they end with
 *     the connection), refuses further assigns as above, lets running tests finish for
 *     up to drain_timeout_s, then kills what is left and reports each as a `finished`
 *     infra failure ("killed: the worker was draining and its drain timeout passed
 *     (signal 15 after 30.0 s)"): the test did not fail, so it may be placed again. When
 *     every result is delivered it closes the connection and is done (status 0). If the
 *     coordinator is away it keeps reconnecting for up to another drain_timeout_s and
 *     then gives up (status 1, the message says how many results were not delivered).
 *   - drv_agent_abort() (a second signal): kills every run now (reported as infra
 *     failures, as above), drops the queue, delivers what it can within
 *     DRV_AGENT_ABORT_GRACE_S, and is done (status 0 when nothing was left
 *     undelivered, else 1).
 *   - Connection lost or refused: runs keep running; every message about an attempt
 *     (started, output, finished) stays in the outbox, and the `finished` frames
 *     written during the last DRV_AGENT_RESEND_WINDOW_S of the lost connection are put
 *     back in it too, since they may not have arrived (so a coordinator may see one
 *     `finished` twice and must ignore the second). The agent reconnects with
 *     exponential backoff (backoff_min_s doubling to backoff_max_s, each wait drawn
 *     from [d/2, d]); its hello lists under `running` every attempt it holds: running,
 *     and finished but not yet delivered (fencing: the tests it had queued, unstarted,
 *     are dropped at the loss; the coordinator sends those still this worker's again),
 *     and a worker whose loop stood still longer than the assigns' lease (it was
 *     stopped) drops its queue and reconnects too; after the welcome it sends `drain`
 *     again if it is draining, then the outbox, oldest first. A connection that stays
 *     silent is found dead with WebSocket pings (ping after 3 s idle, hang up after 10).
 *   - An `error` frame before the welcome is a refused hello: the agent cancels its
 *     runs and is done with status 1 ("coordinator refused hello: bad worker token");
 *     it does not retry. Later `error` frames are reported as events and ignored.
 *   - A frame that does not decode, is binary, is larger than DRV_MSG_MAX_BYTES, or is
 *     a type the coordinator does not send is answered with an `error` frame naming
 *     the problem; the connection stays open.
 *
 * Writes: one lws_write per WRITEABLE callback; every frame waits in the agent's
 * outgoing queue (stored with LWS_PRE bytes of room before it) until then.
 *
 * Ownership: drv_agent_start() copies every string and the capabilities it is given.
 * Strings in events live only during the callback. */
#ifndef DRV_WORKER_AGENT_H
#define DRV_WORKER_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/error.h"
#include "core/tags.h"
#include "protocol/protocol.h"
#include "worker/probe.h"

#define DRV_AGENT_BACKOFF_MIN_S   0.1
#define DRV_AGENT_BACKOFF_MAX_S   5.0
#define DRV_AGENT_FLUSH_MS        100
#define DRV_AGENT_GPU_QUERY_S     10 /* nvidia-smi for temperature and throttling, at most */
#define DRV_AGENT_FLUSH_BYTES     (64u * 1024)
#define DRV_AGENT_DRAIN_TIMEOUT_S 30.0
#define DRV_AGENT_ABORT_GRACE_S   3.0
#define DRV_AGENT_RESEND_WINDOW_S 15.0
/* Output frames held while disconnected, beyond which new chunks are dropped (the
 * finished tail still has the end of the output). */
#define DRV_AGENT_OUTBOX_OUTPUT_MAX (16u * 1024 * 1024)

typedef struct drv_agent_hub drv_agent_hub;
typedef struct drv_agent drv_agent;

/* Creates a hub: one lws client context (TLS ready for wss://) on loop. ca_file (PEM)
 * is the certificate authority wss:// coordinators are checked against; NULL: the
 * system's. Returns NULL with err filled when loop is NULL, ca_file cannot be read, or
 * lws refuses to create the context. */
drv_agent_hub *drv_agent_hub_new(uv_loop_t *loop, const char *ca_file, drv_error *err);
/* For a hub of thousands of agents (drover stress): their connections do without
 * WebSocket pings on silence (lws's validity check: ping after 3 s without a frame,
 * close after 10 s). lws keeps every connection's validity timer in one list per
 * context sorted by due time and moves it at each frame received, a walk of the list:
 * with 6,000 agents in one process those walks took its whole CPU, the heartbeats
 * fell behind and the coordinator lost them all. Without pings an agent learns of a
 * dead coordinator when the connection closes (on 127.0.0.1 it always does). Call
 * before the first agent starts. */
void drv_agent_hub_quiet(drv_agent_hub *hub);
/* Destroys the hub's lws context and frees the hub; both finish on the loop, so run it
 * until it is empty before closing it. Free every agent of the hub first, and do not
 * call this from inside an agent event (an lws callback of the hub may be on the
 * stack). NULL is a no-op. */
void drv_agent_hub_free(drv_agent_hub *hub);

/* A coordinator address: ws://, wss://, http:// or https:// HOST[:PORT][/PREFIX]. */
typedef struct drv_agent_url {
    bool tls;        /* wss or https */
    char host[256];  /* "127.0.0.1", "coord.example.com", "::1" (brackets removed) */
    int port;        /* given, else 80 / 443 */
    char path[1024]; /* PREFIX (without a trailing '/') + DRV_PROTOCOL_PATH */
} drv_agent_url;

/* Parses url into *out. http(s) maps to ws(s); a path after the host is kept as a
 * prefix of DRV_PROTOCOL_PATH (for a coordinator behind a proxy). Returns -1 with err
 * naming the url and the problem (NULL or empty, unknown scheme, no host, bad port,
 * a query or fragment, too long). */
int drv_agent_parse_url(const char *url, drv_agent_url *out, drv_error *err);

/* Fills *out with a hello's capabilities from a probe: cores, memory, GPUs, cuda_cc
 * ("8.6") and driver version ("535.104.5") when known, every tag of the probe (labels
 * included) by name, os (lower case) and arch. out owns its strings: release them with
 * drv_agent_caps_clear(). */
void drv_agent_caps_from_probe(const drv_probe_result *r, const drv_tag_table *tags,
                               drv_msg_caps *out);
/* Frees the strings of caps and zeroes it; NULL is a no-op. */
void drv_agent_caps_clear(drv_msg_caps *caps);

typedef enum drv_agent_event_kind {
    DRV_AGENT_EV_CONNECTED,    /* welcome received */
    DRV_AGENT_EV_DISCONNECTED, /* a connection attempt failed or was lost; retry_in_s */
    DRV_AGENT_EV_REMOTE_ERROR, /* the coordinator refused one of our frames */
    DRV_AGENT_EV_LOCAL_ERROR,  /* we refused a coordinator frame (answered with error) */
    DRV_AGENT_EV_DRAIN,        /* the coordinator asked this worker to drain */
    DRV_AGENT_EV_DONE,         /* stopped for good; status */
} drv_agent_event_kind;

typedef struct drv_agent_event {
    drv_agent_event_kind kind;
    /* One line without newline, e.g. "worker gpu-1 connected to ws://c:8080, 4 slots,
     * tags: cpu, cuda"; "cannot connect to ws://127.0.0.1:1: connection refused". */
    const char *message;
    double retry_in_s; /* DISCONNECTED: seconds until the next attempt */
    int status;        /* DONE: 0 = drained and delivered everything; 1 = refused or lost */
} drv_agent_event;

/* Simulated mode: the duration in seconds test t will "run" for; a negative number (or
 * NaN) means "draw it as without a function" (from sim_mean_s and sim_sigma), so the
 * function can serve as a hook that only watches.
 * Called on the loop once per test, when the assign holding it is received (so a caller
 * can time the assign), in arrival order; t and its strings live only during the call. */
typedef double (*drv_agent_duration_fn)(const drv_msg_test *t, void *data);

/* Fills *out with capabilities given by hand instead of probed (fake workers, tests):
 * cores (0 counts as 1), memory_mb, gpus, tags (NULL-terminated valid tag names, copied;
 * NULL: none), os "linux", arch "x86_64". Release with drv_agent_caps_clear(). */
void drv_agent_caps_make(uint32_t cores, uint64_t memory_mb, uint32_t gpus, const char *const *tags,
                         drv_msg_caps *out);

/* Called on the loop for every event. The agent may be freed from inside a DONE
 * event (and only from a DONE event). */
typedef void (*drv_agent_event_cb)(drv_agent *agent, const drv_agent_event *ev, void *data);

typedef struct drv_agent_config {
    const char *url;          /* required; see drv_agent_parse_url() */
    const char *token;        /* required, non-empty */
    const char *name;         /* required, 1..63 bytes */
    const drv_msg_caps *caps; /* required (cpu_cores >= 1); copied */
    uint32_t slots;           /* 1..DRV_PROBE_SLOTS_MAX */
    double speed;             /* 0 = 1 */
    bool ack_only;            /* answer every test with exit 0 without running it */
    /* Simulated mode (ignored with ack_only): no process; each test holds a slot for a
     * drawn duration (a uv timer), then is finished with exit 0 and that duration. */
    bool simulate;
    drv_agent_duration_fn sim_duration; /* NULL or < 0: drawn from sim_mean_s / sim_sigma */
    void *sim_data;                     /* passed to sim_duration */
    double sim_mean_s;                  /* mean duration of the draw; 0: finish at once */
    double sim_sigma;                   /* lognormal sigma; 0: every test takes the mean */
    uint64_t sim_seed;                  /* seeds the agent's draws (0: 1) */
    bool sim_started;                   /* also send `started` (pid: this process's) */
    uint64_t output_cap_bytes;          /* 0 = DRV_RUN_OUTPUT_CAP_DEFAULT */
    double drain_timeout_s;             /* 0 = DRV_AGENT_DRAIN_TIMEOUT_S */
    double kill_grace_s;                /* 0 = the runner's default */
    double backoff_min_s;               /* 0 = DRV_AGENT_BACKOFF_MIN_S */
    double backoff_max_s;               /* 0 = DRV_AGENT_BACKOFF_MAX_S */
    unsigned output_flush_ms;           /* 0 = DRV_AGENT_FLUSH_MS */
    /* Tests only (exec2; `drover worker` reads DROVER_TEST_START_STALL_S): after a test's
     * process starts, the agent stops this long before it says `started`, so a
     * coordinator can try to move a test that already runs. 0: never. */
    double start_stall_s;
    /* Pressure measured for each heartbeat (worker/probe.h, drv_pressure_read), except
     * in simulated mode: the root of the /proc and /sys read (NULL = "/"; tests give a
     * fake tree), and whether to ask nvidia-smi (at most every DRV_AGENT_GPU_QUERY_S, as a
     * child process the loop watches: heartbeats carry its last answer). */
    const char *pressure_root;
    bool measure_gpus;
    drv_agent_event_cb on_event;   /* may be NULL */
    void *data;                    /* passed to on_event */
    struct drv_guardian *guardian; /* told each test's process group (guardian.h); NULL:
                                      none (a test may outlive a killed worker) */
} drv_agent_config;

/* What an agent did, for tests, `drover stress` and logs. */
typedef struct drv_agent_stats {
    uint64_t connects;       /* welcomes received */
    uint64_t disconnects;    /* connections lost or attempts failed */
    uint64_t assigned;       /* tests received in assigns (refused ones not counted) */
    uint64_t refused;        /* tests refused while draining */
    uint64_t started;        /* processes spawned */
    uint64_t finished;       /* finished messages made */
    uint64_t dropped;        /* queued tests dropped (cancel, drain, abort, fencing) */
    uint64_t fenced;         /* tests not started because of fencing (docs/protocol.md) */
    uint64_t frames_out;     /* frames written */
    uint64_t frames_in;      /* frames received */
    uint64_t bad_frames;     /* coordinator frames refused */
    uint64_t resent;         /* finished frames queued again after a lost connection */
    uint64_t output_dropped; /* output bytes not streamed (cap, or outbox full) */
    uint32_t running;        /* tests whose process is alive now */
    uint32_t queued;         /* tests waiting for a slot */
    size_t outbox;           /* frames waiting to be written */
    size_t outbox_finished;  /* of which finished */
} drv_agent_stats;

/* Validates cfg, copies it, and starts connecting (on the next loop turn). Returns 0
 * with *out set, or -1 with err ("worker name \"\": must be 1..63 bytes") and nothing
 * allocated. The agent runs until it is done (see above) or freed. */
int drv_agent_start(drv_agent_hub *hub, const drv_agent_config *cfg, drv_agent **out,
                    drv_error *err);

/* The worker's own drain (SIGTERM), with reason sent in the drain frame (NULL:
 * "worker stopping"). A second call, or a call after the agent is done, does nothing. */
void drv_agent_drain(drv_agent *agent, const char *reason);

/* Stops now: cancels every run, drops the queue, delivers what it can in
 * DRV_AGENT_ABORT_GRACE_S, then DONE. Does nothing once the agent is done. */
void drv_agent_abort(drv_agent *agent);

/* Drops the connection as if the network lost it: nothing is said to the coordinator,
 * what the agent holds keeps running, and it reconnects after its backoff (the results
 * written shortly before are sent again, see above). Does nothing while not connected
 * or once the agent is done. */
void drv_agent_disconnect(drv_agent *agent);

/* Copies the agent's counters into *out. */
void drv_agent_get_stats(const drv_agent *agent, drv_agent_stats *out);

/* True once the agent emitted DONE. */
bool drv_agent_is_done(const drv_agent *agent);

/* Closes the connection, kills every run without reporting it, and frees the agent
 * once its handles are closed (the loop must keep running). Safe inside a DONE event.
 * NULL is a no-op. */
void drv_agent_free(drv_agent *agent);

#endif
