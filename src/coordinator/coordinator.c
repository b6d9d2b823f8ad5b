/* coordinator.c - start, stop, the end-of-turn step and the tick (see coordinator.h and
 * coord.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/coord.h"
#include "core/series.h"
#include "core/heap.h"

#define TICK_MS            100
#define REBALANCE_EVERY_S  1.0
#define LEARNED_EVERY_S    60.0 /* learned durations written at most this long after */
#define SPECULATE_EVERY_S  0.5  /* stragglers looked for at most this often (speculate.c) */
#define DECISIONS_PER_CALL 256

void drv_coordinator_options_default(drv_coordinator_options *o)
{
    memset(o, 0, sizeof *o);
    /* The balancer's defaults, the same with or without a config file (config.c). */
    drv_balancer_config_default(&o->balancer);
    o->heartbeat_interval_s = 1.0;
    o->heartbeat_timeout_s = 3.0;
    o->recovery_grace_s = 10.0;
    o->probe_interval_s = 30.0;
    o->forget_workers_s = 3600.0;
    o->max_body = DRV_COORDINATOR_MAX_BODY;
    o->retention_days = 14.0;
}

double drv_coord_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void drv_coord_log(drv_coordinator *c, const char *fmt, ...)
{
    if (c->opt.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    drv_logv(DRV_LOG_INFO, "coordinator", fmt, ap);
    va_end(ap);
}

void drv_coord_warn(drv_coordinator *c, const char *fmt, ...)
{
    (void)c;
    va_list ap;
    va_start(ap, fmt);
    drv_logv(DRV_LOG_WARN, "coordinator", fmt, ap);
    va_end(ap);
}

void drv_coordinator_log(drv_coordinator *c, bool warning, const char *fmt, ...)
{
    if (!warning && c->opt.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    drv_logv(warning ? DRV_LOG_WARN : DRV_LOG_INFO, "coordinator", fmt, ap);
    va_end(ap);
}

_Noreturn void drv_coord_fatal(drv_coordinator *c, const drv_error *err)
{
    drv_log(DRV_LOG_ERROR, "coordinator",
            "fatal: store %s: %s; exiting (a restart recovers everything that was"
            " acknowledged)",
            c->db_path, err->msg);
    exit(3);
}

void drv_coord_reserve_task(drv_coordinator *c, drv_tref t)
{
    if (t < c->cap_tasks)
        return;
    size_t cap = c->cap_tasks ? c->cap_tasks : 1024;
    while (cap <= t)
        cap *= 2;
    c->tasks = drv_xrealloc(c->tasks, cap * sizeof *c->tasks);
    memset(c->tasks + c->cap_tasks, 0, (cap - c->cap_tasks) * sizeof *c->tasks);
    c->cap_tasks = cap;
}

void drv_coord_reserve_worker(drv_coordinator *c, drv_wref w)
{
    if (w < c->cap_workers)
        return;
    size_t cap = c->cap_workers ? c->cap_workers : 64;
    while (cap <= w)
        cap *= 2;
    c->workers = drv_xrealloc(c->workers, cap * sizeof *c->workers);
    memset(c->workers + c->cap_workers, 0, (cap - c->cap_workers) * sizeof *c->workers);
    c->cap_workers = cap;
}

drv_ctask *drv_coord_task_by_id(drv_coordinator *c, uint64_t id, drv_tref *tref)
{
    uint32_t t;
    if (!drv_idmap_get(&c->by_id, id, &t) || t >= c->cap_tasks || !c->tasks[t].live)
        return NULL;
    if (tref)
        *tref = t;
    return &c->tasks[t];
}

void drv_coord_mark_send(drv_coordinator *c, drv_wref w)
{
    drv_cworker *cw = &c->workers[w];
    if (cw->dirty)
        return;
    cw->dirty = true;
    if (c->n_send == c->cap_send) {
        c->cap_send = c->cap_send ? c->cap_send * 2 : 64;
        c->send_list = drv_xrealloc(c->send_list, c->cap_send * sizeof *c->send_list);
    }
    c->send_list[c->n_send++] = w;
}

/* ---- the end of a loop turn: place, commit, send ---- */

/* Releases the responses whose commit is durable. */
static void release_responses(drv_coordinator *c, uint64_t durable)
{
    drv_hsession *h = c->pending;
    while (h) {
        drv_hsession *next = h->pend_next;
        if (h->wait_seq && h->wait_seq <= durable) {
            drv_server_unlink_pending(c, h);
            drv_server_want_write(h->wsi);
        }
        h = next;
    }
}

/* What became durable: held responses go out, and worker connections holding frames
 * that waited for it are woken. */
static void durable_moved(drv_coordinator *c)
{
    drv_error err;
    uint64_t seq;
    if (drv_store_durable(c->store, &seq, &err) < 0)
        drv_coord_fatal(c, &err);
    if (seq != c->durable_seq) {
        c->durable_seq = seq;
        release_responses(c, seq);
        drv_server_wake(c);
    }
    drv_server_run_deferred(c);
}

static void on_durable(uv_async_t *a)
{
    drv_coordinator *c = a->data;
    if (!c->stopping)
        durable_moved(c);
}

/* Called by the store's writer thread: only a signal to the loop. */
static void notify_durable(void *ctx)
{
    drv_coordinator *c = ctx;
    uv_async_send(&c->durable);
}

/* The end of a turn: places what can be placed, hands the turn's writes to the store's
 * writer (the commit) and queues the responses and frames that wait for them, tagged
 * with that commit's number: they leave once it is durable (durable_moved). The writer
 * commits while the loop goes on with the next turns; what they write is grouped into
 * its next commit. */
static void on_turn(uv_check_t *handle)
{
    drv_coordinator *c = handle->data;
    if (c->stopping)
        return;
    drv_heap_advise(); /* what the heap grew by this turn, if the process tuned it */
    if (c->place_needed) {
        c->place_needed = false;
        drv_dispatch_place(c, drv_coord_now());
    }
    if (c->speculate_due) { /* right after a placement: free slots now would idle */
        c->speculate_due = false;
        drv_speculate_tick(c, drv_coord_now());
    }
    drv_error err;
    if (drv_store_pending(c->store) && drv_store_commit(c->store, &err) < 0)
        drv_coord_fatal(c, &err);
    durable_moved(c); /* reads deferred until now are handled here (they write nothing) */
    c->frame_seq = drv_store_handed(c->store);
    for (drv_hsession *h = c->pending; h; h = h->pend_next)
        if (!h->wait_seq)
            h->wait_seq = c->frame_seq;
    drv_dispatch_flush(c);
    release_responses(c, c->durable_seq); /* those that wrote nothing new */
}

/* ---- the tick: lost workers, recovery grace, rebalancing, metrics ---- */

double drv_coord_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes the durations learned since the last call (all of them with changed_only
 * false) into the store's open transaction. */
typedef struct learned_ctx {
    drv_coordinator *c;
    drv_error *err;
    int failed;
} learned_ctx;

static void save_learned(void *ctx, const drv_learned_test *t)
{
    learned_ctx *l = ctx;
    if (!l->failed && drv_store_learned_save(l->c->store, t, l->err) < 0)
        l->failed = -1;
}

/* What the balancer learned of the fleet (class speeds, affinity, each worker's pace):
 * a few rows per class and worker, written whole each time. */
static void save_learned_fact(void *ctx, const drv_learned_fact *f)
{
    learned_ctx *l = ctx;
    if (!l->failed && drv_store_learned_fact_save(l->c->store, f, l->err) < 0)
        l->failed = -1;
}

static int keep_learned(drv_coordinator *c, drv_error *err)
{
    learned_ctx l = {c, err, 0};
    drv_predictor_export_tests(c->pred, true, save_learned, &l);
    drv_balancer_export_learned(c->bal, save_learned_fact, &l);
    return l.failed;
}

/* A fact the balancer refuses (a row from elsewhere, out of range) is left out: the
 * balancer learns it again. */
static void load_learned_fact(void *ctx, const drv_learned_fact *f)
{
    (void)drv_balancer_import_learned(ctx, f);
}

static void load_learned(void *ctx, const drv_learned_test *t)
{
    drv_predictor_import_test(ctx, t);
}

static void on_tick(uv_timer_t *timer)
{
    drv_coordinator *c = timer->data;
    if (c->stopping)
        return;
    double now = drv_coord_now();
    uint32_t n = drv_balancer_worker_refs(c->bal);
    for (drv_wref w = 0; w < n && w < c->cap_workers; w++) {
        drv_cworker *cw = &c->workers[w];
        if (!cw->known || cw->lost)
            continue;
        if (now - cw->last_seen > c->opt.heartbeat_timeout_s) {
            char why[96];
            snprintf(why, sizeof why, "no heartbeat for %.1f s", now - cw->last_seen);
            drv_recovery_worker_lost(c, w, now, why);
        }
    }
    if (c->orphans_left > 0)
        drv_recovery_expire(c, now);
    drv_recovery_forget_workers(c, now);
    drv_health_tick(c, now);
    double feed_t0 = drv_coord_thread_cpu();
    drv_dashboard_tick(c, now);
    drv_sampler_loop_cpu(c, 1, drv_coord_thread_cpu() - feed_t0);
    drv_retention_tick(c, now);
    drv_server_run_deferred(c); /* parked waits whose time is up (GET /runs/ID?wait=S) */
    if (now - c->last_rebalance >= REBALANCE_EVERY_S) {
        c->last_rebalance = now;
        drv_decision d[DECISIONS_PER_CALL];
        size_t k = drv_balancer_rebalance(c->bal, now, d, DECISIONS_PER_CALL);
        for (size_t i = 0; i < k; i++)
            drv_dispatch_decision(c, &d[i], NULL);
    }
    if (now - c->last_learned >= LEARNED_EVERY_S) {
        c->last_learned = now;
        drv_error err;
        if (keep_learned(c, &err) < 0)
            drv_coord_fatal(c, &err);
    }
    drv_sampler_tick(c, now);
    /* Admission ramps and aging change with time alone. */
    c->place_needed = true;
    if (now - c->last_speculate >= SPECULATE_EVERY_S) {
        c->last_speculate = now;
        c->speculate_due = true;
    }
}

/* ---- start and stop ---- */

static int parse_listen(drv_coordinator *c, const char *listen, drv_error *err)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen)
        return drv_error_set(err, "--listen \"%s\": expected HOST:PORT, e.g. 127.0.0.1:7070",
                             listen);
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || !end || *end || end == colon + 1 || port < 0 || port > 65535)
        return drv_error_set(err, "--listen \"%s\": port must be 0..65535", listen);
    c->listen_host = drv_xmalloc((size_t)(colon - listen) + 1);
    memcpy(c->listen_host, listen, (size_t)(colon - listen));
    c->listen_host[colon - listen] = '\0';
    c->listen_port = (int)port;
    return 0;
}

