/* placement.c - the matching engine: submission, filter, score, place.
 *
 * place() repeatedly takes the best queued test (drv_queue_peek: priority with aging,
 * then longest predicted first) and asks its policy for the best worker among the
 * available workers of the classes that can run it. A shape whose tests find no worker
 * is blocked; a worker whose capacity grows (a test finished, it warmed up, it
 * recovered) is "fresh", and when nothing else is placeable the engine unblocks the best
 * blocked shape that fresh worker can run. So a saturated fleet costs one cheap check
 * per freed slot, not a sweep of the queue. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer/engine.h"
#include "core/analyzer.h"

/* ---- construction ---- */

static uint8_t spec_index(drv_balancer *b, const drv_policy_spec *s)
{
    for (uint32_t i = 0; i < b->n_specs; i++)
        if (memcmp(&b->specs[i], s, sizeof *s) == 0)
            return (uint8_t)i;
    b->specs[b->n_specs] = *s;
    drv_ordering o = drv_policy_ordering(s);
    b->spec_extra[b->n_specs] = drv_policy_extra_candidates(s);
    b->spec_order[b->n_specs] = (uint8_t)o;
    b->order_used[o] = true;
    return (uint8_t)b->n_specs++;
}

drv_balancer *drv_balancer_new(const drv_balancer_config *cfg, drv_tag_table *tags,
                               drv_predictor *pred, drv_error *err)
{
    const drv_balancer_settings *st = &cfg->settings;
    if (!(st->aging_interval_s > 0)) {
        drv_error_set(err, "settings.aging_interval_s: must be > 0, got %g", st->aging_interval_s);
        return NULL;
    }
    if (cfg->default_policy.kind == DRV_POLICY_COMPOSITE) {
        double sum = 0;
        for (int k = 0; k < DRV_POLICY_SINGLE_COUNT; k++)
            sum += cfg->default_policy.weights[k];
        if (!(sum > 0)) {
            drv_error_set(err, "default_scheduler.algorithms: the weights must add up to > 0");
            return NULL;
        }
    }
    drv_balancer *b = drv_xcalloc(1, sizeof *b);
    b->cfg = *cfg;
    b->tags = tags;
    b->pred = pred;
    b->queue = drv_queue_new();
    b->free_task = DRV_REF_NONE;
    b->resv_shape = DRV_SHAPE_NONE;
    b->resv_worker = DRV_REF_NONE;
    b->newest_placed = -INFINITY;
    b->class_words = 1;
    b->avail = drv_xcalloc(1, sizeof(uint64_t));
    drv_policies_init(b);
    spec_index(b, &cfg->default_policy);
    b->order_used[DRV_ORDER_LEAST_LOADED] = true; /* explain and stealing read it */
    for (int f = 0; f < 64; f++) {
        b->family_spec[f] = 0;
        if (cfg->family_set[f]) {
            b->family_spec[f] = spec_index(b, &cfg->family_policy[f]);
        }
    }
    for (uint32_t i = 0; i < cfg->n_test_types; i++) {
        b->type_spec[i] = spec_index(b, &cfg->test_types[i].spec);
    }
    return b;
}

void drv_balancer_free(drv_balancer *b)
{
    if (!b)
        return;
    drv_fleet_free(b);
    drv_order_destroy(b);
    drv_queue_free(b->queue);
    free(b->tasks);
    free(b);
}

/* ---- task records ---- */

static drv_tref task_alloc(drv_balancer *b)
{
    if (b->free_task != DRV_REF_NONE) {
        drv_tref t = b->free_task;
        b->free_task = b->tasks[t].next;
        return t;
    }
    if (b->n_tasks == b->cap_tasks) {
        b->cap_tasks = b->cap_tasks ? b->cap_tasks * 2 : 1024;
        b->tasks = drv_xrealloc(b->tasks, (size_t)b->cap_tasks * sizeof *b->tasks);
        if (b->order_of) {
            b->order_of = drv_xrealloc(b->order_of, (size_t)b->cap_tasks * sizeof *b->order_of);
            memset(b->order_of + b->n_tasks, 0,
                   (size_t)(b->cap_tasks - b->n_tasks) * sizeof *b->order_of);
        }
    }
    return b->n_tasks++;
}

drv_tref drv_engine_task_alloc(drv_balancer *b)
{
    return task_alloc(b);
}

void drv_engine_free_task(drv_balancer *b, drv_tref t)
{
    if (b->tasks[t].flags & TF_ORDERED)
        drv_order_free(b, t);
    b->tasks[t].state = TASK_FREE;
    b->tasks[t].flags = 0;
    b->tasks[t].next = b->free_task;
    b->free_task = t;
}

static bool task_live(const drv_balancer *b, drv_tref t)
{
    return t < b->n_tasks && b->tasks[t].state != TASK_FREE &&
           !drv_task_state_final((drv_task_state)b->tasks[t].state);
}

double drv_engine_predict_on(const drv_balancer *b, const drv_btask *t, uint32_t c)
{
    return t->pred_ref_s / b->speed[(size_t)c * 64 + t->family];
}

