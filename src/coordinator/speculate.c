/* speculate.c - speculative copies of stragglers: the balancer says which running test
 * deserves a copy and where (drv_balancer_stragglers); this file starts the copy as an
 * attempt of its own (drv_store_attempt_begin_copy: the running attempt stays open),
 * keeps the first result, and kills the other copy through the worker's cancel,
 * recording it superseded. Never a second result: the loser's attempt is closed before
 * the winner's result is handled, so a late result of it is ignored as any late one.
 *
 * A pair is two coordinator records (c->tasks[t], c->tasks[twin]) with the same test
 * id; c->by_id points at one of them, and channel.c finds the other by attempt number.
 * A copy that goes away without a result (its worker lost, handed back, moved) is
 * dropped with no retry used: the other copy is the test from then on. */
#include <stdio.h>
#include <string.h>

#include "coordinator/coord.h"

#define STRAGGLERS_PER_TICK 16

static const char *name_of(drv_coordinator *c, drv_wref w)
{
    return w == DRV_REF_NONE ? "?" : drv_balancer_worker(c->bal, w)->name;
}

/* Gives up x, one of a pair: its attempt superseded by the twin's (abandoned if open, so
 * it charges no retry budget, and a result it has does not count), its process
 * cancelled on `worker` (DRV_REF_NONE: none to tell), its balancer record released (no
 * retry used), its record forgotten; why (NULL: none) is kept as the attempt's reason.
 * The twin is the test from now on. */
static void drop(drv_coordinator *c, drv_tref x, drv_wref worker, const char *why)
{
    drv_ctask *cx = &c->tasks[x];
    drv_tref y = cx->twin;
    drv_ctask *cy = &c->tasks[y];
    uint64_t id = cx->task.id;
    drv_error err;
    if (drv_store_attempt_supersede_why(c->store, id, cx->task.attempts, cy->task.attempts, why,
                                        &err) < 0)
        drv_coord_fatal(c, &err);
    if (cx->attempt_open) {
        cx->attempt_open = false;
        if (worker != DRV_REF_NONE)
            drv_dispatch_queue_cancel(c, worker, id, cx->task.attempts);
    }
    drv_decision d;
    (void)drv_balancer_drop_copy(c->bal, x, drv_coord_now(), &d); /* -1: released already */
    uint32_t used = drv_ctask_attempts(cx);
    if (used > cy->attempts_used)
        cy->attempts_used = used;
    cx->paired = cy->paired = false;
    drv_dispatch_forget(c, x);
    drv_idmap_put(&c->by_id, id, y);
    c->place_needed = true;
}

drv_ctask *drv_speculate_task(drv_coordinator *c, uint64_t id, uint32_t attempt, drv_tref *t)
{
    drv_ctask *ct = drv_coord_task_by_id(c, id, t);
    if (ct && ct->paired && ct->task.attempts != attempt &&
        c->tasks[ct->twin].task.attempts == attempt) {
        *t = ct->twin;
        ct = &c->tasks[*t];
    }
    return ct;
}

/* spec4: copies that stand in the way of waiting work yield (drv_balancer_yielding):
 * killed on their worker and recorded superseded by the original, which goes on. Returns
 * how many yielded. */
static size_t yield_copies(drv_coordinator *c, double now)
{
    drv_tref y[STRAGGLERS_PER_TICK];
    size_t n = drv_balancer_yielding(c->bal, now, y, STRAGGLERS_PER_TICK), done = 0;
    for (size_t i = 0; i < n; i++) {
        drv_tref x = y[i];
        if (x >= c->cap_tasks || !c->tasks[x].live || !c->tasks[x].paired)
            continue;
        drv_wref w = drv_balancer_task_worker(c->bal, x);
        drv_coord_log(c,
                      "test %llu: copy (attempt %u) on %s yields its slot to waiting work; "
                      "attempt %u goes on",
                      (unsigned long long)c->tasks[x].task.id, c->tasks[x].task.attempts,
                      name_of(c, w), c->tasks[c->tasks[x].twin].task.attempts);
        drop(c, x, w, "yielded");
        done++;
    }
    return done;
}

