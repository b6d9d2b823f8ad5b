/* speculation.c - stragglers: which running tests deserve a copy on another worker.
 *
 * A test that has run far past its predicted high quantile is often stuck on its worker
 * (a hung device, a slow disk, a noisy neighbour) rather than long by nature. When
 * slots would otherwise idle, starting a copy elsewhere costs nothing but the idle slot,
 * and the first copy to finish ends the test (MapReduce's backup tasks). This file only
 * decides which test to copy and where, given `now`; the caller starts the copy and
 * stops the loser.
 *
 * Cost: one walk of the workers' held lists (running tests only count), then per chosen
 * test one candidate per eligible class, as placement does: it never scans the fleet per
 * test. The coordinator calls it once per tick, not per placement. */
#include "balancer/engine.h"
#include "core/thermal.h"
#include <stdlib.h>
#include <string.h>

/* Whether worker w has a slot its thermal state admits and nothing holds. */
static bool has_free_slot(const drv_balancer *b, const drv_bworker *w, double now)
{
    uint32_t admitted =
        drv_thermal_admitted(&w->w.thermal, &b->cfg.settings.thermal, w->w.slots, now);
    return w->w.running + w->w.assigned < admitted;
}

/* How many entries of out[0..n) already send a copy to w. */
static uint32_t copies_to(const drv_straggler *out, size_t n, drv_wref w)
{
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += out[i].target == w;
    return k;
}

/* Whether w runs tests: live, healthy, not overloaded (full or not, unlike
 * drv_fleet_worker_available: while tests are queued every worker is full). */
static bool working(const drv_bworker *w)
{
    return w->live && w->w.health == DRV_HEALTH_OK && !w->overloaded;
}

/* Whether req fits what w's running and assigned tests leave of its resources. */
static bool resources_fit(const drv_bworker *w, const drv_requirements *req)
{
    const drv_capabilities *c = &w->w.caps;
    return w->w.used_cpu + req->cpu_cores <= c->cpu_cores &&
           w->w.used_gpu + req->gpu_count <= c->gpu_count &&
           w->w.used_memory_mb + req->memory_mb <= c->memory_mb;
}

/* How many tests w may hold when copies join while tests are queued: what placement
 * fills it to (its admitted slots and prefetch) and one more per slot, the copies (a
 * worker starts them before the first attempts it holds: copy_wait). */
static uint32_t copy_room(const drv_bworker *w)
{
    return (w->cap_limit > w->w.slots ? w->cap_limit : w->w.slots) + w->w.slots;
}

/* How long a copy sent to w now waits for a slot. A worker starts later attempts (a
 * copy is one) before the first attempts it holds (worker/agent.c, queue_test; the
 * simulator alike), so its prefetched tests are not waited for, only the `ahead` copies
 * that go before it: none when w runs fewer tests than its slots less those, else until
 * the (ahead + 1)-th of its running tests is predicted to end (an overdue one: now). */
static double copy_wait(const drv_balancer *b, const drv_bworker *w, uint32_t ahead, double now)
{
    if (w->w.running + ahead < w->w.slots)
        return 0;
    enum { KEEP = 16 };
    uint32_t want = w->w.running + ahead + 1 - w->w.slots; /* the want-th end frees it */
    if (want > KEEP)
        want = KEEP;
    double ends[KEEP]; /* the `want` smallest times left, ascending */
    uint32_t n = 0;
    for (drv_tref q = w->held; q != DRV_REF_NONE; q = b->tasks[q].next) {
        const drv_btask *r = &b->tasks[q];
        if (r->state != DRV_TASK_RUNNING)
            continue;
        double left =
            drv_engine_predict_worker(b, r, (drv_wref)(w - b->workers)) - (now - r->started_at);
        left = left > 0 ? left : 0;
        if (n == want && left >= ends[n - 1])
            continue;
        uint32_t at = n < want ? n++ : n - 1;
        while (at > 0 && ends[at - 1] > left) {
            ends[at] = ends[at - 1];
            at--;
        }
        ends[at] = left;
    }
    return n > 0 ? ends[n - 1] : 0;
}

/* How many copies w holds that have not started (they start before a new one). */
static uint32_t copies_waiting(const drv_balancer *b, const drv_bworker *w)
{
    uint32_t k = 0;
    for (drv_tref q = w->held; q != DRV_REF_NONE; q = b->tasks[q].next)
        k += b->tasks[q].state == DRV_TASK_ASSIGNED && b->tasks[q].copy_role >= COPY_COPY;
    return k;
}

/* A shape is restricted when its eligible classes hold less than this share of the
 * fleet's slots: its tests have nowhere else to go. */
#define RESTRICTED_SHARE 0.5

/* Straggler shape ts's group (see others_absorb) into group (class_words words, zeroed),
 * from the slots of each shape's classes shape_slots (slots_all in all); alone[s]
 * (n_shapes, zeroed) is set for the restricted shapes within it: work only the group can
 * do. */