void drv_engine_enqueue(drv_balancer *b, drv_tref t)
{
    drv_btask *r = &b->tasks[t];
    r->state = DRV_TASK_QUEUED;
    r->worker = DRV_REF_NONE;
    drv_queue_push(b->queue, r->shape, (drv_queue_entry){.key = r->key, .seq = r->seq, .ref = t});
    b->n_queued++;
}

static uint8_t policy_of(const drv_balancer *b, int family, const char *test_type)
{
    if (family > 0 && family < 64 && b->cfg.family_set[family])
        return b->family_spec[family];
    if (test_type)
        for (uint32_t i = 0; i < b->cfg.n_test_types; i++)
            if (strcmp(b->cfg.test_types[i].name, test_type) == 0)
                return b->type_spec[i];
    return 0;
}

/* Checks t and makes its task record (not queued, not held). Returns the reference, or
 * -1 with err filled. */
static int64_t task_record_new(drv_balancer *b, const drv_task *t, double now, drv_error *err)
{
    if (!t->name || !t->name[0])
        return drv_error_set(err, "test %llu: name must not be empty", (unsigned long long)t->id);
    if (t->priority < DRV_PRIORITY_MIN || t->priority > DRV_PRIORITY_MAX)
        return drv_error_set(err, "test \"%s\" priority: must be %d..%d, got %d", t->name,
                             DRV_PRIORITY_MIN, DRV_PRIORITY_MAX, t->priority);
    if (t->max_retries > 255)
        return drv_error_set(err, "test \"%s\" max_retries: must be 0..255, got %u", t->name,
                             t->max_retries);
    if (t->reruns > 255)
        return drv_error_set(err, "test \"%s\" reruns: must be 0..255, got %u", t->name, t->reruns);
    if (b->n_tasks == UINT32_MAX - 1 && b->free_task == DRV_REF_NONE)
        return drv_error_set(err, "test \"%s\": the balancer holds too many tests", t->name);
    int family = t->family;
    if (family <= 0 && t->model_id)
        family = drv_analyzer_family(t->model_id);
    if (family < 0 || family >= 64)
        family = 0;

    bool is_new;
    uint32_t shape = drv_queue_shape(b->queue, &t->req, &is_new);
    if (is_new)
        drv_fleet_shape_added(b, shape);

    drv_tref ref = task_alloc(b);
    drv_btask *r = &b->tasks[ref];
    memset(r, 0, sizeof *r);
    r->id = t->id;
    r->test_key = drv_test_key(t->name);
    r->enqueued = now;
    r->moved_at = -1e300;
    r->seq = b->seq++;
    r->shape = shape;
    r->worker = DRV_REF_NONE;
    r->avoid = DRV_REF_NONE;
    r->prev = r->next = DRV_REF_NONE;
    double est = drv_analyzer_estimate_s(family, t->test_type);
    if (t->members && b->pred) {
        /* py3 (issue 13): a batch runs its members one after the other: until the batch
         * itself is known (its name is new each run), it is predicted as the sum of its
         * members' learned runs (drv_balancer_learn_member), each unknown one as the
         * analyzer's estimate shared out. */
        double sum = 0,
               each = est / (double)(drv_strv_len(t->members) ? drv_strv_len(t->members) : 1);
        for (size_t i = 0; t->members[i]; i++)
            sum +=
                drv_predictor_predict_reference(b->pred, drv_test_key(t->members[i]), family, each)
                    .mean_s;
        est = sum;
    }
    drv_prediction p = b->pred ? drv_predictor_predict_reference(b->pred, r->test_key, family, est)
                               : (drv_prediction){.mean_s = est, .high_s = est * 1.25};
    r->pred_ref_s = (float)p.mean_s;
    r->pred_high_s = (float)p.high_s;
    r->priority = (int16_t)t->priority;
    r->family = (uint8_t)family;
    r->policy = policy_of(b, family, t->test_type);
    /* What is left of each budget: a test taken back after a restart has used some. */
    uint32_t reruns = drv_task_reruns(t);
    r->retries_left =
        (uint8_t)(t->max_retries > t->retries_used ? t->max_retries - t->retries_used : 0);
    r->reruns_left = (uint8_t)(reruns > t->reruns_used ? reruns - t->reruns_used : 0);
    r->flags = 0;
    if (t->not_idempotent || t->members) /* py3: a batch's members report as they run */
        r->flags |= TF_NOT_IDEMPOTENT;
    if (p.source != DRV_PRED_TEST)
        r->flags |= TF_FIRST_RUN;
    r->kind = (uint8_t)drv_analyzer_type_kind(t->test_type);
    /* A test that runs long ends the run late if it starts late: its predicted run
     * counts as waiting (length_aging seconds per second), so it may go ahead of
     * shorter tests a few priority levels higher. */
    double head_start = b->cfg.settings.length_aging * p.mean_s;
    double waited_from = now - head_start - drv_queue_base(b->queue, now);
    r->key = drv_queue_key(t->priority, waited_from, b->cfg.settings.aging_interval_s, p.mean_s);
    return ref;
}