void drv_speculate_tick(drv_coordinator *c, double now)
{
    if (yield_copies(c, now) > 0)
        return; /* placement first: the freed slots are the waiting work's */
    drv_straggler s[STRAGGLERS_PER_TICK];
    size_t n = drv_balancer_stragglers(c->bal, now, s, STRAGGLERS_PER_TICK);
    for (size_t i = 0; i < n; i++) {
        drv_tref t = s[i].task;
        drv_wref target = s[i].target;
        if (t >= c->cap_tasks || !c->tasks[t].live || c->tasks[t].paired ||
            !c->tasks[t].attempt_open || c->tasks[t].unconfirmed || !c->workers[target].session) {
            continue; /* settling: perhaps next time */
        }
        drv_error err;
        int64_t u = drv_balancer_copy(c->bal, t, target, now, &err);
        if (u < 0) {
            drv_coord_log(c, "speculative copy not started: %s", err.msg);
            continue;
        }
        drv_coord_reserve_task(c, (drv_tref)u); /* c->tasks may move */
        drv_ctask *ct = &c->tasks[t], *cu = &c->tasks[u];
        drv_task_init(&cu->task);
        drv_task_copy(&cu->task, &ct->task);
        cu->run_id = ct->run_id;
        cu->live = true;
        cu->unconfirmed = false;
        cu->task.attempts = drv_ctask_attempts(ct) + 1;
        cu->attempts_used = cu->task.attempts;
        ct->attempts_used = cu->task.attempts;
        cu->paired = ct->paired = true;
        cu->twin = t;
        ct->twin = (drv_tref)u;
        if (drv_store_attempt_begin_copy(c->store, ct->task.id, cu->task.attempts,
                                         ct->task.attempts, name_of(c, target), now, &err) < 0)
            drv_coord_fatal(c, &err);
        cu->attempt_open = true;
        drv_dispatch_queue_assign(c, target, (drv_tref)u);
        cu->placed_at = now;
        drv_sampler_speculation(c); /* drover_speculations_total */
        char why[160];
        if (s[i].misplaced)
            snprintf(why, sizeof why,
                     "now predicted to take %.1f s there (more than when placed) and to end "
                     "after the rest of the work",
                     s[i].high_s);
        else if (s[i].hedge)
            snprintf(why, sizeof why,
                     "predicted to take %.1f s there and to end last, on a class speed for its "
                     "family still guessed from first runs",
                     s[i].high_s);
        else
            snprintf(why, sizeof why, "past its p90 of %.1f s%s", s[i].high_s,
                     s[i].suspect ? " (a suspect worker: no margin)"
                     : s[i].hang  ? " (twice its p90: a likely hang)"
                                  : "");
        drv_coord_log(c,
                      "test %llu (%s) has run %.1f s on %s, %s: a copy (attempt %u) on %s, "
                      "predicted to end in %.1f s",
                      (unsigned long long)ct->task.id, ct->task.name, s[i].running_s,
                      name_of(c, s[i].holder), why, cu->task.attempts, name_of(c, target),
                      s[i].copy_s);
        if (s[i].replace) { /* spec5: its worker is stuck: the copy is the test now */
            drv_coord_log(c,
                          "test %llu: %s looks stuck (its tests overdue against their own runs "
                          "there): attempt %u superseded at once by attempt %u",
                          (unsigned long long)c->tasks[t].task.id, name_of(c, s[i].holder),
                          c->tasks[t].task.attempts, c->tasks[u].task.attempts);
            drop(c, t, s[i].holder, "replaced");
        }
    }
}

bool drv_speculate_finished(drv_coordinator *c, drv_tref t, bool infra_failure)
{
    drv_ctask *ct = &c->tasks[t];
    if (!ct->paired)
        return false;
    drv_tref y = ct->twin;
    if (infra_failure) { /* not the test's result: the other copy goes on */
        drv_coord_log(c, "test %llu: attempt %u failed to run; attempt %u goes on",
                      (unsigned long long)ct->task.id, ct->task.attempts,
                      c->tasks[y].task.attempts);
        drop(c, t, DRV_REF_NONE, NULL);
        return true;
    }
    drv_coord_log(c, "test %llu: attempt %u on %s finished first; attempt %u on %s superseded",
                  (unsigned long long)ct->task.id, ct->task.attempts,
                  name_of(c, drv_balancer_task_worker(c->bal, t)), c->tasks[y].task.attempts,
                  name_of(c, drv_balancer_task_worker(c->bal, y)));
    drop(c, y, drv_balancer_task_worker(c->bal, y), NULL);
    return false;
}

bool drv_speculate_decision(drv_coordinator *c, const drv_decision *d)
{
    drv_ctask *cx = &c->tasks[d->task];
    if (!cx->paired)
        return false;
    switch (d->kind) {
    case DRV_D_PLACED:
        return false;
    case DRV_D_FINAL:
        if (d->reason == DRV_R_CANCELLED) { /* the test is cancelled: both copies go */
            drv_tref y = cx->twin;
            drop(c, y, drv_balancer_task_worker(c->bal, y), NULL);
            return false;
        }
        break;
    case DRV_D_MOVED:
    case DRV_D_REQUEUED:
        break;
    }
    /* Lost with its worker, handed back, moved before it started: this copy goes, with
     * no retry used; the other is the test. */
    drv_coord_log(c, "test %llu: attempt %u dropped (%s); attempt %u goes on",
                  (unsigned long long)cx->task.id, cx->task.attempts, drv_reason_name(d->reason),
                  c->tasks[cx->twin].task.attempts);
    drop(c, d->task, d->from_worker, NULL);
    return true;
}
