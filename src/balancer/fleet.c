/* fleet.c - workers, capability classes and the per-class orderings of available
 * workers.
 *
 * Workers with equal capabilities and speed form a class. A class keeps, for each
 * ordering a configured policy needs, a binary heap of its *available* workers (live,
 * healthy, not overloaded, holding fewer tests than their capacity). Placement reads
 * the top of a heap per eligible class, so it never scans the fleet. Every change to a
 * worker goes through drv_fleet_update(), which re-derives its capacity and fixes its
 * place in the heaps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer/engine.h"
#include "core/analyzer.h"

/* ---- orderings ---- */

/* How deep into a class's heap a candidate is looked for when the top does not fit: the
 * heap's top six levels, the whole class for classes of up to 64 workers. It was 15:
 * on the MetaCentrum trace (20 and 48 identical nodes) jobs waited hours in the queue
 * while a node further down had their cores free (composite wait p95 134,392 s, then
 * 104,028 s). On a fleet where most tests fit nowhere (bench/placement: 10,000 workers,
 * 1,000,000 queued) the look through 64 workers' records cost a fifth of the placement
 * speed in cache misses (1.10 -> 0.90 M/s, instructions unchanged): a fruitless look is
 * remembered per class and ordering (drv_wclass.miss) until it could find something. */
#define CANDIDATE_LOOKAHEAD 64
_Static_assert(CANDIDATE_LOOKAHEAD <= 64, "drv_fleet_candidate marks places in one uint64_t");

static bool worker_before(const drv_balancer *b, drv_ordering o, uint32_t x, uint32_t y)
{
    const drv_bworker *a = &b->workers[x], *c = &b->workers[y];
    switch (o) {
    case DRV_ORDER_LEAST_LOADED: {
        double la = a->w.predicted_load_s / a->w.slots, lc = c->w.predicted_load_s / c->w.slots;
        if (la != lc)
            return la < lc;
        uint32_t ha = a->w.running + a->w.assigned, hc = c->w.running + c->w.assigned;
        if (ha * c->w.slots != hc * a->w.slots)
            return (uint64_t)ha * c->w.slots < (uint64_t)hc * a->w.slots;
        if (a->pace != c->pace) /* the faster of its class (learning.c) */
            return a->pace < c->pace;
        break;
    }
    case DRV_ORDER_MOST_LOADED: {
        uint64_t fa = (uint64_t)(a->w.running + a->w.assigned) * c->cap_limit;
        uint64_t fc = (uint64_t)(c->w.running + c->w.assigned) * a->cap_limit;
        if (fa != fc)
            return fa > fc;
        break;
    }
    case DRV_ORDER_STRIDE: {
        int k = drv_wrr_compare(&a->wrr, &c->wrr);
        if (k)
            return k < 0;
        return x < y;
    }
    case DRV_ORDER_LRU:
    case DRV_ORDER_COUNT:
        break;
    }
    /* Ties go to the least recently assigned: round robin's own order. */
    int k = drv_rr_compare(&a->rr, &c->rr);
    if (k)
        return k < 0;
    return x < y;
}

static void heap_place(drv_balancer *b, drv_wclass *cl, drv_ordering o, uint32_t i, uint32_t w)
{
    /* A worker new to the places drv_fleet_candidate looks at was not looked at by its
     * remembered miss: a sifted worker's heap_pos is still where it started. */
    if (i < CANDIDATE_LOOKAHEAD && b->workers[w].heap_pos[o] >= CANDIDATE_LOOKAHEAD)
        cl->miss[o] = false;
    cl->heap[o][i] = w;
    b->workers[w].heap_pos[o] = i;
}

static void heap_up(drv_balancer *b, drv_wclass *cl, drv_ordering o, uint32_t i)
{
    uint32_t w = cl->heap[o][i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!worker_before(b, o, w, cl->heap[o][p]))
            break;
        heap_place(b, cl, o, i, cl->heap[o][p]);
        i = p;
    }
    heap_place(b, cl, o, i, w);
}

