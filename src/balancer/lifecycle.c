/* lifecycle.c - what happens to a test after placement: started, finished, retried,
 * cancelled, or handed back when its worker is lost.
 *
 * Retry rules: two budgets. A test whose worker was lost while running it, or whose
 * runner failed (a crash: an infrastructure failure), goes back to the queue while it
 * has retries left (max_retries) and then fails with DRV_R_RETRIES_EXHAUSTED. A test that
 * was only assigned (not started) to a lost worker goes back without using one. A test
 * that exits non-zero, is killed or times out runs again while it has reruns left (the
 * test asks for them; 0 by default) and then ends failed or timed out. What is left of
 * both is set at submission from what the task says it used (retries_used, reruns_used:
 * the coordinator derives them from the stored attempts after a restart), so a restart
 * charges nothing twice and forgets nothing. A worker with quarantine_after
 * infrastructure failures in a row is quarantined; a restart of the worker (a new
 * process under its name) is not one (drv_balancer_worker_hello). */
#include <stdio.h>
#include <string.h>

#include "balancer/engine.h"

static bool live_held(const drv_balancer *b, drv_tref t)
{
    if (t >= b->n_tasks)
        return false;
    uint8_t s = b->tasks[t].state;
    return s == DRV_TASK_ASSIGNED || s == DRV_TASK_RUNNING;
}

int drv_balancer_started(drv_balancer *b, drv_tref t, double now)
{
    if (t >= b->n_tasks || b->tasks[t].state != DRV_TASK_ASSIGNED)
        return -1;
    drv_btask *r = &b->tasks[t];
    drv_bworker *w = &b->workers[r->worker];
    r->state = DRV_TASK_RUNNING;
    r->started_at = now;
    w->w.assigned--;
    w->w.running++;
    b->n_assigned--;
    b->n_running++;
    drv_fleet_victim_update(b, r->worker);
    return 0;
}

/* Requeues t when it has a retry left (using one when `costs`), otherwise makes it
 * final and failed. Fills *d. */
static void retry_or_fail(drv_balancer *b, drv_tref t, bool costs, drv_reason why, drv_wref from,
                          drv_decision *d)
{
    drv_btask *r = &b->tasks[t];
    if (!costs || r->retries_left > 0) {
        if (costs)
            r->retries_left--;
        drv_engine_enqueue(b, t);
        b->requeued++;
        drv_engine_decision(b, d, DRV_D_REQUEUED, why, t, DRV_REF_NONE, from);
        if (d)
            d->charged = costs ? DRV_CHARGE_RETRY : DRV_CHARGE_NONE;
        return;
    }
    r->state = DRV_TASK_FAILED;
    drv_engine_decision(b, d, DRV_D_FINAL, DRV_R_RETRIES_EXHAUSTED, t, DRV_REF_NONE, from);
    drv_engine_free_task(b, t);
}

/* Counts one infrastructure failure of the machine towards quarantine_after. */
static void count_towards_quarantine(drv_balancer *b, drv_wref wi, const char *what)
{
    drv_bworker *w = &b->workers[wi];
    w->w.history.infra_failure_run++;
    uint32_t q = b->cfg.settings.quarantine_after;
    if (q > 0 && w->w.history.infra_failure_run >= q && w->w.health == DRV_HEALTH_OK) {
        w->w.health = DRV_HEALTH_QUARANTINED;
        snprintf(w->w.health_reason, sizeof w->w.health_reason,
                 "%u infrastructure failures in a row (last: %s)", w->w.history.infra_failure_run,
                 what);
    }
}

static void note_infra_failure(drv_balancer *b, drv_wref wi, double now, const char *what)
{
    drv_bworker *w = &b->workers[wi];
    w->w.history.infra_failures++;
    drv_thermal_on_result(&w->w.thermal, &b->cfg.settings.thermal, now, true);
    count_towards_quarantine(b, wi, what);
}

