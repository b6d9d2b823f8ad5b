/* queue.c - per-shape 4-ary heaps of queued tests and a heap of active shapes. */
#include "core/queue.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

typedef struct shape {
    drv_requirements req;
    uint64_t hash;
    drv_queue_entry *run; /* sorted ascending; live part is [head, run_n) */
    size_t head, run_n;
    drv_queue_entry *heap; /* 4-ary min-heap of entries pushed since the last merge */
    size_t n, cap;
    uint32_t active_pos; /* index in q->active, or DRV_SHAPE_NONE */
    bool blocked;
} shape;

struct drv_queue {
    shape *shapes;
    uint32_t n_shapes, cap_shapes;
    uint32_t *index; /* open addressing: shape id + 1, 0 = empty */
    uint32_t index_cap;
    uint32_t *active; /* binary min-heap of shape ids by their best entry */
    uint32_t n_active;
    size_t len;
    double base; /* drv_queue_base(); NAN until asked */
};

static inline bool entry_less(const drv_queue_entry *a, const drv_queue_entry *b)
{
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

drv_queue *drv_queue_new(void)
{
    drv_queue *q = drv_xcalloc(1, sizeof *q);
    q->index_cap = 64;
    q->index = drv_xcalloc(q->index_cap, sizeof *q->index);
    q->base = NAN;
    return q;
}

double drv_queue_base(drv_queue *q, double now)
{
    if (isnan(q->base))
        q->base = now;
    return q->base;
}

void drv_queue_free(drv_queue *q)
{
    if (!q)
        return;
    for (uint32_t i = 0; i < q->n_shapes; i++) {
        free(q->shapes[i].heap);
        free(q->shapes[i].run);
    }
    free(q->shapes);
    free(q->index);
    free(q->active);
    free(q);
}

uint64_t drv_queue_key(int32_t priority, double enqueued, double aging_interval_s,
                       double predicted_s)
{
    /* effective = priority - floor(enqueued / aging); higher first, so the key's high
     * half is (2^31 + floor(enqueued / aging) - priority): lower first. */
    double q = floor(enqueued / aging_interval_s);
    if (!(q > -1e9))
        q = -1e9;
    if (q > 2e9)
        q = 2e9;
    int64_t level = (int64_t)2147483648LL + (int64_t)q - priority;
    if (level < 0)
        level = 0;
    if (level > (int64_t)UINT32_MAX)
        level = UINT32_MAX;
    /* longest predicted first: low half is (2^32-1 - predicted centiseconds). */
    double cs = predicted_s * 100.0;
    uint32_t pc = !(cs > 0) ? 0 : cs >= 4294967295.0 ? UINT32_MAX : (uint32_t)cs;
    return ((uint64_t)level << 32) | (uint64_t)(UINT32_MAX - pc);
}

/* The best entry of a non-empty shape: the front of its run or the top of its heap. */
static inline const drv_queue_entry *shape_top(const shape *sh)
{
    if (sh->head == sh->run_n)
        return &sh->heap[0];
    if (sh->n == 0 || entry_less(&sh->run[sh->head], &sh->heap[0]))
        return &sh->run[sh->head];
    return &sh->heap[0];
}

static inline size_t shape_len(const shape *sh)
{
    return sh->run_n - sh->head + sh->n;
}

/* ---- the heap of active shapes ---- */

static inline bool shape_less(const drv_queue *q, uint32_t a, uint32_t b)
{
    return entry_less(shape_top(&q->shapes[a]), shape_top(&q->shapes[b]));
}

static void active_set(drv_queue *q, uint32_t i, uint32_t s)
{
    q->active[i] = s;
    q->shapes[s].active_pos = i;
}

static void active_up(drv_queue *q, uint32_t i)
{
    uint32_t s = q->active[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!shape_less(q, s, q->active[p]))
            break;
        active_set(q, i, q->active[p]);
        i = p;
    }
    active_set(q, i, s);
}

static void active_down(drv_queue *q, uint32_t i)
{
    uint32_t s = q->active[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= q->n_active)
            break;
        if (c + 1 < q->n_active && shape_less(q, q->active[c + 1], q->active[c]))
            c++;
        if (!shape_less(q, q->active[c], s))
            break;
        active_set(q, i, q->active[c]);
        i = c;
    }
    active_set(q, i, s);
}

static void active_insert(drv_queue *q, uint32_t s)
{
    /* q->active has room for every shape (grown with the shapes array). */
    q->active[q->n_active] = s;
    q->shapes[s].active_pos = q->n_active;
    q->n_active++;
    active_up(q, q->n_active - 1);
}

