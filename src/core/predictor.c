/* predictor.c - learned test durations: EWMA tables keyed by test, class and family.
 *
 * Storage. Three open-addressing tables (linear probing, power-of-two capacity, no
 * per-entry allocation) hold one moving average each per key:
 *   - by_class:  (test key, worker class)        raw durations on that class;
 *   - by_test:   (test key)                      durations normalised to reference speed;
 *   - by_family: (family, back-end)              raw durations of the family's tests on
 *                                                that back-end, and (family | FAMILY_ALL)
 *                                                their reference-normalised durations.
 * Class speeds live in a dense array indexed [wclass][family], grown lazily to the
 * highest class seen, so drv_predictor_speed() is one bounds check and one load.
 *
 * Moving averages: West's exponentially weighted mean and variance,
 *   diff = x - mean; mean += alpha * diff; var = (1 - alpha) * (var + alpha * diff^2),
 * started at mean = x, var = 0 by the first sample.
 *
 * Bootstrapping class speeds. The reference speed of a family is the speed of the
 * first worker class that reported a test of that family (its "anchor"): the anchor's
 * speed is its prior (the configured speed of its class, drv_predictor_set_class_speed,
 * 1 by default) and is never learned, which fixes the scale (otherwise the references and
 * the speeds could drift together, as only their ratios are observable). A speed sample
 * is paired evidence: a test ran on class A last (by_test's cls) and now on class B, so
 * speed(B) = speed(A) x its mean on A / its duration on B, when A's speed is known; a
 * rerun on the class it ran on last is no sample (its reference was normalised by that
 * class's own speed, so the sample would only repeat it). Samples are averaged in
 * logarithms over a window of PAIR_WINDOW, a hung run clamped (speed_pair). A class's
 * first speed sample for a family replaces the prior instead of being blended
 * with it, so one run of a test on two classes already gives the right ratio, and the
 * test's reference is updated with a speed that is already close. A test's reference
 * is "calibrated" when it was built from a run on a class whose speed was known (the
 * anchor or a class with a learned speed); only calibrated references produce speed
 * samples, so a test first seen on a class of unknown speed cannot pull that class's
 * speed toward 1. When such a test later runs on a class of known speed, its
 * reference restarts from that run and becomes calibrated.
 *
 * Speeds before any test ran twice. A suite run once gives no calibrated pair, yet its
 * tests say how fast each class is: before they ran, tests of one family and one kind
 * (the caller's grouping: the balancer uses unit / other / performance) are alike, and
 * which class gets which of them does not depend on their true durations (unknown), so
 * the difference of the mean log durations of a family and kind on the anchor and on a
 * class estimates the class's speed against the anchor. Kinds are compared apart, as
 * the order in which tests start (longest predicted first) gives classes different
 * mixes of kinds. drv_predictor_observe_first() collects these samples; until a class
 * has a calibrated sample for a family, that estimate replaces the prior once
 * RATIO_MIN pairs back it, shrunk toward the prior: log speed ratio = (sum of the pairs'
 * log ratios + PRIOR_PAIRS x the prior's) / (pairs + PRIOR_PAIRS). Durations of a family
 * spread so widely (log-normal) that 8 pairs alone left speeds off by a third
 * (second_run seed 8 sent its longest test to the slower of two browser classes); the
 * measurements behind PRIOR_PAIRS are in docs/balancer.md. */
#include "core/predictor.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define P90_Z           1.2816
#define ONE_SAMPLE_CV   0.25 /* sigma / mean assumed with a single sample */
#define SPEED_MIN       0.01
#define SPEED_MAX       100.0
#define TABLE_MIN_CAP   64u
#define FAMILY_ALL      (1ULL << 32) /* or-ed into the by_family key of a family-wide mean */
#define ENTRY_USED      1u
#define ENTRY_CALIBRATE 2u   /* by_test only: the reference is at reference speed */
#define ENTRY_DIRTY     4u   /* by_test only: changed since drv_predictor_export_tests() */
#define RATIO_MIN       8u   /* paired first runs behind a speed from first runs */
#define PRIOR_PAIRS     28.0 /* paired first runs the configured speed counts as */
#define PAIR_WINDOW     32u  /* paired samples a class's speed averages over, at most */
#define PAIR_CLAMP      0.5  /* largest log deviation of one paired sample counted */