static void group_of(const drv_balancer *b, uint32_t ts, const double *shape_slots,
                     double slots_all, uint64_t *group, bool *alone)
{
    memcpy(group, b->shapes[ts].elig, b->class_words * sizeof *group);
    for (uint32_t sh = 0; sh < b->n_shapes; sh++) /* restricted, for now */
        alone[sh] = shape_slots[sh] < RESTRICTED_SHARE * slots_all;
    for (bool grew = true; grew;) {
        grew = false;
        for (uint32_t sh = 0; sh < b->n_shapes; sh++) {
            const uint64_t *e = b->shapes[sh].elig;
            bool shares = false, within = true;
            for (uint32_t i = 0; i < b->class_words; i++) {
                shares = shares || (e[i] & group[i]) != 0;
                within = within && (e[i] & ~group[i]) == 0;
            }
            if (!alone[sh] || !shares || within)
                continue;
            for (uint32_t i = 0; i < b->class_words; i++)
                group[i] |= e[i];
            grew = true;
        }
    }
    for (uint32_t sh = 0; sh < b->n_shapes; sh++)
        for (uint32_t i = 0; i < b->class_words && alone[sh]; i++)
            alone[sh] = (b->shapes[sh].elig[i] & ~group[i]) == 0;
}

/* Whether the work still to do besides straggler t is done by the other slots before
 * `until` seconds from now: then a slot taken by a copy of t for that long costs the
 * suite nothing. Two fluid checks in slot-seconds, both must hold:
 * - t's group: its eligible classes, and those of every restricted shape (one whose
 *   classes hold less than half the fleet's slots) that shares a class with the group,
 *   repeated until none is added (the browser machines, for a browser test: tests that
 *   need chromium or edge compete with those that need chromium or firefox). The work
 *   only the group can do, what its workers hold (predicted whole, as placement counts
 *   it: `predicted_load_s`, t's own less) and the queued tests of restricted shapes
 *   within it, by the group's slots less the copy's;
 * - the fleet: all the work, held and queued, by every slot less one.
 * A slot is a working worker's admitted one (or a running test, when it runs more); a
 * queued test runs at its family's mean speed over its shape's slots (a webgpu test
 * never runs on edge, where webgpu families are slow: the mean over the whole group
 * made the browser work 10 % more than it was). (Stop 17 counted every queued test that
 * can run on one of t's classes against those alone: no copy could start at a run's
 * start, when a close call matters. t's classes alone, without the group, let close
 * calls take browser slots the browser tests needed: 100 workers seed 7, 1.043 ->
 * 1.060.) Walks the shapes, the workers and the tasks: called at most MISPLACED_CHECKS
 * times per call of drv_balancer_stragglers. */
static bool others_absorb(const drv_balancer *b, const drv_btask *t, double until, double now)
{
    /* slots by class, slots of each shape's classes */
    double *cls = drv_xcalloc(b->n_classes + 1, sizeof *cls);
    double *shape_slots = drv_xcalloc(b->n_shapes + 1, sizeof *shape_slots);
    double slots_all = 0, work_all = 0, slots = 0, work = 0;
    for (drv_wref wi = 0; wi < b->n_workers; wi++) {
        const drv_bworker *w = &b->workers[wi];
        if (!working(w))
            continue;
        uint32_t admitted =
            drv_thermal_admitted(&w->w.thermal, &b->cfg.settings.thermal, w->w.slots, now);
        double n = w->w.running > admitted ? w->w.running : admitted;
        cls[w->w.wclass] += n;
        slots_all += n;
        work_all += w->w.predicted_load_s;
    }
    for (uint32_t sh = 0; sh < b->n_shapes; sh++)
        for (uint32_t c = 0; c < b->n_classes; c++)
            shape_slots[sh] += drv_bit_get(b->shapes[sh].elig, c) ? cls[c] : 0;
    uint64_t *group = drv_xcalloc(b->class_words, sizeof *group);
    bool *alone = drv_xcalloc(b->n_shapes + 1, sizeof *alone);
    group_of(b, t->shape, shape_slots, slots_all, group, alone);
    for (uint32_t c = 0; c < b->n_classes; c++)
        slots += drv_bit_get(group, c) ? cls[c] : 0;
    for (drv_wref wi = 0; wi < b->n_workers; wi++) /* in worker order, as work_all */
        if (working(&b->workers[wi]) && drv_bit_get(group, b->workers[wi].w.wclass))
            work += b->workers[wi].w.predicted_load_s;
    if (t->worker < b->n_workers && working(&b->workers[t->worker])) { /* besides t */
        work -= t->pred_held_s;
        work_all -= t->pred_held_s;
    }
    /* A queued test's slot-seconds: its reference over the mean speed of its shape's
     * slots for its family (made on first need: per[shape x 64 + family], 0 = not yet,
     * < 0 = no slot). */
    double *per = drv_xcalloc((size_t)b->n_shapes * 64 + 1, sizeof *per);
    for (drv_tref q = 0; q < b->n_tasks; q++) {
        const drv_btask *r = &b->tasks[q];
        if (r->state != DRV_TASK_QUEUED)
            continue;
        double *k = &per[(size_t)r->shape * 64 + r->family];
        if (*k == 0) {
            double rate = 0;
            for (uint32_t c = 0; c < b->n_classes; c++)
                if (drv_bit_get(b->shapes[r->shape].elig, c))
                    rate += cls[c] * b->speed[(size_t)c * 64 + r->family];
            *k = rate > 0 ? shape_slots[r->shape] / rate : -1;
        }
        if (*k < 0)
            continue;
        work_all += r->pred_ref_s * *k;
        if (alone[r->shape])
            work += r->pred_ref_s * *k;
    }
    free(per);
    free(alone);
    free(group);
    free(shape_slots);
    free(cls);
    return slots > 1 && work / (slots - 1) <= until && work_all / (slots_all - 1) <= until;
}

