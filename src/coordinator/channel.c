/* channel.c - the worker channel (docs/protocol.md): hello and its token, heartbeats,
 * started, output, finished, drain. Results count only for a test's current attempt on
 * the worker that holds it; anything else is a late result, acknowledged and ignored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/coord.h"

bool drv_coord_token_equal(const char *got, const char *want)
{
    size_t a = strlen(got), b = strlen(want);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < b; i++)
        diff |= (unsigned)(unsigned char)want[i] ^ (unsigned)(unsigned char)(i < a ? got[i] : 0);
    return diff == 0;
}

static void on_hello(drv_coordinator *c, drv_wsession *s, const drv_msg_hello *h)
{
    if (c->worker_token && !drv_coord_token_equal(h->token, c->worker_token)) {
        drv_coord_log(c, "refused worker \"%s\": bad worker token", h->name);
        drv_server_refuse(s, "hello.token: bad worker token", "hello.token");
        return;
    }
    double now = drv_coord_now();
    drv_error err;
    drv_capabilities caps;
    if (drv_msg_caps_to_capabilities(&h->caps, c->tags, &caps, &err) < 0) {
        drv_server_refuse(s, err.msg, "hello.capabilities");
        return;
    }
    int64_t w = drv_balancer_worker_find(c->bal, h->name);
    if (w >= 0 && (size_t)w < c->cap_workers && c->workers[w].session) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "hello.name: a worker named \"%.64s\" is already connected (give each worker"
                 " its own --name)",
                 h->name);
        drv_server_refuse(s, msg, "hello.name");
        return;
    }
    bool back = false;
    if (w >= 0) {
        const drv_worker *k = drv_balancer_worker(c->bal, (drv_wref)w);
        if (!drv_capabilities_equal(&k->caps, &caps) || k->slots != h->slots) {
            /* The machine changed: forget the old record once it holds nothing. */
            if (c->workers[w].lost && drv_balancer_worker_remove(c->bal, (drv_wref)w, &err) == 0) {
                c->workers[w].known = false;
                w = -1;
            }
        }
    }
    if (w < 0) {
        drv_worker_spec spec = {
            .name = h->name, .caps = caps, .slots = h->slots, .speed = (float)h->speed};
        w = drv_balancer_worker_add(c->bal, &spec, now, &err);
        if (w < 0) {
            drv_server_refuse(s, err.msg, "hello.name");
            return;
        }
        drv_coord_reserve_worker(c, (drv_wref)w);
        drv_cworker *cw = &c->workers[w];
        free(cw->batch);
        free(cw->cancels);
        memset(cw, 0, sizeof *cw);
        cw->known = true;
    } else {
        back = true;
        if (c->workers[w].lost)
            drv_balancer_worker_back(c->bal, (drv_wref)w, now);
    }
    drv_cworker *cw = &c->workers[w];
    const drv_worker *k = drv_balancer_worker(c->bal, (drv_wref)w);
    /* A new connection is a new worker process: what the old one said (it was draining,
     * it disconnected) no longer holds. An operator's drain and a quarantine stay. */
    bool self_drained = k->health == DRV_HEALTH_DRAINING &&
                        strncmp(k->health_reason, "the worker is draining", 22) == 0;
    if (cw->parked || self_drained || (cw->lost && k->health == DRV_HEALTH_LOST)) {
        drv_balancer_worker_set_health(c->bal, (drv_wref)w, DRV_HEALTH_OK, NULL, now);
    }
    cw->parked = false;
    cw->lost = false;
    cw->left = false;
    cw->session = s;
    cw->last_seen = now;
    cw->free_slots = h->slots;
    s->worker = (drv_wref)w;
    s->has_worker = true;
    drv_health_hello(c, (drv_wref)w, now);
    if (drv_store_worker_upsert(c->store, k, c->tags, now, &err) < 0 ||
        drv_store_event_append(c->store, now, back ? "worker_back" : "worker_joined", 0, h->name,
                               NULL, &err) < 0)
        drv_coord_fatal(c, &err);
    char tags[512];
    drv_tagset_format(c->tags, &k->caps.tags, tags, sizeof tags);
    drv_coord_log(c, "worker %s %s: %u slots, %u cores, %llu MB, %u GPUs, tags %s", h->name,
                  back ? "is back" : "joined", k->slots, k->caps.cpu_cores,
                  (unsigned long long)k->caps.memory_mb, k->caps.gpu_count, tags);
    /* Another process under this name (or one that does not say which): what was sent
     * to the old one and is not listed may have started there (recovery.c, exec3). The
     * last one is kept in the store too, for the first hello after a restart. */
    if (!cw->instance[0] && drv_store_worker_instance_get(c->store, h->name, cw->instance,
                                                          sizeof cw->instance, &err) < 0)
        drv_coord_fatal(c, &err);
    cw->restarted = !h->instance || strcmp(h->instance, cw->instance) != 0;
    snprintf(cw->instance, sizeof cw->instance, "%s", h->instance ? h->instance : "");
    if (back) { /* a loss while it ran tests counts towards quarantine unless restarted */
        drv_health before = k->health;
        drv_balancer_worker_hello(c->bal, (drv_wref)w, cw->restarted, now);
        drv_health_changed(c, (drv_wref)w, before, now);
    }
    if (drv_store_worker_instance(c->store, h->name, h->instance, &err) < 0)
        drv_coord_fatal(c, &err);
    drv_recovery_hello(c, (drv_wref)w, h->running, h->running_count, now);
    cw->welcome = true;
    drv_coord_mark_send(c, (drv_wref)w);
    c->place_needed = true;
}