/* Takes an exclusive lock on DB.lock so two coordinators never share one store. */
static int lock_store(drv_coordinator *c, drv_error *err)
{
    size_t n = strlen(c->db_path) + 6;
    c->lock_path = drv_xmalloc(n);
    snprintf(c->lock_path, n, "%s.lock", c->db_path);
    c->lock_fd = open(c->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (c->lock_fd < 0)
        return drv_error_set(err, "%s: cannot open: %s", c->lock_path, strerror(errno));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(c->lock_fd, F_SETLK, &fl) < 0) {
        int e = errno;
        if (e == EACCES || e == EAGAIN) {
            struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
            long pid = fcntl(c->lock_fd, F_GETLK, &who) == 0 ? (long)who.l_pid : 0;
            return drv_error_set(err, "%s is in use by another coordinator (pid %ld)", c->db_path,
                                 pid);
        }
        return drv_error_set(err, "%s: cannot lock: %s", c->lock_path, strerror(e));
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(c->lock_fd, 0) == 0 && write(c->lock_fd, pid, (size_t)len) < 0) {
        /* The pid in the file is a courtesy; the lock is what counts. */
    }
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? drv_xstrdup(s) : NULL;
}

drv_coordinator *drv_coordinator_start(uv_loop_t *loop, const drv_coordinator_options *o,
                                       drv_error *err)
{
    drv_coordinator *c = drv_xcalloc(1, sizeof *c);
    c->loop = loop;
    c->lock_fd = -1;
    c->listener.fd = -1;
    c->opt = *o;
    if (c->opt.heartbeat_interval_s <= 0)
        c->opt.heartbeat_interval_s = 1.0;
    if (c->opt.heartbeat_timeout_s <= 0)
        c->opt.heartbeat_timeout_s = 3.0;
    if (c->opt.recovery_grace_s <= 0)
        c->opt.recovery_grace_s = 10.0;
    if (c->opt.max_body == 0)
        c->opt.max_body = DRV_COORDINATOR_MAX_BODY;
    if (c->opt.probe_interval_s == 0)
        c->opt.probe_interval_s = 30.0;
    if (c->opt.forget_workers_s == 0)
        c->opt.forget_workers_s = 3600.0;
    c->db_path = drv_xstrdup(o->db_path && *o->db_path ? o->db_path : DRV_COORDINATOR_DEFAULT_DB);
    c->client_token = dup_or_null(o->client_token);
    c->worker_token = dup_or_null(o->worker_token);
    c->read_token = dup_or_null(o->read_token);
    c->tls_cert = dup_or_null(o->tls_cert);
    c->tls_key = dup_or_null(o->tls_key);
    c->probe_command =
        drv_xstrdup(o->probe_command && *o->probe_command ? o->probe_command : "true");
    c->opt.db_path = c->db_path;
    c->opt.client_token = c->client_token;
    c->opt.worker_token = c->worker_token;
    c->opt.tls_cert = c->tls_cert;
    c->opt.tls_key = c->tls_key;
    c->opt.probe_command = c->probe_command;
    c->opt.listen = NULL;
    drv_idmap_init(&c->by_id);
    c->started_at = drv_coord_now();

    if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
        drv_error_set(err, "TLS needs both --tls-cert and --tls-key");
        goto fail;
    }
    if (parse_listen(c, o->listen && *o->listen ? o->listen : DRV_COORDINATOR_DEFAULT_LISTEN, err) <
        0)
        goto fail;
    if (lock_store(c, err) < 0)
        goto fail;
    drv_store_options so = {.sync_full = o->sync_full};
    c->store = drv_store_open_with(c->db_path, &so, err);
    if (!c->store)
        goto fail;
    c->tags = drv_tag_table_new();
    c->pred = drv_predictor_new(0.3);
    c->bal = drv_balancer_new(&c->opt.balancer, c->tags, c->pred, err);
    if (!c->bal)
        goto fail;
    if (drv_sampler_start(c,
                          o->metrics_retention_s == 0  ? DRV_SERIES_DEFAULT_RETENTION_S
                          : o->metrics_retention_s < 0 ? 0
                                                       : o->metrics_retention_s,
                          err) < 0)
        goto fail;
    /* What earlier runs taught: how long each test takes, before recovery queues them. */
    if (drv_store_learned_load(c->store, load_learned, c->pred, err) < 0 ||
        drv_store_learned_fact_load(c->store, load_learned_fact, c->bal, err) < 0)
        goto fail;
    if (drv_store_epoch_begin(c->store, c->started_at, &c->epoch, err) < 0 ||
        drv_recovery_load(c, c->started_at, err) < 0 || drv_store_commit(c->store, err) < 0)
        goto fail;
    /* From here on the store's statements run on its writer thread (nothing is handed to
     * it before the first turn, so it has nothing to notify before the handle exists). */
    if (drv_store_writer_start(c->store, notify_durable, c, err) < 0 ||
        drv_store_durable(c->store, &c->durable_seq, err) < 0)
        goto fail;
    if (drv_server_start(c, err) < 0)
        goto fail;

    uv_async_init(loop, &c->durable, on_durable);
    c->durable.data = c;
    uv_check_init(loop, &c->turn);
    c->turn.data = c;
    uv_check_start(&c->turn, on_turn);
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS);
    c->last_rebalance = c->last_learned = c->started_at;
    c->place_needed = true;
    if (!c->client_token)
        drv_coord_warn(c, "no client token: anyone who reaches %s:%d can submit tests",
                       c->listen_host, c->port);
    if (!c->worker_token)
        drv_coord_warn(c, "no worker token: any worker may join");
    return c;

