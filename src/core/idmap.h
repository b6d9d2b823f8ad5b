/* idmap.h - a hash map from 64-bit ids to 32-bit values (open addressing, linear
 * probing, backward-shift deletion: no tombstones, so lookups stay short however many
 * ids come and go). The coordinator maps task ids to balancer references with it.
 *
 * Ownership: the map owns its table; drv_idmap_clear() frees it. Not thread-safe. */
#ifndef DRV_CORE_IDMAP_H
#define DRV_CORE_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct drv_idmap_slot {
    uint64_t key; /* the id + 1; 0 marks an empty slot */
    uint32_t value;
} drv_idmap_slot;

typedef struct drv_idmap {
    drv_idmap_slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t count;
} drv_idmap;

/* An empty map (no allocation until the first put). */
void drv_idmap_init(drv_idmap *m);
/* Frees the table and empties the map. */
void drv_idmap_clear(drv_idmap *m);
/* Sets id -> value (replacing an old value). id must be < UINT64_MAX. */
void drv_idmap_put(drv_idmap *m, uint64_t id, uint32_t value);
/* Stores id's value in *value and returns true, or returns false when id is absent. */
bool drv_idmap_get(const drv_idmap *m, uint64_t id, uint32_t *value);
/* Removes id; returns false when it was absent. */
bool drv_idmap_del(drv_idmap *m, uint64_t id);

#endif
