/* balancer.h - where each test runs.
 *
 * The balancer holds the queue of tests and the fleet of workers and decides, again
 * and again, which queued test goes to which worker: filter (capabilities, capacity,
 * health, thermal admission, backpressure), score (the configured policy for that
 * test), place. It also moves tests that a busy worker has not started to an idle one
 * when that pays (work stealing), sizes the batches handed to workers, and applies the
 * retry rules when a worker is lost or a test fails.
 *
 * Pure and deterministic: no I/O, no clock (every call takes `now` in seconds, any
 * epoch, non-decreasing), no globals, no threads. The same calls in the same order give
 * the same decisions. The coordinator and the simulator drive it through these calls.
 *
 * Handles: drv_balancer_submit() returns a task reference (drv_tref) valid until a
 * decision reports the task final (passed, failed, cancelled, unschedulable); a worker
 * index (drv_wref) is valid until drv_balancer_worker_remove(). Neither is reused while
 * valid.
 *
 * Speed: a placement costs O(log queue + eligible worker classes x log class size): it
 * does not scan the fleet. Workers with equal capabilities form a class; the balancer
 * keeps, per class, the orderings its policies need (least loaded, least recently
 * used, stride), and per requirement shape the set of classes that can run it. */
#ifndef DRV_BALANCER_BALANCER_H
#define DRV_BALANCER_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balancer/config.h"
#include "core/predictor.h"
#include "core/task.h"
#include "core/worker.h"

typedef uint32_t drv_tref;
typedef uint32_t drv_wref;
#define DRV_REF_NONE UINT32_MAX

typedef struct drv_balancer drv_balancer;

/* Why a decision was made; drv_decision_describe() turns it into words. */
typedef enum drv_reason {
    DRV_R_NONE = 0,
    DRV_R_POLICY,             /* placed by the policy's choice */
    DRV_R_STOLEN,             /* moved to an idle worker (work stealing) */
    DRV_R_REBALANCED,         /* moved by a rebalancing pass */
    DRV_R_WORKER_LOST,        /* its worker was lost */
    DRV_R_INFRA_FAILURE,      /* the runner failed (spawn failure, crash) */
    DRV_R_RETRIES_EXHAUSTED,  /* lost or infra-failed more often than max_retries */
    DRV_R_EXIT_FAILURE,       /* exited non-zero or was killed by a signal */
    DRV_R_EXIT_FAILURE_RETRY, /* failed (exit, signal, timeout) and runs again: a rerun */
    DRV_R_TIMED_OUT,          /* killed at its timeout */
    DRV_R_PASSED,
    DRV_R_CANCELLED,
    DRV_R_NO_ELIGIBLE_WORKER, /* no worker in the fleet meets its requirements */
    DRV_R_HANDED_BACK,        /* its worker gave it back unrun (it is stopping) */
    DRV_R_AFTER_NOT_PASSED,   /* skipped: a test it runs after did not pass */
    DRV_R_SAID_SKIPPED,       /* skipped: it exited with its skip code */
    DRV_R_COUNT
} drv_reason;

typedef enum drv_decision_kind {
    DRV_D_PLACED = 0, /* task -> worker (assigned, not started) */
    DRV_D_MOVED,      /* assigned task from from_worker -> worker */
    DRV_D_REQUEUED,   /* back to the queue (from from_worker) */
    DRV_D_FINAL,      /* the task is final with state; its tref is released */
} drv_decision_kind;

/* Which budget a REQUEUED decision used (docs/operations.md, "Retries and reruns"). */
typedef enum drv_charge {
    DRV_CHARGE_NONE = 0, /* none: it never started (handed back, lost while only assigned) */
    DRV_CHARGE_RETRY,    /* one of max_retries: its worker was lost while it ran, or the
                            runner failed */
    DRV_CHARGE_RERUN,    /* one of reruns: the test itself failed */
} drv_charge;

typedef struct drv_decision {
    drv_decision_kind kind;
    drv_reason reason;
    drv_task_state state; /* the task's state after the decision */
    drv_tref task;
    uint64_t task_id;
    drv_wref worker;      /* PLACED, MOVED: the new worker; else DRV_REF_NONE */
    drv_wref from_worker; /* MOVED, REQUEUED, FINAL after a worker: the old one */
    int unmet;            /* DRV_R_NO_ELIGIBLE_WORKER: the drv_unmet no worker meets */
    int unmet_tag;        /* ...and its tag, or -1 */
    uint32_t shape;       /* the test's requirement shape (shapes live as long as the balancer) */
    drv_charge charged;   /* REQUEUED: the budget this re-run used */
} drv_decision;