void drv_balancer_worker_hello(drv_balancer *b, drv_wref wi, bool new_process, double now)
{
    (void)now;
    if (wi >= b->n_workers || !b->workers[wi].live || !b->workers[wi].w.history.loss_pending)
        return;
    b->workers[wi].w.history.loss_pending = false;
    if (!new_process)
        count_towards_quarantine(b, wi, "lost while running tests");
}

/* py3 (issue 13): one member test of a batch ran duration_s on worker w (see
 * balancer.h). */
void drv_balancer_learn_member(drv_balancer *b, drv_wref w, const char *name, int family,
                               double duration_s)
{
    if (!b->pred || w >= b->n_workers || !name || !(duration_s > 0))
        return;
    uint32_t c = b->workers[w].w.wclass;
    if (family < 0 || family >= 64)
        family = 0;
    drv_predictor_observe(b->pred, drv_test_key(name), family, b->classes[c].backend, c,
                          duration_s);
}

int drv_balancer_finished(drv_balancer *b, drv_tref t, double now, const drv_result *res,
                          drv_decision *out)
{
    if (!live_held(b, t))
        return -1;
    drv_btask *r = &b->tasks[t];
    drv_wref wi = r->worker;
    drv_bworker *w = &b->workers[wi];
    drv_decision scratch;
    drv_decision *d = out ? out : &scratch;
    if (!res->infra_failure && !res->timed_out && res->duration_s > 0) {
        float run = (float)res->duration_s;
        w->avg_run_s = w->avg_run_s > 0 ? 0.8f * w->avg_run_s + 0.2f * run : run;
        w->runs_n++;
        /* Before the release (it re-sorts the class by pace) and the predictor's update. */
        drv_learning_pace_sample(b, r, wi, res->duration_s);
    }
    drv_engine_release(b, t, now); /* also recomputes its window (drv_fleet_update) */
    b->finished++;

    if (res->infra_failure) {
        if (res->restart) /* the old process's end, not the machine's failure */
            w->w.history.infra_failures++;
        else
            note_infra_failure(b, wi, now, "the runner failed");
        retry_or_fail(b, t, true, DRV_R_INFRA_FAILURE, wi, d);
        drv_fleet_update(b, wi, now);
        return 0;
    }
    w->w.history.finished++;
    w->w.history.infra_failure_run = 0;
    w->w.history.busy_s += res->duration_s > 0 ? res->duration_s : 0;
    drv_thermal_on_result(&w->w.thermal, &b->cfg.settings.thermal, now, false);
    bool passed = !res->timed_out && res->signal == 0 && res->exit_code == 0;
    if (passed)
        w->w.history.passed++;

    /* Learn: durations of tests that ran to their end (a timeout is a lower bound, not a
     * duration). */
    if (!res->timed_out && res->duration_s > 0 && b->pred) {
        uint32_t c = w->w.wclass;
        drv_predictor_observe(b->pred, r->test_key, r->family, b->classes[c].backend, c,
                              res->duration_s);
        /* First runs say how fast the class is even before any test ran on two
         * classes. */
        bool all = (r->flags & TF_FIRST_RUN) &&
                   drv_predictor_observe_first(b->pred, r->family, r->kind, c, res->duration_s);
        for (uint32_t k = all ? 0 : c; k < (all ? b->n_classes : c + 1); k++)
            b->speed[(size_t)k * 64 + r->family] =
                (float)drv_predictor_speed(b->pred, r->family, k);
        drv_fleet_fastest_update(b, r->family);
    }
    drv_policies_task_finished(b, r, wi, res);

    if (res->skipped && !res->timed_out && res->signal == 0) {
        r->state = DRV_TASK_SKIPPED;
        drv_engine_decision(b, d, DRV_D_FINAL, DRV_R_SAID_SKIPPED, t, DRV_REF_NONE, wi);
        drv_engine_free_task(b, t);
    } else if (passed) {
        r->state = DRV_TASK_PASSED;
        drv_engine_decision(b, d, DRV_D_FINAL, DRV_R_PASSED, t, DRV_REF_NONE, wi);
        drv_engine_free_task(b, t);
    } else if (r->reruns_left > 0) {
        r->reruns_left--;
        r->avoid = wi; /* its rerun prefers another worker */
        drv_engine_enqueue(b, t);
        b->requeued++;
        drv_engine_decision(b, d, DRV_D_REQUEUED, DRV_R_EXIT_FAILURE_RETRY, t, DRV_REF_NONE, wi);
        d->charged = DRV_CHARGE_RERUN;
    } else {
        r->state = res->timed_out ? DRV_TASK_TIMED_OUT : DRV_TASK_FAILED;
        drv_engine_decision(b, d, DRV_D_FINAL,
                            res->timed_out ? DRV_R_TIMED_OUT : DRV_R_EXIT_FAILURE, t, DRV_REF_NONE,
                            wi);
        drv_engine_free_task(b, t);
    }
    return 0;
}

