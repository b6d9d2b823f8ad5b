/* engine.h - the balancer's internal state, shared by the balancer's own files.
 * Not a public header: the coordinator and the simulator use balancer.h only. */
#ifndef DRV_BALANCER_ENGINE_H
#define DRV_BALANCER_ENGINE_H

#include "balancer/balancer.h"
#include "balancer/policy.h"
#include "core/queue.h"

/* One live test. 88 bytes; the queue entry that points at it is 16 more. */
typedef struct drv_btask {
    uint64_t id;
    uint64_t test_key;
    uint64_t key;    /* queue order (drv_queue_key) */
    double enqueued; /* first submission: aging counts from here */
    double moved_at; /* last steal, -1e300 when never */
    uint32_t seq;    /* submission order */
    uint32_t shape;
    drv_wref worker;     /* holder while assigned or running */
    drv_tref prev, next; /* in the holder's list; next links the free list */
    float pred_ref_s;    /* predicted mean at reference speed */
    float pred_high_s;   /* predicted p90 at reference speed */
    float pred_held_s;   /* predicted run on the holder, added to its backlog */
    int16_t priority;
    uint8_t family;
    uint8_t policy;       /* index into drv_balancer.specs */
    uint8_t state;        /* drv_task_state, or TASK_FREE */
    uint8_t retries_left; /* of max_retries: losses of infrastructure */
    uint8_t reruns_left;  /* of reruns: the test's own failures */
    uint8_t flags;
    uint8_t kind;      /* drv_analyzer_type_kind of its test type */
    uint8_t copy_role; /* speculation.c: COPY_ORIGINAL or COPY_COPY of a pair, else 0 */
    double started_at; /* when it started running (speculation.c) */
    drv_wref avoid;    /* suite2: the worker its own failure was on; a rerun prefers another */
    drv_tref twin;     /* spec4: a copy's original (speculation.c; checked by id when used) */
} drv_btask;

#define TASK_FREE         0xFF
#define TF_FIRST_RUN      0x02 /* nothing was learned of it before it was submitted */
#define TF_ORDERED        0x04 /* it has an ordering record (after, locks): ordering.c */
#define TF_WAITING        0x08 /* queued, held back until what it runs after is final */
#define TF_PARKED         0x10 /* queued, taken off the queue until a lock it needs is free */
#define TF_LOCKING        0x20 /* it takes locks or runs exclusive when placed */
#define TF_EXCL_PENDING   0x40 /* an exclusive test that waits for the fleet to empty */
#define TF_NOT_IDEMPOTENT 0x01 /* never two copies at once (speculation.c) */
#define TF_SPECULATED     0x80 /* a copy of it was started (speculation.c) */
#define COPY_ORIGINAL     1    /* copy_role: the record that ran first */
#define COPY_COPY         2    /* copy_role: the copy drv_balancer_copy() started */
#define COPY_AHEAD        3    /* copy_role: a copy started while tests were queued */

/* What ordering.c keeps of a test that uses after or locks (see balancer.h). */
typedef struct drv_task_link {
    drv_tref t;
    uint32_t seq; /* the task's seq when linked: a reused record does not match */
} drv_task_link;

typedef struct drv_order_rec {
    uint32_t waiting_on; /* tests it runs after that are not final yet */
    uint32_t not_passed; /* ...that became final without passing */
    bool run_anyway;
    bool exclusive;
    uint32_t *locks; /* lock ids, owned */
    uint32_t n_locks;
    drv_task_link *dependents; /* tests that run after this one, owned */
    uint32_t n_dependents, cap_dependents;
    uint32_t next_free;
} drv_order_rec;

/* A lock: how many held tests hold it and the tests parked until it is free. */
typedef struct drv_lock {
    char *name;
    uint32_t holders;
    uint32_t slots; /* suite2: how many may hold it at once ("NAME#N"); 1 for "NAME" */
    drv_task_link *parked;
    uint32_t n_parked, cap_parked;
} drv_lock;

/* A final test whose dependents are still to be told. */
typedef struct drv_settled {
    drv_task_link dependent;
    bool passed;
} drv_settled;