/* What a copy of test t on worker w is predicted to run: by its own runs where it has some
 * (`own`: drv_balancer_predict, as a misplaced test's time left is) or as placement
 * predicts it (its reference at w's class speed and pace). */
static double copy_run(const drv_balancer *b, drv_tref t, drv_wref w, bool own)
{
    return own ? drv_balancer_predict(b, t, w).mean_s
               : drv_engine_predict_worker(b, &b->tasks[t], w);
}

/* The best worker for a copy of t (running on holder) among those with a free slot and
 * not already given one by out[0..n): the shortest predicted run (copy_run, `own`), ties
 * to the lower index; none of holder's class when `other_class`. While tests are queued
 * (`queued`), placement keeps every slot busy: then any worker with room for copies
 * beyond what placement fills it to, by the predicted finish there (its wait for a slot
 * included: copy_wait). DRV_REF_NONE when none. */
static drv_wref copy_target(const drv_balancer *b, drv_tref t, drv_wref holder,
                            const drv_straggler *out, size_t n, double now, bool queued, bool own,
                            bool other_class, double *run)
{
    const drv_btask *r = &b->tasks[t];
    const drv_requirements *req = drv_queue_shape_req(b->queue, r->shape);
    const uint64_t *elig = b->shapes[r->shape].elig;
    uint32_t skip = other_class ? b->workers[holder].w.wclass : UINT32_MAX;
    drv_wref best = DRV_REF_NONE;
    double best_run = 0;
    if (queued) { /* every worker is full: placement's candidates have none to give */
        for (drv_wref w = 0; w < b->n_workers; w++) {
            const drv_bworker *bw = &b->workers[w];
            if (w == holder || bw->w.wclass == skip || !working(bw) ||
                !drv_bit_get(elig, bw->w.wclass) || !resources_fit(bw, req) ||
                bw->w.running + bw->w.assigned + copies_to(out, n, w) >= copy_room(bw))
                continue;
            uint32_t ahead = copies_waiting(b, bw) + copies_to(out, n, w);
            double x = copy_wait(b, bw, ahead, now) + copy_run(b, t, w, own);
            if (best == DRV_REF_NONE || x < best_run) {
                best = w;
                best_run = x;
            }
        }
        *run = best_run;
        return best;
    }
    for (uint32_t i = 0; i < b->class_words; i++) {
        uint64_t m = elig[i] & b->avail[i];
        while (m) {
            uint32_t c = i * 64 + (uint32_t)__builtin_ctzll(m);
            m &= m - 1;
            if (c == skip)
                continue;
            uint32_t w = drv_fleet_candidate(b, c, DRV_ORDER_LEAST_LOADED, req);
            if (w == POS_NONE || w == holder)
                continue;
            const drv_bworker *bw = &b->workers[w];
            if (bw->w.health != DRV_HEALTH_OK || !has_free_slot(b, bw, now) ||
                bw->w.running + bw->w.assigned + copies_to(out, n, w) >= bw->w.slots)
                continue;
            double x = copy_run(b, t, w, own);
            if (best == DRV_REF_NONE || x < best_run || (x == best_run && w < best)) {
                best = w;
                best_run = x;
            }
        }
    }
    *run = best_run;
    return best;
}

/* Whether prediction p rests on the test's own runs (here or elsewhere). */
static bool from_own_runs(drv_prediction p)
{
    return p.samples > 0 && (p.source == DRV_PRED_TEST_CLASS || p.source == DRV_PRED_TEST);
}

/* Whether r may get a copy: it runs, and it is not a test that must not run twice, nor
 * one copied already (original or copy), nor one with ordering (after, locks, exclusive:
 * ordering.c keeps one record per test, and a copy would run outside its locks). */
static bool may_copy(const drv_btask *r)
{
    return r->state == DRV_TASK_RUNNING &&
           !(r->flags & (TF_NOT_IDEMPOTENT | TF_SPECULATED | TF_ORDERED | TF_LOCKING));
}

