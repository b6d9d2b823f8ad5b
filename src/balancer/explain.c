/* explain.c - why a test is where it is, in words a user understands. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "balancer/engine.h"

static const char *const reason_names[DRV_R_COUNT] = {
    [DRV_R_NONE] = "none",
    [DRV_R_POLICY] = "policy",
    [DRV_R_STOLEN] = "stolen",
    [DRV_R_REBALANCED] = "rebalanced",
    [DRV_R_WORKER_LOST] = "worker_lost",
    [DRV_R_INFRA_FAILURE] = "infra_failure",
    [DRV_R_RETRIES_EXHAUSTED] = "retries_exhausted",
    [DRV_R_EXIT_FAILURE] = "exit_failure",
    [DRV_R_EXIT_FAILURE_RETRY] = "exit_failure_retry",
    [DRV_R_TIMED_OUT] = "timed_out",
    [DRV_R_PASSED] = "passed",
    [DRV_R_CANCELLED] = "cancelled",
    [DRV_R_NO_ELIGIBLE_WORKER] = "no_eligible_worker",
    [DRV_R_HANDED_BACK] = "handed_back",
    [DRV_R_AFTER_NOT_PASSED] = "after_not_passed",
    [DRV_R_SAID_SKIPPED] = "said_skipped",
};

const char *drv_reason_name(drv_reason r)
{
    return (unsigned)r < DRV_R_COUNT ? reason_names[r] : "?";
}

/* Appends to buf at *off, never overflowing; keeps it NUL-terminated. */
static void put(char *buf, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
    if (*off >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *off, len - *off, fmt, ap);
    va_end(ap);
    if (k > 0)
        *off = *off + (size_t)k < len ? *off + (size_t)k : len - 1;
}

static const char *policy_name(const drv_policy_spec *s)
{
    return drv_policy_kind_name(s->kind);
}

/* Counts the queued tests of the shapes this test's workers can run that go before it. */
static size_t tests_ahead(const drv_balancer *b, const drv_btask *r)
{
    size_t ahead = 0;
    const uint64_t *mine = b->shapes[r->shape].elig;
    for (uint32_t s = 0; s < b->n_shapes; s++) {
        bool shares = false;
        for (uint32_t i = 0; i < b->class_words && !shares; i++)
            shares = (mine[i] & b->shapes[s].elig[i]) != 0;
        if (!shares && s != r->shape)
            continue;
        size_t n = drv_queue_shape_len(b->queue, s);
        for (size_t k = 0; k < n; k++) {
            const drv_queue_entry *e = drv_queue_shape_at(b->queue, s, k);
            const drv_btask *o = &b->tasks[e->ref];
            if (o->state == DRV_TASK_QUEUED &&
                (e->key < r->key || (e->key == r->key && e->seq < r->seq)))
                ahead++;
        }
    }
    return ahead;
}

static void explain_queued(const drv_balancer *b, const drv_btask *r, double now, char *buf,
                           size_t len)
{
    size_t off = 0;
    const drv_shape_info *si = &b->shapes[r->shape];
    const drv_requirements *req = drv_queue_shape_req(b->queue, r->shape);
    if (b->n_reachable == 0) {
        put(buf, len, &off,
            "No worker is connected yet; it will be placed when one that "
            "meets its requirements registers.");
        return;
    }
    if (si->reachable == 0) {
        int what, tag;
        drv_engine_unmet(b, r->shape, &what, &tag);
        char d[256];
        drv_unmet_sentence((drv_unmet)what, req, tag, b->tags, d, sizeof d);
        d[0] = (char)(d[0] - 'a' + 'A');
        put(buf, len, &off, "%s; it cannot run anywhere", d);
        if (b->cfg.settings.unschedulable_grace_s > 0 && si->first_blocked >= 0)
            put(buf, len, &off, " and will be reported unschedulable in %.0f s",
                b->cfg.settings.unschedulable_grace_s - (now - si->first_blocked));
        put(buf, len, &off, ".");
        return;
    }
    uint32_t eligible = 0, full = 0, warming = 0, cooling = 0, overloaded = 0, draining = 0,
             quarantined = 0, no_room = 0, free_fit = 0, backpressure = 0, lost = 0;
    char cooling_why[256] = ""; /* the first cooling worker's state, with its reason */
    for (uint32_t wi = 0; wi < b->n_workers; wi++) {
        const drv_bworker *w = &b->workers[wi];
        if (!w->live || !drv_bit_get(si->elig, w->w.wclass))
            continue;
        eligible++;
        if (w->w.health == DRV_HEALTH_LOST) {
            lost++;
            continue;
        }
        uint32_t held = w->w.running + w->w.assigned;
        uint32_t admitted =
            drv_thermal_admitted(&w->w.thermal, &b->cfg.settings.thermal, w->w.slots, now);
        if (w->w.health == DRV_HEALTH_QUARANTINED)
            quarantined++;
        else if (w->w.health == DRV_HEALTH_DRAINING)
            draining++;
        else if (w->overloaded || w->w.health == DRV_HEALTH_OVERLOADED)
            overloaded++;
        else if (held >= w->cap_limit && w->w.assigned > 0 && w->w.running < w->w.slots)
            backpressure++;
        else if (held >= w->cap_limit && admitted < w->w.slots &&
                 w->w.thermal.state == DRV_THERMAL_COOLING) {
            if (!cooling++) {
                char state[192];
                drv_thermal_describe(&w->w.thermal, &b->cfg.settings.thermal, w->w.slots, now,
                                     state, sizeof state);
                snprintf(cooling_why, sizeof cooling_why, "%.60s is %s", w->w.name, state);
            }
        } else if (held >= w->cap_limit && admitted < w->w.slots)
            warming++;
        else if (held >= w->cap_limit)
            full++;
        else if (!drv_fleet_fits(b, w, req))
            no_room++;
        else
            free_fit++;
    }
    put(buf, len, &off, "%u eligible worker%s", eligible, eligible == 1 ? "" : "s");
    if (free_fit) {
        put(buf, len, &off, ", %u with room: it will be placed at the next placement round.",
            free_fit);
        return;
    }
    put(buf, len, &off, ", none can take it now:");
    const struct {
        uint32_t count;
        const char *what;
        const char *detail; /* NULL or said in parentheses after it */
    } why[] = {
        {full, "busy (every slot taken)", NULL},
        {warming, "warming up (admitting part of their slots)", NULL},
        {cooling, "cooling down", cooling_why},
        {backpressure, "held back by backpressure (tests assigned, not yet started)", NULL},
        {overloaded, "reported overload", NULL},
        {no_room, "without enough free cores, memory or GPUs", NULL},
        {draining, "draining", NULL},
        {quarantined, "quarantined", NULL},
        {lost, "lost (it may reconnect)", NULL},
    };
    const char *sep = " ";
    for (size_t i = 0; i < sizeof why / sizeof *why; i++)
        if (why[i].count) {
            put(buf, len, &off, "%s%u %s", sep, why[i].count, why[i].what);
            if (why[i].detail)
                put(buf, len, &off, " (%s)", why[i].detail);
            sep = ", ";
        }
    size_t ahead = tests_ahead(b, r);
    put(buf, len, &off, ". %zu test%s ahead of it; waiting %.0f s.", ahead,
        ahead == 1 ? " is" : "s are", now - r->enqueued);
}