/* One worker plus the engine's bookkeeping. */
typedef struct drv_bworker {
    drv_worker w;
    uint32_t heap_pos[DRV_ORDER_COUNT]; /* in its class's heaps; UINT32_MAX = absent */
    drv_tref held;                      /* list of assigned and running tests */
    uint32_t cap_limit;                 /* admitted slots + prefetch: most tests it may hold */
    float avg_pred_s;                   /* EWMA of predicted run of tests it got (batch sizing) */
    float avg_run_s;                    /* EWMA of measured runs of tests it finished; 0: none */
    uint32_t runs_n;                    /* measured runs behind avg_run_s */
    bool live;                          /* not removed */
    bool in_fresh;                      /* on the fresh-capacity list */
    bool freed;                         /* a test released its slot: capacity grew */
    uint32_t warm_pos;                  /* in the warming heap, or POS_NONE */
    double warm_due;                    /* when its admission may next grow; INFINITY: never */
    bool overloaded;                    /* reported overload */
    bool reserved;                      /* kept for the reserved shape's next test (placement.c) */
    /* Speculation (speculation.c): when a test of its was last superseded (its copy
     * elsewhere finished first, so it was killed running), and whether one ever was. A
     * worker whose test hung is suspect for a while: its other tests are copied once past
     * their p90, without the margin, and ahead of the queue. */
    bool suspect;
    double suspect_at;
    /* Its own pace against its class (learning.c): log of its runs over its class's mean
     * for the same tests, EWMA, and the samples behind it; `pace` multiplies its class's
     * predictions once there are enough (1 before). */
    float pace_log;
    float pace;
    uint32_t pace_n;
    /* Per-policy state (policy.h), each written only by its policy's hooks. */
    drv_rr_worker rr;
    drv_wrr_worker wrr;
} drv_bworker;

#define POS_NONE UINT32_MAX

/* Measured runs a worker needs before their average sizes its prefetch (fleet.c): one
 * `true` must not make it take every new test of unknown duration. */
#define DRV_PREFETCH_MIN_RUNS 3

/* Workers with equal capabilities and speed. */
typedef struct drv_wclass {
    drv_capabilities caps;
    float speed;
    uint64_t hash;
    int backend;             /* primary back-end tag, for the predictor */
    float richness;          /* 0..1: how scarce what it offers is (GPUs, back-ends, tags) */
    bool special;            /* it offers a back-end other than cpu, or a browser */
    drv_tagset special_tags; /* those back-ends and browsers */
    uint32_t members;        /* live workers */
    uint32_t reachable;      /* registered workers (lost ones too: they may come back) */
    uint32_t *heap[DRV_ORDER_COUNT]; /* available workers, per ordering in use */
    uint32_t n[DRV_ORDER_COUNT];
    uint32_t cap;
    uint64_t key; /* drv_balancer_class_key(): what its learning is kept under */
    /* Bit f: it offers one of family f's preferred back-ends other than cpu (the
     * analyzer's table), or family f's preferred browser (counted for web tests). */
    uint64_t hw_families, browser_families;
    /* drv_fleet_candidate's last fruitless look past the top, per ordering (fleet.c):
     * no worker in the heap's first CANDIDATE_LOOKAHEAD places had these cores, GPUs and
     * memory free. Forgotten when a worker of the class can take more (drv_fleet_update,
     * reservation_release) or a worker comes into those places from below or from
     * outside the heap (heap_place): until then a test asking as much or more finds
     * nothing there either, and the look is not paid again. */
    bool miss[DRV_ORDER_COUNT];
    uint32_t miss_cpu[DRV_ORDER_COUNT], miss_gpu[DRV_ORDER_COUNT];
    uint64_t miss_memory_mb[DRV_ORDER_COUNT];
} drv_wclass;

/* Per shape: which classes can run it. */
typedef struct drv_shape_info {
    uint64_t *elig;       /* bitset over classes */
    uint32_t reachable;   /* registered workers that can run it (lost ones included) */
    double first_blocked; /* when its tests first found no eligible worker, < 0 none */
} drv_shape_info;

/* Affinity: per family, the workers that ran it well. */
#define AFFINITY_SLOTS 8
typedef struct drv_affinity_row {
    drv_wref worker[AFFINITY_SLOTS];
    float score[AFFINITY_SLOTS];
} drv_affinity_row;

#define DRV_SPECS_MAX (2 + DRV_CONFIG_TEST_TYPES_MAX + 64)