static void heap_down(drv_balancer *b, drv_wclass *cl, drv_ordering o, uint32_t i)
{
    uint32_t w = cl->heap[o][i], n = cl->n[o];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && worker_before(b, o, cl->heap[o][c + 1], cl->heap[o][c]))
            c++;
        if (!worker_before(b, o, cl->heap[o][c], w))
            break;
        heap_place(b, cl, o, i, cl->heap[o][c]);
        i = c;
    }
    heap_place(b, cl, o, i, w);
}

static void heap_insert(drv_balancer *b, drv_wclass *cl, drv_ordering o, uint32_t w)
{
    if (cl->n[o] == cl->cap) {
        uint32_t nc = cl->cap ? cl->cap * 2 : 8;
        for (int k = 0; k < DRV_ORDER_COUNT; k++)
            if (b->order_used[k])
                cl->heap[k] = drv_xrealloc(cl->heap[k], nc * sizeof(uint32_t));
        cl->cap = nc;
    }
    uint32_t i = cl->n[o]++;
    heap_place(b, cl, o, i, w);
    heap_up(b, cl, o, i);
}

static void heap_remove(drv_balancer *b, drv_wclass *cl, drv_ordering o, uint32_t w)
{
    uint32_t i = b->workers[w].heap_pos[o];
    b->workers[w].heap_pos[o] = POS_NONE;
    uint32_t last = cl->heap[o][--cl->n[o]];
    if (last == w)
        return;
    heap_place(b, cl, o, i, last);
    heap_up(b, cl, o, i);
    heap_down(b, cl, o, b->workers[last].heap_pos[o]);
}

/* ---- capacity ---- */

bool drv_fleet_worker_available(const drv_bworker *w)
{
    return w->live && w->w.health == DRV_HEALTH_OK && !w->overloaded &&
           w->w.running + w->w.assigned < w->cap_limit;
}

bool drv_fleet_fits(const drv_balancer *b, const drv_bworker *w, const drv_requirements *req)
{
    (void)b;
    const drv_capabilities *c = &w->w.caps;
    return drv_fleet_worker_available(w) && w->w.used_cpu + req->cpu_cores <= c->cpu_cores &&
           w->w.used_gpu + req->gpu_count <= c->gpu_count &&
           w->w.used_memory_mb + req->memory_mb <= c->memory_mb;
}

/* Tests a worker may hold beyond its admitted slots, so it never waits for a round
 * trip: about batch_target_s of work, at most prefetch_max; one until it has a history.
 * The work is the predicted run of what it got, or what its tests really took when that
 * is less and at least DRV_PREFETCH_MIN_RUNS of them were measured: tests queued before
 * anything was learned keep the first guess, and a worker finishing them far faster
 * should not wait a round trip for each, but one `true` is no evidence of that. */
static uint32_t prefetch(const drv_balancer *b, const drv_bworker *w)
{
    uint32_t max = b->cfg.settings.prefetch_max;
    double per_test = w->avg_pred_s;
    if (w->runs_n >= DRV_PREFETCH_MIN_RUNS && w->avg_run_s > 0 && w->avg_run_s < per_test)
        per_test = w->avg_run_s;
    if (per_test <= 0)
        return max < 1 ? max : 1;
    double n = floor(b->cfg.settings.batch_target_s / per_test);
    return n >= max ? max : (uint32_t)n;
}

/* ---- the warming heap: workers by when their admission next grows ---- */

static bool warm_before(const drv_balancer *b, uint32_t x, uint32_t y)
{
    double dx = b->workers[x].warm_due, dy = b->workers[y].warm_due;
    return dx < dy || (dx == dy && x < y);
}

static void warm_place(drv_balancer *b, uint32_t i, uint32_t w)
{
    b->warm_heap[i] = w;
    b->workers[w].warm_pos = i;
}

static void warm_sift(drv_balancer *b, uint32_t i)
{
    uint32_t w = b->warm_heap[i];
    while (i > 0 && warm_before(b, w, b->warm_heap[(i - 1) / 2])) {
        warm_place(b, i, b->warm_heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= b->n_warm)
            break;
        if (c + 1 < b->n_warm && warm_before(b, b->warm_heap[c + 1], b->warm_heap[c]))
            c++;
        if (!warm_before(b, b->warm_heap[c], w))
            break;
        warm_place(b, i, b->warm_heap[c]);
        i = c;
    }
    warm_place(b, i, w);
}