/* Creates a balancer. cfg is copied. tags and pred are borrowed and must outlive it
 * (pred may be NULL: the analyzer's estimates are used and nothing is learned).
 * Returns NULL with err filled on an invalid configuration. */
drv_balancer *drv_balancer_new(const drv_balancer_config *cfg, drv_tag_table *tags,
                               drv_predictor *pred, drv_error *err);
void drv_balancer_free(drv_balancer *b);

/* ---- the fleet ---- */

typedef struct drv_worker_spec {
    const char *name; /* unique; copied */
    drv_capabilities caps;
    uint32_t slots; /* 0 = caps.cpu_cores (at least 1) */
    float speed;    /* relative speed, 0 = 1 */
} drv_worker_spec;

/* Adds a worker (COLD, healthy). Returns its index, or -1 with err filled when the name
 * is taken or empty. A worker removed earlier with the same name is a new worker. */
int64_t drv_balancer_worker_add(drv_balancer *b, const drv_worker_spec *spec, double now,
                                drv_error *err);
/* The worker was lost (missed heartbeats, disconnected): what it held goes back to the
 * queue (a running test uses one of its retries; an assigned one does not) or fails
 * when out of retries. Appends the decisions to out (at most max; returns how many
 * were written; call again while it returns max). The worker stays known as LOST. */
size_t drv_balancer_worker_lost(drv_balancer *b, drv_wref w, double now, drv_decision *out,
                                size_t max);
/* A lost worker came back (reconnected within the grace period). */
void drv_balancer_worker_back(drv_balancer *b, drv_wref w, double now);
/* A known worker said hello (after drv_balancer_worker_back when it was lost). A loss
 * while it ran tests is judged now: when the same process came back, its machine or
 * network failed those tests (one infrastructure failure towards quarantine_after);
 * when a new process says hello under the name (new_process: it was restarted), the
 * loss was the old process's end and counts nothing towards quarantine. */
void drv_balancer_worker_hello(drv_balancer *b, drv_wref w, bool new_process, double now);
/* Forgets a worker that holds nothing (after lost or drained). Returns -1 if it still
 * holds tests. */
int drv_balancer_worker_remove(drv_balancer *b, drv_wref w, drv_error *err);
/* A heartbeat: what the worker measured (sig: load = running / slots, shown only;
 * pressures, clock, temperature, throttling drive its thermal state, core/thermal.h;
 * sig->busy is set here from what it holds) and whether it declares itself overloaded.
 * An overloaded worker gets nothing new until a heartbeat clears it. */
void drv_balancer_worker_signal(drv_balancer *b, drv_wref w, double now,
                                const drv_thermal_signal *sig, bool overloaded);
/* The same with only load, temperature (< 0 unknown) and throttling measured. */
void drv_balancer_worker_heartbeat(drv_balancer *b, drv_wref w, double now, double load,
                                   double temperature_c, bool throttled, bool overloaded);
/* Operator actions: drain (take nothing new), quarantine with a reason, clear (OK). */
void drv_balancer_worker_set_health(drv_balancer *b, drv_wref w, drv_health h, const char *reason,
                                    double now);
const drv_worker *drv_balancer_worker(const drv_balancer *b, drv_wref w);
/* Index of the worker with this name, or -1. */
int64_t drv_balancer_worker_find(const drv_balancer *b, const char *name);
/* How many workers are registered now (forgotten ones are not counted). */
uint32_t drv_balancer_worker_count(const drv_balancer *b);
/* The bound of worker references: every reference ever returned by
 * drv_balancer_worker_add() is below it, a forgotten worker's too (its slot is not
 * reused). Loops over workers by reference go up to this, not up to the count: once a
 * worker is forgotten the count is smaller than the highest reference. */
uint32_t drv_balancer_worker_refs(const drv_balancer *b);

/* ---- the queue ---- */

/* Queues a test (copies what the balancer needs; t is not kept). The policy is chosen
 * from the config by the test's model family and test type; the predicted duration
 * from the predictor, the analyzer's estimate as fallback. Returns the reference, or
 * -1 with err filled (priority out of range, missing name). */