fail:
    drv_coordinator_free(c);
    return NULL;
}

int drv_coordinator_port(const drv_coordinator *c)
{
    return c->port;
}

static void on_handle_closed(uv_handle_t *h)
{
    drv_coordinator *c = h->data;
    if (++c->closed_handles == 3 && c->stop_done)
        c->stop_done(c->stop_data);
}

void drv_coordinator_stop(drv_coordinator *c, void (*done)(void *data), void *data)
{
    if (c->stopping)
        return;
    c->stopping = true;
    c->stop_done = done;
    c->stop_data = data;
    drv_error err;
    if (keep_learned(c, &err) < 0)
        drv_coord_log(c, "store %s: cannot keep the learned durations: %s", c->db_path, err.msg);
    if (drv_store_sync(c->store, &err) < 0)
        drv_coord_log(c, "store %s: last commit failed: %s", c->db_path, err.msg);
    drv_store_writer_quiet(c->store);
    drv_listener_close(c);
    if (c->lws)
        lws_context_destroy(c->lws); /* the first stage; see drv_coordinator_free() */
    uv_check_stop(&c->turn);
    uv_timer_stop(&c->tick);
    uv_close((uv_handle_t *)&c->turn, on_handle_closed);
    uv_close((uv_handle_t *)&c->tick, on_handle_closed);
    uv_close((uv_handle_t *)&c->durable, on_handle_closed);
}