/* Puts w in the warming heap at due (INFINITY: out of it). */
static void warm_set(drv_balancer *b, drv_wref wi, double due)
{
    drv_bworker *w = &b->workers[wi];
    if (due == w->warm_due)
        return;
    w->warm_due = due;
    if (due == INFINITY) {
        uint32_t i = w->warm_pos;
        w->warm_pos = POS_NONE;
        uint32_t last = b->warm_heap[--b->n_warm];
        if (last != wi) {
            warm_place(b, i, last);
            warm_sift(b, i);
        }
        return;
    }
    if (w->warm_pos == POS_NONE) {
        if (b->n_warm == b->cap_warm) {
            b->cap_warm = b->cap_warm ? b->cap_warm * 2 : 16;
            b->warm_heap = drv_xrealloc(b->warm_heap, b->cap_warm * sizeof(uint32_t));
        }
        warm_place(b, b->n_warm++, wi);
    }
    warm_sift(b, w->warm_pos);
}

void drv_fleet_victim_update(drv_balancer *b, drv_wref wi)
{
    const drv_bworker *w = &b->workers[wi];
    bool victim = w->live && w->w.assigned > 0 && w->w.running + w->w.assigned > w->w.slots;
    uint32_t word = wi >> 6;
    if (word >= b->victim_words) {
        if (!victim)
            return;
        uint32_t words = b->victim_words ? b->victim_words : 4;
        while (words <= word)
            words *= 2;
        b->victims = drv_xrealloc(b->victims, words * sizeof(uint64_t));
        memset(b->victims + b->victim_words, 0, (words - b->victim_words) * sizeof(uint64_t));
        b->victim_words = words;
    }
    if (drv_bit_get(b->victims, wi) != victim) {
        drv_bit_set(b->victims, wi, victim);
        b->n_victims += victim ? 1 : -1;
    }
}

void drv_fleet_advance(drv_balancer *b, double now)
{
    /* Each update moves the top's due past now or takes it out of the heap. */
    while (b->n_warm > 0 && b->workers[b->warm_heap[0]].warm_due <= now) {
        drv_wref wi = b->warm_heap[0];
        drv_thermal_tick(&b->workers[wi].w.thermal, &b->cfg.settings.thermal, now);
        drv_fleet_update(b, wi, now);
    }
}

void drv_fleet_update(drv_balancer *b, drv_wref wi, double now)
{
    drv_bworker *w = &b->workers[wi];
    drv_wclass *cl = &b->classes[w->w.wclass];
    const drv_thermal_config *tc = &b->cfg.settings.thermal;
    uint32_t admitted = drv_thermal_admitted(&w->w.thermal, tc, w->w.slots, now);
    uint32_t old_limit = w->cap_limit;
    bool was_avail = w->heap_pos[DRV_ORDER_LEAST_LOADED] != POS_NONE; /* always in use */
    w->cap_limit = admitted + prefetch(b, w);
    /* A cold worker's admission grows with work, not time: it stays out of the heap. */
    warm_set(b, wi,
             w->live && admitted < w->w.slots
                 ? drv_thermal_next_growth(&w->w.thermal, tc, w->w.slots, now)
                 : INFINITY);
    drv_fleet_victim_update(b, wi);
    bool avail = drv_fleet_worker_available(w);
    for (int o = 0; o < DRV_ORDER_COUNT; o++) {
        if (!b->order_used[o])
            continue;
        bool in = w->heap_pos[o] != POS_NONE;
        if (avail && !in) {
            heap_insert(b, cl, (drv_ordering)o, wi);
        } else if (!avail && in) {
            heap_remove(b, cl, (drv_ordering)o, wi);
        } else if (in) {
            heap_up(b, cl, (drv_ordering)o, w->heap_pos[o]);
            heap_down(b, cl, (drv_ordering)o, w->heap_pos[o]);
        }
    }
    uint32_t any = 0;
    for (int o = 0; o < DRV_ORDER_COUNT; o++)
        any |= cl->n[o];
    drv_bit_set(b->avail, w->w.wclass, any != 0);
    /* Fresh only when it can take more than before: it became available, its limit
     * grew or a test released what it held. A heartbeat that changes nothing must not
     * make the next placement look at every worker again. */
    bool grew = !was_avail || w->cap_limit > old_limit || w->freed;
    w->freed = false;
    if (avail && grew)
        drv_fleet_class_grew(b, w->w.wclass);
    if (avail && grew && !w->in_fresh) {
        if (b->n_fresh == b->cap_fresh) {
            b->cap_fresh = b->cap_fresh ? b->cap_fresh * 2 : 64;
            b->fresh = drv_xrealloc(b->fresh, b->cap_fresh * sizeof(uint32_t));
        }
        b->fresh[b->n_fresh++] = wi;
        w->in_fresh = true;
    }
}