static void on_heartbeat(drv_coordinator *c, drv_wsession *s, const drv_msg_heartbeat *hb)
{
    drv_cworker *cw = &c->workers[s->worker];
    double now = drv_coord_now();
    cw->last_seen = now;
    cw->load = hb->load;
    cw->free_slots = hb->free_slots;
    drv_thermal_signal sig = {.load = hb->load,
                              .cpu_pressure = hb->cpu_pressure,
                              .memory_pressure = hb->memory_pressure,
                              .freq_ratio = hb->freq_ratio,
                              .temperature_c = hb->temperature_c,
                              .throttled = hb->throttled,
                              .tests_cpu = hb->tests_cpu,
                              .tests_cpu_known = hb->tests_cpu >= 0};
    drv_balancer_worker_signal(c->bal, s->worker, now, &sig, hb->overloaded);
    drv_sampler_heartbeat(c, s->worker, now);
    if (cw->reconciling)
        drv_recovery_settle(c, s->worker, now);
    c->place_needed = true;
}

/* The live test this message is about, when it is the current attempt held by the
 * sending worker; NULL (counted as late) otherwise. */
static drv_ctask *current(drv_coordinator *c, drv_wsession *s, const drv_attempt_ref *ref,
                          drv_tref *t)
{
    drv_ctask *ct = drv_speculate_task(c, ref->task_id, ref->attempt, t);
    if (!ct || ct->task.attempts != ref->attempt ||
        drv_balancer_task_worker(c->bal, *t) != s->worker)
        return NULL;
    return ct;
}