/* The most stragglers one call proposes (keys of a ranking are kept on the stack). */
#define STRAGGLERS_CAP 64

/* Puts st into out[first..*n), kept by descending key (key[] parallel to out; an equal
 * key goes after), at most max entries: past that the lowest falls off. */
static void insert_ranked(drv_straggler *out, double *key, size_t first, size_t *n, size_t max,
                          drv_straggler st, double k)
{
    size_t at = *n < max ? *n : max;
    while (at > first && key[at - 1] < k)
        at--;
    if (at >= max)
        return;
    for (size_t i = *n < max ? *n : max - 1; i > at; i--) {
        out[i] = out[i - 1];
        key[i] = key[i - 1];
    }
    out[at] = st;
    key[at] = k;
    if (*n < max)
        (*n)++;
}

/* How long a worker stays suspect after a test of its was superseded: hangs come in
 * runs on one machine (a stuck device, a full disk, a throttled host) more often than
 * alone. */
#define SUSPECT_S 30.0

/* How far running test t on wi, running for `running` s, is past the point where it
 * deserves a copy (> 0: it does); its predicted p90 in *high, and in *tight whether that
 * comes from the test's own runs on wi's class. That point is its p90 plus
 * speculation_margin x the p90 and at least speculation_min_s (a quarter of it when the
 * p90 comes from the test's own history, which is tight); on a suspect worker its p90. */
static double past_due(const drv_balancer *b, drv_tref t, drv_wref wi, double running, bool suspect,
                       double *high, bool *tight)
{
    const drv_balancer_settings *s = &b->cfg.settings;
    drv_prediction p = drv_balancer_predict(b, t, wi);
    *high = p.high_s;
    *tight = p.samples > 0 && p.source == DRV_PRED_TEST_CLASS;
    if (suspect)
        return running - p.high_s;
    double floor_s = s->speculation_min_s;
    if (from_own_runs(p))
        floor_s /= 4;
    double extra = s->speculation_margin * p.high_s;
    if (extra < floor_s || *tight) /* its own runs here: the p90 is the margin */
        extra = floor_s;
    return running - (p.high_s + extra);
}

/* spec5: a test past this many times its p90 from its own runs is taken as hung: its
 * copy goes ahead of the queue. A p90 from one run is 1.32 x that run, so this is 2.6 x
 * the run: far past what run-to-run spread or a class speed learned from paired runs
 * explain, and the copy (at most what the test has run already) costs less than the
 * slot a hang holds. */
#define HANG_P90S 2.0

/* spec4: a copy of a test with no runs of its own, off a suspect worker, must be
 * predicted to run at most this share of its run where it is. */
#define FASTER 0.8

/* Whether t's prediction on wi comes from its own runs. Without them, its p90 is
 * other tests' (its family's), and past it a test is more likely long by nature than
 * stuck: a copy that runs as fast as it finishes after it, and only holds a slot (a
 * cluster log's jobs, each new, drew 1,268 copies on metacentrum; spec4). */
static bool own_runs(const drv_balancer *b, drv_tref t, drv_wref wi)
{
    return from_own_runs(drv_balancer_predict(b, t, wi));
}

/* Whether test t's p90 on wi comes from its own runs resting on speeds of at least
 * `basis` (drv_predictor_speed_basis: a slow worker's tests scaled from a faster class
 * with its speed guessed all looked hung in test_sim's fleet_groups). */
static bool own_basis(const drv_balancer *b, drv_tref t, drv_wref wi, drv_speed_basis basis)
{
    const drv_btask *r = &b->tasks[t];
    return own_runs(b, t, wi) && drv_predictor_speed_basis(b->pred, r->test_key, r->family,
                                                           b->workers[wi].w.wclass) >= basis;
}

/* Whether test t on wi, running for `running` s against its p90 `high`, is past
 * HANG_P90S x a p90 from its own runs resting on speeds of at least `basis`: a likely
 * hang. */
static bool likely_hang(const drv_balancer *b, drv_tref t, drv_wref wi, double running, double high,
                        drv_speed_basis basis)
{
    return running > HANG_P90S * high && own_basis(b, t, wi, basis);
}

/* Counts worker wi's running tests (copied or not) past their p90 into *past_p90, those
 * past the point where they deserve a copy into *overdue, those among them with a tight
 * p90 into *tight_overdue, and those that look hung into *hung: overdue against a p90
 * from its own runs on this class, or a likely hang (past HANG_P90S x its p90) on speeds
 * a guess cannot make short (then the p90 is already too long: the simulated stragglers'
 * hung tests, predicted from the slow class at a guessed speed, had p90s of 2.2 x their
 * runs). Merely overdue there is no hang: a class believed faster may not be (second_run
 * seed 99, 100 workers: a 454 s test on a firefox worker taken for stuck 388 s in, its p90
 * 318 s from chromium at a speed guessed 1.5 x, truly 0.8 x: killed, run 2 1.008 -> 1.344
 * x the bound). */
