/* engine.c - the discrete-event loop that drives the balancer on a virtual clock, and
 * the two baselines that do without it.
 *
 * One run of one policy: a fresh balancer and predictor; the workload's workers join
 * (at join_at) and leave (at leave_at: drained, then removed once empty); tests are
 * submitted at their arrival; whenever something changed at an instant (after every
 * event at that instant was handled) drv_balancer_place() is called until it has
 * nothing more to place. A worker starts what it is given as soon as it has a free slot
 * (in the order it was given), and a test finishes after its true duration divided by
 * the worker's true speed for its family: speed x family_speed, which the balancer only
 * learns from results. A flaky test exits 1 with its probability (drawn from a hash of
 * seed, test, run and attempt, so every policy sees the same draws). Heartbeats every
 * heartbeat_s report each worker's load; drv_balancer_rebalance runs every rebalance_s;
 * workers crash at crash_rate_per_h (their running tests are lost: the balancer requeues
 * them by its retry rules) and come back after crash_down_s.
 *
 * Events live in one binary heap ordered by (time, insertion sequence), so ties are
 * resolved the same way every time. Arrivals and ticks keep one pending event each
 * (the handler pushes the next), so the heap holds about one event per running test.
 *
 * With runs > 1 (second_run) the same balancer and predictor take the suite again from
 * the end of the previous run (next whole second): every worker is registered again
 * (lost ones come back, absent ones join), joins and leaves of the workload apply to the
 * first run only.
 *
 * Ownership: the sim struct owns every array it points to; sim_free() releases them,
 * the balancer and the predictor. The workload is borrowed (its tag table is lent to
 * the balancer for the run). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "balancer/balancer.h"
#include "core/predictor.h"
#include "sim/sim.h"

#define DECISIONS_MAX   4096
#define STUCK_AFTER_S   3600.0 /* nothing running, nothing to come: give up after this long */
#define PREDICTOR_ALPHA 0.3
#define MIN_RUN_FACTOR  0.05 /* a run-to-run factor never goes below this */

void drv_sim_options_default(drv_sim_options *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->runs = 1;
    o->spread = 0;
    o->heartbeat_s = 1;
    o->rebalance_s = 1; /* as the coordinator (REBALANCE_EVERY_S) */
    o->rebalance_max = 256;
    o->crash_rate_per_h = 0;
    o->crash_down_s = 60;
    o->retry_failures = true;
    o->max_time_s = 1e7;
    o->timing = true;
    o->speculate_s = 0.5; /* as the coordinator (SPECULATE_EVERY_S) */
}

double drv_sim_true_duration(const drv_workload *w, size_t i, unsigned run, double spread,
                             uint64_t seed)
{
    double d = w->tests[i].duration_s;
    if (!(d > 0))
        return 0;
    if (spread > 0) {
        double f = 1 + spread * (2 * drv_sim_hash01(seed, 0xD0, i, run) - 1);
        d *= f > MIN_RUN_FACTOR ? f : MIN_RUN_FACTOR;
    }
    return d;
}

static double wall_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The true seconds test t takes on worker sw when its duration at speed 1 is d. */
static double run_time(const drv_sim_worker *sw, const drv_sim_test *t, double d)
{
    double s = sw->speed > 0 ? sw->speed : 1.0;
    int f = t->family > 0 && t->family < DRV_FAMILY_MAX ? t->family : 0;
    double fs = sw->family_speed[f] > 0 ? sw->family_speed[f] : 1.0;
    return d / (s * fs);
}

/* ---- the event heap ----------------------------------------------------------------- */

enum ev_kind {
    EV_ARRIVAL,
    EV_FINISH,
    EV_JOIN,
    EV_LEAVE,
    EV_CRASH,
    EV_BACK,
    EV_TICK,
    EV_REBALANCE,
    EV_SPECULATE
};

typedef struct sim_event {
    double t;
    uint64_t seq;
    uint32_t a, b; /* FINISH: test, attempt; fleet events: worker, generation */
    uint8_t kind;
} sim_event;

typedef struct event_heap {
    sim_event *v;
    size_t n, cap;
    uint64_t seq;
} event_heap;

static bool ev_before(const sim_event *x, const sim_event *y)
{
    return x->t < y->t || (x->t == y->t && x->seq < y->seq);
}

static void heap_push(event_heap *h, double t, uint8_t kind, uint32_t a, uint32_t b)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->v = drv_xrealloc(h->v, h->cap * sizeof *h->v);
    }
    sim_event e = {.t = t, .seq = h->seq++, .a = a, .b = b, .kind = kind};
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_before(&e, &h->v[p]))
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = e;
}

/* Removes and returns the first event; the heap must not be empty. */
static sim_event heap_pop(event_heap *h)
{
    sim_event top = h->v[0];
    sim_event last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && ev_before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!ev_before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}

/* ---- simulation state --------------------------------------------------------------- */

enum w_status { W_ABSENT = 0, W_PRESENT, W_LOST, W_GONE };
/* T_DROPPED: one of a speculative pair that lost (killed) or went away; its twin is the
 * test. */
enum t_status { T_PENDING = 0, T_QUEUED, T_HELD, T_RUNNING, T_FINAL, T_DROPPED };

typedef struct sim_worker {
    drv_wref ref; /* while registered */
    uint32_t slots;
    uint32_t running;
    uint32_t *run;  /* running tests (slots entries) */
    uint32_t *wait; /* held, not started, in the order given */
    uint32_t n_wait, cap_wait;
    uint32_t gen; /* bumped when it crashes or leaves: older fleet events are void */
    uint8_t status;
    bool leaving;
    double busy_s;
    uint64_t crash_rng;
} sim_worker;

typedef struct sim_test {
    drv_tref ref;
    uint32_t worker;
    double start;
    double end;
    float last_run;
    uint16_t attempt; /* starts so far in this run */
    uint8_t status;
    uint8_t final;
    bool fails; /* the current attempt exits 1 */
    /* A later attempt (a retry, a moved test, a copy): a worker starts it before the
     * first attempts it holds, as `drover worker` does (agent.c, queue_test). */
    bool later;
    /* Records 0..n_tests-1 are the workload's tests; a speculative copy is a record after
     * them. src: the workload test it runs (itself for the first ones); twin: the other
     * record of a speculative pair, or DRV_SIM_NONE. The result goes to record src. */
    uint32_t src;
    uint32_t twin;
} sim_test;

typedef struct sim {
    const drv_workload *w;
    const drv_sim_options *opt;
    drv_balancer *b;
    drv_predictor *pred;
    sim_worker *ws;
    sim_test *ts;
    size_t n_ts, cap_ts; /* records: the tests, then this run's copies */
    uint32_t hangs_left; /* of opt->hang_count, in the last run */
    bool speculate_due;  /* a speculation tick came: after the next placement round */
    uint32_t *order;     /* tests by arrival */
    size_t next_arrival;
    uint32_t *test_of; /* by tref */
    size_t cap_test_of;
    uint32_t *worker_of; /* by wref */
    size_t cap_worker_of;
    event_heap heap;
    drv_decision dec[DECISIONS_MAX];
    unsigned run;
    double t0, now, last_progress;
    size_t n_final, n_running;
    size_t fleet_pending; /* JOIN, LEAVE, BACK events in the heap */
    bool changed;
    double fleet_slots; /* slots of every worker of the workload: the series' denominator */
    drv_sim_result *res;
    drv_error *err;
    int failed; /* a call the run cannot go on after failed (err filled) */
} sim;

static void map_test(sim *s, drv_tref ref, uint32_t i)
{
    if (ref >= s->cap_test_of) {
        size_t cap = s->cap_test_of ? s->cap_test_of : 1024;
        while (cap <= ref)
            cap *= 2;
        s->test_of = drv_xrealloc(s->test_of, cap * sizeof *s->test_of);
        s->cap_test_of = cap;
    }
    s->test_of[ref] = i;
}

