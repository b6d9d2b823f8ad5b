/* dispatch.c - the balancer's decisions made durable and sent: each placement begins an
 * attempt in the store and joins its worker's next assign; moves, requeues and final
 * states abandon the old attempt (cancelling it on a worker that is still there) and
 * write the test's new state. Frames leave only after the turn's commit
 * (drv_dispatch_flush). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/coord.h"

#define PLACE_BATCH 256

static const char *worker_name(drv_coordinator *c, drv_wref w)
{
    return w == DRV_REF_NONE ? NULL : drv_balancer_worker(c->bal, w)->name;
}

/* Appends "KEY=value" to the test's environment unless the test sets KEY itself. */
static void env_default(drv_msg_test *m, const char *key, const char *value)
{
    size_t n = drv_strv_len(m->env), klen = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (strncmp(m->env[i], key, klen) == 0 && m->env[i][klen] == '=')
            return;
    m->env = drv_xrealloc(m->env, (n + 2) * sizeof *m->env);
    size_t len = klen + 1 + strlen(value) + 1;
    m->env[n] = drv_xmalloc(len); /* owned by the message, freed with it */
    snprintf(m->env[n], len, "%s=%s", key, value);
    m->env[n + 1] = NULL;
}

void drv_dispatch_queue_assign(drv_coordinator *c, drv_wref w, drv_tref t)
{
    drv_cworker *cw = &c->workers[w];
    if (cw->n_batch == cw->cap_batch) {
        cw->cap_batch = cw->cap_batch ? cw->cap_batch * 2 : 16;
        cw->batch = drv_xrealloc(cw->batch, cw->cap_batch * sizeof *cw->batch);
    }
    /* The attempt's assign in effect is this one, which has not left: a move before it
     * leaves takes it out of the batch, never asks for a release the assign would follow
     * (an assign sent again after a reconnect; a copy in a task slot used before). */
    c->tasks[t].sent = false;
    const drv_task *task = &c->tasks[t].task;
    drv_msg_test *m = &cw->batch[cw->n_batch++];
    drv_msg_test_from_task(m, task, task->attempts, 0);
    /* The analyzer's batch size for this worker's GPUs (or the test's own): the test
     * reads DROVER_BATCH_SIZE (docs/protocol.md). */
    uint32_t batch = drv_analyzer_test_batch_size(
        task->batch_size, task->family, drv_balancer_worker(c->bal, w)->caps.gpu_memory_mb);
    if (batch) {
        char text[16];
        snprintf(text, sizeof text, "%u", batch);
        env_default(m, "DROVER_BATCH_SIZE", text);
    }
    drv_coord_mark_send(c, w);
}

void drv_dispatch_queue_cancel(drv_coordinator *c, drv_wref w, uint64_t task_id, uint32_t attempt)
{
    drv_cworker *cw = &c->workers[w];
    if (!cw->session)
        return; /* gone: it learns nothing, and its result will not count */
    if (cw->n_cancels == cw->cap_cancels) {
        cw->cap_cancels = cw->cap_cancels ? cw->cap_cancels * 2 : 8;
        cw->cancels = drv_xrealloc(cw->cancels, cw->cap_cancels * sizeof *cw->cancels);
    }
    cw->cancels[cw->n_cancels++] = (drv_attempt_ref){.task_id = task_id, .attempt = attempt};
    drv_coord_mark_send(c, w);
}

void drv_dispatch_live_output(drv_ctask *ct, const char *data, size_t len)
{
    if (!data) {
        free(ct->live_out);
        ct->live_out = NULL;
        ct->live_len = 0;
        return;
    }
    if (len >= DRV_LIVE_OUTPUT_MAX) {
        data += len - DRV_LIVE_OUTPUT_MAX;
        len = DRV_LIVE_OUTPUT_MAX;
    }
    if (!ct->live_out)
        ct->live_out = drv_xmalloc(DRV_LIVE_OUTPUT_MAX + 1);
    size_t keep = ct->live_len;
    if (keep + len > DRV_LIVE_OUTPUT_MAX) { /* drop the oldest bytes */
        size_t drop = keep + len - DRV_LIVE_OUTPUT_MAX;
        memmove(ct->live_out, ct->live_out + drop, keep - drop);
        keep -= drop;
    }
    memcpy(ct->live_out + keep, data, len);
    ct->live_len = (uint32_t)(keep + len);
    ct->live_out[ct->live_len] = '\0';
}

static void move_unlist(drv_coordinator *c, drv_ctask *ct, drv_tref t);

