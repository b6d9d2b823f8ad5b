/* learning.c - what the balancer learned of its fleet, kept across processes, and each
 * worker's own pace.
 *
 * Keys. Classes and tags are numbered in the order workers join, which changes from one
 * process to the next; a class is kept under a key of its numeric capabilities, the
 * names of its tags and its configured speed (drv_balancer_class_key), a worker under
 * drv_test_key() of its name. drv_balancer_export_learned() writes what is known under
 * those keys; drv_balancer_import_learned() keeps facts of an earlier process in a sorted
 * array, and a class or worker that joins takes its own (binary search) when it is made.
 *
 * Pace. Workers of one class are alike on paper, not always in fact (a noisy neighbour,
 * a slower disk). A worker's pace is the moving average of log(its run / its class's
 * mean run of the same test), counted from tests its class has run before; after
 * PACE_MIN samples exp(pace) multiplies its class's predictions, so a worker slower than
 * its class is scored as itself (the earliest-finish policy, stealing and the backlog
 * see it). A worker alone in its class has pace about 0: its class is itself. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "balancer/engine.h"

#define PACE_ALPHA 0.25f
#define PACE_MIN   3u   /* samples before a worker's pace counts */
#define PACE_LIMIT 2.3f /* |log pace| at most: 10x either way */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 29);
}

uint64_t drv_balancer_class_key(const drv_balancer *b, const drv_capabilities *caps, float speed)
{
    drv_capabilities numeric = *caps;
    drv_tagset_clear(&numeric.tags);
    uint64_t h = drv_capabilities_hash(&numeric);
    /* Tags by name, summed: the order of their ids does not matter. */
    uint64_t tags = 0;
    for (int t = 0; t < DRV_TAGS_MAX; t++)
        if (drv_tagset_has(&caps->tags, t))
            tags += mix(0x54414753ULL, drv_test_key(drv_tag_name(b->tags, t)));
    h = mix(h, tags);
    return mix(h, (uint64_t)llroundf(speed * 1000.0f));
}

/* ---- facts of earlier processes ---- */

static int fact_cmp(const void *pa, const void *pb)
{
    const drv_learned_fact *a = &((const struct drv_learned_entry *)pa)->f;
    const drv_learned_fact *b = &((const struct drv_learned_entry *)pb)->f;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->family < b->family ? -1 : a->family > b->family;
}

int drv_balancer_import_learned(drv_balancer *b, const drv_learned_fact *f)
{
    bool ok;
    switch (f->kind) {
    case DRV_LEARNED_CLASS_SPEED:
        ok = f->family >= 0 && f->family < 64 && f->value >= 0.01 && f->value <= 100;
        break;
    case DRV_LEARNED_CLASS_AFFINITY:
    case DRV_LEARNED_WORKER_AFFINITY:
        ok = f->family > 0 && f->family < 64 && f->value >= 0 && f->value <= 1;
        break;
    case DRV_LEARNED_WORKER_PACE:
        ok = f->family == -1 && fabs(f->value) <= PACE_LIMIT;
        break;
    default:
        ok = false;
    }
    if (!ok)
        return -1;
    if (b->n_learned == b->cap_learned) {
        b->cap_learned = b->cap_learned ? b->cap_learned * 2 : 64;
        b->learned = drv_xrealloc(b->learned, b->cap_learned * sizeof *b->learned);
    }
    b->learned[b->n_learned++] = (struct drv_learned_entry){.f = *f, .taken = false};
    b->learned_sorted = false;
    return 0;
}

/* The first imported fact of (kind, key), or NULL; the ones of the same kind and key
 * follow it (the store keeps one per kind, key and family). */
