/* metrics.c - what a simulated run is measured by: the lower bound on its makespan,
 * percentiles of waiting, bounded slowdown, utilization per worker kind; and the index
 * of worker classes and requirement shapes these (and the baselines) are computed on.
 *
 * Why the lower bound is what it is (see drv_sim_lower_bound in sim.h): a worker of
 * speed s runs a test of reference duration d and family f in d / (s x fs_f) seconds of
 * one slot, where fs_f is its hidden speed for the family. Over a makespan T its slots
 * give slots x T slot-seconds, that is slots x s x T "speed-seconds"; a test placed on it
 * consumes d / fs_f of them. Dividing each test's d by the best fs_f any eligible worker
 * offers never overstates what it consumes, so sum(d / best_fs) <= T x sum(slots x s)
 * holds for every schedule. The same holds on any subset of workers for the tests that
 * can only run there, and per reserved resource (cores, GPUs, memory) instead of slots.
 * Treating every worker as present from 0 to T only raises capacity, so joins, leaves
 * and crashes keep the bound valid (it gets looser, never wrong). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/task.h"
#include "sim/sim.h"

/* ---- the index ---------------------------------------------------------------------- */

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

/* Hash of what makes two workers the same class. */
static uint64_t worker_hash(const drv_sim_worker *sw)
{
    uint64_t h = drv_capabilities_hash(&sw->caps);
    uint32_t bits;
    memcpy(&bits, &sw->speed, sizeof bits);
    h = mix64(h ^ bits);
    for (int f = 0; f < DRV_FAMILY_MAX; f++) {
        memcpy(&bits, &sw->family_speed[f], sizeof bits);
        h = mix64(h + bits + (uint64_t)f);
    }
    return h;
}

static bool same_class(const drv_sim_worker *a, const drv_sim_worker *b)
{
    return a->speed == b->speed && drv_capabilities_equal(&a->caps, &b->caps) &&
           memcmp(a->family_speed, b->family_speed, sizeof a->family_speed) == 0;
}

/* An open-addressing table of uint32 ids (stored + 1) keyed by 64-bit hashes. */
typedef struct id_table {
    uint32_t *slot;
    uint64_t *hash;
    size_t cap;
} id_table;

static void table_init(id_table *t, size_t expect)
{
    t->cap = 64;
    while (t->cap < expect * 2)
        t->cap *= 2;
    t->slot = drv_xcalloc(t->cap, sizeof *t->slot);
    t->hash = drv_xcalloc(t->cap, sizeof *t->hash);
}

static void table_free(id_table *t)
{
    free(t->slot);
    free(t->hash);
}

