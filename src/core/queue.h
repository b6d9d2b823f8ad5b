/* queue.h - the queue of tests waiting for a worker.
 *
 * Tests are grouped by requirement shape: tests with equal requirements share a shape,
 * and each shape keeps its own heap, so a worker (or the balancer) looking for runnable
 * tests looks at shapes, not at every test. Across shapes, a heap of the *active*
 * shapes (those with tests and not blocked) gives the best test overall in O(1).
 *
 * Order: a 64-bit key, lower first, then the submission sequence (FIFO). The key
 * (drv_queue_key) encodes priority with aging and longest-predicted-first:
 *   effective priority = priority + (now - enqueued) / aging_interval.
 * Since `now` is common to all tests, ordering by priority - enqueued/aging_interval
 * is the same at every instant, so the key is computed once at submission: a long-
 * waiting low-priority test overtakes newer high-priority ones without any re-sorting.
 * Enqueue times are quantised to the aging interval, and among tests whose priority
 * and quantised time are equal, the longest predicted runs first (good for makespan).
 * Enqueue times are counted from the queue's base time (drv_queue_base: the first
 * time it is asked for one), not from the epoch: a key holds about 2e9 aging steps,
 * which at an aging interval of 0.05 s is three years of uptime, while an epoch time
 * (1.8e9 s) divided by anything below 0.9 s would not fit and every test would get
 * the same level.
 *
 * Inside a shape, entries live in a sorted run plus a small 4-ary heap of newer arrivals;
 * when the heap grows as large as what is left of the run, the two are merged into a new
 * run. A suite submitted in bulk is thus sorted once and then taken from the front in
 * order (sequential memory, no sift-down through a deep heap per test), while a trickle
 * of arrivals costs O(log k) each.
 *
 * Entries are references (uint32) owned by the caller; the queue never frees them.
 * Removal of an arbitrary entry is lazy: the caller marks it dead and skips it when
 * it surfaces. Pure, no allocation per entry beyond the heaps' arrays. */
#ifndef DRV_CORE_QUEUE_H
#define DRV_CORE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/requirements.h"

typedef struct drv_queue_entry {
    uint64_t key;
    uint32_t seq;
    uint32_t ref;
} drv_queue_entry;

#define DRV_SHAPE_NONE UINT32_MAX

typedef struct drv_queue drv_queue;

drv_queue *drv_queue_new(void);
void drv_queue_free(drv_queue *q);

/* The time enqueue times are counted from: now at the first call on q, the same value
 * at every later call. */
double drv_queue_base(drv_queue *q, double now);

/* The key of a test: see above. enqueued is seconds since drv_queue_base() (earlier
 * is fine: negative down to -1e9 aging steps); aging_interval_s > 0; predicted_s >= 0. */
uint64_t drv_queue_key(int32_t priority, double enqueued, double aging_interval_s,
                       double predicted_s);

/* Interns a requirement shape; returns its id (0, 1, ...). New shapes start active. */
uint32_t drv_queue_shape(drv_queue *q, const drv_requirements *req, bool *is_new);
const drv_requirements *drv_queue_shape_req(const drv_queue *q, uint32_t shape);
uint32_t drv_queue_shape_count(const drv_queue *q);

void drv_queue_push(drv_queue *q, uint32_t shape, drv_queue_entry e);
/* The best entry of the active shapes, and its shape. False when none. */
bool drv_queue_peek(const drv_queue *q, drv_queue_entry *e, uint32_t *shape);
/* The best entry of one shape (active or not). False when it is empty. */
bool drv_queue_shape_peek(const drv_queue *q, uint32_t shape, drv_queue_entry *e);
/* Removes the best entry of shape. Nothing when it is empty. */
void drv_queue_shape_pop(drv_queue *q, uint32_t shape);
size_t drv_queue_shape_len(const drv_queue *q, uint32_t shape);
/* Entry i (0 <= i < drv_queue_shape_len) of a shape, in no particular order, for
 * inspection. */
const drv_queue_entry *drv_queue_shape_at(const drv_queue *q, uint32_t shape, size_t i);

/* A blocked shape is skipped by drv_queue_peek() until unblocked (no worker can take
 * its tests now). */
void drv_queue_shape_block(drv_queue *q, uint32_t shape);
void drv_queue_shape_unblock(drv_queue *q, uint32_t shape);
bool drv_queue_shape_blocked(const drv_queue *q, uint32_t shape);

/* Entries in all shapes (including those the caller will skip as dead). */
size_t drv_queue_len(const drv_queue *q);
size_t drv_queue_bytes(const drv_queue *q);

#endif