typedef struct stat_entry {
    uint64_t k1;
    uint32_t k2;
    uint32_t flags; /* ENTRY_* */
    double mean;
    double var;
    uint32_t n;
    uint32_t cls; /* by_test only: worker class + 1 of its last run, 0 = none */
} stat_entry;

typedef struct stat_table {
    stat_entry *slots;
    size_t cap; /* power of two, or 0 before the first insert */
    size_t len;
} stat_table;

struct drv_predictor {
    double alpha;
    stat_table by_class;
    stat_table by_test;
    stat_table by_family;
    double *speed;       /* [speed_rows][DRV_FAMILY_MAX], the prior when unknown */
    double *prior;       /* [speed_rows][DRV_FAMILY_MAX]: configured speed, 1 */
    uint32_t *speed_n;   /* samples behind each speed */
    double *first;       /* [speed_rows][DRV_FAMILY_MAX][DRV_TYPE_KINDS]: mean log duration */
    uint32_t *first_n;   /* first runs behind each mean */
    uint32_t speed_rows; /* classes with a row */
    uint32_t anchor[DRV_FAMILY_MAX]; /* reference class + 1 per family, 0 = none yet */
};

/* ---- hashing ---- */

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static inline size_t slot_of(uint64_t k1, uint32_t k2, size_t cap)
{
    return (size_t)(mix64(k1 ^ mix64((uint64_t)k2 + 0x9e3779b97f4a7c15ULL)) & (cap - 1));
}

