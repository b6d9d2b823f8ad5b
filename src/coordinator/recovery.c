/* recovery.c - taking tests back: at start from the store, after a worker reconnects
 * (what it still holds), and when a worker is lost. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/coord.h"

#define LOST_BATCH 256

/* Makes t a live test of the coordinator under balancer reference ref (t is moved). */
static void hold(drv_coordinator *c, int64_t ref, drv_task *t, int64_t run_id, bool open)
{
    drv_coord_reserve_task(c, (drv_tref)ref);
    drv_ctask *ct = &c->tasks[ref];
    ct->task = *t;
    drv_task_init(t);
    ct->run_id = run_id;
    ct->live = true;
    ct->unconfirmed = false;
    ct->attempt_open = open;
    ct->sent = open; /* an adopted attempt's assign went out before the restart */
    drv_idmap_put(&c->by_id, ct->task.id, (uint32_t)ref);
    drv_members_recovered(c, ct); /* py3: a batch's members stored before the restart */
}

/* Queues t again (a new attempt will be begun when it is placed) with reason why, after
 * the live tests `after` and after_not_passed final ones that did not pass. */
static int requeue_after(drv_coordinator *c, drv_task *t, int64_t run_id, const drv_tref *after,
                         size_t n_after, uint32_t after_not_passed, const char *why, double now,
                         drv_error *err)
{
    drv_store_task_update u = {.state = DRV_TASK_QUEUED, .attempts = t->attempts, .reason = why};
    if (drv_store_task_update_state(c->store, t->id, &u, err) < 0)
        return -1;
    t->state = DRV_TASK_QUEUED;
    drv_error e;
    int64_t ref = drv_balancer_submit_after(c->bal, t, after, n_after, after_not_passed, now, &e);
    if (ref < 0) {
        drv_store_task_update f = {
            .state = DRV_TASK_FAILED, .attempts = t->attempts, .reason = e.msg, .finished_at = now};
        return drv_store_task_update_state(c->store, t->id, &f, err);
    }
    hold(c, ref, t, run_id, false);
    drv_sampler_queued(c, &c->tasks[ref], now);
    return 0;
}

/* True when run_id's test called name is found at start and not in the balancer yet. */
static bool after_pending(void *ctx, int64_t run_id, const char *name)
{
    drv_coordinator *c = ctx;
    for (size_t i = 0; i < c->n_orphans; i++)
        if (!c->orphans[i].done && c->orphans[i].run_id == run_id &&
            strcmp(c->orphans[i].task.name, name) == 0)
            return true;
    for (size_t i = 0; i < c->n_after_waiting; i++)
        if (!c->after_waiting[i].done && c->after_waiting[i].run_id == run_id &&
            strcmp(c->after_waiting[i].task.name, name) == 0)
            return true;
    return false;
}

/* Queues t again; one that runs after other tests waits in c->after_waiting until
 * after_retry() finds what it runs after live or final (the caller calls it). */
static int requeue(drv_coordinator *c, drv_task *t, int64_t run_id, bool was_running, double now,
                   drv_error *err)
{
    /* An attempt that was running when it was given up (its worker did not come back)
     * uses one of max_retries, as a worker lost while the coordinator runs does
     * (lifecycle.c); with none left the test ends failed. */
    if (was_running && ++t->retries_used > t->max_retries) {
        char why[256];
        snprintf(why, sizeof why,
                 "%s (max_retries: %u of %u used; its worker was lost with a coordinator"
                 " restart)",
                 drv_reason_name(DRV_R_RETRIES_EXHAUSTED), t->max_retries, t->max_retries);
        drv_store_task_update f = {
            .state = DRV_TASK_FAILED, .attempts = t->attempts, .reason = why, .finished_at = now};
        return drv_store_task_update_state(c->store, t->id, &f, err);
    }
    char why[160];
    if (was_running)
        snprintf(why, sizeof why,
                 "recovered after a coordinator restart; its worker did not come back"
                 " (max_retries: %u of %u used)",
                 t->retries_used, t->max_retries);
    else
        snprintf(why, sizeof why, "recovered after a coordinator restart");
    if (!t->after)
        return requeue_after(c, t, run_id, NULL, 0, 0, why, now, err);
    c->after_waiting =
        drv_xrealloc(c->after_waiting, (c->n_after_waiting + 1) * sizeof *c->after_waiting);
    drv_orphan *w = &c->after_waiting[c->n_after_waiting++];
    memset(w, 0, sizeof *w);
    w->task = *t; /* moved */
    drv_task_init(t);
    w->run_id = run_id;
    return 0;
}

/* Queues the tests of c->after_waiting whose after tests are all in the balancer or
 * final now, until none is left or none can go. */