int64_t drv_balancer_submit(drv_balancer *b, const drv_task *t, double now, drv_error *err)
{
    return drv_balancer_submit_after(b, t, NULL, 0, 0, now, err);
}

int64_t drv_balancer_submit_after(drv_balancer *b, const drv_task *t, const drv_tref *after,
                                  size_t n_after, uint32_t after_not_passed, double now,
                                  drv_error *err)
{
    int64_t ref = task_record_new(b, t, now, err);
    if (ref < 0)
        return -1;
    if (drv_order_attach(b, (drv_tref)ref, t, after, n_after, after_not_passed, err) < 0) {
        b->tasks[ref].state = DRV_TASK_CANCELLED;
        drv_engine_free_task(b, (drv_tref)ref);
        return -1;
    }
    drv_btask *r = &b->tasks[ref];
    if (r->flags & TF_WAITING) { /* queued for the user, held here until it is ready */
        r->state = DRV_TASK_QUEUED;
        r->worker = DRV_REF_NONE;
        b->n_queued++;
    } else {
        drv_engine_enqueue(b, (drv_tref)ref);
    }
    return ref;
}

int64_t drv_balancer_adopt(drv_balancer *b, const drv_task *t, drv_wref w, bool running, double now,
                           drv_error *err)
{
    if (w >= b->n_workers || !b->workers[w].live)
        return drv_error_set(err, "test \"%s\": adopted by worker %u, which is not in the fleet",
                             t->name ? t->name : "?", w);
    int64_t ref = task_record_new(b, t, now, err);
    if (ref < 0)
        return -1;
    drv_order_attach(b, (drv_tref)ref, t, NULL, 0, 0, err); /* locks only: cannot fail */
    drv_engine_assign(b, (drv_tref)ref, w, now);
    if (running)
        drv_balancer_started(b, (drv_tref)ref, now);
    return ref;
}

/* ---- choosing a worker ---- */

/* ---- choosing a worker: the predicted finish ---- */

double drv_place_predicted_finish(const drv_place_ctx *ctx, const drv_bworker *w)
{
    const drv_balancer *b = ctx->b;
    uint32_t admitted = w->cap_limit > 0 ? w->cap_limit : 1;
    if (admitted > w->w.slots)
        admitted = w->w.slots;
    double wait = 0;
    if (w->w.running + w->w.assigned >= admitted)
        wait = w->w.predicted_load_s / (admitted ? admitted : 1);
    return wait + drv_engine_predict_worker(b, ctx->t, (drv_wref)(w - b->workers));
}

double drv_place_finish_score(const drv_place_ctx *ctx, const drv_bworker *w)
{
    const drv_balancer *b = ctx->b;
    double ref = ctx->t->pred_ref_s > 1e-3 ? ctx->t->pred_ref_s : 1e-3;
    double fastest = ctx->best_speed > 0 ? ctx->best_speed : b->fastest[ctx->t->family];
    double best = ref / (fastest > 0 ? fastest : 1);
    double finish = drv_place_predicted_finish(ctx, w);
    return finish > best ? best / finish : 1;
}

/* Scores candidate w for t and keeps it in *best when it beats the best so far (ties to
 * the lower index). */
static inline void consider(const drv_policy_ops *ops, const drv_place_ctx *ctx,
                            const drv_balancer *b, drv_wref w, drv_wref *best, double *best_s)
{
    const drv_wclass *c = &b->classes[b->workers[w].w.wclass];
    double s = ops->score(ctx, &b->workers[w], c);
    if (w == ctx->t->avoid) /* a rerun goes there only when no other worker can take it: */
        s = (s - 3.6) / 4;  /* a score in [0, 1] falls to [-0.9, -0.65], below the others */
    if (s > *best_s || (s == *best_s && w < *best)) {
        *best_s = s;
        *best = w;
    }
}

/* The fastest learned speed for t's family among the classes with workers that can run
 * it. Per (shape, family) it changes only when a speed is learned or a class gains or
 * loses its workers, but classes are few: recomputing is cheaper than tracking. */
static double best_eligible_speed(const drv_balancer *b, const drv_btask *t)
{
    const uint64_t *elig = b->shapes[t->shape].elig;
    double best = 0;
    for (uint32_t i = 0; i < b->class_words; i++) {
        uint64_t m = elig[i];
        while (m) {
            uint32_t c = i * 64 + (uint32_t)__builtin_ctzll(m);
            m &= m - 1;
            double sp = b->speed[(size_t)c * 64 + t->family];
            if (b->classes[c].members && sp > best)
                best = sp;
        }
    }
    return best;
}