struct drv_balancer {
    drv_balancer_config cfg;
    drv_tag_table *tags;
    drv_predictor *pred;

    /* policies: specs[0] is the default; tests carry an index */
    drv_policy_spec specs[DRV_SPECS_MAX];
    uint32_t n_specs;
    uint8_t family_spec[64];
    uint8_t type_spec[DRV_CONFIG_TEST_TYPES_MAX];
    bool order_used[DRV_ORDER_COUNT];
    uint8_t spec_order[DRV_SPECS_MAX]; /* drv_ordering giving each spec's candidates */
    uint8_t spec_extra[DRV_SPECS_MAX]; /* bit k: policy kind k offers extra candidates */

    /* tasks */
    drv_btask *tasks;
    uint32_t n_tasks, cap_tasks;
    drv_tref free_task;
    uint32_t seq;
    drv_queue *queue;
    uint64_t n_queued, n_assigned, n_running;

    /* workers */
    drv_bworker *workers;
    uint32_t n_workers, cap_workers;
    uint32_t *name_index; /* open addressing: worker + 1 */
    uint32_t name_cap;
    uint32_t *fresh; /* workers whose capacity grew since the last placement */
    uint32_t n_fresh, cap_fresh;
    /* Workers whose admission grows with time alone (warming up, cooling down), by when
     * it next may (warm_due, then index): placement looks only at those that are due. */
    uint32_t *warm_heap;
    uint32_t n_warm, cap_warm;
    /* Workers holding a test they have not started behind full slots (what stealing can
     * take), as a bitset over worker indexes: stealing visits them in index order and
     * never scans the fleet. */
    uint64_t *victims;
    uint32_t victim_words, n_victims;
    uint32_t n_live_workers, n_reachable;

    /* classes */
    drv_wclass *classes;
    uint32_t n_classes, cap_classes;
    uint32_t class_words;  /* words in every class bitset */
    uint64_t *avail;       /* classes with at least one available worker */
    float *speed;          /* [class * 64 + family]: learned relative speed */
    float *class_affinity; /* [class * 64 + family]: 0..1 */
    float fastest[64];     /* per family: the highest speed of any class */

    /* shapes (indexed like the queue's) */
    drv_shape_info *shapes;
    uint32_t n_shapes, cap_shapes;

    /* Per-policy state (policy.h), each written only by its policy's hooks (affinity's
     * by policy_affinity.c, and by learning.c when it loads what earlier processes
     * learned). */
    drv_rr_state rr;
    drv_wrr_state wrr;
    drv_affinity_row affinity[64];

    /* ordering and exclusion (ordering.c); all NULL/0 until a test uses after or locks */
    uint32_t *order_of; /* [tref]: index + 1 into orders, 0 = none (sized cap_tasks) */
    drv_order_rec *orders;
    uint32_t n_orders, cap_orders, free_order;
    drv_lock *locks;
    uint32_t n_locks, cap_locks;
    uint32_t *lock_index; /* open addressing over names: lock + 1 */
    uint32_t lock_index_cap;
    drv_settled *settled; /* dependents to tell, oldest first from settled_head */
    uint32_t n_settled, cap_settled, settled_head;
    /* Exclusive tests: held ones, waiting ones (which close the gate to everything else),
     * and the tests parked behind that gate or until the fleet is empty. */
    uint32_t excl_held, excl_pending;
    /* A worker kept for the next test of a starved shape (placement.c, reservation_*):
     * DRV_SHAPE_NONE / DRV_REF_NONE when none. */
    uint32_t resv_shape;
    drv_wref resv_worker;
    /* What the reserved worker holds for it beyond its tests, counted in its used cores,
     * GPUs and memory (so no other test needing them fits, at no cost per placement):
     * what was free when it was made and what its tests free since, of each resource the
     * starved test needs (resv_dims: 1 cores, 2 GPUs, 4 memory). */
    uint8_t resv_dims;
    uint32_t resv_cpu, resv_gpu;
    uint64_t resv_memory_mb;
    double resv_scan_at;  /* when blocked shapes are next looked at for one */
    double newest_placed; /* the latest submission time of a placed test */
    drv_task_link *gate_parked, *excl_parked;
    uint32_t n_gate_parked, cap_gate_parked, n_excl_parked, cap_excl_parked;
    uint64_t skipped;