int64_t drv_balancer_submit(drv_balancer *b, const drv_task *t, double now, drv_error *err);

/* ---- ordering and exclusion ----
 *
 * after: a test submitted with drv_balancer_submit_after() is held in the balancer, off
 * the queue (its state says queued), until every test it runs after is final. Then it is
 * queued when they all passed or it has t->run_anyway; otherwise it becomes final,
 * SKIPPED (reason DRV_R_AFTER_NOT_PASSED), reported by the next drv_balancer_place() like
 * any final decision, which in turn tells the tests that run after it.
 *
 * locks: a test holds each lock named in t->locks while it is assigned or running; a
 * test is placed only when none of its locks is held (checked at placement: the best
 * queued test whose lock is taken is parked off the queue until the lock's last holder
 * leaves, then queued again in its old place). Lock names are the balancer's, across
 * every test it holds. A counted lock "NAME#N" (N 1..100000; suite2) has N slots: up to
 * N tests hold NAME at once (`drover ctest -j N` caps its run so); the latest test
 * submitted with NAME sets N, and "NAME" alone is "NAME#1". t->exclusive is one lock over
 * everything: such a test is placed only when no test is assigned or running, and while it waits
 * for that or runs, no other test is placed. */

/* Like drv_balancer_submit(), and t runs after the live tests `after` (n_after of them),
 * and after after_not_passed tests that are already final and did not pass (a caller
 * that resolves names keeps those: after a restart, say). Returns -1 with err filled
 * when one of `after` is not live. */
int64_t drv_balancer_submit_after(drv_balancer *b, const drv_task *t, const drv_tref *after,
                                  size_t n_after, uint32_t after_not_passed, double now,
                                  drv_error *err);
/* Takes back a test that worker w already holds (assigned, or running when `running`),
 * as after a coordinator restart when the worker reconnects and still runs it. Like
 * drv_balancer_submit() otherwise. w must be live (a LOST worker is brought back first
 * with drv_balancer_worker_back()). Returns the reference, or -1 with err filled. */
int64_t drv_balancer_adopt(drv_balancer *b, const drv_task *t, drv_wref w, bool running, double now,
                           drv_error *err);
/* Cancels a test in any non-final state; writes the FINAL decision to *out (if not
 * NULL). A running test is released from its worker: stopping its process is the
 * caller's job. Returns -1 if tref is not a live task. */
int drv_balancer_cancel(drv_balancer *b, drv_tref t, double now, drv_decision *out);
/* Drops t, one record of a speculative pair that lost (its twin finished first, replaced
 * it, or it yields): as drv_balancer_cancel(), and an original dropped while it runs makes
 * its worker suspect for a while (speculation.c). A user's cancel of a run is
 * drv_balancer_cancel(): no evidence against the worker. */
int drv_balancer_drop_copy(drv_balancer *b, drv_tref t, double now, drv_decision *out);
/* t's worker gives it back without having run it (the worker is stopping): t is queued
 * again without using a retry, and the REQUEUED decision (reason DRV_R_HANDED_BACK) is
 * written to *out. Returns -1, changing nothing, when t is not assigned (a running test
 * is finished or lost, never handed back). */
int drv_balancer_handback(drv_balancer *b, drv_tref t, double now, drv_decision *out);

/* ---- placement ---- */

/* Places queued tests on workers that can take them, best first (priority with aging,
 * then longest predicted first), at most max decisions. Tests that no worker of the
 * fleet could ever run are reported FINAL/UNSCHEDULABLE (after the grace setting)
 * instead. Returns the number of decisions written; fewer than max means nothing else
 * can be placed now. */
size_t drv_balancer_place(drv_balancer *b, double now, drv_decision *out, size_t max);

/* The worker started an assigned test. */
int drv_balancer_started(drv_balancer *b, drv_tref t, double now);

typedef struct drv_result {
    int exit_code; /* when exited */
    int signal;    /* when killed by a signal, else 0 */
    bool timed_out;
    bool infra_failure; /* the runner failed, not the test (spawn failure, crash) */
    bool restart;       /* with infra_failure: the worker restarted (a new process under its
                         * name) and lost it: charged to the test's retries, but not a
                         * failure of the machine (not counted towards quarantine) */
    bool skipped;       /* it exited with the code that says it skipped itself */
    double duration_s;  /* run time; learned by the predictor when the test exited */
} drv_result;