static void overdue_on(const drv_balancer *b, drv_wref wi, double now, uint32_t *past_p90,
                       uint32_t *overdue, uint32_t *tight_overdue, uint32_t *hung)
{
    for (drv_tref t = b->workers[wi].held; t != DRV_REF_NONE; t = b->tasks[t].next) {
        const drv_btask *r = &b->tasks[t];
        double running = now - r->started_at, high;
        bool tight;
        if (r->state != DRV_TASK_RUNNING || !(running > b->cfg.settings.speculation_min_s / 4))
            continue;
        double due = past_due(b, t, wi, running, false, &high, &tight);
        *past_p90 += running > high;
        if (due > 0) {
            (*overdue)++;
            *tight_overdue += tight;
            *hung += tight || likely_hang(b, t, wi, running, high, DRV_SPEED_UP);
        }
    }
}

/* Misplaced tests (LATE, Zaharia et al., OSDI 2008: copy the task with the longest
 * approximate time to end onto a fast node). Placement chose a test's worker by the
 * predictions of the moment; a class speed learned since from paired runs (a test that
 * ran on two classes) may say the test runs far longer there: on the generated
 * second_run, speeds from first runs alone are off by up to a third on the classes with
 * few workers, and a long test sent at the start of run 2 to a class believed faster than
 * it is ended the run 5 % late (1,000 workers, seed 6: 509 s predicted on cpu-small, 725 s
 * taken, 106 s on the cuda-a100 it ran on in run 1). Such a test gets a copy ahead of the
 * queue where it ends first, when:
 * - its predicted run on its worker is MISPLACED_GROWTH x what it was when placed, on a
 *   speed for its family backed by MISPLACED_PAIRS paired runs or on the worker's own
 *   measured pace (a guess that changed is no evidence);
 * - it has at least MISPLACED_MIN x speculation_min_s left, predicted;
 * - (then, in drv_balancer_stragglers) the copy, its wait for a slot included, is predicted
 *   to end within MISPLACED_GAIN of that time left, and the rest of the work (queued and
 *   held) is done by the other slots before the test would end: it is what ends the run.
 * The original runs on: whichever ends first is the result (a wrong speed costs the
 * copy's slot, not the test). */
#define MISPLACED_GROWTH 1.25
#define MISPLACED_PAIRS  4u
#define MISPLACED_MIN    4.0
#define MISPLACED_GAIN   0.75
#define MISPLACED_CHECKS 2 /* others_absorb walks every task: at most this many per call */

/* Close calls (stop 18). At the start of a run whose end is its longest tests, which
 * class runs each of them fastest decides the run, and before tests ran on two classes
 * the class speeds for a family are guesses from first runs (off by 5-10 % between
 * classes of like speed even at 1,000 workers: second_run seed 7, a 600 s test kept on
 * firefox, where it had run, took 730 s; chromium, believed no faster, 705 s; 100
 * workers seed 5, a test moved from firefox to chromium believed faster took 654 s
 * against 624 s). A running test among the last to end (its predicted time left within
 * HEDGE_BAND of the longest of any running test's, with own runs) gets a copy racing it
 * on another class when the two classes' speeds for its family are not both backed by
 * MISPLACED_PAIRS paired runs, the copy (its wait for a slot included) is predicted to
 * end at most HEDGE_SLACK later than it, and the rest of the work ends before it (so the
 * copy's slot costs the suite nothing). Whichever ends first is the result: the run
 * ends at the better of two guesses. */
#define HEDGE_BAND  0.10
#define HEDGE_SLACK 0.25

/* Whether class c's speed for family is backed by paired runs (or is the anchor). */
static bool speed_backed(const drv_balancer *b, int family, uint32_t c)
{
    return b->pred && drv_predictor_speed_pairs(b->pred, family, c) >= MISPLACED_PAIRS;
}

/* Appends to out[0..n) (at most max in all, and STRAGGLERS_CAP) the running tests with
 * runs of their own that deserve a copy while they are not overdue: close calls, the
 * latest to end first, then misplaced ones, the largest growth first (high_s: the test's
 * predicted run on its worker now). Returns the new n. */