drv_wref drv_engine_choose(const drv_balancer *b, const drv_btask *t, double now, drv_wref hint)
{
    const drv_policy_spec *spec = &b->specs[t->policy];
    const drv_requirements *req = drv_queue_shape_req(b->queue, t->shape);
    drv_ordering o = (drv_ordering)b->spec_order[t->policy];
    /* The score is the hot path: one call per candidate (the composite's sums its
     * parts'). */
    const drv_policy_ops *ops = drv_policy_get(spec->kind);
    drv_place_ctx ctx = {.b = b, .spec = spec, .t = t, .req = req, .now = now};
    ctx.web = drv_tagset_has(&req->all_of, DRV_TAG_WEBGPU) ||
              drv_tagset_has(&req->all_of, DRV_TAG_WEBNN) ||
              drv_tagset_has(&req->any_of, DRV_TAG_WEBGPU) ||
              drv_tagset_has(&req->any_of, DRV_TAG_WEBNN);
    const uint64_t *elig = b->shapes[t->shape].elig;
    ctx.best_speed = best_eligible_speed(b, t);
    drv_wref best = DRV_REF_NONE;
    double best_s = -1;
    for (uint32_t i = 0; i < b->class_words; i++) {
        uint64_t m = elig[i] & b->avail[i];
        while (m) {
            uint32_t c = i * 64 + (uint32_t)__builtin_ctzll(m);
            m &= m - 1;
            uint32_t w = drv_fleet_candidate(b, c, o, req);
            if (w != POS_NONE && w == t->avoid) { /* a rerun: the class's next best too */
                uint32_t other = drv_fleet_candidate_except(b, c, o, req, w);
                if (other != POS_NONE)
                    consider(ops, &ctx, b, other, &best, &best_s);
            }
            if (w != POS_NONE)
                consider(ops, &ctx, b, w, &best, &best_s);
        }
    }
    if (hint != DRV_REF_NONE && hint != best && drv_bit_get(elig, b->workers[hint].w.wclass) &&
        drv_fleet_fits(b, &b->workers[hint], req))
        consider(ops, &ctx, b, hint, &best, &best_s);
    /* Candidates a policy offers besides each class's top (affinity: the workers that
     * ran this family well, which within a class need not be the top of the ordering). */
    for (uint32_t m = b->spec_extra[t->policy]; m; m &= m - 1) {
        drv_wref extra[DRV_POLICY_EXTRA_MAX];
        size_t n = drv_policy_get((drv_policy_kind)__builtin_ctz(m))
                       ->candidates(&ctx, extra, DRV_POLICY_EXTRA_MAX);
        for (size_t k = 0; k < n; k++) {
            drv_wref w = extra[k];
            if (w == best)
                continue;
            const drv_bworker *bw = &b->workers[w];
            if (!drv_bit_get(elig, bw->w.wclass) || !drv_fleet_fits(b, bw, req))
                continue;
            consider(ops, &ctx, b, w, &best, &best_s);
        }
    }
    return best;
}

/* ---- holding tests on workers ---- */

void drv_engine_assign(drv_balancer *b, drv_tref t, drv_wref wi, double now)
{
    drv_btask *r = &b->tasks[t];
    drv_bworker *w = &b->workers[wi];
    const drv_requirements *req = drv_queue_shape_req(b->queue, r->shape);
    r->state = DRV_TASK_ASSIGNED;
    r->worker = wi;
    r->prev = DRV_REF_NONE;
    r->next = w->held;
    if (w->held != DRV_REF_NONE)
        b->tasks[w->held].prev = t;
    w->held = t;
    r->pred_held_s = (float)drv_engine_predict_worker(b, r, wi);
    w->w.assigned++;
    w->w.used_cpu += req->cpu_cores;
    w->w.used_gpu += req->gpu_count;
    w->w.used_memory_mb += req->memory_mb;
    w->w.predicted_load_s += r->pred_held_s;
    drv_policies_task_assigned(b, r, wi);
    w->avg_pred_s =
        w->avg_pred_s > 0 ? 0.8f * w->avg_pred_s + 0.2f * r->pred_held_s : r->pred_held_s;
    drv_thermal_on_work(&w->w.thermal, &b->cfg.settings.thermal, now);
    w->w.thermal.last_work = now;
    b->n_assigned++;
    if (r->flags & TF_LOCKING)
        drv_order_acquire(b, t);
    drv_fleet_update(b, wi, now);
}

static void reservation_keep(drv_balancer *b, drv_worker *x);

void drv_engine_release(drv_balancer *b, drv_tref t, double now)
{
    drv_btask *r = &b->tasks[t];
    drv_wref wi = r->worker;
    drv_bworker *w = &b->workers[wi];
    const drv_requirements *req = drv_queue_shape_req(b->queue, r->shape);
    if (r->prev != DRV_REF_NONE)
        b->tasks[r->prev].next = r->next;
    else
        w->held = r->next;
    if (r->next != DRV_REF_NONE)
        b->tasks[r->next].prev = r->prev;
    r->prev = r->next = DRV_REF_NONE;
    if (r->state == DRV_TASK_RUNNING) {
        w->w.running--;
        b->n_running--;
    } else {
        w->w.assigned--;
        b->n_assigned--;
    }
    w->w.used_cpu -= req->cpu_cores;
    w->w.used_gpu -= req->gpu_count;
    w->w.used_memory_mb -= req->memory_mb;
    if (w->reserved)
        reservation_keep(b, &w->w);
    w->w.predicted_load_s -= r->pred_held_s;
    if (w->w.predicted_load_s < 1e-9 || w->held == DRV_REF_NONE)
        w->w.predicted_load_s = 0;
    w->w.thermal.last_work = now;
    r->worker = DRV_REF_NONE;
    w->freed = true;
    if ((r->flags & TF_LOCKING) || b->n_excl_parked || b->n_gate_parked)
        drv_order_release(b, t);
    drv_fleet_update(b, wi, now);
}