void drv_fleet_class_grew(drv_balancer *b, uint32_t c)
{
    memset(b->classes[c].miss, 0, sizeof b->classes[c].miss);
}

uint32_t drv_fleet_candidate(const drv_balancer *b, uint32_t c, drv_ordering o,
                             const drv_requirements *req)
{
    /* b is const to its callers (a choice changes nothing they see); the class's miss
     * is a cache of this function's own answer, written here. */
    drv_wclass *cl = &b->classes[c];
    if (cl->n[o] == 0)
        return POS_NONE;
    uint32_t top = cl->heap[o][0];
    if (drv_fleet_fits(b, &b->workers[top], req))
        return top;
    if (cl->miss[o] && req->cpu_cores >= cl->miss_cpu[o] && req->gpu_count >= cl->miss_gpu[o] &&
        req->memory_mb >= cl->miss_memory_mb[o])
        return POS_NONE; /* what asked less found nothing in these places, and none grew */
    /* The best by the ordering lacks cores, memory or GPUs for this test. Look a little
     * further (the heap's top levels hold the next best) but not through the class: a
     * placement must not cost in proportion to the fleet. A worker deeper down that fits
     * is found when its capacity grows (it becomes fresh and is offered as a hint). */
    uint32_t best = POS_NONE;
    uint32_t n = cl->n[o] < CANDIDATE_LOOKAHEAD ? cl->n[o] : CANDIDATE_LOOKAHEAD;
    /* The best that fits among those places, reading fewer workers: in a heap every worker
     * comes after its parent, so below one that fits, or one after the best so far, none
     * can be better (bit i of `after`: place i and all below it come after the best). */
    uint64_t after = 0;
    for (uint32_t i = 1; i < n; i++) {
        if (after >> ((i - 1) / 2) & 1) {
            after |= (uint64_t)1 << i;
            continue;
        }
        uint32_t w = cl->heap[o][i];
        if (best != POS_NONE && worker_before(b, o, best, w)) {
            after |= (uint64_t)1 << i;
            continue;
        }
        if (drv_fleet_fits(b, &b->workers[w], req)) {
            best = w;
            after |= (uint64_t)1 << i;
        }
    }
    /* Remembers the least request that found nothing (a larger one is answered by it). */
    if (best == POS_NONE &&
        (!cl->miss[o] || (req->cpu_cores <= cl->miss_cpu[o] && req->gpu_count <= cl->miss_gpu[o] &&
                          req->memory_mb <= cl->miss_memory_mb[o]))) {
        cl->miss[o] = true;
        cl->miss_cpu[o] = req->cpu_cores;
        cl->miss_gpu[o] = req->gpu_count;
        cl->miss_memory_mb[o] = req->memory_mb;
    }
    return best;
}

uint32_t drv_fleet_candidate_except(const drv_balancer *b, uint32_t c, drv_ordering o,
                                    const drv_requirements *req, drv_wref except)
{
    const drv_wclass *cl = &b->classes[c];
    uint32_t best = POS_NONE;
    uint32_t n = cl->n[o] < CANDIDATE_LOOKAHEAD ? cl->n[o] : CANDIDATE_LOOKAHEAD;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t w = cl->heap[o][i];
        if (w != except && drv_fleet_fits(b, &b->workers[w], req) &&
            (best == POS_NONE || worker_before(b, o, w, best)))
            best = w;
    }
    return best;
}