static void on_started(drv_coordinator *c, drv_wsession *s, const drv_msg_started *m)
{
    if (m->ref.task_id == 0) { /* a health probe (health.c): only its end matters */
        c->workers[s->worker].last_seen = drv_coord_now();
        return;
    }
    drv_tref t;
    drv_dispatch_move_kept(c, s->worker, &m->ref, drv_coord_now()); /* it runs here */
    drv_ctask *ct = current(c, s, &m->ref, &t);
    drv_cworker *cw = &c->workers[s->worker];
    cw->last_seen = drv_coord_now();
    if (!ct || !ct->attempt_open)
        return; /* a start of an attempt given up: its finished will be ignored too */
    double now = cw->last_seen;
    drv_error err;
    int r = drv_store_attempt_started(c->store, ct->task.id, ct->task.attempts, now, &err);
    if (r < 0)
        drv_coord_fatal(c, &err);
    ct->unconfirmed = false;
    if (drv_balancer_task_state(c->bal, t) != DRV_TASK_ASSIGNED)
        return;
    drv_sampler_started(c, ct, now);
    drv_balancer_started(c->bal, t, now); /* the store shows it running by its attempt */
}

/* Text the store keeps as a C string: n bytes of p with each NUL written "\\x00" (the
 * rest would be cut off at the first). Returns NULL when p has no NUL (use p as it is),
 * else a new string the caller frees. */
static char *nul_escaped(const char *p, size_t n)
{
    if (!p || !memchr(p, '\0', n))
        return NULL;
    char *out = drv_xmalloc(4 * n + 1), *w = out;
    for (size_t i = 0; i < n; i++) {
        if (p[i]) {
            *w++ = p[i];
        } else {
            memcpy(w, "\\x00", 4);
            w += 4;
        }
    }
    *w = '\0';
    return out;
}

static void on_finished(drv_coordinator *c, drv_wsession *s, const drv_msg_finished *m)
{
    double now = drv_coord_now();
    drv_cworker *cw = &c->workers[s->worker];
    cw->last_seen = now;
    if (m->ref.task_id == 0) {
        drv_health_probe_finished(c, s, m);
        return;
    }
    drv_tref t;
    drv_dispatch_move_kept(c, s->worker, &m->ref, now); /* it ran here */
    drv_ctask *ct = current(c, s, &m->ref, &t);
    if (!ct || !ct->attempt_open) {
        c->late_results++;
        return;
    }
    char *tail = nul_escaped(m->output_tail, m->output_tail_len);
    char *etail = nul_escaped(m->stderr_tail, m->stderr_tail_len);
    drv_store_result r = {
        .finished_at = now,
        .exit_code = m->has_exit_code ? m->exit_code : -1,
        .signal = m->has_signal ? m->signal : 0,
        .timed_out = m->timed_out,
        .infra_failure = m->infra_failure,
        .duration_s = m->duration_s,
        .peak_memory_kb = m->peak_memory_kb,
        .output_tail = m->infra_failure && m->error ? m->error
                       : tail                       ? tail
                                                    : m->output_tail,
        .stderr_tail = etail ? etail : m->stderr_tail,
    };
    drv_error err;
    if (drv_store_attempt_finish(c->store, ct->task.id, ct->task.attempts, &r, NULL, &err) < 0)
        drv_coord_fatal(c, &err);
    ct->attempt_open = false;
    if (ct->paired && drv_speculate_finished(c, t, m->infra_failure)) {
        c->place_needed = true;
        return; /* a copy that failed to run: the other goes on */
    }
    /* py3: a batch's members get results of their own; a batch that reported every one
     * did its job (their failures are theirs): it passes, whatever its exit code. */
    bool reported = ct->task.members && drv_members_finished(c, ct, s->worker, &r, now) &&
                    !m->timed_out && !m->infra_failure && r.signal == 0;
    if (drv_balancer_task_state(c->bal, t) == DRV_TASK_ASSIGNED)
        drv_balancer_started(c->bal, t, now); /* its started frame never came */
    drv_result res = {.exit_code = reported ? 0 : r.exit_code,
                      .signal = r.signal,
                      .timed_out = m->timed_out,
                      .infra_failure = m->infra_failure,
                      .duration_s = m->duration_s,
                      .skipped = ct->task.skip_exit_code && m->has_exit_code &&
                                 m->exit_code == ct->task.skip_exit_code};
    drv_decision d;
    drv_sampler_result(c, s->worker, t, &res, now);
    drv_health before = drv_balancer_worker(c->bal, s->worker)->health;
    if (drv_balancer_finished(c->bal, t, now, &res, &d) == 0)
        drv_dispatch_decision(c, &d, &r);
    free(tail);
    free(etail);
    drv_health_changed(c, s->worker, before, now);
    if (m->infra_failure)
        drv_coord_log(c, "test %llu attempt %u on %s: infrastructure failure: %s",
                      (unsigned long long)m->ref.task_id, m->ref.attempt,
                      drv_balancer_worker(c->bal, s->worker)->name,
                      m->error ? m->error : "(no reason given)");
    c->place_needed = true;
}