void drv_engine_decision(drv_balancer *b, drv_decision *d, drv_decision_kind kind,
                         drv_reason reason, drv_tref t, drv_wref w, drv_wref from)
{
    if (kind == DRV_D_FINAL && (b->tasks[t].flags & TF_ORDERED))
        drv_order_final(b, t, b->tasks[t].state == DRV_TASK_PASSED);
    if (!d)
        return;
    d->kind = kind;
    d->reason = reason;
    d->state = (drv_task_state)b->tasks[t].state;
    d->task = t;
    d->task_id = b->tasks[t].id;
    d->worker = w;
    d->from_worker = from;
    d->unmet = 0;
    d->unmet_tag = -1;
    d->shape = b->tasks[t].shape;
    d->charged = DRV_CHARGE_NONE;
}

/* ---- placing ---- */

/* Finds a fresh worker and the best blocked shape it can run. False when no fresh
 * worker can run any blocked shape (those workers are dropped from the fresh list). */
static bool fresh_match(drv_balancer *b, drv_wref *worker, uint32_t *shape)
{
    while (b->n_fresh > 0) {
        drv_wref wi = b->fresh[b->n_fresh - 1];
        drv_bworker *w = &b->workers[wi];
        uint32_t best = DRV_SHAPE_NONE;
        drv_queue_entry be = {0}, e;
        if (drv_fleet_worker_available(w)) {
            for (uint32_t s = 0; s < b->n_shapes; s++) {
                if (!drv_queue_shape_blocked(b->queue, s) ||
                    !drv_bit_get(b->shapes[s].elig, w->w.wclass) ||
                    !drv_queue_shape_peek(b->queue, s, &e) ||
                    !drv_fleet_fits(b, w, drv_queue_shape_req(b->queue, s)))
                    continue;
                if (best == DRV_SHAPE_NONE || e.key < be.key ||
                    (e.key == be.key && e.seq < be.seq)) {
                    best = s;
                    be = e;
                }
            }
        }
        if (best != DRV_SHAPE_NONE) {
            *worker = wi; /* it stays fresh while it has room */
            *shape = best;
            return true;
        }
        b->n_fresh--;
        w->in_fresh = false;
    }
    return false;
}

/* ---- a worker kept for a starved test ---- */

/* How much later than a test unplaceable while workers that can run it have free slots
 * (they lack the cores, GPUs or memory it needs) a test placed before it was submitted,
 * before one of those workers is kept for it. */
#define RESERVE_AFTER_S 30.0

/* Ends the reservation: its worker takes any test that fits again. */
static void reservation_release(drv_balancer *b)
{
    drv_wref wi = b->resv_worker;
    b->resv_shape = DRV_SHAPE_NONE;
    b->resv_worker = DRV_REF_NONE;
    if (wi < b->n_workers) {
        drv_worker *x = &b->workers[wi].w;
        b->workers[wi].reserved = false;
        x->used_cpu -= b->resv_cpu;
        x->used_gpu -= b->resv_gpu;
        x->used_memory_mb -= b->resv_memory_mb;
        drv_fleet_class_grew(b, x->wclass); /* what it kept is free again */
    }
    b->resv_dims = 0;
    b->resv_cpu = b->resv_gpu = 0;
    b->resv_memory_mb = 0;
}

/* The reserved worker keeps what is free of what the starved test needs (its used counts
 * include it): called when the reservation is made and whenever one of its tests lets go. */
static void reservation_keep(drv_balancer *b, drv_worker *x)
{
    if (b->resv_dims & 1) {
        b->resv_cpu += x->caps.cpu_cores - x->used_cpu;
        x->used_cpu = x->caps.cpu_cores;
    }
    if (b->resv_dims & 2) {
        b->resv_gpu += x->caps.gpu_count - x->used_gpu;
        x->used_gpu = x->caps.gpu_count;
    }
    if (b->resv_dims & 4) {
        b->resv_memory_mb += x->caps.memory_mb - x->used_memory_mb;
        x->used_memory_mb = x->caps.memory_mb;
    }
}

/* Test r (of shape s) found no worker: smaller tests keep taking the cores, GPUs or memory
 * it waits for, so it could wait for ever (a whole-machine job behind one-core jobs: the
 * MetaCentrum trace's 80-core jobs waited days). Once a test submitted RESERVE_AFTER_S
 * after it was placed before it (it is being overtaken, not merely waiting in a burst
 * where everything waits) while workers that can run it have free slots, the one of those with the
 * most of what it needs free now is kept for it (one reservation at a time, as EASY backfilling
 * keeps one): it keeps what it has free of those resources and what its tests free of them
 * (reservation_keep), so no other test needing them fits there and what it holds drains
 * until the test fits; tests that need none of them still run there. Costs a scan of
 * those workers once per reservation, nothing per placement. */