static size_t late_tests(const drv_balancer *b, double now, drv_straggler *out, size_t n,
                         size_t max)
{
    const drv_balancer_settings *s = &b->cfg.settings;
    double mkey[STRAGGLERS_CAP], hkey[STRAGGLERS_CAP], latest = 0;
    drv_straggler mis[STRAGGLERS_CAP], hedge[STRAGGLERS_CAP];
    size_t n_mis = 0, n_hedge = 0, room = max - n;
    for (drv_wref wi = 0; wi < b->n_workers; wi++) {
        const drv_bworker *w = &b->workers[wi];
        if (!w->live || w->w.running == 0)
            continue;
        for (drv_tref t = w->held; t != DRV_REF_NONE; t = b->tasks[t].next) {
            const drv_btask *r = &b->tasks[t];
            if (r->state != DRV_TASK_RUNNING)
                continue;
            drv_prediction p = drv_balancer_predict(b, t, wi);
            if (!from_own_runs(p))
                continue; /* a test new to the balancer: its prediction is a guess anyway */
            double pred = p.mean_s, running = now - r->started_at, left = pred - running;
            latest = left > latest ? left : latest;
            if (!may_copy(r) || !(left >= MISPLACED_MIN * s->speculation_min_s))
                continue;
            drv_straggler st = {.task = t,
                                .holder = wi,
                                .target = DRV_REF_NONE,
                                .running_s = running,
                                .high_s = pred};
            if (pred >= MISPLACED_GROWTH * r->pred_held_s &&
                (w->pace > 0 || speed_backed(b, r->family, w->w.wclass))) {
                st.misplaced = true;
                insert_ranked(mis, mkey, 0, &n_mis, room, st,
                              pred / (r->pred_held_s > 1e-3 ? r->pred_held_s : 1e-3));
            } else {
                st.hedge = true;
                insert_ranked(hedge, hkey, 0, &n_hedge, room, st, left);
            }
        }
    }
    for (size_t i = 0; i < n_hedge && n < max && hkey[i] >= (1 - HEDGE_BAND) * latest; i++)
        out[n++] = hedge[i];
    for (size_t i = 0; i < n_mis && n < max; i++)
        out[n++] = mis[i];
    return n;
}

size_t drv_balancer_stragglers(const drv_balancer *b, double now, drv_straggler *out, size_t max)
{
    const drv_balancer_settings *s = &b->cfg.settings;
    if (!s->speculation || max == 0 || b->n_running == 0)
        return 0;
    if (max > STRAGGLERS_CAP)
        max = STRAGGLERS_CAP;
    /* The most overdue first: keep the max with the highest running / p90, in order. */
    double key[STRAGGLERS_CAP];
    size_t n = 0;
    for (drv_wref wi = 0; wi < b->n_workers; wi++) {
        const drv_bworker *w = &b->workers[wi];
        if (!w->live || w->w.running == 0)
            continue;
        /* Suspect: a test of its was superseded in the last SUSPECT_S, or one of its
         * running tests is overdue against its own runs on this class (a tight p90: no
         * misprediction of a class's speed for a family, which makes every test of it
         * overdue there, but a machine that stopped). */
        bool proven = w->suspect && now - w->suspect_at < SUSPECT_S, suspect = proven;
        uint32_t past_p90 = 0, n_overdue = 0, tight_overdue = 0, hung = 0;
        overdue_on(b, wi, now, &past_p90, &n_overdue, &tight_overdue, &hung);
        if (!suspect) {
            if (n_overdue == 0)
                continue; /* none is past its point, none suspect: the common case */
            suspect = tight_overdue > 0;
        }
        /* spec5: stuck (the copies of its tests replace them): every test it runs, two
         * or more, is past its p90, one of them overdue against its own runs on this
         * class or a likely hang on speeds a guess cannot have made short; or a test of
         * its was superseded lately (then a test is replaced once past a p90 from its own
         * runs on such speeds). A class speed the balancer has wrong for a family makes
         * no test overdue against its runs on that class, nor twice past one scaled to a
         * class believed faster. */
        bool stuck = proven || (w->w.running >= 2 && past_p90 == w->w.running &&
                                (tight_overdue > 0 || hung > 0));
        for (drv_tref t = w->held; t != DRV_REF_NONE; t = b->tasks[t].next) {
            const drv_btask *r = &b->tasks[t];
            if (!may_copy(r))
                continue;
            double running = now - r->started_at;
            if (!(running > s->speculation_min_s / 4))
                continue; /* cheap: most running tests stop here, before a prediction */
            double high;
            bool tight;
            if (!(past_due(b, t, wi, running, suspect, &high, &tight) > 0))
                continue;
            drv_straggler st = {.task = t,
                                .holder = wi,
                                .target = DRV_REF_NONE,
                                .running_s = running,
                                .high_s = high,
                                .suspect = suspect,
                                .hang = likely_hang(b, t, wi, running, high, DRV_SPEED_MEASURED),
                                .replace = stuck &&
                                           (tight || !proven || own_basis(b, t, wi, DRV_SPEED_UP))};
            insert_ranked(out, key, 0, &n, max, st, high > 0 ? running / high : running);
        }
    }
    /* Then a place for each, in that order; a test without one (or only a slower one
     * than what it has run already) is dropped. */
    bool queued = b->n_queued > 0;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        drv_straggler st = out[i];
        const drv_btask *t = &b->tasks[st.task];
        double run = 0;
        st.target = copy_target(b, st.task, st.holder, out, kept, now, queued, false, false, &run);
        /* A stuck holder's test is not expected to end: any place will do (the best). */
        if (st.target == DRV_REF_NONE || !(run < st.running_s || st.replace))
            continue;
        /* While tests wait, a copy goes ahead of the queue (its slot is then not idle
         * capacity, and it does not yield) only for a likely hang: on a suspect worker
         * (a hang there is likely, its slot is lost as long as the hang lasts, and the
         * copy takes its place), or a test past twice its p90 from its own runs when the
         * other slots finish the rest of the work before then. (Without those two
         * conditions a copy ahead of the queue cost the generated second_run up to 13 %,
         * seed 10 run 2 1.000 -> 1.135 x the bound: tests a little past their p90 by
         * chance; spec4.) spec5: or a likely hang, past twice a p90 from its own runs
         * (on any class, at the holder's speed): that the rest of the work is absorbed
         * first is then too late (live stragglers: a fast worker's two slots hung 10 s
         * from the run's start, never copied). */
        bool own = own_runs(b, st.task, st.holder);
        if (queued && !st.suspect && !st.hang && !st.replace &&
            !(st.running_s > 1.5 * st.high_s && own && others_absorb(b, t, st.running_s, now)))
            continue;
        if (!st.suspect && !own && !(run < FASTER * drv_engine_predict_worker(b, t, st.holder)))
            continue;
        st.copy_s = run;
        out[kept++] = st;
    }
    /* Then, in the room left, the tests late though not overdue (misplaced, close
     * calls). Each copy must end well before its test (a close call's: not much after),
     * and the rest of the work before it (else it is not what ends the run late, and the
     * copy's slot is the rest's); both ends from the same predictions (the test's own
     * runs). A close call's two classes must not both have speeds measured from paired
     * runs: then the choice was no guess. */
    size_t absorb_checks = 0;
    n = late_tests(b, now, out, kept, max);
    for (size_t i = kept; i < n; i++) {
        drv_straggler st = out[i];
        const drv_btask *t = &b->tasks[st.task];
        double run = 0, left = st.high_s - st.running_s;
        st.target =
            copy_target(b, st.task, st.holder, out, kept, now, queued, true, st.hedge, &run);
        if (st.target == DRV_REF_NONE ||
            !(run <= (st.hedge ? 1 + HEDGE_SLACK : MISPLACED_GAIN) * left) ||
            (st.hedge && speed_backed(b, t->family, b->workers[st.holder].w.wclass) &&
             speed_backed(b, t->family, b->workers[st.target].w.wclass)) ||
            absorb_checks++ >= MISPLACED_CHECKS || !others_absorb(b, t, left, now))
            continue;
        st.copy_s = run;
        out[kept++] = st;
    }
    return kept;
}