    /* counters */
    uint64_t placed, moved, requeued, finished, unschedulable;

    /* learning.c: facts of earlier processes, sorted by (kind, key, family) once looked
     * up; `taken` once a class or worker took it (it exports its own from then on) */
    struct drv_learned_entry {
        drv_learned_fact f;
        bool taken;
    } * learned;
    uint32_t n_learned, cap_learned;
    bool learned_sorted;
};

/* ---- fleet.c ---- */
void drv_fleet_free(drv_balancer *b);
/* Recomputes w's capacity and availability and its place in its class's orderings
 * after anything about it changed. Marks it fresh when it can take more than before
 * (it became available, its limit grew, or `freed` was set: a test released a slot). */
void drv_fleet_update(drv_balancer *b, drv_wref w, double now);
/* True when w can take one more test with these requirements now. */
bool drv_fleet_fits(const drv_balancer *b, const drv_bworker *w, const drv_requirements *req);
/* The best available worker of class c under ordering o that fits req, or POS_NONE. */
uint32_t drv_fleet_candidate(const drv_balancer *b, uint32_t c, drv_ordering o,
                             const drv_requirements *req);
/* The same among the top of the class's ordering without worker except (suite2: a rerun
 * prefers another worker than the one it failed on), or POS_NONE. */
uint32_t drv_fleet_candidate_except(const drv_balancer *b, uint32_t c, drv_ordering o,
                                    const drv_requirements *req, drv_wref except);
/* Computes the eligibility bitset of shape s against every class. */
void drv_fleet_shape_added(drv_balancer *b, uint32_t s);
bool drv_fleet_worker_available(const drv_bworker *w);
/* A worker of class c has more cores, GPUs or memory free than before, without
 * drv_fleet_update (a reservation ended): drv_fleet_candidate looks past the top again. */
void drv_fleet_class_grew(drv_balancer *b, uint32_t c);

/* Re-derives whether w is a victim for stealing (after its held counts changed). */
void drv_fleet_victim_update(drv_balancer *b, drv_wref w);
/* Brings every worker whose admission was due to grow by now up to date. */
void drv_fleet_advance(drv_balancer *b, double now);

/* ---- placement.c ---- */
/* Holds t on worker w (assigned), updating both. */
void drv_engine_assign(drv_balancer *b, drv_tref t, drv_wref w, double now);
/* Releases t from its holder (running or assigned). */
void drv_engine_release(drv_balancer *b, drv_tref t, double now);
/* Puts t back in the queue (keeps its age). */
void drv_engine_enqueue(drv_balancer *b, drv_tref t);
/* A task record to fill (from the free list, or a new one: b->tasks may move). */
drv_tref drv_engine_task_alloc(drv_balancer *b);
/* Frees the record of a final task that no queue entry points at. */
void drv_engine_free_task(drv_balancer *b, drv_tref t);
/* Predicted run of t on class c, seconds. */
double drv_engine_predict_on(const drv_balancer *b, const drv_btask *t, uint32_t c);
/* The best worker for t among the available eligible ones, or DRV_REF_NONE. hint (or
 * DRV_REF_NONE) is a worker to consider besides each class's candidates. */
drv_wref drv_engine_choose(const drv_balancer *b, const drv_btask *t, double now, drv_wref hint);
/* The requirement of shape s that keeps it off the reachable fleet: the first unmet
 * predicate of the class that comes closest (fails latest in the check order). */
void drv_engine_unmet(const drv_balancer *b, uint32_t s, int *unmet, int *tag);
/* Predicted finish of ctx->t on w: wait for a slot plus predicted run on w (its class's
 * run times its own pace). */
double drv_place_predicted_finish(const drv_place_ctx *ctx, const drv_bworker *w);
/* The earliest-finish score of ctx->t on w, in (0, 1]: the test's run on the fastest
 * class there is for its family over its predicted finish on w (1 when it starts now on
 * the fastest class). Several policies score with it (performance_based, priority). */
double drv_place_finish_score(const drv_place_ctx *ctx, const drv_bworker *w);
/* Fills a FINAL/REQUEUED/... decision (a FINAL one also tells the tests that run after
 * t: ordering.c). */