static void active_remove(drv_queue *q, uint32_t s)
{
    uint32_t i = q->shapes[s].active_pos;
    q->shapes[s].active_pos = DRV_SHAPE_NONE;
    q->n_active--;
    if (i == q->n_active)
        return;
    active_set(q, i, q->active[q->n_active]);
    active_up(q, i);
    active_down(q, q->shapes[q->active[i]].active_pos);
}

/* Re-establishes s's membership and place in the active heap after its top changed. */
static void active_update(drv_queue *q, uint32_t s)
{
    shape *sh = &q->shapes[s];
    bool want = shape_len(sh) > 0 && !sh->blocked;
    if (sh->active_pos == DRV_SHAPE_NONE) {
        if (want)
            active_insert(q, s);
        return;
    }
    if (!want) {
        active_remove(q, s);
        return;
    }
    active_up(q, sh->active_pos);
    active_down(q, sh->active_pos);
}

/* ---- shapes ---- */

static void index_insert(drv_queue *q, uint32_t id)
{
    uint32_t mask = q->index_cap - 1;
    uint32_t i = (uint32_t)q->shapes[id].hash & mask;
    while (q->index[i])
        i = (i + 1) & mask;
    q->index[i] = id + 1;
}

uint32_t drv_queue_shape(drv_queue *q, const drv_requirements *req, bool *is_new)
{
    uint64_t h = drv_requirements_hash(req);
    uint32_t mask = q->index_cap - 1;
    for (uint32_t i = (uint32_t)h & mask; q->index[i]; i = (i + 1) & mask) {
        shape *sh = &q->shapes[q->index[i] - 1];
        if (sh->hash == h && drv_requirements_equal(&sh->req, req)) {
            if (is_new)
                *is_new = false;
            return q->index[i] - 1;
        }
    }
    if (q->n_shapes == q->cap_shapes) {
        q->cap_shapes = q->cap_shapes ? q->cap_shapes * 2 : 16;
        q->shapes = drv_xrealloc(q->shapes, q->cap_shapes * sizeof *q->shapes);
        q->active = drv_xrealloc(q->active, q->cap_shapes * sizeof *q->active);
    }
    uint32_t id = q->n_shapes++;
    shape *sh = &q->shapes[id];
    memset(sh, 0, sizeof *sh);
    sh->req = *req;
    sh->hash = h;
    sh->active_pos = DRV_SHAPE_NONE;
    if ((uint64_t)q->n_shapes * 2 > q->index_cap) {
        free(q->index);
        q->index_cap *= 2;
        q->index = drv_xcalloc(q->index_cap, sizeof *q->index);
        for (uint32_t s = 0; s < q->n_shapes; s++)
            index_insert(q, s);
    } else {
        index_insert(q, id);
    }
    if (is_new)
        *is_new = true;
    return id;
}

const drv_requirements *drv_queue_shape_req(const drv_queue *q, uint32_t s)
{
    return &q->shapes[s].req;
}

uint32_t drv_queue_shape_count(const drv_queue *q)
{
    return q->n_shapes;
}

/* ---- sorting and merging ---- */