int drv_balancer_speculated(drv_balancer *b, drv_tref t)
{
    if (t >= b->n_tasks || b->tasks[t].state != DRV_TASK_RUNNING)
        return -1;
    b->tasks[t].flags |= TF_SPECULATED;
    return 0;
}

int64_t drv_balancer_copy(drv_balancer *b, drv_tref t, drv_wref target, double now, drv_error *err)
{
    if (t >= b->n_tasks || b->tasks[t].state != DRV_TASK_RUNNING)
        return drv_error_set(err, "copy of test %u: it is not running", t);
    if (b->tasks[t].flags & TF_SPECULATED)
        return drv_error_set(err, "copy of test %llu: it has a copy already",
                             (unsigned long long)b->tasks[t].id);
    if (b->tasks[t].flags & (TF_ORDERED | TF_LOCKING))
        return drv_error_set(err, "copy of test %llu: it runs in order or under locks",
                             (unsigned long long)b->tasks[t].id);
    if (target >= b->n_workers || !b->workers[target].live || b->tasks[t].worker == target)
        return drv_error_set(err, "copy of test %llu: worker %u is not another live worker",
                             (unsigned long long)b->tasks[t].id, target);
    const drv_bworker *w = &b->workers[target];
    if (!working(w) || w->w.running + w->w.assigned >= copy_room(w) ||
        !resources_fit(w, drv_queue_shape_req(b->queue, b->tasks[t].shape)))
        return drv_error_set(err, "copy of test %llu: %s has no room for it",
                             (unsigned long long)b->tasks[t].id, w->w.name);
    drv_tref c = drv_engine_task_alloc(b); /* b->tasks may move */
    b->tasks[t].flags |= TF_SPECULATED;
    b->tasks[t].copy_role = COPY_ORIGINAL;
    drv_btask *r = &b->tasks[c];
    *r = b->tasks[t];
    /* Started while tests wait (a suspect worker, or the others absorb the rest): it went
     * ahead of the queue on purpose and does not yield to it (drv_balancer_yielding). */
    r->copy_role = b->n_queued > 0 ? COPY_AHEAD : COPY_COPY;
    r->twin = t;
    r->worker = DRV_REF_NONE;
    r->prev = r->next = DRV_REF_NONE;
    r->seq = b->seq++;
    /* Its budgets are t's: whichever wins is the test. No ordering record (t has none:
     * drv_balancer_stragglers() leaves ordered tests alone). */
    r->flags = (uint8_t)((r->flags & (TF_FIRST_RUN | TF_NOT_IDEMPOTENT)) | TF_SPECULATED);
    r->moved_at = now; /* not stolen within the hold-off */
    drv_engine_assign(b, c, target, now);
    return c;
}