/* A test finished on its worker. Writes the decision (FINAL, or REQUEUED for a retry)
 * to *out. Returns -1 if tref is not a live assigned or running task. */
/* py3 (issue 13): learns that the member test name of a batch (docs/api.md, "Batches")
 * ran duration_s on worker w, as a test of its own: the next batch naming it is
 * predicted from it (the sum of its members), and GET /api/v1/predictions answers it. */
void drv_balancer_learn_member(drv_balancer *b, drv_wref w, const char *name, int family,
                               double duration_s);
int drv_balancer_finished(drv_balancer *b, drv_tref t, double now, const drv_result *r,
                          drv_decision *out);

/* ---- stealing, rebalancing, batching ---- */

/* Worker `thief` has free capacity: move tests other workers hold but have not started
 * to it when the predicted finish improves by more than the migration cost. Highest
 * priority first; a test moved within the hold-off is not moved again. */
size_t drv_balancer_steal(drv_balancer *b, drv_wref thief, double now, drv_decision *out,
                          size_t max);
/* Call after drv_balancer_place() (bal): when the queue is empty, a worker with a free
 * slot has nothing to take but what others hold and have not started, so stealing runs
 * for every such worker at once (reason DRV_R_STOLEN) instead of waiting for the next
 * rebalancing pass. Returns 0 at once while tests are queued or nothing is held unstarted
 * behind full slots. */
size_t drv_balancer_steal_idle(drv_balancer *b, double now, drv_decision *out, size_t max);
/* Runs stealing for every worker with free capacity (bounded by max moves). */
size_t drv_balancer_rebalance(drv_balancer *b, double now, drv_decision *out, size_t max);
/* A move of t (DRV_D_MOVED) is dropped: its old holder `from` had started it, or could
 * not answer whether it had (exec2, the two-phase move in docs/balancer.md). t goes
 * back to `from` assigned, counted there again and no longer on the thief; it keeps its
 * moved_at, so it is not moved again within the hold-off. No decision. Returns -1,
 * changing nothing, when t is not assigned or from is not a live worker. */
int drv_balancer_unmove(drv_balancer *b, drv_tref t, drv_wref from, double now);

/* ---- stragglers (speculative re-execution) ---- */

/* A running test worth a copy on another worker. */
typedef struct drv_straggler {
    drv_tref task;    /* the running test */
    drv_wref holder;  /* where it runs */
    drv_wref target;  /* where its copy should run */
    double running_s; /* how long it has run */
    double high_s;    /* its predicted p90 on holder */
    double copy_s;    /* the copy's predicted run on target */
    bool suspect;     /* holder is suspect (a test of its was superseded in the last 30 s,
                       * or one is overdue against its own runs on that class): copied
                       * past its p90, without the margin, and ahead of the queue */
    bool hang;        /* spec5: past twice a p90 from its own runs: ahead of the queue too */
    bool replace;     /* spec5: holder stuck (below): the copy replaces the test, which the
                       * caller kills at once (recorded superseded by the copy) */
    bool misplaced;   /* not overdue but misplaced: what was learned since it started says
                       * it runs far longer on holder than predicted when placed, it ends
                       * after the rest of the work, and its copy on target ends well
                       * before it (below): a copy ahead of the queue, racing it */
    bool hedge;       /* a close call: among the last tests to end, on a class whose speed
                       * for its family against another's is still a guess from first runs,
                       * and a copy on that other class ends about as soon: a copy racing it
                       * (docs/balancer.md, Close calls) */
} drv_straggler;

