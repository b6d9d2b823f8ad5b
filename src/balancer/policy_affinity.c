/* policy_affinity.c - tests of a model family go to the workers that ran that family
 * well: models stay loaded, caches warm, drivers proven.
 *
 * Per family the balancer remembers up to AFFINITY_SLOTS workers with a score (EWMA of
 * "passed, and as fast as predicted": 1 for a pass at or under the predicted time, less
 * when slower, 0 for a failure), and per (family, class) the same average. A worker's
 * affinity is 0.7 x its own score + 0.3 x its class's, counted only when it has a free
 * slot (a warm worker with a queue in front of the test is no better than a cold free
 * one) and scaled by the class's learned speed for the family against the fastest
 * class's. The engine offers the remembered workers as candidates besides each class's
 * least loaded one.
 *
 * State: the per-family rows (drv_balancer.affinity) and the per (class, family) scores
 * (drv_balancer.class_affinity), written by its hooks only: at start what earlier
 * processes learned comes in through learned_import, and goes to the store through
 * learned_export (learning.c keys the facts by class and worker names). */
#include "balancer/engine.h"

#define AFFINITY_ALPHA 0.3f

static double affinity_of(const drv_balancer *b, int family, drv_wref w, uint32_t c)
{
    if (family <= 0 || family >= 64)
        return 0;
    const drv_affinity_row *row = &b->affinity[family];
    double own = 0;
    for (int k = 0; k < AFFINITY_SLOTS; k++)
        if (row->worker[k] == w && row->score[k] > 0) {
            own = row->score[k];
            break;
        }
    return 0.7 * own + 0.3 * b->class_affinity[(size_t)c * 64 + family];
}

static double affinity_score(const drv_place_ctx *ctx, const drv_bworker *w, const drv_wclass *c)
{
    (void)c;
    const drv_balancer *b = ctx->b;
    drv_wref wi = (drv_wref)(w - b->workers);
    /* Affinity is worth something only where the test can start now: a warm worker with
     * a queue in front of the test is no better than a cold one that is free. */
    if (w->w.running + w->w.assigned >= w->w.slots)
        return 0;
    /* "Ran it well" includes "ran it fast": scaled by the class's speed for the family
     * against the fastest class, affinity never pulls a test to a slow machine. */
    int f = ctx->t->family;
    float fastest = b->fastest[f] > 0 ? b->fastest[f] : 1;
    return affinity_of(b, f, wi, w->w.wclass) * b->speed[(size_t)w->w.wclass * 64 + f] / fastest;
}

_Static_assert(AFFINITY_SLOTS <= DRV_POLICY_EXTRA_MAX, "affinity offers a whole row");

/* The workers that ran ctx->t's family well (none for an unknown family). */
static size_t affinity_candidates(const drv_place_ctx *ctx, drv_wref *out, size_t max)
{
    int f = ctx->t->family;
    if (f == 0)
        return 0;
    const drv_affinity_row *row = &ctx->b->affinity[f];
    size_t n = 0;
    for (int k = 0; k < AFFINITY_SLOTS && n < max; k++)
        if (row->score[k] > 0 && row->worker[k] != DRV_REF_NONE)
            out[n++] = row->worker[k];
    return n;
}

static void affinity_finished(drv_balancer *b, const drv_btask *t, drv_wref wi, const drv_result *r)
{
    if (t->family == 0)
        return;
    float sample = 0;
    if (!r->timed_out && r->signal == 0 && r->exit_code == 0) {
        double pred = t->pred_held_s > 0 ? t->pred_held_s : 1e-3;
        sample = r->duration_s <= pred ? 1.0f : (float)(pred / r->duration_s);
    }
    uint32_t c = b->workers[wi].w.wclass;
    float *ca = &b->class_affinity[(size_t)c * 64 + t->family];
    *ca = *ca + AFFINITY_ALPHA * (sample - *ca);

    drv_affinity_row *row = &b->affinity[t->family];
    int slot = -1, weakest = 0;
    for (int k = 0; k < AFFINITY_SLOTS; k++) {
        if (row->score[k] > 0 && row->worker[k] == wi) {
            slot = k;
            break;
        }
        if (row->score[k] < row->score[weakest])
            weakest = k;
    }
    if (slot >= 0) {
        row->score[slot] += AFFINITY_ALPHA * (sample - row->score[slot]);
        if (row->score[slot] <= 0)
            row->score[slot] = 0;
    } else if (sample > row->score[weakest]) {
        row->worker[weakest] = wi;
        row->score[weakest] = sample;
    }
}