/* Whether req fits w's resources once copy x (of shape requirements xr) is gone. */
static bool fits_without(const drv_bworker *w, const drv_requirements *xr,
                         const drv_requirements *req)
{
    const drv_capabilities *c = &w->w.caps;
    return w->w.used_cpu - xr->cpu_cores + req->cpu_cores <= c->cpu_cores &&
           w->w.used_gpu - xr->gpu_count + req->gpu_count <= c->gpu_count &&
           w->w.used_memory_mb - xr->memory_mb + req->memory_mb <= c->memory_mb;
}

/* Whether copy x on w stands in the way of waiting work (w working, x held by it):
 * - a test w holds cannot start for want of the slot x runs in;
 * - tests are queued: the head of a queued shape eligible on w (placement left it
 *   queued: nothing free fits it) would fit w without x;
 * - none is queued: a test another worker holds behind full slots, which a steal may
 *   move (not within its hold-off), would fit a free slot of w without x. */
static bool in_the_way(const drv_balancer *b, const drv_btask *x, const drv_bworker *w, double now)
{
    uint32_t admitted =
        drv_thermal_admitted(&w->w.thermal, &b->cfg.settings.thermal, w->w.slots, now);
    uint32_t held = w->w.running + w->w.assigned;
    if (x->state == DRV_TASK_RUNNING && w->w.assigned > 0 && held > admitted)
        return true;
    const drv_requirements *xr = drv_queue_shape_req(b->queue, x->shape);
    if (w->reserved && ((b->resv_dims & 1 && xr->cpu_cores) ||
                        (b->resv_dims & 2 && xr->gpu_count) || (b->resv_dims & 4 && xr->memory_mb)))
        return true; /* it holds what the reservation drains the worker of */
    if (b->n_queued > 0) {
        if (held - 1 >= w->cap_limit)
            return false;
        for (uint32_t s = 0; s < b->n_shapes; s++) {
            drv_queue_entry e;
            if (!drv_bit_get(b->shapes[s].elig, w->w.wclass) ||
                !drv_queue_shape_peek(b->queue, s, &e))
                continue;
            const drv_btask *q = &b->tasks[e.ref];
            if (q->state != DRV_TASK_QUEUED || (q->flags & (TF_WAITING | TF_PARKED | TF_LOCKING)))
                continue; /* cancelled, or waiting for something a slot does not give */
            if (fits_without(w, xr, drv_queue_shape_req(b->queue, s)))
                return true;
        }
        return false;
    }
    if (held - 1 >= admitted)
        return false;
    for (uint32_t word = 0; word < b->victim_words; word++)
        for (uint64_t m = b->victims[word]; m; m &= m - 1) {
            const drv_bworker *v = &b->workers[word * 64 + (uint32_t)__builtin_ctzll(m)];
            if (v == w)
                continue;
            for (drv_tref t = v->held; t != DRV_REF_NONE; t = b->tasks[t].next) {
                const drv_btask *r = &b->tasks[t];
                if (r->state == DRV_TASK_ASSIGNED && r->copy_role == 0 &&
                    now - r->moved_at >= b->cfg.settings.steal_holdoff_s &&
                    drv_bit_get(b->shapes[r->shape].elig, w->w.wclass) &&
                    fits_without(w, xr, drv_queue_shape_req(b->queue, r->shape)))
                    return true;
            }
        }
    return false;
}

size_t drv_balancer_yielding(const drv_balancer *b, double now, drv_tref *out, size_t max)
{
    size_t n = 0;
    if (b->n_running == 0)
        return 0;
    for (drv_wref wi = 0; wi < b->n_workers && n < max; wi++) {
        const drv_bworker *w = &b->workers[wi];
        if (!working(w))
            continue;
        for (drv_tref x = w->held; x != DRV_REF_NONE && n < max; x = b->tasks[x].next) {
            const drv_btask *r = &b->tasks[x];
            if (r->copy_role != COPY_COPY ||
                (r->state != DRV_TASK_RUNNING && r->state != DRV_TASK_ASSIGNED))
                continue;
            const drv_btask *o = r->twin < b->n_tasks ? &b->tasks[r->twin] : NULL;
            if (!o || o->id != r->id || o->copy_role != COPY_ORIGINAL ||
                o->state != DRV_TASK_RUNNING)
                continue; /* its original is gone: this copy is the test now */
            if (in_the_way(b, r, w, now))
                out[n++] = x;
        }
    }
    return n;
}