static int after_retry(drv_coordinator *c, double now, drv_error *err)
{
    bool progress = true;
    while (progress) {
        progress = false;
        size_t left = 0;
        for (size_t i = 0; i < c->n_after_waiting; i++) {
            drv_orphan *w = &c->after_waiting[i];
            if (w->done)
                continue;
            drv_tref *after;
            size_t n_after;
            uint32_t not_passed;
            w->done = true; /* not pending for itself */
            int rc = drv_after_resolve(c, &w->task, w->run_id, after_pending, c, &after, &n_after,
                                       &not_passed, err);
            if (rc < 0)
                return -1;
            if (rc == 1) {
                w->done = false;
                left++;
                continue;
            }
            rc = requeue_after(c, &w->task, w->run_id, after, n_after, not_passed,
                               "recovered after a coordinator restart", now, err);
            free(after);
            drv_task_clear(&w->task);
            if (rc < 0)
                return -1;
            progress = true;
        }
        if (left == 0) {
            free(c->after_waiting);
            c->after_waiting = NULL;
            c->n_after_waiting = 0;
            return 0;
        }
    }
    return 0;
}

/* Gives up t's open attempt, found at a restart, whose worker did not come back. It was
 * sent (its assign left only after its commit), so it may have started: it is recorded
 * as started (if it was not) so that the store charges it a retry, like requeue() does
 * now. */
static int give_up(drv_coordinator *c, const drv_task *t, double now, drv_error *err)
{
    if (drv_store_attempt_started(c->store, t->id, t->attempts, now, err) < 0 ||
        drv_store_attempt_abandon(c->store, t->id, t->attempts, err) < 0)
        return -1;
    return 0;
}

typedef struct recovered {
    drv_task *tasks;
    int64_t *runs;
    char **workers;
    size_t n, cap;
} recovered;

static int collect(void *ctx, drv_store_recovered *r, drv_error *err)
{
    (void)err;
    recovered *v = ctx;
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 256;
        v->tasks = drv_xrealloc(v->tasks, v->cap * sizeof *v->tasks);
        v->runs = drv_xrealloc(v->runs, v->cap * sizeof *v->runs);
        v->workers = drv_xrealloc(v->workers, v->cap * sizeof *v->workers);
    }
    v->tasks[v->n] = *r->task;
    drv_task_init(r->task); /* taken */
    v->runs[v->n] = r->run_id;
    v->workers[v->n] = r->worker ? drv_xstrdup(r->worker) : NULL;
    v->n++;
    return 0;
}

int drv_recovery_load(drv_coordinator *c, double now, drv_error *err)
{
    recovered v = {0};
    int rc = drv_store_recover(c->store, c->tags, collect, &v, err);
    size_t queued = 0, waiting = 0;
    for (size_t i = 0; i < v.n; i++) {
        drv_task *t = &v.tasks[i];
        bool held = t->state != DRV_TASK_QUEUED && t->attempts > 0 && v.workers[i];
        if (rc == 0 && held) {
            if (c->n_orphans == 0)
                c->orphans = drv_xcalloc(v.n, sizeof *c->orphans);
            drv_orphan *o = &c->orphans[c->n_orphans++];
            o->task = *t;
            drv_task_init(t);
            o->run_id = v.runs[i];
            o->worker = v.workers[i];
            v.workers[i] = NULL;
            waiting++;
        } else if (rc == 0) {
            bool open = t->state != DRV_TASK_QUEUED && t->attempts > 0;
            if (open && give_up(c, t, now, err) < 0)
                rc = -1;
            if (rc == 0 && requeue(c, t, v.runs[i], open, now, err) < 0)
                rc = -1;
            queued++;
        }
        drv_task_clear(t);
        free(v.workers[i]);
    }
    free(v.tasks);
    free(v.runs);
    free(v.workers);
    c->orphans_left = waiting;
    c->recovery_deadline = now + c->opt.recovery_grace_s;
    if (rc == 0 && c->n_after_waiting && after_retry(c, now, err) < 0)
        rc = -1;
    if (rc == 0 && (queued || waiting))
        drv_coord_log(c,
                      "recovered %zu queued tests and %zu that were running (waiting %.0f s"
                      " for their workers)",
                      queued, waiting, c->opt.recovery_grace_s);
    return rc;
}