size_t drv_balancer_worker_lost(drv_balancer *b, drv_wref wi, double now, drv_decision *out,
                                size_t max)
{
    if (wi >= b->n_workers || !b->workers[wi].live)
        return 0;
    drv_bworker *w = &b->workers[wi];
    size_t n = 0;
    bool was_running = false;
    while (w->held != DRV_REF_NONE && n < max) {
        drv_tref t = w->held;
        bool running = b->tasks[t].state == DRV_TASK_RUNNING;
        was_running |= running;
        drv_engine_release(b, t, now);
        retry_or_fail(b, t, running, DRV_R_WORKER_LOST, wi, &out[n++]);
    }
    if (w->held == DRV_REF_NONE) {
        if (was_running) { /* towards quarantine once its next hello says whose end it was */
            w->w.history.infra_failures++;
            w->w.history.loss_pending = true;
        }
        drv_fleet_mark_lost(b, wi, now);
    }
    return n;
}

int drv_balancer_cancel(drv_balancer *b, drv_tref t, double now, drv_decision *out)
{
    if (t >= b->n_tasks || b->tasks[t].state == TASK_FREE ||
        drv_task_state_final((drv_task_state)b->tasks[t].state))
        return -1;
    drv_btask *r = &b->tasks[t];
    drv_wref from = r->worker;
    if (r->state == DRV_TASK_QUEUED) {
        /* The queue entry stays until it surfaces; the record is freed then. */
        b->n_queued--;
        r->state = DRV_TASK_CANCELLED;
        drv_engine_decision(b, out, DRV_D_FINAL, DRV_R_CANCELLED, t, DRV_REF_NONE, DRV_REF_NONE);
        if (r->flags & (TF_WAITING | TF_PARKED)) /* off the queue: no entry will surface */
            drv_engine_free_task(b, t);
        return 0;
    }
    drv_engine_release(b, t, now);
    r->state = DRV_TASK_CANCELLED;
    drv_engine_decision(b, out, DRV_D_FINAL, DRV_R_CANCELLED, t, DRV_REF_NONE, from);
    drv_engine_free_task(b, t);
    return 0;
}

int drv_balancer_drop_copy(drv_balancer *b, drv_tref t, double now, drv_decision *out)
{
    if (t >= b->n_tasks || b->tasks[t].state == TASK_FREE ||
        drv_task_state_final((drv_task_state)b->tasks[t].state))
        return -1;
    const drv_btask *r = &b->tasks[t];
    /* The original of a speculative pair dropped while it runs: its copy finished first
     * or replaced it on a stuck worker, so its worker is suspect for a while. */
    if (r->copy_role == COPY_ORIGINAL && r->state == DRV_TASK_RUNNING &&
        r->worker != DRV_REF_NONE) {
        b->workers[r->worker].suspect = true;
        b->workers[r->worker].suspect_at = now;
    }
    return drv_balancer_cancel(b, t, now, out);
}

int drv_balancer_handback(drv_balancer *b, drv_tref t, double now, drv_decision *out)
{
    if (t >= b->n_tasks || b->tasks[t].state != DRV_TASK_ASSIGNED)
        return -1;
    drv_wref from = b->tasks[t].worker;
    drv_engine_release(b, t, now);
    retry_or_fail(b, t, false, DRV_R_HANDED_BACK, from, out);
    return 0;
}