/* ---- classes ---- */

static const int backend_preference[] = {DRV_TAG_CUDA,  DRV_TAG_ROCM,     DRV_TAG_MPS,
                                         DRV_TAG_QNN,   DRV_TAG_OPENVINO, DRV_TAG_WEBGPU,
                                         DRV_TAG_WEBNN, DRV_TAG_CPU};

static int primary_backend(const drv_capabilities *c)
{
    for (size_t i = 0; i < sizeof backend_preference / sizeof *backend_preference; i++)
        if (drv_tagset_has(&c->tags, backend_preference[i]))
            return backend_preference[i];
    return DRV_TAG_CPU;
}

/* How much a class offers that few others do: GPUs count most, then special back-ends
 * and browsers, then labels. Used by the priority policy to keep rich workers for
 * urgent tests. */
static float richness(const drv_capabilities *c)
{
    float r = 0;
    if (c->gpu_count > 0)
        r += 0.5f;
    int special = 0;
    for (int t = DRV_TAG_CUDA; t <= DRV_TAG_LAST_BROWSER; t++)
        special += drv_tagset_has(&c->tags, t);
    r += 0.3f * (special > 3 ? 1.0f : special / 3.0f);
    int all = drv_tagset_count(&c->tags);
    r += 0.2f * (all > 8 ? 1.0f : all / 8.0f);
    return r;
}

/* The families whose preferred back-ends (other than cpu) the class offers, and those
 * whose preferred browser it has (analyzer_table.c), as bitsets over family ids. */
static void preferred_families(const drv_capabilities *c, uint64_t *hw, uint64_t *browser)
{
    *hw = *browser = 0;
    for (int f = DRV_FAMILY_UNKNOWN + 1; f < drv_family_count() && f < 64; f++) {
        const drv_family_info *info = drv_family_get(f);
        for (int k = 0; k < DRV_FAMILY_BACKENDS_MAX && info->backends[k] >= 0; k++)
            if (info->backends[k] != DRV_TAG_CPU && drv_tagset_has(&c->tags, info->backends[k]))
                *hw |= (uint64_t)1 << f;
        if (info->browser >= 0 && drv_tagset_has(&c->tags, info->browser))
            *browser |= (uint64_t)1 << f;
    }
}

static void grow_class_words(drv_balancer *b, uint32_t words)
{
    for (uint32_t s = 0; s < b->n_shapes; s++) {
        b->shapes[s].elig = drv_xrealloc(b->shapes[s].elig, words * sizeof(uint64_t));
        memset(b->shapes[s].elig + b->class_words, 0, (words - b->class_words) * sizeof(uint64_t));
    }
    b->avail = drv_xrealloc(b->avail, words * sizeof(uint64_t));
    memset(b->avail + b->class_words, 0, (words - b->class_words) * sizeof(uint64_t));
    b->class_words = words;
}