static void map_worker(sim *s, drv_wref ref, uint32_t j)
{
    if (ref >= s->cap_worker_of) {
        size_t cap = s->cap_worker_of ? s->cap_worker_of : 64;
        while (cap <= ref)
            cap *= 2;
        s->worker_of = drv_xrealloc(s->worker_of, cap * sizeof *s->worker_of);
        s->cap_worker_of = cap;
    }
    s->worker_of[ref] = j;
}

static void push_fleet(sim *s, double t, uint8_t kind, uint32_t j)
{
    heap_push(&s->heap, t, kind, j, s->ws[j].gen);
    s->fleet_pending++;
}

/* Schedules worker j's next crash, when crashes are on. */
static void schedule_crash(sim *s, uint32_t j)
{
    if (!(s->opt->crash_rate_per_h > 0))
        return;
    double mean = 3600.0 / s->opt->crash_rate_per_h;
    double u = drv_sim_uniform(&s->ws[j].crash_rng);
    heap_push(&s->heap, s->now - mean * log(1.0 - u), EV_CRASH, j, s->ws[j].gen);
}

/* ---- the observer -------------------------------------------------------------------- */

static drv_sim_view view_of(const sim *s)
{
    return (drv_sim_view){
        .b = s->b, .now = s->now, .w = s->w, .run = s->run, .t = s->now - s->t0, .sim = s};
}

drv_tref drv_sim_view_test(const drv_sim_view *v, uint32_t i)
{
    const sim *s = v->sim;
    return i < s->w->n_tests ? s->ts[i].ref : DRV_REF_NONE;
}

drv_wref drv_sim_view_worker(const drv_sim_view *v, uint32_t j)
{
    const sim *s = v->sim;
    return j < s->w->n_workers ? s->ws[j].ref : DRV_REF_NONE;
}

/* Tells the observer, if any, about decision d; from and ran_s as drv_sim_decision. */
static void observe_decision(const sim *s, const drv_decision *d, uint32_t from, double ran_s)
{
    const drv_sim_observer *o = s->opt->observer;
    if (!o || !o->decision)
        return;
    drv_sim_decision sd = {.d = d,
                           .test = s->ts[s->test_of[d->task]].src,
                           .worker = DRV_SIM_NONE,
                           .from = from,
                           .ran_s = ran_s};
    if (d->kind == DRV_D_PLACED || d->kind == DRV_D_MOVED)
        sd.worker = s->worker_of[d->worker];
    if ((d->kind == DRV_D_MOVED || d->kind == DRV_D_REQUEUED) && d->from_worker != DRV_REF_NONE)
        sd.from = s->worker_of[d->from_worker];
    drv_sim_view v = view_of(s);
    o->decision(o->ctx, &v, &sd);
}

static void observe_fleet(const sim *s, uint32_t j, drv_sim_fleet_event e)
{
    const drv_sim_observer *o = s->opt->observer;
    if (!o || !o->fleet)
        return;
    drv_sim_view v = view_of(s);
    o->fleet(o->ctx, &v, j, e, s->ws[j].running, s->ws[j].n_wait);
}

/* ---- applying decisions ------------------------------------------------------------- */

static void start_test(sim *s, uint32_t i, uint32_t j);

static void wait_push(sim_worker *sw, uint32_t i)
{
    if (sw->n_wait == sw->cap_wait) {
        sw->cap_wait = sw->cap_wait ? sw->cap_wait * 2 : 8;
        sw->wait = drv_xrealloc(sw->wait, sw->cap_wait * sizeof *sw->wait);
    }
    sw->wait[sw->n_wait++] = i;
}

static void wait_remove(sim_worker *sw, uint32_t i)
{
    for (uint32_t k = 0; k < sw->n_wait; k++) {
        if (sw->wait[k] == i) {
            memmove(&sw->wait[k], &sw->wait[k + 1], (sw->n_wait - k - 1) * sizeof *sw->wait);
            sw->n_wait--;
            return;
        }
    }
}

/* Test i is now held by worker j: it starts at once if a slot is free. */
static void hold(sim *s, uint32_t i, uint32_t j)
{
    sim_worker *sw = &s->ws[j];
    s->ts[i].worker = j;
    s->ts[i].status = T_HELD;
    if (sw->running < sw->slots && sw->n_wait == 0) {
        start_test(s, i, j);
        return;
    }
    wait_push(sw, i);
    if (s->ts[i].later) { /* ahead of the first attempts, after the later ones */
        uint32_t at = 0;
        while (at < sw->n_wait - 1 && s->ts[sw->wait[at]].later)
            at++;
        memmove(&sw->wait[at + 1], &sw->wait[at], (sw->n_wait - 1 - at) * sizeof *sw->wait);
        sw->wait[at] = i;
    }
}

/* Record i's final state, written to its test's record too (a copy that won). */
static void record_final(sim *s, uint32_t i, uint8_t state)
{
    sim_test *t = &s->ts[i];
    t->status = T_FINAL;
    t->final = state;
    t->end = s->now;
    if (t->src != i) {
        sim_test *o = &s->ts[t->src];
        o->status = T_FINAL;
        o->final = state;
        o->end = s->now;
        o->last_run = t->last_run;
    }
    s->n_final++;
    s->last_progress = s->now;
}

/* Applies d to the simulated fleet; the observer was told already (apply()). */
static void apply_unseen(sim *s, const drv_decision *d)
{
    uint32_t i = s->test_of[d->task];
    sim_test *t = &s->ts[i];
    switch (d->kind) {
    case DRV_D_PLACED:
        hold(s, i, s->worker_of[d->worker]);
        break;
    case DRV_D_MOVED:
        wait_remove(&s->ws[s->worker_of[d->from_worker]], i);
        s->res->steals++;
        t->later = true; /* a new attempt on the thief */
        hold(s, i, s->worker_of[d->worker]);
        break;
    case DRV_D_REQUEUED:
        t->status = T_QUEUED;
        t->later = true;
        s->res->retries++;
        break;
    case DRV_D_FINAL:
        record_final(s, i, (uint8_t)d->state);
        break;
    }
}

static void start_waiting(sim *s, uint32_t j);
static void remove_from_run(sim_worker *sw, uint32_t i);
static void maybe_remove(sim *s, uint32_t j);

/* Drops record x of a speculative pair, as the coordinator does (coordinator/speculate.c):
 * killed when it runs (its slot freed: the worker starts what it holds), taken off its
 * worker when held, released by the balancer with no retry used. Its twin is the test
 * from now on. */
static void drop_copy(sim *s, uint32_t x)
{
    sim_test *t = &s->ts[x];
    uint32_t y = t->twin;
    uint32_t j = t->worker;
    uint8_t was = t->status;
    drv_decision d;
    (void)drv_balancer_drop_copy(s->b, t->ref, s->now, &d); /* -1: final or released already */
    t->twin = DRV_SIM_NONE;
    t->status = T_DROPPED;
    if (y != DRV_SIM_NONE) {
        s->ts[y].twin = DRV_SIM_NONE;
        if (t->src == x) /* the view of the test follows the copy that goes on */
            t->ref = s->ts[y].ref;
    }
    s->changed = true;
    if (was == T_RUNNING) {
        sim_worker *sw = &s->ws[j];
        remove_from_run(sw, x);
        s->n_running--;
        sw->busy_s += s->now - t->start;
        start_waiting(s, j);
        maybe_remove(s, j);
    } else if (was == T_HELD) {
        wait_remove(&s->ws[j], x);
        maybe_remove(s, j);
    }
}