static struct drv_learned_entry *facts_of(drv_balancer *b, uint32_t kind, uint64_t key)
{
    if (b->n_learned == 0)
        return NULL;
    if (!b->learned_sorted) {
        qsort(b->learned, b->n_learned, sizeof *b->learned, fact_cmp);
        b->learned_sorted = true;
    }
    uint32_t lo = 0, hi = b->n_learned;
    struct drv_learned_entry probe = {.f = {.kind = kind, .key = key, .family = INT32_MIN}};
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (fact_cmp(&b->learned[mid], &probe) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < b->n_learned && b->learned[lo].f.kind == kind && b->learned[lo].f.key == key)
        return &b->learned[lo];
    return NULL;
}

/* Whether e (or the end) is still a fact of (kind, key). */
static bool same(const drv_balancer *b, const struct drv_learned_entry *e, uint32_t kind,
                 uint64_t key)
{
    return e && e < b->learned + b->n_learned && e->f.kind == kind && e->f.key == key;
}

/* Offers every stored fact of `kind` under key to the policies' learned_import hooks
 * (class c or worker w, the other DRV_REF_NONE); a fact one of them takes is taken. */
static void offer_to_policies(drv_balancer *b, uint32_t kind, uint64_t key, uint32_t c, drv_wref w)
{
    struct drv_learned_entry *e = facts_of(b, kind, key);
    for (; same(b, e, kind, key); e++)
        for (int k = 0; k < DRV_POLICY_KIND_COUNT; k++) {
            const drv_policy_ops *ops = drv_policies[k];
            if (ops && ops->learned_import && ops->learned_import(b, &e->f, c, w)) {
                e->taken = true;
                break;
            }
        }
}

/* The kinds of fact policies keep (learning.c keeps class speeds and paces itself). */
static bool policy_kind(uint32_t kind)
{
    return kind != DRV_LEARNED_CLASS_SPEED && kind != DRV_LEARNED_WORKER_PACE;
}

void drv_learning_class_added(drv_balancer *b, uint32_t c)
{
    drv_wclass *cl = &b->classes[c];
    cl->key = drv_balancer_class_key(b, &cl->caps, cl->speed);
    struct drv_learned_entry *e = facts_of(b, DRV_LEARNED_CLASS_SPEED, cl->key);
    for (; same(b, e, DRV_LEARNED_CLASS_SPEED, cl->key); e++) {
        e->taken = true;
        if (!b->pred)
            continue;
        drv_predictor_seed_speed(b->pred, e->f.family, c, e->f.value, e->f.n);
        b->speed[(size_t)c * 64 + (uint32_t)e->f.family] =
            (float)drv_predictor_speed(b->pred, e->f.family, c);
    }
    for (uint32_t kind = 1; kind <= DRV_LEARNED_KIND_MAX; kind++)
        if (policy_kind(kind))
            offer_to_policies(b, kind, cl->key, c, DRV_REF_NONE);
}

static void pace_set(drv_bworker *w)
{
    w->pace = w->pace_n >= PACE_MIN ? expf(w->pace_log) : 1.0f;
}

void drv_learning_worker_added(drv_balancer *b, drv_wref wi)
{
    drv_bworker *w = &b->workers[wi];
    uint64_t key = drv_test_key(w->w.name);
    w->pace_log = 0;
    w->pace_n = 0;
    struct drv_learned_entry *e = facts_of(b, DRV_LEARNED_WORKER_PACE, key);
    if (e) {
        e->taken = true;
        w->pace_log = (float)e->f.value;
        w->pace_n = e->f.n;
    }
    pace_set(w);
    for (uint32_t kind = 1; kind <= DRV_LEARNED_KIND_MAX; kind++)
        if (policy_kind(kind))
            offer_to_policies(b, kind, key, UINT32_MAX, wi);
}

void drv_learning_free(drv_balancer *b)
{
    free(b->learned);
    b->learned = NULL;
    b->n_learned = b->cap_learned = 0;
}

/* ---- export ---- */

