/* predictor.h - learned test durations.
 *
 * What it learns, from every finished test (test key, family, worker class and its
 * primary back-end, duration):
 *   - per (test, worker class): EWMA of the duration and of its variance;
 *   - per test, normalised to reference speed: the same, so a test that ran on one
 *     class has an estimate on another;
 *   - per (family, back-end): the same, for tests never seen;
 *   - per (family, worker class): the class's relative speed for that family, from
 *     tests that ran on two classes (the ratio of one test's durations on them; the
 *     class's configured speed, or an estimate from first runs, until learned).
 * A prediction falls back in that order and finally to the caller's estimate (the
 * analyzer's). It gives the mean and a high quantile (mean + 1.2816 sigma, p90 under
 * a normal approximation; never below the mean), and which level it came from.
 *
 * Pure: no clock, no I/O. Memory grows with the distinct tests seen (about 80 bytes
 * each per class they ran on). Not thread-safe. */
#ifndef DRV_CORE_PREDICTOR_H
#define DRV_CORE_PREDICTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/analyzer.h"

typedef enum drv_prediction_source {
    DRV_PRED_TEST_CLASS = 0, /* this test on this worker class */
    DRV_PRED_TEST,           /* this test on another class, scaled by class speed */
    DRV_PRED_FAMILY,         /* its family on this back-end */
    DRV_PRED_ESTIMATE,       /* the caller's estimate */
} drv_prediction_source;

typedef struct drv_prediction {
    double mean_s;
    double high_s; /* p90 estimate, >= mean_s */
    uint32_t samples;
    drv_prediction_source source;
} drv_prediction;

#define DRV_PREDICTOR_CLASSES_MAX 4096

typedef struct drv_predictor drv_predictor;

/* alpha: weight of a new sample in the moving averages, 0 < alpha <= 1 (0.3 is a
 * good default). Returns NULL on a bad alpha. */
drv_predictor *drv_predictor_new(double alpha);
void drv_predictor_free(drv_predictor *p);

/* Learns one run. wclass < DRV_PREDICTOR_CLASSES_MAX; backend is a DRV_TAG_* id;
 * durations <= 0 or not finite are ignored. */
void drv_predictor_observe(drv_predictor *p, uint64_t test_key, int family, int backend,
                           uint32_t wclass, double duration_s);

/* The first run of a test (nothing was learned of it before) of this family and kind
 * (0 .. DRV_TYPE_KINDS - 1: drv_analyzer_type_kind of its type): tests of a family and
 * kind are alike before they ran, so their durations on a class against those on the
 * family's anchor class say how fast the class is, before any test ran on two classes
 * (see predictor.c). Call it besides drv_predictor_observe(). Returns true when the
 * sample may have changed the family's speed on every class (it ran on the anchor),
 * false when at most wclass's changed. */
bool drv_predictor_observe_first(drv_predictor *p, int family, int kind, uint32_t wclass,
                                 double duration_s);

/* Prediction for test_key on worker class wclass. */
drv_prediction drv_predictor_predict(const drv_predictor *p, uint64_t test_key, int family,
                                     int backend, uint32_t wclass, double estimate_s);
/* Prediction at reference speed, independent of the class. */
drv_prediction drv_predictor_predict_reference(const drv_predictor *p, uint64_t test_key,
                                               int family, double estimate_s);
/* Learned relative speed of wclass for family (> 0; 1 when nothing is known). A test
 * with reference duration d is predicted to take d / speed on that class. */
double drv_predictor_speed(const drv_predictor *p, int family, uint32_t wclass);

/* spec5: what test_key's prediction on class wclass rests on, as to class speeds. */
typedef enum drv_speed_basis {
    DRV_SPEED_GUESSED = 0, /* no run of its own, or scaled with a guessed speed: it may
                            * fall short of its run */
    DRV_SPEED_UP,          /* scaled from the class it ran on to one believed faster, a
                            * speed guessed from first runs: a guess is shrunk toward the
                            * configured speed, so it is predicted longer than it runs for
                            * that reason, never shorter (equal speeds may be two priors) */
    DRV_SPEED_MEASURED,    /* it ran on wclass, or both speeds are measured (the
                            * family's anchor, or learned from paired runs) */
} drv_speed_basis;
drv_speed_basis drv_predictor_speed_basis(const drv_predictor *p, uint64_t test_key, int family,
                                          uint32_t wclass);

/* The configured relative speed of worker class wclass (1 by default): what
 * drv_predictor_speed() answers for a family until runs teach otherwise, and the scale
 * of reference durations. Ignored for a speed outside [0.01, 100]. */
void drv_predictor_set_class_speed(drv_predictor *p, uint32_t wclass, double speed);
/* The same for one family (after drv_predictor_set_class_speed, which sets every
 * family's): the class is expected that fast at this family before its runs say (the
 * balancer's guess from the back-ends the family prefers). */
void drv_predictor_set_family_prior(drv_predictor *p, uint32_t wclass, int family, double speed);

/* What the predictor knows of one test, at reference speed: what a coordinator keeps in
 * its store so that a restart does not forget how long each test takes. */
typedef struct drv_learned_test {
    uint64_t key; /* drv_test_key() of its name */
    double mean_s, var;
    uint32_t n; /* samples behind it */
} drv_learned_test;
typedef void (*drv_learned_fn)(void *ctx, const drv_learned_test *t);

/* Calls fn for every test with a reference estimate (changed_only: only those changed
 * since the last export), and marks them unchanged. Returns how many. */
size_t drv_predictor_export_tests(drv_predictor *p, bool changed_only, drv_learned_fn fn,
                                  void *ctx);
/* Seeds test t->key's reference estimate from a previous process, unless this one has
 * learned it already. It counts as an estimate of unknown scale until the test runs on a
 * worker class of known speed, which restarts it (classes are numbered anew in each
 * process; a class's speeds come back through drv_predictor_seed_speed(), and until the
 * test runs the estimate is scaled by them). A value that is not a duration is ignored. */
void drv_predictor_import_test(drv_predictor *p, const drv_learned_test *t);

/* What a previous process learned of how fast worker class wclass runs family (what a
 * coordinator keeps in its store, by a key of the class that does not depend on the
 * order classes were numbered in): true, with *speed and the calibrated samples behind
 * it in *n, when this process knows more than the class's configured speed (a speed
 * from calibrated runs, or from first runs, n 0). */
bool drv_predictor_speed_learned(const drv_predictor *p, int family, uint32_t wclass, double *speed,
                                 uint32_t *n);
/* How many calibrated samples (paired runs) stand behind class wclass's speed for
 * family in this process: UINT32_MAX for the family's anchor (the class the others are
 * measured against), 0 for a speed from first runs or the configured one. */
uint32_t drv_predictor_speed_pairs(const drv_predictor *p, int family, uint32_t wclass);
/* Seeds class wclass's speed for family from a previous process (n: the samples behind
 * it, at least 1 is counted): the class counts as of known speed, so a test's reference
 * built from a run on it is calibrated. Ignored when this process has learned that speed
 * itself, or for a speed outside [0.01, 100]. */
void drv_predictor_seed_speed(drv_predictor *p, int family, uint32_t wclass, double speed,
                              uint32_t n);

/* Stable 64-bit key of a test name (FNV-1a). */
uint64_t drv_test_key(const char *name);

size_t drv_predictor_bytes(const drv_predictor *p);
size_t drv_predictor_tests(const drv_predictor *p);

#endif