void drv_engine_decision(drv_balancer *b, drv_decision *d, drv_decision_kind kind,
                         drv_reason reason, drv_tref t, drv_wref w, drv_wref from);

/* ---- speed_prior.c ---- */
/* Tells the predictor what class c (of configured speed `speed`) is expected to be worth
 * at each family whose preferred back-ends it offers, before any run says. */
void drv_speed_prior_class(drv_balancer *b, uint32_t c, float speed);

/* ---- ordering.c ---- */
/* Makes t's ordering record from its after list (live references) and what it locks;
 * sets t's flags. Returns 0, or -1 with err filled (a reference that is not live). */
int drv_order_attach(drv_balancer *b, drv_tref t, const drv_task *task, const drv_tref *after,
                     size_t n_after, uint32_t after_not_passed, drv_error *err);
/* t is final: its dependents learn it at the next placement. */
void drv_order_final(drv_balancer *b, drv_tref t, bool passed);
/* Frees everything ordering.c holds (the balancer is being freed). */
void drv_order_destroy(drv_balancer *b);
/* Frees t's ordering record (t is being freed). */
void drv_order_free(drv_balancer *b, drv_tref t);
/* Tells dependents of final tests: releases them to the queue, or makes them final
 * (skipped) with a decision in out. Returns the number of decisions written (<= max). */
size_t drv_order_settle(drv_balancer *b, drv_decision *out, size_t max);
/* Whether queued t may be placed now as far as locks and exclusive tests go; when not,
 * it is parked (the caller has taken it off the queue) until that changes. */
bool drv_order_admit(drv_balancer *b, drv_tref t);
/* t was placed on a worker (or adopted): it takes its locks. */
void drv_order_acquire(drv_balancer *b, drv_tref t);
/* t left its worker: it gives its locks back; parked tests that may now run are queued. */
void drv_order_release(drv_balancer *b, drv_tref t);
/* Why waiting or parked t is not queued, in a sentence. */
void drv_order_explain(const drv_balancer *b, drv_tref t, char *buf, size_t len);

/* ---- lifecycle.c / fleet.c ---- */
void drv_fleet_mark_lost(drv_balancer *b, drv_wref w, double now);

/* Recomputes b->fastest[family] over the classes that have workers. */
void drv_fleet_fastest_update(drv_balancer *b, int family);

/* ---- learning.c ---- */
/* Class c was just made: gives it what earlier processes learned of its kind. */
void drv_learning_class_added(drv_balancer *b, uint32_t c);
/* Worker w was just added: gives it what earlier processes learned of it. */
void drv_learning_worker_added(drv_balancer *b, drv_wref w);
/* Test t ran duration_s on worker w (before the predictor learns the run): w's pace. */
void drv_learning_pace_sample(drv_balancer *b, const drv_btask *t, drv_wref w, double duration_s);
/* Predicted run of t on worker w: its class's, times w's own pace. */
double drv_engine_predict_worker(const drv_balancer *b, const drv_btask *t, drv_wref w);
void drv_learning_free(drv_balancer *b);

/* Whether class c is where the analyzer says ctx->t's family runs best: it offers one
 * of the family's preferred back-ends other than cpu, or, for a test that asks for a
 * web back-end, the family's preferred browser. A soft preference, and a prior: only
 * for a test nothing was learned of (TF_FIRST_RUN); once it has run, the learned speeds
 * say where it runs best. The engine adds a small bonus to a composite's score
 * (placement.c). */
static inline bool drv_place_preferred(const drv_place_ctx *ctx, const drv_wclass *c)
{
    if (!(ctx->t->flags & TF_FIRST_RUN))
        return false;
    uint64_t bit = (uint64_t)1 << (ctx->t->family & 63);
    return ((c->hw_families | (ctx->web ? c->browser_families : 0)) & bit) != 0;
}

static inline bool drv_bit_get(const uint64_t *set, uint32_t i)
{
    return (set[i >> 6] >> (i & 63)) & 1;
}
static inline void drv_bit_set(uint64_t *set, uint32_t i, bool on)
{
    if (on)
        set[i >> 6] |= (uint64_t)1 << (i & 63);
    else
        set[i >> 6] &= ~((uint64_t)1 << (i & 63));
}

#endif