void drv_dispatch_forget(drv_coordinator *c, drv_tref t)
{
    drv_ctask *ct = &c->tasks[t];
    drv_dispatch_live_output(ct, NULL, 0);
    drv_members_live_free(ct); /* py3 */
    if (ct->move_pending)
        move_unlist(c, ct, t);
    if (!ct->live)
        return;
    drv_idmap_del(&c->by_id, ct->task.id);
    drv_task_clear(&ct->task);
    ct->live = false;
    ct->paired = false;
    ct->attempts_used = 0;
    ct->unconfirmed = false;
    ct->attempt_open = false;
}

/* Begins the next attempt of t on worker w. */
static void begin_attempt(drv_coordinator *c, drv_tref t, drv_wref w, double now)
{
    drv_ctask *ct = &c->tasks[t];
    ct->task.attempts = drv_ctask_attempts(ct) + 1; /* after a speculative copy's too */
    ct->sent = false;
    ct->unconfirmed = false;
    ct->attempt_open = true;
    drv_dispatch_live_output(ct, NULL, 0); /* the last attempt's output is in the store */
    drv_error err;
    /* The attempt row alone: the test's row stays as it is until the test is requeued or
     * final, and the store shows the open attempt's state and worker (store_sqlite.h). */
    if (drv_store_attempt_begin(c->store, ct->task.id, ct->task.attempts, worker_name(c, w), now,
                                &err) < 0)
        drv_coord_fatal(c, &err);
    drv_dispatch_queue_assign(c, w, t);
}

/* Gives up t's current attempt on worker from (cancelling it there if it is connected),
 * keeping why on the attempt when `why` is not NULL. */
static void abandon_attempt_why(drv_coordinator *c, drv_ctask *ct, drv_wref from, const char *why)
{
    if (ct->task.attempts == 0 || !ct->attempt_open)
        return; /* none, or it has its result */
    drv_error err;
    if (drv_store_attempt_abandon_why(c->store, ct->task.id, ct->task.attempts, why, &err) < 0)
        drv_coord_fatal(c, &err);
    ct->attempt_open = false;
    if (from != DRV_REF_NONE)
        drv_dispatch_queue_cancel(c, from, ct->task.id, ct->task.attempts);
}

/* The reason stored for a requeue or a final state: the balancer's reason name, and for
 * a re-run or an end that depends on a budget, which budget and how much of it is used
 * ("worker_lost (max_retries: 1 of 2 used)", "retries_exhausted (max_retries: 2 of 2
 * used; its worker was lost or its runner failed each time)", "exit_failure (reruns: 1 of
 * 1 used)"). Counts a charged requeue into ct's task. */
static void budget_words(drv_ctask *ct, const drv_decision *d, char *buf, size_t len)
{
    drv_task *t = &ct->task;
    uint32_t reruns = drv_task_reruns(t);
    const char *name = drv_reason_name(d->reason);
    if (d->kind == DRV_D_REQUEUED && d->charged == DRV_CHARGE_RETRY) {
        t->retries_used++;
        snprintf(buf, len, "%s (max_retries: %u of %u used)", name, t->retries_used,
                 t->max_retries);
    } else if (d->kind == DRV_D_REQUEUED && d->charged == DRV_CHARGE_RERUN) {
        t->reruns_used++;
        snprintf(buf, len, "%s (reruns: %u of %u used)", name, t->reruns_used, reruns);
    } else if (d->kind == DRV_D_FINAL && d->reason == DRV_R_RETRIES_EXHAUSTED) {
        snprintf(buf, len,
                 "%s (max_retries: %u of %u used; the last attempt's worker was lost or its"
                 " runner failed)",
                 name, t->retries_used, t->max_retries);
    } else if (d->kind == DRV_D_FINAL && reruns > 0 &&
               (d->reason == DRV_R_EXIT_FAILURE || d->reason == DRV_R_TIMED_OUT)) {
        snprintf(buf, len, "%s (reruns: %u of %u used)", name, t->reruns_used, reruns);
    } else {
        snprintf(buf, len, "%s", name);
    }
}

static void abandon_attempt(drv_coordinator *c, drv_ctask *ct, drv_wref from)
{
    abandon_attempt_why(c, ct, from, NULL);
}

/* ---- the two-phase move (exec2, issue 11; docs/balancer.md) ----
 * A test whose assign has not left (ct->sent false) moves at once: it is taken out of
 * its holder's pending assign. One whose assign left may be starting there: its holder
 * is asked to release it and the test waits (move_pending) with the balancer holding it
 * on the thief, its slot reserved. released{dropped: true} completes the move (the old
 * attempt is abandoned, the next begins on the thief); a started, a finished or
 * released{dropped: false} from the holder, its connection closing, the loss or drain of
 * either worker drop it (drv_balancer_unmove: the test is the holder's again). */