static void reservation_make(drv_balancer *b, const drv_btask *r, uint32_t s)
{
    if (b->newest_placed - r->enqueued < RESERVE_AFTER_S || (r->flags & TF_LOCKING) ||
        (b->excl_held | b->excl_pending))
        return;
    const uint64_t *elig = b->shapes[s].elig;
    const drv_requirements *req = drv_queue_shape_req(b->queue, s);
    drv_wref best = DRV_REF_NONE;
    double best_room = -1;
    for (uint32_t i = 0; i < b->class_words; i++) {
        for (uint64_t m = elig[i] & b->avail[i]; m; m &= m - 1) {
            const drv_wclass *cl = &b->classes[i * 64 + (uint32_t)__builtin_ctzll(m)];
            for (uint32_t k = 0; k < cl->n[DRV_ORDER_LEAST_LOADED]; k++) {
                drv_wref wi = cl->heap[DRV_ORDER_LEAST_LOADED][k];
                const drv_worker *x = &b->workers[wi].w;
                /* the share of its need it has free, on the scarcest resource */
                double room = 1;
                if (req->cpu_cores)
                    room = fmin(room, (double)(x->caps.cpu_cores - x->used_cpu) / req->cpu_cores);
                if (req->gpu_count)
                    room = fmin(room, (double)(x->caps.gpu_count - x->used_gpu) / req->gpu_count);
                if (req->memory_mb)
                    room = fmin(room, (double)(x->caps.memory_mb - x->used_memory_mb) /
                                          (double)req->memory_mb);
                if (room > best_room || (room == best_room && wi < best)) {
                    best_room = room;
                    best = wi;
                }
            }
        }
    }
    if (best == DRV_REF_NONE)
        return; /* every worker that can run it is full: it waits its turn for a slot */
    b->resv_shape = s;
    b->resv_worker = best;
    b->workers[best].reserved = true;
    b->resv_dims =
        (uint8_t)((req->cpu_cores ? 1 : 0) | (req->gpu_count ? 2 : 0) | (req->memory_mb ? 4 : 0));
    reservation_keep(b, &b->workers[best].w);
}

/* Blocked shapes are looked at again only when a worker that can take them frees
 * something, so a starved test is found here: at most once a second of the clock while no
 * reservation is held, the blocked shape whose best test comes first in queue order and
 * is being overtaken gets one (O(shapes) then). */
static void reservation_scan(drv_balancer *b, double now)
{
    if (b->resv_shape != DRV_SHAPE_NONE || now < b->resv_scan_at)
        return;
    b->resv_scan_at = now + 1;
    uint32_t best = DRV_SHAPE_NONE;
    drv_queue_entry be = {0}, e;
    for (uint32_t s = 0; s < b->n_shapes; s++) {
        if (!drv_queue_shape_blocked(b->queue, s) || b->shapes[s].reachable == 0 ||
            !drv_queue_shape_peek(b->queue, s, &e) || b->tasks[e.ref].state != DRV_TASK_QUEUED ||
            b->newest_placed - b->tasks[e.ref].enqueued < RESERVE_AFTER_S)
            continue;
        if (best == DRV_SHAPE_NONE || e.key < be.key || (e.key == be.key && e.seq < be.seq)) {
            best = s;
            be = e;
        }
    }
    if (best != DRV_SHAPE_NONE)
        reservation_make(b, &b->tasks[be.ref], best);
}

/* The reserved worker takes its shape's best test once that fits; a reservation whose
 * worker left, or whose shape has no test left, ends. Returns the decisions in out. */
static size_t reservation_place(drv_balancer *b, double now, drv_decision *out, size_t n,
                                size_t max)
{
    if (b->resv_shape == DRV_SHAPE_NONE || n >= max)
        return n;
    uint32_t s = b->resv_shape;
    drv_wref wi = b->resv_worker;
    drv_bworker *w = &b->workers[wi];
    drv_queue_entry e;
    bool any = false;
    while ((any = drv_queue_shape_peek(b->queue, s, &e)) &&
           b->tasks[e.ref].state != DRV_TASK_QUEUED) { /* cancelled while queued */
        drv_queue_shape_pop(b->queue, s);
        drv_engine_free_task(b, e.ref);
    }
    /* ends too when its worker left, or the shape's best test is not a starved one (the
     * one it was made for went elsewhere, and the next has just come) */
    if (!any || !w->live || w->w.health != DRV_HEALTH_OK || (b->tasks[e.ref].flags & TF_LOCKING) ||
        now - b->tasks[e.ref].enqueued < RESERVE_AFTER_S) {
        reservation_release(b);
        return n;
    }
    const drv_requirements *req = drv_queue_shape_req(b->queue, s);
    if (b->resv_cpu < req->cpu_cores || b->resv_gpu < req->gpu_count ||
        b->resv_memory_mb < req->memory_mb || !drv_fleet_worker_available(w))
        return n; /* what it needs has not drained yet, or no slot is free */
    reservation_release(b);
    drv_queue_shape_unblock(b->queue, s);
    drv_queue_shape_pop(b->queue, s);
    b->n_queued--;
    drv_engine_assign(b, e.ref, wi, now);
    b->placed++;
    drv_engine_decision(b, &out[n++], DRV_D_PLACED, DRV_R_POLICY, e.ref, wi, DRV_REF_NONE);
    return n;
}