int drv_balancer_explain(const drv_balancer *b, drv_tref t, double now, char *buf, size_t len)
{
    if (len == 0)
        return -1;
    buf[0] = 0;
    if (t >= b->n_tasks || b->tasks[t].state == TASK_FREE ||
        drv_task_state_final((drv_task_state)b->tasks[t].state))
        return -1;
    const drv_btask *r = &b->tasks[t];
    size_t off = 0;
    switch ((drv_task_state)r->state) {
    case DRV_TASK_QUEUED:
        if (r->flags & (TF_WAITING | TF_PARKED))
            drv_order_explain(b, t, buf, len);
        else
            explain_queued(b, r, now, buf, len);
        break;
    case DRV_TASK_ASSIGNED:
        put(buf, len, &off, "Assigned to %s (%s), waiting for it to start.",
            b->workers[r->worker].w.name, policy_name(&b->specs[r->policy]));
        break;
    case DRV_TASK_RUNNING:
        put(buf, len, &off, "Running on %s; predicted %.1f s.", b->workers[r->worker].w.name,
            (double)r->pred_held_s);
        break;
    default:
        put(buf, len, &off, "%s.", drv_task_state_name((drv_task_state)r->state));
        break;
    }
    return 0;
}

void drv_decision_describe(const drv_balancer *b, const drv_decision *d, char *buf, size_t len)
{
    size_t off = 0;
    if (len == 0)
        return;
    buf[0] = 0;
    const char *to = d->worker != DRV_REF_NONE ? b->workers[d->worker].w.name : "";
    const char *from = d->from_worker != DRV_REF_NONE ? b->workers[d->from_worker].w.name : "";
    switch (d->kind) {
    case DRV_D_PLACED:
        put(buf, len, &off, "test %llu placed on %s", (unsigned long long)d->task_id, to);
        if (d->task < b->n_tasks && b->tasks[d->task].state != TASK_FREE &&
            b->tasks[d->task].id == d->task_id)
            put(buf, len, &off, " (%s)", policy_name(&b->specs[b->tasks[d->task].policy]));
        break;
    case DRV_D_MOVED:
        put(buf, len, &off, "test %llu moved from %s to %s (%s)", (unsigned long long)d->task_id,
            from, to, drv_reason_name(d->reason));
        break;
    case DRV_D_REQUEUED:
        put(buf, len, &off, "test %llu requeued from %s (%s)", (unsigned long long)d->task_id, from,
            drv_reason_name(d->reason));
        break;
    case DRV_D_FINAL:
        put(buf, len, &off, "test %llu %s (%s)", (unsigned long long)d->task_id,
            drv_task_state_name(d->state), drv_reason_name(d->reason));
        if (d->reason == DRV_R_NO_ELIGIBLE_WORKER) {
            char u[256];
            drv_unmet_sentence((drv_unmet)d->unmet, drv_queue_shape_req(b->queue, d->shape),
                               d->unmet_tag, b->tags, u, sizeof u);
            put(buf, len, &off, ": %s", u);
        }
        break;
    }
}