uint64_t drv_test_key(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 offset basis: the key of "" and NULL */
    if (!name)
        return h;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
        h ^= *s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- open-addressing tables ---- */

/* The entry of (k1, k2), or NULL when absent (or the table is empty). */
static const stat_entry *table_find(const stat_table *t, uint64_t k1, uint32_t k2)
{
    if (t->cap == 0)
        return NULL;
    for (size_t i = slot_of(k1, k2, t->cap);; i = (i + 1) & (t->cap - 1)) {
        const stat_entry *e = &t->slots[i];
        if (!(e->flags & ENTRY_USED))
            return NULL;
        if (e->k1 == k1 && e->k2 == k2)
            return e;
    }
}

/* Re-inserts every entry into a table of new_cap slots. */
static void table_grow(stat_table *t, size_t new_cap)
{
    stat_entry *old = t->slots;
    size_t old_cap = t->cap;
    t->slots = drv_xcalloc(new_cap, sizeof *t->slots);
    t->cap = new_cap;
    for (size_t j = 0; j < old_cap; j++) {
        if (!(old[j].flags & ENTRY_USED))
            continue;
        size_t i = slot_of(old[j].k1, old[j].k2, new_cap);
        while (t->slots[i].flags & ENTRY_USED)
            i = (i + 1) & (new_cap - 1);
        t->slots[i] = old[j];
    }
    free(old);
}

/* The entry of (k1, k2), inserted empty (n = 0) when absent. Keeps the load <= 3/4.
 * The pointer is valid until the next insert into t. */
static stat_entry *table_upsert(stat_table *t, uint64_t k1, uint32_t k2)
{
    if (t->cap == 0 || (t->len + 1) * 4 > t->cap * 3)
        table_grow(t, t->cap ? t->cap * 2 : TABLE_MIN_CAP);
    for (size_t i = slot_of(k1, k2, t->cap);; i = (i + 1) & (t->cap - 1)) {
        stat_entry *e = &t->slots[i];
        if (!(e->flags & ENTRY_USED)) {
            memset(e, 0, sizeof *e);
            e->k1 = k1;
            e->k2 = k2;
            e->flags = ENTRY_USED;
            t->len++;
            return e;
        }
        if (e->k1 == k1 && e->k2 == k2)
            return e;
    }
}

/* ---- moving averages ---- */

/* Adds x to the West EWMA of e (the first sample starts it). */
static void stat_add(stat_entry *e, double alpha, double x)
{
    if (e->n == 0) {
        e->mean = x;
        e->var = 0;
    } else {
        double diff = x - e->mean;
        double incr = alpha * diff;
        e->mean += incr;
        e->var = (1 - alpha) * (e->var + diff * incr);
    }
    if (e->n < UINT32_MAX)
        e->n++;
}

/* A prediction from an average scaled by 1 / speed. */
static drv_prediction prediction_of(const stat_entry *e, double speed, drv_prediction_source src)
{
    drv_prediction r;
    double mean = e->mean / speed;
    double sigma = e->n <= 1 ? ONE_SAMPLE_CV * mean : sqrt(e->var > 0 ? e->var : 0) / speed;
    r.mean_s = mean;
    r.high_s = mean + P90_Z * sigma;
    if (!(r.high_s >= mean))
        r.high_s = mean;
    r.samples = e->n;
    r.source = src;
    return r;
}

/* The caller's estimate, with the one-sample spread; a bad estimate gives 0. */
static drv_prediction prediction_estimate(double estimate_s)
{
    drv_prediction r;
    double mean = isfinite(estimate_s) && estimate_s > 0 ? estimate_s : 0;
    r.mean_s = mean;
    r.high_s = mean + P90_Z * ONE_SAMPLE_CV * mean;
    r.samples = 0;
    r.source = DRV_PRED_ESTIMATE;
    return r;
}

static inline uint32_t family_index(int family)
{
    return family >= 0 && family < DRV_FAMILY_MAX ? (uint32_t)family : 0;
}

/* ---- class speeds ---- */

/* Makes sure wclass has a row of speeds (all 1, no samples). wclass must be below
 * DRV_PREDICTOR_CLASSES_MAX. */
static void speed_reserve(drv_predictor *p, uint32_t wclass)
{
    if (wclass < p->speed_rows)
        return;
    uint32_t rows = p->speed_rows ? p->speed_rows : 4;
    while (rows <= wclass)
        rows *= 2;
    if (rows > DRV_PREDICTOR_CLASSES_MAX)
        rows = DRV_PREDICTOR_CLASSES_MAX;
    size_t n = (size_t)rows * DRV_FAMILY_MAX;
    p->speed = drv_xrealloc(p->speed, n * sizeof *p->speed);
    p->speed_n = drv_xrealloc(p->speed_n, n * sizeof *p->speed_n);
    p->prior = drv_xrealloc(p->prior, n * sizeof *p->prior);
    p->first = drv_xrealloc(p->first, n * DRV_TYPE_KINDS * sizeof *p->first);
    p->first_n = drv_xrealloc(p->first_n, n * DRV_TYPE_KINDS * sizeof *p->first_n);
    memset(p->first + (size_t)p->speed_rows * DRV_FAMILY_MAX * DRV_TYPE_KINDS, 0,
           (n - (size_t)p->speed_rows * DRV_FAMILY_MAX) * DRV_TYPE_KINDS * sizeof *p->first);
    memset(p->first_n + (size_t)p->speed_rows * DRV_FAMILY_MAX * DRV_TYPE_KINDS, 0,
           (n - (size_t)p->speed_rows * DRV_FAMILY_MAX) * DRV_TYPE_KINDS * sizeof *p->first_n);
    for (size_t i = (size_t)p->speed_rows * DRV_FAMILY_MAX; i < n; i++) {
        p->speed[i] = 1.0;
        p->speed_n[i] = 0;
        p->prior[i] = 1.0;
    }
    p->speed_rows = rows;
}

void drv_predictor_set_class_speed(drv_predictor *p, uint32_t wclass, double speed)
{
    if (!p || wclass >= DRV_PREDICTOR_CLASSES_MAX || !(speed >= SPEED_MIN) || speed > SPEED_MAX)
        return;
    speed_reserve(p, wclass);
    for (int f = 0; f < DRV_FAMILY_MAX; f++) {
        size_t si = (size_t)wclass * DRV_FAMILY_MAX + (size_t)f;
        p->prior[si] = speed;
        if (p->speed_n[si] == 0)
            p->speed[si] = speed;
    }
}

void drv_predictor_set_family_prior(drv_predictor *p, uint32_t wclass, int family, double speed)
{
    if (!p || wclass >= DRV_PREDICTOR_CLASSES_MAX || !(speed >= SPEED_MIN) || speed > SPEED_MAX)
        return;
    speed_reserve(p, wclass);
    size_t si = (size_t)wclass * DRV_FAMILY_MAX + family_index(family);
    p->prior[si] = speed;
    if (p->speed_n[si] == 0)
        p->speed[si] = speed;
}

double drv_predictor_speed(const drv_predictor *p, int family, uint32_t wclass)
{
    if (!p || wclass >= p->speed_rows)
        return 1.0;
    return p->speed[(size_t)wclass * DRV_FAMILY_MAX + family_index(family)];
}

/* Whether class c's speed for family index f is the anchor's or learned from pairs. */
static bool speed_measured(const drv_predictor *p, uint32_t f, uint32_t c)
{
    return p->anchor[f] == c + 1 ||
           (c < p->speed_rows && p->speed_n[(size_t)c * DRV_FAMILY_MAX + f] > 0);
}

drv_speed_basis drv_predictor_speed_basis(const drv_predictor *p, uint64_t test_key, int family,
                                          uint32_t wclass)
{
    if (!p)
        return DRV_SPEED_GUESSED;
    const stat_entry *e = table_find(&p->by_class, test_key, wclass);
    if (e && e->n > 0)
        return DRV_SPEED_MEASURED;
    e = table_find(&p->by_test, test_key, 0);
    if (!e || e->n == 0 || e->cls == 0)
        return DRV_SPEED_GUESSED;
    uint32_t f = family_index(family), from = e->cls - 1;
    if (speed_measured(p, f, wclass) && speed_measured(p, f, from))
        return DRV_SPEED_MEASURED;
    return drv_predictor_speed(p, family, wclass) > drv_predictor_speed(p, family, from)
               ? DRV_SPEED_UP
               : DRV_SPEED_GUESSED;
}

/* ---- public ---- */

drv_predictor *drv_predictor_new(double alpha)
{
    if (!(alpha > 0 && alpha <= 1))
        return NULL;
    drv_predictor *p = drv_xcalloc(1, sizeof *p); /* owned by the caller: drv_predictor_free */
    p->alpha = alpha;
    return p;
}

void drv_predictor_free(drv_predictor *p)
{
    if (!p)
        return;
    free(p->by_class.slots);
    free(p->by_test.slots);
    free(p->by_family.slots);
    free(p->speed);
    free(p->speed_n);
    free(p->first);
    free(p->first_n);
    free(p->prior);
    free(p);
}

/* Adds one paired sample (a speed measured from one test's runs on two classes) to the
 * speed of cell si: the first replaces the prior or the estimate from first runs, later
 * ones are averaged in logarithms over the last PAIR_WINDOW or so (a moving average of a
 * few samples follows whichever tests finished last), and from the fourth on each moves
 * the mean by at most PAIR_CLAMP / n: a run that hung (a straggler) is not a speed. */
static void speed_pair(drv_predictor *p, size_t si, double sample)
{
    sample = sample < SPEED_MIN ? SPEED_MIN : sample > SPEED_MAX ? SPEED_MAX : sample;
    uint32_t n = p->speed_n[si] < PAIR_WINDOW ? p->speed_n[si] + 1 : PAIR_WINDOW;
    if (n == 1) {
        p->speed[si] = sample;
    } else {
        double d = log(sample) - log(p->speed[si]);
        if (n > 3)
            d = d > PAIR_CLAMP ? PAIR_CLAMP : d < -PAIR_CLAMP ? -PAIR_CLAMP : d;
        p->speed[si] *= exp(d / n);
    }
    if (p->speed_n[si] < UINT32_MAX)
        p->speed_n[si]++;
}

void drv_predictor_observe(drv_predictor *p, uint64_t test_key, int family, int backend,
                           uint32_t wclass, double duration_s)
{
    if (!p || !isfinite(duration_s) || duration_s <= 0 || wclass >= DRV_PREDICTOR_CLASSES_MAX)
        return;
    uint32_t f = family_index(family);
    speed_reserve(p, wclass);
    size_t si = (size_t)wclass * DRV_FAMILY_MAX + f;
    if (p->anchor[f] == 0)
        p->anchor[f] = wclass + 1;
    bool is_anchor = p->anchor[f] == wclass + 1;

    stat_add(table_upsert(&p->by_class, test_key, wclass), p->alpha, duration_s);
    stat_add(table_upsert(&p->by_family, f, (uint32_t)backend), p->alpha, duration_s);

    stat_entry *ref = table_upsert(&p->by_test, test_key, 0);
    bool first_speed = false;
    /* Learn a class's speed from this test's runs on two classes (see the top). */
    uint32_t prev = ref->n > 0 && ref->cls > 0 ? ref->cls - 1 : wclass;
    const stat_entry *on_prev = prev != wclass ? table_find(&p->by_class, test_key, prev) : NULL;
    if (on_prev && on_prev->n > 0 && prev < p->speed_rows) {
        size_t pi = (size_t)prev * DRV_FAMILY_MAX + f;
        bool prev_anchor = p->anchor[f] == prev + 1;
        bool prev_known = prev_anchor || p->speed_n[pi] > 0;
        if (!is_anchor && prev_known) {
            first_speed = p->speed_n[si] == 0;
            speed_pair(p, si, p->speed[pi] * on_prev->mean / duration_s);
        }
    }
    ref->cls = wclass + 1;
    bool known = is_anchor || p->speed_n[si] > 0;
    double normalised = duration_s * p->speed[si];
    if (known && !(ref->flags & ENTRY_CALIBRATE)) {
        /* First run at a known speed: restart the reference from it. */
        ref->n = 0;
        ref->flags |= ENTRY_CALIBRATE;
    }
    /* A class's first speed sample makes this run equal to the reference by
     * construction: it tells nothing more about the test. */
    if (!first_speed && (known || !(ref->flags & ENTRY_CALIBRATE))) {
        stat_add(ref, p->alpha, normalised);
        ref->flags |= ENTRY_DIRTY;
    }
    stat_add(table_upsert(&p->by_family, f | FAMILY_ALL, 0), p->alpha, normalised);
}

/* Sets class r's speed for family f from its first runs against the anchor's, kind by
 * kind, when it has no calibrated sample and enough pairs. Each kind weighs by the
 * fewer of its two counts. */
static void speed_from_first(drv_predictor *p, uint32_t f, uint32_t r)
{
    uint32_t a = p->anchor[f] - 1;
    size_t si = (size_t)r * DRV_FAMILY_MAX + f, ai = (size_t)a * DRV_FAMILY_MAX + f;
    if (r == a || p->speed_n[si] > 0)
        return;
    double sum = 0, weight = 0;
    for (int k = 0; k < DRV_TYPE_KINDS; k++) {
        size_t rk = si * DRV_TYPE_KINDS + (size_t)k, ak = ai * DRV_TYPE_KINDS + (size_t)k;
        double w = p->first_n[rk] < p->first_n[ak] ? p->first_n[rk] : p->first_n[ak];
        sum += w * (p->first[ak] - p->first[rk]);
        weight += w;
    }
    if (weight < RATIO_MIN)
        return;
    /* Shrunk toward the configured speeds' ratio, which counts as PRIOR_PAIRS pairs. */
    double prior = log(p->prior[si] / p->prior[ai]);
    double sp = p->speed[ai] * exp((sum + PRIOR_PAIRS * prior) / (weight + PRIOR_PAIRS));
    p->speed[si] = sp < SPEED_MIN ? SPEED_MIN : sp > SPEED_MAX ? SPEED_MAX : sp;
}

bool drv_predictor_observe_first(drv_predictor *p, int family, int kind, uint32_t wclass,
                                 double duration_s)
{
    if (!p || !isfinite(duration_s) || duration_s <= 0 || kind < 0 || kind >= DRV_TYPE_KINDS ||
        wclass >= DRV_PREDICTOR_CLASSES_MAX)
        return false;
    uint32_t f = family_index(family);
    speed_reserve(p, wclass);
    if (p->anchor[f] == 0)
        p->anchor[f] = wclass + 1;
    /* The mean of logarithms: durations spread log-normally, and one outlier must not
     * decide a class's speed. A plain mean over every sample, not a moving one: short
     * tests finish first, so recent samples are not a fair draw. */
    double x = log(duration_s);
    size_t k = ((size_t)wclass * DRV_FAMILY_MAX + f) * DRV_TYPE_KINDS + (size_t)kind;
    if (p->first_n[k] == UINT32_MAX)
        return false;
    p->first_n[k]++;
    p->first[k] += (x - p->first[k]) / p->first_n[k];
    if (wclass != p->anchor[f] - 1) {
        speed_from_first(p, f, wclass);
        return false;
    }
    /* The anchor's mean moved: every class's estimate against it moves too. */
    for (uint32_t r = 0; r < p->speed_rows; r++)
        speed_from_first(p, f, r);
    return true;
}

/* Whether a family-level average says something about a test of that family that never
 * ran (bal): not for the "unknown" family (0), which every test without a model id
 * shares, so one earlier `true` would make every new unknown test "about 0 s"; and not
 * when the family's runs spread wider than their mean (sigma > mean): a new test may
 * then be anything. A test without its own history and without an informative family
 * gets the caller's estimate: an unknown duration counts as unknown, not as the
 * shortest seen. */
static bool family_informative(uint32_t f, const stat_entry *e)
{
    if (f == 0 || !e || e->n == 0)
        return false;
    return e->n <= 1 || e->var <= e->mean * e->mean;
}

drv_prediction drv_predictor_predict(const drv_predictor *p, uint64_t test_key, int family,
                                     int backend, uint32_t wclass, double estimate_s)
{
    if (!p)
        return prediction_estimate(estimate_s);
    const stat_entry *e = table_find(&p->by_class, test_key, wclass);
    if (e && e->n > 0)
        return prediction_of(e, 1.0, DRV_PRED_TEST_CLASS);
    e = table_find(&p->by_test, test_key, 0);
    if (e && e->n > 0) {
        /* spec5: a reference built on a class whose speed was still a guess (before
         * paired runs: not calibrated) is scaled again with the speeds known now, from
         * the test's runs on that class (a class of 3x could be guessed 1.45x after one
         * run of the suite, and its tests predicted twice their run on the fast class). */
        const stat_entry *on = !(e->flags & ENTRY_CALIBRATE) && e->cls > 0
                                   ? table_find(&p->by_class, test_key, e->cls - 1)
                                   : NULL;
        double sp = drv_predictor_speed(p, family, wclass);
        if (on && on->n > 0)
            return prediction_of(on, sp / drv_predictor_speed(p, family, e->cls - 1),
                                 DRV_PRED_TEST);
        return prediction_of(e, sp, DRV_PRED_TEST);
    }
    e = table_find(&p->by_family, family_index(family), (uint32_t)backend);
    if (family_informative(family_index(family), e))
        return prediction_of(e, 1.0, DRV_PRED_FAMILY);
    return prediction_estimate(estimate_s);
}

drv_prediction drv_predictor_predict_reference(const drv_predictor *p, uint64_t test_key,
                                               int family, double estimate_s)
{
    if (!p)
        return prediction_estimate(estimate_s);
    const stat_entry *e = table_find(&p->by_test, test_key, 0);
    if (e && e->n > 0)
        return prediction_of(e, 1.0, DRV_PRED_TEST);
    e = table_find(&p->by_family, family_index(family) | FAMILY_ALL, 0);
    if (family_informative(family_index(family), e))
        return prediction_of(e, 1.0, DRV_PRED_FAMILY);
    return prediction_estimate(estimate_s);
}

size_t drv_predictor_bytes(const drv_predictor *p)
{
    if (!p)
        return 0;
    size_t cells = (size_t)p->speed_rows * DRV_FAMILY_MAX;
    return sizeof *p + (p->by_class.cap + p->by_test.cap + p->by_family.cap) * sizeof(stat_entry) +
           cells * (sizeof *p->speed + sizeof *p->speed_n +
                    DRV_TYPE_KINDS * (sizeof *p->first + sizeof *p->first_n)) +
           (size_t)p->speed_rows * DRV_FAMILY_MAX * sizeof *p->prior;
}

size_t drv_predictor_tests(const drv_predictor *p)
{
    return p ? p->by_test.len : 0;
}

/* ---- what outlives the process (the coordinator's store) ---- */

size_t drv_predictor_export_tests(drv_predictor *p, bool changed_only, drv_learned_fn fn, void *ctx)
{
    size_t n = 0;
    for (size_t i = 0; p && i < p->by_test.cap; i++) {
        stat_entry *e = &p->by_test.slots[i];
        if (!(e->flags & ENTRY_USED) || e->n == 0 || (changed_only && !(e->flags & ENTRY_DIRTY)))
            continue;
        e->flags &= ~ENTRY_DIRTY;
        drv_learned_test t = {.key = e->k1, .mean_s = e->mean, .var = e->var, .n = e->n};
        fn(ctx, &t);
        n++;
    }
    return n;
}

void drv_predictor_import_test(drv_predictor *p, const drv_learned_test *t)
{
    if (!p || !t || t->n == 0 || !isfinite(t->mean_s) || t->mean_s <= 0 || !isfinite(t->var) ||
        t->var < 0)
        return;
    stat_entry *e = table_upsert(&p->by_test, t->key, 0);
    if (e->n > 0)
        return; /* learned in this process: newer */
    /* Not calibrated: its scale is the old process's anchors; the first run on a class of
     * known speed restarts it (see the top of this file). Not dirty: nothing new. */
    e->mean = t->mean_s;
    e->var = t->var;
    e->n = t->n;
}

bool drv_predictor_speed_learned(const drv_predictor *p, int family, uint32_t wclass, double *speed,
                                 uint32_t *n)
{
    if (!p || wclass >= p->speed_rows)
        return false;
    size_t si = (size_t)wclass * DRV_FAMILY_MAX + family_index(family);
    if (p->speed_n[si] == 0 && p->speed[si] == p->prior[si])
        return false;
    *speed = p->speed[si];
    *n = p->speed_n[si];
    return true;
}

uint32_t drv_predictor_speed_pairs(const drv_predictor *p, int family, uint32_t wclass)
{
    if (!p)
        return 0;
    uint32_t f = family_index(family);
    if (p->anchor[f] == wclass + 1)
        return UINT32_MAX;
    return wclass < p->speed_rows ? p->speed_n[(size_t)wclass * DRV_FAMILY_MAX + f] : 0;
}

void drv_predictor_seed_speed(drv_predictor *p, int family, uint32_t wclass, double speed,
                              uint32_t n)
{
    if (!p || wclass >= DRV_PREDICTOR_CLASSES_MAX || !(speed >= SPEED_MIN) || speed > SPEED_MAX)
        return;
    speed_reserve(p, wclass);
    size_t si = (size_t)wclass * DRV_FAMILY_MAX + family_index(family);
    if (p->speed_n[si] > 0)
        return; /* learned in this process: newer */
    p->speed[si] = speed;
    p->speed_n[si] = n > 0 ? n : 1;
}