void drv_recovery_hello(drv_coordinator *c, drv_wref w, const drv_attempt_ref *running,
                        size_t n_running, double now)
{
    drv_cworker *cw = &c->workers[w];
    const char *name = drv_balancer_worker(c->bal, w)->name;
    drv_error err;
    /* Tests found at start that this worker held: adopt them where they are. */
    for (size_t i = 0; i < c->n_orphans && c->orphans_left > 0; i++) {
        drv_orphan *o = &c->orphans[i];
        if (o->done || strcmp(o->worker, name) != 0)
            continue;
        o->done = true;
        c->orphans_left--;
        int64_t ref =
            drv_balancer_adopt(c->bal, &o->task, w, o->task.state == DRV_TASK_RUNNING, now, &err);
        if (ref < 0) {
            if (drv_store_attempt_abandon(c->store, o->task.id, o->task.attempts, &err) < 0 ||
                requeue(c, &o->task, o->run_id, false, now, &err) < 0)
                drv_coord_fatal(c, &err);
            continue;
        }
        hold(c, ref, &o->task, o->run_id, true);
    }
    if (c->n_after_waiting && after_retry(c, now, &err) < 0)
        drv_coord_fatal(c, &err);
    /* Everything the balancer has on this worker is unconfirmed until listed. */
    bool any = false;
    for (drv_tref t = drv_balancer_held_first(c->bal, w); t != DRV_REF_NONE;
         t = drv_balancer_held_next(c->bal, t)) {
        if (t < c->cap_tasks && c->tasks[t].live) {
            c->tasks[t].unconfirmed = true;
            any = true;
        }
    }
    for (size_t i = 0; i < n_running; i++) {
        drv_tref t;
        drv_ctask *ct = drv_speculate_task(c, running[i].task_id, running[i].attempt, &t);
        if (ct && ct->task.attempts == running[i].attempt &&
            drv_balancer_task_worker(c->bal, t) == w) {
            ct->unconfirmed = false;
        } else {
            /* An attempt that was given up: stop it. */
            drv_dispatch_queue_cancel(c, w, running[i].task_id, running[i].attempt);
        }
    }
    cw->reconciling = any;
}

void drv_recovery_settle(drv_coordinator *c, drv_wref w, double now)
{
    drv_cworker *cw = &c->workers[w];
    cw->reconciling = false;
    /* The walk changes what the worker holds (a lost test is finished), so collect first. */
    size_t n = 0, cap = 0;
    drv_tref *lost = NULL;
    for (drv_tref t = drv_balancer_held_first(c->bal, w); t != DRV_REF_NONE;
         t = drv_balancer_held_next(c->bal, t)) {
        if (t >= c->cap_tasks || !c->tasks[t].live || !c->tasks[t].unconfirmed)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            lost = drv_xrealloc(lost, cap * sizeof *lost); /* freed below */
        }
        lost[n++] = t;
    }
    for (size_t i = 0; i < n; i++) {
        drv_tref t = lost[i];
        drv_ctask *ct = &c->tasks[t];
        ct->unconfirmed = false;
        drv_error err;
        bool maybe = drv_balancer_task_state(c->bal, (drv_tref)t) == DRV_TASK_ASSIGNED;
        if (maybe) {
            if (!cw->restarted || !ct->sent || !ct->attempt_open) {
                /* The same process: its assign never reached it (sent while it was away,
                 * or dropped unstarted at the loss): send again. */
                drv_dispatch_queue_assign(c, w, (drv_tref)t);
                continue;
            }
            /* Another process: the one that was sent it may have started it before it
             * died. Charged like a loss (a new attempt), never sent again (exec3). */
            drv_balancer_started(c->bal, (drv_tref)t, now);
            if (drv_store_attempt_started(c->store, ct->task.id, ct->task.attempts, now, &err) < 0)
                drv_coord_fatal(c, &err);
        }
        /* It was running there (or may have been) and the worker no longer has it: lost
         * by the worker. */
        drv_store_result r = {.finished_at = now,
                              .exit_code = -1,
                              .infra_failure = true,
                              .output_tail = maybe ? "the worker restarted (a new process) and did"
                                                     " not list this test, which it may have"
                                                     " started"
                                                   : "the worker no longer had this test after"
                                                     " reconnecting"};
        if (drv_store_attempt_finish(c->store, ct->task.id, ct->task.attempts, &r, NULL, &err) < 0)
            drv_coord_fatal(c, &err);
        ct->attempt_open = false;
        drv_result res = {.exit_code = -1, .infra_failure = true, .restart = cw->restarted};
        drv_decision d;
        drv_health before = drv_balancer_worker(c->bal, w)->health;
        if (drv_balancer_finished(c->bal, (drv_tref)t, now, &res, &d) == 0)
            drv_dispatch_decision(c, &d, &r);
        drv_health_changed(c, w, before, now);
    }
    free(lost);
    c->place_needed = true;
}