/* Which running tests to copy now, most overdue first (at most max, written to out):
 * a test with runs of its own (a p90 from anything else is no basis: spec4) that has
 * run longer than its predicted p90 on its worker plus settings.speculation_margin x
 * that p90 and at least a quarter of settings.speculation_min_s more, that allows copies (not
 * "idempotent": false) and was not copied yet, gets a copy on the eligible worker with a free slot
 * where it is predicted to run shortest (a faster class first; its own worker never), when that run
 * is shorter than what the test has run already. Each target's free slots are used at most once per
 * call. Nothing when settings.speculation is off. Call it right after drv_balancer_place() placed
 * all it could: slots still free then would otherwise idle. While tests are queued, a copy goes to
 * a worker with room for one beyond what placement fills it to, only when its worker is suspect: a
 * test of its was superseded (killed running because its copy finished first) in the last 30 s, or
 * one of its running tests is overdue against a p90 from its own runs on that class (then the
 * margin is the floor alone). On a suspect worker a test qualifies once past its p90
 * (docs/balancer.md, Stragglers). After the overdue ones, in the room left (at most 64 in
 * all), tests late though not overdue, whose copy goes ahead of the queue when the rest of
 * the work ends before them: close calls, among the last to end (within a tenth of the
 * latest predicted end), on a class whose speed for their family against another's is
 * not measured from paired runs, copied to that other class when the copy is predicted
 * to end at most a quarter later (docs/balancer.md, Close calls); then misplaced tests
 * (LATE's "longest approximate time to end" on a faster node): the predicted run on
 * their worker has grown by a quarter or more since placed, on a class speed measured
 * from paired runs, and a copy elsewhere is predicted to end in at most three quarters
 * of the time left (docs/balancer.md, Misplaced tests). Pure: changes nothing. */
size_t drv_balancer_stragglers(const drv_balancer *b, double now, drv_straggler *out, size_t max);
/* A copy of running test t was started: t is not proposed again. Returns -1 if t is
 * not a live running test. */
int drv_balancer_speculated(drv_balancer *b, drv_tref t);

/* Starts a copy of running test t on worker target (not its own): a new task record with
 * the same id and t's retry budgets, assigned to target like a placement and not stolen
 * within steal_holdoff_s; t is marked copied. Whichever finishes first is the result:
 * the caller finishes it (drv_balancer_finished) and drops the other with
 * drv_balancer_drop_copy(), which uses no retry (a copy lost with its worker is dropped the
 * same way by the caller: the other copy's budgets are untouched). Returns the copy's reference, or
 * -1 with err filled (t not running or copied already, target not live, full or t's own). */
int64_t drv_balancer_copy(drv_balancer *b, drv_tref t, drv_wref target, double now, drv_error *err);

/* spec4: the copies that should yield now (at most max, written to out): a copy uses
 * only capacity that would otherwise idle. A copy started while nothing was queued yields
 * when a test its worker holds cannot start for want of the slot it runs in, or when a
 * queued test placement could not place (call it right after drv_balancer_place()) is
 * eligible on its worker and would fit there without it. The caller kills each (its
 * original goes on) and drops it with drv_balancer_drop_copy(), as a losing copy. Copies
 * started while tests were queued (suspect workers, or the other slots absorb the rest:
 * drv_balancer_stragglers) went ahead of the queue on purpose and do not yield. Pure. */
size_t drv_balancer_yielding(const drv_balancer *b, double now, drv_tref *out, size_t max);

/* ---- what outlives the process ---- */

/* What the balancer learned of its fleet besides test durations (the predictor keeps
 * those): how fast each kind of worker runs each family, which workers and kinds ran a
 * family well, and how much slower or faster than its kind each worker runs. A kind of
 * worker (a class) is keyed by drv_balancer_class_key() of its capabilities by tag name
 * and its configured speed, a worker by drv_test_key() of its name: keys that do not
 * depend on the order in which classes and tags were numbered, so a coordinator keeps
 * these in its store and a restarted one knows its fleet again. */
typedef enum drv_learned_kind {
    DRV_LEARNED_CLASS_SPEED = 1,     /* class, family: relative speed (n: calibrated samples) */
    DRV_LEARNED_CLASS_AFFINITY = 2,  /* class, family: 0..1, how well the kind ran it */
    DRV_LEARNED_WORKER_AFFINITY = 3, /* worker, family: 0..1, how well the worker ran it */
    DRV_LEARNED_WORKER_PACE = 4,     /* worker, family -1: log(its runs / its class's) */
} drv_learned_kind;
#define DRV_LEARNED_KIND_MAX 4

typedef struct drv_learned_fact {
    uint32_t kind;  /* drv_learned_kind */
    uint64_t key;   /* the class's or the worker's key */
    int32_t family; /* 0..63, or -1 */
    double value;
    uint32_t n; /* samples behind value */
} drv_learned_fact;
typedef void (*drv_learned_fact_fn)(void *ctx, const drv_learned_fact *f);

/* The key of a class of workers with these capabilities and configured speed, from
 * the names of their tags (not their ids). */