static uint32_t class_intern(drv_balancer *b, const drv_capabilities *caps, float speed)
{
    uint64_t h =
        drv_capabilities_hash(caps) ^ ((uint64_t)(speed * 1000.0f) * 0x9E3779B97F4A7C15ULL);
    for (uint32_t i = 0; i < b->n_classes; i++)
        if (b->classes[i].hash == h && b->classes[i].speed == speed &&
            drv_capabilities_equal(&b->classes[i].caps, caps))
            return i;
    if (b->n_classes == b->cap_classes) {
        uint32_t nc = b->cap_classes ? b->cap_classes * 2 : 16;
        b->classes = drv_xrealloc(b->classes, nc * sizeof *b->classes);
        b->speed = drv_xrealloc(b->speed, (size_t)nc * 64 * sizeof(float));
        b->class_affinity = drv_xrealloc(b->class_affinity, (size_t)nc * 64 * sizeof(float));
        b->cap_classes = nc;
        if ((nc + 63) / 64 > b->class_words)
            grow_class_words(b, (nc + 63) / 64);
    }
    uint32_t id = b->n_classes++;
    drv_wclass *cl = &b->classes[id];
    memset(cl, 0, sizeof *cl);
    cl->caps = *caps;
    cl->speed = speed;
    cl->hash = h;
    cl->backend = primary_backend(caps);
    cl->richness = richness(caps);
    drv_tagset_clear(&cl->special_tags);
    for (int t = DRV_TAG_CUDA; t <= DRV_TAG_LAST_BROWSER; t++)
        if (drv_tagset_has(&caps->tags, t))
            drv_tagset_add(&cl->special_tags, t);
    cl->special = !drv_tagset_empty(&cl->special_tags);
    preferred_families(caps, &cl->hw_families, &cl->browser_families);
    if (b->pred) {
        drv_predictor_set_class_speed(b->pred, id, speed);
        drv_speed_prior_class(b, id, speed);
    }
    for (int f = 0; f < 64; f++) {
        b->speed[(size_t)id * 64 + f] =
            b->pred ? (float)drv_predictor_speed(b->pred, f, id) : speed;
        b->class_affinity[(size_t)id * 64 + f] = 0;
    }
    for (uint32_t s = 0; s < b->n_shapes; s++)
        drv_bit_set(b->shapes[s].elig, id,
                    drv_requirements_met(drv_queue_shape_req(b->queue, s), caps));
    drv_learning_class_added(b, id);
    return id;
}

void drv_fleet_fastest_update(drv_balancer *b, int family)
{
    float best = 0;
    for (uint32_t c = 0; c < b->n_classes; c++) {
        float sp = b->speed[(size_t)c * 64 + family];
        if (b->classes[c].members && sp > best)
            best = sp;
    }
    b->fastest[family] = best;
}

/* Adds delta reachable workers of class c to every shape that class can run. A worker
 * is reachable from registration to removal: a lost worker may reconnect, so losing it
 * is no verdict on the tests only it can run. A shape that no worker can run any more
 * is unblocked, so that the next placement round looks at it again (and reports its
 * tests unschedulable once the grace has passed). */
static void shapes_reachable(drv_balancer *b, uint32_t c, int delta)
{
    b->classes[c].reachable += delta;
    b->n_reachable += delta;
    for (uint32_t s = 0; s < b->n_shapes; s++)
        if (drv_bit_get(b->shapes[s].elig, c)) {
            b->shapes[s].reachable += delta;
            if (b->shapes[s].reachable == 0) {
                b->shapes[s].first_blocked = -1;
                drv_queue_shape_unblock(b->queue, s);
            }
        }
}

void drv_fleet_shape_added(drv_balancer *b, uint32_t s)
{
    if (s >= b->cap_shapes) {
        uint32_t nc = b->cap_shapes ? b->cap_shapes * 2 : 16;
        while (nc <= s)
            nc *= 2;
        b->shapes = drv_xrealloc(b->shapes, nc * sizeof *b->shapes);
        b->cap_shapes = nc;
    }
    drv_shape_info *si = &b->shapes[s];
    si->elig = drv_xcalloc(b->class_words ? b->class_words : 1, sizeof(uint64_t));
    si->reachable = 0;
    si->first_blocked = -1;
    const drv_requirements *req = drv_queue_shape_req(b->queue, s);
    for (uint32_t c = 0; c < b->n_classes; c++)
        if (drv_requirements_met(req, &b->classes[c].caps)) {
            drv_bit_set(si->elig, c, true);
            si->reachable += b->classes[c].reachable;
        }
    b->n_shapes = s + 1;
}

void drv_fleet_free(drv_balancer *b)
{
    for (uint32_t c = 0; c < b->n_classes; c++)
        for (int o = 0; o < DRV_ORDER_COUNT; o++)
            free(b->classes[c].heap[o]);
    for (uint32_t s = 0; s < b->n_shapes; s++)
        free(b->shapes[s].elig);
    free(b->classes);
    free(b->speed);
    drv_learning_free(b);
    free(b->class_affinity);
    free(b->shapes);
    free(b->avail);
    free(b->workers);
    free(b->name_index);
    free(b->fresh);
    free(b->warm_heap);
    free(b->victims);
}

