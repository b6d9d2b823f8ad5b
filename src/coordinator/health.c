/* health.c - worker health that outlives a connection, and the quarantine probe.
 *
 * A quarantine (the balancer's verdict after repeated infrastructure failures) and an
 * operator's drain are decisions about a machine, not about one connection: they stay
 * in the store while the worker is lost and are applied again when it says hello, after
 * a reconnect or after a coordinator restart. Only an operator (POST .../clear) or a
 * passing probe lifts a quarantine.
 *
 * The probe: every probe_interval_s a connected quarantined worker is sent a health
 * probe, an assign of one test with the reserved task id 0 (docs/protocol.md) whose
 * command is probe_command. The worker runs it as it runs any test (the same runner,
 * process group and timeout); when it finishes with exit status 0 and no
 * infrastructure failure, the quarantine is cleared. A probe that fails, or is not
 * answered within its timeout and a heartbeat timeout more, leaves the worker
 * quarantined with the probe's outcome in its health reason. Probes are not tests: no
 * row in the store, no attempt, nothing in any run's counts; the event log records each
 * outcome. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/coord.h"

#define PROBE_TIMEOUT_S 30.0
#define PROBE_NAME      "drover health probe"
#define REASON_MAX      sizeof(((drv_worker *)0)->health_reason)

bool drv_health_persists(drv_health h, const char *reason)
{
    return h == DRV_HEALTH_QUARANTINED ||
           (h == DRV_HEALTH_DRAINING && reason && strcmp(reason, DRV_HEALTH_OPERATOR_DRAIN) == 0);
}

void drv_health_hello(drv_coordinator *c, drv_wref w, double now)
{
    const drv_worker *k = drv_balancer_worker(c->bal, w);
    if (k->health != DRV_HEALTH_OK)
        return; /* already held by this coordinator */
    drv_health stored;
    char reason[sizeof k->health_reason];
    drv_error err;
    int found =
        drv_store_worker_health_get(c->store, k->name, &stored, reason, sizeof reason, &err);
    if (found < 0)
        drv_coord_fatal(c, &err);
    if (found == 0 || !drv_health_persists(stored, reason))
        return;
    drv_balancer_worker_set_health(c->bal, w, stored, reason, now);
    /* The first probe after a reconnect waits one interval, like the first after a
     * quarantine. */
    c->workers[w].probe_next = now + c->opt.probe_interval_s;
    drv_coord_log(c, "worker %s stays %s: %s", k->name, drv_health_name(stored), reason);
}

/* Sends worker w a probe: an assign of one test with task id 0. */
static void send_probe(drv_coordinator *c, drv_wref w, double now)
{
    drv_cworker *cw = &c->workers[w];
    char *argv[] = {(char *)c->opt.probe_command, NULL};
    drv_msg_test t = {.task_id = 0,
                      .attempt = ++cw->probe_seq,
                      .name = PROBE_NAME,
                      .argv = argv,
                      .timeout_s = PROBE_TIMEOUT_S};
    drv_msg m;
    drv_msg_init(&m, DRV_MSG_ASSIGN);
    m.assign.tests = &t;
    m.assign.count = 1;
    drv_dispatch_send(cw->session, &m);
    cw->probe_pending = true;
    cw->probe_sent_at = now;
    drv_coord_log(c, "worker %s is quarantined; probe %u: %s", drv_balancer_worker(c->bal, w)->name,
                  cw->probe_seq, c->opt.probe_command);
}