static void apply(sim *s, const drv_decision *d)
{
    uint32_t i = s->test_of[d->task];
    if (s->ts[i].twin != DRV_SIM_NONE && d->kind != DRV_D_PLACED) {
        /* One of a pair lost with its worker, moved or handed back: it goes, with no
         * retry used; the other copy is the test. */
        drop_copy(s, i); /* a moved one is still on its old worker's list here */
        return;
    }
    observe_decision(s, d, DRV_SIM_NONE, -1);
    apply_unseen(s, d);
}

/* Places everything the balancer will place now, timing the calls. */
static void place_all(sim *s)
{
    size_t n;
    do {
        double w0 = s->opt->timing ? wall_clock() : 0;
        n = drv_balancer_place(s->b, s->now, s->dec, DECISIONS_MAX);
        if (s->opt->timing)
            s->res->place_wall_s += wall_clock() - w0;
        for (size_t k = 0; k < n; k++) {
            if (s->dec[k].kind == DRV_D_PLACED)
                s->res->placements++;
            apply(s, &s->dec[k]);
        }
    } while (n == DECISIONS_MAX);
    /* As the coordinator does after placing: idle workers take what others hold. */
    do {
        n = drv_balancer_steal_idle(s->b, s->now, s->dec, DECISIONS_MAX);
        for (size_t k = 0; k < n; k++)
            apply(s, &s->dec[k]);
    } while (n == DECISIONS_MAX);
}

static void start_test(sim *s, uint32_t i, uint32_t j)
{
    sim_test *t = &s->ts[i];
    sim_worker *sw = &s->ws[j];
    const drv_sim_test *wt = &s->w->tests[t->src];
    const drv_sim_observer *o = s->opt->observer;
    if (o && o->started) {
        drv_sim_view v = view_of(s);
        o->started(o->ctx, &v, t->src, j);
    }
    if (drv_balancer_started(s->b, t->ref, s->now) != 0) {
        s->failed = drv_error_set(s->err, "the balancer refused to start test \"%s\" on %s",
                                  wt->name ? wt->name : "?", s->w->workers[j].name);
        return;
    }
    t->status = T_RUNNING;
    t->start = s->now;
    t->attempt++;
    t->fails = wt->flaky_p > 0 &&
               drv_sim_hash01(s->opt->seed ^ 0xF1A4, t->src, s->run, t->attempt) < wt->flaky_p;
    double d = drv_sim_true_duration(s->w, t->src, s->run, s->opt->spread, s->opt->seed);
    double run = run_time(&s->w->workers[j], wt, d) + s->opt->test_overhead_s;
    if (s->hangs_left > 0 && j == s->opt->hang_worker) { /* a hang, as bench/live.sh's */
        s->hangs_left--;
        run += s->opt->hang_s;
    }
    heap_push(&s->heap, s->now + run, EV_FINISH, i, t->attempt);
    sw->run[sw->running++] = i;
    s->n_running++;
    s->last_progress = s->now;
}

/* Worker j starts what it holds while it has free slots. */
static void start_waiting(sim *s, uint32_t j)
{
    sim_worker *sw = &s->ws[j];
    while (!s->failed && sw->running < sw->slots && sw->n_wait > 0) {
        uint32_t i = sw->wait[0];
        memmove(&sw->wait[0], &sw->wait[1], (sw->n_wait - 1) * sizeof *sw->wait);
        sw->n_wait--;
        start_test(s, i, j);
    }
}

static void remove_from_run(sim_worker *sw, uint32_t i)
{
    for (uint32_t k = 0; k < sw->running; k++) {
        if (sw->run[k] == i) {
            sw->run[k] = sw->run[--sw->running];
            return;
        }
    }
}

/* Forgets a leaving worker once it holds nothing. */
static void maybe_remove(sim *s, uint32_t j)
{
    sim_worker *sw = &s->ws[j];
    if (!sw->leaving || sw->running > 0 || sw->n_wait > 0)
        return;
    if (drv_balancer_worker_remove(s->b, sw->ref, NULL) == 0) {
        sw->status = W_GONE;
        sw->leaving = false;
        s->changed = true;
    }
}

/* ---- event handlers ------------------------------------------------------------------ */

static void on_arrivals(sim *s)
{
    const drv_workload *w = s->w;
    while (s->next_arrival < w->n_tests) {
        uint32_t i = s->order[s->next_arrival];
        const drv_sim_test *wt = &w->tests[i];
        if (s->t0 + wt->arrival_s > s->now)
            break;
        s->next_arrival++;
        drv_task task;
        memset(&task, 0, sizeof task);
        task.id = (uint64_t)s->run * w->n_tests + i + 1;
        task.name = wt->name;
        task.model_id = wt->model_id;
        task.test_type = wt->test_type;
        task.family = wt->family;
        task.req = wt->req;
        task.priority = wt->priority;
        task.max_retries = wt->max_retries;
        task.retry_on_failure = s->opt->retry_failures || wt->retry_on_failure;
        int64_t ref = drv_balancer_submit(s->b, &task, s->now, s->err);
        if (ref < 0) {
            s->failed = drv_error_prefix(s->err, "submitting test %u", i);
            return;
        }
        s->ts[i].ref = (drv_tref)ref;
        s->ts[i].status = T_QUEUED;
        map_test(s, (drv_tref)ref, i);
        s->res->events++;
    }
    if (s->next_arrival < w->n_tests)
        heap_push(&s->heap, s->t0 + w->tests[s->order[s->next_arrival]].arrival_s, EV_ARRIVAL, 0,
                  0);
    s->changed = true;
}

static void on_finish(sim *s, uint32_t i, uint32_t attempt)
{
    sim_test *t = &s->ts[i];
    if (t->status != T_RUNNING || t->attempt != attempt)
        return; /* its worker crashed meanwhile */
    uint32_t j = t->worker;
    sim_worker *sw = &s->ws[j];
    double took = s->now - t->start;
    remove_from_run(sw, i);
    s->n_running--;
    sw->busy_s += took;
    t->last_run = (float)took;
    const drv_sim_test *wt = &s->w->tests[t->src];
    int code = wt->exit_code ? wt->exit_code : 1;
    drv_result r = {.exit_code = t->fails ? code : 0, .duration_s = took};
    drv_decision d;
    if (drv_balancer_finished(s->b, t->ref, s->now, &r, &d) != 0) {
        s->failed = drv_error_set(s->err, "the balancer refused the result of test \"%s\"",
                                  wt->name ? wt->name : "?");
        return;
    }
    if (t->twin != DRV_SIM_NONE) /* first to finish: the other copy is killed */
        drop_copy(s, t->twin);
    observe_decision(s, &d, j, took);
    apply_unseen(s, &d);
    start_waiting(s, j);
    maybe_remove(s, j);
    s->last_progress = s->now;
    s->changed = true;
}

static void add_worker(sim *s, uint32_t j)
{
    const drv_sim_worker *src = &s->w->workers[j];
    sim_worker *sw = &s->ws[j];
    drv_worker_spec spec = {.name = src->name,
                            .caps = src->caps,
                            .slots = src->slots,
                            .speed = src->announced_speed > 0 ? src->announced_speed : src->speed};
    int64_t ref = drv_balancer_worker_add(s->b, &spec, s->now, s->err);
    if (ref < 0) {
        s->failed = drv_error_prefix(s->err, "adding worker %s", src->name);
        return;
    }
    sw->ref = (drv_wref)ref;
    sw->slots = drv_balancer_worker(s->b, sw->ref)->slots;
    sw->run = drv_xrealloc(sw->run, (sw->slots + 1) * sizeof *sw->run);
    sw->status = W_PRESENT;
    sw->leaving = false;
    map_worker(s, sw->ref, j);
    schedule_crash(s, j);
    s->changed = true;
}