/* ---- the public fleet calls ---- */

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void name_index_insert(drv_balancer *b, uint32_t wi)
{
    uint32_t mask = b->name_cap - 1;
    uint32_t i = (uint32_t)name_hash(b->workers[wi].w.name) & mask;
    while (b->name_index[i])
        i = (i + 1) & mask;
    b->name_index[i] = wi + 1;
}

static void name_index_rebuild(drv_balancer *b, uint32_t cap)
{
    free(b->name_index);
    b->name_cap = cap;
    b->name_index = drv_xcalloc(cap, sizeof(uint32_t));
    for (uint32_t i = 0; i < b->n_workers; i++)
        if (b->workers[i].live)
            name_index_insert(b, i);
}

int64_t drv_balancer_worker_find(const drv_balancer *b, const char *name)
{
    if (!b->name_cap)
        return -1;
    uint32_t mask = b->name_cap - 1;
    for (uint32_t i = (uint32_t)name_hash(name) & mask; b->name_index[i]; i = (i + 1) & mask) {
        uint32_t wi = b->name_index[i] - 1;
        if (b->workers[wi].live && strcmp(b->workers[wi].w.name, name) == 0)
            return wi;
    }
    return -1;
}

int64_t drv_balancer_worker_add(drv_balancer *b, const drv_worker_spec *spec, double now,
                                drv_error *err)
{
    if (!spec->name || !spec->name[0])
        return drv_error_set(err, "worker name: must not be empty");
    if (strlen(spec->name) >= DRV_WORKER_NAME_MAX)
        return drv_error_set(err, "worker name \"%.40s...\": longer than %d bytes", spec->name,
                             DRV_WORKER_NAME_MAX - 1);
    if (drv_balancer_worker_find(b, spec->name) >= 0)
        return drv_error_set(err, "worker name \"%s\": already registered", spec->name);
    if (!(spec->speed >= 0) || spec->speed > 1000)
        return drv_error_set(err, "worker \"%s\" speed: must be 0..1000, got %g", spec->name,
                             (double)spec->speed);
    if (b->n_workers == b->cap_workers) {
        b->cap_workers = b->cap_workers ? b->cap_workers * 2 : 64;
        b->workers = drv_xrealloc(b->workers, b->cap_workers * sizeof *b->workers);
    }
    uint32_t wi = b->n_workers++;
    drv_bworker *w = &b->workers[wi];
    memset(w, 0, sizeof *w);
    strcpy(w->w.name, spec->name);
    w->w.caps = spec->caps;
    w->w.speed = spec->speed > 0 ? spec->speed : 1.0f;
    w->w.slots = spec->slots ? spec->slots : (spec->caps.cpu_cores ? spec->caps.cpu_cores : 1);
    w->w.health = DRV_HEALTH_OK;
    w->w.joined_at = now;
    drv_thermal_init(&w->w.thermal, now);
    for (int o = 0; o < DRV_ORDER_COUNT; o++)
        w->heap_pos[o] = POS_NONE;
    w->warm_pos = POS_NONE;
    w->warm_due = INFINITY;
    w->held = DRV_REF_NONE;
    w->live = true;
    drv_policies_worker_added(b, wi);
    w->w.wclass = class_intern(b, &w->w.caps, w->w.speed);
    drv_learning_worker_added(b, wi);
    b->classes[w->w.wclass].members++;
    b->n_live_workers++;
    for (int f = 0; f < 64; f++)
        if (b->speed[(size_t)w->w.wclass * 64 + f] > b->fastest[f])
            b->fastest[f] = b->speed[(size_t)w->w.wclass * 64 + f];
    shapes_reachable(b, w->w.wclass, 1);
    if ((uint64_t)b->n_workers * 2 > b->name_cap)
        name_index_rebuild(b, b->name_cap ? b->name_cap * 2 : 128);
    else
        name_index_insert(b, wi);
    drv_fleet_update(b, wi, now);
    return wi;
}