uint64_t drv_balancer_class_key(const drv_balancer *b, const drv_capabilities *caps, float speed);
/* Calls fn for every fact the balancer knows now (learned here, or imported for a class
 * or worker that has not joined). Returns how many. */
size_t drv_balancer_export_learned(const drv_balancer *b, drv_learned_fact_fn fn, void *ctx);
/* Keeps a fact from a previous process; it takes effect when its class or worker joins
 * (call it before adding workers: facts of those already in the fleet wait until they
 * join again). Returns -1, keeping nothing, for an unknown kind or a value out of range. */
int drv_balancer_import_learned(drv_balancer *b, const drv_learned_fact *f);

/* ---- looking inside ---- */

/* Why queued test t is not running yet, in one or two sentences a user understands.
 * For other states, what it is doing. Returns -1 if t is not live. */
int drv_balancer_explain(const drv_balancer *b, drv_tref t, double now, char *buf, size_t len);
/* A decision in words: "test 12 placed on gpu-3 (composite)", "test 12 moved from a to b
 * (stolen)", "test 12 failed (retries_exhausted)". The balancer keeps no test names: the
 * caller adds them. */
void drv_decision_describe(const drv_balancer *b, const drv_decision *d, char *buf, size_t len);
const char *drv_reason_name(drv_reason r);

typedef struct drv_balancer_stats {
    uint64_t queued, assigned, running;
    uint64_t placed, moved, requeued, finished, unschedulable;
    uint64_t skipped; /* final because a test they run after did not pass */
    uint32_t workers, worker_classes, shapes;
    size_t bytes;            /* balancer memory: records, heaps, indexes */
    size_t bytes_per_task;   /* per live task record + queue entry */
    size_t bytes_per_worker; /* per live worker: its record, heap slots, name index */
} drv_balancer_stats;
void drv_balancer_stats_get(const drv_balancer *b, drv_balancer_stats *s);

/* Whether worker w's class meets the requirements of a test waiting in the queue (the
 * eligibility placement uses, per requirement shape). For the monitor's queue_stalled,
 * which counts free slots only on workers that could run what waits. False for a worker
 * not live or an empty queue. Cost: one bit test per shape holding queued tests (a test
 * cancelled while queued may keep its shape counted until the next placement). */
bool drv_balancer_worker_runs_queued(const drv_balancer *b, drv_wref w);

/* Live task record accessors. */
drv_task_state drv_balancer_task_state(const drv_balancer *b, drv_tref t);
uint64_t drv_balancer_task_id(const drv_balancer *b, drv_tref t);
drv_wref drv_balancer_task_worker(const drv_balancer *b, drv_tref t);
/* The tests worker w holds (assigned or running), most recently given first:
 * for (t = drv_balancer_held_first(b, w); t != DRV_REF_NONE; t = drv_balancer_held_next(b, t)).
 * The walk is valid while nothing is placed, released or finished. */
drv_tref drv_balancer_held_first(const drv_balancer *b, drv_wref w);
drv_tref drv_balancer_held_next(const drv_balancer *b, drv_tref t);
/* Predicted duration of t on worker w (mean and p90), as the policies see it. */
drv_prediction drv_balancer_predict(const drv_balancer *b, drv_tref t, drv_wref w);
/* t's predicted run in seconds as the balancer last judged it (suite2, issue 13): on its
 * holder while assigned or running, at reference speed while queued. For the CLI's ETA. */
double drv_balancer_predicted_run(const drv_balancer *b, drv_tref t);
/* Worker w's learned pace (learning.c): how much slower than its class it runs (> 1
 * slower, 1 until known); drv_balancer_predict() includes it. For the monitor, which
 * compares a worker with its class's prediction without it. */
double drv_balancer_worker_pace(const drv_balancer *b, drv_wref w);
/* Test t's model family (0: unknown or no live test). */
int drv_balancer_task_family(const drv_balancer *b, drv_tref t);
/* What the balancer learned of worker w and family (learning.c), for the worker detail:
 * *class_speed, its class's relative speed for the family (drv_predictor_speed: 1 =
 * reference, 1 when nothing is known); *affinity, how well w itself ran the family
 * (0..1, negative when it holds no affinity slot). */
void drv_balancer_family_learned(const drv_balancer *b, drv_wref w, int family, double *class_speed,
                                 double *affinity);

#endif