/* Whether keeps[] lists (task_id, attempt). */
static bool kept(const drv_attempt_ref *keeps, size_t n, uint64_t task_id, uint32_t attempt)
{
    for (size_t i = 0; i < n; i++)
        if (keeps[i].task_id == task_id && keeps[i].attempt == attempt)
            return true;
    return false;
}

/* Worker w is draining and keeps only keeps[]: every test assigned to it and not kept
 * was dropped there or will be refused, so it goes back to the queue now, without
 * using a retry. */
static void hand_back(drv_coordinator *c, drv_wref w, const drv_attempt_ref *keeps, size_t n,
                      double now)
{
    size_t cap = 0, k = 0;
    drv_tref *back = NULL;
    drv_dispatch_moves_drop_for(c, w, "a worker at one end drains",
                                now); /* what it holds is what it was sent */
    for (drv_tref t = drv_balancer_held_first(c->bal, w); t != DRV_REF_NONE;
         t = drv_balancer_held_next(c->bal, t)) {
        const drv_ctask *ct = &c->tasks[t];
        if (drv_balancer_task_state(c->bal, t) != DRV_TASK_ASSIGNED ||
            kept(keeps, n, ct->task.id, ct->task.attempts))
            continue;
        if (k == cap) {
            cap = cap ? cap * 2 : 64;
            back = drv_xrealloc(back, cap * sizeof *back);
        }
        back[k++] = t;
    }
    for (size_t i = 0; i < k; i++) {
        drv_decision d;
        if (drv_balancer_handback(c->bal, back[i], now, &d) == 0)
            drv_dispatch_decision(c, &d, NULL);
    }
    free(back);
    if (k > 0)
        drv_coord_log(c, "worker %s gave back %zu tests it had not started",
                      drv_balancer_worker(c->bal, w)->name, k);
}

static void on_drain(drv_coordinator *c, drv_wsession *s, const drv_msg_drain *m)
{
    double now = drv_coord_now();
    const char *name = drv_balancer_worker(c->bal, s->worker)->name;
    char reason[160];
    snprintf(reason, sizeof reason, "the worker is draining%s%.120s", m->reason[0] ? ": " : "",
             m->reason);
    drv_balancer_worker_set_health(c->bal, s->worker, DRV_HEALTH_DRAINING, reason, now);
    drv_error err;
    if (drv_store_worker_health(c->store, name, DRV_HEALTH_DRAINING, reason, now, &err) < 0)
        drv_coord_fatal(c, &err);
    drv_coord_log(c, "worker %s: %s", name, reason);
    if (m->has_keeps)
        hand_back(c, s->worker, m->keeps, m->keeps_count, now);
    c->place_needed = true;
}