void drv_sim_index_build(drv_sim_index *x, const drv_workload *w)
{
    memset(x, 0, sizeof *x);
    /* classes (few: a table sized for the workers is plenty and never fills) */
    id_table ct;
    table_init(&ct, w->n_workers + 1);
    x->class_of = drv_xcalloc(w->n_workers + 1, sizeof *x->class_of);
    x->class_first = drv_xcalloc(w->n_workers + 1, sizeof *x->class_first);
    for (size_t i = 0; i < w->n_workers; i++) {
        uint64_t h = worker_hash(&w->workers[i]);
        size_t p = h & (ct.cap - 1);
        for (;; p = (p + 1) & (ct.cap - 1)) {
            if (ct.slot[p] == 0) {
                ct.slot[p] = (uint32_t)x->n_classes + 1;
                ct.hash[p] = h;
                x->class_first[x->n_classes++] = (uint32_t)i;
                break;
            }
            uint32_t c = ct.slot[p] - 1;
            if (ct.hash[p] == h && same_class(&w->workers[x->class_first[c]], &w->workers[i]))
                break;
        }
        x->class_of[i] = ct.slot[p] - 1;
    }
    table_free(&ct);

    /* shapes */
    id_table st;
    size_t cap_shapes = 64;
    table_init(&st, 1024);
    size_t used = 0;
    x->shape_of = drv_xcalloc(w->n_tests + 1, sizeof *x->shape_of);
    x->shape_first = drv_xmalloc(cap_shapes * sizeof *x->shape_first);
    for (size_t i = 0; i < w->n_tests; i++) {
        const drv_requirements *req = &w->tests[i].req;
        uint64_t h = drv_requirements_hash(req);
        size_t p = h & (st.cap - 1);
        for (;; p = (p + 1) & (st.cap - 1)) {
            if (st.slot[p] == 0) {
                if (x->n_shapes == cap_shapes) {
                    cap_shapes *= 2;
                    x->shape_first =
                        drv_xrealloc(x->shape_first, cap_shapes * sizeof *x->shape_first);
                }
                st.slot[p] = (uint32_t)x->n_shapes + 1;
                st.hash[p] = h;
                x->shape_first[x->n_shapes++] = (uint32_t)i;
                used++;
                break;
            }
            uint32_t s = st.slot[p] - 1;
            if (st.hash[p] == h && drv_requirements_equal(&w->tests[x->shape_first[s]].req, req))
                break;
        }
        x->shape_of[i] = st.slot[p] - 1;
        if (used * 2 >= st.cap) { /* grow: rehash the shapes' representatives */
            id_table bigger;
            table_init(&bigger, st.cap);
            for (size_t s = 0; s < x->n_shapes; s++) {
                uint64_t hs = drv_requirements_hash(&w->tests[x->shape_first[s]].req);
                size_t q = hs & (bigger.cap - 1);
                while (bigger.slot[q])
                    q = (q + 1) & (bigger.cap - 1);
                bigger.slot[q] = (uint32_t)s + 1;
                bigger.hash[q] = hs;
            }
            table_free(&st);
            st = bigger;
        }
    }
    table_free(&st);

    /* eligibility of each shape on each class */
    x->words = (x->n_classes + 63) / 64;
    if (x->words == 0)
        x->words = 1;
    x->elig = drv_xcalloc(x->n_shapes * x->words + 1, sizeof *x->elig);
    x->elig_start = drv_xcalloc(x->n_shapes + 1, sizeof *x->elig_start);
    size_t n_list = 0, cap_list = 64;
    x->elig_list = drv_xmalloc(cap_list * sizeof *x->elig_list);
    for (size_t s = 0; s < x->n_shapes; s++) {
        x->elig_start[s] = (uint32_t)n_list;
        const drv_requirements *req = &w->tests[x->shape_first[s]].req;
        for (size_t c = 0; c < x->n_classes; c++) {
            if (!drv_requirements_met(req, &w->workers[x->class_first[c]].caps))
                continue;
            x->elig[s * x->words + c / 64] |= (uint64_t)1 << (c % 64);
            if (n_list == cap_list) {
                cap_list *= 2;
                x->elig_list = drv_xrealloc(x->elig_list, cap_list * sizeof *x->elig_list);
            }
            x->elig_list[n_list++] = (uint32_t)c;
        }
    }
    x->elig_start[x->n_shapes] = (uint32_t)n_list;
}

void drv_sim_index_free(drv_sim_index *x)
{
    free(x->class_of);
    free(x->class_first);
    free(x->shape_of);
    free(x->shape_first);
    free(x->elig);
    free(x->elig_list);
    free(x->elig_start);
    memset(x, 0, sizeof *x);
}

size_t drv_sim_eligible(const drv_workload *w, bool *eligible)
{
    drv_sim_index x;
    drv_sim_index_build(&x, w);
    size_t n = 0;
    for (size_t i = 0; i < w->n_tests; i++) {
        uint32_t s = x.shape_of[i];
        eligible[i] = x.elig_start[s + 1] > x.elig_start[s];
        n += eligible[i];
    }
    drv_sim_index_free(&x);
    return n;
}

/* ---- the lower bound ---------------------------------------------------------------- */

/* The resources a bound is computed over: slots, cores, GPUs, memory. */
enum { RES_SLOTS = 0, RES_CPU, RES_GPU, RES_MEM, RES_COUNT };

static double worker_speed(const drv_sim_worker *sw)
{
    return sw->speed > 0 ? sw->speed : 1.0;
}