/* Every family's row starts empty: its slots name no worker. */
static void affinity_init(drv_balancer *b)
{
    for (int f = 0; f < 64; f++)
        for (int k = 0; k < AFFINITY_SLOTS; k++)
            b->affinity[f].worker[k] = DRV_REF_NONE;
}

static void affinity_worker_removed(drv_balancer *b, drv_wref wi)
{
    for (int f = 0; f < 64; f++)
        for (int k = 0; k < AFFINITY_SLOTS; k++)
            if (b->affinity[f].worker[k] == wi)
                b->affinity[f].score[k] = 0;
}

/* Its facts: per class and family the class's score, per worker and family the worker's
 * (the live workers of every row). */
static size_t affinity_export(const drv_balancer *b, drv_learned_fact_fn fn, void *ctx)
{
    size_t n = 0;
    for (uint32_t c = 0; c < b->n_classes; c++)
        for (int f = 1; f < 64; f++) {
            float a = b->class_affinity[(size_t)c * 64 + (uint32_t)f];
            if (a <= 0)
                continue;
            drv_learned_fact fact = {.kind = DRV_LEARNED_CLASS_AFFINITY,
                                     .key = b->classes[c].key,
                                     .family = f,
                                     .value = a,
                                     .n = 1};
            fn(ctx, &fact);
            n++;
        }
    for (int f = 1; f < 64; f++)
        for (int k = 0; k < AFFINITY_SLOTS; k++) {
            drv_wref wi = b->affinity[f].worker[k];
            float score = b->affinity[f].score[k];
            if (score <= 0 || wi >= b->n_workers || !b->workers[wi].live)
                continue;
            drv_learned_fact fact = {.kind = DRV_LEARNED_WORKER_AFFINITY,
                                     .key = drv_test_key(b->workers[wi].w.name),
                                     .family = f,
                                     .value = score,
                                     .n = 1};
            fn(ctx, &fact);
            n++;
        }
    return n;
}

/* A class's score is taken as it was; a worker's goes into its family's row where it
 * beats the weakest there. */
static bool affinity_import(drv_balancer *b, const drv_learned_fact *f, uint32_t c, drv_wref wi)
{
    if (f->family <= 0 || f->family >= 64)
        return false;
    if (f->kind == DRV_LEARNED_CLASS_AFFINITY && c < b->n_classes) {
        b->class_affinity[(size_t)c * 64 + (uint32_t)f->family] = (float)f->value;
        return true;
    }
    if (f->kind != DRV_LEARNED_WORKER_AFFINITY || wi >= b->n_workers)
        return false;
    drv_affinity_row *row = &b->affinity[f->family];
    int weakest = 0;
    for (int k = 1; k < AFFINITY_SLOTS; k++)
        if (row->score[k] < row->score[weakest])
            weakest = k;
    if (f->value > row->score[weakest]) {
        row->worker[weakest] = wi;
        row->score[weakest] = (float)f->value;
    }
    return true;
}

const drv_policy_ops drv_policy_affinity = {
    .name = "affinity",
    .kind = DRV_POLICY_AFFINITY,
    .ordering = DRV_ORDER_LEAST_LOADED,
    .score = affinity_score,
    .candidates = affinity_candidates,
    .init = affinity_init,
    .task_finished = affinity_finished,
    .worker_removed = affinity_worker_removed,
    .learned_export = affinity_export,
    .learned_import = affinity_import,
};