void drv_coordinator_free(drv_coordinator *c)
{
    if (!c)
        return;
    /* With a foreign loop lws finishes its destruction in a second call, once the loop
     * has closed its handles (without it, its per-thread buffers leak). */
    if (c->lws)
        lws_context_destroy(c->lws);
    drv_listener_close(c);
    for (size_t t = 0; t < c->cap_tasks; t++) {
        if (c->tasks[t].live)
            drv_task_clear(&c->tasks[t].task);
        free(c->tasks[t].live_out);
        drv_members_live_free(&c->tasks[t]);
    }
    free(c->tasks);
    for (size_t w = 0; w < c->cap_workers; w++) {
        free(c->workers[w].batch);
        free(c->workers[w].cancels);
    }
    free(c->workers);
    free(c->moves);
    for (size_t i = 0; i < c->n_orphans; i++) {
        drv_task_clear(&c->orphans[i].task);
        free(c->orphans[i].worker);
    }
    free(c->orphans);
    for (size_t i = 0; i < c->n_after_waiting; i++)
        drv_task_clear(&c->after_waiting[i].task);
    free(c->after_waiting);
    free(c->send_list);
    drv_idmap_clear(&c->by_id);
    drv_balancer_free(c->bal);
    drv_predictor_free(c->pred);
    drv_tag_table_free(c->tags);
    if (c->store) {
        drv_error err;
        if (drv_store_pending(c->store) && drv_store_commit(c->store, &err) < 0)
            drv_log(DRV_LOG_ERROR, "coordinator", "store %s: last commit failed: %s", c->db_path,
                    err.msg);
        drv_store_close(c->store);
    }
    if (c->lock_fd >= 0) {
        unlink(c->lock_path);
        close(c->lock_fd);
    }
    free(c->lock_path);
    free(c->listen_host);
    free(c->db_path);
    free(c->client_token);
    free(c->worker_token);
    free(c->read_token);
    drv_sampler_free(c);
    drv_members_free(c);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->probe_command);
    free(c->dashboard);
    free(c);
}
