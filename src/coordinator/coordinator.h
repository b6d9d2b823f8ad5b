/* coordinator.h - the coordinator: one libuv loop serving the REST API (docs/api.md)
 * and the worker channel (docs/protocol.md) with libwebsockets, the balancer deciding
 * where tests run, and the store (SQLite) keeping everything durable.
 *
 * Turns. Every request and every worker message is applied at once to the balancer
 * and recorded as a store write; what must be durable before the world learns of it (a
 * submission's acknowledgement, an assign naming an attempt, a run's counts) is held.
 * At the end of each loop turn (a uv_check handle) the coordinator places what can be
 * placed and hands the turn's writes to the store's writer thread as one commit; the
 * held responses and frames are tagged with that commit and leave once the writer says
 * it is durable (a uv_async handle), while the loop goes on with the next turns (whose
 * writes the writer groups into its next commit). A commit that fails ends the process
 * (exit status 3): the store has only what was acknowledged, and a restart recovers
 * from it.
 *
 * Start and recovery. The store is opened (a lock file next to it keeps a second
 * coordinator away), then every test not final is taken back: queued ones are queued
 * again; assigned or running ones wait up to recovery_grace_s for their worker to say
 * hello and list them (they are then adopted where they run), otherwise their attempt
 * is abandoned and they are queued again.
 *
 * Failure detection. A worker silent for heartbeat_timeout_s (its connection closed or
 * not) is lost: what it held goes back through the balancer's retry rule, its open
 * attempts are abandoned (a result from them later is acknowledged and ignored). A
 * reconnecting worker lists what it still holds; tests it held and no longer lists by
 * its first heartbeat are treated as lost by it (an infrastructure failure).
 *
 * Ownership: drv_coordinator_start() returns a coordinator the caller frees with
 * drv_coordinator_free() after drv_coordinator_stop() and after the loop has run until
 * the stop completed (the done callback). Options are copied. */
#ifndef DRV_COORDINATOR_COORDINATOR_H
#define DRV_COORDINATOR_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "balancer/config.h"
#include "core/error.h"

#define DRV_COORDINATOR_DEFAULT_LISTEN "127.0.0.1:7070"
#define DRV_COORDINATOR_DEFAULT_DB     "drover.db"
#define DRV_COORDINATOR_MAX_BODY       (64u * 1024u * 1024u)
/* The dashboard's live feed (docs/api.md): a WebSocket with this path and subprotocol. */
#define DRV_DASHBOARD_PATH     "/ws/dashboard/v1"
#define DRV_DASHBOARD_PROTOCOL "drover-dashboard"

typedef struct drv_coordinator drv_coordinator;

typedef struct drv_coordinator_options {
    const char *listen;       /* "HOST:PORT"; NULL: DRV_COORDINATOR_DEFAULT_LISTEN; port 0: any */
    const char *db_path;      /* NULL: DRV_COORDINATOR_DEFAULT_DB */
    const char *client_token; /* NULL or "": requests are not authenticated */
    const char *worker_token; /* NULL or "": any worker is accepted */
    bool open_read;           /* GET requests need no token */
    const char *tls_cert;     /* PEM files; both or neither */
    const char *tls_key;
    drv_balancer_config balancer;
    double heartbeat_interval_s; /* told to workers; 0: 1 s */
    double heartbeat_timeout_s;  /* silence after which a worker is lost; 0: 3 s */
    double recovery_grace_s;     /* after a restart, wait this long for workers; 0: 10 s */
    size_t max_body;             /* largest request body; 0: DRV_COORDINATOR_MAX_BODY */
    bool sync_full;              /* fsync every commit (survives power loss) */
    double probe_interval_s;     /* a quarantined worker is probed this often; 0: 30 s;
                                    < 0: never (only an operator clears it) */
    const char *probe_command;   /* the probe's program, run with no arguments; NULL:
                                    "true" (can the worker start a process at all) */
    bool quiet;                  /* no info lines on stderr (warnings and errors still) */
    bool log_json;               /* log lines as JSON objects (srv) */
    double auth_timeout_s;       /* an upgraded connection that has not authenticated (a
                                    worker's hello, a dashboard's token) is closed after
                                    this long; 0: 10 s (srv) */
    /* monitoring (part "mon"; docs/api.md, "Monitoring") */
    const char *read_token;     /* NULL or "": none; else reads (GET) accept it too */
    double metrics_retention_s; /* 10 min samples kept this long; 0: default (14 days, as --retention);
                                   < 0: for ever */
    double retention_days;      /* finished runs and events older than this are removed
                                   (the metrics history has its own); 0: kept forever;
                                   options_default: 14 (srv) */
    double tails_retention_s;   /* output tails of attempts finished longer ago are removed,
                                   also in runs still open; 0: retention_days; < 0: kept
                                   (codec) */
    double forget_workers_s;    /* a lost or left worker holding nothing is forgotten this
                                   long after it went (tests only it could run become
                                   unschedulable); 0: 3600 s; < 0: never */
} drv_coordinator_options;

/* Fills o with the defaults (the balancer's default config included). */
void drv_coordinator_options_default(drv_coordinator_options *o);

/* Opens the store, recovers, and starts serving on loop. Returns NULL with err filled
 * (the listen address is wrong or taken, the store cannot be opened or is locked by
 * another coordinator, the TLS files cannot be read). */
drv_coordinator *drv_coordinator_start(uv_loop_t *loop, const drv_coordinator_options *o,
                                       drv_error *err);

/* The TCP port it listens on (useful with port 0). */
int drv_coordinator_port(const drv_coordinator *c);

/* Stops: commits, closes every connection and the listener, closes the store. done
 * (may be NULL) is called from the loop once everything is closed; the caller then
 * frees the coordinator. Calling it twice is harmless. */
void drv_coordinator_stop(drv_coordinator *c, void (*done)(void *data), void *data);

/* Frees a stopped coordinator. NULL is a no-op. */
void drv_coordinator_free(drv_coordinator *c);

/* Writes one log line in the coordinator's format (time, level, source; JSON with
 * log_json), for its command's own messages ("SIGTERM: stopping"); a warning is
 * printed even with quiet (srv). */
void drv_coordinator_log(drv_coordinator *c, bool warning, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