static void move_unlist(drv_coordinator *c, drv_ctask *ct, drv_tref t)
{
    ct->move_pending = false;
    for (size_t i = 0; i < c->n_moves; i++)
        if (c->moves[i] == t) {
            c->moves[i] = c->moves[--c->n_moves];
            break;
        }
}

/* Takes t's current attempt out of worker w's assign that has not left yet. */
static void unqueue_assign(drv_coordinator *c, drv_wref w, const drv_ctask *ct)
{
    if (w == DRV_REF_NONE)
        return;
    drv_cworker *cw = &c->workers[w];
    for (size_t i = 0; i < cw->n_batch; i++)
        if (cw->batch[i].task_id == ct->task.id && cw->batch[i].attempt == ct->task.attempts) {
            drv_msg_test_clear(&cw->batch[i]);
            memmove(&cw->batch[i], &cw->batch[i + 1], (cw->n_batch - i - 1) * sizeof *cw->batch);
            cw->n_batch--;
            return;
        }
}

static void begin_attempt(drv_coordinator *c, drv_tref t, drv_wref w, double now);
static void abandon_attempt_why(drv_coordinator *c, drv_ctask *ct, drv_wref from, const char *why);

/* The move is done: an event with its reason (stolen, rebalanced), the attempt on the
 * old worker abandoned (cancelled there when from is not NONE) and the next one begun on
 * the new worker. */
static void move_done(drv_coordinator *c, drv_tref t, drv_wref from, drv_wref to, drv_reason reason,
                      bool cancel, double now)
{
    drv_ctask *ct = &c->tasks[t];
    char msg[256];
    drv_error err;
    const char *fn = worker_name(c, from), *tn = worker_name(c, to);
    snprintf(msg, sizeof msg, "attempt %u moved from %s to %s (%s)", ct->task.attempts,
             fn ? fn : "-", tn ? tn : "-", drv_reason_name(reason));
    if (drv_store_event_append(c->store, now, "test_moved", ct->task.id, worker_name(c, to), msg,
                               &err) < 0)
        drv_coord_fatal(c, &err);
    abandon_attempt_why(c, ct, cancel ? from : DRV_REF_NONE, drv_reason_name(reason));
    drv_sampler_moved(c, ct, reason, now);
    begin_attempt(c, t, to, now);
    c->moves_done++;
}

static void move(drv_coordinator *c, const drv_decision *d, drv_ctask *ct, double now)
{
    if (ct->move_pending)
        return; /* moved on again while the holder's answer is awaited: that thief waits */
    drv_wref from = d->from_worker;
    if (!ct->sent || !ct->attempt_open || from == DRV_REF_NONE) {
        unqueue_assign(c, from, ct);
        move_done(c, d->task, from, d->worker, d->reason, true, now);
        return;
    }
    drv_wsession *s = c->workers[from].session;
    /* Unconfirmed: its holder said hello and has not yet been reconciled (recovery.c).
     * When that is another process (a worker restarted under its name), "not here"
     * says nothing of the process that was sent the assign, which may have started it:
     * only drv_recovery_settle() may decide (a loss, charged). So no release is asked
     * until then. (chaos_short: attempt 1 ran, the new process answered dropped, the
     * attempt was recorded as never started and run again uncharged.) */
    if (!s || ct->unconfirmed) { /* it cannot be asked: the test stays, as if never moved */
        drv_balancer_unmove(c->bal, d->task, from, now);
        c->moves_dropped++;
        return;
    }
    ct->move_pending = true;
    ct->move_from = from;
    ct->move_reason = (uint8_t)d->reason;
    if (c->n_moves == c->cap_moves) {
        c->cap_moves = c->cap_moves ? c->cap_moves * 2 : 16;
        c->moves = drv_xrealloc(c->moves, c->cap_moves * sizeof *c->moves);
    }
    c->moves[c->n_moves++] = d->task;
    drv_msg m; /* nothing to commit first: the assign it is about has left */
    drv_msg_init(&m, DRV_MSG_RELEASE);
    m.release.ref = (drv_attempt_ref){.task_id = ct->task.id, .attempt = ct->task.attempts};
    drv_dispatch_send(s, &m);
}