static void on_leave(sim *s, uint32_t j)
{
    sim_worker *sw = &s->ws[j];
    sw->gen++;
    if (sw->status == W_LOST) {
        if (drv_balancer_worker_remove(s->b, sw->ref, NULL) == 0)
            sw->status = W_GONE;
        return;
    }
    if (sw->status != W_PRESENT)
        return;
    drv_balancer_worker_set_health(s->b, sw->ref, DRV_HEALTH_DRAINING, "leaving the fleet", s->now);
    sw->leaving = true;
    maybe_remove(s, j);
    s->changed = true;
}

static void on_crash(sim *s, uint32_t j)
{
    sim_worker *sw = &s->ws[j];
    if (sw->status != W_PRESENT || sw->leaving) {
        if (sw->status == W_PRESENT)
            schedule_crash(s, j);
        return;
    }
    observe_fleet(s, j, DRV_SIM_LOST);
    for (uint32_t k = 0; k < sw->running; k++) {
        sim_test *t = &s->ts[sw->run[k]];
        sw->busy_s += s->now - t->start; /* wasted, but the slot was busy */
        t->status = T_QUEUED;
    }
    s->n_running -= sw->running;
    sw->running = 0;
    sw->n_wait = 0;
    sw->status = W_LOST;
    sw->gen++;
    s->res->crashes++;
    size_t n;
    do {
        n = drv_balancer_worker_lost(s->b, sw->ref, s->now, s->dec, DECISIONS_MAX);
        for (size_t k = 0; k < n; k++)
            apply(s, &s->dec[k]);
    } while (n == DECISIONS_MAX);
    if (s->opt->crash_down_s >= 0)
        push_fleet(s, s->now + s->opt->crash_down_s, EV_BACK, j);
    s->changed = true;
}

static void on_back(sim *s, uint32_t j)
{
    sim_worker *sw = &s->ws[j];
    if (sw->status != W_LOST)
        return;
    drv_balancer_worker_back(s->b, sw->ref, s->now);
    sw->status = W_PRESENT;
    observe_fleet(s, j, DRV_SIM_BACK);
    schedule_crash(s, j);
    s->changed = true;
}

static void sample_memory(sim *s)
{
    drv_balancer_stats st;
    drv_balancer_stats_get(s->b, &st);
    if (st.bytes > s->res->balancer_bytes)
        s->res->balancer_bytes = st.bytes;
}

static void on_tick(sim *s)
{
    for (size_t j = 0; j < s->w->n_workers; j++) {
        sim_worker *sw = &s->ws[j];
        if (sw->status == W_PRESENT) {
            /* What `drover worker` sends: occupancy (1 when full, never overload by
             * itself) and its measurements: a simulated machine has no pressure from
             * outside and runs at full clock; its temperature is unknown. */
            drv_thermal_signal sig = {.load = (double)sw->running / (sw->slots ? sw->slots : 1),
                                      .cpu_pressure = 0,
                                      .memory_pressure = 0,
                                      .freq_ratio = 1,
                                      .temperature_c = -1};
            drv_balancer_worker_signal(s->b, sw->ref, s->now, &sig, false);
        }
    }
    sample_memory(s);
    heap_push(&s->heap, s->now + s->opt->heartbeat_s, EV_TICK, 0, 0);
    s->changed = true;
}

/* Whether a rebalancing pass could move anything: some worker holds a test it has not
 * started behind full slots (a victim) and some present worker has a free slot (a
 * thief). drv_balancer_rebalance() looks at every worker for every thief, so skipping
 * the passes that cannot move anything keeps large fleets fast; the skip is exact. */
static bool rebalance_useful(const sim *s)
{
    bool victim = false, thief = false;
    for (size_t j = 0; j < s->w->n_workers && !(victim && thief); j++) {
        const sim_worker *sw = &s->ws[j];
        if (sw->status != W_PRESENT)
            continue;
        victim |= sw->n_wait > 0;
        thief |= !sw->leaving && sw->running + sw->n_wait < sw->slots;
    }
    return victim && thief;
}

static void on_rebalance(sim *s)
{
    heap_push(&s->heap, s->now + s->opt->rebalance_s, EV_REBALANCE, 0, 0);
    if (!rebalance_useful(s))
        return;
    size_t max = s->opt->rebalance_max < DECISIONS_MAX ? s->opt->rebalance_max : DECISIONS_MAX;
    size_t n = drv_balancer_rebalance(s->b, s->now, s->dec, max);
    for (size_t k = 0; k < n; k++)
        apply(s, &s->dec[k]);
}

#define STRAGGLERS_PER_TICK 16 /* as coordinator/speculate.c */

/* Starts the copies the balancer asks for now, as the coordinator's speculation tick:
 * each a record of its own (after the workload's tests) held by its target, which starts
 * it before the first attempts it holds, as `drover worker` does. */
static void speculate(sim *s)
{
    /* spec4: copies in the way of waiting work yield first, as coordinator/speculate.c. */
    drv_tref y[STRAGGLERS_PER_TICK];
    size_t ny = drv_balancer_yielding(s->b, s->now, y, STRAGGLERS_PER_TICK);
    for (size_t k = 0; k < ny; k++) {
        uint32_t i = s->test_of[y[k]];
        if (s->ts[i].twin != DRV_SIM_NONE) {
            drop_copy(s, i);
            s->res->yields++;
        }
    }
    if (ny > 0) {
        place_all(s); /* the freed slots are the waiting work's */
        return;
    }
    drv_straggler st[STRAGGLERS_PER_TICK];
    size_t n = drv_balancer_stragglers(s->b, s->now, st, STRAGGLERS_PER_TICK);
    for (size_t k = 0; k < n && !s->failed; k++) {
        uint32_t i = s->test_of[st[k].task];
        if (s->ts[i].status != T_RUNNING || s->ts[i].twin != DRV_SIM_NONE)
            continue;
        drv_error err;
        int64_t u = drv_balancer_copy(s->b, st[k].task, st[k].target, s->now, &err);
        if (u < 0)
            continue; /* as live: perhaps next time */
        if (s->n_ts == s->cap_ts) {
            s->cap_ts *= 2;
            s->ts = drv_xrealloc(s->ts, s->cap_ts * sizeof *s->ts);
        }
        uint32_t c = (uint32_t)s->n_ts++;
        s->ts[c] = (sim_test){.ref = (drv_tref)u,
                              .status = T_QUEUED,
                              .attempt = s->ts[i].attempt, /* its own flaky draw */
                              .later = true,
                              .src = s->ts[i].src,
                              .twin = i};
        s->ts[i].twin = c;
        map_test(s, (drv_tref)u, c);
        s->res->copies++;
        hold(s, c, s->worker_of[st[k].target]);
        if (st[k].replace) /* spec5: its worker is stuck: killed at once, as live */
            drop_copy(s, i);
    }
}

static void handle(sim *s, const sim_event *e)
{
    s->res->events++;
    switch (e->kind) {
    case EV_ARRIVAL:
        s->res->events--; /* each submitted test counts as one event */
        on_arrivals(s);
        break;
    case EV_FINISH:
        on_finish(s, e->a, e->b);
        break;
    case EV_JOIN: /* joins and leaves hold for their run (the heap is emptied between runs) */
        s->fleet_pending--;
        if (s->ws[e->a].status == W_ABSENT)
            add_worker(s, e->a);
        break;
    case EV_LEAVE:
        s->fleet_pending--;
        on_leave(s, e->a);
        break;
    case EV_BACK: /* void when the worker left meanwhile */
        s->fleet_pending--;
        if (e->b == s->ws[e->a].gen)
            on_back(s, e->a);
        break;
    case EV_CRASH:
        if (e->b == s->ws[e->a].gen)
            on_crash(s, e->a);
        break;
    case EV_TICK:
        on_tick(s);
        break;
    case EV_REBALANCE:
        on_rebalance(s);
        break;
    case EV_SPECULATE:
        s->speculate_due = true;
        heap_push(&s->heap, s->now + s->opt->speculate_s, EV_SPECULATE, 0, 0);
        break;
    }
}