/* Warming workers admit more as time passes; blocked shapes that no worker could ever
 * run become reportable once their grace has passed. */
static void advance_time(drv_balancer *b, double now)
{
    drv_fleet_advance(b, now);
    if (b->n_reachable == 0)
        return;
    for (uint32_t s = 0; s < b->n_shapes; s++)
        if (b->shapes[s].reachable == 0 && drv_queue_shape_blocked(b->queue, s) &&
            b->shapes[s].first_blocked >= 0 &&
            now - b->shapes[s].first_blocked >= b->cfg.settings.unschedulable_grace_s)
            drv_queue_shape_unblock(b->queue, s);
}

size_t drv_balancer_place(drv_balancer *b, double now, drv_decision *out, size_t max)
{
    size_t n = 0;
    advance_time(b, now);
    if (b->settled_head < b->n_settled)
        n = drv_order_settle(b, out, max);
    reservation_scan(b, now);
    n = reservation_place(b, now, out, n, max);
    while (n < max) {
        drv_queue_entry e;
        uint32_t s;
        drv_wref hint = DRV_REF_NONE;
        if (!drv_queue_peek(b->queue, &e, &s)) {
            /* Nothing placeable: a worker whose capacity grew pulls the best blocked shape
             * it can run. Its test is placed with that worker as a sure candidate, then
             * the shape competes normally again. */
            if (!fresh_match(b, &hint, &s))
                break;
            drv_queue_shape_unblock(b->queue, s);
            drv_queue_shape_peek(b->queue, s, &e);
        }
        drv_btask *r = &b->tasks[e.ref];
        if (r->state != DRV_TASK_QUEUED) { /* cancelled while queued */
            drv_queue_shape_pop(b->queue, s);
            drv_engine_free_task(b, e.ref);
            continue;
        }
        drv_shape_info *si = &b->shapes[s];
        if (si->reachable == 0) {
            if (si->first_blocked < 0)
                si->first_blocked = now;
            if (b->n_reachable == 0 ||
                now - si->first_blocked < b->cfg.settings.unschedulable_grace_s) {
                drv_queue_shape_block(b->queue, s);
                continue;
            }
            drv_queue_shape_pop(b->queue, s);
            r->state = DRV_TASK_UNSCHEDULABLE;
            b->n_queued--;
            b->unschedulable++;
            drv_decision *d = &out[n++];
            drv_engine_decision(b, d, DRV_D_FINAL, DRV_R_NO_ELIGIBLE_WORKER, e.ref, DRV_REF_NONE,
                                DRV_REF_NONE);
            drv_engine_unmet(b, s, &d->unmet, &d->unmet_tag);
            drv_engine_free_task(b, e.ref);
            continue;
        }
        si->first_blocked = -1;
        /* Locks and exclusive tests: one flag and one counter for the tests without. */
        if (((r->flags & TF_LOCKING) || (b->excl_held | b->excl_pending)) &&
            !drv_order_admit(b, e.ref)) {
            drv_queue_shape_pop(b->queue, s); /* parked until what it waits for is free */
            continue;
        }
        drv_wref w = drv_engine_choose(b, r, now, hint);
        if (w == DRV_REF_NONE) {
            if (b->resv_shape == DRV_SHAPE_NONE)
                reservation_make(b, r, s);
            drv_queue_shape_block(b->queue, s);
            continue;
        }
        drv_queue_shape_pop(b->queue, s);
        /* The records of the tests that come next are far apart in memory: ask for one
         * a few places ahead now, so it is in cache when its turn comes. */
        const drv_queue_entry *ahead = drv_queue_shape_at(b->queue, s, 4);
        if (ahead)
            __builtin_prefetch(&b->tasks[ahead->ref]);
        b->n_queued--;
        drv_engine_assign(b, e.ref, w, now);
        if (r->enqueued > b->newest_placed)
            b->newest_placed = r->enqueued;
        b->placed++;
        drv_engine_decision(b, &out[n++], DRV_D_PLACED, DRV_R_POLICY, e.ref, w, DRV_REF_NONE);
    }
    return n;
}

void drv_engine_unmet(const drv_balancer *b, uint32_t s, int *unmet, int *tag)
{
    /* Among the classes with reachable workers, report the predicate that fails on the
     * class that fails latest (the closest one): its first unmet requirement. */
    const drv_requirements *req = drv_queue_shape_req(b->queue, s);
    int best = -1;
    *unmet = DRV_UNMET_NONE;
    *tag = -1;
    for (uint32_t c = 0; c < b->n_classes; c++) {
        if (!b->classes[c].reachable)
            continue;
        int tg;
        drv_unmet u = drv_requirements_check(req, &b->classes[c].caps, &tg);
        if ((int)u > best) {
            best = (int)u;
            *unmet = u;
            *tag = tg;
        }
    }
}