/* One message from a worker connection. */
static void channel_message(drv_coordinator *c, drv_wsession *s, const char *text, size_t len)
{
    drv_msg m;
    drv_error err;
    if (drv_msg_decode(text, len, &m, &err) < 0) {
        if (!s->has_worker)
            drv_server_refuse(s, err.msg, NULL);
        else
            drv_server_send_error(s, err.msg, NULL);
        return;
    }
    if (!(drv_msg_senders(m.type) & DRV_MSG_FROM_WORKER)) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s: sent by the coordinator, never by a worker",
                 drv_msg_type_name(m.type));
        drv_server_send_error(s, msg, "type");
    } else if (!s->has_worker && m.type != DRV_MSG_HELLO) {
        drv_server_refuse(s, "the first frame must be hello", "type");
    } else if (s->has_worker && m.type == DRV_MSG_HELLO) {
        drv_server_send_error(s, "hello: this connection already said hello", "type");
    } else {
        switch (m.type) {
        case DRV_MSG_HELLO:
            on_hello(c, s, &m.hello);
            break;
        case DRV_MSG_HEARTBEAT:
            on_heartbeat(c, s, &m.heartbeat);
            break;
        case DRV_MSG_RELEASED:
            drv_dispatch_released(c, s->worker, &m.release, drv_coord_now());
            break;
        case DRV_MSG_STARTED:
            on_started(c, s, &m.started);
            break;
        case DRV_MSG_OUTPUT: {
            c->workers[s->worker].last_seen = drv_coord_now();
            drv_tref t;
            drv_ctask *ct = current(c, s, &m.output.ref, &t);
            if (ct) { /* else: a given-up attempt's output, dropped */
                drv_dispatch_live_output(ct, m.output.data, m.output.len);
                if (ct->task.members && m.output.stream == DRV_STREAM_STDOUT)
                    drv_members_output(c, ct, s->worker, m.output.data, m.output.len,
                                       drv_coord_now());
            }
            break;
        }
        case DRV_MSG_FINISHED:
            on_finished(c, s, &m.finished);
            break;
        case DRV_MSG_DRAIN:
            on_drain(c, s, &m.drain);
            break;
        case DRV_MSG_ERROR:
            drv_coord_log(c, "worker %s refused a frame: %s",
                          drv_balancer_worker(c->bal, s->worker)->name, m.error.message);
            /* A worker older than the two-phase move does not know release: its moves
             * are dropped at once rather than when it starts the tests (exec2). */
            if (strstr(m.error.message, "unknown message type \"release\""))
                drv_dispatch_moves_drop_for(c, s->worker, "the holder does not know release",
                                            drv_coord_now());
            break;
        default:
            break;
        }
    }
    drv_msg_free(&m);
}

void drv_channel_frame(drv_coordinator *c, drv_wsession *s, const char *text, size_t len)
{
    if (!s->lines) {
        channel_message(c, s, text, len);
        return;
    }
    /* DRV_PROTOCOL_SUBPROTOCOL_LINES: one message per line, empty lines skipped; what a
     * message starts (a refused hello closing the connection) ends the frame. */
    const char *p = text, *end = text + len;
    while (p < end && !s->closing) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        if (e > p)
            channel_message(c, s, p, (size_t)(e - p));
        p = nl ? nl + 1 : end;
    }
}

void drv_channel_closed(drv_coordinator *c, drv_wsession *s)
{
    if (!s->has_worker || c->stopping)
        return;
    drv_wref w = s->worker;
    s->has_worker = false;
    if (w >= c->cap_workers || c->workers[w].session != s)
        return;
    drv_cworker *cw = &c->workers[w];
    cw->session = NULL;
    drv_dispatch_moves_drop_for(c, w, "a worker at one end disconnected",
                                drv_coord_now()); /* a release may be lost with it */
    drv_sampler_loss(c, w, drv_coord_now());
    const drv_worker *k = drv_balancer_worker(c->bal, w);
    drv_coord_log(c, "worker %s disconnected; lost unless it is back within %.1f s", k->name,
                  c->opt.heartbeat_timeout_s);
    /* Nothing new for it while it is away; what it holds waits for the timeout. */
    if (k->health == DRV_HEALTH_OK && !cw->lost) {
        drv_balancer_worker_set_health(c->bal, w, DRV_HEALTH_DRAINING, "disconnected",
                                       drv_coord_now());
        cw->parked = true;
    }
}