/* ---- one run ------------------------------------------------------------------------ */

/* Registers the fleet at the start of run s->run. */
static void setup_fleet(sim *s)
{
    const drv_workload *w = s->w;
    for (uint32_t j = 0; j < w->n_workers && !s->failed; j++) {
        sim_worker *sw = &s->ws[j];
        sw->busy_s = 0;
        if (s->run == 0) {
            if (w->workers[j].join_at > 0)
                push_fleet(s, s->t0 + w->workers[j].join_at, EV_JOIN, j);
            else
                add_worker(s, j);
            if (w->workers[j].leave_at >= 0)
                push_fleet(s, s->t0 + w->workers[j].leave_at, EV_LEAVE, j);
            if (w->workers[j].crash_at > 0)
                heap_push(&s->heap, s->t0 + w->workers[j].crash_at, EV_CRASH, j, sw->gen);
            continue;
        }
        sw->gen++; /* void the previous run's fleet events */
        if (sw->status == W_LOST) {
            drv_balancer_worker_back(s->b, sw->ref, s->now);
            sw->status = W_PRESENT;
            observe_fleet(s, j, DRV_SIM_BACK);
            schedule_crash(s, j);
        } else if (sw->status == W_PRESENT && sw->leaving) {
            drv_balancer_worker_set_health(s->b, sw->ref, DRV_HEALTH_OK, NULL, s->now);
            sw->leaving = false;
            schedule_crash(s, j);
        } else if (sw->status == W_PRESENT) {
            schedule_crash(s, j);
        } else {
            add_worker(s, j);
        }
    }
}

/* ---- sampling over virtual time ------------------------------------------------------ */

/* Appends the current state to the run's series; when the series is full, first keeps
 * every other sample and doubles the interval (so the appended sample's time, the next
 * grid point, stays the same). */
static void sample_one(sim *s)
{
    drv_sim_result *r = s->res;
    if (r->n_series == DRV_SIM_SERIES_MAX) {
        for (uint32_t k = 1; 2 * k < DRV_SIM_SERIES_MAX; k++) {
            r->series_util[k] = r->series_util[2 * k];
            r->series_queue[k] = r->series_queue[2 * k];
        }
        r->n_series = DRV_SIM_SERIES_MAX / 2;
        r->series_dt_s *= 2;
    }
    size_t arrived = s->next_arrival, done = s->n_final + s->n_running;
    r->series_queue[r->n_series] = (float)(arrived > done ? arrived - done : 0);
    r->series_util[r->n_series] =
        s->fleet_slots > 0 ? (float)((double)s->n_running / s->fleet_slots) : 0;
    r->n_series++;
}

/* Records the state, unchanged since the last event, at every grid point before t. One
 * comparison per event when there is nothing to record. */
static void sample_until(sim *s, double t)
{
    drv_sim_result *r = s->res;
    while (s->t0 + r->n_series * r->series_dt_s < t)
        sample_one(s);
}

/* Whether the run can still make progress: something runs, or tests, workers or
 * returning workers are still to come, or it has not been stuck for long. */
static bool can_progress(const sim *s)
{
    return s->n_running > 0 || s->next_arrival < s->w->n_tests || s->fleet_pending > 0 ||
           s->now - s->last_progress < STUCK_AFTER_S;
}

static void run_once(sim *s, drv_sim_result *res)
{
    const drv_workload *w = s->w;
    double wall0 = wall_clock();
    s->res = res;
    s->heap.n = 0;
    s->fleet_pending = 0;
    s->n_final = 0;
    s->n_running = 0;
    s->next_arrival = 0;
    s->t0 = s->now;
    s->last_progress = s->now;
    res->series_dt_s = DRV_SIM_SERIES_DT0;
    s->fleet_slots = 0;
    for (size_t j = 0; j < w->n_workers; j++)
        s->fleet_slots += w->workers[j].slots;
    for (size_t i = 0; i < w->n_tests; i++)
        s->ts[i] = (sim_test){
            .ref = DRV_REF_NONE, .status = T_PENDING, .src = (uint32_t)i, .twin = DRV_SIM_NONE};
    s->n_ts = w->n_tests;
    s->speculate_due = false;
    unsigned runs = s->opt->runs ? s->opt->runs : 1;
    s->hangs_left = s->run + 1 == runs ? s->opt->hang_count : 0;
    const drv_sim_observer *obs = s->opt->observer;
    drv_sim_view v = view_of(s);
    if (obs && obs->run_start)
        obs->run_start(obs->ctx, &v);
    setup_fleet(s);
    if (w->n_tests > 0)
        heap_push(&s->heap, s->t0 + w->tests[s->order[0]].arrival_s, EV_ARRIVAL, 0, 0);
    if (s->opt->heartbeat_s > 0)
        heap_push(&s->heap, s->t0 + s->opt->heartbeat_s, EV_TICK, 0, 0);
    if (s->opt->rebalance_s > 0)
        heap_push(&s->heap, s->t0 + s->opt->rebalance_s, EV_REBALANCE, 0, 0);
    if (s->opt->speculate_s > 0)
        heap_push(&s->heap, s->t0 + s->opt->speculate_s, EV_SPECULATE, 0, 0);
    s->changed = true;
    bool first_round = true;

    while (!s->failed && s->n_final < w->n_tests && s->heap.n > 0) {
        sim_event e = heap_pop(&s->heap);
        if (e.t - s->t0 > s->opt->max_time_s)
            break;
        sample_until(s, e.t);
        s->now = e.t;
        handle(s, &e);
        while (!s->failed && s->heap.n > 0 && s->heap.v[0].t == s->now) {
            e = heap_pop(&s->heap);
            handle(s, &e);
        }
        if (s->failed)
            break;
        if (s->changed) {
            s->changed = false;
            place_all(s);
        }
        if (s->speculate_due) { /* right after a placement round, as live */
            s->speculate_due = false;
            speculate(s);
        }
        if (first_round && s->next_arrival > 0) {
            first_round = false;
            v = view_of(s);
            if (obs && obs->first_round)
                obs->first_round(obs->ctx, &v);
        }
        if (!can_progress(s))
            break;
    }
    sample_memory(s);
    sample_until(s, s->now);
    sample_one(s); /* the state at the end, at the first grid point at or after it */

    /* results */
    drv_sim_outcome *o = drv_xmalloc((w->n_tests + 1) * sizeof *o);
    double *dur = drv_xmalloc((w->n_tests + 1) * sizeof *dur);
    double *busy = drv_xmalloc((w->n_workers + 1) * sizeof *busy);
    for (size_t i = 0; i < w->n_tests; i++) {
        const sim_test *t = &s->ts[i];
        o[i].arrival_s = w->tests[i].arrival_s;
        o[i].end_s = t->status == T_FINAL ? t->end - s->t0 : -1;
        o[i].last_run_s = t->last_run;
        o[i].state = t->status == T_FINAL ? t->final : DRV_TASK_STATE_COUNT;
        dur[i] = drv_sim_true_duration(w, i, s->run, s->opt->spread, s->opt->seed);
    }
    for (size_t j = 0; j < w->n_workers; j++)
        busy[j] = s->ws[j].busy_s;
    drv_sim_result_fill(res, w, o, busy, drv_sim_lower_bound(w, dur));
    free(busy);
    free(dur);
    free(o);
    res->placements_per_s =
        s->opt->timing && res->place_wall_s > 0 ? (double)res->placements / res->place_wall_s : 0;
    res->wall_s = wall_clock() - wall0;
    v = view_of(s);
    if (obs && obs->run_end)
        obs->run_end(obs->ctx, &v, res);
    /* The next run starts on the next whole second, so heartbeats stay aligned. */
    s->now = floor(s->now) + 1;
}