/* ---- accessors and statistics ---- */

drv_task_state drv_balancer_task_state(const drv_balancer *b, drv_tref t)
{
    if (t >= b->n_tasks || b->tasks[t].state == TASK_FREE)
        return DRV_TASK_STATE_COUNT;
    return (drv_task_state)b->tasks[t].state;
}

uint64_t drv_balancer_task_id(const drv_balancer *b, drv_tref t)
{
    return t < b->n_tasks ? b->tasks[t].id : 0;
}

drv_wref drv_balancer_task_worker(const drv_balancer *b, drv_tref t)
{
    return task_live(b, t) ? b->tasks[t].worker : DRV_REF_NONE;
}

drv_tref drv_balancer_held_first(const drv_balancer *b, drv_wref w)
{
    return w < b->n_workers && b->workers[w].live ? b->workers[w].held : DRV_REF_NONE;
}

drv_tref drv_balancer_held_next(const drv_balancer *b, drv_tref t)
{
    return task_live(b, t) && b->tasks[t].worker != DRV_REF_NONE ? b->tasks[t].next : DRV_REF_NONE;
}

double drv_balancer_predicted_run(const drv_balancer *b, drv_tref t)
{
    const drv_btask *r = &b->tasks[t];
    bool held = r->state == DRV_TASK_ASSIGNED || r->state == DRV_TASK_RUNNING;
    return held && r->pred_held_s > 0 ? (double)r->pred_held_s : (double)r->pred_ref_s;
}

drv_prediction drv_balancer_predict(const drv_balancer *b, drv_tref t, drv_wref w)
{
    const drv_btask *r = &b->tasks[t];
    const drv_bworker *bw = &b->workers[w];
    double sp = b->speed[(size_t)bw->w.wclass * 64 + r->family];
    double pace = bw->pace > 0 ? bw->pace : 1; /* the worker against its class */
    if (b->pred) {
        double est = r->pred_ref_s / sp;
        drv_prediction p = drv_predictor_predict(
            b->pred, r->test_key, r->family, b->classes[bw->w.wclass].backend, bw->w.wclass, est);
        p.mean_s *= pace;
        p.high_s *= pace;
        return p;
    }
    return (drv_prediction){.mean_s = pace * r->pred_ref_s / sp,
                            .high_s = pace * r->pred_high_s / sp,
                            .source = DRV_PRED_ESTIMATE};
}

bool drv_balancer_worker_runs_queued(const drv_balancer *b, drv_wref w)
{
    if (w >= b->n_workers || !b->workers[w].live || b->n_queued == 0)
        return false;
    uint32_t c = b->workers[w].w.wclass;
    for (uint32_t s = 0; s < b->n_shapes; s++)
        if (drv_queue_shape_len(b->queue, s) > 0 && (b->shapes[s].elig[c / 64] >> (c % 64) & 1))
            return true;
    return false;
}

void drv_balancer_stats_get(const drv_balancer *b, drv_balancer_stats *s)
{
    memset(s, 0, sizeof *s);
    s->queued = b->n_queued;
    s->assigned = b->n_assigned;
    s->running = b->n_running;
    s->placed = b->placed;
    s->moved = b->moved;
    s->requeued = b->requeued;
    s->finished = b->finished;
    s->unschedulable = b->unschedulable;
    s->skipped = b->skipped;
    s->workers = b->n_live_workers;
    s->worker_classes = b->n_classes;
    s->shapes = b->n_shapes;
    size_t task_bytes = (size_t)b->cap_tasks * sizeof(drv_btask) + drv_queue_bytes(b->queue);
    size_t bytes = sizeof *b + task_bytes;
    size_t worker_bytes = (size_t)b->cap_workers * sizeof(drv_bworker) +
                          b->name_cap * sizeof(uint32_t) + (size_t)b->cap_fresh * 4 +
                          (size_t)b->cap_warm * 4 + (size_t)b->victim_words * 8;
    bytes += worker_bytes;
    bytes += (size_t)b->cap_classes * (sizeof(drv_wclass) + 64 * 2 * sizeof(float));
    for (uint32_t c = 0; c < b->n_classes; c++)
        for (int o = 0; o < DRV_ORDER_COUNT; o++)
            if (b->classes[c].heap[o]) {
                bytes += (size_t)b->classes[c].cap * sizeof(uint32_t);
                worker_bytes += (size_t)b->classes[c].cap * sizeof(uint32_t);
            }
    bytes += (size_t)b->cap_shapes * sizeof(drv_shape_info) +
             (size_t)b->n_shapes * b->class_words * sizeof(uint64_t);
    s->bytes = bytes;
    uint64_t live = b->n_queued + b->n_assigned + b->n_running;
    s->bytes_per_task = live ? task_bytes / live : 0;
    s->bytes_per_worker = b->n_live_workers ? worker_bytes / b->n_live_workers : 0;
}