size_t drv_balancer_export_learned(const drv_balancer *b, drv_learned_fact_fn fn, void *ctx)
{
    size_t n = 0;
    for (uint32_t c = 0; c < b->n_classes; c++) {
        const drv_wclass *cl = &b->classes[c];
        for (int f = 0; f < 64; f++) {
            drv_learned_fact fact = {.key = cl->key, .family = f};
            if (b->pred && drv_predictor_speed_learned(b->pred, f, c, &fact.value, &fact.n)) {
                fact.kind = DRV_LEARNED_CLASS_SPEED;
                fn(ctx, &fact);
                n++;
            }
        }
    }
    for (uint32_t wi = 0; wi < b->n_workers; wi++) {
        const drv_bworker *w = &b->workers[wi];
        if (!w->live || w->pace_n == 0)
            continue;
        drv_learned_fact fact = {.kind = DRV_LEARNED_WORKER_PACE,
                                 .key = drv_test_key(w->w.name),
                                 .family = -1,
                                 .value = w->pace_log,
                                 .n = w->pace_n};
        fn(ctx, &fact);
        n++;
    }
    /* What the policies learned: each policy owns its state. */
    for (int k = 0; k < DRV_POLICY_KIND_COUNT; k++)
        if (drv_policies[k] && drv_policies[k]->learned_export)
            n += drv_policies[k]->learned_export(b, fn, ctx);
    /* What earlier processes learned of classes and workers that have not joined this
     * one: kept, so a restart before they come back does not forget them. */
    for (uint32_t i = 0; i < b->n_learned; i++)
        if (!b->learned[i].taken) {
            fn(ctx, &b->learned[i].f);
            n++;
        }
    return n;
}

/* ---- pace ---- */

void drv_learning_pace_sample(drv_balancer *b, const drv_btask *t, drv_wref wi, double duration_s)
{
    if (!b->pred || !(duration_s > 0))
        return;
    drv_bworker *w = &b->workers[wi];
    uint32_t c = w->w.wclass;
    drv_prediction p =
        drv_predictor_predict(b->pred, t->test_key, t->family, b->classes[c].backend, c, 0);
    if (p.source != DRV_PRED_TEST_CLASS || !(p.mean_s > 0))
        return; /* its class never ran it: nothing to compare with */
    float x = (float)log(duration_s / p.mean_s);
    x = x > PACE_LIMIT ? PACE_LIMIT : x < -PACE_LIMIT ? -PACE_LIMIT : x;
    w->pace_log = w->pace_n == 0 ? x : w->pace_log + PACE_ALPHA * (x - w->pace_log);
    if (w->pace_n < UINT32_MAX)
        w->pace_n++;
    pace_set(w);
}

double drv_balancer_worker_pace(const drv_balancer *b, drv_wref wi)
{
    float pace = b->workers[wi].pace;
    return pace > 0 ? pace : 1.0;
}

double drv_engine_predict_worker(const drv_balancer *b, const drv_btask *t, drv_wref wi)
{
    const drv_bworker *w = &b->workers[wi];
    return drv_engine_predict_on(b, t, w->w.wclass) * (w->pace > 0 ? w->pace : 1.0f);
}

int drv_balancer_task_family(const drv_balancer *b, drv_tref t)
{
    return t < b->n_tasks && b->tasks[t].state != TASK_FREE ? b->tasks[t].family : 0;
}

void drv_balancer_family_learned(const drv_balancer *b, drv_wref wi, int family,
                                 double *class_speed, double *affinity)
{
    *class_speed = 1;
    *affinity = -1;
    if (wi >= b->n_workers || family < 0 || family >= 64)
        return;
    if (b->pred)
        *class_speed = drv_predictor_speed(b->pred, family, b->workers[wi].w.wclass);
    for (int k = 0; k < AFFINITY_SLOTS; k++)
        if (b->affinity[family].worker[k] == wi && b->affinity[family].score[k] > 0)
            *affinity = b->affinity[family].score[k];
}