static void sim_free(sim *s)
{
    drv_balancer_free(s->b);
    drv_predictor_free(s->pred);
    if (s->ws) {
        for (size_t j = 0; j < s->w->n_workers; j++) {
            free(s->ws[j].run);
            free(s->ws[j].wait);
        }
    }
    free(s->ws);
    free(s->ts);
    free(s->order);
    free(s->test_of);
    free(s->worker_of);
    free(s->heap.v);
}

/* The balancer config of one policy row (see drv_sim_run_policy). */
static int policy_config(const drv_balancer_config *base, const char *policy,
                         drv_balancer_config *cfg, drv_error *err)
{
    *cfg = *base;
    if (strcmp(policy, "config") == 0)
        return 0;
    int k = drv_policy_kind_parse(policy);
    if (k < 0)
        return drv_error_set(err, "unknown policy \"%s\"", policy);
    cfg->n_test_types = 0;
    memset(cfg->family_set, 0, sizeof cfg->family_set);
    if (k == DRV_POLICY_COMPOSITE) {
        if (base->default_policy.kind != DRV_POLICY_COMPOSITE) {
            drv_balancer_config def;
            drv_balancer_config_default(&def);
            cfg->default_policy = def.default_policy;
        }
        return 0;
    }
    memset(&cfg->default_policy, 0, sizeof cfg->default_policy);
    cfg->default_policy.kind = (drv_policy_kind)k;
    return 0;
}

int drv_sim_run_policy(const drv_workload *w, const drv_balancer_config *base, const char *policy,
                       const drv_sim_options *opt, drv_sim_result *out, drv_error *err)
{
    drv_balancer_config cfg;
    if (policy_config(base, policy, &cfg, err) != 0)
        return -1;
    unsigned runs = opt->runs ? opt->runs : 1;
    sim s;
    memset(&s, 0, sizeof s);
    s.w = w;
    s.opt = opt;
    s.err = err;
    s.pred = drv_predictor_new(PREDICTOR_ALPHA);
    s.b = drv_balancer_new(&cfg, w->tags, s.pred, err);
    if (!s.b) {
        sim_free(&s);
        return drv_error_prefix(err, "policy %s", policy);
    }
    s.ws = drv_xcalloc(w->n_workers + 1, sizeof *s.ws);
    for (size_t j = 0; j < w->n_workers; j++) {
        s.ws[j].ref = DRV_REF_NONE;
        uint64_t seed = opt->seed ^ 0xC2A5;
        s.ws[j].crash_rng = drv_sim_rand(&seed) ^ (j * 0x9E3779B97F4A7C15ULL);
    }
    s.cap_ts = w->n_tests + 16;
    s.ts = drv_xcalloc(s.cap_ts, sizeof *s.ts);
    s.order = drv_xmalloc((w->n_tests + 1) * sizeof *s.order);
    drv_sim_arrival_order(w, s.order);
    for (unsigned r = 0; r < runs && !s.failed; r++) {
        drv_sim_result *res = &out[r];
        memset(res, 0, sizeof *res);
        snprintf(res->policy, sizeof res->policy, "%s", policy);
        res->run = r + 1;
        res->runs = runs;
        s.run = r;
        run_once(&s, res);
    }
    int rc = s.failed ? drv_error_prefix(err, "policy %s", policy) : 0;
    sim_free(&s);
    return rc;
}

/* ---- baselines ---------------------------------------------------------------------- */

/* A slot (or share) of a worker, in a per-class min-heap by time. */
typedef struct slot_entry {
    double t;
    uint32_t worker;
    uint32_t id; /* share id (static_split); slot order (greedy) */
} slot_entry;

typedef struct slot_heap {
    slot_entry *v;
    size_t n, cap;
} slot_heap;

static bool slot_before(const slot_entry *a, const slot_entry *b)
{
    return a->t < b->t || (a->t == b->t && a->id < b->id);
}

static void slot_sift_down(slot_heap *h, size_t i)
{
    slot_entry e = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && slot_before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!slot_before(&h->v[c], &e))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    h->v[i] = e;
}