static double worker_family_speed(const drv_sim_worker *sw, int f)
{
    float fs = (f >= 0 && f < DRV_FAMILY_MAX) ? sw->family_speed[f] : 0;
    return fs > 0 ? fs : 1.0;
}

static int test_family(const drv_sim_test *t)
{
    return t->family > 0 && t->family < DRV_FAMILY_MAX ? t->family : 0;
}

/* An arrival time with its test index, for sorting. */
typedef struct arrival_key {
    double at;
    uint32_t i;
} arrival_key;

static int by_arrival(const void *a, const void *b)
{
    const arrival_key *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

void drv_sim_arrival_order(const drv_workload *w, uint32_t *order)
{
    arrival_key *k = drv_xmalloc((w->n_tests + 1) * sizeof *k);
    for (size_t i = 0; i < w->n_tests; i++)
        k[i] = (arrival_key){.at = w->tests[i].arrival_s, .i = (uint32_t)i};
    qsort(k, w->n_tests, sizeof *k, by_arrival);
    for (size_t i = 0; i < w->n_tests; i++)
        order[i] = k[i].i;
    free(k);
}

/* The sets of classes the bound is taken over: every shape's eligibility set, and the
 * unions of those that overlap, up to SETS_MAX sets. A union matters: tests that can run
 * on {A, B} and tests that can run on {A, C} share A's capacity, so together they need
 * (their work) / (A + B + C) however they are split, which neither set alone says (three
 * browser kinds, webgpu tests on two, webnn tests on two: the bound was 7 % low on
 * second_run seed 6). A union of disjoint sets is never tighter than its parts. Returns
 * n_sets bitsets of x->words words each (the caller frees them). */
#define SETS_MAX 512
static uint64_t *class_sets(const drv_sim_index *x, size_t *n_sets)
{
    size_t wd = x->words, n = 0;
    uint64_t *v = drv_xcalloc(SETS_MAX * (wd ? wd : 1), sizeof *v);
    uint64_t *u = drv_xcalloc(wd ? wd : 1, sizeof *u);
    for (size_t pass = 0; pass < 2; pass++) {
        /* pass 0: the shapes' own sets; pass 1: unions of every set with an overlapping
         * shape set, the new ones joining the scan */
        for (size_t i = 0; i < (pass ? n : 1); i++) {
            for (size_t s = 0; s < x->n_shapes && n < SETS_MAX; s++) {
                if (x->elig_start[s + 1] == x->elig_start[s])
                    continue;
                const uint64_t *es = &x->elig[s * wd];
                bool overlap = pass == 0;
                for (size_t k = 0; k < wd; k++) {
                    u[k] = pass ? v[i * wd + k] | es[k] : es[k];
                    overlap = overlap || (pass && (v[i * wd + k] & es[k]) != 0);
                }
                if (!overlap)
                    continue;
                bool seen = false;
                for (size_t j = 0; j < n && !seen; j++)
                    seen = memcmp(&v[j * wd], u, wd * sizeof *u) == 0;
                if (!seen)
                    memcpy(&v[n++ * wd], u, wd * sizeof *u);
            }
        }
    }
    free(u);
    *n_sets = n;
    return v;
}

/* The fluid program over slots (drv_sim_fluid_makespan): one group per (eligibility
 * set, family) with its tests' reference work, each class at its own family speed, so a
 * family is charged on the class it is relatively best at rather than at its best speed
 * anywhere. cap: per class, RES_COUNT capacities (slots first). Returns 0 when the
 * program is too big to be worth solving (GROUPS_MAX groups) or has no work. */
#define GROUPS_MAX 2048
static double fluid_bound(const drv_workload *w, const drv_sim_index *x, const double *dur,
                          const double *cap)
{
    size_t nc = x->n_classes, ns = x->n_shapes, wd = x->words;
    /* per shape: the first shape with the same eligibility set */
    uint32_t *set_of = drv_xmalloc((ns + 1) * sizeof *set_of);
    for (size_t s = 0; s < ns; s++) {
        set_of[s] = (uint32_t)s;
        for (size_t r = 0; r < s; r++) {
            if (set_of[r] == r &&
                memcmp(&x->elig[r * wd], &x->elig[s * wd], wd * sizeof *x->elig) == 0) {
                set_of[s] = (uint32_t)r;
                break;
            }
        }
    }
    /* group id per (set, family), assigned when first seen */
    uint32_t *gid = drv_xmalloc((ns * DRV_FAMILY_MAX + 1) * sizeof *gid);
    for (size_t k = 0; k < ns * DRV_FAMILY_MAX; k++)
        gid[k] = UINT32_MAX;
    double *gwork = drv_xcalloc(GROUPS_MAX, sizeof *gwork);
    double *rate = drv_xcalloc((size_t)GROUPS_MAX * (nc ? nc : 1), sizeof *rate);
    double *ccap = drv_xcalloc(nc ? nc : 1, sizeof *ccap);
    for (size_t c = 0; c < nc; c++)
        ccap[c] = cap[c * RES_COUNT + RES_SLOTS];
    size_t ng = 0;
    bool too_big = false;
    for (size_t i = 0; i < w->n_tests && !too_big; i++) {
        uint32_t s = x->shape_of[i];
        if (x->elig_start[s + 1] == x->elig_start[s])
            continue; /* unschedulable */
        double d = dur ? dur[i] : w->tests[i].duration_s;
        if (!(d > 0))
            continue;
        int f = test_family(&w->tests[i]);
        size_t k = (size_t)set_of[s] * DRV_FAMILY_MAX + (size_t)f;
        if (gid[k] == UINT32_MAX) {
            if (ng == GROUPS_MAX) {
                too_big = true;
                break;
            }
            gid[k] = (uint32_t)ng;
            for (uint32_t e = x->elig_start[s]; e < x->elig_start[s + 1]; e++) {
                uint32_t c = x->elig_list[e];
                rate[ng * nc + c] = worker_family_speed(&w->workers[x->class_first[c]], f);
            }
            ng++;
        }
        gwork[gid[k]] += d;
    }
    double t = too_big ? 0 : drv_sim_fluid_makespan(ng, nc, gwork, rate, ccap);
    free(ccap);
    free(rate);
    free(gwork);
    free(gid);
    free(set_of);
    return t;
}

double drv_sim_lower_bound(const drv_workload *w, const double *dur)
{
    if (w->n_tests == 0 || w->n_workers == 0)
        return 0;
    drv_sim_index x;
    drv_sim_index_build(&x, w);
    size_t nc = x.n_classes, ns = x.n_shapes;

    /* per class: capacity per resource (sum of amount x speed) and slots */
    double *cap = drv_xcalloc(nc * RES_COUNT, sizeof *cap);
    double total_slots = 0, total_cap = 0;
    for (size_t i = 0; i < w->n_workers; i++) {
        const drv_sim_worker *sw = &w->workers[i];
        double s = worker_speed(sw);
        double *c = &cap[x.class_of[i] * RES_COUNT];
        c[RES_SLOTS] += sw->slots * s;
        c[RES_CPU] += sw->caps.cpu_cores * s;
        c[RES_GPU] += sw->caps.gpu_count * s;
        c[RES_MEM] += (double)sw->caps.memory_mb * s;
        total_slots += sw->slots;
        total_cap += sw->slots * s;
    }

    /* per (shape, family): best effective speed and best family speed over eligible
     * classes, computed when first needed (0 = not yet) */
    double *best_eff = drv_xcalloc(ns * DRV_FAMILY_MAX, sizeof *best_eff);
    double *best_fs = drv_xcalloc(ns * DRV_FAMILY_MAX, sizeof *best_fs);
    double *shape_work = drv_xcalloc(ns * RES_COUNT, sizeof *shape_work);
    double *work = drv_xcalloc(w->n_tests, sizeof *work);
    double longest = 0, slot_time = 0;
    for (size_t i = 0; i < w->n_tests; i++) {
        const drv_sim_test *t = &w->tests[i];
        uint32_t s = x.shape_of[i];
        if (x.elig_start[s + 1] == x.elig_start[s])
            continue; /* unschedulable */
        int f = test_family(t);
        size_t k = (size_t)s * DRV_FAMILY_MAX + (size_t)f;
        if (best_eff[k] == 0) {
            for (uint32_t e = x.elig_start[s]; e < x.elig_start[s + 1]; e++) {
                const drv_sim_worker *sw = &w->workers[x.class_first[x.elig_list[e]]];
                double fs = worker_family_speed(sw, f);
                if (worker_speed(sw) * fs > best_eff[k])
                    best_eff[k] = worker_speed(sw) * fs;
                if (fs > best_fs[k])
                    best_fs[k] = fs;
            }
        }
        double d = dur ? dur[i] : t->duration_s;
        if (!(d > 0))
            d = 0;
        double run = d / best_eff[k];
        if (t->arrival_s + run > longest)
            longest = t->arrival_s + run;
        slot_time += run;
        work[i] = d / best_fs[k];
        double *sw = &shape_work[s * RES_COUNT];
        const drv_requirements *req = &t->req;
        sw[RES_SLOTS] += work[i];
        sw[RES_CPU] += work[i] * req->cpu_cores;
        sw[RES_GPU] += work[i] * req->gpu_count;
        sw[RES_MEM] += work[i] * (double)req->memory_mb;
    }
    double bound = longest;
    if (total_slots > 0 && slot_time / total_slots > bound)
        bound = slot_time / total_slots;

    /* work arriving at or after each arrival, over the whole fleet's capacity */
    uint32_t *order = drv_xmalloc(w->n_tests * sizeof *order);
    drv_sim_arrival_order(w, order);
    double suffix = 0;
    for (size_t k = w->n_tests; k-- > 0;) {
        suffix += work[order[k]];
        double b = w->tests[order[k]].arrival_s + suffix / total_cap;
        if (total_cap > 0 && b > bound)
            bound = b;
    }

    /* per set of classes: the tests that can only run inside it, per resource */
    size_t n_sets = 0;
    uint64_t *sets = class_sets(&x, &n_sets);
    for (size_t s = 0; s < n_sets; s++) {
        const uint64_t *es = &sets[s * x.words];
        double wsum[RES_COUNT] = {0}, csum[RES_COUNT] = {0};
        for (size_t c = 0; c < nc; c++) {
            if (!(es[c / 64] >> (c % 64) & 1))
                continue;
            for (int r = 0; r < RES_COUNT; r++)
                csum[r] += cap[c * RES_COUNT + r];
        }
        for (size_t t = 0; t < ns; t++) {
            const uint64_t *et = &x.elig[t * x.words];
            bool subset = true;
            for (size_t k = 0; k < x.words && subset; k++)
                subset = (et[k] & ~es[k]) == 0;
            if (!subset)
                continue;
            for (int r = 0; r < RES_COUNT; r++)
                wsum[r] += shape_work[t * RES_COUNT + r];
        }
        for (int r = 0; r < RES_COUNT; r++) {
            if (csum[r] > 0 && wsum[r] / csum[r] > bound)
                bound = wsum[r] / csum[r];
        }
    }

    double fluid = fluid_bound(w, &x, dur, cap);
    if (fluid > bound)
        bound = fluid;

    free(sets);
    free(order);
    free(work);
    free(shape_work);
    free(best_fs);
    free(best_eff);
    free(cap);
    drv_sim_index_free(&x);
    return bound;
}

/* ---- percentiles and results -------------------------------------------------------- */

double drv_sim_quantile(double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    if (!(q >= 0))
        q = 0;
    if (q > 1)
        q = 1;
    size_t k = (size_t)ceil(q * (double)n);
    k = k == 0 ? 0 : k - 1;
    if (k >= n)
        k = n - 1;
    /* quickselect with a three-way partition (middle pivot): deterministic, and linear
     * on inputs with many equal values (waits of 0) */
    size_t lo = 0, hi = n; /* the answer is in [lo, hi) */
    while (hi - lo > 1) {
        double pivot = v[lo + (hi - lo) / 2];
        size_t lt = lo, i = lo, gt = hi; /* [lo,lt) < pivot, [lt,i) == pivot, [gt,hi) > */
        while (i < gt) {
            double x = v[i];
            if (x < pivot) {
                v[i++] = v[lt];
                v[lt++] = x;
            } else if (x > pivot) {
                v[i] = v[--gt];
                v[gt] = x;
            } else {
                i++;
            }
        }
        if (k < lt)
            hi = lt;
        else if (k >= gt)
            lo = gt;
        else
            return pivot;
    }
    return v[k];
}

#define SLOWDOWN_MIN_RUN_S 10.0

/* The index of kind name in r, adding it when there is room (the last entry becomes
 * "other" when there is not). */
static unsigned kind_index(drv_sim_result *r, const char *name)
{
    for (unsigned k = 0; k < r->n_kinds; k++)
        if (strcmp(r->kind[k], name) == 0)
            return k;
    if (r->n_kinds < DRV_SIM_KINDS_MAX) {
        snprintf(r->kind[r->n_kinds], DRV_SIM_NAME_MAX, "%s", name[0] ? name : "worker");
        return r->n_kinds++;
    }
    snprintf(r->kind[DRV_SIM_KINDS_MAX - 1], DRV_SIM_NAME_MAX, "other");
    return DRV_SIM_KINDS_MAX - 1;
}

void drv_sim_result_fill(drv_sim_result *r, const drv_workload *w, const drv_sim_outcome *o,
                         const double *busy_s, double lower_bound)
{
    size_t n = w->n_tests;
    double *waits = drv_xmalloc((n + 1) * sizeof *waits);
    size_t n_waits = 0;
    double makespan = 0, slowdown = 0;
    r->submitted = n;
    r->passed = r->failed = r->unschedulable = r->unfinished = 0;
    for (size_t i = 0; i < n; i++) {
        const drv_sim_outcome *t = &o[i];
        if (t->state >= DRV_TASK_STATE_COUNT || !drv_task_state_final((drv_task_state)t->state)) {
            r->unfinished++;
            continue;
        }
        if (t->end_s > makespan)
            makespan = t->end_s;
        if (t->state == DRV_TASK_UNSCHEDULABLE) {
            r->unschedulable++;
            continue;
        }
        if (t->state == DRV_TASK_PASSED)
            r->passed++;
        else
            r->failed++;
        double response = t->end_s - t->arrival_s;
        double wait = response - t->last_run_s;
        waits[n_waits++] = wait > 0 ? wait : 0;
        double denom = t->last_run_s > SLOWDOWN_MIN_RUN_S ? t->last_run_s : SLOWDOWN_MIN_RUN_S;
        double sd = response / denom;
        slowdown += sd > 1 ? sd : 1;
    }
    r->makespan_s = makespan;
    r->lower_bound_s = lower_bound;
    r->ratio_to_bound = lower_bound > 0 ? makespan / lower_bound : 0;
    r->wait_p50_s = drv_sim_quantile(waits, n_waits, 0.50);
    r->wait_p95_s = drv_sim_quantile(waits, n_waits, 0.95);
    r->wait_p99_s = drv_sim_quantile(waits, n_waits, 0.99);
    r->bounded_slowdown = n_waits ? slowdown / (double)n_waits : 0;
    free(waits);

    double slots[DRV_SIM_KINDS_MAX] = {0}, busy[DRV_SIM_KINDS_MAX] = {0};
    double all_slots = 0, all_busy = 0;
    r->n_kinds = 0;
    for (size_t j = 0; j < w->n_workers; j++) {
        unsigned k = kind_index(r, w->workers[j].kind);
        slots[k] += w->workers[j].slots;
        all_slots += w->workers[j].slots;
        double b = busy_s ? busy_s[j] : 0;
        busy[k] += b;
        all_busy += b;
    }
    for (unsigned k = 0; k < r->n_kinds; k++)
        r->utilization[k] = makespan > 0 && slots[k] > 0 ? busy[k] / (slots[k] * makespan) : 0;
    r->utilization_all = makespan > 0 && all_slots > 0 ? all_busy / (all_slots * makespan) : 0;
}