/* The pending move of t is dropped (why): the test is its old holder's again. */
static void move_drop(drv_coordinator *c, drv_tref t, const char *why, double now)
{
    drv_ctask *ct = &c->tasks[t];
    drv_wref from = ct->move_from;
    drv_coord_log(c, "test %llu stays on %s, not moved to %s: %s", (unsigned long long)ct->task.id,
                  worker_name(c, from), worker_name(c, drv_balancer_task_worker(c->bal, t)), why);
    move_unlist(c, ct, t);
    drv_balancer_unmove(c->bal, t, from, now);
    c->moves_dropped++;
    c->place_needed = true; /* the thief's reserved slot is free again */
}

/* The pending move of the test of ref away from w, or NULL. */
static drv_ctask *pending_move(drv_coordinator *c, drv_wref w, const drv_attempt_ref *ref,
                               drv_tref *t)
{
    if (c->n_moves == 0)
        return NULL; /* the usual case: one compare per started and finished */
    drv_ctask *ct = drv_coord_task_by_id(c, ref->task_id, t);
    if (!ct || !ct->move_pending || ct->move_from != w || ct->task.attempts != ref->attempt)
        return NULL;
    return ct;
}

void drv_dispatch_released(drv_coordinator *c, drv_wref w, const drv_msg_release *m, double now)
{
    drv_tref t;
    drv_ctask *ct = pending_move(c, w, &m->ref, &t);
    if (!ct)
        return; /* no move waits on it (dropped already, or a resent answer) */
    if (!m->dropped) {
        move_drop(c, t, "it had started there", now);
        return;
    }
    move_unlist(c, ct, t);
    move_done(c, t, w, drv_balancer_task_worker(c->bal, t), (drv_reason)ct->move_reason, false,
              now);
}

void drv_dispatch_move_kept(drv_coordinator *c, drv_wref w, const drv_attempt_ref *ref, double now)
{
    drv_tref t;
    if (pending_move(c, w, ref, &t))
        move_drop(c, t, "it had started there", now);
}

void drv_dispatch_moves_drop_for(drv_coordinator *c, drv_wref w, const char *why, double now)
{
    for (size_t i = c->n_moves; i-- > 0;) {
        if (i >= c->n_moves)
            continue;
        drv_tref t = c->moves[i];
        if (c->tasks[t].move_from == w || drv_balancer_task_worker(c->bal, t) == w)
            move_drop(c, t, why, now);
    }
}

void drv_dispatch_decision(drv_coordinator *c, const drv_decision *d, const drv_store_result *res)
{
    if (d->task >= c->cap_tasks || !c->tasks[d->task].live)
        return;
    drv_ctask *ct = &c->tasks[d->task];
    drv_decision moving;
    if (ct->move_pending && d->kind != DRV_D_MOVED) {
        /* Requeued or final while its holder was asked to release it: the open attempt
         * is the holder's, so that is where a cancel goes. */
        moving = *d;
        if (moving.from_worker != DRV_REF_NONE)
            moving.from_worker = ct->move_from;
        move_unlist(c, ct, d->task);
        d = &moving;
    }
    if (ct->paired && drv_speculate_decision(c, d))
        return; /* one copy of a pair dropped; the other goes on */
    double now = drv_coord_now();
    drv_sampler_decision(c, d, ct, now);
    drv_error err;
    switch (d->kind) {
    case DRV_D_PLACED:
        begin_attempt(c, d->task, d->worker, now);
        return;
    case DRV_D_MOVED:
        move(c, d, ct, now);
        return;
    case DRV_D_REQUEUED: {
        abandon_attempt(c, ct, d->from_worker);
        char why[160];
        budget_words(ct, d, why, sizeof why);
        drv_store_task_update u = {.state = DRV_TASK_QUEUED,
                                   .attempts = drv_ctask_attempts(ct),
                                   .worker = worker_name(c, d->from_worker),
                                   .reason = why};
        if (drv_store_task_update_state(c->store, ct->task.id, &u, &err) < 0)
            drv_coord_fatal(c, &err);
        return;
    }
    case DRV_D_FINAL:
        break;
    }
    char reason[512];
    budget_words(ct, d, reason, sizeof reason);
    /* Whose fault: a test that could not start because of itself says why. */
    size_t pre = strlen(DRV_SPAWN_FAILED_PREFIX);
    if (res && res->output_tail && strncmp(res->output_tail, DRV_SPAWN_FAILED_PREFIX, pre) == 0) {
        size_t off = strlen(reason);
        snprintf(reason + off, sizeof reason - off, ": could not start: %.300s",
                 res->output_tail + pre);
    }
    if (d->reason == DRV_R_NO_ELIGIBLE_WORKER)
        drv_unmet_sentence((drv_unmet)d->unmet, &ct->task.req, d->unmet_tag, c->tags, reason,
                           sizeof reason);
    if (d->reason == DRV_R_AFTER_NOT_PASSED)
        drv_after_reason(&ct->task, reason, sizeof reason);
    if (d->from_worker != DRV_REF_NONE && !res)
        abandon_attempt(c, ct, d->from_worker); /* cancelled, or lost with no retry left */
    drv_store_task_update u = {.state = d->state,
                               .attempts = drv_ctask_attempts(ct),
                               .worker = worker_name(c, d->from_worker),
                               .reason = reason,
                               .finished_at = now};
    if (res) {
        u.has_exit = true;
        u.exit_code = res->exit_code;
        u.signal = res->signal;
        u.duration_s = res->duration_s;
    }
    if (drv_store_task_update_state(c->store, ct->task.id, &u, &err) < 0)
        drv_coord_fatal(c, &err);
    if (d->state == DRV_TASK_UNSCHEDULABLE)
        drv_coord_log(c, "test %llu (%s) is unschedulable: %s", (unsigned long long)ct->task.id,
                      ct->task.name, reason);
    drv_dispatch_forget(c, d->task);
}