static void slot_push(slot_heap *h, slot_entry e)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->v = drv_xrealloc(h->v, h->cap * sizeof *h->v);
    }
    size_t i = h->n++;
    while (i > 0 && slot_before(&e, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = e;
}

/* Two slot_heaps per class c of x (static_split's shares): lanes without a GPU at 2c, GPU
 * lanes at 2c + 1 (the first min(slots, gpus) lanes of a worker), one entry per lane at 0;
 * entry ids number the lanes in worker order. */
static slot_heap *slot_heaps(const drv_workload *w, const drv_sim_index *x)
{
    slot_heap *h = drv_xcalloc(2 * x->n_classes + 1, sizeof *h);
    uint32_t id = 0;
    for (size_t j = 0; j < w->n_workers; j++) {
        const drv_sim_worker *sw = &w->workers[j];
        uint32_t slots = sw->slots ? sw->slots : (sw->caps.cpu_cores ? sw->caps.cpu_cores : 1);
        uint32_t gpu_lanes = sw->caps.gpu_count < slots ? sw->caps.gpu_count : slots;
        for (uint32_t k = 0; k < slots; k++)
            slot_push(&h[2 * x->class_of[j] + (k < gpu_lanes)],
                      (slot_entry){.t = 0, .worker = (uint32_t)j, .id = id++});
    }
    return h;
}

static void slot_heaps_free(slot_heap *h, size_t n)
{
    for (size_t c = 0; c < 2 * n; c++)
        free(h[c].v);
    free(h);
}

/* Starts a baseline result: name, run label, counts. */
static void baseline_init(drv_sim_result *r, const char *name, const drv_sim_options *opt)
{
    memset(r, 0, sizeof *r);
    snprintf(r->policy, sizeof r->policy, "%s", name);
    r->runs = opt->runs ? opt->runs : 1;
    r->run = opt->baseline_run > 0 && opt->baseline_run < r->runs ? opt->baseline_run : r->runs;
    r->baseline = true;
}

/* Whether test i fails in a baseline (its first attempt's draw, as in the engine). */
static bool baseline_fails(const drv_workload *w, size_t i, unsigned run, uint64_t seed)
{
    double p = w->tests[i].flaky_p;
    return p > 0 && drv_sim_hash01(seed ^ 0xF1A4, i, run, 1) < p;
}

/* The grid index of time t: the first k with k x dt >= t, at most n. */
static size_t grid_index(double t, double dt, size_t n)
{
    double k = ceil(t / dt);
    return k <= 0 ? 0 : k >= (double)n ? n : (size_t)k;
}

/* The series of a baseline from per-test start and run times (start < 0: never ran):
 * the engine's grid (DRV_SIM_SERIES_DT0 doubled until the makespan fits), counted with
 * difference arrays in O(tests + samples). */
static void baseline_series(drv_sim_result *r, const drv_workload *w, const double *start,
                            const double *run)
{
    double dt = DRV_SIM_SERIES_DT0;
    while (r->makespan_s / dt + 2 > DRV_SIM_SERIES_MAX)
        dt *= 2;
    size_t n = (size_t)(r->makespan_s / dt) + 2; /* the last grid point is past the end */
    if (n > DRV_SIM_SERIES_MAX)
        n = DRV_SIM_SERIES_MAX;
    long *dq = drv_xcalloc(n + 1, sizeof *dq), *dr = drv_xcalloc(n + 1, sizeof *dr);
    double slots = 0;
    for (size_t j = 0; j < w->n_workers; j++)
        slots += w->workers[j].slots;
    for (size_t i = 0; i < w->n_tests; i++) {
        if (start[i] < 0)
            continue; /* unschedulable: final on arrival */
        dq[grid_index(w->tests[i].arrival_s, dt, n)]++;
        dq[grid_index(start[i], dt, n)]--;
        dr[grid_index(start[i], dt, n)]++;
        dr[grid_index(start[i] + run[i], dt, n)]--;
    }
    long q = 0, running = 0;
    for (size_t k = 0; k < n; k++) {
        q += dq[k];
        running += dr[k];
        r->series_queue[k] = (float)q;
        r->series_util[k] = slots > 0 ? (float)((double)running / slots) : 0;
    }
    r->n_series = (uint32_t)n;
    r->series_dt_s = dt;
    free(dq);
    free(dr);
}

/* Fills the result of a baseline from per-test start and run times (start < 0: never
 * ran, unschedulable). */
static void baseline_finish(drv_sim_result *r, const drv_workload *w, const double *start,
                            const double *run, const double *busy, const double *dur,
                            unsigned run_index, uint64_t seed)
{
    drv_sim_outcome *o = drv_xmalloc((w->n_tests + 1) * sizeof *o);
    for (size_t i = 0; i < w->n_tests; i++) {
        o[i].arrival_s = w->tests[i].arrival_s;
        if (start[i] < 0) {
            o[i].end_s = w->tests[i].arrival_s;
            o[i].last_run_s = 0;
            o[i].state = DRV_TASK_UNSCHEDULABLE;
        } else {
            o[i].end_s = start[i] + run[i];
            o[i].last_run_s = run[i];
            o[i].state = baseline_fails(w, i, run_index, seed) ? DRV_TASK_FAILED : DRV_TASK_PASSED;
        }
    }
    drv_sim_result_fill(r, w, o, busy, drv_sim_lower_bound(w, dur));
    r->events = w->n_tests;
    free(o);
    baseline_series(r, w, start, run);
}

/* Greedy's view of one worker: when it last started a test, and what its tests still
 * running after that hold (sorted by end). A test is never started before the worker's
 * last start, so after it what is held only shrinks: the earliest start that fits is
 * found by walking the ends in order. */
typedef struct greedy_hold {
    double end;
    uint64_t memory_mb;
    uint32_t cpu, gpu;
} greedy_hold;

typedef struct greedy_worker {
    double last_start;
    greedy_hold *v;
    uint32_t n, cap;
} greedy_worker;

/* The earliest time from `from` at which worker sw has a slot, the cores, GPUs and memory
 * of req free for good; a negative time when it never has (req larger than the worker). */
static double greedy_earliest(const drv_sim_worker *sw, const greedy_worker *g, double from,
                              const drv_requirements *req)
{
    double t = from > g->last_start ? from : g->last_start;
    uint32_t k = 0;
    while (k < g->n && g->v[k].end <= t)
        k++;
    uint32_t slots = sw->slots ? sw->slots : (sw->caps.cpu_cores ? sw->caps.cpu_cores : 1);
    uint64_t n = g->n - k, cpu = 0, gpu = 0, mem = 0;
    for (uint32_t i = k; i < g->n; i++) {
        cpu += g->v[i].cpu;
        gpu += g->v[i].gpu;
        mem += g->v[i].memory_mb;
    }
    for (;;) {
        if (n + 1 <= slots && cpu + req->cpu_cores <= sw->caps.cpu_cores &&
            gpu + req->gpu_count <= sw->caps.gpu_count &&
            mem + req->memory_mb <= sw->caps.memory_mb)
            return t;
        if (k == g->n)
            return -1;
        t = g->v[k].end;
        n--;
        cpu -= g->v[k].cpu;
        gpu -= g->v[k].gpu;
        mem -= g->v[k].memory_mb;
        k++;
    }
}

/* Worker g starts a test holding req from st to end. */
static void greedy_hold_add(greedy_worker *g, double st, double end, const drv_requirements *req)
{
    if (st > g->last_start)
        g->last_start = st;
    uint32_t k = 0; /* what ended by the last start no longer matters */
    while (k < g->n && g->v[k].end <= g->last_start)
        k++;
    if (k > 0) {
        memmove(g->v, g->v + k, (g->n - k) * sizeof *g->v);
        g->n -= k;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 8;
        g->v = drv_xrealloc(g->v, g->cap * sizeof *g->v);
    }
    uint32_t at = g->n;
    while (at > 0 && g->v[at - 1].end > end)
        at--;
    if (at < g->n)
        memmove(g->v + at + 1, g->v + at, (g->n - at) * sizeof *g->v);
    g->v[at] = (greedy_hold){
        .end = end, .memory_mb = req->memory_mb, .cpu = req->cpu_cores, .gpu = req->gpu_count};
    g->n++;
}

void drv_sim_run_greedy(const drv_workload *w, const drv_sim_options *opt, drv_sim_result *out)
{
    double wall0 = wall_clock();
    baseline_init(out, "greedy", opt);
    unsigned run_index = out->run - 1;
    drv_sim_index x;
    drv_sim_index_build(&x, w);
    /* the workers of each class, in index order */
    uint32_t *cstart = drv_xcalloc(x.n_classes + 2, sizeof *cstart);
    uint32_t *members = drv_xmalloc((w->n_workers + 1) * sizeof *members);
    for (size_t j = 0; j < w->n_workers; j++)
        cstart[x.class_of[j] + 2]++;
    for (size_t c = 0; c < x.n_classes; c++)
        cstart[c + 2] += cstart[c + 1];
    for (size_t j = 0; j < w->n_workers; j++)
        members[cstart[x.class_of[j] + 1]++] = (uint32_t)j;
    greedy_worker *g = drv_xcalloc(w->n_workers + 1, sizeof *g);
    for (size_t j = 0; j < w->n_workers; j++)
        g[j].last_start = w->workers[j].join_at > 0 ? w->workers[j].join_at : 0;
    uint32_t *order = drv_xmalloc((w->n_tests + 1) * sizeof *order);
    drv_sim_arrival_order(w, order);
    double *start = drv_xmalloc((w->n_tests + 1) * sizeof *start);
    double *run = drv_xmalloc((w->n_tests + 1) * sizeof *run);
    double *dur = drv_xmalloc((w->n_tests + 1) * sizeof *dur);
    double *busy = drv_xcalloc(w->n_workers + 1, sizeof *busy);
    for (size_t k = 0; k < w->n_tests; k++) {
        uint32_t i = order[k];
        const drv_sim_test *t = &w->tests[i];
        dur[i] = drv_sim_true_duration(w, i, run_index, opt->spread, opt->seed);
        start[i] = -1;
        uint32_t s = x.shape_of[i];
        size_t best = SIZE_MAX;
        double best_start = 0, best_run = 0;
        for (uint32_t e = x.elig_start[s]; e < x.elig_start[s + 1]; e++) {
            uint32_t c = x.elig_list[e];
            double rt = run_time(&w->workers[x.class_first[c]], t, dur[i]);
            /* a class runs the test no faster than one that can start it on arrival */
            if (best != SIZE_MAX && best_start <= t->arrival_s && rt >= best_run)
                continue;
            for (uint32_t m = cstart[c]; m < cstart[c + 1]; m++) {
                uint32_t j = members[m];
                double st = greedy_earliest(&w->workers[j], &g[j], t->arrival_s, &t->req);
                if (st < 0)
                    continue;
                if (best == SIZE_MAX || st < best_start || (st == best_start && rt < best_run)) {
                    best = j;
                    best_start = st;
                    best_run = rt;
                }
                if (st <= t->arrival_s)
                    break; /* the rest of the class starts it no sooner */
            }
        }
        if (best == SIZE_MAX)
            continue;
        start[i] = best_start;
        run[i] = best_run;
        busy[best] += best_run;
        greedy_hold_add(&g[best], best_start, best_start + best_run, &t->req);
    }
    baseline_finish(out, w, start, run, busy, dur, run_index, opt->seed);
    for (size_t j = 0; j < w->n_workers; j++)
        free(g[j].v);
    free(g);
    free(members);
    free(cstart);
    free(busy);
    free(dur);
    free(run);
    free(start);
    free(order);
    drv_sim_index_free(&x);
    out->wall_s = wall_clock() - wall0;
}

/* A known duration with its test index, for sorting longest first. */
typedef struct known_key {
    double d;
    uint32_t i;
} known_key;

static int by_known_desc(const void *a, const void *b)
{
    const known_key *x = a, *y = b;
    if (x->d != y->d)
        return x->d > y->d ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

void drv_sim_run_static_split(const drv_workload *w, const drv_sim_options *opt,
                              drv_sim_result *out)
{
    double wall0 = wall_clock();
    baseline_init(out, "static_split", opt);
    unsigned run_index = out->run - 1;
    drv_sim_index x;
    drv_sim_index_build(&x, w);
    /* shares: one per slot, loaded with known work (the heap key) */
    slot_heap *h = slot_heaps(w, &x);
    size_t n_shares = 0;
    for (size_t c = 0; c < 2 * x.n_classes; c++)
        n_shares += h[c].n;
    uint32_t *share_worker = drv_xmalloc((n_shares + 1) * sizeof *share_worker);
    double *cursor = drv_xmalloc((n_shares + 1) * sizeof *cursor);
    for (size_t c = 0; c < 2 * x.n_classes; c++)
        for (size_t k = 0; k < h[c].n; k++) {
            share_worker[h[c].v[k].id] = h[c].v[k].worker;
            double join = w->workers[h[c].v[k].worker].join_at;
            cursor[h[c].v[k].id] = join > 0 ? join : 0;
        }

    known_key *keys = drv_xmalloc((w->n_tests + 1) * sizeof *keys);
    for (size_t i = 0; i < w->n_tests; i++)
        keys[i] = (known_key){.d = w->tests[i].duration_s, .i = (uint32_t)i};
    qsort(keys, w->n_tests, sizeof *keys, by_known_desc);
    uint32_t *share_of = drv_xmalloc((w->n_tests + 1) * sizeof *share_of);
    for (size_t k = 0; k < w->n_tests; k++) {
        uint32_t i = keys[k].i;
        uint32_t s = x.shape_of[i];
        size_t best = SIZE_MAX;
        uint32_t lane0 = w->tests[i].req.gpu_count > 0; /* GPU tests: GPU lanes only */
        for (uint32_t e = x.elig_start[s] * 2; e < x.elig_start[s + 1] * 2; e++) {
            uint32_t c = 2 * x.elig_list[e / 2] + (e & 1);
            if ((e & 1) < lane0 || h[c].n == 0)
                continue;
            if (best == SIZE_MAX || slot_before(&h[c].v[0], &h[best].v[0]))
                best = c;
        }
        share_of[i] = UINT32_MAX;
        if (best == SIZE_MAX)
            continue;
        share_of[i] = h[best].v[0].id;
        h[best].v[0].t += keys[k].d;
        slot_sift_down(&h[best], 0);
    }
    free(keys);

    /* each share runs its tests in arrival order */
    uint32_t *order = drv_xmalloc((w->n_tests + 1) * sizeof *order);
    drv_sim_arrival_order(w, order);
    double *start = drv_xmalloc((w->n_tests + 1) * sizeof *start);
    double *run = drv_xmalloc((w->n_tests + 1) * sizeof *run);
    double *dur = drv_xmalloc((w->n_tests + 1) * sizeof *dur);
    double *busy = drv_xcalloc(w->n_workers + 1, sizeof *busy);
    for (size_t k = 0; k < w->n_tests; k++) {
        uint32_t i = order[k];
        const drv_sim_test *t = &w->tests[i];
        dur[i] = drv_sim_true_duration(w, i, run_index, opt->spread, opt->seed);
        start[i] = -1;
        uint32_t sh = share_of[i];
        if (sh == UINT32_MAX)
            continue;
        uint32_t j = share_worker[sh];
        start[i] = cursor[sh] > t->arrival_s ? cursor[sh] : t->arrival_s;
        run[i] = run_time(&w->workers[j], t, dur[i]);
        cursor[sh] = start[i] + run[i];
        busy[j] += run[i];
    }
    baseline_finish(out, w, start, run, busy, dur, run_index, opt->seed);
    free(busy);
    free(dur);
    free(run);
    free(start);
    free(order);
    free(share_of);
    free(cursor);
    free(share_worker);
    slot_heaps_free(h, x.n_classes);
    drv_sim_index_free(&x);
    out->wall_s = wall_clock() - wall0;
}

/* ---- every policy ------------------------------------------------------------------- */

static const char *const policy_names[] = {
    "round_robin",  "weighted_round_robin", "resource_aware", "priority",
    "affinity",     "performance_based",    "composite",      "greedy",
    "static_split",
};

const char *const *drv_sim_policy_names(size_t *n)
{
    *n = sizeof policy_names / sizeof policy_names[0];
    return policy_names;
}

/* Room in rep for k more results. */
static drv_sim_result *report_grow(drv_sim_report *rep, size_t k)
{
    if (rep->n_results + k > rep->cap_results) {
        size_t cap = rep->cap_results ? rep->cap_results : 8;
        while (cap < rep->n_results + k)
            cap *= 2;
        rep->results = drv_xrealloc(rep->results, cap * sizeof *rep->results);
        rep->cap_results = cap;
    }
    return &rep->results[rep->n_results];
}

int drv_sim_run_all(const drv_workload *w, const drv_balancer_config *base,
                    const char *const *names, size_t n_names, const drv_sim_options *opt,
                    drv_sim_report *rep, drv_error *err)
{
    rep->workers = w->n_workers;
    rep->tests = w->n_tests;
    rep->seed = opt->seed;
    snprintf(rep->source, sizeof rep->source, "%s", w->source);
    unsigned runs = opt->runs ? opt->runs : 1;
    for (size_t k = 0; k < n_names; k++) {
        const char *name = names[k];
        if (strcmp(name, "greedy") == 0 || strcmp(name, "static_split") == 0) {
            /* once per run, each on that run's durations: a policy's run 1 is compared
             * with greedy on the same durations, not on run 2's (second_run seeds 1 and
             * 6 looked worse than greedy only because of that) */
            drv_sim_result *r = report_grow(rep, runs);
            for (unsigned run = 0; run < runs; run++) {
                drv_sim_options o = *opt;
                o.baseline_run = run + 1;
                if (name[0] == 'g')
                    drv_sim_run_greedy(w, &o, &r[run]);
                else
                    drv_sim_run_static_split(w, &o, &r[run]);
            }
            rep->n_results += runs;
        } else {
            drv_sim_result *r = report_grow(rep, runs);
            if (drv_sim_run_policy(w, base, name, opt, r, err) != 0)
                return -1;
            rep->n_results += runs;
        }
    }
    rep->events = 0;
    rep->wall_s = 0;
    for (size_t k = 0; k < rep->n_results; k++) {
        rep->events += rep->results[k].events;
        rep->wall_s += rep->results[k].wall_s;
    }
    return 0;
}

void drv_sim_report_free(drv_sim_report *rep)
{
    free(rep->results);
    rep->results = NULL;
    rep->n_results = rep->cap_results = 0;
}