void drv_balancer_worker_back(drv_balancer *b, drv_wref wi, double now)
{
    drv_bworker *w = &b->workers[wi];
    if (!w->live || w->w.health != DRV_HEALTH_LOST)
        return;
    w->w.health = DRV_HEALTH_OK;
    w->w.health_reason[0] = 0;
    drv_fleet_update(b, wi, now);
}

/* Called by drv_balancer_worker_lost() once the worker's tests are released. */
void drv_fleet_mark_lost(drv_balancer *b, drv_wref wi, double now)
{
    drv_bworker *w = &b->workers[wi];
    if (w->w.health == DRV_HEALTH_LOST)
        return;
    w->w.health = DRV_HEALTH_LOST;
    snprintf(w->w.health_reason, sizeof w->w.health_reason, "lost at %.1f s", now);
    drv_fleet_update(b, wi, now);
}

int drv_balancer_worker_remove(drv_balancer *b, drv_wref wi, drv_error *err)
{
    if (wi >= b->n_workers || !b->workers[wi].live)
        return drv_error_set(err, "worker %u: not registered", wi);
    drv_bworker *w = &b->workers[wi];
    if (w->held != DRV_REF_NONE)
        return drv_error_set(err, "worker \"%s\": still holds %u tests", w->w.name,
                             w->w.running + w->w.assigned);
    shapes_reachable(b, w->w.wclass, -1);
    w->live = false;
    drv_fleet_update(b, wi, w->w.joined_at);
    b->classes[w->w.wclass].members--;
    b->n_live_workers--;
    drv_policies_worker_removed(b, wi);
    name_index_rebuild(b, b->name_cap);
    return 0;
}

void drv_balancer_worker_heartbeat(drv_balancer *b, drv_wref wi, double now, double load,
                                   double temperature_c, bool throttled, bool overloaded)
{
    drv_thermal_signal sig = DRV_THERMAL_SIGNAL_UNKNOWN;
    sig.load = load;
    sig.temperature_c = temperature_c;
    sig.throttled = throttled;
    drv_balancer_worker_signal(b, wi, now, &sig, overloaded);
}

void drv_balancer_worker_signal(drv_balancer *b, drv_wref wi, double now,
                                const drv_thermal_signal *measured, bool overloaded)
{
    drv_bworker *w = &b->workers[wi];
    if (!w->live)
        return;
    drv_thermal_signal sig = measured ? *measured : DRV_THERMAL_SIGNAL_UNKNOWN;
    sig.busy = w->w.running + w->w.assigned > 0;
    w->w.reported_load = (float)(sig.load > 0 ? sig.load : 0);
    w->overloaded = overloaded;
    drv_thermal_observe(&w->w.thermal, &b->cfg.settings.thermal, now, &sig);
    if (w->w.health == DRV_HEALTH_OK && overloaded)
        w->w.health = DRV_HEALTH_OVERLOADED;
    else if (w->w.health == DRV_HEALTH_OVERLOADED && !overloaded)
        w->w.health = DRV_HEALTH_OK;
    drv_fleet_update(b, wi, now);
}

void drv_balancer_worker_set_health(drv_balancer *b, drv_wref wi, drv_health h, const char *reason,
                                    double now)
{
    drv_bworker *w = &b->workers[wi];
    if (!w->live || h == DRV_HEALTH_LOST || w->w.health == DRV_HEALTH_LOST)
        return; /* lost and back are reported through worker_lost() and worker_back() */
    w->w.health = h;
    if (h == DRV_HEALTH_OK) {
        w->overloaded = false;
        w->w.history.infra_failure_run = 0;
    }
    snprintf(w->w.health_reason, sizeof w->w.health_reason, "%s", reason ? reason : "");
    drv_fleet_update(b, wi, now);
}

const drv_worker *drv_balancer_worker(const drv_balancer *b, drv_wref wi)
{
    return wi < b->n_workers ? &b->workers[wi].w : NULL;
}

uint32_t drv_balancer_worker_count(const drv_balancer *b)
{
    return b->n_live_workers;
}

uint32_t drv_balancer_worker_refs(const drv_balancer *b)
{
    return b->n_workers;
}