void drv_recovery_expire(drv_coordinator *c, double now)
{
    if (now < c->recovery_deadline)
        return;
    drv_error err;
    for (size_t i = 0; i < c->n_orphans; i++) {
        drv_orphan *o = &c->orphans[i];
        if (o->done)
            continue;
        o->done = true;
        drv_coord_log(c, "test %llu: worker %s did not come back within %.0f s; placing it again",
                      (unsigned long long)o->task.id, o->worker, c->opt.recovery_grace_s);
        if (give_up(c, &o->task, now, &err) < 0 ||
            requeue(c, &o->task, o->run_id, true, now, &err) < 0)
            drv_coord_fatal(c, &err);
    }
    c->orphans_left = 0;
    if (c->n_after_waiting && after_retry(c, now, &err) < 0)
        drv_coord_fatal(c, &err);
    c->place_needed = true;
}

void drv_recovery_worker_lost(drv_coordinator *c, drv_wref w, double now, const char *why)
{
    drv_cworker *cw = &c->workers[w];
    const drv_worker *k = drv_balancer_worker(c->bal, w);
    const char *name = k->name;
    /* A quarantine or an operator's drain stays in the store for its return. */
    bool keep = drv_health_persists(k->health, k->health_reason);
    /* A worker that drained itself (SIGTERM) and went has left: not a failure. */
    bool left = k->health == DRV_HEALTH_DRAINING &&
                strncmp(k->health_reason, "the worker is draining", 22) == 0;
    if (left)
        snprintf(cw->gone_reason, sizeof cw->gone_reason, "left after draining (%s)",
                 k->health_reason);
    else
        snprintf(cw->gone_reason, sizeof cw->gone_reason, "lost: %s", why);
    cw->left = left;
    cw->gone_at = now;
    cw->lost = true;
    drv_error err;
    cw->parked = false;
    cw->reconciling = false;
    if (cw->session) {
        drv_wsession *s = cw->session;
        cw->session = NULL;
        drv_sampler_loss(c, w, now); /* silent while connected */
        s->has_worker = false;
        lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
    }
    /* A move away from it or to it that waits is dropped first: its test is this
     * worker's again, or stays with its holder (exec2). */
    drv_dispatch_moves_drop_for(c, w, "a worker at one end was lost", now);
    /* An assigned test whose assign went out may have started there before its
     * `started` could arrive: it is charged like a running one (it may run again
     * elsewhere, so it counts against max_retries; docs/operations.md). A worker that
     * drained itself said which it will not start (handed back). */
    for (drv_tref t = drv_balancer_held_first(c->bal, w); t != DRV_REF_NONE;
         t = drv_balancer_held_next(c->bal, t)) {
        drv_ctask *ct = t < c->cap_tasks && c->tasks[t].live ? &c->tasks[t] : NULL;
        if (left || !ct || !ct->sent || !ct->attempt_open ||
            drv_balancer_task_state(c->bal, t) != DRV_TASK_ASSIGNED)
            continue;
        drv_balancer_started(c->bal, t, now);
        if (drv_store_attempt_started(c->store, ct->task.id, ct->task.attempts, now, &err) < 0)
            drv_coord_fatal(c, &err);
    }
    size_t moved = 0, n;
    drv_decision d[LOST_BATCH];
    do {
        n = drv_balancer_worker_lost(c->bal, w, now, d, LOST_BATCH);
        for (size_t i = 0; i < n; i++)
            drv_dispatch_decision(c, &d[i], NULL);
        moved += n;
    } while (n == LOST_BATCH);
    if ((!keep && drv_store_worker_health(c->store, name, left ? DRV_HEALTH_LEFT : DRV_HEALTH_LOST,
                                          cw->gone_reason, now, &err) < 0) ||
        drv_store_event_append(c->store, now, left ? "worker_left" : "worker_lost", 0, name,
                               cw->gone_reason, &err) < 0)
        drv_coord_fatal(c, &err);
    drv_coord_log(c, "worker %s %s (%s); %zu of its tests go back to the queue", name,
                  left ? "left" : "lost", left ? cw->gone_reason : why, moved);
    c->place_needed = true;
}

void drv_recovery_forget_workers(drv_coordinator *c, double now)
{
    if (c->opt.forget_workers_s < 0)
        return;
    uint32_t n = drv_balancer_worker_refs(c->bal);
    for (drv_wref w = 0; w < n && w < c->cap_workers; w++) {
        drv_cworker *cw = &c->workers[w];
        if (!cw->known || !cw->lost || cw->session || now - cw->gone_at < c->opt.forget_workers_s)
            continue;
        char name[DRV_WORKER_NAME_MAX];
        snprintf(name, sizeof name, "%s", drv_balancer_worker(c->bal, w)->name);
        drv_error err;
        if (drv_balancer_worker_remove(c->bal, w, &err) < 0)
            continue; /* it still holds tests: they are settled first */
        cw->known = false;
        drv_sampler_forget_worker(c, w, name);
        drv_coord_log(c, "worker %s forgotten: %s %.0f s ago", name, cw->gone_reason,
                      now - cw->gone_at);
        c->place_needed = true; /* tests only it could run may be unschedulable now */
    }
}