/* Records a probe's outcome: clears the quarantine when it passed. */
static void probe_outcome(drv_coordinator *c, drv_wref w, bool passed, const char *what, double now)
{
    drv_cworker *cw = &c->workers[w];
    const drv_worker *k = drv_balancer_worker(c->bal, w);
    cw->probe_pending = false;
    cw->probe_next = now + c->opt.probe_interval_s;
    drv_error err;
    char msg[REASON_MAX + 128];
    if (passed) {
        snprintf(msg, sizeof msg, "quarantine cleared by probe %u: %s", cw->probe_seq, what);
        drv_balancer_worker_set_health(c->bal, w, DRV_HEALTH_OK, NULL, now);
        if (drv_store_worker_health(c->store, k->name, DRV_HEALTH_OK, NULL, now, &err) < 0 ||
            drv_store_event_append(c->store, now, "worker_cleared", 0, k->name, msg, &err) < 0)
            drv_coord_fatal(c, &err);
        drv_coord_log(c, "worker %s: %s", k->name, msg);
        c->place_needed = true;
        return;
    }
    /* Keep the cause of the quarantine, then the probe's outcome. */
    char reason[REASON_MAX];
    const char *cause = k->health_reason;
    const char *sep = strstr(cause, "; probe ");
    snprintf(reason, sizeof reason, "%.*s; probe %u failed: %s",
             (int)(sep ? (size_t)(sep - cause) : strlen(cause)), cause, cw->probe_seq, what);
    drv_balancer_worker_set_health(c->bal, w, DRV_HEALTH_QUARANTINED, reason, now);
    if (drv_store_worker_health(c->store, k->name, DRV_HEALTH_QUARANTINED, reason, now, &err) < 0 ||
        drv_store_event_append(c->store, now, "probe_failed", 0, k->name, what, &err) < 0)
        drv_coord_fatal(c, &err);
    drv_coord_log(c, "worker %s stays quarantined: probe %u failed: %s", k->name, cw->probe_seq,
                  what);
}

void drv_health_tick(drv_coordinator *c, double now)
{
    if (c->opt.probe_interval_s <= 0)
        return;
    uint32_t n = drv_balancer_worker_refs(c->bal);
    for (drv_wref w = 0; w < n && w < c->cap_workers; w++) {
        drv_cworker *cw = &c->workers[w];
        if (!cw->known || cw->lost || !cw->session || cw->welcome)
            continue;
        if (drv_balancer_worker(c->bal, w)->health != DRV_HEALTH_QUARANTINED) {
            cw->probe_pending = false;
            cw->probe_next = 0;
            continue;
        }
        if (cw->probe_pending) {
            if (now - cw->probe_sent_at > PROBE_TIMEOUT_S + c->opt.heartbeat_timeout_s)
                probe_outcome(c, w, false, "no answer", now);
            continue;
        }
        if (cw->probe_next == 0) /* just quarantined: the first probe waits an interval */
            cw->probe_next = now + c->opt.probe_interval_s;
        else if (now >= cw->probe_next)
            send_probe(c, w, now);
    }
}

void drv_health_probe_finished(drv_coordinator *c, drv_wsession *s, const drv_msg_finished *m)
{
    drv_cworker *cw = &c->workers[s->worker];
    if (!cw->probe_pending || m->ref.attempt != cw->probe_seq)
        return; /* an old probe's result (redelivered after a reconnect): it counted already */
    char what[256];
    bool passed = false;
    if (m->infra_failure)
        snprintf(what, sizeof what, "could not run: %.200s", m->error ? m->error : "(no reason)");
    else if (m->timed_out)
        snprintf(what, sizeof what, "timed out after %.0f s", PROBE_TIMEOUT_S);
    else if (m->has_signal)
        snprintf(what, sizeof what, "killed by signal %d", m->signal);
    else if (m->has_exit_code && m->exit_code != 0)
        snprintf(what, sizeof what, "exit status %d", m->exit_code);
    else {
        passed = true;
        snprintf(what, sizeof what, "%s exited 0 in %.3f s", c->opt.probe_command, m->duration_s);
    }
    probe_outcome(c, s->worker, passed, what, drv_coord_now());
}

void drv_health_changed(drv_coordinator *c, drv_wref w, drv_health before, double now)
{
    const drv_worker *k = drv_balancer_worker(c->bal, w);
    if (k->health != DRV_HEALTH_QUARANTINED || before == DRV_HEALTH_QUARANTINED)
        return;
    drv_error err;
    if (drv_store_worker_health(c->store, k->name, k->health, k->health_reason, now, &err) < 0 ||
        drv_store_event_append(c->store, now, "worker_quarantined", 0, k->name, k->health_reason,
                               &err) < 0)
        drv_coord_fatal(c, &err);
    c->workers[w].probe_pending = false;
    c->workers[w].probe_next = c->opt.probe_interval_s > 0 ? now + c->opt.probe_interval_s : 0;
    drv_coord_log(c, "worker %s quarantined: %s", k->name, k->health_reason);
}