static void insertion_sort(drv_queue_entry *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        drv_queue_entry x = a[i];
        size_t j = i;
        while (j > 0 && entry_less(&x, &a[j - 1])) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/* Quicksort with median-of-three pivots, recursing into the smaller side (so the stack
 * depth is O(log n)) and finishing small ranges with insertion sort. */
static void sort_entries(drv_queue_entry *a, size_t n)
{
    while (n > 24) {
        drv_queue_entry *m = &a[n / 2], *z = &a[n - 1], t;
        if (entry_less(m, a)) {
            t = *m, *m = *a, *a = t;
        }
        if (entry_less(z, m)) {
            t = *z, *z = *m, *m = t;
            if (entry_less(m, a)) {
                t = *m, *m = *a, *a = t;
            }
        }
        drv_queue_entry p = *m;
        size_t i = 0, j = n - 1;
        for (;;) {
            while (entry_less(&a[i], &p))
                i++;
            while (entry_less(&p, &a[j]))
                j--;
            if (i >= j)
                break;
            t = a[i], a[i] = a[j], a[j] = t;
            i++;
            j--;
        }
        size_t left = j + 1;
        if (left < n - left) {
            sort_entries(a, left);
            a += left;
            n -= left;
        } else {
            sort_entries(a + left, n - left);
            n = left;
        }
    }
    insertion_sort(a, n);
}

/* Merges the heap's entries into the run: sorts them, then merges with the run's live
 * part into a new array. */
static void shape_merge(shape *sh)
{
    sort_entries(sh->heap, sh->n);
    size_t live = sh->run_n - sh->head, total = live + sh->n;
    drv_queue_entry *out = drv_xmalloc(total * sizeof *out);
    size_t i = sh->head, j = 0, k = 0;
    while (i < sh->run_n && j < sh->n)
        out[k++] = entry_less(&sh->heap[j], &sh->run[i]) ? sh->heap[j++] : sh->run[i++];
    while (i < sh->run_n)
        out[k++] = sh->run[i++];
    while (j < sh->n)
        out[k++] = sh->heap[j++];
    free(sh->run);
    sh->run = out;
    sh->head = 0;
    sh->run_n = total;
    sh->n = 0;
    if (sh->cap > 4096) { /* the heap's burst is over: give the memory back */
        free(sh->heap);
        sh->heap = NULL;
        sh->cap = 0;
    }
}

#define MERGE_MIN 512

/* ---- per-shape run + heap ---- */

static void heap_push(shape *sh, drv_queue_entry e)
{
    if (sh->n == sh->cap) {
        sh->cap = sh->cap ? sh->cap * 2 : 8;
        sh->heap = drv_xrealloc(sh->heap, sh->cap * sizeof *sh->heap);
    }
    size_t i = sh->n++;
    while (i > 0) {
        size_t p = (i - 1) / 4;
        if (!entry_less(&e, &sh->heap[p]))
            break;
        sh->heap[i] = sh->heap[p];
        i = p;
    }
    sh->heap[i] = e;
}

static void heap_pop(shape *sh)
{
    drv_queue_entry last = sh->heap[--sh->n];
    size_t n = sh->n, i = 0;
    if (n == 0)
        return;
    for (;;) {
        size_t c = 4 * i + 1;
        if (c >= n)
            break;
        size_t best = c;
        size_t end = c + 4 < n ? c + 4 : n;
        for (size_t k = c + 1; k < end; k++)
            if (entry_less(&sh->heap[k], &sh->heap[best]))
                best = k;
        if (!entry_less(&sh->heap[best], &last))
            break;
        sh->heap[i] = sh->heap[best];
        i = best;
    }
    sh->heap[i] = last;
}

void drv_queue_push(drv_queue *q, uint32_t s, drv_queue_entry e)
{
    shape *sh = &q->shapes[s];
    bool was_top = shape_len(sh) == 0 || entry_less(&e, shape_top(sh));
    heap_push(sh, e);
    if (sh->n >= MERGE_MIN && sh->n >= sh->run_n - sh->head)
        shape_merge(sh);
    q->len++;
    if (was_top)
        active_update(q, s);
}

void drv_queue_shape_pop(drv_queue *q, uint32_t s)
{
    shape *sh = &q->shapes[s];
    if (shape_len(sh) == 0)
        return;
    q->len--;
    if (shape_top(sh) == &sh->run[sh->head]) {
        sh->head++;
        if (sh->head == sh->run_n)
            sh->head = sh->run_n = 0;
    } else {
        heap_pop(sh);
    }
    active_update(q, s);
}

bool drv_queue_peek(const drv_queue *q, drv_queue_entry *e, uint32_t *s)
{
    if (q->n_active == 0)
        return false;
    uint32_t best = q->active[0];
    if (e)
        *e = *shape_top(&q->shapes[best]);
    if (s)
        *s = best;
    return true;
}

bool drv_queue_shape_peek(const drv_queue *q, uint32_t s, drv_queue_entry *e)
{
    const shape *sh = &q->shapes[s];
    if (shape_len(sh) == 0)
        return false;
    *e = *shape_top(sh);
    return true;
}

size_t drv_queue_shape_len(const drv_queue *q, uint32_t s)
{
    return shape_len(&q->shapes[s]);
}

const drv_queue_entry *drv_queue_shape_at(const drv_queue *q, uint32_t s, size_t i)
{
    const shape *sh = &q->shapes[s];
    size_t live = sh->run_n - sh->head;
    if (i < live)
        return &sh->run[sh->head + i];
    i -= live;
    return i < sh->n ? &sh->heap[i] : NULL;
}

void drv_queue_shape_block(drv_queue *q, uint32_t s)
{
    q->shapes[s].blocked = true;
    active_update(q, s);
}

void drv_queue_shape_unblock(drv_queue *q, uint32_t s)
{
    if (!q->shapes[s].blocked)
        return;
    q->shapes[s].blocked = false;
    active_update(q, s);
}

bool drv_queue_shape_blocked(const drv_queue *q, uint32_t s)
{
    return q->shapes[s].blocked;
}

size_t drv_queue_len(const drv_queue *q)
{
    return q->len;
}

size_t drv_queue_bytes(const drv_queue *q)
{
    size_t b = sizeof *q + q->cap_shapes * (sizeof(shape) + sizeof(uint32_t)) +
               q->index_cap * sizeof(uint32_t);
    for (uint32_t i = 0; i < q->n_shapes; i++)
        b += (q->shapes[i].cap + q->shapes[i].run_n) * sizeof(drv_queue_entry);
    return b;
}