void drv_dispatch_place(drv_coordinator *c, double now)
{
    drv_decision d[PLACE_BATCH];
    size_t n;
    do {
        n = drv_balancer_place(c->bal, now, d, PLACE_BATCH);
        for (size_t i = 0; i < n; i++)
            drv_dispatch_decision(c, &d[i], NULL);
    } while (n == PLACE_BATCH);
    /* An idle worker with an empty queue takes what others hold unstarted, at once. */
    n = drv_balancer_steal_idle(c->bal, now, d, PLACE_BATCH);
    for (size_t i = 0; i < n; i++)
        drv_dispatch_decision(c, &d[i], NULL);
}

void drv_dispatch_send(drv_wsession *s, const drv_msg *m)
{
    size_t len = 0;
    drv_error err;
    char *text = drv_msg_encode(m, &len, &err);
    if (text)
        drv_server_queue(s, text, len);
    free(text);
}

static void flush_worker(drv_coordinator *c, drv_wref w)
{
    drv_cworker *cw = &c->workers[w];
    cw->dirty = false;
    drv_wsession *s = cw->session;
    drv_msg m;
    if (s && cw->welcome) {
        drv_msg_init(&m, DRV_MSG_WELCOME);
        m.welcome.worker_id = (uint64_t)w + 1;
        m.welcome.heartbeat_interval_s = c->opt.heartbeat_interval_s;
        m.welcome.server_time = drv_coord_now();
        m.welcome.epoch = c->epoch;
        drv_dispatch_send(s, &m);
    }
    cw->welcome = false;
    for (size_t i = 0; s && i < cw->n_cancels; i++) {
        drv_msg_init(&m, DRV_MSG_CANCEL);
        m.cancel.ref = cw->cancels[i];
        drv_dispatch_send(s, &m);
    }
    cw->n_cancels = 0;
    for (size_t i = 0; s && i < cw->n_batch; i += DRV_ASSIGN_MAX_TESTS) {
        size_t k = cw->n_batch - i;
        if (k > DRV_ASSIGN_MAX_TESTS)
            k = DRV_ASSIGN_MAX_TESTS;
        drv_msg_init(&m, DRV_MSG_ASSIGN);
        m.assign.tests = cw->batch + i;
        m.assign.count = k;
        /* Fencing: a worker takes these only on this connection and within the time after
         * which this coordinator would take it for lost (docs/protocol.md). */
        m.assign.epoch = c->epoch;
        m.assign.sent_at = drv_coord_now();
        m.assign.lease_s = c->opt.heartbeat_timeout_s;
        drv_dispatch_send(s, &m);
    }
    /* Without a connection the tests stay assigned: a reconnect re-sends them, a loss
     * requeues them. */
    for (size_t i = 0; i < cw->n_batch; i++) {
        drv_tref t;
        drv_ctask *ct = s ? drv_coord_task_by_id(c, cw->batch[i].task_id, &t) : NULL;
        if (ct && ct->task.attempts == cw->batch[i].attempt)
            ct->sent = true;
        drv_msg_test_clear(&cw->batch[i]);
    }
    cw->n_batch = 0;
}

void drv_dispatch_flush(drv_coordinator *c)
{
    for (size_t i = 0; i < c->n_send; i++)
        flush_worker(c, c->send_list[i]);
    c->n_send = 0;
}
